"""The fast path: the reference kernels' contract on compiled loops and lstmlab's own threads.

Dimensions: T time, B batch, D input features, H hidden units, G gate blocks, L layers.

``lstm_forward``, ``lstm_backward``, ``rnn_forward``, ``rnn_backward`` and the peephole
variants take the arguments of the NumPy reference kernels (``lstm.py``, ``rnn.py``,
``lstm_peephole.py``) and return the same results to round-off; their caches are this
module's :class:`FastCache`. How they run:

* **One cell definition, one set of loops.** Each cell's per-step math, forward and
  backward, is written once (``_cells.py``); the time loops (``_loops.py``) are the same for
  every cell: training, inference (``need_cache=False``: rings instead of the whole
  history), ragged lengths, and the streaming step (:func:`stream_step`). The layers run a
  backward direction by reversing each sequence, as for the reference.
* **All arithmetic on lstmlab's own kernel** (``_product.py``), no BLAS: the weights are
  packed into panels once per call and a register-tiled kernel, written in portable LLVM IR,
  does every product on the threads of the call. Nothing waits for, or competes with,
  another library's thread pool, and no library setting is touched.
* **Threads**: a call runs on a team of up to :func:`get_num_threads` threads (the cores
  this process may use, by default; :func:`set_num_threads` changes it). The team divides
  the batch into row groups (no synchronisation between them) and, when rows are too few
  to keep every thread busy, the hidden units into unit groups that meet at a barrier after
  every step (``_loops.py``). Small calls run on the calling thread alone. Every result is
  the same bits for any number of threads; a call made while another thread's team is
  running runs alone on its own thread.

numba is optional: :func:`available` says whether it imports. Nothing here imports it
until the first fast call, so ``import lstmlab`` stays light.
"""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path
from typing import Callable, NamedTuple

import numpy as np

from .lstm import LSTMParams
from .lstm_peephole import LSTMPeepholeParams, _check_options
from .rnn import ACTIVATIONS, RNNParams

# -- the compiled modules ---------------------------------------------------------------
_state: dict = {}
_lock = threading.Lock()


def available() -> bool:
    """True when the compiled kernels can be used: numba imports and the environment does not
    say ``LSTMLAB_FAST=0`` (the one switch, for running everything on the NumPy reference).
    Checked once; compiling happens on the first call of each kernel for each dtype and is
    cached on disk."""
    if "ok" not in _state:
        with _lock:
            if "ok" not in _state:
                if os.environ.get("LSTMLAB_FAST", "1") == "0":
                    _state["ok"] = False
                    return False
                try:
                    from . import _cells, _loops, _product
                except ImportError:
                    _state["ok"] = False
                else:
                    _drop_stale_cache(_loops)
                    _state.update(ok=True, cells=_cells, loops=_loops, product=_product)
    return _state["ok"]


def _compiled():
    if not available():
        raise RuntimeError("the fast kernels need numba (pip install numba); the reference "
                           "kernels in lstmlab.kernels work without it")
    return _state


def _drop_stale_cache(loops) -> None:
    """numba keys its on-disk cache of a function on that function's own file, so the
    compiled loops would outlive an edit of the cells or the product they inline. A stamp
    of the three sources, next to the cache, drops the loops' entries when they change."""
    here = Path(__file__).parent
    digest = hashlib.sha256(b"".join((here / f"{m}.py").read_bytes()
                                     for m in ("_product", "_cells", "_loops"))).hexdigest()
    try:
        cache = Path(loops.forward.stats.cache_path)
        stamp = cache / "lstmlab-kernels.stamp"
        if stamp.exists() and stamp.read_text() == digest:
            return
        for f in cache.glob("_loops.*.nb[ci]"):
            f.unlink()
        stamp.write_text(digest)
    except (OSError, AttributeError):  # no cache folder, or not writable: numba recompiles
        pass


# -- threads ----------------------------------------------------------------------------
def _cores() -> int:
    """The cores this process may run on."""
    if hasattr(os, "process_cpu_count"):  # Python 3.13+
        return os.process_cpu_count() or 1
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0)) or 1
    return os.cpu_count() or 1


_threads = [_cores()]


