"""The M4 competition's accuracy measures: sMAPE, naive 2 and the overall weighted average.

Dimensions: N time steps, n forecast origins (windows), K horizon, m season.

Makridakis, Spiliotis & Assimakopoulos (2020), "The M4 Competition: 100,000 time series and
61 forecasting methods", International Journal of Forecasting 36(1), define:

* ``sMAPE = (200 / K) · Σ_k |y_k − ŷ_k| / (|y_k| + |ŷ_k|)`` (a term whose truth and forecast
  are both 0 counts as 0 here, where the paper's formula divides by zero);
* **naive 2**: the naive forecast of the seasonally adjusted series, re-seasonalised. A series
  is seasonal when its autocorrelation at lag m exceeds the 90 % limit
  ``1.645 · sqrt((1 + 2 Σ_{k<m} r_k²) / N)`` (Bartlett's standard error); the seasonal indices
  come from a classical multiplicative decomposition (a centred moving average of order m,
  2×m when m is even; the ratios y / average averaged per phase and normalised to mean 1).
  Not seasonal, m = 1, or a training value ≤ 0 (a multiplicative index needs positive
  data): naive 2 is the plain naive forecast;
* **OWA** of a method: ``(sMAPE / sMAPE_naive2 + MASE / MASE_naive2) / 2``, over a whole set
  with the means over its series in place of one series' numbers. Below 1 beats naive 2.

Here every number averages over all test windows (rolling origins), not the paper's single
origin per series; the seasonal indices are fitted on the training part only.
"""

from __future__ import annotations

import numpy as np

from .baselines import smape  # noqa: F401  (the M4 sMAPE, defined with the other errors)
from .data import autocorrelation

T_CRIT = 1.645  # the 90 % one-sided normal quantile of the M4 seasonality test


def is_seasonal(y: np.ndarray, m: int | None) -> bool:
    """The M4 90 % autocorrelation test for a season of length ``m`` in ``y (N,)``; needs
    m > 1 and N >= 3m, as in the competition's benchmark code."""
    y = np.asarray(y, np.float64)
    if not m or m <= 1 or len(y) < 3 * m:
        return False
    r = autocorrelation(y, m)  # (m+1,) r_0..r_m
    limit = T_CRIT * np.sqrt((1 + 2 * np.sum(r[1:m] ** 2)) / len(y))
    return bool(abs(r[m]) > limit)


def _phase_means(y: np.ndarray, m: int, ratio: bool) -> np.ndarray:
    """``(m,)`` the mean per phase of ``y (N,)`` against its centred moving average of order m
    (2×m when m is even): of ``y / average`` with ``ratio``, else of ``y − average``. Phase
    ``p`` holds the steps ``i`` with ``i % m == p``."""
    y = np.asarray(y, np.float64)
    if m % 2:
        weights = np.full(m, 1.0 / m)
    else:  # 2×m moving average: centred on a step, half weight on both ends
        weights = np.r_[0.5, np.ones(m - 1), 0.5] / m
    trend = np.convolve(y, weights, mode="valid")  # (N - 2h,), centred on steps h..N-1-h
    h = len(weights) // 2
    steps = np.arange(h, h + len(trend))
    detrended = y[steps] / trend if ratio else y[steps] - trend
    return np.array([detrended[steps % m == p].mean() for p in range(m)])


def seasonal_indices(y: np.ndarray, m: int) -> np.ndarray:
    """``(m,)`` multiplicative seasonal indices of a positive ``y (N,)`` by classical
    decomposition, normalised to mean 1; index ``p`` belongs to the steps ``i % m == p``."""
    idx = _phase_means(y, m, ratio=True)
    return idx * m / idx.sum()


def seasonal_offsets(y: np.ndarray, m: int) -> np.ndarray:
    """``(m,)`` additive seasonal components of ``y (N,)`` (any sign) by classical
    decomposition, normalised to mean 0: for a series with values ≤ 0, where ratios to the
    trend mean nothing."""
    off = _phase_means(y, m, ratio=False)
    return off - off.mean()


def naive2(y: np.ndarray, train_end: int, origins: np.ndarray, horizon: int,
           season: int | None) -> np.ndarray:
    """``(n, K)`` naive 2 forecasts from the target ``y (N,)`` at ``origins``; the seasonality
    test and the indices see ``y[:train_end]`` only."""
    y = np.asarray(y, np.float64)
    origins = np.asarray(origins, np.int64)
    last = y[origins - 1][:, None]  # (n, 1)
    k = np.arange(horizon)
    train = y[:train_end]
    if not (season and season > 1 and np.all(train > 0) and is_seasonal(train, season)):
        return np.repeat(last, horizon, axis=1)
    s = seasonal_indices(train, season)
    adjusted = last / s[(origins - 1) % season][:, None]  # (n, 1) seasonally adjusted level
    return adjusted * s[(origins[:, None] + k[None, :]) % season]


def owa(smape_: float, mase_: float, smape_naive2: float, mase_naive2: float) -> float:
    """Overall weighted average relative to naive 2 (NaN when naive 2 is exact)."""
    if smape_naive2 <= 0 or mase_naive2 <= 0:
        return float("nan")
    return 0.5 * (smape_ / smape_naive2 + mase_ / mase_naive2)
