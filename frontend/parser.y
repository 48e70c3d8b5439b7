%code top {
/* parser: the tdsl grammar (LANGUAGE.md section 11), building the AST of ast.h.
 *
 * A pure bison parser: no globals, since the compiler runs in several threads at once. The
 * file is parsed one item at a time. Each item keyword (import const fn kernel schedule)
 * starts a new yyparse() call: yylex() below hands the parser an end-of-input token in
 * place of the next item keyword and keeps the keyword for the next call. So a broken item
 * can never swallow the next one, and errors inside a body recover at the statement level
 * (`stmt: error`, which skips to the next end of line or `}`).
 *
 * Newlines end statements. The lexer (lexer.l) already drops the newlines the grammar must
 * not see: inside ( and [, at the start of an item, after `{ , ->` and before
 * `} -> { with reverse`, so the grammar has no optional-newline rules at all.
 *
 * Each syntax error becomes one message built from bison's list of expected tokens, shaped
 * for a human ("expected ')' to close '(' opened at 3:7, found end of line"), with a help
 * line where the fix is known. Every node lives in the AstFile's arena. Expression nodes
 * record their depth, capped at AST_MAX_DEPTH, so no later recursive pass can overflow the
 * stack whatever the input. */
}

%code requires {
#include "ast.h"

typedef struct ParseCtx ParseCtx;

/* A rule's span runs from its first symbol to its last. An empty rule sits, with length 0,
 * right after the symbol before it. */
static inline Span parse_span_default(const Span *rhs, int n)
{
    if (n > 0) return span_join(rhs[1], rhs[n]);
    Span s = rhs[0];
    s.off += s.len;
    s.col += s.len;
    s.len = 0;
    return s;
}
#define YYLLOC_DEFAULT(Cur, Rhs, N) ((Cur) = parse_span_default(&YYRHSLOC(Rhs, 0), (N)))
}

%code provides {
/* Flex's bison-bridge prototypes name the plain YYSTYPE and YYLTYPE. */
#ifndef YYSTYPE
#define YYSTYPE TDSL_YYSTYPE
#endif
#ifndef YYLTYPE
#define YYLTYPE TDSL_YYLTYPE
#endif

typedef struct LexOpen {      /* one open bracket */
    char ch;                  /* '(', '[' or '{'; 0 for none */
    Span span;                /* where it was opened */
} LexOpen;

typedef struct Token {
    int     kind;             /* TK_..., or a character for one-character tokens */
    YYSTYPE val;              /* IDENT, STRING: text; INT, FLOAT: value; REDUCE: op */
    Span    span;
    LexOpen open;             /* the innermost bracket open just before this token */
} Token;

typedef struct LexState {     /* everything the scanner knows: it has no globals */
    const SrcFile *file;
    DiagSink      *diag;
    Arena         *arena;     /* identifier and string text */
    void          *scanner;   /* the flex yyscan_t */
    uint32_t       off, line, col;  /* position of the next byte */
    LexOpen       *open;      /* stack of open brackets, AST_MAX_DEPTH entries */
    int            nopen;
    bool           fatal;     /* nesting limit hit: only end of input from now on */
    bool           quiet;     /* the parser is recovering from an error in this item: hitting
                                 the nesting limit then ends the input without a message */
    bool           eof;       /* the scanner has returned end of input */
    bool           have_bad;  /* bad_end is valid */
    uint32_t       bad_end;   /* end of the last unexpected character, to report a run once */
    Token          peek;      /* lex_next's look-ahead, valid when have_peek */
    bool           have_peek;
    int            prev_kind; /* the last token lex_next returned */
} LexState;

/* lexer.l */
void lex_init(LexState *lx, const SrcFile *file, Arena *arena, DiagSink *d);
void lex_destroy(LexState *lx);
void lex_next(LexState *lx, Token *t);     /* the token stream the grammar sees */
bool lex_is_item_keyword(int kind);
void lex_close_lines(LexState *lx);        /* forget open ( and [ after an error */

/* parser.y: parses f->src into f->items, reporting to d. */
void parser_run(AstFile *f, DiagSink *d);
}

