/*
 * worker.h - one worker process: its context (the entry point the master
 * forks into is worker_main.h).
 *
 * A worker owns one libevent loop, pinned to one CPU by the master. It
 * accepts on the listening sockets it inherited, serves connections, and
 * once a second (the heartbeat) refreshes the cached clock, publishes its
 * heartbeat to its shm slot and closes connections past their deadline.
 *
 * `struct worker` is the per-worker context passed explicitly to every
 * layer below (conn, protocol, handlers); there is no global server state.
 *
 * Signals: SIGTERM/SIGINT = graceful stop (stop accepting, close idle
 * connections, finish in-flight requests with "Connection: close", exit when
 * none remain), SIGQUIT = exit now, SIGUSR1 = reopen logs, SIGUSR2 = look
 * at the instance state in shm: draining pauses accepting (connections
 * stay), anything else resumes it.
 */
#ifndef SAKER_WORKER_WORKER_H
#define SAKER_WORKER_WORKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/arena.h"
#include "conf/config.h"
#include "shm/shm.h"
#include "worker/access_log.h"
#include "worker/router.h"
#include "worker/timer.h"
#include "worker/turn.h"
#include "worker/upstream.h"
#include "worker/worker_main.h"

struct event_base;
struct event;
struct conn;
struct h1;
struct saker_worker;
struct rate_table;
struct uring;

struct worker {
    struct event_base *base;
    const struct config *config;
    struct shm *shm;
    struct shm_slot *slot; /* NULL in unit tests */
    unsigned index;
    uint64_t generation;
    struct router router;
    struct block_pool blocks;
    struct turn turn; /* end-of-turn releases (turn.h) */
    struct timers timers; /* finer than the heartbeat (timer.h) */
    struct access_log access_log; /* off in unit tests unless opened */
    struct upstreams upstreams;   /* the proxy's servers and pools (upstream.h) */
    struct saker_worker *modules; /* one per config module (module.h) */
    /* One table per config->rate_limits, shared with the other workers
     * (the master's, worker_params); NULL: no rate limiting (unit tests). */
    struct rate_table **rate_tables;
    /* Each route's entry in the slot's route statistics (worker_params);
     * NULL: the routes are counted under SHM_ROUTE_OTHER. */
    const uint8_t *route_entries;

    /* One read buffer for every connection: bytes are parsed as soon as they
     * are read, so a connection never keeps input between reads. */
    char *read_buffer;
    size_t read_buffer_size;

    struct worker_listener *listeners;
    size_t listener_count;

    struct conn *conns; /* every open connection, a doubly-linked list */
    size_t conn_count;
    struct conn *free_conns; /* closed connections kept for reuse */
    size_t free_conn_count;
    struct h1 *spare_h1s;    /* HTTP/1 states of idle connections, for reuse */
    size_t spare_h1_count;

    struct uring *uring; /* transport: io_uring, when it could start (uring.h) */
    bool conn_list_on; /* connection_list: on (conn_list.c) */
    bool draining; /* stopped accepting: answer with Connection: close */
    bool stopping;
    struct event *heartbeat_event;
    struct event *signal_events[5];
    bool accept_paused;  /* drained: not watching the listeners until undrained */
    bool accept_backoff; /* out of descriptors: not watching them for a while */
    struct event *accept_resume_event; /* ends the backoff */
    uint64_t quiet_mark;  /* connections accepted + requests at the last heartbeat */
    bool heap_trimmed;    /* free heap pages given back since the worker was last busy */
};

/* Initialises the parts of a worker that the protocols use, without an
 * event loop (for unit tests): config, router, pools, read buffer. */
int worker_init_core(struct worker *w, const struct config *config, struct err *err);
/* As worker_init_core, for a real worker: its loop and its place (p)
 * are known before the modules' worker_init runs (module.h), so a
 * module may start timers and watches there. */
int worker_init_core_on(struct worker *w, const struct config *config,
                        const struct worker_params *p, struct event_base *base,
                        struct err *err);
void worker_destroy_core(struct worker *w);

/* The heartbeat's work at monotonic time now (ms): the shm heartbeat,
 * every connection's deadlines and rates, the access log, and the end of
 * a drain once no connection is left. */
void worker_tick(struct worker *w, uint64_t now);

/* Stops accepting and starts the graceful drain. */
void worker_begin_drain(struct worker *w);

#endif
