"""ONNX import: a whole model's graph, its LSTM, RNN and GRU nodes as lstmlab layers
(:mod:`lstmlab.interop.onnx_nodes`) and the rest run in NumPy.

Dimensions: T time, B batch, D input features, H hidden units, K directions (1 or 2).

:func:`import_onnx` reads a whole model: its LSTM/RNN/GRU nodes become layers and the few other
ops a recurrent model uses (Transpose, Squeeze, Reshape, Concat, Split, Gather, MatMul, Add,
Gemm, ...; optional inputs with OptionalHasElement, OptionalGetElement and If, as lstmlab
writes ``h0``/``c0``) are evaluated in NumPy, so ``OnnxModel.run`` computes the graph's outputs with
lstmlab doing the recurrent part. ``OnnxModel.to_layer()`` fuses a stack of levels (as
:func:`lstmlab.interop.to_onnx` writes them) back into one stacked layer, and
``OnnxModel.pieces()`` also recovers the Embedding and Linear of a char-LM graph.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping

import numpy as np

from .._checks import as_numpy, short_repr, shorten
from .._files import open_regular_file
from .onnx_nodes import (RECURRENT_OPS, OnnxImportError, RecurrentNode, finite, float_matrix,
                         node_attrs, node_label, node_to_layer, tensor_value)

__all__ = ["OnnxModel", "import_onnx"]

# -- the rest of a graph, in NumPy ----------------------------------------------------------

def _ints(v) -> list[int]:
    return [int(i) for i in np.asarray(v).reshape(-1)]


def _squeeze(x, axes):
    if axes is None:
        return np.squeeze(x)
    return np.squeeze(x, axis=tuple(a % x.ndim for a in axes))


def _unsqueeze(x, axes):
    out_rank = x.ndim + len(axes)
    for a in sorted(a % out_rank for a in axes):
        x = np.expand_dims(x, a)
    return x


def _reshape(x, shape, allowzero=0):
    shape = _ints(shape)
    if not allowzero:
        shape = [x.shape[i] if s == 0 else s for i, s in enumerate(shape)]
    return x.reshape(shape)


def _split(x, attrs, split, n_out):
    axis = attrs.get("axis", 0) % x.ndim
    sizes = _ints(split) if split is not None else attrs.get("split")
    if sizes is None:
        n = attrs.get("num_outputs", n_out)
        size = -(-x.shape[axis] // n)
        sizes = [min(size, x.shape[axis] - k * size) for k in range(n)]
    return np.split(x, np.cumsum(sizes)[:-1], axis=axis)


def _slice(x, starts, ends, axes=None, steps=None):
    idx = [slice(None)] * x.ndim
    axes = range(len(_ints(starts))) if axes is None else _ints(axes)
    steps = [1] * len(_ints(starts)) if steps is None else _ints(steps)
    for a, s, e, st in zip(axes, _ints(starts), _ints(ends), steps):
        idx[a % x.ndim] = slice(s, e, st)
    return x[tuple(idx)]


def _slice_args(attrs, given):
    """Slice's (starts, ends, axes, steps): its inputs from opset 10 on, its attributes
    ``starts``, ``ends``, ``axes`` before (as in graphs that torch.onnx.export writes for
    opset 9)."""
    if given:
        return (tuple(given) + (None,) * 4)[:4]
    return attrs["starts"], attrs["ends"], attrs.get("axes"), None


def _gemm(a, b, c=None, alpha=1.0, beta=1.0, transA=0, transB=0):
    a = a.T if transA else a
    b = b.T if transB else b
    y = alpha * (a @ b)
    return y if c is None else y + beta * c


def _expand(x, shape):
    return np.broadcast_to(x, np.broadcast_shapes(x.shape, tuple(_ints(shape)))).copy()


def _cast(x, to):
    from onnx import helper
    return x.astype(helper.tensor_dtype_to_np_dtype(to))


def _shape(x, start=0, end=None):
    return np.array(x.shape[start:end], dtype=np.int64)


def _constant_of_shape(value, shape):
    """ConstantOfShape: ``shape`` filled with the one element of the tensor ``value`` (float32
    zero when absent). ``torch.onnx.export`` builds its zero initial states with it."""
    fill = (np.zeros(1, np.float32) if value is None
            else tensor_value(value, "its value attribute").reshape(-1))
    if fill.size != 1:
        raise ValueError(f"its value must hold one element, got {fill.size}")
    return np.full(tuple(_ints(shape)), fill[0], dtype=fill.dtype)


# op -> function(attrs, *inputs) -> output or tuple of outputs; absent optional inputs are None
_NUMPY_OPS = {
    "Identity": lambda a, x: x,
    "Transpose": lambda a, x: np.transpose(x, a.get("perm")),
    "Squeeze": lambda a, x, axes=None: _squeeze(x, a.get("axes") if axes is None else _ints(axes)),
    "Unsqueeze": lambda a, x, axes=None: _unsqueeze(x, a["axes"] if axes is None else _ints(axes)),
    "Reshape": lambda a, x, shape: _reshape(x, shape, a.get("allowzero", 0)),
    "Concat": lambda a, *xs: np.concatenate(xs, axis=a["axis"]),
    "Shape": lambda a, x: _shape(x, a.get("start", 0), a.get("end")),
    "Gather": lambda a, x, idx: np.take(x, np.asarray(idx, np.int64), axis=a.get("axis", 0)),
    "Expand": lambda a, x, shape: _expand(x, shape),
    "MatMul": lambda a, x, y: np.matmul(x, y),
    "Add": lambda a, x, y: np.add(x, y),
    "Sub": lambda a, x, y: np.subtract(x, y),
    "Mul": lambda a, x, y: np.multiply(x, y),
    "Gemm": lambda a, x, y, c=None: _gemm(x, y, c, a.get("alpha", 1.0), a.get("beta", 1.0),
                                          a.get("transA", 0), a.get("transB", 0)),
    "Cast": lambda a, x: _cast(x, a["to"]),
    "ConstantOfShape": lambda a, shape: _constant_of_shape(a.get("value"), shape),
    "Slice": lambda a, x, *given: _slice(x, *_slice_args(a, given)),
}
# Optional graph inputs (lstmlab's exported h0/c0): present or absent (None), chosen by an If.
_NUMPY_OPS.update({
    "OptionalHasElement": lambda a, x=None: np.array(x is not None),
    "OptionalGetElement": lambda a, x: _present(x),
})
SUPPORTED_OPS = RECURRENT_OPS + ("Constant", "Split", "If") + tuple(_NUMPY_OPS)


def _present(x):
    if x is None:
        raise ValueError("the optional input is absent")
    return x


def _constant_value(node) -> np.ndarray:
    from onnx import TensorProto
    a = node_attrs(node)
    if isinstance(a.get("value"), TensorProto):
        return tensor_value(a["value"], f"{node_label(node)}: its value")
    for key, dt in (("value_float", np.float32), ("value_floats", np.float32),
                    ("value_int", np.int64), ("value_ints", np.int64)):
        if key in a:
            try:
                return np.array(a[key], dtype=dt)
            except (ValueError, TypeError, OverflowError) as exc:
                raise OnnxImportError(f"{node_label(node)}: {key} is not a {dt.__name__} "
                                      f"value ({shorten(str(exc))})") from None
    raise OnnxImportError(f"{node_label(node)}: only tensor, float(s) and int(s) constants "
                          f"are supported, got attributes {sorted(a)}")


def _names(names, what: str) -> list[str]:
    """``names`` as a list of strings (one string is one name); else a TypeError naming
    ``what``."""
    if isinstance(names, str):
        return [names]
    if not isinstance(names, (list, tuple)) or not all(isinstance(n, str) for n in names):
        raise TypeError(f"{what} must be a list of output names, got {short_repr(names)}")
    return list(names)


def _given_weights(weights, graph) -> dict[str, np.ndarray]:
    """``import_onnx``'s ``weights``: a mapping from names the graph's nodes take as inputs to
    arrays. A name no node takes (a typo) would be ignored and leave the weight it meant
    unset, so it is an error naming it."""
    if weights is None:
        return {}
    if not isinstance(weights, Mapping):
        raise TypeError(f"weights must be a mapping of node input names to arrays "
                        f"({{'W': W, 'R': R}}), got {type(weights).__name__}")
    taken = _node_inputs(graph)
    recurrent = sorted({i for n in graph.node if n.op_type in RECURRENT_OPS for i in n.input
                        if i})
    out = {}
    for name, value in weights.items():
        if name not in taken:
            raise OnnxImportError(f"weights[{name!r}]: no node of the graph takes an input "
                                  f"{name!r}; the recurrent nodes take {recurrent}")
        try:
            out[name] = as_numpy(value, f"weights[{name!r}]")
        except ValueError as exc:
            raise OnnxImportError(str(exc)) from None
    return out


def _node_inputs(graph) -> set[str]:
    """The input names of every node of ``graph``, those of its If branches included."""
    names = set()
    for n in graph.node:
        names.update(i for i in n.input if i)
        for a in n.attribute:
            if a.HasField("g"):
                names |= _node_inputs(a.g)
    return names


def _json_metadata(metadata: dict, key: str):
    try:
        return json.loads(metadata[key])
    except RecursionError:
        raise OnnxImportError(f"metadata_props[{key!r}] nests too deeply") from None
    except ValueError as exc:
        raise OnnxImportError(f"metadata_props[{key!r}] is not valid JSON ({exc})") from None


def _check_order(nodes, available: set, outputs: list) -> None:
    """Every node input is a graph input, a constant or an earlier node's output (ONNX
    requires topological order), and every graph output is produced: so :meth:`OnnxModel.run`
    finds each value it needs."""
    available = set(available)
    for n in nodes:
        if n.op_type == "Constant":
            available.update(n.output)
            continue
        for name in n.input:
            if name and name not in available:
                raise OnnxImportError(f"{node_label(n)}: input {name!r} is neither a graph "
                                      f"input, a constant nor the output of an earlier node "
                                      f"(nodes must be in topological order)")
        available.update(o for o in n.output if o)
    missing = [o for o in outputs if o not in available]
    if missing:
        raise OnnxImportError(f"graph output(s) {missing} are produced by no node")


_KIND_NAMES = {"i": "integers", "u": "integers", "f": "numbers", "b": "bools"}


class OnnxModel:
    """An imported ONNX model: lstmlab layers for its recurrent nodes, NumPy for the rest.

    ``inputs`` are the names :meth:`run` needs (graph inputs without a value; inputs that
    have an initializer are optional overrides, and so are inputs of an optional type), ``outputs`` the graph's output names,
    ``nodes`` the :class:`RecurrentNode` of every LSTM/RNN/GRU node in graph order, ``metadata``
    the model's ``metadata_props`` and ``vocab`` its decoded ``"vocab"`` entry, if any.
    """

    def __init__(self, model, weights: dict | None = None):
        graph = model.graph  # other opset domains may be declared; a node of one is refused
        self.consts = {t.name: tensor_value(t, f"initializer {t.name!r}")
                       for t in graph.initializer}
        self.consts.update(_given_weights(weights, graph))
        self.metadata = {p.key: p.value for p in model.metadata_props}
        self.vocab = None
        if "vocab" in self.metadata:
            self.vocab = _json_metadata(self.metadata, "vocab")
            if not (isinstance(self.vocab, list) and all(isinstance(c, str) for c in self.vocab)):
                raise OnnxImportError("metadata_props['vocab'] must be a JSON list of "
                                      "characters")
        self.outputs = [o.name for o in graph.output]
        self.inputs = [i.name for i in graph.input
                       if i.name not in self.consts and not i.type.HasField("optional_type")]
        self._feedable = {i.name: i.type.tensor_type.elem_type if i.type.HasField("tensor_type")
                          else 0 for i in graph.input}  # name -> ONNX element type (0: any)
        self._declared = {i.name: _declared_shape(i.type) for i in graph.input}
        self._graph_nodes = list(graph.node)
        self._producer = {o: n for n in graph.node for o in n.output if o}
        self.nodes: list[RecurrentNode] = []
        self._rec = {}
        for n in graph.node:
            if n.domain not in ("", "ai.onnx"):
                raise OnnxImportError(f"{node_label(n)}: domain {n.domain!r} is not supported")
            if n.op_type not in SUPPORTED_OPS:
                around = ", ".join(sorted(SUPPORTED_OPS[len(RECURRENT_OPS):]))
                raise OnnxImportError(
                    f"{node_label(n)}: op {n.op_type!r} is not supported; lstmlab imports LSTM, "
                    f"RNN and GRU nodes and these ops around them: {around}")
            if n.op_type == "Constant":
                self.consts[n.output[0]] = _constant_value(n)
            elif n.op_type in RECURRENT_OPS:
                rn = node_to_layer(n, *self._weight_inputs(n))
                self.nodes.append(rn)
                self._rec[id(n)] = rn
        _check_order(self._graph_nodes, set(self.consts) | {i.name for i in graph.input},
                     self.outputs)

    def _weight_inputs(self, n):
        label = node_label(n)
        names = list(n.input) + [""] * 8
        if not names[0]:
            raise OnnxImportError(f"{label}: required input X is missing")
        slots = (1, 2, 3, 7) if n.op_type == "LSTM" else (1, 2, 3)
        out = []
        for slot, what in zip(slots, ("W", "R", "B", "P")):
            nm = names[slot]
            if not nm:
                if what in ("W", "R"):
                    raise OnnxImportError(f"{label}: required input {what} is missing")
                out.append(None)
                continue
            if nm not in self.consts:
                raise OnnxImportError(
                    f"{label}: input {what} ({nm!r}) is not a constant of the model (an "
                    f"initializer or Constant node); pass its value as weights={{{nm!r}: array}}")
            out.append(self.consts[nm])
        while len(out) < 4:
            out.append(None)
        return out

    # -- running ------------------------------------------------------------------------
    def run(self, feeds: dict, outputs: list[str] | None = None) -> dict[str, np.ndarray]:
        """Evaluate the graph on ``feeds`` (name -> array); returns the requested outputs
        (default: all graph outputs; any value of the graph can be named, one name as a
        string) by name, in order."""
        if not isinstance(feeds, Mapping):
            raise TypeError(f"feeds must be a mapping of input names to arrays "
                            f"({{{self.inputs[0] if self.inputs else 'X'!r}: array}}), got "
                            f"{type(feeds).__name__}")
        wanted = self.outputs if outputs is None else _names(outputs, "outputs")
        known = set(self._feedable) | set(self.consts) | {
            o for n in self._graph_nodes for o in n.output if o}
        unknown = [k for k in wanted if k not in known]
        if unknown:
            raise OnnxImportError(f"outputs {unknown} name no value of the graph; its outputs "
                                  f"are {self.outputs}")
        missing = [n for n in self.inputs if n not in feeds]
        if missing:
            raise OnnxImportError(f"missing input(s) {missing}; the model needs {self.inputs}")
        env = dict(self.consts)
        for name, value in feeds.items():
            env[name] = self._checked_feed(name, value)
        self._evaluate(self._graph_nodes, env)
        absent = [k for k in wanted if k not in env]  # an optional input left out
        if absent:
            raise OnnxImportError(f"outputs {absent} have no value in this run; its outputs "
                                  f"are {self.outputs}")
        return {k: env[k] for k in wanted}

    def _checked_feed(self, name, value) -> np.ndarray:
        """``value`` as an array, if the graph has an input ``name`` whose element type takes
        it: an integer input takes integers only (a float token would be cut silently), a
        float input integers or floats, a bool input bools."""
        if name not in self._feedable:
            raise OnnxImportError(f"feeds[{name!r}]: the graph has no input {name!r}; its inputs "
                                  f"are {list(self._feedable)}")
        x = np.asarray(value)
        declared = self._feedable[name]
        if declared:
            from onnx import helper
            want = np.dtype(helper.tensor_dtype_to_np_dtype(declared))
            takes = {"i": "iu", "u": "iu", "f": "iuf", "b": "b"}.get(want.kind, want.kind)
            if x.dtype.kind not in takes:
                raise OnnxImportError(f"feeds[{name!r}] must be an array of {_KIND_NAMES[want.kind]}"
                                      f" (the graph's input is {want.name}), got {x.dtype.name}")
        shape = self._declared[name]
        if shape is not None and (x.ndim != len(shape) or any(
                isinstance(d, int) and d != n for d, n in zip(shape, x.shape))):
            shown = "(" + ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"
            raise OnnxImportError(f"feeds[{name!r}] must have shape {shown} (the graph's input), "
                                  f"got {x.shape}")
        return x

    def _evaluate(self, nodes, env: dict) -> None:
        """Run ``nodes`` in order, adding their outputs to ``env`` (an If runs the nodes of
        the branch its condition picks, which see ``env`` too)."""
        for n in nodes:
            if n.op_type == "Constant":
                continue
            args = [env.get(i) if i else None for i in n.input]  # an absent optional: None
            if n.op_type == "If":
                res = self._branch(n, args, env)
            elif n.op_type in RECURRENT_OPS:
                args += [None] * (8 - len(args))
                rn = self._rec[id(n)]
                res = rn.run(args[0], args[4], args[5], args[6] if n.op_type == "LSTM" else None)
            else:
                try:
                    if n.op_type == "Split":
                        res = _split(args[0], node_attrs(n), args[1] if len(args) > 1 else None,
                                     len(n.output))
                    else:
                        res = _NUMPY_OPS[n.op_type](node_attrs(n), *args)
                except (ValueError, TypeError, IndexError, KeyError, AttributeError,
                        ZeroDivisionError) as e:  # AttributeError: an absent input (None)
                    raise OnnxImportError(f"{node_label(n)} failed on inputs of shapes "
                                          f"{[None if a is None else np.shape(a) for a in args]}: "
                                          f"{e}") from e
            if not isinstance(res, (tuple, list)):
                res = (res,)
            for name, v in zip(n.output, res):
                if name:
                    env[name] = v

    def _branch(self, n, args, env: dict) -> tuple:
        branches = node_attrs(n)
        try:
            if args[0] is None:
                raise ValueError("the condition is absent")
            chosen = branches["then_branch" if bool(np.asarray(args[0])) else "else_branch"]
            inner = list(chosen.node)
        except (KeyError, IndexError, ValueError, TypeError, AttributeError) as e:
            raise OnnxImportError(f"{node_label(n)}: needs a scalar condition and two "
                                  f"branches ({e})") from None
        for m in inner:
            if m.domain not in ("", "ai.onnx"):
                raise OnnxImportError(f"{node_label(m)} inside {node_label(n)}: domain "
                                      f"{m.domain!r} is not supported")
            if m.op_type not in _NUMPY_OPS and m.op_type not in ("If", "Constant"):
                raise OnnxImportError(f"{node_label(m)} inside {node_label(n)}: op "
                                      f"{m.op_type!r} is not supported in a branch")
            if m.op_type == "Constant":
                env[m.output[0]] = _constant_value(m)
        self._evaluate(inner, env)
        missing = [o.name for o in chosen.output if o.name not in env]
        if missing:
            raise OnnxImportError(f"{node_label(n)}: the branch produces no {missing}")
        return tuple(env[o.name] for o in chosen.output)

    # -- back to lstmlab layers ---------------------------------------------------------
    def _consumers(self, name: str):
        return [n for n in self._graph_nodes if name in n.input]

    def _level_output(self, rn_index: int) -> str | None:
        """Name of the (T, B, K·H) tensor that the glue after recurrent node ``rn_index``
        makes from its Y (Squeeze axis 1, or Transpose [0,2,1,3] + Reshape [0,0,-1])."""
        node = next(n for n in self._graph_nodes if self._rec.get(id(n)) is self.nodes[rn_index])
        y = node.output[0] if node.output else ""
        if not y:
            return None
        K = self.nodes[rn_index].layer.num_directions
        flat = ([0, 0, -1], [0, 0, K * self.nodes[rn_index].layer.hidden_size])
        for c in self._consumers(y):
            if K == 1 and c.op_type == "Squeeze":
                axes = node_attrs(c).get("axes")
                if axes is None and len(c.input) > 1:
                    axes = _ints(self.consts.get(c.input[1], []))
                if axes in ([1], [-3]):
                    return c.output[0]
            if c.op_type == "Transpose" and node_attrs(c).get("perm") == [0, 2, 1, 3]:
                for r in self._consumers(c.output[0]):
                    if (r.op_type == "Reshape" and r.input[1] in self.consts
                            and _ints(self.consts[r.input[1]]) in flat):
                        return r.output[0]
        return None

    def to_layer(self, batch_first: bool | None = None):
        """One stacked lstmlab ``LSTM``/``RNN``/``GRU`` holding the weights of every recurrent
        node.

        The nodes must form a stack as :func:`lstmlab.interop.to_onnx` writes it: the same op,
        hidden size, direction (forward or bidirectional), layout 0 and options, each level's
        input the previous level's output through Squeeze or Transpose + Reshape.
        ``batch_first`` defaults to what the exporter recorded, else to the graph's layout:
        True when the first node's input is a ``Transpose`` perm [1, 0, 2] of (B, T, D)
        rows (how ``torch.onnx.export`` writes a ``batch_first`` module), so the layer takes
        the arrays the graph takes. The graph's initial states are inputs, not parameters:
        pass them to the layer's forward.
        """
        from ..layers import GRU, LSTM, RNN
        if not self.nodes:
            raise OnnxImportError("the model has no LSTM, RNN or GRU node")
        first = self.nodes[0]
        for k, rn in enumerate(self.nodes):
            why = None
            if rn.op != first.op:
                why = f"it mixes {first.op} and {rn.op} nodes"
            elif rn.reverse:
                why = "a node has direction 'reverse', which a stacked layer cannot hold"
            elif rn.layout != 0:
                why = "a node has layout=1"
            elif (rn.layer.hidden_size, rn.layer.num_directions) != (
                    first.layer.hidden_size, first.layer.num_directions):
                why = "the nodes differ in hidden_size or direction"
            elif rn.op == "RNN" and rn.layer.nonlinearity != first.layer.nonlinearity:
                why = "the RNN nodes differ in activation"
            elif rn.op == "LSTM" and (rn.layer.clip, rn.layer.input_forget) != (
                    first.layer.clip, first.layer.input_forget):
                why = "the LSTM nodes differ in clip or input_forget"
            elif k > 0:
                x_in = next(n for n in self._graph_nodes if self._rec.get(id(n)) is rn).input[0]
                if self._level_output(k - 1) != x_in:
                    why = (f"the input of node {rn.name!r} is not the previous node's output "
                           f"reshaped to (T, B, K*H)")
            if why:
                raise OnnxImportError(f"the recurrent nodes do not form one stacked layer: {why}; "
                                      f"use .nodes[i].layer for each node, or .run()")
        ref = first.layer
        if batch_first is None and "lstmlab_config" in self.metadata:  # what lstmlab wrote
            cfg = _json_metadata(self.metadata, "lstmlab_config")
            batch_first = isinstance(cfg, dict) and bool(cfg.get("batch_first", False))
        elif batch_first is None:  # another exporter's: the graph's own layout
            batch_first = self._batch_major(self._first_node().input[0]) is not None
        common = dict(num_layers=len(self.nodes), bias=any(rn.has_bias for rn in self.nodes),
                      batch_first=batch_first, bidirectional=ref.bidirectional, dtype=ref.dtype,
                      rng=np.random.default_rng(0))
        if first.op == "LSTM":
            layer = LSTM(ref.input_size, ref.hidden_size, peephole=any(
                rn.has_peepholes for rn in self.nodes), clip=ref.clip,
                input_forget=ref.input_forget, **common)
        elif first.op == "GRU":
            layer = GRU(ref.input_size, ref.hidden_size, **common)
        else:
            layer = RNN(ref.input_size, ref.hidden_size, nonlinearity=ref.nonlinearity, **common)
        values = {k: np.zeros_like(v) for k, v in layer.params().items()}  # absent B, P mean 0
        for level, rn in enumerate(self.nodes):
            for k, v in rn.layer.params().items():
                values[k.replace("_l0", f"_l{level}", 1)] = v
        layer.load_params(values)
        return layer

    def pieces(self) -> dict:
        """``{"embedding": Embedding | None, "rnn": LSTM | RNN | GRU, "head": Linear | None}`` of a
        char-LM graph (Gather from a constant table -> recurrent stack -> a head: MatMul [+ Add],
        or Gemm on the output or on its Reshape to (T·B, K·H), as torch.onnx.export writes
        ``nn.Linear``), through the Transposes of a batch-first graph; ``rnn`` is time-major.
        A Gemm there that is no per-step Linear (transA, a weight or bias computed in the
        graph, a bias of another shape) gives ``head=None`` and a warning saying why."""
        from ..layers.basic import Embedding
        rnn = self.to_layer(batch_first=False)
        x = self._first_node().input[0]
        embedding = None
        prod = self._producer.get(self._batch_major(x) or x)  # batch-first: after a Transpose
        if prod is not None and prod.op_type == "Gather" and prod.input[0] in self.consts:
            table = self.consts[prod.input[0]]
            if table.ndim == 2 and node_attrs(prod).get("axis", 0) == 0:
                table = float_matrix(table, f"the embedding table {prod.input[0]!r}")
                embedding = Embedding(*table.shape, dtype=table.dtype, rng=np.random.default_rng(0))
                embedding.load_params({"weight": table})
        y = self._level_output(len(self.nodes) - 1)
        width = rnn.num_directions * rnn.hidden_size
        head = None
        for rows in [y] + [c.output[0] for c in (self._consumers(y) if y else [])
                           if c.op_type == "Transpose" and node_attrs(c).get("perm") == [1, 0, 2]]:
            head = head or self._matmul_head(rows) or self._gemm_head(rows, width)
        return {"embedding": embedding, "rnn": rnn, "head": head}

    def _first_node(self):
        """The graph node of the first recurrent node."""
        return next(n for n in self._graph_nodes if self._rec.get(id(n)) is self.nodes[0])

    def _batch_major(self, x: str) -> str | None:
        """The (B, T, ...) tensor that ``x`` is the Transpose perm [1, 0, 2] of, or None: a
        batch-first model's input on its way to a time-major recurrent node."""
        prod = self._producer.get(x)
        if prod is not None and prod.op_type == "Transpose" and node_attrs(prod).get("perm") == [
                1, 0, 2]:
            return prod.input[0]
        return None

    def _matmul_head(self, y: str):
        """The Linear of ``MatMul(y, W) [+ Add(b)]`` with constant W and b, or None."""
        mm = [c for c in self._consumers(y) if c.op_type == "MatMul" and c.input[0] == y
              and c.input[1] in self.consts]
        if not mm:
            return None
        w = float_matrix(self.consts[mm[0].input[1]], f"the head weight {mm[0].input[1]!r}")

        def bias_of(add):  # the Add's constant of shape (V,), or None
            return next((self.consts[i] for i in add.input
                         if i in self.consts and self.consts[i].shape == (w.shape[1],)), None)
        biases = [b for c in self._consumers(mm[0].output[0]) if c.op_type == "Add"
                  for b in [bias_of(c)] if b is not None]
        return _linear(w.T, finite(biases[0], "the head bias") if biases else None)

    def _gemm_head(self, y: str, width: int):
        """The Linear of a Gemm on ``y`` or on ``y`` reshaped to (-1, ``width``): weight
        ``alpha·B'ᵀ`` and bias ``beta·C`` (B' = Bᵀ under transB, C broadcast to one row), or
        None, with a warning naming why a Gemm found there is no per-step head."""
        rows = [y] + [r.output[0] for r in self._consumers(y)
                      if r.op_type == "Reshape" and r.input[0] == y and r.input[1] in self.consts
                      and _ints(self.consts[r.input[1]]) == [-1, width]]
        gemms = [c for x in rows for c in self._consumers(x) if c.op_type == "Gemm"
                 and c.input[0] == x]
        if not gemms:
            return None
        g = gemms[0]
        a = node_attrs(g)
        C = g.input[2] if len(g.input) > 2 and g.input[2] else None
        b_in = self.consts.get(g.input[1])
        why = None
        if a.get("transA", 0):
            why = "transA=1 multiplies the transposed outputs, not each step's"
        elif b_in is None:
            why = f"its weight {g.input[1]!r} is computed in the graph, not a constant"
        elif C is not None and C not in self.consts:
            why = f"its bias {C!r} is computed in the graph, not a constant"
        if why is None:
            w = float_matrix(b_in, f"the head weight {g.input[1]!r}")
            w = w.T if a.get("transB", 0) else w  # (K·H, V)
            V = w.shape[1]
            if w.shape[0] != width:
                why = f"its weight has {w.shape[0]} rows, not the {width} outputs of the stack"
            elif C is not None and (self.consts[C].ndim > 2 or np.broadcast_shapes(
                    self.consts[C].shape, (1, V)) != (1, V)):
                why = f"its bias {C!r} has shape {self.consts[C].shape}, not one row of {V}"
        if why:
            import warnings
            warnings.warn(f"pieces(): {node_label(g)} after the recurrent stack is not a "
                          f"per-step Linear head ({why}); head is None", stacklevel=3)
            return None
        alpha, beta = float(a.get("alpha", 1.0)), float(a.get("beta", 1.0))
        bias = None
        if C is not None:
            c = finite(self.consts[C], f"the head bias {C!r}")
            bias = np.broadcast_to(beta * c.astype(w.dtype), (1, V)).reshape(V)
        return _linear((alpha * w).T, bias)