%code {
#include <inttypes.h>
#include <string.h>

struct ParseCtx {
    AstFile  *file;
    Arena    *arena;
    DiagSink *diag;
    LexState  lx;
    PtrVec    items;          /* AstItem *, in source order */
    Token     pending;        /* the next token, held back when it starts the next item */
    bool      has_pending;
    bool      done;           /* the real end of input was handed to the parser */
    bool      unit_ended;     /* this yyparse() call has been given its end token */
    int       unit_tokens;    /* tokens handed out in this yyparse() call */
    int       unit_kind;      /* the first token of this item: TK_KERNEL, TK_FN, ... */
    Token     tok;            /* the last token handed out: the look-ahead at an error */
    Token     prev;           /* the token before it */
    bool      depth_reported; /* the nesting-depth error is reported once per file */
};

/* The bison stack is allocated on the heap and grows to this many entries. Brackets are
 * limited to AST_MAX_DEPTH by the lexer; only long chains of prefix operators (`- - - x`)
 * or of right-associative `^` can reach this, and they get a clean error. */
#define YYMAXDEPTH 50000

static int  yylex(YYSTYPE *val, YYLTYPE *loc, ParseCtx *cx);
static void yyerror(YYLTYPE *loc, ParseCtx *cx, const char *msg);

static PtrVec  *vec_new(ParseCtx *cx);
static PtrVec  *vec_push(ParseCtx *cx, PtrVec *v, void *item);
static void    *vec_to_array(ParseCtx *cx, const PtrVec *v, size_t elem_size);

static AstExpr *ex_new(ParseCtx *cx, AstExprKind kind, Span span);
static AstExpr *ex_int(ParseCtx *cx, int64_t v, Span span);
static AstExpr *ex_float(ParseCtx *cx, double v, Span span);
static AstExpr *ex_bool(ParseCtx *cx, bool v, Span span);
static AstExpr *ex_name(ParseCtx *cx, const char *name, Span span);
static AstExpr *ex_unary(ParseCtx *cx, AstOp op, AstExpr *a, Span span);
static AstExpr *ex_binary(ParseCtx *cx, AstOp op, AstExpr *a, AstExpr *b, Span span);
static AstExpr *ex_pad(ParseCtx *cx, AstExpr *a, AstExpr *b, Span span);
static AstExpr *ex_index(ParseCtx *cx, AstExpr *base, PtrVec *idx, Span span);
static AstExpr *ex_call(ParseCtx *cx, const char *name, Span name_span, PtrVec *args, Span span);
static AstExpr *ex_reduce(ParseCtx *cx, ReduceOp op, PtrVec *rvars, AstExpr *body, Span span);

static AstType     *type_new(ParseCtx *cx, const char *dtype, Span dtype_span, PtrVec *dims,
                             Span span);
static AstDim      *dim_new(ParseCtx *cx, AstExpr *size);
static AstParam    *param_new(ParseCtx *cx, const char *name, Span name_span, AstType *type,
                              PtrVec *annots);
static AstAnnot    *annot_new(ParseCtx *cx, const char *name, PtrVec *args, Span span);
static AstAnnotArg *arg_new(ParseCtx *cx, const char *key, AstExpr *value, Span span);
static AstRVar     *rvar_new(ParseCtx *cx, const char *name, Span name_span, AstExpr *range);
static AstStmt     *stmt_def(ParseCtx *cx, const char *name, Span name_span, PtrVec *idx,
                             AstExpr *rhs, Span span);
static AstStmt     *stmt_return(ParseCtx *cx, AstExpr *rhs, Span span);
static AstStmt     *stmt_scan(ParseCtx *cx, const char *var, Span var_span, AstExpr *extent,
                              bool reverse, PtrVec *states, PtrVec *body, Span span);
static AstState    *state_new(ParseCtx *cx, const char *name, Span name_span, AstType *type,
                              AstExpr *init);
static AstItem     *item_new(ParseCtx *cx, AstItemKind kind, Span span);
static void         item_set_params(ParseCtx *cx, AstItem *it, PtrVec *params);
static void         item_set_body(AstItem *it, PtrVec *body);
static AstDirective *directive_new(ParseCtx *cx, const char *name, Span span, PtrVec *args);
static AstSchedArg *sched_arg_new(ParseCtx *cx, const char *var, Span var_span);
static void         add_item(ParseCtx *cx, AstItem *it);
}

%define api.pure full
%define api.prefix {tdsl_yy}
%define api.token.prefix {TK_}
%define api.location.type {Span}
%define parse.error custom
%define parse.lac full
%locations
%param {ParseCtx *cx}
%expect 0

%initial-action { memset(&@$, 0, sizeof @$); }

%union {
    int64_t       ival;
    double        fval;
    char         *str;
    bool          flag;
    AstOp         op;
    ReduceOp      rop;
    PtrVec       *vec;
    AstExpr      *expr;
    AstType      *type;
    AstDim       *dim;
    AstParam     *param;
    AstAnnot     *annot;
    AstAnnotArg  *arg;
    AstRVar      *rvar;
    AstStmt      *stmt;
    AstState     *state;
    AstItem      *item;
    AstDirective *dir;
    AstSchedArg  *sarg;
}

/* The quoted names are what error messages show (without the double quotes). */
%token END 0 "end of input"
%token NEWLINE "end of line"
%token <str> IDENT "identifier"
%token <ival> INT "integer"
%token <fval> FLOAT "number"
%token <str> STRING "string"
%token <rop> REDUCE "reduction"
%token IMPORT "'import'" CONST "'const'" FN "'fn'" KERNEL "'kernel'" SCHEDULE "'schedule'"
%token RETURN "'return'" SCAN "'scan'" WITH "'with'" REVERSE "'reverse'" WHERE "'where'"
%token AND "'and'" OR "'or'" NOT "'not'" TRUE "'true'" FALSE "'false'" INF "'inf'" NAN "'nan'"
%token ARROW "'->'" ELLIPSIS "'...'" PAD "'??'"
%token LE "'<='" GE "'>='" EQ "'=='" NE "'!='"

%type <item> item import const fn kernel schedule
%type <vec> outputs output_list params_opt param_list annots dims_opt dim_list block
%type <vec> stmts_opt stmt_list state_list directives_opt directive_list sched_args_opt
%type <vec> sched_arg_list index_list args_opt arg_list rvar_list
%type <param> output param
%type <annot> annot
%type <type> type
%type <dim> dim
%type <expr> dim_add dim_mul dim_atom expr or_expr and_expr not_expr cmp_expr add_expr
%type <expr> mul_expr unary_expr pow_expr pad_expr pad_operand postfix index primary
%type <op> cmp_op
%type <stmt> stmt
%type <state> state
%type <dir> directive
%type <sarg> sched_arg
%type <arg> arg
%type <rvar> rvar
%type <flag> reverse_opt

%%

/* One yyparse() call parses one item; END is the next item's keyword or the real end. */
unit
    : END
    | item END                      { add_item(cx, $1); }
    | item NEWLINE error END        { add_item(cx, $1); }
    | error END
    ;

/* A complete item, a block's `}` or a statement's end of line means the parser is back
 * in step after an error, so the next error is reported even if it comes within three
 * tokens (yyerrok): each broken line gets its own message. */
item
    : import                        { $$ = $1; yyerrok; }
    | const                         { $$ = $1; yyerrok; }
    | fn                            { $$ = $1; yyerrok; }
    | kernel                        { $$ = $1; yyerrok; }
    | schedule                      { $$ = $1; yyerrok; }
    ;

import
    : IMPORT STRING                 { $$ = item_new(cx, AI_IMPORT, @$); $$->path = $2; }
    ;

const
    : CONST IDENT '=' expr
        {
            $$ = item_new(cx, AI_CONST, span_join(@1, @2));
            $$->name = $2;
            $$->name_span = @2;
            $$->value = $4;
        }
    ;

fn
    : FN IDENT '(' params_opt ')' ARROW type block
        {
            $$ = item_new(cx, AI_FN, span_join(@1, @2));
            $$->name = $2;
            $$->name_span = @2;
            item_set_params(cx, $$, $4);
            $$->ret = *$7;
            item_set_body($$, $8);
        }
    ;

