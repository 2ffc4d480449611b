/*
 * config_load.c - loading the YAML config; the top-level and `limits`
 * option tables; the built-in default; config_free. See config.h.
 *
 * The file is read whole and parsed into a libyaml document, then walked
 * with the option tables of config_parse.h. Nothing is bound, opened or
 * created here (apart from stat() on static roots): checking a config must
 * never disturb a running instance, unlike `nginx -t` once did.
 */
#include "conf/config.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "conf/config_parse.h"
#include "conf/config_upstreams.h"
#include "conf/config_tls.h"
#include "conf/route_static.h"

/* A config file is a few kilobytes; this only stops a mistaken path (a
 * log, a disk image) from being read into memory. */
#define CONFIG_FILE_MAX (16u << 20)

static int parse_workers(const char *key, const char *text, size_t len, void *field,
                         struct err *why)
{
    unsigned *workers = field;
    uint64_t value;

    if (strcmp(text, "auto") == 0) {
        long online = sysconf(_SC_NPROCESSORS_ONLN);
        *workers = online < 1 ? 1 : online > CONFIG_MAX_WORKERS ? CONFIG_MAX_WORKERS
                                                                : (unsigned)online;
        return SK_OK;
    }
    if (cfg_parse_positive(key, text, len, &value, why) != SK_OK)
        return err_set(why, "%s: expected a positive integer or 'auto', got '%.80s'", key,
                       text);
    if (value > CONFIG_MAX_WORKERS)
        return err_set(why, "%s: %.80s is more than the maximum of %d", key, text,
                       CONFIG_MAX_WORKERS);
    *workers = (unsigned)value;
    return SK_OK;
}

static int parse_log_level(const char *key, const char *text, size_t len, void *field,
                           struct err *why)
{
    if (log_level_parse(text) < 0)
        return err_set(why, "%s: expected debug, info, notice, warn or error, got '%.80s'",
                       key, text);
    return cfg_parse_string(key, text, len, field, why);
}

/* A list of CPUs: workers are pinned round-robin onto it. */
static int parse_cpu_list(const struct cfg_ctx *ctx, const yaml_node_t *node,
                          struct config *config)
{
    size_t count = (size_t)(node->data.sequence.items.top - node->data.sequence.items.start);

    if (count == 0)
        return cfg_fail(ctx, node, "cpu_affinity: expected 'auto', 'off' or a list of "
                                   "CPU numbers, got an empty list");
    if ((config->cpus = calloc(count, sizeof *config->cpus)) == NULL)
        return cfg_fail(ctx, node, "out of memory");
    config->cpu_count = count;
    config->cpu_affinity = CPU_AFFINITY_LIST;
    for (size_t i = 0; i < count; i++) {
        yaml_node_t *item = cfg_node(ctx, node->data.sequence.items.start[i]);
        uint64_t cpu;
        struct err why;
        if (cfg_expect(ctx, item, YAML_SCALAR_NODE, "cpu_affinity") != SK_OK)
            return SK_ERROR;
        const char *text = (const char *)item->data.scalar.value;
        if (cfg_parse_uint("cpu_affinity", text, 0, &cpu, &why) != SK_OK ||
            cpu >= CONFIG_MAX_CPUS)
            return cfg_fail(ctx, item, "cpu_affinity: expected a CPU number from 0 to %d, "
                                       "got '%.80s'", CONFIG_MAX_CPUS - 1, text);
        config->cpus[i] = (int)cpu;
    }
    return SK_OK;
}

static int parse_cpu_affinity(const struct cfg_ctx *ctx, const yaml_node_t *node, void *base)
{
    struct config *config = base;

    if (node == NULL)
        return SK_OK; /* CPU_AFFINITY_AUTO is zero */
    if (node->type == YAML_SEQUENCE_NODE)
        return parse_cpu_list(ctx, node, config);
    if (node->type == YAML_SCALAR_NODE) {
        const char *text = (const char *)node->data.scalar.value;
        if (strcmp(text, "auto") == 0)
            return SK_OK;
        if (strcmp(text, "off") == 0 || strcmp(text, "false") == 0 || strcmp(text, "no") == 0) {
            config->cpu_affinity = CPU_AFFINITY_OFF;
            return SK_OK;
        }
    }
    return cfg_fail(ctx, node, "cpu_affinity: expected 'auto', 'off' or a list of CPU "
                               "numbers, got %s", cfg_kind(node));
}

