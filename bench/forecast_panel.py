"""The forecasting panel of docs/forecasting-results.md: the default forecaster against the baselines.

    OPENBLAS_NUM_THREADS=1 PYTHONPATH=src python bench/forecast_panel.py [--seeds 3] [--only NAME ...]

Five sets of series (``--sets``, default all):

* **tuning**: the two shipped with lstmlab (airline, sunspots), on which the defaults were
  chosen;
* **report**: ten real series that ship inside statsmodels, looked at while the defaults
  were built:

    co2          Mauna Loa CO2, weekly 1958-2001 -> monthly means (weeks without a reading skipped)
    nile         Nile river flow at Aswan, yearly 1871-1970
    elnino       sea-surface temperature, El Nino region, monthly 1950-2010
    elec_equip   euro-area electrical equipment turnover index, monthly 1995-2016
    realgdp, cpi, unemp, tbilrate, realinv
                 US macroeconomic data, quarterly 1959-2009 (macrodata)
    inflation    quarterly inflation Dp of Germany, 1972-1998 (interest_inflation)

* **fresh**: nineteen more statsmodels series, fixed by a rule before any run on them
  (:func:`fresh_panel`): every other macrodata column (realcons, realgovt, realdpi, m1, pop,
  infl, realint), every danish_data column (lrm, lry, lpy, ibo, ide; quarterly 1974-1987)
  and the fertility rate of the G7 countries (yearly 1960-2011);
* **unseen**: thirteen more, fixed by a rule before any run on them (:func:`unseen_panel`):
  the interest rate R of interest_inflation and the fertility rate of 12 rows of the
  fertility table outside the G7 drawn at random;
* **holdout**: the fertility rate of 12 more rows drawn from those the unseen set left, fixed
  before any run on them (:func:`holdout_panel`).

Each series: horizon 12 (monthly), 8 (quarterly) or 6 (yearly; 10 for sunspots, as its
preset); the command's default split (test = last 20 %). Methods, all scored on the same
test windows with the same MASE denominator: the default forecaster (``forecast train`` with
no flags but the horizon: settings and base chosen on rolling validation origins, the hybrid
LSTM on that base), the plain LSTM on the same chosen settings (``--base none``), the base
alone, and the baselines: naive, seasonal naive, linear AR in levels (with the default's
chosen lookback, as in the command's report, and with its own lookback chosen on validation)
and ETS. The network rows are means over seeds 0..S-1; the rest do not depend on the seed.
The last column is the share of test values inside the default forecaster's 80 % and 95 %
prediction intervals (mean over seeds). Prints a markdown table and, per set, a summary
against the aim: default MASE <= 1.1x the best baseline's on every series, below every
baseline's on at least half. ``--single-split`` chooses the settings on the one validation
part among linear AR bases instead, ``--smoothing-base`` adds exponential smoothing over the
window to the candidate bases (both for comparison).

Needs statsmodels (``pip install statsmodels``; pinned in requirements/dev.txt).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from lstmlab.forecast.baselines import LinearAR, mae, mase_denominator
from lstmlab.forecast.data import TimeSeries, load_shipped
from lstmlab.forecast.model import ForecastConfig, Forecaster
from lstmlab.forecast.report import evaluate
from lstmlab.forecast.select import (MIN_WINDOWS_PER_WEIGHT, choose_settings,
                                     lookback_candidates, train_default)
from lstmlab.forecast.windows import chronological_split, make_windows
from lstmlab.training.supervised import FitConfig

TUNING = ("airline", "sunspots")
SETS = ("tuning", "report", "fresh", "unseen", "holdout")


def set_of(name: str) -> str:
    """``tuning``, ``report``, ``fresh`` or ``unseen``: which set a series belongs to."""
    if name in TUNING:
        return "tuning"
    if name == "interest" or name.startswith("unseen_"):
        return "unseen"
    if name.startswith("holdout_"):
        return "holdout"
    return "fresh" if name in FRESH else "report"

NETWORK = dict(hidden_size=32, num_layers=1, cell="lstm", dtype="float32")
BASELINES = ("persistence", "seasonal_naive", "linear_ar", "linear_ar_val", "ets")


def levels_ar_tuned(series: TimeSeries, horizon: int, season: int | None) -> tuple[float, int]:
    """``(test MASE, lookback)`` of the least-squares AR in levels whose lookback (from the
    default's candidates, 6/12/24 added) has the lowest validation MAE: the linear AR
    baseline given the same chance to choose as the default forecaster."""
    split = chronological_split(len(series), 1, horizon)
    K, best = horizon, None
    for L in sorted(set(lookback_candidates(season)) | set(lookback_candidates(None))):
        if len(split.origins("train", L, K)) < MIN_WINDOWS_PER_WEIGHT * (L + 1):
            continue
        ar = LinearAR().fit(*make_windows(series.values, L, K, split.origins("train", L, K)))
        Xv, Yv = make_windows(series.values, L, K, split.origins("val", L, K))
        err = mae(Yv, ar.predict(Xv))
        if best is None or err < best[0]:
            best = (err, L, ar)
    _, L, ar = best
    X, Y = make_windows(series.values, L, K, split.origins("test", L, K))
    scale, _ = mase_denominator(series.target[: split.train], season or 1)
    return mae(Y, ar.predict(X)) / scale, L


def _series(name: str, values, time_labels, what: str) -> TimeSeries:
    v = np.asarray(values, np.float64)
    return TimeSeries(v[:, None], [name], [str(t) for t in time_labels],
                      f"statsmodels {what}", np.arange(len(v)) + 2)


def panel() -> dict:
    """name -> (TimeSeries, horizon)."""
    import statsmodels.api as sm
    from statsmodels.datasets import elec_equip

    out = {"airline": (load_shipped("airline"), 12), "sunspots": (load_shipped("sunspots"), 10)}
    co2 = sm.datasets.co2.load_pandas().data["co2"]
    monthly = co2.groupby([co2.index.year, co2.index.month]).mean().dropna()
    out["co2"] = (_series("co2", monthly.values, [f"{y}-{m:02d}" for y, m in monthly.index],
                          "co2 (monthly means)"), 12)
    nile = sm.datasets.nile.load_pandas().data
    out["nile"] = (_series("volume", nile["volume"], nile["year"].astype(int), "nile"), 6)
    el = sm.datasets.elnino.load_pandas().data
    temps = el.drop(columns="YEAR").to_numpy().ravel()
    months = [f"{int(y)}-{m:02d}" for y in el["YEAR"] for m in range(1, 13)]
    out["elnino"] = (_series("temperature", temps, months, "elnino"), 12)
    ee = elec_equip.load().data.iloc[:, 0]
    out["elec_equip"] = (_series("orders", ee.values, [t.strftime("%Y-%m") for t in ee.index],
                                 "elec_equip"), 12)
    macro = sm.datasets.macrodata.load_pandas().data
    quarters = [f"{int(y)}-Q{int(q)}" for y, q in zip(macro["year"], macro["quarter"])]
    for col in ("realgdp", "cpi", "unemp", "tbilrate", "realinv"):
        out[col] = (_series(col, macro[col], quarters, f"macrodata {col}"), 8)
    ii = sm.datasets.interest_inflation.load_pandas().data
    out["inflation"] = (_series("Dp", ii["Dp"], [f"{int(y)}-Q{int(q)}" for y, q in
                                                  zip(ii["year"], ii["quarter"])],
                                "interest_inflation Dp"), 8)
    return out


FRESH_MACRO = ("realcons", "realgovt", "realdpi", "m1", "pop", "infl", "realint")
FRESH_DK = ("lrm", "lry", "lpy", "ibo", "ide")
G7 = ("Canada", "France", "Germany", "Italy", "Japan", "United Kingdom", "United States")


def fresh_panel() -> dict:
    """The fresh set, name -> (TimeSeries, horizon), fixed by a rule before any run: every
    macrodata column not in the report set, every danish_data column, and the fertility rate
    of the G7 countries (years with a value)."""
    import statsmodels.api as sm

    out = {}
    macro = sm.datasets.macrodata.load_pandas().data
    quarters = [f"{int(y)}-Q{int(q)}" for y, q in zip(macro["year"], macro["quarter"])]
    for col in FRESH_MACRO:
        out[col] = (_series(col, macro[col], quarters, f"macrodata {col}"), 8)
    dk = sm.datasets.danish_data.load_pandas().data
    dk_quarters = [f"{t.year}-Q{(t.month - 1) // 3 + 1}" for t in dk.index]
    for col in dk.columns:
        out[f"dk_{col}"] = (_series(col, dk[col], dk_quarters, f"danish_data {col}"), 8)
    fert = sm.datasets.fertility.load_pandas().data.set_index("Country Name")
    years = [c for c in fert.columns if c.isdigit()]
    for country in G7:
        row = fert.loc[country, years].astype(float).dropna()
        name = "fert_" + country.lower().replace(" ", "_")
        out[name] = (_series("fertility", row.values, row.index, f"fertility {country}"), 6)
    return out


FRESH = (*FRESH_MACRO, *(f"dk_{c}" for c in FRESH_DK),
         *("fert_" + c.lower().replace(" ", "_") for c in G7))
UNSEEN_DRAW = (20261207, 12)  # seed and count of the unseen set's fertility series
HOLDOUT_DRAW = (20261208, 12)  # the same for the holdout set, from the rows left


def unseen_panel() -> dict:
    """The unseen set, name -> (TimeSeries, horizon), fixed by a rule before any run: the
    interest rate R of interest_inflation (the report set's ``inflation`` is its other column)
    and the fertility rate of 12 rows of the fertility table (countries and regions) drawn at
    random (``UNSEEN_DRAW``) from those outside the G7 with a value for every year 1960-2011."""
    import statsmodels.api as sm

    ii = sm.datasets.interest_inflation.load_pandas().data
    out = {"interest": (_series("R", ii["R"], [f"{int(y)}-Q{int(q)}" for y, q in
                                               zip(ii["year"], ii["quarter"])],
                                "interest_inflation R"), 8)}
    out.update(_fertility_draw("unseen_", UNSEEN_DRAW, ()))
    return out


def _fertility_table():
    """The fertility table's rows outside the G7 with a value for every year 1960-2011, and
    those years (2012 and 2013 are empty)."""
    import statsmodels.api as sm

    fert = sm.datasets.fertility.load_pandas().data.set_index("Country Name")
    years = [c for c in fert.columns if c.isdigit() and int(c) <= 2011]
    full = fert[years].astype(float).dropna()
    return full.loc[sorted(c for c in full.index if c not in G7)], years


def _fertility_draw(prefix: str, draw: tuple, taken: tuple = ()) -> dict:
    """``count`` rows of :func:`_fertility_table` not drawn by the ``taken`` draws, drawn with
    ``seed`` (``draw = (seed, count)``): name -> (TimeSeries, horizon 6)."""
    table, years = _fertility_table()
    left = list(table.index)
    for seed, count in (*taken, draw):
        rows = np.random.default_rng(seed).choice(left, count, replace=False)
        left = [c for c in left if c not in rows]
    return {prefix + "".join(ch if ch.isalnum() else "_" for ch in country.lower()):
            (_series("fertility", table.loc[country].values, years, f"fertility {country}"), 6)
            for country in rows}


def holdout_panel() -> dict:
    """The holdout set, fixed by a rule before any run on it: the fertility rate of 12 more
    rows of the table drawn at random (``HOLDOUT_DRAW``) from those the unseen set left."""
    return _fertility_draw("holdout_", HOLDOUT_DRAW, (UNSEEN_DRAW,))


def run_series(series: TimeSeries, horizon: int, seeds: int, epochs: int,
               plain: bool = True, single_split: bool = False,
               smoothing_base: bool = False) -> dict:
    """MASE per method (network rows: list over seeds) and what the default chose;
    ``single_split``: settings chosen on the one validation part among linear AR bases;
    ``smoothing_base``: exponential smoothing added to the default's candidate bases."""
    config = ForecastConfig(horizon=horizon, base="ar")
    fit = FitConfig(epochs=epochs)
    res = {"default": [], "plain": [], "mix": [], "best_epoch": [], "cov80": [], "cov95": []}
    for seed in range(seeds):
        if single_split:
            choice = choose_settings(series, config, set(), folds=1, trivial_bases=False)
            fc = Forecaster.train(series, choice.config, np.random.default_rng(seed),
                                  fit_config=fit, **NETWORK)
        else:
            fc, choice = train_default(series, config, set(), np.random.default_rng(seed),
                                       smoothing_base, fit_config=fit, **NETWORK)
        ev = evaluate(fc, series, ets=seed == 0)
        X, _ = make_windows(series.values, fc.config.lookback, horizon, ev.origins)
        res["default"].append(ev.scores["lstm"]["mase"])
        res["mix"].append(fc.hybrid.mix)
        res["best_epoch"].append(fc.meta["summary"]["best_epoch"])
        res["cov80"].append(ev.coverage["0.8"])
        res["cov95"].append(ev.coverage["0.95"])
        if seed == 0:
            for m in BASELINES:
                if m in ev.scores:
                    res[m] = ev.scores[m]["mase"]
            res["base_t"] = float(np.mean(np.abs(fc.base_forecast(X) - ev.truth))) / ev.scale
            res["ets_label"] = ev.labels.get("ets", "")
            res["linear_ar_val"], res["ar_lookback"] = levels_ar_tuned(series, horizon, fc.season)
            res["settings"] = (f"L={fc.config.lookback} {fc.config.transform}/"
                               f"{fc.config.anchor} m={fc.season} base {fc.config.base}")
            res["windows"] = len(ev.origins)
        if plain:
            plain_fc = Forecaster.train(series, ForecastConfig(**{**choice.config.to_json(),
                                                                "base": "none"}),
                                      np.random.default_rng(seed), fit_config=fit, **NETWORK)
            res["plain"].append(evaluate(plain_fc, series).scores["lstm"]["mase"])
    return res


def build_parser() -> argparse.ArgumentParser:
    """The script's command line, built without running anything (tests/test_docs.py parses
    the documented commands with it)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--epochs", type=int, default=300)
    p.add_argument("--only", nargs="+", default=None, help="these series only")
    p.add_argument("--no-plain", action="store_true", help="skip the plain LSTM column")
    p.add_argument("--single-split", action="store_true",
                   help="choose the settings on the one validation part among linear AR bases "
                        "(no rolling origins, no naive bases), for comparison")
    p.add_argument("--smoothing-base", action="store_true",
                   help="add exponential smoothing over the window (--base ets) to the "
                        "default's candidate bases, for comparison")
    p.add_argument("--json", default=None, help="also write the raw rows here")
    p.add_argument("--sets", nargs="+", default=list(SETS), choices=SETS,
                   help="which sets (default: all five)")
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    every = {**panel(), **fresh_panel(), **(unseen_panel() if "unseen" in args.sets else {}),
             **(holdout_panel() if "holdout" in args.sets else {})}
    series = {k: v for k, v in every.items() if set_of(k) in args.sets}
    names = args.only or list(series)
    rows = {}
    for name in names:
        t0 = time.perf_counter()
        rows[name] = run_series(*series[name], args.seeds, args.epochs, not args.no_plain,
                                args.single_split, args.smoothing_base)
        r = rows[name]
        print(f"{name}: {r['settings']}, default MASE {np.mean(r['default']):.3f}, mix "
              f"{r['mix']}, best epochs {r['best_epoch']} ({time.perf_counter() - t0:.0f} s)",
              file=sys.stderr, flush=True)
    print(format_table(rows, args.seeds))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1, default=str))
    return 0


def format_table(rows: dict, seeds: int) -> str:
    head = ("| series | set | chosen settings | default (hybrid) | plain LSTM | its base | "
            "naive | seasonal naive | linear AR (levels) | linear AR (levels, L on validation) | "
            "ETS | best baseline | ratio | coverage 80% / 95% |")
    lines = [head, "|" + "---|" * 14]
    tally = {}  # set -> [series, within 1.1x, better than every baseline, 80 % ok, 95 % ok]
    for name, r in rows.items():
        base = {m: r[m] for m in BASELINES if m in r}
        best = min(base, key=base.get)
        d = float(np.mean(r["default"]))
        ratio = d / base[best]
        c80, c95 = float(np.mean(r["cov80"])), float(np.mean(r["cov95"]))
        t = tally.setdefault(set_of(name), [0, 0, 0, 0, 0])
        for i, hit in enumerate((True, ratio <= 1.1, all(d < v for v in base.values()),
                                 abs(c80 - 0.8) <= 0.05 + 1e-9, abs(c95 - 0.95) <= 0.05 + 1e-9)):
            t[i] += hit

        def cell(m):
            return f"{r[m]:.3f}" if m in r else "–"

        plain = f"{np.mean(r['plain']):.3f}" if r["plain"] else "–"
        lines.append(f"| {name} | {set_of(name)} | {r['settings']} | "
                     f"{d:.3f} ± {np.std(r['default']):.3f} | {plain} | "
                     f"{cell('base_t')} | {cell('persistence')} | {cell('seasonal_naive')} | "
                     f"{cell('linear_ar')} | {cell('linear_ar_val')} (L={r['ar_lookback']}) | "
                     f"{cell('ets')} | {best} | {ratio:.2f} | {c80 * 100:.0f}% / {c95 * 100:.0f}% |")
    lines.append("")
    lines.append(f"MASE on the test part; network columns: mean (± sd) over seeds 0..{seeds - 1}; "
                 f"ratio = default / best baseline (naive, seasonal naive, both linear AR, ETS).")
    for name, (n, ratio, every, ok80, ok95) in tally.items():
        lines.append(f"{name} set ({n} series): default <= 1.1x the best baseline on {ratio}/{n}; "
                     f"better than every baseline on {every}/{n}; coverage within 5 points on "
                     f"{ok80}/{n} at 80%, {ok95}/{n} at 95%.")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
