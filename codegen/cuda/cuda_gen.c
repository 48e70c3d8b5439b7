/* cuda_gen: scheduled loop IR (pass_gpu_map) to CUDA C source and a launch plan.
 *
 * Takes a LoopModule whose host level is function-level allocations around kernel roots
 * (chains of LOOP_GPU_BLOCK loops; gpu_map.c); gives, appended to one source string:
 *
 *   - the prelude (prelude.c);
 *   - per kernel root, in order, `extern "C" __global__ void __launch_bounds__(256, 1)
 *     tdsl_K_n(...)`: K the tdsl kernel, n the launch's number within it; parameters are
 *     the buffers the root touches (`const T *__restrict__` when it only reads them), in
 *     buffer order (inputs, outputs, temporaries), then the size names it uses, as td_i64,
 *     in signature order; composite size expressions computed once at its top.
 *
 * and the launch plan (cuda.h): per kernel its temporaries (every host-level allocation,
 * device memory for the whole call), a zero-fill of each packed output, and one launch per
 * root with its grid rule and arguments.
 *
 * Loops: a chain of directly nested GPU loops is flattened into one index and decoded with
 * `/` and `%` (row-major): LOOP_GPU_BLOCK chains stride over blockIdx.x * blockDim.y +
 * threadIdx.y by gridDim.x * blockDim.y (several block iterations share a block when the
 * thread loop is short), LOOP_GPU_THREAD chains over threadIdx.x by blockDim.x; any other
 * loop is a serial C loop. A rank-0 allocation inside a kernel is a local variable, a
 * constant-size one an array (local, or __shared__ for MEM_SHARED). */
#include "internal.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* ---- shared helpers -------------------------------------------------------------------------- */

void cu_fail(CuGen *g, const char *fmt, ...)
{
    if (g->failed) return;  /* the first message explains the rest */
    g->failed = true;
    va_list ap;
    va_start(ap, fmt);
    sb_printf(g->err, "internal error: cuda: %s: ", g->k ? g->k->name : "module");
    sb_vprintf(g->err, fmt, ap);
    sb_putc(g->err, '\n');
    va_end(ap);
}

static void indent(StrBuf *out, int depth)
{
    for (int i = 0; i < depth; i++) sb_puts(out, "    ");
}

/* ---- names ------------------------------------------------------------------------------------- */

/* C++ keywords, CUDA builtins and the library functions the generated code calls: a
 * variable of one of these names would hide or break them. The prelude's names all start
 * with td_, the kernels' with tdsl_; both prefixes are reserved too. */
static const char *const reserved[] = {
    "alignas", "alignof", "and", "and_eq", "asm", "auto", "bitand", "bitor", "bool", "break", "case",
    "catch", "char", "char8_t", "char16_t", "char32_t", "class", "compl", "concept", "const", "consteval",
    "constexpr", "constinit", "const_cast", "continue", "co_await", "co_return", "co_yield", "decltype",
    "default", "delete", "do", "double", "dynamic_cast", "else", "enum", "explicit", "export", "extern",
    "false", "float", "for", "friend", "goto", "if", "inline", "int", "long", "mutable", "namespace",
    "new", "noexcept", "not", "not_eq", "nullptr", "operator", "or", "or_eq", "private", "protected",
    "public", "register", "reinterpret_cast", "requires", "return", "short", "signed", "sizeof",
    "static", "static_assert", "static_cast", "struct", "switch", "template", "this", "thread_local",
    "throw", "true", "try", "typedef", "typeid", "typename", "union", "unsigned", "using", "virtual",
    "void", "volatile", "wchar_t", "while", "xor", "xor_eq", "restrict", "main",
    "threadIdx", "blockIdx", "blockDim", "gridDim", "warpSize", "atomicAnd", "atomicOr",
    "expf", "exp", "exp2f", "exp2", "logf", "log", "log2f", "log2", "sinf", "sin", "cosf", "cos",
    "tanhf", "tanh", "erff", "erf", "sqrtf", "sqrt", "powf", "pow", "fabsf", "fabs", "floorf", "floor",
    "ceilf", "ceil", "truncf", "trunc", "rintf", "rint", "fmodf", "fmod", "fmaf", "fma",
};

static bool is_reserved(const char *s)
{
    for (int i = 0; i < TD_COUNTOF(reserved); i++)
        if (strcmp(s, reserved[i]) == 0) return true;
    return false;
}

