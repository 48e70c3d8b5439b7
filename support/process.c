/* process: files written whole and external tools run to completion, for the builders that
 * call a C or C++ compiler (codegen/cpu/aot.c, codegen/cuda/cuda_aot.c, runtime/simt). */
#include "support.h"

#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

extern char **environ;

bool write_file_all(const char *path, const void *data, size_t len, StrBuf *err)
{
    FILE *f = fopen(path, "wb");
    if (!f) {
        sb_printf(err, "cannot write '%s': %s\n", path, strerror(errno));
        return false;
    }
    bool ok = fwrite(data, 1, len, f) == len;
    ok = (fclose(f) == 0) && ok;
    if (!ok) sb_printf(err, "cannot write '%s': %s\n", path, strerror(errno));
    return ok;
}

bool run_tool(char *const *argv, const char *log_path, const char *what, const char *hint,
              const char *failed, StrBuf *err)
{
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, log_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    pid_t pid;
    int rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) {
        sb_printf(err, "cannot run the %s '%s': %s (%s)\n", what, argv[0], strerror(rc), hint);
        return false;
    }
    int status;
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) {
            sb_printf(err, "waiting for '%s': %s\n", argv[0], strerror(errno));
            return false;
        }
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return true;
    sb_printf(err, "%s:", failed);
    for (int i = 0; argv[i]; i++) sb_printf(err, " %s", argv[i]);
    sb_putc(err, '\n');
    size_t len;
    const char *why;
    char *log = read_file_all(log_path, &len, &why);
    if (log) {
        sb_putn(err, log, len);
        if (len && log[len - 1] != '\n') sb_putc(err, '\n');
        free(log);
    }
    return false;
}
