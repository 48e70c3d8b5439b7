/* loop: builders, text dump (`tcc --emit=loops`) and verifier of the loop IR (level 2).
 *
 * The loop IR reuses level-1 expressions; only statements are new. The dump is stable and
 * indented like C:
 *     for i < N {
 *       y[i] = (x[i] + f32(1))
 *     }
 */
#include "ir.h"

#include <string.h>

static LStmt *lstmt_new(Module *m, LStmtKind kind)
{
    LStmt *s = arena_alloc(&m->arena, sizeof(LStmt));
    s->kind = kind;
    return s;
}

static LStmt **one(Module *m, LStmt *s)
{
    LStmt **b = arena_alloc(&m->arena, sizeof(LStmt *));
    b[0] = s;
    return b;
}

LStmt *loop_seq(Module *m, LStmt **body, int n)
{
    LStmt *s = lstmt_new(m, LS_SEQ);
    s->body = arena_array(&m->arena, (size_t)n + 1, sizeof(LStmt *));
    if (n) memcpy(s->body, body, (size_t)n * sizeof(LStmt *));
    s->nbody = n;
    return s;
}

LStmt *loop_for(Module *m, Var *v, Expr *extent, LoopKind kind, bool reverse, LStmt *body)
{
    LStmt *s = lstmt_new(m, LS_FOR);
    s->var = v;
    s->extent = extent;
    s->loop = kind;
    s->reverse = reverse;
    s->body = one(m, body);
    s->nbody = 1;
    return s;
}

LStmt *loop_store(Module *m, Tensor *buf, Expr **idx, Expr *value)
{
    LStmt *s = lstmt_new(m, LS_STORE);
    s->buf = buf;
    s->idx = arena_array(&m->arena, (size_t)buf->rank + 1, sizeof(Expr *));
    if (buf->rank) memcpy(s->idx, idx, (size_t)buf->rank * sizeof(Expr *));
    s->value = value;
    return s;
}

LStmt *loop_if(Module *m, Expr *cond, LStmt *then_s, LStmt *else_s)
{
    LStmt *s = lstmt_new(m, LS_IF);
    s->cond = cond;
    s->body = one(m, then_s);
    s->nbody = 1;
    s->else_body = else_s;
    return s;
}

LStmt *loop_alloc(Module *m, Tensor *buf, MemScope scope, LStmt *body)
{
    LStmt *s = lstmt_new(m, LS_ALLOC);
    s->buf = buf;
    s->scope = scope;
    s->body = one(m, body);
    s->nbody = 1;
    return s;
}

const char *loop_kind_name(LoopKind k)
{
    switch (k) {
    case LOOP_SERIAL: return "for";
    case LOOP_PARALLEL: return "parallel for";
    case LOOP_VECTOR: return "vector for";
    case LOOP_UNROLL: return "unrolled for";
    case LOOP_GPU_BLOCK: return "gpu_block for";
    case LOOP_GPU_THREAD: return "gpu_thread for";
    }
    return "?";
}

static const char *scope_name(MemScope s)
{
    switch (s) {
    case MEM_HEAP: return "heap";
    case MEM_STACK: return "stack";
    case MEM_SHARED: return "shared";
    case MEM_REGISTER: return "register";
    }
    return "?";
}

/* ---- printer ------------------------------------------------------------------------------- */

static void indent(StrBuf *out, int depth)
{
    for (int i = 0; i < depth; i++) sb_puts(out, "  ");
}

static void print_stmt(const LStmt *s, int depth, StrBuf *out)
{
    switch (s->kind) {
    case LS_SEQ:
        for (int i = 0; i < s->nbody; i++) print_stmt(s->body[i], depth, out);
        return;
    case LS_FOR:
        indent(out, depth);
        sb_printf(out, "%s %s < ", loop_kind_name(s->loop), s->var->name);
        ir_print_size(s->extent, out);
        sb_puts(out, s->reverse ? " reverse {\n" : " {\n");
        print_stmt(s->body[0], depth + 1, out);
        indent(out, depth);
        sb_puts(out, "}\n");
        return;
    case LS_STORE:
        indent(out, depth);
        sb_puts(out, s->buf->name);
        if (s->buf->rank) {
            sb_putc(out, '[');
            for (int i = 0; i < s->buf->rank; i++) {
                if (i) sb_puts(out, ", ");
                ir_print_expr(s->idx[i], out);
            }
            sb_putc(out, ']');
        }
        sb_puts(out, " = ");
        ir_print_expr(s->value, out);
        sb_putc(out, '\n');
        return;
    case LS_IF:
        indent(out, depth);
        sb_puts(out, "if ");
        ir_print_expr(s->cond, out);
        sb_puts(out, " {\n");
        print_stmt(s->body[0], depth + 1, out);
        if (s->else_body) {
            indent(out, depth);
            sb_puts(out, "} else {\n");
            print_stmt(s->else_body, depth + 1, out);
        }
        indent(out, depth);
        sb_puts(out, "}\n");
        return;
    case LS_ALLOC: {
        indent(out, depth);
        const Tensor *t = s->buf;
        sb_printf(out, "alloc %s %s: %s", scope_name(s->scope), t->name, dtype_name(t->dtype));
        if (t->rank) {
            sb_putc(out, '[');
            for (int i = 0; i < t->rank; i++) {
                if (i) sb_puts(out, ", ");
                ir_print_size(t->shape[i], out);
            }
            sb_putc(out, ']');
        }
        sb_putc(out, '\n');
        print_stmt(s->body[0], depth, out);
        return;
    }
    case LS_BARRIER:
        indent(out, depth);
        sb_puts(out, "barrier\n");
        return;
    }
}

