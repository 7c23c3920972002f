"""The LSTM with projections (``lstmlab.LSTM(proj_size=P)``) against ``torch.nn.LSTM(proj_size=P)``.

Randomized configurations (T and B from 1, 1-3 layers, bidirectional, batch_first, ragged
lengths, bias on/off, P from 1 to H-1), non-zero biases and initial states (h of width P, c of
width H), random upstream gradients on the outputs and both final states: outputs, final
states and every gradient (``weight_hr`` included) in float64 to 1e-10, float32 to 1e-5. Then
streaming, conversion both ways and the errors for what does not combine.
"""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import lstmlab  # noqa: E402
from seq_helpers import EDGE_SHAPES, edge_config  # noqa: E402
from seq_helpers import random_config as shared_random_config  # noqa: E402
from torch_ref import TOL, assert_worst_within, make_torch_twin, rel_err, torch_run  # noqa: E402

# torch's float32 LSTM says it skips oneDNN for projections (and computes them as it should)
pytestmark = pytest.mark.filterwarnings("ignore:LSTM with projections is not supported with oneDNN")


def random_config(seed):
    """A case of :func:`seq_helpers.random_config` with 2 to 6 units projected to P of them,
    every P from 1 to H - 1 in turn over the seeds."""
    cfg = shared_random_config(seed, H=6, distinct=False)
    cfg["H"] += 1
    cfg["P"] = 1 + seed % (cfg["H"] - 1)
    return cfg


def run_case(cfg, dtype, seed):
    rng = np.random.default_rng(3000 + seed)
    layer = lstmlab.LSTM(cfg["D"], cfg["H"], num_layers=cfg["L"], bias=cfg["bias"],
                         batch_first=cfg["batch_first"], bidirectional=cfg["bidirectional"],
                         dtype=dtype, rng=rng, proj_size=cfg["P"])
    mod = make_torch_twin(layer, rng)
    assert mod.proj_size == cfg["P"]
    T, B, D, H, P = cfg["T"], cfg["B"], cfg["D"], cfg["H"], cfg["P"]
    K = 2 if cfg["bidirectional"] else 1
    n = cfg["L"] * K
    x = rng.normal(size=(B, T, D) if cfg["batch_first"] else (T, B, D)).astype(dtype)
    state = (rng.normal(size=(n, B, P)).astype(dtype), rng.normal(size=(n, B, H)).astype(dtype))
    lengths = None
    if cfg["use_lengths"]:
        lengths = rng.integers(1, T + 1, size=B)
        lengths[rng.integers(B)] = T
    dy = rng.normal(size=(B, T, K * P) if cfg["batch_first"] else (T, B, K * P)).astype(dtype)
    dstate = (rng.normal(size=(n, B, P)).astype(dtype), rng.normal(size=(n, B, H)).astype(dtype))
    y, fins = layer.forward(x, state, lengths=lengths)
    dx, dinit = layer.backward(dy, dstate)
    ty, tfins, tdx, tdinit, tgrads = torch_run(mod, x, state, lengths, dy, dstate)
    errors = {"y": rel_err(y, ty), "dx": rel_err(dx, tdx)}
    for k in range(2):
        errors[f"final{k}"] = rel_err(fins[k], tfins[k])
        errors[f"dinit{k}"] = rel_err(dinit[k], tdinit[k])
    ours = layer.torch_state_dict(grads=True)
    assert set(ours) == set(tgrads) and any(k.startswith("weight_hr") for k in ours)
    errors.update({k: rel_err(ours[k], g) for k, g in tgrads.items()})
    return errors


@pytest.mark.parametrize("dtype,seed", [(np.float64, s) for s in range(24)]
                         + [(np.float32, s) for s in range(6)])
def test_projection_matches_torch(dtype, seed):
    cfg = random_config(seed)
    assert_worst_within(run_case(cfg, dtype, seed), TOL[dtype], cfg)


@pytest.mark.parametrize("T,B", EDGE_SHAPES)
def test_projection_edge_shapes(T, B):
    assert max(run_case(edge_config(T, B, H=5, P=2), np.float64, 7 * T + B).values()) <= 1e-10


def test_step_shapes_and_values_follow_forward():
    rng = np.random.default_rng(1)
    layer = lstmlab.LSTM(4, 6, num_layers=2, dtype=np.float64, rng=rng, proj_size=3)
    assert layer.params()["Wr_l0"].shape == (6, 3) and layer.params()["Wh_l1"].shape == (3, 24)
    assert layer.params()["Wx_l1"].shape == (3, 24)
    x = rng.normal(size=(5, 2, 4))
    state = (rng.normal(size=(2, 2, 3)), rng.normal(size=(2, 2, 6)))
    y, (h, c) = layer.forward(x, state)
    assert y.shape == (5, 2, 3) and h.shape == (2, 2, 3) and c.shape == (2, 2, 6)
    s = state
    for t in range(5):
        y_t, s = layer.step(x[t], s)
        assert rel_err(y_t, y[t]) <= 1e-13
    assert rel_err(s[0], h) <= 1e-13 and rel_err(s[1], c) <= 1e-13
    y1, (h1, c1) = layer.step(x[0, 0])  # unbatched from zeros
    assert y1.shape == (3,) and h1.shape == (2, 3) and c1.shape == (2, 6)
    with pytest.raises(ValueError, match=r"state\[0\] \(h_0\) must have shape \(2, 2, 3\)"):
        layer.forward(x, (state[1], state[1]))


