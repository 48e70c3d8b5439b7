/* cuda.c: the CUDA driver API through dlopen, for the launchers of CUDA modules built ahead
 * of time (codegen/cuda/cuda_aot.c generates them) or JIT-compiled (runtime/cuda_jit.c), and
 * the launch-dimension rule both those launchers and codegen/cuda (for an emulator) use.
 *
 * Part of the standalone runtime (libc only): the driver library `libcuda.so.1` is opened
 * at the first call of a kernel, never at load time, so a CUDA .so loads anywhere and each
 * call on a machine without a driver or a device fails with a message that says so
 * ("no CUDA driver found (libcuda.so.1): ..."). The driver's types are declared here (the
 * few this file uses, with the ABI of cuda.h), so building needs no CUDA toolkit.
 *
 * Per .so one RtCudaModule holds the PTX, the driver's entry points, and per device the
 * retained primary context and the module loaded from the PTX (JIT-compiled by the driver
 * for that device). A call: rt_cuda_begin (driver, device, context pushed, module),
 * rt_cuda_alloc (one device allocation for the temporaries), rt_cuda_zero and
 * rt_cuda_launch in plan order on the legacy default stream, rt_cuda_end (synchronise,
 * free, pop). rt_cuda_copy_to_device/host move a host's data in a call's context (tcc run).
 * An AOT library's module stays loaded until the process exits: unloading it from a library
 * destructor could run after the driver shut down. A JIT module's is released with the
 * module (rt_cuda_module_release). */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rt.h"

/* ---- the driver API, as cuda.h declares it (CUDA 12/13, 64-bit) ---------------------------- */

typedef int CUresult;                 /* 0: CUDA_SUCCESS */
typedef int CUdevice;
typedef struct CUctx_st *CUcontext;
typedef struct CUmod_st *CUmodule;
typedef struct CUfunc_st *CUfunction;
typedef struct CUstream_st *CUstream;
typedef unsigned long long CUdeviceptr;

enum {
    CU_SUCCESS = 0,
    CU_JIT_ERROR_LOG_BUFFER = 5,
    CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES = 6,
    TEMP_ALIGN = 256,    /* cuMemAlloc's alignment: every temporary starts on one */
    JIT_LOG_BYTES = 4096,
};

/* The entry points, by their exported (versioned) names; the order is RtCudaModule.fn's. */
enum {
    FN_INIT, FN_DEVICE_GET_COUNT, FN_DEVICE_GET, FN_PRIMARY_CTX_RETAIN, FN_CTX_PUSH, FN_CTX_POP,
    FN_MODULE_LOAD, FN_MODULE_GET_FUNCTION, FN_LAUNCH, FN_MEM_ALLOC, FN_MEM_FREE, FN_MEMSET,
    FN_CTX_SYNCHRONIZE, FN_GET_ERROR_NAME, FN_GET_ERROR_STRING, FN_MEMCPY_HTOD, FN_MEMCPY_DTOH,
    FN_MODULE_UNLOAD, FN_PRIMARY_CTX_RELEASE, FN_COUNT
};
static const char *const fn_names[FN_COUNT] = {
    "cuInit", "cuDeviceGetCount", "cuDeviceGet", "cuDevicePrimaryCtxRetain", "cuCtxPushCurrent_v2",
    "cuCtxPopCurrent_v2", "cuModuleLoadDataEx", "cuModuleGetFunction", "cuLaunchKernel",
    "cuMemAlloc_v2", "cuMemFree_v2", "cuMemsetD8_v2", "cuCtxSynchronize", "cuGetErrorName",
    "cuGetErrorString", "cuMemcpyHtoD_v2", "cuMemcpyDtoH_v2", "cuModuleUnload",
    "cuDevicePrimaryCtxRelease_v2",
};
_Static_assert((int)FN_COUNT <= (int)RT_CUDA_MAX_FNS, "RtCudaModule.fn is too small");

typedef CUresult (*InitFn)(unsigned);
typedef CUresult (*DeviceGetCountFn)(int *);
typedef CUresult (*DeviceGetFn)(CUdevice *, int);
typedef CUresult (*PrimaryCtxRetainFn)(CUcontext *, CUdevice);
typedef CUresult (*CtxPushFn)(CUcontext);
typedef CUresult (*CtxPopFn)(CUcontext *);
typedef CUresult (*ModuleLoadFn)(CUmodule *, const void *, unsigned, int *, void **);
typedef CUresult (*ModuleGetFunctionFn)(CUfunction *, CUmodule, const char *);
typedef CUresult (*LaunchFn)(CUfunction, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned,
                             CUstream, void **, void **);
