/* suite_scan.c: the scan suite of tdsl_bench: linear-attention and state-space recurrences
 * of stdlib/ssm.tdsl at T = 2048.
 *
 *   gla_recurrent, gla_chunkwise     GLA, S_t = diag(α_t) S_{t-1} + k_tᵀ v_t, o_t = q_t S_t
 *   retention_recurrent,             RetNet retention, decay γ per head
 *   retention_parallel
 *   mamba_selective_scan             Mamba's selective scan, one sequence
 *
 * Shapes: H=8 heads of K = V = 64 (the attention case's head size) for GLA and retention;
 * L = 2048 steps of E = 1024 channels with N = 16 states for Mamba. The anchor is a
 * PyTorch eager reference loop over time (bench/torch_anchor.py), the one PERFORMANCE.md
 * names; the chunkwise and parallel forms are compared with the same loop (same inputs'
 * shapes, same outputs). torch.compile is not run on a 2048-step Python loop.
 *
 * FLOP counts are nominal, those of the recurrent form for every form of an operator
 * (5·H·T·K·V for GLA and retention: the state update and the output; 7·L·E·N for Mamba),
 * so that GFLOP/s compares forms by time. A case is skipped with a notice when
 * stdlib/ssm.tdsl or the kernel is missing or does not compile. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"

static int out_of_memory(Case *c)
{
    snprintf(c->skip, sizeof c->skip, "out of memory allocating the inputs");
    return -1;
}

/* The path of stdlib/ssm.tdsl, or -1 with c->skip set when it is absent. */
static int ssm_path(Case *c, char *path, size_t len)
{
    snprintf(path, len, "%s/stdlib/ssm.tdsl", c->b->src_dir);
    if (access(path, R_OK) != 0) {
        snprintf(c->skip, sizeof c->skip, "stdlib/ssm.tdsl not found (kernel %s absent)", c->def->name);
        return -1;
    }
    snprintf(c->compile_what, sizeof c->compile_what, "stdlib/ssm.tdsl, whole file");
    return 0;
}

/* ---- GLA and retention: q, k, v [H, T, ·] ------------------------------------------------ */

/* tensors: 0 q, 1 k, 2 v, 3 decay (alpha [H, T, K] or gamma [H]), 4 o, 5 s_last */
static int setup_linear_attention(Case *c, const char *kernel, bool gla, bool chunked, bool has_state)
{
    char path[1024];
    if (ssm_path(c, path, sizeof path) != 0) return -1;
    long h = case_param(c, "H"), k = case_param(c, "K"), v = case_param(c, "V");
    long nc = chunked ? case_param(c, "NC") : 1, cs = chunked ? case_param(c, "C") : case_param(c, "T");
    long t = nc * cs;
    int nd = chunked ? 4 : 3;
    int64_t qs[4], vs[4];
    if (chunked) {
        memcpy(qs, (int64_t[]){h, nc, cs, k}, sizeof qs);
        memcpy(vs, (int64_t[]){h, nc, cs, v}, sizeof vs);
    } else {
        memcpy(qs, (int64_t[]){h, t, k}, 3 * sizeof(int64_t));
        memcpy(vs, (int64_t[]){h, t, v}, 3 * sizeof(int64_t));
    }
    /* q and k scaled by 1/sqrt(K) so that outputs stay of order one over 2048 steps */
    float s = 1.0f / sqrtf((float)k);
    Tensor *q = case_tensor_fill(c, nd, qs, -s, s), *kk = case_tensor_fill(c, nd, qs, -s, s);
    Tensor *vv = case_tensor(c, nd, vs);
    Tensor *decay = gla ? case_tensor_fill(c, nd, qs, 0.9f, 1.0f)
                        : case_tensor_fill(c, 1, (int64_t[]){h}, 0.9f, 0.999f);
    Tensor *o = case_tensor(c, nd, vs), *st = case_tensor(c, 3, (int64_t[]){h, k, v});
    if (!q || !kk || !vv || !decay || !o || !st) return out_of_memory(c);
    if (case_tdsl(c, path, NULL, kernel, (Tensor *[]){q, kk, vv, decay, o, st}, has_state ? 6 : 5, 4, true) != 0)
        return -1;
    char shape[96];
    snprintf(shape, sizeof shape, "H=%ld T=%ld K=%ld V=%ld", h, t, k, v);
    case_add_torch(c, gla ? "gla" : "retention", shape);
    c->flops = 5.0 * (double)h * (double)t * (double)k * (double)v;
    c->bytes = 4.0 * (double)h * (double)t * (2.0 * (double)k + 2.0 * (double)v + (gla ? (double)k : 0));
    return 0;
}

/* The recurrence for sampled (head, column j) pairs: the column S[:, j] evolves on its own. */
static double check_linear_attention(Case *c, bool gla, bool chunked)
{
    long h = case_param(c, "H"), k = case_param(c, "K"), v = case_param(c, "V");
    long t = chunked ? case_param(c, "NC") * case_param(c, "C") : case_param(c, "T");
    const float *q = c->tensors[0].data, *kk = c->tensors[1].data, *vv = c->tensors[2].data;
    const float *decay = c->tensors[3].data, *o = c->tensors[4].data;
    double *col = malloc(sizeof(double) * (size_t)k);
    if (!col) return -1;
    double max_diff = 0, max_ref = 0;
    for (long s = 0; s < 4; s++) {
        long hh = (s * 3) % h, j = (s * 17 + 5) % v;
        for (long i = 0; i < k; i++) col[i] = 0;
        for (long tt = 0; tt < t; tt++) {
            long qk = (hh * t + tt) * k;
            double out = 0;
            for (long i = 0; i < k; i++) {
                double a = gla ? decay[qk + i] : decay[hh];
                col[i] = a * col[i] + (double)kk[qk + i] * vv[(hh * t + tt) * v + j];
                out += (double)q[qk + i] * col[i];
            }
            double d = fabs(o[(hh * t + tt) * v + j] - out);
            if (!(d <= max_diff)) max_diff = d;
            if (fabs(out) > max_ref) max_ref = fabs(out);
        }
    }
    free(col);
    return isnan(max_diff) ? INFINITY : max_diff / (max_ref > 0 ? max_ref : 1.0);
}

