"""The lecture's claims, measured: numbers the demo prints and the docs quote.

``vanishing_gradients`` is the "so many tanh" slide: a vanilla RNN and LSTMs with several
forget-gate biases, all freshly initialised like PyTorch, read the same random sequence; the
loss sits on the last step only; the table shows how much of its gradient reaches each
earlier step, relative to the last (``||dL/dh_t|| / ||dL/dh_T||``, and the same through the
LSTM's cell state C).
"""

from __future__ import annotations

import numpy as np

from ..layers.recurrent import LSTM, RNN
from .gradflow import gradient_flow

DEFAULT_DISTANCES = (0, 1, 5, 10, 20, 50, 99)


def vanishing_gradients(T: int = 100, batch: int = 32, input_size: int = 32, hidden: int = 64,
                        forget_biases=(0.0, 1.0, 3.0), seed: int = 0,
                        distances=DEFAULT_DISTANCES):
    """Rows ``(model, path, {distance: relative norm})`` in float64.

    ``distance`` k is the step ``T - k``; distances beyond ``T - 1`` are dropped.
    """
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(T, batch, input_size))  # (T, B, D)
    models = [("RNN (tanh)", RNN(input_size, hidden, dtype=np.float64,
                                 rng=np.random.default_rng(seed + 1)))]
    for fb in forget_biases:
        models.append((f"LSTM, forget bias {fb:g}",
                       LSTM(input_size, hidden, dtype=np.float64, forget_bias=fb,
                            rng=np.random.default_rng(seed + 1))))
    ks = [k for k in distances if k < T]
    rows = []
    for name, layer in models:
        for path, rel in gradient_flow(layer, x).decay().items():
            rows.append((name, path, {k: float(rel[T - 1 - k]) for k in ks}))
    return rows, ks
