/* sema: semantic analysis of parsed files, from the root file's AST to the tensor IR.
 *
 * Loads the root file and its imports (search path: -I dirs, then the stdlib; import
 * cycles reported), evaluates consts, checks declarations, then elaborates each kernel of
 * the root file: parameter and output types (size names are bound by first use), the
 * statements in order (single assignment, outputs defined exactly once, scan state rules),
 * fn calls inlined by instantiation (call_fn), and schedule blocks. Expressions are
 * elaborated in sema_expr.c; bounds proofs live in bounds.c.
 *
 * Errors never stop the analysis of independent statements: a failed definition binds its
 * name to poison, which later uses accept silently, so one mistake gives one error. */
#include "sema_internal.h"

#include <dirent.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- errors ------------------------------------------------------------------------------------------ */

bool sema_error(Ctx *c, Span sp, const char *help, const char *fmt, ...)
{
    Sema *s = c->s;
    /* An error inside a fn body would repeat for every instantiation: report it once. */
    if (c->nframes > 0 && sp.file) {
        for (int i = 0; i < s->reported.len; i++) {
            Span *r = s->reported.items[i];
            if (r->file == sp.file && r->off == sp.off && r->len == sp.len) return false;
        }
        Span *copy = arena_alloc(&s->arena, sizeof(Span));
        *copy = sp;
        pv_push(&s->arena, &s->reported, copy);
    }
    StrBuf msg = {0};
    va_list ap;
    va_start(ap, fmt);
    sb_vprintf(&msg, fmt, ap);
    va_end(ap);
    diag_error(s->d, sp, "%s", sb_cstr(&msg));
    sb_free(&msg);
    if (help) diag_help(s->d, "%s", help);
    for (int i = c->nframes - 1; i >= 0; i--)
        diag_note(s->d, c->frames[i].call, "in this call of fn '%s'", c->frames[i].fn);
    return true;
}

/* ---- scopes -------------------------------------------------------------------------------------------- */

Env *env_new(Ctx *c, Env *parent)
{
    Env *e = arena_alloc(&c->s->arena, sizeof(Env));
    e->parent = parent;
    return e;
}

Binding *env_lookup(Env *env, const char *name)
{
    for (Env *e = env; e; e = e->parent)
        for (int i = e->binds.len - 1; i >= 0; i--) {
            Binding *b = e->binds.items[i];
            if (strcmp(b->name, name) == 0) return b;
        }
    return NULL;
}

Binding *env_bind(Ctx *c, Env *env, const char *name, BindKind kind, Span span)
{
    Binding *b = arena_alloc(&c->s->arena, sizeof(Binding));
    b->name = name;
    b->kind = kind;
    b->span = span;
    pv_push(&c->s->arena, &env->binds, b);
    return b;
}

const char *sema_unique_name(Ctx *c, const char *base)
{
    const char *name = base;
    for (int n = 1;; n++) {
        bool taken = false;
        for (int i = 0; i < c->k->nins && !taken; i++) taken = strcmp(c->k->ins[i]->name, name) == 0;
        for (int i = 0; i < c->k->nouts && !taken; i++) taken = strcmp(c->k->outs[i]->name, name) == 0;
        for (int i = 0; i < c->temps.len && !taken; i++) taken = strcmp(((Tensor *)c->temps.items[i])->name, name) == 0;
        if (!taken) return arena_strdup(&c->s->m->arena, name);
        name = arena_printf(&c->s->arena, "%s.%d", base, n);
    }
}

/* ---- modules and imports ------------------------------------------------------------------------------------ */

const char *fe_default_stdlib_dir(void)
{
    const char *env = getenv("TDSL_STDLIB");
    if (env && *env) return env;
#ifdef TDSL_STDLIB_DIR
    return TDSL_STDLIB_DIR;
#else
    return "stdlib";
#endif
}

static char *dir_of(Arena *a, const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash) return arena_strdup(a, ".");
    if (slash == path) return arena_strdup(a, "/");
    return arena_strndup(a, path, (size_t)(slash - path));
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

static SModule *find_loaded(Sema *s, const char *canonical)
{
    for (int i = 0; i < s->mods.len; i++) {
        SModule *m = s->mods.items[i];
        if (strcmp(m->path, canonical) == 0) return m;
    }
    return NULL;
}

static SModule *module_from_text(Sema *s, const char *display, const char *canonical, char *text, size_t len);

/* Lists the .tdsl modules of a directory for a "did you mean" hint. */
static const char *closest_module(Sema *s, const char *dir, const char *name)
{
    DIR *d = opendir(dir);
    if (!d) return NULL;
    const char *cands[128];
    int n = 0;
    struct dirent *ent;
    while ((ent = readdir(d)) && n < 128) {
        if (!ends_with(ent->d_name, ".tdsl")) continue;
        cands[n++] = arena_strndup(&s->arena, ent->d_name, strlen(ent->d_name) - 5);
    }
    closedir(d);
    return diag_closest(name, cands, n);
}

