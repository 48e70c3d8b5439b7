/* test_parser: the grammar of LANGUAGE.md section 11, through the `--emit=ast` dump.
 *
 * Most tests parse a snippet and compare the whole ast_print output; precedence tests
 * compare one fully parenthesised expression. Error tests check the count and the exact
 * `file:line:col: error:` lines in the sink's log, so recovery and carets are both pinned.
 * The robustness tests feed bytes no user would write and only ask for no crash, a bounded
 * tree and a sensible number of errors (the sanitizer build checks for leaks). */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "frontend/ast.h"

typedef struct Parsed {
    char *ast;      /* ast_print output */
    char *log;      /* every diagnostic */
    int   nerrors;
} Parsed;

static Parsed parse_n(const char *src, size_t len)
{
    DiagSink d;
    diag_init(&d, NULL);
    char *text = malloc(len + 1);
    memcpy(text, src, len);
    text[len] = 0;
    AstFile *f = ast_parse("t.tdsl", text, len, &d);
    StrBuf out = {0};
    ast_print(f, &out);
    Parsed r = {strdup(sb_cstr(&out)), strdup(sb_cstr(&d.log)), d.nerrors};
    sb_free(&out);
    ast_file_free(f);
    diag_free(&d);
    return r;
}

static Parsed parse(const char *src) { return parse_n(src, strlen(src)); }

static void parsed_free(Parsed *r)
{
    free(r->ast);
    free(r->log);
}

static void expect_ast(const char *src, const char *want)
{
    Parsed r = parse(src);
    cr_expect_str_eq(r.ast, want, "source:\n%s", src);
    cr_expect_eq(r.nerrors, 0, "unexpected errors:\n%s", r.log);
    parsed_free(&r);
}

/* The dump of `const X = <expr>` without its "const X = " and newline. */
static void expect_expr(const char *expr, const char *want)
{
    char src[512];
    snprintf(src, sizeof src, "const X = %s\n", expr);
    Parsed r = parse(src);
    char got[512] = "";
    if (strncmp(r.ast, "const X = ", 10) == 0) snprintf(got, sizeof got, "%s", r.ast + 10);
    char *nl = strchr(got, '\n');
    if (nl) *nl = 0;
    cr_expect_str_eq(got, want, "expression: %s", expr);
    cr_expect_eq(r.nerrors, 0, "unexpected errors:\n%s", r.log);
    parsed_free(&r);
}

/* Checks the error count and that each wanted fragment appears in the log. */
static void expect_errors(const char *src, int n, const char *const *want, int nwant)
{
    Parsed r = parse(src);
    cr_expect_eq(r.nerrors, n, "errors for:\n%s\nlog:\n%s", src, r.log);
    for (int i = 0; i < nwant; i++)
        cr_expect(strstr(r.log, want[i]) != NULL, "missing `%s` in:\n%s", want[i], r.log);
    parsed_free(&r);
}

/* ---- every construct ---------------------------------------------------------------------- */

Test(parser, layernorm)
{
    expect_ast("import \"nn\"\n"
               "\n"
               "const EPS = 1e-5\n"
               "\n"
               "# Layer normalisation over the last axis, written out by hand.\n"
               "kernel layernorm(x: f32[N, D], g: f32[D], b: f32[D]) -> y: f32[N, D] {\n"
               "    mu[n]   = mean[d](x[n, d])\n"
               "    var[n]  = mean[d]((x[n, d] - mu[n]) ^ 2)\n"
               "    y[n, d] = (x[n, d] - mu[n]) * rsqrt(var[n] + EPS) * g[d] + b[d]\n"
               "}\n",
               "import \"nn\"\n"
               "const EPS = 1e-05\n"
               "kernel layernorm\n"
               "  param x: f32[N, D]\n"
               "  param g: f32[D]\n"
               "  param b: f32[D]\n"
               "  output y: f32[N, D]\n"
               "  def mu[n] = mean[d](x[n, d])\n"
               "  def var[n] = mean[d](((x[n, d] - mu[n]) ^ 2))\n"
               "  def y[n, d] = ((((x[n, d] - mu[n]) * rsqrt((var[n] + EPS))) * g[d]) + b[d])\n");
}

