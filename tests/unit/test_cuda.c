/* The CUDA back end without a GPU: the schedule (pass_gpu_map), the generated source and
 * launch plan (cuda_generate), NVRTC and ptxas on every program the project has, the launch
 * dimensions, and the ahead-of-time library's behaviour on a machine without a CUDA driver.
 *
 *   cuda.schedule_*           the shape gpu_map gives small programs (blocks, threads, split
 *                             loops, single-block scans with barriers, one-thread statements);
 *   cuda.launch_dims          the grid and block rule;
 *   cuda.generate_*           source details: self-contained, deterministic, the interpreter's
 *                             rules spelled out;
 *   cuda.every_program_*      every kernel of stdlib/, tests/golden/ and tests/numeric/progs/
 *                             (whatever is there): NVRTC compiles the generated source for
 *                             sm_80 and sm_90, `ptxas -arch=sm_80` assembles the sm_80 PTX
 *                             and `ptxas -arch=sm_90` both, and no kernel spills a register
 *                             (PERFORMANCE.md); skipped with a message without NVRTC/ptxas;
 *   cuda.aot_*                a CUDA .so builds, loads, and every call fails cleanly with
 *                             "no CUDA driver found (libcuda.so.1)" when there is no driver
 *                             (skipped where a driver exists), through the typed function and
 *                             through tdsl_load; argument checks want kDLCUDA tensors on one
 *                             device;
 *   cuda.jit_*                tdsl_compile with TDSL_TARGET_CUDA (NVRTC in memory): kernels
 *                             described like CPU ones, kDLCUDA argument checks, every call
 *                             failing cleanly without a driver and writing nothing, option
 *                             and compile errors; the ASan build's LeakSanitizer checks that
 *                             tdsl_module_free releases everything; and, through a recording
 *                             stand-in driver (fake_cuda.c), the JIT launcher making exactly
 *                             the driver calls of an AOT library's generated launcher.
 * Numerical agreement with the interpreter is test_simt.c's (the emulator runs the same
 * generated source and plan). */
#include <criterion/criterion.h>
#include <dirent.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "codegen/cuda/cuda.h"
#include "frontend/frontend.h"
#include "passes/passes.h"
#include "runtime/rt.h"
#include "runtime/tdsl.h"

#ifndef TDSL_PTXAS
#define TDSL_PTXAS ""
#endif

extern char **environ;

/* ---- helpers --------------------------------------------------------------------------------- */

typedef struct Compiled {
    Module     *m;
    LoopModule *lm;   /* after pass_gpu_map */
    DiagSink    d;
} Compiled;

static bool compile_module(Compiled *c, Module *m, const char *what)
{
    c->m = m;
    if (!m) return false;
    pass_fuse(m, NULL);
    StrBuf err = {0};
    cr_assert(ir_verify(m, &err), "%s: IR after fusion: %s", what, sb_cstr(&err));
    LoopModule *lm = ir_lower_module(m, &(LowerOptions){.no_fuse = true, .gpu = true});
    cr_assert(loop_verify(lm, &err), "%s: loop IR: %s", what, sb_cstr(&err));
    c->lm = pass_gpu_map(m, lm);
    cr_assert(loop_verify(c->lm, &err), "%s: loop IR after gpu_map: %s", what, sb_cstr(&err));
    sb_free(&err);
    return true;
}

static void compile_text(Compiled *c, const char *src)
{
    diag_init(&c->d, NULL);
    Module *m = fe_compile_source("test.tdsl", src, strlen(src), NULL, &c->d);
    cr_assert(m && c->d.nerrors == 0, "does not compile:\n%s", sb_cstr(&c->d.log));
    compile_module(c, m, "test.tdsl");
}

static bool compile_path(Compiled *c, const char *path)
{
    diag_init(&c->d, NULL);
    static const char *const inc[] = {TDSL_SOURCE_DIR "/tests/golden/inputs"};
    FeOptions o = {inc, 1, TDSL_SOURCE_DIR "/stdlib"};
    Module *m = fe_compile_file(path, &o, &c->d);
    if (!m || c->d.nerrors) {
        if (m) ir_module_free(m);
        c->m = NULL;
        return false;
    }
    return compile_module(c, m, path);
}

static void release(Compiled *c)
{
    if (c->m) ir_module_free(c->m);
    diag_free(&c->d);
}

static void loops_of(const Compiled *c, StrBuf *out) { loop_print_module(c->lm, out); }

static void source_of(const Compiled *c, StrBuf *src, CudaLaunchPlan **plan)
{
    StrBuf err = {0};
    cr_assert(cuda_generate(c->lm, NULL, src, plan, &err), "cuda_generate: %s", sb_cstr(&err));
    sb_free(&err);
}

/* ---- the schedule ------------------------------------------------------------------------------ */

Test(cuda, schedule_nest_blocks_and_threads)
{
    Compiled c;
    compile_text(&c, "kernel add(a: f32[N, M], b: f32[N, M]) -> c: f32[N, M] {\n    c[i, j] = a[i, j] + b[i, j]\n}\n");
    StrBuf t = {0};
    loops_of(&c, &t);
    cr_assert(strstr(sb_cstr(&t), "  gpu_block for i < N {\n    gpu_thread for j < M {\n      c[i, j] = (a[i, j] + b[i, j])\n"),
              "%s", sb_cstr(&t));
    sb_free(&t);
    release(&c);
}

