/*
 * h1.h - HTTP/1.1 server protocol over llhttp.
 *
 * h1 turns bytes into exchanges and responses into bytes. It knows nothing
 * about sockets: the connection feeds it whatever it read (h1_feed) and
 * flushes the output queue afterwards, so every response produced from one
 * read leaves in one write, in request order (pipelining). Unit tests feed
 * bytes and read the queue without an event loop.
 *
 * Strictness: llhttp's lenient flags stay off, so framing it doubts (both
 * Content-Length and Transfer-Encoding, bad chunk sizes, bare LF, obs-fold,
 * invalid tokens...) is a 400 and the connection closes after the response.
 * Request line over max_request_line_size: 414; headers over
 * max_request_headers_total_size or max_request_header_count: 431; a
 * Content-Length over max_request_body_size: 413 (close); HTTP/1.1 without
 * Host or with two: 400; an Expect other than 100-continue: 417.
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
#include "worker/exchange.h"
#include "worker/outq.h"

struct worker;

enum h1_piece { H1_PIECE_NONE, H1_PIECE_URL, H1_PIECE_FIELD, H1_PIECE_VALUE };

struct h1 {
    llhttp_t parser;
    struct worker *worker;
    struct outq *out;
    struct arena arena;       /* the current exchange's; empty when idle */
    struct exchange *ex;      /* the request being parsed, or NULL */
    char *piece;              /* the token being accumulated */
    size_t piece_len;
    enum h1_piece piece_kind;
    char *field_name;         /* a header name waiting for its value */
    size_t field_name_len;
    size_t header_capacity;
    uint64_t header_bytes;    /* sum of name + value lengths */
    uint64_t head_bytes;      /* raw bytes of the request head so far */
    const char *head_mark;    /* where the head starts in the current feed */
    uint64_t request_started_ms;
    int reject_status;        /* status decided by a callback that failed */
    int reject_counter;       /* enum shm_counter for that rejection */
    uint64_t feed_count;      /* h1_feed calls, to tell a fold from a split */
    uint64_t value_feed;      /* the feed the current value's last piece came in */
    bool dispatch_pending;    /* the handler runs when the body is complete */
    bool in_message;
    bool headers_done;
    bool keep_alive;
    bool closing;             /* answer no more requests on this connection */
};

enum h1_result { H1_CONTINUE, H1_CLOSE };

void h1_init(struct h1 *h1, struct worker *worker, struct outq *out);
/* Parses len bytes, queueing responses on the output queue. H1_CLOSE: stop
 * reading; close once the queue is flushed. */
enum h1_result h1_feed(struct h1 *h1, const char *data, size_t len);
/* The peer closed its side: H1_CLOSE always; answers a request cut short
 * only if the protocol says so (it does not: an incomplete request gets no
 * response). */
void h1_on_eof(struct h1 *h1);
/* No request in progress: the connection is idle (keep-alive). */
bool h1_idle(const struct h1 *h1);
/* Headers of the current request are still arriving (for the timeout). */
bool h1_reading_head(const struct h1 *h1);
/* Answers 408 to a request whose head timed out and marks closing. */
void h1_timeout(struct h1 *h1);
void h1_destroy(struct h1 *h1);

#endif
