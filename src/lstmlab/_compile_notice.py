"""The notice a command gives while the fast kernels compile for the first time.

numba compiles a kernel on its first call for a dtype and caches the machine code on disk;
a first run of a command can therefore sit silent for tens of seconds. :func:`first_compile`
watches numba's count of cache misses and says so, once, with an estimate.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from pathlib import Path
from typing import Callable

from .kernels.fast import _modules

# What a first compile of one command's kernels takes on the 2-core development machine (a
# 2-layer float32 char-LSTM's training and evaluation kernels: 24 s, the command is in
# docs/speed.md): the estimate until this cache folder has timed a compile of its own.
FIRST_COMPILE_SECONDS = 25
_RECORD = "lstmlab-compile.json"  # in numba's cache folder: how long the last compile took


def _cache_misses(loops) -> int:
    """Compiles begun so far of the time loops: numba counts a call its disk cache misses
    just before it compiles."""
    while True:
        try:
            return sum(sum(v.stats.cache_misses.values()) for v in list(vars(loops).values())
                       if hasattr(v, "stats") and hasattr(v.stats, "cache_misses"))
        except RuntimeError:  # a counter that another thread's compile was adding to
            continue


def _record_path(loops) -> Path:
    return Path(loops.forward.stats.cache_path) / _RECORD


@contextlib.contextmanager
def first_compile(log: Callable[[str], None]):
    """Around the first calls of a command's kernels: as soon as one of them compiles rather
    than loading from numba's disk cache, ``log("compiling kernels, once: ~N s")``, and after
    the block how long it took (N: the last compile timed in this cache folder, or
    ``FIRST_COMPILE_SECONDS``). Loading from the cache says nothing. Without numba (or with
    ``LSTMLAB_FAST=0``) it does nothing."""
    mods = _modules()
    if mods is None:
        yield
        return
    try:
        last = json.loads(_record_path(mods.loops).read_text(encoding="utf-8")).get("seconds")
    except (OSError, ValueError, AttributeError):
        last = None
    estimate = last if isinstance(last, (int, float)) and last > 0 else FIRST_COMPILE_SECONDS
    before = _cache_misses(mods.loops)
    done, said = threading.Event(), []

    def watch():  # polls numba's count; a compile takes seconds, a poll microseconds
        while not done.wait(0.2):
            if _cache_misses(mods.loops) > before:
                said.append(True)
                log(f"compiling kernels, once: ~{round(estimate)} s")
                return

    watcher = threading.Thread(target=watch, name="lstmlab-compile-notice", daemon=True)
    t0 = time.perf_counter()
    watcher.start()
    try:
        yield
    finally:
        done.set()
        watcher.join()
    seconds = time.perf_counter() - t0
    if _cache_misses(mods.loops) == before:
        return
    if said:
        log(f"kernels compiled in {seconds:.0f} s (cached on disk for the next runs)")
    try:
        _record_path(mods.loops).write_text(json.dumps({"seconds": round(seconds, 1)}),
                                            encoding="utf-8")
    except (OSError, AttributeError):  # a read-only cache folder: the estimate stays the default
        pass
