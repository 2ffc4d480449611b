/*
 * config.h - the configuration, as loaded and validated from YAML.
 *
 * A `struct config` is immutable once loaded: the master loads one per
 * generation, workers forked for that generation read it, and it is freed
 * with config_free() when no generation uses it. Every string is owned by
 * the config. Option names follow Kestrel's, in snake_case.
 *
 * Errors (unknown key, wrong type, bad value, missing required key, docroot
 * that is not a directory) come back as "FILE:LINE:COLUMN: message", lines
 * and columns counted from 1, pointing at the offending key or value.
 */
#ifndef SAKER_CONF_CONFIG_H
#define SAKER_CONF_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "conf/config_compression.h"
#include "conf/config_tls_types.h"
#include "conf/url.h"

#define CONFIG_DEFAULT_URL "http://localhost:5000"
#define CONFIG_DEFAULT_ROOT "./wwwroot"
#define CONFIG_MAX_CPUS 1024
#define CONFIG_MAX_WORKERS 1024 /* "auto" is capped to this too */

/* Kestrel's MinDataRate: after grace_period, fewer than bytes_per_second on
 * average since the transfer started is too slow. bytes_per_second 0: off
 * (`null` or `off` in the file). */
struct config_data_rate {
    uint64_t bytes_per_second; /* 240 */
    uint64_t grace_period_ms;  /* 5 seconds */
};

/* Kestrel's Http2Limits, with its defaults: what saker announces in its
 * SETTINGS and holds each HTTP/2 connection to. */
struct config_http2_limits {
    uint64_t max_streams_per_connection;     /* 100: SETTINGS_MAX_CONCURRENT_STREAMS */
    uint64_t header_table_size;              /* 4 KiB: the HPACK table the client may use */
    uint64_t max_frame_size;                 /* 16 KiB (16 KiB .. 16 MiB - 1) */
    uint64_t max_request_header_field_size;  /* 16 KiB: one decoded name + value */
    uint64_t initial_connection_window_size; /* 1 MiB (64 KiB .. 2 GiB - 1) */
    uint64_t initial_stream_window_size;     /* 768 KiB (64 KiB .. 2 GiB - 1) */
    uint64_t keep_alive_ping_delay_ms;       /* 0: off (Kestrel's infinite) */
    uint64_t keep_alive_ping_timeout_ms;     /* 20 s */
};

/* `open_file_cache:` (config_file_cache.c): static files kept open across
 * requests by each worker. max 0 (the default): only within a loop turn. */
struct config_file_cache {
    uint64_t max;      /* entries per worker */
    uint64_t valid_ms; /* an entry is checked against the disk this often */
};

/* Kestrel's request limits (KestrelServerLimits), with its defaults. */
struct config_limits {
    uint64_t max_concurrent_connections;          /* 0 = unlimited */
    uint64_t max_concurrent_upgraded_connections; /* 0 = unlimited */
    uint64_t max_request_body_size;               /* 30,000,000 */
    uint64_t max_request_line_size;               /* 8 KiB */
    uint64_t max_request_headers_total_size;      /* 32 KiB */
    uint64_t max_request_header_count;            /* 100 */
    uint64_t keep_alive_timeout_ms;               /* 2 minutes */
    uint64_t request_headers_timeout_ms;          /* 30 seconds */
    struct config_data_rate min_request_body_data_rate; /* 240 B/s after 5 s */
    struct config_data_rate min_response_data_rate;     /* 240 B/s after 5 s */
    struct config_http2_limits http2;
};

struct config_header {
    char *name;
    char *value;
    size_t name_len, value_len; /* measured at load: responses reference them */
};

/* A rate limit policy (`rate_limits:`), in ASP.NET Core's terms: a fixed
 * window, a sliding window of segments, or a token bucket, per partition
 * of the requests (the client's address or network, a header's value, or
 * all of them). Routes attach policies by name. */
enum rate_limit_algorithm {
    RATE_LIMIT_FIXED_WINDOW,   /* permit_limit per window */
    RATE_LIMIT_SLIDING_WINDOW, /* permit_limit per window, freed segment by segment */
    RATE_LIMIT_TOKEN_BUCKET,   /* token_limit, tokens_per_period each replenishment_period */
};

enum rate_limit_partition {
    RATE_PARTITION_CLIENT_ADDRESS, /* the peer's address, cut to ipv4/ipv6_prefix bits */
    RATE_PARTITION_HEADER,         /* a request header's value ("" when absent) */
    RATE_PARTITION_GLOBAL,         /* one partition for every request */
};

