/*
 * proxy_header.c - the PROXY protocol, v1 and v2; see proxy_header.h.
 */
#include "worker/proxy_header.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define V1_MAX 107
static const char v2_signature[12] = "\r\n\r\n\0\r\nQUIT\n";

/* One v1 field: up to the next space (or the end); NUL-terminated copy. */
static const char *v1_field(const char *p, const char *end, char *out, size_t size)
{
    size_t n = 0;
    while (p < end && *p != ' ' && n + 1 < size)
        out[n++] = *p++;
    out[n] = '\0';
    return p < end && *p == ' ' ? p + 1 : (p == end ? p : NULL);
}

static int v1_port(const char *s)
{
    char *end;
    long v = strtol(s, &end, 10);
    return *s >= '0' && *s <= '9' && *end == '\0' && v <= 65535 && (s[0] != '0' || s[1] == 0)
               ? (int)v : -1;
}

static ssize_t parse_v1(const char *data, size_t len, struct sockaddr_storage *client)
{
    const char *crlf = memchr(data, '\r', len < V1_MAX ? len : V1_MAX);
    if (crlf == NULL)
        return len < V1_MAX ? 0 : -1;
    if ((size_t)(crlf - data) + 1 >= len)
        return 0;
    if (crlf[1] != '\n')
        return -1;
    char proto[8], src[48], dst[48], sport[8], dport[8];
    const char *p = v1_field(data + 6, crlf, proto, sizeof proto);
    ssize_t total = crlf + 2 - data;
    memset(client, 0, sizeof *client);
    if (p != NULL && strcmp(proto, "UNKNOWN") == 0)
        return total; /* the sender does not know: keep our own view */
    int family = strcmp(proto, "TCP4") == 0 ? AF_INET : strcmp(proto, "TCP6") == 0 ? AF_INET6 : 0;
    if (p == NULL || family == 0 || (p = v1_field(p, crlf, src, sizeof src)) == NULL ||
        (p = v1_field(p, crlf, dst, sizeof dst)) == NULL ||
        (p = v1_field(p, crlf, sport, sizeof sport)) == NULL ||
        v1_field(p, crlf, dport, sizeof dport) != crlf)
        return -1;
    int port = v1_port(sport);
    unsigned char dst_addr[16];
    if (port < 0 || v1_port(dport) < 0 || inet_pton(family, dst, dst_addr) != 1)
        return -1;
    if (family == AF_INET) {
        struct sockaddr_in *in = (struct sockaddr_in *)client;
        in->sin_family = AF_INET;
        in->sin_port = htons((uint16_t)port);
        return inet_pton(AF_INET, src, &in->sin_addr) == 1 ? total : -1;
    }
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)client;
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons((uint16_t)port);
    return inet_pton(AF_INET6, src, &in6->sin6_addr) == 1 ? total : -1;
}

static ssize_t parse_v2(const unsigned char *d, size_t len, struct sockaddr_storage *client)
{
    if (len < 16)
        return 0;
    size_t body = (size_t)d[14] << 8 | d[15], total = 16 + body;
    unsigned version = d[12] >> 4, command = d[12] & 15, family = d[13];
    if (version != 2 || command > 1)
        return -1;
    if (len < total)
        return 0;
    memset(client, 0, sizeof *client);
    if (command == 0)
        return (ssize_t)total; /* LOCAL: the proxy's own connection (a health check) */
    if (family == 0x11 && body >= 12) {
        struct sockaddr_in *in = (struct sockaddr_in *)client;
        in->sin_family = AF_INET;
        memcpy(&in->sin_addr, d + 16, 4);
        memcpy(&in->sin_port, d + 24, 2);
    } else if (family == 0x21 && body >= 36) {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)client;
        in6->sin6_family = AF_INET6;
        memcpy(&in6->sin6_addr, d + 16, 16);
        memcpy(&in6->sin6_port, d + 48, 2);
    } else if ((family & 0xf0) == 0x10 || (family & 0xf0) == 0x20) {
        return -1; /* an address family it names but whose addresses do not fit */
    }
    return (ssize_t)total; /* UNSPEC or UNIX: keep our own view */
}

ssize_t proxy_header_parse(const char *data, size_t len, struct sockaddr_storage *client)
{
    size_t n = len < sizeof v2_signature ? len : sizeof v2_signature;
    if (memcmp(data, v2_signature, n) == 0)
        return n < sizeof v2_signature ? 0 : parse_v2((const unsigned char *)data, len, client);
    n = len < 6 ? len : 6;
    if (memcmp(data, "PROXY ", n) != 0)
        return -1;
    return n < 6 ? 0 : parse_v1(data, len, client);
}

static size_t write_v1(const struct sockaddr *src, const struct sockaddr *dst, char *out)
{
    char a[INET6_ADDRSTRLEN], b[INET6_ADDRSTRLEN];
    bool v4 = src->sa_family == AF_INET && dst->sa_family == AF_INET;
    bool v6 = src->sa_family == AF_INET6 && dst->sa_family == AF_INET6;
    if (!v4 && !v6)
        return (size_t)sprintf(out, "PROXY UNKNOWN\r\n");
    const struct sockaddr_in *s4 = (const void *)src, *d4 = (const void *)dst;
    const struct sockaddr_in6 *s6 = (const void *)src, *d6 = (const void *)dst;
    inet_ntop(src->sa_family, v4 ? (const void *)&s4->sin_addr : (const void *)&s6->sin6_addr,
              a, sizeof a);
    inet_ntop(dst->sa_family, v4 ? (const void *)&d4->sin_addr : (const void *)&d6->sin6_addr,
              b, sizeof b);
    return (size_t)sprintf(out, "PROXY %s %s %s %u %u\r\n", v4 ? "TCP4" : "TCP6", a, b,
                           ntohs(v4 ? s4->sin_port : s6->sin6_port),
                           ntohs(v4 ? d4->sin_port : d6->sin6_port));
}

static size_t write_v2(const struct sockaddr *src, const struct sockaddr *dst, char *out)
{
    unsigned char *o = (unsigned char *)out;
    memcpy(o, v2_signature, 12);
    o[12] = 0x21; /* version 2, PROXY */
    if (src->sa_family == AF_INET && dst->sa_family == AF_INET) {
        const struct sockaddr_in *s = (const void *)src, *d = (const void *)dst;
        o[13] = 0x11;
        o[14] = 0, o[15] = 12;
        memcpy(o + 16, &s->sin_addr, 4);
        memcpy(o + 20, &d->sin_addr, 4);
        memcpy(o + 24, &s->sin_port, 2);
        memcpy(o + 26, &d->sin_port, 2);
        return 28;
    }
    if (src->sa_family == AF_INET6 && dst->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s = (const void *)src, *d = (const void *)dst;
        o[13] = 0x21;
        o[14] = 0, o[15] = 36;
        memcpy(o + 16, &s->sin6_addr, 16);
        memcpy(o + 32, &d->sin6_addr, 16);
        memcpy(o + 48, &s->sin6_port, 2);
        memcpy(o + 50, &d->sin6_port, 2);
        return 52;
    }
    o[12] = 0x20; /* LOCAL: no addresses to tell */
    o[13] = 0;
    o[14] = o[15] = 0;
    return 16;
}

size_t proxy_header_write(int version, const struct sockaddr *src, const struct sockaddr *dst,
                          char *out)
{
    return version == 1 ? write_v1(src, dst, out) : write_v2(src, dst, out);
}
