"""``lstmlab forecast train|predict`` for many series with one model (``--id`` or a folder).

:func:`lstmlab.forecast.cli.cmd_forecast_train` and ``cmd_forecast_predict`` hand over here
when the data is a long-format CSV (``--id``) or a folder of CSVs, or the checkpoint holds a
global model; the work is in :mod:`.panel`, :mod:`.global_model` and :mod:`.global_report`.
"""

from __future__ import annotations

import csv
import io
import json
import os
import sys
from dataclasses import replace
from pathlib import Path

# Settings of the single-series command that a global model does not have, with why.
NOT_GLOBAL = {
    "features": "a global model reads the target column only",
    "dataset": "a shipped series is one series; give a long-format CSV or a folder",
    "quantiles": "quantile outputs are trained for a single series only",
    "nonnegative": "forecasts are clipped at 0 for a single series only",
}


NOTED_SERIES = 10  # series whose reading notes are printed; a folder of hundreds says how many more


def print_notes(panel) -> None:
    """What reading ``panel`` assumed or filled (sorted rows, filled values), on stderr: the
    forecasts stand on it, at training and at prediction alike. The notes of the first
    ``NOTED_SERIES`` series that have any, then how many more series have some."""
    for note in panel.notes:
        print(note, file=sys.stderr)
    noted = [(name, s.notes) for name, s in panel.series.items() if s.notes]
    for name, notes in noted[:NOTED_SERIES]:
        for note in notes:
            print(f"series {name!r}: {note}", file=sys.stderr)
    if len(noted) > NOTED_SERIES:
        more = len(noted) - NOTED_SERIES
        print(f"... and {more} more series with notes of their own (not shown)", file=sys.stderr)


SHOWN_SHORT = 10  # series named in the --skip-short note; the rest are counted


def skip_short(panel, short: dict):
    """``panel`` without the series in ``short`` (``{name: why it is too short}``), said on
    stderr naming them and why the first is too short: ``--skip-short`` forecasts the rest
    where, without it, the first such series stops the command. An error when no series is
    left."""
    if not short:
        return panel
    names = list(short)
    if len(names) == len(panel):
        raise ValueError(f"--skip-short: every series of {panel.source} is too short (series "
                         f"{names[0]!r}: {short[names[0]]}); nothing is left to forecast")
    shown = ", ".join(repr(n) for n in names[:SHOWN_SHORT])
    more = f" and {len(names) - SHOWN_SHORT} more" if len(names) > SHOWN_SHORT else ""
    why = (f" ({short[names[0]]})" if len(names) == 1
           else f"{more}; {names[0]!r}: {short[names[0]]}")
    print(f"--skip-short: left out {len(names)} of {len(panel)} series too short for the "
          f"model's windows: {shown}{why}", file=sys.stderr)
    return replace(panel, series={n: s for n, s in panel.series.items() if n not in short})


def _id_key(name: str):
    """An id folded as a spreadsheet or a retyping changes it: case and spacing, and a
    number's spelling ('01', '1.0' and '1' are one number)."""
    try:
        return float(name)
    except ValueError:
        return " ".join(name.split()).casefold()


def lookalike_trained(name: str, trained) -> str | None:
    """The id among ``trained`` that ``name``, an id the model was not trained on, differs
    from only in case, spacing or the spelling of a number; None when there is none."""
    key = _id_key(name)
    return next((t for t in trained if _id_key(t) == key), None)


