/* Unit tests of the runtime (runtime/) and the AOT builder (codegen/cpu/aot.c):
 *   - the signature parser on good and malformed text (and random mutations of it);
 *   - tdsl_compile + tdsl_kernel_call against the reference interpreter on random data,
 *     every dtype family (f32, f16, bf16, i32, packed i4, bool), compound dimensions and
 *     several outputs;
 *   - every misuse returns its code and message and leaves the outputs untouched;
 *   - AOT: cpu_build_shared + cpu_write_header, tdsl_load, the typed symbols, a C host
 *     compiled against the header, what the .so depends on and exports, failed builds;
 *   - parallel kernels, JIT and AOT, give the same bytes at 1, 2 and 3 threads
 *     (tdsl_set_num_threads), and an AOT library without parallel loops needs no OpenMP;
 *   - four threads compiling, calling and freeing at once. */
#include <criterion/criterion.h>
#include <dlfcn.h>
#include <math.h>
#include <omp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "codegen/cpu/cpu.h"
#include "frontend/frontend.h"
#include "ir/ir.h"
#include "runtime/rt.h"
#include "runtime/tdsl.h"

static const char *PROG =
    "kernel axpy(a: f32, x: f32[N], y: f32[N]) -> z: f32[N] {\n"
    "    z[i] = a * x[i] + y[i]\n"
    "}\n"
    "kernel softmax(x: f32[R, N]) -> y: f32[R, N] {\n"
    "    m[r] = max[n](x[r, n])\n"
    "    e[r, n] = exp(x[r, n] - m[r])\n"
    "    s[r] = sum[n](e[r, n])\n"
    "    y[r, n] = e[r, n] / s[r]\n"
    "}\n"
    "kernel dot(q: f32[N, D], k: f32[M, D]) -> s: f32[N, M] {\n"
    "    s[n, m] = sum[d](q[n, d] * k[m, d])\n"
    "}\n"
    "kernel pairs(x: f32[2 * N]) -> (y: f32[N], c: i32[N + 1]) {\n"
    "    y[i] = x[2 * i] + x[2 * i + 1]\n"
    "    c[j] = i32(j)\n"
    "}\n"
    "kernel nib(x: i4[N], b: bool[N], h: bf16[N]) -> (y: i4[N], g: f16[N]) {\n"
    "    y[i] = where(b[i], x[i], -x[i])\n"
    "    g[i] = f16(h[i]) * 2\n"
    "}\n";

/* ---- the signature parser ----------------------------------------------------------------- */

static RtSig *parse(const char *text, char *err, size_t cap) { return rt_sig_parse(text, strlen(text), err, cap); }

static const char *dim_text(const RtSig *s, const RtDim *d)
{
    static char buf[256];
    rt_dim_format(s, d, buf, sizeof buf);
    return buf;
}

Test(signature, layernorm)
{
    char err[256];
    RtSig *s = parse("layernorm(x: f32[N, D], g: f32[D], b: f32[D]) -> (y: f32[N, D])", err, sizeof err);
    cr_assert(s, "%s", err);
    cr_assert_str_eq(s->name, "layernorm");
    cr_assert_eq(s->nins, 3);
    cr_assert_eq(s->nouts, 1);
    cr_assert_eq(s->nparams, 4);
    cr_assert_eq(s->nsizes, 2);
    cr_assert_str_eq(s->sizes[0], "N");
    cr_assert_str_eq(s->sizes[1], "D");
    cr_assert_str_eq(s->params[1].name, "g");
    cr_assert_str_eq(rt_dtype_info(s->params[1].dtype)->name, "f32");
    cr_assert_eq(s->params[0].rank, 2);
    cr_assert(!s->params[0].output && s->params[3].output);
    cr_assert(!s->annotated);
    cr_assert_str_eq(s->text, "layernorm(x: f32[N, D], g: f32[D], b: f32[D]) -> (y: f32[N, D])");
    rt_sig_free(s);
}

Test(signature, dims_and_dtypes)
{
    char err[256];
    RtSig *s = parse("f(x: bf16[(N + 1) * 2, K / 128 - 1, 3], s: f32, w: i4[N*K]) -> (y: i2[N - (K - 1)], "
                     "z: bool, u: u4[2 * (N + K)])",
                     err, sizeof err);
    cr_assert(s, "%s", err);
    cr_assert_eq(s->nins, 3);
    cr_assert_eq(s->nouts, 3);
    cr_assert_eq(s->nsizes, 2);
    cr_assert_str_eq(s->sizes[0], "N");
    cr_assert_str_eq(s->sizes[1], "K");
    cr_assert_str_eq(dim_text(s, s->params[0].dims[0]), "(N + 1) * 2");
    cr_assert_str_eq(dim_text(s, s->params[0].dims[1]), "K / 128 - 1");
    cr_assert_str_eq(dim_text(s, s->params[2].dims[0]), "N * K");
    cr_assert_str_eq(dim_text(s, s->params[3].dims[0]), "N - (K - 1)");
    cr_assert_str_eq(dim_text(s, s->params[5].dims[0]), "2 * (N + K)");
    cr_assert_eq(s->params[1].rank, 0);
    cr_assert_eq(s->params[4].rank, 0);
    cr_assert_str_eq(rt_dtype_info(s->params[4].dtype)->name, "bool");
    char type[64];
    rt_param_type_format(s, &s->params[0], type, sizeof type);
    cr_assert_str_eq(type, "bf16[(N + 1) * 2, K / 128 - 1, 3]");
    int64_t sizes[2] = {5, 256}, v;
    cr_assert(rt_dim_eval(s->params[0].dims[0], sizes, &v));
    cr_assert_eq(v, 12);
    cr_assert(rt_dim_eval(s->params[0].dims[1], sizes, &v));
    cr_assert_eq(v, 1);
    cr_assert(rt_dim_eval(s->params[3].dims[0], sizes, &v));
    cr_assert_eq(v, 5 - 255);
    int64_t huge[2] = {INT64_MAX, 1};
    cr_assert(!rt_dim_eval(s->params[0].dims[0], huge, &v), "overflow must be reported");
    rt_sig_free(s);
}

Test(signature, annotations_and_forms)
{
    char err[256];
    RtSig *s = parse("mm(w: f32[N, K] @quant(i4, group=128), x: f32[K] @csr @bsr(4, 4)) -> (y: f32[N])", err,
                     sizeof err);
    cr_assert(s, "%s", err);
    cr_assert(s->annotated);
    cr_assert_str_eq(s->params[0].annot, "@quant(i4, group=128)");
    cr_assert_str_eq(s->params[1].annot, "@csr @bsr(4, 4)");
    cr_assert_null(s->params[2].annot);
    rt_sig_free(s);

    s = parse("gen() -> (y: f32[4])", err, sizeof err);  /* no inputs */
    cr_assert(s, "%s", err);
    cr_assert_eq(s->nins, 0);
    cr_assert_eq(s->nouts, 1);
    rt_sig_free(s);

    s = parse("  one ( x :f32[ N ] )->y:f32[N]  ", err, sizeof err);  /* spacing, bare output */
    cr_assert(s, "%s", err);
    cr_assert_eq(s->nouts, 1);
    rt_sig_free(s);

    /* a NUL ends the text early */
    s = rt_sig_parse("f(x: f32[N]) -> (y: f32[N])\0garbage", 36, err, sizeof err);
    cr_assert(s, "%s", err);
    rt_sig_free(s);
}

Test(signature, malformed)
{
    static const struct { const char *text, *msg; } cases[] = {
        {"", "expected the kernel name"},
        {"f", "expected '(' after the kernel name"},
        {"f(", "expected a parameter name"},
        {"f(x)", "expected ':' after the parameter name"},
        {"f(x: f33[N]) -> (y: f32)", "unknown element type 'f33'"},
        {"f(x: [N]) -> (y: f32)", "expected an element type"},
        {"f(x: f32[N) -> (y: f32)", "expected ']' after the dimensions"},
        {"f(x: f32[]) -> (y: f32)", "expected a dimension"},
        {"f(x: f32[N +]) -> (y: f32)", "expected a dimension"},
        {"f(x: f32[N * * 2]) -> (y: f32)", "expected a dimension"},
        {"f(x: f32[(N + 1]) -> (y: f32)", "expected ')' to close the parenthesis"},
        {"f(x: f32[-1]) -> (y: f32)", "expected a dimension"},
        {"f(x: f32[N]) -> ()", "expected an output name"},
        {"f(x: f32[N]) (y: f32)", "expected '->'"},
        {"f(x: f32[N]) -> (y: f32", "expected ')' after the outputs"},
        {"f(x: f32[N], x: f32[N]) -> (y: f32)", "'x' is declared twice"},
        {"f(x: f32[N]) -> (x: f32)", "'x' is declared twice"},
        {"f(N: f32[N]) -> (y: f32)", "'N' is both a size name and a parameter"},
        {"f(x: f32[N]) -> (y: f32) junk", "unexpected 'j' after the signature"},
        {"f(x: f32[1, 2, 3, 4, 5, 6, 7, 8, 9]) -> (y: f32)", "more than 8 dimensions"},
        {"f(x: f32[99999999999999999999]) -> (y: f32)", "integer too large"},
        {"f(x: f32[N] @quant(i8 -> (y: f32)", "unterminated annotation"},
        {"f(x: f32[N] @) -> (y: f32)", "expected an annotation name"},
        {"f(x: f32[N]) -> (y: f32)\n", "unexpected"},
        {"f(x: f32[N], ) -> (y: f32)", "expected a parameter name"},
        {"f(x: f32[N]) - (y: f32)", "expected '->'"},
        {"f(x: f32[N]) ->", "expected an output name"},
        {"f(x: f32[N$]) -> (y: f32)", "expected ']'"},
        {"1f(x: f32) -> (y: f32)", "expected the kernel name"},
    };
    for (int i = 0; i < TD_COUNTOF(cases); i++) {
        char err[256];
        RtSig *s = parse(cases[i].text, err, sizeof err);
        cr_expect_null(s, "'%s' should not parse", cases[i].text);
        rt_sig_free(s);
        cr_expect(strstr(err, cases[i].msg) != NULL, "'%s': message '%s' lacks '%s'", cases[i].text, err,
                  cases[i].msg);
        cr_expect(strncmp(err, "column ", 7) == 0, "'%s': message '%s' has no column", cases[i].text, err);
    }
    char err[8];  /* a small buffer truncates, never overflows */
    cr_assert_null(parse("f(", err, sizeof err));
    cr_assert_eq(strlen(err), sizeof err - 1);
    cr_assert_null(rt_sig_parse(NULL, 0, err, sizeof err));
    RtSig *s = parse("f(x: f32) -> (y: f32)", NULL, 0);  /* no message buffer at all */
    cr_assert(s);
    rt_sig_free(s);
    cr_assert_null(parse("f(", NULL, 0));
}

