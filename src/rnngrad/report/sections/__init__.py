"""The sections of the page, one module each, in the textbook's order."""