kernel
    : KERNEL IDENT '(' params_opt ')' ARROW outputs block
        {
            $$ = item_new(cx, AI_KERNEL, span_join(@1, @2));
            $$->name = $2;
            $$->name_span = @2;
            item_set_params(cx, $$, $4);
            $$->outputs = vec_to_array(cx, $7, sizeof(AstParam));
            $$->noutputs = $7->len;
            item_set_body($$, $8);
        }
    ;

outputs
    : output                        { $$ = vec_push(cx, vec_new(cx), $1); }
    | '(' output_list ')'           { $$ = $2; }
    ;

output_list
    : output                        { $$ = vec_push(cx, vec_new(cx), $1); }
    | output_list ',' output        { $$ = vec_push(cx, $1, $3); }
    ;

output
    : IDENT ':' type                { $$ = param_new(cx, $1, @1, $3, NULL); }
    ;

params_opt
    : %empty                        { $$ = vec_new(cx); }
    | param_list
    ;

param_list
    : param                         { $$ = vec_push(cx, vec_new(cx), $1); }
    | param_list ',' param          { $$ = vec_push(cx, $1, $3); }
    ;

param
    : IDENT ':' type annots         { $$ = param_new(cx, $1, @1, $3, $4); }
    ;

annots
    : %empty                        { $$ = vec_new(cx); }
    | annots annot                  { $$ = vec_push(cx, $1, $2); }
    ;

annot
    : '@' IDENT                     { $$ = annot_new(cx, $2, NULL, @$); }
    | '@' IDENT '(' args_opt ')'    { $$ = annot_new(cx, $2, $4, @$); }
    ;

type
    : IDENT                         { $$ = type_new(cx, $1, @1, NULL, @$); }
    | IDENT '[' dims_opt ']'        { $$ = type_new(cx, $1, @1, $3, @$); }
    ;

dims_opt
    : %empty                        { $$ = vec_new(cx); }
    | dim_list
    ;

dim_list
    : dim                           { $$ = vec_push(cx, vec_new(cx), $1); }
    | dim_list ',' dim              { $$ = vec_push(cx, $1, $3); }
    ;

dim
    : ELLIPSIS                      { $$ = dim_new(cx, NULL); }
    | dim_add                       { $$ = dim_new(cx, $1); }
    ;

dim_add
    : dim_mul
    | dim_add '+' dim_mul           { $$ = ex_binary(cx, AOP_ADD, $1, $3, @$); }
    | dim_add '-' dim_mul           { $$ = ex_binary(cx, AOP_SUB, $1, $3, @$); }
    ;

dim_mul
    : dim_atom
    | dim_mul '*' dim_atom          { $$ = ex_binary(cx, AOP_MUL, $1, $3, @$); }
    | dim_mul '/' dim_atom          { $$ = ex_binary(cx, AOP_DIV, $1, $3, @$); }
    ;

dim_atom
    : INT                           { $$ = ex_int(cx, $1, @$); }
    | IDENT                         { $$ = ex_name(cx, $1, @$); }
    | '(' dim_add ')'               { $$ = $2; $$->span = @$; }
    ;

block
    : '{' stmts_opt '}'             { $$ = $2; yyerrok; }
    ;

stmts_opt
    : %empty                        { $$ = vec_new(cx); }
    | stmt_list
    ;

/* A statement lost to a syntax error is NULL and is left out of the list. */
stmt_list
    : stmt                          { $$ = vec_push(cx, vec_new(cx), $1); }
    | stmt_list NEWLINE { yyerrok; } stmt  { $$ = vec_push(cx, $1, $4); }
    ;

stmt
    : IDENT '=' expr                        { $$ = stmt_def(cx, $1, @1, NULL, $3, @$); }
    | IDENT '[' index_list ']' '=' expr     { $$ = stmt_def(cx, $1, @1, $3, $6, @$); }
    | RETURN expr                           { $$ = stmt_return(cx, $2, @$); }
    | SCAN IDENT '<' add_expr reverse_opt WITH state_list block
        { $$ = stmt_scan(cx, $2, @2, $4, $5, $7, $8, span_join(@1, @7)); }
    | SCAN error block                      { $$ = NULL; }  /* still check the body */
    | error                                 { $$ = NULL; }
    ;

reverse_opt
    : %empty                        { $$ = false; }
    | REVERSE                       { $$ = true; }
    ;

state_list
    : state                         { $$ = vec_push(cx, vec_new(cx), $1); }
    | state_list ',' state          { $$ = vec_push(cx, $1, $3); }
    ;

state
    : IDENT ':' type '=' expr       { $$ = state_new(cx, $1, @1, $3, $5); }
    ;

schedule
    : SCHEDULE IDENT '{' directives_opt '}'
        {
            $$ = item_new(cx, AI_SCHEDULE, span_join(@1, @2));
            $$->name = $2;
            $$->name_span = @2;
            $$->directives = vec_to_array(cx, $4, sizeof(AstDirective));
            $$->ndirectives = $4->len;
        }
    ;

directives_opt
    : %empty                        { $$ = vec_new(cx); }
    | directive_list
    ;

directive_list
    : directive                     { $$ = vec_push(cx, vec_new(cx), $1); }
    | directive_list NEWLINE { yyerrok; } directive  { $$ = vec_push(cx, $1, $4); }
    ;

directive
    : IDENT sched_args_opt          { $$ = directive_new(cx, $1, @1, $2); }
    | error                         { $$ = NULL; }
    ;

sched_args_opt
    : %empty                        { $$ = vec_new(cx); }
    | sched_arg_list
    ;

sched_arg_list
    : sched_arg                     { $$ = vec_push(cx, vec_new(cx), $1); }
    | sched_arg_list ',' sched_arg  { $$ = vec_push(cx, $1, $3); }
    ;

sched_arg
    : IDENT                         { $$ = sched_arg_new(cx, $1, @1); }
    | IDENT INT
        {
            $$ = sched_arg_new(cx, $1, @1);
            $$->has_factor = true;
            $$->factor = $2;
            $$->factor_span = @2;
        }
    ;

