/*
 * config_compression.c - the `compression:` maps, top level and per
 * route; see config_compression.h.
 *
 * A route's map is applied over a copy of the top level's once the whole
 * file is read (the top-level key may come after `routes:`), so a route
 * says only what differs: `compression: { enable: false }` for a route
 * that serves secrets, `{ level: smallest }` for one of static assets.
 */
#include "conf/config_parse.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *const coding_names[CODING_COUNT] = {"br", "gzip", "deflate"};

/* ASP.NET Core's ResponseCompressionDefaults.MimeTypes. */
static const char *const default_mime_types[] = {
    "text/plain", "text/css", "application/javascript", "text/javascript", "text/html",
    "application/xml", "text/xml", "application/json", "text/json", "application/wasm"};
#define DEFAULT_MIME_COUNT (sizeof default_mime_types / sizeof default_mime_types[0])

const char *config_coding_name(enum config_coding coding)
{
    return coding_names[coding];
}

int config_coding_find(const char *token, size_t len)
{
    for (int i = 0; i < CODING_COUNT; i++)
        if (strlen(coding_names[i]) == len && strncasecmp(coding_names[i], token, len) == 0)
            return i;
    return -1;
}

static void free_mime_types(char **types, size_t count)
{
    for (size_t i = 0; i < count; i++)
        free(types[i]);
    free(types);
}

void config_compression_free(struct config_compression *c)
{
    if (c->owns_mime_types)
        free_mime_types(c->mime_types, c->mime_type_count);
    c->mime_types = NULL;
    c->mime_type_count = 0;
    c->owns_mime_types = false;
}

/* ---- providers and levels ------------------------------------------- */

int cfg_parse_coding_list(const struct cfg_ctx *ctx, const yaml_node_t *node, const char *what,
                          unsigned allowed, enum config_coding *out, size_t *count)
{
    const char *names[CODING_COUNT];
    enum config_coding codings[CODING_COUNT];
    size_t n = 0;
    for (int i = 0; i < CODING_COUNT; i++)
        if (allowed & (1u << i))
            codings[n] = (enum config_coding)i, names[n++] = coding_names[i];
    if (cfg_expect(ctx, node, YAML_SEQUENCE_NODE, what) != SK_OK)
        return SK_ERROR;
    *count = 0;
    for (yaml_node_item_t *i = node->data.sequence.items.start; i < node->data.sequence.items.top;
         i++) {
        yaml_node_t *item = cfg_node(ctx, *i);
        struct err why;
        if (cfg_expect(ctx, item, YAML_SCALAR_NODE, what) != SK_OK)
            return SK_ERROR;
        int k = cfg_choice(what, (const char *)item->data.scalar.value, names, n, &why);
        if (k < 0)
            return cfg_fail(ctx, item, "%s", why.message);
        for (size_t j = 0; j < *count; j++)
            if (out[j] == codings[k])
                return cfg_fail(ctx, item, "%s: '%s' is listed twice", what, names[k]);
        out[(*count)++] = codings[k];
    }
    return SK_OK;
}

static int parse_providers(const struct cfg_ctx *ctx, const yaml_node_t *node, void *base)
{
    struct config_compression *c = base;
    if (node == NULL)
        return SK_OK;
    if (cfg_parse_coding_list(ctx, node, "providers", (1u << CODING_COUNT) - 1, c->providers,
                              &c->provider_count) != SK_OK)
        return SK_ERROR;
    if (c->provider_count == 0)
        return cfg_fail(ctx, node, "providers: expected at least one of br, gzip or deflate");
    return SK_OK;
}

/* .NET's CompressionLevel names: Fastest, Optimal (zlib's default 6,
 * Brotli's 4) and SmallestSize. */
static const char *const level_names[] = {"fastest", "optimal", "smallest"};
static const uint64_t named_levels[][CODING_COUNT] = {{1, 1, 1}, {4, 6, 6}, {11, 9, 9}};

