"""``lstmlab train|generate|evaluate``: the character-level language model's commands.

Their help texts, parsers and commands, and what ``train`` checks before a run starts: a text
too short for one chunk, a ``--resume`` whose options differ from the run's, a run folder
that holds another run. :func:`lstmlab.cli.build_parser` builds these parsers into the command
line; the work is in :mod:`lstmlab.training.lm`.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from ._argtypes import fraction as _fraction
from ._argtypes import gate_bias as _gate_bias
from ._argtypes import in_flags
from ._argtypes import input_path as _input_path
from ._argtypes import nonneg_float as _nonneg_float
from ._argtypes import nonneg_int as _nonneg_int
from ._argtypes import output_dir as _output_dir
from ._argtypes import pos_float as _pos_float
from ._argtypes import pos_fraction as _pos_fraction
from ._argtypes import positive_int as _positive
from ._argtypes import refuse_standard_input
from ._argtypes import seed as _seed
from ._argtypes import timeout_seconds as _timeout_seconds
from ._argtypes import unit_score as _unit_score
from ._argtypes import utf8_text as _utf8_text
from ._files import shown_path
from ._streams import require_stdout
from ._words import counted
from .cli import build_parser, read_text_arg, reads_dash, replaced_note, say, text_name


TRAIN_HELP = """\
Train a character-level language model (embedding -> RNN/LSTM/GRU -> linear) on text files.
With no FILE it trains on a corpus every Python installation has: the standard library's
own .py sources. Writes OUT/last.ckpt (first at step 0), OUT/best.ckpt and OUT/metrics.jsonl.
Ctrl-C or SIGTERM stops after the current step with a checkpoint (exit 130 or 143; a second
one stops at once), and --resume continues exactly where the last checkpoint left off.

examples:
  lstmlab train --out runs/stdlib                        # default corpus, LSTM 2x256
  lstmlab train book.txt --hidden 128 --steps 500 --out runs/book
  lstmlab train book.txt --model rnn --optimizer sgd --lr 0.1 --out runs/rnn
  lstmlab train book.txt --cell gru --out runs/gru       # --cell is --model's other name
  lstmlab train book.txt --layer-norm --out runs/ln      # layer-normalised LSTM
  lstmlab train book.txt --out runs/book --resume --steps 1000   # continue, extend
  lstmlab train book.txt --out runs/book --nproc 2       # data-parallel, 2 processes
  torchrun --nnodes 2 --nproc-per-node 8 ... -m lstmlab train book.txt --out runs/book
"""

GENERATE_HELP = """\
Generate text from a trained checkpoint, streaming characters as they are produced.

examples:
  lstmlab generate runs/stdlib/best.ckpt --prompt "def " --length 400
  lstmlab generate runs/stdlib/best.ckpt --prompt "import " --temperature 0   # greedy
  lstmlab generate runs/stdlib/best.ckpt --temperature 0.7 --top-k 10 --seed 3
  lstmlab generate runs/stdlib/best.ckpt --top-p 0.9 --seed 3        # nucleus sampling
  lstmlab generate runs/stdlib/best.ckpt --prompt-file start.py   # a prompt of several lines
  head -c 300 notes.txt | lstmlab generate runs/stdlib/best.ckpt --prompt-file -   # from a pipe
"""

EVALUATE_HELP = """\
Report a checkpoint's loss on a text file, in nats and in bits per character. Every
character after the first is scored, predicted from all the characters before it (one
stream, the state carried from chunk to chunk), so the score does not depend on --seq-len.

FILE - reads the text from standard input (a file named - is ./-).

examples:
  lstmlab evaluate runs/stdlib/best.ckpt held_out.txt
  tail -n 200 notes.txt | lstmlab evaluate runs/stdlib/best.ckpt -
