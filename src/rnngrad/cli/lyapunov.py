"""``rnngrad lyapunov``: the Lyapunov spectrum of a model, a random tanh network or a
random rate network, with its per-unit summaries and the mean-field prediction."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from rich.console import Console
from rich.table import Table

from rnngrad.cli._common import (
    DeviceOption,
    DtypeName,
    _finite,
    app,
    checked_seed,
    stderr_progress,
)
from rnngrad.cli._models import (
    MODEL_HELP,
    ModelArgsOption,
    ModuleOption,
    StateDictOption,
    load_model,
)
from rnngrad.cli._output import emit_json
from rnngrad.errors import InvalidInputError
from rnngrad.show.display import number


def _reorth(text: str) -> int | Literal["auto"]:
    """``--reorth``: ``auto`` or a whole number (checked by lyapunov_spectrum)."""
    if text == "auto":
        return "auto"
    try:
        return int(text)
    except ValueError:
        raise InvalidInputError(f"--reorth must be auto or a whole number, got {text!r}") from None


@app.command()
def lyapunov(
    model: Annotated[str | None, typer.Option("--model", help=MODEL_HELP)] = None,
    model_args: ModelArgsOption = None,
    module: ModuleOption = None,
    state_dict: StateDictOption = None,
    random: Annotated[
        int | None, typer.Option("--random", help="A random tanh network of N units instead.")
    ] = None,
    gain: Annotated[
        float | None, typer.Option("--gain", help="Gain g of --random: W_ij ~ N(0, g^2/N).")
    ] = None,
    delta: Annotated[
        float | None,
        typer.Option(
            "--delta",
            help="--random as a rate network x' = (1 - d) x + d W tanh(x), d = dt/tau in (0, 1].",
        ),
    ] = None,
    steps: Annotated[
        int, typer.Option("--steps", help="Measured steps T after the warm-up.")
    ] = 1000,
    warmup: Annotated[
        int | None,
        typer.Option(
            "--warmup", help="Steps run first and discarded (default: as many as --steps)."
        ),
    ] = None,
    k: Annotated[
        int | None, typer.Option("--k", help="How many exponents (default: the state size).")
    ] = None,
    layer: Annotated[
        int | None,
        typer.Option("--layer", help="One layer's recurrence (0-based), driven by those below."),
    ] = None,
    direction: Annotated[
        int,
        typer.Option(
            "--direction", help="0, or 1: the reverse direction of a bidirectional module."
        ),
    ] = 0,
    reorth: Annotated[
        str,
        typer.Option(
            "--reorth",
            help="auto (factor when rounding could start to matter) or steps between QR "
            "factorisations.",
        ),
    ] = "auto",
    qr: Annotated[
        str, typer.Option("--qr", help="householder (LAPACK) or cholesky2 (CholeskyQR2).")
    ] = "householder",
    batch: Annotated[int, typer.Option("--batch", help="Trajectories from random states.")] = 4,
    seed: Annotated[
        int, typer.Option("--seed", help="Seeds weights, states and inputs.", callback=checked_seed)
    ] = 0,
    input_spec: Annotated[
        str,
        typer.Option(
            "--input",
            help="zeros, random, or a .pt/.npy file of shape (T, D): the recurrent module's "
            "own input features.",
        ),
    ] = "zeros",
    dtype: Annotated[DtypeName, typer.Option("--dtype", help="float64 (default) or float32.")] = (
        DtypeName.float64
    ),
    device: DeviceOption = "cpu",
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Lyapunov spectrum of a recurrent network along its trajectories (QR method)."""
    import torch

    from rnngrad.io.spec import load_input
    from rnngrad.lyapunov.spectrum import lyapunov_spectrum
    from rnngrad.theory.meanfield import mean_field_lambda1

    torch_dtype = torch.float64 if dtype == DtypeName.float64 else torch.float32
    if (model is None) == (random is None):
        raise InvalidInputError("give either --model SPEC or --random N --gain G")
    mean_field = None
    if random is not None:
        if gain is None:
            raise InvalidInputError("--random N needs --gain G")
        for flag, value in (
            ("--state-dict", state_dict), ("--model-args", model_args), ("--module", module),
        ):  # fmt: skip
            if value is not None:
                raise InvalidInputError(f"{flag} applies to --model only")
        _finite(gain=gain)
        if random < 1 or random > 4096:
            raise InvalidInputError(f"--random N must be in 1..4096, got {random}")
        network: torch.nn.Module
        if delta is not None:
            from rnngrad._checks import check_delta
            from rnngrad.rate import random_rate_network
            from rnngrad.theory.leaky_meanfield import leaky_mean_field_lambda1

            _finite(delta=delta)
            check_delta(delta)
            mean_field = leaky_mean_field_lambda1(gain, delta).lambda1
            network = random_rate_network(random, gain, delta, seed=seed, dtype=torch_dtype)
            label = f"random rate network, N = {random}, g = {gain:g}, delta = {delta:g}"
        else:
            mean_field = mean_field_lambda1(gain).lambda1
            from rnngrad.lyapunov.spectrum import random_tanh_network

            network = random_tanh_network(random, gain, seed=seed, dtype=torch_dtype)
            label = f"random tanh network, N = {random}, g = {gain:g}"
    else:
        assert model is not None
        if gain is not None:
            raise InvalidInputError("--gain applies to --random only")
        if delta is not None:
            raise InvalidInputError("--delta applies to --random only")
        loaded = load_model(model, model_args, state_dict, module, seed=seed, dtype=torch_dtype)
        network = loaded.model
        label = loaded.label + (f" ({module})" if module else "")
    inputs: Any = input_spec
    if input_spec not in ("zeros", "random"):
        inputs = load_input(Path(input_spec), torch_dtype)
    from rnngrad.devices import resolve_device

    where = resolve_device(device)
    network.to(where)  # the inputs follow the network's device
    from rnngrad.cells import describe_module, find_recurrent_module
    from rnngrad.rate import RateRNN

    layers = (
        1
        if isinstance(network, RateRNN)
        else describe_module(find_recurrent_module(network, module)[1]).num_layers
    )
    if layer is not None and not 0 <= layer < layers:
        raise InvalidInputError(f"--layer must be in 0..{layers - 1}, got {layer}")
    from rich.progress import BarColumn, TextColumn, TimeRemainingColumn

    with stderr_progress(
        TextColumn("[bold]lyapunov[/]"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
        TimeRemainingColumn(),
    ) as bar:  # fmt: skip
        handle = bar.add_task("steps", total=steps)

        def advance(t: int, total: int) -> None:
            bar.update(handle, completed=t)

        result = lyapunov_spectrum(
            network,
            steps=steps,
            warmup=warmup,
            k=k,
            reorth=_reorth(reorth),
            qr=qr,  # type: ignore[arg-type]
            batch=batch,
            seed=seed,
            inputs=inputs,
            module=module,
            layer=layer,
            direction=direction,
            dtype=torch_dtype,
            progress=advance,
        )
    if result.layer is not None and (layer is not None or result.direction):
        label += f", layer {result.layer}"
    if result.direction:
        label += ", reverse direction"

    if as_json:
        from rnngrad.jsonout import dumps, lyapunov_json

        emit_json(dumps(lyapunov_json(result, label, mean_field)))
        return

    console = Console()
    table = Table(
        title=f"Lyapunov spectrum: {label}",
        caption=(
            f"nats per step (÷ ln 10 for decades, ÷ ln 2 for bits); T = {result.steps} after "
            f"{result.warmup} warm-up steps, {result.batch} trajectories, "
            f"{result.factorisations} QR factorisations (reorth {result.reorth}, {result.qr})"
        ),
    )
    for header in ("i", "lambda_i", "± 95%", "reliable"):
        table.add_column(header, justify="right", no_wrap=True)
    shown = result.exponents.size if result.exponents.size <= 12 else 8
    for i in range(shown):
        value = result.exponents[i]
        table.add_row(
            str(i + 1),
            f"{value:.5f}" if math.isfinite(value) else "-∞ (exact zero volume)",
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
    summaries = result.summaries
    if summaries is not None:
        console.print(
            f"per unit: unstable fraction {summaries.unstable_fraction:.3f}, entropy rate "
            f"{number(summaries.entropy_rate_per_unit)} nats per step, Kaplan-Yorke dimension "
            f"{number(summaries.kaplan_yorke_per_unit)}, mean exponent "
            f"{number(summaries.mean_exponent)}"
        )
        if summaries.halves is not None:
            first, second = summaries.halves
            console.print(
                "split halves: entropy rate per unit "
                f"{number(first.entropy_rate_per_unit)} and "
                f"{number(second.entropy_rate_per_unit)}, mean exponent "
                f"{number(first.mean_exponent)} and {number(second.mean_exponent)}"
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
