/* jit.c: tdsl_compile, source text to callable kernels in memory.
 *
 * The pipeline is the compiler's: fe_compile_source -> ir_verify -> ir_lower_module ->
 * loop_verify -> cpu_jit_compile, or for TDSL_TARGET_CUDA -> pass_gpu_map -> loop_verify ->
 * rt_cuda_jit_new (CUDA C and its PTX through NVRTC, in memory; runtime/cuda_jit.c, whose
 * launcher follows each kernel's launch plan when it is called). Each kernel's descriptor
 * comes from printing its signature (rt_format_signature) and parsing it back, exactly as
 * an AOT module's manifest is read, so both kinds of module are checked by the same code.
 * Everything here is per call: the diagnostics sink, the IR module and the JIT belong to
 * the new module, so several threads may compile at once. */
#include <stdlib.h>
#include <string.h>

#include "codegen/cpu/cpu.h"
#include "codegen/cuda/cuda.h"
#include "frontend/frontend.h"
#include "ir/ir.h"
#include "passes/passes.h"
#include "rt.h"

/* Adds kernel k's descriptor and its code (raw for the CPU, cuda_ctx for CUDA) to m; TDSL_OK
 * or an error code. */
static int add_kernel(tdsl_module *m, const Kernel *k, RtRawKernel raw, void *cuda_ctx)
{
    StrBuf text = {0};
    rt_format_signature(k, &text);
    char err[256];
    RtSig *s = rt_sig_parse(sb_cstr(&text), text.len, err, sizeof err);
    int rc = TDSL_OK;
    if (!s) {
        rc = rt_fail(TDSL_ERR_COMPILE, "internal error: the signature '%s' does not parse: %s", sb_cstr(&text), err);
    } else if (s->nsizes != k->nsizes) {
        rc = rt_fail(TDSL_ERR_COMPILE, "internal error: the signature '%s' has %d size names, the kernel %d",
                     s->text, s->nsizes, k->nsizes);
    } else {
        for (int i = 0; i < k->nsizes && rc == TDSL_OK; i++)
            if (strcmp(s->sizes[i], k->sizes[i]->name) != 0)
                rc = rt_fail(TDSL_ERR_COMPILE, "internal error: the signature '%s' orders its size names "
                             "differently from the kernel", s->text);
    }
    sb_free(&text);
    if (rc != TDSL_OK) {
        rt_sig_free(s);
        return rc;
    }
    m->kernels[m->nkernels++] =
        (tdsl_kernel){m, s, raw, NULL, NULL, cuda_ctx ? rt_cuda_jit_launch : NULL, cuda_ctx};
    return TDSL_OK;
}

