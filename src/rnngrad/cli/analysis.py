"""``rnngrad scalar`` and ``rnngrad spectrum``: the textbook analyses."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from rnngrad.cli._common import (
    _SUMMARY_ROWS,
    _VERDICT_STYLE,
    ExampleName,
    _activation,
    _finite,
    _fmt,
    _rows_to_show,
    app,
    checked_seed,
    stderr_progress,
)
from rnngrad.cli._output import emit_json
from rnngrad.errors import InvalidInputError


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
        typer.Option(
            "--x",
            help="Inputs x_1..x_T, comma-separated; by default the textbook example's three.",
            show_default="1,0.5,-0.3",
        ),
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
    from rnngrad.io.files import parse_float_list
    from rnngrad.theory.scalar import TEXTBOOK_EXAMPLE, scalar_chain_rule, scalar_inputs

    _activation(activation)
    _finite(a=a, b=b, c=c, d=d, e=e, h0=h0)
    if x is not None and (steps is not None or input_seed is not None):
        raise InvalidInputError(
            "give the inputs either with --x or with --steps/--input-seed, not both"
        )
    inputs: Any
    if x is not None:
        inputs = parse_float_list(x, "--x")
    elif steps is not None:
        if as_json:
            from rnngrad.limits import SCALAR_JSON_BYTES_PER_STEP, check_memory, check_whole

            check_whole(steps, "--steps")
            check_memory(steps * SCALAR_JSON_BYTES_PER_STEP, f"--json over T = {steps} steps")
        inputs = scalar_inputs(steps, input_seed)
    elif input_seed is not None:
        raise InvalidInputError("--input-seed needs --steps T")
    else:
        inputs = list(TEXTBOOK_EXAMPLE["x"])  # type: ignore[arg-type]
    result = scalar_chain_rule(inputs, a=a, b=b, c=c, d=d, e=e, h0=h0, activation=activation)

    if as_json:
        from rnngrad.jsonout import dumps, scalar_json

        emit_json(dumps(scalar_json(result)))
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
    seed: Annotated[
        int, typer.Option("--seed", help="Seed of the built-in example.", callback=checked_seed)
    ] = 0,
    activation: Annotated[
        str, typer.Option("--activation", help="Whose gamma = sup|phi'| enters the verdict.")
    ] = "tanh",
    max_steps: Annotated[
        int | None,
        typer.Option(
            "--max-steps",
            help="Largest power k examined for transient growth (default 2000, fewer for "
            "N above about 530; at most 100000).",
        ),
    ] = None,
    delta: Annotated[
        float,
        typer.Option(
            "--delta",
            help="W_hh of a rate network x' = (1 - d) x + d (W tanh(x) + ...): its step "
            "(1 - d) I + d W diag(phi'), d = dt/tau in (0, 1].",
        ),
    ] = 1.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Eigen- and singular values of W_hh, transient growth, and both criteria's verdict."""
    from rnngrad.io.files import load_array
    from rnngrad.theory.spectrum import example_matrix, recurrent_spectrum

    _activation(activation)
    _finite(radius=radius, delta=delta)
    from rnngrad._checks import check_delta

    check_delta(delta)
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
        from rnngrad.limits import check_seed

        check_seed(seed, "--seed")
        if hidden > 4096:
            raise InvalidInputError(
                f"--hidden must be <= 4096 for a built-in example, got {hidden}"
            )
        matrix = example_matrix(kind, hidden=hidden, radius=radius, seed=seed)  # type: ignore[arg-type]
        source = f"example {kind} (hidden={hidden}, radius={radius:g}, seed={seed})"
    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn

    with stderr_progress(
        TextColumn("[bold]spectrum[/] powers of W"), BarColumn(), MofNCompleteColumn()
    ) as bar:  # fmt: skip
        handle = bar.add_task("powers", total=None)

        def advance(k: int, total: int) -> None:
            bar.update(handle, completed=k, total=total)

        result = recurrent_spectrum(
            matrix, activation, max_steps=max_steps, progress=advance, delta=delta
        )

    if as_json:
        from rnngrad.jsonout import dumps, spectrum_json

        emit_json(dumps(spectrum_json(result, source)))
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
