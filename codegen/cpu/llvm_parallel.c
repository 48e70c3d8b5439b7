/* llvm_parallel: LOOP_PARALLEL loops on the runtime's threads.
 *
 * A parallel loop `parallel for v < n { B }` of a kernel function becomes
 *
 *     closure = { what B reads from outside: size and outer loop variables, buffer
 *                 pointers and dims, outer scalars by value, the failure flag's address };
 *     if (work(n, B) >= LOOP_PARALLEL_MIN_WORK) tdsl_parallel_for(n, body, &closure);
 *     else                                      body(&closure, 0, n);
 *
 * and an internal function that runs iterations [begin, end):
 *
 *     void body(ptr noalias readonly closure, i64 begin, i64 end)
 *         { load the closure; for v in [begin, end) { B } }
 *
 * B is emitted by the ordinary statement code (llvm_gen.c) inside body, so whatever B
 * allocates (the lowering's accumulator registers, temporaries) is private to an iteration,
 * as in the serial loop, and every iteration runs exactly the serial code: the results are
 * the same bit for bit at any thread count. The closure is a struct on the kernel's stack;
 * tdsl_parallel_for (runtime/parallel.c) returns only after the last chunk. Constants are
 * not copied: body uses them directly, so constant dims still fold.
 *
 *   - Perfectly nested parallel loops (`parallel b, h` on y[b, h, ...]) whose extents do not
 *     depend on one another are collapsed into one range of n_b * n_h iterations; body
 *     walks its chunk row by row: one division for the first (b, h) of a row, then an
 *     ordinary loop over h to the end of the row or the chunk.
 *   - A parallel loop inside an outlined body runs serially there: the threads are busy.
 *   - A reverse parallel loop runs forward: its iterations are independent.
 *   - work() is the estimate passes/parallelize.c uses, computed from the extents known at
 *     the loop, so that small instances of kernels with symbolic sizes stay on the calling
 *     thread; when an inner extent depends on an inner loop variable the loop always goes to
 *     tdsl_parallel_for (which runs a single iteration directly).
 *   - A failed allocation inside body frees body's own temporaries, sets the kernel's flag
 *     (an atomic store) and returns; after the join the kernel frees its temporaries and
 *     returns -1, as for any failed allocation.
 *
 * The contract of LOOP_PARALLEL (what passes/parallelize.c proves) is that iterations write
 * disjoint elements and read nothing another iteration writes; a body that stores to a
 * scalar declared outside it breaks it and is refused here. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

/* What one outlined body reads from the kernel function. */
typedef struct Outline {
    Cg            *g;
    char          *inner;     /* per id: a Var bound or a Tensor allocated inside the body */
    char          *used;      /* per id: already listed in vars / bufs */
    const Var    **vars;      /* the variables the body reads from outside */
    int            nvars;
    const Tensor **bufs;      /* the buffers it reads or writes from outside */
    int            nbufs;
    bool          *written;   /* per entry of bufs: the body stores to it */
    bool           allocs;    /* the body allocates a buffer that may live on the heap */
    LLVMValueRef  *fields;    /* the closure: values of the kernel function, one per field */
    int            nfields;
    int            capfields;
} Outline;

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size);
    if (!p) td_internal_error(__FILE__, __LINE__, "out of memory");
    return p;
}

/* ---- what the body reads ------------------------------------------------------------------ */

static void mark_inner(Outline *o, const LStmt *s)
{
    if (!s) return;
    if (s->kind == LS_FOR) o->inner[s->var->id] = 1;
    if (s->kind == LS_ALLOC) {
        o->inner[s->buf->id] = 1;
        o->allocs |= s->buf->rank > 0;
    }
    for (int i = 0; i < s->nbody; i++) mark_inner(o, s->body[i]);
    if (s->kind == LS_IF) mark_inner(o, s->else_body);
}

static void use_var(Outline *o, const Var *v)
{
    TD_ASSERT(v->id >= 0 && v->id < o->g->nids);
    if (o->inner[v->id] || o->used[v->id]) return;
    o->used[v->id] = 1;
    o->vars[o->nvars++] = v;
}

