"""The recurrent cells of the compiled kernels: the math of one step, forward and backward.

Dimensions: T time, B batch, H hidden units, G gate blocks (4 for the LSTM and the GRU, 1 for
the RNN).

A cell is a **spec** (what a step needs besides the weights; its type selects the cell's
``@overload`` of each step function), a **tape** (what the forward writes: ``z`` gets x_t·Wx
and keeps the gates, ``h`` the hidden states with h[0] = h_0, then the cell's own; an array
shorter than T is a ring, indexed modulo its length) and a **grad** (``dz``, the
pre-activations' gradients, then the carried ones, dh first). ``cell_forward`` computes
rows r0..r1, units u0..u1 of step t from ``tape.z[t]`` and ``zh`` = h_{t-1}·Wh, carrying the
state past a sequence's end; ``cell_backward`` adds ``dy[t]`` to dL/dh_t in ``grad.dh``,
writes ``grad.dz[t]`` and leaves in ``grad.dh`` what of dL/dh_{t-1} does not pass Wh. The
equations and their order are the reference kernels'; each pass writes one block of one array.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import numpy as np
from numba import types
from numba.extending import intrinsic, overload, register_jitable


class LSTMSpec(NamedTuple):
    b: np.ndarray  # (4H,) bias, gate blocks f, i, o, C̃ (zeros without bias)
    P: np.ndarray  # (3H,) peepholes p_f, p_i, p_o (ONNX's LSTM; zeros without)
    clip: np.floating  # every pre-activation clamped to [-clip, clip] (ONNX); 0: no clamp
    coupled: bool  # f_t = 1 - i_t (ONNX's input_forget)
    onnx: bool  # any of the three: the step takes the longer way that has them
    hmask: np.ndarray  # (B, H) variational dropout's mask m on h_{t-1} in the product; (0, 0)
    keep: np.ndarray  # (Tk, Bk, 2H) zoneout's d^h_t, d^C_t (step t % Tk); (0, 0, 0): none


class LSTMTape(NamedTuple):
    z: np.ndarray  # (Tz, B, 4H) x_t·Wx in, the gates f, i, o, C̃ out
    h: np.ndarray  # (T+1, B, H) hidden states
    c: np.ndarray  # (T+1 or 2, B, H) cell states, c[0] = c_0
    tc: np.ndarray  # (T or 1, B, H) tanh(C_t)
    mask: np.ndarray  # (T or 1, B, 4H) 1 where a pre-activation is inside the clip
    m: np.ndarray  # (T+1 or 2, B, H) o_t * tanh(C_t): h itself, or what the loops project to h
    hm: np.ndarray  # (T+1, B, H) m ⊙ h_t, the product's input with spec.hmask; (0, 0, 0)


class LSTMGrad(NamedTuple):
    dz: np.ndarray  # (T, B, 4H)
    dh: np.ndarray  # (B, H)
    dc: np.ndarray  # (B, H) dL/dC_t, carried to the step before
    dm: np.ndarray  # (B, H) dL/dm_t: dh itself, or what the loops bring back through W_r
    keep: np.ndarray  # (B, 2H) zoneout: d ⊙ dL/dh_t, d ⊙ dL/dC_t within a step; (0, 0)


class RNNSpec(NamedTuple):
    b: np.ndarray  # (H,)
    relu: bool  # h_t = relu(...) instead of tanh(...)


class RNNTape(NamedTuple):
    z: np.ndarray  # (Tz, B, H) x_t·Wx
    h: np.ndarray  # (T+1, B, H)


class RNNGrad(NamedTuple):
    dz: np.ndarray  # (T, B, H)
    dh: np.ndarray  # (B, H)


class GRUSpec(NamedTuple):
    b: np.ndarray  # (4H,) b_in, b_r, b_z, b_hn (zeros without)


class GRUTape(NamedTuple):
    z: np.ndarray  # (Tz, B, 4H) x_t·Wx in, n_t, r, z and W_hn·h_{t-1} + b_hn out
    h: np.ndarray  # (T+1, B, H)


class GRUGrad(NamedTuple):
    dz: np.ndarray  # (T, B, 4H) da_n, da_r, da_z, da_n * r_t on W_hn·h_{t-1} + b_hn
    dh: np.ndarray  # (B, H)


def _stub(name: str):
    def stub(*args):  # pragma: no cover
        raise NotImplementedError(f"{name} is only callable from compiled code")
    stub.__name__ = name
    return stub


# -- tanh and σ ---------------------------------------------------------------------------------
@intrinsic
def _bits(typingctx, x):
    """``x``'s IEEE bits reread as the other kind of the same width (float32 <-> int32,
    float64 <-> int64)."""
    pairs = {types.float32: types.int32, types.float64: types.int64}
    to = pairs.get(x) or {v: k for k, v in pairs.items()}.get(x)
    if to is not None:
        return to(x), lambda ctx, builder, sig, args: builder.bitcast(args[0],
                                                                        ctx.get_value_type(to))


def _make_tanh(F, I, clamp, ln2_hi, ln2_lo, degree, mantissa, bias):
    """tanh in precision F, branch-free (it vectorises), NaN kept: ``tanh|v| = -e / (2 + e)``
    for e = expm1(-2|v|), by ``2|v| = k·ln2 + r`` (ln2 split: k·ln2_hi is exact), a Taylor
    polynomial in r and 2^-k from exponent bits. From |v| = ``clamp`` it is exactly ±1, as the
    correctly rounded tanh is: a saturated unit's derivative 1 - tanh² is exactly 0."""
    one, two, zero, clamp = F(1), F(2), F(0), F(clamp)
    log2e, ln2_hi, ln2_lo = F(np.log2(np.e)), F(ln2_hi), F(ln2_lo)
    rnd = F(1.5 * 2.0 ** mantissa)  # adding it rounds to an integer held in the low bits
    rnd_bits, mantissa, bias = I(np.array(rnd).view(I)), I(mantissa), I(bias)
    c = tuple(F(1 / np.prod(np.arange(1, n + 1, dtype=np.float64))) for n in range(degree, 1, -1))
    top, rest = c[0], c[1:]  # 1/degree! .. 1/2!

    @register_jitable
    def tanh(v):
        y = two * min(abs(v), clamp)
        kr = y * log2e + rnd
        k = kr - rnd  # the integer nearest y / ln2
        r = (k * ln2_hi - y) + k * ln2_lo  # -y = -k·ln2 + r
        p = top
        for a in rest:
            p = p * r + a
        em1 = r + r * r * p  # exp(r) - 1
        s = _bits(I((bias - (_bits(kr) - rnd_bits)) << mantissa))  # 2^-k (I(): numba
        e = s * em1 + (s - one)  # expm1(-y)                           widens ints to 64 bits)
        t = -e / (two + e)
        t = t if v >= zero else -t
        return t if v == v else v
    return tanh


