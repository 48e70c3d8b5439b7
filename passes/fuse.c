/* fuse: vertical fusion of element-wise producers into their consumers (tensor IR).
 *
 * A temporary defined without a reduction (`t[i, j] = body`) is computed inside the
 * expression of every statement that reads it: each access `t[e0, e1]` becomes `body` with
 * i := e0, j := e1, and the definition disappears, so t is never materialised. This turns
 * whole-tensor chains (`y = gelu(x + b)`) into one loop nest, and a softmax's `e = exp(x -
 * m)` into a recomputation inside its two consumers (the row sum and the normalisation):
 * two passes over the row and no N-element intermediate.
 *
 * A producer stays materialised, with the reason --explain-fusion prints, when:
 *   - it is an output or a scan state (it must exist), or has a reduction at its top
 *     (fusing reductions into their consumers is a loop-level transformation, not this one);
 *   - it is read through a padded access (`t[i - 1] ?? 0`): the substituted body would read
 *     its own inputs at the out-of-range index;
 *   - it is indexed by a scan variable (collected across steps), or lives in a scan body and
 *     is read after the scan;
 *   - recomputing it would cost more than storing it: a reader loops over a variable its
 *     access does not use (so it reads each element many times), or it is read more than MAX_READS times, or
 *     its expression is larger than MAX_NODES operations, or it is read inside a reduction
 *     and its body holds transcendental functions while being read more than twice.
 * Fusion never changes what a program computes: the substituted expression is the same
 * arithmetic on the same values, in the same dtype. */
#include "passes.h"

#include <string.h>

enum { MAX_READS = 3, MAX_NODES = 48 };

typedef struct Fuse {
    Module *m;
    Kernel *k;
    StrBuf *explain;  /* NULL unless --explain-fusion */
} Fuse;

/* ---- counting reads ------------------------------------------------------------------------ */

typedef struct Reads {
    int  count;        /* accesses to the tensor */
    bool padded;       /* one of them has a pad value */
    bool in_reduction; /* one of them is inside a reduction's body */
    bool repeated;     /* a reader loops over a variable its access does not use */
} Reads;

static bool uses_var(const Expr *e, const Var *v)
{
    if (!e) return false;
    if (e->op == OP_VAR) return e->var == v;
    for (int i = 0; i < e->nargs; i++)
        if (uses_var(e->args[i], v)) return true;
    return false;
}

/* Whether some loop variable of the reading definition is absent from the access's
 * indices: then every producer element is read once per value of that variable, and
 * fusing would recompute it that many times (attention's p inside sum[m](p * v) over d). */
static bool reread(const Def *reader, const Expr *access)
{
    for (int pass = 0; pass < 2; pass++) {
        int n = pass ? reader->nred : reader->dst->rank;
        Var **vs = pass ? reader->red : reader->idx;
        for (int i = 0; i < n; i++) {
            if (vs[i]->kind == VAR_SCAN) continue;
            bool used = false;
            for (int a = 0; a < access->nargs && !used; a++) used = uses_var(access->args[a], vs[i]);
            if (!used) return true;
        }
    }
    return false;
}

static void reads_in_expr(const Def *reader, const Expr *e, const Tensor *t, Reads *r)
{
    if (!e) return;
    if (e->op == OP_ACCESS && e->tensor == t) {
        r->count++;
        r->padded |= e->pad != NULL;
        r->in_reduction |= reader->rop != RED_NONE;
        r->repeated |= reread(reader, e);
    }
    for (int i = 0; i < e->nargs; i++) reads_in_expr(reader, e->args[i], t, r);
    reads_in_expr(reader, e->pad, t, r);
}

static void reads_in_stmts(Stmt **stmts, int n, const Tensor *t, Reads *r)
{
    for (int i = 0; i < n; i++) {
        const Stmt *s = stmts[i];
        if (s->kind == STMT_DEF) {
            reads_in_expr(&s->def, s->def.body, t, r);
            continue;
        }
        for (int j = 0; j < s->scan.nstates; j++)
            if (s->scan.states[j].init_tensor == t) r->count += MAX_READS + 1;   /* copied whole: keep it */
        reads_in_stmts(s->scan.body, s->scan.nbody, t, r);
    }
}

static int expr_nodes(const Expr *e, int cap)
{
    if (!e || cap <= 0) return 0;
    int n = 1;
    for (int i = 0; i < e->nargs && n < cap; i++) n += expr_nodes(e->args[i], cap - n);
    return n + expr_nodes(e->pad, cap - n);
}

static bool has_transcendental(const Expr *e)
{
    if (!e) return false;
    Op op = e->op;
    if (op == OP_EXP || op == OP_LOG || op == OP_EXP2 || op == OP_LOG2 || op == OP_SIN || op == OP_COS ||
        op == OP_TANH || op == OP_SIGMOID || op == OP_ERF || op == OP_POW)
        return true;
    for (int i = 0; i < e->nargs; i++)
        if (has_transcendental(e->args[i])) return true;
    return has_transcendental(e->pad);
}

/* ---- substitution ------------------------------------------------------------------------------ */

/* body with each producer index variable replaced by the access's index expression */
static Expr *instantiate(Module *m, const Def *p, Expr **idx, Expr *e)
{
    if (e->op == OP_VAR) {
        for (int i = 0; i < p->dst->rank; i++)
            if (e->var == p->idx[i]) return idx[i];
        return e;
    }
    if (e->nargs == 0 && !e->pad) return e;
    Expr *r = arena_alloc(&m->arena, sizeof(Expr));
    *r = *e;
    r->args = e->nargs ? arena_array(&m->arena, (size_t)e->nargs, sizeof(Expr *)) : NULL;
    for (int i = 0; i < e->nargs; i++) r->args[i] = instantiate(m, p, idx, e->args[i]);
    r->pad = e->pad ? instantiate(m, p, idx, e->pad) : NULL;
    return r;
}

