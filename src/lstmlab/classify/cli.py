"""``lstmlab classify train|predict``: argument parsing and the two commands."""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from pathlib import Path

from ..forecast.cli import (_Progress, _fit_config, _fraction, add_network_options,
                            check_network_fits, stopped_by_signal)

CLASSIFY_HELP = """\
Label whole sequences with an LSTM (or RNN): a long-format CSV (sequence id, time order,
features, label) or UCR/UEA .ts files; sequences may differ in length.

  train      fit, then report accuracy and the confusion matrix on a test set
  predict    label the sequences of a file with a trained model
"""

TRAIN_HELP = """\
Train a sequence classifier. DATA is a CSV file (one row per time step: --id, optional
--time, feature columns, --label), a UCR/UEA .ts file, or a UCR/UEA problem folder holding
NAME_TRAIN.ts and NAME_TEST.ts. The test set is --test, the folder's _TEST.ts, or else a
stratified --test-fraction of DATA; a stratified --val-fraction of the rest picks the epoch.

Writes OUT/model.ckpt, OUT/metrics.jsonl, OUT/predictions.csv (test set) and OUT/report.json;
prints the test accuracy, the majority-class baseline and the confusion matrix.
With no DATA it trains on scikit-learn's 8x8 digits read row by row (8 steps of 8 pixels),
if scikit-learn is installed.

examples:
  lstmlab classify train --out runs/digits                       # sklearn digits
  lstmlab classify train Univariate_ts/GunPoint --out runs/gunpoint
  lstmlab classify train motions.csv --id trial --time t --label activity --readout mean
"""

PREDICT_HELP = """\
Label the sequences in DATA (CSV or .ts; same features as in training). Writes id, predicted
label and class probabilities (to --out, or stdout); if DATA has labels, also prints the
accuracy and the confusion matrix.

example:
  lstmlab classify predict runs/gunpoint/model.ckpt GunPoint_TEST.ts --out labels.csv
"""


def _add_data_options(p) -> None:
    p.add_argument("--id", dest="id_col", default="id", help="CSV sequence-id column (default id)")
    p.add_argument("--time", dest="time_col", default=None, help="CSV time-order column (default: row order)")
    p.add_argument("--label", dest="label_col", default="label", help="CSV label column (default label)")
    p.add_argument("--features", default=None,
                   help="CSV feature columns, comma-separated (default: all the others)")
    p.add_argument("--missing", choices=["refuse", "ffill", "interpolate"], default="refuse",
                   help="missing values inside a sequence: error (default), carry forward, interpolate")


