/*
 * url.c - endpoint URLs; see url.h for the accepted forms.
 *
 * An endpoint URL names an address to bind and nothing else, so anything
 * Kestrel would ignore or misread (a path base, a query, user-info) is an
 * error here: a listener that silently drops part of what was written is
 * the kind of surprise an operator finds only in production. A lone
 * trailing '/' ("http://localhost:5000/") is accepted, as Kestrel does.
 * Every message starts "URL '<text>': " so it can be found in a long --urls.
 */
#include "conf/url.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define URL_EXPECTED "expected http://host:port, https://host:port or unix:/path"

static int url_fail(struct err *err, const char *text, const char *why)
{
    return err_set(err, "URL '%.200s': %s", text, why);
}

/* unix:/path, also reached from http://unix:/path. */
static int parse_unix(const char *text, const char *path, struct url *out, struct err *err)
{
    size_t len = strlen(path);

    if (path[0] != '/')
        return url_fail(err, text, "expected an absolute path after 'unix:'");
    if (len >= sizeof out->unix_path)
        return url_fail(err, text, "the Unix socket path is longer than 107 bytes");
    memcpy(out->unix_path, path, len + 1);
    snprintf(out->host, sizeof out->host, "unix");
    out->host_kind = URL_HOST_UNIX;
    out->port = 0;
    return SK_OK;
}

/* After the port only nothing or a single '/' may follow. */
static int check_rest(const char *text, const char *rest, struct err *err)
{
    if (rest[0] == '\0' || strcmp(rest, "/") == 0)
        return SK_OK;
    if (rest[0] == '?')
        return url_fail(err, text, "a query is not allowed in an endpoint URL");
    if (rest[0] == '#')
        return url_fail(err, text, "a fragment is not allowed in an endpoint URL");
    return url_fail(err, text,
                    "a path is not allowed in an endpoint URL (routes go under 'routes')");
}

static int parse_port(const char *text, const char *port, size_t len, uint16_t *out,
                      struct err *err)
{
    unsigned long value = 0;

    if (len == 0 || len > 5)
        return url_fail(err, text, "the port must be a number from 0 to 65535");
    for (size_t i = 0; i < len; i++) {
        if (!isdigit((unsigned char)port[i]))
            return url_fail(err, text, "the port must be a number from 0 to 65535");
        value = value * 10 + (unsigned long)(port[i] - '0');
    }
    if (value > 65535)
        return url_fail(err, text, "the port must be a number from 0 to 65535");
    *out = (uint16_t)value;
    return SK_OK;
}

static int classify_name(const char *text, struct url *out, struct err *err)
{
    const char *host = out->host;
    unsigned char probe[sizeof(struct in6_addr)];

    if (strcmp(host, "*") == 0 || strcmp(host, "+") == 0) {
        out->host_kind = URL_HOST_ANY;
        return SK_OK;
    }
    if (strcasecmp(host, "localhost") == 0) {
        out->host_kind = URL_HOST_LOCALHOST;
        return SK_OK;
    }
    if (strspn(host, "0123456789.") == strlen(host)) {
        if (inet_pton(AF_INET, host, probe) != 1)
            return url_fail(err, text, "the host is not a valid IPv4 address");
        out->host_kind = URL_HOST_IPV4;
        return SK_OK;
    }
    for (const char *p = host; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '-' && *p != '.')
            return url_fail(err, text,
                            strchr(host, ':') ? "an IPv6 address must be in brackets"
                                              : "the host contains an invalid character");
    out->host_kind = URL_HOST_NAME;
    return SK_OK;
}

/* Splits "host:port" or "[v6]:port" (authority without user-info). */
static int parse_authority(const char *text, const char *auth, size_t len, struct url *out,
                           struct err *err)
{
    const char *host = auth, *port = NULL, *host_end;
    unsigned char probe[sizeof(struct in6_addr)];

    if (auth[0] == '[') {
        host = auth + 1;
        host_end = memchr(auth, ']', len);
        if (host_end == NULL)
            return url_fail(err, text, "missing ']' after the IPv6 address");
        if (host_end + 1 < auth + len && host_end[1] != ':')
            return url_fail(err, text, "expected ':port' after the IPv6 address");
    } else {
        host_end = memchr(auth, ':', len);
        if (host_end == NULL)
            host_end = auth + len;
        else if (memchr(host_end + 1, ':', (size_t)(auth + len - host_end - 1)))
            return url_fail(err, text, "an IPv6 address must be in brackets");
    }
    if (host_end == host)
        return url_fail(err, text, "missing host");
    if ((size_t)(host_end - host) >= sizeof out->host)
        return url_fail(err, text, "the host is too long");
    memcpy(out->host, host, (size_t)(host_end - host));
    out->host[host_end - host] = '\0';

    const char *after = host_end + (auth[0] == '[');
    if (after < auth + len) {
        port = after + 1;
        if (parse_port(text, port, (size_t)(auth + len - port), &out->port, err) != SK_OK)
            return SK_ERROR;
    }
    if (auth[0] != '[')
        return classify_name(text, out, err);
    if (inet_pton(AF_INET6, out->host, probe) != 1)
        return url_fail(err, text, "the host is not a valid IPv6 address");
    out->host_kind = URL_HOST_IPV6;
    return SK_OK;
}

int url_parse(const char *text, struct url *out, struct err *err)
{
    const char *rest;

    memset(out, 0, sizeof *out);
    if (text == NULL)
        text = "";
    if (strncasecmp(text, "unix:", 5) == 0)
        return parse_unix(text, text + 5, out, err);
    if (strncasecmp(text, "http://", 7) == 0) {
        out->scheme = URL_SCHEME_HTTP;
        rest = text + 7;
    } else if (strncasecmp(text, "https://", 8) == 0) {
        out->scheme = URL_SCHEME_HTTPS;
        rest = text + 8;
    } else {
        return url_fail(err, text, URL_EXPECTED);
    }
    if (strncasecmp(rest, "unix:", 5) == 0)
        return parse_unix(text, rest + 5, out, err);

    size_t len = strcspn(rest, "/?#");
    if (memchr(rest, '@', len))
        return url_fail(err, text, "user info (name@) is not allowed in an endpoint URL");
    if (check_rest(text, rest + len, err) != SK_OK)
        return SK_ERROR;
    out->port = out->scheme == URL_SCHEME_HTTPS ? 443 : 80;
    return parse_authority(text, rest, len, out, err);
}

char *url_format(const struct url *url, char *out, unsigned long size)
{
    const char *scheme = url->scheme == URL_SCHEME_HTTPS ? "https" : "http";

    if (size == 0)
        return out;
    if (url->host_kind == URL_HOST_UNIX && url->scheme == URL_SCHEME_HTTP)
        snprintf(out, size, "unix:%s", url->unix_path);
    else if (url->host_kind == URL_HOST_UNIX)
        snprintf(out, size, "%s://unix:%s", scheme, url->unix_path);
    else if (url->host_kind == URL_HOST_IPV6)
        snprintf(out, size, "%s://[%s]:%u", scheme, url->host, (unsigned)url->port);
    else
        snprintf(out, size, "%s://%s:%u", scheme, url->host, (unsigned)url->port);
    return out;
}
