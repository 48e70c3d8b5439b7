/* llvm_gen: loop IR (level 2) to LLVM IR, one function per kernel.
 *
 * Takes a LoopModule that passed loop_verify; gives an LLVM module (triple, data layout, CPU
 * and features of the target machine) holding, per kernel K,
 *     i32 @tdsl_raw_K(ptr noalias %buffers, ptr noalias %sizes)
 * (the ABI of cpu.h). Expressions are llvm_expr.c's; this file does the statements and the
 * memory:
 *
 *   - the entry block holds the allocas only and jumps to the code at the end, so SROA turns
 *     every scalar accumulator of the lowering into SSA values;
 *   - sizes and buffer pointers are read once on entry; a buffer's dims are its shape
 *     expressions, evaluated where the buffer comes into scope;
 *   - LS_FOR is a guarded, rotated loop (what LoopRotate would make): `if (n > 0) do { body }
 *     while (++i < n)`, or downwards for reverse loops; vector and unrolled loops carry the
 *     llvm.loop hints; parallel loops are outlined and run on the runtime's threads
 *     (llvm_parallel.c; serially inside another parallel loop); GPU kinds run serially;
 *   - LS_ALLOC: rank-0 buffers (and small constant-size ones not on the heap) are allocas;
 *     everything else is aligned_alloc(64, ...) at the alloc and free() after its body. A
 *     failed allocation (or a size that overflows) frees the enclosing heap buffers, known
 *     statically since allocations nest, and returns -1 (in an outlined parallel body: sets
 *     the kernel's failure flag and returns);
 *   - an f32/f64 accumulator update `acc = acc + e` (or `*`) on a private scalar may be
 *     reassociated, so the vectoriser splits float sums and products into partial results;
 *   - storage layout: packed i4/u4/i2 are read with a shift and written with a
 *     read-modify-write of their byte; bool is a byte; f16 goes through `half`, bf16 through
 *     the top 16 bits of a float. */
#include "internal.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <llvm-c/Analysis.h>
#include <llvm-c/DebugInfo.h>
#include <llvm-c/Target.h>

/* A constant-size buffer of at most this many bytes outside the heap scope is an alloca. */
enum { CG_MAX_STACK_BYTES = 16384, CG_HEAP_ALIGN = 64 };

/* ---- shared helpers ------------------------------------------------------------------------ */

void cg_fail(Cg *g, const char *fmt, ...)
{
    if (g->failed) return;  /* the first message explains the rest */
    g->failed = true;
    va_list ap;
    va_start(ap, fmt);
    sb_printf(g->err, "cpu: %s: ", g->k ? g->k->name : "module");
    sb_vprintf(g->err, fmt, ap);
    va_end(ap);
}

LLVMTypeRef cg_reg_type(Cg *g, DType t)
{
    switch (t) {
    case DT_BOOL: return g->i1;
    case DT_I2: return LLVMIntTypeInContext(g->ctx, 2);
    case DT_I4: case DT_U4: return LLVMIntTypeInContext(g->ctx, 4);
    case DT_I8: case DT_U8: return g->i8;
    case DT_I16: return g->i16;
    case DT_I32: return g->i32;
    case DT_I64: return g->i64;
    case DT_F16: case DT_BF16: case DT_F32: return g->f32;
    case DT_F64: return g->f64;
    case DT_COUNT: break;
    }
    TD_UNREACHABLE("cg_reg_type: bad dtype");
}

LLVMValueRef cg_i64(Cg *g, int64_t v) { return LLVMConstInt(g->i64, (unsigned long long)v, 1); }

LLVMValueRef cg_intrinsic(Cg *g, const char *name, LLVMTypeRef *over, int nover,
                          LLVMValueRef *args, int nargs)
{
    unsigned id = LLVMLookupIntrinsicID(name, strlen(name));
    TD_ASSERT(id != 0);
    LLVMValueRef f = LLVMGetIntrinsicDeclaration(g->mod, id, over, (size_t)nover);
    LLVMTypeRef ft = LLVMIntrinsicGetType(g->ctx, id, over, (size_t)nover);
    return LLVMBuildCall2(g->b, ft, f, args, (unsigned)nargs, "");
}

LLVMBasicBlockRef cg_block(Cg *g, const char *name)
{
    return LLVMAppendBasicBlockInContext(g->ctx, g->fn, name);
}

void cg_keep(Cg *g, LLVMValueRef global)
{
    if (g->nkeep == g->capkeep) {
        g->capkeep = g->capkeep ? 2 * g->capkeep : 8;
        g->keep = realloc(g->keep, (size_t)g->capkeep * sizeof *g->keep);
        if (!g->keep) td_internal_error(__FILE__, __LINE__, "out of memory");
    }
    g->keep[g->nkeep++] = global;
}

