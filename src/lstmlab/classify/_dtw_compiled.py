"""The 1NN-DTW search on compiled loops (numba): the nearest training series of each query
under the DTW of :mod:`lstmlab.classify.baselines`, the same answer as the full distance
matrix, found with much less of it.

Dimensions: Ta, Tb the lengths of a query ``a`` and a training series ``b``, D features.
A band ``w`` admits the cells ``|i - j| <= w`` (callers pass ``max(window, |Ta - Tb|)``, or
``max(Ta, Tb)`` for the full matrix).

Three exact shortcuts (Keogh & Ratanamahatana 2005; Rakthanmanon et al. 2012, the "UCR
suite"), each giving up only work whose result could not be the nearest neighbour:

* **lower bounds** — every warping path goes through the first and the last cell (LB_Kim's
  first-last bound) and visits every row i at least once, in a column of the band, so row i
  costs at least the squared distance of ``a_i`` to the envelope of ``b`` over that band
  (LB_Keogh, per feature: for several features the squared Euclidean cost is at least the
  sum over features of each one's distance to its own envelope);
* **order** — the training series are visited in order of their lower bound, so a near one
  is found early and the rest can be skipped once their bound exceeds the best distance;
* **early abandoning** — the DTW matrix is filled row by row and abandoned as soon as every
  cell of a row exceeds the best distance so far: each later cell, and so the distance,
  adds nonnegative costs to one of them (in floating point too, as rounding is monotone).

A lower bound sums the same costs in another order than the DTW does, so it can exceed the
distance it bounds by rounding (relative ~1e-13 for series of 10⁴ steps); a series is
skipped only when its bound exceeds the best distance by ``SLACK`` (relative), far above that.
Ties go to the first training series, as ``numpy.argmin`` over the full matrix does.
"""

from __future__ import annotations

import numpy as np
from numba import njit

SLACK = 1e-9


@njit(cache=True)
def dtw(a, b, w, limit):
    """DTW of ``a (Ta, D)`` and ``b (Tb, D)`` in the band ``w``, or +inf as soon as a whole row
    exceeds ``limit`` (then the distance exceeds it too)."""
    Ta, Tb, D = a.shape[0], b.shape[0], a.shape[1]
    # prev/cur[j + 1] holds W(i - 1, j) / W(i, j); index 0 is column -1. Row -1 is 0 at
    # column -1 (so that W(0, 0) = c(0, 0)) and +inf elsewhere.
    prev = np.full(Tb + 1, np.inf)  # (Tb + 1,)
    cur = np.full(Tb + 1, np.inf)  # (Tb + 1,)
    prev[0] = 0.0
    for i in range(Ta):
        lo, hi = max(0, i - w), min(Tb - 1, i + w)
        cur[lo] = np.inf  # column lo - 1: outside the band
        row_min = np.inf
        for j in range(lo, hi + 1):
            c = 0.0
            for d in range(D):
                diff = a[i, d] - b[j, d]
                c += diff * diff
            v = c + min(prev[j], prev[j + 1], cur[j])
            cur[j + 1] = v
            row_min = min(row_min, v)
        if hi + 2 <= Tb:
            cur[hi + 2] = np.inf  # the next row's band reaches one column further at most
        if row_min > limit:
            return np.inf
        prev, cur = cur, prev
    return prev[Tb]


@njit(cache=True)
def lower_bound(a, b, w, limit, qmax, qmin):
    """max(LB_Kim first-last, LB_Keogh) of ``dtw(a, b, w)``, or a value above ``limit`` as soon
    as LB_Keogh's partial sum exceeds it. ``qmax``, ``qmin``: int64 work arrays of >= Tb."""
    Ta, Tb, D = a.shape[0], b.shape[0], a.shape[1]
    kim = 0.0
    for d in range(D):
        diff = a[0, d] - b[0, d]
        kim += diff * diff
    if Ta > 1 or Tb > 1:
        for d in range(D):
            diff = a[Ta - 1, d] - b[Tb - 1, d]
            kim += diff * diff
    keogh = 0.0
    for d in range(D):
        # The envelope of b over the columns [i - w, i + w] of row i: a window whose two ends
        # only move right, kept as two monotone queues of column indices (Lemire 2006).
        h_max = t_max = h_min = t_min = 0
        nxt = 0
        for i in range(Ta):
            lo, hi = max(0, i - w), min(Tb - 1, i + w)
            while nxt <= hi:
                v = b[nxt, d]
                while t_max > h_max and b[qmax[t_max - 1], d] <= v:
                    t_max -= 1
                qmax[t_max] = nxt
                t_max += 1
                while t_min > h_min and b[qmin[t_min - 1], d] >= v:
                    t_min -= 1
                qmin[t_min] = nxt
                t_min += 1
                nxt += 1
            while qmax[h_max] < lo:
                h_max += 1
            while qmin[h_min] < lo:
                h_min += 1
            x, upper, lower = a[i, d], b[qmax[h_max], d], b[qmin[h_min], d]
            if x > upper:
                keogh += (x - upper) * (x - upper)
            elif x < lower:
                keogh += (lower - x) * (lower - x)
        if keogh > limit:
            break
    return max(kim, keogh)


@njit(cache=True)
def nearest(qx, qoff, rx, roff, window):
    """For each query ``qx[qoff[k]:qoff[k + 1]]`` the index of its nearest reference
    ``rx[roff[m]:roff[m + 1]]`` under DTW (``window`` < 0: the full matrix) and the distance;
    also the number of DTW computations begun (the rest were skipped by their bound)."""
    nq, nr = qoff.shape[0] - 1, roff.shape[0] - 1
    best_index = np.empty(nq, np.int64)
    best_dist = np.empty(nq)
    begun = 0
    longest = 0
    for m in range(nr):
        longest = max(longest, roff[m + 1] - roff[m])
    qmax = np.empty(longest, np.int64)
    qmin = np.empty(longest, np.int64)
    bounds = np.empty(nr)
    for k in range(nq):
        a = qx[qoff[k]:qoff[k + 1]]
        for m in range(nr):
            b = rx[roff[m]:roff[m + 1]]
            bounds[m] = lower_bound(a, b, _band(a, b, window), np.inf, qmax, qmin)
        order = np.argsort(bounds, kind="mergesort")  # stable: ties in training order
        dist, index = np.inf, nr
        for m in order:
            if bounds[m] > dist * (1.0 + SLACK):
                break  # this bound and every later one exceed the best distance
            b = rx[roff[m]:roff[m + 1]]
            begun += 1
            d = dtw(a, b, _band(a, b, window), dist)
            if d < dist or (d == dist and m < index):
                dist, index = d, m
        best_index[k], best_dist[k] = index, dist
    return best_index, best_dist, begun


@njit(cache=True)
def _band(a, b, window):
    Ta, Tb = a.shape[0], b.shape[0]
    if window < 0:
        return max(Ta, Tb)
    return max(window, abs(Ta - Tb))
