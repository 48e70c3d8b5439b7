/* Unit tests of ir/ir.c, ir/print.c and ir/verify.c: dtype conversions and storage layout,
 * constants, size evaluation and binding, the text dump and the verifier. The IR is built
 * by hand with the builders, as the front end will. */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "ir/ir.h"
#include "ir_build.h"

/* ---- dtypes --------------------------------------------------------------------------------- */

Test(dtype, names_and_properties)
{
    DType t;
    cr_assert(dtype_from_name("bf16", &t) && t == DT_BF16);
    cr_assert(dtype_from_name("i4", &t) && t == DT_I4);
    cr_assert(!dtype_from_name("f8", &t));
    cr_assert_str_eq(dtype_name(DT_U4), "u4");
    cr_assert_eq(dtype_bits(DT_I2), 2);
    cr_assert_eq(dtype_bits(DT_BOOL), 8);
    cr_assert(dtype_is_float(DT_BF16) && !dtype_is_float(DT_I64));
    cr_assert(dtype_is_int(DT_U4) && !dtype_is_int(DT_BOOL) && !dtype_is_int(DT_F16));
    cr_assert(dtype_is_signed(DT_I4) && !dtype_is_signed(DT_U8));
    cr_assert_eq(dtype_dlpack_code(DT_BF16), 4);
    int64_t lo, hi;
    dtype_int_range(DT_I4, &lo, &hi);
    cr_assert(lo == -8 && hi == 7);
    dtype_int_range(DT_I2, &lo, &hi);
    cr_assert(lo == -2 && hi == 1);
    dtype_int_range(DT_U4, &lo, &hi);
    cr_assert(lo == 0 && hi == 15);
    dtype_int_range(DT_I64, &lo, &hi);
    cr_assert(lo == INT64_MIN && hi == INT64_MAX);
}

Test(dtype, storage_bytes)
{
    size_t b;
    cr_assert(dtype_storage_bytes(DT_I4, 5, &b) && b == 3);
    cr_assert(dtype_storage_bytes(DT_I2, 5, &b) && b == 2);
    cr_assert(dtype_storage_bytes(DT_I2, 8, &b) && b == 2);
    cr_assert(dtype_storage_bytes(DT_BOOL, 3, &b) && b == 3);
    cr_assert(dtype_storage_bytes(DT_F64, 3, &b) && b == 24);
    cr_assert(!dtype_storage_bytes(DT_F64, SIZE_MAX / 4, &b));
}

Test(dtype, f16_round_trip_every_pattern)
{
    for (uint32_t h = 0; h < 0x10000; h++) {
        float f = f16_bits_to_f32((uint16_t)h);
        if (isnan(f)) {
            cr_assert(isnan(f16_bits_to_f32(f32_to_f16_bits(f))), "NaN %04x", h);
            continue;
        }
        cr_assert_eq(f32_to_f16_bits(f), h, "pattern %04x", h);
    }
}

Test(dtype, f16_rounding)
{
    cr_assert_eq(f32_to_f16_bits(65504.0f), 0x7bff);
    cr_assert_eq(f32_to_f16_bits(65519.0f), 0x7bff);   /* below the halfway point */
    cr_assert_eq(f32_to_f16_bits(65520.0f), 0x7c00);   /* tie rounds to even: inf */
    cr_assert_eq(f32_to_f16_bits(1e6f), 0x7c00);
    cr_assert_eq(f32_to_f16_bits(-1e6f), 0xfc00);
    cr_assert_eq(f32_to_f16_bits(1.0f + 0x1p-11f), 0x3c00);   /* tie: down to even */
    cr_assert_eq(f32_to_f16_bits(1.0f + 3 * 0x1p-11f), 0x3c02); /* tie: up to even */
    cr_assert_eq(f32_to_f16_bits(1.0f + 0x1p-11f + 0x1p-20f), 0x3c01);  /* above the tie */
    cr_assert_eq(f32_to_f16_bits(0x1p-24f), 0x0001);   /* smallest subnormal */
    cr_assert_eq(f32_to_f16_bits(0x1p-25f), 0x0000);   /* tie with zero: even */
    cr_assert_eq(f32_to_f16_bits(0x1.8p-25f), 0x0001);
    cr_assert_eq(f32_to_f16_bits(0x3p-25f), 0x0002);   /* 1.5 subnormal steps: tie up to 2 */
    cr_assert_eq(f32_to_f16_bits(0x1.ffcp-15f), 0x0400); /* subnormal rounds up into normal */
    cr_assert_eq(f32_to_f16_bits(-0.0f), 0x8000);
    cr_assert_eq(f32_to_f16_bits(INFINITY), 0x7c00);
    cr_assert(isnan(f16_bits_to_f32(f32_to_f16_bits(NAN))));
    cr_assert_eq(f16_bits_to_f32(0x0001), 0x1p-24f);
    cr_assert_eq(f16_bits_to_f32(0x3555), 0x1.554p-2f);
}

