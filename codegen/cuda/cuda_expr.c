/* cuda_expr: level-1 expressions to CUDA C++ expression text, with the interpreter's
 * arithmetic (ir/interp.c is the specification; its header lists the rules).
 *
 * Takes an Expr of a kernel whose buffers and variables cuda_gen.c has named; gives text of
 * its value in the register type of its dtype (internal.h). How each rule is met:
 *   - integers: computed in td_i32 / td_u32 / td_i64 through the prelude's wrapping
 *     helpers (td_add_i32 ... compute unsigned, so nothing overflows in C++), then wrapped
 *     to the dtype's width (td_wrap_i8 ...); `/` and `%` go through td_div_* / td_mod_*,
 *     which give x / 0 = 0, x % 0 = x and wrap MIN / -1;
 *   - floats: f32 and f64 in their own type with C operators (NVRTC runs with --fmad=false,
 *     so a * b + c is never contracted); f16 and bf16 compute in float and round after
 *     every op that can be inexact (td_round_f16 / td_round_bf16), their transcendentals
 *     through double and two roundings, as the interpreter does; rsqrt of f32 through
 *     double; min/max propagate NaN (td_min_f32 ...); round is rintf (half to even);
 *   - casts saturate (td_sat_i64, td_clamp_i64), NaN to 0; to bool is != 0;
 *   - index expressions (access and store indices) are plain td_i64 arithmetic with floor
 *     `/` and `%` (td_floordiv, td_floormod); sizes (extents, shapes) also allow min/max;
 *   - a padded load is `(in range ? load : pad)`, a select `(c ? a : b)`: C++ evaluates only
 *     the chosen side, so memory is touched only where the interpreter touches it. */
#include "internal.h"

#include <math.h>
#include <string.h>

/* ---- types ---------------------------------------------------------------------------------- */

const char *cu_reg_type(DType t)
{
    switch (t) {
    case DT_BOOL: return "bool";
    case DT_I2: case DT_I4: case DT_I8: case DT_I16: case DT_I32: return "td_i32";
    case DT_U4: case DT_U8: return "td_u32";
    case DT_I64: return "td_i64";
    case DT_F16: case DT_BF16: case DT_F32: return "float";
    case DT_F64: return "double";
    case DT_COUNT: break;
    }
    TD_UNREACHABLE("cu_reg_type: bad dtype");
}

const char *cu_storage_type(DType t)
{
    switch (t) {
    case DT_BOOL: case DT_I2: case DT_I4: case DT_U4: case DT_U8: return "td_u8";
    case DT_I8: return "td_i8";
    case DT_I16: return "td_i16";
    case DT_I32: return "td_i32";
    case DT_I64: return "td_i64";
    case DT_F16: case DT_BF16: return "td_u16";
    case DT_F32: return "float";
    case DT_F64: return "double";
    case DT_COUNT: break;
    }
    TD_UNREACHABLE("cu_storage_type: bad dtype");
}

/* The three register classes of the integer dtypes. */
typedef enum IntClass { IC_S32, IC_U32, IC_S64 } IntClass;

static IntClass int_class(DType t)
{
    if (t == DT_I64) return IC_S64;
    return dtype_is_signed(t) ? IC_S32 : IC_U32;
}

static bool is_narrow_float(DType t) { return t == DT_F16 || t == DT_BF16; }

/* ---- literals ----------------------------------------------------------------------------------- */

static void put_i64(int64_t v, StrBuf *out)
{
    if (v == INT64_MIN) sb_puts(out, "(-9223372036854775807LL - 1LL)");
    else if (v < 0) sb_printf(out, "(%lldLL)", (long long)v);
    else sb_printf(out, "%lldLL", (long long)v);
}

/* A float (f32 class) or double literal that reads back exactly. */
static void put_float(double v, bool is_double, StrBuf *out)
{
    const char *sfx = is_double ? "f64" : "f32";
    if (isnan(v)) {
        sb_printf(out, "td_nan_%s()", sfx);
        return;
    }
    if (isinf(v)) {
        sb_printf(out, v < 0 ? "(-td_inf_%s())" : "td_inf_%s()", sfx);
        return;
    }
    char buf[64];
    snprintf(buf, sizeof buf, is_double ? "%.17g" : "%.9g", v);
    bool plain = !strpbrk(buf, ".e");
    bool neg = buf[0] == '-';
    sb_printf(out, "%s%s%s%s%s", neg ? "(" : "", buf, plain ? ".0" : "", is_double ? "" : "f", neg ? ")" : "");
}

