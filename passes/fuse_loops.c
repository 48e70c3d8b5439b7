/* fuse_loops: loop fusion with buffer contraction (loop IR).
 *
 * pass_lower makes one loop nest per definition and allocates every temporary for the whole
 * function, so a row-wise chain (softmax: row max, row sum, normalise) is three loops over
 * the rows with row-sized temporaries, and attention stores its [B, H, N, M] scores. This
 * pass runs between pass_lower and pass_parallelize and does two things, per function:
 *
 * Merge. Two adjacent loops of one sequence (the second may sit under LS_ALLOCs that begin
 * right after the first: they are hoisted over it) become one when they have the same kind,
 * direction and structurally equal extents, neither is a scan's step loop, and iteration i
 * of the merged loop computes what both did for i. For every buffer B allocated outside
 * both loops, with v the loop's own variable:
 *   - B written by the first and read by the second: every store of the first and every
 *     load of the second index B by v at one and the same axis (the second reads only what
 *     the same iteration of the first wrote);
 *   - B written by the second and read or written by the first: every access of the first
 *     and every store of the second index B by v at one axis (no iteration of the first
 *     sees, or overwrites, what an earlier iteration of the second wrote).
 * The second loop's variable is substituted by the first's in its body, which is appended to
 * the first's; merging repeats until no pair applies and then descends into the merged
 * bodies, so nests merge level by level (attention's b, h, n). Two loops stay apart when
 * only one of them has independent iterations (pass_parallelize's safety test: a packed
 * output, a scalar written by every iteration), so merging never takes threads from a loop,
 * and when a `parallel` directive names one of two differently named variables (the
 * directive matches names).
 *
 * Contract. A temporary (any buffer of rank >= 1 the function allocates: not a parameter,
 * not a register) whose accesses all lie inside one loop over v, each indexing it by v at
 * one fixed axis, needs only the slice of the current iteration: the axis is dropped (rank
 * 0 is a scalar) and the allocation moves into the loop's body, then the same is tried on
 * the next loop inside that holds every access. A scan's step loop that does not qualify is
 * passed through: a temporary local to a step is defined again, in full, by every step
 * before it is read (the tensor IR's rule), so no value crosses steps. Any other loop that
 * does not qualify stops the descent. The allocation is on the stack when it is a scalar or
 * of constant size up to STACK_MAX_BYTES, on the heap otherwise (the CPU back end frees it
 * at the end of each iteration; in a parallel loop's outlined body it is private to the
 * iteration).
 *
 * What it is not: no reordering of statements, no tiling, and not the online-softmax
 * rewrite; a softmax still makes three passes over a row, now inside one loop over rows. */
#include "passes.h"

#include <string.h>

/* The CPU back end's limit for a constant-size buffer on the stack (llvm_gen.c). */
enum { STACK_MAX_BYTES = 16384 };

typedef struct FuseLoops {
    Module       *m;
    const Kernel *k;
    StrBuf       *explain;   /* NULL unless --explain-fusion */
    int           merges;
    PtrVec        placed;    /* the allocations contraction made */
} FuseLoops;

/* ---- rewriting -------------------------------------------------------------------------------
 * Expressions are shared with the tensor IR (and with other loop modules lowered from it), so
 * they are copied where they change; statements belong to this loop module and are updated
 * in place. One rewrite substitutes a variable, or replaces a buffer by its contraction. */

typedef struct Rewrite {
    const Var    *from;   /* variable substitution: from := to */
    Expr         *to;
    const Tensor *old;    /* contraction: old[..., axis, ...] becomes t[...] */
    Tensor       *t;
    int           axis;
} Rewrite;

static Expr **drop_axis(FuseLoops *f, Expr **idx, int n, int axis)
{
    Expr **out = arena_array(&f->m->arena, (size_t)n, sizeof(Expr *));
    for (int i = 0, j = 0; i < n; i++)
        if (i != axis) out[j++] = idx[i];
    return out;
}

