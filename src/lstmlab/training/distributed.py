"""Data-parallel training over ``torch.distributed``: N processes, one model, one gradient.

Dimensions: S steps per chunk, B batch streams (the global batch), N processes (ranks).

Each process (rank r of N) runs lstmlab's own NumPy kernels on its share of the batch
streams: the contiguous columns ``stream_range(B, r, N)`` of every chunk. A stream's carried
state (truncated BPTT) stays with the rank that owns the stream, so the ranks' gradients,
each scaled by ``1 / (S·B)`` instead of its own ``1 / (S·b_r)``, add up to the gradient of
the single-process mean loss. The model's gradients are views into one flat NumPy buffer
(:meth:`~lstmlab.layers.base.Module.share_grads`) that torch sees through
``torch.from_numpy`` without a copy; one ``all_reduce`` per step sums it, with two extra
slots riding along: the loss and a stop flag (so that a Ctrl-C seen by any rank stops every
rank after the same step). Every rank then clips and steps the same gradient with the same
optimizer, so the parameters stay identical everywhere without being sent.

Processes come from :func:`launch` (``lstmlab train --nproc N``), which starts N copies of
the same command on this machine, or from ``torchrun`` (several machines): either way a
process knows its place from the environment variables ``RANK``, ``WORLD_SIZE``,
``LOCAL_WORLD_SIZE``, ``MASTER_ADDR`` and ``MASTER_PORT`` (torch's ``env://`` convention).
The backend is gloo (CPU tensors over TCP). Every collective has a timeout, so a process
whose peer died raises :class:`PeerLost` instead of waiting for ever.

torch is imported only here, on these paths; lstmlab itself does not need it.
"""

from __future__ import annotations

import datetime
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from .losses import softmax_cross_entropy

ENV_VARS = ("RANK", "WORLD_SIZE")
GRACE = 30.0  # seconds the launcher leaves the other processes after one has failed
# The thread counts of the BLAS libraries NumPy's wheels come with: OpenBLAS (through OpenMP
# or its own), MKL, and Accelerate (macOS on arm64), whose count vecLib reads.
BLAS_THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                         "VECLIB_MAXIMUM_THREADS")


class PeerLost(RuntimeError):
    """A collective failed or timed out: another process of the run stopped or hangs."""


def in_process_group() -> bool:
    """True when the environment names this process's rank (set by :func:`launch` or torchrun)."""
    return all(v in os.environ for v in ENV_VARS)


