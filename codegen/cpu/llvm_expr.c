/* llvm_expr: level-1 expressions to LLVM values, with the interpreter's arithmetic
 * (ir/interp.c is the specification; its header lists the rules).
 *
 * Takes an Expr of a LoopFunc whose buffers and variables are in scope (llvm_gen.c binds
 * them); gives its value in the register type of its dtype (internal.h). How each rule is
 * met:
 *   - integers: LLVM integers of the dtype's width (i2, i4 included) wrap exactly as the
 *     interpreter's int64-then-wrap does; `/` and `%` are guarded by selects (x / 0 = 0,
 *     x % 0 = x, INT_MIN / -1 = INT_MIN) so no LLVM instruction ever sees undefined input;
 *     integer pow is a small internal function (square and multiply, wrapping);
 *   - floats: f32/f64 in their own type; f16/bf16 compute in float and round after every
 *     op that can be inexact (fptrunc to half for f16, integer round-to-nearest-even on the
 *     bits for bf16, exactly as f32_to_bf16_bits); min/max propagate NaN (see fminmax for
 *     the sign of a zero result);
 *   - transcendentals: f32 through LLVM's math intrinsics and libm's float functions (in
 *     vectorised loops libmvec's, when compiling for the JIT); f64 through the double ones,
 *     bit for bit the interpreter's; f16/bf16 through the double ones and two roundings, the
 *     interpreter's computation (see emit_math for libmvec); rsqrt of f32 through double;
 *   - index expressions (access and store indices) divide toward minus infinity, as
 *     interp.c's eval_index; extents and shapes (cg_size) as ir_eval_size;
 *   - padded loads and selects whose branches load are real branches, so memory is only
 *     touched where the interpreter touches it. */
#include "internal.h"

#include <string.h>

/* ---- small helpers ----------------------------------------------------------------------- */

static bool is_narrow_float(DType t) { return t == DT_F16 || t == DT_BF16; }

static LLVMValueRef undef_of(Cg *g, DType t) { return LLVMGetUndef(cg_reg_type(g, t)); }

static LLVMValueRef fconst(LLVMTypeRef ty, double v) { return LLVMConstReal(ty, v); }

/* v in integer type ty, two's complement (LLVMConstInt wants the value within the width). */
static LLVMValueRef int_const(LLVMTypeRef ty, int64_t v)
{
    unsigned bits = LLVMGetIntTypeWidth(ty);
    uint64_t u = (uint64_t)v;
    if (bits < 64) u &= ((uint64_t)1 << bits) - 1;
    return LLVMConstInt(ty, u, 0);
}

static LLVMValueRef const_of(Cg *g, DType t, Value v)
{
    LLVMTypeRef ty = cg_reg_type(g, t);
    if (dtype_is_float(t)) return fconst(ty, v.f);
    if (t == DT_BOOL) return LLVMConstInt(g->i1, v.i != 0, 0);
    return int_const(ty, v.i);
}

static LLVMValueRef var_value(Cg *g, const Var *v)
{
    TD_ASSERT(v && v->id >= 0 && v->id < g->nids);
    LLVMValueRef x = g->vals[v->id];
    if (!x) {
        cg_fail(g, "variable %s is used where it has no value", v->name);
        return cg_i64(g, 0);
    }
    return x;
}

static bool has_access(const Expr *e)
{
    if (!e) return false;
    if (e->op == OP_ACCESS) return true;
    for (int i = 0; i < e->nargs; i++)
        if (has_access(e->args[i])) return true;
    return false;
}

/* Marks a C library declaration as a pure function: LLVM may hoist, combine and delete it. */
static void mark_pure(Cg *g, LLVMValueRef f)
{
    static const char *const attrs[] = {"nounwind", "willreturn", "nosync", "nofree"};
    for (int i = 0; i < TD_COUNTOF(attrs); i++) {
        unsigned kind = LLVMGetEnumAttributeKindForName(attrs[i], strlen(attrs[i]));
        LLVMAddAttributeAtIndex(f, LLVMAttributeFunctionIndex, LLVMCreateEnumAttribute(g->ctx, kind, 0));
    }
    unsigned mem = LLVMGetEnumAttributeKindForName("memory", 6);
    LLVMAddAttributeAtIndex(f, LLVMAttributeFunctionIndex, LLVMCreateEnumAttribute(g->ctx, mem, 0));
}

/* Calls libm's name(x) (float or double, by x's type). */
static LLVMValueRef libm_call(Cg *g, const char *name, LLVMValueRef x)
{
    LLVMTypeRef ty = LLVMTypeOf(x);
    LLVMTypeRef fty = LLVMFunctionType(ty, &ty, 1, 0);
    LLVMValueRef f = LLVMGetNamedFunction(g->mod, name);
    if (!f) {
        f = LLVMAddFunction(g->mod, name, fty);
        mark_pure(g, f);
    }
    return LLVMBuildCall2(g->b, fty, f, &x, 1, "");
}

static LLVMValueRef intr1(Cg *g, const char *name, LLVMValueRef x)
{
    LLVMTypeRef ty = LLVMTypeOf(x);
    return cg_intrinsic(g, name, &ty, 1, &x, 1);
}

static LLVMValueRef intr2(Cg *g, const char *name, LLVMValueRef x, LLVMValueRef y)
{
    LLVMTypeRef ty = LLVMTypeOf(x);
    LLVMValueRef args[2] = {x, y};
    return cg_intrinsic(g, name, &ty, 1, args, 2);
}

/* ---- rounding to a float dtype -------------------------------------------------------------- */

/* f32_to_bf16_bits on the bits of v (a float): NaN stays NaN (quietened), everything else
 * rounds to nearest even, overflowing into inf. */
