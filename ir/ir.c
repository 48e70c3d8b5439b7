/* ir: dtype helpers, scalar conversions, op tables, builders, size evaluation and size
 * binding for the tensor IR.
 *
 * Takes nothing but what ir.h declares; gives the pieces every later stage shares:
 *   - the dtype and op tables generated from dtype.def / ops.def;
 *   - the scalar rules of the language (rounding to f32/f16/bf16, integer wrap, saturating
 *     float-to-int), used by ir_const_* here and by the interpreter, so a constant built
 *     by the front end and a value computed at run time always agree;
 *   - storage-layout load/store (packed i4/u4/i2, bool as a byte, f16/bf16 as bits);
 *   - builders that allocate every node in the module arena;
 *   - ir_eval_size / ir_bind_sizes, which turn the symbolic shapes into numbers at call
 *     time and produce the argument-mismatch messages of LANGUAGE.md section 9. */
#include "ir.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- dtype tables ---------------------------------------------------------------------- */

typedef struct DTypeInfo {
    const char *name;      /* as written in tdsl */
    int         bits;      /* storage bits per element */
    bool        is_float;
    bool        is_signed;
    int         dl_code;   /* DLPack type code */
} DTypeInfo;

static const DTypeInfo dtype_info[DT_COUNT] = {
#define X(e, name, bits, is_float, is_signed, dl) [e] = {name, bits, is_float, is_signed, dl},
#include "dtype.def"
#undef X
};

static const DTypeInfo *dt_info(DType t)
{
    TD_ASSERT((unsigned)t < DT_COUNT);
    return &dtype_info[t];
}

const char *dtype_name(DType t) { return dt_info(t)->name; }
int dtype_bits(DType t) { return dt_info(t)->bits; }
bool dtype_is_float(DType t) { return dt_info(t)->is_float; }
bool dtype_is_int(DType t) { return !dt_info(t)->is_float && t != DT_BOOL; }
bool dtype_is_signed(DType t) { return dt_info(t)->is_signed; }
int dtype_dlpack_code(DType t) { return dt_info(t)->dl_code; }

bool dtype_from_name(const char *name, DType *out)
{
    for (int t = 0; t < DT_COUNT; t++) {
        if (strcmp(dtype_info[t].name, name) == 0) {
            *out = (DType)t;
            return true;
        }
    }
    return false;
}

bool dtype_storage_bytes(DType t, size_t n, size_t *bytes)
{
    size_t bits;
    if (!ck_mul_size(n, (size_t)dtype_bits(t), &bits)) return false;
    *bytes = bits / 8 + (bits % 8 != 0);
    return true;
}

void dtype_int_range(DType t, int64_t *lo, int64_t *hi)
{
    if (t == DT_BOOL) {
        *lo = 0;
        *hi = 1;
        return;
    }
    if (dtype_is_float(t) || dtype_bits(t) == 64) {  /* floats: the whole int64 range */
        *lo = INT64_MIN;
        *hi = INT64_MAX;
        return;
    }
    int bits = dtype_bits(t);
    if (dtype_is_signed(t)) {
        *lo = -((int64_t)1 << (bits - 1));
        *hi = ((int64_t)1 << (bits - 1)) - 1;
    } else {
        *lo = 0;
        *hi = ((int64_t)1 << bits) - 1;
    }
}

/* ---- f16 / bf16 ------------------------------------------------------------------------ */

static uint32_t f32_bits(float f)
{
    uint32_t x;
    memcpy(&x, &f, sizeof x);
    return x;
}

static float bits_f32(uint32_t x)
{
    float f;
    memcpy(&f, &x, sizeof f);
    return f;
}

/* Rounds the low `shift` bits of m away, to nearest even. */
static uint32_t round_shift_rne(uint32_t m, int shift)
{
    uint32_t q = m >> shift;
    uint32_t rem = m & ((1u << shift) - 1);
    uint32_t half = 1u << (shift - 1);
    if (rem > half || (rem == half && (q & 1))) q++;
    return q;
}

