"""The time loops of the compiled kernels: the same for every cell, run by a team of threads.

Dimensions: T time, B batch, D input features, H hidden units, G gate blocks, L layers.

Thread ``tid`` of a team of nb·nu owns, for all T steps, the rows of row group ``tid // nu``
and the units (whole panels) of unit group ``tid % nu``. Unit groups of a row group meet
once per step (step t+1 needs all of h_t; backward, dz_t); work over the whole sequence is
shared out after a team barrier. Each result element is the same arithmetic whoever computes
it: the same bits for any team. A barrier is a counter on its own cache line in ``sync``:
threads add 1 and spin on an atomic load until it reaches the total, yielding the core every
``SPINS`` checks; a thread that fails sets ``ABORT`` and the others stop waiting.
"""

from __future__ import annotations

import time

import numpy as np
from numba import njit, objmode, types
from numba.extending import intrinsic, register_jitable

from ._cells import (cell_backward, cell_forward, cell_param_grads, cell_states,
                     recurrent_input, stream_tape)
from ._product import JIT, KC, MC, MR, pack, pack_panel, pack_rows, panel_columns, product, vecmat

LINE = 8  # int64 words per cache line: each counter of ``sync`` starts its own
ABORT, TEAM, GROUP = 0, LINE, 2 * LINE  # sync[GROUP + LINE·g]: row group g's step counter
SPINS = 20_000  # atomic checks (tens of microseconds) before a waiting thread yields
PROJECT_ROWS = 256  # rows of x·Wx projected at once, a chunk of steps ahead of the recurrence


def sync_words(nb: int) -> int:
    """Length of the ``sync`` array of a team with ``nb`` row groups."""
    return GROUP + LINE * nb


def _slot(context, builder, sig, args):
    """The address of ``arr[idx]`` (an intrinsic's first two arguments, arr int64)."""
    return builder.gep(context.make_array(sig.args[0])(context, builder, args[0]).data, [args[1]])


@intrinsic
def _atomic_add(typingctx, arr, idx, val):
    """``arr[idx] += val`` as one atomic operation (sequentially consistent): the old value."""
    def codegen(context, builder, sig, args):
        value = context.cast(builder, args[2], sig.args[2], types.int64)
        return builder.atomic_rmw("add", _slot(context, builder, sig, args), value, "seq_cst")
    return types.int64(arr, types.intp, val), codegen


@intrinsic
def _atomic_load(typingctx, arr, idx):
    """``arr[idx]`` read atomically, acquiring (what was written before an atomic add is seen)."""
    def codegen(context, builder, sig, args):
        return builder.load_atomic(_slot(context, builder, sig, args), "acquire", 8)
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
        spins = (spins + 1) % SPINS
        if spins == 0:
            _yield()
    return True


