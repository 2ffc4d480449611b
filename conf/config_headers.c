/*
 * config_headers.c - a `headers:` map (a route's, a fixed response's); see
 * cfg_parse_header_map in config_parse.h.
 *
 * Header names and values are checked here so that a response built from
 * them can never split: a name is an HTTP token, a value holds no CR, LF
 * or NUL, and the framing headers are the server's alone.
 */
#include "conf/config_parse.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* RFC 9110 section 5.6.2: token = 1*tchar. */
static bool is_token(const char *text)
{
    if (*text == '\0')
        return false;
    for (; *text; text++)
        if (!isalnum((unsigned char)*text) && !strchr("!#$%&'*+-.^_`|~", *text))
            return false;
    return true;
}

/* The worker computes these from the body and the connection; a fixed
 * value could contradict the body and desynchronise the client. */
static bool is_framing_header(const char *name)
{
    return strcasecmp(name, "Content-Length") == 0 ||
           strcasecmp(name, "Transfer-Encoding") == 0 || strcasecmp(name, "Connection") == 0;
}

static int parse_header(const struct cfg_ctx *ctx, const yaml_node_pair_t *pair,
                        struct config_header *header)
{
    yaml_node_t *key = cfg_node(ctx, pair->key), *value = cfg_node(ctx, pair->value);
    const char *name = (const char *)key->data.scalar.value;
    const char *text = cfg_is_null(value) ? "" : (const char *)value->data.scalar.value;

    if (!is_token(name))
        return cfg_fail(ctx, key, "header name '%.80s' is not an HTTP token", name);
    if (is_framing_header(name))
        return cfg_fail(ctx, key, "header '%.80s' is set by the server; remove it", name);
    if (!cfg_is_null(value)) {
        if (cfg_expect(ctx, value, YAML_SCALAR_NODE, name) != SK_OK)
            return SK_ERROR;
        /* RFC 9110 section 5.5: CR, LF and NUL are never valid in a value. */
        if (strlen(text) != value->data.scalar.length || strpbrk(text, "\r\n"))
            return cfg_fail(ctx, value, "header '%.80s': the value contains CR, LF or NUL",
                            name);
    }
    header->name = cfg_strdup(ctx, key, name);
    header->value = cfg_strdup(ctx, value, text);
    header->name_len = strlen(name);
    header->value_len = strlen(text);
    return header->name && header->value ? SK_OK : SK_ERROR;
}

int cfg_parse_header_map(const struct cfg_ctx *ctx, const yaml_node_t *node,
                         struct config_header **headers, size_t *header_count,
                         const char *const *refuse, const char *why)
{
    if (node == NULL)
        return SK_OK;
    if (cfg_expect(ctx, node, YAML_MAPPING_NODE, "headers") != SK_OK ||
        cfg_check_keys(ctx, node) != SK_OK)
        return SK_ERROR;
    size_t count = (size_t)(node->data.mapping.pairs.top - node->data.mapping.pairs.start);
    if (count == 0)
        return SK_OK;
    if ((*headers = calloc(count, sizeof **headers)) == NULL)
        return cfg_fail(ctx, node, "out of memory");
    *header_count = count;
    for (size_t i = 0; i < count; i++) {
        const yaml_node_pair_t *pair = node->data.mapping.pairs.start + i;
        yaml_node_t *key = cfg_node(ctx, pair->key);
        const char *name = (const char *)key->data.scalar.value;
        for (const char *const *r = refuse; r != NULL && *r != NULL; r++)
            if (strcasecmp(name, *r) == 0)
                return cfg_fail(ctx, key, "header '%.80s' %s", name, why);
        if (parse_header(ctx, pair, &(*headers)[i]) != SK_OK)
            return SK_ERROR;
    }
    return SK_OK;
}

void cfg_headers_free(struct config_header *headers, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        free(headers[i].name);
        free(headers[i].value);
    }
    free(headers);
}
