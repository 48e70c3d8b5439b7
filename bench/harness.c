/* harness.c: tdsl_bench's main: options, one child run per thread count, the summary.
 *
 *   tdsl_bench --suite core|scan [--threads 1,2] [--reps N] [--json FILE] [--cases A,B]
 *              [--budget S] [--max-call S] [--python PATH] [--no-torch] [--no-plot]
 *
 * The parent re-executes this program once per thread count T with OMP_NUM_THREADS,
 * OPENBLAS_NUM_THREADS and MKL_NUM_THREADS set to T, so that every library (oneDNN's OpenMP
 * runtime, OpenBLAS, the tdsl kernels' runtime, PyTorch in its subprocess) starts with that
 * many threads. Idle worker threads are told not to spin (OMP_WAIT_POLICY=PASSIVE,
 * KMP_BLOCKTIME=0, OPENBLAS_THREAD_TIMEOUT=4, unless already set): on a 2-core machine an
 * anchor's spinning threads would otherwise steal the cores from the tdsl call that follows
 * it, and the PyTorch subprocess's threads from everything. The child (run_child) appends
 * JSON lines and tagged table lines to files in a temporary directory; the parent then
 * prints the table, writes the JSON file (default bench/results/<suite>.json) and runs
 * bench/plot.py for the PNG beside it. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

#ifndef TDSL_SOURCE_DIR
#define TDSL_SOURCE_DIR "."
#endif

enum { MAX_THREAD_COUNTS = 8 };

typedef struct Options {
    const char *suite;                 /* "core" or "scan" */
    int threads[MAX_THREAD_COUNTS];    /* thread counts, in order */
    int nthreads;                      /* entries of threads */
    int reps;                          /* 0: adaptive */
    const char *json;                  /* output file */
    const char *cases;                 /* NULL: all */
    double budget_s;                   /* adaptive reps: seconds per case */
    double max_call_s;                 /* a slower tdsl call moves to a smaller shape */
    const char *python;                /* the python with torch */
    bool no_torch;                     /* skip the PyTorch anchors */
    bool no_plot;                      /* skip the chart */
    int child;                         /* > 0: this is the child run at that thread count */
    const char *records, *table, *hints;  /* the child's output files */
} Options;

static void usage(FILE *f)
{
    fprintf(f,
            "usage: tdsl_bench --suite core|scan [options]\n"
            "  --threads LIST   thread counts, comma-separated (default 1,2)\n"
            "  --reps N         repetitions per case (default: adaptive, 11 down to 3 so that a\n"
            "                   case takes about --budget seconds)\n"
            "  --budget S       seconds one case's repetitions may take (default 20)\n"
            "  --max-call S     a tdsl call slower than this moves the case to its next smaller\n"
            "                   shape, noted in the table (default 20)\n"
            "  --json FILE      results (default %s/bench/results/SUITE.json; the PNG goes beside it)\n"
            "  --cases A,B      run only these cases\n"
            "  --python PATH    python with torch for the PyTorch anchors (default $TDSL_BENCH_PYTHON,\n"
            "                   else bench/.venv/bin/python, made by bench/setup_venv.sh)\n"
            "  --no-torch       skip the PyTorch anchors\n"
            "  --no-plot        skip the PNG chart\n"
            "Ratios are anchor time / tdsl time: > 1 means tdsl is faster.\n",
            TDSL_SOURCE_DIR);
}

static bool parse_threads(Options *o, const char *s)
{
    o->nthreads = 0;
    for (const char *p = s; *p;) {
        char *end;
        long t = strtol(p, &end, 10);
        if (end == p || t < 1 || t > 256 || o->nthreads == MAX_THREAD_COUNTS) return false;
        o->threads[o->nthreads++] = (int)t;
        if (*end == 0) break;
        if (*end != ',') return false;
        p = end + 1;
    }
    return o->nthreads > 0;
}

