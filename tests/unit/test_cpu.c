/* Unit tests of codegen/cpu: kernels built with the ir.h builders (and the stdlib softmax
 * through the front end) are lowered, JIT-compiled and run, and every output element is
 * compared with ir_interp_run on the same inputs: integers (and packed padding bits)
 * exactly, f16/bf16/f64 exactly, f32 exactly for arithmetic and within a few ulps for the
 * libm functions and f32 reductions (the interpreter sums in double).
 *
 * Covered: integer wrap, division and pow rules in every integer dtype; every cast pair
 * with saturation, NaN and infinities; packed i4/u4/i2 loads and stores at odd counts;
 * padded loads at the edges of guarded pages (an out-of-range read would fault); select
 * that must not read; f16/bf16 rounding per op; NaN in min/max; round half to even;
 * reductions through accumulators; forward, reverse and nested scans; heap temporaries and
 * their failure path; cpu_emit; every opt level; a CPU without F16C; compiling from several
 * threads at once; the stdlib softmax from source, with its JIT compile time. */
#include <criterion/criterion.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "codegen/cpu/cpu.h"
#include "frontend/frontend.h"
#include "ir/ir.h"
#include "ir_build.h"

static Kernel *new_kernel(Module *m, const char *name)
{
    Kernel *k = ir_kernel_new(m, name);
    ir_kernel_add(m, k);
    return k;
}

/* ---- tensors in storage layout ------------------------------------------------------------------ */

static size_t td_count(const TensorData *td)
{
    size_t n = 1;
    for (int a = 0; a < td->rank; a++) n *= (size_t)td->shape[a];
    return n;
}

static TensorData td_new(DType dt, int rank, const int64_t *shape, int fill)
{
    TensorData td = {.dtype = dt, .rank = rank};
    for (int a = 0; a < rank; a++) td.shape[a] = shape[a];
    dtype_storage_bytes(dt, td_count(&td), &td.nbytes);
    td.data = malloc(td.nbytes ? td.nbytes : 1);
    memset(td.data, fill, td.nbytes ? td.nbytes : 1);
    return td;
}

/* Element j of td set from a double (floats: rounded to the dtype; integers: wrapped). */
static void td_set(TensorData *td, size_t j, double v)
{
    if (dtype_is_float(td->dtype)) dtype_store_f(td->dtype, td->data, j, dtype_round_f(td->dtype, v));
    else dtype_store_i(td->dtype, td->data, j, dtype_wrap_i(td->dtype, (int64_t)v));
}

static void td_seti(TensorData *td, size_t j, int64_t v)
{
    if (dtype_is_float(td->dtype)) td_set(td, j, (double)v);
    else dtype_store_i(td->dtype, td->data, j, dtype_wrap_i(td->dtype, v));
}

static uint32_t lcg(uint32_t *s)
{
    *s = *s * 1664525u + 1013904223u;
    return *s >> 8;
}

/* Uniform in [lo, hi). */
static double uniform(uint32_t *s, double lo, double hi)
{
    return lo + (hi - lo) * (double)lcg(s) / (double)(1u << 24);
}

static TensorData td_random(DType dt, int rank, const int64_t *shape, uint32_t seed, double lo, double hi)
{
    TensorData td = td_new(dt, rank, shape, 0);
    for (size_t j = 0; j < td_count(&td); j++) {
        double v = uniform(&seed, lo, hi);
        if (dtype_is_float(dt)) td_set(&td, j, v);
        else td_seti(&td, j, (int64_t)floor(v));
    }
    return td;
}

/* Values that probe the edges: signed zeros, halves, NaN, infinities, the limits of every
 * dtype and just past them. */
static const double float_specials[] = {
    0.0, -0.0, 1, -1, 0.5, -0.5, 1.5, -1.5, 2.5, -2.5, 3.5, -3.5, NAN, INFINITY, -INFINITY,
    65504, 65520, -70000, 6e-5, 1e-7, -3e-8, 1e-40, 3.0e38, -3.0e38, 1e300, 127.5, 128,
    -128.5, -129, 255.5, 256, 300.7, -300.7, 32767.5, -32768.9, 2147483647.0, 2147483648.0,
    -2147483649.0, 9.3e18, -9.3e18, 0.1, 1.0 / 3, 7.9, -8.6, 1.9999999, 1e10, 15.5, -2.2};

static int int_specials(DType dt, int64_t *out)
{
    int64_t lo, hi;
    dtype_int_range(dt, &lo, &hi);
    int n = 0;
    if (dtype_bits(dt) < 8) {  /* i2, i4, u4: every value */
        for (int64_t v = lo; v <= hi; v++) out[n++] = v;
        return n;
    }
    const int64_t base[] = {0, 1, -1, 2, -2, 3, -3, 7, -8, 100, -100, 13};
    for (int i = 0; i < TD_COUNTOF(base); i++) out[n++] = dtype_wrap_i(dt, base[i]);
    const int64_t edge[] = {lo, lo + 1, hi, hi - 1, hi / 2, lo / 2};
    for (int i = 0; i < TD_COUNTOF(edge); i++) out[n++] = edge[i];
    return n;
}

/* ---- compiling and comparing with the interpreter -------------------------------------------------- */

static CpuJit *compile_with(Module *m, const CpuOptions *o)
{
    assert_verifies(m);
    LoopModule *lm = ir_lower_module(m, NULL);
    StrBuf err = {0};
    cr_assert(loop_verify(lm, &err), "loop verifier: %s", sb_cstr(&err));
    CpuJit *j = cpu_jit_compile(lm, o, &err);
    cr_assert(j, "cpu_jit_compile: %s", sb_cstr(&err));
    sb_free(&err);
    return j;
}

static CpuJit *compile(Module *m) { return compile_with(m, NULL); }

typedef struct Tol {
    double rel;        /* |a - b| <= rel * max(|a|, |b|) + abs */
    double abs;
    bool   any_zero;   /* +0 and -0 compare equal (min/max of two zeros) */
} Tol;

static const Tol EXACT = {0, 0, false};

static void compare(const Kernel *k, const Tensor *t, const TensorData *ref, const TensorData *got,
                    Tol tol)
{
    size_t n = td_count(ref);
    DType dt = t->dtype;
    for (size_t j = 0; j < n; j++) {
        if (!dtype_is_float(dt)) {
            int64_t a = dtype_load_i(dt, ref->data, j), b = dtype_load_i(dt, got->data, j);
            cr_assert_eq(a, b, "%s: %s[%zu] is %lld, the interpreter says %lld", k->name, t->name, j,
                         (long long)b, (long long)a);
            continue;
        }
        double a = dtype_load_f(dt, ref->data, j), b = dtype_load_f(dt, got->data, j);
        if (isnan(a) && isnan(b)) continue;
        if (a == b && (signbit(a) == signbit(b) || tol.any_zero)) continue;
        bool close = !isnan(a) && !isnan(b) && !isinf(a) && !isinf(b) &&
                     fabs(a - b) <= tol.rel * fmax(fabs(a), fabs(b)) + tol.abs;
        cr_assert(close, "%s: %s[%zu] is %.9g, the interpreter says %.9g", k->name, t->name, j, b, a);
    }
    if (dtype_bits(dt) < 8)  /* the padding bits of the last byte too */
        cr_assert(memcmp(ref->data, got->data, ref->nbytes) == 0, "%s: %s: packed bytes differ",
                  k->name, t->name);
}

static void out_shape(const Kernel *k, const Tensor *t, const int64_t *sizes, int64_t *shape)
{
    for (int a = 0; a < t->rank; a++)
        cr_assert(ir_eval_size(k, t->shape[a], sizes, &shape[a]), "shape of %s", t->name);
}

/* Runs the compiled kernel; outputs start as garbage (0xA5) so unwritten elements show. */
static int32_t run_compiled(CpuJit *j, const Kernel *k, const int64_t *sizes, const TensorData *ins,
                            TensorData *outs)
{
    TdslRawKernel fn = cpu_jit_lookup(j, k->name);
    cr_assert(fn, "no compiled kernel %s", k->name);
    void *bufs[32];
    cr_assert(k->nins + k->nouts <= 32);
    for (int i = 0; i < k->nins; i++) bufs[i] = ins[i].data;
    for (int i = 0; i < k->nouts; i++) bufs[k->nins + i] = outs[i].data;
    return fn(bufs, sizes);
}

