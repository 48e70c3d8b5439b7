/* module.c: the parts of the C API shared by JIT and AOT modules: looking kernels up,
 * calling them (argument checks in check.c), describing them, and freeing a module with
 * everything it owns (descriptors, the IR and the JIT's code or CUDA state, or the dlopen
 * handle). */
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

#include "codegen/cpu/cpu.h"
#include "ir/ir.h"
#include "rt.h"

tdsl_module *rt_module_new(int n)
{
    tdsl_module *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    m->kernels = calloc((size_t)n + 1, sizeof *m->kernels);
    if (!m->kernels) {
        free(m);
        return NULL;
    }
    return m;
}

tdsl_kernel *tdsl_kernel_get(tdsl_module *m, const char *kernel_name)
{
    if (!m) {
        rt_fail(TDSL_ERR_ARG, "tdsl_kernel_get: the module is NULL");
        return NULL;
    }
    if (!kernel_name) {
        rt_fail(TDSL_ERR_ARG, "tdsl_kernel_get: the kernel name is NULL");
        return NULL;
    }
    for (int i = 0; i < m->nkernels; i++)
        if (strcmp(m->kernels[i].sig->name, kernel_name) == 0) return &m->kernels[i];
    /* list what there is, so a typo is easy to see */
    char names[512];
    size_t len = 0;
    names[0] = '\0';
    for (int i = 0; i < m->nkernels && len < sizeof names; i++)
        len += (size_t)snprintf(names + len, sizeof names - len, "%s%s", i ? ", " : "", m->kernels[i].sig->name);
    if (m->nkernels == 0)
        rt_fail(TDSL_ERR_NOT_FOUND, "no kernel named '%s': the module has no kernels", kernel_name);
    else
        rt_fail(TDSL_ERR_NOT_FOUND, "no kernel named '%s' (the module has: %s)", kernel_name, names);
    return NULL;
}

int tdsl_kernel_call(tdsl_kernel *k, DLTensor *const *args, int nargs)
{
    if (!k) return rt_fail(TDSL_ERR_ARG, "tdsl_kernel_call: the kernel is NULL");
    if (k->cuda_launch) return rt_call_cuda_ctx(k->sig, k->cuda_launch, k->cuda_ctx, (const DLTensor *const *)args, nargs);
    if (k->raw_cuda) return rt_call_cuda(k->sig, k->raw_cuda, k->raw_error, (const DLTensor *const *)args, nargs);
    return rt_call(k->sig, k->raw, (const DLTensor *const *)args, nargs);
}

int tdsl_kernel_num_inputs(const tdsl_kernel *k) { return k ? k->sig->nins : -1; }
int tdsl_kernel_num_outputs(const tdsl_kernel *k) { return k ? k->sig->nouts : -1; }
const char *tdsl_kernel_signature(const tdsl_kernel *k) { return k ? k->sig->text : ""; }

void tdsl_module_free(tdsl_module *m)
{
    if (!m) return;
    for (int i = 0; i < m->nkernels; i++) rt_sig_free(m->kernels[i].sig);
    free(m->kernels);
    if (m->jit) cpu_jit_free(m->jit);
    rt_cuda_jit_free(m->cuda);  /* before the IR: its plan points into it */
    if (m->ir) ir_module_free(m->ir);
    if (m->dl) dlclose(m->dl);
    free(m);
}
