/* support: arenas, growable buffers, checked arithmetic and internal-error checks shared by
 * every stage of tcc.
 *
 * Arenas own everything the compiler allocates: the module arena owns the IR, a pass's
 * scratch arena is reset after it. Nothing here calls exit(); TD_ASSERT reports an
 * internal error (a compiler bug) with the C file and line and aborts, which the driver
 * turns into exit code 2. */
#ifndef TDSL_SUPPORT_H
#define TDSL_SUPPORT_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* ---- arena ------------------------------------------------------------------------- */

typedef struct ArenaBlock ArenaBlock;
typedef struct Arena {
    ArenaBlock *head;   /* newest block; older blocks follow through ->next */
    size_t total;       /* bytes handed out, for size limits and statistics */
} Arena;

void  arena_init(Arena *a);
void  arena_free(Arena *a);                         /* frees every block */
void *arena_alloc(Arena *a, size_t size);           /* zeroed, 16-byte aligned */
void *arena_array(Arena *a, size_t n, size_t size); /* zeroed; overflow is internal error */
char *arena_strdup(Arena *a, const char *s);
char *arena_strndup(Arena *a, const char *s, size_t n);
char *arena_printf(Arena *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- growable byte buffer (heap) ----------------------------------------------------- */

typedef struct StrBuf {
    char  *data;   /* NUL-terminated while len > 0 or after sb_cstr */
    size_t len;    /* bytes used, excluding the NUL */
    size_t cap;    /* bytes allocated */
} StrBuf;

void        sb_putc(StrBuf *sb, char c);
void        sb_puts(StrBuf *sb, const char *s);
void        sb_putn(StrBuf *sb, const char *s, size_t n);
void        sb_printf(StrBuf *sb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void        sb_vprintf(StrBuf *sb, const char *fmt, va_list ap);
const char *sb_cstr(StrBuf *sb); /* never NULL */
void        sb_clear(StrBuf *sb);
void        sb_free(StrBuf *sb);

/* ---- growable pointer vector in an arena --------------------------------------------- */

typedef struct PtrVec {
    void **items;  /* arena memory; reallocated by copying when full */
    int    len;
    int    cap;
} PtrVec;

void pv_push(Arena *a, PtrVec *v, void *item);

/* ---- checked arithmetic: return false on overflow ------------------------------------ */

bool ck_add_i64(int64_t a, int64_t b, int64_t *out);
bool ck_mul_i64(int64_t a, int64_t b, int64_t *out);
bool ck_mul_size(size_t a, size_t b, size_t *out);

/* ---- files ---------------------------------------------------------------------------- */

/* Reads a whole file into a heap buffer (NUL-terminated). Returns NULL and sets *err to a
 * static description on failure. */
char *read_file_all(const char *path, size_t *len, const char **err);

/* Writes len bytes to path (created or truncated); on failure appends "cannot write ..." to
 * err (a StrBuf) and returns false. */
bool write_file_all(const char *path, const void *data, size_t len, StrBuf *err);

/* ---- external tools (process.c) ----------------------------------------------------------- */

/* Runs argv (argv[0] searched in PATH) with its stdout and stderr into log_path and waits
 * for it. On failure appends to err: "cannot run the <what> '<argv0>': <reason> (<hint>)"
 * when it cannot start, else "<failed>: <the command>" and the tool's output. The AOT
 * builders (cc) and the SIMT emulator (g++) share it. */
bool run_tool(char *const *argv, const char *log_path, const char *what, const char *hint,
              const char *failed, StrBuf *err);

/* ---- internal errors ---------------------------------------------------------------------- */

_Noreturn void td_internal_error(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define TD_ASSERT(cond)                                                                 \
    do {                                                                                \
        if (!(cond)) td_internal_error(__FILE__, __LINE__, "assertion '%s' failed", #cond); \
    } while (0)
#define TD_UNREACHABLE(what) td_internal_error(__FILE__, __LINE__, "unreachable: %s", what)

#define TD_COUNTOF(a) ((int)(sizeof(a) / sizeof((a)[0])))

#endif
