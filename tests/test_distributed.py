"""Data-parallel training (``lstmlab train --nproc N``, torchrun's environment): real processes
on gloo/localhost, the same per-step loss as one process, resume with another N, a killed
worker."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from seq_helpers import running

from lstmlab.cli import main
from lstmlab.training.checkpoint import load_checkpoint
from lstmlab.training.distributed import stream_range
from test_training import SRC, sample_text

pytest.importorskip("torch")


def _args(corpus, out, steps, *extra):
    # float64, clipping active (the norm is mostly above 0.2), a constant schedule after a
    # warm-up (so a run of 20 steps and one of 30 share their first 20 learning rates).
    return ["train", str(corpus), "--out", str(out), "--steps", str(steps), "--hidden", "12",
            "--layers", "2", "--embed", "6", "--seq-len", "9", "--batch-size", "5",
            "--dtype", "float64", "--clip", "0.2", "--schedule", "constant", "--warmup", "4",
            "--lr", "0.01", "--eval-every", "10", "--eval-chunks", "3", "--checkpoint-every",
            "10", "--seed", "4", "--quiet", *extra]


def _metrics(run_dir):
    lines = (Path(run_dir) / "metrics.jsonl").read_text().splitlines()
    return {r["step"]: r for r in map(json.loads, lines)}


def _close(a, b, rel=1e-9):
    return abs(a - b) <= rel * max(abs(a), abs(b))


@pytest.fixture
def corpus(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text(sample_text(150, seed=2), encoding="utf-8")
    return path


def test_stream_range_covers_the_batch_once():
    for B in range(1, 9):
        for world in range(1, 5):
            parts = [stream_range(B, r, world) for r in range(world)]
            assert parts[0][0] == 0 and parts[-1][1] == B
            assert all(a[1] == b[0] for a, b in zip(parts, parts[1:]))
            sizes = [hi - lo for lo, hi in parts]
            assert max(sizes) - min(sizes) <= 1


def test_share_grads_puts_every_gradient_in_one_buffer():
    from lstmlab.layers.model import CharLM, CharLMConfig
    from lstmlab.training.losses import softmax_cross_entropy

    rng = np.random.default_rng(1)
    model = CharLM(CharLMConfig(vocab_size=7, hidden_size=5, num_layers=2, embed_dim=3,
                                dtype="float64"), rng=rng)
    x, y = rng.integers(0, 7, (4, 3)), rng.integers(0, 7, (4, 3))
    model.backward(softmax_cross_entropy(model.forward(x)[0], y)[1])
    before = {k: g.copy() for k, g in model.grads().items()}
    buffer = np.zeros(model.num_params() + 1)[:-1]  # a view, as GradientSum passes
    model.share_grads(buffer)
    assert np.array_equal(buffer, np.concatenate([g.ravel() for g in before.values()]))
    model.backward(softmax_cross_entropy(model.forward(x[::-1].copy())[0], y)[1])
    after = model.grads()
    assert np.array_equal(buffer, np.concatenate([g.ravel() for g in after.values()]))
    assert not np.array_equal(buffer, np.concatenate([g.ravel() for g in before.values()]))
    with pytest.raises(ValueError, match="buffer must be a contiguous 1-D array of"):
        model.share_grads(np.zeros(3))
    with pytest.raises(ValueError, match="buffer must have the parameters' dtype float64"):
        model.share_grads(np.zeros(model.num_params(), np.float32))


@pytest.mark.slow
def test_two_processes_equal_one_and_resume_with_another_count(tmp_path, corpus):
    # 5 streams over 2 processes (3 + 2): the split is uneven on purpose.
    assert main(_args(corpus, tmp_path / "one", 30)) == 0
    assert main(_args(corpus, tmp_path / "two", 20, "--nproc", "2")) == 0
    one, two = _metrics(tmp_path / "one"), _metrics(tmp_path / "two")
    assert sorted(two) == list(range(1, 21))
    for s in range(1, 21):
        for key in ("loss", "grad_norm"):
            assert _close(one[s][key], two[s][key]), (s, key, one[s][key], two[s][key])
    assert _close(one[20]["val_loss"], two[20]["val_loss"])
    assert sum(one[s]["grad_norm"] > 0.2 for s in range(1, 21)) >= 10  # clipping was active

    # The checkpoint of the 2-process run holds the whole batch's carried state; one process
    # resumes it and continues the single-process trajectory.
    meta, arrays = load_checkpoint(tmp_path / "two" / "last.ckpt")
    assert meta["step"] == 20 and arrays["state/0"].shape == (2, 5, 12)
    assert main(_args(corpus, tmp_path / "two", 30, "--resume")) == 0
    two = _metrics(tmp_path / "two")
    assert sorted(two) == list(range(1, 31))
    for s in range(21, 31):
        assert _close(one[s]["loss"], two[s]["loss"]), (s, one[s]["loss"], two[s]["loss"])
    _, a = load_checkpoint(tmp_path / "one" / "last.ckpt")
    _, b = load_checkpoint(tmp_path / "two" / "last.ckpt")
    for name in a:
        np.testing.assert_allclose(b[name], a[name], rtol=1e-8, atol=1e-12, err_msg=name)


def _rank_env(rank, world, port):
    return dict(os.environ, PYTHONPATH=SRC, RANK=str(rank), WORLD_SIZE=str(world),
                LOCAL_WORLD_SIZE=str(world), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port),
                OPENBLAS_NUM_THREADS="1")


@pytest.mark.slow
def test_a_killed_worker_ends_the_run_with_a_loadable_checkpoint(tmp_path, corpus):
    # Two processes started as torchrun starts them (the environment names each one's rank).
    # The kill is noticed when its connection closes; the timeout only has to cover process
    # 1's first compile into its own kernel cache, which process 0 waits for.
    from lstmlab.training.distributed import _free_port

    port = _free_port()
    cmd = [sys.executable, "-m", "lstmlab", *_args(corpus, tmp_path / "run", 100000,
                                                  "--dist-timeout", "150")]
    pipe = [subprocess.PIPE, subprocess.DEVNULL]  # rank 0 speaks for the run
    procs = [subprocess.Popen(cmd, env=_rank_env(r, 2, port), stdout=pipe[r], stderr=pipe[r],
                              text=True) for r in range(2)]
    try:
        metrics = tmp_path / "run" / "metrics.jsonl"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and procs[0].poll() is None:
            if metrics.exists() and len(metrics.read_text().splitlines()) >= 25:
                break
            time.sleep(0.01)
        assert procs[0].poll() is None, procs[0].communicate()[1]
        procs[1].kill()  # SIGKILL; TerminateProcess on Windows
        _, err = procs[0].communicate(timeout=90)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    assert procs[0].returncode == 4, err
    assert "lost contact" in err and "continue with --resume" in err
    assert "Traceback" not in err
    meta, _ = load_checkpoint(tmp_path / "run" / "last.ckpt")
    killed_at = meta["step"]
    assert killed_at >= 20 and killed_at % 10 == 0
    # One process continues it.
    assert main(_args(corpus, tmp_path / "run", killed_at + 3, "--resume")) == 0
    assert max(_metrics(tmp_path / "run")) == killed_at + 3


@pytest.mark.skipif(os.name != "posix", reason="Windows cannot send SIGINT to one process")
@pytest.mark.slow
def test_ctrl_c_stops_every_process_after_the_same_step(tmp_path, corpus):
    # One NumPy process trains 10 steps; 2 processes of the torch engine (DDP) resume it (the
    # state of 5 streams split 3 + 2) until Ctrl-C reaches lstmlab's launcher, which passes it
    # on to both processes.
    run = tmp_path / "run"
    assert main(_args(corpus, run, 10)) == 0
    cmd = [sys.executable, "-m", "lstmlab",
           *_args(corpus, run, 100000, "--resume", "--nproc", "2", "--engine", "torch")]
    with running(cmd, env=dict(os.environ, PYTHONPATH=SRC), stdout=subprocess.PIPE,
                 stderr=subprocess.PIPE, text=True) as proc:
        deadline = time.monotonic() + 120
        metrics = run / "metrics.jsonl"
        while time.monotonic() < deadline and proc.poll() is None \
                and metrics.read_text().count("\n") < 25:  # complete lines only
            time.sleep(0.01)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted: saved" in err and "Traceback" not in err
    meta, _ = load_checkpoint(run / "last.ckpt")
    stopped = meta["step"]
    assert stopped >= 25 and max(_metrics(run)) == stopped
    # The same steps as one uninterrupted single-process NumPy run (constant learning rate
    # after the warm-up, so the longer --steps does not change them).
    assert main(_args(corpus, tmp_path / "one", stopped)) == 0
    one, two = _metrics(tmp_path / "one"), _metrics(run)
    for s in range(1, stopped + 1):
        assert _close(one[s]["loss"], two[s]["loss"]), (s, one[s]["loss"], two[s]["loss"])


@pytest.mark.parametrize("command", [["forecast", "train"], ["classify", "train"], ["demo", "--quick"]])
def test_other_commands_refuse_to_run_as_several_processes(monkeypatch, capsys, command):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    assert main(command) == 2
    err = capsys.readouterr().err
    assert "only 'lstmlab train' (the char-LM) trains data-parallel" in err


def test_batch_smaller_than_the_process_count_is_a_clear_error(tmp_path, corpus, capsys):
    assert main(_args(corpus, tmp_path / "run", 5, "--batch-size", "1", "--nproc", "2")) == 2
    assert "--batch-size 1 must be at least the number of processes (2)" in capsys.readouterr().err


@pytest.mark.parametrize("flag", ["--dropout", "--dropout-input", "--dropout-recurrent",
                                  "--zoneout", "--weight-drop"])
def test_a_dropout_several_processes_cannot_run_is_named_by_its_flag(tmp_path, corpus, capsys,
                                                                     flag):
    assert main(_args(corpus, tmp_path / "run", 5, flag, "0.25", "--nproc", "2")) == 2
    err = capsys.readouterr().err
    assert f"error: {flag} 0.25 is not supported with 2 processes" in err
    assert f"use {flag} 0 or one process" in err and "Traceback" not in err
    assert not (tmp_path / "run").exists()


def test_nproc_on_resume_is_checked_against_the_stored_batch_size(tmp_path, corpus, capsys):
    # The stored run trains 5 streams; --resume does not repeat --batch-size, so the check
    # before the launch must use the run's 5, not the command line's default of 32.
    args = _args(corpus, tmp_path / "run", 6)
    assert main(args) == 0
    at = args.index("--batch-size")
    resume = args[:at] + args[at + 2:] + ["--resume", "--steps", "8", "--nproc", "6"]
    capsys.readouterr()
    assert main(resume) != 0
    err = capsys.readouterr().err
    assert "--batch-size 5 must be at least the number of processes (6)" in err


def _sleeper():
    """A stand-in for a process of a run: Python's default SIGTERM ends it."""
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])


