/*
 * proxy_request.c - the request head sent to an upstream; see proxy.h.
 *
 * The head is measured, then written straight into the upstream
 * connection's output queue (one outq_reserve): no intermediate copy,
 * nothing allocated. It is HTTP/1.1 whatever the client spoke; the
 * client's fields go up in their order, less the hop-by-hop ones (RFC
 * 9110 section 7.6.1) and those the proxy sets itself (Host, framing,
 * Expect: the proxy answered 100-continue already, X-Forwarded-* and
 * Forwarded). An HTTP/2 extended CONNECT for websocket (RFC 8441) goes
 * up as the HTTP/1.1 handshake it stands for (RFC 6455 section 4.1): a
 * GET with Upgrade, Connection and a Sec-WebSocket-Key of saker's, whose
 * accept value the 101 must carry.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "common/ws_accept.h"
#include "conf/config.h"
#include "worker/outq.h"
#include "worker/proxy.h"

/* Writes into p, or only measures while p is NULL. */
struct head_writer {
    char *p;
    size_t len;
};

static void put(struct head_writer *w, const char *s, size_t n)
{
    if (w->p != NULL)
        memcpy(w->p + w->len, s, n);
    w->len += n;
}

static void puts_(struct head_writer *w, const char *s) { put(w, s, strlen(s)); }

static void put_field(struct head_writer *w, const char *name, const char *value, size_t len)
{
    puts_(w, name);
    put(w, ": ", 2);
    put(w, value, len);
    put(w, "\r\n", 2);
}

static bool name_is(const char *name, size_t len, const char *lit)
{
    return strlen(lit) == len && strncasecmp(name, lit, len) == 0;
}

/* The Connection field names name (a token of its comma-separated list). */
bool proxy_connection_names(const struct header_field *fields, size_t count, const char *name,
                            size_t len)
{
    for (size_t i = 0; i < count; i++) {
        if (!name_is(fields[i].name, fields[i].name_len, "connection"))
            continue;
        const char *v = fields[i].value, *end = v + fields[i].value_len;
        while (v < end) {
            while (v < end && (*v == ' ' || *v == '\t' || *v == ','))
                v++;
            const char *t = v;
            while (v < end && *v != ',' && *v != ' ' && *v != '\t')
                v++;
            if ((size_t)(v - t) == len && strncasecmp(t, name, len) == 0)
                return true;
        }
    }
    return false;
}

bool proxy_hop_by_hop(const char *name, size_t len, const struct header_field *fields,
                      size_t count)
{
    static const char *const hop[] = {"connection", "keep-alive", "te", "trailer",
                                      "transfer-encoding", "upgrade"};
    for (size_t i = 0; i < sizeof hop / sizeof hop[0]; i++)
        if (name_is(name, len, hop[i]))
            return true;
    if (len >= 6 && strncasecmp(name, "proxy-", 6) == 0)
        return true; /* Proxy-Connection, Proxy-Authorization: meant for a proxy, us */
    return proxy_connection_names(fields, count, name, len);
}

/* ---- the target ------------------------------------------------------------ */

static void put_encoded(struct head_writer *w, const char *s, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
            strchr("-._~!$&'()*+,;=:@/", ch) != NULL) {
            put(w, (const char *)&ch, 1);
        } else {
            char esc[3] = {'%', hex[ch >> 4], hex[ch & 15]};
            put(w, esc, 3);
        }
    }
}

/* strip_prefix on a target spelled otherwise than the route (escapes,
 * dot segments): the normalised path, less the prefix, encoded again. */
static void put_normalised_rest(struct head_writer *w, const struct exchange *ex,
                                size_t prefix_len)
{
    const char *rest = ex->path + prefix_len;
    size_t n = ex->path_len > prefix_len ? ex->path_len - prefix_len : 0;
    if (n == 0 || rest[0] != '/')
        put(w, "/", 1);
    put_encoded(w, rest, n);
    if (ex->query != NULL) {
        put(w, "?", 1);
        put(w, ex->query, ex->query_len);
    }
}

