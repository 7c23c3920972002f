"""The time loops of the compiled kernels: the same for every cell, run by a team of threads.

Dimensions: T time, B batch, D input features, H hidden units, G gate blocks, L layers.

Thread ``tid`` of a team of nb·nu owns, for all T steps, the rows of row group ``tid // nu``
and the units (whole panels) of unit group ``tid % nu``. Unit groups of a row group meet
once per step (step t+1 needs all of h_t; backward, dz_t); work over the whole sequence is
shared out after a team barrier. Each result element is the same arithmetic whoever computes
it: the same bits for any team. A barrier is a counter on its own cache line in ``sync``:
threads add 1 and spin on an atomic load until it reaches the total, yielding the core every
``SPINS`` checks; a thread that fails sets ``ABORT`` and the others stop waiting. Each wait
of a unit group for its step that had to yield adds 1 to ``sync[YIELDED]``: a step's shares
are equal and short, so a teammate that far behind was not running (the cores are shared with
other work), which the caller reads after the call. (A team barrier may wait that long on
a larger share of the work.)
"""

from __future__ import annotations

import time

import numpy as np
from numba import njit, objmode, types
from numba.extending import intrinsic, register_jitable

from ._cells import (_carry, cell_backward, cell_forward, cell_param_grads, cell_states,
                     product_grads, recurrent_input, stream_tape)
from ._product import (JIT, KC, MC, MR, empty_lines, pack, pack_panel, pack_rows, panel_columns,
                       product, vecmat)

