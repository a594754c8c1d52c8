"""Selective recurrences: the eigenvalue criterion made selective (one eigenvalue per
mode and token), and the adapters that reach today's selective layers."""
