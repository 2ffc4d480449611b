/*
 * sakerctl.c - main: global options, the command table, dispatch.
 *
 *   sakerctl [-c CONFIG | --shm PATH | --pid PID | --pid-file FILE] COMMAND [options]
 *
 * The options that find the instance may also follow the command.
 *
 * Exit status: 0 done, 1 failed (no instance, stale segment, bad config,
 * a reload the master refused, a timeout), 2 usage error, 4 permission
 * denied (the LSB code for insufficient privilege, so an init script can
 * pass it on). A handler checks its arguments, then opens the instance if
 * it needs one (cli_open_instance); main detaches it afterwards. Every
 * command is a row in `commands`.
 */
#ifdef HAVE_CONFIG_H
#include "build_config.h"
#endif
#include <stdbool.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "conf/config.h"

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "unknown"
#endif

int cli_parse_options(int argc, char **argv, const struct cli_arg *args, size_t count)
{
    struct err err;
    if (cli_args_parse(argc, argv, args, count, &err) != SK_OK)
        return cli_usage_error("%s", err.message);
    return CLI_EXIT_OK;
}

static int cmd_help(struct cli *cli, int argc, char **argv);
static int cmd_version(struct cli *cli, int argc, char **argv);
static int cmd_status(struct cli *cli, int argc, char **argv);
static int cmd_metrics(struct cli *cli, int argc, char **argv);
static int cmd_conns(struct cli *cli, int argc, char **argv);

static const struct cli_command commands[] = {
    {"status", cmd_status, "[--json]",
     "workers, listeners, counters and the last reload (--json: machine-readable)"},
    {"top", cli_cmd_top, "[--interval D] [--iterations N] [--once]",
     "live per-worker CPU, connections, rates and status mix; q quits"},
    {"metrics", cmd_metrics, "", "counters in Prometheus text format 0.0.4"},
    {"conns", cmd_conns, "[--slot N] [--json]",
     "each worker's connections: client, state, age, bytes, request (connection_list: on)"},
    {"reload", cli_cmd_reload, "[--timeout D]",
     "re-read the config; wait for the new generation or print the error (default 60s)"},
    {"stop", cli_cmd_stop, "[--timeout D] [--now]",
     "graceful stop (--now: immediate); wait until the master exits (default 90s)"},
    {"drain", cli_cmd_drain, "[--timeout D]",
     "stop accepting new connections, keep serving open ones"},
    {"undrain", cli_cmd_undrain, "[--timeout D]", "accept new connections again"},
    {"reopen", cli_cmd_reopen, "", "reopen the log files (after logrotate)"},
    {"upgrade", cli_cmd_upgrade, "[--binary PATH] [--timeout D]",
     "start a new master from PATH (default: the running one's executable) on the same "
     "sockets and segment; the old one drains once it serves (default 60s)"},
    {"help", cmd_help, "", "this text"},
    {"version", cmd_version, "", "sakerctl's version and shm layout"},
};
#define COMMAND_COUNT (sizeof commands / sizeof commands[0])

static void usage(FILE *out)
{
    fprintf(out,
            "usage: sakerctl [-c CONFIG | --shm PATH | --pid PID | --pid-file FILE] COMMAND "
            "[options]\n"
            "\n"
            "commands:\n");
    for (size_t i = 0; i < COMMAND_COUNT; i++) {
        char left[64];
        snprintf(left, sizeof left, "%s %s", commands[i].name, commands[i].args);
        fprintf(out, "  %-28s %s\n", left, commands[i].help);
    }
    fprintf(out,
            "\n"
            "options:\n"
            "  -c, --config FILE  find the instance through FILE's shm_path\n"
            "      --shm PATH     read the segment at PATH\n"
            "      --pid PID      the instance whose master is PID (systemd's $MAINPID)\n"
            "      --pid-file F   the instance whose master's pid is in F\n"
            "  -h, --help         this text\n"
            "  -V, --version      sakerctl's version\n"
            "Options may come before or after the command.\n"
            "\n"
            "The segment is --shm, else the one --pid's master maps, else -c's\n"
            "shm_path, else $SAKER_SHM, else $SAKER_CONFIG's shm_path, else\n"
            "%s.\n"
            "Durations D: 500ms, 30s, 2m, 1h; a bare number is seconds.\n"
            "Exit status: 0 done, 1 failed, 2 usage error, 4 permission denied.\n",
            config_default_shm_path());
}