Test(dtype, bf16_rounding)
{
    for (uint32_t h = 0; h < 0x10000; h++) {
        float f = bf16_bits_to_f32((uint16_t)h);
        if (!isnan(f)) cr_assert_eq(f32_to_bf16_bits(f), h, "pattern %04x", h);
    }
    cr_assert_eq(f32_to_bf16_bits(1.0f + 0x1p-8f), 0x3f80);      /* tie: even */
    cr_assert_eq(f32_to_bf16_bits(1.0f + 3 * 0x1p-8f), 0x3f82);  /* tie: up to even */
    cr_assert_eq(f32_to_bf16_bits(1.0f + 0x1p-8f + 0x1p-20f), 0x3f81);
    cr_assert_eq(f32_to_bf16_bits(3.4028235e38f), 0x7f80);       /* FLT_MAX rounds to inf */
    uint16_t n = f32_to_bf16_bits(NAN);
    cr_assert(isnan(bf16_bits_to_f32(n)));
    /* a NaN whose payload lives only in the low bits must not become inf */
    float low_nan;
    uint32_t bits = 0x7f800001;
    memcpy(&low_nan, &bits, 4);
    cr_assert(isnan(bf16_bits_to_f32(f32_to_bf16_bits(low_nan))));
}

Test(dtype, packed_i4_u4_i2)
{
    uint8_t buf[3] = {0xaa, 0xaa, 0xaa};
    int64_t v4[5] = {1, -1, 7, -8, 3};
    for (int i = 0; i < 5; i++) dtype_store_i(DT_I4, buf, (size_t)i, v4[i]);
    cr_assert_eq(buf[0], 0xf1);
    cr_assert_eq(buf[1], 0x87);
    cr_assert_eq(buf[2] & 0x0f, 0x03);
    cr_assert_eq(buf[2] & 0xf0, 0xa0);  /* the unused high nibble is left alone */
    for (int i = 0; i < 5; i++) cr_assert_eq(dtype_load_i(DT_I4, buf, (size_t)i), v4[i]);

    uint8_t u[2] = {0, 0};
    int64_t vu[3] = {15, 0, 9};
    for (int i = 0; i < 3; i++) dtype_store_i(DT_U4, u, (size_t)i, vu[i]);
    cr_assert(u[0] == 0x0f && u[1] == 0x09);
    for (int i = 0; i < 3; i++) cr_assert_eq(dtype_load_i(DT_U4, u, (size_t)i), vu[i]);
    cr_assert_eq(dtype_load_f(DT_U4, u, 0), 15.0);

    uint8_t t[2] = {0, 0};
    int64_t v2[5] = {-2, -1, 0, 1, 1};
    for (int i = 0; i < 5; i++) dtype_store_i(DT_I2, t, (size_t)i, v2[i]);
    cr_assert_eq(t[0], 0x4e);  /* codes 10 11 00 01, lowest bits first */
    cr_assert_eq(t[1], 0x01);
    for (int i = 0; i < 5; i++) cr_assert_eq(dtype_load_i(DT_I2, t, (size_t)i), v2[i]);
    dtype_store_i(DT_I2, t, 2, -1);  /* overwrite the middle one only */
    cr_assert_eq(t[0], 0x7e);
}

Test(dtype, other_layouts)
{
    uint16_t h[2];
    dtype_store_f(DT_F16, h, 1, 0.1);
    cr_assert_eq(h[1], f32_to_f16_bits(0.1f));
    cr_assert_eq(dtype_load_f(DT_F16, h, 1), f16_bits_to_f32(h[1]));
    uint8_t b[2];
    dtype_store_i(DT_BOOL, b, 0, 5);
    dtype_store_i(DT_BOOL, b, 1, 0);
    cr_assert(b[0] == 1 && b[1] == 0);
    int32_t i32[1];
    dtype_store_f(DT_I32, i32, 0, -1e30);  /* float into an int type saturates */
    cr_assert_eq(i32[0], INT32_MIN);
    double d[1];
    dtype_store_i(DT_F64, d, 0, -7);
    cr_assert_eq(d[0], -7.0);
}

Test(dtype, scalar_rules)
{
    cr_assert_eq(dtype_wrap_i(DT_I8, 128), -128);
    cr_assert_eq(dtype_wrap_i(DT_I4, 8), -8);
    cr_assert_eq(dtype_wrap_i(DT_I4, 15), -1);
    cr_assert_eq(dtype_wrap_i(DT_U4, -1), 15);
    cr_assert_eq(dtype_wrap_i(DT_I2, 2), -2);
    cr_assert_eq(dtype_wrap_i(DT_U8, 256 + 3), 3);
    cr_assert_eq(dtype_wrap_i(DT_BOOL, 2), 1);
    cr_assert_eq(dtype_saturate_f(DT_I8, 300.7), 127);
    cr_assert_eq(dtype_saturate_f(DT_I8, -300.7), -128);
    cr_assert_eq(dtype_saturate_f(DT_I32, NAN), 0);
    cr_assert_eq(dtype_saturate_f(DT_I64, 1e300), INT64_MAX);
    cr_assert_eq(dtype_saturate_f(DT_I64, -1e300), INT64_MIN);
    cr_assert_eq(dtype_saturate_f(DT_U4, -0.5), 0);
    cr_assert_eq(dtype_saturate_f(DT_I32, -2.9), -2);
    cr_assert_eq(dtype_round_f(DT_F32, 0.1), (double)0.1f);
    cr_assert(isinf(dtype_round_f(DT_F16, 65520.0)));
    cr_assert_eq(dtype_round_f(DT_BF16, 1.0 + 0x1p-8), 1.0);
}

/* ---- constants ------------------------------------------------------------------------------- */