static SModule *load_import(Sema *s, SModule *from, const AstItem *imp)
{
    Ctx c = {0};
    c.s = s;
    const char *p = imp->path;
    char *resolved = NULL;
    const char *stdlib = s->o && s->o->stdlib_dir ? s->o->stdlib_dir : fe_default_stdlib_dir();
    if (p[0] == '/' ) {
        resolved = arena_strdup(&s->arena, p);
    } else if (strncmp(p, "./", 2) == 0 || strncmp(p, "../", 3) == 0) {
        resolved = arena_printf(&s->arena, "%s/%s", from->dir, p);
    } else {
        const char *file = ends_with(p, ".tdsl") ? p : arena_printf(&s->arena, "%s.tdsl", p);
        int ndirs = s->o ? s->o->ninclude : 0;
        for (int i = 0; i <= ndirs && !resolved; i++) {
            const char *dir = i < ndirs ? s->o->include_dirs[i] : stdlib;
            char *cand = arena_printf(&s->arena, "%s/%s", dir, file);
            if (access(cand, R_OK) == 0) resolved = cand;
        }
        if (!resolved) {
            StrBuf dirs = {0};
            for (int i = 0; i < ndirs; i++) sb_printf(&dirs, "%s, ", s->o->include_dirs[i]);
            sb_puts(&dirs, stdlib);
            const char *close = closest_module(s, stdlib, p);
            const char *help = close
                ? arena_printf(&s->arena, "did you mean \"%s\"? (searched %s)", close, sb_cstr(&dirs))
                : arena_printf(&s->arena, "searched %s; add a directory with -I DIR, or import a file by path: import \"./%s.tdsl\"",
                               sb_cstr(&dirs), p);
            sema_error(&c, imp->span, help, "cannot find module \"%s\"", p);
            sb_free(&dirs);
            return NULL;
        }
    }
    char real[PATH_MAX];
    if (!realpath(resolved, real)) {
        sema_error(&c, imp->span, NULL, "cannot open \"%s\" (resolved to %s)", p, resolved);
        return NULL;
    }
    SModule *m = find_loaded(s, real);
    if (m && m->state == 1) {
        StrBuf chain = {0};
        bool on = false;
        for (int i = 0; i < s->loading.len; i++) {
            SModule *l = s->loading.items[i];
            if (l == m) on = true;
            if (on) sb_printf(&chain, "%s -> ", l->ast->src.path);
        }
        sb_puts(&chain, m->ast->src.path);
        sema_error(&c, imp->span, "move what both files need into a third module that neither imports",
                   "import cycle: %s", sb_cstr(&chain));
        sb_free(&chain);
        return NULL;
    }
    if (m) return m;
    size_t len;
    const char *err;
    char *text = read_file_all(real, &len, &err);
    if (!text) {
        sema_error(&c, imp->span, NULL, "cannot read \"%s\": %s", p, err);
        return NULL;
    }
    return module_from_text(s, resolved, real, text, len);
}

static SModule *module_from_text(Sema *s, const char *display, const char *canonical, char *text, size_t len)
{
    SModule *m = arena_alloc(&s->arena, sizeof(SModule));
    m->path = arena_strdup(&s->arena, canonical);
    m->dir = dir_of(&s->arena, display);
    m->ast = ast_parse(display, text, len, s->d);
    m->state = 1;
    m->const_vals = arena_array(&s->arena, (size_t)m->ast->nitems + 1, sizeof(CVal));
    m->const_state = arena_array(&s->arena, (size_t)m->ast->nitems + 1, sizeof(int));
    pv_push(&s->arena, &s->mods, m);
    pv_push(&s->arena, &s->loading, m);
    PtrVec imports = {0};
    for (int i = 0; i < m->ast->nitems; i++) {
        const AstItem *it = m->ast->items[i];
        if (it->kind != AI_IMPORT) continue;
        SModule *child = load_import(s, m, it);
        if (child) pv_push(&s->arena, &imports, child);
    }
    s->loading.len--;
    m->imports = (SModule **)imports.items;
    m->nimports = imports.len;
    m->state = 2;
    return m;
}

/* ---- consts and fns ------------------------------------------------------------------------------------------ */

static bool const_expr_ok(Ctx *c, const AstExpr *e)
{
    if (!e) return true;
    switch (e->kind) {
    case AX_INT: case AX_FLOAT: case AX_BOOL: case AX_NAME: return true;
    case AX_UNARY: return const_expr_ok(c, e->a);
    case AX_BINARY: return e->op != AOP_MATMUL && const_expr_ok(c, e->a) && const_expr_ok(c, e->b);
    case AX_CALL: {
        DType t;
        if (!dtype_from_name(e->name, &t)) break;
        for (int i = 0; i < e->nargs; i++)
            if (!const_expr_ok(c, e->args[i])) return false;
        return true;
    }
    case AX_ELLIPSIS: case AX_PAD: case AX_INDEX: case AX_REDUCE: break;
    }
    sema_error(c, e->span, "a const is built from literals, other consts, arithmetic and casts",
               "not a compile-time constant");
    return false;
}

