/*
 * proxy_header.h - the PROXY protocol (HAProxy's, versions 1 and 2): the
 * header a proxy in front of saker sends first on a connection to say
 * who the client is, and the one saker sends to an upstream.
 *
 * Parsing is strict: v1 is "PROXY TCP4|TCP6 SRC DST SPORT DPORT\r\n" or
 * "PROXY UNKNOWN...\r\n" in at most 107 bytes; v2 is the 12-byte
 * signature, version 2, command LOCAL or PROXY, and for PROXY over
 * TCP4/TCP6 the addresses (TLVs are skipped). Anything else is invalid:
 * the connection is refused, never served as if no header was there.
 */
#ifndef SAKER_WORKER_PROXY_HEADER_H
#define SAKER_WORKER_PROXY_HEADER_H

#include <stddef.h>
#include <sys/socket.h>
#include <sys/types.h>

struct sockaddr_storage;

/* The header at the start of data: its length (> 0), 0 when more bytes
 * are needed, -1 when it is not a valid header. *client gets the
 * source address, or family AF_UNSPEC when the header names none (v1
 * UNKNOWN, v2 LOCAL or another family): keep the connection's own. */
ssize_t proxy_header_parse(const char *data, size_t len, struct sockaddr_storage *client);

/* Writes a header for a connection from src to dst (AF_INET or AF_INET6
 * alike; anything else: v1 UNKNOWN / v2 LOCAL) into out (at least 108
 * bytes for v1, 52 for v2). The length written. */
size_t proxy_header_write(int version, const struct sockaddr *src, const struct sockaddr *dst,
                          char *out);

#endif