static LLVMValueRef round_bf16(Cg *g, LLVMValueRef v)
{
    LLVMBuilderRef b = g->b;
    LLVMValueRef x = LLVMBuildBitCast(b, v, g->i32, "");
    LLVMValueRef mag = LLVMBuildAnd(b, x, LLVMConstInt(g->i32, 0x7fffffff, 0), "");
    LLVMValueRef nan = LLVMBuildICmp(b, LLVMIntUGT, mag, LLVMConstInt(g->i32, 0x7f800000, 0), "");
    LLVMValueRef odd = LLVMBuildAnd(b, LLVMBuildLShr(b, x, LLVMConstInt(g->i32, 16, 0), ""),
                                    LLVMConstInt(g->i32, 1, 0), "");
    LLVMValueRef r = LLVMBuildAdd(b, x, LLVMBuildAdd(b, odd, LLVMConstInt(g->i32, 0x7fff, 0), ""), "");
    LLVMValueRef q = LLVMBuildOr(b, x, LLVMConstInt(g->i32, 0x00400000, 0), "");
    r = LLVMBuildSelect(b, nan, q, r, "");
    r = LLVMBuildAnd(b, r, LLVMConstInt(g->i32, 0xffff0000u, 0), "");
    return LLVMBuildBitCast(b, r, g->f32, "");
}

/* v (held as float for f16/bf16, f32, or f64 for t = f64) rounded to float dtype t. */
static LLVMValueRef round_to(Cg *g, DType t, LLVMValueRef v)
{
    switch (t) {
    case DT_F16: return LLVMBuildFPExt(g->b, LLVMBuildFPTrunc(g->b, v, g->f16, ""), g->f32, "");
    case DT_BF16: return round_bf16(g, v);
    case DT_F32: case DT_F64: return v;
    case DT_BOOL: case DT_I2: case DT_I4: case DT_U4: case DT_I8: case DT_U8: case DT_I16:
    case DT_I32: case DT_I64: case DT_COUNT:
        break;
    }
    TD_UNREACHABLE("round_to: not a float dtype");
}

/* A double rounded to float dtype t the way dtype_round_f does: to float, then to t. */
static LLVMValueRef round_from_double(Cg *g, DType t, LLVMValueRef d)
{
    if (t == DT_F64) return d;
    return round_to(g, t, LLVMBuildFPTrunc(g->b, d, g->f32, ""));
}

/* ---- casts ------------------------------------------------------------------------------------ */

static LLVMValueRef emit_cast(Cg *g, DType from, DType to, LLVMValueRef v)
{
    LLVMBuilderRef b = g->b;
    LLVMTypeRef ty = cg_reg_type(g, to);
    if (from == to) return v;
    if (to == DT_BOOL) {  /* != 0; a NaN is true */
        if (dtype_is_float(from)) return LLVMBuildFCmp(b, LLVMRealUNE, v, fconst(LLVMTypeOf(v), 0), "");
        return LLVMBuildICmp(b, LLVMIntNE, v, int_const(LLVMTypeOf(v), 0), "");
    }
    if (from == DT_BOOL)  /* 0 or 1, exact in every dtype */
        return dtype_is_float(to) ? LLVMBuildUIToFP(b, v, ty, "") : LLVMBuildZExt(b, v, ty, "");
    if (dtype_is_float(from) && dtype_is_float(to)) {
        if (to == DT_F64) return LLVMBuildFPExt(b, v, g->f64, "");  /* from f32/f16/bf16: exact */
        if (from == DT_F64) return round_from_double(g, to, v);
        return round_to(g, to, v);  /* f32, f16, bf16 are all held as float */
    }
    if (dtype_is_float(to)) {  /* int to float: one rounding to float (or double), then to t */
        LLVMTypeRef ft = to == DT_F64 ? g->f64 : g->f32;
        v = dtype_is_signed(from) ? LLVMBuildSIToFP(b, v, ft, "") : LLVMBuildUIToFP(b, v, ft, "");
        return to == DT_F64 ? v : round_to(g, to, v);
    }
    if (dtype_is_float(from)) {  /* toward zero, saturating, NaN to 0: exactly the .sat ops */
        LLVMTypeRef over[2] = {ty, LLVMTypeOf(v)};
        const char *name = dtype_is_signed(to) ? "llvm.fptosi.sat" : "llvm.fptoui.sat";
        return cg_intrinsic(g, name, over, 2, &v, 1);
    }
    /* int to int saturates: clamp in i64 (no dtype is wider) where the ranges differ */
    int64_t flo, fhi, tlo, thi;
    dtype_int_range(from, &flo, &fhi);
    dtype_int_range(to, &tlo, &thi);
    bool fs = dtype_is_signed(from);
    int fbits = dtype_bits(from), tbits = dtype_bits(to);
    if (tlo <= flo && fhi <= thi) {
        if (fbits == tbits) return v;
        return fs ? LLVMBuildSExt(b, v, ty, "") : LLVMBuildZExt(b, v, ty, "");
    }
    LLVMValueRef x = fbits == 64 ? v : fs ? LLVMBuildSExt(b, v, g->i64, "") : LLVMBuildZExt(b, v, g->i64, "");
    if (flo < tlo) {
        LLVMValueRef lo = cg_i64(g, tlo);
        x = LLVMBuildSelect(b, LLVMBuildICmp(b, LLVMIntSLT, x, lo, ""), lo, x, "");
    }
    if (fhi > thi) {
        LLVMValueRef hi = cg_i64(g, thi);
        x = LLVMBuildSelect(b, LLVMBuildICmp(b, LLVMIntSGT, x, hi, ""), hi, x, "");
    }
    return tbits == 64 ? x : LLVMBuildTrunc(b, x, ty, "");
}

/* ---- integer arithmetic ---------------------------------------------------------------------- */

/* Truncating `/` or `%` with the interpreter's guards: x / 0 = 0, x % 0 = x, and for signed
 * types x / -1 = -x (wrapping), x % -1 = 0. */
