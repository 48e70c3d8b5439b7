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
 * error.c, compiled with TDSL_RT_STANDALONE) depends on nothing but libc: no LLVM, no
 * front end, no support library. Its symbols are hidden except tdsl_last_error. */
#ifndef TDSL_RT_H
#define TDSL_RT_H

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

/* ---- modules (module.c, jit.c, load.c; not in the standalone runtime) ------------------- */

struct tdsl_kernel {
    tdsl_module *module;   /* the owner */
    RtSig       *sig;      /* the descriptor; sig->text is tdsl_kernel_signature */
    RtRawKernel  raw;      /* tdsl_raw_NAME, in the JIT or the .so */
};

struct tdsl_module {
    tdsl_kernel   *kernels;   /* nkernels, in module order */
    int            nkernels;
    struct Module *ir;        /* JIT: the tensor IR (owns the loop IR too); NULL for AOT */
    struct CpuJit *jit;       /* JIT: the compiled code; NULL for AOT */
    void          *dl;        /* AOT: the dlopen handle; NULL for JIT */
};

/* A module with room for n kernels (zeroed); NULL when out of memory. */
tdsl_module *rt_module_new(int n);
#endif

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

#endif
