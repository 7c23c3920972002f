"""Benchmark: lstmlab's LSTM and RNN against torch.nn.LSTM / nn.RNN on the same inputs.

Dimensions: T time, B batch, D input features, H hidden units (here D = H).

One process, same inputs for both; for every shape the candidates are timed in interleaved
repeats (ours, torch, ours, torch, ...) with a pause between calls, because BLAS
threads keep spinning for a while after a call and slow down whatever runs next (NumPy's
OpenBLAS: ~110 ms of busy-waiting after each multi-threaded call, measured here, hence the
0.2 s default; a shorter pause hands that spinning thread to the next candidate). Reported:
median and min–max time, the ratio torch time / lstmlab time (> 1: lstmlab is faster) —
of the medians, and per round (each round times both once, within about a second, so their
ratio cancels what the machine does on a scale of seconds: the median of the rounds' ratios
and their middle half) — achieved GFLOP/s (GEMM FLOPs only) and the fraction of the GEMM
peak measured here.

    .venv/bin/python bench/bench_lstm.py            # the full grid (a few minutes)
    .venv/bin/python bench/bench_lstm.py --quick    # a small run (under a minute)
    .venv/bin/python bench/bench_lstm.py --profile --memory --compile   # the extra studies

Suites: train (forward + loss + backward, float32, the input is data: no gradient with
respect to it on either side), train-dx (the same with the input gradient on both sides, as
for a layer inside a stack), infer (forward in eval mode / torch inference_mode), stream
(B = 1, 1000 single steps: ``LSTM.step`` vs nn.LSTM called per step and nn.LSTMCell), f64
and f64-dx (float64 training, as train and train-dx), rnn (train and infer against nn.RNN).
Extra studies: --profile (where lstmlab's training step spends its time, float32 and
float64: GEMM, fused elementwise kernels, the rest; and the two-thread pair's time split by
phase), --packed (the per-step recurrent product by BLAS and by the packed kernel),
--threads (lstmlab's ways of using two cores against each other: its default, one thread
running the time loop, the two-thread unit split, the batch split), --memory (peak resident
memory of one training step, each library in its own subprocess), --compile (numba's
first-call compile time with an empty cache, and the first call with a warm on-disk cache,
in subprocesses), --blas-spin (OpenBLAS's busy-waiting worker, and the pair's guard),
--pool (the first write to fresh memory against a rewrite; lstmlab's training step with its
buffer pool and without).
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys

_OPENBLAS_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="small grid, 3 repeats")
    p.add_argument("--repeats", type=int, default=None,
                   help="timed repeats (rounds) per candidate (9)")
    p.add_argument("--pause", type=float, default=0.2,
                   help="seconds between candidates (longer than OpenBLAS's ~0.11 s of "
                        "busy-waiting after a call)")
    p.add_argument("--suites", default="train,train-dx,infer,stream,f64,f64-dx,rnn",
                   help="comma-separated subset of train,train-dx,infer,stream,f64,f64-dx,rnn")
    p.add_argument("--shapes", default=None, metavar="T,B,H;...",
                   help="replace the grid, e.g. '100,32,128;100,64,256' (D = H)")
    p.add_argument("--profile", action="store_true", help="time split of a training step")
    p.add_argument("--memory", action="store_true", help="peak memory of a training step")
    p.add_argument("--compile", action="store_true", help="numba compile and cache-load cost")
    p.add_argument("--elementwise", action="store_true",
                   help="the fused gate math alone: ns per hidden unit per step")
    p.add_argument("--threads", action="store_true",
                   help="lstmlab's ways of using two cores against each other")
    p.add_argument("--modes", default=None, metavar="MODE;...",
                   help="with --threads: only these of its modes (the default is always "
                        "run), e.g. 'one loop;pipe always', for a study of a few with more "
                        "repeats")
    p.add_argument("--packed", action="store_true",
                   help="the per-step recurrent product: BLAS vs the packed kernel")
    p.add_argument("--blas-spin", action="store_true",
                   help="how long NumPy's OpenBLAS keeps a thread busy after a call")
    p.add_argument("--pool", action="store_true",
                   help="fresh memory's page faults, and training steps with and without "
                        "lstmlab's buffer pool")
    p.add_argument("--quiet-wait", type=float, default=0.0, metavar="SECONDS",
                   help="before each shape, wait up to this long for the other processes on the "
                        "machine to use < 15%% of the CPU (shared machines); the busy fraction "
                        "seen is printed per row")
    p.add_argument("--single-thread", action="store_true",
                   help="both libraries on one thread (torch.set_num_threads(1), BLAS limited "
                        "to 1, LSTMLAB_THREADS=1) and timed by process CPU time: a per-core "
                        "comparison that stays meaningful while other processes load the machine")
    p.add_argument("--unset-openblas-env", action="store_true",
                   help="re-run without OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE (both together)")
    return p.parse_args(argv)


ARGS = parse_args()
if ARGS.single_thread:
    os.environ["LSTMLAB_THREADS"] = "1"
if ARGS.unset_openblas_env and any(k in os.environ for k in _OPENBLAS_VARS):
    env = {k: v for k, v in os.environ.items() if k not in _OPENBLAS_VARS}
    env["LSTMLAB_BENCH_UNSET"] = ",".join(f"{k}={os.environ[k]}" for k in _OPENBLAS_VARS
                                          if k in os.environ)
    os.execve(sys.executable, [sys.executable] + sys.argv, env)

import datetime  # noqa: E402
import platform  # noqa: E402
import resource  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

GRID = [(100, 32, 128), (100, 64, 256), (50, 16, 512), (200, 8, 64), (100, 128, 128),
        (1000, 1, 128)]
QUICK_GRID = [(100, 32, 128), (50, 16, 512), (200, 8, 64)]


def lstm_flops(T, B, D, H, G=4, train=True, input_grad=True) -> float:
    """GEMM FLOPs: forward 2·T·B·(D+H)·G·H; backward twice that (dx, dh and the weights),
    less the dx GEMM (2·T·B·G·H·D) when the input needs no gradient."""
    fwd = 2.0 * T * B * (D + H) * G * H
    if not train:
        return fwd
    return 3 * fwd - (0.0 if input_grad else 2.0 * T * B * G * H * D)


# -- machine facts ------------------------------------------------------------------------
def machine_facts(torch) -> list[str]:
    from threadpoolctl import threadpool_info

    lines = [f"date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M UTC}",
             f"command: {' '.join([os.path.basename(sys.executable)] + sys.argv)}",
             f"cpu: {_cpu_name()}, {os.cpu_count()} logical cores; load average at start "
             f"{os.getloadavg()[0]:.2f}",
             f"python {platform.python_version()}, numpy {np.__version__}, torch {torch.__version__}"
             f" ({torch.get_num_threads()} threads, mkldnn "
             f"{'on' if torch.backends.mkldnn.is_available() else 'off'})"]
    try:
        import numba
        lines.append(f"numba {numba.__version__}")
    except ImportError:
        lines.append("numba: not installed (lstmlab runs its NumPy reference kernels)")
    unset = os.environ.get("LSTMLAB_BENCH_UNSET")
    for k in _OPENBLAS_VARS:
        state = os.environ.get(k)
        lines.append(f"{k}: {state!r}" + (f" (unset for this run; was {unset})" if unset else ""))
    for info in threadpool_info():
        lines.append(f"threadpool: {info['internal_api']} {info.get('version')} "
                     f"arch={info.get('architecture')} threads={info['num_threads']} "
                     f"({os.path.basename(info['filepath'])})")
    return lines


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def gemm_peak(torch, dtype=np.float32, n=2048, reps=8) -> tuple[float, float]:
    """Best GFLOP/s of an n×n×n GEMM through NumPy's BLAS and through torch."""
    rng = np.random.default_rng(0)
    a, b = rng.random((n, n)).astype(dtype), rng.random((n, n)).astype(dtype)
    out = np.empty((n, n), dtype)
    ta, tb = torch.from_numpy(a), torch.from_numpy(b)
    best_np = best_t = float("inf")
    clock = time.process_time if ARGS.single_thread else time.perf_counter
    for _ in range(reps):
        t0 = clock()
        np.matmul(a, b, out=out)
        best_np = min(best_np, clock() - t0)
        time.sleep(0.05)
        t0 = clock()
        torch.mm(ta, tb)
        best_t = min(best_t, clock() - t0)
        time.sleep(0.05)
    f = 2.0 * n ** 3
    return f / best_np / 1e9, f / best_t / 1e9