static LLVMValueRef int_divmod(Cg *g, bool is_signed, bool div, LLVMValueRef a, LLVMValueRef d)
{
    LLVMBuilderRef b = g->b;
    LLVMTypeRef ty = LLVMTypeOf(a);
    LLVMValueRef zero = int_const(ty, 0), one = int_const(ty, 1);
    LLVMValueRef z = LLVMBuildICmp(b, LLVMIntEQ, d, zero, "");
    if (!is_signed) {
        LLVMValueRef sd = LLVMBuildSelect(b, z, one, d, "");
        if (div) return LLVMBuildSelect(b, z, zero, LLVMBuildUDiv(b, a, sd, ""), "");
        return LLVMBuildSelect(b, z, a, LLVMBuildURem(b, a, sd, ""), "");
    }
    LLVMValueRef m1 = LLVMBuildICmp(b, LLVMIntEQ, d, LLVMConstAllOnes(ty), "");
    LLVMValueRef sd = LLVMBuildSelect(b, LLVMBuildOr(b, z, m1, ""), one, d, "");
    if (div) {
        LLVMValueRef q = LLVMBuildSDiv(b, a, sd, "");
        q = LLVMBuildSelect(b, m1, LLVMBuildSub(b, zero, a, ""), q, "");
        return LLVMBuildSelect(b, z, zero, q, "");
    }
    return LLVMBuildSelect(b, z, a, LLVMBuildSRem(b, a, sd, ""), "");  /* by -1: a % 1 = 0 */
}

/* Floor `/` or non-negative `%` of i64 (index rules), same guards as int_divmod. */
static LLVMValueRef floor_divmod(Cg *g, bool div, LLVMValueRef a, LLVMValueRef d)
{
    LLVMBuilderRef b = g->b;
    LLVMValueRef zero = cg_i64(g, 0);
    LLVMValueRef z = LLVMBuildICmp(b, LLVMIntEQ, d, zero, "");
    LLVMValueRef m1 = LLVMBuildICmp(b, LLVMIntEQ, d, cg_i64(g, -1), "");
    LLVMValueRef sd = LLVMBuildSelect(b, LLVMBuildOr(b, z, m1, ""), cg_i64(g, 1), d, "");
    LLVMValueRef r = LLVMBuildSRem(b, a, sd, "");
    /* a remainder whose sign differs from the divisor's moves one step down */
    LLVMValueRef fix = LLVMBuildAnd(b, LLVMBuildICmp(b, LLVMIntNE, r, zero, ""),
                                    LLVMBuildICmp(b, LLVMIntSLT, LLVMBuildXor(b, r, sd, ""), zero, ""), "");
    if (div) {
        LLVMValueRef q = LLVMBuildSDiv(b, a, sd, "");
        q = LLVMBuildSub(b, q, LLVMBuildZExt(b, fix, g->i64, ""), "");
        q = LLVMBuildSelect(b, m1, LLVMBuildSub(b, zero, a, ""), q, "");
        return LLVMBuildSelect(b, z, zero, q, "");
    }
    r = LLVMBuildAdd(b, r, LLVMBuildSelect(b, fix, sd, zero, ""), "");
    return LLVMBuildSelect(b, z, a, r, "");
}

/* int_pow of interp.c for one integer type, as an internal function the inliner takes:
 *   e < 0: 1 for base 1, +-1 for base -1 (by e's parity), else 0;
 *   else square and multiply, wrapping at the width. */
static LLVMValueRef ipow_fn(Cg *g, DType t)
{
    LLVMTypeRef ty = cg_reg_type(g, t);
    bool s = dtype_is_signed(t);
    char name[32];
    snprintf(name, sizeof name, "tdsl.ipow.%c%d", s ? 's' : 'u', dtype_bits(t));
    LLVMTypeRef params[2] = {ty, ty};
    LLVMTypeRef fty = LLVMFunctionType(ty, params, 2, 0);
    LLVMValueRef f = LLVMGetNamedFunction(g->mod, name);
    if (f) return f;
    f = LLVMAddFunction(g->mod, name, fty);
    LLVMSetLinkage(f, LLVMInternalLinkage);
    mark_pure(g, f);
    LLVMBasicBlockRef saved = LLVMGetInsertBlock(g->b);
    LLVMBuilderRef b = g->b;
    LLVMValueRef base = LLVMGetParam(f, 0), e = LLVMGetParam(f, 1);
    LLVMValueRef zero = int_const(ty, 0), one = int_const(ty, 1);
    LLVMBasicBlockRef entry = LLVMAppendBasicBlockInContext(g->ctx, f, "entry");
    LLVMBasicBlockRef neg = LLVMAppendBasicBlockInContext(g->ctx, f, "negative");
    LLVMBasicBlockRef head = LLVMAppendBasicBlockInContext(g->ctx, f, "head");
    LLVMBasicBlockRef step = LLVMAppendBasicBlockInContext(g->ctx, f, "step");
    LLVMBasicBlockRef done = LLVMAppendBasicBlockInContext(g->ctx, f, "done");

    LLVMPositionBuilderAtEnd(b, entry);
    LLVMValueRef is_neg = s ? LLVMBuildICmp(b, LLVMIntSLT, e, zero, "") : LLVMConstInt(g->i1, 0, 0);
    LLVMBuildCondBr(b, is_neg, neg, head);

    LLVMPositionBuilderAtEnd(b, neg);
    LLVMValueRef odd = LLVMBuildTrunc(b, e, g->i1, "");
    LLVMValueRef m1 = LLVMConstAllOnes(ty);
    LLVMValueRef r_m1 = LLVMBuildSelect(b, odd, m1, one, "");
    LLVMValueRef r = LLVMBuildSelect(b, LLVMBuildICmp(b, LLVMIntEQ, base, m1, ""), r_m1, zero, "");
    r = LLVMBuildSelect(b, LLVMBuildICmp(b, LLVMIntEQ, base, one, ""), one, r, "");
    LLVMBuildRet(b, r);

    LLVMPositionBuilderAtEnd(b, head);
    LLVMValueRef acc = LLVMBuildPhi(b, ty, "r"), sq = LLVMBuildPhi(b, ty, "b"), ex = LLVMBuildPhi(b, ty, "e");
    LLVMBuildCondBr(b, LLVMBuildICmp(b, LLVMIntEQ, ex, zero, ""), done, step);

    LLVMPositionBuilderAtEnd(b, step);
    LLVMValueRef bit = LLVMBuildTrunc(b, ex, g->i1, "");
    LLVMValueRef acc2 = LLVMBuildSelect(b, bit, LLVMBuildMul(b, acc, sq, ""), acc, "");
    LLVMValueRef sq2 = LLVMBuildMul(b, sq, sq, "");
    LLVMValueRef ex2 = LLVMBuildLShr(b, ex, one, "");
    LLVMBuildBr(b, head);
    LLVMValueRef in_acc[2] = {one, acc2}, in_sq[2] = {base, sq2}, in_ex[2] = {e, ex2};
    LLVMBasicBlockRef from[2] = {entry, step};
    LLVMAddIncoming(acc, in_acc, from, 2);
    LLVMAddIncoming(sq, in_sq, from, 2);
    LLVMAddIncoming(ex, in_ex, from, 2);

    LLVMPositionBuilderAtEnd(b, done);
    LLVMBuildRet(b, acc);
    LLVMPositionBuilderAtEnd(b, saved);
    return f;
}

