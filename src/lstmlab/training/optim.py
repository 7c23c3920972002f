"""Optimizers (SGD with momentum, Adam, AdamW), global-norm clipping and learning-rate schedules.

Parameters are a dict ``name -> array`` (a layer's ``params()``: the live arrays, updated in
place); each ``step(grads)`` takes the gradients as a dict with exactly the same names and
shapes. Every rule below is PyTorch's ``torch.optim`` rule, operation for operation, so a
run matches torch to float64 round-off. With ``g`` the gradient, ``θ`` a parameter, ``η``
the learning rate, ``λ`` the weight decay and ``t`` the 1-based step count:

SGD (``torch.optim.SGD``)::

    g ← g + λ θ                                    (if λ ≠ 0: L2 penalty in the gradient)
    b ← g                       at the first step  (the buffer starts as the gradient, not 0)
    b ← μ b + (1 - τ) g         afterwards         (μ momentum, τ dampening)
    g ← g + μ b  (Nesterov)   or   g ← b           (if μ ≠ 0)
    θ ← θ - η g

Adam (``torch.optim.Adam``; Kingma & Ba 2015) and AdamW (``torch.optim.AdamW``;
Loshchilov & Hutter 2019, decoupled weight decay)::

    θ ← θ (1 - η λ)  (AdamW)   or   g ← g + λ θ  (Adam)
    m ← m + (1 - β₁)(g - m)                        (= β₁ m + (1 - β₁) g, as torch's lerp)
    v ← β₂ v + (1 - β₂) g²
    v̂ ← max(v̂, v)  (AMSGrad)   or   v̂ ← v
    θ ← θ - (η / (1 - β₁ᵗ)) · m / (√v̂ / √(1 - β₂ᵗ) + ε)

Note where ε sits: torch adds it to ``√v̂ / √(1 - β₂ᵗ)``, not to ``√v̂`` before the
correction.

Global-norm clipping (``torch.nn.utils.clip_grad_norm_``): with ``N = ‖(g₁, g₂, ...)‖₂``
the norm of all gradients as one vector, every gradient is scaled by
``min(1, c / (N + 10⁻⁶))``.

Schedules are pure functions of the step index ``k`` (the number of optimizer steps taken),
``lr = schedule(k)``; after ``k`` calls of a torch scheduler's ``step()`` its lr is the same:

* ``Constant``:  ``η``
* ``StepDecay`` (``StepLR``):  ``η γ^⌊k / s⌋``
* ``Cosine`` (``CosineAnnealingLR`` for ``k ≤ K``):
  ``η_min + (η - η_min)(1 + cos(π k / K)) / 2``, then ``η_min`` (torch's would rise again)
* ``Warmup`` (``LinearLR`` then the wrapped schedule, as ``SequentialLR``): for ``k < w``,
  ``schedule(0) · (f₀ + (1 - f₀) k / w)``; afterwards ``schedule(k - w)``.

Checkpoints: ``state_dict()`` returns a JSON-able dict (optimizer type, hyperparameters,
step count, parameter names and shapes) and a dict of NumPy arrays (the per-parameter
buffers, keyed ``"<buffer>/<param name>"``); ``load_state_dict`` restores both, so a run
resumes bit-for-bit. No pickle.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from .. import _checks


# ----------------------------------------------------------------------------------------
# argument checks
# ----------------------------------------------------------------------------------------

def _real(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite real number, got {value!r}")
    return float(value)


def _positive(value, name: str) -> float:
    v = _real(value, name)
    if v <= 0:
        raise ValueError(f"{name} must be > 0, got {value!r}")
    return v


def _non_negative(value, name: str) -> float:
    v = _real(value, name)
    if v < 0:
        raise ValueError(f"{name} must be >= 0, got {value!r}")
    return v


def _flag(value, name: str) -> bool:
    return _checks.true_or_false(value, name, ValueError)


def _non_negative_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    return int(value)


def _check_params(params) -> dict[str, np.ndarray]:
    if hasattr(params, "params") and callable(params.params):
        raise TypeError("params must be a dict name -> array; for a layer pass layer.params()")
    if not isinstance(params, dict):
        raise TypeError(f"params must be a dict name -> array, got {type(params).__name__}")
    if not params:
        raise ValueError("params is empty: there is nothing to optimize")
    for name, p in params.items():
        if not isinstance(p, np.ndarray) or p.dtype.kind != "f":
            raise TypeError(f"params[{name!r}] must be a floating-point numpy array, got "
                            f"{type(p).__name__} {getattr(p, 'dtype', '')}".rstrip())
        if not p.flags.writeable:
            raise ValueError(f"params[{name!r}] is read-only; the optimizer updates it in place")
    _check_distinct(params)
    return dict(params)


def _check_distinct(params: dict) -> None:
    """Refuse two names for one parameter (the same array, or views that overlap): each
    step would update its memory once per name, a step of twice the size with the
    gradient counted twice. (``model.params()`` merged with a child's ``params()`` gives
    each of the child's arrays a second name.)"""
    items = list(params.items())
    for i, (a, p) in enumerate(items):
        for b, q in items[i + 1:]:
            if np.shares_memory(p, q):
                raise ValueError(f"params[{a!r}] and params[{b!r}] are the same parameter (their "
                                 f"arrays share memory): each step would update it twice; "
                                 f"give each parameter one name")


# ----------------------------------------------------------------------------------------
# optimizers
# ----------------------------------------------------------------------------------------

class Optimizer:
    """What every optimizer shares: the parameters, ``lr``, the step count, the buffers and
    their checkpoint form. Subclasses define the update, the hyperparameters and which
    buffers exist after the first step."""

    # Buffers of squared gradients (Adam's second moments), >= 0 in any state it reaches.
    _squares: tuple[str, ...] = ()

    def __init__(self, params, lr: float) -> None:
        self.params = _check_params(params)
        self._lr = _positive(lr, "lr")
        self.step_count = 0  # optimizer steps taken so far
        # buffer name -> parameter name -> array; created at the first step, as torch does
        self.state: dict[str, dict[str, np.ndarray]] = {}

    # -- learning rate ----------------------------------------------------------------
    @property
    def lr(self) -> float:
        return self._lr

    @lr.setter
    def lr(self, value: float) -> None:
        # 0 is allowed here (not in the constructor): schedules reach it at the end of a
        # cosine decay or the start of a warm-up.
        self._lr = _non_negative(value, "lr")

    # -- to be defined by each optimizer ----------------------------------------------
    def hyperparameters(self) -> dict:
        """The hyperparameters other than ``lr``, JSON-able, as keyword arguments."""
        raise NotImplementedError

    def _set_hyperparameters(self, **hp) -> None:
        """Validate all of ``hp`` first, then assign (so a failure changes nothing)."""
        raise NotImplementedError

    def _buffers_after_first_step(self) -> tuple[str, ...]:
        raise NotImplementedError

    def _update(self, name: str, p: np.ndarray, g: np.ndarray) -> None:
        """Update parameter ``p`` in place from its gradient ``g`` (``step_count`` is t)."""
        raise NotImplementedError

    # -- stepping ---------------------------------------------------------------------
    def _check_grads(self, grads) -> dict[str, np.ndarray]:
        if not isinstance(grads, dict):
            raise TypeError(f"grads must be a dict name -> array, got {type(grads).__name__}")
        # key=str: a dict may mix key types (0 beside 'w'), which sorted() cannot order
        missing = sorted(set(self.params) - set(grads), key=str)
        extra = sorted(set(grads) - set(self.params), key=str)
        if missing or extra:
            raise ValueError(f"grads must have the names of params: missing {missing}, "
                             f"unexpected {extra}")
        out = {}
        for name, p in self.params.items():
            g = np.asarray(grads[name])
            if g.dtype.kind != "f":
                raise TypeError(f"grads[{name!r}] must be a floating-point array, "
                                f"got dtype {g.dtype}")
            if g.shape != p.shape:
                raise ValueError(f"grads[{name!r}] must have the shape of its parameter "
                                 f"{p.shape}, got {g.shape}")
            out[name] = _cast_grad(g, p.dtype, name)
        return out

    def step(self, grads: dict[str, np.ndarray]) -> None:
        """One update of every parameter, in place. ``grads`` is not modified."""
        grads = self._check_grads(grads)
        self.step_count += 1
        for name, p in self.params.items():
            self._update(name, p, grads[name])

    # -- checkpoints ------------------------------------------------------------------
    def state_dict(self) -> tuple[dict, dict[str, np.ndarray]]:
        """``(meta, arrays)``: JSON-able description and copies of the buffers."""
        meta = {
            "optimizer": type(self).__name__,
            "lr": self.lr,
            "hyperparameters": self.hyperparameters(),
            "step": self.step_count,
            "params": {name: list(p.shape) for name, p in self.params.items()},
        }
        arrays = {f"{buf}/{name}": arr.copy()
                  for buf, per_param in self.state.items() for name, arr in per_param.items()}
        return meta, arrays

    def load_state_dict(self, meta: dict, arrays: dict[str, np.ndarray]) -> None:
        """Restore what :meth:`state_dict` returned: hyperparameters, ``lr``, step, buffers.

        Everything is checked before anything changes, so a bad checkpoint leaves the
        optimizer as it was.
        """
        kind = type(self).__name__
        if not isinstance(meta, dict) or meta.get("optimizer") != kind:
            got = meta.get("optimizer") if isinstance(meta, dict) else type(meta).__name__
            raise ValueError(f"optimizer state is for {got!r}, this optimizer is {kind!r}")
        for key in ("lr", "hyperparameters", "step", "params"):
            if key not in meta:
                raise ValueError(f"optimizer state is missing {key!r} (corrupt checkpoint?)")
        shapes = {name: list(p.shape) for name, p in self.params.items()}
        if meta["params"] != shapes:
            raise ValueError(f"optimizer state is for parameters {meta['params']}, "
                             f"this optimizer has {shapes}")
        lr = _non_negative(meta["lr"], "lr")
        step = _non_negative_int(meta["step"], "step")
        if not isinstance(meta["hyperparameters"], dict):
            raise ValueError(f"optimizer state's hyperparameters must be a dict, got "
                             f"{type(meta['hyperparameters']).__name__} (corrupt checkpoint?)")

        # Validate the hyperparameters on a scratch instance so that self stays untouched.
        scratch = object.__new__(type(self))
        try:
            scratch._set_hyperparameters(**meta["hyperparameters"])
        except TypeError as err:  # unknown or missing keyword
            raise ValueError(f"optimizer state has hyperparameters "
                             f"{sorted(meta['hyperparameters'])} that {kind} does not take "
                             f"({err})") from None

        if not isinstance(arrays, Mapping):  # set() of a list of arrays fails on hashing
            raise TypeError(f"arrays must be a mapping of buffer names to arrays (what "
                            f"state_dict returns), got {type(arrays).__name__}")
        buffers = scratch._buffers_after_first_step() if step > 0 else ()
        expected = {f"{b}/{n}" for b in buffers for n in self.params}
        missing = sorted(expected - set(arrays), key=str)
        extra = sorted(set(arrays) - expected, key=str)
        if missing or extra:
            raise ValueError(f"optimizer state arrays do not match: missing {missing}, "
                             f"unexpected {extra}")
        state: dict[str, dict[str, np.ndarray]] = {b: {} for b in buffers}
        for b in buffers:
            for name, p in self.params.items():
                key = f"{b}/{name}"
                value = _checks.as_numpy(arrays[key], f"optimizer state {key!r}")
                arr = _checks.as_float_array(value, f"optimizer state {key!r}", p.dtype)
                arr = arr.reshape(value.shape)  # as_float_array turns 0-d into 1-d
                _checks.check_shape(arr, p.shape, f"optimizer state {key!r}")
                if b in self._squares and (arr < 0).any():  # its square root would be NaN
                    at = tuple(int(i) for i in np.argwhere(arr < 0)[0])
                    raise ValueError(f"optimizer state {key!r} holds {arr[at]:g} at index "
                                     f"{at}: a mean of squares is never negative (corrupt "
                                     f"checkpoint?)")
                state[b][name] = arr.copy()  # own the buffer: updated in place from now on

        self._set_hyperparameters(**meta["hyperparameters"])
        self._lr = lr
        self.step_count = step
        self.state = state


def _cast_grad(g: np.ndarray, dtype, name: str) -> np.ndarray:
    """``g`` in the parameter's ``dtype``. A finite gradient beyond that dtype's range (1e300
    for a float32 parameter) is refused by name: cast, it would become inf and the update
    NaN. NaN and inf gradients pass, as in torch (see :func:`clip_grad_norm`)."""
    with np.errstate(over="ignore"):
        out = g.astype(dtype, copy=False)
    if out is not g:
        lost = ~np.isfinite(out) & np.isfinite(g)
        if lost.any():
            at = tuple(int(i) for i in np.argwhere(lost)[0])
            raise ValueError(f"grads[{name!r}] holds {g[at]:.3g} at index {at}, beyond the "
                             f"range of its {np.dtype(dtype)} parameter (largest "
                             f"{np.finfo(dtype).max:.3g})")
    return out


class SGD(Optimizer):
    """Stochastic gradient descent with optional (Nesterov) momentum and L2 weight decay."""

    def __init__(self, params, lr: float, momentum: float = 0.0, dampening: float = 0.0,
                 nesterov: bool = False, weight_decay: float = 0.0) -> None:
        super().__init__(params, lr)
        self._set_hyperparameters(momentum=momentum, dampening=dampening, nesterov=nesterov,
                                  weight_decay=weight_decay)

    def _set_hyperparameters(self, *, momentum, dampening, nesterov, weight_decay) -> None:
        momentum = _non_negative(momentum, "momentum")
        dampening = _real(dampening, "dampening")
        nesterov = _flag(nesterov, "nesterov")
        weight_decay = _non_negative(weight_decay, "weight_decay")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError(f"nesterov=True needs momentum > 0 and dampening = 0, got "
                             f"momentum={momentum!r}, dampening={dampening!r}")
        self.momentum, self.dampening = momentum, dampening
        self.nesterov, self.weight_decay = nesterov, weight_decay

    def hyperparameters(self) -> dict:
        return {"momentum": self.momentum, "dampening": self.dampening,
                "nesterov": self.nesterov, "weight_decay": self.weight_decay}

    def _buffers_after_first_step(self) -> tuple[str, ...]:
        return ("momentum_buffer",) if self.momentum != 0 else ()

    def _update(self, name: str, p: np.ndarray, g: np.ndarray) -> None:
        if self.weight_decay != 0:
            g = g + self.weight_decay * p  # new array: the caller's grads stay as they were
        if self.momentum != 0:
            buffers = self.state.setdefault("momentum_buffer", {})
            buf = buffers.get(name)
            if buf is None:
                # torch starts the buffer at g, not at 0. np.array, not g.copy(): for a 0-d
                # parameter g + λθ is a NumPy scalar, and the buffer must be an array.
                buf = buffers[name] = np.array(g, dtype=p.dtype, copy=True)
            else:
                buf *= self.momentum
                buf += (1 - self.dampening) * g
            g = g + self.momentum * buf if self.nesterov else buf
        p -= self.lr * g


class Adam(Optimizer):
    """Adam with bias correction, optional AMSGrad and L2 weight decay (added to the gradient)."""

    # AdamW sets this: decay the parameters directly instead of adding λθ to the gradient.
    _decoupled_weight_decay = False
    _squares = ("exp_avg_sq", "max_exp_avg_sq")

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0, amsgrad: bool = False) -> None:
        super().__init__(params, lr)
        self._set_hyperparameters(betas=betas, eps=eps, weight_decay=weight_decay,
                                  amsgrad=amsgrad)

    def _set_hyperparameters(self, *, betas, eps, weight_decay, amsgrad) -> None:
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise ValueError(f"betas must be a pair (beta1, beta2), got {betas!r}")
        beta1 = _checks.probability(betas[0], "betas[0]")
        beta2 = _checks.probability(betas[1], "betas[1]")
        # eps 0 turns a zero gradient (an unused weight) into 0/0 = NaN weights
        eps = _positive(eps, "eps")
        weight_decay = _non_negative(weight_decay, "weight_decay")
        amsgrad = _flag(amsgrad, "amsgrad")
        self.betas, self.eps = (beta1, beta2), eps
        self.weight_decay, self.amsgrad = weight_decay, amsgrad

    def hyperparameters(self) -> dict:
        return {"betas": list(self.betas), "eps": self.eps, "weight_decay": self.weight_decay,
                "amsgrad": self.amsgrad}

    def _buffers_after_first_step(self) -> tuple[str, ...]:
        return ("exp_avg", "exp_avg_sq") + (("max_exp_avg_sq",) if self.amsgrad else ())

    def _buffer(self, buf: str, name: str, p: np.ndarray) -> np.ndarray:
        return self.state.setdefault(buf, {}).setdefault(name, np.zeros_like(p))

    def _update(self, name: str, p: np.ndarray, g: np.ndarray) -> None:
        beta1, beta2 = self.betas
        t = self.step_count
        if self.weight_decay != 0:
            if self._decoupled_weight_decay:
                p *= 1 - self.lr * self.weight_decay
            else:
                g = g + self.weight_decay * p  # new array: the caller's grads stay as they were
        m = self._buffer("exp_avg", name, p)
        v = self._buffer("exp_avg_sq", name, p)
        m += (1 - beta1) * (g - m)  # torch's lerp form of β₁ m + (1 - β₁) g
        v *= beta2
        v += (1 - beta2) * g * g
        if self.amsgrad:
            v_hat = self._buffer("max_exp_avg_sq", name, p)
            np.maximum(v_hat, v, out=v_hat)
        else:
            v_hat = v
        # The bias corrections and their order of operations are torch's.
        bias_correction1 = 1 - beta1 ** t
        bias_correction2_sqrt = (1 - beta2 ** t) ** 0.5
        step_size = self.lr / bias_correction1
        denom = np.sqrt(v_hat)  # same shape as p
        denom /= bias_correction2_sqrt
        denom += self.eps
        update = -step_size * m  # same shape as p
        update /= denom
        p += update


