/* interchange: contractions accumulate a row of outputs at once (loop IR).
 *
 * pass_lower turns c[i, j] = sum[k](a[i, k] * b[k, j]) into
 *
 *     for i { for j { alloc register acc; acc = 0; for k { acc = acc + a[i, k] * b[k, j] }; fin } }
 *
 * where fin is what uses acc (`sum = acc; c_out[i, j] = ...`). The k loop is one dependence
 * chain through acc, and b is walked down a column. This pass rewrites such a j loop into
 *
 *     alloc acc_row: f32[N] {
 *         for j { acc_row[j] = 0 }
 *         for k { for j { acc_row[j] = acc_row[j] + a[i, k] * b[k, j] } }
 *         for j { alloc register acc; acc = acc_row[j]; fin }
 *     }
 *
 * Every output still combines its terms in the same order (k ascending) with the same
 * operations in the same accumulator type; the inner j loop now has independent iterations
 * and contiguous loads, which LLVM's loop vectoriser takes. acc_row has rank 1, so the CPU
 * back end does not mark its updates reassociable (llvm_gen.c: only rank-0 accumulators): the
 * order is the sequential one. That back end does mark the rank-0 accumulator reassociable,
 * so where LLVM vectorised the old k loop (a constant row length, whose strided loads it
 * gathers; or a symbolic one it versioned for stride 1, i.e. N == 1) it summed in partial
 * sums, and the results there change in the last bits, within docs/abi.md's tolerances.
 *
 * A j loop is rewritten when (all checked here):
 *   - it is a forward serial loop over a VAR_INDEX variable whose extent uses only sizes, and
 *     its nearest enclosing loop is one too (the outer index loop of the definition): that
 *     loop stays the one pass_parallelize runs across threads, and the row is allocated
 *     per iteration of it. A kernel whose `parallel` directive names j is left alone;
 *   - its body holds, among its statements (under allocations and sequences, not in inner
 *     loops or ifs), the lowering's reduction block: a rank-0 register acc, then `acc = c`
 *     (a constant), then a perfect nest of reduction loops (VAR_REDUCE, forward, extents free
 *     of j) around the single store `acc = acc OP e`, OP one of + * max min (sum, mean,
 *     prod, max, min; not argmax/argmin, whose blocks look different, nor any/all);
 *   - e uses j in load indices only as the whole last index and nowhere else in an index: a
 *     strided load (w[j, k] of a linear layer x @ w^T) would make the row loop slower, so
 *     those nests stay as they are; and at least one such load also has a reduction variable
 *     at another index (b[k, j]: the column walk this pass turns into rows). A constant
 *     extent of 1 is left alone too;
 *   - e loads nothing the j loop stores or allocates, so the reductions may run before the
 *     rest of the body (they write only their own accumulator).
 * Each qualifying block of the body gets its own row and hoisted nest, in order; the rest of
 * the body stays in the final j loop. The row is on the stack when its size is a constant
 * of at most STACK_MAX_BYTES, else on the heap (the CPU back end frees it after each
 * iteration of the enclosing loop; in an outlined parallel body it is private to the
 * iteration). CPU only: the CUDA back end cannot allocate a heap row inside a kernel, so
 * ir_lower_module skips this pass for it (LowerOptions.gpu). */
#include "passes.h"

#include <string.h>

/* The CPU back end's limit for a constant-size buffer on the stack (llvm_gen.c). */
enum { STACK_MAX_BYTES = 16384 };

typedef struct Interchange {
    Module       *m;
    const Kernel *k;
    Arena        *scratch;
    int           rewritten;
    /* per j loop being checked: buffers its body stores to or allocates (per Tensor id) */
    char         *touched;
    int           nids;
} Interchange;

/* One reduction block of a j loop's body. */
typedef struct Block {
    LStmt  *alloc;   /* alloc register acc { seq[init, nest, fin...] } */
    LStmt  *init;    /* acc = c */
    LStmt  *nest;    /* the outermost reduction loop */
    LStmt  *inner;   /* the innermost one; its body is the update */
    LStmt  *update;  /* acc = acc OP e */
} Block;

/* ---- predicates ----------------------------------------------------------------------------- */

static bool uses_var(const Expr *e, const Var *v)
{
    if (!e) return false;
    if (e->op == OP_VAR && e->var == v) return true;
    for (int i = 0; i < e->nargs; i++)
        if (uses_var(e->args[i], v)) return true;
    return uses_var(e->pad, v);
}

static bool uses_reduce_var(const Expr *e)
{
    if (!e) return false;
    if (e->op == OP_VAR && e->var->kind == VAR_REDUCE) return true;
    for (int i = 0; i < e->nargs; i++)
        if (uses_reduce_var(e->args[i])) return true;
    return uses_reduce_var(e->pad);
}

static bool sizes_only(const Expr *e)
{
    if (!e) return true;
    if (e->op == OP_VAR && e->var->kind != VAR_SIZE) return false;
    if (e->op == OP_ACCESS) return false;
    for (int i = 0; i < e->nargs; i++)
        if (!sizes_only(e->args[i])) return false;
    return true;
}

