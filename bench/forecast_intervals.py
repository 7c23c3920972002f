"""Interval coverage on the forecasting panel: conformal intervals beside quantile heads.

    OPENBLAS_NUM_THREADS=1 PYTHONPATH=src python bench/forecast_intervals.py [--seeds 3]

For each series of bench/forecast_panel.py and seeds 0..S-1: the default forecaster
(``forecast train --horizon K --quantiles 0.025,0.1,0.9,0.975``: settings chosen on
validation, the hybrid, plus quantile heads). On the test part, the share of values inside
the 80 % and 95 % intervals of

* conformal: what ``forecast train`` reports — split conformal per step ahead on the
  validation errors together with the hybrid's base's out-of-sample errors on every training
  window, each window's errors divided by its mean absolute one-step change (in log units
  with the log transform), the half-width the conformal quantile of those ratios times the
  new window's own one-step change (local scale: normalized conformal prediction,
  Papadopoulos, Vovk & Gammerman 2008; Lei et al. 2018);
* fixed width: the same calibration errors without the local scale (one half-width per step);
* validation only: split conformal per step on the validation errors alone;
* heads: the quantile heads' bands [q10, q90] and [q2.5, q97.5];
* CQR: the heads' bands widened (or narrowed) by the conformal quantile of the validation
  windows' scores max(q_lo − y, y − q_hi) per step (Romano, Patterson & Candès 2019);
* pooled: conformal on the validation errors of all K steps at once, each step's errors
  divided by that step's validation mean absolute error (K times more calibration scores).

Prints a markdown table (means over seeds) and how many series are within 5 points; then,
per set, the panel's coverage (pooled: the share of all test values of the set's series, each
value counted once; beside it the unweighted mean of the series' coverages), and how many
series an exactly calibrated interval would bring within 5 points: with hits independent of
probability p on a series' n test values, P(|k/n - p| <= 0.05) for k ~ Binomial(n, p), summed
over the set's series. The n values of a series pool K steps ahead of overlapping windows, so
they are not independent and that expectation is an optimistic bound.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from scipy.stats import binom

from lstmlab.forecast.intervals import conformal_quantile
from lstmlab.forecast.model import ForecastConfig
from lstmlab.forecast.select import train_default
from lstmlab.forecast.windows import make_windows
from lstmlab.training.supervised import FitConfig

sys.path.insert(0, str(Path(__file__).parent))
from forecast_panel import (NETWORK, SETS, fresh_panel, holdout_panel, panel,  # noqa: E402
                            set_of, unseen_panel)

QUANTILES = (0.025, 0.1, 0.9, 0.975)
BANDS = {"0.8": (1, 2), "0.95": (0, 3)}  # level -> indices of (lo, hi) in QUANTILES


def within_probability(n: int, level: float, points: float = 0.05) -> float:
    """P(|k/n - level| <= points) for k ~ Binomial(n, level): the chance that an interval
    covering each of n independent values with probability exactly ``level`` lands within
    ``points`` of nominal."""
    k = np.arange(n + 1)
    inside = np.abs(k / n - level) <= points + 1e-9
    return float(binom.pmf(k[inside], n, level).sum())


def panel_coverage(hits: np.ndarray, counts: np.ndarray) -> tuple[float, float]:
    """``(pooled, mean)`` coverage of a set from ``hits`` and ``counts (series, seeds)``, the
    values inside the interval and the values counted: pooled is the share of all values of all
    series (each value counts once), mean the unweighted mean of the series' shares; both
    averaged over seeds."""
    hits, counts = np.asarray(hits, np.float64), np.asarray(counts, np.float64)
    pooled = hits.sum(axis=0) / counts.sum(axis=0)
    return float(pooled.mean()), float((hits / counts).mean())


def variants(fc, series) -> tuple[dict, int]:
    """``(method -> level -> test values inside the interval, number of test values)``, the
    values counted over all K steps ahead of every test window."""
    L, K = fc.config.lookback, fc.config.horizon
    f = np.log if fc.config.transform == "log" else np.asarray
    out = {}
    parts, windows = {}, {}
    for part in ("train", "val", "test"):
        X, Y = make_windows(series.values, L, K, fc.split.origins(part, L, K))
        windows[part] = (X, Y)
        if part != "train":
            parts[part] = (Y, fc.predict_windows(X), fc.predict_quantiles(X))
    (Yv, Pv, Qv), (Yt, Pt, Qt) = parts["val"], parts["test"]
    ev, et = np.abs(f(Yv) - f(Pv)), np.abs(f(Yt) - f(Pt))  # (n, K) absolute errors
    Xtr, Ytr = windows["train"]
    x, y = fc.scaler.encode(Xtr, Ytr)
    Ptr = fc.scaler.decode(Xtr, fc.hybrid.loo(x, Xtr, y, fc.scaler))  # the base, out of sample
    calib = np.vstack([np.abs(f(Ytr) - f(Ptr)), ev])  # what the conformal intervals use
    Xt = windows["test"][0]
    for level, (i, j) in BANDS.items():
        a = float(level)
        lo, hi = fc.intervals.bounds(Pt, level, Xt)
        s = np.maximum(f(Qv[:, i]) - f(Yv), f(Yv) - f(Qv[:, j]))  # (n, K) CQR scores
        c = conformal_quantile(s, a)
        scale = ev.mean(axis=0)  # (K,)
        inside = {
            "conformal": (Yt >= lo) & (Yt <= hi),
            "fixed width": et <= conformal_quantile(calib, a),
            "validation only": et <= conformal_quantile(ev, a),
            "heads": (Yt >= Qt[:, i]) & (Yt <= Qt[:, j]),
            "CQR": (f(Yt) >= f(Qt[:, i]) - c) & (f(Yt) <= f(Qt[:, j]) + c),
            "pooled": et <= conformal_quantile((ev / scale).ravel(), a) * scale,
        }
        for method, hit in inside.items():
            out.setdefault(method, {})[level] = int(np.count_nonzero(hit))
    return out, int(et.size)


def build_parser() -> argparse.ArgumentParser:
    """The script's command line, built without running anything (tests/test_docs.py parses
    the documented commands with it)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--epochs", type=int, default=300)
    p.add_argument("--only", nargs="+", default=None)
    p.add_argument("--sets", nargs="+", default=list(SETS), choices=SETS,
                   help="which sets (default: all five)")
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    every = {**panel(), **fresh_panel(), **(unseen_panel() if "unseen" in args.sets else {}),
             **(holdout_panel() if "holdout" in args.sets else {})}
    series = {k: v for k, v in every.items() if set_of(k) in args.sets}
    rows = {}
    for name in args.only or list(series):
        s, K = series[name]
        t0 = time.perf_counter()
        runs = []
        for seed in range(args.seeds):
            fc, _ = train_default(s, ForecastConfig(horizon=K, base="ar", quantiles=QUANTILES),
                                  set(), np.random.default_rng(seed),
                                  fit_config=FitConfig(epochs=args.epochs), **NETWORK)
            runs.append(variants(fc, s))
        rows[name] = {m: {lv: float(np.mean([r[m][lv] / n for r, n in runs])) for lv in BANDS}
                      for m in runs[0][0]}
        rows[name]["n_val"] = len(fc.split.origins("val", fc.config.lookback, K))
        rows[name]["n_test"] = [n for _, n in runs]  # per seed
        rows[name]["hits"] = {m: {lv: [r[m][lv] for r, _ in runs] for lv in BANDS}
                              for m in runs[0][0]}
        shown = {k: v for k, v in rows[name].items() if k != "hits"}
        print(f"{name}: {shown} ({time.perf_counter() - t0:.0f} s)", file=sys.stderr, flush=True)
    methods = ["conformal", "fixed width", "validation only", "heads", "CQR", "pooled"]
    lines = ["| series | set | validation windows | " + " | ".join(f"{m} 80% / 95%" for m in methods)
             + " |", "|" + "---|" * (3 + len(methods))]
    tally = {}  # set -> method -> [within 5 points at 80, at 95, distance at 80, at 95, n]
    for name, r in rows.items():
        cells = []
        for m in methods:
            c80, c95 = r[m]["0.8"], r[m]["0.95"]
            t = tally.setdefault(set_of(name), {}).setdefault(m, [0, 0, 0.0, 0.0, 0])
            t[0] += abs(c80 - 0.8) <= 0.05 + 1e-9
            t[1] += abs(c95 - 0.95) <= 0.05 + 1e-9
            t[2] += abs(c80 - 0.8)
            t[3] += abs(c95 - 0.95)
            t[4] += 1
            cells.append(f"{c80 * 100:.0f}% / {c95 * 100:.0f}%")
        lines.append(f"| {name} | {set_of(name)} | {r['n_val']} | " + " | ".join(cells) + " |")
    lines += ["", f"Share of test values inside the interval, mean over seeds 0..{args.seeds - 1}."]
    for part, by in tally.items():
        lines.append(f"{part} set, series within 5 points of nominal (80% / 95%) and mean distance "
                     "from nominal in points: " + "; ".join(
                         f"{m} {t[0]}/{t[4]} / {t[1]}/{t[4]}, {t[2] / t[4] * 100:.1f} / "
                         f"{t[3] / t[4] * 100:.1f}" for m, t in by.items()))
    lines += ["", *panel_tables(rows, methods, tally)]
    print("\n".join(lines))
    return 0


