"""The scikit-learn-style estimators: the API a pipeline expects, and check_estimator.

scikit-learn's ``check_estimator`` runs in two parts, to keep this file fast:

* every check, on instances with a tiny training budget (3 epochs): they test the API
  (input validation, cloning, pickling, fitted state, error messages, repeatability), not
  how well the model learns; the two checks that demand a good training score
  (``check_regressors_train``: R² > 0.5, ``check_classifiers_train``: accuracy > 0.83) are
  expected to fail at that budget and are listed as such;
* those two checks again, in all their variants, on instances with a real budget, where
  they must pass.
"""

import os
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from seq_helpers import one_blas_thread  # noqa: F401

from lstmlab.sklearn import LSTMClassifier, LSTMForecaster, make_windows

try:
    import sklearn
    from sklearn.base import clone
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer
    from sklearn.utils import estimator_checks as ec
except ImportError:
    sklearn = None
needs_sklearn = pytest.mark.skipif(sklearn is None, reason="scikit-learn is not installed")

FAST = [LSTMForecaster(hidden_size=8, epochs=3, batch_size=64),
        LSTMClassifier(hidden_size=8, epochs=3, batch_size=64)]
TRAINED = {
    "regressor": LSTMForecaster(hidden_size=16, epochs=60, lr=2e-2, batch_size=64, anchor="none"),
    "classifier": LSTMClassifier(hidden_size=16, epochs=30, lr=3e-2, batch_size=64),
}
SCORE_CHECKS = {"check_regressors_train", "check_classifiers_train"}


def _expected_failures(estimator):
    return {name: "3 epochs cannot reach the score this check asks for; "
                  "test_score_checks_with_a_training_budget runs it with one"
            for name in SCORE_CHECKS}


if sklearn is not None:
    @ec.parametrize_with_checks(FAST, expected_failed_checks=_expected_failures,
                                xfail_strict=False)
    def test_check_estimator(estimator, check):
        check(estimator)


@needs_sklearn
@pytest.mark.parametrize("variant", [{}, {"readonly_memmap": True},
                                     {"readonly_memmap": True, "X_dtype": "float32"}])
@pytest.mark.parametrize("kind", ["regressor", "classifier"])
def test_score_checks_with_a_training_budget(kind, variant):
    est = clone(TRAINED[kind]).set_params(random_state=0)
    check = ec.check_regressors_train if kind == "regressor" else ec.check_classifiers_train
    check(type(est).__name__, est, **variant)


FALLBACK = """
import sys
sys.modules["sklearn"] = None  # as if scikit-learn were not installed
import numpy as np
from lstmlab.sklearn import HAVE_SKLEARN, LSTMClassifier, LSTMForecaster, NotFittedError, make_windows
assert not HAVE_SKLEARN
X, y = make_windows(5 + np.sin(2 * np.pi * np.arange(200) / 12), 12)
f = LSTMForecaster(hidden_size=8, epochs=10, lr=1e-2, random_state=0)
assert f.set_params(epochs=12).get_params()["epochs"] == 12 and "epochs=12" in repr(f)
assert f.fit(X[:150], y[:150]).score(X[150:], y[150:]) > 0.9
for bad, err in ((lambda: LSTMForecaster().predict(X), NotFittedError),
                 (lambda: f.predict(X[:, :5]), ValueError),
                 (lambda: f.fit(np.full_like(X, np.nan), y), ValueError),
                 (lambda: LSTMClassifier().fit(X, ["a"] * len(X)), ValueError)):
    try:
        bad()
    except err:
        pass
    else:
        raise AssertionError("no error")
c = LSTMClassifier(epochs=5, random_state=0).fit(X, y > 5)
assert c.score(X, y > 5) > 0.8 and list(c.classes_) == [False, True]
# labels as a column are read as scikit-learn reads them; what it refuses is refused
column = LSTMClassifier(epochs=5, random_state=0).fit(X, (y > 5)[:, None])
assert np.array_equal(column.predict_proba(X), c.predict_proba(X))
for bad, message in ((lambda: LSTMClassifier(epochs=1).fit(X, np.c_[y, y] > 5),
                      "y must have shape (n,), got (188, 2)"),
                     (lambda: LSTMForecaster(epochs=1).fit(X, np.zeros((len(X), 2, 2))),
                      "y must have shape (n,) or (n, K), got (188, 2, 2)"),
                     (lambda: LSTMForecaster(epochs=1).fit(X + 1j, y), "Complex data not supported"),
                     (lambda: f.score(X, y[:-1]),
                      "y must hold the targets of the 188 samples of X, shape (188,), got (187,)"),
                     (lambda: f.score(X, np.c_[y, y]),
                      "y must hold the targets of the 188 samples of X, shape (188,), got (188, 2)"),
                     (lambda: f.score(X, y, sample_weight=np.ones(3)),
                      "sample_weight must have shape (188,), one weight per sample of X, got (3,)"),
                     (lambda: c.score(X, y > 5, sample_weight=np.zeros(len(X))),
                      "sample_weight must hold finite numbers, not all zero")):
    try:
        bad()
    except ValueError as err:
        assert str(err) == message, err
    else:
        raise AssertionError("no error: " + message)
print("ok")
"""


