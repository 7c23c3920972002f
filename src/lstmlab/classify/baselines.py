"""The references every time-series-classification result is read against: one nearest
neighbour under the Euclidean distance (1NN-ED) and under dynamic time warping (1NN-DTW).

Dimensions: n sequences, T_i the length of sequence i, D features per step.

Both z-normalise each series (per feature, over its own steps; a constant feature becomes 0),
the UCR convention, unless told not to.

* **Euclidean**: ``Σ_t ||a_t - b_t||²`` over the common padded length: sequences of
  different lengths are zero-padded to the longest (after z-normalisation), so a shorter
  sequence counts as 0 past its end.
* **DTW** (dependent, for D > 1: one warping path for all features): with
  ``c(i, j) = ||a_i - b_j||²``, ``W(i, j) = c(i, j) + min(W(i-1, j-1), W(i-1, j), W(i, j-1))``,
  ``W(0, 0) = c(0, 0)``, and the distance ``W(T_a - 1, T_b - 1)``. ``window = w`` is the
  Sakoe-Chiba band: only cells with ``|i - j| <= w`` (widened to ``|T_a - T_b|`` for a pair of
  different lengths, so a path exists); None is the full matrix. The cells are filled one
  anti-diagonal ``i + j = k`` at a time, for many pairs at once, so the Python loop runs
  ``T_a + T_b - 1`` times per block of pairs.

The nearest neighbour's label is the prediction; of equally near neighbours the first in
the training order wins. :func:`dtw_distances` fills the whole matrix in NumPy, the
reference; :func:`nearest_dtw` finds the same neighbours on compiled loops that skip most of
it (lower bounds and early abandoning, :mod:`lstmlab.classify._dtw_compiled`), and falls back
to the reference without numba or with ``LSTMLAB_FAST=0``.
"""

from __future__ import annotations

import functools
import os

import numpy as np

from .._scaling import CONSTANT
from .data import SequenceDataError, SequenceSet


def znormalise(x: np.ndarray) -> np.ndarray:
    """One series ``(T, D)`` scaled to mean 0 and standard deviation 1 per feature.

    Each feature is first divided by a power of two near its largest magnitude, so the
    variance neither underflows (a series of amplitude 1e-200 would read as constant) nor
    overflows; a feature whose spread is below ``CONSTANT`` of its magnitude (rounding
    noise on a constant) becomes zeros, as an exactly constant one does, rather than that
    noise blown up to unit variance."""
    x = np.asarray(x, np.float64)
    top = np.max(np.abs(x), axis=0) if len(x) else np.zeros(x.shape[1:])  # (D,)
    scale = np.ldexp(1.0, np.frexp(np.where(top > 0, top, 1.0))[1])  # (D,) powers of two
    z = x / scale
    mu, sd = z.mean(axis=0), z.std(axis=0)
    flat = sd <= CONSTANT * np.max(np.abs(z), axis=0, initial=0.0)  # (D,)
    return np.where(flat, 0.0, (z - mu) / np.where(flat, 1.0, sd))


def _prepared(data: SequenceSet, znorm: bool) -> list[np.ndarray]:
    return [znormalise(s) if znorm else np.asarray(s, np.float64) for s in data.x]


def _padded(series: list[np.ndarray], T: int) -> np.ndarray:
    out = np.zeros((len(series), T, series[0].shape[1]))  # (n, T, D)
    for i, s in enumerate(series):
        out[i, :len(s)] = s
    return out


def euclidean_distances(a: list[np.ndarray], b: list[np.ndarray]) -> np.ndarray:
    """``(len(a), len(b))`` squared Euclidean distances of zero-padded ``(T_i, D)`` series."""
    T = max(max(len(s) for s in a), max(len(s) for s in b))
    A = _padded(a, T).reshape(len(a), -1)  # (nA, T·D)
    B = _padded(b, T).reshape(len(b), -1)  # (nB, T·D)
    d = (A * A).sum(1)[:, None] + (B * B).sum(1)[None, :] - 2.0 * A @ B.T
    return np.maximum(d, 0.0)


def dtw_cells(a_lengths, b_lengths, window: int | None = None) -> int:
    """The cells of every DTW table between sequences of ``a_lengths`` and ``b_lengths``:
    exact without a band, else at most 2w + 1 per row (w: ``window`` widened to the length
    difference). The work of :func:`dtw_distances`, which grows with the square of the
    length without a band."""
    la = np.asarray(a_lengths, np.int64)[:, None]
    lb = np.asarray(b_lengths, np.int64)[None, :]
    if window is None:
        return int((la * lb).sum())
    band = np.maximum(window, np.abs(la - lb))
    return int((la * np.minimum(lb, 2 * band + 1)).sum())


