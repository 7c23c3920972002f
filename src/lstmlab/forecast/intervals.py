"""Prediction intervals from a forecaster's out-of-sample errors (split conformal).

Dimensions: n windows, L lookback, K horizon.

The forecaster passes the errors it has honest forecasts for: its validation windows' and,
for the hybrid, its linear AR's leave-one-out forecasts of the training windows
(:meth:`.model.Forecaster.train`). For each step ahead k, the interval at level a is the
forecast ± q_k(a), where q_k(a) is the ``⌈(n+1)·a⌉``-th smallest absolute error at step k
(the split-conformal quantile, Lei et al. 2018: with exchangeable errors the interval
covers the truth with probability at least a). With the log transform the errors and the
interval are taken in log units, so the interval grows with the level of the series.
Time-series errors are not exchangeable and the validation part also chose the epoch, so
the coverage is measured on the test part and reported beside the nominal level, not
assumed. With fewer than ``(1+a)/(1-a)`` errors (9 at 80 %, 39 at 95 %) the quantile is the
largest error.

**Local scale** (``fit(..., windows=X)``, what the single-series forecaster uses): each
window's errors are first divided by that window's mean absolute one-step change
``s(x) = mean_t |y_t − y_{t−1}|`` over its L input steps (in log units with the log
transform), and the interval at a new window is the forecast ± q_k(a)·s(x): the conformal
quantile of the ratios times the new window's own scale (normalized conformal prediction,
Papadopoulos, Vovk & Gammerman 2008; Lei et al. 2018). Errors grow and shrink with the
recent roughness of a series, so a calibration set that mixes calm and rough stretches gives
intervals that widen after a rough stretch and narrow after a calm one. A window with no
change (a series that moves in rare steps: policy rates, prices) has no scale of its own: it
takes the typical one, the mean scale of the calibration windows (the global model gives each
window its series' scale). Divided by a scale near 0, the error of a step that comes after a
flat window would swamp every quantile and make every interval absurdly wide.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

LEVELS = (0.8, 0.95)


FLAT = 1e-9  # a window whose mean one-step change is below this share of the typical one has none


def window_scale(X: np.ndarray, log: bool, flat=0.0) -> np.ndarray:
    """``(n,)``: the mean absolute one-step change of each raw window's target ``X[:, :, 0]``
    (in log units with ``log``); a window with next to no change (below ``FLAT`` times
    ``flat``, the typical scale: a number or one per window) takes ``flat`` instead, the same
    whether it is calibrated or forecast from, whatever other windows share its batch."""
    z = np.log(X[:, :, 0]) if log else np.asarray(X[:, :, 0], np.float64)
    if z.shape[1] < 2:
        return np.ones(len(z))
    return _or_flat(np.mean(np.abs(np.diff(z, axis=1)), axis=1), flat)


def _or_flat(scales: np.ndarray, flat) -> np.ndarray:
    """``scales``, with ``flat`` in place of those below ``FLAT`` times it (see above)."""
    return np.where(scales > FLAT * np.asarray(flat), scales, flat)


def conformal_quantile(scores: np.ndarray, level: float, axis: int = 0) -> np.ndarray:
    """The ``⌈(n+1)·level⌉``-th smallest of the n ``scores`` along ``axis`` (the largest when
    n is too small for that rank): the split-conformal quantile."""
    scores = np.asarray(scores, np.float64)
    n = scores.shape[axis]
    k = min(n, int(np.ceil((n + 1) * level - 1e-9)))  # (the tolerance: (n+1)·level in binary)
    return np.take(np.sort(scores, axis=axis), k - 1, axis=axis)


@dataclass
class Intervals:
    """Half-widths per level and step ahead, fitted on out-of-sample forecasts."""

    log: bool  # widths in log units
    width: dict  # "0.8" -> (K,) half-width per step ahead (local: multiples of the scale)
    n: int  # calibration windows behind them
    local: bool = False  # widths are multiples of each window's scale (window_scale)
    flat: float | None = None  # local: the scale of a window with no change (None: per series)
    lower: float | None = None  # the least value the target takes (0 for counts): bounds stop there

    @classmethod
    def fit(cls, truth: np.ndarray, pred: np.ndarray, log: bool, levels=LEVELS,
            windows: np.ndarray | None = None, flat=None) -> "Intervals":
        """``truth, pred (n, K)`` out-of-sample, in the series' units; with the raw input
        ``windows (n, L, D)`` behind them, the widths follow each window's local scale, a
        flat window's being ``flat`` (one per window, when they come from several series;
        by default the calibration windows' mean scale). Windows that are all flat give
        fixed widths."""
        f = np.log if log else np.asarray
        err = np.abs(f(np.asarray(truth, np.float64)) - f(np.asarray(pred, np.float64)))
        raw = None if windows is None else window_scale(windows, log)  # (n,) their own scales
        local = raw is not None and float(np.max(raw, initial=0)) > 0
        keep = None
        if local:
            keep = float(np.mean(raw)) if flat is None else None
            err = err / _or_flat(raw, keep if flat is None else flat)[:, None]
        n = len(err)
        if n == 0:
            raise ValueError("prediction intervals need at least one validation window")
        width = {}
        for a in levels:
            width[f"{a:g}"] = conformal_quantile(err, a)  # (K,)
        return cls(log, width, n, local, keep)

    def bounds(self, pred: np.ndarray, level: str, windows: np.ndarray | None = None,
               flat=None) -> tuple[np.ndarray, np.ndarray]:
        """``(lo, hi)``, each ``(n, K')``, around the forecasts ``pred (n, K')`` made from the
        raw ``windows (n, L, D)`` (needed for local-scale intervals); ``flat``: the scale of a
        flat window, when the intervals keep none (the global model's: its series' scale)."""
        w = self.width[level][: pred.shape[1]]
        if self.local:
            if windows is None:
                raise ValueError("local-scale intervals need the input windows of the forecasts")
            flat = self.flat if flat is None else flat
            if flat is None:
                raise ValueError("these intervals serve several series: pass the series' scale "
                                 "as flat")
            w = w * window_scale(windows, self.log, flat)[:, None]  # (n, K')
        if self.log:
            lo, hi = pred * np.exp(-w), pred * np.exp(w)
        else:
            lo, hi = pred - w, pred + w
        if self.lower is not None:
            lo, hi = np.maximum(lo, self.lower), np.maximum(hi, self.lower)
        return lo, hi

    def coverage(self, truth: np.ndarray, pred: np.ndarray,
                 windows: np.ndarray | None = None, flat=None) -> dict:
        """Share of ``truth (n, K)`` inside the interval, per level."""
        out = {}
        for level in self.width:
            lo, hi = self.bounds(pred, level, windows, flat)
            out[level] = float(np.mean((truth >= lo) & (truth <= hi)))
        return out

    def to_json(self) -> dict:
        return {"log": self.log, "n": self.n, "local": self.local, "flat": self.flat,
                "lower": self.lower, "width": {k: v.tolist() for k, v in self.width.items()}}

    @classmethod
    def from_json(cls, d: dict) -> "Intervals":
        width = {str(k): np.asarray(v, np.float64) for k, v in d["width"].items()}
        flat = d.get("flat")
        if flat is None and d.get("floor"):  # kept a billionth of the largest scale instead
            flat = d["floor"] / FLAT
        lower = d.get("lower")
        return cls(bool(d["log"]), width, int(d["n"]), bool(d.get("local", False)),
                   None if flat is None else float(flat), None if lower is None else float(lower))
