/* aot.c: ahead-of-time builds, a shared library and its C header.
 *
 * cpu_build_shared turns a loop module into FILE.so:
 *   1. cpu_emit writes the kernels (tdsl_raw_K, position independent) as an object file
 *      into a private mkdtemp directory;
 *   2. a generated C file holds the manifest (`const char *const tdsl_manifest`, one
 *      signature per line, in kernel order; runtime/load.c reads it) and one typed function
 *      per kernel, `int K(const DLTensor *x, ..., DLTensor *y)`, which checks its arguments
 *      with the runtime's descriptor of K and calls tdsl_raw_K;
 *   3. the system C compiler (`cc`, or the words of $TDSL_CC) links both with the
 *      standalone runtime (libtdsl_rt.a) and, when a kernel has a parallel loop, the OpenMP
 *      runtime its tdsl_parallel_for calls (libgomp) into a temporary file next to FILE.so,
 *      with -z defs so any unresolved symbol is an error now rather than at dlopen;
 *   4. the temporary file is renamed over FILE.so and the directory removed.
 * On any failure nothing is left at FILE.so. The .so needs libc, libm and libgomp only.
 *
 * The runtime archive, its include directory and the OpenMP library come from the build
 * (TDSL_RT_LIB, TDSL_RT_INCLUDE_DIR, TDSL_RT_OMP_LIB, compile definitions) unless
 * $TDSL_RT_LIB / $TDSL_RT_INCLUDE / $TDSL_RT_OMP_LIB name others. $TDSL_KEEP_TEMPS keeps the
 * temporary directory (for debugging). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cpu.h"
#include "runtime/rt.h"

#ifndef TDSL_RT_LIB
#define TDSL_RT_LIB ""
#endif
#ifndef TDSL_RT_INCLUDE_DIR
#define TDSL_RT_INCLUDE_DIR ""
#endif
#ifndef TDSL_RT_OMP_LIB
#define TDSL_RT_OMP_LIB ""
#endif

/* ---- names that may not become C functions -------------------------------------------------- */

static const char *const c_keywords[] = {
    "auto", "break", "case", "char", "const", "continue", "default", "do", "double", "else", "enum",
    "extern", "float", "for", "goto", "if", "inline", "int", "long", "register", "restrict", "return",
    "short", "signed", "sizeof", "static", "struct", "switch", "typedef", "union", "unsigned", "void",
    "volatile", "while", "_Alignas", "_Alignof", "_Atomic", "_Bool", "_Complex", "_Generic",
    "_Imaginary", "_Noreturn", "_Static_assert", "_Thread_local", "bool", "true", "false",
    "alignas", "alignof", "nullptr", "static_assert", "thread_local", "typeof", "typeof_unqual",
    "constexpr", "main", "DLTensor",
};

static bool is_c_keyword(const char *s)
{
    for (int i = 0; i < TD_COUNTOF(c_keywords); i++)
        if (strcmp(s, c_keywords[i]) == 0) return true;
    return false;
}

