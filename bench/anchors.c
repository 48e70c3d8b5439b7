/* anchors.c: the in-process anchors, oneDNN and OpenBLAS.
 *
 * Each is built only when CMake found the library (TDSL_BENCH_HAVE_DNNL,
 * TDSL_BENCH_HAVE_OPENBLAS); otherwise the case gets an unavailable implementation whose
 * message says so, and the table shows it.
 *
 *   SGEMM            dnnl_sgemm and cblas_sgemm, row-major, no transposes
 *   GEMM+bias+GELU   oneDNN's matmul primitive (with its bias) followed by its eltwise
 *                    primitive (gelu_erf, in place): the unfused pair PERFORMANCE.md names
 *   MLP block        matmul (bias), eltwise gelu_erf, matmul (bias), with the weights in
 *                    torch's [out, in] layout described to oneDNN by strides
 *
 * Threads: both libraries take their thread count from the environment the parent set
 * (OMP_NUM_THREADS for oneDNN's OpenMP runtime; OPENBLAS_NUM_THREADS), and OpenBLAS is also
 * told with openblas_set_num_threads. The primitives are created at set-up, not timed. */
#include <stdlib.h>
#include <string.h>

#include "bench.h"

#ifdef TDSL_BENCH_HAVE_DNNL
#include <oneapi/dnnl/dnnl.h>
#endif
#ifdef TDSL_BENCH_HAVE_OPENBLAS
#include <cblas.h>
#endif

enum { MAX_PRIMS = 3, MAX_MEMS = 12 };

/* The anchors' state of one case. */
typedef struct AnchorState {
    const float *a, *b;          /* SGEMM operands, [M, K] and [K, N] */
    float *c_dnnl, *c_blas;      /* SGEMM outputs */
    long m, n, k;                /* SGEMM sizes */
#ifdef TDSL_BENCH_HAVE_DNNL
    dnnl_engine_t eng;                        /* the CPU engine */
    dnnl_stream_t stream;                     /* its stream */
    dnnl_primitive_t prim[MAX_PRIMS];         /* executed in order */
    dnnl_exec_arg_t args[MAX_PRIMS][4];       /* each primitive's arguments */
    int nargs[MAX_PRIMS];                     /* entries of args[i] */
    int nprims;                               /* entries of prim */
    dnnl_memory_t mem[MAX_MEMS];              /* wrapping the case's tensors */
    int nmems;                                /* entries of mem */
#endif
} AnchorState;

static void anchor_state_free(void *p)
{
    AnchorState *s = p;
    if (!s) return;
#ifdef TDSL_BENCH_HAVE_DNNL
    for (int i = 0; i < s->nprims; i++) dnnl_primitive_destroy(s->prim[i]);
    for (int i = 0; i < s->nmems; i++) dnnl_memory_destroy(s->mem[i]);
    if (s->stream) dnnl_stream_destroy(s->stream);
    if (s->eng) dnnl_engine_destroy(s->eng);
#endif
    free(s);
}

static AnchorState *anchor_state(Case *c)
{
    if (!c->state) {
        c->state = calloc(1, sizeof(AnchorState));
        c->free_state = anchor_state_free;
    }
    return c->state;
}

static void unavailable(Case *c, const char *name, const char *why)
{
    Impl *im = case_add_impl(c, name, NULL, NULL);
    if (im) snprintf(im->error, sizeof im->error, "%s", why);
}

void anchors_set_threads(int threads)
{
#ifdef TDSL_BENCH_HAVE_OPENBLAS
    openblas_set_num_threads(threads);
#else
    (void)threads;
#endif
}

void anchors_describe(FILE *f)
{
#ifdef TDSL_BENCH_HAVE_DNNL
    const dnnl_version_t *v = dnnl_version();
    fprintf(f, "\"dnnl\": \"%d.%d.%d (cpu runtime %s)\"", v->major, v->minor, v->patch,
            v->cpu_runtime == DNNL_RUNTIME_OMP   ? "OpenMP"
            : v->cpu_runtime == DNNL_RUNTIME_SEQ ? "sequential"
                                                 : "other");
#else
    fputs("\"dnnl\": null", f);
#endif
#ifdef TDSL_BENCH_HAVE_OPENBLAS
    fprintf(f, ", \"openblas\": ");
    char desc[512];
    snprintf(desc, sizeof desc, "%s; core %s; %d threads", openblas_get_config(), openblas_get_corename(),
             openblas_get_num_threads());
    json_put_str(f, desc);
#else
    fputs(", \"openblas\": null", f);
#endif
}

