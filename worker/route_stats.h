/*
 * route_stats.h - each response counted in its route's statistics in the
 * worker's shm slot (shm/shm_routes.h): its duration from the first byte
 * of the request read to the last byte of the response written, and its
 * status class.
 *
 * The protocol calls route_stats_queued once a response is all in the
 * output queue; a release queued after it (outq_add_release) counts it
 * when the queue has sent it, or when the connection closes first. Over
 * TLS, "sent" is handed to TLS, whose records leave in the same flush.
 * The stamp that waits in the queue comes from a free list: nothing is
 * allocated per request once the worker has warmed up.
 */
#ifndef SAKER_WORKER_ROUTE_STATS_H
#define SAKER_WORKER_ROUTE_STATS_H

#include <stdint.h>

struct worker;
struct outq;
struct router_entry;

/* Starts counting into the worker's slot (nothing is counted without one,
 * as in unit tests). */
void route_stats_start(struct worker *w);
/* A response of route entry (NULL: answered before or without a route)
 * with status, to the request whose first byte came at started_us
 * (clock_monotonic_us), is queued on out. */
void route_stats_queued(struct worker *w, struct outq *out, const struct router_entry *entry,
                        int status, uint64_t started_us);
/* Frees the stamps kept for reuse (the worker's end). */
void route_stats_free_spares(void);

#endif
