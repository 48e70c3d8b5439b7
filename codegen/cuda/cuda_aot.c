/* cuda_aot: ahead-of-time CUDA modules, `tcc FILE --target=cuda -o FILE.so`.
 *
 * Takes scheduled loop IR (pass_gpu_map); gives a shared library built in four steps:
 *   1. cuda_generate and cuda_compile_ptx: the source and its PTX for the chosen arch;
 *   2. a C file holding the PTX as a string, the manifest (one signature per line, as
 *      codegen/cpu/aot.c writes it, so tdsl_load reads both kinds), `tdsl_target = "cuda"`,
 *      and per kernel K the launcher `tdsl_cuda_K(buffers, sizes, device)`, which follows
 *      K's launch plan through runtime/cuda.c (driver, context and module at the first
 *      call; one device allocation for the temporaries; a zero-fill per packed output; the
 *      launches with their grid computed from the sizes; a synchronisation), and the typed
 *      function `int K(const DLTensor *..., DLTensor *...)` that checks kDLCUDA arguments
 *      (rt_call_cuda_cached) and calls the launcher;
 *   3. the system C compiler (`cc`, or the words of $TDSL_CC) links it with the standalone
 *      runtime (libtdsl_rt.a) into a temporary file next to FILE.so, with -z defs;
 *   4. the temporary is renamed over FILE.so.
 * On any failure nothing is left at FILE.so. The library needs libc only: libcuda.so.1 is
 * opened by the first call, which fails cleanly without it. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

#ifndef TDSL_RT_LIB
#define TDSL_RT_LIB ""
#endif
#ifndef TDSL_RT_INCLUDE_DIR
#define TDSL_RT_INCLUDE_DIR ""
#endif

_Static_assert((int)RT_CUDA_BLOCK_THREADS == (int)GPU_THREADS_PER_BLOCK,
               "the runtime and the schedule must agree on the block size");

/* ---- small helpers (C names and string literals: runtime/signature.c, shared with the CPU) ---- */

/* A size expression in the launcher's C, over s0, s1, ... (the sizes in signature order). */
static void host_size(const Kernel *k, const Expr *e, StrBuf *out)
{
    switch (e->op) {
    case OP_CONST: sb_printf(out, "INT64_C(%lld)", (long long)e->value.i); return;
    case OP_VAR:
        for (int i = 0; i < k->nsizes; i++) {
            if (k->sizes[i] == e->var) {
                sb_printf(out, "s%d", i);
                return;
            }
        }
        break;
    case OP_NEG:
        sb_puts(out, "td_sub(0, ");
        host_size(k, e->args[0], out);
        sb_puts(out, ")");
        return;
    case OP_ADD: case OP_SUB: case OP_MUL: case OP_DIV: case OP_MOD: case OP_MIN: case OP_MAX: {
        const char *fn = e->op == OP_ADD ? "td_add" : e->op == OP_SUB ? "td_sub" : e->op == OP_MUL ? "td_mul"
                       : e->op == OP_DIV ? "td_floordiv" : e->op == OP_MOD ? "td_floormod"
                       : e->op == OP_MIN ? "td_min" : "td_max";
        sb_printf(out, "%s(", fn);
        host_size(k, e->args[0], out);
        sb_puts(out, ", ");
        host_size(k, e->args[1], out);
        sb_puts(out, ")");
        return;
    }
    case OP_ACCESS: case OP_CAST: case OP_NOT: case OP_EXP: case OP_LOG: case OP_EXP2: case OP_LOG2:
    case OP_SQRT: case OP_RSQRT: case OP_ABS: case OP_SIN: case OP_COS: case OP_TANH: case OP_SIGMOID:
    case OP_ERF: case OP_FLOOR: case OP_CEIL: case OP_ROUND: case OP_TRUNC: case OP_SIGN: case OP_ISNAN:
    case OP_POW: case OP_LT: case OP_LE: case OP_GT: case OP_GE: case OP_EQ: case OP_NE: case OP_AND:
    case OP_OR: case OP_SELECT: case OP_CLAMP: case OP_FMA: case OP_COUNT:
        break;
    }
    TD_UNREACHABLE("host_size: not a size expression");
}

/* td_mul(e0, td_mul(e1, ...)), or 1 */
static void host_product(const Kernel *k, const Expr *const *e, int n, StrBuf *out)
{
    if (n == 0) {
        sb_puts(out, "INT64_C(1)");
        return;
    }
    for (int i = 0; i < n - 1; i++) sb_puts(out, "td_mul(");
    host_size(k, e[0], out);
    for (int i = 1; i < n; i++) {
        sb_puts(out, ", ");
        host_size(k, e[i], out);
        sb_puts(out, ")");
    }
}

