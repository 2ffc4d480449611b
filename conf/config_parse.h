/*
 * config_parse.h - internals of the config loader, shared by conf/config_*.c.
 * Nothing outside conf/ includes this; the public contract is config.h.
 *
 * The loader reads the whole file into a libyaml document (yaml_parser_load)
 * and walks its nodes, so every error can point at a node's start mark.
 * Maps of options are described by tables (struct section): one row per
 * key with where the value goes, how it is parsed and its default written
 * in config notation ("30s", "8KiB"), so a default reads like the file.
 *
 * Every function that can fail returns SK_OK or SK_ERROR and, on error,
 * has written "FILE:LINE:COLUMN: message" into ctx->err.
 */
#ifndef SAKER_CONF_CONFIG_PARSE_H
#define SAKER_CONF_CONFIG_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <yaml.h>

#include "common/error.h"
#include "conf/config.h"

struct cfg_ctx {
    yaml_document_t *doc; /* NULL when only defaults are applied */
    const char *file;     /* name used in messages */
    struct err *err;
    struct config *config; /* the config being built (its modules), or NULL */
};

/* --- node helpers (config_yaml.c) --- */

/* Sets "FILE:LINE:COLUMN: message" for node (1-based); returns SK_ERROR. */
int cfg_fail(const struct cfg_ctx *ctx, const yaml_node_t *node, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
yaml_node_t *cfg_node(const struct cfg_ctx *ctx, int index);
/* A plain `~`, `null` or empty value: the option takes its default. */
bool cfg_is_null(const yaml_node_t *node);
/* "a mapping", "a sequence", "a scalar" or "null", for messages. */
const char *cfg_kind(const yaml_node_t *node);
/* SK_OK if node has the type, else "WHAT: expected a ..., got a ...". */
int cfg_expect(const struct cfg_ctx *ctx, const yaml_node_t *node, yaml_node_type_t type,
               const char *what);
/* Checks that every key of map is a scalar and appears once. */
int cfg_check_keys(const struct cfg_ctx *ctx, const yaml_node_t *map);
/* The value node of key in map, or NULL. */
yaml_node_t *cfg_lookup(const struct cfg_ctx *ctx, const yaml_node_t *map, const char *key);
/* The known name closest to word (edit distance <= 2), or NULL. */
const char *cfg_suggest(const char *word, const char *const *names, size_t count);
/* strdup that reports "out of memory" at node; NULL on failure. */
char *cfg_strdup(const struct cfg_ctx *ctx, const yaml_node_t *node, const char *text);
/* Parses text into doc. On a YAML error sets "FILE:L:C: syntax error: ...". */
int cfg_load_document(const char *text, size_t len, const char *file, yaml_document_t *doc,
                      struct err *err);

/* --- option tables (config_options.c) --- */

/* Parses one scalar into field. `key` is for the message; on error `why`
 * holds the message without the location, which the caller prefixes. */
typedef int cfg_scalar_fn(const char *key, const char *text, size_t len, void *field,
                          struct err *why);
/* Parses a value of any shape into base (the struct the table describes).
 * node is NULL when the key is absent or null: apply the default. */
typedef int cfg_node_fn(const struct cfg_ctx *ctx, const yaml_node_t *node, void *base);
struct cfg_option;
/* As cfg_node_fn, with the option's row at hand (its arg): one parser for
 * many rows, as a route's handler keys. */
typedef int cfg_entry_fn(const struct cfg_ctx *ctx, const struct cfg_option *opt,
                         const yaml_node_t *node, void *base);

struct cfg_option {
    const char *name;
    size_t offset;          /* of the field in base, for `scalar` */
    cfg_scalar_fn *scalar;  /* one of this ... */
    cfg_node_fn *node;      /* ... this ... */
    cfg_entry_fn *entry;    /* ... or this */
    const void *arg;        /* for `entry` */
    const char *def;        /* default in config notation; NULL: left zero */
    bool required;          /* absent or null is an error */
    bool binary;            /* may contain NUL bytes (a response body) */
};

struct cfg_section {
    const struct cfg_option *options;
    size_t count;
    /* A rule about the map as a whole, run after the keys are known to be
     * valid and before any value is parsed; may be NULL. */
    int (*check)(const struct cfg_ctx *ctx, const yaml_node_t *map);
};

/* Checks map's keys against the table (unknown, duplicate, missing), then
 * parses each option or applies its default. map may be NULL: defaults
 * only. `what` names the map in messages ("route", "endpoint 'public'"). */
int cfg_apply_section(const struct cfg_ctx *ctx, const yaml_node_t *map,
                      const struct cfg_section *section, void *base, const char *what);

/* As cfg_apply_section, but only the keys present and not null are parsed:
 * absent keys keep what base already holds (per-endpoint `limits:` over
 * the top-level ones). */
int cfg_apply_overrides(const struct cfg_ctx *ctx, const yaml_node_t *map,
                        const struct cfg_section *section, void *base, const char *what);
/* "off", "false", "no" (any of YAML 1.1's spellings of false). */
bool cfg_is_off(const char *text);

/* Scalar parsers shared by the tables. */
cfg_scalar_fn cfg_parse_bool;     /* bool: true/false, yes/no, on/off */
cfg_scalar_fn cfg_parse_string;   /* char *, non-empty */

/* Writes names as "a, b or c" into out (each in quote, which may be ""). */
void cfg_join_names(char *out, size_t size, const char *const *names, size_t count,
                    const char *quote);
/* The index of text among names (an enum's values in order), or -1 with
 * "KEY: expected a, b or c, got 'TEXT'" in why. */
int cfg_choice(const char *key, const char *text, const char *const *names, size_t count,
               struct err *why);
#define CFG_CHOICE(key, text, names, why) \
    cfg_choice((key), (text), (names), sizeof(names) / sizeof((names)[0]), (why))

/* A static root must be a directory when the config is loaded (file or
 * built-in default alike). SK_OK or SK_ERROR naming the root.
 * route_static.c. */
int cfg_check_static_root(const char *root, struct err *why);
/* A `headers:` map, in the order written (config_headers.c): names are
 * HTTP tokens, values free of CR, LF and NUL, and none is a framing
 * header the server sets. refuse: more names refused there (NULL-ended,
 * may be NULL), with why in the message. */
int cfg_parse_header_map(const struct cfg_ctx *ctx, const yaml_node_t *node,
                         struct config_header **headers, size_t *header_count,
                         const char *const *refuse, const char *why);
void cfg_headers_free(struct config_header *headers, size_t count);
/* A list of address ranges ("10.0.0.0/8", "::1"), cidr.c; `what` names
 * it in messages. *list is malloc'd (may be NULL for none). */
struct cidr;
int cfg_parse_cidr_list(const struct cfg_ctx *ctx, const yaml_node_t *node, const char *what,
                        struct cidr **list, size_t *count);
cfg_scalar_fn cfg_parse_uint;     /* uint64_t, >= 0 */
cfg_scalar_fn cfg_parse_positive; /* uint64_t, > 0 */
cfg_scalar_fn cfg_parse_size;     /* uint64_t bytes */
cfg_scalar_fn cfg_parse_duration; /* uint64_t milliseconds */

/* --- sections (one file each) --- */

cfg_node_fn cfg_parse_endpoints; /* config_endpoints.c; base: struct config */
/* After the whole file is read: every endpoint's limits are the top-level
 * ones with its own `limits:` map applied on top. */
int cfg_endpoints_apply_limits(const struct cfg_ctx *ctx, struct config *config);
/* Applies map (a `limits:` mapping) over *limits; only keys present change.
 * config_load.c. */
int cfg_apply_limits(const struct cfg_ctx *ctx, const yaml_node_t *map,
                     struct config_limits *limits, const char *what);
void cfg_endpoints_free(struct endpoint *endpoints, size_t count);
/* `compression:` (config_compression.c): the top level's (base: struct
 * config); a route's node is kept (base: struct route) and applied over
 * the top level's by cfg_routes_apply_compression once the file is read. */
cfg_node_fn cfg_parse_compression;
/* `open_file_cache:` (config_file_cache.c); base: struct config. */
cfg_node_fn cfg_parse_file_cache;
/* A sequence of content codings, each among allowed (a mask of 1 <<
 * enum config_coding) and none twice, into out (CODING_COUNT room).
 * Empty is allowed; the caller decides. */
int cfg_parse_coding_list(const struct cfg_ctx *ctx, const yaml_node_t *node, const char *what,
                          unsigned allowed, enum config_coding *out, size_t *count);
cfg_node_fn cfg_parse_route_compression;
int cfg_routes_apply_compression(const struct cfg_ctx *ctx, struct config *config);
cfg_node_fn cfg_parse_routes;    /* config_routes.c; base: struct config */
cfg_node_fn cfg_parse_upstreams; /* config_upstreams.c; base: struct config */
/* config_modules.c: `modules:` into config->modules (opened with the
 * installed loader); run before anything else of the file, since routes
 * name their handlers. */
int cfg_parse_modules(const struct cfg_ctx *ctx, const yaml_node_t *node, struct config *config);
void cfg_modules_free(struct config *config);
/* After the endpoints are known (the file's, or --urls'): resolves each
 * route's `endpoint:` to its endpoint, refuses a name that is not an
 * endpoint, and runs each route's handler kind's validate (redirect_https
 * refuses to answer an https:// endpoint).
 * file: for "FILE:LINE:COLUMN" in messages, may be NULL. */
int cfg_routes_bind_endpoints(struct config *config, const char *file, struct err *err);
/* config_rate_limits.c: the top-level `rate_limits` map (base: struct
 * config), a route's `rate_limit` (base: struct route), and, once the
 * file is read, each route's policy names bound to their indexes (an
 * unknown name is an error at the route, with a suggestion). */
cfg_node_fn cfg_parse_rate_limits;
cfg_node_fn cfg_parse_route_rate_limits;
int cfg_rate_limits_bind(struct config *config, const char *file, struct err *err);
void cfg_rate_limits_free(struct rate_limit_policy *policies, size_t count);
/* Frees what a route owns (not the route itself). */
void cfg_route_free(struct route *route);
/* True for a route's own keys (path, host, ...): no handler kind may take
 * one as its name. */
bool cfg_is_route_key(const char *name);
/* True when a and b would bind the same address (port 0 never clashes:
 * each bind gets its own free port). */
bool cfg_same_address(const struct url *a, const struct url *b);

#endif