def test_without_scikit_learn_the_fallback_keeps_the_api():
    run = subprocess.run([sys.executable, "-c", textwrap.dedent(FALLBACK)], capture_output=True,
                         text=True, timeout=120, env={**os.environ, "OPENBLAS_NUM_THREADS": "1"})
    assert run.returncode == 0 and run.stdout.strip() == "ok", run.stderr


@needs_sklearn
def test_params_round_trip_and_clone():
    est = LSTMForecaster(hidden_size=5, anchor="none", random_state=3)
    assert est.get_params()["hidden_size"] == 5
    est.set_params(hidden_size=7, log=True)
    assert est.hidden_size == 7 and est.log is True
    twin = clone(est)
    assert twin.get_params() == est.get_params() and twin is not est
    with pytest.raises(ValueError, match="Invalid parameter"):
        est.set_params(nope=1)


def _sine_series(n=300, seed=0):
    t = np.arange(n)
    return 5 + np.sin(2 * np.pi * t / 12) + 0.05 * np.random.default_rng(seed).normal(size=n)


def test_forecaster_windows_fit_predict_score_and_random_state():
    X, y = make_windows(_sine_series(), lookback=24, horizon=3)
    assert X.shape == (274, 24) and y.shape == (274, 3)
    Xtr, ytr, Xte, yte = X[:200], y[:200], X[200:], y[200:]
    est = LSTMForecaster(hidden_size=16, epochs=25, lr=1e-2, random_state=0).fit(Xtr, ytr)
    pred = est.predict(Xte)
    assert pred.shape == (74, 3)
    assert est.score(Xte, yte) > 0.9
    again = LSTMForecaster(hidden_size=16, epochs=25, lr=1e-2, random_state=0).fit(Xtr, ytr)
    np.testing.assert_array_equal(again.predict(Xte), pred)  # same seed, same model
    other = LSTMForecaster(hidden_size=16, epochs=25, lr=1e-2, random_state=1).fit(Xtr, ytr)
    assert not np.array_equal(other.predict(Xte), pred)
    X1, y1 = make_windows(_sine_series(), lookback=12)
    assert y1.ndim == 1 and LSTMForecaster(epochs=1).fit(X1, y1).predict(X1).shape == y1.shape


@pytest.mark.parametrize("cell", ["gru", "rnn"])
def test_the_estimators_take_every_recurrent_cell(cell):
    # cell="gru" was refused by SequenceNetConfig ("cell must be 'lstm' or 'rnn'")
    X, y = make_windows(_sine_series(), lookback=12)
    est = LSTMForecaster(cell=cell, hidden_size=4, epochs=2, random_state=0).fit(X, y)
    assert est.predict(X).shape == y.shape
    seqs = np.random.default_rng(0).normal(size=(20, 5, 2))
    labels = np.array(["a", "b"] * 10)
    clf = LSTMClassifier(cell=cell, hidden_size=4, epochs=2, random_state=0).fit(seqs, labels)
    assert set(clf.predict(seqs)) <= {"a", "b"}


