/* sema_call: inlining of fn calls by instantiation.
 *
 * A call binds each parameter to the caller's tensor (or scalar expression), binds the fn's
 * size names and `...` to the argument shapes (checking they agree), elaborates the body in
 * a fresh scope, and returns the value of its `return`: a scalar expression or a tensor.
 * Recursion is an error; nesting and program size are bounded so no input can blow up. */
#include "sema_internal.h"

#include <stdlib.h>
#include <string.h>

/* ---- fn instantiation ------------------------------------------------------------------------------------------------ */

static bool bind_fn_dim(Ctx *c, Env *fenv, const AstExpr *d, Expr *actual, const char *param, Span argspan)
{
    if (d->kind == AX_NAME) {
        Binding *b = env_lookup(fenv, d->name);
        if (!b) {
            CVal cv;
            bool found;
            if (sema_const_value(c->s, c->mod, d->name, &cv, &found)) {
                Expr *k = ir_const_i(c->s->m, DT_I64, cv.i);
                if (cv.kind == CV_INT && sizes_equal(c->s->bounds, k, actual)) return true;
                StrBuf sb = {0};
                ir_print_size(actual, &sb);
                sema_error(c, argspan, NULL, "argument for %s has a dimension %s where %s = %lld is expected", param, sb_cstr(&sb),
                           d->name, (long long)cv.i);
                sb_free(&sb);
                return false;
            }
            b = env_bind(c, fenv, d->name, B_SIZE, d->span);
            b->size = actual;
            return true;
        }
        if (b->kind == B_SIZE) {
            if (sizes_equal(c->s->bounds, b->size, actual)) return true;
            StrBuf x = {0}, y = {0};
            ir_print_size(b->size, &x);
            ir_print_size(actual, &y);
            sema_error(c, argspan, "the arguments' shapes must agree on every size name of the fn's signature",
                       "size %s of the fn is %s for an earlier argument but %s for %s", d->name, sb_cstr(&x), sb_cstr(&y), param);
            sb_free(&x);
            sb_free(&y);
            return false;
        }
    }
    Expr *want = sema_size_expr(c, fenv, d);
    if (!want) return false;
    if (sizes_equal(c->s->bounds, want, actual)) return true;
    StrBuf x = {0}, y = {0};
    ir_print_size(want, &x);
    ir_print_size(actual, &y);
    sema_error(c, argspan, NULL, "argument for %s has a dimension %s where %s is expected", param, sb_cstr(&y), sb_cstr(&x));
    sb_free(&x);
    sb_free(&y);
    return false;
}

static bool bind_fn_param(Ctx *c, Env *fenv, const AstParam *p, Val *a, Span argspan, Expr ***batch, int *nbatch)
{
    DType dt;
    if (!sema_resolve_dtype(c, &p->type, &dt)) return false;
    const AstType *ty = &p->type;
    int ell = ty->ndims > 0 && ty->dims[0].ellipsis ? 1 : 0;
    for (int i = ell; i < ty->ndims; i++)
        if (ty->dims[i].ellipsis) {
            sema_error(c, ty->span, NULL, "`...` may only be the first dimension");
            return false;
        }
    int fixed = ty->ndims - ell;
    int rank = a->t ? a->t->rank : 0;
    Expr **dims = a->t ? a->t->shape : NULL;
    if (!a->t) {
        if (a->sv.untyped) a->sv = sval_coerce(c, a->sv, dt, argspan);
        if (a->sv.poison) return false;
    }
    DType at = a->t ? a->t->dtype : a->sv.e->type;
    if (at != dt) {
        const char *help = arena_printf(&c->s->arena, "convert the argument: %s(...)", dtype_name(dt));
        sema_error(c, argspan, help, "parameter %s expects %s values, found %s", p->name, dtype_name(dt), dtype_name(at));
        return false;
    }
    int nb = rank - fixed;
    if (nb < 0 || (!ell && nb != 0)) {
        StrBuf sb = {0};
        if (a->t) describe_type(at, rank, dims, &sb);
        else sb_puts(&sb, dtype_name(at));
        sema_error(c, argspan, NULL, "parameter %s expects rank %s%d, found %s (rank %d)", p->name, ell ? "at least " : "",
                   fixed, sb_cstr(&sb), rank);
        sb_free(&sb);
        return false;
    }
    if (ell) {
        if (*nbatch < 0) {
            *nbatch = nb;
            *batch = dims;
        } else {
            bool same = *nbatch == nb;
            for (int i = 0; same && i < nb; i++) same = sizes_equal(c->s->bounds, (*batch)[i], dims[i]);
            if (!same) {
                sema_error(c, argspan, "every `...` in one fn call stands for the same batch dimensions",
                           "the batch dimensions of %s differ from those of an earlier argument", p->name);
                return false;
            }
        }
    }
    for (int i = 0; i < fixed; i++)
        if (!bind_fn_dim(c, fenv, ty->dims[ell + i].size, dims[nb + i], p->name, argspan)) return false;
    Binding *b = env_bind(c, fenv, p->name, a->t ? B_TENSOR : B_SCALAR, p->name_span);
    b->t = a->t;
    b->sv = a->sv;
    return true;
}