static bool has_reserved_prefix(const char *s)
{
    return strncmp(s, "td_", 3) == 0 || strncmp(s, "tdsl_", 5) == 0 || strncmp(s, "__", 2) == 0;
}

static bool is_taken(CuGen *g, const char *s)
{
    for (int i = 0; i < g->taken.len; i++)
        if (strcmp(g->taken.items[i], s) == 0) return true;
    return false;
}

/* A fresh C identifier for `base` in the current function: its letters, digits and '_'
 * (others become '_'), with v_ in front of a reserved prefix (td_x: v_td_x), and _2, _3 ...
 * appended when reserved or taken. */
static const char *fresh_name(CuGen *g, const char *base)
{
    StrBuf s = {0};
    if (!base || !*base || (base[0] >= '0' && base[0] <= '9')) sb_putc(&s, 'v');
    else if (has_reserved_prefix(base)) sb_puts(&s, "v_");
    for (const char *p = base ? base : ""; *p; p++) {
        char c = *p;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
        sb_putc(&s, ok ? c : '_');
    }
    char *name = arena_strdup(&g->scratch, sb_cstr(&s));
    for (int n = 2; is_reserved(name) || is_taken(g, name); n++)
        name = arena_printf(&g->scratch, "%s_%d", sb_cstr(&s), n);
    sb_free(&s);
    pv_push(&g->scratch, &g->taken, name);
    return name;
}

static void name_id(CuGen *g, int id, const char *base)
{
    TD_ASSERT(id >= 0 && id < g->nids);
    if (!g->names[id]) g->names[id] = fresh_name(g, base);
}

/* ---- what a kernel root uses --------------------------------------------------------------------- */

enum { USE_READ = 1, USE_WRITE = 2, USE_LOCAL = 4, USE_SIZE = 8 };

typedef struct Uses {
    uint8_t *of;   /* per id: USE_* bits */
    int      nids;
} Uses;

static void use_expr(Uses *u, const Expr *e);

static void use_shape(Uses *u, const Tensor *t)
{
    for (int a = 0; a < t->rank; a++) use_expr(u, t->shape[a]);
}

static void use_expr(Uses *u, const Expr *e)
{
    if (!e) return;
    if (e->op == OP_VAR && e->var->kind == VAR_SIZE) {
        TD_ASSERT(e->var->id < u->nids);
        u->of[e->var->id] |= USE_SIZE;
    }
    if (e->op == OP_ACCESS) {
        TD_ASSERT(e->tensor->id < u->nids);
        u->of[e->tensor->id] |= USE_READ;
        use_shape(u, e->tensor);
    }
    for (int i = 0; i < e->nargs; i++) use_expr(u, e->args[i]);
    use_expr(u, e->pad);
}

static void use_stmt(Uses *u, const LStmt *s)
{
    if (!s) return;
    for (int i = 0; i < s->nbody; i++) use_stmt(u, s->body[i]);
    use_stmt(u, s->else_body);
    use_expr(u, s->extent);
    use_expr(u, s->cond);
    use_expr(u, s->value);
    if (s->kind == LS_STORE) {
        TD_ASSERT(s->buf->id < u->nids);
        u->of[s->buf->id] |= USE_WRITE;
        use_shape(u, s->buf);
        for (int i = 0; i < s->buf->rank; i++) use_expr(u, s->idx[i]);
    }
    if (s->kind == LS_ALLOC) {
        u->of[s->buf->id] |= USE_LOCAL;
        use_shape(u, s->buf);
    }
}

/* ---- the plan of one tdsl kernel, while it is built ---------------------------------------------- */

typedef struct PlanCtx {
    CudaLaunchPlan *plan;
    const Kernel   *k;
    PtrVec          bufs;       /* const Tensor *: inputs, outputs, then temporaries */
    int            *buf_index;  /* per Tensor id: its buffer number, or -1 */
    PtrVec          steps;      /* CudaStep * */
    int             nlaunches;  /* launches made so far */
    int             total;      /* launches in this kernel, for the comments */
} PlanCtx;

static void add_buffer(PlanCtx *pc, const Tensor *t)
{
    pc->buf_index[t->id] = pc->bufs.len;
    pv_push(&pc->plan->arena, &pc->bufs, (void *)t);
}

/* ---- statements ------------------------------------------------------------------------------------ */

static void emit_stmt(CuGen *g, const LStmt *s, int depth, StrBuf *out);

