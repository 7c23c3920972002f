"""Test-part scores of a global model beside per-series baselines, per series and over all.

Dimensions: S series, n test windows of one series, K horizon.

For every series, on its own test windows (the same split the model was trained with): the
global network, the single-series report's baselines fitted on that series alone
(:func:`.report.baseline_forecasts`: persistence, seasonal naive, linear AR in levels, ETS
with ``ets=True``) and naive 2 (:mod:`.m4`). Each series' MASE is scaled by its own
in-sample seasonal-naive error (m = its season, else 1), its sMAPE in percent, its OWA
relative to its naive 2. Over the panel, as in the M4 competition: the mean MASE and mean
sMAPE over series, and the OWA of those means relative to naive 2's means. A series constant
on its training part has no MASE denominator (its MASE is its MAE, in its own units), so the
mean MASE leaves it out and the table says so.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass

import numpy as np

from .._columns import pad, width
from .._words import counted
from .baselines import mase_denominator, scores
from .global_model import GlobalForecaster
from .m4 import naive2, owa
from .panel import Panel
from .report import LABELS, baseline_forecasts, table_cell, value_digits
from .windows import make_windows

NAMES = {**LABELS, "naive2": "naive 2 (M4)", "ets": "ETS", "lstm": "LSTM (global)",
         "gru": "GRU (global)", "rnn": "RNN (global)"}


@dataclass
class SeriesResult:
    origins: np.ndarray  # (n,)
    truth: np.ndarray  # (n, K)
    preds: dict  # method -> (n, K)
    scores: dict  # method -> scores() + "owa"
    season: int | None
    mase_lag: int | None
    coverage: dict  # level -> share inside the network's interval


@dataclass
class PanelEvaluation:
    series: dict  # name -> SeriesResult
    net: str  # the network's method name
    part: str  # "test" or "validation"

    def methods(self) -> list[str]:
        """Methods scored on every series (seasonal naive is left out of a series whose
        season does not fit before its first window), in report order."""
        common = None
        for r in self.series.values():
            common = list(r.scores) if common is None else [m for m in common if m in r.scores]
        return common

    def unscaled(self) -> list[str]:
        """The series whose MASE has no denominator (a constant training part: their MASE
        is their MAE, in their own units), left out of the mean MASE."""
        return [n for n, r in self.series.items() if r.mase_lag is None]

    def aggregate(self) -> dict:
        """Method -> mean MASE (over the series that have one, see :meth:`unscaled`; NaN
        when none has), mean sMAPE over all series, and the OWA of those means."""
        scaled = [r for r in self.series.values() if r.mase_lag is not None]
        out = {}
        for m in self.methods():
            out[m] = {"mase": float(np.mean([r.scores[m]["mase"] for r in scaled]))
                      if scaled else math.nan,
                      "smape": float(np.mean([r.scores[m]["smape"]
                                              for r in self.series.values()]))}
        n2 = out["naive2"]
        for v in out.values():
            v["owa"] = owa(v["smape"], v["mase"], n2["smape"], n2["mase"])
        return out

    def wins(self) -> dict:
        """How many series the network beats each baseline on (MASE), and every baseline."""
        out, all_ = {}, 0
        for r in self.series.values():
            others = [m for m in r.scores if m != self.net]
            for m in others:
                out[m] = out.get(m, 0) + int(r.scores[self.net]["mase"] < r.scores[m]["mase"])
            all_ += int(all(r.scores[self.net]["mase"] < r.scores[m]["mase"] for m in others))
        out["every baseline"] = all_
        return out


def evaluate_panel(gf: GlobalForecaster, panel: Panel, ets: bool = False) -> PanelEvaluation:
    """Score ``gf`` and the per-series baselines on the test part of every series of
    ``panel`` (the panel it was trained on)."""
    L, K = gf.config.lookback, gf.config.horizon
    net = gf.net.config.cell
    results, part = {}, "test"
    for name, s in panel.series.items():
        if name not in gf.info:
            raise ValueError(f"series {name!r} was not in the model's training panel")
        info = gf.info[name]
        split = info.split
        if split.n != len(s):
            raise ValueError(f"series {name!r} has {counted(len(s), 'step')}, but the model "
                             f"was trained "
                             f"on {split.n}: evaluate needs the training panel")
        part = "test" if split.test else "val"
        if part == "val" and not split.val:
            raise ValueError(f"series {name!r} has neither a test nor a validation part to "
                             f"evaluate on; set a test fraction > 0")
        origins = split.origins(part, L, K)
        X, Y = make_windows(s.values, L, K, origins)
        base, _ = baseline_forecasts(s, split, L, K, info.season, origins, ets)
        preds = {net: gf.predict(name, X[:, :, 0], origins), **base,
                 "naive2": naive2(s.target, split.train, origins, K, info.season)}
        scale, lag = mase_denominator(s.target[: split.train], info.season or 1)
        sc = {m: scores(Y, p, scale) for m, p in preds.items()}
        for v in sc.values():
            v["owa"] = owa(v["smape"], v["mase"], sc["naive2"]["smape"], sc["naive2"]["mase"])
        cov = ({} if info.intervals is None
               else info.intervals.coverage(Y, preds[net], X, flat=info.scale))
        results[name] = SeriesResult(origins, Y, preds, sc, info.season, lag, cov)
    return PanelEvaluation(results, net, "test" if part == "test" else "validation")


def _label(m: str) -> str:
    return NAMES.get(m, m)


def format_panel(ev: PanelEvaluation) -> str:
    """Per-series MASE of every method, then the panel's mean MASE, mean sMAPE and OWA."""
    methods = ev.methods()
    extra = sorted({m for r in ev.series.values() for m in r.scores} - set(methods))
    cols = methods + extra
    first = max(8, *(width(n) for n in ev.series))  # the series-name column
    head = f"{'series':<{first}}" + "".join(f"{_short(m):>10}" for m in cols) + f"{'OWA':>8}"
    lines = [f"MASE per series ({ev.part} part)", head, "-" * len(head)]
    for name, r in ev.series.items():
        row = "".join(table_cell(r.scores[m]["mase"], 10) if m in r.scores
                      else f"{'-':>10}" for m in cols)
        lines.append(f"{pad(name, first)}{row}{_owa_cell(r.scores[ev.net]['owa'])}")
    agg = ev.aggregate()
    unscaled = ev.unscaled()
    lines += ["", f"over {len(ev.series)} series (OWA relative to naive 2, as in M4)"
              + (f"; the mean MASE leaves out {', '.join(unscaled)}, constant on the training "
                 f"part, whose MASE is its MAE" if unscaled else ""),
              f"{'method':<26}{'mean MASE':>11}{'mean sMAPE':>12}{'OWA':>8}"]
    lines.append("-" * len(lines[-1]))
    for m, v in agg.items():
        mase = table_cell(v["mase"], 11) if math.isfinite(v["mase"]) else f"{'-':>11}"
        lines.append(f"{_label(m):<26}{mase}{v['smape']:>12.2f}"
                     f"{_owa_cell(v['owa'])}")
    owas = [r.scores[ev.net]["owa"] for r in ev.series.values()] + [v["owa"] for v in agg.values()]
    if not all(math.isfinite(v) for v in owas):
        lines.append("OWA -: naive 2 is exact there (its sMAPE or MASE is 0), so there is "
                     "nothing to be relative to")
    w = ev.wins()
    lines.append(f"{ev.net.upper()} better (MASE) than every per-series baseline on "
                 f"{w['every baseline']} of {len(ev.series)} series")
    return "\n".join(lines)


