"""The gated recurrent unit (GRU) over a whole sequence: forward and hand-derived backward.

Dimensions: T time, B batch, D input features, H hidden units. Time-major: ``x (T, B, D)``.

Cho et al. (2014), in the form PyTorch's ``nn.GRU`` and Keras' ``GRU(reset_after=True)``
compute, the reset gate applied *after* the recurrent product::

    r_t = σ(W_r · [h_{t-1}, x_t] + b_r)                        reset gate
    z_t = σ(W_z · [h_{t-1}, x_t] + b_z)                        update gate
    n_t = tanh(W_in · x_t + b_in + r_t * (W_hn · h_{t-1} + b_hn))   candidate
    h_t = (1 - z_t) * n_t + z_t * h_{t-1}                      hidden state

Weight layout (every converter is a function of it):

* ``Wx (D, 3H)`` and ``Wh (H, 3H)``, column blocks **r, z, n** (PyTorch's order; Keras and
  ONNX order z, r, n).
* ``b (4H,)``, blocks ``b_r, b_z, b_in, b_hn``: one bias for each of r and z (PyTorch's
  ``b_i* + b_h*``), and two for the candidate, because the reset gate multiplies ``b_hn``
  but not ``b_in``. ``None`` for bias=False.

Backward has two pre-activation gradients that differ in the candidate's block: the input
side ``dzx = [da_r, da_z, da_n]`` (gives dWx, dx, b_r, b_z, b_in) and the recurrent side
``dzh = [da_r, da_z, da_n * r_t]`` (gives dWh, dh_{t-1}, b_hn).

Variable lengths follow the LSTM kernel: padded steps output 0, carry the state, get no
gradient.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ._common import sequence_outputs, sigmoid, step_masks


class GRUParams(NamedTuple):
    """Parameters of one GRU direction of one layer (see the module docstring for layout)."""

    Wx: np.ndarray  # (D, 3H)  input weights, blocks r, z, n
    Wh: np.ndarray  # (H, 3H)  recurrent weights, same blocks
    b: np.ndarray | None  # (4H,)  b_r, b_z, b_in, b_hn, or None


class GRUCache(NamedTuple):
    """What forward saves for backward."""

    x: np.ndarray  # (T, B, D)
    h: np.ndarray  # (T+1, B, H)  h[0] = h0
    gates: np.ndarray  # (T, B, 4H)  r_t, z_t, n_t and W_hn·h_{t-1} + b_hn of every step
    params: GRUParams
    active: np.ndarray | None  # (T, B, 1) or None


def gru_bias_split(b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """lstmlab's GRU bias ``(4H,)`` (b_r, b_z, b_in, b_hn) as the input and recurrent biases
    ``(3H,)`` each, r, z, n: ``(b_r, b_z, b_in)`` and ``(0, 0, b_hn)``."""
    H = b.shape[0] // 4
    rec = np.zeros(3 * H, b.dtype)
    rec[2 * H:] = b[3 * H:]
    return b[:3 * H].copy(), rec


def gru_bias_join(bi: np.ndarray, bh: np.ndarray) -> np.ndarray:
    """The inverse of :func:`gru_bias_split` for any two biases r, z, n (the r and z blocks
    summed, computed in float64)."""
    bi, bh = np.asarray(bi, np.float64), np.asarray(bh, np.float64)
    H = bi.shape[0] // 3
    return np.concatenate([bi[:2 * H] + bh[:2 * H], bi[2 * H:], bh[2 * H:]])


def gru_cell(gx: np.ndarray, gh: np.ndarray, b_hn, h_prev: np.ndarray, gates_out: np.ndarray,
             h_out: np.ndarray) -> None:
    """One step: ``gx (B, 3H)`` = x_t·Wx + (b_r, b_z, b_in), ``gh (B, 3H)`` = h_{t-1}·Wh
    (both overwritten). Writes r, z, n, W_hn·h_{t-1} + b_hn into ``gates_out (B, 4H)`` and
    h_t into ``h_out (B, H)``. The sequence kernel and the layer's step both call this."""
    H = h_prev.shape[-1]
    r, z, n, hn = (gates_out[:, k * H:(k + 1) * H] for k in range(4))
    np.add(gx[:, :2 * H], gh[:, :2 * H], out=gates_out[:, :2 * H])
    sigmoid(gates_out[:, :2 * H], out=gates_out[:, :2 * H])  # r_t, z_t
    np.copyto(hn, gh[:, 2 * H:])
    if b_hn is not None:
        hn += b_hn  # W_hn·h_{t-1} + b_hn
    np.multiply(r, hn, out=n)
    n += gx[:, 2 * H:]
    np.tanh(n, out=n)  # n_t = tanh(W_in·x_t + b_in + r_t * (W_hn·h_{t-1} + b_hn))
    np.subtract(h_prev, n, out=h_out)
    h_out *= z
    h_out += n  # h_t = (1 - z_t) * n_t + z_t * h_{t-1} = n_t + z_t * (h_{t-1} - n_t)


