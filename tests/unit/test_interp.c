/* Unit tests of ir/interp.c, the reference interpreter: scalar semantics (rounding, wrap,
 * saturating casts, division), every reduction, accesses (padded, i / 2, i % 2), scans
 * (forward, reverse, nested, state from a tensor), softmax and matmul against direct C,
 * and clean failures. Every kernel is built by hand and passes ir_verify before it runs. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ir/ir.h"
#include "ir_build.h"

/* ---- running kernels on Value arrays ------------------------------------------------------ */

/* A caller-side tensor: values in Value form, converted to and from storage layout. */
typedef struct Arg {
    DType        dtype;
    int          rank;
    int64_t      shape[IR_MAX_RANK];
    const Value *in;    /* input values (NULL for outputs) */
    Value       *out;   /* output values (NULL for inputs) */
} Arg;

static size_t arg_count(const Arg *a)
{
    size_t n = 1;
    for (int i = 0; i < a->rank; i++) n *= (size_t)a->shape[i];
    return n;
}

static TensorData to_storage(const Arg *a)
{
    TensorData td = {.dtype = a->dtype, .rank = a->rank};
    memcpy(td.shape, a->shape, sizeof td.shape);
    size_t n = arg_count(a);
    dtype_storage_bytes(a->dtype, n, &td.nbytes);
    td.data = calloc(td.nbytes ? td.nbytes : 1, 1);
    for (size_t j = 0; a->in && j < n; j++) {
        if (dtype_is_float(a->dtype)) dtype_store_f(a->dtype, td.data, j, a->in[j].f);
        else dtype_store_i(a->dtype, td.data, j, a->in[j].i);
    }
    return td;
}

/* Runs k; returns the interpreter's verdict and leaves its message in err. */
static bool run_args(const Kernel *k, const int64_t *sizes, Arg *ins, Arg *outs, StrBuf *err)
{
    TensorData tin[8], tout[8];
    for (int i = 0; i < k->nins; i++) tin[i] = to_storage(&ins[i]);
    for (int i = 0; i < k->nouts; i++) tout[i] = to_storage(&outs[i]);
    bool ok = ir_interp_run(k, sizes, tin, tout, err);
    for (int i = 0; i < k->nouts; i++) {
        size_t n = arg_count(&outs[i]);
        for (size_t j = 0; ok && j < n; j++) {
            if (dtype_is_float(outs[i].dtype)) outs[i].out[j].f = dtype_load_f(outs[i].dtype, tout[i].data, j);
            else outs[i].out[j].i = dtype_load_i(outs[i].dtype, tout[i].data, j);
        }
        free(tout[i].data);
    }
    for (int i = 0; i < k->nins; i++) free(tin[i].data);
    return ok;
}

static void run_ok(const Kernel *k, const int64_t *sizes, Arg *ins, Arg *outs)
{
    StrBuf err = {0};
    bool ok = run_args(k, sizes, ins, outs, &err);
    cr_assert(ok, "interpreter: %s", sb_cstr(&err));
    sb_free(&err);
}

/* ---- element-wise kernels: y[i] = f(a[i], b[i]) ---------------------------------------------- */

typedef Expr *(*BodyFn)(Module *m, Expr *a, Expr *b);

static void run_ew(DType in_t, DType out_t, BodyFn f, const Value *a, const Value *b, Value *y,
                   int n)
{
    Module *m = ir_module_new();
    Kernel *k = ir_kernel_new(m, "ew");
    ir_kernel_add(m, k);
    Var *N = add_size(m, k, "N");
    Tensor *ta = add_tensor(m, k, TK_INPUT, "a", in_t, 1, (Expr *[]){V(m, N)});
    Tensor *tb = add_tensor(m, k, TK_INPUT, "b", in_t, 1, (Expr *[]){V(m, N)});
    Tensor *ty = add_tensor(m, k, TK_OUTPUT, "y", out_t, 1, (Expr *[]){V(m, N)});
    Var *i = ir_var_new(m, VAR_INDEX, "i", V(m, N));
    Expr *body = f(m, A1(m, ta, V(m, i)), A1(m, tb, V(m, i)));
    add_stmt(m, k, ir_def_new(m, ty, (Var *[]){i}, RED_NONE, NULL, 0, body));
    assert_verifies(m);
    int64_t sizes[1] = {n};
    Arg ins[2] = {{in_t, 1, {n}, a, NULL}, {in_t, 1, {n}, b ? b : a, NULL}};
    Arg outs[1] = {{out_t, 1, {n}, NULL, y}};
    run_ok(k, sizes, ins, outs);
    ir_module_free(m);
}

static Expr *f_add(Module *m, Expr *a, Expr *b) { return bin(m, OP_ADD, a, b); }
static Expr *f_mul(Module *m, Expr *a, Expr *b) { return bin(m, OP_MUL, a, b); }
static Expr *f_div(Module *m, Expr *a, Expr *b) { return bin(m, OP_DIV, a, b); }
static Expr *f_mod(Module *m, Expr *a, Expr *b) { return bin(m, OP_MOD, a, b); }
static Expr *f_pow(Module *m, Expr *a, Expr *b) { return bin(m, OP_POW, a, b); }
static Expr *f_min(Module *m, Expr *a, Expr *b) { return bin(m, OP_MIN, a, b); }
static Expr *f_max(Module *m, Expr *a, Expr *b) { return bin(m, OP_MAX, a, b); }
static Expr *f_neg(Module *m, Expr *a, Expr *b) { (void)b; return ir_unary(m, OP_NEG, a); }
static Expr *f_abs(Module *m, Expr *a, Expr *b) { (void)b; return ir_unary(m, OP_ABS, a); }
static Expr *f_round(Module *m, Expr *a, Expr *b) { (void)b; return ir_unary(m, OP_ROUND, a); }
static Expr *f_sign(Module *m, Expr *a, Expr *b) { (void)b; return ir_unary(m, OP_SIGN, a); }
static Expr *f_to_i8(Module *m, Expr *a, Expr *b) { (void)b; return ir_cast(m, DT_I8, a); }
static Expr *f_to_u8(Module *m, Expr *a, Expr *b) { (void)b; return ir_cast(m, DT_U8, a); }
static Expr *f_to_i32(Module *m, Expr *a, Expr *b) { (void)b; return ir_cast(m, DT_I32, a); }
static Expr *f_to_bool(Module *m, Expr *a, Expr *b) { (void)b; return ir_cast(m, DT_BOOL, a); }
static Expr *f_to_f16(Module *m, Expr *a, Expr *b) { (void)b; return ir_cast(m, DT_F16, a); }
static Expr *f_to_i4(Module *m, Expr *a, Expr *b) { (void)b; return ir_cast(m, DT_I4, a); }
static Expr *f_i32_to_i8(Module *m, Expr *a, Expr *b)
{
    (void)b;
    return ir_cast(m, DT_I8, ir_cast(m, DT_I32, a));
}