/* A chain of directly nested loops of kind `kind` starting at s. */
static int gpu_chain(const LStmt *s, LoopKind kind, const LStmt **chain, int cap)
{
    int n = 0;
    while (n < cap && s->kind == LS_FOR && s->loop == kind) {
        chain[n++] = s;
        s = s->body[0];
    }
    return n;
}

/* for (flat = start; flat < e0 * ... * ek-1; flat += step) { v0 = ...; ... } and the body. */
static void emit_flat_loop(CuGen *g, const LStmt *const *chain, int n, const char *start, const char *step,
                           int depth, StrBuf *out)
{
    StrBuf *ext = calloc((size_t)n, sizeof *ext);
    if (!ext) td_internal_error(__FILE__, __LINE__, "out of memory");
    for (int i = 0; i < n; i++) {
        cu_size(g, chain[i]->extent, &ext[i]);
        name_id(g, chain[i]->var->id, chain[i]->var->name);
    }
    indent(out, depth);
    if (n == 1) {
        const char *v = g->names[chain[0]->var->id];
        sb_printf(out, "for (td_i64 %s = %s; %s < %s; %s += %s) {\n", v, start, v, sb_cstr(&ext[0]), v, step);
    } else {
        const char *flat = fresh_name(g, chain[0]->loop == LOOP_GPU_BLOCK ? "blk" : "thr");
        sb_printf(out, "for (td_i64 %s = %s; %s < ", flat, start, flat);
        for (int i = 0; i < n; i++) sb_printf(out, "%s%s", i ? " * " : "", sb_cstr(&ext[i]));
        sb_printf(out, "; %s += %s) {\n", flat, step);
        for (int i = n - 1; i >= 0; i--) {  /* row-major: the last loop varies fastest */
            indent(out, depth + 1);
            sb_printf(out, "const td_i64 %s = ", g->names[chain[i]->var->id]);
            if (i < n - 1) {
                bool product = n - i > 2;
                sb_printf(out, "%s / %s", flat, product ? "(" : "");
                for (int j = i + 1; j < n; j++) sb_printf(out, "%s%s", j > i + 1 ? " * " : "", sb_cstr(&ext[j]));
                sb_puts(out, product ? ")" : "");
            } else {
                sb_puts(out, flat);
            }
            if (i > 0) sb_printf(out, " %% %s", sb_cstr(&ext[i]));
            sb_puts(out, ";\n");
        }
    }
    for (int i = 0; i < n; i++) sb_free(&ext[i]);
    free(ext);
    emit_stmt(g, chain[n - 1]->body[0], depth + 1, out);
    indent(out, depth);
    sb_puts(out, "}\n");
}

static void emit_for(CuGen *g, const LStmt *s, int depth, StrBuf *out)
{
    switch (s->loop) {
    case LOOP_GPU_BLOCK:
        cu_fail(g, "a gpu_block loop (%s) below the kernel root", s->var->name);
        return;
    case LOOP_GPU_THREAD: {
        const LStmt *chain[64];
        int n = gpu_chain(s, LOOP_GPU_THREAD, chain, TD_COUNTOF(chain));
        g->thread_depth++;
        emit_flat_loop(g, chain, n, "(td_i64)threadIdx.x", "(td_i64)blockDim.x", depth, out);
        g->thread_depth--;
        return;
    }
    case LOOP_SERIAL: case LOOP_PARALLEL: case LOOP_VECTOR: case LOOP_UNROLL:
        break;  /* a serial loop inside one thread (or walked by all threads of a block) */
    }
    StrBuf ext = {0};
    cu_size(g, s->extent, &ext);
    name_id(g, s->var->id, s->var->name);
    const char *v = g->names[s->var->id];
    indent(out, depth);
    if (s->reverse) sb_printf(out, "for (td_i64 %s = %s - 1; %s >= 0; %s--) {\n", v, sb_cstr(&ext), v, v);
    else sb_printf(out, "for (td_i64 %s = 0; %s < %s; %s++) {\n", v, v, sb_cstr(&ext), v);
    sb_free(&ext);
    emit_stmt(g, s->body[0], depth + 1, out);
    indent(out, depth);
    sb_puts(out, "}\n");
}

/* The constant element count of t, or -1. */
static int64_t const_count(const Tensor *t)
{
    int64_t n = 1;
    for (int a = 0; a < t->rank; a++) {
        const Expr *d = t->shape[a];
        if (d->op != OP_CONST || d->value.i < 0 || !ck_mul_i64(n, d->value.i, &n)) return -1;
    }
    return n;
}

