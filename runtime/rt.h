/* rt.h: the runtime's internal interface, shared by the runtime sources, the AOT builder
 * (codegen/cpu/aot.c) and the wrappers it generates.
 *
 * A kernel is described by its signature string, in exactly one form:
 *     NAME(p: dtype[dims], s: f32, ...) -> (o: dtype[dims], ...)
 * rt_format_signature prints it from the tensor IR, rt_sig_parse reads it back into an
 * RtSig descriptor; the JIT (runtime/jit.c) and AOT modules (the .so's tdsl_manifest) both
 * go through that round trip, so the checks see the same descriptor either way.
 *
 * The part of the runtime an AOT .so carries (libtdsl_rt.a: check.c, signature.c,
 * error.c, parallel.c, compiled with TDSL_RT_STANDALONE) depends on nothing but libc and
 * OpenMP's libgomp: no LLVM, no front end, no support library. Its symbols are hidden
 * except tdsl_last_error. */
#ifndef TDSL_RT_H
#define TDSL_RT_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tdsl.h"

#if defined(__GNUC__)
#define RT_HIDDEN __attribute__((visibility("hidden")))
#else
#define RT_HIDDEN
#endif

enum {
    RT_MAX_RANK = 8,        /* IR_MAX_RANK */
    RT_MAX_PARAMS = 4096,   /* inputs and outputs of one kernel, a sanity bound */
    RT_ERROR_CAP = 8192,    /* bytes of tdsl_last_error(), NUL included; longer is cut */
};

/* The raw kernel `tdsl_raw_K`: buffers = data pointers of the inputs then the outputs in
 * storage layout, sizes = the size names' values in signature order. 0, or -1 when an
 * allocation failed. */
typedef int32_t (*RtRawKernel)(void *const *buffers, const int64_t *sizes);

/* The launcher `tdsl_cuda_K` of a CUDA kernel (codegen/cuda/cuda_aot.c): buffers are device
 * pointers on CUDA device `device`, same order and layout. TDSL_OK, or a negative tdsl code
 * with the message already set (rt_fail). */
typedef int32_t (*RtCudaRawKernel)(void *const *buffers, const int64_t *sizes, int32_t device);

/* The launcher of a JIT-compiled CUDA kernel (runtime/cuda_jit.c, rt_cuda_jit_launch): the
 * same contract, with the kernel's state first (its launch plan and its module's driver
 * state), since one function serves every kernel. */
typedef int32_t (*RtCudaCtxKernel)(void *ctx, void *const *buffers, const int64_t *sizes, int32_t device);

/* ---- element types: the rows of ir/dtype.def, so RtDType i is DType i ---------------- */

typedef struct RtDTypeInfo {
    const char *name;     /* as written in tdsl */
    int         bits;     /* storage bits per element */
    int         dl_code;  /* DLPack type code */
} RtDTypeInfo;

RT_HIDDEN int                rt_dtype_count(void);
RT_HIDDEN const RtDTypeInfo *rt_dtype_info(int dtype);      /* NULL when out of range */
RT_HIDDEN int                rt_dtype_from_name(const char *name, size_t len);  /* -1 */

/* ---- signature descriptors (signature.c) -------------------------------------------- */

typedef enum RtDimOp {
    RT_DIM_CONST,   /* value */
    RT_DIM_SIZE,    /* size name number `size` */
    RT_DIM_ADD,     /* a + b */
    RT_DIM_SUB,     /* a - b */
    RT_DIM_MUL,     /* a * b */
    RT_DIM_DIV,     /* a / b, rounding toward minus infinity as ir_eval_size does */
} RtDimOp;

typedef struct RtDim RtDim;
struct RtDim {
    RtDimOp      op;
    int64_t      value;   /* RT_DIM_CONST */
    int          size;    /* RT_DIM_SIZE: index into RtSig.sizes */
    const RtDim *a, *b;   /* operands of the binary ops */
};

typedef struct RtParam {
    const char   *name;
    int           dtype;   /* RtDType, see rt_dtype_info */
    int           rank;
    const RtDim **dims;    /* rank dimension trees */
    const char   *annot;   /* storage annotations as written ("@quant(i8, per_channel)"), or NULL */
    bool          output;  /* an output (they follow every input) */
} RtParam;

