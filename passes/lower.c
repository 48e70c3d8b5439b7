/* lower: tensor IR (level 1) to loop IR (level 2), one loop nest per definition.
 *
 * No scheduling here: every loop is serial (pass_parallelize, run next by ir_lower_module,
 * marks the parallel ones). Every temporary and scan state is
 * allocated for the whole function (heap; rank-0 ones on the stack). A definition becomes
 * loops over its index variables around a store; a reduction accumulates in a register
 * (f32 for f16/bf16/f32 sums, f64 for f64, the dtype itself for integers, i64 for integer
 * means) and stores once. A scan initialises its states, then runs its body in a serial
 * loop over the step variable, copying each redefined state's next value back after each
 * step. Expressions are shared with level 1 unchanged: padded loads, casts and the index
 * division rules mean the same at both levels. */
#include "passes.h"

#include <math.h>
#include <string.h>

typedef struct Lower {
    Module       *m;
    const Kernel *k;
} Lower;

static LStmt *lower_stmts(Lower *L, Stmt **stmts, int n);

/* Wraps body in loops over vars[0..n) (outermost first), skipping scan variables, which
 * their scan's loop binds. */
static LStmt *wrap_loops(Lower *L, Var **vars, int n, LStmt *body)
{
    for (int i = n - 1; i >= 0; i--) {
        if (vars[i]->kind == VAR_SCAN) continue;
        body = loop_for(L->m, vars[i], vars[i]->extent, LOOP_SERIAL, false, body);
    }
    return body;
}

static Expr **var_exprs(Lower *L, Var **vars, int n)
{
    Expr **e = arena_array(&L->m->arena, (size_t)n + 1, sizeof(Expr *));
    for (int i = 0; i < n; i++) e[i] = ir_var(L->m, vars[i]);
    return e;
}

static Expr *load0(Lower *L, Tensor *t) { return ir_access(L->m, t, NULL, NULL); }

static Expr *as_type(Lower *L, Expr *e, DType t) { return e->type == t ? e : ir_cast(L->m, t, e); }

/* The register dtype a reduction accumulates in. */
static DType acc_dtype(ReduceOp rop, DType body, DType dst)
{
    switch (rop) {
    case RED_SUM: case RED_PROD:
        if (dtype_is_float(dst)) return dst == DT_F64 ? DT_F64 : DT_F32;
        return dst;
    case RED_MEAN:
        if (dtype_is_float(dst)) return dst == DT_F64 ? DT_F64 : DT_F32;
        return DT_I64;
    case RED_MAX: case RED_MIN: case RED_ARGMAX: case RED_ARGMIN: return body;
    case RED_ANY: case RED_ALL: return DT_BOOL;
    case RED_NONE: break;
    }
    return dst;
}

/* The identity of the reduction, or the starting "worst" value for argmax/argmin. */
static Expr *acc_init(Lower *L, ReduceOp rop, DType t)
{
    Module *m = L->m;
    bool f = dtype_is_float(t);
    int64_t lo = 0, hi = 0;
    if (!f) dtype_int_range(t, &lo, &hi);
    switch (rop) {
    case RED_SUM: case RED_MEAN: return f ? ir_const_f(m, t, 0) : ir_const_i(m, t, 0);
    case RED_PROD: return f ? ir_const_f(m, t, 1) : ir_const_i(m, t, 1);
    case RED_MAX: case RED_ARGMAX: return f ? ir_const_f(m, t, -INFINITY) : ir_const_i(m, t, lo);
    case RED_MIN: case RED_ARGMIN: return f ? ir_const_f(m, t, INFINITY) : ir_const_i(m, t, hi);
    case RED_ANY: return ir_const_i(m, DT_BOOL, 0);
    case RED_ALL: return ir_const_i(m, DT_BOOL, 1);
    case RED_NONE: break;
    }
    TD_UNREACHABLE("acc_init");
}

/* The flattened index of the reduction variables: ((r0 * e1) + r1) * e2 + r2 ... */
static Expr *flat_index(Lower *L, Var **red, int n)
{
    Expr *flat = ir_var(L->m, red[0]);
    for (int i = 1; i < n; i++)
        flat = ir_binary(L->m, OP_ADD, ir_binary(L->m, OP_MUL, flat, red[i]->extent), ir_var(L->m, red[i]));
    return flat;
}

