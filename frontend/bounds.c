/* bounds: symbolic polynomials over size names, used to compare tensor dimensions and to
 * prove at compile time that every access stays inside its tensor (LANGUAGE.md section 7).
 *
 * An index expression is affine in index variables and size names (plus floor division
 * and remainder by positive constants). Its interval [lo, hi] over the variables' ranges
 * [0, extent - 1] is computed as two polynomials in the size names; an access is in
 * bounds when lo >= 0 and size - 1 - hi >= 0 are proved. A polynomial is proved
 * non-negative by substituting N = 1 + N' for every size name (sizes are at least 1) and
 * checking that every coefficient is then non-negative: sound, and complete for the
 * linear forms programs actually use. Floor divisions that do not simplify become opaque
 * atoms known only to be non-negative. */
#include "sema_internal.h"

#include <stdlib.h>
#include <string.h>

typedef struct Atom {
    const Var *size;   /* a size name, or NULL for an opaque atom */
    char      *text;   /* printed form: "N" or "(K - 1) / 128" */
    Poly      *num;    /* opaque atom floor(num / den), num >= 0 */
    int64_t    den;
} Atom;

struct Bounds {
    Atom *atoms;
    int   natoms;
    int   cap;
};

Bounds *bounds_new(void)
{
    Bounds *b = calloc(1, sizeof *b);
    if (!b) td_internal_error(__FILE__, __LINE__, "out of memory");
    return b;
}

void bounds_free(Bounds *b)
{
    if (!b) return;
    for (int i = 0; i < b->natoms; i++) {
        free(b->atoms[i].text);
        free(b->atoms[i].num);
    }
    free(b->atoms);
    free(b);
}

/* Size atoms are keyed by their Var; opaque atoms by (num, den), never by text: two
 * kernels' `K / 2` are different quantities. */
static int atom_intern(Bounds *b, const Var *size, const char *text, const Poly *num, int64_t den)
{
    for (int i = 0; i < b->natoms; i++) {
        const Atom *a = &b->atoms[i];
        if (size ? a->size == size : (!a->size && a->den == den && poly_equal(a->num, num))) return i;
    }
    if (b->natoms == b->cap) {
        b->cap = b->cap ? b->cap * 2 : 16;
        b->atoms = realloc(b->atoms, (size_t)b->cap * sizeof(Atom));
        if (!b->atoms) td_internal_error(__FILE__, __LINE__, "out of memory");
    }
    b->atoms[b->natoms].size = size;
    b->atoms[b->natoms].num = NULL;
    b->atoms[b->natoms].den = den;
    if (num) {
        b->atoms[b->natoms].num = malloc(sizeof(Poly));
        if (!b->atoms[b->natoms].num) td_internal_error(__FILE__, __LINE__, "out of memory");
        *b->atoms[b->natoms].num = *num;
    }
    b->atoms[b->natoms].text = strdup(text);
    if (!b->atoms[b->natoms].text) td_internal_error(__FILE__, __LINE__, "out of memory");
    return b->natoms++;
}

/* ---- polynomial arithmetic ------------------------------------------------------------------ */

static Poly poly_unknown(void)
{
    Poly p;
    memset(&p, 0, sizeof p);
    p.unknown = true;
    return p;
}

Poly poly_const(int64_t c)
{
    Poly p;
    memset(&p, 0, sizeof p);
    if (c != 0) {
        p.nterms = 1;
        p.terms[0].coef = c;
    }
    return p;
}

static Poly poly_atom(int id)
{
    Poly p = poly_const(1);
    p.terms[0].natoms = 1;
    p.terms[0].atoms[0] = id;
    return p;
}

static bool mono_equal(const PolyTerm *a, const PolyTerm *b)
{
    if (a->natoms != b->natoms) return false;
    for (int i = 0; i < a->natoms; i++)
        if (a->atoms[i] != b->atoms[i]) return false;
    return true;
}

static int mono_compare(const PolyTerm *a, const PolyTerm *b)
{
    if (a->natoms != b->natoms) return a->natoms > b->natoms ? -1 : 1;  /* higher degree first */
    for (int i = 0; i < a->natoms; i++)
        if (a->atoms[i] != b->atoms[i]) return a->atoms[i] < b->atoms[i] ? -1 : 1;
    return 0;
}

