"""The lecture's claims, measured: numbers the demo prints and the docs quote.

``vanishing_gradients`` is the "so many tanh" slide: a vanilla RNN and LSTMs with several
forget-gate biases, all freshly initialised like PyTorch, read the same random sequence; the
loss sits on the last step only; the table shows how much of its gradient reaches each
earlier step, relative to the last (``||dL/dh_t|| / ||dL/dh_T||``, and the same through the
LSTM's cell state C).

``adding_flow`` measures the same on the adding problem for a fresh or trained network: the
gradient of its prediction with respect to every step's state. ``gate_statistics`` checks
the five steps on a trained adding LSTM: which cells hold the sum, how wide their input gate
opens at the marked pairs and how close their forget gate stays to 1 in between.
"""

from __future__ import annotations

import numpy as np

from ..data.tasks import adding_problem
from ..layers.recurrent import LSTM, RNN
from .gates import record_gates
from .gradflow import gradient_flow, jacobian_norms

DEFAULT_DISTANCES = (0, 1, 5, 10, 20, 50, 99)


def fresh_models(input_size: int, hidden: int, forget_biases=(0.0, 1.0, 3.0), seed: int = 0):
    """``(name, layer)``: a tanh RNN and LSTMs with the given forget biases, float64, all
    drawn from the same seed (PyTorch's initialisation)."""
    models = [("RNN (tanh)", RNN(input_size, hidden, dtype=np.float64,
                                 rng=np.random.default_rng(seed + 1)))]
    for fb in forget_biases:
        models.append((f"LSTM, forget bias {fb:g}",
                       LSTM(input_size, hidden, dtype=np.float64, forget_bias=fb,
                            rng=np.random.default_rng(seed + 1))))
    return models


def flow_at_init(T: int = 100, batch: int = 32, input_size: int = 32, hidden: int = 64,
                 forget_biases=(0.0, 1.0, 3.0), seed: int = 0, probes: int = 8):
    """``(name, GradientFlow, JacobianNorms)`` for every fresh model on one random input."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(T, batch, input_size))  # (T, B, D)
    return [(name, gradient_flow(layer, x),
             jacobian_norms(layer, x, probes=probes, rng=np.random.default_rng(seed + 2)))
            for name, layer in fresh_models(input_size, hidden, forget_biases, seed)]


def vanishing_gradients(T: int = 100, batch: int = 32, input_size: int = 32, hidden: int = 64,
                        forget_biases=(0.0, 1.0, 3.0), seed: int = 0,
                        distances=DEFAULT_DISTANCES, flows=None):
    """Rows ``(model, path, {distance: relative norm})`` in float64, and the distances.

    ``distance`` k is the step ``T - k``; distances beyond ``T - 1`` are dropped. ``flows``:
    the output of :func:`flow_at_init`, to avoid recomputing it (then only ``T`` and
    ``distances`` are used here).
    """
    if flows is None:
        rng = np.random.default_rng(seed)
        x = rng.normal(size=(T, batch, input_size))  # (T, B, D)
        flows = [(name, gradient_flow(layer, x), None)
                 for name, layer in fresh_models(input_size, hidden, forget_biases, seed)]
    ks = [k for k in distances if k < T]
    rows = []
    for name, flow, _ in flows:
        for path, rel in flow.decay().items():
            rows.append((name, path, {k: float(rel[T - 1 - k]) for k in ks}))
    return rows, ks


def adding_exact_length(n: int, T: int, rng: np.random.Generator, dtype=np.float32):
    """``n`` adding-problem sequences whose length is exactly ``T`` (drawn from the task's
    distribution and kept when their length is T): ``(x (T, n, 2), y (n,))``, so that step t
    is the same distance from the end in every sequence."""
    xs, ys, have = [], [], 0
    while have < n:
        x, lengths, y = adding_problem(max(4 * n, 64), T, rng, dtype)
        keep = np.flatnonzero(lengths == T)[: n - have]
        xs.append(x[:T, keep])
        ys.append(y[keep])
        have += len(keep)
    return np.concatenate(xs, axis=1), np.concatenate(ys)


def adding_flow(net, x):
    """Gradient of a SequenceNet's prediction (readout last, one output) with respect to each
    step's state, on ``x (T, B, 2)`` of equal-length sequences: the GradientFlow of its
    recurrent layer with ``dh_T`` = the head's weight row."""
    B = x.shape[1]
    w = net.head.weight[0].astype(net.rnn.dtype)  # (H,) d prediction / d h_T
    return gradient_flow(net.rnn, x, dhT=np.tile(w, (B, 1)))


def gate_statistics(net, T: int, n: int = 200, seed: int = 0, top: int = 4):
    """What the gates of a trained adding-problem LSTM do, on ``n`` fresh sequences.

    For every cell: the correlation over sequences of its final state C_T with the target
    (the "sum" it should hold); the mean input gate i_t and the mean size of what step 2
    writes, |i_t * C̃_t|, at the two marked pairs and at the other pairs; and the mean forget
    gate f_t after the first mark. Returns the ``top`` cells by |correlation| as dicts, best
    first.
    """
    rng = np.random.default_rng([seed, T, 7])
    x, y = adding_exact_length(n, T, rng)
    trace = record_gates(net.rnn, x)[-1]
    marked = x[:, :, 1] == 1.0  # (T, n)
    after = np.cumsum(marked, axis=0) >= 1  # (T, n) at or after the first mark
    cT = trace.cell[-1].astype(np.float64)  # (n, H)
    yc = y - y.mean()
    cc = cT - cT.mean(axis=0)
    denom = np.sqrt((yc ** 2).sum() * (cc ** 2).sum(axis=0))
    r = np.where(denom > 0, (yc @ cc) / np.maximum(denom, 1e-300), 0.0)  # (H,)
    order = np.argsort(-np.abs(r))[:top]
    rows = []
    for u in order:
        i_u, f_u = trace.input_gate[:, :, u], trace.forget[:, :, u]  # (T, n)
        write = np.abs(i_u * trace.candidate[:, :, u])  # (T, n) |i_t * C̃_t|
        rows.append({"unit": int(u), "r": float(r[u]),
                     "input_marked": float(i_u[marked].mean()),
                     "input_other": float(i_u[~marked].mean()),
                     "write_marked": float(write[marked].mean()),
                     "write_other": float(write[~marked].mean()),
                     "forget_after_mark": float(f_u[after & ~marked].mean())})
    return rows
