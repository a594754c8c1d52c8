"""Whole models of the user's own on the command line: import, build, strict weights,
token ids, targets and losses on the model's head, and every refusal in one line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from rnngrad import gradient_profile
from rnngrad.errors import InvalidInputError
from rnngrad.io.usermodel import ModelLoadError, build_user_model, is_user_model
from tests.cli.test_cli import run, strict_json
from tests.examples_loader import EXAMPLES, load_example

CLASSIFIER = f"{EXAMPLES / 'classifier.py'}:Classifier"
ARGS = '{"vocab": 30, "embed": 5, "hidden": 6}'


@pytest.fixture(scope="module")
def classifier_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A classifier's state_dict, token ids, lengths and labels, as a user saves them."""
    folder = tmp_path_factory.mktemp("classifier")
    torch.manual_seed(4)
    model = load_example("classifier").Classifier(vocab=30, embed=5, hidden=6)
    tokens = torch.randint(0, 30, (5, 12), generator=torch.Generator().manual_seed(5))
    files = {
        "weights": folder / "classifier.pt",
        "tokens": folder / "tokens.npy",
        "labels": folder / "labels.npy",
        "lengths": folder / "lengths.npy",
        "submodule": folder / "lstm_only.pt",
        "wrapped": folder / "wrapped.pt",
        "bad_labels": folder / "bad_labels.npy",
        "float_labels": folder / "float_labels.npy",
    }
    torch.save(model.state_dict(), files["weights"])
    torch.save(model.lstm.state_dict(), files["submodule"])
    torch.save({f"module.{k}": v for k, v in model.state_dict().items()}, files["wrapped"])
    np.save(files["tokens"], tokens.numpy())
    np.save(files["labels"], np.array([0, 3, 1, 2, 0], dtype=np.int64))
    np.save(files["lengths"], np.array([12, 4, 7, 1, 9], dtype=np.int64))
    np.save(files["bad_labels"], np.array([0, 3, 1, 9, 0], dtype=np.int64))
    np.save(files["float_labels"], np.zeros(5, dtype=np.float32))
    return files


def expected_profile(files: dict[str, Path], lengths: bool = False):  # type: ignore[no-untyped-def]
    model = load_example("classifier").Classifier(vocab=30, embed=5, hidden=6).double()
    model.load_state_dict(torch.load(files["weights"], weights_only=True))
    model.eval()
    tokens = torch.from_numpy(np.load(files["tokens"]))
    labels = torch.from_numpy(np.load(files["labels"]))
    inputs = (tokens, torch.from_numpy(np.load(files["lengths"]))) if lengths else tokens
    return gradient_profile(
        model, inputs, loss=lambda logits: nn.functional.cross_entropy(logits, labels)
    )