Test(parser, attention_header_on_two_lines)
{
    expect_ast("kernel attention(q: f32[B, H, N, D], k: f32[B, H, M, D],\n"
               "                 v: f32[B, H, M, D])\n"
               "        -> o: f32[B, H, N, D] {\n"
               "    s[b, h, n, m] = sum[d](q[b, h, n, d] * k[b, h, m, d]) * rsqrt(f32(D))\n"
               "    p = softmax(s)                # whole-tensor call, last axis\n"
               "    o[b, h, n, d] = sum[m](p[b, h, n, m] * v[b, h, m, d])\n"
               "}\n",
               "kernel attention\n"
               "  param q: f32[B, H, N, D]\n"
               "  param k: f32[B, H, M, D]\n"
               "  param v: f32[B, H, M, D]\n"
               "  output o: f32[B, H, N, D]\n"
               "  def s[b, h, n, m] = (sum[d]((q[b, h, n, d] * k[b, h, m, d])) * rsqrt(f32(D)))\n"
               "  def p = softmax(s)\n"
               "  def o[b, h, n, d] = sum[m]((p[b, h, n, m] * v[b, h, m, d]))\n");
}

Test(parser, several_outputs_and_annotations)
{
    expect_ast("kernel k(w: f32[N, K] @quant(i4, group=128) @csr, a: f32[M, K] @bsr(4, 4),\n"
               "         x: f32[M, K] @quant(i8, per_row, dynamic), eps: f32)\n"
               "    -> (o1: f32[M, N],\n"
               "        o2: i32[M]) {\n"
               "    o1 = x @ w\n"
               "    o2[m] = argmax[n](o1[m, n])\n"
               "}\n",
               "kernel k\n"
               "  param w: f32[N, K] @quant(i4, group=128) @csr\n"
               "  param a: f32[M, K] @bsr(4, 4)\n"
               "  param x: f32[M, K] @quant(i8, per_row, dynamic)\n"
               "  param eps: f32\n"
               "  output o1: f32[M, N]\n"
               "  output o2: i32[M]\n"
               "  def o1 = (x @ w)\n"
               "  def o2[m] = argmax[n](o1[m, n])\n");
}

Test(parser, fn_with_ellipsis)
{
    expect_ast("fn softmax(x: f32[..., N]) -> f32[..., N] {\n"
               "    m[...] = max[j](x[..., j])\n"
               "    e[..., j] = exp(x[..., j] - m[...])\n"
               "    return e\n"
               "}\n"
               "fn id(x: f32) -> f32 { return x }",
               "fn softmax\n"
               "  param x: f32[..., N]\n"
               "  returns f32[..., N]\n"
               "  def m[...] = max[j](x[..., j])\n"
               "  def e[..., j] = exp((x[..., j] - m[...]))\n"
               "  return e\n"
               "fn id\n"
               "  param x: f32\n"
               "  returns f32\n"
               "  return x\n");
}

Test(parser, dims)
{
    expect_ast("kernel k(x: f32[N + 1, 2 * (K - 1), K / 2 - 1, 3], s: f32[]) -> y: bool {\n"
               "    y = true\n"
               "}\n",
               "kernel k\n"
               "  param x: f32[(N + 1), (2 * (K - 1)), ((K / 2) - 1), 3]\n"
               "  param s: f32[]\n"
               "  output y: bool\n"
               "  def y = true\n");
}

Test(parser, scan)
{
    expect_ast("kernel rnn(a: f32[T, K], h0: f32[K]) -> o: f32[T, K] {\n"
               "    scan t < T reverse with S: f32[K, V] = 0,\n"
               "                           h: f32[K] = h0\n"
               "    {\n"
               "        S[i, j] = a[t, i] * S[i, j]\n"
               "\n"
               "        o[t, j] = sum[i](S[i, j])\n"
               "    }\n"
               "    scan t < T - 1 with c: f32 = -1.5 {\n"
               "    }\n"
               "    last = S\n"
               "}\n",
               "kernel rnn\n"
               "  param a: f32[T, K]\n"
               "  param h0: f32[K]\n"
               "  output o: f32[T, K]\n"
               "  scan t < T reverse\n"
               "    state S: f32[K, V] = 0\n"
               "    state h: f32[K] = h0\n"
               "    def S[i, j] = (a[t, i] * S[i, j])\n"
               "    def o[t, j] = sum[i](S[i, j])\n"
               "  scan t < (T - 1)\n"
               "    state c: f32 = (-1.5)\n"
               "  def last = S\n");
}

