/*
 * activation.h - listening sockets passed by systemd (socket activation).
 *
 * systemd's protocol (sd_listen_fds(3)): LISTEN_PID names the process the
 * sockets are for, LISTEN_FDS how many there are, from descriptor 3 on,
 * and LISTEN_FDNAMES their names, colon-separated (a .socket unit's
 * FileDescriptorName=, by default the unit's name). saker matches them to
 * endpoints by name: an endpoint serves every passed socket named after
 * it instead of binding its URL, whose scheme still says http or https.
 *
 * The sockets belong to the process for its life, at the numbers systemd
 * gave them: listeners serve them but never close them (a reload that
 * drops an endpoint and a later one that brings it back find the same
 * socket; the queue systemd filled is never reset), a Unix socket file is
 * systemd's and never removed, and a binary upgrade passes them to the new
 * master by the same protocol (activation_export). Sockets whose name no
 * endpoint has are kept too, with a warning at start.
 *
 * The table is process-wide, as the descriptors are: activation_take runs
 * once, in the master, before any listener is opened.
 */
#ifndef SAKER_MASTER_ACTIVATION_H
#define SAKER_MASTER_ACTIVATION_H

#include <stdbool.h>
#include <stddef.h>

#include "common/error.h"
#include "conf/config.h"

#define ACTIVATION_FIRST_FD 3 /* SD_LISTEN_FDS_START */
#define ACTIVATION_MAX 64

/* Reads and unsets LISTEN_PID, LISTEN_FDS and LISTEN_FDNAMES. Variables
 * meant for another process (LISTEN_PID not ours) are ignored. Each passed
 * descriptor must be a listening stream socket; it is made non-blocking
 * and close-on-exec. SK_OK (also with nothing passed) or SK_ERROR. */
int activation_take(struct err *err);

/* The k-th passed socket named `name` (k from 0), or -1. */
int activation_find(const char *name, unsigned k);

/* Whether fd is one of the passed sockets (not to be closed). */
bool activation_owns(int fd);

/* Logs a warning for every passed socket no endpoint of config names. */
void activation_warn_unused(const struct config *config);

/* In the child of a binary upgrade, before exec: the passed sockets stay
 * open across exec and the environment describes them to the new master
 * (LISTEN_PID is the child's own pid, which exec keeps). */
void activation_export(void);

#endif
