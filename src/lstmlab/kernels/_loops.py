"""The time loops of the compiled kernels: the same for every cell, run by a team of threads.

Dimensions: T time, B batch, D input features, H hidden units, G gate blocks, L layers.

A call runs on a **team** of P = nb·nu threads (``fast.py`` starts them; P = 1 is the
calling thread alone). Thread ``tid`` owns a tile of the sequence for all T steps: the rows
of row group ``tid // nu`` (B cut in nb parts) and the hidden units of unit group
``tid % nu`` (H cut in nu parts of whole panels). Row groups never wait for each other; the
nu unit groups of a row group do, once per step, because step t+1's recurrent product needs
all of h_t (backward: all of dz_t). Work over the whole sequence (packing the weights, the
weight and input gradients) is shared out over all P threads after a barrier of the team.
Every element of every result is computed by the same arithmetic whichever thread computes
it, so the results are the same bits for any P, nb and nu.

A barrier is a counter in ``sync (int64)`` on its own cache line: each thread adds 1 when its
part is written and waits until the counter reaches the total, spinning on an atomic load (a
step's parts end within microseconds of each other), and after ``SPINS`` checks yielding
its core through Python's ``time.sleep(0)``, so that a team also progresses on a machine with
fewer free cores than threads. A thread that fails sets ``ABORT``; the others stop waiting.
"""

from __future__ import annotations

import time

import numpy as np
from numba import njit, objmode, types
from numba.extending import intrinsic, register_jitable

from ._cells import cell_backward, cell_forward, cell_param_grads, cell_states, stream_tape
from ._product import (JIT, KC, MR, pack, pack_panel, pack_rows, pack_t, panel_columns, product,
                       vecmat)

LINE = 8  # int64 words per cache line: each counter of ``sync`` starts its own
ABORT, TEAM, GROUP = 0, LINE, 2 * LINE  # sync[GROUP + LINE·g]: row group g's step counter
SPINS = 20_000  # atomic checks (tens of microseconds) before a waiting thread yields
PROJECT_ROWS = 256  # rows of x·Wx projected at once, a chunk of steps ahead of the recurrence


def sync_words(nb: int) -> int:
    """Length of the ``sync`` array of a team with ``nb`` row groups."""
    return GROUP + LINE * nb


@intrinsic
def _atomic_add(typingctx, arr, idx, val):
    """``arr[idx] += val`` as one atomic operation (sequentially consistent)."""
    if not (isinstance(arr, types.Array) and arr.dtype == types.int64):
        return None

    def codegen(context, builder, sig, args):
        ary = context.make_array(sig.args[0])(context, builder, value=args[0])
        ptr = builder.gep(ary.data, [args[1]])
        val = context.cast(builder, args[2], sig.args[2], types.int64)
        return builder.atomic_rmw("add", ptr, val, "seq_cst")
    return types.int64(arr, types.intp, val), codegen


@intrinsic
def _atomic_load(typingctx, arr, idx):
    """``arr[idx]``, read atomically with acquire ordering (what other threads wrote before
    their atomic add is visible after it)."""
    if not (isinstance(arr, types.Array) and arr.dtype == types.int64):
        return None

    def codegen(context, builder, sig, args):
        ary = context.make_array(sig.args[0])(context, builder, value=args[0])
        return builder.load_atomic(builder.gep(ary.data, [args[1]]), "acquire", 8)
    return types.int64(arr, types.intp), codegen


@njit(cache=True)
def _yield():
    with objmode():
        time.sleep(0)


@register_jitable
def _wait(sync, idx, target):
    """Until ``sync[idx] >= target``; False if the team was aborted meanwhile."""
    spins = 0
    while _atomic_load(sync, idx) < target:
        if _atomic_load(sync, ABORT) != 0:
            return False
        spins += 1
        if spins == SPINS:
            _yield()
            spins = 0
    return True


@register_jitable
def _team_barrier(sync, n, P):
    """The ``n``-th barrier of the whole team (n = 1, 2, ...); False if aborted."""
    _atomic_add(sync, TEAM, 1)
    return _wait(sync, TEAM, n * P)


@register_jitable
def share(n, parts, k):
    """Part ``k`` of ``range(n)`` cut into ``parts`` nearly equal ranges: ``(start, stop)``."""
    return k * n // parts, (k + 1) * n // parts


