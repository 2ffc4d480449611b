/*
 * instance.c - finding and opening the saker instance sakerctl talks about.
 *
 * The segment path comes from, in order: --shm, -c CONFIG's shm_path,
 * $SAKER_SHM, $SAKER_CONFIG's shm_path, config_default_shm_path(): the
 * command line before the environment, and at each level a path named
 * outright before one found through a config.
 *
 * A config that no longer loads (someone is editing it) must not lock the
 * operator out of a running instance: its shm_path is then scanned for
 * leniently (config_scan.c) and the load error becomes a warning.
 *
 * Opening attaches read-only (shm_attach refuses foreign or other-version
 * segments) and then asks the kernel whether the master still lives: a
 * segment left behind by a crashed master must not pass for a running
 * server. Permission problems (the segment is 0640, the master may run as
 * root) get their own message and exit status, CLI_EXIT_PERMISSION.
 */
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "cli/cli.h"
#include "conf/config.h"

static bool config_warning_quiet;
static long pid_named; /* --pid or --pid-file: the process asked for */

/* Keeps a path in a static buffer: sakerctl needs it until it exits. */
static int keep_path(const char *file, const char *p, const char **path, struct err *err)
{
    static char buf[PATH_MAX];
    int n = snprintf(buf, sizeof buf, "%s", p);
    if (n < 0 || (size_t)n >= sizeof buf)
        return err_set(err, "%s: shm_path is longer than %d bytes", file, PATH_MAX - 1);
    *path = buf;
    return SK_OK;
}

/* A config the loader refuses: find shm_path anyway, and say so. */
static int shm_path_from_broken_config(const char *file, const struct err *load_err,
                                       const char **path, struct err *err)
{
    char *found = NULL;
    struct err scan_err;
    int rc = cli_scan_shm_path(file, &found, &scan_err);
    if (rc == SK_ERROR) {
        *err = *load_err;
        return SK_ERROR;
    }
    const char *p = rc == SK_OK ? found : config_default_shm_path();
    if (!config_warning_quiet)
        fprintf(stderr, "sakerctl: warning: %s\nsakerctl: warning: using its shm_path %s "
                "anyway\n", load_err->message, p);
    rc = keep_path(file, p, path, err);
    free(found);
    return rc;
}

/* Loads the config only for its shm_path, so the config itself can be
 * freed at once. */
static int shm_path_from_config(const char *file, const char **path, struct err *err)
{
    struct err load_err;
    struct config *config = config_load_file(file, &load_err);
    if (config == NULL)
        return shm_path_from_broken_config(file, &load_err, path, err);
    const char *p = config->shm_path != NULL ? config->shm_path : config_default_shm_path();
    int rc = keep_path(file, p, path, err);
    config_free(config);
    return rc;
}

static const char *env(const char *name)
{
    const char *v = getenv(name);
    return v != NULL && v[0] != '\0' ? v : NULL;
}

/* The segment a master maps read-write and shared: the one line of
 * /proc/PID/maps with "rw-s" and a path (the ticket keys' anonymous
 * mapping has none that is not "(deleted)"). So the systemd unit
 * ($MAINPID) and the init script (the pid file) reach the instance
 * without reading a config that may have changed since. */
static int shm_path_from_pid(const char *text, const char **path, struct err *err)
{
    char *end;
    errno = 0;
    long pid = strtol(text, &end, 10);
    while (*end == '\n' || *end == ' ')
        end++;
    if (errno != 0 || end == text || *end != '\0' || pid <= 0 || pid > INT32_MAX)
        return err_set(err, "'%s' is not a process id", text);
    pid_named = pid;
    char maps[64], line[PATH_MAX + 128];
    snprintf(maps, sizeof maps, "/proc/%ld/maps", pid);
    FILE *f = fopen(maps, "re");
    if (f == NULL)
        return err_set_errno(err, errno, "pid %ld: %s", pid, maps);
    int rc = err_set(err, "pid %ld maps no saker shm segment (is it a saker master?)", pid);
    while (rc != SK_OK && fgets(line, sizeof line, f) != NULL) {
        char perms[8];
        int at = 0;
        line[strcspn(line, "\n")] = '\0';
        if (sscanf(line, "%*s %7s %*s %*s %*s %n", perms, &at) != 1 || at == 0 ||
            strcmp(perms, "rw-s") != 0 || line[at] != '/' || strstr(line, " (deleted)"))
            continue;
        rc = keep_path(maps, line + at, path, err);
    }
    fclose(f);
    return rc;
}

/* --pid-file FILE: the pid in it. */
static int shm_path_from_pid_file(const char *file, const char **path, struct err *err)
{
    char text[32] = "";
    FILE *f = fopen(file, "re");
    if (f == NULL)
        return err_set_errno(err, errno, "pid file %s (is saker running?)", file);
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = '\0';
    if (shm_path_from_pid(text, path, err) != SK_OK) {
        struct err inner = *err;
        return err_set(err, "pid file %s: %s", file, inner.message);
    }
    return SK_OK;
}

