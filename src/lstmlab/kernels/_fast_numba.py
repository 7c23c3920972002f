"""The compiled code of the fast kernels, by numba (imported on first use).

Dimensions: T time, B batch, D input features, H hidden units, L layers. Three kinds of
function: per-step kernels (the elementwise work of ONE time step over the batch, called
from a Python time loop between BLAS calls), whole-sequence loops (all T steps in one call,
calling NumPy's OpenBLAS ``gemm`` themselves through an address from ``fast.py``; the LSTM's
also in a version run by two threads at once, each on half of the hidden units), and the
streaming steps (one step of all L layers for a few rows, matrix products included). The
equations are the reference kernels' (``lstm.py``, ``rnn.py``); only the loop structure
differs, and the math of one row of one LSTM step is written once
(``_lstm_row_forward`` / ``_lstm_row_backward``) and shared by all three.

Compiled with ``error_model="numpy"`` (no Python-style division checks, so loops vectorise),
``fastmath`` limited to ``contract`` (a*b + c may be one fused multiply-add; no reassociation,
no approximate functions: the float64 path must agree with PyTorch to 1e-10, and does to
~1e-15), and ``cache=True`` (the machine code is kept on disk next to this file). Each function is compiled
for two signatures only, float32 and float64 with C-contiguous arrays.

tanh is written out here because numba's ``math.tanh`` is a scalar libm call per element:

* float64: ``tanh|x| = -expm1(-2|x|) / (2 + expm1(-2|x|))`` with ``expm1`` by Cody–Waite range
  reduction ``2|x| = k·ln2 + r``, a degree-13 Taylor polynomial on ``|r| <= ln2/2`` and ``2^-k``
  built from the exponent bits: within 3 ulp of the correctly rounded tanh.
* float32: the rational minimax approximation used by Eigen (clamped to ±7.9053, where
  tanh rounds to ±1), within a few ulp.

Both compile to branch-free SIMD code. The logistic sigmoid is ``σ(x) = ½·tanh(x/2) + ½``
(exact identity; the halving is exact in binary floating point).
"""

from __future__ import annotations

import platform

import numpy as np
from llvmlite import ir
from numba import carray, njit, types
from numba.core import cgutils
from numba.extending import intrinsic, overload, register_jitable

from ._common import (STREAM_BARRIER, STREAM_CLAIMED, STREAM_CTL_WORDS, STREAM_MAILBOX,
                      STREAM_OFF, STREAM_POSTED, STREAM_READY, STREAM_STATE, STREAM_STOP)

_JIT = dict(cache=True, error_model="numpy", nogil=True, boundscheck=False)
# ... and with fused multiply-add allowed (LLVM's ``contract`` flag: a*b + c may become one
# FMA, rounded once). No reassociation, no approximations: results stay within an ulp or so
# of the unfused code, and the float64 tanh polynomial runs ~1.5x faster.
_JIT_FMA = dict(_JIT, fastmath={"contract"})


# -- tanh ------------------------------------------------------------------------------
@intrinsic
def _as_f64(typingctx, bits):
    """Reinterpret an int64 as the float64 with the same bits."""
    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], ir.DoubleType())
    return types.float64(types.int64), codegen


@intrinsic
def _as_i64(typingctx, x):
    """Reinterpret a float64 as the int64 with the same bits."""
    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], ir.IntType(64))
    return types.int64(types.float64), codegen


_LOG2E = 1.4426950408889634
_LN2_HI = 6.93147180369123816490e-01  # ln 2 split so that k·_LN2_HI is exact (fdlibm)
_LN2_LO = 1.90821492927058770002e-10
_ROUND = 6755399441055744.0  # 1.5·2^52: adding it rounds to an integer held in the low bits
_ROUND_BITS = 0x4338000000000000


@register_jitable
def _tanh64(v):
    y = 2.0 * min(abs(v), 20.0)  # tanh(20) is 1.0 in float64
    kr = y * _LOG2E + _ROUND
    k = kr - _ROUND  # nearest integer to y / ln2, 0 <= k <= 58
    r = (k * _LN2_HI - y) + k * _LN2_LO  # -y = -k·ln2 + r, |r| <= ln2/2
    p = 1.0 / 6227020800.0  # exp(r) - 1 = r + r²·(1/2! + r/3! + ... + r^11/13!)
    p = p * r + 1.0 / 479001600.0
    p = p * r + 1.0 / 39916800.0
    p = p * r + 1.0 / 3628800.0
    p = p * r + 1.0 / 362880.0
    p = p * r + 1.0 / 40320.0
    p = p * r + 1.0 / 5040.0
    p = p * r + 1.0 / 720.0
    p = p * r + 1.0 / 120.0
    p = p * r + 1.0 / 24.0
    p = p * r + 1.0 / 6.0
    p = p * r + 0.5
    em1 = r + r * r * p
    s = _as_f64((1023 - (_as_i64(kr) - _ROUND_BITS)) << 52)  # 2^-k
    e = s * em1 + (s - 1.0)  # expm1(-y) = 2^-k·exp(r) - 1
    t = -e / (2.0 + e)
    return t if v >= 0.0 else -t


_F32 = np.float32
_CLAMP32 = _F32(7.90531110763549805)
_P32 = tuple(_F32(c) for c in (-2.76076847742355e-16, 2.00018790482477e-13, -8.60467152213735e-11,
                               5.12229709037114e-08, 1.48572235717979e-05, 6.37261928875436e-04,
                               4.89352455891786e-03))
_Q32 = tuple(_F32(c) for c in (1.19825839466702e-06, 1.18534705686654e-04, 2.26843463243900e-03,
                               4.89352518554385e-03))


@register_jitable
def _tanh32(v):
    x = min(max(v, -_CLAMP32), _CLAMP32)
    x2 = x * x
    p = _P32[0]
    p = p * x2 + _P32[1]
    p = p * x2 + _P32[2]
    p = p * x2 + _P32[3]
    p = p * x2 + _P32[4]
    p = p * x2 + _P32[5]
    p = p * x2 + _P32[6]
    q = _Q32[0]
    q = q * x2 + _Q32[1]
    q = q * x2 + _Q32[2]
    q = q * x2 + _Q32[3]
    return x * p / q


def tanh(x):  # pragma: no cover - replaced inside compiled code by the overload below
    raise NotImplementedError("tanh is only callable from numba-compiled code")


@overload(tanh, jit_options=dict(error_model="numpy"))
def _tanh_overload(x):
    if x == types.float32:
        return lambda x: _tanh32(x)
    if x == types.float64:
        return lambda x: _tanh64(x)
    return None


# -- LSTM ------------------------------------------------------------------------------
# Gate blocks f, i, o, C̃ as in lstm.py: block k of a (B, 4H) row is [k*H:(k+1)*H].
#
# The math of one row of one step is in two helpers (_lstm_row_forward/_backward), used by
# the per-step kernels (called from Python between BLAS calls), the whole-sequence loops
# (which call BLAS themselves) and the streaming step. Each helper is a few short loops rather
# than one, each running from 0 over slices taken before it (``gn[3*H:]``), never over an
# offset range such as ``range(3*H, 4*H)``: LLVM vectorises a loop only when it can check at
# run time that the arrays it writes do not overlap the ones it reads (it gives up beyond 8
# such checks), and the offset form defeated that for the C̃ loop, which then ran ~5x slower
# than the others. Reading and writing the gates in place is what lets the gate loops
# vectorise at all.
@register_jitable
def _lstm_row_forward(gn, b, cp, cn, tcn, hn):
    """One row of one step. ``gn (4H,)`` holds x_t·Wx + h_{t-1}·Wh on entry and the activated
    gates (f, i, o, C̃) on exit; writes C_t, tanh(C_t), h_t into ``cn``, ``tcn``, ``hn (H,)``."""
    H = cn.shape[0]
    half = cn.dtype.type(0.5)
    g3, b3 = gn[:3 * H], b[:3 * H]
    for j in range(3 * H):  # f_t, i_t, o_t = σ(W·[h_{t-1}, x_t] + b)
        g3[j] = half * tanh(half * (g3[j] + b3[j])) + half
    gg, bg = gn[3 * H:], b[3 * H:]
    for j in range(H):  # C̃_t = tanh(W_C·[h_{t-1}, x_t] + b_C)
        gg[j] = tanh(gg[j] + bg[j])
    _lstm_cell(gn[:H], gn[H:2 * H], gn[2 * H:3 * H], gg, cp, cn, tcn, hn)


@register_jitable
def _lstm_cell(f, i, o, gg, cp, cn, tcn, hn):
    """C_t, tanh(C_t), h_t of one row from its activated gates (all ``(n,)`` slices)."""
    for j in range(cn.shape[0]):  # C_t = f_t * C_{t-1} + i_t * C̃_t
        cn[j] = f[j] * cp[j] + i[j] * gg[j]
    for j in range(cn.shape[0]):  # h_t = o_t * tanh(C_t)
        tcn[j] = tanh(cn[j])
        hn[j] = o[j] * tcn[j]


@register_jitable
def _lstm_row_backward(dhn, dcn, gn, tcn, cp, dzn):
    """BPTT through one row of one step: ``dhn`` = dL/dh_t, ``dcn`` = dL/dC_t from later steps
    (becomes dL/dC_{t-1}); ``gn``, ``tcn``, ``cp`` the forward's gates, tanh(C_t), C_{t-1};
    writes ``dzn (4H,)``, the gradient on the four pre-activations."""
    H = dcn.shape[0]
    _lstm_units_backward(dhn, dcn, gn[:H], gn[H:2 * H], gn[2 * H:3 * H], gn[3 * H:], tcn, cp,
                         dzn[:H], dzn[H:2 * H], dzn[2 * H:3 * H], dzn[3 * H:])


@register_jitable
def _lstm_units_backward(dhn, dcn, fg, ig, og, gg, tcn, cp, dzf, dzi, dzo, dzg):
    """:func:`_lstm_row_backward` for some of a row's hidden units, each gate's slice apart."""
    one = dcn.dtype.type(1.0)
    for j in range(dcn.shape[0]):  # backprop h_t = o_t * tanh(C_t), and o_t = σ(...)
        o, tc = og[j], tcn[j]
        dzo[j] = dhn[j] * tc * (o * (one - o))
        dcn[j] += dhn[j] * o * (one - tc * tc)  # dL/dC_t, all paths
    for j in range(dcn.shape[0]):  # backprop C_t = f_t * C_{t-1} + i_t * C̃_t, σ' = σ(1-σ), tanh' = 1-tanh²
        f, i, g, dct = fg[j], ig[j], gg[j], dcn[j]
        dzf[j] = dct * cp[j] * (f * (one - f))
        dzi[j] = dct * g * (i * (one - i))
        dzg[j] = dct * i * (one - g * g)
        dcn[j] = dct * f  # dL/dC_{t-1}


