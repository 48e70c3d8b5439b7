/* sema_expr: elaboration of expressions into tensor IR.
 *
 * Scalar mode (indexed definitions) turns an AST expression into one IR expression over
 * the definition's index variables. Whole-tensor mode (`t = expr`) first computes the
 * result's broadcast shape, then elaborates the same expression at fresh index variables,
 * with every tensor name read through numpy broadcasting. Calls of user fns are inlined:
 * the fn body is elaborated with its parameters bound to the caller's tensors or scalar
 * expressions. A reduction nested inside an expression is hoisted into a temporary
 * definition indexed by the variables it uses, so every IR definition has at most one
 * reduction, at its top. Every access is checked here: affine indices, in bounds. */
#include "sema_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static SVal poison(void) { SVal v = {0}; v.poison = true; return v; }
static SVal typed(Expr *e) { SVal v = {0}; v.e = e; return v; }
static SVal untyped_int(int64_t i) { SVal v = {0}; v.untyped = true; v.c.kind = CV_INT; v.c.i = i; return v; }
static SVal untyped_float(double f) { SVal v = {0}; v.untyped = true; v.c.kind = CV_FLOAT; v.c.f = f; return v; }
static SVal untyped_bool(bool b) { SVal v = {0}; v.untyped = true; v.c.kind = CV_BOOL; v.c.i = b; return v; }

static const char *span_text(Ctx *c, Span sp)
{
    if (!sp.file) return "?";
    size_t n = sp.len;
    if (n > 60) n = 60;
    return arena_strndup(&c->s->arena, sp.file->text + sp.off, n);
}

void describe_type(DType dt, int rank, Expr **dims, StrBuf *out)
{
    sb_puts(out, dtype_name(dt));
    if (rank == 0) return;
    sb_putc(out, '[');
    for (int i = 0; i < rank; i++) {
        if (i) sb_puts(out, ", ");
        ir_print_size(dims[i], out);
    }
    sb_putc(out, ']');
}

static const char *type_str(Ctx *c, DType dt, int rank, Expr **dims)
{
    StrBuf sb = {0};
    describe_type(dt, rank, dims, &sb);
    const char *s = arena_strdup(&c->s->arena, sb_cstr(&sb));
    sb_free(&sb);
    return s;
}

static const char *size_str(Ctx *c, const Expr *e)
{
    StrBuf sb = {0};
    ir_print_size(e, &sb);
    const char *s = arena_strdup(&c->s->arena, sb_cstr(&sb));
    sb_free(&sb);
    return s;
}

/* ---- types and coercion --------------------------------------------------------------------------- */

DType sval_default_type(SVal v)
{
    if (!v.untyped) return v.e ? v.e->type : DT_F32;
    return v.c.kind == CV_INT ? DT_I64 : v.c.kind == CV_FLOAT ? DT_F32 : DT_BOOL;
}

static const char *cval_str(Ctx *c, CVal v)
{
    switch (v.kind) {
    case CV_INT: return arena_printf(&c->s->arena, "%lld", (long long)v.i);
    case CV_FLOAT: return arena_printf(&c->s->arena, "%.9g", v.f);
    case CV_BOOL: return v.i ? "true" : "false";
    }
    return "?";
}

/* Gives an untyped constant the dtype t, or checks a typed value already has it. */
SVal sval_coerce(Ctx *c, SVal v, DType t, Span sp)
{
    if (v.poison) return v;
    if (!v.untyped) {
        if (v.e->type == t) return v;
        const char *help = arena_printf(&c->s->arena, "convert it explicitly: %s(...)", dtype_name(t));
        sema_error(c, sp, help, "expected a value of type %s here, found %s", dtype_name(t),
                   dtype_name(v.e->type));
        return poison();
    }
    Module *m = c->s->m;
    switch (v.c.kind) {
    case CV_INT:
        if (t == DT_BOOL) {
            sema_error(c, sp, "use true or false, or compare: x != 0", "integer %lld used as a bool",
                       (long long)v.c.i);
            return poison();
        }
        if (dtype_is_float(t)) return typed(ir_const_f(m, t, (double)v.c.i));
        {
            int64_t lo, hi;
            dtype_int_range(t, &lo, &hi);
            if (v.c.i < lo || v.c.i > hi) {
                const char *help = arena_printf(&c->s->arena, "%s holds %lld to %lld", dtype_name(t),
                                                (long long)lo, (long long)hi);
                sema_error(c, sp, help, "literal %lld does not fit in %s", (long long)v.c.i, dtype_name(t));
                return poison();
            }
        }
        return typed(ir_const_i(m, t, v.c.i));
    case CV_FLOAT:
        if (dtype_is_float(t)) return typed(ir_const_f(m, t, v.c.f));
        {
            const char *help = arena_printf(&c->s->arena, "convert it explicitly: %s(%s) rounds toward zero",
                                            dtype_name(t), cval_str(c, v.c));
            sema_error(c, sp, help, "float constant %s used where %s is expected", cval_str(c, v.c), dtype_name(t));
        }
        return poison();
    case CV_BOOL:
        if (t == DT_BOOL) return typed(ir_const_i(m, DT_BOOL, v.c.i));
        {
            const char *help = arena_printf(&c->s->arena, "convert it explicitly: %s(...)", dtype_name(t));
            sema_error(c, sp, help, "bool constant used where %s is expected", dtype_name(t));
        }
        return poison();
    }
    return poison();
}

Expr *sval_expr(Ctx *c, SVal v)
{
    if (v.poison) return NULL;
    if (!v.untyped) return v.e;
    SVal t = sval_coerce(c, v, sval_default_type(v), (Span){0});
    return t.e;
}

/* Folds an operation on two untyped constants. */
static SVal fold_binary(Ctx *c, AstOp op, CVal a, CVal b, Span sp)
{
    bool isf = a.kind == CV_FLOAT || b.kind == CV_FLOAT;
    if (a.kind == CV_BOOL || b.kind == CV_BOOL) {
        if (a.kind != b.kind) { sema_error(c, sp, NULL, "cannot combine a bool with a number"); return poison(); }
        if (op == AOP_AND) return untyped_bool(a.i && b.i);
        if (op == AOP_OR) return untyped_bool(a.i || b.i);
        if (op == AOP_EQ) return untyped_bool(a.i == b.i);
        if (op == AOP_NE) return untyped_bool(a.i != b.i);
        sema_error(c, sp, NULL, "operator '%s' does not apply to bool", ast_op_name(op));
        return poison();
    }
    double fa = a.kind == CV_FLOAT ? a.f : (double)a.i, fb = b.kind == CV_FLOAT ? b.f : (double)b.i;
    int64_t r;
    switch (op) {
    case AOP_ADD: if (isf) return untyped_float(fa + fb); if (!ck_add_i64(a.i, b.i, &r)) goto overflow; return untyped_int(r);
    case AOP_SUB: if (isf) return untyped_float(fa - fb); if (!ck_add_i64(a.i, -b.i, &r)) goto overflow; return untyped_int(r);
    case AOP_MUL: if (isf) return untyped_float(fa * fb); if (!ck_mul_i64(a.i, b.i, &r)) goto overflow; return untyped_int(r);
    case AOP_DIV:
        if (isf) return untyped_float(fa / fb);
        if (b.i == 0) { sema_error(c, sp, NULL, "division by zero in a constant expression"); return poison(); }
        if (a.i == INT64_MIN && b.i == -1) goto overflow;
        return untyped_int(a.i / b.i);
    case AOP_MOD:
        if (isf) return untyped_float(fmod(fa, fb));
        if (b.i == 0) { sema_error(c, sp, NULL, "remainder by zero in a constant expression"); return poison(); }
        if (b.i == -1) return untyped_int(0);
        return untyped_int(a.i % b.i);
    case AOP_POW:
        if (!isf && b.i >= 0) {
            int64_t acc = 1;
            for (int64_t i = 0; i < b.i; i++) {
                if (!ck_mul_i64(acc, a.i, &acc)) goto overflow;
                if (acc == 0 || acc == 1) break;
            }
            return untyped_int(acc);
        }
        return untyped_float(pow(fa, fb));
    case AOP_LT: return untyped_bool(isf ? fa < fb : a.i < b.i);
    case AOP_LE: return untyped_bool(isf ? fa <= fb : a.i <= b.i);
    case AOP_GT: return untyped_bool(isf ? fa > fb : a.i > b.i);
    case AOP_GE: return untyped_bool(isf ? fa >= fb : a.i >= b.i);
    case AOP_EQ: return untyped_bool(isf ? fa == fb : a.i == b.i);
    case AOP_NE: return untyped_bool(isf ? fa != fb : a.i != b.i);
    case AOP_AND: case AOP_OR:
        sema_error(c, sp, "compare first, e.g. x != 0", "'%s' needs bool operands", ast_op_name(op));
        return poison();
    case AOP_NEG: case AOP_NOT: case AOP_MATMUL:
        break;
    }
    TD_UNREACHABLE("fold_binary op");
overflow:
    sema_error(c, sp, NULL, "integer overflow in a constant expression");
    return poison();
}

