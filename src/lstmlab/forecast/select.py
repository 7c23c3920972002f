"""The default forecaster's settings and base, chosen on rolling validation origins.

Dimensions: n windows, L lookback, K horizon, F folds.

With no ``--transform``, ``--anchor``, ``--lookback`` or ``--base``, ``forecast train``
scores a small set of candidates and keeps the best. The candidates:

* a ridge linear AR (the hybrid's ``"ar"`` base), fitted by ridge least squares with the
  penalty chosen by generalised cross-validation, in each candidate's coordinates:
  transform ``none``, and ``log`` when the whole target is positive; anchor ``none``,
  ``last``, and ``season`` when a season m is given or detected; lookback 2m, 3m and 4m with
  a season m, 6, 12 and 24 without one (or when none of the seasonal ones fits);
* the naive forecast (base ``"naive"``) and, with a season, the seasonal-naive forecast
  (base ``"snaive"``): bases that fit nothing. When one of them wins, the network reads the
  windows in the best AR candidate's coordinates and learns that base's residual.

**Rolling origins** (Tashman 2000): one validation part holds 9 to 99 windows on real
series, too few to tell a lookback or a transform apart reliably. So each candidate is
scored at up to :data:`FOLDS` origins ``c_f = train − f·V`` (V the validation part's
length; fold 0 is the validation part itself, and every origin keeps at least half of the
training part before it): fitted on the windows whose targets end before ``c_f``, scored on
the windows whose targets lie in ``[c_f, c_f + V)``. A fold's score is the candidate's MAE
over the naive forecast's MAE on the same windows (a relative MAE, so folds at different
levels of a trending series weigh alike), and a candidate's score is the geometric mean over
the folds (Davydenko & Fildes 2013); the naive base scores 1. The lowest score wins.

A lookback stays only while the training part of the earliest fold holds at least 1.5
windows per regression weight (a least-squares fit with fewer is mostly noise); when no
candidate fits that at F folds, the earliest fold is dropped. A setting the user gives is
not tried against others. Fitting a linear AR takes milliseconds, so the whole choice costs
less than one epoch of the network; the network then trains once, on the chosen settings.

Exponential smoothing over each window (base ``"ets"``, :mod:`.smoothing`) is not among the
default's candidates: added to them (``smoothing_base=True``), it won on several series of
the panels the defaults were built on and, over two sets of series not looked at before,
lost more than it won (docs/forecasting-results.md). Given as ``--base ets``, it is fitted at every lookback and
transform the ARs try (the seasonal and the plain lookbacks both), scored like them, and the
network reads the windows with the anchor of the best AR of the same lookback and transform.

Everything is chosen before the test part, so the test scores in the report stay an honest
estimate.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from .baselines import mae, persistence, ridge_gcv
from .data import TimeSeries, check_time_series, known_season
from .model import ForecastConfig, Forecaster, base_forecast, check_time_gaps
from .smoothing import WindowSmoothing
from .windows import WindowError, WindowScaler, chronological_split, make_windows

FOLDS = 3  # rolling validation origins at most

MIN_WINDOWS_PER_WEIGHT = 1.5
CHOSEN = ("lookback", "transform", "anchor", "base")


@dataclass
class Choice:
    """The chosen configuration and what the choice was based on."""

    config: ForecastConfig
    season: int | None  # given or detected on the training part
    tried: list  # [(ForecastConfig, score)], best first; score: relative validation MAE
    chose: tuple  # names of the settings that were chosen (not given)
    folds: int = 1  # rolling validation origins behind each score

    def explain(self) -> str:
        """One paragraph for the terminal: what was picked and why."""
        c = self.config
        picked = ", ".join(f"{k} {getattr(c, k)}" for k in CHOSEN)
        if not self.chose:
            return f"settings given: {picked}"
        if not self.tried and not c.val_fraction:
            return f"no validation part (--val-fraction 0) to choose settings on; using {picked}"
        if not self.tried:
            return (f"no candidate setting fits this series with a validation part to judge "
                    f"it; using {picked}")
        lines = [f"chose {', '.join(f'{k} {getattr(c, k)}' for k in self.chose)} from "
                 f"{len(self.tried)} candidates: lowest MAE relative to the naive forecast "
                 f"at {self.folds} validation origin{'s' if self.folds > 1 else ''}"]
        for cfg, err in self.tried[:4]:
            what = ("linear AR, " + f"lookback {cfg.lookback:>3}, transform {cfg.transform:<4}, "
                    f"anchor {cfg.anchor:<6}" if cfg.base in ("ar", "none") else
                    "exponential smoothing, " + f"lookback {cfg.lookback:>3}, transform "
                    f"{cfg.transform}" if cfg.base == "ets" else
                    {"naive": "naive forecast", "snaive": "seasonal naive forecast"}[cfg.base])
            lines.append(f"  {what:<58} relative MAE {err:.3f}")
        return "\n".join(lines)

    def to_json(self) -> dict:
        return {"chose": list(self.chose), "season": self.season, "folds": self.folds,
                "tried": [{"lookback": c.lookback, "transform": c.transform, "anchor": c.anchor,
                           "base": c.base, "relative_mae": e} for c, e in self.tried]}


def _fitting(base: ForecastConfig, split, given: set) -> ForecastConfig:
    """``base``, its default lookback shortened (when not given) to leave one training window
    on the training part of ``split``: the default 24 on a series of 20 steps would stop the
    command with an error asking to lower a --lookback the user never set."""
    longest = split.train - base.horizon
    if "lookback" in given or base.lookback <= longest or longest < 1:
        return base
    return replace(base, lookback=longest)


def lookback_candidates(season: int | None) -> list[int]:
    """The lookbacks tried for a season m (or for none). A season of 1 is none: ``--season
    1`` says the series has no season, and gets the lookbacks of a series without one."""
    return [2 * season, 3 * season, 4 * season] if season and season > 1 else [6, 12, 24]


def fold_cuts(series: TimeSeries, config: ForecastConfig, folds: int = FOLDS) -> list[int]:
    """The rolling validation origins ``c_f = train − f·V`` (f < ``folds``), latest first
    (none without a validation part)."""
    split = chronological_split(len(series), 1, config.horizon, config.val_fraction,
                                config.test_fraction)
    if not split.val:
        return []
    return [split.train - f * split.val for f in range(folds)
            if split.train - f * split.val >= split.train / 2]


def _fold(series: TimeSeries, L: int, K: int, cut: int, width: int):
    """Training windows (targets before ``cut``) and scoring windows (targets in
    ``[cut, cut + width)``) of one fold: ``(X, Y, Xv, Yv)``."""
    X, Y = make_windows(series.values, L, K, np.arange(L, cut - K + 1))
    Xv, Yv = make_windows(series.values, L, K, np.arange(cut, cut + width - K + 1))
    return X, Y, Xv, Yv


def ar_fold_mae(series: TimeSeries, config: ForecastConfig, season: int | None, cut: int,
                width: int) -> tuple[float, float]:
    """``(MAE, naive MAE)`` on one fold's scoring windows of the ridge AR fitted on its
    training windows in ``config``'s coordinates."""
    X, Y, Xv, Yv = _fold(series, config.lookback, config.horizon, cut, width)
    scaler = WindowScaler(log=config.transform == "log", anchor=config.anchor,
                          season=season).fit(X, Y)
    x, y = scaler.encode(X, Y)
    ar, _ = ridge_gcv(x.transpose(1, 0, 2), y)
    xv, _ = scaler.encode(Xv)
    pred = scaler.decode(Xv, ar.predict(xv.transpose(1, 0, 2)))
    return mae(Yv, pred), mae(Yv, persistence(Xv, config.horizon))


