/* Unit tests of parallel loops: the pass that marks them (passes/parallelize.c), the CPU
 * back end that outlines them (codegen/cpu/llvm_parallel.c) and the runtime's thread pool
 * (runtime/parallel.c, OpenMP).
 *
 *   - tdsl_parallel_for runs every iteration exactly once, in at most one chunk per thread,
 *     for any n and thread count, and directly inside a parallel region that cannot nest;
 *   - the pass marks the outer loops of definitions (in scan steps too), never a scan's
 *     step loop, a reduction loop, a store to a packed type (even when a schedule names
 *     it) or a loop whose iterations could touch one element, and follows `parallel`
 *     directives when a schedule has them; without a schedule it also marks the safe loops
 *     perfectly nested in an outer loop that may be short (up to 3), never a LOOP_VECTOR
 *     loop, one whose extent names an outer loop or the innermost loop of a nest;
 *   - compiled kernels give the same bytes serially (every loop serial: pass_lower alone)
 *     and in parallel at 1, 2, 3 and 4 threads: element-wise f32 and f16, row reductions,
 *     a softmax, a kernel scalar read inside a parallel loop, collapsed `parallel b, h`
 *     loops whose chunks end inside rows, a scan with parallel steps, a packed output, and
 *     with a batch of 1 causal attention (b, h, n collapsed) and an rmsnorm (b, t);
 *   - a heap temporary private to each iteration of a parallel loop, and its allocation
 *     failing inside the loop: the kernel returns -1 and frees everything (ASan checks). */
#include <criterion/criterion.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "codegen/cpu/cpu.h"
#include "frontend/frontend.h"
#include "ir/ir.h"
#include "ir_build.h"
#include "passes/passes.h"
#include "runtime/rt.h"

/* ---- the runtime's thread pool ----------------------------------------------------------------- */

typedef struct Hits {
    int     *count;    /* per iteration: how many times it ran */
    int      chunks;   /* body calls */
    int      threads;  /* distinct OpenMP thread numbers seen (bit set) */
} Hits;

static void record(void *closure, int64_t begin, int64_t end)
{
    Hits *h = closure;
    for (int64_t i = begin; i < end; i++) __atomic_add_fetch(&h->count[i], 1, __ATOMIC_RELAXED);
    __atomic_add_fetch(&h->chunks, 1, __ATOMIC_RELAXED);
    __atomic_fetch_or(&h->threads, 1 << (omp_get_thread_num() & 31), __ATOMIC_RELAXED);
}

static int popcount(int x) { return __builtin_popcount((unsigned)x); }

Test(runtime_parallel, every_iteration_once)
{
    static const int64_t ns[] = {0, 1, 2, 3, 7, 100, 1001};
    static const int threads[] = {1, 2, 3, 5};
    for (int t = 0; t < TD_COUNTOF(threads); t++) {
        omp_set_num_threads(threads[t]);
        for (int k = 0; k < TD_COUNTOF(ns); k++) {
            int64_t n = ns[k];
            Hits h = {calloc((size_t)n + 1, sizeof(int)), 0, 0};
            tdsl_parallel_for(n, record, &h);
            for (int64_t i = 0; i < n; i++) cr_assert_eq(h.count[i], 1, "n %lld, %d threads: iteration %lld ran %d times",
                                                         (long long)n, threads[t], (long long)i, h.count[i]);
            int64_t want = n < threads[t] ? n : threads[t];
            cr_assert_eq(h.chunks, want, "n %lld, %d threads: %d chunks", (long long)n, threads[t], h.chunks);
            cr_assert_leq(popcount(h.threads), threads[t]);
            if (want > 1) cr_assert_gt(popcount(h.threads), 1, "n %lld: one thread ran every chunk", (long long)n);
            free(h.count);
        }
    }
}

/* A kernel called from the user's own parallel region runs on the calling thread: OpenMP
 * nests one active level by default. */
