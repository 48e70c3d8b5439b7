#!/usr/bin/env python3
"""Independent references for the tier-1 models attn, attn_decode, softmax, norms, mlp and
hpc (docs/models_part_attention_mlp_hpc.md): inputs and expected outputs as .npy files under
data_m1/, and one line per case in cases_attention_mlp_hpc.txt (run by run_numeric.sh on the
interpreter and on compiled code).

Run with the project's venv (PyTorch and numpy):
    /work/venv/bin/python tests/numeric/gen_refs_attention_mlp_hpc.py
The output is deterministic (each case seeds its own generator from its name).

References. Where PyTorch has the model as a built-in, the reference is that built-in
evaluated in float64 on the (f32) inputs and rounded to f32 once:
  torch.softmax, F.rms_norm, F.linear, F.gelu, F.silu, F.scaled_dot_product_attention,
  torch.ops.aten._scaled_dot_product_flash_attention_for_cpu (FlashAttention-2's forward
  for CPU: returns the output and the logsumexp).
Where there is none, the reference is written here, in torch or numpy float64, from the
paper's formula and independently of the tdsl text:
  PolyNorm (the authors' module, Zhuo et al. 2024), RoPE and the decoder block (Meta's
  llama/model.py: complex-number rotary embedding, cache writes by index assignment), the
  Lean-Attention partials (numpy), and the HPC kernels (numpy; SpMV from explicit CSR
  arrays, CG from the textbook update; scipy is not installed).
Each case line is preceded by a comment naming its reference and tolerance reason.

Equivalence tests are cases too: two formulations run on the same inputs against the same
reference (softmax vs softmax_twopass vs softmax_twopass_extexp; attention_causal_lse vs
attention_causal_flash; attention_decode vs attention_decode_split for several chunkings;
attention_decode_merge fed the reference partials).
"""
import math
import os
import zlib

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "data_m1")
CASES_FILE = os.path.join(HERE, "cases_attention_mlp_hpc.txt")
NN = "../../stdlib/nn.tdsl"
ATTN = "../../stdlib/attention.tdsl"
LLAMA = "../../stdlib/llama.tdsl"
HPC = "../../stdlib/hpc.tdsl"

CASES = []
BYTES = [0]
SAVED = {}   # id(array) -> path, so that one input array shared by cases is stored once


def rng_for(name):
    return np.random.default_rng(zlib.crc32(name.encode()))


def save(name, arr):
    key = id(arr)
    if key in SAVED:
        return SAVED[key][1]
    path = os.path.join(DATA, name + ".npy")
    assert not os.path.exists(path), "two arrays named " + name
    np.save(path, np.array(arr, order="C"))   # C order (npycmp reads no other); keeps 0-d
    BYTES[0] += os.path.getsize(path)
    rel = "data_m1/" + name + ".npy"
    SAVED[key] = (arr, rel)     # keep arr alive so that its id is not reused
    return rel


def case(file, kernel, name, ins, outs, tol, note, sizes=None):
    """Saves ins and outs (dicts name -> array) as data_m1/<name>_<param>.npy and adds a
    line preceded by `# note`. An array object passed to several cases is saved once."""
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
    """A float64 result (tensor or array) rounded to f32 once."""
    if isinstance(a, torch.Tensor):
        a = a.detach().numpy()
    return np.asarray(a, dtype=np.float64).astype(np.float32)


def t64(a):
    return torch.from_numpy(np.asarray(a, dtype=np.float64))


def randn(g, shape, scale=1.0):
    return (g.standard_normal(shape) * scale).astype(np.float32)


def i64(v):
    return np.array(v, dtype=np.int64)


# ---- softmax (nn) ------------------------------------------------------------------------