#define CONFIG_MAX_RATE_LIMITS 64            /* policies in one config */
#define CONFIG_MAX_ROUTE_RATE_LIMITS 8       /* policies on one route */
#define CONFIG_RATE_LIMIT_MAX 4294967295u    /* permit_limit, token_limit */
#define CONFIG_SLIDING_LIMIT_MAX 16777215u   /* a sliding window's permit_limit */
#define CONFIG_SLIDING_SEGMENTS_MAX 64
#define CONFIG_RATE_PARTITIONS_MAX 16777216u /* max_partitions */
#define CONFIG_ROUTE_NAME_MAX 127                /* a route's name: (its metrics label) */

struct rate_limit_policy {
    char *name;
    enum rate_limit_algorithm algorithm;
    uint64_t limit;             /* permit_limit, or the bucket's token_limit */
    uint64_t period_ms;         /* window, or replenishment_period */
    uint64_t segments;          /* segments_per_window; 1 for the others */
    uint64_t tokens_per_period; /* token bucket only */
    enum rate_limit_partition partition;
    uint64_t ipv4_prefix;       /* bits of an IPv4 client address that count: 32 */
    uint64_t ipv6_prefix;       /* ... of an IPv6 one: 64 */
    char *header;               /* RATE_PARTITION_HEADER: the header's name */
    uint64_t max_partitions;    /* records kept per policy: the memory bound */
    int line, column;           /* where the policy starts in the file */
};

struct handler_schema;
struct upstream_config; /* config_upstreams.h */
struct cidr;            /* cidr.h */
struct config_module;

struct route {
    char *name;      /* `name:` its label in metrics; NULL: derived (config_route_label) */
    char *host;      /* NULL: any host. Lower-case; exact or "*.example.com" */
    /* `endpoint:` the route serves only requests that came in through the
     * endpoint of that name (NULL: every endpoint). only_endpoint is that
     * endpoint in this config, NULL for every endpoint; kept in step by
     * the loader and by config_override_urls. */
    char *endpoint;
    const struct endpoint *only_endpoint;
    char *path;      /* prefix starting with '/', without trailing '/' unless "/" */
    size_t path_len;
    /* What the route does: a handler kind of the registry
     * (conf/handler_schema.h), and its map parsed with the kind's options
     * into a struct of the kind's (conf/route_static.h, ...). */
    const struct handler_schema *handler;
    void *handler_config;
    /* `headers:` sent with every response of the route, whatever its
     * handler answers (errors and 304s too, as nginx's add_header
     * ... always); in config order. Not next to a handler with
     * headers of its own (`return`). */
    struct config_header *headers;
    size_t header_count;
    /* `compression:` the top level's, or the route's own applied over it
     * (own_compression, owned); never NULL once loaded. */
    const struct config_compression *compression;
    struct config_compression *own_compression;
    int compression_node; /* loader only: the YAML node of `compression:`, 0 if none */
    uint64_t max_request_body_size; /* 0: the endpoint's limit applies */
    bool has_max_request_body_size; /* set in the file, even to 0 */
    /* `rate_limit:` the policies a request must pass, in the order given:
     * names as written, and their indexes in config->rate_limits (bound
     * once the whole file is read). */
    char **rate_limit_names;
    unsigned *rate_limits;
    size_t rate_limit_count;
    int line, column; /* where the route starts in the file, for messages */
};

struct endpoint {
    char *name;
    char *url_text; /* as written */
    struct url url;
    /* The top-level `limits`, with this endpoint's `limits:` map applied on
     * top (Kestrel's per-endpoint overrides). */
    struct config_limits limits;
    bool access_log;         /* `access_log: false` turns it off here; default true */
    bool connection_logging; /* hex-dump every byte at debug level; default false */
    int limits_node;         /* loader only: the YAML node of `limits:`, 0 if none */
    enum endpoint_protocols protocols; /* Kestrel's Protocols; default http1_and_http2 */
    /* `proxy_protocol: true`: every connection starts with a PROXY
     * protocol header (v1 or v2) naming the real client, from a peer in
     * trusted_sources (a Unix socket's peer is trusted: the file's mode
     * decides who connects); anyone else is refused. */
    bool proxy_protocol;
    struct cidr *trusted_sources;
    size_t trusted_source_count;
    struct tls_endpoint_config tls;    /* https:// only; see config_tls_types.h */
};