"""


def add_train_parser(sub):
    p = sub.add_parser("train", help="train a character-level language model",
                       description=TRAIN_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("files", nargs="*", metavar="FILE", type=_input_path, help="UTF-8 text files (default: the stdlib's .py sources)")
    p.add_argument("--model", "--cell", choices=["lstm", "rnn", "gru"], default="lstm",
                   help="recurrent cell (default lstm)")
    p.add_argument("--hidden", type=_positive, default=256, help="hidden units per layer (default 256)")
    p.add_argument("--layers", type=_positive, default=2, help="stacked layers (default 2)")
    p.add_argument("--embed", type=_positive, default=64, help="embedding width (default 64)")
    p.add_argument("--seq-len", type=_positive, default=100, help="characters per BPTT chunk (default 100)")
    p.add_argument("--batch-size", type=_positive, default=32, help="parallel streams (default 32)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--steps", type=_positive, help="optimizer steps (default 2000)")
    g.add_argument("--epochs", type=_pos_float, help="passes over the training text (instead of --steps)")
    p.add_argument("--lr", type=_pos_float, default=None, help="peak learning rate (default 2e-3; 0.5 for sgd)")
    p.add_argument("--optimizer", choices=["adam", "adamw", "sgd"], default="adam",
                   help="default adam")
    p.add_argument("--momentum", type=_fraction, default=0.9, help="SGD momentum, in [0, 1) (default 0.9)")
    p.add_argument("--weight-decay", type=_nonneg_float, default=0.0,
                   help="L2 penalty (adam, sgd) or decoupled decay (adamw) (default 0)")
    p.add_argument("--schedule", choices=["cosine", "constant", "step"], default="cosine",
                   help="learning rate after the warm-up: cosine to a tenth, constant, or halved "
                        "every quarter of the run (default cosine)")
    p.add_argument("--warmup", type=_nonneg_int, default=0, help="linear warm-up steps, fewer than the run's (default 0)")
    p.add_argument("--clip", type=_nonneg_float, default=5.0, help="global gradient-norm clip, 0 = off (default 5)")
    p.add_argument("--dropout", type=_fraction, default=0.0,
                   help="dropout between layers and before the output layer, in [0, 1) (default 0)")
    p.add_argument("--dropout-input", type=_fraction, default=0.0,
                   help="variational dropout of each layer's input: one mask per sequence (default 0)")
    p.add_argument("--dropout-recurrent", type=_fraction, default=0.0,
                   help="LSTM: variational dropout of h_{t-1} in the recurrent product (default 0)")
    p.add_argument("--zoneout", type=_fraction, default=0.0,
                   help="LSTM: units keep their previous h and C with this probability (default 0)")
    p.add_argument("--weight-drop", type=_fraction, default=0.0,
                   help="DropConnect on the recurrent weights, one mask per batch (default 0)")
    p.add_argument("--forget-bias", type=_gate_bias, default=1.0, help="LSTM forget-gate bias at init (default 1)")
    p.add_argument("--layer-norm", action="store_true",
                   help="the layer-normalised LSTM (Ba et al. 2016; --model lstm only)")
    p.add_argument("--dtype", choices=["float32", "float64"], default="float32",
                   help="default float32")
    p.add_argument("--val-fraction", type=_pos_fraction, default=0.05,
                   help="end share held out, in (0, 1) (default 0.05)")
    p.add_argument("--eval-every", type=_positive, default=200,
                   help="steps between validations (default 200)")
    p.add_argument("--eval-chunks", type=_nonneg_int, default=20, help="validation chunks per evaluation, 0 = all (default 20)")
    p.add_argument("--checkpoint-every", type=_positive, default=200,
                   help="steps between writes of last.ckpt (default 200)")
    p.add_argument("--patience", type=_nonneg_int, default=0, help="early stop after N evaluations without improvement, 0 = never "
                        "(default 0)")
    p.add_argument("--max-chars", type=_positive, default=None, help="use at most this many characters of the text (--resume reads as many as the run did)")
    p.add_argument("--seed", type=_seed, default=0, help="random seed (default 0)")
    p.add_argument("--out", default="runs/charlm", type=_output_dir,
                   help="run directory (default runs/charlm)")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in --out from last.ckpt, with the run's own settings "
                        "(--steps or --epochs give it a new length, not below the steps done, "
                        "and the learning-rate schedule follows it; other options must match)")
    p.add_argument("--quiet", action="store_true",
                   help="print the result, the notes and errors only: no progress line, model "
                        "line, resume line or compile notice on stderr")
    p.add_argument("--nproc", type=_positive, default=None,
                   help="data-parallel processes on this machine, each on its share of the batch "
                        "streams (default 1; needs PyTorch; under torchrun, torchrun starts them)")
    p.add_argument("--dist-timeout", type=_timeout_seconds, default=300.0,
                   help="seconds (at most a year) a process waits for the others before the run "
                        "stops (default 300)")
    p.add_argument("--engine", choices=["numpy", "torch"], default="numpy",
                   help="numpy: lstmlab's own kernels (default); torch: the exact PyTorch twin")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu",
                   help="where --engine torch runs (default cpu)")
    p.set_defaults(func=cmd_train, flags=_TRAIN_FLAGS)
    return p


def add_generate_parser(sub):
    p = sub.add_parser("generate", help="sample text from a checkpoint", description=GENERATE_HELP,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint", metavar="CKPT", type=_input_path)
    g = p.add_mutually_exclusive_group()
    g.add_argument("--prompt", default=None, type=_utf8_text,
                   help="text to start from, as typed (default: a newline, or the vocabulary's "
                        "first character when the training text had no newline)")
    g.add_argument("--prompt-file", metavar="FILE", default=None, type=_input_path,
                   help="start from this UTF-8 file's text, exactly as stored (its newlines, "
                        "the last one too): a prompt of several lines; - reads standard input")
    p.add_argument("--length", type=_nonneg_int, default=500, help="characters to generate (default 500)")
    p.add_argument("--temperature", type=_nonneg_float, default=1.0,
                   help="a finite number >= 0: 0 = greedy; tiny values approach greedy (default 1)")
    p.add_argument("--top-k", type=_nonneg_int, default=0, help="sample among the k likeliest, 0 = all (default 0)")
    p.add_argument("--top-p", type=_unit_score, default=1.0,
                   help="sample within the nucleus: the fewest likeliest characters whose "
                        "probability reaches p, a number in (0, 1]; 1 = all (default 1)")
    p.add_argument("--seed", type=_seed, default=None, help="random seed (default: fresh)")
    p.add_argument("--unknown", choices=["error", "replace"], default="error",
                   help="prompt characters outside the vocabulary: stop with an error (default) or "
                        "replace them by a stand-in character")
    p.set_defaults(func=cmd_generate)


def add_evaluate_parser(sub):
    p = sub.add_parser("evaluate", help="loss of a checkpoint on a text file", description=EVALUATE_HELP,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint", metavar="CKPT", type=_input_path)
    reads_dash(p, p.add_argument("file", metavar="FILE", type=_input_path,
                                 help="the UTF-8 text to score; - reads standard input"))
    p.add_argument("--seq-len", type=_positive, default=None,
                   help="characters per chunk: memory only, the score is the same "
                        "(default: the training one)")
    p.add_argument("--unknown", choices=["error", "replace"], default="error",
                   help="characters outside the vocabulary: stop with an error (default) or "
                        "replace them by a stand-in character")
    p.set_defaults(func=cmd_evaluate)


def _compile_charlm_kernels(config, uses: tuple[str, ...], log=say) -> None:
    """Run a tiny char-LM shaped like ``config`` (cell, dtype, one or more layers, dropout)
    through the kernels a command will use (``uses``: "train", "eval", "step"), so that their
    first compile happens here, announced through ``log`` (stderr), and not inside a timed
    loop (training's ETA and chars/s). With the kernels in numba's disk cache this takes
    about a second."""
    import numpy as np

    from ._compile_notice import first_compile
    from .layers.model import CharLM, CharLMConfig

    tiny = CharLMConfig(vocab_size=2, hidden_size=2, num_layers=min(config.num_layers, 2),
                        embed_dim=2, cell=config.cell, dtype=config.dtype,
                        dropout=config.dropout if "train" in uses else 0.0,
                        layer_norm=config.layer_norm)
    with first_compile(log):
        model = CharLM(tiny, rng=np.random.default_rng(0))
        tokens = np.zeros((2, 1), np.int64)
        if "train" in uses:
            logits, _ = model.forward(tokens)
            model.backward(np.ones_like(logits))
        model.eval()
        if "eval" in uses:
            model.forward(tokens)
        if "step" in uses:
            model.step(tokens[0])


def _launch_settings(args) -> tuple[int, tuple[str, float] | None]:
    """``(batch size, dropout in use)`` of the run ``--nproc`` is about to start: the
    command line's, or with --resume the stored run's (which the command line does not
    repeat). A missing checkpoint is left to the processes' own --resume error."""
    from .training.distributed import dropout_in_use

    last = Path(args.out) / "last.ckpt"
    if args.resume and last.exists():
        from .layers.model import CharLMConfig
        from .training.checkpoint import load_checkpoint
        from .training.lm import TrainConfig

        meta, _ = load_checkpoint(last, expect_kind="charlm")
        return (TrainConfig.from_json(meta["train"]).batch_size,
                dropout_in_use(CharLMConfig.from_json(meta["model"])))
    return args.batch_size, dropout_in_use(args)


def cmd_train(args) -> int:
    from .training import distributed

    refuse_standard_input(args.files, "FILE", "the text", "which --resume can read again")
    group = None
    if not distributed.in_process_group() and (args.nproc or 1) > 1:
        distributed.check_supported(args.nproc, *_launch_settings(args))
        return distributed.launch(args.argv, args.nproc)
    try:
        if distributed.in_process_group():  # one process of a data-parallel run
            group = distributed.Group(args.dist_timeout)  # PeerLost when the others never come
            if args.nproc is not None and args.nproc != group.world:
                world = counted(group.world, "process", "processes")
                raise ValueError(f"--nproc {args.nproc} disagrees with the {world} of this run "
                                 f"(WORLD_SIZE); under torchrun leave --nproc out")
            from .kernels.fast import set_num_threads
            set_num_threads(distributed.threads_per_process(group.local_world))
        return _train(args, group)
    except distributed.PeerLost as exc:
        print(f"lstmlab train: stopped: {exc}", file=sys.stderr)
        return 4
    finally:
        if group is not None:
            group.close()


def _train(args, group) -> int:
    import math

    import numpy as np

    from ._memory import check_training_fits, recurrent_params
    from .data.text import Vocab, default_corpus, read_text_files, split_train_val
    from .layers.model import CharLM, CharLMConfig
    from .training.lm import LN2, LMTrainer, TrainConfig, TrainingStopped
    from .training.signals import StopNow

    # In a data-parallel run rank 0 speaks for all; --quiet keeps its notes, not its status.
    leader_says = ((lambda msg: print(msg, file=sys.stderr)) if group is None or group.leader
                   else (lambda msg: None))
    status = (lambda msg: None) if args.quiet else leader_says
    out = Path(args.out)
    given = _train_options_given(args.argv)  # the stored options written out on the command line
    if not args.resume and args.optimizer != "sgd" and "momentum" in given:
        raise ValueError(f"--momentum is SGD's; --optimizer {args.optimizer} does not use it "
                         f"(leave --momentum out, or use --optimizer sgd)")
    if args.resume:  # the run's own settings, read before the text is split with them
        last = out / "last.ckpt"
        if not last.exists():
            _refuse_a_run_without_last(out)
            raise ValueError(f"--resume: {last} does not exist, so there is nothing to continue; "
                             f"run the same command without --resume to start the run")
        meta = _resumable_meta(out)
        stored = TrainConfig.from_json(meta["train"])
        config = CharLMConfig.from_json(meta["model"])
        if stored.optimizer != "sgd" and "momentum" in given:  # the run's optimizer, not the default
            raise ValueError(f"--momentum is SGD's; the run in {out} trains with --optimizer "
                             f"{stored.optimizer}, which does not use it (leave --momentum out)")
        _refuse_changed_options(args, given, {**config.to_json(), **stored.to_json()}, last)
        for name in ("seq_len", "batch_size", "val_fraction"):  # the split and --epochs' count
            setattr(args, name, getattr(stored, name))
        # The run's text is as long as it was: read no more of it than the run did.
        run_chars = meta["data"]["train_chars"] + meta["data"]["val_chars"]
        max_chars_given = args.max_chars
        if args.max_chars is None:
            args.max_chars = run_chars
    if not args.resume:  # options that contradict each other, before the text is read
        for flag, given in (("--layer-norm", args.layer_norm), ("--zoneout", args.zoneout),
                            ("--dropout-recurrent", args.dropout_recurrent)):
            if given and args.model != "lstm":
                raise ValueError(f"{flag} is an option of --model lstm, not of --model "
                                 f"{args.model}")
    if args.files:  # --max-chars bounds the read, not only the text kept
        # On --resume one character more than the run's shows text added since it started.
        more = args.resume and max_chars_given is None
        limit = args.max_chars + 1 if more else args.max_chars
        text = read_text_files(args.files, max_chars=limit)
        if more and len(text) > run_chars:
            text = text[:run_chars]
            leader_says(f"note: the FILEs hold more than the {run_chars:,} characters the run "
                        f"read (text added since it started?); --resume trains on the run's own "
                        f"text, so the rest is not used: start a new run to train on all of it")
        desc = (f"{counted(len(args.files), 'file')}: "
                + ", ".join(map(shown_path, args.files[:3]))
                + (" ..." if len(args.files) > 3 else ""))
    else:
        text, desc = default_corpus(max_chars=args.max_chars)
        desc = in_flags(desc, args.flags)
        leader_says(f"no FILE given: training on the default corpus, {desc}")  # the text read
    vocab = Vocab.from_text(text)
    ids = vocab.encode(text)
    lr = args.lr if args.lr is not None else (0.5 if args.optimizer == "sgd" else 2e-3)
    cfg_kwargs = dict(seq_len=args.seq_len, batch_size=args.batch_size, lr=lr,
                      optimizer=args.optimizer, momentum=args.momentum,
                      weight_decay=args.weight_decay, clip=args.clip, schedule=args.schedule,
                      warmup=args.warmup, eval_every=args.eval_every, eval_chunks=args.eval_chunks,
                      checkpoint_every=args.checkpoint_every, patience=args.patience,
                      val_fraction=args.val_fraction)
    _refuse_a_short_text(len(ids), args.batch_size, args.seq_len, args.val_fraction)
    train_ids, val_ids = split_train_val(ids, args.val_fraction)
    chunks = (len(train_ids) // args.batch_size - 1) // args.seq_len
    if args.epochs is not None:
        steps = max(1, math.ceil(args.epochs * max(chunks, 1)))
    else:
        steps = args.steps or 2000
    cfg_kwargs["steps"] = steps
    length = (f"--steps {steps}" if args.epochs is None
              else f"--epochs {args.epochs:g} ({counted(steps, 'step')})")

    if args.resume:
        done = int(meta["step"])
        if (args.steps or args.epochs) and steps < done:  # a new length, not below what is done
            raise ValueError(f"--resume: the run in {out} is already at step {done}, past "
                             f"{length}; give more steps to extend it, or leave --steps and "
                             f"--epochs out to finish it as it was set (nothing was changed)")
        cfg = TrainConfig(**{**stored.__dict__, "steps": steps if (args.steps or args.epochs) else stored.steps})
    else:
        # A run is there once it has a checkpoint (its first is written at step 0); a folder
        # with only metrics.jsonl holds the log of steps whose weights were never saved.
        if (out / "last.ckpt").exists():
            raise ValueError(f"--out {out} already holds a run; pass --resume to continue it or "
                             f"choose another --out (nothing was overwritten)")
        _refuse_a_run_without_last(out)
        if (out / "model.ckpt").exists():  # its metrics.jsonl would get this run's lines
            raise ValueError(f"--out {out} holds the run of another command (model.ckpt, from "
                             f"forecast or classify); choose another --out (nothing was "
                             f"overwritten)")
        if (out / "metrics.jsonl").exists():
            print(f"{out} holds metrics.jsonl but no checkpoint (a run stopped before its first "
                  f"checkpoint): starting the run over", file=sys.stderr)
        if args.warmup >= steps:
            raise ValueError(f"--warmup {args.warmup} is not shorter than the run ({length}): "
                             f"the learning rate would rise for the whole run and never reach "
                             f"its peak --lr, and the --schedule after it would not run; give "
                             f"fewer warm-up steps or more steps")
        cfg = TrainConfig(**cfg_kwargs)
        config = CharLMConfig(vocab_size=len(vocab), hidden_size=args.hidden, num_layers=args.layers,
                              embed_dim=args.embed, cell=args.model, dropout=args.dropout,
                              dropout_input=args.dropout_input,
                              dropout_recurrent=args.dropout_recurrent, zoneout=args.zoneout,
                              weight_drop=args.weight_drop,
                              forget_bias=args.forget_bias, dtype=args.dtype,
                              layer_norm=args.layer_norm)
        n_params = (len(vocab) * args.embed
                    + recurrent_params(args.model, args.embed, args.hidden, args.layers)
                    + args.hidden * len(vocab) + len(vocab))
        copies, what = {"sgd": (3, "weights, gradients, momentum"),
                        "adam": (4, "weights, gradients, two Adam moments"),
                        "adamw": (4, "weights, gradients, two Adam moments")}[args.optimizer]
        check_training_fits(n_params, args.dtype, copies,
                            {"--hidden": args.hidden, "--layers": args.layers, "--embed": args.embed},
                            what)
    if args.resume and max_chars_given is not None and len(ids) != run_chars:
        read = counted(len(ids), "character", grouped=True)
        _refuse_changed(last, [f"--max-chars {max_chars_given} reads {read} (the run read "
                               f"{run_chars:,})"])
    if args.resume and config.vocab_size != len(vocab):  # (restore names other data too)
        raise ValueError(f"checkpoint {out / 'last.ckpt'} was trained on other data "
                         f"({meta['data']['description'] or 'unknown'}): its vocabulary has "
                         f"{counted(config.vocab_size, 'character')}, this text's "
                         f"{len(vocab)}; resume needs the same text files")
    rng = np.random.default_rng(args.seed)
    model = CharLM(config, rng=rng)
    trainer = LMTrainer(model, vocab, train_ids, val_ids, cfg, out, rng, data_description=desc,
                        progress=not args.quiet, group=group, engine=args.engine,
                        device=args.device)
    if args.resume:
        trainer.restore(out / "last.ckpt")
        status(f"resuming {out} at step {trainer.step} of {cfg.steps}")
        if "seed" in given:
            leader_says(f"--seed {args.seed} is not used: a resumed run draws from the random "
                        f"state its checkpoint holds (a seed only starts a run)")
    _compile_charlm_kernels(config, ("train", "eval"), status)
    processes = "" if group is None else f" over {counted(group.world, 'process', 'processes')}"
    cell = "LN-LSTM" if config.layer_norm else config.cell.upper()
    status(f"model: {cell} {config.num_layers}x{config.hidden_size}, vocabulary "
        f"{len(vocab)}, {model.num_params():,} parameters; {len(train_ids):,} training and "
        f"{len(val_ids):,} validation characters; {counted(cfg.steps, 'step')} of "
        f"{cfg.batch_size}x{cfg.seq_len}{processes}")
    try:
        summary = trainer.run()
    except TrainingStopped as exc:
        print(f"lstmlab train: stopped: {exc}", file=sys.stderr)
        return 3
    except StopNow as exc:
        return exc.exit_code
    if summary["status"] == "interrupted":
        return 128 + summary["signal"]
    best = summary["best_val"]
    if group is not None and not group.leader:
        return 0
    print(f"done: step {summary['step']}, {summary['seconds']:.0f} s; best validation "
          f"{best:.4f} nats = {best / LN2:.3f} bits per character (step {summary['best_step']}); "
          f"checkpoints in {out}")
    return 0


def _held_out(n: int, val_fraction: float) -> int:
    """The characters split_train_val holds out of ``n`` for validation."""
    return max(1, int(round(n * val_fraction)))


def _refuse_a_short_text(n: int, batch_size: int, seq_len: int, val_fraction: float) -> None:
    """Refuse a text of ``n`` characters too short for one training chunk and one validation
    chunk, in one message in the terms the user gave (the text's length, the flags), where
    the split and the batcher would each name a part of the text the user never saw."""
    def fits(m: int) -> bool:
        held = _held_out(m, val_fraction)
        return m - held >= batch_size * (seq_len + 1) and held >= seq_len + 1

    if fits(n):
        return
    # Below these bounds a part is short whatever the rounding; the least length is at most a
    # few characters above them (the search is bounded for fractions within round-off of 0, 1,
    # and a fraction so small that the bound is infinite gets no number).
    bounds = ((batch_size * (seq_len + 1) - 0.5) / (1 - val_fraction),
              (seq_len + 0.5) / val_fraction)
    least = ""
    if all(math.isfinite(b) for b in bounds):
        need = max(n + 1, *(math.ceil(b) for b in bounds))
        for _ in range(1000):
            if fits(need):
                break
            need += 1
        least = f", at least {need:,} in all"
    held = _held_out(n, val_fraction)
    advice = ("use a longer text or a smaller --batch-size or --seq-len"
              if n - held < batch_size * (seq_len + 1) else  # the held-out part alone is short:
              f"the held-out part is the --val-fraction {val_fraction:g} of the text, "
              f"{counted(held, 'character', grouped=True)} here: use a longer text, a smaller "
              f"--seq-len or a larger --val-fraction")  # (a text long enough to train on)
    raise ValueError(f"the text has {counted(n, 'character', grouped=True)}, too few for "
                     f"--batch-size {batch_size} and --seq-len {seq_len}: training needs "
                     f"--batch-size * (--seq-len + 1) = {batch_size * (seq_len + 1):,} "
                     f"characters and the --val-fraction {val_fraction:g} held out "
                     f"--seq-len + 1 = {seq_len + 1:,}{least}; {advice}")


def _resumable_meta(out: Path) -> dict:
    """The metadata of the run's ``last.ckpt``, which --resume continues from. One that
    cannot be read (a disk that filled up, a copy cut short) is refused with its reason,
    and with the way on when ``best.ckpt`` beside it is intact: copied over it, the run
    continues from its best step."""
    from .training.checkpoint import CheckpointError, load_checkpoint

    try:
        return load_checkpoint(out / "last.ckpt", expect_kind="charlm")[0]
    except CheckpointError as exc:
        try:
            load_checkpoint(out / "best.ckpt", expect_kind="charlm")
        except CheckpointError:
            raise exc from None
        raise ValueError(f"{exc}; best.ckpt in {out} is intact: copy it to last.ckpt and pass "
                         f"--resume to continue from the best step, or choose another --out to "
                         f"start a new run") from None


def _refuse_a_run_without_last(out: Path) -> None:
    """Refuse a run folder that holds best.ckpt but no last.ckpt (deleted, or lost): it is a
    run, so a new one would overwrite it, and --resume continues from last.ckpt only."""
    if (out / "best.ckpt").exists():
        raise ValueError(f"--out {out} holds best.ckpt but no last.ckpt, which --resume "
                         f"continues from; copy best.ckpt to last.ckpt and pass --resume to "
                         f"continue from the best step, or choose another --out (nothing was "
                         f"overwritten)")


# The options of `train` a checkpoint stores, by the name of the stored field.
_STORED_OPTIONS = {"model": "cell", "hidden": "hidden_size", "layers": "num_layers",
                   "embed": "embed_dim", "dropout": "dropout", "dropout_input": "dropout_input",
                   "dropout_recurrent": "dropout_recurrent", "zoneout": "zoneout",
                   "weight_drop": "weight_drop", "forget_bias": "forget_bias",
                   "layer_norm": "layer_norm", "dtype": "dtype", "seq_len": "seq_len",
                   "batch_size": "batch_size", "lr": "lr", "optimizer": "optimizer",
                   "momentum": "momentum", "weight_decay": "weight_decay", "clip": "clip",
                   "schedule": "schedule", "warmup": "warmup", "eval_every": "eval_every",
                   "eval_chunks": "eval_chunks", "checkpoint_every": "checkpoint_every",
                   "patience": "patience", "val_fraction": "val_fraction"}


# The flags of `train` by the names the library gives them in its messages (a stored field's
# name, a function's parameter): main shows the user the flag they typed.
_TRAIN_FLAGS = {**{field: "--" + name.replace("_", "-") for name, field in _STORED_OPTIONS.items()},
                "max_chars": "--max-chars", "steps": "--steps", "engine": "--engine",
                "device": "--device"}


def _train_options_given(argv: list[str]) -> set[str]:
    """The stored options of ``train``, and ``seed``, that ``argv`` writes out (also
    abbreviated): parsed again with every default replaced by a marker, an option left out
    keeps the marker."""
    marker, names = object(), [*_STORED_OPTIONS, "seed"]
    again = build_parser({name: marker for name in names}).parse_args(argv)
    return {name for name in names if getattr(again, name) is not marker}


def _refuse_changed_options(args, given: set[str], stored: dict, path) -> None:
    """--resume continues the run as stored: an option ``given`` with another value than the
    run's is an error, not silently ignored (only --steps or --epochs may extend a run)."""
    _refuse_changed(path, [f"--{name.replace('_', '-')} {getattr(args, name)} (the run has "
                           f"{stored[field]})" for name, field in _STORED_OPTIONS.items()
                           if name in given and getattr(args, name) != stored[field]])


def _refuse_changed(path, changed: list[str]) -> None:
    """The error for options (``changed``: each written with what the run has) that differ
    from the settings of the run whose checkpoint is ``path``; nothing when there are none."""
    if changed:
        raise ValueError(f"--resume continues the run in {path.parent} with its own settings, "
                         f"but {', '.join(changed)}; leave these options out to continue it, "
                         f"or choose another --out to start a new run")


def _write_text(text: str) -> None:
    """Write ``text``, a command's product, to standard output; a character its encoding
    cannot write (a terminal in an ASCII or Latin-1 locale, or PYTHONIOENCODING naming such
    an encoding) is a clear error naming the character and the way to write it, not a
    codec's message, nor the ``?`` that the stream's lines of prose get
    (``utf8_when_redirected``): a ``?`` in generated text would read as the model's."""
    try:
        text.encode(getattr(sys.stdout, "encoding", None) or "utf-8")
    except UnicodeEncodeError as exc:
        ch = exc.object[exc.start]
        raise ValueError(f"standard output's encoding ({exc.encoding}) cannot write {ch!r} "
                         f"(U+{ord(ch):04X}); set PYTHONIOENCODING=utf-8 (or a UTF-8 locale) "
                         f"to write every character") from None
    except LookupError:  # an encoding Python does not know: the write itself will say
        pass
    sys.stdout.write(text)


def cmd_generate(args) -> int:
    import numpy as np

    from .training.lm import generate, load_charlm

    require_stdout("the generated text", "redirect it to a file (> text.txt)")
    model, vocab, _ = load_charlm(args.checkpoint)
    flag = "--prompt"
    if args.prompt_file is not None:  # a prompt of several lines, which --prompt takes as typed
        from .data.text import DataError
        flag = "--prompt-file"
        try:
            args.prompt = read_text_arg(args.prompt_file)
        except DataError as exc:
            raise ValueError(f"--prompt-file: {exc}") from None
    if args.prompt is None:  # a character the model knows, so the default never fails
        args.prompt = "\n" if "\n" in vocab else vocab.chars[0]
    if not args.prompt:
        raise ValueError("--prompt must not be empty: the model needs at least one character "
                         "to start from (leave --prompt out to start from one it knows)")
    try:  # a bad prompt is refused before any output
        vocab.encode(args.prompt, unknown=args.unknown)
    except ValueError as exc:
        raise ValueError(f"{flag}: {exc}") from None
    replaced = replaced_note(args.prompt, vocab)
    if replaced:  # said on stderr: stdout is the text
        say(f"lstmlab generate: {flag}: {replaced}")
    idle = [f for f, on in (("--top-k", args.top_k), ("--top-p", args.top_p < 1),
                            ("--seed", args.seed is not None)) if on]
    if args.temperature == 0 and idle:  # greedy: each next character is the likeliest
        say(f"lstmlab generate: note: --temperature 0 picks the likeliest character at every "
             f"step, so {', '.join(idle)} {'has' if len(idle) == 1 else 'have'} no effect")
    if args.seed is None and args.temperature > 0:  # drawn here, so a good text can be had again
        args.seed = int(np.random.SeedSequence().generate_state(1)[0])
        say(f"lstmlab generate: --seed {args.seed} (give it to sample this text again)")
    rng = np.random.default_rng(args.seed)
    _compile_charlm_kernels(model.config, ("step",))
    _write_text(args.prompt)

    def emit(ch):
        _write_text(ch)
        sys.stdout.flush()

    generate(model, vocab, args.prompt, args.length, args.temperature, args.top_k, rng,
             on_char=emit, unknown=args.unknown, top_p=args.top_p)
    sys.stdout.write("\n")
    return 0


def cmd_evaluate(args) -> int:
    from .training.lm import LN2, TrainConfig, evaluate_text, load_charlm

    require_stdout("the score", "redirect it to a file (> score.txt)")
    model, vocab, meta = load_charlm(args.checkpoint)
    text = read_text_arg(args.file)
    ids = vocab.encode(text, unknown=args.unknown)
    seq_len = args.seq_len or TrainConfig.from_json(meta["train"]).seq_len
    if len(ids) < 2:
        raise ValueError(f"{text_name(args.file)} is too short to evaluate (needs at least 2 "
                         f"characters)")
    _compile_charlm_kernels(model.config, ("eval",))
    loss, n = evaluate_text(model, ids, seq_len)
    print(f"{text_name(args.file)}: {loss:.4f} nats per character = {loss / LN2:.4f} bits per character "
          f"({counted(n, 'character', grouped=True)} scored"
          + "".join(f"; {note}" for note in [replaced_note(text, vocab)] if note) + ")")
    return 0
