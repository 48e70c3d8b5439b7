/* host_jit: a C program that embeds the tdsl JIT.
 *
 * It compiles a fused op (bias + GELU + residual, the text of examples/custom_op.tdsl)
 * from a string with tdsl_compile, calls it on DLPack tensors, checks every element
 * against the same formula written in plain C, and shows that a bad call is refused with
 * a message and leaves the output untouched. Exit status 0 when everything matched. */
#include <dlpack/dlpack.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "runtime/tdsl.h"

static const char *SOURCE =
    "import \"nn\"\n"
    "kernel bias_gelu_residual(h: f32[N, D], b: f32[D], r: f32[N, D]) -> y: f32[N, D] {\n"
    "    y[n, d] = r[n, d] + gelu(h[n, d] + b[d])\n"
    "}\n";

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

static double seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int main(void)
{
    enum { N = 64, D = 96 };
    double t0 = seconds();
    tdsl_module *m = NULL;
    if (tdsl_compile(SOURCE, "bias_gelu_residual.tdsl", NULL, &m) != TDSL_OK) {
        fprintf(stderr, "compile failed:\n%s\n", tdsl_last_error());
        return 1;
    }
    double t1 = seconds();
    tdsl_kernel *k = tdsl_kernel_get(m, "bias_gelu_residual");
    if (!k) {
        fprintf(stderr, "%s\n", tdsl_last_error());
        tdsl_module_free(m);
        return 1;
    }
    float *h = malloc(sizeof(float) * N * D), *r = malloc(sizeof(float) * N * D);
    float *y = malloc(sizeof(float) * N * D), b[D];
    for (int i = 0; i < N * D; i++) {
        h[i] = (float)sin(0.37 * i);
        r[i] = (float)cos(0.11 * i);
    }
    for (int d = 0; d < D; d++) b[d] = 0.01f * (float)d - 0.4f;
    int64_t shape2[2] = {N, D}, shape1[1] = {D};
    DLTensor th = tensor(h, 2, shape2), tb = tensor(b, 1, shape1), tr = tensor(r, 2, shape2), ty = tensor(y, 2, shape2);
    DLTensor *args[4] = {&th, &tb, &tr, &ty};
    int rc = tdsl_kernel_call(k, args, 4);
    if (rc != TDSL_OK) {
        fprintf(stderr, "call failed: %s\n", tdsl_last_error());
        return 1;
    }
    double worst = 0;
    for (int n = 0; n < N; n++)
        for (int d = 0; d < D; d++) {
            double x = (double)h[n * D + d] + b[d];
            double want = r[n * D + d] + 0.5 * x * (1 + erf(x / sqrt(2.0)));
            double err = fabs(y[n * D + d] - want) / (1.0 + fabs(want));
            if (err > worst) worst = err;
        }
    /* A wrong call: the bias has the wrong length. Nothing is written. */
    int64_t bad_shape[1] = {D - 1};
    DLTensor tbad = tensor(b, 1, bad_shape);
    y[0] = 12345.0f;
    DLTensor *bad[4] = {&th, &tbad, &tr, &ty};
    int bad_rc = tdsl_kernel_call(k, bad, 4);
    printf("compiled %s in %.1f ms\n", tdsl_kernel_signature(k), 1e3 * (t1 - t0));
    printf("bias_gelu_residual on %dx%d: worst error vs C (relative to 1 + |y|) %.2e\n", N, D, worst);
    printf("a call with a bias of length %d returns %d: %s\n", D - 1, bad_rc, tdsl_last_error());
    bool ok = worst < 1e-5 && bad_rc == TDSL_ERR_ARG && y[0] == 12345.0f;
    printf("%s\n", ok ? "host_jit: OK" : "host_jit: FAILED");
    free(h);
    free(r);
    free(y);
    tdsl_module_free(m);
    return ok ? 0 : 1;
}
