"""The character-level language model: embedding -> stacked RNN/LSTM/GRU -> linear head.

Dimensions: T time, B batch, V vocabulary, E embedding width, H hidden units, L layers.

One named parameter registry (``embed.weight``, ``rnn.Wx_l0``, ..., ``head.weight``,
``head.bias``) serves optimizers, checkpoints and converters. The recurrent state is always
a tuple: ``(h, c)`` for the LSTM, ``(h,)`` for the RNN and the GRU, each ``(L, B, H)``, so
that training and generation carry it the same way for every cell.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._config import check_config, config_from_json, config_json
from .._checks import (as_float_array, finite_float, float_dtype, positive_int, probability,
                       true_or_false)
from .base import Module
from .basic import Dropout, Embedding, Linear
from .recurrent import GRU, LSTM, RNN


REGULARISATION = ("dropout_input", "dropout_recurrent", "zoneout", "weight_drop")


@dataclass(frozen=True)
class CharLMConfig:
    """Everything needed to rebuild a CharLM (stored as JSON in checkpoints)."""

    vocab_size: int  # V, number of distinct characters
    hidden_size: int = 256  # H, units per recurrent layer
    num_layers: int = 2  # L, stacked recurrent layers
    embed_dim: int = 64  # E, width of the character embedding
    cell: str = "lstm"  # "lstm", "rnn" (tanh) or "gru"
    dropout: float = 0.0  # dropout between layers and before the head (training only)
    # Recurrent regularisation of the recurrent layers (training only; ``lstmlab.LSTM``):
    dropout_input: float = 0.0  # variational dropout of each layer's input, a mask per sequence
    dropout_recurrent: float = 0.0  # variational dropout of h_{t-1} in the product (LSTM)
    zoneout: float = 0.0  # units keep their previous h and C with this probability (LSTM)
    weight_drop: float = 0.0  # DropConnect on the recurrent weights Wh, a mask per batch
    forget_bias: float = 1.0  # LSTM forget-gate bias at initialisation
    dtype: str = "float32"  # "float32" or "float64"
    layer_norm: bool = False  # the layer-normalised LSTM (LSTM(layer_norm=True)); LSTM only

    def __post_init__(self):
        for name in ("vocab_size", "hidden_size", "num_layers", "embed_dim"):
            positive_int(getattr(self, name), name)
        if self.cell not in ("lstm", "rnn", "gru"):
            raise ValueError(f"cell must be 'lstm', 'rnn' or 'gru', got {self.cell!r}")
        for name in ("dropout",) + REGULARISATION:
            probability(getattr(self, name), name)
        if self.cell != "lstm" and (self.dropout_recurrent or self.zoneout):
            raise ValueError(f"dropout_recurrent and zoneout are options of the LSTM, not of "
                             f"cell {self.cell!r}")
        if self.dropout_recurrent and self.zoneout:
            raise ValueError(f"dropout_recurrent={self.dropout_recurrent} and "
                             f"zoneout={self.zoneout} both act on the recurrent state: choose "
                             f"one (set the other to 0)")
        finite_float(self.forget_bias, "forget_bias", float_dtype(self.dtype))
        true_or_false(self.layer_norm, "layer_norm", ValueError)  # NumPy's bool too
        if self.layer_norm and self.cell != "lstm":
            raise ValueError(f"layer_norm is an option of the LSTM, not of cell {self.cell!r}")

    def to_json(self) -> dict:
        return config_json(self)

    @classmethod
    def from_json(cls, d: dict) -> "CharLMConfig":
        return config_from_json(cls, d)


class CharLM(Module):
    """Embedding -> RNN/LSTM/GRU stack -> Linear, over time-major token arrays ``(T, B)``."""

    def __init__(self, config: CharLMConfig, rng: np.random.Generator | None = None):
        check_config(config, CharLMConfig, "CharLMConfig(vocab_size=...)")
        super().__init__()
        self.config = config
        dtype = float_dtype(config.dtype)
        self.dtype = dtype
        self.embed = Embedding(config.vocab_size, config.embed_dim, dtype=dtype, rng=rng)
        regularisation = {name: getattr(config, name) for name in REGULARISATION
                          if getattr(config, name)}
        # The recurrent stack drops between its layers only when it has two or more: one
        # layer has none to drop (and would warn that the setting changes nothing), while
        # the model's own dropout acts before the head whatever the number of layers.
        between = config.dropout if config.num_layers > 1 else 0.0
        if config.cell == "lstm":
            self.rnn = LSTM(config.embed_dim, config.hidden_size, config.num_layers,
                            dropout=between, dtype=dtype, rng=rng,
                            forget_bias=config.forget_bias, layer_norm=config.layer_norm,
                            **regularisation)
        else:
            self.rnn = (GRU if config.cell == "gru" else RNN)(
                config.embed_dim, config.hidden_size, config.num_layers, dropout=between,
                dtype=dtype, rng=rng, **regularisation)
        self.drop = Dropout(config.dropout, rng=rng)
        self.head = Linear(config.hidden_size, config.vocab_size, dtype=dtype, rng=rng)
        self._cache = None  # forward's tokens shape: backward needs a forward first

    def children(self):
        return {"embed": self.embed, "rnn": self.rnn, "head": self.head}

    def __repr__(self) -> str:  # also what Jupyter shows for a model
        c = self.config
        cell = "LN-LSTM" if c.layer_norm else c.cell.upper()
        return (f"CharLM({cell} {c.num_layers}x{c.hidden_size}, vocabulary "
                f"{c.vocab_size}, embedding {c.embed_dim}, {self.num_params():,} parameters, "
                f"{c.dtype})")

    def train(self, mode: bool = True):
        super().train(mode)
        self.drop.train(mode)
        return self

    @property
    def is_lstm(self) -> bool:
        return self.config.cell == "lstm"

    def zero_state(self, batch: int) -> tuple[np.ndarray, ...]:
        """The state of zeros for ``batch`` sequences (forward's and step's default)."""
        shape = (self.config.num_layers, positive_int(batch, "batch"), self.config.hidden_size)
        n = 2 if self.is_lstm else 1
        return tuple(np.zeros(shape, self.dtype) for _ in range(n))

    def _state_tuple(self, state, name: str):
        """``state`` as the tuple the layer takes: ``(h, c)`` for the LSTM, ``(h,)`` for the
        RNN and the GRU, or None. A bare array, or another cell's tuple (an LSTM's ``(h, c)``
        given to a GRU), is refused naming ``name``: indexing it would read ``h`` from the
        wrong place, or drop ``c`` without a word."""
        if state is None:
            return None
        n = 2 if self.is_lstm else 1
        if not (isinstance(state, (tuple, list)) and len(state) == n):
            what = "(h, c)" if self.is_lstm else "(h,)"
            got = (f"a {type(state).__name__} of {len(state)}"
                   if isinstance(state, (tuple, list)) else type(state).__name__)
            raise TypeError(f"{name} must be a tuple {what} for cell {self.config.cell!r} "
                            f"(what forward and step return), or None; got {got}")
        return tuple(state)

    def forward(self, tokens, state=None):
        """``tokens (T, B)`` -> ``logits (T, B, V)`` and the final state tuple."""
        tokens = np.asarray(tokens)
        if tokens.ndim != 2 or 0 in tokens.shape:
            raise ValueError(f"tokens must have shape (T, B) with T, B >= 1, got {tokens.shape}")
        state = self._state_tuple(state, "state")
        emb = self.embed.forward(tokens)  # (T, B, E)
        if self.is_lstm:
            y, (h, c) = self.rnn.forward(emb, state)
            final = (h, c)
        else:
            y, h = self.rnn.forward(emb, None if state is None else state[0])
            final = (h,)
        y = self.drop.forward(y)  # (T, B, H)
        logits = self.head.forward(y)  # (T, B, V)
        self._cache = tokens.shape
        return logits, final

    def backward(self, dlogits, dstate=None):
        """Backprop ``dlogits (T, B, V)`` (and optionally the final-state gradients); fills
        every parameter's gradient and returns the initial-state gradient tuple."""
        if self._cache is None:  # the head would name itself, not the model called
            raise RuntimeError("CharLM.backward called before forward: call forward first "
                               "(backward uses what forward saved)")
        dstate = self._state_tuple(dstate, "dstate")
        dy = self.head.backward(dlogits)  # (T, B, H)
        dy = self.drop.backward(dy)
        try:
            if self.is_lstm:
                demb, (dh0, dc0) = self.rnn.backward(dy, dstate)
                dinit = (dh0, dc0)
            else:
                demb, dh0 = self.rnn.backward(dy, None if dstate is None else dstate[0])
                dinit = (dh0,)
        except ValueError as exc:  # the layer's scan of dy names the gradient it was given:
            if str(exc).startswith("dy contains NaN"):  # a non-finite dlogits, named as such
                as_float_array(dlogits, "dlogits", self.dtype)  # (scanned on this path only)
            raise
        self.embed.backward(demb)
        return dinit

    def step(self, token, state=None):
        """One token per sequence ``(B,)`` -> ``logits (B, V)`` and the new state (no cache)."""
        token = self.embed._check_tokens(token)
        if token.ndim != 1 or token.size == 0:
            raise ValueError(f"token must have shape (B,) with B >= 1 (one token per sequence), "
                             f"got {token.shape}")
        state = self._state_tuple(state, "state")
        emb = self.embed.weight[token]  # (B, E)
        if self.is_lstm:
            y, (h, c) = self.rnn.step(emb, state)
            new = (h, c)
        else:
            y, h = self.rnn.step(emb, None if state is None else state[0])
            new = (h,)
        W, b = self.head.weight, self.head.params().get("bias")
        logits = y @ W.T  # (B, V)
        if b is not None:
            logits += b
        return logits, new