/* Stores the byte size of buffer t in `var` or returns an error from the launcher. */
static void host_bytes(const Kernel *k, const Tensor *t, const char *var, StrBuf *out)
{
    sb_printf(out, "    {\n        const int64_t dims[] = {");
    for (int a = 0; a < t->rank; a++) {
        if (a) sb_puts(out, ", ");
        host_size(k, t->shape[a], out);
    }
    sb_printf(out, "%s};\n", t->rank ? "" : "0");
    sb_printf(out, "        if (!rt_cuda_bytes(dims, %d, %d, &%s))\n", t->rank, dtype_bits(t->dtype), var);
    sb_printf(out, "            return rt_fail(TDSL_ERR_RUNTIME, \"%s: %%s is too large\", ", k->name);
    rt_put_c_string(out, t->name, strlen(t->name));
    sb_puts(out, ");\n    }\n");
}

/* ---- the generated C file ------------------------------------------------------------------------- */

static const char launcher_helpers[] =
    "/* size arithmetic as ir_eval_size: wrapping + - *, floor / and % */\n"
    "static int64_t td_add(int64_t a, int64_t b) { return (int64_t)((uint64_t)a + (uint64_t)b); }\n"
    "static int64_t td_sub(int64_t a, int64_t b) { return (int64_t)((uint64_t)a - (uint64_t)b); }\n"
    "static int64_t td_mul(int64_t a, int64_t b) { return (int64_t)((uint64_t)a * (uint64_t)b); }\n"
    "static int64_t td_min(int64_t a, int64_t b) { return a < b ? a : b; }\n"
    "static int64_t td_max(int64_t a, int64_t b) { return a > b ? a : b; }\n"
    "static int64_t td_floordiv(int64_t a, int64_t b)\n"
    "{\n"
    "    if (b == 0) return 0;\n"
    "    if (b == -1) return td_sub(0, a);\n"
    "    int64_t q = a / b;\n"
    "    return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;\n"
    "}\n"
    "static int64_t td_floormod(int64_t a, int64_t b)\n"
    "{\n"
    "    if (b == 0) return a;\n"
    "    if (b == -1) return 0;\n"
    "    int64_t r = a % b;\n"
    "    return (r != 0 && ((r < 0) != (b < 0))) ? r + b : r;\n"
    "}\n";

static void gen_launcher(const CudaKernelPlan *kp, StrBuf *out)
{
    const Kernel *k = kp->kernel;
    int nparams = k->nins + k->nouts;
    sb_printf(out, "\nTDSL_API int32_t tdsl_cuda_%s(void *const *buffers, const int64_t *sizes, int32_t device)\n{\n",
              k->name);
    for (int i = 0; i < k->nsizes; i++) sb_printf(out, "    int64_t s%d = sizes[%d]; /* %s */\n", i, i, k->sizes[i]->name);
    for (int b = 0; b < nparams; b++) {
        const Tensor *t = b < k->nins ? k->ins[b] : k->outs[b - k->nins];
        sb_printf(out, "    void *b%d = buffers[%d]; /* %s */\n", b, b, t->name);
    }
    int ntemps = kp->ntemps, nzero = 0;
    for (int i = 0; i < kp->nsteps; i++) nzero += kp->steps[i].kind == CUDA_STEP_ZERO;
    /* every size first: nothing can fail between rt_cuda_begin and rt_cuda_end but the driver */
    sb_printf(out, "    size_t bytes[%d], zero_bytes[%d];\n    void *temps[%d] = {0};\n", ntemps + 1, nzero + 1, ntemps + 1);
    for (int i = 0; i < ntemps; i++) {
        char var[32];
        snprintf(var, sizeof var, "bytes[%d]", i);
        host_bytes(k, kp->temps[i], var, out);
    }
    for (int i = 0, z = 0; i < kp->nsteps; i++) {
        const CudaStep *st = &kp->steps[i];
        if (st->kind != CUDA_STEP_ZERO) continue;
        char var[32];
        snprintf(var, sizeof var, "zero_bytes[%d]", z++);
        host_bytes(k, st->buffer < k->nins ? k->ins[st->buffer] : k->outs[st->buffer - k->nins], var, out);
    }
    sb_printf(out, "    RtCudaCall call;\n    int rc = rt_cuda_begin(&call, &tdsl_cuda, device, \"%s\");\n", k->name);
    sb_puts(out, "    if (rc != TDSL_OK) return rc;\n");
    sb_printf(out, "    rc = rt_cuda_alloc(&call, bytes, %d, temps);\n", ntemps);
    for (int i = 0; i < ntemps; i++)
        sb_printf(out, "    void *b%d = temps[%d]; /* %s */\n", nparams + i, i, kp->temps[i]->name);
    for (int i = 0, z = 0; i < kp->nsteps; i++) {
        const CudaStep *st = &kp->steps[i];
        if (st->kind == CUDA_STEP_ZERO) {
            sb_printf(out, "    if (rc == TDSL_OK) rc = rt_cuda_zero(&call, b%d, zero_bytes[%d]);\n", st->buffer, z++);
            continue;
        }
        const CudaLaunch *l = &st->launch;
        sb_puts(out, "    if (rc == TDSL_OK) {\n        void *args[] = {");
        for (int a = 0; a < l->nargs; a++) {
            if (a) sb_puts(out, ", ");
            sb_printf(out, l->args[a].kind == CUDA_ARG_BUFFER ? "&b%d" : "&s%d", l->args[a].index);
        }
        if (l->nargs == 0) sb_puts(out, "NULL");
        sb_printf(out, "};\n        rc = rt_cuda_launch(&call, \"%s\", ", l->name);
        host_product(k, l->block_extents, l->nblock, out);
        sb_puts(out, ", ");
        if (l->nthread >= 0) host_product(k, l->thread_extents, l->nthread, out);
        else sb_puts(out, "-1");
        sb_printf(out, ", %s, args);\n    }\n", l->one_row ? "true" : "false");
    }
    sb_puts(out, "    return rt_cuda_end(&call, rc);\n}\n");
}

