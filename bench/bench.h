/* bench.h: the shared types of tdsl_bench, the benchmark harness.
 *
 * tdsl_bench measures tdsl kernels against anchors (oneDNN, OpenBLAS, PyTorch eager and
 * torch.compile, tdsl itself with fusion off) the way shared/design/PERFORMANCE.md asks:
 * the kernel and its anchors run in the same run, alternating, several repetitions; the
 * medians and their ratio are reported, never one absolute time; the machine's peak
 * FLOP/s and triad bandwidth are measured in the same run.
 *
 * Flow: harness.c (main) re-executes itself once per thread count (the "child", whose
 * environment fixes OMP_NUM_THREADS and friends before any library starts its threads);
 * the child measures the peaks (peak.c), runs every case of the suite (suite_core.c,
 * suite_scan.c) through the alternation engine (measure.c), and appends its records to a
 * file; the parent prints the table, writes bench/results/<suite>.json and runs plot.py.
 * Anchors: anchors.c (oneDNN, OpenBLAS, in process), torch_client.c (PyTorch, a
 * bench/torch_anchor.py subprocess timed call by call, so the alternation holds across the
 * two processes). */
#ifndef TDSL_BENCH_H
#define TDSL_BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "runtime/tdsl.h"

enum {
    BENCH_MAX_IMPLS = 8,     /* tdsl, tdsl --no-fuse and up to six anchors per case */
    BENCH_MAX_REPS = 64,     /* upper bound of --reps */
    BENCH_MAX_TENSORS = 24,  /* tensors one case allocates */
    BENCH_MAX_SHAPES = 4,    /* candidate shapes of a case, largest first */
    BENCH_MAX_MODULES = 8,   /* compiled tdsl modules cached per child run */
    BENCH_MAX_CASES = 32,    /* measured cases kept until the end of a child run */
};

/* ---- tensors ---------------------------------------------------------------------------- */

/* A contiguous f32 tensor: the DLTensor handed to tdsl, and the buffer anchors use. */
typedef struct Tensor {
    DLTensor dl;         /* dl.shape points at shape; strides NULL (row-major) */
    int64_t shape[8];    /* extents */
    float *data;         /* 64-byte aligned, n floats */
    size_t n;            /* elements */
} Tensor;

/* ---- implementations and cases -------------------------------------------------------- */

typedef enum ImplKind {
    IMPL_TDSL,           /* the tdsl kernel as compiled by default */
    IMPL_TDSL_NOFUSE,    /* the same kernel compiled with fusion off */
    IMPL_ANCHOR,         /* a reference implementation */
} ImplKind;

typedef struct Impl Impl;
/* Runs one call and returns its wall time in *ms; 0, or -1 with im->error set. */
typedef int (*ImplRunFn)(Impl *im, double *ms);

struct Impl {
    char name[48];              /* "tdsl", "oneDNN dnnl_sgemm", "PyTorch eager" */
    ImplKind kind;              /* what it is, for the ratio's meaning */
    ImplRunFn run;              /* NULL: unavailable (error says why) */
    void *ctx;                  /* what run needs */
    char variant[24];           /* the torch variant ("eager", "compile"); "" otherwise */
    double t[BENCH_MAX_REPS];   /* measured times, ms, in order */
    int n;                      /* entries of t */
    double median;              /* median of t, ms; 0 until measured */
    char error[256];            /* why it is unavailable or failed; "" when fine */
};

typedef struct Bench Bench;
typedef struct Case Case;

/* What a case is: its name, its shapes and the functions that build and check it. */
typedef struct CaseDef {
    const char *name;                        /* "softmax" */
    const char *shapes[BENCH_MAX_SHAPES];    /* "R=4096 N=4096", largest first; NULL-ended */
    bool bandwidth_bound;                    /* roofline: triad bandwidth (else peak FLOP/s) */
    /* Allocates the inputs, compiles the tdsl kernel(s), registers the implementations and
     * sets c->flops / c->bytes. Returns 0, or -1 with c->skip set (the case is skipped). */
    int (*setup)(Case *c);
    /* Compares the tdsl output with a reference computed in double on sampled entries;
     * returns the normwise error max|got - ref| / max|ref|, or -1 when nothing to check. */
    double (*check)(Case *c);
} CaseDef;