uint16_t f32_to_f16_bits(float f)
{
    uint32_t x = f32_bits(f);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000);
    int exp = (int)((x >> 23) & 0xff);
    uint32_t mant = x & 0x7fffff;
    if (exp == 0xff)  /* inf, or NaN kept quiet with its top payload bits */
        return (uint16_t)(sign | 0x7c00 | (mant ? 0x200 | (mant >> 13) : 0));
    int e = exp - 127 + 15;
    if (e >= 31) return (uint16_t)(sign | 0x7c00);
    if (e <= 0) {
        /* Subnormal f16 (or zero): the implicit bit joins the mantissa; below half the
         * smallest subnormal everything rounds to zero. */
        if (e < -10) return sign;
        return (uint16_t)(sign | round_shift_rne(mant | 0x800000, 14 - e));
    }
    /* A carry out of the mantissa bumps the exponent, and from 30 to 31 gives inf. */
    uint32_t h = ((uint32_t)e << 10) | (mant >> 13);
    uint32_t rem = mant & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (h & 1))) h++;
    return (uint16_t)(sign | h);
}

float f16_bits_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f;
    uint32_t mant = h & 0x3ff;
    if (exp == 0x1f) return bits_f32(sign | 0x7f800000 | (mant << 13));
    if (exp == 0) {
        float v = ldexpf((float)mant, -24);  /* subnormal or zero: exact */
        return sign ? -v : v;
    }
    return bits_f32(sign | ((exp - 15 + 127) << 23) | (mant << 13));
}

uint16_t f32_to_bf16_bits(float f)
{
    uint32_t x = f32_bits(f);
    if ((x & 0x7fffffff) > 0x7f800000) return (uint16_t)((x >> 16) | 0x40);  /* quiet NaN */
    x += 0x7fff + ((x >> 16) & 1);  /* round to nearest even; overflow carries into inf */
    return (uint16_t)(x >> 16);
}

float bf16_bits_to_f32(uint16_t h) { return bits_f32((uint32_t)h << 16); }

/* ---- scalar rules ------------------------------------------------------------------------ */

int64_t dtype_wrap_i(DType t, int64_t v)
{
    if (t == DT_BOOL) return v != 0;
    if (dtype_is_float(t)) return v;  /* not an integer type: nothing to wrap */
    int bits = dtype_bits(t);
    if (bits == 64) return v;
    uint64_t mod = (uint64_t)1 << bits;
    uint64_t u = (uint64_t)v & (mod - 1);
    if (dtype_is_signed(t) && u >= mod / 2) return (int64_t)u - (int64_t)mod;
    return (int64_t)u;
}

double dtype_round_f(DType t, double v)
{
    switch (t) {
    case DT_F64: return v;
    case DT_F32: return (float)v;
    case DT_F16: return f16_bits_to_f32(f32_to_f16_bits((float)v));
    case DT_BF16: return bf16_bits_to_f32(f32_to_bf16_bits((float)v));
    case DT_BOOL: case DT_I2: case DT_I4: case DT_U4: case DT_I8: case DT_U8:
    case DT_I16: case DT_I32: case DT_I64:
        return (double)dtype_saturate_f(t, v);
    case DT_COUNT: break;
    }
    TD_UNREACHABLE("dtype_round_f: bad dtype");
}

int64_t dtype_saturate_f(DType t, double v)
{
    if (t == DT_BOOL) return v != 0;  /* NaN != 0: true, as in C and PyTorch */
    if (isnan(v)) return 0;
    int64_t lo, hi;
    dtype_int_range(t, &lo, &hi);
    /* (double)hi may round up (2^63 for i64), so compare with >= before converting. */
    if (v <= (double)lo) return lo;
    if (v >= (double)hi) return hi;
    return (int64_t)v;  /* C conversion truncates toward zero */
}

/* ---- storage layout ----------------------------------------------------------------------- */

/* Sub-byte element i: elements fill each byte from the low bits up. */
static uint32_t packed_get(const void *data, size_t i, int bits)
{
    const uint8_t *p = data;
    size_t per = 8 / (size_t)bits;
    unsigned shift = (unsigned)(i % per) * (unsigned)bits;
    return (p[i / per] >> shift) & ((1u << bits) - 1);
}

static void packed_set(void *data, size_t i, int bits, uint32_t v)
{
    uint8_t *p = data;
    size_t per = 8 / (size_t)bits;
    unsigned shift = (unsigned)(i % per) * (unsigned)bits;
    uint32_t mask = ((1u << bits) - 1) << shift;
    p[i / per] = (uint8_t)((p[i / per] & ~mask) | ((v << shift) & mask));
}

