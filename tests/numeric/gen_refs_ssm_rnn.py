#!/usr/bin/env python3
"""Writes the numeric references of the state-space, linear-attention, RNN and MatMul-free
models (stdlib/ssm.tdsl, stdlib/rnn.tdsl, stdlib/matmulfree.tdsl): inputs and expected
outputs as .npy files under data_m2/, and one line per case in cases_ssm_rnn.txt (the format
of run_numeric.sh; paths relative to tests/numeric/).

Run with an interpreter that has numpy and torch (CPU):
    /work/venv/bin/python tests/numeric/gen_refs_ssm_rnn.py
The output is deterministic: each case seeds its own generator from its name.

Where the references come from (each is written from the papers' equations or taken from a
library, never from the tdsl text):
  - torch.nn.LSTM / torch.nn.GRU (float64, weights copied in) for every LSTM and GRU case,
    the head-wise ones included: a head-wise block-diagonal R is a torch RNN whose
    weight_hh is that block-diagonal matrix;
  - torch.nn.functional.conv1d (float64) for the causal depthwise convolution;
  - float64 numpy sequential loops for GLA, retention, the selective scan, the Mamba block,
    the sLSTM (its h from the *unstabilised* cell, an independent formulation) and MLGRU;
  - numpy for the BitLinear quantisers, mimicking the f32 arithmetic of the paper's code
    (scales and the products that get rounded are formed in f32, as torch does) and then the
    ternary product in exact float64.
Equivalences: gla_recurrent and gla_chunkwise run on the same numbers (the chunkwise inputs
are the recurrent ones reshaped [H, T, .] -> [H, NC, C, .]) against one reference;
retention_parallel and retention_recurrent likewise (the reference is checked here to agree
between the numpy parallel and recurrent formulas before it is written).

Quantisation cases draw inputs whose rounding points (x s_x, W s_w, and the quantised
intermediates of MLGRU and the GLU) lie at least 1e-3 away from a .5 tie, redrawing
otherwise, so that a correct f32 kernel cannot round differently from the float64 reference.
"""
import os
import sys
import zlib

import numpy as np

try:
    import torch
except ImportError:  # the RNN references need it
    sys.exit("gen_refs_ssm_rnn: needs torch (use /work/venv/bin/python)")

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "data_m2")
SSM = "../../stdlib/ssm.tdsl"
RNN = "../../stdlib/rnn.tdsl"
MMF = "../../stdlib/matmulfree.tdsl"

CASES = []
BYTES = [0]

# Tolerances (|got - ref| <= atol + rtol |ref|, the reference rounded once to f32).
# ELEM: a few f32 roundings per output (element-wise work, short dot products).
ELEM = (1e-5, 1e-6)
# SCAN: an f32 recurrence of up to 16 steps (and the chunkwise GLA, held to the same bound as
# its recurrent twin). Each step rounds the state, so a state entry carries about T·ε ≈ 16 ·
# 6e-8 ≈ 1e-6 relative error of its largest term; an output that is a dot product of the
# state (o = q S, y = C h) can cancel below its terms, so the absolute part is 5e-6 for terms
# of size O(1)-O(10). Measured on both engines: at most 22% of this bound (the sLSTM with
# e^ĩ ≈ e^100), otherwise below 5%.
SCAN = (1e-5, 5e-6)
EXACT = (0.0, 0.0)


def rng_for(name):
    return np.random.default_rng(zlib.crc32(name.encode()))


def save(name, arr):
    path = os.path.join(DATA, name + ".npy")
    np.save(path, np.array(arr, order="C"))   # (ascontiguousarray would make 0-d 1-d)
    BYTES[0] += os.path.getsize(path)
    return "data_m2/" + name + ".npy"


def case(file, kernel, name, ins, outs, tol, note=None, sizes=None):
    """Saves ins and outs (dicts name -> array) as data_m2/<name>_<param>.npy, adds a line."""
    parts = [file, kernel]
    for k, v in list(ins.items()) + list(outs.items()):
        assert isinstance(v, np.ndarray), (name, k)
    parts += ["%s=%s" % (k, save("%s_%s" % (name, k), v)) for k, v in ins.items()]
    parts.append("->")
    parts += ["%s=%s" % (k, save("%s_%s" % (name, k), v)) for k, v in outs.items()]
    parts.append("rtol=%g atol=%g" % tol)
    for k, v in (sizes or {}).items():
        parts.append("-D %s=%d" % (k, v))
    if note:
        CASES.append("# " + note)
    CASES.append(" ".join(parts))


def f32(a):
    return np.asarray(a, dtype=np.float64).astype(np.float32)


def up(a):
    return np.asarray(a, dtype=np.float64)


