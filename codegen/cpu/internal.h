/* codegen/cpu internals, shared by the files of this directory only (cpu.h is the public
 * header):
 *   target.c    LLVM target initialisation (once), target machines, the optimisation
 *               pipeline, cpu_emit;
 *   llvm_gen.c  loop IR statements to LLVM IR: the module, one function per kernel, loops,
 *               buffers (parameters, allocations, storage-layout loads and stores);
 *   llvm_expr.c level-1 expressions to LLVM values: arithmetic in each dtype, casts,
 *               rounding to f16/bf16, index arithmetic, padded loads, select;
 *   llvm_parallel.c  parallel loops: outlined bodies, closures, tdsl_parallel_for calls;
 *   jit.c       ORC LLJIT: cpu_jit_compile, cpu_jit_lookup, cpu_jit_free.
 *
 * Values in registers (cg_reg_type): bool is i1; i2 is i2, i4 and u4 are i4 (LLVM wraps at
 * the width; signedness lives in the ops); i8/u8 i8 ... i64; f32 and f64 themselves; f16 and
 * bf16 are held as float, always exactly representable in their dtype (every op rounds). */
#ifndef TDSL_CODEGEN_CPU_INTERNAL_H
#define TDSL_CODEGEN_CPU_INTERNAL_H

#include <llvm-c/Core.h>
#include <llvm-c/Error.h>
#include <llvm-c/TargetMachine.h>

#include "cpu.h"

/* ---- target.c ------------------------------------------------------------------------------ */

/* Initialises the native target, its assembly printer and parser (once per process). */
bool cg_target_init(StrBuf *err);
/* A target machine for o (NULL: host CPU, -O3); pic for objects that go into a .so. */
LLVMTargetMachineRef cg_target_machine(const CpuOptions *o, bool pic, StrBuf *err);
/* Runs default<On> over m for o's opt level. */
bool cg_optimize(LLVMModuleRef m, LLVMTargetMachineRef tm, const CpuOptions *o, StrBuf *err);
/* Appends an LLVM error's message to err and consumes the error. */
void cg_take_error(LLVMErrorRef e, StrBuf *err);
/* Whether glibc's vector math library (libmvec, loaded once with RTLD_GLOBAL so the JIT
 * resolves from it) exports symbol `name`. */
bool cg_libmvec_has(const char *name);

/* ---- llvm_gen.c ---------------------------------------------------------------------------- */

/* Builds the LLVM module for lm in ctx, with tm's triple and data layout and the CPU and
 * features of tm on every function; with vecmath, libm calls name their libmvec variants
 * (llvm_expr.c). NULL with a message in err on failure. */
LLVMModuleRef cg_emit_module(LLVMContextRef ctx, const LoopModule *lm, LLVMTargetMachineRef tm,
                             bool vecmath, StrBuf *err);

/* ---- the state of one function, shared by llvm_gen.c and llvm_expr.c ------------------------ */

typedef struct CgBuf {
    LLVMValueRef ptr;                /* the data; NULL while the tensor has no storage here */
    LLVMValueRef dims[IR_MAX_RANK];  /* i64 axis sizes */
    bool         reg;                /* a private scalar held in its register type (an
                                        alloca SROA promotes), not in storage layout */
} CgBuf;

typedef struct Cg {
    LLVMContextRef    ctx;
    LLVMModuleRef     mod;
    LLVMBuilderRef    b;
    const Kernel     *k;
    LLVMValueRef      fn;
    LLVMBasicBlockRef entry;      /* holds the allocas; branches to the code at the end */
    int               nids;       /* Var and Tensor ids are below this */
    LLVMValueRef     *vals;       /* per Var id: the current i64 value (size or loop var) */
    CgBuf            *bufs;       /* per Tensor id */
    LLVMValueRef     *heap;       /* enclosing heap allocations, outermost first */
    int               nheap;
    int               capheap;
    int               heap_base;  /* heap[heap_base..nheap) belong to the function being emitted */
    LLVMValueRef      fail_flag;  /* in an outlined parallel body: the i32 a failed allocation
                                     sets before returning; NULL in a kernel (returns -1) */
    bool              in_parallel;/* emitting an outlined body: inner parallel loops run serially */
    const char       *cpu;        /* the target's CPU and features, for every function's attributes */
    const char       *features;
    StrBuf           *err;
    bool              failed;     /* set with the first message; the walk then unwinds */
    bool              vecmath;    /* name libmvec variants of libm calls */
    bool              avx512, avx2, sse2;  /* the target's vector ISAs, for those variants */
    LLVMValueRef     *keep;       /* declarations for llvm.compiler.used */
    int               nkeep;
    int               capkeep;
    LLVMTypeRef       i1, i8, i16, i32, i64, f16, f32, f64, ptr;
} Cg;

