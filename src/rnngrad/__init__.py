"""rnngrad: measure, explain and fix vanishing and exploding gradients in recurrent networks.

The public face. Each name is defined in the module named after its idea:

- :mod:`rnngrad.scalar`: the scalar RNN's chain rule, its bound, phase diagrams.
- :mod:`rnngrad.activations`: ``phi``, ``phi'``, ``gamma = sup|phi'|``, saturation.
- :mod:`rnngrad.spectrum`: eigen- and singular values of ``W_hh``, transient growth.
- :mod:`rnngrad.jacobians`: exact Jacobian products of an Elman RNN.
- :mod:`rnngrad.verdict`: the rules behind "vanishing", "exploding", "neither".
- :mod:`rnngrad.logspace`: numbers carried as ``(sign, log10|value|)``.
- :mod:`rnngrad.errors`: typed exceptions.
"""

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

__all__ = [
    "TEXTBOOK_EXAMPLE",
    "Activation",
    "ElmanTrajectory",
    "GrowthVerdict",
    "InvalidInputError",
    "JacobianProducts",
    "NonFiniteInputError",
    "NumericalError",
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
    "elman_forward",
    "elman_jacobian_products",
    "example_matrix",
    "format_signed_log10",
    "get_activation",
    "gradient_horizon",
    "growth_labels",
    "growth_verdict",
    "load_array",
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
