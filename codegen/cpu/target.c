/* target: the LLVM side of the CPU back end that is not code generation proper.
 *
 *   - initialises the native target once per process (pthread_once: LLVM's target registry
 *     is global, everything after it is per call), and opens glibc's libmvec if present;
 *   - makes target machines for the host CPU and its features, or for --cpu / --features;
 *   - runs the new pass manager's default<O0..3> pipeline with the target's cost model;
 *   - cpu_emit: LLVM IR text, assembly or an object file for ahead-of-time builds.
 *
 * Every call makes its own LLVM context and target machine, so calls from several threads
 * never share mutable LLVM state. */
#include "internal.h"

#include <dlfcn.h>
#include <pthread.h>
#include <string.h>

#include <llvm-c/Analysis.h>
#include <llvm-c/Error.h>
#include <llvm-c/Target.h>
#include <llvm-c/Transforms/PassBuilder.h>

/* ---- initialisation ---------------------------------------------------------------------- */

static pthread_once_t target_once = PTHREAD_ONCE_INIT;
static bool target_ok;   /* written once, under target_once */
static void *libmvec;    /* glibc's vector math library, or NULL; written once, likewise */

static void target_init_once(void)
{
    target_ok = !LLVMInitializeNativeTarget() && !LLVMInitializeNativeAsmPrinter() &&
                !LLVMInitializeNativeAsmParser();
    /* global, so the JIT's search of the process finds its symbols; never closed: JIT'd
     * code may call it until the process ends */
    libmvec = dlopen("libmvec.so.1", RTLD_NOW | RTLD_GLOBAL);
}

bool cg_libmvec_has(const char *name)
{
    pthread_once(&target_once, target_init_once);
    return libmvec && dlsym(libmvec, name);
}

bool cg_target_init(StrBuf *err)
{
    pthread_once(&target_once, target_init_once);
    if (!target_ok) sb_puts(err, "cpu: LLVM has no native target for this machine");
    return target_ok;
}

void cg_take_error(LLVMErrorRef e, StrBuf *err)
{
    char *msg = LLVMGetErrorMessage(e);  /* consumes e */
    sb_puts(err, msg);
    LLVMDisposeErrorMessage(msg);
}

/* ---- target machines --------------------------------------------------------------------- */

static LLVMCodeGenOptLevel codegen_level(int opt)
{
    return opt <= 0 ? LLVMCodeGenLevelNone : opt == 1 ? LLVMCodeGenLevelLess
         : opt == 2 ? LLVMCodeGenLevelDefault : LLVMCodeGenLevelAggressive;
}

static int opt_level(const CpuOptions *o)
{
    if (!o) return 3;
    return o->opt_level < 0 ? 0 : o->opt_level > 3 ? 3 : o->opt_level;
}

LLVMTargetMachineRef cg_target_machine(const CpuOptions *o, bool pic, StrBuf *err)
{
    if (!cg_target_init(err)) return NULL;
    char *triple = LLVMGetDefaultTargetTriple();
    LLVMTargetRef target;
    char *msg = NULL;
    if (LLVMGetTargetFromTriple(triple, &target, &msg)) {
        sb_printf(err, "cpu: no LLVM target for %s: %s", triple, msg ? msg : "?");
        LLVMDisposeMessage(msg);
        LLVMDisposeMessage(triple);
        return NULL;
    }
    /* NULL cpu: the host's name, and its features unless the caller gives some. */
    char *host_cpu = NULL, *host_features = NULL;
    const char *cpu = o ? o->cpu : NULL, *features = o ? o->features : NULL;
    if (!cpu) {
        cpu = host_cpu = LLVMGetHostCPUName();
        if (!features) features = host_features = LLVMGetHostCPUFeatures();
    }
    if (!features) features = "";
    LLVMTargetMachineRef tm = LLVMCreateTargetMachine(
        target, triple, cpu, features, codegen_level(opt_level(o)),
        pic ? LLVMRelocPIC : LLVMRelocDefault, pic ? LLVMCodeModelDefault : LLVMCodeModelJITDefault);
    if (!tm) sb_printf(err, "cpu: LLVM cannot make a target machine for cpu '%s'", cpu);
    LLVMDisposeMessage(host_cpu);
    LLVMDisposeMessage(host_features);
    LLVMDisposeMessage(triple);
    return tm;
}

/* ---- optimisation ------------------------------------------------------------------------- */

bool cg_optimize(LLVMModuleRef m, LLVMTargetMachineRef tm, const CpuOptions *o, StrBuf *err)
{
    static const char *const pipelines[4] = {"default<O0>", "default<O1>", "default<O2>",
                                             "default<O3>"};
    int level = opt_level(o);
    LLVMPassBuilderOptionsRef po = LLVMCreatePassBuilderOptions();
    /* What clang enables at each level: the vectorisers from -O2 on. */
    LLVMPassBuilderOptionsSetLoopVectorization(po, level >= 2);
    LLVMPassBuilderOptionsSetSLPVectorization(po, level >= 2);
    LLVMPassBuilderOptionsSetLoopInterleaving(po, level >= 2);
    LLVMPassBuilderOptionsSetLoopUnrolling(po, level >= 1);
    LLVMErrorRef e = LLVMRunPasses(m, pipelines[level], tm, po);
    LLVMDisposePassBuilderOptions(po);
    if (e) {
        sb_puts(err, "cpu: LLVM optimisation failed: ");
        cg_take_error(e, err);
        return false;
    }
    return true;
}

/* ---- ahead-of-time output ------------------------------------------------------------------ */

bool cpu_emit(const LoopModule *lm, const CpuOptions *o, CpuEmitKind kind, StrBuf *out,
              StrBuf *err)
{
    LLVMTargetMachineRef tm = cg_target_machine(o, true, err);
    if (!tm) return false;
    LLVMContextRef ctx = LLVMContextCreate();
    /* no libmvec variants: a .so built from this links libc and libm only */
    LLVMModuleRef m = cg_emit_module(ctx, lm, tm, false, err);
    bool ok = m && cg_optimize(m, tm, o, err);
    if (ok) {
        switch (kind) {
        case CPU_EMIT_LLVM: {
            char *text = LLVMPrintModuleToString(m);
            sb_puts(out, text);
            LLVMDisposeMessage(text);
            break;
        }
        case CPU_EMIT_ASM:
        case CPU_EMIT_OBJ: {
            char *msg = NULL;
            LLVMMemoryBufferRef buf = NULL;
            LLVMCodeGenFileType ft = kind == CPU_EMIT_ASM ? LLVMAssemblyFile : LLVMObjectFile;
            if (LLVMTargetMachineEmitToMemoryBuffer(tm, m, ft, &msg, &buf)) {
                sb_printf(err, "cpu: LLVM code generation failed: %s", msg ? msg : "?");
                ok = false;
            } else {
                sb_putn(out, LLVMGetBufferStart(buf), LLVMGetBufferSize(buf));
                LLVMDisposeMemoryBuffer(buf);
            }
            LLVMDisposeMessage(msg);
            break;
        }
        }
    }
    if (m) LLVMDisposeModule(m);
    LLVMContextDispose(ctx);
    LLVMDisposeTargetMachine(tm);
    return ok;
}

void cpu_symbol_name(const char *kernel_name, StrBuf *out)
{
    sb_printf(out, "tdsl_raw_%s", kernel_name);
}
