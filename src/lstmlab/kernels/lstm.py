"""The lecture's LSTM over a whole sequence: forward and hand-derived backward (BPTT).

Dimensions: T time, B batch, D input features, H hidden units. Time-major: ``x (T, B, D)``.

The lecture (``seed/lstm-theory.en.md``) writes, with ``[h_{t-1}, x_t]`` the concatenation::

    f_t  = σ(W_f · [h_{t-1}, x_t] + b_f)        forget gate
    i_t  = σ(W_i · [h_{t-1}, x_t] + b_i)        input gate
    C̃_t = tanh(W_C · [h_{t-1}, x_t] + b_C)     candidate
    C_t  = f_t * C_{t-1} + i_t * C̃_t            cell state
    o_t  = σ(W_o · [h_{t-1}, x_t] + b_o)        output gate
    h_t  = o_t * tanh(C_t)                       hidden state

Weight layout (chosen once here; every converter is a function of it):

* ``Wx (D, 4H)`` and ``Wh (H, 4H)`` are the two row blocks of the lecture's weight acting on
  ``[h_{t-1}, x_t]``: ``W_gate.T == vstack([Wh, Wx])[:, block]``, so the pre-activation of all
  four gates is the row vector ``x_t @ Wx + h_{t-1} @ Wh + b``.
* ``b (4H,)`` is the lecture's single bias (PyTorch's ``bias_ih + bias_hh``), or ``None``.
* Column blocks, in this order: **f, i, o, C̃** — ``[0:H]`` forget, ``[H:2H]`` input,
  ``[2H:3H]`` output, ``[3H:4H]`` candidate. The three sigmoid gates are contiguous so one
  call covers them. (PyTorch orders i, f, g, o; Keras i, f, c, o; ONNX i, o, f, c.)

Variable lengths: with ``lengths (B,)`` step t of sequence b is active when t < lengths[b].
Outputs of inactive steps are 0, the state is carried through them unchanged (so the final
state is the state at the last valid step) and they receive no gradient: PyTorch's
packed-sequence semantics.

Recurrent regularisation (:class:`LSTMMasks`, the masks drawn by the caller):

* variational dropout on the recurrent state (Gal & Ghahramani 2016): one mask ``m (B, H)``
  per sequence, the same at every step, on the state feeding the recurrent product:
  ``z_t = x_t·Wx + (m ⊙ h_{t-1})·Wh + b``. (Its input mask is applied to ``x`` by the caller.)
* zoneout (Krueger et al. 2017): with ``h̃_t``, ``C̃'_t`` the step's new values from the
  equations above, ``C_t = d^C_t ⊙ C_{t-1} + (1 - d^C_t) ⊙ C̃'_t`` and
  ``h_t = d^h_t ⊙ h_{t-1} + (1 - d^h_t) ⊙ h̃_t``, ``h̃_t = o_t ⊙ tanh(C̃'_t)``; in training
  the ``d_t`` are fresh 0/1 masks (1 with probability p: the unit keeps its value), in
  evaluation their expectation p.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ._common import sequence_outputs, sigmoid, step_masks


class LSTMParams(NamedTuple):
    """Parameters of one LSTM direction of one layer (see the module docstring for layout)."""

    Wx: np.ndarray  # (D, 4H)  input weights, gate blocks f, i, o, C̃
    Wh: np.ndarray  # (H, 4H)  recurrent weights, same blocks
    b: np.ndarray | None  # (4H,)  bias, or None for bias=False


class LSTMMasks(NamedTuple):
    """Recurrent regularisation of one direction (module docstring); None: not applied."""

    h: np.ndarray | None = None  # (B, H) dropout mask on h_{t-1} in the product: 0 or 1/(1-p)
    keep_h: np.ndarray | None = None  # (T, B, H) zoneout's d^h_t (broadcastable: p in eval)
    keep_c: np.ndarray | None = None  # (T, B, H) zoneout's d^C_t, as keep_h


class LSTMCache(NamedTuple):
    """What forward saves for backward; backward takes exactly this."""

    x: np.ndarray  # (T, B, D)    inputs
    h: np.ndarray  # (T+1, B, H)  hidden states, h[0] = h0
    c: np.ndarray  # (T+1, B, H)  cell states, c[0] = c0
    gates: np.ndarray  # (T, B, 4H)  activated gates f, i, o, C̃ of every step
    tanh_c: np.ndarray  # (T, B, H)  tanh(C_t)
    params: LSTMParams
    active: np.ndarray | None  # (T, B, 1) 1.0 on valid steps; None when all lengths == T
    masks: LSTMMasks = LSTMMasks()


def lstm_cell(z: np.ndarray, c_prev: np.ndarray, c_out: np.ndarray, tanh_c_out: np.ndarray,
              h_out: np.ndarray) -> None:
    """One step of the lecture's equations, in place.

    ``z (B, 4H)`` holds the pre-activations ``W·[h_{t-1}, x_t] + b`` and is overwritten by the
    activated gates. Writes C_t, tanh(C_t) and h_t into the given ``(B, H)`` buffers. The
    sequence kernel and the layers' single-step path both call this: the equations live here.
    """
    H = c_prev.shape[-1]
    sigmoid(z[:, : 3 * H], out=z[:, : 3 * H])  # f_t, i_t, o_t = σ(...)
    np.tanh(z[:, 3 * H:], out=z[:, 3 * H:])  # C̃_t = tanh(...)
    f, i, o, g = z[:, :H], z[:, H: 2 * H], z[:, 2 * H: 3 * H], z[:, 3 * H:]
    np.multiply(f, c_prev, out=c_out)  # C_t = f_t * C_{t-1} ...
    c_out += i * g  # ... + i_t * C̃_t
    np.tanh(c_out, out=tanh_c_out)
    np.multiply(o, tanh_c_out, out=h_out)  # h_t = o_t * tanh(C_t)


def lstm_cell_backward(dh: np.ndarray, dc: np.ndarray, gates: np.ndarray, c: np.ndarray,
                       tanh_c: np.ndarray, t: int, dz: np.ndarray):
    """Backward of :func:`lstm_cell` at step ``t``: from ``dh`` = dL/dh_t and ``dc`` = dL/dC_t
    arriving from step t+1 (each (B, H)), writes the pre-activations' gradient ``dz[t]
    (B, 4H)`` and returns ``(dc_t, dc_prev)``: dL/dC_t in all, and its part that reaches
    C_{t-1} through the forget gate. ``gates``, ``c``, ``tanh_c`` are the forward's."""
    H = dh.shape[-1]
    f, i, o, g = (gates[t, :, k * H:(k + 1) * H] for k in range(4))
    dzf, dzi, dzo, dzg = (dz[t, :, k * H:(k + 1) * H] for k in range(4))
    # backprop h_t = o_t * tanh(C_t)
    np.multiply(dh, tanh_c[t], out=dzo)
    dc_t = dc + dh * o * (1.0 - tanh_c[t] * tanh_c[t])
    # backprop C_t = f_t * C_{t-1} + i_t * C̃_t
    np.multiply(dc_t, c[t], out=dzf)
    np.multiply(dc_t, g, out=dzi)
    np.multiply(dc_t, i, out=dzg)
    dc_prev = dc_t * f
    # backprop the nonlinearities: σ' = σ(1-σ), tanh' = 1 - tanh²
    dzf *= f * (1.0 - f)
    dzi *= i * (1.0 - i)
    dzo *= o * (1.0 - o)
    dzg *= 1.0 - g * g
    return dc_t, dc_prev