/* Expressions, lowest precedence first (LANGUAGE.md section 6). */
expr
    : or_expr
    ;

or_expr
    : and_expr
    | or_expr OR and_expr           { $$ = ex_binary(cx, AOP_OR, $1, $3, @$); }
    ;

and_expr
    : not_expr
    | and_expr AND not_expr         { $$ = ex_binary(cx, AOP_AND, $1, $3, @$); }
    ;

not_expr
    : cmp_expr
    | NOT not_expr                  { $$ = ex_unary(cx, AOP_NOT, $2, @$); }
    ;

/* Comparisons do not chain: `a < b < c` is a syntax error. */
cmp_expr
    : add_expr
    | add_expr cmp_op add_expr      { $$ = ex_binary(cx, $2, $1, $3, @$); }
    ;

cmp_op
    : '<'                           { $$ = AOP_LT; }
    | LE                            { $$ = AOP_LE; }
    | '>'                           { $$ = AOP_GT; }
    | GE                            { $$ = AOP_GE; }
    | EQ                            { $$ = AOP_EQ; }
    | NE                            { $$ = AOP_NE; }
    ;

add_expr
    : mul_expr
    | add_expr '+' mul_expr         { $$ = ex_binary(cx, AOP_ADD, $1, $3, @$); }
    | add_expr '-' mul_expr         { $$ = ex_binary(cx, AOP_SUB, $1, $3, @$); }
    ;

mul_expr
    : unary_expr
    | mul_expr '*' unary_expr       { $$ = ex_binary(cx, AOP_MUL, $1, $3, @$); }
    | mul_expr '/' unary_expr       { $$ = ex_binary(cx, AOP_DIV, $1, $3, @$); }
    | mul_expr '%' unary_expr       { $$ = ex_binary(cx, AOP_MOD, $1, $3, @$); }
    | mul_expr '@' unary_expr       { $$ = ex_binary(cx, AOP_MATMUL, $1, $3, @$); }
    ;

unary_expr
    : pow_expr
    | '-' unary_expr                { $$ = ex_unary(cx, AOP_NEG, $2, @$); }
    ;

/* `^` is right-associative and binds tighter than unary minus: -x^2 is -(x^2), and
 * 2^-1 is allowed. */
pow_expr
    : pad_expr
    | pad_expr '^' unary_expr       { $$ = ex_binary(cx, AOP_POW, $1, $3, @$); }
    ;

/* `x[i - 1] ?? 0`: the pad value may carry a sign (`?? -inf`). */
pad_expr
    : postfix
    | postfix PAD pad_operand       { $$ = ex_pad(cx, $1, $3, @$); }
    ;

pad_operand
    : postfix
    | '-' pad_operand               { $$ = ex_unary(cx, AOP_NEG, $2, @$); }
    ;

postfix
    : primary
    | postfix '[' index_list ']'    { $$ = ex_index(cx, $1, $3, @$); }
    ;

index_list
    : index                         { $$ = vec_push(cx, vec_new(cx), $1); }
    | index_list ',' index          { $$ = vec_push(cx, $1, $3); }
    ;

index
    : expr
    | ELLIPSIS                      { $$ = ex_new(cx, AX_ELLIPSIS, @$); }
    ;

primary
    : INT                           { $$ = ex_int(cx, $1, @$); }
    | FLOAT                         { $$ = ex_float(cx, $1, @$); }
    | INF                           { $$ = ex_float(cx, __builtin_inf(), @$); }
    | NAN                           { $$ = ex_float(cx, __builtin_nan(""), @$); }
    | TRUE                          { $$ = ex_bool(cx, true, @$); }
    | FALSE                         { $$ = ex_bool(cx, false, @$); }
    | IDENT                         { $$ = ex_name(cx, $1, @$); }
    | IDENT '(' args_opt ')'        { $$ = ex_call(cx, $1, @1, $3, @$); }
    | WHERE '(' args_opt ')'        { $$ = ex_call(cx, "where", @1, $3, @$); }
    | REDUCE '[' rvar_list ']' '(' expr ')'   { $$ = ex_reduce(cx, $1, $3, $6, @$); }
    | '(' expr ')'                  { $$ = $2; $$->span = @$; }
    ;

args_opt
    : %empty                        { $$ = vec_new(cx); }
    | arg_list
    ;

arg_list
    : arg                           { $$ = vec_push(cx, vec_new(cx), $1); }
    | arg_list ',' arg              { $$ = vec_push(cx, $1, $3); }
    ;

/* Call arguments and annotation arguments: `expr` or `name = expr`. */
arg
    : expr                          { $$ = arg_new(cx, NULL, $1, @$); }
    | IDENT '=' expr                { $$ = arg_new(cx, $1, $3, @$); }
    ;

rvar_list
    : rvar                          { $$ = vec_push(cx, vec_new(cx), $1); }
    | rvar_list ',' rvar            { $$ = vec_push(cx, $1, $3); }
    ;

rvar
    : IDENT                         { $$ = rvar_new(cx, $1, @1, NULL); }
    | IDENT '<' add_expr            { $$ = rvar_new(cx, $1, @1, $3); }
    ;

%%

/* ---- the token stream of one item ----------------------------------------------------- */

/* Hands the parser the next token, but an item keyword after the first token of this call
 * becomes END: the keyword stays pending and starts the next yyparse() call. */
static int yylex(YYSTYPE *val, YYLTYPE *loc, ParseCtx *cx)
{
    if (!cx->has_pending) {
        lex_next(&cx->lx, &cx->pending);
        cx->has_pending = true;
    }
    Token t = cx->pending;
    if (t.kind == TK_END) {
        cx->done = true;
        cx->unit_ended = true;
    } else if (lex_is_item_keyword(t.kind) && cx->unit_tokens > 0) {
        t.kind = TK_END;
        cx->unit_ended = true;
    } else {
        cx->has_pending = false;
    }
    if (cx->unit_tokens == 0) cx->unit_kind = t.kind;
    cx->unit_tokens++;
    cx->prev = cx->tok;
    cx->tok = t;
    *val = t.val;
    *loc = t.span;
    return t.kind;
}

