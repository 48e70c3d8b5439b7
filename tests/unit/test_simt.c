/* The SIMT emulator (runtime/simt/) on hand-written CUDA kernels: grids of blocks, shared
 * memory with barriers, warp shuffles and votes, atomics, 16-bit floats, dynamic shared
 * memory, and the failures it must report instead of hanging or crashing (deadlocks, bad
 * masks, stack overflow, memory faults, launches CUDA would refuse). Each kernel is compiled
 * by simt_compile (g++ against simt.h) and run by simt_launch. */
#include <criterion/criterion.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "ir/ir.h"
#include "runtime/simt/simt_host.h"
#include "kernel_data.h"

static SimtModule *compile_ok(const char *src)
{
    StrBuf err = {0};
    SimtModule *m = NULL;
    bool ok = simt_compile(src, &m, &err);
    cr_assert(ok, "simt_compile failed:\n%s", sb_cstr(&err));
    sb_free(&err);
    return m;
}

static const SimtKernel *kernel(SimtModule *m, const char *name)
{
    const SimtKernel *k = simt_module_kernel(m, name);
    cr_assert_not_null(k, "no kernel %s", name);
    return k;
}

static SimtDim3 d3(unsigned x, unsigned y, unsigned z) { return (SimtDim3){x, y, z}; }

/* Launches and expects success. */
static void run_ok(SimtModule *m, const char *name, void **args, SimtDim3 grid, SimtDim3 block, size_t dyn,
                   const SimtLaunchOptions *o)
{
    StrBuf err = {0};
    bool ok = simt_launch(kernel(m, name), args, grid, block, dyn, o, &err);
    cr_assert(ok, "launch of %s failed:\n%s", name, sb_cstr(&err));
    sb_free(&err);
}

/* Launches, expects failure, and checks the message holds each of the NULL-terminated
 * fragments. */
static void run_fails(SimtModule *m, const char *name, void **args, SimtDim3 grid, SimtDim3 block,
                      const SimtLaunchOptions *o, const char *const *want)
{
    StrBuf err = {0};
    bool ok = simt_launch(kernel(m, name), args, grid, block, 0, o, &err);
    cr_assert(!ok, "launch of %s should have failed", name);
    for (int i = 0; want[i]; i++)
        cr_assert(strstr(sb_cstr(&err), want[i]), "message lacks '%s':\n%s", want[i], sb_cstr(&err));
    sb_free(&err);
}

/* ---- grids, indices, shared memory ------------------------------------------------------------ */

static const char VECTOR_ADD[] =
    "extern \"C\" __global__ void vadd(const float *__restrict__ a, const float *__restrict__ b,\n"
    "                                  float *__restrict__ c, int n)\n"
    "{\n"
    "    int i = blockIdx.x * blockDim.x + threadIdx.x;\n"
    "    if (i < n) c[i] = a[i] + b[i];\n"
    "}\n";

Test(simt, vector_add_over_a_grid)
{
    SimtModule *m = compile_ok(VECTOR_ADD);
    enum { N = 1000 };
    float *a = malloc(N * sizeof *a), *b = malloc(N * sizeof *b), *c = calloc(N, sizeof *c);
    for (int i = 0; i < N; i++) {
        a[i] = (float)i;
        b[i] = 0.5f * (float)i;
    }
    int n = N;
    void *args[] = {&a, &b, &c, &n};
    run_ok(m, "vadd", args, d3((N + 127) / 128, 1, 1), d3(128, 1, 1), 0, NULL);
    for (int i = 0; i < N; i++) cr_assert_eq(c[i], 1.5f * (float)i, "c[%d] = %g", i, c[i]);
    free(a);
    free(b);
    free(c);
    simt_module_free(m);
}

Test(simt, three_dimensional_indices)
{
    SimtModule *m = compile_ok(
        "struct Out { unsigned *ids; int *count; };\n"
        "namespace geo {\n"
        "__device__ unsigned linear(uint3 t, dim3 d) { return t.x + d.x * (t.y + d.y * t.z); }\n"
        "extern \"C\" __global__ void __launch_bounds__(64) where(Out o)\n"
        "{\n"
        "    unsigned t = linear(threadIdx, blockDim), b = linear(blockIdx, gridDim);\n"
        "    unsigned g = b * (blockDim.x * blockDim.y * blockDim.z) + t;\n"
        "    o.ids[g] = g + 1000u * (threadIdx.x + 10u * threadIdx.y + 100u * threadIdx.z);\n"
        "    atomicAdd(o.count, 1);\n"
        "}\n"
        "}\n");
    cr_assert_eq(simt_module_num_kernels(m), 1);
    cr_assert_str_eq(simt_module_kernel_at(m, 0)->name, "geo::where");
    enum { BX = 4, BY = 2, BZ = 3, GX = 3, GY = 2, GZ = 2, N = BX * BY * BZ * GX * GY * GZ };
    unsigned ids[N];
    int count = 0;
    memset(ids, 0, sizeof ids);
    struct { unsigned *ids; int *count; } out = {ids, &count};
    void *args[] = {&out};
    run_ok(m, "geo::where", args, d3(GX, GY, GZ), d3(BX, BY, BZ), 0, NULL);
    cr_assert_eq(count, N);
    for (unsigned g = 0; g < N; g++) {
        unsigned t = g % (BX * BY * BZ);
        unsigned tx = t % BX, ty = t / BX % BY, tz = t / (BX * BY);
        cr_assert_eq(ids[g], g + 1000u * (tx + 10u * ty + 100u * tz), "ids[%u] = %u", g, ids[g]);
    }
    simt_module_free(m);
}

