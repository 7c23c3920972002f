"""Helpers shared by the tests (forecasting, classification, estimators, recurrent layers)."""

import contextlib
import subprocess

import numpy as np
import pytest


@pytest.fixture(autouse=True, scope="module")
def one_blas_thread():
    """Small matrices: BLAS threads only contend on a shared 2-core machine (15x slower)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        yield
        return
    with threadpool_limits(1):
        yield


def without_compile_notice(err: str) -> str:
    """``err`` without the lines a command prints while its kernels compile for the first
    time (``lstmlab._compile_notice``): whether they appear depends on which tests ran before
    in this process, not on the command."""
    return "".join(line for line in err.splitlines(keepends=True)
                   if not line.startswith(("compiling kernels, once: ", "kernels compiled in ")))


def write(path, text: str):
    path.write_text(text, encoding="utf-8")
    return path


def double_ctrl_c_after_each_epoch(monkeypatch):
    """Send two SIGINTs back to back once forecast or classify training has logged an epoch:
    a hurried double Ctrl-C, which stops the command at once."""
    import signal

    from lstmlab.task_cli import Progress

    log_epoch = Progress.__call__

    def twice(progress, record):
        log_epoch(progress, record)
        signal.raise_signal(signal.SIGINT)  # os.kill(pid, SIGINT) ends the process on Windows
        signal.raise_signal(signal.SIGINT)

    monkeypatch.setattr(Progress, "__call__", twice)



@contextlib.contextmanager
def running(*args, **kwargs):
    """``subprocess.Popen(*args, **kwargs)`` for the body of a ``with``, killed and waited for
    on the way out if it still runs, so that a failed assertion leaves no process behind."""
    proc = subprocess.Popen(*args, **kwargs)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def central_difference(loss, arr, idx, eps=1e-6) -> float:
    """``(loss() at arr[idx] + eps - loss() at arr[idx] - eps) / 2 eps``; ``arr`` is restored."""
    v = arr[idx]
    arr[idx] = v + eps
    up = loss()
    arr[idx] = v - eps
    down = loss()
    arr[idx] = v
    return (up - down) / (2 * eps)


def numerical_gradient(loss, arr, eps=1e-6) -> np.ndarray:
    """:func:`central_difference` at every entry of ``arr``."""
    return np.array([central_difference(loss, arr, idx, eps) for idx in np.ndindex(arr.shape)]
                    ).reshape(arr.shape)


def kernel_forward(p, x, h, c=None, nonlinearity: str = "tanh"):
    """``(y, h_T, cache)``: one recurrent layer's NumPy kernel over ``x`` (T, B, D) from the
    state ``h`` (B, H) with the layer's parameters ``p``: an LSTM's from the cell state ``c``
    too, an RNN's (of ``nonlinearity``) when ``c`` is None."""
    from lstmlab.kernels import lstm_forward, rnn_forward

    if c is None:
        return rnn_forward(x, h, p, nonlinearity)
    y, h_T, _, cache = lstm_forward(x, h, c, p)
    return y, h_T, cache


# -- recurrent-layer test cases -------------------------------------------------------------

# (T, B): one step of one sequence, one step of several, several steps of one.
EDGE_SHAPES = [(1, 1), (1, 3), (5, 1)]


def random_config(seed: int, T: int = 7, B: int = 5, D: int = 6, H: int = 7, L: int = 4,
                  distinct: bool = True) -> dict:
    """A recurrent-layer case drawn from ``seed``: T steps, B sequences, D inputs, H units and
    L layers, each from 1 to below its bound, then the direction, the layout, the bias and
    whether the sequences have lengths. Every fifth seed has one step, every seventh one
    sequence and every fourth no bias. With ``distinct`` D differs from H, so that a weight
    used in the other's place fails on its shape."""
    rng = np.random.default_rng(seed)
    cfg = dict(T=int(rng.integers(1, T)) if seed % 5 else 1,
               B=int(rng.integers(1, B)) if seed % 7 else 1,
               D=int(rng.integers(1, D)), H=int(rng.integers(1, H)), L=int(rng.integers(1, L)),
               bidirectional=bool(rng.integers(2)), batch_first=bool(rng.integers(2)),
               bias=seed % 4 != 3, use_lengths=bool(rng.integers(2)))
    if distinct and cfg["D"] == cfg["H"]:
        cfg["D"] += 1
    return cfg


def edge_config(T: int, B: int, **sizes) -> dict:
    """A two-layer bidirectional case of T steps and B sequences (of their own lengths when
    B > 1), for :data:`EDGE_SHAPES`; ``sizes`` replace its D=3, H=4 or add to it."""
    return {**dict(T=T, B=B, D=3, H=4, L=2, bidirectional=True, batch_first=False, bias=True,
                   use_lengths=B > 1), **sizes}


def assert_step_equals_forward(layer, x, state, atol: float) -> None:
    """Stepping ``layer`` through ``x`` (T, B, D) from ``state`` gives, step by step, the
    outputs of one ``forward`` over all of it, and at the end its final state (``h`` alone,
    or the tuple ``(h, c)``), each within ``atol``."""
    y, final = layer.forward(x, state)
    s = state
    for t in range(x.shape[0]):
        y_t, s = layer.step(x[t], s)
        np.testing.assert_allclose(y_t, y[t], rtol=0, atol=atol)
    parts = (lambda v: v if isinstance(v, tuple) else (v,))
    assert len(parts(s)) == len(parts(final))
    for a, b in zip(parts(s), parts(final)):
        np.testing.assert_allclose(a, b, rtol=0, atol=atol)


# -- a toy classification set ---------------------------------------------------------------

TS_HEADER = """# a comment
@problemName Toy
@timeStamps false
@missing true
@univariate false
@dimensions 2
@equalLength false
@classLabel true up down
@data
"""


def toy_ts(path, n: int = 40, seed: int = 0, labels=("up", "down"), scale_case: int | None = None,
           scale: float = 1.0):
    """A ``.ts`` file of ``n`` two-dimensional cases of 5 to 11 steps, written at ``path``:
    dimension 0 rises (class ``labels[0]``, even cases) or falls (``labels[1]``, odd ones)
    under noise, dimension 1 is noise; case ``scale_case`` has dimension 0 times ``scale``."""
    rng = np.random.default_rng(seed)
    lines = []
    for i in range(n):
        k = i % 2
        T = int(rng.integers(5, 12))
        a = (1.0 if k == 0 else -1.0) * np.arange(T) / T + 0.1 * rng.normal(size=T)
        if i == scale_case:
            a = a * scale
        b = rng.normal(size=T)
        lines.append(",".join(f"{v:.3f}" for v in a) + ":" + ",".join(f"{v:.3f}" for v in b)
                     + ":" + labels[k])
    return write(path, TS_HEADER + "\n".join(lines) + "\n")
