/* bench_jit_compile: how long the JIT takes from source text to a callable kernel.
 *
 * Compiles a .tdsl file (default: stdlib/attention.tdsl) with tdsl_compile REPS times
 * (default 11), looks up a kernel (default: attention), and prints the median and the
 * minimum wall time. Usage: bench_jit_compile [FILE [KERNEL [REPS]]]. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "runtime/tdsl.h"
#include "support/support.h"

static double seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    const char *path = argc > 1 ? argv[1] : TDSL_SOURCE_DIR "/stdlib/attention.tdsl";
    const char *kernel = argc > 2 ? argv[2] : "attention";
    int reps = argc > 3 ? atoi(argv[3]) : 11;
    if (reps < 1 || reps > 1000) reps = 11;
    size_t len;
    const char *why;
    char *src = read_file_all(path, &len, &why);
    if (!src) {
        fprintf(stderr, "bench_jit_compile: cannot read %s: %s\n", path, why);
        return 1;
    }
    double *t = malloc(sizeof(double) * (size_t)reps);
    for (int i = 0; i < reps; i++) {
        double t0 = seconds();
        tdsl_module *m = NULL;
        if (tdsl_compile(src, path, NULL, &m) != TDSL_OK || !tdsl_kernel_get(m, kernel)) {
            fprintf(stderr, "bench_jit_compile: %s\n", tdsl_last_error());
            return 1;
        }
        t[i] = seconds() - t0;
        tdsl_module_free(m);
    }
    qsort(t, (size_t)reps, sizeof(double), cmp);
    printf("jit compile of %s (kernel %s, whole file): median %.1f ms, min %.1f ms over %d runs\n", path, kernel,
           1e3 * t[reps / 2], 1e3 * t[0], reps);
    free(t);
    free(src);
    return 0;
}