static void use_buf(Outline *o, const Tensor *t, bool write)
{
    TD_ASSERT(t->id >= 0 && t->id < o->g->nids);
    if (o->inner[t->id]) return;
    if (!o->used[t->id]) {
        o->used[t->id] = 1;
        o->written[o->nbufs] = false;
        o->bufs[o->nbufs++] = t;
    }
    if (write)
        for (int i = 0; i < o->nbufs; i++)
            if (o->bufs[i] == t) o->written[i] = true;
}

static void use_expr(Outline *o, const Expr *e)
{
    if (!e) return;
    if (e->op == OP_VAR) use_var(o, e->var);
    if (e->op == OP_ACCESS) use_buf(o, e->tensor, false);
    for (int i = 0; i < e->nargs; i++) use_expr(o, e->args[i]);
    use_expr(o, e->pad);
}

static void use_stmt(Outline *o, const LStmt *s)
{
    if (!s) return;
    switch (s->kind) {
    case LS_SEQ: break;
    case LS_FOR: use_expr(o, s->extent); break;
    case LS_STORE:
        use_buf(o, s->buf, true);
        for (int a = 0; a < s->buf->rank; a++) use_expr(o, s->idx[a]);
        use_expr(o, s->value);
        break;
    case LS_IF:
        use_expr(o, s->cond);
        use_stmt(o, s->else_body);
        break;
    case LS_ALLOC:
        for (int a = 0; a < s->buf->rank; a++) use_expr(o, s->buf->shape[a]);
        break;
    case LS_BARRIER: break;
    }
    for (int i = 0; i < s->nbody; i++) use_stmt(o, s->body[i]);
}

/* The closure field holding v, or -1 for a constant (used as it is). */
static int field_of(Outline *o, LLVMValueRef v)
{
    if (LLVMIsConstant(v)) return -1;
    for (int i = 0; i < o->nfields; i++)
        if (o->fields[i] == v) return i;
    if (o->nfields == o->capfields) {
        o->capfields = o->capfields ? 2 * o->capfields : 16;
        o->fields = realloc(o->fields, (size_t)o->capfields * sizeof *o->fields);
        if (!o->fields) td_internal_error(__FILE__, __LINE__, "out of memory");
    }
    o->fields[o->nfields] = v;
    return o->nfields++;
}

/* ---- the work estimate -------------------------------------------------------------------- */

/* Whether e can be evaluated here: every variable it names has a value. */
static bool known_here(Cg *g, const Expr *e)
{
    if (!e) return true;
    if (e->op == OP_VAR && !g->vals[e->var->id]) return false;
    if (e->op == OP_ACCESS) return false;
    for (int i = 0; i < e->nargs; i++)
        if (!known_here(g, e->args[i])) return false;
    return true;
}

/* max(n, 0) as a double. */
static LLVMValueRef trips_f64(Cg *g, LLVMValueRef n)
{
    LLVMValueRef pos = LLVMBuildICmp(g->b, LLVMIntSGT, n, cg_i64(g, 0), "");
    n = LLVMBuildSelect(g->b, pos, n, cg_i64(g, 0), "");
    return LLVMBuildSIToFP(g->b, n, g->f64, "");
}

/* The stores s makes, as an f64 in the kernel function (the counting of ir.h's
 * LOOP_PARALLEL_MIN_WORK), or NULL when an extent depends on a variable bound inside. */
static LLVMValueRef work_of(Cg *g, const LStmt *s)
{
    LLVMValueRef w = LLVMConstReal(g->f64, 0);
    switch (s->kind) {
    case LS_SEQ:
        for (int i = 0; i < s->nbody; i++) {
            LLVMValueRef c = work_of(g, s->body[i]);
            if (!c) return NULL;
            w = LLVMBuildFAdd(g->b, w, c, "");
        }
        return w;
    case LS_FOR: {
        if (!known_here(g, s->extent)) return NULL;
        LLVMValueRef c = work_of(g, s->body[0]);
        if (!c) return NULL;
        return LLVMBuildFMul(g->b, trips_f64(g, cg_size(g, s->extent)), c, "");
    }
    case LS_STORE: return LLVMConstReal(g->f64, 1);
    case LS_IF: {
        LLVMValueRef t = work_of(g, s->body[0]), e = s->else_body ? work_of(g, s->else_body) : w;
        return t && e ? LLVMBuildFAdd(g->b, t, e, "") : NULL;
    }
    case LS_ALLOC: return work_of(g, s->body[0]);
    case LS_BARRIER: return w;
    }
    return NULL;
}

/* ---- collapsing ------------------------------------------------------------------------- */

