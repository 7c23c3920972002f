"""The layer-normalised LSTM (Ba, Kiros & Hinton 2016, §3.1 and eq. 20-22): forward and BPTT.

Dimensions: T time, B batch, D input features, H hidden units. Time-major: ``x (T, B, D)``.

Layer normalisation of a row vector ``v`` of n numbers, with its mean μ and biased variance σ²
over those n numbers (``EPS`` as PyTorch's ``nn.LayerNorm``)::

    LN(v) = (v - μ) / sqrt(σ² + EPS)

The paper's LN-LSTM normalises the recurrent and the input pre-activations separately, each
over the whole ``4H`` vector of one step (its eq. 20 writes ``LN(W_h h_{t-1})`` of all four
gates at once; this module follows that, not the per-gate variant of some later code), and
the cell state before the output tanh::

    a_t  = g_x ⊙ LN(x_t · Wx) + g_h ⊙ LN(h_{t-1} · Wh) + b      pre-activations, blocks f, i, o, C̃
    f_t, i_t, o_t = σ(a_t blocks f, i, o);  C̃_t = tanh(a_t block C̃)
    C_t  = f_t ⊙ C_{t-1} + i_t ⊙ C̃_t                             cell state (not normalised)
    h_t  = o_t ⊙ tanh(g_c ⊙ LN(C_t) + b_c)                         hidden state

The paper gives each of the two pre-activation norms a gain and a bias and adds the LSTM's bias
``b`` after them: the three biases only ever appear as their sum, so one vector (the LSTM's
``b``, as the plain LSTM keeps ``bias_ih + bias_hh``) carries them. The gains ``g_x``, ``g_h``
(4H each), ``g_c`` (H) and the cell norm's bias ``b_c`` (H) start at 1 and 0.

``Wx``, ``Wh`` and ``b`` are laid out as in :mod:`lstmlab.kernels.lstm` (column blocks f, i,
o, C̃); ``g_x`` and ``g_h`` have the same blocks. Variable lengths as there: padded steps output
0, carry the state and get no gradient. The state carried between steps is ``(h_t, C_t)``
with C_t before its normalisation.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ._common import sequence_outputs, sigmoid, step_masks

EPS = 1e-5  # added to the variance inside the square root (PyTorch's nn.LayerNorm default)


class LSTMLayerNormParams(NamedTuple):
    """Parameters of one direction of one layer-normalised LSTM layer."""

    Wx: np.ndarray  # (D, 4H)  input weights, gate blocks f, i, o, C̃
    Wh: np.ndarray  # (H, 4H)  recurrent weights, same blocks
    b: np.ndarray | None  # (4H,)  bias (the sum of the paper's three), or None
    gx: np.ndarray  # (4H,)  gain of LN(x_t · Wx)
    gh: np.ndarray  # (4H,)  gain of LN(h_{t-1} · Wh)
    gc: np.ndarray  # (H,)   gain of LN(C_t)
    bc: np.ndarray  # (H,)   bias of LN(C_t)


class LSTMLayerNormCache(NamedTuple):
    """What forward saves for backward; backward takes exactly this."""

    x: np.ndarray  # (T, B, D)
    h: np.ndarray  # (T+1, B, H)  h[0] = h0
    c: np.ndarray  # (T+1, B, H)  c[0] = c0, before normalisation
    gates: np.ndarray  # (T, B, 4H)  activated f, i, o, C̃
    tanh_c: np.ndarray  # (T, B, H)  tanh(g_c ⊙ LN(C_t) + b_c)
    x_hat: np.ndarray  # (T, B, 4H)  LN(x_t · Wx)
    h_hat: np.ndarray  # (T, B, 4H)  LN(h_{t-1} · Wh)
    c_hat: np.ndarray  # (T, B, H)   LN(C_t)
    rstd: np.ndarray  # (T, B, 3)    1 / sqrt(σ² + EPS) of the three norms (x, h, C)
    params: LSTMLayerNormParams
    active: np.ndarray | None  # (T, B, 1) or None


class LSTMLayerNormStep(NamedTuple):
    """One step's results (each row of B)."""

    h: np.ndarray  # (B, H)
    c: np.ndarray  # (B, H)
    gates: np.ndarray  # (B, 4H)
    tanh_c: np.ndarray  # (B, H)
    x_hat: np.ndarray  # (B, 4H)
    h_hat: np.ndarray  # (B, 4H)
    c_hat: np.ndarray  # (B, H)
    rstd: np.ndarray  # (B, 3)


