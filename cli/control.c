/*
 * control.c - the commands that change what the master does:
 *
 *   reload [--timeout D]        SIGHUP; wait for the outcome in shm
 *   stop [--timeout D] [--now]  SIGTERM (SIGQUIT with --now); wait for exit
 *   drain / undrain             SIGUSR2 with value 1 / 2; wait for the state
 *   reopen                      SIGUSR1; nothing to wait for
 *
 * A signal alone tells the operator nothing, and reloads that fail
 * silently are the top complaint about other servers: so each command
 * (but reopen) watches the segment until the master has acted, and reports
 * the outcome with an exit status a script or systemd can use. Watching is
 * polling every 20 ms against a deadline, reading the segment again each
 * time; the master writes its outcome (reload_count, reload_ok,
 * reload_message; header state) into shm.
 *
 * Two sakerctl reloads racing may both report the first outcome written
 * after their snapshots: reload_count says a reload finished, not whose.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "common/clock.h"

#define POLL_MS 20
#define RELOAD_TIMEOUT_MS 60000
#define STOP_TIMEOUT_MS 90000
#define DRAIN_TIMEOUT_MS 10000

/* The master's SIGUSR2 values (master.c). */
enum { DRAIN_VALUE = 1, UNDRAIN_VALUE = 2 };

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static int parse(int argc, char **argv, const struct cli_arg *args, size_t n)
{
    return cli_parse_options(argc, argv, args, n);
}

/* sakerctl reads a copy of the segment: take a fresh one before each look. */
static int reread(struct cli *cli)
{
    struct err err;
    if (shm_refresh(&cli->shm, &err) == SK_OK)
        return CLI_EXIT_OK;
    fprintf(stderr, "sakerctl: %s: %s\n", cli->shm_path, err.message);
    return CLI_EXIT_FAILED;
}

/* ---- reload ------------------------------------------------------------ */

static int report_reload(const struct shm_header *h)
{
    char message[SHM_MESSAGE_MAX + 1];
    snprintf(message, sizeof message, "%.*s", SHM_MESSAGE_MAX, h->reload_message);
    if (!h->reload_ok) {
        fprintf(stderr, "reload failed: %s\n", message[0] ? message : "(no message)");
        return CLI_EXIT_FAILED;
    }
    printf("reloaded: generation %" PRIu64 " in %" PRIu64 " ms\n", (uint64_t)h->generation,
           h->reload_duration_ms);
    if (message[0] != '\0')
        printf("%s\n", message);
    return CLI_EXIT_OK;
}

int cli_cmd_reload(struct cli *cli, int argc, char **argv)
{
    uint64_t timeout = RELOAD_TIMEOUT_MS;
    const struct cli_arg args[] = {{"--timeout", CLI_ARG_DURATION, &timeout}};
    int rc = parse(argc, argv, args, 1);
    cli->quiet_config_error = true; /* the reload's outcome will carry it */
    if (rc == CLI_EXIT_OK)
        rc = cli_open_instance(cli);
    if (rc != CLI_EXIT_OK)
        return rc;
    struct shm_header h;
    shm_snapshot_header(&cli->shm, &h);
    if ((rc = cli_signal_master(cli, SIGHUP, false, 0)) != CLI_EXIT_OK)
        return rc;
    return cli_wait_outcome(cli, "reload", offsetof(struct shm_header, reload_count),
                            h.reload_count, h.master_pid, timeout, report_reload);
}

int cli_wait_outcome(struct cli *cli, const char *what, size_t count_offset, uint64_t before,
                     pid_t master, uint64_t timeout, int (*report)(const struct shm_header *h))
{
    struct shm_header h;
    uint64_t deadline = clock_now_monotonic_ms() + timeout;
    for (;;) {
        if (reread(cli) != CLI_EXIT_OK)
            return CLI_EXIT_FAILED;
        /* SK_AGAIN: mid-write; the count is read again on the next turn. */
        if (shm_snapshot_header(&cli->shm, &h) == SK_OK &&
            *(const uint64_t *)((const char *)&h + count_offset) > before)
            return report(&h);
        if (cli_process_gone(master)) {
            fprintf(stderr, "sakerctl: saker master pid %d exited during the %s\n", (int)master,
                    what);
            return CLI_EXIT_FAILED;
        }
        if (clock_now_monotonic_ms() >= deadline)
            break;
        sleep_ms(POLL_MS);
    }
    char d[32];
    fprintf(stderr, "sakerctl: no %s outcome after %s (is the master stuck?)\n", what,
            cli_format_ms(timeout, d, sizeof d));
    return CLI_EXIT_FAILED;
}

