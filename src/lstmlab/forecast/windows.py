"""Windows, the chronological split and the scaling that maps windows to network inputs.

Dimensions: N time steps, D input columns (column 0 is the target), L lookback (steps the
model reads), K horizon (steps it forecasts), n windows.

A window with *origin* ``t`` reads ``values[t-L : t]`` and forecasts the target at
``t, t+1, ..., t+K-1``: the model outputs all K values at once (**direct multi-step**
output, one head unit per step ahead), never feeding its own forecasts back in.

The split is chronological: the first part of the series trains, the next validates (early
stopping, choice of epoch), the last tests. A window belongs to the part that holds *all* of
its K targets; its inputs may reach back into an earlier part, because at forecast time the
past is known. Nothing fitted — the scaler, the season, the baselines' coefficients —
sees a value after the training part.

:class:`WindowScaler` turns raw windows into what the network reads and predicts:

1. optional ``log``: the target column ``y -> log y`` (multiplicative growth and seasonality
   become additive; needs y > 0);
2. an ``anchor`` subtracted from the window's target column and from its K targets, so the
   network predicts a residual over a baseline. ``"last"``: the window's last observed value,
   so the network predicts the change over persistence, ``y_{t+k} - y_{t-1}``;
   ``"season"``: the targets relative to the seasonal-naive forecast ``y_{t+k-m}`` (m the
   season) and the inputs the seasonal differences ``y_t - y_{t-m}`` of the last ``L - m``
   steps (so L > m): the network continues the seasonally differenced series (with ``log``,
   the year-on-year growth of the classical airline model); ``"none"``: levels. Either anchor keeps inputs and outputs in the range the training part spanned
   even when the level of the series drifts beyond it;
3. standardise: inputs per column, outputs per step ahead, with means and standard deviations
   of the training windows only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._checks import positive_int
from .._scaling import mean_std
from .._words import counted


class WindowError(ValueError):
    """A series too short for the requested windows, or an impossible split."""


def make_windows(values: np.ndarray, lookback: int, horizon: int, origins) -> tuple[np.ndarray, np.ndarray]:
    """``X (n, L, D)`` inputs and ``Y (n, K)`` targets for the given origins."""
    values = np.asarray(values, np.float64)
    if values.ndim == 1:
        values = values[:, None]
    origins = np.asarray(origins, np.int64)
    L, K = lookback, horizon
    steps_in = origins[:, None] + np.arange(-L, 0)[None, :]  # (n, L)
    steps_out = origins[:, None] + np.arange(K)[None, :]  # (n, K)
    return values[steps_in], values[steps_out, 0]


@dataclass(frozen=True)
class Split:
    """Sizes of the chronological parts: ``[0, train) [train, train+val) [.., N)``."""

    n: int  # N, whole series
    train: int  # steps in the training part
    val: int  # steps in the validation part (may be 0)
    test: int  # steps in the test part (may be 0)

    def origins(self, part: str, lookback: int, horizon: int) -> np.ndarray:
        """Origins of the windows whose K targets all lie in ``part``."""
        start = {"train": lookback, "val": self.train, "test": self.train + self.val}[part]
        end = {"train": self.train, "val": self.train + self.val, "test": self.n}[part]
        return np.arange(start, end - horizon + 1)

    def to_json(self) -> dict:
        return {"n": self.n, "train": self.train, "val": self.val, "test": self.test}


def chronological_split(n: int, lookback: int, horizon: int, val_fraction: float = 0.15,
                        test_fraction: float = 0.2) -> Split:
    """Split ``n`` steps into train/validation/test parts, checking each can hold a window."""
    positive_int(lookback, "lookback")
    positive_int(horizon, "horizon")
    for name, f in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not 0 <= f < 1:
            raise ValueError(f"{name} must be in [0, 1), got {f!r}")
    if val_fraction + test_fraction >= 1:
        raise WindowError(f"the validation and test fractions ({val_fraction:g} + "
                          f"{test_fraction:g}) leave no training part; together they must stay "
                          f"below 1 (--val-fraction, --test-fraction)")
    L, K = lookback, horizon
    if n < L + K:
        raise WindowError(f"the series has {counted(n, 'step')}, shorter than lookback + "
                          f"horizon = "
                          f"{L} + {K} = {L + K}: not even one window fits; lower "
                          f"{'--lookback or ' if L > 1 else ''}--horizon, or use a longer "
                          f"series")
    n_test = int(round(n * test_fraction))
    n_val = int(round(n * val_fraction))
    n_train = n - n_val - n_test
    for part, size, flag, f in (("validation", n_val, "--val-fraction", val_fraction),
                                ("test", n_test, "--test-fraction", test_fraction)):
        if 0 < size < K:
            raise WindowError(f"the {part} part has {counted(size, 'step')} ({flag} {f:g} of "
                              f"{n}), fewer "
                              f"than the horizon {K}, so no window fits in it; raise {flag} to "
                              f"at least {K / n:.3g}, lower --horizon, or set {flag} 0")
    need = L + K
    if n_train < need:
        raise WindowError(f"the training part has {n_train} of the series' {n} steps, fewer "
                          f"than lookback + horizon = {need}: no training window fits; lower "
                          f"--lookback/--horizon or the validation/test fractions")
    return Split(n, n_train, n_val, n_test)


def _stats(a: np.ndarray, axis) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation (1 for a constant column; see ``lstmlab._scaling``)."""
    try:
        return mean_std(a, axis)
    except ValueError as exc:
        raise WindowError(f"scaling the training windows: {exc}") from None


