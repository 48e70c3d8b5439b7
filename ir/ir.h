/* ir: the tensor IR (level 1), its builders, text dump, verifier, size binding and the
 * reference interpreter.
 *
 * A Module holds kernels. A Kernel is a list of statements over tensors: each Def defines
 * one tensor, element by element, from a scalar expression tree whose leaves are constants,
 * variables and accesses `tensor[affine index exprs]` (with an optional pad value), with at
 * most one reduction at the top. A Scan holds state tensors and a body run once per step.
 * Every node lives in the module's arena. Variables are objects with unique ids; nothing
 * is ever compared by name.
 *
 * Invariants the verifier checks (ir_verify):
 *   - every Expr has a dtype; operands of arithmetic have the node's dtype; comparisons
 *     give DT_BOOL; index expressions and shape dims are DT_I64;
 *   - a Def's idx[] has one Var per axis of dst, each VAR_INDEX (looped over its extent)
 *     or the VAR_SCAN of an enclosing scan;
 *   - accesses have one index per axis of their tensor; a tensor is read only after the
 *     statement that defines it (inputs and states are defined on entry);
 *   - every output is defined exactly once. */
#ifndef TDSL_IR_H
#define TDSL_IR_H

#include "../frontend/ast.h"   /* ReduceOp, Span */

enum { IR_MAX_RANK = 8 };

/* ---- dtypes ------------------------------------------------------------------------------ */

typedef enum DType {
#define X(e, name, bits, is_float, is_signed, dl) e,
#include "dtype.def"
#undef X
    DT_COUNT
} DType;

const char *dtype_name(DType t);
int         dtype_bits(DType t);          /* storage bits per element: 2, 4, 8, 16, 32, 64 */
bool        dtype_is_float(DType t);
bool        dtype_is_int(DType t);        /* integer types, not bool */
bool        dtype_is_signed(DType t);
int         dtype_dlpack_code(DType t);
bool        dtype_from_name(const char *name, DType *out);
/* Bytes to store n elements (packed types round up to whole bytes); false on overflow. */
bool        dtype_storage_bytes(DType t, size_t n, size_t *bytes);

/* Scalar conversions shared by the interpreter, the npy tools and the runtime. */
uint16_t    f32_to_f16_bits(float f);     /* round to nearest even; overflow to inf */
float       f16_bits_to_f32(uint16_t h);
uint16_t    f32_to_bf16_bits(float f);    /* round to nearest even; NaN stays NaN */
float       bf16_bits_to_f32(uint16_t h);

/* The range of an integer dtype (bool: 0..1). */
void        dtype_int_range(DType t, int64_t *lo, int64_t *hi);

/* The scalar rules of the language, shared by ir_const_*, the interpreter and constant
 * folding so they can never disagree:
 *   dtype_wrap_i      an integer wrapped two's-complement into t (bool: v != 0);
 *   dtype_round_f     a double rounded to float type t (f32 via (float), f16/bf16 through
 *                     the bit conversions above, round to nearest even);
 *   dtype_saturate_f  float to integer type t: toward zero, saturating, NaN -> 0
 *                     (bool: v != 0). */
int64_t     dtype_wrap_i(DType t, int64_t v);
double      dtype_round_f(DType t, double v);
int64_t     dtype_saturate_f(DType t, double v);

/* Element i of a buffer in the dtype's storage layout (packed types: low bits first),
 * as a double (floats) or an int64 (integers and bool). */
double      dtype_load_f(DType t, const void *data, size_t i);
int64_t     dtype_load_i(DType t, const void *data, size_t i);
/* Stores a value already representable in t (the caller rounds / wraps first). */
void        dtype_store_f(DType t, void *data, size_t i, double v);
void        dtype_store_i(DType t, void *data, size_t i, int64_t v);

/* ---- scalar ops --------------------------------------------------------------------------- */

typedef enum Op {
#define X(e, name, arity, infix) e,
#include "ops.def"
#undef X
    OP_COUNT
} Op;

const char *op_name(Op op);
int         op_arity(Op op);               /* -1 for OP_ACCESS */
const char *op_infix(Op op);               /* NULL when printed as a call */

/* ---- variables ----------------------------------------------------------------------------- */

typedef enum VarKind {
    VAR_SIZE,     /* a size name (N, D): bound at call time, at least 1 */
    VAR_INDEX,    /* a definition's output index: ranges over [0, extent) */
    VAR_REDUCE,   /* a reduction variable: ranges over [0, extent) */
    VAR_SCAN,     /* a scan's step variable: ranges over [0, extent), in order */
} VarKind;

typedef struct Expr Expr;

typedef struct Var {
    int         id;       /* unique in the module */
    VarKind     kind;
    const char *name;     /* for printing only */
    Expr       *extent;   /* DT_I64 size expression; NULL for VAR_SIZE */
} Var;