def lstm_forward(x: np.ndarray, h0: np.ndarray, c0: np.ndarray, params: LSTMParams,
                 lengths: np.ndarray | None = None, masks: LSTMMasks = LSTMMasks()):
    """Run the LSTM over ``x (T, B, D)`` from ``(h0, c0)``, each ``(B, H)``.

    Returns ``(y, hT, cT, cache)``: ``y (T, B, H)`` every step's hidden state (0 past a
    sequence's length; a read-only view into the cache), ``hT, cT (B, H)`` the final state.
    ``masks``: recurrent dropout and zoneout (:class:`LSTMMasks`).
    """
    Wx, Wh, b = params
    T, B, D = x.shape
    H = Wh.shape[0]
    dtype = x.dtype
    active = step_masks(lengths, T, dtype)

    # Input projection of every step in one GEMM; the recurrent part is added per step.
    gates = (x.reshape(T * B, D) @ Wx).reshape(T, B, 4 * H)  # (T, B, 4H)
    if b is not None:
        gates += b
    h = np.empty((T + 1, B, H), dtype)  # (T+1, B, H)
    c = np.empty((T + 1, B, H), dtype)  # (T+1, B, H)
    tanh_c = np.empty((T, B, H), dtype)  # (T, B, H)
    h[0] = h0
    c[0] = c0
    rec = np.empty((B, 4 * H), dtype)  # (B, 4H) recurrent product of one step
    m, keep_h, keep_c = masks
    for t in range(T):
        h_in = h[t] if m is None else m * h[t]  # variational dropout: m ⊙ h_{t-1}
        np.matmul(h_in, Wh, out=rec)
        gates[t] += rec  # z_t = W·[h_{t-1}, x_t] + b
        lstm_cell(gates[t], c[t], c[t + 1], tanh_c[t], h[t + 1])
        if keep_h is not None:  # zoneout: units keep their previous values where d_t = 1
            d_c, d_h = keep_c[min(t, len(keep_c) - 1)], keep_h[min(t, len(keep_h) - 1)]
            c[t + 1] = d_c * c[t] + (1.0 - d_c) * c[t + 1]  # C_t = d ⊙ C_{t-1} + (1-d) ⊙ C̃'_t
            h[t + 1] = d_h * h[t] + (1.0 - d_h) * h[t + 1]  # h_t = d ⊙ h_{t-1} + (1-d) ⊙ h̃_t
        if active is not None:  # finished sequences carry their state unchanged
            done = active[t] == 0
            np.copyto(h[t + 1], h[t], where=done)
            np.copyto(c[t + 1], c[t], where=done)

    y = sequence_outputs(h, active)
    cache = LSTMCache(x, h, c, gates, tanh_c, params, active, masks)
    return y, h[T].copy(), c[T].copy(), cache