_tanh32 = _make_tanh(np.float32, np.int32, 9.0, 0.693359375, -2.12194440e-4, 7, 23, 127)
_tanh64 = _make_tanh(np.float64, np.int64, 20.0, 6.93147180369123816490e-01,
                     1.90821492927058770002e-10, 13, 52, 1023)
tanh, sigmoid = _stub("tanh"), _stub("sigmoid")


@overload(tanh)
def _tanh(x):
    if x in (types.float32, types.float64):
        f = _tanh32 if x == types.float32 else _tanh64
        return lambda x: f(x)


@overload(sigmoid)
def _sigmoid(x):
    """σ(x) = ½·tanh(x/2) + ½: exact, never overflows (as the reference's ``sigmoid``)."""
    if x in (types.float32, types.float64):
        half = np.float32(0.5) if x == types.float32 else 0.5
        return lambda x: half * tanh(half * x) + half


# -- passes over the active rows r0..r1 of step t, units u0..u1 ---------------------------------
# Column indices are unsigned: numba's test for negative (wrapped) indices keeps a loop
# scalar. Block k of a row of G·H columns starts at column k·H; block -1 is a (·, H) array.
def _passes(act, name: str):
    """``gate``: block k of z = act((z + b) + zh) (x_t·Wx, bias, h_{t-1}·Wh); ``apply``: block
    k of z = act(z). One pair per activation: no branch in the loop. In-place updates go
    through one argument (an array passed twice fails the vectoriser's overlap check).
    ``name`` makes the pair's names unique: numba names compiled code after a function's
    qualified name and a per-process counter, so two functions of one name and signature from
    different processes' disk caches would link to one body."""
    def gate(z, b, zh, k, H, t, r0, r1, u0, u1, lengths):
        for r in range(r0, r1):
            if t < lengths[r]:
                for u in range(np.uint64(k * H + u0), np.uint64(k * H + u1)):
                    z[r, u] = act((z[r, u] + b[u]) + zh[r, u])

    def apply(z, k, H, t, r0, r1, u0, u1, lengths):
        for r in range(r0, r1):
            if t < lengths[r]:
                for u in range(np.uint64(k * H + u0), np.uint64(k * H + u1)):
                    z[r, u] = act(z[r, u])
    for f in (gate, apply):
        f.__name__ = f.__qualname__ = f"_{name}_{f.__name__}"
    return register_jitable(gate), register_jitable(apply)


@register_jitable
def _identity(v):
    return v


@register_jitable
def _relu(v):
    return max(v, v * 0)


(_sigmoid_gate, _sigmoid_apply), (_tanh_gate, _tanh_apply) = (_passes(sigmoid, "sigmoid"),
                                                              _passes(tanh, "tanh"))
_linear_gate, _relu_gate = _passes(_identity, "linear")[0], _passes(_relu, "relu")[0]
_SIG, _TANH, _TIMES, _ONE, _STEP = range(5)  # _dgate's last factor: v(1-v), 1-v², v, 1, [v > 0]


@register_jitable
def _at(k, H):
    """The first column of block k, unsigned (block -1: column 0)."""
    return np.uint64(max(k, 0) * H)


@register_jitable
def _dgate(out, k, H, a, ka, b, kb, s, ks, act, t, r0, r1, u0, u1, lengths, add=False, scale=1):
    """Block k of out = (+= with ``add``) scale · a[ka] · b[kb] · f(v) for v = s[ks] (blocks):
    f = σ' = v(1-v) (_SIG), tanh' = 1 - v² (_TANH), v (_TIMES), relu' = [v > 0] (_STEP) or 1
    (_ONE; s may be None). ``b`` None: no factor; 1-D: one for all rows (peepholes)."""
    one, zero, sc = out.dtype.type(1.0), out.dtype.type(0.0), out.dtype.type(scale)
    o, oa, ob, os = _at(k, H), _at(ka, H), _at(kb, H), _at(ks, H)
    for r in range(r0, r1):
        if t < lengths[r]:
            for u in range(np.uint64(u0), np.uint64(u1)):
                d = a[r, u + oa] if b is None else a[r, u + oa] * (
                    b[u + ob] if b.ndim == 1 else b[r, u + ob])
                if s is not None and act != _ONE:
                    v = s[r, u + os]
                    d = d * (v * (one - v)) if act == _SIG else d * (one - v * v) \
                        if act == _TANH else d * v if act == _TIMES else d if v > zero else zero
                if scale != 1:
                    d = sc * d
                out[r, u + o] = out[r, u + o] + d if add else d


@register_jitable
def _scale(a, k, H, s, ks, act, t, r0, r1, u0, u1, lengths):
    """Block k of a *= v(1-v) (_SIG) or v (_TIMES) for v = s[block ks], in place."""
    one = a.dtype.type(1.0)
    o, os = _at(k, H), _at(ks, H)
    for r in range(r0, r1):
        if t < lengths[r]:
            for u in range(np.uint64(u0), np.uint64(u1)):
                v = s[r, u + os]
                a[r, u + o] *= v * (one - v) if act == _SIG else v


