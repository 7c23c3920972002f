"""PyTorch parity of the RNN and LSTM layers: outputs, final states and every gradient.

Randomized configurations (T and B from 1, D != H, 1-3 layers, bidirectional, batch_first,
lengths, bias on/off, relu RNN), non-zero biases and initial states, random upstream
gradients on outputs and on the final state. float64 to 1e-10, float32 to 1e-5.
"""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import lstmlab  # noqa: E402
from seq_helpers import EDGE_SHAPES, edge_config  # noqa: E402
from seq_helpers import random_config as shared_random_config  # noqa: E402
from torch_ref import TOL, assert_worst_within, make_torch_twin, rel_err, torch_run  # noqa: E402


def random_config(seed):
    """A case of :func:`seq_helpers.random_config` (1 to 5 units) of each cell in turn."""
    return {"kind": ["lstm", "rnn_tanh", "rnn_relu"][seed % 3], **shared_random_config(seed, H=6)}


def build(cfg, dtype, rng):
    common = dict(num_layers=cfg["L"], bias=cfg["bias"], batch_first=cfg["batch_first"],
                  bidirectional=cfg["bidirectional"], dtype=dtype, rng=rng)
    if cfg["kind"] == "lstm":
        return lstmlab.LSTM(cfg["D"], cfg["H"], **common)
    return lstmlab.RNN(cfg["D"], cfg["H"], nonlinearity=cfg["kind"][4:], **common)


def run_case(cfg, dtype, seed):
    rng = np.random.default_rng(1000 + seed)
    layer = build(cfg, dtype, rng)
    mod = make_torch_twin(layer, rng)
    T, B, D, H = cfg["T"], cfg["B"], cfg["D"], cfg["H"]
    K = 2 if cfg["bidirectional"] else 1
    n = cfg["L"] * K
    x = rng.normal(size=(B, T, D) if cfg["batch_first"] else (T, B, D)).astype(dtype)
    nstate = 2 if cfg["kind"] == "lstm" else 1
    state = tuple(rng.normal(size=(n, B, H)).astype(dtype) for _ in range(nstate))
    lengths = None
    if cfg["use_lengths"]:
        lengths = rng.integers(1, T + 1, size=B)
        lengths[rng.integers(B)] = T  # torch pads to the longest; keep one full-length row
    y_shape = (B, T, K * H) if cfg["batch_first"] else (T, B, K * H)
    dy = rng.normal(size=y_shape).astype(dtype)
    dstate = tuple(rng.normal(size=(n, B, H)).astype(dtype) for _ in range(nstate))

    if cfg["kind"] == "lstm":
        y, fins = layer.forward(x, state, lengths=lengths)
        dx, dinit = layer.backward(dy, dstate)
    else:
        y, hn = layer.forward(x, state[0], lengths=lengths)
        fins = (hn,)
        dx, dh0 = layer.backward(dy, dstate[0])
        dinit = (dh0,)
    ty, tfins, tdx, tdinit, tgrads = torch_run(mod, x, state, lengths, dy, dstate)
    errors = {"y": rel_err(y, ty), "dx": rel_err(dx, tdx)}
    for k, (a, b) in enumerate(zip(fins, tfins)):
        errors[f"final{k}"] = rel_err(a, b)
    for k, (a, b) in enumerate(zip(dinit, tdinit)):
        errors[f"dinit{k}"] = rel_err(a, b)
    ours = layer.torch_state_dict(grads=True)
    assert set(ours) == set(tgrads)
    for name, g in tgrads.items():
        errors[name] = rel_err(ours[name], g)
    if lengths is not None:  # outputs past each length are exactly zero
        yt = y if not cfg["batch_first"] else np.swapaxes(y, 0, 1)
        for b in range(B):
            assert np.all(yt[lengths[b]:, b] == 0)
    return errors


@pytest.mark.parametrize("dtype,seed", [(np.float64, s) for s in range(36)]
                         + [(np.float32, s) for s in range(12)])
