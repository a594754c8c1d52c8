"""rnngrad's public face: the one list of its names (read by type checkers, and by
``lazy_loader`` at run time, which imports each module on its first use)."""

from .cells import (
    RecurrentLayout as RecurrentLayout,
    describe_module as describe_module,
    find_recurrent_module as find_recurrent_module,
    find_recurrent_modules as find_recurrent_modules,
)
from .errors import (
    InvalidInputError as InvalidInputError,
    MissingExtraError as MissingExtraError,
    NonFiniteInputError as NonFiniteInputError,
    NumericalError as NumericalError,
    RnngradError as RnngradError,
    ShapeError as ShapeError,
    UnknownActivationError as UnknownActivationError,
    UnsafeFileError as UnsafeFileError,
    WeightFileError as WeightFileError,
)
from .io.files import (
    load_array as load_array,
)
from .logspace import (
    format_signed_log10 as format_signed_log10,
    to_float as to_float,
)
from .lyapunov.dynamics import (
    CellDynamics as CellDynamics,
    ModuleDynamics as ModuleDynamics,
)
from .lyapunov.finite_time import (
    DecayComparison as DecayComparison,
    FiniteTimeSpectrum as FiniteTimeSpectrum,
    decay_beside_lyapunov as decay_beside_lyapunov,
    finite_time_spectrum as finite_time_spectrum,
)
from .lyapunov.spectrum import (
    LyapunovSpectrum as LyapunovSpectrum,
    lyapunov_spectrum as lyapunov_spectrum,
)
from .monitor.monitor import (
    GradientMonitor as GradientMonitor,
)
from .profile.cell import (
    cell_gradient_profile as cell_gradient_profile,
)
from .profile.front import (
    GradientProfile as GradientProfile,
    LayerProfile as LayerProfile,
    gradient_profile as gradient_profile,
    gradient_profiles as gradient_profiles,
)
from .theory.activations import (
    Activation as Activation,
    Saturation as Saturation,
    activation_names as activation_names,
    get_activation as get_activation,
    register_activation as register_activation,
    saturation as saturation,
)
from .theory.jacobians import (
    ElmanTrajectory as ElmanTrajectory,
    JacobianProducts as JacobianProducts,
    elman_forward as elman_forward,
    elman_jacobian_products as elman_jacobian_products,
)
from .theory.meanfield import (
    MeanFieldPrediction as MeanFieldPrediction,
    mean_field_lambda1 as mean_field_lambda1,
)
from .theory.scalar import (
    TEXTBOOK_EXAMPLE as TEXTBOOK_EXAMPLE,
    ScalarChainRule as ScalarChainRule,
    ScalarPhaseDiagram as ScalarPhaseDiagram,
    scalar_chain_rule as scalar_chain_rule,
    scalar_inputs as scalar_inputs,
    scalar_phase_diagram as scalar_phase_diagram,
)
from .theory.spectrum import (
    RecurrentSpectrum as RecurrentSpectrum,
    TransientGrowth as TransientGrowth,
    example_matrix as example_matrix,
    recurrent_spectrum as recurrent_spectrum,
    transient_growth as transient_growth,
)
from .verdict import (
    GrowthVerdict as GrowthVerdict,
    SpectrumVerdict as SpectrumVerdict,
    gradient_horizon as gradient_horizon,
    growth_labels as growth_labels,
    growth_verdict as growth_verdict,
    spectrum_verdict as spectrum_verdict,
)

__version__: str
