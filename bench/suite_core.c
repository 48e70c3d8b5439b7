/* suite_core.c: the core suite of tdsl_bench: GEMMs, row-wise kernels, attention, an MLP.
 *
 *   sgemm_1024, sgemm_2048  c[i, j] = sum[k](a[i, k] * b[k, j]), a kernel written here;
 *                           anchors dnnl_sgemm, cblas_sgemm, torch.mm
 *   gemm_bias_gelu          the same product, then gelu(c + bias) as a second definition
 *                           (what fusion should fold into the GEMM's epilogue); anchors
 *                           oneDNN matmul + eltwise primitives, PyTorch, tdsl --no-fuse
 *   softmax, layernorm,     4096 x 4096 rows through the stdlib fns of nn.tdsl; anchors
 *   rmsnorm                 PyTorch eager and torch.compile, tdsl --no-fuse; bandwidth-bound:
 *                           GB/s (x read once, y written once) against the triad
 *   attention_causal        stdlib/attention.tdsl's kernel, B=1 H=8 N=2048 d=64; anchor
 *                           PyTorch scaled_dot_product_attention(is_causal=True)
 *   mlp_gelu                stdlib nn.tdsl's mlp_gelu, x: [1024, 1024], hidden 4096;
 *                           anchors oneDNN matmul, gelu, matmul; PyTorch
 *
 * FLOP counts: 2MNK per product; causal attention 2·B·H·N²·d (half of the 4·B·H·N²·d of
 * full attention, FlashAttention's convention); the row kernels are counted in bytes.
 * Each case checks the tdsl output against a double-precision reference on sampled
 * entries (not an anchor; just so that a fast wrong kernel cannot pass unnoticed). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

double bench_gelu(double x)
{
    return 0.5 * x * (1.0 + erf(x / sqrt(2.0)));
}

static int out_of_memory(Case *c)
{
    snprintf(c->skip, sizeof c->skip, "out of memory allocating the inputs");
    return -1;
}

/* Picks sample indices deterministically: i-th of n spread over [0, len). */
static long sample(long i, long n, long len)
{
    return (long)(((double)i + 0.5) / (double)n * (double)len) % len;
}

/* Normwise error of got against ref over n values. */
typedef struct ErrAcc {
    double max_diff;   /* max |got - ref| */
    double max_ref;    /* max |ref| */
} ErrAcc;

static void err_add(ErrAcc *e, double got, double ref)
{
    double d = fabs(got - ref);
    if (!(d <= e->max_diff)) e->max_diff = d;   /* NaN propagates */
    if (fabs(ref) > e->max_ref) e->max_ref = fabs(ref);
}

static double err_result(const ErrAcc *e)
{
    if (isnan(e->max_diff)) return INFINITY;
    return e->max_diff / (e->max_ref > 0 ? e->max_ref : 1.0);
}

/* ---- SGEMM ---------------------------------------------------------------------------- */

static const char *SGEMM_SRC =
    "kernel sgemm(a: f32[M, K], b: f32[K, N]) -> c: f32[M, N] {\n"
    "    c[i, j] = sum[k](a[i, k] * b[k, j])\n"
    "}\n";

/* tensors: 0 a, 1 b, 2 c (tdsl), 3 c (oneDNN), 4 c (OpenBLAS) */
static int setup_sgemm(Case *c)
{
    long m = case_param(c, "M"), n = case_param(c, "N"), k = case_param(c, "K");
    Tensor *a = case_tensor(c, 2, (int64_t[]){m, k}), *b = case_tensor(c, 2, (int64_t[]){k, n});
    Tensor *y = case_tensor(c, 2, (int64_t[]){m, n}), *yd = case_tensor(c, 2, (int64_t[]){m, n});
    Tensor *yb = case_tensor(c, 2, (int64_t[]){m, n});
    if (!a || !b || !y || !yd || !yb) return out_of_memory(c);
    snprintf(c->compile_what, sizeof c->compile_what, "kernel sgemm (one definition)");
    if (case_tdsl(c, NULL, SGEMM_SRC, "sgemm", (Tensor *[]){a, b, y}, 3, 2, false) != 0) return -1;
    anchors_add_sgemm(c, a, b, yd, yb);
    case_add_torch(c, "sgemm", NULL);
    c->flops = 2.0 * (double)m * (double)n * (double)k;
    c->bytes = 4.0 * ((double)m * (double)k + (double)k * (double)n + (double)m * (double)n);
    return 0;
}