Test(signature, limits)
{
    /* nesting bounded, not a stack overflow */
    char text[4096] = "f(x: f32[";
    for (int i = 0; i < 1000; i++) strcat(text, "(");
    strcat(text, "N");
    for (int i = 0; i < 1000; i++) strcat(text, ")");
    strcat(text, "]) -> (y: f32)");
    char err[256];
    cr_assert_null(parse(text, err, sizeof err));
    cr_assert(strstr(err, "nested too deeply"), "%s", err);
    /* many parameters are fine */
    size_t cap = 1 << 20, len = 0;
    char *big = malloc(cap);
    len += (size_t)snprintf(big + len, cap - len, "many(");
    for (int i = 0; i < 3000; i++) len += (size_t)snprintf(big + len, cap - len, "%sp%d: f32[S%d]", i ? ", " : "", i, i % 50);
    len += (size_t)snprintf(big + len, cap - len, ") -> (y: f32)");
    RtSig *s = rt_sig_parse(big, len, err, sizeof err);
    cr_assert(s, "%s", err);
    cr_assert_eq(s->nins, 3000);
    cr_assert_eq(s->nsizes, 50);
    rt_sig_free(s);
    free(big);
}

/* Random byte edits of good signatures: parse or fail, never crash (run under ASan). */
Test(signature, mutations)
{
    static const char *const seeds[] = {
        "layernorm(x: f32[N, D], g: f32[D], b: f32[D]) -> (y: f32[N, D])",
        "f(x: bf16[(N + 1) * 2, K / 128 - 1], w: f32[N, K] @quant(i4, group=128)) -> (y: i2[N - 1], z: bool)",
    };
    static const char alphabet[] = "()[],:@-> +*/0123456789NKxyzf32i4 \t\n";
    unsigned seed = 12345;
    for (int iter = 0; iter < 20000; iter++) {
        char buf[256];
        snprintf(buf, sizeof buf, "%s", seeds[iter % 2]);
        size_t len = strlen(buf);
        int edits = 1 + (int)(rand_r(&seed) % 4);
        for (int e = 0; e < edits && len > 0; e++) {
            size_t pos = rand_r(&seed) % len;
            int what = (int)(rand_r(&seed) % 3);
            char c = alphabet[rand_r(&seed) % (sizeof alphabet - 1)];
            if (what == 0) buf[pos] = c;
            else if (what == 1 && len + 1 < sizeof buf) {
                memmove(buf + pos + 1, buf + pos, len - pos + 1);
                buf[pos] = c;
                len++;
            } else {
                memmove(buf + pos, buf + pos + 1, len - pos);
                len--;
            }
        }
        char err[128];
        RtSig *s = rt_sig_parse(buf, len, err, sizeof err);
        if (s) {  /* whatever parsed must print and evaluate safely */
            int64_t sizes[64];
            for (int i = 0; i < 64; i++) sizes[i] = 7;
            for (int p = 0; p < s->nparams; p++) {
                char type[512];
                rt_param_type_format(s, &s->params[p], type, sizeof type);
                for (int a = 0; a < s->params[p].rank; a++) {
                    int64_t v;
                    if (s->nsizes <= 64) (void)rt_dim_eval(s->params[p].dims[a], sizes, &v);
                }
            }
        }
        rt_sig_free(s);
    }
}

/* ---- tensors for the tests ---------------------------------------------------------------- */

typedef struct T {
    DLTensor dl;
    int64_t  shape[IR_MAX_RANK];
    DType    dtype;
    size_t   n;       /* elements */
    size_t   nbytes;
    void    *data;
} T;

static T *t_new(DType dt, int rank, const int64_t *shape)
{
    T *t = calloc(1, sizeof *t);
    t->dtype = dt;
    t->n = 1;
    for (int a = 0; a < rank; a++) {
        t->shape[a] = shape[a];
        t->n *= (size_t)shape[a];
    }
    cr_assert(dtype_storage_bytes(dt, t->n, &t->nbytes));
    t->data = calloc(1, t->nbytes + 16);
    t->dl = (DLTensor){.data = t->data,
                       .device = {kDLCPU, 0},
                       .ndim = rank,
                       .dtype = {(uint8_t)dtype_dlpack_code(dt), (uint8_t)dtype_bits(dt), 1},
                       .shape = t->shape,
                       .strides = NULL,
                       .byte_offset = 0};
    return t;
}

static T *t_new2(DType dt, int64_t a, int64_t b) { return t_new(dt, 2, (int64_t[]){a, b}); }

static void t_free(T *t)
{
    if (!t) return;
    free(t->data);
    free(t);
}

static void t_random(T *t, unsigned *seed)
{
    for (size_t i = 0; i < t->n; i++) {
        double u = (double)rand_r(seed) / RAND_MAX * 2 - 1;
        if (dtype_is_float(t->dtype)) {
            dtype_store_f(t->dtype, t->data, i, dtype_round_f(t->dtype, u));
        } else {
            int64_t lo, hi;
            dtype_int_range(t->dtype, &lo, &hi);
            if (lo < -8) lo = -8;
            if (hi > 7) hi = 7;
            dtype_store_i(t->dtype, t->data, i, lo + (int64_t)(rand_r(seed) % (unsigned)(hi - lo + 1)));
        }
    }
}

static void t_fill_sentinel(T *t) { memset(t->data, 0xA5, t->nbytes); }

static bool t_is_sentinel(const T *t)
{
    for (size_t i = 0; i < t->nbytes; i++)
        if (((unsigned char *)t->data)[i] != 0xA5) return false;
    return true;
}

/* ---- the interpreter as the reference ----------------------------------------------------- */

static Module *compile_ir(const char *src)
{
    DiagSink d;
    diag_init(&d, NULL);
    Module *m = fe_compile_source("prog.tdsl", src, strlen(src), &(FeOptions){0}, &d);
    cr_assert(m && d.nerrors == 0, "%s", sb_cstr(&d.log));
    diag_free(&d);
    StrBuf err = {0};
    cr_assert(ir_verify(m, &err), "%s", sb_cstr(&err));
    sb_free(&err);
    return m;
}

static const Kernel *find_kernel(const Module *m, const char *name)
{
    for (int i = 0; i < m->nkernels; i++)
        if (strcmp(m->kernels[i]->name, name) == 0) return m->kernels[i];
    cr_assert_fail("no kernel %s", name);
    return NULL;
}

/* A way to call kernel k with DLTensors: through tdsl_kernel_call, or a typed symbol. */
typedef int (*CallFn)(void *ctx, const Kernel *k, DLTensor **args, int n);

static int call_api(void *ctx, const Kernel *k, DLTensor **args, int n)
{
    (void)k;
    return tdsl_kernel_call(ctx, args, n);
}

typedef int (*Fn2)(const DLTensor *, DLTensor *);
typedef int (*Fn3)(const DLTensor *, DLTensor *, DLTensor *);
typedef int (*Fn3b)(const DLTensor *, const DLTensor *, DLTensor *);
typedef int (*Fn4)(const DLTensor *, const DLTensor *, const DLTensor *, DLTensor *);
typedef int (*Fn5)(const DLTensor *, const DLTensor *, const DLTensor *, DLTensor *, DLTensor *);