def gen_softmax():
    # Reference: torch.softmax in float64. Three formulations against it.
    #   softmax (three-pass): 1e-6 / 1e-7 as the existing softmax cases.
    #   softmax_twopass (online): rtol 2e-6 (~32 f32 ulps; 8 seen): the running sum is a
    #   scan state rounded to f32 at every step and rescaled by a rounded e^(m_old - m_new)
    #   whenever the max rises, so its error grows with N (≤ 33 here) instead of staying at
    #   the few ulps of a sum accumulated wide. atol 1e-7 for tiny probabilities.
    #   softmax_twopass_extexp: the same (the powers of two are exact, the mantissas
    #   e^(x - n ln2) round once each, the (s, n) state rounds at every step).
    tags = (("3x7", (3, 7), 0.0), ("1x1", (1, 1), 0.0), ("big", (2, 9), 1000.0),
            ("4x33", (4, 33), 0.0), ("mask", (3, 6), 0.0))
    for tag, shape, offset in tags:
        name = "softmax2_" + tag
        x = (randn(rng_for(name), shape, 1.5) + np.float32(offset)).astype(np.float32)
        if tag == "mask":
            # masked entries, as attention produces: a leading -inf prefix (the online form
            # must not compute e^(-inf + inf)), -inf in the middle and at the end
            x[0, :2] = -np.inf
            x[1, 3] = -np.inf
            x[2, 0] = -np.inf
            x[2, 5] = -np.inf
        y = f32(torch.softmax(t64(x), dim=-1))
        what = {"big": "+1000 offset (exp overflows unless rescaled)",
                "mask": "-inf entries (leading prefix, middle, end)"}.get(tag, "random")
        case(NN, "softmax", name, {"x": x}, {"y": y}, (1e-6, 1e-7),
             "softmax (three-pass) %s %s vs torch.softmax f64; 1e-6 as existing softmax cases"
             % (tag, what))
        case(NN, "softmax_twopass", name, {"x": x}, {"y": y}, (2e-6, 1e-7),
             "softmax_twopass (online) same input, same reference (equivalence); rtol 2e-6: "
             "per-step rescaling of the running sum")
        if tag != "mask":
            case(NN, "softmax_twopass_extexp", name, {"x": x}, {"y": y}, (2e-6, 1e-7),
                 "softmax_twopass_extexp (paper's (mantissa, exponent) form) same input and "
                 "reference; finite inputs only; rtol 2e-6 as above")


# ---- PolyNorm (nn) -------------------------------------------------------------------------

def polynorm_ref(x, a, b, eps):
    """The authors' PolyNorm module (Zhuo et al. 2024, official code) in float64; their
    `weight` is [a3, a2, a1] (weight[0] multiplies x^3)."""
    weight = t64(a[::-1].copy())
    bias = t64(b)
    x = t64(x)

    def _norm(z):
        return z * torch.rsqrt(z.pow(2).mean(-1, keepdim=True) + float(eps))
    return (weight[0] * _norm(x ** 3) + weight[1] * _norm(x ** 2) + weight[2] * _norm(x)
            + bias)


def gen_polynorm():
    # rtol 1e-5 / atol 1e-6: three rsqrt-normalised terms, each a few f32 ulps, whose sum
    # may cancel (atol); the means of x², x⁴, x⁶ are summed in f64 by the interpreter but
    # in f32 by compiled code. Seen: 7.6e-7 relative, 9.5e-7 absolute at |y| ~ 1.
    for tag, (r, d), eps in (("3x7", (3, 7), 1e-6), ("1x1", (1, 1), 1e-6),
                             ("eps", (2, 5), 0.5)):
        name = "polynorm_" + tag
        g = rng_for(name)
        x = randn(g, (r, d), 1.5)
        a = (g.standard_normal(3) * 0.7).astype(np.float32)
        b = np.array(g.standard_normal() * 0.3, dtype=np.float32)
        e = np.array(eps, dtype=np.float32)
        y = f32(polynorm_ref(x, a, b, e))
        case(NN, "polynorm", name, {"x": x, "a": a, "b": b, "eps": e}, {"y": y}, (1e-5, 1e-6),
             "polynorm %s vs the authors' PolyNorm module in torch f64 (eps=%g)" % (tag, eps))


# ---- LayerNorm, RMSNorm (nn) against the torch built-ins ------------------------------------

def gen_norms():
    # F.layer_norm / F.rms_norm in float64; rtol 1e-5, atol 1e-6 as the existing nn norm
    # cases (a mean, a variance and an rsqrt, a few ulps each). "shift": rows with mean 20
    # and spread 1, where a one-pass E[x²] - E[x]² variance would lose ~8 bits.
    for tag, (r, d), shift in (("3x7", (3, 7), 0.0), ("1x1", (1, 1), 0.0), ("shift", (2, 9), 20.0)):
        name = "norms_" + tag
        g = rng_for(name)
        x = (randn(g, (r, d), 1.0) + np.float32(shift)).astype(np.float32)
        w = (1 + 0.5 * g.standard_normal(d)).astype(np.float32)
        b = (0.5 * g.standard_normal(d)).astype(np.float32)
        eps = np.array(1e-5, dtype=np.float32)
        y = F.layer_norm(t64(x), (d,), weight=t64(w), bias=t64(b), eps=1e-5)
        case(NN, "layernorm", name + "_ln", {"x": x, "g": w, "b": b, "eps": eps}, {"y": f32(y)},
             (1e-5, 1e-6), "layernorm %s vs F.layer_norm f64" % tag)
        y = F.rms_norm(t64(x), (d,), weight=t64(w), eps=1e-5)
        case(NN, "rmsnorm", name + "_rms", {"x": x, "g": w, "eps": eps}, {"y": f32(y)},
             (1e-5, 1e-6), "rmsnorm %s vs F.rms_norm f64" % tag)


