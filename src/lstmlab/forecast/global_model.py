"""One network for many series (a global model): training, forecasting, checkpoints.

Dimensions: S series, L lookback, K horizon, n windows (over all series).

Every series is split in time order like a single series (:func:`.windows.chronological_split`
with the same fractions), and its windows are cut with the one lookback L and horizon K.
**Per-series scaling** makes the windows of series of any level and unit comparable: with
``z`` the target (or ``log`` of it, ``transform="log"``), a window with origin t becomes

    x_j = (z_{t-L+j} − z_{t-1}) / s        (j = 0..L-1)      inputs, relative to the last value
    y_k = (z_{t+k}   − z_{t-1}) / s        (k = 0..K-1)      targets, the change over it

where ``s`` is the series' mean absolute one-step change on its training part (its naive
error, the MASE denominator with m = 1). A series whose training part is constant (its ``s``
0, or below ``1e-13`` of its level: rounding) has no change to scale by and none to learn:
``s = 0`` marks it, its windows stay out of the network's training and validation (in its
own units they would teach the network changes of another size), and its forecast is its
last value, the constant. Before that, a series that the M4 seasonality test
finds seasonal (its training part, the season given or detected) is seasonally adjusted, and
the forecast re-seasonalised, so the network models the adjusted series and need not learn
every series' phase: a series whose training part is positive is divided by its
multiplicative seasonal indices (the deseasonalisation of naive 2, :mod:`.m4`, and of Smyl's
ES-RNN), any other has its additive seasonal components subtracted (a ratio to the trend
means nothing where values reach 0 or below: temperatures, rates, net flows). Then one
standardisation over the windows of all series (inputs by one mean and deviation, outputs per
step ahead). One network
(:class:`~lstmlab.layers.seqnet.SequenceNet`, last-state readout, K outputs) is trained on the
training windows of every series by minibatch Adam on the mean squared error, keeping the
epoch with the lowest loss on the validation windows of every series.

**Prediction intervals** are pooled as the training is (:mod:`.intervals`, local scale): the
validation errors of every series, each divided by its window's mean absolute one-step
change, give one conformal quantile per step ahead, and a forecast's interval is that
quantile times its own window's scale. One series holds a few dozen validation windows,
too few for a 95 % quantile (and mostly overlapping ones); the panel holds them all, and
the ratios are free of each series' units.

**Hybrid** (``base="ar"``): every series also gets its own statistical model, a ridge linear
AR (:func:`.baselines.ridge_gcv`) fitted on its training windows in the relative
coordinates above, and the one network learns the residual of each series' AR (the shape of
Smyl's ES-RNN: a statistical model per series, one network across all). The forecast is

    y_k = ar_s(x)_k + mix_s · net(x)_k        (relative coordinates, then mapped back)

with each series' weight ``mix_s`` picked on its own validation windows by the rule of the
single-series hybrid (:func:`.model.pick_mix`): ``mix_s = 0`` is that series' AR alone.

A series the model never saw can be forecast too: its ``s`` comes from the data given.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._checks import positive_int
from .._config import JsonConfig
from .._scaling import mean_std
from .._words import counted
from ..layers.seqnet import SequenceNet, SequenceNetConfig
from ..training.checkpoint import (CheckpointError, load_checkpoint, param_arrays, restore_params,
                                   save_checkpoint)
from ..training.losses import mse_loss
from ..training.supervised import FitConfig, fit_sequence_net
from .baselines import LinearAR, mae, ridge_gcv
from .data import (TimeSeries, day_gap, day_number, known_season, time_gap_problem,
                   time_steps)
from .intervals import Intervals
from .m4 import is_seasonal, seasonal_indices, seasonal_offsets
from .model import MIXES, check_series_range, check_window_settings, pick_mix
from .panel import Panel
from .windows import Split, WindowError, chronological_split, make_windows

KIND = "global_forecaster"
GLOBAL_BASES = ("none", "ar")


@dataclass(frozen=True)
class GlobalConfig(JsonConfig):
    """What the global model forecasts from what (stored in checkpoints)."""

    lookback: int = 24  # L, past steps the model reads (the same for every series)
    horizon: int = 12  # K, steps ahead forecast at once
    transform: str = "none"  # "none" or "log" (of every series; log needs positive values)
    val_fraction: float = 0.15  # per series, after its training part
    test_fraction: float = 0.2  # per series, at its end
    season: int | None = None  # every series' season; None: detected per series
    deseasonalize: bool = True  # seasonally adjust a seasonal series first (see above)
    base: str = "none"  # "ar": a ridge linear AR per series under the network (the hybrid)

    def __post_init__(self):
        if self.base not in GLOBAL_BASES:
            raise ValueError(f"base must be one of {GLOBAL_BASES}, got {self.base!r}")
        check_window_settings(self)



CONSTANT = 1e-13  # a mean one-step change below this share of the level is rounding (~500 ulps)


def series_scale(y: np.ndarray, log: bool) -> float:
    """``s``: the mean absolute one-step change of ``y (N,)`` (after the log); 0 for a
    constant series (a change below ``CONSTANT`` of its mean absolute level, or of 1 after
    the log, whose changes are already relative); 1 when there is no change to measure."""
    z = np.log(y) if log else np.asarray(y, np.float64)
    if len(z) < 2:
        return 1.0
    s = float(np.mean(np.abs(np.diff(z))))
    if not np.isfinite(s):
        return 1.0
    return s if s > CONSTANT * (1.0 if log else float(np.mean(np.abs(z)))) else 0.0


@dataclass
class SeriesInfo:
    """What the model keeps about one training series."""

    scale: float  # s of the module docstring; 0: a constant series, forecast by its level
    season: int | None  # given or detected on its training part
    split: Split
    indices: np.ndarray | None = None  # (m,) seasonal indices the series is divided by
    intervals: Intervals | None = None
    ar: np.ndarray | None = None  # (L + 1, K) its ridge AR in relative coordinates (hybrid)
    mix: float = 1.0  # the network's weight on this series (hybrid)
    additive: bool = False  # ``indices`` are subtracted, not divided by (values <= 0)
    first: str | None = None  # time label of its first training row, where its phase starts
    # where its training dates (ISO dates) first are not a day apart (``data.day_gap``): its
    # phase is counted in rows, and a file without ``first`` cannot be counted to in days
    gap: str | None = None
    # time label of its last row in the training file, ``split.n`` rows from ``first`` on: a
    # file holding both must hold as many rows between them for the phase counted in rows
    last: str | None = None

    def to_json(self) -> dict:
        return {"scale": self.scale, "season": self.season, "split": self.split.to_json(),
                "indices": None if self.indices is None else self.indices.tolist(),
                "intervals": None if self.intervals is None else self.intervals.to_json(),
                "ar": None if self.ar is None else self.ar.tolist(), "mix": self.mix,
                "additive": self.additive, "first": self.first, "gap": self.gap,
                "last": self.last}

    @classmethod
    def from_json(cls, d: dict) -> "SeriesInfo":
        iv, idx, ar = d.get("intervals"), d.get("indices"), d.get("ar")
        season = None if d["season"] == 1 else d["season"]  # one step is none (known_season)
        info = cls(float(d["scale"]), season, Split(**d["split"]),
                   None if idx is None else np.asarray(idx, np.float64),
                   None if iv is None else Intervals.from_json(iv),
                   None if ar is None else np.asarray(ar, np.float64), float(d.get("mix", 1.0)),
                   bool(d.get("additive", False)), d.get("first"), d.get("gap"), d.get("last"))
        if not all(a is None or isinstance(a, str) for a in (info.first, info.gap, info.last)):
            raise ValueError("the first and last time labels and the gap in the dates must be "
                             "strings")
        if info.indices is not None and (
                info.indices.shape != (info.season,) or not np.all(np.isfinite(info.indices))
                or not (info.additive or np.all(info.indices > 0))):
            raise ValueError("seasonal indices must be season finite numbers (positive unless "
                             "additive)")
        return info

    def base(self, x: np.ndarray) -> np.ndarray:
        """Its AR's forecast ``(n, K)`` from relative windows ``x (n, L)`` (0 without one)."""
        if self.ar is None:
            return 0.0
        ar = LinearAR()
        ar.coef = self.ar
        return ar.predict(x[:, :, None])

    def adjust(self, a: np.ndarray, origins: np.ndarray, offsets: np.ndarray,
               back: bool = False) -> np.ndarray:
        """``a (n, J)``, the steps ``origin + offset`` of the series, seasonally adjusted
        (divided by their indices, or less their additive components); ``back``: the other
        way, re-seasonalised. Unchanged without indices."""
        if self.indices is None:
            return a
        steps = np.asarray(origins)[:, None] + np.asarray(offsets)[None, :]
        s = self.indices[steps % len(self.indices)]
        if self.additive:
            return a + s if back else a - s
        return a * s if back else a / s


