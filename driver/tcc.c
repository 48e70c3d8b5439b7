/* tcc: the command-line driver of the tdsl compiler.
 *
 *     tcc check FILE                       parse and check; silent on success
 *     tcc --emit=ast|ir FILE [-o OUT]      print the syntax tree or the tensor IR
 *     tcc --emit=cuda|ptx FILE [-o OUT]    print the CUDA source or its PTX (--target=cuda)
 *     tcc FILE [--target=cuda] -o OUT.so   build a shared library for the CPU or for CUDA
 *     tcc run FILE --kernel K [...]        run a kernel: compiled for the CPU (or a CUDA GPU, or
 *                                          the CUDA emulator) or on the reference interpreter
 *
 * Exit status: 0 success, 1 user error (diagnostics, bad arguments, bad input files), 2
 * internal error (a compiler bug: a failed TD_ASSERT, a crash, or IR the verifier rejects).
 * Output files are written to a temporary name and renamed at the end, so a failed run never
 * leaves a missing, stale-looking or half-written file behind. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../frontend/frontend.h"
#include "../codegen/cpu/cpu.h"
#include "../codegen/cuda/cuda.h"
#ifdef TDSL_SIMT_CUDA  /* the cuda-emu engine (runtime/simt/) */
#include "../runtime/simt/simt_cuda.h"
#endif
#include "../passes/passes.h"
#include "../runtime/rt.h"  /* the cuda engine: runtime/cuda_jit.c and the driver (runtime/cuda.c) */
#include "npy.h"

#ifndef TDSL_VERSION
#define TDSL_VERSION "unknown"
#endif

enum {
    EXIT_USER = 1,               /* diagnostics, bad arguments, bad files */
    EXIT_INTERNAL = 2,           /* compiler bugs */
    PRINT_MAX_ELEMENTS = 1000,   /* larger tensors print summarised, numpy style */
    PRINT_EDGE = 3,              /* elements kept at each end of a summarised axis */
    PRINT_LINE_WIDTH = 75,
};

/* ---- command line ---------------------------------------------------------------------------- */

typedef enum Command {
    CMD_NONE, CMD_CHECK, CMD_RUN, CMD_BUILD, CMD_EMIT_AST, CMD_EMIT_IR, CMD_EMIT_LOOPS,
    CMD_EMIT_LLVM, CMD_EMIT_ASM, CMD_EMIT_OBJ,
    CMD_EMIT_CUDA, CMD_EMIT_PTX,   /* CUDA back end */
} Command;

typedef enum Target { TARGET_CPU, TARGET_CUDA } Target;  /* --target (CUDA back end) */

typedef enum Engine { ENGINE_CPU, ENGINE_INTERP, ENGINE_CUDA, ENGINE_CUDA_EMU } Engine;
#ifdef TDSL_SIMT_CUDA  /* the cuda-emu engine: built with the CUDA back end */
#define ENGINES_EXTRA ", cuda-emu"
#else
#define ENGINES_EXTRA ""
#endif

typedef struct Binding {         /* NAME=VALUE from --in, --out or -D */
    const char *name;            /* heap copy of the part before '=' */
    const char *value;           /* the part after '=' (points into argv) */
    int64_t     number;          /* -D: the value parsed */
} Binding;

typedef struct Args {
    Command      cmd;
    const char  *file;           /* the .tdsl file */
    const char  *out_path;       /* -o, for --emit */
    const char  *kernel;         /* --kernel */
    Binding     *ins, *outs, *defs;
    int          nins, nouts, ndefs;
    const char **include_dirs;   /* -I */
    int          ninclude;
    const char  *stdlib_dir;     /* --stdlib */
    bool         random;         /* --random given */
    uint64_t     seed;
    bool         print;          /* --print */
    Engine       engine;         /* --engine: cpu (default), interp, cuda or cuda-emu */
    const char  *header_path;    /* --header, with a .so build */
    CpuOptions   cpu;            /* --cpu, --features, -O */
    Target       target;         /* --target: cpu (default) or cuda; --emit=cuda|ptx imply cuda */
    bool         target_given;   /* --target appeared */
    CudaOptions  cuda;           /* --arch */
    bool         no_fuse;        /* --no-fuse: compiled code keeps every definition */
    bool         explain_fusion; /* --explain-fusion: say what fusion did, on stderr */
    const char  *dump_after;     /* --dump-after=PASS: print the IR after that pass */
    bool         help, version;
    const char  *run_only_flag;  /* the first run-only flag seen, for "only valid with run" */
} Args;

static const char *const OPTIONS[] = {
    "--help", "--version", "--emit", "--kernel", "--in", "--out", "--random", "--engine",
    "--print", "--stdlib", "-o", "-I", "-D", "--header", "--cpu", "--features", "-O",
    "--no-fuse", "--explain-fusion", "--dump-after", "--target", "--arch",
};
static const char *const COMMANDS[] = {"check", "run"};

static void usage(FILE *f)
{
    fprintf(f,
        "usage: tcc check FILE [options]\n"
        "       tcc FILE -o OUT.so [--header OUT.h] [options]\n"
        "       tcc --emit=ast|ir|loops|llvm|asm|obj|cuda|ptx FILE [-o OUT] [options]\n"
        "       tcc run FILE --kernel K [--in NAME=PATH]... [--out NAME=PATH]...\n"
        "               [--random SEED] [-D NAME=VALUE]... [--engine cpu|interp|cuda|cuda-emu] [--print]\n"
        "\n"
        "commands:\n"
        "  check FILE        parse and check FILE and its imports; prints nothing when valid\n"
        "  --emit=ast FILE   print the syntax tree of FILE\n"
        "  --emit=ir FILE    print the tensor IR of every kernel in FILE\n"
        "  --emit=loops FILE print the loop IR (after lowering) of every kernel in FILE\n"
        "  --emit=llvm FILE  print the optimised LLVM IR (asm: assembly; obj: an object file, needs -o)\n"
        "  --emit=cuda FILE  print the generated CUDA C (ptx: its PTX, compiled by NVRTC)\n"
        "  FILE -o OUT.so    build a shared library exporting one C function per kernel\n"
        "  run FILE          run a kernel (compiled for this CPU or a CUDA GPU, or on the interpreter)\n"
        "\n"
        "options:\n"
        "  -I DIR            search DIR for imports before the stdlib (repeatable)\n"
        "  -D NAME=VALUE     bind size NAME to VALUE, a positive integer (repeatable)\n"
        "  --stdlib DIR      the stdlib directory (default: $TDSL_STDLIB, else %s)\n"
        "  -o FILE           with --emit: write to FILE instead of stdout; else the .so to build\n"
        "  --header FILE.h   with a .so build: also write the C header declaring its functions\n"
        "  --cpu NAME        target CPU for compiled code (default: this machine's, e.g. znver4)\n"
        "  --features LIST   LLVM target features, e.g. +avx2,-avx512f (default: the CPU's)\n"
        "  -O0 .. -O3        optimisation level of compiled code (default -O2)\n"
        "  --target T        cpu (default) or cuda: what --emit=loops and a .so build are for\n"
        "  --arch SM         with --target=cuda or --engine cuda: sm_80 (default; its PTX also runs\n"
        "                    on sm_90) or sm_90\n"
        "  --no-fuse         compile every definition as written (no fusion)\n"
        "  --explain-fusion  print, for every definition, whether it was fused and why not,\n"
        "                    then which adjacent loops merged and which temporaries shrank\n"
        "  --dump-after=PASS print the IR after a pass of the compiled pipeline: fuse, lower\n"
        "  --help            print this help and exit\n"
        "  --version         print the version and exit\n"
        "\n"
        "run options:\n"
        "  --kernel K        the kernel to run (required)\n"
        "  --in NAME=PATH    read input NAME from a .npy file (repeatable)\n"
        "  --out NAME=PATH   write output NAME to a .npy file (repeatable)\n"
        "  --random SEED     generate each input not given with --in: floats uniform in\n"
        "                    [-1, 1), integers in [-8, 7] (clamped to the dtype), bools 0/1\n"
        "  --engine ENGINE   cpu (default): JIT-compiled native code; interp: the reference\n"
        "                    interpreter; cuda: JIT-compiled for CUDA and run on GPU 0 (needs\n"
        "                    NVRTC and the CUDA driver); cuda-emu: the generated CUDA on the\n"
        "                    CPU's SIMT emulator (one fiber per CUDA thread; for testing, slow)\n"
        "  --print           print the outputs not written with --out (the default when\n"
        "                    there is no --out)\n"
        "\n"
        "exit status: 0 success, 1 user error, 2 internal compiler error\n",
        fe_default_stdlib_dir());
}

