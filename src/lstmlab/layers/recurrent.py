"""Recurrent layers ``RNN``, ``LSTM`` and ``GRU``: stacked, bidirectional, batch-first, with
dropout.

Dimensions: T time, B batch, D input features, H hidden units, L layers, K directions (1 or 2).

The layers follow ``torch.nn.RNN`` / ``torch.nn.LSTM`` in arguments, shapes and semantics, so a
PyTorch user needs no new docs; the arithmetic is the kernels' (``lstmlab.kernels``), whose
docstrings fix the weight layout. Parameters, per layer ``l`` and direction (suffix
``_reverse`` for the backward direction of a bidirectional layer)::

    Wx_l{l}   (D_l, G*H)   input weights      (D_0 = input_size, D_l = K*H above)
    Wh_l{l}   (H, G*H)     recurrent weights
    b_l{l}    (G*H,)       bias (absent when bias=False)

with G = 4 gate blocks (f, i, o, C̃) for the LSTM, G = 1 for the RNN and G = 3 (r, z, n) for
the GRU, whose bias has four blocks (b_r, b_z, b_in, b_hn: see ``lstmlab.kernels.gru``).
PyTorch keeps two biases (``bias_ih`` + ``bias_hh``); the lecture, Keras and this library keep
their sum wherever the equations only use the sum.
"""

from __future__ import annotations

import contextlib
import numbers
import threading
import warnings
from collections.abc import Mapping

import numpy as np

from .._checks import (as_float_array, as_lengths, as_numpy, check_shape, finite_float,
                       float_dtype, generator, positive_int, probability, true_or_false)
from .._memory import check_training_fits
from ..kernels import (LSTMParams, RNNParams, lstm_backward, lstm_cell, lstm_forward,
                       reverse_padded, rnn_backward, rnn_cell, rnn_forward)
from ..kernels.lstm import LSTMMasks
from ..kernels.lstm_peephole import (LSTMPeepholeParams, lstm_peephole_backward,
                                     lstm_peephole_cell, lstm_peephole_forward)
from ..kernels.lstm_layernorm import (LSTMLayerNormParams, lstm_layernorm_backward,
                                      lstm_layernorm_cell, lstm_layernorm_forward)
from ..kernels.lstm_proj import LSTMProjParams, lstm_proj_backward, lstm_proj_forward
from ..kernels import fast  # imports no numba until a fast kernel runs
from ..kernels.gru import (GRUParams, gru_backward, gru_bias_join, gru_bias_split, gru_cell,
                           gru_forward)
from .base import Module

# The layer-norm LSTM's parameters besides Wx, Wh, b (``kernels/lstm_layernorm.py``): the gains
# of LN(x·Wx) and LN(h·Wh), the gain and bias of LN(C_t); and their PyTorch-style keys.
_LN_NAMES = ("gx", "gh", "gc", "bc")
_LN_TORCH = ("ln_ih_weight", "ln_hh_weight", "ln_c_weight", "ln_c_bias")

# Our LSTM gate blocks are (f, i, o, C̃); PyTorch's are (i, f, g, o). Block k of one layout is
# block _TORCH_PERM[k] of the other (the permutation is its own inverse).
_TORCH_PERM = (1, 0, 3, 2)


def _permute_blocks(a: np.ndarray, perm, axis: int) -> np.ndarray:
    blocks = np.split(a, len(perm), axis=axis)
    return np.concatenate([blocks[k] for k in perm], axis=axis)


