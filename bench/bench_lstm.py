"""Benchmark: lstmlab's LSTM, RNN and GRU against torch.nn.LSTM / nn.RNN / nn.GRU in one process.

Dimensions: T time, B batch, D input features, H hidden units (here D = H).

Shapes: the fixed grid below, plus ``--samples`` shapes drawn at random (``--seed``) with T in
[20, 400], B in [1, 128], H = D in [32, 512], so that nothing is tuned to a grid. For every
shape the candidates (lstmlab, torch, and with ``--baseline DIR`` the lstmlab package of
another checkout) run in rounds; in each round every candidate, in a new random order, runs a
block of consecutive calls (as a training loop does) and then the machine rests for
``--pause`` seconds, so that one library's idle worker threads do not slow the next. A
candidate's time is the median over rounds of its block time per call; the ratio is torch's
median over lstmlab's (> 1: lstmlab is faster).

Suites: train-dx (forward + backward with the input gradient, float32), infer (forward in eval
mode / torch inference_mode), f64 (float64 training with dx), rnn (nn.RNN, training with dx),
gru (nn.GRU, training with dx; its GFLOP/s count nn.GRU's three gate blocks, while lstmlab's
compiled GRU multiplies x_t by four, one of zeros: ``kernels/_cells.py``), vdrop (an LSTM with
variational dropout, ``LSTM(dropout_input=0.25, dropout_recurrent=0.25)``, training with dx,
against the Python loop of LSTMCell arithmetic with masks a PyTorch user writes,
``bench/torch_vdrop_lstm.py``, eager and TorchScript; the ratio is over the faster), stream
(B = 1, single steps: ``LSTM.step`` against nn.LSTM called per step and nn.LSTMCell), lnlstm
(``LSTM(layer_norm=True)``, training with dx, against the layer-norm LSTM a PyTorch user
writes, ``bench/torch_lnlstm.py``: an eager loop and its TorchScript; the torch ratio is the
faster of the two over lstmlab; GFLOP/s count the products only). vdrop and lnlstm also time
the plain LSTM of the same size, lstmlab's and nn.LSTM: the faster loop over lstmlab's plain
step is the variant's ceiling, the ratio it would reach if its extra work cost nothing.

    .venv/bin/python bench/bench_lstm.py                      # grid + 8 random shapes
    .venv/bin/python bench/bench_lstm.py --quick              # a smaller run
    .venv/bin/python bench/bench_lstm.py --single-thread      # both libraries on one thread
    .venv/bin/python bench/bench_lstm.py --baseline ../old --suites train-dx,infer --no-samples
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

GRID = [(100, 32, 128), (100, 64, 256), (50, 16, 512), (200, 8, 64), (100, 128, 128),
        (1000, 1, 128)]
SUITES = ("train-dx", "infer", "f64", "rnn", "gru", "vdrop", "stream", "lnlstm")


def build_parser() -> argparse.ArgumentParser:
    """The script's command line, built without running anything (tests/test_docs.py parses
    the documented commands with it)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--suites", default=",".join(SUITES), help=f"subset of {','.join(SUITES)}")
    p.add_argument("--samples", type=int, default=8, help="random shapes besides the grid (8)")
    p.add_argument("--no-samples", dest="samples", action="store_const", const=0)
    p.add_argument("--no-grid", action="store_true", help="only the random shapes")
    p.add_argument("--seed", type=int, default=0, help="seed of the random shapes (0)")
    p.add_argument("--shapes", default=None, metavar="T,B,H;...", help="replace the grid")
    p.add_argument("--quick", action="store_true", help="3 random shapes, fewer rounds")
    p.add_argument("--pause", type=float, default=0.25, help="seconds between blocks (0.25)")
    p.add_argument("--block", type=float, default=0.3,
                   help="seconds of consecutive calls per block (0.3)")
    p.add_argument("--max-calls", type=int, default=10**6,
                   help="at most this many calls per block (no limit)")
    p.add_argument("--budget", type=float, default=3.0,
                   help="seconds of calls per candidate and shape (3); at least 3 rounds")
    p.add_argument("--single-thread", action="store_true",
                   help="both libraries on one thread, timed by process CPU time")
    p.add_argument("--baseline", metavar="DIR",
                   help="also time the lstmlab package of the checkout at DIR (its src/lstmlab)")
    p.add_argument("--compile", action="store_true", help="numba compile and cache-load cost")
    return p