def randn(g, shape, scale=1.0):
    return (g.standard_normal(shape) * scale).astype(np.float32)


def sigmoid(x):                      # float64; each branch exact where it is used
    x = np.asarray(x, dtype=np.float64)
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def softplus(x):
    return np.logaddexp(0.0, x)


def silu(x):
    return x * sigmoid(x)


# ---- GLA ------------------------------------------------------------------------------------------

def ref_gla_gates(x, w1, w2, b, tau=16.0):
    return sigmoid(x @ w1 @ w2 + b) ** (1.0 / tau)          # the paper's formula, directly


def ref_gla(q, k, v, a):
    """Sequential loop of S_t = diag(α_t) S_{t-1} + k_tᵀ v_t, o_t = q_t S_t, per head."""
    H, T, K = q.shape
    V = v.shape[-1]
    o = np.zeros((H, T, V))
    S = np.zeros((H, K, V))
    for h in range(H):
        for t in range(T):
            S[h] = a[h, t][:, None] * S[h] + np.outer(k[h, t], v[h, t])
            o[h, t] = q[h, t] @ S[h]
    return o, S


def gla_gates_input(g, shape, lo=0.05):
    """Gates in (lo, 1): σ(·)^{1/16}-like values, but spread wider to exercise the decay."""
    return (lo + (1 - lo) * g.random(shape)).astype(np.float32)


def gen_gla():
    for tag, (T, D, R, K), tail in (("5x3x2x4", (5, 3, 2, 4), False), ("1", (1, 1, 1, 1), False),
                                    ("tail", (3, 2, 2, 3), True)):
        name = "gla_gates_" + tag
        g = rng_for(name)
        x, w1, w2, b = randn(g, (T, D)), randn(g, (D, R)), randn(g, (R, K)), randn(g, K)
        if tail:   # σ(g) ≈ e^-120 underflows in f32; the gate is still e^{-120/16} ≈ 5.5e-4
            b[0] = -120.0
            b[1] = 40.0
        case(SSM, "gla_gates", name, {"x": x, "w1": w1, "w2": w2, "b": b},
             {"alpha": f32(ref_gla_gates(up(x), up(w1), up(w2), up(b)))}, ELEM,
             note="gla_gates_tail: a pre-activation of -120 (σ underflows in f32) and one of +40"
             if tail else None)

    # recurrent and chunkwise on the same numbers, one reference
    for tag, (H, NC, C, K, V), small in (("2x3x4x3x5", (2, 3, 4, 3, 5), False),
                                         ("1x5x1x2x3", (1, 5, 1, 2, 3), False),
                                         ("1x1x6x3x2", (1, 1, 6, 3, 2), False),
                                         ("1", (1, 1, 1, 1, 1), False),
                                         ("small", (2, 2, 8, 2, 3), True)):
        name = "gla_" + tag
        g = rng_for(name)
        T = NC * C
        q, k, v = randn(g, (H, T, K)), randn(g, (H, T, K)), randn(g, (H, T, V))
        a = gla_gates_input(g, (H, T, K))
        if small:   # gates ~1e-6 on one channel: the cumulative decay over a chunk is ~1e-48,
            a[:, :, 0] = (1e-6 * (1 + g.random((H, T)))).astype(np.float32)   # below f32's range
        o, S = ref_gla(up(q), up(k), up(v), up(a))
        note = ("gla_%s: recurrent and chunkwise forms on the same inputs (chunk shapes are the "
                "[H, T, .] tensors reshaped), one float64 reference loop" % tag)
        if small:
            note += "; channel 0 has gates ~1e-6, so 1/Λ of the primary chunk form would overflow"
        case(SSM, "gla_recurrent", name + "_rec", {"q": q, "k": k, "v": v, "alpha": a},
             {"o": f32(o), "s_last": f32(S)}, SCAN, note=note)
        ch = lambda t: np.ascontiguousarray(t.reshape(H, NC, C, t.shape[-1]))
        case(SSM, "gla_chunkwise", name + "_chunk",
             {"q": ch(q), "k": ch(k), "v": ch(v), "alpha": ch(a)},
             {"o": f32(o.reshape(H, NC, C, V)), "s_last": f32(S)}, SCAN)

    for tag, (T, D, K, V, R) in (("6x4x3x2x2", (6, 4, 3, 2, 2)), ("1", (1, 1, 1, 1, 1))):
        name = "gla_attention_" + tag
        g = rng_for(name)
        x = randn(g, (T, D))
        wq, wk, wv = randn(g, (D, K), 0.7), randn(g, (D, K), 0.7), randn(g, (D, V), 0.7)
        w1, w2, b = randn(g, (D, R)), randn(g, (R, K)), randn(g, K)
        X = up(x)
        a = ref_gla_gates(X, up(w1), up(w2), up(b))
        o, _ = ref_gla((X @ up(wq))[None], (X @ up(wk))[None], (X @ up(wv))[None], a[None])
        case(SSM, "gla_attention", name,
             {"x": x, "wq": wq, "wk": wk, "wv": wv, "w1": w1, "w2": w2, "b": b},
             {"o": f32(o[0])}, SCAN)