static const char REDUCE[] =
    "extern \"C\" __global__ void block_sum(const int *x, int *out)\n"
    "{\n"
    "    __shared__ int s[256];\n"
    "    unsigned t = threadIdx.x;\n"
    "    s[t] = x[blockIdx.x * blockDim.x + t];\n"
    "    __syncthreads();\n"
    "    for (unsigned stride = blockDim.x / 2; stride > 0; stride /= 2) {\n"
    "        if (t < stride) s[t] += s[t + stride];\n"
    "        __syncthreads();\n"
    "    }\n"
    "    if (t == 0) out[blockIdx.x] = s[0];\n"
    "}\n";

Test(simt, shared_memory_tree_reduction)
{
    SimtModule *m = compile_ok(REDUCE);
    enum { B = 256, G = 37 };
    int *x = malloc(B * G * sizeof *x), out[G], want[G], *pout = out;
    memset(want, 0, sizeof want);
    for (int i = 0; i < B * G; i++) {
        x[i] = (i * 7919) % 1001 - 500;
        want[i / B] += x[i];
    }
    void *args[] = {&x, &pout};
    for (int rev = 0; rev < 2; rev++) {
        SimtLaunchOptions o = {0, rev == 1};
        memset(out, 0, sizeof out);
        run_ok(m, "block_sum", args, d3(G, 1, 1), d3(B, 1, 1), 0, &o);
        for (int b = 0; b < G; b++) cr_assert_eq(out[b], want[b], "block %d: %d, want %d", b, out[b], want[b]);
    }
    free(x);
    simt_module_free(m);
}

Test(simt, barrier_count_and_or)
{
    SimtModule *m = compile_ok(
        "extern \"C\" __global__ void votes(int *out)\n"
        "{\n"
        "    int t = threadIdx.x;\n"
        "    int c = __syncthreads_count(t % 3 == 0);\n"
        "    int a = __syncthreads_and(t < 1000);\n"
        "    int o = __syncthreads_or(t == 17);\n"
        "    int z = __syncthreads_or(0);\n"
        "    if (t == 0) { out[0] = c; out[1] = a; out[2] = o; out[3] = z; }\n"
        "}\n");
    int out[4] = {-1, -1, -1, -1};
    int *p = out;
    void *args[] = {&p};
    run_ok(m, "votes", args, d3(1, 1, 1), d3(100, 1, 1), 0, NULL);
    cr_assert_eq(out[0], 34);
    cr_assert_eq(out[1], 1);
    cr_assert_eq(out[2], 1);
    cr_assert_eq(out[3], 0);
    simt_module_free(m);
}

Test(simt, shared_memory_starts_as_garbage_in_every_block)
{
    /* block 0 writes its shared array; block 1 must not see that (the emulator fills shared
     * memory with 0xff bytes before each block) */
    SimtModule *m = compile_ok(
        "extern \"C\" __global__ void stale(int *out)\n"
        "{\n"
        "    __shared__ int s[32];\n"
        "    out[blockIdx.x * 32 + threadIdx.x] = s[threadIdx.x];\n"
        "    s[threadIdx.x] = 7;\n"
        "}\n");
    int out[64];
    int *p = out;
    void *args[] = {&p};
    run_ok(m, "stale", args, d3(2, 1, 1), d3(32, 1, 1), 0, NULL);
    for (int i = 0; i < 64; i++) cr_assert_eq(out[i], -1, "out[%d] = %d", i, out[i]);
    simt_module_free(m);
}

Test(simt, dynamic_shared_memory)
{
    SimtModule *m = compile_ok(
        "extern \"C\" __global__ void reverse(const float *x, float *y, int n)\n"
        "{\n"
        "    extern __shared__ __align__(16) float buf[];\n"
        "    int t = threadIdx.x;\n"
        "    if (t < n) buf[t] = x[blockIdx.x * n + t];\n"
        "    __syncthreads();\n"
        "    if (t < n) y[blockIdx.x * n + t] = buf[n - 1 - t];\n"
        "}\n");
    enum { N = 200, G = 3 };
    float x[N * G], y[N * G];
    for (int i = 0; i < N * G; i++) x[i] = (float)i;
    float *px = x, *py = y;
    int n = N;
    void *args[] = {&px, &py, &n};
    run_ok(m, "reverse", args, d3(G, 1, 1), d3(256, 1, 1), N * sizeof(float), NULL);
    for (int b = 0; b < G; b++)
        for (int i = 0; i < N; i++) cr_assert_eq(y[b * N + i], x[b * N + N - 1 - i]);
    simt_module_free(m);
}

/* ---- warps ---------------------------------------------------------------------------------- */

static const char WARPS[] =
    "extern \"C\" __global__ void shuffles(const float *x, float *sum, float *all, int *scan, float *bcast)\n"
    "{\n"
    "    int t = blockIdx.x * blockDim.x + threadIdx.x, lane = threadIdx.x % warpSize;\n"
    "    float v = x[t];\n"
    "    for (int off = 16; off > 0; off /= 2) v += __shfl_down_sync(0xffffffffu, v, off);\n"
    "    if (lane == 0) sum[t / 32] = v;\n"
    "    float w = x[t];\n"
    "    for (int m = 1; m < 32; m *= 2) w += __shfl_xor_sync(0xffffffffu, w, m);\n"
    "    all[t] = w;\n"
    "    int s = lane + 1;\n"
    "    for (int d = 1; d < 32; d *= 2) {\n"
    "        int u = __shfl_up_sync(0xffffffffu, s, d);\n"
    "        if (lane >= d) s += u;\n"
    "    }\n"
    "    scan[t] = s;\n"
    "    double big = (double)x[t] * 1e300;\n"
    "    bcast[t] = (float)(__shfl_sync(0xffffffffu, big, 5) / 1e300) + __shfl_sync(0xffffffffu, x[t], lane + 1, 8);\n"
    "}\n";

