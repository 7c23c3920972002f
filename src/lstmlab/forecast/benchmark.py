"""The forecasting comparison of docs/forecasting-results.md: shipped series x seeds, network vs baselines.

For each series, what ``forecast train --dataset NAME`` does with no other flags (horizon
``lstmlab.forecast.cli.HORIZONS``, lookback, transform, anchor and base chosen on rolling
validation origins, the hybrid LSTM on that base, the command's default network and training
settings),
seeds 0..S-1 each train one model; every model and the baselines are scored on the same test
windows. The baselines do not depend on the seed.
"""

from __future__ import annotations

import numpy as np

from ..training.supervised import FitConfig
from .data import load_shipped
from .model import ForecastConfig
from .report import evaluate
from .select import train_default

NETWORK = dict(hidden_size=32, num_layers=1, cell="lstm", dropout=0.0, dtype="float32")


def benchmark_series(name: str, seeds: int, epochs: int = 300, log=None) -> dict:
    """``{"config", "season", "split", "windows", "scores": method -> list over seeds}``."""
    from .cli import DEFAULTS, HORIZONS

    series = load_shipped(name)
    base = ForecastConfig(**{**DEFAULTS, "horizon": HORIZONS[name]})
    fit = FitConfig(epochs=epochs)
    out = {"scores": {}}
    for seed in range(seeds):
        fc, _ = train_default(series, base, set(), np.random.default_rng(seed), fit_config=fit,
                              **NETWORK)
        config = fc.config
        ev = evaluate(fc, series)
        for method, s in ev.scores.items():
            out["scores"].setdefault(method, []).append(s)
        if log:
            s = ev.scores["lstm"]
            log(f"{name} seed {seed}: LSTM test RMSE h=1 {s['rmse_1']:.2f}, h=1..{config.horizon} "
                f"{s['rmse']:.2f} (best epoch {fc.meta['summary']['best_epoch']})")
        out.update(config=config, season=fc.season, split=fc.split, windows=len(ev.origins),
                   labels={m: ev.label(m) for m in ev.scores})
    return out


def _cell(values) -> str:
    v = np.asarray(values)
    return f"{v.mean():.2f}" if np.ptp(v) < 1e-9 else f"{v.mean():.2f} ± {v.std(ddof=1) if len(v) > 1 else 0:.2f}"


def format_markdown(name: str, res: dict) -> str:
    cfg, K = res["config"], res["config"].horizon
    sc = res["scores"]
    lines = [f"**{name}** — lookback {cfg.lookback}, horizon {K}, transform {cfg.transform}, "
             f"anchor {cfg.anchor}, base {cfg.base}, season {res['season']}; split {res['split'].train}/"
             f"{res['split'].val}/{res['split'].test} steps, {res['windows']} test windows; "
             f"{len(sc['lstm'])} seeds (mean ± sd)", "",
             f"| method | test RMSE, 1 step ahead | test RMSE, steps 1..{K} | MASE, steps 1..{K} |",
             "|---|---|---|---|"]
    for m, runs in sc.items():
        lines.append(f"| {res['labels'][m]} | {_cell([r['rmse_1'] for r in runs])} | "
                     f"{_cell([r['rmse'] for r in runs])} | {_cell([r['mase'] for r in runs])} |")
    n = len(sc["lstm"])
    lines.append("")
    for base in ("persistence", "linear_ar", "linear_ar_t"):
        if base not in sc:
            continue
        b1 = sum(r["rmse_1"] < sc[base][0]["rmse_1"] for r in sc["lstm"])
        bk = sum(r["rmse"] < sc[base][0]["rmse"] for r in sc["lstm"])
        lines.append(f"- LSTM better than {res['labels'][base]}: {b1}/{n} seeds at 1 step, "
                     f"{bk}/{n} over steps 1..{K}")
    return "\n".join(lines)


def run_benchmark(names, seeds: int, epochs: int = 300, log=None) -> str:
    return "\n\n".join(format_markdown(n, benchmark_series(n, seeds, epochs, log)) for n in names)