static bool expr_uses(const Expr *e, const Var *v)
{
    if (!e) return false;
    if (e->op == OP_VAR && e->var == v) return true;
    for (int i = 0; i < e->nargs; i++)
        if (expr_uses(e->args[i], v)) return true;
    return expr_uses(e->pad, v);
}

static const LStmt *only_child(const LStmt *s)
{
    while (s->kind == LS_SEQ && s->nbody == 1) s = s->body[0];
    return s;
}

/* The perfectly nested parallel loops from s inward whose extents do not name the loops
 * around them: chain[0] = s. */
static int parallel_chain(const LStmt *s, const LStmt **chain)
{
    int n = 0;
    chain[n++] = s;
    for (;;) {
        const LStmt *in = only_child(chain[n - 1]->body[0]);
        if (n == IR_MAX_RANK || in->kind != LS_FOR || in->loop != LOOP_PARALLEL) return n;
        for (int i = 0; i < n; i++)
            if (expr_uses(in->extent, chain[i]->var)) return n;
        chain[n++] = in;
    }
}

/* In body: for f in [begin, end) over the collapsed chain, row by row along the innermost
 * loop. ext[i] are the chain's extents (clamped at 0, their product is end's bound). */
static void emit_rows(Cg *g, const LStmt **chain, int n, LLVMValueRef *ext, LLVMValueRef begin,
                      LLVMValueRef end, const LStmt *inner)
{
    LLVMBasicBlockRef pre = LLVMGetInsertBlock(g->b);
    LLVMBasicBlockRef rows = cg_block(g, "rows"), done = cg_block(g, "rows.done");
    LLVMBuildCondBr(g->b, LLVMBuildICmp(g->b, LLVMIntSLT, begin, end, ""), rows, done);
    LLVMPositionBuilderAtEnd(g->b, rows);
    LLVMValueRef f = LLVMBuildPhi(g->b, g->i64, "flat");
    LLVMAddIncoming(f, &begin, &pre, 1);
    /* f = q * ext[n-1] + lo; q spells the outer coordinates, innermost last */
    LLVMValueRef last = ext[n - 1];
    LLVMValueRef q = LLVMBuildUDiv(g->b, f, last, "");
    LLVMValueRef lo = LLVMBuildURem(g->b, f, last, "");
    LLVMValueRef left = LLVMBuildAdd(g->b, lo, LLVMBuildSub(g->b, end, f, ""), "");
    LLVMValueRef hi = LLVMBuildSelect(g->b, LLVMBuildICmp(g->b, LLVMIntULT, left, last, ""), left, last, "");
    LLVMValueRef saved[IR_MAX_RANK];
    for (int i = n - 2; i >= 0; i--) {
        saved[i] = g->vals[chain[i]->var->id];
        if (i == 0) {
            g->vals[chain[i]->var->id] = q;
        } else {
            g->vals[chain[i]->var->id] = LLVMBuildURem(g->b, q, ext[i], "");
            q = LLVMBuildUDiv(g->b, q, ext[i], "");
        }
    }
    cg_emit_range(g, chain[n - 1]->var, lo, hi, false, LOOP_SERIAL, inner);
    for (int i = 0; i < n - 1; i++) g->vals[chain[i]->var->id] = saved[i];
    LLVMValueRef next = LLVMBuildAdd(g->b, f, LLVMBuildSub(g->b, hi, lo, ""), "");
    LLVMAddIncoming(f, &next, (LLVMBasicBlockRef[]){LLVMGetInsertBlock(g->b)}, 1);
    LLVMBuildCondBr(g->b, LLVMBuildICmp(g->b, LLVMIntSLT, next, end, ""), rows, done);
    LLVMPositionBuilderAtEnd(g->b, done);
}

/* ---- the outlined function ---------------------------------------------------------------- */

/* Field numbers: per var of o, and per buffer its pointer (or scalar value) then its dims. */
typedef struct Layout {
    int *var_field;                       /* per o->vars entry */
    int (*buf_field)[1 + IR_MAX_RANK];    /* per o->bufs entry: [0] ptr or value, [1 + a] dim a */
    LLVMValueRef *scalar;                 /* per o->bufs entry: a kernel scalar's value, or NULL */
    int  ext_field[IR_MAX_RANK];          /* the chain's extents (collapsed chains only) */
    int  flag_field;                      /* the failure flag's address, or -1 */
} Layout;

