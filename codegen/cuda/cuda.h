/* cuda: the CUDA back end. Loop IR scheduled by pass_gpu_map (passes/gpu_map.c) to CUDA C
 * source and a launch plan; NVRTC compiles the source to PTX; an ahead-of-time build
 * embeds the PTX in a shared library whose launchers call the CUDA driver API (opened with
 * dlopen at the first call, runtime/cuda.c), and a JIT module (runtime/cuda_jit.c) keeps
 * PTX and plan in memory and follows the plan at run time.
 *
 * The generated source is self-contained: a prelude of its own (typedefs, the scalar rules
 * of ir/interp.c as small __device__ functions) and one `extern "C" __global__` function per
 * launch; it includes no header, so NVRTC compiles it as is and runtime/simt (the CPU
 * emulator) compiles it as C++ with its own definitions of the CUDA builtins. docs/cuda.md
 * lists every construct it uses and the launch plan format.
 *
 * One launch per statement of the scheduled loop IR's host level, in order (gpu_map.c):
 * a definition is one launch (blocks over its outer loops, threads over its inner loop), a
 * scan is one single-block launch with __syncthreads between the steps' statements. Every
 * GPU loop is a grid-stride or block-stride loop, so the kernels are correct for any grid
 * and block size; the plan's sizes only decide how much runs in parallel.
 *
 * Semantics: what ir_interp_run computes, with the CPU back end's exceptions (cpu.h): f32
 * transcendentals are CUDA's float functions (expf ...), a few ulps from the interpreter's
 * double-then-round; float sums and products accumulate in the lowering's f32 (f64 for f64)
 * in iteration order (not reassociated); contraction into FMA is off (--fmad=false). f16 and
 * bf16 are rounded after every operation with the interpreter's own bit conversions, so the
 * emulator reproduces them bit for bit. Integer arithmetic wraps, x / 0 = 0, x % 0 = x,
 * index division floors, casts saturate (NaN to 0), float min/max propagate NaN, round is
 * half to even (rintf), and padded loads touch memory only in range. Stores to i4/u4/i2
 * (several elements per byte) are atomicAnd/atomicOr on the containing 32-bit word. */
#ifndef TDSL_CODEGEN_CUDA_H
#define TDSL_CODEGEN_CUDA_H

#include "../../ir/ir.h"

typedef struct CudaOptions {
    const char *arch;   /* "sm_80" (the default, also runs on sm_90) or "sm_90": PTX target */
} CudaOptions;

/* ---- the launch plan ------------------------------------------------------------------------ */

/* A buffer of a call: index b < nins is input b, b < nins + nouts output b - nins (the CPU
 * ABI's `buffers`), and b >= nins + nouts temporary b - nins - nouts, device memory the
 * launcher allocates for the whole call (uninitialised) and frees after it. */
typedef enum CudaArgKind {
    CUDA_ARG_BUFFER,   /* a device pointer: buffer `index` */
    CUDA_ARG_SIZE,     /* an int64_t by value: the size kernel->sizes[index] */
} CudaArgKind;

typedef struct CudaArg {
    CudaArgKind kind;
    int         index;
} CudaArg;

typedef struct CudaLaunch {
    const char   *name;            /* the extern "C" __global__ function */
    const Expr  **block_extents;   /* the extents of the kernel's LOOP_GPU_BLOCK loops (i64
                                      size expressions): block iterations = their product */
    int           nblock;
    const Expr  **thread_extents;  /* the extents of the thread loops right below them:
                                      threads wanted per block iteration = their product */
    int           nthread;         /* -1 when that varies (a single-block kernel running
                                      several statements): a full block */
    bool          one_row;         /* it calls __syncthreads: blockDim.y must be 1 */
    CudaArg      *args;            /* its parameters in order */
    int           nargs;
} CudaLaunch;

typedef enum CudaStepKind {
    CUDA_STEP_ZERO,     /* set every byte of buffer `buffer` to 0 (packed i4/u4/i2 outputs,
                           whose stores keep the other bits of their word) */
    CUDA_STEP_LAUNCH,   /* run `launch` */
} CudaStepKind;