/* ---- stop -------------------------------------------------------------- */

int cli_cmd_stop(struct cli *cli, int argc, char **argv)
{
    uint64_t timeout = STOP_TIMEOUT_MS;
    bool now = false;
    const struct cli_arg args[] = {{"--timeout", CLI_ARG_DURATION, &timeout},
                                   {"--now", CLI_ARG_FLAG, &now}};
    int rc = parse(argc, argv, args, 2);
    if (rc == CLI_EXIT_OK)
        rc = cli_open_instance(cli);
    if (rc != CLI_EXIT_OK)
        return rc;
    pid_t pid = cli->shm.header->master_pid;
    uint64_t start = clock_now_monotonic_ms();
    if ((rc = cli_signal_master(cli, now ? SIGQUIT : SIGTERM, false, 0)) != CLI_EXIT_OK)
        return rc;
    while (!cli_process_gone(pid)) {
        if (clock_now_monotonic_ms() - start >= timeout) {
            char d[32];
            fprintf(stderr, "sakerctl: saker master pid %d still running after %s (%s); "
                    "stop it at once with 'sakerctl stop --now'\n", (int)pid,
                    cli_format_ms(timeout, d, sizeof d),
                    now ? "it ignored SIGQUIT" : "graceful stop in progress, workers draining");
            return CLI_EXIT_FAILED;
        }
        sleep_ms(POLL_MS);
    }
    printf("stopped: saker master pid %d exited in %" PRIu64 " ms\n", (int)pid,
           clock_now_monotonic_ms() - start);
    return CLI_EXIT_OK;
}

/* ---- drain, undrain ------------------------------------------------------ */

static int drain_change(struct cli *cli, int argc, char **argv, bool drain)
{
    uint64_t timeout = DRAIN_TIMEOUT_MS;
    const struct cli_arg args[] = {{"--timeout", CLI_ARG_DURATION, &timeout}};
    int rc = parse(argc, argv, args, 1);
    if (rc == CLI_EXIT_OK)
        rc = cli_open_instance(cli);
    if (rc != CLI_EXIT_OK)
        return rc;
    const struct shm_header *h = cli->shm.header;
    unsigned want = drain ? SHM_INSTANCE_DRAINING : SHM_INSTANCE_RUNNING;
    rc = cli_signal_master(cli, SIGUSR2, true, drain ? DRAIN_VALUE : UNDRAIN_VALUE);
    if (rc != CLI_EXIT_OK)
        return rc;
    uint64_t deadline = clock_now_monotonic_ms() + timeout;
    unsigned state;
    for (;;) {
        if (reread(cli) != CLI_EXIT_OK)
            return CLI_EXIT_FAILED;
        if ((state = atomic_load(&h->state)) == want)
            break;
        if (state == SHM_INSTANCE_STOPPING || state == SHM_INSTANCE_STOPPED ||
            cli_process_gone(h->master_pid)) {
            fprintf(stderr, "sakerctl: saker is stopping; nothing to %s\n", argv[0]);
            return CLI_EXIT_FAILED;
        }
        if (clock_now_monotonic_ms() >= deadline) {
            char d[32];
            fprintf(stderr, "sakerctl: saker master pid %d still %s after %s, not %s\n",
                    h->master_pid, shm_instance_state_name(state),
                    cli_format_ms(timeout, d, sizeof d), shm_instance_state_name(want));
            return CLI_EXIT_FAILED;
        }
        sleep_ms(POLL_MS);
    }
    if (drain)
        printf("draining: saker master pid %d accepts no new connections; open ones are "
               "served (undo with 'sakerctl undrain')\n", h->master_pid);
    else
        printf("running: saker master pid %d accepts connections again\n", h->master_pid);
    return CLI_EXIT_OK;
}

int cli_cmd_drain(struct cli *cli, int argc, char **argv)
{
    return drain_change(cli, argc, argv, true);
}

int cli_cmd_undrain(struct cli *cli, int argc, char **argv)
{
    return drain_change(cli, argc, argv, false);
}

/* ---- reopen ---------------------------------------------------------------- */

int cli_cmd_reopen(struct cli *cli, int argc, char **argv)
{
    int rc = parse(argc, argv, NULL, 0);
    if (rc == CLI_EXIT_OK)
        rc = cli_open_instance(cli);
    if (rc == CLI_EXIT_OK)
        rc = cli_signal_master(cli, SIGUSR1, false, 0);
    if (rc == CLI_EXIT_OK)
        printf("reopen: signalled saker master pid %d to reopen its logs\n",
               cli->shm.header->master_pid);
    return rc;
}
