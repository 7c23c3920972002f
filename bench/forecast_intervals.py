"""Interval coverage on the forecasting panel: conformal intervals beside quantile heads.

    OPENBLAS_NUM_THREADS=1 PYTHONPATH=src python bench/forecast_intervals.py [--seeds 3]

For each series of bench/forecast_panel.py and seeds 0..S-1: the default forecaster
(``forecast train --horizon K --quantiles 0.025,0.1,0.9,0.975``: settings chosen on
validation, the hybrid, plus quantile heads). On the test part, the share of values inside
the 80 % and 95 % intervals of

* conformal: what ``forecast train`` reports — split conformal per step ahead on the
  validation errors together with the hybrid's linear AR's leave-one-out errors on every
  training window;
* validation only: split conformal per step on the validation errors alone;
* heads: the quantile heads' bands [q10, q90] and [q2.5, q97.5];
* CQR: the heads' bands widened (or narrowed) by the conformal quantile of the validation
  windows' scores max(q_lo − y, y − q_hi) per step (Romano, Patterson & Candès 2019);
* pooled: conformal on the validation errors of all K steps at once, each step's errors
  divided by that step's validation mean absolute error (K times more calibration scores).

Prints a markdown table (means over seeds) and how many series are within 5 points.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from lstmlab.forecast.model import ForecastConfig
from lstmlab.forecast.select import train_default
from lstmlab.forecast.windows import make_windows
from lstmlab.training.supervised import FitConfig

sys.path.insert(0, str(Path(__file__).parent))
from forecast_panel import NETWORK, TUNING, panel  # noqa: E402

QUANTILES = (0.025, 0.1, 0.9, 0.975)
BANDS = {"0.8": (1, 2), "0.95": (0, 3)}  # level -> indices of (lo, hi) in QUANTILES


def conformal_rank(scores: np.ndarray, level: float, axis=0) -> np.ndarray:
    n = scores.shape[axis]
    return np.quantile(scores, min(1.0, np.ceil((n + 1) * level) / n), axis=axis, method="higher")


def variants(fc, series) -> dict:
    """method -> level -> coverage on the test part."""
    L, K = fc.config.lookback, fc.config.horizon
    f = np.log if fc.config.transform == "log" else np.asarray
    out = {}
    parts = {}
    for part in ("val", "test"):
        X, Y = make_windows(series.values, L, K, fc.split.origins(part, L, K))
        parts[part] = (Y, fc.predict_windows(X), fc.predict_quantiles(X))
    (Yv, Pv, Qv), (Yt, Pt, Qt) = parts["val"], parts["test"]
    ev, et = np.abs(f(Yv) - f(Pv)), np.abs(f(Yt) - f(Pt))  # (n, K) absolute errors
    for level, (i, j) in BANDS.items():
        a = float(level)
        out.setdefault("conformal", {})[level] = fc.intervals.coverage(Yt, Pt)[level]
        out.setdefault("validation only", {})[level] = float(np.mean(et <= conformal_rank(ev, a)))
        out.setdefault("heads", {})[level] = float(np.mean((Yt >= Qt[:, i]) & (Yt <= Qt[:, j])))
        s = np.maximum(f(Qv[:, i]) - f(Yv), f(Yv) - f(Qv[:, j]))  # (n, K) CQR scores
        c = conformal_rank(s, a)
        lo, hi = f(Qt[:, i]) - c, f(Qt[:, j]) + c
        out.setdefault("CQR", {})[level] = float(np.mean((f(Yt) >= lo) & (f(Yt) <= hi)))
        scale = ev.mean(axis=0)  # (K,)
        q = conformal_rank((ev / scale).ravel(), a) * scale
        out.setdefault("pooled", {})[level] = float(np.mean(et <= q))
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=300)
    ap.add_argument("--only", nargs="+", default=None)
    args = ap.parse_args(argv)
    series = panel()
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
        rows[name] = {m: {lv: float(np.mean([r[m][lv] for r in runs])) for lv in BANDS}
                      for m in runs[0]}
        rows[name]["n_val"] = len(fc.split.origins("val", fc.config.lookback, K))
        print(f"{name}: {rows[name]} ({time.perf_counter() - t0:.0f} s)", file=sys.stderr,
              flush=True)
    methods = ["conformal", "validation only", "heads", "CQR", "pooled"]
    lines = ["| series | set | validation windows | " + " | ".join(f"{m} 80% / 95%" for m in methods)
             + " |", "|" + "---|" * (3 + len(methods))]
    hits = {m: [0, 0] for m in methods}
    miss = {m: [0.0, 0.0] for m in methods}  # summed |coverage - nominal|, report set
    n_report = 0
    for name, r in rows.items():
        report = name not in TUNING
        n_report += report
        cells = []
        for m in methods:
            c80, c95 = r[m]["0.8"], r[m]["0.95"]
            if report:
                hits[m][0] += abs(c80 - 0.8) <= 0.05 + 1e-9
                hits[m][1] += abs(c95 - 0.95) <= 0.05 + 1e-9
                miss[m][0] += abs(c80 - 0.8)
                miss[m][1] += abs(c95 - 0.95)
            cells.append(f"{c80 * 100:.0f}% / {c95 * 100:.0f}%")
        lines.append(f"| {name} | {'tuning' if name in TUNING else 'report'} | {r['n_val']} | "
                     + " | ".join(cells) + " |")
    lines += ["", f"Share of test values inside the interval, mean over seeds 0..{args.seeds - 1}. "
              "Report set, series within 5 points of nominal (80% / 95%): "
              + "; ".join(f"{m} {h[0]}/{n_report} / {h[1]}/{n_report}" for m, h in hits.items())
              + ". Mean distance from nominal, report set (80% / 95%): "
              + "; ".join(f"{m} {d[0] / n_report * 100:.1f} / {d[1] / n_report * 100:.1f} points"
                          for m, d in miss.items())]
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