class _Recurrent(Module):
    """Shared machinery of RNN and LSTM; subclasses set the gate count and the kernels."""

    _gates = 1
    # Training-time options of the recurrence (the layer's docstring): dropout_input and
    # weight_drop mask the kernels' inputs, dropout_recurrent and zoneout run inside them.
    _REGULARISATION = ("dropout_input", "dropout_recurrent", "zoneout", "weight_drop")
    _bias_blocks = None  # blocks of H in the bias when not _gates (the GRU's four)
    _has_cell = False
    proj_size = 0  # the LSTM's projection width P (0: none): h is P wide, C stays H wide
    layer_norm = False  # the LSTM's layer normalisation (Ba et al. 2016)

    # Which kernels run: "auto" (the compiled ones of ``lstmlab.kernels.fast`` when numba is
    # installed, else the NumPy reference), "numpy" (always the reference), or "fast" (the
    # compiled ones; an error without numba). Per layer: ``lstm.backend = "numpy"``.
    # In eval mode the fast forward keeps no cache; a backward after it recomputes the
    # forward first (same result, one more forward's time) from x as it is then.
    backend = "auto"

    def _fast_kernels(self):
        """The module ``lstmlab.kernels.fast`` when this layer should use it, else None."""
        if self.backend == "numpy":
            return None
        if self.backend == "fast":
            if not fast.available():
                raise RuntimeError(f"{type(self).__name__}.backend is 'fast' but numba cannot be "
                                   f"imported: pip install numba, or set backend = 'auto'")
            return fast
        if self.backend != "auto":
            raise ValueError(f"backend must be 'auto', 'numpy' or 'fast', got {self.backend!r}")
        return fast if fast.available() else None

    # -- one direction of one layer, on either kernels ------------------------------------
    # The cell's name and options for the fast kernels, and its reference kernels.
    def _cell(self) -> tuple[str, dict]:
        raise NotImplementedError

    def _reference_forward(self, x, states, params, lengths, masks=None):
        raise NotImplementedError

    def _reference_backward(self, dy, dfinals, cache, need_dx):
        raise NotImplementedError

    def _layer_options(self, params) -> dict:
        """The fast kernels' options for one layer's parameters beyond ``(Wx, Wh, b)``."""
        return {"P": params[3]} if len(params) == 4 else {}

    def _kernel_forward(self, x, states, params, lengths, masks=None):
        """``(y, finals, cache)`` for one direction of one layer: ``states`` and ``finals``
        are tuples of (B, H) arrays (h, and c for the LSTM); ``masks`` the LSTM's recurrent
        regularisation (:meth:`_draw_masks`) or None."""
        fast = self._fast_kernels()
        if fast is None:
            return self._reference_forward(x, states, params, lengths, masks)
        cell, options = self._cell()
        Wx, Wh, b = params[:3]
        options = dict(options, **self._layer_options(params))
        if masks is not None:
            options = dict(options, masks=masks)
        if self.training:
            return fast.sequence_forward(cell, x, states, Wx, Wh, b, lengths, True, **options)
        states = tuple(s.copy() for s in states)  # no cache: a backward recomputes from these
        y, finals, _ = fast.sequence_forward(cell, x, states, Wx, Wh, b, lengths, False,
                                             **options)
        return y, finals, lambda: fast.sequence_forward(  # a backward calls it for the cache
            cell, x, states, Wx, Wh, b, lengths, True, **options)[2]

    def _kernel_backward(self, dy, dfinals, cache, need_dx):
        """``(dx, dstates, (dWx, dWh, db, dP))`` for the cache of :meth:`_kernel_forward`."""
        if callable(cache):  # an inference forward's: run it again, keeping the cache
            cache = cache()
        if isinstance(cache, fast.FastCache):
            return fast.sequence_backward(dy, dfinals, cache, need_dx)
        return self._reference_backward(dy, dfinals, cache, need_dx)

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 bias: bool = True, batch_first: bool = False, bidirectional: bool = False,
                 dropout: float = 0.0, dtype=np.float32, rng: np.random.Generator | None = None,
                 *, dropout_input: float = 0.0, dropout_recurrent: float = 0.0,
                 zoneout: float = 0.0, weight_drop: float = 0.0, **unknown):
        if unknown:  # named for the class the user called, and the LSTM's own options as such
            name = next(iter(unknown))
            lstm_only = ("proj_size", "layer_norm", "peephole", "input_forget", "clip",
                         "forget_bias")
            raise TypeError(f"{type(self).__name__}() got an unexpected keyword argument "
                            f"{name!r}" + (f"; {name} is an option of lstmlab.LSTM"
                                           if name in lstm_only else ""))
        super().__init__()
        self.dropout_input = probability(dropout_input, "dropout_input")
        self.dropout_recurrent = probability(dropout_recurrent, "dropout_recurrent")
        self.zoneout = probability(zoneout, "zoneout")
        self.weight_drop = probability(weight_drop, "weight_drop")
        for name in ("dropout_recurrent", "zoneout"):
            if getattr(self, name) and not self._has_cell:
                raise ValueError(f"{name} is an option of the LSTM (the kernels of "
                                 f"{type(self).__name__} have no recurrent masks); "
                                 f"dropout_input and weight_drop work on every layer")
        if self.dropout_recurrent and self.zoneout:
            raise ValueError("dropout_recurrent and zoneout both act on the recurrent state "
                             "h_{t-1}: choose one (set the other to 0)")
        self.input_size = positive_int(input_size, "input_size")
        self.hidden_size = positive_int(hidden_size, "hidden_size")
        self.num_layers = positive_int(num_layers, "num_layers")
        self.bias = true_or_false(bias, "bias")
        self.batch_first = true_or_false(batch_first, "batch_first")
        self.bidirectional = true_or_false(bidirectional, "bidirectional")
        self.dropout = probability(dropout, "dropout")
        if self.dropout and self.num_layers == 1:  # as torch.nn.LSTM warns
            warnings.warn(f"dropout={self.dropout} acts between stacked layers and num_layers=1 "
                          f"has none, so it changes nothing (dropout_input and "
                          f"dropout_recurrent act inside a layer)", UserWarning, stacklevel=3)
        self.dtype = float_dtype(dtype)
        self.rng = generator(rng)
        self.num_directions = 2 if self.bidirectional else 1
        self._caches = None
        self._in_use = threading.Lock()  # forward/backward of one layer: one thread at a time

        H, G, dirs = self.hidden_size, self._gates, self.num_directions
        O = self.proj_size or H  # the width of h: of the outputs and the recurrent input
        above = (self.num_layers - 1) * (dirs * O + O + 1)  # inputs of the layers above: dirs·O
        per_direction = G * H * (self.input_size + O + 1 + above)
        check_training_fits(dirs * per_direction, self.dtype, 2,
                            {"input_size": self.input_size, "hidden_size": H,
                             "num_layers": self.num_layers}, "weights and gradients")
        k = 1.0 / np.sqrt(H)  # PyTorch's init: every weight and bias ~ U(-1/sqrt(H), 1/sqrt(H))
        for layer in range(self.num_layers):
            d_in = self.input_size if layer == 0 else O * self.num_directions
            for suffix in self._suffixes(layer):
                self._register(f"Wx_{suffix}", self._uniform((d_in, G * H), k))
                self._register(f"Wh_{suffix}", self._uniform((O, G * H), k))
                if self.bias:
                    self._register(f"b_{suffix}", self._uniform(((self._bias_blocks or G) * H,), k))

    def __getstate__(self):  # copy.deepcopy: a new lock, not the original's
        state = super().__getstate__()
        del state["_in_use"]
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._in_use = threading.Lock()

    # -- helpers ----------------------------------------------------------------------
    def _uniform(self, shape, k) -> np.ndarray:
        return self.rng.uniform(-k, k, size=shape).astype(self.dtype)

    def _suffixes(self, layer: int) -> list[str]:
        return [f"l{layer}"] + ([f"l{layer}_reverse"] if self.bidirectional else [])

    def _layer_params(self, suffix: str):
        p = self._params
        cls = LSTMParams if self._has_cell else RNNParams
        return cls(p[f"Wx_{suffix}"], p[f"Wh_{suffix}"], p.get(f"b_{suffix}"))

    def _check_input(self, x):
        """``x`` as ``(T, B, D)`` of the layer's dtype, and whether it was unbatched. In
        training, never the caller's own memory: backward reads x from the forward's cache,
        and a caller that refills its input buffer in between (the next batch) would get the
        gradients of other data without a word (PyTorch raises for a saved input modified in
        place). In eval mode x is not copied (inference keeps nothing, and the copy would
        cost it a pass over x); a backward after an eval forward reads x as it is then."""
        given = as_numpy(x, "x")
        x = as_float_array(given, "x", self.dtype, ndim=(2, 3))
        unbatched = x.ndim == 2
        if unbatched:
            x = x[:, None, :]  # (T, 1, D)
        elif self.batch_first:
            x = np.ascontiguousarray(x.transpose(1, 0, 2))  # (B, T, D) -> (T, B, D)
        T, B, D = x.shape
        if D != self.input_size:
            raise ValueError(f"x must have {self.input_size} features (input_size) in its last "
                             f"dimension, got shape {self._user_shape(x.shape, unbatched)}")
        if T == 0 or B == 0:
            raise ValueError(f"x must have at least one time step and one sequence, got shape "
                             f"{self._user_shape(x.shape, unbatched)}")
        if self.training and np.may_share_memory(x, given):
            x = x.copy()
        return x, unbatched

    def _user_shape(self, tbx, unbatched):
        T, B, F = tbx
        if unbatched:
            return (T, F)
        return (B, T, F) if self.batch_first else (T, B, F)

    def _widths(self, n_states: int) -> tuple[int, ...]:
        """The widths of the states: h's (P with a projection, else H), then C's (H)."""
        return ((self.proj_size or self.hidden_size), self.hidden_size)[:n_states]

    def _state_shape(self, B, unbatched, width=None):
        n, width = self.num_layers * self.num_directions, width or self.hidden_size
        return (n, width) if unbatched else (n, B, width)

    def _check_state(self, s, name, B, unbatched, width=None) -> np.ndarray:
        n = self.num_layers * self.num_directions
        if s is None:
            return np.zeros((n, B, width or self.hidden_size), self.dtype)
        if (isinstance(self, _OneState) and isinstance(s, (tuple, list)) and len(s) == 1
                and np.ndim(s[0]) == len(self._state_shape(B, unbatched))):  # a container's (h,)
            raise TypeError(f"{name} of a {type(self).__name__} is the hidden state array "
                            f"itself, not a tuple ({name}[0] here; containers such as CharLM "
                            f"carry it as (h,))")
        s = as_float_array(s, name, self.dtype)
        check_shape(s, self._state_shape(B, unbatched, width), name)
        return s[:, None, :] if unbatched else s

    def _to_user(self, y, unbatched):
        if unbatched:
            return y[:, 0, :]
        return y.transpose(1, 0, 2) if self.batch_first else y

    def _from_user(self, dy, name, T, B, F, unbatched):
        dy = as_float_array(dy, name, self.dtype)
        check_shape(dy, self._user_shape((T, B, F), unbatched), name)
        if unbatched:
            return dy[:, None, :]
        return np.ascontiguousarray(dy.transpose(1, 0, 2)) if self.batch_first else dy

    # -- the stack --------------------------------------------------------------------
    def _run(self, x, states, lengths):
        """Forward through layers and directions. ``states``: tuple of (L*K, B, H) arrays."""
        K = self.num_directions
        finals = [np.empty_like(s) for s in states]
        caches, masks = [], []
        inp = x
        for layer in range(self.num_layers):
            outs, layer_caches = [], []
            for d, suffix in enumerate(self._suffixes(layer)):
                idx = layer * K + d
                seq = inp if d == 0 else reverse_padded(inp, lengths)
                params, drops, recurrent = self._regularised(seq, self._layer_params(suffix))
                if drops[0] is not None:
                    seq = seq * drops[0]  # variational dropout on the inputs
                y, fin, cache = self._kernel_forward(seq, tuple(s[idx] for s in states),
                                                     params, lengths, recurrent)
                for f_arr, v in zip(finals, fin):
                    f_arr[idx] = v
                outs.append(y if d == 0 else reverse_padded(y, lengths))
                layer_caches.append((cache, drops))
            out = outs[0] if K == 1 else np.concatenate(outs, axis=-1)  # (T, B, K*H)
            mask = None
            if self.training and self.dropout > 0 and layer < self.num_layers - 1:
                keep = self.rng.random(out.shape) >= self.dropout
                mask = keep.astype(self.dtype) / self.dtype.type(1.0 - self.dropout)
                out = out * mask  # inverted dropout between layers
            caches.append(layer_caches)
            masks.append(mask)
            inp = out
        return inp, finals, caches, masks

    def _keep_mask(self, shape, p: float) -> np.ndarray:
        """Inverted dropout: 1/(1-p) where kept (probability 1-p), 0 where dropped."""
        keep = self.rng.random(shape) >= p
        return keep.astype(self.dtype) / self.dtype.type(1.0 - p)

    def _regularised(self, x, params):
        """The recurrent regularisation of one direction of one layer for input ``x (T, B,
        D)``: ``(params, (x_mask, wh_mask), masks)``. In training: the input mask (B, D), one
        per sequence (Gal & Ghahramani 2016), Wh with DropConnect's mask (Merity et al. 2018)
        and the kernels' :class:`LSTMMasks`; in evaluation no masks and zoneout's expectation.
        Drawn from the layer's Generator, in this order."""
        T, B, D = x.shape
        H = self.hidden_size
        x_mask = wh_mask = masks = None
        if self.training and self.dropout_input:
            x_mask = self._keep_mask((B, D), self.dropout_input)
        if self.training and self.weight_drop:
            wh_mask = self._keep_mask(params.Wh.shape, self.weight_drop)
            params = params._replace(Wh=params.Wh * wh_mask)
        if self.training and self.dropout_recurrent:
            masks = LSTMMasks(h=self._keep_mask((B, H), self.dropout_recurrent))
        if self.zoneout:
            p = self.zoneout
            if self.training:
                keep_h, keep_c = ((self.rng.random((T, B, H)) < p).astype(self.dtype)
                                  for _ in range(2))
                masks = LSTMMasks(keep_h=keep_h, keep_c=keep_c)
            else:
                masks = self._zoneout_expectation()
        return params, (x_mask, wh_mask), masks

    def _zoneout_expectation(self) -> LSTMMasks:
        """Zoneout in evaluation: every d_t is its expectation p."""
        p = np.full((1, 1, self.hidden_size), self.zoneout, self.dtype)
        return LSTMMasks(keep_h=p, keep_c=p)

    @contextlib.contextmanager
    def _exclusive(self, what: str):
        """Holds the layer for a forward or backward: a layer keeps its last forward for its
        backward, so two threads using one layer at once would mix them up."""
        if not self._in_use.acquire(blocking=False):
            raise RuntimeError(
                f"{type(self).__name__}.{what} called while another thread is running this "
                f"layer's forward or backward: a layer keeps what its last forward saved for "
                f"backward, so give each thread its own layer (copy.deepcopy(layer))")
        try:
            yield
        finally:
            self._in_use.release()

    def _forward(self, x, states, lengths):
        with self._exclusive("forward"):
            x, unbatched = self._check_input(x)
            T, B, _ = x.shape
            lengths = as_lengths(lengths, T, B)
            states = tuple(self._check_state(s, n, B, unbatched, w)
                           for (s, n), w in zip(states, self._widths(len(states))))
            y, finals, caches, masks = self._run(x, states, lengths)
            self._caches = (caches, masks, lengths, unbatched, T, B, threading.get_ident())
        finals = [f[:, 0, :] if unbatched else f for f in finals]
        return self._to_user(y, unbatched), finals

    def _backward(self, dy, dfinals, input_grad=True):
        with self._exclusive("backward"):
            return self._backward_locked(dy, dfinals, input_grad)

    def _backward_locked(self, dy, dfinals, input_grad):
        if self._caches is None:
            raise RuntimeError(f"{type(self).__name__}.backward called before forward: call "
                               f"forward first (backward uses what forward saved)")
        caches, masks, lengths, unbatched, T, B, thread = self._caches
        if thread != threading.get_ident():
            raise RuntimeError(
                f"{type(self).__name__}.backward called on another thread than the layer's "
                f"last forward: it would differentiate that thread's forward; run forward and "
                f"backward on one thread, or give each thread its own layer")
        K, H = self.num_directions, self.proj_size or self.hidden_size  # H: the width of h
        widths = self._widths(len(dfinals))
        if dy is None:
            dcur = np.zeros((T, B, K * H), self.dtype)
        else:
            dcur = self._from_user(dy, "dy", T, B, K * H, unbatched)
        dfin = []
        for (d, name), w in zip(dfinals, widths):
            if d is None:
                dfin.append(None)
                continue
            d = as_float_array(d, name, self.dtype)
            check_shape(d, self._state_shape(B, unbatched, w), name)
            dfin.append(d[:, None, :] if unbatched else d)
        dinit = [np.empty((self.num_layers * K, B, w), self.dtype) for w in widths]
        for layer in range(self.num_layers - 1, -1, -1):
            if masks[layer] is not None:
                dcur = dcur * masks[layer]  # backprop the dropout on this layer's output
            dx = None
            need_dx = layer > 0 or bool(input_grad)  # the layers above always pass dx down
            for d, suffix in enumerate(self._suffixes(layer)):
                idx = layer * K + d
                dyd = dcur[:, :, d * H:(d + 1) * H]
                if d == 1:
                    dyd = reverse_padded(dyd, lengths)
                cache, (x_mask, wh_mask) = caches[layer][d]
                dxd, dstate, g = self._kernel_backward(
                    dyd, tuple(None if f is None else f[idx] for f in dfin), cache, need_dx)
                if need_dx:
                    if x_mask is not None:
                        dxd = dxd * x_mask  # backprop the input mask
                    if d == 1:
                        dxd = reverse_padded(dxd, lengths)
                    dx = dxd if dx is None else dx + dxd
                for arr, v in zip(dinit, dstate):
                    arr[idx] = v
                self._grads[f"Wx_{suffix}"][...] = g[0]
                self._grads[f"Wh_{suffix}"][...] = g[1] if wh_mask is None else g[1] * wh_mask
                if self.bias:
                    self._grads[f"b_{suffix}"][...] = g[2]
                if len(g) > 3 and g[3] is not None:  # peephole LSTM
                    self._grads[f"P_{suffix}"][...] = g[3]
                if len(g) > 4 and g[4] is not None:  # projected LSTM
                    self._grads[f"Wr_{suffix}"][...] = g[4]
                if len(g) > 5:  # layer-normalised LSTM: its gains and bias
                    for name, v in zip(_LN_NAMES, g[5]):
                        self._grads[f"{name}_{suffix}"][...] = v
            dcur = dx
        dinit = [a[:, 0, :] if unbatched else a for a in dinit]
        return (None if dcur is None else self._to_user(dcur, unbatched)), dinit

    # -- PyTorch layout ---------------------------------------------------------------
    def _torch_key_pairs(self):
        for layer in range(self.num_layers):
            for suffix in self._suffixes(layer):
                ts = suffix  # our suffix l{n}[_reverse] equals torch's
                yield suffix, ts

    def torch_state_dict(self, grads: bool = False) -> dict[str, np.ndarray]:
        """The parameters (or, with ``grads=True``, their gradients) under PyTorch's keys,
        shapes and gate order. ``bias_ih`` carries the bias and ``bias_hh`` is zero; with
        ``grads=True`` both get the bias gradient, as autograd would fill them. A layer-norm
        LSTM adds ``ln_ih_weight_l{k}``, ``ln_hh_weight_l{k}`` (4H, gate order i, f, g, o),
        ``ln_c_weight_l{k}`` and ``ln_c_bias_l{k}`` (H): PyTorch has no such module, and a
        hand-written one with ``nn.LayerNorm`` biases on the two products loads by adding them
        to ``bias_ih``."""
        src = self._grads if grads else self._params
        perm = _TORCH_PERM if self._has_cell else (0,)
        out = {}
        for suffix, ts in self._torch_key_pairs():
            out[f"weight_ih_{ts}"] = _permute_blocks(src[f"Wx_{suffix}"].T, perm, 0).copy()
            out[f"weight_hh_{ts}"] = _permute_blocks(src[f"Wh_{suffix}"].T, perm, 0).copy()
            if self.bias:
                b = _permute_blocks(src[f"b_{suffix}"], perm, 0).copy()
                out[f"bias_ih_{ts}"] = b
                out[f"bias_hh_{ts}"] = b.copy() if grads else np.zeros_like(b)
            if self.proj_size:
                out[f"weight_hr_{ts}"] = src[f"Wr_{suffix}"].T.copy()  # (P, H)
            if self.layer_norm:  # 4H gains in PyTorch's gate order
                for name, key in zip(_LN_NAMES, _LN_TORCH):
                    v = src[f"{name}_{suffix}"]
                    out[f"{key}_{ts}"] = (_permute_blocks(v, perm, 0) if v.size > self.hidden_size
                                          else v).copy()
        return out

    def load_torch_state_dict(self, state_dict) -> None:
        """Load a PyTorch ``state_dict`` (tensors or arrays) of the same configuration.

        The two PyTorch biases are summed into the lecture's single bias."""
        sd = self._checked_torch_state_dict(state_dict)
        perm = _TORCH_PERM if self._has_cell else (0,)
        for suffix, ts in self._torch_key_pairs() if self.bias else ():  # before any copy
            total = sd[f"bias_ih_{ts}"].astype(np.float64) + sd[f"bias_hh_{ts}"]
            as_float_array(total, f"state_dict['bias_ih_{ts}'] + state_dict['bias_hh_{ts}']",
                           self.dtype)  # each in range, their sum beyond this dtype: refused
        for suffix, ts in self._torch_key_pairs():
            self._params[f"Wx_{suffix}"][...] = _permute_blocks(sd[f"weight_ih_{ts}"], perm, 0).T
            self._params[f"Wh_{suffix}"][...] = _permute_blocks(sd[f"weight_hh_{ts}"], perm, 0).T
            if self.bias:
                b = sd[f"bias_ih_{ts}"].astype(np.float64) + sd[f"bias_hh_{ts}"]
                self._params[f"b_{suffix}"][...] = _permute_blocks(b, perm, 0)
            if self.proj_size:
                self._params[f"Wr_{suffix}"][...] = sd[f"weight_hr_{ts}"].T
            if self.layer_norm:
                for name, key in zip(_LN_NAMES, _LN_TORCH):
                    v = sd[f"{key}_{ts}"]
                    self._params[f"{name}_{suffix}"][...] = (
                        _permute_blocks(v, perm, 0) if v.size > self.hidden_size else v)

    def _torch_layout(self) -> dict[str, np.ndarray]:
        """The torch state dict a load into this layer must match (keys, shapes)."""
        return self.torch_state_dict()

    def _checked_torch_state_dict(self, state_dict) -> dict[str, np.ndarray]:
        """``state_dict`` as arrays, once its keys, shapes and dtypes are this layer's."""
        expected = self._torch_layout()
        if not isinstance(state_dict, Mapping):
            raise TypeError(f"state_dict must be a mapping of names to tensors or arrays (what "
                            f"torch's module.state_dict() returns), got "
                            f"{type(state_dict).__name__}")
        sd = {k: as_numpy(v, f"state_dict[{k!r}]") for k, v in state_dict.items()}
        missing = sorted(set(expected) - set(sd), key=str)  # (keys of mixed types sort too)
        extra = sorted(set(sd) - set(expected), key=str)
        if missing or extra:
            raise ValueError(f"state_dict keys do not match this {type(self).__name__} "
                             f"configuration: missing {missing}, unexpected {extra}")
        for k, ref in expected.items():
            if sd[k].shape != ref.shape:
                raise ValueError(f"state_dict[{k!r}] must have shape {ref.shape}, got {sd[k].shape}")
            if sd[k].dtype.kind != "f":
                raise TypeError(f"state_dict[{k!r}] must be floating point, got {sd[k].dtype}")
            # NaN or inf (a diverged run), or a value beyond this layer's dtype, would load
            # silently and turn every output into NaN.
            as_float_array(sd[k], f"state_dict[{k!r}]", self.dtype)
        return sd

    def _stream_args(self, x_t, state, n_states: int):
        """The streaming fast lane's arguments, or None when the general path must take them.

        ``(x (B, D), states, unbatched)`` with ``states`` a tuple of ``n_states`` (L, B, H)
        arrays, when nothing needs converting: ndarrays of the layer's dtype, C-contiguous, of
        the right shapes, B <= ``fast.STREAM_ROWS``, a unidirectional layer without a
        projection (its step runs the sequence kernels with T = 1). These checks cost
        well under a microsecond; NaN and inf are caught inside the compiled step. Anything
        else (None is returned) goes through :meth:`_check_step` / :meth:`_check_state`, which
        convert what can be converted and name what is wrong.
        """
        dt = self.dtype
        if (type(x_t) is not np.ndarray or x_t.dtype != dt or not x_t.flags.c_contiguous
                or self.bidirectional or self.proj_size or x_t.ndim not in (1, 2)):
            return None
        unbatched = x_t.ndim == 1
        x = x_t.reshape(1, -1) if unbatched else x_t
        B, D = x.shape
        if D != self.input_size or not 0 < B <= fast.STREAM_ROWS:
            return None
        L, H = self.num_layers, self.hidden_size
        if state is None:
            return x, (np.zeros((L, B, H), dt),) * n_states, unbatched
        if n_states == 1:
            parts = (state,)
        elif type(state) in (tuple, list) and len(state) == n_states:
            parts = state
        else:
            return None
        shape = (L, H) if unbatched else (L, B, H)
        for s in parts:
            if (type(s) is not np.ndarray or s.dtype != dt or s.shape != shape
                    or not s.flags.c_contiguous):
                return None
        if unbatched:
            parts = tuple(s.reshape(L, 1, H) for s in parts)
        return x, tuple(parts), unbatched

    def __setattr__(self, name, value):
        """A public setting changed (``zoneout``, ``clip``, ``nonlinearity``, ...) drops the
        streaming step's kept weights and options (:meth:`_stream_weights`)."""
        if not name.startswith("_"):
            self.__dict__.pop("_stream_cache", None)
        super().__setattr__(name, value)

    def _stream_weights(self, fast):
        """``(specs, Wxs, Whs)`` per layer for the compiled streaming step. Kept between
        calls: parameters are only ever updated in place (optimisers, loaders), and the first
        array's identity is checked anyway; setting a public attribute drops them."""
        cached = getattr(self, "_stream_cache", None)
        if cached is not None and cached[1][0] is self._params["Wx_l0"]:
            return cached
        cell, options = self._cell()
        per_layer = [self._layer_params(f"l{layer}") for layer in range(self.num_layers)]
        per_layer = [tuple(p[:3]) + (self._layer_options(p),) for p in per_layer]
        self._stream_cache = fast.stream_weights(cell, per_layer, self.hidden_size, self.dtype,
                                                 options)
        return self._stream_cache

    def _step(self, x_t, state, n_states: int, names: tuple[str, ...]):
        """One time step of every layer: ``(y_t, new states)`` for the layers' ``step``.
        Runs the same cell as the sequence kernels: the compiled streaming step for a few
        rows, the sequence kernels with T = 1 for more, the NumPy cells without numba."""
        fast = self._fast_kernels()
        lean = None if fast is None else self._stream_args(x_t, state, n_states)
        if lean is not None:  # the streaming lane: one compiled call for all layers
            x, states, unbatched = lean
            new = fast.stream_step(*self._stream_weights(fast), x, states)
        else:
            x, unbatched = self._check_step(x_t)
            B = x.shape[0]
            if state is None:
                state = (None,) * n_states
            elif n_states == 1:
                state = (state,)
            elif not (isinstance(state, (tuple, list)) and len(state) == n_states):
                raise TypeError(f"state must be a tuple ({', '.join(names)}) of arrays, or None "
                                f"for zeros")
            states = tuple(self._check_state(s, name, B, unbatched, w)
                           for s, name, w in zip(state, names, self._widths(n_states)))
            new = tuple(np.empty_like(s) for s in states)
            inp = x
            for layer in range(self.num_layers):
                params = self._layer_params(f"l{layer}")
                prev = tuple(s[layer] for s in states)
                if fast is not None:
                    cell, options = self._cell()
                    options = dict(options, **self._layer_options(params))
                    _, finals, _ = fast.sequence_forward(cell, inp[None], prev, *params[:3],
                                                         need_cache=False, **options)
                else:
                    finals = self._reference_step(inp, prev, params)
                for arr, v in zip(new, finals):
                    arr[layer] = v
                inp = new[0][layer]
        if unbatched:
            return new[0][-1, 0].copy(), tuple(s[:, 0] for s in new)
        return new[0][-1].copy(), new

    def _check_step(self, x_t):
        if self.bidirectional:
            raise ValueError(f"{type(self).__name__}.step works on unidirectional layers only "
                             f"(a backward direction needs the whole sequence); use forward")
        x_t = as_float_array(x_t, "x_t", self.dtype, ndim=(1, 2))
        if x_t.shape[-1] != self.input_size:
            raise ValueError(f"x_t must have {self.input_size} features (input_size) in its last "
                             f"dimension, got shape {x_t.shape}")
        if x_t.shape[0] == 0 and x_t.ndim == 2:
            raise ValueError(f"x_t must have at least one sequence, got shape {x_t.shape}")
        unbatched = x_t.ndim == 1
        if unbatched:
            x_t = x_t[None, :]
        return x_t, unbatched

    def __repr__(self) -> str:
        opts = [f"{self.input_size}", f"{self.hidden_size}"]
        if self.num_layers != 1:
            opts.append(f"num_layers={self.num_layers}")
        if not self.bias:
            opts.append("bias=False")
        if self.batch_first:
            opts.append("batch_first=True")
        if self.bidirectional:
            opts.append("bidirectional=True")
        if self.dropout:
            opts.append(f"dropout={self.dropout}")
        opts += [f"{name}={getattr(self, name)}" for name in self._REGULARISATION
                 if getattr(self, name)]
        opts.append(f"dtype={self.dtype.name}")
        return f"{type(self).__name__}({', '.join(opts)})"


