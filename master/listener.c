/*
 * listener.c - binding endpoints; see listener.h.
 */
#include "master/listener.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/log.h"
#include "master/activation.h"

#define LISTEN_BACKLOG 4096 /* capped by net.core.somaxconn */
#define PORT_ZERO_ATTEMPTS 16
/* Unsent bytes a TCP socket may hold before it stops being writable: a
 * large file goes out in sends of about this size, each paid for in the
 * worker, instead of one sendfile that leaves the rest of the transmit
 * work to run in the receiver's context as its ACKs come in (on loopback
 * that starved the client: see bench/README.md, "Large files"). */
#define LISTEN_NOTSENT_LOWAT (128 * 1024)

struct bind_target {
    int family;
    const char *address; /* numeric, or the Unix path */
};

static void format_address(struct listener *l, const char *numeric)
{
    if (l->family == AF_UNIX)
        snprintf(l->address, sizeof l->address, "%s", numeric);
    else if (l->family == AF_INET6)
        snprintf(l->address, sizeof l->address, "[%s]:%u", numeric, l->port);
    else
        snprintf(l->address, sizeof l->address, "%s:%u", numeric, l->port);
}

/* A socket file left by a process that is gone refuses connections; one
 * that accepts belongs to a live server, which we must not steal from. */
static int unix_path_prepare(const char *path, struct err *err)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return errno == ENOENT ? SK_OK : err_set_errno(err, errno, "unix:%s", path);
    if (!S_ISSOCK(st.st_mode)) {
        errno = EEXIST;
        return err_set(err, "unix:%s: exists and is not a socket", path);
    }
    int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    snprintf(sun.sun_path, sizeof sun.sun_path, "%s", path);
    int in_use = probe >= 0 && connect(probe, (struct sockaddr *)&sun, sizeof sun) == 0;
    if (probe >= 0)
        close(probe);
    if (in_use) {
        errno = EEXIST;
        return err_set(err, "unix:%s: Address already in use", path);
    }
    if (unlink(path) != 0)
        return err_set_errno(err, errno, "unix:%s: cannot remove stale socket", path);
    return SK_OK;
}

static int reuse_port(int fd, struct err *err)
{
    int one = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0)
        return err_set_errno(err, errno, "setsockopt(SO_REUSEPORT)");
    return SK_OK;
}

static int socket_for(int family, bool reuseport, struct err *err)
{
    int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return err_set_errno(err, errno, "socket()");
    int one = 1;
    if (family != AF_UNIX) {
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        /* Accepted sockets inherit these: no setsockopt per connection. */
        if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0) {
            int saved = errno;
            close(fd);
            return err_set_errno(err, saved, "setsockopt(TCP_NODELAY)");
        }
        int lowat = LISTEN_NOTSENT_LOWAT;
        if (setsockopt(fd, IPPROTO_TCP, TCP_NOTSENT_LOWAT, &lowat, sizeof lowat) != 0) {
            int saved = errno;
            close(fd);
            return err_set_errno(err, saved, "setsockopt(TCP_NOTSENT_LOWAT)");
        }
    }
    if (family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    if (reuseport && reuse_port(fd, err) != SK_OK) {
        close(fd);
        return SK_ERROR;
    }
    return fd;
}

int listener_group_add(struct listener_group *g, int fd)
{
    int *fds = realloc(g->fds, (g->count + 1) * sizeof *fds);
    if (fds == NULL)
        return SK_ERROR;
    g->fds = fds;
    g->fds[g->count++] = fd;
    return SK_OK;
}

static int bind_inet(struct listener *l, const struct bind_target *t, uint16_t port,
                     struct err *err)
{
    struct sockaddr_storage ss = {0};
    socklen_t len;
    if (t->family == AF_INET) {
        struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
        sin->sin_family = AF_INET;
        sin->sin_port = htons(port);
        inet_pton(AF_INET, t->address, &sin->sin_addr);
        len = sizeof *sin;
    } else {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons(port);
        inet_pton(AF_INET6, t->address, &sin6->sin6_addr);
        len = sizeof *sin6;
    }
    /* The first socket of a group binds without SO_REUSEPORT, so that an
     * address someone else listens on (another saker, reuseport or not)
     * is refused as in use instead of joined; it takes SO_REUSEPORT after
     * the bind, before listen, so that the group's other sockets can. */
    int fd = socket_for(t->family, false, err);
    if (fd < 0)
        return SK_ERROR;
    if (bind(fd, (struct sockaddr *)&ss, len) != 0 || reuse_port(fd, err) != SK_OK) {
        int saved = errno;
        close(fd);
        errno = saved;
        return err_set_errno(err, saved, "%s: bind(%s%s%s:%u)", l->url,
                             t->family == AF_INET6 ? "[" : "", t->address,
                             t->family == AF_INET6 ? "]" : "", port);
    }
    len = sizeof ss;
    getsockname(fd, (struct sockaddr *)&ss, &len);
    l->port = ntohs(t->family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
                                         : ((struct sockaddr_in6 *)&ss)->sin6_port);
    if (listener_group_add(&l->group, fd) != SK_OK) {
        close(fd);
        return err_set(err, "out of memory");
    }
    l->family = t->family;
    format_address(l, t->address);
    return SK_OK;
}

