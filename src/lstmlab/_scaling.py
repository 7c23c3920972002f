"""Standardisation statistics that stay meaningful in float64, and the checks that say when
they cannot.

Standardising a column needs its mean and variance, a mean of squares; RMSE squares errors
too. Squares leave float64's normal range when values exceed about 1.3e154 in magnitude
(the square overflows to inf; a sum of many squares sooner) or when a column's values
differ by less than about 1.5e-154 (the squared deviations fall below 2.2e-308, the
smallest normal float64, and lose their digits or become 0). Past those edges the
statistics are silently wrong — an infinite standard deviation scales every value to 0, a
zero one leaves them unscaled — and so is everything after them (a classifier that reads
zeros, an infinite MASE). The limits used, 1e150 and 1e-150, keep eight orders of magnitude
of headroom for sums over many values. The data checks
here refuse such a column with a message naming it and where its extreme value is, and the
remedy: rescaling a column by a power of ten changes nothing else about the problem.

:func:`mean_std` is the standardisation itself, with "constant" judged relative to the
column's magnitude, so a column measured in tiny units (values around 1e-20) is scaled like
any other instead of being taken for a constant.
"""

from __future__ import annotations

import math

import numpy as np

BIG = 1e150  # above this |value|, squares and their sums overflow float64 (max 1.8e308)
SMALL = 1e-150  # below this spread, squared deviations underflow (smallest normal 2.2e-308)
CONSTANT = 1e-12  # a standard deviation below this share of the largest |value|: constant


def range_problem(values: np.ndarray, column: str, where=None, spread: bool = True) -> str | None:
    """Why the column ``values (n,)`` cannot be standardised, or None.

    ``where(i)`` describes position ``i`` for the message (a line, a case); the default says
    "row i". ``spread=False`` checks only that values are finite and not too large (for data
    that a scaler fitted elsewhere will scale, whose own spread is not used).
    """
    where = where or (lambda i: f"row {i}")
    a = np.asarray(values, np.float64)
    if a.size == 0:
        return None
    bad = ~np.isfinite(a)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        return f"column {column!r} holds {a[i]} at {where(i)}: values must be finite numbers"
    i = int(np.argmax(np.abs(a)))
    if abs(a[i]) > BIG:
        k = int(math.floor(math.log10(abs(a[i]))))
        return (f"column {column!r} holds {a[i]:.3g} at {where(i)}: values beyond ±{BIG:.0e} "
                f"overflow float64 when squared (standardisation, RMSE); correct the value or "
                f"rescale the column (e.g. divide it by 1e{k})")
    size = float(a.max() - a.min())
    if spread and 0 < size < SMALL:
        k = -int(math.floor(math.log10(size)))
        return (f"column {column!r}: its values differ by at most {size:.3g}, less than "
                f"{SMALL:.0e}, so their squared deviations underflow float64 (standardisation, "
                f"RMSE); rescale the column (e.g. multiply it by 1e{k})")
    return None


def mean_std(a: np.ndarray, axis) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation of ``a`` along ``axis``; 1 where a column is constant
    (its standard deviation below ``CONSTANT`` times its largest magnitude), so a constant
    input scales to 0 instead of dividing by rounding noise."""
    a = np.asarray(a, np.float64)
    mean = a.mean(axis=axis)
    std = a.std(axis=axis)
    if not (np.isfinite(mean).all() and np.isfinite(std).all()):
        raise ValueError("the standardisation statistics are not finite (the data overflow "
                         "float64); rescale the data")
    size = np.abs(a).max(axis=axis) if a.size else np.zeros_like(mean)
    return mean, np.where(std > CONSTANT * size, std, 1.0)
