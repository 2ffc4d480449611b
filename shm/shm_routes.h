/*
 * shm_routes.h - per-route statistics in shm: how a worker records a
 * response, how readers turn the buckets into quantiles and Prometheus
 * histograms.
 *
 * Each worker slot has SHM_MAX_ROUTES struct shm_route_stats, one per
 * route entry of the header's directory, with that worker as its only
 * writer: a relaxed load and store per counter, no lock. Readers sum the
 * retired statistics and every live slot (shm_snapshot_routes).
 */
#ifndef SAKER_SHM_SHM_ROUTES_H
#define SAKER_SHM_SHM_ROUTES_H

#include <stdint.h>
#include <stdio.h>

#include "shm/shm.h"

/* The buckets' upper bounds in microseconds (SHM_DURATION_BOUNDS_US); the
 * last bucket, past the last bound, is +Inf. */
extern const uint64_t shm_duration_bounds_us[SHM_DURATION_BUCKETS - 1];

/* The bucket of a duration. */
unsigned shm_duration_bucket(uint64_t duration_us);

/* Writer: one response with status that took duration_us. */
void shm_route_observe(struct shm_route_stats *stats, int status, uint64_t duration_us);

/* The q-quantile (0 < q < 1) in seconds of the durations counted in
 * buckets (per bucket, not cumulative), interpolated linearly within its
 * bucket as Prometheus' histogram_quantile does; past the last bound it
 * is that bound. -1 when there are none. */
double shm_duration_quantile(const uint64_t *buckets, double q);

/* Requests a route entry counted (the sum of its buckets). */
uint64_t shm_route_count(const struct shm_route_totals *r);

/* The Prometheus families saker_request_duration_seconds (histogram) and
 * saker_route_responses_total{route,class} of every route entry in use,
 * labelled with the header's route labels (h: a snapshot). */
void shm_routes_write_metrics(const struct shm *shm, const struct shm_header *h, FILE *out);

#endif