def usable_cores() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def threads_per_process(processes_here: int) -> int:
    """Kernel threads per process so that ``processes_here`` processes fill the cores once."""
    return max(1, usable_cores() // max(1, processes_here))


def own_kernel_cache() -> None:
    """Give this process its own on-disk cache of compiled kernels unless it is the first on
    its machine (``LOCAL_RANK`` 0, which keeps the usual one). numba's cache is not safe for
    processes that compile into it at the same time: their index entries and files can
    overwrite each other, and a later run may then load another kernel's code. The
    processes of one run all compile the same kernels at the same moment, so each other
    process writes to ``<NUMBA_CACHE_DIR or ~/.cache/lstmlab>/numba-rank<LOCAL_RANK>``
    (kept between runs). Must run before the kernels' modules are imported (numba fixes
    each kernel's cache folder when the module defines it): ``lstmlab.cli.main`` calls it
    first thing for ``train``."""
    local_rank = os.environ.get("LOCAL_RANK", os.environ.get("RANK", "0"))
    if local_rank.strip() in ("", "0"):
        return
    base = os.environ.get("NUMBA_CACHE_DIR") or str(Path.home() / ".cache" / "lstmlab")
    os.environ["NUMBA_CACHE_DIR"] = str(Path(base) / f"numba-rank{local_rank.strip()}")


def stream_range(batch_size: int, rank: int, world: int) -> tuple[int, int]:
    """The batch streams ``[lo, hi)`` that ``rank`` of ``world`` owns: contiguous, sizes
    differing by at most one; empty when there are fewer streams than ranks."""
    return rank * batch_size // world, (rank + 1) * batch_size // world


def dropout_in_use(settings) -> tuple[str, float] | None:
    """The first of the dropout-like rates in ``settings`` (a model config or the command's
    arguments, which share their names) that is above 0, as ``(its flag, its rate)``, or None:
    what :func:`check_supported` refuses, named as the user gave it."""
    for name in ("dropout", "dropout_input", "dropout_recurrent", "zoneout", "weight_drop"):
        rate = getattr(settings, name)
        if rate > 0:
            return "--" + name.replace("_", "-"), rate
    return None


def check_supported(processes: int, batch_size: int,
                    dropout: tuple[str, float] | None) -> None:
    """Refuse, with a clear error, what a run of ``processes`` > 1 cannot do exactly;
    ``dropout`` is :func:`dropout_in_use` of the run."""
    if processes <= 1:
        return
    if batch_size < processes:
        raise ValueError(f"--batch-size {batch_size} must be at least the number of processes "
                         f"({processes}): each process trains whole batch streams")
    if dropout is not None:
        flag, rate = dropout
        raise ValueError(f"{flag} {rate:g} is not supported with {processes} processes: each "
                         f"would draw its own masks, so the run would no longer be the "
                         f"single-process one; use {flag} 0 or one process")


def _import_torch():
    try:
        import torch
        import torch.distributed as dist
    except ImportError:
        raise ValueError("--nproc and torchrun need PyTorch (pip install torch), which carries "
                         "the processes' all-reduce (torch.distributed)") from None
    if not dist.is_available() or not dist.is_gloo_available():
        raise ValueError("this PyTorch build has no torch.distributed gloo backend, which "
                         "--nproc needs")
    return torch, dist


class Group:
    """This process's place in the run, and the collectives lstmlab uses (gloo, on NumPy
    arrays shared with torch without copies). Every collective raises :class:`PeerLost`
    when another process is gone or the timeout passes."""

    def __init__(self, timeout: float):
        self.torch, self.dist = _import_torch()
        self.rank = _env_int("RANK", 0)
        self.world = _env_int("WORLD_SIZE", 1)
        self.local_world = _env_int("LOCAL_WORLD_SIZE", 1, self.world)
        if not self.rank < self.world:
            raise ValueError(f"the environment's RANK must lie in [0, WORLD_SIZE), got "
                             f"RANK={self.rank}, WORLD_SIZE={self.world}")
        missing = [name for name in ("MASTER_ADDR", "MASTER_PORT") if not os.environ.get(name)]
        if missing:  # RANK and WORLD_SIZE alone may be left over from another tool
            raise ValueError(f"the environment sets RANK and WORLD_SIZE, as for a process of a "
                             f"data-parallel run, but not {' and '.join(missing)}, where the "
                             f"processes meet; start the processes with 'lstmlab train --nproc "
                             f"N' or torchrun, or unset RANK and WORLD_SIZE to train in one "
                             f"process")
        try:
            self.dist.init_process_group(
                "gloo", timeout=datetime.timedelta(seconds=timeout), rank=self.rank,
                world_size=self.world)
        except (RuntimeError, ValueError) as exc:
            raise PeerLost(f"process {self.rank} of {self.world} could not join the others "
                           f"within {timeout:g} s at {os.environ.get('MASTER_ADDR')}:"
                           f"{os.environ.get('MASTER_PORT')} ({_first_line(exc)})") from None

    @property
    def leader(self) -> bool:
        """Rank 0: the process that writes checkpoints, metrics and progress."""
        return self.rank == 0

    def all_reduce(self, array: np.ndarray) -> None:
        """Sum ``array`` (contiguous) over all processes, in place."""
        self.collective(self.dist.all_reduce, self.torch.from_numpy(array))

    def barrier(self) -> None:
        self.collective(self.dist.barrier)

    def collective(self, fn, *args):
        """``fn(*args)``, a call that communicates (a collective, or DDP's backward); its
        failure becomes :class:`PeerLost`."""
        try:
            return fn(*args)
        except RuntimeError as exc:  # torch's DistError and its kin are RuntimeErrors
            raise PeerLost(f"process {self.rank} of {self.world} lost contact with the others "
                           f"({_first_line(exc)})") from None

    def gather_streams(self, local: np.ndarray, lo: int, hi: int, batch_size: int) -> np.ndarray:
        """The whole ``(..., B, H)`` array from each rank's columns ``[lo, hi)`` (axis -2):
        zeros elsewhere, summed over ranks (adding zeros is exact)."""
        full = np.zeros(local.shape[:-2] + (batch_size, local.shape[-1]), local.dtype)
        full[..., lo:hi, :] = local
        self.all_reduce(full)
        return full

    def close(self) -> None:
        if self.dist.is_initialized():
            self.dist.destroy_process_group()


def _env_int(name: str, least: int, default: int | None = None) -> int:
    text = os.environ.get(name)
    if text is None and default is not None:
        return default
    try:
        value = int(text)
    except (TypeError, ValueError):
        value = least - 1
    if value < least:
        raise ValueError(f"the environment variable {name} must be an integer >= {least} "
                         f"(set by lstmlab train --nproc or torchrun), got {text!r}")
    return value


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


class GradientSum:
    """One data-parallel step's communication: the model's gradients live in ``buffer[:-2]``;
    ``buffer[-2]`` carries the loss and ``buffer[-1]`` the stop flag; one all-reduce.

    Set ``stop_requested`` before a step (this rank saw Ctrl-C or SIGTERM); after it,
    ``stop_agreed`` says whether any rank did, the same on every rank.
    """

    def __init__(self, group: Group, model, rows: int):
        self.group = group
        self.rows = rows  # S * B: the characters of one global chunk
        n = model.num_params()
        # One dtype for the whole buffer: a float32 run sends its loss with 7 digits.
        self.buffer = np.zeros(n + 2, model.dtype)  # (P + 2,)
        model.share_grads(self.buffer[:n])
        self.stop_requested = False
        self.stop_agreed = False

    def loss_and_gradients(self, model, logits: np.ndarray, targets: np.ndarray) -> float:
        """Fill this rank's share of the mean-loss gradient and sum it over ranks. Returns
        the global mean loss (NaN when any rank's logits were not finite)."""
        if np.isfinite(logits).all():
            loss_sum, dlogits = softmax_cross_entropy(logits, targets, reduction="sum")
            # The same factor the single-process mean applies, so each term is the same bits.
            dlogits *= dlogits.dtype.type(1.0) / dlogits.dtype.type(self.rows)
            model.backward(dlogits)
            self.buffer[-2] = loss_sum / self.rows
        else:  # every rank must still join the all-reduce; the NaN tells them all to stop
            self.buffer[-2] = np.nan
        self.buffer[-1] = 1.0 if self.stop_requested else 0.0
        self.group.all_reduce(self.buffer)
        self.stop_agreed = bool(self.buffer[-1] > 0)
        return float(self.buffer[-2])


# -- the launcher --------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def _forward_signals(procs):
    """Pass SIGINT/SIGTERM on to the processes (in their own sessions, so a terminal's Ctrl-C
    reaches them once, through here), and SIGHUP as SIGTERM: the processes' sessions have
    no terminal, so when the launcher's terminal closes (or its ssh connection drops) they
    hear of it only from here, and stop as on SIGTERM instead of training on without the
    launcher. A SIGHUP that is ignored (``nohup``) stays ignored. Ctrl-Z (SIGTSTP) stops
    the processes with the launcher, and continuing the launcher continues them.
    On Windows the console already delivers Ctrl-C to every process, so the launcher only
    keeps it from raising KeyboardInterrupt in itself, which would kill the processes in
    the middle of the step and checkpoint they finish before stopping."""
    if sys.platform == "win32":
        previous = signal.signal(signal.SIGINT, lambda signum, frame: None)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, signal.SIG_DFL if previous is None else previous)
        return

    def forward(signum, frame):
        sent = signal.SIGTERM if signum == signal.SIGHUP else signum
        for p in procs:
            if p.poll() is None:
                p.send_signal(sent)

    def stop(signum, frame):
        # The processes' groups have no parent in their sessions, so the kernel drops a
        # SIGTSTP sent to them: they get SIGSTOP, then the launcher stops itself as Ctrl-Z
        # asked, and when the shell continues it (fg, bg), it continues them.
        alive = [p for p in procs if p.poll() is None]
        for p in alive:
            p.send_signal(signal.SIGSTOP)
        signal.signal(signal.SIGTSTP, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTSTP)
        signal.signal(signal.SIGTSTP, stop)
        for p in alive:
            if p.poll() is None:
                p.send_signal(signal.SIGCONT)

    heard = {signal.SIGINT: forward, signal.SIGTERM: forward}
    for s, handler in ((signal.SIGHUP, forward), (signal.SIGTSTP, stop)):
        if signal.getsignal(s) is not signal.SIG_IGN:  # nohup; a shell without job control
            heard[s] = handler
    previous = {s: signal.signal(s, handler) for s, handler in heard.items()}
    try:
        yield
    finally:
        for s, old in previous.items():
            # None: the previous handler was not installed from Python; the default is.
            signal.signal(s, signal.SIG_DFL if old is None else old)