def set_num_threads(n: int) -> None:
    """Use at most ``n`` threads per call of the fast kernels (default: the cores this
    process may use). Results are the same bits for every ``n``."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"set_num_threads needs a positive integer, got {n!r}")
    _threads[0] = int(n)


def get_num_threads() -> int:
    """The most threads a call of the fast kernels uses."""
    return _threads[0]


class _Pool:
    """Worker threads for teams: one team at a time, the caller being thread 0."""

    def __init__(self):
        self.busy = threading.Lock()  # held while a team runs
        self.workers: list[tuple[threading.Semaphore, list]] = []

    def grow(self, n: int) -> None:
        while len(self.workers) < n:
            go, slot = threading.Semaphore(0), [None]
            threading.Thread(target=self._work, args=(go, slot), daemon=True,
                             name=f"lstmlab-{len(self.workers) + 1}").start()
            self.workers.append((go, slot))

    @staticmethod
    def _work(go, slot):
        while True:
            go.acquire()
            run, tid, done = slot[0]
            try:
                run(tid)
            except BaseException as e:  # handed to the caller, which raises it
                done.fail(e)
            done.finish()


class _Done:
    """Counts a team's workers out; keeps the first error."""

    def __init__(self, n: int, sync: np.ndarray):
        self.left, self.sync, self.error = n, sync, None
        self.lock, self.event = threading.Lock(), threading.Event()

    def fail(self, e: BaseException) -> None:
        self.sync[0] = 1  # _loops.ABORT: the others leave their waits
        self.error = self.error or e

    def finish(self) -> None:
        with self.lock:
            self.left -= 1
            if self.left == 0:
                self.event.set()


_pool: list = [None]


def _forget_pool() -> None:  # in a forked child: the parent's workers do not exist here
    _pool[0] = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool)


def _run(fn: Callable, args: tuple, nb: int, nu: int, sync: np.ndarray) -> None:
    """``fn(*args, tid, nb, nu, sync)`` for every thread ``tid`` of an nb·nu team."""
    P = nb * nu
    if P == 1:
        fn(*args, 0, 1, 1, sync)
        return
    pool = _pool[0]
    done = _Done(P - 1, sync)

    def run(tid):
        fn(*args, tid, nb, nu, sync)

    for k, (go, slot) in enumerate(pool.workers[:P - 1]):
        slot[0] = (run, k + 1, done)
        go.release()
    try:
        run(0)
    except BaseException as e:
        done.fail(e)
    while not done.event.is_set():  # the workers use the arrays: wait for them, whatever
        try:
            done.event.wait()
        except BaseException as e:  # e.g. Ctrl-C: let the team stop early, then raise it
            done.fail(e)
    if done.error is not None:
        raise done.error


def _team(nb: int, nu: int) -> tuple[int, int, threading.Lock | None]:
    """The team to run with, and the lock to release after: ``(nb, nu)`` when the pool is
    free, else ``(1, 1)`` (another thread's team is running: this call runs alone)."""
    if nb * nu == 1:
        return 1, 1, None
    with _lock:
        if _pool[0] is None:
            _pool[0] = _Pool()
        pool = _pool[0]
    if not pool.busy.acquire(blocking=False):
        return 1, 1, None
    pool.grow(nb * nu - 1)
    return nb, nu, pool.busy


# A thread is worth starting for this much arithmetic (a team costs tens of microseconds to
# start); a row group should have enough rows for its products to be limited by arithmetic,
# not by reading the weights; a unit group at least two panels of every gate.
MIN_THREAD_FLOPS = 4e6
MIN_GROUP_ROWS = 8
MIN_GROUP_PANELS = 2


