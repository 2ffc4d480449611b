/*
 * config_routes.c - the `routes` sequence; see config.h.
 *
 *   routes:
 *     - host: static.example.com      # optional: exact, or *.example.com
 *       path: /assets                 # prefix; first matching route wins
 *       static: { root: /var/www, index: index.html }
 *     - path: /healthz
 *       return: { status: 200, headers: { Content-Type: text/plain }, body: ok }
 *     - endpoint: public              # optional: only requests to this endpoint
 *       path: /
 *       redirect_https: { port: 443, status: 308 }
 *     - path: /api
 *       name: api                     # optional: the route's label in metrics
 *       rate_limit: [per_client, everyone]   # config_rate_limits.c
 *
 * A route's own keys are here; exactly one other key names its handler
 * kind, whose map is parsed with the kind's options (handler_schema.h:
 * route_static.c, route_return.c, ...). Everything a worker would
 * otherwise discover per request is settled here, once: host names are
 * lower-cased (Host is case-insensitive, RFC 9110 section 4.2.3), a
 * trailing '/' is dropped from the prefix, the route's headers are checked
 * (config_headers.c), a route's endpoint must exist, and each kind checks
 * what needs the endpoints (a redirect to https:// can never answer a
 * request that came over https://: it would redirect to itself forever).
 */
#include "conf/config_parse.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/handler_schema.h"

#define HOST_CHARS "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-."

static int parse_host(const char *key, const char *text, size_t len, void *field,
                      struct err *why)
{
    char **host = field;
    const char *name = strncmp(text, "*.", 2) == 0 ? text + 2 : text;

    (void)len;
    if (strcmp(text, "*") == 0)
        return SK_OK; /* any host, as if absent */
    if (*name == '\0' || *name == '.' || name[strspn(name, HOST_CHARS)] != '\0')
        return err_set(why, "%s: expected a host name such as example.com or "
                            "*.example.com, got '%.80s'", key, text);
    if ((*host = strdup(text)) == NULL)
        return err_set(why, "out of memory");
    for (char *p = *host; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    return SK_OK;
}

/* Offset 0: fills route->path and route->path_len. */
static int parse_path(const char *key, const char *text, size_t len, void *field,
                      struct err *why)
{
    struct route *route = field;

    if (text[0] != '/')
        return err_set(why, "%s: expected a path starting with '/', got '%.80s'", key, text);
    for (const char *p = text; *p; p++)
        if (*p <= ' ' || *p == 0x7f || *p == '?' || *p == '#')
            return err_set(why, "%s: '%.80s' contains a space, control character, "
                                "'?' or '#'", key, text);
    if (len > 1 && text[len - 1] == '/')
        len--; /* "/docs/" matches like "/docs" */
    if ((route->path = strndup(text, len)) == NULL)
        return err_set(why, "out of memory");
    route->path_len = len;
    return SK_OK;
}

/* A route's own `headers:` go on every response its handler makes, so
 * none may be one a handler or the protocol sets: a second Content-Type
 * or ETag would contradict the first, and HTTP/2 forbids the
 * connection-specific ones (RFC 9113 section 8.2.2). */
static const char *const handler_set_headers[] = {
    "Accept-Ranges", "Allow", "Content-Range", "Content-Type", "Date", "ETag",
    "Keep-Alive", "Last-Modified", "Location", "Proxy-Connection", "Server",
    "Strict-Transport-Security", "Upgrade", NULL};

/* Base: struct route. */
static int parse_route_headers(const struct cfg_ctx *ctx, const yaml_node_t *node, void *base)
{
    struct route *route = base;
    return cfg_parse_header_map(ctx, node, &route->headers, &route->header_count,
                                handler_set_headers, "is set by the handler or the server "
                                                     "(HSTS: the endpoint's 'hsts')");
}

/* "route: no handler: add 'return', 'static', 'status' or ..." */
static int no_handler(const struct cfg_ctx *ctx, const yaml_node_t *map)
{
    enum { NAMES_MAX = 64 };
    const char *names[NAMES_MAX];
    size_t count = handler_schema_count() < NAMES_MAX ? handler_schema_count() : NAMES_MAX;
    char list[400];

    for (size_t i = 0; i < count; i++)
        names[i] = handler_schema_at(i)->name;
    cfg_join_names(list, sizeof list, names, count, "'");
    return cfg_fail(ctx, map, "route: no handler: add %s", list);
}

/* Exactly one handler per route: two would leave which one runs to the
 * reader's guess. */
static int check_handler(const struct cfg_ctx *ctx, const yaml_node_t *map)
{
    const yaml_node_t *first = NULL, *headers = NULL;
    const struct handler_schema *kind = NULL;

    for (const yaml_node_pair_t *p = map->data.mapping.pairs.start;
         p < map->data.mapping.pairs.top; p++) {
        yaml_node_t *key = cfg_node(ctx, p->key), *value = cfg_node(ctx, p->value);
        const char *name = (const char *)key->data.scalar.value;
        const struct handler_schema *schema = handler_schema_find(name);
        if (strcmp(name, "headers") == 0)
            headers = key;
        if (schema == NULL)
            continue;
        if (cfg_is_null(value))
            return cfg_fail(ctx, value, "%s: expected a mapping, got null", name);
        if (first != NULL)
            return cfg_fail(ctx, key, "route: has both '%s' and '%s'; keep one handler",
                            (const char *)first->data.scalar.value, name);
        first = key;
        kind = schema;
    }
    if (first == NULL)
        return no_handler(ctx, map);
    if (headers != NULL && kind->own_headers)
        return cfg_fail(ctx, headers, "route: a '%s' route's headers go in %s.headers",
                        kind->name, kind->name);
    return SK_OK;
}

/* A label for metrics: printable, and short enough to be kept whole. */
static int parse_name(const char *key, const char *text, size_t len, void *field,
                      struct err *why)
{
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)text[i] < 0x20 || text[i] == 0x7f)
            return err_set(why, "%s: contains a control character", key);
    if (len > CONFIG_ROUTE_NAME_MAX)
        return err_set(why, "%s: at most %d bytes", key, CONFIG_ROUTE_NAME_MAX);
    return cfg_parse_string(key, text, len, field, why);
}

