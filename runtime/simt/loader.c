/* loader.c: CUDA source to a loaded host library of the SIMT emulator.
 *
 * simt_compile
 *   1. scans the source (comments, strings and preprocessor lines skipped) for the kernels,
 *      the non-template __global__ functions, and for `extern __shared__ T name[];` inside
 *      functions, which it rewrites to `T *const name = (T *)simt_dynamic_shared();` on the
 *      same line (so the compiler's line numbers stay those of the source);
 *   2. appends the entry stubs: simt_module_bind(api), which stores the runtime's table,
 *      simt_shared_touch(), which makes the calling thread's __shared__ storage exist, and
 *      per kernel i, simt_entry_<i>(void **args), which unpacks the arguments and calls it;
 *   3. writes kernel.cu into a private mkdtemp directory and runs
 *          g++ -std=c++17 -O1 -fPIC -shared -include simt.h ... -x c++ kernel.cu -o kernel.so
 *      (kernels get stack-clash probes so that a deep frame cannot jump over a guard page;
 *      under AddressSanitizer they are instrumented too);
 *   4. dlopens the library, removes the directory, binds the runtime's table and looks up
 *      the entries.
 * The library's thread-local block holds its __shared__ variables (simt.h); its size comes
 * from the PT_TLS header, its address on the calling thread from dlinfo. */
#include <dlfcn.h>
#include <errno.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "simt_host.h"

#ifndef TDSL_SIMT_DIR
#define TDSL_SIMT_DIR "runtime/simt"
#endif

#if defined(__SANITIZE_ADDRESS__)
#define SIMT_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SIMT_ASAN 1
#endif
#endif


struct SimtModule {
    void       *handle;       /* dlopen */
    SimtKernel *kernels;
    int         nkernels;
    void     *(*touch)(void); /* simt_shared_touch */
    size_t      tls_bytes;    /* the library's thread-local block: its __shared__ variables */
};

/* ---- scanning the source ----------------------------------------------------------------------- */

typedef enum TokKind { TOK_IDENT, TOK_PUNCT, TOK_STRING, TOK_OTHER } TokKind;

typedef struct Tok {
    TokKind     kind;
    const char *p;      /* into the source */
    size_t      n;
} Tok;

typedef struct Toks {
    Tok *v;
    int  n, cap;
} Toks;

static bool is_ident_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

static void toks_push(Toks *t, TokKind kind, const char *p, size_t n)
{
    if (t->n == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 256;
        t->v = realloc(t->v, sizeof *t->v * (size_t)t->cap);
        TD_ASSERT(t->v);
    }
    t->v[t->n++] = (Tok){kind, p, n};
}

/* Splits C++ source into identifiers, one-character punctuation, string and character
 * literals and the rest (numbers), skipping comments and preprocessor lines. Good enough for
 * finding declarations; it does not need to understand the language. */
static void tokenize(const char *s, Toks *out)
{
    bool line_start = true;
    while (*s) {
        char c = *s;
        if (c == '\n') {
            line_start = true;
            s++;
        } else if (c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v') {
            s++;
        } else if (c == '/' && s[1] == '/') {
            while (*s && *s != '\n') s++;
        } else if (c == '/' && s[1] == '*') {
            const char *e = strstr(s + 2, "*/");
            s = e ? e + 2 : s + strlen(s);
        } else if (c == '#' && line_start) {
            while (*s && *s != '\n') s += (*s == '\\' && s[1] == '\n') ? 2 : 1;
        } else if (c == '"' || c == '\'') {
            const char *b = s++;
            while (*s && *s != c && *s != '\n') s += (*s == '\\' && s[1]) ? 2 : 1;
            if (*s == c) s++;
            toks_push(out, TOK_STRING, b, (size_t)(s - b));
            line_start = false;
        } else if (is_ident_char(c)) {
            const char *b = s;
            bool num = c >= '0' && c <= '9';
            while (is_ident_char(*s) || (num && *s == '.')) s++;
            toks_push(out, num ? TOK_OTHER : TOK_IDENT, b, (size_t)(s - b));
            line_start = false;
        } else {
            toks_push(out, TOK_PUNCT, s, 1);
            s++;
            line_start = false;
        }
    }
}

