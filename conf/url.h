/*
 * url.h - endpoint URLs, as Kestrel's `Urls` and `--urls` accept them.
 *
 *   http://host:port    https://host:port    (port optional: 80 / 443)
 *   http://[::1]:port   IPv6 literal in brackets
 *   http://+:port       (or '*' for '+')     every address (0.0.0.0 and ::)
 *   http://localhost:port                    127.0.0.1 and ::1
 *   unix:/path          http://unix:/path    a Unix domain socket
 *
 * Port 0 asks the kernel for a free port. A path, query or user-info after
 * the authority is an error (endpoints are addresses, not routes).
 */
#ifndef SAKER_CONF_URL_H
#define SAKER_CONF_URL_H

#include <stdbool.h>
#include <stdint.h>

#include "common/error.h"

#define URL_HOST_MAX 256
#define URL_UNIX_PATH_MAX 108 /* sizeof(sockaddr_un.sun_path) */

enum url_scheme { URL_SCHEME_HTTP, URL_SCHEME_HTTPS };

enum url_host_kind {
    URL_HOST_ANY,       /* "*", "+", "0.0.0.0" is NOT this: it is an IPv4 literal */
    URL_HOST_LOCALHOST, /* "localhost": 127.0.0.1 and ::1 */
    URL_HOST_IPV4,      /* dotted quad literal */
    URL_HOST_IPV6,      /* bracketed literal, stored without brackets */
    URL_HOST_NAME,      /* any other name: bound like ANY, with a warning (as Kestrel) */
    URL_HOST_UNIX,      /* a Unix socket; `unix_path` holds the path */
};

struct url {
    enum url_scheme scheme;
    enum url_host_kind host_kind;
    char host[URL_HOST_MAX];           /* as written, brackets removed */
    uint16_t port;
    char unix_path[URL_UNIX_PATH_MAX]; /* for URL_HOST_UNIX */
};

/* Parses text into out. On failure returns SK_ERROR with a message that
 * quotes the URL and says what was expected. */
int url_parse(const char *text, struct url *out, struct err *err);

/* Renders the URL back ("http://127.0.0.1:8080", "unix:/run/a.sock") into
 * out; returns out. */
char *url_format(const struct url *url, char *out, unsigned long size);

#endif
