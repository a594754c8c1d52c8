"""The remedies lab: long-memory tasks, models with and without remedies, training, sweeps."""