static bool is_identifier(const char *s)
{
    if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || *s == '_')) return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '_'))
            return false;
    return true;
}

/* Splits NAME=VALUE; `what` is the option for messages. */
static bool parse_binding(const char *what, const char *arg, Binding *b, DiagSink *d)
{
    const char *eq = strchr(arg, '=');
    if (!eq || eq == arg || !eq[1]) {
        diag_error_plain(d, "%s expects NAME=%s, got '%s'", what,
                         strcmp(what, "-D") == 0 ? "VALUE" : "PATH", arg);
        return false;
    }
    b->name = strndup(arg, (size_t)(eq - arg));
    b->value = eq + 1;
    return true;
}

static bool parse_define(const char *arg, Binding *b, DiagSink *d)
{
    if (!parse_binding("-D", arg, b, d)) return false;
    const char *v = b->value;
    int64_t n = 0;
    bool ok = is_identifier(b->name) && *v;
    for (; ok && *v; v++)
        ok = *v >= '0' && *v <= '9' && ck_mul_i64(n, 10, &n) && ck_add_i64(n, *v - '0', &n);
    if (!ok || n < 1) {
        diag_error_plain(d, "bad -D '%s': expected -D NAME=VALUE with NAME an identifier and "
                         "VALUE a positive integer", arg);
        free((char *)b->name);
        b->name = NULL;
        return false;
    }
    b->number = n;
    return true;
}

static bool parse_seed(const char *s, uint64_t *out, DiagSink *d)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (!*s || *end || errno || s[0] == '-') {
        diag_error_plain(d, "--random expects a non-negative integer seed, got '%s'", s);
        return false;
    }
    *out = v;
    return true;
}

static void unknown_option(const char *arg, DiagSink *d)
{
    const char *eq = strchr(arg, '=');
    char *name = eq ? strndup(arg, (size_t)(eq - arg)) : strdup(arg);
    const char *near = diag_closest(name, OPTIONS, TD_COUNTOF(OPTIONS));
    if (near) diag_error_plain(d, "unknown option '%s'; did you mean '%s'?", name, near);
    else diag_error_plain(d, "unknown option '%s'; see 'tcc --help'", name);
    free(name);
}

/* If argv[*i] is `flag`, `flag=VALUE` (long flags) or `-XVALUE` (short flags), returns the
 * value, consuming the next argument when needed; NULL when argv[*i] is another flag. A
 * flag with no value is reported and *bad set. */
static const char *take_value(int argc, char **argv, int *i, const char *flag, bool *bad,
                              DiagSink *d)
{
    const char *a = argv[*i];
    size_t n = strlen(flag);
    if (strncmp(a, flag, n) != 0) return NULL;
    if (a[n] == 0) {
        if (*i + 1 >= argc) {
            diag_error_plain(d, "option '%s' needs a value", flag);
            *bad = true;
            return NULL;
        }
        return argv[++*i];
    }
    if (flag[1] == '-' && a[n] == '=') return a + n + 1;
    if (flag[1] != '-') return a + n;
    return NULL;
}

/* sm_NN or sm_NNN, optionally with an 'a' (arch-specific features), as NVRTC names them
 * (CUDA back end). */
static bool is_cuda_arch(const char *v)
{
    if (strncmp(v, "sm_", 3) != 0) return false;
    int n = 0;
    for (v += 3; *v >= '0' && *v <= '9'; v++) n++;
    if (*v == 'a') v++;
    return (n == 2 || n == 3) && *v == 0;
}

