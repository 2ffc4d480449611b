/*
 * conn_admit.c - the permit pools behind max_concurrent_connections and
 * max_concurrent_upgraded_connections, for a connection; see conn.h and
 * shm.h (shm_permit_take).
 */
#include "worker/conn.h"

#include "shm/shm.h"
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