# -- candidates ---------------------------------------------------------------------------
def make_inputs(T, B, D, H, dtype, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(T, B, D)).astype(dtype)
    dy = rng.normal(size=(T, B, H)).astype(dtype)
    return x, dy


def ours_lstm(kind, D, H, dtype):
    import lstmlab
    cls = lstmlab.LSTM if kind == "lstm" else lstmlab.RNN
    return cls(D, H, dtype=dtype, rng=np.random.default_rng(1))


def torch_twin(torch, layer, kind):
    mod = (torch.nn.LSTM if kind == "lstm" else torch.nn.RNN)(layer.input_size, layer.hidden_size)
    mod = mod.to(torch.float64 if layer.dtype == np.float64 else torch.float32)
    sd = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in layer.torch_state_dict().items()}
    mod.load_state_dict(sd)
    return mod


def train_candidates(torch, kind, T, B, D, H, dtype, input_grad=False):
    """A training step on both sides. ``input_grad=False``: the input is data, as in a
    network's first layer — torch's input does not require grad, and lstmlab's layer is told
    the same (``backward(..., input_grad=False)``); torch's float32 (oneDNN) kernel computes
    the input gradient anyway, its float64 path skips it. ``True``: both compute ``dx``, as
    every layer of a stack above the first must."""
    layer = ours_lstm(kind, D, H, dtype)
    mod = torch_twin(torch, layer, kind)
    x, dy = make_inputs(T, B, D, H, dtype)
    tx, tdy = torch.from_numpy(x), torch.from_numpy(dy)
    if input_grad:
        tx.requires_grad_(True)

    def ours():
        y, _ = layer.forward(x)
        loss = float(np.vdot(y, dy))  # the loss sum(y * dy), whose gradient on y is dy
        layer.backward(dy, input_grad=input_grad)
        return loss

    def theirs():
        mod.zero_grad(set_to_none=True)
        tx.grad = None
        y, _ = mod(tx)
        loss = (y * tdy).sum()
        loss.backward()
        return float(loss.detach())

    return ours, theirs


def infer_candidates(torch, kind, T, B, D, H, dtype):
    layer = ours_lstm(kind, D, H, dtype).eval()
    mod = torch_twin(torch, layer, kind).eval()
    x, _ = make_inputs(T, B, D, H, dtype)
    tx = torch.from_numpy(x)

    def ours():
        return layer.forward(x)[0]

    def theirs():
        with torch.inference_mode():
            return mod(tx)[0]

    return ours, theirs


def stream_candidates(torch, H=128, steps=1000):
    layer = ours_lstm("lstm", H, H, np.float32).eval()
    mod = torch_twin(torch, layer, "lstm").eval()
    cell = torch.nn.LSTMCell(H, H)
    with torch.no_grad():
        cell.weight_ih.copy_(mod.weight_ih_l0)
        cell.weight_hh.copy_(mod.weight_hh_l0)
        cell.bias_ih.copy_(mod.bias_ih_l0)
        cell.bias_hh.copy_(mod.bias_hh_l0)
    xs = np.random.default_rng(0).normal(size=(steps, 1, H)).astype(np.float32)
    txs = torch.from_numpy(xs)

    def ours():
        state = None
        for t in range(steps):
            y, state = layer.step(xs[t], state)
        return y

    def lstm_per_step():
        state = None
        with torch.inference_mode():
            for t in range(steps):
                y, state = mod(txs[t:t + 1], state)
        return y

    def lstm_cell():
        state = None
        with torch.inference_mode():
            for t in range(steps):
                state = cell(txs[t], state)
        return state[0]

    return ours, lstm_per_step, lstm_cell


def cpu_busy(interval: float = 0.5) -> float:
    """Fraction of all cores busy during ``interval`` while this process sleeps (so: others)."""
    def snap():
        with open("/proc/stat") as f:
            v = [int(n) for n in f.readline().split()[1:]]
        return sum(v), v[3] + v[4]  # total, idle + iowait
    try:
        t0, i0 = snap()
        time.sleep(interval)
        t1, i1 = snap()
    except OSError:
        return float("nan")
    return 1.0 - (i1 - i0) / max(t1 - t0, 1)


def wait_quiet(max_wait: float, threshold: float = 0.15) -> str:
    """Wait (up to ``max_wait`` s) until other processes use < ``threshold`` of the CPU."""
    if max_wait <= 0:
        return ""
    t_end = time.perf_counter() + max_wait
    busy = cpu_busy()
    while busy >= threshold and time.perf_counter() < t_end:
        time.sleep(2.0)
        busy = cpu_busy()
    return f"{busy:.0%}"


def interleaved(cands: dict, repeats: int, pause: float, warmup: int = 2,
                rng: np.random.Generator | None = None) -> dict:
    """Time each candidate ``repeats`` times in rounds, pausing between calls. Each round runs
    the candidates in a new random order (``rng``, seeded by default), so that no candidate
    always runs first, or always right after the same other one: what a call leaves behind —
    freed memory, a busy BLAS thread, a changed BLAS thread count — would otherwise fall on
    the same candidate every time."""
    rng = np.random.default_rng(0) if rng is None else rng
    for f in cands.values():
        for _ in range(warmup):
            f()
        time.sleep(pause)
    clock = time.process_time if ARGS.single_thread else time.perf_counter
    times = {k: [] for k in cands}
    keys = list(cands)
    for _ in range(repeats):
        for i in rng.permutation(len(keys)):
            k = keys[i]
            t0 = clock()
            cands[k]()
            times[k].append(clock() - t0)
            time.sleep(pause)
    return {k: np.array(v) for k, v in times.items()}


def fmt_t(ts) -> str:
    med, lo, hi = np.median(ts), ts.min(), ts.max()
    u, s = (1e3, "ms") if med >= 1e-3 else (1e6, "µs")
    return f"{med * u:.3g} {s} ({lo * u:.3g}–{hi * u:.3g})"


def table(title, header, rows):
    print(f"\n### {title}\n")
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" for _ in header) + "|")
    for r in rows:
        print("| " + " | ".join(str(c) for c in r) + " |")
    sys.stdout.flush()


