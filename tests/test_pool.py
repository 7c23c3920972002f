"""The fast kernels' buffer pool (``lstmlab.kernels._pool``): a buffer is handed out again only
when nothing but the pool references it, within the size window and the bounds; and the
kernels give the same results, bit for bit, on reused buffers, without ever writing into an
array the caller still holds."""

import os
import subprocess
import sys
import threading

import numpy as np
import pytest

import lstmlab
from lstmlab.kernels import fast
from lstmlab.kernels._pool import BufferPool

MiB = 1 << 20


def address(a: np.ndarray) -> int:
    return a.__array_interface__["data"][0]


def test_a_buffer_is_reused_once_nothing_references_it():
    pool = BufferPool(min_bytes=MiB)
    a = pool.empty((256, 1024), np.float64)  # 2 MiB
    assert a.shape == (256, 1024) and a.dtype == np.float64 and a.flags.c_contiguous
    where = address(a)
    assert pool.held_bytes() == (2 * MiB, 0)
    del a
    assert pool.held_bytes() == (0, 2 * MiB)
    b = pool.empty((512, 1024), np.float32)  # same size, other dtype and shape
    assert address(b) == where and b.dtype == np.float32
    assert pool.held_bytes() == (2 * MiB, 0)


@pytest.mark.parametrize("keep", ["view", "reshape", "tuple", "read-only view"])
def test_a_buffer_still_referenced_is_not_handed_out_again(keep):
    pool = BufferPool(min_bytes=MiB)
    a = pool.empty((256, 1024), np.float64)
    a[:] = 7.0
    if keep == "view":
        held = a[1:]
    elif keep == "reshape":
        held = a.reshape(-1)
    elif keep == "tuple":
        held = (a,)
    else:
        held = a[3:]
        held.flags.writeable = False
    del a
    b = pool.empty((256, 1024), np.float64)
    b[:] = -1.0
    arr = held[0] if keep == "tuple" else held
    assert not np.shares_memory(arr, b)
    assert np.all(arr == 7.0)
    assert pool.held_bytes() == (4 * MiB, 0)