static bool parse_options(Options *o, int argc, char **argv)
{
    memset(o, 0, sizeof *o);
    o->threads[0] = 1;
    o->threads[1] = 2;
    o->nthreads = 2;
    o->budget_s = 20;
    o->max_call_s = 20;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        bool takes = true;
        if (strcmp(a, "--suite") == 0 && v) o->suite = v;
        else if (strcmp(a, "--threads") == 0 && v) {
            if (!parse_threads(o, v)) return false;
        } else if (strcmp(a, "--reps") == 0 && v) {
            o->reps = atoi(v);
            if (o->reps < 1 || o->reps > BENCH_MAX_REPS) return false;
        } else if (strcmp(a, "--budget") == 0 && v) o->budget_s = atof(v);
        else if (strcmp(a, "--max-call") == 0 && v) o->max_call_s = atof(v);
        else if (strcmp(a, "--json") == 0 && v) o->json = v;
        else if (strcmp(a, "--cases") == 0 && v) o->cases = v;
        else if (strcmp(a, "--python") == 0 && v) o->python = v;
        else if (strcmp(a, "--child") == 0 && v) o->child = atoi(v);
        else if (strcmp(a, "--records") == 0 && v) o->records = v;
        else if (strcmp(a, "--table") == 0 && v) o->table = v;
        else if (strcmp(a, "--hints") == 0 && v) o->hints = v;
        else {
            takes = false;
            if (strcmp(a, "--no-torch") == 0) o->no_torch = true;
            else if (strcmp(a, "--no-plot") == 0) o->no_plot = true;
            else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
                usage(stdout);
                exit(0);
            } else return false;
        }
        if (takes) i++;
    }
    if (!o->suite || (strcmp(o->suite, "core") != 0 && strcmp(o->suite, "scan") != 0)) return false;
    return o->budget_s > 0 && o->max_call_s > 0;
}

/* ---- the child: one suite at one thread count -------------------------------------------- */

static const char *default_python(char *buf, size_t len, const Options *o)
{
    if (o->python) return o->python;
    const char *env = getenv("TDSL_BENCH_PYTHON");
    if (env && *env) return env;
    snprintf(buf, len, "%s/bench/.venv/bin/python", TDSL_SOURCE_DIR);
    return buf;
}

/* The load average now: the machines are shared, and a busy one explains a lot. */
static void load_average(char *buf, size_t len)
{
    snprintf(buf, len, "?");
    FILE *f = fopen("/proc/loadavg", "r");
    if (!f) return;
    double a, b, c;
    if (fscanf(f, "%lf %lf %lf", &a, &b, &c) == 3) snprintf(buf, len, "%.2f %.2f %.2f", a, b, c);
    fclose(f);
}

/* The machine record: the peaks measured at the start (b) and at the end (peak2, triad2). */
static void put_machine(Bench *b, const char *isa, const char *load, double peak2, double triad2)
{
    FILE *f = b->records;
    double peak = b->peak_gflops > peak2 ? b->peak_gflops : peak2;
    double triad = b->triad_gbs > triad2 ? b->triad_gbs : triad2;
    fprintf(f, "{\"type\": \"machine\", \"threads\": %d, \"peak_gflops\": %.6g, \"peak_isa\": ", b->threads, peak);
    json_put_str(f, isa);
    fprintf(f, ", \"triad_gbs\": %.6g, \"peak_gflops_start_end\": [%.6g, %.6g], \"triad_gbs_start_end\": [%.6g, %.6g]",
            triad, b->peak_gflops, peak2, b->triad_gbs, triad2);
    fprintf(f, ", \"loadavg_at_start\": \"%s\", ", load);
    anchors_describe(f);
    fprintf(f, ", \"torch\": ");
    json_put_str(f, b->torch ? torch_version(b->torch) : "");
    const char *envs[] = {"OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "OMP_WAIT_POLICY", "KMP_BLOCKTIME",
                          "OPENBLAS_CORETYPE"};
    for (size_t i = 0; i < sizeof envs / sizeof envs[0]; i++) {
        fprintf(f, ", \"%s\": ", envs[i]);
        json_put_str(f, getenv(envs[i]) ? getenv(envs[i]) : "");
    }
    fputs("}\n", f);
    fprintf(b->table,
            "M threads %d: peak %.1f GFLOP/s (%s, 12 accumulators per core), triad %.1f GB/s (best of start "
            "%.1f / %.1f and end %.1f / %.1f); load average %s on %ld cores at the start\n",
            b->threads, peak, isa, triad, b->peak_gflops, b->triad_gbs, peak2, triad2, load,
            sysconf(_SC_NPROCESSORS_ONLN));
    fflush(f);
    fflush(b->table);
}