# ---- MLP blocks (nn) -----------------------------------------------------------------------

MLP_TOL = (1e-5, 2e-6)


def gen_mlp():
    # F.linear / F.gelu (erf form) / F.silu in float64. rtol 1e-5, atol 2e-6: two
    # matrix products of O(1) values (sums of up to F = 7 terms that can cancel to near 0,
    # so the absolute part is a few ulps of the terms' size). Seen: 2.4e-7 absolute.
    for tag, (m, d, f, e) in (("3x5x7x4", (3, 5, 7, 4)), ("1x1x1x1", (1, 1, 1, 1))):
        for kern in ("mlp_gelu", "mlp_silu"):
            name = "%s_%s" % (kern, tag)
            g = rng_for(name)
            x = randn(g, (m, d))
            w1 = randn(g, (f, d), 1 / math.sqrt(d))
            b1 = randn(g, (f,), 0.5)
            w2 = randn(g, (e, f), 1 / math.sqrt(f))
            b2 = randn(g, (e,), 0.5)
            act = F.gelu if kern == "mlp_gelu" else F.silu
            y = F.linear(act(F.linear(t64(x), t64(w1), t64(b1))), t64(w2), t64(b2))
            case(NN, kern, name, {"x": x, "w1": w1, "b1": b1, "w2": w2, "b2": b2},
                 {"y": f32(y)}, MLP_TOL,
                 "%s %s vs F.linear(%s(F.linear(x, w1, b1)), w2, b2) f64"
                 % (kern, tag, act.__name__))
        name = "mlp_swiglu_" + tag
        g = rng_for(name)
        x = randn(g, (m, d))
        w1 = randn(g, (f, d), 1 / math.sqrt(d))
        w3 = randn(g, (f, d), 1 / math.sqrt(d))
        w2 = randn(g, (e, f), 1 / math.sqrt(f))
        y = F.linear(F.silu(F.linear(t64(x), t64(w1))) * F.linear(t64(x), t64(w3)), t64(w2))
        case(NN, "mlp_swiglu", name, {"x": x, "w1": w1, "w3": w3, "w2": w2}, {"y": f32(y)},
             MLP_TOL,
             "mlp_swiglu %s vs F.linear(F.silu(F.linear(x, w1)) * F.linear(x, w3), w2) f64"
             % tag)


# ---- attention (attention.tdsl) ------------------------------------------------------------

# attention: rtol 1e-5, atol 1e-6: softmax-weighted sums of O(1) values, a few f32 ulps per
# stage (scores, exp, sum, division, weighted sum); compiled code sums in f32 in its own
# order. Seen: up to 8% of this bound (about 8e-7 relative).
ATT_TOL = (1e-5, 1e-6)


def gen_attention():
    # attention_masked vs F.scaled_dot_product_attention(attn_mask=float mask) f64
    for tag, (b, h, n, m, d) in (("1x2x5x6x4", (1, 2, 5, 6, 4)), ("1x1x1x1x1", (1, 1, 1, 1, 1))):
        name = "attn_masked_" + tag
        g = rng_for(name)
        q, k, v = randn(g, (b, h, n, d)), randn(g, (b, h, m, d)), randn(g, (b, h, m, d))
        mask = randn(g, (b, h, n, m), 0.5)
        if m > 1:   # -inf entries, never a whole row
            drop = g.random((b, h, n, m)) < 0.3
            drop[..., 0] = False
            mask[drop] = -np.inf
        o = F.scaled_dot_product_attention(t64(q), t64(k), t64(v), attn_mask=t64(mask))
        case(ATTN, "attention_masked", name, {"q": q, "k": k, "v": v, "mask": mask},
             {"o": f32(o)}, ATT_TOL,
             "attention_masked %s vs SDPA(attn_mask=additive float mask with -inf) f64" % tag)

    # causal attention with logsumexp: the naive text and the hand-written FlashAttention-2
    # scan, same inputs, same reference (FA2's CPU forward, which returns o and lse).
    # lse: rtol 1e-5, atol 1e-6 (a log of a sum: absolute error ~ ulp of the sum).
    for tag, (b, h, n, d), splits in (("1x2x6x4", (1, 2, 6, 4), ((3, 2), (2, 3), (1, 6), (6, 1))),
                                      ("2x1x5x3", (2, 1, 5, 3), ((5, 1), (1, 5))),
                                      ("1x1x1x1", (1, 1, 1, 1), ((1, 1),))):
        name = "attn_causal_lse_" + tag
        g = rng_for(name)
        q, k, v = randn(g, (b, h, n, d)), randn(g, (b, h, n, d)), randn(g, (b, h, n, d))
        o, lse = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu(
            t64(q), t64(k), t64(v), 0.0, True)
        # cross-checks of the reference itself (not of tdsl): SDPA and an explicit logsumexp
        o2 = F.scaled_dot_product_attention(t64(q), t64(k), t64(v), is_causal=True)
        s = t64(q) @ t64(k).transpose(-1, -2) / math.sqrt(d)
        s = s.masked_fill(torch.ones(n, n, dtype=torch.bool).triu(1), float("-inf"))
        assert torch.allclose(o, o2, atol=1e-12) and torch.allclose(lse, torch.logsumexp(s, -1),
                                                                     atol=1e-12)
        o, lse = f32(o), f32(lse)
        case(ATTN, "attention_causal_lse", name, {"q": q, "k": k, "v": v},
             {"o": o, "lse": lse}, ATT_TOL,
             "attention_causal_lse %s vs aten._scaled_dot_product_flash_attention_for_cpu "
             "(is_causal) f64: o and logsumexp" % tag)
        for nb, bc in splits:
            case(ATTN, "attention_causal_flash", name, {"q": q, "k": k, "v": v},
                 {"o": o, "lse": lse}, ATT_TOL,
                 "attention_causal_flash %s NB=%d Bc=%d (FA2 Algorithm 1 as a scan over key "
                 "blocks): same inputs and reference (equivalence)" % (tag, nb, bc),
                 sizes={"NB": nb, "Bc": bc})


