/*
 * upstream.h - a worker's view of its config's upstreams: for each server
 * its pool of idle keep-alive connections, its load (requests in flight)
 * and its health, and the choice of a server for a request.
 *
 * Per worker, as nginx's upstreams without a shared zone: the pools hold
 * connections of this worker's loop, and passive health (max_fails
 * within fail_timeout ejects a server for fail_timeout) is what this
 * worker saw. Built with the worker's router, once per generation.
 *
 * A server is usable unless ejected (or found down by the active
 * checks); an upstream's only server is never ejected, as in nginx.
 * upstream_pick chooses among the usable ones by the upstream's balance;
 * when none is, it returns NULL and the proxy answers 502 at once rather
 * than waiting on a server it knows is down.
 */
#ifndef SAKER_WORKER_UPSTREAM_H
#define SAKER_WORKER_UPSTREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "conf/config_upstreams.h"

struct config;
struct shm;
struct shm_slot;
struct shm_upstream_server;
struct sockaddr;
struct upconn;
struct upstream_check;
struct worker;

struct upstream_peer {
    const struct upstream_server_config *cfg;
    struct upstream *up;
    struct upconn *idle;   /* pooled connections, most recently used first */
    unsigned active;       /* requests in flight */
    int current_weight;    /* smooth weighted round robin */
    unsigned fails;        /* failures since fail_window_ms */
    uint64_t fail_window_ms;
    uint64_t down_until_ms; /* ejected until then (passive health) */
    struct shm_upstream_server *shm; /* its counters and health; NULL: none */
    size_t shm_index;       /* its gauges in the slot */
    struct shm_slot *slot;  /* this worker's, for the gauges; NULL: none */
    struct upstream_check *check; /* the active check, in the checking worker */
};

struct upstream {
    const struct upstream_config *cfg;
    struct ssl_ctx_st *tls;  /* for https:// servers (tls/tls_client.h); NULL: none */
    struct upstream_peer *peers;
    size_t peer_count;
    size_t idle_count; /* pooled connections over every peer */
    size_t next;       /* where least_connections starts looking */
};

struct upstreams {
    struct upstream *list; /* as config->upstreams */
    size_t count;
};

int upstreams_init(struct upstreams *ups, const struct config *config, struct err *err);
/* Ties every server to its entry in shm (counters, health, gauges of
 * slot). Servers past the table's size go uncounted. */
void upstreams_attach(struct upstreams *ups, struct shm *shm, struct shm_slot *slot,
                      uint64_t generation);
/* Active health checks (upstream_health.c), run by one worker only: the
 * first of each generation. The master has no event loop and must
 * never wait on a network peer; a worker has both a loop and a timer
 * heap, and checks are no client's traffic. What it finds goes to shm,
 * where every worker reads it before it picks a server. */
int upstreams_health_start(struct worker *w);
void upstreams_health_stop(struct upstreams *ups);
/* Frees the body buffers the proxy keeps for reuse (proxy_conn.c), at
 * worker teardown once every connection is released. */
void upconn_free_spares(void);
/* Frees the table; the connections are the worker's and closed before. */
void upstreams_destroy(struct upstreams *ups);

/* A usable server by the balance, avoiding `avoid` when another is
 * usable; client: the client's address for client_ip_hash (may be
 * NULL). NULL when every server is ejected. */
struct upstream_peer *upstream_pick(struct upstream *up, const struct sockaddr *client,
                                    const struct upstream_peer *avoid, uint64_t now_ms);
/* A failure (connect error, timeout, reset, garbage) toward ejection;
 * true when it ejected the server. The only server of its upstream is
 * never ejected. */
bool upstream_peer_failed(struct upstream_peer *p, uint64_t now_ms);
/* A response came: the failure count starts again. */
void upstream_peer_ok(struct upstream_peer *p);
/* Counts for the server in shm (nothing without an entry). */
void upstream_peer_count(struct upstream_peer *p, int counter);
/* Gauges: requests in flight, pooled connections (+1 / -1). */
void upstream_peer_active(struct upstream_peer *p, int delta);
void upstream_peer_idle(struct upstream_peer *p, int delta);
/* The upstream's response head came after ms. */
void upstream_peer_latency(struct upstream_peer *p, uint64_t ms);
bool upstream_peer_usable(const struct upstream_peer *p, uint64_t now_ms);

#endif