/* Kernel k compiled in j against the interpreter, on the same inputs. */
static void check_run(CpuJit *j, const Kernel *k, const int64_t *sizes, const TensorData *ins, Tol tol)
{
    TensorData ref[8], got[8];
    cr_assert(k->nouts <= 8);
    for (int i = 0; i < k->nouts; i++) {
        int64_t shape[IR_MAX_RANK];
        out_shape(k, k->outs[i], sizes, shape);
        ref[i] = td_new(k->outs[i]->dtype, k->outs[i]->rank, shape, 0);
        got[i] = td_new(k->outs[i]->dtype, k->outs[i]->rank, shape, 0xA5);
    }
    StrBuf err = {0};
    cr_assert(ir_interp_run(k, sizes, ins, ref, &err), "interpreter: %s", sb_cstr(&err));
    sb_free(&err);
    cr_assert_eq(run_compiled(j, k, sizes, ins, got), 0, "%s returned an error", k->name);
    for (int i = 0; i < k->nouts; i++) {
        compare(k, k->outs[i], &ref[i], &got[i], tol);
        free(ref[i].data);
        free(got[i].data);
    }
}

static void td_free_all(TensorData *t, int n)
{
    for (int i = 0; i < n; i++) free(t[i].data);
}

/* ---- element-wise kernels: y[i] = op(a[i], b[i], c[i]) ------------------------------------------------ */

/* Adds kernel `name` computing y[i] = op(args) over nin inputs of dtype in_t; OP_CAST casts
 * to out_t; comparisons give bool. */
static Kernel *add_ew(Module *m, const char *name, Op op, DType in_t, int nin, DType out_t)
{
    Kernel *k = new_kernel(m, name);
    Var *N = add_size(m, k, "N");
    Expr *args[3];
    Var *i = ir_var_new(m, VAR_INDEX, "i", V(m, N));
    static const char *const names[3] = {"a", "b", "c"};
    for (int a = 0; a < nin; a++) {
        Tensor *t = add_tensor(m, k, TK_INPUT, names[a], in_t, 1, (Expr *[]){V(m, N)});
        args[a] = A1(m, t, V(m, i));
    }
    Expr *body = op == OP_CAST ? ir_cast(m, out_t, args[0])
               : nin == 1 ? ir_unary(m, op, args[0])
               : nin == 2 ? ir_binary(m, op, args[0], args[1])
               : ir_ternary(m, op, args[0], args[1], args[2]);
    Tensor *y = add_tensor(m, k, TK_OUTPUT, "y", body->type, 1, (Expr *[]){V(m, N)});
    add_stmt(m, k, ir_def_new(m, y, (Var *[]){i}, RED_NONE, NULL, 0, body));
    return k;
}

static const Op int_binops[] = {OP_ADD, OP_SUB, OP_MUL, OP_DIV, OP_MOD, OP_POW, OP_MIN, OP_MAX,
                                OP_LT, OP_LE, OP_GT, OP_GE, OP_EQ, OP_NE};
static const Op int_unops[] = {OP_NEG, OP_ABS, OP_SIGN, OP_FLOOR, OP_ROUND};
static const Op ternops[] = {OP_CLAMP, OP_FMA};

/* Every op of an integer dtype on every pair (and some triples) of its edge values. */
static void check_int_ops(DType dt)
{
    Module *m = ir_module_new();
    int64_t sp[64];
    int ns = int_specials(dt, sp);
    for (int o = 0; o < TD_COUNTOF(int_binops); o++) add_ew(m, op_name(int_binops[o]), int_binops[o], dt, 2, dt);
    for (int o = 0; o < TD_COUNTOF(int_unops); o++) add_ew(m, op_name(int_unops[o]), int_unops[o], dt, 1, dt);
    for (int o = 0; o < TD_COUNTOF(ternops); o++) add_ew(m, op_name(ternops[o]), ternops[o], dt, 3, dt);
    CpuJit *j = compile(m);
    int64_t n = (int64_t)ns * ns;
    TensorData in[3];
    for (int a = 0; a < 3; a++) in[a] = td_new(dt, 1, &n, 0);
    for (int64_t p = 0; p < n; p++) {
        td_seti(&in[0], (size_t)p, sp[p / ns]);
        td_seti(&in[1], (size_t)p, sp[p % ns]);
        td_seti(&in[2], (size_t)p, sp[(p * 7 + 3) % ns]);
    }
    for (int i = 0; i < m->nkernels; i++) check_run(j, m->kernels[i], &n, in, EXACT);
    td_free_all(in, 3);
    cpu_jit_free(j);
    ir_module_free(m);
}

Test(cpu_int, i8) { check_int_ops(DT_I8); }
Test(cpu_int, u8) { check_int_ops(DT_U8); }
Test(cpu_int, i16) { check_int_ops(DT_I16); }
Test(cpu_int, i32) { check_int_ops(DT_I32); }
Test(cpu_int, i64) { check_int_ops(DT_I64); }
Test(cpu_int, i4) { check_int_ops(DT_I4); }
Test(cpu_int, u4) { check_int_ops(DT_U4); }
Test(cpu_int, i2) { check_int_ops(DT_I2); }

/* A few rules spelled out, besides the comparison with the interpreter. */
Test(cpu_int, division_rules_by_value)
{
    Module *m = ir_module_new();
    Kernel *kd = add_ew(m, "div", OP_DIV, DT_I32, 2, DT_I32);
    Kernel *km = add_ew(m, "mod", OP_MOD, DT_I32, 2, DT_I32);
    CpuJit *j = compile(m);
    int64_t n = 5;
    const int32_t a[5] = {7, -7, INT32_MIN, INT32_MIN, 5}, b[5] = {2, 2, -1, 0, 0};
    TensorData in[2] = {td_new(DT_I32, 1, &n, 0), td_new(DT_I32, 1, &n, 0)};
    memcpy(in[0].data, a, sizeof a);
    memcpy(in[1].data, b, sizeof b);
    TensorData out = td_new(DT_I32, 1, &n, 0);
    cr_assert_eq(run_compiled(j, kd, &n, in, &out), 0);
    const int32_t *y = out.data;
    cr_assert(y[0] == 3 && y[1] == -3 && y[2] == INT32_MIN && y[3] == 0 && y[4] == 0);
    cr_assert_eq(run_compiled(j, km, &n, in, &out), 0);
    cr_assert(y[0] == 1 && y[1] == -1 && y[2] == 0 && y[3] == INT32_MIN && y[4] == 5);
    free(out.data);
    td_free_all(in, 2);
    cpu_jit_free(j);
    ir_module_free(m);
}

/* ---- casts: every pair of dtypes ------------------------------------------------------------------------- */

static TensorData specials_of(DType dt, int64_t *n)
{
    int64_t isp[64];
    int ni = dtype_is_float(dt) ? 0 : int_specials(dt, isp);
    *n = dtype_is_float(dt) ? TD_COUNTOF(float_specials) : dt == DT_BOOL ? 2 : ni;
    TensorData td = td_new(dt, 1, n, 0);
    for (int64_t j = 0; j < *n; j++) {
        if (dtype_is_float(dt)) td_set(&td, (size_t)j, float_specials[j]);
        else if (dt == DT_BOOL) td_seti(&td, (size_t)j, j);
        else td_seti(&td, (size_t)j, isp[j]);
    }
    return td;
}

Test(cpu_cast, every_pair)
{
    Module *m = ir_module_new();
    for (int from = 0; from < DT_COUNT; from++)
        for (int to = 0; to < DT_COUNT; to++) {
            char name[64];
            snprintf(name, sizeof name, "%s_to_%s", dtype_name((DType)from), dtype_name((DType)to));
            add_ew(m, name, OP_CAST, (DType)from, 1, (DType)to);
        }
    CpuJit *j = compile(m);
    for (int i = 0; i < m->nkernels; i++) {
        const Kernel *k = m->kernels[i];
        int64_t n;
        TensorData in = specials_of(k->ins[0]->dtype, &n);
        check_run(j, k, &n, &in, EXACT);
        free(in.data);
    }
    cpu_jit_free(j);
    ir_module_free(m);
}

