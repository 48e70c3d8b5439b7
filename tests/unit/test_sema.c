/* Unit tests of semantic analysis: the IR it builds (sizes, temporaries, hoisting, inlining,
 * scans), its error recovery, and the bounds prover behind section 7 of LANGUAGE.md. */
#include <criterion/criterion.h>
#include <string.h>

#include "frontend/sema_internal.h"

static Module *compile(const char *src, DiagSink *d)
{
    diag_init(d, NULL);
    FeOptions o = {0};
    o.stdlib_dir = TDSL_SOURCE_DIR "/stdlib";
    return fe_compile_source("t.tdsl", src, strlen(src), &o, d);
}

static Kernel *kernel_named(Module *m, const char *name)
{
    for (int i = 0; i < m->nkernels; i++)
        if (strcmp(m->kernels[i]->name, name) == 0) return m->kernels[i];
    return NULL;
}

Test(sema, sizes_in_order_of_first_use)
{
    DiagSink d;
    Module *m = compile("kernel k(x: f32[N, D], w: f32[D, M]) -> y: f32[N, M] {\n"
                        "    y[n, m] = sum[d](x[n, d] * w[d, m])\n}\n", &d);
    cr_assert_not_null(m, "%s", sb_cstr(&d.log));
    Kernel *k = kernel_named(m, "k");
    cr_assert_eq(k->nsizes, 3);
    cr_assert_str_eq(k->sizes[0]->name, "N");
    cr_assert_str_eq(k->sizes[1]->name, "D");
    cr_assert_str_eq(k->sizes[2]->name, "M");
    cr_assert_eq(k->nstmts, 1);
    cr_assert_eq(k->stmts[0]->def.rop, RED_SUM);
    StrBuf err = {0};
    cr_assert(ir_verify(m, &err), "%s", sb_cstr(&err));
    sb_free(&err);
    ir_module_free(m);
    diag_free(&d);
}

Test(sema, nested_reduction_is_hoisted)
{
    DiagSink d;
    Module *m = compile("kernel k(x: f32[N, D]) -> y: f32[N] {\n"
                        "    y[n] = sum[d](x[n, d]) * 2 + max[d](x[n, d])\n}\n", &d);
    cr_assert_not_null(m, "%s", sb_cstr(&d.log));
    Kernel *k = kernel_named(m, "k");
    cr_assert_eq(k->nstmts, 3, "two hoisted reductions and the definition");
    cr_assert_eq(k->ntemps, 2);
    cr_assert_eq(k->temps[0]->rank, 1, "indexed by n only");
    cr_assert_eq(k->stmts[2]->def.rop, RED_NONE);
    ir_module_free(m);
    diag_free(&d);
}

Test(sema, fn_on_scalars_is_substituted)
{
    DiagSink d;
    Module *m = compile("fn sq(x: f32) -> f32 { return x * x }\n"
                        "kernel k(x: f32[N]) -> y: f32[N] { y[i] = sq(x[i] + 1) }\n", &d);
    cr_assert_not_null(m, "%s", sb_cstr(&d.log));
    Kernel *k = kernel_named(m, "k");
    cr_assert_eq(k->nstmts, 1, "no temporary for a scalar call");
    cr_assert_eq(k->stmts[0]->def.body->op, OP_MUL);
    ir_module_free(m);
    diag_free(&d);
}

Test(sema, stdlib_softmax_inlines_with_batch_dims)
{
    DiagSink d;
    Module *m = compile("import \"nn\"\n"
                        "kernel k(x: f32[B, H, N]) -> y: f32[B, H, N] { y = softmax(x) }\n", &d);
    cr_assert_not_null(m, "%s", sb_cstr(&d.log));
    Kernel *k = kernel_named(m, "k");
    cr_assert_geq(k->ntemps, 3);
    cr_assert_eq(k->temps[0]->rank, 2, "the row max keeps the two batch axes");
    ir_module_free(m);
    diag_free(&d);
}

Test(sema, scan_state_gets_next_tensor)
{
    DiagSink d;
    Module *m = compile("kernel k(x: f32[T]) -> y: f32[T] {\n"
                        "    scan t < T with h: f32 = 0 {\n"
                        "        h = h + x[t]\n"
                        "        y[t] = h\n"
                        "    }\n}\n", &d);
    cr_assert_not_null(m, "%s", sb_cstr(&d.log));
    Kernel *k = kernel_named(m, "k");
    cr_assert_eq(k->nstmts, 1);
    const Scan *sc = &k->stmts[0]->scan;
    cr_assert_eq(k->stmts[0]->kind, STMT_SCAN);
    cr_assert_eq(sc->nstates, 1);
    cr_assert_not_null(sc->states[0].next);
    cr_assert_eq(sc->nbody, 2);
    /* the read after the redefinition sees the new value */
    cr_assert_eq(sc->body[1]->def.body->tensor, sc->states[0].next);
    ir_module_free(m);
    diag_free(&d);
}

