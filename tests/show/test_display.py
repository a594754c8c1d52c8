"""Results in notebooks: one-line reprs, HTML summaries, tidy tables, Plotly figures.

Each check compares what is shown with the result's own fields (the numbers were
checked against their references in the modules' own tests): the table's columns
are the arrays, the figure's traces the page's traces.
"""

from __future__ import annotations

import html

import numpy as np
import pytest
import torch
from torch import nn

import rnngrad
from rnngrad.lyapunov.result import lyapunov_figure
from rnngrad.profile.result import profile_figure
from rnngrad.show.figure import Figure, plotly_spec
from rnngrad.theory.jacobians import jacobian_figure
from rnngrad.theory.scalar import scalar_figure
from rnngrad.theory.spectrum import spectrum_figures


def plotly_data(figure: Figure) -> list[dict[str, object]]:
    """The page's traces for ``figure``, as Plotly normalises them."""
    import plotly.graph_objects as go

    data: list[dict[str, object]] = go.Figure(data=plotly_spec(figure)["data"]).to_dict()["data"]
    return data


def test_dir_lists_the_lazily_loaded_names() -> None:
    """Tab completion sees every public name, including the ones loaded on first use."""
    names = dir(rnngrad)
    for name in ("gradient_profile", "GradientMonitor", "lyapunov_spectrum", "scalar_chain_rule"):
        assert name in names
    assert set(rnngrad.__all__) <= set(names)


def check_common(result: object, kind: str, verdict: str | None, rows: int) -> None:
    text = repr(result)
    assert "\n" not in text and text.startswith(f"<{kind} ") and len(text) < 200
    if verdict is not None:
        assert text.endswith(f": {verdict}>")
    page = result._repr_html_()  # type: ignore[attr-defined]
    assert "<table>" in page and "nan" not in page.lower().replace("nats", "")
    if verdict is not None:
        # the verdict sentence comes before the table of key numbers
        assert page.index(f"<b>{html.escape(verdict)}</b>") < page.index("<table>")
    table = result.to_table()  # type: ignore[attr-defined]
    assert table.num_rows == rows
    frame = result.to_frame()  # type: ignore[attr-defined]
    assert frame.shape == (rows, table.num_columns)


def test_scalar_chain_rule() -> None:
    result = rnngrad.scalar_chain_rule()
    check_common(result, "ScalarChainRule", result.verdict.label, result.steps)
    frame = result.to_frame()
    np.testing.assert_array_equal(frame["k"], np.arange(1, result.steps + 1))
    np.testing.assert_allclose(frame["dy_dh"], result.dy_dh, rtol=1e-15)
    np.testing.assert_allclose(frame["factor"][:-1], result.factors, rtol=1e-15)
    assert frame["factor"].isna().iloc[-1]  # no factor after the last step: null, not a number
    assert f"{result.dy_dh[0]:.4g}" in result._repr_html_()
    figure = result.plot()
    assert figure.to_dict()["data"] == plotly_data(scalar_figure(result))


def test_spectrum_and_its_three_figures() -> None:
    result = rnngrad.recurrent_spectrum(rnngrad.example_matrix("nonnormal"))
    check_common(result, "RecurrentSpectrum", result.verdict.label, result.size)
    frame = result.to_frame()
    np.testing.assert_allclose(frame["eigenvalue_modulus"].max(), result.spectral_radius)
    np.testing.assert_allclose(frame["singular_value"], result.singular_values)
    figures = spectrum_figures({"W_hh": result})
    for which, figure in zip(("eigenvalues", "singular", "growth"), figures, strict=True):
        assert result.plot(which).to_dict()["data"] == plotly_data(figure)
    assert [t["name"] for t in result.plot().to_dict()["data"]] == ["unit circle", "W_hh"]
    with pytest.raises(rnngrad.InvalidInputError, match="unknown figure 'pie'"):
        result.plot("pie")