Test(runtime_parallel, nested_region_runs_directly)
{
    omp_set_num_threads(2);
    int bad = 0;
#pragma omp parallel num_threads(2) reduction(+ : bad)
    {
        Hits h = {calloc(64, sizeof(int)), 0, 0};
        tdsl_parallel_for(64, record, &h);
        for (int i = 0; i < 64; i++) bad += h.count[i] != 1;
        bad += h.chunks != 1;
        free(h.count);
    }
    cr_assert_eq(bad, 0);
}

/* ---- the pass ---------------------------------------------------------------------------------- */

static Module *compile_src(const char *src)
{
    DiagSink d;
    diag_init(&d, NULL);
    Module *m = fe_compile_source("par.tdsl", src, strlen(src), &(FeOptions){0}, &d);
    cr_assert(m && d.nerrors == 0, "%s", sb_cstr(&d.log));
    diag_free(&d);
    assert_verifies(m);
    return m;
}

static const LoopFunc *func_of(const LoopModule *lm, const char *name)
{
    for (int i = 0; i < lm->nfuncs; i++)
        if (strcmp(lm->funcs[i]->kernel->name, name) == 0) return lm->funcs[i];
    cr_assert_fail("no function %s", name);
    return NULL;
}

/* The names of the parallel loops of s, in order, space-separated ("i k k c0"). */
static void parallel_vars(const LStmt *s, StrBuf *out)
{
    if (!s) return;
    if (s->kind == LS_FOR && s->loop == LOOP_PARALLEL) sb_printf(out, "%s%s", out->len ? " " : "", s->var->name);
    for (int i = 0; i < s->nbody; i++) parallel_vars(s->body[i], out);
    if (s->kind == LS_IF) parallel_vars(s->else_body, out);
}

static void expect_parallel(const LoopModule *lm, const char *kernel, const char *want)
{
    StrBuf got = {0};
    parallel_vars(func_of(lm, kernel)->body, &got);
    cr_expect_str_eq(sb_cstr(&got), want, "%s: parallel loops '%s', expected '%s'", kernel, sb_cstr(&got), want);
    sb_free(&got);
}

static const char *MARKS =
    "kernel big(x: f32[512, 64]) -> y: f32[512, 64] { y[i, j] = x[i, j] + 1 }\n"
    "kernel tiny(x: f32[16, 16]) -> y: f32[16, 16] { y[i, j] = x[i, j] + 1 }\n"
    "kernel sym(x: f32[N, D]) -> (y: f32[N, D], s: f32[N]) {\n"
    "    y[n, d] = x[n, d] * 2\n"
    "    s[n] = sum[d](x[n, d])\n"
    "}\n"
    "kernel total(x: f32[N]) -> s: f32 { s = sum[i](x[i]) }\n"
    "kernel packs(x: i8[N, D]) -> (a: i4[N, D], b: u4[N], c: i2[N, D], d: i8[N]) {\n"
    "    a[n, e] = i4(x[n, e])\n"
    "    b[n] = u4(x[n, 0])\n"
    "    c[n, e] = i2(x[n, e])\n"
    "    d[n] = x[n, 0]\n"
    "}\n"
    "kernel packs_named(x: i8[N, D]) -> a: i4[N, D] { a[n, e] = i4(x[n, e]) }\n"
    "schedule packs_named { parallel n, e }\n"
    "kernel steps(x: f32[T, K]) -> y: f32[T, K] {\n"
    "    scan t < T with acc: f32[K] = 0 {\n"
    "        acc[k] = acc[k] + x[t, k]\n"
    "        y[t, k] = acc[k]\n"
    "    }\n"
    "}\n"
    "kernel heads(x: f32[B, H, D]) -> (y: f32[B, H, D], r: f32[B]) {\n"
    "    y[b, h, d] = x[b, h, d] * 2\n"
    "    r[i] = sum[j, e](x[i, j, e])\n"
    "}\n"
    "schedule heads { parallel b, h }\n"
    "kernel inner(x: f32[N, D]) -> y: f32[N, D] { y[n, d] = x[n, d] * 2 }\n"
    "schedule inner { parallel d }\n"
    "kernel red(x: f32[N, K]) -> y: f32[N] { y[n] = sum[k](x[n, k]) }\n"
    "schedule red { parallel k }\n"
    "kernel one(x: f32[1, 8, 4096]) -> y: f32[1, 8, 4096] { y[a, b, c] = x[a, b, c] + 1 }\n"
    "kernel deep(x: f32[2, 2, 2, 4096]) -> y: f32[2, 2, 2, 4096] { y[a, b, c, e] = x[a, b, c, e] + 1 }\n"
    "kernel short(x: f32[4, 4096]) -> y: f32[4, 4096] { y[a, b] = x[a, b] + 1 }\n"
    "kernel batch(x: f32[B, T, D]) -> y: f32[B, T, D] { y[b, t, d] = x[b, t, d] / sum[e](x[b, t, e]) }\n";