class LSTM(_Recurrent):
    """The lecture's LSTM (forget, input and output gates, cell state), as ``torch.nn.LSTM``.

    ``forget_bias`` is added to the forget gate's bias at initialisation. The default 0.0
    matches PyTorch; 1.0 is the common advice (Gers, Schmidhuber & Cummins 2000; Jozefowicz,
    Zaremba & Sutskever 2015), so that a fresh cell starts by remembering.

    ``y, (h_n, c_n) = lstm.forward(x, state=None, lengths=None)``:
    ``x`` is ``(T, B, D)`` (``(B, T, D)`` with batch_first, ``(T, D)`` unbatched), ``state`` a
    pair ``(h_0, c_0)`` of ``(L*K, B, H)`` arrays (zeros when None), ``lengths (B,)`` the valid
    length of each sequence. ``y`` is ``(T, B, K*H)``; ``h_n, c_n`` are ``(L*K, B, H)``.
    ``dx, (dh_0, dc_0) = lstm.backward(dy, dstate=None)`` with ``dstate = (dh_n, dc_n)``;
    ``backward(..., input_grad=False)`` returns ``dx = None`` and skips its GEMM (a sixth of
    the step's arithmetic) when the input is data, as PyTorch does for an input that does
    not require grad.

    ``proj_size=P`` (0 < P < H; PyTorch's, LSTMP of Sak et al. 2014,
    ``lstmlab.kernels.lstm_proj``) projects ``m_t = o_t * tanh(C_t)`` to ``h_t = m_t · Wr``:
    parameters ``Wr_l{l} (H, P)`` (PyTorch's ``weight_hr_l{l}`` transposed), ``Wh_l{l} (P, 4H)``,
    inputs of the layers above ``K*P`` wide; ``h_0``, ``h_n`` and ``y`` are P wide, ``c`` H
    wide. Like every option it runs on the compiled kernels (``backend``); ``step`` takes the
    sequence kernels with T = 1 rather than the streaming lane.

    The ONNX LSTM variants (``lstmlab.kernels.lstm_peephole``): ``peephole=True`` adds the
    peephole weights ``P_l{l}[_reverse] (3H,)`` (blocks p_f, p_i, p_o; Gers & Schmidhuber 2000,
    the output gate seeing the new C_t), ``clip`` clamps every gate pre-activation to
    ``[-clip, clip]``, ``input_forget=True`` couples the gates as ``f_t = 1 - i_t``. PyTorch
    has none of them.

    ``layer_norm=True`` is the layer-normalised LSTM (Ba, Kiros & Hinton 2016,
    ``lstmlab.kernels.lstm_layernorm``): ``x_t·Wx`` and ``h_{t-1}·Wh`` are each normalised over
    their 4H values, and C_t before the output tanh. Parameters ``gx_l{l}``, ``gh_l{l}`` (4H,
    gains, blocks f, i, o, C̃), ``gc_l{l}``, ``bc_l{l}`` (H, gain and bias of the cell's norm),
    initialised to 1 and 0; ``b_l{l}`` stays the one bias of the gates. It does not combine
    with ``proj_size``, ``peephole``, ``clip`` or ``input_forget``.
    Recurrent regularisation, in training only (each a probability in [0, 1), default 0;
    docs/equations.md has the equations): ``dropout_input`` drops each layer's input features
    with one mask per sequence for all steps and ``dropout_recurrent`` the units of h_{t-1}
    that feed the recurrent product, likewise (variational dropout, Gal & Ghahramani 2016);
    ``zoneout`` lets each unit keep its previous h and C with that probability, a fresh mask
    every step, and uses the expectation ``p·h_{t-1} + (1-p)·h̃_t`` (C alike) in evaluation
    and ``step`` (Krueger et al. 2017); ``weight_drop`` drops entries of Wh, one mask per
    forward call (DropConnect, Merity et al. 2018). The masks come from ``rng``, a direction of
    a layer at a time; evaluation draws nothing. ``dropout_input`` and ``weight_drop`` work on
    the RNN and the GRU too.
    """

    _gates = 4
    _has_cell = True

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 bias: bool = True, batch_first: bool = False, bidirectional: bool = False,
                 dropout: float = 0.0, dtype=np.float32, rng: np.random.Generator | None = None,
                 forget_bias: float = 0.0, *, peephole: bool = False, clip: float | None = None,
                 input_forget: bool = False, proj_size: int = 0, layer_norm: bool = False,
                 dropout_input: float = 0.0, dropout_recurrent: float = 0.0, zoneout: float = 0.0,
                 weight_drop: float = 0.0):
        if isinstance(proj_size, bool) or not isinstance(proj_size, (int, np.integer)) or not (
                0 <= proj_size < positive_int(hidden_size, "hidden_size")):
            raise ValueError(f"proj_size must be an integer in [0, hidden_size) = [0, "
                             f"{hidden_size}), got {proj_size!r}")
        self.proj_size = int(proj_size)
        for name, value in (("peephole", peephole), ("input_forget", input_forget)):
            true_or_false(value, name)
        self.layer_norm = true_or_false(layer_norm, "layer_norm")
        if self.layer_norm and (self.proj_size or peephole or clip is not None or input_forget):
            raise ValueError("layer_norm does not combine with proj_size, peephole, clip or "
                             "input_forget (the layer-norm LSTM of Ba et al. 2016 has none of "
                             "them): choose one")
        if self.proj_size and (peephole or clip is not None or input_forget):
            raise ValueError("proj_size does not combine with peephole, clip or input_forget "
                             "(ONNX's options have no projection, PyTorch's projection no "
                             "peepholes): choose one")
        if (proj_size or peephole or clip is not None or input_forget or layer_norm) and (
                dropout_recurrent or zoneout):
            raise ValueError("dropout_recurrent and zoneout run in the plain LSTM's kernels: "
                             "they do not combine with proj_size, peephole, clip, "
                             "input_forget or layer_norm (dropout_input and weight_drop do)")
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, bidirectional,
                         dropout, dtype, rng, dropout_input=dropout_input,
                         dropout_recurrent=dropout_recurrent, zoneout=zoneout,
                         weight_drop=weight_drop)
        self.forget_bias = finite_float(forget_bias, "forget_bias", self.dtype)
        if self.forget_bias and not self.bias:
            raise ValueError(f"forget_bias={forget_bias!r} is added to the forget gate's bias, "
                             f"and a layer with bias=False has none: set bias=True, or "
                             f"forget_bias=0")
        if self.bias and self.forget_bias:
            for name, b in self._params.items():
                if name.startswith("b_"):
                    b[: self.hidden_size] += self.dtype.type(self.forget_bias)  # block 0 is f
        real = isinstance(clip, numbers.Real) and not isinstance(clip, (bool, np.bool_))
        if clip is not None and not (real and 0 < clip < np.inf):
            raise ValueError(f"clip must be a positive number or None, got {clip!r}")
        self.peephole = bool(peephole)
        self.clip = None if clip is None else float(clip)
        self.input_forget = bool(input_forget)
        if self.peephole:  # drawn after the other weights: plain layers keep their init
            k = 1.0 / np.sqrt(self.hidden_size)
            for layer in range(self.num_layers):
                for suffix in self._suffixes(layer):
                    self._register(f"P_{suffix}", self._uniform((3 * self.hidden_size,), k))
        if self.proj_size:  # PyTorch's init, U(-1/sqrt(H), 1/sqrt(H)), as every weight
            k = 1.0 / np.sqrt(self.hidden_size)
            for layer in range(self.num_layers):
                for suffix in self._suffixes(layer):
                    self._register(f"Wr_{suffix}", self._uniform((self.hidden_size,
                                                                  self.proj_size), k))
        if self.layer_norm:  # gains 1, bias 0 (Ba et al.): a fresh norm is the identity map
            for layer in range(self.num_layers):
                for suffix in self._suffixes(layer):
                    for name, size, v in zip(_LN_NAMES, (4, 4, 1, 1), (1, 1, 1, 0)):
                        self._register(f"{name}_{suffix}",
                                       np.full(size * self.hidden_size, v, self.dtype))

    def _is_variant(self) -> bool:
        return self.peephole or self.clip is not None or self.input_forget

    def _layer_params(self, suffix: str):
        p = self._params
        if self.layer_norm:
            return LSTMLayerNormParams(p[f"Wx_{suffix}"], p[f"Wh_{suffix}"], p.get(f"b_{suffix}"),
                                       *(p[f"{n}_{suffix}"] for n in _LN_NAMES))
        if self.proj_size:
            return LSTMProjParams(p[f"Wx_{suffix}"], p[f"Wh_{suffix}"], p.get(f"b_{suffix}"),
                                  p[f"Wr_{suffix}"])
        if not self._is_variant():
            return super()._layer_params(suffix)
        return LSTMPeepholeParams(p[f"Wx_{suffix}"], p[f"Wh_{suffix}"], p.get(f"b_{suffix}"),
                                  p.get(f"P_{suffix}"))

    def _cell(self):
        if self.layer_norm:
            return "lstm_ln", {}
        if self._is_variant():
            return "lstm", {"clip": self.clip, "input_forget": self.input_forget}
        if self.zoneout:  # evaluation and streaming: zoneout's expectation (training: masks)
            return "lstm", {"masks": self._zoneout_expectation()}
        return "lstm", {}

    def _layer_options(self, params) -> dict:
        if self.layer_norm:
            return {"ln": tuple(params[3:])}
        return {"Wr": params[3]} if self.proj_size else super()._layer_options(params)

    def _kernel_backward(self, dy, dfinals, cache, need_dx):
        dx, dstates, g = super()._kernel_backward(dy, dfinals, cache, need_dx)
        if self.layer_norm and len(g) == 4:  # the fast kernels' (dWx, dWh, db, LN's grads)
            g = g[:3] + (None, None, g[3])
        return dx, dstates, g

    def _reference_forward(self, x, states, params, lengths, masks=None):
        if self.layer_norm:
            y, hT, cT, cache = lstm_layernorm_forward(x, *states, params, lengths)
        elif self.proj_size:
            y, hT, cT, cache = lstm_proj_forward(x, *states, params, lengths)
        elif self._is_variant():
            y, hT, cT, cache = lstm_peephole_forward(x, *states, params, lengths, self.clip,
                                                     self.input_forget)
        else:
            y, hT, cT, cache = lstm_forward(x, *states, params, lengths, masks or LSTMMasks())
        return y, (hT, cT), cache

    def _reference_backward(self, dy, dfinals, cache, need_dx):
        if self.layer_norm:
            dx, dh0, dc0, g = lstm_layernorm_backward(dy, *dfinals, cache, need_dx=need_dx)
            return dx, (dh0, dc0), (g.Wx, g.Wh, g.b, None, None, tuple(g[3:]))
        if self.proj_size:
            dx, dh0, dc0, g = lstm_proj_backward(dy, *dfinals, cache, need_dx=need_dx)
            return dx, (dh0, dc0), (g.Wx, g.Wh, g.b, None, g.Wr)
        if self._is_variant():
            dx, dh0, dc0, g = lstm_peephole_backward(dy, *dfinals, cache, need_dx=need_dx)
            return dx, (dh0, dc0), tuple(g)
        dx, dh0, dc0, g = lstm_backward(dy, *dfinals, cache, need_dx=need_dx)
        return dx, (dh0, dc0), (g.Wx, g.Wh, g.b, None)

    def _reference_step(self, x, states, params):
        """One step of one layer with the NumPy reference cell: ``(h_t, C_t)``."""
        h, c = states
        if self.layer_norm:
            step = lstm_layernorm_cell(x @ params.Wx, h @ params.Wh, c, params)
            return step.h, step.c
        z = x @ params[0] + h @ params[1]  # (B, 4H)
        if params[2] is not None:
            z += params[2]
        h_new, c_new, tanh_c = np.empty_like(h), np.empty_like(c), np.empty_like(c)
        if self.proj_size:
            m = np.empty_like(c)
            lstm_cell(z, c, c_new, tanh_c, m)
            return m @ params[3], c_new  # h_t = m_t · W_r
        if self._is_variant():
            lstm_peephole_cell(z, params[3], c, c_new, tanh_c, h_new, self.clip,
                               self.input_forget)
        else:
            lstm_cell(z, c, c_new, tanh_c, h_new)
        if self.zoneout:  # streaming is evaluation: zoneout's expectation
            p = self.dtype.type(self.zoneout)
            c_new = p * c + (1 - p) * c_new
            h_new = p * h + (1 - p) * h_new
        return h_new, c_new

    def torch_state_dict(self, grads: bool = False) -> dict[str, np.ndarray]:
        if self._is_variant():
            raise ValueError("PyTorch's LSTM has no peephole, clip or input_forget: this layer "
                             "cannot be written as a torch state_dict (ONNX export keeps them)")
        if self.zoneout:  # as lstmlab.interop.torch_state_dict and to_torch refuse it
            raise ValueError(f"torch.nn.LSTM has no zoneout: a layer with zoneout="
                             f"{self.zoneout} evaluates h_t = p·h_{{t-1}} + (1-p)·h̃_t (and C_t "
                             f"alike), so nn.LSTM would load these weights and compute other "
                             f"outputs; write a layer with zoneout=0")
        return super().torch_state_dict(grads)

    def _torch_layout(self) -> dict[str, np.ndarray]:
        # a zoneout layer may load PyTorch weights (to train with zoneout from them)
        return _Recurrent.torch_state_dict(self) if self.zoneout else super()._torch_layout()

    def __repr__(self) -> str:
        extra = [o for o, on in (("peephole=True", self.peephole),
                                 (f"clip={self.clip}", self.clip is not None),
                                 ("input_forget=True", self.input_forget),
                                 (f"proj_size={self.proj_size}", self.proj_size),
                                 ("layer_norm=True", self.layer_norm)) if on]
        r = super().__repr__()
        return r if not extra else r[:-1] + ", " + ", ".join(extra) + ")"

    def forward(self, x, state=None, lengths=None):
        if state is None:
            state = (None, None)
        elif not (isinstance(state, (tuple, list)) and len(state) == 2):
            raise TypeError("state must be a pair (h_0, c_0) of arrays, or None for zeros")
        y, (h_n, c_n) = self._forward(x, ((state[0], "state[0] (h_0)"), (state[1], "state[1] (c_0)")),
                                      lengths)
        return y, (h_n, c_n)

    def backward(self, dy, dstate=None, *, input_grad=True):
        if dstate is None:
            dstate = (None, None)
        elif not (isinstance(dstate, (tuple, list)) and len(dstate) == 2):
            raise TypeError("dstate must be a pair (dh_n, dc_n) of arrays (either may be None), or None")
        dx, (dh0, dc0) = self._backward(dy, ((dstate[0], "dstate[0] (dh_n)"),
                                             (dstate[1], "dstate[1] (dc_n)")), input_grad)
        return dx, (dh0, dc0)

    def step(self, x_t, state=None):
        """One time step for streaming or generation: ``(y_t, (h, c))``, no cache kept.

        ``x_t (B, D)``, ``state`` as :meth:`forward` takes and returns it. Runs the same cell
        as the sequence kernels. Dropout between layers is not applied (inference). A step
        keeps nothing in the layer: threads may share a layer for ``step``.
        """
        y, (h, c) = self._step(x_t, state, 2, ("state[0] (h)", "state[1] (c)"))
        return y, (h, c)