static Value vf(double f) { return (Value){.f = f}; }
static Value vi(int64_t i) { return (Value){.i = i}; }

Test(interp_scalar, saturating_casts)
{
    Value x[] = {vf(300.7), vf(-300.7), vf(NAN), vf(1.9), vf(-1.9), vf(-1e30), vf(1e30), vf(0)};
    enum { n = TD_COUNTOF(x) };
    Value y[n];
    int64_t want_i8[n] = {127, -128, 0, 1, -1, -128, 127, 0};
    run_ew(DT_F32, DT_I8, f_to_i8, x, NULL, y, n);
    for (int j = 0; j < n; j++) cr_assert_eq(y[j].i, want_i8[j], "i8 [%d] = %lld", j, (long long)y[j].i);
    int64_t want_i32[n] = {300, -300, 0, 1, -1, INT32_MIN, INT32_MAX, 0};
    run_ew(DT_F32, DT_I32, f_to_i32, x, NULL, y, n);
    for (int j = 0; j < n; j++) cr_assert_eq(y[j].i, want_i32[j], "i32 [%d]", j);
    int64_t want_u8[n] = {255, 0, 0, 1, 0, 0, 255, 0};
    run_ew(DT_F32, DT_U8, f_to_u8, x, NULL, y, n);
    for (int j = 0; j < n; j++) cr_assert_eq(y[j].i, want_u8[j], "u8 [%d]", j);
    run_ew(DT_F32, DT_I8, f_i32_to_i8, x, NULL, y, n);  /* int to int saturates too */
    for (int j = 0; j < n; j++) cr_assert_eq(y[j].i, want_i8[j], "i32->i8 [%d]", j);
    int64_t want_b[n] = {1, 1, 1, 1, 1, 1, 1, 0};  /* != 0; NaN is true */
    run_ew(DT_F32, DT_BOOL, f_to_bool, x, NULL, y, n);
    for (int j = 0; j < n; j++) cr_assert_eq(y[j].i, want_b[j], "bool [%d]", j);
    run_ew(DT_F32, DT_F16, f_to_f16, x, NULL, y, n);
    cr_assert_eq(y[0].f, 300.75);  /* f16 spacing is 0.25 here */
    cr_assert(isnan(y[2].f));
    cr_assert(isinf(y[5].f) && y[5].f < 0);
    Value h[] = {vf(7.9), vf(-8.5), vf(100), vf(-3), vf(2)};
    Value hy[5];
    run_ew(DT_F32, DT_I4, f_to_i4, h, NULL, hy, 5);  /* packed output, odd count */
    int64_t want_h[5] = {7, -8, 7, -3, 2};
    for (int j = 0; j < 5; j++) cr_assert_eq(hy[j].i, want_h[j], "i4 [%d]", j);
}

Test(interp_scalar, integer_wrap)
{
    Value y[4];
    run_ew(DT_I8, DT_I8, f_add, (Value[]){vi(127), vi(-128), vi(100), vi(5)},
           (Value[]){vi(1), vi(-1), vi(100), vi(-5)}, y, 4);
    cr_assert(y[0].i == -128 && y[1].i == 127 && y[2].i == -56 && y[3].i == 0);
    run_ew(DT_I4, DT_I4, f_add, (Value[]){vi(7), vi(-8), vi(3)}, (Value[]){vi(1), vi(-1), vi(4)}, y, 3);
    cr_assert(y[0].i == -8 && y[1].i == 7 && y[2].i == 7);
    run_ew(DT_U4, DT_U4, f_add, (Value[]){vi(15), vi(0), vi(9)}, (Value[]){vi(1), vi(0), vi(9)}, y, 3);
    cr_assert(y[0].i == 0 && y[1].i == 0 && y[2].i == 2);
    run_ew(DT_I2, DT_I2, f_add, (Value[]){vi(1), vi(-2), vi(-1)}, (Value[]){vi(1), vi(-1), vi(1)}, y, 3);
    cr_assert(y[0].i == -2 && y[1].i == 1 && y[2].i == 0);
    run_ew(DT_I8, DT_I8, f_mul, (Value[]){vi(16), vi(-128)}, (Value[]){vi(16), vi(-1)}, y, 2);
    cr_assert(y[0].i == 0 && y[1].i == -128);
    run_ew(DT_I32, DT_I32, f_add, (Value[]){vi(INT32_MAX)}, (Value[]){vi(1)}, y, 1);
    cr_assert_eq(y[0].i, INT32_MIN);
    run_ew(DT_I8, DT_I8, f_neg, (Value[]){vi(-128), vi(5)}, NULL, y, 2);
    cr_assert(y[0].i == -128 && y[1].i == -5);
    run_ew(DT_I8, DT_I8, f_abs, (Value[]){vi(-128), vi(-5)}, NULL, y, 2);
    cr_assert(y[0].i == -128 && y[1].i == 5);
    run_ew(DT_I64, DT_I64, f_add, (Value[]){vi(INT64_MAX)}, (Value[]){vi(1)}, y, 1);
    cr_assert_eq(y[0].i, INT64_MIN);
}