Test(parallelize, marks_what_is_safe)
{
    Module *m = compile_src(MARKS);
    LoopModule *lm = pass_lower(m);
    StrBuf none = {0};
    for (int f = 0; f < lm->nfuncs; f++) parallel_vars(lm->funcs[f]->body, &none);
    cr_assert_str_eq(sb_cstr(&none), "", "the lowering marks nothing");
    sb_free(&none);
    int marked = pass_parallelize(lm);
    expect_parallel(lm, "big", "i");           /* 32768 stores */
    expect_parallel(lm, "tiny", "");           /* 256: not worth it */
    expect_parallel(lm, "sym", "n n");         /* symbolic: decided at run time; d is innermost */
    expect_parallel(lm, "total", "");          /* a reduction to a scalar has no index loop */
    expect_parallel(lm, "packs", "n");         /* only the i8 output */
    expect_parallel(lm, "packs_named", "");    /* packed, whatever the schedule says */
    expect_parallel(lm, "steps", "c0 k k c0"); /* never t; the step's loops are */
    expect_parallel(lm, "heads", "b h");       /* as the schedule says, r stays serial */
    expect_parallel(lm, "inner", "d");         /* an inner loop, under a serial n */
    expect_parallel(lm, "red", "");            /* a reduction variable cannot be */
    expect_parallel(lm, "one", "a b");         /* a batch of 1: 1 row is too few; c is innermost */
    expect_parallel(lm, "deep", "a b c");      /* at most 3 loops collapsed */
    expect_parallel(lm, "short", "a");         /* b is innermost: the vectoriser's */
    expect_parallel(lm, "batch", "b t b t");   /* the sum, then y, down to the row */
    cr_assert_eq(marked, 1 + 2 + 1 + 4 + 2 + 1 + 2 + 3 + 1 + 4);
    StrBuf err = {0};
    cr_assert(loop_verify(lm, &err), "%s", sb_cstr(&err));
    sb_free(&err);
    ir_module_free(m);
}

