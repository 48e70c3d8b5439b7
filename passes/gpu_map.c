/* gpu_map: the GPU schedule of the loop IR. Every statement of a function outside the
 * function-level allocations becomes one kernel launch; its loops are marked
 * LOOP_GPU_BLOCK (distributed over the blocks of the grid) or LOOP_GPU_THREAD (over the
 * threads of a block), and codegen/cuda turns each such loop into a grid-stride or
 * block-stride loop, so any size runs correctly with any grid.
 *
 * Takes a LoopModule from ir_lower_module (verified); gives a new LoopModule in the same
 * arena whose function bodies have this shape, which codegen/cuda relies on:
 *
 *     host level:   LS_SEQ and function-level LS_ALLOC (device memory for the whole call)
 *                   around kernel roots, nothing else;
 *     kernel root:  a chain of LOOP_GPU_BLOCK loops (one loop of extent 1 for a kernel
 *                   that runs as a single block);
 *     inside:       chains of LOOP_GPU_THREAD loops, serial code, LS_BARRIER only between
 *                   statements that every thread of the block reaches (never inside a
 *                   thread loop, never in a kernel of more than one block iteration).
 *
 * The schedule, one rule per statement of the host level:
 *
 *   - a nest of parallel loops L0 .. Lk-1 around a body B (a definition: the lowering's
 *     index loops, the body a store or a per-element reduction): L0 .. Lk-2 go to blocks
 *     and Lk-1 to threads (coalesced along the contiguous axis); a single loop (k = 1) is
 *     split into blocks of GPU_THREADS_PER_BLOCK threads with a guard. B runs per thread,
 *     sequentially: reductions stay in one thread for now (a warp-shuffle tree for row
 *     reductions, a tiled shared-memory GEMM and the flash-attention kernel are later work);
 *   - anything else (a scan's serial loop, a rank-0 definition) becomes a single-block
 *     kernel: inside it, every parallel nest runs on the threads of the block, statements
 *     are separated by __syncthreads (LS_BARRIER), serial loops stay serial around them,
 *     and a statement without parallel loops runs on thread 0 (a thread loop of extent 1).
 *     One launch runs a whole scan; the state stays in global memory between steps.
 *
 * A loop is parallel when it is marked LOOP_PARALLEL, or when it is a forward LOOP_SERIAL
 * loop over a VAR_INDEX variable: the lowering (passes/lower.c) uses VAR_INDEX for the
 * index loops of definitions and of state fills, whose iterations write distinct elements
 * and read nothing they write, and VAR_REDUCE / VAR_SCAN for the loops that carry a
 * dependence. Anything the rules do not cover runs on one thread, which is always correct. */
#include "passes.h"

#include <string.h>

typedef struct GpuMap {
    Module *m;   /* owns the arena the new statements live in */
} GpuMap;

/* ---- predicates ------------------------------------------------------------------------- */

static bool is_parallel_loop(const LStmt *s)
{
    if (s->kind != LS_FOR) return false;
    if (s->loop == LOOP_PARALLEL) return true;
    return s->loop == LOOP_SERIAL && !s->reverse && s->var->kind == VAR_INDEX;
}

static bool contains_parallel(const LStmt *s)
{
    if (!s) return false;
    if (is_parallel_loop(s)) return true;
    for (int i = 0; i < s->nbody; i++)
        if (contains_parallel(s->body[i])) return true;
    return s->kind == LS_IF && contains_parallel(s->else_body);
}

static bool expr_uses_var(const Expr *e, const Var *v)
{
    if (!e) return false;
    if (e->op == OP_VAR && e->var == v) return true;
    for (int i = 0; i < e->nargs; i++)
        if (expr_uses_var(e->args[i], v)) return true;
    return expr_uses_var(e->pad, v);
}

static bool ends_with_barrier(const LStmt *s)
{
    if (s->kind == LS_BARRIER) return true;
    if (s->kind == LS_SEQ && s->nbody > 0) return ends_with_barrier(s->body[s->nbody - 1]);
    if (s->kind == LS_ALLOC) return ends_with_barrier(s->body[0]);
    return false;
}

/* ---- substitution of a variable by an expression ---------------------------------------- */