@needs_sklearn
def test_forecaster_in_a_pipeline():
    X, y = make_windows(_sine_series(), lookback=12)
    pipe = make_pipeline(FunctionTransformer(lambda a: a * 2.0, inverse_func=None),
                         LSTMForecaster(hidden_size=8, epochs=20, lr=1e-2, random_state=0))
    assert pipe.fit(X[:200], y[:200]).score(X[200:], y[200:]) > 0.8


def test_classifier_variable_lengths_step_features_and_labels():
    from lstmlab.classify import synthetic_sequences

    data = synthetic_sequences(300, np.random.default_rng(0))
    x, lengths = data.padded()  # (T, n, 1)
    X = x.transpose(1, 0, 2)[:, :, 0]  # (n, T): padded, lengths given separately
    y = np.array(data.labels)
    est = LSTMClassifier(hidden_size=16, epochs=30, random_state=0)
    est.fit(X[:200], y[:200], lengths=lengths[:200])
    assert list(est.classes_) == ["period_16", "period_4", "period_8"]
    assert est.score(X[200:], y[200:], lengths=lengths[200:]) >= 0.9
    proba = est.predict_proba(X[200:], lengths=lengths[200:])
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    # 2-D input read as steps of several features: 4 features x 2 steps == (n, 2, 4)
    rng = np.random.default_rng(1)
    Z = rng.normal(size=(40, 8))
    a = LSTMClassifier(step_features=4, epochs=2, random_state=0).fit(Z, Z[:, 0] > 0)
    b = LSTMClassifier(epochs=2, random_state=0).fit(Z.reshape(40, 2, 4), Z[:, 0] > 0)
    np.testing.assert_array_equal(a.predict_proba(Z), b.predict_proba(Z.reshape(40, 2, 4)))
    with pytest.raises(ValueError, match="not a multiple of step_features=3"):
        LSTMClassifier(step_features=3).fit(Z, Z[:, 0] > 0)


@needs_sklearn
def test_classifier_rejects_one_class_and_unfitted_use():
    X = np.zeros((5, 3))
    with pytest.raises(ValueError, match=r"^y has only one class \('a'\); a classifier"):
        LSTMClassifier().fit(X, ["a"] * 5)
    for label in (3, 2.0, True):  # written as the user wrote it, not as np.int64(3)
        with pytest.raises(ValueError, match=rf"^y has only one class \({label!r}\); a "):
            LSTMClassifier().fit(X, np.full(5, label))
    with pytest.raises(sklearn.exceptions.NotFittedError):
        LSTMClassifier().predict(X)


def test_classifier_labels_of_mixed_kinds_are_refused_naming_y():
    X = np.random.default_rng(3).normal(size=(6, 4, 2))
    mixed = {"number (1), string ('a')": [1, "a", 1, "a", 1, "a"],
             "string ('b'), NoneType (None)": ["b", "a", None, "a", "b", "a"],
             "number (1), boolean (True)": [1, True, 2, True, 1, 2]}
    for shown, labels in mixed.items():
        with pytest.raises(ValueError, match=rf"y mixes labels of different kinds: "
                                             rf"{re.escape(shown)}; class labels must be all "
                                             rf"numbers or all strings"):
            LSTMClassifier(epochs=1).fit(X, np.array(labels, dtype=object))
    with pytest.raises(ValueError, match=r"y holds labels of the kind: NoneType \(None\)"):
        LSTMClassifier(epochs=1).fit(X, np.array([None] * 6, dtype=object))
    # labels of one kind in an object array (a pandas object column) are read as they are
    words = LSTMClassifier(epochs=1, random_state=0).fit(X, np.array(list("abbaab"), dtype=object))
    assert list(words.classes_) == ["a", "b"]
    ints = LSTMClassifier(epochs=1, random_state=0).fit(X, np.array([2, 1, 1, 2, 2, 1], object))
    assert list(ints.classes_) == [1, 2] and set(ints.predict(X)) <= {1, 2}
    # a plain list of mixed values is all strings already, as NumPy and scikit-learn read it
    listed = LSTMClassifier(epochs=1, random_state=0).fit(X, [1, "a", 1, "a", 1, "a"])
    assert list(listed.classes_) == ["1", "a"]

