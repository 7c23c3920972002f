"""The lecture's synthetic long-time-lag tasks: the adding problem and the copy memory task.

Dimensions: T the task's minimal lag (each task defines it), n sequences. Time-major, as
everywhere in lstmlab: inputs are ``(time, n, ...)``.

Both tasks are built so that the only way to beat a trivial predictor is to carry
information across about T steps, which is what the lecture says a vanilla RNN cannot learn
and an LSTM can. Each generator writes down the exact definition it implements, with the
paper it comes from; where the paper leaves a detail open the choice is stated.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from .._checks import as_float_array, float_dtype, generator, positive_int


def _int_at_least(value, minimum: int, name: str, why: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum} ({why}), got {value!r}")
    return int(value)


# -- adding problem -------------------------------------------------------------------------

def adding_problem(n: int, T: int, rng: np.random.Generator, dtype=np.float32
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``n`` sequences of the adding problem: ``(x (T_max, n, 2), lengths (n,), y (n,))``.

    Hochreiter & Schmidhuber (1997), "Long Short-Term Memory", Neural Computation 9(8),
    Section 5.4, Experiment 4. The definition implemented, read from the paper (positions are
    0-based here; ``//`` is integer division, which the paper's T/2 and T/10 need for T not
    a multiple of 10):

    * Each step is a pair ``(value, marker)``; values are uniform in [-1, 1].
    * The length of each sequence is a uniform integer in ``[T, T + T//10]``.
    * Exactly two pairs are marked (marker 1.0). The first is uniform among the first ten
      pairs (positions 0-9); its value is X1. The second is uniform among "the first
      T/2 - 1 still unmarked pairs": the first ``K = T//2 - 1`` positions once the first
      mark's position is taken out, so there are always exactly K candidates, and the
      second mark lies in ``[0, K]`` (position K is a candidate only when the first mark
      is below K). Its value is X2.
    * Every other pair has marker 0.0, except the first and the last pair of the sequence,
      which have marker -1.0. A mark takes precedence: if the first pair is marked its
      marker is 1.0. The last pair is never marked (both marks lie before step T - 1).
    * "In the rare case where the first pair of the sequence gets marked, we set X1 to
      zero." The condition is about pair 0, so whenever pair 0 is marked, by the first
      draw or by the second (pair 0 is always among the second draw's candidates), its
      value is set to 0.0 in the input, and so contributes 0 to the sum; x and y agree.
    * Target: ``y = 0.5 + (X1 + X2) / 4``, the sum scaled into [0, 1]. Only the end of the
      sequence carries an error signal; a sequence counts as solved when the absolute
      error there is below 0.04 (:func:`solved`).

    Output layout: ``x[t, i] = (value, marker)`` for ``t < lengths[i]`` and ``(0, 0)`` after,
    ``T_max = T + T//10``; ``lengths`` is int64 (pass it as the kernels' ``lengths``).
    ``T >= 11`` so that the first ten positions come before the last pair of every
    sequence (the paper uses T = 100, 500, 1000).
    """
    n = positive_int(n, "n")
    T = _int_at_least(T, 11, "T", "the first mark is drawn from the first ten pairs, which "
                                  "must all come before the last pair")
    rng = generator(rng)
    dtype = float_dtype(dtype)
    T_max = T + T // 10
    K = T // 2 - 1  # candidates for the second mark

    lengths = rng.integers(T, T_max + 1, size=n).astype(np.int64)  # (n,) uniform in [T, T_max]
    values = rng.uniform(-1.0, 1.0, size=(T_max, n))  # (T_max, n)
    first = rng.integers(0, 10, size=n)  # (n,)
    # The s-th unmarked position: skipping over the first mark maps s in [0, K) onto the
    # first K positions other than `first`, each with probability 1/K.
    second = rng.integers(0, K, size=n)  # (n,)
    second = second + (second >= first)

    cols = np.arange(n)
    values[0, (first == 0) | (second == 0)] = 0.0  # the paper's rule: a marked pair 0 adds 0
    markers = np.zeros((T_max, n))  # (T_max, n)
    markers[0, :] = -1.0
    markers[lengths - 1, cols] = -1.0
    markers[first, cols] = 1.0  # after the -1s: a mark on pair 0 wins
    markers[second, cols] = 1.0

    y = 0.5 + (values[first, cols] + values[second, cols]) / 4.0  # (n,)

    x = np.stack([values, markers], axis=-1)  # (T_max, n, 2)
    x[np.arange(T_max)[:, None] >= lengths[None, :]] = 0.0  # zero padding past each length
    return x.astype(dtype), lengths, y.astype(dtype)