/* Parses argv into *a. Returns false after reporting every problem found. */
static bool parse_args(int argc, char **argv, Args *a, DiagSink *d)
{
    size_t cap = (size_t)argc + 1;
    a->ins = calloc(cap, sizeof(Binding));
    a->outs = calloc(cap, sizeof(Binding));
    a->defs = calloc(cap, sizeof(Binding));
    a->include_dirs = calloc(cap, sizeof(char *));
    const char **positional = calloc(cap, sizeof(char *));
    if (!a->ins || !a->outs || !a->defs || !a->include_dirs || !positional)
        td_internal_error(__FILE__, __LINE__, "out of memory");
    int npos = 0, nerr = d->nerrors;
    Command emit = CMD_NONE;
    a->cpu.opt_level = 2;

    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i], *v;
        bool bad = false;
        if (arg[0] != '-' || strcmp(arg, "-") == 0) {
            positional[npos++] = arg;
        } else if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            a->help = true;
        } else if (strcmp(arg, "--version") == 0) {
            a->version = true;
        } else if (strcmp(arg, "--print") == 0) {
            a->print = true;
            if (!a->run_only_flag) a->run_only_flag = "--print";
        } else if ((v = take_value(argc, argv, &i, "--emit", &bad, d))) {
            if (strcmp(v, "ast") == 0) emit = CMD_EMIT_AST;
            else if (strcmp(v, "ir") == 0) emit = CMD_EMIT_IR;
            else if (strcmp(v, "loops") == 0) emit = CMD_EMIT_LOOPS;
            else if (strcmp(v, "llvm") == 0) emit = CMD_EMIT_LLVM;
            else if (strcmp(v, "asm") == 0) emit = CMD_EMIT_ASM;
            else if (strcmp(v, "obj") == 0) emit = CMD_EMIT_OBJ;
            else if (strcmp(v, "cuda") == 0) emit = CMD_EMIT_CUDA;
            else if (strcmp(v, "ptx") == 0) emit = CMD_EMIT_PTX;
            else diag_error_plain(d, "unknown --emit kind '%s'; available: ast, ir, loops, llvm, asm, obj, cuda, ptx", v);
        } else if ((v = take_value(argc, argv, &i, "--kernel", &bad, d))) {
            a->kernel = v;
            if (!a->run_only_flag) a->run_only_flag = "--kernel";
        } else if ((v = take_value(argc, argv, &i, "--in", &bad, d))) {
            if (parse_binding("--in", v, &a->ins[a->nins], d)) a->nins++;
            if (!a->run_only_flag) a->run_only_flag = "--in";
        } else if ((v = take_value(argc, argv, &i, "--out", &bad, d))) {
            if (parse_binding("--out", v, &a->outs[a->nouts], d)) a->nouts++;
            if (!a->run_only_flag) a->run_only_flag = "--out";
        } else if ((v = take_value(argc, argv, &i, "--random", &bad, d))) {
            a->random = parse_seed(v, &a->seed, d);
            if (!a->run_only_flag) a->run_only_flag = "--random";
        } else if ((v = take_value(argc, argv, &i, "--engine", &bad, d))) {
            if (strcmp(v, "interp") == 0) a->engine = ENGINE_INTERP;
            else if (strcmp(v, "cpu") == 0) a->engine = ENGINE_CPU;
            else if (strcmp(v, "cuda") == 0) a->engine = ENGINE_CUDA;
#ifdef TDSL_SIMT_CUDA  /* the cuda-emu engine */
            else if (strcmp(v, "cuda-emu") == 0) a->engine = ENGINE_CUDA_EMU;
#endif
            else if (strcmp(v, "cuda-emu") == 0)
                diag_error_plain(d, "engine '%s' is not available in this build; available: cpu, interp, cuda%s", v,
                                 ENGINES_EXTRA);
            else diag_error_plain(d, "unknown engine '%s'; available: cpu, interp, cuda%s", v, ENGINES_EXTRA);
            if (!a->run_only_flag) a->run_only_flag = "--engine";
        } else if ((v = take_value(argc, argv, &i, "--stdlib", &bad, d))) {
            a->stdlib_dir = v;
        } else if ((v = take_value(argc, argv, &i, "-o", &bad, d))) {
            a->out_path = v;
        } else if (strcmp(arg, "--no-fuse") == 0) {
            a->no_fuse = true;
        } else if (strcmp(arg, "--explain-fusion") == 0) {
            a->explain_fusion = true;
        } else if ((v = take_value(argc, argv, &i, "--dump-after", &bad, d))) {
            if (strcmp(v, "fuse") != 0 && strcmp(v, "lower") != 0)
                diag_error_plain(d, "unknown pass '%s' for --dump-after; passes: fuse, lower", v);
            a->dump_after = v;
        } else if ((v = take_value(argc, argv, &i, "--header", &bad, d))) {
            a->header_path = v;
        } else if ((v = take_value(argc, argv, &i, "--cpu", &bad, d))) {
            a->cpu.cpu = v;
        } else if ((v = take_value(argc, argv, &i, "--features", &bad, d))) {
            a->cpu.features = v;
        } else if ((v = take_value(argc, argv, &i, "--target", &bad, d))) {  /* CUDA back end */
            a->target_given = true;
            if (strcmp(v, "cpu") == 0) a->target = TARGET_CPU;
            else if (strcmp(v, "cuda") == 0) a->target = TARGET_CUDA;
            else diag_error_plain(d, "unknown target '%s'; available: cpu, cuda", v);
        } else if ((v = take_value(argc, argv, &i, "--arch", &bad, d))) {    /* CUDA back end */
            if (!is_cuda_arch(v))
                diag_error_plain(d, "unknown CUDA architecture '%s'; available: sm_80 (the default), sm_90", v);
            a->cuda.arch = v;
        } else if (strncmp(arg, "-O", 2) == 0 && arg[2] >= '0' && arg[2] <= '3' && arg[3] == 0) {
            a->cpu.opt_level = arg[2] - '0';
        } else if ((v = take_value(argc, argv, &i, "-I", &bad, d))) {
            a->include_dirs[a->ninclude++] = v;
        } else if ((v = take_value(argc, argv, &i, "-D", &bad, d))) {
            if (parse_define(v, &a->defs[a->ndefs], d)) a->ndefs++;
        } else if (!bad) {
            unknown_option(arg, d);
        }
    }
    if (a->help || a->version || d->nerrors > nerr) {
        free(positional);
        return d->nerrors == nerr;
    }

    /* The command: a leading word, or --emit. */
    int first_file = 0;
    bool is_command = npos > 0 && (strcmp(positional[0], "check") == 0 || strcmp(positional[0], "run") == 0);
    if (emit != CMD_NONE) {
        a->cmd = emit;
        if (is_command) diag_error_plain(d, "--emit cannot be combined with '%s'", positional[0]);
    } else if (is_command) {
        a->cmd = strcmp(positional[0], "check") == 0 ? CMD_CHECK : CMD_RUN;
        first_file = 1;
    } else if (npos > 0 && a->out_path) {
        a->cmd = CMD_BUILD;   /* tcc FILE -o FILE.so */
    } else if (npos > 0 && !strchr(positional[0], '.') && !strchr(positional[0], '/')) {
        const char *near = diag_closest(positional[0], COMMANDS, TD_COUNTOF(COMMANDS));
        if (near) diag_error_plain(d, "unknown command '%s'; did you mean '%s'?", positional[0], near);
        else diag_error_plain(d, "unknown command '%s'; commands: check, run, --emit=KIND, or FILE -o FILE.so",
                              positional[0]);
    } else {
        diag_error_plain(d, "no command given; commands: check, run, --emit=KIND, or FILE -o FILE.so");
        if (npos > 0) diag_help(d, "to check a program: tcc check %s", positional[0]);
        else diag_help(d, "see 'tcc --help'");
    }
    if (d->nerrors > nerr) {
        free(positional);
        return false;
    }
    if (npos - first_file == 1) a->file = positional[first_file];
    else if (npos - first_file == 0)
        diag_error_plain(d, "no input file");
    else
        diag_error_plain(d, "expected one input file, got %d ('%s' and '%s')", npos - first_file,
                         positional[first_file], positional[first_file + 1]);
    free(positional);

    if (a->cmd != CMD_RUN && a->run_only_flag)
        diag_error_plain(d, "%s is only valid with 'tcc run'", a->run_only_flag);
    if (a->out_path && (a->cmd == CMD_CHECK || a->cmd == CMD_RUN))
        diag_error_plain(d, "-o is only valid with --emit or a .so build (use --out NAME=PATH with 'tcc run')");
    if (a->cmd == CMD_EMIT_OBJ && !a->out_path)
        diag_error_plain(d, "--emit=obj writes binary data: give the file with -o FILE.o");
    if (a->header_path && a->cmd != CMD_BUILD)
        diag_error_plain(d, "--header is only valid when building a .so: tcc FILE -o FILE.so --header FILE.h");
    /* CUDA back end: --emit=cuda|ptx run for CUDA; the CPU's emit kinds and run do not */
    if (a->cmd == CMD_EMIT_CUDA || a->cmd == CMD_EMIT_PTX) {
        if (a->target_given && a->target != TARGET_CUDA)
            diag_error_plain(d, "--emit=%s is for --target=cuda", a->cmd == CMD_EMIT_CUDA ? "cuda" : "ptx");
        a->target = TARGET_CUDA;
    }
    if (a->target == TARGET_CUDA) {
        if (a->cmd == CMD_EMIT_LLVM || a->cmd == CMD_EMIT_ASM || a->cmd == CMD_EMIT_OBJ)
            diag_error_plain(d, "--emit=llvm, asm and obj are for --target=cpu; with --target=cuda use --emit=cuda or ptx");
        if (a->cmd == CMD_RUN)
            diag_error_plain(d, "tcc run takes --engine cuda (or cuda-emu, the emulator), not --target=cuda");
        if (a->cmd == CMD_BUILD && a->header_path)
            diag_error_plain(d, "--header is not supported with --target=cuda yet");
    }
    if (a->cuda.arch && a->target != TARGET_CUDA && !(a->cmd == CMD_RUN && a->engine == ENGINE_CUDA))
        diag_error_plain(d, "--arch is only valid with --target=cuda (or --emit=cuda|ptx, or tcc run --engine cuda)");
    if (a->cmd == CMD_RUN && !a->kernel)
        diag_error_plain(d, "tcc run needs --kernel NAME");
    for (int i = 0; i < a->ndefs; i++)
        for (int j = 0; j < i; j++)
            if (strcmp(a->defs[i].name, a->defs[j].name) == 0)
                diag_error_plain(d, "size %s is set twice with -D", a->defs[i].name);
    return d->nerrors == nerr;
}

static void free_args(Args *a)
{
    Binding *lists[] = {a->ins, a->outs, a->defs};
    int counts[] = {a->nins, a->nouts, a->ndefs};
    for (int l = 0; l < 3; l++) {
        for (int i = 0; i < counts[l]; i++) free((char *)lists[l][i].name);
        free(lists[l]);
    }
    free(a->include_dirs);
}

/* ---- output files: written under a temporary name, renamed when everything succeeded -------- */

typedef struct PendingFile {
    const char *path;   /* the final name */
    char       *tmp;    /* the temporary one, in the same directory so rename is atomic */
} PendingFile;

static FILE *pending_open(PendingFile *p, const char *path, DiagSink *d)
{
    p->path = path;
    p->tmp = malloc(strlen(path) + 16);
    if (!p->tmp) td_internal_error(__FILE__, __LINE__, "out of memory");
    sprintf(p->tmp, "%s.tmp-XXXXXX", path);
    int fd = mkstemp(p->tmp);
    if (fd < 0) {
        diag_error_plain(d, "cannot write '%s': %s", path, strerror(errno));
        free(p->tmp);
        p->tmp = NULL;
        return NULL;
    }
    /* mkstemp creates the file 0600; give it the mode a plain fopen would have. */
    mode_t mask = umask(0);
    umask(mask);
    (void)fchmod(fd, 0666 & ~mask);
    FILE *f = fdopen(fd, "wb");
    if (!f) {
        diag_error_plain(d, "cannot write '%s': %s", path, strerror(errno));
        close(fd);
        unlink(p->tmp);
        free(p->tmp);
        p->tmp = NULL;
    }
    return f;
}

/* Closes f; on a write error reports it. */
static bool pending_close(PendingFile *p, FILE *f, bool ok, DiagSink *d)
{
    int e = ok ? 0 : errno;
    if (fclose(f) != 0 && ok) {
        e = errno;
        ok = false;
    }
    if (!ok) diag_error_plain(d, "cannot write '%s': %s", p->path, strerror(e ? e : EIO));
    return ok;
}

/* Renames every pending file into place (commit) or removes them all. */
static bool pending_finish(PendingFile *p, int n, bool commit, DiagSink *d)
{
    bool ok = true;
    for (int i = 0; i < n; i++) {
        if (!p[i].tmp) continue;
        if (commit && rename(p[i].tmp, p[i].path) != 0) {
            diag_error_plain(d, "cannot write '%s': %s", p[i].path, strerror(errno));
            ok = false;
        }
        if (!commit || !ok) unlink(p[i].tmp);
        free(p[i].tmp);
        p[i].tmp = NULL;
    }
    return ok;
}

