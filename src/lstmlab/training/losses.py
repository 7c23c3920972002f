"""Losses with their gradients: fused softmax–cross-entropy, MSE, and stable (log-)softmax.

Dimensions: ``...`` any leading shape (e.g. ``(T, B)``), V classes (the vocabulary),
N the number of leading positions flattened into one (``N = prod(...)``).

Each loss returns ``(loss, dinput)``: the reduced loss as a Python float and its gradient
with respect to the prediction, so the backward pass starts from an exact, cheap gradient.

Softmax and log-softmax subtract the row maximum first (``softmax(z) = softmax(z - max z)``),
so ``exp`` never overflows, and compute ``log Σ exp`` from the shifted values::

    log softmax(z)_k = (z_k - m) - log Σ_j exp(z_j - m),   m = max_j z_j

Cross-entropy of position n with target class ``t_n`` is ``ℓ_n = -log softmax(z_n)_{t_n}``.
Fusing it with the softmax gives the well-known gradient ``∂ℓ_n/∂z_n = softmax(z_n) -
onehot(t_n)``, which avoids dividing by small probabilities. Positions whose target equals
``ignore_index`` or whose ``mask`` is 0 (padding) contribute neither loss nor gradient;
``reduction="mean"`` divides by the number of counted positions, as PyTorch's
``F.cross_entropy(..., ignore_index=...)`` does.

Mean squared error: ``L = (1/n) Σ (pred - target)²`` with ``∂L/∂pred = 2 (pred - target) / n``
(without the ``1/n`` for ``reduction="sum"``).

Pinball (quantile) loss of a forecast ``q`` of the τ-quantile: ``ρ_τ(e) = max(τ e, (τ - 1) e)``
with ``e = target - q``, averaged; its minimiser over q is the τ-quantile of the target
(Koenker & Bassett 1978). ``∂ρ/∂q = -τ`` where the target is above q and ``1 - τ`` where it is
below (at ``e = 0``, a kink, the subgradient ``-τ`` is taken), divided by n for the mean.

Losses are summed in float64 whatever the input precision, because a float32 sum over a
large batch loses digits that the reported loss (and a loss-curve comparison) would show.
"""

from __future__ import annotations

import numbers

import numpy as np

from .. import _checks

_REDUCTIONS = ("mean", "sum")


def _float_input(value, name: str, ndim_min: int = 0, dtype=None) -> np.ndarray:
    """A finite floating array with at least ``ndim_min`` axes, of ``dtype`` (None: its own)."""
    value = _checks.as_numpy(value, name)  # a torch tensor, a list: an array
    shape = value.shape
    if len(shape) < ndim_min:
        raise ValueError(f"{name} must have at least {ndim_min} dimension(s), got shape {shape}")
    # The reshape undoes as_float_array's (ascontiguousarray's) 0-d -> 1-d.
    return _checks.as_float_array(value, name, dtype=dtype).reshape(shape)


def _check_reduction(reduction) -> str:
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")
    return reduction


def _check_axis(x: np.ndarray, axis, name: str) -> int:
    """``axis`` of ``x`` as an int; it must hold at least one class (a softmax over none is
    undefined, and NumPy's max over it fails with a message about reductions)."""
    integral = isinstance(axis, numbers.Integral) and not isinstance(axis, bool)
    if not integral or not -x.ndim <= axis < x.ndim:
        raise ValueError(f"axis must be an integer in [{-x.ndim}, {x.ndim - 1}] for {name} of "
                         f"shape {x.shape}, got {axis!r}")
    if x.shape[axis] == 0:
        raise ValueError(f"{name} of shape {x.shape} has no classes along axis {axis}: a "
                         f"softmax needs at least one")
    return int(axis)


def log_softmax(x, axis: int = -1) -> np.ndarray:
    """``log softmax(x)`` along ``axis``, max-subtracted so it never overflows."""
    x = _float_input(x, "x", ndim_min=1)
    axis = _check_axis(x, axis, "x")
    shifted = x - x.max(axis=axis, keepdims=True)  # same shape as x
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


