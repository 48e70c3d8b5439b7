/* register_block: contractions keep a block of outputs in registers (loop IR).
 *
 * pass_interchange leaves, per row i of a contraction (docs/ir.md),
 *
 *     for i < M {
 *         alloc acc_row: T[N] {
 *             vector for j1 < N { acc_row[j1] = c }
 *             for k... { vector for j2 < N { acc_row[j2] = acc_row[j2] OP e } }
 *             for j < N { fin }          (reads acc_row[j], stores out[.., i, .., j, ..])
 *         }
 *     }
 *
 * whose inner loop loads and stores acc_row for every term and reloads each row of b for
 * every i. This pass unrolls i by MR and jams it into the j loops (unroll-and-jam), with j
 * cut into blocks of NR:
 *
 *     for i_blk < M / MR {                               (the kind i had: parallel stays)
 *         alloc stack acc_blk: T[MR, NR] {
 *             for j_blk < N / NR {
 *                 unrolled for i_in < MR { vector for j_in < NR { acc_blk[i_in, j_in] = c } }
 *                 for k... { unrolled for i_in < MR { vector for j_in < NR {
 *                     acc_blk[i_in, j_in] = acc_blk[i_in, j_in] OP e[i, j := i_blk*MR + i_in, j_blk*NR + j_in] } } }
 *                 unrolled for i_in < MR { for j_in < NR { fin[acc_row[j] := acc_blk[i_in, j_in]] } }
 *             }
 *             for i_in < MR { the row form over the last N % NR columns, in a T[NR] row }
 *         }
 *     }
 *     for i_tail < M % MR { the row form of row M / MR * MR + i_tail }
 *
 * Once the constant loops are unrolled and vectorised, acc_blk's accesses have constant
 * offsets, so LLVM keeps the MR x NR accumulators in vector registers across k: per term one
 * broadcast of a, one vector load of b per NR/lanes and MR x NR/lanes multiply-adds, and no
 * load or store of an accumulator. The tails are what pass_interchange made, so every shape
 * is computed, and every output still combines the same terms in the same order (k
 * ascending) with the same operations in the same accumulator type: results are the same
 * bit for bit (acc_blk has rank 2, so the CPU back end does not mark it reassociable).
 *
 * It runs after pass_parallelize, so the i_blk loop inherits i's verdict (its stores index
 * by i_blk*MR + i_in, which parallelize's test of whole-variable indices would refuse) and
 * the new inner loops are never forked. Blocking reorders the iterations of (i, j), which
 * is legal here because (checked):
 *   - i is a forward serial or parallel VAR_INDEX loop with a size-only extent, and its body
 *     is exactly interchange's single-row form above (all three j loops over the same
 *     extent, the reduction loops VAR_REDUCE, forward and serial);
 *   - the reductions load no buffer the i loop stores (interchange checked it for j's body)
 *     and not the row;
 *   - fin has no loops, allocates only rank-0 scalars, and every other buffer it stores
 *     has i and j each as a whole index and is loaded in fin only at the stored element: so
 *     each (i, j) touches its own elements and any order of the iterations gives the same.
 * Only for 4- and 8-byte accumulators (NR is 128 bytes of them), and not where a constant M
 * or N is below MR or NR. */
#include "passes.h"

#include <string.h>

/* 6 x 2 vectors of 512 bits: 12 accumulators, 2 rows of b, 1 broadcast and the products
 * fit in 32 zmm registers. */
enum { MR = 6, NR_BYTES = 128, MAP_MAX = 64 };

typedef enum Hook { HOOK_NONE, HOOK_BLOCK, HOOK_TAIL } Hook;

