/*
 * upstream.c - servers, balance and passive health; see upstream.h.
 */
#include "worker/upstream.h"

#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "conf/config.h"
#include "shm/shm.h"
#include "tls/tls_client.h"

/* A client context when a server is https://, built in the worker: the
 * CA and client certificate files are read as the worker's user. */
static int upstream_tls_init(struct upstream *up, struct err *err)
{
    bool https = false;
    for (size_t j = 0; j < up->peer_count; j++)
        https |= up->cfg->servers[j].url.scheme == URL_SCHEME_HTTPS;
    if (!https)
        return SK_OK;
    struct tls_client_params p = {up->cfg->tls_ca_file, up->cfg->tls_certificate,
                                  up->cfg->tls_key, up->cfg->tls_verify};
    struct err why;
    up->tls = tls_client_context(&p, &why);
    if (up->tls == NULL)
        return err_set(err, "upstream '%s': tls: %s", up->cfg->name, why.message);
    return SK_OK;
}

int upstreams_init(struct upstreams *ups, const struct config *config, struct err *err)
{
    memset(ups, 0, sizeof *ups);
    if (config->upstream_count == 0)
        return SK_OK;
    ups->list = calloc(config->upstream_count, sizeof *ups->list);
    if (ups->list == NULL)
        return err_set(err, "upstreams: out of memory");
    ups->count = config->upstream_count;
    for (size_t i = 0; i < ups->count; i++) {
        struct upstream *up = &ups->list[i];
        up->cfg = &config->upstreams[i];
        up->peer_count = up->cfg->server_count;
        if ((up->peers = calloc(up->peer_count, sizeof *up->peers)) == NULL) {
            upstreams_destroy(ups);
            return err_set(err, "upstreams: out of memory");
        }
        for (size_t j = 0; j < up->peer_count; j++) {
            up->peers[j].cfg = &up->cfg->servers[j];
            up->peers[j].up = up;
        }
        if (upstream_tls_init(up, err) != SK_OK) {
            upstreams_destroy(ups);
            return SK_ERROR;
        }
    }
    return SK_OK;
}

void upstreams_destroy(struct upstreams *ups)
{
    for (size_t i = 0; i < ups->count; i++) {
        free(ups->list[i].peers);
        SSL_CTX_free(ups->list[i].tls);
    }
    free(ups->list);
    memset(ups, 0, sizeof *ups);
}

bool upstream_peer_usable(const struct upstream_peer *p, uint64_t now_ms)
{
    if (p->shm != NULL &&
        atomic_load_explicit(&p->shm->health, memory_order_relaxed) == SHM_UPSTREAM_DOWN)
        return false;
    return now_ms >= p->down_until_ms;
}

void upstreams_attach(struct upstreams *ups, struct shm *shm, struct shm_slot *slot,
                      uint64_t generation)
{
    for (size_t i = 0; i < ups->count; i++) {
        struct upstream *up = &ups->list[i];
        for (size_t j = 0; j < up->peer_count; j++) {
            struct upstream_peer *p = &up->peers[j];
            p->shm = shm_upstream_claim(shm, up->cfg->name, p->cfg->url_text, generation,
                                        up->cfg->health_path != NULL);
            p->shm_index = p->shm != NULL ? (size_t)(p->shm - shm->header->upstream_servers) : 0;
            p->slot = p->shm != NULL ? slot : NULL;
        }
    }
}

void upstream_peer_count(struct upstream_peer *p, int counter)
{
    shm_upstream_count(p->shm, (enum shm_upstream_counter)counter, 1);
}

void upstream_peer_active(struct upstream_peer *p, int delta)
{
    p->active = (unsigned)((int)p->active + delta);
    if (p->slot != NULL)
        shm_slot_gauge_add(&p->slot->upstream_active[p->shm_index], delta);
}

void upstream_peer_idle(struct upstream_peer *p, int delta)
{
    if (p->slot != NULL)
        shm_slot_gauge_add(&p->slot->upstream_idle[p->shm_index], delta);
}

void upstream_peer_latency(struct upstream_peer *p, uint64_t ms)
{
    static const uint64_t bounds[] = SHM_UPSTREAM_LATENCY_BOUNDS;
    size_t b = 0;
    if (p->shm == NULL)
        return;
    while (b < sizeof bounds / sizeof bounds[0] && ms > bounds[b])
        b++;
    atomic_fetch_add_explicit(&p->shm->latency[b], 1, memory_order_relaxed);
    shm_upstream_count(p->shm, SHM_UP_LATENCY_MS_SUM, ms);
}

static bool candidate(const struct upstream_peer *p, const struct upstream_peer *avoid,
                      uint64_t now_ms)
{
    return p != avoid && upstream_peer_usable(p, now_ms);
}

/* nginx's smooth weighted round robin: every candidate gains its weight,
 * the richest is chosen and pays the total, so weights 5,1,1 give
 * a a b a c a a rather than a a a a a b c. */