Test(cuda, schedule_single_loop_split_with_guard)
{
    Compiled c;
    compile_text(&c, "kernel neg(x: f32[N]) -> y: f32[N] {\n    y[i] = -x[i]\n}\n");
    StrBuf t = {0};
    loops_of(&c, &t);
    const char *s = sb_cstr(&t);
    cr_assert(strstr(s, "gpu_block for i.b < (N + 255) / 256 {"), "%s", s);
    cr_assert(strstr(s, "gpu_thread for i.t < 256 {"), "%s", s);
    cr_assert(strstr(s, "if (((i.b * 256) + i.t) < N) {"), "%s", s);
    cr_assert(strstr(s, "y[((i.b * 256) + i.t)] = neg(x[((i.b * 256) + i.t)])"), "%s", s);
    sb_free(&t);
    release(&c);
}

Test(cuda, schedule_scan_is_one_block_with_barriers)
{
    Compiled c;
    compile_text(&c, "kernel cumsum(x: f32[T, D]) -> y: f32[T, D] {\n"
                     "    scan t < T with h: f32[D] = 0 {\n"
                     "        h[d] = h[d] + x[t, d]\n"
                     "        y[t, d] = h[d]\n"
                     "    }\n"
                     "}\n");
    StrBuf t = {0};
    loops_of(&c, &t);
    const char *s = sb_cstr(&t);
    /* the state fill is a kernel of its own; the steps run in one block, the statements of a
     * step on its threads, a barrier after each */
    const char *scan = strstr(s, "gpu_block for block.b < 1 {\n    for t < T {\n      gpu_thread for d < D {");
    cr_assert(scan, "%s", s);
    cr_assert(strstr(scan, "      barrier\n      gpu_thread for d < D {"), "%s", s);
    cr_assert(strstr(scan, "      barrier\n    }\n  }\n"), "%s", s);
    StrBuf src = {0};
    CudaLaunchPlan *plan = NULL;
    source_of(&c, &src, &plan);
    const CudaKernelPlan *kp = &plan->kernels[0];
    bool barrier_launch = false;
    for (int i = 0; i < kp->nsteps; i++)
        if (kp->steps[i].kind == CUDA_STEP_LAUNCH && kp->steps[i].launch.one_row) barrier_launch = true;
    cr_assert(barrier_launch, "the scan's launch calls __syncthreads: one block row");
    cr_assert(strstr(sb_cstr(&src), "__syncthreads();"));
    cuda_plan_free(plan);
    sb_free(&src);
    sb_free(&t);
    release(&c);
}

Test(cuda, schedule_rank0_on_one_thread)
{
    Compiled c;
    compile_text(&c, "kernel total(x: f32[N]) -> s: f32 {\n    s = sum[i](x[i])\n}\n");
    StrBuf t = {0};
    loops_of(&c, &t);
    cr_assert(strstr(sb_cstr(&t), "gpu_block for block.b < 1 {\n    gpu_thread for one.t < 1 {\n"), "%s", sb_cstr(&t));
    StrBuf src = {0};
    CudaLaunchPlan *plan = NULL;
    source_of(&c, &src, &plan);
    const CudaLaunch *l = &plan->kernels[0].steps[0].launch;
    unsigned grid[3], block[3];
    int64_t sizes[1] = {1000};
    cr_assert(cuda_launch_dims(l, plan->kernels[0].kernel, sizes, grid, block));
    cr_assert_eq(grid[0], 1);
    cr_assert_eq(block[0] * block[1], 32, "one warp, one busy thread");
    cuda_plan_free(plan);
    sb_free(&src);
    sb_free(&t);
    release(&c);
}

/* ---- launch dimensions ------------------------------------------------------------------------- */

Test(cuda, launch_dims)
{
    unsigned g[3], b[3];
    rt_cuda_launch_dims(4096, 4096, false, g, b);  /* rows of a softmax: a block per row */
    cr_assert(g[0] == 4096 && b[0] == 256 && b[1] == 1);
    rt_cuda_launch_dims(1000, 64, false, g, b);    /* short rows: four per block */
    cr_assert(g[0] == 250 && b[0] == 64 && b[1] == 4, "%u %u %u", g[0], b[0], b[1]);
    rt_cuda_launch_dims(3, 5, false, g, b);        /* tiny: one block of 3 rows of a warp */
    cr_assert(g[0] == 1 && b[0] == 32 && b[1] == 3, "%u %u %u", g[0], b[0], b[1]);
    rt_cuda_launch_dims(1, -1, true, g, b);        /* a single-block kernel with barriers */
    cr_assert(g[0] == 1 && b[0] == 256 && b[1] == 1);
    rt_cuda_launch_dims(1000, 64, true, g, b);     /* barriers: never several rows per block */
    cr_assert(g[0] == 1000 && b[1] == 1);
    rt_cuda_launch_dims((int64_t)1 << 40, 256, false, g, b);  /* capped: grid-stride loops cover the rest */
    cr_assert(g[0] == 1u << 20);
    rt_cuda_launch_dims(0, 0, false, g, b);        /* nothing to do: still a valid launch */
    cr_assert(g[0] == 1 && b[0] == 32 && b[1] == 1);
}