/* ---- tensors and annotations ------------------------------------------------------------------ */

typedef enum AnnotKind {
    ANN_NONE,
    ANN_QUANT,   /* @quant(dtype, scheme...) */
    ANN_CSR,     /* @csr */
    ANN_BSR,     /* @bsr(r, c) */
    ANN_NM,      /* @nm(n, m) */
    ANN_COO,     /* @coo */
} AnnotKind;

typedef enum QuantScheme {
    QS_PER_TENSOR,   /* one scale (the default) */
    QS_PER_CHANNEL,  /* one scale per row */
    QS_PER_ROW,      /* activations: one scale per row, usually dynamic */
    QS_GROUP,        /* one scale per `group` elements along the last axis */
    QS_TERNARY,      /* {-1, 0, 1} times one absmean scale */
} QuantScheme;

typedef struct Annot {
    AnnotKind   kind;
    DType       qdtype;    /* ANN_QUANT: the stored integer type */
    QuantScheme scheme;    /* ANN_QUANT */
    int64_t     group;     /* ANN_QUANT with QS_GROUP */
    bool        zero;      /* ANN_QUANT: asymmetric, with zero points */
    bool        dynamic;   /* ANN_QUANT: quantised by the kernel on the fly */
    int64_t     block[2];  /* ANN_BSR: block rows, cols; ANN_NM: n, m */
    Span        span;
} Annot;

typedef enum TensorKind {
    TK_INPUT,    /* a kernel parameter */
    TK_OUTPUT,   /* a named kernel output */
    TK_TEMP,     /* an intermediate; the compiler decides whether it is materialised */
    TK_STATE,    /* a scan state: holds the previous step's value during a step */
} TensorKind;

typedef struct Tensor {
    int         id;       /* unique in the module */
    const char *name;     /* unique in the kernel */
    TensorKind  kind;
    DType       dtype;
    int         rank;
    Expr      **shape;    /* rank DT_I64 size expressions over VAR_SIZE vars and constants */
    Annot       annot;    /* storage annotation; meaning stays dense */
    Span        span;     /* where the user declared or defined it */
} Tensor;

/* ---- expressions ----------------------------------------------------------------------------- */

typedef union Value {
    double  f;   /* float dtypes */
    int64_t i;   /* integer dtypes and bool */
} Value;

struct Expr {
    Op       op;
    DType    type;     /* result dtype */
    int      nargs;    /* operands in args; for OP_ACCESS one index per tensor axis */
    Expr   **args;
    Value    value;    /* OP_CONST, already representable in type */
    Var     *var;      /* OP_VAR */
    Tensor  *tensor;   /* OP_ACCESS */
    Expr    *pad;      /* OP_ACCESS: value where an index is out of range; NULL = in bounds */
    Span     span;     /* user source, when it came from there */
};

/* ---- statements ------------------------------------------------------------------------------- */

typedef struct Def {
    Tensor   *dst;     /* the tensor this statement defines (or a slice of, under a scan) */
    Var     **idx;     /* dst->rank vars: VAR_INDEX, or the VAR_SCAN of an enclosing scan */
    ReduceOp  rop;     /* RED_NONE: dst[idx] = body; else dst[idx] = rop over red of body */
    Var     **red;     /* nred VAR_REDUCE vars */
    int       nred;
    Expr     *body;    /* scalar expression; for argmax/argmin, the value compared */
} Def;

typedef struct Stmt Stmt;

typedef struct ScanState {
    Tensor *state;       /* TK_STATE: the value before this step's redefinition */
    Tensor *next;        /* defined in the body; NULL when the body never redefines it */
    Expr   *init_value;  /* initial value: a scalar constant broadcast ... */
    Tensor *init_tensor; /* ... or an input tensor of the state's type (one is NULL) */
} ScanState;

typedef struct Scan {
    Var       *var;       /* VAR_SCAN; its extent is the step count */
    bool       reverse;   /* steps run extent-1 down to 0 */
    ScanState *states;
    int        nstates;
    Stmt     **body;      /* run once per step; after it, each state takes its next value */
    int        nbody;
} Scan;

typedef enum StmtKind { STMT_DEF, STMT_SCAN } StmtKind;

struct Stmt {
    StmtKind kind;
    Span     span;
    Def      def;    /* STMT_DEF */
    Scan     scan;   /* STMT_SCAN */
};

/* ---- schedules ---------------------------------------------------------------------------------- */

typedef enum SchedKind { SCHED_TILE, SCHED_VECTORIZE, SCHED_PARALLEL, SCHED_UNROLL } SchedKind;

typedef struct SchedDirective {
    SchedKind   kind;
    const char *var;     /* the index variable's name as the user wrote it */
    int64_t     factor;  /* tile size or unroll factor; 0 when not applicable */
    Span        span;
} SchedDirective;

