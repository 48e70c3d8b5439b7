/* interp: the reference interpreter of the tensor IR, the oracle every other test compares
 * against. It favours obvious code over speed, but avoids per-element allocation: every
 * tensor gets one buffer up front and the expression tree is walked per element.
 *
 * Takes a kernel that passed ir_verify, bound sizes and the inputs in storage layout; gives
 * the outputs in storage layout. Semantics (the language's, written down here once):
 *
 *   Values. Every tensor is held as an array of Value: double for float dtypes, int64 for
 *   integers and bool. Inputs are converted on entry, outputs converted back on exit.
 *
 *   Arithmetic happens in the node's dtype: computed in double / int64, then rounded
 *   (f32 by (float), f16/bf16 through the bit conversions, round to nearest even) or
 *   wrapped two's-complement to the width (i4/u4/i2 included) after every single op.
 *   Integer `/` rounds toward zero and `%` takes the dividend's sign (C). The language
 *   promises arithmetic is never undefined, so: x / 0 = 0, x % 0 = x, INT_MIN / -1 wraps
 *   to INT_MIN, INT_MIN % -1 = 0. Float `%` is fmod. Integer pow multiplies with wrap; a
 *   negative exponent gives 0 unless the base is 1 or -1. round is half to even; sign of
 *   NaN is NaN; float min/max/clamp propagate NaN; abs(INT_MIN) = INT_MIN.
 *
 *   Index expressions (the operands of an access) divide toward minus infinity: `i / c`
 *   is floor and `i % c` is in [0, c) as LANGUAGE.md section 6 says. The difference from
 *   value arithmetic shows only for negative numerators, i.e. in padded accesses like
 *   `x[(i - 1) / 2] ?? 0`, where floor makes i = 0 read the pad.
 *
 *   Casts: float to int rounds toward zero and saturates, NaN gives 0; int to int
 *   saturates as well (a decision: no silent wrap at a conversion); anything to bool is
 *   `!= 0` (NaN gives true); bool to a number is 0 or 1; to a float rounds once.
 *
 *   Reductions: float sum/prod/mean accumulate in double and round once, at the end, to the
 *   destination dtype (the oracle is at least as accurate as any compiled order). Integer
 *   sum/prod wrap in the dtype; integer mean sums in int64 and truncates the division, so
 *   the mean of i8 values never overflows. max/min propagate NaN. argmax/argmin give the
 *   first index of the extreme, flattened over the reduction variables in order; NaN
 *   counts as the extreme (the first NaN wins, as in PyTorch). An empty range gives the
 *   identity: 0, 1, NaN (float mean), the dtype's lowest / highest, index 0, false, true.
 *
 *   Scans: each state starts from its initial value (broadcast) or tensor (copied); per
 *   step the body runs in order with the scan variable bound, then every state with a
 *   `next` takes that value. After the scan the state holds the final value. */
#include "ir.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* The largest buffer one tensor may take (as Values), so a wrong size fails cleanly. */
#define INTERP_MAX_BYTES ((uint64_t)16 << 30)

typedef struct Buf {
    Value  *data;                  /* n values, row-major; NULL until allocated */
    size_t  n;                     /* elements */
    int64_t shape[IR_MAX_RANK];
    int64_t stride[IR_MAX_RANK];   /* in elements */
} Buf;

typedef struct Interp {
    const Kernel  *k;
    const int64_t *sizes;   /* parallel to k->sizes */
    StrBuf        *err;
    bool           failed;  /* set by the first run-time error; everything then unwinds */
    int            nids;    /* 1 + the largest Var / Tensor id in the kernel */
    int64_t       *vals;    /* per var id: its current value */
    Buf           *bufs;    /* per tensor id */
} Interp;