/* Brings two operands to one dtype: an untyped side takes the other's type. */
static bool unify(Ctx *c, SVal *a, SVal *b, Span sa, Span sb, Span sop, const char *what)
{
    if (a->untyped && !b->untyped) { *a = sval_coerce(c, *a, b->e->type, sa); return !a->poison; }
    if (b->untyped && !a->untyped) { *b = sval_coerce(c, *b, a->e->type, sb); return !b->poison; }
    if (a->e->type == b->e->type) return true;
    DType ta = a->e->type, tb = b->e->type;
    const char *help;
    if (ta == DT_I64 && dtype_is_float(tb))
        help = arena_printf(&c->s->arena, "index variables and size names are i64; convert with %s(...)", dtype_name(tb));
    else if (tb == DT_I64 && dtype_is_float(ta))
        help = arena_printf(&c->s->arena, "index variables and size names are i64; convert with %s(...)", dtype_name(ta));
    else
        help = arena_printf(&c->s->arena, "convert one side explicitly, e.g. %s(...)", dtype_name(ta));
    sema_error(c, sop, help, "mismatched types in %s: %s and %s", what, dtype_name(ta), dtype_name(tb));
    return false;
}

/* ---- index variables, hoisting and definitions --------------------------------------------------- */

static void collect_vars(const Expr *e, PtrVec *out, Arena *a, int budget[1])
{
    if (!e || --budget[0] < 0) return;
    if (e->op == OP_VAR && (e->var->kind == VAR_INDEX || e->var->kind == VAR_REDUCE)) {
        for (int i = 0; i < out->len; i++)
            if (out->items[i] == e->var) return;
        pv_push(a, out, e->var);
        return;
    }
    for (int i = 0; i < e->nargs; i++) collect_vars(e->args[i], out, a, budget);
    collect_vars(e->pad, out, a, budget);
}

static int var_id_cmp(const void *x, const void *y)
{
    const Var *a = *(Var *const *)x, *b = *(Var *const *)y;
    return (a->id > b->id) - (a->id < b->id);
}

static Expr *subst(Module *m, Expr *e, Var **from, Var **to, int n)
{
    if (!e) return NULL;
    if (e->op == OP_VAR) {
        for (int i = 0; i < n; i++)
            if (e->var == from[i]) return ir_var(m, to[i]);
        return e;
    }
    if (e->nargs == 0 && !e->pad) return e;
    Expr **args = e->nargs ? arena_array(&m->arena, (size_t)e->nargs, sizeof(Expr *)) : NULL;
    bool changed = false;
    for (int i = 0; i < e->nargs; i++) {
        args[i] = subst(m, e->args[i], from, to, n);
        changed |= args[i] != e->args[i];
    }
    Expr *pad = subst(m, e->pad, from, to, n);
    changed |= pad != e->pad;
    if (!changed) return e;
    Expr *r = arena_alloc(&m->arena, sizeof(Expr));
    *r = *e;
    r->args = args;
    r->pad = pad;
    return r;
}

/* Counts nodes as a tree (shared subtrees counted each time), stopping at the cap, so that
 * inlining cannot build an expression whose traversal takes exponential time. */
static int64_t tree_size(const Expr *e, int64_t cap, int depth, int *maxdepth)
{
    if (!e) return 0;
    if (depth > *maxdepth) *maxdepth = depth;
    if (depth > 4000) return cap;
    int64_t n = 1;
    for (int i = 0; i < e->nargs && n < cap; i++) n += tree_size(e->args[i], cap - n, depth + 1, maxdepth);
    if (n < cap) n += tree_size(e->pad, cap - n, depth + 1, maxdepth);
    return n;
}

Tensor *new_temp(Ctx *c, const char *name, DType dt, int rank, Expr **dims, Span span)
{
    Tensor *t = ir_tensor_new(c->s->m, TK_TEMP, sema_unique_name(c, name), dt, rank, dims);
    t->span = span;
    pv_push(&c->s->m->arena, &c->temps, t);
    return t;
}

Stmt *emit_def(Ctx *c, Tensor *dst, Var **idx, ReduceOp rop, Var **red, int nred, Expr *body, Span span)
{
    int maxdepth = 0;
    if (tree_size(body, SEMA_MAX_EXPR_NODES, 0, &maxdepth) >= SEMA_MAX_EXPR_NODES || maxdepth > 2000) {
        sema_error(c, span, "split the computation into several definitions, or call fns on whole tensors",
                   "expression is too large after inlining (more than %d operations or 2000 levels)",
                   SEMA_MAX_EXPR_NODES);
        return NULL;
    }
    /* a tensor defined here must not depend on the loop variables of another definition */
    PtrVec used = {0};
    int budget[1] = {SEMA_MAX_EXPR_NODES};
    collect_vars(body, &used, &c->s->arena, budget);
    for (int i = 0; i < used.len; i++) {
        Var *v = used.items[i];
        bool own = false;
        for (int j = 0; j < dst->rank; j++) own |= idx[j] == v;
        for (int j = 0; j < nred; j++) own |= red[j] == v;
        if (!own) {
            const char *help = arena_printf(&c->s->arena,
                "compute the tensor-valued part in its own definition first, or index it by '%s'", v->name);
            sema_error(c, span, help, "this tensor-valued expression depends on the index variable '%s' of the enclosing definition",
                       v->name);
            return NULL;
        }
    }
    Stmt *s = ir_def_new(c->s->m, dst, idx, rop, red, nred, body);
    s->span = span;
    pv_push(&c->s->m->arena, c->stmts, s);
    return s;
}

/* Hoists `rop[red](body)` into a temporary indexed by the index and reduction variables
 * the body uses from outside, and returns the access that reads it back. */
static SVal hoist_reduction(Ctx *c, ReduceOp rop, Var **red, int nred, Expr *body, DType dt, Span span)
{
    Module *m = c->s->m;
    PtrVec free_vars = {0};
    int budget[1] = {SEMA_MAX_EXPR_NODES};
    collect_vars(body, &free_vars, &m->arena, budget);
    int nfree = 0;
    Var **fv = arena_array(&m->arena, (size_t)free_vars.len + 1, sizeof(Var *));
    for (int i = 0; i < free_vars.len; i++) {
        Var *v = free_vars.items[i];
        bool own = false;
        for (int j = 0; j < nred; j++) own |= red[j] == v;
        if (!own) fv[nfree++] = v;
    }
    qsort(fv, (size_t)nfree, sizeof(Var *), var_id_cmp);
    Var **fresh = arena_array(&m->arena, (size_t)nfree + 1, sizeof(Var *));
    Expr **dims = arena_array(&m->arena, (size_t)nfree + 1, sizeof(Expr *));
    Expr **reads = arena_array(&m->arena, (size_t)nfree + 1, sizeof(Expr *));
    for (int i = 0; i < nfree; i++) {
        fresh[i] = sema_var_new(c, VAR_INDEX, fv[i]->name, fv[i]->extent);
        dims[i] = fv[i]->extent;
        reads[i] = ir_var(m, fv[i]);
    }
    Expr *nbody = subst(m, body, fv, fresh, nfree);
    const char *name = c->in_fn ? arena_printf(&c->s->arena, "%s.%s", c->frames[c->nframes - 1].fn, ast_reduce_name(rop))
                                : ast_reduce_name(rop);
    Tensor *t = new_temp(c, name, dt, nfree, dims, span);
    if (!emit_def(c, t, fresh, rop, red, nred, nbody, span)) return poison();
    Expr *acc = ir_access(m, t, reads, NULL);
    acc->span = span;
    return typed(acc);
}

