"""The global model's lookback and base, chosen on the validation windows of every series.

Dimensions: S series, L lookback, K horizon.

With no ``--lookback`` or ``--base``, ``forecast train`` on many series trains one global
model per candidate and keeps the best on the validation part. The candidates: the
lookbacks of the single-series default (2m, 3m and 4m for a ``--season`` m, else 6, 12 and
24: :func:`.select.lookback_candidates`) that leave every series a training window, each
with no base and with a ridge linear AR per series under the network (``base="ar"``).

A candidate's score is its validation MAE relative to the naive forecast's on the same
windows, per series, and the geometric mean over the series (Davydenko & Fildes 2013), as
the single-series choice scores its folds: a series of large or wild values counts no more
than a calm one. A hybrid candidate is scored with the network at full weight, not at the
per-series weights picked on the same validation windows, which would flatter it. The
validation windows start at the same steps whatever the lookback, so the candidates are
scored on the same targets. The lookback matters most on short series:
a long one leaves each series few training windows, and a per-series AR of L + 1 weights on
them is mostly noise (on the 52-year fertility panel of ``forecasting-results.md``, lookback
24 leaves each series five).

Each candidate trains one network, so the choice costs up to six trainings; give
``--lookback`` and ``--base`` to train once. Without a validation part (``--val-fraction
0``) there is nothing to choose on: lookback 24 (or the one given) and no base.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from .baselines import mae, persistence
from .global_model import GLOBAL_BASES, GlobalConfig, GlobalForecaster, split_series
from .panel import Panel
from .select import lookback_candidates
from .windows import WindowError, make_windows

CHOSEN = ("lookback", "base")


@dataclass
class GlobalChoice:
    """The chosen configuration and the candidates' scores."""

    config: GlobalConfig
    tried: list  # [(GlobalConfig, relative validation MAE)], best first
    chose: tuple  # names of the settings that were chosen (not given)

    def explain(self) -> str:
        """A few lines for the terminal: what was picked and why."""
        c = self.config
        picked = ", ".join(f"{k} {getattr(c, k)}" for k in CHOSEN)
        if not self.chose:
            return f"settings given: {picked}"
        if len(self.tried) < 2:
            return f"one candidate to train ({picked}): nothing to choose"
        lines = [f"chose {', '.join(f'{k} {getattr(c, k)}' for k in self.chose)} from "
                 f"{len(self.tried)} candidates: lowest validation MAE relative to the naive "
                 f"forecast (geometric mean over the series)"]
        for cfg, err in self.tried:
            base = "a linear AR per series" if cfg.base == "ar" else "no base"
            lines.append(f"  lookback {cfg.lookback:>3}, {base:<23} relative MAE {err:.3f}")
        return "\n".join(lines)

    def to_json(self) -> dict:
        """JSON-ready: a candidate not scored (the only one) or scored on no validation
        window has the score null, since NaN and infinity are not JSON."""
        return {"chose": list(self.chose),
                "tried": [{"lookback": c.lookback, "base": c.base,
                           "relative_mae": e if math.isfinite(e) else None}
                          for c, e in self.tried]}


def validation_score(gf: GlobalForecaster, panel: Panel) -> float:
    """Geometric mean over the series with validation windows (constant ones aside) of the
    model's validation MAE over the naive forecast's; inf when no series has any. A hybrid
    is scored with the network at full weight: each series' weight is picked on these same
    windows, and a score on the windows a setting was picked on flatters it."""
    L, K = gf.config.lookback, gf.config.horizon
    logs = []
    for name, s in panel.series.items():
        info = gf.info[name]
        origins = info.split.origins("val", L, K)
        if info.scale == 0 or not len(origins):
            continue
        X, Y = make_windows(s.target, L, K, origins)
        naive = mae(Y, persistence(X, K))
        pred = gf.predict(name, X[:, :, 0], origins, mix=1.0)
        ratio = mae(Y, pred) / naive if naive > 0 else 1.0
        logs.append(np.log(max(ratio, 1e-12)))
    return float(np.exp(np.mean(logs))) if logs else np.inf


def candidates(panel: Panel, config: GlobalConfig, given: set) -> list[GlobalConfig]:
    """The configurations :func:`train_global_default` trains, in its order: ``config`` with
    each lookback and base not in ``given``, keeping the lookbacks that fit every series
    (all of them when none does, so that the error names the series that is too short).
    Without a validation part there is nothing to choose on: the one of them with
    ``config``'s lookback and base, else the first."""
    looks = [config.lookback] if "lookback" in given else lookback_candidates(config.season)
    fit = [L for L in looks if _fits(panel, replace(config, lookback=L))]
    bases = [config.base] if "base" in given else list(GLOBAL_BASES)
    cands = [replace(config, lookback=L, base=b) for L in (fit or looks[:1]) for b in bases]
    if config.val_fraction == 0:
        cands = [c for c in cands if (c.lookback, c.base) == (config.lookback, config.base)
                 ] or cands[:1]
    return cands


def too_short(panel: Panel, config: GlobalConfig, given: set) -> dict[str, str]:
    """``{series: why}`` for the series of ``panel`` that not even the shortest lookback
    :func:`candidates` may try leaves a training window and the validation and test parts
    (``why``: the split's error); the others fit at least one candidate."""
    looks = [config.lookback] if "lookback" in given else lookback_candidates(config.season)
    shortest = replace(config, lookback=min(looks))
    short = {}
    for name, s in panel.series.items():
        try:
            split_series(name, s, shortest)
        except WindowError as exc:
            short[name] = str(exc).removeprefix(f"series {name!r}: ")
    return short


def _fits(panel: Panel, config: GlobalConfig) -> bool:
    try:
        for name, s in panel.series.items():
            split_series(name, s, config)
    except WindowError:
        return False
    return True


def train_global_default(panel: Panel, config: GlobalConfig, given: set,
                         rng: np.random.Generator, on_candidate=None, on_epoch=None,
                         should_stop=None, cands: list | None = None,
                         **network) -> tuple[GlobalForecaster, GlobalChoice]:
    """``(model, choice)``: one :meth:`GlobalForecaster.train` per candidate (each on its own
    stream of ``rng``; ``network``: its keywords), the best on validation kept.
    ``cands``: the list :func:`candidates` gives for ``panel``, ``config`` and ``given``, when
    the caller has it already (it splits every series once per lookback); worked out here
    when None. ``on_candidate(i, n, config)`` is called before each; ``on_epoch`` receives
    each epoch's record with the candidate's ``lookback`` and ``base``. When
    ``should_stop()`` turns true the search ends after the candidate being trained, the best
    so far kept."""
    if cands is None:
        cands = candidates(panel, config, given)
    chose = tuple(k for k in CHOSEN if k not in given)
    tried, best, streams = [], None, rng.spawn(len(cands))
    for i, (cfg, stream) in enumerate(zip(cands, streams)):
        if on_candidate is not None:
            on_candidate(i, len(cands), cfg)
        log = None if on_epoch is None else (
            lambda rec, c=cfg: on_epoch({**rec, "lookback": c.lookback, "base": c.base}))
        gf = GlobalForecaster.train(panel, cfg, stream, on_epoch=log, should_stop=should_stop,
                                    **network)
        score = validation_score(gf, panel) if len(cands) > 1 else np.nan
        tried.append((cfg, score))
        if best is None or score < best[1]:
            best = (gf, score)
        if should_stop is not None and should_stop():
            break
    tried.sort(key=lambda ce: ce[1])
    choice = GlobalChoice(best[0].config, tried, chose)
    best[0].meta["choice"] = choice.to_json()
    return best[0], choice