Test(simt, warp_shuffles)
{
    SimtModule *m = compile_ok(WARPS);
    enum { T = 128, G = 2, N = T * G };
    float x[N], sum[N / 32], all[N], bcast[N];
    int scan[N];
    for (int i = 0; i < N; i++) x[i] = (float)((i * 37) % 64);
    float *px = x, *ps = sum, *pa = all, *pb = bcast;
    int *pscan = scan;
    void *args[] = {&px, &ps, &pa, &pscan, &pb};
    run_ok(m, "shuffles", args, d3(G, 1, 1), d3(T, 1, 1), 0, NULL);
    for (int w = 0; w < N / 32; w++) {
        float want = 0;
        for (int l = 0; l < 32; l++) want += x[w * 32 + l];
        cr_assert_eq(sum[w], want, "warp %d: %g, want %g", w, sum[w], want);
        for (int l = 0; l < 32; l++) {
            int i = w * 32 + l;
            cr_assert_eq(all[i], want);
            cr_assert_eq(scan[i], (l + 1) * (l + 2) / 2, "scan[%d] = %d", i, scan[i]);
            float b = x[w * 32 + 5] + x[w * 32 + (l & ~7) + ((l + 1) & 7)];
            cr_assert_eq(bcast[i], b, "bcast[%d] = %g, want %g", i, bcast[i], b);
        }
    }
    simt_module_free(m);
}

Test(simt, ballot_any_all_and_reductions)
{
    SimtModule *m = compile_ok(
        "extern \"C\" __global__ void votes(unsigned *out)\n"
        "{\n"
        "    unsigned act = __activemask();\n" /* before any lane could have exited */
        "    int lane = threadIdx.x % 32;\n"
        "    unsigned b = __ballot_sync(0xffffffffu, lane % 3 == 0);\n"
        "    int any = __any_sync(0xffffffffu, lane == 31), all = __all_sync(0xffffffffu, lane < 31);\n"
        "    unsigned r = __reduce_add_sync(0xffffffffu, (unsigned)lane);\n"
        "    int mx = __reduce_max_sync(0xffffffffu, -lane);\n"
        "    unsigned mt = __match_any_sync(0xffffffffu, lane / 8);\n"
        "    __syncwarp();\n"
        "    unsigned *o = out + threadIdx.x * 7;\n"
        "    o[0] = b; o[1] = any; o[2] = all; o[3] = r; o[4] = (unsigned)mx; o[5] = mt; o[6] = act;\n"
        "}\n");
    enum { T = 64 };
    unsigned out[T * 7];
    unsigned *p = out;
    void *args[] = {&p};
    run_ok(m, "votes", args, d3(1, 1, 1), d3(T, 1, 1), 0, NULL);
    unsigned ballot = 0;
    for (int l = 0; l < 32; l += 3) ballot |= 1u << l;
    for (int t = 0; t < T; t++) {
        unsigned *o = out + t * 7;
        cr_assert_eq(o[0], ballot, "thread %d: ballot 0x%08x", t, o[0]);
        cr_assert_eq(o[1], 1u);
        cr_assert_eq(o[2], 0u);
        cr_assert_eq(o[3], 496u);
        cr_assert_eq(o[4], 0u);
        cr_assert_eq(o[5], 0xffu << (t % 32 / 8 * 8), "thread %d: match 0x%08x", t, o[5]);
        cr_assert_eq(o[6], 0xffffffffu);
    }
    simt_module_free(m);
}

Test(simt, disjoint_masks_in_one_warp)
{
    /* the two half-warps shuffle independently, one of them twice as often */
    SimtModule *m = compile_ok(
        "extern \"C\" __global__ void halves(int *out)\n"
        "{\n"
        "    int lane = threadIdx.x;\n"
        "    unsigned mask = lane < 16 ? 0x0000ffffu : 0xffff0000u;\n"
        "    int v = lane;\n"
        "    v += __shfl_xor_sync(mask, v, 1);\n"
        "    if (lane < 16) v += __shfl_xor_sync(mask, v, 2);\n"
        "    out[lane] = v;\n"
        "}\n");
    int out[32];
    int *p = out;
    void *args[] = {&p};
    run_ok(m, "halves", args, d3(1, 1, 1), d3(32, 1, 1), 0, NULL);
    for (int l = 0; l < 32; l++) {
        int pair = (l & ~1) + (l | 1);
        int want = l < 16 ? pair + ((l ^ 2) & ~1) + ((l ^ 2) | 1) : pair;
        cr_assert_eq(out[l], want, "lane %d: %d, want %d", l, out[l], want);
    }
    simt_module_free(m);
}

/* ---- atomics -------------------------------------------------------------------------------- */

