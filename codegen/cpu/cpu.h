/* cpu: the CPU back end. Loop IR (level 2) to LLVM IR through the LLVM 19 C API, then either
 * JIT-compiled in memory (ORC LLJIT) or emitted as LLVM IR text, assembly or an object file.
 *
 * Takes a LoopModule that passed loop_verify (its tensor module must outlive the call; the
 * JIT keeps no pointer into it afterwards). Gives, per kernel K, one function
 *
 *     int32_t tdsl_raw_K(void *const *buffers, const int64_t *sizes);
 *
 *   buffers[i]  the data pointers of K's inputs, then its outputs, in storage layout:
 *               row-major contiguous; f32 as float, f64 as double; f16/bf16 as 16-bit
 *               patterns; i4/u4 two per byte and i2 four per byte over the flattened element
 *               index, low bits first; bool one byte, 0 or 1. Natural alignment is assumed
 *               (2 bytes for f16, 4 for f32, ...). An output may not overlap an input.
 *   sizes[i]    the value of kernel->sizes[i] (bound, every entry >= 1).
 *   returns     0, or -1 when a temporary could not be allocated (or its size overflows);
 *               everything the call allocated is freed either way.
 *
 * The functions compute what ir_interp_run computes (ir/interp.c has the rules), bit for bit
 * for integers, f16, bf16 and f64, with three exceptions: f32 transcendentals go through
 * libm's float functions (expf ...) and, in vectorised JIT code, glibc's libmvec, a few ulps
 * from the interpreter's double-then-round; an f32/f64 sum or product accumulated by the
 * lowering may be reassociated (vectorised); the float min/max of +0 and -0 is -0 / +0
 * (llvm.minimum/maximum) where the interpreter returns its second operand.
 *
 * LOOP_PARALLEL loops are outlined and run through the runtime's tdsl_parallel_for
 * (runtime/rt.h: OpenMP threads; the JIT binds it to the host's copy, an AOT library links
 * its own), with the same results at every thread count (llvm_parallel.c).
 *
 * Thread safety: every call builds its own LLVM context; LLVM's targets are initialised once
 * (pthread_once). Several threads may compile, look up and run at the same time. */
#ifndef TDSL_CODEGEN_CPU_H
#define TDSL_CODEGEN_CPU_H

#include "../../ir/ir.h"

typedef struct CpuOptions {
    const char *cpu;       /* LLVM CPU name ("znver4", "x86-64-v3"); NULL: the host's */
    const char *features;  /* LLVM feature string ("+avx2,-avx512f"); NULL: the host's when
                              cpu is NULL too, none beyond the CPU's own otherwise */
    int         opt_level; /* 0..3: the new pass manager's default<On> and the code generator's level */
} CpuOptions;

/* A compiled kernel: see the ABI above. */
typedef int32_t (*TdslRawKernel)(void *const *buffers, const int64_t *sizes);

typedef struct CpuJit CpuJit;

/* Compiles every kernel of lm in memory. o may be NULL (host CPU, -O3). Returns NULL with a
 * message in err on failure (an internal error of the back end or of LLVM). */
CpuJit       *cpu_jit_compile(const LoopModule *lm, const CpuOptions *o, StrBuf *err);
/* The entry point of kernel `kernel_name`, or NULL when the module has no such kernel. */
TdslRawKernel cpu_jit_lookup(CpuJit *j, const char *kernel_name);
/* Frees the compiled code and everything else; NULL is allowed. */
void          cpu_jit_free(CpuJit *j);

typedef enum CpuEmitKind {
    CPU_EMIT_LLVM,  /* LLVM IR text, after optimisation */
    CPU_EMIT_ASM,   /* assembly text */
    CPU_EMIT_OBJ,   /* an ELF relocatable object (position independent), as bytes */
} CpuEmitKind;

/* Appends the module in the chosen form to out (text for LLVM/ASM, bytes for OBJ: use
 * out->len, the data may contain NULs). The symbols are the tdsl_raw_K functions above.
 * Returns false with a message in err on failure. */
bool cpu_emit(const LoopModule *lm, const CpuOptions *o, CpuEmitKind kind, StrBuf *out,
              StrBuf *err);

/* The symbol of kernel `kernel_name`'s entry point: "tdsl_raw_" + name. */
void cpu_symbol_name(const char *kernel_name, StrBuf *out);

/* ==== ahead-of-time builds (aot.c; section maintained with the runtime, runtime/rt.h) ==== */

/* Builds the shared library so_path from lm: the kernels' object (cpu_emit, PIC), the
 * manifest `tdsl_manifest` (one signature per line, kernel order) and one typed function
 * per kernel, `int K(const DLTensor *x, ..., DLTensor *y)`, which checks its arguments
 * and calls tdsl_raw_K, linked by the system C compiler (`cc`, or $TDSL_CC) with the
 * standalone runtime (libtdsl_rt.a). The .so depends on libc, libm and, when a kernel has a
 * parallel loop, OpenMP's libgomp only. On failure returns false with a message in err and
 * leaves nothing at so_path. */
bool cpu_build_shared(const LoopModule *lm, const CpuOptions *o, const char *so_path, StrBuf *err);

/* Writes the C header of such a library: an include guard, <dlpack/dlpack.h>, and per
 * kernel its tdsl signature in a comment and the prototype of its typed function. */
bool cpu_write_header(const Module *m, const char *h_path, StrBuf *err);

#endif