class AdamW(Adam):
    """Adam with decoupled weight decay: ``θ ← θ (1 - η λ)`` before the Adam step."""

    _decoupled_weight_decay = True

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 1e-2, amsgrad: bool = False) -> None:
        super().__init__(params, lr, betas=betas, eps=eps, weight_decay=weight_decay,
                         amsgrad=amsgrad)


# ----------------------------------------------------------------------------------------
# clipping
# ----------------------------------------------------------------------------------------

def clip_grad_norm(grads: dict[str, np.ndarray], max_norm: float,
                   error_if_nonfinite: bool = False) -> float:
    """Scale all gradients in place so that their global L2 norm is at most ``max_norm``.

    Returns the norm before clipping. As in torch, a NaN/inf norm scales every gradient to
    NaN unless ``error_if_nonfinite`` raises instead; either way the returned norm lets a
    training loop notice and skip the step.
    """
    max_norm = _positive(max_norm, "max_norm")
    if not isinstance(grads, dict):
        raise TypeError(f"grads must be a dict name -> array, got {type(grads).__name__}")
    for name, g in grads.items():
        if not isinstance(g, np.ndarray) or g.dtype.kind != "f":
            raise TypeError(f"grads[{name!r}] must be a floating-point numpy array (clipped in "
                            f"place), got {type(g).__name__}")
        if not g.flags.writeable:  # refused before any is scaled, whatever the norm
            raise ValueError(f"grads[{name!r}] is read-only; clip_grad_norm scales the "
                             f"gradients in place (pass a copy)")
    total_norm = _global_norm(list(grads.values()))
    if error_if_nonfinite and not math.isfinite(total_norm):
        raise ValueError(f"the global gradient norm is {total_norm}, so it cannot be clipped "
                         f"(a NaN or inf gradient: the run has probably diverged)")
    clip_coef = max_norm / (total_norm + 1e-6)
    if not clip_coef >= 1.0:  # also true for NaN, which torch propagates too
        # An inf norm gives clip_coef 0 and inf * 0 = NaN, as in torch; no warning for it.
        with np.errstate(invalid="ignore"):
            for g in grads.values():
                g *= clip_coef
    return total_norm