def cmd_global_train(args) -> int:
    import numpy as np

    from ..training.checkpoint import atomic_write_text
    from ..training.signals import stop_signals
    from ..task_cli import (Progress, check_network_fits, fit_config_of, output_folder, status,
                            stopped_by_signal)
    from .cli import REPORT_FILES, columns_note, save_before_scoring
    from .ets import available as ets_available
    from .global_model import GlobalConfig, constant_names, split_series
    from .windows import WindowError
    from .global_select import candidates, too_short, train_global_default
    from .global_report import (evaluate_panel, format_coverage, format_panel,
                                panel_forecasts_csv, panel_report)
    from .panel import read_panel

    if args.csv is None:
        raise ValueError("--id needs a CSV in long format (one row per series and time)")
    if Path(args.csv).is_dir() and Path(args.out).is_dir() and os.path.samefile(args.out,
                                                                                args.csv):
        raise ValueError(f"--out {args.out} is the folder of CSVs this command reads: the run's "
                         f"forecasts.csv would be read there as a series the next time; choose "
                         f"another --out (a folder inside it is not read)")
    for flag, why in NOT_GLOBAL.items():
        if getattr(args, flag, None):
            raise ValueError(f"--{flag} does not apply to many series: {why}")
    if args.anchor not in (None, "last"):
        raise ValueError("a global model reads and predicts changes over each window's last "
                         "value (anchor last); leave out --anchor")
    if args.base not in (None, "none", "ar"):
        raise ValueError(f"--base {args.base} does not apply to many series: the global model "
                         f"stands on nothing (--base none) or on a linear AR per series (--base "
                         f"ar), chosen on validation when not given")
    if args.backtest > 1:
        raise ValueError("--backtest is for a single series; a panel already scores every "
                         "series' test part")
    if not args.target:
        raise ValueError(f"many series need --target COLUMN (the value column)"
                         f"{columns_note(args.csv)}")
    if args.ets and not ets_available():
        raise ValueError("--ets needs statsmodels, which is not installed: pip install "
                         "'lstmlab[ets]' (or leave out --ets)")
    panel = read_panel(args.csv, args.target, args.id, args.time, args.missing)
    print_notes(panel)
    config = GlobalConfig(lookback=args.lookback or 24, horizon=args.horizon or 12,
                          transform=args.transform or "none", val_fraction=args.val_fraction,
                          test_fraction=args.test_fraction, season=args.season,
                          base=args.base or "none")
    given = {k for k in ("lookback", "base") if getattr(args, k) is not None}
    if args.skip_short:
        panel = skip_short(panel, too_short(panel, config, given))
    cands = candidates(panel, config, given)
    # too short? say which before anything is written
    try:
        splits = {name: split_series(name, s, cands[0]) for name, s in panel.series.items()}
    except WindowError as exc:
        raise WindowError(f"{exc}; or pass --skip-short to leave out the series that are too "
                          f"short") from None
    if config.season and config.season > 1:
        # the M4 seasonality test needs three seasons of a training part: a series with
        # fewer is neither deseasonalised nor given a naive 2 with indices
        short = [name for name, sp in splits.items() if sp.train < 3 * config.season]
        if short:
            names = ", ".join(repr(n) for n in short[:5]) + (", ..." if len(short) > 5 else "")
            print(f"--season {config.season}: the seasonality test needs three seasons "
                  f"({3 * config.season} steps) of a training part; {len(short)} of "
                  f"{len(splits)} series {'has' if len(short) == 1 else 'have'} fewer "
                  f"({names}, at most "
                  f"{max(splits[n].train for n in short)}), so they are treated as not "
                  f"seasonal", file=sys.stderr)
    check_network_fits(args, 1, config.horizon)
    out = output_folder(args, REPORT_FILES)
    status(args, f"{len(panel)} series from {panel.source}; one {args.model.upper()} "
                 f"{args.layers}x{args.hidden} for all: horizon {config.horizon}, transform "
                 f"{config.transform}, per-series scaling")

    def announce(i, n, cfg):
        if n > 1:
            base = "a linear AR per series" if cfg.base == "ar" else "no base"
            status(args, f"candidate {i + 1}/{n}: lookback {cfg.lookback}, {base}")

    progress = Progress(out / "metrics.jsonl", args.epochs, args.quiet)
    with stop_signals() as stop:
        try:
            gf, choice = train_global_default(
                panel, config, given, np.random.default_rng(args.seed), on_candidate=announce,
                on_epoch=progress, should_stop=lambda: stop.requested, cands=cands,
                hidden_size=args.hidden, num_layers=args.layers, cell=args.model,
                dropout=args.dropout, dtype=args.dtype, fit_config=fit_config_of(args))
        finally:
            progress.close()
    print(choice.explain())
    config = gf.config
    sm = gf.meta["summary"]
    save_before_scoring(gf, out / "model.ckpt", {"id": panel.id_column,
                                                 "time": panel.time_column,
                                                 "value": panel.value_column,
                                                 "missing": args.missing})
    ev = evaluate_panel(gf, panel, ets=args.ets)
    atomic_write_text(out / "forecasts.csv", panel_forecasts_csv(ev, panel))
    report = {"source": panel.source, "config": config.to_json(), "training": sm,
              "choice": choice.to_json(), "seed": args.seed, **panel_report(ev)}
    atomic_write_text(out / "report.json", json.dumps(report, indent=1))
    constant = [n for n, i in gf.info.items() if i.scale == 0]
    print(f"{gf.meta['train_windows']} training windows from {len(panel) - len(constant)} "
          f"series; best epoch {sm['best_epoch']} of {sm['epochs_run']} ({sm['status']}, "
          f"{sm['seconds']:.0f} s)")
    if constant:
        print(f"{len(constant)} series constant on their training part "
              f"({constant_names(gf.info, constant)}): forecast by their value, their windows "
              f"left out of training")
    print(format_panel(ev))
    print(format_coverage(ev))
    print(f"wrote {out / 'model.ckpt'}, {out / 'forecasts.csv'}, {out / 'report.json'}, "
          f"{out / 'metrics.jsonl'}" + ("" if args.no_plot else " (no plot of a panel" + (
              "; this folder holds one series: give its CSV file for the single-series run, "
              "which draws one)" if len(panel) == 1 else ")")))
    return stopped_by_signal(sm, stop) or 0


