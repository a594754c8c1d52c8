"""Speed of full Lyapunov spectra: against the textbook QR method, and against the floor.

Part 1, the textbook method (the goal): the plain algorithm as a textbook writes
it, in numpy: per step the state update, the Jacobian ``J`` formed and applied
to the basis as one matrix product, a Householder QR of the result
(``numpy.linalg.qr``, which forms ``Q``), and ``ln |diag R|`` accumulated,
one trajectory after another. The same loop in torch is timed too (its state
stepped by rnngrad's map), so that the library is not mistaken for the method;
the faster of the two is the baseline. Cases: random tanh networks
``h' = tanh(W h)``, ``W_ij ~ N(0, 1.5^2 / N)``, N = 200 and 500, and an LSTM
(hidden 128, state 256, PyTorch's initialisation, zero input); full spectrum,
T = 2000, float64, ``--batch`` trajectories (2) from the same initial states
and bases on both sides, 1 thread on both sides (BLAS and torch), interleaved
repetitions, medians. Ours is :func:`rnngrad.lyapunov.spectrum.lyapunov_spectrum` with
its defaults (``reorth="auto"``, Householder, the trajectories batched) and
``warmup=0`` (the textbook has none). Accuracy: a chaotic trajectory computed
by two libraries parts after a few hundred steps, so the exponents are compared
with the torch textbook loop, which follows ours' trajectory bit for bit (the
numpy one for the LSTM, which is not chaotic), as a share of ours' 95%
interval: ``largest difference / interval`` (goal below 1). The last lines are
``largest difference / interval = D`` and
``min speed-up over the textbook method = S`` (goal S >= 2).

Part 2 (``--floor``), QR after every step (``reorth=1``) against the bare work
of the method at the same sizes (T matrix products and QR factorisations) and
against ``torch.func.jacrev`` of one step: ``max ratio to floor = R``.

Run: ``.venv/bin/python benchmarks/lyapunov_speed.py [--steps T] [--repeats N] [--floor]``
"""

from __future__ import annotations

import os

for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_variable] = "1"  # before numpy and torch load their BLAS

import argparse  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from functools import partial  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from numpy.typing import NDArray  # noqa: E402
from torch import nn  # noqa: E402
from torch.func import jacrev  # noqa: E402

from rnngrad.lyapunov.dynamics import ModuleDynamics  # noqa: E402
from rnngrad.lyapunov.spectrum import lyapunov_spectrum, random_tanh_network  # noqa: E402

Array = NDArray[np.float64]


def textbook_tanh(weights: Array, h: Array, basis: Array, steps: int) -> Array:
    """The textbook QR method for h' = tanh(W h), in numpy."""
    sums = np.zeros(basis.shape[1])
    for _ in range(steps):
        h = np.tanh(weights @ h)
        jacobian = (1.0 - h * h)[:, None] * weights
        basis, triangle = np.linalg.qr(jacobian @ basis)
        sums += np.log(np.abs(np.diag(triangle)))
    return np.sort(sums / steps)[::-1]


def textbook_tanh_torch(
    module: nn.Module, states: Array, basis: Array, steps: int, which: int
) -> Array:
    """The same loop in torch for trajectory ``which``. Its state is stepped by rnngrad's
    own map on the whole batch of states, as ours is (a product over another batch size
    can round differently, and chaos would part the trajectories): it follows ours bit for
    bit, so the exponents can be compared. The tangent side is the textbook's."""
    dynamics = ModuleDynamics(module)
    weights = dynamics.layers[0].weights.w_hh.detach()
    state, q = torch.from_numpy(states), torch.from_numpy(basis)
    x = torch.zeros(state.shape[0], dynamics.input_size, dtype=torch.float64)
    sums = torch.zeros(q.shape[1], dtype=torch.float64)
    with torch.no_grad():
        for _ in range(steps):
            state = dynamics.step(state, x)[0]
            h = state[which]
            jacobian = (1.0 - h * h)[:, None] * weights
            q, triangle = torch.linalg.qr(jacobian @ q)
            sums += torch.log(torch.diagonal(triangle).abs())
    return np.sort((sums / steps).numpy())[::-1]


def _sigmoid(x: Array) -> Array:
    out: Array = 1.0 / (1.0 + np.exp(-x))
    return out


