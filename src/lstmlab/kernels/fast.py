"""The fast path: the NumPy reference kernels' results, to round-off, on compiled loops.

Dimensions: T time, B batch, D input features, H hidden units, G gate blocks, L layers.

Each cell's step is written once (``_cells.py``); one set of time loops (``_loops.py``)
serves every cell, in training, inference, ragged batches and streaming; every product runs
on lstmlab's own kernel (``_product.py``), never on BLAS. A call runs on a team of up to
:func:`get_num_threads` threads and gives the same bits for any team. numba (a dependency) is
imported on the first fast call (:func:`available`).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import functools
import hashlib
import os
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Callable, NamedTuple

import numpy as np


@functools.cache
def _modules():
    """The compiled kernels' modules, or None without numba or with ``LSTMLAB_FAST=0``."""
    if os.environ.get("LSTMLAB_FAST", "1") == "0":
        return None
    try:
        from . import _cells, _loops, _product
    except ImportError:
        return None
    _drop_stale_cache(_loops)
    return SimpleNamespace(cells=_cells, loops=_loops, product=_product)


def available() -> bool:
    """True when the compiled kernels can be used: numba imports and ``LSTMLAB_FAST`` is not
    ``0`` (the one switch: everything on the NumPy reference). Each kernel compiles on its
    first call for a dtype and is cached on disk."""
    return _modules() is not None


def _compiled() -> SimpleNamespace:
    if not available():
        raise RuntimeError("the fast kernels need numba (pip install numba); the reference "
                           "kernels in lstmlab.kernels work without it")
    return _modules()


def _sources_digest() -> str:
    sources = [Path(__file__).with_name(f"{m}.py") for m in ("_product", "_cells", "_loops")]
    return hashlib.sha256(b"".join(f.read_bytes() for f in sources)).hexdigest()


def _drop_stale_cache(loops) -> None:
    """numba keys its disk cache on a function's own file, so the compiled loops would outlive
    an edit of the cells or the product they inline: a stamp of the three sources drops them."""
    digest = _sources_digest()
    try:
        stamp = Path(loops.forward.stats.cache_path) / "lstmlab-kernels.stamp"
        if not stamp.exists() or stamp.read_text() != digest:
            for f in stamp.parent.glob("_loops.*.nb[ci]"):
                f.unlink()
            stamp.write_text(digest)
    except (OSError, AttributeError):  # no cache folder, or not writable: numba recompiles
        pass


# -- the first compile ----------------------------------------------------------------------------
# What a first compile of one command's kernels takes on the 2-core development machine (a
# 2-layer float32 char-LSTM's training and evaluation kernels: 24 s, the command is in
# docs/speed.md): the estimate until this cache folder has timed a compile of its own.
FIRST_COMPILE_SECONDS = 25
_RECORD = "lstmlab-compile.json"  # in numba's cache folder: how long the last compile took


def _cache_misses(loops) -> int:
    """Compiles begun so far of the time loops: numba counts a call its disk cache misses
    just before it compiles."""
    while True:
        try:
            return sum(sum(v.stats.cache_misses.values()) for v in list(vars(loops).values())
                       if hasattr(v, "stats") and hasattr(v.stats, "cache_misses"))
        except RuntimeError:  # a counter that another thread's compile was adding to
            continue


def _record_path(loops) -> Path:
    return Path(loops.forward.stats.cache_path) / _RECORD


