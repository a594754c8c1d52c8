"""Reading weights safely: formats, keys, and refusal to unpickle."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.numpy import save_file

from rnngrad import InvalidInputError, UnsafeFileError, WeightFileError, load_array
from rnngrad.io.files import parse_float_list


class Payload:
    """An arbitrary object: only unpickling could rebuild it."""


W = np.arange(9, dtype=np.float32).reshape(3, 3) / 10


def test_npy(tmp_path: Path) -> None:
    path = tmp_path / "w.npy"
    np.save(path, W)
    loaded = load_array(path)
    assert loaded.dtype == np.float64
    np.testing.assert_array_equal(loaded, W.astype(np.float64))


def test_pt_tensor_and_state_dict(tmp_path: Path) -> None:
    torch.save(torch.from_numpy(W), tmp_path / "w.pt")
    np.testing.assert_array_equal(load_array(tmp_path / "w.pt"), W)
    rnn = torch.nn.RNN(2, 3)
    torch.save(rnn.state_dict(), tmp_path / "rnn.pt")
    loaded = load_array(tmp_path / "rnn.pt", key="weight_hh_l0")
    np.testing.assert_array_equal(loaded, rnn.weight_hh_l0.detach().double().numpy())
    with pytest.raises(WeightFileError, match="choose one with --key"):
        load_array(tmp_path / "rnn.pt")
    with pytest.raises(WeightFileError, match="weight_hh_l0"):
        load_array(tmp_path / "rnn.pt", key="nope")


def test_safetensors(tmp_path: Path) -> None:
    path = tmp_path / "w.safetensors"
    save_file({"weight_hh_l0": W, "bias": np.zeros(3, dtype=np.float32)}, str(path))
    np.testing.assert_array_equal(load_array(path, key="weight_hh_l0"), W)
    with pytest.raises(WeightFileError, match="bias, weight_hh_l0"):
        load_array(path)


def test_object_npy_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "objects.npy"
    np.save(path, np.array([Payload()], dtype=object), allow_pickle=True)
    with pytest.raises(UnsafeFileError, match="refusing to unpickle"):
        load_array(path)


def test_pickled_pt_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "objects.pt"
    torch.save({"w": Payload()}, path)
    with pytest.raises(UnsafeFileError, match="refusing to unpickle"):
        load_array(path)


def test_plain_pickle_is_not_a_supported_format(tmp_path: Path) -> None:
    path = tmp_path / "w.pkl"
    path.write_bytes(pickle.dumps(W))
    with pytest.raises(WeightFileError, match="unsupported file type"):
        load_array(path)


@pytest.mark.parametrize("name", ["garbage.npy", "garbage.pt", "garbage.safetensors"])
def test_corrupt_files(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(b"this is not a weight file")
    with pytest.raises(WeightFileError):
        load_array(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(WeightFileError, match="no such file"):
        load_array(tmp_path / "absent.npy")


def test_complex_array_is_refused(tmp_path: Path) -> None:
    np.save(tmp_path / "c.npy", np.eye(2) * 1j)
    with pytest.raises(InvalidInputError, match="real"):
        load_array(tmp_path / "c.npy")


def test_parse_float_list() -> None:
    assert parse_float_list("1,0.5,-0.3") == [1.0, 0.5, -0.3]
    assert parse_float_list(" 2 ") == [2.0]
    for bad in ["", "1,,2", "1,a", ","]:
        with pytest.raises(InvalidInputError):
            parse_float_list(bad)
