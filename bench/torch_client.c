/* torch_client.c: the PyTorch anchors, through a bench/torch_anchor.py subprocess.
 *
 * The harness starts `PYTHON bench/torch_anchor.py --serve --threads T` once per thread
 * count and talks to it over pipes, one line each way:
 *
 *   script -> {"ok": true, "torch": "2.5.1", ...}             once, after importing torch
 *   setup softmax R=4096 N=4096  -> {"ok": true, "variants": "eager,compile",
 *                                    "skipped": "", "why": ""}   (inputs built, warmed up,
 *                                                                 torch.compile done)
 *   run eager                    -> {"ok": true, "ms": 12.5}     one call, timed by the script
 *   quit
 *
 * The script times each call itself (time.perf_counter around the call), so the pipe's
 * latency is not in the figure; the harness asks for one call at a time, which keeps the
 * alternation with the tdsl calls of the same case. Replies are flat JSON objects; the
 * few fields needed are picked out by name. The script's stderr goes to a log file. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"

enum {
    HELLO_TIMEOUT_S = 180,   /* importing torch on a cold disk */
    SETUP_TIMEOUT_S = 900,   /* torch.compile of a case, cold caches */
    RUN_TIMEOUT_S = 600,     /* one call */
};

struct TorchClient {
    pid_t pid;               /* the script */
    int to_fd;               /* its stdin */
    int from_fd;             /* its stdout */
    char buf[1 << 16];       /* bytes read but not yet returned as lines */
    size_t len;              /* bytes in buf */
    char version[64];        /* torch.__version__ */
};

/* ---- flat JSON fields ------------------------------------------------------------------- */

static const char *json_field(const char *line, const char *key)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\"", key);
    const char *p = strstr(line, pat);
    if (!p) return NULL;
    p += strlen(pat);
    while (*p == ' ') p++;
    if (*p != ':') return NULL;
    p++;
    while (*p == ' ') p++;
    return p;
}

static bool json_bool(const char *line, const char *key)
{
    const char *p = json_field(line, key);
    return p && strncmp(p, "true", 4) == 0;
}

static bool json_num(const char *line, const char *key, double *out)
{
    const char *p = json_field(line, key);
    if (!p) return false;
    char *end;
    *out = strtod(p, &end);
    return end != p;
}

static void json_str(const char *line, const char *key, char *out, size_t len)
{
    const char *p = json_field(line, key);
    size_t n = 0;
    if (p && *p == '"') {
        for (p++; *p && *p != '"' && n + 1 < len; p++) {
            if (*p == '\\' && p[1]) {
                p++;
                out[n++] = *p == 'n' ? ' ' : *p;
            } else {
                out[n++] = *p;
            }
        }
    }
    out[n] = 0;
}

/* ---- the pipe ------------------------------------------------------------------------------- */

/* Reads one line (without the newline) into out; false on EOF, error or timeout. */
static bool read_line(TorchClient *tc, char *out, size_t out_len, int timeout_s)
{
    double deadline = bench_now() + timeout_s;
    for (;;) {
        char *nl = memchr(tc->buf, '\n', tc->len);
        if (nl) {
            size_t n = (size_t)(nl - tc->buf);
            size_t c = n < out_len - 1 ? n : out_len - 1;
            memcpy(out, tc->buf, c);
            out[c] = 0;
            memmove(tc->buf, nl + 1, tc->len - n - 1);
            tc->len -= n + 1;
            return true;
        }
        if (tc->len == sizeof tc->buf) tc->len = 0;  /* an absurd line: drop it */
        double left = deadline - bench_now();
        if (left <= 0) return false;
        struct pollfd pfd = {.fd = tc->from_fd, .events = POLLIN};
        int pr = poll(&pfd, 1, (int)(left * 1000) + 1);
        if (pr < 0 && errno == EINTR) continue;
        if (pr <= 0) return false;
        ssize_t r = read(tc->from_fd, tc->buf + tc->len, sizeof tc->buf - tc->len);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return false;
        tc->len += (size_t)r;
    }
}