/* e with every access to p's tensor replaced by p's body at the accessed indices */
static Expr *inline_into(Module *m, const Def *p, Expr *e)
{
    if (!e) return NULL;
    if (e->op == OP_ACCESS && e->tensor == p->dst) {
        Expr **idx = arena_array(&m->arena, (size_t)e->nargs + 1, sizeof(Expr *));
        for (int i = 0; i < e->nargs; i++) idx[i] = inline_into(m, p, e->args[i]);
        return instantiate(m, p, idx, p->body);
    }
    if (e->nargs == 0 && !e->pad) return e;
    bool changed = false;
    Expr **args = e->nargs ? arena_array(&m->arena, (size_t)e->nargs, sizeof(Expr *)) : NULL;
    for (int i = 0; i < e->nargs; i++) {
        args[i] = inline_into(m, p, e->args[i]);
        changed |= args[i] != e->args[i];
    }
    Expr *pad = inline_into(m, p, e->pad);
    changed |= pad != e->pad;
    if (!changed) return e;
    Expr *r = arena_alloc(&m->arena, sizeof(Expr));
    *r = *e;
    r->args = args;
    r->pad = pad;
    return r;
}

static void inline_in_stmts(Module *m, const Def *p, Stmt **stmts, int n)
{
    for (int i = 0; i < n; i++) {
        Stmt *s = stmts[i];
        if (s->kind == STMT_DEF) s->def.body = inline_into(m, p, s->def.body);
        else inline_in_stmts(m, p, s->scan.body, s->scan.nbody);
    }
}

/* ---- the decision ---------------------------------------------------------------------------------- */

static bool is_state_next(Stmt **stmts, int n, const Tensor *t)
{
    for (int i = 0; i < n; i++) {
        const Stmt *s = stmts[i];
        if (s->kind != STMT_SCAN) continue;
        for (int j = 0; j < s->scan.nstates; j++)
            if (s->scan.states[j].next == t) return true;
        if (is_state_next(s->scan.body, s->scan.nbody, t)) return true;
    }
    return false;
}

/* Why producer p must stay materialised, or NULL when it can be fused. */
static const char *keep_reason(Fuse *f, const Def *p, const Reads *r)
{
    const Tensor *t = p->dst;
    if (t->kind != TK_TEMP) return t->kind == TK_OUTPUT ? "an output" : "a scan state";
    if (is_state_next(f->k->stmts, f->k->nstmts, t)) return "a scan state's next value";
    if (p->rop != RED_NONE) return "defined by a reduction";
    for (int i = 0; i < t->rank; i++)
        if (p->idx[i]->kind == VAR_SCAN) return "collected across the steps of a scan";
    if (r->count == 0) return "never read";
    if (r->padded) return "read through a padded access (with a pad value)";
    if (r->repeated) return "a reader reads each element many times (it loops over more variables than it indexes)";
    if (r->count > MAX_READS) return arena_printf(&f->m->arena, "read %d times; recomputing would cost more than storing", r->count);
    if (expr_nodes(p->body, MAX_NODES + 1) > MAX_NODES) return "too large an expression to recompute";
    /* Two reads, one of them a row reduction, is the two-pass pattern (softmax's exp): the
     * recomputation is cheaper than a round trip through memory. More are not. */
    if (r->in_reduction && r->count > 2 && has_transcendental(p->body))
        return "read more than twice, inside a reduction, with transcendental functions";
    return NULL;
}

/* Fuses producers of the statement list stmts (the kernel's, or a scan body's). Reads are
 * counted over the whole kernel; readers always follow their producer in the same list or
 * inside a later scan of it. */
static int fuse_list(Fuse *f, Stmt **stmts, int *n)
{
    int fused = 0;
    for (int i = 0; i < *n; i++) {
        Stmt *s = stmts[i];
        if (s->kind == STMT_SCAN) {
            fused += fuse_list(f, s->scan.body, &s->scan.nbody);
            continue;
        }
        Reads r = {0};
        reads_in_stmts(f->k->stmts, f->k->nstmts, s->def.dst, &r);
        const char *why = keep_reason(f, &s->def, &r);
        if (why) {
            if (f->explain) sb_printf(f->explain, "  %s: kept (%s)\n", s->def.dst->name, why);
            continue;
        }
        if (f->explain) sb_printf(f->explain, "  %s: fused into its %d reader%s\n", s->def.dst->name, r.count, r.count == 1 ? "" : "s");
        inline_in_stmts(f->m, &s->def, stmts + i + 1, *n - i - 1);
        /* drop the definition and the temporary */
        Tensor *t = s->def.dst;
        memmove(&stmts[i], &stmts[i + 1], (size_t)(*n - i - 1) * sizeof(Stmt *));
        (*n)--;
        i--;
        for (int j = 0; j < f->k->ntemps; j++)
            if (f->k->temps[j] == t) {
                memmove(&f->k->temps[j], &f->k->temps[j + 1], (size_t)(f->k->ntemps - j - 1) * sizeof(Tensor *));
                f->k->ntemps--;
                break;
            }
        fused++;
    }
    return fused;
}

int pass_fuse(Module *m, StrBuf *explain)
{
    int fused = 0;
    for (int i = 0; i < m->nkernels; i++) {
        Fuse f = {m, m->kernels[i], explain};
        if (explain) sb_printf(explain, "kernel %s:\n", f.k->name);
        fused += fuse_list(&f, f.k->stmts, &f.k->nstmts);
    }
    return fused;
}
