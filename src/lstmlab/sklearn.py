"""scikit-learn-style estimators: ``LSTMForecaster`` (a regressor) and ``LSTMClassifier``.

Dimensions: n samples, T steps per sequence, D features per step, K outputs (steps ahead).

Both read each sample as a sequence. ``X`` is either ``(n, T, D)`` or, as scikit-learn
pipelines pass it, ``(n, T*D)`` read as T steps of ``step_features = D`` consecutive
columns (the default ``step_features=1`` reads every column as one step of a univariate
sequence; ``LSTMClassifier(step_features=8)`` reads an 8x8 digit row by row).

``LSTMForecaster`` takes windows of a series and their futures: ``X`` the last T values
(oldest first; with D > 1 the target is feature 0), ``y`` the next value ``(n,)`` or the
next K values ``(n, K)`` (direct multi-step). :func:`lstmlab.sklearn.make_windows` builds
them from a series. Inputs and targets go through the same :class:`WindowScaler` as the
``forecast`` command (``anchor="last"``: residual over the last value; ``log``).

``LSTMClassifier`` takes labels that are all numbers (or all booleans) or all strings;
``fit``/``predict``/``predict_proba``/``score`` accept ``lengths=`` (n,) for variable-length
sequences zero-padded to T.

With scikit-learn installed the estimators derive from its ``BaseEstimator`` and mixins,
validate input with its ``validate_data``, and pass ``check_estimator`` (see
``tests/test_sklearn_api.py`` and ``docs/classification.md``); without it they behave the
same with a small fallback for ``get_params``/``set_params``/``score`` and validation.
``random_state`` (None, an int >= 0, or a ``numpy.random.Generator``) seeds initialisation and
shuffling; an int makes ``fit`` repeatable.
"""

from __future__ import annotations

import inspect
import numbers

import numpy as np

from ._checks import as_lengths, as_numpy, is_real, positive_int, short_repr, true_or_false
from ._scaling import mean_std, range_problem
from ._words import counted
from .forecast.windows import WindowScaler
from .forecast.windows import make_windows as _make_windows
from .layers.seqnet import SequenceNet, SequenceNetConfig
from .training.losses import mse_loss, softmax, softmax_cross_entropy
from .training.supervised import FitConfig, fit_sequence_net

def _sample_weight(sample_weight, n: int) -> np.ndarray:
    """One finite weight per sample (ones for None), not all zero, as scikit-learn's scores
    check them; NumPy's average would fail on another shape with a message about axes."""
    if sample_weight is None:
        return np.ones(n)
    w = np.asarray(sample_weight, np.float64)
    if w.shape != (n,):
        raise ValueError(f"sample_weight must have shape ({n},), one weight per sample of X, "
                         f"got {w.shape}")
    if not np.isfinite(w).all() or not w.any():
        raise ValueError("sample_weight must hold finite numbers, not all zero")
    return w


try:  # scikit-learn is optional: its base classes when present, a fallback otherwise
    from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.multiclass import check_classification_targets
    from sklearn.utils.validation import check_is_fitted, validate_data
    HAVE_SKLEARN = True