static bool sval_to_cval(SVal v, CVal *out)
{
    if (v.poison) return false;
    if (v.untyped) { *out = v.c; return true; }
    if (v.e->op != OP_CONST) return false;
    if (dtype_is_float(v.e->type)) { out->kind = CV_FLOAT; out->f = v.e->value.f; }
    else if (v.e->type == DT_BOOL) { out->kind = CV_BOOL; out->i = v.e->value.i; }
    else { out->kind = CV_INT; out->i = v.e->value.i; }
    return true;
}

bool sema_const_eval(Sema *s, SModule *mod, const AstExpr *e, CVal *out)
{
    Ctx c = {0};
    c.s = s;
    c.mod = mod;
    if (!const_expr_ok(&c, e)) return false;
    SVal v = elab_scalar(&c, NULL, e);
    if (v.poison) return false;
    if (!sval_to_cval(v, out)) {
        sema_error(&c, e->span, NULL, "not a compile-time constant");
        return false;
    }
    return true;
}

static bool const_in_module(Sema *s, SModule *mod, const char *name, CVal *out, bool *found)
{
    for (int i = 0; i < mod->ast->nitems; i++) {
        const AstItem *it = mod->ast->items[i];
        if (it->kind != AI_CONST || strcmp(it->name, name) != 0) continue;
        *found = true;
        switch (mod->const_state[i]) {
        case 2: *out = mod->const_vals[i]; return true;
        case 3: return false;
        case 1: {
            Ctx c = {0};
            c.s = s;
            sema_error(&c, it->name_span, NULL, "const '%s' is defined in terms of itself", name);
            mod->const_state[i] = 3;
            return false;
        }
        default: break;
        }
        mod->const_state[i] = 1;
        CVal v;
        bool ok = sema_const_eval(s, mod, it->value, &v);
        mod->const_state[i] = ok ? 2 : 3;
        if (ok) mod->const_vals[i] = v;
        *out = v;
        return ok;
    }
    return false;
}

bool sema_const_value(Sema *s, SModule *mod, const char *name, CVal *out, bool *found)
{
    *found = false;
    if (!mod) return false;
    if (const_in_module(s, mod, name, out, found) || *found) return *found && const_in_module(s, mod, name, out, found);
    for (int i = 0; i < mod->nimports; i++) {
        if (const_in_module(s, mod->imports[i], name, out, found)) return true;
        if (*found) return false;
    }
    return false;
}

static const AstItem *fn_in_module(SModule *mod, const char *name)
{
    for (int i = 0; i < mod->ast->nitems; i++) {
        const AstItem *it = mod->ast->items[i];
        if (it->kind == AI_FN && strcmp(it->name, name) == 0) return it;
    }
    return NULL;
}

const AstItem *sema_find_fn(Sema *s, SModule *mod, const char *name, SModule **owner, Span use, DiagSink *d,
                            bool *ambiguous)
{
    (void)d;
    *ambiguous = false;
    const AstItem *f = fn_in_module(mod, name);
    if (f) { *owner = mod; return f; }
    const AstItem *found = NULL;
    for (int i = 0; i < mod->nimports; i++) {
        const AstItem *g = fn_in_module(mod->imports[i], name);
        if (!g || g == found) continue;
        if (found) {
            Ctx c = {0};
            c.s = s;
            sema_error(&c, use, "rename one of them", "fn '%s' is defined in both %s and %s", name,
                       (*owner)->ast->src.path, mod->imports[i]->ast->src.path);
            *ambiguous = true;
            return NULL;
        }
        found = g;
        *owner = mod->imports[i];
    }
    return found;
}

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
static Expr *kernel_dim(Ctx *c, Env *env, const AstExpr *e, PtrVec *sizes)
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
        Expr *a = kernel_dim(c, env, e->a, sizes), *b = kernel_dim(c, env, e->b, sizes);
        if (!a || !b) return NULL;
        Op op = e->op == AOP_ADD ? OP_ADD : e->op == AOP_SUB ? OP_SUB : e->op == AOP_MUL ? OP_MUL : OP_DIV;
        if (op == OP_DIV && (b->op != OP_CONST || b->value.i <= 0)) {
            sema_error(c, e->b->span, NULL, "a size can only be divided by a positive integer constant");
            return NULL;
        }
        return ir_binary(m, op, a, b);
    }
    sema_error(c, e->span, NULL, "a dimension is an integer, a size name, or + - * / of those");
    return NULL;
}

static bool resolve_dtype(Ctx *c, const AstType *t, DType *out)
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