def _end(proc):
    if proc.poll() is None:
        proc.kill()
        proc.wait()


@pytest.mark.skipif(os.name != "posix", reason="SIGHUP is POSIX's")
def test_a_hangup_of_the_launcher_stops_its_processes():
    # The processes run in their own sessions: a closed terminal reaches them only through
    # the launcher, which passes it on as SIGTERM (stop after the step, with a checkpoint).
    from lstmlab.training.distributed import _forward_signals

    # (A handler of the test's own keeps a launcher that ignores SIGHUP from ending pytest.)
    proc, previous = _sleeper(), signal.signal(signal.SIGHUP, lambda signum, frame: None)
    try:
        with _forward_signals([proc]):
            os.kill(os.getpid(), signal.SIGHUP)
            assert proc.wait(timeout=5) == -signal.SIGTERM
    finally:
        signal.signal(signal.SIGHUP, previous)
        _end(proc)


@pytest.mark.skipif(os.name != "posix", reason="SIGHUP is POSIX's")
def test_a_hangup_under_nohup_leaves_the_processes_training():
    from lstmlab.training.distributed import _forward_signals

    proc, previous = _sleeper(), signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        with _forward_signals([proc]):
            os.kill(os.getpid(), signal.SIGHUP)
            time.sleep(0.2)
            assert proc.poll() is None
    finally:
        signal.signal(signal.SIGHUP, previous)
        _end(proc)