int64_t dtype_load_i(DType t, const void *data, size_t i)
{
    const uint8_t *p = data;
    switch (t) {
    case DT_BOOL: return p[i] != 0;
    case DT_I2: case DT_I4: return dtype_wrap_i(t, packed_get(data, i, dtype_bits(t)));
    case DT_U4: return packed_get(data, i, 4);
    case DT_I8: return (int8_t)p[i];
    case DT_U8: return p[i];
    case DT_I16: { int16_t v; memcpy(&v, p + 2 * i, 2); return v; }
    case DT_I32: { int32_t v; memcpy(&v, p + 4 * i, 4); return v; }
    case DT_I64: { int64_t v; memcpy(&v, p + 8 * i, 8); return v; }
    case DT_F16: case DT_BF16: case DT_F32: case DT_F64:
        return dtype_saturate_f(DT_I64, dtype_load_f(t, data, i));
    case DT_COUNT: break;
    }
    TD_UNREACHABLE("dtype_load_i: bad dtype");
}

double dtype_load_f(DType t, const void *data, size_t i)
{
    const uint8_t *p = data;
    switch (t) {
    case DT_F16: { uint16_t h; memcpy(&h, p + 2 * i, 2); return f16_bits_to_f32(h); }
    case DT_BF16: { uint16_t h; memcpy(&h, p + 2 * i, 2); return bf16_bits_to_f32(h); }
    case DT_F32: { float v; memcpy(&v, p + 4 * i, 4); return v; }
    case DT_F64: { double v; memcpy(&v, p + 8 * i, 8); return v; }
    case DT_BOOL: case DT_I2: case DT_I4: case DT_U4: case DT_I8: case DT_U8:
    case DT_I16: case DT_I32: case DT_I64:
        return (double)dtype_load_i(t, data, i);
    case DT_COUNT: break;
    }
    TD_UNREACHABLE("dtype_load_f: bad dtype");
}

void dtype_store_i(DType t, void *data, size_t i, int64_t v)
{
    uint8_t *p = data;
    switch (t) {
    case DT_BOOL: p[i] = v != 0; return;
    case DT_I2: case DT_I4: case DT_U4:
        packed_set(data, i, dtype_bits(t), (uint32_t)((uint64_t)v & 0xf));
        return;
    case DT_I8: case DT_U8: p[i] = (uint8_t)v; return;
    case DT_I16: { uint16_t u = (uint16_t)v; memcpy(p + 2 * i, &u, 2); return; }
    case DT_I32: { uint32_t u = (uint32_t)v; memcpy(p + 4 * i, &u, 4); return; }
    case DT_I64: memcpy(p + 8 * i, &v, 8); return;
    case DT_F16: case DT_BF16: case DT_F32: case DT_F64:
        dtype_store_f(t, data, i, dtype_round_f(t, (double)v));
        return;
    case DT_COUNT: break;
    }
    TD_UNREACHABLE("dtype_store_i: bad dtype");
}

void dtype_store_f(DType t, void *data, size_t i, double v)
{
    uint8_t *p = data;
    switch (t) {
    case DT_F16: { uint16_t h = f32_to_f16_bits((float)v); memcpy(p + 2 * i, &h, 2); return; }
    case DT_BF16: { uint16_t h = f32_to_bf16_bits((float)v); memcpy(p + 2 * i, &h, 2); return; }
    case DT_F32: { float f = (float)v; memcpy(p + 4 * i, &f, 4); return; }
    case DT_F64: memcpy(p + 8 * i, &v, 8); return;
    case DT_BOOL: case DT_I2: case DT_I4: case DT_U4: case DT_I8: case DT_U8:
    case DT_I16: case DT_I32: case DT_I64:
        dtype_store_i(t, data, i, dtype_saturate_f(t, v));
        return;
    case DT_COUNT: break;
    }
    TD_UNREACHABLE("dtype_store_f: bad dtype");
}

/* ---- op tables ------------------------------------------------------------------------------ */

typedef struct OpInfo {
    const char *name;    /* call-syntax name in the dump */
    int         arity;   /* -1 for OP_ACCESS */
    const char *infix;   /* infix symbol, or NULL */
} OpInfo;

static const OpInfo op_info[OP_COUNT] = {
#define X(e, name, arity, infix) [e] = {name, arity, infix},
#include "ops.def"
#undef X
};