/* A "." or ".." segment in the path part of t. */
static bool has_dot_segment(const char *t, size_t n)
{
    for (size_t i = 0; i < n && t[i] != '?'; i++) {
        if (t[i] != '/' || i + 1 >= n || t[i + 1] != '.')
            continue;
        size_t j = i + 2 < n && t[i + 2] == '.' ? i + 3 : i + 2;
        if (j >= n || t[j] == '/' || t[j] == '?')
            return true;
    }
    return false;
}

/* The client's target as sent, unless routing read it otherwise: dot
 * segments (the route matched the path they resolve to, which is what
 * goes up, so the upstream never sees /api/../admin for /admin), or a
 * strip_prefix whose prefix is spelled with escapes. */
static void put_target(struct head_writer *w, const struct proxy *px)
{
    const struct exchange *ex = px->ex;
    const char *t = ex->origin_target != NULL ? ex->origin_target : ex->target;
    size_t n = ex->origin_target != NULL ? ex->origin_target_len : ex->target_len;
    const struct route *r = px->route;
    if (has_dot_segment(t, n)) {
        put_normalised_rest(w, ex, px->cfg->strip_prefix && r->path_len > 1 ? r->path_len : 0);
        return;
    }
    if (px->cfg->strip_prefix && r->path_len > 1) {
        if (n < r->path_len || memcmp(t, r->path, r->path_len) != 0 ||
            (n > r->path_len && t[r->path_len] != '/' && t[r->path_len] != '?')) {
            put_normalised_rest(w, ex, r->path_len);
            return;
        }
        t += r->path_len;
        n -= r->path_len;
    }
    if (n == 0 || t[0] == '?')
        put(w, "/", 1); /* "http://a?x" and a stripped "/api?x" go up as "/?x" */
    put(w, t, n);
}

/* ---- forwarding ------------------------------------------------------------ */

/* The client's address as X-Forwarded-For writes it; false for none
 * (a Unix socket). */
static bool peer_text(const struct sockaddr *peer, char *out, size_t size, bool *v6)
{
    *v6 = false;
    if (peer == NULL)
        return false;
    if (peer->sa_family == AF_INET)
        return inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)peer)->sin_addr,
                         out, (socklen_t)size) != NULL;
    if (peer->sa_family != AF_INET6)
        return false;
    const struct in6_addr *a = &((const struct sockaddr_in6 *)(const void *)peer)->sin6_addr;
    if (IN6_IS_ADDR_V4MAPPED(a))
        return inet_ntop(AF_INET, &a->s6_addr[12], out, (socklen_t)size) != NULL;
    *v6 = true;
    return inet_ntop(AF_INET6, a, out, (socklen_t)size) != NULL;
}

static const char *request_scheme(const struct exchange *ex)
{
    return ex->endpoint != NULL && ex->endpoint->url.scheme == URL_SCHEME_HTTPS ? "https"
                                                                                 : "http";
}

static bool is_forwarding_field(const char *name, size_t len)
{
    return name_is(name, len, "forwarded") || name_is(name, len, "x-forwarded-for") ||
           name_is(name, len, "x-forwarded-proto") || name_is(name, len, "x-forwarded-host");
}

/* A trusted peer's value, then ours after ", "; an untrusted peer's is
 * dropped (it could say anything). */
static void put_appended(struct head_writer *w, const struct exchange *ex, bool trusted,
                         const char *name, const char *ours, size_t ours_len)
{
    size_t len;
    const char *theirs = trusted ? exchange_header(ex, name, &len) : NULL;
    puts_(w, name);
    put(w, ": ", 2);
    if (theirs != NULL) {
        put(w, theirs, len);
        put(w, ", ", 2);
    }
    put(w, ours, ours_len);
    put(w, "\r\n", 2);
}

/* A trusted peer's value as it is, else ours. */
static void put_kept(struct head_writer *w, const struct exchange *ex, bool trusted,
                     const char *name, const char *ours, size_t ours_len)
{
    size_t len;
    const char *theirs = trusted ? exchange_header(ex, name, &len) : NULL;
    if (theirs != NULL)
        put_field(w, name, theirs, len);
    else if (ours_len > 0)
        put_field(w, name, ours, ours_len);
}

