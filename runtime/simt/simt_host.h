/* simt_host.h: the SIMT emulator, CUDA source run on the CPU for tests (public header of
 * runtime/simt/).
 *
 * simt_compile builds CUDA C++ source for the host (g++ against simt.h, see there for what
 * each CUDA construct becomes) into a shared library and loads it; simt_launch runs one of
 * its kernels over a grid on the calling OS thread: each CUDA thread of a block is a fiber
 * with its own stack, the fibers of a block run round-robin from barrier to barrier, and the
 * blocks run one after another in a fixed order (x fastest, then y, then z). Device pointers
 * are host pointers: the arguments point into ordinary memory.
 *
 * A launch fails with a message, rather than hanging or crashing, on
 *   - a launch CUDA would refuse: more than 1024 threads per block, a block or grid dimension
 *     of 0 or over CUDA's limits, more dynamic shared memory than SIMT_MAX_DYNAMIC_SHARED;
 *   - a deadlock: threads wait at a __syncthreads that some thread of the block exited
 *     without reaching, or lanes wait in a warp operation for a lane that never comes;
 *   - a warp operation CUDA leaves undefined: a mask without the calling lane or naming
 *     lanes that do not exist or have exited, lanes of one mask in different operations,
 *     a shuffle reading a lane outside the mask, a width that is not a power of two;
 *   - a stack overflow (each fiber's stack ends in a guard page), another memory fault,
 *     an arithmetic exception or an illegal instruction in kernel code, and __trap().
 * After a failed launch the kernel's remaining threads are abandoned where they stood;
 * memory they wrote stays written. In a build with AddressSanitizer (TDSL_SANITIZE) the
 * kernels are compiled with it too, so an out-of-bounds access of generated code is caught
 * and reported with the fiber's stack.
 *
 * Thread safety: launches on different OS threads are independent (each has its own
 * scheduler, and __shared__ storage is thread-local). One process-wide handler for SIGSEGV,
 * SIGBUS, SIGFPE and SIGILL is installed at the first launch; it handles faults of kernel
 * code running in a launch and passes every other signal to the handler it replaced. */
#ifndef TDSL_SIMT_HOST_H
#define TDSL_SIMT_HOST_H

#include <stdbool.h>
#include <stddef.h>

#include "simt_abi.h"
#include "support/support.h"

enum {
    SIMT_MAX_BLOCK_THREADS = 1024,               /* per block, as on every CUDA GPU */
    SIMT_MAX_DYNAMIC_SHARED = 227 * 1024,        /* bytes: the largest an sm_90 block may opt into */
    SIMT_DEFAULT_STACK = 64 * 1024,              /* bytes of stack per CUDA thread */
};

typedef struct SimtModule SimtModule;

/* The entry of a kernel: args[i] points to the value of its i-th parameter (the convention
 * of cuLaunchKernel). */
typedef void (*SimtEntry)(void **args);

typedef struct SimtKernel {
    const char *name;     /* as in the source ("ns::k" inside a namespace) */
    SimtEntry   entry;
    SimtModule *module;   /* the library that holds it, for its __shared__ storage; may be NULL */
} SimtKernel;

typedef struct SimtLaunchOptions {
    size_t stack_size;    /* bytes per CUDA thread; 0 = SIMT_DEFAULT_STACK (rounded up to pages) */
    bool   reverse;       /* run each block's threads in reverse order: a kernel whose results
                             depend on the order threads run between barriers has a race */
} SimtLaunchOptions;

/* Compiles CUDA source for the host and loads it. The kernels are its non-template
 * __global__ functions, found in the text. The compiler is g++ (or the words of
 * $TDSL_SIMT_CXX), run in a private temporary directory that is removed afterwards (kept
 * with $TDSL_KEEP_TEMPS); $TDSL_SIMT_CXXFLAGS adds flags, $TDSL_SIMT_INCLUDE names another
 * directory holding simt.h. On failure returns false with the compiler's messages in err. */
bool simt_compile(const char *cuda_source, SimtModule **out, StrBuf *err);

/* The kernel called name (NULL when there is none), owned by m. */
const SimtKernel *simt_module_kernel(const SimtModule *m, const char *name);
int               simt_module_num_kernels(const SimtModule *m);
const SimtKernel *simt_module_kernel_at(const SimtModule *m, int i);

/* The calling thread's storage of m's __shared__ variables (the library's thread-local
 * block), allocating it if need be; *size is its length. NULL (size 0) when it has none. */
void *simt_module_shared_storage(SimtModule *m, size_t *size);

/* Unloads the library. NULL is a no-op. */
void simt_module_free(SimtModule *m);

/* Runs kernel k over grid x block threads, with dynamic_shared bytes of dynamic shared
 * memory (extern __shared__). o may be NULL for the defaults. Returns false with a message
 * in err (naming the kernel, the block and the thread) when the launch fails, see above. */
bool simt_launch(const SimtKernel *k, void **args, SimtDim3 grid, SimtDim3 block,
                 size_t dynamic_shared, const SimtLaunchOptions *o, StrBuf *err);

/* The table compiled kernels call the runtime through (simt_module_bind). */
const SimtApi *simt_runtime_api(void);

#endif
