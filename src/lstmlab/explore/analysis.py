"""What ``lstmlab explore`` shows, computed in NumPy: every unit's gates and states over a text,
the next-character predictions, units ranked by a selection, built-in hypotheses, look-alike
places and gate saturation.

Dimensions: T characters, L layers, H units per layer, V vocabulary, N units compared, W
characters in a window.

A :class:`Trace` holds, for every field a cell has (the LSTM: f, i, o, C̃, C, h; the GRU:
r, z, n, h; any other cell: the parts of its recurrent state, ``h`` first), one ``(L, T, H)`` array: the value
after reading each character. Which fields a layer type has is decided in one place,
:data:`RECORDERS`: the lecture's LSTM records its gates with
:func:`lstmlab.insight.gates.record_gates` (the kernel's own numbers); every other layer is
stepped through :meth:`step`, the streaming API that every recurrent layer of the library
has, and shows its state. A cell that exposes its gates gets them by adding its recorder.

The ranking by selection follows LSTMVis (Strobelt, Gehrmann, Pfister & Rush, IEEE TVCG
2018): which units separate the selected characters from the rest. The hypotheses and the
saturation figure follow Karpathy, Johnson & Fei-Fei (2015, arXiv:1506.02078).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._checks import positive_int, short_repr
from ..insight.gates import record_gates, refuse_layer_norm_charlm
from ..insight.units import correlations, find_units, text_signals
from ..kernels.gru import gru_forward
from ..layers.recurrent import GRU, LSTM
from ..training.losses import softmax

# A gate counts as saturated below LOW or above HIGH (Karpathy et al.'s thresholds).
LOW, HIGH = 0.1, 0.9


@dataclass
class Trace:
    """A character model's insides over ``text``."""

    text: str
    cell: str  # the model's cell ("lstm", "rnn", ...)
    fields: dict[str, np.ndarray]  # symbol -> (L, T, H) in the model's dtype, display order
    gates: tuple[str, ...]  # the fields that are sigmoid gates, in [0, 1]
    probs: np.ndarray  # (T, V) next-character probabilities after each character
    replaced: tuple[str, ...] = ()  # characters not in the vocabulary, read as a replacement

    @property
    def num_layers(self) -> int:
        return next(iter(self.fields.values())).shape[0]

    @property
    def hidden_size(self) -> int:
        return next(iter(self.fields.values())).shape[2]

    def field(self, name: str) -> np.ndarray:
        """The ``(L, T, H)`` array of field ``name``; an unknown name is a ValueError."""
        if name not in self.fields:
            raise ValueError(f"field must be one of {list(self.fields)} for this {self.cell} "
                             f"model, got {short_repr(name)}")
        return self.fields[name]

    def values(self, field: str) -> np.ndarray:
        """``field`` of every unit, ``(T, L*H)``: column ``l*H + u`` is unit ``u`` of layer
        ``l``."""
        a = self.field(field)  # (L, T, H)
        return a.transpose(1, 0, 2).reshape(a.shape[1], -1)

    def unit_values(self, field: str, layer: int, unit: int) -> np.ndarray:
        """``field`` of one unit over the text, ``(T,)``."""
        self.check_unit(layer, unit)
        return self.field(field)[layer, :, unit]

    def check_unit(self, layer, unit) -> None:
        L, H = self.num_layers, self.hidden_size
        if not (_is_int(layer) and 0 <= layer < L):
            raise ValueError(f"layer must be an integer in [0, {L - 1}], got {short_repr(layer)}")
        if not (_is_int(unit) and 0 <= unit < H):
            raise ValueError(f"unit must be an integer in [0, {H - 1}], got {short_repr(unit)}")


def _is_int(x) -> bool:
    return isinstance(x, (int, np.integer)) and not isinstance(x, bool)


# -- recording ------------------------------------------------------------------------------
def _lstm_fields(model, ids):
    """The lecture's LSTM: f, i, o, C̃, C, h per layer, from the kernel's cache."""
    emb = model.embed.weight[ids][:, None, :]  # (T, 1, E)
    traces = record_gates(model.rnn, emb)
    names = {"f": "forget", "i": "input_gate", "o": "output_gate", "C̃": "candidate",
             "C": "cell", "h": "hidden"}
    fields = {sym: np.stack([getattr(tr, name)[:, 0] for tr in traces])
              for sym, name in names.items()}  # each (L, T, H)
    return fields, ("f", "i", "o")


