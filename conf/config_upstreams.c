/*
 * config_upstreams.c - the `upstreams` map; see config_upstreams.h.
 */
#include "conf/config_upstreams.h"

#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "conf/config_parse.h"

static int resolve(struct upstream_server_config *s, struct err *why)
{
    const struct url *u = &s->url;
    if (u->host_kind == URL_HOST_UNIX) {
        struct sockaddr_un *un = (struct sockaddr_un *)&s->addr;
        un->sun_family = AF_UNIX;
        memcpy(un->sun_path, u->unix_path, sizeof un->sun_path);
        s->addr_len = sizeof *un;
        return SK_OK;
    }
    if (u->host_kind == URL_HOST_ANY)
        return err_set(why, "url: '%.200s' names every address: give the server's own",
                       s->url_text);
    const char *host = u->host_kind == URL_HOST_LOCALHOST ? "127.0.0.1" : u->host;
    char port[8];
    snprintf(port, sizeof port, "%u", (unsigned)u->port);
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
    int rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0 || res == NULL || res->ai_addrlen > sizeof s->addr)
        return err_set(why, "url: cannot resolve '%.200s': %s", host,
                       rc != 0 ? gai_strerror(rc) : "no address");
    memcpy(&s->addr, res->ai_addr, res->ai_addrlen);
    s->addr_len = res->ai_addrlen;
    freeaddrinfo(res);
    return SK_OK;
}

/* Offset 0: fills the whole server. */
static int parse_server_url(const char *key, const char *text, size_t len, void *field,
                            struct err *why)
{
    struct upstream_server_config *s = field;
    (void)key, (void)len;
    if (url_parse(text, &s->url, why) != SK_OK)
        return SK_ERROR;
    if (s->url.scheme == URL_SCHEME_HTTPS && s->url.host_kind == URL_HOST_UNIX)
        return err_set(why, "url: '%.200s': TLS over a Unix socket is not served", text);
    if ((s->url_text = strdup(text)) == NULL)
        return err_set(why, "out of memory");
    return resolve(s, why);
}

static int parse_weight(const char *key, const char *text, size_t len, void *field,
                        struct err *why)
{
    uint64_t value;
    if (cfg_parse_uint(key, text, len, &value, why) != SK_OK || value < 1 || value > 100)
        return err_set(why, "%s: expected an integer from 1 to 100, got '%.80s'", key, text);
    *(unsigned *)field = (unsigned)value;
    return SK_OK;
}

#define SRV(field) offsetof(struct upstream_server_config, field)
static const struct cfg_option server_options[] = {
    {.name = "url", .offset = 0, .scalar = parse_server_url, .required = true},
    {.name = "weight", .offset = SRV(weight), .scalar = parse_weight, .def = "1"},
};
static const struct cfg_section server_section = {
    server_options, sizeof server_options / sizeof server_options[0], NULL};

/* Base: struct upstream_config. */
static int parse_servers(const struct cfg_ctx *ctx, const yaml_node_t *node, void *base)
{
    struct upstream_config *up = base;
    if (node == NULL)
        return SK_OK; /* `required` reports it */
    if (cfg_expect(ctx, node, YAML_SEQUENCE_NODE, "servers") != SK_OK)
        return SK_ERROR;
    size_t count = (size_t)(node->data.sequence.items.top - node->data.sequence.items.start);
    if (count == 0)
        return cfg_fail(ctx, node, "servers: expected at least one server");
    if ((up->servers = calloc(count, sizeof *up->servers)) == NULL)
        return cfg_fail(ctx, node, "out of memory");
    up->server_count = count;
    for (size_t i = 0; i < count; i++) {
        yaml_node_t *item = cfg_node(ctx, node->data.sequence.items.start[i]);
        if (cfg_expect(ctx, item, YAML_MAPPING_NODE, "servers") != SK_OK ||
            cfg_apply_section(ctx, item, &server_section, &up->servers[i], "server") != SK_OK)
            return SK_ERROR;
    }
    return SK_OK;
}

static int parse_balance(const char *key, const char *text, size_t len, void *field,
                         struct err *why)
{
    static const char *const names[] = {"round_robin", "least_connections", "client_ip_hash",
                                        "random_two_choices"};
    (void)len;
    int i = CFG_CHOICE(key, text, names, why);
    if (i < 0)
        return SK_ERROR;
    *(enum upstream_balance *)field = (enum upstream_balance)i;
    return SK_OK;
}