int cli_usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("sakerctl: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputs("\n", stderr);
    va_end(ap);
    usage(stderr);
    return CLI_EXIT_USAGE;
}

int cli_parse_flags(int argc, char **argv, const struct cli_flag *flags, size_t count)
{
    for (int i = 1; i < argc; i++) {
        size_t f = 0;
        while (f < count && strcmp(argv[i], flags[f].name) != 0)
            f++;
        if (f == count)
            return cli_usage_error("%s: unknown option or argument '%s'", argv[0], argv[i]);
        *flags[f].set = true;
    }
    return CLI_EXIT_OK;
}

static int cmd_help(struct cli *cli, int argc, char **argv)
{
    (void)cli;
    int rc = cli_parse_flags(argc, argv, NULL, 0);
    if (rc != CLI_EXIT_OK)
        return rc;
    usage(stdout);
    return CLI_EXIT_OK;
}

static int cmd_version(struct cli *cli, int argc, char **argv)
{
    (void)cli;
    int rc = cli_parse_flags(argc, argv, NULL, 0);
    if (rc != CLI_EXIT_OK)
        return rc;
    printf("sakerctl %s (shm layout %d)\n", PACKAGE_VERSION, SHM_LAYOUT_VERSION);
    return CLI_EXIT_OK;
}

static int cmd_conns(struct cli *cli, int argc, char **argv)
{
    bool json = false, one = false;
    unsigned slot = 0;
    const struct cli_arg args[] = {{"--json", CLI_ARG_FLAG, &json},
                                   {"--slot", CLI_ARG_UINT, &slot}};
    int rc = cli_parse_options(argc, argv, args, sizeof args / sizeof args[0]);
    for (int i = 1; i < argc; i++)
        one |= strncmp(argv[i], "--slot", 6) == 0;
    if (rc == CLI_EXIT_OK)
        rc = cli_open_instance(cli);
    if (rc != CLI_EXIT_OK)
        return rc;
    cli_conns_write(&cli->shm, one ? (int)slot : -1, json, stdout);
    return CLI_EXIT_OK;
}

static int cmd_status(struct cli *cli, int argc, char **argv)
{
    bool json = false;
    const struct cli_flag flags[] = {{"--json", &json}};
    int rc = cli_parse_flags(argc, argv, flags, sizeof flags / sizeof flags[0]);
    if (rc == CLI_EXIT_OK)
        rc = cli_open_instance(cli);
    if (rc != CLI_EXIT_OK)
        return rc;
    if (json)
        cli_status_json_write(&cli->shm, cli->shm_path, stdout);
    else
        cli_status_write(&cli->shm, cli->shm_path, stdout);
    return CLI_EXIT_OK;
}

static int cmd_metrics(struct cli *cli, int argc, char **argv)
{
    int rc = cli_parse_flags(argc, argv, NULL, 0);
    if (rc == CLI_EXIT_OK)
        rc = cli_open_instance(cli);
    if (rc != CLI_EXIT_OK)
        return rc;
    shm_metrics_write(&cli->shm, stdout);
    return CLI_EXIT_OK;
}

