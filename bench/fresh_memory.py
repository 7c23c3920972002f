"""What a training step's fresh memory costs: time and page faults per call, lstmlab and torch.

    .venv/bin/python bench/fresh_memory.py [--shape 344,82,277] [--calls 5]
    MALLOC_MMAP_THRESHOLD_=4294967296 MALLOC_TRIM_THRESHOLD_=68719476736 \\
        .venv/bin/python bench/fresh_memory.py

Each library runs a float32 LSTM training step with dx (``bench_lstm.py``'s train-dx
suite) ``--calls`` times after one warm-up call, a pause of 0.25 s after each; per call it
prints the seconds and the minor page faults of the process (``resource``: Linux and
macOS). glibc's malloc gives the memory of a freed array larger than its mmap threshold
(at most 32 MiB unless set) back to the system, and the next call touches new pages; the
two environment variables above keep it in the process. A first line times writing a new
200 MB array twice: the first pass pays for the new pages.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from bench_lstm import sequence_candidates  # the train-dx suite's steps


def faults() -> int:
    import resource  # Linux and macOS: imported here, so that importing the script works anywhere

    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def build_parser() -> argparse.ArgumentParser:
    """The script's command line, built without running anything (tests/test_docs.py parses
    the documented commands with it)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--shape", default="344,82,277", metavar="T,B,H")
    p.add_argument("--calls", type=int, default=5)
    return p


def main() -> None:
    args = build_parser().parse_args()
    T, B, H = (int(v) for v in args.shape.split(","))

    n = 50_000_000
    t0 = time.perf_counter()
    a = np.empty(n, np.float32)
    a.fill(1)
    t1 = time.perf_counter()
    a.fill(2)
    t2 = time.perf_counter()
    print(f"a new 200 MB array: first write {n * 4 / (t1 - t0) / 1e9:.2f} GB/s, "
          f"second {n * 4 / (t2 - t1) / 1e9:.2f} GB/s")
    del a

    steps = sequence_candidates("lstm", T, B, H, np.float32, train=True)
    for name, step in steps.items():
        step()
        rows = []
        for _ in range(args.calls):
            f0, t0 = faults(), time.perf_counter()
            step()
            rows.append(f"{time.perf_counter() - t0:.2f} s / {faults() - f0}")
            time.sleep(0.25)
        print(f"{name}, ({T}, {B}, {H}), seconds / page faults per call: {', '.join(rows)}")


if __name__ == "__main__":
    main()