/* ---- range inference ------------------------------------------------------------------------------ */

typedef struct RangeSource {
    Expr       *extent;
    Span        span;      /* the access */
    const char *tensor;
    int         axis;
} RangeSource;

struct Whole;
static SVal elab_name(Ctx *c, Env *env, const AstExpr *e, const struct Whole *w);

/* Reports why a name that is indexed cannot be: undefined (with a suggestion), used before its
 * definition, read in its own definition, or a constant. */
static void report_unindexable_name(Ctx *c, Env *env, const AstExpr *name)
{
    SVal v = elab_name(c, env, name, NULL);
    if (!v.poison) sema_error(c, name->span, NULL, "'%s' is a constant and cannot be indexed", name->name);
}

/* Reports every indexed name in e that is bound to nothing, each span once per compilation. */
static void report_unbound_reads(Ctx *c, Env *env, const AstExpr *e)
{
    if (!e) return;
    if (e->kind == AX_INDEX && e->a && e->a->kind == AX_NAME && !env_lookup(env, e->a->name)) {
        bool seen = false;
        for (int i = 0; i < c->s->unbound_reported.len && !seen; i++) {
            const Span *r = c->s->unbound_reported.items[i];
            seen = r->file == e->a->span.file && r->off == e->a->span.off;
        }
        if (!seen) {
            Span *copy = arena_alloc(&c->s->arena, sizeof(Span));
            *copy = e->a->span;
            pv_push(&c->s->arena, &c->s->unbound_reported, copy);
            report_unindexable_name(c, env, e->a);
        }
    }
    report_unbound_reads(c, env, e->a);
    report_unbound_reads(c, env, e->b);
    for (int i = 0; i < e->nargs; i++) report_unbound_reads(c, env, e->args[i]);
}

static void find_sources(Ctx *c, Env *env, const AstExpr *e, const char *var, RangeSource *out, int *n, int cap,
                         bool *poisoned, bool *unbound)
{
    if (!e || *n >= cap) return;
    if (e->kind == AX_INDEX && e->a && e->a->kind == AX_NAME) {
        Binding *b = env_lookup(env, e->a->name);
        if (!b) *unbound = true;                            /* not reported yet */
        if (b && b->kind == B_POISON) *poisoned = true;     /* its error is already reported */
        if (b && (b->kind == B_TENSOR) && b->t) {
            Tensor *t = b->t;
            int ell = -1;
            for (int i = 0; i < e->nargs; i++)
                if (e->args[i]->kind == AX_ELLIPSIS) ell = i;
            for (int i = 0; i < e->nargs; i++) {
                const AstExpr *ix = e->args[i];
                if (ix->kind != AX_NAME || strcmp(ix->name, var) != 0) continue;
                int axis = ell >= 0 && i > ell ? t->rank - (e->nargs - i) : i;
                if (axis < 0 || axis >= t->rank) continue;
                if (*n < cap) out[(*n)++] = (RangeSource){t->shape[axis], e->span, t->name, axis};
            }
        }
    }
    if (e->kind == AX_REDUCE) {
        for (int i = 0; i < e->nrvars; i++)
            if (strcmp(e->rvars[i].name, var) == 0) return;  /* shadowed (reported elsewhere) */
    }
    find_sources(c, env, e->a, var, out, n, cap, poisoned, unbound);
    find_sources(c, env, e->b, var, out, n, cap, poisoned, unbound);
    for (int i = 0; i < e->nargs; i++) find_sources(c, env, e->args[i], var, out, n, cap, poisoned, unbound);
}

/* Infers the range of `var` from the accesses in rhs where it stands alone as an index. */
void infer_range(Ctx *c, Env *env, const AstExpr *rhs, const char *var, Span var_span, Expr **extent)
{
    RangeSource src[16];
    int n = 0;
    bool poisoned = false, unbound = false;
    find_sources(c, env, rhs, var, src, &n, TD_COUNTOF(src), &poisoned, &unbound);
    *extent = NULL;
    if (n == 0 && unbound) {
        /* The range may come from a tensor whose name is wrong: that is the error to report
         * (once, however many index variables it leaves without a range). */
        report_unbound_reads(c, env, rhs);
        return;
    }
    if (n == 0 && poisoned) return;
    if (n == 0) {
        const char *help = arena_printf(&c->s->arena,
            "use %s alone as an index of a tensor on the right-hand side (like x[%s]); "
            "a reduction variable can also get an explicit range: sum[%s < N](...)", var, var, var);
        sema_error(c, var_span, help, "cannot infer the range of index variable '%s'", var);
        return;
    }
    for (int i = 1; i < n; i++) {
        if (!sizes_equal(c->s->bounds, src[0].extent, src[i].extent)) {
            if (sema_error(c, src[i].span, NULL,
                           "conflicting ranges for index variable '%s': %s gives %s (axis %d of %s) but %s gives %s (axis %d of %s)",
                           var, span_text(c, src[0].span), size_str(c, src[0].extent), src[0].axis, src[0].tensor,
                           span_text(c, src[i].span), size_str(c, src[i].extent), src[i].axis, src[i].tensor))
                diag_note(c->s->d, src[0].span, "the first range comes from here");
            return;
        }
    }
    *extent = src[0].extent;
}

/* ---- accesses --------------------------------------------------------------------------------------- */

static Expr *index_value(Ctx *c, Env *env, const AstExpr *ix)
{
    SVal v = elab_scalar(c, env, ix);
    if (v.poison) return NULL;
    if (v.untyped) {
        if (v.c.kind != CV_INT) {
            sema_error(c, ix->span, NULL, "an index must be an integer");
            return NULL;
        }
        return ir_const_i(c->s->m, DT_I64, v.c.i);
    }
    if (!dtype_is_int(v.e->type)) {
        sema_error(c, ix->span, NULL, "an index must be an integer, found %s", dtype_name(v.e->type));
        return NULL;
    }
    if (v.e->type != DT_I64) return ir_cast(c->s->m, DT_I64, v.e);
    return v.e;
}

/* Checks that every index of an unpadded access is provably inside its axis. */
static bool check_bounds(Ctx *c, Tensor *t, Expr **idx, Span sp, bool padded)
{
    Bounds *b = c->s->bounds;
    for (int i = 0; i < t->rank; i++) {
        Poly lo, hi;
        if (!index_interval(b, idx[i], &lo, &hi)) {
            sema_error(c, sp, "indices are affine in index variables and size names, plus i / c and i % c for a constant c > 0",
                       "index %d of %s is not an affine expression of index variables", i, t->name);
            return false;
        }
        if (padded) continue;
        Poly size = poly_from_size(b, t->shape[i]), one = poly_const(1);
        Poly last = poly_sub(&size, &one);
        Poly room = poly_sub(&last, &hi);
        if (poly_nonneg(b, &lo) && poly_nonneg(b, &room)) continue;
        StrBuf sb = {0};
        poly_print(b, &lo, &sb);
        sb_puts(&sb, ", ");
        poly_print(b, &hi, &sb);
        const char *interval = arena_strdup(&c->s->arena, sb_cstr(&sb));
        sb_free(&sb);
        const char *text = span_text(c, sp);
        const char *help = arena_printf(&c->s->arena,
            "write `%s ?? 0` to read 0 outside the tensor, or declare axis %d of %s larger", text, i, t->name);
        sema_error(c, sp, help, "access %s may be out of bounds: index %d ranges over [%s] but axis %d of %s has size %s",
                   text, i, interval, i, t->name, size_str(c, t->shape[i]));
        return false;
    }
    return true;
}