Test(ir_const, rounding_and_saturation)
{
    Module *m = ir_module_new();
    cr_assert_eq(ir_const_f(m, DT_I8, 300.7)->value.i, 127);
    cr_assert_eq(ir_const_f(m, DT_I32, NAN)->value.i, 0);
    cr_assert_eq(ir_const_f(m, DT_I32, -1e30)->value.i, INT32_MIN);
    cr_assert_eq(ir_const_f(m, DT_U8, -3.5)->value.i, 0);
    cr_assert_eq(ir_const_f(m, DT_BOOL, 0.25)->value.i, 1);
    cr_assert_eq(ir_const_f(m, DT_F32, 0.1)->value.f, (double)0.1f);
    cr_assert(isinf(ir_const_f(m, DT_F16, 65520.0)->value.f));
    cr_assert_eq(ir_const_f(m, DT_F16, 1.0 + 0x1p-11)->value.f, 1.0);
    cr_assert_eq(ir_const_f(m, DT_F64, 0.1)->value.f, 0.1);
    cr_assert_eq(ir_const_i(m, DT_I8, 128)->value.i, -128);
    cr_assert_eq(ir_const_i(m, DT_I4, 8)->value.i, -8);
    cr_assert_eq(ir_const_i(m, DT_I4, 15)->value.i, -1);
    cr_assert_eq(ir_const_i(m, DT_U4, 16)->value.i, 0);
    cr_assert_eq(ir_const_i(m, DT_I2, 3)->value.i, -1);
    cr_assert_eq(ir_const_i(m, DT_F32, 16777217)->value.f, 16777216.0);
    cr_assert_eq(ir_const_i(m, DT_F16, 2049)->value.f, 2048.0);
    Expr *c = ir_const_i(m, DT_I32, 7);
    cr_assert(c->op == OP_CONST && c->type == DT_I32 && c->nargs == 0);
    ir_module_free(m);
}

Test(ir_builders, types_and_ids)
{
    Module *m = ir_module_new();
    Var *n = ir_var_new(m, VAR_SIZE, "N", NULL);
    Var *i = ir_var_new(m, VAR_INDEX, "i", V(m, n));
    cr_assert_neq(n->id, i->id);
    Tensor *x = ir_tensor_new(m, TK_INPUT, "x", DT_F16, 1, (Expr *[]){V(m, n)});
    cr_assert(x->id != n->id && x->id != i->id);
    Expr *a = A1(m, x, V(m, i));
    cr_assert(a->type == DT_F16 && a->nargs == 1 && a->tensor == x && !a->pad);
    cr_assert_eq(bin(m, OP_LT, a, a)->type, DT_BOOL);
    cr_assert_eq(bin(m, OP_ADD, a, a)->type, DT_F16);
    cr_assert_eq(ir_unary(m, OP_ISNAN, a)->type, DT_BOOL);
    cr_assert_eq(ir_unary(m, OP_EXP, a)->type, DT_F16);
    Expr *c = bin(m, OP_GT, a, a);
    cr_assert_eq(ir_ternary(m, OP_SELECT, c, a, a)->type, DT_F16);
    cr_assert_eq(ir_cast(m, DT_I8, a)->type, DT_I8);
    cr_assert_eq(V(m, i)->type, DT_I64);
    Kernel *k1 = ir_kernel_new(m, "a"), *k2 = ir_kernel_new(m, "b"), *k3 = ir_kernel_new(m, "c");
    ir_kernel_add(m, k1);
    ir_kernel_add(m, k2);
    ir_kernel_add(m, k3);
    cr_assert(m->nkernels == 3 && m->kernels[0] == k1 && m->kernels[2] == k3);
    ir_module_free(m);
}

/* ---- size expressions --------------------------------------------------------------------------- */

Test(ir_size, eval)
{
    Module *m = ir_module_new();
    Kernel *k = ir_kernel_new(m, "k");
    Var *n = add_size(m, k, "N");
    Var *kk = add_size(m, k, "K");
    int64_t sizes[2] = {10, 256}, v;
    cr_assert(ir_eval_size(k, bin(m, OP_ADD, V(m, n), I(m, 1)), sizes, &v) && v == 11);
    cr_assert(ir_eval_size(k, bin(m, OP_DIV, V(m, kk), I(m, 128)), sizes, &v) && v == 2);
    cr_assert(ir_eval_size(k, bin(m, OP_DIV, I(m, -3), I(m, 2)), sizes, &v) && v == -2);
    cr_assert(ir_eval_size(k, bin(m, OP_MOD, I(m, -3), I(m, 2)), sizes, &v) && v == 1);
    cr_assert(!ir_eval_size(k, bin(m, OP_DIV, V(m, n), I(m, 0)), sizes, &v));
    cr_assert(!ir_eval_size(k, bin(m, OP_MUL, V(m, n), I(m, INT64_MAX)), sizes, &v));
    cr_assert(!ir_eval_size(k, bin(m, OP_ADD, I(m, INT64_MAX), I(m, 1)), sizes, &v));
    int64_t unbound[2] = {-1, 4};
    cr_assert(!ir_eval_size(k, V(m, n), unbound, &v));
    Var *i = ir_var_new(m, VAR_INDEX, "i", V(m, n));
    cr_assert(!ir_eval_size(k, V(m, i), sizes, &v));
    ir_module_free(m);
}

Test(ir_size, exprs_equal)
{
    Module *m = ir_module_new();
    Var *n = ir_var_new(m, VAR_SIZE, "N", NULL);
    Var *n2 = ir_var_new(m, VAR_SIZE, "N", NULL);
    cr_assert(ir_exprs_equal(bin(m, OP_ADD, V(m, n), I(m, 1)), bin(m, OP_ADD, V(m, n), I(m, 1))));
    cr_assert(!ir_exprs_equal(bin(m, OP_ADD, V(m, n), I(m, 1)), bin(m, OP_ADD, V(m, n2), I(m, 1))));
    cr_assert(!ir_exprs_equal(I(m, 1), I(m, 2)));
    cr_assert(!ir_exprs_equal(I(m, 1), ir_const_i(m, DT_I32, 1)));
    cr_assert(ir_exprs_equal(NULL, NULL));
    cr_assert(!ir_exprs_equal(I(m, 1), NULL));
    ir_module_free(m);
}