enum access_log_format {
    ACCESS_LOG_COMBINED, /* Apache/nginx combined, the default */
    ACCESS_LOG_JSON,     /* one JSON object per line */
};

/* How workers move the bytes of plain connections (worker/uring.h). */
enum config_transport {
    CONFIG_TRANSPORT_EPOLL,    /* readiness through libevent, the default */
    CONFIG_TRANSPORT_IO_URING, /* completions of one io_uring per worker */
};

enum cpu_affinity_mode {
    CPU_AFFINITY_AUTO, /* worker i on the i-th CPU this process may use */
    CPU_AFFINITY_OFF,
    CPU_AFFINITY_LIST, /* worker i on cpus[i % cpu_count] */
};

struct config {
    char *file; /* path loaded from; NULL for the built-in default */

    unsigned workers; /* "auto" resolves to the number of online CPUs */
    enum cpu_affinity_mode cpu_affinity;
    int *cpus;
    size_t cpu_count;

    char *user;  /* NULL: keep the current user */
    char *group; /* NULL: the user's primary group */
    char *pid_file;  /* NULL: none */
    char *shm_path;  /* never NULL after load: config_default_shm_path() */
    char *error_log; /* NULL: stderr */
    char *log_level; /* "info" unless set */
    uint64_t shutdown_timeout_ms; /* 30 s */
    uint64_t worker_watchdog_timeout_ms; /* 10 s; a worker silent this long is replaced */

    struct config_limits limits;

    char **allowed_hosts; /* Kestrel's AllowedHosts: exact or "*.example.com";
                             NULL/0: any host */
    size_t allowed_host_count;

    bool connection_list; /* `connection_list: on`: sakerctl conns (default off) */
    enum config_transport transport; /* `transport:`, epoll unless set */

    char *access_log; /* NULL: off; a path, or "stderr" */
    enum access_log_format access_log_format;

    struct tls_config tls; /* certificates.default, ticket_key_rotation */

    struct endpoint *endpoints;
    size_t endpoint_count;

    struct config_compression compression; /* every route's default */
    struct config_file_cache open_file_cache; /* static files kept open */

    struct route *routes; /* first match wins */
    size_t route_count;

    struct upstream_config *upstreams; /* `upstreams:`, in file order */
    size_t upstream_count;
    /* `modules:` (conf/config_module.h), loaded before the routes that
     * use their handlers; closed after them by config_free. */
    struct config_module *modules;
    size_t module_count;
    struct rate_limit_policy *rate_limits; /* in file order */
    size_t rate_limit_count;
};

/* Loads and validates path. NULL with err set on any problem. */
struct config *config_load_file(const char *path, struct err *err);
/* As config_load_file, from a string; `name` stands for the file in messages. */
struct config *config_load_string(const char *text, size_t len, const char *name,
                                  struct err *err);
/* The configuration used when no file is given: http://localhost:5000,
 * static files from ./wwwroot for every path (which must then exist). */
struct config *config_default(struct err *err);
/* Replaces the endpoints with the ';'-separated URLs (Kestrel's --urls and
 * ASPNETCORE_URLS), named "url0", "url1", ... SK_OK or SK_ERROR. */
int config_override_urls(struct config *config, const char *urls, struct err *err);
void config_free(struct config *config);

/* True when a and b limit the same way (everything but the name and the
 * place in the file): a reload keeps such a policy's state. */
bool config_rate_limit_same(const struct rate_limit_policy *a, const struct rate_limit_policy *b);
/* "fixed_window 100 per 1m by client_address /32 /64" into out. */
void config_rate_limit_describe(const struct rate_limit_policy *p, char *out, size_t size);

/* The route's label in metrics and top: its name, else
 * [ENDPOINT:][HOST]PATH ("admin:/metrics", "static.example.com/", "/api"),
 * cut to size. */
void config_route_label(const struct route *route, char *out, size_t size);

/* Where an instance keeps its files when the config does not say: a
 * directory only its user may write. /run/saker as root; else the
 * user's runtime directory ($XDG_RUNTIME_DIR, when absolute), else a
 * private /dev/shm/saker-UID. The master makes and checks it. */
const char *config_default_run_dir(void);
/* The shm path used when the config names none: saker.shm in
 * config_default_run_dir(), which sakerctl finds without a config. */
const char *config_default_shm_path(void);

#endif