/* In body: field f as loaded from the closure, or outer itself when it is a constant. */
static LLVMValueRef field_value(LLVMValueRef *loaded, int f, LLVMValueRef outer)
{
    return f < 0 ? outer : loaded[f];
}

/* Builds `void body(closure, begin, end)`; returns it. The builder is left where it was. */
static LLVMValueRef emit_body_fn(Cg *g, Outline *o, const Layout *lay, LLVMTypeRef cty, const LStmt **chain,
                                 int nchain, LLVMValueRef *ext, const LStmt *inner)
{
    LLVMTypeRef params[3] = {g->ptr, g->i64, g->i64};
    LLVMTypeRef fty = LLVMFunctionType(LLVMVoidTypeInContext(g->ctx), params, 3, 0);
    StrBuf name = {0};
    cpu_symbol_name(g->k->name, &name);
    sb_puts(&name, ".parallel");
    LLVMValueRef fn = LLVMAddFunction(g->mod, sb_cstr(&name), fty);
    sb_free(&name);
    LLVMSetLinkage(fn, LLVMInternalLinkage);
    cg_fn_attr(g, fn, LLVMAttributeFunctionIndex, "nounwind");
    cg_fn_attr(g, fn, 1, "noalias");
    cg_fn_attr(g, fn, 1, "nocapture");
    cg_fn_attr(g, fn, 1, "readonly");
    cg_target_attrs(g, fn);
    LLVMValueRef cl = LLVMGetParam(fn, 0), begin = LLVMGetParam(fn, 1), end = LLVMGetParam(fn, 2);
    LLVMSetValueName2(cl, "closure", 7);
    LLVMSetValueName2(begin, "begin", 5);
    LLVMSetValueName2(end, "end", 3);

    /* this function's state; the kernel's comes back at the end */
    LLVMBasicBlockRef here = LLVMGetInsertBlock(g->b);
    LLVMValueRef saved_fn = g->fn, saved_flag = g->fail_flag;
    LLVMBasicBlockRef saved_entry = g->entry;
    int saved_base = g->heap_base;
    LLVMValueRef *saved_vals = xcalloc((size_t)g->nids + 1, sizeof *saved_vals);
    CgBuf *saved_bufs = xcalloc((size_t)g->nids + 1, sizeof *saved_bufs);
    memcpy(saved_vals, g->vals, (size_t)g->nids * sizeof *saved_vals);
    memcpy(saved_bufs, g->bufs, (size_t)g->nids * sizeof *saved_bufs);
    memset(g->vals, 0, (size_t)g->nids * sizeof *g->vals);
    memset(g->bufs, 0, (size_t)g->nids * sizeof *g->bufs);
    g->fn = fn;
    g->entry = cg_block(g, "entry");
    g->heap_base = g->nheap;
    g->in_parallel = true;
    LLVMBasicBlockRef start = cg_block(g, "start");
    LLVMPositionBuilderAtEnd(g->b, start);

    LLVMValueRef *loaded = xcalloc((size_t)o->nfields + 1, sizeof *loaded);
    for (int f = 0; f < o->nfields; f++) {
        LLVMValueRef p = LLVMBuildStructGEP2(g->b, cty, cl, (unsigned)f, "");
        loaded[f] = LLVMBuildLoad2(g->b, LLVMTypeOf(o->fields[f]), p, "");
    }
    for (int i = 0; i < o->nvars; i++) {
        int id = o->vars[i]->id;
        g->vals[id] = field_value(loaded, lay->var_field[i], saved_vals[id]);
    }
    for (int i = 0; i < o->nbufs; i++) {
        const Tensor *t = o->bufs[i];
        const CgBuf *out = &saved_bufs[t->id];
        CgBuf *cb = &g->bufs[t->id];
        if (out->reg) {  /* a scalar of the kernel, read only: a private copy SROA can promote */
            LLVMTypeRef rt = cg_reg_type(g, t->dtype);
            cb->ptr = cg_entry_alloca(g, rt, 1, 8);
            cb->reg = true;
            LLVMBuildStore(g->b, field_value(loaded, lay->buf_field[i][0], lay->scalar[i]), cb->ptr);
            continue;
        }
        cb->ptr = field_value(loaded, lay->buf_field[i][0], out->ptr);
        for (int a = 0; a < t->rank; a++) cb->dims[a] = field_value(loaded, lay->buf_field[i][1 + a], out->dims[a]);
    }
    g->fail_flag = lay->flag_field >= 0 ? loaded[lay->flag_field] : NULL;

    if (nchain == 1) {
        cg_emit_range(g, chain[0]->var, begin, end, false, LOOP_SERIAL, inner);
    } else {
        LLVMValueRef bext[IR_MAX_RANK];
        for (int i = 0; i < nchain; i++) bext[i] = field_value(loaded, lay->ext_field[i], ext[i]);
        emit_rows(g, chain, nchain, bext, begin, end, inner);
    }
    LLVMBuildRetVoid(g->b);
    LLVMPositionBuilderAtEnd(g->b, g->entry);
    LLVMBuildBr(g->b, start);

    free(loaded);
    memcpy(g->vals, saved_vals, (size_t)g->nids * sizeof *saved_vals);
    memcpy(g->bufs, saved_bufs, (size_t)g->nids * sizeof *saved_bufs);
    free(saved_vals);
    free(saved_bufs);
    g->fn = saved_fn;
    g->entry = saved_entry;
    g->heap_base = saved_base;
    g->fail_flag = saved_flag;
    g->in_parallel = false;
    LLVMPositionBuilderAtEnd(g->b, here);
    return fn;
}

