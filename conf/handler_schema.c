/*
 * handler_schema.c - the registry of handler kinds the config loader
 * knows; see handler_schema.h.
 */
#include "conf/handler_schema.h"

#include <stdlib.h>
#include <string.h>

#include "conf/config_parse.h"
#include "conf/route_proxy.h"
#include "conf/route_module.h"
#include "conf/route_redirect.h"
#include "conf/route_return.h"
#include "conf/route_static.h"
#include "conf/route_status.h"

/* In the order "route: no handler: add ..." names them. */
static const struct handler_schema *const builtin[] = {
    &route_return_schema,
    &route_static_schema,
    &route_status_schema,
    &route_redirect_schema,
    &route_proxy_schema,
    &route_module_schema,
};
#define BUILTIN_COUNT (sizeof builtin / sizeof builtin[0])

/* Kinds registered at run time, with their runtimes. */
struct handler_added {
    const struct handler_schema *schema;
    const void *runtime;
};
static struct handler_added *added;
static size_t added_count, added_size;

size_t handler_schema_count(void)
{
    return BUILTIN_COUNT + added_count;
}

const struct handler_schema *handler_schema_at(size_t i)
{
    if (i < BUILTIN_COUNT)
        return builtin[i];
    return i - BUILTIN_COUNT < added_count ? added[i - BUILTIN_COUNT].schema : NULL;
}

const struct handler_schema *handler_schema_find(const char *name)
{
    for (size_t i = 0; i < handler_schema_count(); i++)
        if (strcmp(handler_schema_at(i)->name, name) == 0)
            return handler_schema_at(i);
    return NULL;
}

const void *handler_schema_runtime(const struct handler_schema *schema)
{
    for (size_t i = 0; i < added_count; i++)
        if (added[i].schema == schema)
            return added[i].runtime;
    return NULL;
}

static bool valid_name(const char *name)
{
    if (name == NULL || *name == '\0')
        return false;
    return name[strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789_")] == '\0';
}

int handler_schema_register(const struct handler_schema *schema, const void *runtime,
                            struct err *err)
{
    if (!valid_name(schema->name))
        return err_set(err, "handler '%.80s': a name is lower-case letters, digits and '_'",
                       schema->name ? schema->name : "");
    if (cfg_is_route_key(schema->name))
        return err_set(err, "handler '%s': the name is a route option", schema->name);
    const struct handler_schema *known = handler_schema_find(schema->name);
    if (known == schema && handler_schema_runtime(schema) == runtime)
        return SK_OK;
    if (known != NULL)
        return err_set(err, "handler '%s': registered twice", schema->name);
    if (schema->section == NULL)
        return err_set(err, "handler '%s': no option table", schema->name);
    if (added_count == added_size) {
        size_t size = added_size ? 2 * added_size : 8;
        struct handler_added *grown = realloc(added, size * sizeof *grown);
        if (grown == NULL)
            return err_set(err, "handler '%s': out of memory", schema->name);
        added = grown;
        added_size = size;
    }
    added[added_count++] = (struct handler_added){schema, runtime};
    return SK_OK;
}
