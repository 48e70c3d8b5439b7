/* ir_build: small builders for hand-made tensor-IR kernels, shared by the unit tests of
 * the IR, the interpreter and the CPU back end. Header-only (static inline): each test uses
 * a different subset. */
#ifndef TDSL_TEST_IR_BUILD_H
#define TDSL_TEST_IR_BUILD_H

#include <criterion/criterion.h>
#include <string.h>

#include "ir/ir.h"

static inline void *grow(Module *m, void *old, int n, size_t elt)
{
    void *p = arena_array(&m->arena, (size_t)n + 1, elt);
    if (n) memcpy(p, old, (size_t)n * elt);
    return p;
}

static inline Var *add_size(Module *m, Kernel *k, const char *name)
{
    Var *v = ir_var_new(m, VAR_SIZE, name, NULL);
    k->sizes = grow(m, k->sizes, k->nsizes, sizeof *k->sizes);
    k->sizes[k->nsizes++] = v;
    return v;
}

static inline Tensor *add_tensor(Module *m, Kernel *k, TensorKind kind, const char *name, DType dt,
                          int rank, Expr **shape)
{
    Tensor *t = ir_tensor_new(m, kind, name, dt, rank, shape);
    if (kind == TK_INPUT) {
        k->ins = grow(m, k->ins, k->nins, sizeof *k->ins);
        k->ins[k->nins++] = t;
    } else if (kind == TK_OUTPUT) {
        k->outs = grow(m, k->outs, k->nouts, sizeof *k->outs);
        k->outs[k->nouts++] = t;
    } else {
        k->temps = grow(m, k->temps, k->ntemps, sizeof *k->temps);
        k->temps[k->ntemps++] = t;
    }
    return t;
}

static inline void add_stmt(Module *m, Kernel *k, Stmt *s)
{
    k->stmts = grow(m, k->stmts, k->nstmts, sizeof *k->stmts);
    k->stmts[k->nstmts++] = s;
}

static inline Stmt *new_scan(Module *m, Var *var, bool reverse, int nstates)
{
    Stmt *s = arena_alloc(&m->arena, sizeof *s);
    s->kind = STMT_SCAN;
    s->scan.var = var;
    s->scan.reverse = reverse;
    s->scan.nstates = nstates;
    s->scan.states = arena_array(&m->arena, (size_t)nstates, sizeof(ScanState));
    return s;
}

static inline void scan_add(Module *m, Stmt *scan, Stmt *s)
{
    scan->scan.body = grow(m, scan->scan.body, scan->scan.nbody, sizeof(Stmt *));
    scan->scan.body[scan->scan.nbody++] = s;
}

static inline Expr *V(Module *m, Var *v) { return ir_var(m, v); }

static inline Expr *I(Module *m, int64_t v) { return ir_const_i(m, DT_I64, v); }

static inline Expr *F(Module *m, double v) { return ir_const_f(m, DT_F32, v); }

static inline Expr *A0(Module *m, Tensor *t) { return ir_access(m, t, NULL, NULL); }

static inline Expr *A1(Module *m, Tensor *t, Expr *i) { return ir_access(m, t, (Expr *[]){i}, NULL); }

static inline Expr *A2(Module *m, Tensor *t, Expr *i, Expr *j)
{
    return ir_access(m, t, (Expr *[]){i, j}, NULL);
}

static inline Expr *bin(Module *m, Op op, Expr *a, Expr *b) { return ir_binary(m, op, a, b); }

static inline void assert_verifies(Module *m)
{
    StrBuf err = {0};
    bool ok = ir_verify(m, &err);
    cr_assert(ok, "verifier: %s", sb_cstr(&err));
    sb_free(&err);
}

#endif