Test(cpu_cast, saturation_and_nan_by_value)
{
    Module *m = ir_module_new();
    Kernel *k8 = add_ew(m, "to_i8", OP_CAST, DT_F32, 1, DT_I8);
    Kernel *ku = add_ew(m, "to_u4", OP_CAST, DT_I32, 1, DT_U4);
    Kernel *kb = add_ew(m, "to_bool", OP_CAST, DT_F32, 1, DT_BOOL);
    CpuJit *j = compile(m);
    int64_t n = 4;
    const float f[4] = {300.7f, -300.7f, NAN, -1.9f};
    const int32_t iv[4] = {-5, 3, 16, 1000};
    TensorData in = td_new(DT_F32, 1, &n, 0), ii = td_new(DT_I32, 1, &n, 0);
    memcpy(in.data, f, sizeof f);
    memcpy(ii.data, iv, sizeof iv);
    TensorData o8 = td_new(DT_I8, 1, &n, 0), ou = td_new(DT_U4, 1, &n, 0), ob = td_new(DT_BOOL, 1, &n, 0);
    cr_assert_eq(run_compiled(j, k8, &n, &in, &o8), 0);
    const int8_t *y8 = o8.data;
    cr_assert(y8[0] == 127 && y8[1] == -128 && y8[2] == 0 && y8[3] == -1);
    cr_assert_eq(run_compiled(j, ku, &n, &ii, &ou), 0);
    const uint8_t *yu = ou.data;
    cr_assert(yu[0] == 0x30 && yu[1] == 0xff, "u4 bytes %#x %#x", yu[0], yu[1]);  /* 0, 3, 15, 15 */
    cr_assert_eq(run_compiled(j, kb, &n, &in, &ob), 0);
    const uint8_t *yb = ob.data;
    cr_assert(yb[0] == 1 && yb[1] == 1 && yb[2] == 1 && yb[3] == 1);  /* NaN is true */
    td_free_all((TensorData[]){in, ii, o8, ou, ob}, 5);
    cpu_jit_free(j);
    ir_module_free(m);
}

/* ---- floats -------------------------------------------------------------------------------------------- */

static const Op float_unops[] = {OP_NEG, OP_ABS, OP_FLOOR, OP_CEIL, OP_ROUND, OP_TRUNC, OP_SIGN,
                                 OP_SQRT, OP_RSQRT, OP_EXP, OP_LOG, OP_EXP2, OP_LOG2, OP_SIN,
                                 OP_COS, OP_TANH, OP_SIGMOID, OP_ERF, OP_ISNAN};
static const Op float_binops[] = {OP_ADD, OP_SUB, OP_MUL, OP_DIV, OP_MOD, OP_POW, OP_MIN, OP_MAX,
                                  OP_LT, OP_LE, OP_GT, OP_GE, OP_EQ, OP_NE};

static bool is_libm(Op op)
{
    return op == OP_EXP || op == OP_LOG || op == OP_EXP2 || op == OP_LOG2 || op == OP_SIN ||
           op == OP_COS || op == OP_TANH || op == OP_SIGMOID || op == OP_ERF || op == OP_POW;
}

/* Every float op of dt on the edge values (pairs of them) and on random values. f16, bf16
 * and f64 must match bit for bit; f32 too, except the libm functions (expf vs exp). */
static void check_float_ops(DType dt)
{
    Module *m = ir_module_new();
    for (int o = 0; o < TD_COUNTOF(float_unops); o++) add_ew(m, op_name(float_unops[o]), float_unops[o], dt, 1, dt);
    for (int o = 0; o < TD_COUNTOF(float_binops); o++) add_ew(m, op_name(float_binops[o]), float_binops[o], dt, 2, dt);
    for (int o = 0; o < TD_COUNTOF(ternops); o++) add_ew(m, op_name(ternops[o]), ternops[o], dt, 3, dt);
    CpuJit *j = compile(m);
    int ns = TD_COUNTOF(float_specials);
    int64_t nsp = (int64_t)ns * ns, nr = 4096;
    TensorData sp[3], rnd[3];
    for (int a = 0; a < 3; a++) {
        sp[a] = td_new(dt, 1, &nsp, 0);
        rnd[a] = td_random(dt, 1, &nr, 17u + (uint32_t)a, a == 1 ? -3 : -8, a == 1 ? 3 : 8);
    }
    for (int64_t p = 0; p < nsp; p++) {
        td_set(&sp[0], (size_t)p, float_specials[p / ns]);
        td_set(&sp[1], (size_t)p, float_specials[p % ns]);
        td_set(&sp[2], (size_t)p, float_specials[(p * 7 + 3) % ns]);
    }
    for (int i = 0; i < m->nkernels; i++) {
        const Kernel *k = m->kernels[i];
        Op op = k->stmts[0]->def.body->op;
        Tol tol = EXACT;
        if (dt == DT_F32 && is_libm(op)) tol = (Tol){4e-6, 1e-30, false};
        tol.any_zero = op == OP_MIN || op == OP_MAX || op == OP_CLAMP;
        check_run(j, k, &nsp, sp, tol);
        check_run(j, k, &nr, rnd, tol);
    }
    td_free_all(sp, 3);
    td_free_all(rnd, 3);
    cpu_jit_free(j);
    ir_module_free(m);
}

Test(cpu_float, f32) { check_float_ops(DT_F32); }
Test(cpu_float, f64) { check_float_ops(DT_F64); }
Test(cpu_float, f16) { check_float_ops(DT_F16); }
Test(cpu_float, bf16) { check_float_ops(DT_BF16); }

Test(cpu_float, nan_min_max_and_round_half_even)
{
    Module *m = ir_module_new();
    Kernel *kmin = add_ew(m, "min", OP_MIN, DT_F32, 2, DT_F32);
    Kernel *kmax = add_ew(m, "max", OP_MAX, DT_F32, 2, DT_F32);
    Kernel *kr = add_ew(m, "round", OP_ROUND, DT_F32, 1, DT_F32);
    CpuJit *j = compile(m);
    int64_t n = 6;
    const float a[6] = {NAN, 1, 2, -0.5f, 2.5f, -1.5f}, b[6] = {1, NAN, 3, 0.5f, 3.5f, 0.5f};
    TensorData in[2] = {td_new(DT_F32, 1, &n, 0), td_new(DT_F32, 1, &n, 0)};
    memcpy(in[0].data, a, sizeof a);
    memcpy(in[1].data, b, sizeof b);
    TensorData out = td_new(DT_F32, 1, &n, 0);
    const float *y = out.data;
    cr_assert_eq(run_compiled(j, kmin, &n, in, &out), 0);
    cr_assert(isnan(y[0]) && isnan(y[1]) && y[2] == 2 && y[3] == -0.5f);
    cr_assert_eq(run_compiled(j, kmax, &n, in, &out), 0);
    cr_assert(isnan(y[0]) && isnan(y[1]) && y[2] == 3 && y[3] == 0.5f);
    cr_assert_eq(run_compiled(j, kr, &n, in, &out), 0);
    cr_assert(y[3] == 0 && signbit(y[3]) && y[4] == 2 && y[5] == -2);  /* -0.5 -> -0, 2.5 -> 2 */
    td_free_all(in, 2);
    free(out.data);
    cpu_jit_free(j);
    ir_module_free(m);
}

/* f16 rounds after every op: (2048 + 1) + 1 stays 2048 in f16 (and 2050 in f32). */
Test(cpu_float, f16_rounds_per_op)
{
    Module *m = ir_module_new();
    Kernel *k = new_kernel(m, "acc");
    Var *N = add_size(m, k, "N");
    Tensor *x = add_tensor(m, k, TK_INPUT, "x", DT_F16, 1, (Expr *[]){V(m, N)});
    Tensor *y = add_tensor(m, k, TK_OUTPUT, "y", DT_F16, 1, (Expr *[]){V(m, N)});
    Var *i = ir_var_new(m, VAR_INDEX, "i", V(m, N));
    Expr *one = ir_const_f(m, DT_F16, 1);
    add_stmt(m, k, ir_def_new(m, y, (Var *[]){i}, RED_NONE, NULL, 0,
                              bin(m, OP_ADD, bin(m, OP_ADD, A1(m, x, V(m, i)), one), one)));
    CpuJit *j = compile(m);
    int64_t n = 1;
    TensorData in = td_new(DT_F16, 1, &n, 0), out = td_new(DT_F16, 1, &n, 0);
    td_set(&in, 0, 2048);
    check_run(j, k, &n, &in, EXACT);
    cr_assert_eq(run_compiled(j, k, &n, &in, &out), 0);
    cr_assert_eq(dtype_load_f(DT_F16, out.data, 0), 2048);
    td_free_all((TensorData[]){in, out}, 2);
    cpu_jit_free(j);
    ir_module_free(m);
}

