"""Fast LSTM and RNN kernels: the reference kernels' contract, compiled time loops.

Dimensions: T time, B batch, D input features, H hidden units. Time-major: ``x (T, B, D)``.

Same functions, arguments, weight layout, cache and results as ``lstm.py`` / ``rnn.py`` (the
readable reference, which the docs' equation table points to); the differences are all in how
the work is scheduled:

* the LSTM's whole time loop is ONE compiled call (``_fast_numba.py``): per step the
  recurrent product ``h_{t-1}·Wh`` (``dz_t·Whᵀ`` in backward) through NumPy's own OpenBLAS,
  called from compiled code (:func:`gemm_address`), then the elementwise math of the step
  (four gates, cell, tanh(C), h) in one pass per row instead of about a dozen NumPy passes
  with temporaries; the same for the RNN. Without a usable BLAS address the time loop runs in
  Python, one BLAS call and one compiled call per step;
* the input projection and the weight gradients are one GEMM each over all T·B rows, as in
  the reference, and the input gradient's GEMM is skipped when not asked for (``need_dx``);
* where the recurrent product runs on one thread anyway (split batch, one-threaded BLAS) and
  has 5–32 rows, the compiled loop does it with its own kernel on weights packed once per
  sequence (:func:`packed_weights`);
* for H >= 256 and B <= 64 (:func:`pair_shape`), and the cores otherwise idle (OpenBLAS's
  busy-waiting workers ended first where that is safe), a sequence runs on two threads, each
  owning half of the hidden units, meeting at a barrier after every step
  (:func:`unit_halves`), each thread's share of the recurrent product done by the packed
  kernel;
* elsewhere for B >= 32 and H >= 128 (:func:`pipe_shape`), the LSTM's backward is a
  pipeline on two threads (:func:`pipe_backward`): one runs the recurrence with the packed
  product, the other computes ``dx`` and ``dWh`` chunk by chunk behind it, without a barrier
  per step;
* a streaming step for B <= :data:`STREAM_ROWS` is one compiled call, products included;
  from H >= 256 the LSTM's runs on two threads, the caller's and a helper that waits for
  steps in compiled code (:func:`stream_pair`), each reading half of the weights;
* the big arrays of a step (gate cache and its gradient, h, the input projection) come from
  a pool (:data:`buffers`, ``_pool.py``) that hands a buffer out again once nothing
  references it: glibc maps blocks of 32 MiB or more fresh on every allocation, and the
  first write to fresh memory pays a page fault per page (``LSTMLAB_POOL=0``: no pool);
* with ``need_cache=False`` the forward keeps nothing for backward (inference): two cell
  state rows instead of T+1, no tanh(C) or gate history, the input projection computed a
  chunk of steps at a time into a buffer of at most 16 MiB; it returns ``cache=None``;
* the batch can be split across two threads, each running the whole recurrence on its half
  with single-threaded BLAS (``threads=2``; see :func:`split_batch`); an inference of
  >= 128 rows does that by default (:func:`infer_split`).

The caches are the reference's ``LSTMCache`` / ``RNNCache``, so a fast forward can be
differentiated by either backward and vice versa.

numba is optional. :func:`available` says whether it can be used; nothing here imports it
until the first fast call, so ``import lstmlab`` stays light. ``LSTMLAB_FAST=0`` in the
environment disables the fast path.
"""

from __future__ import annotations

import functools
import os
import threading
import time
from typing import Callable, NamedTuple

import numpy as np

from ._common import STREAM_CTL_WORDS, STREAM_OFF, STREAM_STATE, STREAM_STOP, step_masks
from ._pool import BufferPool
from .lstm import LSTMCache, LSTMParams
from .rnn import ACTIVATIONS, RNNCache, RNNParams


class Recompute(NamedTuple):
    """Stands in for the cache of a forward run with ``need_cache=False`` (inference).

    A backward that receives it calls ``forward()``, which runs the same forward again from
    the same inputs, parameters and initial state, this time keeping the cache, and returns
    that cache. The inputs and parameters are held by reference, as a cache holds them.
    """

    forward: Callable[[], object]


_state = {"checked": False, "ok": False, "mod": None}
_lock = threading.Lock()

# The big arrays of a training step (the gate cache, its gradient, h, the input projection,
# dx) come from here and are reused by a later step once nothing references them (_pool.py).
# LSTMLAB_POOL=0 in the environment at import: nothing is pooled (plain np.empty throughout).
buffers = BufferPool()
if os.environ.get("LSTMLAB_POOL", "1") == "0":
    buffers.min_bytes = 1 << 62


def available() -> bool:
    """True when the compiled kernels can be used: numba imports and ``LSTMLAB_FAST`` is not 0.

    The answer is computed once (it imports numba, which takes a moment); compiling happens
    later, on the first call of each kernel for each dtype, and is cached on disk.
    """
    if not _state["checked"]:
        with _lock:
            if not _state["checked"]:
                if os.environ.get("LSTMLAB_FAST", "1") == "0":
                    _state["ok"] = False
                else:
                    try:
                        from . import _fast_numba
                        _state["mod"], _state["ok"] = _fast_numba, True
                    except Exception:  # numba missing or broken: the reference path serves
                        _state["ok"] = False
                _state["checked"] = True
    return _state["ok"]


def kernels():
    """The compiled kernels (module ``_fast_numba``), for callers that already hold arguments
    of the exact kind they are compiled for; an error when :func:`available` is False.

    The layers' streaming lane calls ``kernels().lstm_stream_step`` (or
    ``lstm_stream_step_two``) directly: its arguments are
    the layer's own weights and arrays it has just checked, so the normalisation
    :func:`lstm_step` does (~4 µs at B = 1) would be wasted."""
    return _nb()


def _nb():
    if _state["ok"]:
        return _state["mod"]
    if not available():
        raise RuntimeError("the fast kernels need numba (pip install numba); "
                           "use the reference kernels in lstmlab.kernels instead")
    return _state["mod"]


def _lengths_array(lengths, active, T: int, B: int) -> np.ndarray:
    """``(B,)`` int64 lengths; all T when there is no padding."""
    if active is not None:
        return active[:, :, 0].sum(axis=0).astype(np.int64)
    if lengths is not None:
        return np.array(lengths, np.int64)  # a fresh writeable copy (see _arg)
    return np.full(B, T, np.int64)


_ONES = np.ones(256, np.int64)  # never written (a read-only flag would be one more numba type)


def _ones(B: int) -> np.ndarray:
    """``(B,)`` lengths of one step (a shared array for the usual small B)."""
    return _ONES[:B] if B <= _ONES.size else np.ones(B, np.int64)


_ZERO_BIAS: dict = {}  # (n, dtype) -> zeros, for layers without bias (never written)


def _bias(b, n: int, dtype) -> np.ndarray:
    return bias_or_zeros(None if b is None else _arg(b, dtype), n, dtype)


def bias_or_zeros(b, n: int, dtype) -> np.ndarray:
    """``b``, or a shared ``(n,)`` zero vector of ``dtype`` when ``b`` is None (never written)."""
    if b is not None:
        return b
    key = (n, np.dtype(dtype))
    z = _ZERO_BIAS.get(key)
    if z is None:
        z = _ZERO_BIAS[key] = np.zeros(n, dtype)
    return z


def _arg(a, dtype) -> np.ndarray:
    """``a`` as a C-contiguous, writeable array of ``dtype`` (copied only when it is not): the
    compiled kernels are specialised for exactly that, so nothing else triggers a recompile."""
    a = np.ascontiguousarray(a, dtype)
    return a if a.flags.writeable else a.copy()


_GEMM_SYMBOLS = {np.dtype(np.float32): "scipy_cblas_sgemm64_",
                 np.dtype(np.float64): "scipy_cblas_dgemm64_"}
_gemm_state: dict = {}  # dtype -> address, or None when the compiled loops cannot be used