typedef struct Rb {
    Module *m;
    int     blocked;
    /* what a clone replaces */
    const Var    *from[MAP_MAX];
    Expr         *full[MAP_MAX];   /* the variable's value */
    Expr         *local[MAP_MAX];  /* its index into the accumulators (j loops only) */
    int           nmap;
    const Tensor *tfrom[MAP_MAX];
    Tensor       *tto[MAP_MAX];
    int           ntmap;
    /* the single-row form being rewritten */
    Hook          hook;
    const LStmt  *jloops[3];       /* init, update and fin loops over j */
    const Var    *ivar;
    const Tensor *row;
    Tensor       *dst;             /* acc_blk (HOOK_BLOCK) or the tail row (HOOK_TAIL) */
    Tensor       *res;             /* HOOK_BLOCK: the block's sums, copied out for the epilogue */
    Expr         *dst_prefix;      /* i_in, the row of acc_blk; NULL for the tail row */
    Expr         *i_base, *j_base; /* i_blk * MR; j_blk * NR (block) or N / NR * NR (tail) */
    Expr         *j_extent;        /* N % NR (tail) */
    int64_t       nr;
} Rb;

/* ---- expressions ---------------------------------------------------------------------------- */

static Expr *k64(Rb *x, int64_t v) { return ir_const_i(x->m, DT_I64, v); }
/* Folded when both sides are constants (all are non-negative here), so the dump stays short. */
static Expr *bin(Rb *x, Op op, Expr *a, Expr *b)
{
    if (a->op == OP_CONST && b->op == OP_CONST) {
        int64_t u = a->value.i, v = b->value.i;
        if (op == OP_ADD) return k64(x, u + v);
        if (op == OP_MUL) return k64(x, u * v);
        if (op == OP_DIV) return k64(x, u / v);
        if (op == OP_MOD) return k64(x, u % v);
    }
    return ir_binary(x->m, op, a, b);
}

static bool sizes_only(const Expr *e)
{
    if (!e) return true;
    if ((e->op == OP_VAR && e->var->kind != VAR_SIZE) || e->op == OP_ACCESS) return false;
    for (int i = 0; i < e->nargs; i++)
        if (!sizes_only(e->args[i])) return false;
    return true;
}

static bool loads_tensor(const Expr *e, const Tensor *t)
{
    if (!e) return false;
    if (e->op == OP_ACCESS && e->tensor == t) return true;
    for (int i = 0; i < e->nargs; i++)
        if (loads_tensor(e->args[i], t)) return true;
    return loads_tensor(e->pad, t);
}

static int find_var(const Rb *x, const Var *v)
{
    for (int i = x->nmap - 1; i >= 0; i--)
        if (x->from[i] == v) return i;
    return -1;
}

static void push_var(Rb *x, const Var *v, Expr *full, Expr *local)
{
    TD_ASSERT(x->nmap < MAP_MAX);
    x->from[x->nmap] = v;
    x->full[x->nmap] = full;
    x->local[x->nmap] = local;
    x->nmap++;
}

static Tensor *map_tensor(const Rb *x, Tensor *t)
{
    for (int i = x->ntmap - 1; i >= 0; i--)
        if (x->tfrom[i] == t) return x->tto[i];
    return t;
}

/* e under the current substitutions; the tensor IR shares expressions, so changed nodes are
 * copies. The row's loads become loads of the accumulators at the j variable's local index. */
static Expr *clone_expr(Rb *x, Expr *e)
{
    if (!e) return NULL;
    if (e->op == OP_VAR) {
        int i = find_var(x, e->var);
        return i < 0 ? e : x->full[i];
    }
    if (x->hook != HOOK_NONE && e->op == OP_ACCESS && e->tensor == x->row) {
        int i = e->args[0]->op == OP_VAR ? find_var(x, e->args[0]->var) : -1;
        TD_ASSERT(i >= 0 && x->local[i]);  /* checked: the row is read at j only */
        Expr *idx[2] = {x->dst_prefix, x->local[i]};
        return x->dst_prefix ? ir_access(x->m, x->dst, idx, NULL) : ir_access(x->m, x->dst, &idx[1], NULL);
    }
    Expr **args = e->nargs ? arena_array(&x->m->arena, (size_t)e->nargs, sizeof(Expr *)) : NULL;
    bool changed = false;
    for (int i = 0; i < e->nargs; i++) {
        args[i] = clone_expr(x, e->args[i]);
        changed |= args[i] != e->args[i];
    }
    Expr *pad = clone_expr(x, e->pad);
    Tensor *t = e->op == OP_ACCESS ? map_tensor(x, e->tensor) : e->tensor;
    if (!changed && pad == e->pad && t == e->tensor) return e;
    Expr *c = arena_alloc(&x->m->arena, sizeof *c);
    *c = *e;
    c->args = args;
    c->pad = pad;
    c->tensor = t;
    return c;
}