int tdsl_compile(const char *src, const char *name, const tdsl_options *o, tdsl_module **out)
{
    if (!out) return rt_fail(TDSL_ERR_ARG, "tdsl_compile: the module pointer is NULL");
    *out = NULL;
    if (!src) return rt_fail(TDSL_ERR_ARG, "tdsl_compile: the source is NULL");
    if (o && (o->ninclude < 0 || (o->ninclude > 0 && !o->include_dirs)))
        return rt_fail(TDSL_ERR_ARG, "tdsl_compile: include_dirs is NULL or ninclude is negative");
    if (o && (o->opt_level < -1 || o->opt_level > 3))
        return rt_fail(TDSL_ERR_ARG, "tdsl_compile: opt_level %d is not -1 (default) or 0..3", o->opt_level);
    if (o && o->include_dirs)
        for (int i = 0; i < o->ninclude; i++)
            if (!o->include_dirs[i]) return rt_fail(TDSL_ERR_ARG, "tdsl_compile: include_dirs[%d] is NULL", i);
    int target = o ? o->target : TDSL_TARGET_CPU;
    if (target != TDSL_TARGET_CPU && target != TDSL_TARGET_CUDA)
        return rt_fail(TDSL_ERR_ARG, "tdsl_compile: target %d is not TDSL_TARGET_CPU (0) or TDSL_TARGET_CUDA (1)",
                       target);
    const char *arch = o ? o->arch : NULL;
    if (arch && target != TDSL_TARGET_CUDA)
        return rt_fail(TDSL_ERR_ARG, "tdsl_compile: arch '%s' is only for target TDSL_TARGET_CUDA", arch);
    if (arch && strcmp(arch, "sm_80") != 0 && strcmp(arch, "sm_90") != 0)
        return rt_fail(TDSL_ERR_ARG, "tdsl_compile: unknown CUDA architecture '%s'; available: sm_80 (NULL, the "
                       "default; its PTX also runs on sm_90) and sm_90", arch);

    DiagSink d;
    diag_init(&d, NULL);
    FeOptions fo = {o ? o->include_dirs : NULL, o ? o->ninclude : 0, NULL};
    Module *ir = fe_compile_source(name ? name : "<source>", src, strlen(src), &fo, &d);
    if (!ir || d.nerrors) {
        int rc = rt_fail_text(TDSL_ERR_COMPILE, "", d.log.len ? sb_cstr(&d.log) : "compilation failed");
        if (ir) ir_module_free(ir);
        diag_free(&d);
        return rc;
    }
    diag_free(&d);

    StrBuf err = {0};
    int rc = TDSL_OK;
    tdsl_module *m = NULL;
    if (!ir_verify(ir, &err)) {
        rc = rt_fail_text(TDSL_ERR_COMPILE, "internal error: the front end produced invalid IR:\n", sb_cstr(&err));
        goto fail;
    }
    if (!(o && o->no_fuse)) {
        pass_fuse(ir, NULL);
        if (!ir_verify(ir, &err)) {
            rc = rt_fail_text(TDSL_ERR_COMPILE, "internal error: fusion produced invalid IR:\n", sb_cstr(&err));
            goto fail;
        }
    }
    /* the CUDA back end takes the loops unfused (no heap inside a kernel; docs/cuda.md) */
    LoopModule *lm = ir_lower_module(ir, &(LowerOptions){.no_fuse = (o && o->no_fuse) || target == TDSL_TARGET_CUDA,
                                                         .gpu = target == TDSL_TARGET_CUDA});
    if (!loop_verify(lm, &err)) {
        rc = rt_fail_text(TDSL_ERR_COMPILE, "internal error: lowering produced invalid loop IR:\n", sb_cstr(&err));
        goto fail;
    }
    m = rt_module_new(ir->nkernels);
    if (!m) {
        rc = rt_fail(TDSL_ERR_RUNTIME, "tdsl_compile: out of memory");
        goto fail;
    }
    m->ir = ir;
    if (target == TDSL_TARGET_CUDA) {
        LoopModule *g = pass_gpu_map(ir, lm);
        if (!loop_verify(g, &err)) {
            rc = rt_fail_text(TDSL_ERR_COMPILE, "internal error: gpu_map produced invalid loop IR:\n", sb_cstr(&err));
            goto fail;
        }
        CudaOptions cu = {arch ? arch : "sm_80"};
        m->cuda = rt_cuda_jit_new(g, &cu, &err);
        if (!m->cuda) {
            rc = rt_fail_text(TDSL_ERR_COMPILE, "compiling for CUDA failed: ", err.len ? sb_cstr(&err) : "unknown error");
            goto fail;
        }
    } else {
        CpuOptions co = {o ? o->cpu : NULL, o ? o->features : NULL, o && o->opt_level >= 0 ? o->opt_level : 2};
        m->jit = cpu_jit_compile(lm, &co, &err);
        if (!m->jit) {
            rc = rt_fail_text(TDSL_ERR_COMPILE, "code generation failed: ", err.len ? sb_cstr(&err) : "unknown error");
            goto fail;
        }
    }
    for (int i = 0; i < ir->nkernels; i++) {
        const Kernel *k = ir->kernels[i];
        RtRawKernel raw = m->jit ? cpu_jit_lookup(m->jit, k->name) : NULL;
        void *cuda_ctx = m->cuda ? rt_cuda_jit_kernel(m->cuda, k->name) : NULL;
        if (!raw && !cuda_ctx) {
            rc = rt_fail(TDSL_ERR_COMPILE, "internal error: the JIT has no code for kernel %s", k->name);
            goto fail;
        }
        rc = add_kernel(m, k, raw, cuda_ctx);
        if (rc != TDSL_OK) goto fail;
    }
    sb_free(&err);
    *out = m;
    return TDSL_OK;

fail:
    sb_free(&err);
    if (m) tdsl_module_free(m);  /* frees ir too */
    else ir_module_free(ir);
    return rc;
}
