/* parallelize: loops across CPU threads (loop IR).
 *
 * Marks LOOP_PARALLEL the loops whose iterations may run on different threads; the CPU back
 * end outlines each and hands it to the runtime's tdsl_parallel_for (codegen/cpu/
 * llvm_parallel.c). Without a schedule the candidate is the outermost loop of every loop
 * nest: the outer index loop of each definition and of each state fill, including those in
 * a scan's step (the steps run in order; each step's definitions run across threads). When
 * that loop alone may have too few iterations to share (a batch of 1: attention's b loop),
 * the loops perfectly nested in it are marked too, so that the back end collapses them into
 * one range: each the only statement of the one around it, serial (never a LOOP_VECTOR row
 * loop), safe, with an extent that names none of the loops around it (the back end's
 * condition for collapsing) and a loop in its body, at most PAR_MAX_COLLAPSE loops and no
 * deeper once the constant extents multiply to PAR_ENOUGH_ITERS (a symbolic extent counts
 * as too few). The innermost loop of a nest is left out because it is the vectoriser's: cut
 * between threads at places that depend on the thread count, its vector and remainder
 * iterations would fall on other elements, and vector libm functions differ from the scalar
 * ones in the last bits, so the outputs would depend on the thread count. A
 * kernel whose schedule has `parallel` directives is parallelised only where they say: the
 * loops of the index variables they name, at any depth (nested ones are collapsed by the
 * back end when perfectly nested). A directive carries the variable's name only, so it is
 * matched by name against the variables of the kernel's own definitions, as sema checked
 * it; the lowering's fill loops never match.
 *
 * A loop is marked only when that is safe, which is checked here and not assumed:
 *   - it is not a scan's step loop (VAR_SCAN: a step reads the state the last one wrote);
 *   - every store in its body to a buffer allocated outside the loop has the loop variable
 *     itself as an index, at the same axis in all such stores to that buffer, so two
 *     iterations never write one element; every load of such a buffer in the body has it at
 *     that axis too, so no iteration reads what another writes. A definition's index loops
 *     pass; its reduction loops store to an accumulator declared outside them and do not;
 *   - no such buffer is packed (i4, u4, i2): neighbouring elements share a byte, whose
 *     read-modify-write would race.
 * A directive naming a loop that is not safe (a reduction variable) leaves it serial.
 *
 * Without a schedule a loop must also be worth the threads: when every extent in its nest
 * is a constant, its work estimate (ir.h, LOOP_PARALLEL_MIN_WORK: stores counted through
 * the nest) must reach the threshold. That estimate is also the collapsed nest's, so the
 * loops marked inside it need no test of their own. With symbolic sizes it is marked, and
 * the back end compares the same estimate at run time, over the product of the collapsed
 * extents. Loops inside a marked chain stay as they are. */
#include "passes.h"

#include <string.h>

/* The chain of collapsed loops: deep enough for b, h, n of attention at B = 1, and a range
 * of PAR_ENOUGH_ITERS iterations already splits evenly enough over a machine's threads. */
enum { PAR_MAX_COLLAPSE = 3, PAR_ENOUGH_ITERS = 256 };

typedef struct Par {
    int   nids;       /* Var and Tensor ids are below this */
    char *named;      /* per Var id: named by a `parallel` directive */
    bool  scheduled;  /* the kernel has `parallel` directives: mark only what they name */
    int   marked;     /* loops marked so far */
    /* the safety check of one loop */
    char *inner;      /* per Tensor id: allocated inside the loop */
    int  *axis;       /* per Tensor id: 1 + the axis its stores index by the loop variable */
} Par;

/* ---- safety --------------------------------------------------------------------------------- */

static void mark_allocs(Par *p, const LStmt *s)
{
    if (!s) return;
    if (s->kind == LS_ALLOC) p->inner[s->buf->id] = 1;
    for (int i = 0; i < s->nbody; i++) mark_allocs(p, s->body[i]);
    if (s->kind == LS_IF) mark_allocs(p, s->else_body);
}

static bool is_var(const Expr *e, const Var *v) { return e->op == OP_VAR && e->var == v; }

