"""The global model of docs/forecasting-results.md: one LSTM over a panel against per-series methods.

    OPENBLAS_NUM_THREADS=1 PYTHONPATH=src python bench/forecast_global.py --panel macro [--seeds 3]
    OPENBLAS_NUM_THREADS=1 PYTHONPATH=src python bench/forecast_global.py --panel monthly
    OPENBLAS_NUM_THREADS=1 PYTHONPATH=src python bench/forecast_global.py --panel fertility

Panels (real series that ship inside statsmodels 0.15.0, and lstmlab's airline series):

    macro     the 12 quarterly US series of ``macrodata`` (bench/panel_csv.py writes them as
              the long-format CSV the docs' command reads); horizon 8, season 4
    monthly   airline, co2 (monthly means), elnino, elec_equip (as in bench/forecast_panel.py);
              horizon 12, season 12
    fertility the 31 yearly fertility series of bench/forecast_panel.py (the G7 of its fresh
              set, the 12 of its unseen set and the 12 of its holdout set; 1960-2011, 52
              steps each); horizon 6, season detected per series
    quarterly the 5 series of ``danish_data`` (1974-1987, 55 quarters) and the 2 of
              ``interest_inflation`` (1972-1998, 107 quarters); horizon 4, season 4
    grunfeld  invest, value and capital of the 11 firms of ``grunfeld`` (1935-1954, 20 years
              each): 33 short yearly series; horizon 3, season detected per series

The default's choice of lookback and base was built on macro, monthly and fertility;
quarterly and grunfeld were run only after it was fixed.

For seeds 0..S-1: the global default (``forecast train CSV --id ...`` with no flags but the
horizon and season: one LSTM 1x32 over the windows of every series, lookback and base chosen
on validation, ``lstmlab.forecast.global_select``), the global model at lookback 24 with no
base and on a ridge linear AR per series (``--lookback 24 --base none|ar``: with ``ar`` the
network learns every series' AR residual, its weight picked per series on validation) and
the single-series default forecaster
(``forecast train`` per series, no flags but the horizon and season: settings chosen on
rolling validation origins, the hybrid LSTM on the chosen base), all scored on each series' test windows with the
same MASE denominator; the per-series baselines (naive, seasonal naive, linear AR in levels at
the lookback the default chose for seed 0, naive 2, ETS) once. Panels whose series are too
short for lookback 24 have no lookback-24 rows. Prints markdown: per-series MASE, then mean MASE, mean sMAPE and OWA.

Needs statsmodels (pinned in requirements/dev.txt).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from lstmlab.forecast.baselines import scores
from lstmlab.forecast.data import TimeSeries
from lstmlab.forecast.global_model import GlobalConfig, GlobalForecaster
from lstmlab.forecast.global_report import evaluate_panel
from lstmlab.forecast.global_select import train_global_default
from lstmlab.forecast.m4 import owa
from lstmlab.forecast.model import ForecastConfig
from lstmlab.forecast.panel import Panel, read_long
from lstmlab.forecast.select import train_default
from lstmlab.forecast.windows import WindowError, make_windows
from lstmlab.training.supervised import FitConfig

sys.path.insert(0, str(Path(__file__).parent))
from forecast_panel import fresh_panel, holdout_panel, unseen_panel  # noqa: E402
from forecast_panel import panel as single_panel  # noqa: E402
from panel_csv import macrodata_long  # noqa: E402

NETWORK = dict(hidden_size=32, num_layers=1, cell="lstm", dtype="float32")
BASELINES = ("persistence", "seasonal_naive", "linear_ar", "naive2", "ets")
SHORT = {"persistence": "naive", "seasonal_naive": "seasonal naive", "linear_ar": "linear AR",
         "naive2": "naive 2", "ets": "ETS", "default": "global default",
         "global": "global LSTM, L 24", "hybrid": "global LSTM on per-series AR, L 24",
         "single": "per-series default LSTM"}


def load(name: str) -> tuple[Panel, int, int]:
    """``(panel, horizon, season)``."""
    if name == "macro":
        with tempfile.TemporaryDirectory() as d:
            path = Path(d) / "macro.csv"
            path.write_text(macrodata_long(), encoding="utf-8")
            return read_long(path, "series", "value", "quarter"), 8, 4
    if name == "quarterly":
        every = {**fresh_panel(), **single_panel(), **unseen_panel()}
        chosen = {n: s for n, (s, _) in every.items()
                  if s.source.split()[1] in ("danish_data", "interest_inflation")}
        return Panel(chosen, "quarterly panel", None, None, "y"), 4, 4
    if name == "grunfeld":
        import statsmodels.api as sm
        g = sm.datasets.grunfeld.load_pandas().data
        chosen = {}
        for firm, rows in g.groupby("firm"):
            rows = rows.sort_values("year")
            for col in ("invest", "value", "capital"):
                chosen[f"{firm} {col}"] = TimeSeries(
                    rows[col].to_numpy(np.float64)[:, None], [col],
                    [str(int(y)) for y in rows["year"]], f"statsmodels grunfeld {firm} {col}",
                    np.arange(len(rows)) + 2)
        return Panel(chosen, "grunfeld panel", None, None, "y"), 3, None
    if name == "fertility":
        every = {**fresh_panel(), **unseen_panel(), **holdout_panel()}
        chosen = {n: s for n, (s, _) in every.items() if s.source.startswith("statsmodels fert")}
        return Panel(chosen, "fertility panel", None, None, "y"), 6, None
    series = single_panel()
    chosen = {n: series[n][0] for n in ("airline", "co2", "elnino", "elec_equip")}
    return Panel(chosen, "monthly panel", None, None, "y"), 12, 12


def run(panel: Panel, K: int, m: int, seeds: int, epochs: int, log) -> tuple[dict, dict]:
    """``(name -> method -> list of (mase, smape) (over seeds for the networks), level ->
    list over seeds of the global default's interval coverage of all test values, in %)``."""
    fit = FitConfig(epochs=epochs)
    res, coverage = {n: {} for n in panel.series}, {}
    for seed in range(seeds):
        t0 = time.perf_counter()
        df, choice = train_global_default(panel, GlobalConfig(horizon=K, season=m), set(),
                                          np.random.default_rng(seed), fit_config=fit, **NETWORK)
        ev_df = evaluate_panel(df, panel, ets=seed == 0)
        log(f"seed {seed}: global default, lookback {df.config.lookback}, base "
            f"{df.config.base} ({time.perf_counter() - t0:.0f} s)")
        for lv in ("0.8", "0.95"):  # the share of all test values inside the intervals
            inside = sum(r.coverage[lv] * r.truth.size for r in ev_df.series.values())
            total = sum(r.truth.size for r in ev_df.series.values())
            coverage.setdefault(lv, []).append(100 * inside / total)
        fixed = {}  # lookback 24 with each base, on panels whose series all hold it
        for method, base in (("global", "none"), ("hybrid", "ar")):
            t0 = time.perf_counter()
            try:
                gf = GlobalForecaster.train(panel, GlobalConfig(lookback=24, horizon=K,
                                                                season=m, base=base),
                                            np.random.default_rng(seed), fit_config=fit,
                                            **NETWORK)
            except WindowError as exc:
                log(f"seed {seed}: no {SHORT[method]} ({exc})")
                continue
            fixed[method] = evaluate_panel(gf, panel)
            log(f"seed {seed}: {SHORT[method]}, best epoch {gf.meta['summary']['best_epoch']}"
                f", weights {[i.mix for i in gf.info.values()]} "
                f"({time.perf_counter() - t0:.0f} s)")
        for name, r in ev_df.series.items():
            s = panel.series[name]
            out = res[name]
            out.setdefault("default", []).append((r.scores["lstm"]["mase"],
                                                  r.scores["lstm"]["smape"]))
            for method, ev in fixed.items():
                f = ev.series[name].scores["lstm"]
                out.setdefault(method, []).append((f["mase"], f["smape"]))
            if seed == 0:
                for b in BASELINES:
                    if b in r.scores:
                        out[b] = [(r.scores[b]["mase"], r.scores[b]["smape"])]
            t0 = time.perf_counter()
            fc, _ = train_default(s, ForecastConfig(horizon=K, base="ar", season=m), set(),
                                  np.random.default_rng(seed), fit_config=fit, **NETWORK)
            X, Y = make_windows(s.values, fc.config.lookback, K, r.origins)
            scale = r.scores["persistence"]["mae"] / r.scores["persistence"]["mase"]
            sc = scores(Y, fc.predict_windows(X), scale)
            out.setdefault("single", []).append((sc["mase"], sc["smape"]))
            log(f"seed {seed}: {name} per-series default ({time.perf_counter() - t0:.0f} s)")
    return res, coverage


def table(res: dict, seeds: int) -> str:
    methods = ["default", "global", "hybrid", "single", *BASELINES]
    lines = ["| series | " + " | ".join(SHORT[m] for m in methods) + " | best per-series |",
             "|" + "---|" * (len(methods) + 2)]
    for name, r in res.items():
        cells = []
        for m in methods:
            if m not in r:
                cells.append("–")
                continue
            v = [x[0] for x in r[m]]
            cells.append(f"{np.mean(v):.3f}" + (f" ± {np.std(v):.3f}" if len(v) > 1 else ""))
        others = {m: np.mean([x[0] for x in r[m]]) for m in methods[3:] if m in r}
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {SHORT[min(others, key=others.get)]} |")
    lines += ["", "| method | mean MASE | mean sMAPE | OWA |", "|---|---|---|---|"]
    common = [m for m in methods if all(m in r for r in res.values())]
    per_seed = {}
    for m in common:
        n = len(next(iter(res.values()))[m])
        per_seed[m] = [(np.mean([r[m][i][0] for r in res.values()]),
                        np.mean([r[m][i][1] for r in res.values()])) for i in range(n)]
    n2 = per_seed["naive2"][0]
    for m in common:
        mase_ = [x[0] for x in per_seed[m]]
        smape_ = [x[1] for x in per_seed[m]]
        owas = [owa(s, a, n2[1], n2[0]) for a, s in per_seed[m]]
        sd = (lambda v: f" ± {np.std(v):.3f}" if len(v) > 1 else "")
        lines.append(f"| {SHORT[m]} | {np.mean(mase_):.3f}{sd(mase_)} | {np.mean(smape_):.2f} | "
                     f"{np.mean(owas):.3f}{sd(owas)} |")

    def wins(g):
        return sum(np.mean([x[0] for x in r[g]]) < min(np.mean([x[0] for x in r[m]])
                                                       for m in methods[3:] if m in r)
                   for r in res.values())

    won = ", ".join(f"{SHORT[g]} {wins(g)}" for g in methods[:3] if g in common)
    lines += ["", f"Test MASE per series (networks: mean ± sd over seeds 0..{seeds - 1}); better "
              f"than every per-series method on: {won} of {len(res)} series."]
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    """The script's command line, built without running anything (tests/test_docs.py parses
    the documented commands with it)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--panel", choices=["macro", "monthly", "fertility", "quarterly", "grunfeld"],
                   default="macro")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--epochs", type=int, default=300)
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    panel, K, m = load(args.panel)
    res, coverage = run(panel, K, m, args.seeds, args.epochs,
                        lambda msg: print(msg, file=sys.stderr, flush=True))
    print(table(res, args.seeds))
    print("\nThe global default's intervals cover, of all test values (seeds 0.."
          f"{args.seeds - 1}): " + "; ".join(
              f"{float(lv):.0%}: " + ", ".join(f"{c:.1f} %" for c in cs)
              for lv, cs in coverage.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
