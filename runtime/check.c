/* check.c: the argument checks of a kernel call (LANGUAGE.md section 9), then the call.
 *
 * Takes a signature descriptor (RtSig), the raw kernel and the caller's DLTensors, inputs
 * then outputs. Before any memory is read or written it checks, in this order: the
 * argument count; that no parameter carries a storage annotation (not callable yet);
 * each tensor: non-NULL, non-NULL data, the kernel's device (the CPU, or for CUDA kernels one
 * CUDA device shared by every tensor), dtype, rank, non-negative sizes and
 * row-major contiguous strides; then it binds the size names (the first parameter, in
 * signature order, whose dimension determines a size gives its value), checks that every
 * dimension agrees and that sizes are at least 1; and last that no output overlaps an
 * input or another output. The first failure is reported through rt_fail with the
 * kernel's and the parameter's names and nothing is written. The raw kernel then gets
 * the base pointers (data + byte_offset) and the sizes in signature order.
 *
 * Part of the standalone runtime: libc only, no allocation on the common path (work
 * arrays live on the stack up to STACK_PARAMS parameters and sizes). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rt.h"

enum { STACK_PARAMS = 32, DIM_TEXT = 256 };

/* Where a size got its value: from parameter `param`'s axis `axis`. */
typedef struct SizeSource {
    int param;
    int axis;
} SizeSource;

/* The caller's work arrays. */
typedef struct Work {
    int         device;   /* kDLCPU or kDLCUDA: where the kernel runs */
    int         device_id;/* kDLCUDA: the device of the first tensor, which all must share */
    void      **buffers;  /* nparams base pointers */
    int64_t    *sizes;    /* nsizes values */
    SizeSource *src;      /* nsizes sources */
    uintptr_t  *lo, *hi;  /* nparams byte ranges [lo, hi) */
} Work;

/* ---- names for messages ---------------------------------------------------------------- */

static const char *device_name(int type)
{
    switch (type) {
    case 1: return "cpu";
    case 2: return "cuda";
    case 3: return "cuda_host";
    case 4: return "opencl";
    case 7: return "vulkan";
    case 8: return "metal";
    case 9: return "vpi";
    case 10: return "rocm";
    case 11: return "rocm_host";
    case 12: return "ext_dev";
    case 13: return "cuda_managed";
    case 14: return "oneapi";
    case 15: return "webgpu";
    case 16: return "hexagon";
    default: return NULL;
    }
}

/* A DLPack dtype as text: the tdsl name when there is one ("f64", "bf16", "f32x4"),
 * else DLPack's family and width ("complex64", "float8"). */
static void dl_dtype_name(DLDataType t, char *buf, size_t cap)
{
    const char *name = NULL;
    for (int d = 0; d < rt_dtype_count(); d++) {
        const RtDTypeInfo *info = rt_dtype_info(d);
        if (info->dl_code == t.code && info->bits == t.bits) name = info->name;
    }
    char base[32];
    if (name) {
        snprintf(base, sizeof base, "%s", name);
    } else {
        static const char *const family[] = {"int", "uint", "float", "opaque", "bfloat", "complex", "bool"};
        if (t.code < sizeof family / sizeof family[0]) snprintf(base, sizeof base, "%s%u", family[t.code], t.bits);
        else snprintf(base, sizeof base, "(code %u, %u bits)", t.code, t.bits);
    }
    if (t.lanes != 1) snprintf(buf, cap, "%sx%u", base, t.lanes);
    else snprintf(buf, cap, "%s", base);
}

/* ---- per-tensor checks ------------------------------------------------------------------------ */

/* Bytes of n elements of dtype; false on overflow. */
static bool storage_bytes(int dtype, uint64_t n, uint64_t *bytes)
{
    uint64_t bits;
    if (__builtin_mul_overflow(n, (uint64_t)rt_dtype_info(dtype)->bits, &bits)) return false;
    *bytes = bits / 8 + (bits % 8 != 0);
    return *bytes <= (uint64_t)PTRDIFF_MAX;
}

