/* simt_cuda.h: the CUDA back end's output (codegen/cuda) run by the SIMT emulator: the
 * generated source compiled for the host, and each kernel's launch plan followed on host
 * buffers. What `tcc run --engine cuda-emu` and the emulator's equivalence test use.
 *
 * Built only with the CUDA back end (CMake defines TDSL_SIMT_CUDA when it is). */
#ifndef TDSL_SIMT_CUDA_H
#define TDSL_SIMT_CUDA_H

#include "../../ir/ir.h"
#include "simt_host.h"

typedef struct SimtCuda SimtCuda;

/* Generates CUDA source for lm, which pass_gpu_map produced (its tensor module must outlive
 * the result), and compiles it with simt_compile. False with a message in err. */
bool simt_cuda_build(const LoopModule *lm, SimtCuda **out, StrBuf *err);

/* Runs kernel `name` like the CUDA launcher would (codegen/cuda/cuda.h: the plan's steps in
 * order, temporaries allocated for the call), on host memory: buffers[i] the data of its
 * inputs then its outputs (the CPU ABI's layout), sizes[i] the value of kernel->sizes[i].
 * The kernels run on copies allocated as cudaMalloc would (256-byte aligned and padded);
 * outputs and temporaries start as 0xff bytes, as uninitialised device memory holds garbage,
 * and the outputs are copied back at the end. False with a message in err (a failed launch,
 * no such kernel, out of memory); the outputs are then left as they were. */
bool simt_cuda_run(const SimtCuda *c, const char *name, void *const *buffers, const int64_t *sizes,
                   const SimtLaunchOptions *o, StrBuf *err);

/* The generated source (for messages and debugging). */
const char *simt_cuda_source(const SimtCuda *c);

void simt_cuda_free(SimtCuda *c);

#endif
