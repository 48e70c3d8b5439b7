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
        if (c->frames[i].call.file)   /* a fn checked on its own has no call site */
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

static bool tensor_name_taken(Ctx *c, const char *name)
{
    for (int i = 0; i < c->k->nins; i++) if (strcmp(c->k->ins[i]->name, name) == 0) return true;
    for (int i = 0; i < c->k->nouts; i++) if (strcmp(c->k->outs[i]->name, name) == 0) return true;
    for (int i = 0; i < c->temps.len; i++) if (strcmp(((Tensor *)c->temps.items[i])->name, name) == 0) return true;
    return false;
}

const char *sema_unique_name(Ctx *c, const char *base)
{
    const char *name = base;
    for (int n = 1; tensor_name_taken(c, name); n++) name = arena_printf(&c->s->arena, "%s.%d", base, n);
    return arena_strdup(&c->s->m->arena, name);
}

/* A variable the compiler introduces (or inlines from a fn) prints by name in the IR; it
 * must not read like one of the kernel's tensors (`k[k, j]`), so it takes a prime. */
Var *sema_var_new(Ctx *c, VarKind kind, const char *base, Expr *extent)
{
    const char *name = base;
    while (tensor_name_taken(c, name)) name = arena_printf(&c->s->arena, "%s'", name);
    return ir_var_new(c->s->m, kind, arena_strdup(&c->s->m->arena, name), extent);
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
        const char *rel = p;
        while (strncmp(rel, "./", 2) == 0) rel += 2;   /* "./x" and "x" name the same file */
        resolved = strcmp(from->dir, ".") == 0 ? arena_strdup(&s->arena, rel)
                                               : arena_printf(&s->arena, "%s/%s", from->dir, rel);
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
            if (!sema_kernel_type(c, kenv, &p->type, &sizes, &dt, &rank, &dims)) {
                env_bind(c, kenv, p->name, B_POISON, p->name_span);
                continue;
            }
            Tensor *t = ir_tensor_new(m, pass == 0 ? TK_INPUT : TK_OUTPUT, arena_strdup(&m->arena, p->name), dt, rank, dims);
            t->span = p->name_span;
            if (pass == 0) sema_check_annotation(c, p, t);
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
    if (sema_item_listed(done, kitems[ki])) {
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
        if (!sema_resolve_dtype(c, &p->type, &dt)) return;
        int rank = 0;
        Expr *dims[IR_MAX_RANK];
        for (int j = 0; j < p->type.ndims && rank < IR_MAX_RANK; j++) {
            if (p->type.dims[j].ellipsis) {
                if (!batch) batch = ir_var(m, ir_var_new(m, VAR_SIZE, "BATCH", NULL));
                dims[rank++] = batch;
                continue;
            }
            Expr *d = sema_kernel_dim(c, env, p->type.dims[j].size, &sizes);
            if (!d) return;
            dims[rank++] = d;
        }
        Expr **shape = arena_array(&m->arena, (size_t)rank + 1, sizeof(Expr *));
        memcpy(shape, dims, sizeof(Expr *) * (size_t)rank);
        args[i].t = ir_tensor_new(m, TK_INPUT, arena_strdup(&m->arena, p->name), dt, rank, shape);
        spans[i] = p->name_span;
    }
    call_fn(c, fn, mod, args, NULL, spans, fn->nparams, (Span){0});
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
        if (it->kind == AI_FN && !sema_item_listed(&s->used_fns, it)) check_fn_generic(s, root, it);
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