static int parse_level_value(const struct cfg_ctx *ctx, const yaml_node_t *item,
                             enum config_coding coding, uint64_t *out)
{
    struct err why;
    uint64_t min = coding == CODING_BR ? 0 : 1, max = coding == CODING_BR ? 11 : 9;
    if (cfg_expect(ctx, item, YAML_SCALAR_NODE, coding_names[coding]) != SK_OK)
        return SK_ERROR;
    if (cfg_parse_uint(coding_names[coding], (const char *)item->data.scalar.value,
                       item->data.scalar.length, out, &why) != SK_OK ||
        *out < min || *out > max)
        return cfg_fail(ctx, item, "level.%s: expected %llu to %llu, got '%.40s'",
                        coding_names[coding], (unsigned long long)min,
                        (unsigned long long)max, (const char *)item->data.scalar.value);
    return SK_OK;
}

static int parse_level_map(const struct cfg_ctx *ctx, const yaml_node_t *node,
                           struct config_compression *c)
{
    if (cfg_check_keys(ctx, node) != SK_OK)
        return SK_ERROR;
    for (yaml_node_pair_t *p = node->data.mapping.pairs.start; p < node->data.mapping.pairs.top;
         p++) {
        yaml_node_t *key = cfg_node(ctx, p->key);
        const char *name = (const char *)key->data.scalar.value;
        int coding = config_coding_find(name, strlen(name));
        if (coding < 0)
            return cfg_fail(ctx, key, "level: unknown coding '%.40s'; expected br, gzip or "
                                      "deflate", name);
        if (parse_level_value(ctx, cfg_node(ctx, p->value), (enum config_coding)coding,
                              &c->level[coding]) != SK_OK)
            return SK_ERROR;
    }
    return SK_OK;
}

static int parse_level(const struct cfg_ctx *ctx, const yaml_node_t *node, void *base)
{
    struct config_compression *c = base;
    struct err why;
    if (node == NULL)
        return SK_OK;
    if (node->type == YAML_MAPPING_NODE)
        return parse_level_map(ctx, node, c);
    if (cfg_expect(ctx, node, YAML_SCALAR_NODE, "level") != SK_OK)
        return SK_ERROR;
    int named = CFG_CHOICE("level", (const char *)node->data.scalar.value, level_names, &why);
    if (named < 0)
        return cfg_fail(ctx, node, "%s (or a map such as { br: 4, gzip: 5 })", why.message);
    memcpy(c->level, named_levels[named], sizeof c->level);
    return SK_OK;
}

/* ---- MIME types ------------------------------------------------------ */

static bool mime_type_valid(const char *t)
{
    const char *slash = strchr(t, '/');
    if (slash == NULL || slash == t || slash[1] == '\0' || strchr(slash + 1, '/') != NULL)
        return false;
    for (const char *p = t; *p; p++)
        if (*p <= ' ' || *p >= 0x7f || *p == ';' || *p == ',')
            return false;
    return strcmp(t, "*/*") == 0 || t[0] != '*';
}

static int parse_mime_types(const struct cfg_ctx *ctx, const yaml_node_t *node, void *base)
{
    struct config_compression *c = base;
    if (node == NULL)
        return SK_OK;
    if (cfg_expect(ctx, node, YAML_SEQUENCE_NODE, "mime_types") != SK_OK)
        return SK_ERROR;
    size_t count = (size_t)(node->data.sequence.items.top - node->data.sequence.items.start);
    char **types = calloc(count ? count : 1, sizeof *types);
    if (types == NULL)
        return cfg_fail(ctx, node, "out of memory");
    for (size_t i = 0; i < count; i++) {
        yaml_node_t *item = cfg_node(ctx, node->data.sequence.items.start[i]);
        if (cfg_expect(ctx, item, YAML_SCALAR_NODE, "mime_types") != SK_OK ||
            !mime_type_valid((const char *)item->data.scalar.value) ||
            (types[i] = cfg_strdup(ctx, item, (const char *)item->data.scalar.value)) == NULL) {
            free_mime_types(types, i);
            if (item->type != YAML_SCALAR_NODE)
                return SK_ERROR;
            return cfg_fail(ctx, item, "mime_types: expected a type such as text/html, text/* "
                                       "or */*, got '%.80s'",
                            (const char *)item->data.scalar.value);
        }
        for (char *p = types[i]; *p; p++)
            *p = (char)tolower((unsigned char)*p);
    }
    config_compression_free(c);
    c->mime_types = types;
    c->mime_type_count = count;
    c->owns_mime_types = true;
    return SK_OK;
}

