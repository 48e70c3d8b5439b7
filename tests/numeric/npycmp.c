/* npycmp: compares two .npy files element by element, for the numeric tests.
 *
 *     npycmp ACTUAL EXPECTED [--rtol R] [--atol A]
 *
 * Elements match when |a - b| <= atol + rtol * |b| (b from EXPECTED), or when both are NaN,
 * or both are the same infinity. When EXPECTED holds integers or bools the match must be
 * exact, whatever the tolerances. The dtypes may differ (a kernel's f32 result against an f64
 * reference); the shapes may not. Exit status: 0 all match, 1 mismatch (the count and the
 * worst element with its index are printed), 2 usage or file error. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "driver/npy.h"

static const double DEFAULT_RTOL = 1e-6, DEFAULT_ATOL = 1e-7;

static double load(const TensorData *t, size_t i)
{
    return dtype_is_float(t->dtype) ? dtype_load_f(t->dtype, t->data, i)
                                    : (double)dtype_load_i(t->dtype, t->data, i);
}

static bool parse_tol(const char *s, double *out)
{
    char *end;
    *out = strtod(s, &end);
    return *s && !*end && *out >= 0 && isfinite(*out);
}

/* Reads both files into a and b (freed by the caller) and compares them; returns the exit
 * status. */
static int compare_files(const char *const files[2], double rtol, double atol, TensorData *a,
                         TensorData *b, StrBuf *err)
{
    if (!npy_read(files[0], a, err) || !npy_read(files[1], b, err)) return 2;
    bool same_shape = a->rank == b->rank;
    for (int i = 0; same_shape && i < a->rank; i++) same_shape = a->shape[i] == b->shape[i];
    if (!same_shape) {
        StrBuf sa = {0}, sb = {0};
        npy_format_shape(a, &sa);
        npy_format_shape(b, &sb);
        printf("npycmp: shape mismatch: %s has shape %s but %s has shape %s\n", files[0],
               sb_cstr(&sa), files[1], sb_cstr(&sb));
        sb_free(&sa);
        sb_free(&sb);
        return 1;
    }

    if (!dtype_is_float(b->dtype)) rtol = atol = 0;   /* integers and bools: exact */
    bool both_int = !dtype_is_float(a->dtype) && !dtype_is_float(b->dtype);
    size_t n = npy_count(a), bad = 0, worst = 0;
    double worst_excess = -1, max_diff = 0;
    for (size_t i = 0; i < n; i++) {
        if (both_int && dtype_load_i(a->dtype, a->data, i) == dtype_load_i(b->dtype, b->data, i))
            continue;
        double x = load(a, i), y = load(b, i);
        double diff = fabs(x - y), allowed = atol + rtol * fabs(y), excess;
        if ((x == y && !both_int) || (isnan(x) && isnan(y))) continue;
        if (isnan(x) || isnan(y) || isinf(x) || isinf(y)) excess = INFINITY;
        else excess = allowed > 0 ? diff / allowed : INFINITY;
        if (!isinf(excess) && diff > max_diff) max_diff = diff;
        if (diff > allowed || isinf(excess)) bad++;
        if (excess > worst_excess) {
            worst_excess = excess;
            worst = i;
        }
    }
    StrBuf idx = {0};
    npy_format_index(a, worst, &idx);
    double x = n ? load(a, worst) : 0, y = n ? load(b, worst) : 0;
    if (bad) {
        printf("npycmp: MISMATCH %s vs %s: %zu of %zu elements differ (rtol %g, atol %g)\n",
               files[0], files[1], bad, n, rtol, atol);
        printf("  worst at %s: actual %.9g, expected %.9g, |diff| %.3g, allowed %.3g\n",
               sb_cstr(&idx), x, y, fabs(x - y), atol + rtol * fabs(y));
    } else {
        printf("npycmp: ok %s: %zu elements, max |diff| %.3g", files[0], n, max_diff);
        if (worst_excess > 0) printf(" at %s (%.2f of the tolerance)", sb_cstr(&idx), worst_excess);
        printf("\n");
    }
    sb_free(&idx);
    return bad ? 1 : 0;
}

static int usage(void)
{
    fprintf(stderr, "usage: npycmp ACTUAL.npy EXPECTED.npy [--rtol R] [--atol A]\n"
                    "  defaults: rtol %g, atol %g\n", DEFAULT_RTOL, DEFAULT_ATOL);
    return 2;
}

int main(int argc, char **argv)
{
    const char *files[2] = {NULL, NULL};
    int nfiles = 0;
    double rtol = DEFAULT_RTOL, atol = DEFAULT_ATOL;
    for (int i = 1; i < argc; i++) {
        if ((strcmp(argv[i], "--rtol") == 0 || strcmp(argv[i], "--atol") == 0) && i + 1 < argc) {
            if (!parse_tol(argv[i + 1], argv[i][2] == 'r' ? &rtol : &atol)) return usage();
            i++;
        } else if (argv[i][0] != '-' && nfiles < 2) {
            files[nfiles++] = argv[i];
        } else {
            return usage();
        }
    }
    if (nfiles != 2) return usage();

    TensorData a = {0}, b = {0};
    StrBuf err = {0};
    int rc = compare_files(files, rtol, atol, &a, &b, &err);
    if (rc == 2) fprintf(stderr, "npycmp: %s\n", sb_cstr(&err));
    sb_free(&err);
    npy_free(&a);
    npy_free(&b);
    return rc;
}