static Expr *rw_expr(FuseLoops *f, const Rewrite *r, Expr *e)
{
    if (!e) return NULL;
    if (e->op == OP_VAR) return r->from && e->var == r->from ? r->to : e;
    bool changed = e->op == OP_ACCESS && r->old && e->tensor == r->old;
    Expr **args = e->nargs ? arena_array(&f->m->arena, (size_t)e->nargs, sizeof(Expr *)) : NULL;
    for (int i = 0; i < e->nargs; i++) {
        args[i] = rw_expr(f, r, e->args[i]);
        changed |= args[i] != e->args[i];
    }
    Expr *pad = rw_expr(f, r, e->pad);
    changed |= pad != e->pad;
    if (!changed) return e;
    Expr *c = arena_alloc(&f->m->arena, sizeof *c);
    *c = *e;
    c->args = args;
    c->pad = pad;
    if (e->op == OP_ACCESS && r->old && e->tensor == r->old) {
        c->tensor = r->t;
        c->args = drop_axis(f, args, e->nargs, r->axis);
        c->nargs = e->nargs - 1;
    }
    return c;
}

static void rw_stmt(FuseLoops *f, const Rewrite *r, LStmt *s)
{
    if (!s) return;
    switch (s->kind) {
    case LS_SEQ: case LS_ALLOC: case LS_BARRIER: break;
    case LS_FOR: s->extent = rw_expr(f, r, s->extent); break;
    case LS_STORE: {
        int rank = s->buf->rank;
        for (int a = 0; a < rank; a++) s->idx[a] = rw_expr(f, r, s->idx[a]);
        s->value = rw_expr(f, r, s->value);
        if (r->old && s->buf == r->old) {
            s->idx = drop_axis(f, s->idx, rank, r->axis);
            s->buf = r->t;
        }
        break;
    }
    case LS_IF:
        s->cond = rw_expr(f, r, s->cond);
        rw_stmt(f, r, s->else_body);
        break;
    }
    for (int i = 0; i < s->nbody; i++) rw_stmt(f, r, s->body[i]);
}

/* ---- accesses --------------------------------------------------------------------------------- */

/* The accesses of one buffer in a loop body, split into loads and stores: how many, and the
 * axes every one of them indexes by the loop variable itself (a bit per axis). */
typedef struct Uses {
    int      loads, stores;
    unsigned load_axes, store_axes;
    bool     padded;
} Uses;

static unsigned var_axes(Expr **idx, int rank, const Var *v)
{
    unsigned m = 0;
    for (int a = 0; a < rank; a++)
        if (idx[a]->op == OP_VAR && idx[a]->var == v) m |= 1u << a;
    return m;
}

static void uses_expr(const Expr *e, const Tensor *t, const Var *v, Uses *u)
{
    if (!e) return;
    if (e->op == OP_ACCESS && e->tensor == t) {
        u->loads++;
        u->load_axes &= var_axes(e->args, e->nargs, v);
        u->padded |= e->pad != NULL;
    }
    for (int i = 0; i < e->nargs; i++) uses_expr(e->args[i], t, v, u);
    uses_expr(e->pad, t, v, u);
}

static void uses_stmt(const LStmt *s, const Tensor *t, const Var *v, Uses *u)
{
    if (!s) return;
    switch (s->kind) {
    case LS_SEQ: case LS_ALLOC: case LS_BARRIER: break;
    case LS_FOR: uses_expr(s->extent, t, v, u); break;
    case LS_STORE:
        if (s->buf == t) {
            u->stores++;
            u->store_axes &= var_axes(s->idx, t->rank, v);
        }
        for (int a = 0; a < s->buf->rank; a++) uses_expr(s->idx[a], t, v, u);
        uses_expr(s->value, t, v, u);
        break;
    case LS_IF:
        uses_expr(s->cond, t, v, u);
        uses_stmt(s->else_body, t, v, u);
        break;
    }
    for (int i = 0; i < s->nbody; i++) uses_stmt(s->body[i], t, v, u);
}

static Uses uses_of(const LStmt *s, const Tensor *t, const Var *v)
{
    Uses u = {0, 0, ~0u, ~0u, false};  /* no access: every axis qualifies */
    uses_stmt(s, t, v, &u);
    return u;
}

static bool touches(const LStmt *s, const Tensor *t)
{
    Uses u = uses_of(s, t, NULL);
    return u.loads + u.stores > 0;
}

static void stored_bufs(FuseLoops *f, const LStmt *s, PtrVec *out)
{
    if (!s) return;
    if (s->kind == LS_STORE) {
        bool seen = false;
        for (int i = 0; i < out->len && !seen; i++) seen = out->items[i] == s->buf;
        if (!seen) pv_push(&f->m->arena, out, s->buf);
    }
    for (int i = 0; i < s->nbody; i++) stored_bufs(f, s->body[i], out);
    if (s->kind == LS_IF) stored_bufs(f, s->else_body, out);
}

