/* frontend: .tdsl text to tensor IR.
 *
 * fe_compile_* parse the root file and its imports, run semantic analysis (names, dtypes,
 * size names, index ranges, compile-time bounds proofs, single assignment, scan rules,
 * schedules), inline every fn and lower each kernel to the tensor IR. Errors go to the
 * DiagSink; as many independent errors as possible are reported in one run. */
#ifndef TDSL_FRONTEND_H
#define TDSL_FRONTEND_H

#include "ast.h"
#include "diag.h"
#include "../ir/ir.h"

typedef struct FeOptions {
    const char *const *include_dirs;  /* -I directories, searched first for `import "name"` */
    int                ninclude;
    const char        *stdlib_dir;    /* NULL: $TDSL_STDLIB, else the build's stdlib dir */
} FeOptions;

/* Returns the IR module, or NULL when there were errors (d->nerrors > 0). */
Module *fe_compile_file(const char *path, const FeOptions *o, DiagSink *d);
/* The same from text in memory; `name` is used in diagnostics and for relative imports
 * (relative to the current directory when name has no directory part). */
Module *fe_compile_source(const char *name, const char *text, size_t len,
                          const FeOptions *o, DiagSink *d);

/* The stdlib directory used when FeOptions.stdlib_dir is NULL. */
const char *fe_default_stdlib_dir(void);

#endif
