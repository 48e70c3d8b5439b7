/* ast: creating and freeing an AstFile, and the stable text dump of `tcc --emit=ast`.
 *
 * The parsing itself is in parser.y (grammar) and lexer.l (tokens); this file owns the
 * AstFile's lifetime and prints trees. The dump is an indented tree, one node per line,
 * two spaces per level; expressions are printed on one line, fully parenthesised, so
 * precedence is visible: `(a + (b * c))`, `(-(x ^ 2))`, `(x[(i - 1)] ?? 0)`. It must print
 * any tree the parser returns, including one built while recovering from errors. */
#include "ast.h"
#include "parser.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

AstFile *ast_parse(const char *path, char *text, size_t len, DiagSink *d)
{
    AstFile *f = calloc(1, sizeof *f);
    if (!f) td_internal_error(__FILE__, __LINE__, "out of memory");
    arena_init(&f->arena);
    const char *p = path ? path : "<input>";
    f->src.path = malloc(strlen(p) + 1);
    if (!f->src.path) td_internal_error(__FILE__, __LINE__, "out of memory");
    memcpy(f->src.path, p, strlen(p) + 1);
    if (!text) {
        text = calloc(1, 1);
        if (!text) td_internal_error(__FILE__, __LINE__, "out of memory");
        len = 0;
    }
    f->src.text = text;
    f->src.len = len;
    parser_run(f, d);
    return f;
}

void ast_file_free(AstFile *f)
{
    if (!f) return;
    arena_free(&f->arena);
    free(f->src.path);
    free(f->src.text);
    free(f);
}

/* ---- names -------------------------------------------------------------------------------- */

const char *ast_op_name(AstOp op)
{
    switch (op) {
#define X(k, s) case k: return s;
        AST_OPS(X)
#undef X
    }
    return "?";
}

const char *ast_reduce_name(ReduceOp op)
{
    switch (op) {
    case RED_NONE: return "";
#define X(k, s) case k: return s;
        AST_REDUCE_OPS(X)
#undef X
    }
    return "?";
}

const char *ast_expr_kind_name(AstExprKind k)
{
    switch (k) {
#define X(k) case k: return #k;
        AST_EXPR_KINDS(X)
#undef X
    }
    return "?";
}

/* ---- expressions ---------------------------------------------------------------------------- */

/* %.9g, with ".0" added when that reads like an integer, so a float literal stays visibly
 * a float in the dump (`2.` prints as 2.0, `1e-5` as 1e-05). */
static void print_float(double v, StrBuf *out)
{
    if (isnan(v)) {
        sb_puts(out, "nan");
        return;
    }
    if (isinf(v)) {
        sb_puts(out, v > 0 ? "inf" : "-inf");
        return;
    }
    char buf[64];
    snprintf(buf, sizeof buf, "%.9g", v);
    sb_puts(out, buf);
    if (strspn(buf, "-0123456789") == strlen(buf)) sb_puts(out, ".0");
}

static void print_exprs(AstExpr *const *es, int n, StrBuf *out)
{
    for (int i = 0; i < n; i++) {
        if (i > 0) sb_puts(out, ", ");
        ast_print_expr(es[i], out);
    }
}

void ast_print_expr(const AstExpr *e, StrBuf *out)
{
    if (!e) {
        sb_puts(out, "<missing>");
        return;
    }
    switch (e->kind) {
    case AX_INT: sb_printf(out, "%" PRId64, e->ival); break;
    case AX_FLOAT: print_float(e->fval, out); break;
    case AX_BOOL: sb_puts(out, e->ival ? "true" : "false"); break;
    case AX_NAME: sb_puts(out, e->name ? e->name : "<missing>"); break;
    case AX_ELLIPSIS: sb_puts(out, "..."); break;
    case AX_UNARY:
        sb_puts(out, e->op == AOP_NOT ? "(not " : "(-");
        ast_print_expr(e->a, out);
        sb_putc(out, ')');
        break;
    case AX_BINARY:
        sb_putc(out, '(');
        ast_print_expr(e->a, out);
        sb_printf(out, " %s ", ast_op_name(e->op));
        ast_print_expr(e->b, out);
        sb_putc(out, ')');
        break;
    case AX_PAD:
        sb_putc(out, '(');
        ast_print_expr(e->a, out);
        sb_puts(out, " ?? ");
        ast_print_expr(e->b, out);
        sb_putc(out, ')');
        break;
    case AX_INDEX:
        ast_print_expr(e->a, out);
        sb_putc(out, '[');
        print_exprs(e->args, e->nargs, out);
        sb_putc(out, ']');
        break;
    case AX_CALL:
        sb_puts(out, e->name ? e->name : "<missing>");
        sb_putc(out, '(');
        for (int i = 0; i < e->nargs; i++) {
            if (i > 0) sb_puts(out, ", ");
            if (e->argnames && e->argnames[i]) sb_printf(out, "%s=", e->argnames[i]);
            ast_print_expr(e->args[i], out);
        }
        sb_putc(out, ')');
        break;
    case AX_REDUCE:
        sb_printf(out, "%s[", ast_reduce_name(e->rop));
        for (int i = 0; i < e->nrvars; i++) {
            if (i > 0) sb_puts(out, ", ");
            sb_puts(out, e->rvars[i].name);
            if (e->rvars[i].range) {
                sb_puts(out, " < ");
                ast_print_expr(e->rvars[i].range, out);
            }
        }
        sb_puts(out, "](");
        ast_print_expr(e->a, out);
        sb_putc(out, ')');
        break;
    }
}

