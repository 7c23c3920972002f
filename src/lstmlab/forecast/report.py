"""Test-part evaluation of a forecaster beside the baselines: scores, forecasts CSV, plot.

Dimensions: n test windows (forecast origins), K horizon, L lookback.

Every report scores the same test windows with:

* the network (``lstm`` or ``rnn``);
* ``persistence`` and, when a season is known, ``seasonal_naive``;
* ``linear_ar``: least squares on the raw lookback window (levels), direct multi-step;
* ``linear_ar_t``: the same regression fitted in the network's own coordinates (after its
  log / anchor / scaling), so that the difference between it and the network is the
  network's nonlinearity and not its choice of transform (for the hybrid on a linear AR,
  this is the model the network stands on; on a naive base, that base is the persistence or
  seasonal naive row);
* ``ets`` (with ``ets=True`` and statsmodels installed): exponential smoothing, its variant
  picked on the validation part (:mod:`.ets`).

A model trained with ``nonnegative`` has every method's forecasts stopped at 0, the
baselines' as its own, so the table compares them on the same terms.

MASE uses one denominator for all methods: the in-sample seasonal-naive (m = season) MAE on
the training part, or the plain naive one (m = 1) when there is no season or the training
part is not longer than it; :meth:`Evaluation.mase_basis` says which was used.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field

import numpy as np

from ..training.checkpoint import atomic_write_bytes, atomic_write_text
from .baselines import LinearAR, mase_denominator, persistence, scores, seasonal_naive
from .data import TimeSeries, check_time_series
from .model import Forecaster
from .windows import Split, make_windows

LABELS = {
    "persistence": "persistence",
    "seasonal_naive": "seasonal naive",
    "linear_ar": "linear AR (levels)",
    "linear_ar_t": "linear AR (network's transform)",
}


@dataclass
class Evaluation:
    """Forecasts and scores of every method on the test windows."""

    origins: np.ndarray  # (n,) index of each window's first forecast step
    truth: np.ndarray  # (n, K)
    preds: dict  # method -> (n, K)
    scores: dict  # method -> {"mae", "rmse", "mase", "rmse_1", "rmse_per_step"}
    season: int | None
    scale: float  # MASE denominator
    part: str  # "test" (or "validation" when there is no test part)
    mase_lag: int | None = 1  # the m of the MASE denominator; None: its naive error is 0
    labels: dict = field(default_factory=dict)  # method -> label, where fitting chose a variant
    coverage: dict = field(default_factory=dict)  # level -> share of the truth in the interval
    bounds: dict = field(default_factory=dict)  # level -> (lo, hi), each (n, K)
    quantiles: dict = field(default_factory=dict)  # quantile level -> (n, K) from the heads
    quantile_coverage: dict = field(default_factory=dict)  # see quantile_scores
    periodic: bool = False  # no naive error (mase_lag None) on a training part not constant

    def label(self, method: str) -> str:
        if method in self.labels:
            return self.labels[method]
        if method == "seasonal_naive":
            return f"seasonal naive (m={self.season})"
        return LABELS.get(method, f"{method.upper()} (this model)")

    def mase_basis(self) -> str:
        """What the MASE column is relative to, as computed."""
        if self.mase_lag is None and not self.periodic:
            return "nothing: the training part is constant, so MASE is the MAE"
        if self.mase_lag is None:
            return (f"nothing: the training part repeats its season of {self.season} exactly, "
                    f"so the seasonal naive forecast has no error there to scale by; MASE is "
                    f"the MAE")
        if self.mase_lag == 1:
            return f"the in-sample naive (m=1) error {self.scale:.3g}"
        return f"the in-sample seasonal naive (m={self.mase_lag}) error {self.scale:.3g}"


def _linear_ar_in_model_space(fc: Forecaster, X_train, Y_train, X) -> np.ndarray:
    """The least-squares AR in the network's coordinates; for the hybrid on a linear AR, the
    (ridge) AR it stands on."""
    x, _ = fc.scaler.encode(X)
    if fc.hybrid is not None and fc.hybrid.kind == "ar":
        return fc.base_forecast(X)
    x_tr, y_tr = fc.scaler.encode(X_train, Y_train)
    ar = LinearAR().fit(x_tr.transpose(1, 0, 2), y_tr)
    return fc.scaler.decode(X, ar.predict(x.transpose(1, 0, 2)))


def baseline_forecasts(series: TimeSeries, split: Split, L: int, K: int, season: int | None,
                       origins: np.ndarray, ets: bool = False) -> tuple[dict, dict]:
    """``(preds, labels)``: persistence, seasonal naive (when the season fits before the first
    origin; a season of 1 is none, its seasonal naive the persistence again), the
    least-squares linear AR in levels on the training windows and, with ``ets``, exponential
    smoothing, each ``(n, K)`` at ``origins``; ``labels`` names fitted variants."""
    X, _ = make_windows(series.values, L, K, origins)
    Xtr, Ytr = make_windows(series.values, L, K, split.origins("train", L, K))
    preds = {"persistence": persistence(X, K)}
    if season and season > 1 and origins.min() >= season:
        preds["seasonal_naive"] = seasonal_naive(series.target, origins, K, season)
    preds["linear_ar"] = LinearAR().fit(Xtr, Ytr).predict(X)
    labels = {}
    if ets:
        from .ets import fit_ets

        model = fit_ets(series.target, split.train, split.origins("val", L, K), K, season)
        preds["ets"] = model.forecast(series.target, origins, K)
        labels["ets"] = model.describe()
    return preds, labels


def evaluate(fc: Forecaster, series: TimeSeries, ets: bool = False) -> Evaluation:
    """Score ``fc`` and the baselines on the test part of ``series`` (the training series);
    ``ets`` adds exponential smoothing (needs statsmodels: ``ImportError`` without it)."""
    check_time_series(series)
    split = fc.split
    if split is None or split.n != len(series):
        raise ValueError("evaluate needs the series the model was trained on (same length)")
    L, K = fc.config.lookback, fc.config.horizon
    part = "test" if split.test else "val"
    if part == "val" and not split.val:
        raise ValueError("there is neither a test nor a validation part to evaluate on; "
                         "set a test fraction > 0")
    origins = split.origins(part, L, K)
    X, Y = make_windows(series.values, L, K, origins)
    Xtr, Ytr = make_windows(series.values, L, K, split.origins("train", L, K))
    name = fc.net.config.cell
    base, labels = baseline_forecasts(series, split, L, K, fc.season, origins, ets)
    preds = {name: fc.predict_windows(X), "persistence": base.pop("persistence")}
    if "seasonal_naive" in base:
        preds["seasonal_naive"] = base.pop("seasonal_naive")
    preds["linear_ar"] = base.pop("linear_ar")
    preds["linear_ar_t"] = _linear_ar_in_model_space(fc, Xtr, Ytr, X)
    preds.update(base)
    preds = {k: fc.clipped(p) for k, p in preds.items()}  # --nonnegative: every method alike
    scale, lag = mase_denominator(series.target[: split.train], fc.season or 1)
    ev = Evaluation(origins, Y, preds, {k: scores(Y, p, scale) for k, p in preds.items()},
                    fc.season, scale, "test" if part == "test" else "validation", lag, labels,
                    periodic=lag is None and not fc.meta.get("constant_target"))
    if fc.intervals is not None:
        ev.coverage = fc.intervals.coverage(Y, preds[name], X)
        ev.bounds = {lv: fc.intervals.bounds(preds[name], lv, X) for lv in fc.intervals.width}
    if fc.config.quantiles:
        q = fc.predict_quantiles(X)  # (n, Q, K)
        ev.quantiles = {f"{t:g}": q[:, j] for j, t in enumerate(fc.config.quantiles)}
        ev.quantile_coverage = quantile_scores(Y, ev.quantiles)
    return ev


def quantile_scores(truth: np.ndarray, quantiles: dict) -> dict:
    """``{"below": {level: share of truth below the level's forecast}, "bands": {nominal:
    share inside [q_τ, q_{1-τ}]}}`` for quantile forecasts ``level -> (n, K)``; a band for
    every τ < 0.5 whose 1 - τ is also forecast, its nominal coverage 1 - 2τ."""
    below = {lv: float(np.mean(truth <= q)) for lv, q in quantiles.items()}
    bands = {}
    for lv, lo in quantiles.items():
        hi = quantiles.get(f"{1 - float(lv):g}")
        if float(lv) < 0.5 and hi is not None:
            bands[f"{1 - 2 * float(lv):g}"] = float(np.mean((truth >= lo) & (truth <= hi)))
    return {"below": below, "bands": bands}


def format_coverage(ev: Evaluation) -> str:
    """The network's interval coverage on the evaluated part, per level; with quantile
    heads a second line with theirs."""
    if not ev.coverage:
        line = "no prediction intervals (no validation part to fit them on)"
    else:
        parts = [f"{float(lv) * 100:g}% interval covers {c * 100:.0f}%"
                 for lv, c in ev.coverage.items()]
        line = f"prediction intervals (conformal) on the {ev.part} part: " + ", ".join(parts)
    if ev.quantile_coverage and ev.mase_lag is None and not ev.periodic:
        line += (f"\nquantile heads on the {ev.part} part: the training part is constant, so "
                 f"each quantile is the point forecast (a band of zero width)")
    elif ev.quantile_coverage:
        qc = ev.quantile_coverage
        parts = [f"{float(n) * 100:g}% band covers {c * 100:.0f}%" for n, c in qc["bands"].items()]
        parts += [f"{c * 100:.0f}% below the {float(lv) * 100:g}% quantile"
                  for lv, c in qc["below"].items()]
        line += f"\nquantile heads (pinball loss) on the {ev.part} part: " + ", ".join(parts)
    return line


def table_cell(value: float, width: int) -> str:
    """``value`` right-aligned in ``width`` characters after at least one space: three
    decimals for ordinary magnitudes, three significant digits (in exponent form when
    needed) for the very large and the very small, so a series in units of 1e30 keeps its
    columns and one in units of 1e-30 does not print 0.000 for every method."""
    text = f"{value:.3f}"
    if value != 0 and math.isfinite(value) and not (1e-3 <= abs(value) < 1e5
                                                    and len(text) < width):
        text = f"{value:.3g}"
    return (" " + text).rjust(width)


def value_digits(y: np.ndarray) -> int:
    """Significant digits (6 to 17) that write the values of the series ``y``, and forecasts
    at its level, to a thousandth of its mean absolute one-step change: six digits write a
    series at 1e9 that moves by units as ``1e+09`` in every row, truth and forecasts alike.
    A series without change is written to a millionth of its size."""
    y = np.asarray(y, np.float64)
    y = y[np.isfinite(y)]
    top = float(np.max(np.abs(y))) if y.size else 0.0
    if top == 0:
        return 6
    step = float(np.mean(np.abs(np.diff(y)))) if y.size > 1 else 0.0
    unit = step if step > 0 else top * 1e-6
    return int(np.clip(math.floor(math.log10(top)) - math.floor(math.log10(unit)) + 3, 6, 17))


def format_table(ev: Evaluation) -> str:
    """A plain-text table: one row per method, best RMSE marked; the method column is as
    wide as its longest label ('ETS(levels, damped trend, season 12)')."""
    K = ev.truth.shape[1]
    n = max([33, *(len(ev.label(m)) for m in ev.scores)]) + 1
    head = f"{'method':<{n}}{'RMSE h=1':>10}{f'RMSE 1..{K}':>12}{'MAE':>10}{'MASE':>8}"
    lines = [head, "-" * len(head)]
    best = min(ev.scores, key=lambda k: ev.scores[k]["rmse"])
    for method, s in ev.scores.items():
        mark = "  <- best" if method == best else ""
        cells = (table_cell(s[k], w) for k, w in (("rmse_1", 10), ("rmse", 12), ("mae", 10),
                                                   ("mase", 8)))
        lines.append(f"{ev.label(method):<{n}}{''.join(cells)}{mark}")
    return "\n".join(lines)


def forecasts_csv(ev: Evaluation, series: TimeSeries) -> str:
    """One row per (origin, step ahead): times, truth and every method's forecast."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    methods = list(ev.preds)
    net = methods[0]
    bands = [(f"{net}_{side}{float(lv) * 100:g}", b) for lv, (lo, hi) in ev.bounds.items()
             for side, b in (("lo", lo), ("hi", hi))]
    bands += [(f"{net}_q{float(lv) * 100:g}", q) for lv, q in ev.quantiles.items()]
    w.writerow(["origin_time", "target_time", "step", "truth", *methods, *(n for n, _ in bands)])
    d = value_digits(series.target)
    for i, t in enumerate(ev.origins):
        for k in range(ev.truth.shape[1]):
            w.writerow([series.time_label(int(t) - 1), series.time_label(int(t) + k), k + 1,
                        f"{ev.truth[i, k]:.{d}g}",
                        *(f"{ev.preds[m][i, k]:.{d}g}" for m in methods),
                        *(f"{b[i, k]:.{d}g}" for _, b in bands)])
    return buf.getvalue()


