/*
 * route_static.h - `static:`, files under a root directory, as the config
 * gives it.
 *
 *   static: { root: /var/www, index: index.html }
 *
 * The root must be a directory when the config is loaded (the message
 * points at the value); index is a file name without '/'.
 */
#ifndef SAKER_CONF_ROUTE_STATIC_H
#define SAKER_CONF_ROUTE_STATIC_H

#include "conf/handler_schema.h"

struct route_static {
    char *root;  /* as written; validated to be a directory at load */
    char *index; /* "index.html" unless set */
};

extern const struct handler_schema route_static_schema;

#endif