def solved(pred, y, tol: float = 0.04) -> np.ndarray:
    """Per sequence, whether ``|pred - y| < tol`` (the paper's criterion; bool array (n,)).

    ``pred`` may be ``(n,)`` or ``(n, 1)`` (a one-unit output layer).
    """
    y = as_float_array(y, "y", np.float64, ndim=1)
    pred = as_float_array(pred, "pred", np.float64, ndim=(1, 2))
    if pred.ndim == 2 and pred.shape[1] == 1:
        pred = pred[:, 0]
    if pred.shape != y.shape:
        raise ValueError(f"pred must have shape {y.shape} or ({y.shape[0]}, 1) to match y, "
                         f"got {pred.shape}")
    if isinstance(tol, bool) or not isinstance(tol, numbers.Real) or not tol > 0:
        raise ValueError(f"tol must be a positive number, got {tol!r}")
    return np.abs(pred - y) < tol


# -- copy memory ----------------------------------------------------------------------------

BLANK = 0  # the blank category
DELIMITER = 9  # "now reproduce the ten symbols"
N_CATEGORIES = 10  # token ids 0..9, the size of the input and output vocabulary
N_DATA = 8  # data symbols are 1..8
COPY_LEN = 10  # symbols to remember


def copy_memory(n: int, T: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``n`` sequences of the copy memory task: ``(x (T+20, n), y (T+20, n))`` int64 tokens.

    Arjovsky, Shah & Bengio (2016), "Unitary Evolution Recurrent Neural Networks", ICML,
    Section 4.1 (the task goes back to Hochreiter & Schmidhuber 1997). The definition
    implemented, with 0-based steps:

    * Tokens: ``1..8`` data symbols, ``0`` blank, ``9`` delimiter (10 categories). The paper
      names them a_0..a_7 (data), a_8 (blank), a_9 (delimiter); only the integer labels
      differ from it (these are the ones of the authors' released code).
    * Input ``x`` (length T + 20): steps 0-9 are ten symbols drawn uniformly, independently
      and with replacement from 1..8; steps 10..T+8 are T - 1 blanks; step T+9 is the
      delimiter; steps T+10..T+19 are ten blanks.
    * Target ``y`` (length T + 20): T + 10 blanks, then the ten input symbols in the same
      order. So the symbols must be held for T + 10 steps after the last one is seen.
    * The loss is the cross-entropy per step averaged over all T + 20 steps; a model with no
      memory scores at best :func:`copy_memory_baseline`.
    """
    n = positive_int(n, "n")
    T = positive_int(T, "T")
    rng = generator(rng)
    L = T + 2 * COPY_LEN  # T + 20
    symbols = rng.integers(1, N_DATA + 1, size=(COPY_LEN, n)).astype(np.int64)  # (10, n)
    x = np.full((L, n), BLANK, dtype=np.int64)  # (T+20, n)
    x[:COPY_LEN] = symbols
    x[T + COPY_LEN - 1] = DELIMITER  # after 10 symbols and T-1 blanks
    y = np.full((L, n), BLANK, dtype=np.int64)  # (T+20, n)
    y[T + COPY_LEN:] = symbols
    return x, y


def copy_memory_baseline(T: int) -> float:
    """The memoryless cross-entropy ``10 ln 8 / (T + 20)`` (nats per step).

    Predicting blank with certainty for the first T + 10 steps (loss 0) and a uniform guess
    over the 8 data symbols for the last ten (loss ln 8 each), averaged over T + 20 steps.
    """
    T = positive_int(T, "T")
    return COPY_LEN * math.log(N_DATA) / (T + 2 * COPY_LEN)
