/* peak.c: the machine's roofline, measured in the run: f32 FMA peak and triad bandwidth.
 *
 * FMA peak: each thread runs a loop of 12 independent AVX-512 FMA chains (acc = acc * m + a
 * on 16 floats each), enough independent accumulators to cover the FMA latency (4 cycles on
 * Zen 4, 2 pipes: 8 in flight; 12 also covers Intel's 2 x 4). 2 FLOP per lane per FMA. On a
 * CPU without AVX-512 the same loop runs on 256-bit AVX2 + FMA registers, and without those
 * on SSE (the figure is then labelled so). The functions carry their target in an attribute,
 * so the rest of the harness is built for the baseline ISA.
 *
 * Triad: a[i] = b[i] + s * c[i] over three arrays of 32 Mi floats (128 MiB each, far past
 * the L3), split evenly over the threads, each thread touching its part first so its pages
 * are local. Bytes counted the STREAM way: 12 per element (two loads, one store; the
 * write-allocate read is not counted).
 *
 * Both start their threads together on a barrier and take the slowest thread's time; the
 * best of several runs is reported (a peak is the best the machine does, not its median). */
#include <immintrin.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

enum {
    FMA_ITERS = 20 * 1000 * 1000,   /* ~0.1 s per run at 100 GFLOP/s per core */
    FMA_RUNS = 5,
    TRIAD_N = 32 * 1024 * 1024,     /* floats per array */
    TRIAD_RUNS = 6,
    MAX_THREADS = 256,
};

typedef struct PeakThread {
    pthread_t tid;            /* the thread */
    pthread_barrier_t *go;    /* released when every thread is ready */
    int isa;                  /* 2: AVX-512, 1: AVX2 + FMA, 0: SSE */
    float *a, *b, *c;         /* triad: this thread's slices */
    size_t n;                 /* triad: elements in the slices */
    double seconds;           /* this thread's elapsed time */
    float sink;               /* keeps the FMA results alive */
} PeakThread;

__attribute__((target("avx512f"))) static float fma_avx512(void)
{
    __m512 m = _mm512_set1_ps(0.999999f), a = _mm512_set1_ps(1e-7f);
    __m512 x0 = _mm512_set1_ps(1.0f), x1 = _mm512_set1_ps(1.1f), x2 = _mm512_set1_ps(1.2f);
    __m512 x3 = _mm512_set1_ps(1.3f), x4 = _mm512_set1_ps(1.4f), x5 = _mm512_set1_ps(1.5f);
    __m512 x6 = _mm512_set1_ps(1.6f), x7 = _mm512_set1_ps(1.7f), x8 = _mm512_set1_ps(1.8f);
    __m512 x9 = _mm512_set1_ps(1.9f), x10 = _mm512_set1_ps(2.0f), x11 = _mm512_set1_ps(2.1f);
    for (long i = 0; i < FMA_ITERS; i++) {
        x0 = _mm512_fmadd_ps(x0, m, a);
        x1 = _mm512_fmadd_ps(x1, m, a);
        x2 = _mm512_fmadd_ps(x2, m, a);
        x3 = _mm512_fmadd_ps(x3, m, a);
        x4 = _mm512_fmadd_ps(x4, m, a);
        x5 = _mm512_fmadd_ps(x5, m, a);
        x6 = _mm512_fmadd_ps(x6, m, a);
        x7 = _mm512_fmadd_ps(x7, m, a);
        x8 = _mm512_fmadd_ps(x8, m, a);
        x9 = _mm512_fmadd_ps(x9, m, a);
        x10 = _mm512_fmadd_ps(x10, m, a);
        x11 = _mm512_fmadd_ps(x11, m, a);
    }
    __m512 s = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(x0, x1), _mm512_add_ps(x2, x3)),
                             _mm512_add_ps(_mm512_add_ps(x4, x5), _mm512_add_ps(x6, x7)));
    s = _mm512_add_ps(s, _mm512_add_ps(_mm512_add_ps(x8, x9), _mm512_add_ps(x10, x11)));
    return _mm512_reduce_add_ps(s);
}

__attribute__((target("avx2,fma"))) static float fma_avx2(void)
{
    __m256 m = _mm256_set1_ps(0.999999f), a = _mm256_set1_ps(1e-7f);
    __m256 x[12];
    for (int j = 0; j < 12; j++) x[j] = _mm256_set1_ps(1.0f + 0.1f * (float)j);
    for (long i = 0; i < FMA_ITERS; i++)
        for (int j = 0; j < 12; j++) x[j] = _mm256_fmadd_ps(x[j], m, a);
    float out[8], s = 0;
    for (int j = 1; j < 12; j++) x[0] = _mm256_add_ps(x[0], x[j]);
    _mm256_storeu_ps(out, x[0]);
    for (int j = 0; j < 8; j++) s += out[j];
    return s;
}

