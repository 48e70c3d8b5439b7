/* fake_cuda.c: a stand-in for the CUDA driver (built as libcuda.so.1 with that soname) that
 * runs nothing and records every call runtime/cuda.c makes as a line of text, so that
 * test_cuda.c can follow a JIT module's launcher and an AOT library's launcher through the
 * same calls without a GPU. One device; device memory is a static arena (deterministic
 * addresses, logged as offsets "dev+N"); each launch logs its grid, block and every
 * parameter (all are 8 bytes: device pointers and int64 sizes), counted from the PTX's
 * `.entry NAME(` parameter list. With $TDSL_FAKE_CUDA_LOG set, the log is written to that
 * file at exit (tests/driver/cuda_run.tdsl runs tcc run --engine cuda on it). */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define API __attribute__((visibility("default")))

enum { ARENA_BYTES = 1 << 20, LOG_BYTES = 1 << 16, MAX_FUNCS = 64 };

static _Alignas(256) unsigned char arena[ARENA_BYTES];
static size_t arena_used;
static char log_text[LOG_BYTES];
static size_t log_len;
static const char *ptx_image;   /* the last PTX loaded */
typedef struct Func {
    char name[128];
    int  nparams;
} Func;
static Func funcs[MAX_FUNCS];
static int nfuncs;

static void say(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(log_text + log_len, sizeof log_text - log_len, fmt, ap);
    va_end(ap);
    if (n > 0) log_len += (size_t)n < sizeof log_text - log_len ? (size_t)n : sizeof log_text - log_len - 1;
}

/* "dev+N" for arena addresses, else the value */
static void say_value(unsigned long long v)
{
    uintptr_t base = (uintptr_t)arena;
    if (v >= base && v < base + ARENA_BYTES) say(" dev+%llu", v - base);
    else say(" 0x%llx", v);
}

API const char *fake_cuda_log(void) { return log_text; }
API void fake_cuda_reset(void)
{
    log_len = 0;
    log_text[0] = '\0';
    arena_used = 0;
    memset(arena, 0, sizeof arena);
}

API int cuInit(unsigned flags) { say("cuInit %u\n", flags); return 0; }
API int cuDeviceGetCount(int *n) { *n = 1; say("cuDeviceGetCount\n"); return 0; }
API int cuDeviceGet(int *dev, int i) { *dev = i; return i == 0 ? 0 : 101; /* CUDA_ERROR_INVALID_DEVICE */ }
API int cuDevicePrimaryCtxRetain(void **ctx, int dev) { *ctx = (void *)(uintptr_t)(0xC0 + dev); say("retain %d\n", dev); return 0; }
API int cuDevicePrimaryCtxRelease_v2(int dev) { say("release %d\n", dev); return 0; }
API int cuCtxPushCurrent_v2(void *ctx) { say("push %p\n", ctx); return 0; }
API int cuCtxPopCurrent_v2(void **ctx) { *ctx = NULL; say("pop\n"); return 0; }
API int cuCtxSynchronize(void) { say("sync\n"); return 0; }

API int cuModuleLoadDataEx(void **mod, const void *image, unsigned n, int *opts, void **vals)
{
    (void)opts;
    (void)vals;
    ptx_image = image;
    *mod = (void *)(uintptr_t)0xD0;
    say("load %zu bytes of PTX, %u options\n", strlen(image), n);
    return 0;
}
API int cuModuleUnload(void *mod) { say("unload %p\n", mod); return 0; }

API int cuModuleGetFunction(void **f, void *mod, const char *name)
{
    (void)mod;
    char entry[160];
    snprintf(entry, sizeof entry, ".entry %s(", name);
    const char *p = ptx_image ? strstr(ptx_image, entry) : NULL;
    if (!p || nfuncs == MAX_FUNCS) return 500;  /* CUDA_ERROR_NOT_FOUND */
    int nparams = 0;
    const char *end = strchr(p, ')');
    for (const char *q = strstr(p, ".param"); q && end && q < end; q = strstr(q + 1, ".param")) nparams++;
    for (int i = 0; i < nfuncs; i++) {
        if (strcmp(funcs[i].name, name) == 0) {
            *f = &funcs[i];
            return 0;
        }
    }
    snprintf(funcs[nfuncs].name, sizeof funcs[nfuncs].name, "%s", name);
    funcs[nfuncs].nparams = nparams;
    *f = &funcs[nfuncs++];
    return 0;
}

API int cuLaunchKernel(void *f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,
                       unsigned shmem, void *stream, void **params, void **extra)
{
    const Func *fn = f;
    say("launch %s grid %u,%u,%u block %u,%u,%u shmem %u stream %p extra %p args", fn->name, gx, gy, gz, bx, by, bz,
        shmem, stream, (void *)extra);
    for (int i = 0; i < fn->nparams; i++) say_value(*(const unsigned long long *)params[i]);
    say("\n");
    return 0;
}

API int cuMemAlloc_v2(unsigned long long *p, size_t bytes)
{
    size_t start = (arena_used + 255) / 256 * 256;
    if (bytes > ARENA_BYTES - start) return 2;  /* CUDA_ERROR_OUT_OF_MEMORY */
    arena_used = start + bytes;
    *p = (unsigned long long)(uintptr_t)(arena + start);
    say("alloc %zu ->", bytes);
    say_value(*p);
    say("\n");
    return 0;
}
API int cuMemFree_v2(unsigned long long p) { say("free"); say_value(p); say("\n"); return 0; }

API int cuMemsetD8_v2(unsigned long long p, unsigned char v, size_t n)
{
    say("memset");
    say_value(p);
    say(" %u %zu\n", v, n);
    uintptr_t base = (uintptr_t)arena;
    if (p >= base && p + n <= base + ARENA_BYTES) memset((void *)(uintptr_t)p, v, n);
    return 0;
}
API int cuMemcpyHtoD_v2(unsigned long long dst, const void *src, size_t n)
{
    say("htod");
    say_value(dst);
    say(" %zu\n", n);
    memcpy((void *)(uintptr_t)dst, src, n);
    return 0;
}
API int cuMemcpyDtoH_v2(void *dst, unsigned long long src, size_t n)
{
    say("dtoh");
    say_value(src);
    say(" %zu\n", n);
    memcpy(dst, (const void *)(uintptr_t)src, n);
    return 0;
}

API int cuGetErrorName(int r, const char **s) { (void)r; *s = "CUDA_ERROR_FAKE"; return 0; }
API int cuGetErrorString(int r, const char **s) { (void)r; *s = "the fake driver refused"; return 0; }

__attribute__((destructor)) static void write_log(void)
{
    const char *path = getenv("TDSL_FAKE_CUDA_LOG");
    FILE *f = path && *path ? fopen(path, "w") : NULL;
    if (!f) return;
    fputs(log_text, f);
    fclose(f);
}

/* NVRTC, when it finds a driver, asks it for private tables; this one has none */
API int cuGetExportTable(const void **table, const void *id)
{
    (void)id;
    *table = NULL;
    return 801;  /* CUDA_ERROR_NOT_SUPPORTED */
}