def test_size_window_best_fit_and_small_requests():
    pool = BufferPool(min_bytes=MiB)
    small = pool.empty(MiB // 8 - 1, np.float64)  # under min_bytes: plain np.empty
    assert pool.held_bytes() == (0, 0) and small.size == MiB // 8 - 1
    big, mid = pool.empty(8 * MiB, np.uint8), pool.empty(3 * MiB, np.uint8)
    big_at, mid_at = address(big), address(mid)
    del big, mid
    # 1 MiB: both are more than twice as large, so neither serves
    one = pool.empty(MiB, np.uint8)
    assert address(one) not in (big_at, mid_at)
    # 2 MiB: only the 3 MiB buffer is within twice the request
    two = pool.empty(2 * MiB, np.uint8)
    assert address(two) == mid_at and two.nbytes == 2 * MiB
    # 5 MiB: the 8 MiB buffer, and a larger request than any free buffer gets a new one
    five = pool.empty(5 * MiB, np.uint8)
    assert address(five) == big_at
    nine = pool.empty(9 * MiB, np.uint8)
    assert address(nine) not in (big_at, mid_at)


def test_free_buffers_beyond_the_bounds_are_dropped_oldest_first():
    pool = BufferPool(min_bytes=MiB, max_free_bytes=5 * MiB, max_free_count=2)
    bufs = [pool.empty(s * MiB, np.uint8) for s in (1, 2, 3, 4)]
    at = [address(b) for b in bufs]
    del bufs
    # the next request drops free buffers, oldest first, down to 2 and to 5 MiB: 3 and 4 MiB
    # would be 7 MiB, so only the 4 MiB one stays free (the request itself is new: 10 MiB)
    keep = pool.empty(10 * MiB, np.uint8)
    assert pool.held_bytes() == (10 * MiB, 4 * MiB)
    assert address(pool.empty(4 * MiB, np.uint8)) == at[3]
    del keep  # now free too, with the 4 MiB buffer (its array above was not kept)
    assert pool.release() == 14 * MiB
    assert pool.held_bytes() == (0, 0)


def test_threads_never_get_the_same_buffer():
    pool = BufferPool(min_bytes=MiB)
    got, errors = [[] for _ in range(4)], []

    def work(k):
        try:
            for _ in range(50):
                a = pool.empty(MiB + 8 * (k % 2), np.uint8)
                a[:] = k
                got[k].append(a)
                if len(got[k]) > 3:
                    assert np.all(got[k].pop(0) == k)
        except AssertionError as e:  # reported in the main thread
            errors.append(e)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    held = [a for g in got for a in g]
    assert all(np.all(a == k) for k, g in enumerate(got) for a in g)
    assert not any(np.shares_memory(a, b) for i, a in enumerate(held) for b in held[i + 1:])


@pytest.mark.skipif(not fast.available(), reason="numba unavailable")
@pytest.mark.parametrize("kind", ["lstm", "rnn"])
def test_kernels_on_reused_buffers_are_bit_for_bit_and_leave_held_arrays_alone(kind, monkeypatch):
    """A training loop of two layers, run with the pool off and then with it serving every
    array: the same outputs and gradients bit for bit, and the outputs and gradients kept
    from the first step unchanged after the second."""
    rng = np.random.default_rng(5)
    T, B, D, H = 6, 3, 4, 5
    xs = [rng.normal(size=(T, B, D)) for _ in range(2)]
    dys = [rng.normal(size=(T, B, H)) for _ in range(2)]

    def run():
        r = np.random.default_rng(0)
        make = (lambda d: lstmlab.LSTM(d, H, rng=r)) if kind == "lstm" else (
            lambda d: lstmlab.RNN(d, H, rng=r))
        first, second = make(D), make(H)
        for layer in (first, second):
            layer.backend = "fast"
        kept = []
        for x, dy in zip(xs, dys):
            y1, _ = first.forward(x)
            y2, _ = second.forward(y1)
            d1 = second.backward(dy)[0]
            dx = first.backward(d1)[0]
            kept.append((y1, y2, d1, dx, {k: v.copy() for k, v in first.grads().items()}))
        return kept, [(y1.copy(), y2.copy(), d1.copy(), dx.copy()) for y1, y2, d1, dx, _ in kept]

    monkeypatch.setattr(fast.buffers, "min_bytes", 1 << 62)
    plain, _ = run()
    monkeypatch.setattr(fast.buffers, "min_bytes", 0)
    try:
        pooled, copies = run()
        assert fast.buffers.held_bytes()[0] > 0  # the kept outputs live in pooled buffers
    finally:
        fast.buffers.release()
    for step, (p, q, c) in enumerate(zip(plain, pooled, copies)):
        for name, a, b, kept in zip(["y1", "y2", "dx of the second", "dx"], p[:4], q[:4], c):
            assert np.array_equal(a, b), (step, name)
            assert np.array_equal(b, kept), (step, name)  # not overwritten by a later step
        assert p[4].keys() == q[4].keys()
        for k in p[4]:
            assert np.array_equal(p[4][k], q[4][k]), (step, k)


def test_environment_switch_turns_the_pool_off():
    code = ("import numpy as np; from lstmlab.kernels import fast; "
            "a = fast.buffers.empty((1 << 23,), np.float64); "
            "print(fast.buffers.held_bytes(), fast.buffers.min_bytes > 1 << 40)")
    out = {}
    for value in ("0", "1"):
        env = dict(os.environ, LSTMLAB_POOL=value)
        res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             env=env, check=True)
        out[value] = res.stdout.strip()
    assert out["0"] == "(0, 0) True"  # 64 MiB, not pooled
    assert out["1"] == f"({64 * MiB}, 0) False"
