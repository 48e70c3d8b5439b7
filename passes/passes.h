/* passes: transformations of the tensor IR and the loop IR, one pass per file.
 *
 * The pipeline of compiled code (driver, runtime and AOT builds alike):
 *     pass_fuse         tensor IR: element-wise producers computed inside their readers
 *     ir_lower_module   tensor IR to loop IR, then the loop passes (pipeline.c; declared with
 *                       the loop IR in ir.h):
 *       pass_lower        one loop nest per definition (lower.c)
 *       pass_fuse_loops   adjacent loops merged, temporaries contracted (fuse_loops.c; CPU only)
 *       pass_interchange  contractions accumulate a row of outputs at once (interchange.c; CPU only)
 *       pass_parallelize  outer loops across CPU threads (parallelize.c)
 *       pass_register_block  contractions keep MR x NR outputs in registers (register_block.c; CPU only)
 *     pass_gpu_map      for CUDA only: the loop IR scheduled onto blocks and threads
 * The reference interpreter runs the tensor IR before any pass. Tiling and the other
 * passes of ARCHITECTURE.md join here, each with one entry point. */
#ifndef TDSL_PASSES_H
#define TDSL_PASSES_H

#include "../ir/ir.h"

/* ---- fuse.c ---------------------------------------------------------------------------------- */

/* Vertical fusion. Returns the number of definitions fused away. When explain is non-NULL,
 * appends one line per definition saying whether it was fused or why not. */
int pass_fuse(Module *m, StrBuf *explain);

/* ---- lower.c, fuse_loops.c, interchange.c, parallelize.c, register_block.c: the loop passes -- */

/* Tensor IR to loop IR, every loop serial. Never fails on verified IR. */
LoopModule *pass_lower(Module *m);

/* Loop fusion: merges adjacent loops whose iterations can run together, then shrinks each
 * temporary whose accesses all lie in one iteration of a loop to that iteration's slice,
 * allocated inside the loop. Returns the number of merges. When explain is non-NULL,
 * appends one line per pair of adjacent loops (merged or why not) and per contraction. */
int pass_fuse_loops(LoopModule *lm, StrBuf *explain);

/* Loop interchange of contractions: a definition's innermost index loop j around a sum (prod,
 * max, min) over k whose loads read rows contiguously along j becomes a loop over k around
 * a loop over j that accumulates a row of outputs, each summed in the same order as before.
 * Only where legal and the j loads are contiguous (interchange.c says when). Returns the
 * number of j loops rewritten. */
int pass_interchange(LoopModule *lm);

/* Marks LOOP_PARALLEL the loops that may run across threads (safe, and worth it unless a
 * schedule's `parallel` directives choose). Returns the number of loops it marked. */
int pass_parallelize(LoopModule *lm);

/* Register blocking of interchange's row form: rows i in blocks of MR, columns j in blocks
 * of NR, the MR x NR accumulators in a constant-size stack buffer that LLVM keeps in vector
 * registers; remainders keep the row form. Every output sums in the same order as before.
 * Runs after pass_parallelize: the block loop keeps the kind of the i loop it replaces.
 * Returns the number of i loops blocked. */
int pass_register_block(LoopModule *lm);

/* ---- gpu_map.c (CUDA back end) ---------------------------------------------------------- */

/* Threads per block of every kernel gpu_map makes (a single loop is split into blocks of
 * this many threads; codegen/cuda launches at most this many). */
enum { GPU_THREADS_PER_BLOCK = 256 };

/* The GPU schedule: a new LoopModule in m's arena (lm, lowered from m, is left as it was)
 * whose host level holds only function-level allocations and kernel roots, chains of
 * LOOP_GPU_BLOCK loops, with LOOP_GPU_THREAD loops and barriers inside. gpu_map.c describes
 * the rules and the shape codegen/cuda relies on. Never fails on verified loop IR. */
LoopModule *pass_gpu_map(Module *m, const LoopModule *lm);

#endif
