/* Compiled code against the reference interpreter on every program the project has: each
 * kernel of each golden test and stdlib file is run by ir_interp_run (on the IR as the
 * front end made it), by the JIT (after the compiler's passes: fusion, lowering)
 * (cpu_jit_compile) and from a shared library built ahead of time (cpu_build_shared, then
 * dlopen) on the same random inputs, for three shape sets: every size 1, odd sizes, and
 * larger ones. The JIT's outputs are compared with the interpreter's element by element,
 * and the AOT library's with the JIT's, integers exactly and floats within the tolerances
 * below (not bit for bit: compiled reductions may be reassociated, see docs/abi.md, and the
 * two builds were seen to differ by an ulp or so; why they differ at all is not found yet).
 *
 * Tolerances per output dtype (documented in docs/abi.md): integers and bool exactly;
 * floats within rtol * |expected| + atol * (largest |expected| of that output), with
 * (rtol, atol) = (1e-12, 1e-12) for f64, (2e-5, 1e-4) for f32, (2e-3, 4e-3) for f16 and
 * (1.6e-2, 3e-2) for bf16 (kernel_data.h). The absolute part is relative to the output's
 * scale because the interpreter accumulates float reductions in double and compiled code in
 * f32: a sum that cancels to a small value keeps an error of the size of its terms' rounding.
 * Inputs are uniform in [-1, 1). A shape set whose interpreter work exceeds MAX_WORK is run
 * at a smaller scale (kernel_data.h), so that block-structured kernels stay quick. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <dlfcn.h>
#include <unistd.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "codegen/cpu/cpu.h"
#include "frontend/frontend.h"
#include "passes/passes.h"
#include "kernel_data.h"







/* Runs kernel k under both engines with every size set to sizes[i]; false when the sizes
 * give some tensor an empty or too large shape (that shape set is skipped). */