#define LIMIT(field) offsetof(struct config_limits, field)
#define RATE(field) offsetof(struct config_data_rate, field)

static const struct cfg_option rate_options[] = {
    {.name = "bytes_per_second", .offset = RATE(bytes_per_second),
     .scalar = cfg_parse_positive, .def = "240"},
    {.name = "grace_period", .offset = RATE(grace_period_ms), .scalar = cfg_parse_duration,
     .def = "5s"},
};

static const struct cfg_section rate_section = {
    .options = rate_options, .count = sizeof rate_options / sizeof rate_options[0]};

/* { bytes_per_second: 240, grace_period: 5s }, or off. node NULL: the
 * default (a null value is turned off afterwards by limits_nulls_off,
 * because the table gives absent and null keys the same treatment). */
static int parse_rate(const struct cfg_ctx *ctx, const yaml_node_t *node,
                      struct config_data_rate *rate, const char *name)
{
    if (node != NULL && node->type == YAML_SCALAR_NODE &&
        cfg_is_off((const char *)node->data.scalar.value)) {
        *rate = (struct config_data_rate){0, 0};
        return SK_OK;
    }
    if (node != NULL && node->type != YAML_MAPPING_NODE)
        return cfg_fail(ctx, node, "%s: expected a mapping such as { bytes_per_second: 240, "
                                   "grace_period: 5s } or off, got %s", name, cfg_kind(node));
    return cfg_apply_section(ctx, node, &rate_section, rate, name);
}

static int parse_body_rate(const struct cfg_ctx *ctx, const yaml_node_t *node, void *base)
{
    struct config_limits *limits = base;
    return parse_rate(ctx, node, &limits->min_request_body_data_rate,
                      "min_request_body_data_rate");
}

static int parse_response_rate(const struct cfg_ctx *ctx, const yaml_node_t *node, void *base)
{
    struct config_limits *limits = base;
    return parse_rate(ctx, node, &limits->min_response_data_rate, "min_response_data_rate");
}

/* ---- limits.http2 (Kestrel's Http2Limits) ------------------------------- */

#define HTTP2(field) offsetof(struct config_http2_limits, field)

static int parse_size_between(const char *key, const char *text, void *field, uint64_t low,
                              uint64_t high, struct err *why)
{
    if (cfg_parse_size(key, text, strlen(text), field, why) != SK_OK)
        return SK_ERROR;
    uint64_t value = *(uint64_t *)field;
    if (value < low || value > high)
        return err_set(why, "%s: must be between %llu and %llu bytes, got %llu", key,
                       (unsigned long long)low, (unsigned long long)high,
                       (unsigned long long)value);
    return SK_OK;
}

/* RFC 9113 section 6.5.2: SETTINGS_MAX_FRAME_SIZE is 2^14 .. 2^24 - 1. */
static int parse_frame_size(const char *key, const char *text, size_t len, void *field,
                            struct err *why)
{
    (void)len;
    return parse_size_between(key, text, field, 16384, 16777215, why);
}

/* Kestrel's bounds: at least the protocol's 64 KiB - 1 default, below 2 GiB. */
static int parse_window_size(const char *key, const char *text, size_t len, void *field,
                             struct err *why)
{
    (void)len;
    return parse_size_between(key, text, field, 65535, 2147483647, why);
}

/* A duration, or off (Kestrel's TimeSpan.MaxValue). */
static int parse_duration_or_off(const char *key, const char *text, size_t len, void *field,
                                 struct err *why)
{
    if (cfg_is_off(text)) {
        *(uint64_t *)field = 0;
        return SK_OK;
    }
    return cfg_parse_duration(key, text, len, field, why);
}

