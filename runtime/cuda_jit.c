/* cuda_jit.c: JIT-compiled CUDA modules, tdsl_compile with TDSL_TARGET_CUDA (runtime/jit.c)
 * and `tcc run --engine cuda`.
 *
 * Takes loop IR scheduled by pass_gpu_map; gives an RtCudaJit holding the launch plan, the
 * PTX (cuda_generate, then NVRTC in memory: no files, no C compiler) and the driver state
 * of runtime/cuda.c. rt_cuda_jit_launch is the one launcher of every kernel: it does at run
 * time, from the plan, what the launcher an AOT build generates (codegen/cuda/cuda_aot.c,
 * gen_launcher) does from code: every size first (temporaries, zero-fills, launch work),
 * then rt_cuda_begin (driver, device, context, PTX loaded once per device), one allocation
 * for the temporaries, the steps in plan order (rt_cuda_zero, rt_cuda_launch with the
 * cuLaunchKernel argument array of buffers and sizes), rt_cuda_end. Nothing is read or
 * written on the device before the driver is loaded, so without one every call fails with
 * "no CUDA driver found (libcuda.so.1): ..." as an AOT library's does. */
#include <stdlib.h>
#include <string.h>

#include "codegen/cuda/cuda.h"
#include "rt.h"

/* One kernel of the module: rt_cuda_jit_launch's ctx. */
typedef struct JitKernel {
    RtCudaJit            *jit;
    const CudaKernelPlan *plan;
} JitKernel;

struct RtCudaJit {
    CudaLaunchPlan *plan;
    StrBuf          ptx;       /* NUL-terminated; driver.ptx points into it */
    RtCudaModule    driver;
    JitKernel      *kernels;   /* plan->nkernels */
};

RtCudaJit *rt_cuda_jit_new(const LoopModule *lm, const CudaOptions *o, StrBuf *err)
{
    RtCudaJit *j = calloc(1, sizeof *j);
    if (!j) {
        sb_puts(err, "out of memory\n");
        return NULL;
    }
    StrBuf source = {0};
    bool ok = cuda_generate(lm, o, &source, &j->plan, err) && cuda_compile_ptx(sb_cstr(&source), o, &j->ptx, err);
    sb_free(&source);
    if (ok && !(j->kernels = calloc((size_t)j->plan->nkernels + 1, sizeof *j->kernels))) {
        sb_puts(err, "out of memory\n");
        ok = false;
    }
    if (!ok) {
        cuda_plan_free(j->plan);
        sb_free(&j->ptx);
        free(j);
        return NULL;
    }
    for (int i = 0; i < j->plan->nkernels; i++) j->kernels[i] = (JitKernel){j, &j->plan->kernels[i]};
    j->driver.ptx = sb_cstr(&j->ptx);
    pthread_mutex_init(&j->driver.lock, NULL);
    return j;
}

void rt_cuda_jit_free(RtCudaJit *j)
{
    if (!j) return;
    rt_cuda_module_release(&j->driver);
    free(j->kernels);
    cuda_plan_free(j->plan);
    sb_free(&j->ptx);
    free(j);
}

void *rt_cuda_jit_kernel(RtCudaJit *j, const char *name)
{
    for (int i = 0; i < j->plan->nkernels; i++)
        if (strcmp(j->plan->kernels[i].kernel->name, name) == 0) return &j->kernels[i];
    return NULL;
}

RtCudaModule *rt_cuda_jit_driver(RtCudaJit *j) { return &j->driver; }

/* Buffer b of a call: an input, an output or a temporary (cuda.h's numbering). */
static const Tensor *buffer_tensor(const CudaKernelPlan *kp, int b)
{
    const Kernel *k = kp->kernel;
    return b < k->nins ? k->ins[b] : b < k->nins + k->nouts ? k->outs[b - k->nins] : kp->temps[b - k->nins - k->nouts];
}

/* What each step needs, computed before the driver is touched. */
typedef struct StepSizes {
    size_t  bytes;         /* CUDA_STEP_ZERO: of the buffer */
    int64_t block_work;    /* CUDA_STEP_LAUNCH: rt_cuda_launch's */
    int64_t thread_work;
} StepSizes;