def _gru_fields(model, ids):
    """The GRU: reset r, update z, candidate n and h per layer, from the reference kernel's
    cache (PyTorch's equations: n = tanh(W_in·x + b_in + r * (W_hn·h + b_hn)),
    h = (1 - z) * n + z * h_prev)."""
    inp = model.embed.weight[ids][:, None, :]  # (T, 1, E)
    H = model.rnn.hidden_size
    fields = {"r": [], "z": [], "n": [], "h": []}
    for l in range(model.rnn.num_layers):
        params = model.rnn._layer_params(f"l{l}")
        h0 = np.zeros((1, H), inp.dtype)
        y, _, cache = gru_forward(np.ascontiguousarray(inp), h0, params)
        g = cache.gates[:, 0]  # (T, 4H) r, z, n, W_hn·h + b_hn
        for k, name in enumerate(("r", "z", "n")):
            fields[name].append(g[:, k * H:(k + 1) * H].copy())
        fields["h"].append(cache.h[1:, 0].copy())
        inp = y
    return {k: np.stack(v) for k, v in fields.items()}, ("r", "z")  # each (L, T, H)


def _state_fields(model, ids):
    """Any recurrent layer: its state after each character, stepped with ``model.step`` on the
    NumPy reference kernels (as :func:`record_gates` runs them; a compiled step would first
    spend seconds compiling for a page that reads a few thousand characters)."""
    states, state = [], None
    backend, model.rnn.backend = model.rnn.backend, "numpy"
    try:
        for t in ids:
            _, state = model.step(np.array([t]), state)
            states.append(tuple(np.array(s[:, 0]) for s in state))  # each (L, H)
    finally:
        model.rnn.backend = backend
    names = ["h", "C"] if len(states[0]) == 2 else ["h"] + [f"s{k}" for k in
                                                            range(1, len(states[0]))]
    fields = {name: np.stack([s[k] for s in states], axis=1)  # (L, T, H)
              for k, name in enumerate(names)}
    return fields, ()


# Layer type -> function (model, ids) -> (fields, gate names). Layers not listed show their
# recurrent state (``_state_fields``).
RECORDERS = {LSTM: _lstm_fields, GRU: _gru_fields}


