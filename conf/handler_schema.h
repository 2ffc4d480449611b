/*
 * handler_schema.h - a handler kind as the config sees it: the key that
 * names it in a route, the option table of its map, the size of the struct
 * those options are parsed into, and what needs the whole config (a check
 * once the endpoints are known, the release of what the options own).
 *
 *   routes:
 *     - path: /
 *       static: { root: /var/www }     # "static" names the kind; its map
 *                                      # is parsed with the kind's options
 *
 * What a kind does with a request is the worker's (worker/handler.h: init,
 * handle, fini, found from the schema), so conf/ and sakerctl, which loads
 * configs too, know every kind's options without linking the worker.
 *
 * The registry holds the built-in kinds (return, static, status,
 * redirect_https, proxy, in that order) and kinds registered at run time, before
 * a config is loaded (a module's). Every config loaded afterwards accepts
 * them. It is process-wide and not thread-safe: kinds are registered at
 * start, before any config is read.
 */
#ifndef SAKER_CONF_HANDLER_SCHEMA_H
#define SAKER_CONF_HANDLER_SCHEMA_H

#include <stdbool.h>
#include <stddef.h>

#include "common/error.h"

struct cfg_section;
struct cfg_ctx;
struct yaml_node_s;
struct config;
struct route;

struct handler_schema {
    const char *name; /* the route key: lower-case letters, digits, '_' */
    /* The options of the kind's map (conf/config_parse.h), parsed into a
     * zeroed struct of config_size bytes: route->handler_config. */
    const struct cfg_section *section;
    size_t config_size;
    /* The kind has a `headers:` of its own, so a route's `headers:` are
     * refused next to it ("go in NAME.headers"). */
    bool own_headers;
    /* May be NULL. Runs once the config's endpoints are known (at load,
     * and again when --urls replaces them); `where` is the route's place
     * for messages ("FILE:LINE:COLUMN: route '/x'"). SK_OK or SK_ERROR
     * with a message that starts with where. */
    int (*validate)(const struct config *config, const struct route *route, const char *where,
                    struct err *err);
    /* May be NULL. Parses the kind's map instead of section (whose rows
     * depend on a value of the map: a module's handler), into the zeroed
     * handler_config; SK_OK or SK_ERROR with ctx's "FILE:LINE:COLUMN". */
    int (*parse)(const struct cfg_ctx *ctx, const struct yaml_node_s *map,
                 void *handler_config);
    /* May be NULL. Frees what the options own inside handler_config (not
     * handler_config itself); also called on one a failed parse left half
     * filled, whose other fields are zero. */
    void (*release)(void *handler_config);
};

/* Adds a kind, with what a worker runs for it (worker/handler.h's ops;
 * opaque here, may be NULL). SK_ERROR when its name is not a valid key,
 * is one of a route's own keys (path, host, ...), or is taken by another
 * kind; registering the same schema with the same runtime again is SK_OK. */
int handler_schema_register(const struct handler_schema *schema, const void *runtime,
                            struct err *err);
/* The kind registered under name, or NULL. */
const struct handler_schema *handler_schema_find(const char *name);
/* The runtime registered with schema; NULL for a built-in kind (the
 * worker knows its own) and for one registered without. */
const void *handler_schema_runtime(const struct handler_schema *schema);
/* Every kind, built-in ones first, in the order they were registered. */
size_t handler_schema_count(void);
const struct handler_schema *handler_schema_at(size_t i);

#endif
