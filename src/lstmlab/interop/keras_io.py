"""Keras weight arrays, both ways, without Keras.

Keras stores a recurrent layer as the list ``layer.get_weights()`` returns, and takes the same
list in ``layer.set_weights(...)``::

    keras.layers.LSTM       [kernel (D, 4H), recurrent_kernel (H, 4H), bias (4H,)]  gates i, f, c, o
    keras.layers.SimpleRNN  [kernel (D, H),  recurrent_kernel (H, H),  bias (H,)]
    keras.layers.GRU        [kernel (D, 3H), recurrent_kernel (H, 3H), bias (2, 3H)]  gates z, r, h
                            (reset_after=True, the Keras 3 default: bias[0] input, bias[1]
                            recurrent; lstmlab's b_r, b_z sum the two, b_in and b_hn are them)
    Bidirectional(...)      forward layer's list followed by the backward layer's
    use_bias=False          the same lists without the bias

``kernel`` and ``recurrent_kernel`` already act on row vectors, as lstmlab's ``Wx`` and
``Wh`` do, so the conversion is only the gate order (lstmlab: f, i, o, C̃; GRU r, z, n) — and
a Keras LSTM has one bias, like lstmlab. A stacked lstmlab layer corresponds to a stack of Keras
layers: the functions here take and return one list per lstmlab layer level.

The Keras layers must compute what lstmlab computes: ``activation="tanh"`` (or ``"relu"`` for
a SimpleRNN to match ``nonlinearity="relu"``), ``recurrent_activation="sigmoid"`` (the
Keras 3 default), no recurrent dropout at inference. Keras is batch-major (``(B, T, D)``):
build the lstmlab layer with ``batch_first=True`` to feed it the same arrays, and pass
initial states as ``initial_state=[h, c]`` per Keras layer (``h_0[l*K + d]`` in lstmlab).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .._checks import as_float_array, as_numpy
from ..kernels.gru import gru_bias_join, gru_bias_split
from ._gates import (GRU_SWAP_RZ, KERAS_FROM_OURS, OURS_FROM_KERAS, RECURRENT_OR_BASIC,
                     check_chain, check_vocabulary, direction_suffixes, has_variant, kind_of,
                     output_path, permute_blocks, refuse_layer_norm, refuse_projection)

__all__ = ["to_keras_weights", "load_keras_weights", "from_keras_weights"]


def _perm(layer_kind: str, to_keras: bool):
    if layer_kind == "GRU":
        return GRU_SWAP_RZ
    if layer_kind != "LSTM":
        return (0,)
    return KERAS_FROM_OURS if to_keras else OURS_FROM_KERAS


def _bias_to_keras(kind: str, b: np.ndarray, perm) -> np.ndarray:
    """The Keras bias of one direction: (G·H,), or the GRU's (2, 3H) input and recurrent rows."""
    if kind == "GRU":
        return np.stack([permute_blocks(part, perm) for part in gru_bias_split(b)])
    return permute_blocks(b, perm, axis=0)


def _bias_from_keras(kind: str, a: np.ndarray, perm) -> np.ndarray:
    if kind == "GRU":
        return gru_bias_join(permute_blocks(a[0], perm), permute_blocks(a[1], perm))
    return permute_blocks(a, perm, axis=0)


def to_keras_weights(module) -> list:
    """Keras weight lists for an lstmlab layer.

    For ``LSTM`` / ``RNN`` / ``GRU``: a list with one entry per layer level, each the list that
    ``keras.layers.LSTM`` / ``SimpleRNN`` / ``GRU`` (or ``Bidirectional`` of it) takes in
    ``set_weights``. For ``Embedding``: ``[embeddings (V, E)]``; for ``Linear``: the
    ``keras.layers.Dense`` list ``[kernel (D, O), bias (O,)]``.
    """
    from ..layers.basic import Embedding, Linear
    if isinstance(module, Embedding):
        return [module.params()["weight"].copy()]
    if isinstance(module, Linear):
        p = module.params()
        return [p["weight"].T.copy()] + ([p["bias"].copy()] if "bias" in p else [])
    kind = kind_of(module, RECURRENT_OR_BASIC)
    refuse_projection(module, "Keras")
    refuse_layer_norm(module, "Keras")
    if has_variant(module):
        raise ValueError("Keras's LSTM has no peephole, clip or input_forget: this layer cannot "
                         "be written as Keras weights (ONNX export keeps them)")
    perm = _perm(kind, to_keras=True)
    p = module.params()
    out = []
    for suffixes in direction_suffixes(module):
        level = []
        for s in suffixes:
            level.append(permute_blocks(p[f"Wx_{s}"], perm, axis=1))  # kernel (D, G*H)
            level.append(permute_blocks(p[f"Wh_{s}"], perm, axis=1))  # recurrent_kernel (H, G*H)
            if module.bias:
                level.append(_bias_to_keras(kind, p[f"b_{s}"], perm))  # bias (G*H,) or (2, 3H)
        out.append(level)
    return out


