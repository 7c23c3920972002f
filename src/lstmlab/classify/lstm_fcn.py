"""LSTM-FCN (Karim, Majumdar, Darabi & Chen 2018, "LSTM Fully Convolutional Networks for
Time Series Classification"): a fully convolutional branch beside an LSTM branch, their
features concatenated into one softmax layer.

Dimensions: T time (the padded length), B batch, D features per step, H LSTM units, K LSTM
directions (1 or 2), F_1..F_3 filters, C classes.

* **FCN branch** (Wang, Yan & Oates 2017): three blocks of Conv1d ("same" padding) ->
  BatchNorm1d -> ReLU, with F = 128, 256, 128 filters of widths 8, 5, 3 in the paper, then
  the average over each sequence's valid steps -> ``(B, F_3)``.
* **LSTM branch** with the paper's *dimension shuffle*: the LSTM reads the D features as D
  steps of T values each (a univariate series is one step of T inputs), so it sees the whole
  series at once rather than step by step; its final hidden state (both directions when
  bidirectional) goes through dropout (0.8 in the paper) -> ``(B, K·H)``. Because of the
  shuffle the LSTM's input width is a length L fixed at construction (the longest training
  sequence): shorter sequences are zero-padded to it, as in the paper; a longer one (a test
  set may hold some) is linearly resampled to L steps for this branch only.
* **Head**: Linear on the concatenation ``(B, K·H + F_3)`` -> ``(B, C)`` logits.

``lstm_branch=False`` leaves the LSTM branch out: the FCN alone (Wang, Yan & Oates 2017),
the head on ``(B, F_3)``, so that the LSTM branch's share can be measured (the ablation of
Karim et al.) with everything else the same.

Every layer is an lstmlab layer with a hand-derived backward, exact to PyTorch in float64
(the LSTM: tests/test_recurrent_parity.py; the convolutional layers: lstmlab.layers.conv).
The batch-norm running statistics are in the parameter registry with zero gradients, so a
checkpoint or the best epoch's snapshot carries them; AdamW's weight decay would shrink
them too, and the classifier refuses it for this model.

Parameter names: ``conv{1,2,3}.*``, ``bn{1,2,3}.*``, ``lstm.*`` (with the LSTM branch),
``head.*``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from .._config import config_from_json
from .._checks import (as_float_array, as_lengths, float_dtype, positive_int, probability,
                       true_or_false)
from ..layers.base import Module
from ..layers.basic import Dropout, Linear
from ..layers.conv import BatchNorm1d, Conv1d, GlobalAvgPool, ReLU
from ..layers.recurrent import LSTM


@dataclass(frozen=True)
class LSTMFCNConfig:
    """Everything needed to rebuild an LSTMFCN (JSON in checkpoints)."""

    input_size: int  # D
    output_size: int  # C
    length: int  # T, the padded length the LSTM branch reads as its input width
    hidden_size: int = 8  # H, LSTM units (the paper tries 8, 64, 128)
    filters: tuple = (128, 256, 128)  # F_1..F_3
    kernels: tuple = (8, 5, 3)
    lstm_dropout: float = 0.8
    bidirectional: bool = False
    dtype: str = "float32"
    lstm_branch: bool = True  # False: the convolutional branch alone (FCN)

    def __post_init__(self):
        for name in ("input_size", "output_size", "length", "hidden_size"):
            positive_int(getattr(self, name), name)
        for name in ("filters", "kernels"):
            v = tuple(getattr(self, name))
            if len(v) != 3:
                raise ValueError(f"{name} must hold three integers (one per block), got {v!r}")
            for k in v:
                positive_int(k, name)
            object.__setattr__(self, name, v)
        probability(self.lstm_dropout, "lstm_dropout")
        true_or_false(self.lstm_branch, "lstm_branch", ValueError)
        float_dtype(self.dtype)

    def to_json(self) -> dict:
        d = asdict(self)
        d["filters"], d["kernels"] = list(self.filters), list(self.kernels)
        return d

    @classmethod
    def from_json(cls, d: dict) -> "LSTMFCNConfig":
        return config_from_json(cls, d)


def lstmfcn_param_count(config: LSTMFCNConfig) -> int:
    """The parameter count of ``LSTMFCN(config)``, batch-norm running statistics included."""
    widths = (config.input_size,) + config.filters
    n = sum(widths[i + 1] * (widths[i] * config.kernels[i] + 1) for i in range(3))  # convs
    n += 4 * sum(config.filters)  # γ, β, running mean and variance
    K, H = (2 if config.bidirectional else 1), config.hidden_size
    if not config.lstm_branch:
        K = 0
    n += K * 4 * H * (config.length + H + 1)  # Wx, Wh, b per direction
    return n + (K * H + config.filters[2] + 1) * config.output_size  # head


class LSTMFCN(Module):
    """LSTM-FCN (or the FCN alone) over time-major ``x (T, B, D)`` with optional
    ``lengths (B,)`` -> ``(B, C)``."""

    def __init__(self, config: LSTMFCNConfig, rng: np.random.Generator | None = None):
        super().__init__()
        self.config = config
        self.dtype = float_dtype(config.dtype)
        c = config
        widths = (c.input_size,) + c.filters
        self.convs = [Conv1d(widths[i], widths[i + 1], c.kernels[i], dtype=self.dtype, rng=rng)
                      for i in range(3)]
        self.bns = [BatchNorm1d(f, dtype=self.dtype) for f in c.filters]
        self.relus = [ReLU() for _ in range(3)]
        self.pool = GlobalAvgPool()
        self.lstm = self.drop = None
        K = 0  # LSTM directions feeding the head
        if c.lstm_branch:
            self.lstm = LSTM(c.length, c.hidden_size, bidirectional=c.bidirectional,
                             dtype=self.dtype, rng=rng)
            self.drop = Dropout(c.lstm_dropout, rng=rng)
            K = 2 if c.bidirectional else 1
        self.head = Linear(K * c.hidden_size + c.filters[2], c.output_size, dtype=self.dtype,
                           rng=rng)
        self._cache = None

    def children(self):
        out = {f"conv{i + 1}": m for i, m in enumerate(self.convs)}
        out.update({f"bn{i + 1}": m for i, m in enumerate(self.bns)})
        if self.lstm is not None:
            out["lstm"] = self.lstm
        out["head"] = self.head
        return out

    def train(self, mode: bool = True):
        super().train(mode)
        if self.drop is not None:
            self.drop.train(mode)
        return self

    def forward(self, x, lengths=None) -> np.ndarray:
        x = as_float_array(x, "x", self.dtype, ndim=3)
        T, B, D = x.shape
        L = self.config.length
        if D != self.config.input_size:
            raise ValueError(f"x must have {self.config.input_size} feature(s) per step, got "
                             f"shape {x.shape}")
        lengths = as_lengths(lengths, T, B)
        h = x
        for conv, bn, relu in zip(self.convs, self.bns, self.relus):
            h = relu.forward(bn.forward(conv.forward(h)))
        pooled = self.pool.forward(h, lengths)  # (B, F_3)
        if self.lstm is None:
            self._cache = (0, B)
            return self.head.forward(pooled)
        shuffled = np.zeros((D, B, L), self.dtype)  # D steps of L values: the dimension shuffle
        if T <= L:
            shuffled[:, :, :T] = x.transpose(2, 1, 0)
        else:
            n = np.full(B, T) if lengths is None else lengths
            for b in np.flatnonzero(n > L):  # resampled to L steps
                grid = np.linspace(0, n[b] - 1, L)
                shuffled[:, b] = [np.interp(grid, np.arange(n[b]), x[:n[b], b, d]) for d in range(D)]
            short = n <= L  # their steps past L are padding
            shuffled[:, short] = x[:L, short].transpose(2, 1, 0)
        _, (h_n, _) = self.lstm.forward(shuffled)  # h_n (K, B, H)
        K = h_n.shape[0]
        last = self.drop.forward(np.concatenate(list(h_n), axis=1))  # (B, K·H)
        self._cache = (K, B)
        return self.head.forward(np.concatenate([last, pooled], axis=1))

    def backward(self, dout) -> None:
        """Backprop the logits' gradient ``(B, C)``; fills every parameter's gradient."""
        if self._cache is None:
            raise RuntimeError("LSTMFCN.backward called before forward")
        K, B = self._cache
        H = self.config.hidden_size
        dfeats = self.head.backward(dout)  # (B, K·H + F_3)
        if self.lstm is not None:
            dlast = self.drop.backward(dfeats[:, :K * H])
            dh_n = dlast.reshape(B, K, H).transpose(1, 0, 2)  # (K, B, H)
            self.lstm.backward(None, (dh_n, None), input_grad=False)
        dh = self.pool.backward(dfeats[:, K * H:])
        for conv, bn, relu in zip(self.convs[::-1], self.bns[::-1], self.relus[::-1]):
            dh = conv.backward(bn.backward(relu.backward(dh)))

    def predict(self, x, lengths=None, batch_size: int = 256) -> np.ndarray:
        """Logits ``(B, C)`` in eval mode, in batches."""
        was = self.training
        self.eval()
        try:
            x = as_float_array(x, "x", self.dtype, ndim=3)
            outs = []
            for s in range(0, x.shape[1], batch_size):
                ln = None if lengths is None else np.asarray(lengths)[s:s + batch_size]
                outs.append(self.forward(x[:, s:s + batch_size], ln))
            return np.concatenate(outs, axis=0)
        finally:
            self.train(was)