/* Adds coef * mono into p, keeping terms unique, non-zero and sorted. */
static void poly_accumulate(Poly *p, const PolyTerm *t, int64_t coef)
{
    if (p->unknown || coef == 0) return;
    for (int i = 0; i < p->nterms; i++) {
        if (mono_equal(&p->terms[i], t)) {
            if (!ck_add_i64(p->terms[i].coef, coef, &p->terms[i].coef)) {
                *p = poly_unknown();
                return;
            }
            if (p->terms[i].coef == 0) {
                memmove(&p->terms[i], &p->terms[i + 1], (size_t)(p->nterms - i - 1) * sizeof(PolyTerm));
                p->nterms--;
            }
            return;
        }
    }
    if (p->nterms == POLY_MAX_TERMS) {
        *p = poly_unknown();
        return;
    }
    int pos = p->nterms;
    while (pos > 0 && mono_compare(t, &p->terms[pos - 1]) < 0) pos--;
    memmove(&p->terms[pos + 1], &p->terms[pos], (size_t)(p->nterms - pos) * sizeof(PolyTerm));
    p->terms[pos] = *t;
    p->terms[pos].coef = coef;
    p->nterms++;
}

Poly poly_add(const Poly *a, const Poly *b)
{
    if (a->unknown || b->unknown) return poly_unknown();
    Poly p = *a;
    for (int i = 0; i < b->nterms; i++) poly_accumulate(&p, &b->terms[i], b->terms[i].coef);
    return p;
}

static Poly poly_scale(const Poly *a, int64_t c)
{
    if (a->unknown) return poly_unknown();
    Poly p = poly_const(0);
    for (int i = 0; i < a->nterms; i++) {
        int64_t coef;
        if (!ck_mul_i64(a->terms[i].coef, c, &coef)) return poly_unknown();
        poly_accumulate(&p, &a->terms[i], coef);
    }
    return p;
}

Poly poly_sub(const Poly *a, const Poly *b)
{
    Poly nb = poly_scale(b, -1);
    return poly_add(a, &nb);
}

Poly poly_mul(const Poly *a, const Poly *b)
{
    if (a->unknown || b->unknown) return poly_unknown();
    Poly p = poly_const(0);
    for (int i = 0; i < a->nterms; i++) {
        for (int j = 0; j < b->nterms; j++) {
            const PolyTerm *x = &a->terms[i], *y = &b->terms[j];
            if (x->natoms + y->natoms > POLY_MAX_DEGREE) return poly_unknown();
            PolyTerm t = {0};
            if (!ck_mul_i64(x->coef, y->coef, &t.coef)) return poly_unknown();
            /* merge the two sorted atom lists */
            int xi = 0, yi = 0;
            while (xi < x->natoms || yi < y->natoms) {
                if (yi == y->natoms || (xi < x->natoms && x->atoms[xi] <= y->atoms[yi]))
                    t.atoms[t.natoms++] = x->atoms[xi++];
                else
                    t.atoms[t.natoms++] = y->atoms[yi++];
            }
            poly_accumulate(&p, &t, t.coef);
            if (p.unknown) return p;
        }
    }
    return p;
}

bool poly_is_const(const Poly *p, int64_t *c)
{
    if (p->unknown) return false;
    if (p->nterms == 0) { *c = 0; return true; }
    if (p->nterms == 1 && p->terms[0].natoms == 0) { *c = p->terms[0].coef; return true; }
    return false;
}

bool poly_equal(const Poly *a, const Poly *b)
{
    if (a->unknown || b->unknown) return false;
    Poly d = poly_sub(a, b);
    return !d.unknown && d.nterms == 0;
}

/* Substitutes N = 1 + N' for every size atom: each monomial becomes the product of
 * (1 + a') over its size atoms, expanded. Opaque atoms stay as they are (>= 0). */
static bool nonneg_shifted(Bounds *b, const Poly *p)
{
    Poly shifted = poly_const(0);
    for (int i = 0; i < p->nterms; i++) {
        const PolyTerm *t = &p->terms[i];
        Poly prod = poly_const(t->coef);
        for (int k = 0; k < t->natoms; k++) {
            Poly factor = poly_atom(t->atoms[k]);
            if (b->atoms[t->atoms[k]].size) {
                Poly one = poly_const(1);
                factor = poly_add(&factor, &one);
            }
            prod = poly_mul(&prod, &factor);
        }
        shifted = poly_add(&shifted, &prod);
        if (shifted.unknown) return false;
    }
    for (int i = 0; i < shifted.nterms; i++)
        if (shifted.terms[i].coef < 0) return false;
    return true;
}

/* Eliminates one opaque atom a = floor(P / c), using P - c + 1 <= c*a <= P: c*p is at least
 * the polynomial where each term coef*M*a becomes coef*M*P (coef < 0) or coef*M*(P - c + 1)
 * (coef > 0); every other monomial M is non-negative because every atom is. */
