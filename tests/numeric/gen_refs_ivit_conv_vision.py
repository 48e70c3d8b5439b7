#!/usr/bin/env python3
"""Writes the independent numeric references of the ivit, conv and effvit models
(stdlib/ivit.tdsl, stdlib/conv.tdsl, stdlib/vision.tdsl): inputs and expected outputs as .npy
files under data_m3/, and one line per case in cases_ivit_conv_vision.txt.

Run with the project's venv (PyTorch, numpy):
    /work/venv/bin/python tests/numeric/gen_refs_ivit_conv_vision.py
The output is deterministic (each case seeds its own generator from its name).

References, per model (each case's comment in the cases file repeats which):
- ivit: numpy integer arithmetic on int64 arrays, written from I-ViT's algorithms (its
  integer TVM code's order of operations), not from the tdsl text: arithmetic shifts are
  numpy's >> and << (not a floor-division formula), truncating division is explicit. Every
  intermediate that the kernels keep in i32 is asserted to fit in i32, so the exact
  comparison (rtol=0 atol=0) never depends on wrap-around.
- conv, effvit: PyTorch built-ins in float64 (F.conv2d with stride / padding / dilation /
  groups, F.batch_norm(training=False), F.avg_pool2d(count_include_pad=False),
  F.group_norm, F.scaled_dot_product_attention, F.gelu, F.silu, softmax), composed as the
  papers' released modules compose them, then rounded to f32 once.

cases file format (run by run_numeric.sh, compared by npycmp), paths relative to
tests/numeric/:
    FILE KERNEL in=data_m3/x.npy ... -> out=data_m3/y.npy ... rtol=R atol=A [-D NAME=V]
"""
import itertools
import os
import sys
import zlib

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
DATA_DIR = "data_m3"
DATA = os.path.join(HERE, DATA_DIR)
CASES_FILE = "cases_ivit_conv_vision.txt"
IVIT = "../../stdlib/ivit.tdsl"
CONV = "../../stdlib/conv.tdsl"
VISION = "../../stdlib/vision.tdsl"

EXACT = (0.0, 0.0)
# f32 kernels against a float64 reference rounded once: |got - ref| <= atol + rtol·|ref|.
# Every float case uses rtol 1e-5, atol 1e-6. A single convolution or pooling rounds each
# output a few times in f32 (each <= 2^-24 relative) in whatever order the engine sums; the
# blocks (several convs, norms, exp, attention) round dozens of times, and sums of
# mixed-sign terms lose relative accuracy near 0, which the absolute part covers. Measured
# worst error / tolerance over all cases and both engines: 0.32 (conv_bn_folded, compiled),
# blocks <= 0.21 (efficientvit_cga, compiled), so the bound has 3x headroom and a wrong
# kernel (an off-by-one tap, a missing term) is far outside it.
F32 = (1e-5, 1e-6)

CASES = []
BYTES = [0]


def rng_for(name):
    return np.random.default_rng(zlib.crc32(name.encode()))


def save(name, arr):
    path = os.path.join(DATA, name + ".npy")
    np.save(path, arr)
    BYTES[0] += os.path.getsize(path)
    return DATA_DIR + "/" + name + ".npy"


def case(file, kernel, name, ins, outs, tol, note, sizes=None):
    for k, v in list(ins.items()) + list(outs.items()):
        assert isinstance(v, np.ndarray), (name, k)
    parts = [file, kernel]
    parts += ["%s=%s" % (k, save("%s_%s" % (name, k), v)) for k, v in ins.items()]
    parts.append("->")
    parts += ["%s=%s" % (k, save("%s_%s" % (name, k), v)) for k, v in outs.items()]
    parts.append("rtol=%g atol=%g" % tol)
    for k, v in (sizes or {}).items():
        parts.append("-D %s=%d" % (k, v))
    CASES.append("# " + note)
    CASES.append(" ".join(parts))


def f32(a):
    if isinstance(a, torch.Tensor):
        a = a.detach().numpy()
    return np.asarray(a, dtype=np.float64).astype(np.float32)


def t64(a):
    """An f32 input, exactly, as a float64 torch tensor."""
    return torch.from_numpy(np.asarray(a, dtype=np.float64))


def randf(rng, shape, scale=1.0):
    return f32(rng.uniform(-scale, scale, size=shape))


# ---- ivit: numpy integer references ----------------------------------------------------------------

I32_MIN, I32_MAX = -2**31, 2**31 - 1


