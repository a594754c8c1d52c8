"""rnngrad: measure, explain and fix vanishing and exploding gradients in recurrent networks.

The public face. Each name is defined in the module named after its idea:

- :mod:`rnngrad.scalar`: the scalar RNN's chain rule, its bound, phase diagrams.
- :mod:`rnngrad.activations`: ``phi``, ``phi'``, ``gamma = sup|phi'|``, saturation.
- :mod:`rnngrad.spectrum`: eigen- and singular values of ``W_hh``, transient growth.
- :mod:`rnngrad.jacobians`: exact Jacobian products of an Elman RNN.
- :mod:`rnngrad.profile`, :mod:`rnngrad.monitor`: per-time-step gradients of
  PyTorch models, and a training-loop monitor.
- :mod:`rnngrad.dynamics`, :mod:`rnngrad.lyapunov`, :mod:`rnngrad.meanfield`:
  Lyapunov spectra and the mean-field theory of random networks.
- :mod:`rnngrad.verdict`: the rules behind "vanishing", "exploding", "neither".
- :mod:`rnngrad.logspace`: numbers carried as ``(sign, log10|value|)``.
- :mod:`rnngrad.errors`: typed exceptions.
"""

from typing import TYPE_CHECKING, Any

from rnngrad.activations import (
    Activation,
    Saturation,
    activation_names,
    get_activation,
    register_activation,
    saturation,
)
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
from rnngrad.io import load_array
from rnngrad.jacobians import (
    ElmanTrajectory,
    JacobianProducts,
    elman_forward,
    elman_jacobian_products,
)
from rnngrad.logspace import format_signed_log10, to_float
from rnngrad.meanfield import MeanFieldPrediction, mean_field_lambda1
from rnngrad.scalar import (
    TEXTBOOK_EXAMPLE,
    ScalarChainRule,
    ScalarPhaseDiagram,
    scalar_chain_rule,
    scalar_inputs,
    scalar_phase_diagram,
)
from rnngrad.spectrum import (
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
    "GradientProfile": "rnngrad.profile",
    "LayerProfile": "rnngrad.profile",
    "gradient_profile": "rnngrad.profile",
    "gradient_profiles": "rnngrad.profile",
    "cell_gradient_profile": "rnngrad.cell_profile",
    "find_recurrent_modules": "rnngrad.cells",
    "RecurrentLayout": "rnngrad.cells",
    "describe_module": "rnngrad.cells",
    "find_recurrent_module": "rnngrad.cells",
    "GradientMonitor": "rnngrad.monitor",
    "LyapunovSpectrum": "rnngrad.lyapunov",
    "FiniteTimeSpectrum": "rnngrad.finite_time",
    "DecayComparison": "rnngrad.finite_time",
    "lyapunov_spectrum": "rnngrad.lyapunov",
    "finite_time_spectrum": "rnngrad.finite_time",
    "decay_beside_lyapunov": "rnngrad.finite_time",
    "ModuleDynamics": "rnngrad.dynamics",
    "CellDynamics": "rnngrad.dynamics",
}

if TYPE_CHECKING:
    from rnngrad.cell_profile import cell_gradient_profile
    from rnngrad.cells import (
        RecurrentLayout,
        describe_module,
        find_recurrent_module,
        find_recurrent_modules,
    )
    from rnngrad.dynamics import CellDynamics, ModuleDynamics
    from rnngrad.finite_time import (
        DecayComparison,
        FiniteTimeSpectrum,
        decay_beside_lyapunov,
        finite_time_spectrum,
    )
    from rnngrad.lyapunov import LyapunovSpectrum, lyapunov_spectrum
    from rnngrad.monitor import GradientMonitor
    from rnngrad.profile import (
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
