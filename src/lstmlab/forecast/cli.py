"""``lstmlab forecast train|predict|benchmark``: argument parsing and the three commands.

:func:`lstmlab.cli.build_parser` registers these; the work is in the modules of this
package, so the functions here only read arguments, call them and print.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .._argtypes import column_names as _column_names
from .._argtypes import fraction as _fraction
from .._argtypes import input_path as _input_path
from .._argtypes import output_dir as _output_dir
from .._argtypes import output_file as _output_file
from .._argtypes import positive_int as _positive
from .._argtypes import refuse_idle_dropout, refuse_overwriting_inputs, refuse_standard_input
from .._argtypes import repeated
from ..task_cli import (Progress, add_network_options, check_network_fits, fit_config_of,
                        output_folder, status, stopped_by_signal)

FORECAST_HELP = """\
Forecast a numeric column with an LSTM (or RNN), beside the baselines every forecaster
checks first: persistence, seasonal naive, a linear autoregression on the same lookback, and
exponential smoothing (--ets, with statsmodels). By default the network learns the residual
of a linear AR (the hybrid) and lookback, transform and anchor are chosen on validation.

  train      fit on the start of a series, report MAE/RMSE/MASE on its held-out end
  predict    forecast the steps after the end of a CSV with a trained model
  benchmark  both shipped series, several seeds: the tables in docs/forecasting-results.md
