/* pipeline: the loop-level passes of compiled code, in order, one call per line.
 *
 * Every path to compiled code (tcc, the JIT's tdsl_compile, AOT builds, the tests) gets its
 * loop IR from ir_lower_module, so a pass added here reaches all of them. Tensor-level
 * passes (pass_fuse) run before it, on the Module; pass_gpu_map after it, for CUDA only. */
#include "passes.h"

LoopModule *ir_lower_module(Module *m, const LowerOptions *o)
{
    LoopModule *lm = pass_lower(m);
    if (!(o && o->no_fuse)) pass_fuse_loops(lm, o ? o->explain : NULL);
    if (!(o && o->gpu)) pass_interchange(lm);
    pass_parallelize(lm);
    /* after parallelize: the i-block loop keeps i's verdict (register_block.c says why) */
    if (!(o && o->gpu)) pass_register_block(lm);
    return lm;
}