static const OpInfo *op_get(Op op)
{
    TD_ASSERT((unsigned)op < OP_COUNT);
    return &op_info[op];
}

const char *op_name(Op op) { return op_get(op)->name; }
int op_arity(Op op) { return op_get(op)->arity; }
const char *op_infix(Op op) { return op_get(op)->infix; }

/* ---- builders --------------------------------------------------------------------------------- */

Module *ir_module_new(void)
{
    Arena a;
    arena_init(&a);
    Module *m = arena_alloc(&a, sizeof *m);
    m->arena = a;  /* the module lives in its own arena */
    return m;
}

void ir_module_free(Module *m)
{
    if (!m) return;
    Arena a = m->arena;  /* copy first: freeing the arena frees m itself */
    arena_free(&a);
}

Kernel *ir_kernel_new(Module *m, const char *name)
{
    Kernel *k = arena_alloc(&m->arena, sizeof *k);
    k->name = arena_strdup(&m->arena, name);
    return k;
}

void ir_kernel_add(Module *m, Kernel *k)
{
    /* Capacity is implied: the array is reallocated whenever len reaches a power of two. */
    int n = m->nkernels;
    if ((n & (n - 1)) == 0) {
        Kernel **ks = arena_array(&m->arena, n ? (size_t)n * 2 : 1, sizeof *ks);
        if (n) memcpy(ks, m->kernels, (size_t)n * sizeof *ks);
        m->kernels = ks;
    }
    m->kernels[m->nkernels++] = k;
}

Var *ir_var_new(Module *m, VarKind kind, const char *name, Expr *extent)
{
    Var *v = arena_alloc(&m->arena, sizeof *v);
    v->id = m->next_id++;
    v->kind = kind;
    v->name = arena_strdup(&m->arena, name);
    v->extent = extent;
    return v;
}

Tensor *ir_tensor_new(Module *m, TensorKind kind, const char *name, DType dt, int rank,
                      Expr **shape)
{
    TD_ASSERT(rank >= 0 && rank <= IR_MAX_RANK);
    Tensor *t = arena_alloc(&m->arena, sizeof *t);
    t->id = m->next_id++;
    t->name = arena_strdup(&m->arena, name);
    t->kind = kind;
    t->dtype = dt;
    t->rank = rank;
    t->shape = arena_array(&m->arena, (size_t)rank, sizeof *t->shape);
    if (rank) memcpy(t->shape, shape, (size_t)rank * sizeof *shape);
    t->annot.kind = ANN_NONE;
    return t;
}

static Expr *new_expr(Module *m, Op op, DType t, int nargs)
{
    Expr *e = arena_alloc(&m->arena, sizeof *e);
    e->op = op;
    e->type = t;
    e->nargs = nargs;
    e->args = nargs ? arena_array(&m->arena, (size_t)nargs, sizeof *e->args) : NULL;
    return e;
}

Expr *ir_const_f(Module *m, DType t, double v)
{
    Expr *e = new_expr(m, OP_CONST, t, 0);
    if (dtype_is_float(t)) e->value.f = dtype_round_f(t, v);
    else e->value.i = dtype_saturate_f(t, v);
    return e;
}

Expr *ir_const_i(Module *m, DType t, int64_t v)
{
    Expr *e = new_expr(m, OP_CONST, t, 0);
    if (dtype_is_float(t)) {
        /* (float) of an int64 rounds once; through double could round twice. */
        e->value.f = t == DT_F64 ? (double)v : dtype_round_f(t, (double)(float)v);
    } else {
        e->value.i = dtype_wrap_i(t, v);
    }
    return e;
}

Expr *ir_var(Module *m, Var *v)
{
    Expr *e = new_expr(m, OP_VAR, DT_I64, 0);
    e->var = v;
    return e;
}

Expr *ir_access(Module *m, Tensor *t, Expr **idx, Expr *pad)
{
    Expr *e = new_expr(m, OP_ACCESS, t->dtype, t->rank);
    if (t->rank) memcpy(e->args, idx, (size_t)t->rank * sizeof *idx);
    e->tensor = t;
    e->pad = pad;
    return e;
}