static bool gen_wrappers(const LoopModule *lm, const CudaLaunchPlan *plan, const char *ptx, StrBuf *out, StrBuf *err)
{
    StrBuf sig = {0};
    bool ok = true;
    sb_puts(out, "/* Generated by tcc: a tdsl module for CUDA: its PTX, the manifest, the launchers and the\n"
                 " * typed entry points. */\n"
                 "#include <stdbool.h>\n#include <stdint.h>\n#include \"rt.h\"\n\n"
                 "static const char tdsl_ptx[] =\n");
    for (const char *p = ptx; *p;) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) + 1 : strlen(p);
        sb_puts(out, "    ");
        rt_put_c_string(out, p, len);
        sb_putc(out, '\n');
        p += len;
    }
    sb_puts(out, "    \"\";\n\nstatic RtCudaModule tdsl_cuda = {tdsl_ptx, PTHREAD_MUTEX_INITIALIZER};\n\n");
    sb_puts(out, "TDSL_API const char *const tdsl_target = \"cuda\";\nTDSL_API const char *const tdsl_manifest =\n");
    for (int i = 0; i < lm->nfuncs && ok; i++) {
        sb_clear(&sig);
        ok = rt_checked_signature(lm->funcs[i]->kernel, &sig, err);
        sb_puts(&sig, "\n");
        sb_puts(out, "    ");
        rt_put_c_string(out, sig.data, sig.len);
        sb_puts(out, "\n");
    }
    sb_puts(out, "    \"\";\n\n");
    sb_puts(out, launcher_helpers);
    for (int i = 0; i < plan->nkernels && ok; i++) {
        const CudaKernelPlan *kp = &plan->kernels[i];
        const Kernel *k = kp->kernel;
        gen_launcher(kp, out);
        int n = k->nins + k->nouts;
        sb_clear(&sig);
        ok = rt_checked_signature(k, &sig, err);
        sb_printf(out, "\nstatic void *tdsl_sig_%s;\nTDSL_API int %s(", k->name, k->name);
        for (int a = 0; a < n; a++) sb_printf(out, "%s%sDLTensor *p%d", a ? ", " : "", a < k->nins ? "const " : "", a);
        if (n == 0) sb_puts(out, "void");
        sb_puts(out, ")\n{\n    const DLTensor *const args[] = {");
        for (int a = 0; a < n; a++) sb_printf(out, "%sp%d", a ? ", " : "", a);
        if (n == 0) sb_puts(out, "NULL");
        sb_printf(out, "};\n    return rt_call_cuda_cached(&tdsl_sig_%s, ", k->name);
        rt_put_c_string(out, sig.data, sig.len);
        sb_printf(out, ", tdsl_cuda_%s, args, %d);\n}\n", k->name, n);
    }
    sb_puts(out, "\n/* The descriptors parsed on first use, freed when the library is unloaded (the CUDA\n"
                 " * modules stay loaded until the process exits: see runtime/cuda.c). */\n"
                 "__attribute__((destructor)) static void tdsl_module_fini(void)\n{\n");
    for (int i = 0; i < lm->nfuncs; i++) sb_printf(out, "    rt_sig_cache_free(&tdsl_sig_%s);\n", lm->funcs[i]->kernel->name);
    sb_puts(out, "}\n");
    sb_free(&sig);
    return ok;
}