/* ---- the generated source ------------------------------------------------------------------------ */

Test(cuda, generate_self_contained_and_deterministic)
{
    Compiled c;
    compile_text(&c, "kernel mix(a: f16[N], b: bf16[N], q: i4[N], k: i32[N]) -> (h: f16[N], p: i4[N], d: i32[N], m: f32[N]) {\n"
                     "    h[i] = a[i] * a[i] + f16(b[i])\n"
                     "    p[i] = q[i] + q[i]\n"
                     "    d[i] = k[i] / (k[i] - 3) + k[i] % 0\n"
                     "    m[i] = max(f32(a[i]), f32(b[i])) + round(f32(k[i]) / 2)\n"
                     "}\n");
    StrBuf s1 = {0}, s2 = {0};
    CudaLaunchPlan *p1 = NULL, *p2 = NULL;
    source_of(&c, &s1, &p1);
    source_of(&c, &s2, &p2);
    const char *s = sb_cstr(&s1);
    cr_assert_str_eq(s, sb_cstr(&s2), "the source is deterministic");
    cr_assert_null(strstr(s, "#include"), "no header: NVRTC and the emulator compile it as is");
    cr_assert(strstr(s, "td_round_f16((td_f16_to_f32(a["), "f16 rounds after each op:\n%s", s);
    cr_assert(strstr(s, "td_store_packed(p, "), "packed stores are atomic read-modify-writes");
    cr_assert(strstr(s, "td_div_i32(") && strstr(s, "td_mod_i32("), "guarded integer division");
    cr_assert(strstr(s, "td_max_f32(") && strstr(s, "rintf("), "NaN-propagating max, half-even round");
    cr_assert(strstr(s, "__launch_bounds__(256, 1)"));
    /* the packed output is zeroed before the launches (its stores keep the other bits) */
    const CudaKernelPlan *kp = &p1->kernels[0];
    cr_assert_eq(kp->steps[0].kind, CUDA_STEP_ZERO);
    cr_assert_eq(kp->steps[0].buffer, 5, "p is buffer nins + 1");
    for (int i = 0; i < kp->nsteps; i++) {
        if (kp->steps[i].kind != CUDA_STEP_LAUNCH) continue;
        char decl[128];
        snprintf(decl, sizeof decl, "__launch_bounds__(256, 1) %s(", kp->steps[i].launch.name);
        cr_assert(strstr(s, decl), "the plan names %s, which the source defines", kp->steps[i].launch.name);
    }
    cuda_plan_free(p1);
    cuda_plan_free(p2);
    sb_free(&s1);
    sb_free(&s2);
    release(&c);
}

Test(cuda, generate_reserved_names_renamed)
{
    /* names C++ or CUDA reserve, and names the generated code uses, get a suffix */
    Compiled c;
    compile_text(&c, "kernel k(float: f32[exp], threadIdx: f32[exp]) -> td_x: f32[exp] {\n"
                     "    td_x[int] = float[int] + threadIdx[int]\n"
                     "}\n");
    StrBuf s = {0};
    CudaLaunchPlan *p = NULL;
    source_of(&c, &s, &p);
    cr_assert(strstr(sb_cstr(&s), "const float *__restrict__ float_2, const float *__restrict__ threadIdx_2, "
                                  "float *__restrict__ v_td_x, td_i64 exp_2"), "%s", sb_cstr(&s));
    cuda_plan_free(p);
    sb_free(&s);
    release(&c);
}

/* ---- every program: NVRTC, ptxas, no spills ----------------------------------------------------- */

/* Runs ptxas on ptx for arch; returns its -v output, or NULL with the reason in *why. */
static char *run_ptxas(const char *ptx, const char *arch, char **why)
{
    char dir[] = "/tmp/tdsl-ptxas-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char in[64], log[64], archopt[32];
    snprintf(in, sizeof in, "%s/k.ptx", dir);
    snprintf(log, sizeof log, "%s/log", dir);
    snprintf(archopt, sizeof archopt, "-arch=%s", arch);
    FILE *f = fopen(in, "w");
    cr_assert_not_null(f);
    fputs(ptx, f);
    fclose(f);
    char *argv[] = {TDSL_PTXAS, archopt, "-v", in, "-o", "/dev/null", NULL};
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    pid_t pid;
    int rc = posix_spawn(&pid, TDSL_PTXAS, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    cr_assert_eq(rc, 0, "cannot run %s", TDSL_PTXAS);
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    size_t len;
    const char *err;
    char *out = read_file_all(log, &len, &err);
    cr_assert_not_null(out);
    unlink(in);
    unlink(log);
    rmdir(dir);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        *why = out;
        return NULL;
    }
    return out;
}

