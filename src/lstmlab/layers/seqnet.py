"""A sequence model for numeric inputs: LSTM, GRU or RNN stack -> linear head, with a readout.

Dimensions: T time, B batch, D input features, H hidden units, O outputs, L layers.

The jobs people bring to an LSTM besides text — regression of a sequence to numbers (the
adding problem, forecasting), labelling a sequence (classification), labelling every step
(the copy task) — differ only in which hidden states reach the head:

* ``readout="last"``: the top layer's state at each sequence's last valid step -> ``(B, O)``
* ``readout="mean"``: the mean of the top layer's outputs over valid steps -> ``(B, O)``
* ``readout="all"``: every step -> ``(T, B, O)``

Names in the parameter registry: ``rnn.*`` and ``head.weight`` / ``head.bias``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._config import check_config, config_from_json, config_json
from .._checks import (as_float_array, as_lengths, finite_float, float_dtype, positive_int,
                       probability)
from .base import Module
from .basic import Linear
from .recurrent import GRU, LSTM, RNN

READOUTS = ("last", "mean", "all")
CELLS = ("lstm", "gru", "rnn")  # the recurrent layer: LSTM, GRU or the tanh RNN


@dataclass(frozen=True)
class SequenceNetConfig:
    """Everything needed to rebuild a SequenceNet (JSON in checkpoints)."""

    input_size: int  # D, features per step
    output_size: int  # O, outputs (regression targets or class logits)
    hidden_size: int = 64  # H
    num_layers: int = 1  # L
    cell: str = "lstm"  # "lstm", "gru" or "rnn" (tanh)
    readout: str = "last"  # "last", "mean" or "all"
    dropout: float = 0.0  # between recurrent layers, training only
    forget_bias: float = 1.0  # LSTM forget-gate bias at initialisation
    dtype: str = "float32"

    def __post_init__(self):
        for name in ("input_size", "output_size", "hidden_size", "num_layers"):
            positive_int(getattr(self, name), name)
        if self.cell not in CELLS:
            raise ValueError(f"cell must be one of {CELLS}, got {self.cell!r}")
        if self.readout not in READOUTS:
            raise ValueError(f"readout must be one of {READOUTS}, got {self.readout!r}")
        probability(self.dropout, "dropout")
        finite_float(self.forget_bias, "forget_bias", float_dtype(self.dtype))

    def to_json(self) -> dict:
        return config_json(self)

    @classmethod
    def from_json(cls, d: dict) -> "SequenceNetConfig":
        return config_from_json(cls, d)


class SequenceNet(Module):
    """LSTM, GRU or RNN over ``x (T, B, D)`` (time-major) and a linear head on the chosen
    readout."""

    def __init__(self, config: SequenceNetConfig, rng: np.random.Generator | None = None):
        check_config(config, SequenceNetConfig,
                     "SequenceNetConfig(input_size=..., output_size=...)")
        super().__init__()
        self.config = config
        self.dtype = float_dtype(config.dtype)
        common = dict(dropout=config.dropout, dtype=self.dtype, rng=rng)
        if config.cell == "lstm":
            self.rnn = LSTM(config.input_size, config.hidden_size, config.num_layers,
                            forget_bias=config.forget_bias, **common)
        else:
            self.rnn = (GRU if config.cell == "gru" else RNN)(
                config.input_size, config.hidden_size, config.num_layers, **common)
        self.head = Linear(config.hidden_size, config.output_size, dtype=self.dtype, rng=rng)
        self._cache = None

    def children(self):
        return {"rnn": self.rnn, "head": self.head}

    def forward(self, x, lengths=None):
        """``x (T, B, D)``, optional ``lengths (B,)`` -> ``(B, O)`` or ``(T, B, O)`` (readout all)."""
        x = as_float_array(x, "x", self.dtype, ndim=3)
        T, B, _ = x.shape
        lengths = as_lengths(lengths, T, B)
        y, _ = self.rnn.forward(x, lengths=lengths)  # (T, B, H), 0 past each length
        readout = self.config.readout
        if readout == "all":
            feats = y
        elif readout == "last":
            last = (lengths - 1) if lengths is not None else np.full(B, T - 1)
            feats = y[last, np.arange(B)]  # (B, H)
        else:
            n = lengths if lengths is not None else np.full(B, T)
            feats = y.sum(axis=0) / n[:, None].astype(self.dtype)  # (B, H) mean over valid steps
        self._cache = (T, B, lengths)
        return self.head.forward(feats)

    def backward(self, dout) -> None:
        """Backprop the gradient of the output; fills every parameter's gradient."""
        if self._cache is None:
            raise RuntimeError("SequenceNet.backward called before forward")
        T, B, lengths = self._cache
        # checked here: the recurrent layer would name the hidden gradient it makes of it, dy
        dout = as_float_array(dout, "dout", self.dtype)
        dfeats = self.head.backward(dout)
        H = self.config.hidden_size
        readout = self.config.readout
        if readout == "all":
            dy = dfeats
        elif readout == "last":
            dy = np.zeros((T, B, H), self.dtype)
            last = (lengths - 1) if lengths is not None else np.full(B, T - 1)
            dy[last, np.arange(B)] = dfeats
        else:
            n = lengths if lengths is not None else np.full(B, T)
            dy = np.broadcast_to(dfeats / n[:, None].astype(self.dtype), (T, B, H)).copy()
            # steps past a length output constant zeros; the layer ignores their gradient
        self.rnn.backward(dy, input_grad=False)  # the input is data: no dx GEMM

    def predict(self, x, lengths=None, batch_size: int = 1024):
        """Forward in eval mode, in batches, without keeping caches between batches.

        ``x`` and ``lengths`` are checked whole before the first batch, so that an error
        names their shapes rather than one batch's."""
        batch_size = positive_int(batch_size, "batch_size")
        was = self.training
        self.eval()
        try:
            x = as_float_array(x, "x", self.dtype, ndim=3)
            T, B, _ = x.shape
            if B == 0:
                raise ValueError(f"x must have at least one sequence, got shape {x.shape}")
            lengths = as_lengths(lengths, T, B)
            outs = []
            for s in range(0, B, batch_size):
                ln = None if lengths is None else lengths[s:s + batch_size]
                outs.append(self.forward(x[:, s:s + batch_size], ln))
            return np.concatenate(outs, axis=-2)
        finally:
            self.train(was)