# ---- retention --------------------------------------------------------------------------------------

def ref_retention_parallel(q, k, v, gamma):
    T = q.shape[1]
    n, m = np.arange(T)[:, None], np.arange(T)[None, :]
    D = np.where(n >= m, gamma[:, None, None] ** np.maximum(n - m, 0), 0.0)   # [H, T, T]
    return np.einsum("hnm,hme->hne", np.einsum("hnd,hmd->hnm", q, k) * D, v)


def ref_retention_recurrent(q, k, v, gamma):
    H, T, K = q.shape
    S = np.zeros((H, K, v.shape[-1]))
    o = np.zeros((H, T, v.shape[-1]))
    for t in range(T):
        S = gamma[:, None, None] * S + np.einsum("hi,hj->hij", k[:, t], v[:, t])
        o[:, t] = np.einsum("hi,hij->hj", q[:, t], S)
    return o, S


def gen_retention():
    for tag, (H, T, K, V), gam in (("3x9x4x3", (3, 9, 4, 3), None),
                                   ("2x16x2x5", (2, 16, 2, 5), [0.5, 0.9]),
                                   ("1", (1, 1, 1, 1), [0.75])):
        name = "retention_" + tag
        g = rng_for(name)
        q, k, v = randn(g, (H, T, K)), randn(g, (H, T, K)), randn(g, (H, T, V))
        if gam is None:   # RetNet's per-head decays γ_h = 1 - 2^{-5-h}
            gam = [1 - 2.0 ** (-5 - h) for h in range(H)]
        gamma = np.array(gam, dtype=np.float32)
        Q, Kk, Vv, G = up(q), up(k), up(v), up(gamma)
        o_par = ref_retention_parallel(Q, Kk, Vv, G)
        o_rec, S = ref_retention_recurrent(Q, Kk, Vv, G)
        assert np.allclose(o_par, o_rec, rtol=1e-12, atol=1e-12), name
        note = ("retention_%s: parallel and recurrent forms on the same inputs, one float64 "
                "reference (numpy parallel and recurrent formulas agree to 1e-12)" % tag)
        case(SSM, "retention_parallel", name + "_par", {"q": q, "k": k, "v": v, "gamma": gamma},
             {"o": f32(o_par)}, SCAN, note=note)
        case(SSM, "retention_recurrent", name + "_rec", {"q": q, "k": k, "v": v, "gamma": gamma},
             {"o": f32(o_par), "s_last": f32(S)}, SCAN)


# ---- Mamba -----------------------------------------------------------------------------------------

def ref_selective_scan(u, delta, A, B, C, D, delta_bias):
    L, E = u.shape
    dt = softplus(delta + delta_bias)
    h = np.zeros((E, A.shape[1]))
    y = np.zeros((L, E))
    for t in range(L):
        h = np.exp(dt[t][:, None] * A) * h + (dt[t] * u[t])[:, None] * B[t][None, :]
        y[t] = h @ C[t] + D * u[t]
    return y, h


def ref_causal_conv(x, w, b):
    """torch's depthwise Conv1d with padding W-1, first L outputs (float64)."""
    L, E = x.shape
    W = w.shape[1]
    xt = torch.from_numpy(x.T[None].copy())                      # [1, E, L]
    y = torch.nn.functional.conv1d(xt, torch.from_numpy(w[:, None, :].copy()),
                                   torch.from_numpy(b.copy()), padding=W - 1, groups=E)
    return y[0, :, :L].numpy().T


