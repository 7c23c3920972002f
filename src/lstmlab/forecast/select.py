"""The default forecaster's settings, chosen on the validation part.

Dimensions: n windows, L lookback, K horizon.

With no ``--transform``, ``--anchor`` or ``--lookback``, ``forecast train`` tries a small set
of candidates and keeps the one whose linear autoregression — fitted on the training windows
in that candidate's coordinates (log or not, anchor, standardisation) by ridge least squares
with the penalty chosen by generalised cross-validation, the model the hybrid stands on — has
the lowest MAE on the validation windows. The candidates:

* transform: ``none``, and ``log`` when the whole target is positive;
* anchor: ``none``, ``last``, and ``season`` when a season m is given or detected;
* lookback: 2m, 3m and 4m with a season m; 6, 12 and 24 without one (or when none of the
  seasonal ones fits the series);

a lookback stays only while the training part holds at least 1.5 windows per regression
weight (a least-squares fit with fewer is mostly noise). A setting the user gives is not
tried against others. Fitting a linear AR takes milliseconds, so the whole choice costs less
than one epoch of the network; the network then trains once, on the chosen settings.

Everything is chosen on the validation part, never on the test part, so the test scores in
the report stay an honest estimate.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from .baselines import mae, ridge_gcv
from .data import TimeSeries, detect_season
from .model import ForecastConfig, Forecaster
from .windows import WindowError, WindowScaler, chronological_split, make_windows

MIN_WINDOWS_PER_WEIGHT = 1.5


@dataclass
class Choice:
    """The chosen configuration and what the choice was based on."""

    config: ForecastConfig
    season: int | None  # given or detected on the training part
    tried: list  # [(ForecastConfig, validation MAE)], best first
    chose: tuple  # names of the settings that were chosen (not given)

    def explain(self) -> str:
        """One paragraph for the terminal: what was picked and why."""
        c = self.config
        picked = ", ".join(f"{k} {getattr(c, k)}" for k in ("lookback", "transform", "anchor"))
        if not self.chose:
            return f"settings given: {picked}"
        if not self.tried:
            return (f"no candidate setting fits this series with a validation part to judge "
                    f"it; using {picked}")
        lines = [f"chose {', '.join(f'{k} {getattr(c, k)}' for k in self.chose)} from "
                 f"{len(self.tried)} candidates: lowest validation MAE of the linear AR in "
                 f"each candidate's coordinates"]
        for cfg, err in self.tried[:3]:
            lines.append(f"  lookback {cfg.lookback:>3}, transform {cfg.transform:<4}, anchor "
                         f"{cfg.anchor:<6} validation MAE {err:.4g}")
        return "\n".join(lines)

    def to_json(self) -> dict:
        return {"chose": list(self.chose), "season": self.season,
                "tried": [{"lookback": c.lookback, "transform": c.transform, "anchor": c.anchor,
                           "val_mae": e} for c, e in self.tried]}


def lookback_candidates(season: int | None) -> list[int]:
    """The lookbacks tried for a season m (or for none)."""
    return [2 * season, 3 * season, 4 * season] if season else [6, 12, 24]


def validation_mae(series: TimeSeries, config: ForecastConfig, season: int | None) -> float:
    """MAE on the validation windows of the linear AR fitted in ``config``'s coordinates."""
    L, K = config.lookback, config.horizon
    split = chronological_split(len(series), L, K, config.val_fraction, config.test_fraction)
    X, Y = make_windows(series.values, L, K, split.origins("train", L, K))
    Xv, Yv = make_windows(series.values, L, K, split.origins("val", L, K))
    scaler = WindowScaler(log=config.transform == "log", anchor=config.anchor,
                          season=season).fit(X, Y)
    x, y = scaler.encode(X, Y)
    ar, _ = ridge_gcv(x.transpose(1, 0, 2), y)
    xv, _ = scaler.encode(Xv)
    return mae(Yv, scaler.decode(Xv, ar.predict(xv.transpose(1, 0, 2))))


def _enough_windows(series: TimeSeries, config: ForecastConfig, season: int | None) -> bool:
    L, K = config.lookback, config.horizon
    try:
        split = chronological_split(len(series), L, K, config.val_fraction, config.test_fraction)
    except WindowError:
        return False
    if not split.val or len(split.origins("val", L, K)) == 0:
        return False
    steps = L - season if config.anchor == "season" else L
    weights = steps * series.values.shape[1] + 1
    return len(split.origins("train", L, K)) >= MIN_WINDOWS_PER_WEIGHT * weights


def _try(series: TimeSeries, base: ForecastConfig, season: int | None, options: dict) -> list:
    tried = []
    for L in options["lookback"]:
        for t in options["transform"]:
            for a in options["anchor"]:
                if a == "season" and (not season or L <= season):
                    continue
                cfg = replace(base, lookback=L, transform=t, anchor=a)
                if not _enough_windows(series, cfg, season):
                    continue
                err = validation_mae(series, cfg, season)
                if np.isfinite(err):
                    tried.append((cfg, err))
    return tried


def choose_settings(series: TimeSeries, base: ForecastConfig, given: set) -> Choice:
    """Pick lookback, transform and anchor not in ``given`` (names of settings the user set;
    ``base`` holds their values and the rest of the configuration)."""
    # the part sizes do not depend on the lookback; 1 checks only that the horizon fits
    split = chronological_split(len(series), 1, base.horizon, base.val_fraction,
                                base.test_fraction)
    season = base.season or detect_season(series.target[: split.train])
    positive = bool(np.all(series.target > 0))
    options = {
        "lookback": [base.lookback] if "lookback" in given else lookback_candidates(season),
        "transform": [base.transform] if "transform" in given else
        (["none", "log"] if positive else ["none"]),
        "anchor": [base.anchor] if "anchor" in given else
        (["none", "last", "season"] if season else ["none", "last"]),
    }
    chose = tuple(k for k in ("lookback", "transform", "anchor") if k not in given)
    if not chose:
        return Choice(base, season, [], ())
    tried = _try(series, base, season, options)
    if not tried and season and "lookback" not in given:
        tried = _try(series, base, season, {**options, "lookback": lookback_candidates(None)})
    if not tried:  # too short for any candidate: the given or default settings, unranked
        return Choice(base, season, [], chose)
    tried.sort(key=lambda ce: ce[1])
    return Choice(tried[0][0], season, tried, chose)


def train_default(series: TimeSeries, config: ForecastConfig, given: set, rng: np.random.Generator,
                  **network) -> tuple:
    """``(Forecaster, Choice)``: settings not in ``given`` chosen on the validation part, then
    one network trained on them (``network``: the keywords of :meth:`Forecaster.train`)."""
    choice = choose_settings(series, config, given)
    fc = Forecaster.train(series, choice.config, rng, **network)
    fc.meta["choice"] = choice.to_json()
    return fc, choice
