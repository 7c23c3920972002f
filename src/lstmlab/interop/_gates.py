"""Gate orders of the outside formats, as permutations of lstmlab's one layout.

lstmlab's LSTM keeps its four gate blocks in the order **f, i, o, C̃** (``kernels/lstm.py``)
and its peephole vectors in the order **f, i, o** (``kernels/lstm_peephole.py``). Every
converter in this package is one of the permutations below applied to those blocks; nothing
else about the layout differs between the formats except transposes and the bias split.

The GRU keeps PyTorch's blocks **r, z, n** (``kernels/gru.py``); Keras and ONNX order them
z, r, n (one swap, its own inverse), and keep the candidate's two biases apart as lstmlab does
(``kernels.gru.gru_bias_split`` / ``gru_bias_join``).

A permutation ``perm`` maps blocks as ``out_block[k] = in_block[perm[k]]``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

# PyTorch orders i, f, g, o and Keras i, f, c, o: the same order, so one permutation.
# It is its own inverse.
TORCH_FROM_OURS = (1, 0, 3, 2)
OURS_FROM_TORCH = TORCH_FROM_OURS
KERAS_FROM_OURS = TORCH_FROM_OURS
OURS_FROM_KERAS = TORCH_FROM_OURS

# ONNX orders i, o, f, c; its peepholes i, o, f.
ONNX_FROM_OURS = (1, 2, 0, 3)
OURS_FROM_ONNX = (2, 0, 1, 3)
ONNX_P_FROM_OURS = (1, 2, 0)
OURS_P_FROM_ONNX = (2, 0, 1)

# The GRU: Keras and ONNX order z, r, n (lstmlab and PyTorch r, z, n).
GRU_SWAP_RZ = (1, 0, 2)


def permute_blocks(a: np.ndarray, perm, axis: int = 0) -> np.ndarray:
    """Reorder the ``len(perm)`` equal blocks of ``a`` along ``axis`` (a new array)."""
    if len(perm) == 1:
        return np.array(a, copy=True)
    blocks = np.split(np.asarray(a), len(perm), axis=axis)
    return np.concatenate([blocks[k] for k in perm], axis=axis)


def direction_suffixes(layer) -> list[list[str]]:
    """``[[l0], [l1], ...]`` or ``[[l0, l0_reverse], ...]``: the parameter suffixes of each
    layer of a stacked recurrent layer, forward direction first."""
    out = []
    for l in range(layer.num_layers):
        out.append([f"l{l}"] + ([f"l{l}_reverse"] if layer.bidirectional else []))
    return out


# What the converters that take the basic layers too accept, for their TypeError.
RECURRENT_OR_BASIC = "an lstmlab LSTM, RNN, GRU, Embedding or Linear"


def kind_of(layer, accepted: str = "an lstmlab LSTM, RNN or GRU layer") -> str:
    """``"LSTM"``, ``"RNN"`` or ``"GRU"`` for an lstmlab recurrent layer; a TypeError
    otherwise, saying what the caller takes (``accepted``)."""
    from ..layers import GRU, LSTM, RNN
    for cls in (LSTM, RNN, GRU):
        if isinstance(layer, cls):
            return cls.__name__
    raise TypeError(f"expected {accepted}, got {type(layer).__name__}")


def has_variant(layer) -> bool:
    """True for an LSTM with peepholes, clip or coupled input-forget gate (ONNX-only options)."""
    return bool(getattr(layer, "peephole", False) or getattr(layer, "clip", None) is not None
                or getattr(layer, "input_forget", False))


def refuse_projection(layer, fmt: str, writing: bool = True) -> None:
    """A clear error for an LSTM with ``proj_size`` in a format whose LSTM has none, and,
    when ``writing`` the layer out, for zoneout, whose evaluation (h_t = p·h_{t-1} +
    (1-p)·h̃_t, the same for C) no format's LSTM computes. The other recurrent
    regularisations act in training only: the exported inference graph is the plain
    layer's. Weights loaded into a layer with zoneout (``writing=False``) are the user's
    choice of lstmlab layer, as :func:`load_torch_state_dict` takes them."""
    if getattr(layer, "proj_size", 0):
        raise ValueError(f"{fmt}'s LSTM has no projection: an LSTM with proj_size="
                         f"{layer.proj_size} cannot be {_moved(fmt, writing)} (PyTorch's has "
                         f"one)")
    if writing and getattr(layer, "zoneout", 0):
        raise ValueError(f"{fmt}'s LSTM has no zoneout: a layer with zoneout={layer.zoneout} "
                         f"evaluates h_t = p·h_{{t-1}} + (1-p)·h̃_t (and C_t alike), which {fmt} "
                         f"cannot express; export a layer with zoneout=0")


def refuse_layer_norm(layer, fmt: str, writing: bool = True) -> None:
    """A clear error for a layer-normalised LSTM in a format whose LSTM has no layer norm
    (``writing`` the layer out, or loading the format's weights into it)."""
    if getattr(layer, "layer_norm", False):
        raise ValueError(f"{fmt}'s LSTM has no layer normalisation: an LSTM with "
                         f"layer_norm=True cannot be {_moved(fmt, writing)}")


def _moved(fmt: str, writing: bool) -> str:
    """How a refused layer would have moved: ``written as Keras`` or ``loaded from Keras``."""
    return f"written as {fmt}" if writing else f"loaded from {fmt}"


def check_chain(embedding, rnn, head, names: tuple[str, str] = ("embedding", "head")) -> None:
    """Embedding -> recurrent layer -> head must fit together (either end may be None): a
    clear error naming the sizes, before a format is asked to hold pieces that do not chain.
    An end that is not an Embedding or a Linear is a TypeError naming it as the caller's
    argument (``names``)."""
    from ..layers.basic import Embedding, Linear
    for name, piece, cls in zip(names, (embedding, head), (Embedding, Linear)):
        if piece is not None and not isinstance(piece, cls):
            raise TypeError(f"{name} must be an lstmlab {cls.__name__} or None, got "
                            f"{type(piece).__name__}")
    if embedding is not None and embedding.embedding_dim != rnn.input_size:
        raise ValueError(f"embedding width {embedding.embedding_dim} != the recurrent layer's "
                         f"input_size {rnn.input_size}")
    width = rnn.num_directions * rnn.hidden_size
    if head is not None and head.in_features != width:
        raise ValueError(f"head in_features {head.in_features} != the recurrent layer's "
                         f"output width {width}")


def check_vocabulary(embedding, head, vocab=None) -> None:
    """A char-LM's pieces must agree on the vocabulary size V (any of them may be None):
    ``vocab`` (the tokens in order) has one entry per embedding row, and the head has one
    output per token (V is ``len(vocab)``, else the embedding's rows). The logits score token
    i at position i, so a reader decodes argmax i as token i: a head of another width scores
    tokens that do not exist or leaves some out."""
    if vocab is not None and embedding is not None and len(vocab) != embedding.num_embeddings:
        raise ValueError(f"vocab has {len(vocab)} entries but the embedding has "
                         f"{embedding.num_embeddings} rows")
    tokens = len(vocab) if vocab is not None else getattr(embedding, "num_embeddings", None)
    if head is not None and tokens is not None and head.out_features != tokens:
        held = (f"vocab has {tokens} entries" if vocab is not None else
                f"the embedding has {tokens} rows (its vocabulary)")
        raise ValueError(f"head has {head.out_features} outputs but {held}; the logits need "
                         f"one output per token")


def output_path(path, name: str = "path") -> Path:
    """``path`` (a str or os.PathLike naming a file) as a Path; else a TypeError or ValueError
    naming ``name``, before a writer builds anything or opens a file called ``5``."""
    if not isinstance(path, (str, os.PathLike)) or isinstance(path, bytes):
        raise TypeError(f"{name} must be a file name (str or os.PathLike), got "
                        f"{type(path).__name__}")
    out = Path(path)
    if not str(path) or out.name in ("", ".", ".."):
        raise ValueError(f"{name} must name a file, got {str(path)!r}")
    return out
