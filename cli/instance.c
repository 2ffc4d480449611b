/*
 * instance.c - finding and opening the saker instance sakerctl talks about.
 *
 * The segment path comes from, in order: --shm, -c CONFIG's shm_path,
 * $SAKER_SHM, $SAKER_CONFIG's shm_path, config_default_shm_path(): the
 * command line before the environment, and at each level a path named
 * outright before one found through a config.
 *
 * Opening attaches read-only (shm_attach refuses foreign or other-version
 * segments) and then asks the kernel whether the master still lives: a
 * segment left behind by a crashed master must not pass for a running
 * server.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "cli/cli.h"
#include "conf/config.h"

/* Loads the config only for its shm_path, which is kept in a static buffer
 * (sakerctl needs it until it exits) so the config itself can be freed. */
static int shm_path_from_config(const char *file, const char **path, struct err *err)
{
    static char buf[PATH_MAX];
    struct config *config = config_load_file(file, err);
    if (config == NULL)
        return SK_ERROR;
    const char *p = config->shm_path != NULL ? config->shm_path : config_default_shm_path();
    int n = snprintf(buf, sizeof buf, "%s", p);
    config_free(config);
    if (n < 0 || (size_t)n >= sizeof buf)
        return err_set(err, "%s: shm_path is longer than %d bytes", file, PATH_MAX - 1);
    *path = buf;
    return SK_OK;
}

static const char *env(const char *name)
{
    const char *v = getenv(name);
    return v != NULL && v[0] != '\0' ? v : NULL;
}

int cli_find_shm_path(const struct cli_options *opts, const char **path, struct err *err)
{
    if (opts->shm_path != NULL) {
        *path = opts->shm_path;
        return SK_OK;
    }
    if (opts->config_path != NULL)
        return shm_path_from_config(opts->config_path, path, err);
    if (env("SAKER_SHM") != NULL) {
        *path = env("SAKER_SHM");
        return SK_OK;
    }
    if (env("SAKER_CONFIG") != NULL)
        return shm_path_from_config(env("SAKER_CONFIG"), path, err);
    *path = config_default_shm_path();
    return SK_OK;
}

/* shm messages start with the path; the line we print names it already. */
static const char *without_path(const char *message, const char *path)
{
    size_t n = strlen(path);
    if (strncmp(message, path, n) == 0 && strncmp(message + n, ": ", 2) == 0)
        return message + n + 2;
    return message;
}

/* ESRCH, or a zombie nobody reaped yet: either way no master to serve. */
static bool process_gone(pid_t pid)
{
    if (pid <= 0)
        return true;
    if (kill(pid, 0) < 0 && errno == ESRCH)
        return true;
    char path[64], stat[512];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return false; /* no /proc: trust kill() */
    size_t n = fread(stat, 1, sizeof stat - 1, f);
    fclose(f);
    stat[n] = '\0';
    /* "pid (comm) S ...": comm may hold ')' itself, so take the last one. */
    const char *p = strrchr(stat, ')');
    return p != NULL && p[1] == ' ' && (p[2] == 'Z' || p[2] == 'X');
}

int cli_open_instance(struct cli *cli)
{
    struct err err;
    if (cli_find_shm_path(cli->opts, &cli->shm_path, &err) != SK_OK) {
        fprintf(stderr, "sakerctl: %s\n", err.message);
        return CLI_EXIT_FAILED;
    }
    if (shm_attach(&cli->shm, cli->shm_path, &err) != SK_OK) {
        fprintf(stderr, "sakerctl: no saker instance at %s: %s\n", cli->shm_path,
                without_path(err.message, cli->shm_path));
        return CLI_EXIT_FAILED;
    }
    pid_t master = cli->shm.header->master_pid;
    /* EPERM means the master runs as another user: alive, so carry on. */
    if (process_gone(master)) {
        fprintf(stderr, "sakerctl: saker is not running (stale segment at %s, "
                "master pid %d gone)\n", cli->shm_path, (int)master);
        shm_detach(&cli->shm);
        return CLI_EXIT_FAILED;
    }
    return CLI_EXIT_OK;
}