static void put_const(DType t, Value v, StrBuf *out)
{
    if (t == DT_BOOL) {
        sb_puts(out, v.i ? "true" : "false");
        return;
    }
    if (dtype_is_float(t)) {
        put_float(v.f, t == DT_F64, out);
        return;
    }
    switch (int_class(t)) {
    case IC_S64: put_i64(v.i, out); return;
    case IC_U32: sb_printf(out, "%lluu", (unsigned long long)v.i); return;
    case IC_S32:
        if (v.i == INT32_MIN) sb_puts(out, "(-2147483647 - 1)");
        else if (v.i < 0) sb_printf(out, "(%lld)", (long long)v.i);
        else sb_printf(out, "%lld", (long long)v.i);
        return;
    }
}

/* ---- casts ---------------------------------------------------------------------------------------- */

/* `w(x)`, the wrap of a td_i32 / td_u32 result to dtype t (nothing for i32, i64). */
static void put_wrapped(DType t, const char *x, StrBuf *out)
{
    switch (t) {
    case DT_I2: case DT_I4: case DT_I8: case DT_I16: case DT_U4: case DT_U8:
        sb_printf(out, "td_wrap_%s(%s)", dtype_name(t), x);
        return;
    case DT_I32: case DT_I64: case DT_BOOL: case DT_F16: case DT_BF16: case DT_F32: case DT_F64:
    case DT_COUNT:
        sb_puts(out, x);
        return;
    }
}

/* Float text of class float (f32, f16, bf16) rounded to t. */
static void put_rounded(DType t, const char *x, StrBuf *out)
{
    if (t == DT_F16) sb_printf(out, "td_round_f16(%s)", x);
    else if (t == DT_BF16) sb_printf(out, "td_round_bf16(%s)", x);
    else sb_puts(out, x);
}

void cu_cast(DType from, DType to, const char *a, StrBuf *out)
{
    if (from == to) {
        sb_puts(out, a);
        return;
    }
    if (to == DT_BOOL) {  /* != 0; NaN is true */
        sb_printf(out, "(%s != %s)", a, from == DT_F64 ? "0.0" : dtype_is_float(from) ? "0.0f" : "0");
        return;
    }
    if (from == DT_BOOL) {  /* 0 or 1, exact everywhere */
        if (dtype_is_float(to)) sb_printf(out, "(%s ? %s : %s)", a, to == DT_F64 ? "1.0" : "1.0f", to == DT_F64 ? "0.0" : "0.0f");
        else sb_printf(out, "(%s)(%s ? 1 : 0)", cu_reg_type(to), a);
        return;
    }
    if (dtype_is_float(to)) {
        StrBuf x = {0};
        if (to == DT_F64) {
            sb_printf(out, "(double)%s", a);  /* exact from floats; one rounding from i64 */
            return;
        }
        /* one rounding to float (from f64 or an integer), then to the dtype */
        if (from == DT_F64 || !dtype_is_float(from)) sb_printf(&x, "(float)%s", a);
        else sb_puts(&x, a);
        put_rounded(to, sb_cstr(&x), out);
        sb_free(&x);
        return;
    }
    int64_t tlo, thi;
    dtype_int_range(to, &tlo, &thi);
    StrBuf lo = {0}, hi = {0};
    put_i64(tlo, &lo);
    put_i64(thi, &hi);
    if (dtype_is_float(from)) {  /* toward zero, saturating, NaN to 0 */
        sb_printf(out, "(%s)td_sat_i64((double)%s, %s, %s)", cu_reg_type(to), a, lo.data, hi.data);
    } else {
        int64_t flo, fhi;
        dtype_int_range(from, &flo, &fhi);
        if (tlo <= flo && fhi <= thi) sb_printf(out, "(%s)%s", cu_reg_type(to), a);
        else sb_printf(out, "(%s)td_clamp_i64((td_i64)%s, %s, %s)", cu_reg_type(to), a, lo.data, hi.data);
    }
    sb_free(&lo);
    sb_free(&hi);
}

/* ---- integer arithmetic ----------------------------------------------------------------------------- */