static int run_child(const Options *o)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    Bench b;
    memset(&b, 0, sizeof b);
    b.suite = o->suite;
    b.src_dir = TDSL_SOURCE_DIR;
    b.threads = o->child;
    b.reps = o->reps;
    b.budget_s = o->budget_s;
    b.max_call_s = o->max_call_s;
    b.only = o->cases;
    b.hints_path = o->hints;
    b.rng = 0x9E3779B97F4A7C15ull;
    b.records = fopen(o->records, "a");
    b.table = fopen(o->table, "a");
    if (!b.records || !b.table) {
        fprintf(stderr, "tdsl_bench: cannot open the output files: %s\n", strerror(errno));
        return 1;
    }
    anchors_set_threads(b.threads);

    fprintf(stderr, "== %s suite, %d thread%s: measuring the FMA peak and the triad bandwidth\n", o->suite,
            b.threads, b.threads > 1 ? "s" : "");
    char isa[32];
    b.peak_gflops = peak_fma_gflops(b.threads, isa, sizeof isa);
    b.triad_gbs = peak_triad_gbs(b.threads);
    fprintf(stderr, "   peak %.1f GFLOP/s (%s), triad %.1f GB/s\n", b.peak_gflops, isa, b.triad_gbs);
    /* The roofline is written after the cases, when the peaks have been measured again at the
     * end and the better of the two kept: on a shared machine the start may be a bad moment. */
    char load[64];
    load_average(load, sizeof load);

    if (o->no_torch) {
        snprintf(b.torch_why, sizeof b.torch_why, "PyTorch anchors skipped (--no-torch)");
    } else {
        char pybuf[1024], script[1024], log[1100];
        const char *py = default_python(pybuf, sizeof pybuf, o);
        snprintf(script, sizeof script, "%s/bench/torch_anchor.py", TDSL_SOURCE_DIR);
        snprintf(log, sizeof log, "%s.torch.log", o->json);
        fprintf(stderr, "   starting the PyTorch anchors (%s; log %s)\n", py, log);
        b.torch = torch_start(py, script, b.threads, log, b.torch_why, sizeof b.torch_why);
    }
    if (!b.torch) bench_notice(&b, "%s", b.torch_why);

    const CaseDef *suite = strcmp(o->suite, "core") == 0 ? SUITE_CORE : SUITE_SCAN;
    char ssm[1024];
    snprintf(ssm, sizeof ssm, "%s/stdlib/ssm.tdsl", TDSL_SOURCE_DIR);
    if (suite == SUITE_SCAN && access(ssm, R_OK) != 0) {
        bench_notice(&b, "stdlib/ssm.tdsl not found: the scan suite (GLA, retention, Mamba) has nothing to run");
    } else {
        for (const CaseDef *d = suite; d->name; d++) bench_run_case(&b, d);
    }

    fprintf(stderr, "== measuring the FMA peak and the triad bandwidth again\n");
    double peak2 = peak_fma_gflops(b.threads, isa, sizeof isa), triad2 = peak_triad_gbs(b.threads);
    fprintf(stderr, "   peak %.1f GFLOP/s, triad %.1f GB/s\n", peak2, triad2);
    put_machine(&b, isa, load, peak2, triad2);
    if (peak2 > b.peak_gflops) b.peak_gflops = peak2;
    if (triad2 > b.triad_gbs) b.triad_gbs = triad2;
    bench_put_results(&b);
    torch_stop(b.torch);
    for (int i = 0; i < b.nmodules; i++) tdsl_module_free(b.modules[i].m);
    fclose(b.records);
    fclose(b.table);
    return 0;
}

/* ---- the parent ---------------------------------------------------------------------------- */