def gen_mamba():
    for tag, (L, E, N) in (("7x5x3", (7, 5, 3)), ("16x2x4", (16, 2, 4)), ("1", (1, 1, 1))):
        name = "mamba_scan_" + tag
        g = rng_for(name)
        u, delta = randn(g, (L, E)), randn(g, (L, E))
        A = (-np.exp(g.standard_normal((E, N)) * 0.5)).astype(np.float32)   # A = -exp(A_log)
        B, C, D, db = randn(g, (L, N)), randn(g, (L, N)), randn(g, E), randn(g, E, 0.5)
        y, h = ref_selective_scan(up(u), up(delta), up(A), up(B), up(C), up(D), up(db))
        case(SSM, "mamba_selective_scan", name,
             {"u": u, "delta": delta, "A": A, "B": B, "C": C, "D": D, "delta_bias": db},
             {"y": f32(y), "h_last": f32(h)}, SCAN)

    for tag, (L, E, W) in (("6x3x4", (6, 3, 4)), ("2x2x4", (2, 2, 4)), ("5x2x3", (5, 2, 3)),
                           ("1", (1, 1, 1))):
        name = "causal_conv1d_" + tag
        g = rng_for(name)
        x, w, b = randn(g, (L, E)), randn(g, (E, W)), randn(g, E)
        case(SSM, "causal_conv1d", name, {"x": x, "w": w, "b": b},
             {"y": f32(ref_causal_conv(up(x), up(w), up(b)))}, ELEM,
             note="causal_conv1d: reference torch.nn.functional.conv1d (groups=E, padding=W-1)"
             if tag == "6x3x4" else None)

    for tag, (L, M, E, R, N, W) in (("6x4x5x2x3x4", (6, 4, 5, 2, 3, 4)),
                                    ("9x3x6x1x2x4", (9, 3, 6, 1, 2, 4)),
                                    ("1", (1, 1, 1, 1, 1, 1))):
        name = "mamba_block_" + tag
        g = rng_for(name)
        p = {"hs": randn(g, (L, M)), "w_in_x": randn(g, (E, M), 0.6), "w_in_z": randn(g, (E, M), 0.6),
             "conv_w": randn(g, (E, W), 0.5), "conv_b": randn(g, E, 0.2),
             "w_x_dt": randn(g, (R, E), 0.5), "w_x_b": randn(g, (N, E), 0.5),
             "w_x_c": randn(g, (N, E), 0.5), "w_dt": randn(g, (E, R), 0.5),
             "b_dt": randn(g, E, 0.5),
             "A_log": np.log(np.tile(np.arange(1, N + 1, dtype=np.float64), (E, 1))).astype(np.float32),
             "D": np.ones(E, dtype=np.float32), "w_out": randn(g, (M, E), 0.5)}
        P = {k: up(v) for k, v in p.items()}
        # mamba_simple.Mamba.forward, written out (one sequence, no batch)
        x = P["hs"] @ P["w_in_x"].T
        z = P["hs"] @ P["w_in_z"].T
        xp = np.vstack([np.zeros((W - 1, E)), x])
        xc = np.stack([sum(P["conv_w"][:, j] * xp[t + j] for j in range(W)) for t in range(L)])
        xc = silu(xc + P["conv_b"])
        dlow, Bm, Cm = xc @ P["w_x_dt"].T, xc @ P["w_x_b"].T, xc @ P["w_x_c"].T
        delta = dlow @ P["w_dt"].T                       # bias added inside the scan
        y, _ = ref_selective_scan(xc, delta, -np.exp(P["A_log"]), Bm, Cm, P["D"], P["b_dt"])
        out = (y * silu(z)) @ P["w_out"].T
        case(SSM, "mamba_block", name, p, {"out": f32(out)}, SCAN,
             note="mamba_block: A_log = log(1..N) and D = 1 as Mamba initialises them"
             if tag == "6x4x5x2x3x4" else None)


# ---- RNNs --------------------------------------------------------------------------------------------

def block_diag_heads(Rh):
    """[G, NH, DH, DH] head-wise recurrent weights -> torch's dense weight_hh [G·NH·DH, NH·DH]."""
    G, NH, DH, _ = Rh.shape
    Wd = np.zeros((G, NH * DH, NH * DH))
    for gi in range(G):
        for hd in range(NH):
            Wd[gi, hd * DH:(hd + 1) * DH, hd * DH:(hd + 1) * DH] = Rh[gi, hd]
    return Wd.reshape(G * NH * DH, NH * DH)


def torch_rnn(kind, x, w_ih, w_hh, b_ih, b_hh, h0, c0=None):
    """torch.nn.LSTM / torch.nn.GRU, one layer, unbatched, float64, weights copied in."""
    I, HD = x.shape[1], w_hh.shape[1]
    m = (torch.nn.LSTM if kind == "lstm" else torch.nn.GRU)(I, HD).double()
    with torch.no_grad():
        for name, val in (("weight_ih_l0", w_ih), ("weight_hh_l0", w_hh), ("bias_ih_l0", b_ih),
                          ("bias_hh_l0", b_hh)):
            getattr(m, name).copy_(torch.from_numpy(np.asarray(val, dtype=np.float64)))
        xt = torch.from_numpy(up(x))
        h0t = torch.from_numpy(up(h0)).reshape(1, HD)
        if kind == "lstm":
            y, (hn, cn) = m(xt, (h0t, torch.from_numpy(up(c0)).reshape(1, HD)))
            return y.numpy(), hn[0].numpy(), cn[0].numpy()
        y, hn = m(xt, h0t)
        return y.numpy(), hn[0].numpy()