/* ctx: a dlopen handle; calls the typed function named after the kernel. */
static int call_typed(void *ctx, const Kernel *k, DLTensor **a, int n)
{
    void *sym = dlsym(ctx, k->name);
    cr_assert(sym, "no typed symbol %s", k->name);
    switch (k->nins * 10 + k->nouts) {
    case 11: return ((Fn2)sym)(a[0], a[1]);
    case 12: return ((Fn3)sym)(a[0], a[1], a[2]);
    case 21: return ((Fn3b)sym)(a[0], a[1], a[2]);
    case 31: return ((Fn4)sym)(a[0], a[1], a[2], a[3]);
    case 32: return ((Fn5)sym)(a[0], a[1], a[2], a[3], a[4]);
    default: cr_assert_fail("no typed call for %d args", n); return -1;
    }
}

static bool close_enough(DType dt, double got, double want)
{
    double tol = dt == DT_F16 || dt == DT_BF16 ? 1e-2 : 1e-5;
    return fabs(got - want) <= tol * (1 + fabs(want));
}

/* Runs kernel `name` on random inputs of the given shapes through call and through the
 * interpreter; returns false (with a message) on a mismatch. */
static bool run_vs_interp(const Module *ir, const char *name, const int64_t *const *in_shapes, unsigned seed,
                          CallFn call, void *ctx, char *msg, size_t cap)
{
    const Kernel *k = find_kernel(ir, name);
    int64_t sizes[16];
    int ranks[16];
    for (int s = 0; s < k->nsizes; s++) sizes[s] = -1;
    for (int i = 0; i < k->nins; i++) ranks[i] = k->ins[i]->rank;
    StrBuf err = {0};
    if (!ir_bind_sizes(k, in_shapes, ranks, sizes, &err)) {
        snprintf(msg, cap, "bind: %s", sb_cstr(&err));
        sb_free(&err);
        return false;
    }
    T *ts[16];
    DLTensor *args[16];
    TensorData tin[16], tout[16];
    int n = k->nins + k->nouts;
    for (int i = 0; i < n; i++) {
        const Tensor *p = i < k->nins ? k->ins[i] : k->outs[i - k->nins];
        int64_t shape[IR_MAX_RANK];
        for (int a = 0; a < p->rank; a++) {
            if (i < k->nins) shape[a] = in_shapes[i][a];
            else cr_assert(ir_eval_size(k, p->shape[a], sizes, &shape[a]));
        }
        ts[i] = t_new(p->dtype, p->rank, shape);
        if (i < k->nins) t_random(ts[i], &seed);
        else t_fill_sentinel(ts[i]);
        args[i] = &ts[i]->dl;
        TensorData *td = i < k->nins ? &tin[i] : &tout[i - k->nins];
        *td = (TensorData){.dtype = p->dtype, .rank = p->rank, .nbytes = ts[i]->nbytes};
        memcpy(td->shape, shape, sizeof shape);
        td->data = calloc(1, ts[i]->nbytes + 1);
        if (i < k->nins) memcpy(td->data, ts[i]->data, ts[i]->nbytes);
    }
    bool ok = ir_interp_run(k, sizes, tin, tout, &err);
    if (!ok) snprintf(msg, cap, "interp: %s", sb_cstr(&err));
    int rc = ok ? call(ctx, k, args, n) : 0;
    if (ok && rc != 0) {
        snprintf(msg, cap, "call returned %d: %s", rc, tdsl_last_error());
        ok = false;
    }
    for (int o = 0; o < k->nouts && ok; o++) {
        const T *t = ts[k->nins + o];
        for (size_t e = 0; e < t->n && ok; e++) {
            if (dtype_is_float(t->dtype)) {
                double got = dtype_load_f(t->dtype, t->data, e), want = dtype_load_f(t->dtype, tout[o].data, e);
                if (!close_enough(t->dtype, got, want)) {
                    snprintf(msg, cap, "%s: %s[%zu] = %.9g, interpreter %.9g", name, k->outs[o]->name, e, got, want);
                    ok = false;
                }
            } else {
                int64_t got = dtype_load_i(t->dtype, t->data, e), want = dtype_load_i(t->dtype, tout[o].data, e);
                if (got != want) {
                    snprintf(msg, cap, "%s: %s[%zu] = %lld, interpreter %lld", name, k->outs[o]->name, e,
                             (long long)got, (long long)want);
                    ok = false;
                }
            }
        }
    }
    for (int i = 0; i < n; i++) t_free(ts[i]);
    for (int i = 0; i < k->nins; i++) free(tin[i].data);
    for (int o = 0; o < k->nouts; o++) free(tout[o].data);
    sb_free(&err);
    return ok;
}

/* Every kernel of PROG at a few shapes, including 1 and odd sizes. */
static void check_prog(const Module *ir, CallFn call, void *(*ctx_of)(void *, const char *), void *base)
{
    static const int64_t shapes[][4] = {{1, 1, 1}, {3, 7, 5}, {17, 33, 9}, {64, 128, 2}};
    for (int s = 0; s < TD_COUNTOF(shapes); s++) {
        int64_t a = shapes[s][0], b = shapes[s][1], c = shapes[s][2];
        char msg[512] = "";
        const int64_t *axpy[] = {NULL, (int64_t[]){b}, (int64_t[]){b}};
        const int64_t *softmax[] = {(int64_t[]){a, b}};
        const int64_t *dot[] = {(int64_t[]){a, c}, (int64_t[]){b, c}};
        const int64_t *pairs[] = {(int64_t[]){2 * b}};
        const int64_t *nib[] = {(int64_t[]){b}, (int64_t[]){b}, (int64_t[]){b}};
        unsigned seed = 100u + (unsigned)s;
        cr_expect(run_vs_interp(ir, "axpy", axpy, seed, call, ctx_of(base, "axpy"), msg, sizeof msg), "%s", msg);
        cr_expect(run_vs_interp(ir, "softmax", softmax, seed, call, ctx_of(base, "softmax"), msg, sizeof msg), "%s", msg);
        cr_expect(run_vs_interp(ir, "dot", dot, seed, call, ctx_of(base, "dot"), msg, sizeof msg), "%s", msg);
        cr_expect(run_vs_interp(ir, "pairs", pairs, seed, call, ctx_of(base, "pairs"), msg, sizeof msg), "%s", msg);
        cr_expect(run_vs_interp(ir, "nib", nib, seed, call, ctx_of(base, "nib"), msg, sizeof msg), "%s", msg);
    }
}

static void *kernel_of(void *m, const char *name)
{
    tdsl_kernel *k = tdsl_kernel_get(m, name);
    cr_assert(k, "%s", tdsl_last_error());
    return k;
}

static void *handle_of(void *h, const char *name)
{
    (void)name;
    return h;
}

static tdsl_module *jit(void)
{
    tdsl_module *m = NULL;
    int rc = tdsl_compile(PROG, "prog.tdsl", NULL, &m);
    cr_assert_eq(rc, TDSL_OK, "%s", tdsl_last_error());
    cr_assert(m);
    return m;
}

/* ---- JIT ------------------------------------------------------------------------------------ */

Test(jit, matches_interpreter)
{
    tdsl_module *m = jit();
    Module *ir = compile_ir(PROG);
    check_prog(ir, call_api, kernel_of, m);
    ir_module_free(ir);
    tdsl_module_free(m);
}

Test(jit, describes_kernels)
{
    tdsl_module *m = jit();
    tdsl_kernel *k = tdsl_kernel_get(m, "softmax");
    cr_assert(k);
    cr_assert_str_eq(tdsl_kernel_signature(k), "softmax(x: f32[R, N]) -> (y: f32[R, N])");
    cr_assert_eq(tdsl_kernel_num_inputs(k), 1);
    cr_assert_eq(tdsl_kernel_num_outputs(k), 1);
    k = tdsl_kernel_get(m, "pairs");
    cr_assert_str_eq(tdsl_kernel_signature(k), "pairs(x: f32[2 * N]) -> (y: f32[N], c: i32[N + 1])");
    cr_assert_eq(tdsl_kernel_num_outputs(k), 2);
    cr_assert_str_eq(tdsl_kernel_signature(tdsl_kernel_get(m, "nib")),
                     "nib(x: i4[N], b: bool[N], h: bf16[N]) -> (y: i4[N], g: f16[N])");
    cr_assert_eq(tdsl_kernel_num_inputs(NULL), -1);
    cr_assert_eq(tdsl_kernel_num_outputs(NULL), -1);
    cr_assert_str_eq(tdsl_kernel_signature(NULL), "");
    tdsl_module_free(m);
}

Test(jit, options_and_imports)
{
    /* the stdlib import, an explicit opt level and CPU */
    const char *src = "import \"nn\"\nkernel sm(x: f32[R, N]) -> y: f32[R, N] { y = softmax(x) }\n";
    tdsl_options o = {.cpu = NULL, .features = NULL, .opt_level = 0};
    tdsl_module *m = NULL;
    cr_assert_eq(tdsl_compile(src, NULL, &o, &m), TDSL_OK, "%s", tdsl_last_error());
    tdsl_kernel *k = tdsl_kernel_get(m, "sm");
    T *x = t_new2(DT_F32, 2, 3), *y = t_new2(DT_F32, 2, 3);
    for (int i = 0; i < 6; i++) ((float *)x->data)[i] = (float)i;
    DLTensor *args[] = {&x->dl, &y->dl};
    cr_assert_eq(tdsl_kernel_call(k, args, 2), TDSL_OK, "%s", tdsl_last_error());
    float *yy = y->data;
    cr_assert_float_eq(yy[0] + yy[1] + yy[2], 1.0f, 1e-5);
    cr_assert_float_eq(yy[3] + yy[4] + yy[5], 1.0f, 1e-5);
    t_free(x);
    t_free(y);
    tdsl_module_free(m);
    /* bad options */
    o.opt_level = 7;
    cr_assert_eq(tdsl_compile(src, NULL, &o, &m), TDSL_ERR_ARG);
    cr_assert(strstr(tdsl_last_error(), "opt_level"));
    o = (tdsl_options){.opt_level = -1, .ninclude = 1, .include_dirs = NULL};
    cr_assert_eq(tdsl_compile(src, NULL, &o, &m), TDSL_ERR_ARG);
    cr_assert_null(m);
}