/* Runs argv with stdout and stderr sent to /dev/null when quiet; its exit status, or -1. */
static int run_cmd(char *const *argv, bool quiet)
{
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        if (quiet) {
            int fd = open("/dev/null", O_WRONLY);
            if (fd >= 0) {
                dup2(fd, 1);
                dup2(fd, 2);
            }
        }
        execvp(argv[0], argv);
        _exit(127);
    }
    int status;
    if (waitpid(pid, &status, 0) != pid) return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void set_default_env(const char *name, const char *value)
{
    if (!getenv(name)) setenv(name, value, 1);
}

static int run_thread_count(const Options *o, int threads, const char *self, const char *records,
                            const char *table, const char *hints, const char *json)
{
    char t[16];
    snprintf(t, sizeof t, "%d", threads);
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        setenv("OMP_NUM_THREADS", t, 1);
        setenv("OPENBLAS_NUM_THREADS", t, 1);
        setenv("MKL_NUM_THREADS", t, 1);
        set_default_env("OMP_WAIT_POLICY", "PASSIVE");
        set_default_env("KMP_BLOCKTIME", "0");
        set_default_env("OPENBLAS_THREAD_TIMEOUT", "4");
        char reps[16], budget[32], maxcall[32];
        snprintf(reps, sizeof reps, "%d", o->reps);
        snprintf(budget, sizeof budget, "%g", o->budget_s);
        snprintf(maxcall, sizeof maxcall, "%g", o->max_call_s);
        const char *argv[40];
        int n = 0;
        argv[n++] = self;
        argv[n++] = "--suite";
        argv[n++] = o->suite;
        argv[n++] = "--child";
        argv[n++] = t;
        argv[n++] = "--records";
        argv[n++] = records;
        argv[n++] = "--table";
        argv[n++] = table;
        argv[n++] = "--hints";
        argv[n++] = hints;
        argv[n++] = "--json";
        argv[n++] = json;
        argv[n++] = "--budget";
        argv[n++] = budget;
        argv[n++] = "--max-call";
        argv[n++] = maxcall;
        if (o->reps) {
            argv[n++] = "--reps";
            argv[n++] = reps;
        }
        if (o->cases) {
            argv[n++] = "--cases";
            argv[n++] = o->cases;
        }
        if (o->python) {
            argv[n++] = "--python";
            argv[n++] = o->python;
        }
        if (o->no_torch) argv[n++] = "--no-torch";
        argv[n] = NULL;
        execv(self, (char *const *)argv);
        _exit(127);
    }
    int status;
    if (waitpid(pid, &status, 0) != pid) return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

/* mkdir -p of the directory part of path. */
static void make_parent_dirs(const char *path)
{
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        mkdir(buf, 0755);
        *p = '/';
    }
}

static void put_line_group(FILE *out, const char *records, const char *type, const char *name)
{
    char prefix[64];
    snprintf(prefix, sizeof prefix, "{\"type\": \"%s\"", type);
    FILE *f = fopen(records, "r");
    fprintf(out, ",\n  \"%s\": [", name);
    int n = 0;
    if (f) {
        char *line = NULL;
        size_t cap = 0;
        ssize_t len;
        while ((len = getline(&line, &cap, f)) > 0) {
            if (strncmp(line, prefix, strlen(prefix)) != 0) continue;
            if (line[len - 1] == '\n') line[len - 1] = 0;
            fprintf(out, "%s\n    %s", n++ ? "," : "", line);
        }
        free(line);
        fclose(f);
    }
    fprintf(out, "%s]", n ? "\n  " : "");
}

/* The first line of a command's output, or "" (for the git commit and the CPU name). */
static void first_output_line(const char *cmd, char *out, size_t len)
{
    out[0] = 0;
    FILE *p = popen(cmd, "r");
    if (!p) return;
    if (fgets(out, (int)len, p)) out[strcspn(out, "\n")] = 0;
    pclose(p);
}

