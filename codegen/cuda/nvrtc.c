/* nvrtc: generated CUDA source to PTX with NVRTC, the CUDA toolkit's runtime compiler.
 *
 * libnvrtc is opened with dlopen when a compilation is asked for, not linked: tcc starts
 * (and everything but --target=cuda works) on a machine without the toolkit. The library is
 * looked up as $TDSL_NVRTC, then the path CMake found at configure time (TDSL_NVRTC_LIB),
 * then "libnvrtc.so" in the loader's path; it stays loaded once opened (RTLD_NODELETE), and
 * each compilation is its own nvrtcProgram, so several threads may compile at once. When
 * CMake found no NVRTC (TDSL_HAVE_NVRTC undefined) cuda_compile_ptx says so.
 *
 * Options: --gpu-architecture=compute_NN for --arch=sm_NN (PTX for sm_80 also runs on
 * sm_90: the driver JIT-compiles it; PTX for sm_90 does not assemble for sm_80), and
 * --fmad=false, so that a * b + c rounds twice as the interpreter does. A failed compile is
 * an internal error of this back end; the message carries NVRTC's log. */
#include "internal.h"

#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

#ifdef TDSL_HAVE_NVRTC

#ifndef TDSL_NVRTC_LIB
#define TDSL_NVRTC_LIB "libnvrtc.so"
#endif

/* The API, as nvrtc.h declares it. */
typedef int NvrtcResult;  /* 0: NVRTC_SUCCESS */
typedef struct _nvrtcProgram *NvrtcProgram;
typedef NvrtcResult (*CreateFn)(NvrtcProgram *, const char *, const char *, int, const char *const *,
                                const char *const *);
typedef NvrtcResult (*DestroyFn)(NvrtcProgram *);
typedef NvrtcResult (*CompileFn)(NvrtcProgram, int, const char *const *);
typedef NvrtcResult (*SizeFn)(NvrtcProgram, size_t *);
typedef NvrtcResult (*TextFn)(NvrtcProgram, char *);
typedef const char *(*ErrorStringFn)(NvrtcResult);

typedef struct Nvrtc {
    void         *dl;
    CreateFn      create;
    DestroyFn     destroy;
    CompileFn     compile;
    SizeFn        log_size, ptx_size;
    TextFn        log, ptx;
    ErrorStringFn error_string;
} Nvrtc;

static bool open_nvrtc(Nvrtc *n, StrBuf *err)
{
    const char *env = getenv("TDSL_NVRTC");
    const char *tries[3] = {env && *env ? env : NULL, TDSL_NVRTC_LIB, "libnvrtc.so"};
    const char *why = NULL;
    for (int i = 0; i < 3 && !n->dl; i++) {
        if (!tries[i]) continue;
        n->dl = dlopen(tries[i], RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
        if (!n->dl && !why) why = dlerror();
    }
    if (!n->dl) {
        sb_printf(err, "cannot load NVRTC (%s): %s; set $TDSL_NVRTC to libnvrtc.so of a CUDA toolkit\n",
                  TDSL_NVRTC_LIB, why ? why : "not found");
        return false;
    }
    static const char *const names[] = {"nvrtcCreateProgram", "nvrtcDestroyProgram", "nvrtcCompileProgram",
                                        "nvrtcGetProgramLogSize", "nvrtcGetPTXSize", "nvrtcGetProgramLog",
                                        "nvrtcGetPTX", "nvrtcGetErrorString"};
    void *fn[8];
    for (int i = 0; i < 8; i++) {
        fn[i] = dlsym(n->dl, names[i]);
        if (!fn[i]) {
            sb_printf(err, "NVRTC (%s) lacks %s\n", TDSL_NVRTC_LIB, names[i]);
            dlclose(n->dl);
            return false;
        }
    }
    n->create = (CreateFn)fn[0];
    n->destroy = (DestroyFn)fn[1];
    n->compile = (CompileFn)fn[2];
    n->log_size = (SizeFn)fn[3];
    n->ptx_size = (SizeFn)fn[4];
    n->log = (TextFn)fn[5];
    n->ptx = (TextFn)fn[6];
    n->error_string = (ErrorStringFn)fn[7];
    return true;
}

bool cuda_have_nvrtc(void) { return true; }

bool cuda_compile_ptx(const char *source, const CudaOptions *o, StrBuf *ptx, StrBuf *err)
{
    const char *arch = o && o->arch ? o->arch : "sm_80";
    if (strncmp(arch, "sm_", 3) != 0 || strlen(arch) > 16) {
        sb_printf(err, "unknown CUDA architecture '%s' (expected sm_80 or sm_90)\n", arch);
        return false;
    }
    Nvrtc n = {0};
    if (!open_nvrtc(&n, err)) return false;
    char gpu_arch[48];
    snprintf(gpu_arch, sizeof gpu_arch, "--gpu-architecture=compute_%s", arch + 3);
    const char *opts[] = {gpu_arch, "--fmad=false"};
    NvrtcProgram prog = NULL;
    NvrtcResult r = n.create(&prog, source, "tdsl.cu", 0, NULL, NULL);
    if (r != 0) {
        sb_printf(err, "internal error: nvrtcCreateProgram: %s\n", n.error_string(r));
        dlclose(n.dl);
        return false;
    }
    r = n.compile(prog, TD_COUNTOF(opts), opts);
    bool ok = r == 0;
    if (!ok) {
        size_t len = 0;
        char *log = NULL;
        if (n.log_size(prog, &len) == 0 && len > 0 && (log = malloc(len + 1)) && n.log(prog, log) == 0)
            log[len] = '\0';
        sb_printf(err, "internal error: NVRTC failed to compile the generated CUDA source (%s, %s):\n%s",
                  n.error_string(r), gpu_arch + 19, log ? log : "(no log)\n");
        free(log);
    } else {
        size_t len = 0;
        ok = n.ptx_size(prog, &len) == 0 && len > 0;
        char *text = ok ? malloc(len) : NULL;
        ok = text && n.ptx(prog, text) == 0;
        if (ok) sb_puts(ptx, text);  /* len counts the NUL */
        else sb_puts(err, "internal error: NVRTC produced no PTX\n");
        free(text);
    }
    n.destroy(&prog);
    dlclose(n.dl);
    return ok;
}

#else /* no NVRTC at configure time */

bool cuda_have_nvrtc(void) { return false; }

bool cuda_compile_ptx(const char *source, const CudaOptions *o, StrBuf *ptx, StrBuf *err)
{
    (void)source;
    (void)o;
    (void)ptx;
    sb_puts(err, "this tcc was built without the CUDA back end's compiler: NVRTC (nvrtc.h, libnvrtc) was not "
                 "found when it was configured; install the CUDA toolkit (/usr/local/cuda) and reconfigure\n");
    return false;
}

#endif
