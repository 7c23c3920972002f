"""Signals and numbers at the edges of what the commands accept, through the command line.

Signal tests run the command in a child process (a signal sent to the test process itself
would stop pytest) and wait for a file the run writes, never for a time. The tests name only
what the command line offers, so they read the same against any version of the library.
"""

import json
import os
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from seq_helpers import one_blas_thread, toy_ts, write  # noqa: F401

from lstmlab.cli import main

SRC = str(Path(__file__).resolve().parents[1] / "src")
POSIX = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="POSIX signals")


def _env():
    return dict(os.environ, PYTHONPATH=SRC, OPENBLAS_NUM_THREADS="1")


def _corpus(tmp_path):
    rng = np.random.default_rng(0)
    words = ["the", "cell", "state", "gate", "forget", "input", "output", "tanh", "lstm"]
    lines = [" ".join(rng.choice(words, size=rng.integers(3, 9))) + "." for _ in range(400)]
    return write(tmp_path / "corpus.txt", "\n".join(lines) + "\n")


def _train_args(corpus, out, steps, extra=()):
    return ["train", str(corpus), "--out", str(out), "--steps", str(steps), "--hidden", "24",
            "--layers", "2", "--embed", "8", "--seq-len", "20", "--batch-size", "4",
            "--eval-every", "10", "--eval-chunks", "2", "--checkpoint-every", "10",
            "--seed", "3", "--quiet", *extra]


def _metric_steps(run_dir):
    path = Path(run_dir) / "metrics.jsonl"
    return [json.loads(line)["step"] for line in path.read_text().splitlines()]


def _checkpoint_step(path):
    with zipfile.ZipFile(path) as zf:
        return json.loads(zf.read("meta.json"))["step"]


def _wait_for_lines(path, n, proc, timeout=120):
    """Wait until the file ``path`` has ``n`` lines; False if the process ended first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and len(path.read_text().splitlines()) >= n:
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.005)
    return False


def _start(argv):
    return subprocess.Popen([sys.executable, "-m", "lstmlab", *argv], env=_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


# -- SIGTERM ---------------------------------------------------------------------------------

@POSIX
@pytest.mark.slow
def test_sigterm_saves_a_checkpoint_at_the_current_step_and_exits_143(tmp_path):
    corpus, out = _corpus(tmp_path), tmp_path / "run"
    proc = _start(_train_args(corpus, out, 100000))
    assert _wait_for_lines(out / "metrics.jsonl", 15, proc), "the run ended before the signal"
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err
    assert "SIGTERM" in err and "--resume" in err and "Traceback" not in err
    step = _checkpoint_step(out / "last.ckpt")
    assert step == max(_metric_steps(out)) >= 15  # no step lost, none logged but unsaved
    assert main(_train_args(corpus, out, step + 5, ["--resume"])) == 0
    assert _metric_steps(out) == list(range(1, step + 6))


# -- stopped before the first checkpoint -------------------------------------------------------

@POSIX
@pytest.mark.slow
def test_a_run_killed_before_its_first_checkpoint_resumes_exactly(tmp_path):
    # A constant learning rate, so the killed run (planned for 100000 steps) and the full run
    # (30) follow the same trajectory; no checkpoint falls due before the kill.
    corpus = _corpus(tmp_path)
    same = ["--schedule", "constant", "--checkpoint-every", "1000"]
    assert main(_train_args(corpus, tmp_path / "full", 30, same)) == 0
    cut = tmp_path / "cut"
    proc = _start(_train_args(corpus, cut, 100000, same))
    assert _wait_for_lines(cut / "metrics.jsonl", 3, proc), "the run ended before the kill"
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    assert _checkpoint_step(cut / "last.ckpt") == 0  # the run's first checkpoint: step 0
    assert main(_train_args(corpus, cut, 30, [*same, "--resume"])) == 0
    losses = [[json.loads(x)["loss"] for x in (d / "metrics.jsonl").read_text().splitlines()]
              for d in (tmp_path / "full", cut)]
    assert len(losses[0]) == 30 and losses[1] == losses[0]


# A child that sends itself SIG twice, back to back, inside training step STEP: the second
# arrives while the step is still running, which is what a hurried double Ctrl-C does.
DOUBLE_SIGNAL = r"""
import os, signal, sys
import lstmlab.training.lm as lm

