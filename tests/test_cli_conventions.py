"""What a new user meets first: --version, the extras each command checks before any work,
help texts that name the real files, hints worded for the command line, and evaluate scoring
the whole file."""

import errno
import json
import math
import os
import re
import tempfile
from pathlib import Path

import numpy as np
import pytest
from seq_helpers import without_compile_notice

import lstmlab
from lstmlab import _extras
from lstmlab.cli import main
from lstmlab.data.text import Vocab
from lstmlab.interop import import_onnx, save_safetensors, to_onnx
from lstmlab.layers.model import CharLM, CharLMConfig
from lstmlab.training.checkpoint import atomic_write_bytes, save_checkpoint
from lstmlab.training.lm import LMTrainer, TrainConfig, evaluate_text, load_charlm

TEXT = "the forget gate keeps, the input gate writes; " * 40


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    d = tmp_path_factory.mktemp("conv")
    vocab = Vocab.from_text(TEXT)
    ids = vocab.encode(TEXT)
    rng = np.random.default_rng(3)
    model = CharLM(CharLMConfig(vocab_size=len(vocab), hidden_size=6, num_layers=2, embed_dim=5),
                   rng=rng)
    cfg = TrainConfig(seq_len=12, batch_size=4, steps=3, eval_every=3, checkpoint_every=3)
    LMTrainer(model, vocab, ids[:1600], ids[1600:], cfg, d, rng, progress=False).run()
    return d / "best.ckpt"