/* Logic on bools, comparisons of bools (false < true), isnan, select between values. */
Test(cpu_float, logic_and_select)
{
    Module *m = ir_module_new();
    Kernel *k = new_kernel(m, "logic");
    Var *N = add_size(m, k, "N");
    Tensor *a = add_tensor(m, k, TK_INPUT, "a", DT_F32, 1, (Expr *[]){V(m, N)});
    Tensor *b = add_tensor(m, k, TK_INPUT, "b", DT_F32, 1, (Expr *[]){V(m, N)});
    Tensor *y = add_tensor(m, k, TK_OUTPUT, "y", DT_F32, 1, (Expr *[]){V(m, N)});
    Tensor *z = add_tensor(m, k, TK_OUTPUT, "z", DT_BOOL, 1, (Expr *[]){V(m, N)});
    Var *i = ir_var_new(m, VAR_INDEX, "i", V(m, N));
    Expr *x = A1(m, a, V(m, i)), *w = A1(m, b, V(m, i));
    Expr *c = bin(m, OP_OR, bin(m, OP_AND, bin(m, OP_LT, x, w), ir_unary(m, OP_NOT, ir_unary(m, OP_ISNAN, w))),
                  ir_unary(m, OP_ISNAN, x));
    add_stmt(m, k, ir_def_new(m, y, (Var *[]){i}, RED_NONE, NULL, 0,
                              ir_ternary(m, OP_SELECT, c, bin(m, OP_MUL, x, F(m, 2)), bin(m, OP_SUB, w, F(m, 1)))));
    Var *i2 = ir_var_new(m, VAR_INDEX, "i", V(m, N));
    Expr *gt = bin(m, OP_GT, A1(m, a, V(m, i2)), F(m, 0)), *lt = bin(m, OP_LT, A1(m, b, V(m, i2)), F(m, 0));
    add_stmt(m, k, ir_def_new(m, z, (Var *[]){i2}, RED_NONE, NULL, 0, bin(m, OP_GT, gt, lt)));
    CpuJit *j = compile(m);
    int ns = TD_COUNTOF(float_specials);
    int64_t n = (int64_t)ns * ns;
    TensorData in[2] = {td_new(DT_F32, 1, &n, 0), td_new(DT_F32, 1, &n, 0)};
    for (int64_t p = 0; p < n; p++) {
        td_set(&in[0], (size_t)p, float_specials[p / ns]);
        td_set(&in[1], (size_t)p, float_specials[p % ns]);
    }
    check_run(j, k, &n, in, EXACT);
    td_free_all(in, 2);
    cpu_jit_free(j);
    ir_module_free(m);
}

/* y[i] = f32(i) * 2 + f32(N) - f32(i % 3): loop and size variables as values. */
Test(cpu_float, variables_as_values)
{
    Module *m = ir_module_new();
    Kernel *k = new_kernel(m, "vars");
    Var *N = add_size(m, k, "N");
    Tensor *y = add_tensor(m, k, TK_OUTPUT, "y", DT_F32, 1, (Expr *[]){V(m, N)});
    Var *i = ir_var_new(m, VAR_INDEX, "i", V(m, N));
    Expr *e = bin(m, OP_ADD, bin(m, OP_MUL, ir_cast(m, DT_F32, V(m, i)), F(m, 2)), ir_cast(m, DT_F32, V(m, N)));
    e = bin(m, OP_SUB, e, ir_cast(m, DT_F32, bin(m, OP_MOD, V(m, i), I(m, 3))));
    add_stmt(m, k, ir_def_new(m, y, (Var *[]){i}, RED_NONE, NULL, 0, e));
    CpuJit *j = compile(m);
    int64_t n = 11;
    check_run(j, k, &n, NULL, EXACT);
    cpu_jit_free(j);
    ir_module_free(m);
}

/* ---- packed types ------------------------------------------------------------------------------------------ */

/* y[i] = x[i] * 3 + 1 and a transpose t[j, i] = x2[i, j], in i4, u4, i2, at odd counts: the
 * elements share bytes, and the last byte is part padding. */
static void check_packed(DType dt)
{
    Module *m = ir_module_new();
    Kernel *k = new_kernel(m, "lin");
    Var *N = add_size(m, k, "N");
    Tensor *x = add_tensor(m, k, TK_INPUT, "x", dt, 1, (Expr *[]){V(m, N)});
    Tensor *y = add_tensor(m, k, TK_OUTPUT, "y", dt, 1, (Expr *[]){V(m, N)});
    Var *i = ir_var_new(m, VAR_INDEX, "i", V(m, N));
    add_stmt(m, k, ir_def_new(m, y, (Var *[]){i}, RED_NONE, NULL, 0,
                              bin(m, OP_ADD, bin(m, OP_MUL, A1(m, x, V(m, i)), ir_const_i(m, dt, 3)),
                                  ir_const_i(m, dt, 1))));
    Kernel *kt = new_kernel(m, "transpose");
    Var *R = add_size(m, kt, "R"), *C = add_size(m, kt, "C");
    Tensor *x2 = add_tensor(m, kt, TK_INPUT, "x", dt, 2, (Expr *[]){V(m, R), V(m, C)});
    Tensor *t = add_tensor(m, kt, TK_OUTPUT, "t", dt, 2, (Expr *[]){V(m, C), V(m, R)});
    Var *r = ir_var_new(m, VAR_INDEX, "j", V(m, C)), *c = ir_var_new(m, VAR_INDEX, "i", V(m, R));
    add_stmt(m, kt, ir_def_new(m, t, (Var *[]){r, c}, RED_NONE, NULL, 0, A2(m, x2, V(m, c), V(m, r))));
    /* a rank-0 packed output: one element in the low bits, the rest of its byte padding */
    Kernel *k0 = new_kernel(m, "scalar");
    Var *N0 = add_size(m, k0, "N");
    Tensor *x0 = add_tensor(m, k0, TK_INPUT, "x", dt, 1, (Expr *[]){V(m, N0)});
    Tensor *y0 = add_tensor(m, k0, TK_OUTPUT, "y", dt, 0, NULL);
    add_stmt(m, k0, ir_def_new(m, y0, NULL, RED_NONE, NULL, 0,
                               bin(m, OP_SUB, A1(m, x0, bin(m, OP_SUB, V(m, N0), I(m, 1))), ir_const_i(m, dt, 1))));
    CpuJit *j = compile(m);
    for (int64_t n = 1; n <= 11; n += 2) {
        TensorData in = td_random(dt, 1, &n, (uint32_t)n, -9, 17);
        check_run(j, k, &n, &in, EXACT);
        check_run(j, k0, &n, &in, EXACT);
        free(in.data);
    }
    const int64_t shapes[][2] = {{3, 5}, {1, 7}, {5, 3}, {2, 2}};
    for (int s = 0; s < TD_COUNTOF(shapes); s++) {
        TensorData in = td_random(dt, 2, shapes[s], 99u + (uint32_t)s, -9, 17);
        check_run(j, kt, shapes[s], &in, EXACT);
        free(in.data);
    }
    cpu_jit_free(j);
    ir_module_free(m);
}

Test(cpu_packed, i4) { check_packed(DT_I4); }
Test(cpu_packed, u4) { check_packed(DT_U4); }
Test(cpu_packed, i2) { check_packed(DT_I2); }

/* ---- padded accesses and selects that must not read ------------------------------------------------------ */

/* A buffer of n bytes between two inaccessible pages, flush against the upper one (at_end)
 * or the lower one: a read one element outside it faults. */
typedef struct Guarded {
    void  *map;
    size_t len;
    void  *data;
} Guarded;

