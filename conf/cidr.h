/*
 * cidr.h - address ranges from the config ("10.0.0.0/8", "::1",
 * "127.0.0.1"), and whether a peer's address falls in one.
 *
 * Used where saker must decide whether to believe what a peer says about
 * someone else: the proxy's trusted_proxies (keep or replace the
 * X-Forwarded-For / Forwarded a client sent). An IPv4-mapped IPv6 peer
 * (::ffff:a.b.c.d, a dual-stack listener's view of an IPv4 client) is
 * matched as the IPv4 address it is.
 */
#ifndef SAKER_CONF_CIDR_H
#define SAKER_CONF_CIDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

struct sockaddr;

struct cidr {
    int family;        /* AF_INET or AF_INET6 */
    uint8_t addr[16];  /* network byte order; 4 bytes used for AF_INET */
    unsigned bits;     /* prefix length */
};

/* Parses "ADDR" or "ADDR/BITS". SK_OK, or SK_ERROR with a message that
 * quotes text. Host bits set under the prefix are refused (a typo such
 * as 10.1.0.0/8 would otherwise trust more than was meant). */
int cidr_parse(const char *text, struct cidr *out, struct err *err);
/* True when the peer (AF_INET or AF_INET6; anything else never) lies in
 * one of the ranges. */
bool cidr_list_match(const struct cidr *list, size_t count, const struct sockaddr *peer);

#endif
