"""1NN-Euclidean and 1NN-DTW: the vectorised DTW against the textbook double loop (full and
banded, unequal lengths, several features), the compiled nearest-neighbour search (lower
bounds, early abandoning) against the full matrix, known small cases, and bad input."""

import numpy as np
import pytest

from lstmlab.classify import _dtw_compiled
from lstmlab.classify.baselines import (baseline_accuracies, dtw_cells, dtw_distances,
                                        euclidean_distances, nearest_dtw, nearest_neighbour,
                                        znormalise)
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


def _random_series(rng, n, D, longest):
    return [rng.standard_normal((int(rng.integers(1, longest + 1)), D)) for _ in range(n)]


@pytest.mark.parametrize("window", [None, 0, 2, 5])
@pytest.mark.parametrize("D", [1, 2])
def test_compiled_search_finds_the_full_matrix_nearest_neighbours(window, D):
    rng = np.random.default_rng([D, 99 if window is None else window])
    for _ in range(6):
        a = _random_series(rng, int(rng.integers(1, 7)), D, 14)
        b = _random_series(rng, int(rng.integers(1, 9)), D, 14)
        # exact ties: a training series twice (the first must win) and a query among them
        b = b[:2] + [b[0].copy(), a[0].copy()] + b[2:]
        full = dtw_distances(a, b, window)
        index, dist = nearest_dtw(a, b, window, compiled=True)
        np.testing.assert_array_equal(index, np.argmin(full, axis=1))
        np.testing.assert_allclose(dist, full.min(axis=1), rtol=1e-12)
        ref_index, ref_dist = nearest_dtw(a, b, window, compiled=False)
        np.testing.assert_array_equal(ref_index, index)
        np.testing.assert_array_equal(ref_dist, full.min(axis=1))


@pytest.mark.parametrize("window", [None, 0, 3])
def test_compiled_distance_bounds_and_early_abandoning(window):
    rng = np.random.default_rng(5)
    a = _random_series(rng, 5, 2, 12)
    b = _random_series(rng, 5, 2, 12)
    full = dtw_distances(a, b, window)
    for x, s in enumerate(a):
        for y, r in enumerate(b):
            band = max(len(s), len(r)) if window is None else max(window, abs(len(s) - len(r)))
            d = _dtw_compiled.dtw(s, r, band, np.inf)
            np.testing.assert_allclose(d, full[x, y], rtol=1e-12)
            work = np.empty(len(r), np.int64), np.empty(len(r), np.int64)
            assert _dtw_compiled.lower_bound(s, r, band, np.inf, *work) <= d * (1 + 1e-12)
            # abandoned (+inf) only when the distance exceeds the limit
            for limit in (2 * d, d, 0.5 * d, 0.0):
                got = _dtw_compiled.dtw(s, r, band, limit)
                assert got == d if d <= limit else got in (d, np.inf)
            assert _dtw_compiled.dtw(s, r, band, -1.0) == np.inf


def test_compiled_search_skips_most_of_the_matrix_on_separated_classes():
    rng = np.random.default_rng(3)
    t = np.linspace(0, 2 * np.pi, 60)
    shapes = [np.sin(t), np.sign(np.sin(t)), np.cos(3 * t)]
    train = [(shapes[k % 3] + 0.1 * rng.standard_normal(60))[:, None] for k in range(30)]
    test = [(shapes[k % 3] + 0.1 * rng.standard_normal(60))[:, None] for k in range(9)]
    off = lambda xs: np.concatenate([[0], np.cumsum([len(s) for s in xs])])  # noqa: E731
    index, _, begun = _dtw_compiled.nearest(np.concatenate(test), off(test), np.concatenate(train),
                                            off(train), 5)
    assert [k % 3 for k in index] == [k % 3 for k in range(9)]
    assert begun < 0.5 * len(test) * len(train)


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
    with pytest.raises(ValueError, match="window must be an integer >= 0 or None"):
        nearest_dtw(s.x, s.x, window=1.5)


@pytest.mark.parametrize("window", [None, 0, 2, 7])
def test_dtw_cells_counts_the_cells_the_recursion_fills(window):
    rng = np.random.default_rng(3)
    la, lb = rng.integers(1, 12, 5), rng.integers(1, 12, 4)

    def filled(n, m):  # the textbook recursion's cells (its band, as textbook_dtw widens it)
        w = max(n, m) if window is None else max(window, abs(n - m))
        return sum(min(m, i + w) - max(1, i - w) + 1 for i in range(1, n + 1))

    want = sum(filled(int(n), int(m)) for n in la for m in lb)
    assert dtw_cells(la, lb, window) >= want  # the band as stored: whole rows of 2w + 1
    assert dtw_cells(la, lb, None) == int(la.sum() * lb.sum())
    assert dtw_cells(la, lb, 0) <= dtw_cells(la, lb, 2) <= dtw_cells(la, lb, None)


@pytest.mark.parametrize("compiled", [True, False])
def test_a_stopped_search_raises_and_the_baselines_leave_it_out(compiled):
    # should_stop is looked at between queries (blocks of them for the reference): a stop
    # request ends a long 1NN-DTW search there, not inside the compiled loop
    from lstmlab.classify.baselines import SearchStopped

    if compiled:
        pytest.importorskip("numba")
    rng = np.random.default_rng(0)
    a = [rng.standard_normal((6, 1)) for _ in range(3)]
    b = [rng.standard_normal((6, 1)) for _ in range(4)]
    asked = []
    with pytest.raises(SearchStopped):
        nearest_dtw(a, b, compiled=compiled, should_stop=lambda: asked.append(1) or True)
    assert len(asked) == 1
    index, _ = nearest_dtw(a, b, compiled=compiled, should_stop=lambda: False)
    np.testing.assert_array_equal(index, np.argmin(dtw_distances(a, b), axis=1))
    train = SequenceSet(b, ["u", "d", "u", "d"], list("abcd"), ["x"])
    test = SequenceSet(a, ["u", "d", "u"], list("efg"), ["x"])
    assert set(baseline_accuracies(train, test, should_stop=lambda: True)) == {"1nn_euclidean"}


def test_znormalisation_reads_the_shape_at_any_amplitude_and_not_rounding_noise():
    # a series of amplitude 1e-200 had a variance that underflowed to 0 and came out as
    # zeros; a constant 0.3 carrying rounding noise of 5.6e-17 came out as a +-1 pattern
    s = np.sin(np.arange(20.0))[:, None]
    for amplitude in (1e-200, 1e-160, 1e150):
        np.testing.assert_allclose(znormalise(s * amplitude), znormalise(s), rtol=1e-12,
                                   atol=1e-12)
    noisy = 0.1 * 3 + np.where(np.arange(20) % 2, 0.0, 5.6e-17)[:, None]
    np.testing.assert_array_equal(znormalise(noisy), 0.0)
    np.testing.assert_array_equal(znormalise(np.full((5, 1), 4.0)), 0.0)
