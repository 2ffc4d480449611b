/*
 * conn.h - one connection: its socket, its transport (plain or TLS), its
 * output queue, its deadlines, and the protocol that speaks over it.
 *
 * A connection reads into the worker's shared read buffer until a short
 * read, feeds the protocol everything it read, then flushes all responses
 * in one go. It asks for write readiness only after a write returned
 * EAGAIN, and stops reading while output is blocked (backpressure).
 *
 * Two ops tables, as HAProxy's xprt_ops and mux_ops: the transport
 * (conn_transport: plain, or TLS in conn_tls.c) moves bytes and knows
 * nothing of HTTP; the protocol (conn_protocol: HTTP/1.1 in h1_conn.c,
 * HTTP/2 in h2_conn.c, the tunnel of an upgraded connection in tunnel.c)
 * turns bytes into exchanges and knows nothing of sockets. conn.c never
 * asks which protocol runs. The protocol is chosen once: by ALPN over TLS,
 * and in clear text by the endpoint's `protocols`, where http1_and_http2
 * looks at the first bytes (the HTTP/2 preface "PRI ", or HTTP/1.1); an
 * upgrade replaces it (conn_switch_protocol).
 *
 * Deadlines are checked by the worker's once-a-second heartbeat
 * (conn_check_deadline), not by a timer per connection: the protocol
 * names the deadline of its state (a head arriving: request_headers_timeout;
 * otherwise no progress for keep_alive_timeout) and what to do at it; a
 * connection that has sent nothing yet is held to request_headers_timeout
 * from accept, TLS handshake included. Past a deadline, bytes already
 * waiting in the socket are read and parsed before the connection is
 * judged: a worker that was slow or stopped does not time out a request
 * that came in time. A client taking a blocked response
 * (bytes acknowledged, SIOCOUTQ) slower than min_response_data_rate is
 * reset (after its grace).
 *
 * Admission: max_concurrent_connections (instance-wide and per endpoint) is
 * a permit taken from the shm pools before a connection is served; a
 * connection over the limit is closed at once, unread. Permits go back at
 * close, or through the master if the worker dies (conn_admit.c).
 *
 * Closing after a response is a half-close (shutdown SHUT_WR) followed by a
 * short linger that reads and discards, so a client that is still sending
 * does not get a reset that destroys the response it has not read yet.
 *
 * Lifetime: conn_close takes the connection out of service at once, and
 * its memory, descriptor and protocol state are released at the end of
 * the loop turn (turn.h), where the protocol tells the producers of
 * exchanges still open that they are abandoned.
 *
 * Outbound connections (an upstream of the reverse proxy) are the same
 * struct on the same loop: conn_start takes a connected socket, a
 * transport and a protocol, without admission; see docs/architecture.md.
 */
#ifndef SAKER_WORKER_CONN_H
#define SAKER_WORKER_CONN_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <event2/event_struct.h>

#include "common/bytebuf.h"
#include "shm/shm_layout.h"
#include "worker/outq.h"
#include "worker/turn.h"

struct worker;
struct worker_listener;
struct endpoint;
struct config_limits;
struct conn;

/* Where a transport's handshake stands. */
enum conn_handshake {
    CONN_HANDSHAKE_DONE,       /* application data may flow */
    CONN_HANDSHAKE_WAIT_READ,  /* call again once readable */
    CONN_HANDSHAKE_WAIT_WRITE, /* call again once writable */
    CONN_HANDSHAKE_FAILED,     /* counted; close at once */
    CONN_HANDSHAKE_ANSWERED,   /* refused with an answer already sent: close lingering */
};

/* How a connection moves bytes: the plain socket, or TLS (conn_tls.c).
 * Protocols and handlers never know which; they see only the output
 * queue. The transport's own state is behind c->transport_state. */