void loop_print_module(const LoopModule *lm, StrBuf *out)
{
    for (int f = 0; f < lm->nfuncs; f++) {
        const LoopFunc *fn = lm->funcs[f];
        const Kernel *k = fn->kernel;
        if (f) sb_putc(out, '\n');
        sb_printf(out, "func %s(", k->name);
        for (int pass = 0; pass < 2; pass++) {
            int n = pass ? k->nouts : k->nins;
            Tensor **ts = pass ? k->outs : k->ins;
            for (int i = 0; i < n; i++) {
                if (pass || i) sb_puts(out, ", ");
                sb_printf(out, "%s%s: %s", pass ? "out " : "", ts[i]->name, dtype_name(ts[i]->dtype));
                if (ts[i]->rank) {
                    sb_putc(out, '[');
                    for (int d = 0; d < ts[i]->rank; d++) {
                        if (d) sb_puts(out, ", ");
                        ir_print_size(ts[i]->shape[d], out);
                    }
                    sb_putc(out, ']');
                }
            }
        }
        sb_puts(out, ") {\n");
        print_stmt(fn->body, 1, out);
        sb_puts(out, "}\n");
    }
}

/* ---- verifier ---------------------------------------------------------------------------------
 * Checks what the back ends rely on: loop variables bound by an enclosing loop before use,
 * every buffer either a kernel parameter or allocated by an enclosing LS_ALLOC, stores of
 * the buffer's dtype with one index per axis, conditions of type bool. */

typedef struct VerifyCtx {
    const Kernel *k;
    StrBuf       *err;
    const Var    *vars[64];     /* loop variables in scope */
    int           nvars;
    const Tensor *bufs[4096];   /* allocated buffers in scope */
    int           nbufs;
    bool          ok;
} VerifyCtx;

static void vfail(VerifyCtx *v, const char *what, const char *name)
{
    sb_printf(v->err, "loop IR of %s: %s%s%s\n", v->k->name, what, name ? ": " : "", name ? name : "");
    v->ok = false;
}

static bool buf_known(VerifyCtx *v, const Tensor *t)
{
    for (int i = 0; i < v->k->nins; i++) if (v->k->ins[i] == t) return true;
    for (int i = 0; i < v->k->nouts; i++) if (v->k->outs[i] == t) return true;
    for (int i = 0; i < v->nbufs; i++) if (v->bufs[i] == t) return true;
    return false;
}

static void verify_expr(VerifyCtx *v, const Expr *e)
{
    if (!e || !v->ok) return;
    if (e->op == OP_VAR && e->var->kind != VAR_SIZE) {
        bool bound = false;
        for (int i = 0; i < v->nvars; i++) bound |= v->vars[i] == e->var;
        if (!bound) vfail(v, "variable used outside its loop", e->var->name);
    }
    if (e->op == OP_ACCESS) {
        if (!buf_known(v, e->tensor)) vfail(v, "load from a buffer that is not allocated here", e->tensor->name);
        if (e->nargs != e->tensor->rank) vfail(v, "load with the wrong number of indices", e->tensor->name);
    }
    for (int i = 0; i < e->nargs; i++) verify_expr(v, e->args[i]);
    verify_expr(v, e->pad);
}

static void verify_stmt(VerifyCtx *v, const LStmt *s)
{
    if (!v->ok) return;
    switch (s->kind) {
    case LS_SEQ:
        for (int i = 0; i < s->nbody; i++) verify_stmt(v, s->body[i]);
        return;
    case LS_FOR:
        verify_expr(v, s->extent);
        if (v->nvars == TD_COUNTOF(v->vars)) { vfail(v, "loops nested too deeply", NULL); return; }
        v->vars[v->nvars++] = s->var;
        verify_stmt(v, s->body[0]);
        v->nvars--;
        return;
    case LS_STORE:
        if (!buf_known(v, s->buf)) vfail(v, "store to a buffer that is not allocated here", s->buf->name);
        if (s->value->type != s->buf->dtype) vfail(v, "store of the wrong dtype", s->buf->name);
        for (int i = 0; i < s->buf->rank; i++) verify_expr(v, s->idx[i]);
        verify_expr(v, s->value);
        return;
    case LS_IF:
        if (s->cond->type != DT_BOOL) vfail(v, "condition is not bool", NULL);
        verify_expr(v, s->cond);
        verify_stmt(v, s->body[0]);
        if (s->else_body) verify_stmt(v, s->else_body);
        return;
    case LS_ALLOC:
        if (v->nbufs == TD_COUNTOF(v->bufs)) { vfail(v, "too many nested allocations", NULL); return; }
        v->bufs[v->nbufs++] = s->buf;
        verify_stmt(v, s->body[0]);
        v->nbufs--;
        return;
    case LS_BARRIER:
        return;
    }
}

bool loop_verify(const LoopModule *lm, StrBuf *err)
{
    bool ok = true;
    for (int f = 0; f < lm->nfuncs; f++) {
        VerifyCtx v = {0};
        v.k = lm->funcs[f]->kernel;
        v.err = err;
        v.ok = true;
        verify_stmt(&v, lm->funcs[f]->body);
        ok &= v.ok;
    }
    return ok;
}