def softmax(x, axis: int = -1) -> np.ndarray:
    """``softmax(x)`` along ``axis``, max-subtracted so it never overflows."""
    x = _float_input(x, "x", ndim_min=1)
    axis = _check_axis(x, axis, "x")
    e = np.exp(x - x.max(axis=axis, keepdims=True))  # same shape as x
    e /= e.sum(axis=axis, keepdims=True)
    return e


def _counted_positions(targets: np.ndarray, ignore_index, mask) -> np.ndarray:
    """``(N,)`` bool: the positions that count (target not ignored, mask not 0)."""
    counted = np.ones(targets.shape, dtype=bool)  # (N,)
    if ignore_index is not None:
        if isinstance(ignore_index, bool) or not isinstance(ignore_index, numbers.Integral):
            raise TypeError(f"ignore_index must be an integer or None, got {ignore_index!r}")
        counted &= targets != ignore_index
    if mask is not None:
        counted &= mask
    return counted


def _as_mask(mask, shape: tuple[int, ...]) -> np.ndarray | None:
    """``mask`` as a bool array of ``shape``; it must hold only 0/1 (or False/True)."""
    if mask is None:
        return None
    if hasattr(mask, "detach") and hasattr(mask, "numpy"):
        mask = mask.detach().cpu().numpy()
    mask = np.asarray(mask)
    if mask.shape != shape:
        raise ValueError(f"mask must have the shape of targets {shape}, got {mask.shape}")
    if mask.dtype.kind not in "biuf" or not np.all((mask == 0) | (mask == 1)):
        raise ValueError("mask must hold only 0 and 1 (or False and True): 1 marks a position "
                         "that counts, 0 a padding position")
    return mask.astype(bool)


def softmax_cross_entropy(logits, targets, ignore_index: int | None = None, mask=None,
                          reduction: str = "mean") -> tuple[float, np.ndarray]:
    """Cross-entropy of ``softmax(logits)`` against integer ``targets``, and its gradient.

    ``logits (..., V)``, ``targets (...)`` integer classes in ``[0, V)``; ``ignore_index`` (a
    target value) and ``mask (...)`` (0 = padding) mark positions that do not count.
    Returns ``(loss, dlogits)`` with ``dlogits (..., V)`` the gradient of the reduced loss.
    """
    reduction = _check_reduction(reduction)
    logits = _float_input(logits, "logits", ndim_min=1)
    if hasattr(targets, "detach") and hasattr(targets, "numpy"):
        targets = targets.detach().cpu().numpy()
    targets = np.asarray(targets)
    if targets.dtype.kind not in "iu":
        raise TypeError(f"targets must be an integer array of class ids, got dtype "
                        f"{targets.dtype} (convert with .astype(np.int64))")
    _check_axis(logits, -1, "logits")
    lead, V = logits.shape[:-1], logits.shape[-1]
    if targets.shape != lead:
        raise ValueError(f"targets must have shape {lead} (logits' shape {logits.shape} without "
                         f"its class axis), got {targets.shape}")
    mask = _as_mask(mask, lead)

    z = logits.reshape(-1, V)  # (N, V)
    t = targets.reshape(-1).astype(np.int64, copy=False)  # (N,)
    flat_mask = None if mask is None else mask.reshape(-1)  # (N,)
    counted = _counted_positions(t, ignore_index, flat_mask)  # (N,)
    n_counted = int(counted.sum())
    if z.shape[0] == 0:
        raise ValueError(f"logits has no positions (shape {logits.shape}): the cross-entropy "
                         f"of no targets is undefined")
    if n_counted == 0:
        raise ValueError("every position is ignored (by ignore_index or mask), so the loss is "
                         "undefined; pass at least one counted target")
    t_counted = t[counted]
    lo, hi = int(t_counted.min()), int(t_counted.max())
    if lo < 0 or hi >= V:
        bad = lo if lo < 0 else hi
        hint = "" if ignore_index is None else f" (ignore_index = {ignore_index})"
        raise ValueError(f"targets must lie in [0, {V - 1}] (V = {V} classes){hint}, got {bad}")
    # Ignored positions may hold any value (e.g. -100); index with a harmless 0 there.
    t_safe = np.where(counted, t, 0)  # (N,)
    rows = np.arange(z.shape[0])  # (N,)

    shifted = z - z.max(axis=1, keepdims=True)  # (N, V)  z - m
    z_target = shifted[rows, t_safe]  # (N,)  z_t - m
    probs = np.exp(shifted, out=shifted)  # (N, V)  reuse the buffer: exp(z - m)
    total = probs.sum(axis=1)  # (N,)  Σ_j exp(z_j - m)
    nll = np.log(total) - z_target  # (N,)  ℓ = log Σ exp(z - m) - (z_t - m)
    loss = float(np.sum(nll[counted], dtype=np.float64))
    if reduction == "mean":
        loss /= n_counted

    # backprop through the fused softmax–cross-entropy: softmax - onehot, on counted rows
    probs /= total[:, None]
    probs[rows, t_safe] -= 1.0
    row_scale = counted.astype(probs.dtype)  # (N,)  0 on padding
    if reduction == "mean":
        row_scale /= n_counted
    probs *= row_scale[:, None]
    return loss, probs.reshape(logits.shape)  # (..., V)