bool cg_has_avx512(const Cg *g) { return g->avx512; }
bool cg_has_avx2(const Cg *g) { return g->avx2; }
bool cg_has_sse2(const Cg *g) { return g->sse2; }

/* @llvm.compiler.used: declarations the optimiser must keep until the vectoriser has had a
 * chance to call them (the libmvec variants). */
static void emit_compiler_used(Cg *g)
{
    if (!g->nkeep) return;
    LLVMTypeRef at = LLVMArrayType2(g->ptr, (uint64_t)g->nkeep);
    LLVMValueRef used = LLVMAddGlobal(g->mod, at, "llvm.compiler.used");
    LLVMSetLinkage(used, LLVMAppendingLinkage);
    LLVMSetSection(used, "llvm.metadata");
    LLVMSetInitializer(used, LLVMConstArray2(g->ptr, g->keep, (uint64_t)g->nkeep));
}

/* Whether feature string fs turns feature `name` on ("+name" as a whole item). */
static bool has_feature(const char *fs, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = fs; (p = strstr(p, name)) != NULL; p += n)
        if (p > fs && p[-1] == '+' && (p[n] == ',' || p[n] == 0)) return true;
    return false;
}

LLVMValueRef cg_declare_fn(Cg *g, const char *name, LLVMTypeRef ret, LLVMTypeRef *params, int n,
                           LLVMTypeRef *fty)
{
    *fty = LLVMFunctionType(ret, params, (unsigned)n, 0);
    LLVMValueRef f = LLVMGetNamedFunction(g->mod, name);
    if (!f) {
        f = LLVMAddFunction(g->mod, name, *fty);
        unsigned nounwind = LLVMGetEnumAttributeKindForName("nounwind", 8);
        LLVMAddAttributeAtIndex(f, LLVMAttributeFunctionIndex,
                                LLVMCreateEnumAttribute(g->ctx, nounwind, 0));
    }
    return f;
}

/* ---- storage layout ------------------------------------------------------------------------- */

static CgBuf *buf_of(Cg *g, const Tensor *t)
{
    TD_ASSERT(t->id >= 0 && t->id < g->nids);
    CgBuf *cb = &g->bufs[t->id];
    TD_ASSERT(cb->ptr);
    return cb;
}

/* log2 of the elements per byte of a packed type (i4/u4: 1, i2: 2). */
static int packed_shift(DType t) { return dtype_bits(t) == 4 ? 1 : 2; }
static bool is_packed(DType t) { return dtype_bits(t) < 8; }

/* The type a buffer element is stored as (packed types: their byte). */
static LLVMTypeRef storage_type(Cg *g, DType t)
{
    switch (t) {
    case DT_BOOL: case DT_I2: case DT_I4: case DT_U4: case DT_I8: case DT_U8: return g->i8;
    case DT_I16: case DT_BF16: return g->i16;
    case DT_F16: return g->f16;
    case DT_I32: return g->i32;
    case DT_F32: return g->f32;
    case DT_I64: return g->i64;
    case DT_F64: return g->f64;
    case DT_COUNT: break;
    }
    TD_UNREACHABLE("storage_type: bad dtype");
}

static unsigned storage_align(DType t) { return dtype_bits(t) < 8 ? 1 : (unsigned)dtype_bits(t) / 8; }

static LLVMValueRef elem_ptr(Cg *g, LLVMValueRef base, LLVMTypeRef et, LLVMValueRef off)
{
    return LLVMBuildInBoundsGEP2(g->b, et, base, &off, 1, "");
}

/* For a packed element: its byte's pointer and its bit shift within the byte (i8). */
static LLVMValueRef packed_byte(Cg *g, DType t, LLVMValueRef base, LLVMValueRef off,
                                LLVMValueRef *shift)
{
    int ps = packed_shift(t);
    LLVMValueRef byte = LLVMBuildLShr(g->b, off, cg_i64(g, ps), "");
    LLVMValueRef lane = LLVMBuildAnd(g->b, off, cg_i64(g, (1 << ps) - 1), "");
    lane = LLVMBuildTrunc(g->b, lane, g->i8, "");
    *shift = LLVMBuildShl(g->b, lane, LLVMConstInt(g->i8, dtype_bits(t) == 4 ? 2 : 1, 0), "");
    return elem_ptr(g, base, g->i8, byte);
}

