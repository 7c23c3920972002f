"""Big arrays kept for reuse between calls of the fast kernels: a small caching allocator.

Why: glibc's malloc hands every block of 32 MiB or more (its largest mmap threshold on 64-bit
systems) straight from and back to the kernel, so each such ``np.empty`` is fresh memory and
the first write to each of its pages is a page fault. A training loop allocates the same big
arrays every step — the gate cache and its gradient are ``T·B·4H`` elements, 50 MiB in float64
at T = 100, B = 128, H = 128 — and paid those faults every step: the first write to a fresh
48 MiB array took about twice as long as the next one here (``bench/bench_lstm.py --suites
none --pool``, which also times the training steps with and without the pool; docs/speed.md,
*Fresh memory*).

How it stays safe: the pool keeps a reference to each buffer it made and hands out views of
it. A buffer is free again when the pool holds the only reference — every view, and every
array or cache built on one, keeps its base alive, so memory that anything can still reach is
never handed out twice. Nothing is returned explicitly and nothing is pickled or shared.

Bounds: only requests of at least :attr:`BufferPool.min_bytes` are pooled (smaller ones are
plain ``np.empty``: malloc reuses those itself), free buffers beyond
:attr:`BufferPool.max_free_bytes` or :attr:`BufferPool.max_free_count` are dropped, oldest
first, and :meth:`BufferPool.release` drops every free one (e.g. after training, to give the
memory back).
"""

from __future__ import annotations

import math
import os
import sys
import threading
import weakref

import numpy as np

_POOLS: weakref.WeakSet = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for pool in list(_POOLS):  # a lock held by another thread at the fork stays held
        pool._lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


class BufferPool:
    """Reusable big buffers; :meth:`empty` is ``np.empty`` for callers (contents undefined)."""

    def __init__(self, min_bytes: int = 32 << 20, max_free_bytes: int = 512 << 20,
                 max_free_count: int = 8):
        self.min_bytes = min_bytes  # smaller requests are not pooled
        self.max_free_bytes = max_free_bytes  # free buffers beyond these are dropped
        self.max_free_count = max_free_count
        self._bufs: list[np.ndarray] = []  # (nbytes,) uint8, each owns its memory; oldest first
        self._lock = threading.Lock()
        # The reference count a buffer shows when only the list holds it, read the same way
        # as _is_free reads it (not a constant: interpreters count borrowed references apart).
        self._bufs.append(np.empty(1, np.uint8))
        self._free_count = sys.getrefcount(self._bufs[0])
        self._bufs.clear()
        _POOLS.add(self)

    def _is_free(self, i: int) -> bool:
        return sys.getrefcount(self._bufs[i]) == self._free_count

    def empty(self, shape, dtype) -> np.ndarray:
        """A C-contiguous array of ``shape`` and ``dtype``, from a free buffer when one of
        ``nbytes`` to ``2·nbytes`` bytes is held (the smallest such), else newly allocated."""
        shape = tuple(int(s) for s in (shape if isinstance(shape, tuple) else (shape,)))
        dtype = np.dtype(dtype)
        nbytes = math.prod(shape) * dtype.itemsize
        if nbytes < self.min_bytes:
            return np.empty(shape, dtype)
        with self._lock:
            best = None
            for i in range(len(self._bufs)):
                size = self._bufs[i].nbytes
                if nbytes <= size <= 2 * nbytes and self._is_free(i) and (
                        best is None or size < self._bufs[best].nbytes):
                    best = i
            if best is None:
                buf = np.empty(nbytes, np.uint8)
            else:
                buf = self._bufs.pop(best)
            self._bufs.append(buf)  # most recently used last
            self._trim(self.max_free_bytes, self.max_free_count)
        return buf[:nbytes].view(dtype).reshape(shape)

    def _trim(self, keep_bytes: int, keep_count: int) -> int:
        """Drop free buffers, oldest first, until at most ``keep_bytes`` bytes and
        ``keep_count`` buffers of them are held; returns the bytes dropped."""
        free = [i for i in range(len(self._bufs)) if self._is_free(i)]
        held = sum(self._bufs[i].nbytes for i in free)
        drop = []
        for i in free:  # oldest first
            if held <= keep_bytes and len(free) - len(drop) <= keep_count:
                break
            held -= self._bufs[i].nbytes
            drop.append(i)
        dropped = 0
        for i in reversed(drop):  # from the back, so that the other indices stay valid
            dropped += self._bufs[i].nbytes
            del self._bufs[i]
        return dropped

    def release(self) -> int:
        """Drop every free buffer; returns the bytes given back."""
        with self._lock:
            return self._trim(0, 0)

    def held_bytes(self) -> tuple[int, int]:
        """``(in use, free)``: bytes of the pool's buffers that something still references,
        and of those that only the pool holds."""
        with self._lock:
            return self._held()

    def _held(self) -> tuple[int, int]:
        used = free = 0
        for i in range(len(self._bufs)):
            if self._is_free(i):
                free += self._bufs[i].nbytes
            else:
                used += self._bufs[i].nbytes
        return used, free
