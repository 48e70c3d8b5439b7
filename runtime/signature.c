/* signature.c: kernel signatures as text, and their descriptors.
 *
 * One form describes a kernel everywhere (the JIT, an AOT .so's tdsl_manifest, the
 * generated header, tdsl_kernel_signature):
 *
 *     sig    = NAME "(" [ param { "," param } ] ")" "->" "(" param { "," param } ")"
 *     param  = NAME ":" DTYPE [ "[" dim { "," dim } "]" ] { "@" NAME [ "(" text ")" ] }
 *     dim    = term { ("+" | "-") term } ;  term = atom { ("*" | "/") atom }
 *     atom   = INT | NAME | "(" dim ")"
 *
 * rt_sig_parse turns it into an RtSig (names, dtypes, ranks, dimension trees, size names
 * in order of first appearance, which is the order of Kernel.sizes and of the raw kernel's
 * sizes array). It takes untrusted text (a manifest read from any .so): every failure is
 * an error message, never a crash, and recursion and counts are bounded. Annotations are
 * kept as text. rt_format_signature prints a tensor-IR kernel in the same form; it is left
 * out of the standalone runtime (TDSL_RT_STANDALONE), which must not depend on the IR. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rt.h"

/* ---- element types ------------------------------------------------------------------------ */

static const RtDTypeInfo rt_dtypes[] = {
#define X(e, name, bits, is_float, is_signed, dl) {name, bits, dl},
#include "../ir/dtype.def"
#undef X
};

int rt_dtype_count(void) { return (int)(sizeof rt_dtypes / sizeof rt_dtypes[0]); }

const RtDTypeInfo *rt_dtype_info(int dtype)
{
    return dtype >= 0 && dtype < rt_dtype_count() ? &rt_dtypes[dtype] : NULL;
}

int rt_dtype_from_name(const char *name, size_t len)
{
    for (int t = 0; t < rt_dtype_count(); t++)
        if (strlen(rt_dtypes[t].name) == len && memcmp(rt_dtypes[t].name, name, len) == 0) return t;
    return -1;
}

/* ---- descriptor memory: chunks freed together with the RtSig ------------------------------ */

struct RtChunk {
    RtChunk *next;
    size_t   used, cap;
    _Alignas(16) unsigned char data[];
};

static void *sig_alloc(RtSig *s, size_t size)
{
    size = (size + 15) & ~(size_t)15;
    RtChunk *c = s->mem;
    if (!c || c->cap - c->used < size) {
        size_t cap = size > 4096 ? size : 4096;
        c = malloc(sizeof(RtChunk) + cap);
        if (!c) return NULL;
        c->next = s->mem;
        c->used = 0;
        c->cap = cap;
        s->mem = c;
    }
    void *p = c->data + c->used;
    c->used += size;
    memset(p, 0, size);
    return p;
}

static char *sig_strndup(RtSig *s, const char *p, size_t n)
{
    char *d = sig_alloc(s, n + 1);
    if (d) {
        memcpy(d, p, n);
        d[n] = '\0';
    }
    return d;
}

void rt_sig_free(RtSig *s)
{
    if (!s) return;
    RtChunk *c = s->mem;
    while (c) {
        RtChunk *next = c->next;
        free(c);
        c = next;
    }
    free(s);
}

/* ---- parser -------------------------------------------------------------------------------- */

enum { MAX_DIM_DEPTH = 64, MAX_DIM_NODES = 256 };

typedef struct Parser {
    const char *src;      /* the text, len bytes */
    size_t      len;
    size_t      pos;      /* next byte */
    RtSig      *sig;      /* being built */
    char       *err;      /* the caller's message buffer */
    size_t      errcap;
    bool        failed;   /* the first error wins; later ones are not reported */
    int         depth;    /* dimension nesting, bounded */
    int         nodes;    /* dimension nodes of the current parameter, bounded */
    RtParam    *params;   /* heap, grown as parameters are read */
    int         cap_params;
    const char **sizes;   /* heap, grown as size names appear */
    int         cap_sizes;
} Parser;