static int check_tensor(const RtSig *s, int i, const DLTensor *t, Work *w)
{
    const RtParam *p = &s->params[i];
    if (!t) return rt_fail(TDSL_ERR_ARG, "%s: argument %d (%s) is NULL", s->name, i + 1, p->name);
    if (!t->data) return rt_fail(TDSL_ERR_ARG, "%s: %s has a NULL data pointer", s->name, p->name);
    if ((int)t->device.device_type != w->device) {
        const char *dev = device_name((int)t->device.device_type);
        char buf[32];
        if (!dev) {
            snprintf(buf, sizeof buf, "type %d", (int)t->device.device_type);
            dev = buf;
        }
        return rt_fail(TDSL_ERR_ARG, "%s: %s is on device %s:%d but the kernel runs on %s", s->name, p->name, dev,
                       t->device.device_id, w->device == kDLCUDA ? "a CUDA device (kDLCUDA)" : "the CPU (kDLCPU)");
    }
    if (w->device == kDLCUDA) {  /* one device for the whole call: the first tensor's */
        if (i == 0) w->device_id = t->device.device_id;
        else if (t->device.device_id != w->device_id)
            return rt_fail(TDSL_ERR_ARG, "%s: %s is on cuda:%d but %s is on cuda:%d; every tensor must be on one device",
                           s->name, p->name, t->device.device_id, s->params[0].name, w->device_id);
    }
    const RtDTypeInfo *want = rt_dtype_info(p->dtype);
    if (t->dtype.code != want->dl_code || t->dtype.bits != want->bits || t->dtype.lanes != 1) {
        char have[48];
        dl_dtype_name(t->dtype, have, sizeof have);
        return rt_fail(TDSL_ERR_ARG, "%s: %s has dtype %s but the kernel expects %s", s->name, p->name,
                       have, want->name);
    }
    if (t->ndim != p->rank) {
        char type[DIM_TEXT];
        rt_param_type_format(s, p, type, sizeof type);
        return rt_fail(TDSL_ERR_ARG, "%s: %s has rank %d but the kernel expects rank %d (%s)", s->name,
                       p->name, t->ndim, p->rank, type);
    }
    if (p->rank && !t->shape) return rt_fail(TDSL_ERR_ARG, "%s: %s has a NULL shape", s->name, p->name);
    uint64_t n = 1;
    for (int a = 0; a < p->rank; a++) {
        if (t->shape[a] < 0)
            return rt_fail(TDSL_ERR_ARG, "%s: %s has size %lld on axis %d", s->name, p->name,
                           (long long)t->shape[a], a);
        if (__builtin_mul_overflow(n, (uint64_t)t->shape[a], &n))
            return rt_fail(TDSL_ERR_ARG, "%s: %s is too large to address", s->name, p->name);
    }
    uint64_t bytes;
    if (!storage_bytes(p->dtype, n, &bytes))
        return rt_fail(TDSL_ERR_ARG, "%s: %s is too large to address", s->name, p->name);
    if (t->strides) {
        /* row-major contiguous; an axis of size 1 is never stepped, so its stride is free */
        int64_t expect = 1;
        bool ok = true;
        for (int a = p->rank - 1; a >= 0; a--) {
            if (t->shape[a] != 1 && t->strides[a] != expect) ok = false;
            expect *= t->shape[a];  /* no overflow: bounded by n above */
        }
        if (!ok) {
            char have[DIM_TEXT], want_s[DIM_TEXT];
            size_t hl = 0, wl = 0;
            expect = 1;
            int64_t want_strides[RT_MAX_RANK];
            for (int a = p->rank - 1; a >= 0; a--) {
                want_strides[a] = expect;
                expect *= t->shape[a];
            }
            for (int a = 0; a < p->rank; a++) {
                hl += (size_t)snprintf(have + hl, sizeof have - hl, "%s%lld", a ? ", " : "", (long long)t->strides[a]);
                wl += (size_t)snprintf(want_s + wl, sizeof want_s - wl, "%s%lld", a ? ", " : "", (long long)want_strides[a]);
                if (hl >= sizeof have || wl >= sizeof want_s) break;
            }
            return rt_fail(TDSL_ERR_ARG,
                           "%s: %s has strides [%s] but the kernel needs row-major contiguous strides [%s]",
                           s->name, p->name, have, want_s);
        }
    }
    uintptr_t base = (uintptr_t)t->data + (uintptr_t)t->byte_offset;
    uintptr_t align = want->bits >= 8 ? (uintptr_t)want->bits / 8 : 1;  /* natural alignment */
    if (base % align != 0)
        return rt_fail(TDSL_ERR_ARG, "%s: %s is not %u-byte aligned (data + byte_offset = %p); %s needs natural alignment",
                       s->name, p->name, (unsigned)align, (void *)base, want->name);
    w->buffers[i] = (void *)base;
    w->lo[i] = base;
    w->hi[i] = base + (uintptr_t)bytes;
    return TDSL_OK;
}