ARGS = build_parser().parse_args(None if __name__ == "__main__" else [])  # imported: the defaults

import lstmlab  # noqa: E402
import torch  # noqa: E402


def load_baseline(path: str):
    """The lstmlab package at ``path/src/lstmlab``, imported as ``lstmlab_baseline`` from a
    copy in a temporary folder: numba's disk cache of the copy names that module, and would
    break the checkout's own cache if written there."""
    copy = os.path.join(tempfile.mkdtemp(prefix="lstmlab-baseline-"), "lstmlab")
    shutil.copytree(os.path.join(path, "src", "lstmlab"), copy,
                    ignore=shutil.ignore_patterns("__pycache__"))
    init = os.path.join(copy, "__init__.py")
    spec = importlib.util.spec_from_file_location("lstmlab_baseline", init,
                                                  submodule_search_locations=[os.path.dirname(init)])
    mod = importlib.util.module_from_spec(spec)
    sys.modules["lstmlab_baseline"] = mod
    spec.loader.exec_module(mod)
    return mod


BASELINE = load_baseline(ARGS.baseline) if ARGS.baseline else None
CLOCK = time.process_time if ARGS.single_thread else time.perf_counter
if ARGS.single_thread:
    torch.set_num_threads(1)
    for pkg in (lstmlab, BASELINE):  # the baseline too: its spare threads would count
        if pkg is not None:
            pkg.set_num_threads(1)


def sample_shapes(n: int, seed: int) -> list[tuple[int, int, int]]:
    rng = np.random.default_rng(seed)
    return [(int(rng.integers(20, 401)), int(rng.integers(1, 129)), int(rng.integers(32, 513)))
            for _ in range(n)]


def lstm_flops(T, B, D, H, G=4, train=True) -> float:
    """GEMM FLOPs: forward 2·T·B·(D+H)·G·H; a training step with dx three times that."""
    fwd = 2.0 * T * B * (D + H) * G * H
    return 3 * fwd if train else fwd


# -- the candidates -------------------------------------------------------------------------
def make_layer(pkg, kind, H, dtype, train):
    cls = {"lstm": pkg.LSTM, "rnn": pkg.RNN, "gru": getattr(pkg, "GRU", None)}[kind]
    layer = cls(H, H, dtype=dtype, rng=np.random.default_rng(1))
    return layer if train else layer.eval()


def torch_twin(layer, kind):
    mod = getattr(torch.nn, kind.upper())(layer.input_size, layer.hidden_size)
    mod = mod.to(torch.float64 if layer.dtype == np.float64 else torch.float32)
    mod.load_state_dict({k: torch.from_numpy(np.ascontiguousarray(v))
                         for k, v in layer.torch_state_dict().items()})
    return mod


def sequence_candidates(kind, T, B, H, dtype, train):
    """``{name: call}`` for one shape: a training step with dx, or an inference forward."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(T, B, H)).astype(dtype)
    dy = rng.normal(size=(T, B, H)).astype(dtype)
    pkgs = {"lstmlab": lstmlab} | ({"baseline": BASELINE} if BASELINE else {})
    cands = {}
    for name, pkg in pkgs.items():
        layer = make_layer(pkg, kind, H, dtype, train)
        if train:
            def ours(layer=layer):
                y, _ = layer.forward(x)
                layer.backward(dy)
        else:
            def ours(layer=layer):
                layer.forward(x)
        cands[name] = ours
    mod = torch_twin(make_layer(lstmlab, kind, H, dtype, train), kind)
    tx, tdy = torch.from_numpy(x), torch.from_numpy(dy)
    if train:
        tx.requires_grad_(True)

        def theirs():
            mod.zero_grad(set_to_none=True)
            tx.grad = None
            y, _ = mod(tx)
            (y * tdy).sum().backward()
    else:
        def theirs():
            with torch.inference_mode():
                mod(tx)
    cands["torch"] = theirs
    return cands


def vdrop_candidates(T, B, H):
    """Variational dropout, p = 0.25 on the inputs and on h_{t-1}: a float32 training step
    with dx of lstmlab's LSTM and of the torch loops (bench/torch_vdrop_lstm.py)."""
    from torch_vdrop_lstm import VariationalLSTM

    rng = np.random.default_rng(0)
    x, dy = (rng.normal(size=(T, B, H)).astype(np.float32) for _ in range(2))
    layer = lstmlab.LSTM(H, H, rng=np.random.default_rng(1), dropout_input=0.25,
                         dropout_recurrent=0.25)

    def ours():
        layer.forward(x)
        layer.backward(dy)
    cands = {"lstmlab": ours}
    tx, tdy = torch.from_numpy(x).requires_grad_(True), torch.from_numpy(dy)
    for name, script in (("eager", False), ("TorchScript", True)):
        mod = VariationalLSTM(H, H, 0.25, 0.25, script=script)

        def theirs(mod=mod):
            mod.zero_grad(set_to_none=True)
            tx.grad = None
            y, _, _ = mod(tx)
            (y * tdy).sum().backward()
        cands[name] = theirs
    return cands | plain_candidates(T, B, H)


