/* router.c - first-match route selection; see router.h. */
#include "worker/router.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

bool router_host_matches(const char *pattern, const char *host, size_t host_len)
{
    if (pattern[0] == '*' && pattern[1] == '.') {
        /* "*.example.com" matches "a.example.com" and "a.b.example.com",
         * not "example.com": the suffix must follow at least one label. */
        size_t suffix_len = strlen(pattern + 1);
        return host_len > suffix_len &&
               strncasecmp(host + host_len - suffix_len, pattern + 1, suffix_len) == 0;
    }
    return strlen(pattern) == host_len && strncasecmp(pattern, host, host_len) == 0;
}

bool router_path_matches(const char *prefix, size_t prefix_len, const char *path,
                         size_t path_len)
{
    if (prefix_len == 1 && prefix[0] == '/')
        return true;
    if (path_len < prefix_len || memcmp(path, prefix, prefix_len) != 0)
        return false;
    return path_len == prefix_len || path[prefix_len] == '/' || path[prefix_len] == '?';
}

const struct router_entry *router_match(const struct router *router,
                                        const struct endpoint *endpoint,
                                        const char *host, size_t host_len, const char *path,
                                        size_t path_len)
{
    for (size_t i = 0; i < router->count; i++) {
        const struct route *r = router->entries[i].route;
        if (r->only_endpoint != NULL && r->only_endpoint != endpoint)
            continue;
        if (r->host != NULL && !router_host_matches(r->host, host, host_len))
            continue;
        if (router_path_matches(r->path, r->path_len, path, path_len))
            return &router->entries[i];
    }
    return NULL;
}

/* Finds the route's runtime and runs its init. */
static int entry_init(struct router_entry *e, struct err *err)
{
    const struct route *r = e->route;

    e->ops = r->handler != NULL ? handler_find(r->handler) : NULL;
    if (e->ops == NULL)
        return err_set(err, "route '%s': handler '%s' has no runtime in this worker", r->path,
                       r->handler != NULL ? r->handler->name : "(none)");
    e->reads_body = e->ops->route_reads_body != NULL ? e->ops->route_reads_body(r)
                                                     : e->ops->reads_body;
    return e->ops->init != NULL ? e->ops->init(r, &e->state, err) : SK_OK;
}

int router_build(struct router *router, const struct config *config, struct err *err)
{
    router->count = 0;
    router->entries = calloc(config->route_count ? config->route_count : 1,
                             sizeof *router->entries);
    if (router->entries == NULL)
        return err_set(err, "router: out of memory");
    for (size_t i = 0; i < config->route_count; i++) {
        struct router_entry *e = &router->entries[i];
        e->route = &config->routes[i];
        if (entry_init(e, err) != SK_OK) {
            router_destroy(router);
            return SK_ERROR;
        }
        router->count++;
    }
    return SK_OK;
}

void router_destroy(struct router *router)
{
    for (size_t i = 0; i < router->count; i++)
        if (router->entries[i].ops->fini != NULL)
            router->entries[i].ops->fini(router->entries[i].state);
    free(router->entries);
    router->entries = NULL;
    router->count = 0;
}
