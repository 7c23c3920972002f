"""1NN-Euclidean and 1NN-DTW: the vectorised DTW against the textbook double loop (full and
banded, unequal lengths, several features), known small cases, and bad input."""

import numpy as np
import pytest

from lstmlab.classify.baselines import (baseline_accuracies, dtw_distances, euclidean_distances,
                                        nearest_neighbour, znormalise)
from lstmlab.classify.data import SequenceSet


def textbook_dtw(a, b, window=None):
    n, m = len(a), len(b)
    w = max(n, m) if window is None else max(window, abs(n - m))
    W = np.full((n + 1, m + 1), np.inf)
    W[0, 0] = 0.0
    for i in range(1, n + 1):
        for j in range(max(1, i - w), min(m, i + w) + 1):
            c = float(np.sum((a[i - 1] - b[j - 1]) ** 2))
            W[i, j] = c + min(W[i - 1, j - 1], W[i - 1, j], W[i, j - 1])
    return W[n, m]


@pytest.mark.parametrize("window", [None, 0, 1, 3])
@pytest.mark.parametrize("D", [1, 3])
def test_dtw_equals_the_textbook_recursion(window, D):
    rng = np.random.default_rng([D, 9 if window is None else window])
    a = [rng.standard_normal((int(rng.integers(1, 9)), D)) for _ in range(4)]
    b = [rng.standard_normal((int(rng.integers(1, 9)), D)) for _ in range(5)]
    got = dtw_distances(a, b, window, block=50)  # a small block: several query blocks
    want = np.array([[textbook_dtw(x, y, window) for y in b] for x in a])
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_dtw_aligns_a_shifted_pattern_that_euclid_does_not():
    bump = np.exp(-0.5 * ((np.arange(30) - 10) / 2.0) ** 2)[:, None]
    shifted = np.roll(bump, 5, axis=0)
    assert dtw_distances([bump], [shifted])[0, 0] < 0.05 * euclidean_distances([bump], [shifted])[0, 0]
    # a band narrower than the shift cannot align it
    assert dtw_distances([bump], [shifted], window=1)[0, 0] > 0.5 * euclidean_distances(
        [bump], [shifted])[0, 0]


def test_window_zero_on_equal_lengths_is_euclidean():
    rng = np.random.default_rng(1)
    a = [rng.standard_normal((7, 2)) for _ in range(3)]
    b = [rng.standard_normal((7, 2)) for _ in range(4)]
    np.testing.assert_allclose(dtw_distances(a, b, window=0), euclidean_distances(a, b),
                               rtol=1e-12)


def test_nearest_neighbour_labels_and_znormalisation():
    t = np.linspace(0, 1, 40)
    up, down = (t[:, None], -t[:, None])
    train = SequenceSet([up, down], ["up", "down"], ["a", "b"], ["x"])
    test = SequenceSet([5 * up + 3, 0.1 * down - 7], ["up", "down"], ["c", "d"], ["x"])
    assert np.allclose(znormalise(5 * up + 3), znormalise(up))
    for metric in ("euclidean", "dtw"):
        assert nearest_neighbour(train, test, metric) == ["up", "down"]
    assert baseline_accuracies(train, test) == {"1nn_euclidean": 1.0, "1nn_dtw": 1.0}


def test_bad_arguments_are_named():
    s = SequenceSet([np.zeros((3, 1))], ["a"], ["0"], ["x"])
    with pytest.raises(ValueError, match="window must be an integer >= 0 or None"):
        dtw_distances(s.x, s.x, window=-1)
    with pytest.raises(ValueError, match="metric must be 'euclidean' or 'dtw'"):
        nearest_neighbour(s, s, "cosine")
