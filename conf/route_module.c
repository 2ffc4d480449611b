/*
 * route_module.c - the options of `module:`; see route_module.h.
 */
#include "conf/route_module.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/config_parse.h"
#include "include/saker/module.h"

/* "handler 'x' is not a handler of the loaded modules; did you mean 'y'?" */
static int unknown_handler(const struct cfg_ctx *ctx, const yaml_node_t *at, const char *name)
{
    enum { NAMES_MAX = 64 };
    const char *names[NAMES_MAX];
    size_t count = 0;
    const struct config *config = ctx->config;

    for (size_t i = 0; config != NULL && i < config->module_count; i++) {
        const struct saker_module *d = config->modules[i].desc;
        for (const struct saker_handler *h = d ? d->handlers : NULL;
             h && h->name && count < NAMES_MAX; h++)
            names[count++] = h->name;
    }
    if (count == 0)
        return cfg_fail(ctx, at, "module: handler '%.80s': no module is loaded (add it under "
                                 "'modules')", name);
    const char *near = cfg_suggest(name, names, count);
    if (near != NULL)
        return cfg_fail(ctx, at, "module: handler '%.80s' is not a handler of the loaded "
                                 "modules; did you mean '%s'?", name, near);
    char list[400];
    cfg_join_names(list, sizeof list, names, count, "'");
    return cfg_fail(ctx, at, "module: handler '%.80s' is not a handler of the loaded modules "
                             "(%s)", name, list);
}

/* The `handler` row: read before the table is built. */
static int skip_handler(const struct cfg_ctx *ctx, const yaml_node_t *node, void *base)
{
    (void)ctx, (void)node, (void)base;
    return SK_OK;
}

static int parse_options(const struct cfg_ctx *ctx, const yaml_node_t *map,
                         struct route_module *rm)
{
    const struct saker_handler *h = rm->handler;
    size_t count;
    struct cfg_option *rows = config_module_rows(h->options, 1, &count);

    if (rows == NULL ||
        (rm->options = calloc(1, h->config_size ? h->config_size : 1)) == NULL) {
        free(rows);
        return cfg_fail(ctx, map, "out of memory");
    }
    rows[0] = (struct cfg_option){.name = "handler", .node = skip_handler, .required = true};
    struct cfg_section section = {rows, count, NULL};
    char what[128];
    snprintf(what, sizeof what, "module handler '%s'", h->name);
    int rc = cfg_apply_section(ctx, map, &section, rm->options, what);
    free(rows);
    if (rc != SK_OK || h->check == NULL)
        return rc;
    struct err why;
    why.message[0] = '\0';
    if (h->check(rm->options, (saker_err *)&why) != SAKER_OK)
        return cfg_fail(ctx, map, "module '%s': handler '%s': %s", rm->module->path, h->name,
                        why.message[0] ? why.message : "(no message)");
    return SK_OK;
}

static int parse_module(const struct cfg_ctx *ctx, const yaml_node_t *map, void *config)
{
    struct route_module *rm = config;
    const yaml_node_t *name = cfg_lookup(ctx, map, "handler");

    if (cfg_is_null(name))
        return cfg_fail(ctx, map, "module: missing required key 'handler'");
    if (cfg_expect(ctx, name, YAML_SCALAR_NODE, "module handler") != SK_OK)
        return SK_ERROR;
    if (!config_module_loader_installed())
        return SK_OK;
    rm->handler = cfg_module_handler(ctx->config, (const char *)name->data.scalar.value,
                                     &rm->module);
    if (rm->handler == NULL)
        return unknown_handler(ctx, name, (const char *)name->data.scalar.value);
    return parse_options(ctx, map, rm);
}

static void release_module(void *config)
{
    struct route_module *rm = config;
    if (rm->handler != NULL)
        config_module_options_release(rm->handler->options, rm->options);
    free(rm->options);
}

static const struct cfg_section module_section = {NULL, 0, NULL};

const struct handler_schema route_module_schema = {
    .name = "module",
    .section = &module_section,
    .config_size = sizeof(struct route_module),
    .parse = parse_module,
    .release = release_module,
};