static int setup_gla_recurrent(Case *c) { return setup_linear_attention(c, "gla_recurrent", true, false, true); }
static int setup_gla_chunkwise(Case *c) { return setup_linear_attention(c, "gla_chunkwise", true, true, true); }
static int setup_ret_recurrent(Case *c) { return setup_linear_attention(c, "retention_recurrent", false, false, true); }
static int setup_ret_parallel(Case *c) { return setup_linear_attention(c, "retention_parallel", false, false, false); }
static double check_gla_recurrent(Case *c) { return check_linear_attention(c, true, false); }
static double check_gla_chunkwise(Case *c) { return check_linear_attention(c, true, true); }
static double check_retention(Case *c) { return check_linear_attention(c, false, false); }

/* ---- Mamba ------------------------------------------------------------------------------------ */

/* tensors: 0 u, 1 delta, 2 A, 3 B, 4 C, 5 D, 6 delta_bias, 7 y, 8 h_last */
static int setup_mamba(Case *c)
{
    char path[1024];
    if (ssm_path(c, path, sizeof path) != 0) return -1;
    long l = case_param(c, "L"), e = case_param(c, "E"), n = case_param(c, "N");
    Tensor *u = case_tensor(c, 2, (int64_t[]){l, e}), *delta = case_tensor(c, 2, (int64_t[]){l, e});
    Tensor *a = case_tensor_fill(c, 2, (int64_t[]){e, n}, -4.0f, -0.5f);
    Tensor *bm = case_tensor(c, 2, (int64_t[]){l, n}), *cm = case_tensor(c, 2, (int64_t[]){l, n});
    Tensor *d = case_tensor(c, 1, (int64_t[]){e}), *bias = case_tensor(c, 1, (int64_t[]){e});
    Tensor *y = case_tensor(c, 2, (int64_t[]){l, e}), *hl = case_tensor(c, 2, (int64_t[]){e, n});
    if (!u || !delta || !a || !bm || !cm || !d || !bias || !y || !hl) return out_of_memory(c);
    if (case_tdsl(c, path, NULL, "mamba_selective_scan", (Tensor *[]){u, delta, a, bm, cm, d, bias, y, hl}, 9, 7,
                  true) != 0)
        return -1;
    case_add_torch(c, "mamba", NULL);
    c->flops = 7.0 * (double)l * (double)e * (double)n;
    c->bytes = 4.0 * (3.0 * (double)l * (double)e + 2.0 * (double)l * (double)n + 2.0 * (double)e * (double)n);
    return 0;
}

static double check_mamba(Case *c)
{
    long l = case_param(c, "L"), e = case_param(c, "E"), n = case_param(c, "N");
    const float *u = c->tensors[0].data, *delta = c->tensors[1].data, *a = c->tensors[2].data;
    const float *bm = c->tensors[3].data, *cm = c->tensors[4].data, *d = c->tensors[5].data;
    const float *bias = c->tensors[6].data, *y = c->tensors[7].data;
    double *h = malloc(sizeof(double) * (size_t)n);
    if (!h) return -1;
    double max_diff = 0, max_ref = 0;
    for (long s = 0; s < 4; s++) {
        long ch = (s * 257 + 3) % e;   /* channels are independent */
        for (long i = 0; i < n; i++) h[i] = 0;
        for (long t = 0; t < l; t++) {
            double x = (double)delta[t * e + ch] + bias[ch];
            double dt = x > 0 ? x + log1p(exp(-x)) : log1p(exp(x));
            double out = (double)d[ch] * u[t * e + ch];
            for (long i = 0; i < n; i++) {
                h[i] = exp(dt * a[ch * n + i]) * h[i] + dt * bm[t * n + i] * u[t * e + ch];
                out += (double)cm[t * n + i] * h[i];
            }
            double diff = fabs(y[t * e + ch] - out);
            if (!(diff <= max_diff)) max_diff = diff;
            if (fabs(out) > max_ref) max_ref = fabs(out);
        }
    }
    free(h);
    return isnan(max_diff) ? INFINITY : max_diff / (max_ref > 0 ? max_ref : 1.0);
}

const CaseDef SUITE_SCAN[] = {
    {"gla_recurrent", {"H=8 T=2048 K=64 V=64"}, false, setup_gla_recurrent, check_gla_recurrent},
    {"gla_chunkwise", {"H=8 NC=32 C=64 K=64 V=64", "H=8 NC=16 C=64 K=64 V=64"}, false, setup_gla_chunkwise,
     check_gla_chunkwise},
    {"retention_recurrent", {"H=8 T=2048 K=64 V=64"}, false, setup_ret_recurrent, check_retention},
    {"retention_parallel", {"H=8 T=2048 K=64 V=64", "H=8 T=1024 K=64 V=64"}, false, setup_ret_parallel,
     check_retention},
    {"mamba_selective_scan", {"L=2048 E=1024 N=16"}, false, setup_mamba, check_mamba},
    {NULL, {NULL}, false, NULL, NULL},
};
