"""Refusing a model too large for this machine before any of it is allocated.

A size option like ``--hidden 99999999999`` would otherwise reach NumPy as an allocation of
petabytes and end in a ``MemoryError`` traceback (or, under Linux's memory overcommit, in the
kernel's OOM killer much later). The commands instead count the parameters from the sizes
alone (Python integers: no overflow) and compare the bytes training keeps — weights,
gradients and the optimizer's buffers, each a full copy of the parameters — with the memory
of the machine. That is a lower bound of what training needs (activations come on top), so
the check refuses only what can never run here, and the message names the options and the
size they would need.

The machine's memory is the physical memory the operating system reports, or the control
group's limit when the process runs in a container that sets a lower one. Where neither is
known (Windows has no ``os.sysconf``), the bound is a fixed 1 TiB: more than a machine that
runs this library is likely to have, so it refuses no real model, but it still stops the
absurd sizes — ``--layers 99999999999`` would otherwise allocate layer after small layer
until the memory runs out. :func:`lstmlab.cli.main` turns any ``MemoryError`` that remains
into a one-line error.
"""

from __future__ import annotations

import os

import numpy as np

GATES = {"lstm": (4, 4), "rnn": (1, 1), "gru": (3, 4)}  # blocks of H in W, in the bias
UNKNOWN_MEMORY = 2 ** 40  # the bound where the system does not say (see the module docstring)


def recurrent_params(cell: str, input_size: int, hidden: int, layers: int) -> int:
    """Parameters of a stack of ``layers`` recurrent layers: per layer ``G·H·(D_l + H) + Gb·H``
    (input weights, recurrent weights, bias; G = Gb = 4 gate blocks for the LSTM, 1 for the
    RNN; the GRU's G = 3 and Gb = 4: b_r, b_z, b_in, b_hn; D_0 = ``input_size``, D_l = H
    above)."""
    g, gb = GATES[cell]
    first = g * hidden * (input_size + hidden) + gb * hidden
    return first + (layers - 1) * (g * hidden * 2 * hidden + gb * hidden)


def machine_memory() -> int | None:
    """Bytes of memory this process can use at most, or None when the system does not say."""
    limits = []
    try:
        limits.append(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, ValueError, OSError):  # not POSIX (Windows) or not reported
        pass
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            with open(path, encoding="ascii") as f:
                text = f.read().strip()
        except OSError:
            continue
        if text.isdigit():  # "max" means no limit
            limits.append(int(text))
    limits = [v for v in limits if v > 0]
    return min(limits) if limits else None


def _sci(n: int) -> str:
    """A non-negative integer of any size in 3-digit scientific notation (``float(n)``
    overflows above 1.8e308; a 4000-digit ``--hidden`` must still be named)."""
    digits = str(n)
    if len(digits) <= 300:
        return f"{n:.3g}"
    return f"{digits[0]}.{digits[1:3]}e+{len(digits) - 1}"


def format_bytes(n: int) -> str:
    """``n`` bytes in binary units: 512 B, 3.2 GiB; beyond YiB in scientific bytes."""
    if n < 1024:
        return f"{n} B"
    for k, unit in enumerate(("KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"), start=1):
        if n < 1024 ** (k + 1):
            return f"{n / 1024 ** k:.1f} {unit}"
    return f"{_sci(n)} B"


def check_training_fits(n_params: int, dtype, copies: int, options: dict[str, int],
                        what: str, available: int | None = None) -> None:
    """Raise ``ValueError`` naming ``options`` when ``copies`` full copies of ``n_params``
    parameters of ``dtype`` exceed the machine's memory (``available`` overrides it).

    ``options`` maps option names to the values given (``{"--hidden": 256, ...}``);
    ``what`` says what the copies are (``"weights, gradients, two Adam moments"``).
    """
    limit = available or machine_memory() or UNKNOWN_MEMORY
    need = int(n_params) * np.dtype(dtype).itemsize * copies
    if need <= limit:
        return
    given = ", ".join(f"{name} {value}" for name, value in options.items())
    raise ValueError(f"the model is too large for this machine: {given} give {_sci(n_params)} "
                     f"parameters, and training keeps {copies} {np.dtype(dtype).name} copies of "
                     f"them ({what}): {format_bytes(need)}, more than the "
                     f"{format_bytes(limit)} of memory here; choose smaller sizes")