/* ---- SGEMM ------------------------------------------------------------------------------ */

#ifdef TDSL_BENCH_HAVE_DNNL
static int run_dnnl_sgemm(Impl *im, double *ms)
{
    AnchorState *s = im->ctx;
    double t0 = bench_now();
    dnnl_status_t st = dnnl_sgemm('N', 'N', s->m, s->n, s->k, 1.0f, s->a, s->k, s->b, s->n, 0.0f, s->c_dnnl, s->n);
    *ms = 1e3 * (bench_now() - t0);
    if (st != dnnl_success) {
        snprintf(im->error, sizeof im->error, "dnnl_sgemm returned %d", (int)st);
        return -1;
    }
    return 0;
}
#endif

#ifdef TDSL_BENCH_HAVE_OPENBLAS
static int run_cblas_sgemm(Impl *im, double *ms)
{
    AnchorState *s = im->ctx;
    double t0 = bench_now();
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)s->m, (int)s->n, (int)s->k, 1.0f, s->a, (int)s->k,
                s->b, (int)s->n, 0.0f, s->c_blas, (int)s->n);
    *ms = 1e3 * (bench_now() - t0);
    return 0;
}
#endif

void anchors_add_sgemm(Case *c, Tensor *a, Tensor *b, Tensor *c_dnnl, Tensor *c_blas)
{
    AnchorState *s = anchor_state(c);
    if (!s) return;
    s->a = a->data;
    s->b = b->data;
    s->c_dnnl = c_dnnl->data;
    s->c_blas = c_blas->data;
    s->m = (long)a->shape[0];
    s->k = (long)a->shape[1];
    s->n = (long)b->shape[1];
#ifdef TDSL_BENCH_HAVE_DNNL
    case_add_impl(c, "oneDNN dnnl_sgemm", run_dnnl_sgemm, s);
#else
    unavailable(c, "oneDNN dnnl_sgemm", "anchor oneDNN unavailable: libdnnl not found at configure time");
#endif
#ifdef TDSL_BENCH_HAVE_OPENBLAS
    case_add_impl(c, "OpenBLAS cblas_sgemm", run_cblas_sgemm, s);
#else
    unavailable(c, "OpenBLAS cblas_sgemm", "anchor OpenBLAS unavailable: libopenblas not found at configure time");
#endif
}

/* ---- oneDNN primitives -------------------------------------------------------------------- */

#ifdef TDSL_BENCH_HAVE_DNNL
static int run_dnnl_prims(Impl *im, double *ms)
{
    AnchorState *s = im->ctx;
    double t0 = bench_now();
    for (int i = 0; i < s->nprims; i++) {
        dnnl_status_t st = dnnl_primitive_execute(s->prim[i], s->stream, s->nargs[i], s->args[i]);
        if (st != dnnl_success) {
            snprintf(im->error, sizeof im->error, "dnnl_primitive_execute returned %d", (int)st);
            return -1;
        }
    }
    dnnl_stream_wait(s->stream);
    *ms = 1e3 * (bench_now() - t0);
    return 0;
}

/* A row-major [rows, cols] f32 descriptor; transposed: the memory holds [cols, rows]. */
static dnnl_memory_desc_t md2(long rows, long cols, bool transposed)
{
    dnnl_memory_desc_t md;
    dnnl_dims_t d = {rows, cols};
    dnnl_memory_desc_init_by_tag(&md, 2, d, dnnl_f32, transposed ? dnnl_ba : dnnl_ab);
    return md;
}

static dnnl_memory_t wrap(AnchorState *s, const dnnl_memory_desc_t *md, float *data)
{
    dnnl_memory_t m = NULL;
    if (s->nmems == MAX_MEMS || dnnl_memory_create(&m, md, s->eng, data) != dnnl_success) return NULL;
    s->mem[s->nmems++] = m;
    return m;
}