static const struct cfg_option http2_options[] = {
    {.name = "max_streams_per_connection", .offset = HTTP2(max_streams_per_connection),
     .scalar = cfg_parse_positive, .def = "100"},
    {.name = "header_table_size", .offset = HTTP2(header_table_size), .scalar = cfg_parse_size,
     .def = "4KiB"},
    {.name = "max_frame_size", .offset = HTTP2(max_frame_size), .scalar = parse_frame_size,
     .def = "16KiB"},
    {.name = "max_request_header_field_size", .offset = HTTP2(max_request_header_field_size),
     .scalar = cfg_parse_size, .def = "16KiB"},
    {.name = "initial_connection_window_size", .offset = HTTP2(initial_connection_window_size),
     .scalar = parse_window_size, .def = "1MiB"},
    {.name = "initial_stream_window_size", .offset = HTTP2(initial_stream_window_size),
     .scalar = parse_window_size, .def = "768KiB"},
    {.name = "keep_alive_ping_delay", .offset = HTTP2(keep_alive_ping_delay_ms),
     .scalar = parse_duration_or_off, .def = "off"},
    {.name = "keep_alive_ping_timeout", .offset = HTTP2(keep_alive_ping_timeout_ms),
     .scalar = cfg_parse_duration, .def = "20s"},
};

static const struct cfg_section http2_section = {
    .options = http2_options, .count = sizeof http2_options / sizeof http2_options[0]};

/* Top level: the defaults, with the map's keys over them. An endpoint's
 * `limits: { http2: ... }`: its keys over what the endpoint inherited
 * (which already holds every default: max_frame_size is never 0 then). */
static int parse_http2_limits(const struct cfg_ctx *ctx, const yaml_node_t *node, void *base)
{
    struct config_limits *limits = base;
    if (node != NULL && cfg_expect(ctx, node, YAML_MAPPING_NODE, "http2") != SK_OK)
        return SK_ERROR;
    if (node == NULL || limits->http2.max_frame_size == 0)
        if (cfg_apply_section(ctx, NULL, &http2_section, &limits->http2, "http2") != SK_OK)
            return SK_ERROR;
    if (node == NULL)
        return SK_OK;
    return cfg_apply_overrides(ctx, node, &http2_section, &limits->http2, "http2");
}

/* Kestrel's KestrelServerLimits defaults. */
static const struct cfg_option limit_options[] = {
    {.name = "max_concurrent_connections", .offset = LIMIT(max_concurrent_connections),
     .scalar = cfg_parse_uint, .def = "0"},
    {.name = "max_concurrent_upgraded_connections",
     .offset = LIMIT(max_concurrent_upgraded_connections), .scalar = cfg_parse_uint,
     .def = "0"},
    {.name = "max_request_body_size", .offset = LIMIT(max_request_body_size),
     .scalar = cfg_parse_size, .def = "30000000"},
    {.name = "max_request_line_size", .offset = LIMIT(max_request_line_size),
     .scalar = cfg_parse_size, .def = "8KiB"},
    {.name = "max_request_headers_total_size", .offset = LIMIT(max_request_headers_total_size),
     .scalar = cfg_parse_size, .def = "32KiB"},
    {.name = "max_request_header_count", .offset = LIMIT(max_request_header_count),
     .scalar = cfg_parse_positive, .def = "100"},
    {.name = "keep_alive_timeout", .offset = LIMIT(keep_alive_timeout_ms),
     .scalar = cfg_parse_duration, .def = "2m"},
    {.name = "request_headers_timeout", .offset = LIMIT(request_headers_timeout_ms),
     .scalar = cfg_parse_duration, .def = "30s"},
    {.name = "min_request_body_data_rate", .node = parse_body_rate},
    {.name = "min_response_data_rate", .node = parse_response_rate},
    {.name = "http2", .node = parse_http2_limits},
};