@contextlib.contextmanager
def first_compile(log: Callable[[str], None]):
    """Around the first calls of a command's kernels: as soon as one of them compiles rather
    than loading from numba's disk cache, ``log("compiling kernels, once: ~N s")``, and after
    the block how long it took (N: the last compile timed in this cache folder, or
    ``FIRST_COMPILE_SECONDS``). Loading from the cache says nothing. Without numba (or with
    ``LSTMLAB_FAST=0``) it does nothing."""
    mods = _modules()
    if mods is None:
        yield
        return
    import json

    try:
        last = json.loads(_record_path(mods.loops).read_text(encoding="utf-8")).get("seconds")
    except (OSError, ValueError, AttributeError):
        last = None
    estimate = last if isinstance(last, (int, float)) and last > 0 else FIRST_COMPILE_SECONDS
    before = _cache_misses(mods.loops)
    done, said = threading.Event(), []

    def watch():  # polls numba's count; a compile takes seconds, a poll microseconds
        while not done.wait(0.2):
            if _cache_misses(mods.loops) > before:
                said.append(True)
                log(f"compiling kernels, once: ~{round(estimate)} s")
                return

    watcher = threading.Thread(target=watch, name="lstmlab-compile-notice", daemon=True)
    t0 = time.perf_counter()
    watcher.start()
    try:
        yield
    finally:
        done.set()
        watcher.join()
    seconds = time.perf_counter() - t0
    if _cache_misses(mods.loops) == before:
        return
    if said:
        log(f"kernels compiled in {seconds:.0f} s (cached on disk for the next runs)")
    try:
        _record_path(mods.loops).write_text(json.dumps({"seconds": round(seconds, 1)}),
                                            encoding="utf-8")
    except (OSError, AttributeError):  # a read-only cache folder: the estimate stays the default
        pass


# -- threads ------------------------------------------------------------------------------------
_threads = [len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")  # usable cores
            else os.cpu_count() or 1]


def set_num_threads(n: int) -> None:
    """Use at most ``n`` threads per call of the fast kernels (default: the cores this
    process may use). Results are the same bits for every ``n``."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"set_num_threads needs a positive integer, got {n!r}")
    _threads[0] = int(n)


def get_num_threads() -> int:
    """The most threads a call of the fast kernels uses."""
    return _threads[0]


MIN_THREAD_FLOPS = 2e7  # a call's arithmetic per thread of its team (a team starts in ~50 µs)
MIN_GROUP_ROWS = 8  # rows that keep a row group busy with arithmetic rather than reading Wh
CACHE_BYTES = 1 << 20  # a thread's share of Wh, kept in its core's cache (most L2s or less)
MIN_GROUP_PANELS = 2  # panels of every gate in a unit group


def plan(T: int, B: int, D: int, H: int, G: int, dtype) -> tuple[int, int]:
    """``(nb, nu)``: the row groups and unit groups of a call's team. Row groups never wait for
    each other, but each reads all of Wh at every step; unit groups read their part of it and
    meet once per step. So rows when every thread gets enough of them; otherwise as many unit
    groups as keep a thread's part of Wh in its cache, rows for the other threads, and units
    again for the threads that rows cannot use."""
    flops = 2.0 * T * B * (D + H) * G * H
    P = int(min(get_num_threads(), max(1.0, flops // MIN_THREAD_FLOPS)))
    most_nu = max(1, -(-H // (64 // np.dtype(dtype).itemsize)) // MIN_GROUP_PANELS)
    nu = 1 if B >= MIN_GROUP_ROWS * P else min(
        P, most_nu, -(-G * H * H * np.dtype(dtype).itemsize // CACHE_BYTES))
    nb = max(1, min(P // nu, B))
    return nb, max(nu, min(P // nb, most_nu))


class _Pool:
    """Worker threads for teams (a team's thread 0 is its caller); one team at a time."""

    def __init__(self):
        self.busy, self.executor, self.size = threading.Lock(), None, 0  # busy: a team runs

    def workers(self, n: int) -> concurrent.futures.ThreadPoolExecutor:
        if self.size < n:  # a larger team: a larger executor (the old one's threads exit)
            if self.executor is not None:
                self.executor.shutdown(wait=False)
            self.executor, self.size = concurrent.futures.ThreadPoolExecutor(n, "lstmlab"), n
        return self.executor


_pool = [_Pool()]


def _forget_pool() -> None:  # a forked child has none of its parent's threads, nor their lock
    _pool[0] = _Pool()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool)