static double check_sgemm(Case *c)
{
    long n = case_param(c, "N"), k = case_param(c, "K"), m = case_param(c, "M");
    const float *a = c->tensors[0].data, *b = c->tensors[1].data, *y = c->tensors[2].data;
    ErrAcc e = {0, 0};
    for (long s = 0; s < 64; s++) {
        long i = sample(s, 64, m), j = sample(s * 37 + 11, 64 * 37, n);
        double ref = 0;
        for (long q = 0; q < k; q++) ref += (double)a[i * k + q] * b[q * n + j];
        err_add(&e, y[i * n + j], ref);
    }
    return err_result(&e);
}

/* ---- GEMM + bias + GELU ------------------------------------------------------------------- */

static const char *GBG_SRC =
    "import \"nn\"\n"
    "kernel gemm_bias_gelu(a: f32[M, K], b: f32[K, N], bias: f32[N]) -> y: f32[M, N] {\n"
    "    c[i, j] = sum[k](a[i, k] * b[k, j])\n"
    "    y[i, j] = gelu(c[i, j] + bias[j])\n"
    "}\n";

/* tensors: 0 a, 1 b, 2 bias, 3 y (tdsl), 4 y (oneDNN), [5 y (no-fuse)] */
static int setup_gemm_bias_gelu(Case *c)
{
    long m = case_param(c, "M"), n = case_param(c, "N"), k = case_param(c, "K");
    Tensor *a = case_tensor(c, 2, (int64_t[]){m, k}), *b = case_tensor(c, 2, (int64_t[]){k, n});
    Tensor *bias = case_tensor(c, 1, (int64_t[]){n}), *y = case_tensor(c, 2, (int64_t[]){m, n});
    Tensor *yd = case_tensor(c, 2, (int64_t[]){m, n});
    if (!a || !b || !bias || !y || !yd) return out_of_memory(c);
    snprintf(c->compile_what, sizeof c->compile_what, "kernel gemm_bias_gelu (two definitions)");
    if (case_tdsl(c, NULL, GBG_SRC, "gemm_bias_gelu", (Tensor *[]){a, b, bias, y}, 4, 3, true) != 0) return -1;
    anchors_add_gemm_bias_gelu(c, a, b, bias, yd);
    case_add_torch(c, "gemm_bias_gelu", NULL);
    c->flops = 2.0 * (double)m * (double)n * (double)k;
    c->bytes = 4.0 * ((double)m * (double)k + (double)k * (double)n + (double)n + (double)m * (double)n);
    return 0;
}

static double check_gemm_bias_gelu(Case *c)
{
    long n = case_param(c, "N"), k = case_param(c, "K"), m = case_param(c, "M");
    const float *a = c->tensors[0].data, *b = c->tensors[1].data, *bias = c->tensors[2].data;
    const float *y = c->tensors[3].data;
    ErrAcc e = {0, 0};
    for (long s = 0; s < 64; s++) {
        long i = sample(s, 64, m), j = sample(s * 37 + 11, 64 * 37, n);
        double acc = 0;
        for (long q = 0; q < k; q++) acc += (double)a[i * k + q] * b[q * n + j];
        err_add(&e, y[i * n + j], bench_gelu(acc + bias[j]));
    }
    return err_result(&e);
}

/* ---- softmax, layernorm, rmsnorm ----------------------------------------------------------- */

static const char *SOFTMAX_SRC =
    "import \"nn\"\n"
    "kernel softmax_rows(x: f32[R, N]) -> y: f32[R, N] {\n"
    "    y = softmax(x)\n"
    "}\n";

static const char *LAYERNORM_SRC =
    "import \"nn\"\n"
    "kernel layernorm_rows(x: f32[R, D], g: f32[D], b: f32[D], eps: f32) -> y: f32[R, D] {\n"
    "    y = layernorm(x, g, b, eps)\n"
    "}\n";

static const char *RMSNORM_SRC =
    "import \"nn\"\n"
    "kernel rmsnorm_rows(x: f32[R, D], g: f32[D], eps: f32) -> y: f32[R, D] {\n"
    "    y = rmsnorm(x, g, eps)\n"
    "}\n";

