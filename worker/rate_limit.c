/*
 * rate_limit.c - a route's rate limits; see rate_limit.h.
 */
#include "worker/rate_limit.h"

#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

#include "common/clock.h"
#include "common/digits.h"
#include "shm/rate_table.h"
#include "worker/worker.h"

/* The first `bits` bits of an address; the rest zero. */
static size_t masked(const uint8_t *address, size_t bytes, uint64_t bits, char *out)
{
    for (size_t i = 0; i < bytes; i++) {
        uint64_t keep = bits >= 8 * (i + 1) ? 8 : bits > 8 * i ? bits - 8 * i : 0;
        out[i] = (char)(address[i] & (uint8_t)(0xff00u >> keep));
    }
    return bytes;
}

static const void *address_key(const struct rate_limit_policy *p, const struct sockaddr *peer,
                               char *buf, size_t *len)
{
    if (peer != NULL && peer->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)peer;
        buf[0] = '4';
        *len = 1 + masked((const uint8_t *)&in->sin_addr, 4, p->ipv4_prefix, buf + 1);
        return buf;
    }
    if (peer != NULL && peer->sa_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)peer)->sin6_addr;
        /* A dual-stack listener's IPv4 client is an IPv4 client. */
        bool mapped = IN6_IS_ADDR_V4MAPPED(a);
        buf[0] = mapped ? '4' : '6';
        *len = 1 + (mapped ? masked(a->s6_addr + 12, 4, p->ipv4_prefix, buf + 1)
                           : masked(a->s6_addr, 16, p->ipv6_prefix, buf + 1));
        return buf;
    }
    *len = 1;
    return "u"; /* Unix sockets: no address to tell clients apart */
}

const void *rate_limit_key(const struct rate_limit_policy *p, const struct exchange *ex,
                           const struct sockaddr *peer, char *buf, size_t *len)
{
    switch (p->partition) {
    case RATE_PARTITION_HEADER: {
        const char *value = exchange_header(ex, p->header, len);
        if (value == NULL)
            *len = 0;
        return value != NULL ? value : "";
    }
    case RATE_PARTITION_GLOBAL:
        *len = 0;
        return "";
    default:
        return address_key(p, peer, buf, len);
    }
}

static void count(struct worker *w, const struct rate_table *t, enum shm_rate_counter c)
{
    unsigned entry = rate_table_entry(t);
    if (w->slot == NULL || entry >= SHM_MAX_RATE_LIMITS)
        return;
    uint64_t v = atomic_load_explicit(&w->slot->rate[entry][c], memory_order_relaxed);
    atomic_store_explicit(&w->slot->rate[entry][c], v + 1, memory_order_relaxed);
}

/* Retry-After in whole seconds, rounded up (RFC 6585 section 4, RFC 9110
 * section 10.2.3), for the 429 to come; the route answers it, so its
 * headers go with it as with any of its answers. */
static void refuse(struct exchange *ex, const struct route *route, uint64_t retry_after_ms)
{
    char seconds[24];
    *digits_decimal(seconds, (retry_after_ms + 999) / 1000) = '\0';
    exchange_add_config_headers(ex, route->headers, route->header_count);
    exchange_add_header(ex, "Retry-After", seconds);
}

/* One policy's decision for ex; counts an overflow charge and a refusal. */
static bool decide(struct worker *w, unsigned policy, const struct exchange *ex,
                   const struct sockaddr *peer, uint64_t now_ms, struct rate_decision *d)
{
    struct rate_table *t = w->rate_tables[policy];
    char buf[RATE_LIMIT_KEY_MAX];
    size_t len;
    const void *key = rate_limit_key(&w->config->rate_limits[policy], ex, peer, buf, &len);
    rate_table_acquire(t, key, len, now_ms, d);
    if (d->overflow)
        count(w, t, SHM_RATE_OVERFLOW);
    if (!d->admitted)
        count(w, t, SHM_RATE_LIMITED);
    return d->admitted;
}

int rate_limit_decide(struct worker *w, const struct route *route, struct exchange *ex,
                      const struct sockaddr *peer)
{
    struct rate_decision taken[CONFIG_MAX_ROUTE_RATE_LIMITS];
    size_t n = route->rate_limit_count;
    if (w->rate_tables == NULL || n == 0 || n > CONFIG_MAX_ROUTE_RATE_LIMITS)
        return SK_OK;
    uint64_t now_ms = clock_now_monotonic_ms();
    for (size_t i = 0; i < n; i++) {
        if (decide(w, route->rate_limits[i], ex, peer, now_ms, &taken[i]))
            continue;
        uint64_t retry_after_ms = taken[i].retry_after_ms;
        while (i-- > 0)
            rate_table_refund(w->rate_tables[route->rate_limits[i]], &taken[i]);
        refuse(ex, route, retry_after_ms);
        return SK_DECLINED;
    }
    for (size_t i = 0; i < n; i++)
        count(w, w->rate_tables[route->rate_limits[i]], SHM_RATE_ADMITTED);
    return SK_OK;
}