static bool kernel_type(Ctx *c, Env *env, const AstType *t, PtrVec *sizes, DType *dt, int *rank, Expr ***dims)
{
    bool ok = resolve_dtype(c, t, dt);
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
        (*dims)[i] = kernel_dim(c, env, t->dims[i].size, sizes);
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

static bool check_annotation(Ctx *c, const AstParam *p, Tensor *t)
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
    for (int i = 1; i < an->nargs; i++) {
        const AstAnnotArg *arg = &an->args[i];
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
                size_print(actual, &sb);
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
            size_print(b->size, &x);
            size_print(actual, &y);
            sema_error(c, argspan, "the arguments' shapes must agree on every size name of the fn's signature",
                       "size %s is %s from an earlier argument but %s for %s", d->name, sb_cstr(&x), sb_cstr(&y), param);
            sb_free(&x);
            sb_free(&y);
            return false;
        }
    }
    Expr *want = sema_size_expr(c, fenv, d);
    if (!want) return false;
    if (sizes_equal(c->s->bounds, want, actual)) return true;
    StrBuf x = {0}, y = {0};
    size_print(want, &x);
    size_print(actual, &y);
    sema_error(c, argspan, NULL, "argument for %s has a dimension %s where %s is expected", param, sb_cstr(&y), sb_cstr(&x));
    sb_free(&x);
    sb_free(&y);
    return false;
}