def plan(T: int, B: int, D: int, H: int, G: int, dtype) -> tuple[int, int]:
    """``(nb, nu)``: the row groups and unit groups of a call's team (see the module
    docstring). Rows first, as they need no barrier; units for the threads left."""
    flops = 2.0 * T * B * (D + H) * G * H
    P = int(min(get_num_threads(), max(1.0, flops // MIN_THREAD_FLOPS)))
    nb = max(1, min(P, B // MIN_GROUP_ROWS))
    panels = -(-H // (64 // np.dtype(dtype).itemsize))  # panels of at most 64 bytes' columns
    nu = max(1, min(P // nb, panels // MIN_GROUP_PANELS))
    return nb, nu


# -- the cells' data ----------------------------------------------------------------------
class FastCache(NamedTuple):
    """What a training forward keeps for :func:`sequence_backward`."""

    cell: str
    spec: tuple  # the cell's spec (``_cells``)
    tape: tuple  # the cell's tape: gates, states, ... of every step
    x: np.ndarray  # (T, B, D)
    Wx: np.ndarray  # (D, G·H)
    Wh: np.ndarray  # (H, G·H)
    has_bias: bool
    has_peepholes: bool
    lengths: np.ndarray  # (B,) int64
    padded: bool  # some lengths < T


class Recompute(NamedTuple):
    """Stands in for the cache of an inference forward (``need_cache=False``): a backward
    that receives it calls ``forward()``, which runs the same forward again keeping the cache
    (the inputs and parameters are held by reference, as a cache holds them)."""

    forward: Callable[[], object]


_GATES = {"lstm": 4, "rnn": 1, "peephole": 4}
_STATES = {"lstm": 2, "rnn": 1, "peephole": 2}


def _spec(cell: str, b, H: int, dtype, options: dict):
    C = _compiled()["cells"]
    b = np.zeros(_GATES[cell] * H, dtype) if b is None else _array(b, dtype)
    if cell == "lstm":
        return C.LSTMSpec(b)
    if cell == "rnn":
        return C.RNNSpec(b, options["act"] == "relu")
    P = options.get("P")
    P = np.zeros(3 * H, dtype) if P is None else _array(P, dtype)
    clip = options.get("clip")
    return C.PeepholeSpec(b, P, np.dtype(dtype).type(clip or 0.0), bool(options["input_forget"]))


def _tape(cell: str, spec, T: int, B: int, H: int, dtype, states0, training: bool):
    """The arrays a forward writes: the whole history in training, rings in inference."""
    C = _compiled()["cells"]
    Tz = T if training else min(T, max(1, _compiled()["loops"].PROJECT_ROWS // B))
    z = np.empty((Tz, B, _GATES[cell] * H), dtype)
    h = np.empty((T + 1, B, H), dtype)
    h[0] = states0[0]
    if cell == "rnn":
        return C.RNNTape(z, h)
    c = np.empty((T + 1 if training else 2, B, H), dtype)
    c[0] = states0[1]
    tc = np.empty((T if training else 1, B, H), dtype)
    if cell == "lstm":
        return C.LSTMTape(z, h, c, tc)
    mask = np.ones((T if training else 1, B, 4 * H) if spec.clip else (1, 1, 1), dtype)
    return C.PeepholeTape(z, h, c, tc, mask)


def _grad(cell: str, T: int, B: int, H: int, dtype, dstates):
    """Room for the backward: dz, and the state gradients (from the final state's)."""
    C = _compiled()["cells"]
    dz = np.empty((T, B, _GATES[cell] * H), dtype)
    carried = [np.zeros((B, H), dtype) if d is None else np.array(d, dtype=dtype, order="C")
               for d in dstates]
    if cell == "rnn":
        return C.RNNGrad(dz, *carried)
    return (C.LSTMGrad if cell == "lstm" else C.PeepholeGrad)(dz, *carried)


def _array(a, dtype) -> np.ndarray:
    """``a`` as a C-contiguous array of ``dtype``, copied only when it is not one."""
    return np.ascontiguousarray(a, dtype)


def _lengths(lengths, T: int, B: int) -> tuple[np.ndarray, bool]:
    if lengths is None:
        return np.full(B, T, np.int64), False
    lengths = np.asarray(lengths, np.int64)
    return lengths.copy(), bool((lengths < T).any())


# -- whole sequences ----------------------------------------------------------------------
def sequence_forward(cell: str, x, states0: tuple, Wx, Wh, b, lengths=None,
                     need_cache: bool = True, **options):
    """Run ``cell`` ("lstm", "rnn", "peephole") over ``x (T, B, D)`` from ``states0`` (h_0,
    and c_0 for the LSTMs, each (B, H)). Returns ``(y, finals, cache)``: ``y (T, B, H)``
    (0 past a sequence's length; a read-only view when nothing is padded), the final states,
    and a :class:`FastCache` (None with ``need_cache=False``)."""
    mods = _compiled()
    x = _array(x, x.dtype)
    dtype = x.dtype
    Wx, Wh = _array(Wx, dtype), _array(Wh, dtype)
    T, B, D = x.shape
    H = Wh.shape[0]
    G = _GATES[cell]
    spec = _spec(cell, b, H, dtype, options)
    tape = _tape(cell, spec, T, B, H, dtype, states0, need_cache)
    lens, padded = _lengths(lengths, T, B)
    nb, nu, busy = _team(*plan(T, B, D, H, G, dtype))
    try:
        nr = mods["product"].panel_width(dtype)
        PH = -(-H // nr)
        wxp = np.empty((G * PH, D, nr), dtype)
        whp = np.empty((G * PH, H, nr), dtype)
        zh = np.empty((B, G * H), dtype)
        sync = np.zeros(mods["loops"].sync_words(nb), np.int64)
        _run(mods["loops"].forward, (spec, tape, zh, x, lens, Wx, Wh, wxp, whp), nb, nu, sync)
    finally:
        if busy is not None:
            busy.release()
    finals = _finals(cell, tape, T)
    y = tape.h[1:]
    if padded:
        y = y * (np.arange(T)[:, None] < lens[None, :]).astype(dtype)[:, :, None]
    else:
        y.flags.writeable = False
    cache = FastCache(cell, spec, tape, x, Wx, Wh, b is not None, options.get("P") is not None,
                      lens, padded) if need_cache else None
    return y, finals, cache


def _finals(cell: str, tape, T: int) -> tuple:
    if cell == "rnn":
        return (tape.h[T].copy(),)
    return tape.h[T].copy(), tape.c[T % tape.c.shape[0]].copy()


def sequence_backward(dy, dstates: tuple, cache: FastCache, need_dx: bool = True):
    """Backpropagation through time for :func:`sequence_forward`'s cache. ``dy (T, B, H)`` or
    None; ``dstates`` the gradients on the final states (each may be None). Returns ``(dx,
    dstates0, (dWx, dWh, db, dparams))``; ``dx`` is None with ``need_dx=False``, ``db`` None
    without bias, ``dparams`` the peepholes' gradient (3H,) or None."""
    mods = _compiled()
    cell, spec, tape, x = cache.cell, cache.spec, cache.tape, cache.x
    T, B, D = x.shape
    H = tape.h.shape[2]
    G, dtype = _GATES[cell], x.dtype
    grad = _grad(cell, T, B, H, dtype, dstates)
    dy = np.empty((0, B, H), dtype) if dy is None else _array(dy, dtype)
    nr = mods["product"].panel_width(dtype)
    dWx = np.empty((D, G * H), dtype)
    dWh = np.empty((H, G * H), dtype)
    db = np.empty(G * H, dtype)
    dparams = np.empty(3 * H if cell == "peephole" else 0, dtype)
    dx2 = np.empty((T * B if need_dx else 0, D), dtype)
    nb, nu, busy = _team(*plan(T, B, D, H, G, dtype))
    try:
        wxtp = np.empty((-(-D // nr) if need_dx else 0, G * H, nr), dtype)
        whtp = np.empty((-(-H // nr), G * H, nr), dtype)
        dzp = np.empty((nb * nu, T * B, nr), dtype)
        sync = np.zeros(mods["loops"].sync_words(nb), np.int64)
        args = (spec, tape, grad, dy, x.reshape(T * B, D), tape.h[:T].reshape(T * B, H),
                cache.lengths, cache.Wx, cache.Wh, wxtp, whtp, dzp, dWx, dWh, db, dparams, dx2)
        _run(mods["loops"].backward, args, nb, nu, sync)
    finally:
        if busy is not None:
            busy.release()
    dx = dx2.reshape(T, B, D) if need_dx else None
    dstates0 = (grad.dh,) if cell == "rnn" else (grad.dh, grad.dc)
    return dx, dstates0, (dWx, dWh, db if cache.has_bias else None,
                          dparams if cache.has_peepholes else None)


# -- the reference kernels' functions -------------------------------------------------------
def lstm_forward(x, h0, c0, params: LSTMParams, lengths=None, need_cache: bool = True):
    """:func:`lstmlab.kernels.lstm_forward` on the fast path: ``(y, hT, cT, cache)``."""
    y, (hT, cT), cache = sequence_forward("lstm", x, (h0, c0), *params, lengths, need_cache)
    return y, hT, cT, cache


def lstm_backward(dy, dhT, dcT, cache: FastCache, need_dx: bool = True):
    """:func:`lstmlab.kernels.lstm_backward` on the fast path: ``(dx, dh0, dc0, grads)``."""
    dx, (dh0, dc0), (dWx, dWh, db, _) = sequence_backward(dy, (dhT, dcT), cache, need_dx)
    return dx, dh0, dc0, LSTMParams(dWx, dWh, db)


def rnn_forward(x, h0, params: RNNParams, act: str = "tanh", lengths=None,
                need_cache: bool = True):
    """:func:`lstmlab.kernels.rnn_forward` on the fast path: ``(y, hT, cache)``."""
    if act not in ACTIVATIONS:
        raise ValueError(f"act must be one of {ACTIVATIONS}, got {act!r}")
    y, (hT,), cache = sequence_forward("rnn", x, (h0,), *params, lengths, need_cache, act=act)
    return y, hT, cache


def rnn_backward(dy, dhT, cache: FastCache, need_dx: bool = True):
    """:func:`lstmlab.kernels.rnn_backward` on the fast path: ``(dx, dh0, grads)``."""
    dx, (dh0,), (dWx, dWh, db, _) = sequence_backward(dy, (dhT,), cache, need_dx)
    return dx, dh0, RNNParams(dWx, dWh, db)


def lstm_peephole_forward(x, h0, c0, params: LSTMPeepholeParams, lengths=None, clip=None,
                          input_forget: bool = False, need_cache: bool = True):
    """:func:`lstmlab.kernels.lstm_peephole.lstm_peephole_forward` on the fast path."""
    clip, input_forget = _check_options(clip, input_forget)
    Wx, Wh, b, P = params
    y, (hT, cT), cache = sequence_forward("peephole", x, (h0, c0), Wx, Wh, b, lengths,
                                          need_cache, P=P, clip=clip, input_forget=input_forget)
    return y, hT, cT, cache


def lstm_peephole_backward(dy, dhT, dcT, cache: FastCache, need_dx: bool = True):
    """:func:`lstmlab.kernels.lstm_peephole.lstm_peephole_backward` on the fast path."""
    dx, (dh0, dc0), (dWx, dWh, db, dP) = sequence_backward(dy, (dhT, dcT), cache, need_dx)
    return dx, dh0, dc0, LSTMPeepholeParams(dWx, dWh, db, dP)


# -- streaming ----------------------------------------------------------------------------------
STREAM_ROWS = 4  # a streaming step of up to this many rows runs with the weights as stored


def stream_step(cell: str, specs: tuple, Wxs: tuple, Whs: tuple, x: np.ndarray,
                states: tuple) -> tuple:
    """One step of all layers of a unidirectional stack for ``x (B, D)``, B <= STREAM_ROWS,
    from ``states`` (each (L, B, H), h first); returns the new states. ``specs``, ``Wxs``,
    ``Whs``: per layer, of the exact dtype and C-contiguous (the layers keep them so)."""
    out = tuple(np.empty_like(s) for s in states)
    code = _compiled()["loops"].stream_step(specs, Wxs, Whs, x, states, out)
    if code:
        names = ("x_t",) + (("state",) if cell == "rnn" else ("state[0] (h)", "state[1] (c)"))
        raise ValueError(f"{names[code - 1]} contains NaN or inf")
    return out


def stream_weights(cell: str, layers: list, H: int, dtype, options: dict) -> tuple:
    """``(specs, Wxs, Whs)`` for :func:`stream_step` from each layer's parameters
    ``(Wx, Wh, b[, P])``; the arrays are the layer's own (nothing is copied)."""
    specs = tuple(_spec(cell, p[2], H, dtype, dict(options, P=p[3] if len(p) > 3 else None))
                  for p in layers)
    return (specs, tuple(_array(p[0], dtype) for p in layers),
            tuple(_array(p[1], dtype) for p in layers))
