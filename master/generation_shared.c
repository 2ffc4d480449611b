/*
 * generation_shared.c - rate limit tables and the directory entries of
 * rate limits and routes, per generation; see generation_shared.h.
 */
#include "master/generation_shared.h"

#include <stdlib.h>
#include <string.h>

#include "master/master.h"
#include "shm/rate_table.h"

/* Only the master that owns the instance frees directory entries: not a
 * new master of a binary upgrade before it serves (the old one still
 * counts there), nor the old one once it has handed over, nor a master
 * whose segment is gone. An entry a failed candidate claimed stays
 * labelled, counting nothing. */
static bool owns_directories(const struct master *m)
{
    return m->shm.header != NULL && !m->candidate && !m->handed_over;
}

/* Every live generation but g, in turn. */
static struct generation *next_other(struct master *m, const struct generation *g, int *i)
{
    while (*i < MASTER_GENERATIONS) {
        struct generation *other = &m->generations[(*i)++];
        if (other != g && other->number != 0 && other->config != NULL)
            return other;
    }
    return NULL;
}

/* The table of a live generation for a policy defined as p, or NULL. */
static struct rate_table *table_to_share(struct master *m, const struct generation *g,
                                         const struct rate_limit_policy *p)
{
    int i = 0;
    for (struct generation *o; (o = next_other(m, g, &i)) != NULL;) {
        if (o->shared.rate_tables == NULL)
            continue;
        for (size_t k = 0; k < o->config->rate_limit_count; k++) {
            const struct rate_limit_policy *q = &o->config->rate_limits[k];
            if (o->shared.rate_tables[k] != NULL && strcmp(q->name, p->name) == 0 &&
                config_rate_limit_same(q, p))
                return o->shared.rate_tables[k];
        }
    }
    return NULL;
}

/* The directory entry named name, else a free one (claimed), else -1. */
static int directory_entry(struct shm *shm, const struct rate_limit_policy *p)
{
    struct shm_header *h = shm->header;
    int free_entry = -1;
    for (int e = 0; e < SHM_MAX_RATE_LIMITS; e++) {
        if (strcmp(h->rate_policies[e].name, p->name) == 0)
            return e;
        if (free_entry < 0 && h->rate_policies[e].name[0] == '\0')
            free_entry = e;
    }
    return free_entry;
}

static void directory_write(struct shm *shm, int entry, const struct rate_limit_policy *p)
{
    char definition[SHM_RATE_TEXT_MAX];
    config_rate_limit_describe(p, definition, sizeof definition);
    shm_rate_policy_set(shm, (unsigned)entry, p->name, definition);
}

static int attach_policy(struct master *m, struct generation *g, size_t k, struct err *err)
{
    const struct rate_limit_policy *p = &g->config->rate_limits[k];
    int entry = directory_entry(&m->shm, p);
    if (entry < 0)
        return err_set(err, "rate limit '%s': the shm directory has no room (%d policy names "
                       "in use by the generations alive); reload again once the old "
                       "generation has drained", p->name, SHM_MAX_RATE_LIMITS);
    struct rate_table *t = table_to_share(m, g, p);
    if (t == NULL && (t = rate_table_create(p, err)) == NULL)
        return SK_ERROR;
    g->shared.rate_tables[k] = t;
    rate_table_set_entry(t, (unsigned)entry);
    directory_write(&m->shm, entry, p);
    return SK_OK;
}

/* The route entry labelled label, else a free one (labelled), else
 * SHM_ROUTE_OTHER. */
static uint8_t route_entry(struct shm *shm, const char *label)
{
    const struct shm_header *h = shm->header;
    int free_entry = -1;
    for (int e = SHM_ROUTE_FIRST; e < SHM_MAX_ROUTES; e++) {
        if (strcmp(h->routes[e].label, label) == 0)
            return (uint8_t)e;
        if (free_entry < 0 && h->routes[e].label[0] == '\0')
            free_entry = e;
    }
    if (free_entry < 0)
        return SHM_ROUTE_OTHER;
    shm_route_label_set(shm, (unsigned)free_entry, label);
    return (uint8_t)free_entry;
}