def write_forecasts_csv(path, ev: Evaluation, series: TimeSeries) -> None:
    atomic_write_text(path, forecasts_csv(ev, series))


def plot_forecast(path, ev: Evaluation, series: TimeSeries, title: str = "") -> None:
    """History, truth and forecasts of the evaluated part, as a PNG (needs matplotlib)."""
    try:  # a Figure of its own, no pyplot: no window, and a caller's backend is left as it is
        from matplotlib.figure import Figure
    except ImportError:
        raise OSError("the plot needs matplotlib (a dependency of lstmlab: pip install "
                      "matplotlib); pass --no-plot to skip it") from None
    y = series.target
    first = int(ev.origins[0])
    K = ev.truth.shape[1]
    net = next(iter(ev.preds))
    fig = Figure(figsize=(10, 4.5))
    ax = fig.subplots()
    t = np.arange(len(y))
    ax.plot(t[: first], y[: first], color="0.55", lw=1.2, label="history")
    ax.plot(t[first:], y[first:], color="black", lw=1.5, label=f"truth ({ev.part} part)")
    one_step = ev.preds[net][:, 0]
    ax.plot(ev.origins, one_step, color="tab:blue", lw=1.5, label=f"{net.upper()}, 1 step ahead")
    span = first + np.arange(K)
    ax.plot(span, ev.preds[net][0], "o--", color="tab:blue", ms=3, lw=1,
            label=f"{net.upper()}, {K} steps from the first origin")
    for level, alpha in zip(sorted(ev.bounds, key=float, reverse=True), (0.12, 0.22)):
        lo, hi = ev.bounds[level]
        ax.fill_between(span, lo[0], hi[0], color="tab:blue", alpha=alpha, lw=0,
                        label=f"{float(level) * 100:g}% interval")
    for level, q in ev.quantiles.items():
        ax.plot(span, q[0], "--", color="tab:purple", lw=1,
                label=f"{float(level) * 100:g}% quantile (pinball head)")
    ax.plot(span, ev.preds["linear_ar"][0], "s:", color="tab:orange", ms=3, lw=1,
            label=f"linear AR, {K} steps")
    ax.axvline(first - 0.5, color="0.8", lw=1)
    if series.time is not None:
        ticks = np.linspace(0, len(y) - 1, 8).astype(int)
        ax.set_xticks(ticks, [series.time[i] for i in ticks])
    ax.set_ylabel(series.columns[0])
    s = ev.scores
    ax.set_title(title or f"{series.columns[0]}: {ev.part} RMSE {net.upper()} {s[net]['rmse']:.2f}, "
                 f"linear AR {s['linear_ar']['rmse']:.2f}, persistence "
                 f"{s['persistence']['rmse']:.2f}", fontsize=10)
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    atomic_write_bytes(path, buf.getvalue())