def load_keras_weights(module, weights: Sequence) -> None:
    """Copy Keras weight lists (the format of :func:`to_keras_weights`) into ``module``."""
    from ..layers.basic import Embedding, Linear
    _check_list(weights, "weights")
    if isinstance(module, Embedding):
        if len(weights) != 1:
            raise ValueError(f"an Embedding layer has 1 weight array (embeddings), got "
                             f"{len(weights)}")
        want = (module.num_embeddings, module.embedding_dim)
        module.load_params({"weight": _shaped(weights[0], "weights[0] (embeddings)", want)})
        return
    if isinstance(module, Linear):
        n = 2 if module.bias is not None else 1
        if len(weights) != n:
            raise ValueError(f"a Dense layer {'with' if n == 2 else 'without'} bias has {n} "
                             f"weight arrays, got {len(weights)}")
        vals = {"weight": _shaped(weights[0], "weights[0] (kernel)",
                                  (module.in_features, module.out_features)).T}
        if n == 2:
            vals["bias"] = _shaped(weights[1], "weights[1] (bias)", (module.out_features,))
        module.load_params(vals)
        return
    kind = kind_of(module, RECURRENT_OR_BASIC)
    refuse_projection(module, "Keras", writing=False)
    refuse_layer_norm(module, "Keras", writing=False)
    if has_variant(module):
        raise ValueError("Keras's LSTM has no peephole, clip or input_forget: cannot load Keras "
                         "weights into this layer")
    levels = direction_suffixes(module)
    if len(weights) != len(levels):
        raise ValueError(f"expected one weight list per layer level ({len(levels)}), got "
                         f"{len(weights)}")
    per_dir = 3 if module.bias else 2
    perm = _perm(kind, to_keras=False)
    own = module.params()
    new = {}
    for l, (suffixes, level) in enumerate(zip(levels, weights)):
        _check_list(level, f"weights[{l}]")
        if len(level) != per_dir * len(suffixes):
            raise ValueError(
                f"weights[{l}] must hold {per_dir * len(suffixes)} arrays ({per_dir} per "
                f"direction: kernel, recurrent_kernel{', bias' if module.bias else ''}), got "
                f"{len(level)}")
        for d, s in enumerate(suffixes):
            arrs = [_float(a, f"weights[{l}][{per_dir * d + j}]")
                    for j, a in enumerate(level[per_dir * d: per_dir * (d + 1)])]
            names = ["Wx", "Wh", "b"][:per_dir]
            for name, a, keras_name in zip(names, arrs, ("kernel", "recurrent_kernel", "bias")):
                want = own[f"{name}_{s}"].shape
                if name == "b" and kind == "GRU":
                    want = (2, 3 * module.hidden_size)
                if a.shape != want:
                    hint = ("; a (3H,) bias is Keras' GRU(reset_after=False), which applies the "
                            "reset gate before the recurrent product and computes another "
                            "function: lstmlab's GRU is reset_after=True (Keras' default)"
                            if name == "b" and kind == "GRU" and a.shape == (want[1],) else "")
                    raise ValueError(f"weights[{l}] {keras_name} of direction {d} must have shape "
                                     f"{want}, got {a.shape}{hint}")
                new[f"{name}_{s}"] = (_bias_from_keras(kind, a, perm) if name == "b" else
                                      permute_blocks(a, perm, axis=1))
    module.load_params(new)


