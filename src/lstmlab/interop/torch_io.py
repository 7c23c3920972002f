"""PyTorch, both ways: state dicts as plain NumPy arrays, and real ``torch.nn`` modules.

The state-dict functions need only NumPy, so a ``state_dict`` saved as arrays (``.npz``, or
tensors converted with ``.numpy()``) converts on a machine without torch. ``to_torch`` and
``from_torch`` build or read real modules and import torch when called.

Correspondence (the layers take PyTorch's arguments, so only the weights need converting)::

    lstmlab LSTM / RNN     torch.nn.LSTM / torch.nn.RNN   weight_ih = Wxᵀ, weight_hh = Whᵀ, gate
                                                          blocks (f, i, o, C̃) -> (i, f, g, o);
                                                          bias_ih + bias_hh = b
    lstmlab GRU            torch.nn.GRU                   weight_ih = Wxᵀ, weight_hh = Whᵀ (r, z,
                                                          n both); b = (b_ir + b_hr, b_iz + b_hz,
                                                          b_in, b_hn)
    lstmlab Embedding      torch.nn.Embedding             weight (V, E), the same array
    lstmlab Linear         torch.nn.Linear                weight (O, D), bias (O,), the same

A whole model is a mapping of names to these pieces (``{"embed": Embedding, "rnn": LSTM,
"head": Linear}``): :func:`model_state_dict` and :func:`load_model_state_dict` prefix each
piece's keys with its name and a dot, as ``torch.nn.Module.state_dict`` does for children.
PyTorch's LSTM has no peepholes, clip, coupled gates or layer norm: ``to_torch`` of such a
layer raises a ValueError (a layer-norm LSTM's state dict carries its gains as ``ln_*`` keys). Its
projections (``proj_size``, ``weight_hr_l{k} = Wrᵀ``) are lstmlab's ``LSTM(proj_size=...)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import contextmanager

import numpy as np

from .._checks import as_numpy, short_repr
from ._gates import RECURRENT_OR_BASIC, kind_of, output_path, refuse_layer_norm

__all__ = ["torch_state_dict", "load_torch_state_dict", "from_torch_state_dict",
           "model_state_dict", "load_model_state_dict", "to_torch", "from_torch"]


def _basic():
    from ..layers.basic import Embedding, Linear
    return Embedding, Linear


def torch_state_dict(module) -> dict[str, np.ndarray]:
    """The module's parameters under PyTorch's names, shapes and gate order (NumPy arrays).

    ``module`` is an lstmlab ``LSTM``, ``RNN``, ``GRU``, ``Embedding`` or ``Linear``. For the
    recurrent layers ``bias_ih`` carries the whole bias and ``bias_hh`` is zero (their sum is
    what counts), but for the GRU's b_hn, which is ``bias_hh``'s n block. A layer with
    zoneout is refused, as by :func:`to_torch`: ``nn.LSTM`` would load its weights and
    compute other outputs.
    """
    _refuse_zoneout(module)
    Embedding, Linear = _basic()
    if isinstance(module, Embedding):
        return {"weight": module.params()["weight"].copy()}
    if isinstance(module, Linear):
        p = module.params()
        return {k: p[k].copy() for k in ("weight", "bias") if k in p}
    kind_of(module, RECURRENT_OR_BASIC)  # a TypeError for anything else
    return module.torch_state_dict()


def load_torch_state_dict(module, state_dict: Mapping) -> None:
    """Copy a PyTorch state dict (tensors or arrays) into ``module``, of the same configuration."""
    Embedding, Linear = _basic()
    if isinstance(module, (Embedding, Linear)):
        _check_state_dict(state_dict)
        sd = {k: as_numpy(v, f"state_dict[{k!r}]") for k, v in state_dict.items()}
        for k, v in sd.items():
            if v.dtype.kind != "f":
                raise TypeError(f"state_dict[{k!r}] must be floating point, got {v.dtype}")
        module.load_params(sd)  # (checks every array before it copies any)
        return
    kind_of(module, RECURRENT_OR_BASIC)
    module.load_torch_state_dict(state_dict)  # (the layer takes tensors, bfloat16 too)


def _check_state_dict(state_dict) -> None:
    if not isinstance(state_dict, Mapping):
        raise TypeError(f"state_dict must be a mapping of names to tensors or arrays (what "
                        f"torch's module.state_dict() returns), got {type(state_dict).__name__}")


def _layer_keys(sd: Mapping) -> tuple[int, bool, bool]:
    """(num_layers, bidirectional, bias) read off the keys of a recurrent state dict."""
    layers = 0
    while f"weight_ih_l{layers}" in sd:
        layers += 1
    if layers == 0:
        prefixed = sorted(k[: -len("weight_ih_l0")] for k in sd if k.endswith(".weight_ih_l0"))
        hint = (f"; the keys of a model's child start with its name: pass the entries under "
                f"{prefixed[0]!r} with that prefix removed (load_model_state_dict does so for "
                f"named pieces)" if prefixed else "")
        raise ValueError(f"not a torch.nn.LSTM/RNN/GRU state_dict: no 'weight_ih_l0' among the keys "
                         f"{sorted(sd)[:8]}{hint}")
    return layers, "weight_ih_l0_reverse" in sd, "bias_ih_l0" in sd


def from_torch_state_dict(state_dict: Mapping, kind: str | None = None,
                          nonlinearity: str = "tanh", batch_first: bool = False,
                          dtype=None):
    """Build an lstmlab ``LSTM``, ``RNN`` or ``GRU`` from a ``torch.nn.LSTM`` / ``RNN`` / ``GRU``
    state dict.

    Sizes, layer count, bidirectionality, bias, projections (``weight_hr_l{k}``) and layer
    norm (the ``ln_*`` gains :func:`torch_state_dict` writes) are read off the keys and
    shapes; ``kind``
    (``"LSTM"``, ``"RNN"`` or ``"GRU"``) defaults to what the weight shapes say (4H rows: LSTM,
    3H: GRU, H: RNN).
    What a state dict does not record is passed in: ``nonlinearity`` of an RNN,
    ``batch_first``. ``dtype`` defaults to the arrays' (float32 or float64).
    """
    from ..layers import GRU, LSTM, RNN
    _check_state_dict(state_dict)
    if kind is not None and str(kind).upper() not in ("LSTM", "RNN", "GRU"):
        raise ValueError(f"kind must be 'LSTM', 'RNN', 'GRU' or None (read off the weights), "
                         f"got {kind!r}")
    sd = {k: as_numpy(v, f"state_dict[{k!r}]") for k, v in state_dict.items()}
    L, bidirectional, bias = _layer_keys(sd)
    if "weight_hh_l0" not in sd:
        raise ValueError(f"state_dict has 'weight_ih_l0' but no 'weight_hh_l0': a "
                         f"torch.nn.LSTM/RNN/GRU state dict has both; its keys are "
                         f"{sorted(sd)[:8]}")
    w_ih, w_hh = sd["weight_ih_l0"], sd["weight_hh_l0"]
    if w_ih.ndim != 2 or w_hh.ndim != 2:
        raise ValueError(f"weight_ih_l0 and weight_hh_l0 must be matrices, got shapes "
                         f"{w_ih.shape} and {w_hh.shape}")
    w_hr = sd.get("weight_hr_l0")  # (P, H): an LSTM with projections, whose w_hh is (4H, P)
    if w_hr is not None and (w_hr.ndim != 2 or w_hh.shape[1] != w_hr.shape[0]):
        raise ValueError(f"weight_hr_l0 must have shape (proj_size, hidden_size) = "
                         f"({w_hh.shape[1]}, H), got {w_hr.shape}")
    H = w_hh.shape[1] if w_hr is None else w_hr.shape[1]
    gates = w_hh.shape[0] // H if H else 0
    inferred = {4: "LSTM", 3: "GRU", 1: "RNN"}.get(gates) if w_hh.shape[0] == gates * H else None
    if inferred is None:
        raise ValueError(f"weight_hh_l0 has shape {w_hh.shape}: an LSTM has (4H, H), a GRU "
                         f"(3H, H), an RNN (H, H); {gates} gate blocks are not supported")
    kind = inferred if kind is None else kind.upper()
    if kind != inferred:
        raise ValueError(f"kind={kind!r} but the weights are those of an {inferred} "
                         f"(weight_hh_l0 has shape {w_hh.shape})")
    if dtype is None:
        dtype = np.float64 if w_ih.dtype == np.float64 else np.float32
    common = dict(num_layers=L, bias=bias, batch_first=batch_first, bidirectional=bidirectional,
                  dtype=dtype, rng=np.random.default_rng(0))
    if w_hr is not None and kind != "LSTM":
        raise ValueError(f"weight_hr_l0 (projections) belongs to an LSTM, not an {kind}")
    layer_norm = "ln_ih_weight_l0" in sd  # the gains torch_state_dict writes for such a layer
    if layer_norm and kind != "LSTM":
        raise ValueError(f"ln_ih_weight_l0 (layer-norm gains) belongs to an LSTM, not an {kind}")
    if kind == "LSTM":
        layer = LSTM(w_ih.shape[1], H, proj_size=0 if w_hr is None else w_hr.shape[0],
                     layer_norm=layer_norm, **common)
    elif kind == "GRU":
        layer = GRU(w_ih.shape[1], H, **common)
    else:
        layer = RNN(w_ih.shape[1], H, nonlinearity=nonlinearity, **common)
    layer.load_torch_state_dict(sd)
    return layer


def _refuse_zoneout(module) -> None:
    """Zoneout changes evaluation too (h_t = p·h_{t-1} + (1-p)·h̃_t): torch.nn has no such
    layer, so its weights in an nn.LSTM would compute other outputs."""
    if getattr(module, "zoneout", 0):
        raise ValueError(f"torch.nn.LSTM has no zoneout: a layer with zoneout={module.zoneout} "
                         f"has no torch.nn equivalent; convert a layer with zoneout=0")


def model_state_dict(pieces: Mapping[str, object]) -> dict[str, np.ndarray]:
    """One PyTorch-style state dict for a model made of named pieces, ``"name.key"`` keys.

    ``model_state_dict({"embed": emb, "rnn": lstm, "head": linear})`` has the keys of a
    ``torch.nn.Module`` whose children ``embed``, ``rnn``, ``head`` are ``nn.Embedding``,
    ``nn.LSTM``, ``nn.Linear``. A layer with zoneout is refused, as by :func:`to_torch`: those
    modules would load its weights and compute other outputs.
    """
    _check_pieces(pieces)
    out = {}
    for name, piece in pieces.items():
        out.update({f"{name}.{k}": v for k, v in torch_state_dict(piece).items()})
    return out


def _check_pieces(pieces) -> None:
    """``pieces`` maps names to layers; a name is a non-empty string without a dot, as
    ``torch.nn.Module`` requires of a child's name: ``"a"`` and ``"a.b"`` would make the key
    ``"a.b.weight"`` belong to either."""
    if not isinstance(pieces, Mapping):
        raise TypeError(f"pieces must be a mapping of names to layers ({{'embed': embedding, "
                        f"'rnn': lstm, 'head': linear}}), got {type(pieces).__name__}")
    for name in pieces:
        if not isinstance(name, str) or not name or "." in name:
            raise ValueError(f"piece names must be non-empty strings without a dot (a torch "
                             f"module's child names), got {name!r}")


@contextmanager
def _all_or_nothing(modules):
    """Restores the parameters of ``modules`` when the block raises: a state dict refused
    halfway (a wrong shape in the last piece) leaves the model as it was, not part loaded."""
    saved = [(m, {k: v.copy() for k, v in m.params().items()}) for m in modules]
    try:
        yield
    except BaseException:
        for m, params in saved:
            for k, v in m.params().items():
                v[...] = params[k]
        raise


def load_model_state_dict(pieces: Mapping[str, object], state_dict: Mapping) -> None:
    """The inverse of :func:`model_state_dict`: split the keys by prefix and load each piece.
    A state dict that is refused changes no piece."""
    _check_pieces(pieces)
    _check_state_dict(state_dict)
    sd = dict(state_dict)
    known = tuple(f"{n}." for n in pieces)
    extra = sorted(k for k in sd if not k.startswith(known))
    if extra:
        raise ValueError(f"state_dict has keys for no piece of the model: {extra}")
    parts = {}
    for name in pieces:
        prefix = f"{name}."
        parts[name] = {k[len(prefix):]: v for k, v in sd.items() if k.startswith(prefix)}
        if not parts[name]:
            raise ValueError(f"state_dict has no keys for the piece {name!r} (prefix {prefix!r})")
    with _all_or_nothing(pieces.values()):
        for name, piece in pieces.items():
            load_torch_state_dict(piece, parts[name])


# -- real torch modules ---------------------------------------------------------------------

def _torch_dtype(torch, dtype):
    return torch.float64 if np.dtype(dtype) == np.float64 else torch.float32


def to_torch(module):
    """The equivalent ``torch.nn`` module (``LSTM``, ``RNN``, ``GRU``, ``Embedding``, ``Linear``),
    holding a copy of the weights, in the layer's dtype and mode (training or evaluation). Imports torch. The recurrent
    regularisations act in training only and ``torch.nn`` has none: they are not carried, and
    zoneout, which changes evaluation too, is refused."""
    Embedding, Linear = _basic()
    from ..layers import GRU, LSTM, RNN
    if not isinstance(module, (LSTM, RNN, GRU, Embedding, Linear)):
        raise TypeError(f"to_torch converts lstmlab LSTM, RNN, GRU, Embedding and Linear; "
                        f"got {type(module).__name__}")
    _refuse_zoneout(module)
    import torch
    tdt = _torch_dtype(torch, module.dtype)
    if isinstance(module, Embedding):
        out = torch.nn.Embedding(module.num_embeddings, module.embedding_dim, dtype=tdt)
    elif isinstance(module, Linear):
        out = torch.nn.Linear(module.in_features, module.out_features,
                              bias=module.bias is not None, dtype=tdt)
    else:
        kind = kind_of(module)
        refuse_layer_norm(module, "PyTorch")  # its state dict (torch_state_dict) has the gains
        kwargs = dict(num_layers=module.num_layers, bias=module.bias,
                      batch_first=module.batch_first, bidirectional=module.bidirectional,
                      dropout=module.dropout, dtype=tdt)
        if kind == "LSTM":
            out = torch.nn.LSTM(module.input_size, module.hidden_size,
                                proj_size=module.proj_size, **kwargs)
        elif kind == "GRU":
            out = torch.nn.GRU(module.input_size, module.hidden_size, **kwargs)
        else:
            out = torch.nn.RNN(module.input_size, module.hidden_size,
                               nonlinearity=module.nonlinearity, **kwargs)
    sd = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in torch_state_dict(module).items()}
    out.load_state_dict(sd)
    return out.train(module.training)  # an evaluating layer's dropout stays off


def from_torch(module, dtype=None):
    """The equivalent lstmlab layer of a ``torch.nn.LSTM``, ``RNN``, ``GRU``, ``Embedding`` or
    ``Linear``, with the weights the module computes with (a pruned weight as masked), in
    its mode (training or evaluation).

    ``dtype`` (float32 or float64, as NumPy or torch spells it) defaults to the module's
    (float64 stays float64, anything else becomes float32).
    """
    import torch
    from ..layers import GRU, LSTM, RNN
    Embedding, Linear = _basic()
    converted = (torch.nn.LSTM, torch.nn.RNN, torch.nn.GRU, torch.nn.Embedding, torch.nn.Linear)
    if not isinstance(module, converted):
        raise TypeError(f"from_torch converts torch.nn.LSTM, RNN, GRU, Embedding and Linear; "
                        f"got {type(module).__name__}")
    params = list(module.parameters())
    if any(p.is_meta for p in params):
        raise ValueError(f"the {type(module).__name__}'s parameters are on the meta device and "
                         f"hold no values: load its weights (module.to_empty(device='cpu') and "
                         f"load_state_dict) before converting it")
    if dtype is None:
        dtype = np.float64 if params and params[0].dtype == torch.float64 else np.float32
    rng = np.random.default_rng(0)
    if isinstance(module, torch.nn.Embedding):
        if module.padding_idx is not None or module.max_norm is not None:
            raise ValueError("torch.nn.Embedding with padding_idx or max_norm has no lstmlab "
                             "equivalent (a plain lookup table); set them to None")
        out = Embedding(module.num_embeddings, module.embedding_dim, dtype=dtype, rng=rng)
    elif isinstance(module, torch.nn.Linear):
        out = Linear(module.in_features, module.out_features, bias=module.bias is not None,
                     dtype=dtype, rng=rng)
    else:
        common = dict(num_layers=module.num_layers, bias=module.bias,
                      batch_first=module.batch_first, bidirectional=module.bidirectional,
                      dropout=float(module.dropout), dtype=dtype, rng=rng)
        if isinstance(module, torch.nn.LSTM):
            out = LSTM(module.input_size, module.hidden_size, proj_size=module.proj_size,
                       **common)
        elif isinstance(module, torch.nn.GRU):
            out = GRU(module.input_size, module.hidden_size, **common)
        else:
            out = RNN(module.input_size, module.hidden_size, nonlinearity=module.nonlinearity,
                      **common)
    # The weights the module computes with, read as its attributes: under pruning or a
    # parametrization the state dict holds weight_orig and weight_mask (or the parts of a
    # parametrization) instead.
    load_torch_state_dict(out, {k: getattr(module, k) for k in torch_state_dict(out)})
    return out.train(module.training)  # an evaluating module's dropout stays off


# -- safetensors ------------------------------------------------------------------------------

def save_safetensors(path, pieces: Mapping[str, object], metadata: Mapping[str, str] | None = None
                     ) -> None:
    """Write :func:`model_state_dict` of ``pieces`` to ``path`` as a safetensors file,
    atomically, in the pieces' dtype. ``metadata`` (strings to strings) goes into the file's
    header. ``safetensors.torch.load_file(path)`` reads it back as the tensors that
    ``module.load_state_dict`` takes (the module definition for a char-LM is in
    ``docs/interop.md``). Needs the ``safetensors`` package (the ``torch`` extra), not torch.
    """
    from .._extras import require
    require("torch", "lstmlab.interop.save_safetensors")
    from safetensors.numpy import save

    from ..training.checkpoint import atomic_write_bytes
    path = output_path(path)
    if metadata is not None and not (
            isinstance(metadata, Mapping)
            and all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items())):
        raise TypeError(f"metadata must be a mapping of strings to strings (a safetensors "
                        f"header holds only those: json.dumps other values), got "
                        f"{short_repr(metadata)}")
    arrays = {k: np.ascontiguousarray(v) for k, v in model_state_dict(pieces).items()}
    atomic_write_bytes(path, save(arrays, metadata=dict(metadata) if metadata else None))
