"""Exponential smoothing over each window: the hybrid's ``"ets"`` base.

Dimensions: n windows, L lookback, K horizon, G parameter candidates, m season.

The additive exponential-smoothing recursions (Holt 1957, Winters 1960; with Gardner &
McKenzie's 1985 damped trend), run over the L values a window holds, in levels or in logs:

    level  l_t = α (y_t - s_{t-m}) + (1 - α)(l_{t-1} + φ b_{t-1})
    trend  b_t = β (l_t - l_{t-1}) + (1 - β) φ b_{t-1}
    season s_t = γ (y_t - l_{t-1} - φ b_{t-1}) + (1 - γ) s_{t-m}
    ŷ_{t+k} = l_t + (φ + φ² + … + φ^k) b_t + s of the same phase in the last season

started from the window's first values (without a season: l = y_0, b = y_1 - y_0; with one:
l the mean of the first m values, s their deviations from it, b the change of the mean from
the first m values to the next m over m). A variant drops the trend (b = 0) or the season
(s = 0); the season needs L >= 2m.

Like the linear AR, it forecasts from the window alone, so it slots into the hybrid as its
other bases do; unlike a state-space ETS fitted to the whole series, its state restarts at
every window, and its parameters (α, β, φ, γ, from a fixed grid, and the variant) are the
ones whose K-step forecasts have the lowest MAE over the training windows: the same criterion
the base is judged by. Four parameters at most, so its forecasts of the windows it was fitted
on are close to out-of-sample ones.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

ALPHAS = (0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9, 1.0)
BETAS = (0.0, 0.05, 0.1, 0.2, 0.4)
PHIS = (0.8, 0.9, 0.95, 0.98, 1.0)
GAMMAS = (0.0, 0.1, 0.2, 0.4)
CHUNK = 1 << 21  # forecasts (grid points · windows · K) computed at once


def _grid(trend: bool, seasonal: bool) -> np.ndarray:
    """``(G, 4)``: every (α, β, φ, γ) of a variant (β = φ = 0 without a trend, γ = 0 without a
    season)."""
    rows = [(a, b, p, g) for a in ALPHAS for b in (BETAS if trend else (0.0,))
            for p in (PHIS if trend else (0.0,)) for g in (GAMMAS if seasonal else (0.0,))]
    return np.array(rows, np.float64)


def _run(z: np.ndarray, horizon: int, params: np.ndarray, trend: bool, m: int) -> np.ndarray:
    """``(G, n, K)``: the forecasts of windows ``z (n, L)`` for each row (α, β, φ, γ) of
    ``params (G, 4)``; ``m`` the season, 0 for none."""
    a, b, p, g = (params[:, i][:, None] for i in range(4))  # (G, 1) each
    n, L = z.shape
    G = len(params)
    if m:
        first = z[:, :m].mean(axis=1)
        level = np.broadcast_to(first, (G, n)).copy()
        season = np.broadcast_to(z[:, :m] - first[:, None], (G, n, m)).copy()
        slope = (z[:, m:2 * m].mean(axis=1) - first) / m if trend else np.zeros(n)
        start = m
    else:
        level = np.broadcast_to(z[:, 0], (G, n)).copy()
        season = None
        slope = z[:, 1] - z[:, 0] if trend and L > 1 else np.zeros(n)
        start = 1
    slope = np.broadcast_to(slope, (G, n)).copy()
    for t in range(start, L):
        y = z[:, t]
        s = season[:, :, t % m] if m else 0.0
        prev, damped = level, p * slope
        level = a * (y - s) + (1 - a) * (prev + damped)
        if trend:
            slope = b * (level - prev) + (1 - b) * damped
        if m:
            season[:, :, t % m] = g * (y - prev - damped) + (1 - g) * s
    out = np.empty((G, n, horizon))
    reach = np.zeros((G, 1))
    for k in range(horizon):
        if trend:
            reach = reach + p ** (k + 1)
        out[:, :, k] = level + reach * slope + (season[:, :, (L + k) % m] if m else 0.0)
    return out


@dataclass(frozen=True)
class WindowSmoothing:
    """One fitted variant: forecasts ``(n, K)`` from raw windows in the series' units."""

    trend: bool  # a damped additive trend
    season: int | None  # m of an additive season, None for none
    log: bool  # smooths log(y) and forecasts exp of the result
    alpha: float
    beta: float = 0.0
    phi: float = 0.0
    gamma: float = 0.0

    def forecast(self, X: np.ndarray, horizon: int) -> np.ndarray:
        """Raw windows ``X (n, L, D)`` (the target in column 0) -> ``(n, K)``."""
        z = np.asarray(X, np.float64)[:, :, 0]
        if self.log:
            z = np.log(z)
        params = np.array([[self.alpha, self.beta, self.phi, self.gamma]])
        out = _run(z, horizon, params, self.trend, self.season or 0)[0]
        return np.exp(np.minimum(out, 700.0)) if self.log else out

    @classmethod
    def fit(cls, X: np.ndarray, Y: np.ndarray, season: int | None,
            log: bool) -> "WindowSmoothing":
        """The variant and parameters with the lowest MAE of the K-step forecasts of the
        windows ``X (n, L, D)`` against their targets ``Y (n, K)`` (raw units)."""
        X, Y = np.asarray(X, np.float64), np.asarray(Y, np.float64)
        if X.ndim != 3 or X.shape[1] < 2:
            raise ValueError(f"exponential smoothing needs windows of two or more steps (a "
                             f"lookback of 2 or more), got {X.shape[1] if X.ndim == 3 else X.shape}")
        if len(X) == 0:
            raise ValueError("exponential smoothing needs at least one training window")
        z = np.log(X[:, :, 0]) if log else X[:, :, 0]
        K, L = Y.shape[1], X.shape[1]
        seasons = (0, season) if season and L >= 2 * season else (0,)
        best, best_err = None, np.inf
        for trend in (False, True):
            for m in seasons:
                grid = _grid(trend, m > 0)
                step = max(1, CHUNK // (len(X) * K))
                for i in range(0, len(grid), step):
                    f = _run(z, K, grid[i:i + step], trend, m)
                    if log:
                        f = np.exp(np.minimum(f, 700.0))
                    err = np.abs(f - Y[None]).mean(axis=(1, 2))
                    j = int(np.argmin(np.where(np.isfinite(err), err, np.inf)))
                    if err[j] < best_err:
                        best_err = float(err[j])
                        best = cls(trend, m or None, log, *map(float, grid[i + j]))
        if best is None:
            raise ValueError("exponential smoothing found no finite forecast of the training "
                             "windows")
        return best

    def describe(self) -> str:
        parts = [f"α={self.alpha:g}"]
        if self.trend:
            parts.append(f"damped trend β={self.beta:g} φ={self.phi:g}")
        if self.season:
            parts.append(f"season {self.season} γ={self.gamma:g}")
        return ("log, " if self.log else "") + ", ".join(parts)

    def to_json(self) -> dict:
        return {"trend": self.trend, "season": self.season, "log": self.log,
                "alpha": self.alpha, "beta": self.beta, "phi": self.phi, "gamma": self.gamma}

    @classmethod
    def from_json(cls, d) -> "WindowSmoothing":
        """From :meth:`to_json`'s dict, checked (it comes from a checkpoint)."""
        if not isinstance(d, dict):
            raise ValueError(f"exponential smoothing settings must be an object, got {d!r}")
        season = d.get("season")
        if season is not None and not (isinstance(season, int) and season >= 1):
            raise ValueError(f"exponential smoothing season must be a positive integer or "
                             f"null, got {season!r}")
        values = {}
        for name in ("alpha", "beta", "phi", "gamma"):
            v = d.get(name, 0.0)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v <= 1:
                raise ValueError(f"exponential smoothing {name} must be a number in [0, 1], "
                                 f"got {v!r}")
            values[name] = float(v)
        flags = [d.get(k) for k in ("trend", "log")]
        if not all(isinstance(f, bool) for f in flags):
            raise ValueError(f"exponential smoothing trend and log must be true or false, got "
                             f"{flags}")
        return cls(flags[0], season, flags[1], **values)