typedef CUresult (*MemAllocFn)(CUdeviceptr *, size_t);
typedef CUresult (*MemFreeFn)(CUdeviceptr);
typedef CUresult (*MemsetFn)(CUdeviceptr, unsigned char, size_t);
typedef CUresult (*CtxSynchronizeFn)(void);
typedef CUresult (*GetErrorTextFn)(CUresult, const char **);
typedef CUresult (*MemcpyHtoDFn)(CUdeviceptr, const void *, size_t);
typedef CUresult (*MemcpyDtoHFn)(void *, CUdeviceptr, size_t);
typedef CUresult (*ModuleUnloadFn)(CUmodule);
typedef CUresult (*PrimaryCtxReleaseFn)(CUdevice);

/* ---- launch dimensions ------------------------------------------------------------------------- */

void rt_cuda_launch_dims(int64_t block_work, int64_t thread_work, bool one_row, unsigned grid[3],
                         unsigned block[3])
{
    const int64_t max_threads = RT_CUDA_BLOCK_THREADS, max_grid = (int64_t)1 << 20;
    if (block_work < 0) block_work = 0;
    int64_t bx = max_threads;
    if (thread_work >= 0 && thread_work < max_threads) bx = thread_work <= 32 ? 32 : (thread_work + 31) / 32 * 32;
    int64_t by = one_row ? 1 : max_threads / bx;
    if (by > block_work) by = block_work;
    if (by < 1) by = 1;
    int64_t gx = (block_work + by - 1) / by;
    if (gx > max_grid) gx = max_grid;
    if (gx < 1) gx = 1;
    grid[0] = (unsigned)gx;
    grid[1] = grid[2] = 1;
    block[0] = (unsigned)bx;
    block[1] = (unsigned)by;
    block[2] = 1;
}

bool rt_cuda_bytes(const int64_t *dims, int rank, int bits, size_t *bytes)
{
    uint64_t n = 1, nbits;
    for (int a = 0; a < rank; a++) {
        if (dims[a] < 0 || __builtin_mul_overflow(n, (uint64_t)dims[a], &n)) return false;
    }
    if (__builtin_mul_overflow(n, (uint64_t)bits, &nbits)) return false;
    *bytes = (size_t)(nbits / 8 + (nbits % 8 != 0));
    return true;
}

/* ---- the driver --------------------------------------------------------------------------------- */

/* "CUDA_ERROR_NO_DEVICE (no CUDA-capable device is detected)" */
static void error_text(RtCudaModule *m, CUresult r, char *buf, size_t cap)
{
    const char *name = NULL, *what = NULL;
    if (m->fn[FN_GET_ERROR_NAME]) ((GetErrorTextFn)m->fn[FN_GET_ERROR_NAME])(r, &name);
    if (m->fn[FN_GET_ERROR_STRING]) ((GetErrorTextFn)m->fn[FN_GET_ERROR_STRING])(r, &what);
    if (name && what) snprintf(buf, cap, "%s (%s)", name, what);
    else snprintf(buf, cap, "CUDA error %d", (int)r);
}

static int fail_cu(RtCudaModule *m, const char *kernel, const char *call, CUresult r)
{
    char why[256];
    error_text(m, r, why, sizeof why);
    return rt_fail(TDSL_ERR_RUNTIME, "%s: %s failed: %s", kernel, call, why);
}

/* Opens the driver and initialises it, once per module (under m->lock). */
static int load_driver(RtCudaModule *m, const char *kernel)
{
    if (m->driver) return TDSL_OK;
    void *dl = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!dl) {
        const char *why = dlerror();
        return rt_fail(TDSL_ERR_RUNTIME, "%s: no CUDA driver found (libcuda.so.1): %s; CUDA kernels need an "
                       "NVIDIA GPU and its driver", kernel, why ? why : "dlopen failed");
    }
    void *fn[FN_COUNT];
    for (int i = 0; i < FN_COUNT; i++) {
        fn[i] = dlsym(dl, fn_names[i]);
        if (!fn[i]) {
            dlclose(dl);
            return rt_fail(TDSL_ERR_RUNTIME, "%s: the CUDA driver (libcuda.so.1) lacks %s; it is too old", kernel,
                           fn_names[i]);
        }
    }
    memcpy(m->fn, fn, sizeof fn);
    CUresult r = ((InitFn)m->fn[FN_INIT])(0);
    int count = 0;
    if (r == CU_SUCCESS) r = ((DeviceGetCountFn)m->fn[FN_DEVICE_GET_COUNT])(&count);
    if (r != CU_SUCCESS || count == 0) {
        char why[256];
        if (r != CU_SUCCESS) error_text(m, r, why, sizeof why);
        else snprintf(why, sizeof why, "the driver reports no device");
        memset(m->fn, 0, sizeof m->fn);
        dlclose(dl);
        return rt_fail(TDSL_ERR_RUNTIME, "%s: no CUDA device found: %s", kernel, why);
    }
    m->driver = dl;
    return TDSL_OK;
}