def test_shapes_that_do_not_fit_are_named():
    rng = np.random.default_rng(2)
    X3, y = rng.normal(size=(10, 4, 2)), np.array(["a", "b"] * 5)
    for est, target in ((LSTMClassifier(hidden_size=3, epochs=1, random_state=0), y),
                        (LSTMForecaster(hidden_size=3, epochs=1, random_state=0), X3[:, -1, 0])):
        est.fit(X3, target)
        with pytest.raises(ValueError, match=r"X of shape \(2, 4, 3\) has 4 steps of 3 "
                                             r"features, but \w+ was fitted on X of shape "
                                             r"\(n, 4, 2\): 4 steps of 2 features$"):
            est.predict(rng.normal(size=(2, 4, 3)))
        with pytest.raises(ValueError, match=r"X must have shape \(n, T\*D\) or \(n, T, D\), got "
                                             r"\(10, 4, 2, 1\)"):
            type(est)(epochs=1).fit(X3[..., None], target)
    clf = LSTMClassifier(hidden_size=3, epochs=1, random_state=0)
    with pytest.raises(ValueError, match=r"lengths must have shape \(10,\), one length per "
                                         r"sequence of X, got \(2,\)"):
        clf.fit(X3, y, lengths=[4, 3])
    clf.fit(X3, y)
    with pytest.raises(ValueError, match=r"y must hold one label per sequence of X, shape "
                                         r"\(10,\), got \(4,\)"):
        clf.score(X3, y[:4])
    # labels as a column, as fit takes them: the accuracy of each sequence, not of all pairs
    pred = clf.predict(X3)
    assert clf.score(X3, pred[:, None]) == 1.0
    assert clf.score(X3, np.where(pred == "a", "b", "a")[:, None]) == 0.0


@pytest.mark.parametrize("kind", [LSTMClassifier, LSTMForecaster])
@pytest.mark.parametrize("shape, given", [((8, 0, 2), "0 steps of 2 features"),
                                          ((8, 5, 0), "5 steps of 0 features")])
def test_sequences_without_steps_or_features_are_named(kind, shape, given):
    # no steps was refused as an overflow of the standardisation statistics; no features
    # as the network's input_size 0
    y = np.array(["a", "b"] * 4) if kind is LSTMClassifier else np.arange(8.0)
    with pytest.raises(ValueError, match=rf"^X of shape \({shape[0]}, {shape[1]}, {shape[2]}\) "
                                         rf"has {given}: a sequence needs at least one step "
                                         rf"of at least one feature$"):
        kind(epochs=1).fit(np.ones(shape), y)


def test_a_list_of_sequences_of_different_lengths_says_to_pad_them():
    # NumPy's "setting an array element with a sequence ... inhomogeneous shape" said
    # nothing of zero-padding and lengths=
    ragged = [np.ones((3, 1)), np.ones((5, 1))] * 4
    y = np.array(["a", "b"] * 4)
    pad = (r"X holds samples of different shapes \(\(3, 1\), \(5, 1\)\): give sequences of "
           r"different lengths zero-padded to one T, as an array \(n, T, D\), and their "
           r"lengths as lengths= \(n,\)$")
    with pytest.raises(ValueError, match=pad):
        LSTMClassifier(epochs=1).fit(ragged, y)
    with pytest.raises(ValueError, match=r"^X holds a sample whose steps have different numbers "
                                         r"of features"):
        LSTMClassifier(epochs=1).fit([[[1.0], [2.0, 3.0]]] * 8, y)
    X = np.zeros((8, 5, 1))
    for i, s in enumerate(ragged):
        X[i, :len(s)] = s * i
    clf = LSTMClassifier(hidden_size=2, epochs=1, random_state=0).fit(X, y, lengths=[3, 5] * 4)
    with pytest.raises(ValueError, match=pad):
        clf.predict(ragged)
    assert clf.predict(X.tolist(), lengths=[3, 5] * 4).shape == (8,)