static const struct cfg_section limits_section = {
    .options = limit_options, .count = sizeof limit_options / sizeof limit_options[0]};

/* Kestrel turns a data rate off with null: so does an explicit null here. */
static void limits_nulls_off(const struct cfg_ctx *ctx, const yaml_node_t *map,
                             struct config_limits *limits)
{
    if (map == NULL)
        return;
    if (cfg_lookup(ctx, map, "min_request_body_data_rate") != NULL &&
        cfg_is_null(cfg_lookup(ctx, map, "min_request_body_data_rate")))
        limits->min_request_body_data_rate = (struct config_data_rate){0, 0};
    if (cfg_lookup(ctx, map, "min_response_data_rate") != NULL &&
        cfg_is_null(cfg_lookup(ctx, map, "min_response_data_rate")))
        limits->min_response_data_rate = (struct config_data_rate){0, 0};
}

static int parse_limits(const struct cfg_ctx *ctx, const yaml_node_t *node, void *base)
{
    struct config *config = base;

    if (node != NULL && cfg_expect(ctx, node, YAML_MAPPING_NODE, "limits") != SK_OK)
        return SK_ERROR;
    if (cfg_apply_section(ctx, node, &limits_section, &config->limits, "limits") != SK_OK)
        return SK_ERROR;
    limits_nulls_off(ctx, node, &config->limits);
    return SK_OK;
}

int cfg_apply_limits(const struct cfg_ctx *ctx, const yaml_node_t *map,
                     struct config_limits *limits, const char *what)
{
    if (cfg_apply_overrides(ctx, map, &limits_section, limits, what) != SK_OK)
        return SK_ERROR;
    limits_nulls_off(ctx, map, limits);
    return SK_OK;
}

/* ---- allowed_hosts, access_log ----------------------------------------- */

#define HOST_CHARS "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-."

/* A host name, "*.example.com", or "*" (any host, as Kestrel's "*"). */
static int add_allowed_host(const struct cfg_ctx *ctx, const yaml_node_t *node,
                            struct config *config, const char *text, size_t len)
{
    const char *name = len > 2 && strncmp(text, "*.", 2) == 0 ? text + 2 : text;
    size_t name_len = len - (size_t)(name - text);
    bool any = len == 1 && text[0] == '*';

    if (!any && (name_len == 0 || name[0] == '.' || strspn(name, HOST_CHARS) < name_len))
        return cfg_fail(ctx, node, "allowed_hosts: expected a host name such as example.com "
                                   "or *.example.com, got '%.*s'", (int)(len > 80 ? 80 : len),
                        text);
    char *host = strndup(text, len);
    if (host == NULL)
        return cfg_fail(ctx, node, "out of memory");
    for (char *p = host; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    config->allowed_hosts[config->allowed_host_count++] = host;
    return SK_OK;
}

/* Kestrel's AllowedHosts is one ';'-separated string; a YAML list reads
 * better, so both are accepted. */
static int add_allowed_list(const struct cfg_ctx *ctx, const yaml_node_t *node,
                            struct config *config)
{
    const char *text = (const char *)node->data.scalar.value;
    for (const char *p = text; *p != '\0';) {
        size_t len = strcspn(p, ";");
        const char *item = p;
        p += len + (p[len] == ';');
        while (len > 0 && *item == ' ')
            item++, len--;
        while (len > 0 && item[len - 1] == ' ')
            len--;
        if (len > 0 && add_allowed_host(ctx, node, config, item, len) != SK_OK)
            return SK_ERROR;
    }
    return SK_OK;
}

static int parse_allowed_hosts(const struct cfg_ctx *ctx, const yaml_node_t *node, void *base)
{
    struct config *config = base;
    size_t count;

    if (node == NULL)
        return SK_OK;
    if (node->type == YAML_SCALAR_NODE)
        count = 1 + strlen((const char *)node->data.scalar.value);
    else if (node->type == YAML_SEQUENCE_NODE)
        count = (size_t)(node->data.sequence.items.top - node->data.sequence.items.start);
    else
        return cfg_fail(ctx, node, "allowed_hosts: expected a list of host names, got %s",
                        cfg_kind(node));
    if ((config->allowed_hosts = calloc(count + 1, sizeof *config->allowed_hosts)) == NULL)
        return cfg_fail(ctx, node, "out of memory");
    if (node->type == YAML_SCALAR_NODE)
        return add_allowed_list(ctx, node, config);
    for (size_t i = 0; i < count; i++) {
        yaml_node_t *item = cfg_node(ctx, node->data.sequence.items.start[i]);
        if (cfg_expect(ctx, item, YAML_SCALAR_NODE, "allowed_hosts") != SK_OK ||
            add_allowed_host(ctx, item, config, (const char *)item->data.scalar.value,
                             item->data.scalar.length) != SK_OK)
            return SK_ERROR;
    }
    return SK_OK;
}

/* A path, "stderr", or off. */
static int parse_access_log(const char *key, const char *text, size_t len, void *field,
                            struct err *why)
{
    if (cfg_is_off(text)) {
        free(*(char **)field);
        *(char **)field = NULL;
        return SK_OK;
    }
    return cfg_parse_string(key, text, len, field, why);
}

static int parse_access_log_format(const char *key, const char *text, size_t len, void *field,
                                   struct err *why)
{
    static const char *const formats[] = {"combined", "json"}; /* enum order */
    int i = CFG_CHOICE(key, text, formats, why);

