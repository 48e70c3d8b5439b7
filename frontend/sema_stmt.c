/* sema_stmt: statements of kernel and fn bodies.
 *
 * Indexed definitions (`t[i, j] = e`: ranges from the output's type or inferred from the
 * right-hand side), whole-tensor definitions (`t = e`: shape by broadcasting), scans (state
 * rules: one redefinition per step; tensors indexed by the scan variable are collected), and
 * `return`. Single assignment: a name is defined once; outputs exactly once. */
#include "sema_internal.h"

#include <stdlib.h>
#include <string.h>

/* ---- statements ------------------------------------------------------------------------------------------------------ */

typedef enum TargetKind { TGT_NEW, TGT_OUTPUT, TGT_STATE, TGT_BAD } TargetKind;

/* Decides what a definition's left-hand name refers to, reporting redefinitions. */
static TargetKind def_target(Ctx *c, Env *env, const AstStmt *st, Binding **out)
{
    Binding *b = env_lookup(env, st->name);
    *out = b;
    if (!b) {
        CVal cv;
        bool found;
        if (sema_const_value(c->s, c->mod, st->name, &cv, &found) || found) {
            sema_error(c, st->name_span, "pick another name for the tensor", "'%s' is a constant and cannot be redefined", st->name);
            return TGT_BAD;
        }
        return TGT_NEW;
    }
    if (b->kind == B_TENSOR && b->pending) return TGT_OUTPUT;
    if (b->is_state) {
        if (b->scan_env != env) {
            sema_error(c, st->name_span, NULL, "state '%s' can only be redefined directly in the body of its own scan", st->name);
            return TGT_BAD;
        }
        if (b->redefined) {
            if (sema_error(c, st->name_span, "a state takes one new value per step; combine the updates into one definition",
                           "state '%s' is redefined twice in one step", st->name))
                diag_note(c->s->d, b->span, "the first redefinition is here");
            return TGT_BAD;
        }
        return TGT_STATE;
    }
    const char *what = b->kind == B_SIZE ? "a size name" : b->kind == B_VAR ? "an index variable"
                     : b->t && b->t->kind == TK_INPUT ? "a parameter" : b->t && b->t->kind == TK_OUTPUT ? "an output" : "a tensor";
    if (b->kind == B_POISON) return TGT_BAD;
    if (sema_error(c, st->name_span, "every tensor is defined once; give the new value its own name",
                   "'%s' is already defined (as %s)", st->name, what))
        if (b->span.file) diag_note(c->s->d, b->span, "'%s' was defined here", st->name);
    return TGT_BAD;
}

static void bind_poison(Ctx *c, Env *env, const AstStmt *st, TargetKind tk, Binding *b)
{
    if (tk == TGT_OUTPUT) { b->pending = false; return; }   /* reported; don't also say "never defined" */
    if (tk == TGT_STATE) return;
    if (tk == TGT_NEW) env_bind(c, env, st->name, B_POISON, st->name_span);
}

/* Finishes a definition: binds the name to the tensor now holding its value. */
static void bind_defined(Ctx *c, Env *env, const AstStmt *st, TargetKind tk, Binding *b, Tensor *t, Env *home)
{
    switch (tk) {
    case TGT_OUTPUT: b->pending = false; b->span = st->name_span; return;
    case TGT_STATE: b->t = t; b->redefined = true; b->span = st->name_span; return;
    case TGT_NEW: {
        Binding *nb = env_bind(c, home ? home : env, st->name, B_TENSOR, st->name_span);
        nb->t = t;
        return;
    }
    case TGT_BAD: return;
    }
}

static Tensor *state_next(Ctx *c, Binding *b, Span sp)
{
    Tensor *st = b->state;
    return new_temp(c, arena_printf(&c->s->arena, "%s.next", st->name), st->dtype, st->rank, st->shape, sp);
}

static bool scan_var_in_lhs(Env *env, const AstStmt *st)
{
    for (int i = 0; i < st->nidx; i++) {
        Binding *vb = st->idx[i].name ? env_lookup(env, st->idx[i].name) : NULL;
        if (vb && vb->kind == B_VAR && vb->var->kind == VAR_SCAN) return true;
    }
    return false;
}

static void elab_indexed_def_in(Ctx *c, Env *env, const AstStmt *st);
static void elab_whole_def_in(Ctx *c, Env *env, const AstStmt *st);

/* Records which name is being defined, so reading it in its own definition is explained. */
static void elab_indexed_def(Ctx *c, Env *env, const AstStmt *st)
{
    const char *saved = c->cur_def;
    c->cur_def = st->name;
    elab_indexed_def_in(c, env, st);
    c->cur_def = saved;
}

