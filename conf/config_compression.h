/*
 * config_compression.h - `compression:`, response compression as the
 * config gives it, at the top level (every route's default) and per
 * route (applied over the top level's):
 *
 *   compression:
 *     enable: true                 # true wherever a compression: map is written
 *     providers: [br, gzip]        # the server's preference on equal q-values
 *     level: { br: 1, gzip: 1 }    # or fastest | optimal | smallest
 *     mime_types: [text/html, application/json]  # or a wildcard: text/ and a star
 *     min_length: 256              # known-length bodies shorter stay identity
 *     enable_for_https: false      # BREACH: secrets beside attacker text
 *
 * The names and defaults are ASP.NET Core's ResponseCompression: its
 * providers and MIME list, its "Fastest" level (Brotli quality 1, zlib
 * level 1, also nginx's gzip_comp_level default), EnableForHttps false;
 * min_length is nginx's gzip_min_length. Without any `compression:` map
 * nothing is compressed, as in both.
 */
#ifndef SAKER_CONF_CONFIG_COMPRESSION_H
#define SAKER_CONF_CONFIG_COMPRESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Content codings saker produces (RFC 9110 section 8.4.1). */
enum config_coding { CODING_BR, CODING_GZIP, CODING_DEFLATE, CODING_COUNT };

struct config_compression {
    bool enable;
    bool enable_for_https;
    uint64_t min_length;
    enum config_coding providers[CODING_COUNT]; /* in preference order */
    size_t provider_count;
    uint64_t level[CODING_COUNT]; /* br 0-11; gzip and deflate 1-9 */
    char **mime_types; /* lower-case types, or wildcards (a major type and a star, or any) */
    size_t mime_type_count;
    bool owns_mime_types; /* a route's own list, not the top level's */
};

/* "br", "gzip", "deflate": the token in Accept-Encoding and Content-Encoding. */
const char *config_coding_name(enum config_coding coding);
/* The coding named by token (case-insensitive), or -1. */
int config_coding_find(const char *token, size_t len);
void config_compression_free(struct config_compression *c);

#endif