def fit_series_info(name: str, series: TimeSeries, split: Split,
                    config: GlobalConfig) -> SeriesInfo:
    """Season, seasonal indices (when the M4 test finds the season on the training part)
    and scale of series ``name``, from its training part, the first ``split.train`` steps.
    The indices are fitted and applied by row, so a series to adjust whose time labels
    have a gap (:func:`.data.time_gap_problem`) is an error naming it: past it every row
    would take the phase of the one before the gap. A forecast reads a new series' last rows
    only, but fits its indices on all of them."""
    y_train = series.target[: split.train]
    season = known_season(config.season, series, split.train)
    info = SeriesInfo(0.0, season, split)
    if config.deseasonalize and season and is_seasonal(y_train, season):
        problem = series.time and time_gap_problem(series.time, series.lines)
        if problem:
            raise ValueError(f"series {name!r} is seasonally adjusted by indices fitted on all "
                             f"its rows, so all of them are checked: {problem}")
        info.additive = not np.all(y_train > 0)
        info.indices = (seasonal_offsets if info.additive else seasonal_indices)(y_train, season)
        y_train = info.adjust(y_train[None, :], np.zeros(1, np.int64),
                              np.arange(split.train))[0]
    info.scale = series_scale(y_train, config.transform == "log")
    return info