def test_a_sequence_of_another_length_is_named_by_its_steps():
    # X of 6 steps of 2 features against a fit on 4 steps was "X has 6 features, but
    # LSTMClassifier is expecting 4 features as input": the steps counted as features
    rng = np.random.default_rng(2)
    X3, y = rng.normal(size=(10, 4, 2)), np.array(["a", "b"] * 5)
    clf = LSTMClassifier(hidden_size=3, epochs=1, random_state=0).fit(X3, y)
    with pytest.raises(ValueError) as err:
        clf.predict(rng.normal(size=(2, 6, 2)))
    assert str(err.value) == ("X of shape (2, 6, 2) has 6 steps of 2 features, but "
                              "LSTMClassifier was fitted on X of shape (n, 4, 2): 4 steps of 2 "
                              "features")
    with pytest.raises(ValueError, match=r"^X of shape \(2, 8\) has 8 columns, read as 8 steps "
                                         r"of 1 feature \(step_features=1\), but"):
        clf.predict(X3[:2].reshape(2, 8))
    # the same sequences in the other shape are read as fit read them
    expected = clf.predict_proba(X3)
    np.testing.assert_array_equal(clf.set_params(step_features=2).predict_proba(
        X3.reshape(10, 8)), expected)
    flat = LSTMClassifier(hidden_size=3, epochs=1, step_features=2,
                          random_state=0).fit(X3.reshape(10, 8), y)
    np.testing.assert_array_equal(flat.predict_proba(X3), flat.predict_proba(X3.reshape(10, 8)))
    with pytest.raises(ValueError, match=r"^X has 6 features, but LSTMClassifier is expecting 8 "
                                         r"features as input: X of shape \(n, 8\): 4 steps of 2 "
                                         r"features \(step_features=2\)$"):
        flat.predict(X3[:, :3].reshape(10, 6))
    with pytest.raises(ValueError, match=r"^X of shape \(10, 3, 2\) has 3 steps of 2 features, "
                                         r"but LSTMClassifier was fitted on X of shape \(n, 8\)"):
        flat.predict(X3[:, :3])


@pytest.mark.parametrize("kind", [LSTMClassifier, LSTMForecaster])
def test_settings_and_a_validation_part_that_leaves_nothing_are_named(kind):
    rng = np.random.default_rng(3)
    X, y = rng.normal(size=(12, 5)), np.arange(12) % 2
    for name in ("lr", "clip", "validation_fraction"):
        with pytest.raises(ValueError, match=f"{name} must be a number, got 'x'"):
            kind(epochs=1, **{name: "x"}).fit(X, y)
    for patience in (2.5, "5", -1, True):
        with pytest.raises(ValueError, match=f"patience must be an integer >= 0, got "
                                             f"{re.escape(repr(patience))}"):
            kind(epochs=1, patience=patience).fit(X, y)
    with pytest.raises(ValueError, match="validation_fraction=0.99 holds out 12 of the 12 "
                                         "samples, leaving none to train on"):
        kind(hidden_size=3, epochs=1, validation_fraction=0.99, random_state=0).fit(X, y)
    assert kind(hidden_size=3, epochs=1, validation_fraction=0.9,
                random_state=0).fit(X, y).predict(X).shape == (12,)


@pytest.mark.parametrize("kind", [LSTMClassifier, LSTMForecaster])
@pytest.mark.parametrize("random_state", [-1, 1.5, "0", True])
def test_a_random_state_that_seeds_nothing_is_named(kind, random_state):
    # a negative int failed inside NumPy's seeding, "expected non-negative integer"
    X, y = np.random.default_rng(3).normal(size=(12, 5)), np.arange(12) % 2
    with pytest.raises(ValueError, match=r"^random_state must be None, an int >= 0 or a numpy "
                                         rf"Generator, got {re.escape(repr(random_state))}$"):
        kind(hidden_size=3, epochs=1, random_state=random_state).fit(X, y)