def textbook_lstm(weights: dict[str, Array], state: Array, basis: Array, steps: int) -> Array:
    """The textbook QR method for an LSTM with zero input, in numpy: the (2H x 2H)
    Jacobian of (h, c) -> (h', c') formed every step (gate order i, f, g, o)."""
    w, bias = weights["w_hh"], weights["bias"]
    size = w.shape[1]
    h, c = state[:size], state[size:]
    w_i, w_f, w_g, w_o = np.split(w, 4)
    sums = np.zeros(basis.shape[1])
    jacobian = np.empty((2 * size, 2 * size))
    for _ in range(steps):
        z_i, z_f, z_g, z_o = np.split(w @ h + bias, 4)
        i, f, g, o = _sigmoid(z_i), _sigmoid(z_f), np.tanh(z_g), _sigmoid(z_o)
        c_new = f * c + i * g
        tanh_c = np.tanh(c_new)
        dc_dh = (
            (c * f * (1 - f))[:, None] * w_f
            + (g * i * (1 - i))[:, None] * w_i
            + (i * (1 - g * g))[:, None] * w_g
        )
        through_c = o * (1 - tanh_c * tanh_c)
        jacobian[:size, :size] = (tanh_c * o * (1 - o))[:, None] * w_o + through_c[:, None] * dc_dh
        jacobian[:size, size:] = np.diag(through_c * f)
        jacobian[size:, :size] = dc_dh
        jacobian[size:, size:] = np.diag(f)
        h, c = o * tanh_c, c_new
        basis, triangle = np.linalg.qr(jacobian @ basis)
        sums += np.log(np.abs(np.diag(triangle)))
    return np.sort(sums / steps)[::-1]


def starting_points(module: nn.Module, batch: int, seed: int) -> tuple[Array, Array]:
    """The initial states ``(B, n)`` and bases ``(B, n, n)`` that
    ``lyapunov_spectrum(warmup=0, batch=B, seed=seed)`` draws."""
    from rnngrad.lyapunov.spectrum import _random_orthonormal

    dynamics = ModuleDynamics(module)
    generator = torch.Generator().manual_seed(seed)
    state = dynamics.initial_state(batch, generator)
    n = dynamics.tangent_size
    basis = _random_orthonormal(batch, n, n, state, generator)
    return state.numpy().copy(), basis.numpy().copy()


def per_trajectory(
    route: Callable[..., Array], model: object, states: Array, bases: Array, steps: int
) -> Array:
    """The textbook runs one trajectory after another; the mean of their sorted exponents."""
    if route is textbook_tanh_torch:
        runs = [route(model, states, bases[b], steps, b) for b in range(len(bases))]
    else:
        runs = [route(model, s, q, steps) for s, q in zip(states, bases, strict=True)]
    return np.mean(runs, axis=0)


def textbook_part(steps: int, repeats: int, batch: int) -> tuple[float, float]:
    """Part 1; returns (min speed-up, largest difference / interval)."""
    torch.manual_seed(0)
    with torch.no_grad():
        lstm = nn.LSTM(1, 128).double()
    lstm_weights = {
        "w_hh": lstm.weight_hh_l0.detach().numpy().copy(),
        "bias": (lstm.bias_ih_l0 + lstm.bias_hh_l0).detach().numpy().copy(),
    }
    speedups, differences = [], []
    cases: list[tuple[str, nn.Module, dict[str, tuple[Callable[..., Array], object]]]] = []
    for size in (200, 500):
        network = random_tanh_network(size, 1.5, seed=0)
        weights = network.weight_hh_l0.detach().numpy().copy()
        routes = {
            "textbook numpy": (textbook_tanh, weights),
            "textbook torch": (textbook_tanh_torch, network),
        }
        cases.append((f"tanh N={size}", network, routes))
    cases.append(("LSTM hidden 128", lstm, {"textbook numpy": (textbook_lstm, lstm_weights)}))
    for name, module, routes in cases:
        states, bases = starting_points(module, batch, seed=0)
        runs: dict[str, Callable[[], object]] = {
            key: partial(per_trajectory, route, model, states, bases, steps)
            for key, (route, model) in routes.items()
        }
        runs["ours"] = partial(
            lyapunov_spectrum, module, steps=steps, warmup=0, batch=batch, seed=0, progress=False
        )
        times: dict[str, list[float]] = {key: [] for key in runs}
        results: dict[str, object] = {}
        keys = list(runs)
        for repeat in range(repeats):
            for key in keys[repeat % len(keys) :] + keys[: repeat % len(keys)]:
                start = time.perf_counter()
                results[key] = runs[key]()
                times[key].append(time.perf_counter() - start)
        medians = {key: statistics.median(values) for key, values in times.items()}
        baseline = min(value for key, value in medians.items() if key != "ours")
        ours = results["ours"]
        exponents, interval = ours.exponents, ours.ci95  # type: ignore[attr-defined]
        reference = results["textbook torch" if "textbook torch" in results else "textbook numpy"]
        difference = float(np.max(np.abs(exponents - reference) / interval))
        speedups.append(baseline / medians["ours"])
        differences.append(difference)
        textbook_times = "  ".join(
            f"{key} {value:7.2f} s" for key, value in medians.items() if key != "ours"
        )
        print(
            f"{name:16s} {textbook_times}  ours {medians['ours']:7.2f} s "
            f"({ours.factorisations} QR in {steps} steps)  "  # type: ignore[attr-defined]
            f"speed-up {baseline / medians['ours']:.2f}  difference / interval {difference:.2g}"
        )
    return min(speedups), max(differences)


