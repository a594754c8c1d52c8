"""The calls models really make: subclasses whose forward takes more arguments, inputs in
dicts and dataclasses, and modules reached only through ``super().forward``."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from rnngrad import GradientMonitor, gradient_profile


class ForecastingLSTM(nn.LSTM):
    """As forecasting libraries subclass it: ``forward(x, hx, lengths=, enforce_sorted=)``
    packs the input itself and calls ``super().forward``."""

    def forward(  # type: ignore[override]
        self,
        x: torch.Tensor,
        hx: tuple[torch.Tensor, torch.Tensor] | None = None,
        lengths: torch.Tensor | None = None,
        enforce_sorted: bool = True,
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        if lengths is None:
            return super().forward(x, hx)  # type: ignore[no-any-return]
        packed = pack_padded_sequence(
            x, lengths.cpu(), batch_first=self.batch_first, enforce_sorted=enforce_sorted
        )
        out, state = super().forward(packed, hx)
        padded, _ = pad_packed_sequence(out, batch_first=self.batch_first)  # type: ignore[arg-type]
        return padded, state


class PlainPacking(nn.Module):
    """The same computation with a plain nn.LSTM, packed by the model: the reference."""

    def __init__(self, rnn: nn.LSTM, head: nn.Linear) -> None:
        super().__init__()
        self.rnn, self.head = rnn, head

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        _, (h, _) = self.rnn(packed)
        return self.head(h[-1])  # type: ignore[no-any-return]


class Forecaster(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.rnn = ForecastingLSTM(3, 8, num_layers=2, batch_first=True).double()
        self.head = nn.Linear(8, 1).double()

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        _, (h, _) = self.rnn(x, lengths=lengths, enforce_sorted=False)
        return self.head(h[-1])  # type: ignore[no-any-return]


def _batch() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(4, 10, 3, generator=generator, dtype=torch.float64)
    return (
        x,
        torch.tensor([10, 6, 8, 3]),
        torch.randn(4, 1, generator=generator, dtype=torch.float64),
    )


def _mse(target: torch.Tensor):  # type: ignore[no-untyped-def]
    return lambda out: ((out - target) ** 2).mean()


def test_a_subclass_whose_forward_takes_more_arguments_is_profiled() -> None:
    """Regression: ``self.rnn(x, hx, lengths=..., enforce_sorted=False)`` failed with
    "unexpected keyword argument 'lengths'", blamed on the model. Now the call reaches the
    recurrence through ``super().forward`` and is recorded there: the profile equals the
    one of the same weights in a plain nn.LSTM that the model packs itself."""
    model = Forecaster()
    x, lengths, target = _batch()
    profile = gradient_profile(model, (x, lengths), loss=_mse(target))
    plain = nn.LSTM(3, 8, num_layers=2, batch_first=True).double()
    plain.load_state_dict(model.rnn.state_dict())
    reference = gradient_profile(PlainPacking(plain, model.head), (x, lengths), loss=_mse(target))
    assert isinstance(model.rnn, ForecastingLSTM) and type(model.rnn) is ForecastingLSTM
    np.testing.assert_array_equal(profile.lengths, [10, 6, 8, 3])
    for got, expected in zip(profile.layers, reference.layers, strict=True):
        np.testing.assert_allclose(got.grad_norm, expected.grad_norm, rtol=1e-12, equal_nan=True)
        np.testing.assert_allclose(
            got.carried_norm, expected.carried_norm, rtol=1e-12, equal_nan=True
        )
        assert got.verdict == expected.verdict


def test_the_subclass_in_gradient_profiles_and_the_monitor() -> None:
    """The same subclass through the probes of gradient_profiles (packed, once) gives the
    fused route's numbers, and the monitor profiles it."""
    from rnngrad import gradient_profiles

    model = Forecaster()
    x, lengths, target = _batch()
    profiles = gradient_profiles(model, (x, lengths), loss=_mse(target))
    fused = gradient_profile(model, (x, lengths), loss=_mse(target))
    for got, expected in zip(profiles["rnn"].layers, fused.layers, strict=True):
        np.testing.assert_allclose(got.grad_norm, expected.grad_norm, rtol=1e-10, equal_nan=True)
        np.testing.assert_allclose(
            got.carried_norm, expected.carried_norm, rtol=1e-10, equal_nan=True
        )
    monitor = GradientMonitor(model, every=1, loss=lambda out, y: ((out - y) ** 2).mean())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # whatever it says, it is called and profiles
        assert monitor.step((x, lengths), target) is not None


