/*
 * route_proxy.c - the options of `proxy:`; see route_proxy.h.
 */
#include "conf/route_proxy.h"

#include <stdlib.h>
#include <string.h>

#include "conf/config_parse.h"
#include "conf/config_upstreams.h"

static int parse_forwarded(const char *key, const char *text, size_t len, void *field,
                           struct err *why)
{
    static const char *const names[] = {"x_forwarded", "rfc7239", "none"};
    (void)len;
    int i = CFG_CHOICE(key, text, names, why);
    if (i < 0)
        return SK_ERROR;
    *(enum proxy_forwarded *)field = (enum proxy_forwarded)i;
    return SK_OK;
}

/* false, true (ROUTE_PROXY_BUFFER_DEFAULT) or a size; 0 is false. */
static int parse_buffer_body(const char *key, const char *text, size_t len, void *field,
                             struct err *why)
{
    bool on;
    if (cfg_parse_bool(key, text, len, &on, why) == SK_OK) {
        *(uint64_t *)field = on ? ROUTE_PROXY_BUFFER_DEFAULT : 0;
        return SK_OK;
    }
    if (cfg_parse_size(key, text, len, field, why) == SK_OK)
        return SK_OK;
    return err_set(why, "%s: expected true, false or a size (1m), got '%.80s'", key, text);
}

/* Base: struct route_proxy. */
static int parse_trusted(const struct cfg_ctx *ctx, const yaml_node_t *node, void *base)
{
    struct route_proxy *px = base;
    return cfg_parse_cidr_list(ctx, node, "trusted_proxies", &px->trusted, &px->trusted_count);
}

static const char *const var_names[] = {
    [PROXY_VAR_MSEC] = "msec",     [PROXY_VAR_REMOTE_ADDR] = "remote_addr",
    [PROXY_VAR_REMOTE_PORT] = "remote_port", [PROXY_VAR_SCHEME] = "scheme",
    [PROXY_VAR_HOST] = "host",
};

size_t route_proxy_var_next(const char *value, size_t len, size_t from,
                            enum route_proxy_var *var, size_t *ref_len)
{
    for (size_t i = from; i + 1 < len; i++) {
        if (value[i] != '$' || value[i + 1] != '{')
            continue;
        const char *close = memchr(value + i + 2, '}', len - i - 2);
        *var = PROXY_VAR_UNKNOWN;
        *ref_len = close != NULL ? (size_t)(close - (value + i)) + 1 : len - i;
        size_t name_len = *ref_len - 3;
        for (size_t v = 0; close != NULL && v < PROXY_VAR_UNKNOWN; v++)
            if (strlen(var_names[v]) == name_len &&
                memcmp(var_names[v], value + i + 2, name_len) == 0)
                *var = (enum route_proxy_var)v;
        return i;
    }
    return len;
}

/* Where in the file offset `off` of a scalar's value lies: exact for a
 * value on one line (a quoted one's opening quote counted). */
static yaml_node_t value_at(const yaml_node_t *node, size_t off)
{
    yaml_node_t at = *node;
    if (node->start_mark.line == node->end_mark.line)
        at.start_mark.column +=
            off + (node->data.scalar.style == YAML_PLAIN_SCALAR_STYLE ? 0 : 1);
    return at;
}

/* Every ${...} in the header values is one saker knows. */
static int check_header_vars(const struct cfg_ctx *ctx, const yaml_node_t *map,
                             struct route_proxy *px)
{
    for (size_t i = 0; i < px->header_count; i++) {
        const struct config_header *h = &px->headers[i];
        enum route_proxy_var var;
        size_t ref, at = route_proxy_var_next(h->value, h->value_len, 0, &var, &ref);
        for (; at < h->value_len;
             at = route_proxy_var_next(h->value, h->value_len, at + ref, &var, &ref)) {
            px->header_vars = true;
            if (var != PROXY_VAR_UNKNOWN)
                continue;
            yaml_node_t node = value_at(cfg_node(ctx, map->data.mapping.pairs.start[i].value), at);
            return cfg_fail(ctx, &node,
                            "header '%.80s': unknown variable '%.*s' (known: ${msec}, "
                            "${remote_addr}, ${remote_port}, ${scheme}, ${host})",
                            h->name, (int)(ref > 40 ? 40 : ref), h->value + at);
        }
    }
    return SK_OK;
}

static int parse_headers(const struct cfg_ctx *ctx, const yaml_node_t *node, void *base)
{
    static const char *const refuse[] = {"Host", "Upgrade", "Forwarded", "X-Forwarded-For",
                                         "X-Forwarded-Proto", "X-Forwarded-Host", "Via",
                                         "Keep-Alive", "Proxy-Connection", "TE", "Trailer",
                                         NULL};
    struct route_proxy *px = base;
    if (cfg_parse_header_map(ctx, node, &px->headers, &px->header_count, refuse,
                             "is set by the proxy (see 'host', 'forwarded' and 'via')") != SK_OK)
        return SK_ERROR;
    return node != NULL ? check_header_vars(ctx, node, px) : SK_OK;
}

#define PX(field) offsetof(struct route_proxy, field)
static const struct cfg_option proxy_options[] = {
    {.name = "upstream", .offset = PX(upstream_name), .scalar = cfg_parse_string,
     .required = true},
    {.name = "strip_prefix", .offset = PX(strip_prefix), .scalar = cfg_parse_bool,
     .def = "false"},
    {.name = "forwarded", .offset = PX(forwarded), .scalar = parse_forwarded,
     .def = "x_forwarded"},
    {.name = "trusted_proxies", .node = parse_trusted},
    {.name = "host", .offset = PX(host), .scalar = cfg_parse_string},
    {.name = "via", .offset = PX(via), .scalar = cfg_parse_bool, .def = "false"},
    {.name = "websocket", .offset = PX(websocket), .scalar = cfg_parse_bool, .def = "true"},
    {.name = "headers", .node = parse_headers},
    {.name = "buffer_request_body", .offset = PX(buffer_request_body),
     .scalar = parse_buffer_body, .def = "false"},
};

static const struct cfg_section proxy_section = {
    proxy_options, sizeof proxy_options / sizeof proxy_options[0], NULL};

static int proxy_validate(const struct config *config, const struct route *route,
                          const char *where, struct err *err)
{
    struct route_proxy *px = route->handler_config;
    long i = config_upstream_find(config, px->upstream_name);
    if (i < 0)
        return err_set(err, "%s: proxy: no upstream named '%.80s' under 'upstreams'", where,
                       px->upstream_name);
    px->upstream_index = (size_t)i;
    return SK_OK;
}

static void proxy_release(void *handler_config)
{
    struct route_proxy *px = handler_config;
    free(px->upstream_name);
    free(px->trusted);
    free(px->host);
    cfg_headers_free(px->headers, px->header_count);
}

const struct handler_schema route_proxy_schema = {
    .name = "proxy",
    .section = &proxy_section,
    .config_size = sizeof(struct route_proxy),
    .validate = proxy_validate,
    .release = proxy_release,
};
