/* sema_internal: what the semantic-analysis files (sema.c, sema_expr.c, bounds.c) share.
 * Not a public header: only the frontend sources include it. */
#ifndef TDSL_SEMA_INTERNAL_H
#define TDSL_SEMA_INTERNAL_H

#include "frontend.h"

/* ---- symbolic polynomials over size names (bounds.c) ------------------------------------
 * Index intervals and tensor dimensions are compared as polynomials with integer
 * coefficients over atoms: size names (>= 1) and opaque floor divisions (>= 0). */

enum { POLY_MAX_TERMS = 24, POLY_MAX_DEGREE = 4 };

typedef struct PolyTerm {
    int64_t coef;
    int     natoms;
    int     atoms[POLY_MAX_DEGREE];  /* atom ids, sorted ascending */
} PolyTerm;

typedef struct Poly {
    bool     unknown;  /* too large or not affine: nothing can be proved about it */
    int      nterms;
    PolyTerm terms[POLY_MAX_TERMS];
} Poly;

typedef struct Bounds Bounds;

Bounds *bounds_new(void);
void    bounds_free(Bounds *b);

Poly poly_const(int64_t c);
Poly poly_add(const Poly *a, const Poly *b);
Poly poly_sub(const Poly *a, const Poly *b);
Poly poly_mul(const Poly *a, const Poly *b);
bool poly_is_const(const Poly *p, int64_t *c);
bool poly_equal(const Poly *a, const Poly *b);
/* True when p >= 0 is proved for every size >= 1 (sound, not complete). */
bool poly_nonneg(Bounds *b, const Poly *p);
void poly_print(Bounds *b, const Poly *p, StrBuf *out);

/* A DT_I64 size expression (constants, VAR_SIZE vars, + - * /) as a polynomial. */
Poly poly_from_size(Bounds *b, const Expr *e);
/* Whether two size expressions are provably equal for all sizes. */
bool sizes_equal(Bounds *b, const Expr *x, const Expr *y);

/* The interval [lo, hi] of an index expression over its variables' ranges. Returns false
 * when the expression is not affine in index variables and size names (with / and % by
 * positive constants). */
bool index_interval(Bounds *b, const Expr *e, Poly *lo, Poly *hi);

/* ---- shared sema state (sema.c) ----------------------------------------------------------- */

typedef struct SModule SModule;     /* one source file and its symbols */
typedef struct Sema Sema;
typedef struct Env Env;

#endif

/* ---- values during elaboration ------------------------------------------------------------ */

typedef enum CvKind { CV_INT, CV_FLOAT, CV_BOOL } CvKind;

typedef struct CVal {          /* an untyped compile-time constant (literal or const) */
    CvKind  kind;
    int64_t i;                 /* CV_INT, CV_BOOL */
    double  f;                 /* CV_FLOAT */
} CVal;

typedef struct SVal {          /* a scalar value: typed IR, an untyped constant, or poison */
    Expr *e;                   /* typed expression; NULL when untyped or poison */
    bool  untyped;             /* the value is c, typed by context later */
    CVal  c;
    bool  poison;              /* an error was already reported; stay quiet */
} SVal;

typedef struct Val {           /* a call argument or result: a tensor or a scalar */
    Tensor *t;                 /* non-NULL for a tensor (any rank) */
    SVal    sv;                /* otherwise */
} Val;

typedef enum BindKind { B_TENSOR, B_SCALAR, B_SIZE, B_VAR, B_POISON } BindKind;

typedef struct Binding {
    const char *name;
    BindKind    kind;
    Span        span;          /* where the name was introduced */
    Tensor     *t;             /* B_TENSOR */
    SVal        sv;            /* B_SCALAR */
    Expr       *size;          /* B_SIZE: DT_I64 size expression */
    Var        *var;           /* B_VAR */
    bool        pending;       /* a declared output not defined yet */
    bool        is_state;      /* a scan state: may be redefined once per step */
    bool        redefined;     /* the state was redefined in this step */
    Tensor     *state;         /* the TK_STATE tensor behind a state binding */
    Env        *scan_env;      /* states: the scan body's scope, where redefinition is legal */
    Env        *outer;         /* scan variables: the scope around the scan (collected tensors) */
} Binding;

struct Env {
    Env   *parent;             /* NULL at a kernel's or fn instance's top */
    PtrVec binds;              /* Binding* */
};

struct SModule {
    AstFile  *ast;
    char     *path;            /* canonical path, for de-duplicating imports */
    char     *dir;             /* directory for relative imports */
    int       state;           /* 0 new, 1 loading its imports, 2 loaded */
    SModule **imports;
    int       nimports;
    CVal     *const_vals;      /* per item: evaluated const values */
    int      *const_state;     /* per item: 0 new, 1 evaluating, 2 done, 3 error */
};

enum { SEMA_MAX_INLINE_DEPTH = 48, SEMA_MAX_EXPR_NODES = 200000 };

typedef struct CallFrame {
    const char *fn;            /* callee name, for notes */
    Span        call;          /* the call site */
    const AstItem *item;       /* the fn being instantiated (recursion check) */
} CallFrame;

