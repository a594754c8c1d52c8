"""rnngrad: measure, explain and fix vanishing and exploding gradients in recurrent networks.

The public face. Each name is defined in the module named after its idea:

- :mod:`rnngrad.theory.scalar`: the scalar RNN's chain rule, its bound, phase diagrams.
- :mod:`rnngrad.theory.activations`: ``phi``, ``phi'``, ``gamma = sup|phi'|``, saturation.
- :mod:`rnngrad.theory.spectrum`: eigen- and singular values of ``W_hh``, transient growth.
- :mod:`rnngrad.theory.jacobians`: exact Jacobian products of an Elman RNN.
- :mod:`rnngrad.profile.front`, :mod:`rnngrad.monitor.monitor`: per-time-step gradients of
  PyTorch models, and a training-loop monitor.
- :mod:`rnngrad.lyapunov.dynamics`, :mod:`rnngrad.lyapunov.spectrum`, :mod:`rnngrad.theory.meanfield`:
  Lyapunov spectra and the mean-field theory of random networks.
- :mod:`rnngrad.verdict`: the rules behind "vanishing", "exploding", "neither".
- :mod:`rnngrad.logspace`: numbers carried as ``(sign, log10|value|)``.
- :mod:`rnngrad.errors`: typed exceptions.
"""

from typing import TYPE_CHECKING, Any

from rnngrad.errors import (
    InvalidInputError,
    MissingExtraError,
    NonFiniteInputError,
    NumericalError,
    RnngradError,
    ShapeError,
    UnknownActivationError,
    UnsafeFileError,
    WeightFileError,
)
from rnngrad.io.files import load_array
from rnngrad.logspace import format_signed_log10, to_float
from rnngrad.theory.activations import (
    Activation,
    Saturation,
    activation_names,
    get_activation,
    register_activation,
    saturation,
)
from rnngrad.theory.jacobians import (
    ElmanTrajectory,
    JacobianProducts,
    elman_forward,
    elman_jacobian_products,
)
from rnngrad.theory.meanfield import MeanFieldPrediction, mean_field_lambda1
from rnngrad.theory.scalar import (
    TEXTBOOK_EXAMPLE,
    ScalarChainRule,
    ScalarPhaseDiagram,
    scalar_chain_rule,
    scalar_inputs,
    scalar_phase_diagram,
)
from rnngrad.theory.spectrum import (
    RecurrentSpectrum,
    TransientGrowth,
    example_matrix,
    recurrent_spectrum,
    transient_growth,
)
from rnngrad.verdict import (
    GrowthVerdict,
    SpectrumVerdict,
    gradient_horizon,
    growth_labels,
    growth_verdict,
    spectrum_verdict,
)

__version__ = "0.1.0"

# The parts built on torch load on first use, so that `import rnngrad` (and the
# numpy-only commands) stay fast.
_LAZY = {
    "GradientProfile": "rnngrad.profile.front",
    "LayerProfile": "rnngrad.profile.front",
    "gradient_profile": "rnngrad.profile.front",
    "gradient_profiles": "rnngrad.profile.front",
    "cell_gradient_profile": "rnngrad.profile.cell",
    "find_recurrent_modules": "rnngrad.cells",
    "RecurrentLayout": "rnngrad.cells",
    "describe_module": "rnngrad.cells",
    "find_recurrent_module": "rnngrad.cells",
    "GradientMonitor": "rnngrad.monitor.monitor",
    "LyapunovSpectrum": "rnngrad.lyapunov.spectrum",
    "FiniteTimeSpectrum": "rnngrad.lyapunov.finite_time",
    "DecayComparison": "rnngrad.lyapunov.finite_time",
    "lyapunov_spectrum": "rnngrad.lyapunov.spectrum",
    "finite_time_spectrum": "rnngrad.lyapunov.finite_time",
    "decay_beside_lyapunov": "rnngrad.lyapunov.finite_time",
    "ModuleDynamics": "rnngrad.lyapunov.dynamics",
    "CellDynamics": "rnngrad.lyapunov.dynamics",
}

if TYPE_CHECKING:
    from rnngrad.cells import (
        RecurrentLayout,
        describe_module,
        find_recurrent_module,
        find_recurrent_modules,
    )
    from rnngrad.lyapunov.dynamics import CellDynamics, ModuleDynamics
    from rnngrad.lyapunov.finite_time import (
        DecayComparison,
        FiniteTimeSpectrum,
        decay_beside_lyapunov,
        finite_time_spectrum,
    )
    from rnngrad.lyapunov.spectrum import LyapunovSpectrum, lyapunov_spectrum
    from rnngrad.monitor.monitor import GradientMonitor
    from rnngrad.profile.cell import cell_gradient_profile
    from rnngrad.profile.front import (
        GradientProfile,
        LayerProfile,
        gradient_profile,
        gradient_profiles,
    )


def __dir__() -> list[str]:
    """Every public name, the lazily loaded ones included (for tab completion)."""
    return sorted(set(globals()) | set(__all__))


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'rnngrad' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "TEXTBOOK_EXAMPLE",
    "Activation",
    "CellDynamics",
    "DecayComparison",
    "ElmanTrajectory",
    "FiniteTimeSpectrum",
    "GradientMonitor",
    "GradientProfile",
    "GrowthVerdict",
    "InvalidInputError",
    "JacobianProducts",
    "LayerProfile",
    "LyapunovSpectrum",
    "MeanFieldPrediction",
    "MissingExtraError",
    "ModuleDynamics",
    "NonFiniteInputError",
    "NumericalError",
    "RecurrentLayout",
    "RecurrentSpectrum",
    "RnngradError",
    "Saturation",
    "ScalarChainRule",
    "ScalarPhaseDiagram",
    "ShapeError",
    "SpectrumVerdict",
    "TransientGrowth",
    "UnknownActivationError",
    "UnsafeFileError",
    "WeightFileError",
    "__version__",
    "activation_names",
    "cell_gradient_profile",
    "decay_beside_lyapunov",
    "describe_module",
    "elman_forward",
    "elman_jacobian_products",
    "example_matrix",
    "find_recurrent_module",
    "find_recurrent_modules",
    "finite_time_spectrum",
    "format_signed_log10",
    "get_activation",
    "gradient_horizon",
    "gradient_profile",
    "gradient_profiles",
    "growth_labels",
    "growth_verdict",
    "load_array",
    "lyapunov_spectrum",
    "mean_field_lambda1",
    "recurrent_spectrum",
    "register_activation",
    "saturation",
    "scalar_chain_rule",
    "scalar_inputs",
    "scalar_phase_diagram",
    "spectrum_verdict",
    "to_float",
    "transient_growth",
]