Test(ir_print, size_minimal_parentheses)
{
    Module *m = ir_module_new();
    Var *n = ir_var_new(m, VAR_SIZE, "N", NULL);
    Var *k = ir_var_new(m, VAR_SIZE, "K", NULL);
    StrBuf sb = {0};
    ir_print_size(bin(m, OP_ADD, V(m, n), I(m, 1)), &sb);
    sb_puts(&sb, " | ");
    ir_print_size(bin(m, OP_DIV, V(m, k), I(m, 128)), &sb);
    sb_puts(&sb, " | ");
    ir_print_size(bin(m, OP_MUL, bin(m, OP_ADD, V(m, n), I(m, 1)), V(m, k)), &sb);
    sb_puts(&sb, " | ");
    ir_print_size(bin(m, OP_SUB, V(m, n), bin(m, OP_SUB, V(m, k), I(m, 1))), &sb);
    sb_puts(&sb, " | ");
    ir_print_size(bin(m, OP_ADD, bin(m, OP_MUL, I(m, 2), V(m, n)), V(m, k)), &sb);
    cr_assert_str_eq(sb_cstr(&sb), "N + 1 | K / 128 | (N + 1) * K | N - (K - 1) | 2 * N + K");
    sb_free(&sb);
    ir_module_free(m);
}

/* ---- ir_bind_sizes ------------------------------------------------------------------------------- */

/* attention(q: f32[B, H, N, D], k: f32[B, H, M, D]) */
static Kernel *attention_sig(Module *m)
{
    Kernel *k = ir_kernel_new(m, "attention");
    Var *b = add_size(m, k, "B"), *h = add_size(m, k, "H"), *n = add_size(m, k, "N");
    Var *d = add_size(m, k, "D"), *mm = add_size(m, k, "M");
    add_tensor(m, k, TK_INPUT, "q", DT_F32, 4, (Expr *[]){V(m, b), V(m, h), V(m, n), V(m, d)});
    add_tensor(m, k, TK_INPUT, "k", DT_F32, 4, (Expr *[]){V(m, b), V(m, h), V(m, mm), V(m, d)});
    return k;
}

Test(ir_bind, agreement)
{
    Module *m = ir_module_new();
    Kernel *k = attention_sig(m);
    int64_t q[4] = {2, 4, 16, 64}, kk[4] = {2, 4, 8, 64};
    const int64_t *shapes[2] = {q, kk};
    int ranks[2] = {4, 4};
    int64_t sizes[5] = {-1, -1, -1, -1, -1};
    StrBuf err = {0};
    cr_assert(ir_bind_sizes(k, shapes, ranks, sizes, &err), "%s", sb_cstr(&err));
    cr_assert(sizes[0] == 2 && sizes[1] == 4 && sizes[2] == 16 && sizes[3] == 64 && sizes[4] == 8);
    sb_free(&err);
    ir_module_free(m);
}

Test(ir_bind, mismatch_message)
{
    Module *m = ir_module_new();
    Kernel *k = attention_sig(m);
    int64_t q[4] = {2, 4, 16, 64}, kk[4] = {2, 4, 8, 32};
    const int64_t *shapes[2] = {q, kk};
    int ranks[2] = {4, 4};
    int64_t sizes[5] = {-1, -1, -1, -1, -1};
    StrBuf err = {0};
    cr_assert(!ir_bind_sizes(k, shapes, ranks, sizes, &err));
    cr_assert_str_eq(sb_cstr(&err), "attention: k has D = 32 but q has D = 64");
    sb_free(&err);
    ir_module_free(m);
}

Test(ir_bind, preset_wins_and_is_checked)
{
    Module *m = ir_module_new();
    Kernel *k = attention_sig(m);
    int64_t q[4] = {2, 4, 16, 32}, kk[4] = {2, 4, 8, 32};
    const int64_t *shapes[2] = {q, kk};
    int ranks[2] = {4, 4};
    int64_t sizes[5] = {-1, -1, -1, 64, -1};
    StrBuf err = {0};
    cr_assert(!ir_bind_sizes(k, shapes, ranks, sizes, &err));
    cr_assert_str_eq(sb_cstr(&err), "attention: q has D = 32 but D = 64 was set with -D");
    sb_free(&err);
    int64_t ok_sizes[5] = {-1, -1, -1, 32, -1};
    cr_assert(ir_bind_sizes(k, shapes, ranks, ok_sizes, &err));
    sb_free(&err);
    ir_module_free(m);
}

Test(ir_bind, rank_message)
{
    Module *m = ir_module_new();
    Kernel *k = ir_kernel_new(m, "softmax");
    Var *n = add_size(m, k, "N"), *d = add_size(m, k, "D");
    add_tensor(m, k, TK_INPUT, "x", DT_F32, 2, (Expr *[]){V(m, n), V(m, d)});
    int64_t x[3] = {2, 3, 4};
    const int64_t *shapes[1] = {x};
    int ranks[1] = {3};
    int64_t sizes[2] = {-1, -1};
    StrBuf err = {0};
    cr_assert(!ir_bind_sizes(k, shapes, ranks, sizes, &err));
    cr_assert_str_eq(sb_cstr(&err), "softmax: x has rank 3 but the kernel expects rank 2");
    sb_free(&err);
    ir_module_free(m);
}