static bool op_gives_bool(Op op)
{
    switch (op) {
    case OP_NOT: case OP_ISNAN: case OP_LT: case OP_LE: case OP_GT: case OP_GE: case OP_EQ:
    case OP_NE: case OP_AND: case OP_OR:
        return true;
    case OP_CONST: case OP_VAR: case OP_ACCESS: case OP_CAST: case OP_NEG: case OP_EXP:
    case OP_LOG: case OP_EXP2: case OP_LOG2: case OP_SQRT: case OP_RSQRT: case OP_ABS:
    case OP_SIN: case OP_COS: case OP_TANH: case OP_SIGMOID: case OP_ERF: case OP_FLOOR:
    case OP_CEIL: case OP_ROUND: case OP_TRUNC: case OP_SIGN: case OP_ADD: case OP_SUB:
    case OP_MUL: case OP_DIV: case OP_MOD: case OP_POW: case OP_MIN: case OP_MAX:
    case OP_SELECT: case OP_CLAMP: case OP_FMA: case OP_COUNT:
        return false;
    }
    return false;
}

Expr *ir_unary(Module *m, Op op, Expr *a)
{
    TD_ASSERT(op_arity(op) == 1 && op != OP_CAST);
    Expr *e = new_expr(m, op, op_gives_bool(op) ? DT_BOOL : a->type, 1);
    e->args[0] = a;
    return e;
}

Expr *ir_binary(Module *m, Op op, Expr *a, Expr *b)
{
    TD_ASSERT(op_arity(op) == 2);
    Expr *e = new_expr(m, op, op_gives_bool(op) ? DT_BOOL : a->type, 2);
    e->args[0] = a;
    e->args[1] = b;
    return e;
}

Expr *ir_ternary(Module *m, Op op, Expr *a, Expr *b, Expr *c)
{
    TD_ASSERT(op_arity(op) == 3);
    Expr *e = new_expr(m, op, op == OP_SELECT ? b->type : a->type, 3);
    e->args[0] = a;
    e->args[1] = b;
    e->args[2] = c;
    return e;
}

Expr *ir_cast(Module *m, DType t, Expr *a)
{
    Expr *e = new_expr(m, OP_CAST, t, 1);
    e->args[0] = a;
    return e;
}

Stmt *ir_def_new(Module *m, Tensor *dst, Var **idx, ReduceOp rop, Var **red, int nred,
                 Expr *body)
{
    Stmt *s = arena_alloc(&m->arena, sizeof *s);
    s->kind = STMT_DEF;
    Def *d = &s->def;
    d->dst = dst;
    d->idx = arena_array(&m->arena, (size_t)dst->rank, sizeof *d->idx);
    if (dst->rank) memcpy(d->idx, idx, (size_t)dst->rank * sizeof *idx);
    d->rop = rop;
    d->nred = nred;
    d->red = arena_array(&m->arena, (size_t)nred, sizeof *d->red);
    if (nred) memcpy(d->red, red, (size_t)nred * sizeof *red);
    d->body = body;
    return s;
}

/* ---- size expressions ------------------------------------------------------------------------ */

static int size_index(const Kernel *k, const Var *v)
{
    for (int i = 0; i < k->nsizes; i++)
        if (k->sizes[i] == v) return i;
    return -1;
}

/* Floor division and modulo: sizes, like indices, divide toward minus infinity. */
static bool floor_divmod(int64_t a, int64_t b, int64_t *q, int64_t *r)
{
    if (b == 0 || (a == INT64_MIN && b == -1)) return false;
    *q = a / b;
    *r = a % b;
    if (*r != 0 && ((*r < 0) != (b < 0))) {
        *q -= 1;
        *r += b;
    }
    return true;
}