/* The kernels of a ptxas -v log that spill, one "name: N bytes spill stores" per line. */
static void spills_of(const char *log, StrBuf *out)
{
    const char *kernel = "?";
    size_t klen = 1;
    for (const char *p = log; *p;) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        const char *q = strstr(p, "Compiling entry function '");
        if (q && q < p + len) {
            kernel = q + 26;
            klen = strcspn(kernel, "'");
        }
        const char *s = strstr(p, "bytes spill stores");
        if (s && s < p + len) {
            const char *n = s;
            while (n > p && n[-1] == ' ') n--;
            while (n > p && n[-1] >= '0' && n[-1] <= '9') n--;
            if (atoi(n) > 0) sb_printf(out, "%.*s: %.*s\n", (int)klen, kernel, (int)(len - (size_t)(n - p)), n);
        }
        p += len + (nl != NULL);
    }
}

static void check_program(const char *path, int *files, int *launches, StrBuf *spills)
{
    Compiled c;
    if (!compile_path(&c, path)) {  /* golden files that are diagnostics do not compile */
        release(&c);
        return;
    }
    StrBuf src = {0}, again = {0}, err = {0};
    CudaLaunchPlan *plan = NULL, *plan2 = NULL;
    cr_assert(cuda_generate(c.lm, NULL, &src, &plan, &err), "%s: %s", path, sb_cstr(&err));
    cr_assert(cuda_generate(c.lm, NULL, &again, &plan2, &err));
    cr_assert_str_eq(sb_cstr(&src), sb_cstr(&again), "%s: the generated source is not deterministic", path);
    for (int k = 0; k < plan->nkernels; k++)
        for (int s = 0; s < plan->kernels[k].nsteps; s++) *launches += plan->kernels[k].steps[s].kind == CUDA_STEP_LAUNCH;
    static const char *const archs[2] = {"sm_80", "sm_90"};
    for (int a = 0; a < 2; a++) {
        StrBuf ptx = {0};
        CudaOptions o = {archs[a]};
        cr_assert(cuda_compile_ptx(sb_cstr(&src), &o, &ptx, &err), "%s (%s): %s", path, archs[a], sb_cstr(&err));
        char target[32];
        snprintf(target, sizeof target, ".target %s", archs[a]);
        cr_assert(strstr(sb_cstr(&ptx), target), "%s: PTX for %s", path, archs[a]);
        /* sm_80 PTX assembles for sm_80 and sm_90; sm_90 PTX for sm_90 */
        for (int b = a; b < 2; b++) {
            char *why = NULL;
            char *log = run_ptxas(sb_cstr(&ptx), archs[b], &why);
            cr_assert_not_null(log, "%s: ptxas -arch=%s on the %s PTX failed:\n%s", path, archs[b], archs[a], why);
            StrBuf here = {0};
            spills_of(log, &here);
            if (here.len) sb_printf(spills, "%s (%s PTX, ptxas %s):\n%s", path, archs[a], archs[b], sb_cstr(&here));
            sb_free(&here);
            free(log);
        }
        sb_free(&ptx);
    }
    (*files)++;
    cuda_plan_free(plan);
    cuda_plan_free(plan2);
    sb_free(&src);
    sb_free(&again);
    sb_free(&err);
    release(&c);
}

static void check_dir(const char *dir, int *files, int *launches, StrBuf *spills)
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
        check_program(path, files, launches, spills);
        free(names[i]);
    }
}

Test(cuda, every_program_nvrtc_ptxas_no_spills, .timeout = 1800)
{
    if (!cuda_have_nvrtc()) cr_skip_test("tcc was configured without NVRTC: no PTX to check");
    if (!*TDSL_PTXAS || access(TDSL_PTXAS, X_OK) != 0) cr_skip_test("no ptxas found at configure time");
    int files = 0, launches = 0;
    StrBuf spills = {0};
    check_dir(TDSL_SOURCE_DIR "/stdlib", &files, &launches, &spills);
    check_dir(TDSL_SOURCE_DIR "/tests/golden", &files, &launches, &spills);
    check_dir(TDSL_SOURCE_DIR "/tests/numeric/progs", &files, &launches, &spills);
    cr_log_info("compiled and assembled %d kernel launches of %d files for sm_80 and sm_90", launches, files);
    cr_assert_geq(files, 30);
    cr_assert_geq(launches, 100);
    cr_assert_eq(spills.len, 0, "register spills (PERFORMANCE.md: none in a default-schedule kernel):\n%s",
                 sb_cstr(&spills));
    sb_free(&spills);
}

/* ---- the ahead-of-time library without a driver ------------------------------------------------- */

static const char aot_src[] =
    "kernel scale(x: f32[N, M], s: f32) -> y: f32[N, M] {\n    y[i, j] = x[i, j] * s\n}\n"
    "kernel pack(x: i8[N]) -> q: i4[N] {\n    q[i] = i4(x[i])\n}\n";

static bool driver_present(void)
{
    void *dl = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
    if (dl) dlclose(dl);
    return dl != NULL;
}

/* Builds aot_src into dir/k.so; the library path in so. */
static void build_aot(char *dir, char *so, size_t cap)
{
    if (!cuda_have_nvrtc()) cr_skip_test("tcc was configured without NVRTC: no CUDA library can be built");
    Compiled c;
    compile_text(&c, aot_src);
    cr_assert_not_null(mkdtemp(dir));
    snprintf(so, cap, "%s/k_cuda.so", dir);
    StrBuf err = {0};
    cr_assert(cuda_build_shared(c.lm, NULL, so, &err), "cuda_build_shared: %s", sb_cstr(&err));
    sb_free(&err);
    release(&c);
}