def test_gradient_profile_is_tidy_over_layers_directions_and_steps() -> None:
    torch.manual_seed(0)
    model = nn.LSTM(3, 8, num_layers=2, bidirectional=True)
    result = rnngrad.gradient_profile(model, torch.randn(20, 4, 3))
    check_common(result, "GradientProfile", None, 4 * 20)
    frame = result.to_frame()
    assert list(frame.groupby(["layer", "direction"]).size()) == [20] * 4
    reverse = frame[(frame.layer == 1) & (frame.direction == "reverse")]
    np.testing.assert_allclose(reverse["mean_grad_norm"], result.layer(1, 1).mean_grad_norm)
    np.testing.assert_allclose(
        reverse["mean_cell_grad_norm"], result.layer(1, 1).mean_cell_grad_norm
    )
    labels = {lp.verdict.label for lp in result.layers}
    expected = labels.pop() if len(labels) == 1 else "mixed"
    assert repr(result).endswith(f": {expected}>")
    assert result.plot().to_dict()["data"] == plotly_data(profile_figure(result))
    names = [t["name"] for t in result.plot().to_dict()["data"]]
    assert {"layer 0", "layer 0 reverse", "layer 1", "layer 1 reverse"} <= set(names)


def test_zero_gradients_are_nulls_in_the_table() -> None:
    """A step no gradient reaches has log10 = -inf: a null in the table, never a number."""
    model = nn.RNN(2, 3)
    result = rnngrad.gradient_profile(model, torch.randn(6, 1, 2), loss=lambda out: out[0][2].sum())
    table = result.to_table()
    column = table.column("log10_grad_norm").to_pylist()
    assert column[3:] == [None, None, None]  # after step 3: no path from the loss
    assert all(v is not None for v in column[:3])


def test_lyapunov_spectrum() -> None:
    result = rnngrad.lyapunov_spectrum(nn.RNN(3, 16), steps=200, k=4, batch=2, seed=0)
    verdict = "chaotic" if result.exponents[0] > 0 else "contracting"
    check_common(result, "LyapunovSpectrum", verdict, 4)
    frame = result.to_frame()
    np.testing.assert_allclose(frame["exponent"], result.exponents)
    np.testing.assert_allclose(frame["ci95"], result.ci95)
    # the interval is the larger of its two parts, and the halves average to the estimate
    both = np.fmax(frame["ci95_trajectories"], frame["ci95_windows"])
    np.testing.assert_allclose(frame["ci95"], both)
    halves = (frame["first_half"] + frame["second_half"]) / 2
    np.testing.assert_allclose(halves, frame["exponent"], rtol=1e-12)
    data = result.plot().to_dict()["data"]
    assert data == plotly_data(lyapunov_figure(result))
    assert data[-1]["y"] == pytest.approx(list(result.exponents))


def test_jacobian_products() -> None:
    rng = np.random.default_rng(0)
    weights = rng.normal(0, 0.3, (5, 5))
    result = rnngrad.elman_jacobian_products(
        weights, rng.normal(size=(12, 5)), W_xh=np.eye(5), loss_grad=np.ones(5)
    )
    check_common(result, "JacobianProducts", result.verdict.label, 12)
    frame = result.to_frame()
    np.testing.assert_allclose(frame["log10_norm_dhT_dhk"], result.log10_norm)
    assert result.plot().to_dict()["data"] == plotly_data(jacobian_figure(result))


def test_training_result(tmp_path: object) -> None:
    from rnngrad.lab.config import TrainConfig
    from rnngrad.lab.train import train

    config = TrainConfig(task="adding", seq_len=10, cell="gru", steps=40, eval_every=20,
                         eval_batch=50, checkpoint_every=20, profile_every=40)  # fmt: skip
    result = train(config, tmp_path, progress=False)  # type: ignore[arg-type]
    verdict = "solved" if result.solved else "not solved"
    check_common(result, "TrainResult", verdict, 2)
    frame = result.to_frame()
    assert list(frame["step"]) == [20, 40]
    assert frame["loss"].iloc[-1] == pytest.approx(result.final_loss)
    data = result.plot().to_dict()["data"]
    assert list(data[0]["y"]) == pytest.approx(list(frame["loss"]))


def test_to_frame_without_pandas_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    real_import = builtins.__import__

    def no_pandas(name: str, *args: object, **kwargs: object) -> object:
        if name == "pandas" or name.startswith("pandas."):
            raise ImportError("no pandas here")
        return real_import(name, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(builtins, "__import__", no_pandas)
    monkeypatch.delitem(__import__("sys").modules, "pandas", raising=False)
    with pytest.raises(rnngrad.MissingExtraError, match=r"pip install 'rnngrad\[pandas\]'"):
        rnngrad.scalar_chain_rule().to_frame()
