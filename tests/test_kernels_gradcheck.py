"""Finite-difference checks of the hand-derived BPTT, independent of PyTorch (float64)."""

import numpy as np
import pytest

from lstmlab.kernels import (LSTMParams, RNNParams, lstm_backward, lstm_forward, reverse_padded,
                             rnn_backward, rnn_forward)
from seq_helpers import numerical_gradient


def close(analytic, numeric, tol=1e-7):
    scale = max(np.abs(numeric).max(), 1e-3)
    return np.abs(analytic - numeric).max() / scale < tol


@pytest.mark.parametrize("T,B,D,H,ragged,bias", [(1, 1, 2, 3, False, True), (4, 3, 3, 2, True, True),
                                                 (5, 2, 2, 4, False, False), (3, 4, 1, 3, True, False)])
def test_lstm_kernel_gradcheck(T, B, D, H, ragged, bias):
    rng = np.random.default_rng(T * 100 + B)
    x = rng.normal(size=(T, B, D))
    h0, c0 = rng.normal(size=(B, H)), rng.normal(size=(B, H))
    p = LSTMParams(rng.normal(0, 0.7, (D, 4 * H)), rng.normal(0, 0.7, (H, 4 * H)),
                   rng.normal(0, 0.7, 4 * H) if bias else None)
    lengths = rng.integers(1, T + 1, size=B) if ragged else None
    dy, dhT, dcT = rng.normal(size=(T, B, H)), rng.normal(size=(B, H)), rng.normal(size=(B, H))

    def loss():
        y, hT, cT, _ = lstm_forward(x, h0, c0, p, lengths)
        return (y * dy).sum() + (hT * dhT).sum() + (cT * dcT).sum()

    _, _, _, cache = lstm_forward(x, h0, c0, p, lengths)
    dx, dh0, dc0, g = lstm_backward(dy, dhT, dcT, cache)
    checks = [(dx, x), (dh0, h0), (dc0, c0), (g.Wx, p.Wx), (g.Wh, p.Wh)]
    if bias:
        checks.append((g.b, p.b))
    else:
        assert g.b is None
    for analytic, arr in checks:
        assert close(analytic, numerical_gradient(loss, arr))
    if lengths is not None:  # padding receives no gradient
        for b in range(B):
            assert np.all(dx[lengths[b]:, b] == 0)


@pytest.mark.parametrize("act", ["tanh", "relu"])
@pytest.mark.parametrize("T,B,ragged", [(1, 1, False), (5, 3, True), (4, 2, False)])
def test_rnn_kernel_gradcheck(act, T, B, ragged):
    rng = np.random.default_rng(T * 10 + B)
    D, H = 3, 4
    x = rng.normal(size=(T, B, D))
    h0 = rng.normal(size=(B, H))
    p = RNNParams(rng.normal(0, 0.6, (D, H)), rng.normal(0, 0.6, (H, H)), rng.normal(0, 0.6, H))
    lengths = rng.integers(1, T + 1, size=B) if ragged else None
    dy, dhT = rng.normal(size=(T, B, H)), rng.normal(size=(B, H))

    def loss():
        y, hT, _ = rnn_forward(x, h0, p, act, lengths)
        return (y * dy).sum() + (hT * dhT).sum()

    _, _, cache = rnn_forward(x, h0, p, act, lengths)
    dx, dh0, g = rnn_backward(dy, dhT, cache)
    for analytic, arr in [(dx, x), (dh0, h0), (g.Wx, p.Wx), (g.Wh, p.Wh), (g.b, p.b)]:
        assert close(analytic, numerical_gradient(loss, arr))


def test_lstm_kernel_final_state_is_last_valid_step():
    rng = np.random.default_rng(0)
    T, B, D, H = 6, 3, 2, 3
    x = rng.normal(size=(T, B, D))
    p = LSTMParams(rng.normal(size=(D, 4 * H)), rng.normal(size=(H, 4 * H)), rng.normal(size=4 * H))
    h0, c0 = rng.normal(size=(B, H)), rng.normal(size=(B, H))
    lengths = np.array([6, 2, 4])
    y, hT, cT, _ = lstm_forward(x, h0, c0, p, lengths)
    for b, n in enumerate(lengths):  # same as running that sequence alone for n steps
        yb, hb, cb, _ = lstm_forward(x[:n, b:b + 1], h0[b:b + 1], c0[b:b + 1], p)
        np.testing.assert_allclose(hT[b], hb[0], rtol=0, atol=1e-14)
        np.testing.assert_allclose(cT[b], cb[0], rtol=0, atol=1e-14)
        np.testing.assert_allclose(y[:n, b], yb[:, 0], rtol=0, atol=1e-14)


def test_reverse_padded_is_an_involution_within_lengths():
    x = np.arange(5 * 3).reshape(5, 3, 1)
    lengths = np.array([5, 2, 3])
    r = reverse_padded(x, lengths)
    assert list(r[:, 1, 0]) == [4, 1, 7, 10, 13]
    np.testing.assert_array_equal(reverse_padded(r, lengths), x)


def test_sigmoid_is_safe_at_extremes():
    from lstmlab.kernels import sigmoid
    z = np.array([-1e4, -800.0, 0.0, 800.0, 1e4])
    with np.errstate(all="raise"):
        s = sigmoid(z)
    np.testing.assert_array_equal(s, [0.0, 0.0, 0.5, 1.0, 1.0])
