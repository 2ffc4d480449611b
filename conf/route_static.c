/*
 * route_static.c - the options of `static:`; see route_static.h.
 */
#include "conf/route_static.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "conf/config_parse.h"

int cfg_check_static_root(const char *root, struct err *why)
{
    struct stat st;

    if (stat(root, &st) != 0)
        return err_set_errno(why, errno, "static root '%.200s'", root);
    if (!S_ISDIR(st.st_mode))
        return err_set_errno(why, ENOTDIR, "static root '%.200s'", root);
    return SK_OK;
}

static int parse_root(const char *key, const char *text, size_t len, void *field,
                      struct err *why)
{
    if (cfg_check_static_root(text, why) != SK_OK)
        return SK_ERROR;
    return cfg_parse_string(key, text, len, field, why);
}

static void free_strings(char **list, size_t count)
{
    for (size_t i = 0; i < count; i++)
        free(list[i]);
    free(list);
}

/* A scalar or a sequence of scalars, each checked by one_ok, into a
 * NUL-free list. */
static int parse_name_list(const struct cfg_ctx *ctx, const yaml_node_t *node, const char *what,
                           bool (*one_ok)(const char *), const char *expected, char ***out,
                           size_t *count)
{
    bool seq = node->type == YAML_SEQUENCE_NODE;
    if (!seq && cfg_expect(ctx, node, YAML_SCALAR_NODE, what) != SK_OK)
        return SK_ERROR;
    size_t n = seq ? (size_t)(node->data.sequence.items.top - node->data.sequence.items.start) : 1;
    char **list = calloc(n ? n : 1, sizeof *list);
    if (list == NULL)
        return cfg_fail(ctx, node, "out of memory");
    for (size_t i = 0; i < n; i++) {
        yaml_node_t *item = seq ? cfg_node(ctx, node->data.sequence.items.start[i])
                                : (yaml_node_t *)node;
        const char *text = item->type == YAML_SCALAR_NODE ? (const char *)item->data.scalar.value
                                                          : NULL;
        if (text == NULL || !one_ok(text) || (list[i] = cfg_strdup(ctx, item, text)) == NULL) {
            free_strings(list, i);
            return text == NULL ? cfg_expect(ctx, item, YAML_SCALAR_NODE, what)
                                : cfg_fail(ctx, item, "%s: expected %s, got '%.80s'", what,
                                           expected, text);
        }
    }
    if (n == 0) {
        free(list);
        return cfg_fail(ctx, node, "%s: expected at least one name", what);
    }
    free_strings(*out, *count);
    *out = list;
    *count = n;
    return SK_OK;
}

static bool index_name_ok(const char *text)
{
    return text[0] != '\0' && strchr(text, '/') == NULL && strcmp(text, ".") != 0 &&
           strcmp(text, "..") != 0;
}

static int parse_index(const struct cfg_ctx *ctx, const yaml_node_t *node, void *base)
{
    struct route_static *files = base;
    if (node != NULL)
        return parse_name_list(ctx, node, "index", index_name_ok, "a file name without '/'",
                               &files->indexes, &files->index_count);
    if (files->index_count > 0)
        return SK_OK;
    if ((files->indexes = calloc(1, sizeof *files->indexes)) == NULL ||
        (files->indexes[0] = strdup("index.html")) == NULL)
        return cfg_fail(ctx, NULL, "out of memory");
    files->index_count = 1;
    return SK_OK;
}

/* Sidecars exist for br (.br) and gzip (.gz) only. */
static int parse_precompressed(const struct cfg_ctx *ctx, const yaml_node_t *node, void *base)
{
    struct route_static *files = base;
    if (node == NULL)
        return SK_OK;
    return cfg_parse_coding_list(ctx, node, "precompressed",
                                 (1u << CODING_BR) | (1u << CODING_GZIP), files->precompressed,
                                 &files->precompressed_count);
}