def _state(pid: int) -> str:
    """The state letter of process ``pid`` (T when it is stopped), from ``ps`` or, on a
    Linux without it, from /proc."""
    if shutil.which("ps"):
        out = subprocess.run(["ps", "-o", "stat=", "-p", str(pid)], capture_output=True,
                             text=True)
        return out.stdout.strip()[:1]
    stat = Path(f"/proc/{pid}/stat")
    if not stat.exists():
        pytest.skip("neither ps nor /proc to read a process's state")
    return stat.read_text().rsplit(")", 1)[1].split()[0]


@pytest.mark.skipif(os.name != "posix", reason="job control (Ctrl-Z) is POSIX's")
def test_ctrl_z_stops_the_processes_with_the_launcher_and_fg_continues_them(tmp_path):
    # The processes run in their own sessions, where a SIGTSTP does not stop them: Ctrl-Z
    # stopped the launcher alone while the processes trained on.
    script = tmp_path / "launcher.py"
    script.write_text(  # a job as a shell with job control starts it: SIGTSTP not blocked,
        "import signal, subprocess, sys, time\n"  # its default action (pytest's may differ)
        "signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGTSTP])\n"
        "signal.signal(signal.SIGTSTP, signal.SIG_DFL)\n"
        "from lstmlab.training.distributed import _forward_signals\n"
        "proc = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'],\n"
        "                        start_new_session=True)\n"
        "print(proc.pid, flush=True)\n"
        "with _forward_signals([proc]):\n"
        "    time.sleep(60)\n")
    # In a process group of its own, as a shell's job: its parent (pytest) is in another group
    # of the session, so the group is not orphaned, where the kernel drops a SIGTSTP.
    launcher = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True,
                                env=dict(os.environ, PYTHONPATH=SRC), process_group=0)
    worker = int(launcher.stdout.readline())
    try:
        time.sleep(0.5)  # the launcher is inside _forward_signals
        os.kill(launcher.pid, signal.SIGTSTP)
        deadline, status = time.monotonic() + 10, 0
        while time.monotonic() < deadline:
            pid, status = os.waitpid(launcher.pid, os.WUNTRACED | os.WNOHANG)
            if pid:
                break
            time.sleep(0.05)
        assert os.WIFSTOPPED(status)
        assert _state(worker) == "T"
        os.kill(launcher.pid, signal.SIGCONT)
        deadline = time.monotonic() + 5
        while _state(worker) == "T" and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _state(worker) in ("S", "R")
    finally:
        launcher.kill()
        launcher.wait()
        launcher.stdout.close()
        os.kill(worker, signal.SIGKILL)


