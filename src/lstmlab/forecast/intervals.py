"""Prediction intervals from a forecaster's out-of-sample errors (split conformal).

Dimensions: n windows, K horizon.

The forecaster passes the errors it has honest forecasts for: its validation windows' and,
for the hybrid, its linear AR's leave-one-out forecasts of the training windows
(:meth:`.model.Forecaster.train`). For each step ahead k, the interval at level a is the
forecast ± q_k(a), where q_k(a) is the ``⌈(n+1)·a⌉``-th smallest absolute error at step k
(the split-conformal quantile, Lei et al. 2018: with exchangeable errors the interval
covers the truth with probability at least a). With the log transform the errors and the
interval are taken in log units, so the interval grows with the level of the series.
Time-series errors are not exchangeable and the validation part also chose the epoch, so
the coverage is measured on the test part and reported beside the nominal level, not
assumed. With fewer than ``1/(1-a) - 1`` errors the quantile is the largest error.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

LEVELS = (0.8, 0.95)


@dataclass
class Intervals:
    """Half-widths per level and step ahead, fitted on validation forecasts."""

    log: bool  # widths in log units
    width: dict  # "0.8" -> (K,) half-width per step ahead
    n: int  # validation windows behind them

    @classmethod
    def fit(cls, truth: np.ndarray, pred: np.ndarray, log: bool, levels=LEVELS) -> "Intervals":
        """``truth, pred (n, K)`` on the validation windows, in the series' units."""
        f = np.log if log else np.asarray
        err = np.abs(f(np.asarray(truth, np.float64)) - f(np.asarray(pred, np.float64)))
        n = len(err)
        if n == 0:
            raise ValueError("prediction intervals need at least one validation window")
        width = {}
        for a in levels:
            rank = min(1.0, np.ceil((n + 1) * a) / n)
            width[f"{a:g}"] = np.quantile(err, rank, axis=0, method="higher")  # (K,)
        return cls(log, width, n)

    def bounds(self, pred: np.ndarray, level: str) -> tuple[np.ndarray, np.ndarray]:
        """``(lo, hi)``, each ``(n, K')``, around the forecasts ``pred (n, K')``."""
        w = self.width[level][: pred.shape[1]]
        if self.log:
            return pred * np.exp(-w), pred * np.exp(w)
        return pred - w, pred + w

    def coverage(self, truth: np.ndarray, pred: np.ndarray) -> dict:
        """Share of ``truth (n, K)`` inside the interval, per level."""
        out = {}
        for level in self.width:
            lo, hi = self.bounds(pred, level)
            out[level] = float(np.mean((truth >= lo) & (truth <= hi)))
        return out

    def to_json(self) -> dict:
        return {"log": self.log, "n": self.n,
                "width": {k: v.tolist() for k, v in self.width.items()}}

    @classmethod
    def from_json(cls, d: dict) -> "Intervals":
        width = {str(k): np.asarray(v, np.float64) for k, v in d["width"].items()}
        return cls(bool(d["log"]), width, int(d["n"]))
