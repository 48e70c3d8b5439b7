/* test_lexer: the token stream of LANGUAGE.md section 2, as the parser sees it.
 *
 * Each test dumps the tokens of a snippet with ast_dump_tokens (one `line:col kind value`
 * line per token) and compares the whole dump, so spans, newline handling and values are
 * all checked at once. Lexical errors are checked through the diagnostic log. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "frontend/ast.h"

typedef struct Lexed {
    char *tokens;   /* the dump */
    char *log;      /* every diagnostic */
    int   nerrors;
} Lexed;

static Lexed lex_n(const char *src, size_t len)
{
    DiagSink d;
    diag_init(&d, NULL);
    StrBuf out = {0};
    ast_dump_tokens("t.tdsl", src, len, &d, &out);
    Lexed r = {strdup(sb_cstr(&out)), strdup(sb_cstr(&d.log)), d.nerrors};
    sb_free(&out);
    diag_free(&d);
    return r;
}

static Lexed lex(const char *src) { return lex_n(src, strlen(src)); }

static void lexed_free(Lexed *r)
{
    free(r->tokens);
    free(r->log);
}

/* Checks the dump and that there were no errors. */
static void expect_tokens(const char *src, const char *want)
{
    Lexed r = lex(src);
    cr_expect_str_eq(r.tokens, want, "source:\n%s", src);
    cr_expect_eq(r.nerrors, 0, "unexpected errors:\n%s", r.log);
    lexed_free(&r);
}

Test(lexer, numbers)
{
    expect_tokens("42 1.5 1e-5 .5 2. 3e2 1E+3 007 0.25e1",
                  "1:1 integer 42\n"
                  "1:4 number 1.5\n"
                  "1:8 number 1e-05\n"
                  "1:13 number 0.5\n"
                  "1:16 number 2\n"
                  "1:19 number 300\n"
                  "1:23 number 1000\n"
                  "1:28 integer 7\n"
                  "1:32 number 2.5\n"
                  "1:38 end of input\n");
}

Test(lexer, literal_keywords)
{
    expect_tokens("inf nan true false",
                  "1:1 'inf'\n"
                  "1:5 'nan'\n"
                  "1:9 'true'\n"
                  "1:14 'false'\n"
                  "1:19 end of input\n");
}

Test(lexer, int64_limits)
{
    expect_tokens("9223372036854775807", "1:1 integer 9223372036854775807\n1:20 end of input\n");

    Lexed r = lex("x = 9223372036854775808");
    cr_expect_eq(r.nerrors, 1);
    cr_expect(strstr(r.log, "t.tdsl:1:5: error: integer 9223372036854775808 is too large") != NULL,
              "%s", r.log);
    cr_expect(strstr(r.log, "^~~~~~~~~~~~~~~~~~~") != NULL, "the caret spans the literal:\n%s", r.log);
    lexed_free(&r);

    r = lex("1e999");
    cr_expect_eq(r.nerrors, 1);
    cr_expect(strstr(r.log, "t.tdsl:1:1: error: number 1e999 is too large") != NULL, "%s", r.log);
    lexed_free(&r);

    r = lex("12ab");
    cr_expect_eq(r.nerrors, 1);
    cr_expect(strstr(r.log, "invalid number '12ab'") != NULL, "%s", r.log);
    lexed_free(&r);
}

Test(lexer, keywords_and_identifiers)
{
    expect_tokens("import const fn kernel return scan with reverse schedule where and or not",
                  "1:1 'import'\n1:8 'const'\n1:14 'fn'\n1:17 'kernel'\n1:24 'return'\n"
                  "1:31 'scan'\n1:36 'with'\n1:41 'reverse'\n1:49 'schedule'\n1:58 'where'\n"
                  "1:64 'and'\n1:68 'or'\n1:71 'not'\n1:74 end of input\n");
    /* dtypes are plain identifiers; keywords inside longer names are not keywords */
    expect_tokens("f32 i4 bf16 _x1 kernels fnord",
                  "1:1 identifier f32\n1:5 identifier i4\n1:8 identifier bf16\n"
                  "1:13 identifier _x1\n1:17 identifier kernels\n1:25 identifier fnord\n"
                  "1:30 end of input\n");
}