static bool tok_is(const Tok *t, const char *text)
{
    return t->n == strlen(text) && memcmp(t->p, text, t->n) == 0;
}

/* Identifiers that take a parenthesised argument and are not the declared name. */
static bool is_attribute(const Tok *t)
{
    return tok_is(t, "__launch_bounds__") || tok_is(t, "__attribute__") || tok_is(t, "__align__") ||
           tok_is(t, "alignas") || tok_is(t, "__declspec") || tok_is(t, "__maxnreg__");
}

/* The index after the parenthesised group opening at i (t[i] is "("). */
static int skip_parens(const Toks *t, int i)
{
    int depth = 0;
    for (; i < t->n; i++) {
        if (tok_is(&t->v[i], "(")) depth++;
        else if (tok_is(&t->v[i], ")") && --depth == 0) return i + 1;
    }
    return i;
}

typedef struct Scan {
    char **names;      /* kernels, namespace-qualified, heap strings */
    int    nnames;
    StrBuf text;       /* the source with extern __shared__ rewritten */
} Scan;

static void add_kernel(Scan *sc, const char *name)
{
    for (int i = 0; i < sc->nnames; i++)
        if (strcmp(sc->names[i], name) == 0) return;  /* a declaration and its definition */
    sc->names = realloc(sc->names, sizeof *sc->names * (size_t)(sc->nnames + 1));
    TD_ASSERT(sc->names);
    sc->names[sc->nnames] = strdup(name);
    TD_ASSERT(sc->names[sc->nnames]);
    sc->nnames++;
}

static void scan_free(Scan *sc)
{
    for (int i = 0; i < sc->nnames; i++) free(sc->names[i]);
    free(sc->names);
    sb_free(&sc->text);
}

static int line_of(const char *src, const char *p)
{
    int line = 1;
    for (const char *q = src; q < p; q++) line += *q == '\n';
    return line;
}

enum { MAX_NESTING = 256 };

