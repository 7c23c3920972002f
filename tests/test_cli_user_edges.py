"""export, generate, inspect and evaluate on the edges a user meets: outputs that would
overwrite inputs, checkpoints of the wrong kind, odd text."""

import json
import os
import re
import stat

import numpy as np
import pytest
from seq_helpers import write

from lstmlab.cli import main
from lstmlab.data.text import Vocab
from lstmlab.layers.model import CharLM, CharLMConfig
from lstmlab.training.lm import LMTrainer, TrainConfig

TEXT = "the cell state carries the gradient; the gates decide.\n" * 20


def _charlm(d, text=TEXT, **config):
    """A char-LM checkpoint trained for two steps."""
    vocab = Vocab.from_text(text)
    ids = vocab.encode(text)
    model = CharLM(CharLMConfig(vocab_size=len(vocab), hidden_size=8, num_layers=1, embed_dim=4,
                                **config), rng=np.random.default_rng(0))
    cfg = TrainConfig(seq_len=8, batch_size=2, steps=2, eval_every=2, checkpoint_every=2)
    LMTrainer(model, vocab, ids[:800], ids[800:], cfg, d, np.random.default_rng(0),
              progress=False).run()
    return d / "best.ckpt"


@pytest.fixture(scope="module")
def charlm(tmp_path_factory):
    return _charlm(tmp_path_factory.mktemp("lm"))


def test_export_refuses_an_out_that_is_the_checkpoint(charlm, tmp_path, capsys):
    # `export CKPT --out CKPT` replaced the checkpoint with the exported arrays
    import shutil

    ckpt = shutil.copy(charlm, tmp_path / "model.ckpt")
    before = ckpt.read_bytes()
    assert main(["export", str(ckpt), "--format", "torch-npz", "--out", str(ckpt)]) == 2
    assert "is the CKPT this command reads" in capsys.readouterr().err
    assert ckpt.read_bytes() == before


@pytest.fixture(scope="module")
def forecaster(tmp_path_factory):
    """A forecasting checkpoint trained for one epoch on a short CSV series."""
    d = tmp_path_factory.mktemp("fc")
    series = d / "series.csv"
    t = np.arange(120)
    series.write_text("t,y\n" + "".join(f"{i},{np.sin(i / 5):.4f}\n" for i in t))
    assert main(["forecast", "train", str(series), "--target", "y", "--time", "t",
                 "--epochs", "1", "--hidden", "4", "--quiet", "--no-plot",
                 "--out", str(d / "run")]) == 0
    return d / "run" / "model.ckpt", series


@pytest.mark.parametrize("which", ["CKPT", "CSV"])
def test_forecast_predict_refuses_an_out_that_is_its_own_input(forecaster, tmp_path, capsys,
                                                               which):
    # `forecast predict CKPT series.csv --out series.csv` replaced the series with the forecast
    import shutil

    ckpt = shutil.copy(forecaster[0], tmp_path / "model.ckpt")
    series = shutil.copy(forecaster[1], tmp_path / "series.csv")
    target = ckpt if which == "CKPT" else series
    before = target.read_bytes()
    capsys.readouterr()
    assert main(["forecast", "predict", str(ckpt), str(series), "--out", str(target)]) == 2
    assert f"is the {which} this command reads" in capsys.readouterr().err
    assert target.read_bytes() == before