/* After the parser gave up on an item without reading its end: skips to the next item. */
static void skip_to_next_item(ParseCtx *cx)
{
    for (;;) {
        if (!cx->has_pending) {
            lex_next(&cx->lx, &cx->pending);
            cx->has_pending = true;
        }
        if (cx->pending.kind == TK_END) {
            cx->done = true;
            return;
        }
        if (lex_is_item_keyword(cx->pending.kind)) return;
        cx->has_pending = false;
    }
}

void parser_run(AstFile *f, DiagSink *d)
{
    ParseCtx cx;
    memset(&cx, 0, sizeof cx);
    cx.file = f;
    cx.arena = &f->arena;
    cx.diag = d;
    lex_init(&cx.lx, &f->src, &f->arena, d);
    while (!cx.done) {
        cx.unit_ended = false;
        cx.unit_tokens = 0;
        cx.lx.quiet = false;
        yyparse(&cx);
        if (!cx.unit_ended) skip_to_next_item(&cx);
    }
    lex_destroy(&cx.lx);
    f->items = (AstItem **)cx.items.items;
    f->nitems = cx.items.len;
}

/* ---- syntax error messages -------------------------------------------------------------- */

enum { SHOW_MAX = 40 };   /* longest token text quoted in a message */

/* Source text for a message: cut short, with control bytes escaped so that a string
 * token cannot garble the terminal. */
static void put_source(const ParseCtx *cx, Span span, StrBuf *sb)
{
    const SrcFile *src = &cx->file->src;
    size_t n = span.off <= src->len ? src->len - span.off : 0;
    if (n > span.len) n = span.len;
    for (size_t i = 0; i < n && i < SHOW_MAX; i++) {
        unsigned char c = (unsigned char)src->text[span.off + i];
        if (c < 32 || c == 127) sb_printf(sb, "\\x%02x", c);
        else sb_putc(sb, (char)c);
    }
    if (n > SHOW_MAX) sb_puts(sb, "...");
}

/* The token as the user wrote it: 'kernel', identifier 'x', end of line. */
static void describe_token(const ParseCtx *cx, const Token *t, StrBuf *sb)
{
    switch (t->kind) {
    case TK_END:
        if (t->span.len == 0) {
            sb_puts(sb, "end of input");
            return;
        }
        break;   /* the next item's keyword */
    case TK_NEWLINE: sb_puts(sb, "end of line"); return;
    case TK_IDENT: sb_puts(sb, "identifier "); break;
    case TK_INT:
    case TK_FLOAT: sb_puts(sb, "number "); break;
    case TK_STRING:
        sb_puts(sb, "string ");
        put_source(cx, t->span, sb);
        return;
    default: break;
    }
    sb_putc(sb, '\'');
    put_source(cx, t->span, sb);
    sb_putc(sb, '\'');
}

/* The name of a token kind as declared above (bison may keep the double quotes). */
static void put_symbol_name(yysymbol_kind_t sym, StrBuf *sb)
{
    const char *s = yysymbol_name(sym);
    size_t n = strlen(s);
    if (n >= 2 && s[0] == '"' && s[n - 1] == '"') sb_putn(sb, s + 1, n - 2);
    else sb_puts(sb, s);
}

typedef struct Expected {
    yysymbol_kind_t sym[YYNTOKENS];
    int             n;
} Expected;

static bool expects(const Expected *e, int token)
{
    yysymbol_kind_t s = YYTRANSLATE(token);
    for (int i = 0; i < e->n; i++)
        if (e->sym[i] == s) return true;
    return false;
}

/* Tokens that only continue an expression (and `=` of a named argument): left out of
 * "expected ..." lists after an operand, where every operator would bury the useful
 * choices. */
static bool is_continuation(yysymbol_kind_t sym)
{
    static const int tokens[] = {'+', '-', '*', '/', '%', '^', '@', '<', '>', '[', '(', '=',
                                 TK_LE, TK_GE, TK_EQ, TK_NE, TK_AND, TK_OR, TK_PAD};
    for (int i = 0; i < TD_COUNTOF(tokens); i++)
        if (sym == YYTRANSLATE(tokens[i])) return true;
    return false;
}

static bool is_keyword(int token)
{
    switch (token) {
    case TK_IMPORT: case TK_CONST: case TK_FN: case TK_KERNEL: case TK_SCHEDULE:
    case TK_RETURN: case TK_SCAN: case TK_WITH: case TK_REVERSE: case TK_WHERE: case TK_AND:
    case TK_OR: case TK_NOT: case TK_TRUE: case TK_FALSE: case TK_INF: case TK_NAN:
        return true;
    default:
        return false;
    }
}

static bool is_comparison(int token)
{
    return token == '<' || token == '>' || token == TK_LE || token == TK_GE || token == TK_EQ ||
           token == TK_NE;
}

static char closer_of(char open) { return open == '(' ? ')' : open == '[' ? ']' : '}'; }

/* "X, Y or Z" from the expected tokens, without expression continuations when an operand
 * was just completed, and with `}` folded into "end of line". Returns how many it named. */
static int list_expected(const Expected *e, StrBuf *sb)
{
    bool after_operand = expects(e, '+');
    bool newline = expects(e, TK_NEWLINE) || expects(e, TK_END);
    yysymbol_kind_t names[YYNTOKENS];
    int n = 0;
    if (newline) names[n++] = YYTRANSLATE(TK_NEWLINE);
    for (int i = 0; i < e->n; i++) {
        yysymbol_kind_t s = e->sym[i];
        if (s == YYTRANSLATE(TK_NEWLINE) || s == YYTRANSLATE(TK_END)) continue;
        if (newline && s == YYTRANSLATE('}')) continue;
        if (after_operand && is_continuation(s)) continue;
        names[n++] = s;
    }
    for (int i = 0; i < n; i++) {
        if (i > 0) sb_puts(sb, i == n - 1 ? " or " : ", ");
        put_symbol_name(names[i], sb);
    }
    return n;
}