STEP, SIG = int(sys.argv[1]), getattr(signal, sys.argv[2])
real_step, calls = lm.train_step, [0]

def send():
    os.kill(os.getpid(), SIG)
    for _ in range(100):  # let the handler of this one run before the next signal
        pass

def train_step(*args, **kwargs):
    calls[0] += 1
    if calls[0] == STEP:
        send()
        send()
    return real_step(*args, **kwargs)

lm.train_step = train_step
from lstmlab.cli import main
sys.exit(main(sys.argv[3:]))
"""


@POSIX
@pytest.mark.slow
@pytest.mark.parametrize("sig, code", [("SIGINT", 130), ("SIGTERM", 143)])
def test_a_second_signal_before_the_first_checkpoint_leaves_a_resumable_run(tmp_path, sig, code):
    corpus, out = _corpus(tmp_path), tmp_path / "run"
    run = subprocess.run([sys.executable, "-c", DOUBLE_SIGNAL, "4", sig,
                          *_train_args(corpus, out, 100)], env=_env(), capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == code, run.stderr
    assert "Traceback" not in run.stderr
    assert "stopped at once" in run.stderr and "--resume" in run.stderr  # says how to go on
    again = subprocess.run([sys.executable, "-m", "lstmlab", *_train_args(corpus, out, 100)],
                           env=_env(), capture_output=True, text=True, timeout=120)
    assert again.returncode == 2 and "pass --resume" in again.stderr
    assert main(_train_args(corpus, out, 12, ["--resume"])) == 0
    assert _metric_steps(out) == list(range(1, 13))


def test_a_folder_with_metrics_but_no_checkpoint_is_started_over(tmp_path, capsys):
    corpus, out = _corpus(tmp_path), tmp_path / "run"
    out.mkdir()
    write(out / "metrics.jsonl", '{"step": 1}\n')
    assert main(_train_args(corpus, out, 3)) == 0
    assert "starting the run over" in capsys.readouterr().err
    assert _metric_steps(out) == [1, 2, 3]


def test_resume_without_a_checkpoint_says_to_start_without_resume(tmp_path, capsys):
    assert main(_train_args(_corpus(tmp_path), tmp_path / "none", 3, ["--resume"])) == 2
    assert "without --resume" in capsys.readouterr().err


def test_resuming_an_early_stopped_run_takes_no_step(tmp_path, capsys):
    # each --resume trained one more (unevaluated) step and early-stopped again
    corpus, out = _corpus(tmp_path), tmp_path / "run"
    argv = ["train", str(corpus), "--out", str(out), "--hidden", "8", "--layers", "1", "--embed",
            "4", "--seq-len", "10", "--batch-size", "4", "--eval-every", "2", "--eval-chunks",
            "2", "--patience", "1", "--lr", "0.3", "--quiet"]
    assert main(argv + ["--steps", "200"]) == 0
    stopped = _metric_steps(out)[-1]
    assert stopped < 200 and _checkpoint_step(out / "last.ckpt") == stopped
    # (the count said "1 evaluations")
    assert "early stop: no validation improvement in 1 evaluation\n" in capsys.readouterr().err
    for more in ([], ["--steps", "300"]):
        assert main(["train", str(corpus), "--out", str(out), "--resume", "--quiet", *more]) == 0
        assert (f"early stop: the run stopped at step {stopped} after 1 evaluation without "
                f"improvement; nothing to continue") in capsys.readouterr().err
        assert _metric_steps(out)[-1] == stopped
        assert _checkpoint_step(out / "last.ckpt") == stopped


def test_a_run_without_last_ckpt_says_how_to_continue_it(tmp_path, capsys):
    # --resume said to run without --resume, which said to pass --resume
    corpus, out = _corpus(tmp_path), tmp_path / "run"
    assert main(_train_args(corpus, out, 2)) == 0
    (out / "last.ckpt").unlink()
    best = (out / "best.ckpt").read_bytes()
    capsys.readouterr()
    for resume in (["--resume"], []):
        assert main(_train_args(corpus, out, 4, resume)) == 2
        assert (f"--out {out} holds best.ckpt but no last.ckpt, which --resume continues from; "
                f"copy best.ckpt to last.ckpt and pass --resume") in capsys.readouterr().err
    assert (out / "best.ckpt").read_bytes() == best
    (out / "last.ckpt").write_bytes(best)
    assert main(_train_args(corpus, out, 4, ["--resume"])) == 0
    assert _metric_steps(out) == [1, 2, 3, 4]


def test_a_truncated_last_ckpt_names_the_intact_best_ckpt(tmp_path, capsys):
    # --resume said only "last.ckpt is corrupt or truncated", with best.ckpt intact beside it
    corpus, out = _corpus(tmp_path), tmp_path / "run"
    assert main(_train_args(corpus, out, 2)) == 0
    last = out / "last.ckpt"
    last.write_bytes(last.read_bytes()[:200])  # a disk that filled up, a copy cut short
    capsys.readouterr()
    assert main(_train_args(corpus, out, 4, ["--resume"])) == 2
    assert (f"checkpoint {last} is corrupt or truncated (BadZipFile: File is not a zip file); "
            f"best.ckpt in {out} is intact: copy it to last.ckpt and pass --resume"
            ) in capsys.readouterr().err
    (out / "best.ckpt").write_bytes(b"PK")  # both unreadable: no way on to name
    assert main(_train_args(corpus, out, 4, ["--resume"])) == 2
    assert "best.ckpt" not in capsys.readouterr().err


def test_resume_refuses_options_that_differ_from_the_run_and_keeps_its_split(tmp_path, capsys):
    corpus, out = _corpus(tmp_path), tmp_path / "run"
    assert main([a for a in _train_args(corpus, out, 4) if a != "--quiet"]) == 0  # model line
    split = capsys.readouterr().err.split("model: ")[1].split("; ")[1]  # "N training and M ..."
    before = (out / "last.ckpt").read_bytes()
    # given (in full or abbreviated) with a value other than the run's: refused, not ignored
    resume = ["train", str(corpus), "--out", str(out), "--resume"]
    assert main(resume + ["--steps", "8", "--hid", "32", "--val-fraction", "0.5"]) == 2
    err = capsys.readouterr().err
    assert "--hidden 32 (the run has 24)" in err and "--val-fraction 0.5 (the run has 0.05)" in err
    assert (out / "last.ckpt").read_bytes() == before
    # left out: the run's own split, and its batch and chunk count the steps of --epochs
    chunks = (int(split.split()[0].replace(",", "")) // 4 - 1) // 20  # --batch-size 4, --seq-len 20
    assert main(resume + ["--epochs", "0.05"]) == 0
    assert split in capsys.readouterr().err
    assert _metric_steps(out) == list(range(1, -(-chunks // 20) + 1))  # ceil(0.05 * chunks)


@pytest.mark.parametrize("damage", [b"5\n", b'{"step": "x"}\n', b"\xff\xfe cut\n"],
                         ids=["not an object", "step not a number", "not UTF-8"])
def test_resume_drops_damaged_lines_of_metrics_jsonl(tmp_path, capsys, damage):
    # a line that is JSON but not a record (5) stopped --resume with a traceback
    # (AttributeError), a step that is not a number and bytes that are not UTF-8 with an
    # error naming no file
    corpus, out = _corpus(tmp_path), tmp_path / "run"
    assert main(_train_args(corpus, out, 2)) == 0
    with open(out / "metrics.jsonl", "ab") as f:
        f.write(damage)
    capsys.readouterr()
    assert main(_train_args(corpus, out, 3, ["--resume"])) == 0
    assert _metric_steps(out) == [1, 2, 3]


def _best_of(path):
    with zipfile.ZipFile(path) as zf:
        meta = json.loads(zf.read("meta.json"))
    return meta["best_step"], meta["best_val"]


def test_resume_from_a_last_ckpt_older_than_best_ckpt_keeps_the_better_best(tmp_path, capsys):
    # A run killed after writing best.ckpt but before last.ckpt (--eval-every below
    # --checkpoint-every): the resumed run's first evaluation replaced the better best.ckpt,
    # the best it knew being that of the older last.ckpt.
    corpus, out, small = _corpus(tmp_path), tmp_path / "run", ["--layers", "1", "--lr", "0.02"]
    assert main(_train_args(corpus, out, 2, small)) == 0
    older = (out / "last.ckpt").read_bytes()
    assert main(_train_args(corpus, out, 20, [*small, "--resume"])) == 0
    best = (out / "best.ckpt").read_bytes()
    best_step, best_val = _best_of(out / "best.ckpt")
    (out / "last.ckpt").write_bytes(older)  # as the kill left it: last.ckpt at step 2
    capsys.readouterr()
    assert main(_train_args(corpus, out, 10, [*small, "--resume"])) == 0
    assert (out / "best.ckpt").read_bytes() == best
    assert f"best validation {best_val:.4f} nats" in capsys.readouterr().out
    # A later improvement still replaces it.
    assert main(_train_args(corpus, out, 40, [*small, "--resume"])) == 0
    assert _best_of(out / "best.ckpt")[1] < best_val and _best_of(out / "best.ckpt")[0] > best_step


def test_resume_refuses_fewer_steps_than_the_run_has_taken(tmp_path, capsys):
    corpus, out = _corpus(tmp_path), tmp_path / "run"
    assert main(_train_args(corpus, out, 6)) == 0
    capsys.readouterr()
    before = {name: (out / name).read_bytes() for name in ("last.ckpt", "metrics.jsonl")}
    resume = ["train", str(corpus), "--out", str(out), "--resume", "--quiet"]
    assert main(resume + ["--steps", "3"]) == 2
    err = capsys.readouterr().err
    assert "already at step 6, past --steps 3" in err
    assert main(resume + ["--epochs", "0.001"]) == 2
    assert "already at step 6, past --epochs 0.001 (1 step)" in capsys.readouterr().err
    assert {name: (out / name).read_bytes() for name in before} == before
    assert main(resume + ["--steps", "8"]) == 0  # more steps extend it
    assert _metric_steps(out) == list(range(1, 9))


def test_a_seed_given_on_resume_is_said_to_be_unused(tmp_path, capsys):
    # (it was silently ignored: the run continues from its checkpoint's random state)
    corpus, out = _corpus(tmp_path), tmp_path / "run"
    assert main(_train_args(corpus, out, 2)) == 0
    resume = ["train", str(corpus), "--out", str(out), "--resume", "--quiet"]
    capsys.readouterr()
    assert main(resume + ["--steps", "3", "--seed", "7"]) == 0
    assert "--seed 7 is not used: a resumed run draws from the random state" in \
        capsys.readouterr().err
    assert main(resume + ["--steps", "4"]) == 0
    assert "--seed" not in capsys.readouterr().err


def test_resume_on_a_text_with_another_vocabulary_names_the_data(tmp_path, capsys):
    corpus, out = _corpus(tmp_path), tmp_path / "run"
    assert main(_train_args(corpus, out, 2)) == 0
    other = write(tmp_path / "other.txt", "0123456789 xyz\n" * 200)
    assert main(["train", str(other), "--out", str(out), "--resume", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "was trained on other data (1 file: " in err and "resume needs the same" in err


def test_resume_reads_as_much_text_as_the_run_did(tmp_path, capsys):
    corpus, out = _corpus(tmp_path), tmp_path / "run"
    assert main(_train_args(corpus, out, 2, ["--max-chars", "6000"])) == 0
    resume = ["train", str(corpus), "--out", str(out), "--resume", "--quiet"]
    assert main(resume + ["--steps", "3"]) == 0  # --max-chars left out: the run's 6000
    assert main(resume + ["--steps", "4", "--max-chars", "6000"]) == 0  # the same, given
    assert _metric_steps(out) == [1, 2, 3, 4]
    capsys.readouterr()
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    for other in ("7000", "5000"):
        assert main(resume + ["--steps", "5", "--max-chars", other]) == 2
        err = capsys.readouterr().err
        assert (f"--resume continues the run in {out} with its own settings, but --max-chars "
                f"{other} reads {int(other):,} characters (the run read 6,000)") in err, err
    write(tmp_path / "short.txt", corpus.read_text()[:3000])
    assert main(["train", str(tmp_path / "short.txt"), "--out", str(out), "--resume"]) == 2
    assert "was trained on other data (1 file: " in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_resume_on_the_default_corpus_reads_as_much_as_the_run_did(tmp_path, capsys):
    out = tmp_path / "run"
    small = ["--hidden", "8", "--layers", "1", "--embed", "4", "--seq-len", "10", "--batch-size",
             "4", "--quiet"]
    assert main(["train", "--out", str(out), "--steps", "1", "--max-chars", "3000", *small]) == 0
    assert main(["train", "--out", str(out), "--resume", "--steps", "2", "--quiet"]) == 0
    assert _metric_steps(out) == [1, 2]


def test_a_warmup_as_long_as_the_run_is_refused(tmp_path, capsys):
    corpus = _corpus(tmp_path)
    assert main(_train_args(corpus, tmp_path / "a", 5, ["--warmup", "5"])) == 2
    assert "--warmup 5 is not shorter than the run (--steps 5)" in capsys.readouterr().err
    assert not (tmp_path / "a").exists()
    argv = _train_args(corpus, tmp_path / "b", 1, ["--warmup", "4"])
    argv[argv.index("--steps"):argv.index("--steps") + 2] = ["--epochs", "0.001"]
    assert main(argv) == 2
    assert "--warmup 4 is not shorter than the run (--epochs 0.001 (1 step))" in capsys.readouterr().err
    assert main(_train_args(corpus, tmp_path / "c", 5, ["--warmup", "4"])) == 0


@pytest.mark.parametrize("text, extra, says", [
    ("a", [], "the text has 1 character, too few for --batch-size 32 and --seq-len 100"),
    ("abc\n", [], "the text has 4 characters, too few for --batch-size 32 and --seq-len 100: "
                  "training needs --batch-size * (--seq-len + 1) = 3,232 characters and the "
                  "--val-fraction 0.05 held out --seq-len + 1 = 101, at least 3,402 in all; use "
                  "a longer text or a smaller --batch-size or --seq-len"),
    ("abc\n", ["--seq-len", "1", "--batch-size", "1"],
     "the --val-fraction 0.05 held out --seq-len + 1 = 2, at least 30 in all"),
    ("abc\n" * 100, ["--device", "cuda", "--seq-len", "4", "--batch-size", "2"],
     "--device cuda needs --engine torch"),
    (None, ["--max-chars", "500"], "(cut at --max-chars 500)"),  # the default corpus, cut
    ("abc\n" * 1000, ["--dropout-recurrent", "0.2", "--zoneout", "0.1"],
     "--dropout-recurrent 0.2 and --zoneout 0.1 both act on the recurrent state"),
    ("", [], "seq_len/batch_size.txt' is empty"),  # a path keeps its names
])
def test_train_names_the_flags_the_user_typed_not_the_libraries_parameters(tmp_path, capsys,
                                                                           text, extra, says):
    import re
    files = []
    if text is not None:
        (tmp_path / "seq_len").mkdir()
        files = [str(write(tmp_path / "seq_len" / "batch_size.txt", text))]
    assert main(["train", *files, "--out", str(tmp_path / "run"), "--quiet", *extra]) == 2
    err = capsys.readouterr().err
    assert says in err and "Traceback" not in err, err
    outside_paths = err.replace(str(tmp_path), "")
    assert not re.search(r"\b(seq_len|batch_size|val_fraction|max_chars|engine=|device=)",
                         outside_paths.replace("seq_len/batch_size.txt", "")), err


@pytest.mark.parametrize("optimizer", ["adam", "adamw"])
def test_momentum_is_refused_with_an_optimizer_that_does_not_use_it(tmp_path, capsys, optimizer):
    argv = _train_args(_corpus(tmp_path), tmp_path / "run", 2, ["--optimizer", optimizer])
    assert main(argv + ["--mom", "0.5"]) == 2  # (abbreviated, as argparse allows)
    assert f"--momentum is SGD's; --optimizer {optimizer}" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()
    assert main(_train_args(_corpus(tmp_path), tmp_path / "sgd", 2,
                            ["--optimizer", "sgd", "--momentum", "0.5", "--quiet"])) == 0


def test_resume_judges_momentum_by_the_optimizer_of_the_run(tmp_path, capsys):
    # An SGD run resumed with its own --momentum but without --optimizer sgd was refused:
    # "--optimizer adam does not use it", the default, which the run never had.
    sgd = _train_args(_corpus(tmp_path), tmp_path / "sgd", 1,
                      ["--optimizer", "sgd", "--momentum", "0.5"])
    assert main(sgd) == 0
    at = sgd.index("--optimizer")
    assert main(sgd[:at] + sgd[at + 2:] + ["--resume", "--steps", "2"]) == 0
    assert max(_metric_steps(tmp_path / "sgd")) == 2
    adam = _train_args(_corpus(tmp_path), tmp_path / "adam", 1)
    assert main(adam) == 0
    capsys.readouterr()
    assert main(adam + ["--resume", "--steps", "2", "--momentum", "0.9"]) == 2
    assert (f"--momentum is SGD's; the run in {tmp_path / 'adam'} trains with --optimizer adam, "
            f"which does not use it") in capsys.readouterr().err


# -- tracebacks ---------------------------------------------------------------------------------

def test_a_huge_hidden_size_is_refused_before_allocating(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", str(_corpus(tmp_path)), "--hidden", "99999999999", "--steps", "1",
                 "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "--hidden 99999999999" in err and "parameters" in err and "memory" in err, err
    assert not out.exists()


@pytest.mark.parametrize("command", ["forecast", "classify"])
def test_a_huge_hidden_size_is_refused_by_forecast_and_classify(tmp_path, capsys, command):
    if command == "forecast":
        command = ["forecast", "train", "--dataset", "sunspots"]
    else:
        toy_ts(tmp_path / "Toy_TRAIN.ts", 20, 0)
        command = ["classify", "train", str(tmp_path / "Toy_TRAIN.ts")]
    out = tmp_path / "run"
    assert main([*command, "--hidden", "99999999999", "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "--hidden 99999999999" in err and "Traceback" not in err, err
    assert not (out / "model.ckpt").exists()


# Ctrl-C at the moment the command first imports NumPy (the heaviest part of start-up),
# through the console script's own path: `from lstmlab.cli import main; sys.exit(main())`.
CTRL_C_AT_IMPORT = r"""
import os, signal, sys