static int bind_unix(struct listener *l, const char *path, struct err *err)
{
    if (unix_path_prepare(path, err) != SK_OK)
        return SK_ERROR;
    int fd = socket_for(AF_UNIX, false, err);
    if (fd < 0)
        return SK_ERROR;
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    snprintf(sun.sun_path, sizeof sun.sun_path, "%s", path);
    /* Any local user may connect, as to a TCP port; restrict with the
     * directory's permissions. bind() makes the file with the umask's
     * mode: set it for the call, rather than chmod the path afterwards,
     * which would follow whatever someone put at the path meanwhile. */
    mode_t umask_before = umask(0111);
    int bound = bind(fd, (struct sockaddr *)&sun, sizeof sun);
    int saved = errno;
    umask(umask_before);
    if (bound != 0) {
        close(fd);
        return err_set_errno(err, saved, "unix:%s: bind()", path);
    }
    if (listener_group_add(&l->group, fd) != SK_OK) {
        close(fd);
        unlink(path);
        return err_set(err, "out of memory");
    }
    l->family = AF_UNIX;
    l->port = 0;
    format_address(l, path);
    return SK_OK;
}

static int listen_on(struct listener *l, struct err *err)
{
    if (listen(l->group.fds[0], LISTEN_BACKLOG) != 0)
        return err_set_errno(err, errno, "%s: listen()", l->url);
    return SK_OK;
}

/* One more socket of the group, on the address of the first. */
static int group_grow(struct listener *l, struct err *err)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (getsockname(l->group.fds[0], (struct sockaddr *)&ss, &len) != 0)
        return err_set_errno(err, errno, "%s: getsockname()", l->address);
    int fd = socket_for(l->family, true, err);
    if (fd < 0)
        return SK_ERROR;
    if (bind(fd, (struct sockaddr *)&ss, len) != 0 || listen(fd, LISTEN_BACKLOG) != 0) {
        int saved = errno;
        close(fd);
        return err_set_errno(err, saved, "%s: socket %u: bind() or listen()", l->address,
                             l->group.count);
    }
    if (listener_group_add(&l->group, fd) != SK_OK) {
        close(fd);
        return err_set(err, "out of memory");
    }
    return SK_OK;
}

/* Steers the group to the sockets of worker indices live[0..n-1]. */
static int group_steer(struct listener *l, const unsigned *live, unsigned n)
{
    struct err err;
    int rc = l->group.steered
                 ? steering_set(&l->steering, l->group.fds, l->group.count, live, n, &err)
                 : SK_OK;
    if (rc == SK_ERROR)
        log_limited(LOG_ERROR, 0, "%s: steering new connections: %s", l->address, err.message);
    return rc == SK_OK ? SK_OK : SK_ERROR;
}

/* Makes a new TCP socket the first of a steered group of `workers`
 * sockets. Where no steering program can be attached, it stays one socket
 * that every worker polls: unsteered, more sockets would take connections
 * for workers that may not exist. */
static int group_start(struct listener *l, unsigned workers, struct err *err)
{
    struct err why;
    if (steering_attach(&l->steering, l->group.fds[0], l->family, true, &why) != SK_OK) {
        log_msg(LOG_WARN, "%s: %s: one socket shared by every worker", l->address, why.message);
        return SK_OK;
    }
    l->group.steered = true;
    while (l->group.count < workers)
        if (group_grow(l, err) != SK_OK)
            return SK_ERROR;
    unsigned *first = malloc(workers * sizeof *first);
    if (first == NULL)
        return err_set(err, "out of memory");
    for (unsigned i = 0; i < workers; i++)
        first[i] = i;
    group_steer(l, first, workers);
    free(first);
    return SK_OK;
}