Test(interp_scalar, integer_division)
{
    Value a[] = {vi(7), vi(-7), vi(7), vi(-7), vi(5), vi(INT32_MIN), vi(0), vi(-5)};
    Value b[] = {vi(2), vi(2), vi(-2), vi(-2), vi(0), vi(-1), vi(3), vi(0)};
    enum { n = TD_COUNTOF(a) };
    Value y[n];
    int64_t want_div[n] = {3, -3, -3, 3, 0, INT32_MIN, 0, 0};
    int64_t want_mod[n] = {1, -1, 1, -1, 5, 0, 0, -5};
    run_ew(DT_I32, DT_I32, f_div, a, b, y, n);
    for (int j = 0; j < n; j++) cr_assert_eq(y[j].i, want_div[j], "div [%d] = %lld", j, (long long)y[j].i);
    run_ew(DT_I32, DT_I32, f_mod, a, b, y, n);
    for (int j = 0; j < n; j++) cr_assert_eq(y[j].i, want_mod[j], "mod [%d] = %lld", j, (long long)y[j].i);
    run_ew(DT_I64, DT_I64, f_div, (Value[]){vi(INT64_MIN)}, (Value[]){vi(-1)}, y, 1);
    cr_assert_eq(y[0].i, INT64_MIN);
    run_ew(DT_I64, DT_I64, f_mod, (Value[]){vi(INT64_MIN)}, (Value[]){vi(-1)}, y, 1);
    cr_assert_eq(y[0].i, 0);
    run_ew(DT_F32, DT_F32, f_mod, (Value[]){vf(-7.5), vf(7.5)}, (Value[]){vf(2), vf(-2)}, y, 2);
    cr_assert(y[0].f == -1.5 && y[1].f == 1.5);  /* fmod: sign of the dividend */
    run_ew(DT_F32, DT_F32, f_div, (Value[]){vf(1), vf(0)}, (Value[]){vf(0), vf(0)}, y, 2);
    cr_assert(isinf(y[0].f) && isnan(y[1].f));
}

Test(interp_scalar, integer_pow)
{
    Value a[] = {vi(3), vi(2), vi(-1), vi(1), vi(0), vi(-2), vi(5)};
    Value b[] = {vi(4), vi(-1), vi(-3), vi(-5), vi(0), vi(3), vi(0)};
    Value y[7];
    run_ew(DT_I32, DT_I32, f_pow, a, b, y, 7);
    int64_t want[7] = {81, 0, -1, 1, 1, -8, 1};
    for (int j = 0; j < 7; j++) cr_assert_eq(y[j].i, want[j], "pow [%d]", j);
    run_ew(DT_I8, DT_I8, f_pow, (Value[]){vi(2), vi(3)}, (Value[]){vi(7), vi(5)}, y, 2);
    cr_assert(y[0].i == -128 && y[1].i == (int8_t)243);
}

Test(interp_scalar, float_ops)
{
    Value y[6];
    run_ew(DT_F32, DT_F32, f_round, (Value[]){vf(0.5), vf(1.5), vf(2.5), vf(-0.5), vf(-2.5), vf(2.6)},
           NULL, y, 6);
    double want_r[6] = {0, 2, 2, -0.0, -2, 3};
    for (int j = 0; j < 6; j++) cr_assert_eq(y[j].f, want_r[j], "round [%d]", j);
    run_ew(DT_F32, DT_F32, f_sign, (Value[]){vf(-3), vf(0), vf(NAN), vf(0.25)}, NULL, y, 4);
    cr_assert(y[0].f == -1 && y[1].f == 0 && isnan(y[2].f) && y[3].f == 1);
    run_ew(DT_F32, DT_F32, f_min, (Value[]){vf(1), vf(NAN), vf(3)}, (Value[]){vf(NAN), vf(2), vf(-1)}, y, 3);
    cr_assert(isnan(y[0].f) && isnan(y[1].f) && y[2].f == -1);
    run_ew(DT_F32, DT_F32, f_max, (Value[]){vf(1), vf(NAN), vf(3)}, (Value[]){vf(NAN), vf(2), vf(-1)}, y, 3);
    cr_assert(isnan(y[0].f) && isnan(y[1].f) && y[2].f == 3);
    run_ew(DT_F32, DT_F32, f_pow, (Value[]){vf(2), vf(9)}, (Value[]){vf(0.5), vf(0.5)}, y, 2);
    cr_assert(y[0].f == (double)(float)sqrt(2.0) && y[1].f == 3);
    run_ew(DT_I32, DT_I32, f_sign, (Value[]){vi(-7), vi(0), vi(9)}, NULL, y, 3);
    cr_assert(y[0].i == -1 && y[1].i == 0 && y[2].i == 1);
}

Test(interp_scalar, rounding_per_op)
{
    Value y[3];
    /* f16: 2048 + 1 is a tie between 2048 and 2050: even mantissa wins */
    run_ew(DT_F16, DT_F16, f_add, (Value[]){vf(2048), vf(2048), vf(65504)},
           (Value[]){vf(1), vf(3), vf(16)}, y, 3);
    cr_assert(y[0].f == 2048 && y[1].f == 2052 && isinf(y[2].f));
    run_ew(DT_F32, DT_F32, f_add, (Value[]){vf(16777216), vf(0.1)}, (Value[]){vf(1), vf(0.2)}, y, 2);
    cr_assert(y[0].f == 16777216 && y[1].f == (double)(0.1f + 0.2f));
    run_ew(DT_BF16, DT_BF16, f_add, (Value[]){vf(256)}, (Value[]){vf(1)}, y, 1);
    cr_assert_eq(y[0].f, 256);  /* 8 bits of precision */
    run_ew(DT_F64, DT_F64, f_add, (Value[]){vf(0.1)}, (Value[]){vf(0.2)}, y, 1);
    cr_assert_eq(y[0].f, 0.1 + 0.2);
}

static Expr *f_misc(Module *m, Expr *a, Expr *b)
{
    /* select(a > b, clamp(a, -1, 1), fma(a, b, 1)) + sigmoid(0) + rsqrt(4) */
    Expr *c = ir_ternary(m, OP_CLAMP, a, F(m, -1), F(m, 1));
    Expr *f = ir_ternary(m, OP_FMA, a, b, F(m, 1));
    Expr *s = ir_ternary(m, OP_SELECT, bin(m, OP_GT, a, b), c, f);
    Expr *k = bin(m, OP_ADD, ir_unary(m, OP_SIGMOID, F(m, 0)), ir_unary(m, OP_RSQRT, F(m, 4)));
    return bin(m, OP_ADD, s, k);
}

