/* sema_types: size expressions, element types, kernel signatures and storage annotations.
 *
 * Size names are introduced by the first kernel parameter or output that uses them; later
 * uses must agree. Annotations (@quant, @csr, @bsr, @nm, @coo) are checked against the
 * parameter's dtype and shape; the program's meaning stays dense. */
#include "sema_internal.h"

#include <stdlib.h>
#include <string.h>

/* ---- size expressions and types ---------------------------------------------------------------------------- */

Expr *sema_size_expr(Ctx *c, Env *env, const AstExpr *e)
{
    Module *m = c->s->m;
    if (e->kind == AX_INT) return ir_const_i(m, DT_I64, e->ival);
    if (e->kind == AX_NAME) {
        Binding *b = env_lookup(env, e->name);
        if (b && b->kind == B_SIZE) return b->size;
        if (b && b->kind == B_POISON) return NULL;
        CVal cv;
        bool found;
        if (!b && sema_const_value(c->s, c->mod, e->name, &cv, &found)) {
            if (cv.kind == CV_INT) return ir_const_i(m, DT_I64, cv.i);
            sema_error(c, e->span, NULL, "const '%s' is not an integer and cannot be a size", e->name);
            return NULL;
        }
        if (!b && found) return NULL;
        sema_error(c, e->span, "size names are introduced by the kernel's parameter and output types",
                   "'%s' is not a size name", e->name);
        return NULL;
    }
    if (e->kind == AX_BINARY && (e->op == AOP_ADD || e->op == AOP_SUB || e->op == AOP_MUL || e->op == AOP_DIV)) {
        Op op = e->op == AOP_ADD ? OP_ADD : e->op == AOP_SUB ? OP_SUB : e->op == AOP_MUL ? OP_MUL : OP_DIV;
        Expr *a = sema_size_expr(c, env, e->a), *b = sema_size_expr(c, env, e->b);
        if (!a || !b) return NULL;
        if (op == OP_DIV && (b->op != OP_CONST || b->value.i <= 0)) {
            sema_error(c, e->b->span, NULL, "a size can only be divided by a positive integer constant");
            return NULL;
        }
        return ir_binary(m, op, a, b);
    }
    sema_error(c, e->span, NULL, "a size is an integer, a size name, or + - * / of those");
    return NULL;
}

/* Resolves a kernel parameter or output type, introducing size names at first use. */
Expr *sema_kernel_dim(Ctx *c, Env *env, const AstExpr *e, PtrVec *sizes)
{
    Module *m = c->s->m;
    if (e->kind == AX_NAME) {
        Binding *b = env_lookup(env, e->name);
        if (!b) {
            CVal cv;
            bool found;
            if (sema_const_value(c->s, c->mod, e->name, &cv, &found)) {
                if (cv.kind == CV_INT && cv.i >= 1) return ir_const_i(m, DT_I64, cv.i);
                sema_error(c, e->span, NULL, "const '%s' cannot be a dimension: it must be an integer >= 1", e->name);
                return NULL;
            }
            if (found) return NULL;
            Var *v = ir_var_new(m, VAR_SIZE, arena_strdup(&m->arena, e->name), NULL);
            pv_push(&m->arena, sizes, v);
            b = env_bind(c, env, e->name, B_SIZE, e->span);
            b->size = ir_var(m, v);
            return b->size;
        }
        if (b->kind == B_SIZE) return b->size;
        sema_error(c, e->span, "size names must differ from parameter and output names", "'%s' is not a size name", e->name);
        return NULL;
    }
    if (e->kind == AX_INT) {
        if (e->ival < 1) {
            sema_error(c, e->span, NULL, "a dimension must be at least 1");
            return NULL;
        }
        return ir_const_i(m, DT_I64, e->ival);
    }
    if (e->kind == AX_BINARY && (e->op == AOP_ADD || e->op == AOP_SUB || e->op == AOP_MUL || e->op == AOP_DIV)) {
        Expr *a = sema_kernel_dim(c, env, e->a, sizes), *b = sema_kernel_dim(c, env, e->b, sizes);
        if (!a || !b) return NULL;
        Op op = e->op == AOP_ADD ? OP_ADD : e->op == AOP_SUB ? OP_SUB : e->op == AOP_MUL ? OP_MUL : OP_DIV;
        if (op == OP_DIV && (b->op != OP_CONST || b->value.i <= 0)) {
            sema_error(c, e->b->span, NULL, "a size can only be divided by a positive integer constant");
            return NULL;
        }
        Expr *dim = ir_binary(m, op, a, b);
        Poly p = poly_from_size(c->s->bounds, dim);
        int64_t k;
        if (poly_is_const(&p, &k) && k < 1) {
            sema_error(c, e->span, NULL, "a dimension must be at least 1, but this one is always %lld", (long long)k);
            return NULL;
        }
        return dim;
    }
    sema_error(c, e->span, NULL, "a dimension is an integer, a size name, or + - * / of those");
    return NULL;
}