static void elab_whole_def(Ctx *c, Env *env, const AstStmt *st)
{
    const char *saved = c->cur_def;
    c->cur_def = st->name;
    elab_whole_def_in(c, env, st);
    c->cur_def = saved;
}

static void elab_indexed_def_in(Ctx *c, Env *env, const AstStmt *st)
{
    Module *m = c->s->m;
    Binding *b;
    TargetKind tk = def_target(c, env, st, &b);
    if (tk == TGT_BAD) return;
    Tensor *known = tk == TGT_OUTPUT ? b->t : tk == TGT_STATE ? b->state : NULL;

    /* left-hand indices: fresh variables, the scan variable, or `...` */
    int nell = 0;
    for (int i = 0; i < st->nidx; i++) nell += st->idx[i].name == NULL;
    bool ok = true;
    if (nell > 1) { sema_error(c, st->span, NULL, "a left-hand side may contain at most one `...`"); ok = false; }
    if (nell && (!c->in_fn || c->nbatch_dims < 0)) {
        sema_error(c, st->span, "`...` stands for the batch dimensions of a fn's `...` parameters",
                   "`...` on the left-hand side is only allowed in fn bodies with `...` parameters");
        ok = false;
    }
    if (!ok) { bind_poison(c, env, st, tk, b); return; }
    int nb = nell ? c->nbatch_dims : 0;
    int rank = st->nidx - nell + nb;
    if (rank > IR_MAX_RANK) { sema_error(c, st->span, NULL, "tensors have at most %d dimensions", IR_MAX_RANK); bind_poison(c, env, st, tk, b); return; }
    if (known && rank != known->rank) {
        sema_error(c, st->span, NULL, "%s has rank %d but is defined with %d %s", st->name, known->rank, rank, rank == 1 ? "index" : "indices");
        bind_poison(c, env, st, tk, b);
        return;
    }
    Var **idx = arena_array(&m->arena, (size_t)rank + 1, sizeof(Var *));
    Var **batch = arena_array(&m->arena, (size_t)nb + 1, sizeof(Var *));
    Env *denv = env_new(c, env);
    Env *home = NULL;      /* where a tensor collected across scan steps is bound */
    int k = 0;
    for (int i = 0; i < st->nidx; i++) {
        const AstLhsIdx *li = &st->idx[i];
        if (!li->name) {
            for (int j = 0; j < nb; j++) {
                Expr *ext = c->batch_dims[j];
                batch[j] = sema_var_new(c, VAR_INDEX, arena_printf(&c->s->arena, "b%d", j), ext);
                idx[k++] = batch[j];
            }
            continue;
        }
        for (int j = 0; j < i; j++)
            if (st->idx[j].name && strcmp(st->idx[j].name, li->name) == 0) {
                sema_error(c, li->span, NULL, "index variable '%s' appears twice on the left-hand side", li->name);
                ok = false;
            }
        Binding *vb = env_lookup(env, li->name);
        if (vb && vb->kind == B_VAR && vb->var->kind == VAR_SCAN) {
            idx[k] = vb->var;
            home = vb->outer;
            if (known && !sizes_equal(c->s->bounds, known->shape[k], vb->var->extent)) {
                StrBuf x = {0}, y = {0};
                ir_print_size(known->shape[k], &x);
                ir_print_size(vb->var->extent, &y);
                sema_error(c, li->span, NULL, "axis %d of %s has size %s but the scan runs %s steps", k, st->name, sb_cstr(&x), sb_cstr(&y));
                sb_free(&x);
                sb_free(&y);
                ok = false;
            }
            k++;
            continue;
        }
        if (vb && vb->kind != B_POISON) {
            const char *help = arena_printf(&c->s->arena, "index variables need fresh names, e.g. %s2", li->name);
            sema_error(c, li->span, help, "'%s' is already defined and cannot be used as an index variable", li->name);
            ok = false;
            k++;
            continue;
        }
        Expr *ext = NULL;
        if (known) ext = known->shape[k];
        else infer_range(c, env, st->rhs, li->name, li->span, &ext);
        if (!ext) { ok = false; k++; continue; }
        idx[k] = c->in_fn ? sema_var_new(c, VAR_INDEX, li->name, ext) : ir_var_new(m, VAR_INDEX, li->name, ext);
        Binding *ib = env_bind(c, denv, li->name, B_VAR, li->span);
        ib->var = idx[k];
        k++;
    }
    if (!ok) { bind_poison(c, env, st, tk, b); return; }
    if (tk == TGT_OUTPUT && c->scan_depth > 0 && !home && !scan_var_in_lhs(env, st)) {
        sema_error(c, st->span, "index it by the scan variable to collect one value per step, or define it after the scan",
                   "output '%s' would be redefined at every step of the scan", st->name);
        bind_poison(c, env, st, tk, b);
        return;
    }
    if (home && tk != TGT_NEW) home = NULL;

    /* the right-hand side, with a top-level reduction kept as the definition's own */
    Var **saved_batch = c->batch;
    int saved_nbatch = c->nbatch;
    c->batch = nell ? batch : NULL;
    c->nbatch = nell ? nb : 0;
    ReduceOp rop = RED_NONE;
    Var **red = NULL;
    int nred = 0;
    Expr *body = NULL;
    DType dt = DT_F32;
    if (st->rhs->kind == AX_REDUCE) {
        rop = st->rhs->rop;
        nred = st->rhs->nrvars;
        if (elab_reduction_parts(c, denv, st->rhs, &red, &body, &dt)) {
            DType want = known ? known->dtype : dt;
            if (want != dt) {
                const char *help = rop == RED_ARGMAX || rop == RED_ARGMIN ? "declare it i32" :
                                   arena_printf(&c->s->arena, "convert the body: %s(...)", dtype_name(want));
                sema_error(c, st->rhs->span, help, "%s gives %s values but %s is %s", ast_reduce_name(rop), dtype_name(dt),
                           st->name, dtype_name(want));
                body = NULL;
            }
        }
    } else {
        SVal v = elab_scalar(c, denv, st->rhs);
        if (known) v = sval_coerce(c, v, known->dtype, st->rhs->span);
        body = sval_expr(c, v);
        if (body) dt = body->type;
    }
    c->batch = saved_batch;
    c->nbatch = saved_nbatch;
    if (!body) { bind_poison(c, env, st, tk, b); return; }

    Tensor *dst = known;
    if (tk == TGT_STATE) dst = state_next(c, b, st->name_span);
    if (tk == TGT_NEW) {
        Expr **dims = arena_array(&m->arena, (size_t)rank + 1, sizeof(Expr *));
        for (int i = 0; i < rank; i++) dims[i] = idx[i]->extent;
        const char *name = c->in_fn ? arena_printf(&c->s->arena, "%s.%s", c->frames[c->nframes - 1].fn, st->name) : st->name;
        dst = new_temp(c, name, dt, rank, dims, st->name_span);
    }
    if (!emit_def(c, dst, idx, rop, red, nred, body, st->span)) { bind_poison(c, env, st, tk, b); return; }
    bind_defined(c, env, st, tk, b, dst, home);
}

