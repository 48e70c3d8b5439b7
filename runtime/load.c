/* load.c: tdsl_load, a module built ahead of time.
 *
 * A tdsl .so (codegen/cpu/aot.c builds it) exports `const char *const tdsl_manifest`,
 * one kernel signature per line in kernel order, and `tdsl_raw_K` for each kernel K (a
 * CUDA .so, codegen/cuda/cuda_aot.c, exports the launcher `tdsl_cuda_K` instead).
 * The loader opens it with dlopen (RTLD_NOW | RTLD_LOCAL, so two modules never see each
 * other's symbols), parses the manifest into descriptors and resolves the raw kernels;
 * calls then go through the same checks as JIT modules. */
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "rt.h"

static int count_lines(const char *s)
{
    int n = 0;
    for (const char *p = s; *p;) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        if (len) n++;
        p += len + (nl != NULL);
    }
    return n;
}

int tdsl_load(const char *so_path, tdsl_module **out)
{
    if (!out) return rt_fail(TDSL_ERR_ARG, "tdsl_load: the module pointer is NULL");
    *out = NULL;
    if (!so_path || !*so_path) return rt_fail(TDSL_ERR_ARG, "tdsl_load: the path is NULL or empty");
    struct stat st;
    if (stat(so_path, &st) != 0)
        return rt_fail(TDSL_ERR_LOAD, "tdsl_load: cannot open '%s': %s", so_path, strerror(errno));
    if (!S_ISREG(st.st_mode)) return rt_fail(TDSL_ERR_LOAD, "tdsl_load: '%s' is not a regular file", so_path);

    /* dlopen searches the library path for a name without '/'; the user meant the file */
    char *path = malloc(strlen(so_path) + 3);
    if (!path) return rt_fail(TDSL_ERR_RUNTIME, "tdsl_load: out of memory");
    sprintf(path, "%s%s", strchr(so_path, '/') ? "" : "./", so_path);
    void *dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    free(path);
    if (!dl) {
        const char *why = dlerror();
        return rt_fail(TDSL_ERR_LOAD, "tdsl_load: cannot load '%s': %s", so_path, why ? why : "unknown error");
    }
    dlerror();
    const char *const *manifest = dlsym(dl, "tdsl_manifest");
    if (!manifest || !*manifest) {  /* ("" is fine: a module without kernels) */
        dlclose(dl);
        return rt_fail(TDSL_ERR_LOAD, "tdsl_load: '%s' is not a tdsl module (it has no tdsl_manifest)", so_path);
    }
    tdsl_module *m = rt_module_new(count_lines(*manifest));
    if (!m) {
        dlclose(dl);
        return rt_fail(TDSL_ERR_RUNTIME, "tdsl_load: out of memory");
    }
    m->dl = dl;
    int line = 0;
    for (const char *p = *manifest; *p;) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        const char *text = p;
        p += len + (nl != NULL);
        line++;
        if (!len) continue;
        char err[256];
        RtSig *s = rt_sig_parse(text, len, err, sizeof err);
        if (!s) {
            tdsl_module_free(m);
            return rt_fail(TDSL_ERR_LOAD, "tdsl_load: '%s': bad manifest line %d: %s", so_path, line, err);
        }
        char sym[512];
        RtRawKernel raw = NULL;
        RtCudaRawKernel raw_cuda = NULL;
        if ((size_t)snprintf(sym, sizeof sym, "tdsl_raw_%s", s->name) < sizeof sym)
            raw = (RtRawKernel)dlsym(dl, sym);
        /* a CUDA module (tcc --target=cuda) has launchers instead of raw kernels */
        if (!raw && (size_t)snprintf(sym, sizeof sym, "tdsl_cuda_%s", s->name) < sizeof sym)
            raw_cuda = (RtCudaRawKernel)dlsym(dl, sym);
        if (!raw && !raw_cuda) {
            int rc = rt_fail(TDSL_ERR_LOAD, "tdsl_load: '%s': kernel %s has no symbol tdsl_raw_%s", so_path,
                             s->name, s->name);
            rt_sig_free(s);
            tdsl_module_free(m);
            return rc;
        }
        for (int i = 0; i < m->nkernels; i++) {
            if (strcmp(m->kernels[i].sig->name, s->name) == 0) {
                int rc = rt_fail(TDSL_ERR_LOAD, "tdsl_load: '%s': kernel %s is listed twice", so_path, s->name);
                rt_sig_free(s);
                tdsl_module_free(m);
                return rc;
            }
        }
        const char *(*raw_error)(void) = raw_cuda ? (const char *(*)(void))dlsym(dl, "tdsl_last_error") : NULL;
        m->kernels[m->nkernels++] = (tdsl_kernel){m, s, raw, raw_cuda, raw_error, NULL, NULL};
    }
    *out = m;
    return TDSL_OK;
}