/* The primary context of device d and the module loaded on it, once per device. */
static int load_device(RtCudaModule *m, int d, const char *kernel)
{
    if (m->module[d]) return TDSL_OK;
    CUdevice dev;
    CUresult r = ((DeviceGetFn)m->fn[FN_DEVICE_GET])(&dev, d);
    if (r != CU_SUCCESS) return fail_cu(m, kernel, "cuDeviceGet", r);
    if (!m->ctx[d]) {
        CUcontext ctx;
        r = ((PrimaryCtxRetainFn)m->fn[FN_PRIMARY_CTX_RETAIN])(&ctx, dev);
        if (r != CU_SUCCESS) return fail_cu(m, kernel, "cuDevicePrimaryCtxRetain", r);
        m->ctx[d] = ctx;  /* retained for good: releasing the last reference destroys it */
    }
    r = ((CtxPushFn)m->fn[FN_CTX_PUSH])((CUcontext)m->ctx[d]);
    if (r != CU_SUCCESS) return fail_cu(m, kernel, "cuCtxPushCurrent", r);
    char log[JIT_LOG_BYTES];
    log[0] = '\0';
    int opts[2] = {CU_JIT_ERROR_LOG_BUFFER, CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES};
    void *vals[2] = {log, (void *)(uintptr_t)sizeof log};
    CUmodule mod = NULL;
    r = ((ModuleLoadFn)m->fn[FN_MODULE_LOAD])(&mod, m->ptx, 2, opts, vals);
    CUcontext popped;
    ((CtxPopFn)m->fn[FN_CTX_POP])(&popped);
    if (r != CU_SUCCESS) {
        char why[256];
        error_text(m, r, why, sizeof why);
        log[sizeof log - 1] = '\0';
        return rt_fail(TDSL_ERR_RUNTIME, "%s: loading the PTX on CUDA device %d failed: %s%s%s", kernel, d, why,
                       log[0] ? "\n" : "", log);
    }
    m->module[d] = mod;
    return TDSL_OK;
}

int rt_cuda_begin(RtCudaCall *c, RtCudaModule *m, int32_t device, const char *kernel)
{
    memset(c, 0, sizeof *c);
    c->m = m;
    c->kernel = kernel;
    c->device = device;
    if (device < 0 || device >= RT_CUDA_MAX_DEVICES)
        return rt_fail(TDSL_ERR_ARG, "%s: CUDA device %d is out of range (0..%d)", kernel, (int)device,
                       RT_CUDA_MAX_DEVICES - 1);
    pthread_mutex_lock(&m->lock);
    int rc = load_driver(m, kernel);
    if (rc == TDSL_OK) rc = load_device(m, device, kernel);
    pthread_mutex_unlock(&m->lock);
    if (rc != TDSL_OK) return rc;
    CUresult r = ((CtxPushFn)m->fn[FN_CTX_PUSH])((CUcontext)m->ctx[device]);
    if (r != CU_SUCCESS) return fail_cu(m, kernel, "cuCtxPushCurrent", r);
    c->pushed = true;
    return TDSL_OK;
}

int rt_cuda_alloc(RtCudaCall *c, const size_t *bytes, int n, void **ptrs)
{
    size_t total = 0;
    size_t *off = n ? calloc((size_t)n, sizeof *off) : NULL;
    if (n && !off) return rt_fail(TDSL_ERR_RUNTIME, "%s: out of memory", c->kernel);
    for (int i = 0; i < n; i++) {
        off[i] = total;
        size_t b = bytes[i] ? bytes[i] : 1;
        if (b > SIZE_MAX - total - TEMP_ALIGN) {
            free(off);
            return rt_fail(TDSL_ERR_RUNTIME, "%s: the device buffers are too large", c->kernel);
        }
        total += (b + TEMP_ALIGN - 1) / TEMP_ALIGN * TEMP_ALIGN;
    }
    if (total) {
        CUdeviceptr p = 0;
        CUresult r = ((MemAllocFn)c->m->fn[FN_MEM_ALLOC])(&p, total);
        if (r != CU_SUCCESS) {
            free(off);
            char why[256];
            error_text(c->m, r, why, sizeof why);
            return rt_fail(TDSL_ERR_RUNTIME, "%s: allocating %zu bytes on CUDA device %d failed: %s",
                           c->kernel, total, c->device, why);
        }
        c->temps = (void *)(uintptr_t)p;
    }
    for (int i = 0; i < n; i++) ptrs[i] = (char *)c->temps + off[i];
    free(off);
    return TDSL_OK;
}

