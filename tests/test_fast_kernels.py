"""The compiled fast kernels (``lstmlab.kernels.fast``) against the NumPy reference and PyTorch.

Every cell (LSTM, RNN tanh/relu, GRU, the peephole LSTM with and without clip, coupled gates
and peepholes) through every loop (training forward and backward, inference, the streaming step),
on randomized shapes including T=1, B=1 and odd H, variable lengths, non-zero biases and
initial states, random upstream gradients on the outputs and the final state: float64 to
1e-10, float32 to 1e-5 (relative to the largest entry). Then what the threads promise: the
same bits for any thread count and from several Python threads, no hang after a fork or an
interrupt. Tests that need numba skip when it is missing; the fallback tests run either way.
"""

import importlib.util
import os
import signal
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest
from seq_helpers import running

import lstmlab
from lstmlab.kernels import (GRUParams, LSTMParams, RNNParams, fast, gru_backward, gru_forward,
                             lstm_backward, lstm_forward, rnn_backward, rnn_forward)
from lstmlab.kernels.lstm_peephole import (LSTMPeepholeParams, lstm_peephole_backward,
                                           lstm_peephole_forward)

needs_numba = pytest.mark.skipif(importlib.util.find_spec("numba") is None or not fast.available(),
                                 reason="numba unavailable (not installed, or LSTMLAB_FAST=0)")