DTW_BLOCK = 4_000_000  # cells of one anti-diagonal buffer of the reference


def dtw_distances(a: list[np.ndarray], b: list[np.ndarray], window: int | None = None,
                  block: int = DTW_BLOCK) -> np.ndarray:
    """``(len(a), len(b))`` DTW distances (see the module docstring); ``block`` bounds the
    number of cells of one anti-diagonal buffer (pairs × T), i.e. the memory."""
    _check_window(window)
    la = np.array([len(s) for s in a])
    lb = np.array([len(s) for s in b])
    Ta, Tb = int(la.max()), int(lb.max())
    A, B = _padded(a, Ta), _padded(b, Tb)  # (nA, Ta, D), (nB, Tb, D)
    out = np.empty((len(a), len(b)))
    rows = _rows_per_block(len(b), Ta, block)
    for s in range(0, len(a), rows):
        out[s:s + rows] = _dtw_block(A[s:s + rows], B, la[s:s + rows], lb, window)
    return out


def _rows_per_block(references: int, Ta: int, block: int = DTW_BLOCK) -> int:
    """Queries of up to ``Ta`` steps whose anti-diagonal buffers against ``references``
    series hold at most ``block`` cells together (at least one)."""
    return max(1, block // (references * (Ta + 1)))


def _dtw_block(A, B, la, lb, window) -> np.ndarray:
    """DTW of every query in ``A (q, Ta, D)`` against every reference in ``B (r, Tb, D)``."""
    q, Ta, _ = A.shape
    r, Tb, _ = B.shape
    Brev = B[:, ::-1]  # column j = k - i of diagonal k is Brev[Tb - 1 - k + i]: ascending in i
    band = None
    if window is not None:
        band = np.maximum(window, np.abs(la[:, None] - lb[None, :]))[:, :, None]  # (q, r, 1)
    end = la[:, None] + lb[None, :] - 2  # (q, r) the diagonal of each pair's last cell
    result = np.empty((q, r))
    # Diagonal k is stored by row i at index i + 1 of one of three rotating buffers. Index 0
    # stays +inf (the cells with i < 0); every index that diagonal k + 1 or k + 2 reads was
    # either written by diagonal k or k - 1, or is still +inf from the start (the cells with
    # j < 0 and those beyond the last row), so no buffer needs resetting.
    bufs = [np.full((q, r, Ta + 1), np.inf) for _ in range(3)]
    for k in range(Ta + Tb - 1):
        i0, i1 = max(0, k - Tb + 1), min(k, Ta - 1)  # rows on this diagonal
        prev2, prev1, cur = bufs[(k - 2) % 3], bufs[(k - 1) % 3], bufs[k % 3]
        jrev = Tb - 1 - k + i0
        diff = A[:, None, i0:i1 + 1, :] - Brev[None, :, jrev:jrev + i1 - i0 + 1, :]
        cell = cur[:, :, i0 + 1:i1 + 2]  # (q, r, n) a view
        if diff.shape[3] == 1:
            np.square(diff[..., 0], out=cell)
        else:
            np.einsum("qrnd,qrnd->qrn", diff, diff, out=cell)
        if k > 0:
            cell += np.minimum(np.minimum(prev2[:, :, i0:i1 + 1], prev1[:, :, i0:i1 + 1]),
                               prev1[:, :, i0 + 1:i1 + 2])
        if band is not None:
            rows = np.arange(i0, i1 + 1)
            cell[np.broadcast_to(np.abs(2 * rows - k) > band, cell.shape)] = np.inf
        done = end == k
        if done.any():
            qi, ri = np.nonzero(done)
            result[qi, ri] = cur[qi, ri, la[qi]]
    return result


@functools.cache
def _compiled():
    """The compiled search, or None without numba or with ``LSTMLAB_FAST=0`` (the switch of
    the compiled kernels, which puts everything on the NumPy reference)."""
    if os.environ.get("LSTMLAB_FAST", "1") == "0":
        return None
    try:
        from . import _dtw_compiled
    except ImportError:
        return None
    return _dtw_compiled


def _check_window(window) -> None:
    if window is not None and (isinstance(window, bool) or not isinstance(window, (int, np.integer))
                               or window < 0):
        raise ValueError(f"window must be an integer >= 0 or None, got {window!r}")


class SearchStopped(Exception):
    """A nearest-neighbour search stopped by its ``should_stop`` before it finished."""


def nearest_dtw(a: list[np.ndarray], b: list[np.ndarray], window: int | None = None,
                compiled: bool | None = None,
                should_stop=None) -> tuple[np.ndarray, np.ndarray]:
    """For each series of ``a`` the index of its nearest series in ``b`` under DTW (``window``
    as in :func:`dtw_distances`; ties to the lowest index) and that distance: the row-wise
    argmin and min of ``dtw_distances(a, b, window)``. ``compiled``: None uses the compiled
    search when it is available, True requires it, False uses the reference.

    ``should_stop`` (a function of no arguments) is called before each query of the compiled
    search, and before each block of the reference's; when it returns true the search raises
    :class:`SearchStopped`. So Ctrl-C stops a search of minutes within a fraction of a
    second, and never while the compiled loop runs (an exception that a signal handler raises
    in there can crash the interpreter).
    """
    _check_window(window)
    fast = _compiled() if compiled is not False else None
    if compiled and fast is None:
        raise RuntimeError("the compiled DTW search needs numba (and LSTMLAB_FAST not 0)")
    index, dist = np.empty(len(a), np.int64), np.empty(len(a))
    if fast is not None:
        qx = np.concatenate(a).astype(np.float64)
        qoff = np.concatenate([[0], np.cumsum([len(s) for s in a])])  # (len(a) + 1,)
        rx = np.concatenate(b).astype(np.float64)
        roff = np.concatenate([[0], np.cumsum([len(s) for s in b])])  # (len(b) + 1,)
    rows = 1 if fast is not None else _rows_per_block(len(b), max(len(s) for s in a))
    for s in range(0, len(a), rows):
        if should_stop is not None and should_stop():
            raise SearchStopped(f"stopped after {s} of {len(a)} queries")
        e = min(s + rows, len(a))
        if fast is None:
            d = dtw_distances(a[s:e], b, window)
            index[s:e] = np.argmin(d, axis=1)
            dist[s:e] = d[np.arange(e - s), index[s:e]]
        else:
            index[s:e], dist[s:e], _ = fast.nearest(qx[qoff[s]:qoff[e]], qoff[s:e + 1] - qoff[s],
                                                    rx, roff, -1 if window is None else int(window))
    return index, dist


def nearest_neighbour(train: SequenceSet, test: SequenceSet, metric: str = "dtw",
                      window: int | None = None, znorm: bool = True,
                      should_stop=None) -> list[str]:
    """The label of each test sequence's nearest training sequence under ``metric``
    (``"euclidean"`` or ``"dtw"``); ``should_stop`` as in :func:`nearest_dtw`."""
    if train.labels is None:
        raise SequenceDataError("the nearest-neighbour baseline needs labelled training data")
    if train.num_features != test.num_features:
        raise SequenceDataError(f"the training data has {train.num_features} feature(s) per "
                                f"step, the test data {test.num_features}")
    a, b = _prepared(test, znorm), _prepared(train, znorm)
    if metric == "euclidean":
        index = np.argmin(euclidean_distances(a, b), axis=1)
    elif metric == "dtw":
        index, _ = nearest_dtw(a, b, window, should_stop=should_stop)
    else:
        raise ValueError(f"metric must be 'euclidean' or 'dtw', got {metric!r}")
    return [train.labels[k] for k in index]


def baseline_accuracies(train: SequenceSet, test: SequenceSet, window: int | None = None,
                        znorm: bool = True, should_stop=None) -> dict[str, float]:
    """Test accuracy of 1NN-ED and 1NN-DTW (``window`` as in :func:`dtw_distances`).

    ``should_stop`` (a function of no arguments) is looked at between blocks of the DTW
    search; a search it stops is left out of the result, so a stopped run still reports the
    baselines it finished."""
    truth = np.asarray(test.labels)
    out = {}
    for name, metric in (("1nn_euclidean", "euclidean"), ("1nn_dtw", "dtw")):
        try:
            pred = nearest_neighbour(train, test, metric, window, znorm, should_stop)
        except SearchStopped:
            break
        out[name] = float(np.mean(np.asarray(pred) == truth))
    return out