/* ---- the call ----------------------------------------------------------------------------- */

void cg_emit_parallel(Cg *g, const LStmt *s)
{
    TD_ASSERT(!g->in_parallel);
    const LStmt *chain[IR_MAX_RANK];
    int nchain = parallel_chain(s, chain);
    const LStmt *inner = chain[nchain - 1]->body[0];

    Outline o = {.g = g};
    o.inner = xcalloc((size_t)g->nids + 1, 1);
    o.used = xcalloc((size_t)g->nids + 1, 1);
    o.vars = xcalloc((size_t)g->nids + 1, sizeof *o.vars);
    o.bufs = xcalloc((size_t)g->nids + 1, sizeof *o.bufs);
    o.written = xcalloc((size_t)g->nids + 1, sizeof *o.written);
    for (int i = 0; i < nchain; i++) o.inner[chain[i]->var->id] = 1;
    mark_inner(&o, inner);
    use_stmt(&o, inner);

    /* the closure's values, computed in the kernel function */
    Layout lay = {.flag_field = -1};
    lay.var_field = xcalloc((size_t)o.nvars + 1, sizeof *lay.var_field);
    lay.buf_field = xcalloc((size_t)o.nbufs + 1, sizeof *lay.buf_field);
    lay.scalar = xcalloc((size_t)o.nbufs + 1, sizeof *lay.scalar);
    for (int i = 0; i < o.nvars && !g->failed; i++) {
        LLVMValueRef v = g->vals[o.vars[i]->id];
        if (!v) cg_fail(g, "variable %s is used where it has no value", o.vars[i]->name);
        else lay.var_field[i] = field_of(&o, v);
    }
    for (int i = 0; i < o.nbufs && !g->failed; i++) {
        const Tensor *t = o.bufs[i];
        const CgBuf *cb = &g->bufs[t->id];
        if (!cb->ptr) {
            cg_fail(g, "parallel loop uses %s, which has no storage here", t->name);
        } else if (cb->reg && o.written[i]) {
            cg_fail(g, "parallel loop over %s stores to the scalar %s declared outside it", s->var->name, t->name);
        } else if (cb->reg) {
            lay.scalar[i] = LLVMBuildLoad2(g->b, cg_reg_type(g, t->dtype), cb->ptr, t->name);
            lay.buf_field[i][0] = field_of(&o, lay.scalar[i]);
        } else {
            lay.buf_field[i][0] = field_of(&o, cb->ptr);
            for (int a = 0; a < t->rank; a++) lay.buf_field[i][1 + a] = field_of(&o, cb->dims[a]);
        }
    }
    LLVMValueRef ext[IR_MAX_RANK], n = NULL;
    for (int i = 0; i < nchain && !g->failed; i++) ext[i] = cg_size(g, chain[i]->extent);
    LLVMValueRef work = g->failed ? NULL : work_of(g, inner);
    if (g->failed) goto out;
    if (nchain == 1) {
        n = ext[0];
    } else {
        /* extents clamped at 0; their product bounds the elements of the buffers the loops
         * index, so it cannot overflow for buffers that exist: if it does, fail as for a
         * temporary whose size overflows */
        LLVMValueRef bad = LLVMConstInt(g->i1, 0, 0);
        n = cg_i64(g, 1);
        for (int i = 0; i < nchain; i++) {
            LLVMValueRef pos = LLVMBuildICmp(g->b, LLVMIntSGT, ext[i], cg_i64(g, 0), "");
            ext[i] = LLVMBuildSelect(g->b, pos, ext[i], cg_i64(g, 0), "");
            lay.ext_field[i] = field_of(&o, ext[i]);
            LLVMValueRef args[2] = {n, ext[i]};
            LLVMValueRef r = cg_intrinsic(g, "llvm.smul.with.overflow", &g->i64, 1, args, 2);
            n = LLVMBuildExtractValue(g->b, r, 0, "");
            bad = LLVMBuildOr(g->b, bad, LLVMBuildExtractValue(g->b, r, 1, ""), "");
        }
        if (!LLVMIsConstant(bad) || LLVMConstIntGetZExtValue(bad))
            cg_check_or_fail(g, LLVMBuildNot(g->b, bad, ""), cg_fail_block(g));
    }
    if (work) work = LLVMBuildFMul(g->b, trips_f64(g, n), work, "");
    LLVMValueRef flag = NULL;
    if (o.allocs) {
        flag = cg_entry_alloca(g, g->i32, 1, 4);
        lay.flag_field = field_of(&o, flag);
    }

    /* the closure's type and the body */
    LLVMTypeRef *types = xcalloc((size_t)o.nfields + 1, sizeof *types);
    for (int f = 0; f < o.nfields; f++) types[f] = LLVMTypeOf(o.fields[f]);
    LLVMTypeRef cty = LLVMStructTypeInContext(g->ctx, types, (unsigned)o.nfields, 0);
    free(types);
    LLVMValueRef body = emit_body_fn(g, &o, &lay, cty, chain, nchain, ext, inner);

    /* fill the closure, run, and check the flag */
    LLVMValueRef cl = cg_entry_alloca(g, cty, 1, 8);
    for (int f = 0; f < o.nfields; f++)
        LLVMBuildStore(g->b, o.fields[f], LLVMBuildStructGEP2(g->b, cty, cl, (unsigned)f, ""));
    if (flag) LLVMBuildStore(g->b, LLVMConstInt(g->i32, 0, 0), flag);
    LLVMTypeRef pfty, bfty = LLVMGlobalGetValueType(body);
    LLVMTypeRef pparams[3] = {g->i64, g->ptr, g->ptr};
    LLVMValueRef pfor = cg_declare_fn(g, "tdsl_parallel_for", LLVMVoidTypeInContext(g->ctx), pparams, 3, &pfty);
    LLVMBasicBlockRef threads = cg_block(g, "threads"), direct = cg_block(g, "direct"), joined = cg_block(g, "joined");
    LLVMValueRef big = work ? LLVMBuildFCmp(g->b, LLVMRealOGE, work, LLVMConstReal(g->f64, LOOP_PARALLEL_MIN_WORK), "")
                            : LLVMConstInt(g->i1, 1, 0);
    LLVMBuildCondBr(g->b, big, threads, direct);
    LLVMPositionBuilderAtEnd(g->b, threads);
    LLVMBuildCall2(g->b, pfty, pfor, (LLVMValueRef[]){n, body, cl}, 3, "");
    LLVMBuildBr(g->b, joined);
    LLVMPositionBuilderAtEnd(g->b, direct);
    LLVMBuildCall2(g->b, bfty, body, (LLVMValueRef[]){cl, cg_i64(g, 0), n}, 3, "");
    LLVMBuildBr(g->b, joined);
    LLVMPositionBuilderAtEnd(g->b, joined);
    if (flag) {
        LLVMValueRef v = LLVMBuildLoad2(g->b, g->i32, flag, "");
        cg_check_or_fail(g, LLVMBuildICmp(g->b, LLVMIntEQ, v, LLVMConstInt(g->i32, 0, 0), ""), cg_fail_block(g));
    }
out:
    free(lay.var_field);
    free(lay.buf_field);
    free(lay.scalar);
    free(o.inner);
    free(o.used);
    free(o.vars);
    free(o.bufs);
    free(o.written);
    free(o.fields);
}