static DLTensor cuda_tensor(void *data, int ndim, int64_t *shape, uint8_t code, uint8_t bits, int device_id)
{
    DLTensor t = {0};
    t.data = data;
    t.device = (DLDevice){kDLCUDA, device_id};
    t.ndim = ndim;
    t.dtype = (DLDataType){code, bits, 1};
    t.shape = shape;
    return t;
}

Test(cuda, aot_library_without_driver)
{
    char dir[] = "/tmp/tdsl-cuda-aot-XXXXXX", so[128];
    build_aot(dir, so, sizeof so);
    void *lib = dlopen(so, RTLD_NOW | RTLD_LOCAL);
    cr_assert_not_null(lib, "the CUDA library loads without a driver: %s", dlerror());
    cr_assert_str_eq(*(const char *const *)dlsym(lib, "tdsl_target"), "cuda");
    typedef int (*ScaleFn)(const DLTensor *, const DLTensor *, DLTensor *);
    ScaleFn scale = (ScaleFn)(uintptr_t)dlsym(lib, "scale");
    cr_assert_not_null(scale);
    const char *(*last_error)(void) = (const char *(*)(void))(uintptr_t)dlsym(lib, "tdsl_last_error");
    cr_assert_not_null(last_error);

    /* device pointers are never touched before the driver is: fake ones will do */
    int64_t shape[2] = {3, 5};
    DLTensor x = cuda_tensor((void *)(uintptr_t)0x10000, 2, shape, kDLFloat, 32, 0);
    DLTensor s = cuda_tensor((void *)(uintptr_t)0x20000, 0, NULL, kDLFloat, 32, 0);
    DLTensor y = cuda_tensor((void *)(uintptr_t)0x30000, 2, shape, kDLFloat, 32, 0);
    if (!driver_present()) {
        for (int i = 0; i < 2; i++) {  /* every call says so, not only the first */
            cr_assert_eq(scale(&x, &s, &y), TDSL_ERR_RUNTIME);
            cr_assert(strstr(last_error(), "scale: no CUDA driver found (libcuda.so.1): "), "%s", last_error());
        }
    }
    /* the checks run first: CPU tensors, mixed devices, bad shapes */
    DLTensor cpu = x;
    cpu.device = (DLDevice){kDLCPU, 0};
    cr_assert_eq(scale(&cpu, &s, &y), TDSL_ERR_ARG);
    cr_assert(strstr(last_error(), "scale: x is on device cpu:0 but the kernel runs on a CUDA device (kDLCUDA)"), "%s",
              last_error());
    DLTensor other = y;
    other.device.device_id = 1;
    cr_assert_eq(scale(&x, &s, &other), TDSL_ERR_ARG);
    cr_assert(strstr(last_error(), "y is on cuda:1 but x is on cuda:0"), "%s", last_error());
    int64_t bad[2] = {3, 4};
    DLTensor wrong = y;
    wrong.shape = bad;
    cr_assert_eq(scale(&x, &s, &wrong), TDSL_ERR_ARG);
    cr_assert(strstr(last_error(), "scale: y has M = 4 but x has M = 5"), "%s", last_error());
    dlclose(lib);
    unlink(so);
    rmdir(dir);
}

Test(cuda, aot_tdsl_load_without_driver)
{
    char dir[] = "/tmp/tdsl-cuda-aot-XXXXXX", so[128];
    build_aot(dir, so, sizeof so);
    tdsl_module *m = NULL;
    cr_assert_eq(tdsl_load(so, &m), TDSL_OK, "%s", tdsl_last_error());
    tdsl_kernel *k = tdsl_kernel_get(m, "pack");
    cr_assert_not_null(k, "%s", tdsl_last_error());
    cr_assert_str_eq(tdsl_kernel_signature(k), "pack(x: i8[N]) -> (q: i4[N])");
    int64_t shape[1] = {7};
    DLTensor x = cuda_tensor((void *)(uintptr_t)0x10000, 1, shape, kDLInt, 8, 0);
    DLTensor q = cuda_tensor((void *)(uintptr_t)0x20000, 1, shape, kDLInt, 4, 0);
    DLTensor *args[2] = {&x, &q};
    if (!driver_present()) {
        cr_assert_eq(tdsl_kernel_call(k, args, 2), TDSL_ERR_RUNTIME);
        cr_assert(strstr(tdsl_last_error(), "pack: no CUDA driver found (libcuda.so.1): "), "%s", tdsl_last_error());
    }
    tdsl_module_free(m);
    unlink(so);
    rmdir(dir);
}

/* ---- tdsl_compile with the CUDA target ---------------------------------------------------------- */

/* stdlib-like kernels: a two-pass softmax (a launch per definition, temporaries), a packed
 * output (a zero-fill step) and a scan (one block) */