    (void)len;
    if (i < 0)
        return SK_ERROR;
    *(enum access_log_format *)field = (enum access_log_format)i;
    return SK_OK;
}

static int parse_transport(const char *key, const char *text, size_t len, void *field,
                           struct err *why)
{
    static const char *const transports[] = {"epoll", "io_uring"}; /* enum order */
    int i = CFG_CHOICE(key, text, transports, why);

    (void)len;
    if (i < 0)
        return SK_ERROR;
    *(enum config_transport *)field = (enum config_transport)i;
    return SK_OK;
}

/* `modules:` is parsed first of all (config_build): routes name their
 * handlers. */
static int modules_parsed(const struct cfg_ctx *ctx, const yaml_node_t *node, void *base)
{
    (void)ctx, (void)node, (void)base;
    return SK_OK;
}

#define TOP(field) offsetof(struct config, field)

/* shm_path has no default here: it depends on the uid (config_build). */
static const struct cfg_option top_options[] = {
    {.name = "workers", .offset = TOP(workers), .scalar = parse_workers, .def = "auto"},
    {.name = "cpu_affinity", .node = parse_cpu_affinity},
    {.name = "user", .offset = TOP(user), .scalar = cfg_parse_string},
    {.name = "group", .offset = TOP(group), .scalar = cfg_parse_string},
    {.name = "pid_file", .offset = TOP(pid_file), .scalar = cfg_parse_string},
    {.name = "shm_path", .offset = TOP(shm_path), .scalar = cfg_parse_string},
    {.name = "error_log", .offset = TOP(error_log), .scalar = cfg_parse_string},
    {.name = "log_level", .offset = TOP(log_level), .scalar = parse_log_level, .def = "info"},
    {.name = "shutdown_timeout", .offset = TOP(shutdown_timeout_ms),
     .scalar = cfg_parse_duration, .def = "30s"},
    {.name = "worker_watchdog_timeout", .offset = TOP(worker_watchdog_timeout_ms),
     .scalar = cfg_parse_duration, .def = "10s"},
    {.name = "limits", .node = parse_limits},
    {.name = "allowed_hosts", .node = parse_allowed_hosts},
    {.name = "access_log", .offset = TOP(access_log), .scalar = parse_access_log},
    {.name = "connection_list", .offset = TOP(connection_list), .scalar = cfg_parse_bool,
     .def = "false"},
    {.name = "transport", .offset = TOP(transport), .scalar = parse_transport, .def = "epoll"},
    {.name = "access_log_format", .offset = TOP(access_log_format),
     .scalar = parse_access_log_format, .def = "combined"},
    {.name = "certificates", .node = cfg_tls_config_certificates},
    {.name = "ticket_key_rotation", .offset = TOP(tls.ticket_key_rotation_ms),
     .scalar = cfg_tls_parse_rotation, .def = "1h"},
    {.name = "endpoints", .node = cfg_parse_endpoints},
    {.name = "rate_limits", .node = cfg_parse_rate_limits},
    {.name = "upstreams", .node = cfg_parse_upstreams},
    {.name = "routes", .node = cfg_parse_routes},
    {.name = "compression", .node = cfg_parse_compression},
    {.name = "open_file_cache", .node = cfg_parse_file_cache},
    {.name = "modules", .node = modules_parsed},
};

static const struct cfg_section top_section = {
    .options = top_options, .count = sizeof top_options / sizeof top_options[0]};

const char *config_default_run_dir(void)
{
    static char dir[PATH_MAX];
    const char *runtime = getenv("XDG_RUNTIME_DIR");

    if (geteuid() == 0)
        snprintf(dir, sizeof dir, "/run/saker");
    else if (runtime != NULL && runtime[0] == '/' && strlen(runtime) < sizeof dir - 16)
        snprintf(dir, sizeof dir, "%s", runtime);
    else
        snprintf(dir, sizeof dir, "/dev/shm/saker-%u", (unsigned)geteuid());
    return dir;
}

const char *config_default_shm_path(void)
{
    static char path[PATH_MAX];

    snprintf(path, sizeof path, "%s/saker.shm", config_default_run_dir());
    return path;
}

void config_free(struct config *config)
{
    if (config == NULL)
        return;
    free(config->file);
    free(config->cpus);
    free(config->user);
    free(config->group);
    free(config->pid_file);
    free(config->shm_path);
    free(config->error_log);
    free(config->log_level);
    for (size_t i = 0; i < config->allowed_host_count; i++)
        free(config->allowed_hosts[i]);
    free(config->allowed_hosts);
    free(config->access_log);
    cfg_endpoints_free(config->endpoints, config->endpoint_count);
    cfg_tls_free(&config->tls);
    for (size_t i = 0; i < config->route_count; i++)
        cfg_route_free(&config->routes[i]);
    free(config->routes);
    config_compression_free(&config->compression);
    cfg_modules_free(config); /* after the routes: their options are the modules' */
    cfg_rate_limits_free(config->rate_limits, config->rate_limit_count);
    cfg_upstreams_free(config->upstreams, config->upstream_count);
    free(config);
}

/* Every option from root, or every default when root is NULL. */
static struct config *config_build(const struct cfg_ctx *outer, const yaml_node_t *root)
{
    struct config *config = calloc(1, sizeof *config);
    struct cfg_ctx building = *outer, *ctx = &building;

