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


# -- threads ------------------------------------------------------------------------------------
_threads = [len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")  # usable cores
            else os.cpu_count() or 1]


def set_num_threads(n: int) -> None:
    """Use at most ``n`` threads per call of the fast kernels (default: the cores this
    process may use). Results are the same bits for every ``n``. Any positive count is
    taken, as ``torch.set_num_threads`` takes it: above the cores it only oversubscribes
    them, and a call's team is never larger than its work pays for (:func:`plan`: 20 MFLOP
    a thread, a row group at least one row, a unit group two panels of every gate)."""
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


def plan(T: int, B: int, D: int, H: int, G: int, dtype, whole_rows: bool = False
         ) -> tuple[int, int]:
    """``(nb, nu)``: the row groups and unit groups of a call's team. Row groups never wait for
    each other, but each reads all of Wh at every step; unit groups read their part of it and
    meet once per step. So rows when every thread gets enough of them; otherwise as many unit
    groups as keep a thread's part of Wh in its cache, rows for the other threads, and units
    again for the threads that rows cannot use. ``whole_rows``: row groups only, for a step
    that needs all of a row's units (layer norm, a projection)."""
    flops = 2.0 * T * B * (D + H) * G * H
    P = int(min(get_num_threads(), max(1.0, flops // MIN_THREAD_FLOPS)))
    if whole_rows:
        return max(1, min(P, B)), 1
    most_nu = max(1, -(-H // (64 // np.dtype(dtype).itemsize)) // MIN_GROUP_PANELS)
    nu = 1 if B >= MIN_GROUP_ROWS * P else min(
        P, most_nu, -(-G * H * H * np.dtype(dtype).itemsize // CACHE_BYTES))
    nb = max(1, min(P // nu, B))
    return nb, max(nu, min(P // nb, most_nu))


ALONE_SECONDS = 2.0  # how long calls run alone after a team that waited on idle teammates


class _Pool:
    """Worker threads for teams (a team's thread 0 is its caller); one team at a time."""

    def __init__(self):
        self.busy, self.executor, self.size = threading.Lock(), None, 0  # busy: a team runs
        self.alone_until = 0.0  # time.monotonic() before which calls run alone (see _run)

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


def _run(fn: Callable, args: tuple, nb: int, nu: int, loops, steps: int) -> None:
    """``fn(*args, tid, nb, nu, sync)`` for every thread of an nb·nu team (the caller is thread
    0) over ``steps`` time steps. While another thread's team runs, this call runs alone (nb =
    nu = 1): same bits. So do the calls of the next ``ALONE_SECONDS`` after a team whose unit
    groups had to yield the core while waiting for a step at more than one step in eight:
    its teammates were not running (other work holds the cores), and a team that meets at
    every step then runs several times slower than one thread."""
    pool = _pool[0]
    if nb * nu > 1 and (time.monotonic() < pool.alone_until
                        or not pool.busy.acquire(blocking=False)):
        nb = nu = 1
    sync = np.zeros(loops.sync_words(nb), np.int64)
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

        others, errors = [], []
        try:  # (an exception while the team starts, e.g. Ctrl-C, must release those started)
            for tid in range(1, nb * nu):
                others.append(pool.workers(nb * nu - 1).submit(member, tid))
            member(0)
        except BaseException as e:
            sync[0] = 1
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
        if sync[loops.YIELDED] > max(2, steps // 8):
            pool.alone_until = time.monotonic() + ALONE_SECONDS
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
    Wr: np.ndarray  # (H, P) the LSTM's projection, or (0, 1): none


def _regularisation(masks, B: int, H: int, dtype) -> tuple:
    """The LSTM spec's ``(hmask, keep)`` from the reference kernel's ``LSTMMasks`` (or None):
    m as (B, H), zoneout's d^h and d^C side by side as (Tk, B, 2H), empty when absent."""
    hmask, keep = np.empty((0, 0), dtype), np.empty((0, 0, 0), dtype)
    if masks is not None and masks.h is not None:
        hmask = np.ascontiguousarray(masks.h, dtype)
    if masks is not None and masks.keep_h is not None:
        keep = np.ascontiguousarray(  # C order whatever B: one compiled kernel for every call
            np.concatenate([np.broadcast_to(d, (len(d), B, H)).astype(dtype)
                            for d in (masks.keep_h, masks.keep_c)], axis=2))
    return hmask, keep


def _spec(cell: str, b, H: int, dtype, options: dict, B: int = 0):
    C = _compiled().cells
    G = 1 if cell == "rnn" else 4
    b = np.zeros(G * H, dtype) if b is None else np.ascontiguousarray(b, dtype)
    if cell == "rnn":
        return C.RNNSpec(b, options.get("act", "tanh") == "relu")
    if cell == "gru":
        return C.GRUSpec(b)
    if cell == "lstm_ln":
        return C.LNLSTMSpec(b, *(np.ascontiguousarray(a, dtype) for a in options["ln"]))
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
    h = new((T + 1, B, states0[0].shape[-1]), dtype)  # P wide with a projection
    h[0] = states0[0]
    if cell == "rnn":
        return C.RNNTape(z, h)
    if cell == "gru":
        return C.GRUTape(z, h)
    c = new((T + 1 if training else 2, B, H), dtype)
    c[0] = states0[1]
    tc = new((T if training else 1, B, H), dtype)
    if cell == "lstm_ln":  # the norms are zero on padding (their gains' gradients sum them)
        xn, hn, cn = (np.zeros((T if training else 1, B, n), dtype) for n in (4 * H, 4 * H, H))
        return C.LNLSTMTape(z, h, c, tc, xn, hn, cn, new((T if training else 1, B, 3), dtype),
                            new((B, C.LANES), dtype))
    mask = np.ones((T if training else 1, B, 4 * H) if spec.clip else (1, 1, 1), dtype)
    m = h if h.shape[2] == H else new((T + 1 if training else 2, B, H), dtype)
    hm = new((T + 1, B, H), dtype) if spec.hmask.shape[0] else np.empty((0, 0, 0), dtype)
    if spec.hmask.shape[0]:
        hm[0] = spec.hmask * h[0]
    return C.LSTMTape(z, h, c, tc, mask, m, hm)


def _gru_layout(a, H: int, back: bool = False):
    """The GRU's ``Wx (D, 3H)`` (blocks r, z, n) or ``b (4H,)`` (b_r, b_z, b_in, b_hn) in the
    kernels' order: n first (``_cells``); ``back``: the other way. None stays None."""
    if a is None:
        return None
    cut = (H if back else 2 * H)
    return np.concatenate([a[..., cut:3 * H], a[..., :cut], a[..., 3 * H:]], axis=-1)


def _single(cell: str) -> bool:
    """True for the cells whose only state is h (the RNN and the GRU)."""
    return cell in ("rnn", "gru")


# -- whole sequences ----------------------------------------------------------------------------
def sequence_forward(cell: str, x, states0: tuple, Wx, Wh, b, lengths=None,
                     need_cache: bool = True, **options):
    """Run ``cell`` ("lstm", "rnn" or "gru") over ``x (T, B, D)`` from ``states0`` (h_0, and
    c_0 for the LSTM, each (B, H)). Options: ``act`` ("tanh", "relu") for the RNN; ``P`` (3H,)
    peepholes, ``clip`` and ``input_forget`` for the LSTM (the peephole variant), ``masks``
    its recurrent dropout and zoneout (``lstm.LSTMMasks``, as the reference takes them);
    ``ln``, the gains and bias ``(g_x, g_h, g_c, b_c)`` of "lstm_ln", the layer-norm LSTM. Returns
    ``(y, finals, cache)``: ``y (T, B, H)`` (0 past a sequence's length; a read-only view when
    nothing is padded), the final states, and a :class:`FastCache` (None with
    ``need_cache=False``). ``Wr (H, P)``: the LSTM's projection h_t = m_t·Wr (h, its
    initial state and y P wide)."""
    mods = _compiled()
    x = np.ascontiguousarray(x, x.dtype)
    dtype = x.dtype
    Wx, Wh = np.ascontiguousarray(Wx, dtype), np.ascontiguousarray(Wh, dtype)
    if cell == "gru":
        Wx, b = _gru_layout(Wx, Wh.shape[0]), _gru_layout(b, Wh.shape[0])
    T, B, D = x.shape
    Wr = options.get("Wr")
    Wr = np.empty((0, 1), dtype) if Wr is None else np.ascontiguousarray(Wr, dtype)
    H = Wr.shape[0] or Wh.shape[0]
    G = Wh.shape[1] // H
    spec = _spec(cell, b, H, dtype, options, B)
    new = mods.product.empty_lines
    tape = _tape(cell, spec, T, B, H, dtype, states0, need_cache, new)
    lens = np.full(B, T, np.int64) if lengths is None else np.array(lengths, np.int64)
    nr = mods.product.panel_width(dtype)
    Q = -(-H // nr)  # panels per block
    m = tape.m if cell == "lstm" else tape.h
    args = (spec, tape, new((B, tape.z.shape[2]), dtype), x, lens, Wx, Wh,
            new((Wx.shape[1] // H * Q, D, nr), dtype), new((G * Q, Wh.shape[0], nr), dtype), m, Wr,
            new((-(-Wr.shape[1] // nr) if len(Wr) else 0, H, nr), dtype))
    whole_rows = cell == "lstm_ln" or len(Wr) > 0
    _run(mods.loops.forward, args, *plan(T, B, D, H, G, dtype, whole_rows), mods.loops, T)
    finals = tuple(s[T % len(s)].copy() for s in ((tape.h,) if _single(cell) else tape[1:3]))
    y = tape.h[1:]
    if (lens < T).any():
        y = y * (np.arange(T)[:, None] < lens[None, :]).astype(dtype)[:, :, None]
    else:
        y.flags.writeable = False
    cache = FastCache(cell, spec, tape, x, Wx, Wh, b is not None, options.get("P") is not None,
                      lens, Wr) if need_cache else None
    return y, finals, cache


def sequence_backward(dy, dstates: tuple, cache: FastCache, need_dx: bool = True):
    """Backpropagation through time for :func:`sequence_forward`'s cache. ``dy (T, B, H)`` or
    None; ``dstates`` the gradients on the final states (each may be None). Returns ``(dx,
    dstates0, (dWx, dWh, db, dP))``: ``dx`` None with ``need_dx=False``, ``db`` None without
    bias, ``dP`` the peepholes' gradient (3H,) or None, or for "lstm_ln" the gradients of
    ``(g_x, g_h, g_c, b_c)``; with a projection a fifth, dWr."""
    mods = _compiled()
    C, tape, x, Wr = mods.cells, cache.tape, cache.x, cache.Wr
    T, B, D = x.shape
    Hh, dtype = tape.h.shape[2], x.dtype  # h's width: P with a projection, else H
    H = Wr.shape[0] or Hh
    GZ, GX = tape.z.shape[2], cache.Wx.shape[1]  # dz's columns, Wx's (a GRU's: 4H, 3H)
    carried = [np.zeros((B, w), dtype) if d is None else np.array(d, dtype=dtype, order="C")
               for d, w in zip(dstates, (Hh, H))]
    new = mods.product.empty_lines
    dz = new((T, B, GZ), dtype)
    ln = cache.cell == "lstm_ln"
    if cache.cell == "lstm":  # dm: dh itself without a projection; keep: zoneout's room
        keep = cache.spec.keep
        grad = C.LSTMGrad(dz, *carried, carried[0] if Hh == H else new((B, H), dtype),
                          np.empty((B, 2 * H) if keep.shape[0] else (0, 0), dtype))
    elif ln:
        grad = C.LNLSTMGrad(dz, *carried, new((T, B, 4 * H), dtype), new((T, B, 4 * H), dtype),
                            new((T, B, H), dtype))
    else:
        grad = {"rnn": C.RNNGrad, "gru": C.GRUGrad}[cache.cell](dz, *carried)
    dWx, dWh, db = new((D, GX), dtype), new(cache.Wh.shape, dtype), np.empty(GZ, dtype)
    dP = np.empty(10 * H if ln else 3 * H if cache.has_peepholes else 0, dtype)
    dx2 = new((T * B if need_dx else 0, D), dtype)
    nr = mods.product.panel_width(dtype)
    dWr, P = np.empty_like(Wr), Wr.shape[1] if len(Wr) else 0
    nb, nu = plan(T, B, D, H, cache.Wh.shape[1] // H, dtype, ln or P > 0)
    dy = np.empty((0, B, Hh), dtype) if dy is None else np.ascontiguousarray(dy, dtype)
    h_in = tape.hm if cache.cell == "lstm" and tape.hm.shape[0] else tape.h  # what met Wh
    x2, h2 = x.reshape(T * B, D), h_in[:T].reshape(T * B, Hh)
    m2 = (tape.m if cache.cell == "lstm" else tape.h)[1:].reshape(T * B, H)
    for rows in (x2, h2, m2):  # views: one type for the loops to take them as a tuple
        rows.flags.writeable = False
    args = (cache.spec, tape, grad, dy, x2, h2, cache.lengths, cache.Wx, cache.Wh,
            new((-(-D // nr) if need_dx else 0, GX, nr), dtype),
            new((-(-Hh // nr), cache.Wh.shape[1], nr), dtype), dWx, dWh, db, dP, dx2, m2, Wr,
            new((-(-H // nr) if P else 0, P, nr), dtype), new((T if P else 0, B, P or 1), dtype),
            grad.dm if cache.cell == "lstm" else grad.dh, dWr)
    _run(mods.loops.backward, args, nb, nu, mods.loops, T)
    if cache.cell == "lstm" and cache.spec.hmask.shape[0]:
        grad.dh[...] *= cache.spec.hmask  # dL/dh_0 is all through the first product
    if cache.cell == "gru":  # back to the layer's order of blocks
        dWx, db = _gru_layout(dWx, H, back=True), _gru_layout(db, H, back=True)
    if ln:
        dP = tuple(np.split(dP, [4 * H, 8 * H, 9 * H]))
    return (dx2.reshape(T, B, D) if need_dx else None, tuple(grad[1:len(dstates) + 1]),
            (dWx, dWh, db if cache.has_bias else None, dP if cache.has_peepholes or ln else None)
            + ((dWr,) if P else ()))


# -- streaming ------------------------------------------------------------------------------------
STREAM_ROWS = 4  # a streaming step of up to this many rows multiplies by the weights as stored


def stream_weights(cell: str, layers: list, H: int, dtype, options: dict) -> tuple:
    """``(specs, Wxs, Whs)`` for :func:`stream_step` from each layer's parameters and options
    ``(Wx, Wh, b, layer_options)`` (the peepholes ``P``, the layer norm's ``ln``); the arrays
    are the layer's own, but a GRU's Wx and b in the kernels' order."""
    if cell == "gru":
        layers = [(_gru_layout(Wx, H), Wh, _gru_layout(b, H), o) for Wx, Wh, b, o in layers]
    specs = tuple(_spec(cell, p[2], H, dtype, dict(options, **p[3]), STREAM_ROWS)
                  for p in layers)
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
