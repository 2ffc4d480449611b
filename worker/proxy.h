/*
 * proxy.h - the reverse proxy's parts, shared by its files (nothing else
 * includes this): handler_proxy.c (the handler: the exchange's side,
 * retries, timeouts), proxy_conn.c (connections to upstream servers:
 * connect, keep-alive pool, an HTTP/1.1 client protocol over llhttp),
 * proxy_request.c (the request head sent up) and proxy_response.c (the
 * response head passed down).
 *
 * One proxied exchange is a `struct proxy` in the exchange's arena, tied
 * to at most one `struct upconn` at a time. Either side may go first:
 * the client leaves (the generator's stop: the upstream connection,
 * mid-request, is closed) or the upstream fails (its connection's
 * release tells the proxy, which retries, answers 502/504, or aborts a
 * response under way). proxy_detach cuts the tie both ways, so neither
 * ever reaches the other after that.
 *
 * Backpressure, both ways, with no copy of a whole body anywhere:
 *  - down: what the upstream sends goes to the client in one
 *    exchange_send_lent per proceed, with no copy: it is read into a
 *    block which the client's output queue references until sent; while
 *    a send is out, reading goes on into a fresh block, and pauses only
 *    once that holds PROXY_READ_AHEAD.
 *  - up: request body pieces are queued on the upstream connection; the
 *    client's body pauses while that queue holds its high-water mark and
 *    resumes when the connection flushes below it.
 */
#ifndef SAKER_WORKER_PROXY_H
#define SAKER_WORKER_PROXY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/event_struct.h>
#include <llhttp.h>

#include "common/bytebuf.h"
#include "conf/route_proxy.h"
#include "worker/exchange.h"
#include "worker/timer.h"
#include "worker/upstream.h"

struct conn;

/* A response body is read in blocks of this size, each lent to the
 * client's output queue until sent; reading pauses while one is full and
 * the previous send waits. More means fewer, larger reads and sends; it
 * bounds what one exchange holds. */
#define PROXY_READ_AHEAD (256 * 1024)

/* Why an upstream attempt failed: the answer (502 or 504) and whether
 * another server may be tried. */
enum proxy_failure {
    PROXY_FAIL_CONNECT,  /* refused, unreachable: 502, retried */
    PROXY_FAIL_TIMEOUT,  /* connect, send or read timeout: 504 */
    PROXY_FAIL_RESET,    /* closed or reset before the response ended: 502 */
    PROXY_FAIL_INVALID,  /* not HTTP, or a head over the limit: 502 */
    PROXY_FAIL_LOCAL,    /* saker's own shortage (descriptors, memory, local
                          * ports): 500, not the server's fault, not retried */
};

/* One connection to an upstream server. */
struct upconn {
    struct upstream_peer *peer;
    struct conn *conn;          /* NULL while connecting */
    int fd;
    struct event connect_event; /* while connecting */
    struct upconn *next, *prev; /* the peer's idle list, while pooled */
    struct proxy *px;           /* the exchange it serves; NULL when pooled */
    llhttp_t parser;
    struct bytebuf field;       /* a response header: name, then value */
    size_t name_len;
    bool in_value;
    struct bytebuf body;        /* body bytes read, for the next send (a block) */
    size_t body_start;          /* where in it they begin (after a head read with them) */
    size_t head_bytes;          /* of the response head, against the limit */
    uint64_t idle_since_ms;
    bool pooled;
    bool reused;                /* served a request before this one */
    bool got_bytes;             /* some of this response has arrived */
    bool message_done;          /* this response ended */
    bool keep;                  /* may serve another request afterwards */
    bool tunnel;                /* after a 101: raw bytes both ways */
    bool shut_owed;             /* half-close toward it once its queue is sent */
    bool one_client;            /* it began with a PROXY header: never pooled */
};

struct proxy {
    struct exchange *ex;
    const struct route *route;
    const struct route_proxy *cfg;
    struct upstream *up;
    struct upstream_peer *peer; /* the server of the current attempt */
    struct upconn *uc;
    struct timer timer;         /* connect, send or read, by the phase */
    unsigned attempts;
    uint64_t attempt_ms;        /* when the current attempt began */
    uint64_t taken_ms;          /* wall clock, when the proxy took it (${msec}) */
    struct bytebuf buffered;    /* buffer_request_body: the whole body, read first */
    struct header_field *fields; /* the upstream's response head, as read */
    size_t field_count, field_capacity;
    bool chunked;      /* the request body goes up chunked */
    bool head_sent;    /* the request head is queued on uc */
    bool body_sent;    /* request body bytes went up: no retry from here */
    bool body_done;    /* the client's body ended */
    bool reading_body; /* exchange_read_body was called */
    bool started;      /* the response head went to the client */
    bool waiting;      /* a MORE send waits for its proceed */
    bool done;         /* the final call was made, or the exchange is gone */
    bool connecting;   /* the current attempt waits for its connect */
    bool reused;       /* its connection served requests before */
    bool got_bytes;    /* some of the response arrived */
    bool peer_busy;    /* counted in peer->active */
    bool paused_body;  /* the proxy paused the client's body */
    bool upgrade;      /* the client asked for an Upgrade we pass on */
    bool tunnel;       /* the upstream said 101: bytes both ways from now */
    /* An HTTP/2 extended CONNECT goes up as an HTTP/1.1 WebSocket
     * handshake, with a key of ours (the client sent none), base64. */
    char ws_key[25];
    bool buffering;    /* buffer_request_body: the body is read whole, then sent */
};