def plain_candidates(T, B, H):
    """The plain LSTM of the same size, training step with dx: lstmlab's and ``nn.LSTM``.
    A variant's step does the plain step's products and more, so the fastest torch loop's
    time over lstmlab's plain step bounds the ratio any variant can reach (its ceiling)."""
    cands = sequence_candidates("lstm", T, B, H, np.float32, train=True)
    return {"lstmlab LSTM": cands["lstmlab"], "nn.LSTM": cands["torch"]}


def plain_columns(ts, loop):
    """The ceiling (the torch loop over lstmlab's plain LSTM) and the loop over ``nn.LSTM``."""
    return [f"{loop / np.median(ts['lstmlab LSTM']):.2f}", f"{loop / np.median(ts['nn.LSTM']):.2f}"]


PLAIN_HEADER = ["ceiling: torch / lstmlab LSTM", "torch / nn.LSTM"]


def run_vdrop(shapes, rng):
    rows = []
    for label, (T, B, H) in shapes:
        ts = timed_blocks(vdrop_candidates(T, B, H), rng)
        ours, eager, script = (np.median(ts[k]) for k in ("lstmlab", "eager", "TorchScript"))
        loop = min(eager, script)
        rows.append([label, f"{T}, {B}, {H}", fmt(ours), fmt(eager), fmt(script),
                     f"**{loop / ours:.2f}**"] + plain_columns(ts, loop))
    table("variational dropout (p = 0.25 on inputs and h_{t-1}), float32 training step with dx: "
          "median time per call", ["shape", "T, B, D=H", "lstmlab", "torch eager loop",
                                   "torch TorchScript loop", "faster torch / lstmlab"]
          + PLAIN_HEADER, rows)


def lnlstm_candidates(T, B, H):
    """A float32 training step with dx of ``LSTM(layer_norm=True)`` and of its PyTorch twins
    (``bench/torch_lnlstm.py``), eager and TorchScript."""
    from torch_lnlstm import LayerNormLSTM, load_lstmlab
    rng = np.random.default_rng(0)
    x = rng.normal(size=(T, B, H)).astype(np.float32)
    dy = rng.normal(size=(T, B, H)).astype(np.float32)
    layer = lstmlab.LSTM(H, H, layer_norm=True, rng=np.random.default_rng(1))
    cands, pkgs = {}, {"lstmlab": lstmlab} | ({"baseline": BASELINE} if BASELINE else {})
    for name, pkg in pkgs.items():
        mine = pkg.LSTM(H, H, layer_norm=True, rng=np.random.default_rng(1))

        def ours(mine=mine):
            mine.forward(x)
            mine.backward(dy)
        cands[name] = ours
    eager = load_lstmlab(LayerNormLSTM(H, H), layer)
    scripted = torch.jit.script(load_lstmlab(LayerNormLSTM(H, H), layer))
    tx, tdy, zeros = torch.from_numpy(x).requires_grad_(True), torch.from_numpy(dy), torch.zeros(
        B, H)

    def step(mod):
        def call():
            mod.zero_grad(set_to_none=True)
            tx.grad = None
            y, _ = mod(tx, zeros, zeros)
            (y * tdy).sum().backward()
        return call
    return cands | {"torch": step(eager), "torchscript": step(scripted)} | plain_candidates(T, B, H)