static Expr *subst_expr(Module *m, Expr *e, const Var *v, Expr *with)
{
    if (!e) return NULL;
    if (e->op == OP_VAR) return e->var == v ? with : e;
    bool changed = false;
    Expr **args = e->nargs ? arena_array(&m->arena, (size_t)e->nargs, sizeof(Expr *)) : NULL;
    for (int i = 0; i < e->nargs; i++) {
        args[i] = subst_expr(m, e->args[i], v, with);
        changed |= args[i] != e->args[i];
    }
    Expr *pad = subst_expr(m, e->pad, v, with);
    changed |= pad != e->pad;
    if (!changed) return e;
    Expr *c = arena_alloc(&m->arena, sizeof *c);
    *c = *e;
    c->args = args;
    c->pad = pad;
    return c;
}

static LStmt *subst_stmt(Module *m, LStmt *s, const Var *v, Expr *with)
{
    if (!s) return NULL;
    LStmt *c = arena_alloc(&m->arena, sizeof *c);
    *c = *s;
    if (s->nbody) {
        c->body = arena_array(&m->arena, (size_t)s->nbody, sizeof(LStmt *));
        for (int i = 0; i < s->nbody; i++) c->body[i] = subst_stmt(m, s->body[i], v, with);
    }
    c->extent = subst_expr(m, s->extent, v, with);
    c->value = subst_expr(m, s->value, v, with);
    c->cond = subst_expr(m, s->cond, v, with);
    c->else_body = subst_stmt(m, s->else_body, v, with);
    if (s->kind == LS_STORE && s->buf->rank) {
        c->idx = arena_array(&m->arena, (size_t)s->buf->rank, sizeof(Expr *));
        for (int i = 0; i < s->buf->rank; i++) c->idx[i] = subst_expr(m, s->idx[i], v, with);
    }
    return c;
}

/* ---- building blocks --------------------------------------------------------------------- */

static LStmt *with_kind(GpuMap *g, const LStmt *loop, LoopKind kind, LStmt *body)
{
    return loop_for(g->m, loop->var, loop->extent, kind, false, body);
}

static Var *fresh_var(GpuMap *g, const char *base, const char *suffix, Expr *extent)
{
    char *name = arena_printf(&g->m->arena, "%s.%s", base, suffix);
    return ir_var_new(g->m, VAR_INDEX, name, extent);
}

static Expr *i64c(GpuMap *g, int64_t v) { return ir_const_i(g->m, DT_I64, v); }

/* The chain of directly nested parallel loops starting at s (at most cap), stopping at a
 * loop whose extent depends on a loop of the chain (it could not be flattened). */
static int parallel_chain(const LStmt *s, const LStmt **chain, int cap)
{
    int n = 0;
    while (n < cap && is_parallel_loop(s)) {
        for (int i = 0; i < n; i++)
            if (expr_uses_var(s->extent, chain[i]->var)) return n;
        chain[n++] = s;
        s = s->body[0];
    }
    return n;
}

/* s run by thread 0 of the block: `gpu_thread for u < 1 { s }`. */
static LStmt *on_one_thread(GpuMap *g, LStmt *s)
{
    Var *u = fresh_var(g, "one", "t", i64c(g, 1));
    return loop_for(g->m, u, u->extent, LOOP_GPU_THREAD, false, s);
}

/* ---- inside a single-block kernel -------------------------------------------------------- */

static LStmt *map_block(GpuMap *g, LStmt *s);

static LStmt *seq_with_barriers(GpuMap *g, LStmt **items, int n, bool trailing)
{
    PtrVec out = {0};
    for (int i = 0; i < n; i++) {
        LStmt *c = map_block(g, items[i]);
        pv_push(&g->m->arena, &out, c);
        bool last = i == n - 1;
        if ((!last || trailing) && !ends_with_barrier(c)) {
            LStmt *b = arena_alloc(&g->m->arena, sizeof *b);
            b->kind = LS_BARRIER;
            pv_push(&g->m->arena, &out, b);
        }
    }
    return loop_seq(g->m, (LStmt **)out.items, out.len);
}

/* Maps s, which every thread of the block reaches together. */
static LStmt *map_block(GpuMap *g, LStmt *s)
{
    if (!contains_parallel(s)) return on_one_thread(g, s);
    switch (s->kind) {
    case LS_SEQ:
        return seq_with_barriers(g, s->body, s->nbody, false);
    case LS_FOR: {
        if (!is_parallel_loop(s)) {  /* a serial loop (a scan's steps): every thread walks it */
            LStmt *body = seq_with_barriers(g, s->body, 1, true);
            return loop_for(g->m, s->var, s->extent, s->loop, s->reverse, body);
        }
        const LStmt *chain[IR_MAX_RANK * 2];
        int n = parallel_chain(s, chain, TD_COUNTOF(chain));
        LStmt *body = chain[n - 1]->body[0];
        for (int i = n - 1; i >= 0; i--) body = with_kind(g, chain[i], LOOP_GPU_THREAD, body);
        return body;
    }
    case LS_STORE: case LS_IF: case LS_ALLOC: case LS_BARRIER:
        /* a parallel loop under an allocation or a condition: not a shape the lowering
         * makes; one thread runs it, which is correct */
        return on_one_thread(g, s);
    }
    TD_UNREACHABLE("map_block: bad statement kind");
}