/* Stores: records each outside buffer's axis; false when a store could collide. */
static bool stores_disjoint(Par *p, const LStmt *s, const Var *v)
{
    if (!s) return true;
    if (s->kind == LS_STORE && !p->inner[s->buf->id]) {
        const Tensor *t = s->buf;
        if (t->rank == 0 || dtype_bits(t->dtype) < 8) return false;
        int a = 0;
        while (a < t->rank && !is_var(s->idx[a], v)) a++;
        if (a == t->rank) return false;
        if (!p->axis[t->id]) p->axis[t->id] = a + 1;
        else if (!is_var(s->idx[p->axis[t->id] - 1], v)) return false;
    }
    for (int i = 0; i < s->nbody; i++)
        if (!stores_disjoint(p, s->body[i], v)) return false;
    return s->kind != LS_IF || stores_disjoint(p, s->else_body, v);
}

/* Loads of buffers the loop writes read the iteration's own slice only. */
static bool loads_private(const Par *p, const Expr *e, const Var *v)
{
    if (!e) return true;
    if (e->op == OP_ACCESS && p->axis[e->tensor->id] && !is_var(e->args[p->axis[e->tensor->id] - 1], v))
        return false;
    for (int i = 0; i < e->nargs; i++)
        if (!loads_private(p, e->args[i], v)) return false;
    return loads_private(p, e->pad, v);
}

static bool stmt_loads_private(const Par *p, const LStmt *s, const Var *v)
{
    if (!s) return true;
    bool ok = true;
    switch (s->kind) {
    case LS_SEQ: case LS_BARRIER: break;
    case LS_FOR: ok = loads_private(p, s->extent, v); break;
    case LS_STORE:
        for (int a = 0; a < s->buf->rank && ok; a++) ok = loads_private(p, s->idx[a], v);
        ok = ok && loads_private(p, s->value, v);
        break;
    case LS_IF: ok = loads_private(p, s->cond, v) && stmt_loads_private(p, s->else_body, v); break;
    case LS_ALLOC:
        for (int a = 0; a < s->buf->rank && ok; a++) ok = loads_private(p, s->buf->shape[a], v);
        break;
    }
    for (int i = 0; i < s->nbody && ok; i++) ok = stmt_loads_private(p, s->body[i], v);
    return ok;
}

static bool is_safe(Par *p, const LStmt *s)
{
    if (s->var->kind == VAR_SCAN) return false;
    memset(p->inner, 0, (size_t)p->nids);
    memset(p->axis, 0, (size_t)p->nids * sizeof *p->axis);
    mark_allocs(p, s->body[0]);
    return stores_disjoint(p, s->body[0], s->var) && stmt_loads_private(p, s->body[0], s->var);
}

/* ---- cost ----------------------------------------------------------------------------------- */

static int64_t sat_add(int64_t a, int64_t b) { return a > INT64_MAX - b ? INT64_MAX : a + b; }
static int64_t sat_mul(int64_t a, int64_t b) { return b && a > INT64_MAX / b ? INT64_MAX : a * b; }

/* The work estimate of s (ir.h), saturating; -1 when an extent is not a constant. */
static int64_t work_of(const LStmt *s)
{
    if (!s) return 0;
    switch (s->kind) {
    case LS_SEQ: {
        int64_t w = 0;
        for (int i = 0; i < s->nbody; i++) {
            int64_t c = work_of(s->body[i]);
            if (c < 0) return -1;
            w = sat_add(w, c);
        }
        return w;
    }
    case LS_FOR: {
        if (s->extent->op != OP_CONST) return -1;
        int64_t c = work_of(s->body[0]);
        return c < 0 ? -1 : sat_mul(s->extent->value.i > 0 ? s->extent->value.i : 0, c);
    }
    case LS_STORE: return 1;
    case LS_IF: {
        int64_t t = work_of(s->body[0]), e = work_of(s->else_body);
        return t < 0 || e < 0 ? -1 : sat_add(t, e);
    }
    case LS_ALLOC: return work_of(s->body[0]);
    case LS_BARRIER: return 0;
    }
    return -1;
}

static bool worth_it(const LStmt *s)
{
    int64_t w = work_of(s);
    return w < 0 || w >= LOOP_PARALLEL_MIN_WORK;
}

/* ---- the walk ------------------------------------------------------------------------------- */

static bool has_loop(const LStmt *s)
{
    if (!s) return false;
    if (s->kind == LS_FOR) return true;
    for (int i = 0; i < s->nbody; i++)
        if (has_loop(s->body[i])) return true;
    return s->kind == LS_IF && has_loop(s->else_body);
}