static bool scan_source(const char *src, Scan *sc, StrBuf *err)
{
    Toks t = {0};
    tokenize(src, &t);
    /* braces: 'n' a namespace or linkage block (its name in ns[]), 'b' anything else */
    char kinds[MAX_NESTING];
    const Tok *ns[MAX_NESTING];
    int depth = 0;
    bool in_template = false;  /* since the last ; { or }: a template declaration */
    const char *copied = src;  /* source up to here is in sc->text */
    bool ok = true;
    for (int i = 0; i < t.n && ok; i++) {
        const Tok *k = &t.v[i];
        if (tok_is(k, "{")) {
            bool is_ns = (i >= 1 && t.v[i - 1].kind == TOK_STRING && i >= 2 && tok_is(&t.v[i - 2], "extern")) ||
                         (i >= 1 && tok_is(&t.v[i - 1], "namespace")) ||
                         (i >= 2 && tok_is(&t.v[i - 2], "namespace") && t.v[i - 1].kind == TOK_IDENT);
            if (depth < MAX_NESTING) {
                kinds[depth] = is_ns ? 'n' : 'b';
                ns[depth] = is_ns && i >= 2 && tok_is(&t.v[i - 2], "namespace") ? &t.v[i - 1] : NULL;
            }
            depth++;
            in_template = false;
        } else if (tok_is(k, "}")) {
            if (depth > 0) depth--;
            in_template = false;
        } else if (tok_is(k, ";")) {
            in_template = false;
        } else if (tok_is(k, "template")) {
            in_template = true;
        } else if (tok_is(k, "__global__") && !in_template) {
            const Tok *name = NULL;
            for (int j = i + 1; j < t.n; j++) {
                const Tok *u = &t.v[j];
                if (is_attribute(u) && j + 1 < t.n && tok_is(&t.v[j + 1], "(")) {
                    j = skip_parens(&t, j + 1) - 1;
                } else if (tok_is(u, "(")) {
                    break;
                } else if (tok_is(u, ";") || tok_is(u, "{")) {
                    name = NULL;
                    break;
                } else if (u->kind == TOK_IDENT) {
                    name = u;
                }
            }
            if (name) {
                StrBuf q = {0};
                for (int d = 0; d < depth && d < MAX_NESTING; d++)
                    if (kinds[d] == 'n' && ns[d]) sb_printf(&q, "%.*s::", (int)ns[d]->n, ns[d]->p);
                sb_printf(&q, "%.*s", (int)name->n, name->p);
                add_kernel(sc, q.data);
                sb_free(&q);
            }
        } else if (tok_is(k, "extern") && i + 1 < t.n && tok_is(&t.v[i + 1], "__shared__")) {
            bool in_function = false;
            for (int d = 0; d < depth && d < MAX_NESTING; d++) in_function |= kinds[d] == 'b';
            int end = i + 2;
            while (end < t.n && !tok_is(&t.v[end], ";")) end++;
            /* ... T name [ ] ;  with T the tokens after __shared__ less any attributes */
            int name_at = end - 3;
            if (!in_function || end >= t.n || name_at <= i + 1 || t.v[name_at].kind != TOK_IDENT ||
                !tok_is(&t.v[name_at + 1], "[") || !tok_is(&t.v[name_at + 2], "]")) {
                sb_printf(err, "kernel.cu:%d: the emulator supports extern __shared__ only as `extern __shared__ T "
                               "name[];` inside a function\n", line_of(src, k->p));
                ok = false;
                break;
            }
            StrBuf type = {0};
            for (int j = i + 2; j < name_at; j++) {
                if (is_attribute(&t.v[j]) && j + 1 < name_at && tok_is(&t.v[j + 1], "(")) {
                    j = skip_parens(&t, j + 1) - 1;
                    continue;
                }
                sb_printf(&type, "%.*s ", (int)t.v[j].n, t.v[j].p);
            }
            const Tok *nm = &t.v[name_at];
            sb_putn(&sc->text, copied, (size_t)(k->p - copied));
            sb_printf(&sc->text, "%s*const %.*s = (%s*)simt_dynamic_shared();", sb_cstr(&type), (int)nm->n, nm->p,
                      sb_cstr(&type));
            const char *after = t.v[end].p + 1;
            for (const char *q = k->p; q < after; q++)
                if (*q == '\n') sb_putc(&sc->text, '\n');
            copied = after;
            sb_free(&type);
            i = end;
        }
    }
    sb_puts(&sc->text, copied);
    free(t.v);
    return ok;
}

/* ---- compiling --------------------------------------------------------------------------------- */

static const char *env_or(const char *name, const char *fallback)
{
    const char *v = getenv(name);
    return v && *v ? v : fallback;
}



/* Appends the words of s (split at blanks, copied into *store) to argv. */
static void add_words(const char *s, char **store, char **argv, int *n, int max)
{
    *store = strdup(s);
    TD_ASSERT(*store);
    char *save = NULL;
    for (char *w = strtok_r(*store, " \t", &save); w && *n < max; w = strtok_r(NULL, " \t", &save)) argv[(*n)++] = w;
}