def ref_slstm(x, W, R, b, h0, c0, n0, m0):
    """Returns (y, h) from the unstabilised sLSTM (i = e^ĩ, f = σ(f̃), states c·e^m, n·e^m) and
    (c, n, m) from the stabilised one with FlashRNN's vanilla rule (m_t = ĩ when n is all 0)."""
    T = x.shape[0]
    wx = np.einsum("ghjk,tk->tghj", W, x) + b
    # unstabilised, in true scale
    h, c, n = h0.copy(), c0 * np.exp(m0), n0 * np.exp(m0)
    ys = []
    for t in range(T):
        pre = wx[t] + np.einsum("ghjk,hk->ghj", R, h)
        i, f, z, o = np.exp(pre[0]), sigmoid(pre[1]), np.tanh(pre[2]), sigmoid(pre[3])
        c = f * c + i * z
        n = f * n + i
        h = o * c / n
        ys.append(h)
    # stabilised
    hs, cs, ns, ms = h0.copy(), c0.copy(), n0.copy(), m0.copy()
    for t in range(T):
        pre = wx[t] + np.einsum("ghjk,hk->ghj", R, hs)
        lfm = ms - softplus(-pre[1])
        mnew = pre[0] if np.all(ns == 0) else np.maximum(pre[0], lfm)
        ig, fg = np.exp(pre[0] - mnew), np.exp(lfm - mnew)
        cs = fg * cs + ig * np.tanh(pre[2])
        ns = fg * ns + ig
        hs = sigmoid(pre[3]) * cs / ns
        ms = mnew
    assert np.allclose(hs, h, rtol=1e-9, atol=1e-12)
    return np.stack(ys), h, cs, ns, ms