static bool bind_fn_param(Ctx *c, Env *fenv, const AstParam *p, Val *a, Span argspan, Expr ***batch, int *nbatch)
{
    DType dt;
    if (!resolve_dtype(c, &p->type, &dt)) return false;
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

static bool item_listed(PtrVec *v, const void *item)
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
    if (!item_listed(&s->used_fns, fn)) pv_push(&s->arena, &s->used_fns, (void *)fn);
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
    for (int i = 0; i < nargs; i++) {
        int pi = -1;
        if (argnames && argnames[i]) {
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
        if (elab_whole_shape(c, fenv, ret->rhs, &rank, &dims) && resolve_dtype(c, &fn->ret, &want)) {
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

static void elab_indexed_def(Ctx *c, Env *env, const AstStmt *st)
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
                batch[j] = ir_var_new(m, VAR_INDEX, arena_printf(&m->arena, "b%d", j), ext);
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
                size_print(known->shape[k], &x);
                size_print(vb->var->extent, &y);
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
        idx[k] = ir_var_new(m, VAR_INDEX, li->name, ext);
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

static bool same_shape(Ctx *c, int ra, Expr **da, int rb, Expr **db)
{
    if (ra != rb) return false;
    for (int i = 0; i < ra; i++)
        if (!sizes_equal(c->s->bounds, da[i], db[i])) return false;
    return true;
}

static void elab_whole_def(Ctx *c, Env *env, const AstStmt *st)
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
        int rr;
        Expr **rd;
        if (!shape_broadcast(c, rank, dims, known->rank, known->shape, &rr, &rd, st->rhs->span)) { bind_poison(c, env, st, tk, b); return; }
        if (!same_shape(c, rr, rd, known->rank, known->shape)) {
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
        for (int i = 0; i < known->rank; i++) idx[i] = ir_var_new(m, VAR_INDEX, names[i], known->shape[i]);
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

static void elab_scan(Ctx *c, Env *env, const AstStmt *st)
{
    Module *m = c->s->m;
    Binding *prev = env_lookup(env, st->var);
    if (prev && prev->kind != B_POISON) {
        sema_error(c, st->var_span, NULL, "'%s' is already defined; the scan variable needs a fresh name", st->var);
        return;
    }
    Expr *steps = sema_size_expr(c, env, st->extent);
    if (!steps) return;
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
    bool ok = true;
    for (int i = 0; i < st->nstates; i++) {
        const AstState *as = &st->states[i];
        Binding *pb = env_lookup(benv, as->name);
        if (pb && pb->kind != B_POISON) {
            sema_error(c, as->name_span, NULL, "'%s' is already defined; a state needs a fresh name", as->name);
            ok = false;
            continue;
        }
        DType dt;
        if (!resolve_dtype(c, &as->type, &dt)) { ok = false; continue; }
        int rank = as->type.ndims;
        Expr **dims = arena_array(&m->arena, (size_t)rank + 1, sizeof(Expr *));
        for (int j = 0; j < rank; j++) {
            if (as->type.dims[j].ellipsis) {
                if (!c->in_fn || c->nbatch_dims != 1) {
                    sema_error(c, as->type.span, NULL, "`...` is not allowed in a state's type");
                    ok = false;
                    break;
                }
            }
            dims[j] = as->type.dims[j].ellipsis ? NULL : sema_size_expr(c, env, as->type.dims[j].size);
            if (!dims[j]) { ok = false; break; }
        }
        if (!ok) continue;
        Tensor *state = new_temp(c, c->in_fn ? arena_printf(&c->s->arena, "%s.%s", c->frames[c->nframes - 1].fn, as->name) : as->name,
                                 dt, rank, dims, as->name_span);
        state->kind = TK_STATE;
        ScanState *ss = &scan->scan.states[i];
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
                continue;
            }
            ss->init_tensor = ib->t;
        } else {
            SVal v = elab_scalar(c, env, as->init);
            v = sval_coerce(c, v, dt, as->init->span);
            if (v.poison) { ok = false; continue; }
            if (v.e->op != OP_CONST) {
                sema_error(c, as->init->span, "initialise it with a constant (broadcast) or a tensor of the state's type",
                           "the initial value of state '%s' is neither a constant nor a tensor", as->name);
                ok = false;
                continue;
            }
            ss->init_value = v.e;
        }
        sb[i] = env_bind(c, benv, as->name, B_TENSOR, as->name_span);
        sb[i]->t = state;
        sb[i]->state = state;
        sb[i]->is_state = true;
        sb[i]->scan_env = benv;
    }
    if (!ok) return;
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
        ScanState *ss = &scan->scan.states[i];
        ss->next = sb[i]->t != ss->state ? sb[i]->t : NULL;
        Binding *after = env_bind(c, env, st->states[i].name, B_TENSOR, st->states[i].name_span);
        after->t = ss->state;   /* after the scan, the state's name is its final value */
    }
    pv_push(&m->arena, c->stmts, scan);
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

/* ---- kernels and schedules ------------------------------------------------------------------------------------------------ */

static Kernel *elab_kernel(Sema *s, SModule *mod, const AstItem *it)
{
    Module *m = s->m;
    Ctx ctx = {0}, *c = &ctx;
    c->s = s;
    c->mod = mod;
    c->k = ir_kernel_new(m, arena_strdup(&m->arena, it->name));
    c->k->span = it->name_span;
    c->nbatch_dims = -1;
    PtrVec stmts = {0}, sizes = {0}, ins = {0}, outs = {0};
    c->stmts = &stmts;
    c->body = it->body;
    c->nbody = it->nbody;
    Env *kenv = env_new(c, NULL);
    int before = s->d->nerrors;
    for (int pass = 0; pass < 2; pass++) {
        int n = pass == 0 ? it->nparams : it->noutputs;
        const AstParam *ps = pass == 0 ? it->params : it->outputs;
        for (int i = 0; i < n; i++) {
            const AstParam *p = &ps[i];
            Binding *prev = env_lookup(kenv, p->name);
            if (prev) {
                if (sema_error(c, p->name_span, NULL, "'%s' is already defined in this signature", p->name))
                    diag_note(s->d, prev->span, "the first definition is here");
                continue;
            }
            DType dt;
            int rank;
            Expr **dims;
            if (!kernel_type(c, kenv, &p->type, &sizes, &dt, &rank, &dims)) {
                env_bind(c, kenv, p->name, B_POISON, p->name_span);
                continue;
            }
            Tensor *t = ir_tensor_new(m, pass == 0 ? TK_INPUT : TK_OUTPUT, arena_strdup(&m->arena, p->name), dt, rank, dims);
            t->span = p->name_span;
            if (pass == 0) check_annotation(c, p, t);
            else if (p->nannots) sema_error(c, p->annots[0].span, "annotations describe how inputs are passed", "outputs cannot carry storage annotations");
            pv_push(&m->arena, pass == 0 ? &ins : &outs, t);
            c->k->ins = (Tensor **)ins.items;
            c->k->nins = ins.len;
            c->k->outs = (Tensor **)outs.items;
            c->k->nouts = outs.len;
            Binding *b = env_bind(c, kenv, p->name, B_TENSOR, p->name_span);
            b->t = t;
            b->pending = pass == 1;
        }
    }
    sema_elab_body(c, kenv, it->body, it->nbody, NULL);
    for (int i = 0; i < it->noutputs; i++) {
        Binding *b = env_lookup(kenv, it->outputs[i].name);
        if (b && b->kind == B_TENSOR && b->pending && b->t && b->t->kind == TK_OUTPUT) {
            const char *help = arena_printf(&s->arena, "define it in the body: %s[...] = ... or %s = ...", b->name, b->name);
            sema_error(c, it->outputs[i].name_span, help, "output '%s' is never defined", b->name);
        }
    }
    Kernel *k = c->k;
    k->sizes = (Var **)sizes.items;
    k->nsizes = sizes.len;
    k->ins = (Tensor **)ins.items;
    k->nins = ins.len;
    k->outs = (Tensor **)outs.items;
    k->nouts = outs.len;
    k->temps = (Tensor **)c->temps.items;
    k->ntemps = c->temps.len;
    k->stmts = (Stmt **)stmts.items;
    k->nstmts = stmts.len;
    return s->d->nerrors == before ? k : NULL;
}

/* Index variable names a schedule may name: those the kernel's own text introduces. */
typedef struct SchedVar { const char *name; bool reduction; bool scan; } SchedVar;

static void sched_vars_expr(const AstExpr *e, PtrVec *out, Arena *a)
{
    if (!e) return;
    if (e->kind == AX_REDUCE)
        for (int i = 0; i < e->nrvars; i++) {
            SchedVar *v = arena_alloc(a, sizeof(SchedVar));
            v->name = e->rvars[i].name;
            v->reduction = true;
            pv_push(a, out, v);
        }
    sched_vars_expr(e->a, out, a);
    sched_vars_expr(e->b, out, a);
    for (int i = 0; i < e->nargs; i++) sched_vars_expr(e->args[i], out, a);
}

static void sched_vars_body(AstStmt **body, int n, PtrVec *out, Arena *a)
{
    for (int i = 0; i < n; i++) {
        const AstStmt *st = body[i];
        if (st->kind == AS_SCAN) {
            SchedVar *v = arena_alloc(a, sizeof(SchedVar));
            v->name = st->var;
            v->scan = true;
            pv_push(a, out, v);
            sched_vars_body(st->body, st->nbody, out, a);
            continue;
        }
        for (int j = 0; j < st->nidx; j++) {
            if (!st->idx[j].name) continue;
            SchedVar *v = arena_alloc(a, sizeof(SchedVar));
            v->name = st->idx[j].name;
            pv_push(a, out, v);
        }
        sched_vars_expr(st->rhs, out, a);
    }
}

/* Also the variables of whole-tensor definitions (`c = a @ b` loops over i, j, k). */
static void sched_vars_ir(Stmt **stmts, int n, PtrVec *out, Arena *a)
{
    for (int i = 0; i < n; i++) {
        const Stmt *st = stmts[i];
        if (st->kind == STMT_SCAN) {
            SchedVar *v = arena_alloc(a, sizeof(SchedVar));
            v->name = st->scan.var->name;
            v->scan = true;
            pv_push(a, out, v);
            sched_vars_ir(st->scan.body, st->scan.nbody, out, a);
            continue;
        }
        for (int pass = 0; pass < 2; pass++) {
            int cnt = pass ? st->def.nred : st->def.dst->rank;
            for (int j = 0; j < cnt; j++) {
                const Var *var = pass ? st->def.red[j] : st->def.idx[j];
                if (var->kind == VAR_SCAN) continue;
                SchedVar *v = arena_alloc(a, sizeof(SchedVar));
                v->name = var->name;
                v->reduction = pass == 1;
                pv_push(a, out, v);
            }
        }
    }
}

static int64_t smallest_const_extent(Stmt **stmts, int n, const char *name, int64_t best)
{
    for (int i = 0; i < n; i++) {
        const Stmt *s = stmts[i];
        if (s->kind == STMT_SCAN) {
            best = smallest_const_extent(s->scan.body, s->scan.nbody, name, best);
            continue;
        }
        for (int pass = 0; pass < 2; pass++) {
            int cnt = pass ? s->def.nred : s->def.dst->rank;
            Var **vs = pass ? s->def.red : s->def.idx;
            for (int j = 0; j < cnt; j++) {
                const Var *v = vs[j];
                if (strcmp(v->name, name) == 0 && v->extent && v->extent->op == OP_CONST && (best < 0 || v->extent->value.i < best))
                    best = v->extent->value.i;
            }
        }
    }
    return best;
}

static void elab_schedule(Sema *s, SModule *mod, const AstItem *it, Kernel **kernels, const AstItem **kitems, int nk, PtrVec *done)
{
    Ctx ctx = {0}, *c = &ctx;
    c->s = s;
    c->mod = mod;
    int ki = -1;
    const char *names[256];
    for (int i = 0; i < nk; i++) {
        if (i < 256) names[i] = kitems[i]->name;
        if (strcmp(kitems[i]->name, it->name) == 0) ki = i;
    }
    if (ki < 0) {
        const char *close = diag_closest(it->name, names, nk < 256 ? nk : 256);
        const char *help = close ? arena_printf(&s->arena, "did you mean '%s'?", close) : "a schedule names a kernel of the same file";
        sema_error(c, it->name_span, help, "schedule for unknown kernel '%s'", it->name);
        return;
    }
    if (item_listed(done, kitems[ki])) {
        sema_error(c, it->name_span, "merge the directives into one schedule block", "kernel '%s' already has a schedule", it->name);
        return;
    }
    pv_push(&s->arena, done, (void *)kitems[ki]);
    Kernel *k = kernels[ki];
    if (!kernels[ki]) return;   /* the kernel had errors; its schedule cannot be checked against it */
    PtrVec vars = {0};
    sched_vars_body(kitems[ki]->body, kitems[ki]->nbody, &vars, &s->arena);
    sched_vars_ir(k->stmts, k->nstmts, &vars, &s->arena);
    StrBuf legal = {0};
    const char *vnames[256];
    int nv = 0;
    for (int i = 0; i < vars.len; i++) {
        SchedVar *v = vars.items[i];
        bool dup = false;
        for (int j = 0; j < nv; j++) dup |= strcmp(vnames[j], v->name) == 0;
        if (dup || nv == 256) continue;
        vnames[nv++] = v->name;
        sb_printf(&legal, "%s%s", legal.len ? ", " : "", v->name);
    }
    SchedDirective *dirs = arena_array(&s->m->arena, (size_t)it->ndirectives * 8 + 1, sizeof(SchedDirective));
    int nd = 0;
    static const char *const kinds[] = {"tile", "vectorize", "parallel", "unroll"};
    for (int i = 0; i < it->ndirectives; i++) {
        const AstDirective *d = &it->directives[i];
        int kind = -1;
        for (int j = 0; j < 4; j++)
            if (strcmp(d->name, kinds[j]) == 0) kind = j;
        if (kind < 0) {
            const char *close = diag_closest(d->name, kinds, 4);
            const char *help = close ? arena_printf(&s->arena, "did you mean '%s'? directives: tile, vectorize, parallel, unroll", close)
                                     : "directives: tile, vectorize, parallel, unroll";
            sema_error(c, d->span, help, "unknown schedule directive '%s'", d->name);
            continue;
        }
        bool wants_factor = kind == 0 || kind == 3;
        for (int j = 0; j < d->nargs; j++) {
            const AstSchedArg *a = &d->args[j];
            SchedVar *sv = NULL;
            for (int q = 0; q < vars.len; q++)
                if (strcmp(((SchedVar *)vars.items[q])->name, a->var) == 0) { sv = vars.items[q]; break; }
            if (!sv) {
                const char *help = nv ? arena_printf(&s->arena, "index variables of %s: %s", it->name, sb_cstr(&legal))
                                      : "this kernel has no index variables";
                sema_error(c, a->var_span, help, "unknown index variable '%s' in schedule of %s", a->var, it->name);
                continue;
            }
            if (wants_factor != a->has_factor) {
                sema_error(c, a->var_span, NULL, wants_factor ? "%s needs a factor: %s %s 4" : "%s takes no factor%s%s",
                           d->name, wants_factor ? d->name : "", wants_factor ? a->var : "");
                continue;
            }
            if (a->has_factor && a->factor < 1) {
                sema_error(c, a->factor_span, NULL, "the factor must be at least 1");
                continue;
            }
            if (sv->scan && kind != 3) {
                sema_error(c, a->var_span, "scan steps run in order; schedule the variables inside the scan body",
                           "'%s' is a scan variable and cannot be %s", a->var, kind == 0 ? "tiled" : kind == 1 ? "vectorized" : "parallel");
                continue;
            }
            if (kind == 0) {
                int64_t ext = smallest_const_extent(k->stmts, k->nstmts, a->var, -1);
                if (ext > 0 && a->factor > ext) {
                    const char *help = arena_printf(&s->arena, "use a tile of at most %lld", (long long)ext);
                    sema_error(c, a->factor_span, help, "tile %s %lld is larger than the range of %s (%lld)", a->var,
                               (long long)a->factor, a->var, (long long)ext);
                    continue;
                }
            }
            dirs[nd].kind = kind == 0 ? SCHED_TILE : kind == 1 ? SCHED_VECTORIZE : kind == 2 ? SCHED_PARALLEL : SCHED_UNROLL;
            dirs[nd].var = arena_strdup(&s->m->arena, a->var);
            dirs[nd].factor = a->has_factor ? a->factor : 0;
            dirs[nd].span = a->var_span;
            nd++;
        }
    }
    sb_free(&legal);
    if (k) {
        k->sched = dirs;
        k->nsched = nd;
    }
}

/* Checks a fn nobody called by instantiating it on symbolic arguments. */
static void check_fn_generic(Sema *s, SModule *mod, const AstItem *fn)
{
    Module *m = s->m;
    Ctx ctx = {0}, *c = &ctx;
    c->s = s;
    c->mod = mod;
    c->k = ir_kernel_new(m, "check");
    c->nbatch_dims = -1;
    PtrVec stmts = {0}, sizes = {0};
    c->stmts = &stmts;
    Env *env = env_new(c, NULL);
    Val *args = arena_array(&s->arena, (size_t)fn->nparams + 1, sizeof(Val));
    Span *spans = arena_array(&s->arena, (size_t)fn->nparams + 1, sizeof(Span));
    Expr *batch = NULL;
    for (int i = 0; i < fn->nparams; i++) {
        const AstParam *p = &fn->params[i];
        DType dt;
        if (!resolve_dtype(c, &p->type, &dt)) return;
        int rank = 0;
        Expr *dims[IR_MAX_RANK];
        for (int j = 0; j < p->type.ndims && rank < IR_MAX_RANK; j++) {
            if (p->type.dims[j].ellipsis) {
                if (!batch) batch = ir_var(m, ir_var_new(m, VAR_SIZE, "BATCH", NULL));
                dims[rank++] = batch;
                continue;
            }
            Expr *d = kernel_dim(c, env, p->type.dims[j].size, &sizes);
            if (!d) return;
            dims[rank++] = d;
        }
        Expr **shape = arena_array(&m->arena, (size_t)rank + 1, sizeof(Expr *));
        memcpy(shape, dims, sizeof(Expr *) * (size_t)rank);
        args[i].t = ir_tensor_new(m, TK_INPUT, arena_strdup(&m->arena, p->name), dt, rank, shape);
        spans[i] = p->name_span;
    }
    call_fn(c, fn, mod, args, NULL, spans, fn->nparams, fn->name_span);
}

/* Declaration checks for one file: duplicate names, names that clash with builtins. */
static void check_declarations(Sema *s, SModule *mod)
{
    Ctx ctx = {0}, *c = &ctx;
    c->s = s;
    c->mod = mod;
    AstFile *f = mod->ast;
    for (int i = 0; i < f->nitems; i++) {
        const AstItem *a = f->items[i];
        if (a->kind == AI_IMPORT || a->kind == AI_SCHEDULE) continue;
        DType dt;
        if (a->kind == AI_FN && (sema_is_builtin(a->name) || dtype_from_name(a->name, &dt))) {
            sema_error(c, a->name_span, "pick another name", "'%s' is a builtin and cannot be redefined", a->name);
            continue;
        }
        for (int j = 0; j < i; j++) {
            const AstItem *b = f->items[j];
            bool clash = b->name && strcmp(a->name, b->name) == 0 &&
                         ((a->kind == AI_KERNEL) == (b->kind == AI_KERNEL)) && b->kind != AI_IMPORT && b->kind != AI_SCHEDULE;
            if (!clash) continue;
            if (sema_error(c, a->name_span, "fns and consts share one namespace, kernels another", "'%s' is defined twice", a->name))
                diag_note(s->d, b->name_span, "the first definition is here");
            break;
        }
        for (int p = 0; a->kind == AI_FN && p < a->nparams; p++)
            if (a->params[p].nannots)
                sema_error(c, a->params[p].annots[0].span, "annotate the parameter of the kernel that receives the tensor",
                           "storage annotations apply to kernel parameters only, not fn parameters");
        if (a->kind == AI_CONST) {
            CVal v;
            bool found;
            sema_const_value(s, mod, a->name, &v, &found);
        }
    }
}

static Module *compile_root(Sema *s, SModule *root)
{
    for (int i = 0; i < s->mods.len; i++) check_declarations(s, s->mods.items[i]);
    AstFile *f = root->ast;
    PtrVec kernels = {0}, kitems = {0}, done = {0};
    for (int i = 0; i < f->nitems; i++) {
        const AstItem *it = f->items[i];
        if (it->kind != AI_KERNEL) continue;
        Kernel *k = elab_kernel(s, root, it);
        pv_push(&s->arena, &kernels, k);
        pv_push(&s->arena, &kitems, (void *)it);
    }
    for (int i = 0; i < f->nitems; i++) {
        const AstItem *it = f->items[i];
        if (it->kind == AI_SCHEDULE)
            elab_schedule(s, root, it, (Kernel **)kernels.items, (const AstItem **)kitems.items, kernels.len, &done);
    }
    for (int i = 0; i < f->nitems; i++) {
        const AstItem *it = f->items[i];
        if (it->kind == AI_FN && !item_listed(&s->used_fns, it)) check_fn_generic(s, root, it);
    }
    if (s->d->nerrors) return NULL;
    for (int i = 0; i < kernels.len; i++) ir_kernel_add(s->m, kernels.items[i]);
    return s->m;
}

static Module *compile(const char *display, const char *canonical, char *text, size_t len, const FeOptions *o, DiagSink *d)
{
    Sema sema = {0}, *s = &sema;
    s->d = d;
    s->o = o;
    s->m = ir_module_new();
    s->bounds = bounds_new();
    arena_init(&s->arena);
    SModule *root = module_from_text(s, display, canonical, text, len);
    Module *m = d->nerrors ? NULL : compile_root(s, root);
    for (int i = 0; i < s->mods.len; i++) ast_file_free(((SModule *)s->mods.items[i])->ast);
    arena_free(&s->arena);
    bounds_free(s->bounds);
    if (!m) ir_module_free(s->m);
    return m;
}

Module *fe_compile_file(const char *path, const FeOptions *o, DiagSink *d)
{
    size_t len;
    const char *err;
    char *text = read_file_all(path, &len, &err);
    if (!text) {
        diag_error_plain(d, "cannot read '%s': %s", path, err);
        return NULL;
    }
    char real[PATH_MAX];
    const char *canonical = realpath(path, real) ? real : path;
    return compile(path, canonical, text, len, o, d);
}

Module *fe_compile_source(const char *name, const char *text, size_t len, const FeOptions *o, DiagSink *d)
{
    char *copy = malloc(len + 1);
    if (!copy) td_internal_error(__FILE__, __LINE__, "out of memory");
    memcpy(copy, text, len);
    copy[len] = 0;
    return compile(name, name, copy, len, o, d);
}