Test(sema, independent_errors_are_all_reported)
{
    DiagSink d;
    Module *m = compile("kernel a(x: f32[N]) -> y: f32[N] { y[i] = x[i + 1] }\n"
                        "kernel b(x: f32[N]) -> y: f32[N] { y[i] = q[i] }\n"
                        "kernel c(x: f32[N], n: i8[N]) -> y: f32[N] { y[i] = x[i] + n[i] }\n", &d);
    cr_assert_null(m);
    cr_assert_eq(d.nerrors, 3, "%s", sb_cstr(&d.log));
    cr_assert(strstr(sb_cstr(&d.log), "t.tdsl:1:43: error: access x[i + 1] may be out of bounds"));
    cr_assert(strstr(sb_cstr(&d.log), "t.tdsl:2:43: error: undefined name 'q'"));
    cr_assert(strstr(sb_cstr(&d.log), "t.tdsl:3:53: error: mismatched types in +: f32 and i8"));
    diag_free(&d);
}

Test(sema, a_failed_definition_does_not_cascade)
{
    DiagSink d;
    Module *m = compile("kernel a(x: f32[N]) -> y: f32[N] {\n"
                        "    t[i] = x[i] + nope[i]\n"
                        "    y[i] = t[i] * 2\n}\n", &d);
    cr_assert_null(m);
    cr_assert_eq(d.nerrors, 1, "%s", sb_cstr(&d.log));
    diag_free(&d);
}

/* ---- the bounds prover ---- */

Test(bounds, affine_intervals)
{
    Module *m = ir_module_new();
    Bounds *b = bounds_new();
    Var *N = ir_var_new(m, VAR_SIZE, "N", NULL);
    Var *i = ir_var_new(m, VAR_INDEX, "i", ir_var(m, N));
    Expr *e = ir_binary(m, OP_ADD, ir_binary(m, OP_MUL, ir_const_i(m, DT_I64, 2), ir_var(m, i)), ir_const_i(m, DT_I64, 1));
    Poly lo, hi;
    cr_assert(index_interval(b, e, &lo, &hi));
    StrBuf sb = {0};
    poly_print(b, &lo, &sb);
    sb_puts(&sb, " ");
    poly_print(b, &hi, &sb);
    cr_assert_str_eq(sb_cstr(&sb), "1 2*N - 1");
    /* 2i + 1 <= 2N - 1 fits an axis of 2N, not one of N */
    Poly two_n = poly_from_size(b, ir_binary(m, OP_MUL, ir_const_i(m, DT_I64, 2), ir_var(m, N)));
    Poly one = poly_const(1);
    Poly last = poly_sub(&two_n, &one), room = poly_sub(&last, &hi);
    cr_assert(poly_nonneg(b, &room));
    Poly n = poly_from_size(b, ir_var(m, N));
    Poly last_n = poly_sub(&n, &one), room_n = poly_sub(&last_n, &hi);
    cr_assert_not(poly_nonneg(b, &room_n));
    sb_free(&sb);
    bounds_free(b);
    ir_module_free(m);
}

Test(bounds, floor_division_of_sizes)
{
    Module *m = ir_module_new();
    Bounds *b = bounds_new();
    Var *K = ir_var_new(m, VAR_SIZE, "K", NULL);
    Expr *half = ir_binary(m, OP_DIV, ir_var(m, K), ir_const_i(m, DT_I64, 2));
    Poly h = poly_from_size(b, half), k = poly_from_size(b, ir_var(m, K));
    Poly two = poly_const(2), twice = poly_mul(&two, &h);
    Poly room = poly_sub(&k, &twice);          /* K - 2*(K / 2) >= 0 */
    cr_assert(poly_nonneg(b, &room));
    Poly one = poly_const(1), more = poly_add(&twice, &one);
    Poly bad = poly_sub(&k, &more);            /* K - 2*(K / 2) - 1 can be negative */
    cr_assert_not(poly_nonneg(b, &bad));
    bounds_free(b);
    ir_module_free(m);
}

Test(bounds, products_of_index_variables_are_not_affine)
{
    Module *m = ir_module_new();
    Bounds *b = bounds_new();
    Var *N = ir_var_new(m, VAR_SIZE, "N", NULL);
    Var *i = ir_var_new(m, VAR_INDEX, "i", ir_var(m, N));
    Var *j = ir_var_new(m, VAR_INDEX, "j", ir_var(m, N));
    Poly lo, hi;
    cr_assert_not(index_interval(b, ir_binary(m, OP_MUL, ir_var(m, i), ir_var(m, j)), &lo, &hi));
    cr_assert(index_interval(b, ir_binary(m, OP_MUL, ir_var(m, i), ir_var(m, N)), &lo, &hi));
    bounds_free(b);
    ir_module_free(m);
}
