/*
 * config_yaml.c - libyaml document helpers for the loader: locations,
 * node kinds, key checks and "did you mean" suggestions; see config_parse.h.
 *
 * libyaml marks are 0-based; messages are 1-based like every compiler's,
 * so an editor can jump to FILE:LINE:COLUMN.
 */
#include "conf/config_parse.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cfg_fail(const struct cfg_ctx *ctx, const yaml_node_t *node, const char *fmt, ...)
{
    char message[ERR_MESSAGE_MAX];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    if (node == NULL)
        return err_set(ctx->err, "%s: %s", ctx->file, message);
    return err_set(ctx->err, "%s:%zu:%zu: %s", ctx->file, node->start_mark.line + 1,
                   node->start_mark.column + 1, message);
}

yaml_node_t *cfg_node(const struct cfg_ctx *ctx, int index)
{
    return yaml_document_get_node(ctx->doc, index);
}

bool cfg_is_null(const yaml_node_t *node)
{
    static const char *const nulls[] = {"", "~", "null", "Null", "NULL"};

    if (node == NULL)
        return true;
    if (node->type != YAML_SCALAR_NODE || node->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return false;
    for (size_t i = 0; i < sizeof nulls / sizeof nulls[0]; i++)
        if (strcmp((const char *)node->data.scalar.value, nulls[i]) == 0)
            return true;
    return false;
}

const char *cfg_kind(const yaml_node_t *node)
{
    if (cfg_is_null(node))
        return "null";
    switch (node->type) {
    case YAML_MAPPING_NODE:
        return "a mapping";
    case YAML_SEQUENCE_NODE:
        return "a sequence";
    default:
        return "a scalar";
    }
}

int cfg_expect(const struct cfg_ctx *ctx, const yaml_node_t *node, yaml_node_type_t type,
               const char *what)
{
    const char *want = type == YAML_MAPPING_NODE    ? "a mapping"
                       : type == YAML_SEQUENCE_NODE ? "a sequence"
                                                    : "a scalar";
    if (node->type == type && !(type == YAML_SCALAR_NODE && cfg_is_null(node)))
        return SK_OK;
    return cfg_fail(ctx, node, "%s: expected %s, got %s", what, want, cfg_kind(node));
}

static const char *key_text(const struct cfg_ctx *ctx, const yaml_node_pair_t *pair)
{
    yaml_node_t *key = cfg_node(ctx, pair->key);
    return key->type == YAML_SCALAR_NODE ? (const char *)key->data.scalar.value : NULL;
}

int cfg_check_keys(const struct cfg_ctx *ctx, const yaml_node_t *map)
{
    const yaml_node_pair_t *start = map->data.mapping.pairs.start;
    const yaml_node_pair_t *top = map->data.mapping.pairs.top;

    for (const yaml_node_pair_t *p = start; p < top; p++) {
        const char *name = key_text(ctx, p);
        if (name == NULL)
            return cfg_fail(ctx, cfg_node(ctx, p->key), "expected a scalar key, got %s",
                            cfg_kind(cfg_node(ctx, p->key)));
        for (const yaml_node_pair_t *q = start; q < p; q++)
            if (strcmp(key_text(ctx, q), name) == 0)
                return cfg_fail(ctx, cfg_node(ctx, p->key),
                                "duplicate key '%.80s' (first at line %zu)", name,
                                cfg_node(ctx, q->key)->start_mark.line + 1);
    }
    return SK_OK;
}

yaml_node_t *cfg_lookup(const struct cfg_ctx *ctx, const yaml_node_t *map, const char *key)
{
    if (map == NULL)
        return NULL;
    for (const yaml_node_pair_t *p = map->data.mapping.pairs.start;
         p < map->data.mapping.pairs.top; p++) {
        const char *name = key_text(ctx, p);
        if (name != NULL && strcmp(name, key) == 0)
            return cfg_node(ctx, p->value);
    }
    return NULL;
}

/* Optimal string alignment distance: Levenshtein plus the swap of two
 * neighbours, the commonest typo ("wrokers"). Long words are never close. */
static size_t edit_distance(const char *a, const char *b)
{
    enum { MAX = 64 };
    size_t la = strlen(a), lb = strlen(b), d[MAX + 1][MAX + 1];

    if (la > MAX || lb > MAX)
        return MAX;
    for (size_t i = 0; i <= la; i++)
        d[i][0] = i;
    for (size_t j = 0; j <= lb; j++)
        d[0][j] = j;
    for (size_t i = 1; i <= la; i++)
        for (size_t j = 1; j <= lb; j++) {
            size_t cost = a[i - 1] != b[j - 1], best = d[i - 1][j - 1] + cost;
            if (d[i - 1][j] + 1 < best)
                best = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < best)
                best = d[i][j - 1] + 1;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                d[i - 2][j - 2] + 1 < best)
                best = d[i - 2][j - 2] + 1;
            d[i][j] = best;
        }
    return d[la][lb];
}

