"""The LSTM forecaster: windows -> SequenceNet (last-state readout, K outputs) -> forecasts.

Dimensions: N time steps, D input columns (the target first), L lookback, K horizon,
n windows.

:meth:`Forecaster.train` does, in order: the chronological split (train / validation /
test, see :mod:`.windows`), the season (given, or detected on the training part), the
training windows and the :class:`WindowScaler` fitted on them alone, then minibatch Adam on
the mean squared error of the K scaled outputs, keeping the epoch with the lowest validation
loss. Output is direct multi-step: one forward pass gives all K steps ahead.

**Hybrid** (``base`` other than ``"none"``): the network learns only the residual of a
statistical base, standardised per step ahead. The base is a linear autoregression fitted by
ridge least squares (penalty by generalised cross-validation, :func:`.baselines.ridge_gcv`)
in the scaler's coordinates (after the log, the anchor and standardisation) on the training
windows (``"ar"``), exponential smoothing over each window (``"ets"``,
:mod:`.smoothing`, fitted on the training windows in the transform's units), or the naive
(``"naive"``) or seasonal-naive forecast (``"snaive"``), which fit nothing; :mod:`.select`
picks it on validation. The forecast is

    ŷ = base(x) + mix · res_std ⊙ net(x)        (scaled coordinates, then decoded)

where ``mix`` in {0, 0.25, 0.5, 0.75, 1} is picked on the validation MAE after early
stopping (the smallest weight with half the best validation gain, see ``_pick_mix``).
``mix = 0`` is the base alone, so on the validation part the hybrid is never worse than the
statistical model it stands on; the network adds only what the validation part confirms.

With a validation part, the forecaster also keeps prediction intervals (:mod:`.intervals`)
fitted on its validation errors and, for the hybrid, on its base's out-of-sample errors on
every training window as well (the AR's leave-one-out forecasts, :func:`.baselines.ridge_loo`;
exponential smoothing's and a trivial base's plain forecasts): the whole history's errors, so a calibration set of 9 to
99 validation windows gains the training part's 50 to 500, with their calmer and rougher
stretches. Each error is taken relative to its window's mean absolute one-step change, so
the intervals follow the recent roughness of the series (local scale, :mod:`.intervals`).

**Quantile heads** (``quantiles=(0.1, 0.9)``, say): the network has Q·K more outputs, trained
with the pinball loss (:func:`~lstmlab.training.losses.pinball_loss`) beside the mean squared
error of the point outputs, so each learns the τ-quantile of the same target (for the hybrid,
of the base's standardised residual, added to the base at full weight). The scaler's steps are
monotone, so quantiles decode like forecasts; the Q decoded values of a window and step are
sorted, so quantiles never cross (monotone rearrangement, Chernozhukov, Fernández-Val &
Galichon 2010).

A checkpoint (``kind = "forecaster"``) holds the network, the fitted scaler, the column
names, the season, the split and the settings, so ``forecast predict`` needs nothing else.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

import numpy as np

from .._argtypes import repeated
from .._config import JsonConfig
from .._checks import positive_int
from .._scaling import range_problem
from .._words import counted
from ..layers.seqnet import SequenceNet, SequenceNetConfig
from ..training.checkpoint import (CheckpointError, load_checkpoint, param_arrays, restore_params,
                                   save_checkpoint)
from ..training.losses import mse_loss, pinball_loss
from ..training.supervised import FitConfig, fit_sequence_net
from .baselines import LinearAR, mae, persistence, ridge_gcv, ridge_loo
from .data import (WEEK, TimeSeries, check_time_series, daily, known_season,
                   time_gap_problem)
from .intervals import Intervals
from .smoothing import WindowSmoothing
from .windows import ANCHORS, Split, WindowScaler, chronological_split, make_windows

KIND = "forecaster"
TRANSFORMS = ("none", "log")
BASES = ("none", "ar", "ets", "naive", "snaive")  # "none": the network alone
BASE_NAMES = {"ar": "the linear AR", "ets": "exponential smoothing over the window",
              "naive": "the naive forecast", "snaive": "the seasonal naive forecast"}
MIXES = (0.0, 0.25, 0.5, 0.75, 1.0)  # the hybrid's candidate network weights


@dataclass(frozen=True)
class ForecastConfig(JsonConfig):
    """What to forecast from what (stored in checkpoints)."""

    lookback: int = 24  # L, past steps the model reads
    horizon: int = 12  # K, steps ahead it forecasts at once (direct multi-step)
    transform: str = "none"  # "none" or "log" (of the target)
    anchor: str = "last"  # residual over: "last" value, "season" (seasonal naive) or "none"
    val_fraction: float = 0.15  # share of the series (after the training part) for validation
    test_fraction: float = 0.2  # share at the end for the test
    season: int | None = None  # seasonal-naive season; None: detect on the training part
    base: str = "none"  # the network learns the residual of "ar", "ets", "naive" or "snaive"
    quantiles: tuple = ()  # levels in (0, 1) with their own outputs (pinball loss), increasing
    nonnegative: bool = False  # a target never below 0: forecasts and bounds clipped at 0

    def __post_init__(self):
        try:
            q = tuple(float(v) for v in self.quantiles)
        except (TypeError, ValueError):
            raise ValueError(f"quantiles must be numbers, got {self.quantiles!r}") from None
        twice = repeated(q)
        if twice:
            raise ValueError(f"quantiles must not repeat: {', '.join(f'{v:g}' for v in twice)} "
                             f"given more than once, got {list(q)}")
        if not all(0 < v < 1 for v in q) or list(q) != sorted(set(q)):
            raise ValueError(f"quantiles must be increasing levels strictly between 0 and 1, "
                             f"got {list(q)}")
        object.__setattr__(self, "quantiles", q)
        check_window_settings(self)
        if self.anchor not in ANCHORS:
            raise ValueError(f"anchor must be one of {ANCHORS}, got {self.anchor!r}")
        if self.base not in BASES:
            raise ValueError(f"base must be one of {BASES}, got {self.base!r}")



def pick_mix(errors: dict) -> float:
    """The hybrid's network weight from ``errors`` (weight in :data:`MIXES` -> validation
    MAE): the smallest weight whose MAE reaches half of the best reduction any weight
    achieves over the base alone (weight 0).

    The validation part also chose the network's epoch, so the gain it shows for the network
    is optimistic; half of it is the hedge. On the tuning series (airline, sunspots) the
    weight with the lowest validation MAE is above the test's best in most runs
    (docs/forecasting-results.md, "The hybrid's weight")."""
    gain = errors[0.0] - min(errors.values())
    return min(w for w in MIXES if errors[0.0] - errors[w] >= gain / 2)


def check_window_settings(config) -> None:
    """The checks a forecaster's settings share: positive ``lookback`` and ``horizon``, a
    known ``transform``, and ``season`` None or positive."""
    positive_int(config.lookback, "lookback")
    positive_int(config.horizon, "horizon")
    if config.transform not in TRANSFORMS:
        raise ValueError(f"transform must be one of {TRANSFORMS}, got {config.transform!r}")
    if config.season is not None:
        positive_int(config.season, "season")


def check_series_range(series: TimeSeries) -> None:
    """A ``ValueError`` naming the column and line when a column of ``series`` is too large or
    varies too little to be standardised and scored in float64 (see ``lstmlab._scaling``)."""
    lines = series.lines

    def where(i: int) -> str:
        return f"line {int(lines[i])}" if lines is not None else f"row {i}"

    for j, name in enumerate(series.columns):
        problem = range_problem(series.values[:, j], name, where)
        if problem:
            raise ValueError(f"{series.source}: {problem}")


def check_time_gaps(series: TimeSeries, rows: int | None = None) -> None:
    """A ``ValueError`` naming the first gap in the time labels of ``series`` (a month
    missing from monthly data, a day from daily dates: :func:`.data.time_gap_problem`)
    among its last ``rows`` (None: all of them), those a forecast reads, as the readers
    name one; a series made in Python rather than read is checked so too."""
    if series.time:
        problem = time_gap_problem(series.time, series.lines, rows)
        if problem:
            raise ValueError(f"{series.source}, {problem}")


def fingerprint(values: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(values, np.float64).tobytes()).hexdigest()[:16]


def base_forecast(kind: str, X: np.ndarray, horizon: int, season: int | None) -> np.ndarray:
    """The trivial bases from raw windows ``X (n, L, D)``: ``"naive"`` repeats the last value,
    ``"snaive"`` takes the same phase one season back; ``(n, K)`` in the series' units."""
    if kind == "naive":
        return persistence(X, horizon)
    L = X.shape[1]
    if not season or season > L:
        raise ValueError(f"a seasonal-naive base needs a season no longer than the lookback "
                         f"{L}, got {season}; pass --season M or another --base")
    k = np.arange(horizon)
    back = season * (k // season + 1)  # (K,) steps back from t+k to the same phase
    return X[:, L + k - back, 0]


@dataclass
class HybridBase:
    """The hybrid's statistical part — a ridge linear AR in scaled coordinates (``"ar"``),
    exponential smoothing over the window (``"ets"``), the naive (``"naive"``) or the
    seasonal-naive forecast (``"snaive"``) — and the network's weight."""

    kind: str  # "ar", "ets", "naive" or "snaive"
    coef: np.ndarray | None  # (L'·D + 1, K) ridge weights on the encoded window, intercept last
    res_std: np.ndarray  # (K,) standard deviation of the base's training residuals per step
    mix: float = 1.0  # weight of the network's residual forecast (picked on validation)
    ridge: float = 0.0  # the AR's ridge penalty λ chosen by generalised cross-validation
    season: int | None = None  # m of the seasonal-naive base
    smoothing: WindowSmoothing | None = None  # the "ets" base's fitted variant

    @classmethod
    def fit(cls, kind: str, x: np.ndarray, y: np.ndarray, X: np.ndarray,
            scaler: WindowScaler) -> "HybridBase":
        """``x (L', n, D)`` encoded training windows of the raw windows ``X (n, L, D)``,
        ``y (n, K)`` scaled targets."""
        if kind not in BASES[1:]:
            raise ValueError(f"base must be one of {BASES[1:]}, got {kind!r}")
        if kind == "snaive" and not scaler.season:
            raise ValueError("base 'snaive' needs a season (none was given or detected); pass "
                             "--season M or another --base")
        coef, lam, smoothing = None, 0.0, None
        if kind == "ar":
            ar, lam = ridge_gcv(x.transpose(1, 0, 2), y)
            coef = ar.coef
        if kind == "ets":
            smoothing = WindowSmoothing.fit(X, scaler.decode(X, y), scaler.season, scaler.log)
        base = cls(kind, coef, np.ones(y.shape[1]), ridge=lam, season=scaler.season,
                   smoothing=smoothing)
        std = (y - base.predict(x, X, scaler)).std(axis=0)  # (K,)
        base.res_std = np.where(std > 0, std, 1.0)
        return base

    def loo(self, x: np.ndarray, X: np.ndarray, y: np.ndarray,
            scaler: WindowScaler) -> np.ndarray:
        """Out-of-sample forecasts ``(n, K)`` of the training windows the base was fitted on,
        scaled coordinates: the AR's leave-one-out forecasts; a trivial base fits nothing, so
        its forecasts are already out of sample, and exponential smoothing's at most four
        parameters from a grid make its own forecasts nearly so."""
        if self.kind == "ar":
            return ridge_loo(x.transpose(1, 0, 2), y, self.ridge)
        return self.predict(x, X, scaler)

    def predict(self, x: np.ndarray, X: np.ndarray, scaler: WindowScaler) -> np.ndarray:
        """The base's forecast ``(n, K)`` in scaled coordinates, from the encoded windows
        ``x (L', n, D)`` (the AR) or the raw ones ``X (n, L, D)`` (the other bases)."""
        K = len(self.res_std)
        if self.kind == "ar":
            ar = LinearAR()
            ar.coef = self.coef
            return ar.predict(x.transpose(1, 0, 2))
        if self.kind == "ets":
            return scaler.encode(X, self.smoothing.forecast(X, K))[1]
        return scaler.encode(X, base_forecast(self.kind, X, K, self.season))[1]

    def residual(self, x: np.ndarray, X: np.ndarray, y: np.ndarray,
                 scaler: WindowScaler) -> np.ndarray:
        """The network's target: the base's residual, standardised per step ahead ``(n, K)``."""
        return (y - self.predict(x, X, scaler)) / self.res_std

    def combine(self, x: np.ndarray, X: np.ndarray, out: np.ndarray, scaler: WindowScaler,
                mix: float | None = None) -> np.ndarray:
        """Base forecast plus the network's (weighted) residual forecast, scaled coordinates."""
        K = out.shape[1]
        w = self.mix if mix is None else mix
        return self.predict(x, X, scaler)[:, :K] + w * out * self.res_std[:K]

    def describe(self) -> str:
        if self.kind == "ets":
            return f"{BASE_NAMES['ets']} ({self.smoothing.describe()})"
        return BASE_NAMES[self.kind] + (f" (m={self.season})" if self.kind == "snaive" else "")

    def to_json(self) -> dict:
        return {"kind": self.kind, "coef": None if self.coef is None else self.coef.tolist(),
                "res_std": self.res_std.tolist(), "mix": self.mix, "ridge": self.ridge,
                "season": self.season,
                "smoothing": None if self.smoothing is None else self.smoothing.to_json()}

    @classmethod
    def from_json(cls, d: dict) -> "HybridBase":
        kind = str(d.get("kind", "ar"))
        if kind not in BASES[1:]:
            raise ValueError(f"unknown base {kind!r}")
        coef = None if d.get("coef") is None else np.asarray(d["coef"], np.float64)
        if (coef is None) != (kind != "ar"):
            raise ValueError(f"base {kind!r} with{'out' if coef is None else ''} coefficients")
        season = d.get("season")
        if kind == "snaive" and not (isinstance(season, int) and season >= 1):
            raise ValueError(f"a seasonal-naive base needs a season, got {season!r}")
        if (d.get("smoothing") is None) != (kind != "ets"):
            raise ValueError(f"base {kind!r} with{'out' if kind == 'ets' else ''} exponential "
                             f"smoothing settings")
        smoothing = None if kind != "ets" else WindowSmoothing.from_json(d["smoothing"])
        return cls(kind, coef, np.asarray(d["res_std"], np.float64), float(d["mix"]),
                   float(d.get("ridge", 0.0)), season, smoothing)


def check_nonnegative(series: TimeSeries, what: str, advice: str = "") -> None:
    """Refuse ``series`` for ``what`` (forecasts clipped at 0) when its target goes below 0,
    naming the first lowest value and its line; ``advice`` ends the message."""
    if (series.target < 0).any():
        i = int(series.target.argmin())
        line = series.lines[i] if series.lines is not None else i + 1
        raise ValueError(f"{what} needs a target that is never below 0, but "
                         f"{series.columns[0]!r} is {series.target[i]:g} at line {line}{advice}")


class Forecaster:
    """A trained network with everything needed to turn raw windows into forecasts."""

    def __init__(self, net: SequenceNet, scaler: WindowScaler, config: ForecastConfig,
                 columns: list[str], season: int | None, split: Split | None = None,
                 fit_config: FitConfig | None = None, meta: dict | None = None,
                 hybrid: HybridBase | None = None):
        self.net, self.scaler, self.config = net, scaler, config
        self.columns, self.season, self.split = list(columns), season, split
        self.fit_config = fit_config or FitConfig()
        self.meta = dict(meta or {})  # data description, training summary
        self.hybrid = hybrid  # the statistical part when config.base == "ar"
        self.intervals: Intervals | None = None  # from the validation errors, when there are any

    # -- training ---------------------------------------------------------------------------
    @classmethod
    def train(cls, series: TimeSeries, config: ForecastConfig, rng: np.random.Generator,
              hidden_size: int = 32, num_layers: int = 1, cell: str = "lstm",
              dropout: float = 0.0, dtype: str = "float32", fit_config: FitConfig | None = None,
              on_epoch=None, should_stop=None) -> "Forecaster":
        """Fit on ``series`` (see the module docstring); ``on_epoch`` and ``should_stop`` are
        passed to :func:`~lstmlab.training.supervised.fit_sequence_net`."""
        check_time_series(series)
        if config.nonnegative:
            check_nonnegative(series, "nonnegative=True")
        fit_config = fit_config or FitConfig()
        L, K = config.lookback, config.horizon
        split = chronological_split(len(series), L, K, config.val_fraction, config.test_fraction)
        check_series_range(series)
        check_time_gaps(series)
        y_train = series.target[: split.train]
        season = known_season(config.season, series, split.train)
        X, Y = make_windows(series.values, L, K, split.origins("train", L, K))
        scaler = WindowScaler(log=config.transform == "log", anchor=config.anchor,
                              season=season).fit(X, Y)
        Q = len(config.quantiles)
        net_config = SequenceNetConfig(input_size=series.values.shape[1], output_size=K * (1 + Q),
                                       hidden_size=hidden_size, num_layers=num_layers, cell=cell,
                                       readout="last", dropout=dropout, dtype=dtype)
        net = SequenceNet(net_config, rng=rng)
        x, y = scaler.encode(X, Y)
        hybrid = None if config.base == "none" else HybridBase.fit(config.base, x, y, X, scaler)
        target = y if hybrid is None else hybrid.residual(x, X, y, scaler)
        val, Xv, Yv = None, None, None
        if split.val:
            Xv, Yv = make_windows(series.values, L, K, split.origins("val", L, K))
            xv, yv = scaler.encode(Xv, Yv)
            tv = yv if hybrid is None else hybrid.residual(xv, Xv, yv, scaler)
            val = (xv.astype(net.dtype), tv.astype(net.dtype), None)
        loss = mse_loss if not Q else point_and_quantile_loss(K, config.quantiles)
        summary = fit_sequence_net(net, x.astype(net.dtype), target.astype(net.dtype), loss,
                                   fit_config, rng, val=val, on_epoch=on_epoch,
                                   should_stop=should_stop)
        meta = {"data": {"source": series.source, "n": len(series),
                         "fingerprint": fingerprint(series.values), "notes": series.notes},
                "summary": summary, "train_windows": int(len(X)),
                "constant_target": bool(np.ptp(y_train) == 0)}
        fc = cls(net, scaler, config, series.columns, season, split, fit_config, meta, hybrid)
        if hybrid is not None and Xv is not None:
            fc._pick_mix(Xv, Yv)
        if Xv is not None and len(Xv):
            truth, pred, windows = Yv, fc.predict_windows(Xv), Xv
            if hybrid is not None:  # and the base's out-of-sample errors on the training windows
                truth, windows = np.vstack([Y, Yv]), np.vstack([X, Xv])
                pred = np.vstack([scaler.decode(X, hybrid.loo(x, X, y, scaler)), pred])
            fc.intervals = Intervals.fit(truth, pred, config.transform == "log", windows=windows)
            fc.intervals.lower = 0.0 if config.nonnegative else None
        return fc

    def _pick_mix(self, Xv: np.ndarray, Yv: np.ndarray) -> None:
        """The hybrid's network weight on the validation windows (see :func:`pick_mix`)."""
        errors = {}
        for w in MIXES:
            self.hybrid.mix = w
            errors[w] = mae(Yv, self.predict_windows(Xv))
        self.hybrid.mix = pick_mix(errors)
        self.meta["mix_val_mae"] = {str(w): e for w, e in errors.items()}

    # -- forecasting ------------------------------------------------------------------------
    def predict_windows(self, X: np.ndarray, horizon: int | None = None) -> np.ndarray:
        """Raw windows ``X (n, L, D)`` -> forecasts ``(n, K')`` in the series' units."""
        K = self._horizon(horizon)
        x64, out = self._outputs(X)
        out = out[:, : self.config.horizon]  # (n, K) the point outputs
        if self.hybrid is not None:
            out = self.hybrid.combine(x64, X, out, self.scaler)
        return self.clipped(self.scaler.decode(X, out)[:, :K])

    def clipped(self, values: np.ndarray) -> np.ndarray:
        """``values`` at 0 where they go below it, for a model of a target that never does
        (``config.nonnegative``: counts, sales); as they are otherwise. The report applies it
        to every method's forecasts, so the baselines are compared on the same terms."""
        return np.maximum(values, 0.0) if self.config.nonnegative else values

    def base_forecast(self, X: np.ndarray) -> np.ndarray:
        """The hybrid's base alone (weight 0 on the network) for raw windows ``X (n, L, D)``:
        ``(n, K)`` in the series' units."""
        if self.hybrid is None:
            raise ValueError("this model is not a hybrid: it has no base")
        x64, _ = self.scaler.encode(X)
        return self.scaler.decode(X, self.hybrid.predict(x64, X, self.scaler))

    def predict_quantiles(self, X: np.ndarray, horizon: int | None = None) -> np.ndarray:
        """Raw windows ``X (n, L, D)`` -> ``(n, Q, K')``: the quantile heads' forecasts of the
        levels ``config.quantiles``, in the series' units, sorted along Q. A model whose
        training part has one value throughout saw no spread to learn quantiles of: each
        level is its point forecast (a band of zero width, as its conformal intervals)."""
        K, Kf, Q = self._horizon(horizon), self.config.horizon, len(self.config.quantiles)
        if not Q:
            raise ValueError("this model has no quantile outputs; train it with quantiles")
        if self.meta.get("constant_target"):
            return np.repeat(self.predict_windows(X, K)[:, None, :], Q, axis=1)
        x64, out = self._outputs(X)
        q = out[:, Kf:].reshape(len(out), Q, Kf)  # (n, Q, K) scaled coordinates
        if self.hybrid is not None:  # quantiles of the standardised residual, at full weight
            q = self.hybrid.predict(x64, X, self.scaler)[:, None, :] + q * self.hybrid.res_std
        dec = np.stack([self.scaler.decode(X, q[:, j]) for j in range(Q)], axis=1)
        return self.clipped(np.sort(dec, axis=1)[:, :, :K])

    def _horizon(self, horizon: int | None) -> int:
        """The steps asked for: a positive integer up to the trained horizon (None: all)."""
        K = self.config.horizon if horizon is None else positive_int(horizon, "horizon")
        if K > self.config.horizon:
            raise ValueError(f"this model forecasts {counted(self.config.horizon, 'step')} "
                             f"ahead at once (direct multi-step output); --horizon must be "
                             f"1..{self.config.horizon}, got {K}; retrain with --horizon {K} "
                             f"for more")
        return K

    def _outputs(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(x64 (L', n, D), out (n, K·(1+Q)))``: encoded windows and the network's outputs."""
        L, D = self.config.lookback, len(self.columns)
        if X.ndim != 3 or X.shape[1:] != (L, D):
            raise ValueError(f"windows must have shape (n, {L}, {D}), got {X.shape}")
        if np.isnan(X).any():  # a missing value, not a value too far from the training data
            i, t, j = np.argwhere(np.isnan(X))[0]
            raise ValueError(f"column {self.columns[j]!r} of window {i} has a missing value "
                             f"(NaN) at step {t + 1} of {L}; fill it (read_series(..., "
                             f"missing='ffill' or 'interpolate')) before forecasting")
        x64, _ = self.scaler.encode(X)
        with np.errstate(over="ignore"):  # an overflow to inf is caught just below
            x = x64.astype(self.net.dtype)  # (L', n, D)
        if not np.isfinite(x).all():
            _, i, j = np.argwhere(~np.isfinite(x))[0]
            raise ValueError(f"column {self.columns[j]!r} of window {i} is too far from the "
                             f"training data to scale: it falls outside {self.net.dtype} after "
                             f"standardisation with the training mean and standard deviation")
        return x64, self.net.predict(x).astype(np.float64)

    def forecast_next(self, series: TimeSeries, horizon: int | None = None) -> np.ndarray:
        """The K' steps after the end of ``series`` (its last L rows are the input)."""
        check_time_series(series)
        L = self.config.lookback
        if len(series) < L:
            raise ValueError(f"the series has {counted(len(series), 'step')}; this model reads "
                             f"the last "
                             f"{L} (its lookback), so it needs at least {L}")
        check_time_gaps(series, L)
        X = series.values[-L:][None]  # (1, L, D)
        return self.predict_windows(X, horizon)[0]

    # -- checkpoints ------------------------------------------------------------------------
    def save(self, path, extra: dict | None = None) -> None:
        meta = {"kind": KIND, "model": self.net.config.to_json(),
                "forecast": self.config.to_json(), "fit": self.fit_config.to_json(),
                "scaler": self.scaler.to_json(), "columns": self.columns, "season": self.season,
                "split": None if self.split is None else self.split.to_json(),
                "hybrid": None if self.hybrid is None else self.hybrid.to_json(),
                "intervals": None if self.intervals is None else self.intervals.to_json(),
                **self.meta,
                **(extra or {})}
        arrays = param_arrays(self.net)
        save_checkpoint(path, meta, arrays)

    @classmethod
    def load(cls, path) -> "Forecaster":
        meta, arrays = load_checkpoint(path, expect_kind=KIND)
        try:
            net_config = SequenceNetConfig.from_json(meta["model"])
            config = ForecastConfig.from_json(meta["forecast"])
            fit_config = FitConfig.from_json(meta["fit"])
            scaler = WindowScaler.from_json(meta["scaler"])
            # a season of one step is none (see known_season); the fitted scaler and base
            # keep the season they were fitted with
            columns, season = list(meta["columns"]), meta["season"]
            season = None if season == 1 else season
            split = None if meta.get("split") is None else Split(**meta["split"])
            hybrid = None if meta.get("hybrid") is None else HybridBase.from_json(meta["hybrid"])
            intervals = (None if meta.get("intervals") is None
                         else Intervals.from_json(meta["intervals"]))
            K = config.horizon
            if hybrid is not None and (hybrid.res_std.shape != (K,) or hybrid.coef is not None
                                       and (hybrid.coef.ndim != 2 or hybrid.coef.shape[1] != K)):
                raise ValueError(f"the hybrid's base does not have {K} outputs")
            if intervals is not None and any(w.shape != (K,) for w in intervals.width.values()):
                raise ValueError(f"the interval widths are not {K} per level")
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(f"checkpoint {path} has a broken description: {exc}") from None
        net = SequenceNet(net_config, rng=np.random.default_rng(0))
        restore_params(net, arrays, path)
        net.eval()
        if (hybrid is None) != (config.base == "none") or hybrid and hybrid.kind != config.base:
            raise CheckpointError(f"checkpoint {path} has a broken description: base "
                                  f"{config.base!r} with{'out' if hybrid is None else ''} a hybrid part")
        rest = {k: meta[k] for k in ("data", "summary", "train_windows", "mix_val_mae", "choice",
                                     "constant_target")
                if k in meta}
        fc = cls(net, scaler, config, columns, season, split, fit_config, rest, hybrid)
        fc.intervals = intervals
        return fc


def point_and_quantile_loss(K: int, quantiles):
    """``loss(out, target)`` for outputs ``(n, K·(1+Q))``: the mean squared error of the first
    K (the point forecast) plus the mean pinball loss of the Q·K quantile outputs, each
    against the same target ``(n, K)``."""
    tau = np.asarray(quantiles, np.float64)[:, None]  # (Q, 1)

    def loss(out, target):
        n, Q = len(out), len(tau)
        point, dpoint = mse_loss(out[:, :K], target)
        q = out[:, K:].reshape(n, Q, K)
        pin, dq = pinball_loss(q, np.broadcast_to(target[:, None, :], q.shape), tau)
        return point + pin, np.concatenate([dpoint, dq.reshape(n, Q * K)], axis=1)

    return loss


SPACING_LABELS = 3  # the last labels whose one step a whole-number time column continues


def _is_yyyymmdd(label: str) -> bool:
    """Eight digits that read as a date, ``20210131``."""
    t = label.strip()
    return bool(re.fullmatch(r"\d{8}", t)) and 1 <= int(t[4:6]) <= 12 and 1 <= int(t[6:]) <= 31


def _month(label: str) -> int | None:
    """``YYYY-MM`` or ``YYYYMM`` as a count of months, else None."""
    m = re.fullmatch(r"(\d{4})-?(\d{2})", label.strip())
    return int(m.group(1)) * 12 + int(m.group(2)) - 1 if m and 1 <= int(m.group(2)) <= 12 else None


def future_labels(labels: list[str] | None, horizon: int) -> list[str]:
    """Time labels for the K steps after ``labels``: continued for ``YYYY-MM`` months (and
    ``YYYYMM``, when the last two are a month apart), ``YYYY-Qn`` or ``YYYYQn`` quarters (in
    the spelling of the last label) and equally spaced whole numbers (years; the last three
    labels share one step); otherwise ``+1, +2, ...``. Dates written as eight digits,
    ``20210707``, are not continued as numbers: their steps change at month ends, and
    20210707 + 77 is no date; nor are months written ``202112``, whose next is 202201.
    ISO dates whose last week (:data:`.data.WEEK` labels) is a day apart throughout
    (business days would skip a weekend there) are continued by days, whatever the spacing of
    older rows: the next dates follow the last ones."""
    steps = [f"+{k}" for k in range(1, horizon + 1)]
    if not labels:
        return steps
    last = labels[-1]
    months = [_month(t) for t in labels[-2:]]
    dash = "-" in last
    if months[-1] is not None and (dash or (len(months) == 2 and months[0] is not None
                                            and months[1] - months[0] == 1)):
        t0 = months[-1]
        return [f"{(t0 + k) // 12:04d}{'-' if dash else ''}{(t0 + k) % 12 + 1:02d}"
                for k in range(1, horizon + 1)]
    tail = labels[-SPACING_LABELS:]
    if len(tail) >= 2 and not all(_is_yyyymmdd(t) for t in tail):
        try:
            v = [int(t) for t in tail]
        except ValueError:
            v = []
        spacing = {b - a for a, b in zip(v, v[1:])}
        if len(spacing) == 1:
            step = spacing.pop()
            return [str(v[-1] + step * k) for k in range(1, horizon + 1)]
    q = re.fullmatch(r"(\d{4})(-?)Q([1-4])", last)
    if q:
        t0, dash = int(q.group(1)) * 4 + int(q.group(3)) - 1, q.group(2)
        return [f"{(t0 + k) // 4}{dash}Q{(t0 + k) % 4 + 1}" for k in range(1, horizon + 1)]
    if len(labels) >= WEEK and daily(labels[-WEEK:]):
        day = np.datetime64(last)
        return [str(day + k) for k in range(1, horizon + 1)]
    return steps