/* Writes text to path ("-" or NULL: stdout). */
static bool write_text(const char *path, const StrBuf *text, DiagSink *d)
{
    if (!path || strcmp(path, "-") == 0) {
        fwrite(text->data ? text->data : "", 1, text->len, stdout);
        return true;
    }
    PendingFile p = {0};
    FILE *f = pending_open(&p, path, d);
    if (!f) return false;
    bool ok = fwrite(text->data ? text->data : "", 1, text->len, f) == text->len;
    ok = pending_close(&p, f, ok, d);
    return pending_finish(&p, 1, ok, d) && ok;
}

/* ---- compiling ---------------------------------------------------------------------------------- */

/* Compiles a->file and verifies the IR. Returns NULL with *rc set on failure. */
static Module *compile(const Args *a, DiagSink *d, int *rc)
{
    FeOptions fo = {a->include_dirs, a->ninclude, a->stdlib_dir};
    Module *m = fe_compile_file(a->file, &fo, d);
    if (!m || d->nerrors > 0) {
        if (m) ir_module_free(m);
        *rc = EXIT_USER;
        return NULL;
    }
    StrBuf err = {0};
    if (!ir_verify(m, &err)) {
        fflush(stdout);
        const char *line = sb_cstr(&err);
        while (*line) {
            const char *nl = strchr(line, '\n');
            int n = nl ? (int)(nl - line) : (int)strlen(line);
            fprintf(stderr, "internal error: IR verifier: %.*s\n", n, line);
            line += n + (nl != NULL);
        }
        fprintf(stderr, "internal error: this is a bug in tcc; please report it with the input "
                        "that caused it\n");
        sb_free(&err);
        ir_module_free(m);
        *rc = EXIT_INTERNAL;
        return NULL;
    }
    sb_free(&err);
    return m;
}

static int cmd_check(const Args *a, DiagSink *d)
{
    int rc = 0;
    Module *m = compile(a, d, &rc);
    if (m) ir_module_free(m);
    return rc;
}

static int cmd_emit_ast(const Args *a, DiagSink *d)
{
    size_t len;
    const char *why;
    char *text = read_file_all(a->file, &len, &why);
    if (!text) {
        diag_error_plain(d, "cannot read '%s': %s", a->file, why);
        return EXIT_USER;
    }
    AstFile *f = ast_parse(a->file, text, len, d);
    int rc = EXIT_USER;
    if (d->nerrors == 0) {
        StrBuf out = {0};
        ast_print(f, &out);
        if (write_text(a->out_path, &out, d)) rc = 0;
        sb_free(&out);
    }
    ast_file_free(f);
    return rc;
}

static int cmd_emit_ir(const Args *a, DiagSink *d)
{
    int rc = 0;
    Module *m = compile(a, d, &rc);
    if (!m) return rc;
    StrBuf out = {0};
    ir_print_module(m, &out);
    rc = write_text(a->out_path, &out, d) ? 0 : EXIT_USER;
    sb_free(&out);
    ir_module_free(m);
    return rc;
}

/* The passes of compiled code over a checked module, in order (see passes/passes.h), with
 * --no-fuse, --explain-fusion and --dump-after applied. Returns the loop IR. */
static LoopModule *run_pipeline(const Args *a, Module *m)
{
    StrBuf text = {0};
    if (!a->no_fuse) pass_fuse(m, a->explain_fusion ? &text : NULL);
    fputs(sb_cstr(&text), stderr);
    sb_clear(&text);
    StrBuf err = {0};
    if (!ir_verify(m, &err)) {
        fprintf(stderr, "internal error: IR verifier after fusion:\n%s", sb_cstr(&err));
        exit(EXIT_INTERNAL);
    }
    sb_free(&err);
    if (a->dump_after && strcmp(a->dump_after, "fuse") == 0) ir_print_module(m, &text);
    /* the CUDA back end takes the loops unfused: it has no heap inside a kernel */
    StrBuf why = {0};
    bool cuda = a->target == TARGET_CUDA ||
                (a->cmd == CMD_RUN && (a->engine == ENGINE_CUDA || a->engine == ENGINE_CUDA_EMU));
    LowerOptions lo = {.no_fuse = a->no_fuse || cuda, .explain = a->explain_fusion ? &why : NULL, .gpu = cuda};
    LoopModule *lm = ir_lower_module(m, &lo);
    fputs(sb_cstr(&why), stderr);
    sb_free(&why);
    if (a->dump_after && strcmp(a->dump_after, "lower") == 0) loop_print_module(lm, &text);
    fputs(sb_cstr(&text), stdout);
    sb_free(&text);
    return lm;
}

/* Compiles the file down to verified loop IR. On failure returns NULL with *rc set. */
static LoopModule *compile_loops(const Args *a, DiagSink *d, int *rc, Module **m)
{
    *m = compile(a, d, rc);
    if (!*m) return NULL;
    LoopModule *lm = run_pipeline(a, *m);
    StrBuf err = {0};
    if (!loop_verify(lm, &err)) {
        fprintf(stderr, "internal error: loop IR verifier:\n%s", sb_cstr(&err));
        *rc = EXIT_INTERNAL;
        lm = NULL;
    }
    sb_free(&err);
    return lm;
}

/* ---- CUDA back end: the scheduled loop IR, --emit=cuda|ptx and CUDA .so builds ------------------- */

/* pass_gpu_map on verified loop IR, verified again; NULL (an internal error) on failure. */
static LoopModule *gpu_schedule(Module *m, LoopModule *lm, int *rc)
{
    LoopModule *g = pass_gpu_map(m, lm);
    StrBuf err = {0};
    if (!loop_verify(g, &err)) {
        fprintf(stderr, "internal error: loop IR verifier after gpu_map:\n%s", sb_cstr(&err));
        *rc = EXIT_INTERNAL;
        g = NULL;
    }
    sb_free(&err);
    return g;
}

/* Reports a CUDA back end failure: an internal error (exit 2) when the message says so (the
 * generated source did not compile), a user error otherwise (no NVRTC, no C compiler). */
static int cuda_error(DiagSink *d, StrBuf *err)
{
    const char *msg = sb_cstr(err);
    if (strstr(msg, "internal error")) {
        fflush(stdout);
        fprintf(stderr, "%s%s", msg, err->len && msg[err->len - 1] == '\n' ? "" : "\n");
        fprintf(stderr, "internal error: this is a bug in tcc; please report it with the input that caused it\n");
        return EXIT_INTERNAL;
    }
    size_t n = strlen(msg);
    while (n && msg[n - 1] == '\n') n--;
    diag_error_plain(d, "%.*s", (int)n, msg);
    return EXIT_USER;
}

/* --emit=cuda|ptx, and `tcc FILE --target=cuda -o FILE.so` */
static int cmd_cuda(const Args *a, DiagSink *d)
{
    int rc = 0;
    Module *m;
    LoopModule *lm = compile_loops(a, d, &rc, &m);
    if (lm) lm = gpu_schedule(m, lm, &rc);
    if (lm) {
        StrBuf source = {0}, ptx = {0}, err = {0};
        CudaLaunchPlan *plan = NULL;
        if (a->cmd == CMD_BUILD) {
            if (!cuda_build_shared(lm, &a->cuda, a->out_path, &err)) rc = cuda_error(d, &err);
        } else if (!cuda_generate(lm, &a->cuda, &source, &plan, &err)) {
            rc = cuda_error(d, &err);
        } else if (a->cmd == CMD_EMIT_PTX && !cuda_compile_ptx(sb_cstr(&source), &a->cuda, &ptx, &err)) {
            rc = cuda_error(d, &err);
        } else {
            rc = write_text(a->out_path, a->cmd == CMD_EMIT_PTX ? &ptx : &source, d) ? 0 : EXIT_USER;
        }
        cuda_plan_free(plan);
        sb_free(&source);
        sb_free(&ptx);
        sb_free(&err);
    }
    if (m) ir_module_free(m);
    return rc;
}

/* ---- end of the CUDA back end's commands ------------------------------------------------------------ */

static int cmd_emit_loops(const Args *a, DiagSink *d)
{
    int rc = 0;
    Module *m;
    LoopModule *lm = compile_loops(a, d, &rc, &m);
    if (lm && a->target == TARGET_CUDA) lm = gpu_schedule(m, lm, &rc);  /* CUDA back end */
    if (lm) {
        StrBuf out = {0};
        loop_print_module(lm, &out);
        rc = write_text(a->out_path, &out, d) ? 0 : EXIT_USER;
        sb_free(&out);
    }
    if (m) ir_module_free(m);
    return rc;
}

