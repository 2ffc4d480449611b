/*
 * route_static.h - `static:`, files under a root directory, as the config
 * gives it.
 *
 *   static:
 *     root: /var/www
 *     index: [index.html, index.htm]   # or one name; the first that exists
 *     precompressed: [br, gzip]        # a.js.br / a.js.gz sidecars, off unless set
 *     serve_dotfiles: false            # .env, .git/ look absent (404)
 *     browse: false                    # list a directory without an index
 *     cache_control: "public, max-age=3600"
 *     default_type: application/octet-stream
 *     mime_types: { ".wasm": application/wasm, ".log": text/plain }
 *
 * The root must be a directory when the config is loaded (the message
 * points at the value); index names are file names without '/'; a
 * precompressed coding is br or gzip (the sidecar's suffix .br or .gz);
 * mime_types keys are extensions with their dot, matched case-insensitively
 * before the built-in table.
 */
#ifndef SAKER_CONF_ROUTE_STATIC_H
#define SAKER_CONF_ROUTE_STATIC_H

#include <stdbool.h>
#include <stddef.h>

#include "conf/config_compression.h"
#include "conf/handler_schema.h"

struct route_static_type {
    char *ext;  /* lower case, without the dot */
    char *type;
};

struct route_static {
    char *root;       /* as written; validated to be a directory at load */
    char **indexes;   /* ["index.html"] unless set */
    size_t index_count;
    enum config_coding precompressed[CODING_COUNT]; /* in preference order */
    size_t precompressed_count;
    bool serve_dotfiles;
    bool browse;
    char *cache_control;  /* NULL: none */
    char *default_type;   /* for names no table knows */
    struct route_static_type *types;
    size_t type_count;
};

extern const struct handler_schema route_static_schema;

#endif
