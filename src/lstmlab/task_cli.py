"""What the task commands ``lstmlab forecast`` and ``lstmlab classify`` share.

Both train a network on a user's data into a run folder (``--out``), so they take the same
network options and report training the same way. This module holds:

* :func:`add_network_options` — ``--model``, ``--hidden``, ``--layers``, ... ``--seed``,
  ``--quiet`` — and :func:`fit_config_of`, the ``FitConfig`` they describe;
* :func:`check_network_fits` — ``--hidden``/``--layers`` refused when too large for memory;
* :func:`output_folder` — ``--out``, created, and what it holds replaced only with ``--force``;
* :func:`status` — a line on stderr that ``--quiet`` leaves out;
* :class:`Progress` — per-epoch records to OUT/metrics.jsonl and the progress line;
* :func:`stopped_by_signal` — the exit code of a run that Ctrl-C or SIGTERM ended early.

Each command's own help, parser and work are in :mod:`lstmlab.forecast.cli`,
:mod:`lstmlab.forecast.global_cli` and :mod:`lstmlab.classify.cli`. The character model's
commands (:mod:`lstmlab.charlm_cli`) have their own run folder checks and status line (in a
data-parallel run rank 0 speaks for all). This module imports training code only inside its
functions, so ``lstmlab --help`` stays light.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from ._argtypes import fraction as _fraction
from ._argtypes import nonneg_float as _nonneg
from ._argtypes import nonneg_int as _nonneg_int
from ._argtypes import pos_float as _posfloat
from ._argtypes import positive_int as _positive
from ._argtypes import seed as _seed


def add_network_options(p, hidden: int = 32, epochs: int = 300, lr: float = 3e-3,
                        patience: int = 50, models=("lstm", "gru", "rnn"),
                        hidden_help: str | None = None, batch_size: int = 32,
                        epochs_help: str | None = None,
                        quiet_help: str = "no progress line") -> None:
    """Network and training options shared by the forecast and classify commands."""
    p.add_argument("--model", choices=list(models), default=models[0],
                   help=f"network (default {models[0]})")
    p.add_argument("--hidden", type=_positive, default=hidden,
                   help=hidden_help or f"hidden units per layer (default {hidden})")
    p.add_argument("--layers", type=_positive, default=1, help="stacked layers (default 1)")
    p.add_argument("--dropout", type=_fraction, default=0.0, help="dropout between layers (default 0)")
    p.add_argument("--epochs", type=_positive, default=epochs,
                   help=epochs_help or f"most passes over the data (default {epochs})")
    p.add_argument("--batch-size", type=_positive, default=batch_size,
                   help=f"sequences per update (default {batch_size})")
    p.add_argument("--lr", type=_posfloat, default=lr, help=f"Adam learning rate, cosine-decayed (default {lr:g})")
    p.add_argument("--weight-decay", type=_nonneg, default=0.0, help="AdamW weight decay (default 0)")
    p.add_argument("--clip", type=_nonneg, default=1.0, help="gradient-norm clip, 0 = off (default 1)")
    p.add_argument("--patience", type=_nonneg_int, default=patience,
                   help=f"stop after N epochs without validation improvement, 0 = never (default {patience})")
    p.add_argument("--dtype", choices=["float32", "float64"], default="float32",
                   help="default float32")
    p.add_argument("--seed", type=_seed, default=0, help="random seed (default 0)")
    p.add_argument("--quiet", action="store_true", help=quiet_help)


def fit_config_of(args):
    """The training settings that :func:`add_network_options` put in ``args``."""
    from .training.supervised import FitConfig

    return FitConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                     weight_decay=args.weight_decay, clip=args.clip, patience=args.patience)


def check_network_fits(args, inputs: int, outputs: int) -> None:
    """Refuse --hidden/--layers too large for this machine before the network is built
    (see ``lstmlab._memory``): the recurrent stack and a linear head of ``outputs``."""
    from ._memory import check_training_fits, recurrent_params

    n = (recurrent_params(args.model, inputs, args.hidden, args.layers)
         + args.hidden * outputs + outputs)
    check_training_fits(n, args.dtype, 4, {"--hidden": args.hidden, "--layers": args.layers},
                        "weights, gradients, two Adam moments")


def output_folder(args, writes: tuple = ()) -> Path:
    """``--out``, created, once it is clear that no run there is overwritten without
    ``--force``: a forecaster's or classifier's (model.ckpt) or a char-LM's of ``lstmlab
    train`` (last.ckpt, best.ckpt), whose metrics.jsonl this run would replace, nor any file
    named in ``writes`` (the run's other files: a report.json of the user's own, say).

    With ``--force`` the run there is removed here, before this run writes its first
    metrics line: its model, checkpoints, log and the files in ``writes``. A run stopped
    at once (a second Ctrl-C) or killed then leaves only its own files, never its log
    beside the replaced run's model and reports."""
    out = Path(args.out)
    held = [name for name in ("model.ckpt", "last.ckpt", "best.ckpt") if (out / name).exists()]
    if held and not args.force:
        raise ValueError(f"--out {out} already holds a model ({', '.join(held)}); choose another "
                         f"--out or pass --force to overwrite it (nothing was overwritten)")
    other = [name for name in writes if (out / name).exists()]
    if other and not args.force:
        raise ValueError(f"--out {out} already holds {', '.join(other)}, which this run writes; "
                         f"choose another --out or pass --force to overwrite "
                         f"{'it' if len(other) == 1 else 'them'} (nothing was overwritten)")
    out.mkdir(parents=True, exist_ok=True)
    if held or other:  # (only with --force)
        replaced = [name for name in dict.fromkeys([*held, *other, "metrics.jsonl"])
                    if (out / name).exists()]
        for name in replaced:
            (out / name).unlink()
        print(f"--force: removed {', '.join(replaced)} from {out}; this run writes its own",
              file=sys.stderr)
    return out


def status(args, text: str) -> None:
    """A line on stderr saying what the run is doing, left out with --quiet, which keeps
    the result (stdout), the notes that warn about the data, and the errors."""
    if not args.quiet:
        print(text, file=sys.stderr)


class Progress:
    """Per-epoch records to OUT/metrics.jsonl and a progress line on stderr."""

    def __init__(self, path: Path | None, epochs: int, quiet: bool):
        self.f = open(path, "w", encoding="utf-8", newline="\n") if path else None
        self.epochs, self.quiet = epochs, quiet

    def __call__(self, record: dict) -> None:
        from ._streams import rewritten

        if self.f:
            self.f.write(json.dumps(record) + "\n")
        if self.quiet:
            return
        e = record["epoch"]
        if e == 1 or e % 10 == 0 or e == self.epochs:
            line = f"epoch {e}/{self.epochs}  train loss {record['train_loss']:.4f}"
            if "val_loss" in record:
                line += f"  val loss {record['val_loss']:.4f}"
            if sys.stderr.isatty():  # one line, rewritten in place, as wide as the terminal
                print(rewritten(line, widest=70), end="", file=sys.stderr, flush=True)
            else:
                print(line, file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.f:
            self.f.close()
        if not self.quiet and sys.stderr.isatty():
            print(file=sys.stderr)


def stopped_by_signal(summary: dict, stop) -> int | None:
    """The exit code 128 + N when a stop signal N ended training early (after the caller has
    saved what it trains), else None; says so on stderr."""
    if not stop.requested:
        return None
    print(f"interrupted ({stop.name}) in epoch {summary['epochs_run']}: kept the best epoch so "
          f"far ({summary['best_epoch']}); its model and reports are written", file=sys.stderr)
    return stop.exit_code