/* Whether a value of shape dims can fill t: trailing-aligned, equal or of size 1. */
static bool broadcasts_to(Ctx *c, int rank, Expr **dims, const Tensor *t)
{
    if (rank > t->rank) return false;
    for (int i = 0; i < rank; i++) {
        Expr *x = dims[i], *y = t->shape[t->rank - rank + i];
        if (!sizes_equal(c->s->bounds, x, y) && !(x->op == OP_CONST && x->value.i == 1)) return false;
    }
    return true;
}

static bool same_shape(Ctx *c, int ra, Expr **da, int rb, Expr **db)
{
    if (ra != rb) return false;
    for (int i = 0; i < ra; i++)
        if (!sizes_equal(c->s->bounds, da[i], db[i])) return false;
    return true;
}

static void elab_whole_def_in(Ctx *c, Env *env, const AstStmt *st)
{
    Module *m = c->s->m;
    Binding *b;
    TargetKind tk = def_target(c, env, st, &b);
    if (tk == TGT_BAD) return;
    Tensor *known = tk == TGT_OUTPUT ? b->t : tk == TGT_STATE ? b->state : NULL;
    if (tk == TGT_OUTPUT && c->scan_depth > 0) {
        sema_error(c, st->span, "index it by the scan variable to collect one value per step, or define it after the scan",
                   "output '%s' would be redefined at every step of the scan", st->name);
        bind_poison(c, env, st, tk, b);
        return;
    }
    int rank;
    Expr **dims;
    c->fn_result = NULL;
    if (!elab_whole_shape(c, env, st->rhs, &rank, &dims)) { bind_poison(c, env, st, tk, b); return; }
    if (known) {
        if (!broadcasts_to(c, rank, dims, known)) {
            StrBuf x = {0}, y = {0};
            describe_type(known->dtype, known->rank, known->shape, &x);
            describe_type(known->dtype, rank, dims, &y);
            sema_error(c, st->rhs->span, NULL, "%s is %s but the right-hand side has shape %s", st->name, sb_cstr(&x), sb_cstr(&y) + strlen(dtype_name(known->dtype)));
            sb_free(&x);
            sb_free(&y);
            bind_poison(c, env, st, tk, b);
            return;
        }
        Tensor *dst = tk == TGT_STATE ? state_next(c, b, st->name_span) : known;
        Var **idx = arena_array(&m->arena, (size_t)known->rank + 1, sizeof(Var *));
        static const char *const names[] = {"i0", "i1", "i2", "i3", "i4", "i5", "i6", "i7"};
        for (int i = 0; i < known->rank; i++) idx[i] = sema_var_new(c, VAR_INDEX, names[i], known->shape[i]);
        SVal v = elab_whole(c, env, st->rhs, idx, known->shape, known->rank);
        v = sval_coerce(c, v, known->dtype, st->rhs->span);
        Expr *body = sval_expr(c, v);
        if (!body || !emit_def(c, dst, idx, RED_NONE, NULL, 0, body, st->span)) { bind_poison(c, env, st, tk, b); return; }
        bind_defined(c, env, st, tk, b, dst, NULL);
        return;
    }
    if (rank == 0 && c->in_fn) {
        /* a scalar inside a fn is substituted where it is used: it may depend on the
         * caller's index variables when the fn is called on scalars */
        SVal v = elab_scalar(c, env, st->rhs);
        if (v.poison) { bind_poison(c, env, st, tk, b); return; }
        Binding *nb = env_bind(c, env, st->name, B_SCALAR, st->name_span);
        nb->sv = v;
        return;
    }
    const char *name = c->in_fn ? arena_printf(&c->s->arena, "%s.%s", c->frames[c->nframes - 1].fn, st->name) : st->name;
    Tensor *t = NULL;
    if (st->rhs->kind == AX_CALL && c->fn_result && c->fn_result->rank == rank) {
        /* `p = softmax(s)`: the call already materialised its result; just name it */
        Val v = elab_call_value(c, env, st->rhs);
        if (v.t == c->fn_result) {
            t = v.t;
            t->name = sema_unique_name(c, name);
            t->span = st->name_span;
        }
    }
    if (!t) t = materialize(c, env, st->rhs, rank, dims, name);
    if (!t) { bind_poison(c, env, st, tk, b); return; }
    bind_defined(c, env, st, tk, b, t, NULL);
}

