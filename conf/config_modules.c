/*
 * config_modules.c - the `modules:` sequence, and the option tables of
 * modules turned into the loader's own; see config_module.h.
 */
#include "conf/config_module.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/config_parse.h"
#include "include/saker/module.h"

static const struct config_module_loader *installed;

/* The modules' side of struct err (saker/module.h): their callbacks run
 * from here (load) and from the worker (inits), with a struct err. */
int saker_err_set(saker_err *err, const char *fmt, ...)
{
    struct err *e = (struct err *)err;
    va_list ap;
    if (e == NULL)
        return SAKER_ERROR;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
    return SAKER_ERROR;
}

void config_set_module_loader(const struct config_module_loader *loader)
{
    installed = loader;
}

int config_module_loader_installed(void)
{
    return installed != NULL;
}

static cfg_scalar_fn *const option_parsers[] = {
    [SAKER_OPTION_STRING] = cfg_parse_string,     [SAKER_OPTION_BOOL] = cfg_parse_bool,
    [SAKER_OPTION_UINT] = cfg_parse_uint,         [SAKER_OPTION_SIZE] = cfg_parse_size,
    [SAKER_OPTION_DURATION] = cfg_parse_duration,
};
static const size_t option_sizes[] = {
    [SAKER_OPTION_STRING] = sizeof(char *),   [SAKER_OPTION_BOOL] = sizeof(bool),
    [SAKER_OPTION_UINT] = sizeof(uint64_t),   [SAKER_OPTION_SIZE] = sizeof(uint64_t),
    [SAKER_OPTION_DURATION] = sizeof(uint64_t),
};
#define OPTION_TYPES (sizeof option_parsers / sizeof option_parsers[0])

static size_t option_count(const struct saker_option *options)
{
    size_t n = 0;
    while (options != NULL && options[n].name != NULL)
        n++;
    return n;
}

struct cfg_option *config_module_rows(const struct saker_option *options, size_t extra,
                                      size_t *count)
{
    size_t n = option_count(options);
    struct cfg_option *rows = calloc(extra + n + 1, sizeof *rows);
    if (rows == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++)
        rows[extra + i] = (struct cfg_option){.name = options[i].name,
                                              .offset = options[i].offset,
                                              .scalar = option_parsers[options[i].type],
                                              .def = options[i].def,
                                              .required = options[i].required};
    *count = extra + n;
    return rows;
}

void config_module_options_release(const struct saker_option *options, void *base)
{
    for (size_t i = 0; base != NULL && i < option_count(options); i++)
        if (options[i].type == SAKER_OPTION_STRING)
            free(*(char **)((char *)base + options[i].offset));
}