/* ---- statements ----------------------------------------------------------------------------- */

static LStmt *clone_stmt(Rb *x, const LStmt *s);

/* A fresh loop over a fresh variable (a Var is bound by one loop) around body(). */
static Var *fresh_var(Rb *x, VarKind kind, const char *name, Expr *extent)
{
    return ir_var_new(x->m, kind, name, extent);
}

/* One of the j loops, replaced per the hook: in a block, MR unrolled rows of NR columns; in
 * the tail, the last N % NR columns of one row. */
static LStmt *clone_jloop(Rb *x, const LStmt *jl)
{
    const char *n = jl->var->name;
    if (x->hook == HOOK_BLOCK) {
        Var *r = fresh_var(x, VAR_INDEX, arena_printf(&x->m->arena, "%s_in", x->ivar->name), k64(x, MR));
        Var *jj = fresh_var(x, VAR_INDEX, arena_printf(&x->m->arena, "%s_in", n), k64(x, x->nr));
        Expr *re = ir_var(x->m, r), *je = ir_var(x->m, jj);
        /* The epilogue (which may call erf, exp ...) reads a copy of the sums in a vector
         * loop per row, as the unblocked form does: 6 x 32 unrolled scalar calls would be
         * far slower, and indexing acc_blk itself by a loop variable would keep the
         * accumulators of the k loop out of registers. */
        bool epilogue = jl == x->jloops[2];
        Tensor *saved_dst = x->dst;
        if (epilogue) x->dst = x->res;
        Expr *saved_prefix = x->dst_prefix;
        x->dst_prefix = re;
        push_var(x, x->ivar, bin(x, OP_ADD, x->i_base, re), NULL);
        push_var(x, jl->var, bin(x, OP_ADD, x->j_base, je), je);
        LStmt *body = clone_stmt(x, jl->body[0]);
        x->nmap -= 2;
        x->dst_prefix = saved_prefix;
        x->dst = saved_dst;
        if (!epilogue) {
            LStmt *cols = loop_for(x->m, jj, jj->extent, LOOP_UNROLL, false, body);
            return loop_for(x->m, r, r->extent, LOOP_UNROLL, false, cols);
        }
        Var *r2 = fresh_var(x, VAR_INDEX, arena_printf(&x->m->arena, "%s_in", x->ivar->name), k64(x, MR));
        Var *jj2 = fresh_var(x, VAR_INDEX, arena_printf(&x->m->arena, "%s_in", n), k64(x, x->nr));
        Expr *ci[2] = {ir_var(x->m, r2), ir_var(x->m, jj2)};
        LStmt *copy = loop_store(x->m, x->res, ci, ir_access(x->m, x->dst, ci, NULL));
        copy = loop_for(x->m, r2, r2->extent, LOOP_UNROLL, false, loop_for(x->m, jj2, jj2->extent, LOOP_UNROLL, false, copy));
        LStmt *cols = loop_for(x->m, jj, jj->extent, LOOP_VECTOR, false, body);
        LStmt *parts[2] = {copy, loop_for(x->m, r, r->extent, LOOP_SERIAL, false, cols)};
        return loop_seq(x->m, parts, 2);
    }
    Var *jt = fresh_var(x, VAR_INDEX, arena_printf(&x->m->arena, "%s_tail", n), x->j_extent);
    Expr *je = ir_var(x->m, jt);
    push_var(x, jl->var, bin(x, OP_ADD, x->j_base, je), je);
    LStmt *body = clone_stmt(x, jl->body[0]);
    x->nmap--;
    return loop_for(x->m, jt, jt->extent, jl->loop, false, body);
}