@register_jitable
def _dh_total(dhn, dhTn, dyn, carried):
    """dL/dh_t into ``dhn``: what came back through step t+1 (``dhn``) or, when step t+1 is
    padding or past the end, the final-state gradient ``dhTn``; plus the output's ``dyn``."""
    if carried:
        for j in range(dhn.shape[0]):
            dhn[j] += dyn[j]
    else:
        for j in range(dhn.shape[0]):
            dhn[j] = dhTn[j] + dyn[j]


@njit(**_JIT_FMA)
def lstm_step_forward(gates, rec, b, h_prev, c_prev, h, c, tanh_c, lengths, t):
    """One step. On entry ``gates (B, 4H)`` holds x_t·Wx; ``rec (B, 4H)`` = h_{t-1}·Wh, ``b (4H,)``.

    On exit ``gates`` holds the activated gates (f, i, o, C̃), and C_t, tanh(C_t), h_t are in
    ``c``, ``tanh_c``, ``h (B, H)``. Row ``n`` with ``t >= lengths[n]`` is padding: it carries
    ``h_prev``, ``c_prev`` unchanged, and its gates and tanh(C) are set to 0 (finite, so that
    the reference backward, which masks by multiplying, can take this cache too).
    """
    for n in range(h.shape[0]):
        if t >= lengths[n]:
            h[n, :] = h_prev[n, :]
            c[n, :] = c_prev[n, :]
            gates[n, :] = 0.0
            tanh_c[n, :] = 0.0
            continue
        gn, recn = gates[n], rec[n]
        for j in range(gn.shape[0]):
            gn[j] += recn[j]
        _lstm_row_forward(gn, b, c_prev[n], c[n], tanh_c[n], h[n])


@njit(**_JIT_FMA)
def lstm_step_backward(dh, dhT, dy, dc, gates, tanh_c, c_prev, dz, lengths, t):
    """One step of BPTT; undoes :func:`lstm_step_forward` line by line.

    On entry ``dh (B, H)`` = dz_{t+1}·Whᵀ, the gradient reaching h_t through step t+1; rows
    where step t+1 is padding take ``dhT`` instead (carried unchanged through the padding).
    ``dy (B, H)`` is the output gradient of step t (``dh`` is overwritten with the sum).
    ``dc (B, H)`` holds dL/dC_t on entry and dL/dC_{t-1} on exit (padding rows untouched).
    Writes ``dz (B, 4H)``, the gradient on the four pre-activations (0 on padding rows).
    """
    for n in range(dc.shape[0]):
        if t >= lengths[n]:
            dz[n, :] = 0.0
            continue
        _dh_total(dh[n], dhT[n], dy[n], t + 1 < lengths[n])
        _lstm_row_backward(dh[n], dc[n], gates[n], tanh_c[n], c_prev[n], dz[n])


# -- whole sequences, BLAS called from compiled code -----------------------------------------
# Called from Python once per sequence (per thread), these loops run every step without
# returning to the interpreter: no ~3 µs of Python per step, and no global interpreter lock
# to hand back and forth, so two threads, each on half of the batch, really run in parallel.
# BLAS is NumPy's own OpenBLAS, reached through the address of its cblas_?gemm (ILP64),
# which ``fast.py`` looks up and passes in as an integer.
_ROW_MAJOR, _NO_TRANS, _TRANS = 101, 111, 112
_FEW_ROWS = 4  # up to this many rows the recurrent product is done here, not by BLAS


@intrinsic
def _address(typingctx, arr):
    """The address of an array's first element, as an int64."""
    if not isinstance(arr, types.Array):
        return None

    def codegen(context, builder, sig, args):
        ary = context.make_array(sig.args[0])(context, builder, value=args[0])
        return builder.ptrtoint(ary.data, ir.IntType(64))
    return types.int64(arr), codegen


@intrinsic
def _gemm(typingctx, fn, trans, m, n, k, a, lda, b, ldb, beta, c, ldc):
    """``C = op(A)·op(B) + beta·C`` through the ILP64 ``cblas_?gemm`` at address ``fn``,
    row-major: op(A) (m, k) = A at ``a`` or, with bit 2 of ``trans`` set, Aᵀ of a stored (k, m)
    A; op(B) (k, n) = B at ``b`` or, with bit 1 set, Bᵀ of a stored (n, k) B; C (m, n) at
    ``c``; leading dimensions lda, ldb, ldc in elements. The precision (sgemm or dgemm)
    follows the type of ``beta``."""
    if beta not in (types.float32, types.float64):
        return None
    ints = (fn, trans, m, n, k, a, lda, b, ldb, c, ldc)
    if not all(isinstance(v, (types.Integer, types.Boolean)) for v in ints):
        return None
    sig = types.void(fn, trans, m, n, k, a, lda, b, ldb, beta, c, ldc)

    def codegen(context, builder, sig, args):
        i32, i64 = ir.IntType(32), ir.IntType(64)
        ft = ir.FloatType() if sig.args[9] == types.float32 else ir.DoubleType()
        vp = ir.IntType(8).as_pointer()
        fnty = ir.FunctionType(ir.VoidType(), [i32, i32, i32, i64, i64, i64, ft, vp, i64, vp,
                                               i64, ft, vp, i64])
        as64 = [context.cast(builder, v, t, types.int64) for v, t in zip(args, sig.args)]
        fptr = builder.inttoptr(as64[0], fnty.as_pointer())
        def flag(bit):
            on = builder.icmp_signed("!=", builder.and_(as64[1], i64(bit)), i64(0))
            return builder.select(on, i32(_TRANS), i32(_NO_TRANS))
        ptr = lambda v: builder.inttoptr(v, vp)  # noqa: E731
        builder.call(fptr, [i32(_ROW_MAJOR), flag(2), flag(1), as64[2], as64[3], as64[4],
                            ft(1.0), ptr(as64[5]), as64[6], ptr(as64[7]), as64[8], args[9],
                            ptr(as64[10]), as64[11]])
        return context.get_dummy_value()
    return sig, codegen


# -- the recurrent product with the weights packed once per sequence ---------------------
# BLAS packs its operands into cache-friendly panels on every call: for the recurrent product
# of one step, (B, H)·(H, 4H) with B of 16 or 64 rows, that is copying all of Wh (4 MiB at
# H = 512, float32) to multiply it by a few rows. Here Wh is packed ONCE per sequence, into
# panels of NR columns stored row after row — ``Wp[p, k, :] = W[k, p·NR:(p+1)·NR]``, 64 bytes
# per row of a panel (NR = 16 float32, 8 float64) — and each step runs a register-tiled
# kernel over the panels, on the calling thread. The kernel is written in LLVM IR (numba has
# no SIMD types): for a tile of MR ≤ 6 rows it keeps the MR×NR block of the result in 2·MR
# vector registers and, for every k, loads the panel's row k (two vectors), broadcasts
# A[r, k] and does 2·MR fused multiply-adds. Summation over k runs in order, one rounding per
# step. On one core it beats single-threaded BLAS for 8 to 32 rows (docs/speed.md), and
# ``fast.py`` uses it there when the product would run on one thread anyway.
_PANEL_BYTES = 64  # one row of a packed panel: two AVX vectors
_TILE_ROWS = 6  # rows of the result held in registers at once (12 vector accumulators)


def _make_tile(mr: int):
    @intrinsic
    def tile(typingctx, a, lda, wp, k, c, ldc, accumulate, zero):
        """``C[:mr, :NR] (+)= A[:mr, :k] · P`` for one panel ``P (k, NR)``; ``a``, ``wp``, ``c``
        addresses (int64) of row-major A, the panel and C; ``lda``, ``ldc`` in elements. The
        precision follows ``zero`` (float32: NR = 16, float64: NR = 8)."""
        if zero not in (types.float32, types.float64):
            return None
        sig = types.void(a, lda, wp, k, c, ldc, accumulate, zero)

        def codegen(context, builder, sig, args):
            a_, lda_, wp_, k_, c_, ldc_, acc_ = args[:7]
            f32 = sig.args[7] == types.float32
            ft = ir.FloatType() if f32 else ir.DoubleType()
            lanes = 8 if f32 else 4
            vt = ir.VectorType(ft, lanes)
            i32, i64 = ir.IntType(32), ir.IntType(64)
            fma = cgutils.get_or_insert_function(
                builder.module, ir.FunctionType(vt, [vt, vt, vt]),
                f"llvm.fma.v{lanes}{'f32' if f32 else 'f64'}")
            A, P, C = (builder.inttoptr(v, ft.as_pointer()) for v in (a_, wp_, c_))
            vzero = ir.Constant(vt, None)
            splat = ir.Constant(ir.VectorType(i32, lanes), [0] * lanes)

            def vload(ptr, off):
                return builder.load(builder.bitcast(builder.gep(ptr, [off]), vt.as_pointer()),
                                    align=4)

            entry = builder.basic_block
            loop = builder.append_basic_block("tile.loop")
            done = builder.append_basic_block("tile.done")
            builder.cbranch(builder.icmp_signed(">", k_, ir.Constant(i64, 0)), loop, done)
            builder.position_at_end(loop)
            kk = builder.phi(i64)
            kk.add_incoming(ir.Constant(i64, 0), entry)
            accs = [builder.phi(vt) for _ in range(2 * mr)]
            for ph in accs:
                ph.add_incoming(vzero, entry)
            row = builder.mul(kk, ir.Constant(i64, 2 * lanes))
            p0 = vload(P, row)
            p1 = vload(P, builder.add(row, ir.Constant(i64, lanes)))
            new = []
            for r in range(mr):
                av = builder.load(builder.gep(A, [builder.add(builder.mul(ir.Constant(i64, r), lda_), kk)]))
                bv = builder.shuffle_vector(
                    builder.insert_element(ir.Constant(vt, ir.Undefined), av, ir.Constant(i32, 0)),
                    ir.Constant(vt, ir.Undefined), splat)
                new += [builder.call(fma, [bv, p0, accs[2 * r]]),
                        builder.call(fma, [bv, p1, accs[2 * r + 1]])]
            k1 = builder.add(kk, ir.Constant(i64, 1))
            kk.add_incoming(k1, loop)
            for ph, v in zip(accs, new):
                ph.add_incoming(v, loop)
            builder.cbranch(builder.icmp_signed("<", k1, k_), loop, done)
            builder.position_at_end(done)
            results = [builder.phi(vt) for _ in range(2 * mr)]  # phis first in the block
            for res, v in zip(results, new):
                res.add_incoming(vzero, entry)
                res.add_incoming(v, loop)
            flag = builder.icmp_unsigned("!=", acc_, ir.Constant(acc_.type, 0))
            for r in range(mr):
                for half in range(2):
                    res = results[2 * r + half]
                    off = builder.add(builder.mul(ir.Constant(i64, r), ldc_),
                                      ir.Constant(i64, half * lanes))
                    ptr = builder.bitcast(builder.gep(C, [off]), vt.as_pointer())
                    old = builder.load(ptr, align=4)
                    builder.store(builder.select(flag, builder.fadd(old, res), res), ptr, align=4)
            return context.get_dummy_value()
        return sig, codegen
    return tile


