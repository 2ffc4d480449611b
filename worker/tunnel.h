/*
 * tunnel.h - raw bytes both ways over a connection whose protocol was
 * switched by an upgrade (HTTP/1.1's 101 Switching Protocols): the third
 * implementation of conn_protocol, beside h1 and h2.
 *
 * The handler that accepted the upgrade (exchange_upgrade) keeps the same
 * exchange and the same calls it would use for any streamed exchange:
 * the client's bytes come through its body reader (exchange_read_body:
 * data, end at the client's half-close, error 0 when it is gone; paused
 * and resumed for backpressure), and it writes with exchange_send (MORE,
 * then the generator's proceed; FINAL closes after what is queued; ERROR
 * resets). So HTTP/2's extended CONNECT (RFC 8441) can carry the very same
 * handler over a stream's DATA frames: there the stream is the tunnel,
 * and h2 implements those calls as it already does for bodies.
 *
 * The tunnel owns what the exchange lives in (the HTTP/1 state and its
 * arena) until the connection is released, when the generator's stop
 * comes first if the handler had not finished. It is held to
 * keep_alive_timeout without traffic; max_concurrent_upgraded_connections
 * was taken before the switch (conn_upgrade_begin).
 */
#ifndef SAKER_WORKER_TUNNEL_H
#define SAKER_WORKER_TUNNEL_H

#include <stddef.h>

struct conn;
struct exchange;

struct tunnel;

extern const struct conn_protocol tunnel_protocol;

/* A tunnel for ex over c: from now on ex's calls are the tunnel's (its
 * sends go to c's queue, after the 101 already there), and bytes flow
 * both ways once tunnel_switch makes it c's protocol. NULL when out of
 * memory. */
struct tunnel *tunnel_new(struct conn *c, struct exchange *ex);
/* c speaks the tunnel from now; owner (what ex lives in) is freed with
 * owner_free at the release; data are bytes read after the request, for
 * the reader first. SK_OK, or SK_ERROR when out of memory (the tunnel is
 * freed, c closes). */
int tunnel_switch(struct tunnel *t, void *owner, void (*owner_free)(void *), const char *data,
                  size_t len);
/* A tunnel never switched to (its connection closed first). */
void tunnel_discard(struct tunnel *t);

#endif