"""

TRAIN_HELP = """\
Train a forecaster on a CSV column and score it on the end of the series (the test part)
beside persistence, seasonal naive and linear AR. The series is split in time order:
training part, validation part (choice of settings, epoch and the hybrid's network weight),
test part; the scaler, the season and the baselines see the training part only. The model
outputs all --horizon steps at once (direct multi-step output; its own forecasts are never
fed back).

With no --lookback/--transform/--anchor/--base, each is chosen from a small candidate set
(a ridge linear AR with lookbacks 2m, 3m, 4m for a detected season m, else 6, 12, 24; log
when the target is positive; anchors none, last, season; and the naive and seasonal naive
forecasts) by the MAE relative to the naive forecast at up to 3 rolling validation origins;
the choice and the runners-up are printed. The network learns the residual of the chosen
base (the hybrid) and its weight (0..1) is picked on validation, so it is never worse there
than the base alone; --base none trains the network alone.

Writes OUT/model.ckpt, OUT/forecasts.csv (every test window, every method), OUT/report.json,
OUT/metrics.jsonl (per epoch) and OUT/forecast.png (history, truth, forecasts).
With no CSV it trains on the shipped monthly airline series (--dataset sunspots for the
yearly sunspots; horizons 12 and 10), and says so.

Many series, one model: a long-format CSV with --id (one row per series and time) or a
folder of CSVs (one series each) trains one network on the windows of every series, each
scaled by its own naive error (with --base ar, on the residual of a linear AR per series),
and reports MASE, sMAPE and the M4 OWA (relative to naive 2) per series and over all, beside
each series' own baselines.

examples:
  lstmlab forecast train --out runs/airline
  lstmlab forecast train --dataset sunspots --out runs/sunspots --ets --backtest 4
  lstmlab forecast train sales.csv --target units --time date --lookback 28 --horizon 7 \\
      --features price,promo --missing interpolate --out runs/sales
  lstmlab forecast train panel.csv --id series --time date --value y --horizon 8 --out runs/g
"""

PREDICT_HELP = """\
Forecast the --horizon steps after the last row of a CSV with a trained model (it reads the
last --lookback rows; the columns are those it was trained on). Prints the forecast with its
80% and 95% prediction intervals (lo80,hi80,lo95,hi95; when the model had a validation part
to fit them on) and, with --out, writes it as CSV.

A model trained on a shipped series (`lstmlab forecast train --out runs/airline`, no CSV)
forecasts from that series when no CSV is given: its checkpoint names it, and the series'
file (airline_passengers.csv or sunspots_yearly.csv) is inside the package.

examples:
  lstmlab forecast predict runs/airline/model.ckpt --horizon 6 --out next.csv
  lstmlab forecast predict runs/sales/model.ckpt sales.csv
"""

BENCH_HELP = """\
The comparison in docs/forecasting-results.md: for each shipped series and each seed, train what
`forecast train --dataset NAME` trains with no other flags and report the test RMSE (one
step ahead and over the whole horizon) of the network beside persistence, seasonal naive and
both linear AR models; mean and standard deviation over seeds. Seconds per series and seed.

example:
  lstmlab forecast benchmark --seeds 5 --out bench.md
"""

# The horizon of each shipped series (used when --horizon is not given); lookback, transform
# and anchor are chosen on the validation part like for any CSV (lstmlab.forecast.select).
HORIZONS = {"airline": 12, "sunspots": 10}
# Settings when not given: the horizon is the user's question; lookback, transform and anchor
# are candidates' fallbacks (used as given when the user sets them).
DEFAULTS = dict(lookback=24, horizon=12, transform="none", anchor="last", base="ar")


def _levels(text: str) -> tuple:
    """Comma-separated quantile levels in (0, 1), each once, in any order (sorted here): a
    level given twice would train two outputs for the same quantile, so it is refused rather
    than merged into one."""
    try:
        q = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated levels like 0.1,0.9, got "
                                         f"{text!r}") from None
    if not q or not all(0 < v < 1 for v in q):
        raise argparse.ArgumentTypeError(f"quantile levels must lie strictly between 0 and 1, "
                                         f"got {text!r}")
    twice = repeated(q)
    if twice:
        raise argparse.ArgumentTypeError(f"expected each level once, got "
                                         f"{', '.join(f'{v:g}' for v in twice)} more than once "
                                         f"in {text!r}")
    return tuple(sorted(q))


def add_forecast_parser(sub) -> None:
    f = sub.add_parser("forecast", help="forecast a CSV column; baselines beside",
                       description=FORECAST_HELP,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    fsub = f.add_subparsers(dest="forecast_command", metavar="ACTION")
    f.set_defaults(func=lambda args: _no_action(f))

    t = fsub.add_parser("train", help="train and score against the baselines", description=TRAIN_HELP,
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    t.add_argument("csv", nargs="?", metavar="CSV", type=_input_path, help="the data (default: a shipped series)")
    t.add_argument("--dataset", choices=["airline", "sunspots"], default=None,
                   help="shipped series to use when no CSV is given (default airline)")
    t.add_argument("--target", "--value", dest="target",
                   help="the column to forecast (required with a CSV)")
    t.add_argument("--id", default=None, metavar="COLUMN",
                   help="many series in one long-format CSV: the column naming each row's "
                        "series; one network is trained across all of them (a folder of CSVs, "
                        "one series each, needs no --id)")
    t.add_argument("--features", type=_column_names, default=None,
                   help="extra input columns, comma-separated (their past values are inputs)")
    t.add_argument("--time", help="time column (labels in outputs; its order is checked)")
    t.add_argument("--missing", choices=["refuse", "ffill", "interpolate"], default="refuse",
                   help="missing cells: stop with an error (default), carry forward, or interpolate")
    t.add_argument("--lookback", type=_positive, default=None,
                   help="steps the model reads (default: chosen on the validation part)")
    t.add_argument("--horizon", type=_positive, default=None, help="steps forecast at once (default 12)")
    t.add_argument("--transform", choices=["none", "log"], default=None,
                   help="model log(target) (needs positive values; default: chosen on the "
                        "validation part)")
    t.add_argument("--anchor", choices=["none", "last", "season"], default=None,
                   help="predict the residual over the last value, over the seasonal naive "
                        "forecast, or levels (default: chosen on the validation part)")
    t.add_argument("--base", choices=["ar", "ets", "naive", "snaive", "none"], default=None,
                   help="the statistical model the network stands on (the hybrid; its weight is "
                        "picked on validation): ar, a ridge linear AR; ets, exponential "
                        "smoothing over the window; naive; snaive, seasonal naive; none, the "
                        "network alone (default: chosen on validation among ar, naive and snaive; "
                        "ets is tried only when given; with many series: none, or ar for a "
                        "linear AR per series under the one network, chosen on validation)")
    t.add_argument("--ets", action="store_true",
                   help="add exponential smoothing to the report (needs statsmodels: pip install "
                        "'lstmlab[ets]'; its variant is picked on validation; adds seconds)")
    t.add_argument("--backtest", type=_positive, default=1, metavar="F",
                   help="also run the whole procedure at F rolling origins (the series cut "
                        "0, K, 2K, ... steps earlier) and report each method's mean MASE "
                        "(default 1: the one test part)")
    t.add_argument("--season", type=_positive, default=None,
                   help="season length for seasonal naive (default: detected on the training part)")
    t.add_argument("--quantiles", type=_levels, default=(), metavar="LEVELS",
                   help="also train quantile outputs for these levels with the pinball loss, "
                        "e.g. 0.1,0.9 (an 80%% band); their test coverage is reported beside "
                        "the conformal intervals and they are drawn in the plot (default: none)")
    t.add_argument("--nonnegative", action="store_true",
                   help="the target never goes below 0 (counts, sales): forecasts, interval "
                        "bounds and quantiles stop at 0, here and in predict (needs a target "
                        "without negative values; default: off)")
    t.add_argument("--val-fraction", type=_fraction, default=0.15, help="validation share (default 0.15)")
    t.add_argument("--test-fraction", type=_fraction, default=0.2, help="test share at the end (default 0.2)")
    add_network_options(t, quiet_help="no progress line, settings line, candidate or "
                        "backtest lines on stderr; the choice of settings, the notes and the "
                        "errors stay")
    t.add_argument("--out", default="runs/forecast", type=_output_dir,
                   help="run directory (default runs/forecast)")
    t.add_argument("--force", action="store_true", help="overwrite a run already in --out")
    t.add_argument("--no-plot", action="store_true", help="do not draw OUT/forecast.png")
    t.add_argument("--skip-short", action="store_true",
                   help="many series: leave out a series too short for a training window and "
                        "the validation and test parts, naming it, and train on the rest "
                        "(default: such a series is an error)")
    t.set_defaults(func=cmd_forecast_train)

    p = fsub.add_parser("predict", help="forecast after the end of a CSV", description=PREDICT_HELP,
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint", metavar="CKPT", type=_input_path)
    p.add_argument("csv", metavar="CSV", nargs="?", type=_input_path,
                   help="the data to forecast from (default: the shipped series the model was "
                        "trained on, for a model trained without a CSV)")
    p.add_argument("--horizon", type=_positive, default=None,
                   help="steps ahead, at most the trained horizon (default: all of it)")
    p.add_argument("--missing", choices=["refuse", "ffill", "interpolate"], default=None,
                   help="missing cells in the rows read: stop with an error, carry forward, or "
                        "interpolate (default: as the model was trained, --missing of "
                        "forecast train)")
    p.add_argument("--out", default=None, type=_output_file,
                   help="write the forecast to this CSV file")
    p.add_argument("--skip-short", action="store_true",
                   help="many series: leave out a series with fewer rows than the model's "
                        "lookback, naming it, and forecast the rest (default: such a series "
                        "is an error)")
    p.set_defaults(func=cmd_forecast_predict)

    b = fsub.add_parser("benchmark", help="shipped series x seeds: network vs baselines",
                        description=BENCH_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    b.add_argument("--dataset", nargs="+", choices=["airline", "sunspots"],
                   default=["airline", "sunspots"], help="the series (default: both)")
    b.add_argument("--seeds", type=_positive, default=5, help="seeds 0..N-1 (default 5)")
    b.add_argument("--epochs", type=_positive, default=300,
                   help="most passes over the data per run (default 300)")
    b.add_argument("--out", default=None, type=_output_file,
                   help="also write the markdown tables here")
    b.set_defaults(func=cmd_forecast_benchmark)


def _no_action(parser) -> int:
    parser.print_help(sys.stderr)
    return 2


# The files a forecast run writes beside its model.ckpt, each describing that model:
# output_folder refuses to overwrite them without --force (a report.json of the user's
# own, say). A metrics.jsonl alone is the log of a run stopped before its model: replaced.
REPORT_FILES = ("forecasts.csv", "report.json", "forecast.png")


def save_before_scoring(model, path: Path, extra: dict) -> None:
    """Write the trained ``model`` to ``path`` before it is scored: scoring (the baselines,
    exponential smoothing per window and per series) can take minutes, and Ctrl-C or a
    kill there keeps the model. The reports of a run this one replaces (``--force``) go
    with it, so the folder never holds a model beside another model's reports."""
    model.save(path, extra=extra)
    for name in REPORT_FILES:
        (path.parent / name).unlink(missing_ok=True)


def hybrid_note(fc) -> str:
    """What the validation part said about the hybrid's network weight."""
    errs = fc.meta.get("mix_val_mae")
    if not errs:
        return "hybrid: no validation part, so the network's residual forecast is added in full"
    alone, chosen, base = errs["0.0"], errs[str(fc.hybrid.mix)], fc.hybrid.describe()
    if fc.hybrid.mix == 0:
        return (f"hybrid: the network did not lower the validation MAE of {base} "
                f"({alone:.4g}), so its weight is 0: the forecast is that of {base}")
    return (f"hybrid: network weight {fc.hybrid.mix:g} (validation MAE {alone:.4g} for {base} "
            f"alone, {chosen:.4g} with the network)")


def cmd_forecast_train(args) -> int:
    import numpy as np

    from .._words import counted
    from ..training.signals import stop_signals
    from ..training.supervised import check_decay
    from .backtest import backtest, check_folds, format_backtest
    from .data import SHIPPED, load_shipped, read_series
    from .ets import available as ets_available
    from .model import (BASE_NAMES, ForecastConfig, Forecaster, check_nonnegative,
                        check_series_range)
    from .report import evaluate, format_coverage, format_table, plot_forecast, write_forecasts_csv
    from .select import CHOSEN, choose_settings
    from .windows import chronological_split

    refuse_standard_input([args.csv], "CSV")
    refuse_idle_dropout(args.dropout, args.layers)
    check_decay(args.lr, args.weight_decay)  # before the choice of settings, not after it
    if args.val_fraction == 0 and args.test_fraction == 0:  # before training, not after it
        raise ValueError("--val-fraction 0 and --test-fraction 0 leave no part of the series "
                         "to score the model on (the report scores the test part, or the "
                         "validation part when there is no test part); keep one above 0")
    if args.id is not None or (args.csv is not None and Path(args.csv).is_dir()):
        from .global_cli import cmd_global_train

        return cmd_global_train(args)
    if args.skip_short:
        raise ValueError("--skip-short leaves out the series of a panel that are too short; "
                         "it applies to many series (--id COLUMN, or a folder of CSVs)")
    if args.csv is None:
        name = args.dataset or "airline"
        series = load_shipped(name)
        preset = {**DEFAULTS, "horizon": HORIZONS[name]}
        print(f"no CSV given: using the {series.source} ({len(series)} rows)", file=sys.stderr)
        if args.target or args.features or args.time:
            raise ValueError("--target/--features/--time need a CSV; the shipped series has "
                             "its own columns")
    else:
        if args.dataset:
            raise ValueError("give either a CSV or --dataset, not both")
        if not args.target:
            raise ValueError(f"a CSV needs --target COLUMN (the column to forecast)"
                             f"{columns_note(args.csv)}")
        series = read_series(args.csv, args.target, args.features, args.time, args.missing)
        preset = DEFAULTS
    chosen = {k: getattr(args, k) if getattr(args, k) is not None else v for k, v in preset.items()}
    for note in series.notes:
        print(note, file=sys.stderr)
    config = ForecastConfig(season=args.season, val_fraction=args.val_fraction,
                            test_fraction=args.test_fraction, quantiles=args.quantiles,
                            nonnegative=args.nonnegative, **chosen)
    given = {k for k in CHOSEN if getattr(args, k) is not None}
    check_series_range(series)
    if args.backtest > 1:
        check_folds(len(series), config, args.backtest)
    if args.ets and not ets_available():
        raise ValueError("--ets needs statsmodels, which is not installed: pip install "
                         "'lstmlab[ets]' (or leave out --ets)")
    if args.nonnegative:
        check_nonnegative(series, "--nonnegative", "; leave out --nonnegative")
    if config.transform == "log" and not (series.target > 0).all():
        i = int(series.target.argmin())
        raise ValueError(f"--transform log needs a positive target, but {series.columns[0]!r} is "
                         f"{series.target[i]:g} at line {series.lines[i]}; use --transform none")
    asked = config  # before the choice: what every backtest fold starts from
    choice = choose_settings(series, config, given)
    config = choice.config
    if config.anchor == "season" and not (choice.season and choice.season < config.lookback):
        raise ValueError(f"--anchor season reads the value one season back, so it needs a "
                         f"season shorter than the lookback {config.lookback} (season: "
                         f"{choice.season or 'none given or detected'}); pass --season M, a "
                         f"longer --lookback, or another --anchor")
    print(choice.explain(), file=sys.stderr)
    if config.base == "ets" and config.lookback < 2:
        raise ValueError(f"--base ets smooths over each window, so it needs a lookback of 2 or "
                         f"more, got {config.lookback}; pass a longer --lookback or another "
                         f"--base")
    if config.base == "snaive" and not (choice.season and choice.season <= config.lookback):
        raise ValueError(f"--base snaive needs a season no longer than the lookback "
                         f"{config.lookback} (season: {choice.season or 'none detected'}); "
                         f"pass --season M, a longer --lookback, or another --base")
    chronological_split(len(series), config.lookback, config.horizon, config.val_fraction,
                        config.test_fraction)  # too short? say so before anything is written
    check_network_fits(args, series.values.shape[1], config.horizon * (1 + len(config.quantiles)))
    out = output_folder(args, REPORT_FILES)
    status(args, f"settings: lookback {config.lookback}, horizon {config.horizon} (direct "
                 f"multi-step output), transform {config.transform}, anchor {config.anchor}; "
                 f"{args.model.upper()} {args.layers}x{args.hidden}"
                 + ("" if config.base == "none" else f" on the residual of "
                    f"{BASE_NAMES[config.base]} (hybrid)"))
    progress = Progress(out / "metrics.jsonl", args.epochs, args.quiet)
    with stop_signals() as stop:  # Ctrl-C / SIGTERM: stop after the batch, save, exit 128 + N
        try:
            fc = Forecaster.train(series, config, np.random.default_rng(args.seed),
                                  hidden_size=args.hidden, num_layers=args.layers, cell=args.model,
                                  dropout=args.dropout, dtype=args.dtype,
                                  fit_config=fit_config_of(args), on_epoch=progress,
                                  should_stop=lambda: stop.requested)
        finally:
            progress.close()
    fc.meta["choice"] = choice.to_json()
    if fc.hybrid is not None:
        print(hybrid_note(fc), file=sys.stderr)
    sm = fc.meta["summary"]
    split = fc.split
    columns = {"target": series.columns[0], "features": series.columns[1:],
               "time": args.time if args.csv else SHIPPED[name][1],
               "missing": args.missing if args.csv else "refuse",
               "dataset": None if args.csv else name}
    save_before_scoring(fc, out / "model.ckpt", columns)
    ev = evaluate(fc, series, ets=args.ets)
    report = {"source": series.source, "columns": series.columns, "config": config.to_json(),
              "season": fc.season, "split": split.to_json(), "training": sm,
              "part": ev.part, "windows": int(len(ev.origins)), "mase_scale": ev.scale,
              "mase_lag": ev.mase_lag,
              "scores": ev.scores, "seed": args.seed, "choice": choice.to_json(),
              "hybrid_mix": None if fc.hybrid is None else fc.hybrid.mix,
              "labels": {m: ev.label(m) for m in ev.scores}, "coverage": ev.coverage,
              "quantile_coverage": ev.quantile_coverage}
    fc.save(out / "model.ckpt",
            extra={**columns, "report": {k: v["rmse"] for k, v in ev.scores.items()}})
    write_forecasts_csv(out / "forecasts.csv", ev, series)
    from ..training.checkpoint import atomic_write_text

    atomic_write_text(out / "report.json", json.dumps(report, indent=1))
    if not args.no_plot:
        plot_forecast(out / "forecast.png", ev, series)
    if not fc.season:
        season = ("no season (--season 1; seasonal naive left out)" if args.season else
                  "no season detected (seasonal naive left out)")
    else:
        season = f"season {fc.season} ({'given' if args.season else 'detected'}"
        if "seasonal_naive" not in ev.preds:
            season += (f"; longer than the series allows before the first {ev.part} window, "
                       f"so seasonal naive is left out")
        season += ")"
    print(f"split: {split.train} training, {split.val} validation, {split.test} test steps; "
          f"{season}; best epoch {sm['best_epoch']} of {sm['epochs_run']} ({sm['status']}, "
          f"{sm['seconds']:.0f} s)")
    print(f"{ev.part} part: {counted(len(ev.origins), 'window')}, each forecasting "
          f"{counted(config.horizon, 'step')}; MASE relative to {ev.mase_basis()}")
    print(format_table(ev))
    print(format_coverage(ev))
    if args.backtest > 1 and not stop.requested:
        status(args, f"backtest: {args.backtest} folds, one network each ...")
        bt = backtest(series, asked, given, args.backtest, args.seed, ets=args.ets,
                      hidden_size=args.hidden, num_layers=args.layers, cell=args.model,
                      dropout=args.dropout, dtype=args.dtype, fit_config=fit_config_of(args))
        print(format_backtest(bt, {m: ev.label(m) for m in ev.scores}))
        report["backtest"] = bt
        atomic_write_text(out / "report.json", json.dumps(report, indent=1))
    print(f"wrote {out / 'model.ckpt'}, {out / 'forecasts.csv'}, {out / 'report.json'}, "
          f"{out / 'metrics.jsonl'}" + ("" if args.no_plot else f", {out / 'forecast.png'}"))
    return stopped_by_signal(sm, stop) or 0


def columns_note(path) -> str:
    """``"; 'f.csv' has the columns a, b"`` for a CSV file, so an error asking for --target
    shows what it may name; empty for a folder of CSVs."""
    from .data import read_csv_table

    if Path(path).is_dir():
        return ""
    return f"; {str(path)!r} has the columns {', '.join(read_csv_table(path)[0])}"


def check_log_inputs(series, rows: int, what: str = "") -> None:
    """forecast predict: a model trained with --transform log reads the logs of the last
    ``rows`` target values, which must be positive. This command has no --transform to
    change, so the error names the value's line and the training flag."""
    tail = series.target[-rows:]
    if not (tail > 0).all():
        i = len(series) - len(tail) + int(tail.argmin())
        raise ValueError(f"{what}line {series.lines[i]} holds {series.target[i]:g}, but the "
                         f"model was trained with --transform log and reads the logs of the "
                         f"last {len(tail)} values, which must be positive; such data needs a "
                         f"model trained with --transform none")


def missing_rule(args, meta: dict) -> str:
    """forecast predict's missing-value policy: ``--missing`` when given, else the one the
    model was trained with (its checkpoint's ``missing``; ``"refuse"`` when it has none), so
    the file it was trained on reads as it did then."""
    return args.missing or meta.get("missing") or "refuse"


def predict_source(args, meta: dict) -> tuple:
    """``(path, name)`` of the data forecast predict reads: the CSV given, or without one the
    shipped series the model was trained on (its checkpoint's ``dataset``, or the source it
    names), whose file is inside the package; a model trained on a CSV needs that CSV."""
    from .data import SHIPPED, shipped_path

    if args.csv is not None:
        return args.csv, args.csv
    source = str((meta.get("data") or {}).get("source", "a CSV file"))
    name = meta.get("dataset") or next(
        (n for n in SHIPPED if source.startswith(f"shipped series {n!r}")), None)
    if name not in SHIPPED:
        raise ValueError(f"forecast predict needs the CSV to forecast from: this model was "
                         f"trained on {source}, not on a shipped series; pass CKPT CSV")
    print(f"no CSV given: forecasting from the shipped series {name!r} the model was trained "
          f"on", file=sys.stderr)
    return shipped_path(name), f"the shipped series {name!r}"


def cmd_forecast_predict(args) -> int:
    from ..training.checkpoint import atomic_write_text, load_checkpoint
    from .data import read_series
    from .model import KIND, Forecaster, check_series_range, future_labels
    from .report import value_digits

    refuse_standard_input([args.csv], "CSV")
    refuse_overwriting_inputs(args.out, "--out", {"CKPT": args.checkpoint, "CSV": args.csv})
    meta, _ = load_checkpoint(args.checkpoint)
    if meta.get("kind") == "global_forecaster":
        from .global_cli import cmd_global_predict

        return cmd_global_predict(args, meta)
    if args.skip_short:
        raise ValueError("--skip-short leaves out the series of a panel that are too short; "
                         "this model forecasts one series")
    meta, _ = load_checkpoint(args.checkpoint, expect_kind=KIND)
    fc = Forecaster.load(args.checkpoint)
    target = meta.get("target") or fc.columns[0]
    features = meta.get("features") or fc.columns[1:]
    path, where = predict_source(args, meta)
    series = read_series(path, target, features, meta.get("time"), missing_rule(args, meta),
                         fc.config.lookback, observed_end=True, read_rows=fc.config.lookback)
    for note in series.notes:
        print(note, file=sys.stderr)
    check_series_range(series)
    if fc.config.transform == "log":
        check_log_inputs(series, fc.config.lookback, f"{where}, ")
    K = args.horizon or fc.config.horizon
    pred = fc.forecast_next(series, K)
    labels = future_labels(series.time, K)
    columns = [pred[None]]  # (1, K) per column: the forecast, then the interval bounds
    head = "step,time,forecast"
    if fc.intervals is not None:
        for level in fc.intervals.width:
            columns += fc.intervals.bounds(pred[None], level,
                                           series.values[-fc.config.lookback:][None])
            pct = f"{float(level) * 100:g}"
            head += f",lo{pct},hi{pct}"
    if fc.config.quantiles:
        q = fc.predict_quantiles(series.values[-fc.config.lookback:][None], K)  # (1, Q, K)
        for j, level in enumerate(fc.config.quantiles):
            columns.append(q[:, j])
            head += f",q{level * 100:g}"
    d = value_digits(series.target)
    lines = [head] + [f"{k + 1},{labels[k]}," + ",".join(f"{c[0, k]:.{d}g}" for c in columns)
                      for k in range(K)]
    text = "\n".join(lines) + "\n"
    last = f"line {series.lines[-1]}" + (f", {series.time[-1]}" if series.time else "")
    print(f"{K}-step forecast of {target!r} after the last row ({last}) of {where}:",
          file=sys.stderr)
    sys.stdout.write(text)
    if args.out:
        atomic_write_text(args.out, text)
        print(f"wrote {args.out}", file=sys.stderr)
    return 0


def cmd_forecast_benchmark(args) -> int:
    from ..training.checkpoint import atomic_write_text
    from .benchmark import run_benchmark

    twice = repeated(args.dataset)
    if twice:
        raise ValueError(f"--dataset {' '.join(twice)} is given more than once; each series "
                         f"is benchmarked once")
    text = run_benchmark(args.dataset, args.seeds, args.epochs,
                         log=lambda m: print(m, file=sys.stderr, flush=True))
    print(text)
    if args.out:
        atomic_write_text(args.out, text + "\n")
    return 0
