/* simt_abi.h: the interface between the SIMT emulator's runtime (fiber.c, C) and CUDA code
 * compiled for the host against simt.h (C++, a shared library built by loader.c).
 *
 * The kernel library has no undefined symbols of ours: after dlopen the loader calls its
 * simt_module_bind(&api), and every emulated CUDA construct that needs the runtime (the
 * current thread's indices, barriers, warp operations, dynamic shared memory, traps) goes
 * through that table. A kernel is entered through simt_entry_K(void **args), args in the
 * cuLaunchKernel convention: args[i] points to the value of the i-th parameter.
 *
 * Plain C so both sides include it; SIMT_ABI_VERSION changes whenever this file does. */
#ifndef TDSL_SIMT_ABI_H
#define TDSL_SIMT_ABI_H

#include <stdint.h>

#define SIMT_ABI_VERSION 1

#ifdef __cplusplus
extern "C" {
#endif

typedef struct SimtDim3 {
    unsigned x, y, z;
} SimtDim3;

/* What a CUDA thread can ask about itself; constant for the life of its fiber. */
typedef struct SimtThreadInfo {
    SimtDim3 thread_idx;  /* threadIdx */
    SimtDim3 block_idx;   /* blockIdx */
    SimtDim3 block_dim;   /* blockDim */
    SimtDim3 grid_dim;    /* gridDim */
    unsigned lane;        /* linear thread index % 32 */
    unsigned warp;        /* linear thread index / 32 */
} SimtThreadInfo;

typedef enum SimtWarpOp {
#define X(e, name) e,
#include "warp_ops.def"
#undef X
    SIMT_WARP_OP_COUNT
} SimtWarpOp;

typedef enum SimtBarrierOp {
    SIMT_BAR_SYNC,   /* __syncthreads: returns 0 */
    SIMT_BAR_COUNT,  /* __syncthreads_count: how many threads passed pred != 0 */
    SIMT_BAR_AND,    /* __syncthreads_and */
    SIMT_BAR_OR,     /* __syncthreads_or */
} SimtBarrierOp;

/* The runtime's side. A function that finds an error (a bad mask, a trap) ends the launch
 * with a message and never returns to the kernel. `line` is the __LINE__ of the call in the
 * CUDA source, for messages. */
typedef struct SimtApi {
    int version;                                   /* SIMT_ABI_VERSION */
    const SimtThreadInfo *(*self)(void);           /* the running thread */
    int (*barrier)(int op, int pred, int line);    /* SimtBarrierOp */
    /* SimtWarpOp: posts value and arg (source lane, delta or lane mask) for the lanes of mask;
     * width is the shuffle's segment width (1..32, a power of two). */
    uint64_t (*warp)(int op, unsigned mask, uint64_t value, int arg, int width, int line);
    unsigned (*active_mask)(void);                 /* the warp's lanes that have not exited */
    void *(*dynamic_shared)(void);                 /* extern __shared__ storage of this launch */
    void (*trap)(const char *what, int line);      /* __trap(), failed checks: ends the launch */
    long long (*clock)(void);                      /* clock64(): counts calls, per launch */
} SimtApi;

#ifdef __cplusplus
}
#endif

#endif
