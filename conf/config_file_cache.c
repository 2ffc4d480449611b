/*
 * config_file_cache.c - the top level's `open_file_cache:`, static files
 * kept open by each worker across requests (worker/file_cache.h):
 *
 *   open_file_cache: { max: 10000, valid: 60s }
 *   open_file_cache: off          # the default
 *
 * nginx's open_file_cache and open_file_cache_valid under one key, with
 * nginx's 60 s default for valid. Off by default, as in nginx: a kept
 * entry may answer for a file changed on disk until `valid` has passed,
 * which an operator should choose knowingly; off, a worker still shares
 * what it opened within one loop turn. max is required (nginx has no
 * default either) and bounded so that a typo cannot reserve gigabytes.
 */
#include "conf/config_parse.h"

#define FILE_CACHE_MAX_ENTRIES 1000000

#define FC(field) offsetof(struct config_file_cache, field)

static const struct cfg_option file_cache_options[] = {
    {.name = "max", .offset = FC(max), .scalar = cfg_parse_positive, .required = true},
    {.name = "valid", .offset = FC(valid_ms), .scalar = cfg_parse_duration, .def = "60s"},
};

static const struct cfg_section file_cache_section = {
    file_cache_options, sizeof file_cache_options / sizeof file_cache_options[0], NULL};

int cfg_parse_file_cache(const struct cfg_ctx *ctx, const yaml_node_t *node, void *base)
{
    struct config_file_cache *cache = &((struct config *)base)->open_file_cache;
    struct config_file_cache parsed = {0};

    *cache = parsed;
    if (node == NULL)
        return SK_OK;
    if (node->type == YAML_SCALAR_NODE && cfg_is_off((const char *)node->data.scalar.value))
        return SK_OK;
    if (cfg_expect(ctx, node, YAML_MAPPING_NODE, "open_file_cache") != SK_OK ||
        cfg_apply_section(ctx, node, &file_cache_section, &parsed, "open_file_cache") != SK_OK)
        return SK_ERROR;
    if (parsed.max > FILE_CACHE_MAX_ENTRIES)
        return cfg_fail(ctx, cfg_lookup(ctx, node, "max"),
                        "open_file_cache: max must be at most %d", FILE_CACHE_MAX_ENTRIES);
    if (parsed.valid_ms == 0)
        return cfg_fail(ctx, cfg_lookup(ctx, node, "valid"),
                        "open_file_cache: valid must be more than 0 (for no cache across "
                        "requests, write open_file_cache: off)");
    *cache = parsed;
    return SK_OK;
}