def gemm_address(dtype) -> int | None:
    """Address of ``cblas_sgemm`` / ``cblas_dgemm`` in NumPy's own OpenBLAS, for the compiled
    whole-sequence loops; None when they cannot be used (then the time loop runs in Python,
    one BLAS call and one compiled call per step).

    NumPy's wheels ship OpenBLAS as ``numpy.libs/libscipy_openblas64_*.so`` with the ILP64
    CBLAS symbols ``scipy_cblas_?gemm64_``; a NumPy built against another BLAS has no such
    file, and the fallback serves. The first lookup checks the address with a small product
    against ``np.dot``. ``LSTMLAB_FAST_LOOP=0`` in the environment disables the loops.
    """
    dtype = np.dtype(dtype)
    if dtype in _gemm_state:
        return _gemm_state[dtype]
    _nb()  # imports numba (taking _lock itself) before _lock is taken below
    with _lock:
        if dtype not in _gemm_state:
            _gemm_state[dtype] = _find_gemm(dtype)
    return _gemm_state[dtype]


def _find_gemm(dtype) -> int | None:
    import ctypes

    if os.environ.get("LSTMLAB_FAST_LOOP", "1") == "0" or dtype not in _GEMM_SYMBOLS:
        return None
    fn = _openblas_function(_GEMM_SYMBOLS[dtype])
    if fn is not None:
        address = ctypes.cast(fn, ctypes.c_void_p).value
        rng = np.random.default_rng(0)
        a, w = rng.normal(size=(3, 5)).astype(dtype), rng.normal(size=(5, 4)).astype(dtype)
        out, out_t = np.empty((3, 4), dtype), np.empty((3, 5), dtype)
        _nb().gemm_selftest(address, a, w, out, False)
        _nb().gemm_selftest(address, out, w, out_t, True)
        tol = 1e-4 if dtype == np.float32 else 1e-12
        if np.allclose(out, a @ w, rtol=tol, atol=tol) and np.allclose(out_t, out @ w.T,
                                                                      rtol=tol, atol=tol):
            return address
    return None


PACKED_MAX_ROWS = 32  # the packed product's advantage over one-threaded BLAS fades above


def packed_weights(W: np.ndarray, rows: int, parts: int) -> np.ndarray:
    """``W (K, N)`` packed for the compiled loops' own recurrent product, or an empty array
    when BLAS does it.

    Packed means panels of NR = 64 bytes of columns, each stored row after row:
    ``Wp[p, k, :] = W[k, p·NR:(p+1)·NR]``, so that a step's product reads the weights in the
    order the kernel uses them, from a copy made once per sequence, instead of BLAS copying
    them into that order on every step (``_fast_numba.packed_product``). The kernel runs on
    the calling thread. Against single-threaded BLAS (``bench_lstm.py --packed``) it takes
    0.65–0.85 of the time for 8 to 32 rows, and about the same (0.85–1.1) for 64 and 128
    rows. So it serves where the product runs on one thread anyway — the batch split over
    threads (``parts > 1``, each part with single-threaded BLAS), or NumPy's OpenBLAS set to
    one thread (``OPENBLAS_NUM_THREADS=1``, threadpoolctl) — for STREAM_ROWS < rows <=
    :data:`PACKED_MAX_ROWS` (fewer rows use vector–matrix products), N a whole number of
    panels. ``LSTMLAB_PACKED=0`` in the environment turns it off, ``=1`` on wherever it can
    run (the tests use that).

    With BLAS on its threads one loop keeps BLAS, even where one core of the packed kernel
    matches or beats BLAS's two (B = 8, H = 64; B = 16, H = 512): in float32 its sums round
    differently from OpenBLAS's, and the one loop's results stay what they were (the pair and
    the pipelined backward use the packed kernel on their own threads; their shapes' float32
    results changed with them, and the documented runs at those shapes were made with them).
    Two threads of the packed kernel in one loop were tried: faster than
    BLAS's two per step in isolation, much slower inside a training step, because OpenBLAS
    keeps a worker busy-waiting for ~0.11 s after every multi-threaded call
    (``bench_lstm.py --blas-spin``) and that worker takes turns on a core with any thread that
    is not OpenBLAS's own.
    """
    mode = os.environ.get("LSTMLAB_PACKED", "")
    if _packable(W, rows) and (mode == "1" or (rows <= PACKED_MAX_ROWS
                                               and (parts > 1 or blas_threads() == 1))):
        return pack_panels(W)
    return _empty_pack(W.dtype)


def _packable(W: np.ndarray, rows: int) -> bool:
    """Whether the packed kernel can do a product of ``rows`` rows with ``W``: more than
    :data:`STREAM_ROWS` rows (fewer use vector–matrix products), W's columns a whole number
    of panels, and ``LSTMLAB_PACKED`` not 0."""
    return (rows > STREAM_ROWS and W.shape[1] % _panel_width(W.dtype) == 0
            and os.environ.get("LSTMLAB_PACKED", "") != "0")


def _empty_pack(dtype) -> np.ndarray:
    """The empty array that tells the compiled loops to use BLAS (one per dtype)."""
    empty = _NO_PACK.get(dtype)
    if empty is None:
        empty = _NO_PACK[dtype] = np.empty((0, 1, 1), dtype)
    return empty