/* ---- the C compiler ---------------------------------------------------------------------------------- */

static const char *env_or(const char *name, const char *fallback)
{
    const char *v = getenv(name);
    return v && *v ? v : fallback;
}

/* Compiles and links the C file src into so_path (through a temporary file). */
static bool link_so(const StrBuf *src, const char *so_path, StrBuf *err)
{
    const char *rt_lib = env_or("TDSL_RT_LIB", TDSL_RT_LIB);
    const char *rt_inc = env_or("TDSL_RT_INCLUDE", TDSL_RT_INCLUDE_DIR);
    if (!*rt_lib || access(rt_lib, R_OK) != 0) {
        sb_printf(err, "the tdsl runtime library '%s' is missing; build the tdsl_rt target or set $TDSL_RT_LIB\n", rt_lib);
        return false;
    }
    StrBuf dir = {0}, c_path = {0}, log = {0}, tmp_so = {0};
    sb_printf(&dir, "%s/tdsl-cuda-XXXXXX", env_or("TMPDIR", "/tmp"));
    if (!mkdtemp(dir.data)) {
        sb_printf(err, "cannot create a temporary directory '%s': %s\n", dir.data, strerror(errno));
        sb_free(&dir);
        return false;
    }
    sb_printf(&c_path, "%s/launchers.c", dir.data);
    sb_printf(&log, "%s/cc.log", dir.data);
    bool ok = write_file_all(c_path.data, src->data, src->len, err);
    if (ok) {
        sb_printf(&tmp_so, "%s.tmpXXXXXX", so_path);
        int fd = mkstemp(tmp_so.data);
        if (fd < 0) {
            sb_printf(err, "cannot write '%s': %s\n", so_path, strerror(errno));
            sb_clear(&tmp_so);
            ok = false;
        } else {
            close(fd);
        }
    }
    if (ok) {
        char *cc = strdup(env_or("TDSL_CC", "cc"));
        TD_ASSERT(cc);
        StrBuf inc = {0};
        sb_printf(&inc, "-I%s", rt_inc);
        char *argv[64];
        int n = 0;
        char *save = NULL;
        for (char *w = strtok_r(cc, " \t", &save); w && n < 40; w = strtok_r(NULL, " \t", &save)) argv[n++] = w;
        if (n == 0) argv[n++] = "cc";
        char *fixed[] = {"-shared", "-fPIC", "-O1", "-o", tmp_so.data, c_path.data, inc.data, (char *)rt_lib,
                         "-ldl", "-lpthread", "-Wl,-z,defs", NULL};
        for (int i = 0; fixed[i]; i++) argv[n++] = fixed[i];
        argv[n] = NULL;
        ok = run_tool(argv, log.data, "C compiler", "set $TDSL_CC to choose one", "linking the shared library failed", err);
        free(cc);
        sb_free(&inc);
    }
    if (ok) {
        chmod(tmp_so.data, 0755);
        if (rename(tmp_so.data, so_path) != 0) {
            sb_printf(err, "cannot write '%s': %s\n", so_path, strerror(errno));
            ok = false;
        } else {
            sb_clear(&tmp_so);
        }
    }
    if (tmp_so.len) unlink(tmp_so.data);
    if (!getenv("TDSL_KEEP_TEMPS")) {
        unlink(c_path.data);
        unlink(log.data);
        rmdir(dir.data);
    }
    sb_free(&dir);
    sb_free(&c_path);
    sb_free(&log);
    sb_free(&tmp_so);
    return ok;
}

bool cuda_build_shared(const LoopModule *lm, const CudaOptions *o, const char *so_path, StrBuf *err)
{
    if (!lm || !so_path || !*so_path) {
        sb_puts(err, "cuda_build_shared: no module or no output path\n");
        return false;
    }
    for (int i = 0; i < lm->nfuncs; i++)
        if (!rt_check_export_name(lm->funcs[i]->kernel->name, err)) return false;
    StrBuf source = {0}, ptx = {0}, c = {0};
    CudaLaunchPlan *plan = NULL;
    bool ok = cuda_generate(lm, o, &source, &plan, err) && cuda_compile_ptx(sb_cstr(&source), o, &ptx, err) &&
              gen_wrappers(lm, plan, sb_cstr(&ptx), &c, err) && link_so(&c, so_path, err);
    if (!ok) unlink(so_path);  /* never leave a stale library behind a failed build */
    cuda_plan_free(plan);
    sb_free(&source);
    sb_free(&ptx);
    sb_free(&c);
    return ok;
}