@dataclass
class Batch:
    """A batch as some trainers hand it over: a dataclass of tensors."""

    x: torch.Tensor
    lengths: torch.Tensor


class TakesADict(nn.Module):
    def __init__(self, inner: Forecaster) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, batch: dict[str, torch.Tensor] | Batch) -> torch.Tensor:
        if isinstance(batch, dict):
            return self.inner(batch["x"], batch["lengths"])  # type: ignore[no-any-return]
        return self.inner(batch.x, batch.lengths)  # type: ignore[no-any-return]


@pytest.mark.parametrize("form", ["dict", "dataclass"])
def test_inputs_in_a_dict_or_a_dataclass_work_unchanged_and_convert(form: str) -> None:
    """A model called with a dict or a dataclass is profiled as it is; ``dtype=`` converts
    the tensors inside them with the model (it used to convert the model alone)."""
    model = TakesADict(Forecaster())
    x, lengths, target = _batch()
    batch = {"x": x, "lengths": lengths} if form == "dict" else Batch(x, lengths)
    profile = gradient_profile(model, batch, loss=_mse(target))
    reference = gradient_profile(model.inner, (x, lengths), loss=_mse(target))
    np.testing.assert_allclose(profile.layers[0].grad_norm, reference.layers[0].grad_norm)
    single = model.float()
    x32 = x.float()
    batch32 = {"x": x32, "lengths": lengths} if form == "dict" else Batch(x32, lengths)
    converted = gradient_profile(single, batch32, loss=_mse(target), dtype=torch.float64)
    assert converted.dtype == "float64"
    np.testing.assert_allclose(
        converted.layers[0].grad_norm, reference.layers[0].grad_norm, rtol=1e-5, equal_nan=True
    )


class EncoderDecoder(nn.Module):
    """An encoder and a decoder started from its final state, each an nn.LSTM."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(2)
        self.encoder = nn.LSTM(3, 6, batch_first=True).double()
        self.decoder = nn.LSTM(2, 6, batch_first=True).double()
        self.head = nn.Linear(6, 1).double()

    def forward(self, past: torch.Tensor, future: torch.Tensor) -> torch.Tensor:
        _, state = self.encoder(past)
        out, _ = self.decoder(future, state)
        return self.head(out)  # type: ignore[no-any-return]


def test_profile_call_profiles_every_recurrent_module_the_function_calls() -> None:
    """profile_call(fn): fn runs the forward and the loss; each module it calls gets the
    profile gradient_profiles gives for the same model, inputs and loss."""
    from rnngrad import gradient_profiles, profile_call

    model = EncoderDecoder()
    generator = torch.Generator().manual_seed(3)
    past = torch.randn(4, 9, 3, generator=generator, dtype=torch.float64)
    future = torch.randn(4, 5, 2, generator=generator, dtype=torch.float64)
    target = torch.randn(4, 5, 1, generator=generator, dtype=torch.float64)

    def training_loss() -> torch.Tensor:
        return ((model(past, future) - target) ** 2).mean()

    profiles = profile_call(training_loss, model=model)
    assert list(profiles) == ["encoder", "decoder"]
    expected = gradient_profiles(model, (past, future), loss=_mse(target))
    for name in ("encoder", "decoder"):
        np.testing.assert_allclose(
            profiles[name].layers[0].grad_norm, expected[name].layers[0].grad_norm, rtol=1e-12
        )
        np.testing.assert_allclose(
            profiles[name].layers[0].carried_norm,
            expected[name].layers[0].carried_norm,
            rtol=1e-12,
            equal_nan=True,
        )
    # Without the model the modules are named after their classes.
    assert list(profile_call(training_loss)) == ["LSTM", "LSTM #2"]
    assert all(p.grad is None for p in model.parameters())  # .grad fields untouched


@pytest.mark.parametrize(
    ("fn", "message"),
    [
        (42, r"fn must be callable, got int"),
        (lambda: torch.ones(3, requires_grad=True), "scalar tensor, got a tensor of shape"),
        (lambda: "loss", "scalar tensor, got str"),
        (lambda: (torch.ones(2, requires_grad=True) ** 2).sum(), "calls no recurrent module"),
    ],
)
def test_profile_call_refuses_in_one_line(fn: object, message: str) -> None:
    from rnngrad import profile_call
    from rnngrad.errors import InvalidInputError

    with pytest.raises(InvalidInputError, match=message):
        profile_call(fn)  # type: ignore[arg-type]


class PackedEncoderDecoder(nn.Module):
    """One ForecastingLSTM called twice with lengths, as pytorch-forecasting's
    RecurrentNetwork and DeepAR do: the encoder's window, then the decoder's from the
    encoder's final state."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(4)
        self.rnn = ForecastingLSTM(2, 5, batch_first=True).double()
        self.head = nn.Linear(5, 1).double()

    def forward(
        self, past: torch.Tensor, past_lengths: torch.Tensor, future: torch.Tensor,
        future_lengths: torch.Tensor,
    ) -> torch.Tensor:  # fmt: skip
        _, state = self.rnn(past, lengths=past_lengths, enforce_sorted=False)
        out, _ = self.rnn(future, state, lengths=future_lengths, enforce_sorted=False)
        return self.head(out)  # type: ignore[no-any-return]