/* tensors: 0 x, 1 y */
static int setup_softmax(Case *c)
{
    long r = case_param(c, "R"), n = case_param(c, "N");
    Tensor *x = case_tensor_fill(c, 2, (int64_t[]){r, n}, -4, 4), *y = case_tensor(c, 2, (int64_t[]){r, n});
    if (!x || !y) return out_of_memory(c);
    snprintf(c->compile_what, sizeof c->compile_what, "kernel: y = softmax(x), stdlib nn");
    if (case_tdsl(c, NULL, SOFTMAX_SRC, "softmax_rows", (Tensor *[]){x, y}, 2, 1, true) != 0) return -1;
    case_add_torch(c, "softmax", NULL);
    c->bytes = 4.0 * 2.0 * (double)r * (double)n;
    c->flops = 4.0 * (double)r * (double)n;
    return 0;
}

static double check_softmax(Case *c)
{
    long r = case_param(c, "R"), n = case_param(c, "N");
    const float *x = c->tensors[0].data, *y = c->tensors[1].data;
    ErrAcc e = {0, 0};
    for (long s = 0; s < 8; s++) {
        long i = sample(s, 8, r);
        double mx = -INFINITY, sum = 0;
        for (long j = 0; j < n; j++) mx = fmax(mx, x[i * n + j]);
        for (long j = 0; j < n; j++) sum += exp(x[i * n + j] - mx);
        for (long j = 0; j < n; j++) err_add(&e, y[i * n + j], exp(x[i * n + j] - mx) / sum);
    }
    return err_result(&e);
}

/* tensors: 0 x, 1 g, 2 b, 3 eps, 4 y */
static int setup_layernorm(Case *c)
{
    long r = case_param(c, "R"), d = case_param(c, "D");
    Tensor *x = case_tensor(c, 2, (int64_t[]){r, d}), *g = case_tensor(c, 1, (int64_t[]){d});
    Tensor *b = case_tensor(c, 1, (int64_t[]){d}), *eps = case_tensor_fill(c, 0, NULL, 1e-5f, 1e-5f);
    Tensor *y = case_tensor(c, 2, (int64_t[]){r, d});
    if (!x || !g || !b || !eps || !y) return out_of_memory(c);
    snprintf(c->compile_what, sizeof c->compile_what, "kernel: y = layernorm(x, g, b, eps), stdlib nn");
    if (case_tdsl(c, NULL, LAYERNORM_SRC, "layernorm_rows", (Tensor *[]){x, g, b, eps, y}, 5, 4, true) != 0)
        return -1;
    case_add_torch(c, "layernorm", NULL);
    c->bytes = 4.0 * (2.0 * (double)r * (double)d + 2.0 * (double)d);
    c->flops = 8.0 * (double)r * (double)d;
    return 0;
}

static double check_layernorm(Case *c)
{
    long r = case_param(c, "R"), d = case_param(c, "D");
    const float *x = c->tensors[0].data, *g = c->tensors[1].data, *b = c->tensors[2].data;
    const float *y = c->tensors[4].data;
    ErrAcc e = {0, 0};
    for (long s = 0; s < 8; s++) {
        long i = sample(s, 8, r);
        double mu = 0, var = 0;
        for (long j = 0; j < d; j++) mu += x[i * d + j];
        mu /= (double)d;
        for (long j = 0; j < d; j++) var += (x[i * d + j] - mu) * (x[i * d + j] - mu);
        var /= (double)d;
        for (long j = 0; j < d; j++)
            err_add(&e, y[i * d + j], (x[i * d + j] - mu) / sqrt(var + 1e-5) * g[j] + b[j]);
    }
    return err_result(&e);
}

/* tensors: 0 x, 1 g, 2 eps, 3 y */
static int setup_rmsnorm(Case *c)
{
    long r = case_param(c, "R"), d = case_param(c, "D");
    Tensor *x = case_tensor(c, 2, (int64_t[]){r, d}), *g = case_tensor(c, 1, (int64_t[]){d});
    Tensor *eps = case_tensor_fill(c, 0, NULL, 1e-5f, 1e-5f), *y = case_tensor(c, 2, (int64_t[]){r, d});
    if (!x || !g || !eps || !y) return out_of_memory(c);
    snprintf(c->compile_what, sizeof c->compile_what, "kernel: y = rmsnorm(x, g, eps), stdlib nn");
    if (case_tdsl(c, NULL, RMSNORM_SRC, "rmsnorm_rows", (Tensor *[]){x, g, eps, y}, 4, 3, true) != 0) return -1;
    case_add_torch(c, "rmsnorm", NULL);
    c->bytes = 4.0 * (2.0 * (double)r * (double)d + (double)d);
    c->flops = 4.0 * (double)r * (double)d;
    return 0;
}