/* Loops the lowering does not make, built by hand: the checks are the pass's own. */
Test(parallelize, refuses_colliding_iterations)
{
    Module *m = ir_module_new();
    Kernel *k = ir_kernel_new(m, "hand");
    ir_kernel_add(m, k);
    Var *N = add_size(m, k, "N");
    Tensor *x = add_tensor(m, k, TK_INPUT, "x", DT_F32, 1, (Expr *[]){V(m, N)});
    Tensor *y = add_tensor(m, k, TK_OUTPUT, "y", DT_F32, 2, (Expr *[]){V(m, N), V(m, N)});
    Tensor *z = add_tensor(m, k, TK_OUTPUT, "z", DT_F32, 1, (Expr *[]){V(m, N)});
    Var *i[6], *j[6];
    for (int a = 0; a < 6; a++) {
        i[a] = ir_var_new(m, VAR_INDEX, "i", V(m, N));
        j[a] = ir_var_new(m, VAR_INDEX, "j", V(m, N));
    }
    LStmt *loops[6];
    /* 0: y[i, j] and y[j, i] in one iteration: iterations i and j write the same elements */
    LStmt *two[2] = {loop_store(m, y, (Expr *[]){V(m, i[0]), V(m, j[0])}, F(m, 1)),
                     loop_store(m, y, (Expr *[]){V(m, j[0]), V(m, i[0])}, F(m, 2))};
    loops[0] = loop_for(m, i[0], V(m, N), LOOP_SERIAL, false, loop_for(m, j[0], V(m, N), LOOP_SERIAL, false, loop_seq(m, two, 2)));
    /* 1: z[i] = z[0] + x[i]: reads what iteration 0 writes */
    loops[1] = loop_for(m, i[1], V(m, N), LOOP_SERIAL, false,
                        loop_store(m, z, (Expr *[]){V(m, i[1])}, bin(m, OP_ADD, A1(m, z, I(m, 0)), A1(m, x, V(m, i[1])))));
    /* 2: z[i / 2] = x[i]: the index is not the variable itself */
    loops[2] = loop_for(m, i[2], V(m, N), LOOP_SERIAL, false,
                        loop_store(m, z, (Expr *[]){bin(m, OP_DIV, V(m, i[2]), I(m, 2))}, A1(m, x, V(m, i[2]))));
    /* 3: y[i, j] = y[i, j] + 1 and z[i] = x[i] * 2: each iteration its own row; parallel */
    LStmt *own[2] = {loop_for(m, j[3], V(m, N), LOOP_SERIAL, false,
                              loop_store(m, y, (Expr *[]){V(m, i[3]), V(m, j[3])},
                                         bin(m, OP_ADD, A2(m, y, V(m, i[3]), V(m, j[3])), F(m, 1)))),
                     loop_store(m, z, (Expr *[]){V(m, i[3])}, bin(m, OP_MUL, A1(m, x, V(m, i[3])), F(m, 2)))};
    loops[3] = loop_for(m, i[3], V(m, N), LOOP_SERIAL, false, loop_seq(m, own, 2));
    /* 4: a private temporary written at any index: fine, it is allocated per iteration */
    Tensor *t = add_tensor(m, k, TK_TEMP, "t", DT_F32, 1, (Expr *[]){V(m, N)});
    LStmt *priv[2] = {loop_for(m, j[4], V(m, N), LOOP_SERIAL, false,
                               loop_store(m, t, (Expr *[]){V(m, j[4])}, A1(m, x, V(m, j[4])))),
                      loop_store(m, z, (Expr *[]){V(m, i[4])}, A1(m, t, V(m, i[4])))};
    loops[4] = loop_for(m, i[4], V(m, N), LOOP_SERIAL, false, loop_alloc(m, t, MEM_HEAP, loop_seq(m, priv, 2)));
    /* 5: y[i, i] and y[i, j] agree on axis 0 */
    LStmt *diag[2] = {loop_store(m, y, (Expr *[]){V(m, i[5]), V(m, i[5])}, F(m, 3)),
                      loop_for(m, j[5], V(m, N), LOOP_SERIAL, false, loop_store(m, y, (Expr *[]){V(m, i[5]), V(m, j[5])}, F(m, 4)))};
    loops[5] = loop_for(m, i[5], V(m, N), LOOP_SERIAL, false, loop_seq(m, diag, 2));
    LoopModule lm = {m, (LoopFunc *[]){&(LoopFunc){k, loop_seq(m, loops, 6)}}, 1};
    cr_assert_eq(pass_parallelize(&lm), 3);
    static const bool want[6] = {false, false, false, true, true, true};
    for (int a = 0; a < 6; a++)
        cr_expect_eq(loops[a]->loop == LOOP_PARALLEL, want[a], "loop %d", a);
    cr_expect_eq(loops[0]->body[0]->loop, LOOP_SERIAL, "nor its inner loop: j's store y[j, i] collides too");
    ir_module_free(m);
}