def test_forecaster_log_names_its_own_setting():
    X, y = make_windows(np.linspace(1.0, 3.0, 40), lookback=5)
    est = LSTMForecaster(hidden_size=3, epochs=1, log=True, random_state=0)
    with pytest.raises(ValueError, match=r"log=True needs positive target values, but y holds "
                                         r"-1; use log=False"):
        est.fit(X, np.where(np.arange(len(y)) == 3, -1.0, y))
    est.fit(X, y)
    with pytest.raises(ValueError, match="but X holds 0; use log=False"):
        est.predict(X[:2] - 1.0)


@pytest.mark.parametrize("log", ["False", "no", 1, None])
def test_forecaster_log_takes_true_or_false_only(log):
    X, y = make_windows(np.linspace(1.0, 3.0, 40), lookback=5)
    with pytest.raises(ValueError, match=rf"log must be True or False, got {re.escape(repr(log))}"):
        LSTMForecaster(hidden_size=3, epochs=1, log=log, random_state=0).fit(X, y)
    assert not LSTMForecaster(hidden_size=3, epochs=1, log=np.False_).fit(X, y).scaler_.log


@needs_sklearn
def test_digits_accuracy_row_by_row():
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    X, y = load_digits(return_X_y=True)  # (1797, 64): 8 rows of 8 pixels
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.2, random_state=0, stratify=y)
    est = LSTMClassifier(step_features=8, hidden_size=32, epochs=10, batch_size=64,
                         random_state=0).fit(Xtr, ytr)
    assert est.score(Xte, yte) >= 0.9


def test_classifier_lengths_out_of_range_are_named_before_standardising():
    X, y = np.random.default_rng(4).normal(size=(8, 5)), np.arange(8) % 2
    for bad in (np.zeros(8, int), np.full(8, -1), np.r_[np.zeros(1, int), np.full(7, 5)]):
        with pytest.raises(ValueError, match=r"lengths must lie in \[1, 5\] \(T = 5\)"):
            LSTMClassifier(hidden_size=3, epochs=1, random_state=0).fit(X, y, lengths=bad)
    clf = LSTMClassifier(hidden_size=3, epochs=1, random_state=0).fit(X, y, lengths=np.full(8, 3.0))
    with pytest.raises(ValueError, match=r"lengths must lie in \[1, 5\] \(T = 5\)"):
        clf.predict(X, lengths=np.full(8, 6))


def test_make_windows_names_a_lookback_horizon_or_series_it_cannot_window():
    series = np.arange(20.0)
    for lookback, horizon, name in ((0, 1, "lookback"), (-2, 1, "lookback"), (2.5, 1, "lookback"),
                                    (3, 0, "horizon"), (3, True, "horizon")):
        with pytest.raises(ValueError, match=f"{name} must be a positive integer"):
            make_windows(series, lookback, horizon)
    with pytest.raises(ValueError, match=r"series must have shape \(N,\) or \(N, D\), got "
                                         r"\(10, 2, 2\)"):
        make_windows(np.zeros((10, 2, 2)), 3)
    X, y = make_windows(series, np.int64(3), 2)
    assert X.shape == (16, 3) and y.shape == (16, 2) and list(X[0]) == [0, 1, 2]
    for bad, kind in ((["1.0", "x", "2.0"], "dtype <U3"), (np.arange(8) * 1j, "real numbers"),
                      (np.array([1.0, {}, 2.0], object), "dtype object")):
        with pytest.raises(ValueError, match=f"^series must hold .*{kind}"):
            make_windows(bad, 1)


