"""A team of threads when other work holds a core: with and without the fast path's back-off.

    .venv/bin/python bench/contention.py [--seconds 3] [--busy 1]
    .venv/bin/python bench/contention.py --busy 0 --table-shapes --seconds 1

Starts ``--busy`` processes that spin on a core each, then times a float32 LSTM training step
(forward and backward) at a few shapes, each for ``--seconds`` of consecutive calls: on one
thread; on two threads as the fast path runs them (a call whose team waited on teammates
that were not running makes the calls of the next seconds run alone, ``fast.ALONE_SECONDS``);
and on two threads with that back-off cleared before every call. Prints milliseconds per
call and, of the calls with the back-off cleared, how many set it again (teams that waited
on teammates that were not running). ``--busy 0 --table-shapes``: the 14
shapes of docs/speed.md's results table with nothing else running, where none should.
"""

from __future__ import annotations

import argparse
import multiprocessing
import time

import numpy as np

import lstmlab
from lstmlab.kernels import fast

SHAPES = [(400, 1, 256), (1000, 1, 128), (300, 2, 400), (100, 32, 128)]
TABLE_SHAPES = [(100, 32, 128), (100, 64, 256), (50, 16, 512), (200, 8, 64), (100, 128, 128),
                (1000, 1, 128), (344, 82, 277), (122, 40, 51), (48, 3, 116), (329, 84, 471),
                (211, 78, 498), (297, 81, 293), (233, 120, 165), (330, 86, 33)]


def _spin(stop) -> None:
    while not stop.is_set():
        pass


def per_call(step, seconds: float, clear_back_off: bool) -> tuple[float, int, int]:
    """``(milliseconds per call, calls that backed off, calls)`` of ``step`` over ``seconds``
    of consecutive calls."""
    step()
    t0, n, backed = time.perf_counter(), 0, 0
    while time.perf_counter() - t0 < seconds:
        if clear_back_off:
            fast._pool[0].alone_until = 0.0
        before = fast._pool[0].alone_until
        step()
        backed += fast._pool[0].alone_until > before
        n += 1
    return (time.perf_counter() - t0) / n * 1e3, backed, n


def build_parser() -> argparse.ArgumentParser:
    """The script's command line, built without running anything (tests/test_docs.py parses
    the documented commands with it)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=3.0)
    p.add_argument("--busy", type=int, default=1, help="spinning processes to start")
    p.add_argument("--table-shapes", action="store_true",
                   help="the 14 shapes of docs/speed.md's results table instead")
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    stop = multiprocessing.Event()
    spinners = [multiprocessing.Process(target=_spin, args=(stop,), daemon=True)
                for _ in range(args.busy)]
    for p in spinners:
        p.start()
    try:
        print("| T, B, H | 1 thread | 2 threads | 2 threads, back-off cleared | of those, calls "
              "that backed off |\n|---|---|---|---|---|")
        rng = np.random.default_rng(0)
        for T, B, H in TABLE_SHAPES if args.table_shapes else SHAPES:
            layer = lstmlab.LSTM(H, H, rng=rng, dtype=np.float32)
            x = rng.standard_normal((T, B, H)).astype(np.float32)
            dy = np.ones((T, B, H), np.float32)

            def step():
                layer.forward(x)
                layer.backward(dy)

            cells = []
            for threads, clear in ((1, False), (2, False), (2, True)):
                lstmlab.set_num_threads(threads)
                ms, backed, calls = per_call(step, args.seconds, clear)
                cells.append(f"{ms:.1f} ms")
            print(f"| {T}, {B}, {H} | " + " | ".join(cells) + f" | {backed} of {calls} |",
                  flush=True)
    finally:
        stop.set()
        for p in spinners:
            p.join()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