typedef struct RtChunk RtChunk;

typedef struct RtSig {
    const char  *name;      /* the kernel's name */
    const char  *text;      /* the signature string it was parsed from */
    RtParam     *params;    /* nins inputs, then nouts outputs */
    int          nparams;
    int          nins;
    int          nouts;
    const char **sizes;     /* size names in order of first appearance (= Kernel.sizes) */
    int          nsizes;
    bool         annotated; /* some parameter carries an annotation: not callable yet */
    RtChunk     *mem;       /* owns everything above */
} RtSig;

/* Parses one signature (up to len bytes; a NUL ends it early). Returns NULL with a
 * message ("column 12: expected ':' after parameter name") in err[0..errcap) on a
 * malformed signature or when out of memory. */
RT_HIDDEN RtSig *rt_sig_parse(const char *text, size_t len, char *err, size_t errcap);
RT_HIDDEN void   rt_sig_free(RtSig *s);

/* Prints a dimension tree with minimal parentheses ("N + 1", "(N + 1) * 2"). Returns the
 * length it needed, as snprintf does. */
RT_HIDDEN int rt_dim_format(const RtSig *s, const RtDim *d, char *buf, size_t cap);
/* "f32[R, N]" */
RT_HIDDEN int rt_param_type_format(const RtSig *s, const RtParam *p, char *buf, size_t cap);

/* Evaluates a dimension; false on overflow, division by zero or an unbound size (< 0). */
RT_HIDDEN bool rt_dim_eval(const RtDim *d, const int64_t *sizes, int64_t *out);

#ifndef TDSL_RT_STANDALONE
/* Prints a tensor-IR kernel's signature in the form above (runtime/signature.c; not in
 * the standalone runtime of an AOT .so, which never sees the IR). */
struct Kernel;
struct StrBuf;
void rt_format_signature(const struct Kernel *k, struct StrBuf *out);
/* The same, checked to parse back (so a library's manifest is loadable); false with an
 * internal error in err otherwise. */
bool rt_checked_signature(const struct Kernel *k, struct StrBuf *out, struct StrBuf *err);

/* For the shared-library builders (codegen/cpu/aot.c, codegen/cuda/cuda_aot.c), which write
 * C: whether C (or the generated code) reserves name; whether a kernel name can be an
 * exported C function (else a message in err); s[0..n) as a C string literal. */
bool rt_c_reserved(const char *name);
bool rt_check_export_name(const char *name, struct StrBuf *err);
void rt_put_c_string(struct StrBuf *out, const char *s, size_t n);

/* ---- modules (module.c, jit.c, load.c; not in the standalone runtime) ------------------- */

struct tdsl_kernel {
    tdsl_module    *module;    /* the owner */
    RtSig          *sig;       /* the descriptor; sig->text is tdsl_kernel_signature */
    RtRawKernel     raw;       /* tdsl_raw_NAME, in the JIT or the .so; NULL for CUDA */
    RtCudaRawKernel raw_cuda;  /* tdsl_cuda_NAME of a CUDA .so; NULL otherwise */
    const char   *(*raw_error)(void);  /* CUDA: the .so's tdsl_last_error, where raw_cuda's
                                          messages are (each .so has its own) */
    RtCudaCtxKernel cuda_launch;  /* JIT for CUDA: rt_cuda_jit_launch; NULL otherwise */
    void           *cuda_ctx;     /* its first argument, owned by the module's RtCudaJit */
};

struct RtCudaJit;

struct tdsl_module {
    tdsl_kernel      *kernels;  /* nkernels, in module order */
    int               nkernels;
    struct Module    *ir;       /* JIT: the tensor IR (owns the loop IR too); NULL for AOT */
    struct CpuJit    *jit;      /* JIT for the CPU: the compiled code; NULL otherwise */
    struct RtCudaJit *cuda;     /* JIT for CUDA: plan, PTX and driver state; NULL otherwise */
    void             *dl;       /* AOT: the dlopen handle; NULL for JIT */
};