_tile1, _tile2, _tile3, _tile4, _tile5, _tile6 = (_make_tile(m) for m in range(1, 7))


@register_jitable
def _packed_panels(pa, lda, rows, pw, K, nr, pc, ldc, p0, p1, accumulate, zero):
    """Panels p0..p1-1 of ``C (rows, ·) (+)= A (rows, K) · W`` with W packed at ``pw``."""
    isz = 4 if nr == 16 else 8
    for p in range(p0, p1):
        pp, cp = pw + p * K * nr * isz, pc + p * nr * isz
        r = 0
        while r + _TILE_ROWS <= rows:
            _tile6(pa + r * lda * isz, lda, pp, K, cp + r * ldc * isz, ldc, accumulate, zero)
            r += _TILE_ROWS
        n, ar, cr = rows - r, pa + r * lda * isz, cp + r * ldc * isz
        if n == 1:
            _tile1(ar, lda, pp, K, cr, ldc, accumulate, zero)
        elif n == 2:
            _tile2(ar, lda, pp, K, cr, ldc, accumulate, zero)
        elif n == 3:
            _tile3(ar, lda, pp, K, cr, ldc, accumulate, zero)
        elif n == 4:
            _tile4(ar, lda, pp, K, cr, ldc, accumulate, zero)
        elif n == 5:
            _tile5(ar, lda, pp, K, cr, ldc, accumulate, zero)


@njit(**_JIT_FMA)
def packed_product(a, wp, c, accumulate):
    """``c (M, N) (+)= a (M, K) · W`` with W packed as ``wp (N/NR, K, NR)``, all C-contiguous
    (what the time loops do per step, callable alone for tests and benchmarks)."""
    M, K = a.shape
    _packed_panels(_address(a), K, M, _address(wp), K, wp.shape[2], _address(c), c.shape[1], 0,
                   wp.shape[0], accumulate, c.dtype.type(0.0))


@register_jitable
def _units_product(gemm, a, lda, rows, W, Wp, c, ldc, accumulate):
    """``C (rows, ·) (+)= A (rows, K) · W`` for addresses ``a``, ``c`` (leading dimensions lda,
    ldc): by the packed kernel when ``Wp`` holds W packed (``W`` is then unused), else by
    BLAS."""
    if Wp.shape[0] > 0:  # (N/NR, K, NR)
        _packed_panels(a, lda, rows, _address(Wp), Wp.shape[1], Wp.shape[2], c, ldc, 0,
                       Wp.shape[0], accumulate, Wp.dtype.type(0.0))
    else:
        K, N = W.shape
        _gemm(gemm, 0, rows, N, K, a, lda, _address(W), N,
              W.dtype.type(1.0 if accumulate else 0.0), c, ldc)


@register_jitable
def _times_w(gemm, src, t, W, Wp, dst, slot, r0, r1, accumulate):
    """``dst[slot, r0:r1] (+)= src[t, r0:r1] · W``: the recurrent product of one step for rows
    r0:r1. ``src (., B, K)``, ``dst (., B, N)``, ``W (K, N)``, all C-contiguous. A few rows are
    done here (vector–matrix products); more by the packed kernel when ``Wp`` holds W packed
    (``Wp (N/NR, K, NR)``; an empty ``Wp`` means no), else through BLAS (``gemm``, see
    :func:`_gemm`)."""
    B, K = src.shape[1], src.shape[2]
    N = W.shape[1]
    rows = r1 - r0
    isz = src.itemsize
    if rows <= _FEW_ROWS:
        for n in range(r0, r1):
            if not accumulate:
                dst[slot, n, :] = 0.0
            _vecmat_add(src[t, n], W, dst[slot, n])
    else:
        _units_product(gemm, _address(src) + (t * B + r0) * K * isz, K, rows, W, Wp,
                       _address(dst) + (slot * B + r0) * N * isz, N, accumulate)


@njit(**_JIT_FMA)
def lstm_forward_loop(gemm, px, D, pwx, Wh, Whp, b, gates, h, c, tanh_c, lengths, r0, r1, cache):
    """Steps 0..T-1 of rows ``r0:r1`` of the batch; ``gemm`` the address of cblas_?gemm.

    Read through BLAS only, and so passed as addresses of C-contiguous arrays: ``px`` of
    ``x (T, B, D)``, ``pwx`` of ``Wx (D, 4H)``. ``Wh (H, 4H)`` C-contiguous, ``b (4H,)``;
    ``h (T+1, B, H)`` with h_0 in ``h[0]``. With ``cache``: ``gates (T, B, 4H)``,
    ``c (T+1, B, H)``, ``tanh_c (T, B, H)`` are the cache, filled here (``gates`` must already
    hold x_t·Wx). Without (inference): ``gates (Tc, B, 4H)`` is a buffer for Tc steps of
    x_t·Wx, projected here (Tc steps in one GEMM, or step by step when the batch is split),
    ``c (2, B, H)`` holds C_{t-1} and C_t by turns, ``tanh_c (1, B, H)`` is scratch. Padding
    rows as in :func:`lstm_step_forward`. ``Whp``: Wh packed for :func:`packed_product`, or
    empty (BLAS does the recurrent product).
    """
    T, B, H = h.shape[0] - 1, h.shape[1], h.shape[2]
    G = 4 * H
    rows = r1 - r0
    isz = h.itemsize
    zero = h.dtype.type(0.0)
    Tc = gates.shape[0]
    pg = _address(gates)
    for t in range(T):
        slot = t if cache else t % Tc
        if not cache and rows == B:
            if slot == 0:  # x_t·Wx for the next Tc steps in one GEMM: (n·B, D)·(D, 4H)
                n = min(Tc, T - t)
                _gemm(gemm, 0, n * B, G, D, px + t * B * D * isz, D, pwx, G, zero, pg, G)
        elif not cache:  # split batch: this thread's rows of x_t·Wx
            _gemm(gemm, 0, rows, G, D, px + (t * B + r0) * D * isz, D, pwx, G, zero,
                  pg + (slot * B + r0) * G * isz, G)
        _times_w(gemm, h, t, Wh, Whp, gates, slot, r0, r1, True)  # + h_{t-1}·Wh onto x_t·Wx
        cp = c[t] if cache else c[t % 2]
        cn = c[t + 1] if cache else c[(t + 1) % 2]
        tc = tanh_c[t] if cache else tanh_c[0]
        _lstm_rows_forward(gates[slot], b, h[t], h[t + 1], cp, cn, tc, lengths, t, r0, r1)


@register_jitable
def _lstm_rows_forward(g, b, hp, hn, cp, cn, tc, lengths, t, r0, r1):
    """The gate math of step ``t`` for rows ``r0:r1``: ``g (B, 4H)`` holds the pre-activations
    (becomes the activated gates), ``hp``/``cp`` the previous state, ``hn``/``cn``/``tc`` get
    h_t, C_t, tanh(C_t). Rows whose sequence has ended carry their state, gates zero."""
    for n in range(r0, r1):
        if t >= lengths[n]:  # padding: carry the state, zero gates
            hn[n, :] = hp[n, :]
            cn[n, :] = cp[n, :]
            g[n, :] = 0.0
            tc[n, :] = 0.0
        else:
            _lstm_row_forward(g[n], b, cp[n], cn[n], tc[n], hn[n])


@njit(**_JIT_FMA)
def lstm_backward_loop(gemm, dh, dhT, dy, dc, gates, tanh_c, c, dz, WhT, WhTp, lengths, r0,
                       r1):
    """BPTT over steps T-1..0 of rows ``r0:r1``; ``gemm`` as in :func:`lstm_forward_loop`,
    ``WhT (4H, H)`` a C-contiguous copy of Whᵀ, ``WhTp`` it packed or empty.

    ``dh (B, H)`` ends as dL/dh_0, ``dc (B, H)`` holds dL/dC_T on entry and ends as dL/dC_0;
    ``dhT (B, H)``; ``dy (T, B, H)``, or ``(1, B, H)`` zeros when the outputs get no gradient;
    ``gates``, ``tanh_c``, ``c`` the forward's cache; writes ``dz (T, B, 4H)``.
    """
    T = dz.shape[0]
    dh3 = dh.reshape((1,) + dh.shape)  # (1, B, H), as _times_w wants
    for t in range(T - 1, -1, -1):
        dyt = dy[t] if dy.shape[0] == T else dy[0]
        g, tc, cp, dzt = gates[t], tanh_c[t], c[t], dz[t]
        for n in range(r0, r1):
            if t >= lengths[n]:
                dzt[n, :] = 0.0
                continue
            _dh_total(dh[n], dhT[n], dyt[n], t + 1 < lengths[n])
            _lstm_row_backward(dh[n], dc[n], g[n], tc[n], cp[n], dzt[n])
        _times_w(gemm, dz, t, WhT, WhTp, dh3, 0, r0, r1, False)  # dL/dh_{t-1} = dz_t·Whᵀ


@register_jitable
def _pipe_chunk(T, Tc, i):
    """Steps ``s0:s1`` of the pipeline's chunk ``i``: chunks of ``Tc`` steps, latest first."""
    s1 = T - i * Tc
    return max(0, s1 - Tc), s1