static int default_mime_types_list(const struct cfg_ctx *ctx, struct config_compression *c)
{
    if ((c->mime_types = calloc(DEFAULT_MIME_COUNT, sizeof *c->mime_types)) == NULL)
        return cfg_fail(ctx, NULL, "out of memory");
    c->owns_mime_types = true;
    for (size_t i = 0; i < DEFAULT_MIME_COUNT; i++, c->mime_type_count++)
        if ((c->mime_types[i] = strdup(default_mime_types[i])) == NULL)
            return cfg_fail(ctx, NULL, "out of memory");
    return SK_OK;
}

/* ---- the map ---------------------------------------------------------- */

#define COMP(field) offsetof(struct config_compression, field)

static const struct cfg_option compression_options[] = {
    {.name = "enable", .offset = COMP(enable), .scalar = cfg_parse_bool},
    {.name = "providers", .node = parse_providers},
    {.name = "level", .node = parse_level},
    {.name = "mime_types", .node = parse_mime_types},
    {.name = "min_length", .offset = COMP(min_length), .scalar = cfg_parse_size},
    {.name = "enable_for_https", .offset = COMP(enable_for_https), .scalar = cfg_parse_bool},
};

static const struct cfg_section compression_section = {
    compression_options, sizeof compression_options / sizeof compression_options[0], NULL};

/* The defaults, before any map: off until a map turns it on. */
static int compression_defaults(const struct cfg_ctx *ctx, struct config_compression *c)
{
    *c = (struct config_compression){
        .min_length = 256,
        .providers = {CODING_BR, CODING_GZIP},
        .provider_count = 2,
        .level = {1, 1, 1},
    };
    return default_mime_types_list(ctx, c);
}

static int apply_map(const struct cfg_ctx *ctx, const yaml_node_t *node,
                     struct config_compression *c)
{
    if (cfg_expect(ctx, node, YAML_MAPPING_NODE, "compression") != SK_OK)
        return SK_ERROR;
    c->enable = true;
    if (node->data.mapping.pairs.start == node->data.mapping.pairs.top)
        return SK_OK; /* `compression: {}`: every default */
    return cfg_apply_overrides(ctx, node, &compression_section, c, "compression");
}

int cfg_parse_compression(const struct cfg_ctx *ctx, const yaml_node_t *node, void *base)
{
    struct config *config = base;
    if (config->compression.mime_types == NULL &&
        compression_defaults(ctx, &config->compression) != SK_OK)
        return SK_ERROR;
    if (node == NULL)
        return SK_OK;
    return apply_map(ctx, node, &config->compression);
}

int cfg_parse_route_compression(const struct cfg_ctx *ctx, const yaml_node_t *node,
                                void *base)
{
    struct route *route = base;
    if (node != NULL)
        route->compression_node = (int)(node - ctx->doc->nodes.start) + 1;
    return SK_OK;
}

static int route_compression(const struct cfg_ctx *ctx, const struct config *config,
                             struct route *route)
{
    route->compression = &config->compression;
    if (route->compression_node == 0)
        return SK_OK;
    struct config_compression *own = malloc(sizeof *own);
    if (own == NULL)
        return cfg_fail(ctx, NULL, "out of memory");
    *own = config->compression;
    own->owns_mime_types = false; /* shared until the route names its own */
    route->own_compression = own;
    route->compression = own;
    int rc = apply_map(ctx, cfg_node(ctx, route->compression_node), own);
    route->compression_node = 0; /* the document is gone after loading */
    return rc;
}

int cfg_routes_apply_compression(const struct cfg_ctx *ctx, struct config *config)
{
    if (config->compression.mime_types == NULL &&
        compression_defaults(ctx, &config->compression) != SK_OK)
        return SK_ERROR;
    for (size_t i = 0; i < config->route_count; i++)
        if (route_compression(ctx, config, &config->routes[i]) != SK_OK)
            return SK_ERROR;
    return SK_OK;
}
