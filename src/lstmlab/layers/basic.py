"""The small layers around the recurrent core: Embedding, Linear and Dropout.

Dimensions: ``...`` any leading shape (e.g. ``(T, B)`` time-major), V vocabulary size,
E embedding width, D input features, O output features, M the number of leading positions
flattened into one (``M = prod(...)``), U the number of distinct tokens in a batch.

Each layer is a :class:`~lstmlab.layers.base.Module`: ``forward`` saves what ``backward``
needs in a typed cache on the layer, ``backward(dout)`` fills (overwrites, never
accumulates) the gradient arrays that :meth:`Module.grads` returns and gives back the
gradient of the input. The maths, with ``dout = ∂L/∂y``:

* Embedding, ``y[...] = W[tokens[...]]``: ``∂L/∂W[v] = Σ_{positions p with tokens[p] = v}
  dout[p]``; tokens are integers, so there is no input gradient.
* Linear, ``y = x Wᵀ + b`` (PyTorch's layout, ``W (O, D)``): ``dx = dout W``,
  ``dW = doutᵀ x``, ``db = Σ_rows dout``.
* Dropout (inverted), ``y = x ⊙ m`` with ``m = keep / (1 - p)`` and ``keep ~ Bernoulli(1 - p)``
  in training, ``y = x`` in evaluation: ``dx = dout ⊙ m``.

Initialisation follows PyTorch so that a fresh model behaves like a fresh torch model:
``Embedding.weight ~ N(0, 1)``; ``Linear.weight`` and ``Linear.bias ~ U(-1/√D, 1/√D)``.
Randomness comes only from the ``numpy.random.Generator`` passed in.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from .. import _checks
from .base import Module


def _as_float(value, name: str, dtype, finite: bool = True) -> np.ndarray:
    """``_checks.as_float_array`` that keeps a 0-d input 0-d (ascontiguousarray makes it 1-d)."""
    value = _checks.as_numpy(value, name)  # a torch tensor, a list: an array
    return _checks.as_float_array(value, name, dtype, finite=finite).reshape(value.shape)


def _require_cache(layer: Module, cache):
    """The layer's cache, or a RuntimeError saying forward has to run first."""
    if cache is None:
        name = type(layer).__name__
        raise RuntimeError(f"{name}.backward called before {name}.forward: there is nothing "
                           f"to backpropagate through (run forward on this batch first)")
    return cache


def _as_dout(dout, expected_shape: tuple[int, ...], dtype) -> np.ndarray:
    """``dout`` as a float array of the layer's dtype and the shape forward produced.

    No NaN scan here: backward runs on every step and the loss already rejected non-finite
    values; a non-finite gradient shows up in the global norm (see ``training.optim``).
    """
    dout = _as_float(dout, "dout", dtype, finite=False)
    _checks.check_shape(dout, expected_shape, "dout (the gradient of forward's output)")
    return dout


# ----------------------------------------------------------------------------------------
# Embedding
# ----------------------------------------------------------------------------------------

class EmbeddingCache(NamedTuple):
    """What Embedding.forward saves for backward."""

    tokens: np.ndarray  # (...)  int64 token ids, already range-checked


class Embedding(Module):
    """A lookup table: token id ``v`` -> row ``weight[v]`` of width ``embedding_dim``."""

    def __init__(self, num_embeddings: int, embedding_dim: int, dtype=np.float32,
                 rng: np.random.Generator | None = None) -> None:
        super().__init__()
        self.num_embeddings = _checks.positive_int(num_embeddings, "num_embeddings")
        self.embedding_dim = _checks.positive_int(embedding_dim, "embedding_dim")
        self.dtype = _checks.float_dtype(dtype)
        rng = _checks.generator(rng)
        V, E = self.num_embeddings, self.embedding_dim
        weight = rng.standard_normal((V, E)).astype(self.dtype)  # (V, E)
        self.weight = self._register("weight", weight)
        self._cache: EmbeddingCache | None = None

    def _check_tokens(self, tokens) -> np.ndarray:
        if hasattr(tokens, "detach") and hasattr(tokens, "numpy"):  # a torch tensor
            tokens = tokens.detach().cpu().numpy()
        tokens = np.asarray(tokens)
        if tokens.dtype.kind not in "iu":
            raise TypeError(f"tokens must be an integer array of token ids, got dtype "
                            f"{tokens.dtype} (convert with .astype(np.int64))")
        V = self.num_embeddings
        if tokens.size:
            lo, hi = int(tokens.min()), int(tokens.max())
            if lo < 0 or hi >= V:
                bad = lo if lo < 0 else hi
                raise ValueError(f"tokens must lie in [0, {V - 1}] (num_embeddings = {V}), "
                                 f"got {bad}")
        return np.array(tokens, dtype=np.int64)  # a copy: the caller may reuse its buffer

    def forward(self, tokens) -> np.ndarray:
        """``tokens (...)`` integer ids -> embeddings ``(..., E)``."""
        tokens = self._check_tokens(tokens)
        self._cache = EmbeddingCache(tokens)
        return self.weight[tokens]  # (..., E)

    def backward(self, dout) -> None:
        """Fill ``grads()['weight']`` from ``dout (..., E)``; tokens get no gradient (None)."""
        tokens, = _require_cache(self, self._cache)
        E = self.embedding_dim
        dout = _as_dout(dout, tokens.shape + (E,), self.dtype)
        dW = self._grads["weight"]  # (V, E)
        dW.fill(0)
        if tokens.size == 0:
            return None
        # Sum the rows of dout that share a token: sort the positions by token, then one
        # reduceat over each run. Same result as np.add.at(dW, tokens, dout), 2-3x faster.
        flat = tokens.reshape(-1)  # (M,)
        order = np.argsort(flat, kind="stable")  # (M,)
        sorted_tokens = flat[order]  # (M,)
        run_starts = np.flatnonzero(np.r_[True, sorted_tokens[1:] != sorted_tokens[:-1]])  # (U,)
        rows = dout.reshape(-1, E)[order]  # (M, E)
        dW[sorted_tokens[run_starts]] = np.add.reduceat(rows, run_starts, axis=0)  # (U, E)
        return None