def fits32(a, what):
    a = np.asarray(a)
    assert a.min() >= I32_MIN and a.max() <= I32_MAX, "%s leaves i32: [%d, %d]" % (what, a.min(), a.max())
    return a


def tdiv(a, b):
    """C-style integer division (toward zero), as TVM's / on int32."""
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    q = np.abs(a) // np.abs(b)
    return np.where((a < 0) != (b < 0), -q, q)


def ref_int8_linear(x, w, bias):
    acc = x.astype(np.int64) @ w.astype(np.int64).T + bias.astype(np.int64)
    return fits32(acc, "acc")


def ref_requant(acc, b, c):
    prod = acc.astype(np.int64) * b.astype(np.int64)       # fits in i64: |acc|, |b| < 2^31
    return np.clip(np.right_shift(prod, c.astype(np.int64)), -128, 127).astype(np.int8)


def ref_shift_exp(x, x0, n):
    """I-ViT ShiftExp in its integer form (TVM shift_exp): x <= 0, x0 < 0."""
    x = np.asarray(x, dtype=np.int64)
    assert (x <= 0).all()
    p = x + (x >> 1) - (x >> 4)
    p = np.maximum(p, n * x0)
    q = tdiv(p, x0)
    r = p - q * x0
    assert ((q >= 0) & (q <= n)).all() and ((r <= 0) & (r > x0)).all()
    e = ((r >> 1) - x0) << (n - q)
    return fits32(e, "shift_exp")


def ref_shiftmax(x, x0):
    x = x.astype(np.int64)
    e = ref_shift_exp(x - x.max(axis=-1, keepdims=True), x0, 16)
    s = fits32(e.sum(axis=-1, keepdims=True), "sum of exp")
    prod = fits32(tdiv(I32_MAX, s) * e, "factor * exp")
    y = prod >> 24
    assert ((y >= 0) & (y <= 127)).all()
    return y.astype(np.int8)


def ref_shiftgelu(x, x0):
    x = x.astype(np.int64)
    m = x.max(axis=-1, keepdims=True)
    assert (m >= 0).all(), "ShiftGELU's integer form needs row maxima >= 0"
    e = ref_shift_exp(x - m, x0, 23)
    em = ref_shift_exp(-m, x0, 23)
    tot = fits32(e + em, "e + e_max")
    sig = fits32(tdiv(I32_MAX, tot) * e, "factor * exp") >> 24
    return fits32(x * sig, "x * sigmoid").astype(np.int32)