def mse_loss(pred, target, reduction: str = "mean") -> tuple[float, np.ndarray]:
    """Mean (or summed) squared error and its gradient ``dpred`` (same shape as ``pred``)."""
    reduction = _check_reduction(reduction)
    pred = _float_input(pred, "pred")
    target = _float_input(target, "target", dtype=pred.dtype)
    if target.shape != pred.shape:
        # No broadcasting: a (B,) target against a (B, 1) prediction silently makes a
        # (B, B) loss, a classic mistake, so demand equal shapes.
        raise ValueError(f"target must have the shape of pred {pred.shape}, got {target.shape}")
    if pred.size == 0 and reduction == "mean":
        raise ValueError("pred is empty: the mean squared error of no values is undefined")
    diff = pred - target  # same shape as pred
    # squared in float64: float32 errors beyond 1.8e19 would square to inf in float32
    loss = float(np.sum(np.square(diff, dtype=np.float64)))
    scale = 2.0
    if reduction == "mean":
        loss /= pred.size
        scale /= pred.size
    diff *= scale  # ∂L/∂pred = 2 (pred - target) [/ n]
    return loss, np.asarray(diff)  # a 0-d pred makes diff a NumPy scalar


def pinball_loss(pred, target, quantiles, reduction: str = "mean") -> tuple[float, np.ndarray]:
    """Pinball loss of ``pred`` as forecasts of the ``quantiles`` of ``target`` (see the module
    docstring) and its gradient ``dpred``. ``quantiles`` (levels in (0, 1)) broadcasts
    against ``pred``, e.g. shape ``(Q, 1)`` for ``pred (n, Q, K)``; ``target`` has ``pred``'s
    shape."""
    reduction = _check_reduction(reduction)
    pred = _float_input(pred, "pred")
    target = _float_input(target, "target", dtype=pred.dtype)
    if target.shape != pred.shape:
        raise ValueError(f"target must have the shape of pred {pred.shape}, got {target.shape}")
    tau = np.asarray(quantiles, np.float64)
    if not np.all((tau > 0) & (tau < 1)):
        raise ValueError(f"quantiles must lie strictly between 0 and 1, got {tau.ravel().tolist()}")
    try:
        tau = np.broadcast_to(tau, pred.shape)
    except ValueError:
        raise ValueError(f"quantiles of shape {np.shape(quantiles)} do not broadcast against "
                         f"pred {pred.shape}") from None
    if pred.size == 0 and reduction == "mean":
        raise ValueError("pred is empty: the mean pinball loss of no values is undefined")
    e = target.astype(np.float64) - pred  # target minus forecast
    loss = float(np.sum(np.maximum(tau * e, (tau - 1) * e)))
    grad = np.where(e < 0, 1 - tau, -tau)  # ∂ρ/∂pred
    if reduction == "mean":
        loss /= pred.size
        grad /= pred.size
    return loss, grad.astype(pred.dtype)
