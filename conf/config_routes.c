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
 *
 * Everything a worker would otherwise discover per request is settled
 * here, once: host names are lower-cased (Host is case-insensitive, RFC
 * 9110 section 4.2.3), a trailing '/' is dropped from the prefix, header
 * names and values are checked so a fixed response can never split, a
 * static root must be a directory when the config is loaded, a route's
 * endpoint must exist, and a redirect to https:// can never answer a
 * request that came over https:// (it would redirect to itself forever).
 */
#include "conf/config_parse.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

/* RFC 9110 section 5.6.2: token = 1*tchar. */
static bool is_token(const char *text)
{
    if (*text == '\0')
        return false;
    for (; *text; text++)
        if (!isalnum((unsigned char)*text) && !strchr("!#$%&'*+-.^_`|~", *text))
            return false;
    return true;
}

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

static int parse_status(const char *key, const char *text, size_t len, void *field,
                        struct err *why)
{
    uint64_t value;

    if (cfg_parse_uint(key, text, len, &value, why) != SK_OK || value < 100 || value > 599)
        return err_set(why, "%s: expected an integer from 100 to 599, got '%.80s'", key,
                       text);
    *(int *)field = (int)value;
    return SK_OK;
}

/* Offset 0: fills ret->body and ret->body_len; the body may hold NULs. */
static int parse_body(const char *key, const char *text, size_t len, void *field,
                      struct err *why)
{
    struct route_return *ret = field;

    (void)key;
    if ((ret->body = malloc(len + 1)) == NULL)
        return err_set(why, "out of memory");
    memcpy(ret->body, text, len);
    ret->body[len] = '\0';
    ret->body_len = len;
    return SK_OK;
}

int cfg_check_static_root(const char *root, struct err *why)
{
    struct stat st;

    if (stat(root, &st) != 0)
        return err_set_errno(why, errno, "static root '%.200s'", root);
    if (!S_ISDIR(st.st_mode))
        return err_set_errno(why, ENOTDIR, "static root '%.200s'", root);
    return SK_OK;
}

static int parse_root(const char *key, const char *text, size_t len, void *field,
                      struct err *why)
{
    if (cfg_check_static_root(text, why) != SK_OK)
        return SK_ERROR;
    return cfg_parse_string(key, text, len, field, why);
}

static int parse_index(const char *key, const char *text, size_t len, void *field,
                       struct err *why)
{
    (void)len;
    if (strchr(text, '/') || strcmp(text, ".") == 0 || strcmp(text, "..") == 0)
        return err_set(why, "%s: expected a file name without '/', got '%.80s'", key, text);
    return cfg_parse_string(key, text, len, field, why);
}

/* The worker computes these from the body and the connection; a fixed
 * value could contradict the body and desynchronise the client. */
static bool is_framing_header(const char *name)
{
    return strcasecmp(name, "Content-Length") == 0 ||
           strcasecmp(name, "Transfer-Encoding") == 0 || strcasecmp(name, "Connection") == 0;
}

static int parse_header(const struct cfg_ctx *ctx, const yaml_node_pair_t *pair,
                        struct config_header *header)
{
    yaml_node_t *key = cfg_node(ctx, pair->key), *value = cfg_node(ctx, pair->value);
    const char *name = (const char *)key->data.scalar.value;
    const char *text = cfg_is_null(value) ? "" : (const char *)value->data.scalar.value;

    if (!is_token(name))
        return cfg_fail(ctx, key, "header name '%.80s' is not an HTTP token", name);
    if (is_framing_header(name))
        return cfg_fail(ctx, key, "header '%.80s' is set by the server; remove it", name);
    if (!cfg_is_null(value)) {
        if (cfg_expect(ctx, value, YAML_SCALAR_NODE, name) != SK_OK)
            return SK_ERROR;
        /* RFC 9110 section 5.5: CR, LF and NUL are never valid in a value. */
        if (strlen(text) != value->data.scalar.length || strpbrk(text, "\r\n"))
            return cfg_fail(ctx, value, "header '%.80s': the value contains CR, LF or NUL",
                            name);
    }
    header->name = cfg_strdup(ctx, key, name);
    header->value = cfg_strdup(ctx, value, text);
    header->name_len = strlen(name);
    header->value_len = strlen(text);
    return header->name && header->value ? SK_OK : SK_ERROR;
}

/* A `headers:` map, in the order written. refuse: names that may not be
 * set there besides the framing ones (NULL-ended), and why. */