@register_jitable
def _clip(z, mask, k, H, clip, t, r0, r1, u0, u1, lengths):
    """Block k: mask = 1 where |z| < clip else 0, then z clamped to [-clip, clip]."""
    one, zero = z.dtype.type(1.0), z.dtype.type(0.0)
    for r in range(r0, r1):
        if t < lengths[r]:
            for u in range(np.uint64(k * H + u0), np.uint64(k * H + u1)):
                mask[r, u] = one if abs(z[r, u]) < clip else zero
                z[r, u] = min(max(z[r, u], -clip), clip)


@register_jitable
def _cell_state(c, g, c_prev, H, t, r0, r1, u0, u1, lengths):
    """C_t = f_t * C_{t-1} + i_t * C̃_t, from the gates g (blocks f, i, o, C̃)."""
    i, gg = np.uint64(H), np.uint64(3 * H)
    for r in range(r0, r1):
        if t < lengths[r]:
            for u in range(np.uint64(u0), np.uint64(u1)):
                c[r, u] = g[r, u] * c_prev[r, u] + g[r, u + i] * g[r, u + gg]


@register_jitable
def _hidden(h, tc, g, c, H, t, r0, r1, u0, u1, lengths):
    """tanh(C_t), then h_t = o_t * tanh(C_t)."""
    o = np.uint64(2 * H)
    for r in range(r0, r1):
        if t < lengths[r]:
            for u in range(np.uint64(u0), np.uint64(u1)):
                tc[r, u] = tanh(c[r, u])
            for u in range(np.uint64(u0), np.uint64(u1)):
                h[r, u] = g[r, u + o] * tc[r, u]


@register_jitable
def _fill(a, k, H, v, t, r0, r1, u0, u1, lengths, active):
    """Block k of a = v on the rows active at step t (``active``), or on those past their end."""
    for r in range(r0, r1):
        if (t < lengths[r]) == active:
            for u in range(np.uint64(k * H + u0), np.uint64(k * H + u1)):
                a[r, u] = v


@register_jitable
def _carry(states, t, r0, r1, u0, u1, lengths):
    """Past a sequence's length the state is carried: state[t+1] = state[t] (rings too)."""
    for s in states:
        prev, new = s[t % s.shape[0]], s[(t + 1) % s.shape[0]]
        for r in range(r0, r1):
            if t >= lengths[r]:
                for u in range(np.uint64(u0), np.uint64(u1)):
                    new[r, u] = prev[r, u]


@register_jitable
def _zoneout(new, prev, d, k, H, t, r0, r1, u0, u1, lengths):
    """Zoneout (Krueger et al. 2017): new = d ⊙ prev + (1 - d) ⊙ new, d block k of ``d``."""
    one, o = new.dtype.type(1.0), _at(k, H)
    for r in range(r0, r1):
        if t < lengths[r]:
            for u in range(np.uint64(u0), np.uint64(u1)):
                v = d[r, u + o]
                new[r, u] = v * prev[r, u] + (one - v) * new[r, u]


# -- the step functions every cell implements (the overloads below give their bodies) ----------
cell_forward, cell_backward, cell_param_grads, cell_states, stream_tape = map(_stub, (
    "cell_forward", "cell_backward", "cell_param_grads", "cell_states", "stream_tape"))
recurrent_input = _stub("recurrent_input")


@overload(recurrent_input)
def _recurrent_input(tape):
    """What the loops multiply by Wh at step t: ``recurrent_input(tape)[t]``, the hidden
    states, or a tape's ``hm`` (the masked ones) when it has rows."""
    if "hm" in getattr(getattr(tape, "instance_class", None), "_fields", ()):
        return lambda tape: tape.hm if tape.hm.shape[0] else tape.h
    return lambda tape: tape.h


def _implements(stub, cls):
    """Makes the decorated function ``stub``'s compiled body when its first argument is a
    ``cls`` (a cell's spec or tape)."""
    def register(impl):
        @functools.wraps(impl)
        def typing(first, *args):
            if isinstance(first, types.BaseNamedTuple) and first.instance_class is cls:
                return impl
        overload(stub)(typing)
        return impl
    return register


# -- the lecture's LSTM, and ONNX's options of it ------------------------------------------------
@register_jitable
def _lstm_gates(z, b, zh, c, c_prev, H, t, r0, r1, u0, u1, lengths):
    """The gates from z (+ b) + zh, then the cell state (the plain and the layer-norm LSTM)."""
    rows = (t, r0, r1, u0, u1, lengths)
    _sigmoid_gate(z, b, zh, 0, H, *rows)  # f_t = σ(W_f·[h_{t-1}, x_t] + b_f)
    _sigmoid_gate(z, b, zh, 1, H, *rows)  # i_t = σ(W_i·[h_{t-1}, x_t] + b_i)
    _sigmoid_gate(z, b, zh, 2, H, *rows)  # o_t = σ(W_o·[h_{t-1}, x_t] + b_o)
    _tanh_gate(z, b, zh, 3, H, *rows)  # C̃_t = tanh(W_C·[h_{t-1}, x_t] + b_C)
    _cell_state(c, z, c_prev, H, *rows)  # C_t = f_t * C_{t-1} + i_t * C̃_t


@register_jitable
def _lstm_dgates(dz, dc, g, c_prev, H, t, r0, r1, u0, u1, lengths):
    """Backprop C_t = f_t * C_{t-1} + i_t * C̃_t into f_t, i_t (σ') and C̃_t (tanh')."""
    rows = (t, r0, r1, u0, u1, lengths)
    _dgate(dz, 0, H, dc, -1, c_prev, -1, g, 0, _SIG, *rows)
    _dgate(dz, 1, H, dc, -1, g, 3, g, 1, _SIG, *rows)
    _dgate(dz, 3, H, dc, -1, g, 1, g, 3, _TANH, *rows)