bool ir_eval_size(const Kernel *k, const Expr *e, const int64_t *sizes, int64_t *out)
{
    int64_t a, b, r;
    switch (e->op) {
    case OP_CONST:
        if (dtype_is_float(e->type)) return false;
        *out = e->value.i;
        return true;
    case OP_VAR: {
        int i = e->var ? size_index(k, e->var) : -1;
        if (i < 0 || sizes[i] < 0) return false;
        *out = sizes[i];
        return true;
    }
    case OP_NEG:
        if (!ir_eval_size(k, e->args[0], sizes, &a) || a == INT64_MIN) return false;
        *out = -a;
        return true;
    case OP_ADD: case OP_SUB: case OP_MUL: case OP_DIV: case OP_MOD: case OP_MIN: case OP_MAX:
        if (!ir_eval_size(k, e->args[0], sizes, &a) || !ir_eval_size(k, e->args[1], sizes, &b))
            return false;
        if (e->op == OP_ADD) return ck_add_i64(a, b, out);
        if (e->op == OP_SUB) return !__builtin_sub_overflow(a, b, out);
        if (e->op == OP_MUL) return ck_mul_i64(a, b, out);
        if (e->op == OP_DIV) return floor_divmod(a, b, out, &r);
        if (e->op == OP_MOD) return floor_divmod(a, b, &r, out);
        *out = (e->op == OP_MIN) == (a < b) ? a : b;
        return true;
    case OP_ACCESS: case OP_CAST: case OP_NOT: case OP_EXP: case OP_LOG: case OP_EXP2:
    case OP_LOG2: case OP_SQRT: case OP_RSQRT: case OP_ABS: case OP_SIN: case OP_COS:
    case OP_TANH: case OP_SIGMOID: case OP_ERF: case OP_FLOOR: case OP_CEIL: case OP_ROUND:
    case OP_TRUNC: case OP_SIGN: case OP_ISNAN: case OP_POW: case OP_LT: case OP_LE:
    case OP_GT: case OP_GE: case OP_EQ: case OP_NE: case OP_AND: case OP_OR: case OP_SELECT:
    case OP_CLAMP: case OP_FMA: case OP_COUNT:
        return false;
    }
    return false;
}

bool ir_exprs_equal(const Expr *a, const Expr *b)
{
    if (a == b) return true;
    if (!a || !b) return false;
    if (a->op != b->op || a->type != b->type || a->nargs != b->nargs) return false;
    if (a->op == OP_CONST && memcmp(&a->value, &b->value, sizeof a->value) != 0) return false;
    if (a->var != b->var || a->tensor != b->tensor) return false;
    if (!ir_exprs_equal(a->pad, b->pad)) return false;
    for (int i = 0; i < a->nargs; i++)
        if (!ir_exprs_equal(a->args[i], b->args[i])) return false;
    return true;
}

/* ---- binding sizes from argument shapes ------------------------------------------------------ */

/* Where a size got its value: from input `tensor`'s axis `axis`, or preset (tensor < 0). */
typedef struct SizeSource {
    int tensor;
    int axis;
} SizeSource;

static bool const_i64(const Expr *e, int64_t *v)
{
    if (e->op != OP_CONST || dtype_is_float(e->type)) return false;
    *v = e->value.i;
    return true;
}

/* If dim is a size var S, S + c, c + S, S - c, c * S or S * c, returns S's index in
 * k->sizes and the value of S that makes dim equal to actual; -1 otherwise. */
static int solve_dim(const Kernel *k, const Expr *dim, int64_t actual, int64_t *val)
{
    if (dim->op == OP_VAR) {
        *val = actual;
        return size_index(k, dim->var);
    }
    if (dim->nargs != 2 || (dim->op != OP_ADD && dim->op != OP_SUB && dim->op != OP_MUL))
        return -1;
    const Expr *v = dim->args[0], *c = dim->args[1];
    int64_t cv;
    if (v->op != OP_VAR && dim->op != OP_SUB) {
        const Expr *t = v;
        v = c;
        c = t;
    }
    if (v->op != OP_VAR || !const_i64(c, &cv)) return -1;
    bool ok;
    if (dim->op == OP_ADD) {
        ok = !__builtin_sub_overflow(actual, cv, val);
    } else if (dim->op == OP_SUB) {
        ok = ck_add_i64(actual, cv, val);
    } else {  /* OP_MUL: only an exact multiple gives a value; the check reports the rest */
        ok = cv > 0 && actual % cv == 0;
        if (ok) *val = actual / cv;
    }
    return ok ? size_index(k, v->var) : -1;
}

/* Collects the distinct size indices a dim expression mentions (at most nmax). */
static int dim_sizes(const Kernel *k, const Expr *e, int *out, int n, int nmax)
{
    if (e->op == OP_VAR) {
        int i = size_index(k, e->var);
        for (int j = 0; j < n; j++)
            if (out[j] == i) return n;
        if (i >= 0 && n < nmax) out[n++] = i;
        return n;
    }
    for (int a = 0; a < e->nargs; a++) n = dim_sizes(k, e->args[a], out, n, nmax);
    return n;
}

