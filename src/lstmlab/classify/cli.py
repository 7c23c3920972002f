"""``lstmlab classify train|predict``: argument parsing and the two commands."""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from dataclasses import replace
from pathlib import Path

from .._argtypes import column_name as _column_name
from .._argtypes import column_names as _column_names
from .._argtypes import fraction as _fraction
from ..layers.seqnet import CELLS
from .._argtypes import input_path as _input_path
from .._argtypes import nonneg_int as _nonneg_int
from .._argtypes import output_dir as _output_dir
from .._argtypes import output_file as _output_file
from .._argtypes import positive_int as _positive
from .._argtypes import refuse_idle_dropout, refuse_overwriting_inputs, refuse_standard_input
from ..task_cli import (Progress, add_network_options, check_network_fits, fit_config_of,
                        output_folder, status, stopped_by_signal)
from .defaults import (AUTO_VAL_MIN, CHECKPOINTS, FILTERS, MIN_EPOCHS, MIN_UPDATES, MODELS,
                       PATIENCE, PLATEAU_EPOCHS, SCHEDULES, SETTING_MODELS, TEST_FRACTION,
                       default_epochs)

CLASSIFY_HELP = """\
Label whole sequences with LSTM-FCN (default), an LSTM or an RNN: a long-format CSV
(sequence id, time order, features, label) or UCR/UEA .ts files; sequences may differ in
length.

  train      fit, then report accuracy and the confusion matrix on a test set
  predict    label the sequences of a file with a trained model
"""

TRAIN_HELP = """\
Train a sequence classifier. DATA is a CSV file (one row per time step: --id, optional
--time, feature columns, --label), a UCR/UEA .ts file, or a UCR/UEA problem folder holding
NAME_TRAIN.ts and NAME_TEST.ts (names in any letter case). The test set is --test, the
folder's _TEST.ts, or else a stratified --test-fraction of DATA. Univariate series are
z-normalised (--znorm). With 300 or more training sequences a stratified 15 % picks the
epoch; with fewer, training runs all --epochs on every sequence and keeps the last
(--val-fraction F sets the hold-out).
--hidden (and for lstm/gru/rnn --readout), when not given, are chosen first (--no-select: 8 or
64, last): each candidate trains on part of the training set and is scored on the rest (15 %,
or a third below 300 sequences); the report says what was chosen and why.
--model: lstm-fcn (the default: convolutional and LSTM branches), fcn (the convolutional
branch alone, for measuring what the LSTM branch adds), lstm, gru or rnn (a recurrent stack).
--checkpoint train-loss, --lr-schedule plateau and --class-weight balanced are the LSTM-FCN
authors' training protocol (with --lr 1e-3 --batch-size 128 --epochs 2000 --clip 0).

Writes OUT/model.ckpt, OUT/metrics.jsonl, OUT/predictions.csv (test set) and OUT/report.json;
prints the test accuracy beside 1NN-Euclidean, 1NN-DTW and the majority class (best marked),
each ensemble member's accuracy, and the confusion matrix.
With no DATA it trains on scikit-learn's 8x8 digits read row by row (8 steps of 8 pixels),
if scikit-learn is installed.

examples:
  lstmlab classify train --out runs/digits                       # sklearn digits
  lstmlab classify train Univariate_ts/GunPoint --out runs/gunpoint
  lstmlab classify train Univariate_ts/GunPoint --ensemble 3 --out runs/gunpoint3
  lstmlab classify train Univariate_ts/GunPoint --model fcn --out runs/gunpoint-fcn
  lstmlab classify train motions.csv --id trial --time t --label activity --model lstm --readout mean
"""

PREDICT_HELP = """\
Label the sequences in DATA (CSV, .ts, or a UCR/UEA problem folder, whose NAME_TEST.ts is
read; same features as in training). The CSV column names (--id, --time, --label, --features)
and --missing default to those the model was trained with. Writes id,
predicted label and class probabilities (to --out, or stdout); if DATA has labels, also
prints the accuracy and the confusion matrix (to stderr when the CSV goes to stdout).

example:
  lstmlab classify predict runs/gunpoint/model.ckpt GunPoint_TEST.ts --out labels.csv
"""


def _add_data_options(p, stored: str = "") -> None:
    p.add_argument("--id", dest="id_col", type=_column_name, default=None,
                   help=f"CSV sequence-id column (default{stored} id)")
    p.add_argument("--time", dest="time_col", default=None,
                   help=f"CSV time-order column (default{stored} row order"
                   + ("; '' keeps the row order of a file without it)" if stored else ")"))
    p.add_argument("--label", dest="label_col", type=_column_name, default=None,
                   help=f"CSV label column (default{stored} label)")
    p.add_argument("--features", type=_column_names, default=None,
                   help=f"CSV feature columns, comma-separated (default{stored} all the others)")
    p.add_argument("--missing", choices=["refuse", "ffill", "interpolate"], default=None,
                   help=f"missing values inside a sequence: error, carry forward, interpolate "
                        f"(default{stored} refuse)")