def floor(weights: torch.Tensor, basis_rows: int, state: int, steps: int) -> None:
    """T times: (weights @ part of the basis) and a QR of the (state x state) basis."""
    basis = torch.linalg.qr(torch.randn(state, state, dtype=torch.float64))[0]
    for _ in range(steps):
        product = weights @ basis[:basis_rows]
        basis[: product.shape[0]] = product[: basis.shape[0]]
        basis, _ = torch.linalg.qr(basis)


def naive(module: nn.Module, steps: int) -> None:
    dynamics = ModuleDynamics(module)
    state = dynamics.initial_state(1, torch.Generator().manual_seed(0))
    x = torch.zeros(1, dynamics.input_size, dtype=torch.float64)
    basis = torch.linalg.qr(
        torch.randn(dynamics.state_size, dynamics.state_size, dtype=torch.float64)
    )[0]
    total = torch.zeros(dynamics.state_size, dtype=torch.float64)

    def step(s: torch.Tensor) -> torch.Tensor:
        return dynamics.step(s.unsqueeze(0), x)[0].squeeze(0)

    for _ in range(steps):
        jacobian = jacrev(step)(state.squeeze(0))
        state = step(state.squeeze(0)).unsqueeze(0)
        basis, triangle = torch.linalg.qr(jacobian @ basis)
        total += torch.log(torch.diagonal(triangle).abs())


def floor_part(steps: int, repeats: int, naive_steps: int) -> None:
    """Part 2: QR every step against the floor and the naive route."""
    with torch.no_grad():
        elman = nn.RNN(1, 256, bias=False).double()
        elman.weight_hh_l0.copy_(torch.randn(256, 256, dtype=torch.float64) * 1.5 / 16)
        lstm = nn.LSTM(1, 128).double()
    cases = {
        "Elman n=256": (elman, elman.weight_hh_l0.detach(), 256, 256),
        "LSTM n=128 (state 256)": (lstm, lstm.weight_hh_l0.detach(), 128, 256),
    }
    worst = {}
    for name, (module, weights, rows, state) in cases.items():
        runs: dict[str, Callable[[], object]] = {
            "ours": lambda module=module: lyapunov_spectrum(
                module, steps=steps, warmup=0, batch=1, reorth=1, progress=False
            ),
            "floor": lambda w=weights, r=rows, s=state: floor(w, r, s, steps),
        }
        times: dict[str, list[float]] = {key: [] for key in runs}
        for _ in range(repeats):
            for key, function in runs.items():
                start = time.perf_counter()
                function()
                times[key].append(time.perf_counter() - start)
        start = time.perf_counter()
        naive(module, naive_steps)
        naive_time = (time.perf_counter() - start) * steps / naive_steps
        ours = statistics.median(times["ours"])
        bare = statistics.median(times["floor"])
        worst[name] = ours / bare
        print(
            f"{name:24s} ours {ours:7.3f} s  floor {bare:7.3f} s  naive {naive_time:7.3f} s  "
            f"ours/floor {ours / bare:.2f}  naive/ours {naive_time / ours:.1f}"
        )
    print(f"max ratio to floor = {max(worst.values()):.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch", type=int, default=2, help="trajectories, on both sides")
    parser.add_argument("--floor", action="store_true", help="also run part 2")
    parser.add_argument(
        "--naive-steps", type=int, default=200, help="naive is timed on fewer steps and scaled"
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
        f"numpy {np.__version__}, 1 thread (torch and BLAS)"
    )
    print(
        f"T = {args.steps}, float64, full spectrum, {args.batch} trajectories, {args.repeats} "
        "interleaved repetitions, medians"
    )
    if args.floor:
        floor_part(args.steps, args.repeats, args.naive_steps)
    speedup, difference = textbook_part(args.steps, args.repeats, args.batch)
    print(f"largest difference / interval = {difference:.2f}")
    print(f"min speed-up over the textbook method = {speedup:.2f}")


if __name__ == "__main__":
    main()