struct conn_transport {
    /* Drives the handshake one step; NULL: there is none. */
    enum conn_handshake (*handshake)(struct conn *c);
    /* Reads up to len bytes into buf: the count (> 0), 0 at EOF, or -1
     * with errno (EAGAIN: nothing waiting now). *drained: nothing more is
     * waiting, so the caller stops reading until the next wakeup. */
    ssize_t (*read)(struct conn *c, char *buf, size_t len, bool *drained);
    /* Writes the output queue, as outq_flush does. */
    enum outq_flush_result (*flush)(struct conn *c, uint64_t *written);
    /* Input already read from the socket but not yet returned, which the
     * socket will not signal again. */
    bool (*pending)(const struct conn *c);
    /* Output taken from the queue but not yet on the socket. */
    bool (*output_waiting)(const struct conn *c);
    /* After the handshake: the application protocol agreed (ALPN), or
     * NULL; *weak: too weak a cipher for HTTP/2 (RFC 9113 section 9.2.2). */
    const char *(*alpn)(const struct conn *c, size_t *len, bool *weak);
    /* The verified client certificate's subject, or NULL. */
    const char *(*peer_subject)(const struct conn *c);
    /* Before the half-close of a graceful close (TLS: close_notify). */
    void (*shutdown)(struct conn *c);
    /* At release, before the descriptor is closed: frees the transport's
     * state. SK_OK; SK_AGAIN: requests still in the kernel name c (the
     * ring's), so its memory waits for their completions, after which
     * the transport gives it back (conn_give_back). */
    int (*close)(struct conn *c);
    /* c->reading or c->writing changed, or input it holds is to be read
     * (pending), for a transport that learns of readiness itself
     * (io_uring completions) and reports it with conn_transport_event;
     * NULL: libevent watches the descriptor. */
    void (*watch)(struct conn *c);
    /* A transport that sends after its flush returned: output it handed
     * to the kernel waits there for room (the socket is full), which
     * starts the response-rate clock as a blocked write does. NULL: never. */
    bool (*send_stalled)(const struct conn *c);
};

/* What a protocol still owes once it has made its output. */
enum conn_owed {
    CONN_OWES_NOTHING, /* all made: a closing connection may close */
    CONN_OWES_MORE,    /* more to make once the queue drains: keep writing */
    CONN_OWES_LATER,   /* a response is not ready yet: its producer works on it */
};

/* The ops of a transport without TLS: no ALPN, no client certificate,
 * nothing to do before the half-close or at release. */
const char *conn_transport_no_alpn(const struct conn *c, size_t *len, bool *weak);
const char *conn_transport_no_subject(const struct conn *c);
void conn_transport_nothing(struct conn *c);
/* A connection released with SK_AGAIN from its transport's close: the
 * kernel is done with it, and its memory goes back to the worker. */
void conn_give_back(struct conn *c);

/* What speaks over a connection (HAProxy's mux_ops). Every op gets the
 * connection; its state is c->proto_state. Ops may call conn_end,
 * conn_close and conn_wake; none is called on a closed connection
 * except free. */
struct conn_protocol {
    const char *name;
    /* Bytes from the peer, valid during the call only. */
    void (*feed)(struct conn *c, const char *data, size_t len);
    /* Makes output (frames, a producer's next piece) until the queue
     * holds its high-water mark, and says what is still owed. */
    enum conn_owed (*produce)(struct conn *c);
    /* No exchange in progress: the connection is idle. The protocol may
     * give back per-exchange memory then. */
    bool (*idle)(struct conn *c);
    /* The deadline of the protocol's present state, in monotonic ms. */
    uint64_t (*deadline)(struct conn *c, uint64_t now_ms);
    /* Once a heartbeat: rates, pings; expired: the deadline has passed. */
    void (*tick)(struct conn *c, uint64_t now_ms, bool expired);
    /* A graceful stop begins (HTTP/2: the shutdown notice). */
    void (*drain)(struct conn *c);
    /* The peer closed its side. True: output is still owed (frames to
     * make), so the connection ends once it is flushed. */
    bool (*eof)(struct conn *c);
    /* At release, once per connection (and before a protocol switch):
     * tells every producer still open that its exchange is abandoned,
     * then frees the state. */
    void (*free)(struct conn *c);
    /* What the connection is doing, as `sakerctl conns` lists it:
     * reading a head or a body, handling, idle, tunnel (conn itself
     * tells the handshake, writing and closing). NULL: handling. */
    enum shm_conn_state (*state)(struct conn *c);
    /* Where the next read goes, and at most how much (*len): memory of
     * the protocol's, so that the bytes fed from there need no copy (a
     * proxied body). NULL, or a NULL result: the worker's read buffer. */
    char *(*read_into)(struct conn *c, size_t *len);
};

