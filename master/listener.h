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
 * A TCP address is a group of SO_REUSEPORT sockets, one per worker index
 * (socket i is polled by worker i of every generation), with a steering
 * program (steering.h) that gives new connections only to the sockets of
 * live workers. The master never closes a socket of a group while its
 * address is configured: a reuseport socket that closes resets what is
 * queued on it, and that is how nginx resets connections when a reload
 * lowers the worker count. A group grows when a reload raises the worker
 * count and never shrinks; sockets past the worker count get no new
 * connections and are polled by the workers whose index they equal modulo
 * the count, so what was queued on them is still served. A Unix socket, or
 * an address where no steering program can be attached, is one socket
 * polled by every worker.
 *
 * When `previous` is given (a reload), a group already bound to the same
 * address is moved over, not re-bound, so nothing queued on it is lost.
 */
#ifndef SAKER_MASTER_LISTENER_H
#define SAKER_MASTER_LISTENER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "conf/config.h"
#include "master/steering.h"
#include "shm/shm.h"

/* A listener's sockets, as the workers of a generation divide them. */
struct listener_group {
    int *fds;       /* NULL: moved to another set */
    unsigned count;
    bool steered;   /* fds[i] is worker i's; else every worker polls fds[0] */
};

struct listener {
    struct listener_group group;
    struct steering steering;  /* STEERING_NONE when the group is not steered */
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

/* Opens the listeners of config, each group with at least config->workers
 * sockets. A new group is steered to the first config->workers of them; a
 * moved one keeps its steering (the serving generation's) until
 * listeners_steer. */
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
/* Gives new connections of every steered group only to the sockets of
 * the worker indices live[0..n-1] (n >= 1). SK_ERROR (logged) when a group
 * could not be steered: the caller tries again. */
int listeners_steer(struct listener_set *set, const unsigned *live, unsigned n);

/* The sockets of group g that worker `index` of a generation of `workers`
 * polls, written to out (room for g->count): its own and those of the
 * indices past the worker count equal to it modulo that count; the one
 * socket of an unsteered group. Returns how many. */
size_t listener_group_share(const struct listener_group *g, unsigned index, unsigned workers,
                            int *out);
/* A copy of g's descriptor table (g itself stays the set's): SK_OK or
 * SK_ERROR (out of memory). */
int listener_group_copy(struct listener_group *to, const struct listener_group *g);
/* Appends a socket to g: SK_OK or SK_ERROR (out of memory). */
int listener_group_add(struct listener_group *g, int fd);

/* Binary upgrade (upgrade.c). The new master takes over the old one's
 * groups (l->family set first): l owns g's sockets, steered when they are
 * reuseport sockets, with no program of its own yet... */
void listener_adopt_group(struct listener *l, struct listener_group *g);
/* ...until it serves: then its own program replaces the old master's on
 * every adopted group (listeners_steer chooses the targets; it can register
 * the sockets in its map only once the old master has let go of them:
 * the kernel keeps a socket in one such map at a time). */
void listeners_take_steering(struct listener_set *set);
/* The old master, once the new one serves: lets go of its steering maps. */
void listeners_release_steering(struct listener_set *set);

#endif