LLVMValueRef cg_load_elem(Cg *g, const Tensor *t, LLVMValueRef off)
{
    CgBuf *cb = buf_of(g, t);
    DType dt = t->dtype;
    LLVMTypeRef rt = cg_reg_type(g, dt);
    if (cb->reg) return LLVMBuildLoad2(g->b, rt, cb->ptr, "");
    if (is_packed(dt)) {
        LLVMValueRef shift;
        LLVMValueRef p = packed_byte(g, dt, cb->ptr, off, &shift);
        LLVMValueRef byte = LLVMBuildLoad2(g->b, g->i8, p, "");
        return LLVMBuildTrunc(g->b, LLVMBuildLShr(g->b, byte, shift, ""), rt, "");
    }
    LLVMTypeRef st = storage_type(g, dt);
    LLVMValueRef v = LLVMBuildLoad2(g->b, st, elem_ptr(g, cb->ptr, st, off), "");
    LLVMSetAlignment(v, storage_align(dt));
    switch (dt) {
    case DT_BOOL: return LLVMBuildICmp(g->b, LLVMIntNE, v, LLVMConstInt(g->i8, 0, 0), "");
    case DT_F16: return LLVMBuildFPExt(g->b, v, g->f32, "");
    case DT_BF16:
        v = LLVMBuildShl(g->b, LLVMBuildZExt(g->b, v, g->i32, ""), LLVMConstInt(g->i32, 16, 0), "");
        return LLVMBuildBitCast(g->b, v, g->f32, "");
    case DT_I2: case DT_I4: case DT_U4: case DT_I8: case DT_U8: case DT_I16: case DT_I32:
    case DT_I64: case DT_F32: case DT_F64:
        return v;
    case DT_COUNT: break;
    }
    TD_UNREACHABLE("cg_load_elem: bad dtype");
}

void cg_store_elem(Cg *g, const Tensor *t, LLVMValueRef off, LLVMValueRef v)
{
    CgBuf *cb = buf_of(g, t);
    DType dt = t->dtype;
    if (cb->reg) {
        LLVMBuildStore(g->b, v, cb->ptr);
        return;
    }
    if (is_packed(dt)) {
        LLVMValueRef shift;
        LLVMValueRef p = packed_byte(g, dt, cb->ptr, off, &shift);
        LLVMValueRef old = LLVMBuildLoad2(g->b, g->i8, p, "");
        LLVMValueRef ones = LLVMConstInt(g->i8, (1u << dtype_bits(dt)) - 1, 0);
        LLVMValueRef mask = LLVMBuildShl(g->b, ones, shift, "");
        LLVMValueRef bits = LLVMBuildShl(g->b, LLVMBuildZExt(g->b, v, g->i8, ""), shift, "");
        LLVMValueRef keep = LLVMBuildAnd(g->b, old, LLVMBuildNot(g->b, mask, ""), "");
        LLVMBuildStore(g->b, LLVMBuildOr(g->b, keep, bits, ""), p);
        return;
    }
    switch (dt) {
    case DT_BOOL: v = LLVMBuildZExt(g->b, v, g->i8, ""); break;
    case DT_F16: v = LLVMBuildFPTrunc(g->b, v, g->f16, ""); break;  /* exact: v is an f16 */
    case DT_BF16:
        v = LLVMBuildLShr(g->b, LLVMBuildBitCast(g->b, v, g->i32, ""), LLVMConstInt(g->i32, 16, 0), "");
        v = LLVMBuildTrunc(g->b, v, g->i16, "");
        break;
    case DT_I2: case DT_I4: case DT_U4: case DT_I8: case DT_U8: case DT_I16: case DT_I32:
    case DT_I64: case DT_F32: case DT_F64:
        break;
    case DT_COUNT: TD_UNREACHABLE("cg_store_elem: bad dtype");
    }
    LLVMTypeRef st = storage_type(g, dt);
    LLVMValueRef s = LLVMBuildStore(g->b, v, elem_ptr(g, cb->ptr, st, off));
    LLVMSetAlignment(s, storage_align(dt));
}

LLVMValueRef cg_offset(Cg *g, const Tensor *t, LLVMValueRef *idx)
{
    if (t->rank == 0) return cg_i64(g, 0);
    CgBuf *cb = buf_of(g, t);
    LLVMValueRef off = idx[0];
    for (int a = 1; a < t->rank; a++) {
        /* in range, so nothing wraps: the offset is below the buffer's element count */
        LLVMValueRef m = LLVMBuildMul(g->b, off, cb->dims[a], "");
        if (!LLVMIsConstant(m)) {
            LLVMSetNUW(m, 1);
            LLVMSetNSW(m, 1);
        }
        off = LLVMBuildAdd(g->b, m, idx[a], "");
        if (!LLVMIsConstant(off)) {
            LLVMSetNUW(off, 1);
            LLVMSetNSW(off, 1);
        }
    }
    return off;
}

/* ---- allocations ---------------------------------------------------------------------------- */

LLVMValueRef cg_entry_alloca(Cg *g, LLVMTypeRef ty, unsigned n, unsigned align)
{
    LLVMBuilderRef ab = LLVMCreateBuilderInContext(g->ctx);
    LLVMPositionBuilderAtEnd(ab, g->entry);
    LLVMValueRef p = n == 1 ? LLVMBuildAlloca(ab, ty, "")
                            : LLVMBuildAlloca(ab, LLVMArrayType2(ty, n), "");
    LLVMSetAlignment(p, align);
    LLVMDisposeBuilder(ab);
    return p;
}