static bool fail(Parser *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static bool fail(Parser *p, const char *fmt, ...)
{
    if (p->failed) return false;
    p->failed = true;
    if (!p->errcap) return false;
    int n = snprintf(p->err, p->errcap, "column %zu: ", p->pos + 1);
    if (n >= 0 && (size_t)n < p->errcap) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(p->err + n, p->errcap - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return false;
}

static bool oom(Parser *p)
{
    if (!p->failed && p->errcap) snprintf(p->err, p->errcap, "out of memory");
    p->failed = true;
    return false;
}

static int peek(Parser *p)
{
    while (p->pos < p->len && (p->src[p->pos] == ' ' || p->src[p->pos] == '\t')) p->pos++;
    return p->pos < p->len ? (unsigned char)p->src[p->pos] : -1;
}

static bool accept(Parser *p, char c)
{
    if (peek(p) != (unsigned char)c) return false;
    p->pos++;
    return true;
}

static bool expect(Parser *p, char c, const char *what)
{
    if (accept(p, c)) return true;
    return fail(p, "expected '%c' %s", c, what);
}

static bool is_ident_start(int c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_'; }
static bool is_digit(int c) { return c >= '0' && c <= '9'; }

/* An identifier, copied into the descriptor. */
static const char *ident(Parser *p, const char *what)
{
    if (!is_ident_start(peek(p))) {
        fail(p, "expected %s", what);
        return NULL;
    }
    size_t start = p->pos;
    while (p->pos < p->len && (is_ident_start((unsigned char)p->src[p->pos]) || is_digit((unsigned char)p->src[p->pos])))
        p->pos++;
    const char *s = sig_strndup(p->sig, p->src + start, p->pos - start);
    if (!s) oom(p);
    return s;
}

static RtDim *new_dim(Parser *p, RtDimOp op)
{
    if (++p->nodes > MAX_DIM_NODES) {
        fail(p, "dimensions too complex");
        return NULL;
    }
    RtDim *d = sig_alloc(p->sig, sizeof *d);
    if (!d) {
        oom(p);
        return NULL;
    }
    d->op = op;
    return d;
}

static int size_index(Parser *p, const char *name)
{
    RtSig *s = p->sig;
    for (int i = 0; i < s->nsizes; i++)
        if (strcmp(s->sizes[i], name) == 0) return i;
    if (s->nsizes == p->cap_sizes) {
        int cap = p->cap_sizes ? 2 * p->cap_sizes : 8;
        const char **n = realloc(p->sizes, (size_t)cap * sizeof *n);
        if (!n) {
            oom(p);
            return -1;
        }
        p->sizes = n;
        p->cap_sizes = cap;
        s->sizes = n;
    }
    s->sizes[s->nsizes] = name;
    return s->nsizes++;
}

static const RtDim *parse_dim(Parser *p);

static const RtDim *parse_atom(Parser *p)
{
    int c = peek(p);
    if (c == '(') {
        p->pos++;
        if (++p->depth > MAX_DIM_DEPTH) {
            fail(p, "dimension nested too deeply");
            return NULL;
        }
        const RtDim *d = parse_dim(p);
        p->depth--;
        if (!d || !expect(p, ')', "to close the parenthesis")) return NULL;
        return d;
    }
    if (is_digit(c)) {
        int64_t v = 0;
        while (p->pos < p->len && is_digit((unsigned char)p->src[p->pos])) {
            int digit = p->src[p->pos] - '0';
            if (v > (INT64_MAX - digit) / 10) {
                fail(p, "integer too large");
                return NULL;
            }
            v = v * 10 + digit;
            p->pos++;
        }
        RtDim *d = new_dim(p, RT_DIM_CONST);
        if (d) d->value = v;
        return d;
    }
    if (is_ident_start(c)) {
        const char *name = ident(p, "a size name");
        if (!name) return NULL;
        int i = size_index(p, name);
        if (i < 0) return NULL;
        RtDim *d = new_dim(p, RT_DIM_SIZE);
        if (d) d->size = i;
        return d;
    }
    fail(p, "expected a dimension (an integer, a size name or '(')");
    return NULL;
}

static const RtDim *parse_term(Parser *p)
{
    const RtDim *a = parse_atom(p);
    while (a) {
        int c = peek(p);
        if (c != '*' && c != '/') break;
        p->pos++;
        const RtDim *b = parse_atom(p);
        RtDim *d = b ? new_dim(p, c == '*' ? RT_DIM_MUL : RT_DIM_DIV) : NULL;
        if (!d) return NULL;
        d->a = a;
        d->b = b;
        a = d;
    }
    return a;
}

static const RtDim *parse_dim(Parser *p)
{
    const RtDim *a = parse_term(p);
    while (a) {
        int c = peek(p);
        if (c != '+' && c != '-') break;
        /* "->" never follows a dimension inside brackets; a '-' here is subtraction */
        p->pos++;
        const RtDim *b = parse_term(p);
        RtDim *d = b ? new_dim(p, c == '+' ? RT_DIM_ADD : RT_DIM_SUB) : NULL;
        if (!d) return NULL;
        d->a = a;
        d->b = b;
        a = d;
    }
    return a;
}

/* Annotations: "@name" optionally followed by a balanced "(...)", kept as text. */
static bool parse_annots(Parser *p, RtParam *prm)
{
    if (peek(p) != '@') return true;
    size_t start = p->pos;
    while (peek(p) == '@') {
        p->pos++;
        if (!ident(p, "an annotation name after '@'")) return false;
        if (peek(p) == '(') {
            int level = 0;
            do {
                if (p->pos >= p->len || p->src[p->pos] == '\0' || p->src[p->pos] == '\n')
                    return fail(p, "unterminated annotation argument list");
                if (p->src[p->pos] == '(') level++;
                if (p->src[p->pos] == ')') level--;
                p->pos++;
            } while (level > 0);
        }
    }
    size_t end = p->pos;
    while (end > start && (p->src[end - 1] == ' ' || p->src[end - 1] == '\t')) end--;
    prm->annot = sig_strndup(p->sig, p->src + start, end - start);
    if (!prm->annot) return oom(p);
    p->sig->annotated = true;
    return true;
}

static bool parse_param(Parser *p, bool output)
{
    RtSig *s = p->sig;
    if (s->nparams >= RT_MAX_PARAMS) return fail(p, "too many parameters");
    if (s->nparams == p->cap_params) {
        int cap = p->cap_params ? 2 * p->cap_params : 8;
        RtParam *n = realloc(p->params, (size_t)cap * sizeof *n);
        if (!n) return oom(p);
        p->params = n;
        p->cap_params = cap;
        s->params = n;
    }
    RtParam *prm = &s->params[s->nparams];
    memset(prm, 0, sizeof *prm);
    prm->output = output;
    prm->name = ident(p, output ? "an output name" : "a parameter name");
    if (!prm->name) return false;
    for (int i = 0; i < s->nparams; i++)
        if (strcmp(s->params[i].name, prm->name) == 0)
            return fail(p, "'%s' is declared twice", prm->name);
    s->nparams++;
    if (!expect(p, ':', "after the parameter name")) return false;
    if (!is_ident_start(peek(p))) return fail(p, "expected an element type");
    size_t start = p->pos;
    while (p->pos < p->len && (is_ident_start((unsigned char)p->src[p->pos]) || is_digit((unsigned char)p->src[p->pos])))
        p->pos++;
    prm->dtype = rt_dtype_from_name(p->src + start, p->pos - start);
    if (prm->dtype < 0) {
        int n = (int)(p->pos - start);
        p->pos = start;
        return fail(p, "unknown element type '%.*s'", n, p->src + start);
    }
    if (accept(p, '[')) {
        const RtDim *dims[RT_MAX_RANK];
        p->nodes = 0;
        do {
            if (prm->rank == RT_MAX_RANK) return fail(p, "more than %d dimensions", RT_MAX_RANK);
            p->depth = 0;
            dims[prm->rank] = parse_dim(p);
            if (!dims[prm->rank]) return false;
            prm->rank++;
        } while (accept(p, ','));
        if (!expect(p, ']', "after the dimensions")) return false;
        prm->dims = sig_alloc(s, (size_t)prm->rank * sizeof *prm->dims);
        if (!prm->dims) return oom(p);
        memcpy(prm->dims, dims, (size_t)prm->rank * sizeof *dims);
    }
    return parse_annots(p, prm);
}

static bool parse_sig(Parser *p)
{
    RtSig *s = p->sig;
    s->name = ident(p, "the kernel name");
    if (!s->name || !expect(p, '(', "after the kernel name")) return false;
    if (!accept(p, ')')) {
        do {
            if (!parse_param(p, false)) return false;
        } while (accept(p, ','));
        if (!expect(p, ')', "after the parameters")) return false;
    }
    s->nins = s->nparams;
    if (peek(p) != '-' || p->pos + 1 >= p->len || p->src[p->pos + 1] != '>')
        return fail(p, "expected '->' after the parameters");
    p->pos += 2;
    if (accept(p, '(')) {
        do {
            if (!parse_param(p, true)) return false;
        } while (accept(p, ','));
        if (!expect(p, ')', "after the outputs")) return false;
    } else if (!parse_param(p, true)) {
        return false;
    }
    s->nouts = s->nparams - s->nins;
    int c = peek(p);
    if (c != -1 && c != '\0') return fail(p, "unexpected '%c' after the signature", c);
    for (int i = 0; i < s->nsizes; i++)
        for (int j = 0; j < s->nparams; j++)
            if (strcmp(s->sizes[i], s->params[j].name) == 0)
                return fail(p, "'%s' is both a size name and a parameter", s->sizes[i]);
    return true;
}

RtSig *rt_sig_parse(const char *text, size_t len, char *err, size_t errcap)
{
    if (errcap) err[0] = '\0';
    if (!text) {
        if (errcap) snprintf(err, errcap, "no signature");
        return NULL;
    }
    const char *nul = memchr(text, '\0', len);
    if (nul) len = (size_t)(nul - text);
    RtSig *s = calloc(1, sizeof *s);
    if (!s) {
        if (errcap) snprintf(err, errcap, "out of memory");
        return NULL;
    }
    Parser p = {.src = text, .len = len, .sig = s, .err = err, .errcap = errcap};
    bool ok = parse_sig(&p);
    /* move the growable arrays into the descriptor's own memory */
    if (ok) {
        s->text = sig_strndup(s, text, len);
        RtParam *params = sig_alloc(s, (size_t)s->nparams * sizeof *params + 1);
        const char **sizes = sig_alloc(s, (size_t)s->nsizes * sizeof *sizes + 1);
        if (!s->text || !params || !sizes) {
            ok = oom(&p);
        } else {
            if (s->nparams) memcpy(params, p.params, (size_t)s->nparams * sizeof *params);
            if (s->nsizes) memcpy(sizes, p.sizes, (size_t)s->nsizes * sizeof *sizes);
            s->params = params;
            s->sizes = sizes;
        }
    }
    free(p.params);
    free(p.sizes);
    if (!ok) {
        s->params = NULL;
        s->sizes = NULL;
        rt_sig_free(s);
        return NULL;
    }
    return s;
}

/* ---- evaluation and printing ------------------------------------------------------------------- */

bool rt_dim_eval(const RtDim *d, const int64_t *sizes, int64_t *out)
{
    int64_t a, b;
    switch (d->op) {
    case RT_DIM_CONST:
        *out = d->value;
        return true;
    case RT_DIM_SIZE:
        if (sizes[d->size] < 0) return false;
        *out = sizes[d->size];
        return true;
    case RT_DIM_ADD:
    case RT_DIM_SUB:
    case RT_DIM_MUL:
    case RT_DIM_DIV:
        if (!rt_dim_eval(d->a, sizes, &a) || !rt_dim_eval(d->b, sizes, &b)) return false;
        break;
    }
    switch (d->op) {
    case RT_DIM_CONST:
    case RT_DIM_SIZE:
        return true;
    case RT_DIM_ADD: return !__builtin_add_overflow(a, b, out);
    case RT_DIM_SUB: return !__builtin_sub_overflow(a, b, out);
    case RT_DIM_MUL: return !__builtin_mul_overflow(a, b, out);
    case RT_DIM_DIV: {
        if (b == 0 || (a == INT64_MIN && b == -1)) return false;
        int64_t q = a / b, r = a % b;
        if (r != 0 && ((r < 0) != (b < 0))) q -= 1;  /* floor, like ir_eval_size */
        *out = q;
        return true;
    }
    }
    return false;
}

/* snprintf-style output: counts what it would write, writes what fits. */
typedef struct Out {
    char  *buf;
    size_t cap;
    size_t len;
} Out;

static void out_puts(Out *o, const char *s)
{
    size_t n = strlen(s);
    if (o->len < o->cap) {
        size_t room = o->cap - o->len - 1;
        memcpy(o->buf + o->len, s, n < room ? n : room);
        o->buf[o->len + (n < room ? n : room)] = '\0';
    }
    o->len += n;
}

static int dim_prec(const RtDim *d)
{
    switch (d->op) {
    case RT_DIM_ADD: case RT_DIM_SUB: return 1;
    case RT_DIM_MUL: case RT_DIM_DIV: return 2;
    case RT_DIM_CONST: case RT_DIM_SIZE: return 3;
    }
    return 3;
}

static void put_dim(Out *o, const RtSig *s, const RtDim *d)
{
    char num[24];
    switch (d->op) {
    case RT_DIM_CONST:
        snprintf(num, sizeof num, "%lld", (long long)d->value);
        out_puts(o, num);
        return;
    case RT_DIM_SIZE:
        out_puts(o, s->sizes[d->size]);
        return;
    case RT_DIM_ADD: case RT_DIM_SUB: case RT_DIM_MUL: case RT_DIM_DIV: {
        int prec = dim_prec(d);
        bool lp = dim_prec(d->a) < prec, rp = dim_prec(d->b) <= prec;
        static const char *const ops[] = {[RT_DIM_ADD] = " + ", [RT_DIM_SUB] = " - ",
                                          [RT_DIM_MUL] = " * ", [RT_DIM_DIV] = " / "};
        if (lp) out_puts(o, "(");
        put_dim(o, s, d->a);
        if (lp) out_puts(o, ")");
        out_puts(o, ops[d->op]);
        if (rp) out_puts(o, "(");
        put_dim(o, s, d->b);
        if (rp) out_puts(o, ")");
        return;
    }
    }
}

int rt_dim_format(const RtSig *s, const RtDim *d, char *buf, size_t cap)
{
    Out o = {buf, cap, 0};
    if (cap) buf[0] = '\0';
    put_dim(&o, s, d);
    return (int)o.len;
}

int rt_param_type_format(const RtSig *s, const RtParam *p, char *buf, size_t cap)
{
    Out o = {buf, cap, 0};
    if (cap) buf[0] = '\0';
    out_puts(&o, rt_dtype_info(p->dtype)->name);
    if (p->rank) {
        out_puts(&o, "[");
        for (int a = 0; a < p->rank; a++) {
            if (a) out_puts(&o, ", ");
            put_dim(&o, s, p->dims[a]);
        }
        out_puts(&o, "]");
    }
    return (int)o.len;
}

/* ---- the signature of a tensor-IR kernel -------------------------------------------------------- */

#ifndef TDSL_RT_STANDALONE
#include "../ir/ir.h"

_Static_assert(DT_COUNT == sizeof rt_dtypes / sizeof rt_dtypes[0], "rt_dtypes follows ir/dtype.def");

static void fmt_size(StrBuf *out, const Expr *e, int parent_prec, bool right)
{
    int prec = 3;
    if (e->nargs == 2 && (e->op == OP_ADD || e->op == OP_SUB)) prec = 1;
    if (e->nargs == 2 && (e->op == OP_MUL || e->op == OP_DIV)) prec = 2;
    bool paren = prec < parent_prec || (right && prec == parent_prec);
    if (paren) sb_putc(out, '(');
    if (e->op == OP_CONST && !dtype_is_float(e->type)) {
        sb_printf(out, "%lld", (long long)e->value.i);
    } else if (e->op == OP_VAR && e->var) {
        sb_puts(out, e->var->name);
    } else if (prec < 3) {
        fmt_size(out, e->args[0], prec, false);
        sb_printf(out, " %s ", op_infix(e->op));
        fmt_size(out, e->args[1], prec, true);
    } else {
        sb_puts(out, "?");  /* not a size expression: rt_sig_parse rejects the result */
    }
    if (paren) sb_putc(out, ')');
}

static void fmt_annot(StrBuf *out, const Annot *a)
{
    switch (a->kind) {
    case ANN_NONE: return;
    case ANN_QUANT:
        sb_printf(out, " @quant(%s", dtype_name(a->qdtype));
        switch (a->scheme) {
        case QS_PER_TENSOR: break;
        case QS_PER_CHANNEL: sb_puts(out, ", per_channel"); break;
        case QS_PER_ROW: sb_puts(out, ", per_row"); break;
        case QS_GROUP: sb_printf(out, ", group=%lld", (long long)a->group); break;
        case QS_TERNARY: sb_puts(out, ", ternary"); break;
        }
        if (a->zero) sb_puts(out, ", zero");
        if (a->dynamic) sb_puts(out, ", dynamic");
        sb_putc(out, ')');
        return;
    case ANN_CSR: sb_puts(out, " @csr"); return;
    case ANN_BSR: sb_printf(out, " @bsr(%lld, %lld)", (long long)a->block[0], (long long)a->block[1]); return;
    case ANN_NM: sb_printf(out, " @nm(%lld, %lld)", (long long)a->block[0], (long long)a->block[1]); return;
    case ANN_COO: sb_puts(out, " @coo"); return;
    }
}

static void fmt_params(StrBuf *out, Tensor *const *ts, int n)
{
    for (int i = 0; i < n; i++) {
        const Tensor *t = ts[i];
        if (i) sb_puts(out, ", ");
        sb_printf(out, "%s: %s", t->name, dtype_name(t->dtype));
        if (t->rank) {
            sb_putc(out, '[');
            for (int a = 0; a < t->rank; a++) {
                if (a) sb_puts(out, ", ");
                fmt_size(out, t->shape[a], 0, false);
            }
            sb_putc(out, ']');
        }
        fmt_annot(out, &t->annot);
    }
}

void rt_format_signature(const Kernel *k, StrBuf *out)
{
    sb_printf(out, "%s(", k->name);
    fmt_params(out, k->ins, k->nins);
    sb_puts(out, ") -> (");
    fmt_params(out, k->outs, k->nouts);
    sb_putc(out, ')');
}

bool rt_checked_signature(const Kernel *k, StrBuf *out, StrBuf *err)
{
    rt_format_signature(k, out);
    char why[256];
    RtSig *s = rt_sig_parse(sb_cstr(out), out->len, why, sizeof why);
    if (!s) {
        sb_printf(err, "internal error: the signature '%s' does not parse: %s\n", sb_cstr(out), why);
        return false;
    }
    rt_sig_free(s);
    return true;
}

/* ---- names in generated C (the CPU and CUDA shared-library builders) ---------------------------- */

static const char *const c_reserved[] = {
    "auto", "break", "case", "char", "const", "continue", "default", "do", "double", "else", "enum",
    "extern", "float", "for", "goto", "if", "inline", "int", "long", "register", "restrict", "return",
    "short", "signed", "sizeof", "static", "struct", "switch", "typedef", "union", "unsigned", "void",
    "volatile", "while", "_Alignas", "_Alignof", "_Atomic", "_Bool", "_Complex", "_Generic",
    "_Imaginary", "_Noreturn", "_Static_assert", "_Thread_local", "bool", "true", "false",
    "alignas", "alignof", "nullptr", "static_assert", "thread_local", "typeof", "typeof_unqual",
    "constexpr", "main", "DLTensor",
};

bool rt_c_reserved(const char *name)
{
    for (size_t i = 0; i < sizeof c_reserved / sizeof c_reserved[0]; i++)
        if (strcmp(name, c_reserved[i]) == 0) return true;
    return false;
}

bool rt_check_export_name(const char *name, StrBuf *err)
{
    if (rt_c_reserved(name)) {
        sb_printf(err, "kernel '%s' cannot be exported from a shared library: '%s' is reserved in C; rename the kernel\n",
                  name, name);
        return false;
    }
    if (strncmp(name, "tdsl_", 5) == 0) {
        sb_printf(err, "kernel '%s' cannot be exported from a shared library: the prefix 'tdsl_' is reserved for "
                  "the runtime; rename the kernel\n", name);
        return false;
    }
    return true;
}

void rt_put_c_string(StrBuf *out, const char *s, size_t n)
{
    sb_putc(out, '"');
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') sb_printf(out, "\\%c", c);
        else if (c == '\n') sb_puts(out, "\\n");
        else if (c < 0x20 || c >= 0x7f) sb_printf(out, "\\%03o", c);
        else sb_putc(out, (char)c);
    }
    sb_putc(out, '"');
}
#endif