Test(ir_bind, compound_dims)
{
    /* conv(x: f32[N + 2], w: f32[2 * N], c: f32[K / 2], z: f32[4]) */
    Module *m = ir_module_new();
    Kernel *k = ir_kernel_new(m, "conv");
    Var *n = add_size(m, k, "N"), *kk = add_size(m, k, "K");
    add_tensor(m, k, TK_INPUT, "x", DT_F32, 1, (Expr *[]){bin(m, OP_ADD, V(m, n), I(m, 2))});
    add_tensor(m, k, TK_INPUT, "w", DT_F32, 1, (Expr *[]){bin(m, OP_MUL, I(m, 2), V(m, n))});
    add_tensor(m, k, TK_INPUT, "c", DT_F32, 1, (Expr *[]){bin(m, OP_DIV, V(m, kk), I(m, 2))});
    add_tensor(m, k, TK_INPUT, "z", DT_F32, 1, (Expr *[]){I(m, 4)});
    int ranks[4] = {1, 1, 1, 1};
    int64_t x[1] = {9}, w[1] = {14}, c[1] = {3}, z[1] = {4};
    const int64_t *shapes[4] = {x, w, c, z};
    int64_t sizes[2] = {-1, -1};
    StrBuf err = {0};
    cr_assert(ir_bind_sizes(k, shapes, ranks, sizes, &err), "%s", sb_cstr(&err));
    cr_assert_eq(sizes[0], 7);
    cr_assert_eq(sizes[1], -1);  /* K / 2 does not determine K: left to the caller */

    w[0] = 16;
    int64_t s2[2] = {-1, -1};
    cr_assert(!ir_bind_sizes(k, shapes, ranks, s2, &err));
    cr_assert_str_eq(sb_cstr(&err), "conv: w has 2 * N = 16 but x has N + 2 = 9, so 2 * N = 14");
    sb_clear(&err);

    w[0] = 14;
    z[0] = 5;
    int64_t s3[2] = {-1, -1};
    cr_assert(!ir_bind_sizes(k, shapes, ranks, s3, &err));
    cr_assert_str_eq(sb_cstr(&err), "conv: z has size 5 on axis 0 but the kernel expects 4");
    sb_clear(&err);

    z[0] = 4;
    x[0] = 2;  /* N = 0 */
    int64_t s4[2] = {-1, -1};
    cr_assert(!ir_bind_sizes(k, shapes, ranks, s4, &err));
    cr_assert_str_eq(sb_cstr(&err), "conv: x gives N = 0 but sizes must be at least 1");
    sb_free(&err);
    ir_module_free(m);
}

/* ---- the text dump ---------------------------------------------------------------------------------- */

/* LANGUAGE.md's layernorm, lowered by hand. */
static Module *layernorm_module(void)
{
    Module *m = ir_module_new();
    Kernel *k = ir_kernel_new(m, "layernorm");
    ir_kernel_add(m, k);
    Var *N = add_size(m, k, "N"), *D = add_size(m, k, "D");
    Tensor *x = add_tensor(m, k, TK_INPUT, "x", DT_F32, 2, (Expr *[]){V(m, N), V(m, D)});
    Tensor *g = add_tensor(m, k, TK_INPUT, "g", DT_F32, 1, (Expr *[]){V(m, D)});
    Tensor *b = add_tensor(m, k, TK_INPUT, "b", DT_F32, 1, (Expr *[]){V(m, D)});
    Tensor *y = add_tensor(m, k, TK_OUTPUT, "y", DT_F32, 2, (Expr *[]){V(m, N), V(m, D)});
    Tensor *mu = add_tensor(m, k, TK_TEMP, "mu", DT_F32, 1, (Expr *[]){V(m, N)});
    Tensor *var = add_tensor(m, k, TK_TEMP, "var", DT_F32, 1, (Expr *[]){V(m, N)});

    Var *n = ir_var_new(m, VAR_INDEX, "n", V(m, N)), *d = ir_var_new(m, VAR_REDUCE, "d", V(m, D));
    add_stmt(m, k, ir_def_new(m, mu, (Var *[]){n}, RED_MEAN, (Var *[]){d}, 1,
                              A2(m, x, V(m, n), V(m, d))));

    n = ir_var_new(m, VAR_INDEX, "n", V(m, N));
    d = ir_var_new(m, VAR_REDUCE, "d", V(m, D));
    Expr *c1 = bin(m, OP_SUB, A2(m, x, V(m, n), V(m, d)), A1(m, mu, V(m, n)));
    Expr *c2 = bin(m, OP_SUB, A2(m, x, V(m, n), V(m, d)), A1(m, mu, V(m, n)));
    add_stmt(m, k, ir_def_new(m, var, (Var *[]){n}, RED_MEAN, (Var *[]){d}, 1,
                              bin(m, OP_MUL, c1, c2)));

    n = ir_var_new(m, VAR_INDEX, "n", V(m, N));
    d = ir_var_new(m, VAR_INDEX, "d", V(m, D));
    Expr *c = bin(m, OP_SUB, A2(m, x, V(m, n), V(m, d)), A1(m, mu, V(m, n)));
    Expr *r = ir_unary(m, OP_RSQRT, bin(m, OP_ADD, A1(m, var, V(m, n)), ir_const_f(m, DT_F32, 1e-5)));
    Expr *body = bin(m, OP_ADD, bin(m, OP_MUL, bin(m, OP_MUL, c, r), A1(m, g, V(m, d))),
                     A1(m, b, V(m, d)));
    add_stmt(m, k, ir_def_new(m, y, (Var *[]){n, d}, RED_NONE, NULL, 0, body));
    return m;
}

