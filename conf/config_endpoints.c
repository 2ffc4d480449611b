/*
 * config_endpoints.c - the `endpoints` map and --urls; see config.h.
 *
 *   endpoints:
 *     public: { url: http://0.0.0.0:8080 }
 *     local:  { url: unix:/run/saker/saker.sock }
 *
 * Names are the operator's (as in Kestrel's Endpoints section) and keep
 * file order, which is the order listeners are reported in. Two endpoints
 * on one address are refused here, at load, rather than found as EADDRINUSE
 * by the master half-way through a reload.
 */
#include "conf/cidr.h"
#include "conf/config_parse.h"
#include "conf/config_tls.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Offset 0: the parser fills the whole endpoint (url_text and url). */
static int parse_url(const char *key, const char *text, size_t len, void *field,
                     struct err *why)
{
    struct endpoint *endpoint = field;

    (void)key;
    (void)len;
    if (url_parse(text, &endpoint->url, why) != SK_OK)
        return SK_ERROR;
    endpoint->url_text = strdup(text);
    return endpoint->url_text ? SK_OK : err_set(why, "out of memory");
}

/* Only remembered here: the top-level limits may come later in the file,
 * so the map is applied once everything is read (cfg_endpoints_apply_limits). */
static int note_limits(const struct cfg_ctx *ctx, const yaml_node_t *node, void *base)
{
    struct endpoint *endpoint = base;

    if (node == NULL)
        return SK_OK;
    if (cfg_expect(ctx, node, YAML_MAPPING_NODE, "limits") != SK_OK)
        return SK_ERROR;
    endpoint->limits_node = (int)(node - ctx->doc->nodes.start) + 1;
    return SK_OK;
}

#define ENDPOINT(field) offsetof(struct endpoint, field)

/* Base: struct endpoint. */
static int parse_trusted_sources(const struct cfg_ctx *ctx, const yaml_node_t *node, void *base)
{
    struct endpoint *endpoint = base;
    return cfg_parse_cidr_list(ctx, node, "trusted_sources", &endpoint->trusted_sources,
                               &endpoint->trusted_source_count);
}

/* PROXY protocol headers are believed only from the peers named. */
static int check_proxy_protocol(const struct cfg_ctx *ctx, const yaml_node_t *map)
{
    const yaml_node_t *pp = cfg_lookup(ctx, map, "proxy_protocol");
    const yaml_node_t *ts = cfg_lookup(ctx, map, "trusted_sources");
    bool on = pp != NULL && pp->type == YAML_SCALAR_NODE &&
              !cfg_is_off((const char *)pp->data.scalar.value);
    if (on && ts == NULL)
        return cfg_fail(ctx, pp, "proxy_protocol: needs trusted_sources, the addresses of "
                                 "the proxies allowed to send it (e.g. [127.0.0.1, 10.0.0.0/8])");
    if (!on && ts != NULL)
        return cfg_fail(ctx, ts, "trusted_sources: only with proxy_protocol: true");
    return SK_OK;
}

static const struct cfg_option endpoint_options[] = {
    {.name = "url", .offset = 0, .scalar = parse_url, .required = true},
    {.name = "limits", .node = note_limits},
    {.name = "access_log", .offset = ENDPOINT(access_log), .scalar = cfg_parse_bool,
     .def = "true"},
    {.name = "connection_logging", .offset = ENDPOINT(connection_logging),
     .scalar = cfg_parse_bool, .def = "false"},
    {.name = "protocols", .offset = ENDPOINT(protocols), .scalar = cfg_tls_parse_protocols,
     .def = "http1_and_http2"},
    {.name = "certificate", .node = cfg_tls_endpoint_certificate},
    {.name = "sni", .node = cfg_tls_endpoint_sni},
    {.name = "sni_unknown", .offset = ENDPOINT(tls.sni_unknown),
     .scalar = cfg_tls_parse_sni_unknown, .def = "default"},
    {.name = "tls", .node = cfg_tls_endpoint_policy},
    {.name = "client_certificate", .node = cfg_tls_endpoint_client},
    {.name = "hsts", .node = cfg_tls_endpoint_hsts},
    {.name = "proxy_protocol", .offset = ENDPOINT(proxy_protocol), .scalar = cfg_parse_bool,
     .def = "false"},
    {.name = "trusted_sources", .node = parse_trusted_sources},
};

static const struct cfg_section endpoint_section = {
    endpoint_options, sizeof endpoint_options / sizeof endpoint_options[0],
    check_proxy_protocol};

bool cfg_same_address(const struct url *a, const struct url *b)
{
    if (a->host_kind != b->host_kind)
        return false;
    if (a->host_kind == URL_HOST_UNIX)
        return strcmp(a->unix_path, b->unix_path) == 0;
    if (a->port != b->port || a->port == 0)
        return false;
    return a->host_kind == URL_HOST_ANY || a->host_kind == URL_HOST_LOCALHOST ||
           strcasecmp(a->host, b->host) == 0;
}

static int parse_endpoint(const struct cfg_ctx *ctx, const yaml_node_pair_t *pair,
                          struct config *config, size_t index)
{
    struct endpoint *endpoint = &config->endpoints[index];
    yaml_node_t *key = cfg_node(ctx, pair->key), *value = cfg_node(ctx, pair->value);
    char what[128];