static LStmt *seq2(Lower *L, LStmt *a, LStmt *b)
{
    LStmt *two[2] = {a, b};
    return loop_seq(L->m, two, 2);
}

static LStmt *seq3(Lower *L, LStmt *a, LStmt *b, LStmt *c)
{
    LStmt *three[3] = {a, b, c};
    return loop_seq(L->m, three, 3);
}

/* argmax/argmin: keep the best value and its flattened index; the first NaN wins. */
static LStmt *lower_arg_reduction(Lower *L, const Def *d, Expr **dst_idx)
{
    Module *m = L->m;
    DType vt = d->body->type;
    Tensor *best = ir_tensor_new(m, TK_TEMP, "best", vt, 0, NULL);
    Tensor *where = ir_tensor_new(m, TK_TEMP, "best_index", DT_I64, 0, NULL);
    Tensor *val = ir_tensor_new(m, TK_TEMP, "value", vt, 0, NULL);
    Expr *v = load0(L, val), *b = load0(L, best);
    Op better = d->rop == RED_ARGMAX ? OP_GT : OP_LT;
    Expr *cond = ir_binary(m, better, v, b);
    if (dtype_is_float(vt))
        cond = ir_binary(m, OP_AND, ir_unary(m, OP_NOT, ir_unary(m, OP_ISNAN, b)),
                         ir_binary(m, OP_OR, cond, ir_unary(m, OP_ISNAN, v)));
    LStmt *take = seq2(L, loop_store(m, best, NULL, v), loop_store(m, where, NULL, flat_index(L, d->red, d->nred)));
    LStmt *step = seq2(L, loop_store(m, val, NULL, d->body), loop_if(m, cond, take, NULL));
    LStmt *loops = wrap_loops(L, d->red, d->nred, step);
    LStmt *init = seq2(L, loop_store(m, best, NULL, acc_init(L, d->rop, vt)), loop_store(m, where, NULL, ir_const_i(m, DT_I64, 0)));
    LStmt *fin = loop_store(m, d->dst, dst_idx, as_type(L, load0(L, where), d->dst->dtype));
    LStmt *body = seq3(L, init, loops, fin);
    body = loop_alloc(m, val, MEM_REGISTER, body);
    body = loop_alloc(m, where, MEM_REGISTER, body);
    return loop_alloc(m, best, MEM_REGISTER, body);
}

static LStmt *lower_reduction(Lower *L, const Def *d, Expr **dst_idx)
{
    if (d->rop == RED_ARGMAX || d->rop == RED_ARGMIN) return lower_arg_reduction(L, d, dst_idx);
    Module *m = L->m;
    DType at = acc_dtype(d->rop, d->body->type, d->dst->dtype);
    Tensor *acc = ir_tensor_new(m, TK_TEMP, "acc", at, 0, NULL);
    Expr *a = load0(L, acc), *b = as_type(L, d->body, at);
    Expr *next = NULL;
    switch (d->rop) {
    case RED_SUM: case RED_MEAN: next = ir_binary(m, OP_ADD, a, b); break;
    case RED_PROD: next = ir_binary(m, OP_MUL, a, b); break;
    case RED_MAX: next = ir_binary(m, OP_MAX, a, b); break;
    case RED_MIN: next = ir_binary(m, OP_MIN, a, b); break;
    case RED_ANY: next = ir_binary(m, OP_OR, a, b); break;
    case RED_ALL: next = ir_binary(m, OP_AND, a, b); break;
    case RED_ARGMAX: case RED_ARGMIN: case RED_NONE: TD_UNREACHABLE("lower_reduction op");
    }
    Expr *result = a;
    if (d->rop == RED_MEAN) {
        Expr *count = d->red[0]->extent;
        for (int i = 1; i < d->nred; i++) count = ir_binary(m, OP_MUL, count, d->red[i]->extent);
        result = ir_binary(m, OP_DIV, a, as_type(L, count, at));
    }
    LStmt *init = loop_store(m, acc, NULL, acc_init(L, d->rop, at));
    LStmt *loops = wrap_loops(L, d->red, d->nred, loop_store(m, acc, NULL, next));
    LStmt *fin = loop_store(m, d->dst, dst_idx, as_type(L, result, d->dst->dtype));
    return loop_alloc(m, acc, MEM_REGISTER, seq3(L, init, loops, fin));
}