/* cuLaunchKernel's convention: args[i] points to the value of parameter i. */
typedef union ArgValue {
    void   *ptr;
    int64_t size;
} ArgValue;

int32_t rt_cuda_jit_launch(void *ctx, void *const *buffers, const int64_t *sizes, int32_t device)
{
    const JitKernel *jk = ctx;
    const CudaKernelPlan *kp = jk->plan;
    const Kernel *k = kp->kernel;
    int nio = k->nins + k->nouts, nall = nio + kp->ntemps, maxargs = 0;
    for (int s = 0; s < kp->nsteps; s++)
        if (kp->steps[s].kind == CUDA_STEP_LAUNCH && kp->steps[s].launch.nargs > maxargs)
            maxargs = kp->steps[s].launch.nargs;
    void **all = calloc((size_t)nall + 1, sizeof *all);
    size_t *temp_bytes = calloc((size_t)kp->ntemps + 1, sizeof *temp_bytes);
    StepSizes *steps = calloc((size_t)kp->nsteps + 1, sizeof *steps);
    void **args = calloc((size_t)maxargs + 1, sizeof *args);
    ArgValue *vals = calloc((size_t)maxargs + 1, sizeof *vals);
    int rc = TDSL_OK;
    if (!all || !temp_bytes || !steps || !args || !vals) rc = rt_fail(TDSL_ERR_RUNTIME, "%s: out of memory", k->name);
    for (int i = 0; i < kp->ntemps && rc == TDSL_OK; i++)
        if (!cuda_temp_bytes(k, kp->temps[i], sizes, &temp_bytes[i]))
            rc = rt_fail(TDSL_ERR_RUNTIME, "%s: %s is too large", k->name, kp->temps[i]->name);
    for (int s = 0; s < kp->nsteps && rc == TDSL_OK; s++) {
        const CudaStep *st = &kp->steps[s];
        switch (st->kind) {
        case CUDA_STEP_ZERO:
            if (!cuda_temp_bytes(k, buffer_tensor(kp, st->buffer), sizes, &steps[s].bytes))
                rc = rt_fail(TDSL_ERR_RUNTIME, "%s: %s is too large", k->name, buffer_tensor(kp, st->buffer)->name);
            break;
        case CUDA_STEP_LAUNCH:
            if (!cuda_launch_work(&st->launch, k, sizes, &steps[s].block_work, &steps[s].thread_work))
                rc = rt_fail(TDSL_ERR_RUNTIME, "%s: the launch dimensions of %s overflow", k->name, st->launch.name);
            break;
        }
    }
    RtCudaCall call;
    bool begun = false;
    if (rc == TDSL_OK) {
        rc = rt_cuda_begin(&call, &jk->jit->driver, device, k->name);
        begun = rc == TDSL_OK;
    }
    if (rc == TDSL_OK) {
        memcpy(all, buffers, sizeof *all * (size_t)nio);
        rc = rt_cuda_alloc(&call, temp_bytes, kp->ntemps, all + nio);
    }
    for (int s = 0; s < kp->nsteps && rc == TDSL_OK; s++) {
        const CudaStep *st = &kp->steps[s];
        switch (st->kind) {
        case CUDA_STEP_ZERO: rc = rt_cuda_zero(&call, all[st->buffer], steps[s].bytes); break;
        case CUDA_STEP_LAUNCH: {
            const CudaLaunch *l = &st->launch;
            for (int a = 0; a < l->nargs; a++) {
                switch (l->args[a].kind) {
                case CUDA_ARG_BUFFER: vals[a].ptr = all[l->args[a].index]; args[a] = &vals[a].ptr; break;
                case CUDA_ARG_SIZE: vals[a].size = sizes[l->args[a].index]; args[a] = &vals[a].size; break;
                }
            }
            rc = rt_cuda_launch(&call, l->name, steps[s].block_work, steps[s].thread_work, l->one_row, args);
            break;
        }
        }
    }
    if (begun) rc = rt_cuda_end(&call, rc);
    free(all);
    free(temp_bytes);
    free(steps);
    free(args);
    free(vals);
    return rc;
}
