/* diag: prints user diagnostics with the source line and a caret; see diag.h. */
#include "diag.h"

#include <stdlib.h>
#include <string.h>

void diag_init(DiagSink *d, FILE *out)
{
    memset(d, 0, sizeof *d);
    d->out = out;
    d->max_errors = 100;
}

void diag_free(DiagSink *d) { sb_free(&d->log); }

static void emit(DiagSink *d, const char *s)
{
    sb_puts(&d->log, s);
    if (d->out) fputs(s, d->out);
}

static void print_source_line(StrBuf *sb, Span span)
{
    const char *text = span.file->text;
    size_t n = span.file->len;
    size_t off = span.off <= n ? span.off : n;
    size_t start = off;
    while (start > 0 && text[start - 1] != '\n') start--;
    size_t end = off;
    while (end < n && text[end] != '\n' && text[end] != '\r') end++;
    /* The line as written, with control bytes other than tabs shown as spaces so a stray
     * byte cannot garble the terminal. */
    for (size_t i = start; i < end; i++) {
        unsigned char c = (unsigned char)text[i];
        sb_putc(sb, (c < 32 && c != '\t') || c == 127 ? ' ' : (char)c);
    }
    sb_putc(sb, '\n');
    for (size_t i = start; i < off; i++) sb_putc(sb, text[i] == '\t' ? '\t' : ' ');
    sb_putc(sb, '^');
    size_t len = span.len;
    if (off + len > end) len = end > off ? end - off : 1;
    for (size_t i = 1; i < len; i++) sb_putc(sb, '~');
    sb_putc(sb, '\n');
}

static void vreport(DiagSink *d, const char *level, Span span, const char *fmt, va_list ap)
{
    StrBuf sb = {0};
    if (span.file)
        sb_printf(&sb, "%s:%u:%u: %s: ", span.file->path, span.line, span.col, level);
    else
        sb_printf(&sb, "tcc: %s: ", level);
    sb_vprintf(&sb, fmt, ap);
    sb_putc(&sb, '\n');
    if (span.file) print_source_line(&sb, span);
    emit(d, sb_cstr(&sb));
    sb_free(&sb);
}

void diag_error(DiagSink *d, Span span, const char *fmt, ...)
{
    d->nerrors++;
    d->suppressed = d->nerrors > d->max_errors;
    if (d->suppressed) {
        if (d->nerrors == d->max_errors + 1)
            emit(d, "tcc: error: too many errors; stopping the report here\n");
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    vreport(d, "error", span, fmt, ap);
    va_end(ap);
}

void diag_error_plain(DiagSink *d, const char *fmt, ...)
{
    Span none = {0};
    d->nerrors++;
    d->suppressed = d->nerrors > d->max_errors;
    if (d->suppressed) return;
    va_list ap;
    va_start(ap, fmt);
    vreport(d, "error", none, fmt, ap);
    va_end(ap);
}

void diag_note(DiagSink *d, Span span, const char *fmt, ...)
{
    if (d->suppressed) return;
    va_list ap;
    va_start(ap, fmt);
    vreport(d, "note", span, fmt, ap);
    va_end(ap);
}

void diag_help(DiagSink *d, const char *fmt, ...)
{
    if (d->suppressed) return;
    StrBuf sb = {0};
    sb_puts(&sb, "help: ");
    va_list ap;
    va_start(ap, fmt);
    sb_vprintf(&sb, fmt, ap);
    va_end(ap);
    sb_putc(&sb, '\n');
    emit(d, sb_cstr(&sb));
    sb_free(&sb);
}

Span span_join(Span a, Span b)
{
    if (!a.file) return b;
    if (!b.file || a.file != b.file || b.off + b.len < a.off) return a;
    Span s = a;
    s.len = b.off + b.len - a.off;
    return s;
}

static int edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 64 || lb > 64) return 1000;
    int prev[65], cur[65];
    for (size_t j = 0; j <= lb; j++) prev[j] = (int)j;
    for (size_t i = 1; i <= la; i++) {
        cur[0] = (int)i;
        for (size_t j = 1; j <= lb; j++) {
            int sub = prev[j - 1] + (a[i - 1] != b[j - 1]);
            int del = prev[j] + 1, ins = cur[j - 1] + 1;
            cur[j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
        }
        memcpy(prev, cur, sizeof(int) * (lb + 1));
    }
    return prev[lb];
}

const char *diag_closest(const char *name, const char *const *candidates, int n)
{
    const char *best = NULL;
    int best_d = 1000;
    size_t len = strlen(name);
    if (len < 2) return NULL;   /* a one-letter name is close to every other one */
    int limit = len <= 3 ? 1 : len <= 6 ? 2 : 3;
    for (int i = 0; i < n; i++) {
        if (!candidates[i] || strcmp(candidates[i], name) == 0) continue;
        int dist = edit_distance(name, candidates[i]);
        if (dist < best_d) {
            best_d = dist;
            best = candidates[i];
        }
    }
    return best_d <= limit ? best : NULL;
}
