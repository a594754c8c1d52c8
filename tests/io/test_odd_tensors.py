"""Tensors that are not plain numbers of the compute dtype: float64 values beyond
float32's range (checked after the cast), float8 (widened), meta and sparse tensors
(refused), in weights, inputs and targets, through the command line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from rnngrad.io.spec import build_module, parse_spec
from tests.cli.test_cli import run, strict_json

SPEC = "gru:input=3,hidden=4"


def one_line(args: list[str], fragment: str) -> None:
    done = run(*args)
    assert done.returncode == 2, (done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and fragment in lines[0], done.stderr
    assert done.stdout == ""


def _state(dtype: torch.dtype = torch.float64) -> dict[str, torch.Tensor]:
    module = build_module(parse_spec(SPEC), seed=0, dtype=dtype)
    return {key: value.clone() for key, value in module.state_dict().items()}


def test_values_beyond_float32_are_refused_after_the_cast(tmp_path: Path) -> None:
    """Regression: float64 weights, inputs or targets beyond float32's range passed the
    finiteness check (run before the cast), and the float32 profile then read a false
    "exploding" with every gradient null. Now the check runs after the cast, and the
    same files are accepted in float64."""
    state = _state()
    state["weight_hh_l0"][0, 0] = 1e300
    save_file(state, str(tmp_path / "big.safetensors"))
    x = np.random.default_rng(0).standard_normal((5, 2, 3))
    np.save(tmp_path / "x.npy", x)
    big_x = x.copy()
    big_x[0, 0, 0] = 1e300
    np.save(tmp_path / "big_x.npy", big_x)
    np.save(tmp_path / "big_target.npy", np.full((5, 2, 4), 1e300))
    base = ["profile", "--model", SPEC]
    weights = str(tmp_path / "big.safetensors")
    one_line([*base, "--state-dict", weights, "--input", str(tmp_path / "x.npy")],
             "weight_hh_l0 holds values beyond float32's range")  # fmt: skip
    one_line([*base, "--input", str(tmp_path / "big_x.npy")], "beyond float32's range")
    one_line([*base, "--input", str(tmp_path / "x.npy"), "--loss", "mse", "--target",
              str(tmp_path / "big_target.npy")], "the target holds values beyond")  # fmt: skip
    done = run(*base, "--state-dict", str(tmp_path / "big.safetensors"), "--input",
               str(tmp_path / "x.npy"), "--dtype", "float64", "--json")  # fmt: skip
    assert done.returncode == 0, done.stderr
    strict_json(done.stdout)


def test_float8_weights_are_widened_to_float32(tmp_path: Path) -> None:
    """A float8 state dict loads (widened exactly to float32): the profile equals the one
    of the same float8-rounded weights saved as float32."""
    state = _state(torch.float32)
    rounded = {key: value.to(torch.float8_e4m3fn) for key, value in state.items()}
    torch.save(rounded, tmp_path / "f8.pt")
    torch.save({k: v.to(torch.float32) for k, v in rounded.items()}, tmp_path / "f32.pt")
    x = np.random.default_rng(1).standard_normal((6, 2, 3)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    payloads = []
    for name in ("f8.pt", "f32.pt"):
        done = run("profile", "--model", SPEC, "--state-dict", str(tmp_path / name), "--input",
                   str(tmp_path / "x.npy"), "--json")  # fmt: skip
        assert done.returncode == 0, done.stderr
        payloads.append(strict_json(done.stdout)["layers"][0]["grad_norm"])
    assert payloads[0] == payloads[1]


@pytest.mark.parametrize("kind", ["meta", "sparse"])
def test_meta_and_sparse_tensors_are_refused_in_one_line(tmp_path: Path, kind: str) -> None:
    state: dict[str, torch.Tensor] = _state(torch.float32)
    if kind == "meta":
        state["weight_hh_l0"] = torch.empty(12, 4, device="meta")
        fragment = "weight_hh_l0 is a meta tensor"
    else:
        state["weight_hh_l0"] = state["weight_hh_l0"].to_sparse()
        fragment = "weight_hh_l0 is a sparse_coo tensor"
    torch.save(state, tmp_path / "odd.pt")
    one_line(["profile", "--model", SPEC, "--state-dict", str(tmp_path / "odd.pt"),
              "--random-input", "2,5"], fragment)  # fmt: skip
    torch.save(state["weight_hh_l0"], tmp_path / "odd_input.pt")
    one_line(["profile", "--model", SPEC, "--input", str(tmp_path / "odd_input.pt")],
             f"the tensor is a {'meta' if kind == 'meta' else 'sparse_coo'} tensor")  # fmt: skip
    one_line(["spectrum", "--weights", str(tmp_path / "odd.pt"), "--key", "weight_hh_l0"],
             "weight_hh_l0 is a")  # fmt: skip