/* ---- size names ---------------------------------------------------------------------------------- */

/* If dim is S, S + c, c + S, S - c, S * c or c * S for a size S, returns S's index and
 * the value of S that makes dim equal to actual; -1 otherwise (the rule of ir_bind_sizes). */
static int solve_dim(const RtDim *d, int64_t actual, int64_t *val)
{
    if (d->op == RT_DIM_SIZE) {
        *val = actual;
        return d->size;
    }
    if (d->op != RT_DIM_ADD && d->op != RT_DIM_SUB && d->op != RT_DIM_MUL) return -1;
    const RtDim *v = d->a, *c = d->b;
    if (v->op != RT_DIM_SIZE && d->op != RT_DIM_SUB) {
        v = d->b;
        c = d->a;
    }
    if (v->op != RT_DIM_SIZE || c->op != RT_DIM_CONST) return -1;
    if (d->op == RT_DIM_ADD) return __builtin_sub_overflow(actual, c->value, val) ? -1 : v->size;
    if (d->op == RT_DIM_SUB) return __builtin_add_overflow(actual, c->value, val) ? -1 : v->size;
    if (c->value <= 0 || actual % c->value != 0) return -1;  /* the check reports the rest */
    *val = actual / c->value;
    return v->size;
}

static int dim_sizes(const RtDim *d, int *out, int n, int nmax)
{
    if (d->op == RT_DIM_SIZE) {
        for (int j = 0; j < n; j++)
            if (out[j] == d->size) return n;
        if (n < nmax) out[n++] = d->size;
        return n;
    }
    if (d->a) n = dim_sizes(d->a, out, n, nmax);
    if (d->b) n = dim_sizes(d->b, out, n, nmax);
    return n;
}

/* "attention: k has D = 32 but q has D = 64", "f: y has N + 1 = 4 but x has N = 5, so
 * N + 1 = 6", "f: x has size 3 on axis 1 but the kernel expects 4". */
static int report_mismatch(const RtSig *s, const DLTensor *const *args, int i, int a, int64_t expected,
                           const Work *w)
{
    const RtParam *p = &s->params[i];
    int64_t actual = args[i]->shape[a];
    int used[16];
    int nused = dim_sizes(p->dims[a], used, 0, 16);
    if (nused == 0)
        return rt_fail(TDSL_ERR_ARG, "%s: %s has size %lld on axis %d but the kernel expects %lld", s->name,
                       p->name, (long long)actual, a, (long long)expected);
    char msg[RT_ERROR_CAP], dim[DIM_TEXT];
    size_t len = 0;
    rt_dim_format(s, p->dims[a], dim, sizeof dim);
    len += (size_t)snprintf(msg + len, sizeof msg - len, "%s: %s has %s = %lld but ", s->name, p->name, dim,
                            (long long)actual);
    for (int j = 0; j < nused && len < sizeof msg; j++) {
        const SizeSource *src = &w->src[used[j]];
        const RtParam *sp = &s->params[src->param];
        char sdim[DIM_TEXT];
        rt_dim_format(s, sp->dims[src->axis], sdim, sizeof sdim);
        len += (size_t)snprintf(msg + len, sizeof msg - len, "%s%s has %s = %lld", j ? " and " : "", sp->name,
                                sdim, (long long)args[src->param]->shape[src->axis]);
    }
    if (p->dims[a]->op != RT_DIM_SIZE && len < sizeof msg)
        snprintf(msg + len, sizeof msg - len, ", so %s = %lld", dim, (long long)expected);
    return rt_fail(TDSL_ERR_ARG, "%s", msg);
}