ANCHORS = ("none", "last", "season")


@dataclass
class WindowScaler:
    """Raw windows <-> network inputs and outputs (see the module docstring).

    ``fit`` on training windows only; the fitted numbers go into checkpoints as JSON.
    """

    log: bool = False  # model log(y) of the target
    anchor: str = "last"  # "none", "last" or "season": what inputs/outputs are relative to
    season: int | None = None  # m, for anchor="season" (needs m <= lookback)
    x_mean: np.ndarray | None = None  # (D,)
    x_std: np.ndarray | None = None  # (D,)
    y_mean: np.ndarray | None = None  # (K,)
    y_std: np.ndarray | None = None  # (K,)

    def __post_init__(self):
        if self.anchor not in ANCHORS:
            raise ValueError(f"anchor must be one of {ANCHORS}, got {self.anchor!r}")
        if self.anchor == "season" and (self.season is None or self.season < 1):
            raise ValueError("anchor='season' needs a season (none was given or detected); "
                             "pass --season M or use --anchor last")

    def _check_positive(self, a: np.ndarray, what: str) -> None:
        if self.log and not np.all(a > 0):
            raise ValueError(f"the log transform needs a positive target, but {what} holds "
                             f"{float(np.min(a)):g}; use --transform none")

    def _anchors(self, z: np.ndarray, K: int) -> tuple[np.ndarray, np.ndarray]:
        """Input anchor ``(n, 1)`` and output anchor ``(n, K)`` from the (log) target ``z (n, L)``."""
        n, L = z.shape
        if self.anchor == "none":
            return np.zeros((n, 1)), np.zeros((n, K))
        last = z[:, -1:]  # (n, 1)
        if self.anchor == "last":
            return last, np.repeat(last, K, axis=1)
        m = self.season
        if m >= L:
            raise ValueError(f"anchor='season' needs a lookback longer than the season ({m}), "
                             f"got {L}")
        k = np.arange(K)
        back = m * ((k // m) + 1)  # (K,) steps back from t+k to the same phase
        return last, z[:, L + k - back]  # (n, K): the seasonal-naive forecast

    def _transform(self, X: np.ndarray, Y: np.ndarray | None, K: int):
        """Steps 1 and 2: log and anchors; new arrays plus the output anchor ``(n, K)``."""
        X = np.array(X, np.float64)  # (n, L, D) copy: never write into the caller's data
        self._check_positive(X[:, :, 0], "the input window")
        if self.log:
            X[:, :, 0] = np.log(X[:, :, 0])
        a_in, a_out = self._anchors(X[:, :, 0], K)
        if self.anchor == "season":
            # The network reads the seasonal differences z_t - z_{t-m} of the last L - m steps
            # (the series it is asked to continue); the other columns are cut to match.
            m = self.season
            if X.shape[1] <= m:
                raise ValueError(f"anchor='season' needs a lookback longer than the season "
                                 f"({m}), got {X.shape[1]}")
            diff = X[:, m:, 0] - X[:, :-m, 0]  # (n, L-m)
            X = X[:, m:].copy()
            X[:, :, 0] = diff
        else:
            X[:, :, 0] -= a_in
        if Y is not None:
            Y = np.array(Y, np.float64)  # (n, K)
            self._check_positive(Y, "the target")
            if self.log:
                Y = np.log(Y)
            Y -= a_out
        return X, Y, a_out

    def fit(self, X: np.ndarray, Y: np.ndarray) -> "WindowScaler":
        Xt, Yt, _ = self._transform(X, Y, Y.shape[1])
        self.x_mean, self.x_std = _stats(Xt.reshape(-1, Xt.shape[2]), axis=0)
        self.y_mean, self.y_std = _stats(Yt, axis=0)
        return self

    def _fitted(self) -> None:
        if self.x_mean is None:
            raise RuntimeError("WindowScaler is not fitted: call fit on the training windows")

    def encode(self, X: np.ndarray, Y: np.ndarray | None = None):
        """``X (n, L, D)`` -> network input ``(L, n, D)`` time-major; ``Y (n, K)`` -> ``(n, K)``."""
        self._fitted()
        K = len(self.y_mean) if Y is None else Y.shape[1]
        Xt, Yt, _ = self._transform(X, Y, K)
        x = ((Xt - self.x_mean) / self.x_std).transpose(1, 0, 2)  # (L, n, D)
        y = None if Yt is None else (Yt - self.y_mean[:K]) / self.y_std[:K]
        return np.ascontiguousarray(x), y

    def decode(self, X: np.ndarray, out: np.ndarray) -> np.ndarray:
        """Network output ``(n, K)`` for raw windows ``X`` -> forecasts in the series' units."""
        self._fitted()
        K = out.shape[1]
        _, _, a_out = self._transform(X, None, K)
        y = out * self.y_std[:K] + self.y_mean[:K] + a_out  # (n, K)
        return np.exp(y) if self.log else y

    def to_json(self) -> dict:
        self._fitted()
        return {"log": self.log, "anchor": self.anchor, "season": self.season,
                "x_mean": self.x_mean.tolist(), "x_std": self.x_std.tolist(),
                "y_mean": self.y_mean.tolist(), "y_std": self.y_std.tolist()}

    @classmethod
    def from_json(cls, d: dict) -> "WindowScaler":
        try:
            return cls(log=bool(d["log"]), anchor=str(d["anchor"]), season=d["season"],
                       **{k: np.asarray(d[k], np.float64)
                          for k in ("x_mean", "x_std", "y_mean", "y_std")})
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"broken scaler description in checkpoint: {exc!r}") from None