static bool write_json(const Options *o, const char *records)
{
    FILE *f = fopen(o->json, "w");
    if (!f) return false;
    char commit[128], cpu[256], date[64];
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "git -C '%s' describe --always --dirty 2>/dev/null", TDSL_SOURCE_DIR);
    first_output_line(cmd, commit, sizeof commit);
    first_output_line("sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1", cpu, sizeof cpu);
    time_t now = time(NULL);
    strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
    fprintf(f, "{\n  \"suite\": ");
    json_put_str(f, o->suite);
    fprintf(f, ",\n  \"date\": \"%s\",\n  \"commit\": ", date);
    json_put_str(f, commit);
    fprintf(f, ",\n  \"cpu\": ");
    json_put_str(f, cpu);
    fprintf(f, ",\n  \"cores\": %ld,\n  \"ratio\": \"anchor median time / tdsl median time; > 1: tdsl is faster\"",
            sysconf(_SC_NPROCESSORS_ONLN));
    put_line_group(f, records, "machine", "machine");
    put_line_group(f, records, "result", "results");
    put_line_group(f, records, "compile", "compile");
    put_line_group(f, records, "notice", "notices");
    fprintf(f, "\n}\n");
    return fclose(f) == 0;
}

/* The case name a summary row starts with (after the tag), into buf. */
static void row_case(const char *line, char *buf, size_t len)
{
    size_t n = strcspn(line + 2, " ");
    snprintf(buf, len, "%.*s", (int)(n < len ? n : len - 1), line + 2);
}

/* Prints the tagged lines of the table file: M machine, R rows (grouped by case, in the order
 * the cases first ran), C compile times, N notices (each once). */
static void print_summary(const Options *o, const char *table)
{
    FILE *f = fopen(table, "r");
    if (!f) return;
    char *lines[1024];
    int n = 0;
    char *line = NULL;
    size_t cap = 0;
    while (n < 1024 && getline(&line, &cap, f) > 0) lines[n++] = strdup(line);
    free(line);
    fclose(f);
    printf("\n== tdsl_bench %s: medians; ratio = anchor time / tdsl time (> 1: tdsl is faster); perf and roof "
           "are GFLOP/s against the measured FMA peak, or GB/s against the measured triad ==\n",
           o->suite);
    for (int i = 0; i < n; i++)
        if (lines[i][0] == 'M') printf("%s", lines[i] + 2);
    bench_table_header(stdout, NULL);
    bool *done = calloc((size_t)n + 1, 1);
    for (int i = 0; i < n && done; i++) {
        if (lines[i][0] != 'R' || done[i]) continue;
        char name[64], other[64];
        row_case(lines[i], name, sizeof name);
        for (int j = i; j < n; j++) {
            if (lines[j][0] != 'R' || done[j]) continue;
            row_case(lines[j], other, sizeof other);
            if (strcmp(name, other) != 0) continue;
            printf("%s", lines[j] + 2);
            done[j] = true;
        }
    }
    free(done);
    printf("\ntdsl_compile times (ms, source to callable; whole file where noted):\n");
    for (int i = 0; i < n; i++)
        if (lines[i][0] == 'C') printf("%s", lines[i] + 2);
    printf("\nnotices:\n");
    for (int i = 0; i < n; i++) {
        if (lines[i][0] != 'N') continue;
        bool dup = false;   /* each notice once, even if every thread count said it */
        for (int j = 0; j < i && !dup; j++) dup = lines[j][0] == 'N' && strcmp(lines[j], lines[i]) == 0;
        if (!dup) printf("  - %s", lines[i] + 2);
    }
    for (int i = 0; i < n; i++) free(lines[i]);
}

/* A python that can import matplotlib, for plot.py; NULL when none. */
static const char *plot_python(const Options *o, char *buf, size_t len)
{
    char venv[1024];
    snprintf(venv, sizeof venv, "%s/bench/.venv/bin/python", TDSL_SOURCE_DIR);
    const char *cands[4] = {getenv("TDSL_BENCH_PLOT_PYTHON"), venv, o->python ? o->python : getenv("TDSL_BENCH_PYTHON"),
                            "python3"};
    for (int i = 0; i < 4; i++) {
        if (!cands[i] || !*cands[i]) continue;
        char *argv[] = {(char *)cands[i], "-c", "import matplotlib", NULL};
        if (run_cmd(argv, true) == 0) {
            snprintf(buf, len, "%s", cands[i]);
            return buf;
        }
    }
    return NULL;
}