/* Reports an error message from a back end (which may end in a newline) as a user error:
 * these fail on bad --cpu/--features values or a missing linker, not on compiler bugs. */
static void backend_error(DiagSink *d, StrBuf *err)
{
    const char *msg = sb_cstr(err);
    size_t n = strlen(msg);
    while (n && msg[n - 1] == '\n') n--;
    diag_error_plain(d, "%.*s", (int)n, msg);
}

/* --emit=llvm|asm|obj */
static int cmd_emit_native(const Args *a, DiagSink *d)
{
    int rc = 0;
    Module *m;
    LoopModule *lm = compile_loops(a, d, &rc, &m);
    if (lm) {
        CpuEmitKind kind = a->cmd == CMD_EMIT_LLVM ? CPU_EMIT_LLVM : a->cmd == CMD_EMIT_ASM ? CPU_EMIT_ASM : CPU_EMIT_OBJ;
        StrBuf out = {0}, err = {0};
        if (!cpu_emit(lm, &a->cpu, kind, &out, &err)) {
            backend_error(d, &err);
            rc = EXIT_USER;
        } else {
            rc = write_text(a->out_path, &out, d) ? 0 : EXIT_USER;
        }
        sb_free(&out);
        sb_free(&err);
    }
    if (m) ir_module_free(m);
    return rc;
}

/* tcc FILE -o FILE.so [--header FILE.h] */
static int cmd_build(const Args *a, DiagSink *d)
{
    int rc = 0;
    Module *m;
    LoopModule *lm = compile_loops(a, d, &rc, &m);
    if (lm) {
        StrBuf err = {0};
        if (!cpu_build_shared(lm, &a->cpu, a->out_path, &err) ||
            (a->header_path && !cpu_write_header(m, a->header_path, &err))) {
            backend_error(d, &err);
            rc = EXIT_USER;
        }
        sb_free(&err);
    }
    if (m) ir_module_free(m);
    return rc;
}

/* ---- tcc run ------------------------------------------------------------------------------------ */

typedef struct Run {
    const Args   *args;
    Module       *module;     /* the whole compiled file (the cpu engine compiles all of it) */
    DiagSink     *d;
    Kernel       *k;
    int64_t      *sizes;      /* k->nsizes; < 0 while unbound */
    const Binding **in_file;  /* k->nins: the --in binding of each parameter, or NULL */
    const Binding **out_file; /* k->nouts: the --out binding of each output, or NULL */
    TensorData   *ins;        /* k->nins, in the parameters' storage form */
    TensorData   *outs;       /* k->nouts */
} Run;

/* Appends `f32[N, D]`, a tensor's declared type. */
static void put_decl_type(const Tensor *t, StrBuf *sb)
{
    sb_puts(sb, dtype_name(t->dtype));
    if (t->rank == 0) return;
    sb_putc(sb, '[');
    for (int i = 0; i < t->rank; i++) {
        if (i) sb_puts(sb, ", ");
        ir_print_size(t->shape[i], sb);
    }
    sb_putc(sb, ']');
}

static int find_tensor(Tensor **ts, int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (strcmp(ts[i]->name, name) == 0) return i;
    return -1;
}

/* "; did you mean 'x'?" when one of the n names is close to name, else "". */
static const char *suggest(const char *name, const char *const *names, int n, StrBuf *sb)
{
    const char *near = diag_closest(name, names, n);
    sb_clear(sb);
    if (near) sb_printf(sb, "; did you mean '%s'?", near);
    return sb_cstr(sb);
}

/* The names of n tensors or sizes, as an array (for suggest) and as "a, b, c" in list. */
static const char **names_of(Tensor **ts, Var **vs, int n, StrBuf *list)
{
    const char **names = malloc(sizeof(char *) * (size_t)(n + 1));
    if (!names) td_internal_error(__FILE__, __LINE__, "out of memory");
    sb_clear(list);
    for (int i = 0; i < n; i++) {
        names[i] = ts ? ts[i]->name : vs[i]->name;
        sb_printf(list, "%s%s", i ? ", " : "", names[i]);
    }
    if (n == 0) sb_puts(list, "(none)");
    return names;
}

static Kernel *find_kernel(Module *m, const char *name, const char *file, DiagSink *d)
{
    for (int i = 0; i < m->nkernels; i++)
        if (strcmp(m->kernels[i]->name, name) == 0) return m->kernels[i];
    if (m->nkernels == 0) {
        diag_error_plain(d, "no kernel '%s': %s defines no kernels", name, file);
        return NULL;
    }
    StrBuf list = {0}, near = {0};
    const char **names = malloc(sizeof(char *) * (size_t)m->nkernels);
    if (!names) td_internal_error(__FILE__, __LINE__, "out of memory");
    for (int i = 0; i < m->nkernels; i++) {
        names[i] = m->kernels[i]->name;
        sb_printf(&list, "%s%s", i ? ", " : "", names[i]);
    }
    diag_error_plain(d, "no kernel '%s' in %s%s", name, file, suggest(name, names, m->nkernels, &near));
    diag_help(d, "kernels in %s: %s", file, sb_cstr(&list));
    free(names);
    sb_free(&list);
    sb_free(&near);
    return NULL;
}

/* Maps each --in (or --out) binding to its parameter (output); reports unknown names
 * with the list of legal ones, and duplicates. */
static void match_tensors(Run *r, const char *opt, const Binding *bs, int nb, Tensor **ts, int nt,
                          const Binding **slot)
{
    StrBuf list = {0}, near = {0};
    const char **names = names_of(ts, NULL, nt, &list);
    bool is_out = strcmp(opt, "--out") == 0;
    for (int i = 0; i < nb; i++) {
        int t = find_tensor(ts, nt, bs[i].name);
        if (t < 0) {
            diag_error_plain(r->d, "%s %s=%s: kernel %s has no %s '%s'%s", opt, bs[i].name,
                             bs[i].value, r->k->name, is_out ? "output" : "parameter", bs[i].name,
                             suggest(bs[i].name, names, nt, &near));
            diag_help(r->d, "%s of %s: %s", is_out ? "outputs" : "parameters", r->k->name,
                      sb_cstr(&list));
        } else if (slot[t]) {
            diag_error_plain(r->d, "%s %s is given twice", opt, bs[i].name);
        } else {
            slot[t] = &bs[i];
        }
        for (int j = 0; is_out && j < i; j++)
            if (strcmp(bs[j].value, bs[i].value) == 0)
                diag_error_plain(r->d, "--out %s and --out %s both write '%s'", bs[j].name,
                                 bs[i].name, bs[i].value);
    }
    free(names);
    sb_free(&list);
    sb_free(&near);
}

/* Presets the sizes given with -D. */
static void match_defines(Run *r)
{
    const Args *a = r->args;
    Kernel *k = r->k;
    StrBuf list = {0}, near = {0};
    const char **names = names_of(NULL, k->sizes, k->nsizes, &list);
    for (int i = 0; i < a->ndefs; i++) {
        int s = 0;
        while (s < k->nsizes && strcmp(names[s], a->defs[i].name) != 0) s++;
        if (s < k->nsizes) {
            r->sizes[s] = a->defs[i].number;
            continue;
        }
        diag_error_plain(r->d, "-D %s=%s: kernel %s has no size named '%s'%s", a->defs[i].name,
                         a->defs[i].value, k->name, a->defs[i].name,
                         suggest(a->defs[i].name, names, k->nsizes, &near));
        diag_help(r->d, "sizes of %s: %s", k->name, sb_cstr(&list));
    }
    free(names);
    sb_free(&list);
    sb_free(&near);
}

/* Maps --in and --out to parameters and outputs and -D to sizes; every input needs a file
 * or --random. */
static bool match_names(Run *r)
{
    const Args *a = r->args;
    Kernel *k = r->k;
    int nerr = r->d->nerrors;
    match_tensors(r, "--in", a->ins, a->nins, k->ins, k->nins, r->in_file);
    match_tensors(r, "--out", a->outs, a->nouts, k->outs, k->nouts, r->out_file);
    match_defines(r);
    StrBuf list = {0};
    int missing = 0;
    for (int p = 0; p < k->nins && !a->random; p++)
        if (!r->in_file[p]) sb_printf(&list, "%s%s", missing++ ? ", " : "", k->ins[p]->name);
    if (missing) {
        diag_error_plain(r->d, "no value for input%s %s of kernel %s", missing > 1 ? "s" : "",
                         sb_cstr(&list), k->name);
        diag_help(r->d, "give each with --in NAME=FILE.npy, or generate them with --random SEED");
    }
    sb_free(&list);
    return r->d->nerrors == nerr;
}

