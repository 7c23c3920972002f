"""Gradient flow: how much of the loss's gradient reaches each earlier time step.

The lecture's "so many tanh" slide says that in an RNN the gradient reaching step t passes
through T - t factors ``diag(tanh') W``, and shrinks; the LSTM's cell state offers a path
``C_{t-1} -> C_t`` whose factor is just the forget gate ``f_t``. This module measures both:
for a layer and a batch it runs BPTT with the reference kernels and records, for every step,
the total gradient ``dL/dh_t`` (and ``dL/dC_t`` for the LSTM) and its norm.

Dimensions: T time, B batch, D input features, H hidden units, L layers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._checks import as_float_array
from ..kernels import lstm_backward, lstm_forward, rnn_backward, rnn_forward
from ..layers.recurrent import LSTM, RNN


@dataclass
class GradientFlow:
    """Per-step gradient norms; row ``l`` is layer ``l``, column ``t`` is time step ``t``."""

    kind: str  # "lstm" or "rnn"
    dh_norm: np.ndarray  # (L, T) Frobenius norm over (B, H) of dL/dh_t
    dc_norm: np.ndarray | None  # (L, T) same for dL/dC_t (LSTM only)

    def decay(self, layer: int = -1) -> dict[str, np.ndarray]:
        """Norms relative to the last step's, top layer by default: 1 at t = T."""
        out = {"h": self.dh_norm[layer] / self.dh_norm[layer, -1]}
        if self.dc_norm is not None:
            out["C"] = self.dc_norm[layer] / self.dc_norm[layer, -1]
        return out


def gradient_flow(layer, x, dy=None, dhT=None, state=None) -> GradientFlow:
    """Run ``layer`` (unidirectional RNN or LSTM, time-major) on ``x (T, B, D)`` and backprop
    the loss ``sum(dy * y) + sum(dhT * h_T)`` (top layer's output/final hidden state).

    With neither ``dy`` nor ``dhT`` given, the loss is on the last step only:
    ``dhT`` is a fixed random direction of unit norm per sequence (seeded, so reruns agree).
    """
    if not isinstance(layer, (LSTM, RNN)):
        raise TypeError(f"layer must be an lstmlab LSTM or RNN, got {type(layer).__name__}")
    if layer.bidirectional or layer.batch_first:
        raise ValueError("gradient_flow needs a unidirectional, time-major layer "
                         "(bidirectional=False, batch_first=False)")
    x = as_float_array(x, "x", layer.dtype, ndim=3)
    T, B, _ = x.shape
    H, L = layer.hidden_size, layer.num_layers
    is_lstm = isinstance(layer, LSTM)
    if state is None:
        h0 = np.zeros((L, B, H), layer.dtype)
        c0 = np.zeros((L, B, H), layer.dtype)
    elif is_lstm:
        h0, c0 = state
    else:
        h0, c0 = state, None
    if dy is None and dhT is None:
        g = np.random.default_rng(0).normal(size=(B, H))
        dhT = (g / np.linalg.norm(g, axis=1, keepdims=True)).astype(layer.dtype)

    caches, inp = [], x
    for l in range(L):
        p = layer._layer_params(f"l{l}")
        if is_lstm:
            y, _, _, cache = lstm_forward(inp, h0[l], c0[l], p)
        else:
            y, _, cache = rnn_forward(inp, h0[l], p, layer.nonlinearity)
        caches.append(cache)
        inp = y

    dh_norm = np.zeros((L, T))
    dc_norm = np.zeros((L, T)) if is_lstm else None
    dcur = dy
    for l in range(L - 1, -1, -1):
        dh_seq = np.zeros((T, B, H), layer.dtype)  # (T, B, H) dL/dh_t
        top = l == L - 1
        if is_lstm:
            dc_seq = np.zeros((T, B, H), layer.dtype)  # (T, B, H) dL/dC_t
            dx, *_ = lstm_backward(dcur, dhT if top else None, None, caches[l], dh_seq, dc_seq)
            dc_norm[l] = np.sqrt((dc_seq.astype(np.float64) ** 2).sum(axis=(1, 2)))
        else:
            dx, *_ = rnn_backward(dcur, dhT if top else None, caches[l], dh_seq)
        dh_norm[l] = np.sqrt((dh_seq.astype(np.float64) ** 2).sum(axis=(1, 2)))
        dcur = dx
    return GradientFlow("lstm" if is_lstm else "rnn", dh_norm, dc_norm)