static size_t targets_for(const struct url *url, struct bind_target *t)
{
    switch (url->host_kind) {
    case URL_HOST_LOCALHOST:
        t[0] = (struct bind_target){AF_INET, "127.0.0.1"};
        t[1] = (struct bind_target){AF_INET6, "::1"};
        return 2;
    case URL_HOST_ANY:
    case URL_HOST_NAME:
        t[0] = (struct bind_target){AF_INET, "0.0.0.0"};
        t[1] = (struct bind_target){AF_INET6, "::"};
        return 2;
    case URL_HOST_IPV4:
        t[0] = (struct bind_target){AF_INET, url->host};
        return 1;
    case URL_HOST_IPV6:
        t[0] = (struct bind_target){AF_INET6, url->host};
        return 1;
    case URL_HOST_UNIX:
        t[0] = (struct bind_target){AF_UNIX, url->unix_path};
        return 1;
    }
    return 0;
}

static struct listener *set_append(struct listener_set *set)
{
    struct listener *items = realloc(set->items, (set->count + 1) * sizeof *items);
    if (items == NULL)
        return NULL;
    set->items = items;
    struct listener *l = &items[set->count++];
    memset(l, 0, sizeof *l);
    steering_init(&l->steering, AF_UNSPEC);
    l->reused_from = -1;
    return l;
}

/* A socket of the previous set that already serves what this listener
 * would bind: the same address and port (a reload that respells
 * "localhost:8080" as "127.0.0.1:8080" keeps its socket), or for port 0,
 * which names no port, the same URL at the same position. */
static struct listener *take_previous(struct listener_set *previous, const struct listener *l,
                                      const struct bind_target *t, uint16_t port)
{
    if (previous == NULL)
        return NULL;
    struct listener wanted = {.family = t->family, .port = port};
    format_address(&wanted, t->address);
    for (size_t i = 0; i < previous->count; i++) {
        struct listener *old = &previous->items[i];
        if (old->group.fds == NULL || old->family != t->family)
            continue;
        bool same = port == 0 && t->family != AF_UNIX
                        ? old->url_index == l->url_index && strcmp(old->url, l->url) == 0
                        : strcmp(old->address, wanted.address) == 0;
        if (same)
            return old;
    }
    return NULL;
}

/* A socket systemd passed is the process's for its life (activation.h):
 * neither closed nor, for a Unix socket, unlinked. */
static void listener_close(struct listener *l)
{
    bool passed = l->group.count > 0 && activation_owns(l->group.fds[0]);
    for (unsigned i = 0; i < l->group.count; i++)
        if (!activation_owns(l->group.fds[i]))
            close(l->group.fds[i]);
    if (l->family == AF_UNIX && l->group.count > 0 && !l->keep_path && !passed)
        unlink(l->address);
    free(l->group.fds);
    l->group = (struct listener_group){0};
    steering_close(&l->steering);
}

/* Undoes the last listener of the set: a reused group goes back to the
 * previous set (a failed reload must leave it serving), with the sockets
 * it grew (they may hold connections already), a new one closes. */
static void drop_last(struct listener_set *set, struct listener_set *previous)
{
    struct listener *l = &set->items[--set->count];
    if (l->group.fds == NULL)
        return;
    if (l->reused_from >= 0) {
        previous->items[l->reused_from].group = l->group;
        previous->items[l->reused_from].steering = l->steering;
        return;
    }
    listener_close(l);
}

/* Whether a failure to bind one address of a pair may be only a warning:
 * a machine without IPv6 (or IPv4) still serves localhost on the other. */
static bool family_unavailable(int error)
{
    return error == EADDRNOTAVAIL || error == EAFNOSUPPORT;
}

static int open_one(struct listener *l, const struct bind_target *t, uint16_t port,
                    unsigned workers, struct listener_set *previous, struct err *err)
{
    struct listener *old = take_previous(previous, l, t, port);
    if (old != NULL) {
        const struct endpoint *e = l->endpoint;
        *l = *old;
        l->endpoint = e;
        l->reused_from = (int)(old - previous->items);
        old->group.fds = NULL; /* moved */
        while (l->group.steered && l->group.count < workers)
            if (group_grow(l, err) != SK_OK)
                return SK_ERROR;
        return SK_OK;
    }
    if (t->family == AF_UNIX)
        return bind_unix(l, t->address, err) == SK_OK ? listen_on(l, err) : SK_ERROR;
    if (bind_inet(l, t, port, err) != SK_OK || listen_on(l, err) != SK_OK)
        return SK_ERROR;
    return group_start(l, workers, err);
}