/* t[args] with `...` expanded to the current definition's batch variables. */
static SVal elab_access(Ctx *c, Env *env, Tensor *t, const AstExpr *acc, const AstExpr *pad_ast)
{
    Module *m = c->s->m;
    int nell = 0;
    for (int i = 0; i < acc->nargs; i++) nell += acc->args[i]->kind == AX_ELLIPSIS;
    int nidx = acc->nargs - nell + (nell ? c->nbatch : 0);
    if (nell > 1) {
        sema_error(c, acc->span, NULL, "an access may contain at most one `...`");
        return poison();
    }
    if (nell && !c->batch) {
        sema_error(c, acc->span, "`...` in an access stands for the `...` on the left-hand side of a definition in a fn body",
                   "`...` used in an access, but this definition has no `...` on its left-hand side");
        return poison();
    }
    if (nidx != t->rank) {
        const char *ty = type_str(c, t->dtype, t->rank, t->shape);
        sema_error(c, acc->span, NULL, "%s has rank %d (%s) but is indexed with %d %s", t->name, t->rank, ty,
                   nidx, nidx == 1 ? "index" : "indices");
        return poison();
    }
    Expr **idx = arena_array(&m->arena, (size_t)nidx + 1, sizeof(Expr *));
    int k = 0;
    bool ok = true;
    for (int i = 0; i < acc->nargs; i++) {
        if (acc->args[i]->kind == AX_ELLIPSIS) {
            for (int j = 0; j < c->nbatch; j++) idx[k++] = ir_var(m, c->batch[j]);
            continue;
        }
        idx[k] = index_value(c, env, acc->args[i]);
        ok &= idx[k] != NULL;
        k++;
    }
    if (!ok) return poison();
    Expr *pad = NULL;
    if (pad_ast) {
        SVal pv = elab_scalar(c, env, pad_ast);
        pv = sval_coerce(c, pv, t->dtype, pad_ast->span);
        if (pv.poison) return poison();
        pad = pv.e;
    }
    if (!check_bounds(c, t, idx, acc->span, pad != NULL)) return poison();
    Expr *e = ir_access(m, t, idx, pad);
    e->span = acc->span;
    return typed(e);
}

/* ---- builtins ---------------------------------------------------------------------------------------- */

typedef enum BuiltinClass { BI_FLOAT1, BI_NUM1, BI_ISNAN, BI_NUM2, BI_CLAMP, BI_FMA, BI_WHERE } BuiltinClass;

static const struct { const char *name; Op op; BuiltinClass cls; } BUILTINS[] = {
    {"exp", OP_EXP, BI_FLOAT1}, {"log", OP_LOG, BI_FLOAT1}, {"exp2", OP_EXP2, BI_FLOAT1},
    {"log2", OP_LOG2, BI_FLOAT1}, {"sqrt", OP_SQRT, BI_FLOAT1}, {"rsqrt", OP_RSQRT, BI_FLOAT1},
    {"abs", OP_ABS, BI_NUM1}, {"sin", OP_SIN, BI_FLOAT1}, {"cos", OP_COS, BI_FLOAT1},
    {"tanh", OP_TANH, BI_FLOAT1}, {"sigmoid", OP_SIGMOID, BI_FLOAT1}, {"erf", OP_ERF, BI_FLOAT1},
    {"floor", OP_FLOOR, BI_FLOAT1}, {"ceil", OP_CEIL, BI_FLOAT1}, {"round", OP_ROUND, BI_FLOAT1},
    {"trunc", OP_TRUNC, BI_FLOAT1}, {"sign", OP_SIGN, BI_NUM1}, {"isnan", OP_ISNAN, BI_ISNAN},
    {"min", OP_MIN, BI_NUM2}, {"max", OP_MAX, BI_NUM2}, {"clamp", OP_CLAMP, BI_CLAMP},
    {"fma", OP_FMA, BI_FMA}, {"where", OP_SELECT, BI_WHERE},
};

static int find_builtin(const char *name)
{
    for (int i = 0; i < TD_COUNTOF(BUILTINS); i++)
        if (strcmp(BUILTINS[i].name, name) == 0) return i;
    return -1;
}

static int builtin_arity(BuiltinClass cls)
{
    switch (cls) {
    case BI_FLOAT1: case BI_NUM1: case BI_ISNAN: return 1;
    case BI_NUM2: return 2;
    case BI_CLAMP: case BI_FMA: case BI_WHERE: return 3;
    }
    return 0;
}

bool sema_is_builtin(const char *name) { return find_builtin(name) >= 0; }

static SVal apply_builtin(Ctx *c, int bi, SVal *a, const AstExpr *call)
{
    Module *m = c->s->m;
    BuiltinClass cls = BUILTINS[bi].cls;
    Op op = BUILTINS[bi].op;
    const char *name = BUILTINS[bi].name;
    int n = builtin_arity(cls);
    for (int i = 0; i < n; i++)
        if (a[i].poison) return poison();
    switch (cls) {
    case BI_FLOAT1: case BI_ISNAN:
        if (a[0].untyped) {
            if (a[0].c.kind == CV_BOOL) { sema_error(c, call->span, NULL, "%s needs a float operand", name); return poison(); }
            a[0] = sval_coerce(c, a[0], DT_F32, call->args[0]->span);
            if (a[0].poison) return poison();
        }
        if (!dtype_is_float(a[0].e->type)) {
            const char *help = arena_printf(&c->s->arena, "convert it first: %s(f32(x))", name);
            sema_error(c, call->span, help, "%s needs a float operand, found %s", name, dtype_name(a[0].e->type));
            return poison();
        }
        return typed(ir_unary(m, op, a[0].e));
    case BI_NUM1:
        if (a[0].untyped) a[0] = sval_coerce(c, a[0], sval_default_type(a[0]), call->args[0]->span);
        if (a[0].poison) return poison();
        if (a[0].e->type == DT_BOOL) { sema_error(c, call->span, NULL, "%s needs a numeric operand, found bool", name); return poison(); }
        return typed(ir_unary(m, op, a[0].e));
    case BI_NUM2: case BI_CLAMP: case BI_FMA: case BI_WHERE: {
        int first = cls == BI_WHERE ? 1 : 0;
        if (cls == BI_WHERE) {
            SVal cond = a[0];
            if (cond.untyped) cond = sval_coerce(c, cond, DT_BOOL, call->args[0]->span);
            if (cond.poison) return poison();
            if (cond.e->type != DT_BOOL) {
                sema_error(c, call->args[0]->span, "compare it, e.g. x != 0", "the condition of where must be bool, found %s",
                           dtype_name(cond.e->type));
                return poison();
            }
            a[0] = cond;
        }
        /* the value operands share one type; untyped ones take it */
        DType t = DT_COUNT;
        for (int i = first; i < n; i++)
            if (!a[i].untyped) { t = a[i].e->type; break; }
        if (t == DT_COUNT) {
            bool anyf = false;
            for (int i = first; i < n; i++) anyf |= a[i].c.kind == CV_FLOAT;
            t = anyf ? DT_F32 : sval_default_type(a[first]);
        }
        for (int i = first; i < n; i++) {
            if (a[i].untyped) a[i] = sval_coerce(c, a[i], t, call->args[i]->span);
            if (a[i].poison) return poison();
            if (a[i].e->type != t) {
                const char *help = arena_printf(&c->s->arena, "convert it explicitly: %s(...)", dtype_name(t));
                sema_error(c, call->args[i]->span, help, "mismatched types in %s: %s and %s", name, dtype_name(t),
                           dtype_name(a[i].e->type));
                return poison();
            }
        }
        if (cls == BI_FMA && !dtype_is_float(t)) { sema_error(c, call->span, NULL, "fma needs float operands"); return poison(); }
        if (cls != BI_WHERE && t == DT_BOOL) { sema_error(c, call->span, NULL, "%s needs numeric operands, found bool", name); return poison(); }
        if (n == 2) return typed(ir_binary(m, op, a[0].e, a[1].e));
        return typed(ir_ternary(m, op, a[0].e, a[1].e, a[2].e));
    }
    }
    return poison();
}

/* Applies a cast with the language's semantics to a constant, or emits a cast node. */
static SVal apply_cast(Ctx *c, DType t, SVal v, Span sp)
{
    Module *m = c->s->m;
    if (v.poison) return v;
    if (v.untyped) {
        switch (v.c.kind) {
        case CV_BOOL: return typed(dtype_is_float(t) ? ir_const_f(m, t, (double)v.c.i) : ir_const_i(m, t, v.c.i));
        case CV_INT:
            if (dtype_is_float(t)) return typed(ir_const_f(m, t, (double)v.c.i));
            return typed(ir_cast(m, t, ir_const_i(m, DT_I64, v.c.i)));
        case CV_FLOAT:
            if (dtype_is_float(t)) return typed(ir_const_f(m, t, v.c.f));
            return typed(ir_cast(m, t, ir_const_f(m, DT_F64, v.c.f)));
        }
    }
    (void)sp;
    if (v.e->type == t) return v;
    return typed(ir_cast(m, t, v.e));
}