static void int_op(Op op, DType t, const char *const *a, StrBuf *out)
{
    IntClass c = int_class(t);
    const char *w = c == IC_S64 ? "i64" : "i32";
    StrBuf x = {0};
    switch (op) {
    case OP_NEG:
        if (c == IC_U32) sb_printf(&x, "(0u - %s)", a[0]);
        else sb_printf(&x, "td_neg_%s(%s)", w, a[0]);
        break;
    case OP_ADD: case OP_SUB: case OP_MUL: {
        const char *name = op == OP_ADD ? "add" : op == OP_SUB ? "sub" : "mul";
        const char *sym = op == OP_ADD ? "+" : op == OP_SUB ? "-" : "*";
        if (c == IC_U32) sb_printf(&x, "(%s %s %s)", a[0], sym, a[1]);
        else sb_printf(&x, "td_%s_%s(%s, %s)", name, w, a[0], a[1]);
        break;
    }
    case OP_FMA:
        if (c == IC_U32) sb_printf(&x, "(%s * %s + %s)", a[0], a[1], a[2]);
        else sb_printf(&x, "td_add_%s(td_mul_%s(%s, %s), %s)", w, w, a[0], a[1], a[2]);
        break;
    case OP_DIV: case OP_MOD:
        sb_printf(&x, "td_%s_%s(%s, %s)", op == OP_DIV ? "div" : "mod", c == IC_U32 ? "u32" : w, a[0], a[1]);
        break;
    case OP_POW:
        if (c == IC_S64) sb_printf(&x, "td_pow_i64(%s, %s)", a[0], a[1]);
        else sb_printf(&x, "(%s)td_pow_i64((td_i64)%s, (td_i64)%s)", cu_reg_type(t), a[0], a[1]);
        break;
    case OP_MIN: case OP_MAX:
        sb_printf(&x, "td_%s_%s(%s, %s)", op == OP_MIN ? "min" : "max", c == IC_U32 ? "u32" : w, a[0], a[1]);
        break;
    case OP_CLAMP: {
        const char *s = c == IC_U32 ? "u32" : w;
        sb_printf(&x, "td_min_%s(td_max_%s(%s, %s), %s)", s, s, a[0], a[1], a[2]);
        break;
    }
    case OP_ABS:
        if (c == IC_U32) sb_puts(&x, a[0]);
        else sb_printf(&x, "td_abs_%s(%s)", w, a[0]);
        break;
    case OP_SIGN:
        if (c == IC_U32) sb_printf(&x, "(td_u32)(%s != 0u)", a[0]);
        else sb_printf(&x, "td_sign_%s(%s)", w, a[0]);
        break;
    case OP_FLOOR: case OP_CEIL: case OP_ROUND: case OP_TRUNC:
        sb_puts(&x, a[0]);
        break;
    case OP_CONST: case OP_VAR: case OP_ACCESS: case OP_CAST: case OP_NOT: case OP_EXP: case OP_LOG:
    case OP_EXP2: case OP_LOG2: case OP_SQRT: case OP_RSQRT: case OP_SIN: case OP_COS: case OP_TANH:
    case OP_SIGMOID: case OP_ERF: case OP_ISNAN: case OP_LT: case OP_LE: case OP_GT: case OP_GE:
    case OP_EQ: case OP_NE: case OP_AND: case OP_OR: case OP_SELECT: case OP_COUNT:
        TD_UNREACHABLE("int_op: op handled elsewhere");
    }
    put_wrapped(t, sb_cstr(&x), out);
    sb_free(&x);
}

/* ---- float arithmetic ---------------------------------------------------------------------------------- */

/* C name of a transcendental for float (f32) or double. */
static const char *math_name(Op op, bool f32)
{
    switch (op) {
    case OP_EXP: return f32 ? "expf" : "exp";
    case OP_LOG: return f32 ? "logf" : "log";
    case OP_EXP2: return f32 ? "exp2f" : "exp2";
    case OP_LOG2: return f32 ? "log2f" : "log2";
    case OP_SIN: return f32 ? "sinf" : "sin";
    case OP_COS: return f32 ? "cosf" : "cos";
    case OP_TANH: return f32 ? "tanhf" : "tanh";
    case OP_ERF: return f32 ? "erff" : "erf";
    case OP_SQRT: return f32 ? "sqrtf" : "sqrt";
    case OP_POW: return f32 ? "powf" : "pow";
    case OP_CONST: case OP_VAR: case OP_ACCESS: case OP_CAST: case OP_NEG: case OP_NOT: case OP_RSQRT:
    case OP_ABS: case OP_SIGMOID: case OP_FLOOR: case OP_CEIL: case OP_ROUND: case OP_TRUNC: case OP_SIGN:
    case OP_ISNAN: case OP_ADD: case OP_SUB: case OP_MUL: case OP_DIV: case OP_MOD: case OP_MIN: case OP_MAX:
    case OP_LT: case OP_LE: case OP_GT: case OP_GE: case OP_EQ: case OP_NE: case OP_AND: case OP_OR:
    case OP_SELECT: case OP_CLAMP: case OP_FMA: case OP_COUNT:
        break;
    }
    TD_UNREACHABLE("math_name: not a transcendental");
}