/* ---- handler_proxy.c: what the upstream side tells the proxy --------- */
void proxy_connected(struct proxy *px);
void proxy_failed(struct proxy *px, enum proxy_failure why);
/* The response head is in px->fields (status in the parser): passes it
 * on. SK_OK, or SK_ERROR (the exchange is gone or refused it). */
int proxy_response_head(struct proxy *px, int status);
/* The upstream switched protocols (101): the client's too, and the
 * exchange becomes a tunnel. SK_OK, or SK_ERROR (answered already). */
int proxy_response_upgrade(struct proxy *px);
/* A trailer field of a chunked response, passed on with its end (to an
 * HTTP/1.1 client in the last chunk, to an HTTP/2 one as trailing
 * HEADERS) unless it is one a trailer may not carry. SK_OK or SK_ERROR. */
int proxy_response_trailer(struct proxy *px, const struct header_field *f);
/* After a read: what it brought (body bytes, the end) goes down. */
void proxy_response_flush(struct proxy *px);
/* Reading the upstream paused for the client: no read timeout meanwhile. */
void proxy_paused(struct proxy *px);
/* The upstream made progress (bytes in, or request bytes out). */
void proxy_progress(struct proxy *px);
/* The upstream connection drained its queue below the high-water mark. */
void proxy_upstream_writable(struct proxy *px);

/* ---- proxy_conn.c ---------------------------------------------------- */
/* A pooled connection to p (uc->conn set: the caller goes on at once),
 * or a new one, connecting (proxy_connected or proxy_failed follow, from
 * the loop); NULL when the connect failed at once. uc->px is px. */
struct upconn *upconn_get(struct worker *w, struct upstream_peer *p, struct proxy *px);
/* True when upconn_get's failure (its errno) was saker's own shortage. */
bool upconn_failure_is_local(int error);
/* The response ended and the connection is reusable: back to its pool
 * (or closed when the pool is full). */
void upconn_release(struct upconn *uc);
/* Closes at once (mid-request: it cannot serve another). */
void upconn_close(struct upconn *uc);
/* The body bytes read so far, lent as one piece with its release; the
 * connection reads into a fresh block from here. */
void upconn_lend(struct upconn *uc, struct exchange_buf *piece, void (**release)(void *),
                 void **arg);
/* Body bytes read and not yet lent. */
size_t upconn_body_pending(const struct upconn *uc);
/* Where the request head and body go. */
struct outq *upconn_out(struct upconn *uc);
void upconn_wake(struct upconn *uc);
/* Reading the response resumes (after a proceed). */
void upconn_resume(struct upconn *uc);
/* A tunnel's client half-closed: so does the connection, once what is
 * queued on it has gone. */
void upconn_shutdown(struct upconn *uc);


/* ---- proxy_request.c ------------------------------------------------- */
/* Queues the request head on uc: request line, the client's fields less
 * hop-by-hop ones, Host, X-Forwarded-* or Forwarded, Via, the route's
 * headers, and the framing (length: the body's declared length; -1:
 * chunked; -2: none). SK_OK or SK_ERROR (out of memory). */
int proxy_request_head(struct proxy *px, struct outq *out, int64_t length);
/* True for a field a proxy never passes on (RFC 9110 section 7.6.1),
 * including those the message's Connection names. */
bool proxy_hop_by_hop(const char *name, size_t len, const struct header_field *fields,
                      size_t count);
/* The message's Connection field names name. */
bool proxy_connection_names(const struct header_field *fields, size_t count, const char *name,
                            size_t len);
/* A fresh Sec-WebSocket-Key into px->ws_key, for an extended CONNECT
 * (RFC 8441) that goes up as an HTTP/1.1 handshake. SK_OK or SK_ERROR. */
int proxy_ws_key(struct proxy *px);
/* The upstream's 101 carries the Sec-WebSocket-Accept of px->ws_key
 * (RFC 6455 section 4.1), or px sent no key of its own: SK_OK; else
 * SK_ERROR (not the handshake we asked for: 502). */
int proxy_ws_accepted(const struct proxy *px);

#endif