/* Reads every --in file and converts it to its parameter's dtype. */
static bool load_inputs(Run *r)
{
    Kernel *k = r->k;
    int nerr = r->d->nerrors;
    StrBuf err = {0};
    for (int p = 0; p < k->nins; p++) {
        const Binding *b = r->in_file[p];
        if (!b) continue;
        const Tensor *t = k->ins[p];
        TensorData raw;
        sb_clear(&err);
        if (!npy_read(b->value, &raw, &err)) {
            diag_error_plain(r->d, "%s", sb_cstr(&err));
            continue;
        }
        if (raw.rank != t->rank) {
            sb_clear(&err);
            put_decl_type(t, &err);
            StrBuf shape = {0};
            npy_format_shape(&raw, &shape);
            diag_error_plain(r->d, "--in %s=%s: %s is %s (rank %d) but %s has shape %s (rank %d)",
                             b->name, b->value, t->name, sb_cstr(&err), t->rank, b->value,
                             sb_cstr(&shape), raw.rank);
            sb_free(&shape);
        } else if (!npy_to_param(&raw, t->dtype, t->name, b->value, &r->ins[p], &err)) {
            diag_error_plain(r->d, "--in %s=%s: %s", b->name, b->value, sb_cstr(&err));
        }
        npy_free(&raw);
    }
    sb_free(&err);
    return r->d->nerrors == nerr;
}

/* Evaluates a declared shape with the bound sizes into td (dtype, rank, shape, nbytes) and
 * allocates zeroed storage. */
static bool alloc_tensor(Run *r, const Tensor *t, TensorData *td)
{
    memset(td, 0, sizeof *td);
    td->dtype = t->dtype;
    td->rank = t->rank;
    size_t n = 1;
    for (int i = 0; i < t->rank; i++) {
        int64_t v;
        if (!ir_eval_size(r->k, t->shape[i], r->sizes, &v) || v < 0 ||
            !ck_mul_size(n, (size_t)v, &n)) {
            StrBuf ty = {0};
            put_decl_type(t, &ty);
            diag_error_plain(r->d, "%s: the shape of %s: %s cannot be computed with these sizes "
                             "(negative or overflowing)", r->k->name, t->name, sb_cstr(&ty));
            sb_free(&ty);
            return false;
        }
        td->shape[i] = v;
    }
    if (!dtype_storage_bytes(t->dtype, n, &td->nbytes)) {
        diag_error_plain(r->d, "%s: %s is too large to allocate", r->k->name, t->name);
        return false;
    }
    td->data = calloc(1, td->nbytes ? td->nbytes : 1);
    if (!td->data) {
        diag_error_plain(r->d, "%s: out of memory allocating %zu bytes for %s", r->k->name,
                         td->nbytes, t->name);
        return false;
    }
    return true;
}

/* Prints an ir_bind_sizes message (lines ending in '\n') as errors. */
static void report_lines(DiagSink *d, const char *text)
{
    while (*text) {
        const char *nl = strchr(text, '\n');
        int n = nl ? (int)(nl - text) : (int)strlen(text);
        diag_error_plain(d, "%.*s", n, text);
        text += n + (nl != NULL);
    }
}

/* Binds the sizes from the --in arrays and -D, then checks that every size is known. */
static bool bind_sizes(Run *r)
{
    Kernel *k = r->k;
    /* Bind from the given inputs only: a view of the kernel whose parameters are those. */
    Kernel given = *k;
    given.ins = malloc(sizeof(Tensor *) * (size_t)(k->nins + 1));
    const int64_t **shapes = malloc(sizeof(int64_t *) * (size_t)(k->nins + 1));
    int *ranks = malloc(sizeof(int) * (size_t)(k->nins + 1));
    given.nins = 0;
    for (int p = 0; p < k->nins; p++) {
        if (!r->in_file[p]) continue;
        given.ins[given.nins] = k->ins[p];
        shapes[given.nins] = r->ins[p].shape;
        ranks[given.nins++] = r->ins[p].rank;
    }
    StrBuf err = {0};
    bool ok = ir_bind_sizes(&given, (const int64_t *const *)shapes, ranks, r->sizes, &err);
    if (!ok) report_lines(r->d, sb_cstr(&err));
    for (int s = 0; ok && s < k->nsizes; s++) {
        if (r->sizes[s] >= 1) continue;
        const char *name = k->sizes[s]->name;
        diag_error_plain(r->d, "size %s is not determined by any input; bind it with -D %s=...",
                         name, name);
        ok = false;
    }
    sb_free(&err);
    free(given.ins);
    free(shapes);
    free(ranks);
    return ok;
}

/* splitmix64: a small, well-mixed generator; the sequence is part of --random's contract. */
static uint64_t splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15u);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
    return z ^ (z >> 31);
}

/* Mantissa bits of each float dtype: values k / 2^(p-1) - 1 are exact in it. */
static int float_precision(DType t)
{
    return t == DT_F64 ? 53 : t == DT_F32 ? 24 : t == DT_F16 ? 11 : 8;
}

/* Fills parameter p with values from SEED and p: floats uniform in [-1, 1) (exact in the
 * dtype), integers uniform in [-8, 7] clamped to the dtype's range, bools 0/1. */
static bool random_input(Run *r, int p)
{
    const Tensor *t = r->k->ins[p];
    TensorData *td = &r->ins[p];
    if (!alloc_tensor(r, t, td)) return false;
    uint64_t state = r->args->seed ^ (0xD1B54A32D192ED03u * (uint64_t)(p + 1));
    splitmix64(&state);
    size_t n = npy_count(td);
    if (dtype_is_float(t->dtype)) {
        int prec = float_precision(t->dtype);
        for (size_t i = 0; i < n; i++) {
            uint64_t x = splitmix64(&state) >> (64 - prec);
            dtype_store_f(t->dtype, td->data, i, ldexp((double)x, 1 - prec) - 1.0);
        }
    } else {
        int64_t lo, hi;
        dtype_int_range(t->dtype, &lo, &hi);
        if (lo < -8) lo = -8;
        if (hi > 7) hi = 7;
        uint64_t span = (uint64_t)(hi - lo) + 1;
        for (size_t i = 0; i < n; i++)
            dtype_store_i(t->dtype, td->data, i, lo + (int64_t)(splitmix64(&state) % span));
    }
    return true;
}

/* ---- printing tensors ------------------------------------------------------------------------------ */

typedef struct TensorPrinter {
    const TensorData *t;
    bool     summarize;   /* long axes show PRINT_EDGE elements at each end */
    int      width;       /* every element is right-aligned to this width */
    bool     measuring;   /* first pass: compute width only */
    StrBuf  *out;
    size_t   line_start;  /* offset in out of the current line, for wrapping */
} TensorPrinter;

static void format_element(const TensorData *t, size_t i, char *buf, size_t cap)
{
    if (t->dtype == DT_BOOL) {
        snprintf(buf, cap, "%s", dtype_load_i(t->dtype, t->data, i) ? "true" : "false");
    } else if (dtype_is_float(t->dtype)) {
        double v = dtype_load_f(t->dtype, t->data, i);
        if (isnan(v)) snprintf(buf, cap, "nan");
        else snprintf(buf, cap, "%.6g", v);
    } else {
        snprintf(buf, cap, "%" PRId64, dtype_load_i(t->dtype, t->data, i));
    }
}

static void tp_element(TensorPrinter *tp, size_t flat, const char *text_override)
{
    char buf[64];
    const char *s = text_override;
    if (!s) {
        format_element(tp->t, flat, buf, sizeof buf);
        s = buf;
    }
    int len = (int)strlen(s);
    if (tp->measuring) {
        if (!text_override && len > tp->width) tp->width = len;
        return;
    }
    sb_printf(tp->out, "%*s", text_override ? len : tp->width, s);
}

/* Separator before an element of the innermost axis: ", ", or a line break when the line
 * would grow past PRINT_LINE_WIDTH. */
static void tp_inner_sep(TensorPrinter *tp, int indent)
{
    if (tp->measuring) return;
    if (tp->out->len - tp->line_start + 2 + (size_t)tp->width > PRINT_LINE_WIDTH) {
        sb_puts(tp->out, ",\n");
        tp->line_start = tp->out->len;
        sb_printf(tp->out, "%*s", indent, "");
    } else {
        sb_puts(tp->out, ", ");
    }
}

