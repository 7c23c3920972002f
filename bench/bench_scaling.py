"""Training throughput of the default char-LM: one process, ``--nproc N``, and ``--engine torch``.

Each configuration is one ``lstmlab train`` command on the default corpus (the Python standard
library's sources, cut at ``--max-chars``) with the default model (float32, LSTM 2x256, 32
streams of 100 characters per step); its throughput (all processes together) is measured
over the second half of the steps, from the run's own ``metrics.jsonl`` (each line's
``chars_per_sec`` is the average since the first step), so that start-up, the first steps
(which compile kernels) and the checkpoint at step 0 are left out. The load average before and after each run is printed next to it: on a shared
machine the numbers mean little when it is above the core count.

    python bench/bench_scaling.py --steps 60 --nproc 2
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path


def run(extra: list[str], env: dict, steps: int, max_chars: int) -> float:
    with tempfile.TemporaryDirectory() as out:
        cmd = [sys.executable, "-m", "lstmlab", "train", "--out", out, "--steps", str(steps),
               "--max-chars", str(max_chars), "--eval-every", str(steps + 1),
               "--checkpoint-every", str(steps + 1), "--quiet", *extra]
        done = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                              env={**os.environ, **env})
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stderr}")
        records = [json.loads(line) for line in (Path(out) / "metrics.jsonl").read_text().splitlines()]
        chars = 32 * 100  # per step, the default batch
        mid, last = records[len(records) // 2 - 1], records[-1]
        seconds = [r["step"] * chars / r["chars_per_sec"] for r in (mid, last)]
        return (last["step"] - mid["step"]) * chars / (seconds[1] - seconds[0])


def build_parser() -> argparse.ArgumentParser:
    """The script's command line, built without running anything (tests/test_docs.py parses
    the documented commands with it)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--nproc", type=int, default=2)
    p.add_argument("--max-chars", type=int, default=2_000_000)
    p.add_argument("--repeat", type=int, default=1)
    return p


def main() -> None:
    ap = build_parser()
    args = ap.parse_args()
    if args.steps < 2:  # the rate is taken between the middle step and the last
        ap.error(f"--steps must be at least 2 (throughput is measured over the second half of "
                 f"the steps), got {args.steps}")
    # torch's CPU kernels run on OpenMP threads that spin while they wait; where other jobs
    # share the cores that costs a lot, so the torch engine runs with torch's default thread
    # count and with one thread.
    configs = [("numpy, 1 process", [], {}),
               (f"numpy, --nproc {args.nproc}", ["--nproc", str(args.nproc)], {}),
               ("torch engine (CPU)", ["--engine", "torch"], {}),
               ("torch engine, OMP_NUM_THREADS=1", ["--engine", "torch"], {"OMP_NUM_THREADS": "1"})]
    print(f"{os.cpu_count()} cores; {args.steps} steps of the default char-LM per run")
    print(f"{'configuration':<32}{'chars/s':>10}   load average before / after")
    for _ in range(args.repeat):
        for name, extra, env in configs:
            before = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
            cps = run(extra, env, args.steps, args.max_chars)
            after = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
            print(f"{name:<32}{cps:>10,.0f}   {before:.1f} / {after:.1f}", flush=True)


if __name__ == "__main__":
    main()