Test(lexer, reduction_keyword_or_call)
{
    /* a reduction name is a keyword only when `[` follows, after optional blanks */
    expect_tokens("sum[k] max(a) max [k] summary[k] argmin\t[i] any",
                  "1:1 reduction sum\n1:4 '['\n1:5 identifier k\n1:6 ']'\n"
                  "1:8 identifier max\n1:11 '('\n1:12 identifier a\n1:13 ')'\n"
                  "1:15 reduction max\n1:19 '['\n1:20 identifier k\n1:21 ']'\n"
                  "1:23 identifier summary\n1:30 '['\n1:31 identifier k\n1:32 ']'\n"
                  "1:34 reduction argmin\n1:41 '['\n1:42 identifier i\n1:43 ']'\n"
                  "1:45 identifier any\n1:48 end of input\n");
    const char *all = "prod[i] mean[i] min[i] all[i]";
    Lexed r = lex(all);
    cr_expect(strstr(r.tokens, "1:1 reduction prod\n") && strstr(r.tokens, "1:9 reduction mean\n") &&
              strstr(r.tokens, "1:17 reduction min\n") && strstr(r.tokens, "1:24 reduction all\n"),
              "%s", r.tokens);
    lexed_free(&r);
}

Test(lexer, punctuation)
{
    expect_tokens("( ) [ ] { } , : = -> ... ?? @ + - * / % ^ < <= > >= == !=",
                  "1:1 '('\n1:3 ')'\n1:5 '['\n1:7 ']'\n1:9 '{'\n1:11 '}'\n1:13 ','\n"
                  "1:15 ':'\n1:17 '='\n1:19 '->'\n1:22 '...'\n1:26 '?\?'\n1:29 '@'\n"
                  "1:31 '+'\n1:33 '-'\n1:35 '*'\n1:37 '/'\n1:39 '%'\n1:41 '^'\n1:43 '<'\n"
                  "1:45 '<='\n1:48 '>'\n1:50 '>='\n1:53 '=='\n1:56 '!='\n1:58 end of input\n");
}

Test(lexer, strings_and_comments)
{
    expect_tokens("import \"nn\"  # the stdlib\nimport \"./mine.tdsl\"",
                  "1:1 'import'\n1:8 string \"nn\"\n2:1 'import'\n2:8 string \"./mine.tdsl\"\n"
                  "2:21 end of input\n");

    Lexed r = lex("import \"nn\nx");
    cr_expect_eq(r.nerrors, 1);
    cr_expect(strstr(r.log, "t.tdsl:1:8: error: unterminated string") != NULL, "%s", r.log);
    lexed_free(&r);

    r = lex("\"");
    cr_expect_eq(r.nerrors, 1);
    cr_expect(strstr(r.log, "unterminated string") != NULL, "%s", r.log);
    lexed_free(&r);
}

Test(lexer, newline_runs)
{
    /* one end of line per run of blank and comment lines; none after `{` or before `}` */
    expect_tokens("{\n  a\n\n  # comment\n   \n  b\n\n}\n",
                  "1:1 '{'\n2:3 identifier a\n2:4 end of line\n6:3 identifier b\n8:1 '}'\n"
                  "9:1 end of input\n");
    /* none at the start or at the end; a file may lack its final newline */
    expect_tokens("\n\n# c\na\nb", "4:1 identifier a\n4:2 end of line\n5:1 identifier b\n"
                                   "5:2 end of input\n");
}

Test(lexer, newline_inside_brackets)
{
    /* a line continues while ( or [ is open */
    expect_tokens("f(a,\n  b)\nx[i,\n\n j]\n",
                  "1:1 identifier f\n1:2 '('\n1:3 identifier a\n1:4 ','\n2:3 identifier b\n"
                  "2:4 ')'\n2:5 end of line\n3:1 identifier x\n3:2 '['\n3:3 identifier i\n"
                  "3:4 ','\n5:2 identifier j\n5:3 ']'\n6:1 end of input\n");
    /* but not while only { is open, even inside a ( */
    expect_tokens("{ a\nb }", "1:1 '{'\n1:3 identifier a\n1:4 end of line\n2:1 identifier b\n"
                              "2:3 '}'\n2:4 end of input\n");
    expect_tokens("f({ a\nb })", "1:1 identifier f\n1:2 '('\n1:3 '{'\n1:5 identifier a\n"
                                 "1:6 end of line\n2:1 identifier b\n2:3 '}'\n2:4 ')'\n"
                                 "2:5 end of input\n");
}