@_implements(cell_forward, LSTMSpec)
def _lstm_forward(spec, tape, zh, t, r0, r1, u0, u1, lengths):
    H, b, P, clip = tape.c.shape[2], spec.b, spec.P, spec.clip
    z = tape.z[t % tape.z.shape[0]]  # x_t·Wx in, the gates f, i, o, C̃ out
    c_prev, c = tape.c[t % tape.c.shape[0]], tape.c[(t + 1) % tape.c.shape[0]]
    tc, mask = tape.tc[t % tape.tc.shape[0]], tape.mask[t % tape.mask.shape[0]]
    rows = (t, r0, r1, u0, u1, lengths)
    if not spec.onnx:
        _lstm_gates(z, b, zh, c, c_prev, H, *rows)
    else:  # the peephole LSTM: f, i peek at C_{t-1}, o at C_t; clamps; coupled gates
        for k in range(4):
            _linear_gate(z, b, zh, k, H, *rows)  # W·[h_{t-1}, x_t] + b
        _dgate(z, 0, H, c_prev, -1, P, 0, None, 0, _ONE, *rows, True)  # + p_f ⊙ C_{t-1}
        _dgate(z, 1, H, c_prev, -1, P, 1, None, 0, _ONE, *rows, True)  # + p_i ⊙ C_{t-1}
        for k in range(4):
            if clip > 0 and k != 2 and (k > 0 or not spec.coupled):
                _clip(z, mask, k, H, clip, *rows)
        _sigmoid_apply(z, 1, H, *rows)  # i_t
        if spec.coupled:  # f_t = 1 - i_t
            _fill(z, 0, H, z.dtype.type(1.0), *rows, True)
            _dgate(z, 0, H, z, 1, None, 0, None, 0, _ONE, *rows, True, -1)
        else:
            _sigmoid_apply(z, 0, H, *rows)  # f_t
        _tanh_apply(z, 3, H, *rows)  # C̃_t
        _cell_state(c, z, c_prev, H, *rows)  # C_t = f_t ⊙ C_{t-1} + i_t ⊙ C̃_t
        _dgate(z, 2, H, c, -1, P, 2, None, 0, _ONE, *rows, True)  # + p_o ⊙ C_t
        if clip > 0:
            _clip(z, mask, 2, H, clip, *rows)
        _sigmoid_apply(z, 2, H, *rows)  # o_t
    _hidden(tape.m[(t + 1) % tape.m.shape[0]], tc, z, c, H, *rows)  # h_t = o_t * tanh(C_t)
    if spec.keep.shape[0]:  # zoneout: units keep their previous values where d_t = 1
        d = spec.keep[t % spec.keep.shape[0]]
        _zoneout(c, c_prev, d, 1, H, *rows)  # C_t = d ⊙ C_{t-1} + (1-d) ⊙ C̃'_t
        _zoneout(tape.h[t + 1], tape.h[t], d, 0, H, *rows)  # h_t = d ⊙ h_{t-1} + (1-d) ⊙ h̃_t
    _carry((tape.m, tape.c), *rows)
    if spec.hmask.shape[0]:  # variational dropout: the next product reads m ⊙ h_t
        _dgate(tape.hm[t + 1], 0, H, tape.h[t + 1], -1, spec.hmask, -1, None, 0, _ONE, *rows)
        _carry((tape.hm,), *rows)


@_implements(cell_backward, LSTMSpec)
def _lstm_backward(spec, tape, grad, dy, t, r0, r1, u0, u1, lengths):
    H, P, clip = tape.c.shape[2], spec.P, spec.clip
    g, tc, c_prev, mask = tape.z[t], tape.tc[t], tape.c[t], tape.mask[t % tape.mask.shape[0]]
    dz, dh, dc = grad.dz[t], grad.dm, grad.dc
    zero = dz.dtype.type(0.0)
    rows = (t, r0, r1, u0, u1, lengths)
    if spec.hmask.shape[0]:  # the product's part of dL/dh_t (rows that ran step t+1): · m
        _scale(dh, 0, H, spec.hmask, 0, _TIMES, t + 1, r0, r1, u0, u1, lengths)
    if dy.shape[0]:  # dL/dh_t: from the steps after t, and from the output
        _dgate(dh, 0, H, dy[t], -1, None, 0, None, 0, _ONE, *rows, True)
    zone = spec.keep.shape[0] > 0
    if zone:  # backprop zoneout: d ⊙ dL/dh_t, d ⊙ dL/dC_t go straight to step t-1, the rest
        d = spec.keep[t % spec.keep.shape[0]]  # to the step's new values h̃_t, C̃'_t
        _dgate(grad.keep, 0, H, dh, -1, d, 0, None, 0, _ONE, *rows)
        _dgate(grad.keep, 1, H, dc, -1, d, 1, None, 0, _ONE, *rows)
        _dgate(dh, 0, H, grad.keep, 0, None, 0, None, 0, _ONE, *rows, True, -1)
        _dgate(dc, 0, H, grad.keep, 1, None, 0, None, 0, _ONE, *rows, True, -1)
    # backprop h_t = o_t * tanh(C_t): into o_t (through σ') and into C_t (through tanh')
    _dgate(dz, 2, H, dh, -1, tc, -1, g, 2, _SIG, *rows)
    if spec.onnx and clip > 0:
        _scale(dz, 2, H, mask, 2, _TIMES, *rows)  # no gradient through a clamp
    _dgate(dc, 0, H, dh, -1, g, 2, tc, -1, _TANH, *rows, True)
    if spec.onnx:
        _dgate(dc, 0, H, dz, 2, P, 2, None, 0, _ONE, *rows, True)  # o's peephole on C_t
    _lstm_dgates(dz, dc, g, c_prev, H, *rows)
    if spec.onnx and spec.coupled:  # f_t = 1 - i_t: f's gradient goes to i_t, f has none
        _dgate(dz, 1, H, dc, -1, g, 3, None, 0, _ONE, *rows)
        _dgate(dz, 1, H, dc, -1, c_prev, -1, None, 0, _ONE, *rows, True, -1)
        _scale(dz, 1, H, g, 1, _SIG, *rows)
        _fill(dz, 0, H, zero, *rows, True)
    if spec.onnx and clip > 0:
        for k in (0, 1, 3):
            _scale(dz, k, H, mask, k, _TIMES, *rows)
    _scale(dc, 0, H, g, 0, _TIMES, *rows)  # the highway: dL/dC_{t-1} = dL/dC_t · f_t
    if spec.onnx:  # ... and the forget and input gates' peepholes on C_{t-1}
        _dgate(dc, 0, H, dz, 0, P, 0, None, 0, _ONE, *rows, True)
        _dgate(dc, 0, H, dz, 1, P, 1, None, 0, _ONE, *rows, True)
    if zone:  # dL/dh_{t-1} is d ⊙ dL/dh_t + dz_t·Whᵀ (the loop adds it); C's the same
        _dgate(dh, 0, H, grad.keep, 0, None, 0, None, 0, _ONE, *rows)
        _dgate(dc, 0, H, grad.keep, 1, None, 0, None, 0, _ONE, *rows, True)
    else:
        _fill(dh, 0, H, zero, *rows, True)  # dL/dh_{t-1} is dz_t·Whᵀ (the loop adds it)
    for k in range(4):
        _fill(dz, k, H, zero, *rows, False)  # padding: no gate gradient