def pack_panels(W: np.ndarray) -> np.ndarray:
    """``W (K, N)`` as ``(N/NR, K, NR)`` panels of NR = 64 bytes of columns (N a multiple)."""
    K, N = W.shape
    nr = _panel_width(W.dtype)
    if N % nr:
        raise ValueError(f"W must have a multiple of {nr} columns to be packed, got {N}")
    return np.ascontiguousarray(W.reshape(K, N // nr, nr).transpose(1, 0, 2))


def _panel_width(dtype) -> int:
    """Columns per packed panel: 64 bytes, two AVX vectors (16 float32, 8 float64)."""
    return 64 // np.dtype(dtype).itemsize


_NO_PACK: dict = {}


def blas_threads() -> int | None:
    """The number of threads NumPy's OpenBLAS is set to use now (None if it cannot be asked:
    another BLAS)."""
    fn = _openblas_call("scipy_openblas_get_num_threads64_", "int")
    return None if fn is None else int(fn())


@functools.cache
def _openblas_call(name: str, restype: str | None, *argtypes: str):
    """:func:`_openblas_function` with its C signature set (ctypes type names, e.g. "int"),
    looked up once per name."""
    import ctypes

    fn = _openblas_function(name)
    if fn is not None:
        fn.restype = None if restype is None else getattr(ctypes, "c_" + restype)
        fn.argtypes = [getattr(ctypes, "c_" + a) for a in argtypes]
    return fn


def _openblas_libraries():
    """NumPy's bundled OpenBLAS (``numpy.libs/libscipy_openblas64_*.so``), each file that
    loads, as a ``ctypes.CDLL``."""
    import ctypes
    import glob

    libdir = os.path.join(os.path.dirname(os.path.dirname(np.__file__)), "numpy.libs")
    for path in sorted(glob.glob(os.path.join(libdir, "libscipy_openblas64_*.so*"))):
        try:
            yield ctypes.CDLL(path)
        except OSError:
            continue


def _openblas_function(name: str):
    """A function of NumPy's bundled OpenBLAS, through ctypes; None when there is no such
    library or symbol."""
    for lib in _openblas_libraries():
        fn = getattr(lib, name, None)
        if fn is not None:
            return fn
    return None


def split_batch(B: int, H: int, threads: int | None) -> list[slice]:
    """How the batch is divided between threads: one slice per thread.

    ``threads=None`` means one slice: the whole batch on the calling thread, with BLAS using
    its own threads inside each product. ``threads=2`` splits the batch in halves, each run by
    its own thread with single-threaded BLAS (when threadpoolctl is installed; without it BLAS
    cannot be held to one thread per half, and 2 × 2 threads on 2 cores thrash).

    Splitting used to be the default for B >= 16, H <= 256. Measured again (docs/speed.md)
    it lost on every training shape of the benchmark grid and on most inference shapes,
    for two reasons: after any multi-threaded call OpenBLAS keeps its worker thread
    busy-waiting for ~0.11 s, so in a training loop the second half always shared a core
    with that spinning thread (now ended first where that is safe, as for the pair:
    :func:`_stop_blas_workers`); and, before the time loop was compiled, every step handed the
    interpreter lock between the two threads. ``LSTMLAB_THREADS`` in the environment, when
    set, replaces None.
    """
    if threads is None and os.environ.get("LSTMLAB_THREADS"):
        threads = int(os.environ["LSTMLAB_THREADS"])
    if threads is None:
        threads = 1
    threads = max(1, min(int(threads), B))
    edges = [round(k * B / threads) for k in range(threads + 1)]  # as np.linspace(0, B, ·)
    return [slice(a, z) for a, z in zip(edges[:-1], edges[1:])]  # .round(), without its ~0.1 ms


INFER_SPLIT_MIN_ROWS = 128  # from this many rows an inference splits the batch on two threads


def infer_split(B: int, H: int, dtype, threads: int | None) -> bool:
    """Whether an LSTM inference (``need_cache=False``) of B rows splits the batch in halves
    on two threads by default (as ``threads=2`` does), each half's time loop with
    single-threaded BLAS. With one loop, each step's product is one two-thread BLAS call
    that hands work to OpenBLAS's worker and back; with B >= 128 each half is a product big
    enough for one core on its own. At (100, 128, 128) the split took 0.86–0.87 of one
    loop's time in five runs of ``bench_lstm.py --threads`` and 0.87–0.95 at (50, 128, 256)
    (docs/speed.md); for training it lost or was even. Not where the pair serves; the same
    conditions as the pair otherwise (:func:`_two_threads`), and threadpoolctl to hold BLAS
    to one thread per half. ``LSTMLAB_INFER_SPLIT=0`` turns it off, ``=1`` on wherever it can
    run. An inference's float32 results differ from one loop's in the last bits (each half's
    products are one-thread BLAS calls), the same on every run."""
    return (_blas_single_thread.possible()
            and _two_threads("LSTMLAB_INFER_SPLIT",
                             B >= INFER_SPLIT_MIN_ROWS and not pair_shape(B, H), dtype, threads))


def _run_split(parts: list[slice], work) -> None:
    """Run ``work(slice)`` for every part; with more than one part, each on its own thread
    and with BLAS limited to one thread meanwhile (two BLAS pools on two cores fight)."""
    if len(parts) == 1:
        work(parts[0])
        return
    with _blas_single_thread():
        errors = []

        def guarded(s):
            try:
                work(s)
            except BaseException as e:  # re-raised in the caller below
                errors.append(e)

        workers = [threading.Thread(target=guarded, args=(s,)) for s in parts[1:]]
        for w in workers:
            w.start()
        guarded(parts[0])
        for w in workers:
            w.join()
    if errors:
        raise errors[0]


class _blas_single_thread:
    """Context manager: BLAS limited to one thread (via threadpoolctl when installed), and
    OpenBLAS's busy worker ended where that is safe (:func:`_end_busy_blas_workers`), since
    otherwise the threads that follow share a core with it."""

    _controller = None  # one ThreadpoolController, made on first use (it scans the libraries)

    @classmethod
    def possible(cls) -> bool:
        if cls._controller is None:
            try:
                from threadpoolctl import ThreadpoolController
            except ImportError:
                cls._controller = False
            else:
                cls._controller = ThreadpoolController()
        return cls._controller is not False

    def __enter__(self):
        ok = self.possible()
        self._limit = self._controller.limit(limits=1, user_api="blas") if ok else None
        _end_busy_blas_workers()
        return self

    def __exit__(self, *exc):
        if self._limit is not None:
            self._limit.restore_original_limits()
        return False


# -- one sequence on two threads, split by hidden units ---------------------------------
# Where the pair runs by default, from the measurements in docs/speed.md (*Two threads on one
# sequence*): at least this many hidden units, at most this many rows.
PAIR_MIN_HIDDEN = 256
PAIR_MAX_ROWS = 64
PAIR_CHUNK_ROWS, PAIR_CHUNK_BYTES = 256, 1 << 20  # each thread's buffer of projected steps


def pair_shape(B: int, H: int) -> bool:
    """Whether the pair is the default for B rows of H hidden units (where it measured
    faster than one thread running the loop; see :func:`unit_halves`)."""
    return H >= PAIR_MIN_HIDDEN and B <= PAIR_MAX_ROWS


def unit_halves(B: int, H: int, dtype, threads: int | None) -> list[tuple[int, int]] | None:
    """The two ranges of hidden units when an LSTM sequence runs on two threads, or None for
    one thread.

    The pair (``_fast_numba.lstm_forward_units`` / ``lstm_backward_units``): each thread owns
    half of the hidden units — their four gate columns, their part of every step's recurrent
    product and gate math, and of the weight gradients; the forward's input projection goes,
    a step of a half at a time, to whichever thread is free — and the two meet at a barrier
    after every step, with NumPy's OpenBLAS held to one thread
    meanwhile, so that no BLAS worker competes with them for the cores. Each core then reads
    half of the recurrent weights per step, where a two-thread BLAS call per step repacks all
    of them (docs/speed.md, *Two threads on one sequence*).

    Used when ``threads`` is None (the default), the compiled loops can run (NumPy's
    OpenBLAS, :func:`gemm_address`), this process may run on two CPUs or more, NumPy's
    OpenBLAS is allowed two threads or more (a program that holds BLAS to one thread gets one
    thread here too), and the shape is one where the benchmark measured a gain
    (:func:`pair_shape`): H >= 256 and B <= 64, float32 or float64 — never on what else is
    running at the moment, so that results do not depend on timing (:func:`_two_threads`;
    OpenBLAS's busy-waiting workers are ended first where that is safe). There
    each thread's half of the per-step product, done by the packed kernel on weights packed
    once, is a big enough piece of work to pay for a barrier per step, while one loop's
    two-thread BLAS call repacks all of ``Wh`` on every step. Elsewhere the pair was slower
    than one thread running the loop, or not faster beyond the noise: at H <= 128 (per-step
    work too small for a barrier per step; at H = 128 from 64 rows within the noise) and
    at B = 128 (BLAS's packing is then a small part of its product).
    ``LSTMLAB_PAIR=0`` in the environment turns it off, ``=1`` on whenever it can run (the
    tests use both).
    """
    if H < 2 or not _two_threads("LSTMLAB_PAIR", pair_shape(B, H), dtype, threads):
        return None
    nr = _panel_width(dtype)
    half = int(round(H / 2 / nr)) * nr  # a whole number of panels where possible
    if not 0 < half < H:
        half = H // 2
    return [(0, half), (half, H)]


def _two_threads(switch: str, shape_ok: bool, dtype, threads: int | None) -> bool:
    """Whether one of the fast path's two-thread schedules (the pair, the pipelined backward)
    runs: the environment variable ``switch`` is not ``0``, ``threads`` is the default, the
    compiled loops and a way to hold NumPy's OpenBLAS to one thread exist; and either
    ``switch`` is ``1`` (forced) or the shape is one of the schedule's (``shape_ok``), this
    process may run on two CPUs and BLAS may use two threads.

    The answer depends on the configuration only, never on what the machine is doing at the
    moment: the schedules round differently from one loop in float32, so a choice that
    followed, say, whether another thread happened to be running would make the same
    training run give different results from one run to the next. OpenBLAS's busy-waiting
    workers are ended before the schedule starts where that is safe (:func:`_cores_free`);
    a thread of the program's own that keeps running then shares the cores with it (slower,
    never different)."""
    if gemm_address(dtype) is None or _set_blas_threads() is None:
        return False
    if not _second_thread_allowed(switch, shape_ok, threads):
        return False
    stream_helper.stop()  # a streaming step's helper, spinning, would take a core
    _cores_free()  # end OpenBLAS's busy workers where that is safe; not part of the choice
    return True


def _second_thread_allowed(switch: str, shape_ok: bool, threads: int | None,
                           unknown_blas: int = 1) -> bool:
    """The configuration part of every two-thread choice: the environment variable
    ``switch`` is not ``0``, ``threads`` is the default and ``LSTMLAB_THREADS`` unset; and
    either ``switch`` is ``1`` (forced) or ``shape_ok``, this process may run on two CPUs and
    BLAS may use two threads (``unknown_blas``: the count assumed when BLAS cannot be asked)."""
    mode = os.environ.get(switch, "")
    if mode == "0" or threads is not None or os.environ.get("LSTMLAB_THREADS"):
        return False
    return mode == "1" or (shape_ok and _cpus() >= 2 and (blas_threads() or unknown_blas) >= 2)


def _cpus() -> int:
    """The number of CPUs this process may run on."""
    affinity = getattr(os, "sched_getaffinity", None)
    return len(affinity(0)) if affinity is not None else (os.cpu_count() or 1)


def _cores_free() -> bool:
    """True when no other thread of this process is running, after stopping NumPy's
    OpenBLAS workers if they were what ran (:func:`_stop_blas_workers`)."""
    if not _another_thread_running():
        return True
    return _stop_blas_workers() and not _another_thread_running()


def _end_busy_blas_workers() -> None:
    """After BLAS was held to one thread: ``openblas_set_num_threads`` starts OpenBLAS's
    workers again when :func:`_cores_free` had ended them, and they busy-wait; end them again
    (when safe) if any other thread runs."""
    if _another_thread_running():
        _stop_blas_workers()


def _stop_blas_workers() -> bool:
    """End the worker threads of NumPy's OpenBLAS, which busy-wait for ~0.11 s after every
    multi-threaded call (``bench_lstm.py --blas-spin``) and would take turns on the cores with
    the pair's two threads. OpenBLAS's ``blas_thread_shutdown_`` (the function it runs itself
    before a fork) tells each worker to exit and joins it; the next multi-threaded call starts
    them again, and takes longer (0.35–2.3 ms in ``--blas-spin`` runs). Done only when no
    other Python thread exists besides the pair's own worker (idle between calls), so that no
    BLAS call can be in flight on the workers being ended: a call from another thread could
    be. Returns True when the workers were ended."""
    shutdown = _openblas_call("blas_thread_shutdown_", "int")
    if shutdown is None:
        return False
    me = threading.current_thread()
    for t in threading.enumerate():
        if t is not me and not t.name.startswith(_PAIR_THREAD_NAME):
            return False
    shutdown()
    return True


def _another_thread_running() -> bool:
    """True when another thread of this process is running (state R in ``/proc``), or when
    that cannot be read. Typically it is OpenBLAS's worker, busy-waiting for ~0.11 s after a
    multi-threaded call (``bench_lstm.py --blas-spin``): the pair would share a core with it,
    and every step would wait at the barrier for the thread that lost its core. Reading the
    threads' states is a directory listing and one small read per thread."""
    me = threading.get_native_id()
    try:
        tids = os.listdir("/proc/self/task")
        for tid in tids:
            if int(tid) == me:
                continue
            try:
                with open(f"/proc/self/task/{tid}/stat", "rb") as f:
                    stat = f.read()
            except OSError:  # the thread has just ended
                continue
            end = stat.rindex(b")")  # the state follows the (name), which may hold spaces
            if stat[end + 2:end + 3] == b"R":
                return True
    except (OSError, ValueError):
        return True
    return False


_pair_lock = threading.Lock()  # one pair at a time: it has one worker thread
_PAIR_THREAD_NAME = "lstmlab-pair"
_pair_pool: dict = {}  # process id -> ThreadPoolExecutor with the pair's second thread


def _set_blas_threads():
    """``openblas_set_num_threads`` of NumPy's OpenBLAS (ctypes), or None."""
    return _openblas_call("scipy_openblas_set_num_threads64_", None, "int")


@functools.cache
def _blas_thread_count():
    """OpenBLAS's own thread count, ``blas_cpu_number`` (a ``ctypes.c_int`` in NumPy's
    OpenBLAS), or None. The two-thread schedules hold BLAS to one thread by writing it:
    ``openblas_set_num_threads`` also starts OpenBLAS's workers when they were ended
    (:func:`_stop_blas_workers`), and they busy-wait ~0.11 s (``bench_lstm.py --blas-spin``),
    so every schedule started them twice — to one thread, then back — and ended them once,
    leaving a spinning worker beside whatever came next. With the count written directly, a call with BLAS at one thread never
    touches the workers, and the next multi-threaded call starts them if they were ended (as
    OpenBLAS does after a fork). ``openblas_get_num_threads`` reads the same variable."""
    import ctypes

    for lib in _openblas_libraries():
        try:
            count = ctypes.c_int.in_dll(lib, "blas_cpu_number")
        except ValueError:
            continue
        return count if count.value == blas_threads() else None
    return None


@functools.cache
def _sched_yield_address() -> int:
    """The address of libc's ``sched_yield``, which the pair's barrier calls while waiting."""
    import ctypes
    return ctypes.cast(ctypes.CDLL(None).sched_yield, ctypes.c_void_p).value


def _run_pair(fn, args0: tuple, args1: tuple) -> None:
    """``fn(*args0, sync, yield)`` on this thread and ``fn(*args1, sync, yield)`` on the pair's
    worker thread at once, NumPy's OpenBLAS held to one thread meanwhile. ``sync`` is the
    barrier's counter and abort flag: set when either call fails before entering compiled code,
    so that the other does not wait for it forever."""
    from concurrent.futures import ThreadPoolExecutor

    sync = np.zeros(2, np.int64)
    tail = (sync.ctypes.data, _sched_yield_address())
    with _pair_lock:
        pool = _pair_pool.get(os.getpid())
        if pool is None:  # first use, or a child forked after it: threads do not survive fork
            pool = _pair_pool[os.getpid()] = ThreadPoolExecutor(
                1, thread_name_prefix=_PAIR_THREAD_NAME)
        count = _blas_thread_count()  # written directly: starts no worker, ends none
        set_threads = (_set_blas_threads() if count is None
                       else functools.partial(setattr, count, "value"))
        before = blas_threads()
        set_threads(1)
        if count is None:
            _end_busy_blas_workers()
        try:
            def second():
                try:
                    return fn(*args1, *tail)
                except BaseException:
                    sync[1] = 1
                    raise
            future = pool.submit(second)
            try:
                ok = fn(*args0, *tail)
            except BaseException:
                sync[1] = 1
                raise
            finally:
                ok2 = future.result()  # waits for the other half; raises its error
        finally:
            set_threads(before)
    if not (ok and ok2):
        raise RuntimeError("the two-thread LSTM loop was aborted")


pair_cycles: list | None = None  # set to a list to collect the pair's time split (benchmark)


def _record_pair(kind: str, args: list) -> None:
    """Append ``(kind, [thread 0's counts, thread 1's])`` to :data:`pair_cycles` when it is a
    list: each thread's cycle counts per phase, the last argument before the barrier's (see
    ``lstm_forward_units`` / ``lstm_backward_units``)."""
    if pair_cycles is not None:
        pair_cycles.append((kind, [a[-1].copy() for a in args]))


def _unit_buffers(K: int, N: int, dtype) -> tuple[np.ndarray, np.ndarray]:
    """Buffers for a pair thread's share ``(K, N)`` of the recurrent weights, which the thread
    fills itself: ``(plain, packed)``, one of them empty. Packed for the pair's one-threaded
    product when N is a whole number of panels (``LSTMLAB_PACKED=0``: never); else plain, for
    BLAS. Unlike :func:`packed_weights`, for any number of rows: one kernel for every shape
    the pair serves (up to 64 rows by default), where at 64 rows the pair on packed weights
    and the pair with one-threaded BLAS measured alike (docs/speed.md, *Two threads on one
    sequence*)."""
    mode = os.environ.get("LSTMLAB_PACKED", "")
    nr = _panel_width(dtype)
    if mode != "0" and N % nr == 0:
        return np.empty((0, 0), dtype), np.empty((N // nr, K, nr), dtype)
    return np.empty((K, N), dtype), _empty_pack(dtype)


def _pair_forward(nb, x, Wx, Wh, bias, gates, h, c, tanh_c, lens, need_cache, halves):
    T, B, D = x.shape
    H = Wh.shape[0]
    dtype = x.dtype
    xc, Wxc, Whc = (np.ascontiguousarray(a, dtype) for a in (x, Wx, Wh))
    S = max(2, _chunk_steps(T, B, max(u1 - u0 for u0, u1 in halves), x.itemsize,
                            PAIR_CHUNK_ROWS, PAIR_CHUNK_BYTES))  # >= 2: lstm_forward_units
    Wxu, z = [], []
    for u0, u1 in halves:  # per half, shared by both threads: its input weights, its buffer
        Wxu.append(_unit_buffers(D, 4 * (u1 - u0), dtype))
        z.append(np.empty((S, B, 4 * (u1 - u0)), dtype))
    units = np.array([halves[0][0], halves[0][1], halves[1][1]], np.int64)
    items = np.zeros(1 + 2 * T, np.int64)
    args = [(part, gemm_address(dtype), xc.ctypes.data, D, Wxc, Whc, *Wxu[0], *Wxu[1],
             *_unit_buffers(H, 4 * (u1 - u0), dtype), bias, z[0], z[1], gates, h, c, tanh_c,
             lens, units, items, need_cache, np.zeros(4, np.int64))
            for part, (u0, u1) in enumerate(halves)]
    _run_pair(nb.lstm_forward_units, *args)
    _record_pair("forward" if need_cache else "inference", args)


# -- LSTM ------------------------------------------------------------------------------
def lstm_forward(x: np.ndarray, h0: np.ndarray, c0: np.ndarray, params: LSTMParams,
                 lengths: np.ndarray | None = None, need_cache: bool = True,
                 threads: int | None = None):
    """As :func:`lstmlab.kernels.lstm_forward`; with ``need_cache=False`` the returned cache
    is ``None`` and the forward keeps only what the outputs need."""
    nb = _nb()
    Wx, Wh, b = params
    T, B, D = x.shape
    H = Wh.shape[0]
    dtype = x.dtype
    active = step_masks(lengths, T, dtype)
    lens = _lengths_array(lengths, active, T, B)
    bias = _bias(b, 4 * H, dtype)

    halves = unit_halves(B, H, dtype, threads)
    pipe = need_cache and halves is None and pipe_forward(B, H, dtype, threads)
    h = buffers.empty((T + 1, B, H), dtype)  # (T+1, B, H)
    h[0] = h0
    if need_cache:
        gates = buffers.empty((T, B, 4 * H), dtype)  # (T, B, 4H)
        if halves is None and not pipe:  # x_t·Wx, then the gates (the two-thread schedules
            np.matmul(x.reshape(T * B, D), Wx, out=gates.reshape(T * B, 4 * H))  # project)
        c = buffers.empty((T + 1, B, H), dtype)  # (T+1, B, H)
        tanh_c = buffers.empty((T, B, H), dtype)  # (T, B, H)
    else:
        gates = None  # inference: projected chunk by chunk into a small buffer, see below
        c = np.empty((2, B, H), dtype)  # rows t % 2: C_{t-1} and C_t
        tanh_c = np.empty((1, B, H), dtype)  # scratch
    c[0] = c0

    if halves is not None:  # two threads, one per half of the hidden units
        _pair_forward(nb, x, Wx, Wh, bias, _empty_pack(dtype) if gates is None else gates, h, c,
                      tanh_c, lens, need_cache, halves)
        return _forward_result(x, h, c, gates, tanh_c, params, active, need_cache)
    if pipe:  # two threads: the recurrence, and the input projection ahead of it
        _pipe_forward(nb, x, Wx, Wh, bias, gates, h, c, tanh_c, lens)
        return _forward_result(x, h, c, gates, tanh_c, params, active, need_cache)

    gemm = gemm_address(dtype)
    parts = split_batch(B, H, threads)
    if not need_cache and len(parts) == 1 and infer_split(B, H, dtype, threads):
        parts = split_batch(B, H, 2)
    if gemm is not None:  # the whole time loop compiled, BLAS called from inside
        xc, Wxc = np.ascontiguousarray(x, dtype), np.ascontiguousarray(Wx, dtype)
        Whc = _arg(Wh, dtype)
        Whp = packed_weights(Whc, B // len(parts), len(parts))
        if need_cache:
            buf = gates
        else:  # x_t·Wx for a chunk of steps at a time
            buf = np.empty((_chunk_steps(T, B, H, x.itemsize), B, 4 * H), dtype)

        def recurrence(s: slice):
            nb.lstm_forward_loop(gemm, xc.ctypes.data, D, Wxc.ctypes.data, Whc, Whp, bias, buf,
                                 h, c, tanh_c, lens, s.start, s.stop, need_cache)
    else:
        recurrence = _python_forward_loop(nb, x, Wx, Wh, bias, gates, h, c, tanh_c, lens,
                                          need_cache)

    _run_split(parts, recurrence)
    return _forward_result(x, h, c, gates, tanh_c, params, active, need_cache)


def _forward_result(x, h, c, gates, tanh_c, params, active, need_cache):
    """``(y, hT, cT, cache)`` of :func:`lstm_forward` from its filled buffers."""
    T = x.shape[0]
    cT = c[T] if need_cache else c[T % 2]
    if active is None:
        y = h[1:]
        y.flags.writeable = False
    else:
        y = h[1:] * active
    cache = LSTMCache(x, h, c, gates, tanh_c, params, active) if need_cache else None
    return y, h[T].copy(), cT.copy(), cache


def _chunk_steps(T: int, rows: int, H: int, itemsize: int, min_rows: int = 4096,
                 max_bytes: int = 16 << 20) -> int:
    """Steps per chunk of the inference input projection ``x_t·Wx``: enough for a GEMM of
    >= ``min_rows`` rows (4096: an efficient one; chunks of 512 rows were slower on the
    benchmark grid), at most ``max_bytes`` of buffer, at most T."""
    return max(1, min(T, -(-min_rows // rows), max_bytes // (rows * 4 * H * itemsize)))


def _python_forward_loop(nb, x, Wx, Wh, bias, gates, h, c, tanh_c, lens, need_cache):
    """The time loop in Python (when :func:`gemm_address` is None): per step one BLAS call
    through NumPy and one compiled call for the gate math. Returns ``recurrence(slice)``."""
    T, B, D = x.shape
    H = Wh.shape[0]
    dtype = x.dtype

    def recurrence(s: slice):
        # this thread's rows of every buffer, sliced once (per-step indexing is then cheap)
        hs, cs, tcs, ls = h[:, s], c[:, s], tanh_c[:, s], lens[s]
        rec = np.empty((s.stop - s.start, 4 * H), dtype)  # (b, 4H) h_{t-1}·Wh of one step
        if need_cache:
            gs = gates[:, s]
            for t in range(T):
                np.dot(hs[t], Wh, out=rec)  # np.dot: less call overhead than np.matmul
                nb.lstm_step_forward(gs[t], rec, bias, hs[t], cs[t], hs[t + 1], cs[t + 1], tcs[t],
                                     ls, t)
            return
        # Inference: x_t·Wx for a chunk of steps at a time instead of a (T, B, 4H) array.
        nb_rows = s.stop - s.start
        Tc = _chunk_steps(T, nb_rows, H, x.itemsize)
        gbuf = np.empty((Tc, nb_rows, 4 * H), dtype)  # (Tc, b, 4H)
        for t0 in range(0, T, Tc):
            n = min(Tc, T - t0)
            xc = x[t0:t0 + n, s]
            if not xc.flags.c_contiguous:
                xc = np.ascontiguousarray(xc)
            np.matmul(xc.reshape(n * nb_rows, D), Wx, out=gbuf[:n].reshape(n * nb_rows, 4 * H))
            for t in range(t0, t0 + n):
                np.dot(hs[t], Wh, out=rec)
                nb.lstm_step_forward(gbuf[t - t0], rec, bias, hs[t], cs[t % 2], hs[t + 1],
                                     cs[(t + 1) % 2], tcs[0], ls, t)

    return recurrence


def lstm_backward(dy: np.ndarray | None, dhT: np.ndarray | None, dcT: np.ndarray | None,
                  cache: LSTMCache, threads: int | None = None, need_dx: bool = True):
    """As :func:`lstmlab.kernels.lstm_backward` (takes the cache of either forward)."""
    nb = _nb()
    x, h, c, gates, tanh_c, params, active = cache
    Wx, Wh, b = params
    T, B, D = x.shape
    H = Wh.shape[0]
    dtype = x.dtype
    lens = _lengths_array(None, active, T, B)

    dhT = np.zeros((B, H), dtype) if dhT is None else _arg(dhT, dtype)
    dc = np.zeros((B, H), dtype) if dcT is None else np.array(dcT, dtype=dtype)  # dL/dC_t
    dy = None if dy is None else _arg(dy, dtype)
    dz = buffers.empty((T, B, 4 * H), dtype)  # (T, B, 4H) gradient on the pre-activations
    dh_rec = np.empty((B, H), dtype)  # dz_{t+1}·Whᵀ; ends as dL/dh0

    halves = unit_halves(B, H, dtype, threads)
    if halves is not None:  # two threads, one per half of the hidden units
        grads = _pair_backward(nb, dy, dh_rec, dhT, dc, dz, cache, lens, halves, need_dx)
        return grads[0], dh_rec, dc, LSTMParams(*grads[1:])

    if pipe_backward(B, H, dtype, threads):  # the recurrence on one thread, GEMMs on the other
        grads = _pipe_backward(nb, dy, dh_rec, dhT, dc, dz, cache, lens, need_dx)
        return grads[0], dh_rec, dc, LSTMParams(*grads[1:])

    gemm = gemm_address(dtype)
    parts = split_batch(B, H, threads)
    if gemm is not None:  # the whole time loop compiled, BLAS called from inside
        WhT = np.ascontiguousarray(Wh.T, dtype)  # (4H, H), once per sequence
        WhTp = packed_weights(WhT, B // len(parts), len(parts))
        dys = np.zeros((1, B, H), dtype) if dy is None else dy

        def recurrence(s: slice):
            nb.lstm_backward_loop(gemm, dh_rec, dhT, dys, dc, gates, tanh_c, c, dz, WhT, WhTp,
                                  lens, s.start, s.stop)
    else:
        WhT = Wh.T

        def recurrence(s: slice):
            dhs, dhTs, dcs, ls = dh_rec[s], dhT[s], dc[s], lens[s]
            gs, tcs, cs, dzs = gates[:, s], tanh_c[:, s], c[:, s], dz[:, s]
            dys = np.zeros((1, s.stop - s.start, H), dtype) if dy is None else dy[:, s]
            for t in range(T - 1, -1, -1):
                nb.lstm_step_backward(dhs, dhTs, dys[0 if dy is None else t], dcs, gs[t], tcs[t],
                                      cs[t], dzs[t], ls, t)
                np.dot(dzs[t], WhT, out=dhs)  # backprop into h_{t-1} through W

    _run_split(parts, recurrence)
    dx, dWx, dWh, db = _grads_after_loop(dz, x, h, Wx, b is not None, need_dx)
    return dx, dh_rec, dc, LSTMParams(dWx, dWh, db)


class _BackwardOperands(NamedTuple):
    """What both two-thread backwards (the pair, the pipeline) hand their compiled threads:
    the cache's arrays C-contiguous in its dtype, the upstream gradient (zeros of one step
    when there is none) and the weight-gradient outputs (``dx`` zero-length when not
    wanted)."""

    x: np.ndarray
    h: np.ndarray
    c: np.ndarray
    gates: np.ndarray
    tanh_c: np.ndarray
    Wx: np.ndarray
    Wh: np.ndarray
    has_bias: bool
    dy: np.ndarray
    dWx: np.ndarray
    dWh: np.ndarray
    dx: np.ndarray


def _backward_operands(dy, cache: LSTMCache, need_dx: bool) -> _BackwardOperands:
    x, h, c, gates, tanh_c, (Wx, Wh, b), _ = cache
    T, B, D = x.shape
    H = Wh.shape[0]
    dtype = x.dtype
    x, h, c, gates, tanh_c, Wx, Wh = (_arg(a, dtype) for a in (x, h, c, gates, tanh_c, Wx, Wh))
    return _BackwardOperands(
        x, h, c, gates, tanh_c, Wx, Wh, b is not None,
        np.zeros((1, B, H), dtype) if dy is None else dy,
        np.empty((D, 4 * H), dtype), np.empty((H, 4 * H), dtype),
        buffers.empty((T, B, D), dtype) if need_dx else np.empty((0, 1, 1), dtype))


def _pair_backward(nb, dy, dh_rec, dhT, dc, dz, cache, lens, halves, need_dx):
    """The backward of :func:`lstm_backward` on two threads; ``(dx, dWx, dWh, db)``."""
    o = _backward_operands(dy, cache, need_dx)
    H = o.Wh.shape[0]
    dtype = o.x.dtype
    db = np.empty(4 * H if o.has_bias else 0, dtype)
    args = [(gemm_address(dtype), dh_rec, dhT, o.dy, dc, o.gates, o.tanh_c, o.c, dz, o.Wh,
             *_unit_buffers(4 * H, u1 - u0, dtype), lens, u0, u1, part, o.x, o.h, o.Wx,
             o.dWx, o.dWh, db, o.dx, np.zeros(4, np.int64))
            for part, (u0, u1) in enumerate(halves)]
    _run_pair(nb.lstm_backward_units, *args)
    _record_pair("backward", args)
    return (o.dx if need_dx else None), o.dWx, o.dWh, (db if o.has_bias else None)


PIPE_CHUNK_ROWS = 256  # rows (steps × batch) of dz per chunk of the pipelined GEMMs
PIPE_MIN_ROWS, PIPE_MIN_HIDDEN = 32, 128


def pipe_shape(B: int, H: int) -> bool:
    """Whether the pipelined backward is the default for B rows of H hidden units: where it
    measured faster than one thread running the loop (see :func:`pipe_backward`)."""
    return B >= PIPE_MIN_ROWS and H >= PIPE_MIN_HIDDEN and not pair_shape(B, H)


def pipe_backward(B: int, H: int, dtype, threads: int | None) -> bool:
    """Whether an LSTM backward runs as a pipeline on two threads
    (``_fast_numba.lstm_backward_pipe``): one thread runs the recurrence — the per-step gate
    backward and ``dz_t·Whᵀ``, by the packed kernel on one core — while the other computes
    ``dWh`` and ``dx`` chunk by chunk of steps as soon as the recurrence has finished them;
    what is left when the recurrence ends — ``dWx`` in four blocks of columns, the ``dx`` of
    chunks the second thread has not reached — goes to whichever thread is free, each piece
    the same GEMM whoever runs it (``LSTMLAB_PIPE_BALANCE=0``: all of ``dWx`` on the first
    thread, as before this balancing). With one thread running the loop, the second
    core idles through the gate math of every step, the per-step product is a small
    two-thread BLAS call that uses both cores poorly, and the three big GEMMs wait until the
    loop ends.

    The same conditions as the pair (:func:`_two_threads`: default ``threads``, the compiled
    loops, two CPUs, BLAS allowed two threads; never what runs at the moment), on the shapes
    :func:`pipe_shape` names: B >= 32 and H >= 128 where the pair does not serve.
    With fewer rows (B = 8: slower, B = 16: even) the thread hand-over costs as much as the
    overlap saves; at H = 128 from 32 rows it measured even to 1.17x faster (docs/speed.md,
    *The pipelined backward*). ``LSTMLAB_PIPE=0`` in the environment
    turns it off, ``=1`` on wherever it can run (the tests use both)."""
    return _two_threads("LSTMLAB_PIPE", pipe_shape(B, H), dtype, threads)


def pipe_forward(B: int, H: int, dtype, threads: int | None) -> bool:
    """Whether an LSTM training forward (one that keeps the cache) runs as a pipeline on two
    threads (``_fast_numba.lstm_forward_pipe``): one thread runs the recurrence — the
    per-step ``h_{t-1}·Wh`` on one core (the packed kernel up to :data:`PACKED_MAX_ROWS`
    rows, one-threaded BLAS above) and the gate math — while the other projects the input,
    ``x_t·Wx``, in chunks of steps ahead of it (:func:`_pipe_forward_ends`); each chunk is
    claimed once by whichever thread is free, the recurrence's thread taking one whenever
    its next step's chunk is not ready yet. With one thread
    running the loop the projection is a two-thread GEMM before the loop, and the loop's
    per-step product a small two-thread BLAS call that uses both cores poorly, while the gate
    math of every step leaves the second core idle.

    The same conditions as the pipelined backward (:func:`pipe_backward`; the shapes of
    :func:`pipe_shape`). ``LSTMLAB_PIPE_FORWARD=0`` in the environment turns it off, ``=1``
    on wherever it can run (the tests use both)."""
    return _two_threads("LSTMLAB_PIPE_FORWARD", pipe_shape(B, H), dtype, threads)


PIPE_FORWARD_MAX_ROWS = 128  # rows (steps × batch) of x·Wx per chunk of the forward pipeline


def _pipe_forward_ends(T: int, B: int) -> np.ndarray:
    """Where the chunks of the forward pipeline's input projection end (int64, increasing,
    the last T): 1 step, then twice as many each chunk, up to :data:`PIPE_FORWARD_MAX_ROWS`
    rows. The recurrence can start a chunk's steps only once the whole chunk is projected,
    and the projection runs only a little faster than the recurrence (0.73 of its time at
    (100, 32, 128)): with chunks growing to 2,048 rows the recurrence waited 25% of the
    forward for them (``bench_lstm.py --profile``, commit 7c9d2e9; docs/speed.md, *The
    pipelined backward*, for what the 128 rows and the shared chunks of now leave). Fixed by
    (T, B) alone, so every run makes the same GEMM calls."""
    cap = max(1, PIPE_FORWARD_MAX_ROWS // B)
    ends, t, n = [], 0, 1
    while t < T:
        t = min(T, t + n)
        ends.append(t)
        n = min(2 * n, cap)
    return np.array(ends, np.int64)


def _pipe_forward(nb, x, Wx, Wh, bias, gates, h, c, tanh_c, lens):
    """The forward of :func:`lstm_forward` with a cache as a two-thread pipeline
    (:func:`pipe_forward`); fills ``gates``, ``h``, ``c``, ``tanh_c``."""
    T, B, D = x.shape
    dtype = x.dtype
    xc, Wxc = np.ascontiguousarray(x, dtype), np.ascontiguousarray(Wx, dtype)
    Whc = _arg(Wh, dtype)
    Whp = (pack_panels(Whc) if _packable(Whc, B) and B <= PACKED_MAX_ROWS
           else _empty_pack(dtype))
    ends = _pipe_forward_ends(T, B)
    claims = np.zeros(1 + len(ends), np.int64)  # the next chunk to claim; each chunk done
    args = [(role, gemm_address(dtype), xc.ctypes.data, D, Wxc.ctypes.data, Whc, Whp, bias,
             gates, h, c, tanh_c, lens, ends, claims, np.zeros(4, np.int64))
            for role in (0, 1)]
    _run_pair(nb.lstm_forward_pipe, *args)
    _record_pair("pipe forward", args)


def _pipe_backward(nb, dy, dh_rec, dhT, dc, dz, cache, lens, need_dx):
    """The backward of :func:`lstm_backward` as a two-thread pipeline (:func:`pipe_backward`);
    ``(dx, dWx, dWh, db)``."""
    o = _backward_operands(dy, cache, need_dx)
    T, B, D = o.x.shape
    H = o.Wh.shape[0]
    dtype = o.x.dtype
    WhT = np.ascontiguousarray(o.Wh.T)  # (4H, H)
    WhTp = pack_panels(WhT) if _packable(WhT, B) else _empty_pack(dtype)  # on its own core
    Tc = max(1, -(-PIPE_CHUNK_ROWS // B))
    balance = os.environ.get("LSTMLAB_PIPE_BALANCE", "") != "0"
    claims = np.zeros(1 + -(-T // Tc), np.int64)  # dWx blocks taken, each chunk's dx taken
    args = [(role, gemm_address(dtype), dh_rec, dhT, o.dy, dc, o.gates, o.tanh_c, o.c, dz, WhT,
             WhTp, lens, o.x, o.h, o.Wx, o.dWx, o.dWh, o.dx, Tc, balance, claims,
             np.zeros(4, np.int64))
            for role in (0, 1)]
    _run_pair(nb.lstm_backward_pipe, *args)
    _record_pair("pipe backward" if need_dx else "pipe backward, no dx", args)
    db = dz.reshape(T * B, 4 * H).sum(axis=0) if o.has_bias else None
    return (o.dx if need_dx else None), o.dWx, o.dWh, db


def _grads_after_loop(dz, x, h, Wx, has_bias: bool, need_dx: bool):
    """``(dx, dWx, dWh, db)`` from the pre-activation gradients ``dz (T, B, G·H)`` of a whole
    sequence: one GEMM each over all T·B rows, as the reference kernels do after their loop
    (``dx`` is ``None`` when not needed, else from :data:`buffers`)."""
    T, B, D = x.shape
    dz2 = dz.reshape(T * B, dz.shape[2])
    dWx = x.reshape(T * B, D).T @ dz2  # (D, G·H)
    dWh = h[:-1].reshape(T * B, h.shape[2]).T @ dz2  # (H, G·H)
    db = dz2.sum(axis=0) if has_bias else None  # (G·H,)
    dx = None
    if need_dx:
        dx = buffers.empty((T, B, D), dz.dtype)  # (T, B, D)
        np.matmul(dz2, Wx.T, out=dx.reshape(T * B, D))
    return dx, dWx, dWh, db


STREAM_ROWS = 4  # up to this many rows, a step is one compiled call, products included
STREAM_PAIR_MIN_HIDDEN = 256  # from this many hidden units, two threads share a streaming step
STREAM_IDLE_CYCLES = 3_000_000  # the helper spins this long (~1 ms) for the next step


def stream_pair(H: int, L: int) -> bool:
    """Whether an LSTM streaming step (B <= :data:`STREAM_ROWS`) of L layers of H units runs
    on two threads (``_fast_numba.lstm_stream_step_two``): the caller's thread on the f and i
    gate columns, a helper thread on the o and C̃ columns, then each on half of the units'
    gate math, so that each reads half of the weights — reading them is what a streaming
    step's time is (two vector–matrix products
    per layer, each weight used once per row). By default for H >= :data:`STREAM_PAIR_MIN_HIDDEN`
    and at most ``_fast_numba.STREAM_MAX_LAYERS`` layers when this process may run on two
    CPUs and NumPy's OpenBLAS may use two threads (a program that holds BLAS to one thread
    gets one here too); ``LSTMLAB_STREAM_PAIR=0`` turns it off, ``=1`` on wherever it can
    run, ``LSTMLAB_THREADS`` (any value) off. Results are the same bits either way: each
    output element is computed by the same code on either thread.

    A step takes ~20 µs and these checks several, so the answer is kept for 50 ms per
    (H, L): a change of the environment or of BLAS's threads takes effect within that."""
    now = time.monotonic()
    got = _stream_pair_memo.get((H, L))
    if got is not None and now < got[1]:
        return got[0]
    ok = (H >= 2 and L <= _nb().STREAM_MAX_LAYERS  # streaming needs no BLAS: unknown is fine
          and _second_thread_allowed("LSTMLAB_STREAM_PAIR", H >= STREAM_PAIR_MIN_HIDDEN, None,
                                     unknown_blas=2))
    _stream_pair_memo[(H, L)] = (ok, now + 0.05)
    return ok


_stream_pair_memo: dict = {}


class _StreamHelper:
    """The streaming step's helper thread: sleeps on an event in Python; woken, it waits in
    compiled code (``_fast_numba.lstm_stream_helper``), spinning, for steps to share, and
    comes back to sleep after :data:`STREAM_IDLE_CYCLES` without one, or when asked to stop
    (before the pair starts, whose threads need both cores). ``ctl`` is the shared state
    the compiled step and the helper meet on (layout in ``_fast_numba``)."""

    def __init__(self):
        self.ctl = np.zeros(STREAM_CTL_WORDS, np.int64)
        self.yield_fn = 0  # sched_yield's address, set by the first wake (used only after it)
        self.error = None  # what ended the helper thread, if anything did
        self._wake = threading.Event()
        self._thread = None
        self._lock = threading.Lock()

    def wake(self) -> None:
        """Start the helper's wait for steps (a step that ran alone because the helper was
        not waiting calls this); the next steps after it arrives are shared."""
        with self._lock:
            if self._thread is None:
                self.yield_fn = _sched_yield_address()
                self._thread = threading.Thread(target=self._run, daemon=True,
                                                name=_PAIR_THREAD_NAME + "-stream")
                self._thread.start()
        self.ctl[STREAM_STOP] = 0
        self._wake.set()

    @property
    def waiting(self) -> bool:
        """Whether the helper is in its compiled wait (ready for steps, or running one)."""
        return bool(self.ctl[STREAM_STATE] != STREAM_OFF)

    def stop(self) -> None:
        """Ask a waiting helper to go back to sleep (it does within microseconds)."""
        if self.waiting:
            self.ctl[STREAM_STOP] = 1

    def _run(self) -> None:
        try:
            nb = _nb()
            while True:
                self._wake.wait()
                self._wake.clear()
                if self.ctl[STREAM_STOP] == 0:
                    nb.lstm_stream_helper(self.ctl, self.yield_fn, STREAM_IDLE_CYCLES)
        except BaseException as e:  # e.g. the kernel failed to compile: steps then run alone
            self.error = e  # (the compiled step never waits for a helper that is not there)


stream_helper = _StreamHelper()


def _new_stream_helper_in_child() -> None:
    global stream_helper  # the helper thread does not survive a fork; its state must not
    stream_helper = _StreamHelper()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_new_stream_helper_in_child)


def lstm_step(x_t: np.ndarray, h: np.ndarray, c: np.ndarray, params: LSTMParams,
              h_out: np.ndarray, c_out: np.ndarray) -> int:
    """One step for streaming: ``x_t (B, D)``, state ``h, c (B, H)`` in; writes the new state
    into ``h_out, c_out (B, H)`` (C-contiguous, of ``h``'s dtype). Nothing is kept.

    For B <= :data:`STREAM_ROWS` the whole step, both matrix products included, is one
    compiled call, which also checks ``x_t``, ``h`` and ``c`` for NaN and inf: the result is
    0, or 1, 2, 3 naming the first of them that holds one (nothing is written then). Larger
    batches take the products to BLAS and are not checked here (result 0).
    """
    nb = _nb()
    Wx, Wh, b = params
    B, H = h.shape
    dtype = h.dtype
    if B <= STREAM_ROWS:
        return nb.lstm_stream_step(_arg(x_t, dtype), _arg(h, dtype).reshape(1, B, H),
                                   _arg(c, dtype).reshape(1, B, H), (_arg(Wx, dtype),),
                                   (_arg(Wh, dtype),), (_bias(b, 4 * H, dtype),),
                                   h_out.reshape(1, B, H), c_out.reshape(1, B, H))
    z = x_t @ Wx  # (B, 4H), becomes the gates
    rec = h @ Wh  # (B, 4H)
    h, c = _arg(h, dtype), _arg(c, dtype)
    nb.lstm_step_forward(z, rec, _bias(b, 4 * H, dtype), h, c, h_out, c_out,
                         np.empty((B, H), dtype), _ones(B), 0)
    return 0


# -- RNN -------------------------------------------------------------------------------
def rnn_forward(x: np.ndarray, h0: np.ndarray, params: RNNParams, act: str = "tanh",
                lengths: np.ndarray | None = None, need_cache: bool = True,
                threads: int | None = None):
    """As :func:`lstmlab.kernels.rnn_forward`; ``need_cache=False`` returns ``cache=None``."""
    if act not in ACTIVATIONS:
        raise ValueError(f"act must be one of {ACTIVATIONS}, got {act!r}")
    nb = _nb()
    Wx, Wh, b = params
    T, B, D = x.shape
    H = Wh.shape[0]
    dtype = x.dtype
    active = step_masks(lengths, T, dtype)
    lens = _lengths_array(lengths, active, T, B)
    bias = _bias(b, H, dtype)
    relu = act == "relu"

    gx = buffers.empty((T, B, H), dtype)  # (T, B, H) input projection, all steps
    np.matmul(x.reshape(T * B, D), Wx, out=gx.reshape(T * B, H))
    h = buffers.empty((T + 1, B, H), dtype)  # (T+1, B, H)
    h[0] = h0

    gemm = gemm_address(dtype)
    parts = split_batch(B, H, threads)
    if gemm is not None:  # the whole time loop compiled, as for the LSTM
        Whc = _arg(Wh, dtype)
        Whp = packed_weights(Whc, B // len(parts), len(parts))

        def recurrence(s: slice):
            nb.rnn_forward_loop(gemm, gx, Whc, Whp, bias, h, lens, s.start, s.stop, relu)
    else:
        def recurrence(s: slice):
            hs, gs, ls = h[:, s], gx[:, s], lens[s]
            rec = np.empty((s.stop - s.start, H), dtype)
            for t in range(T):
                np.dot(hs[t], Wh, out=rec)
                nb.rnn_step_forward(gs[t], rec, bias, hs[t], hs[t + 1], relu, ls, t)

    _run_split(parts, recurrence)

    if active is None:
        y = h[1:]
        y.flags.writeable = False
    else:
        y = h[1:] * active
    cache = RNNCache(x, h, params, act, active) if need_cache else None
    return y, h[T].copy(), cache


def rnn_backward(dy: np.ndarray | None, dhT: np.ndarray | None, cache: RNNCache,
                 threads: int | None = None, need_dx: bool = True):
    """As :func:`lstmlab.kernels.rnn_backward`."""
    nb = _nb()
    x, h, params, act, active = cache
    Wx, Wh, b = params
    T, B, D = x.shape
    H = Wh.shape[0]
    dtype = x.dtype
    lens = _lengths_array(None, active, T, B)
    relu = act == "relu"

    dhT = np.zeros((B, H), dtype) if dhT is None else _arg(dhT, dtype)
    dy = None if dy is None else _arg(dy, dtype)
    dz = buffers.empty((T, B, H), dtype)  # (T, B, H) gradient on pre-activations
    dh_rec = np.empty((B, H), dtype)
    gemm = gemm_address(dtype)
    parts = split_batch(B, H, threads)
    if gemm is not None:  # the whole time loop compiled, as for the LSTM
        WhT = np.ascontiguousarray(Wh.T, dtype)  # (H, H), once per sequence
        WhTp = packed_weights(WhT, B // len(parts), len(parts))
        dys = np.zeros((1, B, H), dtype) if dy is None else dy
        hc = np.ascontiguousarray(h, dtype)

        def recurrence(s: slice):
            nb.rnn_backward_loop(gemm, dh_rec, dhT, dys, hc, dz, WhT, WhTp, lens, s.start,
                                 s.stop, relu)
    else:
        WhT = Wh.T

        def recurrence(s: slice):
            dhs, dhTs, ls, hs, dzs = dh_rec[s], dhT[s], lens[s], h[:, s], dz[:, s]
            dys = np.zeros((1, s.stop - s.start, H), dtype) if dy is None else dy[:, s]
            for t in range(T - 1, -1, -1):
                nb.rnn_step_backward(dhs, dhTs, dys[0 if dy is None else t], hs[t + 1], dzs[t],
                                     relu, ls, t)
                np.dot(dzs[t], WhT, out=dhs)  # backprop into h_{t-1} through W

    _run_split(parts, recurrence)
    dx, dWx, dWh, db = _grads_after_loop(dz, x, h, Wx, b is not None, need_dx)
    return dx, dh_rec, RNNParams(dWx, dWh, db)


def rnn_step(x_t: np.ndarray, h: np.ndarray, params: RNNParams, act: str,
             h_out: np.ndarray) -> int:
    """One RNN step: writes ``act(x_t·Wx + h·Wh + b)`` into ``h_out (B, H)``, which must not
    overlap ``h``. Small batches as in :func:`lstm_step` (result 0, or 1, 2 for NaN or inf
    in ``x_t``, ``h``)."""
    nb = _nb()
    Wx, Wh, b = params
    B, H = h.shape
    dtype = h.dtype
    if B <= STREAM_ROWS:
        return nb.rnn_stream_step(_arg(x_t, dtype), _arg(h, dtype).reshape(1, B, H),
                                  (_arg(Wx, dtype),), (_arg(Wh, dtype),), (_bias(b, H, dtype),),
                                  h_out.reshape(1, B, H), act == "relu")
    nb.rnn_step_forward(x_t @ Wx, h @ Wh, _bias(b, H, dtype), _arg(h, dtype), h_out,
                        act == "relu", _ones(B), 0)
    return 0