def constant_names(info: dict, names: list, shown: int = 5) -> str:
    """The first ``shown`` of ``names``, series whose training part is constant: one that is
    seasonally adjusted is said to repeat its season exactly (constant once adjusted, as
    ``0, 1, 2, 0, 1, 2, ...``), which its own values do not show as constant."""
    out = [f"{n}: repeats its season of {info[n].season} exactly" if info[n].indices is not None
           else n for n in names[:shown]]
    sep = "; " if any(info[n].indices is not None for n in names[:shown]) else ", "
    return sep.join(out) + (f"{sep}..." if len(names) > shown else "")


class GlobalForecaster:
    """One network, per-series scales; ``predict(name, X)`` forecasts any series."""

    def __init__(self, net: SequenceNet, config: GlobalConfig, info: dict, norm: dict,
                 fit_config: FitConfig | None = None, meta: dict | None = None):
        self.net, self.config, self.info, self.norm = net, config, info, norm
        self.fit_config = fit_config or FitConfig()
        self.meta = dict(meta or {})

    # -- scaling ------------------------------------------------------------------------------
    def _relative(self, X: np.ndarray, info: SeriesInfo, origins: np.ndarray,
                  Y: np.ndarray | None = None):
        """Raw ``X (n, L)`` (and ``Y (n, K)``) at ``origins`` -> deseasonalised, relative,
        per-series scaled, plus the anchor ``(n, 1)``."""
        L, K = self.config.lookback, self.config.horizon
        log = self.config.transform == "log"
        f = np.log if log else np.asarray
        for what, a in (("the input window", X), ("the target", Y)):
            if log and a is not None and not np.all(a > 0):
                raise ValueError(f"the log transform needs positive values, but {what} holds "
                                 f"{float(np.min(a)):g}; use --transform none")
        z = f(info.adjust(np.asarray(X, np.float64), origins, np.arange(-L, 0)))
        last = z[:, -1:]  # (n, 1)
        scale = info.scale or 1.0  # a constant series: its windows never reach the network
        x = (z - last) / scale
        y = None
        if Y is not None:
            y = f(info.adjust(np.asarray(Y, np.float64), origins, np.arange(K))) - last
            y /= scale
        return x, y, last

    def _encode(self, X, info, origins, Y=None):
        """Network input ``(L, n, 1)``, its target (the residual of the series' base,
        standardised) and the anchor ``(n, 1)`` and base forecast ``(n, K)`` to map back with."""
        x, y, last = self._relative(X, info, origins, Y)
        b = info.base(x) + np.zeros((len(x), self.config.horizon))  # (n, K)
        x = ((x - self.norm["x_mean"]) / self.norm["x_std"]).T[:, :, None]  # (L, n, 1)
        if y is not None:
            y = (y - b - self.norm["y_mean"]) / self.norm["y_std"]  # (n, K)
        return np.ascontiguousarray(x), y, last, b

    # -- training -------------------------------------------------------------------------------
    @classmethod
    def train(cls, panel: Panel, config: GlobalConfig, rng: np.random.Generator,
              hidden_size: int = 32, num_layers: int = 1, cell: str = "lstm",
              dropout: float = 0.0, dtype: str = "float32", fit_config: FitConfig | None = None,
              on_epoch=None, should_stop=None) -> "GlobalForecaster":
        """Fit one network on the training windows of every series in ``panel``."""
        fit_config = fit_config or FitConfig()
        L, K = config.lookback, config.horizon
        log = config.transform == "log"
        info, parts = {}, {"train": [], "val": []}
        for name, s in panel.series.items():
            split = split_series(name, s, config)
            if log and not np.all(s.target > 0):
                i = int(np.argmin(s.target))
                raise ValueError(f"series {name!r}: --transform log needs positive values, but "
                                 f"line {int(s.lines[i])} holds {s.target[i]:g}; use "
                                 f"--transform none")
            info[name] = fit_series_info(name, s, split, config)
            if s.time:
                info[name].first, info[name].last = s.time[0], s.time[-1]
            info[name].gap = day_gap(s.time, s.lines)
            for part in parts:
                origins = split.origins(part, L, K)
                X, Y = make_windows(s.target, L, K, origins)
                parts[part].append((name, origins, X[:, :, 0], Y))
        constant = [n for n, i in info.items() if i.scale == 0]
        if len(constant) == len(info):
            raise ValueError(f"every series is constant on its training part "
                             f"({constant_names(info, constant)}): there is no change for the "
                             f"network to learn, and a constant series is forecast by its value")
        for name in constant:
            if config.base == "ar":  # its forecast is its level; the AR is there to be stored
                info[name].ar = np.zeros((L + 1, K))
        varying = {p: [w for w in ws if info[w[0]].scale > 0] for p, ws in parts.items()}
        net_config = SequenceNetConfig(input_size=1, output_size=K, hidden_size=hidden_size,
                                       num_layers=num_layers, cell=cell, readout="last",
                                       dropout=dropout, dtype=dtype)
        gf = cls(SequenceNet(net_config, rng=rng), config, info, {}, fit_config)
        rel = [gf._relative(X, info[n], o, Y) for n, o, X, Y in varying["train"]]
        if config.base == "ar":  # each series' own ridge AR, in its relative coordinates
            for (n, _, _, _), (x, y, _) in zip(varying["train"], rel):
                info[n].ar = ridge_gcv(x[:, :, None], y)[0].coef
        x_all = np.concatenate([x for x, _, _ in rel])  # (n, L)
        y_all = np.concatenate([y - info[n].base(x) for (n, _, _, _), (x, y, _)
                                in zip(varying["train"], rel)])  # (n, K) the network's target
        x_mean, x_std = mean_std(x_all.ravel(), 0)
        y_mean, y_std = mean_std(y_all, 0)
        gf.norm = {"x_mean": float(x_mean), "x_std": float(x_std), "y_mean": y_mean,
                   "y_std": y_std}
        x, y = gf._stack(varying["train"])
        val = None
        if any(len(X) for _, _, X, _ in varying["val"]):
            xv, yv = gf._stack(varying["val"])
            val = (xv.astype(gf.net.dtype), yv.astype(gf.net.dtype), None)
        summary = fit_sequence_net(gf.net, x.astype(gf.net.dtype), y.astype(gf.net.dtype),
                                   mse_loss, fit_config, rng, val=val, on_epoch=on_epoch,
                                   should_stop=should_stop)
        calibration = []  # (truth, forecast, window, scale) of every varying series' validation
        for name, origins, Xv, Yv in parts["val"]:
            if len(Xv) and config.base == "ar":
                info[name].mix = pick_mix({w: mae(Yv, gf.predict(name, Xv, origins, mix=w))
                                           for w in MIXES})
            if len(Xv) and info[name].scale > 0:
                calibration.append((Yv, gf.predict(name, Xv, origins), Xv[:, :, None],
                                    np.full(len(Xv), info[name].scale)))
        if calibration:  # one set of intervals for all series (see the module docstring)
            truth, pred, windows, flat = (np.concatenate(a) for a in zip(*calibration))
            pooled = Intervals.fit(truth, pred, log, windows=windows, flat=flat)
            for i in info.values():
                i.intervals = pooled
        gf.meta = {"summary": summary, "train_windows": int(x.shape[1]),
                   "source": panel.source}
        return gf

    def _stack(self, part) -> tuple[np.ndarray, np.ndarray]:
        """Encoded windows of every series of one part: ``x (L, n, 1)``, ``y (n, K)``."""
        enc = [self._encode(X, self.info[n], o, Y)[:2] for n, o, X, Y in part if len(X)]
        return (np.concatenate([e[0] for e in enc], axis=1),
                np.concatenate([e[1] for e in enc]))

    def panel_intervals(self) -> Intervals | None:
        """The intervals pooled over the panel, which serve any series (their widths are
        multiples of a window's own scale); None for a model without them."""
        return next((i.intervals for i in self.info.values()
                     if i.intervals is not None and i.intervals.local), None)

    # -- forecasting ------------------------------------------------------------------------
    def predict(self, name: str, X: np.ndarray, origins: np.ndarray,
                info: SeriesInfo | None = None, mix: float | None = None) -> np.ndarray:
        """Raw target windows ``X (n, L)`` of series ``name`` whose first forecast steps are
        ``origins (n,)`` (their positions in the series, for the seasonal phase) -> forecasts
        ``(n, K)``; ``info`` overrides the stored one (a series not seen in training), ``mix``
        the series' network weight (hybrid)."""
        L, K = self.config.lookback, self.config.horizon
        X = np.asarray(X, np.float64)
        origins = np.asarray(origins, np.int64)
        if X.ndim != 2 or X.shape[1] != L or origins.shape != (len(X),):
            raise ValueError(f"windows must have shape (n, {L}) with n origins, got {X.shape} "
                             f"and {origins.shape}")
        if np.isnan(X).any():
            i, t = np.argwhere(np.isnan(X))[0]
            raise ValueError(f"series {name!r}: window {i} has a missing value (NaN) at step "
                             f"{t + 1} of {L}; fill it (read_panel(..., missing='ffill' or "
                             f"'interpolate')) before forecasting")
        if info is None:
            if name not in self.info:
                raise ValueError(f"series {name!r} was not in training; pass its SeriesInfo")
            info = self.info[name]
        x, _, last, b = self._encode(X, info, origins)
        if info.scale == 0:  # a constant series: its level, whatever the network would say
            z = np.repeat(last, K, axis=1)
        else:
            out = self.net.predict(x.astype(self.net.dtype)).astype(np.float64)  # (n, K)
            w = (info.mix if mix is None else mix) if info.ar is not None else 1.0
            z = (b + w * (out * self.norm["y_std"] + self.norm["y_mean"])) * info.scale + last
        y = np.exp(z) if self.config.transform == "log" else z
        return info.adjust(y, origins, np.arange(K), back=True)

    def forecast_next(self, name: str, series: TimeSeries, horizon: int | None = None,
                      info: SeriesInfo | None = None) -> tuple[np.ndarray, bool]:
        """``(forecast (K',), seen)``: the K' steps after the end of ``series``; ``seen`` says
        whether the series was in training (else its scale comes from ``series``). ``info``:
        :meth:`series_info` of ``series``, when the caller holds it already, so a series not
        seen is fitted once (its linear AR is fitted here, with ``base="ar"``)."""
        L, K = self.config.lookback, self.config.horizon
        K2 = K if horizon is None else positive_int(horizon, "horizon")
        if K2 > K:
            raise ValueError(f"this model forecasts {counted(K, 'step')} ahead at once; "
                             f"--horizon must be 1..{K}, got {K2}")
        n = len(series)
        short = self.too_short(name, n)
        if short:
            raise ValueError(f"series {name!r}: {short}")
        seen = name in self.info
        if seen:
            info = None
        else:
            info = info if info is not None else self.series_info(name, series)
            if self.config.base == "ar":  # its own AR on every window of the data given
                origins = np.arange(L, n - K + 1)
                X, Y = make_windows(series.target, L, K, origins)
                x, y, _ = self._relative(X[:, :, 0], info, origins, Y)
                info.ar = (ridge_gcv(x[:, :, None], y)[0].coef if info.scale > 0
                           else np.zeros((L + 1, K)))
        end = n if info is not None else self.end_position(name, series)
        return self.predict(name, series.target[-L:][None], np.array([end]), info)[0, :K2], seen

    def too_short(self, name: str, n: int) -> str | None:
        """Why ``n`` rows of series ``name`` are too few to forecast from, or None: the model
        reads the last lookback rows, and with ``base="ar"`` a series not in training gets
        its own linear AR, fitted on its windows of lookback + horizon rows."""
        L, K = self.config.lookback, self.config.horizon
        if n < L:
            return f"it has {counted(n, 'step')}, fewer than the model's lookback {L}"
        if name not in self.info and self.config.base == "ar" and n < L + K:
            return (f"it was not in training and has {counted(n, 'step')}, fewer than "
                    f"lookback + horizon = {L + K}, which its own linear AR needs")
        return None

    def end_position(self, name: str, series: TimeSeries) -> int:
        """The position after the last row of ``series``, a series the model was trained on,
        counted from its first training row: the step the seasonal phase of its forecast
        starts at. Time labels of whole numbers, months or quarters are counted in their
        steps; ISO dates in days where the training dates were a day apart (their phase
        counts rows, as days only then), the last lookback rows, which the model reads and
        adjusts, a day apart too; other labels in rows from the row that holds the first
        training label, as many rows up to the last training label as in training where the
        file holds it. So a file that starts later or earlier than the training file, or
        leaves out old rows, is forecast in the right phase, and one whose rows are not
        counted as in training is an error naming them. Without time labels the rows are
        counted from the file's first row, as in training, rows left out unread
        (``series.left_out``) too. A seasonally adjusted series whose first training label can
        be neither found nor counted to is an error naming that label."""
        info, n = self.info[name], len(series)
        if info.indices is None or info.first is None or not series.time:
            return series.left_out + n
        labels, L = series.time, self.config.lookback
        found = time_steps([info.first, *labels[-2:]]) if n >= 2 else None
        if found is not None:
            t0, before, last = found[0]
            step = last - before
            if step > 0 and (last - t0) % step == 0:
                return (last - t0) // step + 1
        days = day_number(info.first) is not None and all(day_number(t) is not None
                                                          for t in labels[-L:])
        # a model that records its last training time records the gap of its dates too; an
        # older one may not, and counts days only where the rows cannot be counted
        if days and info.gap is None and (info.last is not None or info.first not in labels):
            skip = day_gap(labels[-L:], None if series.lines is None else series.lines[-L:])
            if skip:
                raise ValueError(f"series {name!r}: its last {L} rows, which the model reads, "
                                 f"skip a day ({skip}), where its training dates were a day "
                                 f"apart, so the rows before the skip are out of phase; add the "
                                 f"missing dates as rows with an empty value and pass --missing "
                                 f"interpolate (or ffill)")
            return day_number(labels[-1]) - day_number(info.first) + 1
        if info.first in labels:
            start = labels.index(info.first)
            held = labels.index(info.last, start) - start + 1 if info.last in labels[start:] else 0
            if held and held != info.split.n:
                raise ValueError(f"series {name!r} is seasonally adjusted in the phase of its "
                                 f"rows counted from its first training row, time "
                                 f"{info.first!r}; the file given holds {counted(held, 'row')} "
                                 f"from it to {info.last!r}, where the training file held "
                                 f"{info.split.n}: a row left out or added between them puts "
                                 f"the rows after it out of phase; give the rows from "
                                 f"{info.first!r} to {info.last!r} as in training")
            return n - start
        why = f"the file given does not hold: give the series from {info.first!r} on"
        if days:  # the training dates are not a day apart: their phase counts rows, not days
            why = (f"the file given does not hold; its training dates skip days (first from "
                   f"{info.gap} of the training file), so its phase counts rows from that "
                   f"time, not days: give the series from {info.first!r} on")
        if series.left_out:  # the rows before a missing value the rule does not fill
            why = (f"the rows read do not hold (the rows before line {int(series.lines[0])} "
                   f"are left out, up to a missing value --missing does not fill): fill it "
                   f"with --missing interpolate")
        raise ValueError(f"series {name!r} is seasonally adjusted in the phase of its first "
                         f"training row, time {info.first!r}, which {why}")

    def series_info(self, name: str, series: TimeSeries) -> SeriesInfo:
        """What the model keeps of series ``name`` if it was in training, else what it fits on
        all of ``series`` (its "training part"): season, seasonal indices, scale (no AR)."""
        if name in self.info:
            return self.info[name]
        n = len(series)
        return fit_series_info(name, series, Split(n, n, 0, 0), self.config)

    # -- checkpoints --------------------------------------------------------------------------
    def save(self, path, extra: dict | None = None) -> None:
        norm = {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in self.norm.items()}
        meta = {"kind": KIND, "model": self.net.config.to_json(), "forecast": self.config.to_json(),
                "fit": self.fit_config.to_json(), "norm": norm,
                "series": {n: i.to_json() for n, i in self.info.items()}, **self.meta,
                **(extra or {})}
        save_checkpoint(path, meta, param_arrays(self.net))

    @classmethod
    def load(cls, path) -> "GlobalForecaster":
        meta, arrays = load_checkpoint(path, expect_kind=KIND)
        try:
            config = GlobalConfig.from_json(meta["forecast"])
            fit_config = FitConfig.from_json(meta["fit"])
            n = meta["norm"]
            norm = {"x_mean": float(n["x_mean"]), "x_std": float(n["x_std"]),
                    "y_mean": np.asarray(n["y_mean"], np.float64),
                    "y_std": np.asarray(n["y_std"], np.float64)}
            if norm["y_mean"].shape != (config.horizon,) or norm["y_std"].shape != (config.horizon,):
                raise ValueError(f"the output scaling does not have {config.horizon} steps")
            info = {str(k): SeriesInfo.from_json(v) for k, v in meta["series"].items()}
            L, K = config.lookback, config.horizon
            for name, i in info.items():
                if (i.ar is None) != (config.base == "none") or (
                        i.ar is not None and i.ar.shape != (L + 1, K)):
                    raise ValueError(f"series {name!r}: base {config.base!r} needs a linear AR "
                                     f"of shape ({L + 1}, {K}) per series, and none without")
            net_config = SequenceNetConfig.from_json(meta["model"])
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(f"checkpoint {path} has a broken description: {exc}") from None
        net = SequenceNet(net_config, rng=np.random.default_rng(0))
        restore_params(net, arrays, path)
        net.eval()
        rest = {k: meta[k] for k in ("summary", "train_windows", "source", "id", "time", "value")
                if k in meta}
        return cls(net, config, info, norm, fit_config, rest)


def split_series(name: str, series: TimeSeries, config: GlobalConfig) -> Split:
    """The chronological split of one series of a panel; an error naming the series when it
    is too short (for one training window, or for a validation/test part of K steps)."""
    check_series_range(series)
    try:
        return chronological_split(len(series), config.lookback, config.horizon,
                                   config.val_fraction, config.test_fraction)
    except WindowError as exc:
        raise WindowError(f"series {name!r}: {exc}") from None