def run_sequence_suite(torch, name, kind, make, grid, dtype, train, peak, repeats, pause,
                       input_grad=False):
    rows = []
    for (T, B, H) in grid:
        ours, theirs = (make(torch, kind, T, B, H, H, dtype, input_grad) if train
                        else make(torch, kind, T, B, H, H, dtype))
        busy = wait_quiet(ARGS.quiet_wait)
        ts = interleaved({"ours": ours, "torch": theirs}, repeats, pause)
        busy_after = f"{cpu_busy():.0%}" if ARGS.quiet_wait else ""
        fl = lstm_flops(T, B, H, H, 4 if kind == "lstm" else 1, train, input_grad)
        mo, mt = np.median(ts["ours"]), np.median(ts["torch"])
        ratio = mt / mo
        lo = ts["torch"].min() / ts["ours"].max()
        hi = ts["torch"].max() / ts["ours"].min()
        best = ts["torch"].min() / ts["ours"].min()
        rounds = ts["torch"] / ts["ours"]  # same round: the two calls ran close in time
        q1, q3 = np.quantile(rounds, [0.25, 0.75])
        rows.append([f"{T}, {B}, {H}", fmt_t(ts["ours"]), fmt_t(ts["torch"]),
                     f"**{ratio:.2f}** ({lo:.2f}–{hi:.2f})",
                     f"**{np.median(rounds):.2f}** ({q1:.2f}–{q3:.2f})", f"{best:.2f}",
                     f"{fl / mo / 1e9:.0f}", f"{fl / mt / 1e9:.0f}",
                     f"{fl / ts['ours'].min() / 1e9 / peak:.0%}"]
                    + ([f"{busy} / {busy_after}"] if ARGS.quiet_wait else []))
    table(name, ["T, B, D=H", "lstmlab", "torch", "torch/lstmlab (medians)",
                 "per round (median, middle half)", "best/best",
                 "GFLOP/s ours", "GFLOP/s torch", "of peak (ours, best)"] + (["others' CPU before / after"]
                                                if ARGS.quiet_wait else []), rows)


def run_stream(torch, repeats, pause, steps=1000):
    ours, per_step, cell = stream_candidates(torch, steps=steps)
    wait_quiet(ARGS.quiet_wait)
    ts = interleaved({"ours": ours, "nn.LSTM": per_step, "nn.LSTMCell": cell}, repeats, pause)
    mo, bo = np.median(ts["ours"]), ts["ours"].min()
    rows = [[k, fmt_t(v / steps), f"**{np.median(v) / mo:.2f}**",
             f"**{np.median(v / ts['ours']):.2f}**", f"{v.min() / bo:.2f}"]
            for k, v in ts.items()]
    table(f"streaming: B=1, D=H=128, {steps} steps, time per step",
          ["candidate", "per step", "time / lstmlab's (medians)", "per round (median)",
           "best/best"], rows)


