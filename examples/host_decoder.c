/* host_decoder: a LLaMA-style decoder block run token by token from C.
 *
 * `tcc stdlib/llama.tdsl -o libllama.so --header llama.h` builds the stdlib's decoder block
 * (RMSNorm, attention with RoPE and a KV cache, SwiGLU MLP; see stdlib/llama.tdsl) ahead of
 * time. This program feeds STEPS tokens through `decoder_block`, one decode step per call:
 * each call reads the caches of the previous step and returns them with row `pos` written, so
 * the host swaps the two cache buffers between calls. Every step is checked against a plain
 * C implementation of the same math in double precision (written here from the paper's
 * equations, not from the tdsl source), and the program prints the error, a checksum and
 * the time of each step. Exit status 0 when every step matches. */
#include <dlpack/dlpack.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "llama.h"

enum { B = 2, E = 48, H = 4, D = 8, F = 96, T = 16, STEPS = 10 };

static DLTensor tensor(void *data, int ndim, int64_t *shape, uint8_t code, uint8_t bits)
{
    DLTensor t;
    memset(&t, 0, sizeof t);
    t.data = data;
    t.device.device_type = kDLCPU;
    t.ndim = ndim;
    t.dtype.code = code;
    t.dtype.bits = bits;
    t.dtype.lanes = 1;
    t.shape = shape;
    return t;
}

static DLTensor f32(float *data, int ndim, int64_t *shape) { return tensor(data, ndim, shape, kDLFloat, 32); }

/* deterministic inputs in [-scale, scale) */
static uint64_t rng = 0x2545F4914F6CDD1Dull;
static float *random_array(size_t n, double scale)
{
    float *p = malloc(sizeof(float) * n);
    for (size_t i = 0; i < n; i++) {
        rng = rng * 6364136223846793005ull + 1442695040888963407ull;
        p[i] = (float)(scale * ((double)(rng >> 11) / 9007199254740992.0 * 2 - 1));
    }
    return p;
}

static double seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---- the reference: one decode step in double ------------------------------------------------ */

typedef struct Weights {
    float *g_attn, *wq, *wk, *wv, *wo, *g_ffn, *w1, *w3, *w2;
} Weights;

static void rmsnorm_ref(const double *x, const float *g, double eps, double *y)
{
    double ms = 0;
    for (int e = 0; e < E; e++) ms += x[e] * x[e];
    double r = 1 / sqrt(ms / E + eps);
    for (int e = 0; e < E; e++) y[e] = x[e] * r * g[e];
}

/* RoPE with adjacent pairs (x[2i], x[2i+1]) rotated by pos * 10000^(-2i/D) */
static void rope_ref(double *v, int pos)
{
    for (int i = 0; i < D / 2; i++) {
        double th = pos * pow(10000.0, -2.0 * i / D), c = cos(th), s = sin(th);
        double a = v[2 * i], b = v[2 * i + 1];
        v[2 * i] = a * c - b * s;
        v[2 * i + 1] = b * c + a * s;
    }
}

static double silu(double v) { return v / (1 + exp(-v)); }

/* One token of batch row b at position pos: y[E], and the caches' row pos (kc, vc: [H, T, D]). */
static void decoder_ref(const Weights *w, const float *x, double *kc, double *vc, int pos, double eps, double *y)
{
    double xd[E], a[E], hs[E], n2[E];
    for (int e = 0; e < E; e++) xd[e] = x[e];
    rmsnorm_ref(xd, w->g_attn, eps, a);
    double o[H][D];
    for (int h = 0; h < H; h++) {
        double q[D], k[D], v[D];
        for (int d = 0; d < D; d++) {
            q[d] = k[d] = v[d] = 0;
            for (int e = 0; e < E; e++) {
                size_t i = ((size_t)h * D + d) * E + e;
                q[d] += a[e] * w->wq[i];
                k[d] += a[e] * w->wk[i];
                v[d] += a[e] * w->wv[i];
            }
        }
        rope_ref(q, pos);
        rope_ref(k, pos);
        memcpy(&kc[((size_t)h * T + pos) * D], k, sizeof k);
        memcpy(&vc[((size_t)h * T + pos) * D], v, sizeof v);
        double s[T], m = -INFINITY, l = 0;
        for (int t = 0; t <= pos; t++) {
            s[t] = 0;
            for (int d = 0; d < D; d++) s[t] += q[d] * kc[((size_t)h * T + t) * D + d];
            s[t] /= sqrt((double)D);
            if (s[t] > m) m = s[t];
        }
        for (int t = 0; t <= pos; t++) l += (s[t] = exp(s[t] - m));
        for (int d = 0; d < D; d++) {
            o[h][d] = 0;
            for (int t = 0; t <= pos; t++) o[h][d] += s[t] / l * vc[((size_t)h * T + t) * D + d];
        }
    }
    for (int e = 0; e < E; e++) {
        hs[e] = xd[e];
        for (int h = 0; h < H; h++)
            for (int d = 0; d < D; d++) hs[e] += o[h][d] * w->wo[((size_t)e * H + h) * D + d];
    }
    rmsnorm_ref(hs, w->g_ffn, eps, n2);
    double act[F];
    for (int f = 0; f < F; f++) {
        double u = 0, g = 0;
        for (int e = 0; e < E; e++) {
            u += n2[e] * w->w1[(size_t)f * E + e];
            g += n2[e] * w->w3[(size_t)f * E + e];
        }
        act[f] = silu(u) * g;
    }
    for (int e = 0; e < E; e++) {
        y[e] = hs[e];
        for (int f = 0; f < F; f++) y[e] += act[f] * w->w2[(size_t)e * F + f];
    }
}