def gen_rnn():
    # one head, torch's own tensors
    for tag, (T, I, HD) in (("6x3x4", (6, 3, 4)), ("11x2x3", (11, 2, 3)), ("1", (1, 1, 1))):
        for kind, G in (("lstm", 4), ("gru", 3)):
            name = "%s_torch_%s" % (kind, tag)
            g = rng_for(name)
            x = randn(g, (T, I))
            w_ih, w_hh = randn(g, (G * HD, I), 0.8), randn(g, (G * HD, HD), 0.8)
            b_ih, b_hh, h0 = randn(g, G * HD, 0.5), randn(g, G * HD, 0.5), randn(g, HD, 0.5)
            ins = {"x": x, "w_ih": w_ih, "w_hh": w_hh, "b_ih": b_ih, "b_hh": b_hh, "h0": h0}
            note = None
            if tag == "6x3x4":
                note = "%s_torch: reference torch.nn.%s (float64, weights copied in)" % (
                    kind, kind.upper())
            if kind == "lstm":
                c0 = randn(g, HD, 0.5)
                ins["c0"] = c0
                y, hn, cn = torch_rnn(kind, x, w_ih, w_hh, b_ih, b_hh, h0, c0)
                case(RNN, "lstm_torch", name, ins, {"y": f32(y), "h_n": f32(hn), "c_n": f32(cn)},
                     SCAN, note=note)
            else:
                y, hn = torch_rnn(kind, x, w_ih, w_hh, b_ih, b_hh, h0)
                case(RNN, "gru_torch", name, ins, {"y": f32(y), "h_n": f32(hn)}, SCAN, note=note)

    # head-wise: torch with a block-diagonal weight_hh (NH = 1 is torch's layout reshaped)
    for tag, (T, I, NH, DH) in (("7x3x3x2", (7, 3, 3, 2)), ("5x4x1x3", (5, 4, 1, 3)),
                                ("9x2x2x3", (9, 2, 2, 3)), ("1", (1, 1, 1, 1))):
        HD = NH * DH
        name = "lstm_" + tag
        g = rng_for(name)
        x = randn(g, (T, I))
        W, R, b = randn(g, (4, NH, DH, I), 0.8), randn(g, (4, NH, DH, DH), 0.8), randn(g, (4, NH, DH), 0.5)
        h0, c0 = randn(g, (NH, DH), 0.5), randn(g, (NH, DH), 0.5)
        y, hn, cn = torch_rnn("lstm", x, up(W).reshape(4 * HD, I), block_diag_heads(up(R)),
                              up(b).reshape(-1), np.zeros(4 * HD), h0.reshape(-1), c0.reshape(-1))
        case(RNN, "lstm", name, {"x": x, "w": W, "r": R, "b": b, "h0": h0, "c0": c0},
             {"y": f32(y.reshape(T, NH, DH)), "h_last": f32(hn.reshape(NH, DH)),
              "c_last": f32(cn.reshape(NH, DH))}, SCAN,
             note="lstm (head-wise): reference torch.nn.LSTM with the block-diagonal weight_hh "
             "of the heads" if tag == "7x3x3x2" else None)

        name = "gru_" + tag
        g = rng_for(name)
        x = randn(g, (T, I))
        W, R = randn(g, (3, NH, DH, I), 0.8), randn(g, (3, NH, DH, DH), 0.8)
        b_ih, b_hh, h0 = randn(g, (3, NH, DH), 0.5), randn(g, (3, NH, DH), 0.5), randn(g, (NH, DH), 0.5)
        y, hn = torch_rnn("gru", x, up(W).reshape(3 * HD, I), block_diag_heads(up(R)),
                          up(b_ih).reshape(-1), up(b_hh).reshape(-1), h0.reshape(-1))
        case(RNN, "gru", name, {"x": x, "w": W, "r": R, "b_ih": b_ih, "b_hh": b_hh, "h0": h0},
             {"y": f32(y.reshape(T, NH, DH)), "h_last": f32(hn.reshape(NH, DH))}, SCAN,
             note="gru (head-wise): reference torch.nn.GRU with the block-diagonal weight_hh"
             if tag == "7x3x3x2" else None)

    # sLSTM
    for tag, (T, I, NH, DH), mode in (("8x3x2x3", (8, 3, 2, 3), "zero"),
                                      ("6x2x1x4", (6, 2, 1, 4), "state"),
                                      ("7x2x2x2", (7, 2, 2, 2), "big"),
                                      ("1", (1, 1, 1, 1), "zero")):
        name = "slstm_" + tag
        g = rng_for(name)
        x = randn(g, (T, I))
        W, R, b = randn(g, (4, NH, DH, I), 0.8), randn(g, (4, NH, DH, DH), 0.8), randn(g, (4, NH, DH), 0.5)
        z = np.zeros((NH, DH), dtype=np.float32)
        h0, c0, n0, m0 = z, z, z, z
        note = None
        if mode == "state":
            h0, c0 = randn(g, (NH, DH), 0.5), randn(g, (NH, DH), 0.5)
            n0 = (0.5 + g.random((NH, DH))).astype(np.float32)
            m0 = randn(g, (NH, DH))
            note = "slstm_6x2x1x4: a non-zero initial state (c, n, m)"
        elif mode == "big":
            b[0] += 100.0   # ĩ ≈ 100: e^ĩ overflows f32, the stabiliser keeps c, n finite
            note = "slstm_7x2x2x2: input-gate pre-activations ≈ 100 (e^ĩ beyond f32's range)"
        else:
            if tag == "8x3x2x3":
                note = ("slstm: y and h_last against the unstabilised cell in float64 (an "
                        "independent formulation); c, n, m against the stabilised float64 loop")
        y, hn, cn, nn_, mn = ref_slstm(up(x), up(W), up(R), up(b), up(h0), up(c0), up(n0), up(m0))
        case(RNN, "slstm", name,
             {"x": x, "w": W, "r": R, "b": b, "h0": h0, "c0": c0, "n0": n0, "m0": m0},
             {"y": f32(y), "h_last": f32(hn), "c_last": f32(cn), "n_last": f32(nn_),
              "m_last": f32(mn)}, SCAN, note=note)


# ---- MatMul-free --------------------------------------------------------------------------------------

MARGIN = 1e-3   # distance of every rounded value from a .5 tie


def far_from_ties(v):
    v = np.abs(np.asarray(v, dtype=np.float64))
    return bool(np.all(np.abs(v - np.floor(v) - 0.5) > MARGIN))


def act_quant(x):
    """The code's activation_quant, in f32 as torch computes it: (x_q, s_x)."""
    x = np.asarray(x, dtype=np.float32)
    amax = np.maximum(np.abs(x).max(axis=-1), np.float32(1e-5))
    s = (np.float32(127.0) / amax).astype(np.float32)
    v = (x * s[..., None]).astype(np.float32)
    return np.clip(np.round(v), -128, 127).astype(np.int8), s, up(x) * up(s)[..., None]


def weight_quant(w):
    """The code's weight_quant: the mean |W| taken in float64 and rounded to f32 once."""
    w = np.asarray(w, dtype=np.float32)
    beta = np.float32(np.maximum(np.abs(up(w)).mean(), 1e-5))
    s = np.float32(np.float32(1.0) / beta)
    v = (w * s).astype(np.float32)
    return np.clip(np.round(v), -1, 1).astype(np.int8), s, up(w) * up(s)


