/* diag: source files, spans and the diagnostic sink.
 *
 * Every user error is printed as
 *     file:line:col: error: message
 *     <the source line>
 *     <spaces>^~~~
 * optionally followed by `note:` lines (with their own location) and `help:` lines.
 * The sink counts errors so each stage can stop before the next one; it never exits. */
#ifndef TDSL_DIAG_H
#define TDSL_DIAG_H

#include "../support/support.h"

typedef struct SrcFile {
    char  *path;   /* as given on the command line or resolved by import */
    char  *text;   /* whole contents, NUL-terminated */
    size_t len;    /* bytes in text */
} SrcFile;

/* A half-open byte range [off, off + len) in one file, with the 1-based line and column of
 * its first byte. A span with file == NULL has no location (builtins, synthesized code). */
typedef struct Span {
    const SrcFile *file;
    uint32_t off;   /* byte offset of the first character */
    uint32_t len;   /* length in bytes; 0 is shown as one caret */
    uint32_t line;  /* 1-based */
    uint32_t col;   /* 1-based, in bytes */
} Span;

typedef struct DiagSink {
    FILE  *out;          /* where diagnostics are printed as they come; may be NULL */
    StrBuf log;          /* everything printed, for the C API's tdsl_last_error */
    int    nerrors;      /* user errors so far */
    int    max_errors;   /* stop printing (but keep counting) after this many; 0 = 100 */
    bool   suppressed;   /* the last error was over the limit: its notes are dropped too */
} DiagSink;

void diag_init(DiagSink *d, FILE *out);
void diag_free(DiagSink *d);

/* error/note print the header, the source line and a caret when span has a file. */
void diag_error(DiagSink *d, Span span, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void diag_note(DiagSink *d, Span span, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void diag_help(DiagSink *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* An error with no source location: `tcc: error: message`. */
void diag_error_plain(DiagSink *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Span covering a and b (same file; b after a). */
Span span_join(Span a, Span b);

/* Levenshtein-based suggestion: the candidate closest to name, or NULL when none is close. */
const char *diag_closest(const char *name, const char *const *candidates, int n);

#endif