/* False (with a message) when --cases names a case the suite does not have. */
static bool cases_known(const Options *o)
{
    const CaseDef *suite = strcmp(o->suite, "core") == 0 ? SUITE_CORE : SUITE_SCAN;
    for (const char *p = o->cases; p && *p;) {
        size_t n = strcspn(p, ",");
        bool found = false;
        for (const CaseDef *d = suite; d->name && !found; d++)
            found = strlen(d->name) == n && strncmp(d->name, p, n) == 0;
        if (!found) {
            fprintf(stderr, "tdsl_bench: the %s suite has no case '%.*s'; it has:", o->suite, (int)n, p);
            for (const CaseDef *d = suite; d->name; d++) fprintf(stderr, " %s", d->name);
            fprintf(stderr, "\n");
            return false;
        }
        p += n + (p[n] == ',');
    }
    return true;
}

static int run_parent(Options *o, const char *self)
{
    if (!cases_known(o)) return 2;
    char jsonbuf[1024];
    if (!o->json) {
        snprintf(jsonbuf, sizeof jsonbuf, "%s/bench/results/%s.json", TDSL_SOURCE_DIR, o->suite);
        o->json = jsonbuf;
    }
    make_parent_dirs(o->json);
    char dir[] = "/tmp/tdsl_bench.XXXXXX";
    if (!mkdtemp(dir)) {
        fprintf(stderr, "tdsl_bench: mkdtemp: %s\n", strerror(errno));
        return 1;
    }
    char records[64], table[64], hints[64], log[1100];
    snprintf(records, sizeof records, "%s/records", dir);
    snprintf(table, sizeof table, "%s/table", dir);
    snprintf(hints, sizeof hints, "%s/hints", dir);
    snprintf(log, sizeof log, "%s.torch.log", o->json);
    unlink(log);
    int failed = 0;
    for (int i = 0; i < o->nthreads; i++) {
        int rc = run_thread_count(o, o->threads[i], self, records, table, hints, o->json);
        if (rc != 0) {
            fprintf(stderr, "tdsl_bench: the run at %d threads failed (status %d)\n", o->threads[i], rc);
            FILE *f = fopen(table, "a");
            if (f) {
                fprintf(f, "N the run at %d threads failed (status %d); its results are incomplete\n",
                        o->threads[i], rc);
                fclose(f);
            }
            failed = 1;
        }
    }
    print_summary(o, table);
    if (!write_json(o, records)) {
        fprintf(stderr, "tdsl_bench: cannot write %s\n", o->json);
        failed = 1;
    } else {
        printf("\nwrote %s\n", o->json);
    }
    if (!o->no_plot) {
        char png[1100], script[1024], pybuf[1024];
        snprintf(png, sizeof png, "%.*s.png", (int)(strlen(o->json) > 5 ? strlen(o->json) - 5 : strlen(o->json)),
                 o->json);
        snprintf(script, sizeof script, "%s/bench/plot.py", TDSL_SOURCE_DIR);
        const char *py = plot_python(o, pybuf, sizeof pybuf);
        if (!py) {
            printf("notice: no python with matplotlib found: chart skipped (bash bench/setup_venv.sh makes one)\n");
        } else {
            char *argv[] = {(char *)py, script, (char *)o->json, png, NULL};
            if (run_cmd(argv, false) == 0) printf("wrote %s\n", png);
            else printf("notice: plot.py failed: chart not written\n");
        }
    }
    unlink(records);
    unlink(table);
    unlink(hints);
    rmdir(dir);
    return failed;
}

int main(int argc, char **argv)
{
    Options o;
    if (!parse_options(&o, argc, argv)) {
        usage(stderr);
        return 2;
    }
    if (o.child > 0) return run_child(&o);
    char self[1024];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) {
        fprintf(stderr, "tdsl_bench: cannot find its own executable\n");
        return 1;
    }
    self[n] = 0;
    return run_parent(&o, self);
}