static void mark_touched(Interchange *x, const LStmt *s)
{
    if (!s) return;
    if (s->kind == LS_STORE || s->kind == LS_ALLOC) {
        TD_ASSERT(s->buf->id >= 0 && s->buf->id < x->nids);
        x->touched[s->buf->id] = 1;
    }
    for (int i = 0; i < s->nbody; i++) mark_touched(x, s->body[i]);
    if (s->kind == LS_IF) mark_touched(x, s->else_body);
}

/* e's loads: none of a touched buffer, j only as a whole last index. *rows counts the column
 * walks the rewrite turns into rows: j last and a reduction variable at another index (a
 * load like s[j] is invariant in k: the k loop is no slower for it). */
static bool loads_ok(const Interchange *x, const Expr *e, const Var *j, int *rows)
{
    if (!e) return true;
    if (e->op == OP_ACCESS) {
        if (x->touched[e->tensor->id]) return false;
        int last = e->nargs - 1;
        for (int a = 0; a < last; a++)
            if (uses_var(e->args[a], j)) return false;
        if (last >= 0 && uses_var(e->args[last], j)) {
            if (!(e->args[last]->op == OP_VAR && e->args[last]->var == j)) return false;
            bool walks = false;
            for (int a = 0; a < last; a++) walks |= uses_reduce_var(e->args[a]);
            *rows += walks;
        }
    }
    for (int i = 0; i < e->nargs; i++)
        if (!loads_ok(x, e->args[i], j, rows)) return false;
    return loads_ok(x, e->pad, j, rows);
}

static bool is_load_of(const Expr *e, const Tensor *t) { return e->op == OP_ACCESS && e->tensor == t; }

/* Is alloc the lowering's reduction block, and one this pass may hoist out of loop j? */
static bool match_block(const Interchange *x, LStmt *alloc, const Var *j, Block *b)
{
    const Tensor *acc = alloc->buf;
    if (alloc->scope != MEM_REGISTER || acc->rank != 0 || acc->dtype == DT_BOOL || dtype_bits(acc->dtype) < 8)
        return false;
    LStmt *seq = alloc->body[0];
    if (seq->kind != LS_SEQ || seq->nbody < 2) return false;
    LStmt *init = seq->body[0], *nest = seq->body[1];
    if (init->kind != LS_STORE || init->buf != acc || init->value->op != OP_CONST || nest->kind != LS_FOR)
        return false;
    LStmt *s = nest, *inner = NULL;
    while (s->kind == LS_FOR) {
        if (s->var->kind != VAR_REDUCE || s->reverse || s->loop != LOOP_SERIAL || uses_var(s->extent, j) ||
            !sizes_only(s->extent))
            return false;
        inner = s;
        s = s->body[0];
    }
    if (s->kind != LS_STORE || s->buf != acc) return false;
    const Expr *v = s->value;
    if (v->op != OP_ADD && v->op != OP_MUL && v->op != OP_MAX && v->op != OP_MIN) return false;
    if (!is_load_of(v->args[0], acc)) return false;
    int rows = 0;
    if (!loads_ok(x, v->args[1], j, &rows) || rows == 0) return false;
    *b = (Block){alloc, init, nest, inner, s};
    return true;
}

/* The reduction blocks among the statements of a j loop's body (not inside its loops or ifs). */
static void find_blocks(Interchange *x, LStmt *s, const Var *j, PtrVec *out)
{
    if (s->kind == LS_SEQ) {
        for (int i = 0; i < s->nbody; i++) find_blocks(x, s->body[i], j, out);
    } else if (s->kind == LS_ALLOC) {
        Block b;
        if (match_block(x, s, j, &b)) {
            Block *p = arena_alloc(x->scratch, sizeof *p);
            *p = b;
            pv_push(x->scratch, out, p);
        } else {
            find_blocks(x, s->body[0], j, out);
        }
    }
}

static bool named_parallel(const Kernel *k, const Var *v)
{
    for (int d = 0; d < k->nsched; d++)
        if (k->sched[d].kind == SCHED_PARALLEL && strcmp(k->sched[d].var, v->name) == 0) return true;
    return false;
}

/* ---- rewriting ------------------------------------------------------------------------------ */

/* e with j replaced by jr and loads of acc by row[jr]; expressions are shared with the tensor
 * IR, so changed nodes are copies. */
static Expr *subst(Interchange *x, Expr *e, const Var *j, const Tensor *acc, Tensor *row, Expr *jr)
{
    if (!e) return NULL;
    if (e->op == OP_VAR) return e->var == j ? jr : e;
    if (is_load_of(e, acc)) return ir_access(x->m, row, &jr, NULL);
    Expr **args = e->nargs ? arena_array(&x->m->arena, (size_t)e->nargs, sizeof(Expr *)) : NULL;
    bool changed = false;
    for (int i = 0; i < e->nargs; i++) {
        args[i] = subst(x, e->args[i], j, acc, row, jr);
        changed |= args[i] != e->args[i];
    }
    Expr *pad = subst(x, e->pad, j, acc, row, jr);
    changed |= pad != e->pad;
    if (!changed) return e;
    Expr *c = arena_alloc(&x->m->arena, sizeof *c);
    *c = *e;
    c->args = args;
    c->pad = pad;
    return c;
}