Test(parser, schedule)
{
    expect_ast("schedule attention {\n"
               "    tile n 64, m 64          # split n and m\n"
               "    vectorize d\n"
               "    parallel b,\n"
               "             h\n"
               "\n"
               "    unroll k 4\n"
               "}\n"
               "schedule empty {}\n",
               "schedule attention\n"
               "  tile n 64, m 64\n"
               "  vectorize d\n"
               "  parallel b, h\n"
               "  unroll k 4\n"
               "schedule empty\n");
}

Test(parser, calls_and_reductions)
{
    expect_expr("where(c, a, b)", "where(c, a, b)");
    expect_expr("max(a, b) + min(a, 0)", "(max(a, b) + min(a, 0))");
    expect_expr("layernorm(x, g, eps = 1e-5)", "layernorm(x, g, eps=1e-05)");
    expect_expr("f()", "f()");
    expect_expr("f32(i) * i8(x)", "(f32(i) * i8(x))");
    expect_expr("sum[k < K, j](x[k, j])", "sum[k < K, j](x[k, j])");
    expect_expr("sum[kh < 3, kw < K + 1](w[kh, kw])", "sum[kh < 3, kw < (K + 1)](w[kh, kw])");
    expect_expr("any[i](x[i] > 0)", "any[i]((x[i] > 0))");
    expect_expr("softmax(x)[n, d]", "softmax(x)[n, d]");
    expect_expr("x[2*h + kh - 1, i / 2, i % 2]", "x[(((2 * h) + kh) - 1), (i / 2), (i % 2)]");
    expect_expr("x[..., j]", "x[..., j]");
}

Test(parser, literals)
{
    expect_expr("42", "42");
    expect_expr("1.5", "1.5");
    expect_expr("1e-5", "1e-05");
    expect_expr(".5", "0.5");
    expect_expr("2.", "2.0");
    expect_expr("3e2", "300.0");
    expect_expr("inf", "inf");
    expect_expr("-inf", "(-inf)");
    expect_expr("nan", "nan");
    expect_expr("true or false", "(true or false)");
}

/* ---- precedence ---------------------------------------------------------------------------- */

Test(parser, precedence)
{
    expect_expr("a + b * c", "(a + (b * c))");
    expect_expr("a - b - c", "((a - b) - c)");
    expect_expr("-x^2", "(-(x ^ 2))");
    expect_expr("a ^ b ^ c", "(a ^ (b ^ c))");
    expect_expr("2 ^ -1", "(2 ^ (-1))");
    expect_expr("-a * b", "((-a) * b)");
    expect_expr("a * b @ c", "((a * b) @ c)");
    expect_expr("a + b @ c % d", "(a + ((b @ c) % d))");
    expect_expr("not a < b", "(not (a < b))");
    expect_expr("not a and b or c", "(((not a) and b) or c)");
    expect_expr("a or b and c", "(a or (b and c))");
    expect_expr("a + 1 <= b * 2", "((a + 1) <= (b * 2))");
    expect_expr("a == b", "(a == b)");
    expect_expr("a != b", "(a != b)");
    expect_expr("(a + b) * c", "((a + b) * c)");
}

Test(parser, padded_access)
{
    expect_expr("x[i - 1] ?? 0", "(x[(i - 1)] ?? 0)");
    expect_expr("x[i - 1] ?? -inf", "(x[(i - 1)] ?? (-inf))");
    expect_expr("x[i] ?? 0 * 2", "((x[i] ?? 0) * 2)");
    expect_expr("x[i] ?? 0 ^ 2", "((x[i] ?? 0) ^ 2)");
    expect_expr("-x[i] ?? 0", "(-(x[i] ?? 0))");
    expect_expr("a + x[i + 1] ?? 1.5", "(a + (x[(i + 1)] ?? 1.5))");

    const char *want[] = {
        "t.tdsl:1:11: error: the left side of `??` must be an indexed access",
        "help: `??` pads an indexed access like x[i - 1] ?? 0",
    };
    expect_errors("const X = a ?? 0\n", 1, want, 2);
}