/* ---- fn calls ---------------------------------------------------------------------------------------- */

static Val val_poison(void) { Val v = {0}; v.sv.poison = true; return v; }
static bool val_is_poison(const Val *v) { return !v->t && v->sv.poison; }

/* An argument: a bare tensor name passes the tensor; anything else is evaluated (as a
 * scalar in scalar mode; as a materialised tensor when it has a shape). */
static Val eval_arg(Ctx *c, Env *env, const AstExpr *e)
{
    Val v = {0};
    if (e->kind == AX_NAME) {
        Binding *b = env_lookup(env, e->name);
        if (b && b->kind == B_TENSOR && !b->pending && b->t) {
            v.t = b->t;
            return v;
        }
    }
    int rank;
    Expr **dims;
    if (!elab_whole_shape(c, env, e, &rank, &dims)) return val_poison();
    if (rank == 0) {
        v.sv = elab_scalar(c, env, e);
        return v;
    }
    v.t = materialize(c, env, e, rank, dims, "arg");
    if (!v.t) return val_poison();
    return v;
}

/* Unknown callee: say so when it names a kernel, else suggest a close fn or builtin. */
static void sema_report_unknown_fn(Ctx *c, const AstExpr *e)
{
    const char *cands[256];
    int n = 0;
    for (int i = 0; i < TD_COUNTOF(BUILTINS); i++) cands[n++] = BUILTINS[i].name;
    for (int pass = 0; pass <= c->mod->nimports; pass++) {
        SModule *mod = pass == 0 ? c->mod : c->mod->imports[pass - 1];
        for (int i = 0; i < mod->ast->nitems && n < 256; i++) {
            const AstItem *it = mod->ast->items[i];
            if (it->kind == AI_KERNEL && pass > 0 && strcmp(it->name, e->name) == 0) {
                const char *help = arena_printf(&c->s->arena, "imports bring in fns and consts, not kernels; call a fn of %s instead",
                                                mod->ast->src.path);
                sema_error(c, e->name_span, help, "'%s' is a kernel of %s and cannot be called", e->name, mod->ast->src.path);
                return;
            }
            if (it->kind == AI_KERNEL && pass == 0 && strcmp(it->name, e->name) == 0) {
                const char *help = arena_printf(&c->s->arena, "kernels are entry points, not functions; "
                                                "move the body into `fn %s(...)` and call that", e->name);
                sema_error(c, e->name_span, help, "'%s' is a kernel and cannot be called", e->name);
                return;
            }
            if (it->kind == AI_FN) cands[n++] = it->name;
        }
    }
    const char *close = diag_closest(e->name, cands, n);
    const char *help = close ? arena_printf(&c->s->arena, "did you mean '%s'?", close) : NULL;
    sema_error(c, e->name_span, help, "unknown function '%s'", e->name);
}

Val elab_call_value(Ctx *c, Env *env, const AstExpr *e)
{
    for (int i = 0; i < c->ncache; i++)
        if (c->cache[i].ast == e) return c->cache[i].v;
    SModule *owner = NULL;
    bool ambiguous = false;
    const AstItem *fn = sema_find_fn(c->s, c->mod, e->name, &owner, e->name_span, c->s->d, &ambiguous);
    if (!fn) {
        if (!ambiguous) sema_report_unknown_fn(c, e);
        return val_poison();
    }
    Val *args = arena_array(&c->s->arena, (size_t)e->nargs + 1, sizeof(Val));
    Span *spans = arena_array(&c->s->arena, (size_t)e->nargs + 1, sizeof(Span));
    bool ok = true;
    for (int i = 0; i < e->nargs; i++) {
        args[i] = eval_arg(c, env, e->args[i]);
        spans[i] = e->args[i]->span;
        ok &= !val_is_poison(&args[i]);
    }
    Val r = ok ? call_fn(c, fn, owner, args, e->argnames, spans, e->nargs, e->span) : val_poison();
    if (c->ncache == c->capcache) {
        c->capcache = c->capcache ? 2 * c->capcache : 16;
        WholeCache *nc = arena_array(&c->s->arena, (size_t)c->capcache, sizeof(WholeCache));
        if (c->ncache) memcpy(nc, c->cache, (size_t)c->ncache * sizeof(WholeCache));
        c->cache = nc;
    }
    c->cache[c->ncache++] = (WholeCache){e, r};
    return r;
}

/* ---- whole-tensor shapes ------------------------------------------------------------------------------ */

bool shape_broadcast(Ctx *c, int ra, Expr **da, int rb, Expr **db, int *rr, Expr ***dr, Span sp)
{
    int r = ra > rb ? ra : rb;
    Expr **d = arena_array(&c->s->m->arena, (size_t)r + 1, sizeof(Expr *));
    for (int i = 0; i < r; i++) {
        int ia = i - (r - ra), ib = i - (r - rb);
        Expr *x = ia >= 0 ? da[ia] : NULL, *y = ib >= 0 ? db[ib] : NULL;
        if (!x) { d[i] = y; continue; }
        if (!y) { d[i] = x; continue; }
        if (sizes_equal(c->s->bounds, x, y)) { d[i] = x; continue; }
        bool x1 = x->op == OP_CONST && x->value.i == 1, y1 = y->op == OP_CONST && y->value.i == 1;
        if (x1) { d[i] = y; continue; }
        if (y1) { d[i] = x; continue; }
        sema_error(c, sp, "dimensions broadcast when they are equal or one of them is 1; write an indexed definition to say which axes match",
                   "cannot broadcast shapes %s and %s: %s vs %s",
                   type_str(c, DT_F32, ra, da) + 3, type_str(c, DT_F32, rb, db) + 3, size_str(c, x), size_str(c, y));
        return false;
    }
    *rr = r;
    *dr = d;
    return true;
}

static bool matmul_shape(Ctx *c, int ra, Expr **da, int rb, Expr **db, int *rr, Expr ***dr, Span sp, Expr **kdim)
{
    if (ra < 1 || rb < 1) {
        sema_error(c, sp, NULL, "@ needs tensors of rank 1 or more on both sides");
        return false;
    }
    Expr *ka = da[ra - 1], *kb = rb >= 2 ? db[rb - 2] : db[0];
    if (!sizes_equal(c->s->bounds, ka, kb)) {
        sema_error(c, sp, NULL, "inner dimensions of @ do not match: %s vs %s", size_str(c, ka), size_str(c, kb));
        return false;
    }
    *kdim = ka;
    int ba = ra >= 2 ? ra - 2 : 0, bb = rb >= 2 ? rb - 2 : 0;
    int rbatch;
    Expr **batch;
    if (!shape_broadcast(c, ba, da, bb, db, &rbatch, &batch, sp)) return false;
    int r = rbatch + (ra >= 2) + (rb >= 2);
    Expr **d = arena_array(&c->s->m->arena, (size_t)r + 1, sizeof(Expr *));
    for (int i = 0; i < rbatch; i++) d[i] = batch[i];
    int k = rbatch;
    if (ra >= 2) d[k++] = da[ra - 2];
    if (rb >= 2) d[k++] = db[rb - 1];
    *rr = r;
    *dr = d;
    return true;
}

static bool shape_of_val(const Val *v, int *rank, Expr ***dims)
{
    if (v->t) { *rank = v->t->rank; *dims = v->t->shape; return true; }
    *rank = 0;
    *dims = NULL;
    return !v->sv.poison;
}

static Tensor *materialize_matmul(Ctx *c, Env *env, const AstExpr *e);