except ImportError:  # pragma: no cover - exercised only where scikit-learn is absent
    HAVE_SKLEARN = False

    class NotFittedError(ValueError, AttributeError):
        """The estimator is used before ``fit``."""

    class BaseEstimator:
        """``get_params``/``set_params`` from the ``__init__`` signature, as scikit-learn."""

        @classmethod
        def _get_param_names(cls):
            sig = inspect.signature(cls.__init__)
            return sorted(p for p in sig.parameters if p != "self")

        def get_params(self, deep=True):
            return {k: getattr(self, k) for k in self._get_param_names()}

        def set_params(self, **params):
            valid = self._get_param_names()
            for k, v in params.items():
                if k not in valid:
                    raise ValueError(f"invalid parameter {k!r} for {type(self).__name__}; "
                                     f"valid parameters: {valid}")
                setattr(self, k, v)
            return self

        def __repr__(self):
            args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
            return f"{type(self).__name__}({args})"

    class RegressorMixin:
        _estimator_type = "regressor"

        def score(self, X, y, sample_weight=None):
            y = np.asarray(y, np.float64)
            pred = np.asarray(self.predict(X), np.float64)
            if y.ndim == 0 or len(y) != len(pred) or y.size != pred.size:
                raise ValueError(f"y must hold the targets of the {len(pred)} samples of X, "
                                 f"shape {pred.shape}, got {y.shape}")
            pred = pred.reshape(y.shape)  # a column y against (n,) predictions, or the reverse
            w = _sample_weight(sample_weight, len(y))
            ss_res = (w[:, None] * (y - pred).reshape(len(y), -1) ** 2).sum(0)
            dev = y.reshape(len(y), -1) - np.average(y.reshape(len(y), -1), axis=0, weights=w)
            ss_tot = (w[:, None] * dev ** 2).sum(0)
            r2 = 1 - ss_res / np.where(ss_tot > 0, ss_tot, 1.0)
            return float(np.mean(r2))

    class ClassifierMixin:
        _estimator_type = "classifier"

        def score(self, X, y, sample_weight=None):
            pred = np.asarray(self.predict(X))
            return float(np.average(pred == np.asarray(y),
                                    weights=_sample_weight(sample_weight, len(pred))))

    def check_is_fitted(estimator, attributes=None):
        if not any(k.endswith("_") and not k.startswith("__") for k in vars(estimator)):
            raise NotFittedError(f"this {type(estimator).__name__} instance is not fitted yet; "
                                 f"call fit first")

    def check_classification_targets(y):
        y = np.asarray(y)
        if y.dtype.kind == "f" and not np.all(y == np.round(y)):
            raise ValueError("Unknown label type: continuous targets; a classifier needs classes")

    def validate_data(est, X, y="no_validation", reset=True, allow_nd=False, dtype=None,
                      multi_output=False, y_numeric=False, **_):
        X = np.asarray(X)
        if X.dtype.kind == "c":  # astype would drop the imaginary parts, with a warning
            raise ValueError("Complex data not supported")
        X = X.astype(np.float64)
        if X.ndim < 2 or (X.ndim > 2 and not allow_nd):
            raise ValueError(f"Expected 2D array, got {X.ndim}D array instead")
        if X.shape[0] == 0 or X.shape[1] == 0:
            raise ValueError(f"Found array with shape {X.shape}; at least 1 sample and 1 "
                             f"feature are required")
        if not np.isfinite(X).all():
            raise ValueError("Input X contains NaN or infinity")
        if reset:
            est.n_features_in_ = X.shape[1]
        elif X.shape[1] != est.n_features_in_:
            raise ValueError(f"X has {X.shape[1]} features, but {type(est).__name__} is "
                             f"expecting {est.n_features_in_} features as input")
        if isinstance(y, str) and y == "no_validation":
            return X
        if y is None:
            raise ValueError(f"{type(est).__name__} requires y to be passed, but the target y "
                             f"is None")
        y = np.asarray(y)
        if y.ndim == 0 or len(y) != len(X):
            raise ValueError(f"X and y have different numbers of samples: {len(X)} and "
                             f"{y.size if y.ndim == 0 else len(y)}")
        if not multi_output and y.ndim == 2 and y.shape[1] == 1:
            y = y[:, 0]  # a column, read as scikit-learn's column_or_1d reads it
        if y.ndim > (2 if multi_output else 1):
            raise ValueError(f"y must have shape (n,){' or (n, K)' if multi_output else ''}, "
                             f"got {y.shape}")
        if y_numeric:
            y = y.astype(np.float64)
            if not np.isfinite(y).all():
                raise ValueError("Input y contains NaN or infinity")
        return X, y


__all__ = ["LSTMClassifier", "LSTMForecaster", "make_windows", "HAVE_SKLEARN"]


