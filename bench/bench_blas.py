"""The fast path does not depend on NumPy's BLAS: a float32 LSTM training step timed in child
processes whose NumPy BLAS is told different things, beside the NumPy reference, which does.

    .venv/bin/python bench/bench_blas.py [--shape T,B,H] [--repeats N]

Each child times the step on both backends (median of ``--repeats`` calls after two warm-up
calls) and prints a hash of the fast path's results; the hashes must agree. Settings: NumPy's
OpenBLAS as shipped, and told to use its generic SSE3 kernels on one thread
(``OPENBLAS_CORETYPE=Prescott``, ``OPENBLAS_NUM_THREADS=1``; other BLAS builds ignore both).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

CHILD = r"""
import hashlib, json, sys, time
import numpy as np
import lstmlab
T, B, H, repeats = map(int, sys.argv[1:])
rng = np.random.default_rng(0)
x = rng.normal(size=(T, B, H)).astype(np.float32)
dy = rng.normal(size=(T, B, H)).astype(np.float32)
out = {}
for backend in ("fast", "numpy"):
    layer = lstmlab.LSTM(H, H, rng=np.random.default_rng(1))
    layer.backend = backend
    def step():
        y, _ = layer.forward(x)
        dx, _ = layer.backward(dy)
        return y, dx
    step()
    y, dx = step()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    out[backend] = float(np.median(times))
    if backend == "fast":
        h = hashlib.sha256()
        for a in (y, dx, *layer.grads().values()):
            h.update(np.ascontiguousarray(a).tobytes())
        out["hash"] = h.hexdigest()[:16]
print(json.dumps(out))
"""

SETTINGS = [("NumPy's OpenBLAS as shipped", {}),
            ("OPENBLAS_CORETYPE=Prescott, OPENBLAS_NUM_THREADS=1",
             {"OPENBLAS_CORETYPE": "Prescott", "OPENBLAS_NUM_THREADS": "1"})]


def build_parser() -> argparse.ArgumentParser:
    """The script's command line, built without running anything (tests/test_docs.py parses
    the documented commands with it)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--shape", default="100,32,128", metavar="T,B,H")
    p.add_argument("--repeats", type=int, default=15)
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    shape = args.shape.split(",")
    base = {k: v for k, v in os.environ.items() if not k.startswith("OPENBLAS")}
    print(f"float32 LSTM training step with dx, (T, B, D=H) = ({', '.join(shape)}), median of "
          f"{args.repeats}\n\n| NumPy's BLAS | fast path | NumPy reference | fast path's results |")
    print("|---|---|---|---|")
    for label, extra in SETTINGS:
        run = subprocess.run([sys.executable, "-c", CHILD, *shape, str(args.repeats)],
                             env=dict(base, **extra), capture_output=True, text=True, check=True)
        r = json.loads(run.stdout.strip().splitlines()[-1])
        print(f"| {label} | {r['fast'] * 1e3:.1f} ms | {r['numpy'] * 1e3:.1f} ms | {r['hash']} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