int main(void)
{
    Weights w = {
        .g_attn = random_array(E, 1), .wq = random_array((size_t)H * D * E, 0.3),
        .wk = random_array((size_t)H * D * E, 0.3), .wv = random_array((size_t)H * D * E, 0.3),
        .wo = random_array((size_t)E * H * D, 0.2), .g_ffn = random_array(E, 1),
        .w1 = random_array((size_t)F * E, 0.2), .w3 = random_array((size_t)F * E, 0.2),
        .w2 = random_array((size_t)E * F, 0.15),
    };
    size_t ncache = (size_t)B * H * T * D;
    float *cache[2][2];  /* [k or v][ping or pong] */
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 2; j++) cache[i][j] = calloc(ncache, sizeof(float));
    double *kref = calloc(ncache, sizeof(double)), *vref = calloc(ncache, sizeof(double));
    float *y = calloc((size_t)B * E, sizeof(float)), eps = 1e-5f;

    int64_t s_e[1] = {E}, s_hde[3] = {H, D, E}, s_ehd[3] = {E, H, D}, s_fe[2] = {F, E}, s_ef[2] = {E, F};
    int64_t s_be[2] = {B, E}, s_cache[4] = {B, H, T, D};
    DLTensor tg_attn = f32(w.g_attn, 1, s_e), twq = f32(w.wq, 3, s_hde), twk = f32(w.wk, 3, s_hde),
             twv = f32(w.wv, 3, s_hde), two = f32(w.wo, 3, s_ehd), tg_ffn = f32(w.g_ffn, 1, s_e),
             tw1 = f32(w.w1, 2, s_fe), tw3 = f32(w.w3, 2, s_fe), tw2 = f32(w.w2, 2, s_ef),
             teps = f32(&eps, 0, NULL), ty = f32(y, 2, s_be);

    double worst = 0, total = 0;
    int bad = 0;
    for (int64_t pos = 0; pos < STEPS; pos++) {
        float *x = random_array((size_t)B * E, 1);
        int in = (int)(pos % 2), out = 1 - in;
        DLTensor tx = f32(x, 2, s_be), tpos = tensor(&pos, 0, NULL, kDLInt, 64);
        DLTensor tkc = f32(cache[0][in], 4, s_cache), tvc = f32(cache[1][in], 4, s_cache);
        DLTensor tkc_out = f32(cache[0][out], 4, s_cache), tvc_out = f32(cache[1][out], 4, s_cache);
        double t0 = seconds();
        int rc = decoder_block(&tx, &tg_attn, &twq, &twk, &twv, &two, &tg_ffn, &tw1, &tw3, &tw2,
                               &tkc, &tvc, &tpos, &teps, &ty, &tkc_out, &tvc_out);
        double t1 = seconds();
        total += t1 - t0;
        if (rc != 0) {
            fprintf(stderr, "decoder_block: %s\n", tdsl_last_error());
            return 1;
        }
        /* the reference, and the error of y and of the cache rows the step wrote */
        double err = 0, sum = 0;
        for (int b = 0; b < B; b++) {
            double yr[E];
            size_t cb = (size_t)b * H * T * D;
            decoder_ref(&w, &x[(size_t)b * E], &kref[cb], &vref[cb], (int)pos, eps, yr);
            for (int e = 0; e < E; e++) {
                double d = fabs(y[b * E + e] - yr[e]) / (0.1 + fabs(yr[e]));
                if (d > err) err = d;
                sum += y[b * E + e];
            }
        }
        for (size_t i = 0; i < ncache; i++) {
            double dk = fabs(cache[0][out][i] - kref[i]) / (0.1 + fabs(kref[i]));
            double dv = fabs(cache[1][out][i] - vref[i]) / (0.1 + fabs(vref[i]));
            if (dk > err) err = dk;
            if (dv > err) err = dv;
        }
        if (err > worst) worst = err;
        if (err > 1e-4) bad++;   /* f32 against double: about 1e-6 expected */
        printf("step %2lld: checksum %+.6f, max error vs reference %.2e, %.3f ms\n", (long long)pos, sum, err,
               1e3 * (t1 - t0));
        free(x);
    }
    printf("decoder_block B=%d E=%d H=%d D=%d F=%d T=%d: %d steps, %.3f ms per step, worst error %.2e: %s\n", B, E,
           H, D, F, T, STEPS, 1e3 * total / STEPS, worst, bad ? "MISMATCH" : "ok");

    free(w.g_attn); free(w.wq); free(w.wk); free(w.wv); free(w.wo); free(w.g_ffn); free(w.w1); free(w.w3); free(w.w2);
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 2; j++) free(cache[i][j]);
    free(kref); free(vref); free(y);
    return bad ? 1 : 0;
}
