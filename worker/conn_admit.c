/*
 * conn_admit.c - the permit pools behind max_concurrent_connections and
 * max_concurrent_upgraded_connections, for a connection; see conn.h and
 * shm.h (shm_permit_take).
 */
#include "worker/conn.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conf/cidr.h"
#include "shm/shm.h"
#include "worker/conn_list.h"
#include "worker/proxy_header.h"
#include "worker/worker.h"

/* ---- admission: permit pools ------------------------------------------ */

/* The endpoint's own pool is used only when its limit differs from the
 * instance-wide one it inherits: an equal limit is already enforced by the
 * global pool, and an accept then costs one compare-and-swap, not two. */
static uint64_t endpoint_limit(const struct worker *w, const struct config_limits *mine,
                               enum shm_pool_kind kind)
{
    const struct config_limits *all = &w->config->limits;
    uint64_t own = kind == SHM_POOL_CONNECTIONS ? mine->max_concurrent_connections
                                                : mine->max_concurrent_upgraded_connections;
    uint64_t global = kind == SHM_POOL_CONNECTIONS ? all->max_concurrent_connections
                                                   : all->max_concurrent_upgraded_connections;
    return own == global ? 0 : own;
}

static uint64_t global_limit(const struct worker *w, enum shm_pool_kind kind)
{
    return kind == SHM_POOL_CONNECTIONS ? w->config->limits.max_concurrent_connections
                                        : w->config->limits.max_concurrent_upgraded_connections;
}

void conn_publish_limits(struct worker *w)
{
    if (w->shm == NULL)
        return;
    for (int kind = 0; kind < SHM_POOL_KINDS; kind++) {
        shm_pool_publish_limit(w->shm, kind, SHM_POOL_GLOBAL, global_limit(w, kind));
        for (unsigned pool = 1; pool < SHM_POOLS; pool++) {
            size_t i = pool - 1;
            uint64_t own = i < w->config->endpoint_count
                               ? endpoint_limit(w, &w->config->endpoints[i].limits, kind)
                               : 0;
            shm_pool_publish_limit(w->shm, kind, pool, own);
        }
    }
}

/* Takes the permits of kind the connection needs; all or none. */
static bool permits_take(struct conn *c, enum shm_pool_kind kind, uint8_t *held)
{
    struct worker *w = c->worker;
    uint64_t global = global_limit(w, kind), own = endpoint_limit(w, c->limits, kind);
    *held = 0;
    if (global != 0) {
        if (!shm_permit_take(w->shm, w->slot, kind, SHM_POOL_GLOBAL, global))
            return false;
        *held |= CONN_PERMIT_GLOBAL;
    }
    if (own != 0) {
        if (!shm_permit_take(w->shm, w->slot, kind, 1u + c->endpoint_pool, own)) {
            if (*held & CONN_PERMIT_GLOBAL)
                shm_permit_give(w->shm, w->slot, kind, SHM_POOL_GLOBAL);
            *held = 0;
            return false;
        }
        *held |= CONN_PERMIT_ENDPOINT;
    }
    return true;
}

static void permits_give(struct conn *c, enum shm_pool_kind kind, uint8_t held)
{
    struct worker *w = c->worker;
    if (held & CONN_PERMIT_GLOBAL)
        shm_permit_give(w->shm, w->slot, kind, SHM_POOL_GLOBAL);
    if (held & CONN_PERMIT_ENDPOINT)
        shm_permit_give(w->shm, w->slot, kind, 1u + c->endpoint_pool);
}

bool conn_upgrade_begin(struct conn *c)
{
    uint8_t held;
    if (c->upgraded)
        return true;
    if (!permits_take(c, SHM_POOL_UPGRADED, &held))
        return false;
    /* Kestrel: an upgraded connection no longer counts against
     * MaxConcurrentConnections, only against the upgraded limit. */
    permits_give(c, SHM_POOL_CONNECTIONS, c->permits);
    c->permits = held;
    c->upgraded = true;
    return true;
}

bool conn_admit(struct conn *c)
{
    return permits_take(c, SHM_POOL_CONNECTIONS, &c->permits);
}

void conn_release_permits(struct conn *c)
{
    permits_give(c, c->upgraded ? SHM_POOL_UPGRADED : SHM_POOL_CONNECTIONS, c->permits);
    c->permits = 0;
}

bool conn_proxy_trusted(const struct conn *c)
{
    const struct endpoint *e = c->endpoint;
    if (e == NULL || !e->proxy_protocol || c->peer.sa.sa_family == AF_UNIX)
        return true;
    return cidr_list_match(e->trusted_sources, e->trusted_source_count, &c->peer.sa);
}

/* What came of a header so far is read out of the socket and kept (a
 * level-triggered event would wake again for bytes only peeked at), at
 * most one header's worth, until the connection has sent it all. */
static int keep_partial(struct conn *c, const char *data, size_t len, size_t peeked)
{
    if (c->proxy_partial == NULL && (c->proxy_partial = calloc(1, sizeof *c->proxy_partial)) == NULL)
        return SK_ERROR;
    size_t kept = c->proxy_partial->len;
    if (bytebuf_append(c->proxy_partial, data + kept, len - kept) != SK_OK ||
        read(c->fd, c->worker->read_buffer, peeked) != (ssize_t)peeked)
        return SK_ERROR;
    return SK_AGAIN; /* the rest comes, or request_headers_timeout ends it */
}

void conn_proxy_header_free(struct conn *c)
{
    if (c->proxy_partial != NULL)
        bytebuf_free(c->proxy_partial);
    free(c->proxy_partial);
    c->proxy_partial = NULL;
}

int conn_proxy_header_read(struct conn *c)
{
    struct sockaddr_storage client;
    struct bytebuf *partial = c->proxy_partial;
    size_t kept = partial != NULL ? partial->len : 0;
    char *buf = c->worker->read_buffer;
    if (kept > 0)
        memcpy(buf, partial->data, kept); /* at most one header: far below the buffer */
    ssize_t n = recv(c->fd, buf + kept, c->worker->read_buffer_size - kept, MSG_PEEK);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return SK_AGAIN;
    if (n <= 0)
        return SK_ERROR;
    size_t have = kept + (size_t)n;
    ssize_t len = proxy_header_parse(buf, have, &client);
    if (len == 0 && have < c->worker->read_buffer_size)
        return keep_partial(c, buf, have, (size_t)n);
    if (len <= 0 || (size_t)len < kept ||
        read(c->fd, buf, (size_t)len - kept) != (ssize_t)((size_t)len - kept))
        return SK_ERROR;
    conn_proxy_header_free(c);
    if (client.ss_family == AF_INET || client.ss_family == AF_INET6) {
        memcpy(&c->peer, &client, client.ss_family == AF_INET ? sizeof(struct sockaddr_in)
                                                              : sizeof(struct sockaddr_in6));
        conn_list_readdress(c);
    }
    c->proxy_header = false;
    return SK_OK;
}
