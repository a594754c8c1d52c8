"""The report: one page that explains a network's gradients, section by section."""