static Guarded guarded(const void *src, size_t n, bool at_end)
{
    size_t pg = (size_t)sysconf(_SC_PAGESIZE), body = (n + pg - 1) / pg * pg;
    Guarded g = {.len = body + 2 * pg};
    g.map = mmap(NULL, g.len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    cr_assert(g.map != MAP_FAILED);
    char *base = g.map;
    cr_assert_eq(mprotect(base, pg, PROT_NONE), 0);
    cr_assert_eq(mprotect(base + pg + body, pg, PROT_NONE), 0);
    g.data = at_end ? base + pg + body - n : base + pg;
    memcpy(g.data, src, n);
    return g;
}

static void check_guarded(CpuJit *j, const Kernel *k, const int64_t *sizes, const TensorData *ins, Tol tol)
{
    for (int at_end = 0; at_end < 2; at_end++) {
        TensorData g_ins[4];
        Guarded gs[4];
        for (int i = 0; i < k->nins; i++) {
            gs[i] = guarded(ins[i].data, ins[i].nbytes, at_end);
            g_ins[i] = ins[i];
            g_ins[i].data = gs[i].data;
        }
        check_run(j, k, sizes, g_ins, tol);
        for (int i = 0; i < k->nins; i++) munmap(gs[i].map, gs[i].len);
    }
}

Test(cpu_access, padded_edges)
{
    Module *m = ir_module_new();
    /* y[i] = sum[k < 3] w[k] * (x[i + k - 1] ?? 0): a "same" convolution */
    Kernel *kc = new_kernel(m, "conv1d");
    Var *N = add_size(m, kc, "N");
    Tensor *x = add_tensor(m, kc, TK_INPUT, "x", DT_F32, 1, (Expr *[]){V(m, N)});
    Tensor *w = add_tensor(m, kc, TK_INPUT, "w", DT_F32, 1, (Expr *[]){I(m, 3)});
    Tensor *y = add_tensor(m, kc, TK_OUTPUT, "y", DT_F32, 1, (Expr *[]){V(m, N)});
    Var *i = ir_var_new(m, VAR_INDEX, "i", V(m, N)), *r = ir_var_new(m, VAR_REDUCE, "k", I(m, 3));
    Expr *xi = ir_access(m, x, (Expr *[]){bin(m, OP_SUB, bin(m, OP_ADD, V(m, i), V(m, r)), I(m, 1))}, F(m, 0));
    add_stmt(m, kc, ir_def_new(m, y, (Var *[]){i}, RED_SUM, (Var *[]){r}, 1, bin(m, OP_MUL, A1(m, w, V(m, r)), xi)));

    /* z[i, j] = (a[i - 1, j + 1] ?? 1) * 2 and q[i] = k[i + 2] ?? -7 (an integer pad) */
    Kernel *k2 = new_kernel(m, "pad2d");
    Var *R = add_size(m, k2, "R"), *C = add_size(m, k2, "C");
    Tensor *a = add_tensor(m, k2, TK_INPUT, "a", DT_F32, 2, (Expr *[]){V(m, R), V(m, C)});
    Tensor *ki = add_tensor(m, k2, TK_INPUT, "k", DT_I32, 1, (Expr *[]){V(m, R)});
    Tensor *z = add_tensor(m, k2, TK_OUTPUT, "z", DT_F32, 2, (Expr *[]){V(m, R), V(m, C)});
    Tensor *q = add_tensor(m, k2, TK_OUTPUT, "q", DT_I32, 1, (Expr *[]){V(m, R)});
    Var *ii = ir_var_new(m, VAR_INDEX, "i", V(m, R)), *jj = ir_var_new(m, VAR_INDEX, "j", V(m, C));
    Expr *ap = ir_access(m, a, (Expr *[]){bin(m, OP_SUB, V(m, ii), I(m, 1)), bin(m, OP_ADD, V(m, jj), I(m, 1))}, F(m, 1));
    add_stmt(m, k2, ir_def_new(m, z, (Var *[]){ii, jj}, RED_NONE, NULL, 0, bin(m, OP_MUL, ap, F(m, 2))));
    Var *i3 = ir_var_new(m, VAR_INDEX, "i", V(m, R));
    add_stmt(m, k2, ir_def_new(m, q, (Var *[]){i3}, RED_NONE, NULL, 0,
                               ir_access(m, ki, (Expr *[]){bin(m, OP_ADD, V(m, i3), I(m, 2))}, ir_const_i(m, DT_I32, -7))));

    /* u[i] = (x[(i - 1) / 2] ?? -1) + (x[(i - 3) % N] ?? 5): floor division and modulo */
    Kernel *kf = new_kernel(m, "floor_index");
    Var *M = add_size(m, kf, "N");
    Tensor *xf = add_tensor(m, kf, TK_INPUT, "x", DT_F32, 1, (Expr *[]){V(m, M)});
    Tensor *u = add_tensor(m, kf, TK_OUTPUT, "u", DT_F32, 1, (Expr *[]){V(m, M)});
    Var *i4 = ir_var_new(m, VAR_INDEX, "i", V(m, M));
    Expr *half = ir_access(m, xf, (Expr *[]){bin(m, OP_DIV, bin(m, OP_SUB, V(m, i4), I(m, 1)), I(m, 2))}, F(m, -1));
    Expr *wrap = ir_access(m, xf, (Expr *[]){bin(m, OP_MOD, bin(m, OP_SUB, V(m, i4), I(m, 3)), V(m, M))}, F(m, 5));
    add_stmt(m, kf, ir_def_new(m, u, (Var *[]){i4}, RED_NONE, NULL, 0, bin(m, OP_ADD, half, wrap)));

    /* -O0 too: at -O3 LLVM peels the edge iterations, where a stray load would be dead */
    for (int opt = 0; opt <= 3; opt += 3) {
        CpuJit *j = compile_with(m, &(CpuOptions){NULL, NULL, opt});
        for (int64_t n = 1; n <= 9; n += 4) {
            TensorData in[2] = {td_random(DT_F32, 1, &n, 5, -2, 2), td_random(DT_F32, 1, (int64_t[]){3}, 6, -1, 1)};
            check_guarded(j, kc, &n, in, (Tol){1e-6, 1e-6, false});
            check_guarded(j, kf, &n, in, EXACT);
            td_free_all(in, 2);
        }
        const int64_t shapes[][2] = {{1, 1}, {3, 4}, {4, 1}};
        for (int s = 0; s < TD_COUNTOF(shapes); s++) {
            TensorData in[2] = {td_random(DT_F32, 2, shapes[s], 7, -3, 3), td_random(DT_I32, 1, shapes[s], 8, -50, 50)};
            check_guarded(j, k2, shapes[s], in, EXACT);
            td_free_all(in, 2);
        }
        cpu_jit_free(j);
    }
    ir_module_free(m);
}

/* y[i] = select(i > 0, x[i - 1], x[i] * 10): x[-1] must never be read (the bounds proof of
 * the front end may rely on the condition). */
Test(cpu_access, select_reads_only_its_branch)
{
    Module *m = ir_module_new();
    Kernel *k = new_kernel(m, "shift");
    Var *N = add_size(m, k, "N");
    Tensor *x = add_tensor(m, k, TK_INPUT, "x", DT_F32, 1, (Expr *[]){V(m, N)});
    Tensor *y = add_tensor(m, k, TK_OUTPUT, "y", DT_F32, 1, (Expr *[]){V(m, N)});
    Var *i = ir_var_new(m, VAR_INDEX, "i", V(m, N));
    Expr *c = bin(m, OP_GT, V(m, i), I(m, 0));
    Expr *body = ir_ternary(m, OP_SELECT, c, A1(m, x, bin(m, OP_SUB, V(m, i), I(m, 1))),
                            bin(m, OP_MUL, A1(m, x, V(m, i)), F(m, 10)));
    add_stmt(m, k, ir_def_new(m, y, (Var *[]){i}, RED_NONE, NULL, 0, body));
    for (int opt = 0; opt <= 3; opt += 3) {
        CpuJit *j = compile_with(m, &(CpuOptions){NULL, NULL, opt});
        for (int64_t n = 1; n <= 64; n += 21) {
            TensorData in = td_random(DT_F32, 1, &n, 3, -1, 1);
            check_guarded(j, k, &n, &in, EXACT);
            free(in.data);
        }
        cpu_jit_free(j);
    }
    ir_module_free(m);
}

/* ---- reductions -------------------------------------------------------------------------------------------- */

static Kernel *add_reduce(Module *m, const char *name, ReduceOp rop, DType in_t, DType out_t)
{
    Kernel *k = new_kernel(m, name);
    Var *N = add_size(m, k, "N"), *M = add_size(m, k, "M");
    Tensor *tx = add_tensor(m, k, TK_INPUT, "x", in_t, 2, (Expr *[]){V(m, N), V(m, M)});
    Tensor *ty = add_tensor(m, k, TK_OUTPUT, "y", out_t, 1, (Expr *[]){V(m, N)});
    Var *n = ir_var_new(m, VAR_INDEX, "n", V(m, N));
    Var *r = ir_var_new(m, VAR_REDUCE, "m", V(m, M));
    add_stmt(m, k, ir_def_new(m, ty, (Var *[]){n}, rop, (Var *[]){r}, 1, A2(m, tx, V(m, n), V(m, r))));
    return k;
}

Test(cpu_reduce, through_accumulators)
{
    Module *m = ir_module_new();
    Kernel *fsum = add_reduce(m, "fsum", RED_SUM, DT_F32, DT_F32);
    Kernel *fmean = add_reduce(m, "fmean", RED_MEAN, DT_F32, DT_F32);
    Kernel *fprod = add_reduce(m, "fprod", RED_PROD, DT_F32, DT_F32);
    Kernel *fmax = add_reduce(m, "fmax", RED_MAX, DT_F32, DT_F32);
    Kernel *fmin = add_reduce(m, "fmin", RED_MIN, DT_F32, DT_F32);
    Kernel *famax = add_reduce(m, "fargmax", RED_ARGMAX, DT_F32, DT_I32);
    Kernel *famin = add_reduce(m, "fargmin", RED_ARGMIN, DT_F32, DT_I32);
    Kernel *hsum = add_reduce(m, "hsum", RED_SUM, DT_F16, DT_F16);
    Kernel *isum = add_reduce(m, "isum", RED_SUM, DT_I8, DT_I8);
    Kernel *imean = add_reduce(m, "imean", RED_MEAN, DT_I8, DT_I8);
    Kernel *iprod = add_reduce(m, "iprod", RED_PROD, DT_I32, DT_I32);
    Kernel *imax = add_reduce(m, "imax", RED_MAX, DT_U8, DT_U8);
    Kernel *iamin = add_reduce(m, "iargmin", RED_ARGMIN, DT_I16, DT_I32);
    Kernel *any = add_reduce(m, "any", RED_ANY, DT_BOOL, DT_BOOL);
    Kernel *all = add_reduce(m, "all", RED_ALL, DT_BOOL, DT_BOOL);
    CpuJit *j = compile(m);
    const int64_t shapes[][2] = {{1, 1}, {3, 17}, {5, 1000}};
    for (int s = 0; s < TD_COUNTOF(shapes); s++) {
        TensorData f = td_random(DT_F32, 2, shapes[s], 11, -2, 2);
        /* the interpreter sums in double, the lowering in f32: a few ulps of the row's size */
        Tol sum_tol = {1e-5, 1e-5, false};
        check_run(j, fsum, shapes[s], &f, sum_tol);
        check_run(j, fmean, shapes[s], &f, sum_tol);
        check_run(j, fmax, shapes[s], &f, EXACT);
        check_run(j, fmin, shapes[s], &f, EXACT);
        check_run(j, famax, shapes[s], &f, EXACT);
        check_run(j, famin, shapes[s], &f, EXACT);
        TensorData p = td_random(DT_F32, 2, shapes[s], 12, 0.99, 1.01);
        check_run(j, fprod, shapes[s], &p, sum_tol);
        TensorData h = td_random(DT_F16, 2, shapes[s], 13, -2, 2);
        check_run(j, hsum, shapes[s], &h, (Tol){2e-3, 2e-3, false});
        TensorData i8 = td_random(DT_I8, 2, shapes[s], 14, -128, 128);
        check_run(j, isum, shapes[s], &i8, EXACT);
        check_run(j, imean, shapes[s], &i8, EXACT);
        TensorData i32 = td_random(DT_I32, 2, shapes[s], 15, -1e6, 1e6);
        check_run(j, iprod, shapes[s], &i32, EXACT);
        TensorData u8 = td_random(DT_U8, 2, shapes[s], 16, 0, 256);
        check_run(j, imax, shapes[s], &u8, EXACT);
        TensorData i16 = td_random(DT_I16, 2, shapes[s], 17, -5, 5);  /* many ties */
        check_run(j, iamin, shapes[s], &i16, EXACT);
        TensorData b = td_random(DT_BOOL, 2, shapes[s], 18, 0, 1.02);
        check_run(j, any, shapes[s], &b, EXACT);
        check_run(j, all, shapes[s], &b, EXACT);
        td_free_all((TensorData[]){f, p, h, i8, i32, u8, i16, b}, 8);
    }
    /* NaN: max/min propagate it, argmax/argmin point at the first one */
    const int64_t shape[2] = {3, 5};
    TensorData f = td_new(DT_F32, 2, shape, 0);
    const double v[15] = {1, NAN, 5, NAN, 2, -0.0, 0.0, 3, 3, 1, -1, -1, -3, -3, INFINITY};
    for (int e = 0; e < 15; e++) td_set(&f, (size_t)e, v[e]);
    Tol zero = {0, 0, true};
    check_run(j, fmax, shape, &f, zero);
    check_run(j, fmin, shape, &f, zero);
    check_run(j, famax, shape, &f, EXACT);
    check_run(j, famin, shape, &f, EXACT);
    free(f.data);
    cpu_jit_free(j);
    ir_module_free(m);
}

/* ---- scans: forward and reverse loops, states, nesting -------------------------------------------------- */

/* scan t < T [reverse] with S: f32[K] = s0 { S.next[i] = S[i] + x[t, i]; o[t, i] = S.next[i] };
 * last[i] = S[i] */
static Module *cumsum_module(bool reverse)
{
    Module *m = ir_module_new();
    Kernel *k = new_kernel(m, "cumsum");
    Var *T = add_size(m, k, "T"), *K = add_size(m, k, "K");
    Tensor *x = add_tensor(m, k, TK_INPUT, "x", DT_F32, 2, (Expr *[]){V(m, T), V(m, K)});
    Tensor *s0 = add_tensor(m, k, TK_INPUT, "s0", DT_F32, 1, (Expr *[]){V(m, K)});
    Tensor *o = add_tensor(m, k, TK_OUTPUT, "o", DT_F32, 2, (Expr *[]){V(m, T), V(m, K)});
    Tensor *last = add_tensor(m, k, TK_OUTPUT, "last", DT_F32, 1, (Expr *[]){V(m, K)});
    Tensor *S = add_tensor(m, k, TK_STATE, "S", DT_F32, 1, (Expr *[]){V(m, K)});
    Tensor *Sn = add_tensor(m, k, TK_TEMP, "S.next", DT_F32, 1, (Expr *[]){V(m, K)});
    Var *t = ir_var_new(m, VAR_SCAN, "t", V(m, T));
    Stmt *sc = new_scan(m, t, reverse, 1);
    sc->scan.states[0] = (ScanState){S, Sn, NULL, s0};
    Var *i = ir_var_new(m, VAR_INDEX, "i", V(m, K));
    scan_add(m, sc, ir_def_new(m, Sn, (Var *[]){i}, RED_NONE, NULL, 0,
                               bin(m, OP_ADD, A1(m, S, V(m, i)), A2(m, x, V(m, t), V(m, i)))));
    i = ir_var_new(m, VAR_INDEX, "i", V(m, K));
    scan_add(m, sc, ir_def_new(m, o, (Var *[]){t, i}, RED_NONE, NULL, 0, A1(m, Sn, V(m, i))));
    add_stmt(m, k, sc);
    i = ir_var_new(m, VAR_INDEX, "i", V(m, K));
    add_stmt(m, k, ir_def_new(m, last, (Var *[]){i}, RED_NONE, NULL, 0, A1(m, S, V(m, i))));
    return m;
}

static void check_cumsum(bool reverse)
{
    Module *m = cumsum_module(reverse);
    CpuJit *j = compile(m);
    const int64_t sizes[][2] = {{1, 1}, {4, 2}, {9, 5}};
    for (int s = 0; s < TD_COUNTOF(sizes); s++) {
        TensorData in[2] = {td_random(DT_F32, 2, sizes[s], 21, -4, 4), td_random(DT_F32, 1, &sizes[s][1], 22, -9, 9)};
        check_run(j, m->kernels[0], sizes[s], in, EXACT);
        td_free_all(in, 2);
    }
    /* by value: reverse accumulates from the last step */
    int64_t two[2] = {3, 1};
    TensorData in[2] = {td_new(DT_F32, 2, two, 0), td_new(DT_F32, 1, &two[1], 0)};
    for (int e = 0; e < 3; e++) td_set(&in[0], (size_t)e, e + 1);  /* 1 2 3 */
    td_set(&in[1], 0, 100);
    TensorData out[2] = {td_new(DT_F32, 2, two, 0), td_new(DT_F32, 1, &two[1], 0)};
    cr_assert_eq(run_compiled(j, m->kernels[0], two, in, out), 0);
    const float *o = out[0].data;
    if (reverse) cr_assert(o[2] == 103 && o[1] == 105 && o[0] == 106);
    else cr_assert(o[0] == 101 && o[1] == 103 && o[2] == 106);
    cr_assert_eq(*(const float *)out[1].data, 106);
    td_free_all(in, 2);
    td_free_all(out, 2);
    cpu_jit_free(j);
    ir_module_free(m);
}

Test(cpu_scan, forward) { check_cumsum(false); }
Test(cpu_scan, reverse) { check_cumsum(true); }

/* scan t < T with A: i32 = 0 { scan u < U with B: i32 = 0 { B.next = B + 1;
 *   o[t, u] = A * 10 + B.next }; A.next = A + 1 }: rank-0 states, nested loops */
Test(cpu_scan, nested_scalar_states)
{
    Module *m = ir_module_new();
    Kernel *k = new_kernel(m, "nested");
    Var *T = add_size(m, k, "T"), *U = add_size(m, k, "U");
    Tensor *o = add_tensor(m, k, TK_OUTPUT, "o", DT_I32, 2, (Expr *[]){V(m, T), V(m, U)});
    Tensor *A = add_tensor(m, k, TK_STATE, "A", DT_I32, 0, NULL);
    Tensor *An = add_tensor(m, k, TK_TEMP, "A.next", DT_I32, 0, NULL);
    Tensor *B = add_tensor(m, k, TK_STATE, "B", DT_I32, 0, NULL);
    Tensor *Bn = add_tensor(m, k, TK_TEMP, "B.next", DT_I32, 0, NULL);
    Var *t = ir_var_new(m, VAR_SCAN, "t", V(m, T)), *u = ir_var_new(m, VAR_SCAN, "u", V(m, U));
    Stmt *outer = new_scan(m, t, false, 1);
    outer->scan.states[0] = (ScanState){A, An, ir_const_i(m, DT_I32, 0), NULL};
    Stmt *inner = new_scan(m, u, true, 1);
    inner->scan.states[0] = (ScanState){B, Bn, ir_const_i(m, DT_I32, 0), NULL};
    scan_add(m, inner, ir_def_new(m, Bn, NULL, RED_NONE, NULL, 0, bin(m, OP_ADD, A0(m, B), ir_const_i(m, DT_I32, 1))));
    scan_add(m, inner, ir_def_new(m, o, (Var *[]){t, u}, RED_NONE, NULL, 0,
                                  bin(m, OP_ADD, bin(m, OP_MUL, A0(m, A), ir_const_i(m, DT_I32, 10)), A0(m, Bn))));
    scan_add(m, outer, inner);
    scan_add(m, outer, ir_def_new(m, An, NULL, RED_NONE, NULL, 0, bin(m, OP_ADD, A0(m, A), ir_const_i(m, DT_I32, 1))));
    add_stmt(m, k, outer);
    CpuJit *j = compile(m);
    check_run(j, k, (int64_t[]){3, 4}, NULL, EXACT);
    TensorData out = td_new(DT_I32, 2, (int64_t[]){3, 4}, 0);
    cr_assert_eq(run_compiled(j, k, (int64_t[]){3, 4}, NULL, &out), 0);
    const int32_t *os = out.data;
    for (int a = 0; a < 3; a++)
        for (int b = 0; b < 4; b++) cr_assert_eq(os[a * 4 + b], 10 * a + (4 - b), "o[%d, %d]", a, b);
    free(out.data);
    cpu_jit_free(j);
    ir_module_free(m);
}

/* ---- allocations ------------------------------------------------------------------------------------------ */

/* p[i, j] = x[i] * x[j] (a heap temporary), y[i] = sum[j] p[i, j]; and a kernel whose
 * temporary cannot exist (N^4 elements overflow): it returns -1 and frees what it took. */
Test(cpu_alloc, heap_temporaries_and_failure)
{
    Module *m = ir_module_new();
    Kernel *k = new_kernel(m, "outer");
    Var *N = add_size(m, k, "N");
    Tensor *x = add_tensor(m, k, TK_INPUT, "x", DT_I16, 1, (Expr *[]){V(m, N)});
    Tensor *y = add_tensor(m, k, TK_OUTPUT, "y", DT_I16, 1, (Expr *[]){V(m, N)});
    Tensor *p = add_tensor(m, k, TK_TEMP, "p", DT_I16, 2, (Expr *[]){V(m, N), V(m, N)});
    Tensor *h = add_tensor(m, k, TK_TEMP, "h", DT_U4, 1, (Expr *[]){V(m, N)});
    Var *i = ir_var_new(m, VAR_INDEX, "i", V(m, N)), *jv = ir_var_new(m, VAR_INDEX, "j", V(m, N));
    add_stmt(m, k, ir_def_new(m, p, (Var *[]){i, jv}, RED_NONE, NULL, 0,
                              bin(m, OP_MUL, A1(m, x, V(m, i)), A1(m, x, V(m, jv)))));
    Var *i2 = ir_var_new(m, VAR_INDEX, "i", V(m, N));
    add_stmt(m, k, ir_def_new(m, h, (Var *[]){i2}, RED_NONE, NULL, 0, ir_cast(m, DT_U4, A1(m, x, V(m, i2)))));
    Var *i3 = ir_var_new(m, VAR_INDEX, "i", V(m, N)), *r = ir_var_new(m, VAR_REDUCE, "j", V(m, N));
    add_stmt(m, k, ir_def_new(m, y, (Var *[]){i3}, RED_SUM, (Var *[]){r}, 1,
                              bin(m, OP_ADD, A2(m, p, V(m, i3), V(m, r)), ir_cast(m, DT_I16, A1(m, h, V(m, r))))));

    Kernel *kh = new_kernel(m, "huge");
    Var *M = add_size(m, kh, "N");
    Tensor *x2 = add_tensor(m, kh, TK_INPUT, "x", DT_F32, 1, (Expr *[]){V(m, M)});
    Tensor *y2 = add_tensor(m, kh, TK_OUTPUT, "y", DT_F32, 1, (Expr *[]){V(m, M)});
    Tensor *big = add_tensor(m, kh, TK_TEMP, "big", DT_F32, 4, (Expr *[]){V(m, M), V(m, M), V(m, M), V(m, M)});
    Var *b[4];
    for (int a = 0; a < 4; a++) b[a] = ir_var_new(m, VAR_INDEX, "b", V(m, M));
    add_stmt(m, kh, ir_def_new(m, big, b, RED_NONE, NULL, 0, A1(m, x2, V(m, b[0]))));
    Var *i4 = ir_var_new(m, VAR_INDEX, "i", V(m, M));
    add_stmt(m, kh, ir_def_new(m, y2, (Var *[]){i4}, RED_NONE, NULL, 0,
                               ir_access(m, big, (Expr *[]){V(m, i4), V(m, i4), V(m, i4), V(m, i4)}, NULL)));
    CpuJit *j = compile(m);
    for (int64_t n = 1; n <= 40; n += 13) {
        TensorData in = td_random(DT_I16, 1, &n, 31, -300, 300);
        check_run(j, k, &n, &in, EXACT);
        free(in.data);
    }
    int64_t n = 3;
    TensorData in = td_random(DT_F32, 1, &n, 1, 0, 1);
    check_run(j, kh, &n, &in, EXACT);  /* small enough to work */
    free(in.data);
    n = (int64_t)1 << 16;                /* 2^64 elements */
    TensorData out = td_new(DT_F32, 1, &n, 0);
    in = td_new(DT_F32, 1, &n, 0);
    cr_assert_eq(run_compiled(j, kh, &n, &in, &out), -1);
    td_free_all((TensorData[]){in, out}, 2);
    cpu_jit_free(j);
    ir_module_free(m);
}

/* ---- the stdlib softmax, from source ------------------------------------------------------------------- */

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static Module *compile_source(const char *path)
{
    DiagSink d;
    diag_init(&d, stderr);
    FeOptions fo = {NULL, 0, NULL};
    Module *m = fe_compile_file(path, &fo, &d);
    cr_assert(m && d.nerrors == 0, "front end failed on %s", path);
    diag_free(&d);
    return m;
}

static Kernel *find_kernel(Module *m, const char *name)
{
    for (int i = 0; i < m->nkernels; i++)
        if (strcmp(m->kernels[i]->name, name) == 0) return m->kernels[i];
    cr_assert_fail("no kernel %s", name);
    return NULL;
}

/* Compiles stdlib/nn.tdsl's softmax kernel alone (source to callable) and checks it. */
Test(cpu_stdlib, softmax_and_compile_time)
{
    const char *path = TDSL_SOURCE_DIR "/stdlib/nn.tdsl";
    ir_module_free(compile_source(path));  /* warm: target initialisation, file cache */
    double best = 1e9;
    for (int rep = 0; rep < 3; rep++) {
        double t0 = now_ms();
        Module *m = compile_source(path);
        /* keep only the softmax kernel, as a JIT user compiling one kernel would */
        Kernel *k = find_kernel(m, "softmax");
        m->kernels[0] = k;
        m->nkernels = 1;
        LoopModule *lm = ir_lower_module(m, NULL);
        StrBuf err = {0};
        CpuJit *j = cpu_jit_compile(lm, NULL, &err);
        double t1 = now_ms();
        cr_assert(j, "%s", sb_cstr(&err));
        sb_free(&err);
        if (t1 - t0 < best) best = t1 - t0;
        const int64_t sizes[][2] = {{1, 1}, {3, 7}, {4, 1000}};
        for (int s = 0; s < TD_COUNTOF(sizes); s++) {
            TensorData in = td_random(DT_F32, 2, sizes[s], 41, -10, 10);
            check_run(j, k, sizes[s], &in, (Tol){2e-5, 1e-7, false});
            free(in.data);
        }
        cpu_jit_free(j);
        ir_module_free(m);
    }
    fprintf(stderr, "test_cpu: stdlib softmax, source to callable: %.1f ms (best of 3)\n", best);
}

/* Every stdlib nn kernel, compiled together, against the interpreter. */
Test(cpu_stdlib, nn_kernels)
{
    Module *m = compile_source(TDSL_SOURCE_DIR "/stdlib/nn.tdsl");
    CpuJit *j = compile(m);
    for (int i = 0; i < m->nkernels; i++) {
        const Kernel *k = m->kernels[i];
        int64_t sizes[8];
        TensorData ins[8];
        for (int s = 0; s < k->nsizes; s++) sizes[s] = 3 + 2 * s;
        for (int p = 0; p < k->nins; p++) {
            int64_t shape[IR_MAX_RANK];
            out_shape(k, k->ins[p], sizes, shape);
            ins[p] = td_random(k->ins[p]->dtype, k->ins[p]->rank, shape, 50u + (uint32_t)p, -3, 3);
        }
        check_run(j, k, sizes, ins, (Tol){3e-5, 1e-4, false});
        td_free_all(ins, k->nins);
    }
    cpu_jit_free(j);
    ir_module_free(m);
}

/* ---- options, emission, threads ------------------------------------------------------------------------ */

/* The f16 kernels at every opt level, and on a plain x86-64 (no F16C: half conversions
 * become library calls the JIT resolves from the process). */
Test(cpu_options, opt_levels_and_generic_cpu)
{
    const CpuOptions opts[] = {{NULL, NULL, 0}, {NULL, NULL, 1}, {NULL, NULL, 2}, {"x86-64", "", 3},
                               {"x86-64-v3", NULL, 2}};
    for (int o = 0; o < TD_COUNTOF(opts); o++) {
        Module *m = ir_module_new();
        Kernel *ka = add_ew(m, "add", OP_ADD, DT_F16, 2, DT_F16);
        Kernel *ke = add_ew(m, "exp", OP_EXP, DT_BF16, 1, DT_BF16);
        Kernel *kc = add_ew(m, "cast", OP_CAST, DT_F64, 1, DT_F16);
        Kernel *kd = add_ew(m, "div", OP_DIV, DT_I4, 2, DT_I4);
        CpuJit *j = compile_with(m, &opts[o]);
        int64_t n = 301;
        TensorData h[2] = {td_random(DT_F16, 1, &n, 1, -100, 100), td_random(DT_F16, 1, &n, 2, -100, 100)};
        TensorData bf = td_random(DT_BF16, 1, &n, 3, -10, 10), d = td_random(DT_F64, 1, &n, 4, -7e4, 7e4);
        TensorData q[2] = {td_random(DT_I4, 1, &n, 5, -8, 8), td_random(DT_I4, 1, &n, 6, -8, 8)};
        check_run(j, ka, &n, h, EXACT);
        check_run(j, ke, &n, &bf, EXACT);
        check_run(j, kc, &n, &d, EXACT);
        check_run(j, kd, &n, q, EXACT);
        td_free_all(h, 2);
        td_free_all(q, 2);
        td_free_all((TensorData[]){bf, d}, 2);
        cpu_jit_free(j);
        ir_module_free(m);
    }
}

Test(cpu_emit, llvm_asm_obj)
{
    Module *m = ir_module_new();
    add_ew(m, "axpy", OP_FMA, DT_F32, 3, DT_F32);
    add_ew(m, "halve", OP_DIV, DT_I8, 2, DT_I8);
    LoopModule *lm = ir_lower_module(m, NULL);
    for (int kind = CPU_EMIT_LLVM; kind <= CPU_EMIT_OBJ; kind++) {
        StrBuf out = {0}, err = {0};
        bool ok = cpu_emit(lm, NULL, (CpuEmitKind)kind, &out, &err);
        cr_assert(ok, "cpu_emit %d: %s", kind, sb_cstr(&err));
        if (kind == CPU_EMIT_LLVM) {
            cr_assert(strstr(sb_cstr(&out), "@tdsl_raw_axpy(ptr"), "%s", sb_cstr(&out));
            cr_assert(strstr(sb_cstr(&out), "@tdsl_raw_halve"));
        } else if (kind == CPU_EMIT_ASM) {
            cr_assert(strstr(sb_cstr(&out), "tdsl_raw_axpy:"));
        } else {
            cr_assert(out.len > 64 && memcmp(out.data, "\x7f" "ELF", 4) == 0);
        }
        sb_free(&out);
        sb_free(&err);
    }
    StrBuf name = {0};
    cpu_symbol_name("softmax", &name);
    cr_assert_str_eq(sb_cstr(&name), "tdsl_raw_softmax");
    sb_free(&name);
    ir_module_free(m);
}

Test(cpu_emit, explicit_cpu_and_lookup)
{
    Module *m = ir_module_new();
    add_ew(m, "neg", OP_NEG, DT_F32, 1, DT_F32);
    LoopModule *lm = ir_lower_module(m, NULL);
    StrBuf err = {0};
    CpuOptions o = {"x86-64", "+sse2", 2};
    CpuJit *j = cpu_jit_compile(lm, &o, &err);  /* a valid, explicit configuration */
    cr_assert(j, "%s", sb_cstr(&err));
    cr_assert_null(cpu_jit_lookup(j, "missing"));
    cr_assert_not_null(cpu_jit_lookup(j, "neg"));
    cpu_jit_free(j);
    cpu_jit_free(NULL);
    sb_free(&err);
    ir_module_free(m);
}

/* Four threads build, compile and run their own modules at the same time. */
static void *thread_body(void *arg)
{
    int seed = *(int *)arg;
    for (int rep = 0; rep < 3; rep++) {
        Module *m = ir_module_new();
        Kernel *k = add_ew(m, "mix", OP_FMA, DT_F32, 3, DT_F32);
        LoopModule *lm = ir_lower_module(m, NULL);
        StrBuf err = {0};
        CpuJit *j = cpu_jit_compile(lm, NULL, &err);
        if (!j) {
            fprintf(stderr, "thread %d: %s\n", seed, sb_cstr(&err));
            sb_free(&err);
            ir_module_free(m);
            return (void *)1;
        }
        sb_free(&err);
        int64_t n = 1000;
        TensorData in[3];
        for (int a = 0; a < 3; a++) in[a] = td_random(DT_F32, 1, &n, (uint32_t)(seed * 10 + a), -5, 5);
        TensorData out = td_new(DT_F32, 1, &n, 0);
        void *bufs[4] = {in[0].data, in[1].data, in[2].data, out.data};
        intptr_t bad = cpu_jit_lookup(j, k->name)(bufs, &n) != 0;
        const float *a = in[0].data, *b = in[1].data, *c = in[2].data, *y = out.data;
        for (int64_t e = 0; e < n; e++) bad |= y[e] != fmaf(a[e], b[e], c[e]);
        td_free_all(in, 3);
        free(out.data);
        cpu_jit_free(j);
        ir_module_free(m);
        if (bad) return (void *)1;
    }
    return NULL;
}

Test(cpu_threads, concurrent_compiles)
{
    pthread_t th[4];
    int seeds[4] = {1, 2, 3, 4};
    for (int i = 0; i < 4; i++) cr_assert_eq(pthread_create(&th[i], NULL, thread_body, &seeds[i]), 0);
    for (int i = 0; i < 4; i++) {
        void *r;
        pthread_join(th[i], &r);
        cr_assert_null(r, "thread %d failed", i);
    }
}
