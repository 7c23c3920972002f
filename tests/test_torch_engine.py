"""``lstmlab train --engine torch``: the torch twin follows the NumPy engine step for step in
float64, writes ordinary checkpoints, and a run continues on either engine."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from lstmlab.cli import main
from lstmlab.training.checkpoint import load_checkpoint
from test_training import SRC, sample_text

torch = pytest.importorskip("torch")


def _args(corpus, out, steps, *extra):
    return ["train", str(corpus), "--out", str(out), "--steps", str(steps), "--hidden", "11",
            "--layers", "2", "--embed", "5", "--seq-len", "7", "--batch-size", "3",
            "--dtype", "float64", "--clip", "0.2", "--forget-bias", "0.6",
            "--eval-every", "10", "--eval-chunks", "3", "--checkpoint-every", "10", "--seed", "5",
            "--quiet", *extra]


def _metrics(run_dir):
    lines = (Path(run_dir) / "metrics.jsonl").read_text().splitlines()
    return {r["step"]: r for r in map(json.loads, lines)}


def _assert_same_run(a, b, steps, keys=("loss", "grad_norm")):
    for s in steps:
        for key in keys:
            assert abs(a[s][key] - b[s][key]) <= 1e-9 * abs(a[s][key]), (s, key, a[s][key], b[s][key])


@pytest.fixture
def corpus(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text(sample_text(120, seed=7), encoding="utf-8")
    return path


@pytest.mark.parametrize("extra", [
    ("--model", "lstm", "--optimizer", "adam", "--lr", "0.01"),
    ("--model", "lstm", "--optimizer", "sgd", "--lr", "0.3", "--momentum", "0.8",
     "--weight-decay", "0.01", "--schedule", "step"),
    ("--model", "rnn", "--optimizer", "adamw", "--lr", "0.01", "--weight-decay", "0.05",
     "--warmup", "3"),
])
def test_torch_engine_equals_numpy_engine(tmp_path, corpus, extra):
    assert main(_args(corpus, tmp_path / "numpy", 20, *extra)) == 0
    assert main(_args(corpus, tmp_path / "torch", 20, *extra, "--engine", "torch")) == 0
    a, b = _metrics(tmp_path / "numpy"), _metrics(tmp_path / "torch")
    assert sorted(b) == list(range(1, 21))
    _assert_same_run(a, b, range(1, 21))
    _assert_same_run(a, b, (10, 20), ("val_loss",))
    assert sum(a[s]["grad_norm"] > 0.2 for s in a) >= 5  # clipping was active
    # The same checkpoint: parameters, optimizer buffers and carried state.
    meta_a, arr_a = load_checkpoint(tmp_path / "numpy" / "last.ckpt")
    meta_b, arr_b = load_checkpoint(tmp_path / "torch" / "last.ckpt")
    assert meta_a["optimizer"]["step"] == meta_b["optimizer"]["step"] == 20
    assert sorted(arr_a) == sorted(arr_b)
    for name in arr_a:
        np.testing.assert_allclose(arr_b[name], arr_a[name], rtol=1e-8, atol=1e-12, err_msg=name)


def test_a_run_continues_on_the_other_engine(tmp_path, corpus):
    # A constant schedule, so that stopping at 10 and 20 and extending --steps keeps the
    # learning rates of one uninterrupted 30-step run.
    steady = ("--schedule", "constant", "--lr", "0.01")
    assert main(_args(corpus, tmp_path / "numpy", 30, *steady)) == 0
    run = tmp_path / "mixed"
    assert main(_args(corpus, run, 10, *steady, "--engine", "torch")) == 0
    assert main(_args(corpus, run, 20, *steady, "--resume")) == 0
    assert main(_args(corpus, run, 30, *steady, "--resume", "--engine", "torch")) == 0
    a, b = _metrics(tmp_path / "numpy"), _metrics(run)
    assert sorted(b) == list(range(1, 31))
    _assert_same_run(a, b, range(1, 31))
    # The torch engine's checkpoint is an ordinary one: generate and evaluate read it.
    assert main(["generate", str(run / "last.ckpt"), "--prompt", "the ", "--length", "20",
                 "--temperature", "0"]) == 0
    assert main(["evaluate", str(run / "best.ckpt"), str(corpus)]) == 0


@pytest.mark.parametrize("extra,message", [
    (("--engine", "torch", "--dropout", "0.2"), "--engine torch does not support --dropout 0.2"),
    (("--device", "cuda"), "--device cuda needs --engine torch"),
    (("--engine", "torch", "--cell", "gru"), "--engine torch trains LSTM and RNN char-LMs; a GRU"),
])
def test_what_the_twin_cannot_do_is_a_clear_error(tmp_path, corpus, capsys, extra, message):
    assert main(_args(corpus, tmp_path / "run", 5, *extra)) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "run" / "last.ckpt").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_cuda_without_a_gpu_is_a_clear_error(tmp_path, corpus, capsys):
    assert main(_args(corpus, tmp_path / "run", 5, "--engine", "torch", "--device", "cuda")) == 2
    assert "sees no CUDA GPU" in capsys.readouterr().err


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU here")
def test_gpu_check_script_passes_on_the_gpu():
    script = Path(__file__).resolve().parents[1] / "bench" / "gpu_check.py"
    done = subprocess.run([sys.executable, str(script), "--steps", "5", "--max-chars", "300000"],
                          env=dict(os.environ, PYTHONPATH=SRC),
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "characters per second" in done.stdout
