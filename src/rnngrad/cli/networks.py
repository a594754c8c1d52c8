"""``rnngrad profile`` and ``rnngrad lyapunov``: analyses of PyTorch models."""

from __future__ import annotations

import itertools
import math
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from rnngrad.cli._common import (
    _VERDICT_STYLE,
    DeviceOption,
    DtypeName,
    app,
    checked_seed,
)
from rnngrad.cli._models import (
    MODEL_HELP,
    LossName,
    ModelArgsOption,
    ModuleOption,
    ProfileRouteName,
    StateDictOption,
    TargetOption,
    choose_loss,
    load_lengths,
    load_model,
    load_model_inputs,
)
from rnngrad.cli._output import emit_json
from rnngrad.errors import InvalidInputError

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


def _random_input(text: str, spec: Any, seed: int, dtype: Any) -> Any:
    import torch

    parts = text.split(",")
    try:
        batch, steps = (int(p) for p in parts)
    except ValueError:
        raise InvalidInputError(
            f"--random-input must be B,T with two whole numbers, got {text!r}"
        ) from None
    if batch < 1 or steps < 1:
        raise InvalidInputError(f"--random-input needs B >= 1 and T >= 1, got {text!r}")
    from rnngrad.limits import check_memory

    size = spec.arguments["input_size"]
    check_memory(
        float(batch) * steps * size * torch.tensor([], dtype=dtype).element_size(),
        f"--random-input {text}",
    )
    generator = torch.Generator().manual_seed(seed)
    shape = (batch, steps, size) if spec.arguments["batch_first"] else (steps, batch, size)
    return torch.randn(shape, generator=generator, dtype=dtype)