def _global_norm(arrays: list[np.ndarray]) -> float:
    """``‖(a₁, a₂, ...)‖₂`` over all elements, accumulated in float64 so that float32 arrays
    lose no digits in the sum. Values beyond about 1e150 (or below 1e-150) are first divided
    by the largest magnitude, as their squares would overflow to inf (or underflow to 0)
    and the norm of finite gradients would come out inf (or 0)."""
    flats = [a.reshape(-1).astype(np.float64, copy=False) for a in arrays]  # each (size,)
    top = max((float(np.max(np.abs(f))) for f in flats if f.size), default=0.0)
    scale = top if math.isfinite(top) and (top > 1e150 or 0 < top < 1e-150) else 1.0
    sum_sq = 0.0
    for f in flats:
        f = f / scale if scale != 1.0 else f
        sum_sq += float(np.dot(f, f))
    return scale * math.sqrt(sum_sq)


# ----------------------------------------------------------------------------------------
# learning-rate schedules
# ----------------------------------------------------------------------------------------

class Schedule:
    """A learning rate as a pure function of the step index: ``lr = schedule(step)``."""

    def __call__(self, step: int) -> float:
        return self._lr(_non_negative_int(step, "step"))

    def _lr(self, step: int) -> float:
        raise NotImplementedError