static LStmt *clone_stmt(Rb *x, const LStmt *s)
{
    if (x->hook != HOOK_NONE)
        for (int i = 0; i < 3; i++)
            if (s == x->jloops[i]) return clone_jloop(x, s);
    switch (s->kind) {
    case LS_SEQ: {
        LStmt **body = arena_array(&x->m->arena, (size_t)s->nbody, sizeof *body);
        for (int i = 0; i < s->nbody; i++) body[i] = clone_stmt(x, s->body[i]);
        return loop_seq(x->m, body, s->nbody);
    }
    case LS_FOR: {
        Expr *ext = clone_expr(x, s->extent);
        Var *v = fresh_var(x, s->var->kind, s->var->name, ext);
        Expr *ve = ir_var(x->m, v);
        push_var(x, s->var, ve, ve);
        LStmt *body = clone_stmt(x, s->body[0]);
        x->nmap--;
        return loop_for(x->m, v, ext, s->loop, s->reverse, body);
    }
    case LS_STORE: {
        Expr **idx = s->buf->rank ? arena_array(&x->m->arena, (size_t)s->buf->rank, sizeof *idx) : NULL;
        for (int a = 0; a < s->buf->rank; a++) idx[a] = clone_expr(x, s->idx[a]);
        Expr *v = clone_expr(x, s->value);
        if (x->hook == HOOK_NONE || s->buf != x->row) return loop_store(x->m, map_tensor(x, s->buf), idx, v);
        /* the row's element: the accumulator at j's local index */
        int i = s->idx[0]->op == OP_VAR ? find_var(x, s->idx[0]->var) : -1;
        TD_ASSERT(i >= 0 && x->local[i]);
        Expr *di[2] = {x->dst_prefix, x->local[i]};
        return x->dst_prefix ? loop_store(x->m, x->dst, di, v) : loop_store(x->m, x->dst, &di[1], v);
    }
    case LS_IF:
        return loop_if(x->m, clone_expr(x, s->cond), clone_stmt(x, s->body[0]),
                       s->else_body ? clone_stmt(x, s->else_body) : NULL);
    case LS_ALLOC: {
        /* a copy gets its own buffer, as it gets its own variables */
        Tensor *t = s->buf;
        Expr **shape = t->rank ? arena_array(&x->m->arena, (size_t)t->rank, sizeof *shape) : NULL;
        for (int a = 0; a < t->rank; a++) shape[a] = clone_expr(x, t->shape[a]);
        Tensor *c = ir_tensor_new(x->m, t->kind, t->name, t->dtype, t->rank, shape);
        TD_ASSERT(x->ntmap < MAP_MAX);
        x->tfrom[x->ntmap] = t;
        x->tto[x->ntmap++] = c;
        LStmt *body = clone_stmt(x, s->body[0]);
        x->ntmap--;
        return loop_alloc(x->m, c, s->scope, body);
    }
    case LS_BARRIER:
        return (LStmt *)s;
    }
    return (LStmt *)s;
}

/* ---- matching ------------------------------------------------------------------------------- */

/* The single-row form (see the top), its three j loops in jloops, the update's innermost
 * reduction loop's body being jloops[1]. */
static const LStmt *only_child(const LStmt *s)
{
    while (s->kind == LS_SEQ && s->nbody == 1) s = s->body[0];
    return s;
}

