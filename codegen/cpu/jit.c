/* jit: in-memory compilation of a loop module with ORC LLJIT.
 *
 * cpu_jit_compile builds the LLVM module in a fresh ThreadSafeContext (one per call, so
 * several threads may compile at once), optimises it, hands it to a new LLJIT whose target
 * machine is the one it was optimised for, lets the JIT resolve the C library (libm, libmvec's
 * vector functions, aligned_alloc, free, memcpy ...) from the running process and the
 * runtime's tdsl_parallel_for from its address here (executables do not export their
 * symbols, and the JIT must not depend on how its host was linked), and looks up every kernel
 * right away: code generation and linking happen inside cpu_jit_compile, so an unresolved
 * symbol is reported there, and cpu_jit_lookup is a plain table search that never calls
 * into LLVM. No temporary files. cpu_jit_free disposes of the JIT, which frees the code. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

#include "runtime/rt.h"

#include <llvm-c/Error.h>
#include <llvm-c/LLJIT.h>
#include <llvm-c/Orc.h>

struct CpuJit {
    LLVMOrcLLJITRef jit;     /* owns the code */
    int             n;       /* kernels */
    char          **names;   /* kernel names (heap) */
    TdslRawKernel  *fns;     /* their entry points */
    StrBuf          errors;  /* what the execution session reported (unresolved symbols) */
};

/* The session's error reporter: keep the message for cpu_jit_compile instead of stderr. */
static void report_error(void *ctx, LLVMErrorRef e)
{
    StrBuf *sb = ctx;
    if (sb->len) sb_puts(sb, "; ");
    cg_take_error(e, sb);
}

void cpu_jit_free(CpuJit *j)
{
    if (!j) return;
    if (j->jit) {
        LLVMErrorRef e = LLVMOrcDisposeLLJIT(j->jit);
        if (e) LLVMConsumeError(e);
    }
    for (int i = 0; i < j->n; i++) free(j->names[i]);
    free(j->names);
    free(j->fns);
    sb_free(&j->errors);
    free(j);
}

/* Takes ownership of tm (even on failure). */
static bool make_jit(CpuJit *j, LLVMTargetMachineRef tm, StrBuf *err)
{
    LLVMOrcLLJITBuilderRef jb = LLVMOrcCreateLLJITBuilder();
    LLVMOrcLLJITBuilderSetJITTargetMachineBuilder(jb, LLVMOrcJITTargetMachineBuilderCreateFromTargetMachine(tm));
    LLVMErrorRef e = LLVMOrcCreateLLJIT(&j->jit, jb);  /* consumes jb */
    if (e) {
        j->jit = NULL;
        sb_puts(err, "cpu: cannot create the JIT: ");
        cg_take_error(e, err);
        return false;
    }
    LLVMOrcExecutionSessionSetErrorReporter(LLVMOrcLLJITGetExecutionSession(j->jit), report_error,
                                            &j->errors);
    LLVMOrcDefinitionGeneratorRef gen;
    e = LLVMOrcCreateDynamicLibrarySearchGeneratorForProcess(&gen, LLVMOrcLLJITGetGlobalPrefix(j->jit),
                                                             NULL, NULL);
    if (e) {
        sb_puts(err, "cpu: cannot search the process for symbols: ");
        cg_take_error(e, err);
        return false;
    }
    LLVMOrcJITDylibAddGenerator(LLVMOrcLLJITGetMainJITDylib(j->jit), gen);
    /* the thread pool generated code calls (llvm_parallel.c), defined at its address */
    LLVMJITSymbolFlags flags = {LLVMJITSymbolGenericFlagsExported | LLVMJITSymbolGenericFlagsCallable, 0};
    LLVMOrcCSymbolMapPair pfor = {LLVMOrcLLJITMangleAndIntern(j->jit, "tdsl_parallel_for"),
                                  {(LLVMOrcExecutorAddress)(uintptr_t)&tdsl_parallel_for, flags}};
    e = LLVMOrcJITDylibDefine(LLVMOrcLLJITGetMainJITDylib(j->jit), LLVMOrcAbsoluteSymbols(&pfor, 1));
    if (e) {
        sb_puts(err, "cpu: cannot define tdsl_parallel_for in the JIT: ");
        cg_take_error(e, err);
        return false;
    }
    return true;
}

CpuJit *cpu_jit_compile(const LoopModule *lm, const CpuOptions *o, StrBuf *err)
{
    CpuJit *j = calloc(1, sizeof *j);
    if (!j) td_internal_error(__FILE__, __LINE__, "out of memory");
    LLVMTargetMachineRef tm = cg_target_machine(o, false, err);
    if (!tm) {
        free(j);
        return NULL;
    }
    LLVMOrcThreadSafeContextRef tsc = LLVMOrcCreateNewThreadSafeContext();
    LLVMModuleRef m = cg_emit_module(LLVMOrcThreadSafeContextGetContext(tsc), lm, tm, true, err);
    if (!m || !cg_optimize(m, tm, o, err)) {
        if (m) LLVMDisposeModule(m);
        LLVMOrcDisposeThreadSafeContext(tsc);
        LLVMDisposeTargetMachine(tm);
        free(j);
        return NULL;
    }
    bool ok = make_jit(j, tm, err);  /* the JIT compiles with the machine m was optimised for */
    LLVMOrcThreadSafeModuleRef tsm = LLVMOrcCreateNewThreadSafeModule(m, tsc);
    LLVMOrcDisposeThreadSafeContext(tsc);  /* the module keeps the context alive */
    if (ok) {
        LLVMErrorRef e = LLVMOrcLLJITAddLLVMIRModule(j->jit, LLVMOrcLLJITGetMainJITDylib(j->jit), tsm);
        if (e) {
            sb_puts(err, "cpu: the JIT refused the module: ");
            cg_take_error(e, err);
            ok = false;
        }
    } else {
        LLVMOrcDisposeThreadSafeModule(tsm);
    }

    j->names = calloc((size_t)lm->nfuncs + 1, sizeof *j->names);
    j->fns = calloc((size_t)lm->nfuncs + 1, sizeof *j->fns);
    if (!j->names || !j->fns) td_internal_error(__FILE__, __LINE__, "out of memory");
    StrBuf sym = {0};
    for (int i = 0; ok && i < lm->nfuncs; i++) {
        const char *name = lm->funcs[i]->kernel->name;
        sb_clear(&sym);
        cpu_symbol_name(name, &sym);
        LLVMOrcExecutorAddress addr = 0;
        LLVMErrorRef e = LLVMOrcLLJITLookup(j->jit, &addr, sb_cstr(&sym));
        if (e || !addr) {
            sb_printf(err, "cpu: cannot link kernel %s: ", name);
            if (e) cg_take_error(e, err);
            if (j->errors.len) sb_printf(err, " (%s)", sb_cstr(&j->errors));
            ok = false;
            break;
        }
        j->names[j->n] = strdup(name);
        if (!j->names[j->n]) td_internal_error(__FILE__, __LINE__, "out of memory");
        /* an address from the JIT is a function of this type by construction (cpu.h) */
        j->fns[j->n++] = (TdslRawKernel)(uintptr_t)addr;
    }
    sb_free(&sym);
    if (!ok) {
        cpu_jit_free(j);
        return NULL;
    }
    return j;
}

TdslRawKernel cpu_jit_lookup(CpuJit *j, const char *kernel_name)
{
    for (int i = 0; j && i < j->n; i++)
        if (strcmp(j->names[i], kernel_name) == 0) return j->fns[i];
    return NULL;
}
