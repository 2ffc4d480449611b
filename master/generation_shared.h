/*
 * generation_shared.h - what a generation's workers share beyond their
 * slots, set up by the master before it forks them and released with the
 * generation.
 *
 * Rate limits: one table per policy (shm/rate_table.h), mapped shared.
 * A policy whose name and definition a live generation already has keeps
 * that generation's table, so a reload that leaves a policy alone keeps
 * every partition's count; a new or changed policy starts empty. Each
 * policy name has an entry in the shm header's directory, which indexes
 * its counters in the slots: a name keeps its entry (and its counters go
 * on) for as long as some live generation names it.
 *
 * Routes: each route's label (config_route_label) has an entry in the
 * header's route directory, kept the same way, which indexes the slots'
 * route statistics. There are SHM_MAX_ROUTES entries, two of them fixed
 * (no route, beyond the table): a route whose label finds no room, when
 * the generations alive have more labels than that, is counted under
 * "_other".
 *
 * A binary upgrade hands the segment over, directories and counters
 * included, but not the tables (memory the old master's processes share):
 * the new master's policies start afresh.
 */
#ifndef SAKER_MASTER_GENERATION_SHARED_H
#define SAKER_MASTER_GENERATION_SHARED_H

#include <stdint.h>

#include "common/error.h"

struct master;
struct generation;
struct rate_table;

struct generation_shared {
    struct rate_table **rate_tables; /* one per config->rate_limits; NULL: none */
    uint8_t *route_entries;          /* one per config->routes; NULL: none */
};

/* Tables and directory entries (rate limits, route labels) for g's config. SK_ERROR (err set) when a
 * table cannot be mapped or the directory is full; what was set up is
 * released by generation_shared_release. */
int generation_shared_attach(struct master *m, struct generation *g, struct err *err);
/* Gives back what only g used: tables no other live generation shares,
 * directory entries of names no other live generation has. */
void generation_shared_release(struct master *m, struct generation *g);

#endif
