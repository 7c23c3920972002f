"""The peephole LSTM kernel and the LSTM layer's ONNX options (peephole, clip, input_forget).

No PyTorch here (it has no peephole LSTM): the hand-written backward is checked against
float64 central differences with random upstream gradients on every output, over randomized
shapes including T=1 and B=1; the forward against a plain transcription of ONNX's equations.
"""

import numpy as np
import pytest

from lstmlab import LSTM
from lstmlab.kernels import LSTMParams, lstm_backward, lstm_forward
from lstmlab.kernels.lstm_peephole import (LSTMPeepholeParams, lstm_peephole_backward,
                                           lstm_peephole_forward)
from seq_helpers import assert_step_equals_forward, central_difference, numerical_gradient

OPTIONS = [  # (peephole, clip, input_forget)
    (True, None, False), (True, 0.9, False), (True, None, True), (True, 0.7, True),
    (False, 0.8, False), (False, None, True),
]


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def reference_forward(x, h0, c0, Wx, Wh, b, P, clip, input_forget, lengths=None):
    """ONNX's LSTM equations, one step at a time, in lstmlab's gate layout."""
    T, B, _ = x.shape
    H = h0.shape[1]
    cl = (lambda z: np.clip(z, -clip, clip)) if clip is not None else (lambda z: z)
    P = np.zeros(3 * H) if P is None else P
    b = np.zeros(4 * H) if b is None else b
    h, c, ys = h0.copy(), c0.copy(), []
    for t in range(T):
        z = x[t] @ Wx + h @ Wh + b
        i = sigmoid(cl(z[:, H:2 * H] + P[H:2 * H] * c))
        f = 1 - i if input_forget else sigmoid(cl(z[:, :H] + P[:H] * c))
        g = np.tanh(cl(z[:, 3 * H:]))
        c_new = f * c + i * g
        o = sigmoid(cl(z[:, 2 * H:3 * H] + P[2 * H:] * c_new))
        h_new = o * np.tanh(c_new)
        if lengths is not None:
            on = (t < lengths)[:, None]
            h_new, c_new = np.where(on, h_new, h), np.where(on, c_new, c)
            ys.append(np.where(on, h_new, 0.0))
        else:
            ys.append(h_new)
        h, c = h_new, c_new
    return np.stack(ys), h, c


def random_case(seed, peephole, clip, input_forget):
    rng = np.random.default_rng(seed)
    T = int(rng.integers(1, 6)) if seed % 3 else 1
    B = int(rng.integers(1, 4)) if seed % 4 else 1
    D, H = int(rng.integers(1, 5)), int(rng.integers(1, 5))
    x = rng.normal(size=(T, B, D))
    h0, c0 = rng.normal(size=(B, H)), rng.normal(size=(B, H))
    params = LSTMPeepholeParams(rng.normal(0, 0.6, (D, 4 * H)), rng.normal(0, 0.6, (H, 4 * H)),
                                rng.normal(0, 0.6, 4 * H) if seed % 5 else None,
                                rng.normal(0, 0.6, 3 * H) if peephole else None)
    lengths = rng.integers(1, T + 1, size=B) if seed % 2 else None
    return rng, x, h0, c0, params, lengths


@pytest.mark.parametrize("peephole,clip,input_forget", OPTIONS)
@pytest.mark.parametrize("seed", range(4))
def test_forward_matches_the_equations(seed, peephole, clip, input_forget):
    _, x, h0, c0, p, lengths = random_case(seed, peephole, clip, input_forget)
    y, hT, cT, _ = lstm_peephole_forward(x, h0, c0, p, lengths, clip, input_forget)
    ry, rh, rc = reference_forward(x, h0, c0, *p, clip, input_forget, lengths)
    np.testing.assert_allclose(y, ry, rtol=0, atol=1e-13)
    np.testing.assert_allclose(hT, rh, rtol=0, atol=1e-13)
    np.testing.assert_allclose(cT, rc, rtol=0, atol=1e-13)


@pytest.mark.parametrize("peephole,clip,input_forget", OPTIONS)
@pytest.mark.parametrize("seed", range(3))
def test_backward_matches_finite_differences(seed, peephole, clip, input_forget):
    rng, x, h0, c0, p, lengths = random_case(100 + seed, peephole, clip, input_forget)
    y, hT, cT, cache = lstm_peephole_forward(x, h0, c0, p, lengths, clip, input_forget)
    dy, dhT, dcT = rng.normal(size=y.shape), rng.normal(size=hT.shape), rng.normal(size=cT.shape)
    dx, dh0, dc0, grads = lstm_peephole_backward(dy, dhT, dcT, cache)

    def loss():
        y, hT, cT, _ = lstm_peephole_forward(x, h0, c0, p, lengths, clip, input_forget)
        return (y * dy).sum() + (hT * dhT).sum() + (cT * dcT).sum()

    named = {"x": (x, dx), "h0": (h0, dh0), "c0": (c0, dc0)}
    named.update({k: (v, getattr(grads, k)) for k, v in p._asdict().items() if v is not None})
    for name, (arr, analytic) in named.items():
        np.testing.assert_allclose(analytic, numerical_gradient(loss, arr), rtol=1e-6, atol=1e-7,
                                   err_msg=name)