def _declared_shape(type_proto) -> tuple | None:
    """The shape a graph input declares, a tensor's or an optional tensor's: a tuple of ints
    (fixed sizes) and names (sizes the feeds choose), or None when no shape is declared. A
    feed is checked against it as ONNX Runtime checks one, before the graph runs: a wrong
    ``h0`` is named as such, not as a size mismatch deep inside."""
    if type_proto.HasField("optional_type"):
        type_proto = type_proto.optional_type.elem_type
    if not (type_proto.HasField("tensor_type") and type_proto.tensor_type.HasField("shape")):
        return None
    return tuple(d.dim_value if d.HasField("dim_value") else (d.dim_param or "?")
                 for d in type_proto.tensor_type.shape.dim)


def _linear(weight: np.ndarray, bias: np.ndarray | None):
    """A Linear holding ``weight`` (V, K·H) and ``bias`` (V,) or none, in weight's dtype."""
    from ..layers.basic import Linear
    head = Linear(weight.shape[1], weight.shape[0], bias=bias is not None, dtype=weight.dtype,
                  rng=np.random.default_rng(0))
    head.load_params({"weight": weight} if bias is None else {"weight": weight, "bias": bias})
    return head


def import_onnx(model, weights: dict | None = None) -> OnnxModel:
    """Import an ONNX model (a ``ModelProto``, a path, or serialized bytes: ``bytes``,
    ``bytearray`` or ``memoryview``). Anything else (an open file, None) is a TypeError. A
    graph without its model (a GraphProto, or the bytes it serializes to) is refused with
    the call that wraps it in one.
    Weights in external files are read beside the .onnx file: such a model imports by its
    path only.

    ``weights`` gives values for node inputs that the model leaves as graph inputs (ONNX's
    own node tests feed ``W``, ``R``, ``B``, ``P`` that way), by the names the nodes take; a
    name no node takes is an OnnxImportError. Imports onnx.
    """
    from .._extras import require
    require("onnx", "lstmlab.interop.import_onnx")  # one line naming the extra, not a traceback
    import onnx
    from google.protobuf.message import DecodeError
    what = "the model"
    if isinstance(model, memoryview):
        model = model.tobytes()
    if not isinstance(model, (bytes, bytearray, str, os.PathLike, onnx.ModelProto)):
        hint = " (pass its path, or the bytes f.read() returns)" if hasattr(model, "read") else ""
        if isinstance(model, onnx.GraphProto):
            hint = f": {_WRAP_GRAPH}"
        raise TypeError(f"model must be a path, bytes or an onnx.ModelProto, got "
                        f"{type(model).__name__}{hint}")
    data = None
    if isinstance(model, (bytes, bytearray)):
        what, data = "the bytes", bytes(model)
        try:
            model = onnx.load_model_from_string(bytes(model))
        except DecodeError as exc:
            raise OnnxImportError(f"the bytes are not an ONNX model (protobuf: "
                                  f"{shorten(str(exc))})") from None
    elif not isinstance(model, onnx.ModelProto):
        path = os.fspath(model)
        what = f"ONNX model {path!r}"
        with open_regular_file(path, "ONNX model", OnnxImportError):
            pass  # missing, a directory, a device: refused before onnx reads it
        try:
            model = onnx.load_model(path)
            if not model.HasField("graph"):
                data = _file_bytes(path)
        except DecodeError as exc:
            raise OnnxImportError(f"ONNX model {path!r} is corrupt: not a valid protobuf "
                                  f"({shorten(str(exc))})") from None
        except (OSError, ValueError, onnx.checker.ValidationError) as exc:  # external data
            raise OnnxImportError(f"ONNX model {path!r} cannot be loaded "
                                  f"({type(exc).__name__}: {shorten(str(exc))})") from None
    if not model.HasField("graph"):  # protobuf reads empty input as a message with no fields
        if data is not None and _is_graph(data):
            holds = "the bytes hold" if what == "the bytes" else f"the file {path!r} holds"
            raise OnnxImportError(f"{holds} an ONNX graph (a GraphProto, what "
                                  f"graph.SerializeToString() writes), not a model: "
                                  f"{_WRAP_GRAPH}")
        raise OnnxImportError(f"no graph in {what}: an empty or truncated file is no ONNX "
                              f"model")
    _refuse_unloaded_external_data(model, what)
    return OnnxModel(model, weights)


