/* error.c: the thread-local last error of the C API.
 *
 * Every failing API function stores its message here and returns its negative code;
 * tdsl_last_error() reads it back in the same thread. The buffer is a fixed thread-local
 * array rather than heap memory: an AOT .so carries this file, and a heap buffer would
 * need a thread-exit destructor that must not outlive a dlclose'd library. Messages longer
 * than RT_ERROR_CAP - 1 bytes (a long compiler log) are cut and end in "...". */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "rt.h"

static _Thread_local char rt_error_buf[RT_ERROR_CAP];

static void mark_cut(size_t needed)
{
    if (needed < sizeof rt_error_buf) return;
    static const char cut[] = "\n...";
    memcpy(rt_error_buf + sizeof rt_error_buf - sizeof cut, cut, sizeof cut);
}

int rt_fail(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(rt_error_buf, sizeof rt_error_buf, fmt, ap);
    va_end(ap);
    if (n < 0) rt_error_buf[0] = '\0';
    else mark_cut((size_t)n);
    return code;
}

int rt_fail_text(int code, const char *head, const char *text)
{
    int n = snprintf(rt_error_buf, sizeof rt_error_buf, "%s%s", head ? head : "", text ? text : "");
    if (n < 0) rt_error_buf[0] = '\0';
    else mark_cut((size_t)n);
    return code;
}

const char *tdsl_last_error(void) { return rt_error_buf; }