static void tp_outer_sep(TensorPrinter *tp, int axis)
{
    if (tp->measuring) return;
    sb_putc(tp->out, ',');
    for (int i = axis + 1; i < tp->t->rank; i++) sb_putc(tp->out, '\n');
    tp->line_start = tp->out->len;
    sb_printf(tp->out, "%*s", axis + 1, "");
}

static void tp_axis(TensorPrinter *tp, int axis, size_t base)
{
    const TensorData *t = tp->t;
    int64_t n = t->shape[axis];
    size_t stride = 1;
    for (int i = axis + 1; i < t->rank; i++) stride *= (size_t)t->shape[i];
    bool inner = axis == t->rank - 1;
    if (!tp->measuring) sb_putc(tp->out, '[');
    for (int64_t j = 0; j < n; j++) {
        if (j > 0) {
            if (inner) tp_inner_sep(tp, t->rank);
            else tp_outer_sep(tp, axis);
        }
        if (tp->summarize && n > 2 * PRINT_EDGE && j == PRINT_EDGE) {
            tp_element(tp, 0, "...");
            if (inner) tp_inner_sep(tp, t->rank);
            else tp_outer_sep(tp, axis);
            j = n - PRINT_EDGE;
        }
        if (inner) tp_element(tp, base + (size_t)j * stride, NULL);
        else tp_axis(tp, axis + 1, base + (size_t)j * stride);
    }
    if (!tp->measuring) sb_putc(tp->out, ']');
}

/* `y: f32[2, 3] =` and the values in numpy-like nested brackets. */
static void print_tensor(const Tensor *decl, const TensorData *t, StrBuf *out)
{
    size_t n = npy_count(t);
    sb_printf(out, "%s: %s", decl->name, dtype_name(t->dtype));
    if (t->rank > 0) {
        sb_putc(out, '[');
        for (int i = 0; i < t->rank; i++) sb_printf(out, "%s%" PRId64, i ? ", " : "", t->shape[i]);
        sb_putc(out, ']');
    }
    sb_puts(out, " =\n");
    TensorPrinter tp = {t, n > PRINT_MAX_ELEMENTS, 0, true, out, 0};
    if (t->rank == 0) {
        tp.measuring = false;
        tp_element(&tp, 0, NULL);
    } else if (n == 0) {
        for (int i = 0; i < t->rank; i++) sb_putc(out, '[');
        for (int i = 0; i < t->rank; i++) sb_putc(out, ']');
    } else {
        tp_axis(&tp, 0, 0);
        tp.measuring = false;
        tp.line_start = out->len;
        tp_axis(&tp, 0, 0);
    }
    sb_putc(out, '\n');
    if (tp.summarize)
        sb_printf(out, "(%zu elements, summarised; write them all with --out %s=FILE.npy)\n", n,
                  decl->name);
}

/* Writes every --out file (all or none) and prints the other outputs when asked to. */
static bool emit_outputs(Run *r)
{
    Kernel *k = r->k;
    PendingFile *pending = calloc((size_t)k->nouts + 1, sizeof *pending);
    bool ok = true;
    StrBuf err = {0};
    for (int o = 0; o < k->nouts && ok; o++) {
        if (!r->out_file[o]) continue;
        TensorData arr;
        if (!npy_from_tensor(&r->outs[o], &arr, &err)) {
            diag_error_plain(r->d, "--out %s: %s", k->outs[o]->name, sb_cstr(&err));
            ok = false;
            break;
        }
        FILE *f = pending_open(&pending[o], r->out_file[o]->value, r->d);
        if (f) ok = pending_close(&pending[o], f, npy_write(f, &arr), r->d);
        else ok = false;
        npy_free(&arr);
    }
    ok = pending_finish(pending, k->nouts, ok, r->d) && ok;
    free(pending);
    sb_free(&err);
    if (!ok) return false;

    bool print_rest = r->args->print || r->args->nouts == 0;
    StrBuf text = {0};
    for (int o = 0; o < k->nouts && print_rest; o++)
        if (!r->out_file[o]) print_tensor(k->outs[o], &r->outs[o], &text);
    fwrite(text.data ? text.data : "", 1, text.len, stdout);
    sb_free(&text);
    return true;
}

/* The cpu engine: lowers the module, JIT-compiles it for this machine and calls the kernel
 * on the same buffers the interpreter would use. */
static bool run_compiled(Run *r, StrBuf *err)
{
    Kernel *k = r->k;
    Module *m = r->module;
    LoopModule *lm = run_pipeline(r->args, m);
    if (!loop_verify(lm, err)) {
        fprintf(stderr, "internal error: loop IR verifier:\n%s", sb_cstr(err));
        exit(EXIT_INTERNAL);
    }
    CpuJit *jit = cpu_jit_compile(lm, &r->args->cpu, err);
    if (!jit) return false;
    TdslRawKernel fn = cpu_jit_lookup(jit, k->name);
    if (!fn) td_internal_error(__FILE__, __LINE__, "kernel %s missing from its JIT module", k->name);
    void **buffers = calloc((size_t)(k->nins + k->nouts) + 1, sizeof(void *));
    if (!buffers) td_internal_error(__FILE__, __LINE__, "out of memory");
    for (int i = 0; i < k->nins; i++) buffers[i] = r->ins[i].data;
    for (int o = 0; o < k->nouts; o++) buffers[k->nins + o] = r->outs[o].data;
    bool ok = fn(buffers, r->sizes) == 0;
    if (!ok) sb_puts(err, "out of memory while running the compiled kernel");
    free(buffers);
    cpu_jit_free(jit);
    return ok;
}

/* ---- the cuda-emu engine (runtime/simt/): the CUDA back end's source compiled for this CPU
 * against the SIMT emulator, its launch plan followed on the same host buffers the other
 * engines use. A generated kernel that fails there (deadlock, fault) is a bug of tcc. ---- */
static bool run_cuda_emu(Run *r, StrBuf *err)
{
#ifdef TDSL_SIMT_CUDA
    Kernel *k = r->k;
    LoopModule *lm = run_pipeline(r->args, r->module);
    if (!loop_verify(lm, err)) {
        fprintf(stderr, "internal error: loop IR verifier:\n%s", sb_cstr(err));
        exit(EXIT_INTERNAL);
    }
    int rc = 0;
    LoopModule *g = gpu_schedule(r->module, lm, &rc);
    if (!g) exit(EXIT_INTERNAL);
    SimtCuda *c = NULL;
    if (!simt_cuda_build(g, &c, err)) {
        fprintf(stderr, "%s", sb_cstr(err));
        exit(EXIT_INTERNAL);
    }
    void **buffers = calloc((size_t)(k->nins + k->nouts) + 1, sizeof(void *));
    if (!buffers) td_internal_error(__FILE__, __LINE__, "out of memory");
    for (int i = 0; i < k->nins; i++) buffers[i] = r->ins[i].data;
    for (int o = 0; o < k->nouts; o++) buffers[k->nins + o] = r->outs[o].data;
    bool ok = simt_cuda_run(c, k->name, buffers, r->sizes, NULL, err);
    free(buffers);
    simt_cuda_free(c);
    if (!ok && !strstr(sb_cstr(err), "out of memory")) {
        fprintf(stderr, "internal error: the generated CUDA failed on the emulator:\n%s", sb_cstr(err));
        exit(EXIT_INTERNAL);
    }
    return ok;
#else
    (void)r;
    sb_puts(err, "the cuda-emu engine is not built (it needs the CUDA back end)");
    return false;
#endif
}
/* ---- end of the cuda-emu engine ---- */

/* ---- the cuda engine: the file JIT-compiled for CUDA as tdsl_compile does it with
 * TDSL_TARGET_CUDA (runtime/cuda_jit.c: NVRTC in memory) and run on CUDA device 0: the
 * inputs copied into one device allocation, the kernel's launch plan followed, the outputs
 * copied back. Its messages are reported here, whole (the runtime's name the kernel). ---- */