    if (config == NULL) {
        cfg_fail(ctx, root, "out of memory");
        return NULL;
    }
    building.config = config;
    if ((root != NULL && cfg_parse_modules(ctx, cfg_lookup(ctx, root, "modules"), config) != SK_OK) ||
        cfg_apply_section(ctx, root, &top_section, config, "config") != SK_OK ||
        cfg_endpoints_apply_limits(ctx, config) != SK_OK ||
        cfg_routes_apply_compression(ctx, config) != SK_OK ||
        cfg_tls_check_endpoints(ctx, root, config) != SK_OK ||
        cfg_routes_bind_endpoints(config, ctx->file, ctx->err) != SK_OK ||
        cfg_rate_limits_bind(config, ctx->file, ctx->err) != SK_OK)
        goto fail;
    if (config->shm_path == NULL &&
        (config->shm_path = cfg_strdup(ctx, root, config_default_shm_path())) == NULL)
        goto fail;
    return config;
fail:
    config_free(config);
    return NULL;
}

static struct config *config_from_document(const struct cfg_ctx *ctx)
{
    yaml_node_t *root = yaml_document_get_root_node(ctx->doc);

    if (root == NULL) {
        err_set(ctx->err, "%s:1:1: the file is empty: expected a mapping of options "
                          "with at least 'endpoints'", ctx->file);
        return NULL;
    }
    if (cfg_expect(ctx, root, YAML_MAPPING_NODE, "top level") != SK_OK)
        return NULL;
    struct config *config = config_build(ctx, root);
    if (config == NULL)
        return NULL;
    if (config->endpoint_count == 0) {
        cfg_fail(ctx, root, "no endpoints: add one under 'endpoints'");
        goto fail;
    }
    if ((config->file = cfg_strdup(ctx, root, ctx->file)) == NULL)
        goto fail;
    return config;
fail:
    config_free(config);
    return NULL;
}

struct config *config_load_string(const char *text, size_t len, const char *name,
                                  struct err *err)
{
    yaml_document_t doc;
    struct cfg_ctx ctx = {&doc, name ? name : "<string>", err, NULL};

