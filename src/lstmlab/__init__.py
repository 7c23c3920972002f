"""lstmlab: the lecture's vanilla RNN and LSTM, and the GRU, in NumPy, exact and fast, from
equations up.

The layers are imported on first use (``lstmlab.LSTM``, ``from lstmlab import LSTM``), not
by ``import lstmlab`` itself: the command line (``lstmlab.cli``) then starts without loading
NumPy, so a Ctrl-C during its start-up reaches the command's own handling instead of
interrupting an import with a traceback.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"
__all__ = ["LSTM", "RNN", "GRU", "CharLM", "CharLMConfig", "Dropout", "Embedding", "Linear",
           "Module", "get_num_threads", "set_num_threads", "__version__"]

_FROM = {name: ".layers" for name in __all__[:9]} | {name: ".kernels.fast" for name in __all__[9:11]}


def __getattr__(name: str):
    if name in _FROM:
        value = getattr(importlib.import_module(_FROM[name], __name__), name)
        globals()[name] = value  # later lookups skip this function
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_FROM))
