#!/usr/bin/env python3
"""Writes the independent numeric references of tests/numeric/: inputs and expected outputs
as .npy files under data/, and one line per case in cases.txt.

Needs only numpy. Run from anywhere:  python3 tests/numeric/gen_refs.py
The output is deterministic (each case seeds its own generator from its name), so running
it again rewrites the same bytes.

The references are written from the textbook formulas, not from the tdsl text: float cases
are computed in float64 from the (already f32) inputs and rounded to the output dtype once;
integer cases use Python's unbounded integers and apply the language's wrap / saturation
rules explicitly; f16 cases round to f16 after every operation, as the language says.

cases.txt format (run by run_numeric.sh, compared by npycmp), one case per line, paths
relative to tests/numeric/:
    FILE KERNEL in=data/x.npy ... -> out=data/y.npy ... rtol=R atol=A
A float output passes when |got - ref| <= atol + rtol * |ref| everywhere (NaN matches NaN,
an infinity must match exactly); integer and bool outputs must match exactly whatever the
tolerance. `#` starts a comment.
"""
import math
import os
import struct
import sys
import zlib

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "data")
NN = "../../stdlib/nn.tdsl"
ATTN = "../../stdlib/attention.tdsl"
PROGS = "progs"

# Default tolerance for f32 outputs against a float64 reference rounded once to f32: a few
# f32 ulps (2^-24 ≈ 6e-8 each) of relative error from the kernel's own per-operation
# roundings, with headroom for a compiled backend's different (but valid) evaluation order.
RTOL, ATOL = 1e-5, 1e-6
EXACT = (0.0, 0.0)

CASES = []   # lines of cases.txt
BYTES = [0]  # total size of the .npy files written


def rng_for(name):
    return np.random.default_rng(zlib.crc32(name.encode()))


def save(name, arr):
    path = os.path.join(DATA, name + ".npy")
    np.save(path, arr)
    BYTES[0] += os.path.getsize(path)
    return "data/" + name + ".npy"


def case(file, kernel, name, ins, outs, tol=(RTOL, ATOL), note=None):
    """Saves ins and outs (dicts name -> array) as data/<name>_<param>.npy and adds a line."""
    for k, v in list(ins.items()) + list(outs.items()):
        assert isinstance(v, np.ndarray), (name, k)
    parts = [file, kernel]
    parts += ["%s=%s" % (k, save("%s_%s" % (name, k), v)) for k, v in ins.items()]
    parts.append("->")
    parts += ["%s=%s" % (k, save("%s_%s" % (name, k), v)) for k, v in outs.items()]
    parts.append("rtol=%g atol=%g" % tol)
    if note:
        CASES.append("# " + note)
    CASES.append(" ".join(parts))


def f32(a):
    """Rounds a float64 result to f32 once."""
    return np.asarray(a, dtype=np.float64).astype(np.float32)


def up(a):
    return np.asarray(a, dtype=np.float64)


# ---- references for stdlib/nn.tdsl (float64, independent formulas) ---------------------------

_erf = np.vectorize(math.erf, otypes=[np.float64])


def ref_relu(x):
    return np.maximum(x, 0.0)


def ref_gelu(x):                     # x Φ(x), Φ the standard normal CDF
    return x * 0.5 * (1.0 + _erf(x / math.sqrt(2.0)))


def ref_gelu_tanh(x):
    return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


def ref_sigmoid(x):                  # both branches stable in float64
    with np.errstate(over="ignore"):
        return np.where(x >= 0, 1.0 / (1.0 + np.exp(-x)), np.exp(x) / (1.0 + np.exp(x)))


def ref_silu(x):
    return x * ref_sigmoid(x)


def ref_softplus(x):                 # log(e^0 + e^x), numpy's own stable form
    return np.logaddexp(0.0, x)


def ref_softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def ref_logsumexp(x):                # pairwise log-add, not the max-shift formula
    return np.logaddexp.reduce(x, axis=-1)