/* A tdsl kernel ready to call: what an IMPL_TDSL(_NOFUSE) implementation's ctx points at. */
typedef struct TdslCall {
    tdsl_kernel *k;             /* owned by a module in the Bench's cache */
    DLTensor *args[16];         /* inputs, then outputs */
    int nargs;                  /* entries of args */
} TdslCall;

struct Case {
    Bench *b;                       /* the run this case belongs to */
    const CaseDef *def;             /* what it is */
    int shape_index;                /* which of def->shapes */
    char shape[96];                 /* def->shapes[shape_index] */
    char note[160];                 /* shown with the results: a smaller shape, a caveat */
    char skip[512];                 /* why the case was skipped; "" when it ran */
    double flops;                   /* floating-point operations of one call */
    double bytes;                   /* minimum memory traffic of one call: inputs + outputs */
    Impl impls[BENCH_MAX_IMPLS];    /* impls[0] is tdsl */
    int nimpls;                     /* entries of impls */
    TdslCall calls[2];              /* [0] fused (default), [1] no-fuse */
    Tensor tensors[BENCH_MAX_TENSORS]; /* every tensor the case allocated */
    int ntensors;                   /* entries of tensors */
    char compile_what[96];          /* what tdsl_compile compiled ("kernel", "whole file x.tdsl") */
    double compile_ms[2];           /* tdsl_compile wall time, fused / no-fuse; <0: none */
    bool compile_cached;            /* the module was compiled for an earlier case of this run */
    double check_err;               /* check()'s result; <0 when not checked */
    void *state;                    /* the case's own data (anchor handles), freed by free_state */
    void (*free_state)(void *);     /* NULL when state needs no freeing */
};

/* A compiled module, cached so that several cases reading one file compile it once. */
typedef struct ModuleEntry {
    char key[512];             /* source path or text digest, plus the fusion flag */
    tdsl_module *m;            /* NULL when compiling failed */
    double ms;                 /* compile time */
    char first_case[48];       /* the case it was compiled for */
    char error[512];           /* the first lines of the compiler's message on failure */
} ModuleEntry;

typedef struct TorchClient TorchClient;

/* One child run: a suite at one thread count. */
struct Bench {
    const char *suite;          /* "core" or "scan" */
    const char *src_dir;        /* the source tree (stdlib/, bench/) */
    int threads;                /* this run's thread count */
    int reps;                   /* fixed repetitions; 0: adaptive (5..11, at least 3) */
    double budget_s;            /* adaptive reps: the time a case's repetitions may take */
    double max_call_s;          /* a tdsl call slower than this moves a case to a smaller shape */
    const char *only;           /* comma-separated case names to run; NULL: all */
    double peak_gflops;         /* measured FMA peak at this thread count */
    double triad_gbs;           /* measured triad bandwidth at this thread count */
    TorchClient *torch;         /* NULL when PyTorch is unavailable */
    char torch_why[256];        /* why PyTorch is unavailable */
    FILE *records;              /* JSON lines for the parent */
    FILE *table;                /* the table's rows, for the parent's summary */
    const char *hints_path;     /* shapes chosen at an earlier thread count ("case index" lines) */
    ModuleEntry modules[BENCH_MAX_MODULES]; /* compiled modules */
    int nmodules;               /* entries of modules */
    uint64_t rng;               /* input generator state */
    Case *done[BENCH_MAX_CASES]; /* measured cases, written out by bench_put_results */
    int ndone;                  /* entries of done */
};

/* ---- measure.c: tensors, tdsl, the alternation engine, records ------------------------- */

