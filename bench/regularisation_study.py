"""Does recurrent regularisation help? Held-out bits per character of a char-LSTM that
overfits, plain and with each of lstmlab's recurrent regularisations, at the same steps.

    PYTHONPATH=src python bench/regularisation_study.py --out runs/regularisation
    PYTHONPATH=src python bench/regularisation_study.py --out runs/regularisation-seed1 \
        --seed 1 --only plain "variational dropout"

Trains ``lstmlab train`` on the default corpus (the standard library's sources) cut to
``--max-chars`` so that a 2x256 LSTM overfits within the run, once per setting of RUNS with
everything else equal (seed, steps, schedule, batches), and prints for each the best
validation bpc (and its step), the last one and the last training bpc. A run already in
``--out`` (it has ``metrics.jsonl`` and ``last.ckpt``) is read, not retrained. docs/training.md
quotes the table.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

RUNS = {  # name: the training flags that differ
    "plain": [],
    "variational dropout": ["--dropout-input", "0.25", "--dropout-recurrent", "0.25"],
    "zoneout": ["--zoneout", "0.15"],
    "weight drop": ["--weight-drop", "0.3"],
}
COMMON = ["--hidden", "256", "--layers", "2", "--val-fraction", "0.1", "--eval-chunks", "0",
          "--eval-every", "100", "--quiet"]


def build_parser() -> argparse.ArgumentParser:
    """The script's command line, built without running anything (tests/test_docs.py parses
    the documented commands with it)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="runs/regularisation", help="folder of the runs")
    p.add_argument("--max-chars", type=int, default=100_000)
    p.add_argument("--steps", type=int, default=800)
    p.add_argument("--seed", type=int, default=0, help="lstmlab train's --seed (default 0)")
    p.add_argument("--only", nargs="+", choices=list(RUNS), default=list(RUNS),
                   help="these settings only (default: all)")
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    print(f"{'setting':<20} {'best val bpc':>12} {'at step':>8} {'last val bpc':>12} "
          f"{'last train bpc':>14}")
    for name in args.only:
        flags = RUNS[name]
        out = Path(args.out) / name.replace(" ", "-")
        if not (out / "last.ckpt").exists():
            cmd = [sys.executable, "-m", "lstmlab", "train", *COMMON, *flags,
                   "--max-chars", str(args.max_chars), "--steps", str(args.steps),
                   "--seed", str(args.seed), "--out", str(out)]
            print("$", " ".join(cmd[1:]), file=sys.stderr, flush=True)
            subprocess.run(cmd, check=True)
        rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
        evals = [r for r in rows if "val_bpc" in r]
        best = min(evals, key=lambda r: r["val_bpc"])
        print(f"{name:<20} {best['val_bpc']:>12.3f} {best['step']:>8} "
              f"{evals[-1]['val_bpc']:>12.3f} {rows[-1]['bpc']:>14.3f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