static float fma_sse(void)
{
    __m128 m = _mm_set1_ps(0.999999f), a = _mm_set1_ps(1e-7f);
    __m128 x[12];
    for (int j = 0; j < 12; j++) x[j] = _mm_set1_ps(1.0f + 0.1f * (float)j);
    for (long i = 0; i < FMA_ITERS; i++)
        for (int j = 0; j < 12; j++) x[j] = _mm_add_ps(_mm_mul_ps(x[j], m), a);
    float out[4], s = 0;
    for (int j = 1; j < 12; j++) x[0] = _mm_add_ps(x[0], x[j]);
    _mm_storeu_ps(out, x[0]);
    for (int j = 0; j < 4; j++) s += out[j];
    return s;
}

static void *fma_thread(void *arg)
{
    PeakThread *t = arg;
    pthread_barrier_wait(t->go);
    double t0 = bench_now();
    t->sink = t->isa == 2 ? fma_avx512() : t->isa == 1 ? fma_avx2() : fma_sse();
    t->seconds = bench_now() - t0;
    return NULL;
}

__attribute__((target("avx512f"))) static void triad_avx512(float *a, const float *b, const float *c, size_t n)
{
    __m512 s = _mm512_set1_ps(3.0f);
    size_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_store_ps(a + i, _mm512_fmadd_ps(s, _mm512_load_ps(c + i), _mm512_load_ps(b + i)));
    for (; i < n; i++) a[i] = b[i] + 3.0f * c[i];
}

static void triad_plain(float *a, const float *b, const float *c, size_t n)
{
    for (size_t i = 0; i < n; i++) a[i] = b[i] + 3.0f * c[i];
}

static void *triad_thread(void *arg)
{
    PeakThread *t = arg;
    for (size_t i = 0; i < t->n; i++) {  /* first touch by the thread that streams it */
        t->a[i] = 0;
        t->b[i] = 1;
        t->c[i] = 2;
    }
    pthread_barrier_wait(t->go);
    double best = 1e30;
    for (int r = 0; r < TRIAD_RUNS; r++) {
        pthread_barrier_wait(t->go);
        double t0 = bench_now();
        if (t->isa == 2) triad_avx512(t->a, t->b, t->c, t->n);
        else triad_plain(t->a, t->b, t->c, t->n);
        pthread_barrier_wait(t->go);    /* the run ends when the slowest thread is done */
        double dt = bench_now() - t0;
        if (dt < best) best = dt;
    }
    t->seconds = best;
    t->sink = t->a[t->n / 2];
    return NULL;
}

static int detect_isa(void)
{
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) return 2;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return 1;
    return 0;
}

double peak_fma_gflops(int threads, char *isa, size_t isa_len)
{
    if (threads < 1 || threads > MAX_THREADS) return -1;
    int kind = detect_isa();
    int lanes = kind == 2 ? 16 : kind == 1 ? 8 : 4;
    snprintf(isa, isa_len, "%s", kind == 2 ? "AVX-512 FMA" : kind == 1 ? "AVX2 FMA" : "SSE mul+add");
    PeakThread *t = calloc((size_t)threads, sizeof *t);
    if (!t) return -1;
    pthread_barrier_t go;
    double best = 0;
    for (int r = 0; r < FMA_RUNS; r++) {
        pthread_barrier_init(&go, NULL, (unsigned)threads);
        for (int i = 0; i < threads; i++) {
            t[i].go = &go;
            t[i].isa = kind;
            pthread_create(&t[i].tid, NULL, fma_thread, &t[i]);
        }
        double slowest = 0;
        for (int i = 0; i < threads; i++) {
            pthread_join(t[i].tid, NULL);
            if (t[i].seconds > slowest) slowest = t[i].seconds;
        }
        pthread_barrier_destroy(&go);
        /* SSE: a mul and an add count as the two flops of an FMA */
        double flops = (double)threads * FMA_ITERS * 12.0 * lanes * 2.0;
        double g = flops / slowest / 1e9;
        if (g > best) best = g;
    }
    free(t);
    return best;
}

double peak_triad_gbs(int threads)
{
    if (threads < 1 || threads > MAX_THREADS) return -1;
    size_t n = TRIAD_N;
    float *a = aligned_alloc(64, n * sizeof(float)), *b = aligned_alloc(64, n * sizeof(float));
    float *c = aligned_alloc(64, n * sizeof(float));
    PeakThread *t = calloc((size_t)threads, sizeof *t);
    double gbs = -1;
    if (a && b && c && t) {
        pthread_barrier_t go;
        pthread_barrier_init(&go, NULL, (unsigned)threads);
        size_t per = (n / (size_t)threads) / 16 * 16;   /* 64-byte aligned slices */
        for (int i = 0; i < threads; i++) {
            size_t lo = per * (size_t)i, hi = i == threads - 1 ? n : lo + per;
            t[i] = (PeakThread){.go = &go, .isa = detect_isa(), .a = a + lo, .b = b + lo, .c = c + lo, .n = hi - lo};
            pthread_create(&t[i].tid, NULL, triad_thread, &t[i]);
        }
        double slowest = 0;
        for (int i = 0; i < threads; i++) {
            pthread_join(t[i].tid, NULL);
            if (t[i].seconds > slowest) slowest = t[i].seconds;
        }
        pthread_barrier_destroy(&go);
        gbs = 12.0 * (double)n / slowest / 1e9;
    }
    free(a);
    free(b);
    free(c);
    free(t);
    return gbs;
}
