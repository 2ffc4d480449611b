/*
 * route_stats.c - responses counted per route when their last byte has
 * left; see route_stats.h.
 */
#include "worker/route_stats.h"

#include <stdlib.h>

#include "common/clock.h"
#include "shm/shm_routes.h"
#include "worker/outq.h"
#include "worker/router.h"
#include "worker/worker.h"

#define SPARE_STAMPS_MAX 1024

/* What a response's release needs to count it. */
struct stamp {
    struct stamp *next; /* on the free list */
    struct shm_route_stats *stats;
    uint64_t started_us;
    int status;
};

/* A worker is one thread: a plain free list, and its slot's statistics. */
static struct stamp *spares;
static unsigned spare_count;
static struct shm_route_stats *routes;

static void on_sent(void *arg)
{
    struct stamp *s = arg;
    uint64_t now = clock_now_monotonic_us();
    shm_route_observe(s->stats, s->status, now > s->started_us ? now - s->started_us : 0);
    if (spare_count >= SPARE_STAMPS_MAX) {
        free(s);
        return;
    }
    s->next = spares;
    spares = s;
    spare_count++;
}

void route_stats_start(struct worker *w)
{
    routes = w->shm != NULL && w->slot != NULL
                 ? shm_routes_of(w->shm, (unsigned)(w->slot - w->shm->slots))
                 : NULL;
}

/* The route's entry in the slot's statistics. */
static struct shm_route_stats *stats_of(const struct worker *w, const struct router_entry *entry)
{
    unsigned e = SHM_ROUTE_UNROUTED;
    if (entry != NULL)
        e = w->route_entries != NULL ? w->route_entries[entry - w->router.entries]
                                     : SHM_ROUTE_OTHER;
    return &routes[e];
}

void route_stats_queued(struct worker *w, struct outq *out, const struct router_entry *entry,
                        int status, uint64_t started_us)
{
    if (routes == NULL)
        return;
    struct stamp *s = spares;
    if (s != NULL) {
        spares = s->next;
        spare_count--;
    } else if ((s = malloc(sizeof *s)) == NULL) {
        return; /* not counted: better than failing the response */
    }
    *s = (struct stamp){.stats = stats_of(w, entry), .started_us = started_us, .status = status};
    outq_add_release(out, on_sent, s);
}

void route_stats_free_spares(void)
{
    while (spares != NULL) {
        struct stamp *s = spares;
        spares = s->next;
        free(s);
    }
    spare_count = 0;
}
