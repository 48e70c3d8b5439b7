/* measure.c: the alternation engine of tdsl_bench, and what the suites build cases with.
 *
 * A case (bench_run_case) is set up once: inputs allocated, the tdsl kernel compiled with
 * tdsl_compile (timed, reported apart), the anchors prepared. Then every implementation is
 * called once to warm up; if that one tdsl call took longer than --max-call seconds and the
 * case has a smaller shape, the case starts again at that shape (and says so). A warm-up
 * call that took over WARM_SAMPLE_MS counts as the first sample (one-time costs are noise
 * against it, and the slow unfused kernels would otherwise double the run). Then REPS
 * rounds: each round calls every implementation once, the starting one rotating from round
 * to round so that none always runs right after the same neighbour. The median of each
 * implementation's times and the ratio anchor / tdsl are recorded (> 1: tdsl is faster).
 *
 * Takes: a Bench (thread count, options, output file) and a CaseDef. Gives: JSON lines
 * ("result", "compile", "notice") in b->records and table lines on stdout. Relies on: the
 * environment of this process (OMP_NUM_THREADS ...) having been set before it started. */
#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"
#include "support/support.h"

enum { WARM_SAMPLE_MS = 2000 };

double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---- JSON and notices --------------------------------------------------------------------- */

void json_put_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; s && *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\') fprintf(f, "\\%c", ch);
        else if (ch == '\n') fputs("\\n", f);
        else if (ch == '\t') fputs("\\t", f);
        else if (ch < 0x20) fprintf(f, "\\u%04x", ch);
        else fputc(ch, f);
    }
    fputc('"', f);
}

/* A JSON number, or null for a value that is not one (NaN, a negative "none" marker). */
static void json_put_num(FILE *f, double v)
{
    if (!isfinite(v) || v < 0) fputs("null", f);
    else fprintf(f, "%.6g", v);
}