/* The peer's address, compact: an IPv4 or IPv6 socket address, or AF_UNIX
 * with no path (a Unix socket's peer has none worth keeping). */
union conn_peer {
    struct sockaddr sa;
    struct sockaddr_in in;
    struct sockaddr_in6 in6;
};

/* Which permit pools a connection holds (see shm_permit_take). */
#define CONN_PERMIT_GLOBAL 1u
#define CONN_PERMIT_ENDPOINT 2u

struct conn {
    struct conn *prev, *next; /* the worker's list of open connections */
    struct worker *worker;
    int fd;
    uint16_t list_entry;  /* its entry in the connection list (conn_list.c) */
    /* The read event, or the state of a transport that learns of
     * readiness itself (watch) and so never adds one: an idle connection
     * costs this struct on either transport. */
    union {
        struct event read_event;
        void *transport_inline[sizeof(struct event) / sizeof(void *)];
    };
    struct event *write_event; /* created when a write first blocks */
    struct outq out;
    const struct conn_protocol *proto; /* NULL until chosen */
    void *proto_state;
    const struct conn_transport *transport;
    void *transport_state;
    const struct endpoint *endpoint; /* NULL in unit tests and outbound */
    const struct config_limits *limits; /* the endpoint's, else the config's */
    union conn_peer peer;
    uint64_t deadline_ms; /* 0: none */
    uint64_t out_blocked_ms;    /* when output last became blocked; 0: it is not */
    uint64_t out_blocked_bytes; /* unacknowledged then, plus written since */
    struct turn_job job;  /* a flush asked for (conn_wake), or the release */
    struct bytebuf *proxy_partial; /* a PROXY header's first bytes, while it comes */
    uint8_t permits;          /* CONN_PERMIT_* held in the kind below */
    uint8_t endpoint_pool;    /* the endpoint's pool index in shm */
    bool upgraded;            /* permits are in the upgraded pools */
    bool outbound;            /* conn_start: no permits, not in the open gauge */
    bool reading;         /* read_event is added */
    bool writing;         /* write_event is added */
    bool closing;         /* no more input: close once output is flushed */
    bool lingering;       /* half-closed, discarding input until EOF or deadline */
    bool handshaking;     /* the transport's handshake is under way */
    bool read_wants_write; /* a read must wait until the socket is writable */
    bool input_paused;    /* the protocol reads no more for now (conn_pause_input) */
    bool fresh;           /* nothing read yet: request_headers_timeout from accept */
    bool proxy_header;    /* a PROXY protocol header is still to come (conn_admit.c) */
    bool in_io;           /* inside one of its own callbacks, which flushes at its end */
    bool wake;            /* a flush is asked for at the end of the turn */
    bool closed;          /* closed; released at the end of the turn (turn.h) */
    bool peer_reset;      /* the peer's side ended with an error (a reset), not an EOF */
    /* Its two directions are independent (a tunnel, either side): reading
     * goes on while output is blocked, and only the protocol pauses it.
     * Otherwise a peer that echoes (it stops reading while its own writes
     * wait) and saker would each wait for the other. */
    bool duplex;
};

/* Takes over an accepted socket: admits it (max_concurrent_connections)
 * and starts serving it. peer may be NULL. Returns SK_OK, SK_DECLINED (over
 * the limit: fd closed unread, counted), or SK_ERROR (fd closed). */
int conn_open(struct worker *w, int fd, const struct worker_listener *listener,
              const struct sockaddr *peer, socklen_t peer_len);
