"""Command-line interface: ``lstmlab <command>``; ``main(argv) -> int`` so tests call it."""

from __future__ import annotations

import argparse
import contextlib
import errno
import math
import os
import re
import sys
from pathlib import Path

from ._argtypes import fraction as _fraction
from ._argtypes import gate_bias as _gate_bias
from ._argtypes import in_flags
from ._argtypes import input_path as _input_path
from ._argtypes import nonneg_float as _nonneg_float
from ._argtypes import nonneg_int as _nonneg_int
from ._argtypes import output_dir as _output_dir
from ._argtypes import output_file as _output_file
from ._argtypes import pos_float as _pos_float
from ._argtypes import pos_fraction as _pos_fraction
from ._argtypes import positive_int as _positive
from ._argtypes import refuse_overwriting_inputs, refuse_standard_input
from ._argtypes import seed as _seed
from ._argtypes import timeout_seconds as _timeout_seconds
from ._argtypes import unit_score as _unit_score
from ._argtypes import utf8_text as _utf8_text
from . import _columns
from ._extras import MissingExtra, require
from ._files import shown_path
from ._streams import (dash_hint, require_stdout, sturdy_stderr, to_null_device,
                       utf8_when_redirected)
from ._words import counted
from . import __version__

DEMO_HELP = """\
The lecture, end to end, in well under a minute on a laptop CPU; writes OUT/report.html (one
self-contained page, figures inline) and OUT/summary.json, and prints a summary.

  1. RNN, the problem: fresh networks read a random sequence with the loss on the last step;
     how much gradient reaches k steps back (through h, and the LSTM's cell state C), and
     the Jacobian norms ||dh_T/dh_t|| from random projections.
  2. The fix, LSTM: a vanilla RNN and an LSTM trained on the adding problem (Hochreiter &
     Schmidhuber 1997) with the same budget and data; the RNN fails, the LSTM solves it.
  3. The five steps: the trained LSTM's gates f, i, C~, C, o, h over one sequence.

examples:
  lstmlab demo                          # about 15 seconds on 2 cores (docs/lecture.md)
  lstmlab demo --out /tmp/lecture --seed 1
  lstmlab demo --quick                  # seconds: tiny networks, tiny budget (for tests)
"""



def reads_dash(parser: argparse.ArgumentParser, action: argparse.Action) -> argparse.Action:
    """Record ``action`` (the return of ``add_argument`` on ``parser`` or one of its groups)
    as an argument of ``parser`` that reads ``-`` as standard input, for the hint of
    :class:`_Parser` when it is missing."""
    parser.dash_names.append(action.option_strings[0] if action.option_strings
                             else action.metavar)
    return action


class _Parser(argparse.ArgumentParser):
    """argparse's parser (and, through ``add_subparsers``, each command's), whose error for
    a missing argument that reads ``-`` (:func:`reads_dash`) adds, when standard input is a
    pipe or a file, that ``-`` reads it."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.dash_names: list[str] = []

    def error(self, message: str):
        if "required" in message:
            for name in self.dash_names:
                if re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", message):
                    message += dash_hint(name)
                    break
        super().error(message)


def build_parser(train_defaults: dict | None = None) -> argparse.ArgumentParser:
    """The command line; ``train_defaults`` replaces defaults of ``lstmlab train`` (how
    :func:`_train_options_given` tells an option written out from one left out)."""
    parser = _Parser(
        prog="lstmlab",
        description="The lecture's RNN and LSTM in NumPy: exact, fast, and explained.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="run 'lstmlab COMMAND --help' for a command's options and examples")
    parser.add_argument("--version", action="version", version=f"lstmlab {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_demo(sub)
    _add_train(sub).set_defaults(**(train_defaults or {}))
    _add_forecast(sub)
    _add_classify(sub)
    _add_experiment(sub)
    _add_inspect(sub)
    _add_explore(sub)
    _add_generate(sub)
    _add_evaluate(sub)
    _add_export(sub)
    return parser


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





def _add_forecast(sub):
    # forecast train|predict|benchmark; parsing and commands live in lstmlab.forecast.cli
    from .forecast.cli import add_forecast_parser

    add_forecast_parser(sub)


def _add_classify(sub):
    # classify train|predict; parsing and commands live in lstmlab.classify.cli
    from .classify.cli import add_classify_parser

    add_classify_parser(sub)


def _add_train(sub):
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


def _add_generate(sub):
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


def _add_evaluate(sub):
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


EXPORT_HELP = """\
Export a trained char-LM for other frameworks. No pickle is written; files are written
atomically. Each format's file carries the vocabulary (the characters in token order).

  onnx       an ONNX graph: input `tokens` int64 (T, B), optional `h0`/`c0` (`c0` for an
             LSTM); outputs `logits` (T, B, V), `h_n`, `c_n` (LSTM); the vocabulary as JSON
             in metadata_props["vocab"]. Runs in onnxruntime without lstmlab
             (docs/interop.md). Needs the onnx extra.
  torch      a safetensors file of the state dict of a torch module with children `embed`
             (nn.Embedding), `rnn` (nn.LSTM/nn.RNN/nn.GRU), `head` (nn.Linear); the header's
             metadata holds "vocab" and "config" (JSON). Load it with
             module.load_state_dict(safetensors.torch.load_file(FILE)); the module's
             definition is in docs/interop.md. Needs the torch extra.
  keras      a .keras model file: keras.saving.load_model(FILE) gives a model from tokens
             (B, T) to logits (B, T, V); the vocabulary is written beside it as
             <out>.vocab.json (e.g. charlm.vocab.json for charlm.keras). Needs the keras
             extra.
  torch-npz  the torch state dict as a .npz of NumPy arrays, plus <out>.vocab.json; loads
             with {k: torch.from_numpy(v) for k, v in np.load(FILE).items()}. No extra.
  keras-npz  Keras weight arrays as a .npz: `embed/0`, `rnn/<level>/<i>` (the set_weights
             list of each LSTM/SimpleRNN/GRU level), `head/0` (kernel), `head/1` (bias), plus
             <out>.vocab.json. No extra.

