/*
 * route_return.c - the options of `return:`; see route_return.h.
 */
#include "conf/route_return.h"

#include <stdlib.h>
#include <string.h>

#include "conf/config_parse.h"

static int parse_status(const char *key, const char *text, size_t len, void *field,
                        struct err *why)
{
    uint64_t value;

    if (cfg_parse_uint(key, text, len, &value, why) != SK_OK || value < 100 || value > 599)
        return err_set(why, "%s: expected an integer from 100 to 599, got '%.80s'", key,
                       text);
    *(int *)field = (int)value;
    return SK_OK;
}

/* Offset 0: fills ret->body and ret->body_len; the body may hold NULs. */
static int parse_body(const char *key, const char *text, size_t len, void *field,
                      struct err *why)
{
    struct route_return *ret = field;

    (void)key;
    if ((ret->body = malloc(len + 1)) == NULL)
        return err_set(why, "out of memory");
    memcpy(ret->body, text, len);
    ret->body[len] = '\0';
    ret->body_len = len;
    return SK_OK;
}

/* Base: struct route_return. */
static int parse_headers(const struct cfg_ctx *ctx, const yaml_node_t *node, void *base)
{
    struct route_return *ret = base;
    return cfg_parse_header_map(ctx, node, &ret->headers, &ret->header_count, NULL, NULL);
}

static const struct cfg_option return_options[] = {
    {.name = "status", .offset = offsetof(struct route_return, status),
     .scalar = parse_status, .required = true},
    {.name = "headers", .node = parse_headers},
    {.name = "body", .offset = 0, .scalar = parse_body, .def = "", .binary = true},
};

static const struct cfg_section return_section = {
    return_options, sizeof return_options / sizeof return_options[0], NULL};

static void return_release(void *handler_config)
{
    struct route_return *ret = handler_config;
    cfg_headers_free(ret->headers, ret->header_count);
    free(ret->body);
}

const struct handler_schema route_return_schema = {
    .name = "return",
    .section = &return_section,
    .config_size = sizeof(struct route_return),
    .own_headers = true,
    .release = return_release,
};