void         cg_fail(Cg *g, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
LLVMTypeRef  cg_reg_type(Cg *g, DType t);
LLVMValueRef cg_i64(Cg *g, int64_t v);
LLVMValueRef cg_intrinsic(Cg *g, const char *name, LLVMTypeRef *over, int nover,
                          LLVMValueRef *args, int nargs);
LLVMBasicBlockRef cg_block(Cg *g, const char *name);  /* appended to the function */
void         cg_keep(Cg *g, LLVMValueRef global);  /* into llvm.compiler.used */
bool         cg_has_avx512(const Cg *g);
bool         cg_has_avx2(const Cg *g);
bool         cg_has_sse2(const Cg *g);

/* llvm_gen.c: statements and functions, for llvm_parallel.c */
void         cg_emit_stmt(Cg *g, const LStmt *s);
/* for v in [lo, hi), or downwards from hi - 1 when reverse (lo >= 0): body, as a guarded
 * rotated loop with kind's llvm.loop hint. */
void         cg_emit_range(Cg *g, const Var *v, LLVMValueRef lo, LLVMValueRef hi, bool reverse,
                           LoopKind kind, const LStmt *body);
/* An alloca of n elements of type ty in the entry block, where SROA and mem2reg find it. */
LLVMValueRef cg_entry_alloca(Cg *g, LLVMTypeRef ty, unsigned n, unsigned align);
/* A block that frees the current function's enclosing heap buffers and fails (returns -1
 * from a kernel; sets fail_flag and returns from an outlined body). */
LLVMBasicBlockRef cg_fail_block(Cg *g);
/* Continues in a fresh block when ok is true, else goes to fail. */
void         cg_check_or_fail(Cg *g, LLVMValueRef ok, LLVMBasicBlockRef fail);
/* A function of the C library (or the runtime), declared once per module, nounwind. */
LLVMValueRef cg_declare_fn(Cg *g, const char *name, LLVMTypeRef ret, LLVMTypeRef *params, int n,
                           LLVMTypeRef *fty);
void         cg_fn_attr(Cg *g, LLVMValueRef f, LLVMAttributeIndex at, const char *name);
void         cg_target_attrs(Cg *g, LLVMValueRef f);  /* target-cpu, target-features */

/* llvm_parallel.c: a LOOP_PARALLEL loop of a kernel function, outlined. */
void         cg_emit_parallel(Cg *g, const LStmt *s);

/* llvm_gen.c: element `off` (i64, flattened row-major) of buffer t, in register type. */
LLVMValueRef cg_load_elem(Cg *g, const Tensor *t, LLVMValueRef off);
void         cg_store_elem(Cg *g, const Tensor *t, LLVMValueRef off, LLVMValueRef v);
/* The flattened offset of in-range indices idx[0..rank) into t. */
LLVMValueRef cg_offset(Cg *g, const Tensor *t, LLVMValueRef *idx);

/* llvm_expr.c */
LLVMValueRef cg_expr(Cg *g, const Expr *e);   /* e's value in cg_reg_type(e->type) */
LLVMValueRef cg_index(Cg *g, const Expr *e);  /* i64, `/` and `%` floor: interp.c's eval_index */
LLVMValueRef cg_size(Cg *g, const Expr *e);   /* i64 extents and dims: ir_eval_size's rules */

#endif