@register_jitable
def _team_barrier(sync, P):
    """Waits for all P threads of the team; False if aborted. (A thread adds to the counter at
    its n-th barrier only after all P added at the one before: the counter is in [(n-1)P, nP).)"""
    return _wait(sync, TEAM, (_atomic_add(sync, TEAM, 1) // P + 1) * P)


@register_jitable
def share(n, parts, k):
    """Part ``k`` of ``range(n)`` cut into ``parts`` nearly equal ranges: ``(start, stop)``."""
    return k * n // parts, (k + 1) * n // parts


@register_jitable
def _units(H, nr, nu, j):
    """Panels ``(p0, p1)`` and hidden units ``(u0, u1)`` of unit group j."""
    p0, p1 = share((H + nr - 1) // nr, nu, j)
    return p0, p1, p0 * nr, min(H, p1 * nr)


@njit(**JIT)
def forward(spec, tape, zh, x, lengths, Wx, Wh, wxp, whp, tid, nb, nu, sync):
    """Thread ``tid``'s share of the forward over ``x (T, B, D)`` into ``tape`` (which holds
    the initial states); ``wxp``, ``whp``: room for Wx and Wh packed; ``zh (B, G·H)``: a
    step's h_{t-1}·Wh. A chunk of steps at a time, the team projects the chunk's x·Wx (each
    thread some panels, all rows), then each thread runs its tile's steps through it."""
    T, B = x.shape[0], x.shape[1]
    H, GH, Tz = tape.h.shape[2], tape.z.shape[2], tape.z.shape[0]
    G, P, nr = GH // H, nb * nu, whp.shape[2]
    PH = whp.shape[0] // G
    scratch = np.empty((MC, nr), whp.dtype)
    q0, q1 = share(wxp.shape[0], P, tid)  # this thread's panels: packs them, projects them
    pack(Wx, H, wxp, q0, q1)
    pack(Wh, H, whp, q0, q1)
    r0, r1 = share(B, nb, tid // nu)
    p0, p1, u0, u1 = _units(H, nr, nu, tid % nu)
    group = GROUP + LINE * (tid // nu)
    x2, z2 = x.reshape(T * B, x.shape[2]), tape.z.reshape(Tz * B, GH)
    steps = Tz if Tz < T else min(T, max(1, PROJECT_ROWS // B))
    h_in = recurrent_input(tape)  # what meets Wh: h, or a cell's masked copy of it
    for t0 in range(0, T, steps):
        t1 = min(T, t0 + steps)
        s0 = t0 % Tz  # a ring (inference) holds exactly one chunk
        if Tz < T and t0 > 0 and not _team_barrier(sync, P):
            return  # (each thread waits until everyone is done with the ring's last chunk)
        product(x2[t0 * B:t1 * B], 0, (t1 - t0) * B, wxp, H, q0, q1,
                z2[s0 * B:(s0 + t1 - t0) * B], False, scratch)
        if not _team_barrier(sync, P):  # the chunk projected (the first time, weights packed)
            return
        for t in range(t0, t1):
            if nu > 1 and t > 0 and not _wait(sync, group, t * nu):
                return  # h_t is complete once every unit group has done step t-1
            for g in range(G):  # h_{t-1}·Wh on the columns of units u0..u1 of every gate
                product(h_in[t], r0, r1, whp, H, g * PH + p0, g * PH + p1, zh, False, scratch)
            cell_forward(spec, tape, zh, t, r0, r1, u0, u1, lengths)
            if nu > 1:
                _atomic_add(sync, group, 1)


@njit(**JIT)
def backward(spec, tape, grad, dy, x2, h2, lengths, Wx, Wh, wxtp, whtp, dWx, dWh, db, dparams,
             dx2, tid, nb, nu, sync):
    """Thread ``tid``'s share of backpropagation through time for :func:`forward`'s tape.
    ``grad``'s carried arrays hold the gradients on the final states and leave with those on
    the initial ones; ``dy (T, B, H)`` may have no rows. Then ``dWx``, ``dWh``, ``db``, the
    spec's ``dparams`` and (if it has rows) ``dx2 (T·B, D)``. ``x2``, ``h2``: x and
    h_0..h_{T-1} as rows; ``wxtp``, ``whtp``: room for Wxᵀ and Whᵀ packed."""
    T, B, GH = grad.dz.shape[0], grad.dz.shape[1], grad.dz.shape[2]
    H = Wh.shape[0]
    P, nr = nb * nu, whtp.shape[2]
    scratch = np.empty((MC, nr), whtp.dtype)
    q0, q1 = share(whtp.shape[0] + wxtp.shape[0], P, tid)  # Whᵀ's panels, then Wxᵀ's
    pack(Wh.T, H, whtp, min(q0, whtp.shape[0]), min(q1, whtp.shape[0]))
    pack(Wx.T, Wx.shape[0], wxtp, max(q0 - whtp.shape[0], 0), max(q1 - whtp.shape[0], 0))
    if not _team_barrier(sync, P):
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
    if not _team_barrier(sync, P):  # dz is complete: the gradients over the whole sequence
        return
    # dW = [x, h_prev]ᵀ · dz, db = Σ dz over T·B rows, on this thread's panels of dz: KC rows
    # at a time, xᵀ and hᵀ packed into micro-panels and dz into panels (both read in order)
    dz2, TB, D = grad.dz.reshape(T * B, GH), T * B, x2.shape[1]
    PH = (H + nr - 1) // nr
    q0, q1 = share(GH // H * PH, P, tid)
    kc = min(KC, TB)
    xa = np.empty(((D + MR - 1) // MR, kc, MR), x2.dtype)  # x and h rows k0..k1, transposed
    ha = np.empty(((H + MR - 1) // MR, kc, MR), x2.dtype)
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
    """One step of all L layers for the few rows of ``x (B, D)``, weights as stored: from
    ``states_in`` (each (L, B, H), h first) into ``states_out (S, L, B, H)``. Returns 0, or
    1 / 2 + k when x / state k holds NaN or inf."""
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