def make_windows(series, lookback: int, horizon: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """``(X, y)`` from a series ``(N,)`` or ``(N, D)``: every window of ``lookback`` steps
    and the ``horizon`` target values after it (``y`` is ``(n,)`` for horizon 1)."""
    lookback, horizon = positive_int(lookback, "lookback"), positive_int(horizon, "horizon")
    values = _numbers(series, "series")
    if values.ndim not in (1, 2):
        raise ValueError(f"series must have shape (N,) or (N, D), got {values.shape}")
    if values.ndim == 1:
        values = values[:, None]
    if len(values) < lookback + horizon:
        raise ValueError(f"the series has {len(values)} steps, shorter than lookback + horizon "
                         f"= {lookback + horizon}")
    X, Y = _make_windows(values, lookback, horizon, np.arange(lookback, len(values) - horizon + 1))
    X = X[:, :, 0] if values.shape[1] == 1 else X
    return X, (Y[:, 0] if horizon == 1 else Y)


def _numbers(value, name: str) -> np.ndarray:
    """``value`` as a float64 array, or a ValueError naming ``name``: NumPy's own error for a
    string names no argument, and it casts complex numbers by dropping their imaginary parts
    with only a warning."""
    arr = as_numpy(value, name)
    if arr.dtype.kind == "c":
        raise ValueError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    try:
        return arr.astype(np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must hold numbers, got dtype {arr.dtype} "
                         f"({short_repr(arr.ravel()[:3].tolist())} ...)") from None


def _generator(random_state) -> np.random.Generator:
    """A fresh Generator for one fit: seeded by an int, drawn from a given Generator or
    RandomState (which advances it, as scikit-learn does), or from entropy for None."""
    if random_state is None or (isinstance(random_state, numbers.Integral)
                                and not isinstance(random_state, bool) and random_state >= 0):
        return np.random.default_rng(random_state)  # (NumPy seeds with integers >= 0 only)
    if isinstance(random_state, np.random.Generator):
        return np.random.default_rng(random_state.integers(2**63))
    if isinstance(random_state, np.random.RandomState):
        return np.random.default_rng(random_state.randint(2**31))
    raise ValueError(f"random_state must be None, an int >= 0 or a numpy Generator, got "
                     f"{random_state!r}")


class _LSTMEstimator(BaseEstimator):
    """What both estimators share: reading X as sequences, the network, the fit settings."""

    def _check_settings(self) -> None:
        for name in ("hidden_size", "num_layers", "step_features", "epochs", "batch_size"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        for name in ("lr", "weight_decay", "clip", "validation_fraction"):
            v = getattr(self, name)
            if not is_real(v):
                raise ValueError(f"{name} must be a number, got {v!r}")
        p = self.patience  # int() in the fit settings would turn 2.5 into 2 and "5" into 5
        if isinstance(p, bool) or not isinstance(p, numbers.Integral) or p < 0:
            raise ValueError(f"patience must be an integer >= 0, got {p!r}")
        if not 0 <= self.validation_fraction < 1:
            raise ValueError(f"validation_fraction must be in [0, 1), got "
                             f"{self.validation_fraction!r}")

    def _held_out(self, n: int, at_least: int) -> int:
        """How many of ``n`` samples validation_fraction holds out; some must stay to train on."""
        n_val = max(at_least, int(round(self.validation_fraction * n))) if n > 2 else 0
        if n_val >= n:
            raise ValueError(f"validation_fraction={self.validation_fraction} holds out {n_val} "
                             f"of the {n} samples, leaving none to train on")
        return n_val

    def _fit_config(self) -> FitConfig:
        return FitConfig(epochs=int(self.epochs), batch_size=int(self.batch_size),
                         lr=float(self.lr), weight_decay=float(self.weight_decay),
                         clip=float(self.clip), patience=int(self.patience))

    def _as_sequences(self, X, reset: bool = False) -> np.ndarray:
        """Validated X -> ``(n, T, D)`` float64; ``reset`` (in fit) records D, which every
        later X must have."""
        X = np.asarray(X, np.float64)
        if X.ndim not in (2, 3):
            raise ValueError(f"X must have shape (n, T*D) or (n, T, D), got {X.shape}")
        if X.ndim == 2:
            D = int(self.step_features)
            if X.shape[1] % D:
                raise ValueError(f"X has {X.shape[1]} columns, not a multiple of "
                                 f"step_features={D}")
            X = X.reshape(X.shape[0], X.shape[1] // D, D)
        if 0 in X.shape[1:]:  # else a mean over no steps, refused as an overflow
            raise ValueError(f"X of shape {X.shape} has {counted(X.shape[1], 'step')} of "
                             f"{counted(X.shape[2], 'feature')}: a sequence needs at least one "
                             f"step of at least one feature")
        if reset:
            self.step_features_in_ = X.shape[2]
        elif X.shape[2] != self.step_features_in_:
            raise ValueError(f"X has {X.shape[2]} features per step, but the estimator was "
                             f"fitted on {self.step_features_in_}")
        return X

    def _in_fitted_shape(self, X):
        """``X`` in the shape fit read, (n, T·D) or (n, T, D), when its sequences have fit's
        T steps of D features in either shape (a 2-D X read with ``step_features``), else a
        ``ValueError`` naming its steps and features and fit's: with 3-D X, scikit-learn's
        check would call the steps "features". (An estimator fitted without the record of
        fit's shape passes X on as it is.)"""
        fitted = getattr(self, "_fit_shape", None)
        try:  # (what NumPy cannot read is validate_data's to name)
            shape = np.asarray(X).shape
        except (ValueError, TypeError):
            return X
        if fitted is None or len(shape) not in (2, 3) or shape[1:] == fitted:
            return X
        D = self.step_features_in_
        T = fitted[0] // D if len(fitted) == 1 else fitted[0]
        d = self.step_features
        steps = shape[1:] if len(shape) == 3 else (shape[1] // d, d) if shape[1] % d == 0 else None
        if steps == (T, D):
            return np.asarray(X).reshape(shape[:1] + fitted)
        name, expected = type(self).__name__, f"{counted(T, 'step')} of {counted(D, 'feature')}"
        if len(fitted) == 1:
            expected = f"X of shape (n, {fitted[0]}): {expected} (step_features={D})"
        else:
            expected = f"X of shape (n, {T}, {D}): {expected}"
        if len(shape) == 3:
            given = f"has {counted(shape[1], 'step')} of {counted(shape[2], 'feature')}"
        elif len(fitted) == 1:  # scikit-learn's own wording, which its checks look for
            raise ValueError(f"X has {shape[1]} features, but {name} is expecting {fitted[0]} "
                             f"features as input: {expected}")
        elif steps is None:
            given = f"has {shape[1]} columns, not a multiple of step_features={d}"
        else:
            given = (f"has {shape[1]} columns, read as {counted(steps[0], 'step')} of "
                     f"{counted(d, 'feature')} (step_features={d})")
        raise ValueError(f"X of shape {shape} {given}, but {name} was fitted on {expected}")

    def _make_net(self, input_size: int, output_size: int, readout: str, rng) -> SequenceNet:
        return SequenceNet(SequenceNetConfig(input_size=input_size, output_size=output_size,
                                             hidden_size=int(self.hidden_size),
                                             num_layers=int(self.num_layers), cell=self.cell,
                                             readout=readout, dtype=self.dtype), rng=rng)

    def _predict_net(self, x: np.ndarray, lengths=None) -> np.ndarray:
        with np.errstate(over="ignore"):  # an overflow to inf is caught just below
            x = x.astype(self.net_.dtype)  # (T, n, D)
        if not np.isfinite(x).all():
            t, i, j = np.argwhere(~np.isfinite(x))[0]
            raise ValueError(f"X: sample {i}, step {t}, feature {j} is too far from the training "
                             f"data to scale (it falls outside {self.net_.dtype} after "
                             f"standardisation with the training statistics)")
        return self.net_.predict(x, lengths).astype(np.float64)


class LSTMForecaster(RegressorMixin, _LSTMEstimator):
    """LSTM (or RNN) regressor over windows; direct multi-step when ``y`` has K columns.

    Parameters: ``hidden_size``, ``num_layers``, ``cell`` ("lstm"/"gru"/"rnn") shape the network;
    ``anchor`` ("last": predict the change over the window's last target value; "none":
    levels), ``log`` (model log of the target; needs positive values), ``step_features``
    (columns per step for 2-D X); ``epochs``, ``batch_size``, ``lr``, ``weight_decay``,
    ``clip`` train it (Adam, cosine schedule); ``validation_fraction`` > 0 holds out the last
    samples (windows in time order) to pick the best epoch, stopping after ``patience``
    epochs without improvement; ``dtype``; ``random_state``.
    """

    def __init__(self, hidden_size=32, num_layers=1, cell="lstm", anchor="last", log=False,
                 step_features=1, epochs=200, batch_size=32, lr=3e-3, weight_decay=0.0,
                 clip=1.0, validation_fraction=0.0, patience=50, dtype="float64",
                 random_state=None):
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.cell = cell
        self.anchor = anchor
        self.log = log
        self.step_features = step_features
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.clip = clip
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.dtype = dtype
        self.random_state = random_state

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags

    def fit(self, X, y):
        """Fit on windows ``X`` and their futures ``y`` ((n,) or (n, K)); returns self."""
        self._check_settings()
        if self.anchor not in ("none", "last"):
            raise ValueError(f"anchor must be 'none' or 'last', got {self.anchor!r} (the "
                             f"seasonal anchor is in the forecast command)")
        true_or_false(self.log, "log", ValueError)  # bool('False') would take the log
        X, y = validate_data(self, X, y, allow_nd=True, multi_output=True, y_numeric=True)
        X3 = self._as_sequences(X, reset=True)  # (n, T, D)
        self._fit_shape = X.shape[1:]
        y = np.asarray(y, np.float64)
        _checked_steps(X3, np.ones(X3.shape[:2], bool), spread=False)  # before the scaler
        K = y.size // max(len(y), 1)
        problem = range_problem(y.ravel(), "target", lambda i: f"sample {i // K}"
                                + (f", output {i % K}" if K > 1 else ""), spread=False)
        if problem:
            raise ValueError(f"y: {problem}")
        self._check_log(X3, y)
        self._y_ndim = y.ndim
        Y = y.reshape(len(y), -1)  # (n, K)
        rng = _generator(self.random_state)
        n_val = self._held_out(len(X3), 1 if self.validation_fraction > 0 else 0)
        n_tr = len(X3) - n_val
        self.scaler_ = WindowScaler(log=bool(self.log), anchor=self.anchor).fit(X3[:n_tr], Y[:n_tr])
        self.net_ = self._make_net(X3.shape[2], Y.shape[1], "last", rng)
        x, t = self.scaler_.encode(X3, Y)  # (T, n, D), (n, K)
        dt = self.net_.dtype
        val = (x[:, n_tr:].astype(dt), t[n_tr:].astype(dt), None) if n_val else None
        self.fit_summary_ = fit_sequence_net(self.net_, x[:, :n_tr].astype(dt), t[:n_tr].astype(dt),
                                             mse_loss, self._fit_config(), rng, val=val)
        self.n_outputs_ = Y.shape[1]
        self.n_iter_ = self.fit_summary_["epochs_run"]
        return self

    def _check_log(self, X3: np.ndarray, y=None) -> None:
        """log=True models the log of the target: every target value (feature 0 of X, y)
        must be positive; the error names this estimator's setting."""
        if not self.log:
            return
        for name, a in (("X", X3[:, :, 0]), ("y", y)):
            if a is not None and not np.all(a > 0):
                raise ValueError(f"log=True needs positive target values, but {name} holds "
                                 f"{float(np.min(a)):g}; use log=False")

    def predict(self, X):
        """Forecasts ``(n,)`` (or ``(n, K)`` when fitted on K columns)."""
        check_is_fitted(self)
        X = self._in_fitted_shape(X)
        X = validate_data(self, X, reset=False, allow_nd=True)
        X3 = self._as_sequences(X)
        self._check_log(X3)
        x, _ = self.scaler_.encode(X3)
        pred = self.scaler_.decode(X3, self._predict_net(x))  # (n, K)
        return pred[:, 0] if self._y_ndim == 1 else pred


def _label_kind(v) -> str:
    if isinstance(v, (bool, np.bool_)):
        return "boolean"
    if isinstance(v, numbers.Number):
        return "number"
    return "string" if isinstance(v, str) else type(v).__name__


def _class_labels(y: np.ndarray) -> np.ndarray:
    """``y`` as ``fit`` reads its labels. An object array (a pandas ``object`` column, values
    passed with ``dtype=object``) is read when its labels are of one kind: all strings stay
    as they are, all numbers (or all booleans) become a numeric array. Labels of mixed kinds
    (``[1, "a"]``, a ``None`` among strings) have no order to sort the classes by and would
    fail deep inside scikit-learn or NumPy, so they are refused naming ``y``. (A plain list
    such as ``[1, "a"]`` is already all strings: NumPy, as scikit-learn, makes it ``"1", "a"``.)"""
    if y.dtype != object:
        return y
    kinds: dict[str, object] = {}
    for v in y.ravel():
        kinds.setdefault(_label_kind(v), v)
    if len(kinds) == 1 and set(kinds) <= {"boolean", "number", "string"}:
        return y if "string" in kinds else np.array(y.tolist())
    shown = ", ".join(f"{kind} ({v!r})" for kind, v in kinds.items())
    what = "mixes labels of different kinds" if len(kinds) > 1 else "holds labels of the kind"
    raise ValueError(f"y {what}: {shown}; class labels must be all numbers or all strings "
                     f"(y.astype(str) makes them all strings)")


def _is_text(labels: np.ndarray) -> bool:
    """Whether ``labels`` (as :func:`_class_labels` reads them) are strings, not numbers."""
    return labels.dtype.kind in "USO"


def _checked_steps(X3: np.ndarray, mask: np.ndarray, spread: bool = True) -> np.ndarray:
    """The steps of ``X3 (n, T, D)`` that ``mask (n, T)`` keeps, as ``(steps, D)``, after
    each feature's values are checked for standardising (:func:`range_problem`; ``spread``
    as there), an error naming the feature, the sample and the step."""
    steps = X3[mask]
    sample, step = np.nonzero(mask)
    for j in range(steps.shape[1]):
        problem = range_problem(steps[:, j], f"feature {j}",
                                lambda i: f"sample {sample[i]}, step {step[i]}", spread)
        if problem:
            raise ValueError(f"X: {problem}")
    return steps


def _lengths_for(lengths, n: int, T: int) -> np.ndarray:
    """``lengths`` as an array of one length per sequence of X, each an integer in [1, T]:
    checked before ``fit`` standardises the valid steps, which a sequence of no steps would
    leave without statistics."""
    shape = np.shape(lengths)
    if shape != (n,):
        raise ValueError(f"lengths must have shape ({n},), one length per sequence of X, got "
                         f"{shape}")
    return as_lengths(lengths, T, n)


def _refuse_ragged(X) -> None:
    """A ValueError for a list of sequences of different shapes (lengths, most often):
    NumPy's "inhomogeneous shape" does not say that sequences of different lengths go in
    zero-padded, with ``lengths=``."""
    if not isinstance(X, (list, tuple)):
        return
    try:
        shapes = list(dict.fromkeys(np.shape(s) for s in X))
    except ValueError:  # a sample ragged itself
        raise ValueError("X holds a sample whose steps have different numbers of features; "
                         "every step of every sequence has the same D") from None
    if len(shapes) > 1:
        raise ValueError(f"X holds samples of different shapes "
                         f"({', '.join(map(str, shapes[:3]))}): give sequences of different "
                         f"lengths zero-padded to one T, as an array (n, T, D), and their "
                         f"lengths as lengths= (n,)")


class LSTMClassifier(ClassifierMixin, _LSTMEstimator):
    """LSTM (or RNN) sequence classifier with a "last"-state or "mean"-pooled readout.

    Parameters as :class:`LSTMForecaster`, plus ``readout``; features are standardised with
    the training data's mean and standard deviation per feature.
    """

    def __init__(self, hidden_size=32, num_layers=1, cell="lstm", readout="last",
                 step_features=1, epochs=100, batch_size=32, lr=1e-2, weight_decay=0.0,
                 clip=1.0, validation_fraction=0.0, patience=20, dtype="float64",
                 random_state=None):
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.cell = cell
        self.readout = readout
        self.step_features = step_features
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.clip = clip
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.dtype = dtype
        self.random_state = random_state

    def _encode(self, X, lengths):
        X3 = self._as_sequences(X)  # (n, T, D)
        x = ((X3 - self.mean_) / self.std_).transpose(1, 0, 2)  # (T, n, D)
        if lengths is not None:
            lengths = _lengths_for(lengths, *X3.shape[:2])
            x = x.copy()
            x[np.arange(x.shape[0])[:, None] >= lengths[None, :]] = 0.0  # padding stays 0
        return np.ascontiguousarray(x), lengths

    def fit(self, X, y, lengths=None):
        """Fit on sequences ``X`` with labels ``y``; ``lengths`` for padded sequences."""
        self._check_settings()
        if self.readout not in ("last", "mean"):
            raise ValueError(f"readout must be 'last' or 'mean', got {self.readout!r}")
        _refuse_ragged(X)
        X, y = validate_data(self, X, y, allow_nd=True)
        y = _class_labels(y)
        check_classification_targets(y)
        self.classes_, yi = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            only = self.classes_.tolist()[0]  # a Python value: NumPy 2 shows np.int64(3)
            raise ValueError(f"y has only one class ({only!r}); a classifier needs at least "
                             f"two classes")
        X3 = self._as_sequences(X, reset=True)
        self._fit_shape = X.shape[1:]
        n, T = X3.shape[:2]
        if lengths is not None:
            lengths = _lengths_for(lengths, n, T)
            mask = np.arange(T)[None, :] < lengths[:, None]  # (n, T) valid steps
        else:
            mask = np.ones((n, T), bool)
        steps = _checked_steps(X3, mask)  # (valid steps, D)
        self.mean_, self.std_ = mean_std(steps, axis=0)
        rng = _generator(self.random_state)
        x, lengths = self._encode(X3, lengths)
        n = len(yi)
        val = None
        keep = np.arange(n)
        if self.validation_fraction > 0 and n > 2:
            order = rng.permutation(n)
            n_val = self._held_out(n, 1)
            keep, held = np.sort(order[n_val:]), np.sort(order[:n_val])
            val = (x[:, held], yi[held], None if lengths is None else lengths[held])
        self.net_ = self._make_net(X3.shape[2], len(self.classes_), self.readout, rng)
        dt = self.net_.dtype
        if val is not None:
            val = (val[0].astype(dt), val[1], val[2])
        self.fit_summary_ = fit_sequence_net(
            self.net_, x[:, keep].astype(dt), yi[keep], softmax_cross_entropy, self._fit_config(),
            rng, lengths=None if lengths is None else lengths[keep], val=val)
        self.n_iter_ = self.fit_summary_["epochs_run"]
        return self

    def predict_proba(self, X, lengths=None):
        """``(n, C)`` class probabilities, columns in the order of ``classes_``."""
        check_is_fitted(self)
        _refuse_ragged(X)
        X = self._in_fitted_shape(X)
        X = validate_data(self, X, reset=False, allow_nd=True)
        x, lengths = self._encode(X, lengths)
        return softmax(self._predict_net(x, lengths))

    def predict(self, X, lengths=None):
        """Labels ``(n,)``: the most probable class of each sequence."""
        proba = self.predict_proba(X, lengths)  # first: it checks that fit was called
        return self.classes_[np.argmax(proba, axis=1)]

    def score(self, X, y, sample_weight=None, lengths=None):
        """Accuracy (weighted by ``sample_weight``)."""
        pred = self.predict(X, lengths)
        y = np.asarray(y)
        if y.shape not in ((len(pred),), (len(pred), 1)):  # a column as fit takes it
            raise ValueError(f"y must hold one label per sequence of X, shape ({len(pred)},), "
                             f"got {y.shape}")
        y = _class_labels(y)
        if _is_text(y) != _is_text(self.classes_):  # no label would ever equal a prediction
            kind = {True: "strings", False: "numbers"}
            raise ValueError(f"y holds labels that are {kind[_is_text(y)]} "
                             f"({short_repr(y.ravel()[:3].tolist())} ...), but the classes "
                             f"are {kind[_is_text(self.classes_)]} "
                             f"({short_repr(self.classes_[:3].tolist())} ...): pass labels of "
                             f"the kind fit was given")
        return float(np.average(pred == y.reshape(-1),
                                weights=_sample_weight(sample_weight, len(pred))))