Test(ir_print, layernorm_exact)
{
    Module *m = layernorm_module();
    StrBuf sb = {0};
    ir_print_module(m, &sb);
    cr_assert_str_eq(sb_cstr(&sb),
        "kernel layernorm(x: f32[N, D], g: f32[D], b: f32[D]) -> (y: f32[N, D]) {\n"
        "  mu: f32[N] = for n < N: mean[d < D] x[n, d]\n"
        "  var: f32[N] = for n < N: mean[d < D] ((x[n, d] - mu[n]) * (x[n, d] - mu[n]))\n"
        "  y[n, d] = for n < N, d < D: ((((x[n, d] - mu[n]) * rsqrt((var[n] + f32(1e-05)))) * "
        "g[d]) + b[d])\n"
        "}\n");
    StrBuf err = {0};
    cr_assert(ir_verify(m, &err), "%s", sb_cstr(&err));
    sb_free(&err);
    sb_free(&sb);
    ir_module_free(m);
}

Test(ir_print, constants_annotations_schedule_names)
{
    Module *m = ir_module_new();
    Kernel *k = ir_kernel_new(m, "misc");
    ir_kernel_add(m, k);
    Var *N = add_size(m, k, "N"), *K = add_size(m, k, "K");
    Tensor *w = add_tensor(m, k, TK_INPUT, "w", DT_F32, 2, (Expr *[]){V(m, N), V(m, K)});
    w->annot = (Annot){.kind = ANN_QUANT, .qdtype = DT_I4, .scheme = QS_GROUP, .group = 128};
    Tensor *a = add_tensor(m, k, TK_INPUT, "a", DT_F32, 2, (Expr *[]){V(m, N), V(m, K)});
    a->annot = (Annot){.kind = ANN_BSR, .block = {4, 4}};
    Tensor *u = add_tensor(m, k, TK_INPUT, "u", DT_F32, 1, (Expr *[]){bin(m, OP_ADD, V(m, N), I(m, 1))});
    u->annot = (Annot){.kind = ANN_QUANT, .qdtype = DT_U4, .scheme = QS_GROUP, .group = 64, .zero = true};
    Tensor *e = add_tensor(m, k, TK_INPUT, "e", DT_F32, 0, NULL);
    Tensor *y = add_tensor(m, k, TK_OUTPUT, "y", DT_F32, 1, (Expr *[]){V(m, N)});
    Tensor *z = add_tensor(m, k, TK_OUTPUT, "z", DT_I8, 1, (Expr *[]){V(m, N)});

    /* Two different variables both named i: the reduction one prints as i.2. */
    Var *i = ir_var_new(m, VAR_INDEX, "i", V(m, N));
    Var *i2 = ir_var_new(m, VAR_REDUCE, "i", V(m, K));
    Expr *pad = ir_access(m, u, (Expr *[]){bin(m, OP_SUB, V(m, i), I(m, 1))}, ir_const_f(m, DT_F32, 0));
    Expr *body = bin(m, OP_MUL, A2(m, w, V(m, i), V(m, i2)), pad);
    body = ir_ternary(m, OP_SELECT, ir_unary(m, OP_ISNAN, body), ir_const_f(m, DT_F32, -INFINITY),
                      bin(m, OP_MAX, body, ir_unary(m, OP_NEG, ir_access(m, e, NULL, NULL))));
    body = bin(m, OP_ADD, body, A2(m, a, V(m, i), V(m, i2)));
    add_stmt(m, k, ir_def_new(m, y, (Var *[]){i}, RED_SUM, (Var *[]){i2}, 1, body));

    Var *j = ir_var_new(m, VAR_INDEX, "j", V(m, N));
    Expr *zb = bin(m, OP_ADD, ir_cast(m, DT_I8, ir_const_f(m, DT_F64, 0.1)), ir_const_i(m, DT_I8, -3));
    zb = ir_ternary(m, OP_SELECT, bin(m, OP_AND, ir_const_i(m, DT_BOOL, 1), ir_const_i(m, DT_BOOL, 0)),
                    zb, ir_cast(m, DT_I8, bin(m, OP_MOD, V(m, j), I(m, 3))));
    add_stmt(m, k, ir_def_new(m, z, (Var *[]){j}, RED_NONE, NULL, 0, zb));

    SchedDirective sched[3] = {{SCHED_TILE, "i", 64, {0}}, {SCHED_VECTORIZE, "j", 0, {0}},
                               {SCHED_UNROLL, "i", 4, {0}}};
    k->sched = sched;
    k->nsched = 3;
    StrBuf sb = {0};
    ir_print_module(m, &sb);
    cr_assert_str_eq(sb_cstr(&sb),
        "kernel misc(w: f32[N, K] @quant(i4, group=128), a: f32[N, K] @bsr(4, 4), "
        "u: f32[N + 1] @quant(u4, group=64, zero), e: f32) -> (y: f32[N], z: i8[N]) {\n"
        "  y[i] = for i < N: sum[i.2 < K] (select(isnan((w[i, i.2] * (u[(i - 1)] ?? f32(0)))), "
        "f32(-inf), max((w[i, i.2] * (u[(i - 1)] ?? f32(0))), neg(e))) + a[i, i.2])\n"
        "  z[j] = for j < N: select((true and false), (i8(f64(0.1)) + i8(-3)), "
        "i8((j % 3)))\n"
        "  schedule: tile i 64; vectorize j; unroll i 4\n"
        "}\n");
    sb_free(&sb);
    ir_module_free(m);
}