static void emit_alloc(CuGen *g, const LStmt *s, int depth, StrBuf *out)
{
    const Tensor *t = s->buf;
    TD_ASSERT(t->id >= 0 && t->id < g->nids);
    name_id(g, t->id, t->name);
    const char *name = g->names[t->id];
    CuBufKind saved = g->bufs[t->id];
    if (s->scope == MEM_HEAP) {
        cu_fail(g, "a heap allocation (%s) inside a kernel", t->name);
        return;
    }
    indent(out, depth);
    if (t->rank == 0 && s->scope != MEM_SHARED) {
        sb_printf(out, "%s %s;\n", cu_reg_type(t->dtype), name);
        g->bufs[t->id] = CU_BUF_REGISTER;
    } else {
        int64_t n = const_count(t);
        size_t bytes;
        if (n < 0 || !dtype_storage_bytes(t->dtype, (size_t)n, &bytes) || bytes > (48u << 10)) {
            cu_fail(g, "%s inside a kernel needs a constant size of at most 48 KiB", t->name);
            return;
        }
        /* packed types: whole bytes; everything else: elements */
        size_t elems = dtype_bits(t->dtype) < 8 ? bytes : (size_t)n;
        bool shared = s->scope == MEM_SHARED;
        sb_printf(out, "%s%s %s[%zu];\n", shared ? "__shared__ " : "", cu_storage_type(t->dtype), name, elems ? elems : 1);
        g->bufs[t->id] = shared ? CU_BUF_SHARED : CU_BUF_LOCAL;
    }
    emit_stmt(g, s->body[0], depth, out);
    g->bufs[t->id] = saved;
}

static void emit_store(CuGen *g, const LStmt *s, int depth, StrBuf *out)
{
    const Tensor *t = s->buf;
    TD_ASSERT(t->id >= 0 && t->id < g->nids);
    if (g->bufs[t->id] == CU_BUF_NONE) {
        cu_fail(g, "store to %s, which has no storage here", t->name);
        return;
    }
    if (s->value->type != t->dtype) {
        cu_fail(g, "store of %s into %s of %s", dtype_name(s->value->type), t->name, dtype_name(t->dtype));
        return;
    }
    StrBuf off = {0}, v = {0};
    if (g->bufs[t->id] != CU_BUF_REGISTER) cu_offset(g, t, s->idx, &off);
    cu_expr(g, s->value, &v);
    indent(out, depth);
    cu_store(g, t, sb_cstr(&off), sb_cstr(&v), out);
    sb_putc(out, '\n');
    sb_free(&off);
    sb_free(&v);
}

static void emit_stmt(CuGen *g, const LStmt *s, int depth, StrBuf *out)
{
    if (g->failed) return;
    switch (s->kind) {
    case LS_SEQ:
        for (int i = 0; i < s->nbody && !g->failed; i++) emit_stmt(g, s->body[i], depth, out);
        return;
    case LS_FOR: emit_for(g, s, depth, out); return;
    case LS_STORE: emit_store(g, s, depth, out); return;
    case LS_IF: {
        StrBuf c = {0};
        cu_expr(g, s->cond, &c);
        indent(out, depth);
        sb_printf(out, "if (%s) {\n", sb_cstr(&c));
        sb_free(&c);
        emit_stmt(g, s->body[0], depth + 1, out);
        if (s->else_body) {
            indent(out, depth);
            sb_puts(out, "} else {\n");
            emit_stmt(g, s->else_body, depth + 1, out);
        }
        indent(out, depth);
        sb_puts(out, "}\n");
        return;
    }
    case LS_ALLOC: emit_alloc(g, s, depth, out); return;
    case LS_BARRIER:
        if (g->thread_depth > 0) {
            cu_fail(g, "a barrier inside a thread loop (not every thread would reach it)");
            return;
        }
        g->barriers = true;
        indent(out, depth);
        sb_puts(out, "__syncthreads();\n");
        return;
    }
    cu_fail(g, "unknown loop statement kind %d", (int)s->kind);
}

/* ---- one __global__ function per kernel root ------------------------------------------------------- */

