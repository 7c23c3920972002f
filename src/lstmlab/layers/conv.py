"""Convolutional layers for sequences: Conv1d ("same" padding), BatchNorm1d, global average
pooling and ReLU — the blocks of the fully convolutional branch of LSTM-FCN.

Dimensions: T time, B batch, C input channels, O output channels, k kernel width.

All four work **time-major**, ``x (T, B, C)``, like the recurrent layers; PyTorch's
``Conv1d``/``BatchNorm1d`` read ``(B, C, T)``, so ``x.transpose(1, 2, 0)`` is the same data
in PyTorch's layout, and the results equal PyTorch's to rounding in float64
(``tests/test_classify_conv_layers.py``). Each layer's ``backward(dout)`` fills (overwrites) its
gradients and returns the input gradient. The maths, with ``dout = ∂L/∂y``:

* **Conv1d**, stride 1, ``padding="same"`` as PyTorch pads it (``k - 1`` zeros in all,
  ``(k - 1) // 2`` before and the rest after): with ``x̃`` the padded input and the weight in
  PyTorch's layout ``W (O, C, k)``, ``y[t, b, o] = b_o + Σ_{c, j} W[o, c, j] x̃[t + j, b, c]``.
  Written as one matrix product over the windows ``X[t, b] = x̃[t : t + k, b]`` (flattened
  ``(C·k)``): ``y = X Wᵀ + b``, so ``dW = doutᵀ X``, ``db = Σ dout``, ``dX = dout W``, and
  ``dx̃[t + j] += dX[t, ..., j]`` for each tap j (then the padding is cut off).
* **BatchNorm1d** per channel over all (T, B) positions: in training, ``μ`` and ``σ² =``
  the biased variance of the batch, ``x̂ = (x - μ) / √(σ² + ε)``, ``y = γ x̂ + β``;
  ``dγ = Σ dout x̂``, ``dβ = Σ dout``, ``dx = γ / √(σ² + ε) · (dout - mean(dout) - x̂ ·
  mean(dout x̂))`` (means over the N = T·B positions). The running statistics follow
  PyTorch: ``r ← (1 - m) r + m s`` with momentum m = 0.1 and the *unbiased* batch variance
  for ``running_var``; evaluation normalises with them. ``running_mean`` and
  ``running_var`` sit in the parameter registry (so checkpoints and best-epoch snapshots
  carry them) with gradients that are always zero: Adam leaves them as they are.
* **GlobalAvgPool** over each sequence's valid steps: ``y[b] = Σ_{t < n_b} x[t, b] / n_b``,
  ``dx[t, b] = dout[b] / n_b`` for ``t < n_b``, else 0.
* **ReLU**: ``dx = dout ⊙ [x > 0]``.

Initialisation follows PyTorch: conv weight and bias ``~ U(±1/√(C·k))``; γ = 1, β = 0.
"""

from __future__ import annotations

import math

import numpy as np

from .. import _checks
from .base import Module
from .basic import _as_dout, _as_float, _require_cache


def _same_padding(k: int) -> tuple[int, int]:
    """PyTorch's ``padding="same"`` for stride 1: (before, after)."""
    return (k - 1) // 2, (k - 1) - (k - 1) // 2


