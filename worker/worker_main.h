/*
 * worker_main.h - what the master hands a worker when it forks one, and
 * the entry point it calls in the child. The master includes this and
 * nothing else of the worker.
 */
#ifndef SAKER_WORKER_WORKER_MAIN_H
#define SAKER_WORKER_WORKER_MAIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct config;
struct endpoint;
struct event;
struct shm;
struct tls_server;
struct rate_table;

/* A listening socket as the master hands it to a worker. */
struct worker_listener {
    int fd;
    const struct endpoint *endpoint;
    struct event *accept_event; /* the worker's; NULL in the master */
    /* https:// endpoints: the TLS contexts, built by the master for the
     * generation (it can read the keys; workers have dropped privileges)
     * and inherited across fork. NULL for plain endpoints. */
    struct tls_server *tls;
};

struct worker_params {
    const struct config *config;
    struct shm *shm;
    unsigned slot;
    unsigned index;
    uint64_t generation;
    struct worker_listener *listeners; /* fds inherited from the master */
    size_t listener_count;
    bool start_paused; /* the instance is drained: do not accept until told */
    /* The generation's rate limit state, one table per config->rate_limits,
     * mapped shared by the master before the fork; NULL when it has none. */
    struct rate_table **rate_tables;
    /* Each route's entry in the shm header's route directory, which
     * indexes the slot's route statistics; NULL when it has no routes. */
    const uint8_t *route_entries;
};

/* Runs a worker until it stops; returns the process exit status. Called in
 * the child right after fork and set-up (affinity, privileges). */
int worker_main(const struct worker_params *params);

#endif