def add_classify_parser(sub) -> None:
    c = sub.add_parser("classify", help="label sequences (CSV or UCR/UEA .ts)",
                       description=CLASSIFY_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    csub = c.add_subparsers(dest="classify_command", metavar="ACTION")
    c.set_defaults(func=lambda args: (c.print_help(sys.stderr), 2)[1])

    t = csub.add_parser("train", help="train and report test accuracy", description=TRAIN_HELP,
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    t.add_argument("data", nargs="?", metavar="DATA", help="CSV, .ts file or UCR/UEA folder "
                   "(default: scikit-learn digits)")
    t.add_argument("--test", default=None, metavar="FILE", help="test set (CSV or .ts)")
    _add_data_options(t)
    t.add_argument("--readout", choices=["last", "mean"], default="last",
                   help="classify from the last state or the mean over steps (default last)")
    t.add_argument("--val-fraction", type=_fraction, default=0.15, help="validation share (default 0.15)")
    t.add_argument("--test-fraction", type=_fraction, default=0.2,
                   help="test share when no test set is given (default 0.2)")
    add_network_options(t, hidden=64, epochs=100, lr=1e-2, patience=20)
    t.add_argument("--out", default="runs/classify", help="run directory (default runs/classify)")
    t.add_argument("--force", action="store_true", help="overwrite a run already in --out")
    t.set_defaults(func=cmd_classify_train)

    p = csub.add_parser("predict", help="label sequences with a trained model",
                        description=PREDICT_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint", metavar="CKPT")
    p.add_argument("data", metavar="DATA")
    _add_data_options(p)
    p.add_argument("--out", default=None, help="write the predictions CSV here (default stdout)")
    p.set_defaults(func=cmd_classify_predict)


def _csv_options(args) -> dict:
    feats = [f.strip() for f in args.features.split(",")] if args.features else None
    return dict(id_col=args.id_col, label_col=args.label_col, time_col=args.time_col,
                features=feats, missing=args.missing)


def _predictions_csv(model, data, proba) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    has = data.labels is not None
    w.writerow(["id", "predicted"] + (["label"] if has else []) + [f"p_{c}" for c in model.classes])
    for i, sid in enumerate(data.ids):
        w.writerow([sid, model.classes[int(proba[i].argmax())]] + ([data.labels[i]] if has else [])
                   + [f"{p:.4f}" for p in proba[i]])
    return buf.getvalue()


def _print_evaluation(model, res: dict, what: str) -> None:
    from .model import format_confusion

    print(f"{what}: accuracy {res['accuracy']:.4f} on {res['n']} sequences "
          f"(majority-class baseline {res['majority_accuracy']:.4f})")
    print(format_confusion(res["confusion"], model.classes))


def cmd_classify_train(args) -> int:
    import numpy as np

    from ..training.checkpoint import atomic_write_text
    from .data import digits_sequences, read_sequences, ucr_pair
    from ..training.signals import stop_signals
    from .model import SequenceClassifier, check_feature_range, stratified_split

    rng = np.random.default_rng(args.seed)
    opts = _csv_options(args)
    test = None
    if args.data is None:
        data = digits_sequences()
        print(f"no DATA given: using {data.source}, {len(data)} sequences", file=sys.stderr)
    elif Path(args.data).is_dir():
        train_path, test_path = ucr_pair(args.data)
        data = read_sequences(train_path, **opts)
        test = read_sequences(test_path, **opts) if test_path else None
    else:
        data = read_sequences(args.data, **opts)
    if args.test:
        test = read_sequences(args.test, **opts)
    for note in data.notes + (test.notes if test else []):
        print(f"missing values: {note}", file=sys.stderr)
    check_feature_range(data)
    if test is not None:
        check_feature_range(test, spread=False)
    if test is None:
        if len(set(data.labels)) < 2:
            raise ValueError(f"the data has only one class ({data.labels[0]!r}); a classifier "
                             f"needs at least two classes")
        keep, held = stratified_split(data.labels, args.test_fraction, rng)
        if len(held) == 0:
            raise ValueError("no test set: pass --test FILE or a --test-fraction > 0")
        data, test = data.subset(keep), data.subset(held)
    check_network_fits(args, data.num_features, len(set(data.labels)))
    out = Path(args.out)
    if (out / "model.ckpt").exists() and not args.force:
        raise ValueError(f"--out {out} already holds a model; choose another --out or pass "
                         f"--force to overwrite it (nothing was overwritten)")
    out.mkdir(parents=True, exist_ok=True)
    lengths = data.lengths
    print(f"training on {len(data)} sequences (lengths {lengths.min()}..{lengths.max()}, "
          f"{data.num_features} feature(s)), {len(set(data.labels))} classes; testing on "
          f"{len(test)}; {args.model.upper()} {args.layers}x{args.hidden}, readout {args.readout}",
          file=sys.stderr)
    progress = _Progress(out / "metrics.jsonl", args.epochs, args.quiet)
    with stop_signals() as stop:  # Ctrl-C / SIGTERM: stop after the batch, save, exit 128 + N
        try:
            model = SequenceClassifier.train(data, rng, readout=args.readout,
                                             hidden_size=args.hidden, num_layers=args.layers,
                                             cell=args.model, dropout=args.dropout,
                                             dtype=args.dtype, val_fraction=args.val_fraction,
                                             fit_config=_fit_config(args), on_epoch=progress,
                                             should_stop=lambda: stop.requested)
        finally:
            progress.close()
    res = model.evaluate(test)
    sm = model.meta["summary"]
    model.save(out / "model.ckpt", extra={"csv_options": {k: v for k, v in opts.items()
                                                          if k != "missing"},
                                          "test_accuracy": res["accuracy"]})
    proba = model.predict_proba(test)
    atomic_write_text(out / "predictions.csv", _predictions_csv(model, test, proba))
    report = {"train": data.source, "n_train": model.meta["data"]["n_train"],
              "n_val": model.meta["data"]["n_val"], "n_test": res["n"],
              "classes": model.classes, "accuracy": res["accuracy"],
              "majority_accuracy": res["majority_accuracy"],
              "confusion": res["confusion"].tolist(), "training": sm, "seed": args.seed}
    atomic_write_text(out / "report.json", json.dumps(report, indent=1))
    print(f"best epoch {sm['best_epoch']} of {sm['epochs_run']} ({sm['status']}, "
          f"{sm['seconds']:.0f} s)")
    _print_evaluation(model, res, "test")
    print(f"wrote {out / 'model.ckpt'}, {out / 'predictions.csv'}, {out / 'report.json'}")
    return stopped_by_signal(sm, stop) or 0


def cmd_classify_predict(args) -> int:
    from ..training.checkpoint import atomic_write_text
    from .data import read_sequences
    from .model import SequenceClassifier, check_feature_range

    model = SequenceClassifier.load(args.checkpoint)
    data = read_sequences(args.data, require_labels=False, **_csv_options(args))
    check_feature_range(data, spread=False)
    proba = model.predict_proba(data)
    text = _predictions_csv(model, data, proba)
    if args.out:
        atomic_write_text(args.out, text)
        print(f"wrote {len(data)} predictions to {args.out}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    if data.labels is not None:
        known = set(model.classes)
        if all(lab in known for lab in data.labels):
            _print_evaluation(model, model.evaluate(data), str(args.data))
    return 0