bool sema_resolve_dtype(Ctx *c, const AstType *t, DType *out)
{
    if (dtype_from_name(t->dtype, out)) return true;
    const char *names[DT_COUNT];
    for (int i = 0; i < DT_COUNT; i++) names[i] = dtype_name((DType)i);
    const char *close = diag_closest(t->dtype, names, DT_COUNT);
    const char *help = close ? arena_printf(&c->s->arena, "did you mean '%s'?", close)
                             : "element types are f64 f32 f16 bf16 i64 i32 i16 i8 u8 i4 u4 i2 bool";
    sema_error(c, t->dtype_span, help, "unknown element type '%s'", t->dtype);
    return false;
}

bool sema_kernel_type(Ctx *c, Env *env, const AstType *t, PtrVec *sizes, DType *dt, int *rank, Expr ***dims)
{
    bool ok = sema_resolve_dtype(c, t, dt);
    if (t->ndims > IR_MAX_RANK) {
        sema_error(c, t->span, NULL, "tensors have at most %d dimensions", IR_MAX_RANK);
        return false;
    }
    *rank = t->ndims;
    *dims = arena_array(&c->s->m->arena, (size_t)t->ndims + 1, sizeof(Expr *));
    for (int i = 0; i < t->ndims; i++) {
        if (t->dims[i].ellipsis) {
            sema_error(c, t->span, "give every dimension a size name in a kernel; fns may use `...`",
                       "`...` is only allowed in fn parameter and return types");
            ok = false;
            continue;
        }
        (*dims)[i] = sema_kernel_dim(c, env, t->dims[i].size, sizes);
        ok &= (*dims)[i] != NULL;
    }
    return ok;
}

/* ---- annotations ----------------------------------------------------------------------------------------------- */

static bool annot_int(Ctx *c, const AstAnnotArg *a, int64_t *out)
{
    if (a->value && a->value->kind == AX_INT && a->value->ival > 0) { *out = a->value->ival; return true; }
    sema_error(c, a->span, NULL, "expected a positive integer here");
    return false;
}