/* The address a passed socket is bound to, into l (family, port, text). */
static int describe_passed(struct listener *l, int fd, struct err *err)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    char numeric[INET6_ADDRSTRLEN] = "";
    if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
        return err_set_errno(err, errno, "socket activation: descriptor %d: getsockname()", fd);
    l->family = ss.ss_family;
    if (ss.ss_family == AF_INET) {
        struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
        inet_ntop(AF_INET, &sin->sin_addr, numeric, sizeof numeric);
        l->port = ntohs(sin->sin_port);
    } else if (ss.ss_family == AF_INET6) {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
        inet_ntop(AF_INET6, &sin6->sin6_addr, numeric, sizeof numeric);
        l->port = ntohs(sin6->sin6_port);
    } else if (ss.ss_family == AF_UNIX) {
        struct sockaddr_un *sun = (struct sockaddr_un *)&ss;
        l->port = 0;
        format_address(l, len > offsetof(struct sockaddr_un, sun_path) && sun->sun_path[0]
                              ? sun->sun_path : "(unnamed)");
        return SK_OK;
    } else {
        return err_set(err, "socket activation: descriptor %d: not an IP or Unix socket", fd);
    }
    format_address(l, numeric);
    return SK_OK;
}

/* The sockets systemd passed under the endpoint's name, served instead of
 * binding its URL: each one socket polled by every worker (it is not ours
 * to make a reuseport group of). The URL's scheme must fit the socket:
 * unix: a Unix socket, http(s): a TCP one. */