def ets_fold_mae(series: TimeSeries, config: ForecastConfig, season: int | None, cut: int,
                 width: int) -> tuple[float, float]:
    """``(MAE, naive MAE)`` on one fold's scoring windows of exponential smoothing fitted on
    its training windows (in logs with transform ``log``)."""
    X, Y, Xv, Yv = _fold(series, config.lookback, config.horizon, cut, width)
    ets = WindowSmoothing.fit(X, Y, season, config.transform == "log")
    return mae(Yv, ets.forecast(Xv, config.horizon)), mae(Yv, persistence(Xv, config.horizon))


ETS_PARAMETERS = 4  # α, β, φ, γ: what the windows-per-weight rule counts for a smoothing base


def _ets_candidates(tried, options) -> list:
    """Exponential smoothing at each lookback (those for a season and those for none, unless
    one is given) and transform; the network reads its windows with the anchor of the best AR
    of the same lookback and transform (``tried``, best first), else ``last``."""
    out = []
    for L in options.get("ets_lookback", options["lookback"]):
        for t in options["transform"]:
            coords = next((cfg for cfg, _ in tried if (cfg.lookback, cfg.transform) == (L, t)),
                          None)
            out.append(replace(coords or tried[0][0], base="ets", lookback=L, transform=t,
                               anchor=coords.anchor if coords else "last"))
    return out