def lstm_backward(dy: np.ndarray | None, dhT: np.ndarray | None, dcT: np.ndarray | None,
                  cache: LSTMCache, dh_seq: np.ndarray | None = None,
                  dc_seq: np.ndarray | None = None, need_dx: bool = True):
    """Backpropagation through time for :func:`lstm_forward`.

    ``dy (T, B, H)`` is the gradient on every output, ``dhT, dcT (B, H)`` on the final state
    (any may be ``None`` for zero). Returns ``(dx, dh0, dc0, grads)`` with ``grads`` an
    :class:`LSTMParams` of gradients (``b`` is ``None`` when the layer has no bias).
    Optional ``dh_seq, dc_seq (T, B, H)`` receive the total gradients dL/dh_t and dL/dC_t
    of every step (used to measure how far back the gradient reaches). ``need_dx=False``
    skips the input gradient (``dx`` is returned as ``None``): the first layer of a network
    fed with data needs no ``dx``, and its GEMM is a sixth of the step's arithmetic.
    """
    x, h, c, gates, tanh_c, params, active, (m, keep_h, keep_c) = cache
    Wx, Wh, b = params
    T, B, D = x.shape
    H = Wh.shape[0]
    dtype = x.dtype

    dh = np.zeros((B, H), dtype) if dhT is None else np.array(dhT, dtype=dtype)  # dL/dh_t
    dc = np.zeros((B, H), dtype) if dcT is None else np.array(dcT, dtype=dtype)  # dL/dC_t
    if dy is not None and active is not None:
        dy = dy * active  # padded outputs are constant zeros: no gradient flows from them
    dz = np.empty((T, B, 4 * H), dtype)  # (T, B, 4H) gradient on the pre-activations
    for t in range(T - 1, -1, -1):
        if dy is not None:
            dh = dh + dy[t]
        if dh_seq is not None:
            dh_seq[t] = dh
        dh_new, dc_new = dh, dc  # dL/dh̃_t, dL/dC̃'_t: all of dL/dh_t, dL/dC_t without zoneout
        if keep_h is not None:  # backprop zoneout: (1-d) to the new values, d to the old
            d_c, d_h = keep_c[min(t, len(keep_c) - 1)], keep_h[min(t, len(keep_h) - 1)]
            dh_new, dc_new = (1.0 - d_h) * dh, (1.0 - d_c) * dc
        dc_t, dc_prev = lstm_cell_backward(dh_new, dc_new, gates, c, tanh_c, t, dz)
        if dc_seq is not None:
            dc_seq[t] = dc_t
        if active is not None:
            dz[t] *= active[t]
        dh_prev = dz[t] @ Wh.T  # backprop into h_{t-1} through W
        if m is not None:
            dh_prev *= m  # ... and through the dropout mask on h_{t-1}
        if keep_h is not None:
            dh_prev += d_h * dh  # zoneout's direct paths h_{t-1} -> h_t, C_{t-1} -> C_t
            dc_prev += d_c * dc
        if active is not None:  # inactive steps pass the state gradient straight through
            done = active[t] == 0
            np.copyto(dh_prev, dh, where=done)
            np.copyto(dc_prev, dc, where=done)
        dh, dc = dh_prev, dc_prev

    # Weight gradients as one GEMM each over all T·B rows.
    dz2 = dz.reshape(T * B, 4 * H)
    dWx = x.reshape(T * B, D).T @ dz2  # (D, 4H)
    h_in = h[:-1] if m is None else m * h[:-1]  # what the product saw: m ⊙ h_{t-1}
    dWh = h_in.reshape(T * B, H).T @ dz2  # (H, 4H)
    db = dz2.sum(axis=0) if b is not None else None  # (4H,)
    dx = (dz2 @ Wx.T).reshape(T, B, D) if need_dx else None  # (T, B, D)
    return dx, dh, dc, LSTMParams(dWx, dWh, db)