#define UP(field) offsetof(struct upstream_config, field)
static const struct cfg_option keep_alive_options[] = {
    {.name = "max_idle", .offset = UP(max_idle), .scalar = cfg_parse_uint, .def = "32"},
    {.name = "idle_timeout", .offset = UP(idle_timeout_ms), .scalar = cfg_parse_duration,
     .def = "60s"},
};
static const struct cfg_option timeout_options[] = {
    {.name = "connect", .offset = UP(connect_timeout_ms), .scalar = cfg_parse_duration,
     .def = "5s"},
    {.name = "send", .offset = UP(send_timeout_ms), .scalar = cfg_parse_duration, .def = "60s"},
    {.name = "read", .offset = UP(read_timeout_ms), .scalar = cfg_parse_duration, .def = "60s"},
};
static const struct cfg_option passive_options[] = {
    {.name = "max_fails", .offset = UP(max_fails), .scalar = cfg_parse_uint, .def = "1"},
    {.name = "fail_timeout", .offset = UP(fail_timeout_ms), .scalar = cfg_parse_duration,
     .def = "10s"},
};
#define SECTION(options) {options, sizeof options / sizeof options[0], NULL}
static const struct cfg_section keep_alive_section = SECTION(keep_alive_options);
static const struct cfg_section timeout_section = SECTION(timeout_options);
static const struct cfg_section passive_section = SECTION(passive_options);

static int sub_map(const struct cfg_ctx *ctx, const yaml_node_t *node, void *base,
                   const struct cfg_section *section, const char *what)
{
    if (node != NULL && cfg_expect(ctx, node, YAML_MAPPING_NODE, what) != SK_OK)
        return SK_ERROR;
    return cfg_apply_section(ctx, node, section, base, what);
}

static int parse_keep_alive(const struct cfg_ctx *ctx, const yaml_node_t *node, void *base)
{
    return sub_map(ctx, node, base, &keep_alive_section, "keep_alive");
}

static int parse_timeouts(const struct cfg_ctx *ctx, const yaml_node_t *node, void *base)
{
    int rc = sub_map(ctx, node, base, &timeout_section, "timeouts");
    struct upstream_config *up = base;
    if (rc == SK_OK && (up->connect_timeout_ms == 0 || up->read_timeout_ms == 0 ||
                        up->send_timeout_ms == 0))
        return cfg_fail(ctx, node, "timeouts: expected durations above 0");
    return rc;
}

static int parse_passive(const struct cfg_ctx *ctx, const yaml_node_t *node, void *base)
{
    return sub_map(ctx, node, base, &passive_section, "passive");
}

static int parse_health_path(const char *key, const char *text, size_t len, void *field,
                             struct err *why)
{
    if (text[0] != '/' || strpbrk(text, " \t\r\n") != NULL)
        return err_set(why, "%s: expected a path starting with '/', without spaces, got "
                            "'%.80s'", key, text);
    return cfg_parse_string(key, text, len, field, why);
}

static int parse_health_status(const char *key, const char *text, size_t len, void *field,
                               struct err *why)
{
    if (cfg_parse_uint(key, text, len, field, why) != SK_OK || *(uint64_t *)field < 100 ||
        *(uint64_t *)field > 599)
        return err_set(why, "%s: expected an integer from 100 to 599, got '%.80s'", key, text);
    return SK_OK;
}

static const struct cfg_option health_options[] = {
    {.name = "path", .offset = UP(health_path), .scalar = parse_health_path, .required = true},
    {.name = "interval", .offset = UP(health_interval_ms), .scalar = cfg_parse_duration,
     .def = "2s"},
    {.name = "timeout", .offset = UP(health_timeout_ms), .scalar = cfg_parse_duration,
     .def = "1s"},
    {.name = "rise", .offset = UP(health_rise), .scalar = cfg_parse_positive, .def = "2"},
    {.name = "fall", .offset = UP(health_fall), .scalar = cfg_parse_positive, .def = "3"},
    {.name = "expect_status", .offset = UP(health_status), .scalar = parse_health_status,
     .def = "200"},
};
static const struct cfg_section health_section = SECTION(health_options);