@register_jitable
def _units(H, nr, nu, j):
    """Panels ``(p0, p1)`` and hidden units ``(u0, u1)`` of unit group j."""
    p0, p1 = share((H + nr - 1) // nr, nu, j)
    return p0, p1, p0 * nr, min(H, p1 * nr)


@register_jitable
def _gate_products(a, m0, m1, wp, H, G, p0, p1, c, accumulate, scratch):
    """``C[m0:m1] (+)= A[m0:m1] · W`` on the columns of units p0..p1 of every gate block."""
    PH = wp.shape[0] // G
    for g in range(G):
        product(a, m0, m1, wp, H, g * PH + p0, g * PH + p1, c, accumulate, scratch)


@njit(**JIT)
def forward(spec, tape, zh, x, lengths, Wx, Wh, wxp, whp, tid, nb, nu, sync):
    """Thread ``tid``'s share of the forward over ``x (T, B, D)``: every step's hidden state
    into ``tape.h[1:]`` (``tape.h[0]`` holds h_0, the cell's other initial state is in the
    tape too). ``wxp``, ``whp``: room for ``Wx (D, G·H)`` and ``Wh (H, G·H)`` packed;
    ``zh (B, G·H)``: the recurrent product of a step.

    A chunk of steps at a time (``tape.z`` holds one chunk or all of them): the team
    projects the chunk's x·Wx, all rows at once, each thread a share of the panels; then
    each runs its tile's recurrence through the chunk."""
    T, B = x.shape[0], x.shape[1]
    H, GH, Tz = tape.h.shape[2], tape.z.shape[2], tape.z.shape[0]
    G, P, nr = GH // H, nb * nu, whp.shape[2]
    scratch = np.empty((MR, nr), whp.dtype)
    q0, q1 = share(wxp.shape[0], P, tid)  # this thread's panels: packs them, projects them
    pack(Wx, H, wxp, q0, q1)
    pack(Wh, H, whp, q0, q1)
    r0, r1 = share(B, nb, tid // nu)
    p0, p1, u0, u1 = _units(H, nr, nu, tid % nu)
    group = GROUP + LINE * (tid // nu)
    x2, z2 = x.reshape(T * B, x.shape[2]), tape.z.reshape(Tz * B, GH)
    steps = Tz if Tz < T else min(T, max(1, PROJECT_ROWS // B))
    barriers = 0
    for t0 in range(0, T, steps):
        t1 = min(T, t0 + steps)
        s0 = t0 % Tz  # a ring (inference) holds exactly one chunk
        if Tz < T and t0 > 0:  # everyone is done with the ring's last chunk
            barriers += 1
            if not _team_barrier(sync, barriers, P):
                return
        product(x2[t0 * B:t1 * B], 0, (t1 - t0) * B, wxp, H, q0, q1,
                z2[s0 * B:(s0 + t1 - t0) * B], False, scratch)
        barriers += 1  # the chunk is projected (and, the first time, the weights packed)
        if not _team_barrier(sync, barriers, P):
            return
        for t in range(t0, t1):
            if nu > 1 and t > 0 and not _wait(sync, group, t * nu):
                return  # h_t is complete once every unit group has done step t-1
            _gate_products(tape.h[t], r0, r1, whp, H, G, p0, p1, zh, False, scratch)
            cell_forward(spec, tape, zh, t, r0, r1, u0, u1, lengths)
            if nu > 1:
                _atomic_add(sync, group, 1)


@njit(**JIT)
def backward(spec, tape, grad, dy, x2, h2, lengths, Wx, Wh, wxtp, whtp, dWx, dWh, db, dparams,
             dx2, tid, nb, nu, sync):
    """Thread ``tid``'s share of backpropagation through time for :func:`forward`'s tape.

    ``grad.dh``, ``grad.dc`` (...) hold the gradients on the final state and leave with
    those on the initial state; ``dy (T, B, H)`` is the gradient on the outputs (or has no
    rows). Then the weight gradients ``dWx (D, G·H)``, ``dWh (H, G·H)``, ``db (G·H,)``, the
    spec's own ``dparams`` and, unless ``dx2`` has no rows, ``dx2 (T·B, D)``. ``x2 (T·B, D)``
    and ``h2 (T·B, H)`` are the inputs and h_0..h_{T-1} as rows; ``wxtp``, ``whtp``: room for
    Wxᵀ and Whᵀ packed.
    """
    T, B, GH = grad.dz.shape[0], grad.dz.shape[1], grad.dz.shape[2]
    H = Wh.shape[0]
    P, nr = nb * nu, whtp.shape[2]
    scratch = np.empty((MR, nr), whtp.dtype)
    q0, q1 = share(whtp.shape[0] + wxtp.shape[0], P, tid)  # Whᵀ's panels, then Wxᵀ's
    pack_t(Wh, whtp, min(q0, whtp.shape[0]), min(q1, whtp.shape[0]))
    pack_t(Wx, wxtp, max(q0 - whtp.shape[0], 0), max(q1 - whtp.shape[0], 0))
    if not _team_barrier(sync, 1, P):
        return
    r0, r1 = share(B, nb, tid // nu)
    p0, p1, u0, u1 = _units(H, nr, nu, tid % nu)
    group = GROUP + LINE * (tid // nu)
    for t in range(T - 1, -2, -1):
        if t < T - 1:  # dL/dh_t += dz_{t+1}·Whᵀ: needs all of dz_{t+1}
            if nu > 1 and not _wait(sync, group, (T - 1 - t) * nu):
                return
            product(grad.dz[t + 1], r0, r1, whtp, H, p0, p1, grad.dh, True, scratch)
        if t >= 0:
            cell_backward(spec, tape, grad, dy, t, r0, r1, u0, u1, lengths)
            if nu > 1:
                _atomic_add(sync, group, 1)
    if not _team_barrier(sync, 2, P):  # dz is complete: the gradients over the whole sequence
        return
    # dW = [x, h_prev]ᵀ · dz and db = Σ dz over the T·B rows, for this thread's panels of dz's
    # columns: KC rows at a time, x and h packed into micro-panels of their transposes, dz
    # into panels, so that the product reads both in order
    dz2, TB, D = grad.dz.reshape(T * B, GH), T * B, x2.shape[1]
    PH = (H + nr - 1) // nr
    q0, q1 = share(GH // H * PH, P, tid)
    kc = min(KC, TB)
    xa, ha = np.empty(((D + MR - 1) // MR, kc, MR), x2.dtype), np.empty(((H + MR - 1) // MR, kc, MR), x2.dtype)
    zb, sums = np.empty((GH // H * PH, kc, nr), x2.dtype), np.zeros((GH // H * PH, nr), x2.dtype)
    for k0 in range(0, TB, kc):
        k1 = min(TB, k0 + kc)
        pack_rows(x2, k0, k1, xa)
        pack_rows(h2, k0, k1, ha)
        for q in range(q0, q1):
            col, width = panel_columns(q, H, nr)
            pack_panel(dz2[k0:k1], col, width, zb[q])
            for k in range(k1 - k0):
                for j in range(nr):
                    sums[q, j] += zb[q, k, j]
        part = zb[:, :k1 - k0]
        product(xa, 0, D, part, H, q0, q1, dWx, k0 > 0, scratch)
        product(ha, 0, H, part, H, q0, q1, dWh, k0 > 0, scratch)
    for q in range(q0, q1):
        col, width = panel_columns(q, H, nr)
        db[col:col + width] = sums[q, :width]
    if dparams.shape[0]:
        pu0, pu1 = share(PH, P, tid)
        cell_param_grads(spec, tape, grad, dparams, pu0 * nr, min(H, pu1 * nr))
    if dx2.shape[0]:
        m0, m1 = share(T * B, P, tid)
        product(dz2, m0, m1, wxtp, D, 0, wxtp.shape[0], dx2, False, scratch)


@njit(**JIT)
def stream_step(specs, Wxs, Whs, x, states_in, states_out):
    """One step of all L layers for the few rows of ``x (B, D)``, weights as stored (no
    packing): ``states_in`` are the cell's state arrays (h first), each ``(L, B, H)``,
    ``states_out (S, L, B, H)`` receives them. Returns 0, or 1 / 2 + k when x / state k
    holds NaN or inf."""
    for v in x.ravel():
        if not np.isfinite(v):
            return 1
    for k in range(len(states_in)):
        for v in states_in[k].ravel():
            if not np.isfinite(v):
                return 2 + k
    B, H = x.shape[0], Whs[0].shape[0]
    GH = Whs[0].shape[1]
    tape = stream_tape(specs[0], B, H, x.dtype)
    state = cell_states(tape)
    zh = np.empty((B, GH), x.dtype)
    lengths = np.ones(B, np.int64)
    for layer in range(len(Wxs)):
        below = x if layer == 0 else states_out[0, layer - 1]
        for k in range(len(state)):
            state[k][0] = states_in[k][layer]
        for r in range(B):
            vecmat(below[r], Wxs[layer], tape.z[0, r])
            vecmat(state[0][0, r], Whs[layer], zh[r])
        cell_forward(specs[layer], tape, zh, 0, 0, B, 0, H, lengths)
        for k in range(len(state)):
            states_out[k, layer] = state[k][1]
    return 0