static double check_rmsnorm(Case *c)
{
    long r = case_param(c, "R"), d = case_param(c, "D");
    const float *x = c->tensors[0].data, *g = c->tensors[1].data, *y = c->tensors[3].data;
    ErrAcc e = {0, 0};
    for (long s = 0; s < 8; s++) {
        long i = sample(s, 8, r);
        double ms = 0;
        for (long j = 0; j < d; j++) ms += (double)x[i * d + j] * x[i * d + j];
        ms /= (double)d;
        for (long j = 0; j < d; j++) err_add(&e, y[i * d + j], x[i * d + j] / sqrt(ms + 1e-5) * g[j]);
    }
    return err_result(&e);
}

/* ---- causal attention ------------------------------------------------------------------------ */

/* tensors: 0 q, 1 k, 2 v, 3 o */
static int setup_attention(Case *c)
{
    long bb = case_param(c, "B"), h = case_param(c, "H"), n = case_param(c, "N"), d = case_param(c, "D");
    int64_t shape[4] = {bb, h, n, d};
    Tensor *q = case_tensor(c, 4, shape), *k = case_tensor(c, 4, shape), *v = case_tensor(c, 4, shape);
    Tensor *o = case_tensor(c, 4, shape);
    if (!q || !k || !v || !o) return out_of_memory(c);
    char path[1024];
    snprintf(path, sizeof path, "%s/stdlib/attention.tdsl", c->b->src_dir);
    snprintf(c->compile_what, sizeof c->compile_what, "stdlib/attention.tdsl, whole file");
    if (case_tdsl(c, path, NULL, "attention_causal", (Tensor *[]){q, k, v, o}, 4, 3, true) != 0) return -1;
    case_add_torch(c, "attention_causal", NULL);
    c->flops = 2.0 * (double)bb * (double)h * (double)n * (double)n * (double)d;
    c->bytes = 4.0 * 4.0 * (double)bb * (double)h * (double)n * (double)d;
    return 0;
}

static double check_attention(Case *c)
{
    long bb = case_param(c, "B"), h = case_param(c, "H"), n = case_param(c, "N"), d = case_param(c, "D");
    const float *q = c->tensors[0].data, *k = c->tensors[1].data, *v = c->tensors[2].data;
    const float *o = c->tensors[3].data;
    double *p = malloc(sizeof(double) * (size_t)n);
    if (!p) return -1;
    ErrAcc e = {0, 0};
    for (long s = 0; s < 8; s++) {
        long head = sample(s, 8, bb * h), row = sample(s * 5 + 3, 40, n);
        const float *qh = q + head * n * d, *kh = k + head * n * d, *vh = v + head * n * d;
        double mx = -INFINITY, sum = 0;
        for (long m = 0; m <= row; m++) {
            double dot = 0;
            for (long j = 0; j < d; j++) dot += (double)qh[row * d + j] * kh[m * d + j];
            p[m] = dot / sqrt((double)d);
            mx = fmax(mx, p[m]);
        }
        for (long m = 0; m <= row; m++) sum += (p[m] = exp(p[m] - mx));
        for (long j = 0; j < d; j++) {
            double acc = 0;
            for (long m = 0; m <= row; m++) acc += p[m] * vh[m * d + j];
            err_add(&e, o[head * n * d + row * d + j], acc / sum);
        }
    }
    free(p);
    return err_result(&e);
}

/* ---- MLP block --------------------------------------------------------------------------------- */

static const char *MLP_SRC =
    "import \"nn\"\n"
    "kernel mlp(x: f32[M, D], w1: f32[F, D], b1: f32[F], w2: f32[E, F], b2: f32[E]) -> y: f32[M, E] {\n"
    "    y = mlp_gelu(x, w1, b1, w2, b2)\n"
    "}\n";