/* A transcendental (or rsqrt, sigmoid) of double operand text a[] as double text. */
static void double_math(Op op, const char *const *a, StrBuf *out)
{
    if (op == OP_RSQRT) sb_printf(out, "(1.0 / sqrt(%s))", a[0]);
    else if (op == OP_SIGMOID) sb_printf(out, "(1.0 / (1.0 + exp(-%s)))", a[0]);
    else if (op == OP_POW) sb_printf(out, "pow(%s, %s)", a[0], a[1]);
    else sb_printf(out, "%s(%s)", math_name(op, false), a[0]);
}

static void float_op(Op op, DType t, const char *const *a, StrBuf *out)
{
    bool d = t == DT_F64;
    const char *s = d ? "f64" : "f32";
    StrBuf x = {0};
    bool round = false;  /* f16/bf16 need a rounding of x */
    switch (op) {
    /* exact: no rounding */
    case OP_NEG: sb_printf(out, "(-%s)", a[0]); return;
    case OP_ABS: sb_printf(out, "%s(%s)", d ? "fabs" : "fabsf", a[0]); return;
    case OP_FLOOR: sb_printf(out, "%s(%s)", d ? "floor" : "floorf", a[0]); return;
    case OP_CEIL: sb_printf(out, "%s(%s)", d ? "ceil" : "ceilf", a[0]); return;
    case OP_TRUNC: sb_printf(out, "%s(%s)", d ? "trunc" : "truncf", a[0]); return;
    case OP_ROUND: sb_printf(out, "%s(%s)", d ? "rint" : "rintf", a[0]); return;
    case OP_SIGN: sb_printf(out, "td_sign_%s(%s)", s, a[0]); return;
    case OP_MOD: sb_printf(out, "%s(%s, %s)", d ? "fmod" : "fmodf", a[0], a[1]); return;
    case OP_MIN: case OP_MAX:
        sb_printf(out, "td_%s_%s(%s, %s)", op == OP_MIN ? "min" : "max", s, a[0], a[1]);
        return;
    case OP_CLAMP: sb_printf(out, "td_min_%s(td_max_%s(%s, %s), %s)", s, s, a[0], a[1], a[2]); return;
    /* inexact: f16/bf16 round the float result */
    case OP_ADD: case OP_SUB: case OP_MUL: case OP_DIV: {
        const char *sym = op == OP_ADD ? "+" : op == OP_SUB ? "-" : op == OP_MUL ? "*" : "/";
        sb_printf(&x, "(%s %s %s)", a[0], sym, a[1]);
        round = true;
        break;
    }
    case OP_SQRT: sb_printf(&x, "%s(%s)", d ? "sqrt" : "sqrtf", a[0]); round = true; break;
    case OP_FMA: sb_printf(&x, "%s(%s, %s, %s)", d ? "fma" : "fmaf", a[0], a[1], a[2]); round = true; break;
    case OP_EXP: case OP_LOG: case OP_EXP2: case OP_LOG2: case OP_SIN: case OP_COS: case OP_TANH:
    case OP_ERF: case OP_POW: case OP_RSQRT: case OP_SIGMOID:
        if (d) {
            double_math(op, a, out);
            return;
        }
        if (is_narrow_float(t) || op == OP_RSQRT) {
            /* through double, rounded once to float, then to the dtype: the interpreter's */
            StrBuf da[2] = {{0}, {0}}, r = {0};
            int n = op == OP_POW ? 2 : 1;
            for (int i = 0; i < n; i++) sb_printf(&da[i], "(double)%s", a[i]);
            const char *dargs[2] = {sb_cstr(&da[0]), n > 1 ? sb_cstr(&da[1]) : ""};
            double_math(op, dargs, &r);
            sb_printf(&x, "(float)%s", sb_cstr(&r));
            for (int i = 0; i < 2; i++) sb_free(&da[i]);
            sb_free(&r);
            round = true;
            break;
        }
        if (op == OP_SIGMOID) sb_printf(out, "(1.0f / (1.0f + expf(-%s)))", a[0]);
        else if (op == OP_POW) sb_printf(out, "powf(%s, %s)", a[0], a[1]);
        else sb_printf(out, "%s(%s)", math_name(op, true), a[0]);
        return;
    case OP_CONST: case OP_VAR: case OP_ACCESS: case OP_CAST: case OP_NOT: case OP_ISNAN: case OP_LT:
    case OP_LE: case OP_GT: case OP_GE: case OP_EQ: case OP_NE: case OP_AND: case OP_OR: case OP_SELECT:
    case OP_COUNT:
        TD_UNREACHABLE("float_op: op handled elsewhere");
    }
    if (round) put_rounded(t, sb_cstr(&x), out);
    else sb_puts(out, sb_cstr(&x));
    sb_free(&x);
}