static bool nonneg_depth(Bounds *b, const Poly *p, int depth)
{
    if (p->unknown) return false;
    if (nonneg_shifted(b, p)) return true;
    if (depth == 0) return false;
    int id = -1;
    for (int i = 0; i < p->nterms && id < 0; i++)
        for (int k = 0; k < p->terms[i].natoms; k++)
            if (!b->atoms[p->terms[i].atoms[k]].size) { id = p->terms[i].atoms[k]; break; }
    if (id < 0) return false;
    int64_t c = b->atoms[id].den;
    Poly upper = *b->atoms[id].num, cm1 = poly_const(c - 1);
    Poly lower = poly_sub(&upper, &cm1);
    Poly q = poly_const(0);
    for (int i = 0; i < p->nterms; i++) {
        const PolyTerm *t = &p->terms[i];
        PolyTerm rest = {0};
        int uses = 0;
        for (int k = 0; k < t->natoms; k++) {
            if (t->atoms[k] == id) uses++;
            else rest.atoms[rest.natoms++] = t->atoms[k];
        }
        if (uses > 1) return false;
        Poly mono = poly_const(0);
        poly_accumulate(&mono, &rest, t->coef);
        Poly term = uses == 0 ? poly_scale(&mono, c) : poly_mul(&mono, t->coef < 0 ? &upper : &lower);
        q = poly_add(&q, &term);
        if (q.unknown) return false;
    }
    return nonneg_depth(b, &q, depth - 1);
}

bool poly_nonneg(Bounds *b, const Poly *p) { return nonneg_depth(b, p, 6); }

void poly_print(Bounds *b, const Poly *p, StrBuf *out)
{
    if (p->unknown) { sb_puts(out, "?"); return; }
    if (p->nterms == 0) { sb_puts(out, "0"); return; }
    for (int i = 0; i < p->nterms; i++) {
        const PolyTerm *t = &p->terms[i];
        int64_t c = t->coef;
        if (i > 0) {
            sb_puts(out, c < 0 ? " - " : " + ");
            if (c < 0) c = -c;
        } else if (c < 0 && t->natoms > 0) {
            sb_puts(out, "-");
            c = -c;
        }
        if (t->natoms == 0 || c != 1) sb_printf(out, "%lld", (long long)c);
        for (int k = 0; k < t->natoms; k++) {
            bool product = t->natoms > 1 || c != 1;
            const Atom *a = &b->atoms[t->atoms[k]];
            if (k > 0 || c != 1) sb_puts(out, "*");
            sb_printf(out, product && !a->size ? "(%s)" : "%s", a->text);
        }
    }
}

/* ---- from IR expressions --------------------------------------------------------------------- */

static int64_t floor_div(int64_t a, int64_t c)
{
    int64_t q = a / c;
    if ((a % c != 0) && ((a < 0) != (c < 0))) q--;
    return q;
}

/* floor(p / c) for c > 0: exact when p = c*q + r with a constant r; otherwise an opaque
 * atom, which is only sound as a non-negative quantity when p itself is non-negative. */
static Poly poly_floordiv(Bounds *b, const Poly *p, int64_t c)
{
    if (p->unknown || c <= 0) return poly_unknown();
    int64_t k;
    if (poly_is_const(p, &k)) return poly_const(floor_div(k, c));
    Poly q = poly_const(0);
    int64_t r = 0;
    bool exact = true;
    for (int i = 0; i < p->nterms; i++) {
        const PolyTerm *t = &p->terms[i];
        if (t->natoms == 0) r = t->coef;
        else if (t->coef % c == 0) poly_accumulate(&q, t, t->coef / c);
        else exact = false;
    }
    if (exact) {
        Poly rc = poly_const(floor_div(r, c));
        return poly_add(&q, &rc);
    }
    if (!poly_nonneg(b, p)) return poly_unknown();
    StrBuf sb = {0};
    bool simple = p->nterms == 1 && p->terms[0].coef == 1 && p->terms[0].natoms == 1;
    if (!simple) sb_puts(&sb, "(");
    poly_print(b, p, &sb);
    sb_printf(&sb, simple ? " / %lld" : ") / %lld", (long long)c);
    int id = atom_intern(b, NULL, sb_cstr(&sb), p, c);
    sb_free(&sb);
    return poly_atom(id);
}

Poly poly_from_size(Bounds *b, const Expr *e)
{
    if (!e) return poly_unknown();
    if (e->op == OP_CONST) return poly_const(e->value.i);
    if (e->op == OP_VAR) {
        if (e->var->kind != VAR_SIZE) return poly_unknown();
        return poly_atom(atom_intern(b, e->var, e->var->name, NULL, 0));
    }
    if (e->op == OP_ADD || e->op == OP_SUB || e->op == OP_MUL) {
        Poly x = poly_from_size(b, e->args[0]), y = poly_from_size(b, e->args[1]);
        return e->op == OP_ADD ? poly_add(&x, &y) : e->op == OP_SUB ? poly_sub(&x, &y) : poly_mul(&x, &y);
    }
    if (e->op == OP_DIV) {
        Poly x = poly_from_size(b, e->args[0]), y = poly_from_size(b, e->args[1]);
        int64_t c;
        if (!poly_is_const(&y, &c) || c <= 0) return poly_unknown();
        return poly_floordiv(b, &x, c);
    }
    return poly_unknown();
}