Test(ir_print, float_constants_shortest)
{
    Module *m = ir_module_new();
    StrBuf sb = {0};
    ir_print_expr(ir_const_f(m, DT_F32, 0.1), &sb);
    sb_putc(&sb, ' ');
    ir_print_expr(ir_const_f(m, DT_F64, 0.1), &sb);
    sb_putc(&sb, ' ');
    ir_print_expr(ir_const_f(m, DT_F16, 0.1), &sb);
    sb_putc(&sb, ' ');
    ir_print_expr(ir_const_f(m, DT_BF16, 3.0), &sb);
    sb_putc(&sb, ' ');
    ir_print_expr(ir_const_f(m, DT_F32, NAN), &sb);
    sb_putc(&sb, ' ');
    ir_print_expr(ir_const_f(m, DT_F32, INFINITY), &sb);
    sb_putc(&sb, ' ');
    ir_print_expr(ir_const_f(m, DT_F32, -0.0), &sb);
    sb_putc(&sb, ' ');
    ir_print_expr(ir_const_i(m, DT_I64, -7), &sb);
    sb_putc(&sb, ' ');
    ir_print_expr(ir_const_i(m, DT_U4, 15), &sb);
    cr_assert_str_eq(sb_cstr(&sb),
                     "f32(0.1) f64(0.1) f16(0.1) bf16(3) f32(nan) f32(inf) f32(-0) -7 u4(15)");
    sb_free(&sb);
    ir_module_free(m);
}

/* scan t < T reverse with S: f32[K] = f32(0), h: f32[K] = h0 { ... } */
static Module *scan_module(void)
{
    Module *m = ir_module_new();
    Kernel *k = ir_kernel_new(m, "rnn");
    ir_kernel_add(m, k);
    Var *T = add_size(m, k, "T"), *K = add_size(m, k, "K");
    Tensor *a = add_tensor(m, k, TK_INPUT, "a", DT_F32, 2, (Expr *[]){V(m, T), V(m, K)});
    Tensor *h0 = add_tensor(m, k, TK_INPUT, "h0", DT_F32, 1, (Expr *[]){V(m, K)});
    Tensor *o = add_tensor(m, k, TK_OUTPUT, "o", DT_F32, 2, (Expr *[]){V(m, T), V(m, K)});
    Tensor *S = add_tensor(m, k, TK_STATE, "S", DT_F32, 1, (Expr *[]){V(m, K)});
    Tensor *h = add_tensor(m, k, TK_STATE, "h", DT_F32, 1, (Expr *[]){V(m, K)});
    Tensor *Sn = add_tensor(m, k, TK_TEMP, "S.next", DT_F32, 1, (Expr *[]){V(m, K)});
    Var *t = ir_var_new(m, VAR_SCAN, "t", V(m, T));

    Stmt *sc = arena_alloc(&m->arena, sizeof *sc);
    sc->kind = STMT_SCAN;
    sc->scan.var = t;
    sc->scan.reverse = true;
    sc->scan.nstates = 2;
    sc->scan.states = arena_array(&m->arena, 2, sizeof(ScanState));
    sc->scan.states[0] = (ScanState){S, Sn, ir_const_f(m, DT_F32, 0), NULL};
    sc->scan.states[1] = (ScanState){h, NULL, NULL, h0};
    Var *i = ir_var_new(m, VAR_INDEX, "i", V(m, K));
    Stmt *d1 = ir_def_new(m, Sn, (Var *[]){i}, RED_NONE, NULL, 0,
                          bin(m, OP_ADD, bin(m, OP_ADD, A1(m, S, V(m, i)), A2(m, a, V(m, t), V(m, i))),
                              A1(m, h, V(m, i))));
    Var *j = ir_var_new(m, VAR_INDEX, "i", V(m, K));
    Stmt *d2 = ir_def_new(m, o, (Var *[]){t, j}, RED_NONE, NULL, 0, A1(m, Sn, V(m, j)));
    sc->scan.nbody = 2;
    sc->scan.body = arena_array(&m->arena, 2, sizeof(Stmt *));
    sc->scan.body[0] = d1;
    sc->scan.body[1] = d2;
    add_stmt(m, k, sc);
    return m;
}

Test(ir_print, scan)
{
    Module *m = scan_module();
    StrBuf sb = {0};
    ir_print_module(m, &sb);
    cr_assert_str_eq(sb_cstr(&sb),
        "kernel rnn(a: f32[T, K], h0: f32[K]) -> (o: f32[T, K]) {\n"
        "  scan t < T reverse with S: f32[K] = f32(0), h: f32[K] = h0 {\n"
        "    S.next: f32[K] = for i < K: ((S[i] + a[t, i]) + h[i])\n"
        "    o[t, i] = for t, i < K: S.next[i]\n"
        "  }\n"
        "}\n");
    StrBuf err = {0};
    cr_assert(ir_verify(m, &err), "%s", sb_cstr(&err));
    sb_free(&err);
    sb_free(&sb);
    ir_module_free(m);
}