static struct upstream_peer *pick_round_robin(struct upstream *up,
                                              const struct upstream_peer *avoid, uint64_t now)
{
    struct upstream_peer *best = NULL;
    int total = 0;
    for (size_t i = 0; i < up->peer_count; i++) {
        struct upstream_peer *p = &up->peers[i];
        if (!candidate(p, avoid, now))
            continue;
        p->current_weight += (int)p->cfg->weight;
        total += (int)p->cfg->weight;
        if (best == NULL || p->current_weight > best->current_weight)
            best = p;
    }
    if (best != NULL)
        best->current_weight -= total;
    return best;
}

/* a is less loaded than b, weights considered (active / weight). */
static bool lighter(const struct upstream_peer *a, const struct upstream_peer *b)
{
    return (uint64_t)a->active * b->cfg->weight < (uint64_t)b->active * a->cfg->weight;
}

static struct upstream_peer *pick_least(struct upstream *up, const struct upstream_peer *avoid,
                                        uint64_t now)
{
    struct upstream_peer *best = NULL;
    for (size_t k = 0; k < up->peer_count; k++) {
        struct upstream_peer *p = &up->peers[(up->next + k) % up->peer_count];
        if (candidate(p, avoid, now) && (best == NULL || lighter(p, best)))
            best = p;
    }
    up->next = (up->next + 1) % up->peer_count; /* ties go round */
    return best;
}

static uint32_t hash_client(const struct sockaddr *client)
{
    const uint8_t *b = NULL;
    size_t n = 0;
    if (client != NULL && client->sa_family == AF_INET) {
        b = (const uint8_t *)&((const struct sockaddr_in *)(const void *)client)->sin_addr;
        n = 4;
    } else if (client != NULL && client->sa_family == AF_INET6) {
        b = ((const struct sockaddr_in6 *)(const void *)client)->sin6_addr.s6_addr;
        n = 16;
    }
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 16777619u;
    return h;
}

/* The same client to the same server while it is usable; else the next
 * usable one after it, so only that server's clients move. */
static struct upstream_peer *pick_hash(struct upstream *up, const struct sockaddr *client,
                                       const struct upstream_peer *avoid, uint64_t now)
{
    size_t start = hash_client(client) % up->peer_count;
    for (size_t k = 0; k < up->peer_count; k++) {
        struct upstream_peer *p = &up->peers[(start + k) % up->peer_count];
        if (candidate(p, avoid, now))
            return p;
    }
    return NULL;
}

static struct upstream_peer *pick_two(struct upstream *up, const struct upstream_peer *avoid,
                                      uint64_t now)
{
    struct upstream_peer *a = NULL, *b = NULL;
    for (int tries = 0; tries < 8 && (a == NULL || b == NULL); tries++) {
        struct upstream_peer *p = &up->peers[(size_t)random() % up->peer_count];
        if (!candidate(p, avoid, now))
            continue;
        if (a == NULL)
            a = p;
        else if (p != a || up->peer_count == 1)
            b = p;
    }
    if (a == NULL)
        return pick_least(up, avoid, now); /* few usable: look at all of them */
    return b != NULL && lighter(b, a) ? b : a;
}

static struct upstream_peer *pick(struct upstream *up, const struct sockaddr *client,
                                  const struct upstream_peer *avoid, uint64_t now)
{
    switch (up->cfg->balance) {
    case UPSTREAM_LEAST_CONNECTIONS:
        return pick_least(up, avoid, now);
    case UPSTREAM_CLIENT_IP_HASH:
        return pick_hash(up, client, avoid, now);
    case UPSTREAM_RANDOM_TWO_CHOICES:
        return pick_two(up, avoid, now);
    default:
        return pick_round_robin(up, avoid, now);
    }
}

struct upstream_peer *upstream_pick(struct upstream *up, const struct sockaddr *client,
                                    const struct upstream_peer *avoid, uint64_t now_ms)
{
    struct upstream_peer *p = pick(up, client, avoid, now_ms);
    if (p == NULL && avoid != NULL && upstream_peer_usable(avoid, now_ms))
        p = (struct upstream_peer *)avoid; /* the only usable one: try it again */
    return p;
}

bool upstream_peer_failed(struct upstream_peer *p, uint64_t now_ms)
{
    const struct upstream_config *cfg = p->up->cfg;
    /* A lone server is never ejected (nginx's rule): with nowhere else to
     * send a request, one failure would make every request 502 for
     * fail_timeout, starting with the retry of the one that failed. */
    if (cfg->max_fails == 0 || p->up->peer_count == 1)
        return false;
    if (now_ms - p->fail_window_ms > cfg->fail_timeout_ms) {
        p->fail_window_ms = now_ms;
        p->fails = 0;
    }
    if (++p->fails < cfg->max_fails)
        return false;
    p->fails = 0;
    p->down_until_ms = now_ms + cfg->fail_timeout_ms;
    if (p->shm != NULL) {
        shm_upstream_count(p->shm, SHM_UP_EJECTIONS, 1);
        atomic_store_explicit(&p->shm->ejected_until_ms, p->down_until_ms, memory_order_relaxed);
    }
    return true;
}

void upstream_peer_ok(struct upstream_peer *p)
{
    p->fails = 0;
}