static bool send_line(TorchClient *tc, const char *line)
{
    size_t n = strlen(line);
    while (n) {
        ssize_t w = write(tc->to_fd, line, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return false;
        line += w;
        n -= (size_t)w;
    }
    return write(tc->to_fd, "\n", 1) == 1;
}

/* Sends a request and reads the reply; false (why set) when the script is gone or silent. */
static bool request(TorchClient *tc, const char *line, char *reply, size_t reply_len, int timeout_s, char *why,
                    size_t why_len)
{
    if (!send_line(tc, line) || !read_line(tc, reply, reply_len, timeout_s)) {
        snprintf(why, why_len, "the PyTorch anchor script stopped answering (see its log)");
        return false;
    }
    if (!json_bool(reply, "ok")) {
        json_str(reply, "why", why, why_len);
        if (!why[0]) snprintf(why, why_len, "the PyTorch anchor script refused: %.200s", reply);
        return false;
    }
    return true;
}

TorchClient *torch_start(const char *python, const char *script, int threads, const char *log, char *why,
                         size_t why_len)
{
    if (access(python, X_OK) != 0) {
        snprintf(why, why_len, "PyTorch anchors skipped: no python at %s (run bench/setup_venv.sh, or set "
                 "TDSL_BENCH_PYTHON to a python with torch)", python);
        return NULL;
    }
    int in[2], out[2];
    if (pipe(in) != 0) {
        snprintf(why, why_len, "PyTorch anchors skipped: pipe failed");
        return NULL;
    }
    if (pipe(out) != 0) {
        close(in[0]);
        close(in[1]);
        snprintf(why, why_len, "PyTorch anchors skipped: pipe failed");
        return NULL;
    }
    signal(SIGPIPE, SIG_IGN);
    char tstr[16];
    snprintf(tstr, sizeof tstr, "%d", threads);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(in[0], 0);
        dup2(out[1], 1);
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) dup2(fd, 2);
        close(in[0]);
        close(in[1]);
        close(out[0]);
        close(out[1]);
        execl(python, python, script, "--serve", "--threads", tstr, (char *)NULL);
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    TorchClient *tc = calloc(1, sizeof *tc);
    if (pid < 0 || !tc) {
        close(in[1]);
        close(out[0]);
        free(tc);
        snprintf(why, why_len, "PyTorch anchors skipped: cannot start %s", python);
        return NULL;
    }
    tc->pid = pid;
    tc->to_fd = in[1];
    tc->from_fd = out[0];
    char line[1024];
    if (!read_line(tc, line, sizeof line, HELLO_TIMEOUT_S) || !json_bool(line, "ok")) {
        char msg[512] = "";
        json_str(line, "why", msg, sizeof msg);
        snprintf(why, why_len, "PyTorch anchors skipped: %s", msg[0] ? msg : "the script did not start (see its log)");
        torch_stop(tc);
        return NULL;
    }
    json_str(line, "torch", tc->version, sizeof tc->version);
    return tc;
}

const char *torch_version(const TorchClient *tc)
{
    return tc ? tc->version : "";
}

int torch_setup(TorchClient *tc, const char *torch_case, const char *shape, char *variants, size_t variants_len,
                char *skipped, size_t skipped_len, char *why, size_t why_len)
{
    char req[512], reply[4096];
    snprintf(req, sizeof req, "setup %s %s", torch_case, shape);
    variants[0] = skipped[0] = why[0] = 0;
    if (!request(tc, req, reply, sizeof reply, SETUP_TIMEOUT_S, why, why_len)) return -1;
    json_str(reply, "variants", variants, variants_len);
    json_str(reply, "skipped", skipped, skipped_len);
    json_str(reply, "why", why, why_len);
    return variants[0] ? 0 : -1;
}

int torch_run(TorchClient *tc, const char *variant, double *ms, char *why, size_t why_len)
{
    char req[128], reply[1024];
    snprintf(req, sizeof req, "run %s", variant);
    if (!request(tc, req, reply, sizeof reply, RUN_TIMEOUT_S, why, why_len)) return -1;
    if (!json_num(reply, "ms", ms)) {
        snprintf(why, why_len, "no time in the reply %.200s", reply);
        return -1;
    }
    return 0;
}

void torch_stop(TorchClient *tc)
{
    if (!tc) return;
    send_line(tc, "quit");
    close(tc->to_fd);
    close(tc->from_fd);
    /* the script exits on quit or EOF; give it a few seconds, then stop it */
    int status;
    for (int i = 0; i < 50; i++) {
        if (waitpid(tc->pid, &status, WNOHANG) == tc->pid) {
            free(tc);
            return;
        }
        usleep(100 * 1000);
    }
    kill(tc->pid, SIGTERM);
    waitpid(tc->pid, &status, 0);
    free(tc);
}