static bool has_location(const char *s, const char *file)
{
    /* "file:LINE:COL: error:" somewhere in s */
    for (const char *p = strstr(s, file); p; p = strstr(p + 1, file)) {
        const char *q = p + strlen(file);
        int line, col, n = 0;
        if (sscanf(q, ":%d:%d: error:%n", &line, &col, &n) == 2 && n > 0) return true;
    }
    return false;
}

Test(jit, compile_errors)
{
    tdsl_module *m = (tdsl_module *)1;
    int rc = tdsl_compile("kernel f(x: f32[N]) -> y: f32[N] {\n    y[i] = x[i] +\n}\n", "bad.tdsl", NULL, &m);
    cr_assert_eq(rc, TDSL_ERR_COMPILE);
    cr_assert_null(m);
    cr_assert(has_location(tdsl_last_error(), "bad.tdsl"), "%s", tdsl_last_error());
    /* a semantic error, with the source line and a caret */
    rc = tdsl_compile("kernel f(x: f32[N]) -> y: f32[N] {\n    y[i] = x[i + 1]\n}\n", "oob.tdsl", NULL, &m);
    cr_assert_eq(rc, TDSL_ERR_COMPILE);
    cr_assert(has_location(tdsl_last_error(), "oob.tdsl"), "%s", tdsl_last_error());
    cr_assert(strstr(tdsl_last_error(), "^"), "%s", tdsl_last_error());
    /* NUL-free garbage */
    rc = tdsl_compile("\x01\x02 kernel", "junk.tdsl", NULL, &m);
    cr_assert_eq(rc, TDSL_ERR_COMPILE);
    /* no kernels at all is a valid, empty module */
    cr_assert_eq(tdsl_compile("const A = 1\n", "empty.tdsl", NULL, &m), TDSL_OK, "%s", tdsl_last_error());
    cr_assert_null(tdsl_kernel_get(m, "f"));
    cr_assert(strstr(tdsl_last_error(), "no kernels"), "%s", tdsl_last_error());
    tdsl_module_free(m);
}

Test(jit, api_misuse)
{
    tdsl_module *m = NULL;
    cr_assert_eq(tdsl_compile(NULL, "x", NULL, &m), TDSL_ERR_ARG);
    cr_assert_str_eq(tdsl_last_error(), "tdsl_compile: the source is NULL");
    cr_assert_eq(tdsl_compile(PROG, "x", NULL, NULL), TDSL_ERR_ARG);
    cr_assert_null(tdsl_kernel_get(NULL, "softmax"));
    cr_assert_str_eq(tdsl_last_error(), "tdsl_kernel_get: the module is NULL");
    m = jit();
    cr_assert_null(tdsl_kernel_get(m, NULL));
    cr_assert_str_eq(tdsl_last_error(), "tdsl_kernel_get: the kernel name is NULL");
    cr_assert_null(tdsl_kernel_get(m, "softmx"));
    cr_assert(strstr(tdsl_last_error(), "no kernel named 'softmx'"), "%s", tdsl_last_error());
    cr_assert(strstr(tdsl_last_error(), "softmax"), "lists the kernels: %s", tdsl_last_error());
    cr_assert_eq(tdsl_kernel_call(NULL, NULL, 0), TDSL_ERR_ARG);
    cr_assert_str_eq(tdsl_last_error(), "tdsl_kernel_call: the kernel is NULL");
    tdsl_module_free(m);
    cr_assert_eq(tdsl_load(NULL, &m), TDSL_ERR_ARG);
    cr_assert_null(m);
    tdsl_module_free(NULL);
}

/* ---- argument checks: each misuse returns its code and message and writes nothing ---------------- */

typedef struct Fix {
    tdsl_module *m;
    tdsl_kernel *k;
    T           *x, *y;
    DLTensor    *args[3];
} Fix;

static Fix softmax_fix(void)
{
    Fix f = {.m = jit()};
    f.k = tdsl_kernel_get(f.m, "softmax");
    f.x = t_new2(DT_F32, 3, 5);
    f.y = t_new2(DT_F32, 3, 5);
    unsigned seed = 7;
    t_random(f.x, &seed);
    t_fill_sentinel(f.y);
    f.args[0] = &f.x->dl;
    f.args[1] = &f.y->dl;
    return f;
}

static void fix_free(Fix *f)
{
    t_free(f->x);
    t_free(f->y);
    tdsl_module_free(f->m);
}

static void expect_refused(Fix *f, int nargs, const char *msg)
{
    int rc = tdsl_kernel_call(f->k, f->args, nargs);
    cr_expect_eq(rc, TDSL_ERR_ARG, "expected TDSL_ERR_ARG for '%s', got %d", msg, rc);
    cr_expect(strstr(tdsl_last_error(), msg) != NULL, "message '%s' lacks '%s'", tdsl_last_error(), msg);
    cr_expect(t_is_sentinel(f->y), "the output was written despite '%s'", msg);
}

Test(check, wrong_dtype)
{
    Fix f = softmax_fix();
    f.x->dl.dtype = (DLDataType){kDLFloat, 64, 1};
    expect_refused(&f, 2, "softmax: x has dtype f64 but the kernel expects f32");
    f.x->dl.dtype = (DLDataType){kDLBfloat, 16, 1};
    expect_refused(&f, 2, "softmax: x has dtype bf16 but the kernel expects f32");
    f.x->dl.dtype = (DLDataType){kDLFloat, 32, 4};
    expect_refused(&f, 2, "softmax: x has dtype f32x4 but the kernel expects f32");
    f.x->dl.dtype = (DLDataType){kDLComplex, 64, 1};
    expect_refused(&f, 2, "softmax: x has dtype complex64 but the kernel expects f32");
    f.x->dl.dtype = (DLDataType){kDLFloat, 32, 1};
    f.y->dl.dtype = (DLDataType){kDLInt, 32, 1};
    expect_refused(&f, 2, "softmax: y has dtype i32 but the kernel expects f32");
    fix_free(&f);
}

Test(check, wrong_rank)
{
    Fix f = softmax_fix();
    int64_t shape3[] = {3, 5, 1};
    f.x->dl.ndim = 3;
    f.x->dl.shape = shape3;
    expect_refused(&f, 2, "softmax: x has rank 3 but the kernel expects rank 2 (f32[R, N])");
    f.x->dl.ndim = 0;
    expect_refused(&f, 2, "softmax: x has rank 0 but the kernel expects rank 2 (f32[R, N])");
    fix_free(&f);
}

Test(check, size_names)
{
    Fix f = softmax_fix();
    f.y->shape[1] = 6;
    expect_refused(&f, 2, "softmax: y has N = 6 but x has N = 5");
    f.y->shape[1] = 5;
    f.y->shape[0] = 2;
    expect_refused(&f, 2, "softmax: y has R = 2 but x has R = 3");
    f.x->shape[0] = 0;
    f.y->shape[0] = 0;
    expect_refused(&f, 2, "softmax: x has R = 0 but sizes must be at least 1");
    f.x->shape[0] = -3;
    expect_refused(&f, 2, "softmax: x has size -3 on axis 0");
    fix_free(&f);

    /* the brief's example, and compound dimensions */
    tdsl_module *m = jit();
    T *q = t_new2(DT_F32, 4, 64), *k = t_new2(DT_F32, 5, 32), *s = t_new2(DT_F32, 4, 5);
    t_fill_sentinel(s);
    DLTensor *args[] = {&q->dl, &k->dl, &s->dl};
    cr_assert_eq(tdsl_kernel_call(tdsl_kernel_get(m, "dot"), args, 3), TDSL_ERR_ARG);
    cr_assert_str_eq(tdsl_last_error(), "dot: k has D = 32 but q has D = 64");
    cr_assert(t_is_sentinel(s));
    t_free(q);
    t_free(k);
    t_free(s);

    T *x = t_new(DT_F32, 1, (int64_t[]){7}), *y = t_new(DT_F32, 1, (int64_t[]){3}), *c = t_new(DT_I32, 1, (int64_t[]){4});
    t_fill_sentinel(y);
    t_fill_sentinel(c);
    DLTensor *pargs[] = {&x->dl, &y->dl, &c->dl};
    tdsl_kernel *pairs = tdsl_kernel_get(m, "pairs");
    cr_assert_eq(tdsl_kernel_call(pairs, pargs, 3), TDSL_ERR_ARG);  /* 7 is not 2 * N: y binds N */
    cr_assert_str_eq(tdsl_last_error(), "pairs: x has 2 * N = 7 but y has N = 3, so 2 * N = 6");
    x->shape[0] = 6;
    c->shape[0] = 3;
    cr_assert_eq(tdsl_kernel_call(pairs, pargs, 3), TDSL_ERR_ARG);
    cr_assert_str_eq(tdsl_last_error(), "pairs: c has N + 1 = 3 but x has 2 * N = 6, so N + 1 = 4");
    cr_assert(t_is_sentinel(y) && t_is_sentinel(c));
    c->shape[0] = 4;
    cr_assert_eq(tdsl_kernel_call(pairs, pargs, 3), TDSL_OK, "%s", tdsl_last_error());
    cr_assert_eq(((int32_t *)c->data)[3], 3);
    t_free(x);
    t_free(y);
    t_free(c);
    tdsl_module_free(m);
}