static int parse_header_map(const struct cfg_ctx *ctx, const yaml_node_t *node,
                            struct config_header **headers, size_t *header_count,
                            const char *const *refuse, const char *why)
{
    if (node == NULL)
        return SK_OK;
    if (cfg_expect(ctx, node, YAML_MAPPING_NODE, "headers") != SK_OK ||
        cfg_check_keys(ctx, node) != SK_OK)
        return SK_ERROR;
    size_t count = (size_t)(node->data.mapping.pairs.top - node->data.mapping.pairs.start);
    if (count == 0)
        return SK_OK;
    if ((*headers = calloc(count, sizeof **headers)) == NULL)
        return cfg_fail(ctx, node, "out of memory");
    *header_count = count;
    for (size_t i = 0; i < count; i++) {
        const yaml_node_pair_t *pair = node->data.mapping.pairs.start + i;
        yaml_node_t *key = cfg_node(ctx, pair->key);
        const char *name = (const char *)key->data.scalar.value;
        for (const char *const *r = refuse; r != NULL && *r != NULL; r++)
            if (strcasecmp(name, *r) == 0)
                return cfg_fail(ctx, key, "header '%.80s' %s", name, why);
        if (parse_header(ctx, pair, &(*headers)[i]) != SK_OK)
            return SK_ERROR;
    }
    return SK_OK;
}

/* Base: struct route_return. */
static int parse_headers(const struct cfg_ctx *ctx, const yaml_node_t *node, void *base)
{
    struct route_return *ret = base;
    return parse_header_map(ctx, node, &ret->headers, &ret->header_count, NULL, NULL);
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
    return parse_header_map(ctx, node, &route->headers, &route->header_count,
                            handler_set_headers,
                            "is set by the handler or the server (HSTS: the endpoint's 'hsts')");
}

static const struct cfg_option return_options[] = {
    {.name = "status", .offset = offsetof(struct route_return, status),
     .scalar = parse_status, .required = true},
    {.name = "headers", .node = parse_headers},
    {.name = "body", .offset = 0, .scalar = parse_body, .def = "", .binary = true},
};

static const struct cfg_section return_section = {
    return_options, sizeof return_options / sizeof return_options[0], NULL};

static const struct cfg_option static_options[] = {
    {.name = "root", .offset = offsetof(struct route_static, root), .scalar = parse_root,
     .required = true},
    {.name = "index", .offset = offsetof(struct route_static, index),
     .scalar = parse_index, .def = "index.html"},
};

static const struct cfg_section static_section = {
    static_options, sizeof static_options / sizeof static_options[0], NULL};

/* Base: struct route. NULL: this handler is not the route's (the route's
 * check has made sure exactly one handler key is present and not null). */
static int apply_handler(const struct cfg_ctx *ctx, const yaml_node_t *node, struct route *route,
                         enum route_handler kind, const char *name,
                         const struct cfg_section *section, void *fields)
{
    if (node == NULL)
        return SK_OK;
    route->handler = kind;
    if (cfg_expect(ctx, node, YAML_MAPPING_NODE, name) != SK_OK)
        return SK_ERROR;
    return cfg_apply_section(ctx, node, section, fields, name);
}

static int parse_return(const struct cfg_ctx *ctx, const yaml_node_t *node, void *base)
{
    struct route *route = base;
    return apply_handler(ctx, node, route, ROUTE_RETURN, "return", &return_section, &route->ret);
}

static int parse_static(const struct cfg_ctx *ctx, const yaml_node_t *node, void *base)
{
    struct route *route = base;
    return apply_handler(ctx, node, route, ROUTE_STATIC, "static", &static_section,
                         &route->files);
}

static int parse_status_kind(const char *key, const char *text, size_t len, void *field,
                             struct err *why)
{
    static const char *const kinds[] = {"liveness", "readiness", "metrics"}; /* enum order */
    int i = CFG_CHOICE(key, text, kinds, why);

    (void)len;
    if (i < 0)
        return SK_ERROR;
    *(enum route_status_kind *)field = (enum route_status_kind)i;
    return SK_OK;
}

static const struct cfg_option status_options[] = {
    {.name = "kind", .offset = offsetof(struct route_status, kind), .scalar = parse_status_kind,
     .required = true},
};

static const struct cfg_section status_section = {
    status_options, sizeof status_options / sizeof status_options[0], NULL};

static int parse_status_route(const struct cfg_ctx *ctx, const yaml_node_t *node, void *base)
{
    struct route *route = base;
    return apply_handler(ctx, node, route, ROUTE_STATUS, "status", &status_section,
                         &route->status);
}

static int parse_redirect_port(const char *key, const char *text, size_t len, void *field,
                               struct err *why)
{
    uint64_t value;

    if (cfg_parse_uint(key, text, len, &value, why) != SK_OK || value < 1 || value > 65535)
        return err_set(why, "%s: expected a port from 1 to 65535, got '%.80s'", key, text);
    *(unsigned *)field = (unsigned)value;
    return SK_OK;
}

static int parse_redirect_status(const char *key, const char *text, size_t len, void *field,
                                 struct err *why)
{
    static const char *const statuses[] = {"301", "302", "303", "307", "308"};
    static const int values[] = {301, 302, 303, 307, 308};
    int i = CFG_CHOICE(key, text, statuses, why);

    (void)len;
    if (i < 0)
        return SK_ERROR;
    *(int *)field = values[i];
    return SK_OK;
}