static void put_forwarded(struct head_writer *w, const struct proxy *px, bool trusted)
{
    const struct exchange *ex = px->ex;
    bool v6;
    char ip[INET6_ADDRSTRLEN], node[INET6_ADDRSTRLEN + 160];
    bool known = peer_text(ex->peer, ip, sizeof ip, &v6);
    const char *proto = request_scheme(ex);
    const char *host = ex->authority != NULL ? ex->authority : "";
    size_t host_len = ex->authority != NULL ? ex->authority_len : 0;
    if (px->cfg->forwarded == PROXY_FORWARDED_X) {
        put_appended(w, ex, trusted, "X-Forwarded-For", known ? ip : "unknown",
                     strlen(known ? ip : "unknown"));
        put_kept(w, ex, trusted, "X-Forwarded-Proto", proto, strlen(proto));
        put_kept(w, ex, trusted, "X-Forwarded-Host", host, host_len);
        return;
    }
    /* RFC 7239 section 6: an IPv6 node is bracketed and quoted; a host
     * with a port is quoted; quotes and backslashes cannot occur (the
     * protocol refused them in a Host). */
    int n = snprintf(node, sizeof node, "for=%s%s%s;proto=%s", v6 ? "\"[" : "",
                     known ? ip : "unknown", v6 ? "]\"" : "", proto);
    if (host_len > 0 && host_len < 128 && memchr(host, '"', host_len) == NULL &&
        memchr(host, '\\', host_len) == NULL)
        n += snprintf(node + n, sizeof node - (size_t)n, ";host=\"%.*s\"", (int)host_len, host);
    put_appended(w, ex, trusted, "Forwarded", node, (size_t)n);
}

/* ---- the route's headers: values with variables ------------------------------ */

static void put_var(struct head_writer *w, const struct proxy *px, enum route_proxy_var var)
{
    const struct exchange *ex = px->ex;
    char text[INET6_ADDRSTRLEN + 8];
    bool v6;
    int n = 0;
    switch (var) {
    case PROXY_VAR_MSEC:
        n = snprintf(text, sizeof text, "%llu.%03u", (unsigned long long)(px->taken_ms / 1000),
                     (unsigned)(px->taken_ms % 1000));
        break;
    case PROXY_VAR_REMOTE_ADDR:
        n = peer_text(ex->peer, text, sizeof text, &v6) ? (int)strlen(text) : 0;
        break;
    case PROXY_VAR_REMOTE_PORT:
        if (ex->peer != NULL && (ex->peer->sa_family == AF_INET || ex->peer->sa_family == AF_INET6))
            n = snprintf(text, sizeof text, "%u",
                         ntohs(((const struct sockaddr_in *)(const void *)ex->peer)->sin_port));
        break;
    case PROXY_VAR_SCHEME:
        n = snprintf(text, sizeof text, "%s", request_scheme(ex));
        break;
    case PROXY_VAR_HOST:
        put(w, ex->host, ex->host_len);
        break;
    case PROXY_VAR_UNKNOWN:
        break; /* refused at load */
    }
    put(w, text, n > 0 && (size_t)n < sizeof text ? (size_t)n : 0);
}

/* A value as written, its ${...} replaced (the config checked them). */
static void put_route_header(struct head_writer *w, const struct proxy *px,
                             const struct config_header *h)
{
    if (!px->cfg->header_vars) {
        put_field(w, h->name, h->value, h->value_len);
        return;
    }
    puts_(w, h->name);
    put(w, ": ", 2);
    enum route_proxy_var var;
    size_t ref, from = 0;
    for (;;) {
        size_t at = route_proxy_var_next(h->value, h->value_len, from, &var, &ref);
        put(w, h->value + from, at - from);
        if (at == h->value_len)
            break;
        put_var(w, px, var);
        from = at + ref;
    }
    put(w, "\r\n", 2);
}

/* ---- the head -------------------------------------------------------------- */