static LStmt *lower_def(Lower *L, const Def *d)
{
    Expr **idx = var_exprs(L, d->idx, d->dst->rank);
    LStmt *inner = d->rop == RED_NONE ? loop_store(L->m, d->dst, idx, d->body) : lower_reduction(L, d, idx);
    return wrap_loops(L, d->idx, d->dst->rank, inner);
}

/* for every element of t: t[i...] = value(i...) */
static LStmt *fill(Lower *L, Tensor *t, Tensor *from, Expr *constant)
{
    Module *m = L->m;
    Var **vars = arena_array(&m->arena, (size_t)t->rank + 1, sizeof(Var *));
    for (int i = 0; i < t->rank; i++) vars[i] = ir_var_new(m, VAR_INDEX, arena_printf(&m->arena, "c%d", i), t->shape[i]);
    Expr **idx = var_exprs(L, vars, t->rank);
    Expr *value = from ? ir_access(m, from, idx, NULL) : constant;
    return wrap_loops(L, vars, t->rank, loop_store(m, t, idx, value));
}

static LStmt *lower_scan(Lower *L, const Scan *sc)
{
    Module *m = L->m;
    PtrVec init = {0}, step = {0};
    for (int i = 0; i < sc->nstates; i++) {
        const ScanState *s = &sc->states[i];
        pv_push(&m->arena, &init, fill(L, s->state, s->init_tensor, s->init_value));
    }
    pv_push(&m->arena, &step, lower_stmts(L, sc->body, sc->nbody));
    for (int i = 0; i < sc->nstates; i++) {
        const ScanState *s = &sc->states[i];
        if (s->next) pv_push(&m->arena, &step, fill(L, s->state, s->next, NULL));
    }
    LStmt *body = loop_seq(m, (LStmt **)step.items, step.len);
    pv_push(&m->arena, &init, loop_for(m, sc->var, sc->var->extent, LOOP_SERIAL, sc->reverse, body));
    return loop_seq(m, (LStmt **)init.items, init.len);
}

static LStmt *lower_stmts(Lower *L, Stmt **stmts, int n)
{
    LStmt **out = arena_array(&L->m->arena, (size_t)n + 1, sizeof(LStmt *));
    for (int i = 0; i < n; i++) {
        const Stmt *s = stmts[i];
        switch (s->kind) {
        case STMT_DEF: out[i] = lower_def(L, &s->def); break;
        case STMT_SCAN: out[i] = lower_scan(L, &s->scan); break;
        }
    }
    return loop_seq(L->m, out, n);
}

static LoopFunc *lower_kernel(Module *m, const Kernel *k)
{
    Lower L = {m, k};
    LStmt *body = lower_stmts(&L, k->stmts, k->nstmts);
    /* every temporary lives for the whole function; the innermost alloc is the last temp */
    for (int i = k->ntemps - 1; i >= 0; i--) {
        Tensor *t = k->temps[i];
        body = loop_alloc(m, t, t->rank == 0 ? MEM_STACK : MEM_HEAP, body);
    }
    LoopFunc *f = arena_alloc(&m->arena, sizeof(LoopFunc));
    f->kernel = k;
    f->body = loop_seq(m, &body, 1);
    return f;
}

LoopModule *pass_lower(Module *m)
{
    LoopModule *lm = arena_alloc(&m->arena, sizeof(LoopModule));
    lm->ir = m;
    lm->nfuncs = m->nkernels;
    lm->funcs = arena_array(&m->arena, (size_t)m->nkernels + 1, sizeof(LoopFunc *));
    for (int i = 0; i < m->nkernels; i++) lm->funcs[i] = lower_kernel(m, m->kernels[i]);
    return lm;
}
