"""Rate networks: the leaky, discretised continuous-time recurrences of neuroscience."""

from rnngrad.rate.network import RateRNN, random_rate_network

__all__ = ["RateRNN", "random_rate_network"]
