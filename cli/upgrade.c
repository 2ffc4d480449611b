/*
 * upgrade.c - `sakerctl upgrade [--binary PATH] [--timeout D]`: replace
 * the running master with a new executable, without dropping a request.
 *
 * The master does the work (master/upgrade.c): it starts the new binary
 * as a new master that inherits every listening socket and the segment,
 * waits until its workers serve, and only then drains and exits. This
 * command asks for it and reports the outcome synchronously, as reload
 * does: it names the binary in the segment (--binary; default: the
 * master's own executable path, where a package upgrade put the new
 * file), sends SIGUSR2 with value 3, and waits for upgrade_count to move.
 * Exit 0 when the new master serves, 1 with the reason when it did not
 * (the old master then goes on serving).
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"

#define UPGRADE_TIMEOUT_MS 60000
#define UPGRADE_VALUE 3 /* the master's SIGUSR2 value (master.c) */

static int report(const struct shm_header *h)
{
    char message[SHM_MESSAGE_MAX + 1];
    snprintf(message, sizeof message, "%.*s", SHM_MESSAGE_MAX, h->upgrade_message);
    if (!h->upgrade_ok) {
        fprintf(stderr, "upgrade failed: %s\n", message[0] ? message : "(no message)");
        return CLI_EXIT_FAILED;
    }
    printf("upgraded: %s\n", message);
    return CLI_EXIT_OK;
}

/* The binary, absolute and executable, written where the master reads it. */
static int name_binary(struct cli *cli, const char *binary)
{
    char path[PATH_MAX];
    struct err err;
    if (realpath(binary, path) == NULL || access(path, X_OK) != 0) {
        fprintf(stderr, "sakerctl: upgrade: %s: %s\n", binary,
                errno == EACCES ? "not executable" : strerror(errno));
        return CLI_EXIT_FAILED;
    }
    if (shm_request_upgrade(cli->shm_path, path, &err) != SK_OK) {
        fprintf(stderr, "sakerctl: upgrade: %s\n", err.message);
        return errno == EACCES ? CLI_EXIT_PERMISSION : CLI_EXIT_FAILED;
    }
    return CLI_EXIT_OK;
}

int cli_cmd_upgrade(struct cli *cli, int argc, char **argv)
{
    uint64_t timeout = UPGRADE_TIMEOUT_MS;
    const char *binary = NULL;
    const struct cli_arg args[] = {{"--timeout", CLI_ARG_DURATION, &timeout},
                                   {"--binary", CLI_ARG_STRING, &binary}};
    int rc = cli_parse_options(argc, argv, args, 2);
    if (rc == CLI_EXIT_OK)
        rc = cli_open_instance(cli);
    if (rc == CLI_EXIT_OK && binary != NULL)
        rc = name_binary(cli, binary);
    if (rc != CLI_EXIT_OK)
        return rc;
    struct shm_header h;
    shm_snapshot_header(&cli->shm, &h);
    if ((rc = cli_signal_master(cli, SIGUSR2, true, UPGRADE_VALUE)) != CLI_EXIT_OK)
        return rc;
    return cli_wait_outcome(cli, "upgrade", offsetof(struct shm_header, upgrade_count),
                            h.upgrade_count, h.master_pid, timeout, report);
}
