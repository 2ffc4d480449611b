/*
 * route_redirect.h - `redirect_https:`, the same URL over https://, as the
 * config gives it.
 *
 *   redirect_https: { port: 443, status: 308 }
 *
 * Once the endpoints are known, a route that could answer a request that
 * came over an https:// endpoint is refused: it would redirect to itself
 * forever. `endpoint:` on the route names the http:// one it is for.
 */
#ifndef SAKER_CONF_ROUTE_REDIRECT_H
#define SAKER_CONF_ROUTE_REDIRECT_H

#include "conf/handler_schema.h"

struct route_redirect_https {
    unsigned port; /* 443 unless set; left out of the Location when 443 */
    int status;    /* 301, 302, 303, 307 or 308; 308 unless set */
};

extern const struct handler_schema route_redirect_schema;

#endif