/* A header value: no CR, LF or other control character. */
static int parse_header_value(const char *key, const char *text, size_t len, void *field,
                              struct err *why)
{
    for (const char *p = text; *p; p++)
        if ((unsigned char)*p < 0x20 && *p != '\t')
            return err_set(why, "%s: contains a control character", key);
    return cfg_parse_string(key, text, len, field, why);
}

static int parse_type(const struct cfg_ctx *ctx, const yaml_node_t *key,
                      const yaml_node_t *value, struct route_static_type *t)
{
    const char *ext = (const char *)key->data.scalar.value;
    struct err why;
    if (ext[0] != '.' || ext[1] == '\0' || strchr(ext + 1, '.') != NULL ||
        strchr(ext, '/') != NULL || strlen(ext) > 16)
        return cfg_fail(ctx, key, "mime_types: expected an extension such as \".wasm\", got "
                                  "'%.40s'", ext);
    if (cfg_expect(ctx, value, YAML_SCALAR_NODE, ext) != SK_OK)
        return SK_ERROR;
    if (parse_header_value(ext, (const char *)value->data.scalar.value,
                           value->data.scalar.length, &t->type, &why) != SK_OK)
        return cfg_fail(ctx, value, "mime_types: %s", why.message);
    if ((t->ext = cfg_strdup(ctx, key, ext + 1)) == NULL)
        return SK_ERROR;
    for (char *p = t->ext; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    return SK_OK;
}

static int parse_types(const struct cfg_ctx *ctx, const yaml_node_t *node, void *base)
{
    struct route_static *files = base;
    if (node == NULL)
        return SK_OK;
    if (cfg_expect(ctx, node, YAML_MAPPING_NODE, "mime_types") != SK_OK ||
        cfg_check_keys(ctx, node) != SK_OK)
        return SK_ERROR;
    size_t n = (size_t)(node->data.mapping.pairs.top - node->data.mapping.pairs.start);
    if ((files->types = calloc(n ? n : 1, sizeof *files->types)) == NULL)
        return cfg_fail(ctx, node, "out of memory");
    for (size_t i = 0; i < n; i++, files->type_count++) {
        const yaml_node_pair_t *p = &node->data.mapping.pairs.start[i];
        if (parse_type(ctx, cfg_node(ctx, p->key), cfg_node(ctx, p->value), &files->types[i]) !=
            SK_OK) {
            files->type_count++; /* what it set is freed with the rest */
            return SK_ERROR;
        }
    }
    return SK_OK;
}

#define FILES(field) offsetof(struct route_static, field)

static const struct cfg_option static_options[] = {
    {.name = "root", .offset = FILES(root), .scalar = parse_root, .required = true},
    {.name = "index", .node = parse_index},
    {.name = "precompressed", .node = parse_precompressed},
    {.name = "serve_dotfiles", .offset = FILES(serve_dotfiles), .scalar = cfg_parse_bool,
     .def = "false"},
    {.name = "browse", .offset = FILES(browse), .scalar = cfg_parse_bool, .def = "false"},
    {.name = "cache_control", .offset = FILES(cache_control), .scalar = parse_header_value},
    {.name = "default_type", .offset = FILES(default_type), .scalar = parse_header_value,
     .def = "application/octet-stream"},
    {.name = "mime_types", .node = parse_types},
};

static const struct cfg_section static_section = {
    static_options, sizeof static_options / sizeof static_options[0], NULL};

static void static_release(void *handler_config)
{
    struct route_static *files = handler_config;
    free(files->root);
    free_strings(files->indexes, files->index_count);
    free(files->cache_control);
    free(files->default_type);
    for (size_t i = 0; i < files->type_count; i++) {
        free(files->types[i].ext);
        free(files->types[i].type);
    }
    free(files->types);
}

const struct handler_schema route_static_schema = {
    .name = "static",
    .section = &static_section,
    .config_size = sizeof(struct route_static),
    .release = static_release,
};