def trace_text(model, vocab, text: str) -> Trace:
    """Read ``text`` with the character model ``model`` (a :class:`lstmlab.CharLM`) from a zero
    state and record every field of every unit, and the next-character probabilities.

    Characters outside the vocabulary are read as its replacement character (U+FFFD, ``?`` or
    a space, whichever it has; :meth:`lstmlab.data.text.Vocab.encode`) and listed in
    ``replaced``; with none of those in the vocabulary they are an error.
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    if not text:
        raise ValueError("the text is empty: type or give at least one character")
    refuse_layer_norm_charlm(model)
    ids = vocab.encode(text, unknown="replace")  # (T,)
    replaced = tuple(sorted({ch for ch in text if ch not in vocab}))
    recorder = RECORDERS.get(type(model.rnn), _state_fields)
    fields, gates = recorder(model, ids)
    top = fields["h"][-1].astype(np.float64)  # (T, H) the last layer's output feeds the head
    W = model.head.weight.astype(np.float64)  # (V, H)
    b = model.head.params().get("bias")
    logits = top @ W.T + (0.0 if b is None else b.astype(np.float64))  # (T, V)
    return Trace(text, model.config.cell, fields, gates, softmax(logits), replaced)


def top_predictions(trace: Trace, vocab, k: int = 5) -> list[list[tuple[str, float]]]:
    """After each character, the ``k`` likeliest next characters and their probabilities."""
    k = min(positive_int(k, "k"), trace.probs.shape[1])
    order = np.argsort(-trace.probs, axis=1, kind="stable")[:, :k]  # (T, k)
    chars = vocab.chars
    return [[(chars[j], float(p[j])) for j in row] for p, row in zip(trace.probs, order)]


# -- ranking units by a selection -----------------------------------------------------------
def spans_mask(T: int, spans) -> np.ndarray:
    """``(T,)`` bool, True on the characters of ``spans`` (pairs ``[start, stop)``)."""
    mask = np.zeros(T, bool)
    for span in spans:
        if (not isinstance(span, (list, tuple)) or len(span) != 2
                or not all(_is_int(x) for x in span) or not 0 <= span[0] < span[1] <= T):
            raise ValueError(f"each span must be [start, stop) with 0 <= start < stop <= {T}, "
                             f"got {short_repr(span)}")
        mask[span[0]:span[1]] = True
    return mask


def _average_ranks(col: np.ndarray) -> np.ndarray:
    """1-based ranks of ``col (T,)``, ties sharing their mean rank."""
    _, inverse, counts = np.unique(col, return_inverse=True, return_counts=True)
    first = np.cumsum(counts) - counts  # rank - 1 of each distinct value's first copy
    return (first + (counts + 1) / 2.0)[inverse]


def separation(values: np.ndarray, selected: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """How well each column of ``values (T, N)`` separates the ``selected (T,)`` steps from the
    rest: the area under the ROC curve (the chance that a selected step's value exceeds an
    unselected one's, ties counting half; from the Mann-Whitney rank sum) and the
    point-biserial correlation. Both ``(N,)``."""
    values = np.asarray(values, np.float64)
    selected = np.asarray(selected, bool)
    n1 = int(selected.sum())
    n0 = len(selected) - n1
    if n1 == 0 or n0 == 0:
        raise ValueError("select some characters, and not all of them: the units are ranked "
                         "by how they separate the selected characters from the others")
    ranks = np.stack([_average_ranks(c) for c in values.T], axis=1)  # (T, N)
    auc = (ranks[selected].sum(axis=0) - n1 * (n1 + 1) / 2.0) / (n1 * n0)
    r = correlations(values, {"selected": selected.astype(np.float64)})[0]
    return auc, r


@dataclass(frozen=True)
class Ranked:
    layer: int
    unit: int
    auc: float  # P(value on a selected character > value on another); 0.5: no separation
    r: float  # point-biserial correlation with the selection


def rank_units(trace: Trace, field: str, spans, top: int = 10) -> list[Ranked]:
    """The ``top`` units whose ``field`` best separates the characters in ``spans`` from the
    rest, by ``|AUC - 0.5|`` (a unit that drops on the selection ranks as high as one that
    rises)."""
    top = positive_int(top, "top")
    values = trace.values(field)  # (T, L*H)
    auc, r = separation(values, spans_mask(len(trace.text), spans))
    order = np.argsort(-np.abs(auc - 0.5), kind="stable")[:top]
    H = trace.hidden_size
    return [Ranked(int(j // H), int(j % H), float(auc[j]), float(r[j])) for j in order]


# -- built-in hypotheses --------------------------------------------------------------------
def hypotheses(trace: Trace, field: str, per_signal: int = 3):
    """For every property of :data:`lstmlab.insight.units.SIGNAL_DOCS` that varies over the
    text, the ``per_signal`` units whose ``field`` follows it best (Pearson's r), as
    :class:`lstmlab.insight.units.UnitMatch` objects."""
    return find_units(list(trace.field(field)), text_signals(trace.text), per_signal=per_signal)


# -- match view -----------------------------------------------------------------------------
MATCH_BLOCK = 1 << 20  # window differences held at once (8 MB of float64)


@dataclass(frozen=True)
class Match:
    start: int  # the window is text[start:start + W]
    distance: float  # root-mean-square difference from the query's values


def match_windows(values: np.ndarray, start: int, stop: int, count: int = 5) -> list[Match]:
    """Places where the units of ``values (T, N)`` behave as they do on ``[start, stop)``: the
    ``count`` windows of the same width with the smallest root-mean-square difference from
    the query, none overlapping the query or each other, closest first.

    Each unit is first standardised over the text (zero mean, unit variance; a constant unit
    becomes 0), so that a cell state that wanders to ±100 does not outweigh a gate that moves
    within [0, 1]: distances are in standard deviations."""
    count = positive_int(count, "count")
    values = np.asarray(values, np.float64)
    std = values.std(axis=0)
    values = (values - values.mean(axis=0)) / np.where(std > 0, std, 1.0)  # (T, N)
    T = values.shape[0]
    if not (_is_int(start) and _is_int(stop) and 0 <= start < stop <= T):
        raise ValueError(f"the query must be [start, stop) with 0 <= start < stop <= {T}, "
                         f"got [{short_repr(start)}, {short_repr(stop)})")
    W = stop - start
    query = values[start:stop].T  # (N, W)
    windows = np.lib.stride_tricks.sliding_window_view(values, W, axis=0)  # (T-W+1, N, W)
    # windows is a view; the differences are made a block of windows at a time, since all
    # at once they take (T-W+1)·N·W numbers: 13 GB for half of 10,000 characters, 64 units
    step = max(1, MATCH_BLOCK // (query.size))
    dist = np.concatenate([np.sqrt(((windows[s:s + step] - query[None]) ** 2).mean(axis=(1, 2)))
                           for s in range(0, len(windows), step)])  # (T-W+1,)
    taken = np.zeros(T, bool)
    taken[start:stop] = True
    out = []
    for s in np.argsort(dist, kind="stable"):
        if taken[s:s + W].any():
            continue
        out.append(Match(int(s), float(dist[s])))
        taken[s:s + W] = True
        if len(out) == count:
            break
    return out


# -- gate saturation ------------------------------------------------------------------------
def saturation(trace: Trace, low: float = LOW, high: float = HIGH
               ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """For every gate, the fraction of characters on which each unit is left-saturated
    (``< low``) and right-saturated (``> high``): two ``(L, H)`` arrays per gate, as
    Karpathy et al.'s figure plots them. Empty for a cell without gates."""
    return {g: ((trace.fields[g] < low).mean(axis=1), (trace.fields[g] > high).mean(axis=1))
            for g in trace.gates}