Test(check, null_tensor_and_data)
{
    Fix f = softmax_fix();
    f.args[1] = NULL;
    expect_refused(&f, 2, "softmax: argument 2 (y) is NULL");
    f.args[1] = &f.y->dl;
    f.args[0] = NULL;
    expect_refused(&f, 2, "softmax: argument 1 (x) is NULL");
    f.args[0] = &f.x->dl;
    f.x->dl.data = NULL;
    expect_refused(&f, 2, "softmax: x has a NULL data pointer");
    f.x->dl.data = f.x->data;
    f.x->dl.shape = NULL;
    expect_refused(&f, 2, "softmax: x has a NULL shape");
    f.x->dl.shape = f.x->shape;
    cr_assert_eq(tdsl_kernel_call(f.k, NULL, 2), TDSL_ERR_ARG);
    cr_assert_str_eq(tdsl_last_error(), "softmax: the argument array is NULL");
    fix_free(&f);
}

Test(check, strides)
{
    Fix f = softmax_fix();
    int64_t strides[2] = {1, 3};  /* column-major */
    f.x->dl.strides = strides;
    expect_refused(&f, 2, "softmax: x has strides [1, 3] but the kernel needs row-major contiguous strides [5, 1]");
    strides[0] = 5;
    strides[1] = 1;  /* explicit row-major strides are fine */
    cr_assert_eq(tdsl_kernel_call(f.k, f.args, 2), TDSL_OK, "%s", tdsl_last_error());
    /* a size-1 axis may have any stride */
    t_fill_sentinel(f.y);
    f.x->shape[0] = 1;
    f.y->shape[0] = 1;
    strides[0] = 12345;
    cr_assert_eq(tdsl_kernel_call(f.k, f.args, 2), TDSL_OK, "%s", tdsl_last_error());
    strides[1] = 2;
    t_fill_sentinel(f.y);
    expect_refused(&f, 2, "softmax: x has strides [12345, 2]");
    fix_free(&f);
}

Test(check, device_and_alignment)
{
    Fix f = softmax_fix();
    f.x->dl.device = (DLDevice){kDLCUDA, 1};
    expect_refused(&f, 2, "softmax: x is on device cuda:1 but the kernel runs on the CPU (kDLCPU)");
    f.x->dl.device = (DLDevice){kDLCPU, 0};
    f.y->dl.device = (DLDevice){kDLROCM, 0};
    expect_refused(&f, 2, "softmax: y is on device rocm:0");
    f.y->dl.device = (DLDevice){(DLDeviceType)99, 0};
    expect_refused(&f, 2, "softmax: y is on device type 99:0");
    f.y->dl.device = (DLDevice){kDLCPU, 0};
    f.x->dl.byte_offset = 2;
    expect_refused(&f, 2, "softmax: x is not 4-byte aligned");
    fix_free(&f);
}

Test(check, byte_offset)
{
    /* data + byte_offset is the base, for inputs and outputs */
    tdsl_module *m = jit();
    tdsl_kernel *k = tdsl_kernel_get(m, "axpy");
    float a = 2, xs[6] = {9, 9, 1, 2, 3, 9}, ys[3] = {10, 20, 30}, zs[5] = {-1, -1, -1, -1, -1};
    int64_t n3[] = {3};
    DLTensor ta = {.data = &a, .device = {kDLCPU, 0}, .ndim = 0, .dtype = {kDLFloat, 32, 1}};
    DLTensor tx = {.data = xs, .device = {kDLCPU, 0}, .ndim = 1, .dtype = {kDLFloat, 32, 1}, .shape = n3,
                   .byte_offset = 2 * sizeof(float)};
    DLTensor ty = {.data = ys, .device = {kDLCPU, 0}, .ndim = 1, .dtype = {kDLFloat, 32, 1}, .shape = n3};
    DLTensor tz = {.data = zs, .device = {kDLCPU, 0}, .ndim = 1, .dtype = {kDLFloat, 32, 1}, .shape = n3,
                   .byte_offset = sizeof(float)};
    DLTensor *args[] = {&ta, &tx, &ty, &tz};
    cr_assert_eq(tdsl_kernel_call(k, args, 4), TDSL_OK, "%s", tdsl_last_error());
    cr_assert_float_eq(zs[0], -1, 0);
    cr_assert_float_eq(zs[1], 12, 1e-6);
    cr_assert_float_eq(zs[2], 24, 1e-6);
    cr_assert_float_eq(zs[3], 36, 1e-6);
    cr_assert_float_eq(zs[4], -1, 0);
    tdsl_module_free(m);
}

Test(check, aliasing)
{
    Fix f = softmax_fix();
    f.y->dl.data = f.x->data;
    expect_refused(&f, 2, "softmax: output y overlaps input x");
    /* a partial overlap: y starts at x's last element */
    f.y->dl.data = (char *)f.x->data + (f.x->nbytes - 4);
    expect_refused(&f, 2, "softmax: output y overlaps input x");
    /* adjacent is not overlapping */
    T *both = t_new2(DT_F32, 6, 5);
    memcpy(both->data, f.x->data, f.x->nbytes);
    f.x->dl.data = both->data;
    f.y->dl.data = (char *)both->data + f.x->nbytes;
    cr_assert_eq(tdsl_kernel_call(f.k, f.args, 2), TDSL_OK, "%s", tdsl_last_error());
    t_free(both);
    f.x->dl.data = f.x->data;
    f.y->dl.data = f.y->data;
    fix_free(&f);

    /* two outputs overlapping each other; inputs may overlap each other */
    tdsl_module *m = jit();
    T *x = t_new(DT_F32, 1, (int64_t[]){8}), *y = t_new(DT_F32, 1, (int64_t[]){4}), *c = t_new(DT_I32, 1, (int64_t[]){5});
    t_fill_sentinel(y);
    DLTensor cd = c->dl;
    cd.data = y->data;
    DLTensor *pargs[] = {&x->dl, &y->dl, &cd};
    cr_assert_eq(tdsl_kernel_call(tdsl_kernel_get(m, "pairs"), pargs, 3), TDSL_ERR_ARG);
    cr_assert_str_eq(tdsl_last_error(), "pairs: output c overlaps output y");
    cr_assert(t_is_sentinel(y));
    T *in = t_new(DT_F32, 1, (int64_t[]){4}), *out = t_new(DT_F32, 1, (int64_t[]){4});
    float a = 1;
    DLTensor ta = {.data = &a, .device = {kDLCPU, 0}, .ndim = 0, .dtype = {kDLFloat, 32, 1}};
    DLTensor *aargs[] = {&ta, &in->dl, &in->dl, &out->dl};
    cr_assert_eq(tdsl_kernel_call(tdsl_kernel_get(m, "axpy"), aargs, 4), TDSL_OK, "%s", tdsl_last_error());
    t_free(x);
    t_free(y);
    t_free(c);
    t_free(in);
    t_free(out);
    tdsl_module_free(m);
}

Test(check, nargs)
{
    Fix f = softmax_fix();
    f.args[2] = &f.y->dl;
    expect_refused(&f, 3, "softmax: expected 2 arguments (1 input, then 1 output) but got 3");
    expect_refused(&f, 1, "softmax: expected 2 arguments (1 input, then 1 output) but got 1");
    expect_refused(&f, -1, "but got -1");
    fix_free(&f);
}

/* rt_call directly, with fake raw kernels: runtime failures and annotated parameters. */
static int32_t raw_oom(void *const *b, const int64_t *s)
{
    (void)b;
    (void)s;
    return -1;
}

static int32_t raw_fail(void *const *b, const int64_t *s)
{
    (void)b;
    (void)s;
    return 3;
}

static int32_t raw_never(void *const *b, const int64_t *s)
{
    (void)b;
    (void)s;
    cr_assert_fail("must not be called");
    return 0;
}

static int64_t seen_sizes[4];
static void *seen_buffers[4];
static int32_t raw_record(void *const *b, const int64_t *s)
{
    memcpy(seen_sizes, s, 3 * sizeof *s);
    memcpy(seen_buffers, b, 2 * sizeof *b);
    return 0;
}