static void reset_function(CuGen *g)
{
    memset(g->names, 0, (size_t)g->nids * sizeof *g->names);
    memset(g->bufs, 0, (size_t)g->nids * sizeof *g->bufs);
    arena_free(&g->scratch);
    arena_init(&g->scratch);
    g->taken = (PtrVec){0};
    g->hoisted = (PtrVec){0};
    g->hoist_names = NULL;
    g->thread_depth = 0;
    g->barriers = false;
}

/* Names the parameters of a kernel root (the buffers it touches in buffer order, then the
 * sizes it uses in signature order) and marks its buffers global; with l, also writes the
 * parameter list and l's arguments. */
static void name_params(CuGen *g, PlanCtx *pc, const uint8_t *use, StrBuf *params, CudaLaunch *l)
{
    Arena *pa = &pc->plan->arena;
    PtrVec args = {0};
    for (int b = 0; b < pc->bufs.len; b++) {
        const Tensor *t = pc->bufs.items[b];
        if (!(use[t->id] & (USE_READ | USE_WRITE)) || (use[t->id] & USE_LOCAL)) continue;
        name_id(g, t->id, t->name);
        g->bufs[t->id] = CU_BUF_GLOBAL;
        if (!l) continue;
        const char *cq = use[t->id] & USE_WRITE ? "" : "const ";
        sb_printf(params, "%s%s%s *__restrict__ %s", args.len ? ", " : "", cq, cu_storage_type(t->dtype), g->names[t->id]);
        CudaArg *a = arena_alloc(pa, sizeof *a);
        *a = (CudaArg){CUDA_ARG_BUFFER, b};
        pv_push(pa, &args, a);
    }
    for (int i = 0; i < pc->k->nsizes; i++) {
        const Var *v = pc->k->sizes[i];
        if (!(use[v->id] & USE_SIZE)) continue;
        name_id(g, v->id, v->name);
        if (!l) continue;
        sb_printf(params, "%std_i64 %s", args.len ? ", " : "", g->names[v->id]);
        CudaArg *a = arena_alloc(pa, sizeof *a);
        *a = (CudaArg){CUDA_ARG_SIZE, i};
        pv_push(pa, &args, a);
    }
    if (!l) return;
    l->args = arena_array(pa, (size_t)args.len + 1, sizeof(CudaArg));
    for (int i = 0; i < args.len; i++) l->args[i] = *(CudaArg *)args.items[i];
    l->nargs = args.len;
}

/* Emits the kernel root `root` (a LOOP_GPU_BLOCK chain) as a __global__ function to out and
 * fills the launch l. Two passes over the body: the first gathers
 * the composite size expressions (cuda_expr.c's hoisted_size), the second prints them once
 * at the top and the body with their names. */
static void emit_kernel(CuGen *g, PlanCtx *pc, const LStmt *root, StrBuf *out, CudaLaunch *l)
{
    Arena *pa = &pc->plan->arena;
    reset_function(g);
    Uses u = {calloc((size_t)g->nids + 1, 1), g->nids};
    if (!u.of) td_internal_error(__FILE__, __LINE__, "out of memory");
    use_stmt(&u, root);

    /* the block chain, and the thread chain right below it when its extents are sizes */
    const LStmt *chain[64];
    int nb = gpu_chain(root, LOOP_GPU_BLOCK, chain, TD_COUNTOF(chain));
    l->name = arena_printf(pa, "tdsl_%s_%d", pc->k->name, pc->nlaunches);
    l->nblock = nb;
    l->block_extents = arena_array(pa, (size_t)nb + 1, sizeof(Expr *));
    for (int i = 0; i < nb; i++) {
        l->block_extents[i] = chain[i]->extent;
        if (!cu_is_size_expr(chain[i]->extent)) cu_fail(g, "the extent of block loop %s is not a size expression", chain[i]->var->name);
    }
    const LStmt *tchain[64];
    int nt = gpu_chain(chain[nb - 1]->body[0], LOOP_GPU_THREAD, tchain, TD_COUNTOF(tchain));
    bool known = nt > 0;
    for (int i = 0; i < nt; i++) known &= cu_is_size_expr(tchain[i]->extent);
    l->nthread = known ? nt : -1;
    l->thread_extents = arena_array(pa, (size_t)nt + 1, sizeof(Expr *));
    for (int i = 0; known && i < nt; i++) l->thread_extents[i] = tchain[i]->extent;

    /* pass 1: gather the size expressions worth hoisting */
    const char *start = "(td_i64)blockIdx.x * blockDim.y + threadIdx.y", *step = "(td_i64)gridDim.x * blockDim.y";
    StrBuf params = {0}, body = {0};
    name_params(g, pc, u.of, NULL, NULL);
    g->collecting = true;
    emit_flat_loop(g, chain, nb, start, step, 1, &body);
    g->collecting = false;
    sb_clear(&body);

    /* pass 2: the same names again, the hoisted sizes, the body */
    memset(g->names, 0, (size_t)g->nids * sizeof *g->names);
    g->taken = (PtrVec){0};
    g->barriers = false;
    name_params(g, pc, u.of, &params, l);
    free(u.of);
    g->hoist_names = arena_array(&g->scratch, (size_t)g->hoisted.len + 1, sizeof(char *));
    for (int i = 0; i < g->hoisted.len; i++) {
        const Expr *e = g->hoisted.items[i];
        g->no_hoist = true;
        sb_puts(&body, "    const td_i64 ");
        g->hoist_names[i] = fresh_name(g, arena_printf(&g->scratch, "sz%d", i));
        sb_printf(&body, "%s = ", g->hoist_names[i]);
        cu_size(g, e, &body);
        sb_puts(&body, "; /* ");
        ir_print_size(e, &body);
        sb_puts(&body, " */\n");
        g->no_hoist = false;
    }
    emit_flat_loop(g, chain, nb, start, step, 1, &body);

    sb_printf(out, "\n/* %s: launch %d of %d */\n", pc->k->name, pc->nlaunches + 1, pc->total);
    sb_printf(out, "extern \"C\" __global__ void __launch_bounds__(%d, 1) %s(%s)\n{\n", GPU_THREADS_PER_BLOCK, l->name,
              sb_cstr(&params));
    sb_puts(out, sb_cstr(&body));
    sb_puts(out, "}\n");
    l->one_row = g->barriers;
    pc->nlaunches++;
    sb_free(&params);
    sb_free(&body);
}