Test(interp_scalar, select_clamp_fma)
{
    Value y[3];
    run_ew(DT_F32, DT_F32, f_misc, (Value[]){vf(5), vf(-5), vf(2)}, (Value[]){vf(0), vf(3), vf(3)}, y, 3);
    cr_assert(y[0].f == 2 && y[1].f == -13 && y[2].f == 8);
}

/* y[i] = f32(i) * f32(N) + f32(isnan(x[i])) : variables and sizes used as values */
Test(interp_scalar, variables_as_values)
{
    Module *m = ir_module_new();
    Kernel *k = ir_kernel_new(m, "vars");
    ir_kernel_add(m, k);
    Var *N = add_size(m, k, "N");
    Tensor *x = add_tensor(m, k, TK_INPUT, "x", DT_F32, 1, (Expr *[]){V(m, N)});
    Tensor *y = add_tensor(m, k, TK_OUTPUT, "y", DT_F32, 1, (Expr *[]){V(m, N)});
    Var *i = ir_var_new(m, VAR_INDEX, "i", V(m, N));
    Expr *body = bin(m, OP_ADD,
                     bin(m, OP_MUL, ir_cast(m, DT_F32, V(m, i)), ir_cast(m, DT_F32, V(m, N))),
                     ir_cast(m, DT_F32, ir_unary(m, OP_ISNAN, A1(m, x, V(m, i)))));
    add_stmt(m, k, ir_def_new(m, y, (Var *[]){i}, RED_NONE, NULL, 0, body));
    assert_verifies(m);
    Value xs[3] = {vf(0), vf(NAN), vf(1)}, ys[3];
    Arg ins[1] = {{DT_F32, 1, {3}, xs, NULL}}, outs[1] = {{DT_F32, 1, {3}, NULL, ys}};
    run_ok(k, (int64_t[]){3}, ins, outs);
    cr_assert(ys[0].f == 0 && ys[1].f == 4 && ys[2].f == 6);
    ir_module_free(m);
}

/* ---- reductions: y[n] = rop[m < M] x[n, m] ------------------------------------------------------ */

static void run_reduce(ReduceOp rop, DType in_t, DType out_t, const Value *x, int rows, int cols,
                       Value *y)
{
    Module *m = ir_module_new();
    Kernel *k = ir_kernel_new(m, "red");
    ir_kernel_add(m, k);
    Var *N = add_size(m, k, "N"), *M = add_size(m, k, "M");
    Tensor *tx = add_tensor(m, k, TK_INPUT, "x", in_t, 2, (Expr *[]){V(m, N), V(m, M)});
    Tensor *ty = add_tensor(m, k, TK_OUTPUT, "y", out_t, 1, (Expr *[]){V(m, N)});
    Var *n = ir_var_new(m, VAR_INDEX, "n", V(m, N));
    Var *r = ir_var_new(m, VAR_REDUCE, "m", V(m, M));
    add_stmt(m, k, ir_def_new(m, ty, (Var *[]){n}, rop, (Var *[]){r}, 1, A2(m, tx, V(m, n), V(m, r))));
    assert_verifies(m);
    Arg ins[1] = {{in_t, 2, {rows, cols}, x, NULL}}, outs[1] = {{out_t, 1, {rows}, NULL, y}};
    run_ok(k, (int64_t[]){rows, cols}, ins, outs);
    ir_module_free(m);
}

Test(interp_reduce, float_reductions)
{
    Value x[] = {vf(1), vf(2), vf(3), vf(4),      /* plain */
                 vf(1), vf(NAN), vf(5), vf(NAN),  /* NaN: propagates, first NaN is the arg */
                 vf(1), vf(3), vf(3), vf(2),      /* ties: the first wins */
                 vf(-1), vf(-1), vf(-3), vf(-3)};
    Value y[4];
    run_reduce(RED_SUM, DT_F32, DT_F32, x, 4, 4, y);
    cr_assert(y[0].f == 10 && isnan(y[1].f) && y[2].f == 9 && y[3].f == -8);
    run_reduce(RED_PROD, DT_F32, DT_F32, x, 4, 4, y);
    cr_assert(y[0].f == 24 && y[2].f == 18 && y[3].f == 9);
    run_reduce(RED_MEAN, DT_F32, DT_F32, x, 4, 4, y);
    cr_assert(y[0].f == 2.5 && y[2].f == 2.25 && y[3].f == -2);
    run_reduce(RED_MAX, DT_F32, DT_F32, x, 4, 4, y);
    cr_assert(y[0].f == 4 && isnan(y[1].f) && y[2].f == 3 && y[3].f == -1);
    run_reduce(RED_MIN, DT_F32, DT_F32, x, 4, 4, y);
    cr_assert(y[0].f == 1 && isnan(y[1].f) && y[2].f == 1 && y[3].f == -3);
    run_reduce(RED_ARGMAX, DT_F32, DT_I32, x, 4, 4, y);
    cr_assert(y[0].i == 3 && y[1].i == 1 && y[2].i == 1 && y[3].i == 0, "%lld %lld %lld %lld",
              (long long)y[0].i, (long long)y[1].i, (long long)y[2].i, (long long)y[3].i);
    run_reduce(RED_ARGMIN, DT_F32, DT_I32, x, 4, 4, y);
    cr_assert(y[0].i == 0 && y[1].i == 1 && y[2].i == 0 && y[3].i == 2);
}

Test(interp_reduce, rounds_once_at_the_end)
{
    /* In f16, 2048 + 1 + 1 step by step stays 2048; accumulated in double it is 2050. */
    Value x[] = {vf(2048), vf(1), vf(1)};
    Value y[1];
    run_reduce(RED_SUM, DT_F16, DT_F16, x, 1, 3, y);
    cr_assert_eq(y[0].f, 2050);
    Value z[] = {vf(1e8), vf(1), vf(-1e8)};  /* f32 step by step would give 0 */
    run_reduce(RED_SUM, DT_F32, DT_F32, z, 1, 3, y);
    cr_assert_eq(y[0].f, 1);
}