static bool build_library(const char *text, const char *dir, StrBuf *err)
{
    StrBuf src = {0}, so = {0}, log = {0}, header = {0}, inc = {0};
    const char *simt_dir = env_or("TDSL_SIMT_INCLUDE", TDSL_SIMT_DIR);
    sb_printf(&src, "%s/kernel.cu", dir);
    sb_printf(&so, "%s/kernel.so", dir);
    sb_printf(&log, "%s/cxx.log", dir);
    sb_printf(&header, "%s/simt.h", simt_dir);
    sb_printf(&inc, "-I%s/include", simt_dir);
    bool ok = write_file_all(src.data, text, strlen(text), err);
    if (ok) {
        char *argv[96], *cxx = NULL, *flags = NULL;
        int n = 0;
        add_words(env_or("TDSL_SIMT_CXX", "g++"), &cxx, argv, &n, 32);
        if (n == 0) argv[n++] = "g++";
        char *fixed[] = {"-std=c++17", "-O1", "-fPIC", "-shared", "-fvisibility=hidden",
                         "-fno-strict-aliasing", "-fstack-clash-protection", "-include", header.data, inc.data,
#ifdef SIMT_ASAN
                         "-fsanitize=address", "-fno-omit-frame-pointer",
#endif
                         NULL};
        for (int i = 0; fixed[i]; i++) argv[n++] = fixed[i];
        add_words(env_or("TDSL_SIMT_CXXFLAGS", ""), &flags, argv, &n, 80);
        char *tail[] = {"-x", "c++", src.data, "-o", so.data, NULL};
        for (int i = 0; tail[i]; i++) argv[n++] = tail[i];
        argv[n] = NULL;
        ok = run_tool(argv, log.data, "C++ compiler", "set $TDSL_SIMT_CXX to choose one", "compiling CUDA source for the emulator failed", err);
        free(cxx);
        free(flags);
    }
    sb_free(&src);
    sb_free(&so);
    sb_free(&log);
    sb_free(&header);
    sb_free(&inc);
    return ok;
}

/* ---- loading ----------------------------------------------------------------------------------- */

typedef struct TlsQuery {
    size_t modid;   /* in: the library's TLS module id */
    size_t bytes;   /* out: its PT_TLS memory size */
} TlsQuery;

static int find_tls(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    TlsQuery *q = data;
    if (info->dlpi_tls_modid != q->modid) return 0;
    for (int i = 0; i < info->dlpi_phnum; i++)
        if (info->dlpi_phdr[i].p_type == PT_TLS) q->bytes = info->dlpi_phdr[i].p_memsz;
    return 1;
}

static void remove_dir(const char *dir)
{
    static const char *const files[] = {"kernel.cu", "kernel.so", "cxx.log"};
    StrBuf p = {0};
    for (int i = 0; i < TD_COUNTOF(files); i++) {
        sb_clear(&p);
        sb_printf(&p, "%s/%s", dir, files[i]);
        unlink(p.data);
    }
    sb_free(&p);
    rmdir(dir);
}