/* A float builtin on an integer (the verifier refuses it; the interpreter goes through
 * double and saturates back): the same here. */
static void int_math(Op op, DType t, const char *const *a, StrBuf *out)
{
    StrBuf da[2] = {{0}, {0}}, r = {0};
    for (int i = 0; i < 2; i++) sb_printf(&da[i], "(double)%s", a[i] ? a[i] : "0");
    const char *dargs[2] = {sb_cstr(&da[0]), sb_cstr(&da[1])};
    if (op == OP_SQRT) sb_printf(&r, "sqrt(%s)", dargs[0]);
    else double_math(op, dargs, &r);
    int64_t lo, hi;
    dtype_int_range(t, &lo, &hi);
    StrBuf l = {0}, h = {0};
    put_i64(lo, &l);
    put_i64(hi, &h);
    sb_printf(out, "(%s)td_sat_i64(%s, %s, %s)", cu_reg_type(t), sb_cstr(&r), l.data, h.data);
    for (int i = 0; i < 2; i++) sb_free(&da[i]);
    sb_free(&r);
    sb_free(&l);
    sb_free(&h);
}

/* ---- loads and stores ------------------------------------------------------------------------------- */

static const char *name_of(CuGen *g, int id, const char *what)
{
    TD_ASSERT(id >= 0 && id < g->nids);
    if (!g->names[id]) {
        cu_fail(g, "%s has no name in this kernel", what);
        return "undefined";
    }
    return g->names[id];
}

void cu_offset(CuGen *g, const Tensor *t, Expr *const *idx, StrBuf *out)
{
    if (t->rank == 0) {
        sb_puts(out, "0");
        return;
    }
    StrBuf off = {0};
    cu_index(g, idx[0], &off);
    for (int a = 1; a < t->rank; a++) {
        StrBuf next = {0};
        sb_printf(&next, "(%s * ", sb_cstr(&off));
        cu_size(g, t->shape[a], &next);
        sb_puts(&next, " + ");
        cu_index(g, idx[a], &next);
        sb_putc(&next, ')');
        sb_free(&off);
        off = next;
    }
    sb_puts(out, sb_cstr(&off));
    sb_free(&off);
}

/* Element `off` of a buffer held in memory, in register type. */
static void load_elem(const char *name, DType t, const char *off, StrBuf *out)
{
    switch (t) {
    case DT_F32: case DT_F64: case DT_I32: case DT_I64: sb_printf(out, "%s[%s]", name, off); return;
    case DT_I8: case DT_I16: sb_printf(out, "(td_i32)%s[%s]", name, off); return;
    case DT_U8: sb_printf(out, "(td_u32)%s[%s]", name, off); return;
    case DT_BOOL: sb_printf(out, "(%s[%s] != 0)", name, off); return;
    case DT_F16: sb_printf(out, "td_f16_to_f32(%s[%s])", name, off); return;
    case DT_BF16: sb_printf(out, "td_bf16_to_f32(%s[%s])", name, off); return;
    case DT_I4: case DT_U4: case DT_I2: sb_printf(out, "td_load_%s(%s, %s)", dtype_name(t), name, off); return;
    case DT_COUNT: break;
    }
    TD_UNREACHABLE("load_elem: bad dtype");
}