Test(interp_reduce, integer_reductions)
{
    Value x[] = {vi(100), vi(100), vi(1), vi(2), vi(-1), vi(-2)};
    Value y[3];
    run_reduce(RED_SUM, DT_I8, DT_I8, x, 3, 2, y);
    cr_assert(y[0].i == -56 && y[1].i == 3 && y[2].i == -3);  /* wraps in i8 */
    run_reduce(RED_MEAN, DT_I8, DT_I8, x, 3, 2, y);
    cr_assert(y[0].i == 100 && y[1].i == 1 && y[2].i == -1);  /* int64 sum, truncated */
    run_reduce(RED_PROD, DT_I8, DT_I8, x, 3, 2, y);
    cr_assert(y[0].i == (int8_t)10000 && y[1].i == 2 && y[2].i == 2);
    run_reduce(RED_MAX, DT_I8, DT_I8, x, 3, 2, y);
    cr_assert(y[0].i == 100 && y[1].i == 2 && y[2].i == -1);
    run_reduce(RED_ARGMIN, DT_I8, DT_I32, x, 3, 2, y);
    cr_assert(y[0].i == 0 && y[1].i == 0 && y[2].i == 1);
}

Test(interp_reduce, any_all)
{
    Value x[] = {vi(0), vi(0), vi(0), vi(1), vi(1), vi(1)};
    Value y[3];
    run_reduce(RED_ANY, DT_BOOL, DT_BOOL, x, 3, 2, y);
    cr_assert(y[0].i == 0 && y[1].i == 1 && y[2].i == 1);
    run_reduce(RED_ALL, DT_BOOL, DT_BOOL, x, 3, 2, y);
    cr_assert(y[0].i == 0 && y[1].i == 0 && y[2].i == 1);
}

/* y = argmax[a < 2, b < 3] x[a, b]: the index is flattened over (a, b) */
Test(interp_reduce, argmax_over_two_vars)
{
    Module *m = ir_module_new();
    Kernel *k = ir_kernel_new(m, "arg2");
    ir_kernel_add(m, k);
    Tensor *x = add_tensor(m, k, TK_INPUT, "x", DT_F32, 2, (Expr *[]){I(m, 2), I(m, 3)});
    Tensor *y = add_tensor(m, k, TK_OUTPUT, "y", DT_I32, 0, NULL);
    Var *a = ir_var_new(m, VAR_REDUCE, "a", I(m, 2)), *b = ir_var_new(m, VAR_REDUCE, "b", I(m, 3));
    add_stmt(m, k, ir_def_new(m, y, NULL, RED_ARGMAX, (Var *[]){a, b}, 2, A2(m, x, V(m, a), V(m, b))));
    assert_verifies(m);
    Value xs[6] = {vf(1), vf(2), vf(3), vf(9), vf(9), vf(0)}, ys[1];
    Arg ins[1] = {{DT_F32, 2, {2, 3}, xs, NULL}}, outs[1] = {{DT_I32, 0, {0}, NULL, ys}};
    run_ok(k, NULL, ins, outs);
    cr_assert_eq(ys[0].i, 3);
    ir_module_free(m);
}

/* ---- softmax and matmul against direct C ---------------------------------------------------------- */

static double lcg(uint32_t *s)
{
    *s = *s * 1664525u + 1013904223u;
    return (double)(*s >> 8) / (double)(1u << 24) * 8.0 - 4.0;
}

Test(interp_kernels, softmax_by_hand)
{
    enum { R = 3, C = 7 };
    Module *m = ir_module_new();
    Kernel *k = ir_kernel_new(m, "softmax");
    ir_kernel_add(m, k);
    Var *N = add_size(m, k, "N"), *D = add_size(m, k, "D");
    Tensor *x = add_tensor(m, k, TK_INPUT, "x", DT_F32, 2, (Expr *[]){V(m, N), V(m, D)});
    Tensor *y = add_tensor(m, k, TK_OUTPUT, "y", DT_F32, 2, (Expr *[]){V(m, N), V(m, D)});
    Tensor *mx = add_tensor(m, k, TK_TEMP, "mx", DT_F32, 1, (Expr *[]){V(m, N)});
    Tensor *e = add_tensor(m, k, TK_TEMP, "e", DT_F32, 2, (Expr *[]){V(m, N), V(m, D)});
    Tensor *s = add_tensor(m, k, TK_TEMP, "s", DT_F32, 1, (Expr *[]){V(m, N)});
    Var *n = ir_var_new(m, VAR_INDEX, "n", V(m, N)), *d = ir_var_new(m, VAR_REDUCE, "d", V(m, D));
    add_stmt(m, k, ir_def_new(m, mx, (Var *[]){n}, RED_MAX, (Var *[]){d}, 1, A2(m, x, V(m, n), V(m, d))));
    n = ir_var_new(m, VAR_INDEX, "n", V(m, N));
    d = ir_var_new(m, VAR_INDEX, "d", V(m, D));
    add_stmt(m, k, ir_def_new(m, e, (Var *[]){n, d}, RED_NONE, NULL, 0,
                              ir_unary(m, OP_EXP, bin(m, OP_SUB, A2(m, x, V(m, n), V(m, d)),
                                                      A1(m, mx, V(m, n))))));
    n = ir_var_new(m, VAR_INDEX, "n", V(m, N));
    d = ir_var_new(m, VAR_REDUCE, "d", V(m, D));
    add_stmt(m, k, ir_def_new(m, s, (Var *[]){n}, RED_SUM, (Var *[]){d}, 1, A2(m, e, V(m, n), V(m, d))));
    n = ir_var_new(m, VAR_INDEX, "n", V(m, N));
    d = ir_var_new(m, VAR_INDEX, "d", V(m, D));
    add_stmt(m, k, ir_def_new(m, y, (Var *[]){n, d}, RED_NONE, NULL, 0,
                              bin(m, OP_DIV, A2(m, e, V(m, n), V(m, d)), A1(m, s, V(m, n)))));
    assert_verifies(m);

    uint32_t seed = 1;
    Value xs[R * C], ys[R * C];
    float xf[R * C];
    for (int j = 0; j < R * C; j++) xs[j].f = xf[j] = (float)lcg(&seed);
    Arg ins[1] = {{DT_F32, 2, {R, C}, xs, NULL}}, outs[1] = {{DT_F32, 2, {R, C}, NULL, ys}};
    run_ok(k, (int64_t[]){R, C}, ins, outs);
    for (int r = 0; r < R; r++) {
        float mxr = xf[r * C];
        for (int c = 1; c < C; c++) mxr = fmaxf(mxr, xf[r * C + c]);
        double sum = 0;
        for (int c = 0; c < C; c++) sum += expf(xf[r * C + c] - mxr);
        double total = 0;
        for (int c = 0; c < C; c++) {
            double want = expf(xf[r * C + c] - mxr) / sum;
            cr_assert_float_eq(ys[r * C + c].f, want, 1e-6, "[%d, %d]: %g vs %g", r, c,
                               ys[r * C + c].f, want);
            total += ys[r * C + c].f;
        }
        cr_assert_float_eq(total, 1.0, 1e-6);
    }
    ir_module_free(m);
}