static void fail(Interp *in, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail(Interp *in, const char *fmt, ...)
{
    if (in->failed) return;  /* keep the first message: the others follow from it */
    in->failed = true;
    va_list ap;
    va_start(ap, fmt);
    sb_printf(in->err, "%s: ", in->k->name);
    sb_vprintf(in->err, fmt, ap);
    va_end(ap);
}

/* ---- scalar semantics --------------------------------------------------------------------- */

static bool is_compare(Op op)
{
    return op == OP_LT || op == OP_LE || op == OP_GT || op == OP_GE || op == OP_EQ || op == OP_NE;
}

static double fmin_nan(double a, double b) { return isnan(a) || isnan(b) ? NAN : a < b ? a : b; }
static double fmax_nan(double a, double b) { return isnan(a) || isnan(b) ? NAN : a > b ? a : b; }

/* Float ops in double; the caller rounds to the dtype. */
static double apply_f(Op op, DType t, const double *a)
{
    switch (op) {
    case OP_NEG: return -a[0];
    case OP_EXP: return exp(a[0]);
    case OP_LOG: return log(a[0]);
    case OP_EXP2: return exp2(a[0]);
    case OP_LOG2: return log2(a[0]);
    case OP_SQRT: return sqrt(a[0]);
    case OP_RSQRT: return 1.0 / sqrt(a[0]);
    case OP_ABS: return fabs(a[0]);
    case OP_SIN: return sin(a[0]);
    case OP_COS: return cos(a[0]);
    case OP_TANH: return tanh(a[0]);
    case OP_SIGMOID: return 1.0 / (1.0 + exp(-a[0]));
    case OP_ERF: return erf(a[0]);
    case OP_FLOOR: return floor(a[0]);
    case OP_CEIL: return ceil(a[0]);
    case OP_ROUND: return nearbyint(a[0]);  /* default rounding mode: half to even */
    case OP_TRUNC: return trunc(a[0]);
    case OP_SIGN: return isnan(a[0]) ? a[0] : a[0] > 0 ? 1.0 : a[0] < 0 ? -1.0 : a[0];
    case OP_ADD: return a[0] + a[1];
    case OP_SUB: return a[0] - a[1];
    case OP_MUL: return a[0] * a[1];
    case OP_DIV: return a[0] / a[1];
    case OP_MOD: return fmod(a[0], a[1]);
    case OP_POW: return pow(a[0], a[1]);
    case OP_MIN: return fmin_nan(a[0], a[1]);
    case OP_MAX: return fmax_nan(a[0], a[1]);
    case OP_CLAMP: return fmin_nan(fmax_nan(a[0], a[1]), a[2]);
    case OP_FMA:
        /* fused: one rounding; for f32 and narrower fmaf rounds where compiled code does */
        return t == DT_F64 ? fma(a[0], a[1], a[2]) : fmaf((float)a[0], (float)a[1], (float)a[2]);
    case OP_CONST: case OP_VAR: case OP_ACCESS: case OP_CAST: case OP_NOT: case OP_ISNAN:
    case OP_LT: case OP_LE: case OP_GT: case OP_GE: case OP_EQ: case OP_NE: case OP_AND:
    case OP_OR: case OP_SELECT: case OP_COUNT:
        break;
    }
    TD_UNREACHABLE("apply_f: op handled elsewhere");
}

static int64_t int_div(int64_t a, int64_t b)
{
    if (b == 0) return 0;                       /* defined, not trapped: see the header */
    if (b == -1) return (int64_t)(0 - (uint64_t)a);  /* INT_MIN / -1 wraps */
    return a / b;
}

static int64_t int_mod(int64_t a, int64_t b)
{
    if (b == 0) return a;
    if (b == -1) return 0;
    return a % b;
}

static int64_t int_pow(int64_t base, int64_t e)
{
    if (e < 0) return base == 1 ? 1 : base == -1 ? (e % 2 ? -1 : 1) : 0;
    uint64_t r = 1, b = (uint64_t)base;
    for (; e; e >>= 1) {  /* products mod 2^64 wrap to the same value mod 2^bits */
        if (e & 1) r *= b;
        b *= b;
    }
    return (int64_t)r;
}

/* Integer (and bool) ops in int64 with wrap at 64 bits; the caller wraps to the dtype. */
static int64_t apply_i(Op op, DType t, const int64_t *a)
{
    uint64_t x = (uint64_t)a[0], y = (uint64_t)a[1];
    switch (op) {
    case OP_NEG: return (int64_t)(0 - x);
    case OP_NOT: return !a[0];
    case OP_ABS: return a[0] < 0 ? (int64_t)(0 - x) : a[0];
    case OP_FLOOR: case OP_CEIL: case OP_ROUND: case OP_TRUNC: return a[0];
    case OP_SIGN: return (a[0] > 0) - (a[0] < 0);
    case OP_ADD: return (int64_t)(x + y);
    case OP_SUB: return (int64_t)(x - y);
    case OP_MUL: return (int64_t)(x * y);
    case OP_DIV: return int_div(a[0], a[1]);
    case OP_MOD: return int_mod(a[0], a[1]);
    case OP_POW: return int_pow(a[0], a[1]);
    case OP_MIN: return a[0] < a[1] ? a[0] : a[1];
    case OP_MAX: return a[0] > a[1] ? a[0] : a[1];
    case OP_CLAMP: {
        int64_t v = a[0] > a[1] ? a[0] : a[1];
        return v < a[2] ? v : a[2];
    }
    case OP_FMA: return (int64_t)(x * y + (uint64_t)a[2]);
    case OP_AND: return a[0] && a[1];
    case OP_OR: return a[0] || a[1];
    case OP_EXP: case OP_LOG: case OP_EXP2: case OP_LOG2: case OP_SQRT: case OP_RSQRT:
    case OP_SIN: case OP_COS: case OP_TANH: case OP_SIGMOID: case OP_ERF: {
        /* float-only builtins (the verifier rejects them on ints): through double */
        double d[3] = {(double)a[0], (double)a[1], (double)a[2]};
        return dtype_saturate_f(t, apply_f(op, DT_F64, d));
    }
    case OP_CONST: case OP_VAR: case OP_ACCESS: case OP_CAST: case OP_ISNAN: case OP_LT:
    case OP_LE: case OP_GT: case OP_GE: case OP_EQ: case OP_NE: case OP_SELECT: case OP_COUNT:
        break;
    }
    TD_UNREACHABLE("apply_i: op handled elsewhere");
}

static Value cast_value(DType from, DType to, Value v)
{
    Value r;
    if (to == DT_BOOL) {
        r.i = dtype_is_float(from) ? v.f != 0 : v.i != 0;
    } else if (dtype_is_float(to)) {
        if (dtype_is_float(from)) r.f = dtype_round_f(to, v.f);
        else r.f = to == DT_F64 ? (double)v.i : dtype_round_f(to, (double)(float)v.i);
    } else if (dtype_is_float(from)) {
        r.i = dtype_saturate_f(to, v.f);
    } else {
        int64_t lo, hi;  /* int to int saturates */
        dtype_int_range(to, &lo, &hi);
        r.i = v.i < lo ? lo : v.i > hi ? hi : v.i;
    }
    return r;
}

static bool compare(Op op, DType t, Value a, Value b)
{
    if (dtype_is_float(t)) {
        double x = a.f, y = b.f;
        return op == OP_LT ? x < y : op == OP_LE ? x <= y : op == OP_GT ? x > y
             : op == OP_GE ? x >= y : op == OP_EQ ? x == y : x != y;
    }
    int64_t x = a.i, y = b.i;
    return op == OP_LT ? x < y : op == OP_LE ? x <= y : op == OP_GT ? x > y
         : op == OP_GE ? x >= y : op == OP_EQ ? x == y : x != y;
}

/* Applies e's op (not const/var/access/select) to operand values a[]. */
static Value apply(const Expr *e, const Value *a)
{
    DType t = e->type;
    DType at = e->args[0]->type;
    Value r;
    if (e->op == OP_CAST) return cast_value(at, t, a[0]);
    if (is_compare(e->op)) {
        r.i = compare(e->op, at, a[0], a[1]);
    } else if (e->op == OP_ISNAN) {
        r.i = dtype_is_float(at) && isnan(a[0].f);
    } else if (dtype_is_float(t)) {
        double d[3] = {a[0].f, e->nargs > 1 ? a[1].f : 0, e->nargs > 2 ? a[2].f : 0};
        r.f = dtype_round_f(t, apply_f(e->op, t, d));
    } else {
        int64_t d[3] = {a[0].i, e->nargs > 1 ? a[1].i : 0, e->nargs > 2 ? a[2].i : 0};
        r.i = dtype_wrap_i(t, apply_i(e->op, t, d));
    }
    return r;
}

/* ---- expressions ----------------------------------------------------------------------------- */

static Value eval(Interp *in, const Expr *e);

static int64_t floor_div(int64_t a, int64_t b)
{
    if (b == 0) return 0;
    if (b == -1) return (int64_t)(0 - (uint64_t)a);
    int64_t q = a / b;
    return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

static int64_t floor_mod(int64_t a, int64_t b)
{
    if (b == 0) return a;
    if (b == -1) return 0;
    int64_t r = a % b;
    return (r != 0 && ((r < 0) != (b < 0))) ? r + b : r;
}

/* An index expression: affine i64 arithmetic with floor division (see the header). */
static int64_t eval_index(Interp *in, const Expr *e)
{
    switch (e->op) {
    case OP_CONST: return e->value.i;
    case OP_VAR: return in->vals[e->var->id];
    case OP_ADD: case OP_SUB: case OP_MUL: case OP_DIV: case OP_MOD: {
        int64_t a = eval_index(in, e->args[0]), b = eval_index(in, e->args[1]);
        uint64_t x = (uint64_t)a, y = (uint64_t)b;
        if (e->op == OP_ADD) return (int64_t)(x + y);
        if (e->op == OP_SUB) return (int64_t)(x - y);
        if (e->op == OP_MUL) return (int64_t)(x * y);
        return e->op == OP_DIV ? floor_div(a, b) : floor_mod(a, b);
    }
    case OP_NEG: return (int64_t)(0 - (uint64_t)eval_index(in, e->args[0]));
    case OP_ACCESS: case OP_CAST: case OP_NOT: case OP_EXP: case OP_LOG: case OP_EXP2:
    case OP_LOG2: case OP_SQRT: case OP_RSQRT: case OP_ABS: case OP_SIN: case OP_COS:
    case OP_TANH: case OP_SIGMOID: case OP_ERF: case OP_FLOOR: case OP_CEIL: case OP_ROUND:
    case OP_TRUNC: case OP_SIGN: case OP_ISNAN: case OP_POW: case OP_MIN: case OP_MAX:
    case OP_LT: case OP_LE: case OP_GT: case OP_GE: case OP_EQ: case OP_NE: case OP_AND:
    case OP_OR: case OP_SELECT: case OP_CLAMP: case OP_FMA: case OP_COUNT:
        break;
    }
    return eval(in, e).i;  /* anything else is an ordinary i64 value */
}

static Value load(Interp *in, const Expr *e)
{
    const Buf *b = &in->bufs[e->tensor->id];
    int64_t off = 0;
    for (int a = 0; a < e->nargs; a++) {
        int64_t i = eval_index(in, e->args[a]);
        if (i < 0 || i >= b->shape[a]) {
            if (e->pad) return eval(in, e->pad);
            /* The front end proved every unpadded access in bounds: this is a compiler bug,
             * reported as a failure rather than a wild read. */
            fail(in, "internal error: index %lld out of range [0, %lld) on axis %d of %s",
                 (long long)i, (long long)b->shape[a], a, e->tensor->name);
            return (Value){.i = 0};
        }
        off += i * b->stride[a];
    }
    return b->data[off];
}

static Value eval(Interp *in, const Expr *e)
{
    Value a[3];
    switch (e->op) {
    case OP_CONST: return e->value;
    case OP_VAR: return (Value){.i = in->vals[e->var->id]};
    case OP_ACCESS: return load(in, e);
    case OP_SELECT:  /* only the chosen branch is evaluated */
        return eval(in, e->args[0]).i ? eval(in, e->args[1]) : eval(in, e->args[2]);
    case OP_CAST: case OP_NEG: case OP_NOT: case OP_EXP: case OP_LOG: case OP_EXP2:
    case OP_LOG2: case OP_SQRT: case OP_RSQRT: case OP_ABS: case OP_SIN: case OP_COS:
    case OP_TANH: case OP_SIGMOID: case OP_ERF: case OP_FLOOR: case OP_CEIL: case OP_ROUND:
    case OP_TRUNC: case OP_SIGN: case OP_ISNAN: case OP_ADD: case OP_SUB: case OP_MUL:
    case OP_DIV: case OP_MOD: case OP_POW: case OP_MIN: case OP_MAX: case OP_LT: case OP_LE:
    case OP_GT: case OP_GE: case OP_EQ: case OP_NE: case OP_AND: case OP_OR: case OP_CLAMP:
    case OP_FMA:
        for (int i = 0; i < e->nargs; i++) a[i] = eval(in, e->args[i]);
        return apply(e, a);
    case OP_COUNT: break;
    }
    TD_UNREACHABLE("eval: bad op");
}

/* ---- reductions --------------------------------------------------------------------------------- */

typedef struct Acc {
    double  f;        /* float sum / product */
    int64_t i;        /* integer sum / product / any / all */
    Value   best;     /* max / min / arg: the extreme so far */
    int64_t best_at;  /* arg: its flattened index */
    int64_t count;    /* elements combined */
} Acc;

static Acc acc_init(ReduceOp rop)
{
    Acc acc = {0};
    if (rop == RED_PROD) {
        acc.f = 1;
        acc.i = 1;
    }
    if (rop == RED_ALL) acc.i = 1;
    return acc;
}

/* Does v replace the current extreme? For floats the first NaN wins and then stays. */
static bool better(ReduceOp rop, bool fl, const Acc *acc, Value v)
{
    if (acc->count == 0) return true;
    bool want_max = rop == RED_MAX || rop == RED_ARGMAX;
    if (fl) {
        if (isnan(acc->best.f)) return false;
        if (isnan(v.f)) return true;
        return want_max ? v.f > acc->best.f : v.f < acc->best.f;
    }
    return want_max ? v.i > acc->best.i : v.i < acc->best.i;
}

static void acc_add(Acc *acc, ReduceOp rop, bool fl, Value v)
{
    switch (rop) {
    case RED_SUM: case RED_MEAN:
        if (fl) acc->f += v.f;
        else acc->i = (int64_t)((uint64_t)acc->i + (uint64_t)v.i);
        break;
    case RED_PROD:
        if (fl) acc->f *= v.f;
        else acc->i = (int64_t)((uint64_t)acc->i * (uint64_t)v.i);
        break;
    case RED_MAX: case RED_MIN: case RED_ARGMAX: case RED_ARGMIN:
        if (better(rop, fl, acc, v)) {
            acc->best = v;
            acc->best_at = acc->count;
        }
        break;
    case RED_ANY: acc->i = acc->i || v.i; break;
    case RED_ALL: acc->i = acc->i && v.i; break;
    case RED_NONE: TD_UNREACHABLE("acc_add: no reduction");
    }
    acc->count++;
}

static Value acc_result(const Acc *acc, ReduceOp rop, bool fl, DType dt)
{
    Value r = {.i = 0};
    switch (rop) {
    case RED_SUM: case RED_PROD:
        if (fl) r.f = dtype_round_f(dt, acc->f);
        else r.i = dtype_wrap_i(dt, acc->i);
        return r;
    case RED_MEAN:
        if (fl) r.f = dtype_round_f(dt, acc->count ? acc->f / (double)acc->count : NAN);
        else r.i = dtype_wrap_i(dt, acc->count ? acc->i / acc->count : 0);
        return r;
    case RED_MAX: case RED_MIN:
        if (acc->count) return acc->best;
        if (fl) {
            r.f = rop == RED_MAX ? -INFINITY : INFINITY;
        } else {
            int64_t lo, hi;
            dtype_int_range(dt, &lo, &hi);
            r.i = rop == RED_MAX ? lo : hi;
        }
        return r;
    case RED_ARGMAX: case RED_ARGMIN: r.i = dtype_wrap_i(dt, acc->best_at); return r;
    case RED_ANY: case RED_ALL: r.i = acc->i; return r;
    case RED_NONE: break;
    }
    TD_UNREACHABLE("acc_result: no reduction");
}

/* Runs the reduction of d for the current values of its index variables. */
static Value reduce(Interp *in, const Def *d, const int64_t *ext)
{
    bool fl = dtype_is_float(d->body->type);
    Acc acc = acc_init(d->rop);
    bool empty = false;
    for (int r = 0; r < d->nred; r++) {
        in->vals[d->red[r]->id] = 0;
        empty |= ext[r] <= 0;
    }
    while (!empty && !in->failed) {
        acc_add(&acc, d->rop, fl, eval(in, d->body));
        int r = d->nred - 1;  /* odometer over the reduction vars, the last fastest */
        while (r >= 0 && ++in->vals[d->red[r]->id] == ext[r]) in->vals[d->red[r--]->id] = 0;
        if (r < 0) break;
    }
    return acc_result(&acc, d->rop, fl, d->dst->dtype);
}

/* ---- statements ------------------------------------------------------------------------------------ */

static bool eval_extent(Interp *in, const Var *x, int64_t *out)
{
    if (!ir_eval_size(in->k, x->extent, in->sizes, out)) {
        fail(in, "the extent of %s cannot be evaluated (overflow or unbound size)", x->name);
        return false;
    }
    return true;
}

static bool run_def(Interp *in, const Def *d)
{
    const Tensor *t = d->dst;
    Buf *b = &in->bufs[t->id];
    const Var *loop[IR_MAX_RANK];
    int64_t ext[IR_MAX_RANK], red_ext[64];
    int nloop = 0;
    if (d->nred > TD_COUNTOF(red_ext)) {
        fail(in, "%s: more than %d reduction variables", t->name, TD_COUNTOF(red_ext));
        return false;
    }
    for (int a = 0; a < t->rank; a++) {
        const Var *x = d->idx[a];
        if (x->kind == VAR_SCAN) {  /* fixed by the enclosing scan: writes the slice at t */
            int64_t s = in->vals[x->id];
            if (s < 0 || s >= b->shape[a]) {
                fail(in, "%s: scan step %lld outside axis %d of size %lld", t->name,
                     (long long)s, a, (long long)b->shape[a]);
                return false;
            }
            continue;
        }
        if (!eval_extent(in, x, &ext[nloop])) return false;
        if (ext[nloop] != b->shape[a]) {
            fail(in, "%s: index %s has extent %lld but axis %d has size %lld", t->name, x->name,
                 (long long)ext[nloop], a, (long long)b->shape[a]);
            return false;
        }
        loop[nloop++] = x;
    }
    for (int r = 0; r < d->nred; r++)
        if (!eval_extent(in, d->red[r], &red_ext[r])) return false;
    for (int l = 0; l < nloop; l++) {
        if (ext[l] <= 0) return true;  /* nothing to define */
        in->vals[loop[l]->id] = 0;
    }
    for (;;) {
        int64_t off = 0;
        for (int a = 0; a < t->rank; a++) off += in->vals[d->idx[a]->id] * b->stride[a];
        b->data[off] = d->rop == RED_NONE ? eval(in, d->body) : reduce(in, d, red_ext);
        if (in->failed) return false;
        int l = nloop - 1;  /* odometer over the loop vars, the last fastest */
        while (l >= 0 && ++in->vals[loop[l]->id] == ext[l]) in->vals[loop[l--]->id] = 0;
        if (l < 0) return true;
    }
}

static bool run_stmt(Interp *in, const Stmt *s);

static bool init_state(Interp *in, const ScanState *st)
{
    Buf *b = &in->bufs[st->state->id];
    if (st->init_tensor) {
        const Buf *src = &in->bufs[st->init_tensor->id];
        if (src->n != b->n) {
            fail(in, "state %s: initial tensor %s has %zu elements, not %zu", st->state->name,
                 st->init_tensor->name, src->n, b->n);
            return false;
        }
        memcpy(b->data, src->data, b->n * sizeof(Value));
    } else {
        for (size_t j = 0; j < b->n; j++) b->data[j] = st->init_value->value;
    }
    return true;
}

static bool run_scan(Interp *in, const Scan *sc)
{
    int64_t steps;
    if (!eval_extent(in, sc->var, &steps)) return false;
    for (int i = 0; i < sc->nstates; i++)
        if (!init_state(in, &sc->states[i])) return false;
    for (int64_t step = 0; step < steps; step++) {
        in->vals[sc->var->id] = sc->reverse ? steps - 1 - step : step;
        for (int i = 0; i < sc->nbody; i++)
            if (!run_stmt(in, sc->body[i])) return false;
        for (int i = 0; i < sc->nstates; i++) {
            const ScanState *st = &sc->states[i];
            if (!st->next) continue;
            Buf *dst = &in->bufs[st->state->id];
            memcpy(dst->data, in->bufs[st->next->id].data, dst->n * sizeof(Value));
        }
    }
    return true;
}

static bool run_stmt(Interp *in, const Stmt *s)
{
    switch (s->kind) {
    case STMT_DEF: return run_def(in, &s->def);
    case STMT_SCAN: return run_scan(in, &s->scan);
    }
    TD_UNREACHABLE("run_stmt: bad statement kind");
}

/* ---- buffers --------------------------------------------------------------------------------------- */

/* Visits every Var and Tensor the kernel mentions, to size the per-id tables and then to
 * allocate one buffer per tensor. */
typedef struct Walk {
    int       max_id;
    Interp   *in;        /* NULL in the sizing pass */
} Walk;

static bool alloc_buf(Interp *in, const Tensor *t);

static void walk_tensor(Walk *w, const Tensor *t)
{
    if (!t) return;
    if (t->id > w->max_id) w->max_id = t->id;
    if (w->in && !w->in->failed && !w->in->bufs[t->id].data) alloc_buf(w->in, t);
}

static void walk_var(Walk *w, const Var *x)
{
    if (x && x->id > w->max_id) w->max_id = x->id;
}

static void walk_expr(Walk *w, const Expr *e)
{
    if (!e) return;
    walk_var(w, e->var);
    walk_tensor(w, e->tensor);
    walk_expr(w, e->pad);
    for (int i = 0; i < e->nargs; i++) walk_expr(w, e->args[i]);
}

static void walk_stmt(Walk *w, const Stmt *s)
{
    if (s->kind == STMT_DEF) {
        walk_tensor(w, s->def.dst);
        for (int a = 0; a < s->def.dst->rank; a++) walk_var(w, s->def.idx[a]);
        for (int r = 0; r < s->def.nred; r++) walk_var(w, s->def.red[r]);
        walk_expr(w, s->def.body);
        return;
    }
    walk_var(w, s->scan.var);
    for (int i = 0; i < s->scan.nstates; i++) {
        walk_tensor(w, s->scan.states[i].state);
        walk_tensor(w, s->scan.states[i].next);
        walk_tensor(w, s->scan.states[i].init_tensor);
    }
    for (int i = 0; i < s->scan.nbody; i++) walk_stmt(w, s->scan.body[i]);
}

static void walk_kernel(Walk *w, const Kernel *k)
{
    for (int i = 0; i < k->nsizes; i++) walk_var(w, k->sizes[i]);
    for (int i = 0; i < k->nins; i++) walk_tensor(w, k->ins[i]);
    for (int i = 0; i < k->nouts; i++) walk_tensor(w, k->outs[i]);
    for (int i = 0; i < k->ntemps; i++) walk_tensor(w, k->temps[i]);
    for (int i = 0; i < k->nstmts; i++) walk_stmt(w, k->stmts[i]);
}

static bool alloc_buf(Interp *in, const Tensor *t)
{
    Buf *b = &in->bufs[t->id];
    size_t n = 1;
    for (int a = t->rank - 1; a >= 0; a--) {
        int64_t dim;
        if (!ir_eval_size(in->k, t->shape[a], in->sizes, &dim) || dim < 0) {
            fail(in, "%s: axis %d has no valid size", t->name, a);
            return false;
        }
        b->shape[a] = dim;
        b->stride[a] = (int64_t)n;
        if (!ck_mul_size(n, (size_t)dim, &n) || n > INTERP_MAX_BYTES / sizeof(Value)) {
            fail(in, "%s is too large for the interpreter (over %llu GiB)", t->name,
                 (unsigned long long)(INTERP_MAX_BYTES >> 30));
            return false;
        }
    }
    b->n = n;
    b->data = calloc(n ? n : 1, sizeof(Value));
    if (!b->data) {
        fail(in, "out of memory for %s (%llu elements)", t->name, (unsigned long long)n);
        return false;
    }
    return true;
}

/* Checks that a caller's tensor matches the kernel's view of t. */
static bool check_data(Interp *in, const Tensor *t, const TensorData *td)
{
    const Buf *b = &in->bufs[t->id];
    if (td->dtype != t->dtype || td->rank != t->rank) {
        fail(in, "%s: passed %s with rank %d, expected %s with rank %d", t->name,
             dtype_name(td->dtype), td->rank, dtype_name(t->dtype), t->rank);
        return false;
    }
    for (int a = 0; a < t->rank; a++) {
        if (td->shape[a] != b->shape[a]) {
            fail(in, "%s: axis %d is %lld, expected %lld", t->name, a, (long long)td->shape[a],
                 (long long)b->shape[a]);
            return false;
        }
    }
    size_t need;
    if (!dtype_storage_bytes(t->dtype, b->n, &need) || td->nbytes < need || (need && !td->data)) {
        fail(in, "%s: buffer of %zu bytes, %zu needed", t->name, td->nbytes, need);
        return false;
    }
    return true;
}

static void load_input(Interp *in, const Tensor *t, const TensorData *td)
{
    Buf *b = &in->bufs[t->id];
    bool fl = dtype_is_float(t->dtype);
    for (size_t j = 0; j < b->n; j++) {
        if (fl) b->data[j].f = dtype_load_f(t->dtype, td->data, j);
        else b->data[j].i = dtype_load_i(t->dtype, td->data, j);
    }
}

static void store_output(Interp *in, const Tensor *t, TensorData *td)
{
    const Buf *b = &in->bufs[t->id];
    bool fl = dtype_is_float(t->dtype);
    size_t bytes;
    dtype_storage_bytes(t->dtype, b->n, &bytes);
    if (bytes) memset(td->data, 0, bytes);  /* deterministic padding bits in packed types */
    for (size_t j = 0; j < b->n; j++) {
        if (fl) dtype_store_f(t->dtype, td->data, j, b->data[j].f);
        else dtype_store_i(t->dtype, td->data, j, b->data[j].i);
    }
}

/* ---- entry point ------------------------------------------------------------------------------------ */

static bool run(Interp *in, const TensorData *ins, TensorData *outs)
{
    const Kernel *k = in->k;
    for (int i = 0; i < k->nsizes; i++) {
        if (in->sizes[i] < 1) {
            fail(in, "size %s is not bound (%lld)", k->sizes[i]->name, (long long)in->sizes[i]);
            return false;
        }
        in->vals[k->sizes[i]->id] = in->sizes[i];
    }
    Walk w = {.max_id = -1, .in = in};
    walk_kernel(&w, k);
    if (in->failed) return false;
    for (int i = 0; i < k->nins; i++) {
        if (!check_data(in, k->ins[i], &ins[i])) return false;
        load_input(in, k->ins[i], &ins[i]);
    }
    for (int i = 0; i < k->nouts; i++)
        if (!check_data(in, k->outs[i], &outs[i])) return false;
    for (int i = 0; i < k->nstmts; i++)
        if (!run_stmt(in, k->stmts[i])) return false;
    for (int i = 0; i < k->nouts; i++) store_output(in, k->outs[i], &outs[i]);
    return true;
}

bool ir_interp_run(const Kernel *k, const int64_t *sizes, const TensorData *ins,
                   TensorData *outs, StrBuf *err)
{
    Walk w = {.max_id = -1, .in = NULL};
    walk_kernel(&w, k);
    Interp in = {.k = k, .sizes = sizes, .err = err, .nids = w.max_id + 1};
    in.vals = calloc((size_t)in.nids + 1, sizeof *in.vals);
    in.bufs = calloc((size_t)in.nids + 1, sizeof *in.bufs);
    bool ok = in.vals && in.bufs;
    if (!ok) fail(&in, "out of memory");
    else ok = run(&in, ins, outs);
    for (int i = 0; in.bufs && i < in.nids; i++) free(in.bufs[i].data);
    free(in.bufs);
    free(in.vals);
    return ok && !in.failed;
}