static bool compare_kernel(const char *file, const Kernel *k, TdslRawKernel fn, TdslRawKernel aot, const int64_t *sizes,
                           int *checked)
{
    int n = k->nins + k->nouts;
    TensorData *ins = calloc((size_t)n + 1, sizeof(TensorData));
    TensorData *ref = ins + k->nins;
    TensorData *got = calloc((size_t)k->nouts + 1, sizeof(TensorData));
    bool ok = true;
    for (int i = 0; i < k->nins && ok; i++) ok = shape_of(k, k->ins[i], sizes, &ins[i]);
    for (int o = 0; o < k->nouts && ok; o++) ok = shape_of(k, k->outs[o], sizes, &ref[o]) && shape_of(k, k->outs[o], sizes, &got[o]);
    if (ok) {
        for (int i = 0; i < k->nins; i++) fill_random(&ins[i], 1234 + (uint64_t)i);
        StrBuf err = {0};
        bool ran = ir_interp_run(k, sizes, ins, ref, &err);
        cr_assert(ran, "%s: %s: interpreter: %s", file, k->name, sb_cstr(&err));
        sb_free(&err);
        void *buffers[64];
        cr_assert_lt(n, 64);
        for (int i = 0; i < k->nins; i++) buffers[i] = ins[i].data;
        for (int o = 0; o < k->nouts; o++) buffers[k->nins + o] = got[o].data;
        cr_assert_eq(fn(buffers, sizes), 0, "%s: %s: compiled kernel failed", file, k->name);
        /* the AOT build of the same kernel, into fresh buffers */
        void **aot_out = calloc((size_t)k->nouts + 1, sizeof(void *));
        for (int o = 0; o < k->nouts; o++) {
            aot_out[o] = calloc(got[o].nbytes + 1, 1);
            buffers[k->nins + o] = aot_out[o];
        }
        cr_assert(!aot || aot(buffers, sizes) == 0, "%s: %s: AOT kernel failed", file, k->name);
        for (int o = 0; aot && o < k->nouts; o++) {
            TensorData a = got[o];
            a.data = aot_out[o];
            size_t cnt = count_of(&a);
            double scale = 1e-30;
            for (size_t e = 0; dtype_is_float(a.dtype) && e < cnt; e++) {
                double w = fabs(dtype_load_f(a.dtype, got[o].data, e));
                if (isfinite(w) && w > scale) scale = w;
            }
            for (size_t e = 0; e < cnt; e++) {
                if (dtype_is_float(a.dtype)) {
                    double x = dtype_load_f(a.dtype, a.data, e), y = dtype_load_f(a.dtype, got[o].data, e);
                    cr_assert(close_enough(a.dtype, y, x, scale), "%s: %s: AOT output %s[%zu] is %.9g, the JIT's %.9g",
                              file, k->name, k->outs[o]->name, e, x, y);
                } else {
                    cr_assert_eq(dtype_load_i(a.dtype, a.data, e), dtype_load_i(a.dtype, got[o].data, e),
                                 "%s: %s: AOT output %s[%zu] differs from the JIT's", file, k->name, k->outs[o]->name, e);
                }
            }
        }
        for (int o = 0; o < k->nouts; o++) free(aot_out[o]);
        free(aot_out);
        for (int o = 0; o < k->nouts; o++) {
            const Tensor *t = k->outs[o];
            size_t cnt = count_of(&ref[o]);
            double scale = 1e-30;
            for (size_t e = 0; dtype_is_float(t->dtype) && e < cnt; e++) {
                double w = fabs(dtype_load_f(t->dtype, ref[o].data, e));
                if (isfinite(w) && w > scale) scale = w;
            }
            for (size_t e = 0; e < cnt; e++) {
                if (dtype_is_float(t->dtype)) {
                    double w = dtype_load_f(t->dtype, ref[o].data, e), g = dtype_load_f(t->dtype, got[o].data, e);
                    cr_assert(close_enough(t->dtype, w, g, scale), "%s: kernel %s, output %s[%zu]: interpreter %.9g, compiled %.9g",
                              file, k->name, t->name, e, w, g);
                } else {
                    int64_t w = dtype_load_i(t->dtype, ref[o].data, e), g = dtype_load_i(t->dtype, got[o].data, e);
                    cr_assert_eq(w, g, "%s: kernel %s, output %s[%zu]: interpreter %lld, compiled %lld", file, k->name,
                                 t->name, e, (long long)w, (long long)g);
                }
            }
        }
        (*checked)++;
    }
    for (int i = 0; i < n; i++) free(ins[i].data);
    for (int o = 0; o < k->nouts; o++) free(got[o].data);
    free(ins);
    free(got);
    return ok;
}

/* Compiles a test program the way the golden tests see it (their helper modules on -I). */
static Module *compile_program(const char *path, DiagSink *d)
{
    diag_init(d, NULL);
    static const char *const inc[] = {TDSL_SOURCE_DIR "/tests/golden/inputs"};
    FeOptions o = {0};
    o.include_dirs = inc;
    o.ninclude = 1;
    o.stdlib_dir = TDSL_SOURCE_DIR "/stdlib";
    return fe_compile_file(path, &o, d);
}