static int attach_routes(struct master *m, struct generation *g, struct err *err)
{
    size_t n = g->config->route_count;
    if (n == 0)
        return SK_OK;
    if ((g->shared.route_entries = calloc(n, 1)) == NULL)
        return err_set(err, "out of memory");
    for (size_t i = 0; i < n; i++) {
        char label[SHM_ROUTE_LABEL_MAX];
        config_route_label(&g->config->routes[i], label, sizeof label);
        g->shared.route_entries[i] = route_entry(&m->shm, label);
    }
    return SK_OK;
}

int generation_shared_attach(struct master *m, struct generation *g, struct err *err)
{
    size_t n = g->config->rate_limit_count;
    if (attach_routes(m, g, err) != SK_OK)
        return SK_ERROR;
    if (n == 0)
        return SK_OK;
    if ((g->shared.rate_tables = calloc(n, sizeof *g->shared.rate_tables)) == NULL)
        return err_set(err, "out of memory");
    for (size_t k = 0; k < n; k++)
        if (attach_policy(m, g, k, err) != SK_OK)
            return SK_ERROR;
    return SK_OK;
}

static bool table_shared(struct master *m, const struct generation *g, const struct rate_table *t)
{
    int i = 0;
    for (struct generation *o; (o = next_other(m, g, &i)) != NULL;)
        for (size_t k = 0; o->shared.rate_tables != NULL && k < o->config->rate_limit_count; k++)
            if (o->shared.rate_tables[k] == t)
                return true;
    return false;
}

/* The policy named name in the newest other live generation, or NULL. */
static const struct rate_limit_policy *named_elsewhere(struct master *m,
                                                      const struct generation *g,
                                                      const char *name)
{
    const struct rate_limit_policy *found = NULL;
    uint64_t newest = 0;
    int i = 0;
    for (struct generation *o; (o = next_other(m, g, &i)) != NULL;)
        for (size_t k = 0; k < o->config->rate_limit_count; k++)
            if (strcmp(o->config->rate_limits[k].name, name) == 0 && o->number > newest) {
                found = &o->config->rate_limits[k];
                newest = o->number;
            }
    return found;
}

/* A name another live generation has keeps its entry, with that
 * generation's definition; otherwise the entry goes. */
static void release_policy_entry(struct master *m, const struct generation *g, const char *name,
                                 unsigned entry)
{
    if (!owns_directories(m))
        return;
    const struct rate_limit_policy *other = named_elsewhere(m, g, name);
    if (other != NULL)
        directory_write(&m->shm, (int)entry, other);
    else
        shm_rate_policy_clear(&m->shm, entry);
}

static bool route_entry_used(struct master *m, const struct generation *g, uint8_t entry)
{
    int i = 0;
    for (struct generation *o; (o = next_other(m, g, &i)) != NULL;)
        for (size_t r = 0; o->shared.route_entries != NULL && r < o->config->route_count; r++)
            if (o->shared.route_entries[r] == entry)
                return true;
    return false;
}

static void release_routes(struct master *m, struct generation *g)
{
    for (size_t r = 0; owns_directories(m) && g->shared.route_entries != NULL &&
                       r < g->config->route_count; r++) {
        uint8_t entry = g->shared.route_entries[r];
        if (entry >= SHM_ROUTE_FIRST && !route_entry_used(m, g, entry))
            shm_route_label_clear(&m->shm, entry);
    }
    free(g->shared.route_entries);
    g->shared.route_entries = NULL;
}

void generation_shared_release(struct master *m, struct generation *g)
{
    release_routes(m, g);
    for (size_t k = 0; g->shared.rate_tables != NULL && k < g->config->rate_limit_count; k++) {
        struct rate_table *t = g->shared.rate_tables[k];
        if (t == NULL)
            continue;
        release_policy_entry(m, g, g->config->rate_limits[k].name, rate_table_entry(t));
        if (!table_shared(m, g, t))
            rate_table_destroy(t);
    }
    free(g->shared.rate_tables);
    g->shared.rate_tables = NULL;
}
