"""The fast path's matrix product against NumPy's BLAS, one thread each.

    .venv/bin/python bench/product_gemm.py [--samples 6] [--seed 0] [--dtype float32]

``C = A · W`` for A (M, K) and W (K, N): lstmlab's register-tiled product (W packed into
panels once, outside the timing, as the kernels pack it once per call) against
``numpy.matmul`` with NumPy's BLAS held to one thread (threadpoolctl). Shapes: those of an
LSTM's products at a few grid shapes (the input projection of all T·B rows, one step's B rows
against Wh) and ``--samples`` more drawn at random (M in [1, 8192], K in [32, 512], N = 4K).
Prints GFLOP/s of each, the median of five timed blocks of about 0.2 s, and their ratio.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import threadpoolctl
from numba import njit

from lstmlab.kernels import fast

FIXED = [(100 * 32, 128, 512), (32, 128, 512), (100 * 64, 256, 1024), (64, 256, 1024),
         (50 * 16, 512, 2048), (16, 512, 2048), (1, 128, 512)]


def _packer():
    P = fast._compiled().product

    @njit(nogil=True)
    def pack(W, wp):
        P.pack(W, W.shape[1], wp, 0, wp.shape[0])

    @njit(nogil=True)
    def run(a, wp, N, c, scratch, reps):
        for _ in range(reps):
            P.product(a, 0, a.shape[0], wp, N, 0, wp.shape[0], c, False, scratch)

    return P, pack, run


def _median_rate(fn, flops: float) -> float:
    fn(1)
    reps = 1
    while True:  # a block of about 0.2 s
        t = time.perf_counter()
        fn(reps)
        if time.perf_counter() - t > 0.2:
            break
        reps *= 2
    times = []
    for _ in range(5):
        t = time.perf_counter()
        fn(reps)
        times.append((time.perf_counter() - t) / reps)
    return flops / np.median(times) / 1e9


def measure(M: int, K: int, N: int, dtype, rng: np.random.Generator) -> tuple[float, float]:
    """``(lstmlab GFLOP/s, NumPy GFLOP/s)`` for one shape; checks the two agree first."""
    P, pack, run = _packer()
    a = rng.standard_normal((M, K)).astype(dtype)
    W = rng.standard_normal((K, N)).astype(dtype)
    nr = P.panel_width(dtype)
    wp = P.empty_lines((-(-N // nr), K, nr), dtype)
    pack(W, wp)
    c = P.empty_lines((M, N), dtype)
    scratch = P.empty_lines((P.MC, nr), dtype)
    run(a, wp, N, c, scratch, 1)
    ref = a @ W
    tol = 1e-3 if dtype == np.float32 else 1e-10
    assert np.allclose(c, ref, rtol=tol, atol=tol * np.abs(ref).max()), "products disagree"
    flops = 2.0 * M * K * N
    ours = _median_rate(lambda reps: run(a, wp, N, c, scratch, reps), flops)

    def numpy_blas(reps):
        for _ in range(reps):
            np.matmul(a, W, out=ref)

    with threadpoolctl.threadpool_limits(1, user_api="blas"):
        theirs = _median_rate(numpy_blas, flops)
    return ours, theirs


def build_parser() -> argparse.ArgumentParser:
    """The script's command line, built without running anything (tests/test_docs.py parses
    the documented commands with it)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--samples", type=int, default=6, help="random shapes besides the fixed ones")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    dtype = np.dtype(args.dtype).type
    rng = np.random.default_rng(args.seed)
    shapes = list(FIXED)
    for _ in range(args.samples):
        K = int(rng.integers(32, 513))
        shapes.append((int(np.exp(rng.uniform(0, np.log(8192)))), K, 4 * K))
    print("| M | K | N | lstmlab GFLOP/s | NumPy's BLAS GFLOP/s | ratio |\n|---|---|---|---|---|---|")
    for M, K, N in shapes:
        ours, theirs = measure(M, K, N, dtype, rng)
        print(f"| {M} | {K} | {N} | {ours:.1f} | {theirs:.1f} | {ours / theirs:.2f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