def _run(fn: Callable, args: tuple, nb: int, nu: int, sync_words: Callable) -> None:
    """``fn(*args, tid, nb, nu, sync)`` for every thread of an nb·nu team (the caller is thread
    0). While another thread's team runs, this call runs alone (nb = nu = 1): same bits."""
    pool = _pool[0]
    if nb * nu > 1 and not pool.busy.acquire(blocking=False):
        nb = nu = 1
    sync = np.zeros(sync_words(nb), np.int64)
    if nb * nu == 1:
        fn(*args, 0, 1, 1, sync)
        return
    try:
        def member(tid):
            try:
                fn(*args, tid, nb, nu, sync)
            except BaseException:
                sync[0] = 1  # _loops.ABORT: the others leave their waits
                raise

        others = [pool.workers(nb * nu - 1).submit(member, tid) for tid in range(1, nb * nu)]
        errors = []
        try:
            member(0)
        except BaseException as e:
            errors.append(e)
        for f in others:  # they use the caller's arrays: wait for every one, whatever comes
            while True:
                try:
                    if f.exception() is not None:
                        errors.append(f.exception())
                    break
                except BaseException as e:  # e.g. Ctrl-C: make the team stop, then raise it
                    sync[0] = 1
                    errors.append(e)
        if errors:
            raise errors[0]
    finally:
        pool.busy.release()


# -- the cells' data -------------------------------------------------------------------------
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


