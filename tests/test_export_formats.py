"""`lstmlab export --format torch|keras`: the files each ecosystem loads, round-tripped.

torch: a safetensors file that docs/interop.md's module definition loads, verbatim, in a
fresh interpreter where lstmlab cannot be imported; its greedy text equals lstmlab's (float64).
keras: a .keras file that keras.saving.load_model opens; its logits equal lstmlab's (float32).
"""

import json
import os
import pathlib
import re
import stat
import subprocess
import sys

import numpy as np
import pytest

from lstmlab.cli import main
from lstmlab.data.text import Vocab
from lstmlab.layers.model import CharLM, CharLMConfig
from lstmlab.training.lm import LMTrainer, TrainConfig, generate, load_charlm
from test_interop_keras import keras  # noqa: F401  (the fixture: Keras on its torch backend)

TEXT = "the cell state carries the gradient; the gates decide. " * 30
DOC = pathlib.Path(__file__).resolve().parents[1] / "docs" / "interop.md"


def _doc_block(first_line: str) -> str:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text("utf-8"), flags=re.S)
    (block,) = [b for b in blocks if b.startswith(first_line)]
    return block


# Seeds whose trained weights generate more than one repeated character greedily, so that
# equal greedy texts say something.
SEEDS = {"lstm": 11, "gru": 13, "rnn": 11}


def _checkpoint(d: pathlib.Path, cell: str, dtype: str) -> pathlib.Path:
    vocab = Vocab.from_text(TEXT)
    ids = vocab.encode(TEXT)
    rng = np.random.default_rng(SEEDS[cell])
    model = CharLM(CharLMConfig(vocab_size=len(vocab), hidden_size=12, num_layers=2,
                                embed_dim=7, cell=cell, dtype=dtype), rng=rng)
    for v in model.params().values():  # non-zero biases everywhere, not the initial ones
        v[...] = rng.normal(0, 0.4, size=v.shape)
    cfg = TrainConfig(seq_len=16, batch_size=4, steps=4, eval_every=4, checkpoint_every=4,
                      lr=0.01)
    LMTrainer(model, vocab, ids[:1500], ids[1500:], cfg, d, rng, progress=False).run()
    return d / "best.ckpt"


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_safetensors_loads_into_the_documented_module(cell, tmp_path, capsys, monkeypatch):
    pytest.importorskip("torch")
    pytest.importorskip("safetensors")
    ckpt = _checkpoint(tmp_path / "run", cell, "float64")
    assert main(["export", str(ckpt), "--format", "torch",
                 "--out", str(tmp_path / "charlm.safetensors")]) == 0
    assert "charlm.safetensors" in capsys.readouterr().out
    snippet = _doc_block("# Needs only torch and safetensors")
    assert "lstmlab" not in snippet
    if cell == "lstm":  # in a fresh interpreter where lstmlab cannot be imported
        guard = "import sys; sys.modules['lstmlab'] = None\n"
        res = subprocess.run([sys.executable, "-c", guard + snippet], cwd=tmp_path,
                             capture_output=True, text=True, timeout=300)
        assert res.returncode == 0, res.stderr
        printed = res.stdout
    else:  # the same block in this process (torch is already imported: seconds less)
        monkeypatch.chdir(tmp_path)
        exec(snippet, {})
        printed = capsys.readouterr().out
    model, vocab, _ = load_charlm(ckpt)
    want = generate(model, vocab, "the ", 40, temperature=0.0, top_k=0,
                    rng=np.random.default_rng(0))
    assert printed == "the " + want + "\n"
    assert len(set(want)) > 1


# Keras's torch backend calls np.array on torch tensors, which NumPy 2 warns about (a
# DeprecationWarning, silent outside tests); nothing of lstmlab's is concerned.
KERAS_TORCH_NUMPY = "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"