@pytest.mark.parametrize("lengths", [False, True])
def test_classifier_from_its_file_equals_the_python_api(
    classifier_files: dict[str, Path], lengths: bool
) -> None:
    """file.py:NAME with --model-args, its state_dict, int64 tokens, labels, cross-entropy
    on its head (and lengths as a second input, packed by the model): the API's numbers."""
    f = classifier_files
    extra = ["--input", str(f["lengths"])] if lengths else []
    done = run(
        "profile", "--model", CLASSIFIER, "--model-args", ARGS, "--state-dict", str(f["weights"]),
        "--input", str(f["tokens"]), *extra, "--target", str(f["labels"]),
        "--loss", "cross-entropy", "--dtype", "float64", "--json",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    payload = strict_json(done.stdout)
    expected = expected_profile(f, lengths)
    assert payload["module_name"] == "lstm"
    assert payload["loss"] == "custom"
    assert payload["loss_value"] == pytest.approx(expected.loss_value, rel=1e-12)
    assert payload["lengths"] == ([12, 4, 7, 1, 9] if lengths else [12] * 5)
    for entry, lp in zip(payload["layers"], expected.layers, strict=True):
        np.testing.assert_allclose(entry["grad_norm"], lp.mean_grad_norm, rtol=1e-12)
        assert entry["verdict"]["label"] == lp.verdict.label
        assert entry["summary_order"] == ("t = 1..T" if lp.direction else "t = T..1")


def test_text_output_names_the_module(classifier_files: dict[str, Path]) -> None:
    f = classifier_files
    done = run(
        "profile", "--model", CLASSIFIER, "--model-args", ARGS, "--input", str(f["tokens"]),
        "--target", str(f["labels"]), "--loss", "cross-entropy",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "(lstm)" in done.stdout and "1 rev" in done.stdout


def test_a_package_module_path() -> None:
    """package.module:NAME: torch.nn:GRU built from --model-args is profiled like the spec."""
    done = run(
        "profile", "--model", "torch.nn:GRU", "--model-args",
        '{"input_size": 3, "hidden_size": 4, "num_layers": 2}', "--random-input", "2,6",
    )  # fmt: skip
    assert done.returncode == 2 and "--random-input needs a spec" in done.stderr


def test_user_model_spec_detection() -> None:
    assert is_user_model("examples/classifier.py:Classifier")
    assert is_user_model("my_package.models:Net")
    assert not is_user_model("lstm:input=3,hidden=4")
    assert not is_user_model("transformer:input=3,hidden=4")


def test_build_user_model_quotes_the_users_errors(tmp_path: Path) -> None:
    broken = tmp_path / "broken.py"
    broken.write_text("import torch\nraise RuntimeError('no GPU here')\n")
    with pytest.raises(ModelLoadError, match="RuntimeError: no GPU here"):
        build_user_model(f"{broken}:Net", {})
    model = build_user_model(f"{EXAMPLES / 'classifier.py'}:Classifier", {"vocab": 7}, seed=3)
    again = build_user_model(f"{EXAMPLES / 'classifier.py'}:Classifier", {"vocab": 7}, seed=3)
    assert not model.training
    for a, b in zip(model.parameters(), again.parameters(), strict=True):
        assert torch.equal(a, b), "the same seed must build the same model"
    assert isinstance(ModelLoadError("x"), InvalidInputError)


def fill(argument: str, files: dict[str, Path]) -> str:
    """``{name}`` placeholders of ``files`` replaced (JSON braces left alone)."""
    for key, path in files.items():
        argument = argument.replace("{" + key + "}", str(path))
    return argument


def bad_model_files(tmp_path: Path) -> dict[str, Path]:
    files = {
        "broken": tmp_path / "broken.py",
        "notmodule": tmp_path / "notmodule.py",
        "x": tmp_path / "x.npy",
        "tokens": tmp_path / "tokens.npy",
    }
    files["broken"].write_text("def f(:\n")
    files["notmodule"].write_text("NUMBER = 3\n\ndef factory():\n    return 5\n")
    np.save(files["x"], np.zeros((4, 2, 3), dtype=np.float32))
    np.save(files["tokens"], np.zeros((5, 12), dtype=np.int64))
    return files


SEQ2SEQ = f"{EXAMPLES / 'seq2seq.py'}:Seq2Seq"
BAD = [
    (["--model", "{broken}:Net", "--input", "{x}"], "SyntaxError"),
    (["--model", "/no/such/model.py:Net", "--input", "{x}"], "no such model file"),
    (["--model", "no_such_package_xyz.models:Net", "--input", "{x}"], "cannot import"),
    (["--model", f"{CLASSIFIER[:-10]}Missing", "--input", "{x}"], "modules defined there"),
    (["--model", "{notmodule}:NUMBER", "--input", "{x}"], "not an nn.Module"),
    (["--model", "{notmodule}:factory", "--input", "{x}"], "returned a int"),
    (["--model", CLASSIFIER, "--model-args", "{vocab: 3}", "--input", "{x}"], "not valid JSON"),
    (["--model", CLASSIFIER, "--model-args", "[1]", "--input", "{x}"], "JSON object"),
    (["--model", CLASSIFIER, "--model-args", '{"heads": 2}', "--input", "{x}"], "heads"),
    (["--model", "gru:input=3,hidden=4", "--model-args", "{}", "--input", "{x}"], "spec"),
    (
        ["--model", CLASSIFIER, "--model-args", ARGS, "--input", "{tokens}", "--lengths", "{x}"],
        "second --input",
    ),
]


@pytest.mark.parametrize(("args", "message"), BAD, ids=[m for _, m in BAD])
def test_bad_models_give_one_line_and_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    files = bad_model_files(tmp_path)
    resolved = [fill(a, files) for a in args]
    done = run("profile", *resolved)
    assert done.returncode == 2, (done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert message in lines[0]
    assert done.stdout == ""


BAD_DATA = [
    (["--state-dict", "{submodule}"], "without the prefix 'lstm.'"),
    (["--state-dict", "{wrapped}"], "remove 'module.'"),
    (["--target", "{bad_labels}", "--loss", "cross-entropy"], "in 0..3"),
    (["--target", "{float_labels}", "--loss", "cross-entropy"], "shaped like the logits"),
    (["--target", "{labels}", "--loss", "mse"], "mse must be floating point"),
    (["--loss", "cross-entropy"], "needs --target"),
    (["--target", "{labels}"], "--target is for"),
    (["--input", "{lengths}", "--input", "{lengths}"], "importing"),
]


@pytest.mark.parametrize(("args", "message"), BAD_DATA[:-1], ids=[m for _, m in BAD_DATA[:-1]])
def test_bad_weights_and_targets_give_one_line_and_exit_2(
    classifier_files: dict[str, Path], args: list[str], message: str
) -> None:
    resolved = [fill(a, classifier_files) for a in args]
    done = run(
        "profile", "--model", CLASSIFIER, "--model-args", ARGS,
        "--input", str(classifier_files["tokens"]), *resolved,
    )  # fmt: skip
    assert done.returncode == 2, (done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert message in lines[0]


def test_several_recurrent_modules_need_module(tmp_path: Path) -> None:
    source = tmp_path / "source.npy"
    target = tmp_path / "target.npy"
    np.save(source, np.ones((3, 7), dtype=np.int64))
    np.save(target, np.ones((3, 4), dtype=np.int64))
    common = ["profile", "--model", SEQ2SEQ, "--input", str(source), "--input", str(target)]
    done = run(*common)
    assert done.returncode == 2
    assert "encoder, decoder" in done.stderr and "--module" in done.stderr
    done = run(*common, "--module", "encoder", "--json")
    assert done.returncode == 0, done.stderr
    payload = strict_json(done.stdout)
    assert payload["module_name"] == "encoder" and payload["steps"] == 7
    done = run(*common, "--module", "decoder", "--json")
    assert done.returncode == 0, done.stderr
    payload = strict_json(done.stdout)
    assert (payload["module_name"], payload["steps"], payload["calls"]) == ("decoder", 4, 4)
    assert len(payload["layers"][0]["cell_grad_norm"]) == 4
    done = run(*common, "--module", "decoder")
    assert done.returncode == 0 and "4 calls (step by step)" in done.stdout, done.stderr


def test_lyapunov_of_a_models_submodules() -> None:
    """--module picks the decoder cell of a seq2seq; --layer and --direction one direction
    of the classifier's bidirectional LSTM; both as the Python API computes them."""
    import torch as _torch

    from rnngrad.lyapunov.spectrum import lyapunov_spectrum

    common = ["--steps", "60", "--warmup", "10", "--batch", "2", "--json"]
    done = run(
        "lyapunov", "--model", SEQ2SEQ, "--model-args", '{"vocab": 10, "hidden": 4}',
        "--module", "decoder", "--input", "random", *common,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    payload = strict_json(done.stdout)
    assert payload["module_name"] == "decoder" and payload["state_size"] == 8
    model = build_user_model(SEQ2SEQ, {"vocab": 10, "hidden": 4}, seed=0, dtype=_torch.float64)
    expected = lyapunov_spectrum(
        model, module="decoder", steps=60, warmup=10, batch=2, inputs="random"
    )
    np.testing.assert_allclose(payload["exponents"], expected.exponents, rtol=1e-12)

    done = run(
        "lyapunov", "--model", CLASSIFIER, "--model-args", ARGS, "--layer", "1",
        "--direction", "1", *common,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    payload = strict_json(done.stdout)
    assert (payload["layer"], payload["direction"]) == (1, 1)
    assert payload["source"].endswith("layer 1, reverse direction")
    done = run("lyapunov", "--model", CLASSIFIER, "--model-args", ARGS, *common)
    assert done.returncode == 2 and "name one layer" in done.stderr


def test_the_readme_walk_through(tmp_path: Path) -> None:
    """examples/train_classifier.py trains briefly and saves; rnngrad profile reads it."""
    import subprocess
    import sys

    out = tmp_path / "run"
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / "train_classifier.py"), "--out", str(out),
         "--steps", "3", "--seq-len", "12"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    common = [
        "--model", CLASSIFIER, "--model-args", '{"vocab": 100}',
        "--state-dict", str(out / "classifier.pt"), "--input", str(out / "tokens.npy"),
    ]  # fmt: skip
    profiled = run(
        "profile", *common, "--input", str(out / "lengths.npy"),
        "--target", str(out / "labels.npy"), "--loss", "cross-entropy", "--json",
    )  # fmt: skip
    assert profiled.returncode == 0, profiled.stderr
    payload = strict_json(profiled.stdout)
    assert payload["lengths"] == np.load(out / "lengths.npy").tolist()
    assert len(payload["layers"]) == 4


def test_lengths_pack_a_specs_input(tmp_path: Path) -> None:
    """--lengths FILE packs the input of a spec's module: the API's packed profile."""
    from torch.nn.utils.rnn import pack_padded_sequence

    from rnngrad.io.spec import build_module, parse_spec

    spec = "gru:input=3,hidden=4,layers=2,bidirectional=true"
    x = torch.randn(9, 3, 3, generator=torch.Generator().manual_seed(0))
    np.save(tmp_path / "x.npy", x.numpy())
    np.save(tmp_path / "lengths.npy", np.array([4, 9, 2], dtype=np.int64))
    np.save(tmp_path / "bad.npy", np.array([4, 10, 2], dtype=np.int64))
    np.save(tmp_path / "float.npy", np.array([4.0, 9.0, 2.0]))
    np.save(tmp_path / "short.npy", np.array([4, 9], dtype=np.int64))
    common = ["profile", "--model", spec, "--input", str(tmp_path / "x.npy"), "--dtype", "float64"]
    done = run(*common, "--lengths", str(tmp_path / "lengths.npy"), "--json")
    assert done.returncode == 0, done.stderr
    payload = strict_json(done.stdout)
    assert payload["lengths"] == [4, 9, 2] and payload["sequences_per_step"][-1] == 1
    module = build_module(parse_spec(spec), dtype=torch.float64)
    packed = pack_padded_sequence(x.double(), torch.tensor([4, 9, 2]), enforce_sorted=False)
    expected = gradient_profile(module, packed)
    for entry, lp in zip(payload["layers"], expected.layers, strict=True):
        np.testing.assert_allclose(entry["grad_norm"], lp.mean_grad_norm, rtol=1e-12)
    for name, message in (("bad", "1..9"), ("float", "whole numbers"), ("short", "(3,)")):
        done = run(*common, "--lengths", str(tmp_path / f"{name}.npy"))
        assert done.returncode == 2 and message in done.stderr, done.stderr
        assert len(done.stderr.strip().splitlines()) == 1


def test_a_model_that_fails_on_its_input_gives_one_line(
    classifier_files: dict[str, Path], tmp_path: Path
) -> None:
    np.save(tmp_path / "floats.npy", np.zeros((5, 12), dtype=np.float32))
    done = run("profile", "--model", CLASSIFIER, "--model-args", ARGS, "--input",
               str(tmp_path / "floats.npy"))  # fmt: skip
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Classifier raised RuntimeError" in lines[0], done.stderr
