"""The compiled fast kernels (``lstmlab.kernels.fast``) against the NumPy reference and PyTorch.

Randomized shapes including T=1 and B=1, variable lengths, non-zero biases and initial states,
random upstream gradients on outputs and final state. float64 to 1e-10, float32 to 1e-5.
Tests that need numba skip when it is missing; the fallback tests run either way. The number of
compiled specialisations is kept to two per kernel (float32, float64, C-contiguous): compile
time counts toward the test run.
"""

import importlib.util
import os
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

import lstmlab
from lstmlab.kernels import (LSTMParams, RNNParams, fast, lstm_backward, lstm_forward,
                             rnn_backward, rnn_forward)

needs_numba = pytest.mark.skipif(importlib.util.find_spec("numba") is None or not fast.available(),
                                 reason="numba unavailable (not installed, or LSTMLAB_FAST=0)")
TOL = {np.float64: 1e-10, np.float32: 1e-5}
CASES = [  # T, B, D, H, lengths?
    (1, 1, 3, 4, False), (5, 1, 2, 3, True), (1, 4, 3, 2, True), (7, 5, 3, 6, True),
    (6, 17, 4, 5, True), (9, 20, 5, 8, False),  # B > 4: the recurrent product goes to BLAS
    # H a multiple of 16: the packed product can serve (B = 6..13: every tile height 1..6)
    (4, 11, 5, 16, True), (3, 9, 6, 32, False), (1, 10, 3, 16, True), (2, 8, 4, 16, False),
    (2, 3, 1, 5, True),  # one input feature: a thread of the pair gets no rows of dWx
    (2, 67, 3, 16, True),  # > 64 rows: the pair's packed product over 11 tiles and a rest
]
# The time loop compiled (BLAS called inside), compiled with the packed recurrent product
# wherever it can run (what a single-threaded BLAS gets), in Python, or on two threads split
# by hidden units (the LSTM; the RNN runs its compiled loop) with the pair's own choice of
# packed product or with BLAS only.
LOOPS = ["compiled", "packed", "python", "pair", "pair-blas", "pipe", "pipe-blas"]


@pytest.fixture
def time_loop(request, monkeypatch):
    """Runs a test on one of the time loops: ``python`` makes :func:`fast.gemm_address`
    answer None, as it does for a NumPy without its own OpenBLAS; ``packed`` sets
    ``LSTMLAB_PACKED=1``, ``compiled`` ``LSTMLAB_PACKED=0``, both with ``LSTMLAB_PAIR=0``;
    ``pair`` sets ``LSTMLAB_PAIR=1``, ``pair-blas`` that and ``LSTMLAB_PACKED=0``; ``pipe``
    (the LSTM's pipelined forward and backward) ``LSTMLAB_PIPE=1`` and
    ``LSTMLAB_PIPE_FORWARD=1``, ``pipe-blas`` those and ``LSTMLAB_PACKED=0``; the other modes
    turn both pipelines off. In every mode the buffer pool serves arrays of any size."""
    mode = request.param
    monkeypatch.setenv("LSTMLAB_PAIR", "1" if mode.startswith("pair") else "0")
    monkeypatch.setenv("LSTMLAB_PIPE", "1" if mode.startswith("pipe") else "0")
    monkeypatch.setenv("LSTMLAB_PIPE_FORWARD", "1" if mode.startswith("pipe") else "0")
    # every array the kernels take from the buffer pool is pooled, however small, so that the
    # exactness tests run on reused buffers (a reuse while a cache still holds one would show)
    monkeypatch.setattr(fast.buffers, "min_bytes", 0)
    request.addfinalizer(fast.buffers.release)
    if mode == "python":
        monkeypatch.setattr(fast, "_gemm_state", {np.dtype(np.float32): None,
                                                  np.dtype(np.float64): None})
        return mode
    if mode in ("packed", "compiled", "pair-blas", "pipe-blas"):
        monkeypatch.setenv("LSTMLAB_PACKED", "1" if mode == "packed" else "0")
    else:
        monkeypatch.delenv("LSTMLAB_PACKED", raising=False)
    for dt in (np.float32, np.float64):
        assert fast.gemm_address(dt) is not None, "NumPy's OpenBLAS cblas_?gemm not found"
    if mode.startswith("pair"):
        assert fast.unit_halves(5, 4, np.float64, None) == [(0, 2), (2, 4)]
    if mode.startswith("pipe"):
        assert fast.pipe_backward(5, 4, np.float64, None)
        assert fast.pipe_forward(5, 4, np.float64, None)
    return mode


