"""The matrix product of the compiled kernels: ``C (+)= A · W`` with W packed into panels.

Dimensions: M rows of A and C, K the summed dimension, N columns of W and C.

W (K, G·H) has G column blocks of width H (an LSTM's gates), each cut into ``PH = ceil(H /
NR)`` panels of NR columns, zero-padded past the block: ``Wp[g·PH + j, k, :] = W[k, g·H +
j·NR :][:NR]``, so units owned are whole panels of every gate. The kernel (``_tile``, LLVM IR
on generic vectors: AVX-512, AVX2, SSE or NEON) keeps an MR × NR block of C in registers.
Each element of C is one chain of multiply-adds over k in order, in chunks of ``KC``: the
same bits whoever computes it (``vecmat`` makes the same chain).
"""

from __future__ import annotations

import platform

import llvmlite.binding as llvm
import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic, register_jitable

# Shared compile options: no division checks, fused multiply-adds allowed (no other fast-math,
# so float64 stays within round-off of the reference), no GIL, machine code cached on disk.
JIT = dict(cache=True, nogil=True, error_model="numpy", boundscheck=False,
           fastmath={"contract"})


def _vector_bytes() -> int:
    """Bytes in one vector register of this machine (64 AVX-512, 32 AVX, else 16)."""
    try:
        features = llvm.get_host_cpu_features()
    except RuntimeError:  # llvmlite cannot read them here: assume the narrowest
        return 16
    return 64 if features.get("avx512f") else 32 if features.get("avx") else 16


VECTOR_BYTES = _vector_bytes()
# Registers: 32 vector registers on AVX-512 and arm64, 16 elsewhere; MR rows of two
# registers each, plus the panel row and the broadcast value, must fit.
MR = 8 if VECTOR_BYTES == 64 or platform.machine().lower() in ("arm64", "aarch64") else 4
KC = 512  # rows of a panel summed in registers before C is updated (the panel stays in L1/L2)
MC = 128  # rows of A per block: they stay in cache while every panel passes over them


def panel_width(dtype) -> int:
    """NR: columns per panel, two vector registers of ``dtype``."""
    return 2 * VECTOR_BYTES // np.dtype(dtype).itemsize