class Conv1d(Module):
    """1-D convolution over time, stride 1, "same" padding: ``(T, B, C) -> (T, B, O)``."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int,
                 dtype=np.float32, rng: np.random.Generator | None = None) -> None:
        super().__init__()
        self.in_channels = _checks.positive_int(in_channels, "in_channels")
        self.out_channels = _checks.positive_int(out_channels, "out_channels")
        self.kernel_size = _checks.positive_int(kernel_size, "kernel_size")
        self.dtype = _checks.float_dtype(dtype)
        rng = _checks.generator(rng)
        C, O, k = self.in_channels, self.out_channels, self.kernel_size
        bound = 1.0 / math.sqrt(C * k)
        self.weight = self._register(
            "weight", rng.uniform(-bound, bound, size=(O, C, k)).astype(self.dtype))  # (O, C, k)
        self.bias = self._register("bias", rng.uniform(-bound, bound, size=O).astype(self.dtype))
        self._cache = None

    def forward(self, x) -> np.ndarray:
        """``x (T, B, C)`` -> ``y (T, B, O)``."""
        x = _checks.as_float_array(x, "x", self.dtype, ndim=3)
        T, B, C = x.shape
        if C != self.in_channels:
            raise ValueError(f"x must have shape (T, B, {self.in_channels}) (in_channels = "
                             f"{self.in_channels}), got {x.shape}")
        k = self.kernel_size
        before, after = _same_padding(k)
        xp = np.pad(x, ((before, after), (0, 0), (0, 0)))  # (T + k - 1, B, C)
        windows = np.lib.stride_tricks.sliding_window_view(xp, k, axis=0)  # (T, B, C, k)
        cols = windows.reshape(T * B, C * k)  # (T·B, C·k) a copy: the windows overlap
        y = cols @ self.weight.reshape(self.out_channels, C * k).T  # (T·B, O)
        y += self.bias
        self._cache = (cols, (T, B))
        return y.reshape(T, B, self.out_channels)

    def backward(self, dout) -> np.ndarray:
        """Fill ``weight``/``bias`` gradients from ``dout (T, B, O)``; return ``dx (T, B, C)``."""
        cols, (T, B) = _require_cache(self, self._cache)
        O, C, k = self.out_channels, self.in_channels, self.kernel_size
        dout = _as_dout(dout, (T, B, O), self.dtype).reshape(T * B, O)
        self._grads["weight"][...] = (dout.T @ cols).reshape(O, C, k)
        np.sum(dout, axis=0, out=self._grads["bias"])
        dcols = (dout @ self.weight.reshape(O, C * k)).reshape(T, B, C, k)
        before, _ = _same_padding(k)
        dxp = np.zeros((T + k - 1, B, C), self.dtype)
        for j in range(k):  # tap j reads x̃[t + j]
            dxp[j:j + T] += dcols[..., j]
        return dxp[before:before + T]


class BatchNorm1d(Module):
    """Batch normalisation per channel over time and batch: ``(T, B, C) -> (T, B, C)``."""

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1,
                 dtype=np.float32) -> None:
        super().__init__()
        self.num_features = _checks.positive_int(num_features, "num_features")
        self.eps = _checks.finite_float(eps, "eps")
        if self.eps <= 0:
            raise ValueError(f"eps must be > 0, got {eps!r}")
        self.momentum = _checks.probability(momentum, "momentum")
        self.dtype = _checks.float_dtype(dtype)
        C = self.num_features
        self.weight = self._register("weight", np.ones(C, self.dtype))  # γ
        self.bias = self._register("bias", np.zeros(C, self.dtype))  # β
        self.running_mean = self._register("running_mean", np.zeros(C, self.dtype))
        self.running_var = self._register("running_var", np.ones(C, self.dtype))
        self._cache = None

    def forward(self, x) -> np.ndarray:
        """``x (T, B, C)`` -> ``y (T, B, C)``; batch statistics in training, running ones in eval."""
        x = _checks.as_float_array(x, "x", self.dtype, ndim=3)
        if x.shape[2] != self.num_features:
            raise ValueError(f"x must have shape (T, B, {self.num_features}) (num_features = "
                             f"{self.num_features}), got {x.shape}")
        n = x.shape[0] * x.shape[1]
        if self.training:
            if n < 2:
                raise ValueError(f"batch normalisation in training needs more than one value "
                                 f"per channel (T·B >= 2), got x of shape {x.shape}")
            mu = x.mean(axis=(0, 1))  # (C,)
            var = x.var(axis=(0, 1))  # (C,) biased, for normalising
            m = self.momentum
            self.running_mean[...] = (1 - m) * self.running_mean + m * mu
            self.running_var[...] = (1 - m) * self.running_var + m * var * (n / (n - 1))
        else:
            mu, var = self.running_mean, self.running_var
        inv = 1.0 / np.sqrt(var + self.dtype.type(self.eps))  # (C,)
        xhat = (x - mu) * inv  # (T, B, C)
        self._cache = (xhat, inv, self.training)
        return xhat * self.weight + self.bias

    def backward(self, dout) -> np.ndarray:
        """Fill γ/β gradients from ``dout (T, B, C)``; return ``dx (T, B, C)``."""
        xhat, inv, training = _require_cache(self, self._cache)
        dout = _as_dout(dout, xhat.shape, self.dtype)
        np.sum(dout * xhat, axis=(0, 1), out=self._grads["weight"])
        np.sum(dout, axis=(0, 1), out=self._grads["bias"])
        self._grads["running_mean"].fill(0)
        self._grads["running_var"].fill(0)
        g = self.weight * inv  # (C,)
        if not training:  # fixed statistics: an affine map
            return dout * g
        return g * (dout - dout.mean(axis=(0, 1)) - xhat * (dout * xhat).mean(axis=(0, 1)))


class GlobalAvgPool(Module):
    """The mean over each sequence's valid steps: ``(T, B, C)`` and ``lengths (B,)`` -> ``(B, C)``."""

    def __init__(self) -> None:
        super().__init__()
        self._cache = None

    def forward(self, x, lengths=None) -> np.ndarray:
        x = _as_float(x, "x", None)
        if x.ndim != 3:
            raise ValueError(f"x must have shape (T, B, C), got {x.shape}")
        T, B, _ = x.shape
        lengths = _checks.as_lengths(lengths, T, B)
        n = np.full(B, T) if lengths is None else lengths
        valid = (np.arange(T)[:, None] < n[None, :]).astype(x.dtype)[..., None]  # (T, B, 1)
        scale = valid / n[None, :, None].astype(x.dtype)  # (T, B, 1)
        self._cache = (scale, x.shape)
        return (x * scale).sum(axis=0)  # (B, C)

    def backward(self, dout) -> np.ndarray:
        scale, shape = _require_cache(self, self._cache)
        dout = _as_dout(dout, shape[1:], scale.dtype)
        return scale * dout[None]  # (T, B, C)


class ReLU(Module):
    """``max(x, 0)`` elementwise."""

    def __init__(self) -> None:
        super().__init__()
        self._cache = None

    def forward(self, x) -> np.ndarray:
        x = _as_float(x, "x", None)
        self._cache = x > 0
        return np.where(self._cache, x, x.dtype.type(0))

    def backward(self, dout) -> np.ndarray:
        positive = _require_cache(self, self._cache)
        dout = _as_dout(dout, positive.shape, None)
        return np.where(positive, dout, dout.dtype.type(0))