static bool valid_name(const char *name)
{
    return name != NULL && *name != '\0' &&
           name[strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789_")] == '\0';
}

/* A table a module got wrong would write outside its struct: refused. */
static int check_options(const struct saker_option *options, size_t size, const char *what,
                         struct err *why)
{
    for (size_t i = 0; i < option_count(options); i++) {
        const struct saker_option *o = &options[i];
        if ((unsigned)o->type >= OPTION_TYPES)
            return err_set(why, "%s option '%.80s': unknown type %d", what, o->name, o->type);
        if (o->offset > size || size - o->offset < option_sizes[o->type])
            return err_set(why, "%s option '%.80s': offset %zu outside its %zu-byte struct",
                           what, o->name, o->offset, size);
    }
    return SK_OK;
}

/* What a descriptor must be before anything of it is used. */
static int check_desc(const struct saker_module *d, const struct config *config,
                      struct err *why)
{
    if (!valid_name(d->name))
        return err_set(why, "the module's name must be lower-case letters, digits and '_'");
    if (check_options(d->options, d->config_size, "config", why) != SK_OK)
        return SK_ERROR;
    for (const struct saker_handler *h = d->handlers; h != NULL && h->name != NULL; h++) {
        if (!valid_name(h->name) || h->handle == NULL)
            return err_set(why, "handler '%.80s': a name of a-z, 0-9 and '_' and a handle "
                                "function are required", h->name);
        if (check_options(h->options, h->config_size, h->name, why) != SK_OK)
            return SK_ERROR;
        const struct config_module *other;
        if (cfg_module_handler(config, h->name, &other) != NULL)
            return err_set(why, "handler '%s' is also module '%s''s", h->name, other->path);
    }
    for (size_t i = 0; i < config->module_count; i++)
        if (config->modules[i].desc != NULL && config->modules[i].desc != d &&
            strcmp(config->modules[i].desc->name, d->name) == 0)
            return err_set(why, "module '%s' is loaded twice", d->name);
    return SK_OK;
}

const struct saker_handler *cfg_module_handler(const struct config *config, const char *name,
                                               const struct config_module **module)
{
    for (size_t i = 0; i < config->module_count; i++) {
        const struct saker_module *d = config->modules[i].desc;
        for (const struct saker_handler *h = d ? d->handlers : NULL; h && h->name; h++)
            if (strcmp(h->name, name) == 0) {
                *module = &config->modules[i];
                return h;
            }
    }
    return NULL;
}

/* "FILE:L:C: message" becomes "FILE:L:C: module 'PATH': message", so
 * that an option's error names the module whose table refused it. */
static int name_module(const struct cfg_ctx *ctx, const struct config_module *m)
{
    char *msg = ctx->err->message, rest[ERR_MESSAGE_MAX];
    size_t at = strlen(ctx->file);
    if (strncmp(msg, ctx->file, at) != 0)
        return SK_ERROR;
    for (int colons = 0; msg[at] != '\0' && colons < 3; at++)
        colons += msg[at] == ':';
    at += msg[at] == ' ';
    snprintf(rest, sizeof rest, "%s", msg + at);
    snprintf(msg + at, ERR_MESSAGE_MAX - at, "module '%s': %s", m->path, rest);
    return SK_ERROR;
}

/* The module's `config:` map, then its load(). */
static int module_configure(const struct cfg_ctx *ctx, const yaml_node_t *map,
                            const yaml_node_t *at, struct config_module *m)
{
    const struct saker_module *d = m->desc;
    size_t count;
    struct cfg_option *rows = config_module_rows(d->options, 0, &count);

    if (rows == NULL || (m->options = calloc(1, d->config_size ? d->config_size : 1)) == NULL) {
        free(rows);
        return cfg_fail(ctx, at, "out of memory");
    }
    struct cfg_section section = {rows, count, NULL};
    char what[128];
    snprintf(what, sizeof what, "module '%s' config", d->name);
    if (map != NULL && cfg_expect(ctx, map, YAML_MAPPING_NODE, what) != SK_OK) {
        free(rows);
        return SK_ERROR;
    }
    int rc = SK_OK;
    for (size_t i = 0; map == NULL && rc == SK_OK && i < count; i++)
        if (rows[i].required) /* no map at all: nothing checked them */
            rc = cfg_fail(ctx, at, "%s: missing required key '%s'", what, rows[i].name);
    if (rc == SK_OK)
        rc = cfg_apply_section(ctx, map, &section, m->options, what);
    free(rows);
    if (rc != SK_OK)
        return name_module(ctx, m);
    if (d->load == NULL)
        return SK_OK;
    struct err why;
    why.message[0] = '\0';
    if (d->load(m->options, (saker_err *)&why) != SAKER_OK)
        return cfg_fail(ctx, at, "module '%s': load failed: %s", m->path,
                        why.message[0] ? why.message : "(no message)");
    return SK_OK;
}

static int module_entry(const struct cfg_ctx *ctx, const yaml_node_t *item,
                        struct config *config, struct config_module *m)
{
    if (cfg_expect(ctx, item, YAML_MAPPING_NODE, "module") != SK_OK ||
        cfg_check_keys(ctx, item) != SK_OK)
        return SK_ERROR;
    for (const yaml_node_pair_t *p = item->data.mapping.pairs.start;
         p < item->data.mapping.pairs.top; p++) {
        const yaml_node_t *key = cfg_node(ctx, p->key);
        const char *name = (const char *)key->data.scalar.value;
        if (strcmp(name, "path") != 0 && strcmp(name, "config") != 0)
            return cfg_fail(ctx, key, "module: unknown option '%.80s' (expected path or "
                                      "config)", name);
    }
    const yaml_node_t *path = cfg_lookup(ctx, item, "path");
    if (cfg_is_null(path))
        return cfg_fail(ctx, item, "module: 'path' is required");
    if (cfg_expect(ctx, path, YAML_SCALAR_NODE, "module path") != SK_OK ||
        (m->path = cfg_strdup(ctx, path, (const char *)path->data.scalar.value)) == NULL)
        return SK_ERROR;
    if (installed == NULL)
        return SK_OK; /* sakerctl: recorded, not run */
    struct err why;
    const struct saker_module *desc;
    if (installed->open(m->path, &m->handle, &desc, &why) != SK_OK)
        return cfg_fail(ctx, path, "module '%s': %s", m->path, why.message);
    if (check_desc(desc, config, &why) != SK_OK)
        return cfg_fail(ctx, path, "module '%s': %s", m->path, why.message);
    m->desc = desc;
    const yaml_node_t *map = cfg_lookup(ctx, item, "config");
    return module_configure(ctx, cfg_is_null(map) ? NULL : map, path, m);
}

int cfg_parse_modules(const struct cfg_ctx *ctx, const yaml_node_t *node, struct config *config)
{
    if (cfg_is_null(node))
        return SK_OK;
    if (cfg_expect(ctx, node, YAML_SEQUENCE_NODE, "modules") != SK_OK)
        return SK_ERROR;
    size_t count = (size_t)(node->data.sequence.items.top - node->data.sequence.items.start);
    if (count == 0)
        return SK_OK;
    if ((config->modules = calloc(count, sizeof *config->modules)) == NULL)
        return cfg_fail(ctx, node, "out of memory");
    for (size_t i = 0; i < count; i++) {
        yaml_node_t *item = cfg_node(ctx, node->data.sequence.items.start[i]);
        struct config_module *m = &config->modules[i];
        config->module_count = i + 1;
        m->line = (int)item->start_mark.line + 1;
        m->column = (int)item->start_mark.column + 1;
        if (module_entry(ctx, item, config, m) != SK_OK)
            return SK_ERROR;
    }
    return SK_OK;
}

void cfg_modules_free(struct config *config)
{
    for (size_t i = 0; i < config->module_count; i++) {
        struct config_module *m = &config->modules[i];
        if (m->desc != NULL)
            config_module_options_release(m->desc->options, m->options);
        free(m->options);
        if (m->handle != NULL && installed != NULL)
            installed->close(m->handle);
        free(m->path);
    }
    free(config->modules);
    config->modules = NULL;
    config->module_count = 0;
}