typedef struct WholeCache {    /* whole-tensor sub-expressions already materialised */
    const AstExpr *ast;
    Val            v;
} WholeCache;

struct Sema {
    DiagSink        *d;
    const FeOptions *o;
    Module          *m;
    Bounds          *bounds;
    Arena            arena;     /* SModules, scratch */
    PtrVec           mods;      /* SModule* */
    PtrVec           reported;  /* Span* of errors inside fn bodies, reported once */
    PtrVec           unbound_reported;  /* Span* of unbound indexed names found by range inference */
    PtrVec           used_fns;  /* AstItem* of fns instantiated at least once */
    PtrVec           loading;   /* SModule* whose imports are being loaded (cycle check) */
};

typedef struct Ctx {           /* elaboration of one kernel */
    Sema      *s;
    Kernel    *k;
    SModule   *mod;            /* names of fns and consts resolve here */
    PtrVec    *stmts;          /* where new statements go (kernel top or a scan body) */
    PtrVec     temps;          /* Tensor* intermediates, for k->temps */
    CallFrame  frames[SEMA_MAX_INLINE_DEPTH];
    int        nframes;
    Var      **batch;          /* the current definition's `...` variables */
    int        nbatch;
    Expr     **batch_dims;     /* the current fn instance's `...` dims */
    int        nbatch_dims;
    bool       in_fn;          /* elaborating a fn body */
    int        scan_depth;     /* scans around the statement being elaborated */
    const char *cur_def;       /* the name the current statement defines */
    AstStmt  **body;           /* the statements being elaborated, for hints */
    int        nbody;
    int        counter;        /* for generated names */
    WholeCache *cache;
    int        ncache, capcache;
    Tensor    *fn_result;      /* the tensor the last fn call materialised for its return */
} Ctx;

/* sema.c, sema_stmt.c */
bool     sema_error(Ctx *c, Span sp, const char *help, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
Binding *env_lookup(Env *env, const char *name);
Binding *env_bind(Ctx *c, Env *env, const char *name, BindKind kind, Span span);
Env     *env_new(Ctx *c, Env *parent);
bool     sema_const_value(Sema *s, SModule *mod, const char *name, CVal *out, bool *found);
bool     sema_const_eval(Sema *s, SModule *mod, const AstExpr *e, CVal *out);
const AstItem *sema_find_fn(Sema *s, SModule *mod, const char *name, SModule **owner, Span use,
                            DiagSink *d, bool *ambiguous);
const char *sema_unique_name(Ctx *c, const char *base);
Var     *sema_var_new(Ctx *c, VarKind kind, const char *base, Expr *extent);
void     sema_elab_body(Ctx *c, Env *env, AstStmt **body, int nbody, const AstStmt **ret);
Expr    *sema_size_expr(Ctx *c, Env *env, const AstExpr *e);

/* sema_types.c */
Expr *sema_kernel_dim(Ctx *c, Env *env, const AstExpr *e, PtrVec *sizes);
bool  sema_resolve_dtype(Ctx *c, const AstType *t, DType *out);
bool  sema_kernel_type(Ctx *c, Env *env, const AstType *t, PtrVec *sizes, DType *dt, int *rank, Expr ***dims);
bool  sema_check_annotation(Ctx *c, const AstParam *p, Tensor *t);

/* sema_call.c */
bool  sema_item_listed(PtrVec *v, const void *item);

/* sema_expr.c */
bool  sema_is_builtin(const char *name);
bool  elab_reduction_parts(Ctx *c, Env *env, const AstExpr *e, Var ***red, Expr **body, DType *dt);
Val   elab_call_value(Ctx *c, Env *env, const AstExpr *e);
SVal  elab_scalar(Ctx *c, Env *env, const AstExpr *e);
bool  elab_whole_shape(Ctx *c, Env *env, const AstExpr *e, int *rank, Expr ***dims);
SVal  elab_whole(Ctx *c, Env *env, const AstExpr *e, Var **idx, Expr **dims, int rank);
SVal  sval_coerce(Ctx *c, SVal v, DType t, Span sp);
DType sval_default_type(SVal v);
Expr *sval_expr(Ctx *c, SVal v);              /* default-typed expression */
Tensor *materialize(Ctx *c, Env *env, const AstExpr *e, int rank, Expr **dims, const char *name);
void  infer_range(Ctx *c, Env *env, const AstExpr *rhs, const char *var, Span var_span,
                  Expr **extent);
Stmt *emit_def(Ctx *c, Tensor *dst, Var **idx, ReduceOp rop, Var **red, int nred, Expr *body,
               Span span);
Val   call_fn(Ctx *c, const AstItem *fn, SModule *owner, Val *args, const char **argnames,
              Span *argspans, int nargs, Span call);
Tensor *new_temp(Ctx *c, const char *name, DType dt, int rank, Expr **dims, Span span);
bool  shape_broadcast(Ctx *c, int ra, Expr **da, int rb, Expr **db, int *rr, Expr ***dr,
                      Span sp);
void  describe_type(DType dt, int rank, Expr **dims, StrBuf *out);
