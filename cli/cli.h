/*
 * cli.h - sakerctl: commands that read the shm segment (and, later, signal
 * the master).
 *
 * sakerctl never talks to a worker or the master over a socket: everything
 * it prints comes from the segment, so it answers while workers are
 * saturated or hung. Commands are rows of a table (name, handler, help);
 * a handler gets the opened instance and its own arguments and returns the
 * process exit status: 0 done, 1 failed, 2 usage error. Only main() exits.
 *
 * The renderers (cli_status_json_write, cli_json_string)
 * depend on nothing but shm and stdio, so a worker can serve the same text
 * from its own mapping through open_memstream().
 */
#ifndef SAKER_CLI_CLI_H
#define SAKER_CLI_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "shm/shm.h"
#include "shm/shm_metrics.h"

enum { CLI_EXIT_OK = 0, CLI_EXIT_FAILED = 1, CLI_EXIT_USAGE = 2 };

/* Where to find the instance, from the command line and the environment. */
struct cli_options {
    const char *config_path; /* -c/--config */
    const char *shm_path;    /* --shm */
};

/* What a command works on. A handler first checks its own arguments (so a
 * usage error is reported as one even when saker is down), then calls
 * cli_open_instance() if it reads the segment. */
struct cli {
    const struct cli_options *opts;
    const char *shm_path; /* set by cli_open_instance() */
    struct shm shm;       /* attached read-only by cli_open_instance() */
};

struct cli_command {
    const char *name;
    int (*run)(struct cli *cli, int argc, char **argv); /* argv[0] is the name */
    const char *args; /* for the usage line, "" if none */
    const char *help;
};

/* A boolean option of a command, e.g. status --json. */
struct cli_flag {
    const char *name;
    bool *set;
};

/* sakerctl.c */
/* Prints "sakerctl: <message>" and the usage to stderr; returns CLI_EXIT_USAGE. */
int cli_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Sets the flags named in argv[1..]; anything else is a usage error
 * (CLI_EXIT_USAGE, already reported). CLI_EXIT_OK otherwise. */
int cli_parse_flags(int argc, char **argv, const struct cli_flag *flags, size_t count);

/* instance.c */
/* The segment path: --shm, then -c, then $SAKER_SHM, then $SAKER_CONFIG,
 * then config_default_shm_path(). SK_ERROR (err set) when a config does not
 * load. The returned string lives until the process exits. */
int cli_find_shm_path(const struct cli_options *opts, const char **path, struct err *err);
/* Finds the segment (cli_find_shm_path), attaches it and checks that the
 * master still lives. Prints what went wrong and returns CLI_EXIT_FAILED,
 * else CLI_EXIT_OK; main detaches when the command is done. */
int cli_open_instance(struct cli *cli);

/* status.c: `status [--json]` */
int cli_cmd_status(struct cli *cli, int argc, char **argv);

/* status_json.c: the `status --json` document, one line plus newline. */
void cli_status_json_write(const struct shm *shm, const char *shm_path, FILE *out);


/* json.c: s (at most max bytes, or up to its NUL) as a quoted JSON string;
 * control characters escaped, invalid UTF-8 replaced by U+FFFD. */
void cli_json_string(FILE *out, const char *s, size_t max);

#endif