Test(interp_kernels, matmul_medium)
{
    enum { M = 96, K = 80, N = 64 };
    Module *m = ir_module_new();
    Kernel *k = ir_kernel_new(m, "matmul");
    ir_kernel_add(m, k);
    Var *Ms = add_size(m, k, "M"), *Ks = add_size(m, k, "K"), *Ns = add_size(m, k, "N");
    Tensor *a = add_tensor(m, k, TK_INPUT, "a", DT_F32, 2, (Expr *[]){V(m, Ms), V(m, Ks)});
    Tensor *b = add_tensor(m, k, TK_INPUT, "b", DT_F32, 2, (Expr *[]){V(m, Ks), V(m, Ns)});
    Tensor *c = add_tensor(m, k, TK_OUTPUT, "c", DT_F32, 2, (Expr *[]){V(m, Ms), V(m, Ns)});
    Var *i = ir_var_new(m, VAR_INDEX, "i", V(m, Ms)), *j = ir_var_new(m, VAR_INDEX, "j", V(m, Ns));
    Var *kk = ir_var_new(m, VAR_REDUCE, "k", V(m, Ks));
    add_stmt(m, k, ir_def_new(m, c, (Var *[]){i, j}, RED_SUM, (Var *[]){kk}, 1,
                              bin(m, OP_MUL, A2(m, a, V(m, i), V(m, kk)), A2(m, b, V(m, kk), V(m, j)))));
    assert_verifies(m);
    static Value as[M * K], bs[K * N], cs[M * N];
    uint32_t seed = 7;
    for (int x = 0; x < M * K; x++) as[x].f = (float)lcg(&seed);
    for (int x = 0; x < K * N; x++) bs[x].f = (float)lcg(&seed);
    Arg ins[2] = {{DT_F32, 2, {M, K}, as, NULL}, {DT_F32, 2, {K, N}, bs, NULL}};
    Arg outs[1] = {{DT_F32, 2, {M, N}, NULL, cs}};
    run_ok(k, (int64_t[]){M, K, N}, ins, outs);
    for (int x = 0; x < M; x++) {
        for (int y = 0; y < N; y++) {
            double acc = 0;  /* each product rounded to f32, summed in double, rounded once */
            for (int z = 0; z < K; z++) acc += (float)(as[x * K + z].f * bs[z * N + y].f);
            cr_assert_eq(cs[x * N + y].f, (double)(float)acc, "[%d, %d]", x, y);
        }
    }
    ir_module_free(m);
}

/* A million elements: the interpreter must stay usable at test sizes. */
Test(interp_kernels, million_elements)
{
    enum { R = 1000, C = 1000 };
    Module *m = ir_module_new();
    Kernel *k = ir_kernel_new(m, "big");
    ir_kernel_add(m, k);
    Var *N = add_size(m, k, "N"), *D = add_size(m, k, "D");
    Tensor *x = add_tensor(m, k, TK_INPUT, "x", DT_F32, 2, (Expr *[]){V(m, N), V(m, D)});
    Tensor *y = add_tensor(m, k, TK_OUTPUT, "y", DT_F32, 1, (Expr *[]){V(m, N)});
    Var *n = ir_var_new(m, VAR_INDEX, "n", V(m, N)), *d = ir_var_new(m, VAR_REDUCE, "d", V(m, D));
    add_stmt(m, k, ir_def_new(m, y, (Var *[]){n}, RED_SUM, (Var *[]){d}, 1,
                              ir_unary(m, OP_EXP, ir_unary(m, OP_NEG, A2(m, x, V(m, n), V(m, d))))));
    assert_verifies(m);
    Value *xs = malloc(sizeof(Value) * R * C), ys[R];
    for (int j = 0; j < R * C; j++) xs[j].f = 0;
    Arg ins[1] = {{DT_F32, 2, {R, C}, xs, NULL}}, outs[1] = {{DT_F32, 1, {R}, NULL, ys}};
    run_ok(k, (int64_t[]){R, C}, ins, outs);
    for (int j = 0; j < R; j++) cr_assert_eq(ys[j].f, (double)C);
    free(xs);
    ir_module_free(m);
}

/* ---- accesses ---------------------------------------------------------------------------------------- */

/* y[i] = (x[i - 1] ?? 0) + x[i] */
Test(interp_access, padded)
{
    Module *m = ir_module_new();
    Kernel *k = ir_kernel_new(m, "pairs");
    ir_kernel_add(m, k);
    Var *N = add_size(m, k, "N");
    Tensor *x = add_tensor(m, k, TK_INPUT, "x", DT_F32, 1, (Expr *[]){V(m, N)});
    Tensor *y = add_tensor(m, k, TK_OUTPUT, "y", DT_F32, 1, (Expr *[]){V(m, N)});
    Var *i = ir_var_new(m, VAR_INDEX, "i", V(m, N));
    Expr *prev = ir_access(m, x, (Expr *[]){bin(m, OP_SUB, V(m, i), I(m, 1))}, F(m, 0));
    add_stmt(m, k, ir_def_new(m, y, (Var *[]){i}, RED_NONE, NULL, 0, bin(m, OP_ADD, prev, A1(m, x, V(m, i)))));
    assert_verifies(m);
    Value xs[4] = {vf(1), vf(2), vf(4), vf(8)}, ys[4];
    Arg ins[1] = {{DT_F32, 1, {4}, xs, NULL}}, outs[1] = {{DT_F32, 1, {4}, NULL, ys}};
    run_ok(k, (int64_t[]){4}, ins, outs);
    cr_assert(ys[0].f == 1 && ys[1].f == 3 && ys[2].f == 6 && ys[3].f == 12);
    ir_module_free(m);
}

