/* ast: the syntax tree the parser builds, with a source span on every node.
 *
 * The tree is exactly what the user wrote: names are strings, nothing is resolved, types
 * are unchecked (a dtype is an identifier until sema looks it up). All nodes live in the
 * arena of the AstFile that holds them. Lists are (pointer array, count) pairs. */
#ifndef TDSL_AST_H
#define TDSL_AST_H

#include "diag.h"

/* ---- expressions ----------------------------------------------------------------------- */

#define AST_EXPR_KINDS(X)                                                                  \
    X(AX_INT)       /* ival */                                                             \
    X(AX_FLOAT)     /* fval (also inf and nan) */                                          \
    X(AX_BOOL)      /* ival: 0 or 1 */                                                     \
    X(AX_NAME)      /* name */                                                             \
    X(AX_ELLIPSIS)  /* `...`, only as an index in an access */                             \
    X(AX_UNARY)     /* op (AOP_NEG or AOP_NOT), a */                                       \
    X(AX_BINARY)    /* op, a, b */                                                         \
    X(AX_PAD)       /* a ?? b: a is an AX_INDEX, b the pad value */                        \
    X(AX_INDEX)     /* a[args...]: a is the base (usually an AX_NAME) */                   \
    X(AX_CALL)      /* name(args...); argnames[i] is non-NULL for `name = expr` args */    \
    X(AX_REDUCE)    /* rop[rvars...](a) */

typedef enum AstExprKind {
#define X(k) k,
    AST_EXPR_KINDS(X)
#undef X
} AstExprKind;

#define AST_OPS(X)                                                                         \
    X(AOP_NEG, "-") X(AOP_NOT, "not")                                                      \
    X(AOP_ADD, "+") X(AOP_SUB, "-") X(AOP_MUL, "*") X(AOP_DIV, "/") X(AOP_MOD, "%")         \
    X(AOP_POW, "^") X(AOP_MATMUL, "@")                                                     \
    X(AOP_LT, "<") X(AOP_LE, "<=") X(AOP_GT, ">") X(AOP_GE, ">=") X(AOP_EQ, "==")           \
    X(AOP_NE, "!=") X(AOP_AND, "and") X(AOP_OR, "or")

typedef enum AstOp {
#define X(k, s) k,
    AST_OPS(X)
#undef X
} AstOp;

#define AST_REDUCE_OPS(X)                                                                  \
    X(RED_SUM, "sum") X(RED_PROD, "prod") X(RED_MAX, "max") X(RED_MIN, "min")              \
    X(RED_MEAN, "mean") X(RED_ARGMAX, "argmax") X(RED_ARGMIN, "argmin") X(RED_ANY, "any")  \
    X(RED_ALL, "all")

typedef enum ReduceOp {
    RED_NONE,
#define X(k, s) k,
    AST_REDUCE_OPS(X)
#undef X
} ReduceOp;

typedef struct AstExpr AstExpr;

typedef struct AstRVar {      /* one reduction variable: `k` or `k < K` */
    const char *name;
    AstExpr    *range;        /* the explicit upper bound, or NULL when inferred */
    Span        span;         /* of the name */
} AstRVar;

struct AstExpr {
    AstExprKind  kind;
    Span         span;        /* the whole expression */
    int          depth;       /* nesting depth, 1 for leaves; the parser limits it */
    int64_t      ival;        /* AX_INT, AX_BOOL */
    double       fval;        /* AX_FLOAT */
    const char  *name;        /* AX_NAME, AX_CALL (callee) */
    Span         name_span;   /* AX_CALL: span of the callee name */
    AstOp        op;          /* AX_UNARY, AX_BINARY */
    ReduceOp     rop;         /* AX_REDUCE */
    AstExpr     *a, *b;       /* operands; AX_INDEX base in a; AX_REDUCE body in a */
    AstExpr    **args;        /* AX_INDEX indices, AX_CALL arguments */
    const char **argnames;    /* AX_CALL: NULL or an array of nargs names (NULL = positional) */
    int          nargs;
    AstRVar     *rvars;       /* AX_REDUCE */
    int          nrvars;
};

/* ---- types, parameters, annotations ---------------------------------------------------- */

typedef struct AstDim {       /* one dimension of a tensor type */
    bool     ellipsis;        /* `...` */
    AstExpr *size;            /* otherwise: AX_INT, AX_NAME or AX_BINARY of + - * / */
} AstDim;

typedef struct AstType {
    const char *dtype;        /* identifier as written: "f32", "i4", ... */
    Span        dtype_span;
    AstDim     *dims;         /* NULL with ndims == 0 for a scalar (no brackets) */
    int         ndims;
    bool        has_brackets; /* `f32[]` and `f32` are both rank 0; kept for printing */
    Span        span;         /* the whole type */
} AstType;

typedef struct AstAnnotArg {  /* `i8`, `per_channel`, `group=128`, `4` */
    const char *key;          /* `group` in `group=128`; NULL for a plain argument */
    AstExpr    *value;        /* AX_NAME or AX_INT (or any expression the parser accepted) */
    Span        span;
} AstAnnotArg;