def run_lnlstm(shapes, rng):
    rows = []
    for label, (T, B, H) in shapes:
        ts = timed_blocks(lnlstm_candidates(T, B, H), rng)
        ours, eager, script = (np.median(ts[k]) for k in ("lstmlab", "torch", "torchscript"))
        fl = lstm_flops(T, B, H, H)
        rows.append([label, f"{T}, {B}, {H}", fmt(ours), fmt(eager), fmt(script),
                     f"**{min(eager, script) / ours:.2f}**", f"{fl / ours / 1e9:.0f}"]
                    + plain_columns(ts, min(eager, script))
                    + ([f"**{np.median(ts['baseline']) / ours:.2f}**"] if BASELINE else []))
    table("layer-norm LSTM, float32 training step with dx: median time per call",
          ["shape", "T, B, D=H", "lstmlab", "torch eager", "TorchScript",
           "fastest torch / lstmlab", "GFLOP/s lstmlab"] + PLAIN_HEADER
          + (["baseline / lstmlab"] if BASELINE else []), rows)


def stream_candidates(H, steps):
    layer = make_layer(lstmlab, "lstm", H, np.float32, train=False)
    mod = torch_twin(layer, "lstm").eval()
    cell = torch.nn.LSTMCell(H, H)
    with torch.no_grad():
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(cell, name).copy_(getattr(mod, name + "_l0"))
    xs = np.random.default_rng(0).normal(size=(steps, 1, H)).astype(np.float32)
    txs = torch.from_numpy(xs)

    def ours():
        state = None
        for t in range(steps):
            _, state = layer.step(xs[t], state)

    def lstm_per_step():
        state = None
        with torch.inference_mode():
            for t in range(steps):
                _, state = mod(txs[t:t + 1], state)

    def lstm_cell():
        state = None
        with torch.inference_mode():
            for t in range(steps):
                state = cell(txs[t], state)

    return {"lstmlab": ours, "nn.LSTM": lstm_per_step, "nn.LSTMCell": lstm_cell}


# -- timing -----------------------------------------------------------------------------------
def timed_blocks(cands: dict, rng: np.random.Generator) -> dict:
    """Median seconds per call of each candidate: rounds of one block of consecutive calls
    each (in a new random order every round), a pause after every block. A block lasts about
    ``--block`` seconds whatever a call takes: the first calls after the pause find idle
    cores (a lower clock, sleeping threads) and run slower, for both libraries, and a block
    must be long enough for them to be a small part of it, as in a training loop."""
    per_call, calls = {}, {}
    for name, f in cands.items():  # warm up (compiles), then size the blocks
        f()
        t0 = CLOCK()
        f()
        per_call[name] = max(CLOCK() - t0, 1e-6)
        calls[name] = int(np.clip(round(ARGS.block / per_call[name]), 1, ARGS.max_calls))
        time.sleep(ARGS.pause)
    slowest = max(per_call[n] * calls[n] for n in cands)
    rounds = int(np.clip(ARGS.budget / slowest, 3, 3 if ARGS.quick else 9))
    times = {name: [] for name in cands}
    names = list(cands)
    for _ in range(rounds):
        for i in rng.permutation(len(names)):
            name = names[i]
            t0 = CLOCK()
            for _ in range(calls[name]):
                cands[name]()
            times[name].append((CLOCK() - t0) / calls[name])
            time.sleep(ARGS.pause)
    return {name: np.array(v) for name, v in times.items()}


def fmt(seconds: float) -> str:
    return f"{seconds * 1e3:.3g} ms" if seconds >= 1e-3 else f"{seconds * 1e6:.3g} µs"


def table(title, header, rows):
    print(f"\n### {title}\n")
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" for _ in header) + "|")
    for r in rows:
        print("| " + " | ".join(str(c) for c in r) + " |")
    sys.stdout.flush()


def run_sequences(suite, shapes, rng):
    kind = suite if suite in ("rnn", "gru") else "lstm"
    dtype = np.float64 if suite == "f64" else np.float32
    train = suite != "infer"
    rows = []
    for label, (T, B, H) in shapes:
        ts = timed_blocks(sequence_candidates(kind, T, B, H, dtype, train), rng)
        ours, theirs = np.median(ts["lstmlab"]), np.median(ts["torch"])
        fl = lstm_flops(T, B, H, H, {"lstm": 4, "gru": 3}.get(kind, 1), train)
        row = [label, f"{T}, {B}, {H}", fmt(ours), fmt(theirs), f"**{theirs / ours:.2f}**",
               f"{np.median(ts['torch'] / ts['lstmlab']):.2f}", f"{fl / ours / 1e9:.0f}",
               f"{fl / theirs / 1e9:.0f}"]
        if BASELINE:
            base = np.median(ts["baseline"])
            row += [fmt(base), f"**{base / ours:.2f}**"]
        rows.append(row)
    header = ["shape", "T, B, D=H", "lstmlab", "torch", "torch / lstmlab",
              "per round", "GFLOP/s lstmlab", "GFLOP/s torch"]
    if BASELINE:
        header += ["baseline", "baseline / lstmlab"]
    what = {"train-dx": "float32 training step with dx", "infer": "float32 inference",
            "f64": "float64 training step with dx", "rnn": "nn.RNN (tanh), float32 training "
                                                          "step with dx",
            "gru": "nn.GRU, float32 training step with dx"}[suite]
    table(f"{what}: median time per call", header, rows)


