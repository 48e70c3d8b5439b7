/* kernel_data: random inputs, shapes and tolerances for the tests that run whole kernels
 * against the reference interpreter (test_equivalence: the CPU back end; test_simt: the
 * CUDA back end on the emulator). Header-only (static inline). Tolerances per output dtype,
 * documented in docs/abi.md: |got - want| <= rtol * |want| + atol * scale, where scale is
 * the largest magnitude in the reference output (an absolute error relative to the size of
 * the numbers computed); integers and bool exactly. Inputs are uniform in [-1, 1), integers
 * in [-8, 8) clamped to the dtype. */
#ifndef TDSL_TEST_KERNEL_DATA_H
#define TDSL_TEST_KERNEL_DATA_H

#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>

#include "ir/ir.h"

enum { MAX_ELEMENTS = 1 << 20 };

static inline uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Allocates td for tensor t at the bound sizes; false when the shape is empty or larger than
 * MAX_ELEMENTS (the shape set is skipped). */
static inline bool shape_of(const Kernel *k, const Tensor *t, const int64_t *sizes, TensorData *td)
{
    td->dtype = t->dtype;
    td->rank = t->rank;
    size_t count = 1;
    for (int i = 0; i < t->rank; i++) {
        if (!ir_eval_size(k, t->shape[i], sizes, &td->shape[i]) || td->shape[i] < 1) return false;
        count *= (size_t)td->shape[i];
        if (count > MAX_ELEMENTS) return false;
    }
    if (!dtype_storage_bytes(t->dtype, count, &td->nbytes)) return false;
    td->data = calloc(td->nbytes + 1, 1);
    cr_assert_not_null(td->data);
    return true;
}

static inline size_t count_of(const TensorData *td)
{
    size_t n = 1;
    for (int i = 0; i < td->rank; i++) n *= (size_t)td->shape[i];
    return n;
}

static inline void fill_random(TensorData *td, uint64_t seed)
{
    size_t n = count_of(td);
    for (size_t i = 0; i < n; i++) {
        uint64_t r = splitmix(&seed);
        if (dtype_is_float(td->dtype)) {
            double v = dtype_round_f(td->dtype, (double)(r >> 11) / 9007199254740992.0 * 2.0 - 1.0);
            dtype_store_f(td->dtype, td->data, i, v);
        } else if (td->dtype == DT_BOOL) {
            dtype_store_i(td->dtype, td->data, i, (int64_t)(r & 1));
        } else {
            int64_t lo, hi;
            dtype_int_range(td->dtype, &lo, &hi);
            int64_t v = (int64_t)(r % 16) - 8;
            dtype_store_i(td->dtype, td->data, i, v < lo ? lo : v > hi ? hi : v);
        }
    }
}

static inline bool close_enough(DType t, double want, double got, double scale)
{
    if (isnan(want) || isnan(got)) return isnan(want) && isnan(got);
    if (isinf(want) || isinf(got)) return want == got;
    double d = fabs(want - got);
    switch (t) {
    case DT_F64: return d <= 1e-12 * fabs(want) + 1e-12 * scale;
    case DT_F32: return d <= 2e-5 * fabs(want) + 1e-4 * scale;
    case DT_F16: return d <= 2 * 9.77e-4 * fabs(want) + 4e-3 * scale;
    case DT_BF16: return d <= 2 * 7.82e-3 * fabs(want) + 3e-2 * scale;
    case DT_BOOL: case DT_I2: case DT_I4: case DT_U4: case DT_I8: case DT_U8: case DT_I16:
    case DT_I32: case DT_I64: case DT_COUNT:
        break;
    }
    return d == 0;
}

/* Roughly how many scalar evaluations the interpreter makes: per definition, the product of
 * its index and reduction extents; a scan multiplies its body by its steps. The interpreter
 * takes about a second per ten million; shape sets above MAX_WORK are scaled down. */
enum { MAX_WORK = 20000000 };

static inline double stmts_work(const Kernel *k, Stmt *const *stmts, int n, const int64_t *sizes)
{
    double w = 0;
    for (int i = 0; i < n; i++) {
        const Stmt *st = stmts[i];
        double e = 1;
        int64_t v;
        if (st->kind == STMT_DEF) {
            for (int a = 0; a < st->def.dst->rank; a++)
                if (st->def.idx[a]->kind == VAR_INDEX)
                    e *= ir_eval_size(k, st->def.idx[a]->extent, sizes, &v) ? (double)v : 1e30;
            for (int r = 0; r < st->def.nred; r++)
                e *= ir_eval_size(k, st->def.red[r]->extent, sizes, &v) ? (double)v : 1e30;
        } else {
            e = (ir_eval_size(k, st->scan.var->extent, sizes, &v) ? (double)v : 1e30) *
                stmts_work(k, st->scan.body, st->scan.nbody, sizes);
        }
        w += e;
    }
    return w;
}

#endif
