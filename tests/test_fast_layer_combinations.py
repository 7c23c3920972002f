"""The layers on the fast path against the NumPy reference, over random combinations of options.

Each case draws a layer (LSTM with one of its options — layer norm, peepholes, clip, coupled
gates, a projection, variational dropout, zoneout, weight drop — or the GRU, or the RNN with
tanh or relu), its shape (T and B from 1, odd widths), depth, direction, bias, ragged lengths
and the thread count, and runs the same float64 layer, weights, masks and inputs on both
backends: the outputs, final states, the input, initial-state and every parameter gradient,
and an eval-mode streaming step must agree to 1e-10 of each array's scale.
"""

import numpy as np
import pytest

import lstmlab
from lstmlab.kernels import fast

pytestmark = pytest.mark.skipif(not fast.available(), reason="numba unavailable")

LSTM_OPTIONS = {"plain": {}, "layer norm": {"layer_norm": True}, "peephole": {"peephole": True},
                "clip": {"peephole": True, "clip": 1.5}, "coupled": {"input_forget": True},
                "variational dropout": {"dropout_input": 0.3, "dropout_recurrent": 0.3},
                "zoneout": {"zoneout": 0.2}, "weight drop": {"weight_drop": 0.3}}


def draw_case(rng: np.random.Generator) -> dict:
    T, B, D, H = (int(rng.integers(lo, hi)) for lo, hi in ((1, 8), (1, 6), (1, 12), (2, 24)))
    case = dict(T=T, B=B, D=D, H=H, threads=int(rng.integers(1, 4)),
                lengths=rng.integers(1, T + 1, B) if B > 1 and rng.random() < 0.5 else None,
                kw=dict(num_layers=int(rng.integers(1, 4)), bidirectional=bool(rng.random() < 0.5),
                        bias=bool(rng.random() < 0.7), dtype=np.float64))
    kind = rng.choice(["lstm", "lstm", "lstm", "proj", "gru", "rnn"])
    if kind == "gru":
        case["cls"] = lstmlab.GRU
    elif kind == "rnn":
        case["cls"] = lstmlab.RNN
        case["kw"]["nonlinearity"] = str(rng.choice(["tanh", "relu"]))
    else:
        case["cls"] = lstmlab.LSTM
        option = "plain" if kind == "proj" else str(rng.choice(list(LSTM_OPTIONS)))
        case["kw"].update(LSTM_OPTIONS[option])
        if kind == "proj":
            case["kw"]["proj_size"] = int(rng.integers(1, H))
    return case


def run(case: dict, backend: str) -> list:
    layer = case["cls"](case["D"], case["H"], rng=np.random.default_rng(1), **case["kw"])
    layer.backend = backend
    if hasattr(layer, "rng"):  # the masks of recurrent dropout and zoneout: the same draws
        layer.rng = np.random.default_rng(2)
    rng = np.random.default_rng(3)
    T, B, H = case["T"], case["B"], case["H"]
    rows = case["kw"]["num_layers"] * (2 if case["kw"]["bidirectional"] else 1)
    h0 = rng.normal(size=(rows, B, case["kw"].get("proj_size") or H))
    state = (h0, rng.normal(size=(rows, B, H))) if case["cls"] is lstmlab.LSTM else h0
    x = rng.normal(size=(T, B, case["D"])) * 2
    y, finals = layer.forward(x, state, lengths=case["lengths"])
    dx, dstate = layer.backward(rng.normal(size=y.shape))
    as_tuple = (lambda s: s if isinstance(s, tuple) else (s,))
    out = [y, dx, *as_tuple(finals), *as_tuple(dstate)]
    out += [g for _, g in sorted(layer.grads().items())]
    if not case["kw"]["bidirectional"] and not case["kw"].get("proj_size"):
        layer.eval()
        first = tuple(s[:, :1] for s in state) if isinstance(state, tuple) else state[:, :1]
        out.append(layer.step(x[0, :1], first)[0])
    return out


@pytest.mark.parametrize("seed", range(4))
def test_random_layer_configurations_match_the_reference(seed):
    rng, threads = np.random.default_rng(seed), lstmlab.get_num_threads()
    for _ in range(40):
        case = draw_case(rng)
        lstmlab.set_num_threads(case["threads"])
        try:
            want, got = run(case, "numpy"), run(case, "fast")
        finally:
            lstmlab.set_num_threads(threads)
        assert len(want) == len(got)
        for i, (w, g) in enumerate(zip(want, got)):
            scale = max(1.0, float(np.abs(w).max()) if np.size(w) else 1.0)
            assert np.abs(np.asarray(g) - w).max(initial=0.0) <= 1e-10 * scale, (case, i)