bool elab_whole_shape(Ctx *c, Env *env, const AstExpr *e, int *rank, Expr ***dims)
{
    *rank = 0;
    *dims = NULL;
    switch (e->kind) {
    case AX_INT: case AX_FLOAT: case AX_BOOL: case AX_REDUCE: case AX_INDEX: case AX_PAD:
        return true;
    case AX_ELLIPSIS:
        sema_error(c, e->span, NULL, "`...` can only appear as an index");
        return false;
    case AX_NAME: {
        Binding *b = env_lookup(env, e->name);
        if (b && b->kind == B_TENSOR && !b->pending && b->t) {
            *rank = b->t->rank;
            *dims = b->t->shape;
        }
        return !(b && b->kind == B_POISON);
    }
    case AX_UNARY:
        return elab_whole_shape(c, env, e->a, rank, dims);
    case AX_BINARY: {
        if (e->op == AOP_MATMUL) {
            Tensor *t = materialize_matmul(c, env, e);
            if (!t) return false;
            *rank = t->rank;
            *dims = t->shape;
            return true;
        }
        int ra, rb;
        Expr **da, **db;
        if (!elab_whole_shape(c, env, e->a, &ra, &da) || !elab_whole_shape(c, env, e->b, &rb, &db)) return false;
        return shape_broadcast(c, ra, da, rb, db, rank, dims, e->span);
    }
    case AX_CALL: {
        DType cast;
        if (dtype_from_name(e->name, &cast) || find_builtin(e->name) >= 0) {
            for (int i = 0; i < e->nargs; i++) {
                int ri;
                Expr **di;
                if (!elab_whole_shape(c, env, e->args[i], &ri, &di)) return false;
                if (i == 0) { *rank = ri; *dims = di; }
                else if (!shape_broadcast(c, *rank, *dims, ri, di, rank, dims, e->span)) return false;
            }
            return true;
        }
        Val v = elab_call_value(c, env, e);
        return shape_of_val(&v, rank, dims);
    }
    }
    return false;
}

/* ---- expression elaboration --------------------------------------------------------------------------- */

typedef struct Whole {      /* whole-tensor mode: the result's index variables */
    Var  **idx;
    Expr **dims;
    int    rank;
} Whole;

static SVal elab(Ctx *c, Env *env, const AstExpr *e, const Whole *w);

/* Reads tensor t at the whole-tensor result indices, broadcasting trailing-aligned. */
static SVal broadcast_read(Ctx *c, Tensor *t, const Whole *w, Span sp)
{
    Module *m = c->s->m;
    if (t->rank == 0) {
        Expr *e = ir_access(m, t, NULL, NULL);
        e->span = sp;
        return typed(e);
    }
    if (!w || w->rank < t->rank) {
        const char *ty = type_str(c, t->dtype, t->rank, t->shape);
        const char *help = arena_printf(&c->s->arena, "index it, like %s[...] with one index per axis", t->name);
        sema_error(c, sp, help, "%s is a tensor (%s) used where a scalar is expected", t->name, ty);
        return poison();
    }
    Expr **idx = arena_array(&m->arena, (size_t)t->rank, sizeof(Expr *));
    for (int i = 0; i < t->rank; i++) {
        int wi = w->rank - t->rank + i;
        bool one = t->shape[i]->op == OP_CONST && t->shape[i]->value.i == 1;
        if (one && !sizes_equal(c->s->bounds, t->shape[i], w->dims[wi])) idx[i] = ir_const_i(m, DT_I64, 0);
        else idx[i] = ir_var(m, w->idx[wi]);
    }
    Expr *e = ir_access(m, t, idx, NULL);
    e->span = sp;
    return typed(e);
}

static void pending_output_read(Ctx *c, const char *name, Span sp)
{
    if (c->cur_def && strcmp(c->cur_def, name) == 0)
        sema_error(c, sp, "a definition computes a tensor from other tensors; for a recurrence, carry the value in a `scan` state",
                   "'%s' cannot be read in its own definition", name);
    else
        sema_error(c, sp, "define an output before reading it", "output '%s' is read before it is defined", name);
}

static SVal elab_name(Ctx *c, Env *env, const AstExpr *e, const Whole *w)
{
    Binding *b = env_lookup(env, e->name);
    if (b) {
        switch (b->kind) {
        case B_POISON: return poison();
        case B_VAR: return typed(ir_var(c->s->m, b->var));
        case B_SIZE: return typed(b->size);
        case B_SCALAR: return b->sv;
        case B_TENSOR:
            if (b->pending) {
                pending_output_read(c, e->name, e->span);
                return poison();
            }
            return broadcast_read(c, b->t, w, e->span);
        }
    }
    CVal cv;
    bool found = false;
    if (sema_const_value(c->s, c->mod, e->name, &cv, &found)) {
        SVal v = {0};
        v.untyped = true;
        v.c = cv;
        return v;
    }
    if (found) return poison();
    /* not found: suggest a close name, or say it is defined later */
    const char *cands[64];
    int n = 0;
    for (Env *x = env; x && n < 64; x = x->parent)
        for (int i = 0; i < x->binds.len && n < 64; i++) cands[n++] = ((Binding *)x->binds.items[i])->name;
    if (c->cur_def && strcmp(c->cur_def, e->name) == 0) {
        sema_error(c, e->span, "a definition computes a tensor from other tensors; for a recurrence, carry the value in a `scan` state",
                   "'%s' cannot be read in its own definition", e->name);
        return poison();
    }
    for (int pass = 0; c->mod && pass <= c->mod->nimports; pass++) {
        SModule *mod = pass == 0 ? c->mod : c->mod->imports[pass - 1];
        for (int i = 0; i < mod->ast->nitems && n < 64; i++)
            if (mod->ast->items[i]->kind == AI_CONST) cands[n++] = mod->ast->items[i]->name;
    }
    for (int i = 0; i < c->nbody; i++) {
        const AstStmt *s = c->body[i];
        if (s->kind == AS_DEF && strcmp(s->name, e->name) == 0) {
            const char *help = arena_printf(&c->s->arena, "'%s' is defined later, at line %u; move that definition above this use",
                                            e->name, s->span.line);
            sema_error(c, e->span, help, "'%s' is used before it is defined", e->name);
            return poison();
        }
    }
    const char *close = diag_closest(e->name, cands, n);
    const char *help = close ? arena_printf(&c->s->arena, "did you mean '%s'?", close) : NULL;
    sema_error(c, e->span, help, "undefined name '%s'", e->name);
    return poison();
}

static SVal elab_pow(Ctx *c, SVal a, SVal b, const AstExpr *e)
{
    Module *m = c->s->m;
    if (a.untyped && b.untyped) return fold_binary(c, AOP_POW, a.c, b.c, e->span);
    if (b.untyped && b.c.kind == CV_INT && b.c.i >= -64 && b.c.i <= 64) {
        if (a.e->type == DT_BOOL) { sema_error(c, e->span, NULL, "^ needs a numeric base"); return poison(); }
        int64_t n = b.c.i < 0 ? -b.c.i : b.c.i;
        if (b.c.i < 0 && !dtype_is_float(a.e->type)) {
            sema_error(c, e->b->span, NULL, "a negative exponent needs a float base");
            return poison();
        }
        Expr *r = n == 0 ? (dtype_is_float(a.e->type) ? ir_const_f(m, a.e->type, 1) : ir_const_i(m, a.e->type, 1)) : a.e;
        for (int64_t i = 1; i < n; i++) r = ir_binary(m, OP_MUL, r, a.e);
        if (b.c.i < 0) r = ir_binary(m, OP_DIV, ir_const_f(m, a.e->type, 1), r);
        return typed(r);
    }
    if (!unify(c, &a, &b, e->a->span, e->b->span, e->span, "^")) return poison();
    if (a.e->type == DT_BOOL) { sema_error(c, e->span, NULL, "^ needs numeric operands"); return poison(); }
    return typed(ir_binary(m, OP_POW, a.e, b.e));
}

static Op arith_op(AstOp op)
{
    switch (op) {
    case AOP_ADD: return OP_ADD; case AOP_SUB: return OP_SUB; case AOP_MUL: return OP_MUL;
    case AOP_DIV: return OP_DIV; case AOP_MOD: return OP_MOD; case AOP_LT: return OP_LT;
    case AOP_LE: return OP_LE; case AOP_GT: return OP_GT; case AOP_GE: return OP_GE;
    case AOP_EQ: return OP_EQ; case AOP_NE: return OP_NE; case AOP_AND: return OP_AND;
    case AOP_OR: return OP_OR;
    case AOP_NEG: case AOP_NOT: case AOP_POW: case AOP_MATMUL: break;
    }
    TD_UNREACHABLE("arith_op");
}