bool simt_compile(const char *cuda_source, SimtModule **out, StrBuf *err)
{
    *out = NULL;
    if (!cuda_source) {
        sb_puts(err, "simt_compile: no source\n");
        return false;
    }
    Scan sc = {0};
    if (!scan_source(cuda_source, &sc, err)) {
        scan_free(&sc);
        return false;
    }
    /* the stubs, after the source; #line so that errors in them say so */
    StrBuf *s = &sc.text;
    sb_puts(s, "\n#line 1 \"<simt entry stubs>\"\n"
               "extern \"C\" __attribute__((visibility(\"default\"))) int simt_module_bind(const SimtApi *api)\n"
               "{ simt_api_ = api; return SIMT_ABI_VERSION; }\n"
               "extern \"C\" __attribute__((visibility(\"default\"))) void *simt_shared_touch(void)\n"
               "{ static thread_local char anchor; return &anchor; }\n");
    for (int i = 0; i < sc.nnames; i++)
        sb_printf(s, "extern \"C\" __attribute__((visibility(\"default\"))) void simt_entry_%d(void **args)\n"
                     "{ ::simt::invoke(&%s, args); }\n", i, sc.names[i]);

    StrBuf dir = {0};
    sb_printf(&dir, "%s/tdsl-simt-XXXXXX", env_or("TMPDIR", "/tmp"));
    if (!mkdtemp(dir.data)) {
        sb_printf(err, "cannot create a temporary directory '%s': %s\n", dir.data, strerror(errno));
        sb_free(&dir);
        scan_free(&sc);
        return false;
    }
    bool ok = build_library(sb_cstr(s), dir.data, err);
    void *h = NULL;
    if (ok) {
        StrBuf so = {0};
        sb_printf(&so, "%s/kernel.so", dir.data);
        h = dlopen(so.data, RTLD_NOW | RTLD_LOCAL);
        if (!h) {
            sb_printf(err, "cannot load the emulator's kernel library: %s\n", dlerror());
            ok = false;
        }
        sb_free(&so);
    }
    if (!getenv("TDSL_KEEP_TEMPS")) remove_dir(dir.data);
    else fprintf(stderr, "simt: kept %s\n", dir.data);
    sb_free(&dir);

    SimtModule *m = NULL;
    if (ok) {
        m = calloc(1, sizeof *m);
        TD_ASSERT(m);
        m->handle = h;
        int (*bind)(const SimtApi *) = (int (*)(const SimtApi *))(uintptr_t)dlsym(h, "simt_module_bind");
        m->touch = (void *(*)(void))(uintptr_t)dlsym(h, "simt_shared_touch");
        if (!bind || !m->touch || bind(simt_runtime_api()) != SIMT_ABI_VERSION) {
            sb_puts(err, "the emulator's kernel library was built against another simt.h (ABI version mismatch)\n");
            ok = false;
        }
    }
    if (ok) {
        m->kernels = calloc((size_t)sc.nnames + 1, sizeof *m->kernels);
        TD_ASSERT(m->kernels);
        for (int i = 0; i < sc.nnames && ok; i++) {
            char sym[32];
            snprintf(sym, sizeof sym, "simt_entry_%d", i);
            SimtKernel *k = &m->kernels[m->nkernels++];
            k->name = sc.names[i];
            sc.names[i] = NULL;  /* owned by the module now */
            k->entry = (SimtEntry)(uintptr_t)dlsym(h, sym);
            k->module = m;
            if (!k->entry) {
                sb_printf(err, "the emulator's kernel library lacks %s (kernel %s)\n", sym, k->name);
                ok = false;
            }
        }
    }
    if (ok) {
        TlsQuery q = {0, 0};
        if (dlinfo(h, RTLD_DI_TLS_MODID, &q.modid) == 0 && q.modid != 0) dl_iterate_phdr(find_tls, &q);
        m->tls_bytes = q.bytes;
    }
    scan_free(&sc);
    if (!ok) {
        if (m) simt_module_free(m);
        else if (h) dlclose(h);
        return false;
    }
    *out = m;
    return true;
}

const SimtKernel *simt_module_kernel(const SimtModule *m, const char *name)
{
    for (int i = 0; m && name && i < m->nkernels; i++)
        if (strcmp(m->kernels[i].name, name) == 0) return &m->kernels[i];
    return NULL;
}

int simt_module_num_kernels(const SimtModule *m) { return m ? m->nkernels : 0; }

const SimtKernel *simt_module_kernel_at(const SimtModule *m, int i)
{
    return m && i >= 0 && i < m->nkernels ? &m->kernels[i] : NULL;
}

void *simt_module_shared_storage(SimtModule *m, size_t *size)
{
    *size = 0;
    if (!m || !m->tls_bytes || !m->touch) return NULL;
    m->touch();
    void *p = NULL;
    if (dlinfo(m->handle, RTLD_DI_TLS_DATA, &p) != 0 || !p) return NULL;
    *size = m->tls_bytes;
    return p;
}

void simt_module_free(SimtModule *m)
{
    if (!m) return;
    for (int i = 0; i < m->nkernels; i++) free((char *)m->kernels[i].name);
    free(m->kernels);
    if (m->handle) dlclose(m->handle);
    free(m);
}
