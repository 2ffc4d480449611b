/*
 * h2.h - HTTP/2 server protocol over nghttp2 (RFC 9113).
 *
 * Like h1, h2 knows nothing of sockets: the connection feeds it what it
 * read (h2_feed) and asks it for frames (h2_produce), which land in the
 * connection's output queue and leave with the next flush. Unit tests
 * drive it with an nghttp2 client session and no event loop.
 *
 * Each request stream becomes an exchange with its own arena, handed to
 * the same handlers as HTTP/1.1 (request.h): same routing, allowed_hosts,
 * body limits, counters and access log ("HTTP/2.0"). A request with a
 * body is answered once the body is complete (END_STREAM), as in h1; a
 * response that ends before the request does is followed by RST_STREAM
 * NO_ERROR (RFC 9113 section 8.1) so the client stops sending.
 *
 * Response bodies are never copied into nghttp2: DATA frames are written
 * straight into the output queue (NGHTTP2_DATA_FLAG_NO_COPY), a file as
 * ranges of its descriptor, sent with sendfile in clear text. Frames are
 * produced only up to a high-water mark of queued bytes, and again as the
 * queue drains, so a large response or a slow reader never makes the
 * queue grow without bound.
 *
 * Limits: Kestrel's Http2Limits (limits.http2: streams per connection,
 * HPACK table, frame size, header field size, windows, keep-alive ping)
 * are what saker announces in its SETTINGS and enforces; the connection
 * limits apply per stream as in HTTP/1.1: a header list over
 * max_request_headers_total_size or max_request_header_count, or one field
 * over max_request_header_field_size, is 431; a :path over
 * max_request_line_size 414; a body over max_request_body_size 413.
 * nghttp2 refuses malformed frames and messages (RST_STREAM or GOAWAY with
 * PROTOCOL_ERROR) and limits CONTINUATION frames; h2 adds bounds on
 * frames that carry nothing (empty DATA), on RST_STREAM (rapid reset) and
 * on header blocks far over the limits (HPACK amplification): past them
 * the connection ends with ENHANCE_YOUR_CALM. DATA or HEADERS on a stream
 * the peer closed gets RST_STREAM STREAM_CLOSED, a HEADERS on a lower
 * stream id than one used PROTOCOL_ERROR (h2_guard.c).
 */
#ifndef SAKER_WORKER_H2_H
#define SAKER_WORKER_H2_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "shm/shm_layout.h"

struct worker;
struct outq;
struct conn;
struct endpoint;
struct config_limits;
struct sockaddr;
struct h2;

/* The client's first bytes in clear text (RFC 9113 section 3.4). */
#define H2_PREFACE "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
#define H2_PREFACE_LEN 24

struct h2_params {
    struct worker *worker;
    struct outq *out;                   /* the connection's output queue */
    struct conn *conn;                  /* woken for output made later; NULL in unit tests */
    const struct endpoint *endpoint;    /* NULL in unit tests */
    const struct config_limits *limits; /* the endpoint's */
    const struct sockaddr *peer;        /* for the access log; may be NULL */
    const char *client_subject;         /* TLS client certificate, or NULL */
    /* TLS 1.2 with a cipher RFC 9113 section 9.2.2 forbids: the session
     * ends at once with INADEQUATE_SECURITY. */
    bool inadequate_security;
};

enum h2_result { H2_CONTINUE, H2_CLOSE };

/* A session with saker's SETTINGS queued. NULL when out of memory. */
struct h2 *h2_new(const struct h2_params *params);
/* Frees the session and every stream (closing the files they hold). */
void h2_free(struct h2 *h2);

/* Processes len bytes from the client. H2_CLOSE: read no more; send what
 * is queued (a GOAWAY, perhaps), then close. */
enum h2_result h2_feed(struct h2 *h2, const char *data, size_t len);
/* Queues frames until the output queue holds the high-water mark or
 * nothing is left. True when frames remain for after the next flush. */
bool h2_produce(struct h2 *h2);
/* A stream's response is still coming from its producer. */
bool h2_owes_later(const struct h2 *h2);
/* Frames wait to be produced (a ping, a GOAWAY, DATA the window allows). */
bool h2_want_write(const struct h2 *h2);
/* Nothing left to read or to send: the session is over. */
bool h2_finished(const struct h2 *h2);
/* No stream is open. */
bool h2_idle(const struct h2 *h2);
/* Every open stream is given up (reset, or its tunnel ended): nothing
 * more will be made for any of them. */
bool h2_abandoned(const struct h2 *h2);
/* The client closed its side of the connection: no END_STREAM can come
 * any more, so its tunnels (RFC 8441) are reset rather than left open. */
void h2_peer_closed(struct h2 *h2);
/* The client's preface, or a header block, is still arriving (since
 * *since_ms): the request_headers_timeout applies. */
bool h2_reading_head(const struct h2 *h2, uint64_t *since_ms);
/* What the session is doing, for the connection list: a head arriving,
 * a body arriving (for a stream not yet answered), handling, or idle. */
enum shm_conn_state h2_state(const struct h2 *h2);
/* The last progress: a request begun, or DATA received or framed. Control
 * frames (PING, SETTINGS, WINDOW_UPDATE) are none, so they keep no
 * connection alive. */
uint64_t h2_active_ms(const struct h2 *h2);
/* Once a second: request body data rates (408 and RST_STREAM for a slow
 * stream), responses the peer's window holds back below
 * min_response_data_rate (RST_STREAM CANCEL), and the keep-alive ping.
 * H2_CLOSE: the client stopped answering pings; close. */
enum h2_result h2_tick(struct h2 *h2, uint64_t now_ms);
/* Once a second, with nothing queued for the socket: a connection idle
 * for a second gives the kernel back the pages of nghttp2's buffers it
 * will write before it reads them again (h2_mem.c), once per idle spell. */
void h2_trim(struct h2 *h2, uint64_t now_ms);

/* A drain begins: GOAWAY with the largest stream id, so the client opens
 * no new streams while those on their way are still served; the last
 * GOAWAY follows from h2_tick a second later (or h2_goaway sooner). */
void h2_shutdown_notice(struct h2 *h2);
/* The last GOAWAY (NO_ERROR): streams above the last one processed are
 * refused; the session finishes with the streams still open. */
void h2_goaway(struct h2 *h2);

/* HTTP/2 as a connection's protocol (h2_conn.c), for the rest of its
 * life. weak: TLS 1.2 with a cipher RFC 9113 forbids, answered with
 * GOAWAY INADEQUATE_SECURITY. SK_OK, or SK_ERROR when out of memory. */
struct conn_protocol;
extern const struct conn_protocol h2_protocol;
int h2_conn_start(struct conn *c, bool weak);

#endif
