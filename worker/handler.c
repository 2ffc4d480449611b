/*
 * handler.c - a handler kind's runtime, found from its schema: the
 * built-in ones listed here, the others kept with their schema by the
 * loader's registry; see handler.h.
 */
#include "worker/handler.h"

static const struct handler_ops *const builtin[] = {
    &handler_return_ops,
    &handler_static_ops,
    &handler_status_ops,
    &handler_redirect_ops,
    &handler_proxy_ops,
    &handler_module_ops,
};
#define BUILTIN_COUNT (sizeof builtin / sizeof builtin[0])

const struct handler_ops *handler_find(const struct handler_schema *schema)
{
    for (size_t i = 0; i < BUILTIN_COUNT; i++)
        if (builtin[i]->schema == schema)
            return builtin[i];
    return handler_schema_runtime(schema);
}

int handler_register(const struct handler_ops *ops, struct err *err)
{
    if (ops->schema == NULL || ops->handle == NULL)
        return err_set(err, "handler: a schema and a handle function are required");
    return handler_schema_register(ops->schema, ops, err);
}