/* "q has D = 64", or "D = 64 was set with -D". */
static void put_source(const Kernel *k, const int64_t *const *in_shapes, const SizeSource *src,
                       int si, const int64_t *sizes, StrBuf *err)
{
    const char *name = k->sizes[si]->name;
    if (src[si].tensor < 0) {
        sb_printf(err, "%s = %lld was set with -D", name, (long long)sizes[si]);
        return;
    }
    const Tensor *t = k->ins[src[si].tensor];
    sb_printf(err, "%s has ", t->name);
    ir_print_size(t->shape[src[si].axis], err);
    sb_printf(err, " = %lld", (long long)in_shapes[src[si].tensor][src[si].axis]);
}

static void report_mismatch(const Kernel *k, const int64_t *const *in_shapes, int ti, int axis,
                            int64_t expected, const SizeSource *src, const int64_t *sizes,
                            StrBuf *err)
{
    const Tensor *t = k->ins[ti];
    const Expr *dim = t->shape[axis];
    int64_t actual = in_shapes[ti][axis];
    int used[IR_MAX_RANK * 4];
    int nused = dim_sizes(k, dim, used, 0, TD_COUNTOF(used));
    if (nused == 0) {
        sb_printf(err, "%s: %s has size %lld on axis %d but the kernel expects %lld", k->name,
                  t->name, (long long)actual, axis, (long long)expected);
        return;
    }
    sb_printf(err, "%s: %s has ", k->name, t->name);
    ir_print_size(dim, err);
    sb_printf(err, " = %lld but ", (long long)actual);
    for (int j = 0; j < nused; j++) {
        if (j) sb_puts(err, " and ");
        put_source(k, in_shapes, src, used[j], sizes, err);
    }
    if (dim->op != OP_VAR) {  /* say what the compound dimension should have been */
        sb_puts(err, ", so ");
        ir_print_size(dim, err);
        sb_printf(err, " = %lld", (long long)expected);
    }
}

bool ir_bind_sizes(const Kernel *k, const int64_t *const *in_shapes, const int *in_ranks,
                   int64_t *sizes, StrBuf *err)
{
    for (int i = 0; i < k->nins; i++) {
        if (in_ranks[i] != k->ins[i]->rank) {
            sb_printf(err, "%s: %s has rank %d but the kernel expects rank %d", k->name,
                      k->ins[i]->name, in_ranks[i], k->ins[i]->rank);
            return false;
        }
    }
    SizeSource src_buf[64];
    SizeSource *src = k->nsizes <= 64 ? src_buf : malloc((size_t)k->nsizes * sizeof *src);
    if (!src) td_internal_error(__FILE__, __LINE__, "out of memory");
    for (int s = 0; s < k->nsizes; s++) src[s] = (SizeSource){-1, -1};

    /* Bind: the first parameter that determines a size gives it its value. */
    bool ok = true;
    for (int i = 0; i < k->nins && ok; i++) {
        for (int a = 0; a < k->ins[i]->rank && ok; a++) {
            int64_t val;
            int s = solve_dim(k, k->ins[i]->shape[a], in_shapes[i][a], &val);
            if (s < 0 || sizes[s] >= 0) continue;
            sizes[s] = val;
            src[s] = (SizeSource){i, a};
            if (val < 1) {
                sb_printf(err, "%s: %s gives %s = %lld but sizes must be at least 1", k->name,
                          k->ins[i]->name, k->sizes[s]->name, (long long)val);
                ok = false;
            }
        }
    }
    for (int s = 0; s < k->nsizes && ok; s++) {
        if (src[s].tensor < 0 && sizes[s] == 0) {
            sb_printf(err, "%s: %s = 0 was set with -D but sizes must be at least 1", k->name,
                      k->sizes[s]->name);
            ok = false;
        }
    }
    /* Check: every dimension must now agree (presets included). */
    for (int i = 0; i < k->nins && ok; i++) {
        for (int a = 0; a < k->ins[i]->rank && ok; a++) {
            int64_t want;
            if (!ir_eval_size(k, k->ins[i]->shape[a], sizes, &want)) continue;  /* unbound */
            if (want != in_shapes[i][a]) {
                report_mismatch(k, in_shapes, i, a, want, src, sizes, err);
                ok = false;
            }
        }
    }
    if (src != src_buf) free(src);
    return ok;
}