def _cell_loop_gradients(
    model: PackedEncoderDecoder, past: torch.Tensor, future: torch.Tensor, target: torch.Tensor
) -> np.ndarray:
    """One sequence, its own steps only, by an nn.LSTMCell with the module's weights and
    retain_grad: the total dL/dh_t at each of its encoder steps, then its decoder steps."""
    rnn = model.rnn
    cell = nn.LSTMCell(2, 5).double()
    with torch.no_grad():
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(cell, name).copy_(getattr(rnn, f"{name}_l0"))
    h = c = torch.zeros(1, 5, dtype=torch.float64)
    states, outputs = [], []
    for x_t in past[0]:
        h, c = cell(x_t[None], (h, c))
        h.retain_grad()
        states.append(h)
    for x_t in future[0]:
        h, c = cell(x_t[None], (h, c))
        h.retain_grad()
        states.append(h)
        outputs.append(model.head(h))
    loss = ((torch.stack(outputs, dim=1) - target) ** 2).sum()
    loss.backward()
    return np.array([float(s.grad.norm()) for s in states])  # type: ignore[union-attr]


def test_a_packed_module_called_twice_is_profiled_over_each_sequences_own_steps() -> None:
    """Regression: a packed module called twice in one forward (encoder, then decoder
    from its state) was refused. Each sequence's steps are its encoder steps then its
    decoder steps; dL/dh_t equals a cell loop over that sequence alone, and the carried
    gradient equals the one of the same sequence profiled alone, unpacked."""
    from rnngrad import profile_call

    model = PackedEncoderDecoder()
    generator = torch.Generator().manual_seed(5)
    past = torch.randn(3, 7, 2, generator=generator, dtype=torch.float64)
    future = torch.randn(3, 4, 2, generator=generator, dtype=torch.float64)
    target = torch.randn(3, 4, 1, generator=generator, dtype=torch.float64)
    past_lengths, future_lengths = torch.tensor([7, 4, 6]), torch.tensor([4, 2, 3])
    mask = (torch.arange(4)[None, :] < future_lengths[:, None]).double()[..., None]

    def loss() -> torch.Tensor:
        out = model(past, past_lengths, future, future_lengths)
        return (((out - target) * mask) ** 2).sum()

    profile = profile_call(loss, model=model)["rnn"]
    assert profile.calls == 2
    np.testing.assert_array_equal(profile.lengths, past_lengths + future_lengths)
    layer = profile.layers[0]
    for b in range(3):
        p, f = int(past_lengths[b]), int(future_lengths[b])
        expected = _cell_loop_gradients(
            model, past[b : b + 1, :p], future[b : b + 1, :f], target[b : b + 1, :f]
        )
        np.testing.assert_allclose(layer.grad_norm[b, : p + f], expected, rtol=1e-10)
        assert np.isnan(layer.grad_norm[b, p + f :]).all()
        one = (past[b : b + 1, :p], torch.tensor([p]), future[b : b + 1, :f], torch.tensor([f]))
        alone = profile_call(
            lambda one=one, f=f, b=b: ((model(*one) - target[b : b + 1, :f]) ** 2).sum()
        )
        np.testing.assert_allclose(
            layer.carried_norm[b, : p + f], alone["ForecastingLSTM"].layers[0].carried_norm[0],
            rtol=1e-10,
        )  # fmt: skip