/* A module with room for n kernels (zeroed); NULL when out of memory. */
tdsl_module *rt_module_new(int n);

/* ---- JIT-compiled CUDA modules (cuda_jit.c; not in the standalone runtime) ---------------------- */

/* The CUDA code of a scheduled loop module: its launch plan, its PTX, and the driver state
 * (an RtCudaModule) its launches go through. */
typedef struct RtCudaJit RtCudaJit;
struct LoopModule;
struct CudaOptions;

/* cuda_generate and cuda_compile_ptx (NVRTC, in memory) over lm, which pass_gpu_map
 * produced; lm's tensor module must outlive the result. NULL with the message in err (no
 * NVRTC, or an internal error that says so). Opens no driver. */
RtCudaJit *rt_cuda_jit_new(const struct LoopModule *lm, const struct CudaOptions *o, struct StrBuf *err);
/* Frees the plan and the PTX, and unloads what calls loaded (rt_cuda_module_release). */
void rt_cuda_jit_free(RtCudaJit *j);
/* Kernel `name`'s state, the ctx of rt_cuda_jit_launch; NULL when the module has none. */
void *rt_cuda_jit_kernel(RtCudaJit *j, const char *name);
/* The RtCudaCtxKernel of every JIT CUDA kernel: follows the kernel's launch plan on device
 * pointers, as an AOT library's tdsl_cuda_K does. */
int32_t rt_cuda_jit_launch(void *ctx, void *const *buffers, const int64_t *sizes, int32_t device);
/* The driver state, for a host that moves its own data in a call (tcc run --engine cuda). */
struct RtCudaModule *rt_cuda_jit_driver(RtCudaJit *j);
#endif

/* ---- threads (parallel.c) ------------------------------------------------------------------ */

/* The outlined body of a parallel loop: runs iterations [begin, end) with the values it
 * reads from the loop's surroundings in *closure. */
typedef void (*RtParallelBody)(void *closure, int64_t begin, int64_t end);

/* Runs body over [0, n) cut into contiguous chunks on OpenMP's threads and returns when
 * every chunk is done; body(closure, 0, n) directly when threads cannot help (parallel.c).
 * Generated code calls it by this name (codegen/cpu/llvm_gen.c). */
RT_HIDDEN void tdsl_parallel_for(int64_t n, RtParallelBody body, void *closure);

/* ---- errors (error.c) ------------------------------------------------------------------ */