def test_version(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"lstmlab {lstmlab.__version__}"


@pytest.mark.parametrize("argv, extra", [
    (["export", "missing.ckpt", "--format", "onnx", "--out", "m.onnx"], "onnx"),
    (["export", "missing.ckpt", "--format", "torch", "--out", "m.safetensors"], "torch"),
    (["export", "missing.ckpt", "--format", "keras", "--out", "m.keras"], "keras"),
    (["classify", "train", "--out", "never"], "sklearn"),
])
def test_a_missing_extra_stops_before_any_work(argv, extra, monkeypatch, capsys, tmp_path):
    gone = set(_extras.MODULES[extra])
    real = _extras._installed
    monkeypatch.setattr(_extras, "_installed", lambda m: m not in gone and real(m))
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err
    # one line naming the extra, not the missing checkpoint (which is read only afterwards)
    assert err.count("\n") == 1 and f"pip install 'lstmlab[{extra}]'" in err, err
    assert "Traceback" not in err and "missing.ckpt" not in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("argv", [["classify", "predict"], ["forecast", "predict"]])
def test_an_error_of_an_action_names_the_command_and_the_action(argv, tmp_path, capsys):
    # the prefix was "lstmlab classify: error:" without the action (train, predict)
    data = tmp_path / "data.csv"
    data.write_text("id,x\n0,1\n", encoding="utf-8")
    assert main(argv + [str(tmp_path / "missing.ckpt"), str(data)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"lstmlab {argv[0]} predict: error: "), err
    assert "missing.ckpt" in err


def test_the_keras_extra_needs_a_backend(monkeypatch):
    monkeypatch.setenv("KERAS_BACKEND", "jax")
    monkeypatch.setattr(_extras, "_installed", lambda m: m == "keras")
    with pytest.raises(_extras.MissingExtra, match=r"missing: a Keras backend \(jax\)"):
        _extras.require("keras", "export --format keras")


def test_a_keras_backend_name_keras_does_not_know_is_named(monkeypatch):
    # KERAS_BACKEND=nonsense was reported as a missing extra, with a pip line that cannot help
    monkeypatch.setenv("KERAS_BACKEND", "nonsense")
    with pytest.raises(ValueError, match="KERAS_BACKEND='nonsense' names no Keras backend"):
        _extras.require("keras", "export --format keras")


def test_no_extra_for_the_npz_forms(ckpt, tmp_path, monkeypatch):
    monkeypatch.setattr(_extras, "_installed", lambda m: False)
    for fmt in ("torch-npz", "keras-npz"):
        assert main(["export", str(ckpt), "--format", fmt, "--out", str(tmp_path / f"{fmt}.npz")]) == 0
        side = json.loads((tmp_path / f"{fmt}.vocab.json").read_text(encoding="utf-8"))
        assert "".join(side["vocab"]) == "".join(sorted(set(TEXT)))


def _help(argv, capsys) -> str:
    with pytest.raises(SystemExit):
        main(argv + ["--help"])
    return capsys.readouterr().out


def test_help_texts_name_the_real_files(capsys):
    from lstmlab.forecast.data import shipped_path
    assert "airline_passengers.csv" in _help(["forecast", "predict"], capsys)
    assert "airline.csv" not in _help(["forecast", "predict"], capsys).replace(
        "airline_passengers.csv", "")
    assert shipped_path("airline").name == "airline_passengers.csv"
    export = _help(["export"], capsys)
    assert "<out>.vocab.json" in export and " vocab.json" not in export


def command_parsers(parser, path=()):
    """(path, parser) of every command and action of ``lstmlab``."""
    import argparse
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from command_parsers(sub, (*path, name))
            return
    yield path, parser


def test_every_option_with_a_default_states_it_in_its_help():
    """A user reads an option's default in --help: every option whose value is something
    unless given says what, in its help line."""
    import argparse

    from lstmlab.cli import build_parser
    silent = []
    for path, parser in command_parsers(build_parser()):
        for action in parser._actions:
            if (not action.option_strings or action.nargs == 0
                    or action.default is None or action.default == argparse.SUPPRESS):
                continue
            if "default" not in (action.help or ""):
                silent.append(" ".join((*path, action.option_strings[-1])))
    assert not silent, silent


def test_forecast_help_names_the_bases_the_default_chooses_among(capsys):
    base = " ".join(_help(["forecast", "train"], capsys).split("--base {")[2].split())
    assert "chosen on validation among ar, naive and snaive" in base
    assert "ets is tried only when given" in base
    demo = _help(["demo"], capsys)
    assert "minutes on" not in demo and "15 seconds" in demo


def test_hints_are_worded_for_the_command_line(ckpt, tmp_path, capsys):
    assert main(["generate", str(ckpt), "--prompt", "Zebra", "--length", "3"]) == 2
    err = capsys.readouterr().err
    assert "--unknown replace" in err and "unknown='replace'" not in err
    held = tmp_path / "held.txt"
    held.write_text("the Zebra gate", encoding="utf-8")
    assert main(["evaluate", str(ckpt), str(held)]) == 2
    err = capsys.readouterr().err
    assert "--unknown replace" in err and "unknown='replace'" not in err
    assert main(["evaluate", str(ckpt), str(held), "--unknown", "replace"]) == 0


def test_generate_without_prompt_starts_from_a_character_the_model_knows(ckpt, capsys):
    # TEXT has no newline, the documented default prompt; the default must still work
    assert main(["generate", str(ckpt), "--length", "7", "--seed", "0"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(" ") and len(out) == 1 + 7 + 1  # prompt, continuation, newline


@pytest.mark.parametrize("argv", [
    ["train", "{text}", "--steps", "2", "--out", "{file}"],
    ["train", "{text}", "--steps", "2", "--out", "{file}/run"],
    ["forecast", "train", "--epochs", "1", "--out", "{file}"],
    ["classify", "train", "{text}", "--out", "{file}/run"],
    ["inspect", "{ckpt}", "--text", "the", "--out", "{file}"],
    ["demo", "--quick", "--out", "{file}"],
    ["experiment", "adding", "--lengths", "20", "--out", "{file}"],
    ["export", "{ckpt}", "--format", "torch-npz", "--out", "{dir}"],
    ["export", "{ckpt}", "--format", "torch-npz", "--out", "{file}/m.npz"],
    ["forecast", "predict", "{ckpt}", "{text}", "--out", "{dir}"],
    ["classify", "predict", "{ckpt}", "{text}", "--out", "{dir}"],
    ["explore", "{ckpt}", "{text}", "--save", "{dir}"],
], ids=lambda argv: " ".join(argv[:2]) + " " + argv[-1])
def test_an_output_path_that_cannot_be_written_is_refused_before_any_work(argv, ckpt, tmp_path,
                                                                         capsys):
    # a run directory that is a file, a file that is a directory, a path below a file:
    # refused by name at once, instead of an OSError naming a temporary file after the work
    text = tmp_path / "text.txt"
    text.write_text(TEXT, encoding="utf-8")
    (tmp_path / "folder").mkdir()
    paths = {"text": text, "file": text, "dir": tmp_path / "folder", "ckpt": ckpt}
    before = sorted(tmp_path.rglob("*"))
    with pytest.raises(SystemExit) as exc:  # argparse's usage error, as for a bad number
        main([a.format(**{k: str(v) for k, v in paths.items()}) for a in argv])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    flag = "--save" if "--save" in argv else "--out"
    assert f"error: argument {flag}: " in err and str(tmp_path) in err, err
    assert "Errno" not in err and ".tmp" not in err
    assert sorted(tmp_path.rglob("*")) == before  # nothing written


@pytest.mark.parametrize("path, problem", [
    ("NUL", "'NUL' is a name Windows keeps for a device"),
    ("runs/con.txt", "'con.txt' is a name Windows keeps for a device"),
    ("C:\\runs\\Com7 .csv", "'Com7 .csv' is a name Windows keeps for a device"),
    ("lpt1/model.npz", "'lpt1' is a name Windows keeps for a device"),
    ("runs/a?b", "'a?b' holds '?', which Windows does not allow in a file name"),
    ('out"s.csv', """'out"s.csv' holds '"', which Windows"""),
    ("runs/x:y", "'x:y' holds ':'"),
    ("runs./m.npz", "'runs.' ends in a dot, which Windows drops"),
    ("m.npz ", "'m.npz ' ends in a space"),
])
def test_a_name_windows_cannot_create_is_named_there_and_taken_elsewhere(path, problem):
    from lstmlab._argtypes import windows_name_problem

    assert problem in windows_name_problem(path, "nt")
    assert windows_name_problem(path, "posix") is None


def test_names_windows_can_create_pass_its_check():
    from lstmlab._argtypes import windows_name_problem

    for path in ["C:\\runs\\model.npz", "D:out.csv", "..\\runs\\.\\console.csv",
                 "\\\\server\\share\\CONFIG\\nul-free.txt", "com10.csv", "runs/.hidden",
                 "-"]:
        assert windows_name_problem(path, "nt") is None, path


@pytest.mark.parametrize("argv, flag", [
    (["export", "{ckpt}", "--format", "torch-npz", "--out", "nul.npz"], "--out"),
    (["classify", "train", "--out", "runs/gate?"], "--out"),
    (["explore", "{ckpt}", "{ckpt}", "--save", "page.html."], "--save"),
], ids=["output file", "output folder", "--save"])
def test_a_name_windows_cannot_create_is_refused_there_before_any_work(argv, flag, ckpt,
                                                                      tmp_path, monkeypatch,
                                                                      capsys):
    # on Windows, 'export --out nul.npz' trained or converted first, then failed writing
    from lstmlab import _argtypes

    class WindowsOs:  # os.name "nt" for the option checks alone: pathlib stays this system's
        name = "nt"

        def __getattr__(self, attr):
            return getattr(os, attr)

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(_argtypes, "os", WindowsOs())
    with pytest.raises(SystemExit) as exc:
        main([a.format(ckpt=ckpt) for a in argv])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert f"error: argument {flag}: cannot create {argv[-1]!r} on Windows: " in err, err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("argv", [
    ["inspect", "{ckpt}", "--text", "the gate", "--out", "{ro}"],
    ["demo", "--quick", "--out", "{ro}"],
    ["forecast", "train", "--epochs", "1", "--out", "{ro}"],
], ids=["inspect", "demo", "forecast train"])
def test_an_existing_folder_this_user_cannot_write_is_refused_before_any_work(argv, ckpt,
                                                                            tmp_path,
                                                                            monkeypatch,
                                                                            capsys):
    # checked only for a folder still to be created: an existing read-only one let the
    # command do its work first (the demo's minutes) and fail when it wrote
    ro = tmp_path / "ro"
    ro.mkdir()
    make = tempfile.TemporaryFile

    def refusing(*args, dir=None, **kw):  # a read-only folder, also for root (and as an ACL
        if dir is not None and Path(dir) == ro:  # on Windows refuses, which os.access misses)
            raise PermissionError(13, "Permission denied", str(ro))
        return make(*args, dir=dir, **kw)

    monkeypatch.setattr(tempfile, "TemporaryFile", refusing)
    with pytest.raises(SystemExit) as exc:
        main([a.format(ckpt=ckpt, ro=ro) for a in argv])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert f"error: argument --out: cannot write in {str(ro)!r}: Permission denied" in err, err
    assert list(ro.iterdir()) == []


@pytest.mark.parametrize("argv, written", [
    (["export", "{ckpt}", "--format", "torch-npz", "--out=~/m.npz"], "m.npz"),
    (["inspect", "{ckpt}", "--text", "the gate", "--out=~/insp"], "insp/inspect.html"),
], ids=["output file", "output folder"])
def test_a_tilde_the_shell_left_in_an_output_path_is_the_home_folder(argv, written, ckpt,
                                                                     tmp_path, monkeypatch,
                                                                     capsys):
    # the shell does not expand the ~ of --out=~/x: a folder named '~' was created in the
    # current one, and the output went there instead of the home folder
    home, cwd = tmp_path / "home", tmp_path / "cwd"
    home.mkdir()
    cwd.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(cwd)
    assert main([a.format(ckpt=ckpt) for a in argv]) == 0
    assert (home / written).is_file() and list(cwd.iterdir()) == []
    assert str(home) in capsys.readouterr().out


@pytest.mark.parametrize("command", [["forecast", "train", "--target", "y"], ["classify", "train"]])
def test_a_feature_column_given_twice_is_refused(command, tmp_path, capsys):
    # read twice, it would be two inputs holding the same values
    data = tmp_path / "d.csv"
    data.write_text("id,y,a,label\n" + "".join(f"{i // 5},{i},{i % 3},{i // 5 % 2}\n"
                                                for i in range(60)), encoding="utf-8")
    with pytest.raises(SystemExit) as exc:
        main([command[0], command[1], str(data), *command[2:], "--features", "a,y,a",
              "--out", str(tmp_path / "r")])
    assert exc.value.code == 2
    assert ("argument --features: expected each column once, got a more than once"
            in capsys.readouterr().err)


def test_a_failed_write_names_the_file_asked_for_and_leaves_nothing(tmp_path, monkeypatch):
    (tmp_path / "folder").mkdir()
    with pytest.raises(IsADirectoryError, match="^" + re.escape(f"cannot write {tmp_path / 'folder'}: ")):
        atomic_write_bytes(tmp_path / "folder", b"x")

    def disk_full(src, dst):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), src)

    monkeypatch.setattr(os, "replace", disk_full)
    target = tmp_path / "report.json"
    with pytest.raises(OSError, match="^" + re.escape(f"cannot write {target}: No space left on device") + "$"):
        atomic_write_bytes(target, b"{}")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["folder"]  # no temporary file left


class _ClosedPipe:
    """stdout whose reader has gone away, as ``lstmlab generate ... | head -c 3`` leaves it."""

    def __init__(self, room):
        self.room = room  # characters the reader takes before it goes

    def write(self, text):
        if len(text) > self.room:
            raise BrokenPipeError(32, "Broken pipe")
        self.room -= len(text)
        return len(text)

    def flush(self):
        pass


def test_a_reader_that_goes_away_stops_the_output_quietly(ckpt, monkeypatch, capsys):
    monkeypatch.setattr("sys.stdout", _ClosedPipe(3))
    assert main(["generate", str(ckpt), "--prompt", "the", "--length", "50", "--seed", "0"]) == 141
    assert without_compile_notice(capsys.readouterr().err) == ""  # no "error: [Errno 32] ..."


def test_evaluate_scores_every_character_whatever_the_chunk(ckpt, tmp_path, capsys):
    model, vocab, _ = load_charlm(ckpt, dtype=np.float64)
    text = TEXT[:611]  # 610 characters to score: no chunk length below divides it evenly
    ids = vocab.encode(text)
    # the reference: one forward over the whole text
    logits, _ = model.forward(ids[:-1, None])
    z = logits[:, 0] - logits[:, 0].max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    want = -logp[np.arange(len(ids) - 1), ids[1:]].mean()
    for seq_len in (1, 7, 25, 200, 609, 610, 5000):
        loss, n = evaluate_text(model, ids, seq_len)
        assert n == 610
        assert loss == pytest.approx(want, rel=1e-12)
    held = tmp_path / "held.txt"
    held.write_text(text, encoding="utf-8")
    for seq_len in ("25", "200"):
        assert main(["evaluate", str(ckpt), str(held), "--seq-len", seq_len]) == 0
        out = capsys.readouterr().out
        assert "(610 characters scored)" in out
        bits = float(out.split("= ")[1].split()[0])
        assert bits == pytest.approx(want / math.log(2), abs=2e-4)  # float32 checkpoint
    with pytest.raises(ValueError, match="at least 2 tokens"):
        evaluate_text(model, ids[:1], 10)


def test_evaluate_leaves_the_training_mode(ckpt):
    model, vocab, _ = load_charlm(ckpt)
    model.train()
    evaluate_text(model, vocab.encode(TEXT[:50]), 8)
    assert model.training


def test_checkpoint_of_another_kind_is_not_exported(tmp_path, capsys):
    path = tmp_path / "f.ckpt"
    save_checkpoint(path, {"kind": "forecaster"}, {"x": np.zeros(2)})
    assert main(["export", str(path), "--format", "torch-npz", "--out", str(tmp_path / "x.npz")]) == 2
    assert "forecaster" in capsys.readouterr().err


def test_a_first_compile_is_announced_and_timed(monkeypatch, tmp_path):
    """first_compile's contract, with numba's count of compiles replaced: the notice comes
    while the block runs (the block waits for it), and the time recorded is the next
    estimate. A block that only loads from the cache says nothing."""
    import threading

    from lstmlab import _compile_notice as notice
    from lstmlab.kernels import fast
    if not fast.available():
        pytest.skip("numba is not importable")
    record = tmp_path / "record.json"
    monkeypatch.setattr(notice, "_record_path", lambda loops: record)
    compiles = [0]
    monkeypatch.setattr(notice, "_cache_misses", lambda loops: compiles[0])
    said, heard = [], threading.Event()

    def log(msg):
        said.append(msg)
        heard.set()

    with notice.first_compile(log):
        compiles[0] += 2  # the block starts compiling two kernels
        assert heard.wait(60)
    assert said[0] == f"compiling kernels, once: ~{notice.FIRST_COMPILE_SECONDS} s"
    assert said[1].startswith("kernels compiled in ")
    assert json.loads(record.read_text())["seconds"] >= 0
    said.clear()
    heard.clear()
    record.write_text(json.dumps({"seconds": 12.6}))
    with notice.first_compile(log):
        compiles[0] += 1
        assert heard.wait(60)
    assert said[0] == "compiling kernels, once: ~13 s"
    said.clear()
    before = record.read_text()
    with notice.first_compile(log):  # loads only: numba's count does not move
        pass
    assert said == [] and record.read_text() == before


def test_train_compiles_before_its_timed_loop(monkeypatch, tmp_path, capsys):
    """The kernels' first calls (and their notice) come before the first progress line, so
    neither ETA nor chars/s counts a compile."""
    import contextlib

    from lstmlab import _compile_notice as notice

    @contextlib.contextmanager
    def announcing(log):
        log("compiling kernels, once: ~1 s")
        yield

    monkeypatch.setattr(notice, "first_compile", announcing)
    corpus = tmp_path / "c.txt"
    corpus.write_text(TEXT, encoding="utf-8")
    assert main(["train", str(corpus), "--hidden", "6", "--layers", "2", "--embed", "5",
                 "--steps", "2", "--seq-len", "12", "--batch-size", "4",
                 "--out", str(tmp_path / "run")]) == 0
    lines = capsys.readouterr().err.splitlines()
    first_step = next(i for i, line in enumerate(lines) if line.lstrip("\r").startswith("step "))
    assert lines.index("compiling kernels, once: ~1 s") < first_step


@pytest.mark.parametrize("call, extra", [
    (lambda: to_onnx(lstmlab.LSTM(2, 3)), "onnx"),
    (lambda: import_onnx(b""), "onnx"),
    (lambda: save_safetensors("never.safetensors", {}), "torch"),
])
def test_library_functions_name_their_extra(call, extra, monkeypatch):
    monkeypatch.setattr(_extras, "_installed", lambda m: m not in _extras.MODULES[extra])
    with pytest.raises(_extras.MissingExtra, match=rf"pip install 'lstmlab\[{extra}\]'"):
        call()


def _written(text: str) -> set:
    """The paths on a command's 'wrote ...' line, before any note in brackets."""
    line = next(l for l in text.splitlines() if l.startswith("wrote "))
    return {Path(p) for p in line[len("wrote "):].split(" (")[0].split(", ")}


def test_the_wrote_line_names_every_file_a_training_run_leaves(tmp_path, capsys):
    # forecast train and classify train wrote metrics.jsonl without naming it
    rng = np.random.default_rng(0)
    series = tmp_path / "s.csv"
    series.write_text("y\n" + "".join(f"{v:.4f}\n" for v in np.sin(np.arange(80) / 3)))
    runs = {"forecast": ["forecast", "train", str(series), "--target", "y", "--horizon", "2",
                         "--lookback", "6",
                         "--epochs", "1", "--hidden", "3", "--quiet", "--no-plot"]}
    table = tmp_path / "c.ts"
    table.write_text("@problemName c\n@classLabel true a b\n@data\n" + "".join(
        ",".join(f"{v:.3f}" for v in rng.normal(k % 2, 1, 8)) + f":{'ab'[k % 2]}\n"
        for k in range(40)))
    runs["classify"] = ["classify", "train", str(table), "--model", "lstm", "--no-select",
                        "--epochs", "1", "--hidden", "3", "--quiet"]
    for name, argv in runs.items():
        out = tmp_path / name
        assert main(argv + ["--out", str(out)]) == 0, name
        assert _written(capsys.readouterr().out) == set(out.iterdir()), name
