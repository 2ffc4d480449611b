/*
 * h1.h - HTTP/1.1 server protocol over llhttp.
 *
 * h1 turns bytes into exchanges and responses into bytes. It knows nothing
 * about sockets: the connection feeds it whatever it read (h1_feed) and
 * flushes the output queue afterwards, so every response produced from one
 * read leaves in one write, in request order (pipelining). Unit tests feed
 * bytes and read the queue without an event loop.
 *
 * Strictness: llhttp (built strict) keeps its lenient flags off but the
 * version's, so framing it doubts (both Content-Length and
 * Transfer-Encoding, bad chunk sizes or delimiters, bare LF, obs-fold,
 * invalid tokens...) is a 400 and the connection closes after the response;
 * so is any CONNECT. A coding before the final chunked, or an unknown
 * method in a well-formed request line: 501; HTTP/2.0 or any major
 * version but 1: 505 (HTTP/1.2 and later minors are served as 1.1).
 * Request line over max_request_line_size: 414; headers over
 * max_request_headers_total_size or max_request_header_count: 431; a
 * Content-Length over max_request_body_size: 413 (close); HTTP/1.1 without
 * Host or with two: 400; an Expect other than 100-continue: 417.
 *
 * Limits are the connection's endpoint's (h1_set_connection), and a
 * route's max_request_body_size overrides the body limit: the route is
 * matched as soon as the head is complete, so a Content-Length over it is
 * refused before any of the body is read. allowed_hosts: any other Host is
 * 400 (an HTTP/1.0 request without Host passes, as in Kestrel).
 *
 * A request answered before its body is complete (Expect: 100-continue
 * today) has the rest of its body read and discarded for up to
 * H1_BODY_DRAIN_MS, so the connection can be reused; after that it closes.
 *
 * Pipelining: every request in a read is answered, until the output queue
 * holds OUTQ_HIGH_WATER; then parsing pauses (the rest stashed, reading
 * paused past H1_STASH_MAX) and resumes at h1_produce as the queue drains.
 *
 * Idle state holds no memory besides the struct: the exchange arena is
 * empty between requests.
 */
#ifndef SAKER_WORKER_H1_H
#define SAKER_WORKER_H1_H

#include <stdbool.h>
#include <stdint.h>

#include <llhttp.h>

#include "common/arena.h"
#include "common/bytebuf.h"
#include "worker/conn.h"
#include "worker/exchange.h"
#include "worker/h1_head.h"
#include "worker/outq.h"
#include "shm/shm_layout.h"

struct worker;
struct endpoint;
struct config_limits;
struct router_entry;
struct sockaddr;

#define H1_BODY_DRAIN_MS 5000
/* Bytes read while parsing is paused (a response still coming) that are
 * kept before reading pauses too. */
#define H1_STASH_MAX (64 * 1024)
/* Every response's Server header line. */
#define H1_SERVER_HEADER "Server: saker\r\n"

enum h1_piece { H1_PIECE_NONE, H1_PIECE_URL, H1_PIECE_FIELD, H1_PIECE_VALUE };
enum { H1_HEAD_CHECK_IDLE, H1_HEAD_CHECK_RUNNING, H1_HEAD_CHECK_DONE };

struct h1 {
    llhttp_t parser;
    struct worker *worker;
    struct conn *conn;        /* the connection it speaks over; NULL in unit tests */
    const struct endpoint *endpoint;     /* NULL: no endpoint (unit tests) */
    const struct config_limits *limits;  /* the endpoint's or the config's */
    const struct sockaddr *peer;         /* for the access log; may be NULL */
    const char *client_subject; /* TLS client certificate subject (conn's), or NULL */
    struct outq *out;
    const struct router_entry *entry; /* the current request's route, or NULL */
    uint64_t body_limit;      /* the current request's max_request_body_size */
    uint64_t body_started_ms; /* when the head ended, for the body data rate */
    uint64_t body_drain_until_ms; /* answered early: discard the body until then */
    struct arena arena;       /* the current exchange's; empty when idle */
    struct exchange *ex;      /* the request being parsed, or NULL */
    char *piece;              /* the token being accumulated */
    size_t piece_len;
    enum h1_piece piece_kind;
    char *field_name;         /* a header name waiting for its value */
    size_t field_name_len;
    uint64_t header_bytes;    /* sum of name + value lengths */
    uint64_t head_bytes;      /* raw bytes of the request head so far */
    const char *head_mark;    /* where the head starts in the current feed */
    const char *feed_end;     /* the end of the bytes h1_feed was given */
    struct h1_head_check head_check; /* strict grammar of this request's head */
    uint8_t head_check_state; /* H1_HEAD_CHECK_* */
    uint64_t request_started_ms;
    uint64_t request_started_us; /* the read that brought its first byte */
    int reject_status;        /* status decided by a callback that failed */
    int reject_counter;       /* enum shm_counter for that rejection */
    uint64_t feed_count;      /* h1_feed calls, to tell a fold from a split */
    uint64_t value_feed;      /* the feed the current value's last piece came in */
    uint64_t message_feed;    /* the feed the current request began in */
    bool trailer_pause;       /* paused at the last chunk: check the trailer section */
    bool dispatch_pending;    /* the handler runs when the body is complete */
    bool reading_body;        /* between the head and the end of a body */
    bool in_message;
    bool headers_done;
    bool keep_alive;
    bool closing;             /* answer no more requests on this connection */
    /* The exchange's course (see h1.c). */
    bool in_parse;            /* llhttp's callbacks are on the stack */
    bool message_complete;    /* the request has been read to its end */
    bool waiting;             /* parsing paused until the exchange ends */
    bool backlogged;          /* parsing paused until the output queue drains */
    bool peer_gone;           /* EOF while backlogged: handled once the stash is parsed */
    bool exchange_done;       /* it ended outside the parser: end it at the next produce */
    struct bytebuf stash;     /* what was read but not parsed while waiting */
    /* A streamed response (h1_response.c). */
    /* The request body (h1_body.c). */
    bool early;               /* its handler reads it: dispatched at the head */
    bool body_owed;           /* held pieces, the end, or parsing on: at the next produce */
    bool continue_sent;       /* 100 Continue */
    struct bytebuf held;      /* a piece that came while the reader was paused */
    uint64_t body_rate_base;  /* bytes already in when the rate was last restarted */
    /* An upgrade (exchange_upgrade): the tunnel takes over once the
     * request has been read to its end. */
    bool upgrading;
    struct tunnel *tunnel;
    bool chunked;             /* Transfer-Encoding: chunked */
    bool proceed_owed;        /* a MORE send was taken: proceed once there is room */
    int64_t length_left;      /* of a Content-Length the handler declared; -1: none */
};