static bool run_cuda(Run *r, StrBuf *err)
{
    Kernel *k = r->k;
    LoopModule *lm = run_pipeline(r->args, r->module);
    if (!loop_verify(lm, err)) {
        fprintf(stderr, "internal error: loop IR verifier:\n%s", sb_cstr(err));
        exit(EXIT_INTERNAL);
    }
    int rc = 0;
    LoopModule *g = gpu_schedule(r->module, lm, &rc);
    if (!g) exit(EXIT_INTERNAL);
    RtCudaJit *jit = rt_cuda_jit_new(g, &r->args->cuda, err);
    if (!jit) {
        if (strstr(sb_cstr(err), "internal error")) exit(cuda_error(r->d, err));
        return false;  /* no NVRTC: run_kernel reports it */
    }
    int nio = k->nins + k->nouts;
    size_t *bytes = calloc((size_t)nio + 1, sizeof *bytes);
    void **dev = calloc((size_t)nio + 1, sizeof *dev);
    if (!bytes || !dev) td_internal_error(__FILE__, __LINE__, "out of memory");
    for (int b = 0; b < nio; b++) bytes[b] = b < k->nins ? r->ins[b].nbytes : r->outs[b - k->nins].nbytes;
    RtCudaCall io;
    rc = rt_cuda_begin(&io, rt_cuda_jit_driver(jit), 0, "--engine cuda");
    if (rc != TDSL_OK) {
        const char *msg = tdsl_last_error();
        bool absent = strstr(msg, "no CUDA driver found") || strstr(msg, "no CUDA device found");
#ifdef TDSL_SIMT_CUDA
        const char *hint = "; use --engine cuda-emu to run the generated CUDA on the CPU";
#else
        const char *hint = "; use --engine cpu or interp to run on the CPU";
#endif
        diag_error_plain(r->d, "%s%s", msg, absent ? hint : "");
    } else {
        rc = rt_cuda_alloc(&io, bytes, nio, dev);
        for (int i = 0; i < k->nins && rc == TDSL_OK; i++)
            rc = rt_cuda_copy_to_device(&io, dev[i], r->ins[i].data, bytes[i]);
        if (rc == TDSL_OK) rc = rt_cuda_jit_launch(rt_cuda_jit_kernel(jit, k->name), dev, r->sizes, 0);
        for (int o = 0; o < k->nouts && rc == TDSL_OK; o++)
            rc = rt_cuda_copy_to_host(&io, r->outs[o].data, dev[k->nins + o], bytes[k->nins + o]);
        rc = rt_cuda_end(&io, rc);
        if (rc != TDSL_OK) diag_error_plain(r->d, "%s", tdsl_last_error());
    }
    free(bytes);
    free(dev);
    rt_cuda_jit_free(jit);
    return rc == TDSL_OK;
}
/* ---- end of the cuda engine ---- */

static bool run_kernel(Run *r)
{
    Kernel *k = r->k;
    if (!match_names(r) || !load_inputs(r) || !bind_sizes(r)) return false;
    for (int p = 0; p < k->nins; p++)
        if (!r->in_file[p] && !random_input(r, p)) return false;
    for (int o = 0; o < k->nouts; o++)
        if (!alloc_tensor(r, k->outs[o], &r->outs[o])) return false;
    StrBuf err = {0};
    bool ok = r->args->engine == ENGINE_INTERP     ? ir_interp_run(k, r->sizes, r->ins, r->outs, &err)
              : r->args->engine == ENGINE_CUDA_EMU ? run_cuda_emu(r, &err)
              : r->args->engine == ENGINE_CUDA     ? run_cuda(r, &err)
                                                   : run_compiled(r, &err);
    if (!ok && err.len) {  /* else the engine reported it (the cuda engine's driver errors) */
        const char *msg = sb_cstr(&err);
        size_t n = strlen(msg);
        while (n && msg[n - 1] == '\n') n--;
        diag_error_plain(r->d, "%s: %.*s", k->name, (int)n, msg);
    }
    sb_free(&err);
    return ok && emit_outputs(r);
}

static int cmd_run(const Args *a, DiagSink *d)
{
    int rc = 0;
    Module *m = compile(a, d, &rc);
    if (!m) return rc;
    Kernel *k = find_kernel(m, a->kernel, a->file, d);
    if (!k) {
        ir_module_free(m);
        return EXIT_USER;
    }
    Run r = {a, m, d, k, NULL, NULL, NULL, NULL, NULL};
    r.sizes = malloc(sizeof(int64_t) * (size_t)(k->nsizes + 1));
    r.in_file = calloc((size_t)k->nins + 1, sizeof *r.in_file);
    r.out_file = calloc((size_t)k->nouts + 1, sizeof *r.out_file);
    r.ins = calloc((size_t)k->nins + 1, sizeof *r.ins);
    r.outs = calloc((size_t)k->nouts + 1, sizeof *r.outs);
    if (!r.sizes || !r.in_file || !r.out_file || !r.ins || !r.outs)
        td_internal_error(__FILE__, __LINE__, "out of memory");
    for (int s = 0; s < k->nsizes; s++) r.sizes[s] = -1;
    rc = run_kernel(&r) ? 0 : EXIT_USER;
    for (int p = 0; p < k->nins; p++) npy_free(&r.ins[p]);
    for (int o = 0; o < k->nouts; o++) npy_free(&r.outs[o]);
    free(r.sizes);
    free(r.in_file);
    free(r.out_file);
    free(r.ins);
    free(r.outs);
    ir_module_free(m);
    return rc;
}

/* ---- internal errors -------------------------------------------------------------------------------- */

#if defined(__SANITIZE_ADDRESS__)
#define TCC_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TCC_ASAN 1
#endif
#endif

static void on_fatal_signal(int sig)
{
    static const char abort_msg[] = "internal error: tcc aborted\n";
    static const char crash_msg[] = "internal error: tcc crashed (fatal signal); this is a bug in "
                                    "tcc; please report it with the input that caused it\n";
    if (sig == SIGABRT) {
        if (write(STDERR_FILENO, abort_msg, sizeof abort_msg - 1) < 0) { /* nothing to do */ }
    } else if (write(STDERR_FILENO, crash_msg, sizeof crash_msg - 1) < 0) { /* nothing to do */ }
    _exit(EXIT_INTERNAL);
}

/* Turns aborts (TD_ASSERT prints its details first) and crashes into exit status 2. The
 * handler runs on its own stack so a stack overflow is reported too. Sanitizer builds keep
 * their own SIGSEGV reports. */
static void install_crash_handlers(void)
{
    static char altstack[1 << 16];
    stack_t ss = {.ss_sp = altstack, .ss_size = sizeof altstack, .ss_flags = 0};
    sigaltstack(&ss, NULL);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_fatal_signal;
    sa.sa_flags = SA_ONSTACK | SA_RESETHAND;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGABRT, &sa, NULL);
#ifndef TCC_ASAN
    sigaction(SIGSEGV, &sa, NULL);
    sigaction(SIGBUS, &sa, NULL);
    sigaction(SIGFPE, &sa, NULL);
    sigaction(SIGILL, &sa, NULL);
#endif
}

/* ---- main ---------------------------------------------------------------------------------------------- */

int main(int argc, char **argv)
{
    install_crash_handlers();
    DiagSink d;
    diag_init(&d, stderr);
    Args a = {0};
    int rc = EXIT_USER;
    if (!parse_args(argc, argv, &a, &d)) {
        rc = EXIT_USER;
    } else if (a.help) {
        usage(stdout);
        rc = 0;
    } else if (a.version) {
        printf("tcc (tdsl) %s\n", TDSL_VERSION);
        rc = 0;
    } else {
        switch (a.cmd) {
        case CMD_CHECK: rc = cmd_check(&a, &d); break;
        case CMD_EMIT_AST: rc = cmd_emit_ast(&a, &d); break;
        case CMD_EMIT_IR: rc = cmd_emit_ir(&a, &d); break;
        case CMD_EMIT_LOOPS: rc = cmd_emit_loops(&a, &d); break;
        case CMD_EMIT_LLVM: case CMD_EMIT_ASM: case CMD_EMIT_OBJ: rc = cmd_emit_native(&a, &d); break;
        case CMD_BUILD: rc = a.target == TARGET_CUDA ? cmd_cuda(&a, &d) : cmd_build(&a, &d); break;
        case CMD_EMIT_CUDA: case CMD_EMIT_PTX: rc = cmd_cuda(&a, &d); break;
        case CMD_RUN: rc = cmd_run(&a, &d); break;
        case CMD_NONE: rc = EXIT_USER; break;
        }
    }
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "tcc: error: writing to stdout failed: %s\n", strerror(errno));
        if (rc == 0) rc = EXIT_USER;
    }
    free_args(&a);
    diag_free(&d);
    return rc;
}