static LLVMValueRef imin(Cg *g, bool s, LLVMValueRef x, LLVMValueRef y)
{
    return LLVMBuildSelect(g->b, LLVMBuildICmp(g->b, s ? LLVMIntSLT : LLVMIntULT, x, y, ""), x, y, "");
}

static LLVMValueRef imax(Cg *g, bool s, LLVMValueRef x, LLVMValueRef y)
{
    return LLVMBuildSelect(g->b, LLVMBuildICmp(g->b, s ? LLVMIntSGT : LLVMIntUGT, x, y, ""), x, y, "");
}

static LLVMValueRef emit_float_op(Cg *g, Op op, DType t, LLVMValueRef *a);

static LLVMValueRef emit_int_op(Cg *g, Op op, DType t, LLVMValueRef *a)
{
    LLVMBuilderRef b = g->b;
    LLVMTypeRef ty = cg_reg_type(g, t);
    bool s = dtype_is_signed(t);
    LLVMValueRef zero = int_const(ty, 0);
    switch (op) {
    case OP_NEG: return LLVMBuildSub(b, zero, a[0], "");
    case OP_ABS:
        if (!s) return a[0];
        return LLVMBuildSelect(b, LLVMBuildICmp(b, LLVMIntSLT, a[0], zero, ""),
                               LLVMBuildSub(b, zero, a[0], ""), a[0], "");
    case OP_FLOOR: case OP_CEIL: case OP_ROUND: case OP_TRUNC: return a[0];
    case OP_SIGN: {
        LLVMValueRef pos = LLVMBuildZExt(b, LLVMBuildICmp(b, LLVMIntNE, a[0], zero, ""), ty, "");
        if (!s) return pos;
        pos = LLVMBuildZExt(b, LLVMBuildICmp(b, LLVMIntSGT, a[0], zero, ""), ty, "");
        LLVMValueRef neg = LLVMBuildZExt(b, LLVMBuildICmp(b, LLVMIntSLT, a[0], zero, ""), ty, "");
        return LLVMBuildSub(b, pos, neg, "");
    }
    case OP_ADD: return LLVMBuildAdd(b, a[0], a[1], "");
    case OP_SUB: return LLVMBuildSub(b, a[0], a[1], "");
    case OP_MUL: return LLVMBuildMul(b, a[0], a[1], "");
    case OP_DIV: return int_divmod(g, s, true, a[0], a[1]);
    case OP_MOD: return int_divmod(g, s, false, a[0], a[1]);
    case OP_POW: {
        LLVMValueRef f = ipow_fn(g, t);
        LLVMTypeRef params[2] = {ty, ty};
        return LLVMBuildCall2(b, LLVMFunctionType(ty, params, 2, 0), f, a, 2, "");
    }
    case OP_MIN: return imin(g, s, a[0], a[1]);
    case OP_MAX: return imax(g, s, a[0], a[1]);
    case OP_CLAMP: return imin(g, s, imax(g, s, a[0], a[1]), a[2]);
    case OP_FMA: return LLVMBuildAdd(b, LLVMBuildMul(b, a[0], a[1], ""), a[2], "");
    case OP_EXP: case OP_LOG: case OP_EXP2: case OP_LOG2: case OP_SQRT: case OP_RSQRT:
    case OP_SIN: case OP_COS: case OP_TANH: case OP_SIGMOID: case OP_ERF: {
        /* float builtins on an integer (the verifier refuses them; the interpreter goes
         * through double and saturates back): the same here */
        LLVMValueRef d = s ? LLVMBuildSIToFP(b, a[0], g->f64, "") : LLVMBuildUIToFP(b, a[0], g->f64, "");
        return emit_cast(g, DT_F64, t, emit_float_op(g, op, DT_F64, &d));
    }
    case OP_CONST: case OP_VAR: case OP_ACCESS: case OP_CAST: case OP_NOT: case OP_ISNAN:
    case OP_LT: case OP_LE: case OP_GT: case OP_GE: case OP_EQ: case OP_NE: case OP_AND:
    case OP_OR: case OP_SELECT: case OP_COUNT:
        break;
    }
    TD_UNREACHABLE("emit_int_op: op handled elsewhere");
}

/* ---- float arithmetic ---------------------------------------------------------------------------- */

/* Float min / max propagate NaN. f32 and f64 use llvm.minimum / llvm.maximum, which the
 * vectoriser knows as min/max reductions; they order -0 below +0 where the interpreter's
 * `a < b ? a : b` returns b for two zeros, so the sign of a zero result is the one thing
 * that may differ. f16 and bf16 use the interpreter's formula itself: InstCombine would
 * narrow llvm.minimum of two extended halves to llvm.minimum.f16, which LLVM 19 lowers
 * wrongly on x86 when vectorised (min(-0, NaN) gives -0), and slowly. */