def decode_partials(q, kc, vc, c, l):
    """Lean Attention partials per chunk in numpy float64: mᶜ, ℓᶜ, unnormalised oᶜ."""
    q, kc, vc = (np.asarray(a, dtype=np.float64) for a in (q, kc, vc))
    b, h, t, d = kc.shape
    assert t == c * l
    kcc = kc.reshape(b, h, c, l, d)
    vcc = vc.reshape(b, h, c, l, d)
    s = np.einsum("bhd,bhcjd->bhcj", q, kcc) / math.sqrt(d)
    mp = s.max(axis=-1)
    e = np.exp(s - mp[..., None])
    lp = e.sum(axis=-1)
    op = np.einsum("bhcj,bhcjd->bhcd", e, vcc)
    return op, mp, lp


def gen_decode():
    # Decode: one query row per head vs SDPA with N_q = 1 (q unsqueezed to [B, H, 1, D]).
    for tag, (b, h, t, d), splits in (("2x3x12x4", (2, 3, 12, 4), ((3, 4), (4, 3), (1, 12), (12, 1))),
                                      ("1x1x1x1", (1, 1, 1, 1), ((1, 1),))):
        name = "attn_decode_" + tag
        g = rng_for(name)
        q, kc, vc = randn(g, (b, h, d)), randn(g, (b, h, t, d)), randn(g, (b, h, t, d))
        o = F.scaled_dot_product_attention(t64(q)[:, :, None, :], t64(kc), t64(vc))[:, :, 0, :]
        o = f32(o)
        case(ATTN, "attention_decode", name, {"q": q, "kc": kc, "vc": vc}, {"o": o}, ATT_TOL,
             "attention_decode %s vs SDPA with N_q = 1 f64" % tag)
        for c, l in splits:
            op, mp, lp = decode_partials(q, kc, vc, c, l)
            sub = "%s_%dx%d" % (name, c, l)
            op, mp, lp = f32(op), f32(mp), f32(lp)
            case(ATTN, "attention_decode_split", sub, {"q": q, "kc": kc, "vc": vc},
                 {"o": o, "op": op, "mp": mp, "lp": lp}, ATT_TOL,
                 "attention_decode_split %s C=%d L=%d: o vs the same SDPA reference "
                 "(split-KV vs whole), partials vs numpy f64 partials" % (tag, c, l),
                 sizes={"C": c, "L": l})
            case(ATTN, "attention_decode_partial", sub, {"q": q, "kc": kc, "vc": vc},
                 {"op": op, "mp": mp, "lp": lp}, ATT_TOL,
                 "attention_decode_partial %s C=%d L=%d vs numpy f64 partials" % (tag, c, l),
                 sizes={"C": c, "L": l})
            case(ATTN, "attention_decode_merge", sub, {"op": op, "mp": mp, "lp": lp},
                 {"o": o}, ATT_TOL,
                 "attention_decode_merge %s C=%d L=%d: the reference partials merged vs the "
                 "SDPA output of the whole cache" % (tag, c, l))


# ---- llama.tdsl --------------------------------------------------------------------------

