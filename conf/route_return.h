/*
 * route_return.h - `return:`, a fixed response, as the config gives it.
 *
 *   return: { status: 200, headers: { Content-Type: text/plain }, body: ok }
 *
 * status is required (100..599); the body may hold NUL bytes and defaults
 * to empty. Its headers are its own, so the route's `headers:` are refused
 * next to it.
 */
#ifndef SAKER_CONF_ROUTE_RETURN_H
#define SAKER_CONF_ROUTE_RETURN_H

#include <stddef.h>

#include "conf/config.h"
#include "conf/handler_schema.h"

struct route_return {
    int status;                    /* 100..599 */
    struct config_header *headers; /* in config order */
    size_t header_count;
    char *body; /* may be empty, never NULL */
    size_t body_len;
};

extern const struct handler_schema route_return_schema;

#endif