@_implements(cell_param_grads, LSTMSpec)
def _lstm_param_grads(spec, tape, grad, out, u0, u1):
    """``out (3H,)``: dL/dp_f, dL/dp_i (on C_{t-1}) and dL/dp_o (on C_t), over steps and rows
    in order (padding has dz = 0)."""
    i, o = np.uint64(tape.c.shape[2]), np.uint64(2 * tape.c.shape[2])
    for u in range(np.uint64(u0), np.uint64(u1)):
        out[u] = out[u + i] = out[u + o] = 0.0
    for t in range(grad.dz.shape[0]):
        dz, c_prev, c = grad.dz[t], tape.c[t], tape.c[t + 1]
        for r in range(dz.shape[0]):
            for u in range(np.uint64(u0), np.uint64(u1)):
                out[u] += dz[r, u] * c_prev[r, u]
                out[u + i] += dz[r, u + i] * c_prev[r, u]
                out[u + o] += dz[r, u + o] * c[r, u]


@_implements(cell_states, LSTMTape)
def _lstm_states(tape):
    return tape.h, tape.c


@_implements(stream_tape, LSTMSpec)
def _lstm_stream_tape(spec, B, H, dtype):
    """A tape of one step: rings of two states, one step of gates."""
    h = np.empty((2, B, H), dtype)
    return LSTMTape(np.empty((1, B, 4 * H), dtype), h, np.empty((2, B, H), dtype),
                    np.empty((1, B, H), dtype), np.empty((1, B, 4 * H), dtype), h,
                    np.empty((0, 0, 0), dtype))


# -- the lecture's vanilla RNN -----------------------------------------------------------------
@_implements(cell_forward, RNNSpec)
def _rnn_forward(spec, tape, zh, t, r0, r1, u0, u1, lengths):
    z, h = tape.z[t % tape.z.shape[0]], tape.h[t + 1]
    rows = (t, r0, r1, u0, u1, lengths)
    if spec.relu:
        _relu_gate(z, spec.b, zh, 0, 0, *rows)  # h_t = relu(W [h_{t-1}, x_t] + b)
    else:
        _tanh_gate(z, spec.b, zh, 0, 0, *rows)  # h_t = tanh(W [h_{t-1}, x_t] + b)
    _dgate(h, 0, 0, z, -1, None, 0, None, 0, _ONE, *rows)
    _carry((tape.h,), *rows)


@_implements(cell_backward, RNNSpec)
def _rnn_backward(spec, tape, grad, dy, t, r0, r1, u0, u1, lengths):
    h, dz, dh = tape.h[t + 1], grad.dz[t], grad.dh
    rows = (t, r0, r1, u0, u1, lengths)
    if dy.shape[0]:
        _dgate(dh, 0, 0, dy[t], -1, None, 0, None, 0, _ONE, *rows, True)
    # backprop through relu' = [h > 0] or tanh' = 1 - h²
    _dgate(dz, 0, 0, dh, -1, None, 0, h, -1, _STEP if spec.relu else _TANH, *rows)
    _fill(dh, 0, 0, h.dtype.type(0.0), *rows, True)
    _fill(dz, 0, 0, h.dtype.type(0.0), *rows, False)


@_implements(cell_param_grads, RNNSpec)
def _rnn_param_grads(spec, tape, grad, out, u0, u1):
    pass  # no parameters besides the weights


@_implements(cell_states, RNNTape)
def _rnn_states(tape):
    return (tape.h,)


@_implements(stream_tape, RNNSpec)
def _rnn_stream_tape(spec, B, H, dtype):
    return RNNTape(np.empty((1, B, H), dtype), np.empty((2, B, H), dtype))


