"""The LSTM with peephole connections (Gers & Schmidhuber 2000), forward and backward (BPTT).

Dimensions: T time, B batch, D input features, H hidden units. Time-major: ``x (T, B, D)``.

Peepholes let the gates look at the cell state. This is the variant ONNX's ``LSTM`` operator
defines (and ONNX Runtime computes): the input and forget gates see the old cell ``C_{t-1}``,
the output gate sees the new cell ``C_t``, each through a diagonal weight (a vector)::

    f_t  = σ(W_f · [h_{t-1}, x_t] + b_f + p_f ⊙ C_{t-1})     forget gate
    i_t  = σ(W_i · [h_{t-1}, x_t] + b_i + p_i ⊙ C_{t-1})     input gate
    C̃_t = tanh(W_C · [h_{t-1}, x_t] + b_C)                  candidate
    C_t  = f_t ⊙ C_{t-1} + i_t ⊙ C̃_t                         cell state
    o_t  = σ(W_o · [h_{t-1}, x_t] + b_o + p_o ⊙ C_t)         output gate
    h_t  = o_t ⊙ tanh(C_t)                                    hidden state

Weights ``Wx, Wh, b`` are laid out exactly as in :mod:`lstmlab.kernels.lstm` (column blocks
f, i, o, C̃). ``P (3H,)`` holds the peephole vectors in blocks ``p_f, p_i, p_o`` (the order of
the sigmoid gates), or is ``None`` for no peepholes.

Two more options of the ONNX operator live here, because they change the same equations:

* ``clip`` (a positive float or None): every gate's pre-activation, peephole term included, is
  clamped to ``[-clip, clip]`` before its nonlinearity (ONNX "cell clip"; ``C_t`` itself and
  ``tanh(C_t)`` are not clipped, as in ONNX Runtime). Where the clamp is active the gradient
  through it is zero.
* ``input_forget`` (bool): the coupled input–forget gate, ``f_t = 1 - i_t``; the forget
  block of the weights and ``p_f`` are then unused (and get zero gradient).

With ``P=None, clip=None, input_forget=False`` this computes exactly the plain LSTM kernel.
Variable lengths follow that kernel: padded steps output 0, carry the state, get no gradient.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ._common import sequence_outputs, sigmoid, step_masks


class LSTMPeepholeParams(NamedTuple):
    """Parameters of one direction of one peephole-LSTM layer."""

    Wx: np.ndarray  # (D, 4H)  input weights, gate blocks f, i, o, C̃
    Wh: np.ndarray  # (H, 4H)  recurrent weights, same blocks
    b: np.ndarray | None  # (4H,)  bias, or None
    P: np.ndarray | None  # (3H,)  peephole weights p_f, p_i, p_o, or None


class LSTMPeepholeCache(NamedTuple):
    """What forward saves for backward."""

    x: np.ndarray  # (T, B, D)
    h: np.ndarray  # (T+1, B, H)  h[0] = h0
    c: np.ndarray  # (T+1, B, H)  c[0] = c0
    gates: np.ndarray  # (T, B, 4H)  activated f, i, o, C̃
    tanh_c: np.ndarray  # (T, B, H)
    unclipped: np.ndarray | None  # (T, B, 4H) 1.0 where |pre-activation| < clip; None: no clip
    params: LSTMPeepholeParams
    clip: float | None
    input_forget: bool
    active: np.ndarray | None  # (T, B, 1) or None


def _check_options(clip, input_forget):
    if clip is not None and not (np.isfinite(clip) and clip > 0):
        raise ValueError(f"clip must be a positive finite number or None, got {clip!r}")
    return (None if clip is None else float(clip)), bool(input_forget)


def lstm_peephole_cell(z: np.ndarray, P: np.ndarray | None, c_prev: np.ndarray,
                       c_out: np.ndarray, tanh_c_out: np.ndarray, h_out: np.ndarray,
                       clip: float | None = None, input_forget: bool = False,
                       unclipped_out: np.ndarray | None = None) -> None:
    """One step, in place: ``z (B, 4H)`` = ``W·[h_{t-1}, x_t] + b`` becomes the gates.

    Writes C_t, tanh(C_t), h_t into the ``(B, H)`` buffers and, when given, the clip mask
    into ``unclipped_out (B, 4H)``.
    """
    H = c_prev.shape[-1]
    zf, zi, zo, zg = z[:, :H], z[:, H:2 * H], z[:, 2 * H:3 * H], z[:, 3 * H:]
    if P is not None:
        zf += P[:H] * c_prev  # forget gate peeks at C_{t-1}
        zi += P[H:2 * H] * c_prev  # input gate peeks at C_{t-1}
    if clip is not None:
        _clip_blocks(z, (1, 3) if input_forget else (0, 1, 3), H, clip, unclipped_out)
    sigmoid(zi, out=zi)  # i_t
    if input_forget:
        np.subtract(1.0, zi, out=zf)  # f_t = 1 - i_t (coupled gate)
    else:
        sigmoid(zf, out=zf)  # f_t
    np.tanh(zg, out=zg)  # C̃_t
    np.multiply(zf, c_prev, out=c_out)  # C_t = f_t ⊙ C_{t-1} ...
    c_out += zi * zg  # ... + i_t ⊙ C̃_t
    if P is not None:
        zo += P[2 * H:] * c_out  # output gate peeks at the new C_t
    if clip is not None:
        _clip_blocks(z, (2,), H, clip, unclipped_out)
    sigmoid(zo, out=zo)  # o_t
    np.tanh(c_out, out=tanh_c_out)
    np.multiply(zo, tanh_c_out, out=h_out)  # h_t = o_t ⊙ tanh(C_t)


def _clip_blocks(z, blocks, H, clip, unclipped_out):
    """Clamp gate blocks of ``z`` to [-clip, clip]; ``unclipped_out`` marks untouched entries."""
    for k in blocks:
        zk = z[:, k * H:(k + 1) * H]
        if unclipped_out is not None:
            np.less(np.abs(zk), clip, out=unclipped_out[:, k * H:(k + 1) * H], casting="unsafe")
        np.clip(zk, -clip, clip, out=zk)


def lstm_peephole_forward(x: np.ndarray, h0: np.ndarray, c0: np.ndarray,
                          params: LSTMPeepholeParams, lengths: np.ndarray | None = None,
                          clip: float | None = None, input_forget: bool = False):
    """Run the peephole LSTM over ``x (T, B, D)`` from ``(h0, c0)``, each ``(B, H)``.

    Returns ``(y, hT, cT, cache)`` as :func:`lstmlab.kernels.lstm_forward` does.
    """
    clip, input_forget = _check_options(clip, input_forget)
    Wx, Wh, b, P = params
    T, B, D = x.shape
    H = Wh.shape[0]
    dtype = x.dtype
    active = step_masks(lengths, T, dtype)

    gates = (x.reshape(T * B, D) @ Wx).reshape(T, B, 4 * H)  # (T, B, 4H)
    if b is not None:
        gates += b
    h = np.empty((T + 1, B, H), dtype)  # (T+1, B, H)
    c = np.empty((T + 1, B, H), dtype)  # (T+1, B, H)
    tanh_c = np.empty((T, B, H), dtype)  # (T, B, H)
    unclipped = None if clip is None else np.ones((T, B, 4 * H), dtype)  # (T, B, 4H)
    h[0] = h0
    c[0] = c0
    rec = np.empty((B, 4 * H), dtype)
    for t in range(T):
        np.matmul(h[t], Wh, out=rec)
        gates[t] += rec  # z_t = W·[h_{t-1}, x_t] + b
        lstm_peephole_cell(gates[t], P, c[t], c[t + 1], tanh_c[t], h[t + 1], clip, input_forget,
                           None if clip is None else unclipped[t])
        if active is not None:
            done = active[t] == 0
            np.copyto(h[t + 1], h[t], where=done)
            np.copyto(c[t + 1], c[t], where=done)

    y = sequence_outputs(h, active)
    cache = LSTMPeepholeCache(x, h, c, gates, tanh_c, unclipped, params, clip, input_forget,
                              active)
    return y, h[T].copy(), c[T].copy(), cache


def lstm_peephole_backward(dy: np.ndarray | None, dhT: np.ndarray | None,
                           dcT: np.ndarray | None, cache: LSTMPeepholeCache,
                           need_dx: bool = True):
    """BPTT for :func:`lstm_peephole_forward`.

    Returns ``(dx, dh0, dc0, grads)``, ``grads`` an :class:`LSTMPeepholeParams` (``b`` / ``P``
    are None when the layer has none); ``dx`` is ``None`` with ``need_dx=False``.
    """
    x, h, c, gates, tanh_c, unclipped, params, clip, input_forget, active = cache
    Wx, Wh, b, P = params
    T, B, D = x.shape
    H = Wh.shape[0]
    dtype = x.dtype
    if P is not None:
        pf, pi, po = P[:H], P[H:2 * H], P[2 * H:]
        dP = np.zeros(3 * H, dtype)  # (3H,)

    dh = np.zeros((B, H), dtype) if dhT is None else np.array(dhT, dtype=dtype)
    dc = np.zeros((B, H), dtype) if dcT is None else np.array(dcT, dtype=dtype)
    if dy is not None and active is not None:
        dy = dy * active
    dz = np.empty((T, B, 4 * H), dtype)  # (T, B, 4H) gradient on the pre-activations
    for t in range(T - 1, -1, -1):
        f, i, o, g = (gates[t, :, k * H:(k + 1) * H] for k in range(4))
        if dy is not None:
            dh = dh + dy[t]
        dzf, dzi, dzo, dzg = (dz[t, :, k * H:(k + 1) * H] for k in range(4))
        # backprop h_t = o_t ⊙ tanh(C_t), then o_t = σ(clip(z_o + p_o ⊙ C_t))
        np.multiply(dh, tanh_c[t], out=dzo)
        dzo *= o * (1.0 - o)
        if unclipped is not None:
            dzo *= unclipped[t, :, 2 * H:3 * H]
        dc_t = dc + dh * o * (1.0 - tanh_c[t] * tanh_c[t])
        if P is not None:
            dc_t += dzo * po  # the output gate's peephole on C_t
        # backprop C_t = f_t ⊙ C_{t-1} + i_t ⊙ C̃_t
        df = dc_t * c[t]
        np.multiply(dc_t, g, out=dzi)
        np.multiply(dc_t, i, out=dzg)
        if input_forget:
            dzi -= df  # f_t = 1 - i_t
            dzf.fill(0.0)
        else:
            np.multiply(df, f * (1.0 - f), out=dzf)
        dzi *= i * (1.0 - i)
        dzg *= 1.0 - g * g
        if unclipped is not None:
            dzf *= unclipped[t, :, :H]
            dzi *= unclipped[t, :, H:2 * H]
            dzg *= unclipped[t, :, 3 * H:]
        dc_prev = dc_t * f
        if P is not None:
            dc_prev += dzf * pf + dzi * pi  # the input and forget gates' peepholes on C_{t-1}
        if active is not None:
            done = active[t] == 0
            dz[t] *= active[t]
            dh_prev = dz[t] @ Wh.T
            np.copyto(dh_prev, dh, where=done)
            np.copyto(dc_prev, dc, where=done)
        else:
            dh_prev = dz[t] @ Wh.T  # backprop into h_{t-1} through W
        if P is not None:  # after masking, so padded steps add nothing
            dP[:H] += (dzf * c[t]).sum(axis=0)
            dP[H:2 * H] += (dzi * c[t]).sum(axis=0)
            dP[2 * H:] += (dzo * c[t + 1]).sum(axis=0)
        dh, dc = dh_prev, dc_prev

    dz2 = dz.reshape(T * B, 4 * H)
    dWx = x.reshape(T * B, D).T @ dz2  # (D, 4H)
    dWh = h[:-1].reshape(T * B, H).T @ dz2  # (H, 4H)
    db = dz2.sum(axis=0) if b is not None else None  # (4H,)
    dx = (dz2 @ Wx.T).reshape(T, B, D) if need_dx else None  # (T, B, D)
    return dx, dh, dc, LSTMPeepholeParams(dWx, dWh, db, dP if P is not None else None)