/* Sets the flag too, so that 0 (no body at all) differs from unset. */
static int parse_body_limit(const char *key, const char *text, size_t len, void *field,
                            struct err *why)
{
    struct route *route = field;

    if (cfg_parse_size(key, text, len, &route->max_request_body_size, why) != SK_OK)
        return SK_ERROR;
    route->has_max_request_body_size = true;
    return SK_OK;
}

/* A handler kind's key (opt->arg: its schema). Base: struct route. NULL:
 * this kind is not the route's (check_handler has made sure exactly one
 * kind's key is present and not null). */
static int parse_handler(const struct cfg_ctx *ctx, const struct cfg_option *opt,
                         const yaml_node_t *node, void *base)
{
    const struct handler_schema *schema = opt->arg;
    struct route *route = base;

    if (node == NULL)
        return SK_OK;
    if (cfg_expect(ctx, node, YAML_MAPPING_NODE, schema->name) != SK_OK)
        return SK_ERROR;
    route->handler = schema;
    route->handler_config = calloc(1, schema->config_size ? schema->config_size : 1);
    if (route->handler_config == NULL)
        return cfg_fail(ctx, node, "out of memory");
    if (schema->parse != NULL)
        return schema->parse(ctx, node, route->handler_config);
    return cfg_apply_section(ctx, node, schema->section, route->handler_config, schema->name);
}

/* A route's own keys; with one row per handler kind, they make the route's
 * table (route_table). */
static const struct cfg_option route_options[] = {
    {.name = "compression", .node = cfg_parse_route_compression},
    {.name = "endpoint", .offset = offsetof(struct route, endpoint), .scalar = cfg_parse_string},
    {.name = "headers", .node = parse_route_headers},
    {.name = "host", .offset = offsetof(struct route, host), .scalar = parse_host},
    {.name = "max_request_body_size", .offset = 0, .scalar = parse_body_limit},
    {.name = "name", .offset = offsetof(struct route, name), .scalar = parse_name},
    {.name = "path", .offset = 0, .scalar = parse_path, .required = true},
    {.name = "rate_limit", .node = cfg_parse_route_rate_limits},
};
#define ROUTE_OPTION_COUNT (sizeof route_options / sizeof route_options[0])

bool cfg_is_route_key(const char *name)
{
    for (size_t i = 0; i < ROUTE_OPTION_COUNT; i++)
        if (strcmp(route_options[i].name, name) == 0)
            return true;
    return false;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(((const struct cfg_option *)a)->name, ((const struct cfg_option *)b)->name);
}

/* The route's keys and every registered handler kind's, by name (so that
 * "did you mean" picks among them as it would in a fixed table). The
 * caller frees rows. */
static int route_table(const struct cfg_ctx *ctx, const yaml_node_t *node,
                       struct cfg_option **rows, struct cfg_section *section)
{
    size_t count = ROUTE_OPTION_COUNT + handler_schema_count();

    if ((*rows = calloc(count, sizeof **rows)) == NULL)
        return cfg_fail(ctx, node, "out of memory");
    memcpy(*rows, route_options, sizeof route_options);
    for (size_t i = ROUTE_OPTION_COUNT; i < count; i++) {
        const struct handler_schema *schema = handler_schema_at(i - ROUTE_OPTION_COUNT);
        (*rows)[i] = (struct cfg_option){.name = schema->name, .entry = parse_handler,
                                         .arg = schema};
    }
    qsort(*rows, count, sizeof **rows, by_name);
    *section = (struct cfg_section){*rows, count, check_handler};
    return SK_OK;
}