def add_classify_parser(sub) -> None:
    c = sub.add_parser("classify", help="label sequences (CSV or UCR/UEA .ts)",
                       description=CLASSIFY_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    csub = c.add_subparsers(dest="classify_command", metavar="ACTION")
    c.set_defaults(func=lambda args: (c.print_help(sys.stderr), 2)[1])

    t = csub.add_parser("train", help="train and report test accuracy", description=TRAIN_HELP,
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    t.add_argument("data", nargs="?", metavar="DATA", type=_input_path, help="CSV, .ts file or UCR/UEA folder "
                   "(default: scikit-learn digits)")
    t.add_argument("--test", default=None, metavar="FILE", type=_input_path, help="test set (CSV, .ts, or a UCR/UEA problem folder: its NAME_TEST.ts)")
    _add_data_options(t)
    add_network_options(t, hidden=None, epochs=None, lr=3e-3, patience=PATIENCE, batch_size=16,
                        models=MODELS, hidden_help="LSTM units (default: chosen on held-out "
                        "training data from 8, 64 for lstm-fcn, 32, 64 for lstm, gru and rnn; with "
                        "--no-select 8 and 64; fcn has none)",
                        epochs_help=f"passes over the data (default: enough for {MIN_UPDATES} "
                        f"updates, at least {MIN_EPOCHS})",
                        quiet_help="print the result, the notes on the data and errors only: "
                        "no progress line, candidates or training summary on stderr")
    t.set_defaults(patience=None)  # PATIENCE, where there is a validation loss to stop on
    t.add_argument("--readout", choices=["last", "mean"], default=None,
                   help="lstm/gru/rnn: classify from the last state or the mean over steps "
                   "(default: chosen on held-out training data; with --no-select last)")
    t.add_argument("--select", action=argparse.BooleanOptionalAction, default=True,
                   help="choose --hidden and --readout, those not given, on held-out training "
                   "data (default: on)")
    t.add_argument("--filters", type=_filters, default=None,
                   help="lstm-fcn, fcn: filters of the three convolution blocks (default "
                   f"{','.join(map(str, FILTERS))}; "
                   "the paper's 128,256,128 costs 16x the arithmetic)")
    t.add_argument("--bidirectional", action="store_true",
                   help="lstm-fcn: a bidirectional LSTM branch")
    t.add_argument("--ensemble", type=_positive, default=1, metavar="K",
                   help="train K networks from K seeds and average them (default 1)")
    t.add_argument("--znorm", choices=["auto", "on", "off"], default="auto",
                   help="z-normalise each series: auto (default) = for univariate data only")
    t.add_argument("--val-fraction", type=_fraction, default=None,
                   help=f"validation share that picks the epoch (default 0.15 with >= "
                   f"{AUTO_VAL_MIN} training sequences, else none)")
    t.add_argument("--checkpoint", choices=CHECKPOINTS, default="auto",
                   help="the epoch kept: auto (default) = lowest validation loss with a "
                   "hold-out, else the last; train-loss = lowest training loss, nothing held out")
    t.add_argument("--lr-schedule", choices=SCHEDULES, default="cosine",
                   help="cosine (default): --lr cosine-decayed to a tenth over all updates; "
                   "plateau: --lr divided by the cube root of 2 after --plateau-epochs epochs "
                   "without a lower training loss, down to a tenth")
    t.add_argument("--plateau-epochs", type=_positive, default=None, metavar="N",
                   help="--lr-schedule plateau: epochs without a lower training loss before "
                   f"each cut (default {PLATEAU_EPOCHS})")
    t.add_argument("--class-weight", choices=["none", "balanced"], default="none",
                   help="balanced: weight each sequence's loss by n / (classes x its class's "
                   "count) (default none)")
    t.add_argument("--test-fraction", type=_fraction, default=None,
                   help=f"test share when no test set is given (default {TEST_FRACTION})")
    t.add_argument("--dtw-window", type=_nonneg_int, default=None, metavar="W",
                   help="1NN-DTW baseline: Sakoe-Chiba band of W steps (default: no band)")
    t.add_argument("--no-baselines", dest="baselines", action="store_false",
                   help="skip the 1NN-Euclidean and 1NN-DTW baselines")
    t.add_argument("--out", default="runs/classify", type=_output_dir,
                   help="run directory (default runs/classify)")
    t.add_argument("--force", action="store_true", help="overwrite a run already in --out")
    t.set_defaults(func=cmd_classify_train)

    p = csub.add_parser("predict", help="label sequences with a trained model",
                        description=PREDICT_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint", metavar="CKPT", type=_input_path)
    p.add_argument("data", metavar="DATA", type=_input_path)
    _add_data_options(p, stored=": as in training, else")
    p.add_argument("--out", default=None, type=_output_file,
                   help="write the predictions CSV here (default, or -: stdout)")
    p.set_defaults(func=cmd_classify_predict)


def _filters(text: str) -> tuple:
    parts = text.split(",")
    if len(parts) != 3 or not all(p.strip().isascii() and p.strip().isdigit() and int(p) > 0
                                  for p in parts):
        raise argparse.ArgumentTypeError(f"expected three positive integers separated by "
                                         f"commas (e.g. 32,64,32), got {text!r}")
    return tuple(int(p) for p in parts)


def _csv_options(args, stored: dict | None = None) -> dict:
    """The CSV reading options: those given on the command line, else ``stored`` (a
    checkpoint's), else the defaults."""
    stored = stored or {}
    feats = args.features or stored.get("features")
    return dict(id_col=args.id_col or stored.get("id_col") or "id",
                label_col=args.label_col or stored.get("label_col") or "label",
                time_col=(None if args.time_col == "" else  # '': the row order, not the stored
                          args.time_col or stored.get("time_col")), features=feats,
                missing=args.missing or stored.get("missing") or "refuse")


def _test_options(opts: dict, data, data_path, path) -> dict:
    """The options that read the test set ``path``: a CSV beside CSV training data read
    without --features takes the training data's features by name, as predict does, and a
    note names the columns it leaves out (a harmless extra column, a subject's name, is no
    reason to stop; one the training data lacks cannot be an input); else ``opts``."""
    if opts["features"] is not None or not (_is_csv(data_path) and _is_csv(path)):
        return opts
    return {**opts, "features": list(data.features), "note_unread": True}


def _predictions_csv(model, data, proba) -> str:
    """One row per sequence: id, predicted label, the label if known, and each class's
    probability in full (shortest round-trip) precision, so that a row sums to 1 and a
    small probability stays above 0 for a log loss read from the file."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    has = data.labels is not None
    w.writerow(["id", "predicted"] + (["label"] if has else []) + [f"p_{c}" for c in model.classes])
    for i, sid in enumerate(data.ids):
        w.writerow([sid, model.classes[int(proba[i].argmax())]] + ([data.labels[i]] if has else [])
                   + [repr(float(p)) for p in proba[i]])
    return buf.getvalue()


def _print_evaluation(model, res: dict, what: str, file=None) -> None:
    from .._words import counted
    from .model import format_confusion

    print(f"{what}: accuracy {res['accuracy']:.4f} on {counted(res['n'], 'sequence')} "
          f"(majority-class baseline {res['majority_accuracy']:.4f})", file=file)
    print(format_confusion(res["confusion"], model.classes), file=file)


def _check_fits(args, data, classes: int, hidden: int) -> None:
    """Refuse sizes beyond this machine's memory before building the network (``hidden``
    units, the largest candidate's)."""
    args = argparse.Namespace(**{**vars(args), "hidden": hidden})
    if args.model not in ("lstm-fcn", "fcn"):
        check_network_fits(args, data.num_features, classes)
        return
    from .._memory import check_training_fits
    from .lstm_fcn import LSTMFCNConfig, lstmfcn_param_count

    config = LSTMFCNConfig(input_size=data.num_features, output_size=classes,
                           length=int(data.lengths.max()), hidden_size=args.hidden,
                           filters=args.filters, bidirectional=args.bidirectional,
                           lstm_branch=args.model == "lstm-fcn")
    check_training_fits(lstmfcn_param_count(config) * args.ensemble, args.dtype, 4,
                        {"--hidden": args.hidden, "--filters": ",".join(map(str, args.filters))},
                        "weights, gradients, two Adam moments")


def _comparison(model, res: dict, baselines: dict, window) -> list[tuple[str, float]]:
    """(name, accuracy) rows: the model, the baselines and the majority class."""
    name = model.architecture + (f" ensemble of {len(model.nets)}" if len(model.nets) > 1 else "")
    rows = [(name, res["accuracy"])]
    band = "full window" if window is None else f"window {window}"
    rows += [(label, baselines[key]) for key, label in
             (("1nn_euclidean", "1NN-Euclidean"), ("1nn_dtw", f"1NN-DTW ({band})"))
             if key in baselines]  # (a stopped run has not all of them)
    return rows + [("majority class", res["majority_accuracy"])]


def _print_comparison(rows, res: dict) -> None:
    import numpy as np

    best = max(acc for _, acc in rows)
    width = max(len(n) for n, _ in rows)
    print("test accuracy:")
    for name, acc in rows:
        print(f"  {name:<{width}}  {acc:.4f}" + ("  <- best" if acc == best else ""))
    members = res["member_accuracies"]
    if len(members) > 1:
        m = np.asarray(members)
        print(f"  members alone: {', '.join(f'{v:.4f}' for v in members)} (mean {m.mean():.4f}"
              f" ± {m.std():.4f}, range {m.min():.4f}-{m.max():.4f})")


def _is_csv(path) -> bool:
    """DATA read as a CSV file: given, and neither a .ts file nor a UCR/UEA folder."""
    return path is not None and not Path(path).is_dir() and Path(path).suffix.lower() != ".ts"


def _refuse_csv_options_without_csv(args, paths) -> None:
    """--id, --time, --label and --features name CSV columns: given when every file read is a
    .ts file (or a UCR/UEA folder), they would be ignored, and the user left believing, say,
    that --features chose the dimensions the model reads. --missing is refused with the
    digits (no DATA), which have no missing values to treat."""
    if all(p is None for p in paths) and getattr(args, "missing", None) is not None:
        raise ValueError("--missing says how to treat missing values in DATA, but no DATA is "
                         "given (the data is scikit-learn's digits, which has none); leave it "
                         "out")
    if any(_is_csv(p) for p in paths):
        return
    given = [flag for flag, value in (("--id", args.id_col), ("--time", args.time_col),
                                      ("--label", args.label_col), ("--features", args.features))
             if value is not None]
    if given:
        one = len(given) == 1
        files = [str(p) for p in paths if p is not None]
        what = (f"{' and '.join(files)} {'is' if len(files) == 1 else 'are'} .ts data, whose "
                f"dimensions and labels have fixed places" if files else
                "the data is scikit-learn's digits (no DATA given), which has no CSV columns")
        raise ValueError(f"{', '.join(given)} {'names a CSV column' if one else 'name CSV columns'}"
                         f", but {what}; leave {'it' if one else 'them'} out")


def _refuse_unused_options(args) -> None:
    """An option the chosen --model has no use for stops the command; silently dropped, it
    would leave the user believing, say, that the LSTM read the sequences both ways."""
    given = {"--bidirectional": ("bidirectional", args.bidirectional),
             "--readout": ("readout", args.readout is not None),
             "--hidden": ("hidden_size", args.hidden is not None),
             "--layers": ("num_layers", args.layers != 1),
             "--dropout": ("dropout", args.dropout > 0),
             "--filters": ("filters", args.filters is not None)}
    unused = {flag: on and args.model not in SETTING_MODELS[name]
              for flag, (name, on) in given.items()}
    # AdamW would shrink the batch-norm running statistics too
    unused["--weight-decay"] = args.weight_decay > 0 and args.model in ("lstm-fcn", "fcn")
    for flag, given in unused.items():
        if given:
            raise ValueError(f"{flag} is not an option of --model {args.model}; see "
                             f"'lstmlab classify train --help' for the models each option is for")
    from ..training.supervised import check_decay

    refuse_idle_dropout(args.dropout, args.layers)
    check_decay(args.lr, args.weight_decay)
    if args.plateau_epochs is not None and args.lr_schedule != "plateau":
        raise ValueError(f"--plateau-epochs {args.plateau_epochs} is an option of --lr-schedule "
                         f"plateau; with --lr-schedule {args.lr_schedule} it would do nothing")
    if args.dtw_window is not None and not args.baselines:
        raise ValueError(f"--dtw-window {args.dtw_window} sets the 1NN-DTW baseline's band, "
                         f"which --no-baselines skips; leave out one or the other")


def cmd_classify_train(args) -> int:
    import numpy as np

    from .._words import counted
    from ..training.signals import stop_signals
    from .data import (FeatureColumnError, class_order, digits_sequences, read_sequences,
                       same_number_hint, ucr_pair, ucr_test)
    from .model import SequenceClassifier, check_feature_range, feature_mismatch, stratified_split
    from .selection import candidates, choose, flags

    refuse_standard_input([args.data], "DATA")
    refuse_standard_input([args.test], "--test", "the test set")
    _refuse_unused_options(args)
    _refuse_csv_options_without_csv(args, [args.data, args.test])
    args.filters = args.filters or FILTERS  # (refused above where they do nothing)
    args.plateau_epochs = args.plateau_epochs or PLATEAU_EPOCHS
    rng = np.random.default_rng(args.seed)
    opts = _csv_options(args)
    test = None
    if args.data is None:
        data = digits_sequences()
        status(args, f"no DATA given: using {data.source}, {len(data)} sequences")
    elif Path(args.data).is_dir():
        train_path, test_path = ucr_pair(args.data)
        data = read_sequences(train_path, **opts)
        test = read_sequences(test_path, **opts) if test_path else None
    else:
        train_path = args.data
        data = read_sequences(args.data, **opts)
    if args.test:
        test_path = Path(args.test)
        if test_path.is_dir():  # a UCR/UEA problem folder, as predict takes it: its test set
            test_path = ucr_test(test_path)
            if test_path is None:
                raise ValueError(f"--test {args.test!r} is a UCR/UEA problem folder without a "
                                 f"NAME_TEST.ts; pass the test file itself instead")
        if args.data is not None and test_path.resolve() == Path(train_path).resolve():
            instead = (f"test on {test.source}" if test is not None else
                       "hold out a stratified --test-fraction")
            print(f"note: --test {args.test} is the training data itself ({train_path}): "
                  f"the test accuracy is measured on the sequences trained on; leave --test "
                  f"out to {instead}, or pass a file of other sequences", file=sys.stderr)
        test_opts = _test_options(opts, data, args.data, test_path)
        try:
            test = read_sequences(test_path, **test_opts)
        except FeatureColumnError as exc:
            if test_opts is opts:
                raise
            raise FeatureColumnError(f"{exc}; the test set is read by the training data's "
                                     f"features ({', '.join(data.features)}), taken by name, "
                                     f"as predict reads a file") from None
    for part in (data, test) if test else (data,):  # two files: say which a note is about
        for note in part.notes:
            print(f"{part.source}: {note}", file=sys.stderr)
    check_feature_range(data)
    if len(set(data.labels)) < 2:
        raise ValueError(f"the {'training ' if test is not None else ''}data has only one class "
                         f"({data.labels[0]!r}); a classifier needs at least two classes")
    if test is not None and args.test_fraction is not None:  # it would hold nothing out
        raise ValueError(f"--test-fraction {args.test_fraction:g} cannot go with a test set "
                         f"({test.source}, from "
                         f"{'--test' if args.test else 'the folder'}): the model is tested on it "
                         f"and nothing is split off; leave out one or the other")
    if args.test_fraction is None:
        args.test_fraction = TEST_FRACTION
    if test is not None:
        problem = feature_mismatch(data.features, test, f"the test set {test.source} has",
                                   "the training data")  # after training, the model is lost
        if problem:
            raise ValueError(problem)
        check_feature_range(test, spread=False)
        unseen = class_order(set(test.labels) - set(data.labels))
        if unseen:  # found only after training, the error would throw the trained model away
            raise ValueError(f"the test set {test.source} has labels that the training data "
                             f"does not have: {', '.join(map(repr, unseen[:5]))} (training "
                             f"classes: {', '.join(map(repr, class_order(data.labels)))}); "
                             f"a classifier can only predict the classes it was trained on"
                             f"{same_number_hint(unseen, data.labels)}")
    if test is None:
        keep, held = stratified_split(data.labels, args.test_fraction, rng)
        if len(held) == 0 and args.test_fraction > 0:  # a class keeps its only sequence
            raise ValueError(f"no test set: every class has a single sequence ({len(keep)} "
                             f"sequences), so --test-fraction {args.test_fraction:g} holds none "
                             f"out; pass --test FILE or more sequences per class")
        if len(held) == 0:
            raise ValueError("no test set: pass --test FILE or a --test-fraction > 0")
        data, test = data.subset(keep), data.subset(held)
    options = candidates(args.model, args.hidden, args.readout) if args.select else [{}]
    fixed = {"readout": args.readout or "last",  # what is not chosen (fcn: hidden unused)
             "hidden_size": args.hidden or (8 if args.model == "lstm-fcn" else 64)}
    _check_fits(args, data, len(set(data.labels)),
                max({**fixed, **o}["hidden_size"] for o in options))
    given_epochs = args.epochs
    if args.checkpoint == "train-loss" and args.val_fraction:
        raise ValueError(f"--val-fraction {args.val_fraction:g} cannot go with --checkpoint "
                         f"train-loss: the epoch is chosen on the training loss, so nothing "
                         f"is held out")

    def epochs_for(n: int) -> int:
        if given_epochs is not None:
            return given_epochs
        val = args.val_fraction if args.val_fraction is not None else (
            0.15 if n >= AUTO_VAL_MIN and args.checkpoint == "auto" else 0.0)
        return default_epochs(round(n * (1 - val)), args.batch_size)

    args.epochs = epochs_for(len(data))
    held_out = (args.val_fraction if args.val_fraction is not None else
                0.15 if len(data) >= AUTO_VAL_MIN and args.checkpoint == "auto" else 0.0) > 0
    if args.patience and not (held_out and args.checkpoint == "auto"):  # 0: never stops
        why = ("--checkpoint train-loss keeps the epoch of the lowest training loss"
               if args.checkpoint == "train-loss" else
               "--val-fraction 0 holds nothing out" if args.val_fraction is not None else
               f"nothing is held out ({len(data)} training sequences, fewer than "
               f"{AUTO_VAL_MIN}: --val-fraction F holds a share out)")
        raise ValueError(f"--patience {args.patience} stops training on the validation loss, "
                         f"but {why}; training runs every epoch")
    if args.patience is None:
        args.patience = PATIENCE
    znorm = {"on": True, "off": False}.get(args.znorm, data.num_features == 1)
    # z-normalised, a constant series becomes all zeros: its level, all it shows, is lost
    flat = sum(bool(np.all(np.ptp(s, axis=0) == 0)) for s in data.x) if znorm else 0
    if flat == len(data):  # (checked before --force clears the run in --out)
        raise ValueError(f"every training sequence is constant ({flat} of {len(data)}), and "
                         f"z-normalisation (--znorm {args.znorm}) turns each into zeros: the "
                         f"classes could not be told apart by their values; --znorm off keeps "
                         f"their levels")
    out = output_folder(args, ("report.json", "predictions.csv", "metrics.jsonl"))
    if flat:
        print(f"note: {flat} of {len(data)} training sequences are constant, and "
              f"z-normalisation turns each into zeros; --znorm off keeps their levels",
              file=sys.stderr)

    def train(part, generator, settings, **hooks):
        config = argparse.Namespace(**{**vars(args), "epochs": epochs_for(len(part))})
        network = {**fixed, **settings, "num_layers": args.layers, "dropout": args.dropout,
                   "filters": args.filters, "bidirectional": args.bidirectional}
        return SequenceClassifier.train(
            part, generator, cell=args.model, dtype=args.dtype, val_fraction=args.val_fraction,
            **{k: v for k, v in network.items() if args.model in SETTING_MODELS[k]},
            fit_config=replace(fit_config_of(config), schedule=args.lr_schedule,
                               plateau_epochs=args.plateau_epochs, checkpoint=args.checkpoint),
            znorm=znorm,
            class_weight=None if args.class_weight == "none" else args.class_weight, **hooks)

    selection = None
    with stop_signals() as stop:  # Ctrl-C / SIGTERM: stop after the batch, save, exit 128 + N
        if len(options) > 1:
            status(args, f"choosing {' / '.join(flags(o) for o in options)} on held-out "
                         f"training data")
            started = iter(range(1, len(options) + 1))

            def candidate(part, generator, settings):
                # each trains in silence: say which one, as it starts
                status(args, f"candidate {next(started)} of {len(options)}: {flags(settings)} "
                             f"({counted(len(part), 'sequence')}, "
                             f"{counted(epochs_for(len(part)), 'epoch')})")
                return train(part, generator, settings, should_stop=lambda: stop.requested)
            selection = choose(data, rng.spawn(1)[0], options, candidate)
            # its scores come once, in the result: on a terminal both streams show
            status(args, f"chose {flags(selection.chosen)} (the result gives every "
                         f"candidate's held-out scores)")
        chosen = options[0] if selection is None else selection.chosen
        final = {**fixed, **chosen}
        args.hidden, args.readout = final["hidden_size"], final["readout"]
        if selection is not None and stop.requested:
            model = _chosen_candidate(selection, data, out, stop)
        else:
            model = _train_final(args, data, test, train, chosen, rng, stop)
    return _finish(args, opts, out, data, test, model, znorm, selection, stop)


def _train_final(args, data, test, train, chosen: dict, rng, stop):
    """The model on the whole training set with the chosen settings, its epochs logged."""
    from .._words import counted

    lengths = data.lengths
    shape = (f"filters {','.join(map(str, args.filters))}, LSTM {args.hidden}"
             + (" bidirectional" if args.bidirectional else "") if args.model == "lstm-fcn"
             else f"filters {','.join(map(str, args.filters))}, no LSTM branch"
             if args.model == "fcn" else f"{args.layers}x{args.hidden}, readout {args.readout}")
    status(args, f"training on {len(data)} sequences (lengths {lengths.min()}..{lengths.max()}, "
                 f"{counted(data.num_features, 'feature')}), {len(set(data.labels))} classes; "
                 f"testing on {len(test)}; {args.model.upper()} {shape}"
                 + (f"; ensemble of {args.ensemble}" if args.ensemble > 1 else ""))
    progress = Progress(Path(args.out) / "metrics.jsonl", args.epochs, args.quiet)
    try:
        return train(data, rng, chosen, on_epoch=_naming_members(progress, args),
                     should_stop=lambda: stop.requested, ensemble=args.ensemble)
    finally:
        progress.close()


def _naming_members(progress, args):
    """``progress`` for each epoch's record; for an ensemble, a line naming each member as
    its training starts, else its epochs, counted again from 1, read as the first's."""
    if args.ensemble == 1 or args.quiet:
        return progress

    def log(record: dict) -> None:
        if record["epoch"] == 1:  # after a member's last line, which a terminal leaves open
            apart = "\n" if record["member"] and sys.stderr.isatty() else ""
            print(f"{apart}member {record['member'] + 1} of {args.ensemble}", file=sys.stderr)
        progress(record)

    return log


def _chosen_candidate(selection, data, out: Path, stop):
    """The model of a run stopped while choosing: the chosen candidate, trained on part of
    the training set, rather than a final model stopped before its first epoch (its initial
    weights). Its epochs were not logged: metrics.jsonl is left empty."""
    from ..training.checkpoint import atomic_write_text
    from .selection import flags

    print(f"interrupted ({stop.name}) while choosing: the model is the chosen candidate "
          f"({flags(selection.chosen)}), trained on {selection.n_fit} of the {len(data)} "
          f"training sequences", file=sys.stderr)
    atomic_write_text(out / "metrics.jsonl", "")
    return selection.model


DTW_NOTICE_CELLS = 10 ** 9  # DTW table cells from which the baseline says it is coming


def _finish(args, opts: dict, out: Path, data, test, model, znorm: bool, selection, stop) -> int:
    """Evaluate on the test set; write the model, then the predictions and the report beside
    the baselines; print the comparison.

    The model is written before the baselines run (1NN-DTW can take minutes), and they run
    under :func:`stop_signals`: Ctrl-C or SIGTERM there stops them between blocks of test
    sequences, the report leaves out those not finished, and the command exits 128 + N."""
    from ..training.checkpoint import atomic_write_text
    from ..training.signals import stop_signals
    from .baselines import baseline_accuracies, dtw_cells

    from .data import SequenceDataError

    stored = dict(opts)
    if _is_csv(args.data):  # predict reads these columns by name
        stored["features"] = list(data.features)
        # trained on every other column: a file to label with more has a column left out
        stored["features_given"] = opts["features"] is not None
    try:  # a test value the fitted scaler maps outside the dtype shows only now
        res = model.evaluate(test)
    except SequenceDataError as exc:  # the training is not lost with the test score
        model.save(out / "model.ckpt", extra={"csv_options": stored, "test_accuracy": None})
        raise SequenceDataError(f"{exc}; the trained model is written to "
                                f"{out / 'model.ckpt'}, without a test score") from None
    sm = model.meta["summary"]
    model.save(out / "model.ckpt", extra={"csv_options": stored,
                                          "test_accuracy": res["accuracy"]})
    baselines, halted = {}, None
    if args.baselines:
        cells = dtw_cells(test.lengths, data.lengths, args.dtw_window)
        if cells >= DTW_NOTICE_CELLS:  # seconds to hours with no output: say what is coming
            print(f"1NN-DTW baseline: {cells:.1e} table cells ({len(test)} test x {len(data)} "
                  f"training sequences of up to {int(data.lengths.max()):,} steps), which can "
                  f"take minutes; --dtw-window W bounds the work per pair, --no-baselines "
                  f"skips the baselines", file=sys.stderr)
        with stop_signals() as halt:
            baselines = baseline_accuracies(data, test, args.dtw_window, znorm=znorm,
                                            should_stop=lambda: halt.requested)
        if halt.requested:
            print(f"interrupted ({halt.name}) during the nearest-neighbour baselines: the model "
                  f"is written; the report leaves out the baselines not finished",
                  file=sys.stderr)
            halted = halt.exit_code
    proba = model.predict_proba(test)
    atomic_write_text(out / "predictions.csv", _predictions_csv(model, test, proba))
    report = {"train": data.source, "n_train": model.meta["data"]["n_train"],
              "n_val": model.meta["data"]["n_val"], "n_test": res["n"],
              "classes": model.classes, "model": model.architecture,
              "hidden_size": None if args.model == "fcn" else model.net.config.hidden_size,
              "readout": model.net.config.readout if args.model in CELLS else None,
              "selection": None if selection is None else selection.to_json(),
              "accuracy": res["accuracy"], "member_accuracies": res["member_accuracies"],
              "majority_accuracy": res["majority_accuracy"], "baselines": baselines,
              "dtw_window": args.dtw_window, "znorm": znorm,
              "confusion": res["confusion"].tolist(), "training": sm,
              "fit": model.fit_config.to_json(), "class_weights": model.meta["class_weights"],
              "seed": args.seed}
    atomic_write_text(out / "report.json", json.dumps(report, indent=1))
    if selection is not None:
        print(selection.describe())
    print(f"best epoch {sm['best_epoch']} of {sm['epochs_run']} ({sm['status']}, "
          f"{sm['seconds']:.0f} s)")
    _print_comparison(_comparison(model, res, baselines, args.dtw_window), res)
    _print_evaluation(model, res, "test")
    print(f"wrote {out / 'model.ckpt'}, {out / 'predictions.csv'}, {out / 'report.json'}, "
          f"{out / 'metrics.jsonl'}")
    stopped = _stopped_member(sm, stop, len(model.nets)) or stopped_by_signal(sm, stop)
    return stopped or halted or 0


def _stopped_member(summary: dict, stop, kept: int) -> int | None:
    """For an ensemble stopped in a member after the first: the exit code 128 + N, and on
    stderr which member stopped and what the model keeps (the members trained to the end);
    None otherwise (the message of a single model's stop applies)."""
    from .._words import counted

    members = summary.get("members") or []
    if not stop.requested or len(members) < 2 or members[-1]["status"] != "interrupted":
        return None
    print(f"interrupted ({stop.name}) in epoch {members[-1]['epochs_run']} of ensemble member "
          f"{len(members)}, which is left out: the ensemble keeps the "
          f"{counted(kept, 'member')} trained to the end; its model and reports are written",
          file=sys.stderr)
    return stop.exit_code


def _stored_column_hint(message: str, args, stored: dict) -> str:
    """``message`` of a column missing from the file to label, with where its name came from
    when the checkpoint gave it (the --id, --time or --features of training, not typed for
    this command): the user sees a name they never passed, and the flag that overrides it."""
    for flag, dest, what in (("--id", "id_col", "sequence-id column"),
                             ("--time", "time_col", "time column"),
                             ("--features", "features", "feature column")):
        if getattr(args, dest) is not None or not stored.get(dest):
            continue
        for name in stored[dest] if dest == "features" else [stored[dest]]:
            if f"{what} {name!r} is not in" in message:
                other = " (or --time '' to keep the file's row order)" if dest == "time_col" else ""
                return (f"{message}; {name!r} is the model's {flag}, stored in its checkpoint "
                        f"at training: pass {flag} to name this file's "
                        f"{'columns' if dest == 'features' else 'column'}{other}")
    return message


def cmd_classify_predict(args) -> int:
    from .._streams import require_stdout
    from .._words import counted
    from ..training.checkpoint import atomic_write_text
    from .data import (SequenceDataError, class_order, read_sequences, same_number_hint,
                       ucr_test)
    from .model import SequenceClassifier, check_feature_range

    if args.out == "-":  # the usual name for stdout, not a file named '-'
        args.out = None
    refuse_standard_input([args.data], "DATA")
    refuse_overwriting_inputs(args.out, "--out", {"CKPT": args.checkpoint, "DATA": args.data})
    if args.out is None:
        require_stdout("the predictions CSV", "pass --out FILE to write it to a file")
    _refuse_csv_options_without_csv(args, [args.data])
    path = args.data
    if Path(path).is_dir():  # a UCR/UEA problem folder: its test set
        path = ucr_test(path)
        if path is None:
            raise ValueError(f"DATA {args.data!r} is a UCR/UEA problem folder without a "
                             f"NAME_TEST.ts to label; pass the file to label instead")
    model = SequenceClassifier.load(args.checkpoint)
    stored = model.meta.get("csv_options") or {}
    # trained on every column besides id, time and label: a column beyond those is noted
    unread = args.features is None and stored.get("features_given") is False
    try:  # a --label typed for this file names a column it must have
        data = read_sequences(path, require_labels=False, **_csv_options(args, stored),
                              require_label_column=args.label_col is not None,
                              note_unread=unread)
    except SequenceDataError as exc:
        raise SequenceDataError(_stored_column_hint(str(exc), args, stored)) from None
    for note in data.notes:
        print(note, file=sys.stderr)
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
        unseen = class_order(lab for lab in data.labels if lab not in known)
        if not unseen:  # stdout carries the CSV unless --out is given
            _print_evaluation(model, model.evaluate(data), str(args.data),
                              file=sys.stdout if args.out else sys.stderr)
        else:  # an accuracy over the classes the model has would hide these sequences
            n = sum(lab not in known for lab in data.labels)
            print(f"no accuracy: {n} of {counted(len(data), 'sequence')} "
                  f"{'has' if n == 1 else 'have'} labels the model was not "
                  f"trained on ({', '.join(map(repr, unseen))}; its classes: "
                  f"{', '.join(model.classes)}){same_number_hint(unseen, known)}",
                  file=sys.stderr)
    return 0
