"""What every lstmlab layer shares: named parameters and gradients, train/eval mode.

A layer owns its parameter arrays. ``params()`` returns them by name (the live arrays:
optimizers update them in place), ``grads()`` the gradient arrays under the same names,
filled (overwritten, not accumulated) by ``backward``. Containers prefix child names with
``child_name.``, so one flat registry serves optimizers, checkpoints and converters.
"""

from __future__ import annotations

import numpy as np


class Module:
    """Base class: a parameter registry plus a training flag."""

    def __init__(self) -> None:
        self.training = True
        self._params: dict[str, np.ndarray] = {}
        self._grads: dict[str, np.ndarray] = {}

    # -- registry ---------------------------------------------------------------------
    def _register(self, name: str, value: np.ndarray) -> np.ndarray:
        self._params[name] = value
        self._grads[name] = np.zeros_like(value)
        return value

    def children(self) -> dict[str, "Module"]:
        """Sub-modules by name (containers override)."""
        return {}

    def params(self) -> dict[str, np.ndarray]:
        """Parameters by name; the arrays are the layer's own (in-place updates stick)."""
        out = dict(self._params)
        for cname, child in self.children().items():
            out.update({f"{cname}.{k}": v for k, v in child.params().items()})
        return out

    def grads(self) -> dict[str, np.ndarray]:
        """Gradients by the same names as :meth:`params`, as left by the last backward."""
        out = dict(self._grads)
        for cname, child in self.children().items():
            out.update({f"{cname}.{k}": v for k, v in child.grads().items()})
        return out

    def share_grads(self, buffer: np.ndarray) -> None:
        """Make every gradient a view into ``buffer`` (1-D, ``num_params()`` long, the
        parameters' dtype), one after another in :meth:`params` order, keeping their values.

        ``backward`` writes gradients in place, so afterwards the whole gradient is this one
        buffer: a data-parallel run sums it over processes with a single all-reduce.
        """
        n = self.num_params()
        if not isinstance(buffer, np.ndarray) or buffer.ndim != 1 or buffer.shape[0] != n \
                or not buffer.flags.c_contiguous:
            raise ValueError(f"buffer must be a contiguous 1-D array of {n} elements, got "
                             f"{getattr(buffer, 'shape', type(buffer).__name__)}")
        offset = 0
        for module, name, g in self._grad_slots():
            if buffer.dtype != g.dtype:
                raise ValueError(f"buffer must have the parameters' dtype {g.dtype}, got "
                                 f"{buffer.dtype}")
            view = buffer[offset:offset + g.size].reshape(g.shape)
            view[...] = g
            module._grads[name] = view
            offset += g.size

    def _grad_slots(self):
        """``(module, name, gradient)`` for every gradient, in :meth:`params` order."""
        for name, g in self._grads.items():
            yield self, name, g
        for child in self.children().values():
            yield from child._grad_slots()

    def zero_grad(self) -> None:
        for g in self.grads().values():
            g.fill(0)

    def load_params(self, values: dict[str, np.ndarray]) -> None:
        """Copy arrays into the parameters by name; names and shapes must match exactly."""
        own = self.params()
        missing = sorted(set(own) - set(values))
        extra = sorted(set(values) - set(own))
        if missing or extra:
            raise ValueError(f"parameter names do not match: missing {missing}, unexpected {extra}")
        for k, v in values.items():
            v = np.asarray(v)
            if v.shape != own[k].shape:
                raise ValueError(f"parameter {k!r}: expected shape {own[k].shape}, got {v.shape}")
            own[k][...] = v

    # -- modes ------------------------------------------------------------------------
    def train(self, mode: bool = True) -> "Module":
        self.training = bool(mode)
        for child in self.children().values():
            child.train(mode)
        return self

    def eval(self) -> "Module":
        return self.train(False)

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    def num_params(self) -> int:
        return int(sum(p.size for p in self.params().values()))