/* ---- merging ---------------------------------------------------------------------------------- */

static bool allocated_in(const LStmt *s, const Tensor *t)
{
    if (!s) return false;
    if (s->kind == LS_ALLOC && s->buf == t) return true;
    for (int i = 0; i < s->nbody; i++)
        if (allocated_in(s->body[i], t)) return true;
    return s->kind == LS_IF && allocated_in(s->else_body, t);
}

/* Whether the iterations of loop s write disjoint slices of the buffers outside it and read
 * nothing another iteration writes (pass_parallelize's test of safety, without its cost). */
static bool independent(FuseLoops *f, const LStmt *s)
{
    PtrVec bufs = {0};
    stored_bufs(f, s->body[0], &bufs);
    for (int i = 0; i < bufs.len; i++) {
        const Tensor *t = bufs.items[i];
        if (allocated_in(s->body[0], t)) continue;
        if (t->rank == 0 || dtype_bits(t->dtype) < 8) return false;
        Uses u = uses_of(s->body[0], t, s->var);
        if (!(u.store_axes & u.load_axes & ((1u << t->rank) - 1))) return false;
    }
    return true;
}

static bool named_parallel(const Kernel *k, const Var *v)
{
    for (int d = 0; d < k->nsched; d++)
        if (k->sched[d].kind == SCHED_PARALLEL && strcmp(k->sched[d].var, v->name) == 0) return true;
    return false;
}

/* Why loops a and b (b runs right after a) cannot become one loop, or NULL. */
static const char *merge_blocker(FuseLoops *f, const LStmt *a, const LStmt *b)
{
    if (a->var->kind == VAR_SCAN || b->var->kind == VAR_SCAN) return "a scan's step loop";
    if (a->loop != b->loop || a->reverse != b->reverse) return "different loop kinds or directions";
    if (!ir_exprs_equal(a->extent, b->extent)) return "different extents";
    if (strcmp(a->var->name, b->var->name) != 0 && (named_parallel(f->k, a->var) || named_parallel(f->k, b->var)))
        return "a parallel directive names one of the variables";
    /* a loop that could run across threads is not merged with one that could not */
    if (independent(f, a) != independent(f, b)) return "only one of them has independent iterations";
    PtrVec bufs = {0};
    stored_bufs(f, a->body[0], &bufs);
    stored_bufs(f, b->body[0], &bufs);
    for (int i = 0; i < bufs.len; i++) {
        const Tensor *t = bufs.items[i];
        Uses ua = uses_of(a->body[0], t, a->var), ub = uses_of(b->body[0], t, b->var);
        unsigned axes = t->rank ? (1u << t->rank) - 1 : 0;
        bool flow = ua.stores && ub.loads;                  /* the second reads what the first wrote */
        bool back = ub.stores && (ua.loads || ua.stores);   /* the second overwrites what the first used */
        if (!flow && !back) continue;
        if (flow) axes &= ua.store_axes & ub.load_axes;
        if (back) axes &= ua.load_axes & ua.store_axes & ub.store_axes;
        if (!axes) {
            return arena_printf(&f->m->arena, "%s is %s at other iterations", t->name,
                                flow ? "read by the second loop" : "written by the second loop");
        }
    }
    return NULL;
}

static void push_flat(FuseLoops *f, PtrVec *out, LStmt *s)
{
    if (s->kind != LS_SEQ) {
        pv_push(&f->m->arena, out, s);
        return;
    }
    for (int i = 0; i < s->nbody; i++) push_flat(f, out, s->body[i]);
}

/* a's body followed by b's, with b's variable renamed to a's. */
static void merge_into(FuseLoops *f, LStmt *a, LStmt *b)
{
    if (b->var != a->var) {
        Rewrite r = {.from = b->var, .to = ir_var(f->m, a->var)};
        rw_stmt(f, &r, b->body[0]);
    }
    PtrVec items = {0};
    push_flat(f, &items, a->body[0]);
    push_flat(f, &items, b->body[0]);
    a->body[0] = loop_seq(f->m, (LStmt **)items.items, items.len);
}

/* The slot of the loop that runs first in *slot, looking through allocations and into the
 * first statement of sequences under them; NULL when that is not a loop. */
static LStmt **first_loop(LStmt **slot)
{
    for (;;) {
        LStmt *s = *slot;
        if (s->kind == LS_FOR) return slot;
        if (s->kind == LS_ALLOC) slot = &s->body[0];
        else if (s->kind == LS_SEQ && s->nbody > 0) slot = &s->body[0];
        else return NULL;
    }
}

