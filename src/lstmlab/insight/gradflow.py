"""Gradient flow: how much of the loss's gradient reaches each earlier time step.

The lecture's "so many tanh" slide says that in an RNN the gradient reaching step t passes
through T - t factors ``diag(tanh') W``, and shrinks; the LSTM's cell state offers a path
``C_{t-1} -> C_t`` whose factor is just the forget gate ``f_t``. This module measures both:
for a layer and a batch it runs BPTT with the reference kernels and records, for every step,
the total gradient ``dL/dh_t`` (and ``dL/dC_t`` for the LSTM) and its norm.

The same backward pass, started from random directions, also gives the Jacobian view:
for ``v ~ N(0, I)`` placed on ``h_T``, backprop yields ``u_t = (∂h_T/∂h_t)ᵀ v`` and
``E ||u_t||² = ||∂h_T/∂h_t||_F²`` (Hutchinson's trace estimator applied to ``J Jᵀ``), so a few
probes estimate the Frobenius norm of the Jacobian from every step to the last at once
(:func:`jacobian_norms`).

Dimensions: T time, B batch, D input features, H hidden units, L layers, K probes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._checks import as_float_array, check_shape, generator, positive_int
from ..kernels import lstm_backward, lstm_forward, rnn_backward, rnn_forward
from ..kernels.lstm import LSTMMasks
from ..layers.recurrent import LSTM, RNN


@dataclass
class GradientFlow:
    """Per-step gradient norms; row ``l`` is layer ``l``, column ``t`` is time step ``t``."""

    kind: str  # "lstm" or "rnn"
    dh_norm: np.ndarray  # (L, T) Frobenius norm over (B, H) of dL/dh_t
    dc_norm: np.ndarray | None  # (L, T) same for dL/dC_t (LSTM only)

    def decay(self, layer: int = -1) -> dict[str, np.ndarray]:
        """Norms relative to the last step's, top layer by default: 1 at t = T. A last step
        without gradient (``dhT`` all zeros, say) has nothing to compare with: ValueError."""
        L = self.dh_norm.shape[0]
        if isinstance(layer, bool) or not isinstance(layer, (int, np.integer)) \
                or not -L <= layer < L:
            raise ValueError(f"layer must be an integer in [-{L}, {L - 1}] (this flow has {L} "
                             f"layer{'s' if L > 1 else ''}; -1 is the top one), got {layer!r}")
        if self.dh_norm[layer, -1] == 0 or (self.dc_norm is not None
                                            and self.dc_norm[layer, -1] == 0):
            raise ValueError("the gradient at the last step is 0 (an all-zero dhT?), so there is "
                             "no decay relative to it to show")
        out = {"h": self.dh_norm[layer] / self.dh_norm[layer, -1]}
        if self.dc_norm is not None:
            out["C"] = self.dc_norm[layer] / self.dc_norm[layer, -1]
        return out

    def to_json(self) -> dict:
        return {"kind": self.kind, "dh_norm": self.dh_norm.tolist(),
                "dc_norm": None if self.dc_norm is None else self.dc_norm.tolist()}


def _array(value, name: str, shape: tuple, dtype) -> np.ndarray | None:
    """``value`` as an array of ``dtype`` and ``shape`` (None stays None), errors naming it."""
    if value is None:
        return None
    value = as_float_array(value, name, dtype)
    check_shape(value, shape, name)
    return value


def prepare(layer, x, state, what: str):
    """Checked ``x (T, B, D)`` and initial states ``h0, c0 (L, B, H)`` (``c0`` None for the
    RNN), each error naming the argument: the kernels below would fail deep inside on a
    wrong shape, or broadcast a state of one sequence over the batch."""
    if not isinstance(layer, (LSTM, RNN)):
        raise TypeError(f"layer must be an lstmlab LSTM or RNN, got {type(layer).__name__}")
    if layer.bidirectional or layer.batch_first:
        raise ValueError(f"{what} needs a unidirectional, time-major layer "
                         "(bidirectional=False, batch_first=False)")
    is_lstm = isinstance(layer, LSTM)
    if is_lstm and (layer._is_variant() or layer.layer_norm or layer.proj_size):
        raise ValueError(f"{what} works on the lecture's LSTM; this layer has peepholes, clip, "
                         "coupled gates, layer norm or a projection (proj_size)")
    x, _ = layer._check_input(as_float_array(x, "x", layer.dtype, ndim=3))  # as forward's
    shape = (layer.num_layers, x.shape[1], layer.hidden_size)
    names = ("state[0] (h0)", "state[1] (c0)") if is_lstm else ("state",)
    if state is None:
        state = (None, None) if is_lstm else None
    elif is_lstm and not (isinstance(state, (tuple, list)) and len(state) == 2):
        raise TypeError("state must be a pair (h0, c0) of arrays, or None for zeros")
    states = [np.zeros(shape, layer.dtype) if s is None else _array(s, name, shape, layer.dtype)
              for s, name in zip(state if is_lstm else (state,), names)]
    return x, states[0], (states[1] if is_lstm else None)


def eval_masks(layer) -> LSTMMasks:
    """What the layer's evaluation applies inside the LSTM kernel: zoneout's expectation,
    else nothing (the other regularisations act in training only)."""
    return layer._zoneout_expectation() if getattr(layer, "zoneout", 0) else LSTMMasks()


def _forward_stack(layer, x, h0, c0) -> list:
    """Forward every layer with the reference kernels, as the layer evaluates; the caches,
    bottom layer first."""
    caches, inp = [], x
    for l in range(layer.num_layers):
        p = layer._layer_params(f"l{l}")
        if isinstance(layer, LSTM):
            y, _, _, cache = lstm_forward(inp, h0[l], c0[l], p, masks=eval_masks(layer))
        else:
            y, _, cache = rnn_forward(inp, h0[l], p, layer.nonlinearity)
        caches.append(cache)
        inp = y
    return caches


def gradient_flow(layer, x, dy=None, dhT=None, state=None) -> GradientFlow:
    """Run ``layer`` (unidirectional RNN or LSTM, time-major) on ``x (T, B, D)`` and backprop
    the loss ``sum(dy * y) + sum(dhT * h_T)`` (top layer's output/final hidden state).

    With neither ``dy`` nor ``dhT`` given, the loss is on the last step only:
    ``dhT`` is a fixed random direction of unit norm per sequence (seeded, so reruns agree).
    """
    x, h0, c0 = prepare(layer, x, state, "gradient_flow")
    T, B, _ = x.shape
    H, L = layer.hidden_size, layer.num_layers
    is_lstm = isinstance(layer, LSTM)
    dy = _array(dy, "dy", (T, B, H), layer.dtype)
    dhT = _array(dhT, "dhT", (B, H), layer.dtype)
    if dy is None and dhT is None:
        g = np.random.default_rng(0).normal(size=(B, H))
        dhT = (g / np.linalg.norm(g, axis=1, keepdims=True)).astype(layer.dtype)

    caches = _forward_stack(layer, x, h0, c0)

    dh_norm = np.zeros((L, T))
    dc_norm = np.zeros((L, T)) if is_lstm else None
    dcur = dy
    for l in range(L - 1, -1, -1):
        dh_seq = np.zeros((T, B, H), layer.dtype)  # (T, B, H) dL/dh_t
        top = l == L - 1
        if is_lstm:
            dc_seq = np.zeros((T, B, H), layer.dtype)  # (T, B, H) dL/dC_t
            dx, *_ = lstm_backward(dcur, dhT if top else None, None, caches[l], dh_seq, dc_seq)
            dc_norm[l] = np.sqrt((dc_seq.astype(np.float64) ** 2).sum(axis=(1, 2)))
        else:
            dx, *_ = rnn_backward(dcur, dhT if top else None, caches[l], dh_seq)
        dh_norm[l] = np.sqrt((dh_seq.astype(np.float64) ** 2).sum(axis=(1, 2)))
        dcur = dx
    return GradientFlow("lstm" if is_lstm else "rnn", dh_norm, dc_norm)


@dataclass
class JacobianNorms:
    """Estimated ``||∂h_T/∂h_t||_F`` (and ``||∂h_T/∂C_t||_F``, LSTM) of the top layer."""

    kind: str  # "lstm" or "rnn"
    dh: np.ndarray  # (T, B) per sequence, row t is step t; sqrt(H) at t = T - 1 (J = I)
    dc: np.ndarray | None  # (T, B) same for the cell state (LSTM only)
    probes: int  # K random directions averaged

    def mean(self) -> dict[str, np.ndarray]:
        """Per step, the geometric mean over sequences (norms spread over decades)."""
        out = {"h": np.exp(np.log(np.maximum(self.dh, 1e-300)).mean(axis=1))}
        if self.dc is not None:
            out["C"] = np.exp(np.log(np.maximum(self.dc, 1e-300)).mean(axis=1))
        return out


def jacobian_norms(layer, x, probes: int = 16, rng: np.random.Generator | None = None,
                   state=None) -> JacobianNorms:
    """Frobenius norms of the Jacobians from every step's state to the last hidden state.

    One forward pass, then ``probes`` backward passes of the top layer, each from
    ``dhT = v ~ N(0, I_H)`` per sequence: the gradient reaching ``h_t`` is ``J_tᵀ v`` with
    ``J_t = ∂h_T/∂h_t``, and the mean of ``||J_tᵀ v||²`` over probes estimates ``||J_t||_F²``
    (exact in expectation; relative error about ``sqrt(2/K)`` for a rank-one J). At
    ``t = T - 1`` the Jacobian is the identity, so the estimate there is about ``sqrt(H)``.
    """
    x, h0, c0 = prepare(layer, x, state, "jacobian_norms")
    probes = positive_int(probes, "probes")
    rng = np.random.default_rng(0) if rng is None else generator(rng)
    T, B, _ = x.shape
    H = layer.hidden_size
    is_lstm = isinstance(layer, LSTM)
    cache = _forward_stack(layer, x, h0, c0)[-1]
    sq_h = np.zeros((T, B))  # (T, B) running sum of ||J_t^T v||^2
    sq_c = np.zeros((T, B)) if is_lstm else None
    for _ in range(probes):
        v = rng.normal(size=(B, H)).astype(layer.dtype)  # (B, H) probe on h_T
        dh_seq = np.zeros((T, B, H), layer.dtype)  # (T, B, H)
        if is_lstm:
            dc_seq = np.zeros((T, B, H), layer.dtype)  # (T, B, H)
            lstm_backward(None, v, None, cache, dh_seq, dc_seq)
            sq_c += (dc_seq.astype(np.float64) ** 2).sum(axis=2)
        else:
            rnn_backward(None, v, cache, dh_seq)
        sq_h += (dh_seq.astype(np.float64) ** 2).sum(axis=2)
    return JacobianNorms("lstm" if is_lstm else "rnn", np.sqrt(sq_h / probes),
                         None if sq_c is None else np.sqrt(sq_c / probes), probes)
