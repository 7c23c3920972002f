"""What every lstmlab layer shares: named parameters and gradients, train/eval mode.

A layer owns its parameter arrays. ``params()`` returns them by name (the live arrays:
optimizers update them in place), ``grads()`` the gradient arrays under the same names,
filled (overwritten, not accumulated) by ``backward``. Containers prefix child names with
``child_name.``, so one flat registry serves optimizers, checkpoints and converters.

A layer describes itself: ``repr`` on one line (a container shows its children, a leaf its
parameters' shapes), :meth:`Module.summary` as a text table of every parameter (name, shape,
dtype, count) and, in Jupyter, the same table as HTML (``_repr_html_``).
"""

from __future__ import annotations

import html
from collections.abc import Mapping

import numpy as np

from .._checks import as_float_array, as_numpy, true_or_false


class Module:
    """Base class: a parameter registry plus a training flag."""

    # What a forward keeps for its backward. A copy (copy.deepcopy, pickle) holds the
    # parameters, gradients and settings, not the last forward: that is many times the
    # parameters' size (a training forward keeps every step's gates), and a backward on the
    # copy needs a forward of its own.
    _FORWARD_STATE = ("_cache", "_caches")

    def __init__(self) -> None:
        self.training = True
        self._params: dict[str, np.ndarray] = {}
        self._grads: dict[str, np.ndarray] = {}

    def __getstate__(self):
        state = self.__dict__.copy()
        for name in self._FORWARD_STATE:
            if name in state:
                state[name] = None
        return state

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
        """Copy arrays into the parameters by name; names and shapes must match exactly, and
        every value must be finite in the parameter's dtype.

        Every loader of weights from outside (checkpoints, PyTorch, Keras, ONNX) comes
        through here: a NaN or inf (a diverged run, a damaged file) would load silently and
        turn every output into NaN later. Everything is checked before anything is copied,
        so a refused load leaves the parameters as they were.
        """
        if not isinstance(values, Mapping):
            raise TypeError(f"values must be a mapping of parameter names to arrays (what "
                            f"params() returns), got {type(values).__name__}")
        own = self.params()
        # key=str: a mapping may mix key types (0 beside 'w'), which sorted() cannot order
        missing = sorted(set(own) - set(values), key=str)
        extra = sorted(set(values) - set(own), key=str)
        if missing or extra:
            raise ValueError(f"parameter names do not match: missing {missing}, unexpected {extra}")
        checked = {}
        for k, v in values.items():
            v = as_numpy(v, f"parameter {k!r}")
            if v.shape != own[k].shape:
                raise ValueError(f"parameter {k!r}: expected shape {own[k].shape}, got {v.shape}")
            if v.dtype.kind in "biu":  # whole numbers hold no NaN or inf
                v = v.astype(own[k].dtype)
            checked[k] = as_float_array(v, f"parameter {k!r}", own[k].dtype).reshape(v.shape)
        for k, v in checked.items():
            own[k][...] = v

    # -- modes ------------------------------------------------------------------------
    def train(self, mode: bool = True) -> "Module":
        """Training mode (``mode=True``: dropout and regularisation masks drawn) or evaluation
        (``False``), for this module and its children. ``mode`` is a bool: ``bool()`` would
        read ``train("eval")`` or ``train("False")`` as training."""
        self.training = true_or_false(mode, "mode")
        for child in self.children().values():
            child.train(mode)
        return self

    def eval(self) -> "Module":
        return self.train(False)

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    def num_params(self) -> int:
        return int(sum(p.size for p in self.params().values()))

    # -- description ------------------------------------------------------------------
    def __repr__(self) -> str:
        parts = [f"{name}={child!r}" for name, child in self.children().items()]
        parts += [f"{name} {p.shape}" for name, p in self._params.items()]
        return f"{type(self).__name__}({', '.join(parts)})"

    def _summary_rows(self) -> list[tuple[str, str, str, str]]:
        """``(name, shape, dtype, count)`` per parameter, as :meth:`params` orders them."""
        return [(name, str(p.shape), p.dtype.name, f"{p.size:,}") for name, p in self.params().items()]

    def _summary_footer(self) -> str:
        mode = "training" if self.training else "eval"
        return f"{self.num_params():,} parameters in {len(self.params())} arrays; {mode} mode"

    def summary(self) -> str:
        """The layer's ``repr`` and a table of its parameters: name, shape, dtype, count."""
        header = ("parameter", "shape", "dtype", "count")
        rows = [header, *self._summary_rows()]
        widths = [max(len(r[i]) for r in rows) for i in range(4)]
        lines = [repr(self)]
        for r in rows:  # text columns left-aligned, the count right-aligned
            lines.append("  " + "  ".join(r[i].ljust(widths[i]) for i in range(3))
                         + "  " + r[3].rjust(widths[3]))
        lines.append(self._summary_footer())
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        """Jupyter's rich display: the :meth:`summary` table as HTML."""
        cell = "<td style='text-align:{}'><code>{}</code></td>"
        body = "".join(
            "<tr>" + "".join(cell.format("right" if i == 3 else "left", html.escape(v))
                             for i, v in enumerate(row)) + "</tr>"
            for row in self._summary_rows())
        return (f"<div><code>{html.escape(repr(self))}</code>"
                "<table><thead><tr><th>parameter</th><th>shape</th><th>dtype</th><th>count</th>"
                f"</tr></thead><tbody>{body}</tbody></table>"
                f"<p>{html.escape(self._summary_footer())}</p></div>")
