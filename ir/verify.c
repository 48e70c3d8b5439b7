/* verify: checks that a tensor-IR module is well formed (the invariants listed in ir.h).
 *
 * Runs after the front end and between passes in debug builds, so it must never crash on
 * malformed IR: every pointer is checked before it is followed. Each problem becomes one
 * line `kernel K: <what>` in err; the walk goes on after a problem to report the others.
 *
 * What it checks, per kernel:
 *   - every Expr has a valid op and dtype, the op's arity, and operand types that fit the
 *     op (arithmetic: operands share the node's type; comparisons give bool; logic on bool;
 *     select's condition is bool; index expressions and extents are i64);
 *   - an access has one index per axis of its tensor and reads a tensor already defined
 *     (inputs and scan states are defined on entry; a tensor defined in a scan body stays
 *     visible after the scan only when indexed by the scan variable);
 *   - a Def has one index var per axis of its destination, each VAR_INDEX whose extent is
 *     the axis size, or the VAR_SCAN of an enclosing scan; reduction vars are VAR_REDUCE;
 *     a variable is used only inside the statement (or scan) that binds it;
 *   - every tensor is defined at most once, every output exactly once, every scan state's
 *     `next` inside its scan body. */
#include "ir.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

typedef struct Verifier {
    const Kernel *k;
    StrBuf       *err;
    bool          ok;
    int           nids;       /* 1 + the largest Var/Tensor id seen */
    uint8_t      *defined;    /* per tensor id: readable at this point */
    uint8_t      *ndefs;      /* per tensor id: Defs seen so far (saturates at 255) */
    uint8_t      *in_scope;   /* per var id: usable at this point */
    const Scan  **scans;      /* enclosing scans, outermost first */
    int           nscans;
    int           maxscans;
    const char   *where;      /* the tensor whose statement is being checked, for messages */
} Verifier;