def _relative(pairs: list) -> float:
    """Geometric mean over folds of MAE / naive MAE (a fold where naive is exact counts 1)."""
    ratios = [a / b if b > 0 else 1.0 for a, b in pairs]
    return float(np.exp(np.mean(np.log(np.maximum(ratios, 1e-12)))))


def _enough_windows(series: TimeSeries, config: ForecastConfig, season: int | None,
                    cut: int) -> bool:
    L, K = config.lookback, config.horizon
    steps = L - season if config.anchor == "season" else L
    weights = ETS_PARAMETERS if config.base == "ets" else steps * series.values.shape[1] + 1
    return cut - K + 1 - L >= MIN_WINDOWS_PER_WEIGHT * weights


def _candidates(series, base, season, options) -> list:
    out = []
    for L in options["lookback"]:
        for t in options["transform"]:
            for a in options["anchor"]:
                if a == "season" and (not season or L <= season):
                    continue
                out.append(replace(base, lookback=L, transform=t, anchor=a))
    return out


def _score(series, cands, season, cuts, width) -> list:
    """``(config, relative MAE)`` of each candidate with enough training windows at every
    fold: an exponential smoothing base scored as such, any other as its linear AR."""
    tried = []
    for cfg in cands:
        if not all(_enough_windows(series, cfg, season, c) for c in cuts):
            continue
        fold_mae = ets_fold_mae if cfg.base == "ets" else ar_fold_mae
        try:
            err = _relative([fold_mae(series, cfg, season, c, width) for c in cuts])
        except (WindowError, ValueError):
            continue
        if np.isfinite(err):
            tried.append((cfg, err))
    return tried


def snaive_score(series: TimeSeries, K: int, season: int, cuts: list, width: int) -> float:
    """The seasonal-naive forecast's relative MAE over the folds (see :func:`_relative`)."""
    pairs = []
    for c in cuts:
        _, _, Xv, Yv = _fold(series, season, K, c, width)
        pairs.append((mae(Yv, base_forecast("snaive", Xv, K, season)),
                      mae(Yv, persistence(Xv, K))))
    return _relative(pairs)