@dataclass(frozen=True)
class Constant(Schedule):
    """The same learning rate at every step."""

    lr: float  # the learning rate

    def __post_init__(self) -> None:
        object.__setattr__(self, "lr", _positive(self.lr, "lr"))

    def _lr(self, step: int) -> float:
        return self.lr


@dataclass(frozen=True)
class StepDecay(Schedule):
    """``lr · gamma ** (step // step_size)``: torch's StepLR."""

    lr: float  # the learning rate at step 0
    step_size: int  # steps between two decays
    gamma: float = 0.1  # factor applied at each decay

    def __post_init__(self) -> None:
        object.__setattr__(self, "lr", _positive(self.lr, "lr"))
        object.__setattr__(self, "step_size", _checks.positive_int(self.step_size, "step_size"))
        object.__setattr__(self, "gamma", _positive(self.gamma, "gamma"))

    def _lr(self, step: int) -> float:
        return self.lr * self.gamma ** (step // self.step_size)


@dataclass(frozen=True)
class Cosine(Schedule):
    """Half a cosine from ``lr`` at step 0 to ``min_lr`` at ``total_steps``, then ``min_lr``:
    torch's CosineAnnealingLR (T_max = total_steps, eta_min = min_lr) up to total_steps."""

    lr: float  # the learning rate at step 0
    total_steps: int  # the step at which min_lr is reached
    min_lr: float = 0.0  # the final learning rate

    def __post_init__(self) -> None:
        object.__setattr__(self, "lr", _positive(self.lr, "lr"))
        object.__setattr__(self, "total_steps",
                           _checks.positive_int(self.total_steps, "total_steps"))
        min_lr = _non_negative(self.min_lr, "min_lr")
        if min_lr > self.lr:
            raise ValueError(f"min_lr must be <= lr ({self.lr!r}), got {min_lr!r}")
        object.__setattr__(self, "min_lr", min_lr)

    def _lr(self, step: int) -> float:
        if step >= self.total_steps:
            return self.min_lr  # hold the minimum rather than rise again as torch's does
        cos_factor = (1 + math.cos(math.pi * step / self.total_steps)) / 2
        return self.min_lr + (self.lr - self.min_lr) * cos_factor


@dataclass(frozen=True)
class Warmup(Schedule):
    """Linear warm-up in front of another schedule.

    For ``step < warmup_steps`` the rate rises linearly from ``start_factor · after(0)`` to
    ``after(0)``; then ``after`` runs as if the warm-up's end were its step 0 (torch's
    ``SequentialLR([LinearLR(start_factor, total_iters=warmup_steps), after])``).
    """

    after: Schedule  # the schedule that follows the warm-up
    warmup_steps: int  # length of the warm-up (0: none)
    start_factor: float = 0.0  # fraction of after(0) at step 0

    def __post_init__(self) -> None:
        if not isinstance(self.after, Schedule):
            raise TypeError(f"after must be a Schedule (Constant, StepDecay, Cosine, ...), "
                            f"got {type(self.after).__name__}")
        object.__setattr__(self, "warmup_steps",
                           _non_negative_int(self.warmup_steps, "warmup_steps"))
        start = _real(self.start_factor, "start_factor")
        if not 0.0 <= start <= 1.0:
            raise ValueError(f"start_factor must lie in [0, 1], got {self.start_factor!r}")
        object.__setattr__(self, "start_factor", start)

    def _lr(self, step: int) -> float:
        if step >= self.warmup_steps:
            return self.after(step - self.warmup_steps)
        factor = self.start_factor + (1.0 - self.start_factor) * step / self.warmup_steps
        return self.after(0) * factor