/* Sets this thread's last error and returns code. */
RT_HIDDEN int rt_fail(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The same with a long text appended verbatim (compiler diagnostics), cut to fit. */
RT_HIDDEN int rt_fail_text(int code, const char *head, const char *text);

/* ---- checked calls (check.c) -------------------------------------------------------------- */

/* Checks args against s (LANGUAGE.md section 9) and on success calls raw. Returns
 * TDSL_OK, TDSL_ERR_ARG (nothing written) or TDSL_ERR_RUNTIME. */
RT_HIDDEN int rt_call(const RtSig *s, RtRawKernel raw, const DLTensor *const *args, int nargs);

/* The typed functions of an AOT .so call this: it parses `sig` once into *cache (thread
 * safe, lock free) and then calls rt_call. rt_sig_cache_free runs when the .so unloads. */
RT_HIDDEN int  rt_call_cached(void **cache, const char *sig, RtRawKernel raw,
                              const DLTensor *const *args, int nargs);
RT_HIDDEN void rt_sig_cache_free(void **cache);

/* The same for CUDA kernels: every tensor on one kDLCUDA device, whose number raw gets.
 * raw_error, when not NULL, reads the message of a failed raw call (raw lives in another
 * library with its own last error), which is then copied here. */
RT_HIDDEN int rt_call_cuda(const RtSig *s, RtCudaRawKernel raw, const char *(*raw_error)(void),
                           const DLTensor *const *args, int nargs);
RT_HIDDEN int rt_call_cuda_cached(void **cache, const char *sig, RtCudaRawKernel raw,
                                  const DLTensor *const *args, int nargs);
/* The same with a JIT CUDA kernel's launcher, which sets its messages here. */
RT_HIDDEN int rt_call_cuda_ctx(const RtSig *s, RtCudaCtxKernel raw, void *ctx, const DLTensor *const *args,
                               int nargs);

/* ---- CUDA (cuda.c): the driver API through dlopen, for CUDA .so and JIT launchers --------------- */

enum {
    RT_CUDA_MAX_DEVICES = 64,     /* devices one module can run on */
    RT_CUDA_MAX_FNS = 24,         /* room for the driver entry points cuda.c uses */
    RT_CUDA_BLOCK_THREADS = 256,  /* threads per block (passes/passes.h GPU_THREADS_PER_BLOCK) */
};

/* One per CUDA .so, static: `static RtCudaModule m = {ptx, PTHREAD_MUTEX_INITIALIZER};`; one
 * per JIT CUDA module too (runtime/cuda_jit.c), released with it (rt_cuda_module_release). */
typedef struct RtCudaModule {
    const char     *ptx;                          /* NUL-terminated PTX text */
    pthread_mutex_t lock;                         /* guards loading what follows */
    void           *driver;                       /* dlopen handle of libcuda.so.1, once loaded */
    void           *fn[RT_CUDA_MAX_FNS];          /* its entry points (cuda.c's table) */
    void           *ctx[RT_CUDA_MAX_DEVICES];     /* CUcontext: each device's primary, retained */
    void           *module[RT_CUDA_MAX_DEVICES];  /* CUmodule: the PTX loaded on each device */
} RtCudaModule;

/* One kernel call in progress. */
typedef struct RtCudaCall {
    RtCudaModule *m;
    const char   *kernel;   /* the kernel's name, for messages */
    int           device;
    void         *temps;    /* the one device allocation holding every temporary, or NULL */
    bool          pushed;   /* the device's context is current */
} RtCudaCall;

/* The launch configuration rule (cuda.h's cuda_launch_dims): block = (bx, by, 1) with bx the
 * thread work rounded up to a multiple of 32 (a full block when it is -1, unknown, or
 * large), by = block iterations sharing a block (1 when one_row), grid = (enough blocks
 * for block_work, at most 2^20, 1, 1). */
RT_HIDDEN void rt_cuda_launch_dims(int64_t block_work, int64_t thread_work, bool one_row, unsigned grid[3],
                                   unsigned block[3]);
/* Bytes of a tensor of dims[0..rank) with `bits` bits per element; false on overflow. */
RT_HIDDEN bool rt_cuda_bytes(const int64_t *dims, int rank, int bits, size_t *bytes);

/* Each returns TDSL_OK or a negative code with the message set; after rt_cuda_begin
 * succeeded, rt_cuda_end must follow (it returns rc, or the first error it meets). */
RT_HIDDEN int rt_cuda_begin(RtCudaCall *c, RtCudaModule *m, int32_t device, const char *kernel);
/* One device allocation holding n buffers of bytes[i] (each 256-aligned) into ptrs, freed by
 * rt_cuda_end: a launcher's temporaries, or tcc run's inputs and outputs. */
RT_HIDDEN int rt_cuda_alloc(RtCudaCall *c, const size_t *bytes, int n, void **ptrs);
RT_HIDDEN int rt_cuda_zero(RtCudaCall *c, void *ptr, size_t bytes);
RT_HIDDEN int rt_cuda_launch(RtCudaCall *c, const char *fn, int64_t block_work, int64_t thread_work, bool one_row,
                             void **args);
RT_HIDDEN int rt_cuda_end(RtCudaCall *c, int rc);
/* Between rt_cuda_begin and rt_cuda_end: bytes from host memory to device memory and back
 * (synchronous, cuMemcpyHtoD / cuMemcpyDtoH). */
RT_HIDDEN int rt_cuda_copy_to_device(RtCudaCall *c, void *dst, const void *src, size_t bytes);
RT_HIDDEN int rt_cuda_copy_to_host(RtCudaCall *c, void *dst, const void *src, size_t bytes);
/* Unloads m's CUDA modules and releases its primary contexts (a module that is freed, not
 * one an AOT library keeps until exit); m is unusable afterwards. */
RT_HIDDEN void rt_cuda_module_release(RtCudaModule *m);

#endif