static void explain_pair(FuseLoops *f, const LStmt *a, const LStmt *b, const char *why)
{
    if (!f->explain) return;
    sb_printf(f->explain, "  for %s and for %s (< ", a->var->name, b->var->name);
    ir_print_size(a->extent, f->explain);
    if (why && !ir_exprs_equal(a->extent, b->extent)) {
        sb_puts(f->explain, ", < ");
        ir_print_size(b->extent, f->explain);
    }
    if (why) sb_printf(f->explain, "): kept apart (%s)\n", why);
    else sb_puts(f->explain, "): merged\n");
}

static void fuse_stmt(FuseLoops *f, LStmt *s);

static void fuse_seq(FuseLoops *f, LStmt *s)
{
    PtrVec items = {0};
    push_flat(f, &items, s);
    s->body = (LStmt **)items.items;
    s->nbody = items.len;
    int i = 0;
    while (i + 1 < s->nbody) {
        LStmt *a = s->body[i];
        LStmt **slot = a->kind == LS_FOR ? first_loop(&s->body[i + 1]) : NULL;
        const char *why = slot ? merge_blocker(f, a, *slot) : "";
        if (slot) explain_pair(f, a, *slot, why);
        if (why) {
            i++;
            continue;
        }
        merge_into(f, a, *slot);
        f->merges++;
        if (slot != &s->body[i + 1]) {
            /* under allocations: they now begin before a, which takes b's place */
            *slot = a;
            s->body[i] = s->body[i + 1];
        }
        memmove(&s->body[i + 1], &s->body[i + 2], (size_t)(s->nbody - i - 2) * sizeof(LStmt *));
        s->nbody--;
    }
    for (int j = 0; j < s->nbody; j++) fuse_stmt(f, s->body[j]);
}

static void fuse_stmt(FuseLoops *f, LStmt *s)
{
    if (!s) return;
    switch (s->kind) {
    case LS_SEQ: fuse_seq(f, s); return;
    case LS_FOR: case LS_ALLOC: fuse_stmt(f, s->body[0]); return;
    case LS_IF:
        fuse_stmt(f, s->body[0]);
        fuse_stmt(f, s->else_body);
        return;
    case LS_STORE: case LS_BARRIER: return;
    }
}

/* ---- contraction ------------------------------------------------------------------------------ */

static bool is_param(const Kernel *k, const Tensor *t)
{
    for (int i = 0; i < k->nins; i++) if (k->ins[i] == t) return true;
    for (int i = 0; i < k->nouts; i++) if (k->outs[i] == t) return true;
    return false;
}

/* The allocations that may contract, in pre-order. */
static void candidates(FuseLoops *f, LStmt *s, PtrVec *out)
{
    if (!s) return;
    if (s->kind == LS_ALLOC && s->buf->rank > 0 && (s->scope == MEM_HEAP || s->scope == MEM_STACK) &&
        !is_param(f->k, s->buf))
        pv_push(&f->m->arena, out, s);
    for (int i = 0; i < s->nbody; i++) candidates(f, s->body[i], out);
    if (s->kind == LS_IF) candidates(f, s->else_body, out);
}

/* The slot holding statement x under *slot, or NULL. */
static LStmt **slot_of(LStmt **slot, const LStmt *x)
{
    LStmt *s = *slot;
    if (!s) return NULL;
    if (s == x) return slot;
    for (int i = 0; i < s->nbody; i++) {
        LStmt **r = slot_of(&s->body[i], x);
        if (r) return r;
    }
    return s->kind == LS_IF ? slot_of(&s->else_body, x) : NULL;
}

/* The axis of t that every access in loop s indexes by its variable, or -1. Padded loads
 * keep their bounds check only if the loop covers exactly that axis. */
static int contract_axis(const LStmt *s, const Tensor *t)
{
    if (t->rank == 0) return -1;
    Uses ext = {0, 0, ~0u, ~0u, false};
    uses_expr(s->extent, t, s->var, &ext);
    if (ext.loads) return -1;  /* evaluated outside the iterations */
    Uses u = uses_of(s->body[0], t, s->var);
    unsigned axes = u.load_axes & u.store_axes & ((1u << t->rank) - 1);
    for (int a = 0; a < t->rank; a++)
        if (axes & (1u << a) && (!u.padded || ir_exprs_equal(s->extent, t->shape[a]))) return a;
    return -1;
}

