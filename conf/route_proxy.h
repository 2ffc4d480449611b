/*
 * route_proxy.h - `proxy:`, a route whose requests go to an upstream
 * (config_upstreams.h), as the config gives it.
 *
 *   routes:
 *     - path: /api
 *       proxy:
 *         upstream: app             # required: a name under `upstreams:`
 *         strip_prefix: true        # /api/x goes up as /x (default false)
 *         forwarded: x_forwarded    # X-Forwarded-For/-Proto/-Host (default),
 *                                   # rfc7239 (Forwarded), or none
 *         trusted_proxies: [10.0.0.0/8]   # peers whose X-Forwarded-* /
 *                                   # Forwarded are kept and appended to;
 *                                   # anyone else's are replaced
 *         host: app.internal        # the Host sent up (default: the client's)
 *         via: false                # add "Via: 1.1 saker" both ways
 *         websocket: true           # pass Upgrade requests through (default)
 *         headers: { X-From: edge, X-Start: "t=${msec}" }
 *                                   # added to the request sent up, with variables
 *         buffer_request_body: 1m   # read the whole body before contacting the
 *                                   # upstream, up to this size (larger: 413);
 *                                   # true: up to 1 MiB; default false (streamed)
 *
 * Header values are sent as written but for variables, ${name}, replaced
 * per request: msec (when the proxy took the request: Unix seconds with
 * milliseconds, nginx's format), remote_addr and remote_port (the
 * client's, after a PROXY header), scheme (http or https) and host (the
 * request's Host without its port, lower-case). Any other ${...} is a
 * config error at its line and column; a '$' not followed by '{' is
 * itself.
 */
#ifndef SAKER_CONF_ROUTE_PROXY_H
#define SAKER_CONF_ROUTE_PROXY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conf/cidr.h"
#include "conf/config.h"
#include "conf/handler_schema.h"

enum proxy_forwarded { PROXY_FORWARDED_X, PROXY_FORWARDED_RFC7239, PROXY_FORWARDED_NONE };

struct route_proxy {
    char *upstream_name;
    size_t upstream_index; /* into config->upstreams, set by validate */
    bool strip_prefix;
    enum proxy_forwarded forwarded;
    struct cidr *trusted;
    size_t trusted_count;
    char *host; /* NULL: pass the client's */
    bool via;
    bool websocket;
    struct config_header *headers;
    size_t header_count;
    uint64_t buffer_request_body; /* the bound of a body read whole first; 0: streamed */
    bool header_vars;             /* some header value holds a variable */
};

enum route_proxy_var {
    PROXY_VAR_MSEC,
    PROXY_VAR_REMOTE_ADDR,
    PROXY_VAR_REMOTE_PORT,
    PROXY_VAR_SCHEME,
    PROXY_VAR_HOST,
    PROXY_VAR_UNKNOWN, /* or unterminated: refused at load */
};

/* The next "${" in value from `from`: its offset (len when there is
 * none), the variable, and the length of the reference, "${" to "}". */
size_t route_proxy_var_next(const char *value, size_t len, size_t from,
                            enum route_proxy_var *var, size_t *ref_len);

/* buffer_request_body: true */
#define ROUTE_PROXY_BUFFER_DEFAULT (1024 * 1024)

extern const struct handler_schema route_proxy_schema;

#endif