typedef struct CudaStep {
    CudaStepKind kind;
    int          buffer;   /* CUDA_STEP_ZERO */
    CudaLaunch   launch;   /* CUDA_STEP_LAUNCH */
} CudaStep;

typedef struct CudaKernelPlan {
    const Kernel  *kernel;   /* signature: ins, outs, sizes */
    const Tensor **temps;    /* device temporaries, buffer nins + nouts + i */
    int            ntemps;
    CudaStep      *steps;    /* in order, on one stream */
    int            nsteps;
} CudaKernelPlan;

typedef struct CudaLaunchPlan {
    CudaKernelPlan *kernels;  /* one per function of the loop module, in order */
    int             nkernels;
    Arena           arena;    /* owns the plan (Exprs point into the tensor module) */
} CudaLaunchPlan;

/* Generates the CUDA C source of lm, which pass_gpu_map produced (its tensor module must
 * outlive the plan), appending it to source, and the launch plan (*plan, freed with
 * cuda_plan_free). o may be NULL (sm_80). Deterministic. Returns false with a message in
 * err (an internal error: the loop IR has a shape gpu_map does not make). */
bool cuda_generate(const LoopModule *lm, const CudaOptions *o, StrBuf *source,
                   CudaLaunchPlan **plan, StrBuf *err);
void cuda_plan_free(CudaLaunchPlan *plan);

/* The launch configuration of l for bound sizes: block = (bx, by, 1) with bx a multiple of
 * 32 covering the thread loop (at most GPU_THREADS_PER_BLOCK), by = how many block
 * iterations share a block (1 when one_row), grid = (enough blocks, at most 2^20, 1, 1).
 * runtime/cuda.c's rt_cuda_launch_dims is the same rule. False when a size expression
 * cannot be evaluated (overflow). */
bool cuda_launch_dims(const CudaLaunch *l, const Kernel *k, const int64_t *sizes,
                      unsigned grid[3], unsigned block[3]);
/* Its inputs: block iterations (the product of the block extents) and threads per block
 * iteration (of the thread extents; -1 when nthread is -1), what rt_cuda_launch takes. */
bool cuda_launch_work(const CudaLaunch *l, const Kernel *k, const int64_t *sizes, int64_t *block_work,
                      int64_t *thread_work);

/* Bytes of temporary `t` of kernel k for bound sizes (storage layout); false on overflow. */
bool cuda_temp_bytes(const Kernel *k, const Tensor *t, const int64_t *sizes, size_t *bytes);

/* ---- NVRTC (nvrtc.c) ---------------------------------------------------------------------------- */

/* Whether this build can compile to PTX (NVRTC was found when tcc was configured). */
bool cuda_have_nvrtc(void);

/* Compiles source (cuda_generate's) to PTX text for o->arch, appending it to ptx. libnvrtc
 * is opened with dlopen ($TDSL_NVRTC, else the configured path, else "libnvrtc.so"). False
 * with a message in err: NVRTC missing, or its compile log (an internal error of this back
 * end: the generated source should always compile). */
bool cuda_compile_ptx(const char *source, const CudaOptions *o, StrBuf *ptx, StrBuf *err);

/* ---- ahead-of-time builds (cuda_aot.c) -------------------------------------------------------------- */

/* Builds the shared library so_path: the PTX of lm (scheduled by pass_gpu_map) embedded as
 * a string, the manifest `tdsl_manifest`, `tdsl_target = "cuda"`, per kernel K a launcher
 * `int32_t tdsl_cuda_K(void *const *buffers, const int64_t *sizes, int32_t device)` that
 * follows the launch plan through runtime/cuda.c, and the typed function
 * `int K(const DLTensor *x, ..., DLTensor *y)` taking kDLCUDA tensors. Linked like
 * cpu_build_shared (cc or $TDSL_CC, the standalone runtime). The .so needs libc only: the
 * driver library is opened at the first call, and every call fails cleanly ("no CUDA
 * driver found (libcuda.so.1): ...") where there is none. False with a message in err;
 * nothing is left at so_path then. */
bool cuda_build_shared(const LoopModule *lm, const CudaOptions *o, const char *so_path, StrBuf *err);

#endif
