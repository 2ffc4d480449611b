/*
 * route_module.h - `module:`, a route answered by a handler of one of the
 * config's modules (conf/config_module.h).
 *
 *   module: { handler: hello, text: "Hello\n" }
 *
 * `handler` is required and names a handler of a loaded module; the
 * other keys are that handler's options, parsed with its table. Without
 * a module loader (sakerctl) the map is taken as written, unchecked.
 */
#ifndef SAKER_CONF_ROUTE_MODULE_H
#define SAKER_CONF_ROUTE_MODULE_H

#include "conf/config_module.h"
#include "conf/handler_schema.h"

struct route_module {
    const struct config_module *module;   /* NULL: not checked (no loader) */
    const struct saker_handler *handler;
    void *options; /* the handler's struct, handler->config_size bytes */
};

extern const struct handler_schema route_module_schema;

#endif
