/*
 * cli.h - sakerctl: commands that read the shm segment and signal the master.
 *
 * sakerctl never talks to a worker or the master over a socket: everything
 * it prints comes from the segment, so it answers while workers are
 * saturated or hung. Control commands (reload, stop, drain, ...) are
 * signals to the master, whose outcome sakerctl then watches in the
 * segment. Commands are rows of a table (name, handler, help); a handler
 * gets the opened instance and its own arguments and returns the process
 * exit status: 0 done, 1 failed, 2 usage error, 4 permission denied (the
 * LSB init-script code for "insufficient privilege"). Only main() exits.
 *
 * The renderers (cli_status_write, cli_status_json_write, cli_json_string,
 * top_frame_write) depend on nothing but shm and stdio, so a worker can
 * serve the same text from its own mapping through open_memstream(), and
 * fuzz_shm runs them over any segment image.
 */
#ifndef SAKER_CLI_CLI_H
#define SAKER_CLI_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "shm/shm.h"
#include "shm/shm_metrics.h"

enum { CLI_EXIT_OK = 0, CLI_EXIT_FAILED = 1, CLI_EXIT_USAGE = 2, CLI_EXIT_PERMISSION = 4 };

/* Where to find the instance, from the command line and the environment. */
struct cli_options {
    const char *config_path; /* -c/--config */
    const char *shm_path;    /* --shm */
    const char *pid;         /* --pid: a master's pid ($MAINPID) */
    const char *pid_file;    /* --pid-file */
};

/* What a command works on. A handler first checks its own arguments (so a
 * usage error is reported as one even when saker is down), then calls
 * cli_open_instance() if it reads the segment. */