class _Stagger:
    """Allocates a call's arrays 448 bytes (7 cache lines) apart within a 4 KiB page, past the
    input's own offset. A core matches loads to earlier stores by the address's low 12 bits
    first; arrays on fresh pages share them, and a loop that reads one while writing another
    at the same rows stalls on false matches ("4K aliasing"), at up to half the speed."""

    def __init__(self, like: np.ndarray):
        self.at = like.ctypes.data % 4096 + 64

    def empty(self, shape, dtype) -> np.ndarray:
        dtype = np.dtype(dtype)
        n = int(np.prod(shape))
        buf = np.empty(n + 4096 // dtype.itemsize, dtype)
        start = (self.at - buf.ctypes.data) % 4096 // dtype.itemsize
        self.at += 448
        return buf[start:start + n].reshape(shape)


def _regularisation(masks, B: int, H: int, dtype) -> tuple:
    """The LSTM spec's ``(hmask, keep)`` from the reference kernel's ``LSTMMasks`` (or None):
    m as (B, H), zoneout's d^h and d^C side by side as (Tk, B, 2H), empty when absent."""
    hmask, keep = np.empty((0, 0), dtype), np.empty((0, 0, 0), dtype)
    if masks is not None and masks.h is not None:
        hmask = np.ascontiguousarray(masks.h, dtype)
    if masks is not None and masks.keep_h is not None:
        keep = np.concatenate([np.broadcast_to(d, (len(d), B, H)).astype(dtype)
                               for d in (masks.keep_h, masks.keep_c)], axis=2)
    return hmask, keep


def _spec(cell: str, b, H: int, dtype, options: dict, B: int = 0):
    C = _compiled().cells
    G = 1 if cell == "rnn" else 4
    b = np.zeros(G * H, dtype) if b is None else np.ascontiguousarray(b, dtype)
    if cell == "rnn":
        return C.RNNSpec(b, options.get("act", "tanh") == "relu")
    if cell == "gru":
        return C.GRUSpec(b, np.int64(options.get("hn", 3)))
    P, clip, coupled = options.get("P"), options.get("clip"), bool(options.get("input_forget"))
    onnx = P is not None or clip is not None or coupled
    return C.LSTMSpec(b, np.zeros(3 * H, dtype) if P is None else np.ascontiguousarray(P, dtype),
                      np.dtype(dtype).type(clip or 0.0), coupled, onnx,
                      *_regularisation(options.get("masks"), B, H, dtype))


def _tape(cell: str, spec, T: int, B: int, H: int, dtype, states0, training: bool, new):
    """The arrays a forward writes: the whole history in training, rings in inference."""
    C = _compiled().cells
    z = new((T if training else min(T, max(1, _modules().loops.PROJECT_ROWS // B)), B,
             (1 if cell == "rnn" else 4) * H), dtype)
    h = new((T + 1, B, H), dtype)
    h[0] = states0[0]
    if cell == "rnn":
        return C.RNNTape(z, h)
    if cell == "gru":
        return C.GRUTape(z, h)
    c = new((T + 1 if training else 2, B, H), dtype)
    c[0] = states0[1]
    mask = np.ones((T if training else 1, B, 4 * H) if spec.clip else (1, 1, 1), dtype)
    hm = new((T + 1, B, H), dtype) if spec.hmask.shape[0] else np.empty((0, 0, 0), dtype)
    if spec.hmask.shape[0]:
        hm[0] = spec.hmask * h[0]
    return C.LSTMTape(z, h, c, new((T if training else 1, B, H), dtype), mask, hm)


def _gru_blocks(Wx, Wh):
    """The GRU's ``Wx (D, 3H)``, ``Wh (H, 3H)`` (blocks r, z, n) as the four blocks its
    compiled cell runs on: ``[W_r, W_z, W_in, 0]`` and ``[W_r, W_z, 0, W_hn]`` (``_cells``)."""
    H = Wh.shape[0]
    wx = np.zeros((Wx.shape[0], 4 * H), Wx.dtype)
    wh = np.zeros((H, 4 * H), Wh.dtype)
    wx[:, :3 * H] = Wx
    wh[:, :2 * H], wh[:, 3 * H:] = Wh[:, :2 * H], Wh[:, 2 * H:]
    return wx, wh


def _single(cell: str) -> bool:
    """True for the cells whose only state is h (the RNN and the GRU)."""
    return cell in ("rnn", "gru")


# -- whole sequences ----------------------------------------------------------------------------
def sequence_forward(cell: str, x, states0: tuple, Wx, Wh, b, lengths=None,
                     need_cache: bool = True, **options):
    """Run ``cell`` ("lstm", "rnn" or "gru") over ``x (T, B, D)`` from ``states0`` (h_0, and
    c_0 for the LSTM, each (B, H)). Options: ``act`` ("tanh", "relu") for the RNN; ``P`` (3H,)
    peepholes, ``clip`` and ``input_forget`` for the LSTM (the peephole variant), ``masks``
    its recurrent dropout and zoneout (``lstm.LSTMMasks``, as the reference takes them). Returns
    ``(y, finals, cache)``: ``y (T, B, H)`` (0 past a sequence's length; a read-only view when
    nothing is padded), the final states, and a :class:`FastCache` (None with
    ``need_cache=False``)."""
    mods = _compiled()
    x = np.ascontiguousarray(x, x.dtype)
    dtype = x.dtype
    Wx, Wh = np.ascontiguousarray(Wx, dtype), np.ascontiguousarray(Wh, dtype)
    if cell == "gru":
        Wx, Wh = _gru_blocks(Wx, Wh)
    T, B, D = x.shape
    H, G = Wh.shape[0], Wh.shape[1] // Wh.shape[0]
    spec = _spec(cell, b, H, dtype, options, B)
    new = _Stagger(x).empty
    tape = _tape(cell, spec, T, B, H, dtype, states0, need_cache, new)
    lens = np.full(B, T, np.int64) if lengths is None else np.array(lengths, np.int64)
    nr = mods.product.panel_width(dtype)
    Q = G * -(-H // nr)
    args = (spec, tape, new((B, G * H), dtype), x, lens, Wx, Wh, new((Q, D, nr), dtype),
            new((Q, H, nr), dtype))
    _run(mods.loops.forward, args, *plan(T, B, D, H, G, dtype), mods.loops.sync_words)
    finals = tuple(s[T % len(s)].copy() for s in ((tape.h,) if _single(cell) else tape[1:3]))
    y = tape.h[1:]
    if (lens < T).any():
        y = y * (np.arange(T)[:, None] < lens[None, :]).astype(dtype)[:, :, None]
    else:
        y.flags.writeable = False
    cache = FastCache(cell, spec, tape, x, Wx, Wh, b is not None, options.get("P") is not None,
                      lens) if need_cache else None
    return y, finals, cache


def sequence_backward(dy, dstates: tuple, cache: FastCache, need_dx: bool = True):
    """Backpropagation through time for :func:`sequence_forward`'s cache. ``dy (T, B, H)`` or
    None; ``dstates`` the gradients on the final states (each may be None). Returns ``(dx,
    dstates0, (dWx, dWh, db, dP))``: ``dx`` None with ``need_dx=False``, ``db`` None without
    bias, ``dP`` the peepholes' gradient (3H,) or None."""
    mods = _compiled()
    C, tape, x = mods.cells, cache.tape, cache.x
    T, B, D = x.shape
    H, dtype = tape.h.shape[2], x.dtype
    G = cache.Wh.shape[1] // H
    carried = [np.zeros((B, H), dtype) if d is None else np.array(d, dtype=dtype, order="C")
               for d in dstates]
    new = _Stagger(x).empty
    dz = new((T, B, G * H), dtype)
    if cache.cell == "lstm":  # with zoneout's room for the state gradients' direct parts
        keep = cache.spec.keep
        carried.append(np.empty((B, 2 * H) if keep.shape[0] else (0, 0), dtype))
    grad = {"rnn": C.RNNGrad, "gru": C.GRUGrad}.get(cache.cell, C.LSTMGrad)(dz, *carried)
    dWx, dWh, db = np.empty((D, G * H), dtype), np.empty((H, G * H), dtype), np.empty(G * H, dtype)
    dP = np.empty(3 * H if cache.has_peepholes else 0, dtype)
    dx2 = new((T * B if need_dx else 0, D), dtype)
    nr = mods.product.panel_width(dtype)
    nb, nu = plan(T, B, D, H, G, dtype)
    dy = np.empty((0, B, H), dtype) if dy is None else np.ascontiguousarray(dy, dtype)
    h_in = tape.hm if cache.cell == "lstm" and tape.hm.shape[0] else tape.h  # what met Wh
    args = (cache.spec, tape, grad, dy,
            x.reshape(T * B, D), h_in[:T].reshape(T * B, H), cache.lengths, cache.Wx, cache.Wh,
            new((-(-D // nr) if need_dx else 0, G * H, nr), dtype),
            new((-(-H // nr), G * H, nr), dtype), dWx, dWh, db, dP, dx2)
    _run(mods.loops.backward, args, nb, nu, mods.loops.sync_words)
    if cache.cell == "lstm" and cache.spec.hmask.shape[0]:
        grad.dh[...] *= cache.spec.hmask  # dL/dh_0 is all through the first product
    if cache.cell == "gru":  # back from the four blocks: Wx's r, z, n; Wh's r, z, hn
        dWx, dWh = dWx[:, :3 * H], np.concatenate([dWh[:, :2 * H], dWh[:, 3 * H:]], axis=1)
    return (dx2.reshape(T, B, D) if need_dx else None, tuple(grad[1:1 + len(dstates)]),
            (dWx, dWh, db if cache.has_bias else None, dP if cache.has_peepholes else None))


# -- streaming ------------------------------------------------------------------------------------
STREAM_ROWS = 4  # a streaming step of up to this many rows multiplies by the weights as stored


def stream_weights(cell: str, layers: list, H: int, dtype, options: dict) -> tuple:
    """``(specs, Wxs, Whs)`` for :func:`stream_step` from each layer's parameters
    ``(Wx, Wh, b[, P])``; the arrays are the layer's own (nothing is copied: the GRU's step
    reads its three blocks as they are, ``_cells``)."""
    options = dict(options, hn=2) if cell == "gru" else options
    specs = tuple(_spec(cell, p[2], H, dtype, dict(options, P=p[3] if len(p) > 3 else None),
                        STREAM_ROWS) for p in layers)
    return (specs, tuple(np.ascontiguousarray(p[0], dtype) for p in layers),
            tuple(np.ascontiguousarray(p[1], dtype) for p in layers))


def stream_step(specs: tuple, Wxs: tuple, Whs: tuple, x: np.ndarray, states: tuple) -> tuple:
    """One step of all layers of a unidirectional stack for ``x (B, D)``, B <= STREAM_ROWS,
    from ``states`` (each (L, B, H), h first): the new states. ``specs``, ``Wxs``, ``Whs``
    from :func:`stream_weights`."""
    out = np.empty((len(states),) + states[0].shape, x.dtype)  # one allocation for all states
    code = _modules().loops.stream_step(specs, Wxs, Whs, x, states, out)
    if code:
        names = ("x_t",) + (("state",) if len(states) == 1 else ("state[0] (h)", "state[1] (c)"))
        raise ValueError(f"{names[code - 1]} contains NaN or inf")
    return tuple(out)