TOL = {np.float64: 1e-10, np.float32: 1e-5}
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def rel_err(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    assert a.shape == b.shape, (a.shape, b.shape)
    diff = np.abs(a - b).max() if a.size else 0.0
    return 0.0 if diff == 0 else diff / max(np.abs(b).max(), 1e-300)


def random_shapes(seed: int, n: int) -> list:
    """``n`` random (T, B, D, H) with T=1, B=1 and odd H among them."""
    rng = np.random.default_rng(seed)
    shapes = [(1, 1, 3, 5), (1, 7, 2, 33), (9, 1, 4, 17)]
    while len(shapes) < n:
        shapes.append((int(rng.integers(1, 13)), int(rng.integers(1, 40)),
                       int(rng.integers(1, 24)), int(rng.integers(1, 80))))
    return shapes


# -- one cell, one direction: the kernels against the reference -------------------------
CELLS = ["lstm", "rnn_tanh", "rnn_relu", "gru", "peephole", "peephole_clip", "coupled_clip",
         "clip_only"]


def run_cell(kind, on_fast, x, states, params, lengths, dy, dfinals, need_dx=True):
    """(outputs, gradients) of one cell through the reference or the fast kernels, as lists
    of arrays (None where there is nothing)."""
    clip = {"peephole": None, "peephole_clip": 0.8, "coupled_clip": 1.1, "clip_only": 0.5}.get(kind)
    coupled = kind == "coupled_clip"
    P = None if kind in ("lstm", "clip_only", "gru") or kind.startswith("rnn") else params[3]
    if on_fast:
        cell = "rnn" if kind.startswith("rnn") else kind if kind == "gru" else "lstm"
        opts = {"act": kind[4:]} if cell == "rnn" else (
            {} if kind == "lstm" else {"P": P, "clip": clip, "input_forget": coupled})
        y, finals, cache = fast.sequence_forward(cell, x, states, *params[:3], lengths, **opts)
        dx, d0, g = fast.sequence_backward(dy, dfinals, cache, need_dx)
        return [y, *finals], [dx, *d0, *(g if kind != "lstm" and cell == "lstm" else g[:3])]
    if kind == "lstm":
        y, hT, cT, cache = lstm_forward(x, *states, LSTMParams(*params[:3]), lengths)
        dx, dh0, dc0, g = lstm_backward(dy, *dfinals, cache, need_dx=need_dx)
        return [y, hT, cT], [dx, dh0, dc0, *g]
    if kind.startswith("rnn"):
        y, hT, cache = rnn_forward(x, states[0], RNNParams(*params[:3]), kind[4:], lengths)
        dx, dh0, g = rnn_backward(dy, dfinals[0], cache, need_dx=need_dx)
        return [y, hT], [dx, dh0, *g]
    if kind == "gru":
        y, hT, cache = gru_forward(x, states[0], GRUParams(*params[:3]), lengths)
        dx, dh0, g = gru_backward(dy, dfinals[0], cache, need_dx=need_dx)
        return [y, hT], [dx, dh0, *g]
    p = LSTMPeepholeParams(*params[:3], P)
    y, hT, cT, cache = lstm_peephole_forward(x, *states, p, lengths, clip, coupled)
    dx, dh0, dc0, g = lstm_peephole_backward(dy, *dfinals, cache, need_dx=need_dx)
    return [y, hT, cT], [dx, dh0, dc0, *g]


def cell_inputs(kind, rng, T, B, D, H, dtype, bias=True, ragged=True):
    G = 1 if kind.startswith("rnn") else 3 if kind == "gru" else 4
    n = 1 if kind.startswith("rnn") or kind == "gru" else 2
    r = lambda *s: rng.normal(size=s).astype(dtype)  # noqa: E731
    # weights of initialisation scale: float32 round-off stays round-off (a chaotic network
    # would amplify any difference in the last bit, the reference's own included)
    params = [r(D, G * H) / np.sqrt(D), r(H, G * H) / np.sqrt(H),
              r((G + (kind == "gru")) * H) if bias else None, r(3 * H)]
    lengths = rng.integers(1, T + 1, size=B) if ragged and B > 1 else None
    states = tuple(r(B, H) for _ in range(n))
    dfinals = tuple(r(B, H) for _ in range(n))
    return r(T, B, D), states, params, lengths, r(T, B, H), dfinals


@needs_numba
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("kind", CELLS)
def test_every_cell_matches_the_reference(kind, dtype):
    for i, (T, B, D, H) in enumerate(random_shapes(7, 6)):
        rng = np.random.default_rng(100 + i)
        args = cell_inputs(kind, rng, T, B, D, H, dtype, bias=i != 2, ragged=i % 2 == 0)
        want_out, want_grad = run_cell(kind, False, *args)
        got_out, got_grad = run_cell(kind, True, *args)
        for g, w in zip(got_out + got_grad, want_out + want_grad):
            if w is None:
                assert g is None
            else:
                assert rel_err(g, w) <= TOL[dtype], (kind, (T, B, D, H))


@needs_numba
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("kind", ["lstm", "rnn_tanh", "gru"])
def test_few_rows_of_wide_layers_match_the_reference(kind, dtype, threads):
    """One to three rows of layers wide enough for many whole panels of columns (which such
    blocks multiply side by side), on one thread and on a team."""
    rng = np.random.default_rng(12)
    for B, H in ((1, 70), (2, 130), (3, 37)):
        args = cell_inputs(kind, rng, 4, B, 9, H, dtype, ragged=B > 1)
        want_out, want_grad = run_cell(kind, False, *args)
        for n in (1, 2):
            threads(n)
            got_out, got_grad = run_cell(kind, True, *args)
            for g, w in zip(got_out + got_grad, want_out + want_grad):
                assert (w is None and g is None) or rel_err(g, w) <= TOL[dtype], (kind, B, H)


@needs_numba
@pytest.mark.parametrize("kind", ["lstm", "rnn_tanh", "gru", "peephole_clip"])
def test_no_input_gradient_and_no_output_gradient(kind):
    """``need_dx=False`` returns dx = None and the same parameter gradients; ``dy=None`` (the
    loss on the final state only) equals a zero ``dy``."""
    rng = np.random.default_rng(3)
    x, states, params, lengths, dy, dfinals = cell_inputs(kind, rng, 5, 3, 4, 6, np.float64)
    _, full = run_cell(kind, True, x, states, params, lengths, dy, dfinals)
    _, no_dx = run_cell(kind, True, x, states, params, lengths, dy, dfinals, need_dx=False)
    assert no_dx[0] is None
    for a, b in zip(full[1:], no_dx[1:]):
        assert (a is None and b is None) or np.array_equal(a, b)
    _, zero = run_cell(kind, True, x, states, params, lengths, np.zeros_like(dy), dfinals)
    _, none = run_cell(kind, True, x, states, params, lengths, None, dfinals)
    for a, b in zip(zero, none):
        assert (a is None and b is None) or np.array_equal(a, b)


@needs_numba
@pytest.mark.parametrize("cell", ["lstm", "rnn", "gru", "peephole"])
def test_inference_gives_the_training_forwards_bits(cell):
    """``need_cache=False`` keeps rings instead of the history (chunks of the input
    projection): the same arithmetic, so the same bits."""
    rng = np.random.default_rng(8)
    for T, B, D, H in [(300, 2, 5, 9), (40, 70, 3, 17), (1, 1, 2, 3)]:
        G, nb = {"rnn": (1, 1), "gru": (3, 4)}.get(cell, (4, 4))  # blocks of W, of b
        x = rng.normal(size=(T, B, D)).astype(np.float32)
        states = tuple(rng.normal(size=(B, H)).astype(np.float32)
                       for _ in range(1 if cell in ("rnn", "gru") else 2))
        W = [rng.normal(size=s).astype(np.float32) * 0.5 for s in ((D, G * H), (H, G * H), (nb * H,))]
        opts = {"act": "tanh"} if cell == "rnn" else {}
        if cell == "peephole":
            opts = {"P": rng.normal(size=3 * H).astype(np.float32), "clip": 1.0,
                    "input_forget": False}
        lengths = rng.integers(1, T + 1, size=B)
        name = "lstm" if cell == "peephole" else cell
        y1, f1, cache = fast.sequence_forward(name, x, states, *W, lengths, True, **opts)
        y2, f2, none = fast.sequence_forward(name, x, states, *W, lengths, False, **opts)
        assert cache is not None and none is None
        for a, b in zip((y1, *f1), (y2, *f2)):
            assert np.array_equal(a, b)


@needs_numba
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_compiled_tanh_is_accurate_over_the_whole_range(dtype):
    """h_1 = tanh(x) through the RNN kernel (Wx = 1, Wh = 0, no bias, h0 = 0): the compiled
    tanh against float64 NumPy, from 0 and subnormals to saturation, NaN-free and odd."""
    v = np.concatenate([np.linspace(-25, 25, 20001), np.geomspace(1e-300, 30, 4000),
                        [0.0, 5e-324, 1e-8, 0.3465, 0.3466, 8.5, 9.0, 19.0, 20.0, 21.0, 710.0]])
    v = np.concatenate([v, -v]).astype(dtype)  # positives, then their negatives
    n = v.size  # one batch row per value: x (1, n, 1), Wx = [[1]], H = 1
    y, _, _ = fast.sequence_forward("rnn", v.reshape(1, n, 1), (np.zeros((n, 1), dtype),),
                                    np.ones((1, 1), dtype), np.zeros((1, 1), dtype), None,
                                    need_cache=False)
    got = y.reshape(n).astype(np.float64)
    want = np.tanh(v.astype(np.float64))
    tiny = np.finfo(dtype).tiny
    ulps = np.abs(got - want) / np.spacing(np.maximum(np.abs(want), tiny).astype(dtype)).astype(np.float64)
    assert ulps.max() <= 3
    assert np.all(np.abs(got) <= 1)
    assert np.array_equal(got[: n // 2], -got[n // 2:])  # odd, exactly


@needs_numba
@pytest.mark.parametrize("scale", [1e-3, 1e-1, 1.0, 10.0, 1e3, 1e6, 1e10, 1e30])
def test_float32_gradients_are_right_when_gates_saturate(scale):
    """Inputs from 1e-3 to 1e30 drive the gates from linear to fully saturated: the float32
    gradients equal the reference's to 1e-5 of the largest (a saturated unit passes exactly
    no gradient, in both)."""
    rng = np.random.default_rng(4)
    T, B, D, H = 6, 5, 7, 9
    x = (rng.normal(size=(T, B, D)) * scale).astype(np.float32)
    states = tuple(rng.normal(size=(B, H)).astype(np.float32) for _ in range(2))
    p = LSTMParams(*(rng.normal(size=s).astype(np.float32) for s in ((D, 4 * H), (H, 4 * H),
                                                                     (4 * H,))))
    dy = rng.normal(size=(T, B, H)).astype(np.float32)
    ref = lstm_backward(dy, None, None, lstm_forward(x, *states, p)[3])
    dx, d0, g = fast.sequence_backward(dy, (None, None),
                                       fast.sequence_forward("lstm", x, states, *p)[2])
    for g, w in zip((dx, *d0, *g[:3]), (ref[0], ref[1], ref[2], *ref[3])):
        assert np.all(np.isfinite(g))
        assert np.abs(g - w).max() <= 1e-5 * max(np.abs(w).max(), 1e-30), scale


# -- threads -------------------------------------------------------------------------------
@pytest.fixture
def threads():
    """Sets the fast kernels' thread count for a test, restoring it after."""
    before = fast.get_num_threads()
    yield fast.set_num_threads
    fast.set_num_threads(before)


def training_step(cell, T, B, D, H, dtype, seed=5):
    rng = np.random.default_rng(seed)
    G, nb = {"rnn": (1, 1), "gru": (3, 4)}.get(cell, (4, 4))  # blocks of W, of b
    x = rng.normal(size=(T, B, D)).astype(dtype)
    states = tuple(rng.normal(size=(B, H)).astype(dtype)
                   for _ in range(1 if cell in ("rnn", "gru") else 2))
    W = [rng.normal(size=s).astype(dtype) * 0.3 for s in ((D, G * H), (H, G * H), (nb * H,))]
    opts = {"act": "tanh"} if cell == "rnn" else {}
    lengths = rng.integers(1, T + 1, size=B)
    y, finals, cache = fast.sequence_forward(cell, x, states, *W, lengths, **opts)
    dy = rng.normal(size=y.shape).astype(dtype)
    dx, d0, grads = fast.sequence_backward(dy, tuple(np.ones_like(s) for s in states), cache)
    return [y, *finals, dx, *d0, *(g for g in grads if g is not None)]


# rows split (B >= 16), units split (few rows, many units), and both (many of each)
TEAM_SHAPES = [(30, 40, 20, 48), (40, 2, 30, 256), (20, 33, 10, 200)]


@needs_numba
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("cell", ["lstm", "rnn", "gru"])
def test_thread_counts_give_the_same_bits(cell, dtype, threads):
    for shape in TEAM_SHAPES:
        threads(1)
        want = training_step(cell, *shape, dtype)
        for n in (2, 3, 4):
            threads(n)
            got = training_step(cell, *shape, dtype)
            for g, w in zip(got, want):
                assert np.array_equal(g, w), (cell, shape, n)


@needs_numba
def test_a_team_stays_within_its_limits(threads):
    """Whatever the shape: no more threads than set, no row group without rows, a unit group
    at least one panel of every gate, and one thread for a tiny call."""
    rng = np.random.default_rng(9)
    for n in (1, 2, 3, 8):
        threads(n)
        for _ in range(200):
            T, B, H = int(rng.integers(1, 500)), int(rng.integers(1, 300)), int(rng.integers(1, 1100))
            dtype = (np.float32, np.float64)[int(rng.integers(2))]
            nb, nu = fast.plan(T, B, H, H, 4, dtype)
            assert 1 <= nb * nu <= n and nb <= B
            assert nu == 1 or H >= nu * 64 // np.dtype(dtype).itemsize
        assert fast.plan(1, 1, 2, 2, 4, np.float32) == (1, 1)
    with pytest.raises(ValueError, match="positive integer"):
        fast.set_num_threads(0)


@needs_numba
def test_a_team_whose_members_were_not_running_gives_way_to_one_thread(monkeypatch):
    """A team whose waits had to yield the core at most of its steps (its teammates were not
    running: other work holds the cores) makes the calls that follow run alone for a while;
    a team that did not wait leaves teams on."""
    loops = fast._compiled().loops
    monkeypatch.setattr(fast, "_pool", [fast._Pool()])
    seen = []

    def member(tid, nb, nu, sync, yielded):
        seen.append((tid, nb, nu))
        if tid == 0:
            sync[loops.YIELDED] = yielded

    fast._run(lambda *a: member(*a[1:], a[0]), (0,), 1, 2, loops, 100)
    fast._run(lambda *a: member(*a[1:], a[0]), (0,), 1, 2, loops, 100)
    assert sorted(seen) == [(0, 1, 2), (0, 1, 2), (1, 1, 2), (1, 1, 2)]  # still teams
    seen.clear()
    fast._run(lambda *a: member(*a[1:], a[0]), (100,), 1, 2, loops, 100)  # yielded at every step
    fast._run(lambda *a: member(*a[1:], a[0]), (0,), 1, 2, loops, 100)
    assert sorted(seen) == [(0, 1, 1), (0, 1, 2), (1, 1, 2)]  # the second call ran alone


@needs_numba
def test_separate_layers_in_python_threads_give_one_threads_bits(threads):
    """Four Python threads, each training its own layer, while the kernels use teams: every
    result equals the same layer's run alone."""
    threads(2)

    def run(seed, out):
        rng = np.random.default_rng(seed)
        layer = lstmlab.LSTM(24, 48, num_layers=2, rng=np.random.default_rng(seed))
        for _ in range(3):
            x = rng.normal(size=(30, 20, 24)).astype(np.float32)
            y, _ = layer.forward(x)
            layer.backward(np.ones_like(y))
        out[seed] = [y.copy()] + [g.copy() for g in layer.grads().values()]

    alone, together = {}, {}
    for seed in range(4):
        run(seed, alone)
    workers = [threading.Thread(target=run, args=(seed, together)) for seed in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    for seed in range(4):
        for a, b in zip(alone[seed], together[seed]):
            assert np.array_equal(a, b)


@needs_numba
def test_one_layer_from_two_threads_is_an_error(monkeypatch):
    """A layer keeps its last forward for its backward: a forward while another thread is in
    one, or a backward on another thread than the forward, is refused with a clear error."""
    layer = lstmlab.LSTM(3, 4, rng=np.random.default_rng(0))
    x = np.ones((5, 2, 3), np.float32)
    inside, release = threading.Event(), threading.Event()
    real = fast.sequence_forward

    def slow(*args, **kw):  # holds the first caller inside its forward
        inside.set()
        release.wait(30)
        return real(*args, **kw)

    monkeypatch.setattr(fast, "sequence_forward", slow)
    errors = []
    worker = threading.Thread(target=lambda: layer.forward(x))
    worker.start()
    assert inside.wait(30)
    try:
        layer.forward(x)
    except RuntimeError as e:
        errors.append(str(e))
    release.set()
    worker.join()
    assert errors and "another thread" in errors[0]
    monkeypatch.setattr(fast, "sequence_forward", real)
    with pytest.raises(RuntimeError, match="another thread than the layer's last forward"):
        layer.backward(np.ones((5, 2, 4), np.float32))  # the forward ran on the worker
    y, _ = layer.forward(x)
    layer.backward(np.ones_like(y))  # forward and backward on one thread: fine


@needs_numba
@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork on this platform")
def test_fork_while_another_thread_runs_a_team(threads):
    """A child forked while a team is running (the pool busy, its lock held) runs its own
    teams: no inherited lock, no deadlock, the same bits as the parent."""
    threads(2)
    want = training_step("lstm", *TEAM_SHAPES[1], np.float32)
    stop = threading.Event()

    def busy():
        while not stop.is_set():
            training_step("lstm", *TEAM_SHAPES[1], np.float32)

    worker = threading.Thread(target=busy)
    worker.start()
    try:
        for _ in range(4):
            r, w = os.pipe()
            pid = os.fork()
            if pid == 0:  # the child: one team call, then report
                os.close(r)
                try:
                    got = training_step("lstm", *TEAM_SHAPES[1], np.float32)
                    ok = all(np.array_equal(g, v) for g, v in zip(got, want))
                    os.write(w, b"1" if ok else b"0")
                finally:
                    os._exit(0)
            os.close(w)
            with os.fdopen(r, "rb") as f:
                waited = 0
                while waited < 120:  # a deadlocked child would never write: do not hang here
                    done, status = os.waitpid(pid, os.WNOHANG)
                    if done:
                        break
                    threading.Event().wait(0.1)
                    waited += 0.1
                else:
                    os.kill(pid, signal.SIGKILL)
                    os.waitpid(pid, 0)
                    pytest.fail("the forked child hung")
                assert f.read() == b"1"
    finally:
        stop.set()
        worker.join()


@pytest.mark.skipif(os.name != "posix", reason="Windows cannot send SIGINT to one process")
@needs_numba
def test_interrupt_during_a_team_ends_cleanly(tmp_path):
    """Ctrl-C while a multi-threaded call runs: KeyboardInterrupt reaches the caller, no hang."""
    script = tmp_path / "long.py"
    script.write_text(textwrap.dedent("""
        import sys, numpy as np
        from lstmlab.kernels import fast
        fast.set_num_threads(2)
        x = np.ones((400, 2, 64), np.float32)
        W = [np.full(s, 0.01, np.float32) for s in ((64, 1024), (256, 1024), (1024,))]
        s = (np.zeros((2, 256), np.float32),) * 2
        fast.sequence_forward("lstm", x, s, *W)  # compiled once, before the signal can come
        print("ready", flush=True)
        while True:
            fast.sequence_forward("lstm", x, s, *W)
    """))
    env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "src"))
    with running([sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                 env=env, text=True) as proc:
        assert proc.stdout.readline().strip() == "ready"
        threading.Event().wait(0.5)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    assert "KeyboardInterrupt" in err


@needs_numba
def test_results_do_not_depend_on_numpys_blas(tmp_path):
    """The fast kernels do their own arithmetic: the same bits whatever NumPy's BLAS is told
    (its thread count, and on OpenBLAS its kernels for another processor)."""
    script = tmp_path / "run.py"
    script.write_text(textwrap.dedent("""
        import hashlib, numpy as np
        from lstmlab.kernels import fast
        rng = np.random.default_rng(0)
        x = rng.normal(size=(20, 8, 16)).astype(np.float32)
        W = [rng.normal(size=s).astype(np.float32) * 0.2 for s in ((16, 128), (32, 128), (128,))]
        s = tuple(rng.normal(size=(8, 32)).astype(np.float32) for _ in range(2))
        y, f, cache = fast.sequence_forward("lstm", x, s, *W)
        dx, d0, g = fast.sequence_backward(np.ones_like(y), (None, None), cache)
        h = hashlib.sha256()
        for a in (y, *f, dx, *d0, *g[:3]):
            h.update(np.ascontiguousarray(a).tobytes())
        print(h.hexdigest())
    """))
    base = {k: v for k, v in os.environ.items() if not k.startswith("OPENBLAS")}
    base["PYTHONPATH"] = os.path.join(ROOT, "src")
    digests = set()
    for extra in ({}, {"OPENBLAS_NUM_THREADS": "1"}, {"OPENBLAS_CORETYPE": "Haswell"},
                  {"OPENBLAS_CORETYPE": "Prescott", "OPENBLAS_NUM_THREADS": "3"}):
        out = subprocess.run([sys.executable, str(script)], env=dict(base, **extra),
                             capture_output=True, text=True, timeout=300, check=True)
        digests.add(out.stdout.strip())
    assert len(digests) == 1


@needs_numba
@pytest.mark.slow
def test_cells_compiled_by_different_processes_keep_their_own_code(tmp_path):
    """numba's disk cache names compiled code after a function's name and a per-process
    counter: cells compiled by separate processes and then loaded by one must each still run
    their own steps (two same-named passes once linked to one body)."""
    script = tmp_path / "run.py"
    script.write_text(textwrap.dedent("""
        import sys, numpy as np
        from lstmlab.kernels import GRUParams, RNNParams, fast, gru_forward, rnn_forward
        rng = np.random.default_rng(0)
        x, h0 = rng.normal(size=(3, 2, 3)), rng.normal(size=(2, 4))
        W = {"rnn": [rng.normal(size=s) for s in ((3, 4), (4, 4), (4,))],
             "gru": [rng.normal(size=s) for s in ((3, 12), (4, 12), (16,))]}
        want = {"rnn": rnn_forward(x, h0, RNNParams(*W["rnn"]), "relu")[0],
                "gru": gru_forward(x, h0, GRUParams(*W["gru"]))[0]}
        for cell in sys.argv[1:]:
            y = fast.sequence_forward(cell, x, (h0,), *W[cell], need_cache=False, act="relu")[0]
            assert np.abs(y - want[cell]).max() < 1e-12, cell
    """))
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "cache"),
               PYTHONPATH=os.path.join(ROOT, "src"))
    for cells in (["rnn"], ["gru"], ["rnn", "gru"]):
        subprocess.run([sys.executable, str(script), *cells], env=env, timeout=600, check=True)


# -- the layers on the fast path ------------------------------------------------------------
def make_pair(kind, dtype, seed, sizes=(3, 5), **kw):
    """Two identical layers (input_size, hidden_size = ``sizes``), one on the reference
    kernels and one on the fast ones."""
    cls = lstmlab.RNN if kind.startswith("rnn") else lstmlab.GRU if kind == "gru" else lstmlab.LSTM
    if kind.startswith("rnn"):
        kw["nonlinearity"] = kind[4:]
    elif kind == "peephole":
        kw.update(peephole=True, clip=1.5)
    ref = cls(*sizes, dtype=dtype, rng=np.random.default_rng(seed), **kw)
    fst = cls(*sizes, dtype=dtype, rng=np.random.default_rng(seed), **kw)
    ref.backend, fst.backend = "numpy", "fast"
    return ref, fst


def run_layer(layer, x, state, lengths, dy, dstate):
    y, fin = layer.forward(x, state, lengths)
    dx, dinit = layer.backward(dy, dstate)
    fin = fin if isinstance(fin, tuple) else (fin,)
    dinit = dinit if isinstance(dinit, tuple) else (dinit,)
    return [y, *fin, dx, *dinit, *layer.grads().values()]


@needs_numba
@pytest.mark.parametrize("kind", ["lstm", "rnn_tanh", "gru", "peephole"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_layer_fast_backend_matches_reference_and_eval_backward_recomputes(kind, dtype):
    """Two bidirectional layers with ragged lengths, on both kernels; in eval mode the fast
    forward keeps no cache and a backward recomputes it."""
    rng = np.random.default_rng(7)
    ref, fst = make_pair(kind, dtype, 3, num_layers=2, bidirectional=True)
    T, B, H = 6, 4, 5
    ns = 1 if kind.startswith("rnn") or kind == "gru" else 2
    state = tuple(rng.normal(size=(4, B, H)).astype(dtype) for _ in range(ns))
    dstate = tuple(rng.normal(size=(4, B, H)).astype(dtype) for _ in range(ns))
    x = rng.normal(size=(T, B, 3)).astype(dtype)
    dy = rng.normal(size=(T, B, 2 * H)).astype(dtype)
    lengths = np.array([6, 2, 1, 5])
    if ns == 1:
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
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("kind", ["lstm", "rnn_tanh", "rnn_relu", "gru", "peephole"])
def test_streaming_step_equals_reference(kind, dtype):
    """``step`` (one compiled call for every layer for B <= fast.STREAM_ROWS, the sequence
    kernels with T = 1 above) equals the reference step by step, with and without bias,
    batched and unbatched, from a given and from a zero state."""
    rng = np.random.default_rng(31)
    for bias in (True, False):
        ref, fst = make_pair(kind, dtype, 12, num_layers=2, bias=bias)
        for B in (1, 2, fast.STREAM_ROWS, fast.STREAM_ROWS + 1):
            shape = (2, B, 5)
            s0 = rng.normal(size=shape).astype(dtype)
            single = kind.startswith("rnn") or kind == "gru"
            s_ref = s_fst = s0 if single else (s0, -s0)
            for t in range(3):
                x_t = rng.normal(size=(B, 3)).astype(dtype)
                y_ref, s_ref = ref.step(x_t, s_ref)
                y_fst, s_fst = fst.step(x_t, s_fst)
                assert y_fst.shape == y_ref.shape == (B, 5)
                assert rel_err(y_fst, y_ref) <= TOL[dtype]
                for a, b in zip((s_fst,) if single else s_fst, (s_ref,) if single else s_ref):
                    assert a.shape == shape and rel_err(a, b) <= TOL[dtype]
        y_ref, s_ref = ref.step(x_t[0], None)  # unbatched: (D,) in, (H,) and (L, H) out
        y_fst, s_fst = fst.step(x_t[0], None)
        assert y_fst.shape == (5,) and rel_err(y_fst, y_ref) <= TOL[dtype]
        y_ref, _ = ref.step(x_t[1], s_ref)
        y_fst, _ = fst.step(x_t[1], s_fst)
        assert rel_err(y_fst, y_ref) <= TOL[dtype]


@needs_numba
@pytest.mark.parametrize("kind", ["lstm", "rnn_tanh", "gru", "peephole"])
@pytest.mark.parametrize("sizes", [(3, 5), (81, 83), (298, 300), (600, 40)])
def test_streaming_steps_give_the_sequence_kernels_bits(kind, sizes):
    """The streaming step multiplies by the weights as stored, the sequence kernels by packed
    panels: the same sums in the same order, so stepping through a sequence gives forward's
    bits (widths with and without whole panels of columns, inputs longer than a chunk)."""
    _, layer = make_pair(kind, np.float32, 4, sizes, num_layers=2)
    rng = np.random.default_rng(2)
    x = rng.normal(size=(7, 3, layer.input_size)).astype(np.float32)
    y, _ = layer.forward(x)
    state = None
    for t in range(7):
        y_t, state = layer.step(x[t], state)
        assert np.array_equal(y_t, y[t])


@needs_numba
@pytest.mark.parametrize("kind", ["lstm", "rnn_tanh"])
def test_streaming_lane_outputs_are_the_callers(kind):
    """The state a step returns shares no memory with the state it was given or with y, so a
    caller who keeps an old state, or edits y or one part of the new state, changes nothing
    else."""
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


def test_streaming_lane_matches_torch_cell():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(8)
    layer = lstmlab.LSTM(6, 7, dtype=np.float64, rng=rng)
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
def test_streaming_lane_rejects_nan_and_converts_what_it_can(kind):
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
def test_layer_matches_torch_on_the_fast_path():
    """Both directions of both layers through the fast kernels against PyTorch."""
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
    monkeypatch.setattr(fast, "available", lambda: False)
    assert not fast.available()
    rng = np.random.default_rng(0)
    layer = lstmlab.LSTM(3, 4, dtype=np.float64, rng=rng)
    x = rng.normal(size=(5, 2, 3))
    y, (h, c) = layer.forward(x)
    layer.backward(np.ones_like(y))
    want = lstm_forward(x, np.zeros((2, 4)), np.zeros((2, 4)), layer._layer_params("l0"))
    assert np.array_equal(y, want[0])
    layer.step(x[0])
    layer.backend = "fast"
    with pytest.raises(RuntimeError, match="numba"):
        layer.forward(x)
    layer.backend = "blas"
    with pytest.raises(ValueError, match="backend"):
        layer.forward(x)


def test_environment_switch_disables_the_fast_path():
    code = ("from lstmlab.kernels import fast\n"
            "assert not fast.available()\n")
    env = dict(os.environ, LSTMLAB_FAST="0", PYTHONPATH=os.path.join(ROOT, "src"))
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120, env=env)


def test_import_and_help_do_not_import_numba():
    code = ("import sys, contextlib, io, lstmlab\n"
            "from lstmlab.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
            "    main(['--help'])\n"
            "assert 'numba' not in sys.modules, 'numba imported'\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


@needs_numba
def test_more_threads_than_cores_or_work_give_one_threads_bits(threads):
    """A count far above the cores, as torch.set_num_threads takes it, only oversubscribes:
    the team stays within the rows and unit panels of the work, and the bits are one
    thread's, on a small LSTM's forward and backward and on shapes that split rows, units
    and both."""
    for shape in [(6, 3, 4, 8), *TEAM_SHAPES]:
        threads(1)
        want = training_step("lstm", *shape, np.float32)
        threads(1000)
        nb, nu = fast.plan(shape[0], shape[1], shape[2], shape[3], 4, np.float32)
        assert nb <= shape[1] and (nu == 1 or shape[3] >= nu * 16)  # float32: 16 a panel
        got = training_step("lstm", *shape, np.float32)
        for g, w in zip(got, want):
            assert np.array_equal(g, w), shape