@register_jitable
def _pipe_dx_chunk(gemm, dz, Wx, dx, i, Tc):
    """Rows of ``dx = dz·Wxᵀ`` for chunk ``i`` of the pipeline (steps ``T - (i+1)·Tc`` to
    ``T - i·Tc``, clipped at 0): one GEMM whose arguments do not depend on the calling
    thread, so either thread computes the same bits."""
    T, B, G = dz.shape
    D = dx.shape[2]
    s0, s1 = _pipe_chunk(T, Tc, i)
    isz = dz.itemsize
    _gemm(gemm, 1, (s1 - s0) * B, D, G, _address(dz) + s0 * B * G * isz, G, _address(Wx), G,
          dz.dtype.type(0.0), _address(dx) + s0 * B * D * isz, D)


@register_jitable
def _pipe_dwx_blocks(gemm, x, dz, dWx, claims):
    """Blocks of columns of ``dWx = xᵀ·dz`` (the four gates' H columns each, one GEMM over all
    T·B rows per block) claimed one by one through the counter ``claims[0]`` until none is
    left: both threads of the pipeline run this, and each block is computed once, with the
    same arguments whichever thread claims it."""
    T, B, G = dz.shape
    D = x.shape[2]
    H = G // 4
    isz = dz.itemsize
    while True:
        k = _atomic_add(_address(claims), 1)
        if k >= 4:
            return
        _gemm(gemm, 2, D, H, T * B, _address(x), D, _address(dz) + k * H * isz, G,
              dz.dtype.type(0.0), _address(dWx) + k * H * isz, G)


@njit(**_JIT_FMA)
def lstm_backward_pipe(role, gemm, dh, dhT, dy, dc, gates, tanh_c, c, dz, WhT, WhTp, lengths,
                       x, h, Wx, dWx, dWh, dx, Tc, balance, claims, prof, sync, yield_fn):
    """The backward of one sequence on two threads without a barrier per step: one thread
    (``role`` 0) runs the recurrence, the other (``role`` 1) the big GEMMs behind it.

    Role 0 runs :func:`lstm_backward_loop` over all rows (``WhTp``: Whᵀ packed, for the packed
    kernel on this one core; empty: BLAS), and after each step adds 1 to the int64 at
    ``sync`` (steps done). Role 1 takes the steps in chunks of ``Tc``, latest first, in the
    order the recurrence finishes them; for each chunk, once the counter shows it done, its
    term of ``dWh (H, 4H) = Σ h_{t-1}ᵀ·dz_t`` (the chunks summed in that fixed order) and its
    rows of ``dx (T, B, D) = dz·Wxᵀ`` (zero-length ``dx``: not wanted).

    Then ``dWx (D, 4H) = xᵀ·dz`` over all T·B rows. Without ``balance``, role 0 computes it
    after its loop, one GEMM. With ``balance`` (``claims``: int64 zeros, one more than there
    are chunks) the work left after the recurrence goes to whichever thread is free: its four
    blocks of columns (:func:`_pipe_dwx_blocks`), which role 0 starts on after its loop and
    role 1 after its last chunk; then role 0 takes chunks' ``dx`` from the earliest steps on,
    which role 1 reaches last, each chunk's ``dx`` claimed once through its int64 in
    ``claims[1:]``. Where a block or a chunk runs depends on timing, what it computes does not
    (the same GEMM on the same arguments, either thread): every run gives the same bits. BLAS
    must be held to one thread (the caller's job). ``prof (4,)`` int64 accumulates cycles:
    recurrence, GEMMs, waiting, unused. Returns False when a wait was aborted (the int64 after
    ``sync`` became non-zero).
    """
    T, B, H = dz.shape[0], dz.shape[1], dh.shape[1]
    D = x.shape[2]
    G = 4 * H
    isz = dz.itemsize
    zero, one = dz.dtype.type(0.0), dz.dtype.type(1.0)
    chunks = (T + Tc - 1) // Tc
    want_dx = dx.shape[0] > 0
    if role == 0:
        t0 = _cycles()
        dh3 = dh.reshape((1,) + dh.shape)
        for t in range(T - 1, -1, -1):
            dyt = dy[t] if dy.shape[0] == T else dy[0]
            g, tc, cp, dzt = gates[t], tanh_c[t], c[t], dz[t]
            for n in range(B):
                if t >= lengths[n]:
                    dzt[n, :] = 0.0
                    continue
                _dh_total(dh[n], dhT[n], dyt[n], t + 1 < lengths[n])
                _lstm_row_backward(dh[n], dc[n], g[n], tc[n], cp[n], dzt[n])
            _times_w(gemm, dz, t, WhT, WhTp, dh3, 0, 0, B, False)  # dL/dh_{t-1} = dz_t·Whᵀ
            _atomic_add(sync, 1)  # dz_t is written: role 1 may read it
        t1 = _cycles()
        if not balance:
            _gemm(gemm, 2, D, G, T * B, _address(x), D, _address(dz), G, zero,
                  _address(dWx), G)
        else:
            _pipe_dwx_blocks(gemm, x, dz, dWx, claims)
            if want_dx:  # dx of the chunks role 1 has not reached, the last first
                for i in range(chunks - 1, -1, -1):
                    if _atomic_add(_address(claims) + 8 * (1 + i), 1) != 0:
                        break  # role 1 has it, and every chunk before it
                    _pipe_dx_chunk(gemm, dz, Wx, dx, i, Tc)
        prof[0] += t1 - t0
        prof[1] += _cycles() - t1
        return True
    for i in range(chunks):
        s0, s1 = _pipe_chunk(T, Tc, i)
        t0 = _cycles()
        spins = 0
        while _atomic_load(sync) < T - s0:  # steps s0..s1-1 not all done yet
            if _atomic_load(sync + 8) != 0:
                return False
            _relax(yield_fn, spins)
            spins += 1
        t1 = _cycles()
        _gemm(gemm, 2, H, G, (s1 - s0) * B, _address(h) + s0 * B * H * isz, H,
              _address(dz) + s0 * B * G * isz, G, zero if i == 0 else one, _address(dWh), G)
        if want_dx and (not balance or _atomic_add(_address(claims) + 8 * (1 + i), 1) == 0):
            _pipe_dx_chunk(gemm, dz, Wx, dx, i, Tc)
        prof[2] += t1 - t0
        prof[1] += _cycles() - t1
    if balance:  # the loop's last chunk waited for all T steps: dz is complete
        t1 = _cycles()
        _pipe_dwx_blocks(gemm, x, dz, dWx, claims)
        prof[1] += _cycles() - t1
    return True


@register_jitable
def _pipe_project(gemm, px, D, pwx, gates, ends, k):
    """Chunk ``k`` of the forward pipeline's input projection: ``x_t·Wx`` into ``gates`` for
    steps ``ends[k-1]`` (0 for the first) to ``ends[k]``, one GEMM whose arguments do not
    depend on the calling thread, so either thread computes the same bits."""
    B, G = gates.shape[1], gates.shape[2]
    isz = gates.itemsize
    s0 = ends[k - 1] if k > 0 else 0
    s1 = ends[k]
    _gemm(gemm, 0, (s1 - s0) * B, G, D, px + s0 * B * D * isz, D, pwx, G,
          gates.dtype.type(0.0), _address(gates) + s0 * B * G * isz, G)


@register_jitable
def _pipe_project_next(gemm, px, D, pwx, gates, ends, claims):
    """Claim the next chunk of the projection through ``claims[0]`` and, if one was left,
    project it (:func:`_pipe_project`) and mark it done in ``claims[1 + k]``; False when
    every chunk was already claimed."""
    k = _atomic_add(_address(claims), 1)
    if k >= ends.shape[0]:
        return False
    _pipe_project(gemm, px, D, pwx, gates, ends, k)
    _atomic_store(_address(claims) + 8 * (1 + k), 1)  # chunk k written: it may be read
    return True


@njit(**_JIT_FMA)
def lstm_forward_pipe(role, gemm, px, D, pwx, Wh, Whp, b, gates, h, c, tanh_c, lengths, ends,
                      claims, prof, sync, yield_fn):
    """The training forward of one sequence on two threads without a barrier per step: one
    thread (``role`` 0) runs the recurrence of :func:`lstm_forward_loop` (with a cache, all
    rows; ``Whp``: Wh packed for the packed kernel on this one core, or empty: BLAS), the
    other (``role`` 1) projects the input, ``x_t·Wx`` into ``gates``, ahead of it.

    The projection is done in chunks of steps (chunk ``i`` ends at step ``ends[i]``;
    ``ends`` increasing, the last T), each claimed once, in order, through the counter
    ``claims[0]`` (``claims``: int64 zeros, one more than there are chunks) by whichever
    thread gets there first, and marked done in ``claims[1 + i]`` once its rows are written.
    Role 1 claims chunk after chunk until none is left. Role 0, before a step whose chunk is
    not done, projects an unclaimed chunk meanwhile if one is left (whichever comes next: the
    one it needs when the other thread is still waking up, a later one when the other thread
    is busy with the one it needs), and waits only when none is.
    Each chunk is the same GEMM on the same arguments whichever thread runs it: every run
    gives the same bits. Arguments as in :func:`lstm_forward_loop`; BLAS must be held to one
    thread (the caller's job). ``prof (4,)`` int64 accumulates cycles: recurrence,
    projection, waiting, unused. Returns False when a wait was aborted (the int64 after
    ``sync`` became non-zero)."""
    T = h.shape[0] - 1
    B = h.shape[1]
    n = ends.shape[0]
    next_chunk = _address(claims)
    if role == 1:
        t0 = _cycles()
        while _pipe_project_next(gemm, px, D, pwx, gates, ends, claims):
            pass
        prof[1] += _cycles() - t0
        return True
    waited = projected = 0
    t0 = _cycles()
    i = 0  # the chunk of step t
    for t in range(T):
        if t >= ends[i]:
            i += 1
        if _atomic_load(next_chunk + 8 * (1 + i)) == 0:
            w0 = _cycles()
            spins = 0
            while _atomic_load(next_chunk + 8 * (1 + i)) == 0:
                if _atomic_load(next_chunk) < n:  # a chunk is unclaimed: project it meanwhile
                    p0 = _cycles()
                    _pipe_project_next(gemm, px, D, pwx, gates, ends, claims)
                    projected += _cycles() - p0
                    continue
                if _atomic_load(sync + 8) != 0:
                    return False
                _relax(yield_fn, spins)
                spins += 1
            waited += _cycles() - w0
        _times_w(gemm, h, t, Wh, Whp, gates, t, 0, B, True)  # + h_{t-1}·Wh onto x_t·Wx
        _lstm_rows_forward(gates[t], b, h[t], h[t + 1], c[t], c[t + 1], tanh_c[t], lengths, t,
                           0, B)
    prof[0] += _cycles() - t0 - waited
    prof[1] += projected
    prof[2] += waited - projected
    return True