static const char jit_src[] =
    "kernel softmax(x: f32[R, N]) -> y: f32[R, N] {\n"
    "    m[r] = max[n](x[r, n])\n"
    "    e[r, n] = exp(x[r, n] - m[r])\n"
    "    s[r] = sum[n](e[r, n])\n"
    "    y[r, n] = e[r, n] / s[r]\n"
    "}\n"
    "kernel pack(x: i8[N]) -> q: i4[N] {\n    q[i] = i4(x[i])\n}\n"
    "kernel cumsum(x: f32[T, D]) -> y: f32[T, D] {\n"
    "    scan t < T with h: f32[D] = 0 {\n        h[d] = h[d] + x[t, d]\n        y[t, d] = h[d]\n    }\n"
    "}\n";

static tdsl_module *jit_compile(const char *arch)
{
    if (!cuda_have_nvrtc()) cr_skip_test("tcc was configured without NVRTC: no CUDA JIT");
    tdsl_options o = {.opt_level = -1, .target = TDSL_TARGET_CUDA, .arch = arch};
    tdsl_module *m = NULL;
    cr_assert_eq(tdsl_compile(jit_src, "jit.tdsl", &o, &m), TDSL_OK, "%s", tdsl_last_error());
    cr_assert_not_null(m);
    return m;
}

Test(cuda, jit_compile_and_describe)
{
    static const char *const archs[] = {NULL, "sm_80", "sm_90"};
    for (int a = 0; a < 3; a++) {
        tdsl_module *m = jit_compile(archs[a]);
        tdsl_kernel *k = tdsl_kernel_get(m, "softmax");
        cr_assert_not_null(k, "%s", tdsl_last_error());
        cr_assert_str_eq(tdsl_kernel_signature(k), "softmax(x: f32[R, N]) -> (y: f32[R, N])");
        cr_assert_eq(tdsl_kernel_num_inputs(k), 1);
        cr_assert_eq(tdsl_kernel_num_outputs(k), 1);
        k = tdsl_kernel_get(m, "pack");
        cr_assert_not_null(k, "%s", tdsl_last_error());
        cr_assert_str_eq(tdsl_kernel_signature(k), "pack(x: i8[N]) -> (q: i4[N])");
        cr_assert_not_null(tdsl_kernel_get(m, "cumsum"), "%s", tdsl_last_error());
        cr_assert_null(tdsl_kernel_get(m, "softmx"));
        cr_assert(strstr(tdsl_last_error(), "no kernel named 'softmx' (the module has: softmax, pack, cumsum)"), "%s",
                  tdsl_last_error());
        tdsl_module_free(m);
    }
}

Test(cuda, jit_call_checks_cuda_arguments)
{
    tdsl_module *m = jit_compile(NULL);
    tdsl_kernel *k = tdsl_kernel_get(m, "softmax");
    int64_t shape[2] = {4, 6};
    /* fake device pointers: the checks never touch memory */
    DLTensor x = cuda_tensor((void *)(uintptr_t)0x10000, 2, shape, kDLFloat, 32, 0);
    DLTensor y = cuda_tensor((void *)(uintptr_t)0x20000, 2, shape, kDLFloat, 32, 0);
    DLTensor cpu = x;
    cpu.device = (DLDevice){kDLCPU, 0};
    DLTensor *args[2] = {&cpu, &y};
    cr_assert_eq(tdsl_kernel_call(k, args, 2), TDSL_ERR_ARG);
    cr_assert(strstr(tdsl_last_error(), "softmax: x is on device cpu:0 but the kernel runs on a CUDA device (kDLCUDA)"),
              "%s", tdsl_last_error());
    DLTensor other = y;
    other.device.device_id = 1;
    args[0] = &x;
    args[1] = &other;
    cr_assert_eq(tdsl_kernel_call(k, args, 2), TDSL_ERR_ARG);
    cr_assert(strstr(tdsl_last_error(), "softmax: y is on cuda:1 but x is on cuda:0; every tensor must be on one device"),
              "%s", tdsl_last_error());
    int64_t bad[2] = {4, 5};
    DLTensor wrong = y;
    wrong.shape = bad;
    args[1] = &wrong;
    cr_assert_eq(tdsl_kernel_call(k, args, 2), TDSL_ERR_ARG);
    cr_assert(strstr(tdsl_last_error(), "softmax: y has N = 5 but x has N = 6"), "%s", tdsl_last_error());
    args[1] = &y;
    cr_assert_eq(tdsl_kernel_call(k, args, 1), TDSL_ERR_ARG);
    cr_assert(strstr(tdsl_last_error(), "softmax: expected 2 arguments (1 input, then 1 output) but got 1"), "%s",
              tdsl_last_error());
    /* a device number the runtime cannot hold is refused before the driver is looked for */
    DLTensor far_x = x, far_y = y;
    far_x.device.device_id = far_y.device.device_id = 99;
    args[0] = &far_x;
    args[1] = &far_y;
    cr_assert_eq(tdsl_kernel_call(k, args, 2), TDSL_ERR_ARG);
    cr_assert(strstr(tdsl_last_error(), "softmax: CUDA device 99 is out of range (0..63)"), "%s", tdsl_last_error());
    tdsl_module_free(m);
}