# -- the GRU (PyTorch's nn.GRU: the reset gate after the recurrent product) ----------------------
# Blocks of z, b and dz: n, r, z, then W_hn·h_{t-1} + b_hn. The loops take Wx as (D, 3H) =
# [W_in, W_ir, W_iz] (``fast._gru_layout`` reorders the layer's r, z, n), which fills blocks
# 0-2 of z, and Wh as the layer's own [W_hr, W_hz, W_hn], which fills blocks 1-3 of zh. So one
# pre-activation gradient dz = [da_n, da_r, da_z, da_n * r_t] serves both sides: the products
# with x read its blocks 0-2, those with h_{t-1} its blocks 1-3 (``product_grads``), and Σ dz
# is the gradient of the bias blocks.
@register_jitable
def _candidate(z, b, zh, H, t, r0, r1, u0, u1, lengths):
    """W_hn·h_{t-1} + b_hn into block 3 of z, then n_t = tanh(W_in·x_t + b_in + r_t *
    (W_hn·h_{t-1} + b_hn)) into block 0."""
    rg, hn = np.uint64(H), np.uint64(3 * H)
    for r in range(r0, r1):
        if t < lengths[r]:
            for u in range(np.uint64(u0), np.uint64(u1)):
                z[r, u + hn] = b[u + hn] + zh[r, u + hn]
            for u in range(np.uint64(u0), np.uint64(u1)):
                z[r, u] = tanh((z[r, u] + b[u]) + z[r, u + rg] * z[r, u + hn])


@register_jitable
def _gru_hidden(h, g, h_prev, H, t, r0, r1, u0, u1, lengths):
    """h_t = (1 - z_t) * n_t + z_t * h_{t-1}, as n_t + z_t * (h_{t-1} - n_t)."""
    zg = np.uint64(2 * H)
    for r in range(r0, r1):
        if t < lengths[r]:
            for u in range(np.uint64(u0), np.uint64(u1)):
                h[r, u] = g[r, u] + g[r, u + zg] * (h_prev[r, u] - g[r, u])


@register_jitable
def _gru_dgates(dz, dh, g, h_prev, H, t, r0, r1, u0, u1, lengths):
    """The four blocks of dz from dL/dh_t, each in its own pass, then dh *= z_t (the direct
    path z_t * h_{t-1}; the loop adds dz·Whᵀ)."""
    one = dz.dtype.type(1.0)
    rg, zg, hn = np.uint64(H), np.uint64(2 * H), np.uint64(3 * H)
    for r in range(r0, r1):
        if t < lengths[r]:
            for u in range(np.uint64(u0), np.uint64(u1)):  # da_n = dh (1 - z_t) tanh'
                v = g[r, u]
                dz[r, u] = dh[r, u] * (one - g[r, u + zg]) * (one - v * v)
            for u in range(np.uint64(u0), np.uint64(u1)):  # da_z = dh (h_{t-1} - n_t) σ'
                v = g[r, u + zg]
                dz[r, u + zg] = dh[r, u] * (h_prev[r, u] - g[r, u]) * (v * (one - v))
            for u in range(np.uint64(u0), np.uint64(u1)):  # da_r = da_n (W_hn·h + b_hn) σ'
                v = g[r, u + rg]
                dz[r, u + rg] = dz[r, u] * g[r, u + hn] * (v * (one - v))
            for u in range(np.uint64(u0), np.uint64(u1)):  # on W_hn·h_{t-1} + b_hn: da_n r_t
                dz[r, u + hn] = dz[r, u] * g[r, u + rg]
            for u in range(np.uint64(u0), np.uint64(u1)):
                dh[r, u] = dh[r, u] * g[r, u + zg]


@_implements(cell_forward, GRUSpec)
def _gru_forward(spec, tape, zh, t, r0, r1, u0, u1, lengths):
    H, b = tape.h.shape[2], spec.b
    z = tape.z[t % tape.z.shape[0]]
    rows = (t, r0, r1, u0, u1, lengths)
    _sigmoid_gate(z, b, zh, 1, H, *rows)  # r_t = σ(W_r·[h_{t-1}, x_t] + b_r)
    _sigmoid_gate(z, b, zh, 2, H, *rows)  # z_t = σ(W_z·[h_{t-1}, x_t] + b_z)
    _candidate(z, b, zh, H, *rows)  # n_t
    _gru_hidden(tape.h[t + 1], z, tape.h[t], H, *rows)  # h_t
    _carry((tape.h,), *rows)


@_implements(cell_backward, GRUSpec)
def _gru_backward(spec, tape, grad, dy, t, r0, r1, u0, u1, lengths):
    H, dz, dh = tape.h.shape[2], grad.dz[t], grad.dh
    rows = (t, r0, r1, u0, u1, lengths)
    if dy.shape[0]:
        _dgate(dh, 0, H, dy[t], -1, None, 0, None, 0, _ONE, *rows, True)
    _gru_dgates(dz, dh, tape.z[t], tape.h[t], H, *rows)
    for k in range(4):
        _fill(dz, k, H, dz.dtype.type(0.0), *rows, False)  # padding: no gate gradient


@_implements(cell_param_grads, GRUSpec)
def _gru_param_grads(spec, tape, grad, out, u0, u1):
    pass  # b_hn's gradient is Σ dz of block 3, with the other biases'


@_implements(cell_states, GRUTape)
def _gru_states(tape):
    return (tape.h,)


@_implements(stream_tape, GRUSpec)
def _gru_stream_tape(spec, B, H, dtype):
    return GRUTape(np.empty((1, B, 4 * H), dtype), np.empty((2, B, H), dtype))


# -- what the products with Wx and Wh differentiate ------------------------------------------------
product_grads = _stub("product_grads")


@overload(product_grads)
def _product_grads(grad):
    """``(dzx, dzh, cx, ch, split)``: the gradients on x_t·Wx and on h_{t-1}·Wh, which the
    loops multiply by Wxᵀ, Whᵀ, xᵀ and hᵀ, as the columns from ``cx`` of ``dzx`` and from
    ``ch`` of ``dzh``, and whether they differ (``dz``'s sum is the bias's gradient). Both are
    ``dz`` itself, but for the GRU (blocks 0-2 and 1-3 of dz) and for a cell that transforms
    the products before adding them (the layer-norm LSTM's grad has its own ``dzx``, ``dzh``)."""
    fields = grad.instance_class._fields
    if "dzx" in fields:
        return lambda grad: (grad.dzx, grad.dzh, 0, 0, True)
    if grad.instance_class is GRUGrad:
        return lambda grad: (grad.dz, grad.dz, 0, grad.dh.shape[1], True)
    return lambda grad: (grad.dz, grad.dz, 0, 0, False)


