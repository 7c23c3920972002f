"""Where a step of the fast path spends its time: the cell's own passes against the products.

    .venv/bin/python bench/step_profile.py [--shapes T,B,H ...] [--dtype float32] [--repeats N]

For each shape, on one thread (lstmlab's and NumPy's BLAS), the LSTM's whole inference
forward and training step (forward + backward with dx) beside the cell's own passes alone: the
same ``cell_forward`` / ``cell_backward`` that the time loops call at every step, run over all
T steps of a tape filled with random pre-activations, with no product. Their share of the
whole is what a cheaper activation or fewer passes could save at most; the rest is the
products (and, in training, the weight gradients). Process CPU time, median of ``--repeats``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import threadpoolctl
from numba import njit

import lstmlab
from lstmlab.kernels import fast

GRID = ("100,32,128", "100,128,128", "100,64,256", "50,16,512", "233,120,165")


def _passes():
    cells, jit = fast._compiled().cells, fast._compiled().product.JIT

    @njit(**dict(jit, cache=False))
    def forward(spec, tape, zh, lengths):
        T, B, H = tape.h.shape[0] - 1, tape.h.shape[1], tape.h.shape[2]
        for t in range(T):  # (an inference tape's rings are indexed t modulo their length)
            cells.cell_forward(spec, tape, zh, t, 0, B, 0, H, lengths)

    @njit(**dict(jit, cache=False))
    def backward(spec, tape, grad, dy, lengths):
        T, B, H = dy.shape[0], dy.shape[1], dy.shape[2]
        for t in range(T - 1, -1, -1):
            cells.cell_backward(spec, tape, grad, dy, t, 0, B, 0, H, lengths)
    return forward, backward


def _median_time(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.process_time()
        fn()
        times.append(time.process_time() - t0)
    return float(np.median(times))


def profile(T: int, B: int, H: int, dtype, repeats: int) -> dict:
    """Seconds per call: ``inference`` and ``training``, and the cell's passes of each:
    ``cell inference`` (on an inference tape, rings of a chunk), ``cell forward`` and ``cell
    backward`` (on a training tape)."""
    cells = fast._compiled().cells
    cell_forward, cell_backward = _passes()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((T, B, H)).astype(dtype)
    dy = rng.standard_normal((T, B, H)).astype(dtype)
    layer = lstmlab.LSTM(H, H, rng=np.random.default_rng(1), dtype=dtype)
    spec = fast._spec("lstm", layer.params()["b_l0"], H, dtype, {}, B)
    zeros = (np.zeros((B, H), dtype), np.zeros((B, H), dtype))
    ring, tape = (fast._tape("lstm", spec, T, B, H, dtype, zeros, training,
                             fast._compiled().product.empty_lines) for training in (False, True))
    for t in (ring, tape):
        t.z[...] = rng.standard_normal(t.z.shape)  # (the passes are branch-free: any values)
    zh = rng.standard_normal((B, 4 * H)).astype(dtype)
    lengths = np.full(B, T, np.int64)
    dh = np.zeros((B, H), dtype)
    grad = cells.LSTMGrad(np.empty((T, B, 4 * H), dtype), dh, np.zeros((B, H), dtype), dh,
                          np.empty((0, 0), dtype))

    def train():
        layer.forward(x)
        layer.backward(dy)

    out = {"training": _median_time(train, repeats)}
    layer.eval()
    out["inference"] = _median_time(lambda: layer.forward(x), repeats)
    out["cell inference"] = _median_time(lambda: cell_forward(spec, ring, zh, lengths), repeats)
    out["cell forward"] = _median_time(lambda: cell_forward(spec, tape, zh, lengths), repeats)
    out["cell backward"] = _median_time(lambda: cell_backward(spec, tape, grad, dy, lengths),
                                        repeats)
    return out


def build_parser() -> argparse.ArgumentParser:
    """The script's command line, built without running anything (tests/test_docs.py parses
    the documented commands with it)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--shapes", nargs="+", default=list(GRID), help="T,B,H (D = H)")
    p.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    p.add_argument("--repeats", type=int, default=7)
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    threadpoolctl.threadpool_limits(1)
    lstmlab.set_num_threads(1)
    print(f"{args.dtype}, one thread, process CPU time, median of {args.repeats}\n")
    print("| T, B, H | inference | its cell passes | training step | its cell passes |")
    print("|---|---|---|---|---|")
    for shape in args.shapes:
        T, B, H = (int(v) for v in shape.split(","))
        p = profile(T, B, H, np.dtype(args.dtype), args.repeats)
        train_cells = p["cell forward"] + p["cell backward"]
        print(f"| {T}, {B}, {H} | {p['inference'] * 1e3:.1f} ms | "
              f"{p['cell inference'] * 1e3:.1f} ms ({p['cell inference'] / p['inference']:.0%}) | "
              f"{p['training'] * 1e3:.1f} ms | {train_cells * 1e3:.1f} ms "
              f"({train_cells / p['training']:.0%}) |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