/* ---- declarations and statements --------------------------------------------------------------- */

static void indent(StrBuf *out, int level)
{
    for (int i = 0; i < level; i++) sb_puts(out, "  ");
}

static void print_type(const AstType *t, StrBuf *out)
{
    sb_puts(out, t->dtype ? t->dtype : "<missing>");
    if (!t->has_brackets) return;
    sb_putc(out, '[');
    for (int i = 0; i < t->ndims; i++) {
        if (i > 0) sb_puts(out, ", ");
        if (t->dims[i].ellipsis) sb_puts(out, "...");
        else ast_print_expr(t->dims[i].size, out);
    }
    sb_putc(out, ']');
}

/* `param w: f32[N, K] @quant(i4, group=128)` or `output y: f32[N]`. */
static void print_param(const char *what, const AstParam *p, int level, StrBuf *out)
{
    indent(out, level);
    sb_printf(out, "%s %s: ", what, p->name);
    print_type(&p->type, out);
    for (int i = 0; i < p->nannots; i++) {
        const AstAnnot *a = &p->annots[i];
        sb_printf(out, " @%s", a->name);
        if (a->nargs == 0) continue;
        sb_putc(out, '(');
        for (int j = 0; j < a->nargs; j++) {
            if (j > 0) sb_puts(out, ", ");
            if (a->args[j].key) sb_printf(out, "%s=", a->args[j].key);
            ast_print_expr(a->args[j].value, out);
        }
        sb_putc(out, ')');
    }
    sb_putc(out, '\n');
}

static void print_stmt(const AstStmt *s, int level, StrBuf *out);

static void print_body(AstStmt *const *body, int n, int level, StrBuf *out)
{
    for (int i = 0; i < n; i++) print_stmt(body[i], level, out);
}

static void print_stmt(const AstStmt *s, int level, StrBuf *out)
{
    indent(out, level);
    switch (s->kind) {
    case AS_DEF:
        sb_printf(out, "def %s", s->name);
        if (s->indexed) {
            sb_putc(out, '[');
            for (int i = 0; i < s->nidx; i++) {
                if (i > 0) sb_puts(out, ", ");
                sb_puts(out, s->idx[i].name ? s->idx[i].name : "...");
            }
            sb_putc(out, ']');
        }
        sb_puts(out, " = ");
        ast_print_expr(s->rhs, out);
        sb_putc(out, '\n');
        break;
    case AS_RETURN:
        sb_puts(out, "return ");
        ast_print_expr(s->rhs, out);
        sb_putc(out, '\n');
        break;
    case AS_SCAN:
        sb_printf(out, "scan %s < ", s->var);
        ast_print_expr(s->extent, out);
        sb_puts(out, s->reverse ? " reverse\n" : "\n");
        for (int i = 0; i < s->nstates; i++) {
            indent(out, level + 1);
            sb_printf(out, "state %s: ", s->states[i].name);
            print_type(&s->states[i].type, out);
            sb_puts(out, " = ");
            ast_print_expr(s->states[i].init, out);
            sb_putc(out, '\n');
        }
        print_body(s->body, s->nbody, level + 1, out);
        break;
    }
}

static void print_item(const AstItem *it, StrBuf *out)
{
    switch (it->kind) {
    case AI_IMPORT:
        sb_printf(out, "import \"%s\"\n", it->path);
        break;
    case AI_CONST:
        sb_printf(out, "const %s = ", it->name);
        ast_print_expr(it->value, out);
        sb_putc(out, '\n');
        break;
    case AI_FN:
        sb_printf(out, "fn %s\n", it->name);
        for (int i = 0; i < it->nparams; i++) print_param("param", &it->params[i], 1, out);
        indent(out, 1);
        sb_puts(out, "returns ");
        print_type(&it->ret, out);
        sb_putc(out, '\n');
        print_body(it->body, it->nbody, 1, out);
        break;
    case AI_KERNEL:
        sb_printf(out, "kernel %s\n", it->name);
        for (int i = 0; i < it->nparams; i++) print_param("param", &it->params[i], 1, out);
        for (int i = 0; i < it->noutputs; i++) print_param("output", &it->outputs[i], 1, out);
        print_body(it->body, it->nbody, 1, out);
        break;
    case AI_SCHEDULE:
        sb_printf(out, "schedule %s\n", it->name);
        for (int i = 0; i < it->ndirectives; i++) {
            const AstDirective *d = &it->directives[i];
            indent(out, 1);
            sb_puts(out, d->name);
            for (int j = 0; j < d->nargs; j++) {
                sb_puts(out, j == 0 ? " " : ", ");
                sb_puts(out, d->args[j].var);
                if (d->args[j].has_factor) sb_printf(out, " %" PRId64, d->args[j].factor);
            }
            sb_putc(out, '\n');
        }
        break;
    }
}

void ast_print(const AstFile *f, StrBuf *out)
{
    if (!f) return;
    for (int i = 0; i < f->nitems; i++) print_item(f->items[i], out);
}