# -- the layer-normalised LSTM (Ba, Kiros & Hinton 2016; kernels/lstm_layernorm.py) -------------
# Layer norm reduces over all units of a row, so this cell runs with one unit group (fast.plan
# gives it row groups only): every step sees whole rows of x_t·Wx (tape.z) and h_{t-1}·Wh (zh),
# and ignores u0, u1.
class LNLSTMSpec(NamedTuple):
    b: np.ndarray  # (4H,) bias, gate blocks f, i, o, C̃ (zeros without bias)
    gx: np.ndarray  # (4H,) gain of LN(x_t·Wx)
    gh: np.ndarray  # (4H,) gain of LN(h_{t-1}·Wh)
    gc: np.ndarray  # (H,) gain of LN(C_t)
    bc: np.ndarray  # (H,) bias of LN(C_t)


class LNLSTMTape(NamedTuple):
    z: np.ndarray  # (Tz, B, 4H) x_t·Wx in, the gates f, i, o, C̃ out
    h: np.ndarray  # (T+1, B, H)
    c: np.ndarray  # (T+1 or 2, B, H) cell states before the norm
    tc: np.ndarray  # (T or 1, B, H) tanh(g_c ⊙ LN(C_t) + b_c)
    xn: np.ndarray  # (T or 1, B, 4H) LN(x_t·Wx) (0 on padding: the gains' gradients sum it)
    hn: np.ndarray  # (T or 1, B, 4H) LN(h_{t-1}·Wh) (0 on padding)
    cn: np.ndarray  # (T or 1, B, H) LN(C_t) (0 on padding)
    rstd: np.ndarray  # (T or 1, B, 3) 1/sqrt(σ² + EPS) of the norms of x·Wx, h·Wh, C_t
    lanes: np.ndarray  # (B, LANES) room for a row's partial sums (``_row_sum``)


class LNLSTMGrad(NamedTuple):
    dz: np.ndarray  # (T, B, 4H) on the gates' pre-activations a_t
    dh: np.ndarray  # (B, H)
    dc: np.ndarray  # (B, H)
    dzx: np.ndarray  # (T, B, 4H) on x_t·Wx
    dzh: np.ndarray  # (T, B, 4H) on h_{t-1}·Wh
    du: np.ndarray  # (T, B, H) on u_t = g_c ⊙ LN(C_t) + b_c


LN_EPS = 1e-5  # as lstm_layernorm.EPS (PyTorch's nn.LayerNorm default)


LANES = 64  # partial sums of a row statistic (a power of two)


@register_jitable
def _row_sum(a, r, n, m, square, b, c, lanes):
    """Σ over u < n of (a[r, u] - m) (squared with ``square``) · b[u] · c[r, u] (b, c None: 1).
    Lane l of ``lanes (LANES,)`` sums columns l, l + LANES, ... in order, then the lanes are
    added in a fixed tree: the same bits for any team, in a loop the compiler vectorises (the
    lanes' length is not a constant to it, so it vectorises the loop rather than unroll it)."""
    L, lanes[:] = np.uint64(lanes.shape[0]), 0
    for u0 in range(np.uint64(0), np.uint64(n), L):
        for u in range(u0, min(u0 + L, np.uint64(n))):
            v = a[r, u] - m
            v = v * v if square else v
            v = v if b is None else v * b[u]
            lanes[u - u0] += v if c is None else v * c[r, u]
    w = lanes.shape[0]
    while w > 1:
        w //= 2
        for j in range(w):
            lanes[j] += lanes[j + w]
    return lanes[0]


@register_jitable
def _layer_norm(y, xhat, rstd, k, src, gain, bias, n, lanes, t, r0, r1, lengths):
    """Over the n columns of each active row of src: x̂ = (v - μ) / sqrt(σ² + EPS) into xhat,
    1/sqrt(σ² + EPS) into rstd[:, k], y = gain ⊙ x̂ (+ bias). y may be src."""
    one, zero, eps = y.dtype.type(1.0), y.dtype.type(0.0), y.dtype.type(LN_EPS)
    for r in range(r0, r1):
        if t < lengths[r]:
            m = _row_sum(src, r, n, zero, False, None, None, lanes[r]) / n
            s = one / np.sqrt(_row_sum(src, r, n, m, True, None, None, lanes[r]) / n + eps)
            rstd[r, k] = s
            for u in range(np.uint64(n)):
                xhat[r, u] = (src[r, u] - m) * s
            for u in range(np.uint64(n)):  # a loop of its own: y may be src (see _passes)
                y[r, u] = gain[u] * xhat[r, u] if bias is None else gain[u] * xhat[r, u] + bias[u]


@register_jitable
def _layer_norm_backward(dsrc, dy, gain, xhat, rstd, k, n, add, lanes, t, r0, r1, lengths):
    """dsrc (+= with ``add``) = rstd · (g - mean g - x̂ · mean(g ⊙ x̂)) for g = dy ⊙ gain: the
    gradient on v from the one on y = gain ⊙ LN(v) (+ bias), over n columns of active rows."""
    zero = dsrc.dtype.type(0.0)
    for r in range(r0, r1):
        if t < lengths[r]:
            s1 = _row_sum(dy, r, n, zero, False, gain, None, lanes[r]) / n
            s2, s = _row_sum(dy, r, n, zero, False, gain, xhat, lanes[r]) / n, rstd[r, k]
            for u in range(np.uint64(n)):
                d = s * ((dy[r, u] * gain[u] - s1) - xhat[r, u] * s2)
                dsrc[r, u] = dsrc[r, u] + d if add else d


