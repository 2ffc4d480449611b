/*
 * conn.h - one client connection: its socket, I/O and deadlines.
 *
 * A connection reads into the worker's shared read buffer until a short
 * read, feeds the protocol everything it read, then flushes all responses
 * in one go. It asks for write readiness only after a write returned
 * EAGAIN, and stops reading while output is blocked (backpressure).
 *
 * Deadlines are checked by the worker's once-a-second heartbeat
 * (conn_check_deadline), not by a timer per connection: an idle keep-alive
 * connection closes after keep_alive_timeout, a request head still arriving
 * after request_headers_timeout gets 408, and a connection that has sent
 * nothing at all (nor finished its TLS handshake) since it was accepted is
 * closed after request_headers_timeout, as nginx's client_header_timeout.
 *
 * The heartbeat also enforces the data rates: a request body arriving
 * slower than min_request_body_data_rate gets 408 and the connection
 * closes; a client reading a blocked response slower than
 * min_response_data_rate is disconnected. Both after their grace period.
 *
 * Admission: max_concurrent_connections (instance-wide and per endpoint) is
 * a permit taken from the shm pools before a connection is served; a
 * connection over the limit is closed at once, unread. Permits go back at
 * close, or through the master if the worker dies.
 *
 * The protocol is HTTP/1.1 (h1.h) or HTTP/2 (h2.h): chosen by ALPN over
 * TLS, and in clear text by the endpoint's `protocols`, where
 * http1_and_http2 looks at the first bytes: the HTTP/2 preface ("PRI ")
 * or anything else, HTTP/1.1.
 *
 * Closing after a response is a half-close (shutdown SHUT_WR) followed by a
 * short linger that reads and discards, so a client that is still sending
 * does not get a reset that destroys the response it has not read yet.
 */
#ifndef SAKER_WORKER_CONN_H
#define SAKER_WORKER_CONN_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <event2/event_struct.h>

#include "worker/h1.h"
#include "worker/h2.h"
#include "worker/outq.h"

struct worker;
struct worker_listener;
struct endpoint;
struct config_limits;
struct conn;
struct ssl_st;

/* How a connection moves bytes: the plain socket, or TLS (conn_tls.c).
 * h1 and the handlers never know which; they see only the output queue. */
struct conn_transport {
    /* Reads up to len bytes into buf: the count (> 0), 0 at EOF, or -1
     * with errno (EAGAIN: nothing waiting now). *drained: nothing more is
     * waiting, so the caller stops reading until the next wakeup. */
    ssize_t (*read)(struct conn *c, char *buf, size_t len, bool *drained);
    /* Writes the output queue, as outq_flush does. */
    enum outq_flush_result (*flush)(struct conn *c, uint64_t *written);
    /* Before the half-close of a graceful close (TLS: close_notify). */
    void (*shutdown)(struct conn *c);
    /* At close: frees the transport's state. */
    void (*close)(struct conn *c);
};

/* The peer's address, compact: an IPv4 or IPv6 socket address, or AF_UNIX
 * with no path (a Unix socket's peer has none worth keeping). */
union conn_peer {
    struct sockaddr sa;
    struct sockaddr_in in;
    struct sockaddr_in6 in6;
};

enum conn_protocol {
    CONN_PROTOCOL_UNDECIDED, /* nothing read yet */
    CONN_PROTOCOL_HTTP1,
    CONN_PROTOCOL_HTTP2,
};

/* Which permit pools a connection holds (see shm_permit_take). */
#define CONN_PERMIT_GLOBAL 1u
#define CONN_PERMIT_ENDPOINT 2u

struct conn {
    struct conn *prev, *next; /* the worker's list of open connections */
    struct worker *worker;
    int fd;
    struct event read_event;
    struct event *write_event; /* created when a write first blocks */
    struct outq out;
    struct h1 *h1;            /* while a request is in progress; NULL when idle */
    struct h2 *h2;            /* HTTP/2: the session, for the connection's life */
    const struct endpoint *endpoint; /* NULL in unit tests */
    const struct config_limits *limits; /* the endpoint's, else the config's */
    union conn_peer peer;
    uint64_t deadline_ms; /* 0: none */
    const struct conn_transport *transport;
    struct ssl_st *ssl;       /* TLS only (conn_tls.c) */
    char *client_subject;     /* TLS: the verified client certificate's subject, or NULL */
    uint64_t accepted_ms;     /* the TLS handshake is bounded by request_headers_timeout from here */
    uint64_t out_blocked_ms;    /* when output last became blocked; 0: it is not */
    uint64_t out_blocked_bytes; /* written since then */
    uint8_t permits;          /* CONN_PERMIT_* held in the kind below */
    uint8_t endpoint_pool;    /* the endpoint's pool index in shm */
    uint8_t protocol;         /* enum conn_protocol */
    bool upgraded;            /* permits are in the upgraded pools */
    bool reading;         /* read_event is added */
    bool writing;         /* write_event is added */
    bool closing;         /* no more requests: close once output is flushed */
    bool lingering;       /* half-closed, discarding input until EOF or deadline */
    bool tls_handshaking; /* TLS: no application data yet */
    bool spoke;           /* bytes of a request came: idle time is keep-alive time */
    bool tls_read_wants_write; /* TLS: a read must wait until the socket is writable */
    uint8_t tls_end;      /* TLS: EOF or error found behind data, reported by the next read */
    bool tls_more;        /* TLS: the last read stopped before the socket said EAGAIN */
};

/* Takes over an accepted socket: admits it (max_concurrent_connections)
 * and starts serving it. peer may be NULL. Returns SK_OK, SK_DECLINED (over
 * the limit: fd closed unread, counted), or SK_ERROR (fd closed). */
int conn_open(struct worker *w, int fd, const struct worker_listener *listener,
              const struct sockaddr *peer, socklen_t peer_len);
/* A protocol switch (WebSocket, CONNECT tunnel): moves the connection's
 * permits from the connection pools to the upgraded pools
 * (max_concurrent_upgraded_connections). False, with nothing changed, when
 * the upgraded limit is reached: the caller refuses the upgrade. */
bool conn_upgrade_begin(struct conn *c);
/* Closes at once, dropping queued output. */
void conn_close(struct conn *c);
/* Called once a second by the heartbeat with the cached monotonic time. */
void conn_check_deadline(struct conn *c, uint64_t now_ms);
/* Graceful stop: an idle connection is half-closed after a short grace;
 * a busy one closes after its current response. */
void conn_drain(struct conn *c, uint64_t now_ms);
/* Writes this generation's cross-worker limits into the shm pools, so that
 * status and metrics show them before the first connection takes one. */
void conn_publish_limits(struct worker *w);
/* Frees the idle HTTP/1 states kept for reuse. */
void conn_free_spare_h1s(struct worker *w);
/* Frees the connections kept for reuse. */
void conn_free_cache(struct worker *w);

#endif