def ref_ilayernorm(x, bias):
    x = x.astype(np.int64)
    d = x.shape[-1]
    mu = tdiv(x.sum(axis=-1, keepdims=True), d)
    y = fits32(x - mu, "x - mean")
    var = (y * y).sum(axis=-1, keepdims=True)
    std = np.full_like(var, 2**16)
    for _ in range(10):
        std = (std + var // std) // 2
    out = tdiv((I32_MAX // std) * y, 2) + bias.astype(np.int64)
    return fits32(out, "layernorm out").astype(np.int32)


def ref_attention_int(q, k, v, x0, b, c):
    s = fits32(np.einsum("hnd,hmd->hnm", q.astype(np.int64), k.astype(np.int64)), "scores")
    p = ref_shiftmax(s, x0).astype(np.int64)
    acc = fits32(np.einsum("hnm,hmd->hnd", p, v.astype(np.int64)), "P V")
    return np.clip((acc * b) >> c, -128, 127).astype(np.int8)


def i8(rng, shape, lo=-128, hi=127):
    return rng.integers(lo, hi + 1, size=shape).astype(np.int8)


def gen_ivit():
    note_np = "numpy integer reference (I-ViT algorithms, TVM integer order), exact"
    for tag, (m, k, n) in {"3x7x5": (3, 7, 5), "1x1x1": (1, 1, 1)}.items():
        r = rng_for("ivit_linear_" + tag)
        x, w = i8(r, (m, k)), i8(r, (n, k))
        bias = r.integers(-5000, 5000, size=n).astype(np.int32)
        case(IVIT, "int8_linear", "ivit_linear_" + tag, {"x": x, "w": w, "bias": bias},
             {"acc": ref_int8_linear(x, w, bias).astype(np.int32)}, EXACT, note_np + "; int8 GEMM, i32 accumulation")
    # requantisation: negative accumulators exercise the floor of >> (trunc would differ),
    # large ones the i8 saturation; b is a 31-bit multiplier (the product needs i64)
    r = rng_for("ivit_requant")
    acc = r.integers(-300000, 300000, size=(4, 6)).astype(np.int32)
    acc[0, :] = [-1, -2, -3, 1, 2, 3]
    acc[1, :] = [I32_MIN, I32_MAX, -65536, 65535, -65537, 0]
    b = r.integers(2**29, 2**31 - 1, size=6).astype(np.int32)
    c = np.array([31, 32, 38, 40, 45, 50], dtype=np.int32)
    case(IVIT, "requant", "ivit_requant", {"acc": acc, "b": b, "c": c},
         {"y": ref_requant(acc, b, c)}, EXACT,
         note_np + "; dyadic (acc*b)>>c: negative values floor, i8 saturates, INT32_MIN/MAX")
    for tag, (m, k, n) in {"3x7x5": (3, 7, 5), "1x1x1": (1, 1, 1)}.items():
        r = rng_for("ivit_linear_requant_" + tag)
        x, w = i8(r, (m, k)), i8(r, (n, k))
        bias = r.integers(-5000, 5000, size=n).astype(np.int32)
        b = r.integers(2**29, 2**31 - 1, size=n).astype(np.int32)
        c = r.integers(36, 40, size=n).astype(np.int32)
        y = ref_requant(ref_int8_linear(x, w, bias), b, c)
        case(IVIT, "int8_linear_requant", "ivit_linear_requant_" + tag,
             {"x": x, "w": w, "bias": bias, "b": b, "c": c}, {"y": y}, EXACT, note_np + "; fused GEMM + requant")
    # ShiftExp alone: inputs <= 0 including the clamp at n·x0 (x far below)
    r = rng_for("ivit_shift_exp")
    x0 = np.array(int(-1.0 / 0.05 - 1), dtype=np.int32)          # S = 0.05: x0 = -21
    x = -r.integers(0, 400, size=(3, 9)).astype(np.int32)
    x[0, :4] = [0, -1, -16, -17]
    x[1, 0] = -100000                                                # clamped to 16·x0
    case(IVIT, "shift_exp", "ivit_shift_exp", {"x": x, "x0": x0},
         {"y": ref_shift_exp(x, int(x0), 16).astype(np.int32)}, EXACT, note_np + "; ShiftExp n=16")
    # 4x9: scores within ±3 real units (a soft distribution); 2x33: within ±7.5 (peaked)
    for tag, shape, scale, span in [("4x9", (4, 9), 0.05, 60), ("2x33", (2, 33), 0.03, 250), ("1x1", (1, 1), 0.05, 60)]:
        r = rng_for("ivit_shiftmax_" + tag)
        x0 = np.array(int(-1.0 / scale - 1), dtype=np.int32)
        x = r.integers(-span, span, size=shape).astype(np.int32)
        case(IVIT, "shiftmax", "ivit_shiftmax_" + tag, {"x": x, "x0": x0},
             {"y": ref_shiftmax(x, int(x0))}, EXACT, note_np + "; Shiftmax (int8 out, scale 2^-7)")
    for tag, shape, scale in [("4x9", (4, 9), 0.02), ("1x1", (1, 1), 0.02)]:
        r = rng_for("ivit_shiftgelu_" + tag)
        x0 = np.array(int(-1.0 / (1.702 * scale) - 1), dtype=np.int32)
        x = r.integers(-300, 300, size=shape).astype(np.int32)
        x[:, 0] = np.abs(x[:, 0])                                    # row maxima >= 0
        case(IVIT, "shiftgelu", "ivit_shiftgelu_" + tag, {"x": x, "x0": x0},
             {"y": ref_shiftgelu(x, int(x0))}, EXACT, note_np + "; ShiftGELU (row max >= 0)")
    for tag, shape in [("4x7", (4, 7)), ("3x16", (3, 16)), ("1x1", (1, 1))]:
        r = rng_for("ivit_ilayernorm_" + tag)
        x = r.integers(-6000, 6000, size=shape).astype(np.int32)
        if shape[0] > 1:
            x[1, :] = 1234                                            # variance 0
        bias = r.integers(-2**20, 2**20, size=shape[1]).astype(np.int32)
        case(IVIT, "ilayernorm", "ivit_ilayernorm_" + tag, {"x": x, "bias": bias},
             {"y": ref_ilayernorm(x, bias)}, EXACT, note_np + "; I-LayerNorm, 10-step integer sqrt")
    for tag, (h, n, d) in {"2x5x4": (2, 5, 4), "1x1x1": (1, 1, 1)}.items():
        r = rng_for("ivit_attention_int_" + tag)
        q, k, v = i8(r, (h, n, d), -40, 40), i8(r, (h, n, d), -40, 40), i8(r, (h, n, d))
        x0 = np.array(-30, dtype=np.int32)
        b = np.array(1518500250, dtype=np.int32)
        c = np.array(38, dtype=np.int32)
        case(IVIT, "attention_int", "ivit_attention_int_" + tag,
             {"q": q, "k": k, "v": v, "x0": x0, "b": b, "c": c},
             {"o": ref_attention_int(q, k, v, -30, 1518500250, 38)}, EXACT,
             note_np + "; integer attention head: QK^T, Shiftmax, PV, requant")


# ---- conv: PyTorch references --------------------------------------------------------------------

def gen_conv():
    def conv_case(kernel, tag, xs, ws, torch_kw, sizes, groups=1):
        name = "conv_%s_%s" % (kernel, tag)
        r = rng_for(name)
        x, w, b = randf(r, xs), randf(r, ws), randf(r, (ws[0],))
        y = F.conv2d(t64(x), t64(w), t64(b), groups=groups, **torch_kw)
        case(CONV, kernel, name, {"x": x, "w": w, "b": b}, {"y": f32(y)}, F32,
             "torch F.conv2d(%s) float64; one f32 dot product per output" %
             ", ".join("%s=%s" % kv for kv in list(torch_kw.items()) + ([("groups", groups)] if groups > 1 else [])),
             sizes)

    conv_case("conv2d", "p1", (2, 3, 5, 7), (4, 3, 3, 3), dict(padding=1), {"P": 1, "DL": 1})
    conv_case("conv2d", "p2d2", (1, 3, 7, 6), (2, 3, 3, 2), dict(padding=2, dilation=2), {"P": 2, "DL": 2})
    conv_case("conv2d", "all1", (1, 1, 1, 1), (1, 1, 1, 1), dict(padding=1), {"P": 1, "DL": 1})
    conv_case("conv2d_valid", "d1", (2, 3, 5, 7), (2, 3, 3, 2), dict(padding=0), {"DL": 1})
    conv_case("conv2d_valid", "d2", (1, 2, 7, 5), (3, 2, 2, 2), dict(padding=0, dilation=2), {"DL": 2})
    conv_case("conv2d_valid", "all1", (1, 1, 1, 1), (1, 1, 1, 1), dict(padding=0), {"DL": 1})
    conv_case("conv3x3_s2", "5x7", (2, 3, 5, 7), (4, 3, 3, 3), dict(stride=2, padding=1), None)
    conv_case("conv3x3_s2", "6x8", (1, 2, 6, 8), (3, 2, 3, 3), dict(stride=2, padding=1), None)
    conv_case("conv3x3_s2", "all1", (1, 1, 1, 1), (1, 1, 3, 3), dict(stride=2, padding=1), None)
    # "same" convolution of a 5x5 kernel: conv2d with P = KH // 2
    conv_case("conv2d", "same5", (1, 2, 5, 4), (3, 2, 5, 5), dict(padding=2), {"P": 2, "DL": 1})
    conv_case("dwconv2d", "p1", (2, 3, 5, 7), (3, 1, 3, 3), dict(padding=1), {"P": 1, "DL": 1}, groups=3)
    conv_case("dwconv2d", "p2d2", (1, 4, 6, 5), (4, 1, 3, 3), dict(padding=2, dilation=2), {"P": 2, "DL": 2}, groups=4)
    conv_case("dwconv2d", "all1", (1, 1, 1, 1), (1, 1, 1, 1), dict(padding=1), {"P": 1, "DL": 1}, groups=1)

    def bn_params(r, o):
        g = randf(r, (o,), 1.5)
        beta = randf(r, (o,))
        mu = randf(r, (o,))
        var = f32(r.uniform(0.1, 2.0, size=o))
        return g, beta, mu, var

    eps = np.array(1e-5, dtype=np.float32)
    for tag, xs in {"2x3x5x7": (2, 3, 5, 7), "all1": (1, 1, 1, 1)}.items():
        name = "conv_batchnorm2d_" + tag
        r = rng_for(name)
        x = randf(r, xs, 2.0)
        g, beta, mu, var = bn_params(r, xs[1])
        y = F.batch_norm(t64(x), t64(mu), t64(var), t64(g), t64(beta), training=False, eps=float(eps))
        case(CONV, "batchnorm2d", name, {"x": x, "g": g, "beta": beta, "mu": mu, "var": var, "eps": eps},
             {"y": f32(y)}, F32, "torch F.batch_norm(training=False) float64")
    for tag, ws in {"3x3": (4, 3, 3, 3), "1x1": (1, 1, 1, 1)}.items():
        name = "conv_bn_fold_" + tag
        r = rng_for(name)
        w = randf(r, ws)
        g, beta, mu, var = bn_params(r, ws[0])
        # the ConvBN.fuse formula of the EfficientViT / timm code, in float64 torch
        s = t64(g) / torch.sqrt(t64(var) + float(eps))
        wf = t64(w) * s[:, None, None, None]
        bf = t64(beta) - t64(mu) * s
        case(CONV, "bn_fold", name, {"w": w, "g": g, "beta": beta, "mu": mu, "var": var, "eps": eps},
             {"wf": f32(wf), "bf": f32(bf)}, F32, "torch float64, ConvBN.fuse formula (timm efficientvit_msra)")
    # conv + BN folded == conv then BN: both kernels against the same F.batch_norm(F.conv2d)
    for tag, (xs, ws, p) in {"3x3": ((2, 3, 5, 7), (4, 3, 3, 3), 1), "5x3p2": ((1, 2, 4, 6), (3, 2, 5, 3), 2),
                             "all1": ((1, 1, 1, 1), (1, 1, 1, 1), 1)}.items():
        name = "conv_bn_" + tag
        r = rng_for(name)
        x, w = randf(r, xs), randf(r, ws)
        g, beta, mu, var = bn_params(r, ws[0])
        y = F.batch_norm(F.conv2d(t64(x), t64(w), padding=p), t64(mu), t64(var), t64(g), t64(beta),
                         training=False, eps=float(eps))
        ins = {"x": x, "w": w, "g": g, "beta": beta, "mu": mu, "var": var, "eps": eps}
        for kernel in ("conv_bn_folded", "conv_then_bn"):
            case(CONV, kernel, name, ins, {"y": f32(y)}, F32,
                 "torch F.batch_norm(F.conv2d(padding=%d)) float64; equivalence: conv_bn_folded and "
                 "conv_then_bn meet the same reference" % p, {"P": p})

    for tag, (b, m, h, w, rr) in {"2x12x5x7": (2, 3, 5, 7, 2), "1x4x1x1": (1, 1, 1, 1, 1)}.items():
        name = "conv_bottleneck_se_" + tag
        r = rng_for(name)
        c = 4 * m                                     # the bottleneck expansion
        x = randf(r, (b, c, h, w))
        w1 = randf(r, (m, c, 1, 1), 0.8)
        w2 = randf(r, (m, m, 3, 3), 0.5)
        w3 = randf(r, (c, m, 1, 1), 0.8)
        bns = []
        for o in (m, m, c):
            bns.append(np.stack(bn_params(r, o)).astype(np.float32))
        sw1, sb1 = randf(r, (rr, c)), randf(r, (rr,))
        sw2, sb2 = randf(r, (c, rr)), randf(r, (c,))

        def bn(t, p):
            return F.batch_norm(t, t64(p[2]), t64(p[3]), t64(p[0]), t64(p[1]), training=False, eps=float(eps))

        X = t64(x)
        a = F.relu(bn(F.conv2d(X, t64(w1)), bns[0]))
        a = F.relu(bn(F.conv2d(a, t64(w2), padding=1), bns[1]))
        d = bn(F.conv2d(a, t64(w3)), bns[2])
        s = F.adaptive_avg_pool2d(d, 1)
        z = F.relu(F.conv2d(s, t64(sw1)[:, :, None, None], t64(sb1)))
        e = torch.sigmoid(F.conv2d(z, t64(sw2)[:, :, None, None], t64(sb2)))
        y = F.relu(X + d * e)
        case(CONV, "bottleneck_se", name,
             {"x": x, "w1": w1, "bn1": bns[0], "w2": w2, "bn2": bns[1], "w3": w3, "bn3": bns[2],
              "se_w1": sw1, "se_b1": sb1, "se_w2": sw2, "se_b2": sb2, "eps": eps},
             {"y": f32(y)}, F32,
             "torch float64: F.conv2d + F.batch_norm (unfolded) x3, ReLU, SE (adaptive_avg_pool2d, 1x1 convs, sigmoid), residual")


# ---- effvit: PyTorch references ------------------------------------------------------------------

def pool_ref(x):
    return F.avg_pool2d(x, 3, 1, 1, count_include_pad=False)


def gn1(x, g, b, eps):
    """F.group_norm with one group; torch refuses a group of a single value ("expected more
    than 1 value per channel"), so that case (the all-1 shapes) uses the textbook formula,
    whose value there is b."""
    if x[0].numel() > 1:
        return F.group_norm(x, 1, g, b, eps)
    mu = x.mean(dim=(1, 2, 3), keepdim=True)
    var = ((x - mu) ** 2).mean(dim=(1, 2, 3), keepdim=True)
    return (x - mu) / torch.sqrt(var + eps) * g[:, None, None] + b[:, None, None]


def gen_vision():
    for tag, shape in {"2x3x5x7": (2, 3, 5, 7), "1x2x1x1": (1, 2, 1, 1), "1x1x2x4": (1, 1, 2, 4)}.items():
        name = "vision_pool_" + tag
        x = randf(rng_for(name), shape)
        X = t64(x)
        case(VISION, "poolformer_mixer", name, {"x": x}, {"y": f32(pool_ref(X) - X)}, F32,
             "torch F.avg_pool2d(3, 1, 1, count_include_pad=False) - x, float64")
    for tag, shape in {"2x3x5x7": (2, 3, 5, 7), "1x1x1x1": (1, 1, 1, 1)}.items():
        name = "vision_poolres_" + tag
        x = randf(rng_for(name), shape)
        X = t64(x)
        case(VISION, "poolformer_residual", name, {"x": x}, {"y": f32(X + (pool_ref(X) - X))}, F32,
             "torch x + (F.avg_pool2d(count_include_pad=False) - x), float64")

    eps = np.array(1e-5, dtype=np.float32)
    for tag, (b, c, h, w, f) in {"2x4x5x3": (2, 4, 5, 3, 8), "all1": (1, 1, 1, 1, 1)}.items():
        name = "vision_poolblock_" + tag
        r = rng_for(name)
        x = randf(r, (b, c, h, w))
        g1, n1, ls1 = randf(r, (c,), 1.5), randf(r, (c,)), randf(r, (c,))
        g2, n2, ls2 = randf(r, (c,), 1.5), randf(r, (c,)), randf(r, (c,))
        w1, b1, w2, b2 = randf(r, (f, c)), randf(r, (f,)), randf(r, (c, f)), randf(r, (c,))
        X = t64(x)
        t = gn1(X, t64(g1), t64(n1), float(eps))
        x1 = X + t64(ls1)[:, None, None] * (pool_ref(t) - t)
        t = gn1(x1, t64(g2), t64(n2), float(eps))
        m = F.conv2d(F.gelu(F.conv2d(t, t64(w1)[:, :, None, None], t64(b1))), t64(w2)[:, :, None, None], t64(b2))
        y = x1 + t64(ls2)[:, None, None] * m
        case(VISION, "poolformer_block", name,
             {"x": x, "g1": g1, "n1": n1, "ls1": ls1, "g2": g2, "n2": n2, "w1": w1, "b1": b1,
              "w2": w2, "b2": b2, "ls2": ls2, "eps": eps}, {"y": f32(y)}, F32,
             "torch float64: F.group_norm(1 group), avg_pool2d(count_include_pad=False), 1x1 F.conv2d, F.gelu")

    # SHViT SHSA, as the released module computes it
    for tag, (b, p, q, h, w, k) in {"2x3p2x3x4k4": (2, 3, 2, 3, 4, 4), "all1": (1, 1, 1, 1, 1, 1)}.items():
        name = "vision_shsa_" + tag
        r = rng_for(name)
        c = p + q
        x = randf(r, (b, c, h, w))
        gg, gb = randf(r, (p,), 1.5), randf(r, (p,))
        wq, bq, wk, bk = randf(r, (k, p)), randf(r, (k,)), randf(r, (k, p)), randf(r, (k,))
        wv, bv = randf(r, (p, p)), randf(r, (p,))
        wp, bp = randf(r, (c, c)), randf(r, (c,))
        X = t64(x)
        x1, x2 = torch.split(X, [p, q], dim=1)
        x1 = gn1(x1, t64(gg), t64(gb), float(eps))
        qkv = F.conv2d(x1, torch.cat([t64(wq), t64(wk), t64(wv)])[:, :, None, None],
                       torch.cat([t64(bq), t64(bk), t64(bv)]))
        qq, kk, vv = torch.split(qkv, [k, k, p], dim=1)
        qq, kk, vv = qq.flatten(2), kk.flatten(2), vv.flatten(2)
        att = F.scaled_dot_product_attention(qq.transpose(-2, -1), kk.transpose(-2, -1), vv.transpose(-2, -1))
        x1 = att.transpose(-2, -1).reshape(b, p, h, w)
        y = F.conv2d(F.relu(torch.cat([x1, x2], dim=1)), t64(wp)[:, :, None, None], t64(bp))
        case(VISION, "shvit_shsa", name,
             {"x": x, "gn_g": gg, "gn_b": gb, "wq": wq, "bq": bq, "wk": wk, "bk": bk, "wv": wv, "bv": bv,
              "wp": wp, "bp": bp, "eps": eps}, {"y": f32(y)}, F32,
             "torch float64: SHSA forward (split, F.group_norm, 1x1 F.conv2d, F.scaled_dot_product_attention, cat); "
             "-D Q: tcc binds no size from a P + Q axis", {"Q": q})

    # EfficientViT cascaded group attention, as the released module computes it (eval mode)
    for tag, (b, g, e, h, w, k, ks) in {"2x3x4x3x5k2": (2, 3, 4, 3, 5, 2, 3), "1x2x3x4x4ks5": (1, 2, 3, 4, 4, 3, 5),
                                        "all1": (1, 1, 1, 1, 1, 1, 1)}.items():
        name = "vision_cga_" + tag
        r = rng_for(name)
        c = g * e
        x = randf(r, (b, c, h, w))
        wqkv = randf(r, (g, 2 * k + e, e))
        bqkv = randf(r, (g, 2 * k + e))
        wd, bd = randf(r, (g, k, ks, ks), 0.5), randf(r, (g, k))
        table = randf(r, (g, h * w))                  # attention_biases: [heads, offsets]
        wp, bp = randf(r, (c, c)), randf(r, (c,))
        points = list(itertools.product(range(h), range(w)))
        offsets, idxs = {}, []
        for p1 in points:
            for p2 in points:
                off = (abs(p1[0] - p2[0]), abs(p1[1] - p2[1]))
                if off not in offsets:
                    offsets[off] = len(offsets)
                idxs.append(offsets[off])
        ab_full = t64(table)[:, torch.tensor(idxs).view(h * w, h * w)]     # [G, N, N]
        X = t64(x)
        feats_in = X.chunk(g, dim=1)
        feats_out = []
        feat = feats_in[0]
        for i in range(g):
            if i > 0:
                feat = feat + feats_in[i]
            feat = F.conv2d(feat, t64(wqkv[i])[:, :, None, None], t64(bqkv[i]))
            qq, kk, vv = feat.view(b, -1, h, w).split([k, k, e], dim=1)
            qq = F.conv2d(qq, t64(wd[i])[:, None], t64(bd[i]), padding=ks // 2, groups=k)
            qq, kk, vv = qq.flatten(2), kk.flatten(2), vv.flatten(2)
            o = F.scaled_dot_product_attention(qq.transpose(-2, -1), kk.transpose(-2, -1), vv.transpose(-2, -1),
                                               attn_mask=ab_full[i])
            feat = o.transpose(-2, -1).reshape(b, e, h, w)
            feats_out.append(feat)
        cat = torch.cat(feats_out, 1)
        assert c * h * w == 1 or 0.05 < (cat > 0).double().mean() < 0.95, (name, "ReLU input one-signed")
        y = F.conv2d(F.relu(cat), t64(wp)[:, :, None, None], t64(bp))
        case(VISION, "efficientvit_cga", name,
             {"x": x, "wq": np.ascontiguousarray(wqkv[:, :k]), "bq": np.ascontiguousarray(bqkv[:, :k]),
              "wk": np.ascontiguousarray(wqkv[:, k:2 * k]), "bk": np.ascontiguousarray(bqkv[:, k:2 * k]),
              "wv": np.ascontiguousarray(wqkv[:, 2 * k:]), "bv": np.ascontiguousarray(bqkv[:, 2 * k:]),
              "wd": wd, "bd": bd, "ab": table.reshape(g, h, w), "wp": wp, "bp": bp},
             {"y": f32(y)}, F32,
             "torch float64: CGA forward (chunk, cascade, 1x1 + depthwise F.conv2d, SDPA with the gathered "
             "relative-position bias as attn_mask, cat, proj)")

    # EfficientViM HSM-SSD, as the released HSMSSD.forward computes it
    for tag, (b, d, h, w, n, di) in {"2x4x3x5n3": (2, 4, 3, 5, 3, 4), "1x3x4x4n2di5": (1, 3, 4, 4, 2, 5),
                                     "all1": (1, 1, 1, 1, 1, 1)}.items():
        name = "vision_hsm_ssd_" + tag
        r = rng_for(name)
        x = randf(r, (b, d, h, w))
        wbcdt = randf(r, (3 * n, d))
        dw = randf(r, (3 * n, 1, 3, 3))
        a = f32(r.uniform(1, 16, size=n))
        whz = randf(r, (2 * di, d))
        wo = randf(r, (d, di))
        dskip = np.array(r.uniform(0.5, 1.5), dtype=np.float32)
        X = t64(x).flatten(2)                                              # [B, D, L]
        bcdt = F.conv2d(F.conv1d(X, t64(wbcdt)[:, :, None]).view(b, -1, h, w), t64(dw), padding=1,
                        groups=3 * n).flatten(2)
        Bm, Cm, dt = torch.split(bcdt, [n, n, n], dim=1)
        A = (dt + t64(a).view(1, -1, 1)).softmax(-1)
        hs = X @ (A * Bm).transpose(-2, -1)                                # [B, D, N]
        hh, z = torch.split(F.conv1d(hs, t64(whz)[:, :, None]), [di, di], dim=1)
        hs = F.conv1d(hh * F.silu(z) + hh * float(dskip), t64(wo)[:, :, None])
        y = (hs @ Cm).view(b, -1, h, w)
        case(VISION, "hsm_ssd", name,
             {"x": x, "wb": np.ascontiguousarray(wbcdt[:n]), "wc": np.ascontiguousarray(wbcdt[n:2 * n]),
              "wdt": np.ascontiguousarray(wbcdt[2 * n:]), "dwb": np.ascontiguousarray(dw[:n]),
              "dwc": np.ascontiguousarray(dw[n:2 * n]), "dwdt": np.ascontiguousarray(dw[2 * n:]), "a": a,
              "wh": np.ascontiguousarray(whz[:di]), "wz": np.ascontiguousarray(whz[di:]), "wo": wo,
              "dskip": dskip},
             {"y": f32(y), "h": f32(hs)}, F32,
             "torch float64: HSMSSD.forward (F.conv1d, depthwise F.conv2d, softmax over tokens, F.silu)")


CASES_HEADER = """\
# Numeric cases for the ivit, conv and effvit models (stdlib/ivit.tdsl, stdlib/conv.tdsl,
# stdlib/vision.tdsl), run by run_numeric.sh on both engines (see its header):
#
#   FILE KERNEL [IN=INPUT.npy]... -> OUT=REFERENCE.npy... [rtol=R] [atol=A] [-D NAME=VALUE]...
#
# Generated by gen_refs_ivit_conv_vision.py (data in data_m3/); edit that script, not this
# file. The comment above each case names its reference. Tolerances: integer kernels exact;
# single convolutions / pooling rtol=1e-5 atol=1e-6 (a few f32 roundings per output, any
# summation order); whole blocks with norms, exp and attention rtol=1e-4 atol=1e-5 (dozens
# of f32 roundings per output, cancellation near 0).
"""


def main():
    os.makedirs(DATA, exist_ok=True)
    for f in os.listdir(DATA):
        if f.endswith(".npy"):
            os.remove(os.path.join(DATA, f))
    torch.set_default_dtype(torch.float64)
    gen_ivit()
    gen_conv()
    gen_vision()
    with open(os.path.join(HERE, CASES_FILE), "w") as f:
        f.write(CASES_HEADER)
        for line in CASES:
            f.write(line + "\n")
    ncases = sum(1 for c in CASES if not c.startswith("#"))
    print("gen_refs_ivit_conv_vision: %d cases, %d bytes of .npy" % (ncases, BYTES[0]))
    if BYTES[0] > 300_000:
        sys.exit("gen_refs_ivit_conv_vision: data larger than 300 KB")


if __name__ == "__main__":
    main()