@njit(**_JIT_FMA)
def gemm_selftest(gemm, a, w, out, trans):
    """``out = a·w`` (or ``a·wᵀ`` with ``trans``) through the cblas_?gemm at ``gemm``: lets
    ``fast.py`` check the address and calling convention once before trusting them."""
    m, k = a.shape
    n = out.shape[1]
    _gemm(gemm, trans, m, n, k, _address(a), k, _address(w), k if trans else n,
          out.dtype.type(0.0), _address(out), n)


# -- one sequence on two threads, each owning half of the hidden units --------------------
# Two threads run the same function at once, on units u0:u1 each: the input projection of
# their gate columns, then every step's recurrent product for those columns (all of h_{t-1}
# times the weights of their own units: each thread reads only its half of Wh), the gate
# math of their units, and a barrier before the next step reads h_t. Backward the same:
# each thread the gate backward of its units, a barrier, then its units of dz_t·Whᵀ. So both
# cores share every step, and each core streams half of the weights, where a two-thread BLAS
# call per step repacks all of them. BLAS inside is held to one thread by the caller
# (``fast.py``): no OpenBLAS worker exists to take a core from the pair. The barrier is a
# shared counter, incremented atomically by each arriving thread, waited on by spinning
# (a core's pause instruction, then sched_yield); a second word set by the caller aborts the
# wait when the other thread failed to start.
_X86 = platform.machine().lower() in ("x86_64", "amd64", "i686", "x86")
_SPINS = 200  # pause instructions before each sched_yield while waiting


@intrinsic
def _atomic_add(typingctx, addr, val):
    """Atomically add ``val`` to the int64 at address ``addr`` (sequentially consistent);
    the value it held before."""
    sig = types.int64(types.int64, types.int64)

    def codegen(context, builder, sig, args):
        ptr = builder.inttoptr(args[0], ir.IntType(64).as_pointer())
        return builder.atomic_rmw("add", ptr, args[1], "seq_cst")
    return sig, codegen


@intrinsic
def _atomic_load(typingctx, addr):
    """The int64 at address ``addr``, read atomically (sequentially consistent)."""
    sig = types.int64(types.int64)

    def codegen(context, builder, sig, args):
        ptr = builder.inttoptr(args[0], ir.IntType(64).as_pointer())
        return builder.load_atomic(ptr, "seq_cst", 8)
    return sig, codegen


@intrinsic
def _relax(typingctx, yield_fn, spins):
    """One turn of a spin wait: a ``pause`` instruction (x86), and every ``_SPINS`` turns a
    call of the C function ``int f(void)`` at address ``yield_fn`` (sched_yield)."""
    sig = types.void(types.int64, types.int64)

    def codegen(context, builder, sig, args):
        if _X86:
            pause = cgutils.get_or_insert_function(
                builder.module, ir.FunctionType(ir.VoidType(), []), "llvm.x86.sse2.pause")
            builder.call(pause, [])
        due = builder.icmp_signed("==", builder.srem(args[1], ir.Constant(ir.IntType(64), _SPINS)),
                                  ir.Constant(ir.IntType(64), _SPINS - 1))
        with builder.if_then(due, likely=False):
            fnty = ir.FunctionType(ir.IntType(32), [])
            builder.call(builder.inttoptr(args[0], fnty.as_pointer()), [])
        return context.get_dummy_value()
    return sig, codegen


@intrinsic
def _cycles(typingctx):
    """The CPU's cycle counter (``llvm.readcyclecounter``: rdtsc on x86), for the pair's
    time split; its unit does not matter, only shares of it are reported."""
    sig = types.int64()

    def codegen(context, builder, sig, args):
        fn = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.IntType(64), []), "llvm.readcyclecounter")
        return builder.call(fn, [])
    return sig, codegen


@register_jitable
def _barrier(sync, target, yield_fn):
    """Arrive at the barrier whose counter is the int64 at ``sync`` and wait until it reaches
    ``target``; False when the int64 after it became non-zero meanwhile (abort)."""
    _atomic_add(sync, 1)
    spins = 0
    while _atomic_load(sync) < target:
        if _atomic_load(sync + 8) != 0:
            return False
        _relax(yield_fn, spins)
        spins += 1
    return True


@register_jitable
def _gather_units(W, H, u0, u1, out):
    """``out (K, 4n)``: the columns of ``W (K, 4H)`` for hidden units u0:u1, gate after gate."""
    n = u1 - u0
    for k in range(W.shape[0]):
        wk, ok = W[k], out[k]
        for q in range(4):
            src, dst = wk[q * H + u0:q * H + u1], ok[q * n:(q + 1) * n]
            for j in range(n):
                dst[j] = src[j]


