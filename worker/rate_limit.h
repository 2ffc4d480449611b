/*
 * rate_limit.h - a route's rate limits, applied to a request once its
 * route is known, by the head pipeline (request_head_check) that HTTP/1.1
 * and HTTP/2 share.
 *
 * Each policy the route names (`rate_limit:`, in order) decides in its
 * table (shm/rate_table.h), shared by every worker, for the request's
 * partition: its client's address cut to the policy's prefix (an
 * IPv4-mapped IPv6 address counts as IPv4; Unix socket clients share one
 * partition), the value of a header (requests without it share one), or
 * one for all. The first refusal makes the answer 429 Too Many Requests
 * with Retry-After (whole seconds, rounded up) and gives back the permits
 * the policies before it took, so a request refused by one policy is not
 * charged to the others.
 */
#ifndef SAKER_WORKER_RATE_LIMIT_H
#define SAKER_WORKER_RATE_LIMIT_H

#include <stddef.h>

#include "common/error.h"
#include "conf/config.h"
#include "worker/exchange.h"
#include "worker/router.h"

struct worker;
struct sockaddr;

/* SK_OK: every policy of route admits ex from peer; SK_DECLINED: one
 * refused, and ex has its Retry-After header (and the route's headers)
 * for the 429 the protocol answers. Admissions, refusals and overflow
 * charges are counted in the worker's slot by the policy's entry. A
 * worker without tables (unit tests) admits everything. */
int rate_limit_decide(struct worker *w, const struct route *route, struct exchange *ex,
                      const struct sockaddr *peer);
/* The same for entry's route (entry NULL: no route, nothing to limit);
 * inline, since every request asks and most routes have no limit. */
static inline int rate_limit_admit(struct worker *w, const struct router_entry *entry,
                                   struct exchange *ex, const struct sockaddr *peer)
{
    if (entry == NULL || entry->route->rate_limit_count == 0)
        return SK_OK;
    return rate_limit_decide(w, entry->route, ex, peer);
}

/* ex's partition key under policy, for a request from peer (NULL:
 * unknown): a pointer into ex or into buf (of RATE_LIMIT_KEY_MAX bytes),
 * and its length in *len. */
#define RATE_LIMIT_KEY_MAX 17
const void *rate_limit_key(const struct rate_limit_policy *policy, const struct exchange *ex,
                           const struct sockaddr *peer, char *buf, size_t *len);

#endif
