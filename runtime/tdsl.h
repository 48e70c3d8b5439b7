/* tdsl.h: the C API of the tdsl runtime.
 *
 * A module is a set of compiled kernels, either compiled from source in memory
 * (tdsl_compile: for the CPU through the LLVM JIT, or for CUDA through NVRTC) or loaded
 * from a shared library that `tcc FILE [--target=cuda] -o FILE.so` built ahead of time
 * (tdsl_load). A kernel is called with DLPack tensors, inputs first, then outputs: kDLCPU
 * tensors for a CPU kernel, kDLCUDA tensors all on one device for a CUDA kernel. Every
 * argument is checked before any memory is touched (dtype, rank, device, size names,
 * strides, outputs not overlapping), and on error nothing is written and tdsl_last_error()
 * says what was wrong, naming the kernel and the parameter. docs/abi.md describes the ABI
 * in full; docs/cuda.md the CUDA target.
 *
 * Thread safety: modules are independent; several threads may compile, load, call and
 * free different modules at once, and call the same kernel at once (a call keeps no
 * state). tdsl_last_error() is per thread. Freeing a module while another thread calls
 * one of its kernels is the caller's bug. */
#ifndef TDSL_H
#define TDSL_H

#include <dlpack/dlpack.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define TDSL_API __attribute__((visibility("default")))
#else
#define TDSL_API
#endif

/* DLPack's type code for bool (kDLBool) appeared in DLPack 0.8; Debian's header (0.6)
 * lacks it. tdsl bool tensors are {TDSL_DL_BOOL, 8, 1}: one byte per element, 0 or 1. */
#define TDSL_DL_BOOL 6

typedef struct tdsl_module tdsl_module;
typedef struct tdsl_kernel tdsl_kernel;

/* What tdsl_compile compiles for (tdsl_options.target). */
enum {
    TDSL_TARGET_CPU = 0,   /* this machine's CPU, through LLVM (the default) */
    TDSL_TARGET_CUDA = 1,  /* NVIDIA GPUs: PTX through NVRTC, run through the CUDA driver */
};

/* Zero-initialise it (or use designated initialisers): new fields are added at the end and
 * their zero is the old behaviour. */
typedef struct tdsl_options {
    const char        *cpu;           /* CPU target: the CPU name; NULL = the host's */
    const char        *features;      /* CPU target: feature string; NULL = the host's */
    int                opt_level;     /* CPU target: 0..3; -1 = the default, 2 */
    const char *const *include_dirs;  /* searched first for `import "name"` */
    int                ninclude;      /* entries in include_dirs */
    int                no_fuse;       /* nonzero: compile every definition as written */
    int                target;        /* TDSL_TARGET_CPU (0, the default) or TDSL_TARGET_CUDA */
    const char        *arch;          /* CUDA target: "sm_80" (NULL, the default; its PTX also
                                         runs on sm_90 and newer) or "sm_90"; must be NULL for
                                         the CPU */
} tdsl_options;

/* Return codes: 0 or one of the negative values below. */
enum {
    TDSL_OK = 0,
    TDSL_ERR_ARG = -1,        /* a bad argument: NULL, wrong dtype / rank / size / device ... */
    TDSL_ERR_COMPILE = -2,    /* the source did not compile; the message holds the diagnostics */
    TDSL_ERR_LOAD = -3,       /* the shared library could not be loaded or is not a tdsl module */
    TDSL_ERR_NOT_FOUND = -4,  /* no kernel of that name */
    TDSL_ERR_RUNTIME = -5,    /* the kernel failed while running (out of memory; for CUDA: no
                                 driver or device, a driver error) */
};

/* Compiles tdsl source text (NUL-terminated) in memory, for the CPU or, with o->target =
 * TDSL_TARGET_CUDA, for CUDA (PTX through NVRTC, which must be installed: else
 * TDSL_ERR_COMPILE saying so; no GPU or driver is needed to compile). `name` is used in
 * diagnostics (`name:line:col: error: ...`) and for relative imports; NULL means
 * "<source>". o may be NULL for the defaults. On success *m is the new module; on error
 * *m is NULL and tdsl_last_error() holds the compiler's diagnostics.
 *
 * A CUDA module's kernels take kDLCUDA tensors (device pointers) all on one device, and
 * run there on the legacy default stream, returning when done. The CUDA driver
 * (libcuda.so.1) is opened by the first call; without a driver or a device every call
 * returns TDSL_ERR_RUNTIME, writes nothing, and tdsl_last_error() says so ("K: no CUDA
 * driver found (libcuda.so.1): ..."). tdsl_module_free unloads what the calls loaded. */
TDSL_API int tdsl_compile(const char *src, const char *name, const tdsl_options *o,
                          tdsl_module **m);

/* Loads a module built ahead of time by tcc (`tcc FILE -o FILE.so`). */
TDSL_API int tdsl_load(const char *so_path, tdsl_module **m);

/* The kernel called kernel_name, owned by m; NULL (with the reason in tdsl_last_error)
 * when there is none or an argument is NULL. */
TDSL_API tdsl_kernel *tdsl_kernel_get(tdsl_module *m, const char *kernel_name);

/* Calls k with nargs tensors: its inputs in order, then its outputs. */
TDSL_API int tdsl_kernel_call(tdsl_kernel *k, DLTensor *const *args, int nargs);

TDSL_API int tdsl_kernel_num_inputs(const tdsl_kernel *k);    /* -1 when k is NULL */
TDSL_API int tdsl_kernel_num_outputs(const tdsl_kernel *k);   /* -1 when k is NULL */

/* "layernorm(x: f32[N, D], g: f32[D], b: f32[D]) -> (y: f32[N, D])"; "" when k is NULL. */
TDSL_API const char *tdsl_kernel_signature(const tdsl_kernel *k);

/* The message of this thread's most recent failed call ("" when none failed yet). Valid
 * until this thread's next failing call. */
TDSL_API const char *tdsl_last_error(void);

/* Frees the module, its kernels and its code. NULL is a no-op. */
TDSL_API void tdsl_module_free(tdsl_module *m);

/* Kernels run their parallel loops on OpenMP's threads (libgomp), OMP_NUM_THREADS of them
 * by default (every core). This sets the count for kernels called from the calling thread
 * afterwards (it is omp_set_num_threads; other threads keep theirs). n >= 1, else
 * TDSL_ERR_ARG. A parallel kernel's outputs are the same at every thread count. */
TDSL_API int tdsl_set_num_threads(int n);

#ifdef __cplusplus
}
#endif

#endif