Test(cuda, jit_call_without_driver)
{
    if (driver_present()) cr_skip_test("a CUDA driver is installed: calls would run");
    tdsl_module *m = jit_compile(NULL);
    /* fake device pointers: nothing may dereference them before the driver is loaded */
    int64_t shape[2] = {4, 6};
    DLTensor x = cuda_tensor((void *)(uintptr_t)0x10000, 2, shape, kDLFloat, 32, 0);
    DLTensor y = cuda_tensor((void *)(uintptr_t)0x20000, 2, shape, kDLFloat, 32, 0);
    DLTensor *args[2] = {&x, &y};
    tdsl_kernel *k = tdsl_kernel_get(m, "softmax");
    for (int i = 0; i < 2; i++) {  /* every call says so, not only the first */
        cr_assert_eq(tdsl_kernel_call(k, args, 2), TDSL_ERR_RUNTIME);
        cr_assert(strstr(tdsl_last_error(), "softmax: no CUDA driver found (libcuda.so.1): "), "%s", tdsl_last_error());
        cr_assert(strstr(tdsl_last_error(), "CUDA kernels need an NVIDIA GPU and its driver"), "%s", tdsl_last_error());
    }
    /* host memory labelled kDLCUDA: untouched (the packed output's zero-fill would clear it) */
    int64_t n[1] = {9};
    int8_t in[9] = {1, -2, 3, -4, 5, -6, 7, -8, 0};
    uint8_t out[5];
    memset(out, 0xA5, sizeof out);
    DLTensor px = cuda_tensor(in, 1, n, kDLInt, 8, 0), pq = cuda_tensor(out, 1, n, kDLInt, 4, 0);
    DLTensor *pargs[2] = {&px, &pq};
    k = tdsl_kernel_get(m, "pack");
    cr_assert_eq(tdsl_kernel_call(k, pargs, 2), TDSL_ERR_RUNTIME);
    cr_assert(strstr(tdsl_last_error(), "pack: no CUDA driver found (libcuda.so.1): "), "%s", tdsl_last_error());
    for (int i = 0; i < 5; i++) cr_assert_eq(out[i], 0xA5, "byte %d of the output was written", i);
    k = tdsl_kernel_get(m, "cumsum");
    int64_t td[2] = {3, 2};
    DLTensor sx = cuda_tensor((void *)(uintptr_t)0x30000, 2, td, kDLFloat, 32, 0);
    DLTensor sy = cuda_tensor((void *)(uintptr_t)0x40000, 2, td, kDLFloat, 32, 0);
    DLTensor *sargs[2] = {&sx, &sy};
    cr_assert_eq(tdsl_kernel_call(k, sargs, 2), TDSL_ERR_RUNTIME);
    cr_assert(strstr(tdsl_last_error(), "cumsum: no CUDA driver found (libcuda.so.1): "), "%s", tdsl_last_error());
    tdsl_module_free(m);
}

Test(cuda, jit_option_errors)
{
    tdsl_module *m = (tdsl_module *)(uintptr_t)1;
    tdsl_options o = {.target = TDSL_TARGET_CUDA, .arch = "sm_75"};
    cr_assert_eq(tdsl_compile(jit_src, "jit.tdsl", &o, &m), TDSL_ERR_ARG);
    cr_assert_null(m);
    cr_assert(strstr(tdsl_last_error(), "tdsl_compile: unknown CUDA architecture 'sm_75'; available: sm_80"), "%s",
              tdsl_last_error());
    o = (tdsl_options){.target = TDSL_TARGET_CPU, .arch = "sm_90"};
    cr_assert_eq(tdsl_compile(jit_src, "jit.tdsl", &o, &m), TDSL_ERR_ARG);
    cr_assert(strstr(tdsl_last_error(), "tdsl_compile: arch 'sm_90' is only for target TDSL_TARGET_CUDA"), "%s",
              tdsl_last_error());
    o = (tdsl_options){.target = 2};
    cr_assert_eq(tdsl_compile(jit_src, "jit.tdsl", &o, &m), TDSL_ERR_ARG);
    cr_assert(strstr(tdsl_last_error(), "tdsl_compile: target 2 is not TDSL_TARGET_CPU (0) or TDSL_TARGET_CUDA (1)"),
              "%s", tdsl_last_error());
    cr_assert_null(m);
}

Test(cuda, jit_compile_error_gives_diagnostics)
{
    tdsl_options o = {.target = TDSL_TARGET_CUDA};
    tdsl_module *m = NULL;
    const char *bad = "kernel f(x: f32[N]) -> y: f32[N] {\n    y[i] = x[i] + z[i]\n}\n";
    cr_assert_eq(tdsl_compile(bad, "bad.tdsl", &o, &m), TDSL_ERR_COMPILE);
    cr_assert_null(m);
    cr_assert(strstr(tdsl_last_error(), "bad.tdsl:2:"), "%s", tdsl_last_error());
    cr_assert(strstr(tdsl_last_error(), "error: "), "%s", tdsl_last_error());
    cr_assert(strstr(tdsl_last_error(), "'z'"), "%s", tdsl_last_error());
}

/* ---- the JIT and AOT launchers through a recording stand-in driver (fake_cuda.c) ------------------ */

#ifdef TDSL_FAKE_CUDA
typedef struct FakeCall {
    const char *kernel;
    int64_t     shape[2];
    int         rank;
    uint8_t     code[2], bits[2];   /* input, output */
} FakeCall;