/* ---- the host level: allocations and kernel roots ------------------------------------------------------ */

static int count_roots(const LStmt *s)
{
    if (s->kind == LS_SEQ) {
        int n = 0;
        for (int i = 0; i < s->nbody; i++) n += count_roots(s->body[i]);
        return n;
    }
    if (s->kind == LS_ALLOC) return count_roots(s->body[0]);
    return 1;
}

static void push_step(PlanCtx *pc, CudaStep st)
{
    CudaStep *p = arena_alloc(&pc->plan->arena, sizeof *p);
    *p = st;
    pv_push(&pc->plan->arena, &pc->steps, p);
}

static void walk_host(CuGen *g, PlanCtx *pc, const LStmt *s, StrBuf *out)
{
    if (g->failed) return;
    switch (s->kind) {
    case LS_SEQ:
        for (int i = 0; i < s->nbody; i++) walk_host(g, pc, s->body[i], out);
        return;
    case LS_ALLOC:
        if (s->scope != MEM_HEAP && s->scope != MEM_STACK) break;
        if (pc->buf_index[s->buf->id] < 0) add_buffer(pc, s->buf);
        walk_host(g, pc, s->body[0], out);
        return;
    case LS_FOR:
        if (s->loop != LOOP_GPU_BLOCK) break;
        CudaStep st = {.kind = CUDA_STEP_LAUNCH};
        emit_kernel(g, pc, s, out, &st.launch);
        push_step(pc, st);
        return;
    case LS_STORE: case LS_IF: case LS_BARRIER:
        break;
    }
    cu_fail(g, "a statement outside any kernel (run pass_gpu_map first)");
}

static void plan_kernel(CuGen *g, const LoopFunc *f, CudaKernelPlan *kp, CudaLaunchPlan *plan, StrBuf *out)
{
    const Kernel *k = f->kernel;
    g->k = k;
    PlanCtx pc = {.plan = plan, .k = k};
    pc.buf_index = malloc(((size_t)g->nids + 1) * sizeof(int));
    if (!pc.buf_index) td_internal_error(__FILE__, __LINE__, "out of memory");
    for (int i = 0; i <= g->nids; i++) pc.buf_index[i] = -1;
    for (int i = 0; i < k->nins; i++) add_buffer(&pc, k->ins[i]);
    for (int i = 0; i < k->nouts; i++) add_buffer(&pc, k->outs[i]);
    for (int i = 0; i < k->nouts; i++)
        if (dtype_bits(k->outs[i]->dtype) < 8) push_step(&pc, (CudaStep){.kind = CUDA_STEP_ZERO, .buffer = k->nins + i});
    pc.total = count_roots(f->body);
    walk_host(g, &pc, f->body, out);

    kp->kernel = k;
    kp->ntemps = pc.bufs.len - k->nins - k->nouts;
    kp->temps = arena_array(&plan->arena, (size_t)kp->ntemps + 1, sizeof(Tensor *));
    for (int i = 0; i < kp->ntemps; i++) kp->temps[i] = pc.bufs.items[k->nins + k->nouts + i];
    kp->nsteps = pc.steps.len;
    kp->steps = arena_array(&plan->arena, (size_t)pc.steps.len + 1, sizeof(CudaStep));
    for (int i = 0; i < pc.steps.len; i++) kp->steps[i] = *(CudaStep *)pc.steps.items[i];
    free(pc.buf_index);
    g->k = NULL;
}

