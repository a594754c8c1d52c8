"""The ``rnngrad`` command line: parse, call the core, print.

Every command prints a rich table and a verdict, or with ``--json`` one JSON
object on stdout and nothing else there. Bad input (an option that does not
parse, a value out of range, NaN or inf, a missing or unsafe file) gives one
line on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import itertools
import math
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table

from rnngrad import __version__
from rnngrad.activations import activation_names
from rnngrad.errors import InvalidInputError, RnngradError
from rnngrad.logspace import format_signed_log10

app = typer.Typer(
    name="rnngrad",
    help="Measure, explain and fix vanishing and exploding gradients in recurrent networks.",
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

_VERDICT_STYLE = {"vanishing": "bold blue", "exploding": "bold red", "neither": "bold green"}
_SUMMARY_ROWS = 8  # rows shown at each end of a long table


class ExampleName(str, Enum):
    random = "random"
    orthogonal = "orthogonal"
    nonnormal = "nonnormal"


def _fail(message: str) -> NoReturn:
    print(f"rnngrad: error: {message}", file=sys.stderr)
    raise SystemExit(2)


def _activation(name: str) -> str:
    if name not in activation_names():
        _fail(f"unknown activation {name!r}; expected one of: {', '.join(activation_names())}")
    return name


def _finite(**values: float) -> None:
    for name, value in values.items():
        if not math.isfinite(value):
            raise InvalidInputError(f"--{name.replace('_', '-')} must be finite, got {value}")


def _fmt(sign: float, log10_abs: float) -> str:
    return format_signed_log10(sign, log10_abs)


def _rows_to_show(steps: int) -> list[int | None]:
    """Indices to print; ``None`` marks the elided middle of a long table."""
    if steps <= 2 * _SUMMARY_ROWS + 4:
        return list(range(steps))
    return [*range(_SUMMARY_ROWS), None, *range(steps - _SUMMARY_ROWS, steps)]


@app.callback(invoke_without_command=True)
def _main_options(
    version: Annotated[
        bool, typer.Option("--version", help="Print the version and exit.", is_eager=True)
    ] = False,
) -> None:
    if version:
        print(f"rnngrad {__version__}")
        raise typer.Exit()


@app.command()
def scalar(
    a: Annotated[float, typer.Option("--a", help="Recurrent weight.")] = 0.5,
    b: Annotated[float, typer.Option("--b", help="Input weight.")] = 1.0,
    c: Annotated[float, typer.Option("--c", help="Bias.")] = 0.0,
    d: Annotated[float, typer.Option("--d", help="Output weight: y = d*h_T + e.")] = 1.0,
    e: Annotated[float, typer.Option("--e", help="Output bias.")] = 0.0,
    h0: Annotated[float, typer.Option("--h0", help="Initial state h_0.")] = 0.0,
    x: Annotated[
        str | None,
        typer.Option("--x", help="Inputs x_1..x_T, comma-separated (e.g. 1,0.5,-0.3)."),
    ] = None,
    steps: Annotated[
        int | None,
        typer.Option("--steps", help="Sequence length T (zero inputs unless --input-seed)."),
    ] = None,
    input_seed: Annotated[
        int | None, typer.Option("--input-seed", help="Seed of N(0,1) inputs for --steps.")
    ] = None,
    activation: Annotated[
        str, typer.Option("--activation", help="tanh, sigmoid, relu or identity.")
    ] = "tanh",
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """The scalar RNN h_t = phi(a*h_{t-1} + b*x_t + c), y = d*h_T + e, factor by factor.

    With no options it runs the three-step textbook example.
    """
    from rnngrad.io import parse_float_list
    from rnngrad.scalar import TEXTBOOK_EXAMPLE, scalar_chain_rule, scalar_inputs

    _activation(activation)
    _finite(a=a, b=b, c=c, d=d, e=e, h0=h0)
    if x is not None and (steps is not None or input_seed is not None):
        raise InvalidInputError(
            "give the inputs either with --x or with --steps/--input-seed, not both"
        )
    if x is not None:
        inputs = parse_float_list(x, "--x")
    elif steps is not None:
        inputs = list(scalar_inputs(steps, input_seed))
    elif input_seed is not None:
        raise InvalidInputError("--input-seed needs --steps T")
    else:
        inputs = list(TEXTBOOK_EXAMPLE["x"])  # type: ignore[arg-type]
    result = scalar_chain_rule(inputs, a=a, b=b, c=c, d=d, e=e, h0=h0, activation=activation)

    if as_json:
        from rnngrad.jsonout import dumps, scalar_json

        print(dumps(scalar_json(result)))
        return

    console = Console()
    T = result.steps
    table = Table(
        title=(
            f"h_t = {result.activation}({result.a:g}*h_(t-1) + {result.b:g}*x_t + {result.c:g}), "
            f"y = {result.d:g}*h_T + {result.e:g}   (T = {T}, gamma = {result.gamma:g})"
        ),
        caption="bound = |d|*(|a|*gamma)^(T-k)"
        + (
            ""
            if T <= 2 * _SUMMARY_ROWS + 4
            else f"; {T} steps: first and last {_SUMMARY_ROWS} shown, --json gives all"
        ),
    )
    for header in ("k", "x_k", "h_k", "dh(k+1)/dh(k)", "dy/dh(k)", "bound"):
        table.add_column(header, justify="right", no_wrap=True)
    for index in _rows_to_show(T):
        if index is None:
            table.add_row(*["…"] * 6)
            continue
        factor = (
            _fmt(result.sign_factors[index], result.log10_abs_factors[index])
            if index < T - 1
            else "—"
        )
        h_text = f"{result.h[index]:.6g}" if math.isfinite(result.h[index]) else "overflow"
        table.add_row(
            str(index + 1),
            f"{result.x[index]:.4g}",
            h_text,
            factor,
            _fmt(result.sign_dy_dh[index], result.log10_abs_dy_dh[index]),
            _fmt(1.0, result.log10_bound[index]),
        )
    console.print(table)
    y_text = f"{result.y:.6g}" if math.isfinite(result.y) else "overflow (|y| > 1.8e308)"
    console.print(f"y = {y_text}")
    verdict = result.verdict
    console.print(
        f"[{_VERDICT_STYLE[verdict.label]}]{verdict.label.upper()}[/]  {verdict.sentence}"
    )
    console.print(f"[dim]rule: {verdict.rule}[/]")


@app.command()
def spectrum(
    weights: Annotated[
        Path | None,
        typer.Option(
            "--weights", help="W_hh from a .npy, .pt (weights_only) or .safetensors file."
        ),
    ] = None,
    key: Annotated[
        str | None, typer.Option("--key", help="Tensor name in a file that holds several.")
    ] = None,
    example: Annotated[
        ExampleName | None,
        typer.Option("--example", help="A built-in W_hh (default nonnormal when no --weights)."),
    ] = None,
    hidden: Annotated[int, typer.Option("--hidden", help="Size N of the built-in example.")] = 64,
    radius: Annotated[
        float, typer.Option("--radius", help="Spectral radius of the built-in example.")
    ] = 0.9,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the built-in example.")] = 0,
    activation: Annotated[
        str, typer.Option("--activation", help="Whose gamma = sup|phi'| enters the verdict.")
    ] = "tanh",
    max_steps: Annotated[
        int, typer.Option("--max-steps", help="Largest power k examined for transient growth.")
    ] = 2_000,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Eigen- and singular values of W_hh, transient growth, and both criteria's verdict."""
    from rnngrad.io import load_array
    from rnngrad.spectrum import example_matrix, recurrent_spectrum

    _activation(activation)
    _finite(radius=radius)
    if weights is not None and example is not None:
        raise InvalidInputError("give either --weights or --example, not both")
    if weights is None and key is not None:
        raise InvalidInputError("--key needs --weights")
    if weights is not None:
        matrix = load_array(weights, key)
        source = f"{weights}" + (f" [{key}]" if key else "")
    else:
        kind = (example or ExampleName.nonnormal).value
        if hidden < 1:
            raise InvalidInputError(f"--hidden must be >= 1, got {hidden}")
        if hidden > 4096:
            raise InvalidInputError(
                f"--hidden must be <= 4096 for a built-in example, got {hidden}"
            )
        matrix = example_matrix(kind, hidden=hidden, radius=radius, seed=seed)  # type: ignore[arg-type]
        source = f"example {kind} (hidden={hidden}, radius={radius:g}, seed={seed})"
    result = recurrent_spectrum(matrix, activation, max_steps=max_steps)

    if as_json:
        from rnngrad.jsonout import dumps, spectrum_json

        print(dumps(spectrum_json(result, source)))
        return

    console = Console()
    shown = min(result.size, 10)
    table = Table(title=f"W_hh: {source}, N = {result.size}")
    for header in ("i", "eigenvalue", "|lambda_i|", "sigma_i"):
        table.add_column(header, justify="right")
    for i in range(shown):
        value = result.eigenvalues[i]
        text = f"{value.real:.5g}" + (
            f" {'+' if value.imag >= 0 else '-'} {abs(value.imag):.5g}i" if value.imag else ""
        )
        table.add_row(str(i + 1), text, f"{abs(value):.5g}", f"{result.singular_values[i]:.5g}")
    if result.size > shown:
        table.add_row("…", f"({result.size - shown} more)", "", "")
    console.print(table)

    transient = result.transient
    growth = _fmt(1.0, transient.log10_max_growth)
    summary = Table(show_header=False, box=None)
    summary.add_column(style="bold")
    summary.add_column()
    summary.add_row("spectral radius rho", f"{result.spectral_radius:.6g}")
    summary.add_row("||W||_2 = sigma_max", f"{result.norm2:.6g}")
    summary.add_row(
        f"sigma_max * gamma ({result.activation})", f"{result.verdict.norm2_times_gamma:.6g}"
    )
    if math.isfinite(result.eigvec_condition):
        diagonalizable = "yes" if result.diagonalizable else "no (numerically)"
        diagonalizable += f", cond(V) = {result.eigvec_condition:.3g}"
    else:
        diagonalizable = "no (the eigenvectors are linearly dependent)"
    summary.add_row("diagonalizable", diagonalizable)
    summary.add_row(
        "max_k ||W^k||_2",
        f"{growth} at k = {transient.peak_step}"
        + (
            ""
            if transient.certified
            else f" (not certified: examined k <= {len(transient.log10_norms)})"
        ),
    )
    summary.add_row("eigenvalue criterion", result.verdict.eigenvalue_label)
    summary.add_row("singular-value criterion", result.verdict.singular_value_label)
    console.print(summary)
    verdict = result.verdict
    console.print(
        f"[{_VERDICT_STYLE[verdict.label]}]{verdict.label.upper()}[/]  {verdict.sentence}"
    )
    if verdict.disagreement:
        console.print(f"[yellow]The criteria disagree:[/] {verdict.disagreement}.")