static SVal elab_binary(Ctx *c, Env *env, const AstExpr *e, const Whole *w)
{
    Module *m = c->s->m;
    if (e->op == AOP_MATMUL) {
        if (!w) {
            sema_error(c, e->span, "use @ in a whole-tensor definition (t = a @ b), or write sum[k](a[i, k] * b[k, j])",
                       "@ multiplies whole tensors; it cannot be used inside an indexed definition");
            return poison();
        }
        Tensor *t = materialize_matmul(c, env, e);
        return t ? broadcast_read(c, t, w, e->span) : poison();
    }
    SVal a = elab(c, env, e->a, w), b = elab(c, env, e->b, w);
    if (a.poison || b.poison) return poison();
    if (e->op == AOP_POW) return elab_pow(c, a, b, e);
    if (a.untyped && b.untyped) return fold_binary(c, e->op, a.c, b.c, e->span);
    if (e->op == AOP_AND || e->op == AOP_OR) {
        SVal *side[2] = {&a, &b};
        const AstExpr *ast[2] = {e->a, e->b};
        for (int i = 0; i < 2; i++) {
            bool is_bool = side[i]->untyped ? side[i]->c.kind == CV_BOOL : side[i]->e->type == DT_BOOL;
            if (!is_bool) {
                sema_error(c, ast[i]->span, "compare it first, e.g. x != 0", "'%s' needs bool operands, found %s", ast_op_name(e->op),
                           side[i]->untyped ? "a number" : dtype_name(side[i]->e->type));
                return poison();
            }
        }
    }
    if (!unify(c, &a, &b, e->a->span, e->b->span, e->span, ast_op_name(e->op))) return poison();
    DType t = a.e->type;
    switch (e->op) {
    case AOP_AND: case AOP_OR:
        if (t != DT_BOOL) {
            sema_error(c, e->span, "compare first, e.g. x != 0", "'%s' needs bool operands, found %s", ast_op_name(e->op), dtype_name(t));
            return poison();
        }
        break;
    case AOP_LT: case AOP_LE: case AOP_GT: case AOP_GE:
        if (t == DT_BOOL) { sema_error(c, e->span, NULL, "'%s' does not order bools", ast_op_name(e->op)); return poison(); }
        break;
    case AOP_EQ: case AOP_NE: break;
    case AOP_ADD: case AOP_SUB: case AOP_MUL: case AOP_DIV: case AOP_MOD:
        if (t == DT_BOOL) {
            sema_error(c, e->span, "use and/or/not for logic, or convert with i32(...)", "arithmetic '%s' on bool values", ast_op_name(e->op));
            return poison();
        }
        break;
    case AOP_NEG: case AOP_NOT: case AOP_POW: case AOP_MATMUL: TD_UNREACHABLE("binary op");
    }
    Expr *r = ir_binary(m, arith_op(e->op), a.e, b.e);
    r->span = e->span;
    return typed(r);
}

static SVal elab_unary(Ctx *c, Env *env, const AstExpr *e, const Whole *w)
{
    SVal a = elab(c, env, e->a, w);
    if (a.poison) return a;
    if (e->op == AOP_NOT) {
        if (a.untyped) {
            if (a.c.kind != CV_BOOL) { sema_error(c, e->span, NULL, "'not' needs a bool operand"); return poison(); }
            return untyped_bool(!a.c.i);
        }
        if (a.e->type != DT_BOOL) {
            sema_error(c, e->span, "compare first, e.g. not (x == 0)", "'not' needs a bool operand, found %s", dtype_name(a.e->type));
            return poison();
        }
        return typed(ir_unary(c->s->m, OP_NOT, a.e));
    }
    if (a.untyped) {
        if (a.c.kind == CV_BOOL) { sema_error(c, e->span, NULL, "cannot negate a bool"); return poison(); }
        if (a.c.kind == CV_FLOAT) return untyped_float(-a.c.f);
        if (a.c.i == INT64_MIN) { sema_error(c, e->span, NULL, "integer overflow in a constant expression"); return poison(); }
        return untyped_int(-a.c.i);
    }
    if (a.e->type == DT_BOOL) { sema_error(c, e->span, NULL, "cannot negate a bool"); return poison(); }
    return typed(ir_unary(c->s->m, OP_NEG, a.e));
}

/* Declares the reduction variables of `rop[vars](body)` in a new scope. */
static Env *bind_rvars(Ctx *c, Env *env, const AstExpr *e, Var ***out)
{
    Module *m = c->s->m;
    Env *inner = env_new(c, env);
    Var **red = arena_array(&m->arena, (size_t)e->nrvars + 1, sizeof(Var *));
    bool ok = true;
    for (int i = 0; i < e->nrvars; i++) {
        const AstRVar *rv = &e->rvars[i];
        Binding *prev = env_lookup(env, rv->name);
        if (prev && prev->kind != B_POISON) {
            const char *help = arena_printf(&c->s->arena, "pick a fresh name for the reduction variable, e.g. %s2", rv->name);
            sema_error(c, rv->span, help, "'%s' is already defined; a reduction variable needs a fresh name", rv->name);
            ok = false;
            continue;
        }
        Expr *ext = NULL;
        if (rv->range) ext = sema_size_expr(c, env, rv->range);
        else infer_range(c, env, e->a, rv->name, rv->span, &ext);
        if (!ext) { ok = false; continue; }
        red[i] = c->in_fn ? sema_var_new(c, VAR_REDUCE, rv->name, ext) : ir_var_new(m, VAR_REDUCE, rv->name, ext);
        Binding *b = env_bind(c, inner, rv->name, B_VAR, rv->span);
        b->var = red[i];
    }
    *out = ok ? red : NULL;
    return inner;
}

/* Checks the body type of a reduction and gives the result dtype. */
static bool reduce_types(Ctx *c, ReduceOp rop, SVal *body, Span sp, DType *result)
{
    if (body->untyped) {
        DType t = (rop == RED_ANY || rop == RED_ALL) ? DT_BOOL : sval_default_type(*body);
        *body = sval_coerce(c, *body, t, sp);
        if (body->poison) return false;
    }
    DType t = body->e->type;
    switch (rop) {
    case RED_ANY: case RED_ALL:
        if (t != DT_BOOL) { sema_error(c, sp, "compare first, e.g. any[i](x[i] > 0)", "%s needs a bool body, found %s", ast_reduce_name(rop), dtype_name(t)); return false; }
        *result = DT_BOOL;
        return true;
    case RED_ARGMAX: case RED_ARGMIN:
        if (t == DT_BOOL) { sema_error(c, sp, NULL, "%s needs a numeric body", ast_reduce_name(rop)); return false; }
        *result = DT_I32;
        return true;
    case RED_SUM: case RED_PROD: case RED_MAX: case RED_MIN: case RED_MEAN:
        if (t == DT_BOOL) { sema_error(c, sp, "convert with i32(...) to count", "%s needs a numeric body, found bool", ast_reduce_name(rop)); return false; }
        *result = t;
        return true;
    case RED_NONE: break;
    }
    TD_UNREACHABLE("reduce_types");
}

/* Elaborates a reduction's variables and body (shared by hoisting and top-level defs). */
bool elab_reduction_parts(Ctx *c, Env *env, const AstExpr *e, Var ***red, Expr **body, DType *dt)
{
    Env *inner = bind_rvars(c, env, e, red);
    if (!*red) return false;
    SVal b = elab(c, inner, e->a, NULL);
    if (b.poison) return false;
    if (!reduce_types(c, e->rop, &b, e->a->span, dt)) return false;
    *body = b.e;
    return true;
}

static SVal elab_call(Ctx *c, Env *env, const AstExpr *e, const Whole *w)
{
    DType cast;
    if (dtype_from_name(e->name, &cast)) {
        if (e->nargs != 1 || (e->argnames && e->argnames[0])) {
            sema_error(c, e->span, NULL, "the cast %s(...) takes exactly one argument", e->name);
            return poison();
        }
        return apply_cast(c, cast, elab(c, env, e->args[0], w), e->span);
    }
    int bi = find_builtin(e->name);
    if (bi >= 0) {
        int n = builtin_arity(BUILTINS[bi].cls);
        if (e->nargs != n) {
            sema_error(c, e->span, NULL, "%s takes %d argument%s, found %d", e->name, n, n == 1 ? "" : "s", e->nargs);
            return poison();
        }
        SVal a[3];
        for (int i = 0; i < n; i++) {
            if (e->argnames && e->argnames[i]) {
                sema_error(c, e->args[i]->span, NULL, "builtin %s takes no named arguments", e->name);
                return poison();
            }
            a[i] = elab(c, env, e->args[i], w);
        }
        return apply_builtin(c, bi, a, e);
    }
    Val v = elab_call_value(c, env, e);
    if (val_is_poison(&v)) return poison();
    if (!v.t) return v.sv;
    return broadcast_read(c, v.t, w, e->span);
}