Test(check, raw_results)
{
    char err[128];
    RtSig *s = parse("f(x: f32[A, B * 2, C + 1]) -> (y: u8[C])", err, sizeof err);
    cr_assert(s, "%s", err);
    T *x = t_new(DT_F32, 3, (int64_t[]){2, 6, 5}), *y = t_new(DT_U8, 1, (int64_t[]){4});
    const DLTensor *args[] = {&x->dl, &y->dl};
    cr_assert_eq(rt_call(s, raw_record, args, 2), TDSL_OK, "%s", tdsl_last_error());
    cr_assert_eq(seen_sizes[0], 2);
    cr_assert_eq(seen_sizes[1], 3);
    cr_assert_eq(seen_sizes[2], 4);
    cr_assert_eq(seen_buffers[0], x->data);
    cr_assert_eq(seen_buffers[1], y->data);
    cr_assert_eq(rt_call(s, raw_oom, args, 2), TDSL_ERR_RUNTIME);
    cr_assert_str_eq(tdsl_last_error(), "f: out of memory");
    cr_assert_eq(rt_call(s, raw_fail, args, 2), TDSL_ERR_RUNTIME);
    cr_assert_str_eq(tdsl_last_error(), "f: the kernel failed with code 3");
    x->shape[1] = 7;  /* not 2 * B */
    cr_assert_eq(rt_call(s, raw_never, args, 2), TDSL_ERR_ARG);
    cr_assert_str_eq(tdsl_last_error(), "f: no argument determines the size B");
    x->shape[1] = 6;
    x->shape[2] = 1;  /* C + 1 = 1 gives C = 0 */
    cr_assert_eq(rt_call(s, raw_never, args, 2), TDSL_ERR_ARG);
    cr_assert_str_eq(tdsl_last_error(), "f: x has C + 1 = 1, which gives C = 0, but sizes must be at least 1");
    rt_sig_free(s);

    s = parse("q(w: f32[N, K] @quant(i8, per_channel), x: f32[K]) -> (y: f32[N])", err, sizeof err);
    cr_assert(s, "%s", err);
    cr_assert_eq(rt_call(s, raw_never, args, 2), TDSL_ERR_ARG);
    cr_assert_str_eq(tdsl_last_error(), "q: parameter w is stored as @quant(i8, per_channel); calling kernels "
                                        "with storage annotations is not supported yet");
    rt_sig_free(s);
    t_free(x);
    t_free(y);
}

Test(check, many_params)
{
    /* more parameters and sizes than the stack work arrays hold */
    char text[8192];
    size_t len = (size_t)snprintf(text, sizeof text, "wide(");
    for (int i = 0; i < 40; i++) len += (size_t)snprintf(text + len, sizeof text - len, "%sx%d: f32[S%d]", i ? ", " : "", i, i);
    snprintf(text + len, sizeof text - len, ") -> (y: f32[S39])");
    char err[128];
    RtSig *s = parse(text, err, sizeof err);
    cr_assert(s, "%s", err);
    T *ts[41];
    const DLTensor *args[41];
    for (int i = 0; i < 41; i++) {
        ts[i] = t_new(DT_F32, 1, (int64_t[]){i < 40 ? i + 1 : 40});
        args[i] = &ts[i]->dl;
    }
    cr_assert_eq(rt_call(s, raw_oom, args, 41), TDSL_ERR_RUNTIME, "%s", tdsl_last_error());
    ts[40]->shape[0] = 3;
    cr_assert_eq(rt_call(s, raw_never, args, 41), TDSL_ERR_ARG);
    cr_assert_str_eq(tdsl_last_error(), "wide: y has S39 = 3 but x39 has S39 = 40");
    for (int i = 0; i < 41; i++) t_free(ts[i]);
    rt_sig_free(s);
}

/* ---- AOT ------------------------------------------------------------------------------------- */

typedef struct Aot {
    char dir[256];
    char so[300];
    char h[300];
} Aot;