typedef struct AstAnnot {     /* `@name` or `@name(args)` */
    const char  *name;
    AstAnnotArg *args;
    int          nargs;
    Span         span;
} AstAnnot;

typedef struct AstParam {     /* a parameter or a named output */
    const char *name;
    Span        name_span;
    AstType     type;
    AstAnnot   *annots;
    int         nannots;
} AstParam;

/* ---- statements ------------------------------------------------------------------------- */

typedef enum AstStmtKind {
    AS_DEF,     /* name[idx...] = rhs, or name = rhs when !indexed */
    AS_SCAN,    /* scan var < extent [reverse] with states { body } */
    AS_RETURN,  /* return rhs */
} AstStmtKind;

typedef struct AstLhsIdx {    /* one left-hand index: an identifier or `...` */
    const char *name;         /* NULL for `...` */
    Span        span;
} AstLhsIdx;

typedef struct AstState {     /* `S: f32[K, V] = 0` in a scan header */
    const char *name;
    Span        name_span;
    AstType     type;
    AstExpr    *init;         /* scalar literal / constant expression, or a name */
} AstState;

typedef struct AstStmt AstStmt;
struct AstStmt {
    AstStmtKind kind;
    Span        span;         /* the whole statement (for a scan: its header) */
    /* AS_DEF */
    const char *name;
    Span        name_span;
    bool        indexed;      /* `t[i, j] = ...` rather than `t = ...` */
    AstLhsIdx  *idx;
    int         nidx;
    AstExpr    *rhs;          /* AS_DEF, AS_RETURN */
    /* AS_SCAN */
    const char *var;
    Span        var_span;
    AstExpr    *extent;
    bool        reverse;
    AstState   *states;
    int         nstates;
    AstStmt   **body;
    int         nbody;
};

/* ---- top-level items ---------------------------------------------------------------------- */

typedef enum AstItemKind {
    AI_IMPORT,    /* path */
    AI_CONST,     /* name = value */
    AI_FN,        /* name(params) -> ret { body } */
    AI_KERNEL,    /* name(params) -> outputs { body } */
    AI_SCHEDULE,  /* schedule name { directives } */
} AstItemKind;

typedef struct AstSchedArg {  /* `n 64` in `tile n 64, m 64`; `b` in `parallel b, h` */
    const char *var;
    Span        var_span;
    bool        has_factor;
    int64_t     factor;
    Span        factor_span;
} AstSchedArg;

typedef struct AstDirective {
    const char  *name;        /* tile, vectorize, parallel, unroll, or whatever was written */
    Span         span;        /* of the directive name */
    AstSchedArg *args;
    int          nargs;
} AstDirective;

typedef struct AstItem {
    AstItemKind   kind;
    Span          span;        /* the header: keyword through name */
    const char   *name;        /* const, fn, kernel, schedule */
    Span          name_span;
    const char   *path;        /* AI_IMPORT: the string without quotes */
    AstExpr      *value;       /* AI_CONST */
    AstParam     *params;      /* AI_FN, AI_KERNEL */
    int           nparams;
    AstType       ret;         /* AI_FN */
    AstParam     *outputs;     /* AI_KERNEL */
    int           noutputs;
    AstStmt     **body;        /* AI_FN, AI_KERNEL */
    int           nbody;
    AstDirective *directives;  /* AI_SCHEDULE */
    int           ndirectives;
} AstItem;

typedef struct AstFile {
    SrcFile   src;             /* path and text (heap-owned by the AstFile) */
    Arena     arena;           /* every node and string of this file */
    AstItem **items;
    int       nitems;
} AstFile;

/* Parses src text into a new AstFile. Syntax errors go to d (several per run: the parser
 * recovers at statement and item boundaries). Always returns a file, possibly with fewer
 * items; the caller checks d->nerrors. Takes ownership of text (heap, NUL-terminated). */
AstFile *ast_parse(const char *path, char *text, size_t len, DiagSink *d);
void     ast_file_free(AstFile *f);

/* Writes the tree in the stable indented form of `tcc --emit=ast`. */
void ast_print(const AstFile *f, StrBuf *out);
void ast_print_expr(const AstExpr *e, StrBuf *out);   /* one line, fully parenthesised */

/* Writes the token stream of text as the parser sees it, one token per line
 * (`3:5 identifier x`), for lexer tests and debugging. Lexical errors go to d. */
void ast_dump_tokens(const char *path, const char *text, size_t len, DiagSink *d, StrBuf *out);

const char *ast_op_name(AstOp op);
const char *ast_reduce_name(ReduceOp op);   /* "sum", ...; "" for RED_NONE */
const char *ast_expr_kind_name(AstExprKind k);

/* Limits the parser enforces, with a clear error, so no input can exhaust the stack. */
enum { AST_MAX_DEPTH = 1000 };

#endif