static LLVMValueRef fminmax(Cg *g, DType t, bool is_min, LLVMValueRef x, LLVMValueRef y)
{
    if (!is_narrow_float(t)) return intr2(g, is_min ? "llvm.minimum" : "llvm.maximum", x, y);
    LLVMBuilderRef b = g->b;
    LLVMValueRef c = LLVMBuildFCmp(b, is_min ? LLVMRealOLT : LLVMRealOGT, x, y, "");
    LLVMValueRef r = LLVMBuildSelect(b, c, x, y, "");
    LLVMValueRef nan = LLVMBuildFCmp(b, LLVMRealUNO, x, y, "");
    return LLVMBuildSelect(b, nan, fconst(LLVMTypeOf(x), __builtin_nan("")), r, "");
}

/* ---- vector variants of the libm functions ------------------------------------------------------
 *
 * With g->vecmath, each call to a libm function (or the intrinsic LLVM lowers to one) names
 * glibc's libmvec versions of it, `_ZGVeN16v_expf` and the like, in the call-site attribute
 * "vector-function-abi-variant"; the loop vectoriser then calls 16 (AVX-512), 8 (AVX2) or 4
 * (SSE) lanes at once instead of scalarising. Only variants the target's ISA runs and the
 * process's libmvec exports are named (cg_libmvec_has). */

static void add_vector_variants(Cg *g, LLVMValueRef call, const char *base, int nargs)
{
    LLVMTypeRef ty = LLVMTypeOf(call);
    bool f32 = ty == g->f32;
    LLVMValueRef callee = LLVMGetCalledValue(call);
    size_t nlen;
    const char *scalar = LLVMGetValueName2(callee, &nlen);
    static const struct { char isa; int bits; bool (*ok)(const Cg *); } isas[] = {
        {'e', 512, cg_has_avx512}, {'d', 256, cg_has_avx2}, {'b', 128, cg_has_sse2}};
    StrBuf attr = {0};
    for (int i = 0; i < TD_COUNTOF(isas); i++) {
        if (!isas[i].ok(g)) continue;
        int vlen = isas[i].bits / (f32 ? 32 : 64);
        char vname[64], params[4] = "v";
        if (nargs == 2) strcpy(params, "vv");
        snprintf(vname, sizeof vname, "_ZGV%cN%d%s_%s%s", isas[i].isa, vlen, params, base, f32 ? "f" : "");
        if (!cg_libmvec_has(vname)) continue;
        if (!LLVMGetNamedFunction(g->mod, vname)) {
            LLVMTypeRef vt = LLVMVectorType(ty, (unsigned)vlen), pt[2] = {vt, vt};
            LLVMValueRef f = LLVMAddFunction(g->mod, vname, LLVMFunctionType(vt, pt, (unsigned)nargs, 0));
            mark_pure(g, f);
            cg_keep(g, f);
        }
        sb_printf(&attr, "%s_ZGV_LLVM_N%d%s_%.*s(%s)", attr.len ? "," : "", vlen, params, (int)nlen,
                  scalar, vname);
    }
    if (attr.len) {
        const char *key = "vector-function-abi-variant";
        LLVMAddCallSiteAttribute(call, LLVMAttributeFunctionIndex,
                                 LLVMCreateStringAttribute(g->ctx, key, (unsigned)strlen(key), attr.data,
                                                           (unsigned)attr.len));
    }
    sb_free(&attr);
}

/* libm's `base` (expf or exp by x's type), through the intrinsic `intrinsic` when LLVM has
 * one (it lowers to the same libm call and folds constants). */
static LLVMValueRef math_call(Cg *g, const char *base, const char *intrinsic, LLVMValueRef *x, int n,
                              bool vec)
{
    LLVMValueRef call;
    if (intrinsic) {
        call = n == 1 ? intr1(g, intrinsic, x[0]) : intr2(g, intrinsic, x[0], x[1]);
    } else {
        char name[32];
        snprintf(name, sizeof name, "%s%s", base, LLVMTypeOf(x[0]) == g->f32 ? "f" : "");
        call = libm_call(g, name, x[0]);
    }
    if (vec) add_vector_variants(g, call, base, n);
    return call;
}

/* A transcendental of x in x's own type (float or double); vec: may use libmvec. */
static LLVMValueRef math1(Cg *g, Op op, LLVMValueRef x, bool vec)
{
    switch (op) {
    case OP_EXP: return math_call(g, "exp", "llvm.exp", &x, 1, vec);
    case OP_LOG: return math_call(g, "log", "llvm.log", &x, 1, vec);
    case OP_EXP2: return math_call(g, "exp2", "llvm.exp2", &x, 1, vec);
    case OP_LOG2: return math_call(g, "log2", "llvm.log2", &x, 1, vec);
    case OP_SIN: return math_call(g, "sin", "llvm.sin", &x, 1, vec);
    case OP_COS: return math_call(g, "cos", "llvm.cos", &x, 1, vec);
    case OP_TANH: return math_call(g, "tanh", NULL, &x, 1, vec);
    case OP_ERF: return math_call(g, "erf", NULL, &x, 1, vec);
    case OP_SQRT: return intr1(g, "llvm.sqrt", x);
    case OP_RSQRT: {
        LLVMValueRef one = fconst(LLVMTypeOf(x), 1);
        return LLVMBuildFDiv(g->b, one, intr1(g, "llvm.sqrt", x), "");
    }
    case OP_SIGMOID: {
        LLVMValueRef one = fconst(LLVMTypeOf(x), 1), nx = LLVMBuildFNeg(g->b, x, "");
        LLVMValueRef e = math_call(g, "exp", "llvm.exp", &nx, 1, vec);
        return LLVMBuildFDiv(g->b, one, LLVMBuildFAdd(g->b, one, e, ""), "");
    }
    case OP_CONST: case OP_VAR: case OP_ACCESS: case OP_CAST: case OP_NEG: case OP_NOT:
    case OP_ABS: case OP_FLOOR: case OP_CEIL: case OP_ROUND: case OP_TRUNC: case OP_SIGN:
    case OP_ISNAN: case OP_ADD: case OP_SUB: case OP_MUL: case OP_DIV: case OP_MOD: case OP_POW:
    case OP_MIN: case OP_MAX: case OP_LT: case OP_LE: case OP_GT: case OP_GE: case OP_EQ:
    case OP_NE: case OP_AND: case OP_OR: case OP_SELECT: case OP_CLAMP: case OP_FMA: case OP_COUNT:
        break;
    }
    TD_UNREACHABLE("math1: not a transcendental");
}