LLVMBasicBlockRef cg_fail_block(Cg *g)
{
    LLVMBasicBlockRef here = LLVMGetInsertBlock(g->b);
    LLVMBasicBlockRef bb = cg_block(g, "alloc.fail");
    LLVMPositionBuilderAtEnd(g->b, bb);
    LLVMTypeRef fty;
    LLVMValueRef fr = cg_declare_fn(g, "free", LLVMVoidTypeInContext(g->ctx), &g->ptr, 1, &fty);
    for (int i = g->nheap - 1; i >= g->heap_base; i--) LLVMBuildCall2(g->b, fty, fr, &g->heap[i], 1, "");
    if (g->fail_flag) {  /* an outlined parallel body: the kernel returns -1 after the join */
        LLVMValueRef st = LLVMBuildStore(g->b, LLVMConstInt(g->i32, 1, 0), g->fail_flag);
        LLVMSetOrdering(st, LLVMAtomicOrderingMonotonic);
        LLVMSetAlignment(st, 4);
        LLVMBuildRetVoid(g->b);
    } else {
        LLVMBuildRet(g->b, LLVMConstInt(g->i32, (unsigned long long)-1, 1));
    }
    LLVMPositionBuilderAtEnd(g->b, here);
    return bb;
}

void cg_check_or_fail(Cg *g, LLVMValueRef ok, LLVMBasicBlockRef fail)
{
    LLVMBasicBlockRef cont = cg_block(g, "alloc.ok");
    LLVMBuildCondBr(g->b, ok, cont, fail);
    LLVMPositionBuilderAtEnd(g->b, cont);
}

/* Bytes for the buffer's elements (n elements, checked), rounded up to CG_HEAP_ALIGN. */
static LLVMValueRef heap_bytes(Cg *g, const Tensor *t, LLVMBasicBlockRef fail)
{
    CgBuf *cb = &g->bufs[t->id];
    LLVMValueRef n = cg_i64(g, 1), bad = LLVMConstInt(g->i1, 0, 0);
    for (int a = 0; a < t->rank; a++) {
        LLVMValueRef d = cb->dims[a];
        bad = LLVMBuildOr(g->b, bad, LLVMBuildICmp(g->b, LLVMIntSLT, d, cg_i64(g, 0), ""), "");
        LLVMValueRef args[2] = {n, d};
        LLVMValueRef r = cg_intrinsic(g, "llvm.umul.with.overflow", &g->i64, 1, args, 2);
        n = LLVMBuildExtractValue(g->b, r, 0, "");
        bad = LLVMBuildOr(g->b, bad, LLVMBuildExtractValue(g->b, r, 1, ""), "");
    }
    /* 2^56 elements is far beyond any machine; below it nothing here can overflow. */
    bad = LLVMBuildOr(g->b, bad, LLVMBuildICmp(g->b, LLVMIntUGT, n, cg_i64(g, (int64_t)1 << 56), ""), "");
    cg_check_or_fail(g, LLVMBuildNot(g->b, bad, ""), fail);
    LLVMValueRef bytes;
    if (is_packed(t->dtype)) {
        int ps = packed_shift(t->dtype);
        bytes = LLVMBuildLShr(g->b, LLVMBuildAdd(g->b, n, cg_i64(g, (1 << ps) - 1), ""), cg_i64(g, ps), "");
    } else {
        bytes = LLVMBuildMul(g->b, n, cg_i64(g, dtype_bits(t->dtype) / 8), "");
    }
    bytes = LLVMBuildAdd(g->b, bytes, cg_i64(g, CG_HEAP_ALIGN - 1), "");
    bytes = LLVMBuildAnd(g->b, bytes, cg_i64(g, -(int64_t)CG_HEAP_ALIGN), "");
    /* aligned_alloc(64, 0) may return NULL: ask for one line at least */
    LLVMValueRef zero = LLVMBuildICmp(g->b, LLVMIntEQ, bytes, cg_i64(g, 0), "");
    return LLVMBuildSelect(g->b, zero, cg_i64(g, CG_HEAP_ALIGN), bytes, "");
}

/* The constant byte size of t's storage, or -1 when a dim is not a constant. */
static int64_t const_bytes(Cg *g, const Tensor *t)
{
    int64_t n = 1;
    for (int a = 0; a < t->rank; a++) {
        LLVMValueRef d = g->bufs[t->id].dims[a];
        if (!LLVMIsAConstantInt(d)) return -1;
        int64_t v = LLVMConstIntGetSExtValue(d);
        if (v < 0 || !ck_mul_i64(n, v, &n) || n > CG_MAX_STACK_BYTES) return -1;
    }
    size_t bytes;
    if (!dtype_storage_bytes(t->dtype, (size_t)n, &bytes)) return -1;
    return (int64_t)bytes;
}