_WRAP_GRAPH = ("wrap it in a model with onnx.helper.make_model(graph, opset_imports="
               "[onnx.helper.make_opsetid('', 17)]) and import that")


def _file_bytes(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def _is_graph(data: bytes) -> bool:
    """Whether ``data`` parses as a GraphProto with nodes: what ``graph.SerializeToString()``
    writes, which protobuf reads as a ModelProto without a graph."""
    import onnx
    from google.protobuf.message import DecodeError
    graph = onnx.GraphProto()
    try:
        graph.ParseFromString(data)
    except DecodeError:
        return False
    return len(graph.node) > 0 and all(n.op_type for n in graph.node)


def _refuse_unloaded_external_data(model, what: str) -> None:
    """Weights kept in external files are read beside the .onnx file when a path is imported.
    Bytes or a ModelProto loaded without them carry only the files' relative names, which
    would be resolved against the working directory: another model's weights.bin there would
    be read as this model's."""
    from onnx import TensorProto
    for t in model.graph.initializer:
        if t.data_location == TensorProto.EXTERNAL:
            location = next((e.value for e in t.external_data if e.key == "location"), "?")
            raise OnnxImportError(f"initializer {t.name!r} of {what} is kept in the external "
                                  f"file {location!r}, which is read beside the .onnx file: "
                                  f"import the model by its path")