def test_rank_and_world_size_without_a_meeting_place_is_a_clear_error(tmp_path, corpus, capsys,
                                                                     monkeypatch):
    # RANK and WORLD_SIZE left over in the environment gave a traceback from init_process_group
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "1")
    monkeypatch.delenv("MASTER_ADDR", raising=False)
    monkeypatch.delenv("MASTER_PORT", raising=False)
    assert main(_args(corpus, tmp_path / "run", 2)) == 2
    err = capsys.readouterr().err
    assert "sets RANK and WORLD_SIZE, as for a process of a data-parallel run, but not " \
           "MASTER_ADDR and MASTER_PORT" in err and "unset RANK and WORLD_SIZE" in err
    assert not (tmp_path / "run").exists()


def test_a_process_whose_others_never_come_stops_with_one_line(tmp_path, corpus, capsys,
                                                                monkeypatch):
    # (joining a real group that nobody else joins takes gloo a second or more to give up)
    from lstmlab.training import distributed

    def never_joined(timeout):
        raise distributed.PeerLost(f"process 0 of 2 could not join the others within "
                                   f"{timeout:g} s at 127.0.0.1:1 (Timed out)")

    monkeypatch.setattr(distributed, "Group", never_joined)
    for name, value in _rank_env(0, 2, 1).items():
        monkeypatch.setenv(name, value)
    assert main(_args(corpus, tmp_path / "run", 2, "--dist-timeout", "7")) == 4
    assert capsys.readouterr().err == ("lstmlab train: stopped: process 0 of 2 could not join "
                                       "the others within 7 s at 127.0.0.1:1 (Timed out)\n")


@pytest.mark.parametrize("steps", ["1", "0"])
def test_bench_scaling_refuses_too_few_steps_by_its_flag(steps):
    # --steps 1 trained a run and then divided by zero: the middle step was the last one
    bench = Path(__file__).resolve().parents[1] / "bench" / "bench_scaling.py"
    done = subprocess.run([sys.executable, str(bench), "--steps", steps], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 2
    assert f"--steps must be at least 2 (throughput is measured over the second half of the " \
           f"steps), got {steps}" in done.stderr and "Traceback" not in done.stderr


def test_a_process_past_rank_0_loads_the_kernels_from_its_own_cache(tmp_path, corpus,
                                                                    monkeypatch, capsys):
    # numba fixes a kernel's cache folder when its module is imported; the folder of a
    # process's own was named after that, so every process compiled into one shared cache
    from lstmlab.kernels import fast

    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "numba"))
    for name, value in {"RANK": "1", "LOCAL_RANK": "1", "WORLD_SIZE": "2"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("MASTER_ADDR", raising=False)  # stops the run before it starts
    real, seen = fast._modules, []

    def loading():
        seen.append(os.environ.get("NUMBA_CACHE_DIR"))
        return real()

    monkeypatch.setattr(fast, "_modules", loading)
    assert main(_args(corpus, tmp_path / "run", 2)) == 2
    assert seen and seen[0] == str(tmp_path / "numba" / "numba-rank1")
