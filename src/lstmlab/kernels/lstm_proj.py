"""The LSTM with a recurrent projection (LSTMP; Sak, Senior & Beaufays 2014), forward and BPTT.

Dimensions: T time, B batch, D input features, H hidden units (cells), P projection width
(P < H). Time-major: ``x (T, B, D)``.

The lecture's LSTM step computes ``m_t = o_t * tanh(C_t)`` of width H; the projection maps it
to the hidden state ``h_t = m_t · W_r`` of width P, which is what the gates see next step and
what the layer outputs (PyTorch's ``nn.LSTM(proj_size=P)``)::

    z_t = x_t · Wx + h_{t-1} · Wh + b        gates f, i, o, C̃ as in lstmlab.kernels.lstm
    C_t = f_t * C_{t-1} + i_t * C̃_t
    m_t = o_t * tanh(C_t)                    (B, H)
    h_t = m_t · Wr                           (B, P)   the projection

Weights: ``Wx (D, 4H)``, ``Wh (P, 4H)``, ``b (4H,)`` as the plain LSTM's (blocks f, i, o, C̃),
and ``Wr (H, P)`` (PyTorch's ``weight_hr`` transposed). The cell's equations are the plain
kernel's :func:`lstm_cell`; only what surrounds it differs. Variable lengths as the plain
kernel: padded steps output 0, carry (h, C) unchanged, get no gradient.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ._common import sequence_outputs, step_masks
from .lstm import lstm_cell, lstm_cell_backward


class LSTMProjParams(NamedTuple):
    """Parameters of one direction of one projected-LSTM layer."""

    Wx: np.ndarray  # (D, 4H)
    Wh: np.ndarray  # (P, 4H)
    b: np.ndarray | None  # (4H,) or None
    Wr: np.ndarray  # (H, P) the projection


class LSTMProjCache(NamedTuple):
    """What forward saves for backward."""

    x: np.ndarray  # (T, B, D)
    h: np.ndarray  # (T+1, B, P)  h[0] = h0
    c: np.ndarray  # (T+1, B, H)  c[0] = c0
    m: np.ndarray  # (T, B, H)    o_t * tanh(C_t), before the projection
    gates: np.ndarray  # (T, B, 4H)  activated f, i, o, C̃
    tanh_c: np.ndarray  # (T, B, H)
    params: LSTMProjParams
    active: np.ndarray | None  # (T, B, 1) or None


def lstm_proj_forward(x: np.ndarray, h0: np.ndarray, c0: np.ndarray, params: LSTMProjParams,
                      lengths: np.ndarray | None = None):
    """Run the projected LSTM over ``x (T, B, D)`` from ``h0 (B, P)``, ``c0 (B, H)``.

    Returns ``(y, hT, cT, cache)``: ``y (T, B, P)`` (0 past a sequence's length), ``hT (B, P)``,
    ``cT (B, H)``.
    """
    Wx, Wh, b, Wr = params
    T, B, D = x.shape
    H, P = Wr.shape
    dtype = x.dtype
    active = step_masks(lengths, T, dtype)

    gates = (x.reshape(T * B, D) @ Wx).reshape(T, B, 4 * H)  # (T, B, 4H)
    if b is not None:
        gates += b
    h = np.empty((T + 1, B, P), dtype)  # (T+1, B, P)
    c = np.empty((T + 1, B, H), dtype)  # (T+1, B, H)
    m = np.empty((T, B, H), dtype)  # (T, B, H)
    tanh_c = np.empty((T, B, H), dtype)  # (T, B, H)
    h[0], c[0] = h0, c0
    for t in range(T):
        gates[t] += h[t] @ Wh  # z_t = W·[h_{t-1}, x_t] + b
        lstm_cell(gates[t], c[t], c[t + 1], tanh_c[t], m[t])  # m_t = o_t * tanh(C_t)
        np.matmul(m[t], Wr, out=h[t + 1])  # h_t = m_t · W_r
        if active is not None:
            done = active[t] == 0
            np.copyto(h[t + 1], h[t], where=done)
            np.copyto(c[t + 1], c[t], where=done)

    y = sequence_outputs(h, active)
    return y, h[T].copy(), c[T].copy(), LSTMProjCache(x, h, c, m, gates, tanh_c, params, active)


def lstm_proj_backward(dy: np.ndarray | None, dhT: np.ndarray | None, dcT: np.ndarray | None,
                       cache: LSTMProjCache, need_dx: bool = True):
    """BPTT for :func:`lstm_proj_forward`: ``(dx, dh0, dc0, grads)``, ``grads`` an
    :class:`LSTMProjParams` of gradients (``b`` None without bias)."""
    x, h, c, m, gates, tanh_c, params, active = cache
    Wx, Wh, b, Wr = params
    T, B, D = x.shape
    H, P = Wr.shape
    dtype = x.dtype

    dh = np.zeros((B, P), dtype) if dhT is None else np.array(dhT, dtype=dtype)  # dL/dh_t
    dc = np.zeros((B, H), dtype) if dcT is None else np.array(dcT, dtype=dtype)  # dL/dC_t
    if dy is not None and active is not None:
        dy = dy * active
    dz = np.empty((T, B, 4 * H), dtype)  # (T, B, 4H)
    dh_all = np.empty((T, B, P), dtype)  # (T, B, P) dL/dh_t, for dWr
    for t in range(T - 1, -1, -1):
        if dy is not None:
            dh = dh + dy[t]
        if active is not None:
            dh_all[t] = dh * active[t]  # a padded step's h_t is h_{t-1}: no projection
        else:
            dh_all[t] = dh
        dm = dh_all[t] @ Wr.T  # backprop h_t = m_t · W_r into m_t
        _, dc_prev = lstm_cell_backward(dm, dc, gates, c, tanh_c, t, dz)  # then the cell
        if active is not None:
            dz[t] *= active[t]
        dh_prev = dz[t] @ Wh.T  # backprop into h_{t-1} through W
        if active is not None:  # padded steps pass the state gradients straight through
            np.copyto(dh_prev, dh, where=active[t] == 0)
            np.copyto(dc_prev, dc, where=active[t] == 0)
        dh, dc = dh_prev, dc_prev

    dz2 = dz.reshape(T * B, 4 * H)
    dWx = x.reshape(T * B, D).T @ dz2  # (D, 4H)
    dWh = h[:-1].reshape(T * B, P).T @ dz2  # (P, 4H)
    dWr = m.reshape(T * B, H).T @ dh_all.reshape(T * B, P)  # (H, P)
    db = dz2.sum(axis=0) if b is not None else None  # (4H,)
    dx = (dz2 @ Wx.T).reshape(T, B, D) if need_dx else None
    return dx, dh, dc, LSTMProjParams(dWx, dWh, db, dWr)