void cu_store(CuGen *g, const Tensor *t, const char *off, const char *v, StrBuf *out)
{
    const char *name = name_of(g, t->id, t->name);
    CuBufKind kind = g->bufs[t->id];
    if (kind == CU_BUF_REGISTER) {
        sb_printf(out, "%s = %s;", name, v);
        return;
    }
    switch (t->dtype) {
    case DT_F32: case DT_F64: case DT_I32: case DT_I64: sb_printf(out, "%s[%s] = %s;", name, off, v); return;
    case DT_I8: case DT_I16: case DT_U8: case DT_BOOL:
        sb_printf(out, "%s[%s] = (%s)%s;", name, off, cu_storage_type(t->dtype), v);
        return;
    case DT_F16: sb_printf(out, "%s[%s] = td_f32_to_f16(%s);", name, off, v); return;
    case DT_BF16: sb_printf(out, "%s[%s] = td_f32_to_bf16(%s);", name, off, v); return;
    case DT_I4: case DT_U4: case DT_I2:
        if (kind == CU_BUF_LOCAL) {
            cu_fail(g, "a packed %s array in thread-local memory (%s) is not supported", dtype_name(t->dtype), t->name);
            return;
        }
        sb_printf(out, "td_store_packed(%s, %s, %du, (td_u32)%s);", name, off, dtype_bits(t->dtype), v);
        return;
    case DT_COUNT: break;
    }
    TD_UNREACHABLE("cu_store: bad dtype");
}

static void emit_access(CuGen *g, const Expr *e, StrBuf *out)
{
    const Tensor *t = e->tensor;
    TD_ASSERT(t && t->id >= 0 && t->id < g->nids);
    const char *name = name_of(g, t->id, t->name);
    if (g->bufs[t->id] == CU_BUF_NONE) {
        cu_fail(g, "load from %s, which has no storage here", t->name);
        return;
    }
    if (e->nargs != t->rank) {
        cu_fail(g, "load from %s with %d indices", t->name, e->nargs);
        return;
    }
    if (g->bufs[t->id] == CU_BUF_REGISTER) {
        sb_puts(out, name);
        return;
    }
    StrBuf off = {0};
    cu_offset(g, t, e->args, &off);
    if (!e->pad) {
        load_elem(name, t->dtype, sb_cstr(&off), out);
        sb_free(&off);
        return;
    }
    /* 0 <= i < dim on every axis, one unsigned compare each (none for a loop variable that
     * ranges over exactly that axis); only the chosen side runs */
    StrBuf cond = {0};
    for (int a = 0; a < t->rank; a++) {
        const Expr *i = e->args[a];
        if (i->op == OP_VAR && i->var->kind != VAR_SIZE && i->var->extent && ir_exprs_equal(i->var->extent, t->shape[a]))
            continue;
        sb_puts(&cond, cond.len ? " && (td_u64)" : "(td_u64)");
        cu_index(g, i, &cond);
        sb_puts(&cond, " < (td_u64)");
        cu_size(g, t->shape[a], &cond);
    }
    if (!cond.len) {  /* in range by construction */
        load_elem(name, t->dtype, sb_cstr(&off), out);
        sb_free(&off);
        return;
    }
    sb_printf(out, "(%s", sb_cstr(&cond));
    sb_free(&cond);
    sb_puts(out, " ? ");
    load_elem(name, t->dtype, sb_cstr(&off), out);
    sb_puts(out, " : ");
    cu_expr(g, e->pad, out);
    sb_puts(out, ")");
    sb_free(&off);
}

/* ---- expressions --------------------------------------------------------------------------------------- */

static const char *compare_sym(Op op)
{
    switch (op) {
    case OP_LT: return "<";
    case OP_LE: return "<=";
    case OP_GT: return ">";
    case OP_GE: return ">=";
    case OP_EQ: return "==";
    case OP_NE: return "!=";
    case OP_CONST: case OP_VAR: case OP_ACCESS: case OP_CAST: case OP_NEG: case OP_NOT: case OP_EXP:
    case OP_LOG: case OP_EXP2: case OP_LOG2: case OP_SQRT: case OP_RSQRT: case OP_ABS: case OP_SIN:
    case OP_COS: case OP_TANH: case OP_SIGMOID: case OP_ERF: case OP_FLOOR: case OP_CEIL: case OP_ROUND:
    case OP_TRUNC: case OP_SIGN: case OP_ISNAN: case OP_ADD: case OP_SUB: case OP_MUL: case OP_DIV:
    case OP_MOD: case OP_POW: case OP_MIN: case OP_MAX: case OP_AND: case OP_OR: case OP_SELECT:
    case OP_CLAMP: case OP_FMA: case OP_COUNT:
        break;
    }
    TD_UNREACHABLE("compare_sym: not a comparison");
}

