"""The lecture's vanilla RNN over a whole sequence: forward and hand-derived backward (BPTT).

Dimensions: T time, B batch, D input features, H hidden units. Time-major: ``x (T, B, D)``.

The lecture writes ``h_t = tanh(W [h_{t-1}, x_t] + b)``. Here the weight acting on the
concatenation is kept as its two row blocks, ``Wh (H, H)`` and ``Wx (D, H)``, so that
``W [h_{t-1}, x_t] == h_{t-1} @ Wh + x_t @ Wx`` for row vectors. ``act`` is ``"tanh"`` (the
lecture) or ``"relu"``. Variable lengths follow the LSTM kernel: outputs past a sequence's
length are 0, its state is carried unchanged, and padding receives no gradient.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ._common import sequence_outputs, step_masks

ACTIVATIONS = ("tanh", "relu")


class RNNParams(NamedTuple):
    """Parameters of one RNN direction of one layer."""

    Wx: np.ndarray  # (D, H)
    Wh: np.ndarray  # (H, H)
    b: np.ndarray | None  # (H,), or None for bias=False


class RNNCache(NamedTuple):
    """What forward saves for backward."""

    x: np.ndarray  # (T, B, D)
    h: np.ndarray  # (T+1, B, H) hidden states, h[0] = h0
    params: RNNParams
    act: str
    active: np.ndarray | None  # (T, B, 1) or None


def rnn_cell(z: np.ndarray, act: str, h_out: np.ndarray) -> None:
    """``h_t = act(z)`` for the pre-activation ``z = W [h_{t-1}, x_t] + b`` (B, H)."""
    if act == "tanh":
        np.tanh(z, out=h_out)
    else:
        np.maximum(z, 0.0, out=h_out)


def rnn_forward(x: np.ndarray, h0: np.ndarray, params: RNNParams, act: str = "tanh",
                lengths: np.ndarray | None = None):
    """Run the RNN over ``x (T, B, D)`` from ``h0 (B, H)``.

    Returns ``(y, hT, cache)``; ``y (T, B, H)`` (0 past each length; read-only view into the
    cache when there is no padding), ``hT (B, H)``.
    """
    if act not in ACTIVATIONS:
        raise ValueError(f"act must be one of {ACTIVATIONS}, got {act!r}")
    Wx, Wh, b = params
    T, B, D = x.shape
    H = Wh.shape[0]
    dtype = x.dtype
    active = step_masks(lengths, T, dtype)

    z = (x.reshape(T * B, D) @ Wx).reshape(T, B, H)  # (T, B, H) input projection, all steps
    if b is not None:
        z += b
    h = np.empty((T + 1, B, H), dtype)  # (T+1, B, H)
    h[0] = h0
    rec = np.empty((B, H), dtype)
    for t in range(T):
        np.matmul(h[t], Wh, out=rec)
        z[t] += rec  # W [h_{t-1}, x_t] + b
        rnn_cell(z[t], act, h[t + 1])  # h_t = act(...)
        if active is not None:
            np.copyto(h[t + 1], h[t], where=active[t] == 0)

    y = sequence_outputs(h, active)
    return y, h[T].copy(), RNNCache(x, h, params, act, active)


def rnn_backward(dy: np.ndarray | None, dhT: np.ndarray | None, cache: RNNCache,
                 dh_seq: np.ndarray | None = None, need_dx: bool = True):
    """BPTT for :func:`rnn_forward`. Returns ``(dx, dh0, grads)``, ``grads`` an RNNParams.

    Optional ``dh_seq (T, B, H)`` receives the total gradient dL/dh_t of every step;
    ``need_dx=False`` skips the input gradient (``dx`` is ``None``), as for the LSTM.
    """
    x, h, params, act, active = cache
    Wx, Wh, b = params
    T, B, D = x.shape
    H = Wh.shape[0]
    dtype = x.dtype

    dh = np.zeros((B, H), dtype) if dhT is None else np.array(dhT, dtype=dtype)
    if dy is not None and active is not None:
        dy = dy * active
    dz = np.empty((T, B, H), dtype)  # (T, B, H) gradient on pre-activations
    for t in range(T - 1, -1, -1):
        if dy is not None:
            dh = dh + dy[t]
        if dh_seq is not None:
            dh_seq[t] = dh
        # backprop through the nonlinearity: tanh' = 1 - h², relu' = [h > 0]
        if act == "tanh":
            np.multiply(dh, 1.0 - h[t + 1] * h[t + 1], out=dz[t])
        else:
            np.multiply(dh, h[t + 1] > 0, out=dz[t])
        if active is not None:
            dz[t] *= active[t]
            dh_prev = dz[t] @ Wh.T
            np.copyto(dh_prev, dh, where=active[t] == 0)
        else:
            dh_prev = dz[t] @ Wh.T  # backprop into h_{t-1} through W
        dh = dh_prev

    dz2 = dz.reshape(T * B, H)
    dWx = x.reshape(T * B, D).T @ dz2  # (D, H)
    dWh = h[:-1].reshape(T * B, H).T @ dz2  # (H, H)
    db = dz2.sum(axis=0) if b is not None else None  # (H,)
    dx = (dz2 @ Wx.T).reshape(T, B, D) if need_dx else None  # (T, B, D)
    return dx, dh, RNNParams(dWx, dWh, db)
