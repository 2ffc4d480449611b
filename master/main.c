/*
 * main.c - saker's command line; the only place that exits.
 *
 *   saker [-c FILE] [--urls URLS] [-t] [-d]
 *
 * Without -c, saker runs on its built-in defaults: http://localhost:5000,
 * static files from ./wwwroot. --urls (or SAKER_URLS) replaces the
 * endpoints, as Kestrel's --urls and ASPNETCORE_URLS do. -t checks the
 * configuration and exits, without binding anything. -d detaches, and the
 * starting process exits 0 only once the workers serve.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "conf/config.h"
#include "build_config.h"
#include "master/master.h"
#ifdef SAKER_TEST_HANDLERS
#include "tests/handlers/test_handlers.h"
#endif

struct options {
    const char *config_file;
    const char *urls;
    bool test_only;
    bool daemonize;
};

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: saker [-c FILE] [--urls URLS] [-t] [-d]\n"
            "  -c, --config FILE  configuration file (default: built-in, http://localhost:5000\n"
            "                     serving ./wwwroot)\n"
            "      --urls URLS    endpoints, ';'-separated (also SAKER_URLS), e.g.\n"
            "                     \"http://127.0.0.1:0;unix:/tmp/saker.sock\"\n"
            "  -t, --test         check the configuration and exit\n"
            "  -d, --daemon       run in the background\n"
            "  -h, --help         this help\n"
            "  -v, --version      print the version\n");
}

/* 0: run; 1 or 2: exit with that status. */
static int parse_options(int argc, char **argv, struct options *o)
{
    static const struct option long_options[] = {
        {"config", required_argument, NULL, 'c'}, {"urls", required_argument, NULL, 'u'},
        {"test", no_argument, NULL, 't'},         {"daemon", no_argument, NULL, 'd'},
        {"help", no_argument, NULL, 'h'},         {"version", no_argument, NULL, 'v'},
        {NULL, 0, NULL, 0}};
    memset(o, 0, sizeof *o);
    o->urls = getenv("SAKER_URLS");
    int c;
    while ((c = getopt_long(argc, argv, "c:tdhv", long_options, NULL)) != -1) {
        switch (c) {
        case 'c': o->config_file = optarg; break;
        case 'u': o->urls = optarg; break;
        case 't': o->test_only = true; break;
        case 'd': o->daemonize = true; break;
        case 'h': usage(stdout); return -1;
        case 'v': printf("saker %s\n", PACKAGE_VERSION); return -1;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "saker: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return 2;
    }
    return 0;
}

static int write_pid_file(const char *path, struct err *err)
{
    if (path == NULL)
        return SK_OK;
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return err_set_errno(err, errno, "pid file %s", path);
    char text[32];
    int n = snprintf(text, sizeof text, "%d\n", (int)getpid());
    bool ok = write(fd, text, (size_t)n) == n;
    close(fd);
    return ok ? SK_OK : err_set_errno(err, errno, "pid file %s", path);
}

/* Forks; the parent waits for the child's "ready" byte and exits with 0 if
 * it came, 1 if the child failed first. Returns the fd the child writes. */
static int daemonize(void)
{
    int ready[2];
    if (pipe2(ready, O_CLOEXEC) != 0)
        return -1;
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid > 0) {
        close(ready[1]);
        char byte;
        ssize_t n = read(ready[0], &byte, 1);
        _exit(n == 1 ? 0 : 1);
    }
    close(ready[0]);
    setsid();
    /* A daemon that kept the caller's stdout or stderr open would hang a
     * caller that reads them to the end (`out=$(saker -d)`). Without an
     * error_log the log has nowhere else to go, which -d warns about. */
    int null = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null >= 0) {
        dup2(null, STDIN_FILENO);
        dup2(null, STDOUT_FILENO);
        dup2(null, STDERR_FILENO);
        close(null);
    }
    return ready[1];
}

/* Each connection is a descriptor: the soft limit (often 1024) would cap a
 * worker far below what the hard limit allows. Workers inherit it. */
static void raise_open_files_limit(void)
{
    struct rlimit limit;
    if (getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur >= limit.rlim_max)
        return;
    limit.rlim_cur = limit.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &limit) != 0)
        log_errno(LOG_WARN, errno, "setrlimit(RLIMIT_NOFILE)");
}

/* Everything before the master takes the config over; 0 or an exit status. */
static int prepare(const struct options *o, const struct config *config, int *ready_fd)
{
    if (config->log_level != NULL)
        log_set_level((enum log_level)log_level_parse(config->log_level));
    if (config->error_log != NULL && log_open(config->error_log) != SK_OK) {
        fprintf(stderr, "saker: error_log %s: %s\n", config->error_log, strerror(errno));
        return 1;
    }
    raise_open_files_limit();
    if (o->daemonize && config->error_log == NULL)
        fprintf(stderr, "saker: no error_log set: in the background, log lines are discarded\n");
    if (o->daemonize && (*ready_fd = daemonize()) < 0) {
        log_errno(LOG_ERROR, errno, "daemonize");
        return 1;
    }
    return 0;
}

static int run(const struct options *o, struct config *config)
{
    struct err err;
    struct master master = {.ready_fd = -1, .config_file = o->config_file, .urls = o->urls};
    int status = prepare(o, config, &master.ready_fd);
    char *pid_file = config->pid_file ? strdup(config->pid_file) : NULL;
    if (status == 0 && (write_pid_file(pid_file, &err) != SK_OK ||
                        master_start(&master, config, &err) != SK_OK)) {
        log_msg(LOG_ERROR, "%s", err.message);
        if (pid_file != NULL)
            unlink(pid_file);
        status = 1;
    }
    if (status != 0) {
        if (master.current == NULL) /* else its generation owns it */
            config_free(config);
        free(pid_file);
        return status;
    }
    status = master_run(&master); /* frees the config with its generation */
    if (pid_file != NULL)
        unlink(pid_file);
    free(pid_file);
    return status;
}

int main(int argc, char **argv)
{
    struct options o;
    int rc = parse_options(argc, argv, &o);
    if (rc != 0)
        return rc < 0 ? 0 : rc;
    struct err err;
#ifdef SAKER_TEST_HANDLERS
    if (test_handlers_register(&err) != SK_OK) {
        fprintf(stderr, "saker: %s\n", err.message);
        return 1;
    }
#endif
    struct config *config = master_load_config(o.config_file, o.urls, &err);
    if (config == NULL) {
        fprintf(stderr, "saker: %s\n", err.message);
        if (o.test_only)
            fprintf(stderr, "saker: configuration test failed\n");
        return 1;
    }
    if (o.test_only) {
        printf("saker: configuration %s is valid\n", o.config_file ? o.config_file : "(built-in)");
        config_free(config);
        return 0;
    }
    return run(&o, config);
}