static int bind_sizes(const RtSig *s, const DLTensor *const *args, Work *w)
{
    for (int k = 0; k < s->nsizes; k++) {
        w->sizes[k] = -1;
        w->src[k] = (SizeSource){-1, -1};
    }
    for (int i = 0; i < s->nparams; i++) {
        const RtParam *p = &s->params[i];
        for (int a = 0; a < p->rank; a++) {
            int64_t val;
            int k = solve_dim(p->dims[a], args[i]->shape[a], &val);
            if (k < 0 || w->sizes[k] >= 0) continue;
            if (val < 1) {
                char dim[DIM_TEXT];
                rt_dim_format(s, p->dims[a], dim, sizeof dim);
                if (p->dims[a]->op == RT_DIM_SIZE)
                    return rt_fail(TDSL_ERR_ARG, "%s: %s has %s = %lld but sizes must be at least 1", s->name,
                                   p->name, dim, (long long)val);
                return rt_fail(TDSL_ERR_ARG, "%s: %s has %s = %lld, which gives %s = %lld, but sizes must be at least 1",
                               s->name, p->name, dim, (long long)args[i]->shape[a], s->sizes[k], (long long)val);
            }
            w->sizes[k] = val;
            w->src[k] = (SizeSource){i, a};
        }
    }
    for (int k = 0; k < s->nsizes; k++)
        if (w->sizes[k] < 0)
            return rt_fail(TDSL_ERR_ARG, "%s: no argument determines the size %s", s->name, s->sizes[k]);
    for (int i = 0; i < s->nparams; i++) {
        const RtParam *p = &s->params[i];
        for (int a = 0; a < p->rank; a++) {
            int64_t want;
            if (!rt_dim_eval(p->dims[a], w->sizes, &want)) {
                char dim[DIM_TEXT];
                rt_dim_format(s, p->dims[a], dim, sizeof dim);
                return rt_fail(TDSL_ERR_ARG, "%s: the dimension %s of %s overflows", s->name, dim, p->name);
            }
            if (want != args[i]->shape[a]) return report_mismatch(s, args, i, a, want, w);
        }
    }
    return TDSL_OK;
}

/* ---- the call ------------------------------------------------------------------------------------ */

static int check_args(const RtSig *s, const DLTensor *const *args, int nargs, Work *w)
{
    if (s->annotated) {
        for (int i = 0; i < s->nparams; i++)
            if (s->params[i].annot)
                return rt_fail(TDSL_ERR_ARG,
                               "%s: parameter %s is stored as %s; calling kernels with storage annotations "
                               "is not supported yet", s->name, s->params[i].name, s->params[i].annot);
    }
    if (nargs != s->nparams || (nargs > 0 && !args)) {
        if (!args && nargs > 0) return rt_fail(TDSL_ERR_ARG, "%s: the argument array is NULL", s->name);
        return rt_fail(TDSL_ERR_ARG, "%s: expected %d arguments (%d input%s, then %d output%s) but got %d",
                       s->name, s->nparams, s->nins, s->nins == 1 ? "" : "s", s->nouts,
                       s->nouts == 1 ? "" : "s", nargs);
    }
    for (int i = 0; i < s->nparams; i++) {
        int rc = check_tensor(s, i, args[i], w);
        if (rc) return rc;
    }
    int rc = bind_sizes(s, args, w);
    if (rc) return rc;
    for (int o = s->nins; o < s->nparams; o++) {
        for (int i = 0; i < o; i++) {  /* every input, then the earlier outputs */
            if (w->lo[i] >= w->hi[i] || w->lo[o] >= w->hi[o]) continue;
            if (w->lo[i] < w->hi[o] && w->lo[o] < w->hi[i])
                return rt_fail(TDSL_ERR_ARG, "%s: output %s overlaps %s %s", s->name, s->params[o].name,
                               s->params[i].output ? "output" : "input", s->params[i].name);
        }
    }
    return TDSL_OK;
}

/* What a checked call runs: raw (CPU), or raw_cuda or launch(ctx, ...) (CUDA). */
typedef struct Callee {
    RtRawKernel     raw;
    RtCudaRawKernel raw_cuda;
    const char   *(*raw_error)(void);
    RtCudaCtxKernel launch;
    void           *ctx;
} Callee;