static SVal elab(Ctx *c, Env *env, const AstExpr *e, const Whole *w)
{
    switch (e->kind) {
    case AX_INT: return untyped_int(e->ival);
    case AX_FLOAT: return untyped_float(e->fval);
    case AX_BOOL: return untyped_bool(e->ival != 0);
    case AX_NAME: return elab_name(c, env, e, w);
    case AX_ELLIPSIS:
        sema_error(c, e->span, NULL, "`...` can only appear as an index");
        return poison();
    case AX_UNARY: return elab_unary(c, env, e, w);
    case AX_BINARY: return elab_binary(c, env, e, w);
    case AX_PAD:
    case AX_INDEX: {
        const AstExpr *acc = e->kind == AX_PAD ? e->a : e;
        const AstExpr *pad = e->kind == AX_PAD ? e->b : NULL;
        if (acc->kind != AX_INDEX) {
            sema_error(c, e->span, "`??` pads an indexed access, like x[i - 1] ?? 0", "the left side of `??` must be an indexed access");
            return poison();
        }
        Tensor *t = NULL;
        if (acc->a->kind == AX_NAME) {
            Binding *b = env_lookup(env, acc->a->name);
            if (b && b->kind == B_TENSOR) {
                if (b->pending) {
                    pending_output_read(c, acc->a->name, acc->a->span);
                    return poison();
                }
                t = b->t;
            } else if (b && b->kind == B_POISON) {
                return poison();
            } else if (b) {
                sema_error(c, acc->a->span, NULL, "'%s' is not a tensor and cannot be indexed", acc->a->name);
                return poison();
            } else {
                report_unindexable_name(c, env, acc->a);
                return poison();
            }
        } else if (acc->a->kind == AX_CALL) {
            Val v = elab_call_value(c, env, acc->a);
            if (val_is_poison(&v)) return poison();
            if (!v.t) {
                sema_error(c, acc->span, NULL, "%s returns a scalar, which cannot be indexed", acc->a->name);
                return poison();
            }
            t = v.t;
        } else {
            sema_error(c, acc->span, "index a tensor by name, or call a fn and index its result", "only tensors can be indexed");
            return poison();
        }
        return elab_access(c, env, t, acc, pad);
    }
    case AX_CALL: return elab_call(c, env, e, w);
    case AX_REDUCE: {
        Var **red;
        Expr *body;
        DType dt;
        if (!elab_reduction_parts(c, env, e, &red, &body, &dt)) return poison();
        return hoist_reduction(c, e->rop, red, e->nrvars, body, dt, e->span);
    }
    }
    return poison();
}

SVal elab_scalar(Ctx *c, Env *env, const AstExpr *e) { return elab(c, env, e, NULL); }

SVal elab_whole(Ctx *c, Env *env, const AstExpr *e, Var **idx, Expr **dims, int rank)
{
    Whole w = {idx, dims, rank};
    return elab(c, env, e, &w);
}

/* Defines a new temporary holding a whole-tensor expression of the given shape. */
Tensor *materialize(Ctx *c, Env *env, const AstExpr *e, int rank, Expr **dims, const char *name)
{
    Module *m = c->s->m;
    Var **idx = arena_array(&m->arena, (size_t)rank + 1, sizeof(Var *));
    static const char *const names[] = {"i0", "i1", "i2", "i3", "i4", "i5", "i6", "i7"};
    for (int i = 0; i < rank; i++) idx[i] = sema_var_new(c, VAR_INDEX, i < 8 ? names[i] : "i", dims[i]);
    SVal v = elab_whole(c, env, e, idx, dims, rank);
    Expr *body = sval_expr(c, v);
    if (!body) return NULL;
    Tensor *t = new_temp(c, name, body->type, rank, dims, e->span);
    if (!emit_def(c, t, idx, RED_NONE, NULL, 0, body, e->span)) return NULL;
    return t;
}

static Tensor *materialize_matmul(Ctx *c, Env *env, const AstExpr *e)
{
    for (int i = 0; i < c->ncache; i++)
        if (c->cache[i].ast == e) return c->cache[i].v.t;
    Module *m = c->s->m;
    Val a = eval_arg(c, env, e->a), b = eval_arg(c, env, e->b);
    Tensor *result = NULL;
    if (a.t && b.t) {
        Tensor *ta = a.t, *tb = b.t;
        int r;
        Expr **dims, *kdim;
        if (ta->dtype != tb->dtype) {
            sema_error(c, e->span, NULL, "mismatched types in @: %s and %s", dtype_name(ta->dtype), dtype_name(tb->dtype));
        } else if (ta->dtype == DT_BOOL) {
            sema_error(c, e->span, NULL, "@ needs numeric tensors");
        } else if (matmul_shape(c, ta->rank, ta->shape, tb->rank, tb->shape, &r, &dims, e->span, &kdim)) {
            Var **idx = arena_array(&m->arena, (size_t)r + 1, sizeof(Var *));
            for (int i = 0; i < r; i++) idx[i] = sema_var_new(c, VAR_INDEX, i == r - 1 && tb->rank >= 2 ? "j" : i == r - 1 || (i == r - 2 && tb->rank >= 2) ? "i" : "b", dims[i]);
            Var *k = sema_var_new(c, VAR_REDUCE, "k", kdim);
            int nbatch = r - (ta->rank >= 2) - (tb->rank >= 2);
            Expr *ia[IR_MAX_RANK + 1], *ib[IR_MAX_RANK + 1];
            /* batch axes broadcast, trailing-aligned, like numpy */
            for (int i = 0; i < ta->rank - 2; i++) {
                int bi = nbatch - (ta->rank - 2) + i;
                bool one = ta->shape[i]->op == OP_CONST && ta->shape[i]->value.i == 1 && !sizes_equal(c->s->bounds, ta->shape[i], dims[bi]);
                ia[i] = one ? ir_const_i(m, DT_I64, 0) : ir_var(m, idx[bi]);
            }
            for (int i = 0; i < tb->rank - 2; i++) {
                int bi = nbatch - (tb->rank - 2) + i;
                bool one = tb->shape[i]->op == OP_CONST && tb->shape[i]->value.i == 1 && !sizes_equal(c->s->bounds, tb->shape[i], dims[bi]);
                ib[i] = one ? ir_const_i(m, DT_I64, 0) : ir_var(m, idx[bi]);
            }
            if (ta->rank >= 2) { ia[ta->rank - 2] = ir_var(m, idx[nbatch]); ia[ta->rank - 1] = ir_var(m, k); }
            else ia[0] = ir_var(m, k);
            if (tb->rank >= 2) { ib[tb->rank - 2] = ir_var(m, k); ib[tb->rank - 1] = ir_var(m, idx[r - 1]); }
            else ib[0] = ir_var(m, k);
            Expr *body = ir_binary(m, OP_MUL, ir_access(m, ta, ia, NULL), ir_access(m, tb, ib, NULL));
            Tensor *t = new_temp(c, "matmul", ta->dtype, r, dims, e->span);
            Var *red[1] = {k};
            Var **redv = arena_array(&m->arena, 1, sizeof(Var *));
            redv[0] = red[0];
            if (emit_def(c, t, idx, RED_SUM, redv, 1, body, e->span)) result = t;
        }
    } else if (!val_is_poison(&a) && !val_is_poison(&b)) {
        sema_error(c, e->span, NULL, "@ needs tensors on both sides, not scalars");
    }
    if (c->ncache == c->capcache) {
        c->capcache = c->capcache ? 2 * c->capcache : 16;
        WholeCache *nc = arena_array(&c->s->arena, (size_t)c->capcache, sizeof(WholeCache));
        if (c->ncache) memcpy(nc, c->cache, (size_t)c->ncache * sizeof(WholeCache));
        c->cache = nc;
    }
    Val rv = {0};
    rv.t = result;
    rv.sv.poison = result == NULL;
    c->cache[c->ncache++] = (WholeCache){e, rv};
    return result;
}