class LossName(str, Enum):
    last = "last"
    sum = "sum"


class DtypeName(str, Enum):
    float32 = "float32"
    float64 = "float64"


_BLOCKS = "▁▂▃▄▅▆▇█"


def _sparkline(log10_values: list[float], width: int = 48) -> str:
    """The per-step profile in one line: block height ~ log10 norm, '·' for zero or non-finite."""
    import numpy as np

    values = np.asarray(log10_values, dtype=float)
    if values.size > width:  # the largest log10 in each of equal bins of steps
        edges = np.linspace(0, values.size, width + 1).astype(int)
        values = np.array([np.max(values[a:b]) for a, b in itertools.pairwise(edges)])
    finite = np.isfinite(values)
    if not finite.any():
        return "·" * values.size
    low, high = values[finite].min(), values[finite].max()
    span = high - low if high > low else 1.0
    return "".join(
        _BLOCKS[round((v - low) / span * (len(_BLOCKS) - 1))] if np.isfinite(v) else "·"
        for v in values
    )


def _ratio_text(log10_ratio: float | None) -> str:
    if log10_ratio is None:
        return "g_T = 0"
    if log10_ratio == -math.inf:
        return "g_1 = 0"
    return f"{log10_ratio:.3g}"


@app.command()
def profile(
    model: Annotated[
        str,
        typer.Option(
            "--model", help="Module spec, e.g. lstm:input=8,hidden=64,layers=2,bidirectional=true."
        ),
    ],
    state_dict: Annotated[
        Path | None,
        typer.Option(
            "--state-dict", help="Weights: .pt (weights_only) or .safetensors state_dict."
        ),
    ] = None,
    input_file: Annotated[
        Path | None,
        typer.Option("--input", help="Input tensor: .pt or .npy, shaped as the module expects."),
    ] = None,
    random_input: Annotated[
        str | None,
        typer.Option("--random-input", help="Seeded N(0,1) input of batch B and length T: B,T."),
    ] = None,
    loss: Annotated[
        LossName, typer.Option("--loss", help="last: 0.5*sum(output[T]^2); sum: 0.5*sum(output^2).")
    ] = LossName.last,
    dtype: Annotated[DtypeName, typer.Option("--dtype", help="Compute in float32 or float64.")] = (
        DtypeName.float32
    ),
    seed: Annotated[int, typer.Option("--seed", help="Seed of the initialisation and inputs.")] = 0,
    train: Annotated[
        bool, typer.Option("--train", help="Train mode: dropout between layers is on.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Per-time-step gradients ||dL/dh_t|| of every layer and direction of a fused module."""
    import torch

    from rnngrad.profile import gradient_profile
    from rnngrad.spec import build_module, load_input, load_state_dict, parse_spec

    spec = parse_spec(model)
    if (input_file is None) == (random_input is None):
        raise InvalidInputError("give exactly one of --input FILE and --random-input B,T")
    torch_dtype = torch.float64 if dtype == DtypeName.float64 else torch.float32
    module = build_module(spec, seed=seed, dtype=torch_dtype)
    if state_dict is not None:
        load_state_dict(module, state_dict)
    module.train(train)
    if random_input is not None:
        parts = random_input.split(",")
        try:
            batch, steps = (int(p) for p in parts)
        except ValueError:
            raise InvalidInputError(
                f"--random-input must be B,T with two whole numbers, got {random_input!r}"
            ) from None
        if batch < 1 or steps < 1:
            raise InvalidInputError(f"--random-input needs B >= 1 and T >= 1, got {random_input!r}")
        generator = torch.Generator().manual_seed(seed)
        size = spec.arguments["input_size"]
        shape = (batch, steps, size) if spec.arguments["batch_first"] else (steps, batch, size)
        inputs = torch.randn(shape, generator=generator, dtype=torch_dtype)
    else:
        assert input_file is not None
        inputs = load_input(input_file, torch_dtype)
    result = gradient_profile(
        module, inputs, loss=loss.value, generator=torch.Generator().manual_seed(seed)
    )

    if as_json:
        from rnngrad.jsonout import dumps, profile_json

        print(dumps(profile_json(result, spec.text)))
        return

    console = Console()
    layout = result.layout
    table = Table(
        title=(
            f"{spec.text}  T = {result.steps}, B = {result.batch}, loss = {result.loss}, "
            f"{result.dtype}"
        ),
        caption="ratio: log10 ||dL/dh_1|| / ||dL/dh_T||; decay: nats per step towards t = 1; "
        "sat.: saturated share; profile: log10 ||dL/dh_t|| over t = 1..T (· = 0)",
    )
    table.add_column("layer", no_wrap=True)
    table.add_column("verdict", no_wrap=True, min_width=9)
    for header in ("ratio", "decay", "horizon", "sat."):
        table.add_column(header, justify="right", no_wrap=True)
    table.add_column("profile", no_wrap=True)
    for lp in result.layers:
        table.add_row(
            f"{lp.layer}" + (" rev" if lp.direction else ""),
            f"[{_VERDICT_STYLE[lp.verdict.label]}]{lp.verdict.label}[/]",
            _ratio_text(lp.log10_ratio),
            "—" if lp.decay_rate is None else f"{lp.decay_rate:.3g}",
            ">T" if lp.horizon is None else str(lp.horizon),
            f"{lp.saturation:.1%}",
            _sparkline(list(lp.log10_grad_norm), width=20),
        )
    console.print(table)
    worst = [lp for lp in result.layers if lp.verdict.label != "neither"]
    if worst:
        names = ", ".join(f"{lp.name} ({lp.verdict.label})" for lp in worst)
        console.print(f"Gradients that vanish or explode: {names}.")
    else:
        console.print(f"No layer of the {layout.kind} vanishes or explodes on this batch.")


@app.command()
def lyapunov(
    model: Annotated[
        str | None, typer.Option("--model", help="Module spec (unidirectional), as for profile.")
    ] = None,
    state_dict: Annotated[
        Path | None, typer.Option("--state-dict", help="Weights for --model (.pt or .safetensors).")
    ] = None,
    random: Annotated[
        int | None, typer.Option("--random", help="A random tanh network of N units instead.")
    ] = None,
    gain: Annotated[
        float | None, typer.Option("--gain", help="Gain g of --random: W_ij ~ N(0, g^2/N).")
    ] = None,
    steps: Annotated[
        int, typer.Option("--steps", help="Measured steps T after the warm-up.")
    ] = 1000,
    warmup: Annotated[int, typer.Option("--warmup", help="Steps run first and discarded.")] = 100,
    k: Annotated[
        int | None, typer.Option("--k", help="How many exponents (default: the state size).")
    ] = None,
    layer: Annotated[
        int | None,
        typer.Option("--layer", help="One layer's recurrence (0-based), driven by those below."),
    ] = None,
    reorth: Annotated[int, typer.Option("--reorth", help="Steps between QR factorisations.")] = 1,
    batch: Annotated[int, typer.Option("--batch", help="Trajectories from random states.")] = 4,
    seed: Annotated[int, typer.Option("--seed", help="Seeds weights, states and inputs.")] = 0,
    input_spec: Annotated[
        str, typer.Option("--input", help="zeros, random, or a .pt/.npy file of shape (T, D).")
    ] = "zeros",
    dtype: Annotated[DtypeName, typer.Option("--dtype", help="float64 (default) or float32.")] = (
        DtypeName.float64
    ),
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Lyapunov spectrum of a recurrent network along its trajectories (QR method)."""
    import torch

    from rnngrad.lyapunov import lyapunov_spectrum
    from rnngrad.meanfield import mean_field_lambda1
    from rnngrad.spec import build_module, load_input, load_state_dict, parse_spec

    torch_dtype = torch.float64 if dtype == DtypeName.float64 else torch.float32
    if (model is None) == (random is None):
        raise InvalidInputError("give either --model SPEC or --random N --gain G")
    mean_field = None
    if random is not None:
        if gain is None:
            raise InvalidInputError("--random N needs --gain G")
        if state_dict is not None:
            raise InvalidInputError("--state-dict applies to --model only")
        _finite(gain=gain)
        if random < 1 or random > 4096:
            raise InvalidInputError(f"--random N must be in 1..4096, got {random}")
        prediction = mean_field_lambda1(gain)
        mean_field = prediction.lambda1
        network = torch.nn.RNN(1, random, bias=False).to(torch_dtype)
        generator = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            weights = torch.randn(random, random, generator=generator, dtype=torch_dtype)
            network.get_parameter("weight_hh_l0").copy_(weights * (gain / math.sqrt(random)))
        module: torch.nn.Module = network
        label = f"random tanh network, N = {random}, g = {gain:g}"
    else:
        assert model is not None
        if gain is not None:
            raise InvalidInputError("--gain applies to --random only")
        spec = parse_spec(model)
        module = build_module(spec, seed=seed, dtype=torch_dtype)
        if state_dict is not None:
            load_state_dict(module, state_dict)
        label = spec.text
    inputs: Any = input_spec
    if input_spec not in ("zeros", "random"):
        inputs = load_input(Path(input_spec), torch_dtype)
    from rnngrad.dynamics import ModuleDynamics

    layers = describe_layers(module)
    if layer is not None and not 0 <= layer < layers:
        raise InvalidInputError(f"--layer must be in 0..{layers - 1}, got {layer}")
    system = (
        ModuleDynamics(module)
        if layer is None
        else ModuleDynamics(module, layers=layer + 1, only_top=True)
    )
    if layer is not None:
        label += f", layer {layer}"
    result = lyapunov_spectrum(
        system,
        steps=steps,
        warmup=warmup,
        k=k,
        reorth=reorth,
        batch=batch,
        seed=seed,
        inputs=inputs,
    )

    if as_json:
        from rnngrad.jsonout import dumps, lyapunov_json

        print(dumps(lyapunov_json(result, label, mean_field)))
        return

    console = Console()
    table = Table(
        title=f"Lyapunov spectrum: {label}",
        caption=(
            f"nats per step (÷ ln 10 for decades, ÷ ln 2 for bits); T = {result.steps} after "
            f"{result.warmup} warm-up steps, {result.batch} trajectories, QR every {result.reorth}"
        ),
    )
    for header in ("i", "lambda_i", "± 95%", "reliable"):
        table.add_column(header, justify="right", no_wrap=True)
    shown = result.exponents.size if result.exponents.size <= 12 else 8
    for i in range(shown):
        value = result.exponents[i]
        table.add_row(
            str(i + 1),
            f"{value:.5f}" if math.isfinite(value) else "-∞ (exact zero)",
            "—" if not math.isfinite(result.ci95[i]) else f"{result.ci95[i]:.5f}",
            "yes" if result.reliable[i] else "no",
        )
    if shown < result.exponents.size:
        table.add_row("…", f"({result.exponents.size - shown} more; --json gives all)", "", "")
    console.print(table)
    console.print(
        f"largest exponent, two nearby trajectories: {result.lambda1_two_trajectories:.5f}"
    )
    console.print(f"sum of the {result.exponents.size} exponents: {result.total:.5f}")
    dimension = result.kaplan_yorke_dim
    console.print(
        "Kaplan-Yorke dimension: "
        + ("undetermined from these k exponents" if dimension is None else f"{dimension:.3f}")
    )
    if mean_field is not None:
        console.print(f"mean-field lambda_1 (N -> infinity): {mean_field:.5f}")
    lambda1 = result.exponents[0]
    if lambda1 > 0:
        verdict = "chaotic: nearby trajectories separate and gradients can explode"
    elif lambda1 < -1e-3:
        verdict = "contracting: gradients through long spans vanish"
    else:
        verdict = "at the edge: gradients neither vanish nor explode exponentially"
    console.print(
        f"lambda_1 = {lambda1:.4f} nats per step: {verdict} "
        f"(a factor of {math.exp(lambda1):.4g} per step)."
    )


@app.command("train")
def train_command(
    task: Annotated[str, typer.Option("--task", help="adding, copy or order.")],
    seq_len: Annotated[int, typer.Option("--seq-len", help="Sequence length T.")],
    cell: Annotated[str, typer.Option("--cell", help="rnn (tanh), relu, lstm or gru.")],
    out: Annotated[Path, typer.Option("--out", help="Folder of the run (resumed if it exists).")],
    hidden: Annotated[int, typer.Option("--hidden", help="Hidden units.")] = 64,
    init: Annotated[
        str, typer.Option("--init", help="default, orthogonal, identity or radius:R.")
    ] = "default",
    orthogonal_constraint: Annotated[
        bool, typer.Option("--orthogonal-constraint", help="Keep W_hh orthogonal (rnn, relu).")
    ] = False,
    forget_bias: Annotated[
        float | None, typer.Option("--forget-bias", help="LSTM forget-gate bias.")
    ] = None,
    clip: Annotated[str, typer.Option("--clip", help="none, norm:V or value:V.")] = "norm:1.0",
    regularizer: Annotated[
        float,
        typer.Option("--regularizer", help="Weight of Pascanu et al.'s regulariser (rnn, relu)."),
    ] = 0.0,
    steps: Annotated[int, typer.Option("--steps", help="Step budget.")] = 3000,
    batch: Annotated[int, typer.Option("--batch", help="Batch size.")] = 50,
    lr: Annotated[float, typer.Option("--lr", help="Adam learning rate.")] = 1e-3,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the model and the data.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the JSON summary.")] = False,
) -> None:
    """Train a model on a long-memory task, with or without each remedy."""
    from rnngrad.lab.train import TrainConfig, train

    _finite(lr=lr, regularizer=regularizer)
    if forget_bias is not None:
        _finite(forget_bias=forget_bias)
    config = TrainConfig(
        task=task,
        seq_len=seq_len,
        cell=cell,
        hidden=hidden,
        init=init,
        orthogonal_constraint=orthogonal_constraint,
        forget_bias=forget_bias,
        clip=clip,
        regularizer=regularizer,
        steps=steps,
        batch=batch,
        lr=lr,
        seed=seed,
    )
    config.validate()
    _writable(out)
    if as_json:
        result = train(config, out)
        from rnngrad.jsonout import dumps

        print(dumps(result.summary()))
        return
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    console = Console(stderr=True)
    with Progress(
        TextColumn("[bold]train[/]"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} steps, loss {task.fields[loss]}"),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    ) as bar:
        handle = bar.add_task("train", total=config.steps, loss="…")

        def advance(step: int, total: int, loss: float) -> None:
            bar.update(handle, completed=step, loss=f"{loss:.4g}")

        result = train(config, out, progress=advance)
    summary = result.summary()
    state = "[bold green]solved[/]" if result.solved else "[bold red]not solved[/]"
    console = Console()
    console.print(
        f"{config.task} T={config.seq_len}, {config.cell}, init {config.init}, clip {config.clip}: "
        f"{state}"
        + (f" at step {result.solved_at}" if result.solved_at else f" in {result.steps} steps")
    )
    console.print(
        f"held-out loss {summary['final_loss']} (baseline {result.baseline_loss:.4g}), "
        f"skipped steps {result.skipped_steps}, clipped steps {result.clipped_steps}, "
        f"{result.wall_s:.1f} s"
    )
    console.print(f"results in {out}")


def _writable(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / ".rnngrad-write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as error:
        raise InvalidInputError(
            f"{folder}: cannot be written ({error.strerror or error})"
        ) from None


@app.command()
def sweep(
    grid: Annotated[
        Path | None, typer.Argument(help="The TOML file of the grid (not needed with --summary).")
    ] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Folder of the sweep.")] = None,
    scheduler: Annotated[
        str | None, typer.Option("--scheduler", help="A Dask scheduler address.")
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option("--workers", help="Parallel workers (a Dask LocalCluster of N workers)."),
    ] = None,
    summary: Annotated[
        Path | None, typer.Option("--summary", help="Summarise the sweep in this folder.")
    ] = None,
) -> None:
    """Run a grid of training runs in parallel, resumably; or summarise one."""
    from rnngrad.lab.sweep import load_sweep, run_sweep, sweep_summary

    if summary is not None:
        rows = sweep_summary(summary)
        console = Console()
        table = Table(title=f"sweep {summary}: which configurations solved it")
        for header in (
            "task",
            "T",
            "cell",
            "init",
            "clip",
            "solved",
            "median steps",
            "median loss",
        ):
            table.add_column(header, justify="right" if header in ("T", "solved") else "left")
        for row in rows:
            table.add_row(
                str(row["task"]),
                str(row["seq_len"]),
                str(row["cell"]) + (" +orth" if row.get("orthogonal_constraint") else ""),
                str(row["init"]),
                str(row["clip"]),
                f"{row['solved']}/{row['runs']}",
                "—" if row["median_steps_to_solve"] is None else str(row["median_steps_to_solve"]),
                "—" if row["median_final_loss"] is None else f"{row['median_final_loss']:.4g}",
            )
        console.print(table)
        return
    if grid is None or out is None:
        raise InvalidInputError("give GRID.toml and --out DIR (or --summary DIR)")
    if workers is not None and workers < 1:
        raise InvalidInputError(f"--workers must be >= 1, got {workers}")
    parsed = load_sweep(grid)
    _writable(out)
    from rnngrad.lab.sweep import new_cells

    changed = new_cells(parsed, out)
    if changed:
        Console(stderr=True).print(f"the grid changed: {changed} new cells will run")
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    console = Console(stderr=True)
    with Progress(
        TextColumn("[bold]sweep[/]"), BarColumn(), MofNCompleteColumn(), TextColumn("runs"),
        console=console,
    ) as bar:  # fmt: skip
        handle = bar.add_task("sweep", total=len(parsed.configs))

        def finished(done: int, total: int, summary: dict[str, Any] | None) -> None:
            bar.update(handle, completed=done)

        results = run_sweep(
            parsed,
            out,
            scheduler=scheduler,
            workers=workers,
            use_dask=scheduler is None and workers is not None,
            on_finish=finished,
        )
    solved = sum(1 for r in results if r["solved"])
    Console().print(
        f"{len(results)}/{len(parsed.configs)} runs finished, {solved} solved; "
        f"results in {out / 'results.parquet'} and {out / 'results.csv'}"
    )


def describe_layers(module: Any) -> int:
    """The number of layers of a recurrent module."""
    from rnngrad.cells import describe_module

    return describe_module(module).num_layers


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: one line on stderr and exit 2 for bad input."""
    command = typer.main.get_command(app)
    if argv is None:
        argv = sys.argv[1:]
    if not argv:
        argv = ["--help"]
    try:
        status = command.main(args=argv, prog_name="rnngrad", standalone_mode=False)
    except RnngradError as error:
        _fail(str(error))
    except BrokenPipeError:
        raise SystemExit(0) from None
    except KeyboardInterrupt:
        print("rnngrad: interrupted; finished work is kept and a rerun resumes", file=sys.stderr)
        raise SystemExit(130) from None
    except Exception as error:
        # Typer's command-line parser (its own or click's, by version) raises usage
        # errors that carry format_message() and exit_code, and Exit/Abort.
        if hasattr(error, "format_message") and hasattr(error, "exit_code"):
            _fail(str(error.format_message()).replace("\n", " "))
        if type(error).__name__ == "Exit" and hasattr(error, "exit_code"):
            raise SystemExit(error.exit_code) from None
        if type(error).__name__ == "Abort":
            print("rnngrad: aborted", file=sys.stderr)
            raise SystemExit(130) from None
        raise
    raise SystemExit(status if isinstance(status, int) else 0)


if __name__ == "__main__":
    main()