enum h1_result { H1_CONTINUE, H1_CLOSE };

/* Limits come from worker->config until h1_set_connection names the
 * connection's endpoint. */
void h1_init(struct h1 *h1, struct worker *worker, struct outq *out);
void h1_set_connection(struct h1 *h1, const struct endpoint *endpoint,
                       const struct config_limits *limits, const struct sockaddr *peer);
/* Parses len bytes, queueing responses on the output queue. H1_CLOSE: stop
 * reading; close once the queue is flushed. */
enum h1_result h1_feed(struct h1 *h1, const char *data, size_t len);
/* The peer closed its side: no more requests; a request cut short gets
 * no response. True when an exchange whose response was still coming is
 * abandoned by it (as nginx does): the connection closes. */
bool h1_on_eof(struct h1 *h1);
/* At the connection's flush: ends an exchange whose response ended
 * outside the parser and parses on, and gives a streamed response's
 * producer its proceed while the queue is below the high-water mark. */
enum conn_owed h1_produce(struct h1 *h1);
/* No request in progress: the connection is idle (keep-alive). */
static inline bool h1_idle(const struct h1 *h1)
{
    return !h1->in_message && !h1->backlogged;
}
/* Headers of the current request are still arriving (for the timeout). */
static inline bool h1_reading_head(const struct h1 *h1)
{
    return h1->in_message && !h1->headers_done;
}
/* Answers 408 to a request whose head timed out and marks closing. */
void h1_timeout(struct h1 *h1);
/* A request body is arriving: when it started and how much has come. */
bool h1_reading_body(const struct h1 *h1, uint64_t *started_ms, uint64_t *bytes);
/* Answers 408 (unless already answered) to a body that arrives too slowly,
 * counts it, and marks closing. */
void h1_body_too_slow(struct h1 *h1);
/* A body being discarded after its response has been coming for longer
 * than H1_BODY_DRAIN_MS: the connection should close. */
bool h1_body_expired(const struct h1 *h1, uint64_t now_ms);
/* Lets go of everything held: a producer still at work is stopped (its
 * file and buffers given back), a tunnel discarded, the buffers freed. */
void h1_destroy(struct h1 *h1);

/* HTTP/1.1 as a connection's protocol (h1_conn.c). Its state is taken
 * from the worker's spares when bytes arrive and given back once the
 * connection is idle, so an idle keep-alive connection is only its
 * struct conn. */
extern const struct conn_protocol h1_protocol;
/* Frees the idle HTTP/1 states kept for reuse. */
void h1_free_spares(struct worker *w);

/* Between h1.c and h1_response.c. */
extern const struct exchange_ops h1_exchange_ops;
/* The exchange is given up, or its connection closed. Inline: every
 * response and every produce asks. */
static inline bool h1_gone(const struct h1 *h1)
{
    return (h1->ex != NULL && h1->ex->abandoned) || (h1->conn != NULL && h1->conn->closed);
}
/* Output was made: the connection flushes it. */
void h1_wake(struct h1 *h1);
/* The response cannot be finished: the connection resets, so the client
 * sees it incomplete. */
void h1_abort(struct h1 *h1);
/* The response has ended (respond, or a FINAL send). */
void h1_response_ended(struct h1 *h1);
/* Refuses the request being parsed with status (counted unless counter
 * is SHM_COUNTER_COUNT), telling its body's reader, and stops reading. */
void h1_refuse(struct h1 *h1, int status, enum shm_counter counter);
/* Parses what was stashed while paused; reading resumes if it all was. */
void h1_resume(struct h1 *h1);

/* Between h1.c and h1_body.c. */
/* A body starts arriving: its data rate is measured from now. */
void h1_body_begin(struct h1 *h1);
/* A piece of the body from llhttp: to its reader, or discarded. True:
 * parsing pauses (the reader paused). */
bool h1_body_piece(struct h1 *h1, const char *at, size_t len);
/* At the flush: held pieces, the end, or parsing on. */
void h1_body_flush(struct h1 *h1);
/* The response ended before the body: drain it (bounded in time). */
void h1_body_answered(struct h1 *h1);
int h1_read_body(struct exchange *ex);
int h1_upgrade(struct exchange *ex, const char *protocol);
/* Gives an HTTP/1 state back to the worker's spares (h1_conn.c): what a
 * tunnel that took one over calls at its release. */
void h1_state_free(void *h1);
void h1_pause_body(struct exchange *ex, bool paused);

#endif