# ----------------------------------------------------------------------------------------
# Linear
# ----------------------------------------------------------------------------------------

class LinearCache(NamedTuple):
    """What Linear.forward saves for backward."""

    x: np.ndarray  # (M, D)  the input with its leading dimensions flattened
    lead_shape: tuple[int, ...]  # the input's leading shape ``...``


class Linear(Module):
    """An affine map on the last axis: ``y = x Wᵀ + b``, with PyTorch's ``W (O, D)``."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True,
                 dtype=np.float32, rng: np.random.Generator | None = None) -> None:
        super().__init__()
        self.in_features = _checks.positive_int(in_features, "in_features")
        self.out_features = _checks.positive_int(out_features, "out_features")
        self.dtype = _checks.float_dtype(dtype)
        rng = _checks.generator(rng)
        _checks.true_or_false(bias, "bias")
        D, O = self.in_features, self.out_features
        # PyTorch's default (kaiming_uniform with a=√5) works out to U(±1/√D) for both.
        bound = 1.0 / math.sqrt(D)
        self.weight = self._register(
            "weight", rng.uniform(-bound, bound, size=(O, D)).astype(self.dtype))  # (O, D)
        self.bias = (self._register("bias", rng.uniform(-bound, bound, size=O).astype(self.dtype))
                     if bias else None)  # (O,) or None
        self._cache: LinearCache | None = None

    def forward(self, x) -> np.ndarray:
        """``x (..., D)`` -> ``y (..., O)``.

        ``x`` is kept (not copied) for backward: do not overwrite it in between.
        """
        x = _as_float(x, "x", self.dtype)
        D = self.in_features
        if x.ndim == 0 or x.shape[-1] != D:
            raise ValueError(f"x must have shape (..., {D}) (in_features = {D}), got {x.shape}")
        lead_shape = x.shape[:-1]
        x2 = x.reshape(-1, D)  # (M, D)  one matrix product instead of a batched one
        y = x2 @ self.weight.T  # (M, O)
        if self.bias is not None:
            y += self.bias
        self._cache = LinearCache(x2, lead_shape)
        return y.reshape(lead_shape + (self.out_features,))  # (..., O)

    def backward(self, dout) -> np.ndarray:
        """Fill the weight (and bias) gradients from ``dout (..., O)``; return ``dx (..., D)``."""
        x2, lead_shape = _require_cache(self, self._cache)
        dout = _as_dout(dout, lead_shape + (self.out_features,), self.dtype)
        dout2 = dout.reshape(-1, self.out_features)  # (M, O)
        np.matmul(dout2.T, x2, out=self._grads["weight"])  # (O, D)  dW = doutᵀ x
        if self.bias is not None:
            np.sum(dout2, axis=0, out=self._grads["bias"])  # (O,)  db = Σ_rows dout
        dx = dout2 @ self.weight  # (M, D)  dx = dout W
        return dx.reshape(lead_shape + (self.in_features,))  # (..., D)


# ----------------------------------------------------------------------------------------
# Dropout
# ----------------------------------------------------------------------------------------

class DropoutCache(NamedTuple):
    """What Dropout.forward saves for backward."""

    mask: np.ndarray | None  # (...)  keep / (1 - p); None when forward was the identity
    shape: tuple[int, ...]  # the input's shape


class Dropout(Module):
    """Inverted dropout: zero each entry with probability ``p`` and scale the rest by
    ``1 / (1 - p)`` in training, so that evaluation (the identity) needs no rescaling."""

    def __init__(self, p: float = 0.5, rng: np.random.Generator | None = None) -> None:
        super().__init__()
        self.p = _checks.probability(p, "p")
        self.rng = _checks.generator(rng)
        self._cache: DropoutCache | None = None

    def forward(self, x) -> np.ndarray:
        """``x (...)`` -> ``y (...)``; the identity in eval mode or when ``p == 0``."""
        # No NaN scan: dropout only passes values through; the layers around it check.
        x = _as_float(x, "x", None, finite=False)  # dtype None: keep x's own precision
        _checks.float_dtype(x.dtype, "x's dtype")  # the Generator draws only these two
        if not self.training or self.p == 0.0:
            self._cache = DropoutCache(None, x.shape)
            return x
        keep = self.rng.random(x.shape, dtype=x.dtype) >= self.p  # (...) bool, P(keep) = 1 - p
        mask = keep.astype(x.dtype)  # (...)
        mask *= 1.0 / (1.0 - self.p)
        self._cache = DropoutCache(mask, x.shape)
        return x * mask  # (...)

    def backward(self, dout) -> np.ndarray:
        """``dout (...)`` -> ``dx (...)``: the same mask as forward, or the identity."""
        mask, shape = _require_cache(self, self._cache)
        dout = _as_dout(dout, shape, None if mask is None else mask.dtype)
        return dout if mask is None else dout * mask  # (...)