Test(parser, comparisons_do_not_chain)
{
    const char *want[] = {"t.tdsl:1:17: error: comparisons cannot be chained"};
    expect_errors("const X = a < b < c\n", 1, want, 1);
}

/* ---- lines ------------------------------------------------------------------------------------ */

Test(parser, line_breaks)
{
    /* `{` on its own line, `->` at the end of a line, no final newline, \r\n endings */
    expect_ast("\r\n# leading comment\r\nkernel k(x: f32[N]) ->\r\n  y: f32[N]\r\n{\r\n\r\n"
               "  y[n] = f(x[n],\r\n           2)\r\n\r\n}",
               "kernel k\n"
               "  param x: f32[N]\n"
               "  output y: f32[N]\n"
               "  def y[n] = f(x[n], 2)\n");
    expect_ast("const A = 1", "const A = 1\n");
    expect_ast("", "");
    expect_ast("\n\n# only comments\n", "");
}

/* ---- spans and depth ----------------------------------------------------------------------------- */

Test(parser, spans)
{
    const char *src = "const X = 1\nkernel k(x: f32[N]) -> y: f32[N] {\n  y[n] = a + f(x[n], 2)\n}\n";
    DiagSink d;
    diag_init(&d, NULL);
    AstFile *f = ast_parse("t.tdsl", strdup(src), strlen(src), &d);
    cr_assert_eq(d.nerrors, 0);
    cr_assert_eq(f->nitems, 2);
    const AstItem *k = f->items[1];
    cr_expect_eq(k->span.line, 2);
    cr_expect_eq(k->span.col, 1);
    cr_expect_eq(k->span.len, 8);           /* `kernel k` */
    cr_expect_eq(k->name_span.col, 8);
    cr_expect_eq(k->params[0].type.span.col, 13);
    cr_expect_eq(k->params[0].type.span.len, 6);
    cr_assert_eq(k->nbody, 1);
    const AstStmt *s = k->body[0];
    cr_expect_eq(s->span.line, 3);
    cr_expect_eq(s->span.col, 3);
    cr_expect_eq(s->span.len, 21);          /* `y[n] = a + f(x[n], 2)` */
    cr_expect_eq(s->idx[0].span.col, 5);
    const AstExpr *add = s->rhs;
    cr_assert_eq(add->kind, AX_BINARY);
    cr_expect_eq(add->span.col, 10);        /* both operands: `a + f(x[n], 2)` */
    cr_expect_eq(add->span.len, 14);
    cr_expect_eq(add->span.off, (uint32_t)(strstr(src, "a + f") - src));
    const AstExpr *call = add->b;
    cr_assert_eq(call->kind, AX_CALL);
    cr_expect_eq(call->name_span.col, 14);
    cr_expect_eq(call->name_span.len, 1);
    cr_expect_eq(call->span.len, 10);
    cr_expect_eq(call->args[0]->span.len, 4);
    cr_expect_eq(add->depth, 4);            /* + -> f() -> x[n] -> n */
    cr_expect_eq(add->a->depth, 1);
    ast_file_free(f);
    diag_free(&d);
}

/* ---- errors and recovery ---------------------------------------------------------------------- */

Test(parser, three_errors_in_three_kernels)
{
    const char *src = "kernel a(x: f32[N]) -> y: f32[N] {\n"
                      "    t = x +\n"
                      "    y = t\n"
                      "}\n"
                      "kernel b(x: f32[N]) -> y: f32[N] {\n"
                      "    y[n] = (x[n] * 2\n"
                      "}\n"
                      "kernel c(x: f32[N]) -> y: f32[N] {\n"
                      "    y = x )\n"
                      "}\n";
    const char *want[] = {
        "t.tdsl:2:12: error: expected an expression after '+', found end of line",
        "t.tdsl:7:1: error: expected ')' to close '(' opened at 6:12, found '}'",
        "t.tdsl:9:11: error: unexpected ')' with no matching '('",
    };
    expect_errors(src, 3, want, 3);
    /* the statements around the errors survive */
    Parsed r = parse(src);
    cr_expect(strstr(r.ast, "kernel a\n  param x: f32[N]\n  output y: f32[N]\n  def y = t\n") != NULL,
              "%s", r.ast);
    cr_expect(strstr(r.ast, "kernel c\n") != NULL, "%s", r.ast);
    parsed_free(&r);
}

