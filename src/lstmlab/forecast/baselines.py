"""The baselines every forecast is judged against, and the error measures.

Dimensions: N time steps, n windows (forecast origins), L lookback, D input columns,
K horizon.

Baselines (each gives ``(n, K)`` forecasts for the same windows the network sees):

* **persistence**: every step ahead is the last observed value, ``ŷ_{t+k} = y_{t-1}``;
* **seasonal naive** with season m: the value one season earlier,
  ``ŷ_{t+k} = y_{t+k-m·⌈(k+1)/m⌉}`` (for k < m simply ``y_{t+k-m}``);
* **linear AR**: for each step ahead k, ``ŷ_{t+k} = w_k · window + b_k`` fitted by least
  squares on the training windows (direct multi-step, like the network; same lookback).
  :func:`ridge_gcv` is the same regression with a ridge penalty whose strength is chosen by
  generalised cross-validation on the training windows (Golub, Heath & Wahba 1979): the
  hybrid forecaster stands on it, because a long lookback on a short series otherwise fits
  noise.

Errors, averaged over all windows and all K steps ahead unless a step is chosen:
``MAE = mean|e|``, ``RMSE = sqrt(mean e²)``, and the mean absolute scaled error
``MASE = MAE / mean_t |y_t - y_{t-m}|`` whose denominator is the in-sample one-step error of
the (seasonal, m >= 1) naive forecast on the training part (Hyndman & Koehler 2006): MASE < 1
beats that naive method on average.
"""

from __future__ import annotations

import numpy as np


def persistence(X: np.ndarray, horizon: int) -> np.ndarray:
    """``X (n, L, D)`` raw windows -> ``(n, K)``: the last target value, repeated."""
    return np.repeat(X[:, -1, 0][:, None], horizon, axis=1)