static MemScope scope_for(const Tensor *t)
{
    const Expr *d = t->shape[0];
    size_t bytes;
    if (d->op != OP_CONST || d->value.i < 0 || !dtype_storage_bytes(t->dtype, (size_t)d->value.i, &bytes) ||
        bytes > STACK_MAX_BYTES)
        return MEM_HEAP;
    return MEM_STACK;
}

/* A fresh loop over j's range around one store to row[j'] (the new loops get their own
 * variables: a Var is bound by one loop). It is LOOP_VECTOR: its iterations are independent
 * and it is what the rewrite is for, and pass_parallelize leaves it alone, so a row loop
 * inside the serial k loop never becomes a fork and join per k. */
static LStmt *row_loop(Interchange *x, const LStmt *jl, Tensor *row, Expr *value, const Tensor *acc)
{
    Var *jr = ir_var_new(x->m, VAR_INDEX, jl->var->name, jl->extent);
    Expr *je = ir_var(x->m, jr);
    Expr *v = subst(x, value, jl->var, acc, row, je);
    return loop_for(x->m, jr, jl->extent, LOOP_VECTOR, false, loop_store(x->m, row, &je, v));
}

/* Rewrites loop *slot (see the top); false when it does not qualify. */
static bool try_loop(Interchange *x, LStmt **slot)
{
    LStmt *jl = *slot;
    Var *j = jl->var;
    x->nids = x->m->next_id;  /* this pass makes tensors as it goes */
    x->touched = arena_array(x->scratch, (size_t)x->nids + 1, 1);
    mark_touched(x, jl->body[0]);
    PtrVec blocks = {0};
    find_blocks(x, jl->body[0], j, &blocks);
    if (!blocks.len) return false;

    PtrVec seq = {0}, rows = {0};
    for (int i = 0; i < blocks.len; i++) {
        Block *b = blocks.items[i];
        const Tensor *acc = b->alloc->buf;
        Expr *shape = jl->extent;
        Tensor *row = ir_tensor_new(x->m, TK_TEMP, arena_printf(&x->m->arena, "%s_row", acc->name), acc->dtype, 1, &shape);
        pv_push(x->scratch, &rows, row);
        pv_push(x->scratch, &seq, row_loop(x, jl, row, b->init->value, acc));
        /* the nest moves out of the j loop, with a row loop as its innermost body */
        b->inner->body[0] = row_loop(x, jl, row, b->update->value, acc);
        pv_push(x->scratch, &seq, b->nest);
        /* what stays: acc starts from the row's finished value, the nest is gone */
        Expr *je = ir_var(x->m, j);
        b->init->value = ir_access(x->m, row, &je, NULL);
        LStmt *bs = b->alloc->body[0];
        memmove(&bs->body[1], &bs->body[2], (size_t)(bs->nbody - 2) * sizeof(LStmt *));
        bs->nbody--;
    }
    pv_push(x->scratch, &seq, jl);
    LStmt *out = loop_seq(x->m, (LStmt **)seq.items, seq.len);
    for (int i = rows.len - 1; i >= 0; i--) out = loop_alloc(x->m, rows.items[i], scope_for(rows.items[i]), out);
    *slot = out;
    x->rewritten++;
    return true;
}

static bool candidate(const Interchange *x, const LStmt *s, const LStmt *outer)
{
    /* a row of one gains nothing */
    bool one = s->kind == LS_FOR && s->extent->op == OP_CONST && s->extent->value.i <= 1;
    return s->kind == LS_FOR && outer && outer->var->kind == VAR_INDEX && s->var->kind == VAR_INDEX &&
           s->loop == LOOP_SERIAL && !s->reverse && !one && sizes_only(s->extent) && !named_parallel(x->k, s->var);
}

/* outer: the nearest loop around *slot, or NULL. */
static void visit(Interchange *x, LStmt **slot, const LStmt *outer)
{
    LStmt *s = *slot;
    if (!s) return;
    if (candidate(x, s, outer) && try_loop(x, slot)) return;  /* its body's nests are reductions now */
    const LStmt *here = s->kind == LS_FOR ? s : outer;
    for (int i = 0; i < s->nbody; i++) visit(x, &s->body[i], here);
    if (s->kind == LS_IF) visit(x, &s->else_body, here);
}

int pass_interchange(LoopModule *lm)
{
    Arena scratch;
    arena_init(&scratch);
    /* the tensor module owns the arena the new nodes live in */
    Interchange x = {.m = (Module *)lm->ir, .scratch = &scratch};
    for (int f = 0; f < lm->nfuncs; f++) {
        x.k = lm->funcs[f]->kernel;
        visit(&x, &lm->funcs[f]->body, NULL);
    }
    arena_free(&scratch);
    return x.rewritten;
}