static const struct cfg_option redirect_options[] = {
    {.name = "port", .offset = offsetof(struct route_redirect_https, port),
     .scalar = parse_redirect_port, .def = "443"},
    {.name = "status", .offset = offsetof(struct route_redirect_https, status),
     .scalar = parse_redirect_status, .def = "308"},
};

static const struct cfg_section redirect_section = {
    redirect_options, sizeof redirect_options / sizeof redirect_options[0], NULL};

static int parse_redirect_route(const struct cfg_ctx *ctx, const yaml_node_t *node, void *base)
{
    struct route *route = base;
    return apply_handler(ctx, node, route, ROUTE_REDIRECT_HTTPS, "redirect_https",
                         &redirect_section, &route->redirect);
}

static const char *const handler_names[] = {"return", "static", "status", "redirect_https"};
#define HANDLER_COUNT (sizeof handler_names / sizeof handler_names[0])

static bool is_handler_name(const char *name)
{
    for (size_t i = 0; i < HANDLER_COUNT; i++)
        if (strcmp(name, handler_names[i]) == 0)
            return true;
    return false;
}

/* Exactly one handler per route: two would leave which one runs to the
 * reader's guess. */
static int check_handler(const struct cfg_ctx *ctx, const yaml_node_t *map)
{
    const yaml_node_t *first = NULL, *headers = NULL;

    for (const yaml_node_pair_t *p = map->data.mapping.pairs.start;
         p < map->data.mapping.pairs.top; p++) {
        yaml_node_t *key = cfg_node(ctx, p->key), *value = cfg_node(ctx, p->value);
        const char *name = (const char *)key->data.scalar.value;
        if (strcmp(name, "headers") == 0)
            headers = key;
        if (!is_handler_name(name))
            continue;
        if (cfg_is_null(value))
            return cfg_fail(ctx, value, "%s: expected a mapping, got null", name);
        if (first != NULL)
            return cfg_fail(ctx, key, "route: has both '%s' and '%s'; keep one handler",
                            (const char *)first->data.scalar.value, name);
        first = key;
    }
    if (first == NULL)
        return cfg_fail(ctx, map, "route: no handler: add 'return', 'static', 'status' or "
                                  "'redirect_https'");
    if (headers != NULL && strcmp((const char *)first->data.scalar.value, "return") == 0)
        return cfg_fail(ctx, headers, "route: a 'return' route's headers go in return.headers");
    return SK_OK;
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

static const struct cfg_option route_options[] = {
    {.name = "endpoint", .offset = offsetof(struct route, endpoint), .scalar = cfg_parse_string},
    {.name = "headers", .node = parse_route_headers},
    {.name = "host", .offset = offsetof(struct route, host), .scalar = parse_host},
    {.name = "max_request_body_size", .offset = 0, .scalar = parse_body_limit},
    {.name = "path", .offset = 0, .scalar = parse_path, .required = true},
    {.name = "redirect_https", .node = parse_redirect_route},
    {.name = "return", .node = parse_return},
    {.name = "static", .node = parse_static},
    {.name = "status", .node = parse_status_route},
};

static const struct cfg_section route_section = {
    route_options, sizeof route_options / sizeof route_options[0], check_handler};

void cfg_route_free(struct route *route)
{
    free(route->endpoint);
    free(route->host);
    free(route->path);
    for (size_t i = 0; i < route->header_count; i++) {
        free(route->headers[i].name);
        free(route->headers[i].value);
    }
    free(route->headers);
    if (route->handler == ROUTE_STATUS || route->handler == ROUTE_REDIRECT_HTTPS)
        return;
    if (route->handler == ROUTE_STATIC) {
        free(route->files.root);
        free(route->files.index);
        return;
    }
    for (size_t i = 0; i < route->ret.header_count; i++) {
        free(route->ret.headers[i].name);
        free(route->ret.headers[i].value);
    }
    free(route->ret.headers);
    free(route->ret.body);
}

int cfg_parse_routes(const struct cfg_ctx *ctx, const yaml_node_t *node, void *base)
{
    struct config *config = base;

    if (node == NULL)
        return SK_OK; /* no routes: every request is a 404 */
    if (cfg_expect(ctx, node, YAML_SEQUENCE_NODE, "routes") != SK_OK)
        return SK_ERROR;
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
            cfg_apply_section(ctx, item, &route_section, route, "route") != SK_OK)
            return SK_ERROR;
    }
    return SK_OK;
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
        if (r->handler != ROUTE_REDIRECT_HTTPS)
            continue;
        for (size_t e = 0; e < config->endpoint_count; e++) {
            const struct endpoint *ep = &config->endpoints[e];
            if (ep->url.scheme != URL_SCHEME_HTTPS ||
                (r->only_endpoint != NULL && r->only_endpoint != ep))
                continue;
            route_where(file, r, at, sizeof at);
            return err_set(err, "%s: redirect_https would answer https:// endpoint '%.80s' "
                                "with a redirect to itself: add 'endpoint:' naming the "
                                "http:// endpoint it is for", at, ep->name);
        }
    }
    return SK_OK;
}