const char *cfg_suggest(const char *word, const char *const *names, size_t count)
{
    const char *best = NULL;
    size_t best_distance = 3;

    for (size_t i = 0; i < count; i++) {
        size_t distance = edit_distance(word, names[i]);
        if (distance < best_distance) {
            best = names[i];
            best_distance = distance;
        }
    }
    return best;
}

char *cfg_strdup(const struct cfg_ctx *ctx, const yaml_node_t *node, const char *text)
{
    char *copy = strdup(text);
    if (copy == NULL)
        cfg_fail(ctx, node, "out of memory");
    return copy;
}

/* Reader errors (bad UTF-8, a NUL byte) carry a byte offset, not a mark. */
static void offset_to_mark(const char *text, size_t len, size_t offset, yaml_mark_t *mark)
{
    mark->line = 0;
    mark->column = 0;
    for (size_t i = 0; i < offset && i < len; i++) {
        if (text[i] == '\n') {
            mark->line++;
            mark->column = 0;
        } else {
            mark->column++;
        }
    }
}

static int syntax_error(const yaml_parser_t *parser, const char *text, size_t len,
                        const char *file, struct err *err)
{
    yaml_mark_t mark = parser->problem_mark;
    const char *problem = parser->problem ? parser->problem : "cannot parse";

    if (parser->error == YAML_MEMORY_ERROR)
        return err_set(err, "%s: out of memory", file);
    if (parser->error == YAML_READER_ERROR)
        offset_to_mark(text, len, parser->problem_offset, &mark);
    if (parser->context == NULL)
        return err_set(err, "%s:%zu:%zu: syntax error: %s", file, mark.line + 1,
                       mark.column + 1, problem);
    return err_set(err, "%s:%zu:%zu: syntax error: %s (%s at line %zu, column %zu)", file,
                   mark.line + 1, mark.column + 1, problem, parser->context,
                   parser->context_mark.line + 1, parser->context_mark.column + 1);
}

/* Loads the first document and refuses a second one: a stray "---" would
 * otherwise hide the rest of the file from validation. */
int cfg_load_document(const char *text, size_t len, const char *file, yaml_document_t *doc,
                      struct err *err)
{
    yaml_parser_t parser;
    yaml_document_t extra;
    int rc = SK_OK;

    if (!yaml_parser_initialize(&parser))
        return err_set(err, "%s: out of memory", file);
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    if (!yaml_parser_load(&parser, doc)) {
        rc = syntax_error(&parser, text, len, file, err);
        yaml_parser_delete(&parser);
        return rc;
    }
    if (!yaml_parser_load(&parser, &extra)) {
        rc = syntax_error(&parser, text, len, file, err);
    } else {
        yaml_node_t *root = yaml_document_get_root_node(&extra);
        if (root != NULL)
            rc = err_set(err, "%s:%zu:%zu: only one YAML document is allowed", file,
                         root->start_mark.line + 1, root->start_mark.column + 1);
        yaml_document_delete(&extra);
    }
    if (rc != SK_OK)
        yaml_document_delete(doc);
    yaml_parser_delete(&parser);
    return rc;
}
