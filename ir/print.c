/* print: the stable text dump of the tensor IR (`tcc --emit=ir`).
 *
 * Golden tests compare this text, so it is deterministic (no ids, no addresses) and every
 * choice here is part of the format:
 *
 *   kernel name(x: f32[N, D], w: f32[N, K] @quant(i4, group=128)) -> (y: f32[N, D]) {
 *     mu: f32[N] = for n < N: mean[d < D] x[n, d]
 *     y[n, d] = for n < N, d < D: (x[n, d] - mu[n])
 *     scan t < T reverse with S: f32[K] = f32(0), h: f32[K] = h0 {
 *       S.next: f32[K] = for i < K: (S[i] + a[t, i])
 *       o[t, i] = for t, i < K: S.next[i]
 *     }
 *     schedule: tile n 64; vectorize d
 *   }
 *
 * One line per Def: a temp or state is declared with its type, an output shows its index;
 * then the loop variables with extents (an enclosing scan's variable appears bare, the scan
 * fixes it), the reduction if any, and the body. Scalar expressions are fully
 * parenthesised; size expressions (shapes, extents) use minimal parentheses. Variables are
 * printed by name; when two different variables with the same name meet in one statement,
 * the later ones are suffixed `.2`, `.3`, ... in order of appearance. */
#include "ir.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- variable names ---------------------------------------------------------------------- */

typedef struct NameEntry {
    const Var *var;
    int        suffix;   /* 1: printed bare; n > 1: printed `name.n` */
} NameEntry;

typedef struct Printer {
    StrBuf    *out;
    NameEntry *names;    /* vars seen in the current statement, in order of appearance */
    int        nnames;
    int        cap;
    int        nfixed;   /* leading entries that persist across statements (sizes, scan vars) */
} Printer;

static void printer_free(Printer *p) { free(p->names); }

static const NameEntry *name_of(Printer *p, const Var *v)
{
    int same = 0;
    for (int i = 0; i < p->nnames; i++) {
        if (p->names[i].var == v) return &p->names[i];
        if (strcmp(p->names[i].var->name, v->name) == 0) same++;
    }
    if (p->nnames == p->cap) {
        p->cap = p->cap ? 2 * p->cap : 16;
        p->names = realloc(p->names, (size_t)p->cap * sizeof *p->names);
        if (!p->names) td_internal_error(__FILE__, __LINE__, "out of memory");
    }
    p->names[p->nnames] = (NameEntry){v, same + 1};
    return &p->names[p->nnames++];
}

static void put_var(Printer *p, const Var *v)
{
    if (!v) {
        sb_puts(p->out, "<null var>");
        return;
    }
    const NameEntry *n = name_of(p, v);
    sb_puts(p->out, v->name);
    if (n->suffix > 1) sb_printf(p->out, ".%d", n->suffix);
}

/* ---- constants ---------------------------------------------------------------------------- */

/* The shortest %g form that reads back to the same value of dtype t. */
static void put_float(StrBuf *out, DType t, double v)
{
    if (isnan(v)) {
        sb_puts(out, "nan");
        return;
    }
    if (isinf(v)) {
        sb_puts(out, v > 0 ? "inf" : "-inf");
        return;
    }
    char buf[40];
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, v);
        if (dtype_round_f(t, strtod(buf, NULL)) == v) break;
    }
    sb_puts(out, buf);
}

static void put_const(StrBuf *out, const Expr *e)
{
    if (e->type == DT_BOOL) {
        sb_puts(out, e->value.i ? "true" : "false");
    } else if (dtype_is_float(e->type)) {
        sb_printf(out, "%s(", dtype_name(e->type));
        put_float(out, e->type, e->value.f);
        sb_putc(out, ')');
    } else if (e->type == DT_I64) {
        sb_printf(out, "%lld", (long long)e->value.i);
    } else {
        sb_printf(out, "%s(%lld)", dtype_name(e->type), (long long)e->value.i);
    }
}

/* ---- expressions ---------------------------------------------------------------------------- */

static void put_expr(Printer *p, const Expr *e);

static void put_args(Printer *p, const Expr *e)
{
    for (int i = 0; i < e->nargs; i++) {
        if (i) sb_puts(p->out, ", ");
        put_expr(p, e->args[i]);
    }
}

static void put_access(Printer *p, const Expr *e)
{
    if (e->pad) sb_putc(p->out, '(');
    sb_puts(p->out, e->tensor ? e->tensor->name : "<null tensor>");
    if (e->nargs) {
        sb_putc(p->out, '[');
        put_args(p, e);
        sb_putc(p->out, ']');
    }
    if (e->pad) {
        sb_puts(p->out, " ?? ");
        put_expr(p, e->pad);
        sb_putc(p->out, ')');
    }
}

