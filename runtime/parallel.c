/* parallel.c: the thread pool of compiled kernels, which is OpenMP's (libgomp).
 *
 * Generated code outlines the body of a LOOP_PARALLEL loop into a function
 * `body(closure, begin, end)` that runs the iterations [begin, end), and calls
 * tdsl_parallel_for(n, body, &closure) (codegen/cpu/llvm_gen.c). The range is cut into at
 * most omp_get_max_threads() contiguous chunks of nearly equal size, one per thread
 * (`schedule(static)`), so which thread runs an iteration depends only on n and the thread
 * count, and each iteration is run exactly once, by one thread, with the same code as
 * serially. Chunk edges fall on multiples of CHUNK_ALIGN iterations when the range allows:
 * when the parallel loop is itself vectorised, each chunk then splits into the same vector
 * and scalar-remainder iterations as the serial loop (only the range's last iterations are
 * scalar), so results are the same bits at every thread count (vector and scalar math
 * functions may differ in the last bit). The closure is read-only and lives on the caller's stack: the call returns only
 * when every chunk is done.
 *
 * No parallel region is entered when it cannot help: one iteration, one thread
 * (OMP_NUM_THREADS=1, tdsl_set_num_threads(1)), or inside a parallel region that may not
 * nest (a kernel called from the user's own `omp parallel`, with OpenMP's default of one
 * active level): the body is then called directly on the whole range.
 *
 * This file is in both runtimes: libtdsl_rt.a (AOT libraries, hidden like the rest) and
 * the host tools' copy, whose address the JIT hands to the code it links
 * (codegen/cpu/jit.c). Both call the one libgomp of the process, so the thread count is
 * OpenMP's: OMP_NUM_THREADS, or omp_set_num_threads in the calling thread. */
#include <omp.h>

#include "rt.h"

/* A multiple of every vector width times interleave LLVM picks for these loops (at most 16
 * f32 lanes in a zmm register, interleaved up to 4 times). */
enum { CHUNK_ALIGN = 64 };

void tdsl_parallel_for(int64_t n, RtParallelBody body, void *closure)
{
    if (n <= 0) return;
    int64_t chunks = omp_get_max_threads();
    if (chunks > n) chunks = n;
    if (chunks <= 1 || omp_get_active_level() >= omp_get_max_active_levels()) {
        body(closure, 0, n);
        return;
    }
    /* Cut [0, n) into `chunks` ranges of `blocks / chunks` (+1 for the first blocks % chunks)
     * blocks of `unit` iterations, the last range ending at n: unit is CHUNK_ALIGN when
     * every chunk still gets a block, else 1 (a short range: its loop is not vectorised
     * across chunks in a way that matters, and every thread gets work). */
    int64_t unit = n / CHUNK_ALIGN >= chunks ? CHUNK_ALIGN : 1;
    int64_t blocks = n / unit;
    int64_t q = blocks / chunks, r = blocks % chunks;
#pragma omp parallel for schedule(static) num_threads((int)chunks)
    for (int64_t c = 0; c < chunks; c++) {
        int64_t first = c * q + (c < r ? c : r);
        int64_t begin = first * unit;
        int64_t end = c == chunks - 1 ? n : (first + q + (c < r ? 1 : 0)) * unit;
        body(closure, begin, end);
    }
}

#ifndef TDSL_RT_STANDALONE
/* Not in AOT libraries: a host sets the thread count through its own runtime (or OpenMP). */
int tdsl_set_num_threads(int n)
{
    if (n < 1) return rt_fail(TDSL_ERR_ARG, "tdsl_set_num_threads: the thread count must be at least 1, not %d", n);
    omp_set_num_threads(n);
    return TDSL_OK;
}
#endif
