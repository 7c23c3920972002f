"""Rolling-origin backtests: the whole forecasting procedure at K forecast origins.

Dimensions: N time steps, K horizon, F folds.

One test part is one sample of a forecaster's skill; forecasters judge a method over several
origins (Tashman 2000). Fold i (i = 0..F-1) cuts the series after ``N - i·K`` steps and runs
everything on what is left, as if the data ended there: the split with the same fractions,
the season, the choice of settings on validation, one network, the baselines, and the scores
on that fold's test part. Fold 0 is the full series, the run the report describes. Each
method's MASE is averaged over the folds (each fold scales by its own training part).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from .data import TimeSeries
from .model import ForecastConfig
from .report import evaluate
from .select import train_default
from .windows import WindowError, chronological_split


def cut(series: TimeSeries, end: int) -> TimeSeries:
    """The first ``end`` steps of ``series``."""
    return replace(series, values=series.values[:end],
                   time=None if series.time is None else series.time[:end],
                   lines=None if series.lines is None else series.lines[:end],
                   notes=list(series.notes))


def check_folds(n: int, config: ForecastConfig, folds: int) -> None:
    """A ``WindowError`` naming ``--backtest`` when the earliest fold is too short to split."""
    back = (folds - 1) * config.horizon  # the earliest fold ends this many steps earlier
    if back >= n:
        raise WindowError(f"--backtest {folds}: the earliest fold would end {back} steps "
                          f"({folds - 1} x the horizon {config.horizon}) before the end of a "
                          f"series of {n} steps; lower --backtest")
    shortest = n - back
    try:
        chronological_split(shortest, 1, config.horizon, config.val_fraction,
                            config.test_fraction)
    except WindowError as exc:
        raise WindowError(f"--backtest {folds}: the earliest fold keeps {shortest} of the "
                          f"series' {n} steps, too few ({exc}); lower --backtest") from None


def backtest(series: TimeSeries, config: ForecastConfig, given: set, folds: int, seed: int,
             ets: bool = False, **network) -> dict:
    """``{"ends": [N_i], "mase": {method: [MASE per fold]}, "labels": {method: [label per
    fold]}}`` over ``folds`` origins: each fold chooses its own variants (the ETS model, the
    season), so a method's label is kept per fold. ``network``: the keywords of
    :meth:`~lstmlab.forecast.model.Forecaster.train`."""
    check_folds(len(series), config, folds)
    ends, mase, labels = [], {}, {}
    for i in range(folds):
        end = len(series) - i * config.horizon
        part = cut(series, end)
        fc, _ = train_default(part, config, given, np.random.default_rng(seed), **network)
        ev = evaluate(fc, part, ets=ets)
        ends.append(end)
        for method, s in ev.scores.items():
            mase.setdefault(method, []).append(s["mase"])
            labels.setdefault(method, []).append(ev.label(method))
    return {"ends": ends, "mase": mase, "labels": labels}


def method_name(method: str, labels: list) -> str:
    """The name of ``method`` without its variant (``ETS`` of ``ETS(log, ...)``)."""
    return labels[0].split("(")[0].strip() or method


def fold_label(method: str, labels: list) -> str:
    """The row label of ``method`` in the backtest table: its label when every fold gave it
    the same, else its name said to vary, as no one fold's variant stands for the others."""
    if len(set(labels)) == 1:
        return labels[0]
    return f"{method_name(method, labels)} (variant per fold, below)"


def format_backtest(result: dict, labels: dict) -> str:
    """Mean MASE per method over the folds, with the range (methods scored in every fold);
    the method column is as wide as its longest label. A method whose folds chose different
    variants (``result["labels"]``) is labelled by its name, and its variant in each fold is
    listed below the table; ``labels`` gives the others' labels."""
    folds = len(result["ends"])
    per_fold = {m: v for m, v in result.get("labels", {}).items() if len(v) == folds}
    labels = {**labels, **{m: fold_label(m, v) for m, v in per_fold.items()}}
    n = max([33, *(len(labels.get(m, m)) for m in result["mase"])]) + 1
    head = f"{'method':<{n}}{'MASE mean':>10}{'min':>8}{'max':>8}"
    lines = [f"backtest over {folds} origins (test parts ending after steps "
             f"{', '.join(str(e) for e in result['ends'])}):", head, "-" * len(head)]
    for method, values in result["mase"].items():
        if len(values) < folds:
            continue  # e.g. seasonal naive, when an early fold is too short for it
        v = np.asarray(values)
        lines.append(f"{labels.get(method, method):<{n}}{v.mean():>10.3f}{v.min():>8.3f}"
                     f"{v.max():>8.3f}")
    for method, names in per_fold.items():
        if len(set(names)) > 1 and len(result["mase"].get(method, ())) == folds:
            each = "; ".join(f"{end}: {name}" for end, name in zip(result["ends"], names))
            lines.append(f"{method_name(method, names)} per fold (test part ending after step): "
                         f"{each}")
    return "\n".join(lines)
