"""rnngrad: measure, explain and fix vanishing and exploding gradients in recurrent networks.

The public face. Each name is defined in the folder of its family of ideas:

- :mod:`rnngrad.theory`: the textbook in numpy: the scalar RNN's chain rule and its
  bound, activations and saturation, the spectrum of ``W_hh`` and transient growth,
  exact Jacobian products of an Elman RNN, mean-field theory.
- :mod:`rnngrad.profile`, :mod:`rnngrad.monitor`: per-time-step gradients of
  PyTorch models, and a training-loop monitor.
- :mod:`rnngrad.lyapunov`: Lyapunov spectra, finite-time spectra and the dynamics
  they are measured along.
- :mod:`rnngrad.verdict`: the rules behind "vanishing", "exploding", "neither".
- :mod:`rnngrad.logspace`: numbers carried as ``(sign, log10|value|)``.
- :mod:`rnngrad.errors`: typed exceptions.

The names are listed once, in ``__init__.pyi``: type checkers read it, and
``lazy_loader`` reads it at run time to import each module on first use, so that
``import rnngrad`` (and the numpy-only commands) stay fast.
"""

import lazy_loader

__version__ = "0.1.0"

_load, _dir, _names = lazy_loader.attach_stub(__name__, __file__)
__all__ = [*_names, "__version__"]


def __getattr__(name: str) -> object:
    """Load a public name on first use; a public function comes with its arguments
    checked at the boundary (:mod:`rnngrad.boundary`)."""
    import inspect

    value = _load(name)
    if inspect.isfunction(value) and not getattr(value, "__rnngrad_public__", False):
        from rnngrad.boundary import public

        value = public(value)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """Every public name, the lazily loaded ones included (for tab completion)."""
    return sorted(__all__)