def choose_settings(series: TimeSeries, base: ForecastConfig, given: set, folds: int = FOLDS,
                    trivial_bases: bool = True, smoothing_base: bool = False) -> Choice:
    """Pick lookback, transform, anchor and base not in ``given`` (names of settings the user
    set; ``base`` holds their values and the rest of the configuration). ``folds=1,
    trivial_bases=False`` is the plain choice on the one validation part among linear ARs;
    ``smoothing_base`` adds exponential smoothing to the bases tried (both for comparisons)."""
    split = chronological_split(len(series), 1, base.horizon, base.val_fraction,
                                base.test_fraction)
    season = known_season(base.season, series, split.train)
    check_time_gaps(series)
    positive = bool(np.all(series.target > 0))
    options = {
        "lookback": [base.lookback] if "lookback" in given else lookback_candidates(season),
        "transform": [base.transform] if "transform" in given else
        (["none", "log"] if positive else ["none"]),
        "anchor": [base.anchor] if "anchor" in given else
        (["none", "last", "season"] if season else ["none", "last"]),
    }
    if "lookback" not in given:
        options["ets_lookback"] = sorted(set(lookback_candidates(season))
                                         | set(lookback_candidates(None)))
    chose = tuple(k for k in CHOSEN if k not in given)
    cuts = fold_cuts(series, base, folds)
    if not chose or not cuts:
        return Choice(_fitting(base, split, given), season, [], chose)
    given_ets = "base" in given and base.base == "ets"  # its own candidates, placed by ARs
    ar_base = base if "base" in given and not given_ets else replace(base, base="ar")
    cands = _candidates(series, ar_base, season, options)
    if season and "lookback" not in given:  # no seasonal lookback fits: the plain ones
        if not _score(series, cands, season, cuts[:1], split.val):
            cands = _candidates(series, ar_base, season,
                                {**options, "lookback": lookback_candidates(None)})
    for F in range(len(cuts), 0, -1):  # drop the earliest fold while nothing fits
        tried = _score(series, cands, season, cuts[:F], split.val)
        if tried:
            cuts = cuts[:F]
            break
    if not tried:  # too short for any candidate: the given or default settings, unranked
        return Choice(_fitting(base, split, given), season, [], chose)
    tried.sort(key=lambda ce: ce[1])
    best = tried[0][0]
    if given_ets:
        ets = sorted(_score(series, _ets_candidates(tried, options), season, cuts, split.val),
                     key=lambda ce: ce[1])
        if ets:
            return Choice(ets[0][0], season, ets, chose, len(cuts))
        return Choice(replace(best, base="ets"), season, tried, chose, len(cuts))  # unscored
    if "base" not in given and smoothing_base:
        tried += _score(series, _ets_candidates(tried, options), season, cuts, split.val)
    if "base" not in given and trivial_bases:
        tried.append((replace(best, base="naive"), 1.0))
        if season and any(cfg.lookback >= season for cfg, _ in tried):
            coords = next(cfg for cfg, _ in tried if cfg.lookback >= season)
            tried.append((replace(coords, base="snaive"),
                          snaive_score(series, base.horizon, season, cuts, split.val)))
        tried.sort(key=lambda ce: ce[1])
    return Choice(tried[0][0], season, tried, chose, len(cuts))


def train_default(series: TimeSeries, config: ForecastConfig, given: set, rng: np.random.Generator,
                  smoothing_base: bool = False, **network) -> tuple:
    """``(Forecaster, Choice)``: settings not in ``given`` chosen on rolling validation
    origins (``smoothing_base``: see :func:`choose_settings`), then one network trained on
    them (``network``: the keywords of :meth:`Forecaster.train`).

    Ctrl-C during the training raises ``KeyboardInterrupt`` again once it ends. Training
    alone keeps the network trained so far and returns (its status "interrupted"), the
    point for one model; the backtest's folds and the benchmark's seeds call this one run
    after another, and would score a half-trained network as a finished one and go on with
    the next runs, the Ctrl-C lost."""
    check_time_series(series)
    choice = choose_settings(series, config, given, smoothing_base=smoothing_base)
    fc = Forecaster.train(series, choice.config, rng, **network)
    if fc.meta["summary"]["status"] == "interrupted" and network.get("should_stop") is None:
        raise KeyboardInterrupt
    fc.meta["choice"] = choice.to_json()
    return fc, choice
