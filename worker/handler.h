/*
 * handler.h - what a route does, in a worker.
 *
 * A handler kind is one entry in two halves, joined by its schema: the
 * config half (conf/handler_schema.h: name, options, config size,
 * validate, release), which the loader and sakerctl use without linking
 * the worker, and the runtime half here (init, handle, fini), which the
 * router uses. A built-in kind is its options in conf/route_NAME.c and
 * its runtime in worker/handler_NAME.c, each listed once in its registry;
 * a kind added at run time (a module, before any config is loaded) gives
 * both halves to handler_register.
 *
 * init() runs once per worker per config generation, after privileges are
 * dropped (so a handler opens its files as the worker user), and may keep
 * per-worker state. handle() serves one exchange: it answers before it
 * returns (exchange_respond, exchange_respond_error), or sets a generator
 * and answers later or streams (exchange.h); deferral is simply returning
 * without an answer. The route's parsed options are route->handler_config,
 * a struct of the kind's own.
 */
#ifndef SAKER_WORKER_HANDLER_H
#define SAKER_WORKER_HANDLER_H

#include "common/error.h"
#include "conf/config.h"
#include "conf/handler_schema.h"
#include "worker/exchange.h"

struct handler_ops {
    const struct handler_schema *schema; /* the config half: name and options */
    int (*init)(const struct route *route, void **state, struct err *err); /* may be NULL */
    void (*handle)(struct exchange *ex, const struct route *route, void *state);
    void (*fini)(void *state); /* may be NULL */
    /* handle() runs as soon as the request head is in, and reads the body
     * with exchange_read_body; otherwise it runs once the body has
     * arrived (and was discarded). */
    bool reads_body;
    /* May be NULL (reads_body holds for every route): whether this
     * route's handler reads bodies, for a kind where it depends on the
     * route's options (a module's handler). */
    bool (*route_reads_body)(const struct route *route);
};

extern const struct handler_ops handler_return_ops;
extern const struct handler_ops handler_static_ops;
extern const struct handler_ops handler_status_ops;
extern const struct handler_ops handler_redirect_ops;
extern const struct handler_ops handler_proxy_ops;
extern const struct handler_ops handler_module_ops;

/* Adds a kind at run time, before any config is loaded: its schema, with
 * ops as its runtime, to the loader's registry (handler_schema_register).
 * SK_ERROR with a message when the schema is refused (a bad or taken
 * name); registering the same ops twice is SK_OK. */
int handler_register(const struct handler_ops *ops, struct err *err);
/* The runtime of a kind, or NULL when this process has none for it. */
const struct handler_ops *handler_find(const struct handler_schema *schema);

#endif