def test_conversion_both_ways_and_formats_without_projections():
    from lstmlab.interop import from_torch, from_torch_state_dict, to_keras_weights, to_onnx, to_torch
    rng = np.random.default_rng(2)
    layer = lstmlab.LSTM(3, 5, num_layers=2, bidirectional=True, dtype=np.float64, rng=rng,
                         proj_size=2)
    back = from_torch_state_dict(layer.torch_state_dict())
    assert repr(back) == repr(layer)
    mod = to_torch(layer)
    assert mod.proj_size == 2
    again = from_torch(mod)
    for k, v in layer.params().items():
        np.testing.assert_array_equal(back.params()[k], v)
        np.testing.assert_array_equal(again.params()[k], v)
    x = rng.normal(size=(4, 2, 3))
    with torch.no_grad():
        ty, _ = mod(torch.from_numpy(x))
    assert rel_err(layer(x)[0], ty.numpy()) <= 1e-12
    with pytest.raises(ValueError, match="Keras's LSTM has no projection"):
        to_keras_weights(layer)
    with pytest.raises(ValueError, match="ONNX's LSTM has no projection"):
        to_onnx(layer)


def test_options_that_do_not_combine_are_refused_at_construction():
    with pytest.raises(ValueError, match=r"proj_size must be an integer in \[0, hidden_size\)"):
        lstmlab.LSTM(3, 4, proj_size=4)
    with pytest.raises(ValueError, match="proj_size must be"):
        lstmlab.LSTM(3, 4, proj_size=-1)
    for option in (dict(peephole=True), dict(clip=1.0), dict(input_forget=True)):
        with pytest.raises(ValueError, match="proj_size does not combine with peephole"):
            lstmlab.LSTM(3, 4, proj_size=2, **option)
    assert repr(lstmlab.LSTM(3, 4, proj_size=2)) == "LSTM(3, 4, dtype=float32, proj_size=2)"


def _fast_and_reference(dtype, seed, threads, team=False):
    """One projected layer's outputs, final states and every gradient on the compiled kernels
    (with ``threads``) and on the NumPy reference. ``team``: a shape with work enough for a
    team of three threads."""
    from lstmlab.kernels import fast
    rng = np.random.default_rng(seed)
    T, B, D, H = (20, 7, 24, 224) if team else (
        int(rng.integers(1, 9)), int(rng.integers(1, 7)), int(rng.integers(1, 6)),
        int(rng.integers(2, 41)))
    P = int(rng.integers(1, H))
    layer = lstmlab.LSTM(D, H, num_layers=2, bidirectional=bool(seed % 2), dtype=dtype, rng=rng,
                         proj_size=P)
    K = 2 if seed % 2 else 1
    x = rng.normal(size=(T, B, D)).astype(dtype)
    state = (rng.normal(size=(2 * K, B, P)).astype(dtype),
             rng.normal(size=(2 * K, B, H)).astype(dtype))
    lengths = rng.integers(1, T + 1, size=B)
    lengths[0] = T
    dy = rng.normal(size=(T, B, K * P)).astype(dtype)
    dstate = (rng.normal(size=state[0].shape).astype(dtype),
              rng.normal(size=state[1].shape).astype(dtype))
    runs = []
    for backend, n in (("fast", threads), ("numpy", 1)):
        layer.backend = backend
        fast.set_num_threads(n)
        try:
            y, fins = layer.forward(x, state, lengths=lengths)
            dx, dinit = layer.backward(dy, dstate)
        finally:
            fast.set_num_threads(fast_threads)
        runs.append([y, *fins, dx, *dinit, *[g.copy() for g in layer.grads().values()]])
    return runs


fast_threads = __import__("lstmlab").get_num_threads()


@pytest.mark.parametrize("dtype,seed,team", [(np.float64, s, s == 3) for s in range(4)]
                         + [(np.float32, s, s == 1) for s in range(2)])
def test_compiled_projection_equals_the_reference(dtype, seed, team):
    """The compiled loops (ragged lengths, two layers, one or both directions) against the
    NumPy reference; on a shape that forms teams, the same bits for 1, 2 and 3 threads."""
    pytest.importorskip("numba")
    compiled, reference = _fast_and_reference(dtype, seed, 1, team)
    for a, b in zip(compiled, reference):
        assert rel_err(a, b) <= TOL[dtype]
    for threads in (2, 3) if team else ():
        again, _ = _fast_and_reference(dtype, seed, threads, team)
        for a, b in zip(compiled, again):
            np.testing.assert_array_equal(a, b)