int rt_cuda_zero(RtCudaCall *c, void *ptr, size_t bytes)
{
    if (!bytes) return TDSL_OK;
    CUresult r = ((MemsetFn)c->m->fn[FN_MEMSET])((CUdeviceptr)(uintptr_t)ptr, 0, bytes);
    return r == CU_SUCCESS ? TDSL_OK : fail_cu(c->m, c->kernel, "cuMemsetD8", r);
}

int rt_cuda_launch(RtCudaCall *c, const char *fn, int64_t block_work, int64_t thread_work, bool one_row, void **args)
{
    CUfunction f;
    CUresult r = ((ModuleGetFunctionFn)c->m->fn[FN_MODULE_GET_FUNCTION])(&f, (CUmodule)c->m->module[c->device], fn);
    if (r != CU_SUCCESS) return fail_cu(c->m, c->kernel, fn, r);
    unsigned grid[3], block[3];
    rt_cuda_launch_dims(block_work, thread_work, one_row, grid, block);
    r = ((LaunchFn)c->m->fn[FN_LAUNCH])(f, grid[0], grid[1], grid[2], block[0], block[1], block[2], 0, NULL, args,
                                         NULL);
    if (r != CU_SUCCESS) {
        char call[320];
        snprintf(call, sizeof call, "launching %s (grid %u, block %u x %u)", fn, grid[0], block[0], block[1]);
        return fail_cu(c->m, c->kernel, call, r);
    }
    return TDSL_OK;
}

int rt_cuda_end(RtCudaCall *c, int rc)
{
    if (!c->pushed) return rc;
    CUresult r = ((CtxSynchronizeFn)c->m->fn[FN_CTX_SYNCHRONIZE])();
    if (r != CU_SUCCESS && rc == TDSL_OK) rc = fail_cu(c->m, c->kernel, "running the kernels", r);
    if (c->temps) ((MemFreeFn)c->m->fn[FN_MEM_FREE])((CUdeviceptr)(uintptr_t)c->temps);
    CUcontext popped;
    ((CtxPopFn)c->m->fn[FN_CTX_POP])(&popped);
    c->pushed = false;
    return rc;
}

int rt_cuda_copy_to_device(RtCudaCall *c, void *dst, const void *src, size_t bytes)
{
    if (!bytes) return TDSL_OK;
    CUresult r = ((MemcpyHtoDFn)c->m->fn[FN_MEMCPY_HTOD])((CUdeviceptr)(uintptr_t)dst, src, bytes);
    return r == CU_SUCCESS ? TDSL_OK : fail_cu(c->m, c->kernel, "cuMemcpyHtoD", r);
}

int rt_cuda_copy_to_host(RtCudaCall *c, void *dst, const void *src, size_t bytes)
{
    if (!bytes) return TDSL_OK;
    CUresult r = ((MemcpyDtoHFn)c->m->fn[FN_MEMCPY_DTOH])(dst, (CUdeviceptr)(uintptr_t)src, bytes);
    return r == CU_SUCCESS ? TDSL_OK : fail_cu(c->m, c->kernel, "cuMemcpyDtoH", r);
}

/* For modules with an owner that frees them (a JIT module's tdsl_module_free), unlike an AOT
 * library's static one. Errors are ignored: there is no one left to report them to. */
void rt_cuda_module_release(RtCudaModule *m)
{
    if (m->driver) {
        for (int d = 0; d < RT_CUDA_MAX_DEVICES; d++) {
            if (m->module[d]) {
                CUcontext popped;
                if (((CtxPushFn)m->fn[FN_CTX_PUSH])((CUcontext)m->ctx[d]) == CU_SUCCESS) {
                    ((ModuleUnloadFn)m->fn[FN_MODULE_UNLOAD])((CUmodule)m->module[d]);
                    ((CtxPopFn)m->fn[FN_CTX_POP])(&popped);
                }
            }
            CUdevice dev;
            if (m->ctx[d] && ((DeviceGetFn)m->fn[FN_DEVICE_GET])(&dev, d) == CU_SUCCESS)
                ((PrimaryCtxReleaseFn)m->fn[FN_PRIMARY_CTX_RELEASE])(dev);
            m->module[d] = m->ctx[d] = NULL;
        }
        /* libcuda.so.1 stays mapped (the handle is not closed): the host or another module may
         * use the driver still, and unloading it under them is not safe */
        m->driver = NULL;
    }
    pthread_mutex_destroy(&m->lock);
}