void cfg_route_free(struct route *route)
{
    free(route->name);
    free(route->endpoint);
    free(route->host);
    free(route->path);
    cfg_headers_free(route->headers, route->header_count);
    if (route->own_compression != NULL)
        config_compression_free(route->own_compression);
    free(route->own_compression);
    for (size_t i = 0; i < route->rate_limit_count; i++)
        free(route->rate_limit_names[i]);
    free(route->rate_limit_names);
    free(route->rate_limits);
    if (route->handler != NULL && route->handler->release != NULL &&
        route->handler_config != NULL)
        route->handler->release(route->handler_config);
    free(route->handler_config);
}

static int parse_route_list(const struct cfg_ctx *ctx, const yaml_node_t *node,
                            struct config *config, const struct cfg_section *section)
{
    size_t count = (size_t)(node->data.sequence.items.top - node->data.sequence.items.start);

    if (count == 0)
        return SK_OK;
    if ((config->routes = calloc(count, sizeof *config->routes)) == NULL)
        return cfg_fail(ctx, node, "out of memory");
    config->route_count = count;
    for (size_t i = 0; i < count; i++) {
        yaml_node_t *item = cfg_node(ctx, node->data.sequence.items.start[i]);
        struct route *route = &config->routes[i];
        route->line = (int)item->start_mark.line + 1;
        route->column = (int)item->start_mark.column + 1;
        if (cfg_expect(ctx, item, YAML_MAPPING_NODE, "route") != SK_OK ||
            cfg_apply_section(ctx, item, section, route, "route") != SK_OK)
            return SK_ERROR;
        for (size_t j = 0; route->name != NULL && j < i; j++)
            if (config->routes[j].name != NULL && strcmp(config->routes[j].name, route->name) == 0)
                return cfg_fail(ctx, cfg_lookup(ctx, item, "name"), "name: '%.80s' is the "
                                "name of the route at line %d too", route->name,
                                config->routes[j].line);
    }
    return SK_OK;
}

void config_route_label(const struct route *r, char *out, size_t size)
{
    if (r->name != NULL)
        snprintf(out, size, "%s", r->name);
    else
        snprintf(out, size, "%s%s%s%s", r->endpoint ? r->endpoint : "", r->endpoint ? ":" : "",
                 r->host ? r->host : "", r->path ? r->path : "");
}

int cfg_parse_routes(const struct cfg_ctx *ctx, const yaml_node_t *node, void *base)
{
    struct cfg_option *rows;
    struct cfg_section section;

    if (node == NULL)
        return SK_OK; /* no routes: every request is a 404 */
    if (cfg_expect(ctx, node, YAML_SEQUENCE_NODE, "routes") != SK_OK ||
        route_table(ctx, node, &rows, &section) != SK_OK)
        return SK_ERROR;
    int rc = parse_route_list(ctx, node, base, &section);
    free(rows);
    return rc;
}

/* Where a route is, for messages: "FILE:LINE:COLUMN: route" when it came
 * from a file. */
static void route_where(const char *file, const struct route *r, char *out, size_t size)
{
    if (file != NULL && r->line > 0)
        snprintf(out, size, "%s:%d:%d: route '%s'", file, r->line, r->column, r->path);
    else
        snprintf(out, size, "route '%s'", r->path);
}

static int unknown_endpoint(const struct config *config, const char *file,
                            const struct route *r, struct err *err)
{
    enum { NAMES_MAX = 64 };
    const char *names[NAMES_MAX];
    size_t count = config->endpoint_count < NAMES_MAX ? config->endpoint_count : NAMES_MAX;
    char at[512];

    for (size_t e = 0; e < count; e++)
        names[e] = config->endpoints[e].name;
    const char *near = cfg_suggest(r->endpoint, names, count);
    route_where(file, r, at, sizeof at);
    if (near != NULL)
        return err_set(err, "%s: endpoint '%.80s' is not one of the endpoints; did you mean "
                            "'%.80s'?", at, r->endpoint, near);
    return err_set(err, "%s: endpoint '%.80s' is not one of the endpoints", at, r->endpoint);
}

int cfg_routes_bind_endpoints(struct config *config, const char *file, struct err *err)
{
    char at[512];

    for (size_t i = 0; i < config->route_count; i++) {
        struct route *r = &config->routes[i];
        r->only_endpoint = NULL;
        if (r->endpoint != NULL) {
            for (size_t e = 0; e < config->endpoint_count; e++)
                if (strcmp(config->endpoints[e].name, r->endpoint) == 0)
                    r->only_endpoint = &config->endpoints[e];
            if (r->only_endpoint == NULL)
                return unknown_endpoint(config, file, r, err);
        }
        if (r->handler == NULL || r->handler->validate == NULL)
            continue;
        route_where(file, r, at, sizeof at);
        if (r->handler->validate(config, r, at, err) != SK_OK)
            return SK_ERROR;
    }
    return SK_OK;
}