def precompute_freqs_cis(dim, positions, theta=10000.0):
    """Meta's llama/model.py precompute_freqs_cis, in float64, at the given positions."""
    freqs = 1.0 / (theta ** (torch.arange(0, dim, 2, dtype=torch.float64)[: (dim // 2)] / dim))
    freqs = torch.outer(torch.as_tensor(positions, dtype=torch.float64), freqs)
    return torch.polar(torch.ones_like(freqs), freqs)            # complex128 [T, dim/2]


def apply_rope(x, freqs_cis):
    """Meta's apply_rotary_emb for one tensor: pairs (x[2i], x[2i+1]) as complex numbers.
    x: [..., T, D] float64, freqs_cis: [T, D/2]."""
    xc = torch.view_as_complex(x.reshape(*x.shape[:-1], -1, 2).contiguous())
    return torch.view_as_real(xc * freqs_cis).flatten(-2)


# RoPE: rtol 1e-5, atol 5e-6: θ = pos·10000^(-2i/D) is computed in f32 by the kernel (the
# power rounds, then the product), so θ carries a relative error of a few ulps, up to
# ~50 · 2⁻²³ ≈ 6e-6 rad at pos = 50, which moves an output by |x| times that; the
# reference angle is float64. Seen: 7.7e-7 absolute at pos = 50.
ROPE_TOL = (1e-5, 5e-6)
# decoder block: rtol 2e-5, atol 2e-6: RMSNorm, three projections, RoPE, softmax attention,
# the output projection and the SwiGLU MLP, each rounding in f32 (compiled code also sums
# in f32, in its own order), compounded over ~8 stages. Seen: 3.6e-7 absolute, |y| ~ 1-3.
BLOCK_TOL = (2e-5, 2e-6)


def gen_llama():
    # rope over a sequence, positions per token
    for tag, (b, h, t, d), pos in (("2x3x5x6", (2, 3, 5, 6), [0, 1, 2, 7, 50]),
                                   ("1x1x1x2", (1, 1, 1, 2), [3])):
        name = "rope_" + tag
        x = randn(rng_for(name), (b, h, t, d))
        y = apply_rope(t64(x), precompute_freqs_cis(d, pos))
        case(LLAMA, "rope", name, {"x": x, "pos": i64(pos)}, {"y": f32(y)}, ROPE_TOL,
             "rope %s positions %s vs Meta's apply_rotary_emb (complex pairs (x2i, x2i+1)) f64"
             % (tag, pos))
    for tag, (b, h, d), pos in (("2x3x8", (2, 3, 8), 5), ("1x1x2", (1, 1, 2), 0)):
        name = "rope_at_" + tag
        x = randn(rng_for(name), (b, h, d))
        y = apply_rope(t64(x)[:, :, None, :], precompute_freqs_cis(d, [pos]))[:, :, 0, :]
        case(LLAMA, "rope_at", name, {"x": x, "pos": i64(pos)}, {"y": f32(y)}, ROPE_TOL,
             "rope_at %s pos=%d vs Meta's apply_rotary_emb f64" % (tag, pos))

    # rmsnorm and swiglu re-exported
    for tag, (r, e) in (("3x8", (3, 8)), ("1x1", (1, 1))):
        name = "llama_rmsnorm_" + tag
        g = rng_for(name)
        x, w = randn(g, (r, e), 2.0), (1 + 0.5 * g.standard_normal(e)).astype(np.float32)
        eps = np.array(1e-5, dtype=np.float32)
        y = F.rms_norm(t64(x), (e,), weight=t64(w), eps=1e-5)
        case(LLAMA, "rmsnorm", name, {"x": x, "g": w, "eps": eps}, {"y": f32(y)}, (1e-5, 1e-6),
             "llama rmsnorm %s vs F.rms_norm f64" % tag)
        name = "llama_swiglu_" + tag
        g = rng_for(name)
        f = 2 * e + 1
        x = randn(g, (r, e))
        w1, w3 = randn(g, (f, e), 1 / math.sqrt(e)), randn(g, (f, e), 1 / math.sqrt(e))
        w2 = randn(g, (e, f), 1 / math.sqrt(f))
        y = F.linear(F.silu(F.linear(t64(x), t64(w1))) * F.linear(t64(x), t64(w3)), t64(w2))
        case(LLAMA, "swiglu", name, {"x": x, "w1": w1, "w3": w3, "w2": w2}, {"y": f32(y)},
             MLP_TOL, "llama swiglu %s vs LLaMA FeedForward (F.linear, F.silu) f64" % tag)

    # KV-cache append: a copy with one row replaced, exact
    for tag, (b, h, t, d), pos in (("2x2x5x3_p2", (2, 2, 5, 3), 2), ("2x2x5x3_p0", (2, 2, 5, 3), 0),
                                   ("2x2x5x3_p4", (2, 2, 5, 3), 4), ("1x1x1x1_p0", (1, 1, 1, 1), 0)):
        name = "kv_append_" + tag
        g = rng_for(name)
        cache, new = randn(g, (b, h, t, d)), randn(g, (b, h, d))
        out = torch.from_numpy(cache.copy())
        out[:, :, pos] = torch.from_numpy(new)
        case(LLAMA, "kv_append", name, {"cache": cache, "new": new, "pos": i64(pos)},
             {"out": out.numpy()}, (0.0, 0.0),
             "kv_append %s vs torch index assignment cache[:, :, pos] = new; exact (a copy)" % tag)

    # attention against the cache rows 0..pos
    for tag, (b, h, t, d), pos in (("2x2x6x4_p3", (2, 2, 6, 4), 3), ("2x2x6x4_p5", (2, 2, 6, 4), 5),
                                   ("2x2x6x4_p0", (2, 2, 6, 4), 0), ("1x1x1x1_p0", (1, 1, 1, 1), 0)):
        name = "attn_cached_" + tag
        g = rng_for(name)
        q, kc, vc = randn(g, (b, h, d)), randn(g, (b, h, t, d)), randn(g, (b, h, t, d))
        mask = t64(np.arange(t) <= pos).bool()[None, None, None, :]
        o = F.scaled_dot_product_attention(t64(q)[:, :, None], t64(kc), t64(vc),
                                           attn_mask=mask)[:, :, 0]
        case(LLAMA, "attention_cached", name, {"q": q, "kc": kc, "vc": vc, "pos": i64(pos)},
             {"o": f32(o)}, ATT_TOL,
             "attention_cached %s vs SDPA(N_q = 1, bool mask t <= pos) f64" % tag)

    # the whole decoder block, one decode step
    for tag, (b, e, h, d, f, t), pos in (("2x8x2x4x12x6_p3", (2, 8, 2, 4, 12, 6), 3),
                                         ("2x8x2x4x12x6_p0", (2, 8, 2, 4, 12, 6), 0),
                                         ("2x8x2x4x12x6_p5", (2, 8, 2, 4, 12, 6), 5),
                                         ("1x1x1x2x1x1_p0", (1, 1, 1, 2, 1, 1), 0)):
        name = "decoder_block_" + tag
        g = rng_for(name)
        x = randn(g, (b, e))
        g_attn = (1 + 0.2 * g.standard_normal(e)).astype(np.float32)
        g_ffn = (1 + 0.2 * g.standard_normal(e)).astype(np.float32)
        wq, wk, wv = (randn(g, (h, d, e), 1 / math.sqrt(e)) for _ in range(3))
        wo = randn(g, (e, h, d), 1 / math.sqrt(h * d))
        w1, w3 = randn(g, (f, e), 1 / math.sqrt(e)), randn(g, (f, e), 1 / math.sqrt(e))
        w2 = randn(g, (e, f), 1 / math.sqrt(f))
        kc, vc = randn(g, (b, h, t, d)), randn(g, (b, h, t, d))   # rows ≥ pos: stale garbage
        eps = np.array(1e-5, dtype=np.float32)
        y, kc_out, vc_out = llama_block_ref(x, g_attn, wq, wk, wv, wo, g_ffn, w1, w3, w2,
                                            kc, vc, pos, 1e-5)
        case(LLAMA, "decoder_block", name,
             {"x": x, "g_attn": g_attn, "wq": wq, "wk": wk, "wv": wv, "wo": wo, "g_ffn": g_ffn,
              "w1": w1, "w3": w3, "w2": w2, "kc": kc, "vc": vc, "pos": i64(pos), "eps": eps},
             {"y": f32(y), "kc_out": f32(kc_out), "vc_out": f32(vc_out)}, BLOCK_TOL,
             "decoder_block %s vs a Meta llama/model.py TransformerBlock decode step in torch "
             "f64 (F.rms_norm, F.linear, complex RoPE, cache index assignment, SDPA with "
             "t <= pos, F.silu); rtol 2e-5 atol 2e-6: ~8 f32 stages compounded" % tag)


def llama_block_ref(x, g_attn, wq, wk, wv, wo, g_ffn, w1, w3, w2, kc, vc, pos, eps):
    """One decode step of Meta's TransformerBlock (llama/model.py), float64, batch-first:
    h = x + attention(attention_norm(x)), out = h + feed_forward(ffn_norm(h))."""
    b, e = x.shape
    h, d = wq.shape[0], wq.shape[1]
    x = t64(x)
    wq, wk, wv = (t64(w).reshape(h * d, e) for w in (wq, wk, wv))     # torch Linear layout
    wo = t64(wo).reshape(e, h * d)
    ck, cv = t64(kc).clone(), t64(vc).clone()
    xn = F.rms_norm(x, (e,), weight=t64(g_attn), eps=eps)
    xq = F.linear(xn, wq).view(b, 1, h, d)                  # [bsz, seqlen=1, n_heads, head_dim]
    xk = F.linear(xn, wk).view(b, 1, h, d)
    xv = F.linear(xn, wv).view(b, 1, h, d)
    fc = precompute_freqs_cis(d, [pos])                    # [1, d/2]
    xq = apply_rope(xq.transpose(1, 2), fc)                # [b, h, 1, d]
    xk = apply_rope(xk.transpose(1, 2), fc)
    ck[:, :, pos] = xk[:, :, 0]                            # cache_k[:bsz, start_pos] = xk
    cv[:, :, pos] = xv.transpose(1, 2)[:, :, 0]
    keys, values = ck[:, :, : pos + 1], cv[:, :, : pos + 1]
    att = F.scaled_dot_product_attention(xq, keys, values)  # [b, h, 1, d]
    hres = x + F.linear(att.transpose(1, 2).reshape(b, h * d), wo)
    hn = F.rms_norm(hres, (e,), weight=t64(g_ffn), eps=eps)
    out = hres + F.linear(F.silu(F.linear(hn, t64(w1))) * F.linear(hn, t64(w3)), t64(w2))
    return out, ck, cv


# ---- hpc.tdsl ----------------------------------------------------------------------------

# sums of O(1) products that may cancel: the absolute part is a few ulps of the terms
# (K ≤ 8 terms of magnitude ≤ ~5 here). Seen: 4.8e-7 absolute (gemm, |C| up to ~6).
HPC_TOL = (1e-5, 2e-6)


def gen_hpc():
    for tag, n in (("7", 7), ("1", 1)):
        name = "axpy_" + tag
        g = rng_for(name)
        a = np.array(g.standard_normal() * 2, dtype=np.float32)
        x, y = randn(g, (n,)), randn(g, (n,))
        z = np.float64(a) * x.astype(np.float64) + y
        case(HPC, "axpy", name, {"a": a, "x": x, "y": y}, {"z": f32(z)}, (1e-5, 1e-6),
             "axpy n=%d vs numpy f64 a*x + y" % n)

    for tag, (m, n) in (("5x7", (5, 7)), ("1x1", (1, 1))):
        name = "gemv_" + tag
        g = rng_for(name)
        alpha, beta = (np.array(g.standard_normal(), dtype=np.float32) for _ in range(2))
        a, x, y = randn(g, (m, n)), randn(g, (n,)), randn(g, (m,))
        ref = float(alpha) * (a.astype(np.float64) @ x) + float(beta) * y
        case(HPC, "gemv", name, {"alpha": alpha, "a": a, "x": x, "beta": beta, "y": y},
             {"y_out": f32(ref)}, HPC_TOL, "gemv %s vs numpy f64 alpha*A@x + beta*y" % tag)

    for tag, (m, k, n) in (("4x6x5", (4, 6, 5)), ("1x1x1", (1, 1, 1))):
        name = "gemm_" + tag
        g = rng_for(name)
        alpha, beta = (np.array(g.standard_normal(), dtype=np.float32) for _ in range(2))
        a, b, c = randn(g, (m, k)), randn(g, (k, n)), randn(g, (m, n))
        ref = float(alpha) * (a.astype(np.float64) @ b) + float(beta) * c
        case(HPC, "gemm", name, {"alpha": alpha, "a": a, "b": b, "beta": beta, "c": c},
             {"c_out": f32(ref)}, HPC_TOL, "gemm %s vs numpy f64 alpha*A@B + beta*C" % tag)

    for tag, (m, n), density in (("6x8", (6, 8), 0.3), ("1x1", (1, 1), 1.0)):
        name = "spmv_" + tag
        g = rng_for(name)
        dense = np.where(g.random((m, n)) < density, g.standard_normal((m, n)), 0.0)
        if m > 1:
            dense[2, :] = 0.0                       # an empty row
        dense = dense.astype(np.float32)
        # CSR arrays, and the product computed from them (row by row, as CSR SpMV does)
        rowptr, col, val = [0], [], []
        for i in range(m):
            for j in range(n):
                if dense[i, j] != 0:
                    col.append(j)
                    val.append(dense[i, j])
            rowptr.append(len(col))
        x = randn(g, (n,))
        y = np.array([sum(float(val[kk]) * float(x[col[kk]])
                          for kk in range(rowptr[i], rowptr[i + 1])) for i in range(m)])
        y = f32(y)
        case(HPC, "spmv", name, {"a": dense, "x": x}, {"y": y}, HPC_TOL,
             "spmv %s (@csr, stored dense) vs a CSR row loop in Python f64" % tag)
        case(HPC, "spmv_csr_masked", name,
             {"rowptr": np.array(rowptr, dtype=np.int32), "col": np.array(col, dtype=np.int32),
              "val": np.array(val, dtype=np.float32), "x": x}, {"y": y}, HPC_TOL,
             "spmv_csr_masked %s (CSR arrays, masks for the gather) vs the same reference" % tag)

    for tag, (n, m) in (("5x7", (5, 7)), ("1x1", (1, 1))):
        name = "jacobi_" + tag
        g = rng_for(name)
        u, b = randn(g, (n, m)), randn(g, (n, m), 0.1)
        up = np.pad(u.astype(np.float64), 1)        # zero Dirichlet boundary
        ref = 0.25 * (up[:-2, 1:-1] + up[2:, 1:-1] + up[1:-1, :-2] + up[1:-1, 2:] + b)
        case(HPC, "jacobi_step", name, {"u": u, "b": b}, {"u_out": f32(ref)}, HPC_TOL,
             "jacobi_step %s vs numpy f64 slices of the zero-padded grid" % tag)
        ub = randn(g, (n + 2, m + 2))
        u64 = ub.astype(np.float64)
        ref = 0.25 * (u64[:-2, 1:-1] + u64[2:, 1:-1] + u64[1:-1, :-2] + u64[1:-1, 2:] + b)
        case(HPC, "jacobi_interior", name + "_ring", {"u": ub, "b": b}, {"u_out": f32(ref)}, HPC_TOL,
             "jacobi_interior %s (grid with its boundary ring) vs numpy f64 slices" % tag)

    # CG: a step from the start (p = r) and a later step (p != r), A SPD and well conditioned
    for tag, n in (("6", 6), ("1", 1)):
        name = "cg_" + tag
        g = rng_for(name)
        mm = g.standard_normal((n, n))
        a = (mm @ mm.T / n + np.eye(n)).astype(np.float32)
        bvec = g.standard_normal(n)
        x0 = g.standard_normal(n)
        A = a.astype(np.float64)

        def step(x, r, p):
            ap = A @ p
            alpha = (r @ r) / (p @ ap)
            x1, r1 = x + alpha * p, r - alpha * ap
            beta = (r1 @ r1) / (r @ r)
            return x1, r1, r1 + beta * p

        r0 = bvec - A @ x0
        states = [("first", (x0, r0, r0))]
        if n > 1:
            states.append(("second", step(x0, r0, r0)))
        for which, (x, r, p) in states:
            x, r, p = (np.asarray(v, dtype=np.float32) for v in (x, r, p))
            x1, r1, p1 = step(*(v.astype(np.float64) for v in (x, r, p)))
            case(HPC, "cg_step", "%s_%s" % (name, which), {"a": a, "x": x, "r": r, "p": p},
                 {"x_out": f32(x1), "r_out": f32(r1), "p_out": f32(p1)}, (1e-5, 2e-6),
                 "cg_step n=%d (%s iteration) vs the textbook update in numpy f64; rtol 1e-5 "
                 "atol 2e-6: alpha, beta are quotients of f32 dot products and r' = r - alpha Ap "
                 "cancels (for n = 1 it is exactly 0 in exact arithmetic)" % (n, which))


def main():
    os.makedirs(DATA, exist_ok=True)
    for f in os.listdir(DATA):
        if f.endswith(".npy"):
            os.remove(os.path.join(DATA, f))
    torch.set_default_dtype(torch.float64)
    gen_softmax()
    gen_norms()
    gen_polynorm()
    gen_mlp()
    gen_attention()
    gen_decode()
    gen_llama()
    gen_hpc()
    with open(CASES_FILE, "w") as out:
        out.write("# Numeric cases for the tier-1 models attn, attn_decode, softmax, norms, mlp, hpc\n"
                  "# (run_numeric.sh format; see its header). Generated by\n"
                  "# gen_refs_attention_mlp_hpc.py (inputs and references in data_m1/): edit\n"
                  "# that script, not this file. Each case is preceded by a comment naming its\n"
                  "# reference and the reason for its tolerance.\n")
        out.write("\n".join(CASES) + "\n")
    print("%d cases, %d bytes of .npy in %s" % (sum(1 for c in CASES if not c.startswith("#")),
                                               BYTES[0], DATA))


if __name__ == "__main__":
    main()
