/*
 * router.h - choose the route for a request.
 *
 * Routes are tried in config order; the first whose endpoint matches (when
 * the route names one), whose host matches (when the
 * route names one: exact, case-insensitive, or "*.example.com" for any
 * subdomain of example.com but not example.com itself) and whose path prefix
 * matches on a segment boundary wins: "/api" matches "/api", "/api/" and
 * "/api/x" but not "/apix"; "/" matches everything.
 *
 * A router is compiled per worker per config generation; it owns each
 * route's handler state.
 */
#ifndef SAKER_WORKER_ROUTER_H
#define SAKER_WORKER_ROUTER_H

#include <stdbool.h>
#include <stddef.h>

#include "common/error.h"
#include "conf/config.h"
#include "worker/handler.h"

struct router_entry {
    const struct route *route;
    const struct handler_ops *ops;
    void *state;
    bool reads_body; /* the handler reads request bodies (handler_ops) */
};

struct router {
    struct router_entry *entries;
    size_t count;
};

/* Builds the router and runs each handler's init(). SK_OK or SK_ERROR. */
int router_build(struct router *router, const struct config *config, struct err *err);
void router_destroy(struct router *router);

/* The matching entry, or NULL (404). endpoint: the one the request came
 * through (NULL in unit tests: only routes for every endpoint match);
 * host is without port, any case. */
const struct router_entry *router_match(const struct router *router,
                                        const struct endpoint *endpoint,
                                        const char *host, size_t host_len, const char *path,
                                        size_t path_len);

/* The two predicates, exposed for unit tests. */
bool router_host_matches(const char *pattern, const char *host, size_t host_len);
bool router_path_matches(const char *prefix, size_t prefix_len, const char *path,
                         size_t path_len);

#endif