def ref_bitlinear(x, w, check):
    """float64 bitlinear of float64 x: quantisation decisions on x and w, exact product."""
    xq, sx, vx = act_quant(f32(x))
    # the kernel quantises its own f32 value of x; x here is float64, so test the margin on it
    sx64 = 127.0 / np.maximum(np.abs(x).max(axis=-1), 1e-5)
    check.append(far_from_ties(x * sx64[..., None]))
    wq, sw, vw = weight_quant(w)
    check.append(far_from_ties(vw))
    xq64 = np.clip(np.round(x * sx64[..., None]), -128, 127)
    acc = xq64 @ up(wq).T
    return acc / (sx64[..., None] * up(sw))


def draw(name, make):
    """Calls make(rng) -> (ins, outs, checks) until every check holds (at most 50 tries)."""
    for attempt in range(50):
        ins, outs, checks = make(rng_for("%s#%d" % (name, attempt)))
        if all(checks):
            return ins, outs
    sys.exit("gen_refs_ssm_rnn: %s: no draw away from rounding ties" % name)


def gen_matmulfree():
    # quantisers: integer outputs exactly, scales to an ulp or so
    def mk_act(g):
        x = randn(g, (4, 9), 1.5)
        x[1] = 0.0                      # absmax 0: the 1e-5 clamp, all zeros
        x[2, 3] = -np.abs(x[2]).max() - 0.5   # the row's extreme is negative: -127
        xq, sx, v = act_quant(x)
        return {"x": x}, {"xq": xq, "sx": sx}, [far_from_ties(v)]
    ins, outs = draw("act_quant", mk_act)
    case(MMF, "act_quant", "act_quant", ins, {"xq": outs["xq"]}, EXACT,
         note="act_quant: the integers exactly (inputs at least 1e-3 from a rounding tie); a "
         "zero row takes the 1e-5 clamp")
    case(MMF, "act_quant", "act_quant_s", ins, {"sx": outs["sx"]}, (1e-6, 0.0))

    def mk_w(g):
        w = randn(g, (5, 7), 0.8)
        wq, sw, v = weight_quant(w)
        return {"w": w}, {"wq": wq, "sw": np.array(sw, dtype=np.float32)}, [far_from_ties(v)]
    ins, outs = draw("weight_quant", mk_w)
    # s_w is 1 / mean|W|: the compiled mean accumulates in f32 (an ulp or two from the
    # float64 mean rounded once), hence rtol 1e-6 on it; W_q is exact
    case(MMF, "weight_quant", "weight_quant", ins, {"wq": outs["wq"]}, EXACT,
         note="weight_quant: ternary W_q exactly; s_w within 1e-6 (f32 mean of |W|)")
    case(MMF, "weight_quant", "weight_quant_s", ins, {"sw": outs["sw"]}, (1e-6, 0.0))

    for tag, (M, K, N) in (("4x9x5", (4, 9, 5)), ("3x16x2", (3, 16, 2)), ("1", (1, 1, 1))):
        name = "bitlinear_" + tag

        def mk(g):
            x, w = randn(g, (M, K)), randn(g, (N, K), 0.5)
            chk = []
            y = ref_bitlinear(up(x), up(w), chk)
            return {"x": x, "w": w}, {"y": f32(y)}, chk
        ins, outs = draw(name, mk)
        case(MMF, "bitlinear", name, ins, outs, ELEM,
             note="bitlinear: the code's activation_quant / weight_quant, ternary product in "
             "float64" if tag == "4x9x5" else None)

        # the same inputs through the inference form (W_q, s_w given) and the annotated one
        wq, sw, _ = weight_quant(ins["w"])
        sw_arr = np.array(sw, dtype=np.float32)
        case(MMF, "bitlinear_int", name + "_int", {"x": ins["x"], "wq": wq, "sw": sw_arr},
             outs, ELEM)
        wdq = f32(up(wq) / up(sw))       # the dequantised ternary weight {-β, 0, β}
        xq, sx, _ = act_quant(ins["x"])
        yt = (up(xq) @ up(wdq).T) / up(sx)[:, None]
        case(MMF, "bitlinear_ternary", name + "_q", {"x": ins["x"], "w": wdq}, {"y": f32(yt)},
             ELEM, note="bitlinear_ternary (@quant(i2, ternary), runs dense): W given as the "
             "dequantised ternary {-β, 0, β}" if tag == "4x9x5" else None)

    for tag, (M, K, N) in (("3x8x4", (3, 8, 4)), ("1", (1, 1, 1))):
        name = "bitlinear_rms_" + tag

        def mk(g):
            x, w = randn(g, (M, K)), randn(g, (N, K), 0.5)
            gg = (1 + 0.3 * g.standard_normal(K)).astype(np.float32)
            eps = np.array(1e-8, dtype=np.float32)
            X = up(x)
            xn = X / np.sqrt(np.mean(X * X, axis=-1, keepdims=True) + up(eps)) * up(gg)
            chk = []
            y = ref_bitlinear(xn, up(w), chk)
            return {"x": x, "g": gg, "w": w, "eps": eps}, {"y": f32(y)}, chk
        ins, outs = draw(name, mk)
        case(MMF, "bitlinear_rms", name, ins, outs, ELEM,
             note="bitlinear_rms: eps 1e-8 as the code's RMSNorm" if tag == "3x8x4" else None)

    for tag, (T, D, E) in (("5x4x6", (5, 4, 6)), ("12x3x2", (12, 3, 2)), ("1", (1, 1, 1))):
        name = "mlgru_" + tag

        def mk(g):
            x = randn(g, (T, D))
            p = {"x": x}
            for nm in ("f", "c", "g"):
                p["w_" + nm] = randn(g, (E, D), 0.5)
                p["b_" + nm] = randn(g, E, 0.3)
            p["w_o"], p["b_o"] = randn(g, (D, E), 0.5), randn(g, D, 0.3)
            P = {k: up(v) for k, v in p.items()}
            chk = []
            f = sigmoid(ref_bitlinear(P["x"], P["w_f"], chk) + P["b_f"])
            c = silu(ref_bitlinear(P["x"], P["w_c"], chk) + P["b_c"])
            gt = sigmoid(ref_bitlinear(P["x"], P["w_g"], chk) + P["b_g"])
            h = np.zeros(E)
            hs = []
            for t in range(T):
                h = f[t] * h + (1 - f[t]) * c[t]
                hs.append(h)
            o = ref_bitlinear(gt * np.stack(hs), P["w_o"], chk) + P["b_o"]
            return p, {"o": f32(o), "h_last": f32(h)}, chk
        ins, outs = draw(name, mk)
        case(MMF, "mlgru", name, ins, outs, SCAN,
             note="mlgru: the paper's equations, float64 loop; every quantised value at least "
             "1e-3 from a tie" if tag == "5x4x6" else None)

    for tag, (T, D, F) in (("4x5x7", (4, 5, 7)), ("1", (1, 1, 1))):
        name = "ternary_glu_" + tag

        def mk(g):
            x = randn(g, (T, D))
            wg, wu, wd = randn(g, (F, D), 0.5), randn(g, (F, D), 0.5), randn(g, (D, F), 0.5)
            chk = []
            gg = ref_bitlinear(up(x), up(wg), chk)
            uu = ref_bitlinear(up(x), up(wu), chk)
            y = ref_bitlinear(silu(gg) * uu, up(wd), chk)
            return {"x": x, "w_g": wg, "w_u": wu, "w_d": wd}, {"y": f32(y)}, chk
        ins, outs = draw(name, mk)
        case(MMF, "ternary_glu", name, ins, outs, ELEM)


