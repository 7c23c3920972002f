"""Gate and cell traces: the lecture's five steps, recorded at every time step.

Dimensions: T time, B batch, D input features, H hidden units, L layers.

For each LSTM layer :func:`record_gates` keeps what the lecture names, step by step::

    forget       f_t  = σ(W_f · [h_{t-1}, x_t] + b_f)      step 1: what to drop from C_{t-1}
    input_gate   i_t  = σ(W_i · [h_{t-1}, x_t] + b_i)      step 2: how much to write ...
    candidate    C̃_t = tanh(W_C · [h_{t-1}, x_t] + b_C)   ... and what
    cell         C_t  = f_t * C_{t-1} + i_t * C̃_t          step 3: the new cell state
    output_gate  o_t  = σ(W_o · [h_{t-1}, x_t] + b_o)      step 4: what to show ...
    hidden       h_t  = o_t * tanh(C_t)                     ... and pass on (step 5)

The numbers are the kernel's own: one run of :func:`lstmlab.kernels.lstm_forward` per layer,
its cache's activated gate blocks (f, i, o, C̃) and its states, nothing recomputed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._checks import as_lengths
from ..kernels import lstm_forward
from ..layers.recurrent import LSTM
from .gradflow import eval_masks, prepare

FIELDS = ("forget", "input_gate", "candidate", "cell", "output_gate", "hidden")
SYMBOLS = {"forget": "f", "input_gate": "i", "candidate": "C̃", "cell": "C",
           "output_gate": "o", "hidden": "h"}


@dataclass
class GateTrace:
    """One LSTM layer's gates and states at every step; each array is ``(T, B, H)``."""

    forget: np.ndarray  # f_t
    input_gate: np.ndarray  # i_t
    candidate: np.ndarray  # C̃_t
    cell: np.ndarray  # C_t
    output_gate: np.ndarray  # o_t
    hidden: np.ndarray  # h_t

    def items(self):
        """``(name, array)`` in the lecture's order."""
        return [(name, getattr(self, name)) for name in FIELDS]

    def sequence(self, b: int) -> "GateTrace":
        """The trace of sequence ``b`` alone, each array ``(T, H)``."""
        return GateTrace(*(getattr(self, name)[:, b] for name in FIELDS))

    def steps(self, start: int, stop: int) -> "GateTrace":
        """Steps ``start`` to ``stop - 1`` only (first axis)."""
        return GateTrace(*(getattr(self, name)[start:stop] for name in FIELDS))


def record_gates(layer: LSTM, x, state=None, lengths=None) -> list[GateTrace]:
    """Run ``layer`` on ``x (T, B, D)`` (time-major) and return one :class:`GateTrace` per
    layer, bottom first. ``state`` is ``(h0, c0)``, each ``(L, B, H)`` (zeros when None).

    With ``lengths``, steps past a sequence's end carry its state unchanged (as the kernel
    does); their gate values are computed but take no part in the state. The states are
    those the layer computes in evaluation: with ``zoneout``, its expectation
    ``p·h_{t-1} + (1-p)·h̃_t`` (C alike), so ``hidden`` is the layer's output.
    """
    if not isinstance(layer, LSTM):
        why = {"RNN": " (a vanilla RNN has no gates)",
               "GRU": " (a GRU's gates are r, z and its candidate n, not the LSTM's; "
                      "lstmlab.explore.analysis.trace_text records them for a character "
                      "model)"}.get(type(layer).__name__, "")
        raise TypeError(f"record_gates needs an lstmlab LSTM, got {type(layer).__name__}{why}")
    x, h0, c0 = prepare(layer, x, state, "record_gates")
    T, B, _ = x.shape
    lengths = as_lengths(lengths, T, B)
    H = layer.hidden_size
    traces, inp = [], x
    for l in range(layer.num_layers):
        y, _, _, cache = lstm_forward(inp, h0[l], c0[l], layer._layer_params(f"l{l}"), lengths,
                                      eval_masks(layer))
        g = cache.gates  # (T, B, 4H) activated blocks f, i, o, C̃
        traces.append(GateTrace(forget=g[:, :, :H].copy(), input_gate=g[:, :, H:2 * H].copy(),
                                candidate=g[:, :, 3 * H:].copy(), cell=cache.c[1:].copy(),
                                output_gate=g[:, :, 2 * H:3 * H].copy(),
                                hidden=cache.h[1:].copy()))
        inp = np.ascontiguousarray(y)
    return traces


def refuse_layer_norm_charlm(model) -> None:
    """The views of ``inspect`` and ``explore`` trace the lecture's LSTM; the gates of a
    layer-normalised one (``lstmlab train --layer-norm``) read normalised products instead."""
    if getattr(model.config, "layer_norm", False):
        raise ValueError("this checkpoint holds a layer-normalised LSTM (trained with "
                         "--layer-norm): its gates read normalised products, which these views "
                         "do not trace; look inside an LSTM trained without --layer-norm")


def record_charlm(model, vocab, text: str, unknown: str = "error") -> list[GateTrace]:
    """Gate traces of a character LSTM (:class:`lstmlab.CharLM`) reading ``text`` from a zero
    state: one trace per layer, each array ``(len(text), 1, H)``."""
    if not model.is_lstm:
        cell = model.config.cell.upper()
        raise ValueError(f"this checkpoint holds {'an' if cell == 'RNN' else 'a'} {cell}: it has "
                         f"no gates or cell state of an LSTM to look at (train one with "
                         f"--model lstm)")
    refuse_layer_norm_charlm(model)
    if not text:
        raise ValueError("the text to inspect is empty")
    ids = vocab.encode(text, unknown=unknown)  # (T,)
    emb = model.embed.weight[ids][:, None, :]  # (T, 1, E)
    return record_gates(model.rnn, emb)