def ref_layernorm(x, g, b, eps):     # biased variance, like torch
    mu = x.mean(axis=-1, keepdims=True)
    var = np.var(x, axis=-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * g + b


def ref_rmsnorm(x, g, eps):
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * g


def ref_linear(x, w, b):
    return x @ w.T + b


def ref_attention(q, k, v, causal=False):
    d = q.shape[-1]
    s = np.einsum("bhnd,bhmd->bhnm", q, k) / math.sqrt(d)
    if causal:
        n, m = s.shape[-2:]
        s = np.where(np.arange(m)[None, :] > np.arange(n)[:, None], -np.inf, s)
    return np.einsum("bhnm,bhmd->bhnd", ref_softmax(s), v)


def gen_nn():
    def x_of(name, shape, scale=2.0):
        return (rng_for(name).standard_normal(shape) * scale).astype(np.float32)

    unary = [("relu", ref_relu), ("gelu", ref_gelu), ("gelu_tanh", ref_gelu_tanh),
             ("silu", ref_silu), ("softplus", ref_softplus), ("sigmoid", ref_sigmoid)]
    for kern, ref in unary:
        for tag, shape in (("3x7", (3, 7)), ("1x1", (1, 1))):
            name = "%s_%s" % (kern, tag)
            x = x_of(name, shape)
            if tag == "3x7":
                # exact zero, and the large magnitudes where naive forms overflow or cancel
                x[0, :4] = [0.0, 30.0, -30.0, -100.0]
                x[2, 6] = 100.0
            case(NN, kern, name, {"x": x}, {"y": f32(ref(up(x)))})

    # softmax: 1e-6 relative, as the softmax issue requires. The reference is rounded to
    # f32 once; a correct f32 kernel (exp and the division each round once, the sum is
    # accumulated wide) stays within about 4 ulps ≈ 2.4e-7 for these input ranges.
    for tag, shape, offset in (("3x7", (3, 7), 0.0), ("1x1", (1, 1), 0.0),
                               ("big", (2, 9), 1000.0), ("4x33", (4, 33), 0.0)):
        name = "softmax_" + tag
        x = (x_of(name, shape, 1.5) + np.float32(offset)).astype(np.float32)
        case(NN, "softmax", name, {"x": x}, {"y": f32(ref_softmax(up(x)))}, tol=(1e-6, 1e-7),
             note="softmax_big: +1000 offset, exp overflows unless the max is subtracted"
             if tag == "big" else None)

    for tag, shape, offset in (("3x7", (3, 7), 0.0), ("1x1", (1, 1), 0.0),
                               ("big", (2, 9), 1000.0)):
        name = "logsumexp_" + tag
        x = (x_of(name, shape, 1.5) + np.float32(offset)).astype(np.float32)
        case(NN, "logsumexp", name, {"x": x}, {"y": f32(ref_logsumexp(up(x)))})

    for tag, (r, d), eps in (("3x7", (3, 7), 1e-5), ("1x1", (1, 1), 1e-5),
                             ("eps", (2, 5), 0.25)):
        name = "layernorm_" + tag
        g = rng_for(name)
        x = (g.standard_normal((r, d)) * 2 + 0.5).astype(np.float32)
        w = (1 + 0.5 * g.standard_normal(d)).astype(np.float32)
        b = (0.5 * g.standard_normal(d)).astype(np.float32)
        e = np.array(eps, dtype=np.float32)
        y = ref_layernorm(up(x), up(w), up(b), up(e))
        case(NN, "layernorm", name, {"x": x, "g": w, "b": b, "eps": e}, {"y": f32(y)})

    for tag, (r, d), eps in (("3x7", (3, 7), 1e-5), ("1x1", (1, 1), 1e-5),
                             ("eps", (2, 5), 0.25)):
        name = "rmsnorm_" + tag
        g = rng_for(name)
        x = (g.standard_normal((r, d)) * 2).astype(np.float32)
        w = (1 + 0.5 * g.standard_normal(d)).astype(np.float32)
        e = np.array(eps, dtype=np.float32)
        y = ref_rmsnorm(up(x), up(w), up(e))
        case(NN, "rmsnorm", name, {"x": x, "g": w, "eps": e}, {"y": f32(y)})

    for tag, (m, k, n) in (("3x5x4", (3, 5, 4)), ("1x1x1", (1, 1, 1))):
        name = "linear_" + tag
        g = rng_for(name)
        x = g.standard_normal((m, k)).astype(np.float32)
        w = g.standard_normal((n, k)).astype(np.float32)
        b = g.standard_normal(n).astype(np.float32)
        case(NN, "linear", name, {"x": x, "w": w, "b": b},
             {"y": f32(ref_linear(up(x), up(w), up(b)))})


def gen_attention():
    for tag, (b, h, n, m, d) in (("1x2x5x6x4", (1, 2, 5, 6, 4)), ("2x1x1x3x1", (2, 1, 1, 3, 1))):
        name = "attention_" + tag
        g = rng_for(name)
        q = g.standard_normal((b, h, n, d)).astype(np.float32)
        k = g.standard_normal((b, h, m, d)).astype(np.float32)
        v = g.standard_normal((b, h, m, d)).astype(np.float32)
        case(ATTN, "attention", name, {"q": q, "k": k, "v": v},
             {"o": f32(ref_attention(up(q), up(k), up(v)))})
    for tag, (b, h, n, d) in (("1x2x5x4", (1, 2, 5, 4)), ("1x1x1x1", (1, 1, 1, 1))):
        name = "attention_causal_" + tag
        g = rng_for(name)
        q = g.standard_normal((b, h, n, d)).astype(np.float32)
        k = g.standard_normal((b, h, n, d)).astype(np.float32)
        v = g.standard_normal((b, h, n, d)).astype(np.float32)
        case(ATTN, "attention_causal", name, {"q": q, "k": k, "v": v},
             {"o": f32(ref_attention(up(q), up(k), up(v), causal=True))})


# ---- integer semantics, spelled out with Python ints ---------------------------------------------

INT_RANGE = {"i2": (-2, 1), "i4": (-8, 7), "u4": (0, 15), "i8": (-2**7, 2**7 - 1),
             "u8": (0, 2**8 - 1), "i32": (-2**31, 2**31 - 1)}


def wrap(v, dt):
    lo, hi = INT_RANGE[dt]
    n = hi - lo + 1
    return (v - lo) % n + lo


def sat(v, dt):
    lo, hi = INT_RANGE[dt]
    return min(max(v, lo), hi)


def tdiv(p, q):          # `/` on integers: toward zero; x / 0 == 0
    if q == 0:
        return 0
    a = abs(p) // abs(q)
    return a if (p >= 0) == (q >= 0) else -a


def tmod(p, q):          # `%`: p - q * (p / q); x % 0 == x
    if q == 0:
        return p
    return p - q * tdiv(p, q)


def f2i(x, dt):          # float -> int: toward zero, saturating, NaN -> 0
    if math.isnan(x):
        return 0
    if math.isinf(x):
        return INT_RANGE[dt][1] if x > 0 else INT_RANGE[dt][0]
    return sat(math.trunc(x), dt)


def imap(f, *arrs, dt):
    return np.array([f(*(int(a) if np.issubdtype(type(a), np.integer) else float(a)
                         for a in t)) for t in zip(*arrs)], dtype=dt)


def gen_int():
    prog = PROGS + "/intops.tdsl"
    a = np.array([127, -128, 100, -100, 5, -7, 0, 1, -1, 64, -128, 13], dtype=np.int8)
    b = np.array([1, -1, 100, 27, 3, 2, 0, -1, 127, 2, -128, -5], dtype=np.int8)
    p = np.array([7, -7, 7, -7, 0, 2**31 - 1, -2**31, -2**31, 100, 46341, 5, -9],
                 dtype=np.int32)
    q = np.array([2, 2, -2, -2, 5, 2, -1, 1, 0, 46341, 0, 4], dtype=np.int32)
    outs = {
        "s8": imap(lambda x, y: wrap(x + y, "i8"), a, b, dt=np.int8),
        "m8": imap(lambda x, y: wrap(x * y, "i8"), a, b, dt=np.int8),
        "n8": imap(lambda x: wrap(-x, "i8"), a, dt=np.int8),
        "d32": imap(lambda x, y: wrap(tdiv(x, y), "i32"), p, q, dt=np.int32),
        "r32": imap(lambda x, y: wrap(tmod(x, y), "i32"), p, q, dt=np.int32),
        "w32": imap(lambda x, y: wrap(wrap(x * y, "i32") + 7, "i32"), p, q, dt=np.int32),
    }
    case(prog, "int_arith", "int_arith", {"a": a, "b": b, "p": p, "q": q}, outs, tol=EXACT,
         note="int_arith: wrap (127+1, -(-128), INT_MIN / -1), division toward zero, x/0 == 0, x%0 == x")

    x = np.array([0.0, -0.0, 0.9, -0.9, 1.5, -1.5, 2.5, 127.9, 128.0, -128.9, -129.0, 255.5,
                  256.0, 300.0, -300.0, 3e9, -3e9, np.inf, -np.inf, np.nan], dtype=np.float32)
    z = np.array([0, 1, -1, 127, 128, -128, -129, 255, 256, 1000, -1000, 2**31 - 1, -2**31,
                  65535, -65536, 16777217, -16777217, 7, -7, 200], dtype=np.int32)
    outs = {
        "fi8": imap(lambda v: f2i(v, "i8"), x, dt=np.int8),
        "fu8": imap(lambda v: f2i(v, "u8"), x, dt=np.uint8),
        "fi32": imap(lambda v: f2i(v, "i32"), x, dt=np.int32),
        "zi8": imap(lambda v: sat(v, "i8"), z, dt=np.int8),
        "zu8": imap(lambda v: sat(v, "u8"), z, dt=np.uint8),
        # i32 -> f32 rounds to nearest even (16777217 -> 16777216), then * 0.5 is exact
        "zf": (up(z).astype(np.float32) * np.float32(0.5)).astype(np.float32),
    }
    case(prog, "int_casts", "int_casts", {"x": x, "z": z}, outs, tol=EXACT,
         note="int_casts: float->int toward zero and saturating, NaN -> 0; int->int saturating")

    for tag, (m, k, n) in (("3x5x4", (3, 5, 4)), ("1x1x1", (1, 1, 1))):
        name = "int8_matmul_" + tag
        g = rng_for(name)
        ai = g.integers(-128, 128, (m, k), dtype=np.int64)
        bi = g.integers(-128, 128, (n, k), dtype=np.int64)
        ai.flat[0], bi.flat[0] = -128, -128          # the extreme product 16384
        c = np.array([[sum(int(ai[i, t]) * int(bi[j, t]) for t in range(k)) for j in range(n)]
                      for i in range(m)], dtype=np.int32)
        case(prog, "int8_matmul", name, {"a": ai.astype(np.int8), "b": bi.astype(np.int8)},
             {"c": c}, tol=EXACT)

    # packed types travel unpacked in .npy: i4 / i2 as int8, u4 as uint8
    a = np.array([7, -8, 3, -3, 0, 5, -1], dtype=np.int8)
    b = np.array([1, -1, 4, -6, 7, -8, -1], dtype=np.int8)
    u = np.array([15, 0, 8, 7, 1, 9, 14], dtype=np.uint8)
    t = np.array([1, -1, 0, -2, 1, 0, -2], dtype=np.int8)
    outs = {
        "s4": imap(lambda x, y: wrap(x + y, "i4"), a, b, dt=np.int8),
        "p8": imap(lambda x, y: wrap(x * y, "i8"), a, b, dt=np.int8),
        "su": imap(lambda x: wrap(x + x, "u4"), u, dt=np.uint8),
        "s2": imap(lambda x: wrap(x + x, "i2"), t, dt=np.int8),
        "c4": imap(lambda x, y: sat(wrap(x * y, "i8"), "i4"), a, b, dt=np.int8),
        "c2": imap(lambda x: sat(x, "i2"), a, dt=np.int8),
    }
    case(PROGS + "/packed.tdsl", "packed_ops", "packed_ops", {"a": a, "b": b, "u": u, "t": t},
         outs, tol=EXACT,
         note="packed_ops: i4/u4/i2 wrap and saturate; N = 7 leaves a part-used last byte")


# ---- scans ---------------------------------------------------------------------------------------

def gen_scan():
    prog = PROGS + "/scan.tdsl"
    for tag, (t, k) in (("9x3", (9, 3)), ("1x1", (1, 1))):
        name = "cumsum_" + tag
        x = rng_for(name).standard_normal((t, k)).astype(np.float32)
        inc = np.zeros((t, k))
        ex = np.zeros((t, k))
        acc = np.zeros(k)
        for s in range(t):            # a plain loop, in float64
            ex[s] = acc
            acc = acc + up(x[s])
            inc[s] = acc
        case(prog, "cumsum", name, {"x": x}, {"inc": f32(inc), "ex": f32(ex)})

    for tag, (t, k) in (("7x3", (7, 3)), ("1x1", (1, 1))):
        name = "discounted_" + tag
        g = rng_for(name)
        x = g.standard_normal((t, k)).astype(np.float32)
        gam = g.uniform(0.5, 1.0, k).astype(np.float32)
        h0 = (3 * g.standard_normal(k)).astype(np.float32)
        y = np.zeros((t, k))
        h = up(h0)
        for s in reversed(range(t)):
            h = up(gam) * h + up(x[s])
            y[s] = h
        case(prog, "discounted", name, {"x": x, "g": gam, "h0": h0},
             {"y": f32(y), "hN": f32(h)})


# ---- padded access, argmax, f16, reductions, index arithmetic ----------------------------------------

def gen_misc():
    for tag, n in (("7", 7), ("1", 1)):
        name = "conv3_" + tag
        g = rng_for(name)
        x = g.standard_normal(n).astype(np.float32)
        w = g.standard_normal(3).astype(np.float32)
        xp = np.concatenate([[0.0], up(x), [0.0]])
        y = np.array([sum(up(w)[kk] * xp[i + kk] for kk in range(3)) for i in range(n)])
        z = np.array([up(x)[i] - (up(x)[i - 2] if i >= 2 else 0.5) for i in range(n)])
        case(PROGS + "/conv.tdsl", "conv3", name, {"x": x, "w": w}, {"y": f32(y), "z": f32(z)})

    x = np.array([[0.3, -1.2, 2.5, 0.7, 2.4, -0.1],
                  [1.0, 3.0, 3.0, -2.0, 3.0, 0.0],        # ties: first index
                  [1.0, np.nan, 5.0, np.nan, -3.0, 0.0],  # NaN is the extreme both ways
                  [2.0, 2.0, 2.0, 2.0, 2.0, 2.0],
                  [-np.inf, 0.0, np.inf, np.inf, -np.inf, 1.0]], dtype=np.float32)

    def first_extreme(row, better):
        best = 0
        for j in range(1, len(row)):
            if math.isnan(row[best]):
                break
            if math.isnan(row[j]) or better(row[j], row[best]):
                best = j
        return best

    imax = np.array([first_extreme(r, lambda a, b: a > b) for r in x], dtype=np.int32)
    imin = np.array([first_extreme(r, lambda a, b: a < b) for r in x], dtype=np.int32)
    assert (imax == np.argmax(x, axis=-1)).all() and (imin == np.argmin(x, axis=-1)).all()
    case(PROGS + "/argmax.tdsl", "arg_last", "arg_last", {"x": x}, {"imax": imax, "imin": imin},
         tol=EXACT)

    # f16: every operation rounds to f16 (exact float64 result, then one rounding each)
    g = rng_for("f16_ops")
    a = (g.standard_normal((3, 5)) * 4).astype(np.float16)
    b = (g.standard_normal((3, 5)) * 4).astype(np.float16)
    xs = np.array([[1.0, 65504.0, 65519.0, 65520.0, 1e5],
                   [-1e5, 1e-8, 3e-5, 1.0 + 2.0**-11, 1.0 + 3 * 2.0**-11],
                   [-2.5, 0.1, 1.0 / 3.0, 1e-4, -65520.0]], dtype=np.float32)

    def h(v):
        with np.errstate(over="ignore"):
            return np.asarray(v, dtype=np.float64).astype(np.float16)

    A, B = up(a), up(b)
    outs = {
        "s": h(A + B),
        "p": h(up(h(A * B)) * 3),
        "y": h(up(h(A * B)) + A),
        "c": (A * B).astype(np.float32),           # exact: 11 + 11 bits fit in f32
        "h": h(up(xs)),
        "t": h(A.sum(axis=-1)),                    # accumulated exactly, rounded once
    }
    # cross-check numpy's float64 -> f16 rounding against Python's own (struct 'e')
    for v, r in zip(up(xs).ravel(), outs["h"].ravel()):
        if abs(v) < 65520.0:
            assert struct.unpack("<e", struct.pack("<e", v))[0] == float(r), v
        else:
            assert np.isinf(r), v
    case(PROGS + "/f16.tdsl", "f16_ops", "f16_ops", {"a": a, "b": b, "x": xs}, outs, tol=EXACT,
         note="f16_ops: f16 rounding after each operation, RNE casts with overflow to inf")

    # bf16 (8 significant bits): inputs arrive as f32 and are rounded on reading
    def bf(v):
        def one(x):
            if x == 0 or not math.isfinite(x):
                return x
            m, e = math.frexp(x)               # x = m 2^e, 0.5 <= |m| < 1
            return math.ldexp(round(m * 256), e - 8)   # round() is half to even
        return np.array([one(float(x)) for x in np.ravel(v)]).reshape(np.shape(v))

    g = rng_for("bf16_ops")
    a = (g.standard_normal(9) * 3).astype(np.float32)
    b = (g.standard_normal(9) * 3).astype(np.float32)
    a[0] = 1.0 + 2.0**-8                        # halfway: rounds to even, 1.0
    a[1] = 1.0 + 3 * 2.0**-8                    # halfway: rounds to even, 1 + 2^-6
    A, B = bf(a), bf(b)
    outs = {"s": bf(A + B).astype(np.float32), "p": bf(bf(A * B) * 3).astype(np.float32),
            "c": (A * B).astype(np.float32)}
    case(PROGS + "/f16.tdsl", "bf16_ops", "bf16_ops", {"a": a, "b": b}, outs, tol=EXACT,
         note="bf16_ops: bf16 read from f32 (nearest even), rounding after each operation")

    g = rng_for("reductions")
    x = g.uniform(0.5, 1.5, (3, 7)).astype(np.float32)
    x[1, 3] = 1.75
    bb = g.random((3, 7)) < 0.5
    bb[0, :] = False
    bb[1, :] = True
    X = up(x)
    outs = {
        "mu": f32(X.mean(axis=-1)), "hi": x.max(axis=-1), "lo": x.min(axis=-1),
        "pr": f32(np.prod(X, axis=-1)),
        "an": bb.any(axis=-1), "al": bb.all(axis=-1), "gt": (x > np.float32(1.25)).any(axis=-1),
        "tot": f32(X.sum()),
    }
    case(PROGS + "/reduce.tdsl", "reductions", "reductions", {"x": x, "b": bb}, outs)

    g = rng_for("divmod_index")
    n = 5
    x = g.standard_normal(n).astype(np.float32)
    p = g.standard_normal(2).astype(np.float32)
    X, P = up(x), up(p)
    upx = np.array([X[i // 2] for i in range(2 * n)])
    alt = np.array([X[i // 2] * P[i % 2] for i in range(2 * n)])
    # alt is an f32 tensor in the kernel: round it before it is reused
    alt32 = up(f32(alt))
    pool = np.array([max(upx[2 * i], upx[2 * i + 1]) + alt32[2 * i + 1] for i in range(n)])
    pos = np.array([i + n * 0.25 for i in range(n)])
    case(PROGS + "/index.tdsl", "divmod_index", "divmod_index", {"x": x, "p": p},
         {"up": f32(upx), "alt": f32(alt), "pool": f32(pool), "pos": f32(pos)})


CASES_HEADER = """\
# Numeric test cases, run by run_numeric.sh (see its header for the full syntax):
#
#   FILE KERNEL [IN=INPUT.npy]... -> OUT=REFERENCE.npy... [rtol=R] [atol=A] [-D NAME=VALUE]...
#
# Paths are relative to tests/numeric/. Default tolerances: rtol=1e-6 atol=1e-7.
#
# Generated by gen_refs.py (inputs and references in data/); edit that script, not this file.
"""


def main():
    os.makedirs(DATA, exist_ok=True)
    for f in os.listdir(DATA):
        if f.endswith(".npy"):
            os.remove(os.path.join(DATA, f))
    gen_nn()
    gen_attention()
    gen_int()
    gen_scan()
    gen_misc()
    with open(os.path.join(HERE, "cases.txt"), "w") as f:
        f.write(CASES_HEADER)
        for line in CASES:
            f.write(line + "\n")
    ncases = sum(1 for c in CASES if not c.startswith("#"))
    print("gen_refs: %d cases, %d bytes of .npy" % (ncases, BYTES[0]))
    if BYTES[0] > 200_000:
        sys.exit("gen_refs: data larger than 200 KB")


if __name__ == "__main__":
    main()