int cli_find_shm_path(const struct cli_options *opts, const char **path, struct err *err)
{
    if (opts->shm_path != NULL) {
        *path = opts->shm_path;
        return SK_OK;
    }
    if (opts->pid != NULL)
        return shm_path_from_pid(opts->pid, path, err);
    if (opts->pid_file != NULL)
        return shm_path_from_pid_file(opts->pid_file, path, err);
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
bool cli_process_gone(pid_t pid)
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

/* The segment is there but not readable by us: name the owner, so the
 * operator knows whom to run as. */
static int permission_denied(const char *path)
{
    struct stat st;
    if (stat(path, &st) == 0)
        fprintf(stderr, "sakerctl: permission denied reading the saker segment %s (owner uid "
                "%u, mode %04o): run as root or as the user that started saker\n", path,
                (unsigned)st.st_uid, (unsigned)(st.st_mode & 07777));
    else
        fprintf(stderr, "sakerctl: permission denied reading the saker segment %s: run as "
                "root or as the user that started saker\n", path);
    return CLI_EXIT_PERMISSION;
}

int cli_open_instance(struct cli *cli)
{
    struct err err;
    config_warning_quiet = cli->quiet_config_error;
    if (cli_find_shm_path(cli->opts, &cli->shm_path, &err) != SK_OK) {
        fprintf(stderr, "sakerctl: %s\n", err.message);
        return CLI_EXIT_FAILED;
    }
    if (shm_attach(&cli->shm, cli->shm_path, &err) != SK_OK) {
        /* shm_attach's message has no errno to test; ask again. */
        if (access(cli->shm_path, R_OK) != 0 && errno == EACCES)
            return permission_denied(cli->shm_path);
        fprintf(stderr, "sakerctl: no saker instance at %s: %s\n", cli->shm_path,
                without_path(err.message, cli->shm_path));
        return CLI_EXIT_FAILED;
    }
    pid_t master = cli->shm.header->master_pid;
    struct err why;
    int verdict = shm_master_verify(cli->shm.header, &why);
    /* SK_ERROR: the master runs as another user, whose /proc we may not
     * read; it is alive unless the kernel says otherwise. */
    if (verdict == SK_DECLINED || (verdict == SK_ERROR && cli_process_gone(master))) {
        fprintf(stderr, "sakerctl: no saker instance at %s: saker is not running (stale "
                "segment: %s)\n", cli->shm_path, verdict == SK_DECLINED ? why.message
                : "master gone");
        shm_detach(&cli->shm);
        return CLI_EXIT_FAILED;
    }
    /* A worker maps the segment too: --pid must name the master. */
    if (pid_named != 0 && pid_named != master) {
        fprintf(stderr, "sakerctl: pid %ld is not the saker master of %s (its master is pid "
                "%d)\n", pid_named, cli->shm_path, (int)master);
        shm_detach(&cli->shm);
        return CLI_EXIT_FAILED;
    }
    return CLI_EXIT_OK;
}

int cli_signal_master(struct cli *cli, int signo, bool queue, int value)
{
    pid_t pid = cli->shm.header->master_pid;
    struct err why;
    /* The segment names the process; the process must be the master that
     * wrote itself there (start time and executable), or a recycled pid
     * or a forged file would have us signal anyone. */
    switch (shm_master_verify(cli->shm.header, &why)) {
    case SK_OK:
        break;
    case SK_DECLINED:
        fprintf(stderr, "sakerctl: not signalling: %s (%s)\n", why.message, cli->shm_path);
        return CLI_EXIT_FAILED;
    default: /* its /proc entry is not ours to read: nor is it ours to signal */
        fprintf(stderr, "sakerctl: permission denied signalling saker master pid %d: run as "
                "root or as the user that started saker\n", (int)pid);
        return CLI_EXIT_PERMISSION;
    }
    int rc = queue ? sigqueue(pid, signo, (union sigval){.sival_int = value})
                   : kill(pid, signo);
    if (rc == 0)
        return CLI_EXIT_OK;
    if (errno == EPERM) {
        fprintf(stderr, "sakerctl: permission denied signalling saker master pid %d: run as "
                "root or as the user that started saker\n", (int)pid);
        return CLI_EXIT_PERMISSION;
    }
    if (errno == ESRCH) {
        fprintf(stderr, "sakerctl: no saker instance at %s: master pid %d is gone\n",
                cli->shm_path, (int)pid);
        return CLI_EXIT_FAILED;
    }
    fprintf(stderr, "sakerctl: %s(%d, %s) failed: %s\n", queue ? "sigqueue" : "kill", (int)pid,
            sigabbrev_np(signo), strerror(errno));
    return CLI_EXIT_FAILED;
}