Test(ir_print, module_separates_kernels)
{
    Module *m = layernorm_module();
    Module *s = scan_module();
    ir_kernel_add(m, s->kernels[0]);
    StrBuf sb = {0};
    ir_print_module(m, &sb);
    cr_assert(strstr(sb_cstr(&sb), "}\n\nkernel rnn(") != NULL);
    sb_free(&sb);
    ir_module_free(m);
    ir_module_free(s);
}

/* ---- the verifier ------------------------------------------------------------------------------------- */

/* copy(x: f32[N]) -> y: f32[N] with y[i] = body built by the caller */
typedef struct Small {
    Module *m;
    Kernel *k;
    Var    *N, *i;
    Tensor *x, *y;
} Small;

static Small small_kernel(void)
{
    Small s;
    s.m = ir_module_new();
    s.k = ir_kernel_new(s.m, "copy");
    ir_kernel_add(s.m, s.k);
    s.N = add_size(s.m, s.k, "N");
    s.x = add_tensor(s.m, s.k, TK_INPUT, "x", DT_F32, 1, (Expr *[]){V(s.m, s.N)});
    s.y = add_tensor(s.m, s.k, TK_OUTPUT, "y", DT_F32, 1, (Expr *[]){V(s.m, s.N)});
    s.i = ir_var_new(s.m, VAR_INDEX, "i", V(s.m, s.N));
    return s;
}

Test(ir_verify, accepts_well_formed)
{
    Small s = small_kernel();
    add_stmt(s.m, s.k, ir_def_new(s.m, s.y, (Var *[]){s.i}, RED_NONE, NULL, 0, A1(s.m, s.x, V(s.m, s.i))));
    StrBuf err = {0};
    cr_assert(ir_verify(s.m, &err), "%s", sb_cstr(&err));
    sb_free(&err);
    ir_module_free(s.m);
}

Test(ir_verify, wrong_arity_access)
{
    Small s = small_kernel();
    Expr *bad = A1(s.m, s.x, V(s.m, s.i));
    bad->nargs = 2;  /* as a buggy pass might leave it */
    bad->args = arena_array(&s.m->arena, 2, sizeof(Expr *));
    bad->args[0] = bad->args[1] = V(s.m, s.i);
    add_stmt(s.m, s.k, ir_def_new(s.m, s.y, (Var *[]){s.i}, RED_NONE, NULL, 0, bad));
    StrBuf err = {0};
    cr_assert(!ir_verify(s.m, &err));
    cr_assert_str_eq(sb_cstr(&err), "kernel copy: y: access to x has 2 indices but x has rank 1\n");
    sb_free(&err);
    ir_module_free(s.m);
}

Test(ir_verify, undefined_read_and_missing_output)
{
    Small s = small_kernel();
    Tensor *t = add_tensor(s.m, s.k, TK_TEMP, "t", DT_F32, 1, (Expr *[]){V(s.m, s.N)});
    /* t is read by y before t's own definition. */
    add_stmt(s.m, s.k, ir_def_new(s.m, s.y, (Var *[]){s.i}, RED_NONE, NULL, 0, A1(s.m, t, V(s.m, s.i))));
    Var *j = ir_var_new(s.m, VAR_INDEX, "j", V(s.m, s.N));
    add_stmt(s.m, s.k, ir_def_new(s.m, t, (Var *[]){j}, RED_NONE, NULL, 0, A1(s.m, s.x, V(s.m, j))));
    StrBuf err = {0};
    cr_assert(!ir_verify(s.m, &err));
    cr_assert_str_eq(sb_cstr(&err), "kernel copy: y: reads t before it is defined\n");
    sb_free(&err);
    ir_module_free(s.m);

    Small s2 = small_kernel();
    cr_assert(!ir_verify(s2.m, &err));
    cr_assert_str_eq(sb_cstr(&err), "kernel copy: output y is never defined\n");
    sb_free(&err);
    ir_module_free(s2.m);
}

Test(ir_verify, types_scope_and_vars)
{
    Small s = small_kernel();
    Var *other = ir_var_new(s.m, VAR_INDEX, "j", V(s.m, s.N));
    Expr *body = bin(s.m, OP_ADD, A1(s.m, s.x, V(s.m, other)), ir_const_f(s.m, DT_F64, 1));
    body->type = DT_F32;
    add_stmt(s.m, s.k, ir_def_new(s.m, s.y, (Var *[]){s.i}, RED_SUM, NULL, 0, body));
    StrBuf err = {0};
    cr_assert(!ir_verify(s.m, &err));
    const char *e = sb_cstr(&err);
    cr_assert(strstr(e, "reduction op and reduction variables disagree"), "%s", e);
    cr_assert(strstr(e, "uses variable j outside its scope"), "%s", e);
    cr_assert(strstr(e, "add of type f32 has an operand of type f64"), "%s", e);
    sb_free(&err);
    ir_module_free(s.m);
}

Test(ir_verify, scan_rules)
{
    Module *m = scan_module();
    Kernel *k = m->kernels[0];
    Stmt *sc = k->stmts[0];
    /* Swap the body: o reads S.next before S.next is defined. */
    Stmt *t = sc->scan.body[0];
    sc->scan.body[0] = sc->scan.body[1];
    sc->scan.body[1] = t;
    StrBuf err = {0};
    cr_assert(!ir_verify(m, &err));
    cr_assert(strstr(sb_cstr(&err), "kernel rnn: o: reads S.next before it is defined"), "%s",
              sb_cstr(&err));
    sb_free(&err);
    ir_module_free(m);
}