class _OneState(_Recurrent):
    """A layer whose recurrent state is ``h`` alone (RNN, GRU): ``forward(x, h0)``,
    ``backward(dy, dh_n)`` and ``step`` with one state array."""

    def forward(self, x, h0=None, lengths=None):
        y, (h_n,) = self._forward(x, ((h0, "h0"),), lengths)
        return y, h_n

    def backward(self, dy, dh_n=None, *, input_grad=True):
        dx, (dh0,) = self._backward(dy, ((dh_n, "dh_n"),), input_grad)
        return dx, dh0

    def step(self, x_t, state=None):
        """One time step: ``(y_t, h)`` with ``state`` the ``(L, B, H)`` hidden state or None.
        Keeps nothing in the layer (threads may share it for ``step``)."""
        y, (h,) = self._step(x_t, state, 1, ("state",))
        return y, h


class RNN(_OneState):
    """The lecture's vanilla RNN, ``h_t = act(W [h_{t-1}, x_t] + b)``, as ``torch.nn.RNN``.

    ``nonlinearity`` is ``"tanh"`` (the lecture) or ``"relu"``. ``dropout_input`` and
    ``weight_drop`` (keyword arguments) are the LSTM's recurrent regularisation.
    ``y, h_n = rnn.forward(x, h0=None, lengths=None)``; ``dx, dh0 = rnn.backward(dy, dh_n=None)``
    (``input_grad=False``: ``dx = None``, as for the LSTM).
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 nonlinearity: str = "tanh", bias: bool = True, batch_first: bool = False,
                 bidirectional: bool = False, dropout: float = 0.0, dtype=np.float32,
                 rng: np.random.Generator | None = None, **regularisation):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        self.nonlinearity = nonlinearity
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, bidirectional,
                         dropout, dtype, rng, **regularisation)

    def _cell(self):
        return "rnn", {"act": self.nonlinearity}

    def _reference_forward(self, x, states, params, lengths, masks=None):
        y, hT, cache = rnn_forward(x, states[0], params, self.nonlinearity, lengths)
        return y, (hT,), cache

    def _reference_backward(self, dy, dfinals, cache, need_dx):
        dx, dh0, g = rnn_backward(dy, dfinals[0], cache, need_dx=need_dx)
        return dx, (dh0,), (g.Wx, g.Wh, g.b, None)

    def _reference_step(self, x, states, params):
        """One step of one layer with the NumPy reference cell: ``(h_t,)``."""
        z = x @ params[0] + states[0] @ params[1]  # (B, H)
        if params[2] is not None:
            z += params[2]
        h_new = np.empty_like(states[0])
        rnn_cell(z, self.nonlinearity, h_new)
        return (h_new,)

    def __repr__(self) -> str:
        r = super().__repr__()
        return r if self.nonlinearity == "tanh" else r[:-1] + ", nonlinearity='relu')"


class GRU(_OneState):
    """The gated recurrent unit (Cho et al. 2014) as ``torch.nn.GRU``: gates r, z, n, the reset
    gate applied after the recurrent product (``lstmlab.kernels.gru`` has the equations).

    ``y, h_n = gru.forward(x, h0=None, lengths=None)``; ``dx, dh0 = gru.backward(dy,
    dh_n=None)`` (``input_grad=False``: ``dx = None``); ``step`` as the RNN's. Parameters
    ``Wx_l{l} (D_l, 3H)``, ``Wh_l{l} (H, 3H)`` (blocks r, z, n) and ``b_l{l} (4H,)`` (b_r,
    b_z, b_in, b_hn: PyTorch's ``b_ir + b_hr``, ``b_iz + b_hz``, ``b_in``, ``b_hn``).
    """

    _gates = 3
    _bias_blocks = 4

    def _layer_params(self, suffix: str):
        p = self._params
        return GRUParams(p[f"Wx_{suffix}"], p[f"Wh_{suffix}"], p.get(f"b_{suffix}"))

    def _cell(self):
        return "gru", {}

    def _reference_forward(self, x, states, params, lengths, masks=None):
        y, hT, cache = gru_forward(x, states[0], params, lengths)
        return y, (hT,), cache

    def _reference_backward(self, dy, dfinals, cache, need_dx):
        dx, dh0, g = gru_backward(dy, dfinals[0], cache, need_dx=need_dx)
        return dx, (dh0,), (g.Wx, g.Wh, g.b, None)

    def _reference_step(self, x, states, params):
        """One step of one layer with the NumPy reference cell: ``(h_t,)``."""
        H = self.hidden_size
        gx = x @ params[0]  # (B, 3H)
        b = params[2]
        if b is not None:
            gx += b[:3 * H]
        h_new, gates = np.empty_like(states[0]), np.empty((x.shape[0], 4 * H), self.dtype)
        gru_cell(gx, states[0] @ params[1], None if b is None else b[3 * H:], states[0], gates,
                 h_new)
        return (h_new,)

    def torch_state_dict(self, grads: bool = False) -> dict[str, np.ndarray]:
        """The parameters (or their gradients) under ``nn.GRU``'s keys and shapes (the gate
        order r, z, n is PyTorch's). ``bias_ih`` = (b_r, b_z, b_in), ``bias_hh`` = (0, 0, b_hn);
        with ``grads=True`` the r and z blocks of both get their bias's gradient, as autograd
        would fill them."""
        src, H = (self._grads if grads else self._params), self.hidden_size
        out = {}
        for suffix, ts in self._torch_key_pairs():
            out[f"weight_ih_{ts}"] = src[f"Wx_{suffix}"].T.copy()
            out[f"weight_hh_{ts}"] = src[f"Wh_{suffix}"].T.copy()
            if self.bias:
                b = src[f"b_{suffix}"]
                out[f"bias_ih_{ts}"], out[f"bias_hh_{ts}"] = gru_bias_split(b)
                if grads:
                    out[f"bias_hh_{ts}"][:2 * H] = b[:2 * H]
        return out

    def load_torch_state_dict(self, state_dict) -> None:
        """Load an ``nn.GRU`` ``state_dict`` (tensors or arrays) of the same configuration:
        b_r = b_ir + b_hr, b_z = b_iz + b_hz; b_in and b_hn stay apart."""
        sd = self._checked_torch_state_dict(state_dict)
        joined = {}  # before any copy: each bias in range, the r and z sums beyond it refused
        for suffix, ts in self._torch_key_pairs() if self.bias else ():
            joined[suffix] = as_float_array(
                gru_bias_join(sd[f"bias_ih_{ts}"], sd[f"bias_hh_{ts}"]),
                f"state_dict['bias_ih_{ts}'] + state_dict['bias_hh_{ts}']", self.dtype)
        for suffix, ts in self._torch_key_pairs():
            self._params[f"Wx_{suffix}"][...] = sd[f"weight_ih_{ts}"].T
            self._params[f"Wh_{suffix}"][...] = sd[f"weight_hh_{ts}"].T
            if self.bias:
                self._params[f"b_{suffix}"][...] = joined[suffix]