void cu_expr(CuGen *g, const Expr *e, StrBuf *out)
{
    if (g->failed) return;
    StrBuf a[3] = {{0}, {0}, {0}};
    const char *as[3] = {NULL, NULL, NULL};
    switch (e->op) {
    case OP_CONST: put_const(e->type, e->value, out); return;
    case OP_VAR: sb_puts(out, name_of(g, e->var->id, e->var->name)); return;
    case OP_ACCESS: emit_access(g, e, out); return;
    case OP_SELECT: case OP_CAST: case OP_ISNAN: case OP_NOT: case OP_AND: case OP_OR: case OP_LT:
    case OP_LE: case OP_GT: case OP_GE: case OP_EQ: case OP_NE: case OP_NEG: case OP_EXP: case OP_LOG:
    case OP_EXP2: case OP_LOG2: case OP_SQRT: case OP_RSQRT: case OP_ABS: case OP_SIN: case OP_COS:
    case OP_TANH: case OP_SIGMOID: case OP_ERF: case OP_FLOOR: case OP_CEIL: case OP_ROUND: case OP_TRUNC:
    case OP_SIGN: case OP_ADD: case OP_SUB: case OP_MUL: case OP_DIV: case OP_MOD: case OP_POW: case OP_MIN:
    case OP_MAX: case OP_CLAMP: case OP_FMA:
        break;
    case OP_COUNT: TD_UNREACHABLE("cu_expr: bad op");
    }
    if (e->nargs < 1 || e->nargs > 3) {
        cu_fail(g, "%s with %d operands", op_name(e->op), e->nargs);
        return;
    }
    for (int i = 0; i < e->nargs; i++) {
        cu_expr(g, e->args[i], &a[i]);
        as[i] = sb_cstr(&a[i]);
    }
    DType at = e->args[0]->type;
    switch (e->op) {
    case OP_SELECT: sb_printf(out, "(%s ? %s : %s)", as[0], as[1], as[2]); break;
    case OP_CAST: cu_cast(at, e->type, as[0], out); break;
    case OP_ISNAN:
        if (dtype_is_float(at)) sb_printf(out, "(%s != %s)", as[0], as[0]);
        else sb_puts(out, "false");
        break;
    case OP_NOT: sb_printf(out, "(!%s)", as[0]); break;
    case OP_AND: sb_printf(out, "(%s && %s)", as[0], as[1]); break;
    case OP_OR: sb_printf(out, "(%s || %s)", as[0], as[1]); break;
    case OP_LT: case OP_LE: case OP_GT: case OP_GE: case OP_EQ: case OP_NE:
        sb_printf(out, "(%s %s %s)", as[0], compare_sym(e->op), as[1]);
        break;
    case OP_EXP: case OP_LOG: case OP_EXP2: case OP_LOG2: case OP_SQRT: case OP_RSQRT: case OP_SIN:
    case OP_COS: case OP_TANH: case OP_SIGMOID: case OP_ERF:
        if (e->type == DT_BOOL) cu_fail(g, "%s on bool", op_name(e->op));
        else if (dtype_is_float(e->type)) float_op(e->op, e->type, as, out);
        else int_math(e->op, e->type, as, out);
        break;
    case OP_NEG: case OP_ABS: case OP_FLOOR: case OP_CEIL: case OP_ROUND: case OP_TRUNC: case OP_SIGN:
    case OP_ADD: case OP_SUB: case OP_MUL: case OP_DIV: case OP_MOD: case OP_POW: case OP_MIN: case OP_MAX:
    case OP_CLAMP: case OP_FMA:
        if (e->type == DT_BOOL) cu_fail(g, "%s on bool", op_name(e->op));
        else if (dtype_is_float(e->type)) float_op(e->op, e->type, as, out);
        else int_op(e->op, e->type, as, out);
        break;
    case OP_CONST: case OP_VAR: case OP_ACCESS: case OP_COUNT:
        break;
    }
    for (int i = 0; i < 3; i++) sb_free(&a[i]);
}

/* Index arithmetic: +, -, *, neg plain td_i64; / and % floor. `size` follows ir_eval_size
 * (min and max stay in index arithmetic), otherwise interp.c's eval_index (they do not). */