def run_stream(sizes, rng, steps=1000):
    rows = []
    for H in sizes:
        ts = timed_blocks(stream_candidates(H, steps), rng)
        ours = np.median(ts["lstmlab"])
        rows.append([H, fmt(ours / steps), fmt(np.median(ts["nn.LSTM"]) / steps),
                     fmt(np.median(ts["nn.LSTMCell"]) / steps),
                     f"**{np.median(ts['nn.LSTM']) / ours:.1f}**",
                     f"**{np.median(ts['nn.LSTMCell']) / ours:.2f}**"])
    table(f"streaming: B = 1, D = H, {steps} single steps of LSTM.step, time per step",
          ["H", "lstmlab", "nn.LSTM per step", "nn.LSTMCell", "nn.LSTM / lstmlab",
           "nn.LSTMCell / lstmlab"], rows)


# -- compile cost, in subprocesses --------------------------------------------------
_COMPILE_CHILD = r"""
import json, time
import numpy as np, lstmlab
res = {}
for dt in (np.float32, np.float64):
    layer = lstmlab.LSTM(8, 8, dtype=dt, rng=np.random.default_rng(0))
    x = np.ones((3, 2, 8), dt)
    t0 = time.perf_counter(); y, _ = layer.forward(x); layer.backward(np.ones_like(y))
    t1 = time.perf_counter(); y, _ = layer.forward(x); layer.backward(np.ones_like(y))
    res[np.dtype(dt).name] = (t1 - t0, time.perf_counter() - t1)
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
            rows.append([label, f"{r['float32'][0]:.2f}", f"{r['float64'][0]:.2f}",
                         fmt(r["float32"][1])])
    table("first call of an LSTM's forward + backward (fresh subprocesses, NUMBA_CACHE_DIR a "
          "new folder)", ["run", "float32 first call, s", "float64 first call, s",
                          "next float32 call"], rows)


def main():
    suites = ARGS.suites.split(",")
    unknown = set(suites) - set(SUITES)
    if unknown:
        sys.exit(f"--suites: unknown {sorted(unknown)}; choose from {', '.join(SUITES)}")
    grid = GRID if not ARGS.shapes else [tuple(int(v) for v in s.split(","))
                                          for s in ARGS.shapes.split(";")]
    n = 3 if ARGS.quick and ARGS.samples else ARGS.samples
    shapes = ([] if ARGS.no_grid else [("grid", s) for s in grid]) + \
        [("sample", s) for s in sample_shapes(n, ARGS.seed)]
    rng = np.random.default_rng(ARGS.seed)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    unset = [k for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE") if k in os.environ]
    print(f"# bench_lstm.py {' '.join(sys.argv[1:])}\n\n"
          f"{platform.processor() or platform.machine()}, {cores} cores; Python "
          f"{platform.python_version()}, NumPy {np.__version__}, torch {torch.__version__} "
          f"({torch.get_num_threads()} threads), lstmlab {lstmlab.get_num_threads()} threads"
          f"{'; set: ' + ', '.join(unset) if unset else ''}; "
          f"{'process CPU time' if ARGS.single_thread else 'wall-clock time'}; pause "
          f"{ARGS.pause} s, blocks {ARGS.block} s (at most {ARGS.max_calls} calls); random shapes: seed {ARGS.seed}")
    for suite in suites:
        if suite == "stream":
            run_stream([128] + [s[2] for _, s in shapes if _ == "sample"][:3], rng)
        elif suite == "lnlstm":
            run_lnlstm(shapes, rng)
        elif suite == "vdrop":
            run_vdrop(shapes, rng)
        else:
            run_sequences(suite, shapes, rng)
    if ARGS.compile:
        run_compile()


if __name__ == "__main__":
    main()