double bench_now(void);                                   /* monotonic seconds */
Tensor *case_tensor(Case *c, int ndim, const int64_t *shape); /* uniform [-1, 1); NULL: out of memory */
Tensor *case_tensor_fill(Case *c, int ndim, const int64_t *shape, float lo, float hi);
long case_param(const Case *c, const char *name);        /* a size of c->shape; -1 if absent */
/* The tdsl implementation(s) of a case: compiles src (or the file at path when src is NULL;
 * cached per run), finds kernel, binds args (ninputs inputs, then outputs) and adds "tdsl"
 * as impls[0]; with_nofuse also compiles it with fusion off and adds "tdsl --no-fuse",
 * writing into fresh output tensors. Records the compile times in c. 0, or -1 with c->skip
 * set when the fused kernel cannot be had. */
int case_tdsl(Case *c, const char *path, const char *src, const char *kernel, Tensor *const *args, int nargs,
              int ninputs, bool with_nofuse);
Impl *case_add_impl(Case *c, const char *name, ImplRunFn run, void *ctx); /* run NULL: unavailable */
/* PyTorch eager and torch.compile, set up in the subprocess as torch_case with shape (NULL:
 * the case's shape). */
void case_add_torch(Case *c, const char *torch_case, const char *shape);
void bench_notice(Bench *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void bench_run_case(Bench *b, const CaseDef *def);
/* Writes the measured cases' records and summary rows, with the roofline now in b. */
void bench_put_results(Bench *b);
void json_put_str(FILE *f, const char *s);                /* a quoted, escaped JSON string */
void bench_table_header(FILE *out, const char *unit_note);

/* ---- peak.c ------------------------------------------------------------------------------ */

double peak_fma_gflops(int threads, char *isa, size_t isa_len); /* best of several runs */
double peak_triad_gbs(int threads);                              /* best of several runs */

/* ---- anchors.c: oneDNN and OpenBLAS, in process ---------------------------------------- */

void anchors_describe(FILE *json);        /* "dnnl": ..., "openblas": ... fields, no braces */
void anchors_set_threads(int threads);    /* openblas_set_num_threads where present */
/* C = A B (row-major, A: [M, K], B: [K, N]). */
void anchors_add_sgemm(Case *c, Tensor *a, Tensor *b, Tensor *c_dnnl, Tensor *c_blas);
/* y = gelu(a b + bias) with oneDNN's matmul primitive (bias) followed by its eltwise primitive. */
void anchors_add_gemm_bias_gelu(Case *c, Tensor *a, Tensor *b, Tensor *bias, Tensor *y);
/* y = gelu(x w1ᵀ + b1) w2ᵀ + b2 (weights [out, in]) with oneDNN matmul, eltwise, matmul. */
void anchors_add_mlp(Case *c, Tensor *x, Tensor *w1, Tensor *b1, Tensor *w2, Tensor *b2,
                     Tensor *h, Tensor *y);

/* ---- torch_client.c -------------------------------------------------------------------- */

/* Starts `python bench/torch_anchor.py --serve --threads T`; NULL with why set when python
 * or torch is missing. log receives the script's stderr. */
TorchClient *torch_start(const char *python, const char *script, int threads, const char *log,
                         char *why, size_t why_len);
const char *torch_version(const TorchClient *tc);
/* Sets a case up in the subprocess ("softmax R=4096 N=4096"). On success writes the
 * available variants, comma-separated, to variants, and a variant the script could not
 * offer to skipped with the reason in why; else -1 with why set. */
int torch_setup(TorchClient *tc, const char *torch_case, const char *shape, char *variants,
                size_t variants_len, char *skipped, size_t skipped_len, char *why, size_t why_len);
int torch_run(TorchClient *tc, const char *variant, double *ms, char *why, size_t why_len);
void torch_stop(TorchClient *tc);

/* ---- suites ------------------------------------------------------------------------------ */

extern const CaseDef SUITE_CORE[];    /* NULL-name-ended */
extern const CaseDef SUITE_SCAN[];    /* NULL-name-ended */

/* Small helpers for the suites' checks. */
double bench_gelu(double x);

#endif