bool sema_check_annotation(Ctx *c, const AstParam *p, Tensor *t)
{
    if (p->nannots == 0) return true;
    if (p->nannots > 1) {
        sema_error(c, p->annots[1].span, "combined formats (for example block-sparse and quantized) are not supported yet",
                   "a parameter takes at most one storage annotation");
        return false;
    }
    const AstAnnot *an = &p->annots[0];
    Annot *a = &t->annot;
    a->span = an->span;
    static const char *const known[] = {"quant", "csr", "bsr", "nm", "coo"};
    if (strcmp(an->name, "csr") == 0 || strcmp(an->name, "coo") == 0) {
        a->kind = an->name[1] == 's' ? ANN_CSR : ANN_COO;
        if (an->nargs) { sema_error(c, an->span, NULL, "@%s takes no arguments", an->name); return false; }
        if (t->rank != 2) { sema_error(c, an->span, NULL, "@%s needs a matrix (rank 2), but %s has rank %d", an->name, t->name, t->rank); return false; }
        return true;
    }
    if (strcmp(an->name, "bsr") == 0 || strcmp(an->name, "nm") == 0) {
        bool bsr = an->name[0] == 'b';
        a->kind = bsr ? ANN_BSR : ANN_NM;
        if (an->nargs != 2 || an->args[0].key || an->args[1].key) {
            sema_error(c, an->span, NULL, bsr ? "@bsr takes the block shape: @bsr(4, 4)" : "@nm takes n and m: @nm(2, 4)");
            return false;
        }
        if (!annot_int(c, &an->args[0], &a->block[0]) || !annot_int(c, &an->args[1], &a->block[1])) return false;
        if (bsr && t->rank != 2) { sema_error(c, an->span, NULL, "@bsr needs a matrix (rank 2), but %s has rank %d", t->name, t->rank); return false; }
        if (!bsr && a->block[0] >= a->block[1]) { sema_error(c, an->span, NULL, "@nm(n, m) keeps n of every m values: n must be less than m"); return false; }
        for (int i = 0; i < (bsr ? 2 : 1); i++) {
            Expr *d = t->shape[bsr ? i : t->rank - 1];
            int64_t blk = bsr ? a->block[i] : a->block[1];
            if (d->op == OP_CONST && d->value.i % blk != 0) {
                sema_error(c, an->span, NULL, "axis of size %lld is not a multiple of %lld", (long long)d->value.i, (long long)blk);
                return false;
            }
        }
        return true;
    }
    if (strcmp(an->name, "quant") != 0) {
        const char *close = diag_closest(an->name, known, TD_COUNTOF(known));
        const char *help = close ? arena_printf(&c->s->arena, "did you mean @%s?", close)
                                 : "storage annotations are @quant(...), @csr, @bsr(r, c), @nm(n, m) and @coo";
        sema_error(c, an->span, help, "unknown annotation @%s", an->name);
        return false;
    }
    a->kind = ANN_QUANT;
    a->scheme = QS_PER_TENSOR;
    if (!dtype_is_float(t->dtype)) {
        sema_error(c, an->span, NULL, "@quant applies to float parameters; %s is %s", t->name, dtype_name(t->dtype));
        return false;
    }
    if (an->nargs < 1 || an->args[0].key || !an->args[0].value || an->args[0].value->kind != AX_NAME ||
        !dtype_from_name(an->args[0].value->name, &a->qdtype) ||
        !(a->qdtype == DT_I8 || a->qdtype == DT_U8 || a->qdtype == DT_I4 || a->qdtype == DT_U4 || a->qdtype == DT_I2)) {
        sema_error(c, an->span, "for example @quant(i8, per_channel) or @quant(i4, group=128)",
                   "@quant needs the stored type first: one of i8, u8, i4, u4, i2");
        return false;
    }
    const char *scheme_name = NULL;
    for (int i = 1; i < an->nargs; i++) {
        const AstAnnotArg *arg = &an->args[i];
        const char *w0 = arg->key ? arg->key : arg->value && arg->value->kind == AX_NAME ? arg->value->name : "";
        bool is_scheme = strcmp(w0, "group") == 0 || strcmp(w0, "per_channel") == 0 || strcmp(w0, "per_row") == 0 ||
                         strcmp(w0, "per_tensor") == 0 || strcmp(w0, "ternary") == 0;
        for (int j = 1; j < i; j++) {
            const AstAnnotArg *prev = &an->args[j];
            const char *w1 = prev->key ? prev->key : prev->value && prev->value->kind == AX_NAME ? prev->value->name : "";
            if (strcmp(w0, w1) == 0) {
                sema_error(c, arg->span, NULL, "@quant option '%s' is given twice", w0);
                return false;
            }
        }
        if (is_scheme && scheme_name) {
            sema_error(c, arg->span, "a tensor has one quantization scheme", "conflicting @quant schemes: %s and %s", scheme_name, w0);
            return false;
        }
        if (is_scheme) scheme_name = w0;
        if (arg->key && strcmp(arg->key, "group") == 0) {
            if (!annot_int(c, arg, &a->group)) return false;
            a->scheme = QS_GROUP;
            Expr *last = t->rank ? t->shape[t->rank - 1] : NULL;
            if (last && last->op == OP_CONST && last->value.i % a->group != 0) {
                sema_error(c, arg->span, NULL, "group size %lld does not divide the last axis (%lld)", (long long)a->group,
                           (long long)last->value.i);
                return false;
            }
            continue;
        }
        const char *w = !arg->key && arg->value && arg->value->kind == AX_NAME ? arg->value->name : "";
        if (strcmp(w, "per_channel") == 0) a->scheme = QS_PER_CHANNEL;
        else if (strcmp(w, "per_row") == 0) a->scheme = QS_PER_ROW;
        else if (strcmp(w, "per_tensor") == 0) a->scheme = QS_PER_TENSOR;
        else if (strcmp(w, "ternary") == 0) a->scheme = QS_TERNARY;
        else if (strcmp(w, "zero") == 0) a->zero = true;
        else if (strcmp(w, "dynamic") == 0) a->dynamic = true;
        else {
            sema_error(c, arg->span, "@quant options: per_channel, per_row, per_tensor, group=N, ternary, zero, dynamic",
                       "unknown @quant option");
            return false;
        }
    }
    if ((a->scheme == QS_TERNARY) != (a->qdtype == DT_I2)) {
        sema_error(c, an->span, "write @quant(i2, ternary)", "ternary quantization stores i2, and i2 is only used for ternary weights");
        return false;
    }
    if ((a->scheme == QS_PER_CHANNEL || a->scheme == QS_PER_ROW || a->scheme == QS_GROUP) && t->rank < 1) {
        sema_error(c, an->span, NULL, "this quantization scheme needs a tensor of rank 1 or more");
        return false;
    }
    return true;
}

