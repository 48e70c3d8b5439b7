/* host_aot: a C program calling kernels built ahead of time.
 *
 * `tcc examples/model.tdsl -o model.so --header model.h` builds the stdlib's layer
 * normalisation and attention into a shared library; this program includes model.h,
 * links model.so, calls both kernels through their typed C functions on DLPack tensors,
 * and prints a checksum of each output and the time of one call. */
#include <dlpack/dlpack.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "model.h"

static DLTensor tensor(float *data, int ndim, int64_t *shape)
{
    DLTensor t;
    memset(&t, 0, sizeof t);
    t.data = data;
    t.device.device_type = kDLCPU;
    t.ndim = ndim;
    t.dtype.code = kDLFloat;
    t.dtype.bits = 32;
    t.dtype.lanes = 1;
    t.shape = shape;
    return t;
}

static float *filled(size_t n, double phase)
{
    float *p = malloc(sizeof(float) * n);
    for (size_t i = 0; i < n; i++) p[i] = (float)sin(phase + 0.013 * (double)i);
    return p;
}

static double checksum(const float *p, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++) s += p[i];
    return s;
}

static double seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int main(void)
{
    enum { N = 256, D = 64, B = 1, H = 4, T = 128 };
    /* layernorm over rows of 64 */
    float *x = filled(N * D, 0.1), *g = filled(D, 0.7), *b = filled(D, 1.3), eps = 1e-5f, *y = calloc(N * D, sizeof(float));
    int64_t sx[2] = {N, D}, sd[1] = {D};
    DLTensor tx = tensor(x, 2, sx), tg = tensor(g, 1, sd), tb = tensor(b, 1, sd), te = tensor(&eps, 0, NULL), ty = tensor(y, 2, sx);
    double t0 = seconds();
    int rc = layernorm(&tx, &tg, &tb, &te, &ty);
    double t1 = seconds();
    if (rc != 0) {
        fprintf(stderr, "layernorm: %s\n", tdsl_last_error());
        return 1;
    }
    printf("layernorm %dx%d: checksum %.6f, %.3f ms\n", N, D, checksum(y, N * D), 1e3 * (t1 - t0));

    /* attention, B x H x T x D */
    size_t n = (size_t)B * H * T * D;
    float *q = filled(n, 0.2), *k = filled(n, 0.5), *v = filled(n, 0.9), *o = calloc(n, sizeof(float));
    int64_t sa[4] = {B, H, T, D};
    DLTensor tq = tensor(q, 4, sa), tk = tensor(k, 4, sa), tv = tensor(v, 4, sa), to = tensor(o, 4, sa);
    t0 = seconds();
    rc = attention(&tq, &tk, &tv, &to);
    t1 = seconds();
    if (rc != 0) {
        fprintf(stderr, "attention: %s\n", tdsl_last_error());
        return 1;
    }
    printf("attention %dx%dx%dx%d: checksum %.6f, %.3f ms\n", B, H, T, D, checksum(o, n), 1e3 * (t1 - t0));

    /* a mismatched call is refused, with the reason */
    int64_t bad[4] = {B, H, T, D / 2};
    DLTensor tk_bad = tensor(k, 4, bad);
    rc = attention(&tq, &tk_bad, &tv, &to);
    printf("attention with k of last size %d: %d (%s)\n", D / 2, rc, tdsl_last_error());
    free(x); free(g); free(b); free(y); free(q); free(k); free(v); free(o);
    return rc == 0 ? 1 : 0;
}