static void put_expr(Printer *p, const Expr *e)
{
    if (!e) {
        sb_puts(p->out, "<null>");
        return;
    }
    const char *infix = (unsigned)e->op < OP_COUNT ? op_infix(e->op) : NULL;
    if (e->op == OP_CONST) {
        put_const(p->out, e);
    } else if (e->op == OP_VAR) {
        put_var(p, e->var);
    } else if (e->op == OP_ACCESS) {
        put_access(p, e);
    } else if (infix && e->nargs == 2) {
        sb_putc(p->out, '(');
        put_expr(p, e->args[0]);
        sb_printf(p->out, " %s ", infix);
        put_expr(p, e->args[1]);
        sb_putc(p->out, ')');
    } else {
        sb_printf(p->out, "%s(", e->op == OP_CAST ? dtype_name(e->type) : op_name(e->op));
        put_args(p, e);
        sb_putc(p->out, ')');
    }
}

/* Size expressions: + - bind looser than * / %, both left-associative. */
static int size_prec(const Expr *e)
{
    if (e->nargs != 2) return 3;
    if (e->op == OP_ADD || e->op == OP_SUB) return 1;
    if (e->op == OP_MUL || e->op == OP_DIV || e->op == OP_MOD) return 2;
    return 3;
}

static void put_size(Printer *p, const Expr *e)
{
    if (!e) {
        sb_puts(p->out, "<null>");
        return;
    }
    int prec = size_prec(e);
    if (e->op == OP_CONST && !dtype_is_float(e->type)) {
        sb_printf(p->out, "%lld", (long long)e->value.i);
    } else if (prec < 3) {
        bool lp = size_prec(e->args[0]) < prec, rp = size_prec(e->args[1]) <= prec;
        if (lp) sb_putc(p->out, '(');
        put_size(p, e->args[0]);
        sb_printf(p->out, "%s %s ", lp ? ")" : "", op_infix(e->op));
        if (rp) sb_putc(p->out, '(');
        put_size(p, e->args[1]);
        if (rp) sb_putc(p->out, ')');
    } else {
        put_expr(p, e);
    }
}

void ir_print_expr(const Expr *e, StrBuf *out)
{
    Printer p = {.out = out};
    put_expr(&p, e);
    printer_free(&p);
}

void ir_print_size(const Expr *e, StrBuf *out)
{
    Printer p = {.out = out};
    put_size(&p, e);
    printer_free(&p);
}

/* ---- types, annotations, parameters ------------------------------------------------------------ */

static void put_type(Printer *p, const Tensor *t)
{
    sb_puts(p->out, dtype_name(t->dtype));
    if (!t->rank) return;
    sb_putc(p->out, '[');
    for (int a = 0; a < t->rank; a++) {
        if (a) sb_puts(p->out, ", ");
        put_size(p, t->shape[a]);
    }
    sb_putc(p->out, ']');
}

static const char *scheme_name(QuantScheme s)
{
    switch (s) {
    case QS_PER_TENSOR: return NULL;  /* the default: not printed */
    case QS_PER_CHANNEL: return "per_channel";
    case QS_PER_ROW: return "per_row";
    case QS_GROUP: return "group";
    case QS_TERNARY: return "ternary";
    }
    return "?";
}

static void put_annot(StrBuf *out, const Annot *a)
{
    switch (a->kind) {
    case ANN_NONE: return;
    case ANN_QUANT: {
        sb_printf(out, " @quant(%s", dtype_name(a->qdtype));
        const char *s = scheme_name(a->scheme);
        if (a->scheme == QS_GROUP) sb_printf(out, ", group=%lld", (long long)a->group);
        else if (s) sb_printf(out, ", %s", s);
        if (a->zero) sb_puts(out, ", zero");
        if (a->dynamic) sb_puts(out, ", dynamic");
        sb_putc(out, ')');
        return;
    }
    case ANN_CSR: sb_puts(out, " @csr"); return;
    case ANN_BSR:
        sb_printf(out, " @bsr(%lld, %lld)", (long long)a->block[0], (long long)a->block[1]);
        return;
    case ANN_NM:
        sb_printf(out, " @nm(%lld, %lld)", (long long)a->block[0], (long long)a->block[1]);
        return;
    case ANN_COO: sb_puts(out, " @coo"); return;
    }
}

static void put_params(Printer *p, Tensor *const *ts, int n)
{
    for (int i = 0; i < n; i++) {
        if (i) sb_puts(p->out, ", ");
        sb_printf(p->out, "%s: ", ts[i]->name);
        put_type(p, ts[i]);
        put_annot(p->out, &ts[i]->annot);
    }
}

/* ---- statements --------------------------------------------------------------------------------- */

static const char *const reduce_names[] = {
    [RED_NONE] = "",
#define X(k, s) [k] = s,
    AST_REDUCE_OPS(X)
#undef X
};

static void indent(StrBuf *out, int depth)
{
    for (int i = 0; i < depth; i++) sb_puts(out, "  ");
}