static int open_passed(struct listener_set *set, const struct endpoint *e, struct err *err)
{
    int fd;
    for (unsigned k = 0; (fd = activation_find(e->name, k)) >= 0; k++) {
        struct listener *l = set_append(set);
        if (l == NULL)
            return err_set(err, "out of memory");
        l->endpoint = e;
        l->url_index = k;
        snprintf(l->url, sizeof l->url, "%s", e->url_text);
        if (describe_passed(l, fd, err) != SK_OK) {
            set->count--;
            return SK_ERROR;
        }
        if (listener_group_add(&l->group, fd) != SK_OK) {
            set->count--;
            return err_set(err, "out of memory");
        }
        if ((l->family == AF_UNIX) != (e->url.host_kind == URL_HOST_UNIX))
            return err_set(err, "endpoint '%s' (%s): the socket systemd passed as '%s' is %s",
                           e->name, e->url_text, e->name,
                           l->family == AF_UNIX ? "a Unix socket" : "a TCP socket");
        int one = 1; /* what socket_for gives our own: accepted sockets inherit it */
        if (l->family != AF_UNIX)
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    return SK_OK;
}

/* Binds every address of one endpoint. With port 0 and two addresses, the
 * second must get the port the kernel chose for the first; if that port is
 * taken on the other family, start over. */
static int bind_endpoint(struct listener_set *set, const struct endpoint *e, unsigned workers,
                         struct listener_set *previous, struct err *err)
{
    if (activation_find(e->name, 0) >= 0)
        return open_passed(set, e, err);
    struct bind_target targets[2];
    size_t n = targets_for(&e->url, targets);
    size_t first = set->count;
    int failure = 0;
    for (int attempt = 0; attempt < PORT_ZERO_ATTEMPTS; attempt++) {
        uint16_t port = e->url.port;
        failure = 0;
        for (size_t i = 0; i < n && failure == 0; i++) {
            struct listener *l = set_append(set);
            if (l == NULL)
                return err_set(err, "out of memory");
            l->endpoint = e;
            l->url_index = (unsigned)i;
            snprintf(l->url, sizeof l->url, "%s", e->url_text);
            if (open_one(l, &targets[i], port, workers, previous, err) == SK_OK) {
                port = l->port;
                continue;
            }
            failure = errno ? errno : EINVAL;
            drop_last(set, previous);
            if (n == 2 && family_unavailable(failure)) {
                log_msg(LOG_WARN, "%s (serving the other address only)", err->message);
                failure = 0;
            }
        }
        if (failure == 0 && set->count > first)
            return SK_OK;
        while (set->count > first)
            drop_last(set, previous);
        if (failure == 0)
            return err_set(err, "%s: no address could be bound", e->url_text);
        if (!(e->url.port == 0 && failure == EADDRINUSE))
            return SK_ERROR;
    }
    return err_set(err, "%s: no port free on every address after %d attempts", e->url_text,
                   PORT_ZERO_ATTEMPTS);
}

int listeners_open(struct listener_set *set, const struct config *config,
                   struct listener_set *previous, struct err *err)
{
    set->items = NULL;
    set->count = 0;
    for (size_t i = 0; i < config->endpoint_count; i++)
        if (bind_endpoint(set, &config->endpoints[i], config->workers, previous, err) != SK_OK) {
            listeners_rollback(set, previous);
            return SK_ERROR;
        }
    return SK_OK;
}

void listeners_rollback(struct listener_set *set, struct listener_set *previous)
{
    while (set->count > 0)
        drop_last(set, previous);
    free(set->items);
    set->items = NULL;
}

void listeners_close(struct listener_set *set)
{
    for (size_t i = 0; i < set->count; i++)
        if (set->items[i].group.fds != NULL)
            listener_close(&set->items[i]);
    free(set->items);
    set->items = NULL;
    set->count = 0;
}

void listeners_keep_paths(struct listener_set *set)
{
    for (size_t i = 0; i < set->count; i++)
        set->items[i].keep_path = true;
}

void listeners_publish(const struct listener_set *set, struct shm *shm)
{
    struct shm_header *h = shm->header;
    shm_header_begin_write(shm);
    size_t n = set->count < SHM_MAX_LISTENERS ? set->count : SHM_MAX_LISTENERS;
    for (size_t i = 0; i < n; i++) {
        const struct listener *l = &set->items[i];
        struct shm_listener *s = &h->listeners[i];
        s->kind = l->family == AF_UNIX    ? SHM_LISTENER_UNIX
                  : l->family == AF_INET6 ? SHM_LISTENER_TCP6
                                          : SHM_LISTENER_TCP4;
        s->port = l->port;
        snprintf(s->endpoint, sizeof s->endpoint, "%s", l->endpoint->name);
        snprintf(s->url, sizeof s->url, "%.*s", (int)sizeof s->url - 1, l->url);
        snprintf(s->address, sizeof s->address, "%s", l->address);
    }
    h->listener_count = (uint32_t)n;
    shm_header_end_write(shm);
}

int listeners_steer(struct listener_set *set, const unsigned *live, unsigned n)
{
    int rc = SK_OK;
    for (size_t i = 0; i < set->count; i++)
        if (set->items[i].group.fds != NULL && group_steer(&set->items[i], live, n) != SK_OK)
            rc = SK_ERROR;
    return rc;
}

void listeners_release_steering(struct listener_set *set)
{
    for (size_t i = 0; i < set->count; i++)
        steering_close(&set->items[i].steering);
}

size_t listener_group_share(const struct listener_group *g, unsigned index, unsigned workers,
                            int *out)
{
    if (!g->steered) {
        out[0] = g->fds[0];
        return 1;
    }
    size_t n = 0;
    if (index < g->count)
        out[n++] = g->fds[index];
    for (unsigned j = workers; j < g->count; j++)
        if (j % workers == index)
            out[n++] = g->fds[j];
    return n;
}

int listener_group_copy(struct listener_group *to, const struct listener_group *g)
{
    *to = *g;
    to->fds = malloc((g->count ? g->count : 1) * sizeof *to->fds);
    if (to->fds == NULL)
        return SK_ERROR;
    memcpy(to->fds, g->fds, g->count * sizeof *to->fds);
    return SK_OK;
}

void listener_adopt_group(struct listener *l, struct listener_group *g)
{
    int reuseport = 0;
    socklen_t len = sizeof reuseport;
    l->group = *g;
    /* A socket without SO_REUSEPORT (a master from before groups) stays
     * one socket that every worker polls. */
    l->group.steered = l->family != AF_UNIX && g->count > 0 &&
                       getsockopt(g->fds[0], SOL_SOCKET, SO_REUSEPORT, &reuseport, &len) == 0 &&
                       reuseport;
    steering_init(&l->steering, l->family);
}

void listeners_take_steering(struct listener_set *set)
{
    for (size_t i = 0; i < set->count; i++) {
        struct listener *l = &set->items[i];
        struct err err;
        if (l->group.fds == NULL || !l->group.steered || l->steering.kind != STEERING_NONE)
            continue;
        if (steering_attach(&l->steering, l->group.fds[0], l->family, true, &err) != SK_OK)
            log_msg(LOG_WARN, "%s: %s: new connections spread by the kernel's hash", l->address,
                    err.message);
    }
}