def from_keras_weights(weights: Sequence, kind: str = "LSTM", bidirectional: bool | None = None,
                       nonlinearity: str = "tanh", batch_first: bool = False, dtype=None):
    """Build an lstmlab ``LSTM``, ``RNN`` or ``GRU`` from Keras weight lists (one list per level).

    ``kind`` is ``"LSTM"``, ``"RNN"`` (``"SimpleRNN"`` is accepted too) or ``"GRU"`` (Keras'
    ``reset_after=True``). Whether the levels
    are bidirectional and carry a bias is read off the number of arrays per level (LSTM:
    2 or 3 unidirectional, 4 or 6 bidirectional), unless ``bidirectional`` is given.
    """
    from ..layers import GRU, LSTM, RNN
    if not isinstance(kind, str):  # Keras weights do not say which cell they belong to
        raise ValueError(f"kind must be 'LSTM', 'SimpleRNN' or 'GRU', got {kind!r}")
    kind = {"SIMPLERNN": "RNN"}.get(kind.upper(), kind.upper())
    if kind not in ("LSTM", "RNN", "GRU"):
        raise ValueError(f"kind must be 'LSTM', 'SimpleRNN' or 'GRU', got {kind!r}")
    if (not isinstance(weights, (list, tuple)) or not weights
            or not all(isinstance(level, (list, tuple)) for level in weights)):
        raise ValueError("weights must be a non-empty list with one list of arrays per layer "
                         "level (wrap a single Keras layer's get_weights() in a list)")
    n = len(weights[0])
    options = {2: (False, False), 3: (False, True), 4: (True, False), 6: (True, True)}
    if n not in options:
        raise ValueError(f"a Keras recurrent layer has 2, 3, 4 or 6 weight arrays, got {n}")
    bi, bias = options[n]
    if bidirectional is not None and bool(bidirectional) != bi:
        raise ValueError(f"bidirectional={bidirectional} but the first level has {n} arrays "
                         f"({'bi' if bi else 'uni'}directional{' with' if bias else ' without'} "
                         f"bias)")
    kernel = as_numpy(weights[0][0])
    rec = as_numpy(weights[0][1])
    if kernel.ndim != 2 or rec.ndim != 2:
        raise ValueError(f"kernel and recurrent_kernel must be matrices, got shapes "
                         f"{kernel.shape} and {rec.shape}")
    H = rec.shape[0]
    G = {"LSTM": 4, "GRU": 3}.get(kind, 1)
    if rec.shape[1] != G * H:
        hint = " (an LSTM's is (H, 4H): pass kind='LSTM')" if rec.shape[1] == 4 * H else ""
        raise ValueError(f"a {kind} recurrent_kernel must have shape (H, {G}H); got "
                         f"{rec.shape}{hint}")
    if dtype is None:
        dtype = np.float64 if kernel.dtype == np.float64 else np.float32
    common = dict(num_layers=len(weights), bias=bias, batch_first=batch_first, bidirectional=bi,
                  dtype=dtype, rng=np.random.default_rng(0))
    if kind == "LSTM":
        layer = LSTM(kernel.shape[0], H, **common)
    elif kind == "GRU":
        layer = GRU(kernel.shape[0], H, **common)
    else:
        layer = RNN(kernel.shape[0], H, nonlinearity=nonlinearity, **common)
    load_keras_weights(layer, weights)
    return layer


def _check_list(weights, name: str) -> None:
    """``weights`` must be a list or tuple of arrays, as ``get_weights()`` returns: anything
    else is a TypeError naming it, not a failure to take its length or items."""
    if not isinstance(weights, (list, tuple)):
        raise TypeError(f"{name} must be a list of arrays (what a Keras layer's get_weights() "
                        f"returns), got {type(weights).__name__}")


def _float(a, name) -> np.ndarray:
    """``a`` as a floating array without NaN or inf, errors naming it by its place in the
    Keras lists (``weights[0][1]``), which the user knows, rather than the lstmlab name."""
    a = as_numpy(a)
    if a.dtype.kind != "f":
        raise TypeError(f"{name} must be floating point, got {a.dtype}")
    return as_float_array(a, name, a.dtype).reshape(a.shape)


def _shaped(a, name, shape: tuple) -> np.ndarray:
    """:func:`_float` of ``a``, which must have ``shape`` as Keras lays it out (a Dense
    kernel is (in, out), the transpose of lstmlab's weight): an error naming it in those
    terms, not in the lstmlab layer's."""
    a = _float(a, name)
    if a.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got {a.shape}")
    return a


