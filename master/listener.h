/*
 * listener.h - the listening sockets, owned by the master for its life.
 *
 * listeners_open() binds every endpoint of a config: "localhost" binds
 * 127.0.0.1 and ::1 (the same port, also for port 0; a warning when one
 * family is unavailable), "*" and host names bind 0.0.0.0 and :: (v6only),
 * literals bind themselves, unix:/path binds a Unix socket (removing a
 * stale socket file nobody listens on; refusing one in use). Sockets are
 * non-blocking and close-on-exec; workers inherit them across fork.
 *
 * When `previous` is given (a reload), a socket already bound to the same
 * address is moved over, not re-bound, so nothing queued on it is lost.
 */
#ifndef SAKER_MASTER_LISTENER_H
#define SAKER_MASTER_LISTENER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "conf/config.h"
#include "shm/shm.h"

struct listener {
    int fd;
    int family;                /* AF_INET, AF_INET6, AF_UNIX */
    const struct endpoint *endpoint;
    char url[256];             /* the endpoint URL as written, for reuse on reload */
    unsigned url_index;        /* which of the URL's addresses (localhost has two) */
    uint16_t port;             /* the real port */
    char address[160];         /* "127.0.0.1:8080", "[::1]:8080", "/run/saker.sock" */
    int reused_from;           /* index in the previous set, or -1 */
    bool keep_path;            /* Unix socket file another master serves: never unlinked */
};

struct listener_set {
    struct listener *items;
    size_t count;
};

int listeners_open(struct listener_set *set, const struct config *config,
                   struct listener_set *previous, struct err *err);
/* Undoes listeners_open: sockets taken from previous go back to it, new
 * ones are closed. */
void listeners_rollback(struct listener_set *set, struct listener_set *previous);
/* Closes every socket (and removes Unix socket files, but those marked
 * keep_path) that is still open. */
void listeners_close(struct listener_set *set);
/* Marks every socket keep_path: after a binary upgrade the new master
 * serves the same socket files. */
void listeners_keep_paths(struct listener_set *set);
/* Writes the listener table into the shm header. */
void listeners_publish(const struct listener_set *set, struct shm *shm);

#endif