def gru_forward(x: np.ndarray, h0: np.ndarray, params: GRUParams,
                lengths: np.ndarray | None = None):
    """Run the GRU over ``x (T, B, D)`` from ``h0 (B, H)``.

    Returns ``(y, hT, cache)``: ``y (T, B, H)`` (0 past each length; a read-only view into the
    cache when nothing is padded), ``hT (B, H)``.
    """
    Wx, Wh, b = params
    T, B, D = x.shape
    H = Wh.shape[0]
    dtype = x.dtype
    active = step_masks(lengths, T, dtype)

    gx = (x.reshape(T * B, D) @ Wx).reshape(T, B, 3 * H)  # (T, B, 3H) all steps at once
    if b is not None:
        gx += b[:3 * H]
    b_hn = None if b is None else b[3 * H:]
    h = np.empty((T + 1, B, H), dtype)  # (T+1, B, H)
    h[0] = h0
    gates = np.empty((T, B, 4 * H), dtype)  # (T, B, 4H)
    gh = np.empty((B, 3 * H), dtype)  # (B, 3H) recurrent product of one step
    for t in range(T):
        np.matmul(h[t], Wh, out=gh)
        gru_cell(gx[t], gh, b_hn, h[t], gates[t], h[t + 1])
        if active is not None:  # finished sequences carry their state unchanged
            np.copyto(h[t + 1], h[t], where=active[t] == 0)

    y = sequence_outputs(h, active)
    return y, h[T].copy(), GRUCache(x, h, gates, params, active)


def gru_backward(dy: np.ndarray | None, dhT: np.ndarray | None, cache: GRUCache,
                 dh_seq: np.ndarray | None = None, need_dx: bool = True):
    """BPTT for :func:`gru_forward`. Returns ``(dx, dh0, grads)``, ``grads`` a GRUParams.

    Optional ``dh_seq (T, B, H)`` receives dL/dh_t of every step; ``need_dx=False`` skips
    the input gradient (``dx`` is ``None``), as for the LSTM.
    """
    x, h, gates, params, active = cache
    Wx, Wh, b = params
    T, B, D = x.shape
    H = Wh.shape[0]
    dtype = x.dtype

    dh = np.zeros((B, H), dtype) if dhT is None else np.array(dhT, dtype=dtype)  # dL/dh_t
    if dy is not None and active is not None:
        dy = dy * active
    dzx = np.empty((T, B, 3 * H), dtype)  # (T, B, 3H) gradient on x_t·Wx + b
    dzh = np.empty((T, B, 3 * H), dtype)  # (T, B, 3H) gradient on h_{t-1}·Wh (+ b_hn)
    for t in range(T - 1, -1, -1):
        r, z, n, hn = (gates[t, :, k * H:(k + 1) * H] for k in range(4))
        if dy is not None:
            dh = dh + dy[t]
        if dh_seq is not None:
            dh_seq[t] = dh
        da_r, da_z, da_n = (dzx[t, :, k * H:(k + 1) * H] for k in range(3))
        # backprop h_t = (1 - z_t) * n_t + z_t * h_{t-1} into n_t and z_t, then through
        # tanh' = 1 - n² and σ' = z(1 - z)
        np.multiply(dh * (1.0 - z), 1.0 - n * n, out=da_n)
        np.multiply(dh * (h[t] - n), z * (1.0 - z), out=da_z)
        # backprop n_t's r_t * (W_hn·h_{t-1} + b_hn) into r_t (then σ') and the product
        np.multiply(da_n * hn, r * (1.0 - r), out=da_r)
        dzh[t, :, :2 * H] = dzx[t, :, :2 * H]
        np.multiply(da_n, r, out=dzh[t, :, 2 * H:])
        if active is not None:  # padded steps pass dL/dh straight through
            dzx[t] *= active[t]
            dzh[t] *= active[t]
        dh_prev = dzh[t] @ Wh.T + dh * z  # through Wh, and directly through z_t * h_{t-1}
        if active is not None:
            np.copyto(dh_prev, dh, where=active[t] == 0)
        dh = dh_prev

    dzx2, dzh2 = dzx.reshape(T * B, 3 * H), dzh.reshape(T * B, 3 * H)
    dWx = x.reshape(T * B, D).T @ dzx2  # (D, 3H)
    dWh = h[:-1].reshape(T * B, H).T @ dzh2  # (H, 3H)
    db = None
    if b is not None:  # (4H,): b_r, b_z, b_in from the input side, b_hn from the recurrent
        db = np.concatenate([dzx2.sum(axis=0), dzh2[:, 2 * H:].sum(axis=0)])
    dx = (dzx2 @ Wx.T).reshape(T, B, D) if need_dx else None  # (T, B, D)
    return dx, dh, GRUParams(dWx, dWh, db)