void bench_notice(Bench *b, const char *fmt, ...)
{
    char text[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    fprintf(stderr, "notice: %s\n", text);
    fprintf(b->records, "{\"type\": \"notice\", \"threads\": %d, \"text\": ", b->threads);
    json_put_str(b->records, text);
    fputs("}\n", b->records);
    fflush(b->records);
    fprintf(b->table, "N %s\n", text);
    fflush(b->table);
}

/* ---- tensors -------------------------------------------------------------------------------- */

static float rng_uniform(uint64_t *s)
{
    /* xorshift64*: fast, and good enough for benchmark inputs */
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    uint64_t r = *s * 2685821657736338717ull;
    return (float)((double)(r >> 40) / (double)(1ull << 24));
}

Tensor *case_tensor_fill(Case *c, int ndim, const int64_t *shape, float lo, float hi)
{
    if (c->ntensors == BENCH_MAX_TENSORS || ndim > 8) return NULL;
    Tensor *t = &c->tensors[c->ntensors];
    memset(t, 0, sizeof *t);
    size_t n = 1;
    for (int i = 0; i < ndim; i++) {
        t->shape[i] = shape[i];
        if (!ck_mul_size(n, (size_t)shape[i], &n)) return NULL;
    }
    size_t bytes;
    if (!ck_mul_size(n, sizeof(float), &bytes)) return NULL;
    bytes = (bytes + 63) / 64 * 64;
    t->data = aligned_alloc(64, bytes ? bytes : 64);
    if (!t->data) return NULL;
    t->n = n;
    for (size_t i = 0; i < n; i++) t->data[i] = lo + (hi - lo) * rng_uniform(&c->b->rng);
    t->dl.data = t->data;
    t->dl.device.device_type = kDLCPU;
    t->dl.ndim = ndim;
    t->dl.dtype.code = kDLFloat;
    t->dl.dtype.bits = 32;
    t->dl.dtype.lanes = 1;
    t->dl.shape = t->shape;
    c->ntensors++;
    return t;
}

Tensor *case_tensor(Case *c, int ndim, const int64_t *shape)
{
    return case_tensor_fill(c, ndim, shape, -1.0f, 1.0f);
}

long case_param(const Case *c, const char *name)
{
    size_t len = strlen(name);
    for (const char *p = c->shape; *p;) {
        while (*p == ' ') p++;
        if (strncmp(p, name, len) == 0 && p[len] == '=') return strtol(p + len + 1, NULL, 10);
        while (*p && *p != ' ') p++;
    }
    return -1;
}

/* ---- tdsl ---------------------------------------------------------------------------------- */

/* FNV-1a of a text, to key the module cache by source. */
static uint64_t fnv1a(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

/* The first few lines of a compiler message, for a notice. */
static void first_lines(char *dst, size_t len, const char *msg, int lines)
{
    size_t i = 0;
    for (; msg[i] && i + 1 < len; i++) {
        if (msg[i] == '\n' && --lines == 0) break;
        dst[i] = msg[i];
    }
    dst[i] = 0;
}

static ModuleEntry *compile_cached(Bench *b, const char *path, const char *src, bool no_fuse)
{
    char key[512];
    if (path) snprintf(key, sizeof key, "%s|%d", path, no_fuse);
    else snprintf(key, sizeof key, "src:%016llx|%d", (unsigned long long)fnv1a(src), no_fuse);
    for (int i = 0; i < b->nmodules; i++)
        if (strcmp(b->modules[i].key, key) == 0) return &b->modules[i];
    if (b->nmodules == BENCH_MAX_MODULES) {
        tdsl_module_free(b->modules[0].m);  /* the oldest goes; its cases are done */
        memmove(&b->modules[0], &b->modules[1], sizeof b->modules[0] * (BENCH_MAX_MODULES - 1));
        b->nmodules--;
    }
    ModuleEntry *e = &b->modules[b->nmodules++];
    memset(e, 0, sizeof *e);
    snprintf(e->key, sizeof e->key, "%s", key);
    char *text = NULL;
    if (path) {
        size_t len;
        const char *why;
        text = read_file_all(path, &len, &why);
        if (!text) {
            snprintf(e->error, sizeof e->error, "cannot read %s: %s", path, why);
            return e;
        }
    }
    char stdlib[1024];
    snprintf(stdlib, sizeof stdlib, "%s/stdlib", b->src_dir);
    const char *dirs[1] = {stdlib};
    tdsl_options o;
    memset(&o, 0, sizeof o);
    o.opt_level = -1;
    o.include_dirs = dirs;
    o.ninclude = 1;
#ifdef TDSL_BENCH_HAVE_NO_FUSE
    o.no_fuse = no_fuse;
#else
    (void)no_fuse;
#endif
    double t0 = bench_now();
    int rc = tdsl_compile(path ? text : src, path ? path : "bench.tdsl", &o, &e->m);
    e->ms = 1e3 * (bench_now() - t0);
    if (rc != TDSL_OK) {
        first_lines(e->error, sizeof e->error, tdsl_last_error(), 4);
        e->m = NULL;
    }
    free(text);
    return e;
}

static int run_tdsl(Impl *im, double *ms)
{
    TdslCall *call = im->ctx;
    double t0 = bench_now();
    int rc = tdsl_kernel_call(call->k, call->args, call->nargs);
    *ms = 1e3 * (bench_now() - t0);
    if (rc != TDSL_OK) {
        snprintf(im->error, sizeof im->error, "tdsl_kernel_call failed: %s", tdsl_last_error());
        return -1;
    }
    return 0;
}

static int compile_one(Case *c, const char *path, const char *src, const char *kernel, bool no_fuse)
{
    ModuleEntry *e = compile_cached(c->b, path, src, no_fuse);
    c->compile_ms[no_fuse] = e->ms;
    if (!e->first_case[0]) snprintf(e->first_case, sizeof e->first_case, "%.47s", c->def->name);
    else if (strcmp(e->first_case, c->def->name) != 0) c->compile_cached = true;
    if (!e->m) {
        snprintf(c->skip, sizeof c->skip, "tdsl_compile%s failed: %.400s", no_fuse ? " (no-fuse)" : "", e->error);
        return -1;
    }
    c->calls[no_fuse].k = tdsl_kernel_get(e->m, kernel);
    if (!c->calls[no_fuse].k) {
        snprintf(c->skip, sizeof c->skip, "%s", tdsl_last_error());
        return -1;
    }
    return 0;
}

static void set_args(Case *c, int which, Tensor *const *args, int nargs)
{
    TdslCall *call = &c->calls[which];
    call->nargs = nargs < 16 ? nargs : 16;
    for (int i = 0; i < call->nargs; i++) call->args[i] = &args[i]->dl;
}

int case_tdsl(Case *c, const char *path, const char *src, const char *kernel, Tensor *const *args, int nargs,
              int ninputs, bool with_nofuse)
{
    if (compile_one(c, path, src, kernel, false) != 0) return -1;
    set_args(c, 0, args, nargs);
    Impl *im = case_add_impl(c, "tdsl", run_tdsl, &c->calls[0]);
    im->kind = IMPL_TDSL;
    if (!with_nofuse) return 0;
    char why[256] = "this tdsl has no tdsl_options.no_fuse";
#ifdef TDSL_BENCH_HAVE_NO_FUSE
    if (compile_one(c, path, src, kernel, true) == 0) {
        Tensor *own[16];
        int n = nargs < 16 ? nargs : 16;
        for (int i = 0; i < n; i++) {
            own[i] = args[i];
            if (i >= ninputs) own[i] = case_tensor_fill(c, args[i]->dl.ndim, args[i]->shape, 0, 0);
            if (!own[i]) {
                snprintf(c->skip, sizeof c->skip, "out of memory");
                return -1;
            }
        }
        set_args(c, 1, own, n);
    } else {
        snprintf(why, sizeof why, "%.250s", c->skip);
        c->skip[0] = 0;
        c->calls[1].k = NULL;
    }
#else
    (void)ninputs;
#endif
    im = case_add_impl(c, "tdsl --no-fuse", c->calls[1].k ? run_tdsl : NULL, &c->calls[1]);
    im->kind = IMPL_TDSL_NOFUSE;
    if (!c->calls[1].k) snprintf(im->error, sizeof im->error, "%s", why);
    return 0;
}

Impl *case_add_impl(Case *c, const char *name, ImplRunFn run, void *ctx)
{
    if (c->nimpls == BENCH_MAX_IMPLS) return NULL;
    Impl *im = &c->impls[c->nimpls++];
    memset(im, 0, sizeof *im);
    snprintf(im->name, sizeof im->name, "%.47s", name);
    im->kind = IMPL_ANCHOR;
    im->run = run;
    im->ctx = ctx;
    return im;
}

/* ---- PyTorch ---------------------------------------------------------------------------- */

static int run_torch(Impl *im, double *ms)
{
    return torch_run(im->ctx, im->variant, ms, im->error, sizeof im->error);
}

static const char *torch_impl_name(const char *variant)
{
    if (strcmp(variant, "eager") == 0) return "PyTorch eager";
    if (strcmp(variant, "compile") == 0) return "torch.compile";
    return variant;
}

void case_add_torch(Case *c, const char *torch_case, const char *shape)
{
    Bench *b = c->b;
    if (!b->torch) {
        Impl *im = case_add_impl(c, "PyTorch", NULL, NULL);
        if (im) snprintf(im->error, sizeof im->error, "%s", b->torch_why);
        return;
    }
    char variants[128], skipped[64], why[256];
    if (torch_setup(b->torch, torch_case, shape ? shape : c->shape, variants, sizeof variants, skipped,
                    sizeof skipped, why, sizeof why) != 0) {
        Impl *im = case_add_impl(c, "PyTorch", NULL, NULL);
        if (im) snprintf(im->error, sizeof im->error, "%s", why);
        return;
    }
    for (char *save = NULL, *v = strtok_r(variants, ",", &save); v; v = strtok_r(NULL, ",", &save)) {
        Impl *im = case_add_impl(c, torch_impl_name(v), run_torch, b->torch);
        if (im) snprintf(im->variant, sizeof im->variant, "%s", v);
    }
    if (skipped[0]) {
        Impl *im = case_add_impl(c, torch_impl_name(skipped), NULL, NULL);
        if (im) snprintf(im->error, sizeof im->error, "%s", why);
    }
}

/* ---- the engine ----------------------------------------------------------------------------- */

static int cmp_double(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

static double median(const double *t, int n)
{
    double s[BENCH_MAX_REPS];
    memcpy(s, t, sizeof(double) * (size_t)n);
    qsort(s, (size_t)n, sizeof(double), cmp_double);
    return n % 2 ? s[n / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
}

/* Frees a case's data (tensors, anchor state), keeping its results. */
static void case_release(Case *c)
{
    if (c->free_state) c->free_state(c->state);
    c->free_state = NULL;
    for (int i = 0; i < c->ntensors; i++) free(c->tensors[i].data);
    c->ntensors = 0;
}

static void case_free(Case *c)
{
    case_release(c);
    free(c);
}

static bool case_selected(const Bench *b, const char *name)
{
    if (!b->only) return true;
    size_t len = strlen(name);
    for (const char *p = b->only; *p;) {
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (n == len && strncmp(p, name, n) == 0) return true;
        if (!end) break;
        p = end + 1;
    }
    return false;
}

/* The shape index an earlier thread count settled on for this case (0 when none). */
static int hint_read(const Bench *b, const char *name)
{
    FILE *f = b->hints_path ? fopen(b->hints_path, "r") : NULL;
    if (!f) return 0;
    char n[128];
    int idx, found = 0;
    while (fscanf(f, "%127s %d", n, &idx) == 2)
        if (strcmp(n, name) == 0) found = idx;
    fclose(f);
    return found;
}

static void hint_write(const Bench *b, const char *name, int idx)
{
    FILE *f = b->hints_path ? fopen(b->hints_path, "a") : NULL;
    if (!f) return;
    fprintf(f, "%s %d\n", name, idx);
    fclose(f);
}

/* Achieved rate of one call of ms milliseconds: GFLOP/s or GB/s, and the % of the roofline. */
static void rate(const Case *c, double ms, double *perf, double *roof)
{
    const Bench *b = c->b;
    if (ms <= 0) {
        *perf = *roof = -1;
        return;
    }
    if (c->def->bandwidth_bound) {
        *perf = c->bytes / (ms * 1e-3) / 1e9;
        *roof = b->triad_gbs > 0 ? 100.0 * *perf / b->triad_gbs : -1;
    } else {
        *perf = c->flops / (ms * 1e-3) / 1e9;
        *roof = b->peak_gflops > 0 ? 100.0 * *perf / b->peak_gflops : -1;
    }
}

static void fmt_ms(char *buf, size_t len, double ms)
{
    if (ms <= 0) snprintf(buf, len, "-");
    else if (ms < 10) snprintf(buf, len, "%.3f", ms);
    else if (ms < 1000) snprintf(buf, len, "%.1f", ms);
    else snprintf(buf, len, "%.0f", ms);
}

static void fmt_perf(char *buf, size_t len, double perf, double roof)
{
    if (perf < 0) snprintf(buf, len, "%10s %6s", "-", "-");
    else if (roof < 0) snprintf(buf, len, "%10.3g %6s", perf, "-");
    else snprintf(buf, len, "%10.3g %5.1f%%", perf, roof);
}

void bench_table_header(FILE *out, const char *unit_note)
{
    fprintf(out, "%-22s %-28s %3s %10s  %-22s %10s %8s %10s %6s  %10s %6s  %-13s %s\n", "case", "shape", "thr",
            "tdsl ms", "anchor", "anchor ms", "ratio", "tdsl perf", "roof", "anchor", "roof", "check", "note");
    if (unit_note) fprintf(out, "%s\n", unit_note);
}

/* One table row: the tdsl columns, then anchor a's (NULL: none). prefix: "R " in the table
 * file, "" on stdout. */
static void put_table_row(const Case *c, const Impl *t, const Impl *a, FILE *out, const char *prefix)
{
    char tms[32], ams[32], tperf[48], aperf[48], ratio[32], check[48];
    double p, r;
    fmt_ms(tms, sizeof tms, t->median);
    rate(c, t->median, &p, &r);
    fmt_perf(tperf, sizeof tperf, p, r);
    if (a && a->run && !a->error[0]) {
        fmt_ms(ams, sizeof ams, a->median);
        rate(c, a->median, &p, &r);
        fmt_perf(aperf, sizeof aperf, p, r);
        snprintf(ratio, sizeof ratio, "%.3g", a->median / t->median);
    } else {
        snprintf(ams, sizeof ams, "-");
        snprintf(aperf, sizeof aperf, "%10s %6s", "-", "-");
        snprintf(ratio, sizeof ratio, "-");
    }
    if (c->check_err < 0) snprintf(check, sizeof check, "-");
    else snprintf(check, sizeof check, "%s %.1e", c->check_err <= 1e-3 ? "ok" : "FAIL", c->check_err);
    char note[512] = "";
    if (a && a->error[0]) snprintf(note, sizeof note, "unavailable: %s%s", a->error, c->note[0] ? "; " : "");
    size_t used = strlen(note);
    snprintf(note + used, sizeof note - used, "%s", c->note);
    fprintf(out, "%s%-22s %-28s %3d %10s  %-22s %10s %8s %s  %s  %-13s %s\n", prefix, c->def->name, c->shape,
            c->b->threads, tms, a ? a->name : "-", ams, ratio, tperf, aperf, check, note);
}

static void put_result(const Case *c, const Impl *im, const Impl *tdsl)
{
    FILE *f = c->b->records;
    double p, r;
    rate(c, im->error[0] ? -1 : im->median, &p, &r);
    fprintf(f, "{\"type\": \"result\", \"suite\": ");
    json_put_str(f, c->b->suite);
    fprintf(f, ", \"case\": ");
    json_put_str(f, c->def->name);
    fprintf(f, ", \"shape\": ");
    json_put_str(f, c->shape);
    fprintf(f, ", \"threads\": %d, \"impl\": ", c->b->threads);
    json_put_str(f, im->name);
    fprintf(f, ", \"kind\": \"%s\", \"available\": %s, \"median_ms\": ",
            im->kind == IMPL_TDSL ? "tdsl" : im->kind == IMPL_TDSL_NOFUSE ? "tdsl-nofuse" : "anchor",
            im->error[0] ? "false" : "true");
    json_put_num(f, im->error[0] ? -1 : im->median);
    fprintf(f, ", \"times_ms\": [");
    for (int i = 0; i < im->n; i++) fprintf(f, "%s%.6g", i ? ", " : "", im->t[i]);
    fprintf(f, "], \"ratio\": ");
    /* anchor time / tdsl time: > 1 means tdsl is faster */
    json_put_num(f, im->error[0] || tdsl->median <= 0 ? -1 : im->median / tdsl->median);
    fprintf(f, ", \"unit\": \"%s\", \"perf\": ", c->def->bandwidth_bound ? "GB/s" : "GFLOP/s");
    json_put_num(f, p);
    fprintf(f, ", \"roofline_pct\": ");
    json_put_num(f, r);
    fprintf(f, ", \"flops\": %.6g, \"bytes\": %.6g, \"check_err\": ", c->flops, c->bytes);
    json_put_num(f, c->check_err);
    fprintf(f, ", \"error\": ");
    json_put_str(f, im->error);
    fprintf(f, ", \"note\": ");
    json_put_str(f, c->note);
    fputs("}\n", f);
}

static void put_compile(const Case *c)
{
    FILE *f = c->b->records;
    fprintf(f, "{\"type\": \"compile\", \"case\": ");
    json_put_str(f, c->def->name);
    fprintf(f, ", \"threads\": %d, \"what\": ", c->b->threads);
    json_put_str(f, c->compile_what);
    fprintf(f, ", \"fused_ms\": ");
    json_put_num(f, c->compile_ms[0]);
    fprintf(f, ", \"nofuse_ms\": ");
    json_put_num(f, c->compile_ms[1]);
    fprintf(f, ", \"cached\": %s}\n", c->compile_cached ? "true" : "false");
    char fused[32], nofuse[32];
    fmt_ms(fused, sizeof fused, c->compile_ms[0]);
    fmt_ms(nofuse, sizeof nofuse, c->compile_ms[1]);
    fprintf(c->b->table, "C   %-22s %d thr  %10s fused  %10s no-fuse   %s%s\n", c->def->name, c->b->threads, fused,
            nofuse, c->compile_what, c->compile_cached ? " (compiled once, for an earlier case)" : "");
}

/* A measured case's records and summary rows. */
static void put_case(const Case *c)
{
    const Impl *tdsl = &c->impls[0];
    for (int i = 0; i < c->nimpls; i++) put_result(c, &c->impls[i], tdsl);
    for (int i = 1; i < c->nimpls; i++) put_table_row(c, tdsl, &c->impls[i], c->b->table, "R ");
    if (c->nimpls == 1) put_table_row(c, tdsl, NULL, c->b->table, "R ");
    fflush(c->b->table);
    fflush(c->b->records);
}

/* Warm-up: one call of every implementation. Returns the tdsl call's time, or -1 when tdsl
 * failed (the case cannot be measured). *round gets the time of one call of each. */
static double warm_up(Case *c, double *round)
{
    double tdsl_ms = -1;
    *round = 0;
    for (int i = 0; i < c->nimpls; i++) {
        Impl *im = &c->impls[i];
        if (!im->run) continue;
        fprintf(stderr, "  warm-up %-22s", im->name);
        double ms = 0;
        if (im->run(im, &ms) != 0) {
            fprintf(stderr, " failed: %s\n", im->error);
            bench_notice(c->b, "%s %s: %s failed: %s", c->def->name, c->shape, im->name, im->error);
            im->run = NULL;
            if (i == 0) return -1;
            continue;
        }
        fprintf(stderr, " %10.3f ms%s\n", ms, ms > WARM_SAMPLE_MS ? " (kept as a sample)" : "");
        if (i == 0) tdsl_ms = ms;
        if (ms > WARM_SAMPLE_MS) im->t[im->n++] = ms;
        *round += ms;
    }
    return tdsl_ms;
}

/* Rounds until every implementation has reps samples (those whose warm-up counted need
 * one round fewer), the first implementation of round r being r mod n. */
static void measure(Case *c, int reps)
{
    for (int r = 0; r < reps; r++)
        for (int j = 0; j < c->nimpls; j++) {
            Impl *im = &c->impls[(j + r) % c->nimpls];
            if (!im->run || im->error[0] || im->n >= reps) continue;
            double ms;
            if (im->run(im, &ms) != 0) {
                bench_notice(c->b, "%s %s: %s failed: %s", c->def->name, c->shape, im->name, im->error);
                continue;
            }
            if (im->n < BENCH_MAX_REPS) im->t[im->n++] = ms;
        }
    for (int i = 0; i < c->nimpls; i++)
        if (c->impls[i].n) c->impls[i].median = median(c->impls[i].t, c->impls[i].n);
}

void bench_run_case(Bench *b, const CaseDef *def)
{
    if (!case_selected(b, def->name)) return;
    int start = hint_read(b, def->name);
    for (int i = 0; i <= start; i++)
        if (!def->shapes[i]) start = i > 0 ? i - 1 : 0;
    for (int si = start; def->shapes[si]; si++) {
        Case *c = calloc(1, sizeof *c);
        if (!c) return;
        c->b = b;
        c->def = def;
        c->shape_index = si;
        c->compile_ms[0] = c->compile_ms[1] = -1;
        c->check_err = -1;
        snprintf(c->shape, sizeof c->shape, "%s", def->shapes[si]);
        if (si > 0)
            snprintf(c->note, sizeof c->note, "target %s: one tdsl call took > %.0f s%s", def->shapes[0],
                     b->max_call_s, si == start ? " (at an earlier thread count)" : "");
        fprintf(stderr, "== %s %s, %d thread%s\n", def->name, c->shape, b->threads, b->threads > 1 ? "s" : "");
        if (def->setup(c) != 0) {
            bench_notice(b, "case %s (%s) skipped: %s", def->name, c->shape, c->skip);
            case_free(c);
            return;
        }
        double round;
        double tdsl_ms = warm_up(c, &round);
        if (tdsl_ms < 0 || !(tdsl_ms > 1e3 * b->max_call_s && def->shapes[si + 1])) put_compile(c);
        if (tdsl_ms < 0) {
            case_free(c);
            return;
        }
        if (tdsl_ms > 1e3 * b->max_call_s && def->shapes[si + 1]) {
            bench_notice(b, "%s: one tdsl call at %s took %.1f s (> %.0f s); measuring at %s instead", def->name,
                         c->shape, tdsl_ms / 1e3, b->max_call_s, def->shapes[si + 1]);
            hint_write(b, def->name, si + 1);
            case_free(c);
            continue;
        }
        int reps = b->reps;
        if (reps <= 0) {
            reps = round > 0 ? (int)(b->budget_s * 1e3 / round) : 11;
            reps = reps < 3 ? 3 : reps > 11 ? 11 : reps;
        }
        fprintf(stderr, "  %d rounds of %d implementations (one round ~ %.2f s)\n", reps, c->nimpls, round / 1e3);
        measure(c, reps);
        if (def->check) c->check_err = def->check(c);
        if (c->check_err > 1e-3)
            bench_notice(b, "%s %s: the tdsl output differs from the reference (normwise error %.2e)", def->name,
                         c->shape, c->check_err);
        /* the rows now, on stdout, with the roofline measured at the start; the records and
         * the summary's rows at the end (bench_put_results), with the best of both peaks */
        const Impl *tdsl = &c->impls[0];
        for (int i = 1; i < c->nimpls; i++) put_table_row(c, tdsl, &c->impls[i], stdout, "");
        if (c->nimpls == 1) put_table_row(c, tdsl, NULL, stdout, "");
        fflush(stdout);
        case_release(c);
        if (b->ndone == BENCH_MAX_CASES) {
            put_case(c);
            free(c);
        } else {
            b->done[b->ndone++] = c;
        }
        return;
    }
}

void bench_put_results(Bench *b)
{
    for (int i = 0; i < b->ndone; i++) {
        put_case(b->done[i]);
        free(b->done[i]);
    }
    b->ndone = 0;
}