CASES_HEADER = """\
# Numeric test cases of stdlib/ssm.tdsl, stdlib/rnn.tdsl and stdlib/matmulfree.tdsl, run by
# run_numeric.sh (see its header for the syntax):
#
#   FILE KERNEL [IN=INPUT.npy]... -> OUT=REFERENCE.npy... [rtol=R] [atol=A] [-D NAME=VALUE]...
#
# Generated by gen_refs_ssm_rnn.py (inputs and references in data_m2/); edit that script, not
# this file. Tolerances (reasons in the script): rtol=1e-05 atol=1e-06 element-wise work and
# short products; rtol=1e-05 atol=5e-06 f32 recurrences of up to 16 steps (the chunkwise GLA
# included); 0 for integer outputs (exact); rtol=1e-06 for the quantisation scales.
"""


def main():
    os.makedirs(DATA, exist_ok=True)
    for f in os.listdir(DATA):
        if f.endswith(".npy"):
            os.remove(os.path.join(DATA, f))
    torch.set_num_threads(1)
    gen_gla()
    gen_retention()
    gen_mamba()
    gen_rnn()
    gen_matmulfree()
    with open(os.path.join(HERE, "cases_ssm_rnn.txt"), "w") as f:
        f.write(CASES_HEADER)
        for line in CASES:
            f.write(line + "\n")
    ncases = sum(1 for c in CASES if not c.startswith("#"))
    print("gen_refs_ssm_rnn: %d cases, %d bytes of .npy" % (ncases, BYTES[0]))
    if BYTES[0] > 300_000:
        sys.exit("gen_refs_ssm_rnn: data larger than 300 KB")


if __name__ == "__main__":
    main()