static bool expr_uses(const Expr *e, const Var *v)
{
    if (!e) return false;
    if (e->op == OP_VAR && e->var == v) return true;
    for (int i = 0; i < e->nargs; i++)
        if (expr_uses(e->args[i], v)) return true;
    return expr_uses(e->pad, v);
}

/* The statement s stands for: a sequence of one statement is that statement (as for the
 * back end's collapsing). */
static LStmt *only_child(LStmt *s)
{
    while (s->kind == LS_SEQ && s->nbody == 1) s = s->body[0];
    return s;
}

/* The iterations of loop s when its extent is a constant, else -1. */
static int64_t trips(const LStmt *s)
{
    if (s->extent->op != OP_CONST) return -1;
    return s->extent->value.i > 0 ? s->extent->value.i : 0;
}

/* s was just marked: marks the loops perfectly nested in it while its range may be too
 * short to share (see the top of the file). */
static void mark_nested(Par *p, LStmt *s)
{
    LStmt *chain[PAR_MAX_COLLAPSE] = {s};
    int n = 1;
    int64_t iters = trips(s);  /* of the chain so far; -1: symbolic, which may be 1 */
    while (n < PAR_MAX_COLLAPSE && iters < PAR_ENOUGH_ITERS) {
        LStmt *in = only_child(chain[n - 1]->body[0]);
        if (in->kind != LS_FOR || in->loop != LOOP_SERIAL || in->var->kind == VAR_SCAN || !has_loop(in->body[0]))
            return;
        for (int i = 0; i < n; i++)
            if (expr_uses(in->extent, chain[i]->var)) return;
        if (!is_safe(p, in)) return;
        in->loop = LOOP_PARALLEL;
        p->marked++;
        chain[n++] = in;
        iters = iters < 0 || trips(in) < 0 ? -1 : sat_mul(iters, trips(in));
    }
}

static void visit(Par *p, LStmt *s)
{
    if (!s) return;
    if (s->kind == LS_FOR && s->var->kind != VAR_SCAN) {
        if (s->loop == LOOP_PARALLEL && !p->scheduled) return;  /* its threads are busy */
        bool want = s->loop == LOOP_SERIAL && (p->scheduled ? p->named[s->var->id] != 0 : worth_it(s));
        if (want && is_safe(p, s)) {
            s->loop = LOOP_PARALLEL;
            p->marked++;
            if (!p->scheduled) {
                mark_nested(p, s);
                return;
            }
        } else if (!p->scheduled && s->loop == LOOP_SERIAL && !worth_it(s)) {
            return;  /* too small; the loops inside are smaller still */
        }
    }
    for (int i = 0; i < s->nbody; i++) visit(p, s->body[i]);
    if (s->kind == LS_IF) visit(p, s->else_body);
}

/* The kernel's definition variables that a `parallel` directive names. */
static void name_vars(Par *p, const Kernel *k, Stmt **stmts, int n)
{
    for (int i = 0; i < n; i++) {
        const Stmt *st = stmts[i];
        if (st->kind == STMT_SCAN) {
            name_vars(p, k, st->scan.body, st->scan.nbody);
            continue;
        }
        for (int pass = 0; pass < 2; pass++) {
            int cnt = pass ? st->def.nred : st->def.dst->rank;
            Var **vs = pass ? st->def.red : st->def.idx;
            for (int j = 0; j < cnt; j++)
                for (int d = 0; d < k->nsched; d++)
                    if (k->sched[d].kind == SCHED_PARALLEL && strcmp(k->sched[d].var, vs[j]->name) == 0)
                        p->named[vs[j]->id] = 1;
        }
    }
}

int pass_parallelize(LoopModule *lm)
{
    Arena scratch;
    arena_init(&scratch);
    Par p = {.nids = lm->ir->next_id};
    p.named = arena_array(&scratch, (size_t)p.nids + 1, 1);
    p.inner = arena_array(&scratch, (size_t)p.nids + 1, 1);
    p.axis = arena_array(&scratch, (size_t)p.nids + 1, sizeof *p.axis);
    for (int f = 0; f < lm->nfuncs; f++) {
        const Kernel *k = lm->funcs[f]->kernel;
        memset(p.named, 0, (size_t)p.nids);
        p.scheduled = false;
        for (int d = 0; d < k->nsched; d++) p.scheduled |= k->sched[d].kind == SCHED_PARALLEL;
        name_vars(&p, k, k->stmts, k->nstmts);
        visit(&p, lm->funcs[f]->body);
    }
    arena_free(&scratch);
    return p.marked;
}