bool cu_is_size_expr(const Expr *e)
{
    switch (e->op) {
    case OP_CONST: return !dtype_is_float(e->type);
    case OP_VAR: return e->var->kind == VAR_SIZE;
    case OP_NEG: return cu_is_size_expr(e->args[0]);
    case OP_ADD: case OP_SUB: case OP_MUL: case OP_DIV: case OP_MOD: case OP_MIN: case OP_MAX:
        return cu_is_size_expr(e->args[0]) && cu_is_size_expr(e->args[1]);
    case OP_ACCESS: case OP_CAST: case OP_NOT: case OP_EXP: case OP_LOG: case OP_EXP2: case OP_LOG2:
    case OP_SQRT: case OP_RSQRT: case OP_ABS: case OP_SIN: case OP_COS: case OP_TANH: case OP_SIGMOID:
    case OP_ERF: case OP_FLOOR: case OP_CEIL: case OP_ROUND: case OP_TRUNC: case OP_SIGN: case OP_ISNAN:
    case OP_POW: case OP_LT: case OP_LE: case OP_GT: case OP_GE: case OP_EQ: case OP_NE: case OP_AND:
    case OP_OR: case OP_SELECT: case OP_CLAMP: case OP_FMA: case OP_COUNT:
        break;
    }
    return false;
}

/* A composite size expression (N + 1, (H + 1) / 2) in index or size position is computed
 * once at the top of the kernel: fewer instructions in loops, and no 64-bit division call
 * with many live registers around it (ptxas spills there). Returns true when e was handled:
 * gathered (first pass) or printed as its name. */
static bool hoisted_size(CuGen *g, const Expr *e, StrBuf *out)
{
    if (g->no_hoist || e->op == OP_CONST || e->op == OP_VAR || !cu_is_size_expr(e)) return false;
    for (int i = 0; i < g->hoisted.len; i++) {
        if (!ir_exprs_equal(g->hoisted.items[i], e)) continue;
        if (g->collecting) return true;
        if (!g->hoist_names || !g->hoist_names[i]) return false;
        sb_puts(out, g->hoist_names[i]);
        return true;
    }
    if (!g->collecting) return false;
    pv_push(&g->scratch, &g->hoisted, (void *)e);
    return true;
}

static void index_expr(CuGen *g, const Expr *e, bool size, StrBuf *out)
{
    if (g->failed || hoisted_size(g, e, out)) return;
    switch (e->op) {
    case OP_CONST:
        if (dtype_is_float(e->type)) break;
        if (e->value.i >= INT32_MIN && e->value.i <= INT32_MAX) sb_printf(out, e->value.i < 0 ? "(%lld)" : "%lld", (long long)e->value.i);
        else put_i64(e->value.i, out);
        return;
    case OP_VAR: sb_puts(out, name_of(g, e->var->id, e->var->name)); return;
    case OP_NEG:
        sb_puts(out, "(-");
        index_expr(g, e->args[0], size, out);
        sb_puts(out, ")");
        return;
    case OP_ADD: case OP_SUB: case OP_MUL: case OP_DIV: case OP_MOD: case OP_MIN: case OP_MAX: {
        if (!size && (e->op == OP_MIN || e->op == OP_MAX)) break;
        const char *fn = e->op == OP_DIV ? "td_floordiv" : e->op == OP_MOD ? "td_floormod"
                       : e->op == OP_MIN ? "td_min_i64" : e->op == OP_MAX ? "td_max_i64" : NULL;
        const char *sym = e->op == OP_ADD ? " + " : e->op == OP_SUB ? " - " : " * ";
        sb_printf(out, "%s(", fn ? fn : "");
        index_expr(g, e->args[0], size, out);
        sb_puts(out, fn ? ", " : sym);
        index_expr(g, e->args[1], size, out);
        sb_puts(out, ")");
        return;
    }
    case OP_ACCESS: case OP_CAST: case OP_NOT: case OP_EXP: case OP_LOG: case OP_EXP2: case OP_LOG2:
    case OP_SQRT: case OP_RSQRT: case OP_ABS: case OP_SIN: case OP_COS: case OP_TANH: case OP_SIGMOID:
    case OP_ERF: case OP_FLOOR: case OP_CEIL: case OP_ROUND: case OP_TRUNC: case OP_SIGN: case OP_ISNAN:
    case OP_POW: case OP_LT: case OP_LE: case OP_GT: case OP_GE: case OP_EQ: case OP_NE: case OP_AND:
    case OP_OR: case OP_SELECT: case OP_CLAMP: case OP_FMA: case OP_COUNT:
        break;
    }
    if (e->type != DT_I64) {
        cu_fail(g, "an index or size expression has type %s, not i64", dtype_name(e->type));
        return;
    }
    cu_expr(g, e, out);  /* any other i64 value: ordinary arithmetic */
}

void cu_index(CuGen *g, const Expr *e, StrBuf *out) { index_expr(g, e, false, out); }
void cu_size(CuGen *g, const Expr *e, StrBuf *out) { index_expr(g, e, true, out); }
