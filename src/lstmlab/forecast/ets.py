"""Exponential smoothing (ETS) as a baseline, from statsmodels when it is installed.

Dimensions: N time steps, n forecast origins, K horizon.

ETS is the statistical forecaster most users already trust (Hyndman et al. 2008), so the
report puts it beside the baselines written here. It comes from statsmodels' state-space
``ExponentialSmoothing`` (additive errors; optional additive trend, damped; optional additive
season of length m), an optional dependency (``pip install 'lstmlab[ets]'``). The variant —
trend or not, log of the target or not (positive series only) — is chosen like every other
setting: parameters fitted by maximum likelihood on the training part, variant picked by the
MAE on the validation windows. The parameters then stay fixed; each origin's K-step forecast
runs the fitted model's filter over the data before that origin (``results.apply``), as the
network and the other baselines see only the past of each window. A constant training part
has nothing to estimate (statsmodels' fit of an all-zero one fails): its ETS is the
smoothing with α = 1, the last value.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np


def available() -> bool:
    """True when statsmodels can be imported."""
    try:
        import statsmodels.tsa.statespace.exponential_smoothing  # noqa: F401
    except ImportError:
        return False
    return True


@dataclass
class ETSBaseline:
    """A fitted ETS variant: K-step forecasts from any origin with fixed parameters."""

    log: bool  # fitted to log(y)
    trend: bool  # additive damped trend
    season: int | None  # additive season m
    results: object  # statsmodels' fitted results on the training part; None: α = 1

    @classmethod
    def fit(cls, y_train: np.ndarray, log: bool, trend: bool, season: int | None) -> "ETSBaseline":
        from statsmodels.tsa.statespace.exponential_smoothing import ExponentialSmoothing

        z = np.log(y_train) if log else np.asarray(y_train, np.float64)
        model = ExponentialSmoothing(z, trend=trend, damped_trend=trend, seasonal=season,
                                     initialization_method="concentrated")
        with warnings.catch_warnings():  # convergence chatter of the optimiser, not an error
            warnings.simplefilter("ignore")
            results = model.fit(disp=False)
        return cls(log, trend, season, results)

    def forecast(self, y: np.ndarray, origins: np.ndarray, horizon: int) -> np.ndarray:
        """``(n, K)``: for each origin t, the K steps from t on, given ``y[:t]``."""
        z = np.log(y) if self.log else np.asarray(y, np.float64)
        if self.results is None:  # a constant training part: the last value
            return np.repeat(z[np.asarray(origins) - 1][:, None], horizon, axis=1)
        out = np.empty((len(origins), horizon))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for i, t in enumerate(origins):
                out[i] = self.results.apply(z[:t]).forecast(horizon)
        return np.exp(out) if self.log else out

    def describe(self) -> str:
        if self.results is None:
            return "ETS(constant: the last value)"
        parts = ["log" if self.log else "levels", "damped trend" if self.trend else "no trend",
                 f"season {self.season}" if self.season else "no season"]
        return "ETS(" + ", ".join(parts) + ")"


def fit_ets(y: np.ndarray, train: int, val_origins: np.ndarray, horizon: int,
            season: int | None) -> ETSBaseline:
    """The ETS variant with the lowest validation MAE, fitted on ``y[:train]``.

    Without validation windows the damped-trend variant in levels is taken. Raises
    ``ImportError`` when statsmodels is missing.
    """
    y = np.asarray(y, np.float64)
    if np.ptp(y[:train]) == 0:
        return ETSBaseline(False, False, None, None)
    m = season if season and train >= 2 * season + 2 else None  # a season the fit can start from
    logs = (False, True) if np.all(y > 0) else (False,)
    if len(val_origins) == 0:
        return ETSBaseline.fit(y[:train], False, True, m)
    best, best_err = None, np.inf
    for log in logs:
        for trend in (False, True):
            cand = ETSBaseline.fit(y[:train], log, trend, m)
            pred = cand.forecast(y, val_origins, horizon)
            truth = y[np.asarray(val_origins)[:, None] + np.arange(horizon)[None, :]]
            err = float(np.mean(np.abs(pred - truth)))
            if np.isfinite(err) and err < best_err:
                best, best_err = cand, err
    return best if best is not None else ETSBaseline.fit(y[:train], False, True, m)