static void emit_alloc(Cg *g, const LStmt *s)
{
    const Tensor *t = s->buf;
    TD_ASSERT(t->id >= 0 && t->id < g->nids);
    CgBuf saved = g->bufs[t->id];
    CgBuf *cb = &g->bufs[t->id];
    memset(cb, 0, sizeof *cb);
    for (int a = 0; a < t->rank; a++) cb->dims[a] = cg_size(g, t->shape[a]);
    LLVMValueRef heap = NULL;
    int64_t cbytes = t->rank == 0 ? 0 : const_bytes(g, t);
    if (t->rank == 0) {
        /* a private scalar: wherever the lowering put it, SROA makes it a register */
        cb->ptr = cg_entry_alloca(g, cg_reg_type(g, t->dtype), 1, 8);
        cb->reg = true;
    } else if (s->scope != MEM_HEAP && cbytes >= 0 && cbytes <= CG_MAX_STACK_BYTES) {
        cb->ptr = cg_entry_alloca(g, g->i8, (unsigned)(cbytes ? cbytes : 1), CG_HEAP_ALIGN);
    } else {  /* MEM_HEAP, and the rest when large or of run-time size (no shared memory here) */
        LLVMBasicBlockRef fail = cg_fail_block(g);
        LLVMValueRef bytes = heap_bytes(g, t, fail);
        LLVMTypeRef fty, params[2] = {g->i64, g->i64};
        LLVMValueRef fa = cg_declare_fn(g, "aligned_alloc", g->ptr, params, 2, &fty);
        LLVMValueRef args[2] = {cg_i64(g, CG_HEAP_ALIGN), bytes};
        heap = LLVMBuildCall2(g->b, fty, fa, args, 2, t->name);
        cg_check_or_fail(g, LLVMBuildIsNotNull(g->b, heap, ""), fail);
        if (g->nheap == g->capheap) {
            g->capheap = g->capheap ? 2 * g->capheap : 8;
            g->heap = realloc(g->heap, (size_t)g->capheap * sizeof *g->heap);
            if (!g->heap) td_internal_error(__FILE__, __LINE__, "out of memory");
        }
        g->heap[g->nheap++] = heap;
        cb->ptr = heap;
    }
    cg_emit_stmt(g, s->body[0]);
    if (heap) {
        g->nheap--;
        LLVMTypeRef fty;
        LLVMValueRef fr = cg_declare_fn(g, "free", LLVMVoidTypeInContext(g->ctx), &g->ptr, 1, &fty);
        LLVMBuildCall2(g->b, fty, fr, &heap, 1, "");
    }
    g->bufs[t->id] = saved;
}

/* ---- loops ------------------------------------------------------------------------------------ */

/* !llvm.loop !{self, !{name, true}}: a hint to the vectoriser or the unroller. */
static void loop_hint(Cg *g, LLVMValueRef br, const char *name)
{
    LLVMMetadataRef tmp = LLVMTemporaryMDNode(g->ctx, NULL, 0);
    LLVMMetadataRef prop[2] = {LLVMMDStringInContext2(g->ctx, name, strlen(name)),
                               LLVMValueAsMetadata(LLVMConstInt(g->i1, 1, 0))};
    LLVMMetadataRef ops[2] = {tmp, LLVMMDNodeInContext2(g->ctx, prop, 2)};
    LLVMMetadataRef node = LLVMMDNodeInContext2(g->ctx, ops, 2);
    LLVMMetadataReplaceAllUsesWith(tmp, node);  /* makes node refer to itself */
    LLVMSetMetadata(br, LLVMGetMDKindIDInContext(g->ctx, "llvm.loop", 9),
                    LLVMMetadataAsValue(g->ctx, node));
}

