"""``lstmlab export``: a trained char-LM written for ONNX, PyTorch or Keras.

The help text, the parser and the command, and the vocabulary file written beside a model
file (``<out>.vocab.json``, paired with it by the model file's SHA-256). The converters are in
:mod:`lstmlab.interop`.
"""

from __future__ import annotations

import argparse
import os
import stat
from pathlib import Path

from ._argtypes import input_path as _input_path
from ._argtypes import output_file as _output_file
from ._argtypes import refuse_overwriting_inputs


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

--out ends in the format's ending: .onnx, .safetensors (torch), .keras, .npz (torch-npz,
keras-npz); another name is refused before the checkpoint is read.

<out>.vocab.json holds the vocabulary, the model's sizes and "model_file": the name and
SHA-256 of the model file written with it. Compare that hash with the model file's before
using the vocabulary (docs/interop.md): a mismatch means the two come from different exports.
An export whose <out>.vocab.json is the vocabulary of another model file beside it (charlm.npz
after charlm.keras), or a file that no export wrote, stops before writing anything: choose
another --out.

examples:
  lstmlab export runs/stdlib/best.ckpt --format onnx --out charlm.onnx
  lstmlab export runs/stdlib/best.ckpt --format torch --out charlm.safetensors
  lstmlab export runs/stdlib/best.ckpt --format keras --out charlm.keras
  lstmlab export runs/stdlib/best.ckpt --format torch-npz --out charlm_torch.npz
"""

EXPORT_EXTRAS = {"onnx": "onnx", "torch": "torch", "keras": "keras"}
# The ending each format's --out needs, and why: the name tells the file's reader what it
# holds (a torch.save .pt would be opened with torch.load, which cannot read safetensors).
FORMAT_ENDINGS = {
    "onnx": (".onnx", "the file is an ONNX graph"),
    "torch": (".safetensors", "the file is safetensors, which safetensors.torch.load_file "
                              "reads and torch.load does not"),
    "keras": (".keras", "keras.saving.load_model opens only those"),
    "torch-npz": (".npz", "the file is a NumPy archive, which np.load reads"),
    "keras-npz": (".npz", "the file is a NumPy archive, which np.load reads"),
}
SIDE_FILE_FORMATS = ("keras", "torch-npz", "keras-npz")  # these write <out>.vocab.json beside


def _check_side_file(side: Path, out: str, checkpoint: str) -> None:
    """Refuse, before anything is written, an --out whose <out>.vocab.json cannot be written,
    is no regular file, is the checkpoint, is a file that no export wrote or belongs to another
    model file: the export would stop half done, its model file without its vocabulary,
    destroy what it reads, or replace a file of the user's or another export's vocabulary."""
    from ._files import file_kind

    where = f"--out {out!r}: its vocabulary goes to {str(side)!r} beside it, which is"
    # A folder, FIFO or device there: reading it for a pairing would block (a FIFO), and the
    # write's rename would fail (a folder) or replace it.
    if side.exists() and not stat.S_ISREG(side.stat().st_mode):
        raise ValueError(f"{where} {file_kind(side.stat().st_mode)}; choose another --out")
    if side.exists() and Path(checkpoint).exists() and os.path.samefile(side, checkpoint):
        raise ValueError(f"{where} the CKPT this command reads; choose another --out")
    if side.exists() and _export_vocabulary(side) is None:
        raise ValueError(f"{where} a file that no export wrote (a JSON object with \"vocab\" "
                         f"and \"model\"); writing it would replace that file, so choose "
                         f"another --out or move the file away")
    other = _paired_model_file(side)
    if other is not None and other != Path(out).name:
        raise ValueError(f"{where} the vocabulary of {other!r}, another export of the same "
                         f"name stem that still matches it; writing it would leave {other} "
                         f"without its vocabulary, so choose another --out")


def _export_vocabulary(side: Path) -> dict | None:
    """The content of ``side`` when an export wrote it (a JSON object with "vocab" and
    "model"); None for any other file or none."""
    from ._files import small_json

    described = small_json(side)
    ours = isinstance(described, dict) and {"vocab", "model"} <= described.keys()
    return described if ours else None


def _paired_model_file(side: Path) -> str | None:
    """The name of the model file that the vocabulary file ``side`` belongs to, when that file
    exists beside it with the SHA-256 recorded in ``side`` (a pair still in use); else None."""
    import hashlib

    try:
        pair = (_export_vocabulary(side) or {})["model_file"]
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


def add_export_parser(sub):
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
    ending, why = FORMAT_ENDINGS[args.format]
    if out.suffix != ending:  # ".npz" alone is a hidden file with no ending
        bare = ", a name with nothing before the ending" if out.name == ending else ""
        raise ValueError(f"--out must end in {ending} for --format {args.format} ({why}), "
                         f"got {args.out!r}{bare}")
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