    endpoint->name = cfg_strdup(ctx, key, (const char *)key->data.scalar.value);
    if (endpoint->name == NULL)
        return SK_ERROR;
    snprintf(what, sizeof what, "endpoint '%.80s'", endpoint->name);
    if (cfg_expect(ctx, value, YAML_MAPPING_NODE, what) != SK_OK ||
        cfg_apply_section(ctx, value, &endpoint_section, endpoint, what) != SK_OK)
        return SK_ERROR;
    for (size_t i = 0; i < index; i++)
        if (cfg_same_address(&config->endpoints[i].url, &endpoint->url))
            return cfg_fail(ctx, cfg_lookup(ctx, value, "url"),
                            "%s: URL '%.200s' binds the same address as endpoint '%.80s'",
                            what, endpoint->url_text, config->endpoints[i].name);
    return SK_OK;
}

int cfg_parse_endpoints(const struct cfg_ctx *ctx, const yaml_node_t *node, void *base)
{
    struct config *config = base;

    if (node == NULL)
        return SK_OK; /* the loader reports a config without endpoints */
    if (cfg_expect(ctx, node, YAML_MAPPING_NODE, "endpoints") != SK_OK ||
        cfg_check_keys(ctx, node) != SK_OK)
        return SK_ERROR;
    size_t count = (size_t)(node->data.mapping.pairs.top - node->data.mapping.pairs.start);
    if (count == 0)
        return cfg_fail(ctx, node, "no endpoints: add one under 'endpoints'");
    config->endpoints = calloc(count, sizeof *config->endpoints);
    if (config->endpoints == NULL)
        return cfg_fail(ctx, node, "out of memory");
    config->endpoint_count = count;
    for (size_t i = 0; i < count; i++)
        if (parse_endpoint(ctx, node->data.mapping.pairs.start + i, config, i) != SK_OK)
            return SK_ERROR;
    return SK_OK;
}

int cfg_endpoints_apply_limits(const struct cfg_ctx *ctx, struct config *config)
{
    for (size_t i = 0; i < config->endpoint_count; i++) {
        struct endpoint *endpoint = &config->endpoints[i];
        char what[128];
        endpoint->limits = config->limits;
        if (endpoint->limits_node == 0)
            continue;
        snprintf(what, sizeof what, "endpoint '%.80s' limits", endpoint->name);
        if (cfg_apply_limits(ctx, cfg_node(ctx, endpoint->limits_node), &endpoint->limits,
                             what) != SK_OK)
            return SK_ERROR;
        endpoint->limits_node = 0; /* the document is gone after loading */
    }
    return SK_OK;
}

void cfg_endpoints_free(struct endpoint *endpoints, size_t count)
{
    for (size_t i = 0; endpoints != NULL && i < count; i++) {
        free(endpoints[i].name);
        free(endpoints[i].url_text);
        cfg_tls_endpoint_free(&endpoints[i].tls);
        free(endpoints[i].trusted_sources);
    }
    free(endpoints);
}

/* One item of --urls, spaces around it already trimmed. */
static int add_url(const struct config *config, struct endpoint *list, size_t index,
                   const char *item, size_t len, struct err *err)
{
    struct endpoint *endpoint = &list[index];
    char name[32];

    endpoint->limits = config->limits;
    endpoint->access_log = true;
    snprintf(name, sizeof name, "url%zu", index);
    endpoint->name = strdup(name);
    endpoint->url_text = strndup(item, len);
    if (endpoint->name == NULL || endpoint->url_text == NULL)
        return err_set(err, "out of memory");
    if (url_parse(endpoint->url_text, &endpoint->url, err) != SK_OK)
        return SK_ERROR;
    for (size_t i = 0; i < index; i++)
        if (cfg_same_address(&list[i].url, &endpoint->url))
            return err_set(err, "URL '%.200s' binds the same address as '%.200s'",
                           endpoint->url_text, list[i].url_text);
    return SK_OK;
}

static int parse_url_list(const struct config *config, const char *urls,
                          struct endpoint *list, size_t *count, struct err *err)
{
    size_t n = 0;

    for (const char *p = urls; *p != '\0';) {
        size_t len = strcspn(p, ";");
        const char *item = p;
        p += len + (p[len] == ';');
        while (len > 0 && (*item == ' ' || *item == '\t'))
            item++, len--;
        while (len > 0 && (item[len - 1] == ' ' || item[len - 1] == '\t'))
            len--;
        if (len == 0)
            continue;
        *count = n + 1; /* so the caller frees the item even if it fails */
        if (add_url(config, list, n++, item, len, err) != SK_OK)
            return SK_ERROR;
    }
    if (n == 0)
        return err_set(err, "no URLs in '%.200s'", urls);
    return SK_OK;
}

int config_override_urls(struct config *config, const char *urls, struct err *err)
{
    size_t bound = 1, count = 0;

    if (urls == NULL)
        return err_set(err, "no URLs given");
    for (const char *p = urls; *p; p++)
        bound += *p == ';';
    struct endpoint *list = calloc(bound, sizeof *list);
    if (list == NULL)
        return err_set(err, "out of memory");
    if (parse_url_list(config, urls, list, &count, err) != SK_OK) {
        cfg_endpoints_free(list, count);
        return SK_ERROR;
    }
    cfg_endpoints_free(config->endpoints, config->endpoint_count);
    config->endpoints = list;
    config->endpoint_count = count;
    if (cfg_routes_bind_endpoints(config, config->file, err) != SK_OK) {
        size_t used = strlen(err->message);
        snprintf(err->message + used, sizeof err->message - used,
                 " (--urls replaced the file's endpoints)");
        return SK_ERROR;
    }
    return SK_OK;
}