def layer_norm(v: np.ndarray):
    """``(LN(v), 1 / sqrt(σ² + EPS))`` over the last axis of ``v (B, n)``."""
    d = v - v.mean(axis=-1, keepdims=True)
    rstd = 1.0 / np.sqrt((d * d).mean(axis=-1, keepdims=True) + EPS)  # (B, 1)
    return d * rstd, rstd[:, 0]


def layer_norm_backward(dv_hat: np.ndarray, v_hat: np.ndarray, rstd: np.ndarray) -> np.ndarray:
    """dL/dv from dL/dv̂ for ``v̂ = LN(v)``: ``rstd · (dv̂ - mean(dv̂) - v̂ · mean(dv̂ ⊙ v̂))``."""
    mean_d = dv_hat.mean(axis=-1, keepdims=True)
    mean_dv = (dv_hat * v_hat).mean(axis=-1, keepdims=True)
    return rstd[:, None] * (dv_hat - mean_d - v_hat * mean_dv)


def lstm_layernorm_cell(zx: np.ndarray, zh: np.ndarray, c_prev: np.ndarray,
                        params: LSTMLayerNormParams) -> LSTMLayerNormStep:
    """One step from ``zx = x_t · Wx`` and ``zh = h_{t-1} · Wh`` (each (B, 4H)) and C_{t-1}.
    The sequence kernel and the layer's single-step path both call this."""
    H = c_prev.shape[-1]
    x_hat, rx = layer_norm(zx)  # LN(x_t · Wx)
    h_hat, rh = layer_norm(zh)  # LN(h_{t-1} · Wh)
    z = params.gx * x_hat + params.gh * h_hat  # a_t = g_x ⊙ LN(x·Wx) + g_h ⊙ LN(h·Wh) + b
    if params.b is not None:
        z += params.b
    sigmoid(z[:, :3 * H], out=z[:, :3 * H])  # f_t, i_t, o_t = σ(...)
    np.tanh(z[:, 3 * H:], out=z[:, 3 * H:])  # C̃_t = tanh(...)
    f, i, o, g = z[:, :H], z[:, H:2 * H], z[:, 2 * H:3 * H], z[:, 3 * H:]
    c = f * c_prev + i * g  # C_t = f_t ⊙ C_{t-1} + i_t ⊙ C̃_t
    c_hat, rc = layer_norm(c)  # LN(C_t)
    tanh_c = np.tanh(params.gc * c_hat + params.bc)  # tanh(g_c ⊙ LN(C_t) + b_c)
    h = o * tanh_c  # h_t = o_t ⊙ tanh(g_c ⊙ LN(C_t) + b_c)
    return LSTMLayerNormStep(h, c, z, tanh_c, x_hat, h_hat, c_hat, np.stack([rx, rh, rc], -1))


def lstm_layernorm_forward(x: np.ndarray, h0: np.ndarray, c0: np.ndarray,
                           params: LSTMLayerNormParams, lengths: np.ndarray | None = None):
    """Run the LN-LSTM over ``x (T, B, D)`` from ``(h0, c0)``, each (B, H). Returns ``(y, hT,
    cT, cache)`` as :func:`lstmlab.kernels.lstm_forward` does."""
    T, B, D = x.shape
    H = params.Wh.shape[0]
    dtype = x.dtype
    active = step_masks(lengths, T, dtype)
    zx = (x.reshape(T * B, D) @ params.Wx).reshape(T, B, 4 * H)  # x_t · Wx of every step
    h, c = np.empty((T + 1, B, H), dtype), np.empty((T + 1, B, H), dtype)
    h[0], c[0] = h0, c0
    gates, x_hat, h_hat = (np.empty((T, B, 4 * H), dtype) for _ in range(3))
    tanh_c, c_hat, rstd = np.empty((T, B, H), dtype), np.empty((T, B, H), dtype), np.empty(
        (T, B, 3), dtype)
    for t in range(T):
        s = lstm_layernorm_cell(zx[t], h[t] @ params.Wh, c[t], params)
        h[t + 1], c[t + 1], gates[t], tanh_c[t] = s.h, s.c, s.gates, s.tanh_c
        x_hat[t], h_hat[t], c_hat[t], rstd[t] = s.x_hat, s.h_hat, s.c_hat, s.rstd
        if active is not None:  # finished sequences carry their state unchanged
            done = active[t] == 0
            np.copyto(h[t + 1], h[t], where=done)
            np.copyto(c[t + 1], c[t], where=done)
    y = sequence_outputs(h, active)
    cache = LSTMLayerNormCache(x, h, c, gates, tanh_c, x_hat, h_hat, c_hat, rstd, params, active)
    return y, h[T].copy(), c[T].copy(), cache