/* Declares state i of a scan: its type, its TK_STATE tensor and its initial value. On
 * an error, the state's name is bound to poison so the body does not cascade. */
static Binding *elab_state(Ctx *c, Env *env, Env *benv, const AstState *as, ScanState *ss)
{
    Module *m = c->s->m;
    Binding *pb = env_lookup(benv, as->name);
    if (pb && pb->kind != B_POISON) {
        sema_error(c, as->name_span, NULL, "'%s' is already defined; a state needs a fresh name", as->name);
        return NULL;
    }
    DType dt;
    bool ok = sema_resolve_dtype(c, &as->type, &dt);
    int rank = as->type.ndims;
    Expr **dims = arena_array(&m->arena, (size_t)rank + 1, sizeof(Expr *));
    for (int j = 0; ok && j < rank; j++) {
        if (as->type.dims[j].ellipsis) {
            sema_error(c, as->type.span, "give the state's dimensions by name", "`...` is not allowed in a state's type");
            ok = false;
            break;
        }
        dims[j] = sema_size_expr(c, env, as->type.dims[j].size);
        ok = dims[j] != NULL;
    }
    if (!ok) { env_bind(c, benv, as->name, B_POISON, as->name_span); return NULL; }
    const char *name = c->in_fn ? arena_printf(&c->s->arena, "%s.%s", c->frames[c->nframes - 1].fn, as->name) : as->name;
    Tensor *state = new_temp(c, name, dt, rank, dims, as->name_span);
    state->kind = TK_STATE;
    ss->state = state;
    /* the initial value: a tensor of the state's type, or a constant broadcast */
    Binding *ib = as->init->kind == AX_NAME ? env_lookup(env, as->init->name) : NULL;
    if (ib && ib->kind == B_TENSOR && !ib->pending) {
        if (ib->t->dtype != dt || !same_shape(c, ib->t->rank, ib->t->shape, rank, dims)) {
            StrBuf x = {0}, y = {0};
            describe_type(dt, rank, dims, &x);
            describe_type(ib->t->dtype, ib->t->rank, ib->t->shape, &y);
            sema_error(c, as->init->span, NULL, "state %s is %s but its initial value %s is %s", as->name, sb_cstr(&x),
                       ib->t->name, sb_cstr(&y));
            sb_free(&x);
            sb_free(&y);
            ok = false;
        }
        ss->init_tensor = ib->t;
    } else {
        SVal v = elab_scalar(c, env, as->init);
        v = sval_coerce(c, v, dt, as->init->span);
        ok = !v.poison;
        if (ok && v.e->op != OP_CONST) {
            sema_error(c, as->init->span, "initialise it with a constant (broadcast) or a tensor of the state's type",
                       "the initial value of state '%s' is neither a constant nor a tensor", as->name);
            ok = false;
        }
        if (ok) ss->init_value = v.e;
    }
    /* bound even when the initial value was wrong: the type is known, the body can be checked */
    Binding *b = env_bind(c, benv, as->name, B_TENSOR, as->name_span);
    b->t = state;
    b->state = state;
    b->is_state = true;
    b->scan_env = benv;
    return ok ? b : NULL;
}