def seasonal_naive(y: np.ndarray, origins: np.ndarray, horizon: int, season: int) -> np.ndarray:
    """``(n, K)`` forecasts from the target series ``y (N,)``, one season back."""
    k = np.arange(horizon)
    back = season * ((k // season) + 1)  # (K,) how far back each step ahead looks
    idx = np.asarray(origins)[:, None] + k[None, :] - back[None, :]  # (n, K)
    if idx.size and idx.min() < 0:
        raise ValueError(f"seasonal naive with season {season} needs {season} past values "
                         f"before the first origin {int(np.min(origins))}")
    return np.asarray(y, np.float64)[idx]


class LinearAR:
    """Direct multi-step linear autoregression on flattened windows, by least squares."""

    def __init__(self, ridge: float = 1e-8):
        self.ridge = ridge  # tiny Tikhonov term: a constant column (e.g. relative mode) stays solvable
        self.coef = None  # (L*D + 1, K), last row the intercept

    @staticmethod
    def _design(x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, np.float64).reshape(len(x), -1)  # (n, L*D)
        return np.hstack([x, np.ones((len(x), 1))])  # (n, L*D + 1)

    def fit(self, x: np.ndarray, Y: np.ndarray) -> "LinearAR":
        """Least squares with the penalty ``ridge·n·|w|²`` on the weights, the intercept
        free. With at least as many windows as weights, the normal equations are those of
        the windows and targets less their means (the intercept is the means'): the same
        fit, but a series at 1e9 that moves by units keeps its changes, which the normal
        equations of the raw values (entries near 1e18) round away. With fewer, the data
        leave the fit undetermined and the raw equations' solution stands."""
        A = self._design(x)
        Y = np.asarray(Y, np.float64)
        a_mean, y_mean = np.zeros(A.shape[1] - 1), np.zeros(Y.shape[1:])
        if len(A) >= A.shape[1]:
            a_mean, y_mean = A[:, :-1].mean(axis=0), Y.mean(axis=0)
            A[:, :-1] -= a_mean
        lam = self.ridge * np.eye(A.shape[1])
        lam[-1, -1] = 0.0  # no penalty on the intercept
        G, rhs = A.T @ A + lam * len(A), A.T @ (Y - y_mean)
        try:
            coef = np.linalg.solve(G, rhs)
        except np.linalg.LinAlgError:  # fewer windows than weights, values in the thousands:
            coef = np.linalg.lstsq(G, rhs, rcond=None)[0]  # the tiny term is lost; min-norm
        coef[-1] += y_mean - a_mean @ coef[:-1]
        self.coef = coef
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        if self.coef is None:
            raise RuntimeError("LinearAR is not fitted")
        return self._design(x) @ self.coef  # (n, K)


RIDGE_GRID = (0.0, *10.0 ** np.arange(-4.0, 1.01, 0.5))  # λ per window, see ridge_gcv


def _centred_svd(x: np.ndarray, Y: np.ndarray):
    """The flattened windows ``x`` and targets ``Y`` centred, and the SVD of the windows:
    ``(U, sv, Vt, a_mean, y_mean, Y)`` (the intercept is the means')."""
    A = LinearAR._design(x)[:, :-1]  # (n, F) without the intercept column
    Y = np.asarray(Y, np.float64)  # (n, K)
    a_mean, y_mean = A.mean(axis=0), Y.mean(axis=0)
    U, sv, Vt = np.linalg.svd(A - a_mean, full_matrices=False)
    return U, sv, Vt, a_mean, y_mean, Y


def _shrink(sv: np.ndarray, lam: float, n: int) -> np.ndarray:
    """How much of each singular direction the ridge fit ``λ·n·|w|²`` keeps (0..1)."""
    if lam:
        return sv ** 2 / (sv ** 2 + lam * n)
    return (sv > sv.max() * 1e-10).astype(float) if sv.size else sv


def ridge_gcv(x: np.ndarray, Y: np.ndarray) -> tuple[LinearAR, float]:
    """A :class:`LinearAR` fitted with the ridge penalty ``λ·n·|w|²`` (intercept free) whose
    ``λ`` in :data:`RIDGE_GRID` has the lowest generalised cross-validation score
    ``RSS / (1 - df/n)²`` summed over the K outputs (``df`` the effective number of weights);
    returns ``(model, λ)``. One SVD serves every λ."""
    U, sv, Vt, a_mean, y_mean, Y = _centred_svd(x, Y)
    n = len(Y)
    UtY = U.T @ (Y - y_mean)  # (r, K)
    best = (np.inf, 0.0)
    for lam in RIDGE_GRID:
        shrink = _shrink(sv, lam, n)
        rss = float(np.sum(np.square(Y - y_mean - U @ (shrink[:, None] * UtY))))
        df = float(shrink.sum()) + 1  # + the intercept
        if df < n and rss / (1 - df / n) ** 2 < best[0]:
            best = (rss / (1 - df / n) ** 2, lam)
    lam = best[1]
    inv = np.zeros_like(sv)
    keep = sv > sv.max() * 1e-10 if sv.size else sv > 0
    inv[keep] = sv[keep] / (sv[keep] ** 2 + lam * n)
    W = Vt.T @ (inv[:, None] * UtY)  # (F, K)
    model = LinearAR()
    model.coef = np.vstack([W, (y_mean - a_mean @ W)[None]])
    return model, lam


def ridge_loo(x: np.ndarray, Y: np.ndarray, lam: float) -> np.ndarray:
    """Leave-one-out forecasts ``(n, K)`` of the ridge fit of :func:`ridge_gcv` with penalty
    ``λ``: window i's forecast by the regression fitted on the other windows (same penalty
    ``λ·n·|w|²``), all from one fit through ``y_i − e_i / (1 − h_ii)`` with ``h_ii`` the
    leverage of the linear smoother (Allen 1974)."""
    U, sv, _, _, y_mean, Y = _centred_svd(x, Y)
    n = len(Y)
    shrink = _shrink(sv, lam, n)
    fit = y_mean + U @ (shrink[:, None] * (U.T @ (Y - y_mean)))  # (n, K)
    h = 1.0 / n + np.sum(U ** 2 * shrink, axis=1)  # (n,) the intercept's 1/n included
    return Y - (Y - fit) / np.maximum(1 - h, 1e-12)[:, None]


# -- errors ---------------------------------------------------------------------------------

def mae(y: np.ndarray, yhat: np.ndarray) -> float:
    """Mean absolute error of the forecasts ``yhat`` against the truth ``y`` (same shape)."""
    return float(np.mean(np.abs(np.asarray(yhat) - np.asarray(y))))


def rmse(y: np.ndarray, yhat: np.ndarray) -> float:
    """Root mean squared error of the forecasts ``yhat`` against the truth ``y`` (same shape)."""
    return float(np.sqrt(np.mean(np.square(np.asarray(yhat) - np.asarray(y)))))


def smape(y: np.ndarray, yhat: np.ndarray) -> float:
    """Symmetric MAPE in percent (0..200) as in the M4 competition (Makridakis et al. 2020):
    the mean of ``200 |y - ŷ| / (|y| + |ŷ|)``; a term whose truth and forecast are both 0 is 0."""
    y, yhat = np.asarray(y, np.float64), np.asarray(yhat, np.float64)
    num, den = 2.0 * np.abs(y - yhat), np.abs(y) + np.abs(yhat)
    return float(100.0 * np.mean(np.divide(num, den, out=np.zeros_like(num), where=den > 0)))


def mase_denominator(y_train: np.ndarray, season: int = 1) -> tuple[float, int | None]:
    """``(scale, m)``: the MASE denominator ``mean_t |y_t - y_{t-m}|`` on the training part
    and the lag ``m`` it used — ``season`` when the training part is longer than it, else 1
    (the plain naive forecast). A constant training part has no naive error to scale by:
    then ``(1.0, None)``, and MASE equals MAE."""
    y_train = np.asarray(y_train, np.float64)
    m = season if len(y_train) > season else 1
    d = np.abs(y_train[m:] - y_train[:-m])
    scale = float(d.mean()) if d.size else 0.0
    return (scale, m) if scale > 0 else (1.0, None)


def mase_scale(y_train: np.ndarray, season: int = 1) -> float:
    """``mean |y_t - y_{t-m}|`` on the training part: the MASE denominator (see
    :func:`mase_denominator`, which also says which m it used)."""
    return mase_denominator(y_train, season)[0]


def scores(y: np.ndarray, yhat: np.ndarray, scale: float) -> dict:
    """``y, yhat (n, K)`` -> MAE, RMSE and MASE over all steps, RMSE at step 1 and per step."""
    y, yhat = np.asarray(y, np.float64), np.asarray(yhat, np.float64)
    per_step = np.sqrt(np.mean(np.square(yhat - y), axis=0))  # (K,)
    return {"mae": mae(y, yhat), "rmse": rmse(y, yhat), "mase": mae(y, yhat) / scale,
            "smape": smape(y, yhat), "rmse_1": float(per_step[0]),
            "rmse_per_step": per_step.tolist()}