void cg_emit_range(Cg *g, const Var *v, LLVMValueRef lo, LLVMValueRef hi, bool reverse, LoopKind kind,
                   const LStmt *body_stmt)
{
    LLVMValueRef first = reverse ? LLVMBuildNSWSub(g->b, hi, cg_i64(g, 1), "") : lo;
    LLVMBasicBlockRef pre = LLVMGetInsertBlock(g->b);
    LLVMBasicBlockRef body = cg_block(g, v->name);
    LLVMBasicBlockRef done = cg_block(g, "done");
    LLVMBuildCondBr(g->b, LLVMBuildICmp(g->b, LLVMIntSLT, lo, hi, ""), body, done);

    LLVMPositionBuilderAtEnd(g->b, body);
    LLVMValueRef i = LLVMBuildPhi(g->b, g->i64, v->name);
    LLVMAddIncoming(i, &first, &pre, 1);
    TD_ASSERT(v->id >= 0 && v->id < g->nids);
    LLVMValueRef outer = g->vals[v->id];
    g->vals[v->id] = i;
    cg_emit_stmt(g, body_stmt);
    g->vals[v->id] = outer;

    LLVMBasicBlockRef latch = LLVMGetInsertBlock(g->b);
    LLVMValueRef next, more;
    if (reverse) {
        next = LLVMBuildNSWSub(g->b, i, cg_i64(g, 1), "");
        more = LLVMBuildICmp(g->b, LLVMIntSGE, next, lo, "");
    } else {
        next = LLVMBuildNSWAdd(g->b, i, cg_i64(g, 1), "");
        LLVMSetNUW(next, 1);  /* lo >= 0 */
        more = LLVMBuildICmp(g->b, LLVMIntSLT, next, hi, "");
    }
    LLVMValueRef br = LLVMBuildCondBr(g->b, more, body, done);
    LLVMAddIncoming(i, &next, &latch, 1);
    switch (kind) {
    case LOOP_VECTOR: loop_hint(g, br, "llvm.loop.vectorize.enable"); break;
    case LOOP_UNROLL: loop_hint(g, br, "llvm.loop.unroll.enable"); break;
    case LOOP_SERIAL: case LOOP_PARALLEL: case LOOP_GPU_BLOCK: case LOOP_GPU_THREAD:
        break;  /* a parallel loop here is one chunk of it, or nested in another (llvm_parallel.c) */
    }
    LLVMPositionBuilderAtEnd(g->b, done);
}

static void emit_for(Cg *g, const LStmt *s)
{
    if (s->loop == LOOP_PARALLEL && !g->in_parallel) {
        cg_emit_parallel(g, s);
        return;
    }
    LLVMValueRef n = cg_size(g, s->extent);
    if (g->failed) return;
    cg_emit_range(g, s->var, cg_i64(g, 0), n, s->reverse, s->loop, s->body[0]);
}

/* ---- statements -------------------------------------------------------------------------------- */

/* Is s `acc = acc + e` (or `*`) on a private f32/f64 scalar, the lowering's accumulator? */
static bool is_accumulation(Cg *g, const LStmt *s)
{
    const Tensor *t = s->buf;
    const Expr *v = s->value;
    if (t->rank != 0 || !g->bufs[t->id].reg || (t->dtype != DT_F32 && t->dtype != DT_F64)) return false;
    if (v->op != OP_ADD && v->op != OP_MUL) return false;
    for (int i = 0; i < 2; i++)
        if (v->args[i]->op == OP_ACCESS && v->args[i]->tensor == t) return true;
    return false;
}

static void emit_store(Cg *g, const LStmt *s)
{
    LLVMValueRef idx[IR_MAX_RANK];
    TD_ASSERT(s->buf->rank <= IR_MAX_RANK);
    for (int a = 0; a < s->buf->rank; a++) idx[a] = cg_index(g, s->idx[a]);
    LLVMValueRef v = cg_expr(g, s->value);
    if (g->failed) return;
    if (s->value->type != s->buf->dtype) {
        cg_fail(g, "store of %s into %s of %s", dtype_name(s->value->type), s->buf->name,
                dtype_name(s->buf->dtype));
        return;
    }
    /* A float sum or product may be reassociated: the vectoriser then keeps several partial
     * results (the interpreter's reference sums in double, no f32 order is the spec). */
    if (is_accumulation(g, s) && LLVMIsAInstruction(v) && LLVMCanValueUseFastMathFlags(v))
        LLVMSetFastMathFlags(v, LLVMFastMathAllowReassoc);
    cg_store_elem(g, s->buf, cg_offset(g, s->buf, idx), v);
}

static void emit_if(Cg *g, const LStmt *s)
{
    LLVMValueRef c = cg_expr(g, s->cond);
    if (g->failed) return;
    LLVMBasicBlockRef then_bb = cg_block(g, "then");
    LLVMBasicBlockRef else_bb = s->else_body ? cg_block(g, "else") : NULL;
    LLVMBasicBlockRef merge = cg_block(g, "endif");
    LLVMBuildCondBr(g->b, c, then_bb, else_bb ? else_bb : merge);
    LLVMPositionBuilderAtEnd(g->b, then_bb);
    cg_emit_stmt(g, s->body[0]);
    LLVMBuildBr(g->b, merge);
    if (else_bb) {
        LLVMPositionBuilderAtEnd(g->b, else_bb);
        cg_emit_stmt(g, s->else_body);
        LLVMBuildBr(g->b, merge);
    }
    LLVMPositionBuilderAtEnd(g->b, merge);
}

