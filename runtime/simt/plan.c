/* plan.c: a launch plan of the CUDA back end followed by the SIMT emulator.
 *
 * Takes the scheduled loop IR; gives simt_cuda_run, which does on host memory what the
 * launcher of an AOT CUDA library (codegen/cuda/cuda_aot.c, runtime/cuda.c) does on a GPU:
 * temporaries allocated for the call, the steps in order (zero a buffer, or launch a kernel
 * with the plan's arguments and the launch dimensions of cuda_launch_dims), temporaries
 * freed. Device pointers are host pointers here, but every buffer the kernels see is a copy
 * laid out as cudaMalloc would (256-byte aligned and padded, see device_alloc): inputs are
 * copied in, outputs and temporaries start as 0xff bytes (so an element a kernel forgets to
 * write shows as NaN or -1), and outputs are copied back after the last step. */
#include <stdlib.h>
#include <string.h>

#include "../../codegen/cuda/cuda.h"
#include "simt_cuda.h"

struct SimtCuda {
    StrBuf          source;  /* cuda_generate's */
    CudaLaunchPlan *plan;
    SimtModule     *module;  /* the source, compiled for the host */
};

bool simt_cuda_build(const LoopModule *lm, SimtCuda **out, StrBuf *err)
{
    *out = NULL;
    SimtCuda *c = calloc(1, sizeof *c);
    TD_ASSERT(c);
    if (!cuda_generate(lm, NULL, &c->source, &c->plan, err)) {
        sb_puts(err, "internal error: CUDA code generation failed\n");
        simt_cuda_free(c);
        return false;
    }
    if (!simt_compile(sb_cstr(&c->source), &c->module, err)) {
        sb_puts(err, "internal error: the generated CUDA source does not compile for the emulator\n");
        simt_cuda_free(c);
        return false;
    }
    *out = c;
    return true;
}

const char *simt_cuda_source(const SimtCuda *c) { return sb_cstr((StrBuf *)&c->source); }

void simt_cuda_free(SimtCuda *c)
{
    if (!c) return;
    simt_module_free(c->module);
    cuda_plan_free(c->plan);
    sb_free(&c->source);
    free(c);
}

/* Bytes of buffer b of the call: an input, an output or a temporary. */
static bool buffer_bytes(const CudaKernelPlan *kp, int b, const int64_t *sizes, size_t *bytes)
{
    const Kernel *k = kp->kernel;
    const Tensor *t = b < k->nins               ? k->ins[b]
                    : b < k->nins + k->nouts    ? k->outs[b - k->nins]
                                                : kp->temps[b - k->nins - k->nouts];
    return cuda_temp_bytes(k, t, sizes, bytes);
}

static bool run_launch(const SimtCuda *c, const CudaKernelPlan *kp, const CudaLaunch *l, void **all,
                       const int64_t *sizes, const SimtLaunchOptions *o, StrBuf *err)
{
    const SimtKernel *sk = simt_module_kernel(c->module, l->name);
    if (!sk) {
        sb_printf(err, "internal error: the launch plan names %s, which the generated source lacks\n", l->name);
        return false;
    }
    unsigned grid[3], block[3];
    if (!cuda_launch_dims(l, kp->kernel, sizes, grid, block)) {
        sb_printf(err, "%s: the launch dimensions overflow\n", l->name);
        return false;
    }
    /* cuLaunchKernel's convention: args[i] points to the value of parameter i */
    void **args = calloc((size_t)l->nargs + 1, sizeof *args);
    union { void *p; int64_t i; } *vals = calloc((size_t)l->nargs + 1, sizeof *vals);
    TD_ASSERT(args && vals);
    for (int a = 0; a < l->nargs; a++) {
        switch (l->args[a].kind) {
        case CUDA_ARG_BUFFER:
            vals[a].p = all[l->args[a].index];
            args[a] = &vals[a].p;
            break;
        case CUDA_ARG_SIZE:
            vals[a].i = sizes[l->args[a].index];
            args[a] = &vals[a].i;
            break;
        }
    }
    bool ok = simt_launch(sk, args, (SimtDim3){grid[0], grid[1], grid[2]}, (SimtDim3){block[0], block[1], block[2]},
                          0, o, err);
    free(args);
    free(vals);
    return ok;
}

/* "Device memory" for a buffer of n bytes: like cudaMalloc's, 256-byte aligned and padded
 * to a multiple of 256 bytes (packed stores touch the whole 32-bit word of their byte, which
 * a GPU allocation always holds), filled with 0xff bytes. NULL when out of memory. */
static void *device_alloc(size_t n)
{
    size_t padded = (n / 256 + 1) * 256;
    void *p = NULL;
    if (padded < n || posix_memalign(&p, 256, padded) != 0) return NULL;
    memset(p, 0xff, padded);
    return p;
}

bool simt_cuda_run(const SimtCuda *c, const char *name, void *const *buffers, const int64_t *sizes,
                   const SimtLaunchOptions *o, StrBuf *err)
{
    const CudaKernelPlan *kp = NULL;
    for (int i = 0; i < c->plan->nkernels && !kp; i++)
        if (strcmp(c->plan->kernels[i].kernel->name, name) == 0) kp = &c->plan->kernels[i];
    if (!kp) {
        sb_printf(err, "no kernel %s in the CUDA module\n", name);
        return false;
    }
    const Kernel *k = kp->kernel;
    int nio = k->nins + k->nouts, nall = nio + kp->ntemps;
    void **dev = calloc((size_t)nall + 1, sizeof *dev);
    size_t *bytes = calloc((size_t)nall + 1, sizeof *bytes);
    TD_ASSERT(dev && bytes);
    bool ok = true;
    for (int b = 0; b < nall && ok; b++) {
        if (!buffer_bytes(kp, b, sizes, &bytes[b])) {
            sb_printf(err, "%s: the size of a buffer overflows\n", name);
            ok = false;
        } else if (!(dev[b] = device_alloc(bytes[b]))) {
            sb_printf(err, "%s: out of memory for a buffer of %zu bytes\n", name, bytes[b]);
            ok = false;
        } else if (b < k->nins) {
            memcpy(dev[b], buffers[b], bytes[b]);
        }
    }
    for (int s = 0; s < kp->nsteps && ok; s++) {
        const CudaStep *st = &kp->steps[s];
        switch (st->kind) {
        case CUDA_STEP_ZERO: memset(dev[st->buffer], 0, bytes[st->buffer]); break;
        case CUDA_STEP_LAUNCH: ok = run_launch(c, kp, &st->launch, dev, sizes, o, err); break;
        }
    }
    for (int b = k->nins; b < nio && ok; b++) memcpy(buffers[b], dev[b], bytes[b]);
    for (int b = 0; b < nall; b++) free(dev[b]);
    free(dev);
    free(bytes);
    return ok;
}