static void put_def(Printer *p, const Def *d, int depth)
{
    StrBuf *out = p->out;
    const Tensor *t = d->dst;
    indent(out, depth);
    sb_puts(out, t->name);
    if (t->kind == TK_OUTPUT) {
        if (t->rank) {
            sb_putc(out, '[');
            for (int a = 0; a < t->rank; a++) {
                if (a) sb_puts(out, ", ");
                put_var(p, d->idx[a]);
            }
            sb_putc(out, ']');
        }
    } else {
        sb_puts(out, ": ");
        put_type(p, t);
    }
    sb_puts(out, " = ");
    for (int a = 0; a < t->rank; a++) {
        sb_puts(out, a ? ", " : "for ");
        put_var(p, d->idx[a]);
        if (d->idx[a] && d->idx[a]->kind != VAR_SCAN) {
            sb_puts(out, " < ");
            put_size(p, d->idx[a]->extent);
        }
    }
    if (t->rank) sb_puts(out, ": ");
    if (d->rop != RED_NONE) {
        sb_printf(out, "%s[", (unsigned)d->rop < TD_COUNTOF(reduce_names) ? reduce_names[d->rop] : "?");
        for (int r = 0; r < d->nred; r++) {
            if (r) sb_puts(out, ", ");
            put_var(p, d->red[r]);
            sb_puts(out, " < ");
            put_size(p, d->red[r] ? d->red[r]->extent : NULL);
        }
        sb_puts(out, "] ");
    }
    put_expr(p, d->body);
    sb_putc(out, '\n');
}

static void put_stmt(Printer *p, const Stmt *s, int depth);

static void put_scan(Printer *p, const Scan *sc, int depth)
{
    StrBuf *out = p->out;
    indent(out, depth);
    sb_puts(out, "scan ");
    put_var(p, sc->var);
    sb_puts(out, " < ");
    put_size(p, sc->var ? sc->var->extent : NULL);
    if (sc->reverse) sb_puts(out, " reverse");
    sb_puts(out, " with ");
    for (int i = 0; i < sc->nstates; i++) {
        const ScanState *st = &sc->states[i];
        if (i) sb_puts(out, ", ");
        sb_printf(out, "%s: ", st->state->name);
        put_type(p, st->state);
        sb_puts(out, " = ");
        if (st->init_tensor) sb_puts(out, st->init_tensor->name);
        else put_expr(p, st->init_value);
    }
    sb_puts(out, " {\n");
    /* The scan variable, the first name the header printed, keeps that name in the body. */
    int saved = p->nfixed;
    if (sc->var && p->nnames > saved && p->names[saved].var == sc->var) p->nfixed = saved + 1;
    for (int i = 0; i < sc->nbody; i++) put_stmt(p, sc->body[i], depth + 1);
    p->nfixed = saved;
    indent(out, depth);
    sb_puts(out, "}\n");
}

static void put_stmt(Printer *p, const Stmt *s, int depth)
{
    p->nnames = p->nfixed;  /* names restart per statement */
    switch (s->kind) {
    case STMT_DEF: put_def(p, &s->def, depth); return;
    case STMT_SCAN: put_scan(p, &s->scan, depth); return;
    }
}

static const char *sched_name(SchedKind k)
{
    switch (k) {
    case SCHED_TILE: return "tile";
    case SCHED_VECTORIZE: return "vectorize";
    case SCHED_PARALLEL: return "parallel";
    case SCHED_UNROLL: return "unroll";
    }
    return "?";
}

static void put_schedule(StrBuf *out, const Kernel *k)
{
    if (!k->nsched) return;
    sb_puts(out, "  schedule: ");
    for (int i = 0; i < k->nsched; i++) {
        const SchedDirective *d = &k->sched[i];
        if (i) sb_puts(out, "; ");
        sb_printf(out, "%s %s", sched_name(d->kind), d->var);
        if (d->factor) sb_printf(out, " %lld", (long long)d->factor);
    }
    sb_putc(out, '\n');
}

void ir_print_kernel(const Kernel *k, StrBuf *out)
{
    Printer p = {.out = out};
    for (int i = 0; i < k->nsizes; i++) name_of(&p, k->sizes[i]);  /* sizes keep bare names */
    p.nfixed = p.nnames;
    sb_printf(out, "kernel %s(", k->name);
    put_params(&p, k->ins, k->nins);
    sb_puts(out, ") -> (");
    put_params(&p, k->outs, k->nouts);
    sb_puts(out, ") {\n");
    for (int i = 0; i < k->nstmts; i++) put_stmt(&p, k->stmts[i], 1);
    put_schedule(out, k);
    sb_puts(out, "}\n");
    printer_free(&p);
}

void ir_print_module(const Module *m, StrBuf *out)
{
    for (int i = 0; i < m->nkernels; i++) {
        if (i) sb_putc(out, '\n');
        ir_print_kernel(m->kernels[i], out);
    }
}