void cg_emit_stmt(Cg *g, const LStmt *s)
{
    if (g->failed) return;
    switch (s->kind) {
    case LS_SEQ:
        for (int i = 0; i < s->nbody && !g->failed; i++) cg_emit_stmt(g, s->body[i]);
        return;
    case LS_FOR: emit_for(g, s); return;
    case LS_STORE: emit_store(g, s); return;
    case LS_IF: emit_if(g, s); return;
    case LS_ALLOC: emit_alloc(g, s); return;
    case LS_BARRIER: return;  /* one thread runs the whole block here */
    }
    cg_fail(g, "unknown loop statement kind %d", (int)s->kind);
}

/* ---- functions ---------------------------------------------------------------------------------- */

void cg_fn_attr(Cg *g, LLVMValueRef f, LLVMAttributeIndex at, const char *name)
{
    unsigned kind = LLVMGetEnumAttributeKindForName(name, strlen(name));
    TD_ASSERT(kind != 0);
    LLVMAddAttributeAtIndex(f, at, LLVMCreateEnumAttribute(g->ctx, kind, 0));
}

/* Clears the bits past the last element in the last byte of a packed output, so the output
 * bytes are deterministic (the interpreter zeroes them too). */
static void clear_packed_tail(Cg *g, const Tensor *t)
{
    CgBuf *cb = &g->bufs[t->id];
    LLVMValueRef n = cg_i64(g, 1);
    for (int a = 0; a < t->rank; a++) n = LLVMBuildMul(g->b, n, cb->dims[a], "");
    int ps = packed_shift(t->dtype);
    LLVMValueRef lanes = LLVMBuildAnd(g->b, n, cg_i64(g, (1 << ps) - 1), "");
    LLVMBasicBlockRef tail = cg_block(g, "tail"), cont = cg_block(g, "body");
    LLVMBuildCondBr(g->b, LLVMBuildICmp(g->b, LLVMIntNE, lanes, cg_i64(g, 0), ""), tail, cont);
    LLVMPositionBuilderAtEnd(g->b, tail);
    LLVMValueRef p = elem_ptr(g, cb->ptr, g->i8, LLVMBuildLShr(g->b, n, cg_i64(g, ps), ""));
    LLVMValueRef keep_bits = LLVMBuildShl(g->b, lanes, cg_i64(g, dtype_bits(t->dtype) == 4 ? 2 : 1), "");
    LLVMValueRef mask = LLVMBuildSub(g->b, LLVMBuildShl(g->b, cg_i64(g, 1), keep_bits, ""), cg_i64(g, 1), "");
    LLVMValueRef old = LLVMBuildLoad2(g->b, g->i8, p, "");
    LLVMBuildStore(g->b, LLVMBuildAnd(g->b, old, LLVMBuildTrunc(g->b, mask, g->i8, ""), ""), p);
    LLVMBuildBr(g->b, cont);
    LLVMPositionBuilderAtEnd(g->b, cont);
}

void cg_target_attrs(Cg *g, LLVMValueRef f)
{
    LLVMAddAttributeAtIndex(f, LLVMAttributeFunctionIndex,
                            LLVMCreateStringAttribute(g->ctx, "target-cpu", 10, g->cpu, (unsigned)strlen(g->cpu)));
    LLVMAddAttributeAtIndex(f, LLVMAttributeFunctionIndex,
                            LLVMCreateStringAttribute(g->ctx, "target-features", 15, g->features,
                                                      (unsigned)strlen(g->features)));
}