static bool match_rows(Rb *x, const LStmt *il, const LStmt **alloc)
{
    const LStmt *al = only_child(il->body[0]);
    if (al->kind != LS_ALLOC || al->buf->rank != 1 || al->scope == MEM_REGISTER) return false;
    const Tensor *row = al->buf;
    const LStmt *seq = al->body[0];
    if (seq->kind != LS_SEQ || seq->nbody != 3) return false;
    const LStmt *init = seq->body[0], *nest = seq->body[1], *fin = seq->body[2];
    if (init->kind != LS_FOR || init->loop != LOOP_VECTOR || fin->kind != LS_FOR || fin->loop != LOOP_SERIAL ||
        fin->reverse || fin->var->kind != VAR_INDEX || !sizes_only(fin->extent) ||
        !ir_exprs_equal(init->extent, fin->extent) || !ir_exprs_equal(row->shape[0], fin->extent))
        return false;
    const LStmt *is = init->body[0];
    if (is->kind != LS_STORE || is->buf != row || is->value->op != OP_CONST || is->idx[0]->op != OP_VAR ||
        is->idx[0]->var != init->var)
        return false;
    const LStmt *s = nest;
    if (s->kind != LS_FOR || s->var->kind != VAR_REDUCE) return false;
    while (s->kind == LS_FOR && s->var->kind == VAR_REDUCE) {
        if (s->reverse || s->loop != LOOP_SERIAL || !sizes_only(s->extent)) return false;
        s = s->body[0];
    }
    const LStmt *ul = s;
    if (ul->kind != LS_FOR || ul->loop != LOOP_VECTOR || !ir_exprs_equal(ul->extent, fin->extent)) return false;
    const LStmt *us = ul->body[0];
    if (us->kind != LS_STORE || us->buf != row || us->idx[0]->op != OP_VAR || us->idx[0]->var != ul->var)
        return false;
    const Expr *v = us->value;
    if (v->nargs != 2 || v->args[0]->op != OP_ACCESS || v->args[0]->tensor != row ||
        v->args[0]->args[0]->op != OP_VAR || v->args[0]->args[0]->var != ul->var || loads_tensor(v->args[1], row))
        return false;
    x->jloops[0] = init;
    x->jloops[1] = ul;
    x->jloops[2] = fin;
    x->row = row;
    *alloc = al;
    return true;
}

/* fin's stores and loads (see the top). stores[] collects the stores to outside buffers. */
typedef struct FinCheck {
    const Var    *i, *j;
    const Tensor *priv[MAP_MAX];
    int           npriv;
    const LStmt  *stores[MAP_MAX];
    int           nstores;
} FinCheck;

static bool is_priv(const FinCheck *f, const Tensor *t)
{
    for (int i = 0; i < f->npriv; i++)
        if (f->priv[i] == t) return true;
    return false;
}

static bool fin_stores_ok(FinCheck *f, const LStmt *s)
{
    switch (s->kind) {
    case LS_SEQ:
        for (int i = 0; i < s->nbody; i++)
            if (!fin_stores_ok(f, s->body[i])) return false;
        return true;
    case LS_ALLOC:
        if (s->buf->rank != 0 || f->npriv == MAP_MAX) return false;  /* a private scalar, any scope */
        f->priv[f->npriv++] = s->buf;
        return fin_stores_ok(f, s->body[0]);
    case LS_IF:
        return fin_stores_ok(f, s->body[0]) && (!s->else_body || fin_stores_ok(f, s->else_body));
    case LS_STORE: {
        if (is_priv(f, s->buf)) return true;
        bool has_i = false, has_j = false;
        for (int a = 0; a < s->buf->rank; a++) {
            const Expr *e = s->idx[a];
            has_i |= e->op == OP_VAR && e->var == f->i;
            has_j |= e->op == OP_VAR && e->var == f->j;
        }
        if (!has_i || !has_j || dtype_bits(s->buf->dtype) < 8 || f->nstores == MAP_MAX) return false;
        f->stores[f->nstores++] = s;
        return true;
    }
    case LS_FOR: case LS_BARRIER:
        return false;
    }
    return false;
}