def _owa_cell(v: float) -> str:
    """An OWA right-aligned in 8 characters; "-" where it is undefined (NaN)."""
    return table_cell(v, 8) if math.isfinite(v) else f"{'-':>8}"


def _or_null(v: float) -> float | None:
    """``v``, or None (JSON null) for an undefined (NaN) OWA or mean MASE: NaN is not JSON."""
    return v if math.isfinite(v) else None


def _short(m: str) -> str:
    return {"persistence": "naive", "seasonal_naive": "snaive", "linear_ar": "linear AR",
            "naive2": "naive 2"}.get(m, m)


def format_coverage(ev: PanelEvaluation) -> str:
    """The network's interval coverage, per level: mean over series and the range."""
    levels = sorted({lv for r in ev.series.values() for lv in r.coverage}, key=float)
    if not levels:
        return "no prediction intervals (no validation part to fit them on)"
    parts = []
    for lv in levels:
        c = [r.coverage[lv] for r in ev.series.values() if lv in r.coverage]
        parts.append(f"{float(lv) * 100:g}% interval covers {np.mean(c) * 100:.0f}% (series "
                     f"{min(c) * 100:.0f}..{max(c) * 100:.0f}%)")
    return f"prediction intervals on the {ev.part} parts: " + ", ".join(parts)


def panel_forecasts_csv(ev: PanelEvaluation, panel: Panel) -> str:
    """One row per (series, origin, step ahead): times, truth and every method's forecast."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    methods = list(dict.fromkeys(m for r in ev.series.values() for m in r.preds))
    w.writerow(["series", "origin_time", "target_time", "step", "truth", *methods])
    for name, r in ev.series.items():
        s = panel.series[name]
        d = value_digits(s.target)
        for i, t in enumerate(r.origins):
            for k in range(r.truth.shape[1]):
                w.writerow([name, s.time_label(int(t) - 1), s.time_label(int(t) + k), k + 1,
                            f"{r.truth[i, k]:.{d}g}",
                            *(f"{r.preds[m][i, k]:.{d}g}" if m in r.preds else ""
                              for m in methods)])
    return buf.getvalue()


def panel_report(ev: PanelEvaluation) -> dict:
    """JSON-ready scores: per series (every method) and aggregated."""
    aggregate = {m: {**v, "mase": _or_null(v["mase"]), "owa": _or_null(v["owa"])}
                 for m, v in ev.aggregate().items()}
    return {"part": ev.part, "aggregate": aggregate, "wins": ev.wins(),
            "series": {n: {"windows": int(len(r.origins)), "season": r.season,
                           "mase_lag": r.mase_lag, "coverage": r.coverage,
                           "scores": {m: {**{k: v[k] for k in ("mase", "smape", "mae", "rmse")},
                                          "owa": _or_null(v["owa"])}
                                      for m, v in r.scores.items()}}
                       for n, r in ev.series.items()}}