def test_no_options_is_the_plain_kernel_exactly():
    rng, x, h0, c0, p, _ = random_case(7, False, None, False)
    lengths = np.array([1] + [x.shape[0]] * (x.shape[1] - 1))
    plain = LSTMParams(p.Wx, p.Wh, p.b)
    y1, h1, c1, k1 = lstm_forward(x, h0, c0, plain, lengths)
    y2, h2, c2, k2 = lstm_peephole_forward(x, h0, c0, p, lengths)
    for a, b in ((y1, y2), (h1, h2), (c1, c2)):
        np.testing.assert_array_equal(a, b)
    dy = rng.normal(size=y1.shape)
    g1 = lstm_backward(dy, None, None, k1)
    g2 = lstm_peephole_backward(dy, None, None, k2)
    for a, b in zip(g1[:3], g2[:3]):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(g1[3], g2[3][:3]):
        np.testing.assert_array_equal(a, b)
    assert g2[3].P is None


def test_input_forget_leaves_the_forget_block_without_gradient():
    rng, x, h0, c0, p, lengths = random_case(9, True, None, True)
    y, _, _, cache = lstm_peephole_forward(x, h0, c0, p, lengths, None, True)
    _, _, _, g = lstm_peephole_backward(rng.normal(size=y.shape), None, None, cache)
    H = h0.shape[1]
    assert not g.Wx[:, :H].any() and not g.Wh[:, :H].any() and not g.P[:H].any()


def test_clip_must_be_positive():
    _, x, h0, c0, p, _ = random_case(1, True, None, False)
    with pytest.raises(ValueError, match="clip"):
        lstm_peephole_forward(x, h0, c0, p, clip=0.0)
    with pytest.raises(ValueError, match="clip"):
        LSTM(2, 3, clip=-1.0)
    for value in (True, np.bool_(True), "3"):
        with pytest.raises(ValueError, match="clip must be a positive number or None"):
            LSTM(2, 3, clip=value)


def test_clip_takes_numpy_numbers():
    for value in (np.int64(3), np.float32(2.5)):
        assert LSTM(2, 3, clip=value).clip == float(value)


# -- the layer option -----------------------------------------------------------------------

def layer_case(seed, **opts):
    rng = np.random.default_rng(seed)
    layer = LSTM(3, 4, num_layers=2, bidirectional=True, dtype=np.float64, rng=rng, **opts)
    for v in layer.params().values():
        v[...] = rng.normal(0, 0.6, size=v.shape)
    return rng, layer


def test_layer_registers_peepholes_after_the_plain_weights():
    plain = LSTM(3, 4, num_layers=2, rng=np.random.default_rng(0))
    peep = LSTM(3, 4, num_layers=2, peephole=True, rng=np.random.default_rng(0))
    extra = [k for k in peep.params() if k not in plain.params()]
    assert extra == ["P_l0", "P_l1"]
    assert peep.params()["P_l1"].shape == (12,)
    for k, v in plain.params().items():  # the same draws for the shared weights
        np.testing.assert_array_equal(v, peep.params()[k])
    assert "peephole=True" in repr(peep)


@pytest.mark.parametrize("opts", [dict(peephole=True), dict(peephole=True, clip=0.8),
                                  dict(input_forget=True, peephole=True)])
def test_layer_gradients_match_finite_differences(opts):
    rng, layer = layer_case(3, **opts)
    T, B = 4, 3
    x = rng.normal(size=(T, B, 3))
    state = (rng.normal(size=(4, B, 4)), rng.normal(size=(4, B, 4)))
    lengths = np.array([4, 2, 3])
    y, (h, c) = layer.forward(x, state, lengths)
    dy, dh, dc = rng.normal(size=y.shape), rng.normal(size=h.shape), rng.normal(size=c.shape)
    layer.backward(dy, (dh, dc))
    grads = {k: v.copy() for k, v in layer.grads().items()}

    def loss():
        y, (h, c) = layer.forward(x, state, lengths)
        return (y * dy).sum() + (h * dh).sum() + (c * dc).sum()

    for name in ("P_l0", "P_l1_reverse", "Wh_l0_reverse", "b_l1"):
        arr = layer.params()[name]
        numeric = np.zeros_like(arr)
        for idx in np.ndindex(arr.shape):
            numeric[idx] = central_difference(loss, arr, idx)
        np.testing.assert_allclose(grads[name], numeric, rtol=1e-6, atol=1e-7, err_msg=name)
    layer.forward(x, state, lengths)  # the last loss() ran on perturbed weights
    dx_full = layer.backward(dy, (dh, dc))[0]
    dx, (dh0, _) = layer.backward(dy, (dh, dc), input_grad=False)
    assert dx_full.shape == x.shape and dx is None and dh0.shape == h.shape
    for name, g in layer.grads().items():  # everything but dx as before
        np.testing.assert_array_equal(g, grads[name], err_msg=name)


def test_step_equals_forward():
    rng = np.random.default_rng(5)
    layer = LSTM(3, 4, num_layers=2, peephole=True, clip=1.5, dtype=np.float64, rng=rng)
    x = rng.normal(size=(6, 2, 3))
    state = (rng.normal(size=(2, 2, 4)), rng.normal(size=(2, 2, 4)))
    assert_step_equals_forward(layer, x, state, atol=1e-14)


def test_variant_layers_refuse_torch_layout():
    layer = LSTM(3, 4, peephole=True)
    with pytest.raises(ValueError, match="peephole"):
        layer.torch_state_dict()