def _make_tile(mr: int, jp: int = 1):
    @intrinsic
    def tile(typingctx, a, a_rs, a_ks, b, b_ps, k, c, c_rs, accumulate, zero):
        """``C[:mr, :jp·NR] (+)= A[:mr, :k] · [P_0 … P_jp-1]`` for jp panels (k >= 1, NR). ``a``,
        ``b``, ``c``: addresses (int64) of A[0, 0], P_0[0, 0], C[0, 0]; in elements, A[r, k]
        lies at a + r·a_rs + k·a_ks, P_j[k] at b + j·b_ps + k·NR, C's row r at c + r·c_rs, its
        panel j NR columns after panel j-1. The precision follows ``zero``'s type."""
        if zero not in (types.float32, types.float64):
            return None
        sig = types.void(a, a_rs, a_ks, b, b_ps, k, c, c_rs, accumulate, zero)

        def codegen(context, builder, sig, args):
            a_, ars, aks, b_, bps, k_, c_, crs, acc = args[:9]
            single = sig.args[9] == types.float32
            ft = ir.FloatType() if single else ir.DoubleType()
            nr = 2 * VECTOR_BYTES // (4 if single else 8)
            vt = ir.VectorType(ft, nr)
            i32, i64 = ir.IntType(32), ir.IntType(64)
            fmuladd = cgutils.get_or_insert_function(
                builder.module, ir.FunctionType(vt, [vt, vt, vt]),
                f"llvm.fmuladd.v{nr}{'f32' if single else 'f64'}")
            A, P, C = (builder.inttoptr(v, ft.as_pointer()) for v in (a_, b_, c_))
            splat = ir.Constant(ir.VectorType(i32, nr), [0] * nr)
            entry, loop = builder.basic_block, builder.append_basic_block("tile.loop")
            builder.branch(loop)  # k >= 1

            builder.position_at_end(loop)  # for kk in range(k): acc[r, j] += A[r, kk] · P_j[kk]
            kk = builder.phi(i64)
            kk.add_incoming(i64(0), entry)
            acc_in = [builder.phi(vt) for _ in range(mr * jp)]
            for phi in acc_in:
                phi.add_incoming(ir.Constant(vt, None), entry)
            p_row = builder.mul(kk, i64(nr))
            p = [builder.load(builder.bitcast(builder.gep(P, [builder.add(p_row, builder.mul(
                i64(j), bps))]), vt.as_pointer()), align=4) for j in range(jp)]
            a_col = builder.mul(kk, aks)
            acc_out = []
            for r in range(mr):
                a_rk = builder.load(builder.gep(A, [builder.add(builder.mul(i64(r), ars), a_col)]))
                a_vec = builder.shuffle_vector(
                    builder.insert_element(ir.Constant(vt, ir.Undefined), a_rk, i32(0)),
                    ir.Constant(vt, ir.Undefined), splat)
                acc_out += [builder.call(fmuladd, [a_vec, p[j], acc_in[r * jp + j]])
                            for j in range(jp)]
            k_next = builder.add(kk, i64(1))
            kk.add_incoming(k_next, loop)
            for phi, v in zip(acc_in, acc_out):
                phi.add_incoming(v, loop)
            done = builder.append_basic_block("tile.done")
            builder.cbranch(builder.icmp_signed("<", k_next, k_), loop, done)

            builder.position_at_end(done)  # C[r, j] = acc[r, j], or C[r, j] + acc[r, j]
            add = builder.icmp_unsigned("!=", acc, ir.Constant(acc.type, 0))
            for i, total in enumerate(acc_out):
                at = builder.add(builder.mul(i64(i // jp), crs), i64(i % jp * nr))
                ptr = builder.bitcast(builder.gep(C, [at]), vt.as_pointer())
                old = builder.load(ptr, align=4)
                builder.store(builder.select(add, builder.fadd(old, total), total), ptr, align=4)
            return context.get_dummy_value()
        return sig, codegen
    return tile


_tile1, _tile2, _tile4, _tile8 = (_make_tile(m) for m in (1, 2, 4, 8))
_row2, _row4, _row8 = (_make_tile(1, j) for j in (2, 4, 8))  # one row, several panels
_pair2, _pair4 = (_make_tile(2, j) for j in (2, 4))  # two rows, several panels


@register_jitable
def _tiles(pa, a_rs, a_ks, a_ts, rows, pb, k, pc, c_rs, accumulate, zero, isz):
    """``_tile`` over ``rows`` rows (``isz`` bytes per element; A's next MR rows ``a_ts``
    elements on): MR at a time, then the rest as 4, 2 and 1 rows."""
    r = 0
    while r < rows:
        n = rows - r
        if n >= 8 and MR == 8:
            _tile8(pa, a_rs, a_ks, pb, 0, k, pc, c_rs, accumulate, zero)
            n = 8
        elif n >= 4:
            _tile4(pa, a_rs, a_ks, pb, 0, k, pc, c_rs, accumulate, zero)
            n = 4
        elif n >= 2:
            _tile2(pa, a_rs, a_ks, pb, 0, k, pc, c_rs, accumulate, zero)
            n = 2
        else:
            _tile1(pa, a_rs, a_ks, pb, 0, k, pc, c_rs, accumulate, zero)
            n = 1
        r += n
        pa += (a_ts if n == MR else n * a_rs) * isz
        pc += n * c_rs * isz


@register_jitable
def _row(pa, a_ks, pb, b_ps, j, k, pc, accumulate, zero):
    """One row of A times j = 1, 2, 4 or 8 panels."""
    if j == 8:
        _row8(pa, 0, a_ks, pb, b_ps, k, pc, 0, accumulate, zero)
    elif j == 4:
        _row4(pa, 0, a_ks, pb, b_ps, k, pc, 0, accumulate, zero)
    elif j == 2:
        _row2(pa, 0, a_ks, pb, b_ps, k, pc, 0, accumulate, zero)
    else:
        _tile1(pa, 0, a_ks, pb, 0, k, pc, 0, accumulate, zero)


@register_jitable
def _few(pa, a_rs, a_ks, rows, pb, b_ps, panels, k, pc, c_rs, accumulate, zero, isz):
    """``rows`` < 4 rows of A times up to MR of ``panels`` whole panels side by side: a tile of
    so few rows has too few chains of additions to hide their latency. Returns the panels
    done."""
    j = 1
    while j < (MR if rows == 1 else MR // 2) and 2 * j <= panels:
        j *= 2
    r = 0
    if rows > 1 and j > 1:  # two rows at a time (each of these tiles holds 2·j·2 registers)
        r = 2
        if j == 4:
            _pair4(pa, a_rs, a_ks, pb, b_ps, k, pc, c_rs, accumulate, zero)
        else:
            _pair2(pa, a_rs, a_ks, pb, b_ps, k, pc, c_rs, accumulate, zero)
    for i in range(r, rows):
        _row(pa + i * a_rs * isz, a_ks, pb, b_ps, j, k, pc + i * c_rs * isz, accumulate, zero)
    return j


@register_jitable
def empty_lines(shape, dtype):
    """``np.empty(shape, dtype)`` starting on a cache line (64 bytes; numba's own arrays start
    on 32), so that a vector load of a panel row never spans two lines."""
    n = 1
    for d in shape:
        n *= d
    buf = np.empty(n + 64, dtype)
    start = (-buf.ctypes.data) % 64 // buf.itemsize
    return buf[start:start + n].reshape(shape)


@register_jitable
def panel_columns(q, H, nr):
    """``(first column, width)`` of panel q of a W with gate blocks of width H."""
    PH = (H + nr - 1) // nr
    return (q // PH) * H + (q % PH) * nr, min(nr, H - (q % PH) * nr)


@register_jitable
def product(a, m0, m1, wp, H, q0, q1, c, accumulate, scratch):
    """``C[m0:m1, panels q0..q1] (+)= A[m0:m1] · W`` (+= with ``accumulate``) for W packed as
    ``wp (Q, K, NR)`` with gate blocks of width ``H``. ``a``: A (M, K) with contiguous rows, or
    its MR-row micro-panels from :func:`pack_rows` (3-D; then m0 = 0). ``c (M, G·H)``: rows
    contiguous. ``scratch (MC, NR)`` receives a panel that runs past its block."""
    K, nr = wp.shape[1], wp.shape[2]
    isz, PH = wp.itemsize, (H + nr - 1) // nr
    zero = wp.dtype.type(0.0)
    if a.ndim == 3:  # micro-panels: A[m, k] = a[m // MR, k, m % MR]
        a_rs, a_ks, a_ts = 1, MR, a.shape[1] * MR
    else:
        a_rs, a_ks = a.strides[0] // isz, 1
        a_ts = MR * a_rs
    c_rs = c.strides[0] // isz
    pa, pw = np.int64(a.ctypes.data), np.int64(wp.ctypes.data)  # addresses, in bytes
    pc, ps = np.int64(c.ctypes.data), np.int64(scratch.ctypes.data)
    for k0 in range(0, K, KC):
        kc = min(KC, K - k0)
        add = accumulate or k0 > 0
        for b0 in range(m0, m1, MC):
            n = min(m1, b0 + MC) - b0
            pa_b = pa + ((b0 // MR) * a_ts + (b0 % MR) * a_rs + k0 * a_ks) * isz
            q = q0
            while q < q1:
                col, width = panel_columns(q, H, nr)
                pp = pw + q * wp.strides[0] + k0 * nr * isz  # (wp may be a view of fewer rows)
                q += 1
                if width == nr and n < 4:  # whole panels of this gate, side by side
                    q += _few(pa_b, a_rs, a_ks, n, pp, wp.strides[0] // isz,
                              min(q1 + 1 - q, H // nr - (q - 1) % PH), kc,
                              pc + (b0 * c_rs + col) * isz, c_rs, add, zero, isz) - 1
                    continue
                if width == nr:  # the tiles write into C
                    _tiles(pa_b, a_rs, a_ks, a_ts, n, pp, kc, pc + (b0 * c_rs + col) * isz, c_rs,
                           add, zero, isz)
                    continue
                _tiles(pa_b, a_rs, a_ks, a_ts, n, pp, kc, ps, nr, False, zero, isz)
                for r in range(n):  # a panel past its block: through the scratch
                    for j in range(width):
                        if add:
                            c[b0 + r, col + j] += scratch[r, j]
                        else:
                            c[b0 + r, col + j] = scratch[r, j]


@register_jitable
def vecmat(x, W, z):
    """``z (N,) = x (K,) · W (K, N)``, W as stored (the streaming step's few rows): the same
    chains in the same chunks as :func:`product`, so the same bits; eight k per pass over z."""
    K, N = W.shape
    acc = np.empty(N, z.dtype) if K > KC else z
    for k0 in range(0, K, KC):
        k1 = min(K, k0 + KC)
        for n in range(N):
            acc[n] = 0.0
        k = k0
        while k + 8 <= k1:
            x0, x1, x2, x3, x4, x5, x6, x7 = x[k:k + 8]
            for n in range(N):
                a = (((acc[n] + x0 * W[k, n]) + x1 * W[k + 1, n]) + x2 * W[k + 2, n]) \
                    + x3 * W[k + 3, n]
                acc[n] = (((a + x4 * W[k + 4, n]) + x5 * W[k + 5, n]) + x6 * W[k + 6, n]) \
                    + x7 * W[k + 7, n]
            k += 8
        while k < k1:
            xk = x[k]
            for n in range(N):
                acc[n] += xk * W[k, n]
            k += 1
        if acc is not z:
            for n in range(N):
                z[n] = acc[n] if k0 == 0 else z[n] + acc[n]


@register_jitable
def pack_panel(W, col, width, out):
    """Columns col..col+width of ``W (K, N)`` into ``out (K, NR)``, zero-padded. (Unsigned
    column indices: numba's wraparound test for negative ones would keep the copy scalar.)"""
    c0, w = np.uint64(col), np.uint64(width)
    for k in range(W.shape[0]):
        row = W[k]
        for j in range(np.uint64(0), w):
            out[k, j] = row[c0 + j]
        for j in range(w, np.uint64(out.shape[1])):
            out[k, j] = 0.0


@register_jitable
def pack(W, H, wp, q0, q1):
    """Panels q0..q1 of ``W (K, G·H)`` into ``wp (Q, K, NR)`` (see the module docstring)."""
    for q in range(q0, q1):
        col, width = panel_columns(q, H, wp.shape[2])
        pack_panel(W, col, width, wp[q])


@register_jitable
def pack_rows(X, k0, k1, out):
    """Rows k0..k1 of ``X (K, M)`` as the micro-panels of Xᵀ's rows that :func:`product`
    reads: ``out[i, k, r] = X[k0 + k, i·MR + r]``, zero past M."""
    for i in range(out.shape[0]):
        pack_panel(X[k0:k1], i * MR, min(MR, X.shape[1] - i * MR), out[i])
