/* codegen/cuda internals, shared by the files of this directory only (cuda.h is the public
 * header):
 *   prelude.c    the fixed head of every generated source;
 *   cuda_gen.c   the launch plan, one __global__ function per kernel root, statements,
 *                loops, buffers and parameters;
 *   cuda_expr.c  level-1 expressions to C++ expression text with the interpreter's rules;
 *   nvrtc.c      NVRTC through dlopen: source to PTX;
 *   cuda_aot.c   the shared library: embedded PTX, launchers, typed entry points.
 *
 * Values in registers (cu_reg_type): bool is bool; i2, i4, i8, i16 and i32 are td_i32 and
 * u4, u8 td_u32, always holding a value of their dtype (every op wraps); i64 td_i64; f16,
 * bf16 and f32 are float, always exactly representable in their dtype (every op rounds);
 * f64 double. In memory (cu_storage_type): f16/bf16 as td_u16 bit patterns, bool as td_u8,
 * i4/u4/i2 packed in td_u8 bytes. */
#ifndef TDSL_CODEGEN_CUDA_INTERNAL_H
#define TDSL_CODEGEN_CUDA_INTERNAL_H

#include "cuda.h"
#include "../../passes/passes.h"
#include "../../runtime/rt.h"

/* ---- prelude.c ----------------------------------------------------------------------------- */

const char *cuda_prelude(void);

/* ---- the state of one generated __global__ function (cuda_gen.c, cuda_expr.c) ---------------- */

typedef enum CuBufKind {
    CU_BUF_NONE,      /* not in scope */
    CU_BUF_GLOBAL,    /* a kernel parameter: a pointer to device memory (rank 0: element 0) */
    CU_BUF_REGISTER,  /* a rank-0 private scalar: a local variable of its register type */
    CU_BUF_LOCAL,     /* a constant-size private array in storage layout */
    CU_BUF_SHARED,    /* a constant-size __shared__ array in storage layout */
} CuBufKind;

typedef struct CuGen {
    const LoopModule *lm;
    const Kernel     *k;
    StrBuf           *err;
    bool              failed;    /* set with the first message; everything then unwinds */
    int               nids;      /* Var and Tensor ids are below this */
    const char      **names;     /* per id: its C name in the current function, or NULL */
    CuBufKind        *bufs;      /* per Tensor id: how the current function holds it */
    PtrVec            taken;     /* C names used in the current function */
    Arena             scratch;   /* names; reset per function */
    int               thread_depth;  /* enclosing LOOP_GPU_THREAD loops */
    bool              barriers;  /* the current function calls __syncthreads */
    PtrVec            hoisted;   /* const Expr *: composite size expressions of this function,
                                    computed once at its top (sz0, sz1 ...) */
    const char      **hoist_names; /* parallel to hoisted, once named */
    bool              collecting;  /* first pass over a function: gather `hoisted` */
    bool              no_hoist;    /* printing a hoisted expression's own definition */
} CuGen;

void cu_fail(CuGen *g, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
const char *cu_reg_type(DType t);
const char *cu_storage_type(DType t);

/* cuda_expr.c: each appends C++ expression text to out (parenthesised when compound). */
void cu_expr(CuGen *g, const Expr *e, StrBuf *out);    /* in cu_reg_type(e->type) */
void cu_index(CuGen *g, const Expr *e, StrBuf *out);   /* td_i64, `/` and `%` floor */
void cu_size(CuGen *g, const Expr *e, StrBuf *out);    /* td_i64, ir_eval_size's rules */
/* Whether e is a size expression: constants and size names under + - * / % min max neg. */
bool cu_is_size_expr(const Expr *e);
/* The flattened row-major offset of indices idx[0..rank) into t (in range). */
void cu_offset(CuGen *g, const Tensor *t, Expr *const *idx, StrBuf *out);
/* A value of dtype `to` from text `a` of dtype `from` (interp.c's cast rules). */
void cu_cast(DType from, DType to, const char *a, StrBuf *out);
/* The store of value text v into t at offset text off, as a statement (no newline). */
void cu_store(CuGen *g, const Tensor *t, const char *off, const char *v, StrBuf *out);

#endif