@pytest.mark.filterwarnings(KERAS_TORCH_NUMPY)
@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_keras_file_predicts_what_lstmlab_predicts(cell, keras, tmp_path, monkeypatch, capsys):
    ckpt = _checkpoint(tmp_path / "run", cell, "float32")
    out = tmp_path / "charlm.keras"
    assert main(["export", str(ckpt), "--format", "keras", "--out", str(out)]) == 0
    assert "charlm.vocab.json" in capsys.readouterr().out
    side = json.loads((tmp_path / "charlm.vocab.json").read_text(encoding="utf-8"))
    model, vocab, _ = load_charlm(ckpt)
    assert side["vocab"] == vocab.to_json() and side["model"]["cell"] == cell
    monkeypatch.chdir(tmp_path)
    namespace = {}
    reader = _doc_block("import hashlib\nimport json\n\nimport keras")  # the documented use
    exec(reader, namespace)
    ours, _ = model.forward(vocab.encode("the cell")[:, None])
    np.testing.assert_allclose(namespace["logits"][0], ours[:, 0], rtol=1e-5, atol=1e-5)
    side["model_file"]["sha256"] = "0" * 64  # the vocabulary of another export
    (tmp_path / "charlm.vocab.json").write_text(json.dumps(side), encoding="utf-8")
    with pytest.raises(ValueError, match="charlm.vocab.json belongs to another export"):
        exec(reader, {})
    loaded = keras.saving.load_model(out)
    batch = np.stack([vocab.encode("gates de"), vocab.encode("the cell")])  # B = 2, T = 8
    theirs = loaded.predict(batch, verbose=0)
    ours, _ = model.forward(batch.T)
    np.testing.assert_allclose(theirs, ours.transpose(1, 0, 2), rtol=1e-5, atol=1e-5)


def _sha256(path) -> str:
    import hashlib

    return hashlib.sha256(pathlib.Path(path).read_bytes()).hexdigest()


def test_a_failure_between_model_and_vocabulary_leaves_no_pair_of_two_exports(tmp_path,
                                                                             monkeypatch,
                                                                             capsys):
    # a failure (disk full) after the model file left the new model beside the vocabulary
    # file of the earlier export, of another model, with nothing to tell them apart
    import lstmlab.training.checkpoint as checkpoint

    lstm, gru = (_checkpoint(tmp_path / cell, cell, "float32") for cell in ("lstm", "gru"))
    out, side = tmp_path / "m.npz", tmp_path / "m.vocab.json"
    export = ["export", "--format", "torch-npz", "--out", str(out)]
    assert main([*export, str(lstm)]) == 0
    pair = json.loads(side.read_text(encoding="utf-8"))["model_file"]
    assert pair == {"name": "m.npz", "sha256": _sha256(out)}  # the reader's check
    write_text = checkpoint.atomic_write_text

    def disk_full_for_the_vocabulary(path, text):
        if str(path).endswith(".vocab.json"):
            raise OSError(f"cannot write {path}: No space left on device")
        write_text(path, text)

    monkeypatch.setattr(checkpoint, "atomic_write_text", disk_full_for_the_vocabulary)
    capsys.readouterr()
    assert main([*export, str(gru)]) == 2
    assert f"{out} is written without its vocabulary: export again" in capsys.readouterr().err
    assert not side.exists()
    monkeypatch.undo()
    assert main([*export, str(gru)]) == 0
    side_of_gru = json.loads(side.read_text(encoding="utf-8"))
    assert side_of_gru["model"]["cell"] == "gru" and side_of_gru["model_file"]["sha256"] == \
        _sha256(out) != pair["sha256"]


@pytest.mark.parametrize("fmt, name, ending", [
    ("keras", "m.h5", ".keras"), ("onnx", "m.pb", ".onnx"), ("torch", "m.pt", ".safetensors"),
    ("torch-npz", "m", ".npz"), ("keras-npz", "m.keras-npz", ".npz"), ("onnx", "M.ONNX", ".onnx"),
    ("torch-npz", ".npz", ".npz")])
def test_export_needs_the_file_ending_of_its_format(fmt, name, ending, tmp_path, capsys):
    # only keras checked its --out: torch-npz to "m" wrote a file np.load's users look for as
    # m.npz, torch to "m.pt" a safetensors file that torch.load cannot open
    missing = tmp_path / "any.ckpt"  # refused before the checkpoint is read
    assert main(["export", str(missing), "--format", fmt, "--out", str(tmp_path / name)]) == 2
    err = capsys.readouterr().err
    assert f"--out must end in {ending} for --format {fmt}" in err and name in err, err
    assert "Traceback" not in err and list(tmp_path.iterdir()) == []


def test_export_refuses_a_vocabulary_file_it_cannot_write_before_writing(tmp_path, capsys):
    ckpt = _checkpoint(tmp_path / "run", "lstm", "float32")
    (tmp_path / "m.vocab.json").mkdir()
    for fmt in ("torch-npz", "keras-npz"):
        assert main(["export", str(ckpt), "--format", fmt, "--out", str(tmp_path / "m.npz")]) == 2
        err = capsys.readouterr().err
        assert "--out" in err and "m.vocab.json" in err and "a directory" in err, err
        assert not (tmp_path / "m.npz").exists()  # not a model file without its vocabulary
    if hasattr(os, "mkfifo"):  # a FIFO would be replaced by the vocabulary's rename
        os.mkfifo(tmp_path / "p.vocab.json")
        assert main(["export", str(ckpt), "--format", "keras-npz", "--out",
                     str(tmp_path / "p.npz")]) == 2
        assert "p.vocab.json" in capsys.readouterr().err
        assert stat.S_ISFIFO((tmp_path / "p.vocab.json").stat().st_mode)
        assert not (tmp_path / "p.npz").exists()
    copy = tmp_path / "c.vocab.json"
    copy.write_bytes(ckpt.read_bytes())
    assert main(["export", str(copy), "--format", "torch-npz", "--out", str(tmp_path / "c.npz")]) == 2
    assert "the CKPT this command reads" in capsys.readouterr().err
    assert copy.read_bytes() == ckpt.read_bytes() and not (tmp_path / "c.npz").exists()