/* Calls kernel fc->kernel of m on fake device pointers; the driver's log of the call. */
static void fake_call(tdsl_module *m, const FakeCall *fc, void (*reset)(void), const char *(*log)(void), StrBuf *out)
{
    tdsl_kernel *k = tdsl_kernel_get(m, fc->kernel);
    cr_assert_not_null(k, "%s", tdsl_last_error());
    int64_t shape[2] = {fc->shape[0], fc->shape[1]};
    DLTensor x = cuda_tensor((void *)(uintptr_t)0x10000, fc->rank, shape, fc->code[0], fc->bits[0], 0);
    DLTensor y = cuda_tensor((void *)(uintptr_t)0x900000, fc->rank, shape, fc->code[1], fc->bits[1], 0);
    DLTensor *args[2] = {&x, &y};
    reset();
    cr_assert_eq(tdsl_kernel_call(k, args, 2), TDSL_OK, "%s", tdsl_last_error());
    sb_clear(out);
    sb_puts(out, log());
}

Test(cuda, jit_and_aot_launchers_agree_on_a_fake_driver)
{
    if (!cuda_have_nvrtc()) cr_skip_test("tcc was configured without NVRTC: no CUDA code to launch");
    char dir[] = "/tmp/tdsl-cuda-fake-XXXXXX", so[128];
    cr_assert_not_null(mkdtemp(dir));
    snprintf(so, sizeof so, "%s/k_cuda.so", dir);
    Compiled c;
    compile_text(&c, jit_src);
    StrBuf err = {0};
    cr_assert(cuda_build_shared(c.lm, NULL, so, &err), "cuda_build_shared: %s", sb_cstr(&err));
    release(&c);
    tdsl_module *aot = NULL, *jit = jit_compile(NULL);
    cr_assert_eq(tdsl_load(so, &aot), TDSL_OK, "%s", tdsl_last_error());

    /* loaded after NVRTC has run (NVRTC looks for a driver of its own and would find this
     * one); the launchers' dlopen("libcuda.so.1") then finds it by its soname */
    void *fake = dlopen(TDSL_FAKE_CUDA, RTLD_NOW | RTLD_GLOBAL);
    cr_assert_not_null(fake, "%s", dlerror());
    void *found = dlopen("libcuda.so.1", RTLD_NOW | RTLD_NOLOAD);
    if (found != fake) cr_skip_test("another libcuda.so.1 was loaded first");
    dlclose(found);
    void (*reset)(void) = (void (*)(void))(uintptr_t)dlsym(fake, "fake_cuda_reset");
    const char *(*log)(void) = (const char *(*)(void))(uintptr_t)dlsym(fake, "fake_cuda_log");
    cr_assert(reset && log);

    /* two launches and a temporary; a zero-fill; one block with barriers */
    static const FakeCall calls[] = {
        {"softmax", {5, 300}, 2, {kDLFloat, kDLFloat}, {32, 32}},
        {"pack", {9, 0}, 1, {kDLInt, kDLInt}, {8, 4}},
        {"cumsum", {3, 700}, 2, {kDLFloat, kDLFloat}, {32, 32}},
    };
    StrBuf a = {0}, j = {0};
    for (int round = 0; round < 2; round++) {  /* the first call loads the driver and the PTX */
        for (int i = 0; i < 3; i++) {
            fake_call(aot, &calls[i], reset, log, &a);
            fake_call(jit, &calls[i], reset, log, &j);
            cr_assert_str_eq(sb_cstr(&j), sb_cstr(&a), "%s: the JIT launcher's driver calls:\n%s\nthe AOT launcher's:\n%s",
                             calls[i].kernel, sb_cstr(&j), sb_cstr(&a));
            cr_assert(strstr(sb_cstr(&j), "launch tdsl_"), "%s", sb_cstr(&j));
            cr_assert_eq(strstr(sb_cstr(&j), "cuInit") != NULL, round == 0 && i == 0, "%s", sb_cstr(&j));
        }
    }
    /* softmax: its max and sum in temporaries of R floats, rows of 300 on full blocks */
    fake_call(jit, &calls[0], reset, log, &j);
    cr_assert(strstr(sb_cstr(&j), "alloc 512 -> dev+0\n"), "%s", sb_cstr(&j));
    cr_assert(strstr(sb_cstr(&j), "grid 5,1,1 block 256,1,1"), "%s", sb_cstr(&j));
    cr_assert(strstr(sb_cstr(&j), " 0x10000"), "%s", sb_cstr(&j));
    cr_assert(strstr(sb_cstr(&j), " 0x900000"), "%s", sb_cstr(&j));
    /* pack: its output zeroed (5 bytes) before the launch */
    fake_call(jit, &calls[1], reset, log, &j);
    cr_assert(strstr(sb_cstr(&j), "memset 0x900000 0 5\nlaunch tdsl_pack_0"), "%s", sb_cstr(&j));

    reset();
    tdsl_module_free(jit);  /* unlike the AOT library's, the JIT module's CUDA state goes with it */
    cr_assert(strstr(log(), "push 0xc0\nunload 0xd0\npop\nrelease 0\n"), "%s", log());
    tdsl_module_free(aot);
    sb_free(&a);
    sb_free(&j);
    sb_free(&err);
    unlink(so);
    rmdir(dir);
}
#endif