static void check_file(const char *path, int *checked)
{
    DiagSink d;
    Module *m = compile_program(path, &d);
    cr_assert_not_null(m, "%s does not compile:\n%s", path, sb_cstr(&d.log));
    /* the interpreter runs m as the front end made it; compiled code goes through the
     * compiler's pipeline (fusion, then lowering) on a second copy */
    DiagSink d2;
    Module *fused = compile_program(path, &d2);
    cr_assert_not_null(fused);
    pass_fuse(fused, NULL);
    StrBuf err = {0};
    cr_assert(ir_verify(fused, &err), "%s: IR after fusion: %s", path, sb_cstr(&err));
    LoopModule *lm = ir_lower_module(fused, NULL);
    CpuOptions opts = {NULL, NULL, 2};   /* the same target and level for both builds */
    CpuJit *jit = cpu_jit_compile(lm, &opts, &err);
    cr_assert_not_null(jit, "%s: %s", path, sb_cstr(&err));
    char dir[] = "/tmp/tdsl-equiv-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char so[sizeof dir + 16];
    snprintf(so, sizeof so, "%s/k.so", dir);
    /* A kernel named like a C keyword cannot be exported; such files are compared JIT-only. */
    void *lib = NULL;
    if (cpu_build_shared(lm, &opts, so, &err)) {
        lib = dlopen(so, RTLD_NOW | RTLD_LOCAL);
        cr_assert_not_null(lib, "%s: %s", path, dlerror());
    } else {
        cr_assert(strstr(sb_cstr(&err), "cannot be exported"), "%s: AOT build: %s", path, sb_cstr(&err));
        sb_clear(&err);
    }
    static const int64_t sets[3][4] = {{1, 1, 1, 1}, {3, 5, 7, 2}, {33, 17, 64, 9}};
    for (int ki = 0; ki < m->nkernels; ki++) {
        const Kernel *k = m->kernels[ki];
        TdslRawKernel fn = cpu_jit_lookup(jit, k->name);
        cr_assert_not_null(fn, "%s: no compiled %s", path, k->name);
        char sym[256];
        snprintf(sym, sizeof sym, "tdsl_raw_%s", k->name);
        TdslRawKernel aot = lib ? (TdslRawKernel)(uintptr_t)dlsym(lib, sym) : NULL;
        cr_assert(!lib || aot, "%s: %s missing from the AOT library", path, sym);
        int64_t *sizes = calloc((size_t)k->nsizes + 1, sizeof(int64_t));
        for (int set = 0; set < 3; set++) {
            for (int s = 0; s < k->nsizes; s++) sizes[s] = sets[set][s % 4];
            bool light = stmts_work(k, k->stmts, k->nstmts, sizes) <= MAX_WORK;
            if ((!light || !compare_kernel(path, k, fn, aot, sizes, checked)) && set == 2) {
                /* too large (memory or the interpreter's time): the large set at a smaller scale */
                for (int s = 0; s < k->nsizes; s++) sizes[s] = sets[1][s % 4] * 2 + 1;
                if (stmts_work(k, k->stmts, k->nstmts, sizes) <= MAX_WORK) compare_kernel(path, k, fn, aot, sizes, checked);
            }
        }
        free(sizes);
    }
    if (lib) dlclose(lib);
    unlink(so);
    rmdir(dir);
    cpu_jit_free(jit);
    sb_free(&err);
    ir_module_free(m);
    ir_module_free(fused);
    diag_free(&d);
    diag_free(&d2);
}

static void check_dir(const char *dir, int *files, int *checked)
{
    DIR *dp = opendir(dir);
    cr_assert_not_null(dp, "cannot open %s", dir);
    struct dirent *e;
    char *names[512];
    int n = 0;
    while ((e = readdir(dp)) && n < 512) {
        size_t len = strlen(e->d_name);
        if (len > 5 && strcmp(e->d_name + len - 5, ".tdsl") == 0) names[n++] = strdup(e->d_name);
    }
    closedir(dp);
    for (int i = 0; i < n; i++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        /* golden files that are diagnostics, not programs, do not compile */
        DiagSink d;
        Module *m = compile_program(path, &d);
        bool compiles = m != NULL;
        if (m) ir_module_free(m);
        diag_free(&d);
        if (compiles) {
            check_file(path, checked);
            (*files)++;
        }
        free(names[i]);
    }
}

Test(equivalence, golden_programs_and_stdlib, .timeout = 2400)   /* slow under sanitizers */
{
    int files = 0, checked = 0;
    check_dir(TDSL_SOURCE_DIR "/stdlib", &files, &checked);
    check_dir(TDSL_SOURCE_DIR "/tests/golden", &files, &checked);
    check_dir(TDSL_SOURCE_DIR "/tests/numeric/progs", &files, &checked);
    cr_log_info("compared %d kernel runs from %d files", checked, files);
    cr_assert_geq(files, 30);
    cr_assert_geq(checked, 100);
}