@register_jitable
def _pack_units(W, H, u0, u1, out):
    """:func:`_gather_units` straight into packed panels ``out (4n/NR, K, NR)``."""
    n, nr = u1 - u0, out.shape[2]
    if n % nr == 0:  # each panel within one gate: NR contiguous columns per row, copied as
        per = n // nr  # a block that vectorises, panel after panel (bench_lstm.py --packed
        for p in range(out.shape[0]):  # times it; the loop below does not vectorise)
            col = (p // per) * H + u0 + (p % per) * nr
            op = out[p]
            for k in range(W.shape[0]):
                src, dst = W[k, col:col + nr], op[k]
                for r in range(nr):
                    dst[r] = src[r]
        return
    for k in range(W.shape[0]):  # panels straddling two gates' columns
        wk = W[k]
        p, r = 0, 0
        for q in range(4):
            src = wk[q * H + u0:q * H + u1]
            for j in range(n):
                out[p, k, r] = src[j]
                r += 1
                if r == nr:
                    p, r = p + 1, 0


@register_jitable
def _copy_units(W, H, u0, u1, plain, packed):
    """Units u0:u1's columns of ``W (K, 4H)`` into ``packed`` (:func:`_pack_units`) or, when
    that is empty, ``plain`` (:func:`_gather_units`)."""
    if packed.shape[0] > 0:
        _pack_units(W, H, u0, u1, packed)
    else:
        _gather_units(W, H, u0, u1, plain)


@njit(**_JIT)
def pack_units(W, H, u0, u1, out):
    """:func:`_pack_units`, callable alone (tests, ``bench_lstm.py --packed``)."""
    _pack_units(W, H, u0, u1, out)


@njit(**_JIT)
def transpose_pack_units(W, u0, u1, out):
    """:func:`_transpose_pack_units`, callable alone (tests, ``bench_lstm.py --packed``)."""
    _transpose_pack_units(W, u0, u1, out)


@register_jitable
def _transpose_units(W, u0, u1, out):
    """``out (4H, n)`` = rows u0:u1 of ``W (H, 4H)``, transposed."""
    for j in range(u1 - u0):
        wj = W[u0 + j]
        for k in range(W.shape[1]):
            out[k, j] = wj[k]


@register_jitable
def _transpose_pack_units(W, u0, u1, out):
    """:func:`_transpose_units` straight into packed panels ``out (n/NR, 4H, NR)``."""
    nr = out.shape[2]
    for j in range(u1 - u0):
        wj, oj = W[u0 + j], out[j // nr]
        r = j % nr
        for k in range(W.shape[1]):
            oj[k, r] = wj[k]


@register_jitable
def _pair_project_next(gemm, px, D, Wxu0, Wxup0, Wxu1, Wxup1, z0, z1, items, limit):
    """Claim the next item of the pair's input projection through ``items[0]`` when fewer
    than ``limit`` were claimed (the two threads racing, the last item claimed is at most
    item ``limit``) and one of the 2T is left, project it and mark it done in
    ``items[1 + i]``. Item
    ``i`` is step ``i // 2`` of half ``i % 2``: ``x_s·Wxu`` into that half's buffer ``z0`` /
    ``z1 (S, B, 4n)``, slot ``s % S``, by the packed kernel (or BLAS when that half's
    ``Wxup`` is empty). False when no item could be claimed."""
    addr = _address(items)
    if _atomic_load(addr) >= limit:
        return False
    i = _atomic_add(addr, 1)
    if i >= items.shape[0] - 1:
        return False
    s, u = i // 2, i % 2
    z = z0 if u == 0 else z1
    B, n4 = z.shape[1], z.shape[2]
    isz = z.itemsize
    src = px + s * B * D * isz
    dst = _address(z) + (s % z.shape[0]) * B * n4 * isz
    _units_product(gemm, src, D, B, Wxu0 if u == 0 else Wxu1, Wxup0 if u == 0 else Wxup1,
                   dst, n4, False)
    _atomic_store(addr + 8 * (1 + i), 1)  # written: its step may use it
    return True


@register_jitable
def _project_until(addr, target, gemm, px, D, Wxu0, Wxup0, Wxu1, Wxup1, z0, z1, items, limit,
                   sync, yield_fn):
    """Until the int64 at ``addr`` reaches ``target``: project the pair's next item
    (:func:`_pair_project_next`, up to item ``limit``) or, with none to claim, spin. The
    cycles spent spinning, or -1 when the wait was aborted (the int64 after ``sync``)."""
    waited = 0
    spins = 0
    while _atomic_load(addr) < target:
        if _pair_project_next(gemm, px, D, Wxu0, Wxup0, Wxu1, Wxup1, z0, z1, items, limit):
            continue
        w0 = _cycles()
        if _atomic_load(sync + 8) != 0:
            return -1
        _relax(yield_fn, spins)
        spins += 1
        waited += _cycles() - w0
    return waited


@njit(**_JIT_FMA)
def lstm_forward_units(part, gemm, px, D, Wx, Wh, Wxu0, Wxup0, Wxu1, Wxup1, Whu, Whup, b, z0,
                       z1, gates, h, c, tanh_c, lengths, units, items, cache, prof, sync,
                       yield_fn):
    """:func:`lstm_forward_loop` for hidden units ``u0:u1`` of every row, run by two threads
    at once (``part`` 0 and 1, ``u0, u1 = units[part], units[part + 1]``), meeting once per
    step: step t+1 needs all of ``h_t``.

    ``Wx (D, 4H)``, ``Wh (H, 4H)`` the weights; this thread first copies the columns of its n
    units, gate after gate (f, i, o, C̃), into its half's ``Wxup`` (packed, for the packed
    kernel) or, when that is empty, ``Wxu (D, 4n)``, and likewise ``Whup`` / ``Whu``. ``z0``,
    ``z1 (S, B, 4n)`` the two halves' buffers for S >= 2 steps of x_t·Wxu + h_{t-1}·Whu (with
    one slot, the two threads racing for the next item could leave a step's own item
    unclaimable). With
    ``cache`` the activated gates go to ``gates (T, B, 4H)`` (this thread's columns ``q·H +
    u0 : q·H + u1``, q = 0..3), else they stay in z (``gates`` unused). ``h``, ``c``,
    ``tanh_c`` and the rest as in :func:`lstm_forward_loop`, filled for units u0:u1.

    The input projection is not split by halves but shared out: its items, one step of one
    half each, are claimed in order through ``items`` (int64 zeros, 1 + 2T) by whichever
    thread is free (:func:`_pair_project_next`). A thread about to run step t projects items
    until its own of step t is claimed (waiting only if the other thread has it in hand),
    and a thread waiting for the other's half of h_t projects items ahead, up to S - 1 steps
    (the buffers' depth), instead of waiting — so that the thread on the faster core does
    more of the projection and neither waits long for the other. Each item is the same call
    whichever thread runs it: every run gives the same bits.
    ``prof (4,)`` int64 accumulates this thread's cycle counts: input projection (with the
    copies of the weights), recurrent product, gate math, waiting. Returns False when a wait
    was aborted.
    """
    T, B, H = h.shape[0] - 1, h.shape[1], h.shape[2]
    u0, u1 = units[part], units[part + 1]
    z = z0 if part == 0 else z1
    n4 = z.shape[2]
    nu = n4 // 4
    isz = h.itemsize
    half = h.dtype.type(0.5)
    S = z.shape[0]
    addr = _address(items)
    t0 = _cycles()
    if part == 0:
        _copy_units(Wx, H, u0, u1, Wxu0, Wxup0)
    else:
        _copy_units(Wx, H, u0, u1, Wxu1, Wxup1)
    _copy_units(Wh, H, u0, u1, Whu, Whup)
    prof[0] += _cycles() - t0
    if not _barrier(sync, 2, yield_fn):  # both halves' weights copied: either may project
        return False
    for t in range(T):
        slot = t % S
        t0 = _cycles()
        # x_t·Wxu: project until this thread's item is done (waiting only while the other
        # thread writes it). Here, as at the barrier below, both threads have finished step
        # t - 1: the slots of steps up to t - 1 + S are free, items up to 2(t + S) - 1
        waited = _project_until(addr + 8 * (2 * t + part + 1), 1, gemm, px, D, Wxu0, Wxup0,
                                Wxu1, Wxup1, z0, z1, items, 2 * (t + S) - 1, sync, yield_fn)
        if waited < 0:
            return False
        t1 = _cycles()
        # + h_{t-1}·Whu onto it
        _units_product(gemm, _address(h) + t * B * H * isz, H, B, Whu, Whup,
                       _address(z) + slot * B * n4 * isz, n4, True)
        t2 = _cycles()
        cp = c[t] if cache else c[t % 2]
        cn = c[t + 1] if cache else c[(t + 1) % 2]
        tc = tanh_c[t] if cache else tanh_c[0]
        hp, hn = h[t], h[t + 1]
        for n in range(B):
            zn = z[slot, n]
            if t >= lengths[n]:  # padding: carry the state, zero gates
                hn[n, u0:u1] = hp[n, u0:u1]
                cn[n, u0:u1] = cp[n, u0:u1]
                zn[:] = 0.0
                tc[n, u0:u1] = 0.0
            else:  # in place, as _lstm_row_forward (a loop that reads one array and writes
                # another overlapping it exactly would not vectorise)
                for q in range(3):  # f_t, i_t, o_t = σ(W·[h_{t-1}, x_t] + b)
                    zq, bq = zn[q * nu:(q + 1) * nu], b[q * H + u0:q * H + u1]
                    for j in range(nu):
                        zq[j] = half * tanh(half * (zq[j] + bq[j])) + half
                zg, bg = zn[3 * nu:], b[3 * H + u0:3 * H + u1]
                for j in range(nu):  # C̃_t = tanh(W_C·[h_{t-1}, x_t] + b_C)
                    zg[j] = tanh(zg[j] + bg[j])
                _lstm_cell(zn[:nu], zn[nu:2 * nu], zn[2 * nu:3 * nu], zg, cp[n, u0:u1],
                           cn[n, u0:u1], tc[n, u0:u1], hn[n, u0:u1])
            if cache:  # this thread's columns of the cached gates
                gn = gates[t, n]
                for q in range(4):
                    gq, zq = gn[q * H + u0:q * H + u1], zn[q * nu:(q + 1) * nu]
                    for j in range(nu):  # a loop: slice assignment would allocate a copy
                        gq[j] = zq[j]
        t3 = _cycles()
        _atomic_add(sync, 1)  # the barrier of step t, waited out by projecting ahead
        w = _project_until(sync, 2 * (t + 2), gemm, px, D, Wxu0, Wxup0, Wxu1, Wxup1, z0, z1,
                           items, 2 * (t + S) - 1, sync, yield_fn)
        if w < 0:
            return False
        waited += w
        t4 = _cycles()
        prof[0] += (t1 - t0) + (t4 - t3) - waited
        prof[1] += t2 - t1
        prof[2] += t3 - t2
        prof[3] += waited
    return True


@njit(**_JIT_FMA)
def lstm_backward_units(gemm, dh, dhT, dy, dc, gates, tanh_c, c, dz, Wh, WhTu, WhTup, lengths,
                        u0, u1, part, x, h, Wx, dWx, dWh, db, dx, prof, sync, yield_fn):
    """:func:`lstm_backward_loop` and the weight gradients after it, for hidden units
    ``u0:u1``, two threads at once (``part`` 0 and 1; see :func:`lstm_forward_units`).

    First this thread copies columns u0:u1 of Whᵀ (``Wh (H, 4H)``) into ``WhTup`` (packed) or,
    when that is empty, ``WhTu (4H, n)``. Per step: the gate backward of these units, a barrier
    (dz_t complete), then these units' columns of dL/dh_{t-1} = dz_t·Whᵀ. After the loop: this thread's columns of ``db (4H,)`` (a
    zero-length ``db`` means no bias), a barrier, and its half of the rows of ``dWx (D, 4H)``,
    ``dWh (H, 4H)`` and ``dx (T, B, D)`` (zero-length: not wanted), each one GEMM over all T·B
    rows, from ``x (T, B, D)``, ``h (T+1, B, H)`` and ``Wx (D, 4H)``. The rest as in
    :func:`lstm_backward_loop`. ``prof (4,)`` int64 accumulates this thread's cycle counts:
    gate backward (and ``db``), recurrent product, weight-gradient GEMMs, waiting at barriers.
    Returns False when a wait was aborted.
    """
    T, B, H = dz.shape[0], dz.shape[1], dh.shape[1]
    D = x.shape[2]
    G = 4 * H
    isz = dz.itemsize
    t0 = _cycles()
    if WhTup.shape[0] > 0:
        _transpose_pack_units(Wh, u0, u1, WhTup)
    else:
        _transpose_units(Wh, u0, u1, WhTu)
    prof[0] += _cycles() - t0
    for t in range(T - 1, -1, -1):
        t0 = _cycles()
        dyt = dy[t] if dy.shape[0] == T else dy[0]
        g, tc, cp, dzt = gates[t], tanh_c[t], c[t], dz[t]
        for n in range(B):
            gn, dzn = g[n], dzt[n]
            if t >= lengths[n]:
                for q in range(4):
                    dzn[q * H + u0:q * H + u1] = 0.0
                continue
            dhn, dcn = dh[n, u0:u1], dc[n, u0:u1]
            _dh_total(dhn, dhT[n, u0:u1], dyt[n, u0:u1], t + 1 < lengths[n])
            _lstm_units_backward(dhn, dcn, gn[u0:u1], gn[H + u0:H + u1],
                                 gn[2 * H + u0:2 * H + u1], gn[3 * H + u0:3 * H + u1],
                                 tc[n, u0:u1], cp[n, u0:u1], dzn[u0:u1], dzn[H + u0:H + u1],
                                 dzn[2 * H + u0:2 * H + u1], dzn[3 * H + u0:3 * H + u1])
        t1 = _cycles()
        if not _barrier(sync, 2 * (T - t), yield_fn):
            return False
        t2 = _cycles()
        _units_product(gemm, _address(dz) + t * B * G * isz, G, B, WhTu, WhTup,
                       _address(dh) + u0 * isz, H, False)
        prof[0] += t1 - t0
        prof[3] += t2 - t1
        prof[1] += _cycles() - t2
    t0 = _cycles()
    rows = T * B
    dz2 = dz.reshape(rows, G)
    if db.shape[0] > 0:  # row after row, as NumPy's dz.sum(axis=0)
        for q in range(4):
            dbq = db[q * H + u0:q * H + u1]
            dbq[:] = dz2[0, q * H + u0:q * H + u1]
            for r in range(1, rows):
                zr = dz2[r, q * H + u0:q * H + u1]
                for j in range(dbq.shape[0]):
                    dbq[j] += zr[j]
    t1 = _cycles()
    if not _barrier(sync, 2 * T + 2, yield_fn):  # all of dz is written
        return False
    t2 = _cycles()
    zero = dz.dtype.type(0.0)
    a0, a1 = part * D // 2, (part + 1) * D // 2  # dWx = xᵀ·dz, rows a0:a1
    _gemm(gemm, 2, a1 - a0, G, rows, _address(x) + a0 * isz, D, _address(dz), G, zero,
          _address(dWx) + a0 * G * isz, G)
    a0, a1 = part * H // 2, (part + 1) * H // 2  # dWh = h_{t-1}ᵀ·dz, rows a0:a1
    _gemm(gemm, 2, a1 - a0, G, rows, _address(h) + a0 * isz, H, _address(dz), G, zero,
          _address(dWh) + a0 * G * isz, G)
    if dx.shape[0] > 0:  # dx = dz·Wxᵀ, rows a0:a1 of the T·B
        a0, a1 = part * rows // 2, (part + 1) * rows // 2
        _gemm(gemm, 1, a1 - a0, D, G, _address(dz) + a0 * G * isz, G, _address(Wx), G, zero,
              _address(dx) + a0 * D * isz, D)
    prof[0] += t1 - t0
    prof[3] += t2 - t1
    prof[2] += _cycles() - t2
    return True


# -- a whole step for a few rows (streaming) ---------------------------------------------
# For B = 1..4 the two matrix products of a step are vector-matrix products whose cost is
# reading the weights; a BLAS call adds ~1.5 µs of overhead each and the Python between the
# calls more. These kernels do the products themselves, so a streaming step is ONE call.
@register_jitable
def _vecmat_add(v, W, z):
    """``z (N,) += v (K,) · W (K, N)``, eight rows of W per pass over z (so z is loaded and
    stored K/8 times, not K times); the inner loop over N vectorises."""
    K, N = W.shape
    k = 0
    while k + 8 <= K:
        a0, a1, a2, a3 = v[k], v[k + 1], v[k + 2], v[k + 3]
        a4, a5, a6, a7 = v[k + 4], v[k + 5], v[k + 6], v[k + 7]
        w0, w1, w2, w3 = W[k], W[k + 1], W[k + 2], W[k + 3]
        w4, w5, w6, w7 = W[k + 4], W[k + 5], W[k + 6], W[k + 7]
        for j in range(N):
            z[j] += (((a0 * w0[j] + a1 * w1[j]) + (a2 * w2[j] + a3 * w3[j]))
                     + ((a4 * w4[j] + a5 * w5[j]) + (a6 * w6[j] + a7 * w7[j])))
        k += 8
    while k < K:
        a0, w0 = v[k], W[k]
        for j in range(N):
            z[j] += a0 * w0[j]
        k += 1


@register_jitable
def _finite(a):
    """True when the 2-D array ``a`` holds no NaN or inf (x·0 is 0 for finite x, else NaN)."""
    s = a.dtype.type(0.0)
    for n in range(a.shape[0]):
        an = a[n]
        for j in range(a.shape[1]):
            s += an[j] * 0.0
    return s == 0.0


@register_jitable
def _nonfinite_input(x, h_prev, c_prev):
    """0, or 1/2/3 for the first of ``x (B, D)``, ``h_prev``, ``c_prev (L, B, H)`` that holds
    NaN or inf (a streaming step's inputs)."""
    if not _finite(x):
        return 1
    if not _finite(h_prev.reshape(-1, h_prev.shape[2])):
        return 2
    if not _finite(c_prev.reshape(-1, c_prev.shape[2])):
        return 3
    return 0


@njit(**_JIT_FMA)
def lstm_stream_step(x, h_prev, c_prev, Wxs, Whs, bs, h, c):
    """One whole step of a stack of L LSTM layers for a few rows, products included.

    ``x (B, D)``; state ``h_prev, c_prev (L, B, H)``; ``Wxs``, ``Whs``, ``bs`` tuples of the L
    layers' weights as in ``lstm.py`` (layer l > 0 takes h of layer l-1 as its input); writes
    ``h, c (L, B, H)``. Returns 0, or 1/2/3 when ``x``/``h_prev``/``c_prev`` holds NaN or inf
    (then nothing is written). Its scratch row is allocated here, where an allocation costs
    less than a call of ``np.empty`` from Python, and a streaming step is short enough for
    the difference to show.
    """
    bad = _nonfinite_input(x, h_prev, c_prev)
    if bad:
        return bad
    L, B, H = h.shape
    z = np.empty((B, 5 * H), h.dtype)  # per row: the four gates, then tanh(C_t)
    for layer in range(L):
        inp = x if layer == 0 else h[layer - 1]
        Wx, Wh, b = Wxs[layer], Whs[layer], bs[layer]
        for n in range(B):
            zn, tcn = z[n, :4 * H], z[n, 4 * H:]
            zn[:] = 0.0
            _vecmat_add(inp[n], Wx, zn)  # x_t·Wx
            _vecmat_add(h_prev[layer, n], Wh, zn)  # + h_{t-1}·Wh
            _lstm_row_forward(zn, b, c_prev[layer, n], c[layer, n], tcn, h[layer, n])
    return 0


# -- the streaming step on two threads --------------------------------------------------
# At B <= 4 a streaming step is two vector-matrix products per layer: every weight is read
# once and used for one multiply-add (or four), so the step runs at the speed one core reads
# the weights (~47 GB/s here; 512 KiB of float32 weights at H = 128 — a core's whole L2).
# Two cores each reading half of them halve that. The caller's thread and a helper thread
# split the work (:func:`_stream_part`): the caller the f and i gate columns of both
# products, the helper the o and C̃ columns, a barrier, then each the gate math, cell state
# and output of half of the units (and a barrier before the next layer). The helper cannot be handed a job through Python (a wake-up takes tens of
# microseconds, more than the step): it waits in compiled code, spinning, for a job posted in
# shared memory, and returns to Python (to sleep) after a while without one. The job's
# arrays reach it as addresses in a mailbox. Both threads run the same function on their
# units, and the caller runs it on all units when the helper is not there: each output
# element is computed by the same code either way, so results never depend on whether the
# helper took part (tested: the same bits).
#
# ctl (int64, layout in _common): the state, the barrier counter, the stop request, then the
# mailbox: dtype code, L, B, D, H, x, h_prev, c_prev, h, c, z, (Wx, Wh, b) per layer.
_MB_WORDS = STREAM_CTL_WORDS - STREAM_MAILBOX
STREAM_MAX_LAYERS = (_MB_WORDS - 11) // 3  # layers a mailbox holds (9)


@intrinsic
def _cas(typingctx, addr, old, new):
    """Atomically: if the int64 at ``addr`` equals ``old``, set it to ``new``; True if it did."""
    sig = types.boolean(types.int64, types.int64, types.int64)

    def codegen(context, builder, sig, args):
        ptr = builder.inttoptr(args[0], ir.IntType(64).as_pointer())
        res = builder.cmpxchg(ptr, args[1], args[2], "seq_cst", "seq_cst")
        return builder.extract_value(res, 1)
    return sig, codegen


@intrinsic
def _atomic_store(typingctx, addr, val):
    """Atomically store ``val`` into the int64 at ``addr`` (sequentially consistent)."""
    sig = types.void(types.int64, types.int64)

    def codegen(context, builder, sig, args):
        ptr = builder.inttoptr(args[0], ir.IntType(64).as_pointer())
        builder.store_atomic(args[1], ptr, "seq_cst", 8)
        return context.get_dummy_value()
    return sig, codegen


@intrinsic
def _pointer(typingctx, addr, like):
    """The int64 ``addr`` as a pointer to elements of ``like``'s type (for ``carray``)."""
    if not isinstance(like, types.Float):
        return None
    sig = types.CPointer(like)(types.int64, like)

    def codegen(context, builder, sig, args):
        return builder.inttoptr(args[0], context.get_value_type(sig.return_type))
    return sig, codegen


@register_jitable
def _vecmat_add_band(v, W, c0, z):
    """``z (N,) += v (K,) · W[:, c0:c0+N]``: :func:`_vecmat_add` on a band of W's columns,
    with the same expression for every element (so the same bits as the whole row gives)."""
    K = W.shape[0]
    N = z.shape[0]
    c1 = c0 + N
    k = 0
    while k + 8 <= K:
        a0, a1, a2, a3 = v[k], v[k + 1], v[k + 2], v[k + 3]
        a4, a5, a6, a7 = v[k + 4], v[k + 5], v[k + 6], v[k + 7]
        w0, w1, w2, w3 = W[k, c0:c1], W[k + 1, c0:c1], W[k + 2, c0:c1], W[k + 3, c0:c1]
        w4, w5, w6, w7 = W[k + 4, c0:c1], W[k + 5, c0:c1], W[k + 6, c0:c1], W[k + 7, c0:c1]
        for j in range(N):
            z[j] += (((a0 * w0[j] + a1 * w1[j]) + (a2 * w2[j] + a3 * w3[j]))
                     + ((a4 * w4[j] + a5 * w5[j]) + (a6 * w6[j] + a7 * w7[j])))
        k += 8
    while k < K:
        a0, w0 = v[k], W[k, c0:c1]
        for j in range(N):
            z[j] += a0 * w0[j]
        k += 1


@njit(**_JIT_FMA)
def _stream_part(mb, part, barrier, yield_fn, zero):
    """Part ``part`` of a streaming step of L LSTM layers, everything read from the mailbox
    ``mb`` (layout above; ``zero`` of the dtype its addresses point to): part 0 the columns of
    the f and i gates and the gate math of the first half of the units, part 1 the o and C̃
    columns and the second half, part -1 all of it (the caller alone). With ``barrier`` (the
    address of the barrier counter; 0 when alone) the two threads meet after each layer's
    products (the gate math of a unit needs all four of its gates) and after its gate math
    when another layer follows (whose input is all of this one's h)."""
    L, B, D, H = mb[1], mb[2], mb[3], mb[4]
    G = 4 * H
    x = carray(_pointer(mb[5], zero), (B, D))
    h_prev = carray(_pointer(mb[6], zero), (L, B, H))
    c_prev = carray(_pointer(mb[7], zero), (L, B, H))
    h = carray(_pointer(mb[8], zero), (L, B, H))
    c = carray(_pointer(mb[9], zero), (L, B, H))
    z = carray(_pointer(mb[10], zero), (B, 5 * H))  # per row: the four gates, then tanh(C_t)
    if part < 0:
        c0, c1, u0, u1 = 0, G, 0, H
    elif part == 0:
        c0, c1, u0, u1 = 0, 2 * H, 0, H // 2
    else:
        c0, c1, u0, u1 = 2 * H, G, H // 2, H
    half = h.dtype.type(0.5)
    for layer in range(L):
        K = D if layer == 0 else H
        Wx = carray(_pointer(mb[11 + 3 * layer], zero), (K, G))
        Wh = carray(_pointer(mb[12 + 3 * layer], zero), (H, G))
        b = carray(_pointer(mb[13 + 3 * layer], zero), (G,))
        for n in range(B):
            inp = x[n] if layer == 0 else h[layer - 1, n]
            zn = z[n, c0:c1]
            zn[:] = 0.0
            _vecmat_add_band(inp, Wx, c0, zn)  # x_t·Wx, this part's columns
            _vecmat_add_band(h_prev[layer, n], Wh, c0, zn)  # + h_{t-1}·Wh
        if barrier != 0:
            _barrier(barrier, 4 * layer + 2, yield_fn)
        for n in range(B):
            zn = z[n]
            for g in range(3):  # f_t, i_t, o_t = σ(W·[h_{t-1}, x_t] + b)
                zg, bg = zn[g * H + u0:g * H + u1], b[g * H + u0:g * H + u1]
                for j in range(u1 - u0):
                    zg[j] = half * tanh(half * (zg[j] + bg[j])) + half
            zg, bg = zn[3 * H + u0:3 * H + u1], b[3 * H + u0:3 * H + u1]
            for j in range(u1 - u0):  # C̃_t = tanh(W_C·[h_{t-1}, x_t] + b_C)
                zg[j] = tanh(zg[j] + bg[j])
            _lstm_cell(zn[u0:u1], zn[H + u0:H + u1], zn[2 * H + u0:2 * H + u1], zg,
                       c_prev[layer, n, u0:u1], c[layer, n, u0:u1], zn[4 * H + u0:4 * H + u1],
                       h[layer, n, u0:u1])
        if barrier != 0 and layer + 1 < L:
            _barrier(barrier, 4 * layer + 4, yield_fn)


@njit(**_JIT_FMA)
def lstm_stream_step_two(x, h_prev, c_prev, Wxs, Whs, bs, h, c, ctl, yield_fn):
    """:func:`lstm_stream_step` with the helper thread's help when it is waiting
    (:func:`lstm_stream_helper`): this thread then computes part 0 of :func:`_stream_part`,
    the helper part 1; otherwise this thread all of it. Returns 0, 1/2/3 for NaN or inf in
    ``x``/``h_prev``/``c_prev`` (nothing written), or 4: done alone because no helper was
    waiting (the caller may start one)."""
    bad = _nonfinite_input(x, h_prev, c_prev)
    if bad:
        return bad
    L, B, H = h.shape
    zero = h.dtype.type(0.0)
    z = np.empty((B, 5 * H), h.dtype)  # the gates and tanh(C_t), shared by the two threads
    mb = np.empty(max(_MB_WORDS, 11 + 3 * L), np.int64)
    mb[0] = 0 if h.itemsize == 4 else 1
    mb[1] = L
    mb[2] = B
    mb[3] = x.shape[1]
    mb[4] = H
    mb[5] = _address(x)
    mb[6] = _address(h_prev)
    mb[7] = _address(c_prev)
    mb[8] = _address(h)
    mb[9] = _address(c)
    mb[10] = _address(z)
    for layer in range(L):
        mb[11 + 3 * layer] = _address(Wxs[layer])
        mb[12 + 3 * layer] = _address(Whs[layer])
        mb[13 + 3 * layer] = _address(bs[layer])
    state, barrier = _address(ctl) + 8 * STREAM_STATE, _address(ctl) + 8 * STREAM_BARRIER
    if H < 2 or L > STREAM_MAX_LAYERS or not _cas(state, STREAM_READY, STREAM_CLAIMED):
        _stream_part(mb, -1, 0, yield_fn, zero)
        return 4
    ctl[STREAM_MAILBOX:] = mb[:_MB_WORDS]
    ctl[STREAM_BARRIER] = 0
    _atomic_store(state, STREAM_POSTED)
    _stream_part(mb, 0, barrier, yield_fn, zero)
    spins = 0
    while _atomic_load(state) == STREAM_POSTED:  # the helper sets READY when its part is done
        _relax(yield_fn, spins)
        spins += 1
    return 0


@njit(**_JIT_FMA)
def lstm_stream_helper(ctl, yield_fn, idle_cycles):
    """The helper thread's wait (see above): marks itself waiting, then spins until a job is
    posted (runs part 1 of :func:`_stream_part`, marks itself waiting again), a stop is
    requested (the stop word non-zero), or ``idle_cycles`` pass without a job; then returns.
    Leaving is a compare-and-swap from waiting to off, so a job posted at that moment is
    still done."""
    state, barrier = _address(ctl) + 8 * STREAM_STATE, _address(ctl) + 8 * STREAM_BARRIER
    stop = _address(ctl) + 8 * STREAM_STOP
    _atomic_store(state, STREAM_READY)
    last = _cycles()
    spins = 0
    while True:
        now = _atomic_load(state)
        if now == STREAM_POSTED:
            mb = ctl[STREAM_MAILBOX:].copy()  # an array of the kind of the caller's mailbox
            if mb[0] == 0:
                _stream_part(mb, 1, barrier, yield_fn, np.float32(0.0))
            else:
                _stream_part(mb, 1, barrier, yield_fn, np.float64(0.0))
            _atomic_store(state, STREAM_READY)
            last = _cycles()
            spins = 0
            continue
        if now == STREAM_READY and (_atomic_load(stop) != 0 or _cycles() - last > idle_cycles):
            if _cas(state, STREAM_READY, STREAM_OFF):
                return
            continue
        _relax(yield_fn, spins)
        spins += 1


@njit(**_JIT_FMA)
def rnn_stream_step(x, h_prev, Wxs, Whs, bs, h, relu):
    """One whole step of a stack of L RNN layers for a few rows, products included (see
    :func:`lstm_stream_step`): writes ``h (L, B, H)``, which must not overlap ``h_prev``.
    Returns 0, or 1/2 for NaN or inf in ``x``/``h_prev`` (nothing written)."""
    if not _finite(x):
        return 1
    if not _finite(h_prev.reshape(-1, h_prev.shape[2])):
        return 2
    L, B, H = h.shape
    for layer in range(L):
        inp = x if layer == 0 else h[layer - 1]
        Wx, Wh, b = Wxs[layer], Whs[layer], bs[layer]
        for n in range(B):
            hn = h[layer, n]
            hn[:] = 0.0
            _vecmat_add(inp[n], Wx, hn)
            _vecmat_add(h_prev[layer, n], Wh, hn)
            _rnn_row_forward(hn, b, hn, relu)
    return 0


# -- RNN -------------------------------------------------------------------------------
@register_jitable
def _rnn_row_forward(zn, b, hn, relu):
    """``hn = act(zn + b)`` for one row: ``zn (H,)`` holds x_t·Wx + h_{t-1}·Wh."""
    if relu:
        zero = hn.dtype.type(0.0)
        for j in range(hn.shape[0]):
            hn[j] = max(zn[j] + b[j], zero)
    else:
        for j in range(hn.shape[0]):
            hn[j] = tanh(zn[j] + b[j])


@register_jitable
def _rnn_row_backward(dhn, hn, dzn, relu):
    """``dzn = dL/dh_t * act'`` for one row, from the step's output ``hn``."""
    one, zero = hn.dtype.type(1.0), hn.dtype.type(0.0)
    if relu:
        for j in range(hn.shape[0]):
            dzn[j] = dhn[j] if hn[j] > zero else zero  # relu' = [h > 0]
    else:
        for j in range(hn.shape[0]):
            dzn[j] = dhn[j] * (one - hn[j] * hn[j])  # tanh' = 1 - h²


@njit(**_JIT_FMA)
def rnn_step_forward(z, rec, b, h_prev, h, relu, lengths, t):
    """``h_t = act(x_t·Wx + h_{t-1}·Wh + b)``: ``z (B, H)`` holds x_t·Wx (overwritten),
    ``rec`` = h_{t-1}·Wh; act is tanh or (``relu``) max(·, 0); padding rows carry ``h_prev``."""
    for n in range(h.shape[0]):
        if t >= lengths[n]:
            h[n, :] = h_prev[n, :]
            continue
        zn, recn = z[n], rec[n]
        for j in range(zn.shape[0]):
            zn[j] += recn[j]
        _rnn_row_forward(zn, b, h[n], relu)


@njit(**_JIT_FMA)
def rnn_step_backward(dh, dhT, dy, h, dz, relu, lengths, t):
    """BPTT through one RNN step, ``dz = dL/dh_t * act'``; ``dh``, ``dhT``, ``dy`` as in
    :func:`lstm_step_backward`, ``h (B, H)`` the step's output."""
    for n in range(h.shape[0]):
        if t >= lengths[n]:
            dz[n, :] = 0.0
            continue
        _dh_total(dh[n], dhT[n], dy[n], t + 1 < lengths[n])
        _rnn_row_backward(dh[n], h[n], dz[n], relu)


@njit(**_JIT_FMA)
def rnn_forward_loop(gemm, gx, Wh, Whp, b, h, lengths, r0, r1, relu):
    """Steps 0..T-1 of rows ``r0:r1``, as :func:`lstm_forward_loop` for the RNN:
    ``gx (T, B, H)`` holds x_t·Wx on entry (the pre-activations on exit), ``Wh (H, H)`` and
    ``h (T+1, B, H)`` (h_0 in ``h[0]``) C-contiguous. Padding rows carry their state."""
    for t in range(gx.shape[0]):
        _times_w(gemm, h, t, Wh, Whp, gx, t, r0, r1, True)  # + h_{t-1}·Wh, in place
        for n in range(r0, r1):
            if t >= lengths[n]:
                h[t + 1, n, :] = h[t, n, :]
            else:
                _rnn_row_forward(gx[t, n], b, h[t + 1, n], relu)


@njit(**_JIT_FMA)
def rnn_backward_loop(gemm, dh, dhT, dy, h, dz, WhT, WhTp, lengths, r0, r1, relu):
    """BPTT over steps T-1..0 of rows ``r0:r1``, as :func:`lstm_backward_loop` for the RNN:
    ``h (T+1, B, H)`` the forward's states, ``WhT (H, H)`` a C-contiguous copy of Whᵀ;
    writes ``dz (T, B, H)`` and ends with dL/dh_0 in ``dh``."""
    T = dz.shape[0]
    dh3 = dh.reshape((1,) + dh.shape)  # (1, B, H), as _times_w wants
    for t in range(T - 1, -1, -1):
        dyt = dy[t] if dy.shape[0] == T else dy[0]
        dzt = dz[t]
        for n in range(r0, r1):
            if t >= lengths[n]:
                dzt[n, :] = 0.0
                continue
            _dh_total(dh[n], dhT[n], dyt[n], t + 1 < lengths[n])
            _rnn_row_backward(dh[n], h[t + 1, n], dzt[n], relu)
        _times_w(gemm, dz, t, WhT, WhTp, dh3, 0, r0, r1, False)  # dL/dh_{t-1} = dz_t·Whᵀ