/* y[i] = x[i / 2, i % 2] with y: f32[2 * N]: a reshape */
Test(interp_access, div_and_mod_indices)
{
    Module *m = ir_module_new();
    Kernel *k = ir_kernel_new(m, "flat");
    ir_kernel_add(m, k);
    Var *N = add_size(m, k, "N");
    Tensor *x = add_tensor(m, k, TK_INPUT, "x", DT_I32, 2, (Expr *[]){V(m, N), I(m, 2)});
    Tensor *y = add_tensor(m, k, TK_OUTPUT, "y", DT_I32, 1, (Expr *[]){bin(m, OP_MUL, I(m, 2), V(m, N))});
    Var *i = ir_var_new(m, VAR_INDEX, "i", bin(m, OP_MUL, I(m, 2), V(m, N)));
    add_stmt(m, k, ir_def_new(m, y, (Var *[]){i}, RED_NONE, NULL, 0,
                              A2(m, x, bin(m, OP_DIV, V(m, i), I(m, 2)), bin(m, OP_MOD, V(m, i), I(m, 2)))));
    assert_verifies(m);
    Value xs[6] = {vi(10), vi(11), vi(20), vi(21), vi(30), vi(31)}, ys[6];
    Arg ins[1] = {{DT_I32, 2, {3, 2}, xs, NULL}}, outs[1] = {{DT_I32, 1, {6}, NULL, ys}};
    run_ok(k, (int64_t[]){3}, ins, outs);
    for (int j = 0; j < 6; j++) cr_assert_eq(ys[j].i, xs[j].i);
    ir_module_free(m);
}

/* y[i] = x[(i - 1) / 2] ?? -1: index division is floor, so i = 0 reads the pad */
Test(interp_access, index_division_is_floor)
{
    Module *m = ir_module_new();
    Kernel *k = ir_kernel_new(m, "up");
    ir_kernel_add(m, k);
    Var *N = add_size(m, k, "N");
    Tensor *x = add_tensor(m, k, TK_INPUT, "x", DT_F32, 1, (Expr *[]){V(m, N)});
    Tensor *y = add_tensor(m, k, TK_OUTPUT, "y", DT_F32, 1, (Expr *[]){V(m, N)});
    Var *i = ir_var_new(m, VAR_INDEX, "i", V(m, N));
    Expr *idx = bin(m, OP_DIV, bin(m, OP_SUB, V(m, i), I(m, 1)), I(m, 2));
    add_stmt(m, k, ir_def_new(m, y, (Var *[]){i}, RED_NONE, NULL, 0,
                              ir_access(m, x, (Expr *[]){idx}, F(m, -1))));
    assert_verifies(m);
    Value xs[4] = {vf(5), vf(6), vf(7), vf(8)}, ys[4];
    Arg ins[1] = {{DT_F32, 1, {4}, xs, NULL}}, outs[1] = {{DT_F32, 1, {4}, NULL, ys}};
    run_ok(k, (int64_t[]){4}, ins, outs);
    cr_assert(ys[0].f == -1 && ys[1].f == 5 && ys[2].f == 5 && ys[3].f == 6);
    ir_module_free(m);
}

/* ---- scans --------------------------------------------------------------------------------------------- */

/* cumsum(x: f32[T, K], s0: f32[K]) -> (o: f32[T, K], last: f32[K]):
 *   scan t < T [reverse] with S: f32[K] = s0 { S.next[i] = S[i] + x[t, i]; o[t, i] = S.next[i] }
 *   last[i] = S[i] */
static Module *cumsum_module(bool reverse)
{
    Module *m = ir_module_new();
    Kernel *k = ir_kernel_new(m, "cumsum");
    ir_kernel_add(m, k);
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
    enum { T = 4, K = 2 };
    Module *m = cumsum_module(reverse);
    assert_verifies(m);
    Value xs[T * K], s0[K] = {vf(100), vf(-100)}, os[T * K], last[K];
    for (int j = 0; j < T * K; j++) xs[j].f = j + 1;
    Arg ins[2] = {{DT_F32, 2, {T, K}, xs, NULL}, {DT_F32, 1, {K}, s0, NULL}};
    Arg outs[2] = {{DT_F32, 2, {T, K}, NULL, os}, {DT_F32, 1, {K}, NULL, last}};
    run_ok(m->kernels[0], (int64_t[]){T, K}, ins, outs);
    for (int c = 0; c < K; c++) {
        double acc = s0[c].f;
        for (int s = 0; s < T; s++) {
            int t = reverse ? T - 1 - s : s;
            acc += xs[t * K + c].f;
            cr_assert_eq(os[t * K + c].f, acc, "o[%d, %d] = %g, want %g", t, c, os[t * K + c].f, acc);
        }
        cr_assert_eq(last[c].f, acc);
    }
    ir_module_free(m);
}

Test(interp_scan, forward_cumsum_from_tensor) { check_cumsum(false); }
Test(interp_scan, reverse_cumsum_from_tensor) { check_cumsum(true); }

/* scan t < T with A: i32 = 0 {
 *   scan u < U with B: i32 = 0 { B.next = B + 1; o[t, u] = A * 10 + B.next }
 *   A.next = A + 1 }                                    gives o[t, u] = 10 t + u + 1 */