/* Ops computed in double for f16/bf16 (and rsqrt for f32 too), rounded as the interpreter
 * rounds its double result; in the dtype's own type otherwise. */
static LLVMValueRef emit_math(Cg *g, Op op, DType t, LLVMValueRef *a)
{
    bool via_double = is_narrow_float(t) || (t == DT_F32 && op == OP_RSQRT);
    /* libmvec for f32, and for f16/bf16 through double, whose two roundings hide its few
     * ulps of double (barring a result within them of a rounding boundary); f64 stays with
     * the scalar functions the interpreter calls, bit for bit */
    bool vec = g->vecmath && t != DT_F64;
    if (!via_double) {
        if (op == OP_POW) return math_call(g, "pow", "llvm.pow", a, 2, vec);
        return math1(g, op, a[0], vec);
    }
    LLVMValueRef x[2] = {LLVMBuildFPExt(g->b, a[0], g->f64, ""), NULL};
    LLVMValueRef r;
    if (op == OP_POW) {
        x[1] = LLVMBuildFPExt(g->b, a[1], g->f64, "");
        r = math_call(g, "pow", "llvm.pow", x, 2, vec);
    } else {
        r = math1(g, op, x[0], vec);
    }
    return round_from_double(g, t, r);
}

static LLVMValueRef emit_float_op(Cg *g, Op op, DType t, LLVMValueRef *a)
{
    LLVMBuilderRef b = g->b;
    LLVMTypeRef ty = cg_reg_type(g, t);
    switch (op) {
    /* exact: no rounding needed */
    case OP_NEG: return LLVMBuildFNeg(b, a[0], "");
    case OP_ABS: return intr1(g, "llvm.fabs", a[0]);
    case OP_FLOOR: return intr1(g, "llvm.floor", a[0]);
    case OP_CEIL: return intr1(g, "llvm.ceil", a[0]);
    case OP_ROUND: return intr1(g, "llvm.roundeven", a[0]);
    case OP_TRUNC: return intr1(g, "llvm.trunc", a[0]);
    case OP_SIGN: {  /* +-1, and x itself for +-0 and NaN */
        LLVMValueRef zero = fconst(ty, 0);
        LLVMValueRef r = LLVMBuildSelect(b, LLVMBuildFCmp(b, LLVMRealOLT, a[0], zero, ""), fconst(ty, -1), a[0], "");
        return LLVMBuildSelect(b, LLVMBuildFCmp(b, LLVMRealOGT, a[0], zero, ""), fconst(ty, 1), r, "");
    }
    case OP_MOD: return LLVMBuildFRem(b, a[0], a[1], "");  /* fmod is exact */
    case OP_MIN: return fminmax(g, t, true, a[0], a[1]);
    case OP_MAX: return fminmax(g, t, false, a[0], a[1]);
    case OP_CLAMP: return fminmax(g, t, true, fminmax(g, t, false, a[0], a[1]), a[2]);
    /* inexact: round f16/bf16 after the float op (float holds their exact results, or
     * rounds them once, which rounding again to 11 or 8 bits does not disturb) */
    case OP_ADD: return round_to(g, t, LLVMBuildFAdd(b, a[0], a[1], ""));
    case OP_SUB: return round_to(g, t, LLVMBuildFSub(b, a[0], a[1], ""));
    case OP_MUL: return round_to(g, t, LLVMBuildFMul(b, a[0], a[1], ""));
    case OP_DIV: return round_to(g, t, LLVMBuildFDiv(b, a[0], a[1], ""));
    case OP_SQRT: return round_to(g, t, intr1(g, "llvm.sqrt", a[0]));
    case OP_FMA: {  /* as the interpreter: fmaf for f32 and narrower, then round */
        LLVMValueRef r = cg_intrinsic(g, "llvm.fma", &ty, 1, a, 3);
        return round_to(g, t, r);
    }
    case OP_EXP: case OP_LOG: case OP_EXP2: case OP_LOG2: case OP_RSQRT: case OP_SIN:
    case OP_COS: case OP_TANH: case OP_SIGMOID: case OP_ERF: case OP_POW:
        return emit_math(g, op, t, a);
    case OP_CONST: case OP_VAR: case OP_ACCESS: case OP_CAST: case OP_NOT: case OP_ISNAN:
    case OP_LT: case OP_LE: case OP_GT: case OP_GE: case OP_EQ: case OP_NE: case OP_AND:
    case OP_OR: case OP_SELECT: case OP_COUNT:
        break;
    }
    TD_UNREACHABLE("emit_float_op: op handled elsewhere");
}

/* ---- comparisons, loads, select ------------------------------------------------------------------ */