# -- profile ------------------------------------------------------------------------------
def _profile_inputs(T, B, H, dtype):
    """Inputs, upstream gradient, weights (D = H), lengths and the clock of the profiles."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(T, B, H)).astype(dtype)
    dy = rng.normal(size=(T, B, H)).astype(dtype)
    Wx = (rng.normal(size=(H, 4 * H)) * 0.1).astype(dtype)
    Wh = (rng.normal(size=(H, 4 * H)) * 0.1).astype(dtype)
    pc = time.process_time if ARGS.single_thread else time.perf_counter
    return x, dy, Wx, Wh, np.zeros(4 * H, dtype), np.full(B, T, np.int64), pc


def _time_grads(pc, x, h, dz, Wx) -> dict:
    """Time the GEMMs after the backward time loop (as ``fast.lstm_backward`` does them):
    weight gradients (with the bias sum), then dx."""
    t0 = pc()
    T, B, D = x.shape
    dz2 = dz.reshape(T * B, dz.shape[2])
    _ = x.reshape(T * B, D).T @ dz2, h[:-1].reshape(T * B, h.shape[2]).T @ dz2, dz2.sum(axis=0)
    t1 = pc()
    _ = dz2 @ Wx.T
    t2 = pc()
    return {"weight-gradient GEMMs": t1 - t0, "dx GEMM": t2 - t1}


def profile_train(T, B, H, dtype=np.float32, repeats=5):
    """Where the fallback fast training step (time loop in Python) spends its time, batch not
    split: a replica of that loop with timers around each call."""
    from lstmlab.kernels import fast
    nb = fast._nb()
    D = H
    x, dy, Wx, Wh, b, lens, pc = _profile_inputs(T, B, H, dtype)
    best = None
    for _ in range(repeats + 1):
        acc = dict.fromkeys(["input GEMM", "recurrent GEMM", "fused elementwise",
                             "weight-gradient GEMMs", "dx GEMM"], 0.0)
        t_all = pc()
        t0 = pc()
        gates = (x.reshape(T * B, D) @ Wx).reshape(T, B, 4 * H)
        acc["input GEMM"] += pc() - t0
        h = np.zeros((T + 1, B, H), dtype)
        c = np.zeros((T + 1, B, H), dtype)
        tc = np.empty((T, B, H), dtype)
        rec = np.empty((B, 4 * H), dtype)
        for t in range(T):
            t0 = pc()
            np.dot(h[t], Wh, out=rec)
            t1 = pc()
            nb.lstm_step_forward(gates[t], rec, b, h[t], c[t], h[t + 1], c[t + 1], tc[t], lens, t)
            t2 = pc()
            acc["recurrent GEMM"] += t1 - t0
            acc["fused elementwise"] += t2 - t1
        dz = np.empty((T, B, 4 * H), dtype)
        dh = np.empty((B, H), dtype)
        dhT = np.zeros((B, H), dtype)
        dc = np.zeros((B, H), dtype)
        WhT = Wh.T
        for t in range(T - 1, -1, -1):
            t0 = pc()
            nb.lstm_step_backward(dh, dhT, dy[t], dc, gates[t], tc[t], c[t], dz[t], lens, t)
            t1 = pc()
            np.dot(dz[t], WhT, out=dh)
            t2 = pc()
            acc["fused elementwise"] += t1 - t0
            acc["recurrent GEMM"] += t2 - t1
        acc.update(_time_grads(pc, x, h, dz, Wx))
        total = pc() - t_all
        acc["rest (Python, allocation, timers)"] = total - sum(acc.values())
        acc["total"] = total
        if best is None or total < best["total"]:
            best = acc
    return best


def profile_compiled(T, B, H, dtype=np.float32, repeats=5):
    """The fast path's training step on one thread running the time loop (the default except
    where the pair or the pipelines serve: ``--profile`` splits those apart) in phases: the compiled time loops (recurrent GEMM
    through BLAS + gate math, per step, inside one call) against the big GEMMs done from
    Python."""
    from lstmlab.kernels import fast
    nb = fast.kernels()
    gemm = fast.gemm_address(dtype)
    D = H
    x, dy, Wx, Wh, b, lens, pc = _profile_inputs(T, B, H, dtype)
    best = None
    for _ in range(repeats + 1):
        acc = {}
        t_all = t0 = pc()
        gates = (x.reshape(T * B, D) @ Wx).reshape(T, B, 4 * H)
        h = np.zeros((T + 1, B, H), dtype)
        c = np.zeros((T + 1, B, H), dtype)
        tc = np.empty((T, B, H), dtype)
        Whp = fast.packed_weights(Wh, B, 1)  # as fast.lstm_forward packs (or not)
        t1 = pc()
        nb.lstm_forward_loop(gemm, x.ctypes.data, D, Wx.ctypes.data, Wh, Whp, b, gates, h, c, tc,
                             lens, 0, B, True)
        t2 = pc()
        dz = np.empty((T, B, 4 * H), dtype)
        dh, dhT, dc = np.empty((B, H), dtype), np.zeros((B, H), dtype), np.zeros((B, H), dtype)
        WhT = np.ascontiguousarray(Wh.T)
        WhTp = fast.packed_weights(WhT, B, 1)
        t3 = pc()
        nb.lstm_backward_loop(gemm, dh, dhT, dy, dc, gates, tc, c, dz, WhT, WhTp, lens, 0, B)
        t4 = pc()
        acc = {"input GEMM (+ allocation)": t1 - t0, "forward time loop": t2 - t1,
               "backward time loop": t4 - t3, **_time_grads(pc, x, h, dz, Wx)}
        total = pc() - t_all
        acc["rest"] = total - sum(acc.values())
        acc["total"] = total
        if best is None or total < best["total"]:
            best = acc
    return best


def run_profile(grid):
    from lstmlab.kernels import fast
    if not fast.available():
        print("\n(--profile needs numba)")
        return
    how = "process CPU time, one thread)" if ARGS.single_thread else "wall time)"
    for dtype, (title, fn) in itertools.product(
            (np.float32, np.float64),
            (("one thread running the compiled time loops", profile_compiled),
             ("the same step with the time loop in Python (the fallback), a timer around "
              "every call", profile_train))):
        if fn is profile_compiled and fast.gemm_address(dtype) is None:
            continue
        rows = []
        keys = None
        for (T, B, H) in grid:
            wait_quiet(ARGS.quiet_wait)
            acc = fn(T, B, H, dtype)
            keys = [k for k in acc if k != "total"]
            tot = acc["total"]
            rows.append([f"{T}, {B}, {H}", f"{tot * 1e3:.2f} ms"]
                        + [f"{acc[k] / tot:.0%}" for k in keys])
        table(f"profile of one {np.dtype(dtype).name} training step, {title} (batch not split; "
              "best of 6; " + how, ["T, B, D=H", "total"] + keys, rows)
    if not ARGS.single_thread:
        run_pair_profile(grid)
        run_stream_profile()


def run_stream_profile(H=128, steps=1000, rounds=9):
    """Where a streaming step's time goes (B = 1, D = H, float32): the layer's ``step`` as the
    streaming suite calls it; the compiled step alone on arguments checked beforehand (what the
    layer adds is its Python: type and shape checks, the allocation of the new state, the copy
    of y); an empty compiled function with the same arguments (numba's dispatch); and the
    step's two vector-matrix products looped inside compiled code (no call at all), with the
    rate at which they read the weights. Rounds interleaved, pauses between candidates."""
    from numba import njit

    from lstmlab.kernels import fast
    nb = fast.kernels()
    layer = ours_lstm("lstm", H, H, np.float32).eval()
    xs = np.random.default_rng(0).normal(size=(steps, 1, H)).astype(np.float32)
    _, (h, c) = layer.step(xs[0], None)
    Wxs, Whs, bs = layer._stream_weights()
    hn, cn = np.empty_like(h), np.empty_like(c)

    @njit(cache=False)
    def empty(x, h_prev, c_prev, Wxs, Whs, bs, h, c):
        return 0

    @njit(cache=False, error_model="numpy", fastmath={"contract"})
    def products(x, h, Wx, Wh, z, n):
        for _ in range(n):
            z[:] = 0.0
            nb._vecmat_add(x, Wx, z)
            nb._vecmat_add(h, Wh, z)

    z = np.empty(4 * H, np.float32)

    def step():
        state = None
        for t in range(steps):
            y, state = layer.step(xs[t], state)

    def kernel():
        for t in range(steps):
            nb.lstm_stream_step(xs[t], h, c, Wxs, Whs, bs, hn, cn)

    def dispatch():
        for t in range(steps):
            empty(xs[t], h, c, Wxs, Whs, bs, hn, cn)

    def vecmat():
        products(xs[0, 0], h[0, 0], Wxs[0], Whs[0], z, steps)

    cands = {"layer.step (the streaming suite's call)": step,
             "compiled step alone (arguments checked beforehand)": kernel,
             "empty compiled call, same arguments (dispatch)": dispatch,
             "the two vector-matrix products, looped in compiled code": vecmat}
    ts = interleaved(cands, rounds, 0.05)
    full = np.median(ts[next(iter(cands))])
    kib = 2 * H * 4 * H * 4 / 1024
    rows = []
    for name, v in ts.items():
        extra = (f"; reads the weights ({kib:.0f} KiB) at {kib * 1024 / (np.median(v) / steps) / 1e9:.0f} GB/s"
                 if name.startswith("the two") else "")
        rows.append([name, fmt_t(v / steps), f"{np.median(v) / full:.0%}{extra}"])
    table(f"streaming step split, B=1, D=H={H}, float32, {steps} steps (µs per step; "
          f"{rounds} rounds)", ["part", "per step", "of layer.step (medians)"], rows)


PAIR_PHASES = {"inference": ("input projection", "recurrent product", "gate math"),
               "forward": ("input projection", "recurrent product", "gate math"),
               "backward": ("gate backward", "recurrent product", "weight-gradient GEMMs")}


def run_pair_profile(grid, repeats=6):
    """Where the two-thread pair spends its time, on the grid shapes where it is the default
    (``fast.unit_halves``' shape rule): two training steps (forward, backward; with dx and
    without) and an inference, ``repeats`` times each; each thread's cycle counts per phase, summed, as shares
    of that thread's total (the last column: waiting at the barriers)."""
    from lstmlab.kernels import fast
    rows, pipe_rows, fwd_rows = [], [], []
    for (T, B, H) in grid:
        if (not (fast.pair_shape(B, H) or fast.pipe_shape(B, H))
                or fast.gemm_address(np.float32) is None):
            continue
        x, dy = make_inputs(T, B, H, H, np.float32)
        layer = ours_lstm("lstm", H, H, np.float32)
        infer = ours_lstm("lstm", H, H, np.float32).eval()
        fast.pair_cycles = []
        try:
            for _ in range(repeats):
                time.sleep(ARGS.pause)
                for dx in (True, False):
                    layer.forward(x)
                    layer.backward(dy, input_grad=dx)
                    time.sleep(ARGS.pause)
                infer.forward(x)
            got = fast.pair_cycles
        finally:
            fast.pair_cycles = None
        for kind, phases in PAIR_PHASES.items():
            runs = [c for k, c in got if k == kind]
            for thread in (0, 1):
                counts = np.sum([c[thread] for c in runs], axis=0) if runs else None
                if counts is None or counts.sum() == 0:
                    continue
                share = counts / counts.sum()
                calls = repeats * (1 if kind == "inference" else 2)  # training: with dx, without
                rows.append([f"{T}, {B}, {H}", kind, str(thread), f"{len(runs)}/{calls}"]
                            + [f"{v:.0%}" for v in share])
        for kind in ("pipe backward", "pipe backward, no dx"):
            runs = [c for k, c in got if k == kind]
            if not runs:
                continue
            # per thread, shares of the busier thread's total
            counts = [np.sum([c[thread] for c in runs], axis=0) for thread in (0, 1)]
            longest = max(float(c.sum()) for c in counts) or 1.0
            for thread, what in ((0, "recurrence, then shares of dWx (and dx)"),
                                 (1, "dWh (and dx) chunk by chunk, then shares of dWx")):
                cnt = counts[thread]
                pipe_rows.append([f"{T}, {B}, {H}", "with dx" if kind == "pipe backward"
                                  else "without dx", f"{thread}: {what}",
                                  f"{len(runs)}/{repeats}", f"{cnt[0] / longest:.0%}",
                                  f"{cnt[1] / longest:.0%}", f"{cnt[2] / longest:.0%}",
                                  f"{cnt.sum() / longest:.0%}"])
        runs = [c for k, c in got if k == "pipe forward"]
        if runs:
            counts = [np.sum([c[thread] for c in runs], axis=0) for thread in (0, 1)]
            longest = max(float(c.sum()) for c in counts) or 1.0
            for thread, what in ((0, "recurrence"), (1, "input projection, chunk by chunk")):
                cnt = counts[thread]
                fwd_rows.append([f"{T}, {B}, {H}", f"{thread}: {what}",
                                 f"{len(runs)}/{2 * repeats}", f"{cnt[0] / longest:.0%}",
                                 f"{cnt[1] / longest:.0%}", f"{cnt[2] / longest:.0%}",
                                 f"{cnt.sum() / longest:.0%}"])
    if fwd_rows:
        table("the pipelined forward's time split (cycle counts of each thread, summed over the "
              "runs that took it, as shares of the busier thread's total; lstm_forward_pipe)",
              ["T, B, D=H", "thread", "runs pipelined", "recurrence", "projection",
               "waiting for the projection", "thread's total"], fwd_rows)
    if pipe_rows:
        table("the pipelined backward's time split (cycle counts of each thread, summed over the "
              "runs that took it, as shares of the busier thread's total; lstm_backward_pipe)",
              ["T, B, D=H", "backward", "thread", "runs pipelined", "recurrence", "GEMMs",
               "waiting for the recurrence", "thread's total"], pipe_rows)
    if rows:
        table("the two-thread pair's time split (cycle counts of each thread, summed over the "
              "runs that took the pair; phases as in lstm_forward_units / lstm_backward_units)",
              ["T, B, D=H", "call", "thread", "runs on the pair", "projection / gate backward",
               "recurrent product", "gate math / weight-gradient GEMMs", "waiting at barriers"],
              rows)


# -- memory -------------------------------------------------------------------------------
_MEM_CHILD = r"""
import sys, tracemalloc, json
import numpy as np
which, T, B, H = sys.argv[1], *map(int, sys.argv[2:5])
import torch, lstmlab
rng = np.random.default_rng(0)

def status(key):
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith(key + ":"))  # KiB

def setup(T, B):
    x = rng.normal(size=(T, B, H)).astype(np.float32)
    dy = rng.normal(size=(T, B, H)).astype(np.float32)
    if which == "torch":
        mod = torch.nn.LSTM(H, H); tx, tdy = torch.from_numpy(x), torch.from_numpy(dy)
        def step():
            mod.zero_grad(set_to_none=True); y, _ = mod(tx); (y * tdy).sum().backward()
    else:
        layer = lstmlab.LSTM(H, H, rng=rng); layer.backend = which
        def step():
            y, _ = layer.forward(x); layer.backward(dy)
    return step

setup(2, 2)()  # libraries loaded, kernels compiled, outside the measurement
step = setup(T, B)
before = status("VmRSS")
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")  # reset the peak-RSS mark (VmHWM) to the current RSS
tracemalloc.start()
step()
_, traced = tracemalloc.get_traced_memory()
print(json.dumps({"rss_delta_mib": (status("VmHWM") - before) / 1024, "traced_mib": traced / 2**20}))
"""


def run_memory(grid):
    import json
    rows = []
    for (T, B, H) in grid:
        res = {}
        for which in ("fast", "numpy", "torch"):
            env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536")  # big blocks go back at free
            out = subprocess.run([sys.executable, "-c", _MEM_CHILD, which, str(T), str(B), str(H)],
                                 capture_output=True, text=True, check=True, env=env)
            res[which] = json.loads(out.stdout.strip().splitlines()[-1])
        cache_mib = (7 * T + 2) * B * H * 4 / 2**20  # gates 4H, tanh C, h and c (T+1) per row
        rows.append([f"{T}, {B}, {H}", f"{res['fast']['rss_delta_mib']:.1f}",
                     f"{res['fast']['traced_mib']:.1f}", f"{res['numpy']['rss_delta_mib']:.1f}",
                     f"{res['torch']['rss_delta_mib']:.1f}", f"{cache_mib:.1f}"])
    table("peak memory of one float32 training step, MiB (each in a fresh subprocess: peak RSS "
          "during the step minus RSS before it, with glibc returning big blocks at free; and "
          "tracemalloc's peak of NumPy's allocations)",
          ["T, B, D=H", "lstmlab fast RSS", "lstmlab fast traced", "lstmlab numpy RSS",
           "torch RSS", "cache size (7T+2)·B·H·4 B"], rows)


# -- compile cost -------------------------------------------------------------------------
_COMPILE_CHILD = r"""
import time, json
t0 = time.perf_counter()
import numpy as np, lstmlab
from lstmlab.kernels import fast
t1 = time.perf_counter()
ok = fast.available()
t2 = time.perf_counter()
res = {"import_lstmlab_s": t1 - t0, "import_numba_s": t2 - t1}
for dt in (np.float32, np.float64):
    layer = lstmlab.LSTM(8, 8, dtype=dt, rng=np.random.default_rng(0)); layer.backend = "fast"
    x = np.ones((3, 2, 8), dt)
    t0 = time.perf_counter(); y, _ = layer.forward(x); layer.backward(np.ones_like(y))
    t1 = time.perf_counter(); y, _ = layer.forward(x); layer.backward(np.ones_like(y))
    t2 = time.perf_counter()
    res[f"lstm_{np.dtype(dt).name}_first_s"] = t1 - t0
    res[f"lstm_{np.dtype(dt).name}_second_s"] = t2 - t1
print(json.dumps(res))
"""


def run_compile():
    import json
    rows = []
    with tempfile.TemporaryDirectory() as cache_dir:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir)
        for label in ("empty cache (compiles)", "warm on-disk cache"):
            out = subprocess.run([sys.executable, "-c", _COMPILE_CHILD], env=env,
                                 capture_output=True, text=True, check=True)
            r = json.loads(out.stdout.strip().splitlines()[-1])
            rows.append([label, f"{r['import_lstmlab_s']:.2f}", f"{r['import_numba_s']:.2f}",
                         f"{r['lstm_float32_first_s']:.2f}", f"{r['lstm_float64_first_s']:.2f}",
                         f"{r['lstm_float32_second_s'] * 1e3:.2f} ms"])
    table("compile cost (LSTM forward + backward kernels; fresh subprocesses, NUMBA_CACHE_DIR "
          "a new temporary directory)", ["run", "import lstmlab, s", "import numba, s",
                                         "first float32 call, s", "first float64 call, s",
                                         "next call"], rows)