def panel_tables(rows: dict, methods: list, tally: dict) -> list:
    """Markdown lines: per set, the pooled and mean coverage of each kind of interval; per
    series and per set, what an exactly calibrated interval would score on the within-5-points
    criterion, beside the measured counts."""
    sets = {}
    for name in rows:
        sets.setdefault(set_of(name), []).append(name)
    lines = ["Coverage on the panel, % at 80 / 95: pooled over the set's test values (each "
             "counted once), in brackets the unweighted mean over series; mean over seeds.", "",
             "| set | " + " | ".join(methods) + " |", "|" + "---|" * (1 + len(methods))]
    for part, names in sets.items():
        counts = [rows[n]["n_test"] for n in names]
        cells = []
        for m in methods:
            p8, m8 = panel_coverage([rows[n]["hits"][m]["0.8"] for n in names], counts)
            p95, m95 = panel_coverage([rows[n]["hits"][m]["0.95"] for n in names], counts)
            cells.append(f"{p8 * 100:.1f} / {p95 * 100:.1f} ({m8 * 100:.1f} / {m95 * 100:.1f})")
        lines.append(f"| {part} | " + " | ".join(cells) + " |")
    prob = {n: {lv: float(np.mean([within_probability(k, float(lv)) for k in r["n_test"]]))
                for lv in BANDS} for n, r in rows.items()}
    lines += ["", "Per series: test values counted per seed (K steps ahead of each test window) "
              "and P(within 5 points) of an exactly calibrated interval with independent hits.",
              "", "| series | set | test values | P 80% | P 95% |", "|---|---|---|---|---|"]
    for name, r in rows.items():
        n = "/".join(str(k) for k in sorted(set(r["n_test"])))
        lines.append(f"| {name} | {set_of(name)} | {n} | {prob[name]['0.8']:.2f} | "
                     f"{prob[name]['0.95']:.2f} |")
    lines += ["", "Series within 5 points of nominal, 80% / 95%: expected of an exactly calibrated "
              "interval (sum of P) beside the measured counts.", "",
              "| set | series | exactly calibrated | " + " | ".join(methods) + " |",
              "|" + "---|" * (3 + len(methods))]
    for part, names in sets.items():
        e8, e95 = (sum(prob[n][lv] for n in names) for lv in BANDS)
        measured = [f"{tally[part][m][0]} / {tally[part][m][1]}" for m in methods]
        lines.append(f"| {part} | {len(names)} | {e8:.1f} / {e95:.1f} | " + " | ".join(measured)
                     + " |")
    return lines


if __name__ == "__main__":
    sys.exit(main())
