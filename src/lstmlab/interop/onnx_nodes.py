"""ONNX's recurrent nodes as lstmlab layers: one ``LSTM`` / ``RNN`` / ``GRU`` node, its
weights and attributes, becomes a layer that computes what the node computes.

Dimensions: T time, B batch, D input features, H hidden units, K directions (1 or 2).

An ONNX ``LSTM`` / ``RNN`` / ``GRU`` node is one layer level. :func:`node_to_layer` turns it
into an lstmlab ``LSTM`` / ``RNN`` / ``GRU`` (``num_layers=1``, bidirectional when ``direction`` is) wrapped in a
:class:`RecurrentNode` that keeps what the node means beyond the weights — a ``reverse``
direction, ``layout=1`` — and can run the node with ONNX's input and output shapes.

What the importer maps, attribute by attribute (anything else is an :class:`OnnxImportError`
naming it):

* ``W, R, B`` — transposed, gates from ONNX's i, o, f, c to lstmlab's f, i, o, C̃, the two bias
  halves summed; ``P`` (peepholes i, o, f) -> ``LSTM(peephole=True)``. A GRU's gates go from
  z, r, h to r, z, n, its r and z bias halves summed, the candidate's two kept apart.
* ``linear_before_reset`` (GRU) must be 1, the reset after the recurrent product as lstmlab,
  PyTorch and Keras' ``reset_after=True`` compute it; 0 (the reset before it) is an error.
* ``direction`` forward / bidirectional -> the layer's own; reverse -> the layer run on each
  sequence reversed within its length.
* ``layout`` 0 / 1 -> time-major / batch-major inputs and outputs.
* ``sequence_lens`` -> the layers' ``lengths`` (a length of 0 gives zero outputs and a zero
  final state, as ONNX Runtime does).
* ``clip`` (LSTM) -> ``LSTM(clip=...)``; ``input_forget`` -> ``LSTM(input_forget=True)``.
* ``activations`` — LSTM: Sigmoid, Tanh, Tanh (per direction); GRU: Sigmoid, Tanh; RNN: Tanh
  or Relu, the same in both directions. ``activation_alpha`` / ``activation_beta`` do not affect these and are ignored.

The helpers that read a node (``node_attrs``, ``tensor_value``, ``node_label``, ...) serve
the whole graph's import too (:mod:`lstmlab.interop.onnx_import`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .._checks import as_float_array, as_numpy, short_repr, shorten
from ..kernels import reverse_padded
from ..kernels.gru import gru_bias_join
from ._gates import GRU_SWAP_RZ, OURS_FROM_ONNX, OURS_P_FROM_ONNX, permute_blocks

__all__ = ["OnnxImportError", "RecurrentNode", "node_to_layer"]


class OnnxImportError(ValueError):
    """An ONNX model or node that lstmlab cannot import exactly; the message says what and why."""


_LSTM_ATTRS = {"activation_alpha", "activation_beta", "activations", "clip", "direction",
               "hidden_size", "input_forget", "layout"}
_RNN_ATTRS = {"activation_alpha", "activation_beta", "activations", "clip", "direction",
              "hidden_size", "layout"}
_KNOWN_ATTRS = {"LSTM": _LSTM_ATTRS, "RNN": _RNN_ATTRS, "GRU": _RNN_ATTRS | {"linear_before_reset"}}
RECURRENT_OPS = tuple(_KNOWN_ATTRS)


def node_attrs(node) -> dict:
    from onnx import helper
    out = {}
    for a in node.attribute:
        try:
            v = helper.get_attribute_value(a)
            if isinstance(v, bytes):
                v = v.decode()
            elif isinstance(v, list):
                v = [x.decode() if isinstance(x, bytes) else x for x in v]
        except (ValueError, TypeError) as exc:  # also UnicodeDecodeError
            raise OnnxImportError(f"{node_label(node)}: attribute {a.name!r} cannot be read "
                                  f"({shorten(str(exc))})") from None
        out[a.name] = v
    return out


def tensor_value(tensor, what: str) -> np.ndarray:
    """A TensorProto as an array; a tensor that does not decode is an OnnxImportError. The
    array is the size of the data in the file: dims that data does not fill are an error,
    not an allocation."""
    from onnx import checker, numpy_helper
    try:
        value = numpy_helper.to_array(tensor)
    except (ValueError, TypeError, KeyError, checker.ValidationError) as exc:
        raise OnnxImportError(f"{what} cannot be read as an array "
                              f"({type(exc).__name__}: {shorten(str(exc))})") from None
    if value.dtype.kind not in "biuf":  # complex, strings, ml_dtypes' packed floats
        raise OnnxImportError(f"{what} has type {value.dtype}; lstmlab evaluates graphs of "
                              f"boolean, integer and float16/32/64 tensors")
    return value


def float_matrix(value: np.ndarray, what: str) -> np.ndarray:
    """``value`` if it can be a layer's weight matrix: 2-D, non-empty, float32 or float64,
    finite."""
    if value.ndim != 2 or 0 in value.shape or value.dtype not in (np.float32, np.float64):
        raise OnnxImportError(f"{what} must be a non-empty float32 or float64 matrix, got shape "
                              f"{value.shape} of {value.dtype}")
    return finite(value, what)


def finite(value: np.ndarray, what: str) -> np.ndarray:
    """``value`` (a floating array) if it holds no NaN or inf, else an OnnxImportError naming
    ``what`` and the first such index: a weight that holds one imports and turns every output
    into NaN."""
    try:
        as_float_array(value, what, value.dtype)
    except ValueError as exc:
        raise OnnxImportError(str(exc)) from None
    return value


def _attr(attrs: dict, name: str, kind, label: str, default=None):
    """Attribute ``name`` of type ``kind`` (int, float, str or list of str), or ``default``."""
    if name not in attrs:
        return default
    v = attrs[name]
    if kind is list:
        ok = isinstance(v, list) and all(isinstance(x, str) for x in v)
    elif kind is float:
        ok = isinstance(v, (int, float)) and not isinstance(v, bool)
    else:
        ok = isinstance(v, kind) and not isinstance(v, bool)
    if not ok:
        want = "a list of strings" if kind is list else f"of type {kind.__name__}"
        raise OnnxImportError(f"{label}: attribute {name!r} must be {want}, got "
                              f"{short_repr(v)}")
    return v


def node_label(node) -> str:
    return f"{node.op_type} node {node.name!r}" if node.name else f"{node.op_type} node"


@dataclass
class RecurrentNode:
    """One ONNX LSTM/RNN/GRU node as an lstmlab layer, plus the node semantics the layer lacks."""

    op: str  # "LSTM", "RNN" or "GRU"
    name: str
    layer: object  # lstmlab LSTM, RNN or GRU, num_layers=1
    reverse: bool = False  # direction == "reverse"
    layout: int = 0  # 0: (T, B, ...) ; 1: (B, T, ...)
    has_bias: bool = True
    has_peepholes: bool = False
    attrs: dict = field(default_factory=dict)

    def run(self, X, sequence_lens=None, initial_h=None, initial_c=None):
        """The node's outputs ``(Y, Y_h[, Y_c])`` with ONNX's shapes for its layout:
        ``Y (T, K, B, H)`` and ``Y_h (K, B, H)`` (layout 0) or ``(B, T, K, H)``, ``(B, K, H)``."""
        layer = self.layer
        dt = layer.dtype
        x = self._numbers(X, "X")
        if x.ndim != 3:
            raise OnnxImportError(f"{self.op} {self.name!r}: X must have 3 dimensions, got "
                                  f"{x.shape}")
        if self.layout == 1:
            x = x.transpose(1, 0, 2)
        x = np.ascontiguousarray(x)  # (T, B, D)
        T, B, _ = x.shape
        K, H = layer.num_directions, layer.hidden_size
        states = []
        for s, nm in ((initial_h, "initial_h"), (initial_c, "initial_c")):
            if s is None:
                states.append(None)
                continue
            s = self._numbers(s, nm)
            if self.layout == 1 and s.ndim == 3:
                s = s.transpose(1, 0, 2)
            if s.shape != (K, B, H):
                raise OnnxImportError(f"{self.op} {self.name!r}: {nm} must have shape "
                                      f"{(K, B, H) if self.layout == 0 else (B, K, H)}, got "
                                      f"{np.shape(initial_h if nm == 'initial_h' else initial_c)}")
            states.append(np.ascontiguousarray(s))
        lengths, empty = None, None
        if sequence_lens is not None:
            given = np.asarray(sequence_lens)
            whole = given.dtype.kind in "iu" or (given.dtype.kind == "f"
                                                 and np.all(np.isfinite(given))
                                                 and np.all(given == np.round(given)))
            lengths = given.astype(np.int64) if whole else np.full(B, -1)
            if lengths.shape != (B,) or lengths.min(initial=0) < 0 or lengths.max(initial=0) > T:
                raise OnnxImportError(f"{self.op} {self.name!r}: sequence_lens must be {B} whole "
                                      f"numbers in [0, {T}], got {np.asarray(sequence_lens).tolist()}")
            empty = lengths == 0
            lengths = np.maximum(lengths, 1)  # run a step, then zero those rows below
            if not empty.any():
                empty = None
        if self.reverse:
            x = np.ascontiguousarray(reverse_padded(x, lengths))
        if self.op == "LSTM":
            y, (h_n, c_n) = layer.forward(x, None if states[0] is None and states[1] is None
                                          else tuple(np.zeros((K, B, H), dt) if s is None else s
                                                     for s in states), lengths=lengths)
            finals = [h_n, c_n]
        else:
            y, h_n = layer.forward(x, states[0], lengths=lengths)
            finals = [h_n]
        if self.reverse:
            y = reverse_padded(y, lengths)
        Y = np.ascontiguousarray(y.reshape(T, B, K, H).transpose(0, 2, 1, 3))  # (T, K, B, H)
        if empty is not None:
            Y[:, :, empty] = 0
            for f in finals:
                f[:, empty] = 0
        if self.layout == 1:
            Y = Y.transpose(2, 0, 1, 3)  # (B, T, K, H)
            finals = [f.transpose(1, 0, 2) for f in finals]
        return (Y, *finals)

    def _numbers(self, value, name: str) -> np.ndarray:
        """``value`` as an array of the layer's dtype, if it holds real numbers (integers or
        floats): strings, bools and complex numbers are an OnnxImportError naming ``name``."""
        try:
            a = as_numpy(value, name)
        except ValueError as exc:
            raise OnnxImportError(f"{self.op} {self.name!r}: {exc}") from None
        if a.dtype.kind not in "iuf":
            raise OnnxImportError(f"{self.op} {self.name!r}: {name} must be an array of numbers, "
                                  f"got {a.dtype}")
        return a.astype(self.layer.dtype)


def _check_activations(op: str, label: str, acts, K: int):
    if acts is None:
        return "tanh"
    given, acts = list(acts), [a.lower() for a in acts]
    per_dir = {"LSTM": 3, "GRU": 2}.get(op, 1)
    if len(acts) != per_dir * K:
        raise OnnxImportError(f"{label}: 'activations' must list {per_dir * K} functions "
                              f"({per_dir} per direction), got {len(acts)}")
    if op == "LSTM":
        for k, (a, want) in enumerate(zip(acts, ["sigmoid", "tanh", "tanh"] * K)):
            if a != want:
                role = "fgh"[k % 3]
                raise OnnxImportError(
                    f"{label}: activation {given[k]!r} for {role} (position {k}) is not "
                    f"supported; lstmlab's LSTM computes f=Sigmoid, g=Tanh, h=Tanh")
        return "tanh"
    if op == "GRU":
        for k, (a, want) in enumerate(zip(acts, ["sigmoid", "tanh"] * K)):
            if a != want:
                raise OnnxImportError(
                    f"{label}: activation {given[k]!r} for {'fg'[k % 2]} (position {k}) is not "
                    f"supported; lstmlab's GRU computes f=Sigmoid, g=Tanh")
        return "tanh"
    for k, a in enumerate(acts):
        if a not in ("tanh", "relu"):
            raise OnnxImportError(f"{label}: activation {given[k]!r} (position {k}) is not "
                                  f"supported; lstmlab's RNN computes Tanh or Relu")
    if len(set(acts)) != 1:
        raise OnnxImportError(f"{label}: the two directions use different activations {given}; "
                              f"lstmlab's RNN has one nonlinearity for both")
    return acts[0]


def _as_weight(value, name: str, label: str) -> np.ndarray:
    a = np.asarray(value)
    if a.dtype not in (np.float32, np.float64):
        raise OnnxImportError(f"{label}: input {name} must be float32 or float64, got {a.dtype}")
    return finite(a, f"{label}: input {name}")


def node_to_layer(node, W, R, B=None, P=None) -> RecurrentNode:
    """An ONNX ``LSTM``, ``RNN`` or ``GRU`` node (a ``NodeProto``) with its weight values ->
    lstmlab.

    The layer's dtype is W's (float32 or float64). Raises :class:`OnnxImportError` for an op,
    attribute, activation or shape lstmlab cannot reproduce exactly.
    """
    from ..layers import GRU, LSTM, RNN
    op = node.op_type
    label = node_label(node)
    if op not in RECURRENT_OPS:
        raise OnnxImportError(f"{label}: node_to_layer takes LSTM, RNN or GRU nodes, not {op!r}")
    attrs = node_attrs(node)
    unknown = sorted(set(attrs) - _KNOWN_ATTRS[op])
    if unknown:
        raise OnnxImportError(f"{label}: attribute {unknown[0]!r} is not supported "
                              f"(known: {sorted(_KNOWN_ATTRS[op])})")
    if op == "GRU" and _attr(attrs, "linear_before_reset", int, label, 0) != 1:
        raise OnnxImportError(f"{label}: linear_before_reset=0 (the reset gate applied before "
                              f"the recurrent product) is not supported; lstmlab's GRU applies "
                              f"it after, as PyTorch does: linear_before_reset=1")
    direction = _attr(attrs, "direction", str, label, "forward")
    if direction not in ("forward", "reverse", "bidirectional"):
        raise OnnxImportError(f"{label}: direction {direction!r} is not one of forward, reverse, "
                              f"bidirectional")
    K = 2 if direction == "bidirectional" else 1
    layout = _attr(attrs, "layout", int, label, 0)
    if layout not in (0, 1):
        raise OnnxImportError(f"{label}: layout must be 0 or 1, got {layout}")
    G = {"LSTM": 4, "GRU": 3}.get(op, 1)

    W = _as_weight(W, "W", label)
    R = _as_weight(R, "R", label)
    dtype = W.dtype
    if R.ndim != 3:
        raise OnnxImportError(f"{label}: R must have shape ({K}, {G}*H, H), got {R.shape}")
    H = _attr(attrs, "hidden_size", int, label, R.shape[-1])
    if H < 1:
        raise OnnxImportError(f"{label}: hidden_size must be positive, got {H}")
    if W.ndim != 3 or W.shape[:2] != (K, G * H) or W.shape[2] < 1:
        raise OnnxImportError(f"{label}: W must have shape ({K}, {G * H}, input_size) "
                              f"(num_directions, {G}*hidden_size, input_size), got {W.shape}")
    D = W.shape[2]
    if R.shape != (K, G * H, H):
        raise OnnxImportError(f"{label}: R must have shape {(K, G * H, H)}, got {R.shape}")
    if B is not None:
        B = _as_weight(B, "B", label)
        if B.shape != (K, 2 * G * H):
            raise OnnxImportError(f"{label}: B must have shape {(K, 2 * G * H)}, got {B.shape}")
    if P is not None:
        if op != "LSTM":
            raise OnnxImportError(f"{label}: {'an' if op == 'RNN' else 'a'} {op} node has no "
                                  f"peephole input P")
        P = _as_weight(P, "P", label)
        if P.shape != (K, 3 * H):
            raise OnnxImportError(f"{label}: P must have shape {(K, 3 * H)}, got {P.shape}")

    nonlinearity = _check_activations(op, label, _attr(attrs, "activations", list, label), K)
    clip = _attr(attrs, "clip", float, label)
    if clip is not None:
        if op != "LSTM":
            raise OnnxImportError(f"{label}: attribute 'clip' on {'an' if op == 'RNN' else 'a'} "
                                  f"{op} node is not supported "
                                  f"(lstmlab clips LSTM gate pre-activations only)")
        if not 0 < clip < np.inf:
            raise OnnxImportError(f"{label}: clip must be a positive number, got {clip}")
    input_forget = _attr(attrs, "input_forget", int, label, 0)
    if input_forget not in (0, 1):  # the ONNX spec defines these two; 2 is no "on"
        raise OnnxImportError(f"{label}: input_forget must be 0 or 1, got {input_forget}")
    input_forget = bool(input_forget)

    common = dict(num_layers=1, bias=B is not None, bidirectional=K == 2, dtype=dtype,
                  rng=np.random.default_rng(0))
    if op == "LSTM":
        layer = LSTM(D, H, peephole=P is not None, clip=clip, input_forget=input_forget,
                     **common)
    elif op == "GRU":
        layer = GRU(D, H, **common)
    else:
        layer = RNN(D, H, nonlinearity=nonlinearity, **common)

    perm = {"LSTM": OURS_FROM_ONNX, "GRU": GRU_SWAP_RZ}.get(op, (0,))
    values = {}
    for d, s in enumerate(["l0", "l0_reverse"][:K]):
        values[f"Wx_{s}"] = permute_blocks(W[d], perm, 0).T  # (D, G·H)
        values[f"Wh_{s}"] = permute_blocks(R[d], perm, 0).T  # (H, G·H)
        if B is not None and op == "GRU":  # (4H,) b_r, b_z, b_in, b_hn
            values[f"b_{s}"] = gru_bias_join(permute_blocks(B[d, :G * H], perm, 0),
                                             permute_blocks(B[d, G * H:], perm, 0))
        elif B is not None:
            wb, rb = B[d, :G * H], B[d, G * H:]
            values[f"b_{s}"] = permute_blocks(wb.astype(np.float64) + rb, perm, 0)  # (G·H,)
        if P is not None:
            values[f"P_{s}"] = permute_blocks(P[d], OURS_P_FROM_ONNX, 0)  # (3H,)
    layer.load_params(values)
    return RecurrentNode(op, node.name, layer, reverse=direction == "reverse", layout=layout,
                         has_bias=B is not None, has_peepholes=P is not None, attrs=attrs)