/* The loops nested in a marked outer loop: only serial ones the back end can collapse, with
 * a loop inside them. */
Test(parallelize, nested_loops_it_leaves)
{
    Module *m = ir_module_new();
    Kernel *k = ir_kernel_new(m, "hand");
    ir_kernel_add(m, k);
    Var *N = add_size(m, k, "N");
    Tensor *y = add_tensor(m, k, TK_OUTPUT, "y", DT_F32, 3, (Expr *[]){V(m, N), V(m, N), V(m, N)});
    Var *i[4], *j[4], *e[4];
    for (int a = 0; a < 4; a++) {
        i[a] = ir_var_new(m, VAR_INDEX, "i", V(m, N));
        j[a] = ir_var_new(m, VAR_INDEX, "j", V(m, N));
        e[a] = ir_var_new(m, VAR_INDEX, "e", V(m, N));
    }
    LStmt *inner[4];
    for (int a = 0; a < 4; a++)
        inner[a] = loop_for(m, e[a], V(m, N), LOOP_SERIAL, false,
                            loop_store(m, y, (Expr *[]){V(m, i[a]), V(m, j[a]), V(m, e[a])}, F(m, a)));
    LStmt *loops[4], *js[4];
    /* 0: a loop pass_interchange made vector: it stays vector */
    js[0] = loop_for(m, j[0], V(m, N), LOOP_VECTOR, false, inner[0]);
    /* 1: a triangle, j < i + 1: the back end cannot collapse it, so it stays serial */
    js[1] = loop_for(m, j[1], bin(m, OP_ADD, V(m, i[1]), I(m, 1)), LOOP_SERIAL, false, inner[1]);
    /* 2: j < N inside a sequence of one: collapsed with i; e is innermost and stays */
    js[2] = loop_for(m, j[2], V(m, N), LOOP_SERIAL, false, loop_seq(m, &inner[2], 1));
    /* 3: j innermost (y[i, j, 0]): the vectoriser's loop, never cut between threads */
    js[3] = loop_for(m, j[3], V(m, N), LOOP_SERIAL, false,
                     loop_store(m, y, (Expr *[]){V(m, i[3]), V(m, j[3]), I(m, 0)}, F(m, 9)));
    for (int a = 0; a < 4; a++)
        loops[a] = loop_for(m, i[a], V(m, N), LOOP_SERIAL, false, a == 2 ? loop_seq(m, &js[a], 1) : js[a]);
    LoopModule lm = {m, (LoopFunc *[]){&(LoopFunc){k, loop_seq(m, loops, 4)}}, 1};
    cr_assert_eq(pass_parallelize(&lm), 5);
    for (int a = 0; a < 4; a++) cr_expect_eq(loops[a]->loop, LOOP_PARALLEL, "loop %d", a);
    static const LoopKind want_j[4] = {LOOP_VECTOR, LOOP_SERIAL, LOOP_PARALLEL, LOOP_SERIAL};
    for (int a = 0; a < 4; a++) {
        cr_expect_eq(js[a]->loop, want_j[a], "loop %d: j", a);
        if (a < 3) cr_expect_eq(inner[a]->loop, LOOP_SERIAL, "loop %d: e", a);
    }
    ir_module_free(m);
}

/* ---- compiled kernels: the same bytes at every thread count ------------------------------------------- */

static TensorData td_new(DType dt, int rank, const int64_t *shape)
{
    TensorData td = {.dtype = dt, .rank = rank};
    size_t n = 1;
    for (int a = 0; a < rank; a++) {
        td.shape[a] = shape[a];
        n *= (size_t)shape[a];
    }
    cr_assert(dtype_storage_bytes(dt, n, &td.nbytes));
    td.data = malloc(td.nbytes + 1);
    memset(td.data, 0xA5, td.nbytes + 1);  /* garbage: an element nobody writes shows */
    return td;
}

