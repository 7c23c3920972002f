"""The classification table of docs/classification-results.md: `lstmlab classify train` with its
defaults on UCR/UEA problems (official TRAIN/TEST splits, as sktime's wheel ships them) over
seeds, beside 1NN-Euclidean, 1NN-DTW (full window) and the published LSTM-FCN. The baselines'
wall time goes to standard error and the JSON.

    python bench/classify_ucr.py                                  # every dataset, seeds 0 1 2
    python bench/classify_ucr.py --datasets GunPoint --seeds 0    # one cell
    python bench/classify_ucr.py --datasets OSULeaf --json osu.json -- --model lstm --readout mean
    python bench/classify_ucr.py --table gunpoint.json osu.json   # one table from saved runs
                                                                  # (rows of one dataset merged)
    python bench/classify_ucr.py --seeds none                     # the baselines alone

Arguments after ``--`` go to `classify train` (the default is its defaults). Each run uses
one BLAS thread, so a rerun on the same machine gives the same numbers (the compiled kernels
give the same bits for any thread count). Needs sktime (requirements/dev.txt) for the data
only: the files are read from its install folder, sktime itself is not imported.
"""

from __future__ import annotations

import os

os.environ["OPENBLAS_NUM_THREADS"] = os.environ["OMP_NUM_THREADS"] = "1"  # before NumPy loads
os.environ["MKL_NUM_THREADS"] = "1"

import argparse  # noqa: E402
import contextlib  # noqa: E402
import importlib.util  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

DATASETS = ["GunPoint", "ItalyPowerDemand", "ArrowHead", "BasicMotions", "OSULeaf",
            "JapaneseVowels", "ACSF1", "PLAID"]
# Test accuracy reported by the authors of LSTM-FCN (Karim, Majumdar, Darabi & Chen 2018,
# IEEE Access 6, Table 2: "LSTM-FCN"); the multivariate sets are not in that paper.
PUBLISHED_LSTM_FCN = {"GunPoint": 1.000, "ItalyPowerDemand": 0.962, "ArrowHead": 0.897,
                      "OSULeaf": 0.983}


def data_folder(name: str) -> Path:
    """sktime's copy of the problem ``name`` (without importing sktime)."""
    spec = importlib.util.find_spec("sktime")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("the UCR/UEA files come from sktime's wheel: pip install "
                         "sktime==1.2.0 --no-deps (see requirements/dev.txt)")
    folder = Path(list(spec.submodule_search_locations)[0]) / "datasets" / "data" / name
    if not (folder / f"{name}_TRAIN.ts").exists():
        raise SystemExit(f"sktime ships no {name}_TRAIN.ts in {folder.parent}")
    return folder


def run_dataset(name: str, seeds: list[int], train_args: list[str], baselines: bool,
                save=lambda row: None) -> dict:
    """One table row; ``save(row)`` is called after the baselines and after every seed, so a
    long run that is stopped keeps what it measured."""
    from lstmlab.classify.baselines import baseline_accuracies
    from lstmlab.classify.data import read_ts
    from lstmlab.cli import main

    folder = data_folder(name)
    train = read_ts(folder / f"{name}_TRAIN.ts")
    test = read_ts(folder / f"{name}_TEST.ts")
    row = {"dataset": name, "n_train": len(train), "n_test": len(test),
           "length": [int(train.lengths.min()), int(train.lengths.max())],
           "dims": train.num_features, "classes": len(set(train.labels)),
           "train_args": train_args, "seeds": {}}
    if baselines:
        t0 = time.perf_counter()
        # the z-normalisation the classifier uses (its --znorm, auto by default)
        choice = train_args[train_args.index("--znorm") + 1] if "--znorm" in train_args else "auto"
        znorm = {"on": True, "off": False}.get(choice, train.num_features == 1)
        row.update(baseline_accuracies(train, test, znorm=znorm))
        row["znorm"] = znorm
        row["baseline_seconds"] = time.perf_counter() - t0
        save(row)
        print(f"{name} baselines: 1NN-ED {row['1nn_euclidean']:.4f}, 1NN-DTW {row['1nn_dtw']:.4f} "
              f"({row['baseline_seconds']:.0f} s)", file=sys.stderr, flush=True)
    for seed in seeds:
        with tempfile.TemporaryDirectory() as out:
            argv = ["classify", "train", str(folder), "--seed", str(seed), "--out", out,
                    "--quiet", "--no-baselines", *train_args]
            t0 = time.perf_counter()
            with contextlib.redirect_stdout(io.StringIO()):
                rc = main(argv)
            seconds = time.perf_counter() - t0
            if rc != 0:
                raise SystemExit(f"{name} seed {seed}: classify train exited {rc}")
            report = json.loads((Path(out) / "report.json").read_text())
        row["seeds"][str(seed)] = {"accuracy": report["accuracy"], "seconds": seconds,
                                   "member_accuracies": report["member_accuracies"],
                                   "hidden_size": report["hidden_size"],
                                   "readout": report["readout"],
                                   "selection": report["selection"]}
        save(row)
        chose = "" if report["selection"] is None else \
            f", chose {' '.join(f'{k} {v}' for k, v in report['selection']['chosen'].items())}"
        print(f"{name} seed {seed}: accuracy {report['accuracy']:.4f} ({seconds:.0f} s{chose})",
              file=sys.stderr, flush=True)
    return row