/* A kernel name must be usable as an exported C function of its own. */
static bool check_kernel_name(const char *name, StrBuf *err)
{
    if (is_c_keyword(name)) {
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

/* A parameter name in the header: itself, or with '_' appended when C reserves it. */
static void put_c_param(StrBuf *out, const char *name)
{
    sb_puts(out, name);
    if (is_c_keyword(name)) sb_putc(out, '_');
}

static void put_c_string(StrBuf *out, const char *s)
{
    sb_putc(out, '"');
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') sb_printf(out, "\\%c", c);
        else if (c == '\n') sb_puts(out, "\\n");
        else if (c < 0x20 || c >= 0x7f) sb_printf(out, "\\%03o", c);
        else sb_putc(out, (char)c);
    }
    sb_putc(out, '"');
}

/* The signature of k, checked to parse back (so the manifest is loadable). */
static bool kernel_signature(const Kernel *k, StrBuf *out, StrBuf *err)
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

/* ---- files ------------------------------------------------------------------------------------ */


/* Writes data to a temporary file next to path, then renames it over path. */
static bool write_file_atomic(const char *path, const void *data, size_t len, StrBuf *err)
{
    StrBuf tmp = {0};
    sb_printf(&tmp, "%s.tmpXXXXXX", path);
    int fd = mkstemp(tmp.data);
    if (fd < 0) {
        sb_printf(err, "cannot write '%s': %s\n", path, strerror(errno));
        sb_free(&tmp);
        return false;
    }
    close(fd);
    bool ok = write_file_all(tmp.data, data, len, err);
    if (ok) {
        chmod(tmp.data, 0644);
        if (rename(tmp.data, path) != 0) {
            sb_printf(err, "cannot write '%s': %s\n", path, strerror(errno));
            ok = false;
        }
    }
    if (!ok) unlink(tmp.data);
    sb_free(&tmp);
    return ok;
}

/* ---- the generated C file --------------------------------------------------------------------- */

static bool gen_wrappers(const LoopModule *lm, StrBuf *out, StrBuf *err)
{
    StrBuf sig = {0};
    bool ok = true;
    sb_puts(out, "/* Generated by tcc: the manifest and the typed entry points of a tdsl module. */\n"
                 "#include <stdint.h>\n#include \"rt.h\"\n\n"
                 "TDSL_API const char *const tdsl_manifest =\n");
    for (int i = 0; i < lm->nfuncs && ok; i++) {
        sb_clear(&sig);
        ok = kernel_signature(lm->funcs[i]->kernel, &sig, err);
        sb_puts(out, "    ");
        sb_puts(&sig, "\n");
        put_c_string(out, sb_cstr(&sig));
        sb_puts(out, "\n");
    }
    sb_puts(out, "    \"\";\n");
    for (int i = 0; i < lm->nfuncs && ok; i++) {
        const Kernel *k = lm->funcs[i]->kernel;
        int n = k->nins + k->nouts;
        sb_clear(&sig);
        ok = kernel_signature(k, &sig, err);
        sb_printf(out, "\nint32_t tdsl_raw_%s(void *const *buffers, const int64_t *sizes);\n", k->name);
        sb_printf(out, "static void *tdsl_sig_%s;\n", k->name);
        sb_printf(out, "TDSL_API int %s(", k->name);
        for (int a = 0; a < n; a++)
            sb_printf(out, "%s%sDLTensor *p%d", a ? ", " : "", a < k->nins ? "const " : "", a);
        sb_puts(out, ")\n{\n    const DLTensor *const args[] = {");
        for (int a = 0; a < n; a++) sb_printf(out, "%sp%d", a ? ", " : "", a);
        sb_printf(out, "};\n    return rt_call_cached(&tdsl_sig_%s, ", k->name);
        put_c_string(out, sb_cstr(&sig));
        sb_printf(out, ", tdsl_raw_%s, args, %d);\n}\n", k->name, n);
    }
    sb_puts(out, "\n/* The descriptors parsed on first use, freed when the library is unloaded. */\n"
                 "__attribute__((destructor)) static void tdsl_module_fini(void)\n{\n");
    for (int i = 0; i < lm->nfuncs; i++)
        sb_printf(out, "    rt_sig_cache_free(&tdsl_sig_%s);\n", lm->funcs[i]->kernel->name);
    sb_puts(out, "}\n");
    sb_free(&sig);
    return ok;
}

/* ---- cpu_build_shared --------------------------------------------------------------------------- */

typedef struct Build {
    StrBuf dir;       /* the private temporary directory, "" before mkdtemp */
    StrBuf obj, src;  /* its files */
    StrBuf log;
    StrBuf tmp_so;    /* the temporary output next to so_path, "" before mkstemp */
} Build;

static void build_cleanup(Build *b)
{
    if (b->tmp_so.len) unlink(b->tmp_so.data);
    if (b->dir.len && !getenv("TDSL_KEEP_TEMPS")) {
        unlink(sb_cstr(&b->obj));
        unlink(sb_cstr(&b->src));
        unlink(sb_cstr(&b->log));
        rmdir(b->dir.data);
    }
    sb_free(&b->dir);
    sb_free(&b->obj);
    sb_free(&b->src);
    sb_free(&b->log);
    sb_free(&b->tmp_so);
}

static const char *env_or(const char *name, const char *fallback)
{
    const char *v = getenv(name);
    return v && *v ? v : fallback;
}

bool cpu_build_shared(const LoopModule *lm, const CpuOptions *o, const char *so_path, StrBuf *err)
{
    if (!lm || !so_path || !*so_path) {
        sb_puts(err, "cpu_build_shared: no module or no output path\n");
        return false;
    }
    for (int i = 0; i < lm->nfuncs; i++)
        if (!check_kernel_name(lm->funcs[i]->kernel->name, err)) return false;
    const char *rt_lib = env_or("TDSL_RT_LIB", TDSL_RT_LIB);
    const char *rt_inc = env_or("TDSL_RT_INCLUDE", TDSL_RT_INCLUDE_DIR);
    if (!*rt_lib || access(rt_lib, R_OK) != 0) {
        sb_printf(err, "the tdsl runtime library '%s' is missing; build the tdsl_rt target or set $TDSL_RT_LIB\n",
                  rt_lib);
        unlink(so_path);
        return false;
    }

    Build b = {0};
    StrBuf obj = {0}, src = {0};
    bool ok = cpu_emit(lm, o, CPU_EMIT_OBJ, &obj, err) && gen_wrappers(lm, &src, err);
    if (ok) {
        sb_printf(&b.dir, "%s/tdsl-aot-XXXXXX", env_or("TMPDIR", "/tmp"));
        if (!mkdtemp(b.dir.data)) {
            sb_printf(err, "cannot create a temporary directory '%s': %s\n", b.dir.data, strerror(errno));
            sb_clear(&b.dir);
            ok = false;
        }
    }
    if (ok) {
        sb_printf(&b.obj, "%s/kernels.o", b.dir.data);
        sb_printf(&b.src, "%s/wrappers.c", b.dir.data);
        sb_printf(&b.log, "%s/cc.log", b.dir.data);
        ok = write_file_all(b.obj.data, obj.data, obj.len, err) && write_file_all(b.src.data, src.data, src.len, err);
    }
    if (ok) {
        sb_printf(&b.tmp_so, "%s.tmpXXXXXX", so_path);
        int fd = mkstemp(b.tmp_so.data);
        if (fd < 0) {
            sb_printf(err, "cannot write '%s': %s\n", so_path, strerror(errno));
            sb_clear(&b.tmp_so);
            ok = false;
        } else {
            close(fd);
        }
    }
    if (ok) {
        /* argv: the words of $TDSL_CC (or cc), then the fixed arguments */
        char *cc = strdup(env_or("TDSL_CC", "cc"));
        TD_ASSERT(cc);
        StrBuf inc = {0};
        sb_printf(&inc, "-I%s", rt_inc);
        char *argv[64];
        int n = 0;
        char *save = NULL;
        for (char *w = strtok_r(cc, " \t", &save); w && n < 40; w = strtok_r(NULL, " \t", &save)) argv[n++] = w;
        if (n == 0) argv[n++] = "cc";
        char *fixed[] = {"-shared", "-fPIC", "-O2", "-o", b.tmp_so.data, b.obj.data, b.src.data, inc.data,
                         (char *)rt_lib, "-lm", "-Wl,-z,defs", NULL};
        for (int i = 0; fixed[i]; i++) argv[n++] = fixed[i];
        /* OpenMP, for tdsl_parallel_for: a dependency only of libraries with parallel loops */
        const char *omp_lib = env_or("TDSL_RT_OMP_LIB", TDSL_RT_OMP_LIB);
        if (*omp_lib) {
            argv[n++] = "-Wl,--as-needed";
            argv[n++] = (char *)omp_lib;
            argv[n++] = "-Wl,--no-as-needed";
        }
        argv[n] = NULL;
        ok = run_tool(argv, b.log.data, "C compiler", "set $TDSL_CC to choose one", "linking the shared library failed", err);
        free(cc);
        sb_free(&inc);
    }
    if (ok) {
        chmod(b.tmp_so.data, 0755);
        if (rename(b.tmp_so.data, so_path) != 0) {
            sb_printf(err, "cannot write '%s': %s\n", so_path, strerror(errno));
            ok = false;
        } else {
            sb_clear(&b.tmp_so);  /* renamed: nothing to remove */
        }
    }
    if (!ok) unlink(so_path);  /* never leave a stale library behind a failed build */
    build_cleanup(&b);
    sb_free(&obj);
    sb_free(&src);
    return ok;
}

/* ---- cpu_write_header ---------------------------------------------------------------------------- */

bool cpu_write_header(const Module *m, const char *h_path, StrBuf *err)
{
    if (!m || !h_path || !*h_path) {
        sb_puts(err, "cpu_write_header: no module or no output path\n");
        return false;
    }
    for (int i = 0; i < m->nkernels; i++)
        if (!check_kernel_name(m->kernels[i]->name, err)) return false;
    /* the include guard from the file name: model.h -> TDSL_MODEL_H */
    const char *base = strrchr(h_path, '/');
    base = base ? base + 1 : h_path;
    StrBuf guard = {0}, out = {0}, sig = {0};
    sb_puts(&guard, "TDSL_");
    for (const char *p = base; *p; p++) {
        char c = *p;
        if (c >= 'a' && c <= 'z') c = (char)(c - 'a' + 'A');
        else if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))) c = '_';
        sb_putc(&guard, c);
    }
    sb_printf(&out,
              "/* Generated by tcc: the kernels of a tdsl module built ahead of time.\n"
              " *\n"
              " * Each function takes DLPack tensors, inputs first, then outputs, checks them (dtype,\n"
              " * rank, CPU device, size names, row-major contiguous strides, outputs not overlapping)\n"
              " * and returns 0, or a negative code (-1 bad argument, -5 out of memory) with the reason\n"
              " * in tdsl_last_error(); on error nothing is written. See docs/abi.md. */\n"
              "#ifndef %s\n#define %s\n\n#include <dlpack/dlpack.h>\n\n"
              "#ifdef __cplusplus\nextern \"C\" {\n#endif\n\n"
              "/* The message of this thread's last failed call. */\n"
              "const char *tdsl_last_error(void);\n",
              guard.data, guard.data);
    bool ok = true;
    for (int i = 0; i < m->nkernels && ok; i++) {
        const Kernel *k = m->kernels[i];
        sb_clear(&sig);
        ok = kernel_signature(k, &sig, err);
        sb_printf(&out, "\n/* %s */\nint %s(", sb_cstr(&sig), k->name);
        for (int a = 0; a < k->nins + k->nouts; a++) {
            const Tensor *t = a < k->nins ? k->ins[a] : k->outs[a - k->nins];
            sb_printf(&out, "%s%sDLTensor *", a ? ", " : "", a < k->nins ? "const " : "");
            put_c_param(&out, t->name);
        }
        sb_puts(&out, ");\n");
    }
    sb_printf(&out, "\n#ifdef __cplusplus\n}\n#endif\n\n#endif /* %s */\n", guard.data);
    if (ok) ok = write_file_atomic(h_path, out.data, out.len, err);
    sb_free(&guard);
    sb_free(&out);
    sb_free(&sig);
    return ok;
}
