/*
 * handler_return.c - a fixed response: status, headers and body from the
 * config. Used for health checks, redirects and /plaintext benchmarks; it
 * answers every method, and the body is referenced, never copied, since the
 * config outlives every connection of its generation.
 */
#include "conf/route_return.h"
#include "worker/handler.h"

static void return_handle(struct exchange *ex, const struct route *route, void *state)
{
    (void)state;
    const struct route_return *r = route->handler_config;
    ex->status = r->status;
    if (exchange_add_config_headers(ex, r->headers, r->header_count) != SK_OK) {
        exchange_respond_error(ex, 500);
        return;
    }
    exchange_set_body(ex, r->body, r->body_len, EXCHANGE_BODY_STABLE);
    exchange_respond(ex);
}

const struct handler_ops handler_return_ops = {
    .schema = &route_return_schema,
    .handle = return_handle,
};