def test_export_does_not_replace_a_vocabulary_file_of_the_users_own(tmp_path, capsys):
    # m.vocab.json, a file of the user's beside --out m.npz, was replaced unasked
    ckpt = _checkpoint(tmp_path / "run", "lstm", "float32")
    side = tmp_path / "m.vocab.json"
    for mine in ('{"vocab": ["a", "b"]}', "[1, 2]", "not JSON", "\xff"):
        side.write_text(mine, encoding="latin-1")
        assert main(["export", str(ckpt), "--format", "torch-npz", "--out",
                     str(tmp_path / "m.npz")]) == 2
        err = capsys.readouterr().err
        assert "m.vocab.json' beside it, which is a file that no export wrote" in err, err
        assert side.read_text(encoding="latin-1") == mine and not (tmp_path / "m.npz").exists()
    # the vocabulary of an earlier export, even one written before "model_file", is replaced
    side.write_text(json.dumps({"vocab": ["a"], "model": {}}), encoding="utf-8")
    assert main(["export", str(ckpt), "--format", "torch-npz", "--out", str(tmp_path / "m.npz")]) == 0
    assert json.loads(side.read_text(encoding="utf-8"))["model_file"]["name"] == "m.npz"


def test_keras_that_does_not_import_on_its_backend_is_named(monkeypatch):
    # KERAS_BACKEND=numpy where Keras' numpy backend misses jax: `lstmlab export --format
    # keras` ended in a traceback from inside Keras; it is a MissingExtra, one line in the CLI
    import importlib.util

    from lstmlab import LSTM, Embedding, Linear
    from lstmlab._extras import MissingExtra
    from lstmlab.interop import keras_charlm

    if importlib.util.find_spec("keras") is None:
        pytest.skip("Keras is not installed")
    before = set(sys.modules)
    for name in [n for n in sys.modules if n == "keras" or n.startswith("keras.")]:
        monkeypatch.delitem(sys.modules, name)  # Keras imported afresh, on the backend below
    monkeypatch.setitem(sys.modules, "jax", None)
    monkeypatch.setenv("KERAS_BACKEND", "numpy")
    try:
        with pytest.raises(MissingExtra, match=r"does not import on its backend "
                                               r"KERAS_BACKEND='numpy' \(.*jax"):
            keras_charlm(Embedding(5, 2), LSTM(2, 3), Linear(3, 5))
    finally:
        for name in set(sys.modules) - before:  # the half-imported Keras goes
            del sys.modules[name]


def test_an_export_does_not_take_the_vocabulary_of_another_export(tmp_path, capsys):
    # m.keras and m.npz both keep their vocabulary in m.vocab.json: the second export
    # replaced the first's, which then failed its reader's hash check for good
    ckpt = _checkpoint(tmp_path / "run", "lstm", "float32")
    side, keras_file, other = tmp_path / "m.vocab.json", tmp_path / "m.keras", tmp_path / "m.npz"
    keras_file.write_bytes(b"a keras export")  # its pair, as the keras export writes it
    side.write_text(json.dumps({"vocab": [], "model": {}, "model_file": {
        "name": "m.keras", "sha256": _sha256(keras_file)}}), encoding="utf-8")
    first = side.read_bytes()
    assert main(["export", str(ckpt), "--format", "keras-npz", "--out", str(other)]) == 2
    err = capsys.readouterr().err
    assert "--out" in err and "m.vocab.json" in err and "'m.keras'" in err, err
    assert side.read_bytes() == first and not other.exists()
    # a pair whose model file changed is stale; the same --out again replaces its own pair
    keras_file.write_bytes(b"another file")
    assert main(["export", str(ckpt), "--format", "torch-npz", "--out", str(other)]) == 0
    assert main(["export", str(ckpt), "--format", "keras-npz", "--out", str(other)]) == 0
    assert json.loads(side.read_text(encoding="utf-8"))["model_file"] == {
        "name": "m.npz", "sha256": _sha256(other)}