bool sema_item_listed(PtrVec *v, const void *item)
{
    for (int i = 0; i < v->len; i++)
        if (v->items[i] == item) return true;
    return false;
}

Val call_fn(Ctx *c, const AstItem *fn, SModule *owner, Val *args, const char **argnames, Span *argspans, int nargs, Span call)
{
    Val bad = {0};
    bad.sv.poison = true;
    Sema *s = c->s;
    if (!sema_item_listed(&s->used_fns, fn)) pv_push(&s->arena, &s->used_fns, (void *)fn);
    for (int i = 0; i < c->nframes; i++)
        if (c->frames[i].item == fn) {
            sema_error(c, call, "fns are inlined, so they cannot call themselves", "fn '%s' calls itself", fn->name);
            return bad;
        }
    if (c->nframes == SEMA_MAX_INLINE_DEPTH) {
        sema_error(c, call, NULL, "fn calls are nested more than %d deep", SEMA_MAX_INLINE_DEPTH);
        return bad;
    }
    if (s->m->arena.total > ((size_t)1 << 30)) {
        sema_error(c, call, NULL, "the program is too large after inlining its fns");
        return bad;
    }
    /* match arguments to parameters: positional first, then by name */
    int np = fn->nparams;
    Val *bound = arena_array(&s->arena, (size_t)np + 1, sizeof(Val));
    Span *bspan = arena_array(&s->arena, (size_t)np + 1, sizeof(Span));
    bool *have = arena_array(&s->arena, (size_t)np + 1, sizeof(bool));
    bool ok = true;
    bool named_seen = false;
    for (int i = 0; i < nargs; i++) {
        int pi = -1;
        if (!(argnames && argnames[i]) && named_seen) {
            sema_error(c, argspans[i], "pass positional arguments first, then named ones", "positional argument after a named argument");
            ok = false;
            break;
        }
        if (argnames && argnames[i]) {
            named_seen = true;
            for (int j = 0; j < np; j++)
                if (strcmp(fn->params[j].name, argnames[i]) == 0) pi = j;
            if (pi < 0) {
                sema_error(c, argspans[i], NULL, "fn '%s' has no parameter named '%s'", fn->name, argnames[i]);
                ok = false;
                continue;
            }
        } else {
            pi = i;
            if (pi >= np) {
                sema_error(c, argspans[i], NULL, "too many arguments: fn '%s' takes %d", fn->name, np);
                ok = false;
                break;
            }
        }
        if (have[pi]) {
            sema_error(c, argspans[i], NULL, "parameter '%s' is given twice", fn->params[pi].name);
            ok = false;
            continue;
        }
        have[pi] = true;
        bound[pi] = args[i];
        bspan[pi] = argspans[i];
    }
    for (int j = 0; ok && j < np; j++)
        if (!have[j]) {
            sema_error(c, call, NULL, "missing argument for parameter '%s' of fn '%s'", fn->params[j].name, fn->name);
            ok = false;
        }
    if (!ok) return bad;

    /* enter the fn: its own scope, module, frame and cache */
    Ctx saved = *c;
    c->mod = owner;
    c->frames[c->nframes++] = (CallFrame){fn->name, call, fn};
    c->cache = NULL;
    c->ncache = c->capcache = 0;
    c->in_fn = true;
    c->batch = NULL;
    c->nbatch = 0;
    c->body = fn->body;
    c->nbody = fn->nbody;
    Env *fenv = env_new(c, NULL);
    Expr **batch = NULL;
    int nbatch = -1;
    for (int j = 0; j < np && ok; j++) ok = bind_fn_param(c, fenv, &fn->params[j], &bound[j], bspan[j], &batch, &nbatch);
    c->batch_dims = batch;
    c->nbatch_dims = nbatch;
    Val result = bad;
    const AstStmt *ret = NULL;
    if (ok) sema_elab_body(c, fenv, fn->body, fn->nbody, &ret);
    if (ok && !ret) sema_error(c, fn->name_span, "end the fn body with `return expr`", "fn '%s' has no return statement", fn->name);
    if (ok && ret) {
        int rank;
        Expr **dims;
        DType want;
        if (elab_whole_shape(c, fenv, ret->rhs, &rank, &dims) && sema_resolve_dtype(c, &fn->ret, &want)) {
            if (rank == 0) {
                SVal v = elab_scalar(c, fenv, ret->rhs);
                v = sval_coerce(c, v, want, ret->rhs->span);
                if (!v.poison) { result.sv = v; }
            } else {
                Binding *b = ret->rhs->kind == AX_NAME ? env_lookup(fenv, ret->rhs->name) : NULL;
                Tensor *t = b && b->kind == B_TENSOR && !b->pending ? b->t : materialize(c, fenv, ret->rhs, rank, dims, fn->name);
                if (t && t->dtype != want) {
                    sema_error(c, ret->rhs->span, NULL, "fn '%s' returns %s values but its signature says %s", fn->name,
                               dtype_name(t->dtype), dtype_name(want));
                    t = NULL;
                }
                if (t) { result.t = t; result.sv.poison = false; }
                /* a temporary made by this call can take the caller's name (see elab_whole_def) */
                bool made_here = false;
                for (int i = saved.temps.len; t && i < c->temps.len; i++) made_here |= c->temps.items[i] == t;
                c->fn_result = made_here && t->kind == TK_TEMP ? t : NULL;
            }
            /* the declared return shape must match what the body computed */
            const AstType *rt = &fn->ret;
            int ell = rt->ndims > 0 && rt->dims[0].ellipsis ? 1 : 0;
            int want_rank = rt->ndims - ell + (ell ? (nbatch < 0 ? 0 : nbatch) : 0);
            if (!(result.sv.poison && !result.t)) {
                bool same = want_rank == rank;
                for (int i = 0; same && i < rank; i++) {
                    int bi = ell ? i : -1;
                    Expr *w;
                    if (ell && bi < (nbatch < 0 ? 0 : nbatch)) w = batch[bi];
                    else {
                        int di = ell ? i - (nbatch < 0 ? 0 : nbatch) + 1 : i;
                        w = sema_size_expr(c, fenv, rt->dims[di].size);
                        if (!w) { same = false; break; }
                    }
                    same = sizes_equal(c->s->bounds, w, dims[i]);
                }
                if (!same) {
                    StrBuf got = {0};
                    describe_type(want, rank, dims, &got);
                    sema_error(c, ret->rhs->span, NULL, "fn '%s' returns %s, which does not match its declared return type",
                               fn->name, sb_cstr(&got));
                    sb_free(&got);
                    result = bad;
                }
            }
        }
    }
    Tensor *fn_result = c->fn_result;
    PtrVec temps = c->temps;
    int counter = c->counter;
    *c = saved;
    c->temps = temps;
    c->counter = counter;
    c->fn_result = fn_result;
    return result;
}