def test_a_small_validation_fraction_still_holds_out_a_window():
    X, y = make_windows(np.sin(np.arange(40) / 3.0) + 2.0, 5)  # 35 windows
    est = LSTMForecaster(hidden_size=3, epochs=2, validation_fraction=0.01, random_state=0)
    assert est.fit(X, y).fit_summary_["best_val_loss"] is not None  # the last window validates
    assert LSTMForecaster(hidden_size=3, epochs=2, random_state=0).fit(
        X, y).fit_summary_["best_val_loss"] is None


def test_score_refuses_labels_of_another_kind_than_the_classes():
    X = np.random.default_rng(3).normal(size=(6, 4, 2))
    y = np.array([1, 0, 0, 1, 1, 0])
    numbers = LSTMClassifier(hidden_size=3, epochs=1, random_state=0).fit(X, y)
    words = LSTMClassifier(hidden_size=3, epochs=1, random_state=0).fit(X, y.astype(str))
    for est, given, got, want in ((numbers, y.astype(str), "strings", "numbers"),
                                  (words, y, "numbers", "strings"),
                                  (words, y.astype(object), "numbers", "strings")):
        with pytest.raises(ValueError, match=rf"^y holds labels that are {got} .*but the "
                                             rf"classes are {want}"):
            est.score(X, given)
    assert numbers.score(X, y.astype(float)) == numbers.score(X, y)
    assert words.score(X, y.astype(str).astype(object)) == words.score(X, y.astype(str))


def test_score_names_sample_weights_that_do_not_fit():
    X, y = np.random.default_rng(5).normal(size=(10, 4)), np.arange(10) % 2
    clf = LSTMClassifier(hidden_size=2, epochs=1, random_state=0).fit(X, y)
    for w, message in ((np.ones(3), r"sample_weight must have shape \(10,\), one weight per "
                                    r"sample of X, got \(3,\)"),
                       (np.ones((10, 1)), r"got \(10, 1\)"),
                       (np.zeros(10), "finite numbers, not all zero"),
                       (np.full(10, np.nan), "finite numbers, not all zero")):
        with pytest.raises(ValueError, match=message):
            clf.score(X, y, sample_weight=w)
    weights = np.arange(10.0)
    expected = np.average(clf.predict(X) == y, weights=weights)
    assert clf.score(X, y, sample_weight=list(weights)) == pytest.approx(expected)


def test_forecaster_values_that_overflow_the_scaler_are_named_before_fitting():
    # (fit warned of an overflow in NumPy, then said "the standardisation statistics are not
    # finite ... rescale the data", without naming X or y)
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(20, 5, 2)), rng.normal(size=(20, 3))
    X[7, 4, 1] = 3e300
    with pytest.raises(ValueError, match=r"^X: column 'feature 1' holds 3e\+300 at sample 7, "
                                         r"step 4: values beyond"):
        LSTMForecaster(epochs=1).fit(X, y)
    X[7, 4, 1], y[5, 2] = 0.0, -2e200
    with pytest.raises(ValueError, match=r"^y: column 'target' holds -2e\+200 at sample 5, "
                                         r"output 2:"):
        LSTMForecaster(epochs=1).fit(X, y)


@pytest.mark.parametrize("make", [
    lambda: LSTMClassifier(hidden_size=4, epochs=2, batch_size=64, validation_fraction=0.2,
                           random_state=0),
    lambda: LSTMForecaster(hidden_size=4, epochs=2, batch_size=64, random_state=0),
])
def test_a_fitted_estimator_pickles_to_its_weights_and_settings(make):
    import pickle
    rng = np.random.default_rng(0)
    X = rng.normal(size=(64, 50))
    y = (X.sum(1) > 0).astype(int)
    est = make().fit(X, y)
    weights = len(pickle.dumps(est.net_.params()))
    for _ in range(2):  # after fit, then after a prediction (an inference forward)
        # the layers' last forward (every step's gates of the last batch) is not pickled:
        # kept, it makes a 136 KB network fitted on 256 sequences of 100 steps a 46 MB file
        assert len(pickle.dumps(est)) < weights + 16_000
        pred = est.predict(X)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(est)).predict(X), pred)