bool cuda_generate(const LoopModule *lm, const CudaOptions *o, StrBuf *source, CudaLaunchPlan **plan_out,
                   StrBuf *err)
{
    (void)o;  /* the source is the same for every architecture */
    *plan_out = NULL;
    CudaLaunchPlan *plan = calloc(1, sizeof *plan);
    if (!plan) td_internal_error(__FILE__, __LINE__, "out of memory");
    arena_init(&plan->arena);
    plan->nkernels = lm->nfuncs;
    plan->kernels = arena_array(&plan->arena, (size_t)lm->nfuncs + 1, sizeof(CudaKernelPlan));

    CuGen g = {.lm = lm, .err = err, .nids = lm->ir->next_id};
    g.names = calloc((size_t)g.nids + 1, sizeof *g.names);
    g.bufs = calloc((size_t)g.nids + 1, sizeof *g.bufs);
    if (!g.names || !g.bufs) td_internal_error(__FILE__, __LINE__, "out of memory");
    arena_init(&g.scratch);

    StrBuf out = {0};
    sb_puts(&out, "/* Generated by tcc (tdsl): CUDA C++ for NVRTC (compile with --fmad=false), self-contained:\n"
                  " * a prelude, then one __global__ function per launch of each kernel's launch plan. */\n\n");
    sb_puts(&out, cuda_prelude());
    for (int i = 0; i < lm->nfuncs && !g.failed; i++) plan_kernel(&g, lm->funcs[i], &plan->kernels[i], plan, &out);

    arena_free(&g.scratch);
    free(g.names);
    free(g.bufs);
    if (g.failed) {
        sb_free(&out);
        cuda_plan_free(plan);
        return false;
    }
    sb_putn(source, out.data, out.len);
    sb_free(&out);
    *plan_out = plan;
    return true;
}

void cuda_plan_free(CudaLaunchPlan *plan)
{
    if (!plan) return;
    arena_free(&plan->arena);
    free(plan);
}

/* ---- launch configuration ------------------------------------------------------------------------------ */

static bool eval_product(const Kernel *k, const Expr *const *e, int n, const int64_t *sizes, int64_t *out)
{
    int64_t p = 1;
    for (int i = 0; i < n; i++) {
        int64_t v;
        if (!ir_eval_size(k, e[i], sizes, &v)) return false;
        if (v < 0) v = 0;  /* an empty loop */
        if (!ck_mul_i64(p, v, &p)) return false;
    }
    *out = p;
    return true;
}

bool cuda_launch_work(const CudaLaunch *l, const Kernel *k, const int64_t *sizes, int64_t *block_work,
                      int64_t *thread_work)
{
    *thread_work = -1;
    if (!eval_product(k, l->block_extents, l->nblock, sizes, block_work)) return false;
    return l->nthread < 0 || eval_product(k, l->thread_extents, l->nthread, sizes, thread_work);
}

bool cuda_launch_dims(const CudaLaunch *l, const Kernel *k, const int64_t *sizes, unsigned grid[3], unsigned block[3])
{
    int64_t bw, tw;
    if (!cuda_launch_work(l, k, sizes, &bw, &tw)) return false;
    rt_cuda_launch_dims(bw, tw, l->one_row, grid, block);
    return true;
}

bool cuda_temp_bytes(const Kernel *k, const Tensor *t, const int64_t *sizes, size_t *bytes)
{
    int64_t n;
    if (!eval_product(k, (const Expr *const *)t->shape, t->rank, sizes, &n)) return false;
    return dtype_storage_bytes(t->dtype, (size_t)n, bytes);
}