static bool aot_build(const char *src, Aot *a, StrBuf *err)
{
    snprintf(a->dir, sizeof a->dir, "%s/tdsl-test-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    cr_assert(mkdtemp(a->dir));
    snprintf(a->so, sizeof a->so, "%s/model.so", a->dir);
    snprintf(a->h, sizeof a->h, "%s/model.h", a->dir);
    Module *ir = compile_ir(src);
    LoopModule *lm = ir_lower_module(ir, NULL);
    CpuOptions co = {NULL, NULL, 2};
    bool ok = cpu_build_shared(lm, &co, a->so, err) && cpu_write_header(ir, a->h, err);
    ir_module_free(ir);
    return ok;
}

static void aot_clean(Aot *a)
{
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", a->dir);
    cr_expect_eq(system(cmd), 0);
}

static char *slurp(const char *cmd)
{
    FILE *p = popen(cmd, "r");
    cr_assert(p, "%s", cmd);
    size_t cap = 1 << 16, len = 0;
    char *buf = calloc(1, cap);
    size_t n;
    while ((n = fread(buf + len, 1, cap - 1 - len, p)) > 0) len += n;
    pclose(p);
    return buf;
}

Test(aot, build_load_and_call)
{
    Aot a;
    StrBuf err = {0};
    cr_assert(aot_build(PROG, &a, &err), "%s", sb_cstr(&err));
    Module *ir = compile_ir(PROG);

    /* through the C API */
    tdsl_module *m = NULL;
    cr_assert_eq(tdsl_load(a.so, &m), TDSL_OK, "%s", tdsl_last_error());
    cr_assert_str_eq(tdsl_kernel_signature(tdsl_kernel_get(m, "pairs")),
                     "pairs(x: f32[2 * N]) -> (y: f32[N], c: i32[N + 1])");
    check_prog(ir, call_api, kernel_of, m);

    /* the checks hold for loaded modules too */
    T *x = t_new2(DT_F64, 2, 3), *y = t_new2(DT_F32, 2, 3);
    t_fill_sentinel(y);
    DLTensor *args[] = {&x->dl, &y->dl};
    cr_assert_eq(tdsl_kernel_call(tdsl_kernel_get(m, "softmax"), args, 2), TDSL_ERR_ARG);
    cr_assert_str_eq(tdsl_last_error(), "softmax: x has dtype f64 but the kernel expects f32");

    /* through the typed symbols, with the library's own last error */
    void *h = dlopen(a.so, RTLD_NOW | RTLD_LOCAL);
    cr_assert(h, "%s", dlerror());
    check_prog(ir, call_typed, handle_of, h);
    Fn2 softmax = (Fn2)dlsym(h, "softmax");
    const char *(*so_last_error)(void) = (const char *(*)(void))dlsym(h, "tdsl_last_error");
    cr_assert(softmax && so_last_error);
    cr_assert_eq(softmax(&x->dl, &y->dl), TDSL_ERR_ARG);
    cr_assert_str_eq(so_last_error(), "softmax: x has dtype f64 but the kernel expects f32");
    cr_assert_eq(softmax(NULL, &y->dl), TDSL_ERR_ARG);
    cr_assert_str_eq(so_last_error(), "softmax: argument 1 (x) is NULL");
    cr_assert(t_is_sentinel(y));
    /* the runtime inside the .so keeps its symbols to itself */
    cr_assert_null(dlsym(h, "rt_call"));
    cr_assert_null(dlsym(h, "rt_sig_parse"));
    dlclose(h);

    /* two loads of the same file are independent modules */
    tdsl_module *m2 = NULL;
    cr_assert_eq(tdsl_load(a.so, &m2), TDSL_OK, "%s", tdsl_last_error());
    tdsl_module_free(m);
    char msg[256];
    const int64_t *sm[] = {(int64_t[]){4, 9}};
    cr_assert(run_vs_interp(ir, "softmax", sm, 1, call_api, kernel_of(m2, "softmax"), msg, sizeof msg), "%s", msg);
    tdsl_module_free(m2);

    t_free(x);
    t_free(y);
    ir_module_free(ir);
    sb_free(&err);
    aot_clean(&a);
}

Test(aot, header_and_c_host)
{
    Aot a;
    StrBuf err = {0};
    cr_assert(aot_build(PROG, &a, &err), "%s", sb_cstr(&err));
    size_t len;
    const char *why;
    char *hdr = read_file_all(a.h, &len, &why);
    cr_assert(hdr, "%s", why);
    cr_assert(strstr(hdr, "#ifndef TDSL_MODEL_H\n#define TDSL_MODEL_H\n"), "%s", hdr);
    cr_assert(strstr(hdr, "#include <dlpack/dlpack.h>"), "%s", hdr);
    cr_assert(strstr(hdr, "/* softmax(x: f32[R, N]) -> (y: f32[R, N]) */\nint softmax(const DLTensor *x, DLTensor *y);"),
              "%s", hdr);
    cr_assert(strstr(hdr, "int axpy(const DLTensor *a, const DLTensor *x, const DLTensor *y, DLTensor *z);"), "%s", hdr);
    cr_assert(strstr(hdr, "int pairs(const DLTensor *x, DLTensor *y, DLTensor *c);"), "%s", hdr);
    free(hdr);

    /* a C host compiled against the header and linked with the .so only */
    char host[400], exe[400], cmd[2048];
    snprintf(host, sizeof host, "%s/host.c", a.dir);
    snprintf(exe, sizeof exe, "%s/host", a.dir);
    FILE *f = fopen(host, "w");
    cr_assert(f);
    fputs("#include <stdio.h>\n#include <string.h>\n#include \"model.h\"\n"
          "int main(void) {\n"
          "  float x[6] = {1, 2, 3, 4, 5, 6}, y[6];\n"
          "  int64_t shape[2] = {2, 3};\n"
          "  DLTensor tx = {x, {kDLCPU, 0}, 2, {kDLFloat, 32, 1}, shape, NULL, 0};\n"
          "  DLTensor ty = {y, {kDLCPU, 0}, 2, {kDLFloat, 32, 1}, shape, NULL, 0};\n"
          "  if (softmax(&tx, &ty) != 0) { printf(\"fail: %s\\n\", tdsl_last_error()); return 1; }\n"
          "  float s = y[0] + y[1] + y[2];\n"
          "  if (s < 0.9999f || s > 1.0001f) { printf(\"bad sum %g\\n\", s); return 1; }\n"
          "  tx.dtype.bits = 64;\n"
          "  if (softmax(&tx, &ty) != -1) return 1;\n"
          "  printf(\"%s\\n\", tdsl_last_error());\n"
          "  return 0;\n}\n",
          f);
    fclose(f);
    snprintf(cmd, sizeof cmd, "cd '%s' && cc -std=c17 -Wall -Werror -o host host.c ./model.so -Wl,-rpath,'%s' 2>&1 && ./host",
             a.dir, a.dir);
    char *out = slurp(cmd);
    cr_assert(strstr(out, "softmax: x has dtype f64 but the kernel expects f32"), "host output: %s", out);
    free(out);

    /* what the .so needs and exports */
    snprintf(cmd, sizeof cmd, "readelf -d '%s' | grep NEEDED", a.so);
    out = slurp(cmd);
    cr_assert(strstr(out, "libc.so"), "%s", out);
    cr_assert(strstr(out, "[libgomp.so.1]") || strstr(out, "[libomp.so.5]"), "parallel loops need OpenMP: %s", out);
    for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n"))
        cr_expect(strstr(line, "[libc.so.6]") || strstr(line, "[libm.so.6]") || strstr(line, "[ld-linux") ||
                  strstr(line, "[libgomp.so.1]") || strstr(line, "[libomp.so.5]"),
                  "unexpected dependency: %s", line);
    free(out);
    snprintf(cmd, sizeof cmd, "printf ' '; nm -D --defined-only '%s' | awk '{print $3}' | sort | tr '\\n' ' '", a.so);
    out = slurp(cmd);
    cr_assert(strstr(out, " softmax "), "%s", out);
    cr_assert(strstr(out, "tdsl_manifest "), "%s", out);
    cr_assert(strstr(out, "tdsl_raw_softmax "), "%s", out);
    cr_assert(strstr(out, "tdsl_last_error "), "%s", out);
    cr_assert_null(strstr(out, "rt_"), "%s", out);
    cr_assert_null(strstr(out, "tdsl_parallel_for"), "%s", out);
    free(out);
    sb_free(&err);
    aot_clean(&a);
}

Test(aot, failures_leave_nothing)
{
    Aot a;
    StrBuf err = {0};
    cr_assert(aot_build(PROG, &a, &err), "%s", sb_cstr(&err));
    Module *ir = compile_ir(PROG);
    LoopModule *lm = ir_lower_module(ir, NULL);
    CpuOptions co = {NULL, NULL, 2};
    struct stat st;
    cr_assert_eq(stat(a.so, &st), 0);

    /* the C compiler fails: no library, not even the old one, and no temporaries */
    setenv("TDSL_CC", "false", 1);
    sb_clear(&err);
    cr_assert(!cpu_build_shared(lm, &co, a.so, &err));
    cr_assert(strstr(sb_cstr(&err), "linking the shared library failed"), "%s", sb_cstr(&err));
    cr_assert_neq(stat(a.so, &st), 0);
    setenv("TDSL_CC", "/nonexistent/cc", 1);
    sb_clear(&err);
    cr_assert(!cpu_build_shared(lm, &co, a.so, &err));
    cr_assert(strstr(sb_cstr(&err), "cannot run the C compiler"), "%s", sb_cstr(&err));
    unsetenv("TDSL_CC");
    setenv("TDSL_RT_LIB", "/nonexistent/libtdsl_rt.a", 1);
    sb_clear(&err);
    cr_assert(!cpu_build_shared(lm, &co, a.so, &err));
    cr_assert(strstr(sb_cstr(&err), "runtime library"), "%s", sb_cstr(&err));
    unsetenv("TDSL_RT_LIB");
    char cmd[400];
    snprintf(cmd, sizeof cmd, "ls -A '%s' | grep -v '^model.h$' | wc -l", a.dir);
    char *out = slurp(cmd);
    cr_assert_eq(atoi(out), 0, "left behind in %s: %s", a.dir, out);
    free(out);

    /* an unwritable destination */
    sb_clear(&err);
    cr_assert(!cpu_build_shared(lm, &co, "/nonexistent/dir/x.so", &err));
    cr_assert(strstr(sb_cstr(&err), "/nonexistent/dir/x.so"), "%s", sb_cstr(&err));
    ir_module_free(ir);

    /* a kernel name C reserves */
    ir = compile_ir("kernel int(x: f32[N]) -> y: f32[N] { y[i] = x[i] }\n");
    lm = ir_lower_module(ir, NULL);
    sb_clear(&err);
    cr_assert(!cpu_build_shared(lm, &co, a.so, &err));
    cr_assert(strstr(sb_cstr(&err), "kernel 'int' cannot be exported"), "%s", sb_cstr(&err));
    ir_module_free(ir);
    sb_free(&err);
    aot_clean(&a);
}

Test(aot, load_errors)
{
    tdsl_module *m = (tdsl_module *)1;
    cr_assert_eq(tdsl_load("/nonexistent/model.so", &m), TDSL_ERR_LOAD);
    cr_assert_null(m);
    cr_assert_str_eq(tdsl_last_error(), "tdsl_load: cannot open '/nonexistent/model.so': No such file or directory");
    cr_assert_eq(tdsl_load("/tmp", &m), TDSL_ERR_LOAD);
    cr_assert(strstr(tdsl_last_error(), "not a regular file"), "%s", tdsl_last_error());

    char dir[256], path[300], cmd[1024];
    snprintf(dir, sizeof dir, "/tmp/tdsl-load-XXXXXX");
    cr_assert(mkdtemp(dir));
    /* not a shared library at all */
    snprintf(path, sizeof path, "%s/text.so", dir);
    FILE *f = fopen(path, "w");
    fputs("hello\n", f);
    fclose(f);
    cr_assert_eq(tdsl_load(path, &m), TDSL_ERR_LOAD);
    cr_assert(strstr(tdsl_last_error(), "cannot load"), "%s", tdsl_last_error());
    /* a library, but not a tdsl module */
    snprintf(cmd, sizeof cmd, "cd '%s' && printf 'int f(void) { return 1; }\\n' > a.c && cc -shared -fPIC -o plain.so a.c", dir);
    cr_assert_eq(system(cmd), 0);
    snprintf(path, sizeof path, "%s/plain.so", dir);
    cr_assert_eq(tdsl_load(path, &m), TDSL_ERR_LOAD);
    cr_assert(strstr(tdsl_last_error(), "is not a tdsl module"), "%s", tdsl_last_error());
    /* a manifest whose kernel symbol is missing, and a bad manifest */
    snprintf(cmd, sizeof cmd,
             "cd '%s' && printf 'const char *const tdsl_manifest = \"f(x: f32[N]) -> (y: f32[N])\\\\n\";\\n' > b.c && "
             "cc -shared -fPIC -o nosym.so b.c && "
             "printf 'const char *const tdsl_manifest = \"f(x: f32[N] -> (y: f32[N])\\\\n\";\\n' > c.c && "
             "cc -shared -fPIC -o badman.so c.c",
             dir);
    cr_assert_eq(system(cmd), 0);
    snprintf(path, sizeof path, "%s/nosym.so", dir);
    cr_assert_eq(tdsl_load(path, &m), TDSL_ERR_LOAD);
    cr_assert(strstr(tdsl_last_error(), "kernel f has no symbol tdsl_raw_f"), "%s", tdsl_last_error());
    snprintf(path, sizeof path, "%s/badman.so", dir);
    cr_assert_eq(tdsl_load(path, &m), TDSL_ERR_LOAD);
    cr_assert(strstr(tdsl_last_error(), "bad manifest line 1: column"), "%s", tdsl_last_error());
    cr_assert_null(m);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}

/* ---- threads ------------------------------------------------------------------------------------ */

typedef struct ThreadJob {
    int  id;
    bool ok;
    char msg[512];
} ThreadJob;

static void *thread_main(void *arg)
{
    ThreadJob *j = arg;
    tdsl_module *m = NULL;
    if (tdsl_compile(PROG, "prog.tdsl", NULL, &m) != TDSL_OK) {
        snprintf(j->msg, sizeof j->msg, "compile: %s", tdsl_last_error());
        return NULL;
    }
    DiagSink d;
    diag_init(&d, NULL);
    Module *ir = fe_compile_source("prog.tdsl", PROG, strlen(PROG), &(FeOptions){0}, &d);
    diag_free(&d);
    j->ok = ir != NULL;
    for (int rep = 0; rep < 3 && j->ok; rep++) {
        const int64_t *sm[] = {(int64_t[]){3 + j->id, 50 + 7 * rep}};
        const int64_t *dot[] = {(int64_t[]){5, 16 + j->id}, (int64_t[]){9, 16 + j->id}};
        j->ok = run_vs_interp(ir, "softmax", sm, (unsigned)(j->id * 10 + rep), call_api,
                              tdsl_kernel_get(m, "softmax"), j->msg, sizeof j->msg) &&
                run_vs_interp(ir, "dot", dot, (unsigned)j->id, call_api, tdsl_kernel_get(m, "dot"), j->msg,
                              sizeof j->msg);
    }
    /* the last error is per thread */
    char name[16], want[64];
    snprintf(name, sizeof name, "k%d", j->id);
    snprintf(want, sizeof want, "no kernel named '%s'", name);
    if (j->ok && (tdsl_kernel_get(m, name) != NULL || !strstr(tdsl_last_error(), want))) {
        snprintf(j->msg, sizeof j->msg, "last error '%s', wanted '%s'", tdsl_last_error(), want);
        j->ok = false;
    }
    if (ir) ir_module_free(ir);
    tdsl_module_free(m);
    return NULL;
}

Test(threads, compile_call_free)
{
    enum { NT = 4 };
    pthread_t th[NT];
    ThreadJob jobs[NT];
    for (int i = 0; i < NT; i++) {
        jobs[i] = (ThreadJob){.id = i};
        cr_assert_eq(pthread_create(&th[i], NULL, thread_main, &jobs[i]), 0);
    }
    for (int i = 0; i < NT; i++) pthread_join(th[i], NULL);
    for (int i = 0; i < NT; i++) cr_expect(jobs[i].ok, "thread %d: %s", i, jobs[i].msg);
}

Test(aot, module_without_kernels)
{
    Aot a;
    StrBuf err = {0};
    cr_assert(aot_build("const A = 1\n", &a, &err), "%s", sb_cstr(&err));
    tdsl_module *m = NULL;
    cr_assert_eq(tdsl_load(a.so, &m), TDSL_OK, "%s", tdsl_last_error());
    cr_assert_null(tdsl_kernel_get(m, "f"));
    tdsl_module_free(m);
    sb_free(&err);
    aot_clean(&a);
}

Test(jit, long_compile_log_is_cut)
{
    StrBuf src = {0};
    for (int i = 0; i < 400; i++) sb_printf(&src, "kernel f%d(x: f32[N]) -> y: f32[N] { y[i] = x[i + %d] }\n", i, i + 1);
    tdsl_module *m = NULL;
    cr_assert_eq(tdsl_compile(sb_cstr(&src), "many.tdsl", NULL, &m), TDSL_ERR_COMPILE);
    const char *e = tdsl_last_error();
    cr_assert_eq(strlen(e), RT_ERROR_CAP - 1);
    cr_assert_str_eq(e + strlen(e) - 4, "\n...");
    cr_assert(has_location(e, "many.tdsl"));
    sb_free(&src);
}

/* The typed functions of a fresh library, called first from several threads at once: the
 * descriptor is parsed once, whoever wins the race. */
typedef struct TypedJob {
    Fn2  softmax;
    bool ok;
} TypedJob;

static void *typed_main(void *arg)
{
    TypedJob *j = arg;
    T *x = t_new2(DT_F32, 4, 33), *y = t_new2(DT_F32, 4, 33);
    unsigned seed = 3;
    t_random(x, &seed);
    j->ok = true;
    for (int rep = 0; rep < 50 && j->ok; rep++) {
        j->ok = j->softmax(&x->dl, &y->dl) == 0;
        float s = 0;
        for (int i = 0; i < 33; i++) s += ((float *)y->data)[i];
        j->ok = j->ok && fabsf(s - 1) < 1e-4f;
    }
    t_free(x);
    t_free(y);
    return NULL;
}

Test(threads, aot_first_calls)
{
    Aot a;
    StrBuf err = {0};
    cr_assert(aot_build(PROG, &a, &err), "%s", sb_cstr(&err));
    void *h = dlopen(a.so, RTLD_NOW | RTLD_LOCAL);
    cr_assert(h, "%s", dlerror());
    enum { NT = 4 };
    pthread_t th[NT];
    TypedJob jobs[NT];
    for (int i = 0; i < NT; i++) {
        jobs[i] = (TypedJob){.softmax = (Fn2)dlsym(h, "softmax")};
        cr_assert_eq(pthread_create(&th[i], NULL, typed_main, &jobs[i]), 0);
    }
    for (int i = 0; i < NT; i++) pthread_join(th[i], NULL);
    for (int i = 0; i < NT; i++) cr_expect(jobs[i].ok, "thread %d", i);
    dlclose(h);
    sb_free(&err);
    aot_clean(&a);
}

/* ---- parallel kernels ------------------------------------------------------------------------ */

static const char *PAR_PROG =
    "kernel scale(x: f32[N, D]) -> y: f32[N, D] { y[n, d] = x[n, d] * 3 + exp(x[n, d]) }\n"
    "kernel rowmax(x: f32[N, D]) -> (m: f32[N], s: f32[N]) {\n"
    "    m[n] = max[d](x[n, d])\n"
    "    s[n] = sum[d](x[n, d] * x[n, d])\n"
    "}\n";

/* Calls kernel `name` of m on x (N x D) at 1, 2 and 3 threads: the outputs' bytes agree. */
static void same_at_thread_counts(tdsl_module *m, const Module *ir, const char *name, const T *x)
{
    const Kernel *k = find_kernel(ir, name);
    T *ref[4] = {0};
    for (int threads = 1; threads <= 3; threads++) {
        cr_assert_eq(tdsl_set_num_threads(threads), TDSL_OK);
        T *out[4];
        DLTensor *args[5] = {(DLTensor *)&x->dl};
        for (int o = 0; o < k->nouts; o++) {
            out[o] = k->outs[o]->rank == 2 ? t_new2(DT_F32, x->shape[0], x->shape[1]) : t_new(DT_F32, 1, x->shape);
            t_fill_sentinel(out[o]);
            args[1 + o] = &out[o]->dl;
        }
        cr_assert_eq(tdsl_kernel_call(tdsl_kernel_get(m, name), args, 1 + k->nouts), TDSL_OK, "%s", tdsl_last_error());
        for (int o = 0; o < k->nouts; o++) {
            if (!ref[o]) {
                ref[o] = out[o];
                continue;
            }
            cr_assert_eq(memcmp(ref[o]->data, out[o]->data, ref[o]->nbytes), 0, "%s: %s differs at %d threads", name,
                         k->outs[o]->name, threads);
            t_free(out[o]);
        }
    }
    for (int o = 0; o < k->nouts; o++) t_free(ref[o]);
}

Test(parallel, jit_and_aot_same_at_any_thread_count)
{
    int before = omp_get_max_threads();
    Module *ir = compile_ir(PAR_PROG);
    T *x = t_new2(DT_F32, 301, 257);  /* 77357 elements: worth the threads */
    unsigned seed = 11;
    t_random(x, &seed);
    char msg[512] = "";
    const int64_t *shape[] = {x->shape};

    tdsl_module *jm = NULL;
    cr_assert_eq(tdsl_compile(PAR_PROG, "par.tdsl", NULL, &jm), TDSL_OK, "%s", tdsl_last_error());
    same_at_thread_counts(jm, ir, "scale", x);
    same_at_thread_counts(jm, ir, "rowmax", x);
    cr_expect(run_vs_interp(ir, "rowmax", shape, 5, call_api, kernel_of(jm, "rowmax"), msg, sizeof msg), "%s", msg);

    Aot a;
    StrBuf err = {0};
    cr_assert(aot_build(PAR_PROG, &a, &err), "%s", sb_cstr(&err));
    tdsl_module *am = NULL;
    cr_assert_eq(tdsl_load(a.so, &am), TDSL_OK, "%s", tdsl_last_error());
    same_at_thread_counts(am, ir, "scale", x);
    same_at_thread_counts(am, ir, "rowmax", x);
    cr_expect(run_vs_interp(ir, "scale", shape, 5, call_api, kernel_of(am, "scale"), msg, sizeof msg), "%s", msg);
    cr_expect(run_vs_interp(ir, "rowmax", shape, 5, call_api, kernel_of(am, "rowmax"), msg, sizeof msg), "%s", msg);
    tdsl_module_free(am);
    aot_clean(&a);

    /* without a parallel loop the library needs no OpenMP (it is linked as needed) */
    cr_assert(aot_build("kernel tiny(x: f32[4]) -> y: f32[4] { y[i] = x[i] * 2 }\n", &a, &err), "%s", sb_cstr(&err));
    char cmd[400];
    snprintf(cmd, sizeof cmd, "readelf -d '%s' | grep NEEDED", a.so);
    char *out = slurp(cmd);
    cr_assert(strstr(out, "libc.so"), "%s", out);
    cr_assert_null(strstr(out, "omp"), "%s", out);
    free(out);
    aot_clean(&a);

    cr_assert_eq(tdsl_set_num_threads(0), TDSL_ERR_ARG);
    cr_assert_str_eq(tdsl_last_error(), "tdsl_set_num_threads: the thread count must be at least 1, not 0");
    cr_assert_eq(tdsl_set_num_threads(before), TDSL_OK);
    t_free(x);
    tdsl_module_free(jm);
    sb_free(&err);
    ir_module_free(ir);
}