/* dst = src weights + bias; weights [K, N] logically, stored [N, K] when w_transposed. */
static bool add_matmul(AnchorState *s, Tensor *src, Tensor *w, bool w_transposed, Tensor *bias, Tensor *dst)
{
    long m = (long)src->shape[0], k = (long)src->shape[1];
    long n = w_transposed ? (long)w->shape[0] : (long)w->shape[1];
    dnnl_memory_desc_t src_md = md2(m, k, false), w_md = md2(k, n, w_transposed), b_md = md2(1, n, false),
                       dst_md = md2(m, n, false);
    dnnl_matmul_desc_t desc;
    dnnl_primitive_desc_t pd;
    if (dnnl_matmul_desc_init(&desc, &src_md, &w_md, &b_md, &dst_md) != dnnl_success) return false;
    if (dnnl_primitive_desc_create(&pd, &desc, NULL, s->eng, NULL) != dnnl_success) return false;
    int i = s->nprims;
    dnnl_status_t st = dnnl_primitive_create(&s->prim[i], pd);
    dnnl_primitive_desc_destroy(pd);
    if (st != dnnl_success) return false;
    s->nprims++;
    dnnl_memory_t ms = wrap(s, &src_md, src->data), mw = wrap(s, &w_md, w->data), mb = wrap(s, &b_md, bias->data),
                  md = wrap(s, &dst_md, dst->data);
    if (!ms || !mw || !mb || !md) return false;
    s->args[i][0] = (dnnl_exec_arg_t){DNNL_ARG_SRC, ms};
    s->args[i][1] = (dnnl_exec_arg_t){DNNL_ARG_WEIGHTS, mw};
    s->args[i][2] = (dnnl_exec_arg_t){DNNL_ARG_BIAS, mb};
    s->args[i][3] = (dnnl_exec_arg_t){DNNL_ARG_DST, md};
    s->nargs[i] = 4;
    return true;
}

/* x = gelu(x), in place, erf form (the GELU of stdlib/nn.tdsl). */
static bool add_gelu(AnchorState *s, Tensor *x)
{
    dnnl_memory_desc_t md = md2((long)x->shape[0], (long)x->shape[1], false);
    dnnl_eltwise_desc_t desc;
    dnnl_primitive_desc_t pd;
    if (dnnl_eltwise_forward_desc_init(&desc, dnnl_forward_inference, dnnl_eltwise_gelu_erf, &md, 0.0f, 0.0f) !=
        dnnl_success)
        return false;
    if (dnnl_primitive_desc_create(&pd, &desc, NULL, s->eng, NULL) != dnnl_success) return false;
    int i = s->nprims;
    dnnl_status_t st = dnnl_primitive_create(&s->prim[i], pd);
    dnnl_primitive_desc_destroy(pd);
    if (st != dnnl_success) return false;
    s->nprims++;
    dnnl_memory_t m = wrap(s, &md, x->data);
    if (!m) return false;
    s->args[i][0] = (dnnl_exec_arg_t){DNNL_ARG_SRC, m};
    s->args[i][1] = (dnnl_exec_arg_t){DNNL_ARG_DST, m};
    s->nargs[i] = 2;
    return true;
}

static bool dnnl_start(AnchorState *s)
{
    if (s->eng) return true;
    if (dnnl_engine_create(&s->eng, dnnl_cpu, 0) != dnnl_success) return false;
    return dnnl_stream_create(&s->stream, s->eng, dnnl_stream_default_flags) == dnnl_success;
}
#endif

void anchors_add_gemm_bias_gelu(Case *c, Tensor *a, Tensor *b, Tensor *bias, Tensor *y)
{
    const char *name = "oneDNN matmul+eltwise";
#ifdef TDSL_BENCH_HAVE_DNNL
    AnchorState *s = anchor_state(c);
    if (s && dnnl_start(s) && add_matmul(s, a, b, false, bias, y) && add_gelu(s, y))
        case_add_impl(c, name, run_dnnl_prims, s);
    else
        unavailable(c, name, "creating the oneDNN primitives failed");
#else
    (void)a, (void)b, (void)bias, (void)y;
    unavailable(c, name, "anchor oneDNN unavailable: libdnnl not found at configure time");
#endif
}

void anchors_add_mlp(Case *c, Tensor *x, Tensor *w1, Tensor *b1, Tensor *w2, Tensor *b2, Tensor *h, Tensor *y)
{
    const char *name = "oneDNN mm,gelu,mm";
#ifdef TDSL_BENCH_HAVE_DNNL
    AnchorState *s = anchor_state(c);
    if (s && dnnl_start(s) && add_matmul(s, x, w1, true, b1, h) && add_gelu(s, h) && add_matmul(s, h, w2, true, b2, y))
        case_add_impl(c, name, run_dnnl_prims, s);
    else
        unavailable(c, name, "creating the oneDNN primitives failed");
#else
    (void)x, (void)w1, (void)b1, (void)w2, (void)b2, (void)h, (void)y;
    unavailable(c, name, "anchor oneDNN unavailable: libdnnl not found at configure time");
#endif
}