@_implements(cell_forward, LNLSTMSpec)
def _lnlstm_forward(spec, tape, zh, t, r0, r1, u0, u1, lengths):
    H = tape.h.shape[2]
    z, xn, hn = tape.z[t % tape.z.shape[0]], tape.xn[t % tape.xn.shape[0]], tape.hn[
        t % tape.hn.shape[0]]
    cn, rs, tc = tape.cn[t % tape.cn.shape[0]], tape.rstd[t % tape.rstd.shape[0]], tape.tc[
        t % tape.tc.shape[0]]
    c_prev, c = tape.c[t % tape.c.shape[0]], tape.c[(t + 1) % tape.c.shape[0]]
    rows, norm = (t, r0, r1, 0, H, lengths), (tape.lanes, t, r0, r1, lengths)
    _layer_norm(z, xn, rs, 0, z, spec.gx, None, 4 * H, *norm)  # g_x ⊙ LN(x_t·Wx)
    _layer_norm(zh, hn, rs, 1, zh, spec.gh, None, 4 * H, *norm)  # g_h ⊙ LN(h_{t-1}·Wh)
    _lstm_gates(z, spec.b, zh, c, c_prev, H, *rows)  # f, i, o, C̃ of their sum + b; C_t
    _layer_norm(zh, cn, rs, 2, c, spec.gc, spec.bc, H, *norm)  # u_t, in zh
    _hidden(tape.h[t + 1], tc, z, zh, H, *rows)  # h_t = o_t ⊙ tanh(u_t)
    _carry((tape.h, tape.c), *rows)


@_implements(cell_backward, LNLSTMSpec)
def _lnlstm_backward(spec, tape, grad, dy, t, r0, r1, u0, u1, lengths):
    H = tape.h.shape[2]
    g, tc, rs = tape.z[t], tape.tc[t], tape.rstd[t]
    dz, dh, dc, du = grad.dz[t], grad.dh, grad.dc, grad.du[t]
    zero = dz.dtype.type(0.0)
    rows, norm = (t, r0, r1, 0, H, lengths), (tape.lanes, t, r0, r1, lengths)
    if dy.shape[0]:
        _dgate(dh, 0, H, dy[t], -1, None, 0, None, 0, _ONE, *rows, True)
    # backprop h_t = o_t ⊙ tanh(u_t): into o_t (σ'), into u_t (tanh'), through LN into C_t
    _dgate(dz, 2, H, dh, -1, tc, -1, g, 2, _SIG, *rows)
    _dgate(du, 0, H, dh, -1, g, 2, tc, -1, _TANH, *rows)
    _layer_norm_backward(dc, du, spec.gc, tape.cn[t], rs, 2, H, True, *norm)
    _lstm_dgates(dz, dc, g, tape.c[t], H, *rows)
    _scale(dc, 0, H, g, 0, _TIMES, *rows)  # the highway: dL/dC_{t-1} = dL/dC_t · f_t
    # backprop a_t = g_x ⊙ LN(x_t·Wx) + g_h ⊙ LN(h_{t-1}·Wh) + b into the two products
    _layer_norm_backward(grad.dzx[t], dz, spec.gx, tape.xn[t], rs, 0, 4 * H, False, *norm)
    _layer_norm_backward(grad.dzh[t], dz, spec.gh, tape.hn[t], rs, 1, 4 * H, False, *norm)
    _fill(dh, 0, H, zero, *rows, True)  # dL/dh_{t-1} is dzh_t·Whᵀ (the loop adds it)
    _fill(du, 0, H, zero, *rows, False)  # padding: no gradient
    for k in range(4):
        for a in (dz, grad.dzx[t], grad.dzh[t]):
            _fill(a, k, H, zero, *rows, False)


@_implements(cell_param_grads, LNLSTMSpec)
def _lnlstm_param_grads(spec, tape, grad, out, u0, u1):
    """``out (10H,)``: dL/dg_x (4H), dL/dg_h (4H), dL/dg_c, dL/db_c (H each), summed over steps
    and rows in order (padding has zero gradients and zero norms)."""
    H = tape.h.shape[2]
    gx, gh, gc, bc = out[:4 * H], out[4 * H:8 * H], out[8 * H:9 * H], out[9 * H:]
    for u in range(np.uint64(u0), np.uint64(u1)):
        for k in range(10):  # units u0..u1 of every block
            out[k * H + u] = 0.0
    for t in range(grad.dz.shape[0]):  # one sum per loop: each loop vectorises
        dz, du, xn, hn, cn = grad.dz[t], grad.du[t], tape.xn[t], tape.hn[t], tape.cn[t]
        for r in range(dz.shape[0]):
            for k in range(4):
                for u in range(np.uint64(k * H + u0), np.uint64(k * H + u1)):
                    gx[u] += dz[r, u] * xn[r, u]
                for u in range(np.uint64(k * H + u0), np.uint64(k * H + u1)):
                    gh[u] += dz[r, u] * hn[r, u]
            for u in range(np.uint64(u0), np.uint64(u1)):
                gc[u] += du[r, u] * cn[r, u]
            for u in range(np.uint64(u0), np.uint64(u1)):
                bc[u] += du[r, u]


@_implements(cell_states, LNLSTMTape)
def _lnlstm_states(tape):
    return tape.h, tape.c


@_implements(stream_tape, LNLSTMSpec)
def _lnlstm_stream_tape(spec, B, H, dtype):
    return LNLSTMTape(np.empty((1, B, 4 * H), dtype), np.empty((2, B, H), dtype),
                      np.empty((2, B, H), dtype), np.empty((1, B, H), dtype),
                      np.empty((1, B, 4 * H), dtype), np.empty((1, B, 4 * H), dtype),
                      np.empty((1, B, H), dtype), np.empty((1, B, 3), dtype),
                      np.empty((B, LANES), dtype))