static void elab_scan(Ctx *c, Env *env, const AstStmt *st)
{
    Module *m = c->s->m;
    Binding *prev = env_lookup(env, st->var);
    if (prev && prev->kind != B_POISON) {
        sema_error(c, st->var_span, NULL, "'%s' is already defined; the scan variable needs a fresh name", st->var);
        return;
    }
    Expr *steps = sema_size_expr(c, env, st->extent);
    bool ok = steps != NULL;
    if (!steps) steps = ir_const_i(m, DT_I64, 1);   /* keep checking the body */
    Var *sv = ir_var_new(m, VAR_SCAN, arena_strdup(&m->arena, st->var), steps);
    Stmt *scan = arena_alloc(&m->arena, sizeof(Stmt));
    scan->kind = STMT_SCAN;
    scan->span = st->span;
    scan->scan.var = sv;
    scan->scan.reverse = st->reverse;
    scan->scan.nstates = st->nstates;
    scan->scan.states = arena_array(&m->arena, (size_t)st->nstates + 1, sizeof(ScanState));
    Env *benv = env_new(c, env);
    Binding *vb = env_bind(c, benv, st->var, B_VAR, st->var_span);
    vb->var = sv;
    vb->outer = env;
    Binding **sb = arena_array(&c->s->arena, (size_t)st->nstates + 1, sizeof(Binding *));
    for (int i = 0; i < st->nstates; i++) {
        sb[i] = elab_state(c, env, benv, &st->states[i], &scan->scan.states[i]);
        ok &= sb[i] != NULL;
    }
    PtrVec body = {0};
    PtrVec *saved_stmts = c->stmts;
    AstStmt **saved_body = c->body;
    int saved_nbody = c->nbody;
    c->stmts = &body;
    c->body = st->body;
    c->nbody = st->nbody;
    c->scan_depth++;
    sema_elab_body(c, benv, st->body, st->nbody, NULL);
    c->scan_depth--;
    c->stmts = saved_stmts;
    c->body = saved_body;
    c->nbody = saved_nbody;
    scan->scan.body = (Stmt **)body.items;
    scan->scan.nbody = body.len;
    for (int i = 0; i < st->nstates; i++) {
        Binding *after = env_bind(c, env, st->states[i].name, ok ? B_TENSOR : B_POISON, st->states[i].name_span);
        if (!ok) continue;
        ScanState *ss = &scan->scan.states[i];
        ss->next = sb[i]->t != ss->state ? sb[i]->t : NULL;
        after->t = ss->state;   /* after the scan, the state's name is its final value */
    }
    if (ok) pv_push(&m->arena, c->stmts, scan);
}

void sema_elab_body(Ctx *c, Env *env, AstStmt **body, int nbody, const AstStmt **ret)
{
    for (int i = 0; i < nbody; i++) {
        const AstStmt *st = body[i];
        switch (st->kind) {
        case AS_DEF:
            if (ret && *ret) {
                sema_error(c, st->span, NULL, "statements after `return` are not allowed");
                break;
            }
            if (st->indexed) elab_indexed_def(c, env, st);
            else elab_whole_def(c, env, st);
            break;
        case AS_SCAN:
            if (ret && *ret) {
                sema_error(c, st->span, NULL, "statements after `return` are not allowed");
                break;
            }
            elab_scan(c, env, st);
            break;
        case AS_RETURN:
            if (!ret) {
                const char *help = c->in_fn ? "a fn returns once, at the end of its body"
                                            : "a kernel defines its outputs by name: y[i] = ... or y = ...";
                sema_error(c, st->span, help, "`return` is only allowed at the end of a fn body");
            } else if (*ret) {
                sema_error(c, st->span, NULL, "a fn has only one `return`");
            } else {
                *ret = st;
            }
            break;
        }
    }
}