<out>.vocab.json holds the vocabulary, the model's sizes and "model_file": the name and
SHA-256 of the model file written with it. Compare that hash with the model file's before
using the vocabulary (docs/interop.md): a mismatch means the two come from different exports.
An export whose <out>.vocab.json is the vocabulary of another model file beside it (charlm.npz
after charlm.keras) stops before writing anything: choose another --out.

examples:
  lstmlab export runs/stdlib/best.ckpt --format onnx --out charlm.onnx
  lstmlab export runs/stdlib/best.ckpt --format torch --out charlm.safetensors
  lstmlab export runs/stdlib/best.ckpt --format keras --out charlm.keras
  lstmlab export runs/stdlib/best.ckpt --format torch-npz --out charlm_torch.npz
"""

EXPORT_EXTRAS = {"onnx": "onnx", "torch": "torch", "keras": "keras"}
SIDE_FILE_FORMATS = ("keras", "torch-npz", "keras-npz")  # these write <out>.vocab.json beside


def _check_side_file(side: Path, out: str, checkpoint: str) -> None:
    """Refuse, before anything is written, an --out whose <out>.vocab.json cannot be written
    or is the checkpoint: the export would stop half done, its model file without its
    vocabulary, or destroy what it reads."""
    where = f"--out {out!r}: its vocabulary goes to {str(side)!r} beside it, which is"
    if side.is_dir():
        raise ValueError(f"{where} a directory; choose another --out")
    if side.exists() and Path(checkpoint).exists() and os.path.samefile(side, checkpoint):
        raise ValueError(f"{where} the CKPT this command reads; choose another --out")
    other = _paired_model_file(side)
    if other is not None and other != Path(out).name:
        raise ValueError(f"{where} the vocabulary of {other!r}, another export of the same "
                         f"name stem that still matches it; writing it would leave {other} "
                         f"without its vocabulary, so choose another --out")


def _paired_model_file(side: Path) -> str | None:
    """The name of the model file that the vocabulary file ``side`` belongs to, when that file
    exists beside it with the SHA-256 recorded in ``side`` (a pair still in use); else None."""
    import hashlib
    import json

    try:
        pair = json.loads(side.read_text(encoding="utf-8"))["model_file"]
        model = side.with_name(pair["name"])
        if model.is_file() and hashlib.sha256(model.read_bytes()).hexdigest() == pair["sha256"]:
            return model.name
    except (OSError, ValueError, KeyError, TypeError):  # absent, not JSON, not such a file
        pass
    return None


def _write_beside(out: Path, side: Path, described: dict, write_model) -> None:
    """Write a model file with ``write_model()``, then its vocabulary file ``side``: the JSON
    ``described`` plus ``"model_file"``, the name and SHA-256 of the model file it belongs to.

    A reader compares that hash with the model file's (docs/interop.md), so a pair left
    mismatched (a failure or kill between the two writes, a file copied over by hand) is
    told apart from a matching one. A failure writing the model leaves the earlier pair as it
    was; one writing ``side`` removes the earlier export's, which belongs to another model.
    """
    import hashlib
    import json

    from .training.checkpoint import atomic_write_text

    write_model()
    digest = hashlib.sha256(out.read_bytes()).hexdigest()
    try:
        atomic_write_text(side, json.dumps({**described, "model_file": {
            "name": out.name, "sha256": digest}}, indent=1))
    except OSError as exc:
        try:
            side.unlink(missing_ok=True)
        except OSError:
            pass
        raise type(exc)(f"{exc}; {out} is written without its vocabulary: export again") \
            from None


def _add_export(sub):
    p = sub.add_parser("export", help="export a checkpoint to ONNX, PyTorch or Keras",
                       description=EXPORT_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint", metavar="CKPT", type=_input_path)
    p.add_argument("--format", choices=["onnx", "torch", "keras", "torch-npz", "keras-npz"],
                   required=True)
    p.add_argument("--out", required=True, metavar="FILE", type=_output_file)
    p.set_defaults(func=cmd_export)


def cmd_export(args) -> int:
    import io
    import json

    import numpy as np

    from .training.checkpoint import atomic_write_bytes
    from .training.lm import load_charlm

    out = Path(args.out)
    refuse_overwriting_inputs(out, "--out", {"CKPT": args.checkpoint})
    if args.format == "keras" and out.suffix != ".keras":
        raise ValueError(f"--out must end in .keras for --format keras (keras.saving.load_model "
                         f"opens only those), got {args.out!r}")
    side = out.with_name(out.stem + ".vocab.json")
    if args.format in SIDE_FILE_FORMATS:
        _check_side_file(side, args.out, args.checkpoint)
    model, vocab, _ = load_charlm(args.checkpoint)
    pieces = {"embed": model.embed, "rnn": model.rnn, "head": model.head}
    described = {"vocab": vocab.to_json(), "model": model.config.to_json()}
    if args.format == "onnx":
        from .interop import to_onnx

        proto = to_onnx(model.rnn, embedding=model.embed, head=model.head, vocab=vocab.to_json())
        atomic_write_bytes(out, proto.SerializeToString())
        states = "h_n, c_n" if model.is_lstm else "h_n"
        print(f"wrote {out}: ONNX graph tokens (T, B) -> logits (T, B, {len(vocab)}), {states}; "
              f"vocabulary in metadata_props['vocab']")
        return 0
    if args.format == "torch":
        from .interop import save_safetensors

        if getattr(model.rnn, "layer_norm", False):  # nn.LSTM would refuse the ln_* keys
            raise ValueError("--format torch writes the state dict of a module whose rnn is a "
                             "torch.nn.LSTM, which has no layer normalisation: a layer-norm "
                             "char-LM cannot be loaded into it; --format torch-npz writes its "
                             "state dict with the ln_* gains for a module of your own")

        save_safetensors(out, pieces, {"vocab": json.dumps(vocab.to_json(), ensure_ascii=False),
                                       "config": json.dumps(model.config.to_json())})
        print(f"wrote {out}: safetensors state dict of embed/rnn/head ({model.config.dtype}); "
              f"vocabulary and model sizes in its metadata")
        return 0
    if args.format == "keras":
        from .interop import save_keras_charlm

        _write_beside(out, side, described,
                      lambda: save_keras_charlm(out, model.embed, model.rnn, model.head))
        print(f"wrote {out}: Keras model tokens (B, T) -> logits (B, T, {len(vocab)}), and "
              f"{side} (vocabulary and model sizes)")
        return 0
    if args.format == "torch-npz":
        from .interop import model_state_dict

        arrays = model_state_dict(pieces)
    else:
        from .interop import to_keras_weights

        arrays = {"embed/0": to_keras_weights(model.embed)[0]}
        for level, ws in enumerate(to_keras_weights(model.rnn)):
            arrays.update({f"rnn/{level}/{i}": w for i, w in enumerate(ws)})
        arrays.update({f"head/{i}": w for i, w in enumerate(to_keras_weights(model.head))})
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    _write_beside(out, side, described, lambda: atomic_write_bytes(out, buf.getvalue()))
    print(f"wrote {out} ({len(arrays)} arrays, {args.format} layout) and {side} "
          f"(vocabulary and model sizes)")
    return 0


def _needed_extra(args) -> tuple[str, str] | None:
    """``(extra, what)`` when the parsed command needs an optional extra, else None."""
    if args.command == "export" and args.format in EXPORT_EXTRAS:
        return EXPORT_EXTRAS[args.format], f"export --format {args.format}"
    if args.command == "classify" and getattr(args, "classify_command", None) == "train" \
            and getattr(args, "data", None) is None:
        return "sklearn", "classify train without DATA (the scikit-learn digits)"
    return None


# Library messages name keyword arguments; on the command line the same advice is an option.
CLI_HINTS = {"pass unknown='replace'": "pass --unknown replace",
             "pass replacement=<a character in the vocabulary>": "remove them from the input"}


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _compile_charlm_kernels(config, uses: tuple[str, ...], log=_say) -> None:
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
    say = (lambda msg: print(msg, file=sys.stderr)) if group is None or group.leader else (lambda msg: None)
    status = (lambda msg: None) if args.quiet else say
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
            say(f"note: the FILEs hold more than the {run_chars:,} characters the run read "
                f"(text added since it started?); --resume trains on the run's own text, so the "
                f"rest is not used: start a new run to train on all of it")
        desc = (f"{counted(len(args.files), 'file')}: "
                + ", ".join(map(shown_path, args.files[:3]))
                + (" ..." if len(args.files) > 3 else ""))
    else:
        text, desc = default_corpus(max_chars=args.max_chars)
        desc = in_flags(desc, args.flags)
        say(f"no FILE given: training on the default corpus, {desc}")  # a note: the text read
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
            say(f"--seed {args.seed} is not used: a resumed run draws from the random state "
                f"its checkpoint holds (a seed only starts a run)")
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
            args.prompt = _read_text_arg(args.prompt_file)
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
    replaced = _replaced_note(args.prompt, vocab)
    if replaced:  # said on stderr: stdout is the text
        _say(f"lstmlab generate: {flag}: {replaced}")
    idle = [f for f, on in (("--top-k", args.top_k), ("--top-p", args.top_p < 1),
                            ("--seed", args.seed is not None)) if on]
    if args.temperature == 0 and idle:  # greedy: each next character is the likeliest
        _say(f"lstmlab generate: note: --temperature 0 picks the likeliest character at every "
             f"step, so {', '.join(idle)} {'has' if len(idle) == 1 else 'have'} no effect")
    if args.seed is None and args.temperature > 0:  # drawn here, so a good text can be had again
        args.seed = int(np.random.SeedSequence().generate_state(1)[0])
        _say(f"lstmlab generate: --seed {args.seed} (give it to sample this text again)")
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


def _read_text_arg(path: str) -> str:
    """The text of the file ``path``, or of standard input for ``-`` (as UTF-8 bytes, with a
    file's checks): how a command reads the one text it is given."""
    from .data.text import DataError, read_text_files
    if path == "-":
        from ._files import read_utf8_stdin
        return read_utf8_stdin("text file", DataError)
    return read_text_files([path])


def _text_name(path: str) -> str:
    return "standard input" if path == "-" else shown_path(path)


def cmd_evaluate(args) -> int:
    from .training.lm import LN2, TrainConfig, evaluate_text, load_charlm

    require_stdout("the score", "redirect it to a file (> score.txt)")
    model, vocab, meta = load_charlm(args.checkpoint)
    text = _read_text_arg(args.file)
    ids = vocab.encode(text, unknown=args.unknown)
    seq_len = args.seq_len or TrainConfig.from_json(meta["train"]).seq_len
    if len(ids) < 2:
        raise ValueError(f"{_text_name(args.file)} is too short to evaluate (needs at least 2 "
                         f"characters)")
    _compile_charlm_kernels(model.config, ("eval",))
    loss, n = evaluate_text(model, ids, seq_len)
    print(f"{_text_name(args.file)}: {loss:.4f} nats per character = {loss / LN2:.4f} bits per character "
          f"({counted(n, 'character', grouped=True)} scored"
          + "".join(f"; {note}" for note in [_replaced_note(text, vocab)] if note) + ")")
    return 0


def _replaced_note(text: str, vocab) -> str:
    """What --unknown replace changed in ``text``: a score of a text with stand-ins is not
    the text's score, so the count and the characters are said beside it ("" if none)."""
    unknown = sorted(set(text) - set(vocab.chars))
    if not unknown:
        return ""
    count = sum(text.count(ch) for ch in unknown)
    shown = ", ".join(f"{ch!r} (U+{ord(ch):04X})" for ch in unknown[:5])
    more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
    return (f"{counted(count, 'character', grouped=True)} outside the vocabulary read as "
            f"a stand-in, --unknown replace: {shown}{more}")


def _add_demo(sub):
    p = sub.add_parser("demo", help="the lecture's claims, measured", description=DEMO_HELP,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="lstmlab-demo", type=_output_dir,
                   help="output directory (default lstmlab-demo)")
    p.add_argument("--quick", action="store_true", help="tiny networks and budget: seconds, not minutes")
    p.add_argument("--seed", type=_seed, default=0, help="random seed (default 0)")
    p.add_argument("--length", type=_positive, default=None,
                   help="T of the gradient-flow section, at least 2 (default 100; 30 with --quick)")
    p.add_argument("--hidden", type=_positive, default=None,
                   help="H of the gradient-flow section (default 64; 8 with --quick)")
    p.add_argument("--batch", type=_positive, default=None,
                   help="sequences in the gradient-flow batch (default 32; 4 with --quick)")
    p.add_argument("--adding-length", type=_positive, default=None,
                   help="T of the adding problem, at least 11 (default 100; 12 with --quick)")
    p.add_argument("--budget", type=_positive, default=None,
                   help="training sequences per network; a network stops once solved (default "
                        "128000; 256 with --quick)")
    p.add_argument("--force", action="store_true",
                   help="overwrite the report of another command in --out")
    p.set_defaults(func=cmd_demo)


def _refuse_another_report(out, own: str, force: bool) -> None:
    """Stop before writing OUT/report.html over the report of another command: demo and
    experiment both write one, and each knows its own by the file beside it (``own``)."""
    out = Path(out)
    if (out / "report.html").exists() and not (out / own).exists() and not force:
        raise ValueError(f"--out {out} holds the report of another command (report.html without "
                         f"{own}); choose another --out or pass --force to overwrite it "
                         f"(nothing was overwritten)")


def cmd_demo(args) -> int:
    from .insight.demo import DemoConfig, run_demo

    _refuse_another_report(args.out, "summary.json", args.force)

    given = {k: v for k, v in (("seed", args.seed), ("length", args.length),
                               ("hidden", args.hidden), ("batch", args.batch),
                               ("adding_length", args.adding_length), ("budget", args.budget))
             if v is not None}
    given["out"] = args.out
    if given.get("length", 2) < 2:
        raise ValueError("--length must be at least 2: the gradient-flow section measures how "
                         "much gradient reaches k >= 1 steps back, and one step has none before "
                         "it (its summary would report 1.0 as the vanished gradient)")
    if given.get("adding_length", 11) < 11:
        raise ValueError("--adding-length must be at least 11 (the first mark lies in the "
                         "first ten pairs, before the last one)")
    cfg = DemoConfig.quick_version(**given) if args.quick else DemoConfig(**given)
    from ._compile_notice import first_compile

    # The demo's kernels compile inside it on a first run (its section times include that).
    with first_compile(_say):
        s = run_demo(cfg)
    rows, ks, T = s["rows"], s["ks"], cfg.length
    print(f"1. Vanishing gradients at initialisation (T={T}, B={cfg.batch}, H={cfg.hidden}, "
          f"seed {cfg.seed})")
    print("Loss on the last step only; each column: ||dL/d(state at step T-k)|| / ||dL/d(state at T)||")
    print()
    head = f"{'model':<26}{'path':<6}" + "".join(f"{'k=' + str(k):>10}" for k in ks)
    print(head)
    print("-" * len(head))
    for name, path, rel in rows:
        print(f"{name:<26}{path:<6}" + "".join(f"{rel[k]:>10.1e}" for k in ks))
    print("h: through the hidden state; C: through the LSTM's cell state.")
    print()
    TA = cfg.adding_length
    print(f"2. Adding problem, T={TA}: same budget ({cfg.budget:,} sequences), same data, "
          f"{cfg.eval_size:,} held-out sequences")
    print(f"{'model':<8}{'held-out MSE':>14}{'solved':>9}{'until solved':>14}{'seen':>10}{'seconds':>9}")
    for m in ("rnn", "lstm"):
        r = s["adding"][m]
        until = f"{r['solved_at']:,}" if r["solved_at"] else "-"
        print(f"{m.upper():<8}{r['error']:>14.4f}{r['score']:>9.3f}{until:>14}{r['seen']:>10,}"
              f"{r['seconds']:>9.0f}")
    print("(constant prediction: MSE 0.0417; solved = fraction with |error| < 0.04)")
    print()
    print("3. Summary")
    width = max(_columns.width(c[1]) for c in s["claims_rows"])
    for claim, measured, value in s["claims_rows"]:
        print(f"  {_columns.pad(claim, 28)}{_columns.pad(measured, width + 2)}{value}")
    print()
    if cfg.short_training():
        print(f"({cfg.short_training()})")
    print(f"report: {Path(cfg.out) / 'report.html'}  ({s['seconds']:.0f} s)")
    return 0


EXPERIMENT_HELP = """\
Train each model at each length with the same budget and seeds on a long-time-lag task, and
print a table: held-out error, fraction solved (adding) or recall accuracy (copy), runs solved,
training sequences until solved. Writes OUT/results.json (after every run; rerunning the same
command continues an interrupted experiment), OUT/TASK.png and OUT/report.html.

  adding  Hochreiter & Schmidhuber (1997): solved when |error| < 0.04 on >= 95% of the
          held-out sequences
  copy    Arjovsky et al. (2016): ten symbols, T blanks, reproduce them; compared with the
          memoryless baseline 10 ln 8 / (T + 20); solved at >= 95% recall accuracy

examples:
  lstmlab experiment adding --lengths 20 50 100 200 --models rnn lstm --seeds 0 1 2
  lstmlab experiment copy --lengths 10 50 100 --budget 200000 --hidden 64
  lstmlab experiment adding --lengths 20 --budget 2000 --seeds 0 --out /tmp/try
"""


def _add_experiment(sub):
    p = sub.add_parser("experiment", help="RNN vs LSTM on the adding problem or the copy task",
                       description=EXPERIMENT_HELP,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("task", choices=["adding", "copy"])
    p.add_argument("--lengths", type=_positive, nargs="+", required=True, metavar="T",
                   help="task lengths T (adding: at least 11)")
    p.add_argument("--models", nargs="+", choices=["rnn", "lstm"], default=["rnn", "lstm"],
                   help="models compared (default: rnn lstm)")
    p.add_argument("--seeds", type=_seed, nargs="+", default=[0, 1, 2],
                   help="one run per seed, model and length (default: 0 1 2)")
    p.add_argument("--budget", type=_positive, default=128_000,
                   help="training sequences per run (default 128000)")
    p.add_argument("--hidden", type=_positive, default=32, help="hidden units (default 32)")
    p.add_argument("--batch", type=_positive, default=32, help="sequences per step (default 32)")
    p.add_argument("--lr", type=_pos_float, default=3e-3, help="Adam learning rate (default 3e-3)")
    p.add_argument("--clip", type=_nonneg_float, default=1.0, help="gradient-norm clip, 0 = off (default 1)")
    p.add_argument("--forget-bias", type=_gate_bias, default=5.0,
                   help="LSTM forget-gate bias at init (default 5: f = 0.993, a memory half-life "
                        "of about 100 steps)")
    p.add_argument("--input-bias", type=_gate_bias, default=-5.0,
                   help="LSTM input-gate bias at init (default -5: i = 0.007, the cells start "
                        "nearly closed to input)")
    p.add_argument("--eval-every", type=_positive, default=4000,
                   help="training sequences between evaluations (default 4000)")
    p.add_argument("--eval-size", type=_positive, default=2000, help="held-out sequences (default 2000)")
    p.add_argument("--target", type=_unit_score, default=0.95,
                   help="score that counts as solved, in (0, 1] (default 0.95)")
    p.add_argument("--no-stop", action="store_true", help="train the whole budget even once solved")
    p.add_argument("--out", default=None, type=_output_dir,
                   help="output directory (default runs/experiment-TASK)")
    p.add_argument("--force", action="store_true",
                   help="overwrite the report of another command in --out")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.set_defaults(func=cmd_experiment, flags={"lr": "--lr", "clip": "--clip"})


def cmd_experiment(args) -> int:
    from .insight.experiments import (ExperimentConfig, format_table, load_results, run_experiment,
                                      save_results, summarize, table_notes, write_report)

    try:
        cfg = ExperimentConfig(task=args.task, lengths=tuple(args.lengths),
                               models=tuple(args.models), seeds=tuple(args.seeds),
                               budget=args.budget, hidden=args.hidden, batch=args.batch,
                               lr=args.lr, clip=args.clip, forget_bias=args.forget_bias,
                               input_bias=args.input_bias, eval_every=args.eval_every,
                               eval_size=args.eval_size, target=args.target,
                               stop_when_solved=not args.no_stop)
    except ValueError as exc:  # "seeds must ...", "adding lengths must ...": name the option
        setting = re.match(r"(?:(?:adding|copy) )?(\w+) must", str(exc))
        if setting is None or not hasattr(args, setting.group(1)):
            raise
        flag = "--" + setting.group(1).replace("_", "-")
        raise ValueError(f"{flag} {str(exc)[setting.end(1) + 1:]}") from None
    out = Path(args.out or f"runs/experiment-{args.task}")
    _refuse_another_report(out, "results.json", args.force)
    results_path = out / "results.json"
    try:
        done = load_results(results_path, cfg)
    except ValueError as exc:  # given --force, the user meant to overwrite: say what it does
        if not args.force:
            raise
        raise ValueError(f"{exc}; --force overwrites the report of another command, never the "
                         f"runs of an experiment: delete {results_path} to start this one "
                         f"afresh") from None
    if done:
        print(f"continuing {results_path}: {counted(len(done), 'run')} already done",
              file=sys.stderr)
    finished = list(done)

    def save(result):
        finished.append(result)
        save_results(results_path, cfg, finished)

    log = None if args.quiet else (lambda msg: print(msg, file=sys.stderr, flush=True))
    results = run_experiment(cfg, log=log, on_result=save, done=done)
    print(format_table(cfg, summarize(results)))
    print()
    print(table_notes(cfg))
    png, report = write_report(cfg, results, out)
    print(f"\nresults: {results_path}; figure: {png}; report: {report}")
    return 0


INSPECT_HELP = """\
Look inside a character LSTM checkpoint (from 'lstmlab train'): heatmaps of its gates and cell
state over the characters of a text, and the cells whose state follows something nameable —
inside quotes, inside brackets, bracket depth, inside a comment, position in the line,
indentation (after Karpathy, Johnson & Fei-Fei 2015). Writes OUT/inspect.html and prints the
cells found. The search needs a few thousand characters to be meaningful: pass --file.

examples:
  lstmlab inspect runs/stdlib/best.ckpt --text "def f(x):\\n    return [x, 'a(b']\\n"
  lstmlab inspect runs/stdlib/best.ckpt --file some_module.py --max-chars 5000
"""


def _add_inspect(sub):
    p = sub.add_parser("inspect", help="gates and nameable cells of a character LSTM",
                       description=INSPECT_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint", metavar="CKPT", type=_input_path)
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--text", type=_utf8_text, help="the text to read; \\n, \\t and \\\\ in it stand for a newline, "
                                  "a tab and a backslash (shells pass them on as typed)")
    reads_dash(p, g.add_argument("--file", type=_input_path,
                                 help="read the text from this UTF-8 file; - reads standard input"))
    p.add_argument("--max-chars", type=_positive, default=20_000, help="use at most this many characters (default 20000)")
    p.add_argument("--heat-chars", type=_positive, default=120, help="characters in the heatmaps (default 120)")
    p.add_argument("--units", type=_positive, default=16, help="cells per heatmap (default 16)")
    p.add_argument("--per-signal", type=_positive, default=2, help="cells listed per property (default 2)")
    p.add_argument("--unknown", choices=["error", "replace"], default="error",
                   help="characters outside the vocabulary: stop with an error (default) or replace them")
    p.add_argument("--out", default="lstmlab-inspect", type=_output_dir,
                   help="output directory (default lstmlab-inspect)")
    p.set_defaults(func=cmd_inspect)


_TEXT_ESCAPES = {"n": "\n", "t": "\t", "\\": "\\"}


def _unescape_text(text: str) -> str:
    """``--text`` as meant: a shell passes ``\\n`` on as a backslash and an n, so ``\\n``,
    ``\\t`` and ``\\\\`` stand for a newline, a tab and a backslash, read in one pass from the
    left (``\\\\n`` is a backslash, then n: the way to write Python's ``"\\n"``); any other
    backslash stays as typed."""
    return re.sub(r"\\([nt\\])", lambda m: _TEXT_ESCAPES[m.group(1)], text)


def _say_cut(command: str, kept: int, total: int) -> None:
    """On stderr, that --max-chars cut the text to its first ``kept`` of ``total`` characters,
    so that a cut text is not taken for the whole file."""
    print(f"lstmlab {command}: the text is cut to its first {kept:,} of {total:,} characters; "
          f"--max-chars {total} shows all of it", file=sys.stderr)


def cmd_inspect(args) -> int:
    from .insight.inspection import NOTHING_VARIES, inspect_text
    from .training.lm import load_charlm

    model, vocab, _ = load_charlm(args.checkpoint)
    if args.file == "-":  # a pipe is read once: all of it, to say what a cut leaves out
        text, source = _read_text_arg("-"), _text_name("-")
        if len(text) > args.max_chars:
            _say_cut("inspect", args.max_chars, len(text))
            text = text[: args.max_chars]
    elif args.file:
        from .data.text import count_text_chars, read_text_files
        text = read_text_files([args.file], max_chars=args.max_chars + 1)  # + 1: is there more?
        source = shown_path(args.file)
        if len(text) > args.max_chars:
            text = text[: args.max_chars]
            _say_cut("inspect", len(text), count_text_chars([args.file]))
    else:
        text, source = _unescape_text(args.text), "--text"
        if not text:
            raise ValueError("--text is empty: give the characters to read (or --file)")
        if len(text) > args.max_chars:
            _say_cut("inspect", args.max_chars, len(text))
            text = text[: args.max_chars]
    matches, path = inspect_text(model, vocab, text, args.out, heat_chars=args.heat_chars,
                                 units=args.units, per_signal=args.per_signal,
                                 unknown=args.unknown, source=source)
    print(f"{counted(len(text), 'character', grouped=True)} from {source}"
          + "".join(f"; {note}" for note in [_replaced_note(text, vocab)] if note)
          + "; cells whose state C_t follows a property (Pearson r):")
    print(f"  {'property':<18}{'layer':>6}{'cell':>6}{'r':>8}")
    for m in matches:
        print(f"  {m.signal:<18}{m.layer:>6}{m.unit:>6}{m.r:>+8.3f}")
    if not matches:
        print(f"  ({NOTHING_VARIES})")
    if len(text) < 1000:
        print("(a short text: these correlations are noisy; pass --file with a few thousand characters)")
    print(f"report: {path}")
    return 0


EXPLORE_HELP = """\
Look inside a character model checkpoint (from 'lstmlab train') in the browser: a local web
page, served on 127.0.0.1 only, where each character you type is coloured by a unit's gate or
state, hovering shows the next-character predictions, selected spans rank the units that
separate them (LSTMVis), built-in hypotheses (quotes, brackets, comments, position in the
line, indentation) find the units that follow them, look-alike places are found, and the
gates' saturation is plotted. The TEXT_FILEs fill the text box. Runs until Ctrl-C.
See docs/explore.md.

examples:
  lstmlab explore runs/stdlib/best.ckpt some_module.py
  lstmlab explore runs/stdlib/best.ckpt --port 8765 --no-browser
  lstmlab explore runs/stdlib/best.ckpt some_module.py --save page.html   # a static page
"""


def _add_explore(sub):
    p = sub.add_parser("explore", help="look inside a character model in the browser",
                       description=EXPLORE_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint", metavar="CKPT", type=_input_path)
    p.add_argument("files", nargs="*", default=[], metavar="TEXT_FILE", type=_input_path, help="UTF-8 text for the text box")
    p.add_argument("--port", type=_nonneg_int, default=0, help="port on 127.0.0.1 (default: a free one)")
    p.add_argument("--no-browser", action="store_true", help="print the address, open no browser")
    p.add_argument("--max-chars", type=_positive, default=10_000,
                   help="longest text read from the files or typed (default 10000)")
    p.add_argument("--save", metavar="PAGE.html", type=_output_file,
                   help="write a static, self-contained page of the views instead of serving")
    p.set_defaults(func=cmd_explore, flags={"max_chars": "--max-chars"})


def cmd_explore(args) -> int:
    try:
        from .explore import Explorer, cut_text, save_page, start_server
    except ModuleNotFoundError as exc:
        print(f"lstmlab explore: error: needs the package {exc.name!r}, a dependency of "
              f"lstmlab: pip install {exc.name}", file=sys.stderr)
        return 2
    from .insight.gates import refuse_layer_norm_charlm
    from .training.lm import load_charlm

    refuse_standard_input(args.files, "TEXT_FILE", "the text",
                          "or paste it into the text box of the served page")
    for name, path in [("CKPT", args.checkpoint)] + [("TEXT_FILE", f) for f in args.files]:
        refuse_overwriting_inputs(args.save, "--save", {name: path})
    model, vocab, _ = load_charlm(args.checkpoint)
    refuse_layer_norm_charlm(model)  # before the files are read and their length reported
    text = ""
    if args.files:
        from .data.text import count_text_chars, read_text_files
        text = read_text_files(args.files, max_chars=args.max_chars + 1)  # + 1: is there more?
        if len(text) > args.max_chars:
            text = cut_text(text, args.max_chars)
            _say_cut("explore", len(text), count_text_chars(args.files))
    explorer = Explorer(model, vocab, text, ", ".join(map(shown_path, args.files)),
                        max_chars=args.max_chars)
    if args.save:
        n = save_page(explorer, args.save)
        held = (f"the whole text, {counted(n, 'character', grouped=True)}" if n == len(text)
                else f"the first {n:,} of its {len(text):,} characters")
        print(f"wrote {args.save} ({held})")
        return 0
    server, url = start_server(explorer, args.port)
    print(f"lstmlab explore: serving {args.checkpoint} at {url} (Ctrl-C stops)", flush=True)
    if not args.no_browser:
        import webbrowser
        webbrowser.open(url)
    try:
        server.serve_forever()  # returns on Ctrl-C (Werkzeug's server catches it)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    print("stopped")
    return 0


def _blas_on_one_thread():
    """While a command runs on the compiled kernels, NumPy's BLAS (embedding, linear heads,
    losses, optimizer: small products) runs on one thread. OpenBLAS's idle threads busy-wait
    after each call, and a busy-waiting thread takes a core from the kernels' team, which
    meets at a barrier every time step; the team already uses every core. Through
    threadpoolctl's documented limit, restored when the command ends. Without the compiled
    kernels (the NumPy reference runs on BLAS) or without threadpoolctl: no change."""
    from .kernels import fast
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(1, user_api="blas") if fast.available() else contextlib.nullcontext()


# Options that set how much memory a command takes, named in its out-of-memory error when
# the command has them (by their argparse names).
_SIZE_OPTIONS = ("hidden", "layers", "embed", "batch_size", "batch", "seq_len", "lookback",
                 "horizon", "length", "lengths", "eval_size", "max_chars", "filters")


def _closed_pipe_on_windows(exc: BaseException) -> bool:
    """Whether ``exc`` is what Windows may raise instead of BrokenPipeError when the reader
    of a pipe has gone away: an OSError EINVAL that names no file (CPython issue 79935; an
    EINVAL of a file operation, a name Windows refuses, names its file)."""
    return (sys.platform == "win32" and type(exc) is OSError and exc.errno == errno.EINVAL
            and exc.filename is None)


def _reader_gone() -> int:
    """The end of a command whose reader of stdout is gone (``| head``): not an error of the
    command; it stops quietly, as a program killed by SIGPIPE does, with stdout pointed at
    the null device so that the interpreter's final flush does not fail on the closed pipe
    again."""
    to_null_device(sys.stdout)
    return 128 + 13  # SIGPIPE's number on every POSIX system; Windows has no signal


def main(argv: list[str] | None = None) -> int:
    """Run one command; returns the exit code: 0 done, 2 a bad argument or input (one line on
    stderr, no traceback), 3 training diverged, 4 a process of a data-parallel run was lost
    (see ``--dist-timeout``), 128 + N stopped by signal N (130 Ctrl-C,
    143 SIGTERM, 129 a closed terminal's SIGHUP during training, 141 the reader of the output
    went away, as in ``lstmlab generate | head``).

    Ctrl-C anywhere in here, also while the heavy modules are still being imported (they are
    imported by the commands, not by ``import lstmlab.cli``), is the one line
    "interrupted" and exit 130. Output that goes to a file or a pipe is UTF-8 with LF line
    ends on every platform (see :func:`lstmlab._streams.utf8_when_redirected`).

    Standard error that fails or is closed (``2>&1 | head``, a closed terminal, ``2>&-``)
    stops nothing: what cannot be written there is dropped (:mod:`lstmlab._streams`), so a
    training run goes on and writes its files.
    """
    with utf8_when_redirected(), sturdy_stderr():
        return _run(argv)


def _command_name(args) -> str:
    """The command as typed, with its action for a command that has actions
    (``lstmlab classify train``), as argparse names it in its own errors."""
    action = getattr(args, f"{args.command}_command", None)
    return f"lstmlab {args.command}" + (f" {action}" if isinstance(action, str) else "")


def _run(argv: list[str] | None) -> int:
    """:func:`main` in the streams it sets up."""
    command, flags, args = "lstmlab", {}, None
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        flags = getattr(args, "flags", {})  # a command's flags by the library's names for them
        if args.command is None:
            parser.print_help()
            return 2
        command = _command_name(args)
        args.argv = list(sys.argv[1:] if argv is None else argv)  # for --nproc's processes
        if args.command != "train" and os.environ.get("WORLD_SIZE", "1").strip() not in ("", "0", "1"):
            # torchrun would start N copies writing the same files: refuse in each of them.
            raise ValueError(f"only 'lstmlab train' (the char-LM) trains data-parallel; run "
                             f"'{command}' as one process, without torchrun (WORLD_SIZE is "
                             f"{os.environ['WORLD_SIZE']})")
        if args.command == "train":  # before the kernels (and numba) are first imported
            from .training import distributed
            if distributed.in_process_group():
                distributed.own_kernel_cache()
        needed = _needed_extra(args)
        if needed:
            require(*needed)
        with _blas_on_one_thread():
            return args.func(args)
    except MissingExtra as exc:
        print(f"{command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        print(f"{command}: interrupted", file=sys.stderr)
        return getattr(exc, "exit_code", 130)
    except MemoryError as exc:
        detail = f" ({exc})" if str(exc) else ""
        sizes = [f"--{name.replace('_', '-')}" for name in _SIZE_OPTIONS
                 if args is not None and name in vars(args)]
        hint = f"; choose smaller sizes ({', '.join(sizes)})" if sizes else ""
        print(f"{command}: error: out of memory{detail}{hint}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return _reader_gone()
    except (ValueError, TypeError, OSError) as exc:
        if _closed_pipe_on_windows(exc):
            return _reader_gone()
        message = str(exc)
        for library, cli in CLI_HINTS.items():
            message = message.replace(library, cli)
        message = in_flags(message, flags)
        print(f"{command}: error: {message}", file=sys.stderr)
        return getattr(exc, "exit_code", 2)  # 3: training diverged (TrainingDiverged)


if __name__ == "__main__":
    raise SystemExit(main())