static void put_client_fields(struct head_writer *w, const struct proxy *px, bool trusted)
{
    const struct exchange *ex = px->ex;
    for (size_t i = 0; i < ex->header_count; i++) {
        const struct header_field *f = &ex->headers[i];
        if (proxy_hop_by_hop(f->name, f->name_len, ex->headers, ex->header_count) ||
            name_is(f->name, f->name_len, "host") ||
            (px->ws_key[0] != '\0' && name_is(f->name, f->name_len, "sec-websocket-key")) ||
            name_is(f->name, f->name_len, "content-length") ||
            name_is(f->name, f->name_len, "expect") ||
            (px->cfg->via && name_is(f->name, f->name_len, "via")) ||
            (is_forwarding_field(f->name, f->name_len) &&
             (!trusted || px->cfg->forwarded != PROXY_FORWARDED_NONE)))
            continue;
        put(w, f->name, f->name_len);
        put(w, ": ", 2);
        put(w, f->value, f->value_len);
        put(w, "\r\n", 2);
    }
}

static void put_framing(struct head_writer *w, int64_t length)
{
    char digits[24];
    if (length == -1) {
        puts_(w, "Transfer-Encoding: chunked\r\n");
    } else if (length >= 0) {
        int n = snprintf(digits, sizeof digits, "%lld", (long long)length);
        put_field(w, "Content-Length", digits, (size_t)n);
    }
}

static void put_head(struct head_writer *w, const struct proxy *px, int64_t length)
{
    const struct exchange *ex = px->ex;
    bool trusted = px->cfg->trusted_count > 0 && ex->peer != NULL &&
                   cidr_list_match(px->cfg->trusted, px->cfg->trusted_count, ex->peer);
    puts_(w, px->ws_key[0] != '\0' ? "GET" : ex->method_name);
    put(w, " ", 1);
    put_target(w, px);
    puts_(w, " HTTP/1.1\r\n");
    if (px->cfg->host != NULL)
        put_field(w, "Host", px->cfg->host, strlen(px->cfg->host));
    else if (ex->authority != NULL)
        put_field(w, "Host", ex->authority, ex->authority_len);
    put_client_fields(w, px, trusted);
    if (px->cfg->forwarded != PROXY_FORWARDED_NONE)
        put_forwarded(w, px, trusted);
    if (px->cfg->via) {
        size_t len;
        const char *via = exchange_header(ex, "via", &len);
        put_appended(w, ex, via != NULL, "Via", ex->version_major == 2 ? "2 saker" : "1.1 saker",
                     ex->version_major == 2 ? 7 : 9);
    }
    for (size_t i = 0; i < px->cfg->header_count; i++)
        put_route_header(w, px, &px->cfg->headers[i]);
    put_framing(w, length);
    size_t len;
    const char *upgrade = px->upgrade ? exchange_header(ex, "upgrade", &len) : NULL;
    if (px->ws_key[0] != '\0') {
        upgrade = "websocket";
        len = 9;
        put_field(w, "Sec-WebSocket-Key", px->ws_key, 24);
    }
    if (upgrade != NULL) {
        puts_(w, "Connection: upgrade\r\n");
        put_field(w, "Upgrade", upgrade, len);
    }
    put(w, "\r\n", 2);
}

int proxy_request_head(struct proxy *px, struct outq *out, int64_t length)
{
    struct head_writer w = {NULL, 0};
    put_head(&w, px, length);
    size_t size = w.len;
    if ((w.p = outq_reserve(out, size)) == NULL)
        return SK_ERROR;
    w.len = 0;
    put_head(&w, px, length);
    return outq_commit(out, w.len) == 0 ? SK_OK : SK_ERROR;
}

/* ---- an extended CONNECT's handshake ---------------------------------------- */

int proxy_ws_key(struct proxy *px)
{
    unsigned char nonce[16]; /* RFC 6455 section 4.1: 16 random bytes, base64 */
    if (RAND_bytes(nonce, sizeof nonce) != 1)
        return SK_ERROR;
    EVP_EncodeBlock((unsigned char *)px->ws_key, nonce, sizeof nonce);
    return SK_OK;
}

int proxy_ws_accepted(const struct proxy *px)
{
    char want[29];
    if (px->ws_key[0] == '\0')
        return SK_OK;
    if (ws_accept_of(px->ws_key, 24, want) != SK_OK)
        return SK_ERROR;
    for (size_t i = 0; i < px->field_count; i++) {
        const struct header_field *f = &px->fields[i];
        if (name_is(f->name, f->name_len, "sec-websocket-accept"))
            return f->value_len == 28 && memcmp(f->value, want, 28) == 0 ? SK_OK : SK_ERROR;
    }
    return SK_ERROR;
}
