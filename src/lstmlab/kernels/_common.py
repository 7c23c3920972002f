"""Shared pieces of the recurrent kernels: safe nonlinearities and padding masks.

Dimensions: T time, B batch, D input features, H hidden units.
"""

from __future__ import annotations

import numpy as np


def sigmoid(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Logistic sigmoid as ``0.5 * tanh(0.5 * x) + 0.5``.

    The identity is exact, never overflows (``exp(-x)`` does for x < -709 in float64), and
    keeps the arithmetic to one transcendental call; it agrees with ``1 / (1 + exp(-x))``
    to round-off.
    """
    out = np.multiply(x, 0.5, out=out)
    np.tanh(out, out=out)
    out *= 0.5
    out += 0.5
    return out


def step_masks(lengths: np.ndarray | None, T: int, dtype) -> np.ndarray | None:
    """``(T, B, 1)`` array, 1 where step t is inside sequence b (t < lengths[b]), else 0.

    ``None`` when every sequence has the full length T, so that kernels can skip masking.
    """
    if lengths is None:
        return None
    lengths = np.asarray(lengths)
    if np.all(lengths == T):
        return None
    return (np.arange(T)[:, None] < lengths[None, :]).astype(dtype)[:, :, None]


def reverse_index(lengths: np.ndarray | None, T: int, B: int) -> np.ndarray:
    """Index ``(T, B)`` that reverses each sequence within its own length.

    ``x[idx, arange(B)]`` turns ``x[0:len_b, b]`` into ``x[len_b-1::-1, b]`` and leaves the
    padding where it is. Applying it twice is the identity, so the same index maps a
    backward direction's outputs back to forward time.
    """
    t = np.arange(T)[:, None]
    if lengths is None:
        return np.broadcast_to(T - 1 - t, (T, B)).copy()
    L = np.asarray(lengths)[None, :]
    return np.where(t < L, L - 1 - t, t)


def reverse_padded(x: np.ndarray, lengths: np.ndarray | None) -> np.ndarray:
    """Reverse a time-major ``(T, B, ...)`` array within each sequence's length."""
    T, B = x.shape[:2]
    if lengths is None:
        return x[::-1]
    idx = reverse_index(lengths, T, B)
    return x[idx, np.arange(B)[None, :]]


def sequence_outputs(h: np.ndarray, active: np.ndarray | None) -> np.ndarray:
    """The outputs ``y (T, B, H)`` of a kernel whose hidden states are ``h (T+1, B, H)``:
    zero past each length (``active`` from :func:`step_masks`), else a read-only view of
    ``h[1:]`` (no copy; writing into it would corrupt backward, so it raises instead)."""
    if active is not None:
        return h[1:] * active
    y = h[1:]
    y.flags.writeable = False
    return y