Test(simt, atomics_from_every_thread)
{
    SimtModule *m = compile_ok(
        "struct Acc { int i; unsigned u; float f; double d; int mx; unsigned long long cas; float fmax; };\n"
        "__device__ void max_float(float *p, float v)\n"
        "{\n"
        "    int old = __float_as_int(*p);\n"
        "    while (__int_as_float(old) < v) {\n"
        "        int seen = atomicCAS((int *)p, old, __float_as_int(v));\n"
        "        if (seen == old) break;\n"
        "        old = seen;\n"
        "    }\n"
        "}\n"
        "extern \"C\" __global__ void count(Acc *a)\n"
        "{\n"
        "    int t = blockIdx.x * blockDim.x + threadIdx.x;\n"
        "    atomicAdd(&a->i, 1);\n"
        "    atomicAdd(&a->u, 2u);\n"
        "    atomicAdd(&a->f, 0.5f);\n"
        "    atomicAdd(&a->d, 0.25);\n"
        "    atomicMax(&a->mx, (t * 37) % 1000);\n"
        "    atomicAdd(&a->cas, 3ull);\n"
        "    max_float(&a->fmax, (float)((t * 91) % 777));\n"
        "}\n");
    struct { int i; unsigned u; float f; double d; int mx; unsigned long long cas; float fmax; } a = {0, 0, 0, 0, -1, 0, 0};
    void *p = &a;
    void *args[] = {&p};
    run_ok(m, "count", args, d3(5, 1, 1), d3(200, 1, 1), 0, NULL);
    int want_mx = 0, want_fmax = 0;
    for (int t = 0; t < 1000; t++) {
        if ((t * 37) % 1000 > want_mx) want_mx = (t * 37) % 1000;
        if ((t * 91) % 777 > want_fmax) want_fmax = (t * 91) % 777;
    }
    cr_assert_eq(a.i, 1000);
    cr_assert_eq(a.u, 2000u);
    cr_assert_eq(a.f, 500.0f);
    cr_assert_eq(a.d, 250.0);
    cr_assert_eq(a.mx, want_mx);
    cr_assert_eq(a.cas, 3000ull);
    cr_assert_eq(a.fmax, (float)want_fmax);
    simt_module_free(m);
}

/* ---- 16-bit floats ---------------------------------------------------------------------------- */