static void emit_function(Cg *g, const LoopFunc *f)
{
    const Kernel *k = f->kernel;
    g->k = k;
    StrBuf name = {0};
    cpu_symbol_name(k->name, &name);
    LLVMTypeRef params[2] = {g->ptr, g->ptr};
    LLVMTypeRef fty = LLVMFunctionType(g->i32, params, 2, 0);
    g->fn = LLVMAddFunction(g->mod, sb_cstr(&name), fty);
    sb_free(&name);
    cg_fn_attr(g, g->fn, LLVMAttributeFunctionIndex, "nounwind");
    for (unsigned p = 1; p <= 2; p++) {
        cg_fn_attr(g, g->fn, p, "noalias");
        cg_fn_attr(g, g->fn, p, "nocapture");
        cg_fn_attr(g, g->fn, p, "readonly");
    }
    cg_target_attrs(g, g->fn);
    LLVMValueRef bufs = LLVMGetParam(g->fn, 0), sizes = LLVMGetParam(g->fn, 1);
    LLVMSetValueName2(bufs, "buffers", 7);
    LLVMSetValueName2(sizes, "sizes", 5);

    g->entry = cg_block(g, "entry");
    LLVMBasicBlockRef start = cg_block(g, "start");
    LLVMPositionBuilderAtEnd(g->b, start);
    for (int i = 0; i < k->nsizes; i++) {
        TD_ASSERT(k->sizes[i]->id >= 0 && k->sizes[i]->id < g->nids);
        LLVMValueRef p = elem_ptr(g, sizes, g->i64, cg_i64(g, i));
        LLVMValueRef v = LLVMBuildLoad2(g->b, g->i64, p, k->sizes[i]->name);
        LLVMSetAlignment(v, 8);
        g->vals[k->sizes[i]->id] = v;
    }
    for (int i = 0; i < k->nins + k->nouts; i++) {
        const Tensor *t = i < k->nins ? k->ins[i] : k->outs[i - k->nins];
        TD_ASSERT(t->id >= 0 && t->id < g->nids);
        CgBuf *cb = &g->bufs[t->id];
        LLVMValueRef p = elem_ptr(g, bufs, g->ptr, cg_i64(g, i));
        cb->ptr = LLVMBuildLoad2(g->b, g->ptr, p, t->name);
        LLVMSetAlignment(cb->ptr, 8);
        for (int a = 0; a < t->rank; a++) cb->dims[a] = cg_size(g, t->shape[a]);
    }
    for (int i = 0; i < k->nouts; i++)
        if (is_packed(k->outs[i]->dtype)) clear_packed_tail(g, k->outs[i]);
    cg_emit_stmt(g, f->body);
    LLVMBuildRet(g->b, LLVMConstInt(g->i32, 0, 0));
    LLVMPositionBuilderAtEnd(g->b, g->entry);
    LLVMBuildBr(g->b, start);

    /* forget this kernel's values: the next function must not see them */
    memset(g->vals, 0, (size_t)g->nids * sizeof *g->vals);
    memset(g->bufs, 0, (size_t)g->nids * sizeof *g->bufs);
    g->k = NULL;
}

LLVMModuleRef cg_emit_module(LLVMContextRef ctx, const LoopModule *lm, LLVMTargetMachineRef tm,
                             bool vecmath, StrBuf *err)
{
    Cg g = {.ctx = ctx, .err = err, .vecmath = vecmath};
    g.mod = LLVMModuleCreateWithNameInContext("tdsl", ctx);
    g.b = LLVMCreateBuilderInContext(ctx);
    g.i1 = LLVMInt1TypeInContext(ctx);
    g.i8 = LLVMInt8TypeInContext(ctx);
    g.i16 = LLVMInt16TypeInContext(ctx);
    g.i32 = LLVMInt32TypeInContext(ctx);
    g.i64 = LLVMInt64TypeInContext(ctx);
    g.f16 = LLVMHalfTypeInContext(ctx);
    g.f32 = LLVMFloatTypeInContext(ctx);
    g.f64 = LLVMDoubleTypeInContext(ctx);
    g.ptr = LLVMPointerTypeInContext(ctx, 0);

    char *triple = LLVMGetTargetMachineTriple(tm);
    LLVMSetTarget(g.mod, triple);
    LLVMDisposeMessage(triple);
    LLVMTargetDataRef td = LLVMCreateTargetDataLayout(tm);
    char *layout = LLVMCopyStringRepOfTargetData(td);
    LLVMSetDataLayout(g.mod, layout);
    LLVMDisposeMessage(layout);
    LLVMDisposeTargetData(td);
    char *cpu = LLVMGetTargetMachineCPU(tm), *features = LLVMGetTargetMachineFeatureString(tm);
    /* What the feature string says (the host's lists everything; a named CPU alone counts as
     * baseline x86-64, which costs only speed) */
    g.avx512 = has_feature(features, "avx512f") && !strstr(features, "-evex512");
    g.avx2 = has_feature(features, "avx2");
    g.sse2 = !strstr(features, "-sse2");

    g.nids = lm->ir->next_id;
    g.vals = calloc((size_t)g.nids + 1, sizeof *g.vals);
    g.bufs = calloc((size_t)g.nids + 1, sizeof *g.bufs);
    if (!g.vals || !g.bufs) td_internal_error(__FILE__, __LINE__, "out of memory");
    g.cpu = cpu;
    g.features = features;
    for (int i = 0; i < lm->nfuncs && !g.failed; i++) emit_function(&g, lm->funcs[i]);
    emit_compiler_used(&g);
    free(g.keep);
    LLVMDisposeMessage(cpu);
    LLVMDisposeMessage(features);
    free(g.vals);
    free(g.bufs);
    free(g.heap);
    LLVMDisposeBuilder(g.b);

#ifndef NDEBUG
    char *msg = NULL;
    if (!g.failed && LLVMVerifyModule(g.mod, LLVMReturnStatusAction, &msg)) {
        sb_printf(err, "cpu: internal error: the generated LLVM IR does not verify:\n%s", msg ? msg : "");
        g.failed = true;
    }
    LLVMDisposeMessage(msg);
#endif
    if (g.failed) {
        LLVMDisposeModule(g.mod);
        return NULL;
    }
    return g.mod;
}