static void problem(Verifier *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void problem(Verifier *v, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sb_printf(v->err, "kernel %s: ", v->k->name ? v->k->name : "?");
    if (v->where) sb_printf(v->err, "%s: ", v->where);
    sb_vprintf(v->err, fmt, ap);
    sb_putc(v->err, '\n');
    va_end(ap);
    v->ok = false;
}

static bool id_ok(const Verifier *v, int id) { return id >= 0 && id < v->nids; }

/* ---- the id pre-pass: sizes the per-id tables ---------------------------------------------- */

static void note_id(Verifier *v, int id)
{
    if (id >= v->nids) v->nids = id + 1;
}

static void note_expr(Verifier *v, const Expr *e, int depth)
{
    if (!e) return;
    if (e->var) note_id(v, e->var->id);
    if (e->tensor) note_id(v, e->tensor->id);
    note_expr(v, e->pad, depth);
    if (e->args)
        for (int i = 0; i < e->nargs; i++) note_expr(v, e->args[i], depth);
}

static void note_var(Verifier *v, const Var *x)
{
    if (!x) return;
    note_id(v, x->id);
    note_expr(v, x->extent, 0);
}

static void note_tensor(Verifier *v, const Tensor *t)
{
    if (!t) return;
    note_id(v, t->id);
    if (t->shape && t->rank > 0 && t->rank <= IR_MAX_RANK)
        for (int a = 0; a < t->rank; a++) note_expr(v, t->shape[a], 0);
}

static void note_stmt(Verifier *v, const Stmt *s, int depth)
{
    if (!s) return;
    if (s->kind == STMT_DEF) {
        const Def *d = &s->def;
        note_tensor(v, d->dst);
        if (d->dst && d->idx && d->dst->rank > 0 && d->dst->rank <= IR_MAX_RANK)
            for (int a = 0; a < d->dst->rank; a++) note_var(v, d->idx[a]);
        if (d->red)
            for (int r = 0; r < d->nred; r++) note_var(v, d->red[r]);
        note_expr(v, d->body, 0);
        return;
    }
    const Scan *sc = &s->scan;
    if (depth + 1 > v->maxscans) v->maxscans = depth + 1;
    note_var(v, sc->var);
    for (int i = 0; sc->states && i < sc->nstates; i++) {
        note_tensor(v, sc->states[i].state);
        note_tensor(v, sc->states[i].next);
        note_tensor(v, sc->states[i].init_tensor);
        note_expr(v, sc->states[i].init_value, 0);
    }
    for (int i = 0; sc->body && i < sc->nbody; i++) note_stmt(v, sc->body[i], depth + 1);
}

/* ---- expressions -------------------------------------------------------------------------------- */

static bool is_num(DType t) { return t != DT_BOOL; }

static void check_expr(Verifier *v, const Expr *e);

/* A DT_I64 expression over size variables and integer constants. */
static void check_size(Verifier *v, const Expr *e, const char *what)
{
    if (!e) {
        problem(v, "%s is missing", what);
        return;
    }
    if (e->type != DT_I64) problem(v, "%s has type %s, not i64", what,
                                   (unsigned)e->type < DT_COUNT ? dtype_name(e->type) : "?");
    if (e->op == OP_VAR) {
        bool is_size = false;
        for (int i = 0; i < v->k->nsizes; i++) is_size |= v->k->sizes[i] == e->var;
        if (!is_size)
            problem(v, "%s uses %s, which is not a size of the kernel", what,
                    e->var && e->var->name ? e->var->name : "a null variable");
        return;
    }
    if (e->op == OP_CONST) return;
    if (e->op != OP_ADD && e->op != OP_SUB && e->op != OP_MUL && e->op != OP_DIV &&
        e->op != OP_MOD && e->op != OP_NEG && e->op != OP_MIN && e->op != OP_MAX) {
        problem(v, "%s uses %s, which a size expression may not", what,
                (unsigned)e->op < OP_COUNT ? op_name(e->op) : "a bad op");
        return;
    }
    if (!e->args || e->nargs != op_arity(e->op)) {
        problem(v, "%s has a %s with %d operands", what, op_name(e->op), e->nargs);
        return;
    }
    for (int i = 0; i < e->nargs; i++) check_size(v, e->args[i], what);
}

static void check_const(Verifier *v, const Expr *e)
{
    if (dtype_is_float(e->type)) {
        double x = e->value.f;
        if (x == x && dtype_round_f(e->type, x) != x)
            problem(v, "constant %.17g is not representable in %s", x, dtype_name(e->type));
    } else if (dtype_wrap_i(e->type, e->value.i) != e->value.i) {
        problem(v, "constant %lld is out of range for %s", (long long)e->value.i,
                dtype_name(e->type));
    }
}

static void check_var_use(Verifier *v, const Expr *e)
{
    if (!e->var) {
        problem(v, "variable expression without a variable");
        return;
    }
    if (!id_ok(v, e->var->id) || !v->in_scope[e->var->id])
        problem(v, "uses variable %s outside its scope", e->var->name ? e->var->name : "?");
    if (e->type != DT_I64) problem(v, "variable %s has type %s, not i64", e->var->name,
                                   dtype_name(e->type));
}

static void check_access(Verifier *v, const Expr *e)
{
    const Tensor *t = e->tensor;
    if (!t) {
        problem(v, "access without a tensor");
        return;
    }
    if (e->nargs != t->rank)
        problem(v, "access to %s has %d indices but %s has rank %d", t->name, e->nargs,
                t->name, t->rank);
    if (e->type != t->dtype)
        problem(v, "access to %s has type %s but %s is %s", t->name, dtype_name(e->type),
                t->name, dtype_name(t->dtype));
    if (!id_ok(v, t->id) || !v->defined[t->id])
        problem(v, "reads %s before it is defined", t->name);
    for (int i = 0; i < e->nargs; i++)
        if (e->args[i]->type != DT_I64)
            problem(v, "index %d of %s has type %s, not i64", i, t->name,
                    dtype_name(e->args[i]->type));
    if (e->pad) {
        check_expr(v, e->pad);
        if (e->pad->type != t->dtype)
            problem(v, "pad value of %s has type %s, not %s", t->name, dtype_name(e->pad->type),
                    dtype_name(t->dtype));
    }
}

/* Operand-type rules of each op; operands are already checked and non-null. */
static void check_types(Verifier *v, const Expr *e)
{
    DType t = e->type;
    const char *name = op_name(e->op);
    DType a0 = e->nargs > 0 ? e->args[0]->type : t;
    switch (e->op) {
    case OP_CONST: check_const(v, e); return;
    case OP_VAR: check_var_use(v, e); return;
    case OP_ACCESS: check_access(v, e); return;
    case OP_CAST: return;  /* any dtype to any dtype */
    case OP_NOT:
        if (t != DT_BOOL || a0 != DT_BOOL) problem(v, "not needs bool, got %s", dtype_name(a0));
        return;
    case OP_ISNAN:
        if (t != DT_BOOL || !is_num(a0)) problem(v, "isnan needs a number and gives bool");
        return;
    case OP_EXP: case OP_LOG: case OP_EXP2: case OP_LOG2: case OP_SQRT: case OP_RSQRT:
    case OP_SIN: case OP_COS: case OP_TANH: case OP_SIGMOID: case OP_ERF:
        if (!dtype_is_float(t) || a0 != t)
            problem(v, "%s needs a float operand of its own type, got %s -> %s", name,
                    dtype_name(a0), dtype_name(t));
        return;
    case OP_NEG: case OP_ABS: case OP_FLOOR: case OP_CEIL: case OP_ROUND: case OP_TRUNC:
    case OP_SIGN: case OP_ADD: case OP_SUB: case OP_MUL: case OP_DIV: case OP_MOD:
    case OP_POW: case OP_MIN: case OP_MAX: case OP_CLAMP: case OP_FMA:
        if (!is_num(t)) problem(v, "%s on bool", name);
        for (int i = 0; i < e->nargs; i++)
            if (e->args[i]->type != t)
                problem(v, "%s of type %s has an operand of type %s", name, dtype_name(t),
                        dtype_name(e->args[i]->type));
        return;
    case OP_LT: case OP_LE: case OP_GT: case OP_GE: case OP_EQ: case OP_NE:
        if (t != DT_BOOL) problem(v, "comparison %s gives %s, not bool", name, dtype_name(t));
        if (e->args[1]->type != a0)
            problem(v, "comparison %s of %s and %s", name, dtype_name(a0),
                    dtype_name(e->args[1]->type));
        return;
    case OP_AND: case OP_OR:
        if (t != DT_BOOL || a0 != DT_BOOL || e->args[1]->type != DT_BOOL)
            problem(v, "%s needs bool operands and gives bool", name);
        return;
    case OP_SELECT:
        if (a0 != DT_BOOL) problem(v, "select condition has type %s, not bool", dtype_name(a0));
        if (e->args[1]->type != t || e->args[2]->type != t)
            problem(v, "select of type %s has branches %s and %s", dtype_name(t),
                    dtype_name(e->args[1]->type), dtype_name(e->args[2]->type));
        return;
    case OP_COUNT: break;
    }
    problem(v, "bad op %d", (int)e->op);
}

static void check_expr(Verifier *v, const Expr *e)
{
    if (!e) {
        problem(v, "missing expression");
        return;
    }
    if ((unsigned)e->op >= OP_COUNT || (unsigned)e->type >= DT_COUNT) {
        problem(v, "expression with bad op %d or dtype %d", (int)e->op, (int)e->type);
        return;
    }
    int arity = op_arity(e->op);
    int want = arity >= 0 ? arity : (e->tensor ? e->tensor->rank : e->nargs);
    if (e->op != OP_ACCESS && e->nargs != want) {
        problem(v, "%s has %d operands, not %d", op_name(e->op), e->nargs, want);
        return;
    }
    if (e->nargs > 0 && !e->args) {
        problem(v, "%s without operands", op_name(e->op));
        return;
    }
    for (int i = 0; i < e->nargs; i++) {
        if (!e->args[i]) {
            problem(v, "%s has a missing operand", op_name(e->op));
            return;
        }
    }
    for (int i = 0; i < e->nargs; i++) check_expr(v, e->args[i]);
    check_types(v, e);
}

/* ---- statements ---------------------------------------------------------------------------------- */

static bool in_enclosing_scan(const Verifier *v, const Var *x)
{
    for (int i = 0; i < v->nscans; i++)
        if (v->scans[i]->var == x) return true;
    return false;
}

static bool is_enclosing_state(const Verifier *v, const Tensor *t)
{
    for (int i = 0; i < v->nscans; i++)
        for (int j = 0; j < v->scans[i]->nstates; j++)
            if (v->scans[i]->states[j].state == t) return true;
    return false;
}

static bool var_ok(Verifier *v, const Var *x, const char *what)
{
    if (!x) {
        problem(v, "%s is missing", what);
        return false;
    }
    if (!id_ok(v, x->id)) {
        problem(v, "%s %s has a bad id %d", what, x->name, x->id);
        return false;
    }
    return true;
}

static void check_idx(Verifier *v, const Def *d)
{
    const Tensor *t = d->dst;
    if (t->rank && !d->idx) {
        problem(v, "definition without index variables");
        return;
    }
    for (int a = 0; a < t->rank; a++) {
        const Var *x = d->idx[a];
        if (!var_ok(v, x, "index variable")) continue;
        for (int b = 0; b < a; b++)
            if (d->idx[b] == x) problem(v, "index variable %s appears twice", x->name);
        if (x->kind == VAR_SCAN) {
            if (!in_enclosing_scan(v, x))
                problem(v, "scan variable %s indexes %s outside its scan", x->name, t->name);
            else if (!ir_exprs_equal(x->extent, t->shape[a]))
                problem(v, "axis %d is indexed by scan variable %s whose extent is not the axis size",
                        a, x->name);
        } else if (x->kind == VAR_INDEX) {
            check_size(v, x->extent, "index extent");
            if (!ir_exprs_equal(x->extent, t->shape[a]))
                problem(v, "index %s does not range over axis %d of %s", x->name, a, t->name);
            v->in_scope[x->id] = 1;
        } else {
            problem(v, "index variable %s is neither an index nor a scan variable", x->name);
        }
    }
}

static void check_red(Verifier *v, const Def *d)
{
    if ((d->rop == RED_NONE) != (d->nred == 0))
        problem(v, "reduction op and reduction variables disagree (%d variables)", d->nred);
    if (d->nred && !d->red) {
        problem(v, "reduction without variables");
        return;
    }
    for (int r = 0; r < d->nred; r++) {
        const Var *x = d->red[r];
        if (!var_ok(v, x, "reduction variable")) continue;
        if (x->kind != VAR_REDUCE) problem(v, "reduction variable %s is not VAR_REDUCE", x->name);
        if (v->in_scope[x->id]) problem(v, "reduction variable %s is already bound", x->name);
        check_size(v, x->extent, "reduction extent");
        v->in_scope[x->id] = 1;
    }
}

/* The dtype rules between a reduction's body and its destination. */
static void check_def_types(Verifier *v, const Def *d)
{
    DType body = d->body->type, dst = d->dst->dtype;
    switch (d->rop) {
    case RED_NONE: case RED_MAX: case RED_MIN:
        if (body != dst) problem(v, "body has type %s but %s is %s", dtype_name(body),
                                 d->dst->name, dtype_name(dst));
        return;
    case RED_SUM: case RED_PROD: case RED_MEAN:
        if (body != dst || body == DT_BOOL)
            problem(v, "sum/prod/mean of %s into %s (needs one numeric type)", dtype_name(body),
                    dtype_name(dst));
        return;
    case RED_ARGMAX: case RED_ARGMIN:
        if (dst != DT_I32 || body == DT_BOOL)
            problem(v, "arg reduction of %s into %s (needs a number into i32)", dtype_name(body),
                    dtype_name(dst));
        return;
    case RED_ANY: case RED_ALL:
        if (body != DT_BOOL || dst != DT_BOOL)
            problem(v, "any/all of %s into %s (needs bool into bool)", dtype_name(body),
                    dtype_name(dst));
        return;
    }
    problem(v, "bad reduction op %d", (int)d->rop);
}

static void unscope_def(Verifier *v, const Def *d)
{
    for (int a = 0; d->idx && a < d->dst->rank; a++)
        if (d->idx[a] && id_ok(v, d->idx[a]->id) && d->idx[a]->kind != VAR_SCAN)
            v->in_scope[d->idx[a]->id] = 0;
    for (int r = 0; d->red && r < d->nred; r++)
        if (d->red[r] && id_ok(v, d->red[r]->id)) v->in_scope[d->red[r]->id] = 0;
}

static void check_def(Verifier *v, const Def *d)
{
    const Tensor *t = d->dst;
    if (!t || !id_ok(v, t->id) || t->rank < 0 || t->rank > IR_MAX_RANK) {
        problem(v, "definition of a missing or malformed tensor");
        return;
    }
    v->where = t->name;
    if (t->kind == TK_INPUT) problem(v, "defines an input");
    if (is_enclosing_state(v, t)) problem(v, "defines scan state %s directly, not its next", t->name);
    if (v->ndefs[t->id] == 1 && t->kind != TK_OUTPUT) problem(v, "defined more than once");
    if (v->ndefs[t->id] < 255) v->ndefs[t->id]++;
    check_idx(v, d);
    check_red(v, d);
    check_expr(v, d->body);
    if (d->body && (unsigned)d->body->type < DT_COUNT) check_def_types(v, d);
    unscope_def(v, d);
    v->defined[t->id] = 1;
    v->where = NULL;
}

static void check_stmt(Verifier *v, const Stmt *s);

static bool same_type(const Tensor *a, const Tensor *b)
{
    if (a->dtype != b->dtype || a->rank != b->rank) return false;
    for (int i = 0; i < a->rank; i++)
        if (!ir_exprs_equal(a->shape[i], b->shape[i])) return false;
    return true;
}

static void check_state_init(Verifier *v, const ScanState *st)
{
    if (!st->state || !id_ok(v, st->state->id)) {
        problem(v, "scan state without a tensor");
        return;
    }
    v->where = st->state->name;
    if (st->state->kind != TK_STATE) problem(v, "scan state is not a TK_STATE tensor");
    if ((st->init_value == NULL) == (st->init_tensor == NULL))
        problem(v, "needs exactly one of an initial value and an initial tensor");
    if (st->init_value) {
        check_expr(v, st->init_value);
        if (st->init_value->op != OP_CONST || st->init_value->type != st->state->dtype)
            problem(v, "initial value is not a %s constant", dtype_name(st->state->dtype));
    }
    if (st->init_tensor) {
        if (!id_ok(v, st->init_tensor->id) || !v->defined[st->init_tensor->id])
            problem(v, "initial tensor %s is not defined", st->init_tensor->name);
        else if (!same_type(st->init_tensor, st->state))
            problem(v, "initial tensor %s does not have the state's type", st->init_tensor->name);
    }
    if (st->next && !same_type(st->next, st->state))
        problem(v, "next value %s does not have the state's type", st->next->name);
    v->defined[st->state->id] = 1;
    v->where = NULL;
}

/* After a scan, what its body defined stays visible only when indexed by the scan var. */
static void hide_step_locals(Verifier *v, const Scan *sc, Stmt *const *body, int n)
{
    for (int i = 0; i < n; i++) {
        const Stmt *s = body[i];
        if (!s) continue;
        if (s->kind == STMT_SCAN) {
            hide_step_locals(v, sc, s->scan.body, s->scan.body ? s->scan.nbody : 0);
            continue;
        }
        const Def *d = &s->def;
        if (!d->dst || !id_ok(v, d->dst->id)) continue;
        bool collected = false;
        for (int a = 0; d->idx && a < d->dst->rank; a++) collected |= d->idx[a] == sc->var;
        if (!collected) v->defined[d->dst->id] = 0;
    }
}

static void check_scan(Verifier *v, const Scan *sc)
{
    if (!var_ok(v, sc->var, "scan variable")) return;
    if (sc->var->kind != VAR_SCAN) problem(v, "scan variable %s is not VAR_SCAN", sc->var->name);
    check_size(v, sc->var->extent, "scan extent");
    if (sc->nstates && !sc->states) {
        problem(v, "scan without its states");
        return;
    }
    for (int i = 0; i < sc->nstates; i++) check_state_init(v, &sc->states[i]);
    v->scans[v->nscans++] = sc;
    v->in_scope[sc->var->id] = 1;
    for (int i = 0; sc->body && i < sc->nbody; i++) check_stmt(v, sc->body[i]);
    v->in_scope[sc->var->id] = 0;
    v->nscans--;
    for (int i = 0; i < sc->nstates; i++) {
        const ScanState *st = &sc->states[i];
        if (st->next && (!id_ok(v, st->next->id) || v->ndefs[st->next->id] == 0))
            problem(v, "scan state %s: its next value %s is never defined in the body",
                    st->state ? st->state->name : "?", st->next->name);
    }
    hide_step_locals(v, sc, sc->body, sc->body ? sc->nbody : 0);
}

static void check_stmt(Verifier *v, const Stmt *s)
{
    if (!s) {
        problem(v, "missing statement");
        return;
    }
    switch (s->kind) {
    case STMT_DEF: check_def(v, &s->def); return;
    case STMT_SCAN: check_scan(v, &s->scan); return;
    }
    problem(v, "bad statement kind %d", (int)s->kind);
}

/* ---- kernels -------------------------------------------------------------------------------------- */

static void check_tensor_decl(Verifier *v, const Tensor *t, TensorKind want, const char *role)
{
    if (!t) {
        problem(v, "missing %s", role);
        return;
    }
    v->where = t->name;
    if (t->kind != want && !(want == TK_TEMP && t->kind == TK_STATE))
        problem(v, "listed as %s but has kind %d", role, (int)t->kind);
    if (t->rank < 0 || t->rank > IR_MAX_RANK || (t->rank && !t->shape))
        problem(v, "bad rank %d", t->rank);
    else
        for (int a = 0; a < t->rank; a++) check_size(v, t->shape[a], "shape");
    if ((unsigned)t->dtype >= DT_COUNT) problem(v, "bad dtype %d", (int)t->dtype);
    v->where = NULL;
}

static bool listed(Tensor *const *ts, int n, const Tensor *t)
{
    for (int i = 0; i < n; i++)
        if (ts[i] == t) return true;
    return false;
}

static void check_defs_listed(Verifier *v, Stmt *const *stmts, int n)
{
    for (int i = 0; i < n; i++) {
        const Stmt *s = stmts[i];
        if (!s) continue;
        if (s->kind == STMT_SCAN) {
            for (int j = 0; s->scan.states && j < s->scan.nstates; j++)
                if (s->scan.states[j].state &&
                    !listed(v->k->temps, v->k->ntemps, s->scan.states[j].state))
                    problem(v, "scan state %s is not listed in the kernel's temps",
                            s->scan.states[j].state->name);
            if (s->scan.body) check_defs_listed(v, s->scan.body, s->scan.nbody);
            continue;
        }
        const Tensor *t = s->def.dst;
        if (t && t->kind != TK_OUTPUT && !listed(v->k->temps, v->k->ntemps, t))
            problem(v, "%s is defined but not listed in the kernel's temps", t->name);
    }
}

static void verify_kernel(const Kernel *k, StrBuf *err, bool *ok)
{
    Verifier v = {.k = k, .err = err, .ok = true};
    for (int i = 0; i < k->nsizes; i++) note_var(&v, k->sizes[i]);
    for (int i = 0; i < k->nins; i++) note_tensor(&v, k->ins[i]);
    for (int i = 0; i < k->nouts; i++) note_tensor(&v, k->outs[i]);
    for (int i = 0; i < k->ntemps; i++) note_tensor(&v, k->temps[i]);
    for (int i = 0; i < k->nstmts; i++) note_stmt(&v, k->stmts[i], 0);
    size_t n = (size_t)v.nids + 1;
    v.defined = calloc(n, 1);
    v.ndefs = calloc(n, 1);
    v.in_scope = calloc(n, 1);
    v.scans = calloc((size_t)v.maxscans + 1, sizeof *v.scans);
    if (!v.defined || !v.ndefs || !v.in_scope || !v.scans)
        td_internal_error(__FILE__, __LINE__, "out of memory");

    for (int i = 0; i < k->nsizes; i++) {
        if (!var_ok(&v, k->sizes[i], "size")) continue;
        if (k->sizes[i]->kind != VAR_SIZE) problem(&v, "size %s is not VAR_SIZE", k->sizes[i]->name);
        v.in_scope[k->sizes[i]->id] = 1;
    }
    for (int i = 0; i < k->nins; i++) {
        check_tensor_decl(&v, k->ins[i], TK_INPUT, "an input");
        if (k->ins[i] && id_ok(&v, k->ins[i]->id)) v.defined[k->ins[i]->id] = 1;
    }
    for (int i = 0; i < k->nouts; i++) check_tensor_decl(&v, k->outs[i], TK_OUTPUT, "an output");
    for (int i = 0; i < k->ntemps; i++) check_tensor_decl(&v, k->temps[i], TK_TEMP, "a temp");
    for (int i = 0; i < k->nstmts; i++) check_stmt(&v, k->stmts[i]);
    check_defs_listed(&v, k->stmts, k->nstmts);
    for (int i = 0; i < k->nouts; i++) {
        const Tensor *t = k->outs[i];
        if (!t || !id_ok(&v, t->id)) continue;
        if (v.ndefs[t->id] == 0) problem(&v, "output %s is never defined", t->name);
        if (v.ndefs[t->id] > 1) problem(&v, "output %s is defined more than once", t->name);
    }
    free(v.defined);
    free(v.ndefs);
    free(v.in_scope);
    free(v.scans);
    if (!v.ok) *ok = false;
}

bool ir_verify(const Module *m, StrBuf *err)
{
    bool ok = true;
    for (int i = 0; i < m->nkernels; i++) {
        if (!m->kernels[i]) {
            sb_puts(err, "module: missing kernel\n");
            ok = false;
            continue;
        }
        verify_kernel(m->kernels[i], err, &ok);
    }
    return ok;
}
