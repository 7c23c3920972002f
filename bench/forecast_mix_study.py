"""Why the hybrid's network weight is the smallest with half the best validation gain.

    OPENBLAS_NUM_THREADS=1 PYTHONPATH=src python bench/forecast_mix_study.py [--only airline sunspots] [--seeds 3]

For each series (default: the tuning set, airline and sunspots) and seed, trains the default
forecaster (settings and base chosen on validation, the hybrid LSTM on that base) and prints
the validation MAE and the test MASE the hybrid would have with each network weight in
``lstmlab.forecast.model.MIXES`` (0 = the base alone), and the weight the default rule
picks. docs/forecasting-results.md uses it for the rule "smallest weight with half the best
validation gain".
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
from forecast_panel import NETWORK, panel

from lstmlab.forecast.model import MIXES, ForecastConfig
from lstmlab.forecast.report import evaluate
from lstmlab.forecast.select import train_default
from lstmlab.training.supervised import FitConfig


def build_parser() -> argparse.ArgumentParser:
    """The script's command line, built without running anything (tests/test_docs.py parses
    the documented commands with it)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--only", nargs="+", default=["airline", "sunspots"])
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    series = panel()
    weights = " ".join(f"{w:>6g}" for w in MIXES)
    print(f"{'series':<10} seed  picked | validation MAE at weight {weights} | test MASE at "
          f"weight {weights}")
    for name in args.only:
        s, K = series[name]
        for seed in range(args.seeds):
            fc, _ = train_default(s, ForecastConfig(horizon=K, base="ar"), set(),
                                  np.random.default_rng(seed), fit_config=FitConfig(), **NETWORK)
            picked = fc.hybrid.mix
            val = fc.meta["mix_val_mae"]
            test = []
            for w in MIXES:
                fc.hybrid.mix = w
                test.append(evaluate(fc, s).scores["lstm"]["mase"])
            print(f"{name:<10} {seed:>4} {picked:>7g} | {'':>24} "
                  + " ".join(f"{val[str(w)]:>6.3f}" for w in MIXES) + f" | {'':>19} "
                  + " ".join(f"{t:>6.3f}" for t in test), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