# -- a whole char-LM as a .keras model file ---------------------------------------------------

def keras_charlm(embed, rnn, head):
    """A ``keras.Sequential`` char-LM with the weights of an lstmlab ``Embedding`` -> ``LSTM``,
    ``GRU`` or ``RNN`` -> ``Linear`` stack: int tokens ``(B, T)`` -> logits ``(B, T, V)`` (batch-major,
    as Keras is), from zero initial states, float32. The head has one output per embedding
    row (token).

    Keras 3 runs on the backend that ``KERAS_BACKEND`` names; when it is unset this picks the
    first installed of TensorFlow, JAX and PyTorch before importing Keras. Imports Keras.
    """
    import os

    from .._extras import MissingExtra, keras_backend, require
    require("keras", "lstmlab.interop.keras_charlm")
    kind = kind_of(rnn)
    refuse_projection(rnn, "Keras")
    refuse_layer_norm(rnn, "Keras")
    if rnn.bidirectional or has_variant(rnn):
        raise ValueError("a Keras char-LM is a unidirectional LSTM/GRU/SimpleRNN stack without "
                         "peepholes, clip or input_forget")
    for name, piece in (("embed", embed), ("head", head)):
        if piece is None:  # check_chain takes None for an absent end; a char-LM has both
            raise TypeError(f"{name} must be an lstmlab "
                            f"{'Embedding' if name == 'embed' else 'Linear'}: a Keras char-LM "
                            f"has both ends, got None")
    check_chain(embed, rnn, head, names=("embed", "head"))
    check_vocabulary(embed, head)
    if "KERAS_BACKEND" not in os.environ and keras_backend() is not None:
        os.environ["KERAS_BACKEND"] = keras_backend()
    try:
        import keras
    except ImportError as exc:  # installed, but its backend misses a module (numpy's: jax)
        raise MissingExtra(f"Keras is installed but does not import on its backend "
                           f"KERAS_BACKEND={os.environ.get('KERAS_BACKEND')!r} ({exc}); install "
                           f"what that backend needs, or set KERAS_BACKEND to an installed "
                           f"tensorflow, jax or torch") from None

    vocab_size, width = embed.params()["weight"].shape
    layers = [keras.Input((None,), dtype="int32", name="tokens"),
              keras.layers.Embedding(vocab_size, width, name="embed")]
    for level in range(rnn.num_layers):
        if kind == "LSTM":
            layers.append(keras.layers.LSTM(rnn.hidden_size, use_bias=rnn.bias,
                                            return_sequences=True, name=f"rnn_{level}"))
        elif kind == "GRU":  # PyTorch's GRU is Keras' reset_after=True
            layers.append(keras.layers.GRU(rnn.hidden_size, use_bias=rnn.bias, reset_after=True,
                                           return_sequences=True, name=f"rnn_{level}"))
        else:
            layers.append(keras.layers.SimpleRNN(rnn.hidden_size, activation=rnn.nonlinearity,
                                                 use_bias=rnn.bias, return_sequences=True,
                                                 name=f"rnn_{level}"))
    layers.append(keras.layers.Dense(head.out_features, use_bias=head.bias is not None,
                                     name="head"))
    model = keras.Sequential(layers, name=f"lstmlab_charlm_{kind.lower()}")
    model.get_layer("embed").set_weights(to_keras_weights(embed))
    for level, weights in enumerate(to_keras_weights(rnn)):
        model.get_layer(f"rnn_{level}").set_weights(weights)
    model.get_layer("head").set_weights(to_keras_weights(head))
    return model


def save_keras_charlm(path, embed, rnn, head) -> None:
    """Write :func:`keras_charlm`'s model to ``path`` (a name ending in ``.keras``), atomically:
    the file that ``keras.saving.load_model(path)`` opens (no pickle; Keras's safe mode)."""
    import tempfile
    from pathlib import Path

    from ..training.checkpoint import atomic_write_bytes
    path = output_path(path)
    if path.suffix != ".keras":
        raise ValueError(f"a Keras model file must end in .keras (keras.saving.load_model "
                         f"opens only those), got {path.name!r}")
    model = keras_charlm(embed, rnn, head)
    with tempfile.TemporaryDirectory() as tmp:
        staged = Path(tmp) / "model.keras"
        model.save(staged)
        atomic_write_bytes(path, staged.read_bytes())