/* ---- kernels and modules -------------------------------------------------------------------------- */

typedef struct Kernel {
    const char     *name;
    Span            span;
    Var           **sizes;      /* VAR_SIZE vars, in order of first appearance in the signature */
    int             nsizes;
    Tensor        **ins;        /* parameters in order */
    int             nins;
    Tensor        **outs;       /* outputs in order */
    int             nouts;
    Tensor        **temps;      /* intermediates and scan states, in definition order */
    int             ntemps;
    Stmt          **stmts;      /* in an order where every read follows its definition */
    int             nstmts;
    SchedDirective *sched;      /* the kernel's schedule block, if any */
    int             nsched;
} Kernel;

typedef struct Module {
    Arena    arena;      /* owns every node */
    Kernel **kernels;
    int      nkernels;
    int      next_id;    /* for Var and Tensor ids */
} Module;

/* ---- builders (ir.c): all allocate in m->arena ------------------------------------------------------- */

Module *ir_module_new(void);
void    ir_module_free(Module *m);
Kernel *ir_kernel_new(Module *m, const char *name);
void    ir_kernel_add(Module *m, Kernel *k);
Var    *ir_var_new(Module *m, VarKind kind, const char *name, Expr *extent);
Tensor *ir_tensor_new(Module *m, TensorKind kind, const char *name, DType dt, int rank, Expr **shape);

Expr *ir_const_f(Module *m, DType t, double v);     /* rounds v to t */
Expr *ir_const_i(Module *m, DType t, int64_t v);    /* wraps v into t */
Expr *ir_var(Module *m, Var *v);                    /* type DT_I64 */
Expr *ir_access(Module *m, Tensor *t, Expr **idx, Expr *pad);  /* copies idx[0..rank) */
Expr *ir_unary(Module *m, Op op, Expr *a);          /* type: a's (DT_BOOL for not/isnan) */
Expr *ir_binary(Module *m, Op op, Expr *a, Expr *b);/* type: a's, DT_BOOL for comparisons */
Expr *ir_ternary(Module *m, Op op, Expr *a, Expr *b, Expr *c); /* select: b's type */
Expr *ir_cast(Module *m, DType t, Expr *a);

Stmt *ir_def_new(Module *m, Tensor *dst, Var **idx, ReduceOp rop, Var **red, int nred, Expr *body);

/* ---- size expressions (ir.c) ------------------------------------------------------------------------ */

/* Evaluates a DT_I64 expression over VAR_SIZE vars (sizes[i] is the value of k->sizes[i]'s
 * var) and constants. Returns false on overflow, division by zero or a non-size leaf. */
bool ir_eval_size(const Kernel *k, const Expr *e, const int64_t *sizes, int64_t *out);
bool ir_exprs_equal(const Expr *a, const Expr *b);  /* structural equality */

/* Binds size names from the shapes of the inputs (and from preset values, -D), checking
 * that every dimension agrees. sizes[i] < 0 on entry means unbound. On a mismatch returns
 * false with a message like "attention: k has D = 32 but q has D = 64" in err. Sizes no
 * input determines stay < 0 unless preset; the caller reports them. */
bool ir_bind_sizes(const Kernel *k, const int64_t *const *in_shapes, const int *in_ranks,
                   int64_t *sizes, StrBuf *err);

/* ---- text dump (print.c), verifier (verify.c) ---------------------------------------------------------- */

void ir_print_module(const Module *m, StrBuf *out);
void ir_print_kernel(const Kernel *k, StrBuf *out);
void ir_print_expr(const Expr *e, StrBuf *out);
/* A DT_I64 size expression with minimal parentheses (`N + 1`, `K / 128`), as in shapes;
 * also for diagnostics. */
void ir_print_size(const Expr *e, StrBuf *out);

/* Checks the invariants above. Returns true when the module is well formed; otherwise
 * appends one line per problem to err. */
bool ir_verify(const Module *m, StrBuf *err);

/* ---- reference interpreter (interp.c) ------------------------------------------------------------------ */

/* A tensor in its storage layout: row-major, contiguous; f16/bf16 as 16-bit patterns;
 * i4/u4 two per byte and i2 four per byte over the flattened index, low bits first; bool
 * one byte (0 or 1). */
typedef struct TensorData {
    DType   dtype;
    int     rank;
    int64_t shape[IR_MAX_RANK];
    void   *data;
    size_t  nbytes;
} TensorData;

/* Runs kernel k. sizes are bound (every entry >= 1, see ir_bind_sizes); ins[i] and outs[i]
 * have the dtype and shape of k->ins[i] / k->outs[i] (outs allocated by the caller).
 * Returns false with a message in err for a run-time failure (memory, size overflow). */
bool ir_interp_run(const Kernel *k, const int64_t *sizes, const TensorData *ins,
                   TensorData *outs, StrBuf *err);

