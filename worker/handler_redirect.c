/*
 * handler_redirect.c - `redirect_https`: the same URL over https://, what a
 * plain-HTTP endpoint in front of an HTTPS one answers (nginx's
 * `return 301 https://$host$request_uri`, Kestrel's UseHttpsRedirection).
 *
 *   Location: https://HOST[:PORT]TARGET
 *
 * HOST is the request's Host without its port, PORT the route's (left out
 * when 443), TARGET the request-target as received, path and query, so
 * nothing is decoded and re-encoded on the way. The default status is 308:
 * permanent, and the method and body are kept (a POST stays a POST).
 *
 * A Host that is not a plain name or address literal gets 400 rather than
 * a Location built from it; a request without Host (HTTP/1.0) gets 400 too,
 * since there is nothing to redirect to.
 */
#include "worker/handler.h"

#include <stdio.h>
#include <string.h>

#include "common/arena.h"
#include "conf/route_redirect.h"

/* RFC 3986 reg-name without percent-encoding or sub-delims, or an IP
 * literal in brackets: enough for every real host, and nothing that could
 * change how the Location parses. */
static bool host_is_plain(const char *host, size_t len)
{
    if (len == 0)
        return false;
    const char *allowed = "abcdefghijklmnopqrstuvwxyz0123456789-._";
    if (host[0] == '[') {
        allowed = "0123456789abcdef:.";
        if (len < 3 || host[len - 1] != ']')
            return false;
        host++;
        len -= 2;
    }
    for (size_t i = 0; i < len; i++)
        if (strchr(allowed, host[i]) == NULL || host[i] == '\0')
            return false;
    return true;
}

static void redirect_handle(struct exchange *ex, const struct route *route, void *state)
{
    (void)state;
    const struct route_redirect_https *r = route->handler_config;
    if (!host_is_plain(ex->host, ex->host_len)) {
        exchange_respond_error(ex, 400);
        return;
    }
    /* origin-form as received; absolute-form ("http://host/p?q") is
     * rebuilt from its path and query. */
    bool origin_form = ex->target[0] == '/';
    size_t tail_len = origin_form ? ex->target_len
                                  : ex->path_len + (ex->query ? 1 + ex->query_len : 0);
    size_t size = sizeof "https://:65535" + ex->host_len + tail_len;
    char *location = arena_alloc(ex->arena, size);
    if (location == NULL) {
        exchange_respond_error(ex, 500);
        return;
    }
    int len = r->port == 443
                  ? snprintf(location, size, "https://%.*s", (int)ex->host_len, ex->host)
                  : snprintf(location, size, "https://%.*s:%u", (int)ex->host_len, ex->host,
                             r->port);
    if (origin_form)
        len += snprintf(location + len, size - (size_t)len, "%.*s", (int)ex->target_len,
                        ex->target);
    else
        len += snprintf(location + len, size - (size_t)len, "%.*s%s%.*s", (int)ex->path_len,
                        ex->path, ex->query ? "?" : "", (int)ex->query_len,
                        ex->query ? ex->query : "");
    ex->status = r->status;
    if (exchange_add_header_n(ex, "Location", 8, location, (size_t)len) != SK_OK) {
        exchange_respond_error(ex, 500);
        return;
    }
    exchange_respond(ex);
}

const struct handler_ops handler_redirect_ops = {
    .schema = &route_redirect_schema,
    .handle = redirect_handle,
};