static TensorData td_random(DType dt, int rank, const int64_t *shape, uint32_t seed)
{
    TensorData td = td_new(dt, rank, shape);
    size_t n = 1;
    for (int a = 0; a < rank; a++) n *= (size_t)shape[a];
    for (size_t e = 0; e < n; e++) {
        seed = seed * 1664525u + 1013904223u;
        double v = (double)(seed >> 8) / (double)(1u << 23) - 1.0;  /* [-1, 1) */
        if (dtype_is_float(dt)) dtype_store_f(dt, td.data, e, dtype_round_f(dt, v * 4));
        else dtype_store_i(dt, td.data, e, dtype_wrap_i(dt, (int64_t)(v * 100)));
    }
    return td;
}

static CpuJit *jit_of(LoopModule *lm)
{
    StrBuf err = {0};
    cr_assert(loop_verify(lm, &err), "%s", sb_cstr(&err));
    CpuJit *j = cpu_jit_compile(lm, NULL, &err);
    cr_assert(j, "%s", sb_cstr(&err));
    sb_free(&err);
    return j;
}

/* Runs kernel k of j on ins; outs are allocated here. */
static int32_t run(CpuJit *j, const Kernel *k, const int64_t *sizes, const TensorData *ins, TensorData *outs)
{
    void *bufs[16];
    cr_assert(k->nins + k->nouts <= 16);
    for (int o = 0; o < k->nouts; o++) {
        int64_t shape[IR_MAX_RANK];
        for (int a = 0; a < k->outs[o]->rank; a++) cr_assert(ir_eval_size(k, k->outs[o]->shape[a], sizes, &shape[a]));
        outs[o] = td_new(k->outs[o]->dtype, k->outs[o]->rank, shape);
        bufs[k->nins + o] = outs[o].data;
    }
    for (int i = 0; i < k->nins; i++) bufs[i] = ins[i].data;
    return cpu_jit_lookup(j, k->name)(bufs, sizes);
}

static const char *SAME =
    "import \"nn\"\n"
    "kernel ew(x: f32[N, D]) -> y: f32[N, D] { y[n, d] = x[n, d] * 3 + tanh(x[n, d]) }\n"
    "kernel half(x: f16[N, D]) -> y: f16[N, D] { y[n, d] = x[n, d] * x[n, d] + f16(0.5) }\n"
    "kernel rows(x: f32[N, D]) -> (s: f32[N], a: i32[N]) {\n"
    "    s[n] = sum[d](x[n, d] * x[n, d])\n"
    "    a[n] = argmax[d](x[n, d])\n"
    "}\n"
    "kernel smax(x: f32[N, D]) -> y: f32[N, D] { y = softmax(x) }\n"
    "kernel vnorm(x: f32[N, D]) -> y: f32[N, D] {\n"
    "    s = sum[n, d](x[n, d] * x[n, d])\n"
    "    y[n, d] = x[n, d] * rsqrt(s + 1)\n"
    "}\n"
    "kernel heads(x: f32[N, H, D]) -> (y: f32[N, H, D], m: f32[N, H]) {\n"
    "    y[b, h, d] = x[b, h, d] * 2 - 1\n"
    "    m[b, h] = max[d](x[b, h, d])\n"
    "}\n"
    "schedule heads { parallel b, h }\n"
    "kernel steps(x: f32[N, D]) -> y: f32[N, D] {\n"
    "    scan t < N with acc: f32[D] = 0 {\n"
    "        acc[k] = acc[k] * f32(0.5) + x[t, k]\n"
    "        y[t, k] = acc[k]\n"
    "    }\n"
    "}\n"
    "kernel pack(x: f32[N, D]) -> q: i4[N, D] { q[n, d] = i4(x[n, d] * 4) }\n"
    "kernel causal(q: f32[B, H, N, D], k: f32[B, H, N, D], v: f32[B, H, N, D]) -> o: f32[B, H, N, D] {\n"
    "    s[b, h, n, m] = where(m > n, -inf, sum[d](q[b, h, n, d] * k[b, h, m, d]) * rsqrt(f32(D)))\n"
    "    p = softmax(s)\n"
    "    o[b, h, n, d] = sum[m](p[b, h, n, m] * v[b, h, m, d])\n"
    "}\n"
    "kernel bnorm(x: f32[B, T, D], g: f32[D]) -> y: f32[B, T, D] { y = rmsnorm(x, g, f32(0.00001)) }\n"
    "kernel flat(x: f32[N]) -> y: f32[N] { y[i] = tanh(x[i]) * 3 + exp(x[i]) }\n";