static const struct cli_command *command_find(const char *name)
{
    for (size_t i = 0; i < COMMAND_COUNT; i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

/* Options that say where the instance is, taken before or after the
 * command (`sakerctl -c FILE status` and `sakerctl status -c FILE`), as
 * most command lines take them. */
struct global_option {
    const char *short_name; /* NULL: none */
    const char *long_name;
    const char *early;      /* a command it stands for, or NULL */
    size_t offset;          /* of its value in struct cli_options */
};

#define OPT(field) offsetof(struct cli_options, field)
static const struct global_option globals[] = {
    {"-c", "--config", NULL, OPT(config_path)},
    {NULL, "--shm", NULL, OPT(shm_path)},
    {NULL, "--pid", NULL, OPT(pid)},
    {NULL, "--pid-file", NULL, OPT(pid_file)},
    {"-h", "--help", "help", 0},
    {"-V", "--version", "version", 0},
};
#undef OPT

/* The global option arg is, with its value's text in *inline_value when
 * given as --name=VALUE or -cVALUE; NULL when arg is no global option. */
static const struct global_option *global_find(const char *arg, const char **inline_value)
{
    *inline_value = NULL;
    for (size_t i = 0; i < sizeof globals / sizeof globals[0]; i++) {
        const struct global_option *g = &globals[i];
        size_t n = strlen(g->long_name);
        if (strcmp(arg, g->long_name) == 0 || (g->short_name && strcmp(arg, g->short_name) == 0))
            return g;
        if (g->early == NULL && strncmp(arg, g->long_name, n) == 0 && arg[n] == '=') {
            *inline_value = arg + n + 1;
            return g;
        }
        if (g->early == NULL && g->short_name && strncmp(arg, g->short_name, 2) == 0 &&
            arg[2] != '\0') {
            *inline_value = arg + 2;
            return g;
        }
    }
    return NULL;
}

/* Takes the global options out of argv wherever they are (up to a "--",
 * after which everything is the command's), leaving the command and its
 * own arguments in order at argv[1..]. Returns the new argc (1: no
 * command), or minus the exit status of a usage error. */
static int parse_global(int argc, char **argv, struct cli_options *opts, const char **early)
{
    int kept = 1;
    bool literal = false;
    for (int i = 1; i < argc; i++) {
        const char *value;
        const struct global_option *g = literal ? NULL : global_find(argv[i], &value);
        if (!literal && strcmp(argv[i], "--") == 0) {
            literal = true;
            continue;
        }
        if (g == NULL) {
            if (kept == 1 && !literal && argv[i][0] == '-')
                return -cli_usage_error("unknown option '%s'", argv[i]);
            argv[kept++] = argv[i];
            continue;
        }
        if (g->early != NULL) {
            if (*early == NULL)
                *early = g->early;
            continue;
        }
        if (value == NULL && i + 1 >= argc)
            return -cli_usage_error("option '%s' needs an argument", argv[i]);
        *(const char **)((char *)opts + g->offset) = value ? value : argv[++i];
    }
    return kept;
}

static int run_command(const struct cli_command *cmd, const struct cli_options *opts,
                       int argc, char **argv)
{
    struct cli cli = {.opts = opts};
    int rc = cmd->run(&cli, argc, argv);
    if (cli.shm.header != NULL)
        shm_detach(&cli.shm);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        perror("sakerctl: write to stdout");
        return CLI_EXIT_FAILED;
    }
    return rc;
}

int main(int argc, char **argv)
{
    struct cli_options opts = {0};
    const char *early = NULL;
    argc = parse_global(argc, argv, &opts, &early);
    if (argc < 0)
        exit(-argc);
    if (early != NULL) {
        char *early_argv[] = {(char *)early, NULL};
        exit(run_command(command_find(early), &opts, 1, early_argv));
    }
    if (argc < 2)
        exit(cli_usage_error("no command given"));
    const struct cli_command *cmd = command_find(argv[1]);
    if (cmd == NULL)
        exit(cli_usage_error("unknown command '%s'", argv[1]));
    exit(run_command(cmd, &opts, argc - 1, argv + 1));
}