static float bits_f32(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

Test(simt, half_and_bfloat16_conversions_round_to_nearest_even)
{
    SimtModule *m = compile_ok(
        "extern \"C\" __global__ void conv(const float *x, unsigned short *h, unsigned short *b, float *hb, float *bb,\n"
        "                                  unsigned short *sum, int n)\n"
        "{\n"
        "    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {\n"
        "        __half a = __float2half_rn(x[i]);\n"
        "        __nv_bfloat16 c = __float2bfloat16(x[i]);\n"
        "        h[i] = __half_as_ushort(a);\n"
        "        b[i] = __bfloat16_as_ushort(c);\n"
        "        hb[i] = __half2float(__ushort_as_half((unsigned short)i));\n"
        "        bb[i] = __bfloat162float(__ushort_as_bfloat16((unsigned short)i));\n"
        "        sum[i] = __half_as_ushort(__hadd(a, __float2half(1.0f)));\n"
        "    }\n"
        "}\n");
    enum { N = 1 << 16 };
    float *x = malloc(N * sizeof *x), *hb = malloc(N * sizeof *hb), *bb = malloc(N * sizeof *bb);
    unsigned short *h = malloc(N * 2), *b = malloc(N * 2), *sum = malloc(N * 2);
    uint64_t seed = 42;
    static const uint32_t special[] = {0, 0x80000000u, 0x7f800000u, 0xff800000u, 0x7fc00000u, 0x477fefffu,
                                       0x477ff000u, 0x33000000u, 0x33000001u, 0x387fc000u, 0x00000001u,
                                       0x7f7fffffu, 0x3f800000u, 0x3f801000u, 0x3f803000u, 0x3f808000u};
    for (int i = 0; i < N; i++) {
        uint64_t r = splitmix(&seed);
        /* random bit patterns, and random values near 1 and in the f16 subnormal range */
        uint32_t u = i < TD_COUNTOF(special) ? special[i]
                   : i % 3 == 0                ? (uint32_t)r
                   : i % 3 == 1                ? 0x3f000000u + (uint32_t)(r % 0x1000000u)
                                               : 0x33000000u + (uint32_t)(r % 0x6000000u);
        x[i] = bits_f32(u);
    }
    int n = N;
    void *args[] = {&x, &h, &b, &hb, &bb, &sum, &n};
    run_ok(m, "conv", args, d3(16, 1, 1), d3(256, 1, 1), 0, NULL);
    for (int i = 0; i < N; i++) {
        if (isnan(x[i])) {
            cr_assert_eq(h[i], 0x7fff, "NaN to f16: 0x%04x", h[i]);
            cr_assert_eq(b[i], 0x7fff, "NaN to bf16: 0x%04x", b[i]);
            continue;
        }
        cr_assert_eq(h[i], f32_to_f16_bits(x[i]), "f16 of %a: 0x%04x, want 0x%04x", x[i], h[i], f32_to_f16_bits(x[i]));
        cr_assert_eq(b[i], f32_to_bf16_bits(x[i]), "bf16 of %a: 0x%04x, want 0x%04x", x[i], b[i],
                     f32_to_bf16_bits(x[i]));
        float s = f16_bits_to_f32(f32_to_f16_bits(x[i])) + 1.0f;
        if (!isnan(s)) cr_assert_eq(sum[i], f32_to_f16_bits(s), "f16 %a + 1", x[i]);
        float w = f16_bits_to_f32((uint16_t)i), v = bf16_bits_to_f32((uint16_t)i);
        cr_assert(memcmp(&hb[i], &w, 4) == 0 || (isnan(w) && isnan(hb[i])), "f16 0x%04x to float: %a", i, hb[i]);
        cr_assert(memcmp(&bb[i], &v, 4) == 0 || (isnan(v) && isnan(bb[i])), "bf16 0x%04x to float: %a", i, bb[i]);
    }
    free(x);
    free(h);
    free(b);
    free(hb);
    free(bb);
    free(sum);
    simt_module_free(m);
}

Test(simt, math_functions)
{
    SimtModule *m = compile_ok(
        "extern \"C\" __global__ void math(float *o)\n"
        "{\n"
        "    float x = 0.75f;\n"
        "    o[0] = expf(x); o[1] = logf(x); o[2] = erff(x); o[3] = rsqrtf(x); o[4] = fminf(x, -1.0f);\n"
        "    o[5] = fmaxf(x, 2.0f); o[6] = rintf(2.5f); o[7] = __fdividef(1.0f, x); o[8] = tanhf(x);\n"
        "    o[9] = __expf(x); o[10] = erfinvf(erff(x)); o[11] = __saturatef(1.5f); o[12] = max(3, 4);\n"
        "    o[13] = (float)__float2int_rn(2.5f); o[14] = (float)__float2int_rz(-1e20f); o[15] = exp(x);\n"
        "}\n");
    float o[16];
    float *p = o;
    void *args[] = {&p};
    run_ok(m, "math", args, d3(1, 1, 1), d3(1, 1, 1), 0, NULL);
    float x = 0.75f;
    float want[16] = {expf(x), logf(x), erff(x), 1.0f / sqrtf(x), -1.0f, 2.0f, 2.0f, 1.0f / x, tanhf(x), expf(x),
                      x, 1.0f, 4.0f, 2.0f, -2147483648.0f, expf(x)};
    for (int i = 0; i < 16; i++) cr_assert_float_eq(o[i], want[i], 1e-6, "o[%d] = %.9g, want %.9g", i, o[i], want[i]);
    simt_module_free(m);
}

/* ---- failures ----------------------------------------------------------------------------------- */

Test(simt, thread_skipping_a_barrier_is_a_deadlock, .timeout = 30)
{
    SimtModule *m = compile_ok(
        "extern \"C\" __global__ void early(int *x)\n"
        "{\n"
        "    if (threadIdx.x == 3) return;\n"
        "    x[threadIdx.x] = 1;\n"
        "    __syncthreads();\n"
        "}\n");
    int x[64];
    int *p = x;
    void *args[] = {&p};
    run_fails(m, "early", args, d3(2, 1, 1), d3(64, 1, 1), NULL,
              (const char *const[]){"kernel early: block (0,0,0)", "deadlock", "63 of 64 threads wait at __syncthreads (line 5)",
                                    "thread (3,0,0) exited without reaching it", NULL});
    simt_module_free(m);
}

Test(simt, lane_skipping_a_shuffle_is_a_deadlock, .timeout = 30)
{
    SimtModule *m = compile_ok(
        "extern \"C\" __global__ void skip(int *x)\n"
        "{\n"
        "    int v = threadIdx.x;\n"
        "    if (threadIdx.x != 7) v = __shfl_down_sync(0xffffffffu, v, 1);\n"
        "    x[threadIdx.x] = v;\n"
        "}\n");
    int x[32];
    int *p = x;
    void *args[] = {&p};
    run_fails(m, "skip", args, d3(1, 1, 1), d3(32, 1, 1), NULL,
              (const char *const[]){"thread (7,0,0)", "exited without reaching the __shfl_down_sync (line 4",
                                    "lanes 0-6", NULL});
    simt_module_free(m);
}

Test(simt, warp_waiting_on_a_lane_at_a_barrier_is_a_deadlock, .timeout = 30)
{
    SimtModule *m = compile_ok(
        "extern \"C\" __global__ void mixed(int *x)\n"
        "{\n"
        "    int v = threadIdx.x;\n"
        "    if (threadIdx.x == 9) __syncthreads();\n"
        "    else v = __shfl_xor_sync(0xffffffffu, v, 1);\n"
        "    x[threadIdx.x] = v;\n"
        "}\n");
    int x[32];
    int *p = x;
    void *args[] = {&p};
    run_fails(m, "mixed", args, d3(1, 1, 1), d3(32, 1, 1), NULL,
              (const char *const[]){"deadlock", "__shfl_xor_sync (line 5", "for lane 9",
                                    "which waits at __syncthreads (line 4)", NULL});
    simt_module_free(m);
}

Test(simt, undefined_warp_operations_are_errors, .timeout = 30)
{
    SimtModule *m = compile_ok(
        "extern \"C\" __global__ void bad(int *x, int which)\n"
        "{\n"
        "    int v = threadIdx.x;\n"
        "    if (which == 0) v = __shfl_sync(0x1u, v, 0);\n"             /* lanes 1.. not in their mask */
        "    if (which == 1) v = __shfl_sync(0x0000ffffu, v, 20);\n"     /* lanes 0-15 read lane 20 */
        "    if (which == 2) v = __shfl_sync(0xffffffffu, v, 0);\n"      /* in a 48-thread block */
        "    if (which == 3) v = __shfl_sync(0xffffffffu, v, 0, 12);\n"  /* width */
        "    x[threadIdx.x] = v;\n"
        "}\n");
    int x[64];
    int *p = x;
    int which = 0;
    void *args[] = {&p, &which};
    run_fails(m, "bad", args, d3(1, 1, 1), d3(32, 1, 1), NULL,
              (const char *const[]){"thread (1,0,0)", "the mask 0x00000001 does not include the calling lane 1", NULL});
    which = 1;
    run_fails(m, "bad", args, d3(1, 1, 1), d3(16, 1, 1), NULL,
              (const char *const[]){"lane 0 reads lane 20, which is not in the mask", NULL});
    which = 2;
    run_fails(m, "bad", args, d3(1, 1, 1), d3(48, 1, 1), NULL,
              (const char *const[]){"thread (32,0,0)", "names lanes that do not exist", "warp 1 has lanes 0-15", NULL});
    which = 3;
    run_fails(m, "bad", args, d3(1, 1, 1), d3(32, 1, 1), NULL,
              (const char *const[]){"width 12 is not a power of two", NULL});
    simt_module_free(m);
}

Test(simt, stack_overflow_hits_the_guard_page, .timeout = 30)
{
    SimtModule *m = compile_ok(
        "__device__ __noinline__ int deep(volatile char *p, int n)\n"
        "{\n"
        "    volatile char buf[4000];\n"
        "    buf[0] = (char)n;\n"
        "    buf[3999] = *p;\n"
        "    return n == 0 ? buf[0] : deep(buf, n - 1) + buf[3999];\n"
        "}\n"
        "extern \"C\" __global__ void hungry(int *x, int depth)\n"
        "{\n"
        "    volatile char c = 1;\n"
        "    x[threadIdx.x] = deep(&c, depth);\n"
        "}\n");
    int x[32];
    int *p = x;
    int depth = 10;
    void *args[] = {&p, &depth};
    run_ok(m, "hungry", args, d3(1, 1, 1), d3(32, 1, 1), 0, NULL);  /* 40 KB of 64 */
    depth = 100;
    run_fails(m, "hungry", args, d3(1, 1, 1), d3(32, 1, 1), NULL,
              (const char *const[]){"kernel hungry: block (0,0,0), thread (0,0,0)", "stack overflow", "64 KiB", NULL});
    SimtLaunchOptions big = {512 * 1024, false};
    run_ok(m, "hungry", args, d3(1, 1, 1), d3(32, 1, 1), 0, &big);  /* 400 KB of 512 */
    simt_module_free(m);
}

Test(simt, memory_faults_and_traps_are_reported, .timeout = 30)
{
    SimtModule *m = compile_ok(
        "extern \"C\" __global__ void oops(int *x, int which)\n"
        "{\n"
        "    if (which == 0 && blockIdx.x == 1 && threadIdx.x == 5) x = (int *)16;\n"
        "    if (which == 1 && threadIdx.x == 2) __trap();\n"
        "    if (which == 2) assert(threadIdx.x < 4);\n"
        "    volatile int zero = 0;\n"
        "    if (which == 3) x[threadIdx.x] = 10 / zero;\n"
        "    x[threadIdx.x] = 1;\n"
        "}\n");
    int x[32];
    int *p = x;
    int which = 0;
    void *args[] = {&p, &which};
    run_fails(m, "oops", args, d3(2, 1, 1), d3(32, 1, 1), NULL,
              (const char *const[]){"block (1,0,0), thread (5,0,0)", "invalid memory access at address 0x24", NULL});
    which = 1;
    run_fails(m, "oops", args, d3(2, 1, 1), d3(32, 1, 1), NULL,
              (const char *const[]){"thread (2,0,0)", "__trap() called (line 4)", NULL});
    which = 2;
    run_fails(m, "oops", args, d3(2, 1, 1), d3(32, 1, 1), NULL,
              (const char *const[]){"thread (4,0,0)", "assertion 'threadIdx.x < 4' failed (line 5)", NULL});
    which = 3;
    run_fails(m, "oops", args, d3(2, 1, 1), d3(32, 1, 1), NULL,
              (const char *const[]){"thread (0,0,0)", "arithmetic exception", NULL});
    which = 4;
    run_ok(m, "oops", args, d3(2, 1, 1), d3(32, 1, 1), 0, NULL);  /* the emulator still works */
    simt_module_free(m);
}

Test(simt, launches_cuda_would_refuse, .timeout = 30)
{
    SimtModule *m = compile_ok(VECTOR_ADD);
    float *a = NULL;
    int n = 0;
    void *args[] = {&a, &a, &a, &n};
    run_fails(m, "vadd", args, d3(1, 1, 1), d3(1024, 2, 1), NULL,
              (const char *const[]){"kernel vadd: invalid launch", "2048 threads", "at most 1024", NULL});
    run_fails(m, "vadd", args, d3(1, 1, 1), d3(0, 1, 1), NULL, (const char *const[]){"invalid launch", NULL});
    run_fails(m, "vadd", args, d3(1, 70000, 1), d3(32, 1, 1), NULL, (const char *const[]){"grid (1, 70000, 1)", NULL});
    run_fails(m, "vadd", args, d3(1, 1, 1), d3(1, 1, 65), NULL, (const char *const[]){"z at most 64", NULL});
    StrBuf err = {0};
    cr_assert(!simt_launch(kernel(m, "vadd"), args, d3(1, 1, 1), d3(32, 1, 1), 300 * 1024, NULL, &err));
    cr_assert(strstr(sb_cstr(&err), "dynamic shared memory"), "%s", sb_cstr(&err));
    sb_free(&err);
    simt_module_free(m);
}

Test(simt, compile_errors_come_back_as_messages)
{
    StrBuf err = {0};
    SimtModule *m = NULL;
    cr_assert(!simt_compile("extern \"C\" __global__ void k(int *x) { x[0] = undeclared; }\n", &m, &err));
    cr_assert_null(m);
    cr_assert(strstr(sb_cstr(&err), "undeclared"), "%s", sb_cstr(&err));
    cr_assert(strstr(sb_cstr(&err), "kernel.cu:1"), "%s", sb_cstr(&err));
    sb_clear(&err);
    cr_assert(!simt_compile("__shared__ int ok[4];\nextern __shared__ float s[];\n", &m, &err));
    cr_assert(strstr(sb_cstr(&err), "kernel.cu:2: the emulator supports extern __shared__ only"), "%s",
              sb_cstr(&err));
    sb_free(&err);
}

/* ---- scale and threads ----------------------------------------------------------------------------- */

Test(simt, full_blocks_with_many_barriers, .timeout = 120)
{
    /* 64 blocks of 1024 threads, 20 barriers each: about 1.3 million fiber switches */
    SimtModule *m = compile_ok(
        "extern \"C\" __global__ void rounds(int *out)\n"
        "{\n"
        "    __shared__ int s[1024];\n"
        "    int t = threadIdx.x;\n"
        "    s[t] = t;\n"
        "    for (int r = 0; r < 10; r++) {\n"
        "        __syncthreads();\n"
        "        int v = s[(t + 1) % 1024];\n"
        "        __syncthreads();\n"
        "        s[t] = v;\n"
        "    }\n"
        "    out[blockIdx.x * 1024 + t] = s[t];\n"
        "}\n");
    enum { G = 64 };
    int *out = malloc(G * 1024 * sizeof *out);
    void *args[] = {&out};
    run_ok(m, "rounds", args, d3(G, 1, 1), d3(1024, 1, 1), 0, NULL);
    for (int i = 0; i < G * 1024; i++) cr_assert_eq(out[i], (i % 1024 + 10) % 1024);
    free(out);
    simt_module_free(m);
}

typedef struct Job {
    const SimtKernel *k;
    int *x, *out;
    bool ok;
    StrBuf err;
} Job;

static void *run_job(void *p)
{
    Job *j = p;
    void *args[] = {&j->x, &j->out};
    for (int r = 0; r < 20 && (j->ok = simt_launch(j->k, args, d3(37, 1, 1), d3(256, 1, 1), 0, NULL, &j->err)); r++) {
    }
    return NULL;
}

Test(simt, launches_on_several_threads_at_once, .timeout = 120)
{
    /* the same kernel, with its __shared__ array, on four OS threads */
    SimtModule *m = compile_ok(REDUCE);
    enum { B = 256, G = 37, J = 4 };
    int *x = malloc(B * G * sizeof *x), want[G];
    memset(want, 0, sizeof want);
    for (int i = 0; i < B * G; i++) {
        x[i] = i % 13;
        want[i / B] += x[i];
    }
    Job jobs[J];
    pthread_t th[J];
    for (int j = 0; j < J; j++) {
        jobs[j] = (Job){kernel(m, "block_sum"), x, calloc(G, sizeof(int)), false, {0}};
        cr_assert_eq(pthread_create(&th[j], NULL, run_job, &jobs[j]), 0);
    }
    for (int j = 0; j < J; j++) {
        pthread_join(th[j], NULL);
        cr_assert(jobs[j].ok, "%s", sb_cstr(&jobs[j].err));
        for (int b = 0; b < G; b++) cr_assert_eq(jobs[j].out[b], want[b]);
        free(jobs[j].out);
        sb_free(&jobs[j].err);
    }
    free(x);
    simt_module_free(m);
}

/* ---- the CUDA back end through the emulator, against the interpreter ------------------------------------
 *
 * Every kernel of every stdlib, golden and numeric-test program: fused, lowered, scheduled by
 * pass_gpu_map, generated by codegen/cuda, compiled for the emulator and run by following
 * its launch plan, on the inputs and shape sets of test_equivalence.c, compared with
 * ir_interp_run within the same tolerances (docs/abi.md). On the odd shape set each kernel
 * also runs with every block's threads in reverse order, and must give the same bits: a
 * result that depends on the order threads run between barriers is a race. */
#ifdef TDSL_SIMT_CUDA
#include <dirent.h>

#include "frontend/frontend.h"
#include "passes/passes.h"
#include "runtime/simt/simt_cuda.h"








/* Runs kernel k (of the interpreter's module) and its CUDA version with every size set to
 * sizes[i]; false when a tensor would be empty or too large (the set is skipped). */
static bool compare_cuda(const char *file, const Kernel *k, const SimtCuda *c, const int64_t *sizes, bool reverse,
                         int *checked)
{
    int n = k->nins + k->nouts;
    TensorData *ins = calloc((size_t)n + 1, sizeof(TensorData));
    TensorData *ref = ins + k->nins;
    TensorData *got = calloc((size_t)k->nouts + 1, sizeof(TensorData));
    TensorData *rev = calloc((size_t)k->nouts + 1, sizeof(TensorData));
    bool ok = true;
    for (int i = 0; i < k->nins && ok; i++) ok = shape_of(k, k->ins[i], sizes, &ins[i]);
    for (int o = 0; o < k->nouts && ok; o++)
        ok = shape_of(k, k->outs[o], sizes, &ref[o]) && shape_of(k, k->outs[o], sizes, &got[o]) &&
             shape_of(k, k->outs[o], sizes, &rev[o]);
    if (ok) {
        for (int i = 0; i < k->nins; i++) fill_random(&ins[i], 1234 + (uint64_t)i);
        StrBuf err = {0};
        cr_assert(ir_interp_run(k, sizes, ins, ref, &err), "%s: %s: interpreter: %s", file, k->name, sb_cstr(&err));
        void **buffers = calloc((size_t)n + 1, sizeof(void *));
        for (int i = 0; i < k->nins; i++) buffers[i] = ins[i].data;
        for (int o = 0; o < k->nouts; o++) buffers[k->nins + o] = got[o].data;
        bool ran = simt_cuda_run(c, k->name, buffers, sizes, NULL, &err);
        cr_assert(ran, "%s: %s: the emulator failed:\n%s", file, k->name, sb_cstr(&err));
        if (reverse) {
            for (int o = 0; o < k->nouts; o++) buffers[k->nins + o] = rev[o].data;
            SimtLaunchOptions backwards = {0, true};
            ran = simt_cuda_run(c, k->name, buffers, sizes, &backwards, &err);
            cr_assert(ran, "%s: %s: the emulator failed (threads in reverse order):\n%s", file, k->name, sb_cstr(&err));
            for (int o = 0; o < k->nouts; o++)
                cr_assert(memcmp(rev[o].data, got[o].data, got[o].nbytes) == 0,
                          "%s: kernel %s, output %s differs when the threads of a block run in reverse order (a race "
                          "between barriers?)", file, k->name, k->outs[o]->name);
        }
        free(buffers);
        sb_free(&err);
        for (int o = 0; o < k->nouts; o++) {
            const Tensor *t = k->outs[o];
            size_t cnt = count_of(&ref[o]);
            double scale = 1e-30;
            for (size_t e = 0; dtype_is_float(t->dtype) && e < cnt; e++) {
                double w = fabs(dtype_load_f(t->dtype, ref[o].data, e));
                if (isfinite(w) && w > scale) scale = w;
            }
            for (size_t e = 0; e < cnt; e++) {
                if (dtype_is_float(t->dtype)) {
                    double w = dtype_load_f(t->dtype, ref[o].data, e), g = dtype_load_f(t->dtype, got[o].data, e);
                    cr_assert(close_enough(t->dtype, w, g, scale),
                              "%s: kernel %s, output %s[%zu]: interpreter %.9g, CUDA on the emulator %.9g", file,
                              k->name, t->name, e, w, g);
                } else {
                    int64_t w = dtype_load_i(t->dtype, ref[o].data, e), g = dtype_load_i(t->dtype, got[o].data, e);
                    cr_assert_eq(w, g, "%s: kernel %s, output %s[%zu]: interpreter %lld, CUDA on the emulator %lld",
                                 file, k->name, t->name, e, (long long)w, (long long)g);
                }
            }
        }
        (*checked)++;
    }
    for (int i = 0; i < n; i++) free(ins[i].data);
    for (int o = 0; o < k->nouts; o++) {
        free(got[o].data);
        free(rev[o].data);
    }
    free(ins);
    free(got);
    free(rev);
    return ok;
}

static Module *compile_program(const char *path, DiagSink *d)
{
    diag_init(d, NULL);
    static const char *const inc[] = {TDSL_SOURCE_DIR "/tests/golden/inputs"};
    FeOptions o = {0};
    o.include_dirs = inc;
    o.ninclude = 1;
    o.stdlib_dir = TDSL_SOURCE_DIR "/stdlib";
    return fe_compile_file(path, &o, d);
}

static void check_cuda_file(const char *path, int *checked)
{
    DiagSink d, d2;
    Module *m = compile_program(path, &d);
    cr_assert_not_null(m, "%s does not compile:\n%s", path, sb_cstr(&d.log));
    Module *fused = compile_program(path, &d2);
    cr_assert_not_null(fused);
    pass_fuse(fused, NULL);
    StrBuf err = {0};
    cr_assert(ir_verify(fused, &err), "%s: IR after fusion: %s", path, sb_cstr(&err));
    LoopModule *lm = ir_lower_module(fused, &(LowerOptions){.no_fuse = true, .gpu = true});
    cr_assert(loop_verify(lm, &err), "%s: loop IR: %s", path, sb_cstr(&err));
    LoopModule *g = pass_gpu_map(fused, lm);
    cr_assert(loop_verify(g, &err), "%s: loop IR after gpu_map: %s", path, sb_cstr(&err));
    SimtCuda *c = NULL;
    cr_assert(simt_cuda_build(g, &c, &err), "%s:\n%s", path, sb_cstr(&err));
    static const int64_t sets[3][4] = {{1, 1, 1, 1}, {3, 5, 7, 2}, {33, 17, 64, 9}};
    for (int ki = 0; ki < m->nkernels; ki++) {
        const Kernel *k = m->kernels[ki];
        int64_t *sizes = calloc((size_t)k->nsizes + 1, sizeof(int64_t));
        for (int set = 0; set < 3; set++) {
            for (int s = 0; s < k->nsizes; s++) sizes[s] = sets[set][s % 4];
            bool light = stmts_work(k, k->stmts, k->nstmts, sizes) <= MAX_WORK;
            if ((!light || !compare_cuda(path, k, c, sizes, set == 1, checked)) && set == 2) {
                /* too large: the large set at a smaller scale */
                for (int s = 0; s < k->nsizes; s++) sizes[s] = sets[1][s % 4] * 2 + 1;
                if (stmts_work(k, k->stmts, k->nstmts, sizes) <= MAX_WORK) compare_cuda(path, k, c, sizes, false, checked);
            }
        }
        free(sizes);
    }
    simt_cuda_free(c);
    sb_free(&err);
    ir_module_free(fused);
    ir_module_free(m);
    diag_free(&d);
    diag_free(&d2);
}

static void check_cuda_dir(const char *dir, int *files, int *checked)
{
    DIR *dp = opendir(dir);
    cr_assert_not_null(dp, "cannot open %s", dir);
    struct dirent *e;
    char *names[512];
    int n = 0;
    while ((e = readdir(dp)) && n < 512) {
        size_t len = strlen(e->d_name);
        if (len > 5 && strcmp(e->d_name + len - 5, ".tdsl") == 0) names[n++] = strdup(e->d_name);
    }
    closedir(dp);
    for (int i = 0; i < n; i++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        DiagSink d;
        Module *m = compile_program(path, &d);  /* golden files that are diagnostics do not compile */
        bool compiles = m != NULL;
        if (m) ir_module_free(m);
        diag_free(&d);
        if (compiles) {
            check_cuda_file(path, checked);
            (*files)++;
        }
        free(names[i]);
    }
}

Test(simt_cuda, every_program_against_the_interpreter, .timeout = 1800)
{
    int files = 0, checked = 0;
    check_cuda_dir(TDSL_SOURCE_DIR "/stdlib", &files, &checked);
    check_cuda_dir(TDSL_SOURCE_DIR "/tests/golden", &files, &checked);
    check_cuda_dir(TDSL_SOURCE_DIR "/tests/numeric/progs", &files, &checked);
    cr_log_info("compared %d kernel runs from %d files", checked, files);
    cr_assert_geq(files, 30);
    cr_assert_geq(checked, 100);
}
#else
Test(simt_cuda, every_program_against_the_interpreter)
{
    cr_skip_test("the CUDA back end (codegen/cuda, CMake target tdsl_cuda) is not built: generated CUDA cannot be "
                 "compared with the interpreter on the emulator");
}
#endif