struct cli {
    const struct cli_options *opts;
    const char *shm_path; /* set by cli_open_instance() */
    struct shm shm;       /* attached read-only by cli_open_instance() */
    /* Set by a command before cli_open_instance(): a config that does not
     * load is not worth a warning (reload: the master reports the same
     * error as the reload's outcome). */
    bool quiet_config_error;
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

/* args.c: command options, pure (no output), so they are unit-tested. */
enum cli_arg_type {
    CLI_ARG_FLAG,     /* bool: present or not */
    CLI_ARG_DURATION, /* uint64_t ms: "500ms", "30s", "2m", "0.5"; bare number = s */
    CLI_ARG_UINT,     /* unsigned: a decimal count */
    CLI_ARG_STRING,   /* const char *: any non-empty text (a path) */
};
struct cli_arg {
    const char *name; /* "--timeout" */
    enum cli_arg_type type;
    void *value;      /* bool *, uint64_t *, unsigned * or const char ** by type */
};
/* Parses argv[1..] against args: "--name", "--name VALUE" and
 * "--name=VALUE". SK_OK, or SK_ERROR with err saying which argument is
 * wrong (unknown option, missing or bad value). Values of options absent
 * from argv are left as the caller initialised them. */
int cli_args_parse(int argc, char **argv, const struct cli_arg *args, size_t count,
                   struct err *err);
/* ms as exact text units_parse_duration() reads back, in whole hours,
 * else seconds, else ms: "2h", "90s", "1500ms", "0s". Returns buf. */
char *cli_format_ms(uint64_t ms, char *buf, size_t size);

/* sakerctl.c */
/* Prints "sakerctl: <message>" and the usage to stderr; returns CLI_EXIT_USAGE. */
int cli_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Sets the flags named in argv[1..]; anything else is a usage error
 * (CLI_EXIT_USAGE, already reported). CLI_EXIT_OK otherwise. */
int cli_parse_flags(int argc, char **argv, const struct cli_flag *flags, size_t count);
/* cli_args_parse() with a usage error reported: CLI_EXIT_OK or
 * CLI_EXIT_USAGE. */
int cli_parse_options(int argc, char **argv, const struct cli_arg *args, size_t count);

/* config_scan.c */
/* Finds a top-level `shm_path:` in a YAML file the full loader rejected,
 * so sakerctl can still reach (stop, reload, inspect) an instance whose
 * config has since been broken. SK_OK with *path set (malloc'ed) when
 * found; SK_DECLINED when the file parsed to its end without one (the
 * default applies); SK_ERROR (err set) when it could not be read or broke
 * before a shm_path was seen. */
int cli_scan_shm_path(const char *file, char **path, struct err *err);

/* instance.c */
/* The segment path: --shm, then the segment --pid's (or --pid-file's)
 * process maps, then -c, then $SAKER_SHM, then $SAKER_CONFIG, then
 * config_default_shm_path(). SK_ERROR (err set) when a config does not
 * load or the pid maps no segment. The returned string lives until the
 * process exits. */
int cli_find_shm_path(const struct cli_options *opts, const char **path, struct err *err);
/* Finds the segment (cli_find_shm_path), attaches it (shm_attach trusts
 * only a segment of root or the caller) and checks that its master still
 * lives (shm_master_verify). Prints what went wrong and returns
 * CLI_EXIT_FAILED, else CLI_EXIT_OK; main detaches when the command is
 * done. */
int cli_open_instance(struct cli *cli);
/* True when pid no longer runs: ESRCH, or a zombie not reaped yet (a
 * master started by a test or a shell stays a zombie until waited for). */
bool cli_process_gone(pid_t pid);
/* kill(), or sigqueue() with value when queue is true, to the master of
 * the opened instance, once shm_master_verify says the pid is that
 * master. On failure prints the reason (EPERM: which user to run as) and
 * returns CLI_EXIT_PERMISSION or CLI_EXIT_FAILED. */
int cli_signal_master(struct cli *cli, int signo, bool queue, int value);

/* control.c: reload, stop, drain, undrain, reopen */
int cli_cmd_reload(struct cli *cli, int argc, char **argv);
int cli_cmd_stop(struct cli *cli, int argc, char **argv);
int cli_cmd_drain(struct cli *cli, int argc, char **argv);
int cli_cmd_undrain(struct cli *cli, int argc, char **argv);
int cli_cmd_reopen(struct cli *cli, int argc, char **argv);

/* control.c: after a signal, polls the header every 20 ms until the
 * counter at count_offset (reload_count, upgrade_count) passes before,
 * and returns report(header). Fails (printed, CLI_EXIT_FAILED) when
 * master exits first or timeout ms pass; what names it ("reload"). */
int cli_wait_outcome(struct cli *cli, const char *what, size_t count_offset, uint64_t before,
                     pid_t master, uint64_t timeout, int (*report)(const struct shm_header *h));

/* upgrade.c: `upgrade [--binary PATH] [--timeout D]` */
int cli_cmd_upgrade(struct cli *cli, int argc, char **argv);

/* top.c: `top [--interval S] [--iterations N] [--once]` */
int cli_cmd_top(struct cli *cli, int argc, char **argv);

/* conns.c: `conns`' listing (only: one slot, or -1 for all), text or
 * JSON. */
void cli_conns_write(const struct shm *shm, int only, bool json, FILE *out);

/* status.c: the `status` text. */
void cli_status_write(const struct shm *shm, const char *shm_path, FILE *out);

/* status_json.c: the `status --json` document, one line plus newline. */
void cli_status_json_write(const struct shm *shm, const char *shm_path, FILE *out);


/* format.c: text for humans; each returns buf. */
/* "45s", "3m7s", "1h2m3s", "2d0h0m1s"; negative counts as 0. */
char *cli_format_duration(int64_t seconds, char *buf, size_t size);
/* later - earlier, saturated at the ends of int64_t: times from shm may be
 * anything. */
int64_t cli_seconds_between(int64_t later, int64_t earlier);
/* "1023B", then one decimal with a binary unit: "1.5KiB", "2.0MiB". */
char *cli_format_bytes(uint64_t n, char *buf, size_t size);
/* Heartbeat age: "-" for none, "350ms" under 10 s, then "12s". */
char *cli_format_age(uint64_t heartbeat_ms, uint64_t now_ms, char *buf, size_t size);
/* s (at most max bytes) with control characters as '?', so a hostile
 * string from shm cannot move the cursor or fake a line. */
const char *cli_printable(const char *s, size_t max, char *buf, size_t size);

/* json.c: s (at most max bytes, or up to its NUL) as a quoted JSON string;
 * control characters escaped, invalid UTF-8 replaced by U+FFFD. */
void cli_json_string(FILE *out, const char *s, size_t max);

#endif
