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
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>

#include "common/log.h"
#include "common/slab.h"
#include "conf/config.h"
#include "conf/config_module.h"
#include "build_config.h"
#include "master/master.h"
#include "master/runfiles.h"
#include "tls/tls_memory.h"
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

/* The first process of `saker -d`: waits for the daemon's word and says
 * it on the terminal it still has. One NUL byte: serving; anything else:
 * why the start failed; nothing: the daemon died without a word. */
static int wait_for_daemon(int ready, bool logs_discarded)
{
    char text[ERR_MESSAGE_MAX];
    size_t used = 0;
    ssize_t n;
    while (used < sizeof text - 1 &&
           ((n = read(ready, text + used, sizeof text - 1 - used)) > 0 || (n < 0 && errno == EINTR)))
        used += n > 0 ? (size_t)n : 0;
    text[used] = '\0';
    if (used > 0 && text[0] == '\0') {
        if (logs_discarded)
            fprintf(stderr, "saker: serving; no error_log set, so the daemon's log lines "
                    "are discarded\n");
        return 0;
    }
    fprintf(stderr, "saker: %s\n", used > 0 ? text : "the daemon exited before it served "
            "(see the error log)");
    return 1;
}

/* Forks. The parent returns the exit status for main (-1 in the child),
 * the child gets the descriptor it reports through. */
static int daemonize(bool logs_discarded, int *ready_fd)
{
    int ready[2];
    if (pipe2(ready, O_CLOEXEC) != 0)
        return 1;
    pid_t pid = fork();
    if (pid < 0)
        return 1;
    if (pid > 0) {
        /* This process only waits: Ctrl-C and kill end it as usual, not
         * through the master's handlers, which have nothing to run. */
        sigset_t none;
        sigemptyset(&none);
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        sigprocmask(SIG_SETMASK, &none, NULL);
        close(ready[1]);
        return wait_for_daemon(ready[0], logs_discarded);
    }
    close(ready[0]);
    setsid();
    /* A daemon that kept the caller's stdout or stderr open would hang a
     * caller that reads them to the end (`out=$(saker -d)`). */
    int null = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null >= 0) {
        dup2(null, STDIN_FILENO);
        dup2(null, STDOUT_FILENO);
        dup2(null, STDERR_FILENO);
        close(null);
    }
    *ready_fd = ready[1];
    return -1;
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
static int prepare(const struct config *config)
{
    if (config->log_level != NULL)
        log_set_level((enum log_level)log_level_parse(config->log_level));
    runfiles_create_logs(config);
    if (config->error_log != NULL && log_open(config->error_log) != SK_OK) {
        fprintf(stderr, "saker: error_log %s: %s\n", config->error_log, strerror(errno));
        return 1;
    }
    raise_open_files_limit();
    return 0;
}

/* A start error goes to the log and, when the log is a file, to the
 * terminal too: the person who typed the command must see it. From the
 * daemon, it goes to the waiting first process instead. */
static void start_error(const struct master *m, const struct err *err)
{
    log_msg(LOG_ERROR, "%s", err->message);
    if (m->ready_fd >= 0) {
        ssize_t written = write(m->ready_fd, err->message, strlen(err->message));
        (void)written;
    } else if (log_fd() != STDERR_FILENO) {
        fprintf(stderr, "saker: %s\n", err->message);
    }
}

static int run(const struct options *o, struct config *config)
{
    struct err err;
    struct master master = {.ready_fd = -1, .config_file = o->config_file, .urls = o->urls,
                            .pid_file = {.fd = -1}, .upgrade_fd = -1};
    int status = prepare(config);
    if (status != 0) {
        config_free(config);
        return status;
    }
    if (master_bind(&master, config, &err) != SK_OK) {
        start_error(&master, &err);
        master_abandon(&master);
        config_free(config);
        return 1;
    }
    if (o->daemonize && !master.candidate) { /* an upgrade's new master stays put */
        bool discarded = config->error_log == NULL || strcmp(config->error_log, "stderr") == 0;
        status = daemonize(discarded, &master.ready_fd);
        if (status >= 0) { /* the first process: the daemon has the instance */
            master_forget(&master);
            config_free(config);
            return status;
        }
    }
    if (master_start(&master, config, &err) != SK_OK) {
        start_error(&master, &err);
        bool owned = master.current != NULL; /* else its generation frees it */
        master_abandon(&master);
        if (!owned)
            config_free(config);
        return 1;
    }
    return master_run(&master); /* frees the config with its generation */
}

int main(int argc, char **argv)
{
    /* Before OpenSSL or libevent allocate: the worker's small blocks
     * come from its slab once it is enabled (common/slab.h). */
    tls_memory_install();
    event_set_mem_functions(slab_malloc, slab_realloc, slab_free);
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
    /* Configs name modules: this process opens them (sakerctl does not). */
    config_set_module_loader(&config_module_dlopen);
    struct config *config = master_load_config(o.config_file, o.urls, &err);
    if (config == NULL && !o.test_only && master_upgrade_ready_fd() >= 0) {
        /* The old master of an upgrade waits for this. */
        ssize_t written = write(master_upgrade_ready_fd(), err.message, strlen(err.message));
        (void)written;
    }
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