def lstm_layernorm_backward(dy: np.ndarray | None, dhT: np.ndarray | None,
                            dcT: np.ndarray | None, cache: LSTMLayerNormCache,
                            need_dx: bool = True):
    """Backpropagation through time for :func:`lstm_layernorm_forward`. Returns ``(dx, dh0,
    dc0, grads)``, ``grads`` an :class:`LSTMLayerNormParams` of gradients (``b`` None without
    bias; ``dx`` None with ``need_dx=False``)."""
    x, h, c, gates, tanh_c, x_hat, h_hat, c_hat, rstd, p, active = cache
    T, B, D = x.shape
    H = p.Wh.shape[0]
    dtype = x.dtype
    dh = np.zeros((B, H), dtype) if dhT is None else np.array(dhT, dtype=dtype)  # dL/dh_t
    dc = np.zeros((B, H), dtype) if dcT is None else np.array(dcT, dtype=dtype)  # dL/dC_t
    if dy is not None and active is not None:
        dy = dy * active  # padded outputs are constant zeros: no gradient flows from them
    da = np.empty((T, B, 4 * H), dtype)  # dL/da_t, the gates' pre-activations
    dzx, dzh = np.empty((T, B, 4 * H), dtype), np.empty((T, B, 4 * H), dtype)  # on x·Wx, h·Wh
    dgc, dbc = np.zeros(H, dtype), np.zeros(H, dtype)
    for t in range(T - 1, -1, -1):
        if dy is not None:
            dh = dh + dy[t]
        on = np.ones((B, 1), dtype) if active is None else active[t]
        f, i, o, g = (gates[t, :, k * H:(k + 1) * H] for k in range(4))
        daf, dai, dao, dag = (da[t, :, k * H:(k + 1) * H] for k in range(4))
        # backprop h_t = o_t ⊙ tanh(u_t), u_t = g_c ⊙ LN(C_t) + b_c
        np.multiply(dh * tanh_c[t] * o * (1.0 - o), on, out=dao)
        du = dh * o * (1.0 - tanh_c[t] * tanh_c[t]) * on  # dL/du_t
        dgc += (du * c_hat[t]).sum(axis=0)
        dbc += du.sum(axis=0)
        dc_t = dc + layer_norm_backward(du * p.gc, c_hat[t], rstd[t, :, 2])  # ... into C_t
        # backprop C_t = f_t ⊙ C_{t-1} + i_t ⊙ C̃_t, then the nonlinearities (σ', tanh')
        np.multiply(dc_t * c[t] * f * (1.0 - f), on, out=daf)
        np.multiply(dc_t * g * i * (1.0 - i), on, out=dai)
        np.multiply(dc_t * i * (1.0 - g * g), on, out=dag)
        # backprop a_t = g_x ⊙ LN(x_t·Wx) + g_h ⊙ LN(h_{t-1}·Wh) + b into both products
        dzx[t] = layer_norm_backward(da[t] * p.gx, x_hat[t], rstd[t, :, 0])
        dzh[t] = layer_norm_backward(da[t] * p.gh, h_hat[t], rstd[t, :, 1])
        dh_prev = dzh[t] @ p.Wh.T  # backprop into h_{t-1} through Wh
        dc_prev = dc_t * f  # the cell-state highway
        if active is not None:  # inactive steps pass the state gradient straight through
            done = active[t] == 0
            np.copyto(dh_prev, dh, where=done)
            np.copyto(dc_prev, dc, where=done)
        dh, dc = dh_prev, dc_prev

    da2, dzx2, dzh2 = (a.reshape(T * B, 4 * H) for a in (da, dzx, dzh))
    grads = LSTMLayerNormParams(
        x.reshape(T * B, D).T @ dzx2,  # dWx (D, 4H)
        h[:-1].reshape(T * B, H).T @ dzh2,  # dWh (H, 4H)
        da2.sum(axis=0) if p.b is not None else None,  # db (4H,)
        (da2 * x_hat.reshape(T * B, 4 * H)).sum(axis=0),  # dg_x (4H,)
        (da2 * h_hat.reshape(T * B, 4 * H)).sum(axis=0),  # dg_h (4H,)
        dgc, dbc)
    dx = (dzx2 @ p.Wx.T).reshape(T, B, D) if need_dx else None  # (T, B, D)
    return dx, dh, dc, grads