def _cell(value: float | None, best: float) -> str:
    if value is None:
        return "—"
    text = f"{value:.3f}"
    return f"**{text}**" if round(value, 3) == round(best, 3) else text


def table(rows: list[dict]) -> str:
    """The markdown table; the best of the measured columns in bold in each row."""
    args = sorted({" ".join(r["train_args"]) for r in rows})
    what = "lstmlab default" if args == [""] else "lstmlab " + " / ".join(args)
    lines = [f"| dataset | train / test, length, dims | {what}: mean ± sd (seeds) | "
             "1NN-ED | 1NN-DTW | LSTM-FCN (published) | s per seed |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        accs = [s["accuracy"] for s in r["seeds"].values()]
        if not accs and "1nn_dtw" not in r:
            continue
        mean = float(np.mean(accs)) if accs else None
        measured = [v for v in [mean] + [r.get(k) for k in ("1nn_euclidean", "1nn_dtw")]
                    if v is not None]
        best = max(measured)
        lo, hi = r["length"]
        length = str(lo) if lo == hi else f"{lo}–{hi}"
        own, secs = _own_cell(r, best) if accs else ("—", "—")
        lines.append(f"| {r['dataset']} | {r['n_train']} / {r['n_test']}, {length}, "
                     f"{r['dims']} | {own} | {_cell(r.get('1nn_euclidean'), best)} | "
                     f"{_cell(r.get('1nn_dtw'), best)} | "
                     f"{_cell(PUBLISHED_LSTM_FCN.get(r['dataset']), 2.0)} | {secs} |")
    return "\n".join(lines)


def _own_cell(r: dict, best: float) -> tuple[str, str]:
    """The trained model's cell (mean ± sd and the seeds; an ensemble's members alone too)
    and its mean seconds per seed."""
    accs = [s["accuracy"] for s in r["seeds"].values()]
    mean = float(np.mean(accs))
    own = f"{mean:.3f} ± {np.std(accs):.3f} ({', '.join(f'{a:.3f}' for a in accs)})"
    members = [m for s in r["seeds"].values() for m in s["member_accuracies"]]
    if len(members) > len(accs):  # ensembles: their members alone
        own += f"; members alone {np.mean(members):.3f} ± {np.std(members):.3f} " \
               f"({', '.join(f'{m:.3f}' for m in members)})"
    if round(mean, 3) == round(best, 3):
        own = f"**{own}**"
    return own, f"{np.mean([s['seconds'] for s in r['seeds'].values()]):.0f}"


def merged(rows: list[dict]) -> list[dict]:
    """One row per dataset, in order of first appearance: a later row's seeds replace or add
    to an earlier row's (they must have the same train_args), and its baselines replace
    them; a row of baselines alone (``--seeds none``) adds them to any row."""
    out: dict[str, dict] = {}
    for r in rows:
        old = out.get(r["dataset"])
        if old is None:
            out[r["dataset"]] = {**r, "seeds": dict(r["seeds"])}
            continue
        if r["seeds"] and old["seeds"] and r["train_args"] != old["train_args"]:
            raise SystemExit(f"{r['dataset']}: rows with different train_args "
                             f"({old['train_args']} and {r['train_args']}) cannot be merged")
        if r["seeds"]:
            old["train_args"] = r["train_args"]
            old["seeds"].update(r["seeds"])
        old.update({k: v for k, v in r.items()
                    if k in ("1nn_euclidean", "1nn_dtw", "znorm", "baseline_seconds")})
    return list(out.values())


def build_parser() -> argparse.ArgumentParser:
    """The script's command line, built without running anything (tests/test_docs.py parses
    the documented commands with it)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--datasets", default=",".join(DATASETS),
                   help=f"comma-separated (default {','.join(DATASETS)})")
    p.add_argument("--seeds", default="0,1,2",
                   help="comma-separated seeds (default 0,1,2); none: the baselines alone")
    p.add_argument("--no-baselines", dest="baselines", action="store_false",
                   help="skip 1NN-ED and 1NN-DTW (slow on long series)")
    p.add_argument("--json", default=None, help="also write the rows as JSON here")
    p.add_argument("--table", nargs="+", default=None, metavar="JSON",
                   help="print one table from rows saved with --json (runs nothing)")
    return p


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    train_args = []
    if "--" in argv:
        cut = argv.index("--")
        argv, train_args = argv[:cut], argv[cut + 1:]
    args = build_parser().parse_args(argv)
    if args.table:
        rows = merged([r for f in args.table for r in json.loads(Path(f).read_text())])
    else:
        seeds = [] if args.seeds == "none" else [int(s) for s in args.seeds.split(",")]
        rows = []

        def save(row):
            if args.json:
                done = [r for r in rows if r is not row]
                Path(args.json).write_text(json.dumps(done + [row], indent=1))

        for name in args.datasets.split(","):
            rows.append(run_dataset(name.strip(), seeds, train_args, args.baselines, save))
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
