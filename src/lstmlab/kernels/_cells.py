"""The recurrent cells of the compiled kernels: the math of one step, forward and backward.

Dimensions: T time, B batch, H hidden units, G gate blocks (4 for the LSTMs, 1 for the RNN).

A cell is three NamedTuples and a few functions, nothing else; the time loops, threads and
matrix products (``_loops.py``) are the same for every cell:

* a **spec** — what the step needs besides the weights (the bias, peepholes, options). Its
  type selects the cell: every function below is a stub whose compiled body is chosen by
  ``@overload`` on the spec's type (numba's public extension API).
* a **tape** — what the forward writes, indexed by time: ``z (Tz, B, G·H)`` receives x_t·Wx
  from the loop (and holds what the cell makes of it), ``h (T+1, B, H)`` the hidden states
  (``h[0]`` = h_0), plus the cell's own arrays. Arrays shorter than T are rings, indexed by
  time modulo their length: inference keeps two cell states and a chunk of gates, training
  all of them.
* a **grad** — what the backward keeps: ``dz (T, B, G·H)`` the gradients on the
  pre-activations, ``dh (B, H)`` the gradient on h flowing to the step before, plus the
  cell's own carries.

The functions (each on rows r0..r1 and hidden units u0..u1 of one step, so that threads can
share a step by rows or by units):

* ``cell_forward(spec, tape, zh, t, r0, r1, u0, u1, lengths)``: step t from ``tape.z[t]``
  (x_t·Wx) and ``zh (B, G·H)`` (h_{t-1}·Wh). Past a sequence's length the state is carried.
* ``cell_backward(spec, tape, grad, dy, t, ...)``: ``grad.dh`` holds dL/dh_t from the steps
  after t; adds the output's ``dy[t]`` (``dy`` may have no rows: no output gradient), writes
  ``grad.dz[t]``, and leaves in ``grad.dh`` the part of dL/dh_{t-1} that does not pass
  through Wh (the loop adds ``dz_t·Whᵀ``).
* ``cell_param_grads(spec, tape, grad, out, u0, u1)``: gradients of the spec's own
  parameters (peepholes), after the loop.
* ``cell_states(tape)``: the tape's state arrays (h first), for the streaming step.
* ``stream_tape(spec, B, H, dtype)``: a tape of one step, for the streaming step.

The equations are those of the NumPy reference kernels (``lstm.py``, ``rnn.py``,
``lstm_peephole.py``), written in the same order, so that results agree to round-off.
tanh saturates to exactly ±1 (float32 from |x| ≈ 8.5, float64 from 20), so a saturated
gate's derivative is exactly 0, as in the reference. Each step runs as a few passes over
slices of a row, each pass touching two or three arrays, which is what lets the compiler
turn it into vector instructions.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic, overload, register_jitable

# -- the cells' data ------------------------------------------------------------------


class LSTMSpec(NamedTuple):
    b: np.ndarray  # (4H,) bias, gate blocks f, i, o, C̃ (zeros without bias)


class LSTMTape(NamedTuple):
    z: np.ndarray  # (Tz, B, 4H) x_t·Wx in; activated gates f, i, o, C̃ out
    h: np.ndarray  # (T+1, B, H) hidden states
    c: np.ndarray  # (Tc, B, H) cell states, c[0] = c_0 (ring of 2 in inference)
    tc: np.ndarray  # (Tt, B, H) tanh(C_t) (ring of 1 in inference)


class LSTMGrad(NamedTuple):
    dz: np.ndarray  # (T, B, 4H)
    dh: np.ndarray  # (B, H)
    dc: np.ndarray  # (B, H) dL/dC_t carried to the step before


class RNNSpec(NamedTuple):
    b: np.ndarray  # (H,)
    relu: bool  # h_t = relu(...) instead of tanh(...)


class RNNTape(NamedTuple):
    z: np.ndarray  # (Tz, B, H) x_t·Wx (a ring: only the step's own is read)
    h: np.ndarray  # (T+1, B, H)


class RNNGrad(NamedTuple):
    dz: np.ndarray  # (T, B, H)
    dh: np.ndarray  # (B, H)


class PeepholeSpec(NamedTuple):
    b: np.ndarray  # (4H,)
    P: np.ndarray  # (3H,) peepholes p_f, p_i, p_o (zeros without)
    clip: np.floating  # clamp of every pre-activation to [-clip, clip], in the dtype; 0: none
    input_forget: bool  # coupled gates, f_t = 1 - i_t


class PeepholeTape(NamedTuple):
    z: np.ndarray  # (Tz, B, 4H)
    h: np.ndarray  # (T+1, B, H)
    c: np.ndarray  # (Tc, B, H)
    tc: np.ndarray  # (Tt, B, H)
    mask: np.ndarray  # (Tm, B, 4H) 1 where a pre-activation was inside the clip


class PeepholeGrad(NamedTuple):
    dz: np.ndarray  # (T, B, 4H)
    dh: np.ndarray  # (B, H)
    dc: np.ndarray  # (B, H)


# -- safe nonlinearities -------------------------------------------------------------
@intrinsic
def _bits_to_f64(typingctx, bits):
    """The float64 whose IEEE bits are the int64 ``bits``."""
    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], ir.DoubleType())
    return types.float64(types.int64), codegen


@intrinsic
def _f64_to_bits(typingctx, x):
    """The IEEE bits of the float64 ``x``, as an int64."""
    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], ir.IntType(64))
    return types.int64(types.float64), codegen


_LOG2E = 1.4426950408889634
_LN2_HI = 6.93147180369123816490e-01  # ln 2 split so that k·_LN2_HI is exact (fdlibm)
_LN2_LO = 1.90821492927058770002e-10
_ROUND = 6755399441055744.0  # 1.5·2^52: adding it rounds to an integer held in the low bits
_ROUND_BITS = 0x4338000000000000  # the bits of _ROUND


@register_jitable
def _tanh64(v):
    """tanh in float64, within 3 ulp, branch-free (it vectorises):
    ``tanh|v| = -expm1(-2|v|) / (2 + expm1(-2|v|))`` with expm1 by range reduction
    ``2|v| = k·ln2 + r``, a degree-13 Taylor polynomial on |r| <= ln2/2, and 2^-k built
    from its exponent bits. NaN stays NaN."""
    y = 2.0 * min(abs(v), 20.0)  # tanh(20) is 1.0 in float64
    kr = y * _LOG2E + _ROUND  # k in the low bits
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
    s = _bits_to_f64((1023 - (_f64_to_bits(kr) - _ROUND_BITS)) << 52)  # 2^-k
    e = s * em1 + (s - 1.0)  # expm1(-y) = 2^-k·exp(r) - 1
    t = -e / (2.0 + e)
    t = t if v >= 0.0 else -t
    return t if v == v else v


@intrinsic
def _bits_to_f32(typingctx, bits):
    """The float32 whose IEEE bits are the int32 ``bits``."""
    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], ir.FloatType())
    return types.float32(types.int32), codegen


@intrinsic
def _f32_to_bits(typingctx, x):
    """The IEEE bits of the float32 ``x``, as an int32."""
    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], ir.IntType(32))
    return types.int32(types.float32), codegen


_F = np.float32
_ONE32, _TWO32, _ZERO32, _CLAMP32 = _F(1.0), _F(2.0), _F(0.0), _F(9.0)
_LOG2E32 = _F(_LOG2E)
_LN2_HI32, _LN2_LO32 = _F(0.693359375), _F(-2.12194440e-4)  # k·_LN2_HI32 exact for k < 2^15
_ROUND32 = _F(12582912.0)  # 1.5·2^23
_ROUND32_BITS = np.int32(0x4B400000)
_EXPM1_32 = tuple(_F(1.0 / n) for n in (5040, 720, 120, 24, 6, 2))  # 1/7! .. 1/2!


@register_jitable
def _tanh32(v):
    """tanh in float32 arithmetic, within 3 ulp: :func:`_tanh64`'s method with a degree-7
    polynomial. Exactly ±1 from |v| ≈ 8.5 (where tanh rounds to ±1 within an ulp), so the
    derivative 1 - tanh² of a saturated unit is exactly 0."""
    y = _TWO32 * min(abs(v), _CLAMP32)
    kr = y * _LOG2E32 + _ROUND32
    k = kr - _ROUND32
    r = (k * _LN2_HI32 - y) + k * _LN2_LO32
    p = _EXPM1_32[0]
    p = p * r + _EXPM1_32[1]
    p = p * r + _EXPM1_32[2]
    p = p * r + _EXPM1_32[3]
    p = p * r + _EXPM1_32[4]
    p = p * r + _EXPM1_32[5]
    em1 = r + r * r * p
    s = _bits_to_f32((np.int32(127) - (_f32_to_bits(kr) - _ROUND32_BITS)) << np.int32(23))
    e = s * em1 + (s - _ONE32)
    t = -e / (_TWO32 + e)
    t = t if v >= _ZERO32 else -t
    return t if v == v else v


def tanh(x):  # pragma: no cover - a stub: compiled code gets the overload below
    raise NotImplementedError("tanh is only callable from compiled code")


@overload(tanh)
def _tanh(x):
    if x == types.float32:
        return lambda x: _tanh32(x)
    if x == types.float64:
        return lambda x: _tanh64(x)


def sigmoid(x):  # pragma: no cover - a stub: compiled code gets the overload below
    raise NotImplementedError("sigmoid is only callable from compiled code")


@overload(sigmoid)
def _sigmoid(x):
    """σ(x) = ½·tanh(x/2) + ½: exact, never overflows (as the reference's ``sigmoid``)."""
    if x in (types.float32, types.float64):
        half = np.float32(0.5) if x == types.float32 else 0.5  # in x's precision

        def impl(x):
            return half * tanh(half * x) + half
        return impl


# -- passes over a step's rows r0..r1 and units u0..u1 -------------------------------------
# Each pass touches two to four arrays, so the compiler can turn its inner loop into vector
# instructions. Column indices are unsigned: numba wraps negative indices around, and the
# test for that in every access keeps a loop from vectorising unless the index is known to
# be non-negative. Block k of a row of G·H columns starts at column k·H. Rows past their
# sequence's length (t >= lengths[r]) are skipped.
@register_jitable
def _cols(k, H, u0, u1):
    """Columns of units u0..u1 in gate block k, unsigned."""
    return np.uint64(k * H + u0), np.uint64(k * H + u1)


@register_jitable
def _identity(v):
    return v


def _passes(act):
    """The two passes of a gate's activation ``act``: ``gate(z, b, zh, k, H, ...)`` sets
    block k of z = act((z + b) + zh) (x_t·Wx, the bias, h_{t-1}·Wh), ``apply(z, k, H, ...)``
    block k of z = act(z). One function per activation, so its loop has no branch."""
    @register_jitable
    def gate(z, b, zh, k, H, t, r0, r1, u0, u1, lengths):
        c0, c1 = _cols(k, H, u0, u1)
        for r in range(r0, r1):
            if t < lengths[r]:
                for u in range(c0, c1):
                    z[r, u] = act((z[r, u] + b[u]) + zh[r, u])

    @register_jitable
    def apply(z, k, H, t, r0, r1, u0, u1, lengths):
        c0, c1 = _cols(k, H, u0, u1)
        for r in range(r0, r1):
            if t < lengths[r]:
                for u in range(c0, c1):
                    z[r, u] = act(z[r, u])
    return gate, apply


(_sigmoid_gate, _sigmoid_apply), (_tanh_gate, _tanh_apply) = _passes(sigmoid), _passes(tanh)
_linear_gate = _passes(_identity)[0]


@register_jitable
def _coupled(z, H, t, r0, r1, u0, u1, lengths):
    """The coupled forget gate f_t = 1 - i_t (blocks 0 and 1 of z)."""
    one, c0, c1, i = z.dtype.type(1.0), *_cols(0, H, u0, u1), np.uint64(H)
    for r in range(r0, r1):
        if t < lengths[r]:
            for u in range(c0, c1):
                z[r, u] = one - z[r, u + i]


@register_jitable
def _peek(z, k, H, p, c, t, r0, r1, u0, u1, lengths):
    """Block k of z += p ⊙ c: a peephole (p has 3H entries, block k of it)."""
    c0, c1 = _cols(0, H, u0, u1)
    o = np.uint64(k * H)
    for r in range(r0, r1):
        if t < lengths[r]:
            for u in range(c0, c1):
                z[r, u + o] += p[u + o] * c[r, u]


@register_jitable
def _clip(z, mask, k, H, clip, t, r0, r1, u0, u1, lengths):
    """Block k: mask = |z| < clip (1 or 0), then z clamped to [-clip, clip]."""
    one, zero = z.dtype.type(1.0), z.dtype.type(0.0)
    c0, c1 = _cols(k, H, u0, u1)
    for r in range(r0, r1):
        if t < lengths[r]:
            for u in range(c0, c1):
                mask[r, u] = one if abs(z[r, u]) < clip else zero
                z[r, u] = min(max(z[r, u], -clip), clip)


@register_jitable
def _cell_state(c, gates, c_prev, H, t, r0, r1, u0, u1, lengths):
    """C_t = f_t * C_{t-1} + i_t * C̃_t, from the gate blocks f, i, o, C̃."""
    c0, c1 = _cols(0, H, u0, u1)
    i, g = np.uint64(H), np.uint64(3 * H)
    for r in range(r0, r1):
        if t < lengths[r]:
            for u in range(c0, c1):
                c[r, u] = gates[r, u] * c_prev[r, u] + gates[r, u + i] * gates[r, u + g]


@register_jitable
def _hidden(h, tc, gates, c, H, t, r0, r1, u0, u1, lengths):
    """tanh(C_t), and h_t = o_t * tanh(C_t)."""
    c0, c1 = _cols(0, H, u0, u1)
    o = np.uint64(2 * H)
    for r in range(r0, r1):
        if t < lengths[r]:
            for u in range(c0, c1):
                tc[r, u] = tanh(c[r, u])
            for u in range(c0, c1):
                h[r, u] = gates[r, u + o] * tc[r, u]


@register_jitable
def _carry(states, t, r0, r1, u0, u1, lengths):
    """Past a sequence's length its state is carried: state[t+1] = state[t] (ring indices)."""
    c0, c1 = _cols(0, 0, u0, u1)
    for s in states:
        prev, new = s[t % s.shape[0]], s[(t + 1) % s.shape[0]]
        for r in range(r0, r1):
            if t >= lengths[r]:
                for u in range(c0, c1):
                    new[r, u] = prev[r, u]


@register_jitable
def _dh_total(dh, dy, t, r0, r1, u0, u1, lengths):
    """dL/dh_t = what the steps after t sent back + the output's own gradient dy[t]."""
    if dy.shape[0]:
        c0, c1 = _cols(0, 0, u0, u1)
        dy_t = dy[t]
        for r in range(r0, r1):
            if t < lengths[r]:
                for u in range(c0, c1):
                    dh[r, u] += dy_t[r, u]


@register_jitable
def _padding_gradient(dz, G, H, t, r0, r1, u0, u1, lengths):
    """Padded steps get no gate gradient (dh and the carried gradients pass unchanged)."""
    zero = dz.dtype.type(0.0)
    for r in range(r0, r1):
        if t >= lengths[r]:
            for k in range(G):
                c0, c1 = _cols(k, H, u0, u1)
                for u in range(c0, c1):
                    dz[r, u] = zero


@register_jitable
def _dgate(dz, k, H, a, ka, b, kb, s, ks, act, t, r0, r1, u0, u1, lengths):
    """Block k of dz = a[block ka] * b[block kb] * act'(s[block ks]): act 0 σ' = s(1-s),
    1 tanh' = 1 - s², 2 the product alone. Block index -1: a (B, H) array."""
    one = dz.dtype.type(1.0)
    c0, c1 = _cols(0, H, u0, u1)
    o, oa, ob, os = (np.uint64(k * H), np.uint64(max(ka, 0) * H), np.uint64(max(kb, 0) * H),
                     np.uint64(max(ks, 0) * H))
    for r in range(r0, r1):
        if t < lengths[r]:
            for u in range(c0, c1):
                d = a[r, u + oa] * b[r, u + ob]
                v = s[r, u + os]
                dz[r, u + o] = d * (v * (one - v)) if act == 0 else (
                    d * (one - v * v) if act == 1 else d)


@register_jitable
def _dcell_from_h(dc, dh, gates, tc, H, t, r0, r1, u0, u1, lengths):
    """dL/dC_t += dL/dh_t * o_t * (1 - tanh²(C_t)): backprop h_t = o_t * tanh(C_t)."""
    one = dc.dtype.type(1.0)
    c0, c1 = _cols(0, H, u0, u1)
    o = np.uint64(2 * H)
    for r in range(r0, r1):
        if t < lengths[r]:
            for u in range(c0, c1):
                dc[r, u] += dh[r, u] * gates[r, u + o] * (one - tc[r, u] * tc[r, u])


@register_jitable
def _highway(dc, dh, gates, t, r0, r1, u0, u1, lengths):
    """dL/dC_{t-1} = dL/dC_t * f_t, and dh to 0: dL/dh_{t-1} is all dz_t·Whᵀ (added by the
    loop)."""
    zero = dh.dtype.type(0.0)
    c0, c1 = _cols(0, 0, u0, u1)
    for r in range(r0, r1):
        if t < lengths[r]:
            for u in range(c0, c1):
                dc[r, u] *= gates[r, u]
                dh[r, u] = zero


# -- the stubs every cell implements ----------------------------------------------------
def cell_forward(spec, tape, zh, t, r0, r1, u0, u1, lengths):  # pragma: no cover
    raise NotImplementedError


def cell_backward(spec, tape, grad, dy, t, r0, r1, u0, u1, lengths):  # pragma: no cover
    raise NotImplementedError


def cell_param_grads(spec, tape, grad, out, u0, u1):  # pragma: no cover
    raise NotImplementedError


def cell_states(tape):  # pragma: no cover
    raise NotImplementedError


def stream_tape(spec, B, H, dtype):  # pragma: no cover
    raise NotImplementedError


def _is(t, cls) -> bool:
    return isinstance(t, types.BaseNamedTuple) and t.instance_class is cls


# -- the lecture's LSTM -----------------------------------------------------------------
_SIG, _TANH, _NONE = 0, 1, 2  # act of the passes


@overload(cell_forward)
def _lstm_forward(spec, tape, zh, t, r0, r1, u0, u1, lengths):
    if not _is(spec, LSTMSpec):
        return None

    def impl(spec, tape, zh, t, r0, r1, u0, u1, lengths):
        H, b = tape.h.shape[2], spec.b
        z = tape.z[t % tape.z.shape[0]]  # x_t·Wx in, the gates f, i, o, C̃ out
        c_prev, c = tape.c[t % tape.c.shape[0]], tape.c[(t + 1) % tape.c.shape[0]]
        tc, h = tape.tc[t % tape.tc.shape[0]], tape.h[t + 1]
        rows = (t, r0, r1, u0, u1, lengths)
        _sigmoid_gate(z, b, zh, 0, H, *rows)  # f_t = σ(W_f·[h_{t-1}, x_t] + b_f)
        _sigmoid_gate(z, b, zh, 1, H, *rows)  # i_t = σ(W_i·[h_{t-1}, x_t] + b_i)
        _sigmoid_gate(z, b, zh, 2, H, *rows)  # o_t = σ(W_o·[h_{t-1}, x_t] + b_o)
        _tanh_gate(z, b, zh, 3, H, *rows)  # C̃_t = tanh(W_C·[h_{t-1}, x_t] + b_C)
        _cell_state(c, z, c_prev, H, *rows)  # C_t = f_t * C_{t-1} + i_t * C̃_t
        _hidden(h, tc, z, c, H, *rows)  # h_t = o_t * tanh(C_t)
        _carry((tape.h, tape.c), *rows)
    return impl


@overload(cell_backward)
def _lstm_backward(spec, tape, grad, dy, t, r0, r1, u0, u1, lengths):
    if not _is(spec, LSTMSpec):
        return None

    def impl(spec, tape, grad, dy, t, r0, r1, u0, u1, lengths):
        H = tape.h.shape[2]
        g, tc, c_prev = tape.z[t], tape.tc[t], tape.c[t]  # gates f, i, o, C̃ of step t
        dz, dh, dc = grad.dz[t], grad.dh, grad.dc
        rows = (t, r0, r1, u0, u1, lengths)
        _dh_total(dh, dy, *rows)
        # backprop h_t = o_t * tanh(C_t): into o_t through σ', into C_t through tanh'
        _dgate(dz, 2, H, dh, -1, tc, -1, g, 2, _SIG, *rows)
        _dcell_from_h(dc, dh, g, tc, H, *rows)
        # backprop C_t = f_t * C_{t-1} + i_t * C̃_t into f_t, i_t (σ') and C̃_t (tanh')
        _dgate(dz, 0, H, dc, -1, c_prev, -1, g, 0, _SIG, *rows)
        _dgate(dz, 1, H, dc, -1, g, 3, g, 1, _SIG, *rows)
        _dgate(dz, 3, H, dc, -1, g, 1, g, 3, _TANH, *rows)
        _highway(dc, dh, g, *rows)  # dL/dC_{t-1} = dL/dC_t * f_t
        _padding_gradient(dz, 4, H, *rows)
    return impl


@overload(cell_param_grads)
def _no_param_grads(spec, tape, grad, out, u0, u1):
    if _is(spec, LSTMSpec) or _is(spec, RNNSpec):
        return lambda spec, tape, grad, out, u0, u1: None  # no parameters besides W and b


@overload(cell_states)
def _states(tape):
    if _is(tape, LSTMTape) or _is(tape, PeepholeTape):
        return lambda tape: (tape.h, tape.c)
    if _is(tape, RNNTape):
        return lambda tape: (tape.h,)


@overload(stream_tape)
def _stream_tape(spec, B, H, dtype):
    if _is(spec, LSTMSpec):
        def impl(spec, B, H, dtype):
            return LSTMTape(np.empty((1, B, 4 * H), dtype), np.empty((2, B, H), dtype),
                            np.empty((2, B, H), dtype), np.empty((1, B, H), dtype))
        return impl
    if _is(spec, RNNSpec):
        return lambda spec, B, H, dtype: RNNTape(np.empty((1, B, H), dtype),
                                                 np.empty((2, B, H), dtype))
    if _is(spec, PeepholeSpec):
        def impl(spec, B, H, dtype):
            return PeepholeTape(np.empty((1, B, 4 * H), dtype), np.empty((2, B, H), dtype),
                                np.empty((2, B, H), dtype), np.empty((1, B, H), dtype),
                                np.empty((1, B, 4 * H), dtype))
        return impl


# -- the lecture's vanilla RNN ----------------------------------------------------------
@overload(cell_forward)
def _rnn_forward(spec, tape, zh, t, r0, r1, u0, u1, lengths):
    if not _is(spec, RNNSpec):
        return None

    def impl(spec, tape, zh, t, r0, r1, u0, u1, lengths):
        z, h = tape.z[t % tape.z.shape[0]], tape.h[t + 1]
        rows = (t, r0, r1, u0, u1, lengths)
        zero = h.dtype.type(0.0)
        if spec.relu:
            _linear_gate(z, spec.b, zh, 0, 0, *rows)  # W [h_{t-1}, x_t] + b
        else:
            _tanh_gate(z, spec.b, zh, 0, 0, *rows)  # tanh(W [h_{t-1}, x_t] + b)
        c0, c1 = _cols(0, 0, u0, u1)
        for r in range(r0, r1):
            if t < lengths[r]:
                for u in range(c0, c1):  # h_t = tanh(...) or relu(...)
                    h[r, u] = max(z[r, u], zero) if spec.relu else z[r, u]
        _carry((tape.h,), *rows)
    return impl


@overload(cell_backward)
def _rnn_backward(spec, tape, grad, dy, t, r0, r1, u0, u1, lengths):
    if not _is(spec, RNNSpec):
        return None

    def impl(spec, tape, grad, dy, t, r0, r1, u0, u1, lengths):
        h, dz, dh = tape.h[t + 1], grad.dz[t], grad.dh
        rows = (t, r0, r1, u0, u1, lengths)
        one, zero = h.dtype.type(1.0), h.dtype.type(0.0)
        _dh_total(dh, dy, *rows)
        c0, c1 = _cols(0, 0, u0, u1)
        for r in range(r0, r1):
            if t < lengths[r]:
                for u in range(c0, c1):  # relu' = [h > 0], tanh' = 1 - h²
                    if spec.relu:
                        dz[r, u] = dh[r, u] if h[r, u] > zero else zero
                    else:
                        dz[r, u] = dh[r, u] * (one - h[r, u] * h[r, u])
                    dh[r, u] = zero
        _padding_gradient(dz, 1, 0, *rows)
    return impl


# -- the peephole LSTM (ONNX's LSTM: peepholes, clip, coupled input-forget gate) -------
@register_jitable
def _times_dact(dz, k, H, g, act, t, r0, r1, u0, u1, lengths):
    """Block k of dz *= act'(block k of the gates): act 0 σ' = g(1-g), 1 tanh' = 1 - g²."""
    one = dz.dtype.type(1.0)
    c0, c1 = _cols(k, H, u0, u1)
    for r in range(r0, r1):
        if t < lengths[r]:
            for u in range(c0, c1):
                v = g[r, u]
                dz[r, u] *= v * (one - v) if act == 0 else one - v * v


@register_jitable
def _mask(dz, mask, k, H, t, r0, r1, u0, u1, lengths):
    """Block k of dz *= mask: no gradient through a clamped pre-activation."""
    c0, c1 = _cols(k, H, u0, u1)
    for r in range(r0, r1):
        if t < lengths[r]:
            for u in range(c0, c1):
                dz[r, u] *= mask[r, u]


@register_jitable
def _peek_back(dc, p, k, dz, H, t, r0, r1, u0, u1, lengths):
    """dc += block k of dz ⊙ p: the gradient through a peephole onto the cell state."""
    c0, c1 = _cols(0, 0, u0, u1)
    o = np.uint64(k * H)
    for r in range(r0, r1):
        if t < lengths[r]:
            for u in range(c0, c1):
                dc[r, u] += dz[r, u + o] * p[u + o]


@overload(cell_forward)
def _peephole_forward(spec, tape, zh, t, r0, r1, u0, u1, lengths):
    if not _is(spec, PeepholeSpec):
        return None

    def impl(spec, tape, zh, t, r0, r1, u0, u1, lengths):
        H, b, P, clip = tape.h.shape[2], spec.b, spec.P, spec.clip
        z = tape.z[t % tape.z.shape[0]]
        c_prev, c = tape.c[t % tape.c.shape[0]], tape.c[(t + 1) % tape.c.shape[0]]
        tc, h = tape.tc[t % tape.tc.shape[0]], tape.h[t + 1]
        mask = tape.mask[t % tape.mask.shape[0]]
        rows = (t, r0, r1, u0, u1, lengths)
        for k in range(4):
            _linear_gate(z, b, zh, k, H, *rows)  # W·[h_{t-1}, x_t] + b
        _peek(z, 0, H, P, c_prev, *rows)  # the forget gate peeks at C_{t-1}
        _peek(z, 1, H, P, c_prev, *rows)  # the input gate peeks at C_{t-1}
        if clip > 0.0:
            if not spec.input_forget:
                _clip(z, mask, 0, H, clip, *rows)
            _clip(z, mask, 1, H, clip, *rows)
            _clip(z, mask, 3, H, clip, *rows)
        _sigmoid_apply(z, 1, H, *rows)  # i_t
        if spec.input_forget:
            _coupled(z, H, *rows)  # f_t = 1 - i_t
        else:
            _sigmoid_apply(z, 0, H, *rows)  # f_t
        _tanh_apply(z, 3, H, *rows)  # C̃_t
        _cell_state(c, z, c_prev, H, *rows)  # C_t = f_t ⊙ C_{t-1} + i_t ⊙ C̃_t
        _peek(z, 2, H, P, c, *rows)  # the output gate peeks at the new C_t
        if clip > 0.0:
            _clip(z, mask, 2, H, clip, *rows)
        _sigmoid_apply(z, 2, H, *rows)  # o_t
        _hidden(h, tc, z, c, H, *rows)  # h_t = o_t ⊙ tanh(C_t)
        _carry((tape.h, tape.c), *rows)
    return impl


@overload(cell_backward)
def _peephole_backward(spec, tape, grad, dy, t, r0, r1, u0, u1, lengths):
    if not _is(spec, PeepholeSpec):
        return None

    def impl(spec, tape, grad, dy, t, r0, r1, u0, u1, lengths):
        H, P, clip = tape.h.shape[2], spec.P, spec.clip
        g, tc, c_prev = tape.z[t], tape.tc[t], tape.c[t]
        dz, dh, dc = grad.dz[t], grad.dh, grad.dc
        mask = tape.mask[t % tape.mask.shape[0]]
        rows = (t, r0, r1, u0, u1, lengths)
        _dh_total(dh, dy, *rows)
        # backprop h_t = o_t ⊙ tanh(C_t), then o_t = σ(clip(z_o + p_o ⊙ C_t))
        _dgate(dz, 2, H, dh, -1, tc, -1, g, 2, _SIG, *rows)
        if clip > 0.0:
            _mask(dz, mask, 2, H, *rows)
        _dcell_from_h(dc, dh, g, tc, H, *rows)
        _peek_back(dc, P, 2, dz, H, *rows)  # the output gate's peephole on C_t
        # backprop C_t = f_t ⊙ C_{t-1} + i_t ⊙ C̃_t
        _dgate(dz, 0, H, dc, -1, c_prev, -1, g, 0, _NONE, *rows)  # dL/df_t
        _dgate(dz, 1, H, dc, -1, g, 3, g, 1, _NONE, *rows)  # dL/di_t
        _dgate(dz, 3, H, dc, -1, g, 1, g, 3, _NONE, *rows)  # dL/dC̃_t
        if spec.input_forget:  # f_t = 1 - i_t: its gradient goes to i_t
            c0, c1 = _cols(0, 0, u0, u1)
            for r in range(r0, r1):
                if t < lengths[r]:
                    for u in range(c0, c1):
                        dz[r, u + np.uint64(H)] -= dz[r, u]
                        dz[r, u] = dz.dtype.type(0.0)
        else:
            _times_dact(dz, 0, H, g, _SIG, *rows)
        _times_dact(dz, 1, H, g, _SIG, *rows)
        _times_dact(dz, 3, H, g, _TANH, *rows)
        if clip > 0.0:
            _mask(dz, mask, 0, H, *rows)
            _mask(dz, mask, 1, H, *rows)
            _mask(dz, mask, 3, H, *rows)
        _highway(dc, dh, g, *rows)  # dL/dC_{t-1} = dL/dC_t ⊙ f_t ...
        _peek_back(dc, P, 0, dz, H, *rows)  # ... + the forget and input gates' peepholes
        _peek_back(dc, P, 1, dz, H, *rows)
        _padding_gradient(dz, 4, H, *rows)
    return impl


@overload(cell_param_grads)
def _peephole_param_grads(spec, tape, grad, out, u0, u1):
    if not _is(spec, PeepholeSpec):
        return None

    def impl(spec, tape, grad, out, u0, u1):
        """``out (3H,)``: dL/dp_f, dL/dp_i (from C_{t-1}) and dL/dp_o (from C_t), summed over
        steps and rows in order (padding has dz = 0)."""
        T, B = grad.dz.shape[0], grad.dz.shape[1]
        H = tape.h.shape[2]
        c0, c1 = _cols(0, 0, u0, u1)
        i, o = np.uint64(H), np.uint64(2 * H)
        for u in range(c0, c1):
            out[u] = out[u + i] = out[u + o] = 0.0
        for t in range(T):
            dz, c_prev, c = grad.dz[t], tape.c[t], tape.c[t + 1]
            for r in range(B):
                for u in range(c0, c1):
                    out[u] += dz[r, u] * c_prev[r, u]
                    out[u + i] += dz[r, u + i] * c_prev[r, u]
                    out[u + o] += dz[r, u + o] * c[r, u]
    return impl