def test_parity(dtype, seed):
    cfg = random_config(seed)
    assert_worst_within(run_case(cfg, dtype, seed), TOL[dtype], cfg)


@pytest.mark.parametrize("kind", ["lstm", "rnn_tanh", "rnn_relu"])
@pytest.mark.parametrize("T,B", EDGE_SHAPES)
def test_parity_edge_shapes(kind, T, B):
    errors = run_case(edge_config(T, B, kind=kind), np.float64, 7 * T + B)
    assert max(errors.values()) <= 1e-10, errors


def test_unbatched_input_matches_torch():
    rng = np.random.default_rng(3)
    layer = lstmlab.LSTM(3, 4, num_layers=2, bidirectional=True, dtype=np.float64, rng=rng)
    mod = make_torch_twin(layer, rng)
    x = rng.normal(size=(5, 3))
    h0, c0 = rng.normal(size=(4, 4)), rng.normal(size=(4, 4))
    y, (hn, cn) = layer.forward(x, (h0, c0))
    ty, (thn, tcn) = mod(torch.tensor(x), (torch.tensor(h0), torch.tensor(c0)))
    assert y.shape == (5, 8) and hn.shape == (4, 4)
    assert rel_err(y, ty.detach().numpy()) < 1e-12
    assert rel_err(cn, tcn.detach().numpy()) < 1e-12
    dx, (dh0, dc0) = layer.backward(np.ones_like(y))
    assert dx.shape == x.shape and dh0.shape == h0.shape


def test_torch_state_dict_round_trip_keeps_outputs():
    rng = np.random.default_rng(4)
    a = lstmlab.LSTM(3, 5, num_layers=2, bidirectional=True, dtype=np.float64, rng=rng)
    b = lstmlab.LSTM(3, 5, num_layers=2, bidirectional=True, dtype=np.float64,
                     rng=np.random.default_rng(5))
    b.load_torch_state_dict(a.torch_state_dict())
    for k, v in a.params().items():
        np.testing.assert_array_equal(b.params()[k], v)


@pytest.mark.parametrize("backend", ["numpy", "fast"])
@pytest.mark.parametrize("seed", [0, 1, 2, 3, 6, 10])
def test_input_grad_false_skips_dx_only(backend, seed):
    """``backward(..., input_grad=False)``: dx is None, every other gradient is unchanged
    (bit for bit: only the input-gradient GEMM of the first layer is skipped)."""
    if backend == "fast":
        pytest.importorskip("numba")
    cfg = random_config(seed)
    cfg["L"] = 2  # the upper layer must still pass its dx down
    rng = np.random.default_rng(seed)
    layer = build(cfg, np.float64, rng)
    layer.backend = backend
    T, B, D, H = cfg["T"], cfg["B"], cfg["D"], cfg["H"]
    K = 2 if cfg["bidirectional"] else 1
    x = rng.normal(size=(B, T, D) if cfg["batch_first"] else (T, B, D))
    dy = rng.normal(size=(B, T, K * H) if cfg["batch_first"] else (T, B, K * H))
    runs = []
    for input_grad in (True, False):
        layer.forward(x)
        dx, dinit = layer.backward(dy, input_grad=input_grad)
        runs.append((dx, dinit, {k: v.copy() for k, v in layer.torch_state_dict(grads=True).items()}))
    (dx, dinit, grads), (dx2, dinit2, grads2) = runs
    assert dx is not None and dx.shape == x.shape and dx2 is None
    as_tuple = (lambda d: d) if cfg["kind"] == "lstm" else (lambda d: (d,))
    for a, b in zip(as_tuple(dinit), as_tuple(dinit2), strict=True):
        np.testing.assert_array_equal(a, b)
    assert set(grads) == set(grads2)
    for k in grads:
        np.testing.assert_array_equal(grads[k], grads2[k])