/* Serves a connected socket that needs no admission (an outbound
 * connection): the plain transport, the given protocol (its state may
 * be NULL), the config's limits. NULL (fd closed) when out of memory. */
struct conn *conn_start(struct worker *w, int fd, const struct conn_protocol *proto,
                        void *proto_state);

/* A protocol switch (WebSocket, CONNECT tunnel): moves the connection's
 * permits from the connection pools to the upgraded pools
 * (max_concurrent_upgraded_connections). False, with nothing changed, when
 * the upgraded limit is reached: the caller refuses the upgrade. */
bool conn_upgrade_begin(struct conn *c);
/* An HTTP/2 stream that becomes a tunnel (extended CONNECT, RFC 8441):
 * one upgraded permit per stream, taken into *held (CONN_PERMIT_*), while
 * the connection keeps its own. False, nothing taken, at the limit.
 * Given back (and *held cleared) when the stream ends. */
bool conn_stream_upgrade_take(struct conn *c, uint8_t *held);
void conn_stream_upgrade_give(struct conn *c, uint8_t *held);
/* From now on proto speaks over c, with state; the protocol that ran
 * has handed over whatever it still owned (its free is not called). */
void conn_switch_protocol(struct conn *c, const struct conn_protocol *proto, void *state);

/* No more input: stop reading, and close (lingering) once the output is
 * flushed. */
void conn_end(struct conn *c);
/* Closes at once, dropping queued output: the connection stops serving
 * and leaves the worker's list and counts now; its memory and descriptor
 * are released at the end of the turn (turn.h), so whatever still holds
 * it may look at c->closed. Closing again does nothing. */
void conn_close(struct conn *c);
/* Closes with a reset (SO_LINGER 0): a response that cannot be finished
 * must not look complete to the client, not even a close-delimited one. */
void conn_abort(struct conn *c);
/* Output was made outside the connection's own callbacks (a timer, an
 * upstream): flush it at the end of the turn. */
void conn_wake(struct conn *c);
/* The protocol stops (or resumes) taking input; the transport's pending
 * input waits with the socket's. */
void conn_pause_input(struct conn *c, bool paused);
/* A transport with its own readiness (watch): c may be read (EV_READ) or
 * written (EV_WRITE), as the loop's events would say. */
void conn_transport_event(struct conn *c, short what);
/* A transport that sends after its flush returned: n more bytes left. */
void conn_count_output(struct conn *c, uint64_t n);
/* Nothing queued, and nothing the transport still holds. */
bool conn_output_empty(const struct conn *c);
/* The verified TLS client certificate's subject, or NULL. */
const char *conn_peer_subject(const struct conn *c);

/* Called once a second by the heartbeat with the cached monotonic time,
 * inside a turn (turn.h): it may read, answer and close connections. */
void conn_check_deadline(struct conn *c, uint64_t now_ms);
/* Graceful stop: an idle connection is half-closed after a short grace;
 * a busy one closes after its current response. */
void conn_drain(struct conn *c, uint64_t now_ms);
/* Frees the connections kept for reuse. */
void conn_free_cache(struct worker *w);

/* Admission (conn_admit.c). */
/* Writes this generation's cross-worker limits into the shm pools, so that
 * status and metrics show them before the first connection takes one. */
void conn_publish_limits(struct worker *w);
/* Takes the connection permits c needs (all or none); false: over a limit. */
bool conn_admit(struct conn *c);
/* Gives back what c holds. */
void conn_release_permits(struct conn *c);
/* An endpoint with proxy_protocol: true admits only its trusted_sources
 * (and Unix socket peers); false: refuse the connection. */
bool conn_proxy_trusted(const struct conn *c);
/* Reads the PROXY protocol header the connection starts with (peeked,
 * then exactly its bytes consumed, so TLS or HTTP reads the rest) and
 * takes the client's address from it. SK_OK: done; SK_AGAIN: not all
 * there yet; SK_ERROR: invalid or gone (the caller closes). */
int conn_proxy_header_read(struct conn *c);
/* Frees what a header cut short left (at release). */
void conn_proxy_header_free(struct conn *c);

#endif