static void report(ParseCtx *cx, const Span *at, const Expected *e, const char *found)
{
    const Token *tok = &cx->tok;
    int k = tok->kind;
    const LexOpen *o = &tok->open;
    char closer = o->ch ? closer_of(o->ch) : 0;
    StrBuf prev = {0};
    describe_token(cx, &cx->prev, &prev);
    bool have_prev = cx->prev.span.file != NULL && cx->prev.kind != TK_NEWLINE;

    if (k == TK_EQ && expects(e, '=')) {
        diag_error(cx->diag, *at, "expected '=', found '=='");
        diag_help(cx->diag, "a definition uses a single `=`; `==` compares two values");
    } else if (k == '=' && expects(e, '+')) {
        diag_error(cx->diag, *at, "unexpected '=' in an expression");
        diag_help(cx->diag, "to compare two values, use `==`");
    } else if (expects(e, TK_ARROW)) {
        diag_error(cx->diag, *at, "expected '->' after the parameter list, found %s", found);
        if (cx->unit_kind == TK_FN)
            diag_help(cx->diag, "give the return type, e.g. `-> f32[N]`");
        else
            diag_help(cx->diag, "name the output, e.g. `-> y: f32[N]`");
    } else if (closer && expects(e, closer) &&
               (k == TK_END || (o->ch != '{' &&
                                (k == TK_NEWLINE || k == TK_ARROW || k == '{' || k == '}' ||
                                 k == ')' || k == ']' || cx->prev.span.line < tok->span.line)))) {
        /* The bracket was never closed: the look-ahead cannot be inside it, or it is on a
         * later line than the token before it, where the user meant a new line to start. */
        diag_error(cx->diag, *at, "expected '%c' to close '%c' opened at %u:%u, found %s",
                   closer, o->ch, o->span.line, o->span.col, found);
        if (o->ch != '{') lex_close_lines(&cx->lx);
    } else if (expects(e, TK_FLOAT)) {
        if (have_prev)
            diag_error(cx->diag, *at, "expected an expression after %s, found %s",
                       sb_cstr(&prev), found);
        else
            diag_error(cx->diag, *at, "expected an expression, found %s", found);
        if (k == TK_NEWLINE && is_continuation(YYTRANSLATE(cx->prev.kind)))
            diag_help(cx->diag, "a line continues only while ( or [ is open; put the "
                                "expression in parentheses to break it");
    } else if (expects(e, TK_SCAN)) {
        diag_error(cx->diag, *at, "expected a statement, found %s", found);
    } else if (expects(e, TK_KERNEL) || e->n == 0) {
        diag_error(cx->diag, *at,
                   "expected an item (import, const, fn, kernel or schedule), found %s", found);
        if (k == TK_IDENT || k == TK_RETURN || k == TK_SCAN)
            diag_help(cx->diag, "statements belong inside the body of a kernel or fn");
    } else if ((k == ')' || k == ']') && (o->ch == 0 || o->ch == '{')) {
        char want = k == ')' ? '(' : k == ']' ? '[' : '{';
        diag_error(cx->diag, *at, "unexpected %s with no matching '%c'", found, want);
    } else if (is_comparison(k) && expects(e, '+')) {
        diag_error(cx->diag, *at, "comparisons cannot be chained");
        diag_help(cx->diag, "write `a < b and b < c`");
    } else {
        StrBuf list = {0};
        if (list_expected(e, &list) > 0)
            diag_error(cx->diag, *at, "expected %s, found %s", sb_cstr(&list), found);
        else
            diag_error(cx->diag, *at, "unexpected %s", found);
        sb_free(&list);
        if (expects(e, TK_WITH))
            diag_help(cx->diag, "a scan declares its state: `scan t < T with h: f32[K] = 0 { ... }`");
        else if (expects(e, TK_STRING))
            diag_help(cx->diag, "the module is named by a string: `import \"nn\"`");
    }

    if (k == TK_STRING && !expects(e, TK_STRING) && cx->unit_kind != TK_IMPORT)
        diag_help(cx->diag, "strings appear only after `import`");
    else if (is_keyword(k) && expects(e, TK_IDENT))
        diag_help(cx->diag, "%s is a reserved word and cannot be used as a name", found);
    sb_free(&prev);
}

static int yyreport_syntax_error(const yypcontext_t *yyctx, ParseCtx *cx)
{
    if (cx->lx.fatal) return 0;   /* the lexer reported why the input stopped */
    cx->lx.quiet = true;
    Expected e;
    e.n = yypcontext_expected_tokens(yyctx, e.sym, YYNTOKENS);
    if (e.n < 0) e.n = 0;
    StrBuf found = {0};
    describe_token(cx, &cx->tok, &found);
    report(cx, yypcontext_location(yyctx), &e, sb_cstr(&found));
    sb_free(&found);
    return 0;
}

/* Bison calls this only when its stack is exhausted. */
static void yyerror(YYLTYPE *loc, ParseCtx *cx, const char *msg)
{
    (void)msg;
    if (cx->lx.fatal) return;
    diag_error(cx->diag, *loc, "this is nested too deeply to parse (more than %d open constructs)",
               YYMAXDEPTH);
}

/* ---- building the tree ------------------------------------------------------------------- */

static PtrVec *vec_new(ParseCtx *cx) { return arena_alloc(cx->arena, sizeof(PtrVec)); }

/* NULL items (statements lost to a syntax error) are left out. */
static PtrVec *vec_push(ParseCtx *cx, PtrVec *v, void *item)
{
    if (item) pv_push(cx->arena, v, item);
    return v;
}

/* Copies a vector of pointers to structs into an array of the structs. */
static void *vec_to_array(ParseCtx *cx, const PtrVec *v, size_t elem_size)
{
    if (!v || v->len == 0) return NULL;
    char *a = arena_array(cx->arena, (size_t)v->len, elem_size);
    for (int i = 0; i < v->len; i++) memcpy(a + (size_t)i * elem_size, v->items[i], elem_size);
    return a;
}

static AstExpr *ex_new(ParseCtx *cx, AstExprKind kind, Span span)
{
    AstExpr *e = arena_alloc(cx->arena, sizeof *e);
    e->kind = kind;
    e->span = span;
    e->depth = 1;
    return e;
}