/* Every kernel of SAME, compiled serially and in parallel, on shapes whose chunks end at
 * odd places (N = 1001 rows; heads: 3 x 7 rows of 1001, so 2, 3 and 4 threads split rows;
 * causal and bnorm with a batch of 1: causal's 3 x 67 queries split inside a head; flat:
 * one vectorised loop of 100003, whose chunks must split into the serial loop's vector and
 * scalar iterations, runtime/parallel.c).
 * The serial build is pass_lower's alone; the parallel one also has its loops merged by
 * pass_fuse_loops (one loop per kernel's rows, one per scan step), so it checks both. */
Test(parallel, same_bytes_at_every_thread_count, .timeout = 300)
{
    Module *m = compile_src(SAME);
    CpuJit *serial = jit_of(pass_lower(m));
    LoopModule *plm = ir_lower_module(m, NULL);
    cr_assert_eq(pass_parallelize(plm), 0, "a second run changes nothing");
    StrBuf marks = {0};
    for (int f = 0; f < plm->nfuncs; f++) parallel_vars(plm->funcs[f]->body, &marks);
    cr_assert_str_eq(sb_cstr(&marks), "n n n b0 n b h c0 k b h n b0 b1 i", "%s", sb_cstr(&marks));
    sb_free(&marks);
    CpuJit *par = jit_of(plm);
    StrBuf text = {0}, err = {0};
    cr_assert(cpu_emit(plm, NULL, CPU_EMIT_LLVM, &text, &err), "%s", sb_cstr(&err));
    cr_assert(strstr(sb_cstr(&text), "call void @tdsl_parallel_for("), "no call of the thread pool");
    sb_free(&text);
    sb_free(&err);
    for (int i = 0; i < m->nkernels; i++) {
        const Kernel *k = m->kernels[i];
        int64_t sizes[4] = {1001, 1001, 1001, 1001};
        if (strcmp(k->name, "heads") == 0) sizes[0] = 3, sizes[1] = 7;
        if (strcmp(k->name, "steps") == 0) sizes[0] = 5, sizes[1] = 20000;
        if (strcmp(k->name, "causal") == 0) sizes[0] = 1, sizes[1] = 3, sizes[2] = 67, sizes[3] = 16;  /* B H N D */
        if (strcmp(k->name, "bnorm") == 0) sizes[0] = 1, sizes[1] = 7, sizes[2] = 3001;                /* B T D */
        if (strcmp(k->name, "flat") == 0) sizes[0] = 100003;
        TensorData ins[4], ref[4], got[4];
        for (int p = 0; p < k->nins; p++) {
            int64_t shape[IR_MAX_RANK];
            for (int a = 0; a < k->ins[p]->rank; a++) cr_assert(ir_eval_size(k, k->ins[p]->shape[a], sizes, &shape[a]));
            ins[p] = td_random(k->ins[p]->dtype, k->ins[p]->rank, shape, 7u + (uint32_t)i);
        }
        omp_set_num_threads(1);
        cr_assert_eq(run(serial, k, sizes, ins, ref), 0);
        for (int threads = 1; threads <= 4; threads++) {
            omp_set_num_threads(threads);
            cr_assert_eq(run(par, k, sizes, ins, got), 0);
            for (int o = 0; o < k->nouts; o++) {
                cr_assert_eq(memcmp(ref[o].data, got[o].data, ref[o].nbytes + 1), 0, "%s: %s differs at %d threads",
                             k->name, k->outs[o]->name, threads);
                free(got[o].data);
            }
        }
        for (int o = 0; o < k->nouts; o++) free(ref[o].data);
        for (int p = 0; p < k->nins; p++) free(ins[p].data);
    }
    cpu_jit_free(serial);
    cpu_jit_free(par);
    ir_module_free(m);
}