/* ---- kernels ------------------------------------------------------------------------------ */

/* A parallel nest: outer loops to blocks, the innermost to threads. */
static LStmt *map_nest(GpuMap *g, const LStmt *s)
{
    const LStmt *chain[IR_MAX_RANK * 2];
    int n = parallel_chain(s, chain, TD_COUNTOF(chain));
    TD_ASSERT(n >= 1);
    LStmt *body = chain[n - 1]->body[0];
    if (n >= 2) {
        body = with_kind(g, chain[n - 1], LOOP_GPU_THREAD, body);
        for (int i = n - 2; i >= 0; i--) body = with_kind(g, chain[i], LOOP_GPU_BLOCK, body);
        return body;
    }
    /* one loop over x < n: blocks x.b < ceil(n / T), threads x.t < T, x = x.b * T + x.t */
    const Var *x = chain[0]->var;
    Expr *ext = chain[0]->extent, *t = i64c(g, GPU_THREADS_PER_BLOCK);
    Expr *blocks = ir_binary(g->m, OP_DIV, ir_binary(g->m, OP_ADD, ext, i64c(g, GPU_THREADS_PER_BLOCK - 1)), t);
    Var *xb = fresh_var(g, x->name, "b", blocks);
    Var *xt = fresh_var(g, x->name, "t", t);
    Expr *flat = ir_binary(g->m, OP_ADD, ir_binary(g->m, OP_MUL, ir_var(g->m, xb), t), ir_var(g->m, xt));
    LStmt *guarded = loop_if(g->m, ir_binary(g->m, OP_LT, flat, ext), subst_stmt(g->m, body, x, flat), NULL);
    LStmt *threads = loop_for(g->m, xt, xt->extent, LOOP_GPU_THREAD, false, guarded);
    return loop_for(g->m, xb, xb->extent, LOOP_GPU_BLOCK, false, threads);
}

/* Anything else: one block whose threads share the work. */
static LStmt *map_single_block(GpuMap *g, LStmt *s)
{
    Var *k = fresh_var(g, "block", "b", i64c(g, 1));
    return loop_for(g->m, k, k->extent, LOOP_GPU_BLOCK, false, map_block(g, s));
}

static LStmt *map_host(GpuMap *g, LStmt *s)
{
    switch (s->kind) {
    case LS_SEQ: {
        LStmt **items = arena_array(&g->m->arena, (size_t)s->nbody + 1, sizeof(LStmt *));
        for (int i = 0; i < s->nbody; i++) items[i] = map_host(g, s->body[i]);
        return loop_seq(g->m, items, s->nbody);
    }
    case LS_ALLOC:
        if (s->scope == MEM_HEAP || s->scope == MEM_STACK)  /* device memory for the call */
            return loop_alloc(g->m, s->buf, s->scope, map_host(g, s->body[0]));
        return map_single_block(g, s);
    case LS_FOR:
        return is_parallel_loop(s) ? map_nest(g, s) : map_single_block(g, s);
    case LS_STORE: case LS_IF: case LS_BARRIER:
        return map_single_block(g, s);
    }
    TD_UNREACHABLE("map_host: bad statement kind");
}

LoopModule *pass_gpu_map(Module *m, const LoopModule *lm)
{
    GpuMap g = {m};
    LoopModule *out = arena_alloc(&m->arena, sizeof *out);
    out->ir = m;
    out->nfuncs = lm->nfuncs;
    out->funcs = arena_array(&m->arena, (size_t)lm->nfuncs + 1, sizeof(LoopFunc *));
    for (int i = 0; i < lm->nfuncs; i++) {
        LoopFunc *f = arena_alloc(&m->arena, sizeof *f);
        f->kernel = lm->funcs[i]->kernel;
        f->body = map_host(&g, lm->funcs[i]->body);
        out->funcs[i] = f;
    }
    return out;
}