static int child_depth(const AstExpr *c, int depth) { return c && c->depth > depth ? c->depth : depth; }

/* Sets e's depth from its children. Past AST_MAX_DEPTH it reports once and returns the
 * deepest child instead of e, so no tree is ever deeper than the limit. */
static AstExpr *ex_finish(ParseCtx *cx, AstExpr *e)
{
    int d = child_depth(e->a, 0);
    d = child_depth(e->b, d);
    for (int i = 0; i < e->nargs; i++) d = child_depth(e->args[i], d);
    for (int i = 0; i < e->nrvars; i++) d = child_depth(e->rvars[i].range, d);
    if (d < AST_MAX_DEPTH) {
        e->depth = d + 1;
        return e;
    }
    if (!cx->depth_reported) {
        cx->depth_reported = true;
        diag_error(cx->diag, e->span, "expression is nested too deeply (more than %d levels)",
                   AST_MAX_DEPTH);
    }
    const AstExpr *deepest = e->a;
    if (e->b && (!deepest || e->b->depth > deepest->depth)) deepest = e->b;
    for (int i = 0; i < e->nargs; i++)
        if (!deepest || e->args[i]->depth > deepest->depth) deepest = e->args[i];
    for (int i = 0; i < e->nrvars; i++)
        if (e->rvars[i].range && (!deepest || e->rvars[i].range->depth > deepest->depth))
            deepest = e->rvars[i].range;
    return (AstExpr *)deepest;
}

static AstExpr *ex_int(ParseCtx *cx, int64_t v, Span span)
{
    AstExpr *e = ex_new(cx, AX_INT, span);
    e->ival = v;
    return e;
}

static AstExpr *ex_float(ParseCtx *cx, double v, Span span)
{
    AstExpr *e = ex_new(cx, AX_FLOAT, span);
    e->fval = v;
    return e;
}

static AstExpr *ex_bool(ParseCtx *cx, bool v, Span span)
{
    AstExpr *e = ex_new(cx, AX_BOOL, span);
    e->ival = v;
    return e;
}

static AstExpr *ex_name(ParseCtx *cx, const char *name, Span span)
{
    AstExpr *e = ex_new(cx, AX_NAME, span);
    e->name = name;
    return e;
}

static AstExpr *ex_unary(ParseCtx *cx, AstOp op, AstExpr *a, Span span)
{
    AstExpr *e = ex_new(cx, AX_UNARY, span);
    e->op = op;
    e->a = a;
    return ex_finish(cx, e);
}

static AstExpr *ex_binary(ParseCtx *cx, AstOp op, AstExpr *a, AstExpr *b, Span span)
{
    AstExpr *e = ex_new(cx, AX_BINARY, span);
    e->op = op;
    e->a = a;
    e->b = b;
    return ex_finish(cx, e);
}

/* `a ?? b` pads an access, so a must be one; anything else is reported here and the
 * `??` dropped, so later passes only ever see an AX_INDEX on the left. */
static AstExpr *ex_pad(ParseCtx *cx, AstExpr *a, AstExpr *b, Span span)
{
    if (a->kind != AX_INDEX) {
        diag_error(cx->diag, a->span, "the left side of `??` must be an indexed access");
        diag_help(cx->diag, "`??` pads an indexed access like x[i - 1] ?? 0");
        return a;
    }
    AstExpr *e = ex_new(cx, AX_PAD, span);
    e->a = a;
    e->b = b;
    return ex_finish(cx, e);
}

static AstExpr *ex_index(ParseCtx *cx, AstExpr *base, PtrVec *idx, Span span)
{
    AstExpr *e = ex_new(cx, AX_INDEX, span);
    e->a = base;
    e->args = (AstExpr **)idx->items;
    e->nargs = idx->len;
    return ex_finish(cx, e);
}

static AstExpr *ex_call(ParseCtx *cx, const char *name, Span name_span, PtrVec *args, Span span)
{
    AstExpr *e = ex_new(cx, AX_CALL, span);
    e->name = name;
    e->name_span = name_span;
    e->nargs = args->len;
    if (args->len > 0) e->args = arena_array(cx->arena, (size_t)args->len, sizeof *e->args);
    bool named = false;
    for (int i = 0; i < args->len; i++) {
        const AstAnnotArg *a = args->items[i];
        e->args[i] = a->value;
        named |= a->key != NULL;
    }
    if (named) {
        e->argnames = arena_array(cx->arena, (size_t)args->len, sizeof *e->argnames);
        for (int i = 0; i < args->len; i++) e->argnames[i] = ((AstAnnotArg *)args->items[i])->key;
    }
    return ex_finish(cx, e);
}

static AstExpr *ex_reduce(ParseCtx *cx, ReduceOp op, PtrVec *rvars, AstExpr *body, Span span)
{
    AstExpr *e = ex_new(cx, AX_REDUCE, span);
    e->rop = op;
    e->a = body;
    e->rvars = vec_to_array(cx, rvars, sizeof(AstRVar));
    e->nrvars = rvars->len;
    return ex_finish(cx, e);
}

static AstType *type_new(ParseCtx *cx, const char *dtype, Span dtype_span, PtrVec *dims,
                         Span span)
{
    AstType *t = arena_alloc(cx->arena, sizeof *t);
    t->dtype = dtype;
    t->dtype_span = dtype_span;
    t->span = span;
    if (dims) {
        t->has_brackets = true;
        t->dims = vec_to_array(cx, dims, sizeof(AstDim));
        t->ndims = dims->len;
    }
    return t;
}

static AstDim *dim_new(ParseCtx *cx, AstExpr *size)
{
    AstDim *d = arena_alloc(cx->arena, sizeof *d);
    d->ellipsis = size == NULL;
    d->size = size;
    return d;
}

static AstParam *param_new(ParseCtx *cx, const char *name, Span name_span, AstType *type,
                           PtrVec *annots)
{
    AstParam *p = arena_alloc(cx->arena, sizeof *p);
    p->name = name;
    p->name_span = name_span;
    p->type = *type;
    p->annots = vec_to_array(cx, annots, sizeof(AstAnnot));
    p->nannots = annots ? annots->len : 0;
    return p;
}