static LLVMValueRef emit_compare(Cg *g, Op op, DType t, LLVMValueRef x, LLVMValueRef y)
{
    if (dtype_is_float(t)) {
        /* ordered, except != which is true when either side is NaN (as in C) */
        LLVMRealPredicate p = op == OP_LT ? LLVMRealOLT : op == OP_LE ? LLVMRealOLE
                            : op == OP_GT ? LLVMRealOGT : op == OP_GE ? LLVMRealOGE
                            : op == OP_EQ ? LLVMRealOEQ : LLVMRealUNE;
        return LLVMBuildFCmp(g->b, p, x, y, "");
    }
    bool s = dtype_is_signed(t);  /* bool and unsigned types compare unsigned */
    LLVMIntPredicate p = op == OP_LT ? (s ? LLVMIntSLT : LLVMIntULT)
                       : op == OP_LE ? (s ? LLVMIntSLE : LLVMIntULE)
                       : op == OP_GT ? (s ? LLVMIntSGT : LLVMIntUGT)
                       : op == OP_GE ? (s ? LLVMIntSGE : LLVMIntUGE)
                       : op == OP_EQ ? LLVMIntEQ : LLVMIntNE;
    return LLVMBuildICmp(g->b, p, x, y, "");
}

/* Emits then or else in its own block and joins them: only the chosen side runs. */
static LLVMValueRef emit_branches(Cg *g, LLVMValueRef cond, DType t, const Expr *then_e,
                                  const Expr *else_e)
{
    LLVMBasicBlockRef tb = cg_block(g, "sel.then"), eb = cg_block(g, "sel.else");
    LLVMBasicBlockRef join = cg_block(g, "sel.join");
    LLVMBuildCondBr(g->b, cond, tb, eb);
    LLVMPositionBuilderAtEnd(g->b, tb);
    LLVMValueRef tv = cg_expr(g, then_e);
    LLVMBasicBlockRef tend = LLVMGetInsertBlock(g->b);
    LLVMBuildBr(g->b, join);
    LLVMPositionBuilderAtEnd(g->b, eb);
    LLVMValueRef ev = cg_expr(g, else_e);
    LLVMBasicBlockRef eend = LLVMGetInsertBlock(g->b);
    LLVMBuildBr(g->b, join);
    LLVMPositionBuilderAtEnd(g->b, join);
    LLVMValueRef phi = LLVMBuildPhi(g->b, cg_reg_type(g, t), "");
    LLVMValueRef vals[2] = {tv, ev};
    LLVMBasicBlockRef from[2] = {tend, eend};
    LLVMAddIncoming(phi, vals, from, 2);
    return phi;
}

static LLVMValueRef emit_access(Cg *g, const Expr *e)
{
    const Tensor *t = e->tensor;
    TD_ASSERT(t && t->id >= 0 && t->id < g->nids);
    if (!g->bufs[t->id].ptr) {
        cg_fail(g, "load from %s, which has no storage here", t->name);
        return undef_of(g, e->type);
    }
    if (e->nargs != t->rank || t->rank > IR_MAX_RANK) {
        cg_fail(g, "load from %s with %d indices", t->name, e->nargs);
        return undef_of(g, e->type);
    }
    LLVMValueRef idx[IR_MAX_RANK];
    for (int a = 0; a < t->rank; a++) idx[a] = cg_index(g, e->args[a]);
    if (g->failed) return undef_of(g, e->type);
    if (!e->pad) return cg_load_elem(g, t, cg_offset(g, t, idx));
    /* in range on every axis: 0 <= i < dim, one unsigned compare each */
    LLVMValueRef inside = LLVMConstInt(g->i1, 1, 0);
    for (int a = 0; a < t->rank; a++)
        inside = LLVMBuildAnd(g->b, inside,
                              LLVMBuildICmp(g->b, LLVMIntULT, idx[a], g->bufs[t->id].dims[a], ""), "");
    if (LLVMIsAConstantInt(inside)) {  /* decided at compile time: no branch */
        if (LLVMConstIntGetZExtValue(inside)) return cg_load_elem(g, t, cg_offset(g, t, idx));
        return cg_expr(g, e->pad);
    }
    /* the offset is computed on the in-range side only, where it cannot wrap */
    LLVMBasicBlockRef tb = cg_block(g, "inside"), eb = cg_block(g, "pad"), join = cg_block(g, "loaded");
    LLVMBuildCondBr(g->b, inside, tb, eb);
    LLVMPositionBuilderAtEnd(g->b, tb);
    LLVMValueRef tv = cg_load_elem(g, t, cg_offset(g, t, idx));
    LLVMBasicBlockRef tend = LLVMGetInsertBlock(g->b);
    LLVMBuildBr(g->b, join);
    LLVMPositionBuilderAtEnd(g->b, eb);
    LLVMValueRef ev = cg_expr(g, e->pad);
    LLVMBasicBlockRef eend = LLVMGetInsertBlock(g->b);
    LLVMBuildBr(g->b, join);
    LLVMPositionBuilderAtEnd(g->b, join);
    LLVMValueRef phi = LLVMBuildPhi(g->b, cg_reg_type(g, e->type), "");
    LLVMValueRef vals[2] = {tv, ev};
    LLVMBasicBlockRef from[2] = {tend, eend};
    LLVMAddIncoming(phi, vals, from, 2);
    return phi;
}

static LLVMValueRef emit_select(Cg *g, const Expr *e)
{
    LLVMValueRef c = cg_expr(g, e->args[0]);
    if (g->failed) return undef_of(g, e->type);
    if (has_access(e->args[1]) || has_access(e->args[2]))
        return emit_branches(g, c, e->type, e->args[1], e->args[2]);
    /* no memory on either side: both may run (division is guarded, nothing traps) */
    LLVMValueRef x = cg_expr(g, e->args[1]), y = cg_expr(g, e->args[2]);
    return LLVMBuildSelect(g->b, c, x, y, "");
}

/* ---- expressions ------------------------------------------------------------------------------- */