/* A heap temporary allocated inside a parallel loop is private to the iteration; when it
 * cannot be allocated (N^4 elements overflow), the kernel returns -1 after the join. */
Test(parallel, private_heap_temporary_and_its_failure)
{
    Module *m = ir_module_new();
    Kernel *k = ir_kernel_new(m, "priv");
    ir_kernel_add(m, k);
    Var *N = add_size(m, k, "N");
    Tensor *x = add_tensor(m, k, TK_INPUT, "x", DT_I32, 1, (Expr *[]){V(m, N)});
    Tensor *y = add_tensor(m, k, TK_OUTPUT, "y", DT_I32, 1, (Expr *[]){V(m, N)});
    /* t: i32[d, d, d, 4] with d = N / 16384 * N + 1: 4 elements below N = 16384, more
     * than 2^64 at N = 65536 (the size overflows: the allocation fails before malloc) */
    Expr *d = bin(m, OP_ADD, bin(m, OP_MUL, bin(m, OP_DIV, V(m, N), I(m, 16384)), V(m, N)), I(m, 1));
    Tensor *t = add_tensor(m, k, TK_TEMP, "t", DT_I32, 4, (Expr *[]){d, d, d, I(m, 4)});
    Var *i = ir_var_new(m, VAR_INDEX, "i", V(m, N)), *j = ir_var_new(m, VAR_INDEX, "j", I(m, 4));
    LStmt *body[2] = {
        loop_for(m, j, I(m, 4), LOOP_SERIAL, false,
                 loop_store(m, t, (Expr *[]){I(m, 0), I(m, 0), I(m, 0), V(m, j)},
                            bin(m, OP_MUL, A1(m, x, V(m, i)), ir_cast(m, DT_I32, V(m, j))))),
        loop_store(m, y, (Expr *[]){V(m, i)},
                   bin(m, OP_ADD, ir_access(m, t, (Expr *[]){I(m, 0), I(m, 0), I(m, 0), I(m, 3)}, NULL),
                       ir_access(m, t, (Expr *[]){I(m, 0), I(m, 0), I(m, 0), I(m, 1)}, NULL)))};
    LStmt *loop = loop_for(m, i, V(m, N), LOOP_PARALLEL, false, loop_alloc(m, t, MEM_HEAP, loop_seq(m, body, 2)));
    LoopModule lm = {m, (LoopFunc *[]){&(LoopFunc){k, loop_seq(m, &loop, 1)}}, 1};
    CpuJit *jit = jit_of(&lm);
    TdslRawKernel fn = cpu_jit_lookup(jit, "priv");
    for (int threads = 1; threads <= 3; threads++) {
        omp_set_num_threads(threads);
        int64_t n = 6000;  /* 6000 * 5 stores: on the threads */
        int32_t *xs = malloc((size_t)n * 4), *ys = malloc((size_t)n * 4);
        for (int64_t e = 0; e < n; e++) xs[e] = (int32_t)(e * 7 - 100);
        cr_assert_eq(fn((void *[]){xs, ys}, &n), 0);
        for (int64_t e = 0; e < n; e++) cr_assert_eq(ys[e], xs[e] * 4, "y[%lld] at %d threads", (long long)e, threads);
        free(xs);
        free(ys);
        n = 65536;  /* t would have 4 * 262145^3 elements */
        xs = calloc((size_t)n, 4);
        ys = calloc((size_t)n, 4);
        cr_assert_eq(fn((void *[]){xs, ys}, &n), -1, "at %d threads", threads);
        free(xs);
        free(ys);
    }
    cpu_jit_free(jit);
    ir_module_free(m);
}