/* A load of a buffer fin stores must be of the element every store to it writes. */
static bool fin_load_ok(const FinCheck *f, const Expr *e)
{
    if (!e) return true;
    if (e->op == OP_ACCESS)
        for (int i = 0; i < f->nstores; i++) {
            const LStmt *st = f->stores[i];
            if (st->buf != e->tensor) continue;
            for (int a = 0; a < e->nargs; a++)
                if (!ir_exprs_equal(e->args[a], st->idx[a])) return false;
        }
    for (int i = 0; i < e->nargs; i++)
        if (!fin_load_ok(f, e->args[i])) return false;
    return fin_load_ok(f, e->pad);
}

static bool fin_loads_ok(const FinCheck *f, const LStmt *s)
{
    if (!s) return true;
    if (s->kind == LS_STORE) {
        for (int a = 0; a < s->buf->rank; a++)
            if (!fin_load_ok(f, s->idx[a])) return false;
        if (!fin_load_ok(f, s->value)) return false;
        /* two stores to one buffer must write the same element */
        for (int i = 0; i < f->nstores; i++)
            if (f->stores[i]->buf == s->buf)
                for (int a = 0; a < s->buf->rank; a++)
                    if (!ir_exprs_equal(s->idx[a], f->stores[i]->idx[a])) return false;
    }
    if (s->kind == LS_IF && !fin_load_ok(f, s->cond)) return false;
    for (int i = 0; i < s->nbody; i++)
        if (!fin_loads_ok(f, s->body[i])) return false;
    return s->kind != LS_IF || fin_loads_ok(f, s->else_body);
}

/* The reductions load nothing fin stores (interchange's check covered the old j body; this
 * keeps the pass correct on its own). */
static bool red_loads_ok(const FinCheck *f, const Expr *e)
{
    for (int i = 0; i < f->nstores; i++)
        if (loads_tensor(e, f->stores[i]->buf)) return false;
    return true;
}

static int64_t const_or(const Expr *e, int64_t dflt) { return e->op == OP_CONST ? e->value.i : dflt; }

/* ---- the rewrite ---------------------------------------------------------------------------- */