Test(lexer, newline_before_arrow_and_after_comma)
{
    expect_tokens("f()\n   -> y\n", "1:1 identifier f\n1:2 '('\n1:3 ')'\n2:4 '->'\n"
                                    "2:7 identifier y\n3:1 end of input\n");
    expect_tokens("a ->\n b", "1:1 identifier a\n1:3 '->'\n2:2 identifier b\n2:3 end of input\n");
    expect_tokens("a = 0,\n  b", "1:1 identifier a\n1:3 '='\n1:5 integer 0\n1:6 ','\n"
                                 "2:3 identifier b\n2:4 end of input\n");
    expect_tokens("T\nwith\nS", "1:1 identifier T\n2:1 'with'\n2:5 end of line\n3:1 identifier S\n"
                                "3:2 end of input\n");
}

Test(lexer, crlf_line_endings)
{
    expect_tokens("{\r\n  a = 1\r\n  b\r\n}\r\n",
                  "1:1 '{'\n2:3 identifier a\n2:5 '='\n2:7 integer 1\n2:9 end of line\n"
                  "3:3 identifier b\n4:1 '}'\n5:1 end of input\n");
}

Test(lexer, unexpected_characters)
{
    Lexed r = lex("a $ b");
    cr_expect_eq(r.nerrors, 1);
    cr_expect(strstr(r.log, "t.tdsl:1:3: error: unexpected character '$'") != NULL, "%s", r.log);
    lexed_free(&r);

    /* a run of bad bytes is one error; control bytes are shown escaped */
    r = lex("a \x01\x02\xff b");
    cr_expect_eq(r.nerrors, 1);
    cr_expect(strstr(r.log, "unexpected character '\\x01'") != NULL, "%s", r.log);
    lexed_free(&r);

    /* NUL bytes in the middle of the input are ordinary bad characters */
    r = lex_n("a\0b\0\0c", 6);
    cr_expect_eq(r.nerrors, 2);
    cr_expect(strstr(r.log, "t.tdsl:1:2: error: unexpected character '\\x00'") != NULL, "%s", r.log);
    cr_expect(strstr(r.tokens, "1:6 identifier c\n") != NULL, "%s", r.tokens);
    lexed_free(&r);

    r = lex("'");
    cr_expect(strstr(r.log, "unexpected character '\\''") != NULL, "%s", r.log);
    lexed_free(&r);
}

Test(lexer, other_languages_spellings)
{
    /* reported with a help, then read as what they mean */
    Lexed r = lex("a && b || !c ** 2");
    cr_expect_eq(r.nerrors, 4);
    cr_expect(strstr(r.tokens, "1:3 'and'\n") && strstr(r.tokens, "1:8 'or'\n") &&
              strstr(r.tokens, "1:11 'not'\n") && strstr(r.tokens, "1:14 '^'\n"), "%s", r.tokens);
    cr_expect(strstr(r.log, "help: use `and`") != NULL, "%s", r.log);
    lexed_free(&r);

    r = lex("k := 2");
    cr_expect_eq(r.nerrors, 1);
    cr_expect(strstr(r.tokens, "1:3 '='\n") != NULL, "%s", r.tokens);
    cr_expect(strstr(r.log, "help: a definition uses a plain `=`") != NULL, "%s", r.log);
    lexed_free(&r);
}

Test(lexer, deep_brackets)
{
    size_t n = 100000;
    char *src = malloc(n + 1);
    memset(src, '(', n);
    src[n] = 0;
    Lexed r = lex(src);
    cr_expect_eq(r.nerrors, 1, "%s", r.log);
    cr_expect(strstr(r.log, "t.tdsl:1:1001: error: brackets are nested too deeply (more than 1000 levels)") != NULL,
              "%s", r.log);
    lexed_free(&r);
    free(src);
}

Test(lexer, long_lines)
{
    size_t n = 1 << 20;
    char *src = malloc(n + 16);
    memset(src, 'a', n);
    strcpy(src + n, " 1");
    Lexed r = lex(src);
    cr_expect_eq(r.nerrors, 0);
    cr_expect(strstr(r.tokens, "1:1048578 integer 1\n") != NULL);
    lexed_free(&r);
    free(src);
}