def cmd_global_predict(args, meta: dict) -> int:
    from ..training.checkpoint import atomic_write_text
    from .cli import check_log_inputs, missing_rule
    from .global_model import GlobalForecaster
    from .model import check_series_range, future_labels
    from .report import value_digits
    from .data import SeriesError
    from .panel import read_folder, read_long

    if args.csv is None:
        raise ValueError("a model of many series forecasts the series of a long-format CSV "
                         "or a folder of CSVs: pass CKPT CSV")
    gf = GlobalForecaster.load(args.checkpoint)
    # The model's columns, not a flag of this command, say how a file is read: a folder
    # is one series per CSV whatever the model was trained on; a file needs the model's id
    # column, which a model trained on a folder does not have.
    value, time, id_column = meta.get("value"), meta.get("time"), meta.get("id")
    missing = missing_rule(args, meta)
    if Path(args.csv).is_dir():
        panel = read_folder(args.csv, value, time, missing, gf.config.lookback,
                            observed_end=True, read_rows=gf.config.lookback)
    elif id_column is None:
        raise SeriesError(f"{args.csv!r} is a file, but the model was trained on a folder of "
                          f"CSVs (one series per file, column {value!r}): give such a folder")
    else:
        panel = read_long(args.csv, id_column, value, time, missing, gf.config.lookback,
                          observed_end=True, read_rows=gf.config.lookback)
    print_notes(panel)
    short = {name: why for name, s in panel.series.items()
             if (why := gf.too_short(name, len(s)))}
    if short and not args.skip_short:
        name = next(iter(short))
        raise SeriesError(f"series {name!r}: {short[name]}; pass --skip-short to leave out "
                          f"the series that are too short")
    panel = skip_short(panel, short)
    K = args.horizon or gf.config.horizon
    levels = sorted({lv for i in gf.info.values() if i.intervals for lv in i.intervals.width},
                    key=float)
    head = ["series", "step", "time", "forecast"]
    for lv in levels:
        pct = f"{float(lv) * 100:g}"
        head += [f"lo{pct}", f"hi{pct}"]
    buf = io.StringIO()  # through csv: a series name or time may hold a comma or a quote
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(head)
    for name, s in panel.series.items():
        check_series_range(s)
        if gf.config.transform == "log":  # a series not seen is scaled on all of it
            check_log_inputs(s, gf.config.lookback if name in gf.info else len(s),
                             f"series {name!r}, ")
        info = gf.series_info(name, s)  # fitted on the data given for a series not seen
        pred, seen = gf.forecast_next(name, s, K, info)
        iv = gf.info[name].intervals if seen else gf.panel_intervals()
        if not seen:
            alike = lookalike_trained(name, gf.info)
            print(f"series {name!r} was not in training"
                  + (f" (the model has {alike!r}: write the id as in training to forecast it "
                     f"as that series)" if alike else "")
                  + ": its scale comes from the data given"
                  + ("" if iv else ", and it has no prediction intervals"), file=sys.stderr)
        window = s.target[-gf.config.lookback:][None, :, None]
        flat = info.scale  # the scale of a window with no change
        bounds = [iv.bounds(pred[None], lv, window, flat) if iv and lv in iv.width else None
                  for lv in levels]
        labels = future_labels(s.time, K)
        d = value_digits(s.target)
        for k in range(K):
            cells = [name, str(k + 1), labels[k], f"{pred[k]:.{d}g}"]
            for b in bounds:
                cells += (["", ""] if b is None
                          else [f"{b[0][0, k]:.{d}g}", f"{b[1][0, k]:.{d}g}"])
            w.writerow(cells)
    text = buf.getvalue()
    print(f"{K}-step forecasts of {len(panel)} series after their last rows in {args.csv}:",
          file=sys.stderr)
    sys.stdout.write(text)
    if args.out:
        atomic_write_text(args.out, text)
        print(f"wrote {args.out}", file=sys.stderr)
    return 0