Test(parser, several_errors_in_one_body)
{
    const char *want[] = {
        "t.tdsl:2:7: error: expected an expression after '=', found ')'",
        "t.tdsl:3:5: error: expected '=', found '=='",
        "help: a definition uses a single `=`; `==` compares two values",
        "t.tdsl:5:3: error: expected ']' to close '[' opened at 4:8, found identifier 'w'",
    };
    expect_errors("kernel k(x: f32[N]) -> y: f32[N] {\n"
                  "  a = )\n"
                  "  b == 1\n"
                  "  c = x[n\n"
                  "  w = 2\n"
                  "  y = x\n"
                  "}\n",
                  3, want, 4);
}

Test(parser, header_errors)
{
    const char *no_out[] = {
        "t.tdsl:1:21: error: expected '->' after the parameter list, found '{'",
        "help: name the output, e.g. `-> y: f32[N]`",
    };
    expect_errors("kernel k(x: f32[N]) {\n  y = x\n}\n", 1, no_out, 2);

    const char *fn_ret[] = {"help: give the return type, e.g. `-> f32[N]`"};
    expect_errors("fn f(x: f32) { return x }\n", 1, fn_ret, 1);

    const char *paren[] = {"t.tdsl:1:20: error: expected ')' to close '(' opened at 1:9, found '->'"};
    expect_errors("kernel k(x: f32[N] -> y: f32[N] {\n  y = x\n}\nconst A = 1 +\n", 2, paren, 1);
}

Test(parser, broken_scan_header_keeps_its_body)
{
    /* the header error does not end the kernel: the body is still checked */
    const char *want[] = {
        "t.tdsl:2:14: error: expected 'with' or 'reverse', found '{'",
        "help: a scan declares its state",
        "t.tdsl:3:15: error: expected an expression after '*', found end of line",
        "help: a line continues only while ( or [ is open",
    };
    const char *src = "kernel k(x: f32[T]) -> y: f32[T] {\n"
                      "  scan t < T {\n"
                      "    y[t] = x *\n"
                      "    w = 2\n"
                      "  }\n"
                      "  z = 1\n"
                      "}\n";
    expect_errors(src, 2, want, 4);
    Parsed r = parse(src);
    cr_expect(strstr(r.ast, "  def z = 1\n") != NULL, "%s", r.ast);
    parsed_free(&r);
}

Test(parser, unclosed_block_before_next_item)
{
    const char *want[] = {"t.tdsl:4:1: error: expected '}' to close '{' opened at 1:34, found 'kernel'"};
    Parsed r = parse("kernel a(x: f32[N]) -> y: f32[N] {\n"
                     "  y = x\n"
                     "\n"
                     "kernel b(x: f32[N]) -> y: f32[N] {\n"
                     "  y = x\n"
                     "}\n");
    cr_expect_eq(r.nerrors, 1, "%s", r.log);
    cr_expect(strstr(r.log, want[0]) != NULL, "%s", r.log);
    cr_expect(strstr(r.ast, "kernel b\n") != NULL, "the next kernel is parsed:\n%s", r.ast);
    parsed_free(&r);
}

Test(parser, top_level_errors)
{
    const char *want[] = {
        "t.tdsl:1:1: error: expected an item (import, const, fn, kernel or schedule), found identifier 'y'",
        "help: statements belong inside the body of a kernel or fn",
        "t.tdsl:3:11: error: expected an expression after '=', found string \"s\"",
        "help: strings appear only after `import`",
    };
    expect_errors("y = 1\nconst B = 2\nconst C = \"s\"\n", 2, want, 4);

    const char *lhs[] = {"t.tdsl:2:5: error: an index on the left of `=` must be a name or `...`"};
    expect_errors("fn f(x: f32[N]) -> f32[N] {\n  y[i + 1] = x[i]\n  return y\n}\n", 1, lhs, 1);

    const char *reserved[] = {"help: 'with' is a reserved word and cannot be used as a name"};
    expect_errors("const with = 1\n", 1, reserved, 1);
}

/* ---- robustness ------------------------------------------------------------------------------- */