/* ==== loop IR (level 2) ======================================================================
 *
 * Imperative and structured: loop nests over buffers. Buffers are the kernel's tensors
 * (inputs, outputs, and every temporary, which the function allocates); expressions are
 * the same Expr nodes as level 1, where OP_ACCESS now means a load of a buffer element at
 * multi-dimensional indices (row-major; the back end flattens them) and may still carry a
 * pad value (the back end loads only when every index is in range). Loop variables are
 * Var objects of kind VAR_INDEX. Both back ends consume only this level. */
typedef enum LoopKind {
    LOOP_SERIAL,
    LOOP_PARALLEL,     /* iterations may run on different threads */
    LOOP_VECTOR,       /* innermost, SIMD */
    LOOP_UNROLL,
    LOOP_GPU_BLOCK,
    LOOP_GPU_THREAD,
} LoopKind;

/* Work below which a parallel loop is not worth the threads: its estimate counts the stores
 * its iterations make (a loop: extent times its body; a sequence: the sum; an if: both
 * branches). passes/parallelize.c leaves such loops serial when the extents are constants;
 * the CPU back end runs a LOOP_PARALLEL loop on the calling thread when its estimate at run
 * time is below it. */
enum { LOOP_PARALLEL_MIN_WORK = 1 << 14 };

typedef enum LStmtKind {
    LS_SEQ,      /* body[0..nbody) in order */
    LS_FOR,      /* for var in [0, extent) (or reversed) of kind loop: body */
    LS_STORE,    /* buf[idx...] = value */
    LS_IF,       /* if cond: body (then) else: else_body */
    LS_ALLOC,    /* buf lives (allocated, uninitialised) for the duration of body */
    LS_BARRIER,  /* all threads of a GPU block wait here */
} LStmtKind;

typedef enum MemScope { MEM_HEAP, MEM_STACK, MEM_SHARED, MEM_REGISTER } MemScope;

typedef struct LStmt LStmt;
struct LStmt {
    LStmtKind kind;
    LStmt   **body;       /* LS_SEQ children; LS_FOR, LS_IF (then), LS_ALLOC: one child each in body[0] */
    int       nbody;
    Var      *var;        /* LS_FOR: the loop variable */
    Expr     *extent;     /* LS_FOR: trip count (DT_I64 expression of size vars and outer loop vars) */
    LoopKind  loop;       /* LS_FOR */
    bool      reverse;    /* LS_FOR: var runs extent-1 down to 0 */
    Tensor   *buf;        /* LS_STORE, LS_ALLOC */
    Expr    **idx;        /* LS_STORE: buf->rank indices */
    Expr     *value;      /* LS_STORE: of buf->dtype */
    Expr     *cond;       /* LS_IF: DT_BOOL */
    LStmt    *else_body;  /* LS_IF: may be NULL */
    MemScope  scope;      /* LS_ALLOC */
};

typedef struct LoopFunc {
    const Kernel *kernel;  /* signature: ins, outs, sizes */
    LStmt        *body;    /* the whole function */
} LoopFunc;

typedef struct LoopModule {
    const Module *ir;      /* the tensor IR it was lowered from (owns the arena) */
    LoopFunc    **funcs;   /* one per kernel, in module order */
    int           nfuncs;
} LoopModule;

/* Builders (loop.c), in the tensor module's arena. */
LStmt *loop_seq(Module *m, LStmt **body, int n);
LStmt *loop_for(Module *m, Var *v, Expr *extent, LoopKind kind, bool reverse, LStmt *body);
LStmt *loop_store(Module *m, Tensor *buf, Expr **idx, Expr *value);
LStmt *loop_if(Module *m, Expr *cond, LStmt *then_s, LStmt *else_s);
LStmt *loop_alloc(Module *m, Tensor *buf, MemScope scope, LStmt *body);
const char *loop_kind_name(LoopKind k);

/* What ir_lower_module runs; zero (or a NULL pointer) is the CPU pipeline in full. */
typedef struct LowerOptions {
    bool    no_fuse;   /* skip pass_fuse_loops: --no-fuse, and the CUDA back end (docs/cuda.md) */
    StrBuf *explain;   /* --explain-fusion: pass_fuse_loops appends what it merged and why not */
    bool    gpu;       /* for the CUDA back end: skip the CPU-only schedules (pass_interchange) */
} LowerOptions;

/* Lowers every kernel of m and runs the loop passes (passes/pipeline.c: pass_lower,
 * pass_fuse_loops, pass_interchange, pass_parallelize). o may be NULL. Never fails on verified IR. */
LoopModule *ir_lower_module(Module *m, const LowerOptions *o);
void        loop_print_module(const LoopModule *lm, StrBuf *out);   /* --emit=loops */
bool        loop_verify(const LoopModule *lm, StrBuf *err);

#endif