LINE = 8  # int64 words per cache line: each counter of ``sync`` starts its own
ABORT, TEAM, YIELDED = 0, LINE, 2 * LINE
GROUP = 3 * LINE  # sync[GROUP + LINE·g]: row group g's step counter
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
    spins, yielded = 0, False
    while _atomic_load(sync, idx) < target:
        if _atomic_load(sync, ABORT) != 0:
            return False
        spins = (spins + 1) % SPINS
        if spins == 0:
            if not yielded and idx >= GROUP:
                _atomic_add(sync, YIELDED, 1)
                yielded = True
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
def forward(spec, tape, zh, x, lengths, Wx, Wh, wxp, whp, m, Wr, wrp, tid, nb, nu, sync):
    """Thread ``tid``'s share of the forward over ``x (T, B, D)`` into ``tape`` (which holds
    the initial states); ``wxp``, ``whp``: room for Wx and Wh packed; ``zh (B, G·H)``: a
    step's h_{t-1}·Wh. A chunk of steps at a time, the team projects the chunk's x·Wx (each
    thread some panels, all rows), then each thread runs its tile's steps through it. With a
    projection (``wrp`` has panels; a team of row groups only) each step ends with
    h_t = m_t·Wr, ``m`` the cell's output (H wide; ``tape.h`` itself without one). Unit groups
    need every gate cut into its own panels; otherwise the G·H columns are one block, which
    wastes less of a last, partly filled panel."""
    T, B = x.shape[0], x.shape[1]
    H, GH, Tz = m.shape[2], tape.z.shape[2], tape.z.shape[0]
    P, nr = nb * nu, whp.shape[2]
    PH = (H + nr - 1) // nr  # panels per block
    GHx, GHh = Wx.shape[1], whp.shape[0] // PH * H  # Wx's and Wh's columns (a GRU's: 3H)
    Hx, Qx = (H, wxp.shape[0]) if nu > 1 else (GHx, (GHx + nr - 1) // nr)
    Hh, Qh = (H, whp.shape[0]) if nu > 1 else (GHh, (GHh + nr - 1) // nr)
    scratch = empty_lines((MC, nr), whp.dtype)
    q0, q1 = share(Qx, P, tid)  # this thread's panels: packs them, projects them
    pack(Wx, Hx, wxp, q0, q1)
    pack(Wh, Hh, whp, *share(Qh, P, tid))
    pack(Wr, Wr.shape[1], wrp, *share(wrp.shape[0], P, tid))
    r0, r1 = share(B, nb, tid // nu)
    p0, p1, u0, u1 = _units(H, nr, nu, tid % nu)
    group = GROUP + LINE * (tid // nu)
    x2, z2 = x.reshape(T * B, x.shape[2]), tape.z.reshape(Tz * B, GH)
    steps = Tz if Tz < T else min(T, max(1, PROJECT_ROWS // B))
    h_in = recurrent_input(tape)  # what meets Wh: h, or a cell's masked copy of it
    zo = zh[:, zh.shape[1] - GHh:]  # h_{t-1}·Wh's columns: zh's last (a GRU's blocks 1-3)
    for t0 in range(0, T, steps):
        t1 = min(T, t0 + steps)
        s0 = t0 % Tz  # a ring (inference) holds exactly one chunk
        if Tz < T and t0 > 0 and not _team_barrier(sync, P):
            return  # (each thread waits until everyone is done with the ring's last chunk)
        product(x2[t0 * B:t1 * B], 0, (t1 - t0) * B, wxp, Hx, q0, q1,
                z2[s0 * B:(s0 + t1 - t0) * B], False, scratch)
        if not _team_barrier(sync, P):  # the chunk projected (the first time, weights packed)
            return
        for t in range(t0, t1):
            if nu > 1 and t > 0 and not _wait(sync, group, t * nu):
                return  # h_t is complete once every unit group has done step t-1
            for g in range(whp.shape[0] // PH if nu > 1 else 1):  # h_{t-1}·Wh, units u0..u1
                product(h_in[t], r0, r1, whp, Hh, g * PH + p0, g * PH + p1 if nu > 1 else Qh, zo,
                        False, scratch)
            cell_forward(spec, tape, zh, t, r0, r1, u0, u1, lengths)
            if wrp.shape[0]:  # h_t = m_t·Wr; past a sequence's end h is carried
                product(m[(t + 1) % m.shape[0]], r0, r1, wrp, Wr.shape[1], 0, wrp.shape[0],
                        tape.h[t + 1], False, scratch)
                _carry((tape.h,), t, r0, r1, 0, Wr.shape[1], lengths)
            if nu > 1:
                _atomic_add(sync, group, 1)


@register_jitable
def _into_projection(dh, dy, dhs, t, r0, r1, lengths):
    """dL/dh_t of the rows active at step t (dy added) into ``dhs``, and 0 into dh, which
    then gathers dL/dh_{t-1}; a padded row's dL/dh passes on (its dhs is 0)."""
    for r in range(r0, r1):
        active = t < lengths[r]
        for u in range(dh.shape[1]):
            dhs[r, u] = 0.0 if not active else dh[r, u] + dy[t, r, u] if dy.shape[0] else dh[r, u]
            dh[r, u] = 0.0 if active else dh[r, u]


@register_jitable
def _times_rows(rows, dz2, H, q0, q1, outs, scratch):
    """``outs[i] = rows[i]ᵀ · dz2`` on this thread's panels q0..q1 of dz2 (blocks of width H):
    KC rows at a time, each of ``rows`` (read-only arrays) packed into micro-panels of its
    transpose and dz2 into panels (both read in order)."""
    nr, TB = scratch.shape[1], dz2.shape[0]
    kc = min(KC, TB)
    zb = empty_lines((q1, kc, nr), dz2.dtype)
    for k0 in range(0, TB, kc):
        k1 = min(TB, k0 + kc)
        for q in range(q0, q1):
            col, width = panel_columns(q, H, nr)
            pack_panel(dz2[k0:k1], col, width, zb[q])
        for i in range(len(rows)):
            K = rows[i].shape[1]
            a = np.empty(((K + MR - 1) // MR, k1 - k0, MR), dz2.dtype)
            pack_rows(rows[i], k0, k1, a)
            product(a, 0, K, zb[:, :k1 - k0], H, q0, q1, outs[i], k0 > 0, scratch)


@njit(**JIT)
def backward(spec, tape, grad, dy, x2, h2, lengths, Wx, Wh, wxtp, whtp, dWx, dWh, db, dparams,
             dx2, m2, Wr, wrtp, dhs, dm, dWr, tid, nb, nu, sync):
    """Thread ``tid``'s share of backpropagation through time for :func:`forward`'s tape.
    ``grad``'s carried arrays hold the gradients on the final states and leave with those on
    the initial ones; ``dy (T, B, h's width)`` may have no rows. Then ``dWx``, ``dWh``, ``db``,
    the spec's ``dparams`` and (if it has rows) ``dx2 (T·B, D)``. ``x2``, ``h2``: x and
    h_0..h_{T-1} as rows (read-only views); ``wxtp``, ``whtp``: room for Wxᵀ and Whᵀ packed.
    With a projection (``wrtp`` has panels): ``m2`` the rows m_1..m_T, ``dhs (T, B, P)`` room for dL/dh_t, and
    ``dWr``; each step first takes dL/dh_t back through Wr into ``dm`` (the LSTM's grad.dm)."""
    T, B, GH = grad.dz.shape[0], grad.dz.shape[1], grad.dz.shape[2]
    H, Hh = m2.shape[1], Wh.shape[0]  # the cell's width and h's (P with a projection)
    P, nr = nb * nu, whtp.shape[2]
    scratch = empty_lines((MC, nr), whtp.dtype)
    q0, q1 = share(whtp.shape[0] + wxtp.shape[0], P, tid)  # Whᵀ's panels, then Wxᵀ's
    pack(Wh.T, Hh, whtp, min(q0, whtp.shape[0]), min(q1, whtp.shape[0]))
    pack(Wx.T, Wx.shape[0], wxtp, max(q0 - whtp.shape[0], 0), max(q1 - whtp.shape[0], 0))
    pack(Wr.T, H, wrtp, *share(wrtp.shape[0], P, tid))
    if not _team_barrier(sync, P):
        return
    r0, r1 = share(B, nb, tid // nu)
    p0, p1, u0, u1 = _units(H, nr, nu, tid % nu)
    hp0, hp1 = _units(Hh, nr, nu, tid % nu)[:2]
    group = GROUP + LINE * (tid // nu)
    dzx, dzh, cx, ch, split = product_grads(grad)  # on x·Wx and h·Wh (see _cells)
    GX, GHh = Wx.shape[1], Wh.shape[1]
    for t in range(T - 1, -2, -1):
        if t < T - 1:  # dL/dh_t += dz_{t+1}·Whᵀ: needs all of dz_{t+1}
            if nu > 1 and not _wait(sync, group, (T - 1 - t) * nu):
                return
            product(dzh[t + 1][:, ch:ch + GHh], r0, r1, whtp, Hh, hp0, hp1, grad.dh, True,
                    scratch)
        if t >= 0 and wrtp.shape[0]:  # dL/dm_t = dL/dh_t·Wrᵀ (a team of row groups only)
            _into_projection(grad.dh, dy, dhs[t], t, r0, r1, lengths)
            product(dhs[t], r0, r1, wrtp, H, 0, wrtp.shape[0], dm, False, scratch)
            cell_backward(spec, tape, grad, dy[:0], t, r0, r1, u0, u1, lengths)
        elif t >= 0:
            cell_backward(spec, tape, grad, dy, t, r0, r1, u0, u1, lengths)
            if nu > 1:
                _atomic_add(sync, group, 1)
    if not _team_barrier(sync, P):  # dz is complete: the gradients over the whole sequence
        return
    # dWx = xᵀ·dzx and dWh = h_prevᵀ·dzh (both dz unless the cell's ``split`` makes them
    # differ), db = Σ dz over T·B rows in order, on this thread's panels
    dz2, PH = grad.dz.reshape(T * B, GH), (H + nr - 1) // nr
    dzx2 = dzx.reshape(T * B, GH)[:, cx:cx + GX]
    q0, q1 = share((GH + nr - 1) // nr, P, tid)  # panels of the G·H columns as one block
    if split:
        _times_rows((x2,), dzx2, GX, *share((GX + nr - 1) // nr, P, tid), (dWx,), scratch)
        _times_rows((h2,), dzh.reshape(T * B, GH)[:, ch:ch + GHh], GHh,
                    *share((GHh + nr - 1) // nr, P, tid), (dWh,), scratch)
    else:
        _times_rows((x2, h2), dz2, GH, q0, q1, (dWx, dWh), scratch)
    for q in range(q0, q1):
        col, width = panel_columns(q, GH, nr)
        db[col:col + width] = 0.0
        for k in range(T * B):
            for j in range(np.uint64(col), np.uint64(col + width)):
                db[j] += dz2[k, j]
    if wrtp.shape[0]:  # dWr = Σ m_tᵀ · dL/dh_t
        w0, w1 = share((Wr.shape[1] + nr - 1) // nr, P, tid)
        _times_rows((m2,), dhs.reshape(T * B, Wr.shape[1]), Wr.shape[1], w0, w1, (dWr,),
                    scratch)
    if dparams.shape[0]:
        pu0, pu1 = share(PH, P, tid)
        cell_param_grads(spec, tape, grad, dparams, pu0 * nr, min(H, pu1 * nr))
    if dx2.shape[0]:
        m0, m1 = share(T * B, P, tid)
        product(dzx2, m0, m1, wxtp, x2.shape[1], 0, wxtp.shape[0], dx2, False, scratch)


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
    tape = stream_tape(specs[0], B, H, x.dtype)
    state = cell_states(tape)
    zh = np.empty((B, tape.z.shape[2]), x.dtype)
    zo = zh.shape[1] - Whs[0].shape[1]  # h_{t-1}·Wh's first column (as in forward)
    lengths = np.ones(B, np.int64)
    for layer in range(len(Wxs)):
        below = x if layer == 0 else states_out[0, layer - 1]
        for k in range(len(state)):
            state[k][0] = states_in[k][layer]
        for r in range(B):
            vecmat(below[r], Wxs[layer], tape.z[0, r])
            vecmat(state[0][0, r], Whs[layer], zh[r, zo:])
        cell_forward(specs[layer], tape, zh, 0, 0, B, 0, H, lengths)
        for k in range(len(state)):
            states_out[k, layer] = state[k][1]
    return 0