LLVMValueRef cg_expr(Cg *g, const Expr *e)
{
    if (g->failed) return undef_of(g, e->type);
    LLVMBuilderRef b = g->b;
    LLVMValueRef a[3];
    switch (e->op) {
    case OP_CONST: return const_of(g, e->type, e->value);
    case OP_VAR: return var_value(g, e->var);
    case OP_ACCESS: return emit_access(g, e);
    case OP_SELECT: return emit_select(g, e);
    case OP_CAST: return emit_cast(g, e->args[0]->type, e->type, cg_expr(g, e->args[0]));
    case OP_ISNAN: {
        LLVMValueRef x = cg_expr(g, e->args[0]);
        if (!dtype_is_float(e->args[0]->type)) return LLVMConstInt(g->i1, 0, 0);
        return LLVMBuildFCmp(b, LLVMRealUNO, x, x, "");
    }
    case OP_NOT: return LLVMBuildNot(b, cg_expr(g, e->args[0]), "");
    case OP_AND: case OP_OR: {  /* both sides, as the interpreter: neither can trap */
        LLVMValueRef x = cg_expr(g, e->args[0]), y = cg_expr(g, e->args[1]);
        return e->op == OP_AND ? LLVMBuildAnd(b, x, y, "") : LLVMBuildOr(b, x, y, "");
    }
    case OP_LT: case OP_LE: case OP_GT: case OP_GE: case OP_EQ: case OP_NE: {
        LLVMValueRef x = cg_expr(g, e->args[0]), y = cg_expr(g, e->args[1]);
        return emit_compare(g, e->op, e->args[0]->type, x, y);
    }
    case OP_NEG: case OP_EXP: case OP_LOG: case OP_EXP2: case OP_LOG2: case OP_SQRT:
    case OP_RSQRT: case OP_ABS: case OP_SIN: case OP_COS: case OP_TANH: case OP_SIGMOID:
    case OP_ERF: case OP_FLOOR: case OP_CEIL: case OP_ROUND: case OP_TRUNC: case OP_SIGN:
    case OP_ADD: case OP_SUB: case OP_MUL: case OP_DIV: case OP_MOD: case OP_POW: case OP_MIN:
    case OP_MAX: case OP_CLAMP: case OP_FMA:
        if (e->nargs > 3) break;
        for (int i = 0; i < e->nargs; i++) a[i] = cg_expr(g, e->args[i]);
        if (g->failed) return undef_of(g, e->type);
        if (e->type == DT_BOOL) {
            cg_fail(g, "%s on bool", op_name(e->op));
            return undef_of(g, e->type);
        }
        return dtype_is_float(e->type) ? emit_float_op(g, e->op, e->type, a)
                                       : emit_int_op(g, e->op, e->type, a);
    case OP_COUNT: break;
    }
    cg_fail(g, "cannot compile expression op %d", (int)e->op);
    return undef_of(g, e->type);
}

/* Index arithmetic: +, -, *, neg wrap; / and % floor. `size` follows ir_eval_size (min and
 * max stay in index arithmetic), otherwise interp.c's eval_index (they do not). */
static LLVMValueRef index_expr(Cg *g, const Expr *e, bool size)
{
    if (g->failed) return cg_i64(g, 0);
    LLVMBuilderRef b = g->b;
    switch (e->op) {
    case OP_CONST:
        if (dtype_is_float(e->type)) break;
        return cg_i64(g, e->value.i);
    case OP_VAR: return var_value(g, e->var);
    case OP_NEG: return LLVMBuildSub(b, cg_i64(g, 0), index_expr(g, e->args[0], size), "");
    case OP_ADD: case OP_SUB: case OP_MUL: case OP_DIV: case OP_MOD: case OP_MIN: case OP_MAX: {
        if (!size && (e->op == OP_MIN || e->op == OP_MAX)) break;
        LLVMValueRef x = index_expr(g, e->args[0], size), y = index_expr(g, e->args[1], size);
        switch (e->op) {
        case OP_ADD: return LLVMBuildAdd(b, x, y, "");
        case OP_SUB: return LLVMBuildSub(b, x, y, "");
        case OP_MUL: return LLVMBuildMul(b, x, y, "");
        case OP_DIV: return floor_divmod(g, true, x, y);
        case OP_MOD: return floor_divmod(g, false, x, y);
        case OP_MIN: return imin(g, true, x, y);
        case OP_MAX: return imax(g, true, x, y);
        case OP_CONST: case OP_VAR: case OP_ACCESS: case OP_CAST: case OP_NEG: case OP_NOT:
        case OP_EXP: case OP_LOG: case OP_EXP2: case OP_LOG2: case OP_SQRT: case OP_RSQRT:
        case OP_ABS: case OP_SIN: case OP_COS: case OP_TANH: case OP_SIGMOID: case OP_ERF:
        case OP_FLOOR: case OP_CEIL: case OP_ROUND: case OP_TRUNC: case OP_SIGN: case OP_ISNAN:
        case OP_POW: case OP_LT: case OP_LE: case OP_GT: case OP_GE: case OP_EQ: case OP_NE:
        case OP_AND: case OP_OR: case OP_SELECT: case OP_CLAMP: case OP_FMA: case OP_COUNT:
            break;
        }
        break;
    }
    case OP_ACCESS: case OP_CAST: case OP_NOT: case OP_EXP: case OP_LOG: case OP_EXP2:
    case OP_LOG2: case OP_SQRT: case OP_RSQRT: case OP_ABS: case OP_SIN: case OP_COS:
    case OP_TANH: case OP_SIGMOID: case OP_ERF: case OP_FLOOR: case OP_CEIL: case OP_ROUND:
    case OP_TRUNC: case OP_SIGN: case OP_ISNAN: case OP_POW: case OP_LT: case OP_LE: case OP_GT:
    case OP_GE: case OP_EQ: case OP_NE: case OP_AND: case OP_OR: case OP_SELECT: case OP_CLAMP:
    case OP_FMA: case OP_COUNT:
        break;
    }
    if (e->type != DT_I64) {
        cg_fail(g, "an index or size expression has type %s, not i64", dtype_name(e->type));
        return cg_i64(g, 0);
    }
    return cg_expr(g, e);  /* any other i64 value: ordinary arithmetic */
}

LLVMValueRef cg_index(Cg *g, const Expr *e) { return index_expr(g, e, false); }
LLVMValueRef cg_size(Cg *g, const Expr *e) { return index_expr(g, e, true); }