/* tensors: 0 x, 1 w1, 2 b1, 3 w2, 4 b2, 5 y (tdsl), 6 h (oneDNN), 7 y (oneDNN) */
static int setup_mlp(Case *c)
{
    long m = case_param(c, "M"), d = case_param(c, "D"), f = case_param(c, "F"), e = case_param(c, "E");
    /* weights scaled like a default torch.nn.Linear init (uniform ±1/sqrt(fan_in)) */
    float s1 = 1.0f / sqrtf((float)d), s2 = 1.0f / sqrtf((float)f);
    Tensor *x = case_tensor(c, 2, (int64_t[]){m, d});
    Tensor *w1 = case_tensor_fill(c, 2, (int64_t[]){f, d}, -s1, s1);
    Tensor *b1 = case_tensor_fill(c, 1, (int64_t[]){f}, -s1, s1);
    Tensor *w2 = case_tensor_fill(c, 2, (int64_t[]){e, f}, -s2, s2);
    Tensor *b2 = case_tensor_fill(c, 1, (int64_t[]){e}, -s2, s2);
    Tensor *y = case_tensor(c, 2, (int64_t[]){m, e}), *h = case_tensor(c, 2, (int64_t[]){m, f});
    Tensor *yd = case_tensor(c, 2, (int64_t[]){m, e});
    if (!x || !w1 || !b1 || !w2 || !b2 || !y || !h || !yd) return out_of_memory(c);
    snprintf(c->compile_what, sizeof c->compile_what, "kernel: y = mlp_gelu(x, w1, b1, w2, b2), stdlib nn");
    if (case_tdsl(c, NULL, MLP_SRC, "mlp", (Tensor *[]){x, w1, b1, w2, b2, y}, 6, 5, true) != 0) return -1;
    anchors_add_mlp(c, x, w1, b1, w2, b2, h, yd);
    case_add_torch(c, "mlp_gelu", NULL);
    c->flops = 2.0 * (double)m * (double)d * (double)f + 2.0 * (double)m * (double)f * (double)e;
    c->bytes = 4.0 * ((double)m * (double)d + (double)f * (double)d + (double)e * (double)f + (double)m * (double)e);
    return 0;
}

static double check_mlp(Case *c)
{
    long m = case_param(c, "M"), d = case_param(c, "D"), f = case_param(c, "F"), e = case_param(c, "E");
    const float *x = c->tensors[0].data, *w1 = c->tensors[1].data, *b1 = c->tensors[2].data;
    const float *w2 = c->tensors[3].data, *b2 = c->tensors[4].data, *y = c->tensors[5].data;
    double *h = malloc(sizeof(double) * (size_t)f);
    if (!h) return -1;
    ErrAcc err = {0, 0};
    for (long s = 0; s < 4; s++) {
        long i = sample(s, 4, m);
        for (long j = 0; j < f; j++) {
            double acc = b1[j];
            for (long q = 0; q < d; q++) acc += (double)x[i * d + q] * w1[j * d + q];
            h[j] = bench_gelu(acc);
        }
        for (long j = 0; j < e; j++) {
            double acc = b2[j];
            for (long q = 0; q < f; q++) acc += h[q] * w2[j * f + q];
            err_add(&err, y[i * e + j], acc);
        }
    }
    free(h);
    return err_result(&err);
}

const CaseDef SUITE_CORE[] = {
    {"sgemm_1024", {"M=1024 N=1024 K=1024"}, false, setup_sgemm, check_sgemm},
    {"sgemm_2048", {"M=2048 N=2048 K=2048", "M=1536 N=1536 K=1536"}, false, setup_sgemm, check_sgemm},
    {"gemm_bias_gelu", {"M=1024 N=1024 K=1024"}, false, setup_gemm_bias_gelu, check_gemm_bias_gelu},
    {"softmax", {"R=4096 N=4096"}, true, setup_softmax, check_softmax},
    {"layernorm", {"R=4096 D=4096"}, true, setup_layernorm, check_layernorm},
    {"rmsnorm", {"R=4096 D=4096"}, true, setup_rmsnorm, check_rmsnorm},
    {"attention_causal", {"B=1 H=8 N=2048 D=64", "B=1 H=8 N=1024 D=64", "B=1 H=8 N=512 D=64"}, false,
     setup_attention, check_attention},
    {"mlp_gelu", {"M=1024 D=1024 F=4096 E=1024", "M=256 D=1024 F=4096 E=1024"}, false, setup_mlp, check_mlp},
    {NULL, {NULL}, false, NULL, NULL},
};