static AstAnnot *annot_new(ParseCtx *cx, const char *name, PtrVec *args, Span span)
{
    AstAnnot *a = arena_alloc(cx->arena, sizeof *a);
    a->name = name;
    a->span = span;
    a->args = vec_to_array(cx, args, sizeof(AstAnnotArg));
    a->nargs = args ? args->len : 0;
    return a;
}

static AstAnnotArg *arg_new(ParseCtx *cx, const char *key, AstExpr *value, Span span)
{
    AstAnnotArg *a = arena_alloc(cx->arena, sizeof *a);
    a->key = key;
    a->value = value;
    a->span = span;
    return a;
}

static AstRVar *rvar_new(ParseCtx *cx, const char *name, Span name_span, AstExpr *range)
{
    AstRVar *r = arena_alloc(cx->arena, sizeof *r);
    r->name = name;
    r->span = name_span;
    r->range = range;
    return r;
}

static AstStmt *stmt_new(ParseCtx *cx, AstStmtKind kind, Span span)
{
    AstStmt *s = arena_alloc(cx->arena, sizeof *s);
    s->kind = kind;
    s->span = span;
    return s;
}

/* The left-hand indices are parsed as expressions so that `y[i + 1] = ...` gets a clear
 * error; only names and `...` are kept. */
static AstStmt *stmt_def(ParseCtx *cx, const char *name, Span name_span, PtrVec *idx,
                         AstExpr *rhs, Span span)
{
    AstStmt *s = stmt_new(cx, AS_DEF, span);
    s->name = name;
    s->name_span = name_span;
    s->rhs = rhs;
    if (!idx) return s;
    s->indexed = true;
    s->nidx = idx->len;
    s->idx = arena_array(cx->arena, (size_t)idx->len, sizeof *s->idx);
    for (int i = 0; i < idx->len; i++) {
        const AstExpr *e = idx->items[i];
        s->idx[i].span = e->span;
        if (e->kind == AX_NAME) {
            s->idx[i].name = e->name;
        } else if (e->kind == AX_ELLIPSIS) {
            s->idx[i].name = NULL;
        } else {
            diag_error(cx->diag, e->span, "an index on the left of `=` must be a name or `...`");
            diag_help(cx->diag, "each left-hand index is a fresh variable; write the arithmetic "
                                "on the right-hand side, e.g. `y[i] = x[i + 1]`");
            s->idx[i].name = "_";
        }
    }
    return s;
}

static AstStmt *stmt_return(ParseCtx *cx, AstExpr *rhs, Span span)
{
    AstStmt *s = stmt_new(cx, AS_RETURN, span);
    s->rhs = rhs;
    return s;
}

static AstStmt *stmt_scan(ParseCtx *cx, const char *var, Span var_span, AstExpr *extent,
                          bool reverse, PtrVec *states, PtrVec *body, Span span)
{
    AstStmt *s = stmt_new(cx, AS_SCAN, span);
    s->var = var;
    s->var_span = var_span;
    s->extent = extent;
    s->reverse = reverse;
    s->states = vec_to_array(cx, states, sizeof(AstState));
    s->nstates = states->len;
    s->body = (AstStmt **)body->items;
    s->nbody = body->len;
    return s;
}

static AstState *state_new(ParseCtx *cx, const char *name, Span name_span, AstType *type,
                           AstExpr *init)
{
    AstState *st = arena_alloc(cx->arena, sizeof *st);
    st->name = name;
    st->name_span = name_span;
    st->type = *type;
    st->init = init;
    return st;
}

static AstItem *item_new(ParseCtx *cx, AstItemKind kind, Span span)
{
    AstItem *it = arena_alloc(cx->arena, sizeof *it);
    it->kind = kind;
    it->span = span;
    return it;
}

static void item_set_params(ParseCtx *cx, AstItem *it, PtrVec *params)
{
    it->params = vec_to_array(cx, params, sizeof(AstParam));
    it->nparams = params->len;
}

static void item_set_body(AstItem *it, PtrVec *body)
{
    it->body = (AstStmt **)body->items;
    it->nbody = body->len;
}

static AstDirective *directive_new(ParseCtx *cx, const char *name, Span span, PtrVec *args)
{
    AstDirective *d = arena_alloc(cx->arena, sizeof *d);
    d->name = name;
    d->span = span;
    d->args = vec_to_array(cx, args, sizeof(AstSchedArg));
    d->nargs = args->len;
    return d;
}

static AstSchedArg *sched_arg_new(ParseCtx *cx, const char *var, Span var_span)
{
    AstSchedArg *a = arena_alloc(cx->arena, sizeof *a);
    a->var = var;
    a->var_span = var_span;
    return a;
}

static void add_item(ParseCtx *cx, AstItem *it) { pv_push(cx->arena, &cx->items, it); }

/* ---- token dump (`tcc --emit=tokens`, lexer tests) ----------------------------------------- */

void ast_dump_tokens(const char *path, const char *text, size_t len, DiagSink *d, StrBuf *out)
{
    SrcFile src = {(char *)path, (char *)text, len};
    Arena arena;
    arena_init(&arena);
    LexState lx;
    lex_init(&lx, &src, &arena, d);
    for (;;) {
        Token t;
        lex_next(&lx, &t);
        sb_printf(out, "%u:%u ", t.span.line, t.span.col);
        put_symbol_name(YYTRANSLATE(t.kind), out);
        switch (t.kind) {
        case TK_IDENT: sb_printf(out, " %s", t.val.str); break;
        case TK_STRING: sb_printf(out, " \"%s\"", t.val.str); break;
        case TK_INT: sb_printf(out, " %" PRId64, t.val.ival); break;
        case TK_FLOAT: sb_printf(out, " %.9g", t.val.fval); break;
        case TK_REDUCE: sb_printf(out, " %s", ast_reduce_name(t.val.rop)); break;
        default: break;
        }
        sb_putc(out, '\n');
        if (t.kind == TK_END) break;
    }
    lex_destroy(&lx);
    arena_free(&arena);
}