def rel_err(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    assert a.shape == b.shape, (a.shape, b.shape)
    diff = np.abs(a - b).max()
    return 0.0 if diff == 0 else diff / max(np.abs(b).max(), 1e-300)


def assert_close(got, want, dtype, what):
    for name, g, w in zip(what, got, want):
        if w is None:
            assert g is None, name
            continue
        assert rel_err(g, w) <= TOL[dtype], (name, rel_err(g, w))


def random_inputs(rng, T, B, D, H, G, use_lengths, dtype, bias=True):
    r = lambda *s: rng.normal(size=s).astype(dtype)  # noqa: E731
    params = (r(D, G * H) * 0.6, r(H, G * H) * 0.6, r(G * H) if bias else None)
    lengths = None
    if use_lengths:
        lengths = rng.integers(1, T + 1, size=B)
    return r(T, B, D), r(B, H), r(B, H), params, lengths, r(T, B, H), r(B, H), r(B, H)


@needs_numba
@pytest.mark.parametrize("time_loop", LOOPS, indirect=True)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("case", range(len(CASES)))
def test_lstm_fast_matches_reference(case, dtype, time_loop):
    T, B, D, H, use_lengths = CASES[case]
    rng = np.random.default_rng(case)
    x, h0, c0, p, lengths, dy, dhT, dcT = random_inputs(rng, T, B, D, H, 4, use_lengths, dtype,
                                                        bias=case != 2)
    p = LSTMParams(*p)
    ref = lstm_forward(x, h0, c0, p, lengths)
    got = fast.lstm_forward(x, h0, c0, p, lengths)
    assert_close(got[:3], ref[:3], dtype, ["y", "hT", "cT"])
    lean = fast.lstm_forward(x, h0, c0, p, lengths, need_cache=False)
    assert lean[3] is None
    assert_close(lean[:3], ref[:3], dtype, ["y (no cache)", "hT (no cache)", "cT (no cache)"])
    gref = lstm_backward(dy, dhT, dcT, ref[3])
    ggot = fast.lstm_backward(dy, dhT, dcT, got[3])
    names = ["dx", "dh0", "dc0", "dWx", "dWh", "db"]
    assert_close(ggot[:3] + tuple(ggot[3]), gref[:3] + tuple(gref[3]), dtype, names)
    # the caches are interchangeable, and absent upstream gradients mean zeros
    gmix = fast.lstm_backward(None, None, dcT, ref[3])
    gnone = lstm_backward(None, None, dcT, got[3])
    assert_close(gmix[:3] + tuple(gmix[3]), gnone[:3] + tuple(gnone[3]), dtype, names)


@needs_numba
@pytest.mark.parametrize("time_loop", LOOPS, indirect=True)
@pytest.mark.parametrize("act", ["tanh", "relu"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_rnn_fast_matches_reference(dtype, act, time_loop):
    for case, (T, B, D, H, use_lengths) in enumerate(CASES):
        rng = np.random.default_rng(100 + case)
        x, h0, _, p, lengths, dy, dhT, _ = random_inputs(rng, T, B, D, H, 1, use_lengths, dtype,
                                                         bias=case != 3)
        p = RNNParams(*p)
        ref = rnn_forward(x, h0, p, act, lengths)
        got = fast.rnn_forward(x, h0, p, act, lengths)
        assert_close(got[:2], ref[:2], dtype, ["y", "hT"])
        lean = fast.rnn_forward(x, h0, p, act, lengths, need_cache=False)
        assert lean[2] is None
        assert_close(lean[:2], ref[:2], dtype, ["y (no cache)", "hT (no cache)"])
        gref = rnn_backward(dy, dhT, ref[2])
        ggot = fast.rnn_backward(dy, dhT, got[2])
        assert_close(ggot[:2] + tuple(ggot[2]), gref[:2] + tuple(gref[2]), dtype,
                     ["dx", "dh0", "dWx", "dWh", "db"])


@needs_numba
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_compiled_tanh_is_accurate_over_the_whole_range(dtype):
    """h_1 = tanh(x) through the RNN kernel (Wx = 1, Wh = 0, no bias, h0 = 0): the hand-written
    tanh against NumPy's, from 0 and subnormals to saturation."""
    v = np.concatenate([np.linspace(-25, 25, 20001), np.geomspace(1e-300, 30, 4000),
                        [0.0, 5e-324, 1e-8, 0.3465, 0.3466, 9.0, 19.0, 20.0, 21.0, 710.0]])
    v = np.concatenate([v, -v]).astype(dtype)  # positives, then their negatives
    n = v.size  # one batch row per value keeps the matrices tiny: x (1, n, 1), Wx = [[1]], H = 1
    y, _, _ = fast.rnn_forward(v.reshape(1, n, 1), np.zeros((n, 1), dtype),
                               RNNParams(np.ones((1, 1), dtype), np.zeros((1, 1), dtype), None),
                               "tanh", need_cache=False)
    got = y.reshape(n).astype(np.float64)
    want = np.tanh(v.astype(np.float64))
    if dtype == np.float64:
        ulps = np.abs(got - want) / np.spacing(np.maximum(np.abs(want), np.finfo(np.float64).tiny))
        assert ulps.max() <= 4
    else:
        assert np.abs(got - want).max() <= 1e-6
        assert np.all(np.abs(got) <= 1)
    assert np.array_equal(got[: n // 2], -got[n // 2:])  # odd, exactly


# -- the layers on the fast path ------------------------------------------------------------
def make_pair(kind, dtype, seed, **kw):
    """Two identical layers, one on the reference kernels and one on the fast ones."""
    cls = lstmlab.LSTM if kind == "lstm" else lstmlab.RNN
    if kind != "lstm":
        kw["nonlinearity"] = kind[4:]
    ref = cls(3, 5, dtype=dtype, rng=np.random.default_rng(seed), **kw)
    fst = cls(3, 5, dtype=dtype, rng=np.random.default_rng(seed), **kw)
    ref.backend, fst.backend = "numpy", "fast"
    return ref, fst


def run_layer(layer, x, state, lengths, dy, dstate):
    y, fin = layer.forward(x, state, lengths)
    dx, dinit = layer.backward(dy, dstate)
    fin = fin if isinstance(fin, tuple) else (fin,)
    dinit = dinit if isinstance(dinit, tuple) else (dinit,)
    return [y, *fin, dx, *dinit, *layer.grads().values()]


@needs_numba
@pytest.mark.parametrize("kind", ["lstm", "rnn_tanh"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_layer_fast_backend_matches_reference_and_eval_backward_recomputes(kind, dtype):
    rng = np.random.default_rng(7)
    ref, fst = make_pair(kind, dtype, 3, num_layers=2, bidirectional=True)
    T, B, H = 6, 4, 5
    ns = 2 if kind == "lstm" else 1
    state = tuple(rng.normal(size=(4, B, H)).astype(dtype) for _ in range(ns))
    dstate = tuple(rng.normal(size=(4, B, H)).astype(dtype) for _ in range(ns))
    x = rng.normal(size=(T, B, 3)).astype(dtype)
    dy = rng.normal(size=(T, B, 2 * H)).astype(dtype)
    lengths = np.array([6, 2, 1, 5])
    if kind != "lstm":
        state, dstate = state[0], dstate[0]
    want = run_layer(ref, x, state, lengths, dy, dstate)
    got = run_layer(fst, x, state, lengths, dy, dstate)
    for g, w in zip(got, want):
        assert rel_err(g, w) <= TOL[dtype]
    fst.eval()  # no dropout here, so eval and train compute the same; eval keeps no cache
    got_eval = run_layer(fst, x, state, lengths, dy, dstate)
    for g, w in zip(got_eval, want):
        assert rel_err(g, w) <= TOL[dtype]


@needs_numba
@pytest.mark.parametrize("kind", ["lstm", "rnn_relu"])
def test_step_fast_equals_reference(kind):
    ref, fst = make_pair(kind, np.float64, 11, num_layers=2)
    rng = np.random.default_rng(5)
    s_ref = s_fst = None
    for t in range(4):
        x_t = rng.normal(size=(3, 3))
        y_ref, s_ref = ref.step(x_t, s_ref)
        y_fst, s_fst = fst.step(x_t, s_fst)
        assert rel_err(y_fst, y_ref) <= 1e-12
    y_ref, _ = ref.step(x_t[0], None)  # unbatched
    y_fst, _ = fst.step(x_t[0], None)
    assert rel_err(y_fst, y_ref) <= 1e-12


@pytest.fixture(params=["0", "1"])
def stream_pair(request, monkeypatch):
    """Runs a test with the LSTM's two-thread streaming step off ("0") and forced on ("1")."""
    monkeypatch.setenv("LSTMLAB_STREAM_PAIR", request.param)
    fast._stream_pair_memo.clear()
    request.addfinalizer(fast._stream_pair_memo.clear)
    return request.param


@needs_numba
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("kind", ["lstm", "rnn_tanh", "rnn_relu"])
def test_streaming_lane_equals_reference(kind, dtype, stream_pair):
    """``step`` for B <= fast.STREAM_ROWS runs one compiled call for all layers with the
    matrix products inside (the LSTM's on one thread or two); B = 5 takes them to BLAS. All
    must equal the reference step by step, with and without bias, batched and unbatched,
    from a given and from a zero state."""
    rng = np.random.default_rng(31)
    for bias in (True, False):
        ref, fst = make_pair(kind, dtype, 12, num_layers=2, bias=bias)
        for B in (1, 2, fast.STREAM_ROWS, fast.STREAM_ROWS + 1):
            shape = (2, B, 5)
            s0 = rng.normal(size=shape).astype(dtype)
            s_ref = s_fst = (s0, -s0) if kind == "lstm" else s0
            for t in range(3):
                x_t = rng.normal(size=(B, 3)).astype(dtype)
                y_ref, s_ref = ref.step(x_t, s_ref)
                y_fst, s_fst = fst.step(x_t, s_fst)
                assert y_fst.shape == y_ref.shape == (B, 5)
                assert rel_err(y_fst, y_ref) <= TOL[dtype]
                for a, b in zip(s_fst if kind == "lstm" else (s_fst,),
                                s_ref if kind == "lstm" else (s_ref,)):
                    assert a.shape == shape and rel_err(a, b) <= TOL[dtype]
        y_ref, s_ref = ref.step(x_t[0], None)  # unbatched: (D,) in, (H,) and (L, H) out
        y_fst, s_fst = fst.step(x_t[0], None)
        assert y_fst.shape == (5,) and rel_err(y_fst, y_ref) <= TOL[dtype]
        y_ref, _ = ref.step(x_t[1], s_ref)
        y_fst, _ = fst.step(x_t[1], s_fst)
        assert rel_err(y_fst, y_ref) <= TOL[dtype]


@needs_numba
@pytest.mark.parametrize("kind", ["lstm", "rnn_tanh"])
def test_streaming_lane_outputs_are_the_callers(kind):
    """The lane allocates h_n and c_n together (one array, indexed): the state it returns
    must not share memory with the state it was given or with y, so a caller who keeps an old
    state, or edits y or one half of the new state, changes nothing else."""
    rng = np.random.default_rng(5)
    _, layer = make_pair(kind, np.float32, 8, num_layers=2)
    s0 = rng.normal(size=(2, 1, 5)).astype(np.float32)  # (L, B, H)
    state = (s0, -s0) if kind == "lstm" else s0
    kept = [a.copy() for a in (state if kind == "lstm" else (state,))]
    x = rng.normal(size=(1, 3)).astype(np.float32)
    y, new = layer.step(x, state)
    parts = new if kind == "lstm" else (new,)
    for old, k in zip(state if kind == "lstm" else (state,), kept):
        assert np.array_equal(old, k)  # the given state is read, never written
        assert not any(np.shares_memory(old, p) for p in parts)
    assert not any(np.shares_memory(y, p) for p in parts)
    if kind == "lstm":
        before = parts[1].copy()
        parts[0][...] = 7.0  # editing h_n leaves c_n as it was
        assert np.array_equal(parts[1], before)
    y2, _ = layer.step(x, new)
    y[...] = 0.0  # y is the caller's: the next step does not see it
    y3, _ = layer.step(x, new)
    assert np.array_equal(y2, y3)


@needs_numba
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_stream_pair_gives_the_same_bits_and_shares_the_steps(dtype, monkeypatch):
    """The two-thread streaming step computes every output element with the same code as the
    one-thread step: the same bits, whether the helper took part in a step or not — after
    its first wake it does, after it was sent back to sleep the next steps run alone until
    it is back. Odd H (unequal halves), H = 2,
    several layers and rows."""
    calls = {"wake": 0}
    helper = fast.stream_helper
    real_wake = helper.wake

    def counting_wake():
        calls["wake"] += 1
        real_wake()
    monkeypatch.setattr(helper, "wake", counting_wake)
    # the helper waits ~seconds for a step: a stall of the machine between two steps does not
    # send it to sleep (and its way back, which needs the GIL, can take the main thread's
    # switch interval, 5 ms: many steps)
    monkeypatch.setattr(fast, "STREAM_IDLE_CYCLES", 10 ** 10)
    request_stop = helper.stop
    rng = np.random.default_rng(21)
    for D, H, L, B in [(6, 37, 3, 4), (16, 64, 1, 1), (3, 2, 2, 2), (9, 130, 2, 3)]:
        layer = lstmlab.LSTM(D, H, num_layers=L, dtype=dtype, rng=rng).eval()
        xs = rng.normal(size=(40, B, D)).astype(dtype)
        s0 = rng.normal(size=(L, B, H)).astype(dtype)
        runs = {}
        for mode in ("0", "1"):
            monkeypatch.setenv("LSTMLAB_STREAM_PAIR", mode)
            fast._stream_pair_memo.clear()
            calls["wake"] = 0
            state, ys = (s0, -s0), []
            for t in range(len(xs)):
                if mode == "1" and t == 25:  # idle: the helper leaves its wait
                    helper.stop()
                    deadline = time.monotonic() + 5
                    while helper.waiting and time.monotonic() < deadline:
                        time.sleep(0.001)
                    assert not helper.waiting
                y, state = layer.step(xs[t], state)
                ys.append(y)
                if mode == "1" and t in (0, 25):  # give the helper time to arrive
                    deadline = time.monotonic() + 120
                    while not helper.waiting and time.monotonic() < deadline:
                        time.sleep(0.001)
            runs[mode] = (np.array(ys), *state)
            if mode == "1":
                # the first step and the one after the pause ran alone (and woke the helper);
                # the others were shared
                assert calls["wake"] == 2, calls
            else:
                assert calls["wake"] == 0
            request_stop()  # and wait until it sleeps: the next run's first step runs alone
            deadline = time.monotonic() + 5
            while helper.waiting and time.monotonic() < deadline:
                time.sleep(0.001)
        assert all(np.array_equal(a, b) for a, b in zip(runs["0"], runs["1"])), (D, H, L, B)
    fast._stream_pair_memo.clear()


@needs_numba
def test_stream_pair_rule_and_the_pair_stops_the_helper(monkeypatch):
    """Two threads for streaming from H = 256 (at H = 128 they measured no faster), on two
    CPUs with BLAS allowed two threads; the switches; at most STREAM_MAX_LAYERS layers. A
    helper left waiting is sent back to sleep when the pair starts (it would take a core)."""
    threadpoolctl = pytest.importorskip("threadpoolctl")
    monkeypatch.delenv("LSTMLAB_THREADS", raising=False)
    nb = fast.kernels()
    for mode, H, L, want in [("1", 8, 1, True), ("1", 8, nb.STREAM_MAX_LAYERS + 1, False),
                             ("0", 512, 1, False), ("", 128, 1, False)]:
        monkeypatch.setenv("LSTMLAB_STREAM_PAIR", mode)
        fast._stream_pair_memo.clear()
        assert fast.stream_pair(H, L) is want
    monkeypatch.setenv("LSTMLAB_STREAM_PAIR", "1")
    monkeypatch.setenv("LSTMLAB_THREADS", "2")
    fast._stream_pair_memo.clear()
    assert not fast.stream_pair(256, 1)
    monkeypatch.delenv("LSTMLAB_THREADS")
    monkeypatch.setenv("LSTMLAB_STREAM_PAIR", "")
    fast._stream_pair_memo.clear()
    if fast._cpus() >= 2 and (fast.blas_threads() or 1) >= 2:
        assert fast.stream_pair(256, 2)
        with threadpoolctl.threadpool_limits(1, user_api="blas"):
            fast._stream_pair_memo.clear()
            assert not fast.stream_pair(256, 2)
    fast._stream_pair_memo.clear()
    # the pair stops a waiting helper
    monkeypatch.setattr(fast, "STREAM_IDLE_CYCLES", 10 ** 12)  # it would wait ~minutes
    try:
        fast.stream_helper.wake()
        deadline = time.monotonic() + 120
        while not fast.stream_helper.waiting and time.monotonic() < deadline:
            time.sleep(0.001)
        assert fast.stream_helper.waiting
        monkeypatch.setenv("LSTMLAB_PAIR", "1")
        x = np.ones((3, 2, 4), np.float32)
        lstmlab.LSTM(4, 6, dtype=np.float32, rng=np.random.default_rng(0)).forward(x)
        deadline = time.monotonic() + 5
        while fast.stream_helper.waiting and time.monotonic() < deadline:
            time.sleep(0.001)
        assert not fast.stream_helper.waiting
    finally:
        fast.stream_helper.stop()  # never leave a helper spinning for the tests after this


@needs_numba
def test_stream_pair_in_a_forked_child():
    """A child forked while the helper waits has no helper thread: it gets a new one (or
    none), and its streaming steps neither hang nor differ."""
    import multiprocessing as mp
    if "fork" not in mp.get_all_start_methods():
        pytest.skip("no fork on this platform")
    script = (
        "import os, time, numpy as np, lstmlab\n"
        "from lstmlab.kernels import fast\n"
        "os.environ['LSTMLAB_STREAM_PAIR'] = '1'\n"
        "fast.STREAM_IDLE_CYCLES = 10 ** 12\n"
        "layer = lstmlab.LSTM(5, 9, dtype=np.float64, rng=np.random.default_rng(0)).eval()\n"
        "x = np.ones((1, 5))\n"
        "y0, s = layer.step(x)\n"
        "deadline = time.monotonic() + 120\n"
        "while not fast.stream_helper.waiting and time.monotonic() < deadline:\n"
        "    time.sleep(0.001)\n"
        "assert fast.stream_helper.waiting\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    ys = [layer.step(x, s)[0] for _ in range(50)]\n"
        "    os._exit(0 if all(np.array_equal(v, ys[0]) for v in ys) else 3)\n"
        "_, status = os.waitpid(pid, 0)\n"
        "fast.stream_helper.stop()\n"
        "print('child', os.waitstatus_to_exitcode(status))\n")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    assert "child 0" in out.stdout


@needs_numba
def test_streaming_lane_matches_torch_cell():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(8)
    layer = lstmlab.LSTM(6, 7, dtype=np.float64, rng=rng)
    layer.backend = "fast"
    cell = torch.nn.LSTMCell(6, 7, dtype=torch.float64)
    sd = layer.torch_state_dict()
    with torch.no_grad():
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(cell, name).copy_(torch.from_numpy(sd[name + "_l0"]))
    h, c = rng.normal(size=(1, 7)), rng.normal(size=(1, 7))
    state, tstate = (h[None], c[None]), (torch.from_numpy(h), torch.from_numpy(c))
    for t in range(20):
        x = rng.normal(size=(1, 6))
        y, state = layer.step(x, state)
        tstate = cell(torch.from_numpy(x), tstate)
        assert rel_err(y, tstate[0].detach().numpy()) <= 1e-12
        assert rel_err(state[1][0], tstate[1].detach().numpy()) <= 1e-12


@needs_numba
@pytest.mark.parametrize("kind", ["lstm", "rnn_tanh"])
def test_streaming_lane_rejects_nan_and_converts_what_it_can(kind, stream_pair):
    ref, fst = make_pair(kind, np.float64, 3)
    x = np.ones((2, 3))
    s = np.zeros((1, 2, 5))
    state = (s, s) if kind == "lstm" else s
    with pytest.raises(ValueError, match="x_t contains NaN or inf"):
        fst.step(np.array([[1.0, np.nan, 0.0], [0, 0, 0]]), state)
    bad = s.copy()
    bad[0, 1, 4] = np.inf
    if kind == "lstm":
        with pytest.raises(ValueError, match=r"state\[0\] \(h\) contains NaN or inf"):
            fst.step(x, (bad, s))
        with pytest.raises(ValueError, match=r"state\[1\] \(c\) contains NaN or inf"):
            fst.step(x, (s, bad))
    else:
        with pytest.raises(ValueError, match="state contains NaN or inf"):
            fst.step(x, bad)
    # float32 input, a list state, a Fortran-ordered x: converted by the general path
    y_ref, _ = ref.step(x, state)
    for x_in, s_in in ((x.astype(np.float32), state), (np.asfortranarray(x), state),
                       (x, list(state) if kind == "lstm" else state)):
        y_fst, _ = fst.step(x_in, s_in)
        assert rel_err(y_fst, y_ref) <= 1e-12
    with pytest.raises(ValueError, match="x_t must have 3 features"):
        fst.step(np.ones((2, 4)), state)


@needs_numba
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_packed_product_equals_blas(dtype):
    """The register-tiled kernel on packed weights: every tile height (rows 1..13), both
    accumulate modes, against np.dot."""
    rng = np.random.default_rng(7)
    nb = fast.kernels()
    nr = 64 // np.dtype(dtype).itemsize
    for rows in range(1, 14):
        K, N = int(rng.integers(1, 40)), nr * int(rng.integers(1, 4))
        a = rng.normal(size=(rows, K)).astype(dtype)
        W = rng.normal(size=(K, N)).astype(dtype)
        wp = fast.pack_panels(W)
        assert wp.shape == (N // nr, K, nr)
        np.testing.assert_array_equal(wp[1 % wp.shape[0], :, 3], W[:, (1 % wp.shape[0]) * nr + 3])
        c0 = rng.normal(size=(rows, N)).astype(dtype)
        want = a.astype(np.float64) @ W.astype(np.float64)
        for accumulate in (False, True):
            c = c0.copy()
            nb.packed_product(a, wp, c, accumulate)
            expect = want + c0 if accumulate else want
            assert rel_err(c, expect) <= (1e-14 if dtype == np.float64 else 1e-6), (rows, K, N)


@needs_numba
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_pair_packs_its_units_as_pack_panels_would(dtype):
    """A pair thread's share of Wh, packed by the thread itself: its units' columns gate after
    gate, in panels (_pack_units; both branches: units a whole number of panels, and panels
    straddling two gates), and the backward's transposed rows (_transpose_pack_units)."""
    nb = fast.kernels()
    nr = 64 // np.dtype(dtype).itemsize
    rng = np.random.default_rng(11)
    for H, u0, u1 in ((2 * nr, 0, nr), (2 * nr, nr, 2 * nr), (3 * nr, nr, 3 * nr),
                      (nr + 4, 0, nr), (nr + 4, nr, nr + 4), (nr, 0, nr // 4)):
        W = rng.normal(size=(H, 4 * H)).astype(dtype)
        cols = np.concatenate([W[:, q * H + u0:q * H + u1] for q in range(4)], axis=1)
        out = np.full((4 * (u1 - u0) // nr, H, nr), np.nan, dtype)
        nb.pack_units(W, H, u0, u1, out)
        np.testing.assert_array_equal(out, fast.pack_panels(cols), err_msg=str((H, u0, u1)))
        if (u1 - u0) % nr == 0:
            outT = np.full(((u1 - u0) // nr, 4 * H, nr), np.nan, dtype)
            nb.transpose_pack_units(W, u0, u1, outT)
            np.testing.assert_array_equal(outT, fast.pack_panels(np.ascontiguousarray(W[u0:u1].T)))


@needs_numba
def test_packed_product_is_chosen_where_the_product_runs_on_one_thread(monkeypatch):
    threadpoolctl = pytest.importorskip("threadpoolctl")
    monkeypatch.delenv("LSTMLAB_PACKED", raising=False)
    W = np.ones((8, 32), np.float32)
    assert fast.packed_weights(W, 16, 2).shape == (2, 8, 16)  # split batch
    assert fast.packed_weights(W, 4, 2).shape[0] == 0  # few rows: vector-matrix products
    assert fast.packed_weights(W, 64, 2).shape[0] == 0  # many rows: BLAS as fast
    with pytest.raises(ValueError, match="multiple of 16 columns"):
        fast.pack_panels(np.ones((8, 24), np.float32))
    assert fast.packed_weights(np.ones((8, 24), np.float32), 16, 2).shape[0] == 0  # 24 % 16
    with threadpoolctl.threadpool_limits(1, user_api="blas"):
        assert fast.blas_threads() == 1
        assert fast.packed_weights(W, 16, 1).shape == (2, 8, 16)
    if (fast.blas_threads() or 1) > 1:  # BLAS's own threads do the product
        assert fast.packed_weights(W, 16, 1).shape[0] == 0
    monkeypatch.setenv("LSTMLAB_PACKED", "0")
    assert fast.packed_weights(W, 16, 2).shape[0] == 0


def _wait_until_no_other_thread_runs(seconds: float = 5.0) -> None:
    """Wait until no other thread of this process is running — OpenBLAS's worker and other
    libraries' pools (torch's, from earlier tests) busy-wait for a while after their calls —
    or skip the test."""
    fast._stop_blas_workers()
    deadline = time.monotonic() + seconds
    while fast._another_thread_running() and time.monotonic() < deadline:
        time.sleep(0.01)
    if fast._another_thread_running():
        pytest.skip("another thread of this process keeps running")


@needs_numba
def test_pair_is_chosen_only_where_it_can_serve(monkeypatch):
    """The two-thread unit split: halves on whole panels where possible; not with an explicit
    ``threads``, BLAS held to one thread, or another thread of the process running."""
    threadpoolctl = pytest.importorskip("threadpoolctl")
    monkeypatch.delenv("LSTMLAB_PAIR", raising=False)
    monkeypatch.delenv("LSTMLAB_THREADS", raising=False)
    assert fast.unit_halves(8, 100, np.float32, 1) is None
    assert fast.unit_halves(8, 100, np.float32, 2) is None
    assert fast.unit_halves(8, 1, np.float32, None) is None
    monkeypatch.setenv("LSTMLAB_PAIR", "1")
    assert fast.unit_halves(8, 100, np.float32, None) == [(0, 48), (48, 100)]  # 3 panels of 16
    assert fast.unit_halves(8, 100, np.float64, None) == [(0, 48), (48, 100)]  # 6 panels of 8
    assert fast.unit_halves(8, 3, np.float32, None) == [(0, 1), (1, 3)]
    monkeypatch.setenv("LSTMLAB_PAIR", "0")
    assert fast.unit_halves(8, 100, np.float32, None) is None
    monkeypatch.delenv("LSTMLAB_PAIR")
    with threadpoolctl.threadpool_limits(1, user_api="blas"):
        assert fast.unit_halves(16, 512, np.float32, None) is None
    if fast._cpus() < 2 or (fast.blas_threads() or 1) < 2:
        return
    _wait_until_no_other_thread_runs()
    # by default only where the benchmark measured a gain
    assert fast.unit_halves(16, 512, np.float32, None) == [(0, 256), (256, 512)]
    assert fast.unit_halves(16, 512, np.float64, None) == [(0, 256), (256, 512)]
    assert fast.unit_halves(64, 256, np.float32, None) == [(0, 128), (128, 256)]
    assert fast.unit_halves(16, 128, np.float32, None) is None
    assert fast.unit_halves(128, 256, np.float64, None) is None
    # the measured gains, and where it was slower or within the noise
    assert all(fast.pair_shape(B, H) for B, H in [(16, 512), (32, 256), (64, 256), (1, 256)])
    assert not any(fast.pair_shape(B, H) for B, H in [(32, 128), (8, 64), (1, 128), (64, 128),
                                                       (128, 128), (128, 256), (65, 512)])
    stop = threading.Event()

    def spin():  # a busy thread of the program's own
        while not stop.is_set():
            pass
    busy = threading.Thread(target=spin)
    busy.start()
    try:
        deadline = time.monotonic() + 5
        while not fast._another_thread_running() and time.monotonic() < deadline:
            time.sleep(0.001)
        # still the pair: the choice never depends on what else runs (results would)
        assert fast.unit_halves(16, 512, np.float32, None) == [(0, 256), (256, 512)]
        assert fast.pipe_backward(32, 128, np.float32, None)
    finally:
        stop.set()
        busy.join()


@needs_numba
@pytest.mark.parametrize("B, H", [(32, 128), (4, 256)])  # the pipelined backward, the pair
def test_results_do_not_depend_on_what_else_runs(B, H, monkeypatch):
    """A training step on a two-thread shape gives the same bits whether or not another
    thread of the program keeps a core busy: the schedule is chosen from the configuration,
    not from the moment (a run that sometimes fell back to one loop would not repeat)."""
    monkeypatch.delenv("LSTMLAB_PAIR", raising=False)
    monkeypatch.delenv("LSTMLAB_PIPE", raising=False)
    monkeypatch.delenv("LSTMLAB_PIPE_FORWARD", raising=False)
    monkeypatch.delenv("LSTMLAB_THREADS", raising=False)
    if fast._cpus() < 2 or (fast.blas_threads() or 1) < 2 or fast.gemm_address(np.float32) is None:
        pytest.skip("needs two CPUs and NumPy's OpenBLAS with two threads")
    rng = np.random.default_rng(6)
    layer = lstmlab.LSTM(8, H, dtype=np.float32, rng=rng)
    x = rng.normal(size=(5, B, 8)).astype(np.float32)
    dy = rng.normal(size=(5, B, H)).astype(np.float32)

    def step():
        monkeypatch.setattr(fast, "pair_cycles", [])
        y, _ = layer.forward(x)
        dx, _ = layer.backward(dy)
        kinds = {k for k, _ in fast.pair_cycles}
        return [y, dx, *(g.copy() for g in layer.grads().values())], kinds

    quiet, kinds = step()
    assert kinds & {"pipe backward", "backward"}  # a two-thread schedule ran
    assert kinds & {"pipe forward", "forward"}  # for both halves of the step
    stop = threading.Event()

    def spin():
        while not stop.is_set():
            pass
    busy = threading.Thread(target=spin)
    busy.start()
    try:
        for _ in range(3):
            loud, kinds_loud = step()
            assert kinds_loud == kinds
            assert all(np.array_equal(a, b) for a, b in zip(loud, quiet))
    finally:
        stop.set()
        busy.join()


@needs_numba
@pytest.mark.parametrize("switch, chosen", [("LSTMLAB_PIPE", fast.pipe_backward),
                                            ("LSTMLAB_PIPE_FORWARD", fast.pipe_forward)])
def test_pipe_is_chosen_only_where_it_can_serve(switch, chosen, monkeypatch):
    """The pipelined backward and forward: never with an explicit ``threads`` or BLAS held to
    one thread; by default on the shapes where they measured faster (the same for both), and
    not where the pair serves; each its own switch."""
    threadpoolctl = pytest.importorskip("threadpoolctl")
    for var in ("LSTMLAB_PIPE", "LSTMLAB_PIPE_FORWARD", "LSTMLAB_THREADS", "LSTMLAB_PAIR"):
        monkeypatch.delenv(var, raising=False)
    assert not chosen(32, 128, np.float32, 1)
    assert not chosen(32, 128, np.float32, 2)
    monkeypatch.setenv(switch, "1")
    assert chosen(3, 5, np.float64, None)
    assert not chosen(3, 5, np.float64, 1)
    monkeypatch.setenv(switch, "0")
    assert not chosen(32, 128, np.float32, None)
    monkeypatch.delenv(switch)
    with threadpoolctl.threadpool_limits(1, user_api="blas"):
        assert not chosen(32, 128, np.float32, None)
    # the measured gains, and where it was slower or within the noise (or the pair serves)
    assert all(fast.pipe_shape(B, H) for B, H in [(32, 128), (64, 128), (128, 128), (128, 256)])
    assert not any(fast.pipe_shape(B, H) for B, H in [(16, 128), (8, 128), (8, 64), (16, 64),
                                                       (1, 128), (32, 64), (16, 512),
                                                       (64, 256)])
    if fast._cpus() < 2 or (fast.blas_threads() or 1) < 2:
        return
    _wait_until_no_other_thread_runs()
    assert chosen(32, 128, np.float32, None)
    assert chosen(128, 128, np.float64, None)
    assert not chosen(16, 128, np.float32, None)
    other = "LSTMLAB_PIPE_FORWARD" if switch == "LSTMLAB_PIPE" else "LSTMLAB_PIPE"
    monkeypatch.setenv(other, "0")  # one switch does not turn off the other
    assert chosen(32, 128, np.float32, None)


@needs_numba
def test_inference_is_never_pipelined(monkeypatch):
    """An inference keeps no cache and never takes the pipelined forward (its one loop
    projects chunk by chunk): its outputs are the same bits with the pipeline forced on and
    off, and no two-thread schedule ran."""
    for var in ("LSTMLAB_PIPE", "LSTMLAB_THREADS", "LSTMLAB_PAIR", "LSTMLAB_INFER_SPLIT"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("LSTMLAB_PIPE_FORWARD", "1")
    rng = np.random.default_rng(4)
    layer = lstmlab.LSTM(6, 128, dtype=np.float32, rng=rng).eval()
    x = rng.normal(size=(3, 32, 6)).astype(np.float32)
    monkeypatch.setattr(fast, "pair_cycles", [])
    y = layer.forward(x)[0].copy()
    assert not fast.pair_cycles
    monkeypatch.setenv("LSTMLAB_PIPE_FORWARD", "0")
    assert np.array_equal(layer.forward(x)[0], y)


def test_pipe_forward_chunks_grow_from_one_step():
    """The projection's chunks: the first one step (the recurrence starts after one small
    GEMM), each next twice as long up to PIPE_FORWARD_MAX_ROWS rows, the last ending at T."""
    assert fast._pipe_forward_ends(1, 32).tolist() == [1]
    assert fast.PIPE_FORWARD_MAX_ROWS == 128
    assert fast._pipe_forward_ends(20, 32).tolist() == [1, 3, 7, 11, 15, 19, 20]
    cap = fast.PIPE_FORWARD_MAX_ROWS // 16
    ends = fast._pipe_forward_ends(100, 16)
    assert ends[-1] == 100 and np.all(np.diff(ends) <= cap) and np.all(np.diff(ends) > 0)
    assert np.diff(ends).tolist()[:4] == [2, 4, 8, 8]
    assert fast._pipe_forward_ends(5, 10 ** 6).tolist() == [1, 2, 3, 4, 5]  # a row cap < 1 step


@needs_numba
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_pipe_forward_is_deterministic_and_exact(dtype, monkeypatch):
    """The pipelined forward makes the same GEMM calls on every run (chunks fixed by T and B,
    whichever thread is ahead): repeated runs give the same bits; outputs, final state and
    cache equal the reference's, with padding, T = 1, B = 1, odd H, and B over the packed
    kernel's rows (BLAS then does the recurrent product)."""
    monkeypatch.setenv("LSTMLAB_PIPE_FORWARD", "1")
    monkeypatch.setenv("LSTMLAB_PAIR", "0")
    rng = np.random.default_rng(21)
    for T, B, D, H in [(9, 32, 5, 16), (1, 3, 4, 7), (12, 1, 3, 5), (6, 40, 2, 16)]:
        x, h0, c0, p, lengths, *_ = random_inputs(rng, T, B, D, H, 4, True, dtype)
        p = LSTMParams(*p)
        runs = [fast.lstm_forward(x, h0, c0, p, lengths) for _ in range(4)]
        for y, hT, cT, cache in runs[1:]:
            assert np.array_equal(y, runs[0][0]) and np.array_equal(hT, runs[0][1])
            assert np.array_equal(cT, runs[0][2]) and np.array_equal(cache.gates, runs[0][3].gates)
        want = lstm_forward(x, h0, c0, p, lengths)
        assert_close(runs[0][:3], want[:3], dtype, ["y", "hT", "cT"])


def _pipe_forward_args(x, h0, c0, Wx, Wh, b, lengths):
    """Both roles' arguments of ``lstm_forward_pipe``, sharing every array as
    ``fast._pipe_forward`` passes them (Wh not packed: BLAS does the recurrent product)."""
    T, B, D = x.shape
    H = Wh.shape[0]
    dtype = x.dtype
    h, c = np.zeros((T + 1, B, H), dtype), np.zeros((T + 1, B, H), dtype)
    h[0], c[0] = h0, c0
    ends = fast._pipe_forward_ends(T, B)
    shared = (fast.gemm_address(dtype), x.ctypes.data, D, Wx.ctypes.data, Wh,
              fast._empty_pack(dtype), b, np.zeros((T, B, 4 * H), dtype), h, c,
              np.zeros((T, B, H), dtype), lengths.astype(np.int64), ends,
              np.zeros(1 + len(ends), np.int64))
    return [(role,) + shared + (np.zeros(4, np.int64),) for role in (0, 1)]


def _run_roles(kernel, a0, a1, at_once, check_alone):
    """A pipeline kernel's two roles with BLAS on one thread, as the pair holds it: at once on
    two threads (``fast._run_pair``), or role 0 alone to the end, ``check_alone(a0)``, then
    role 1 — the extreme where the first thread takes every piece of shared work."""
    threadpoolctl = pytest.importorskip("threadpoolctl")
    with threadpoolctl.threadpool_limits(1, user_api="blas"):
        if at_once:
            fast._run_pair(kernel, a0, a1)
            return
        sync = np.zeros(2, np.int64)
        tail = (sync.ctypes.data, fast._sched_yield_address())
        assert kernel(*a0, *tail)
        check_alone(a0)
        assert kernel(*a1, *tail)


@needs_numba
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_pipe_forward_shares_out_the_projection(dtype):
    """The pipelined forward's two extremes, run one role after the other: the recurrence's
    thread first, alone, claims and projects every chunk itself; the projection's thread,
    run after it, finds none left. The outputs equal the reference's and are the same bits
    (float64 and float32) as when the two threads run at once, sharing the chunks as timing
    has it."""
    nb = fast.kernels()
    rng = np.random.default_rng(14)
    T, B, D, H = 9, 5, 4, 8
    x, h0, c0, p, lengths, *_ = random_inputs(rng, T, B, D, H, 4, True, dtype)
    Wx, Wh, b = (np.ascontiguousarray(a, dtype) for a in p)
    ends = fast._pipe_forward_ends(T, B)
    want = lstm_forward(x, h0, c0, LSTMParams(Wx, Wh, b), lengths)
    got = {}
    for how in ("one after the other", "at once"):
        a0, a1 = _pipe_forward_args(x, h0, c0, Wx, Wh, b, lengths)

        def alone(a0):  # role 0 alone claimed every chunk
            assert a0[14].tolist() == [len(ends)] + [1] * len(ends)
        _run_roles(nb.lstm_forward_pipe, a0, a1, how == "at once", alone)
        if how != "at once":  # and one claim more ended role 1 at once
            assert a0[14][0] == len(ends) + 1
        h = a0[9]
        got[how] = (h.copy(), a0[8].copy())
        y = h[1:] * (np.arange(T)[:, None] < lengths[None, :])[:, :, None]
        assert_close((y,), (want[0],), dtype, ["y"])
    assert all(np.array_equal(a, b) for a, b in zip(*got.values()))


@needs_numba
@pytest.mark.parametrize("failing", [0, 1])
def test_pipe_forward_fails_cleanly_when_one_thread_cannot_start(failing):
    """The pipelined forward: when the projection's call fails before entering compiled code,
    the recurrence, waiting for steps that will never be projected, is released; when the
    recurrence's call fails, the projection finishes alone. Either way the error reaches the
    caller and BLAS's thread count is restored."""
    nb = fast.kernels()
    rng = np.random.default_rng(8)
    T, B, D, H = 5, 3, 2, 4
    x, h0, c0, p, *_ = random_inputs(rng, T, B, D, H, 4, False, np.float64)
    Wx, Wh, b = (np.ascontiguousarray(a) for a in p)
    full = np.full(B, T, np.int64)

    def args():
        return _pipe_forward_args(x, h0, c0, Wx, Wh, b, full)
    a0, a1 = args()
    fast._run_pair(nb.lstm_forward_pipe, a0, a1)  # as built, it runs
    want = lstm_forward(x, h0, c0, LSTMParams(Wx, Wh, b))
    assert_close((a0[9][1:], a0[9][T], a0[10][T]), want[:3], np.float64, ["y", "hT", "cT"])
    before = fast.blas_threads()
    bad = args()
    bad[failing] = bad[failing][:5] + ("not an array",) + bad[failing][6:]
    with pytest.raises(Exception, match="(?i)typing|invalid|resolution|argument"):
        fast._run_pair(nb.lstm_forward_pipe, *bad)
    assert fast.blas_threads() == before


@needs_numba
@pytest.mark.parametrize("balance", ["1", "0"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_pipe_is_deterministic_and_skips_dx(dtype, balance, monkeypatch):
    """Which GEMMs are computed, on which arguments, and in which order the chunks of dWh are
    summed, is fixed (balanced: which thread runs a block of dWx or a chunk's dx is not, but
    either computes the same): repeated runs give the same bits. Without dx the other
    gradients are the same bits as with it. Chunks of one step each (B > PIPE_CHUNK_ROWS / 2
    rounds up to 1) and of several. ``balance`` "0": all of dWx on the recurrence's thread."""
    monkeypatch.setenv("LSTMLAB_PIPE", "1")
    monkeypatch.setenv("LSTMLAB_PAIR", "0")
    monkeypatch.setenv("LSTMLAB_PIPE_BALANCE", balance)
    rng = np.random.default_rng(9)
    for T, B, D, H in [(6, 200, 5, 16), (23, 12, 4, 16), (1, 7, 3, 5)]:
        x, h0, c0, p, lengths, dy, dhT, dcT = random_inputs(rng, T, B, D, H, 4, True, dtype)
        p = LSTMParams(*p)
        cache = fast.lstm_forward(x, h0, c0, p, lengths)[3]
        one = fast.lstm_backward(dy, dhT, dcT, cache)
        flat = lambda g: [g[0], g[1], g[2], *g[3]]  # noqa: E731
        for _ in range(4):
            two = fast.lstm_backward(dy, dhT, dcT, cache)
            assert all(np.array_equal(a, b) for a, b in zip(flat(one), flat(two)))
        lean = fast.lstm_backward(dy, dhT, dcT, cache, need_dx=False)
        assert lean[0] is None
        assert all(np.array_equal(a, b) for a, b in zip(flat(lean)[1:], flat(one)[1:]))
        ref = lstm_backward(dy, dhT, dcT, lstm_forward(x, h0, c0, p, lengths)[3])
        assert_close(tuple(flat(one)), tuple(flat(ref)), dtype,
                     ["dx", "dh0", "dc0", "dWx", "dWh", "db"])


@needs_numba
def test_busy_blas_workers_are_ended_for_the_pair(monkeypatch):
    """After a multi-threaded BLAS call OpenBLAS's worker busy-waits; with no other Python
    thread alive the fast path ends it (it would share the cores with the pair), the pair is
    chosen, and BLAS afterwards computes the same with its thread count unchanged."""
    monkeypatch.delenv("LSTMLAB_PAIR", raising=False)
    monkeypatch.delenv("LSTMLAB_THREADS", raising=False)
    if (fast.gemm_address(np.float32) is None or fast._cpus() < 2
            or (fast.blas_threads() or 1) < 2):
        pytest.skip("needs NumPy's OpenBLAS with two threads on two CPUs")
    others = [t for t in threading.enumerate() if t is not threading.current_thread()
              and not t.name.startswith(fast._PAIR_THREAD_NAME)]
    if others:
        pytest.skip(f"other Python threads are alive: {[t.name for t in others]}")
    _wait_until_no_other_thread_runs()
    a = np.random.default_rng(0).normal(size=(400, 400))
    want = a @ a  # multi-threaded: leaves the worker busy-waiting
    assert fast.unit_halves(16, 512, np.float32, None) == [(0, 256), (256, 512)]
    assert not fast._another_thread_running()
    before = fast.blas_threads()
    layer = lstmlab.LSTM(512, 512, dtype=np.float32, rng=np.random.default_rng(1))
    x = np.random.default_rng(2).normal(size=(3, 16, 512)).astype(np.float32)
    monkeypatch.setattr(fast, "pair_cycles", [])
    _ = a @ a
    y, _ = layer.forward(x)  # the pair, after ending the worker the product above woke
    assert [kind for kind, _ in fast.pair_cycles] == ["forward"]
    assert fast.blas_threads() == before
    np.testing.assert_array_equal(a @ a, want)  # BLAS starts its workers again
    with monkeypatch.context() as m:
        m.setenv("LSTMLAB_PAIR", "0")
        y1, _ = layer.forward(x)
    np.testing.assert_allclose(y, y1, rtol=1e-5, atol=1e-6)


@needs_numba
def test_two_thread_schedules_start_no_blas_worker(monkeypatch):
    """The pipelined training step holds BLAS to one thread by writing OpenBLAS's thread count
    (``fast._blas_thread_count``), not through ``openblas_set_num_threads``, which starts the
    workers again once they were ended: a step after the workers were ended adds no thread
    but the schedules' own, restores the count, and BLAS's next multi-threaded call starts
    its workers and computes what it computed before."""
    for var in ("LSTMLAB_PAIR", "LSTMLAB_PIPE", "LSTMLAB_PIPE_FORWARD", "LSTMLAB_THREADS"):
        monkeypatch.delenv(var, raising=False)
    if (fast.gemm_address(np.float32) is None or fast._cpus() < 2
            or (fast.blas_threads() or 1) < 2 or fast._blas_thread_count() is None):
        pytest.skip("needs NumPy's OpenBLAS with two threads on two CPUs")
    layer = lstmlab.LSTM(6, 128, dtype=np.float32, rng=np.random.default_rng(3))
    x = np.random.default_rng(4).normal(size=(4, 32, 6)).astype(np.float32)
    dy = np.random.default_rng(5).normal(size=(4, 32, 128)).astype(np.float32)
    a = np.random.default_rng(0).normal(size=(400, 400))
    want = a @ a
    layer.forward(x)  # the schedules' own thread exists from here on
    before = fast.blas_threads()
    if not fast._stop_blas_workers():
        pytest.skip("other Python threads are alive")
    threads = set(os.listdir("/proc/self/task"))
    monkeypatch.setattr(fast, "pair_cycles", [])
    layer.forward(x)
    layer.backward(dy)
    assert [k for k, _ in fast.pair_cycles] == ["pipe forward", "pipe backward"]
    assert set(os.listdir("/proc/self/task")) <= threads  # no OpenBLAS worker was started
    assert fast.blas_threads() == before
    np.testing.assert_array_equal(a @ a, want)


@needs_numba
def test_batch_split_ends_busy_blas_workers_first(monkeypatch):
    """``threads=2`` (the batch split) ends OpenBLAS's busy worker before its two halves
    start, as the pair does, and still computes what one thread computes."""
    pytest.importorskip("threadpoolctl")
    monkeypatch.delenv("LSTMLAB_PAIR", raising=False)
    if fast.gemm_address(np.float64) is None or (fast.blas_threads() or 1) < 2:
        pytest.skip("needs NumPy's OpenBLAS with two threads")
    calls = []
    real = fast._stop_blas_workers
    monkeypatch.setattr(fast, "_stop_blas_workers", lambda: calls.append(1) or real())
    monkeypatch.setattr(fast, "_another_thread_running", lambda: True)
    rng = np.random.default_rng(3)
    T, B, D, H = 4, 8, 5, 6
    x = rng.normal(size=(T, B, D))
    params = LSTMParams(rng.normal(size=(D, 4 * H)), rng.normal(size=(H, 4 * H)),
                        rng.normal(size=4 * H))
    h0, c0 = rng.normal(size=(B, H)), rng.normal(size=(B, H))
    y2, *_ = fast.lstm_forward(x, h0, c0, params, threads=2)
    assert calls == [1]
    y1, *_ = fast.lstm_forward(x, h0, c0, params, threads=1)
    assert calls == [1]  # one thread: nothing to end
    np.testing.assert_allclose(y2, y1, rtol=1e-12, atol=1e-12)


@needs_numba
def test_busy_blas_workers_are_left_alone_beside_another_python_thread(monkeypatch):
    """With another Python thread alive, a BLAS call may be in flight on OpenBLAS's workers:
    they are not ended (the pair still runs beside them: its choice never depends on
    timing)."""
    monkeypatch.delenv("LSTMLAB_PAIR", raising=False)
    if fast.gemm_address(np.float32) is None:
        pytest.skip("needs NumPy's OpenBLAS")
    stop = threading.Event()
    idle = threading.Thread(target=stop.wait)
    idle.start()
    try:
        assert fast._stop_blas_workers() is False
    finally:
        stop.set()
        idle.join()


@needs_numba
def test_pair_reports_its_time_split(monkeypatch):
    """With ``fast.pair_cycles`` a list, each pair call appends its two threads' cycle counts
    per phase (what ``bench_lstm.py --profile`` reports)."""
    monkeypatch.setenv("LSTMLAB_PAIR", "1")
    monkeypatch.setattr(fast, "pair_cycles", [])
    rng = np.random.default_rng(5)
    x, h0, c0, p, lengths, dy, dhT, dcT = random_inputs(rng, 6, 5, 4, 8, 4, True, np.float32)
    p = LSTMParams(*p)
    cache = fast.lstm_forward(x, h0, c0, p, lengths)[3]
    fast.lstm_forward(x, h0, c0, p, lengths, need_cache=False)
    fast.lstm_backward(dy, dhT, dcT, cache)
    assert [k for k, _ in fast.pair_cycles] == ["forward", "inference", "backward"]
    for _, counts in fast.pair_cycles:
        assert len(counts) == 2
        for c in counts:
            assert c.shape == (4,) and (c >= 0).all() and c.sum() > 0


@needs_numba
@pytest.mark.parametrize("failing", [0, 1])
def test_pair_fails_cleanly_when_one_thread_cannot_start(failing):
    """When one of the two calls fails before entering compiled code, the other one, waiting
    at the first barrier, is released, and the error reaches the caller (no hang)."""
    nb = fast.kernels()
    rng = np.random.default_rng(4)
    T, B, D, H = 3, 2, 3, 4
    x, h0, c0, (Wx, Wh, b), *_ = random_inputs(rng, T, B, D, H, 4, False, np.float64)
    h, c = np.zeros((T + 1, B, H)), np.zeros((2, B, H))
    tanh_c, lens = np.zeros((1, B, H)), np.full(B, T, np.int64)
    gemm = fast.gemm_address(np.float64)
    empty = fast._empty_pack(np.float64)
    Wxu = [np.empty((D, 8)), np.empty((D, 8))]
    z = [np.zeros((T, B, 8)), np.zeros((T, B, 8))]
    units, items = np.array([0, 2, 4], np.int64), np.zeros(1 + 2 * T, np.int64)
    args = [(part, gemm, x.ctypes.data, D, Wx, Wh, Wxu[0], empty, Wxu[1], empty,
             np.empty((H, 8)), empty, b, z[0], z[1], empty, h, c, tanh_c, lens, units, items,
             False, np.zeros(4, np.int64)) for part in (0, 1)]
    fast._run_pair(nb.lstm_forward_units, *args)  # as built, the pair runs
    y = h[1:].copy()
    want = lstm_forward(x, h0 * 0, c0 * 0, LSTMParams(Wx, Wh, b))[0]
    assert rel_err(y, want) <= TOL[np.float64]
    before = fast.blas_threads()
    items[:] = 0
    args[failing] = args[failing][:4] + ("not an array",) + args[failing][5:]
    with pytest.raises(Exception, match="(?i)typing|invalid|resolution|argument"):
        fast._run_pair(nb.lstm_forward_units, *args)
    assert fast.blas_threads() == before  # BLAS's thread count was restored


@needs_numba
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_pipe_shares_out_the_work_left_after_the_recurrence(dtype):
    """The balanced pipeline's two extremes, run one role after the other: the recurrence's
    thread first, alone, takes all of dWx's blocks and every chunk's dx; the GEMM thread, run
    after it, finds them claimed and adds only dWh. The gradients equal the reference's, and
    (float64 and float32) are the same bits as when the two threads run at once, sharing the
    work as timing has it."""
    nb = fast.kernels()
    rng = np.random.default_rng(12)
    T, B, D, H = 7, 3, 6, 8
    x, h0, c0, p, lengths, dy, dhT, dcT = random_inputs(rng, T, B, D, H, 4, True, dtype)
    cache = lstm_forward(x, h0, c0, LSTMParams(*p), lengths)[3]
    gemm = fast.gemm_address(dtype)
    Tc = 2

    def args():  # both roles share every array, as fast._pipe_backward passes them
        shared = (gemm, np.zeros((B, H), dtype), dhT.astype(dtype), dy, np.array(dcT, dtype),
                  cache.gates, cache.tanh_c, cache.c, np.zeros((T, B, 4 * H), dtype),
                  np.ascontiguousarray(p[1].T), fast._empty_pack(dtype), lengths.astype(np.int64), x, cache.h,
                  p[0], np.zeros((D, 4 * H), dtype), np.zeros((H, 4 * H), dtype),
                  np.zeros((T, B, D), dtype), Tc, True, np.zeros(1 + -(-T // Tc), np.int64))
        return [(role,) + shared + (np.zeros(4, np.int64),) for role in (0, 1)]
    want = lstm_backward(dy, dhT, dcT, cache)
    got = {}
    for how in ("one after the other", "at once"):
        a0, a1 = args()

        def alone(a0):  # role 0 alone: four dWx blocks and a fifth claim that found none; every dx
            assert a0[21].tolist() == [5] + [1] * (len(a0[21]) - 1)
        _run_roles(nb.lstm_backward_pipe, a0, a1, how == "at once", alone)
        got[how] = (a0[18], a0[16], a0[17])
        assert_close(got[how], (want[0], want[3][0], want[3][1]), dtype, ["dx", "dWx", "dWh"])
    assert all(np.array_equal(a, b) for a, b in zip(*got.values()))


@needs_numba
@pytest.mark.parametrize("failing", [0, 1])
def test_pipe_fails_cleanly_when_one_thread_cannot_start(failing):
    """The pipelined backward: when the recurrence's call fails before entering compiled code,
    the other thread, waiting for steps that will never come, is released; when the GEMMs'
    call fails, the recurrence finishes alone. Either way the error reaches the caller."""
    nb = fast.kernels()
    rng = np.random.default_rng(5)
    T, B, D, H = 4, 3, 2, 5
    x, h0, c0, p, lengths, dy, dhT, dcT = random_inputs(rng, T, B, D, H, 4, False, np.float64)
    cache = lstm_forward(x, h0, c0, LSTMParams(*p))[3]
    gemm = fast.gemm_address(np.float64)

    def args():  # both threads share every array, as fast._pipe_backward passes them
        shared = (gemm, np.zeros((B, H)), dhT, dy, np.array(dcT), cache.gates, cache.tanh_c,
                  cache.c, np.zeros((T, B, 4 * H)), np.ascontiguousarray(p[1].T),
                  fast._empty_pack(np.float64), np.full(B, T, np.int64), x, cache.h, p[0],
                  np.zeros((D, 4 * H)), np.zeros((H, 4 * H)), np.zeros((T, B, D)), 2, True, np.zeros(3, np.int64))
        return [(role,) + shared + (np.zeros(4, np.int64),) for role in (0, 1)]
    a0, a1 = args()
    fast._run_pair(nb.lstm_backward_pipe, a0, a1)  # as built, it runs
    want = lstm_backward(dy, dhT, dcT, cache)
    assert_close((a0[18], a0[16], a0[17]), (want[0], want[3][0], want[3][1]), np.float64,
                 ["dx", "dWx", "dWh"])
    before = fast.blas_threads()
    bad = args()
    bad[failing] = bad[failing][:6] + ("not an array",) + bad[failing][7:]
    with pytest.raises(Exception, match="(?i)typing|invalid|resolution|argument"):
        fast._run_pair(nb.lstm_backward_pipe, *bad)
    assert fast.blas_threads() == before


@needs_numba
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_inference_splits_the_batch_where_it_measured_faster(dtype, monkeypatch):
    """An inference of >= 128 rows splits the batch on two threads by default (not where the
    pair serves, not with explicit threads or BLAS held to one thread, never a training
    forward); forced on every shape, it equals the reference (padding, B = 1 and 3, odd H),
    and two runs give the same bits."""
    threadpoolctl = pytest.importorskip("threadpoolctl")
    monkeypatch.delenv("LSTMLAB_THREADS", raising=False)
    monkeypatch.delenv("LSTMLAB_INFER_SPLIT", raising=False)
    assert not fast.infer_split(64, 128, dtype, None)
    assert not fast.infer_split(128, 128, dtype, 1)
    assert not fast.infer_split(128, 128, dtype, 2)
    with threadpoolctl.threadpool_limits(1, user_api="blas"):
        assert not fast.infer_split(128, 128, dtype, None)
    if fast._cpus() >= 2 and (fast.blas_threads() or 1) >= 2:
        assert fast.infer_split(128, 128, dtype, None)
        assert fast.infer_split(256, 512, dtype, None)
    monkeypatch.setenv("LSTMLAB_INFER_SPLIT", "0")
    assert not fast.infer_split(128, 128, dtype, None)
    monkeypatch.setenv("LSTMLAB_INFER_SPLIT", "1")
    monkeypatch.setenv("LSTMLAB_PAIR", "0")
    assert fast.infer_split(3, 5, dtype, None)
    rng = np.random.default_rng(17)
    for T, B, D, H, use_lengths in [(7, 9, 4, 5, True), (1, 1, 3, 6, False), (12, 3, 6, 17, True)]:
        x, h0, c0, p, lengths, *_ = random_inputs(rng, T, B, D, H, 4, use_lengths, dtype)
        p = LSTMParams(*p)
        ref = lstm_forward(x, h0, c0, p, lengths)
        got = fast.lstm_forward(x, h0, c0, p, lengths, need_cache=False)
        assert_close(got[:3], ref[:3], dtype, ["y", "hT", "cT"])
        again = fast.lstm_forward(x, h0, c0, p, lengths, need_cache=False)
        assert all(np.array_equal(a, b) for a, b in zip(got[:3], again[:3]))


@needs_numba
@pytest.mark.parametrize("time_loop", LOOPS, indirect=True)
def test_batch_split_over_threads_gives_the_same_result(time_loop):
    rng = np.random.default_rng(2)
    x, h0, c0, p, lengths, dy, dhT, dcT = random_inputs(rng, 5, 20, 4, 6, 4, True, np.float64)
    p = LSTMParams(*p)
    one = fast.lstm_forward(x, h0, c0, p, lengths, threads=1)
    two = fast.lstm_forward(x, h0, c0, p, lengths, threads=2)
    assert [len(s) for s in [range(20)[sl] for sl in fast.split_batch(20, 6, 2)]] == [10, 10]
    assert_close(two[:3], one[:3], np.float64, ["y", "hT", "cT"])
    g1 = fast.lstm_backward(dy, dhT, dcT, one[3], threads=1)
    g2 = fast.lstm_backward(dy, dhT, dcT, two[3], threads=2)
    assert_close(g2[:3] + tuple(g2[3]), g1[:3] + tuple(g1[3]), np.float64, ["dx", "dh0", "dc0"])
    # inference, and halves of 3 rows (the recurrent product without BLAS) next to halves of 10
    for B in (6, 20):
        x, h0, c0, p, lengths, *_ = random_inputs(rng, 9, B, 4, 6, 4, True, np.float64)
        p = LSTMParams(*p)
        ref = lstm_forward(x, h0, c0, p, lengths)
        for threads in (1, 2):
            got = fast.lstm_forward(x, h0, c0, p, lengths, need_cache=False, threads=threads)
            assert_close(got[:3], ref[:3], np.float64, ["y", "hT", "cT"])
        # the RNN's loops, split the same way
        x, h0, _, p, lengths, dy, dhT, _ = random_inputs(rng, 9, B, 4, 6, 1, True, np.float64)
        p = RNNParams(*p)
        ref = rnn_forward(x, h0, p, "tanh", lengths)
        gref = rnn_backward(dy, dhT, ref[2])
        got = fast.rnn_forward(x, h0, p, "tanh", lengths, threads=2)
        ggot = fast.rnn_backward(dy, dhT, got[2], threads=2)
        assert_close(got[:2] + ggot[:2] + tuple(ggot[2]), ref[:2] + gref[:2] + tuple(gref[2]),
                     np.float64, ["y", "hT", "dx", "dh0", "dWx", "dWh", "db"])


@needs_numba
@pytest.mark.parametrize("pipe", ["0", "1"])
def test_layer_matches_torch_on_the_fast_path(pipe, monkeypatch):
    """Both directions of both layers through the fast kernels, with the pipelined backward
    forced (``1``) or off."""
    monkeypatch.setenv("LSTMLAB_PIPE", pipe)
    pytest.importorskip("torch")
    from torch_ref import make_torch_twin, torch_run

    for dtype in (np.float64, np.float32):
        rng = np.random.default_rng(21)
        layer = lstmlab.LSTM(4, 6, num_layers=2, bidirectional=True, batch_first=True,
                             dtype=dtype, rng=rng)
        layer.backend = "fast"
        mod = make_torch_twin(layer, rng)
        T, B = 7, 18
        x = rng.normal(size=(B, T, 4)).astype(dtype)
        state = tuple(rng.normal(size=(4, B, 6)).astype(dtype) for _ in range(2))
        lengths = rng.integers(1, T + 1, size=B)
        lengths[0] = T
        dy = rng.normal(size=(B, T, 12)).astype(dtype)
        dstate = tuple(rng.normal(size=(4, B, 6)).astype(dtype) for _ in range(2))
        y, fin = layer.forward(x, state, lengths)
        dx, dinit = layer.backward(dy, dstate)
        ty, tfin, tdx, tdinit, tgrads = torch_run(mod, x, state, lengths, dy, dstate)
        for g, w in [(y, ty), (fin[0], tfin[0]), (fin[1], tfin[1]), (dx, tdx),
                     (dinit[0], tdinit[0]), (dinit[1], tdinit[1])]:
            assert rel_err(g, w) <= TOL[dtype]
        ours = layer.torch_state_dict(grads=True)
        for k, w in tgrads.items():
            assert rel_err(ours[k], w) <= TOL[dtype], k


# -- without numba ------------------------------------------------------------------------------
def test_fallback_when_numba_is_missing(monkeypatch):
    """With numba unavailable everything runs on the reference kernels, silently; asking for
    the fast backend explicitly is a clear error."""
    monkeypatch.setitem(fast._state, "checked", True)
    monkeypatch.setitem(fast._state, "ok", False)
    assert not fast.available()
    rng = np.random.default_rng(0)
    layer = lstmlab.LSTM(3, 4, dtype=np.float64, rng=rng)
    x = rng.normal(size=(5, 2, 3))
    y, (h, c) = layer.forward(x)
    dx, _ = layer.backward(np.ones_like(y))
    want = lstm_forward(x, np.zeros((2, 4)), np.zeros((2, 4)), layer._layer_params("l0"))
    assert np.array_equal(y, want[0])
    layer.step(x[0])
    layer.backend = "fast"
    with pytest.raises(RuntimeError, match="numba"):
        layer.forward(x)
    layer.backend = "blas"
    with pytest.raises(ValueError, match="backend"):
        layer.forward(x)


@needs_numba
def test_gemm_lookup_falls_back_to_the_python_loop(monkeypatch):
    """No usable cblas_?gemm (another BLAS build, or LSTMLAB_FAST_LOOP=0): the address is None
    and the fast kernels still give the reference's results through the Python time loop."""
    monkeypatch.setattr(fast, "_gemm_state", {})
    monkeypatch.setitem(fast._GEMM_SYMBOLS, np.dtype(np.float64), "no_such_symbol")
    assert fast.gemm_address(np.float64) is None
    monkeypatch.setattr(fast, "_gemm_state", {})
    monkeypatch.setenv("LSTMLAB_FAST_LOOP", "0")
    assert fast.gemm_address(np.float32) is None
    assert fast.gemm_address(np.float64) is None
    rng = np.random.default_rng(4)
    x, h0, c0, p, lengths, dy, dhT, dcT = random_inputs(rng, 6, 7, 3, 5, 4, True, np.float64)
    p = LSTMParams(*p)
    ref, got = lstm_forward(x, h0, c0, p, lengths), fast.lstm_forward(x, h0, c0, p, lengths)
    assert_close(got[:3], ref[:3], np.float64, ["y", "hT", "cT"])
    gref, ggot = lstm_backward(dy, dhT, dcT, ref[3]), fast.lstm_backward(dy, dhT, dcT, got[3])
    assert_close(ggot[:3], gref[:3], np.float64, ["dx", "dh0", "dc0"])


def test_environment_switch_disables_the_fast_path(monkeypatch):
    monkeypatch.setenv("LSTMLAB_FAST", "0")
    monkeypatch.setitem(fast._state, "checked", False)  # the answer is computed once per process
    monkeypatch.setitem(fast._state, "ok", False)
    assert not fast.available()
    with pytest.raises(RuntimeError, match="numba"):
        fast.lstm_forward(np.zeros((1, 1, 1)), np.zeros((1, 1)), np.zeros((1, 1)),
                          LSTMParams(np.zeros((1, 4)), np.zeros((1, 4)), None))


def test_import_and_help_do_not_import_numba():
    code = ("import sys, contextlib, io, lstmlab\n"
            "from lstmlab.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
            "    main(['--help'])\n"
            "assert 'numba' not in sys.modules, 'numba imported'\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