class CtrlCAtImport:
    def find_spec(self, name, path=None, target=None):
        if name == "numpy":
            sys.meta_path.remove(self)
            os.kill(os.getpid(), signal.SIGINT)
        return None

sys.meta_path.insert(0, CtrlCAtImport())
from lstmlab.cli import main
sys.exit(main(sys.argv[1:]))
"""


@POSIX
def test_ctrl_c_during_start_up_is_one_line_and_exit_130(tmp_path):
    run = subprocess.run([sys.executable, "-c", CTRL_C_AT_IMPORT, "train", "--steps", "1",
                          "--out", str(tmp_path / "run")], env=_env(), capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 130, run.stderr
    assert "Traceback" not in run.stderr and "interrupted" in run.stderr
    assert not (tmp_path / "run").exists()


# -- silently wrong -----------------------------------------------------------------------------

def test_a_ts_case_of_huge_values_is_an_error_naming_the_case(tmp_path, capsys):
    folder = tmp_path / "Toy"
    folder.mkdir()
    toy_ts(folder / "Toy_TRAIN.ts", 60, 0, scale_case=3, scale=1e200)
    toy_ts(folder / "Toy_TEST.ts", 30, 1)
    out = tmp_path / "run"
    assert main(["classify", "train", str(folder), "--hidden", "8", "--epochs", "2", "--quiet",
                 "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "case '3'" in err and "dim_0" in err and "1e+150" in err, err
    assert not (out / "model.ckpt").exists()


def _series_csv(path, scale, n=120):
    t = np.arange(n)
    y = 10 + 3 * np.sin(2 * np.pi * t / 12) + 0.1 * np.random.default_rng(0).normal(size=n)
    return write(path, "t,y\n" + "".join(f"{i},{float(v * scale)!r}\n" for i, v in zip(t, y)))


@pytest.mark.parametrize("scale, says", [(1e-309, "differ by at most"), (1e200, "line ")])
def test_a_forecast_column_at_the_edges_of_float64_is_an_error_naming_it(tmp_path, capsys, scale,
                                                                          says):
    path = _series_csv(tmp_path / "s.csv", scale)
    out = tmp_path / "run"
    assert main(["forecast", "train", str(path), "--target", "y", "--time", "t", "--lookback",
                 "12", "--horizon", "3", "--epochs", "2", "--hidden", "4", "--quiet",
                 "--no-plot", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "column 'y'" in err and says in err and "rescale" in err, err
    assert not (out / "model.ckpt").exists()


def test_a_season_longer_than_the_training_part_is_labelled_as_computed(tmp_path, capsys):
    path = _series_csv(tmp_path / "s.csv", 1.0)
    out = tmp_path / "run"
    assert main(["forecast", "train", str(path), "--target", "y", "--time", "t", "--lookback",
                 "12", "--horizon", "3", "--epochs", "2", "--hidden", "4", "--season", "1000",
                 "--quiet", "--no-plot", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "seasonal naive error" not in text
    assert "MASE relative to the in-sample naive (m=1) error" in text
    assert "seasonal naive is left out" in text
    report = json.loads((out / "report.json").read_text())
    assert report["season"] == 1000 and report["mase_lag"] == 1


@pytest.fixture(scope="module")
def charlm(tmp_path_factory):
    d = tmp_path_factory.mktemp("lm")
    assert main(["train", str(_corpus(d)), "--out", str(d / "run"), "--steps", "30", "--hidden",
                 "16", "--layers", "1", "--seq-len", "20", "--batch-size", "8", "--quiet"]) == 0
    return str(d / "run" / "best.ckpt")


@pytest.mark.parametrize("temperature", ["1e-310", "5e-324", "1e-300", "1e-30"])
def test_a_tiny_temperature_samples_the_greedy_text(charlm, capsys, temperature):
    assert main(["generate", charlm, "--prompt", "the ", "--length", "50", "--temperature", "0"]) == 0
    greedy = capsys.readouterr().out
    assert main(["generate", charlm, "--prompt", "the ", "--length", "50", "--temperature",
                 temperature, "--seed", "1"]) == 0
    assert capsys.readouterr().out == greedy
    assert greedy.strip("\n") != "the"


# -- ranges of the numeric options ----------------------------------------------------------------

@pytest.mark.parametrize("argv, option", [
    (["generate", "x.ckpt", "--temperature", "inf"], "--temperature"),
    (["generate", "x.ckpt", "--temperature", "nan"], "--temperature"),
    (["generate", "x.ckpt", "--temperature", "-1"], "--temperature"),
    (["generate", "x.ckpt", "--seed", "-1"], "--seed"),
    (["train", "--epochs", "inf"], "--epochs"),
    (["train", "--epochs", "1e999"], "--epochs"),
    (["train", "--lr", "inf"], "--lr"),
    (["train", "--clip", "inf"], "--clip"),
    (["train", "--weight-decay", "inf"], "--weight-decay"),
    (["train", "--forget-bias", "nan"], "--forget-bias"),
    (["train", "--dropout", "1"], "--dropout"),
    (["train", "--momentum", "1.5"], "--momentum"),
    (["train", "--val-fraction", "1"], "--val-fraction"),
    (["train", "--seed", "-5"], "--seed"),
    # torch.distributed's clock: 1e10 s failed at once with a socket timeout, 1e15 s with an
    # OverflowError traceback
    (["train", "--dist-timeout", "1e10"], "--dist-timeout"),
    (["train", "--dist-timeout", "1e15"], "--dist-timeout"),
    (["forecast", "train", "--patience", "-3"], "--patience"),
    (["forecast", "train", "--lr", "nan"], "--lr"),
    (["classify", "train", "--seed", "-1"], "--seed"),
    (["experiment", "adding", "--lengths", "20", "--target", "2"], "--target"),
    (["experiment", "adding", "--lengths", "20", "--input-bias", "nan"], "--input-bias"),
])
def test_numeric_options_outside_their_range_are_refused_by_name(tmp_path, capsys, argv, option):
    with pytest.raises(SystemExit) as exc:
        main(argv + ["--out", str(tmp_path / "o")] if argv[0] != "generate" else argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {option}" in err and "expected" in err, err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("argv", [["train", "x.txt"], ["forecast", "train", "x.csv"],
                                  ["inspect", "x.ckpt", "--text", "a"]])
def test_an_empty_out_is_refused_not_taken_as_the_current_folder(tmp_path, capsys, monkeypatch,
                                                                 argv):
    # `--out ""` (an unset variable in `--out "$RUN"`) wrote the run into the current folder
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exc:
        main(argv + ["--out", ""])
    assert exc.value.code == 2
    assert "argument --out: expected a directory name, got ''" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_a_many_digit_number_is_named_briefly(capsys):
    with pytest.raises(SystemExit):
        main(["generate", "x.ckpt", "--length", "9" * 5000])
    err = capsys.readouterr().err
    assert "argument --length" in err and len(err.splitlines()[-1]) < 200


# -- process state ---------------------------------------------------------------------------

def test_a_command_leaves_numpy_blas_threads_as_it_found_them(tmp_path):
    """A command may hold NumPy's BLAS to one thread while it runs; a caller of ``main`` (a
    notebook, a test) gets its own setting back, after success and after an error alike."""
    threadpoolctl = pytest.importorskip("threadpoolctl")

    def blas_threads():
        return {i["filepath"]: i["num_threads"] for i in threadpoolctl.threadpool_info()
                if i["user_api"] == "blas"}

    with threadpoolctl.threadpool_limits(2, user_api="blas"):
        corpus = _corpus(tmp_path)
        assert main(_train_args(corpus, tmp_path / "warm-up", 2)) == 0  # loads every library
        before = blas_threads()
        assert main(_train_args(corpus, tmp_path / "run", 4)) == 0
        assert blas_threads() == before
        assert main(["generate", str(tmp_path / "missing.npz")]) == 2
        assert blas_threads() == before


def test_resume_says_that_text_added_to_the_file_is_not_used(tmp_path, capsys):
    # text appended to the FILE after the run started was left out without a word
    corpus, out = _corpus(tmp_path), tmp_path / "run"
    assert main(_train_args(corpus, out, 2)) == 0
    resume = ["train", str(corpus), "--out", str(out), "--resume", "--quiet"]
    capsys.readouterr()
    assert main(resume + ["--steps", "3"]) == 0
    assert "note:" not in capsys.readouterr().err
    with open(corpus, "a", encoding="utf-8") as f:
        f.write("the forget gate output.\n")
    assert main(resume + ["--steps", "4"]) == 0
    err = capsys.readouterr().err
    assert "note: the FILEs hold more than the " in err and "the rest is not used" in err
    assert _metric_steps(out) == [1, 2, 3, 4]