static MemScope scope_for(const Tensor *t)
{
    int64_t n = 1;
    for (int a = 0; a < t->rank; a++) {
        const Expr *d = t->shape[a];
        if (d->op != OP_CONST || d->value.i < 0 || !ck_mul_i64(n, d->value.i, &n)) return MEM_HEAP;
    }
    size_t bytes;
    if (!dtype_storage_bytes(t->dtype, (size_t)n, &bytes) || bytes > STACK_MAX_BYTES) return MEM_HEAP;
    return MEM_STACK;
}

static void print_type(StrBuf *out, const Tensor *t)
{
    sb_puts(out, dtype_name(t->dtype));
    if (!t->rank) return;
    sb_putc(out, '[');
    for (int a = 0; a < t->rank; a++) {
        if (a) sb_puts(out, ", ");
        ir_print_size(t->shape[a], out);
    }
    sb_putc(out, ']');
}

static void explain_contraction(FuseLoops *f, const Tensor *from, const Tensor *to, const PtrVec *loops, MemScope scope)
{
    if (!f->explain) return;
    sb_printf(f->explain, "  %s: ", from->name);
    print_type(f->explain, from);
    sb_puts(f->explain, " -> ");
    print_type(f->explain, to);
    sb_puts(f->explain, " per iteration of");
    for (int i = 0; i < loops->len; i++) sb_printf(f->explain, " %s", ((const LStmt *)loops->items[i])->var->name);
    sb_printf(f->explain, " (%s)\n", scope == MEM_HEAP ? "heap" : "stack");
}

/* Contracts alloc's buffer over the loops that hold all its accesses (see the top). */
static void contract(FuseLoops *f, LStmt **root, LStmt *alloc)
{
    Tensor *t = alloc->buf;
    LStmt **pos = &alloc->body[0], **place = NULL;
    PtrVec loops = {0};  /* the loops contracted over */
    for (;;) {
        LStmt *s = *pos;
        if (s->kind == LS_ALLOC) {
            pos = &s->body[0];
        } else if (s->kind == LS_SEQ) {
            int which = -1, n = 0;
            for (int i = 0; i < s->nbody; i++)
                if (touches(s->body[i], t)) which = i, n++;
            if (n != 1) break;
            pos = &s->body[which];
        } else if (s->kind == LS_FOR) {
            int axis = contract_axis(s, t);
            if (axis < 0 && s->var->kind != VAR_SCAN) break;
            if (axis >= 0) {
                Expr **shape = drop_axis(f, t->shape, t->rank, axis);
                Tensor *c = ir_tensor_new(f->m, t->kind, t->name, t->dtype, t->rank - 1, shape);
                c->annot = t->annot;
                c->span = t->span;
                Rewrite r = {.old = t, .t = c, .axis = axis};
                rw_stmt(f, &r, s->body[0]);
                t = c;
                place = &s->body[0];
                pv_push(&f->m->arena, &loops, s);
            }
            pos = &s->body[0];
        } else {
            break;
        }
    }
    if (!place) return;
    LStmt **slot = slot_of(root, alloc);
    TD_ASSERT(slot);
    *slot = alloc->body[0];
    MemScope scope = scope_for(t);
    /* after those placed before it: allocations keep their order */
    for (int i = 0; i < f->placed.len; i++)
        if (*place == f->placed.items[i]) place = &(*place)->body[0], i = -1;
    *place = loop_alloc(f->m, t, scope, *place);
    pv_push(&f->m->arena, &f->placed, *place);
    explain_contraction(f, alloc->buf, t, &loops, scope);
}

int pass_fuse_loops(LoopModule *lm, StrBuf *explain)
{
    int merges = 0;
    for (int i = 0; i < lm->nfuncs; i++) {
        LoopFunc *fn = lm->funcs[i];
        /* the tensor module owns the arena the new nodes live in */
        FuseLoops f = {(Module *)lm->ir, fn->kernel, explain, 0, {0}};
        if (explain) sb_printf(explain, "loops of kernel %s:\n", fn->kernel->name);
        fuse_stmt(&f, fn->body);
        PtrVec allocs = {0};
        candidates(&f, fn->body, &allocs);
        for (int j = 0; j < allocs.len; j++) contract(&f, &fn->body, allocs.items[j]);
        merges += f.merges;
    }
    return merges;
}