def run_elementwise(grid):
    """Time the compiled per-step gate math alone (forward and backward kernels, one call per
    step as the Python time loop makes them), per hidden unit and step."""
    from lstmlab.kernels import fast
    nb = fast.kernels()
    rows = []
    for (T, B, H) in grid:
        row = [f"{B}, {H}"]
        for dtype in (np.float32, np.float64):
            rng = np.random.default_rng(0)
            g = rng.normal(size=(B, 4 * H)).astype(dtype)
            rec, b = g.copy(), rng.normal(size=4 * H).astype(dtype)
            s = [rng.normal(size=(B, H)).astype(dtype) for _ in range(9)]
            lens = np.full(B, 10, np.int64)
            gs = (1 / (1 + np.exp(-g))).astype(dtype)
            calls = {"forward": lambda: nb.lstm_step_forward(g, rec, b, *s[:5], lens, 0),
                     "backward": lambda: nb.lstm_step_backward(*s[5:9], gs, s[0], s[1], g, lens, 0)}
            for name, f in calls.items():
                f()
                n = max(50, 200_000 // (B * H))
                best = float("inf")
                for _ in range(5):
                    t0 = time.perf_counter()
                    for _ in range(n):
                        f()
                    best = min(best, (time.perf_counter() - t0) / n)
                row.append(f"{best / (B * H) * 1e9:.2f}")
        rows.append(row)
    table("fused gate math alone, ns per hidden unit per step (one compiled call per step over "
          "B rows, best of 5; includes the ~1-2 µs of each call)",
          ["B, H", "forward float32", "backward float32", "forward float64", "backward float64"],
          rows)


def run_packed(grid):
    """The recurrent product of one step — forward (B, H)·(H, 4H), backward (B, 4H)·(4H, H) —
    by BLAS on one thread, by lstmlab's packed kernel (weights packed once, outside the
    timing) on one thread, and by BLAS on its threads: µs per step, median of 5 runs of
    many steps, interleaved with pauses."""
    from threadpoolctl import threadpool_limits

    from lstmlab.kernels import fast
    nb = fast.kernels()
    rows = []
    for (T, B, H) in grid:
        if B <= fast.STREAM_ROWS:
            continue  # a few rows: vector-matrix products, neither BLAS nor packed
        for dtype in (np.float32, np.float64):
            rng = np.random.default_rng(0)
            for name, (K, N) in (("forward", (H, 4 * H)), ("backward", (4 * H, H))):
                a = rng.normal(size=(B, K)).astype(dtype)
                W = rng.normal(size=(K, N)).astype(dtype)
                wp = fast.pack_panels(W)
                c = np.empty((B, N), dtype)
                n = max(20, int(2e8 / (2 * B * K * N)))

                def blas():
                    for _ in range(n):
                        np.dot(a, W, out=c)

                def packed():
                    for _ in range(n):
                        nb.packed_product(a, wp, c, False)

                times = {"blas1": [], "packed": [], "blas": []}
                blas(), packed()
                for _ in range(5):
                    for key in times:
                        time.sleep(ARGS.pause)
                        if key == "blas1":
                            with threadpool_limits(1, user_api="blas"):
                                t0 = time.perf_counter()
                                blas()
                        else:
                            t0 = time.perf_counter()
                            (packed if key == "packed" else blas)()
                        times[key].append((time.perf_counter() - t0) / n)
                med = {k: float(np.median(v)) for k, v in times.items()}
                flops = 2.0 * B * K * N
                rows.append([f"{B}, {H}", np.dtype(dtype).name, name,
                             f"{med['blas1'] * 1e6:.1f}", f"{med['packed'] * 1e6:.1f}",
                             f"{med['blas1'] / med['packed']:.2f}",
                             f"{flops / med['packed'] / 1e9:.0f}", f"{med['blas'] * 1e6:.1f}"])
    table("the recurrent product of one step, µs (median of 5; packed weights prepared once)",
          ["B, H", "dtype", "product", "BLAS, 1 thread", "packed, 1 thread",
           "BLAS 1 thread / packed", "GFLOP/s packed", "BLAS, its threads"], rows)
    run_pack_units(grid)


def run_pack_units(grid):
    """What a thread of the pair does before its first step, on every call: its half of the
    hidden units' recurrent weights packed for the packed kernel — columns of ``Wh`` for the
    forward (``_pack_units``), rows of ``Wh`` transposed for the backward
    (``_transpose_pack_units``). ms per call, median of 9; GB/s of packed weights written."""
    from lstmlab.kernels import fast
    nb = fast.kernels()

    def pack(W, H, u0, u1, out):
        nb.pack_units(W, H, u0, u1, out)

    def transpose_pack(W, H, u0, u1, out):
        nb.transpose_pack_units(W, u0, u1, out)

    rows = []
    for H in sorted({H for (_, _, H) in grid if H >= fast.PAIR_MIN_HIDDEN}):
        for dtype in (np.float32, np.float64):
            nr = 64 // np.dtype(dtype).itemsize
            u0 = int(round(H / 2 / nr)) * nr  # the second half, as fast.unit_halves splits
            n = H - u0
            Wh = np.random.default_rng(0).normal(size=(H, 4 * H)).astype(dtype)
            cells = []
            for fn, out in ((pack, np.empty((4 * n // nr, H, nr), dtype)),
                            (transpose_pack, np.empty((n // nr, 4 * H, nr), dtype))):
                if out.shape[0] * nr != out.size // out.shape[1]:
                    cells += ["", ""]
                    continue
                fn(Wh, H, u0, H, out)
                times = []
                for _ in range(9):  # back to back, as in a call (after a pause the core
                    t0 = time.perf_counter()  # runs its first milliseconds slower)
                    fn(Wh, H, u0, H, out)
                    times.append(time.perf_counter() - t0)
                med = float(np.median(times))
                cells += [f"{med * 1e3:.3f}", f"{out.nbytes / med / 1e9:.1f}"]
            rows.append([str(H), np.dtype(dtype).name, f"{n}", *cells])
    table("a pair thread's share of Wh packed, per call (one thread; median of 9)",
          ["H", "dtype", "units", "forward pack, ms", "GB/s", "backward transposed pack, ms",
           "GB/s"], rows)


THREAD_MODES = {  # lstmlab's ways of using the two cores, as environment settings
    # the pair where it serves (fast.unit_halves), the pipelined backward where that serves
    # (fast.pipe_backward), else one loop
    "default": {},
    # one thread runs the time loop, BLAS on both cores
    "one loop": {"LSTMLAB_PAIR": "0", "LSTMLAB_PIPE": "0", "LSTMLAB_PIPE_FORWARD": "0"},
    # each recurrence on one thread, the big GEMMs on the other: the forward's input
    # projection ahead of it, the backward's weight gradients and dx behind it
    "pipe always": {"LSTMLAB_PAIR": "0", "LSTMLAB_PIPE": "1", "LSTMLAB_PIPE_FORWARD": "1"},
    # the backward pipelined, the forward one loop (the default before the forward pipeline)
    "pipe, backward only": {"LSTMLAB_PAIR": "0", "LSTMLAB_PIPE": "1",
                            "LSTMLAB_PIPE_FORWARD": "0"},
    # both pipelined, all of dWx on the recurrence's thread (before the backward's balancing)
    "pipe, dWx on one thread": {"LSTMLAB_PAIR": "0", "LSTMLAB_PIPE": "1",
                                "LSTMLAB_PIPE_FORWARD": "1", "LSTMLAB_PIPE_BALANCE": "0"},
    "pair always": {"LSTMLAB_PAIR": "1"},  # two threads, one per half of the hidden units
    "pair, BLAS product": {"LSTMLAB_PAIR": "1", "LSTMLAB_PACKED": "0"},  # its product by BLAS
    "batch split": {"LSTMLAB_THREADS": "2"},  # two threads, one per half of the batch
}


def run_threads(grid, repeats):
    """lstmlab against itself: the ways it can use two cores (:data:`THREAD_MODES`) on the
    same training step (input as data; float32 also with dx), float32 inference and float64
    training step, interleaved in one process; medians, and each mode's time over the
    default's."""
    modes = thread_modes()
    rows = []
    for (T, B, H) in grid:
        cands = {}
        for dtype, kinds in ((np.float32, ("train", "train dx", "infer")),
                             (np.float64, ("train",))):
            x, dy = make_inputs(T, B, H, H, dtype)
            for kind in kinds:
                layer = ours_lstm("lstm", H, H, dtype)
                if kind == "infer":
                    layer.eval()
                for mode, env in modes.items():
                    if mode == "batch split" and B < 2:
                        continue

                    def run(layer=layer, env=env, kind=kind, x=x, dy=dy):
                        with _env(env):
                            y, _ = layer.forward(x)
                            if kind.startswith("train"):
                                float(np.vdot(y, dy))
                                layer.backward(dy, input_grad=kind == "train dx")
                    cands[(np.dtype(dtype).name, kind, mode)] = run
        ts = interleaved(cands, repeats, ARGS.pause)
        m = {k: float(np.median(v)) for k, v in ts.items()}
        for (dt, kind) in (("float32", "train"), ("float32", "train dx"), ("float32", "infer"),
                           ("float64", "train")):
            base = m[(dt, kind, "default")]
            cells = []
            for mode in modes:
                t = m.get((dt, kind, mode))
                cells.append("—" if t is None else f"{t * 1e3:.3g} ms ({t / base:.2f})")
            rows.append([f"{T}, {B}, {H}", f"{kind} {dt}"] + cells)
    table("lstmlab's ways of using two cores (interleaved, medians; in brackets the time over "
          "the default's: > 1 means the default is faster)",
          ["T, B, D=H", "step"] + list(modes), rows)


def thread_modes() -> dict:
    """The modes of :data:`THREAD_MODES` that ``--modes`` names (all without it), the default
    first; an unknown name stops the benchmark with the list of known ones."""
    if not ARGS.modes:
        return dict(THREAD_MODES)
    names = [m.strip() for m in ARGS.modes.split(";") if m.strip()]
    unknown = [m for m in names if m not in THREAD_MODES]
    if unknown:
        raise SystemExit(f"--modes: unknown {unknown}; known: {', '.join(THREAD_MODES)}")
    return {m: THREAD_MODES[m] for m in ["default"] + [m for m in names if m != "default"]}


def run_stream_threads(repeats, steps=1000, sizes=(128, 256, 512)):
    """The streaming step (B = 1, D = H, one layer, float32, ``steps`` steps of
    ``LSTM.step``) on one thread and on two (``LSTMLAB_STREAM_PAIR=0`` / ``=1``), interleaved;
    time per step, medians, and the two-thread time over the one-thread time per round."""
    from lstmlab.kernels import fast
    rows = []
    for H in sizes:
        layer = ours_lstm("lstm", H, H, np.float32).eval()
        xs = np.random.default_rng(0).normal(size=(steps, 1, H)).astype(np.float32)
        cands = {}
        for mode in ("0", "1"):
            def run(mode=mode):
                with _env({"LSTMLAB_STREAM_PAIR": mode}):
                    fast._stream_pair_memo.clear()
                    state = None
                    for t in range(steps):
                        _, state = layer.step(xs[t], state)
                fast._stream_pair_memo.clear()
            cands[mode] = run
        ts = interleaved(cands, repeats, ARGS.pause)
        one, two = ts["0"] / steps, ts["1"] / steps
        rows.append([f"1, 1, {H}", fmt_t(one), fmt_t(two), f"**{np.median(two / one):.2f}**",
                     f"{two.min() / one.min():.2f}",
                     "two" if fast.stream_pair(H, 1) else "one"])
    table(f"streaming step on one thread and on two (LSTMLAB_STREAM_PAIR=0 / 1; B = 1, D = H, "
          f"float32, {steps} steps; time per step)",
          ["T, B, D=H", "one thread", "two threads", "two / one (per round, median)",
           "best / best", "default"], rows)


class _env:
    """Set environment variables (a dict) for the duration of a ``with`` block."""

    def __init__(self, values: dict):
        self.values = values

    def __enter__(self):
        self.old = {k: os.environ.get(k) for k in self.values}
        os.environ.update(self.values)

    def __exit__(self, *exc):
        for k, v in self.old.items():
            if v is None:
                del os.environ[k]
            else:
                os.environ[k] = v
        return False


def run_blas_spin():
    """CPU time the process uses while the main thread sleeps right after one multi-threaded
    OpenBLAS call: the worker thread's busy-waiting."""
    a = np.random.default_rng(0).normal(size=(512, 512)).astype(np.float32)
    rows = []
    for sleep in (0.02, 0.05, 0.1, 0.2, 0.4):
        np.dot(a, a)
        r0 = resource.getrusage(resource.RUSAGE_SELF)
        time.sleep(sleep)
        r1 = resource.getrusage(resource.RUSAGE_SELF)
        cpu = (r1.ru_utime + r1.ru_stime) - (r0.ru_utime + r0.ru_stime)
        rows.append([f"{sleep:.2f}", f"{cpu * 1e3:.0f}"])
    table("CPU used by the process while sleeping just after a 512³ float32 np.dot (2 BLAS "
          "threads)", ["sleep, s", "process CPU during the sleep, ms"], rows)

    # What the busy thread costs two threads of our own compiled code (the batch split), and
    # what the interpreter lock costs two threads that call BLAS once per step.
    import threading

    from threadpoolctl import threadpool_limits
    from lstmlab.kernels import fast
    step = fast.kernels().lstm_step_forward  # any nogil kernel serves as fixed work
    B, H = 64, 256
    rng = np.random.default_rng(1)
    g0 = rng.normal(size=(B, 4 * H)).astype(np.float32)
    args = [[g0.copy(), g0.copy(), np.zeros(4 * H, np.float32)]
            + [np.zeros((B, H), np.float32) for _ in range(5)]
            + [np.full(B, 10, np.int64), 0] for _ in range(2)]

    def work(a):
        for _ in range(400):
            step(*a)

    def two(target, targs):
        ts = [threading.Thread(target=target, args=(a,)) for a in targs]
        t0 = time.perf_counter()
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        return time.perf_counter() - t0

    work(args[0])
    rows = []
    for rest in (0.0, 0.3):
        best = float("inf")
        for _ in range(3):
            np.dot(a, a)
            time.sleep(rest)
            best = min(best, two(work, args))
        rows.append([f"{rest:.1f}", f"{best * 1e3:.0f}"])
    table("two threads of compiled gate math (400 steps each, B=64, H=256) started right after "
          "a 2-thread np.dot, or after a rest; best of 3",
          ["rest after the np.dot, s", "wall time, ms"], rows)

    A = [rng.normal(size=(16, 128)).astype(np.float32) for _ in range(2)]
    W = rng.normal(size=(128, 512)).astype(np.float32)
    C = [np.empty((16, 512), np.float32) for _ in range(2)]

    def dots(i, n=1000):
        for _ in range(n):
            np.dot(A[i], W, out=C[i])

    with threadpool_limits(1):
        dots(0, 10)
        time.sleep(0.3)
        t0 = time.perf_counter()
        dots(0, 2000)
        one = time.perf_counter() - t0
        time.sleep(0.3)
        both = two(dots, (0, 1))
    table("(16, 128)·(128, 512) float32 np.dot, single-threaded BLAS: 2,000 calls on one "
          "thread against 1,000 on each of two threads",
          ["one thread, ms", "two threads, ms", "speed-up"],
          [[f"{one * 1e3:.0f}", f"{both * 1e3:.0f}", f"{one / both:.2f}"]])

    # What the pair's guard costs: right after a multi-threaded call, reading the threads'
    # states, ending OpenBLAS's busy workers and reading again (fast._cores_free); then the
    # next multi-threaded call, which starts them again.
    rows = []
    for _ in range(7):
        np.dot(a, a)
        t0 = time.perf_counter()
        free = fast._cores_free()
        t1 = time.perf_counter()
        np.dot(a, a)
        t2 = time.perf_counter()
        np.dot(a, a)
        t3 = time.perf_counter()
        rows.append((t1 - t0, free, t2 - t1, t3 - t2))
        time.sleep(0.3)
    guard, free, after, again = zip(*rows)
    woke = []  # does a training step's loss, np.vdot over T·B·H = 409,600 elements, wake it?
    for dt in (np.float32, np.float64):
        y = np.random.default_rng(2).normal(size=(100, 32, 128)).astype(dt)
        time.sleep(0.3)
        float(np.vdot(y, y))
        woke.append(f"{np.dtype(dt).name}: {'yes' if fast._another_thread_running() else 'no'}")
    table("the pair's guard right after a 2-thread 512³ np.dot: reading the threads' states, "
          "ending OpenBLAS's busy worker (when no other Python thread exists), reading again; "
          "medians of 7",
          ["guard, ms", "cores free afterwards", "next np.dot, ms", "the one after, ms",
           "np.vdot of 409,600 elements leaves a thread running"],
          [[f"{np.median(guard) * 1e3:.2f}", f"{sum(free)}/7", f"{np.median(after) * 1e3:.2f}",
            f"{np.median(again) * 1e3:.2f}", ", ".join(woke)]])


def run_pool(grid, repeats):
    """What fresh memory costs: the first write to a newly allocated array against a second
    write to it; then lstmlab's training step (input as data) with its buffer pool serving
    (``fast.buffers``, the default) and with it off, interleaved, float32 and float64."""
    from lstmlab.kernels import fast
    rows = []
    for mib in (8, 24, 48, 96):
        n = mib * 2**20 // 8
        first, again = [], []
        for _ in range(7):
            t0 = time.perf_counter()
            a = np.empty(n)
            a.fill(1.0)
            t1 = time.perf_counter()
            a.fill(2.0)
            t2 = time.perf_counter()
            del a
            first.append(t1 - t0)
            again.append(t2 - t1)
        f, g = np.median(first), np.median(again)
        rows.append([f"{mib}", f"{f * 1e3:.2f}", f"{g * 1e3:.2f}", f"{f / g:.2f}"])
    table("writing a newly allocated float64 array (np.empty, then fill) against writing it "
          "again; medians of 7", ["MiB", "first write, ms", "second write, ms", "ratio"], rows)

    default = fast.buffers.min_bytes
    fast.buffers.release()  # what earlier studies of this run left in the pool
    rows = []
    for (T, B, H) in grid:
        for dtype in (np.float32, np.float64):
            x, dy = make_inputs(T, B, H, H, dtype)
            cands = {}
            for mode, min_bytes in (("pool", default), ("no pool", 1 << 62)):
                layer = ours_lstm("lstm", H, H, dtype)

                def run(layer=layer, min_bytes=min_bytes, x=x, dy=dy):
                    fast.buffers.min_bytes = min_bytes
                    try:
                        y, _ = layer.forward(x)
                        float(np.vdot(y, dy))
                        layer.backward(dy, input_grad=False)
                    finally:
                        fast.buffers.min_bytes = default
                cands[mode] = run
            ts = interleaved(cands, repeats, ARGS.pause)
            on, off = np.median(ts["pool"]), np.median(ts["no pool"])
            pooled = T * B * 4 * H * np.dtype(dtype).itemsize >= default  # the (T, B, 4H) arrays
            cands["pool"]()  # one more step: what the pool holds between steps of a loop
            used, free = (v / 2**20 for v in fast.buffers.held_bytes())
            rows.append([f"{T}, {B}, {H}", np.dtype(dtype).name,
                         "yes" if pooled else "no", f"{on * 1e3:.3g} ms",
                         f"{off * 1e3:.3g} ms", f"{off / on:.2f}", f"{used:.0f} / {free:.0f}"])
            del cands, ts
            fast.buffers.release()
    table(f"lstmlab's training step with its buffer pool (arrays of >= {default >> 20} MiB "
          "reused) and without; interleaved, medians; and the pool's buffers after one more "
          "step: referenced (by the layer's cache) / free", ["T, B, D=H", "dtype",
          "gate cache pooled", "pool", "no pool", "no pool / pool", "pool after a step, MiB"],
          rows)
    fast.buffers.release()


def main() -> int:
    import torch
    from lstmlab.kernels import fast

    if ARGS.single_thread:
        from threadpoolctl import threadpool_limits
        torch.set_num_threads(1)
        main.limits = threadpool_limits(1)  # kept for the whole run

    quick = ARGS.quick
    repeats = ARGS.repeats or (3 if quick else 9)
    grid = QUICK_GRID if quick else GRID
    if ARGS.shapes:
        grid = [tuple(int(v) for v in part.split(",")) for part in ARGS.shapes.split(";")]
    suites = set(ARGS.suites.split(","))
    print("## lstmlab vs PyTorch\n")
    for line in machine_facts(torch):
        print(f"- {line}")
    print(f"- lstmlab fast kernels: {'numba' if fast.available() else 'unavailable (NumPy reference)'}"
          f"; repeats {repeats}, pause {ARGS.pause} s"
          + ("; SINGLE THREAD, times are process CPU time" if ARGS.single_thread else ""))
    wait_quiet(ARGS.quiet_wait)
    peak32 = gemm_peak(torch, np.float32)
    peak64 = gemm_peak(torch, np.float64)
    peak = max(peak32)
    print(f"- GEMM peak 2048³: float32 NumPy {peak32[0]:.0f}, torch {peak32[1]:.0f} GFLOP/s "
          f"(peak used: {peak:.0f}); float64 NumPy {peak64[0]:.0f}, torch {peak64[1]:.0f}")
    if fast.available():  # compile (or load) outside the timings
        warm = ours_lstm("lstm", 4, 4, np.float32)
        warm.forward(np.zeros((2, 2, 4), np.float32))
    t_start = time.perf_counter()
    if "train" in suites:
        run_sequence_suite(torch, "LSTM training step, float32 (forward + loss + backward)", "lstm",
                           train_candidates, grid, np.float32, True, peak, repeats, ARGS.pause)
    if "train-dx" in suites:
        run_sequence_suite(torch, "LSTM training step, float32, with the input gradient dx",
                           "lstm", train_candidates, grid, np.float32, True, peak, repeats,
                           ARGS.pause, input_grad=True)
    if "infer" in suites:
        run_sequence_suite(torch, "LSTM inference, float32 (full sequence)", "lstm",
                           infer_candidates, grid, np.float32, False, peak, repeats, ARGS.pause)
    if "stream" in suites:
        run_stream(torch, repeats, ARGS.pause, steps=300 if quick else 1000)
    if "f64" in suites:
        run_sequence_suite(torch, "LSTM training step, float64 (fraction of the float64 peak)",
                           "lstm", train_candidates, grid, np.float64, True, max(peak64), repeats,
                           ARGS.pause)
    if "f64-dx" in suites:
        run_sequence_suite(torch, "LSTM training step, float64, with the input gradient dx",
                           "lstm", train_candidates, grid, np.float64, True, max(peak64), repeats,
                           ARGS.pause, input_grad=True)
    if "rnn" in suites:
        rgrid = grid[:3] if quick else grid
        run_sequence_suite(torch, "RNN (tanh) training step, float32", "rnn", train_candidates,
                           rgrid, np.float32, True, peak, repeats, ARGS.pause)
        run_sequence_suite(torch, "RNN (tanh) inference, float32", "rnn", infer_candidates,
                           rgrid, np.float32, False, peak, repeats, ARGS.pause)
    if ARGS.profile:
        run_profile(grid)
    if ARGS.memory:
        run_memory(grid)
    if ARGS.compile:
        run_compile()
    if ARGS.elementwise:
        run_elementwise(grid)
    if ARGS.threads:
        run_threads(grid, repeats)
        run_stream_threads(repeats)
    if ARGS.packed:
        run_packed(grid)
    if ARGS.blas_spin:
        run_blas_spin()
    if ARGS.pool:
        run_pool(grid, repeats)
    print(f"\n(timed suites took {time.perf_counter() - t_start:.0f} s; load average at end "
          f"{os.getloadavg()[0]:.2f}; peak RSS of this process "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
