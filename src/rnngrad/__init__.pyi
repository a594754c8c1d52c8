"""rnngrad's public face, listed once: type checkers and the documentation read this stub,
and ``lazy_loader`` reads its imports at run time to load each module on first use.
``tests/test_house.py`` holds ``__all__`` to the imported names."""

from .cells import RecurrentLayout, describe_module, find_recurrent_module, find_recurrent_modules
from .errors import (
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
from .io.files import load_array
from .logspace import format_signed_log10, to_float
from .lyapunov.dynamics import CellDynamics, ModuleDynamics
from .lyapunov.finite_time import (
    DecayComparison,
    FiniteTimeSpectrum,
    decay_beside_lyapunov,
    finite_time_spectrum,
)
from .lyapunov.spectrum import LyapunovSpectrum, lyapunov_spectrum
from .monitor.monitor import GradientMonitor
from .profile.calls import profile_call
from .profile.cell import cell_gradient_profile
from .profile.front import GradientProfile, LayerProfile, gradient_profile, gradient_profiles
from .profile.sensitivity import (
    MemorySensitivity,
    ParameterSensitivity,
    memory_sensitivity,
    sensitivity_call,
)
from .rate.network import RateRNN, random_rate_network
from .selective.criterion import SelectiveSpectrum, selective_spectrum
from .theory.activations import (
    Activation,
    Saturation,
    activation_names,
    get_activation,
    register_activation,
    saturation,
)
from .theory.jacobians import (
    ElmanTrajectory,
    JacobianProducts,
    elman_forward,
    elman_jacobian_products,
)
from .theory.leaky_meanfield import LeakyMeanField, leaky_mean_field_lambda1
from .theory.meanfield import MeanFieldPrediction, mean_field_lambda1
from .theory.scalar import (
    TEXTBOOK_EXAMPLE,
    ScalarChainRule,
    ScalarPhaseDiagram,
    scalar_chain_rule,
    scalar_inputs,
    scalar_phase_diagram,
)
from .theory.spectrum import (
    RecurrentSpectrum,
    TransientGrowth,
    example_matrix,
    recurrent_spectrum,
    transient_growth,
)
from .verdict import (
    GrowthVerdict,
    SpectrumVerdict,
    gradient_horizon,
    growth_labels,
    growth_verdict,
    spectrum_verdict,
)

__version__: str

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
    "LeakyMeanField",
    "LyapunovSpectrum",
    "MeanFieldPrediction",
    "MemorySensitivity",
    "MissingExtraError",
    "ModuleDynamics",
    "NonFiniteInputError",
    "NumericalError",
    "ParameterSensitivity",
    "RateRNN",
    "RecurrentLayout",
    "RecurrentSpectrum",
    "RnngradError",
    "Saturation",
    "ScalarChainRule",
    "ScalarPhaseDiagram",
    "SelectiveSpectrum",
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
    "leaky_mean_field_lambda1",
    "load_array",
    "lyapunov_spectrum",
    "mean_field_lambda1",
    "memory_sensitivity",
    "profile_call",
    "random_rate_network",
    "recurrent_spectrum",
    "register_activation",
    "saturation",
    "scalar_chain_rule",
    "scalar_inputs",
    "scalar_phase_diagram",
    "selective_spectrum",
    "sensitivity_call",
    "spectrum_verdict",
    "to_float",
    "transient_growth",
]