static bool try_loop(Rb *x, LStmt **slot)
{
    LStmt *il = *slot;
    if (il->kind != LS_FOR || il->var->kind != VAR_INDEX || il->reverse ||
        (il->loop != LOOP_SERIAL && il->loop != LOOP_PARALLEL) || !sizes_only(il->extent))
        return false;
    const LStmt *al;
    if (!match_rows(x, il, &al)) return false;
    int bytes = dtype_bits(x->row->dtype) / 8;
    if (bytes != 4 && bytes != 8) return false;
    x->nr = NR_BYTES / bytes;
    const LStmt *fin = x->jloops[2];
    Expr *M = il->extent, *N = fin->extent;
    int64_t mc = const_or(M, -1), nc = const_or(N, -1);
    if ((mc >= 0 && mc < MR) || (nc >= 0 && nc < x->nr)) return false;

    FinCheck f = {.i = il->var, .j = fin->var};
    if (!fin_stores_ok(&f, fin->body[0]) || !fin_loads_ok(&f, fin->body[0]) ||
        !red_loads_ok(&f, x->jloops[1]->body[0]->value))
        return false;

    x->ivar = il->var;
    const char *in = il->var->name, *jn = fin->var->name;
    Expr *mfull = bin(x, OP_DIV, M, k64(x, MR)), *nfull = bin(x, OP_DIV, N, k64(x, x->nr));
    Var *ib = fresh_var(x, VAR_INDEX, arena_printf(&x->m->arena, "%s_blk", in), mfull);
    Var *jb = fresh_var(x, VAR_INDEX, arena_printf(&x->m->arena, "%s_blk", jn), nfull);
    Expr *ibe = ir_var(x->m, ib), *jbe = ir_var(x->m, jb);
    x->i_base = bin(x, OP_MUL, ibe, k64(x, MR));

    /* the blocks of MR x NR */
    Expr *bshape[2] = {k64(x, MR), k64(x, x->nr)};
    Tensor *blk = ir_tensor_new(x->m, TK_TEMP, arena_printf(&x->m->arena, "%s_blk", x->row->name),
                                x->row->dtype, 2, bshape);
    Tensor *res = ir_tensor_new(x->m, TK_TEMP, arena_printf(&x->m->arena, "%s_out", x->row->name),
                                x->row->dtype, 2, bshape);
    x->hook = HOOK_BLOCK;
    x->dst = blk;
    x->res = res;
    x->dst_prefix = NULL;
    x->j_base = bin(x, OP_MUL, jbe, k64(x, x->nr));
    LStmt *blocks = loop_for(x->m, jb, nfull, LOOP_SERIAL, false, clone_stmt(x, al->body[0]));
    LStmt *parts[2] = {blocks, NULL};
    int nparts = 1;

    /* the last N % NR columns of the MR rows, one row at a time */
    if (nc < 0 || nc % x->nr) {
        Var *r = fresh_var(x, VAR_INDEX, arena_printf(&x->m->arena, "%s_in", in), k64(x, MR));
        Expr *tshape = k64(x, x->nr);
        Tensor *trow = ir_tensor_new(x->m, TK_TEMP, x->row->name, x->row->dtype, 1, &tshape);
        x->hook = HOOK_TAIL;
        x->dst = trow;
        x->j_base = bin(x, OP_MUL, nfull, k64(x, x->nr));
        x->j_extent = bin(x, OP_MOD, N, k64(x, x->nr));
        push_var(x, il->var, bin(x, OP_ADD, x->i_base, ir_var(x->m, r)), NULL);
        LStmt *tail = loop_alloc(x->m, trow, MEM_STACK, clone_stmt(x, al->body[0]));
        x->nmap--;
        parts[nparts++] = loop_for(x->m, r, r->extent, LOOP_SERIAL, false, tail);
    }
    LStmt *body = loop_alloc(x->m, blk, MEM_STACK, loop_alloc(x->m, res, MEM_STACK, loop_seq(x->m, parts, nparts)));
    LStmt *outer = loop_for(x->m, ib, mfull, il->loop, false, body);

    /* the last M % MR rows: the row form as it was */
    if (mc < 0 || mc % MR) {
        Expr *mr = bin(x, OP_MOD, M, k64(x, MR));
        Var *it = fresh_var(x, VAR_INDEX, arena_printf(&x->m->arena, "%s_tail", in), mr);
        x->hook = HOOK_NONE;
        push_var(x, il->var, bin(x, OP_ADD, bin(x, OP_MUL, mfull, k64(x, MR)), ir_var(x->m, it)), NULL);
        LStmt *rows = clone_stmt(x, al);
        x->nmap--;
        LStmt *both[2] = {outer, loop_for(x->m, it, mr, LOOP_SERIAL, false, rows)};
        outer = loop_seq(x->m, both, 2);
    }
    TD_ASSERT(x->nmap == 0 && x->ntmap == 0);
    x->hook = HOOK_NONE;
    *slot = outer;
    x->blocked++;
    return true;
}

static void visit(Rb *x, LStmt **slot)
{
    LStmt *s = *slot;
    if (!s) return;
    if (s->kind == LS_FOR && try_loop(x, slot)) return;
    for (int i = 0; i < s->nbody; i++) visit(x, &s->body[i]);
    if (s->kind == LS_IF) visit(x, &s->else_body);
}

int pass_register_block(LoopModule *lm)
{
    /* the tensor module owns the arena the new nodes live in */
    Rb x = {.m = (Module *)lm->ir};
    for (int f = 0; f < lm->nfuncs; f++) visit(&x, &lm->funcs[f]->body);
    return x.blocked;
}