Test(interp_scan, nested)
{
    Module *m = ir_module_new();
    Kernel *k = ir_kernel_new(m, "nested");
    ir_kernel_add(m, k);
    Var *T = add_size(m, k, "T"), *U = add_size(m, k, "U");
    Tensor *o = add_tensor(m, k, TK_OUTPUT, "o", DT_I32, 2, (Expr *[]){V(m, T), V(m, U)});
    Tensor *A = add_tensor(m, k, TK_STATE, "A", DT_I32, 0, NULL);
    Tensor *An = add_tensor(m, k, TK_TEMP, "A.next", DT_I32, 0, NULL);
    Tensor *B = add_tensor(m, k, TK_STATE, "B", DT_I32, 0, NULL);
    Tensor *Bn = add_tensor(m, k, TK_TEMP, "B.next", DT_I32, 0, NULL);
    Var *t = ir_var_new(m, VAR_SCAN, "t", V(m, T)), *u = ir_var_new(m, VAR_SCAN, "u", V(m, U));
    Stmt *outer = new_scan(m, t, false, 1);
    outer->scan.states[0] = (ScanState){A, An, ir_const_i(m, DT_I32, 0), NULL};
    Stmt *inner = new_scan(m, u, false, 1);
    inner->scan.states[0] = (ScanState){B, Bn, ir_const_i(m, DT_I32, 0), NULL};
    scan_add(m, inner, ir_def_new(m, Bn, NULL, RED_NONE, NULL, 0,
                                  bin(m, OP_ADD, A0(m, B), ir_const_i(m, DT_I32, 1))));
    scan_add(m, inner, ir_def_new(m, o, (Var *[]){t, u}, RED_NONE, NULL, 0,
                                  bin(m, OP_ADD, bin(m, OP_MUL, A0(m, A), ir_const_i(m, DT_I32, 10)),
                                      A0(m, Bn))));
    scan_add(m, outer, inner);
    scan_add(m, outer, ir_def_new(m, An, NULL, RED_NONE, NULL, 0,
                                  bin(m, OP_ADD, A0(m, A), ir_const_i(m, DT_I32, 1))));
    add_stmt(m, k, outer);
    assert_verifies(m);
    Value os[3 * 4];
    Arg outs[1] = {{DT_I32, 2, {3, 4}, NULL, os}};
    run_ok(k, (int64_t[]){3, 4}, NULL, outs);
    for (int a = 0; a < 3; a++)
        for (int b = 0; b < 4; b++) cr_assert_eq(os[a * 4 + b].i, 10 * a + b + 1, "o[%d, %d]", a, b);
    ir_module_free(m);
}

/* ---- clean failures -------------------------------------------------------------------------------------- */

Test(interp_fail, unpadded_out_of_range)
{
    Module *m = ir_module_new();
    Kernel *k = ir_kernel_new(m, "shift");
    ir_kernel_add(m, k);
    Var *N = add_size(m, k, "N");
    Tensor *x = add_tensor(m, k, TK_INPUT, "x", DT_F32, 1, (Expr *[]){V(m, N)});
    Tensor *y = add_tensor(m, k, TK_OUTPUT, "y", DT_F32, 1, (Expr *[]){V(m, N)});
    Var *i = ir_var_new(m, VAR_INDEX, "i", V(m, N));
    add_stmt(m, k, ir_def_new(m, y, (Var *[]){i}, RED_NONE, NULL, 0,
                              A1(m, x, bin(m, OP_ADD, V(m, i), I(m, 1)))));
    Value xs[3] = {vf(1), vf(2), vf(3)}, ys[3];
    Arg ins[1] = {{DT_F32, 1, {3}, xs, NULL}}, outs[1] = {{DT_F32, 1, {3}, NULL, ys}};
    StrBuf err = {0};
    cr_assert(!run_args(k, (int64_t[]){3}, ins, outs, &err));
    cr_assert_str_eq(sb_cstr(&err), "shift: internal error: index 3 out of range [0, 3) on axis 0 of x");
    sb_free(&err);
    ir_module_free(m);
}

Test(interp_fail, huge_temp_and_bad_arguments)
{
    Module *m = ir_module_new();
    Kernel *k = ir_kernel_new(m, "outer");
    ir_kernel_add(m, k);
    Var *N = add_size(m, k, "N");
    Tensor *x = add_tensor(m, k, TK_INPUT, "x", DT_F32, 1, (Expr *[]){V(m, N)});
    Tensor *y = add_tensor(m, k, TK_OUTPUT, "y", DT_F32, 1, (Expr *[]){V(m, N)});
    Tensor *p = add_tensor(m, k, TK_TEMP, "p", DT_F32, 2, (Expr *[]){V(m, N), V(m, N)});
    Var *i = ir_var_new(m, VAR_INDEX, "i", V(m, N)), *j = ir_var_new(m, VAR_INDEX, "j", V(m, N));
    add_stmt(m, k, ir_def_new(m, p, (Var *[]){i, j}, RED_NONE, NULL, 0,
                              bin(m, OP_MUL, A1(m, x, V(m, i)), A1(m, x, V(m, j)))));
    i = ir_var_new(m, VAR_INDEX, "i", V(m, N));
    j = ir_var_new(m, VAR_REDUCE, "j", V(m, N));
    add_stmt(m, k, ir_def_new(m, y, (Var *[]){i}, RED_SUM, (Var *[]){j}, 1, A2(m, p, V(m, i), V(m, j))));
    assert_verifies(m);

    /* 2^20 x 2^20 values would be 8 TiB: refused before any allocation. */
    TensorData tx = {.dtype = DT_F32, .rank = 1, .shape = {1 << 20}, .data = NULL, .nbytes = 0};
    TensorData ty = tx;
    StrBuf err = {0};
    cr_assert(!ir_interp_run(k, (int64_t[]){1 << 20}, &tx, &ty, &err));
    cr_assert_str_eq(sb_cstr(&err), "outer: p is too large for the interpreter (over 16 GiB)");
    sb_clear(&err);

    /* a wrong argument shape is reported, not read past */
    Value xs[2] = {vf(1), vf(2)}, ys[3];
    Arg ins[1] = {{DT_F32, 1, {2}, xs, NULL}}, outs[1] = {{DT_F32, 1, {3}, NULL, ys}};
    cr_assert(!run_args(k, (int64_t[]){3}, ins, outs, &err));
    cr_assert_str_eq(sb_cstr(&err), "outer: x: axis 0 is 2, expected 3");
    sb_clear(&err);

    /* the good case still works: y[i] = x[i] * sum(x) */
    Value x3[3] = {vf(1), vf(2), vf(3)};
    Arg ins3[1] = {{DT_F32, 1, {3}, x3, NULL}};
    cr_assert(run_args(k, (int64_t[]){3}, ins3, outs, &err), "%s", sb_cstr(&err));
    cr_assert(ys[0].f == 6 && ys[1].f == 12 && ys[2].f == 18);
    sb_free(&err);
    ir_module_free(m);
}