/* Checks the arguments for device `device` and calls the callee. */
static int call(const RtSig *s, int device, const Callee *f, const DLTensor *const *args, int nargs)
{
    if (!s || (!f->raw && !f->raw_cuda && !f->launch)) return rt_fail(TDSL_ERR_ARG, "no kernel");
    void *buffers_s[STACK_PARAMS];
    uintptr_t lo_s[STACK_PARAMS], hi_s[STACK_PARAMS];
    int64_t sizes_s[STACK_PARAMS];
    SizeSource src_s[STACK_PARAMS];
    Work w = {device, 0, buffers_s, sizes_s, src_s, lo_s, hi_s};
    void *heap_p = NULL, *heap_s = NULL;
    if (s->nparams > STACK_PARAMS) {
        size_t n = (size_t)s->nparams;
        heap_p = malloc(n * (sizeof(void *) + 2 * sizeof(uintptr_t)));
        if (!heap_p) return rt_fail(TDSL_ERR_RUNTIME, "%s: out of memory", s->name);
        w.buffers = heap_p;
        w.lo = (uintptr_t *)(w.buffers + n);
        w.hi = w.lo + n;
    }
    if (s->nsizes > STACK_PARAMS) {
        size_t n = (size_t)s->nsizes;
        heap_s = malloc(n * (sizeof(int64_t) + sizeof(SizeSource)));
        if (!heap_s) {
            free(heap_p);
            return rt_fail(TDSL_ERR_RUNTIME, "%s: out of memory", s->name);
        }
        w.sizes = heap_s;
        w.src = (SizeSource *)(w.sizes + n);
    }
    int rc = check_args(s, args, nargs, &w);
    if (rc == TDSL_OK && device == kDLCUDA) {
        int32_t r = f->launch ? f->launch(f->ctx, w.buffers, w.sizes, w.device_id)
                              : f->raw_cuda(w.buffers, w.sizes, w.device_id);
        if (r < 0 && f->raw_error) rc = rt_fail_text(r, "", f->raw_error());
        else if (r != 0) rc = r < 0 ? r : rt_fail(TDSL_ERR_RUNTIME, "%s: the kernel failed with code %d", s->name, (int)r);
    } else if (rc == TDSL_OK) {
        int32_t r = f->raw(w.buffers, w.sizes);
        if (r == -1) rc = rt_fail(TDSL_ERR_RUNTIME, "%s: out of memory", s->name);
        else if (r != 0) rc = rt_fail(TDSL_ERR_RUNTIME, "%s: the kernel failed with code %d", s->name, (int)r);
    }
    free(heap_p);
    free(heap_s);
    return rc;
}

int rt_call(const RtSig *s, RtRawKernel raw, const DLTensor *const *args, int nargs)
{
    return call(s, kDLCPU, &(Callee){.raw = raw}, args, nargs);
}

int rt_call_cuda(const RtSig *s, RtCudaRawKernel raw, const char *(*raw_error)(void), const DLTensor *const *args,
                 int nargs)
{
    return call(s, kDLCUDA, &(Callee){.raw_cuda = raw, .raw_error = raw_error}, args, nargs);
}

int rt_call_cuda_ctx(const RtSig *s, RtCudaCtxKernel raw, void *ctx, const DLTensor *const *args, int nargs)
{
    return call(s, kDLCUDA, &(Callee){.launch = raw, .ctx = ctx}, args, nargs);
}

/* ---- the typed functions of an AOT .so ------------------------------------------------------------ */

/* The descriptor parsed from sig into *cache on first use (thread safe, lock free); NULL
 * with the error set when sig does not parse. */
static const RtSig *cached_sig(void **cache, const char *sig)
{
    void *s = __atomic_load_n(cache, __ATOMIC_ACQUIRE);
    if (!s) {
        char err[256];
        RtSig *fresh = rt_sig_parse(sig, strlen(sig), err, sizeof err);
        if (!fresh) {
            rt_fail(TDSL_ERR_LOAD, "bad kernel signature '%s': %s", sig, err);
            return NULL;
        }
        void *expected = NULL;
        if (__atomic_compare_exchange_n(cache, &expected, (void *)fresh, false, __ATOMIC_ACQ_REL,
                                        __ATOMIC_ACQUIRE)) {
            s = fresh;
        } else {  /* another thread won the race */
            rt_sig_free(fresh);
            s = expected;
        }
    }
    return s;
}

int rt_call_cached(void **cache, const char *sig, RtRawKernel raw, const DLTensor *const *args, int nargs)
{
    const RtSig *s = cached_sig(cache, sig);
    return s ? rt_call(s, raw, args, nargs) : TDSL_ERR_LOAD;
}

int rt_call_cuda_cached(void **cache, const char *sig, RtCudaRawKernel raw, const DLTensor *const *args, int nargs)
{
    const RtSig *s = cached_sig(cache, sig);
    return s ? rt_call_cuda(s, raw, NULL, args, nargs) : TDSL_ERR_LOAD;
}

void rt_sig_cache_free(void **cache)
{
    rt_sig_free(__atomic_exchange_n(cache, NULL, __ATOMIC_ACQ_REL));
}
