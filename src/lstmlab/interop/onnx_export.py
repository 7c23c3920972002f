"""ONNX export: an lstmlab LSTM/RNN/GRU, alone or as the core of an Embedding → RNN → Linear model.

Dimensions: T time, B batch, D input features, H hidden units, L layers, K directions,
V vocabulary, E embedding width.

Each lstmlab layer level becomes one ONNX ``LSTM``, ``RNN`` or ``GRU`` node (direction
``forward`` or ``bidirectional``; the GRU with ``linear_before_reset=1``, PyTorch's and
lstmlab's reset after the recurrent product, gates z, r, h). ONNX keeps the weights per direction as ``W (K, G·H, D)``,
``R (K, G·H, H)``, ``B (K, 2·G·H)`` (an input bias then a recurrent bias) and, for peepholes,
``P (K, 3H)``, with gates in the order i, o, f, c (peepholes i, o, f); lstmlab's ``Wx``,
``Wh``, ``b``, ``P`` map onto them by a transpose and the block permutations of
``interop/_gates.py``, the whole bias going into the input half (the GRU's b_hn into the
recurrent half's h block). A node outputs
``Y (T, K, B, H)``; between levels a ``Squeeze`` (K = 1) or ``Transpose`` + ``Reshape``
(K = 2) makes it the next level's ``(T, B, K·H)`` input.

The exported graph (opset 17, IR version 8, float32)::

    inputs   X (T, B, D)                  (B, T, D) for a batch_first layer;
                                          with an embedding: tokens int64 (T, B)
             sequence_lens int32 (B,)     only with sequence_lens=True
             h0, c0 (L·K, B, H)           optional inputs (ONNX optional tensors): zeros
                                          when left out
    outputs  Y (T, B, K·H)                or logits (T, B, V) with a head
             h_n, c_n (L·K, B, H)         the final state, as lstmlab and PyTorch lay it out

ONNX Runtime computes LSTM, RNN and GRU in float32 only and with ``layout=0`` only, hence the
float32 weights and the Transposes for batch_first.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np

from .._checks import as_float_array, short_repr, true_or_false
from ..kernels.gru import gru_bias_split
from ._gates import (GRU_SWAP_RZ, ONNX_FROM_OURS, ONNX_P_FROM_OURS, check_chain,
                     check_vocabulary, direction_suffixes, kind_of, output_path, permute_blocks,
                     refuse_projection, refuse_layer_norm)

__all__ = ["to_onnx", "onnx_weights", "OPSET"]

OPSET = 17  # LSTM/RNN are unchanged since opset 14; 17 is widely supported
IR_VERSION = 8  # the IR version that goes with opset 17


def onnx_weights(layer, level: int, dtype=np.float32) -> dict[str, np.ndarray]:
    """The ONNX node inputs ``W``, ``R`` and (when present) ``B``, ``P`` of one layer level."""
    kind = kind_of(layer)
    refuse_projection(layer, "ONNX")
    refuse_layer_norm(layer, "ONNX")
    perm = {"LSTM": ONNX_FROM_OURS, "GRU": GRU_SWAP_RZ}.get(kind, (0,))
    p = layer.params()
    W, R, B, P = [], [], [], []
    for s in direction_suffixes(layer)[level]:
        W.append(permute_blocks(p[f"Wx_{s}"].T, perm, 0))  # (G·H, D)
        R.append(permute_blocks(p[f"Wh_{s}"].T, perm, 0))  # (G·H, H)
        if layer.bias and kind == "GRU":  # (6H,) input bias z, r, h, recurrent bias (0, 0, b_hn)
            B.append(np.concatenate([permute_blocks(b, perm, 0)
                                     for b in gru_bias_split(p[f"b_{s}"])]))
        elif layer.bias:
            b = permute_blocks(p[f"b_{s}"], perm, 0)  # (G·H,)
            B.append(np.concatenate([b, np.zeros_like(b)]))  # (2·G·H,) input bias, recurrent bias
        if f"P_{s}" in p:
            P.append(permute_blocks(p[f"P_{s}"], ONNX_P_FROM_OURS, 0))  # (3H,)
    out = {"W": np.stack(W), "R": np.stack(R)}
    if B:
        out["B"] = np.stack(B)
    if P:
        out["P"] = np.stack(P)
    return {k: v.astype(dtype) for k, v in out.items()}


class _Graph:
    """A tiny builder: unique names, initializers, nodes."""

    def __init__(self, onnx):
        self.onnx = onnx
        self.nodes, self.inits, self.names = [], [], set()

    def name(self, base: str) -> str:
        n, k = base, 1
        while n in self.names:
            n, k = f"{base}_{k}", k + 1
        self.names.add(n)
        return n

    def const(self, base: str, value: np.ndarray) -> str:
        n = self.name(base)
        self.inits.append(self.onnx.numpy_helper.from_array(np.asarray(value), n))
        return n

    def node(self, op: str, inputs, n_out: int = 1, out_names=None, **attrs):
        outs = (list(out_names) if out_names
                else [self.name(f"{op.lower()}_out") for _ in range(n_out)])
        self.nodes.append(self.onnx.helper.make_node(op, list(inputs), outs,
                                                     name=self.name(op), **attrs))
        return outs if n_out > 1 else outs[0]


def _recurrent_stack(g: _Graph, layer, x: str, seq: str, h0: str, c0: str | None, dtype):
    """Nodes for every level of ``layer`` on time-major ``x``; returns (y, h_n, c_n) names."""
    kind = kind_of(layer)
    L, K, H = layer.num_layers, layer.num_directions, layer.hidden_size
    if L > 1:
        split = g.const("split_sizes", np.full(L, K, np.int64))
        h0s = g.node("Split", [h0, split], n_out=L, axis=0)
        c0s = g.node("Split", [c0, split], n_out=L, axis=0) if c0 else [None] * L
    else:
        h0s, c0s = [h0], [c0]
    inp, hs, cs = x, [], []
    for level in range(L):
        w = onnx_weights(layer, level, dtype)
        names = {k: g.const(f"{k}_l{level}", v) for k, v in w.items()}
        attrs = dict(hidden_size=H, direction="bidirectional" if K == 2 else "forward")
        if kind == "LSTM":
            inputs = [inp, names["W"], names["R"], names.get("B", ""), seq, h0s[level],
                      c0s[level], names.get("P", "")]
            if layer.clip is not None:
                attrs["clip"] = float(layer.clip)
            if layer.input_forget:
                attrs["input_forget"] = 1
            y, yh, yc = g.node("LSTM", inputs, n_out=3, **attrs)
            cs.append(yc)
        elif kind == "GRU":
            inputs = [inp, names["W"], names["R"], names.get("B", ""), seq, h0s[level]]
            y, yh = g.node("GRU", inputs, n_out=2, linear_before_reset=1, **attrs)
        else:
            inputs = [inp, names["W"], names["R"], names.get("B", ""), seq, h0s[level]]
            act = "Tanh" if layer.nonlinearity == "tanh" else "Relu"
            y, yh = g.node("RNN", inputs, n_out=2, activations=[act] * K, **attrs)
        hs.append(yh)
        if K == 1:  # (T, 1, B, H) -> (T, B, H)
            inp = g.node("Squeeze", [y, g.const("axis1", np.array([1], np.int64))])
        else:  # (T, 2, B, H) -> (T, B, 2, H) -> (T, B, 2H)
            yt = g.node("Transpose", [y], perm=[0, 2, 1, 3])
            inp = g.node("Reshape", [yt, g.const("shape_tb_", np.array([0, 0, -1], np.int64))])
    h_n = hs[0] if L == 1 else g.node("Concat", hs, axis=0)
    c_n = None
    if kind == "LSTM":
        c_n = cs[0] if L == 1 else g.node("Concat", cs, axis=0)
    return inp, h_n, c_n


def _state_default(g: _Graph, name: str, batch_src: str, n: int, H: int, dtype):
    """The initial state ``name``: an optional graph input (an ONNX optional tensor) that is
    the (n, B, H) state when fed and zeros (n, B, H) when left out, B read from dimension 1 of
    ``batch_src``. Not an initializer that is also an input: ONNX Runtime warns about each of
    those ("will not be treated as constant")."""
    helper, TensorProto = g.onnx.helper, g.onnx.TensorProto
    g.names.add(name)
    zeros = g.const(f"{name}_zeros", np.zeros((n, 1, H), dtype))
    one = g.const("one", np.array([1], np.int64))
    n_dirs = g.const("n_dirs", np.array([n], np.int64))
    hidden = g.const("hidden", np.array([H], np.int64))
    fed, shape, batch, dims, default = (g.name(f"{name}_{part}") for part in
                                        ("fed", "shape", "batch", "dims", "default"))

    def node(op, inputs, out, **attrs):
        return helper.make_node(op, inputs, [out], name=g.name(op), **attrs)

    def branch(label, nodes, out):
        return helper.make_graph(nodes, g.name(f"{name}_{label}"), [], [
            helper.make_tensor_value_info(out, TensorProto.FLOAT, [n, "B", H])])

    when_fed = branch("when_fed", [node("OptionalGetElement", [name], fed)], fed)
    when_absent = branch("when_absent", [
        node("Shape", [batch_src], shape),
        node("Gather", [shape, one], batch, axis=0),
        node("Concat", [n_dirs, batch, hidden], dims, axis=0),
        node("Expand", [zeros, dims], default)], default)
    has = g.node("OptionalHasElement", [name])
    return g.node("If", [has], then_branch=when_fed, else_branch=when_absent)


def _state_input(helper, TensorProto, name: str, n: int, H: int):
    tensor = helper.make_tensor_type_proto(TensorProto.FLOAT, [n, "B", H])
    return helper.make_value_info(name, helper.make_optional_type_proto(tensor))


def to_onnx(rnn, *, embedding=None, head=None, vocab: Sequence[str] | None = None,
            sequence_lens: bool = False, path=None, graph_name: str | None = None):
    """Export ``rnn`` (an lstmlab ``LSTM``, ``RNN`` or ``GRU``) to an ``onnx.ModelProto``.

    With ``embedding`` (an lstmlab ``Embedding``) the graph takes ``tokens`` int64 ``(T, B)``
    through a ``Gather``; with ``head`` (an lstmlab ``Linear``) it returns ``logits``
    ``(T, B, V)`` through ``MatMul`` + ``Add``. Such a model graph is time-major whatever the
    layer's ``batch_first``. ``vocab`` (the characters in token order; a ``Vocab`` works too)
    is stored as JSON in ``metadata_props["vocab"]``; ``head`` has one output per token of
    the vocabulary (``vocab``, else the embedding's rows). ``sequence_lens=True`` adds the
    ``sequence_lens`` input. A parameter that float32, the graph's type, cannot hold (NaN,
    inf, a float64 value beyond its range) is a ValueError naming it. Dropout between levels
    is a training-time operation and is not exported. The model is checked with ``onnx.checker`` and, when ``path`` is given, saved
    there atomically (a failed write leaves no partial file). Imports onnx.
    """
    from .._extras import require
    require("onnx", "lstmlab.interop.to_onnx")  # one line naming the extra, not a traceback
    import onnx
    from onnx import TensorProto, helper
    kind = kind_of(rnn)
    if path is not None:
        path = output_path(path)
    refuse_projection(rnn, "ONNX")
    refuse_layer_norm(rnn, "ONNX")
    check_chain(embedding, rnn, head)
    sequence_lens = true_or_false(sequence_lens, "sequence_lens")
    for name, piece in (("rnn", rnn), ("embedding", embedding), ("head", head)):
        _check_float32(piece, name)
    chars = None
    if vocab is not None:
        chars = vocab.to_json() if hasattr(vocab, "to_json") else list(vocab)
        _check_tokens(chars)
    check_vocabulary(embedding, head, chars)
    if chars is not None and embedding is None and head is None:
        raise ValueError("vocab names the tokens of an embedding or a head's outputs; a graph "
                         "of the recurrent layer alone has neither")
    dtype = np.float32
    L, K, H = rnn.num_layers, rnn.num_directions, rnn.hidden_size
    g = _Graph(onnx)
    model_graph = embedding is not None or head is not None
    batch_first = rnn.batch_first and not model_graph
    T_, B_ = "T", "B"
    inputs = []

    if embedding is not None:
        g.names.add("tokens")
        inputs.append(helper.make_tensor_value_info("tokens", TensorProto.INT64, [T_, B_]))
        table = g.const("embedding_weight", embedding.params()["weight"].astype(dtype))  # (V, E)
        x = g.node("Gather", [table, "tokens"], axis=0)  # (T, B, E)
        batch_src = "tokens"
    else:
        g.names.add("X")
        shape = [B_, T_, rnn.input_size] if batch_first else [T_, B_, rnn.input_size]
        inputs.append(helper.make_tensor_value_info("X", TensorProto.FLOAT, shape))
        x = g.node("Transpose", ["X"], perm=[1, 0, 2]) if batch_first else "X"
        batch_src = x
    seq = ""
    if sequence_lens:
        g.names.add("sequence_lens")
        inputs.append(helper.make_tensor_value_info("sequence_lens", TensorProto.INT32, [B_]))
        seq = "sequence_lens"
    h0 = _state_default(g, "h0", batch_src if embedding is not None else x, L * K, H, dtype)
    inputs.append(_state_input(helper, TensorProto, "h0", L * K, H))
    c0 = None
    if kind == "LSTM":
        c0 = _state_default(g, "c0", batch_src if embedding is not None else x, L * K, H, dtype)
        inputs.append(_state_input(helper, TensorProto, "c0", L * K, H))

    y, h_n, c_n = _recurrent_stack(g, rnn, x, seq, h0, c0, dtype)

    if head is not None:
        hp = head.params()
        logits = g.node("MatMul", [y, g.const("head_weight_t", hp["weight"].T.astype(dtype))])
        if "bias" in hp:
            logits = g.node("Add", [logits, g.const("head_bias", hp["bias"].astype(dtype))])
        g.nodes.append(helper.make_node("Identity", [logits], ["logits"], name=g.name("Identity")))
        outputs = [helper.make_tensor_value_info("logits", TensorProto.FLOAT,
                                                 [T_, B_, head.out_features])]
    else:
        if batch_first:
            y = g.node("Transpose", [y], perm=[1, 0, 2])
        g.nodes.append(helper.make_node("Identity", [y], ["Y"], name=g.name("Identity")))
        shape = [B_, T_, K * H] if batch_first else [T_, B_, K * H]
        outputs = [helper.make_tensor_value_info("Y", TensorProto.FLOAT, shape)]
    g.nodes.append(helper.make_node("Identity", [h_n], ["h_n"], name=g.name("Identity")))
    outputs.append(helper.make_tensor_value_info("h_n", TensorProto.FLOAT, [L * K, B_, H]))
    if c_n is not None:
        g.nodes.append(helper.make_node("Identity", [c_n], ["c_n"], name=g.name("Identity")))
        outputs.append(helper.make_tensor_value_info("c_n", TensorProto.FLOAT, [L * K, B_, H]))

    graph = helper.make_graph(g.nodes, graph_name or f"lstmlab_{kind.lower()}", inputs, outputs,
                              g.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="lstmlab", ir_version=IR_VERSION)
    meta = {"lstmlab_kind": kind, "lstmlab_config": json.dumps(_config(rnn, batch_first))}
    if chars is not None:
        meta["vocab"] = json.dumps(chars, ensure_ascii=False)
    helper.set_model_props(model, meta)
    onnx.checker.check_model(model, full_check=True)
    if path is not None:  # atomically, as every file lstmlab writes: never half a model
        from ..training.checkpoint import atomic_write_bytes
        atomic_write_bytes(path, model.SerializeToString())
    return model


def _check_float32(piece, name: str) -> None:
    """Every parameter of ``piece`` (None: nothing) as float32, the graph's type, is finite:
    a NaN or inf (a diverged run), or a float64 value beyond float32's range, would be written
    into the graph, whose every output would then be NaN or inf."""
    if piece is None:
        return
    for key, value in piece.params().items():
        as_float_array(value, f"{name} parameter {key!r} (written as float32)", np.float32)


def _check_tokens(chars: list) -> None:
    """``vocab`` lists one string per token, each once: the metadata a reader decodes token
    ids with, and what :func:`lstmlab.interop.import_onnx` takes back."""
    seen = {}
    for i, c in enumerate(chars):
        if not isinstance(c, str):
            raise TypeError(f"vocab must list one string per token (a character), got "
                            f"{short_repr(c)} of type {type(c).__name__} at index {i}")
        if c in seen:  # a reader's {token: id} would keep one id of the two
            raise ValueError(f"vocab lists {short_repr(c)} twice (at indices {seen[c]} and "
                             f"{i}); each token must be listed once")
        seen[c] = i


def _config(rnn, batch_first: bool) -> dict:
    """The layer's settings as the graph runs it: ``batch_first`` is the graph's layout (a
    char-LM graph is time-major whatever the layer's), so the layer read back runs the graph."""
    cfg = dict(input_size=rnn.input_size, hidden_size=rnn.hidden_size,
               num_layers=rnn.num_layers, bias=rnn.bias, bidirectional=rnn.bidirectional,
               batch_first=batch_first)
    if kind_of(rnn) == "RNN":
        cfg["nonlinearity"] = rnn.nonlinearity
    elif kind_of(rnn) == "LSTM":
        cfg.update(peephole=rnn.peephole, clip=rnn.clip, input_forget=rnn.input_forget)
    return cfg