    if (cfg_load_document(text, len, ctx.file, &doc, err) != SK_OK)
        return NULL;
    struct config *config = config_from_document(&ctx);
    yaml_document_delete(&doc);
    return config;
}

static char *read_whole_file(FILE *file, size_t *len)
{
    size_t size = 0, capacity = 4096;
    char *text = malloc(capacity);

    while (text != NULL) {
        size += fread(text + size, 1, capacity - size, file);
        if (size < capacity)
            break;
        char *bigger = capacity < CONFIG_FILE_MAX ? realloc(text, capacity * 2) : NULL;
        if (bigger == NULL)
            errno = capacity < CONFIG_FILE_MAX ? ENOMEM : EFBIG;
        if (bigger == NULL)
            free(text);
        text = bigger;
        capacity *= 2;
    }
    if (text != NULL && ferror(file)) {
        free(text);
        return NULL;
    }
    *len = size;
    return text;
}

struct config *config_load_file(const char *path, struct err *err)
{
    size_t len = 0;
    FILE *file = fopen(path, "re");

    if (file == NULL) {
        err_set_errno(err, errno, "%s: cannot read", path);
        return NULL;
    }
    errno = 0;
    char *text = read_whole_file(file, &len);
    int saved = errno;
    fclose(file);
    if (text == NULL) {
        err_set_errno(err, saved ? saved : EIO, "%s: cannot read", path);
        return NULL;
    }
    struct config *config = config_load_string(text, len, path, err);
    free(text);
    return config;
}

/* The default route: every path served from ./wwwroot. Its root is not
 * checked here: the master warns when it is missing, so a bare `saker`
 * starts anywhere. */
static int add_default_route(struct config *config)
{
    struct route *route = calloc(1, sizeof *route);
    struct route_static *files = calloc(1, sizeof *files);

    if (route == NULL || files == NULL) {
        free(route);
        free(files);
        return SK_ERROR;
    }
    config->routes = route;
    config->route_count = 1;
    route->handler = &route_static_schema;
    route->handler_config = files;
    route->path = strdup("/");
    route->path_len = 1;
    route->compression = &config->compression; /* off, as without a config */
    files->root = strdup(CONFIG_DEFAULT_ROOT); /* no index: index.html */
    return route->path && files->root ? SK_OK : SK_ERROR;
}

struct config *config_default(struct err *err)
{
    struct cfg_ctx ctx = {NULL, "built-in default", err, NULL};
    struct config *config = config_build(&ctx, NULL);

    if (config == NULL)
        return NULL;
    if (config_override_urls(config, CONFIG_DEFAULT_URL, err) != SK_OK)
        goto fail;
    free(config->endpoints[0].name);
    if ((config->endpoints[0].name = strdup("default")) == NULL ||
        add_default_route(config) != SK_OK) {
        err_set(err, "out of memory");
        goto fail;
    }
    if (cfg_check_static_root(CONFIG_DEFAULT_ROOT, err) != SK_OK)
        goto fail;
    return config;
fail:
    config_free(config);
    return NULL;
}
