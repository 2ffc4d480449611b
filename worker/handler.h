/*
 * handler.h - what a route does.
 *
 * Each route kind has one ops table. init() runs once per worker per config
 * generation, after privileges are dropped (so a handler opens its files as
 * the worker user), and may keep per-worker state. handle() serves one
 * exchange and must end with exchange_respond() (or exchange_respond_error()).
 */
#ifndef SAKER_WORKER_HANDLER_H
#define SAKER_WORKER_HANDLER_H

#include "common/error.h"
#include "conf/config.h"
#include "worker/exchange.h"

struct handler_ops {
    const char *name;
    int (*init)(const struct route *route, void **state, struct err *err);
    void (*handle)(struct exchange *ex, const struct route *route, void *state);
    void (*fini)(void *state);
};

extern const struct handler_ops handler_return_ops;
extern const struct handler_ops handler_static_ops;
extern const struct handler_ops handler_status_ops;
extern const struct handler_ops handler_redirect_ops;

/* The ops table for a route's handler kind. */
const struct handler_ops *handler_for(enum route_handler kind);

#endif