@app.command()
def profile(
    model: Annotated[str, typer.Option("--model", help=MODEL_HELP)],
    model_args: ModelArgsOption = None,
    module: ModuleOption = None,
    state_dict: StateDictOption = None,
    input_files: Annotated[
        list[Path] | None,
        typer.Option(
            "--input",
            help="Input: .pt or .npy, shaped as the model expects (int64 token ids for a model "
            "with an embedding); repeat it for a model that takes several: model(x1, x2, ...).",
        ),
    ] = None,
    random_input: Annotated[
        str | None,
        typer.Option("--random-input", help="Seeded N(0,1) input of batch B and length T: B,T."),
    ] = None,
    lengths_file: Annotated[
        Path | None,
        typer.Option(
            "--lengths",
            help="int64 (B,) sequence lengths that pack the input of a spec's module (a model "
            "of your own takes its lengths as one of its --input files).",
        ),
    ] = None,
    target_file: TargetOption = None,
    loss: Annotated[
        LossName,
        typer.Option(
            "--loss",
            help="last: 0.5*sum(output[T]^2); sum: 0.5*sum(output^2) (both on the recurrent "
            "module's output); cross-entropy, mse: on the model's own output with --target.",
        ),
    ] = LossName.last,
    dtype: Annotated[DtypeName, typer.Option("--dtype", help="Compute in float32 or float64.")] = (
        DtypeName.float32
    ),
    seed: Annotated[
        int,
        typer.Option(
            "--seed", help="Seed of the initialisation and inputs.", callback=checked_seed
        ),
    ] = 0,
    train: Annotated[
        bool, typer.Option("--train", help="Train mode: dropout between layers is on.")
    ] = False,
    device: DeviceOption = "cpu",
    route: Annotated[
        ProfileRouteName,
        typer.Option(
            "--route",
            help="How a fused module's backward recursion runs: recursion (a loop over time; "
            "fastest on a CPU), fused (the module's own fused backward kernel; no per-step "
            "launches), auto (fused on a GPU). Same numbers to rounding.",
        ),
    ] = ProfileRouteName.auto,
    sensitivity: Annotated[
        bool,
        typer.Option(
            "--sensitivity",
            help="Also the curse of memory: per parameter of the recurrence ||dh_T/dtheta|| "
            "and ||dL/dtheta|| (a fused module, a diagonal or selective recurrence).",
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Per-time-step gradients ||dL/dh_t|| of every layer and direction of a recurrent model."""
    import torch

    from rnngrad.profile.front import gradient_profile

    if (not input_files) == (random_input is None):
        raise InvalidInputError("give exactly one of --input FILE and --random-input B,T")
    torch_dtype = torch.float64 if dtype == DtypeName.float64 else torch.float32
    loaded = load_model(model, model_args, state_dict, module, seed=seed, dtype=torch_dtype)
    loaded.model.train(train)
    if random_input is not None:
        if loaded.is_user_model:
            raise InvalidInputError(
                "--random-input needs a spec (it knows the input size); give a model of your "
                "own its input with --input FILE"
            )
        inputs = [_random_input(random_input, loaded.spec, seed, torch_dtype)]
    else:
        assert input_files
        inputs = load_model_inputs(loaded, input_files, torch_dtype)
    arguments: Any = tuple(inputs) if len(inputs) > 1 else inputs[0]
    lengths = None
    if lengths_file is not None:
        if loaded.is_user_model:
            raise InvalidInputError(
                "--lengths packs the input of a spec's module; a model of your own takes its "
                "lengths as a second --input (model(x, lengths)) and packs them itself"
            )
        batch_axis = 0 if loaded.spec.arguments["batch_first"] else 1
        if inputs[0].dim() != 3:
            raise InvalidInputError("--lengths needs a batched input (three axes)")
        lengths = load_lengths(lengths_file, int(inputs[0].shape[batch_axis]))
    from rnngrad.devices import resolve_device

    target_device = resolve_device(device)
    if target_device.type != "cpu":
        loaded.model.to(target_device)
        moved = [t.to(target_device) for t in inputs]
        arguments = tuple(moved) if len(moved) > 1 else moved[0]
    if sensitivity and lengths is not None:
        raise InvalidInputError("--sensitivity takes padded inputs: drop --lengths")
    profile_loss = choose_loss(loss, target_file, torch_dtype)
    result = gradient_profile(
        loaded.model,
        arguments,
        loss=profile_loss,
        module=module,
        lengths=lengths,
        generator=torch.Generator().manual_seed(seed),
        route=route.value,
    )
    memory = None
    if sensitivity:
        from rnngrad.profile.sensitivity import memory_sensitivity

        memory = memory_sensitivity(
            loaded.model, arguments, loss=profile_loss, module=module, seed=seed
        )
    spec_text = loaded.label
    if as_json:
        from rnngrad.jsonout import dumps, profile_json, sensitivity_json

        payload = profile_json(result, spec_text)
        if memory is not None:
            payload["memory_sensitivity"] = sensitivity_json(memory)
        emit_json(dumps(payload))
        return

    console = Console()
    layout = result.layout
    where = f" ({result.module_name})" if result.module_name else ""
    packed = ", packed: lengths " + (
        f"{int(result.lengths.min())}..{int(result.lengths.max())}" if result.packed else ""
    )
    table = Table(
        title=(
            f"{spec_text}{where}  T = {result.steps}, B = {result.batch}, loss = {result.loss}, "
            f"{result.dtype}"
            + (packed if result.packed else "")
            + (f", {result.calls} calls (step by step)" if result.calls > 1 else "")
            + (f" (the model runs in {result.source_dtype})" if result.source_dtype else "")
        ),
        caption="verdict, ratio, decay, horizon: of the gradient carried back from the last "
        "step the loss reaches (over h and c for LSTM), in each direction's backpropagation "
        "order (forward: from t = T back to t = 1; rev: from t = 1 to t = T); ratio: "
        "log10 |g first| / |g last|; decay: nats per step; sat.: saturated share; profile: "
        "the total log10 ||dL/dh_t|| (where the loss enters) over t = 1..T (· = 0)",
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
            f"{lp.saturation:.1%}" if math.isfinite(lp.saturation) else "—",
            _sparkline(list(lp.log10_grad_norm), width=20),
        )
    console.print(table)
    if result.precision_note:
        console.print(f"Note: {result.precision_note}.")
    worst = [lp for lp in result.layers if lp.verdict.label != "neither"]
    if worst:
        names = ", ".join(f"{lp.name} ({lp.verdict.label})" for lp in worst)
        console.print(f"Gradients that vanish or explode: {names}.")
    else:
        console.print(f"No layer of the {layout.kind} vanishes or explodes on this batch.")
    if memory is not None:
        from rnngrad.cli._sensitivity import print_sensitivity

        print_sensitivity(console, memory)