static int parse_health(const struct cfg_ctx *ctx, const yaml_node_t *node, void *base)
{
    struct upstream_config *up = base;
    if (node == NULL)
        return SK_OK;
    if (sub_map(ctx, node, base, &health_section, "health_check") != SK_OK)
        return SK_ERROR;
    if (up->health_interval_ms == 0 || up->health_timeout_ms == 0)
        return cfg_fail(ctx, node, "health_check: expected interval and timeout above 0");
    return SK_OK;
}

static int parse_proxy_protocol(const char *key, const char *text, size_t len, void *field,
                                struct err *why)
{
    static const char *const names[] = {"none", "v1", "v2"};
    (void)len;
    int i = CFG_CHOICE(key, text, names, why);
    if (i < 0)
        return SK_ERROR;
    *(int *)field = i;
    return SK_OK;
}

static const struct cfg_option tls_options[] = {
    {.name = "ca_file", .offset = UP(tls_ca_file), .scalar = cfg_parse_string},
    {.name = "certificate", .offset = UP(tls_certificate), .scalar = cfg_parse_string},
    {.name = "key", .offset = UP(tls_key), .scalar = cfg_parse_string},
    {.name = "server_name", .offset = UP(tls_server_name), .scalar = cfg_parse_string},
    {.name = "verify", .offset = UP(tls_verify), .scalar = cfg_parse_bool, .def = "true"},
};
static const struct cfg_section tls_section = SECTION(tls_options);

static int parse_tls(const struct cfg_ctx *ctx, const yaml_node_t *node, void *base)
{
    return sub_map(ctx, node, base, &tls_section, "tls");
}

static const struct cfg_option upstream_options[] = {
    {.name = "servers", .node = parse_servers, .required = true},
    {.name = "balance", .offset = UP(balance), .scalar = parse_balance, .def = "round_robin"},
    {.name = "keep_alive", .node = parse_keep_alive},
    {.name = "timeouts", .node = parse_timeouts},
    {.name = "passive", .node = parse_passive},
    {.name = "retries", .offset = UP(retries), .scalar = cfg_parse_uint, .def = "1"},
    {.name = "health_check", .node = parse_health},
    {.name = "tls", .node = parse_tls},
    {.name = "proxy_protocol", .offset = UP(proxy_protocol), .scalar = parse_proxy_protocol,
     .def = "none"},
};
static const struct cfg_section upstream_section = SECTION(upstream_options);

int cfg_parse_upstreams(const struct cfg_ctx *ctx, const yaml_node_t *node, void *base)
{
    struct config *config = base;
    if (node == NULL)
        return SK_OK;
    if (cfg_expect(ctx, node, YAML_MAPPING_NODE, "upstreams") != SK_OK ||
        cfg_check_keys(ctx, node) != SK_OK)
        return SK_ERROR;
    size_t count = (size_t)(node->data.mapping.pairs.top - node->data.mapping.pairs.start);
    if (count > 0 && (config->upstreams = calloc(count, sizeof *config->upstreams)) == NULL)
        return cfg_fail(ctx, node, "out of memory");
    config->upstream_count = count;
    for (size_t i = 0; i < count; i++) {
        const yaml_node_pair_t *pair = node->data.mapping.pairs.start + i;
        yaml_node_t *key = cfg_node(ctx, pair->key), *value = cfg_node(ctx, pair->value);
        struct upstream_config *up = &config->upstreams[i];
        char what[128];
        if ((up->name = cfg_strdup(ctx, key, (const char *)key->data.scalar.value)) == NULL)
            return SK_ERROR;
        snprintf(what, sizeof what, "upstream '%.80s'", up->name);
        if (cfg_expect(ctx, value, YAML_MAPPING_NODE, what) != SK_OK ||
            cfg_apply_section(ctx, value, &upstream_section, up, what) != SK_OK)
            return SK_ERROR;
    }
    return SK_OK;
}

long config_upstream_find(const struct config *config, const char *name)
{
    for (size_t i = 0; i < config->upstream_count; i++)
        if (strcmp(config->upstreams[i].name, name) == 0)
            return (long)i;
    return -1;
}

void cfg_upstreams_free(struct upstream_config *upstreams, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        for (size_t j = 0; j < upstreams[i].server_count; j++)
            free(upstreams[i].servers[j].url_text);
        free(upstreams[i].servers);
        free(upstreams[i].name);
        free(upstreams[i].health_path);
        free(upstreams[i].tls_ca_file);
        free(upstreams[i].tls_certificate);
        free(upstreams[i].tls_key);
        free(upstreams[i].tls_server_name);
    }
    free(upstreams);
}
