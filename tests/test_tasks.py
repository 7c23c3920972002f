"""The adding problem and copy memory task follow the papers' definitions, checked by sampling."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lstmlab.data.tasks import (BLANK, DELIMITER, adding_problem, copy_memory,
                                copy_memory_baseline, solved)


# -- adding problem -------------------------------------------------------------------------

def _mark_positions(markers: np.ndarray) -> np.ndarray:
    """(n, 2) the two positions with marker 1.0 of each sequence, in increasing order."""
    seq, pos = np.nonzero(markers.T == 1.0)  # row-major: grouped by sequence, pos increasing
    assert np.array_equal(np.bincount(seq, minlength=markers.shape[1]),
                          np.full(markers.shape[1], 2))
    return pos.reshape(-1, 2)


@pytest.fixture(scope="module")
def adding():
    T, n = 100, 20_000
    x, lengths, y = adding_problem(n, T, np.random.default_rng(0), dtype=np.float64)
    return T, n, x, lengths, y


def test_adding_shapes_and_dtypes():
    x, lengths, y = adding_problem(5, 40, np.random.default_rng(1))
    assert x.shape == (44, 5, 2) and x.dtype == np.float32
    assert lengths.shape == (5,) and lengths.dtype == np.int64
    assert y.shape == (5,) and y.dtype == np.float32


def test_adding_lengths_uniform_in_range(adding):
    T, n, x, lengths, _ = adding
    assert x.shape[0] == T + T // 10
    assert lengths.min() == T and lengths.max() == T + T // 10
    counts = np.bincount(lengths - T, minlength=T // 10 + 1)  # 11 possible lengths
    expected = n / len(counts)
    assert np.all(np.abs(counts - expected) < 5 * math.sqrt(expected))  # ~5 sigma


def test_adding_markers(adding):
    T, n, x, lengths, _ = adding
    markers = x[..., 1]  # (T_max, n)
    cols = np.arange(n)
    assert set(np.unique(markers)) <= {-1.0, 0.0, 1.0}
    assert np.all((markers == 1.0).sum(axis=0) == 2)  # exactly two marks
    lo, hi = _mark_positions(markers).T
    K = T // 2 - 1
    # One mark among the first ten pairs, the other among the first K unmarked pairs, i.e.
    # positions [0, K] with K itself only reachable when the other mark is below K.
    assert np.all(lo < 10) and np.all(hi <= K)
    # last pair always -1; first pair -1 unless marked; no other -1
    assert np.all(markers[lengths - 1, cols] == -1.0)
    first_marked = markers[0] == 1.0
    assert np.all(markers[0, ~first_marked] == -1.0)
    minus = (markers == -1.0).sum(axis=0)
    assert np.all(minus == np.where(first_marked, 1, 2))
    # Pair 0 is marked when the first mark falls there (1/10) or, otherwise, when the second
    # mark picks it from its K candidates (pair 0 is always one of them).
    p0 = 0.1 + 0.9 * (1 / K)
    assert abs(first_marked.mean() - p0) < 5 * math.sqrt(p0 * (1 - p0) / n)


def test_adding_second_mark_distribution():
    # Small T so the per-position frequencies can be checked: K = 5 candidates for the
    # second mark, among positions 0..5 minus the first mark.
    T, n = 12, 60_000
    x, _, _ = adding_problem(n, T, np.random.default_rng(2), dtype=np.float64)
    markers = x[..., 1]
    K = T // 2 - 1
    # Which mark is "first" is ambiguous once both lie below 10, so check the joint law:
    # P(marks at {a, b}) for a != b. Exact: P(first=a) P(second=b | a) + (a<->b).
    def p_second(b, a):
        cands = [p for p in range(K + 1) if p != a][:K]
        return 1 / K if b in cands else 0.0
    marks = _mark_positions(markers)  # (n, 2) sorted
    assert np.all(marks[:, 1] <= 9)
    pairs = {}
    for a, b in marks.tolist():
        pairs[(a, b)] = pairs.get((a, b), 0) + 1
    for a in range(10):
        for b in range(a + 1, 10):
            p = 0.1 * p_second(b, a) + 0.1 * p_second(a, b)
            got = pairs.get((a, b), 0) / n
            assert abs(got - p) < 5 * math.sqrt(max(p, 1e-9) * (1 - p) / n) + 1e-12, (a, b)


def test_adding_values_target_and_padding(adding):
    T, n, x, lengths, y = adding
    values, markers = x[..., 0], x[..., 1]
    valid = np.arange(x.shape[0])[:, None] < lengths[None, :]  # (T_max, n)
    assert np.all(np.abs(values) <= 1.0)
    assert np.all(x[~valid] == 0.0)  # zero padding past each length
    # values are uniform on [-1, 1]: mean ~0, variance ~1/3
    v = values[valid]
    assert abs(v.mean()) < 0.01 and abs(v.var() - 1 / 3) < 0.01
    # target formula, with X1 = 0 when pair 0 is marked (its value is zeroed in the input)
    assert np.all(values[0, markers[0] == 1.0] == 0.0)
    np.testing.assert_allclose(y, 0.5 + (values * (markers == 1.0)).sum(axis=0) / 4, atol=1e-12)
    assert y.min() >= 0.0 and y.max() <= 1.0


def test_adding_deterministic_given_rng():
    a = adding_problem(8, 30, np.random.default_rng(5))
    b = adding_problem(8, 30, np.random.default_rng(5))
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)


def test_adding_bad_arguments():
    with pytest.raises(ValueError, match="T must be an integer >= 11"):
        adding_problem(4, 10, np.random.default_rng(0))
    with pytest.raises(TypeError, match="Generator"):
        adding_problem(4, 20, 123)
    with pytest.raises(ValueError, match="float32 or float64"):
        adding_problem(4, 20, np.random.default_rng(0), dtype=np.int32)


def test_solved():
    y = np.array([0.5, 0.2, 0.9])
    pred = np.array([0.53, 0.25, 0.9])
    assert solved(pred, y).tolist() == [True, False, True]
    assert solved(pred[:, None], y).tolist() == [True, False, True]
    assert solved(pred, y, tol=0.06).tolist() == [True, True, True]
    with pytest.raises(ValueError, match="shape"):
        solved(pred[:2], y)


# -- copy memory ----------------------------------------------------------------------------

@pytest.mark.parametrize("T", [1, 5, 100])
def test_copy_memory_layout(T):
    n = 300
    x, y = copy_memory(n, T, np.random.default_rng(3))
    assert x.shape == y.shape == (T + 20, n) and x.dtype == y.dtype == np.int64
    symbols = x[:10]
    assert symbols.min() >= 1 and symbols.max() <= 8
    assert np.all(x[10:T + 9] == BLANK)  # T - 1 blanks
    assert np.all(x[T + 9] == DELIMITER)
    assert np.all(x[T + 10:] == BLANK)  # ten blanks while the answer is given
    assert np.all(y[:T + 10] == BLANK)
    np.testing.assert_array_equal(y[T + 10:], symbols)
    assert (x == DELIMITER).sum() == n


def test_copy_memory_symbols_uniform():
    x, _ = copy_memory(20_000, 3, np.random.default_rng(4))
    counts = np.bincount(x[:10].ravel(), minlength=10)
    assert counts[0] == 0 and counts[9] == 0
    expected = x[:10].size / 8
    assert np.all(np.abs(counts[1:9] - expected) < 5 * math.sqrt(expected))


@pytest.mark.parametrize("T", [1, 10, 100, 1000])
def test_copy_memory_baseline_is_memoryless_cross_entropy(T):
    assert copy_memory_baseline(T) == pytest.approx(10 * math.log(8) / (T + 20), rel=1e-15)
    # The memoryless predictor, evaluated on real targets: certain blank for the first
    # T + 10 steps, uniform over the data symbols 1..8 afterwards.
    n = 50
    _, y = copy_memory(n, T, np.random.default_rng(T))
    probs = np.zeros((T + 20, n, 10))
    probs[:T + 10, :, BLANK] = 1.0
    probs[T + 10:, :, 1:9] = 1 / 8
    picked = np.take_along_axis(probs, y[..., None], axis=-1)[..., 0]  # (T+20, n)
    cross_entropy = -np.log(picked).mean()
    assert cross_entropy == pytest.approx(copy_memory_baseline(T), rel=1e-12)