def test_generate_refuses_an_unknown_prompt_before_printing_it(charlm, capsys):
    # the prompt was written to stdout first, then the error came: output of a failed command
    assert main(["generate", str(charlm), "--prompt", "XYZ", "--length", "3"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and "not in the vocabulary" in err


def test_generate_says_on_stderr_which_prompt_characters_were_replaced(charlm, capsys):
    assert main(["generate", str(charlm), "--prompt", "the Zeta", "--length", "2", "--seed", "0",
                 "--unknown", "replace"]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("the Zeta") and len(out) == len("the Zeta") + 3  # two and a newline
    assert ("lstmlab generate: --prompt: 1 character outside the vocabulary read as a "
            "stand-in, --unknown replace: 'Z' (U+005A)") in err


def test_generate_without_a_seed_names_the_one_it_drew_and_it_samples_the_same_text(charlm,
                                                                                   capsys):
    # a good sample from a fresh seed could not be had again: the seed was never said
    assert main(["generate", str(charlm), "--length", "40"]) == 0
    out, err = capsys.readouterr()
    seed = re.search(r"--seed (\d+) \(give it to sample this text again\)", err).group(1)
    assert main(["generate", str(charlm), "--length", "40", "--seed", seed]) == 0
    again = capsys.readouterr()
    assert again.out == out and "--seed" not in again.err
    assert main(["generate", str(charlm), "--length", "5", "--temperature", "0"]) == 0
    assert "--seed" not in capsys.readouterr().err  # greedy: no randomness to name


def test_generate_names_an_empty_prompt_by_its_flag(charlm, capsys):
    # (it said "prompt must not be empty", the Python parameter's name)
    assert main(["generate", str(charlm), "--prompt", "", "--length", "3"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and "--prompt must not be empty" in err


def test_generate_starts_from_a_prompt_of_several_lines_in_a_file(charlm, tmp_path, capsys):
    # --prompt takes "\n" as typed (a backslash and an n); a file gives real newlines
    from lstmlab.training.lm import generate, load_charlm

    prompt = "the gates decide.\nthe cell \n"
    path = tmp_path / "prompt.txt"
    path.write_text(prompt, encoding="utf-8", newline="")
    assert main(["generate", str(charlm), "--prompt-file", str(path), "--length", "6",
                 "--seed", "0"]) == 0
    model, vocab, _ = load_charlm(charlm)
    expected = generate(model, vocab, prompt, 6, rng=np.random.default_rng(0))
    assert capsys.readouterr().out == prompt + expected + "\n"


@pytest.mark.parametrize("content, message", [
    ("", "--prompt-file: text file '{path}' is empty"),
    ("the Zeta\n", "--prompt-file: 1 character not in the vocabulary"),
])
def test_generate_names_a_prompt_file_it_cannot_use(charlm, tmp_path, capsys, content, message):
    path = tmp_path / "prompt.txt"
    path.write_text(content, encoding="utf-8")
    assert main(["generate", str(charlm), "--prompt-file", str(path), "--length", "3"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and message.format(path=path) in err and "Traceback" not in err


def _stdin(monkeypatch, data: bytes):
    import io
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(data), encoding="ascii"))


def test_generate_and_evaluate_read_standard_input_for_dash(charlm, tmp_path, monkeypatch,
                                                           capsys):
    # `--prompt-file -` and `evaluate CKPT -` said "text file '-' does not exist"
    from lstmlab.training.lm import generate, load_charlm

    prompt = "the gates decide.\nthe cell \n"
    _stdin(monkeypatch, prompt.encode("utf-8"))
    assert main(["generate", str(charlm), "--prompt-file", "-", "--length", "6",
                 "--seed", "0"]) == 0
    model, vocab, _ = load_charlm(charlm)
    expected = generate(model, vocab, prompt, 6, rng=np.random.default_rng(0))
    assert capsys.readouterr().out == prompt + expected + "\n"
    path = tmp_path / "held_out.txt"
    path.write_text(TEXT[:200], encoding="utf-8")
    assert main(["evaluate", str(charlm), str(path)]) == 0
    from_file = capsys.readouterr().out
    _stdin(monkeypatch, TEXT[:200].encode("utf-8"))  # UTF-8 bytes whatever stdin's encoding
    assert main(["evaluate", str(charlm), "-"]) == 0
    assert capsys.readouterr().out == from_file.replace(str(path), "standard input")


def test_standard_input_at_a_terminal_says_it_is_read_and_how_to_end_it(charlm, monkeypatch,
                                                                        capsys):
    # `evaluate CKPT -` typed at a terminal waited for Ctrl-D without a word
    import io

    class Terminal(io.TextIOWrapper):
        def isatty(self):
            return True

    for argv in (["generate", str(charlm), "--prompt-file", "-", "--length", "2"],
                 ["evaluate", str(charlm), "-"]):
        monkeypatch.setattr("sys.stdin", Terminal(io.BytesIO(b"the cell\n"), encoding="ascii"))
        assert main(argv) == 0
        err = capsys.readouterr().err
        assert err.count("from standard input (the terminal)") == 1
        assert "Ctrl-D at the start of a line to end it" in err
        _stdin(monkeypatch, b"the cell\n")  # a pipe: nothing to say
        assert main(argv) == 0
        assert "standard input" not in capsys.readouterr().err


@pytest.mark.parametrize("argv, missing, hint", [
    (["evaluate", "{ckpt}"], "the following arguments are required: FILE", "- as FILE"),
    (["inspect", "{ckpt}"], "one of the arguments --text --file is required", "--file -"),
])
def test_a_missing_file_that_can_be_dash_says_so_when_standard_input_holds_data(
        charlm, monkeypatch, capsys, argv, missing, hint):
    # `lstmlab evaluate CKPT < held_out.txt` said only "the following arguments are required:
    # FILE", with the text waiting on standard input
    import io

    class Terminal(io.TextIOWrapper):
        def isatty(self):
            return True

    argv = [a.format(ckpt=charlm) for a in argv]
    for stdin, said in ((io.TextIOWrapper(io.BytesIO(b"the cell\n")), True),
                        (Terminal(io.BytesIO(b"")), False), (None, False)):
        monkeypatch.setattr("sys.stdin", stdin)
        with pytest.raises(SystemExit) as stop:
            main(argv)
        assert stop.value.code == 2
        error = capsys.readouterr().err.splitlines()[-1]
        assert error == (f"lstmlab {argv[0]}: error: {missing}"
                         + (f"; standard input is a pipe or a file here: pass {hint} to read it"
                            if said else ""))


@pytest.mark.parametrize("argv, name, why", [
    (["train", "-", "--steps", "1", "--out", "{tmp}/run"], "FILE",
     ", which --resume can read again"),
    (["explore", "{ckpt}", "-", "--save", "{tmp}/page.html"], "TEXT_FILE",
     ", or paste it into the text box of the served page"),
])
def test_commands_that_read_files_only_say_so_for_dash(charlm, tmp_path, monkeypatch, capsys,
                                                       argv, name, why):
    # 'cat book.txt | lstmlab train -' said "text file '-' does not exist", where
    # 'evaluate CKPT -' reads standard input
    _stdin(monkeypatch, b"the cell\n")
    assert main([a.format(tmp=tmp_path, ckpt=charlm) for a in argv]) == 2
    err = capsys.readouterr().err
    assert err.endswith(f": error: {name} '-': this command reads files, not standard input; "
                        f"save the text to a file and pass that{why} (a file named '-' is "
                        f"./-)\n")
    assert "does not exist" not in err and list(tmp_path.iterdir()) == []


def test_the_keys_that_end_standard_input_are_the_systems():
    from lstmlab._streams import end_of_input_keys

    assert end_of_input_keys("posix") == "Ctrl-D"
    assert end_of_input_keys("nt") == "Ctrl-Z then Enter"


@pytest.mark.parametrize("data, message", [
    (b"", "text file '-' (standard input) is empty"),
    (b"the\x00cell", "'-' (standard input) looks like a binary file (NUL byte at byte offset 3)"),
    (b"the \xe9", "'-' (standard input) is not valid UTF-8: byte 0xe9 at byte offset 4"),
])
def test_standard_input_gets_the_checks_of_a_file(charlm, monkeypatch, capsys, data, message):
    for argv in (["generate", str(charlm), "--prompt-file", "-", "--length", "2"],
                 ["evaluate", str(charlm), "-"]):
        _stdin(monkeypatch, data)
        assert main(argv) == 2
        out, err = capsys.readouterr()
        assert out == "" and message in err and "Traceback" not in err


def test_evaluate_with_its_two_files_swapped_names_the_text_as_no_checkpoint(charlm, tmp_path,
                                                                           capsys):
    # it said "checkpoint held_out.txt is corrupt or truncated (BadZipFile: ...)"
    text = tmp_path / "held_out.txt"
    text.write_text(TEXT, encoding="utf-8")
    assert main(["evaluate", str(text), str(charlm)]) == 2
    err = capsys.readouterr().err
    assert (f"checkpoint {text} is not a checkpoint: a checkpoint is a zip archive, which "
            f"begins with b'PK', and this file begins with b'the cell state c'") in err
    assert "corrupt" not in err


@pytest.mark.parametrize("command, flag", [("generate", "--prompt"), ("inspect", "--text")])
def test_text_typed_in_a_terminal_that_is_not_utf8_is_named_by_its_byte(charlm, tmp_path,
                                                                          capsys, command, flag):
    # "café" typed in a Latin-1 terminal: Python hands the byte 0xe9 over as U+DCE9, which
    # was named as an unknown character U+DCE9, or, replaced, failed writing the report
    import os

    argv = [command, str(charlm), flag, os.fsdecode(b"caf\xe9"), "--unknown", "replace"]
    if command == "inspect":
        argv += ["--out", str(tmp_path / "inspect")]
    with pytest.raises(SystemExit) as stop:
        main(argv)
    out, err = capsys.readouterr()
    assert stop.value.code == 2 and out == ""
    assert (f"argument {flag}: expected UTF-8 text, got the byte 0xe9 at character 3, which "
            f"is not UTF-8") in err


def test_generate_names_a_character_its_output_encoding_cannot_write(tmp_path, monkeypatch,
                                                                     capsys):
    # an ASCII terminal: it said "'ascii' codec can't encode character '\xe9' in position 0:
    # ordinal not in range(128)"
    import io
    import sys

    class Terminal(io.BytesIO):
        def isatty(self):
            return True

    ckpt = _charlm(tmp_path, "café, thé et crème; " * 60)
    monkeypatch.setattr(sys, "stdout", io.TextIOWrapper(Terminal(), encoding="ascii"))
    assert main(["generate", str(ckpt), "--prompt", "é", "--length", "0"]) == 2
    assert ("standard output's encoding (ascii) cannot write 'é' (U+00E9); set "
            "PYTHONIOENCODING=utf-8") in capsys.readouterr().err


@pytest.mark.parametrize("command", ["evaluate", "inspect"])
def test_a_command_says_which_characters_unknown_replace_stood_in_for(charlm, tmp_path,
                                                                      capsys, command):
    # the score (the cells found) of a text with stand-ins was printed as the text's own,
    # without a word
    path = tmp_path / "held_out.txt"
    path.write_text("the cell state, Zürich\tthe gates decide.\n", encoding="utf-8")
    argv = ([command, str(charlm), str(path)] if command == "evaluate" else
            [command, str(charlm), "--file", str(path), "--out", str(tmp_path / "i")])
    assert main(argv + ["--unknown", "replace"]) == 0
    out = capsys.readouterr().out
    assert ("; 4 characters outside the vocabulary read as a stand-in, --unknown "
            "replace: '\\t' (U+0009), ',' (U+002C), 'Z' (U+005A), 'ü' (U+00FC)") in out


def test_a_file_whose_name_is_not_utf8_is_read_and_named(charlm, tmp_path, capsys):
    # a file named in Latin-1: inspect and explore --save failed writing their page with
    # "'utf-8' codec can't encode character '\udce9' ...: surrogates not allowed"
    import os

    try:
        path = tmp_path / os.fsdecode(b"caf\xe9.txt")
        path.write_text(TEXT, encoding="utf-8")
    except (OSError, UnicodeError):
        pytest.skip("this file system takes no such names")
    assert main(["inspect", str(charlm), "--file", str(path), "--out", str(tmp_path / "i")]) == 0
    assert "caf\\xe9.txt" in (tmp_path / "i" / "inspect.html").read_text(encoding="utf-8")
    page = tmp_path / "page.html"
    assert main(["explore", str(charlm), str(path), "--save", str(page)]) == 0
    assert "caf\\\\xe9.txt" in page.read_text(encoding="utf-8")  # inside the page's JSON
    assert main(["evaluate", str(charlm), str(path)]) == 0
    assert "caf\\xe9.txt: " in capsys.readouterr().out


def test_export_torch_refuses_a_layer_norm_lstm(tmp_path, capsys):
    # the safetensors file held ln_* keys that the documented module (an nn.LSTM) refuses
    ckpt = _charlm(tmp_path / "ln", layer_norm=True)
    out = tmp_path / "charlm.safetensors"
    assert main(["export", str(ckpt), "--format", "torch", "--out", str(out)]) == 2
    assert "no layer normalisation" in capsys.readouterr().err and not out.exists()


@pytest.mark.parametrize("which", ["CKPT", "TEXT_FILE"])
def test_explore_save_refuses_to_overwrite_what_it_reads(charlm, tmp_path, capsys, which):
    # `explore CKPT text.txt --save text.txt` replaced the text (or the model) with the page
    import shutil

    ckpt = shutil.copy(charlm, tmp_path / "model.ckpt")
    text = tmp_path / "text.txt"
    text.write_text(TEXT[:200], encoding="utf-8")
    target = ckpt if which == "CKPT" else text
    before = target.read_bytes()
    assert main(["explore", str(ckpt), str(text), "--save", str(target)]) == 2
    assert f"is the {which} this command reads" in capsys.readouterr().err
    assert target.read_bytes() == before


@pytest.mark.parametrize("n", [1, 2])
def test_train_counts_its_steps_and_files_in_the_number_they_take(tmp_path, capsys, n):
    # "1 file(s): ..." and "1 steps of 2x8": the counts were spelled by hand
    from lstmlab.training.checkpoint import load_checkpoint

    files = [tmp_path / f"t{i}.txt" for i in range(n)]
    for f in files:
        f.write_text(TEXT[:600], encoding="utf-8")
    out = tmp_path / "run"
    assert main(["train", *map(str, files), "--out", str(out), "--steps", str(n), "--hidden",
                 "4", "--layers", "1", "--embed", "2", "--seq-len", "8", "--batch-size", "2",
                 "--eval-chunks", "1"]) == 0
    err = capsys.readouterr().err
    assert f"; {n} step{'s' if n > 1 else ''} of 2x8" in err, err
    meta, _ = load_checkpoint(out / "last.ckpt")
    assert meta["data"]["description"].startswith(f"{n} file{'s' if n > 1 else ''}: ")


def test_train_quiet_prints_the_result_and_the_notes_only(tmp_path, capsys):
    # `train --quiet` printed its model line, and with --resume its resume line, where
    # `classify train --quiet` leaves the result, the notes and the errors
    text = write(tmp_path / "t.txt", TEXT[:600])
    argv = ["train", str(text), "--out", str(tmp_path / "run"), "--hidden", "4", "--layers",
            "1", "--embed", "2", "--seq-len", "8", "--batch-size", "2", "--eval-chunks", "1",
            "--quiet"]
    assert main([*argv, "--steps", "1"]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("done: step 1,") and err == ""
    assert main([*argv, "--steps", "2", "--resume", "--seed", "3"]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("done: step 2,")
    assert err.splitlines() == ["--seed 3 is not used: a resumed run draws from the random "
                                "state its checkpoint holds (a seed only starts a run)"]


def test_evaluate_counts_one_scored_character_in_the_singular(charlm, tmp_path, capsys):
    two = tmp_path / "two.txt"
    two.write_text("th")  # the first character is read, the second scored
    assert main(["evaluate", str(charlm), str(two)]) == 0
    assert capsys.readouterr().out.rstrip().endswith("(1 character scored)")


@pytest.mark.parametrize("module, argv, named, foreign", [
    ("insight_cli", ["experiment", "adding", "--lengths", "11"],
     "--hidden, --batch, --lengths, --eval-size", "--batch-size"),
    # demo --adding-length 1000000000 ran out of memory naming every size but that one
    ("insight_cli", ["demo"], "--hidden, --batch, --length, --adding-length)", "--lengths"),
    ("charlm_cli", ["train", "--steps", "1"],
     "--hidden, --layers, --embed, --batch-size, --seq-len", "--lengths"),
])
def test_out_of_memory_names_the_commands_own_size_options(monkeypatch, capsys, module, argv,
                                                           named, foreign):
    def exhausted(args):
        raise MemoryError

    monkeypatch.setattr(f"lstmlab.{module}.cmd_{argv[0]}", exhausted)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"out of memory; choose smaller sizes ({named}" in err
    assert foreign not in err


@pytest.mark.parametrize("command", ["forecast", "classify"])
def test_dropout_with_one_layer_is_refused_naming_both_flags(tmp_path, capsys, command):
    argv = {"forecast": ["forecast", "train"],
            "classify": ["classify", "train", "--model", "lstm"]}[command]
    assert main([*argv, "--dropout", "0.3", "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert "--dropout 0.3 acts between stacked layers and --layers 1 has none" in err
    assert not (tmp_path / "run").exists()


def test_a_one_layer_language_model_takes_dropout_before_its_output_layer(tmp_path, capsys):
    # the character model's dropout also acts on the last layer's output before the head,
    # so with --layers 1 it is not idle (it was refused as "would change nothing")
    text = write(tmp_path / "t.txt", "the quick brown fox jumps over the lazy dog. " * 40)
    runs = {}
    for p in (0.0, 0.5):
        out = tmp_path / f"run{p}"
        assert main(["train", str(text), "--layers", "1", "--hidden", "8", "--steps", "3",
                     "--seq-len", "16", "--batch-size", "4", "--dropout", str(p),
                     "--out", str(out), "--quiet"]) == 0
        runs[p] = [json.loads(line)["loss"]
                   for line in (out / "metrics.jsonl").read_text().splitlines()
                   if '"loss"' in line]
    assert runs[0.0] and runs[0.0] != runs[0.5]


def test_input_paths_written_with_a_tilde_are_read_from_the_home_folder(charlm, forecaster,
                                                                       tmp_path, monkeypatch,
                                                                       capsys):
    # `evaluate CKPT --file=~/x`-style paths (an option's =, or quoted) reach the command
    # unexpanded by the shell, and every input said only "does not exist"
    import shutil

    from lstmlab.data.text import DataError, read_text_files

    monkeypatch.setenv("HOME", str(tmp_path))
    shutil.copy(charlm, tmp_path / "lm.ckpt")
    (tmp_path / "two.txt").write_text("th")
    assert main(["evaluate", "~/lm.ckpt", "~/two.txt"]) == 0
    assert capsys.readouterr().out.startswith(f"{tmp_path / 'two.txt'}: ")
    ckpt, series = forecaster
    shutil.copy(ckpt, tmp_path / "fc.ckpt")
    shutil.copy(series, tmp_path / "series.csv")
    assert main(["forecast", "predict", "~/fc.ckpt", "~/series.csv", "--horizon", "2",
                 "--out=~/next.csv"]) == 0
    assert (tmp_path / "next.csv").exists()
    # the library reads a path as given, and says what a leading ~ is
    with pytest.raises(DataError, match=r"'~/two.txt' does not exist \(a leading ~ is the home "
                                        r"folder only where the shell expands it"):
        read_text_files(["~/two.txt"])


class _StderrThatGoesAway:
    """A stderr whose reader goes away after the first write: every later write fails as a
    closed pipe (``2>&1 | head -1``) or a closed terminal (EIO) fails."""

    def __init__(self, error):
        self.error, self.written = error, []

    def write(self, text):
        if self.written:
            raise self.error
        self.written.append(text)
        return len(text)

    def flush(self):
        if len(self.written) > 1:
            raise self.error

    def isatty(self):
        return False


@pytest.mark.parametrize("error", [BrokenPipeError(32, "Broken pipe"),
                                   OSError(5, "Input/output error")])
@pytest.mark.parametrize("command", ["train", "classify"])
def test_training_goes_on_when_its_stderr_goes_away(tmp_path, capsys, monkeypatch, error,
                                                    command):
    # the first progress line written after the reader went away ended the command (exit 141,
    # or "error: [Errno 5]"), its model lost: last.ckpt held step 0
    import sys

    from lstmlab.training.checkpoint import load_checkpoint

    out = tmp_path / "run"
    if command == "train":
        argv = ["train", str(write(tmp_path / "t.txt", TEXT)), "--steps", "6", "--hidden", "4",
                "--layers", "1", "--embed", "2", "--seq-len", "8", "--batch-size", "2",
                "--eval-every", "2", "--eval-chunks", "1", "--checkpoint-every", "100"]
    else:
        data = write(tmp_path / "d.csv", "id,x,label\n" + "".join(
            f"{i},{t * (i % 2)},{'ab'[i % 2]}\n" for i in range(12) for t in range(4)))
        argv = ["classify", "train", str(data), "--model", "lstm", "--no-select", "--hidden",
                "4", "--epochs", "3", "--no-baselines"]
    stderr = _StderrThatGoesAway(error)
    monkeypatch.setattr(sys, "stderr", stderr)
    assert main([*argv, "--out", str(out)]) == 0
    assert len(stderr.written) == 1
    if command == "train":
        assert load_checkpoint(out / "last.ckpt")[0]["step"] == 6
        assert capsys.readouterr().out.startswith("done: step 6,")
    else:
        assert len((out / "metrics.jsonl").read_text().splitlines()) == 3
        assert (out / "model.ckpt").exists() and "test accuracy:" in capsys.readouterr().out


def test_generate_with_stderr_closed_writes_only_the_text(charlm, capsys, monkeypatch):
    # started with stderr closed (2>&-), Python has no sys.stderr, and print(file=None)
    # wrote the "--seed N" note into the generated text on stdout
    import sys

    monkeypatch.setattr(sys, "stderr", None)
    assert main(["generate", str(charlm), "--prompt", "the", "--length", "5"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("the") and len(out) == len("the") + 5 + 1 and "seed" not in out


class _Terminal:
    """A stderr that is a terminal, keeping what is written to it."""

    def __init__(self):
        self.text = ""

    def write(self, text):
        self.text += text
        return len(text)

    def flush(self):
        pass

    def isatty(self):
        return True


def test_train_progress_fits_a_narrow_terminal(tmp_path, monkeypatch):
    # the progress line rewritten in place was padded to 100 columns: on a narrower terminal
    # it wrapped, and each rewrite left a row behind
    import sys

    monkeypatch.setenv("COLUMNS", "40")
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    assert main(["train", str(write(tmp_path / "t.txt", TEXT)), "--steps", "6", "--hidden", "4",
                 "--layers", "1", "--embed", "2", "--seq-len", "8", "--batch-size", "2",
                 "--eval-every", "3", "--eval-chunks", "1", "--out", str(tmp_path / "run")]) == 0
    rewrites = terminal.text.split("\r")[1:]
    open_lines = [r for r in rewrites if not r.endswith("\n")]
    kept = [r for r in rewrites if r.endswith("\n")]
    assert open_lines and all(len(r) <= 39 for r in open_lines), open_lines
    # a line the next one does not overwrite keeps all it says, the validation too
    assert [r.split()[1] for r in kept] == ["3/6", "6/6"] and all("val bpc" in r for r in kept)


@pytest.mark.skipif(not hasattr(__import__("signal"), "SIGHUP"), reason="POSIX signals")
def test_a_hangup_stops_training_with_a_checkpoint(tmp_path, capsys, monkeypatch):
    # the terminal closing (SIGHUP) ended lstmlab train at once: last.ckpt still held step 0
    import os
    import signal

    from lstmlab.training import lm
    from lstmlab.training.checkpoint import load_checkpoint

    step = lm.train_step
    calls = []

    def hang_up_at_step_3(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            os.kill(os.getpid(), signal.SIGHUP)
        return step(*args, **kwargs)

    def default_action(signum, frame):  # in place of SIGHUP's default, which ends pytest
        raise AssertionError("SIGHUP reached the handler outside the run: it ends the process")

    monkeypatch.setattr(lm, "train_step", hang_up_at_step_3)
    before = signal.signal(signal.SIGHUP, default_action)
    try:
        out = tmp_path / "run"
        assert main(["train", str(write(tmp_path / "t.txt", TEXT)), "--steps", "50", "--hidden",
                     "4", "--layers", "1", "--embed", "2", "--seq-len", "8", "--batch-size",
                     "2", "--checkpoint-every", "1000", "--eval-every", "1000",
                     "--out", str(out)]) == 129
        assert signal.getsignal(signal.SIGHUP) is default_action
    finally:
        signal.signal(signal.SIGHUP, before)
    assert "interrupted: saved" in capsys.readouterr().err
    assert load_checkpoint(out / "last.ckpt")[0]["step"] == 3


@pytest.mark.parametrize("command", ["generate", "evaluate", "classify predict"])
def test_a_closed_stdout_is_named_before_any_work(charlm, tmp_path, capsys, monkeypatch,
                                                  command):
    # started with stdout closed (>&-), Python has no sys.stdout: the first write of the text
    # or the CSV failed with a traceback, "'NoneType' object has no attribute 'write'", and
    # evaluate's score went nowhere with exit status 0
    import sys

    if command == "generate":
        argv, advice = ["generate", str(charlm), "--seed", "1"], "redirect it to a file"
    elif command == "evaluate":
        argv = ["evaluate", str(charlm), str(write(tmp_path / "t.txt", TEXT))]
        advice = "redirect it to a file"
    else:
        argv, advice = ["classify", "predict", str(charlm), str(tmp_path / "d.csv")], "--out FILE"
    monkeypatch.setattr(sys, "stdout", None)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "error: standard output is closed, so the " in err and advice in err


def test_forecast_progress_fits_a_narrow_terminal(tmp_path, monkeypatch):
    # the forecast (and classify) progress line rewritten in place was padded to 70 columns:
    # on a narrower terminal each rewrite left a row behind
    import sys

    csv_path = write(tmp_path / "s.csv", "t,v\n" + "".join(
        f"{i},{np.sin(i / 3) + i / 50:.4f}\n" for i in range(80)))
    monkeypatch.setenv("COLUMNS", "30")
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    assert main(["forecast", "train", str(csv_path), "--target", "v", "--lookback", "6",
                 "--horizon", "2", "--epochs", "3", "--hidden", "4", "--no-plot",
                 "--out", str(tmp_path / "run")]) == 0
    rewrites = [r for r in terminal.text.split("\r")[1:] if r.startswith("epoch")]
    assert rewrites and all(len(r.split("\n")[0]) <= 29 for r in rewrites), rewrites


def test_explore_without_a_checkpoint_names_only_what_is_required(capsys):
    # argparse called the optional TEXT_FILEs required too: "required: CKPT, TEXT_FILE"
    with pytest.raises(SystemExit) as exit_:
        main(["explore"])
    assert exit_.value.code == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.endswith("the following arguments are required: CKPT")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs a FIFO")
def test_export_refuses_an_out_that_is_no_regular_file(charlm, tmp_path, capsys):
    # --out /dev/null (as root) had the device replaced by the exported file, renamed over it
    fifo = tmp_path / "pipe.onnx"
    os.mkfifo(fifo)
    with pytest.raises(SystemExit) as exc:
        main(["export", str(charlm), "--format", "torch-npz", "--out", str(fifo)])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "argument --out" in err and "a FIFO (named pipe)" in err and "Traceback" not in err
    assert stat.S_ISFIFO(fifo.stat().st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pipe.onnx"]