Test(parser, deep_nesting)
{
    size_t n = 100000;
    char *src = malloc(2 * n + 32);
    strcpy(src, "const X = ");
    size_t len = strlen(src);
    memset(src + len, '(', n);
    src[len + n] = 'x';
    memset(src + len + n + 1, ')', n);
    src[len + 2 * n + 1] = 0;
    Parsed r = parse(src);
    cr_expect_eq(r.nerrors, 1, "%s", r.log);
    cr_expect(strstr(r.log, "brackets are nested too deeply (more than 1000 levels)") != NULL, "%s", r.log);
    parsed_free(&r);

    /* no brackets, but a tree 300000 deep: capped at AST_MAX_DEPTH */
    len = strlen("const X = ");
    memset(src + len, 0, 2 * n + 32 - len);
    for (size_t i = 0; i < n; i++) memcpy(src + len + 2 * i, "a+", 2);
    src[len + 2 * n] = 'a';
    r = parse(src);
    cr_expect_eq(r.nerrors, 1, "%s", r.log);
    cr_expect(strstr(r.log, "expression is nested too deeply (more than 1000 levels)") != NULL, "%s", r.log);
    parsed_free(&r);

    /* a long chain of prefix minus: the parser's own stack limit is a clean error */
    memset(src + len, '-', 2 * n);
    r = parse(src);
    cr_expect_eq(r.nerrors, 1, "%s", r.log);
    parsed_free(&r);
    free(src);
}

Test(parser, depth_is_capped)
{
    char *src = malloc(4200);
    strcpy(src, "const X = ");
    for (int i = 0; i < 2000; i++) strcat(src, "-");
    strcat(src, "x\n");
    DiagSink d;
    diag_init(&d, NULL);
    AstFile *f = ast_parse("t.tdsl", strdup(src), strlen(src), &d);
    cr_expect_eq(d.nerrors, 1);
    cr_assert_eq(f->nitems, 1);
    cr_expect_leq(f->items[0]->value->depth, AST_MAX_DEPTH);
    ast_file_free(f);
    diag_free(&d);
    free(src);
}

Test(parser, garbage_bytes)
{
    /* every single byte, and every byte inside a kernel body: no crash */
    for (int c = 0; c < 256; c++) {
        char one[1] = {(char)c};
        Parsed r = parse_n(one, 1);
        parsed_free(&r);
        char body[] = "kernel k(x: f32[N]) -> y: f32[N] {\n  y = x ? 1\n}\n";
        *strchr(body, '?') = (char)c;
        r = parse_n(body, sizeof body - 1);
        cr_expect_leq(r.nerrors, 2, "byte %d:\n%s", c, r.log);
        parsed_free(&r);
    }
    /* a lone quote, NULs, invalid UTF-8 */
    Parsed r = parse("\"");
    cr_expect_eq(r.nerrors, 1, "%s", r.log);
    parsed_free(&r);
    static const char nuls[] = "const X = 1\0\0 + \xc3\x28\nconst Y = 2\n";
    r = parse_n(nuls, sizeof nuls - 1);
    cr_expect_eq(r.nerrors, 2, "%s", r.log);
    cr_expect(strstr(r.ast, "const Y = 2\n") != NULL, "%s", r.ast);
    parsed_free(&r);

    /* pseudo-random bytes built from the grammar's own tokens */
    static const char *const pieces[] = {
        "kernel", "fn", "(", ")", "[", "]", "{", "}", "->", ":", ",", "=", "x", "f32", "1",
        "\n", "sum", "scan", "with", "<", "??", "...", "@", "quant", "-", "^", "\"", "#",
        "return", "schedule", "2.5", "not", "where", "\x01", " ",
    };
    unsigned seed = 12345;
    for (int iter = 0; iter < 2000; iter++) {
        char buf[600] = "";
        int n = (int)(seed % 60);
        for (int i = 0; i < n; i++) {
            seed = seed * 1103515245u + 12345u;
            strcat(buf, pieces[(seed >> 16) % TD_COUNTOF(pieces)]);
            if (seed & 0x100) strcat(buf, " ");
        }
        seed = seed * 1103515245u + 12345u;
        r = parse(buf);
        parsed_free(&r);
    }
}