def launch(argv: list[str], nproc: int, log=None) -> int:
    """Run ``lstmlab ARGV`` as ``nproc`` processes on this machine; return the run's exit code.

    Each process gets ``RANK``, ``WORLD_SIZE`` (as torchrun sets them), a free local port,
    and ``cores / nproc`` threads. Rank 0 writes to this terminal; the others' output is kept
    and shown only if they end differently from rank 0. When a process ends with an error,
    the others have ``GRACE`` seconds to notice (their next collective fails as soon as its
    connection closes) and say so, and are then killed (a hang inside a process ends at its
    own collective timeout, ``--dist-timeout``).
    """
    log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    port = _free_port()
    package_root = str(Path(__file__).resolve().parents[2])  # the folder holding lstmlab/
    threads = str(threads_per_process(nproc))
    procs, outputs = [], []
    try:
        for rank in range(nproc):
            env = dict(os.environ, RANK=str(rank), WORLD_SIZE=str(nproc), LOCAL_RANK=str(rank),
                       LOCAL_WORLD_SIZE=str(nproc), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
            # The same lstmlab as this process, whatever the current directory holds.
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, env.get("PYTHONPATH")]))
            for var in BLAS_THREAD_VARIABLES:
                env.setdefault(var, threads)  # NumPy's BLAS: no oversubscription either
            out = None if rank == 0 else tempfile.TemporaryFile()
            outputs.append(out)
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "lstmlab", *argv], env=env, stdout=out,
                stderr=None if out is None else subprocess.STDOUT,
                start_new_session=os.name == "posix"))
        with _forward_signals(procs):
            _wait(procs, GRACE)
    finally:
        for p in procs:  # an exception here (even a second Ctrl-C) leaves no process behind
            if p.poll() is None:
                p.kill()
                p.wait()
    codes = [p.returncode for p in procs]
    for rank in range(1, nproc):
        if codes[rank] != codes[0] and outputs[rank] is not None:
            outputs[rank].seek(0)
            text = outputs[rank].read().decode("utf-8", "replace").strip()
            if text:
                log("\n".join(f"[process {rank}] {line}" for line in text.splitlines()[-20:]))
    for out in outputs:
        if out is not None:
            out.close()
    return _run_code(codes, log)


def _wait(procs, grace: float) -> None:
    """Wait for every process; once one has failed, give the rest ``grace`` seconds."""
    failed_at = None
    while any(p.poll() is None for p in procs):
        if failed_at is None and any(p.returncode not in (None, 0) for p in procs):
            failed_at = time.monotonic()
        if failed_at is not None and time.monotonic() - failed_at > grace:
            for p in procs:
                if p.poll() is None:
                    p.kill()
        time.sleep(0.05)


def _run_code(codes: list[int], log) -> int:
    """The run's exit code: rank 0's own when it ended by itself (it said why), else that of
    the first process that failed; a process killed by a signal is named in one line."""
    for rank, code in enumerate(codes):
        if code < 0:
            name = signal.Signals(-code).name if -code in signal.valid_signals() else -code
            log(f"lstmlab train: process {rank} of {len(codes)} was killed ({name}); the "
                f"checkpoints in --out are the last complete ones; continue with --resume "
                f"(with any --nproc)")
            break
    if codes[0] >= 0 and (codes[0] > 0 or all(c == 0 for c in codes)):
        return codes[0]
    code = next(c for c in codes if c != 0)
    return 128 - code if code < 0 else code