bool sizes_equal(Bounds *b, const Expr *x, const Expr *y)
{
    if (x == y) return true;
    Poly px = poly_from_size(b, x), py = poly_from_size(b, y);
    return poly_equal(&px, &py);
}

/* Whether e uses an index, reduction or scan variable (not only size names). */
static bool has_loop_var(const Expr *e)
{
    if (!e) return false;
    if (e->op == OP_VAR) return e->var->kind != VAR_SIZE;
    for (int i = 0; i < e->nargs; i++)
        if (has_loop_var(e->args[i])) return true;
    return false;
}

bool index_interval(Bounds *b, const Expr *e, Poly *lo, Poly *hi)
{
    if (e->op == OP_CONST) {
        if (dtype_is_float(e->type)) return false;
        *lo = *hi = poly_const(e->value.i);
        return true;
    }
    if (e->op == OP_VAR) {
        if (e->var->kind == VAR_SIZE) {
            *lo = *hi = poly_atom(atom_intern(b, e->var, e->var->name, NULL, 0));
        } else {
            Poly ext = poly_from_size(b, e->var->extent), one = poly_const(1);
            *lo = poly_const(0);
            *hi = poly_sub(&ext, &one);
        }
        return !hi->unknown;
    }
    if (e->op == OP_NEG) {
        Poly l, h;
        if (!index_interval(b, e->args[0], &l, &h)) return false;
        Poly zero = poly_const(0);
        *lo = poly_sub(&zero, &h);
        *hi = poly_sub(&zero, &l);
        return true;
    }
    if (e->op == OP_ADD || e->op == OP_SUB) {
        Poly l1, h1, l2, h2;
        if (!index_interval(b, e->args[0], &l1, &h1) || !index_interval(b, e->args[1], &l2, &h2))
            return false;
        if (e->op == OP_ADD) { *lo = poly_add(&l1, &l2); *hi = poly_add(&h1, &h2); }
        else { *lo = poly_sub(&l1, &h2); *hi = poly_sub(&h1, &l2); }
        return !lo->unknown && !hi->unknown;
    }
    if (e->op == OP_MUL) {
        Poly l1, h1, l2, h2;
        if (!index_interval(b, e->args[0], &l1, &h1) || !index_interval(b, e->args[1], &l2, &h2))
            return false;
        int64_t c;
        if (poly_is_const(&l2, &c) && poly_equal(&l2, &h2)) {
            Poly s1 = poly_scale(&l1, c), s2 = poly_scale(&h1, c);
            *lo = c >= 0 ? s1 : s2;
            *hi = c >= 0 ? s2 : s1;
        } else if (poly_is_const(&l1, &c) && poly_equal(&l1, &h1)) {
            Poly s1 = poly_scale(&l2, c), s2 = poly_scale(&h2, c);
            *lo = c >= 0 ? s1 : s2;
            *hi = c >= 0 ? s2 : s1;
        } else if ((!has_loop_var(e->args[0]) || !has_loop_var(e->args[1])) && poly_nonneg(b, &l1) && poly_nonneg(b, &l2)) {
            /* i * D: affine in i (a size name is a coefficient), monotone in each factor */
            *lo = poly_mul(&l1, &l2);
            *hi = poly_mul(&h1, &h2);
        } else {
            return false;
        }
        return !lo->unknown && !hi->unknown;
    }
    if (e->op == OP_DIV || e->op == OP_MOD) {
        const Expr *d = e->args[1];
        if (d->op != OP_CONST || d->value.i <= 0) return false;
        int64_t c = d->value.i;
        Poly l, h;
        if (!index_interval(b, e->args[0], &l, &h)) return false;
        if (e->op == OP_DIV) {
            /* integer division truncates toward zero; equal to floor for non-negative values */
            if (!poly_nonneg(b, &l)) return false;
            *lo = poly_floordiv(b, &l, c);
            *hi = poly_floordiv(b, &h, c);
        } else {
            if (!poly_nonneg(b, &l)) return false;
            int64_t lc, hc;
            if (poly_is_const(&l, &lc) && poly_is_const(&h, &hc) && hc < c) {
                *lo = l;
                *hi = h;
            } else {
                *lo = poly_const(0);
                *hi = poly_const(c - 1);
            }
        }
        return !lo->unknown && !hi->unknown;
    }
    return false;
}
