/*
 * shm_upstreams.h - the reverse proxy's upstream servers as readers see
 * them: the serving generation's servers from the header's table, each
 * with its state and its gauges summed over the live workers' slots.
 * Shared by sakerctl status (text and JSON) and the metrics.
 */
#ifndef SAKER_SHM_SHM_UPSTREAMS_H
#define SAKER_SHM_SHM_UPSTREAMS_H

#include <stddef.h>
#include <stdint.h>

#include "shm/shm.h"

struct shm_upstream_view {
    const struct shm_upstream_server *server; /* in the header snapshot */
    const char *state;  /* "up", "down" (health checks), "ejected" (passive) */
    uint64_t active;    /* requests in flight, over every worker */
    uint64_t idle;      /* pooled connections, over every worker */
};

/* Fills out (up to max) from h, a snapshot of shm's header; the count. */
size_t shm_upstreams_view(const struct shm *shm, const struct shm_header *h,
                          struct shm_upstream_view *out, size_t max);

#endif
