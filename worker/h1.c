/*
 * h1.c - HTTP/1.1 server protocol over llhttp; see h1.h.
 *
 * The request head is accumulated piece by piece into the exchange arena
 * (llhttp hands out spans of the read buffer, which is reused by the next
 * read), the handler runs as soon as the head is complete, and the body is
 * consumed (and for now discarded) as it arrives. Responses are rendered
 * by h1_response.c.
 *
 * One exchange at a time: while a response is still coming (a handler
 * that answers later, or streams), parsing pauses after its request and
 * the unparsed rest of the read waits in a stash, with the socket's
 * reading paused, so pipelined responses keep their order. The exchange
 * ends when both its request has been read and its response has ended;
 * if that happens outside the parser, at the connection's next flush
 * (h1_produce), which then parses on.
 */
#include "worker/h1.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/digits.h"
#include "common/log.h"
#include "shm/shm.h"
#include "worker/conn.h"
#include "worker/request.h"
#include "worker/route_stats.h"
#include "worker/tunnel.h"
#include "worker/worker.h"

static struct h1 *h1_of(llhttp_t *parser) { return parser->data; }

static const struct config_limits *h1_limits(const struct h1 *h1) { return h1->limits; }

/* Records why the request is refused; the callback then returns -1 and
 * h1_feed answers with the status once llhttp has stopped. */
static int h1_reject(struct h1 *h1, int status, enum shm_counter counter)
{
    if (h1->reject_status == 0) {
        h1->reject_status = status;
        h1->reject_counter = (int)counter;
    }
    return -1;
}

static int piece_append(struct h1 *h1, enum h1_piece kind, const char *at, size_t len)
{
    if (h1->piece_kind != kind) {
        h1->piece_kind = kind;
        h1->piece = NULL;
        h1->piece_len = 0;
    }
    char *grown = arena_grow(&h1->arena, h1->piece, h1->piece_len, h1->piece_len + len + 1);
    if (grown == NULL)
        return h1_reject(h1, 500, SHM_REJECT_MALFORMED);
    memcpy(grown + h1->piece_len, at, len);
    h1->piece = grown;
    h1->piece_len += len;
    h1->piece[h1->piece_len] = '\0';
    return 0;
}

static int on_message_begin(llhttp_t *parser)
{
    struct h1 *h1 = h1_of(parser);
    struct exchange *ex = arena_alloc(&h1->arena, sizeof *ex);
    if (ex == NULL)
        return h1_reject(h1, 500, SHM_REJECT_MALFORMED);
    memset(ex, 0, sizeof *ex);
    ex->arena = &h1->arena;
    ex->worker = h1->worker;
    ex->ops = &h1_exchange_ops;
    ex->protocol = h1;
    ex->client_subject = h1->client_subject;
    ex->peer = h1->peer;
    ex->endpoint = h1->endpoint;
    ex->conn_fd = h1->conn != NULL ? h1->conn->fd : -1;
    ex->body_fd = -1;
    h1->ex = ex;
    h1->in_message = true;
    h1->headers_done = false;
    h1->piece_kind = H1_PIECE_NONE;
    h1->header_bytes = 0;
    h1->request_started_ms = clock_monotonic_ms();
    h1->request_started_us = clock_monotonic_us();
    h1->head_check_state = H1_HEAD_CHECK_IDLE;
    h1->message_feed = h1->feed_count;
    return 0;
}

/* Runs the strict head grammar over [at, end); 0 or the refusal. */
static int h1_check_head(struct h1 *h1, const char *at, const char *end)
{
    size_t used;
    enum h1_head_result r = h1_head_check(&h1->head_check, at, (size_t)(end - at), &used);
    if (r == H1_HEAD_BAD) {
        log_msg(LOG_DEBUG, "bad request: byte 0x%02x breaks the head grammar",
                (unsigned char)at[used]);
        h1->head_check_state = H1_HEAD_CHECK_DONE;
        return h1_reject(h1, 400, SHM_REJECT_MALFORMED);
    }
    h1->head_check_state = r == H1_HEAD_DONE ? H1_HEAD_CHECK_DONE : H1_HEAD_CHECK_RUNNING;
    return 0;
}

static int on_method(llhttp_t *parser, const char *at, size_t len)
{
    (void)len;
    struct h1 *h1 = h1_of(parser);
    if (h1->head_mark == NULL)
        h1->head_mark = at; /* the head of this request starts here */
    if (h1->head_check_state != H1_HEAD_CHECK_IDLE)
        return 0; /* a method split across reads: already checked in h1_feed */
    h1_head_check_start(&h1->head_check);
    return h1_check_head(h1, at, h1->feed_end);
}

/* RFC 9112 section 2.3: a major version other than 1 is refused with 505
 * (as nginx does); a later 1.x minor version is served as 1.1, the
 * highest this server speaks (RFC 9110 section 6.2). llhttp checks no
 * version (LENIENT_VERSION): the head grammar has its form. */
static int on_version_complete(llhttp_t *parser)
{
    struct h1 *h1 = h1_of(parser);
    if (parser->http_major != 1)
        return h1_reject(h1, 505, SHM_REJECT_MALFORMED);
    if (parser->http_minor > 1)
        parser->http_minor = 1;
    return 0;
}

static int on_url(llhttp_t *parser, const char *at, size_t len)
{
    struct h1 *h1 = h1_of(parser);
    if (h1->piece_len + len > h1_limits(h1)->max_request_line_size)
        return h1_reject(h1, 414, SHM_REJECT_REQUEST_LINE_TOO_LONG);
    return piece_append(h1, H1_PIECE_URL, at, len);
}

static int on_url_complete(llhttp_t *parser)
{
    struct h1 *h1 = h1_of(parser);
    h1->ex->target = h1->piece_kind == H1_PIECE_URL ? h1->piece : "";
    h1->ex->target_len = h1->piece_kind == H1_PIECE_URL ? h1->piece_len : 0;
    h1->piece_kind = H1_PIECE_NONE;
    return 0;
}

static int on_header_field(llhttp_t *parser, const char *at, size_t len)
{
    struct h1 *h1 = h1_of(parser);
    h1->header_bytes += len;
    if (h1->header_bytes > h1_limits(h1)->max_request_headers_total_size)
        return h1_reject(h1, 431, SHM_REJECT_HEADERS_TOO_LARGE);
    return piece_append(h1, H1_PIECE_FIELD, at, len);
}

static int on_header_field_complete(llhttp_t *parser)
{
    struct h1 *h1 = h1_of(parser);
    struct exchange *ex = h1->ex;
    size_t count = h1->headers_done ? ex->request_trailer_count : ex->header_count;
    if (count >= h1_limits(h1)->max_request_header_count)
        return h1_reject(h1, 431, SHM_REJECT_TOO_MANY_HEADERS);
    h1->field_name = h1->piece;
    h1->field_name_len = h1->piece_len;
    h1->piece_kind = H1_PIECE_NONE;
    return 0;
}

static int on_header_value(llhttp_t *parser, const char *at, size_t len)
{
    struct h1 *h1 = h1_of(parser);
    /* llhttp joins an obs-fold continuation line (RFC 9112 section 5.2) to
     * the value as a second piece within one feed; a value split by the
     * end of a read continues in the next feed instead. */
    if (h1->piece_kind == H1_PIECE_VALUE && h1->value_feed == h1->feed_count)
        return h1_reject(h1, 400, SHM_REJECT_MALFORMED);
    h1->value_feed = h1->feed_count;
    h1->header_bytes += len;
    if (h1->header_bytes > h1_limits(h1)->max_request_headers_total_size)
        return h1_reject(h1, 431, SHM_REJECT_HEADERS_TOO_LARGE);
    return piece_append(h1, H1_PIECE_VALUE, at, len);
}

static int on_header_value_complete(llhttp_t *parser)
{
    struct h1 *h1 = h1_of(parser);
    struct exchange *ex = h1->ex;
    bool has_value = h1->piece_kind == H1_PIECE_VALUE;
    struct header_field field = {h1->field_name, h1->field_name_len,
                                 has_value ? h1->piece : "", has_value ? h1->piece_len : 0};
    h1->piece_kind = H1_PIECE_NONE;
    /* A chunked body's trailer section: the request's trailers, never its
     * headers (a Range or If-None-Match there must not change the answer). */
    int rc = h1->headers_done
                 ? exchange_push_field(ex->arena, &ex->request_trailers,
                                       &ex->request_trailer_count, &ex->request_trailer_capacity,
                                       &field)
                 : exchange_push_request_header(ex, &field);
    return rc == SK_OK ? 0 : h1_reject(h1, 500, SHM_REJECT_MALFORMED);
}

static void h1_count_rejection(struct h1 *h1, enum shm_counter counter)
{
    shm_slot_count(h1->worker->slot, counter, 1);
}

void h1_refuse(struct h1 *h1, int status, enum shm_counter counter)
{
    if (counter != SHM_COUNTER_COUNT)
        h1_count_rejection(h1, counter);
    h1->closing = true;
    struct exchange *ex = h1->ex;
    if (ex == NULL)
        return;
    exchange_body_error(ex, status); /* a reader hears first, and may answer */
    if (ex->responded && !ex->finished)
        h1_abort(h1); /* a response under way cannot be finished well */
    if (ex->responded)
        return;
    if (ex->method_name == NULL)
        ex->method_name = "";
    exchange_respond_error(ex, status);
}

/* llhttp's method number to ours, without going through its name. */
static enum exchange_method h1_method(uint8_t method)
{
    switch (method) {
    case HTTP_GET: return METHOD_GET;
    case HTTP_HEAD: return METHOD_HEAD;
    case HTTP_POST: return METHOD_POST;
    case HTTP_PUT: return METHOD_PUT;
    case HTTP_DELETE: return METHOD_DELETE;
    case HTTP_OPTIONS: return METHOD_OPTIONS;
    case HTTP_PATCH: return METHOD_PATCH;
    case HTTP_CONNECT: return METHOD_CONNECT;
    case HTTP_TRACE: return METHOD_TRACE;
    default: return METHOD_OTHER;
    }
}

static void h1_dispatch(struct h1 *h1, struct exchange *ex)
{
    request_dispatch(h1->entry, ex);
}

/* h1_check_request's verdicts besides 0 (go on and dispatch). */
#define H1_REFUSED (-1) /* answered, and the connection closes */
#define H1_LIMITED 1    /* answered 429; the body, if any, is drained */
/* True when a Transfer-Encoding names a coding other than chunked: the
 * final chunked is llhttp's to check, the others saker does not decode. */
static bool h1_other_coding(const struct exchange *ex)
{
    for (size_t i = 0; i < ex->header_count; i++) {
        const struct header_field *f = &ex->headers[i];
        if (f->name_len != 17 || strncasecmp(f->name, "transfer-encoding", 17) != 0)
            continue;
        for (const char *p = f->value, *end = f->value + f->value_len; p < end;) {
            while (p < end && (*p == ' ' || *p == '\t' || *p == ','))
                p++;
            const char *coding = p;
            while (p < end && *p != ',' && *p != ' ' && *p != '\t')
                p++;
            if (p > coding && ((size_t)(p - coding) != 7 || strncasecmp(coding, "chunked", 7) != 0))
                return true;
        }
    }
    return false;
}

/* RFC 9112 section 6.3: a request Transfer-Encoding whose final coding is
 * not chunked cannot be framed (400, and llhttp only says so after
 * headers-complete, so it is refused here, before any handler answers);
 * section 6.1: Transfer-Encoding in an HTTP/1.0 message is faulty framing
 * (400), and a coding the server does not understand is a 501. 0, or the
 * status. */
static int h1_check_framing(const llhttp_t *parser, const struct exchange *ex)
{
    if (!(parser->flags & F_TRANSFER_ENCODING))
        return 0;
    if (!(parser->flags & F_CHUNKED) || (ex->version_major == 1 && ex->version_minor == 0))
        return 400;
    return h1_other_coding(ex) ? 501 : 0;
}

/* The head's checks (request_head_check) and the framing's (h1's own):
 * 0 to go on, or the refusal already answered (H1_REFUSED, H1_LIMITED). */
static int h1_check_request(struct h1 *h1, struct exchange *ex, bool *expect_continue)
{
    llhttp_t *parser = &h1->parser;
    struct request_head head = {
        .limits = h1_limits(h1),
        .conn = h1->conn,
        .absolute_form = true,
        .content_length = (parser->flags & F_CONTENT_LENGTH) ? (int64_t)parser->content_length : -1,
    };
    struct request_verdict v;
    request_head_check(h1->worker, ex, &head, &v);
    h1->entry = v.entry;
    h1->body_limit = v.body_limit;
    *expect_continue = v.expect_continue;
    if (v.status == 417) {
        h1->closing = true; /* the client may send the body anyway */
        exchange_respond_error(ex, 417);
        return H1_REFUSED;
    }
    if (v.status != 0 && v.status != 429) {
        h1_refuse(h1, v.status, (enum shm_counter)v.counter);
        return H1_REFUSED;
    }
    /* CONNECT takes an authority-form target only (RFC 9112 section 3.2.3),
     * which names no resource here: saker is no forward proxy. */
    int status = ex->method == METHOD_CONNECT ? 400 : h1_check_framing(parser, ex);
    if (status != 0) {
        h1_refuse(h1, status, SHM_REJECT_MALFORMED);
        return H1_REFUSED;
    }
    if (v.status == 429)
        return H1_LIMITED; /* well framed: answered as a handler would */
    return 0;
}

static int on_headers_complete(llhttp_t *parser)
{
    struct h1 *h1 = h1_of(parser);
    struct exchange *ex = h1->ex;
    bool expect_continue;
    h1->headers_done = true;
    h1->head_mark = NULL;
    ex->version_major = parser->http_major;
    ex->version_minor = parser->http_minor;
    ex->method_name = llhttp_method_name((llhttp_method_t)parser->method);
    ex->method = h1_method(parser->method);
    h1->keep_alive = llhttp_should_keep_alive(parser) && !h1->worker->draining;
    shm_slot_count(h1->worker->slot, SHM_REQUESTS, 1);
    if (ex->method == METHOD_CONNECT)
        h1->closing = true; /* what follows a CONNECT is not HTTP */
    int checked = h1_check_request(h1, ex, &expect_continue);
    if (checked == H1_REFUSED)
        return HPE_PAUSED;
    bool has_body = (parser->flags & F_CHUNKED) ||
                    ((parser->flags & F_CONTENT_LENGTH) && parser->content_length > 0);
    if (checked == H1_LIMITED) {
        /* A client that waits for 100 Continue may send the body or not:
         * the connection cannot tell which, so it closes after the 429. */
        if (has_body && expect_continue)
            h1->closing = true;
        else if (has_body)
            h1_body_begin(h1); /* discarded as it comes, for up to H1_BODY_DRAIN_MS */
        exchange_respond_error(ex, 429);
        return h1->closing ? HPE_PAUSED : 0;
    }
    ex->expect_continue = expect_continue && has_body;
    h1->early = has_body && request_reads_body(h1->entry);
    /* A request with a body is answered once the body has arrived and its
     * framing proved sound, so a bad chunk gets a 400 rather than a
     * response followed by a reset; unless its handler reads the body
     * itself, or the client asked to be told first (Expect: 100-continue:
     * a handler that does not ask for the body answers now, which RFC 9110
     * section 10.1.1 allows, and what is sent anyway is drained). */
    if (has_body)
        h1_body_begin(h1);
    if (has_body && !expect_continue && !h1->early) {
        h1->dispatch_pending = true;
        return 0;
    }
    h1_dispatch(h1, ex);
    /* Its body waits for its reader, or for its answer (then drained). */
    if (h1->early && ex->body_reader == NULL && !ex->finished && !h1->closing) {
        h1->waiting = true;
        return HPE_PAUSED;
    }
    /* Closing: stop here rather than parse a body nobody will read. */
    return h1->closing ? HPE_PAUSED : 0;
}

static int on_body(llhttp_t *parser, const char *at, size_t len)
{
    struct h1 *h1 = h1_of(parser);
    h1->ex->body_bytes_received += len;
    if (h1->ex->body_bytes_received > h1->body_limit)
        return h1_reject(h1, 413, SHM_REJECT_BODY_TOO_LARGE);
    return h1_body_piece(h1, at, len) ? HPE_PAUSED : 0;
}

/* The last chunk: parsing pauses here so that the trailer section, and the
 * CRLF that ends the body, go through the head grammar's field lines
 * (llhttp takes a bare LF there). h1_execute starts the check. */
static int on_chunk_header(llhttp_t *parser)
{
    struct h1 *h1 = h1_of(parser);
    if (parser->content_length != 0)
        return 0;
    h1->trailer_pause = true;
    return HPE_PAUSED;
}

/* What the exchange holds goes: a body it never sent, and its arena. */
static void h1_release_exchange(struct h1 *h1)
{
    struct exchange *ex = h1->ex;
    if (ex != NULL && !ex->responded)
        exchange_drop_body(ex); /* a handler that set a file and never answered */
    h1->ex = NULL;
    arena_reset(&h1->arena);
}

static void h1_end_exchange(struct h1 *h1)
{
    h1_release_exchange(h1);
    h1->message_complete = false;
    h1->exchange_done = false;
    h1->proceed_owed = false;
    h1->chunked = false;
    h1->early = false;
    h1->body_owed = false;
    h1->continue_sent = false;
    h1->held.len = 0;
    h1->entry = NULL;
    h1->head_check_state = H1_HEAD_CHECK_IDLE;
    h1->trailer_pause = false;
    h1->reading_body = false;
    h1->body_started_ms = 0;
    h1->body_drain_until_ms = 0;
    h1->dispatch_pending = false;
    h1->in_message = false;
    h1->headers_done = false;
    h1->piece_kind = H1_PIECE_NONE;
    h1->piece = NULL;
    h1->piece_len = 0;
    h1->head_bytes = 0;
    h1->head_mark = NULL;
}

/* The request was read and its response has ended. True: parse on. */
static bool h1_finish_message(struct h1 *h1)
{
    h1_end_exchange(h1);
    if (!h1->keep_alive || h1->closing)
        h1->closing = true;
    return !h1->closing;
}

static int on_message_complete(llhttp_t *parser)
{
    struct h1 *h1 = h1_of(parser);
    struct exchange *ex = h1->ex;
    h1->message_complete = true;
    h1->reading_body = false;
    if (ex != NULL && !h1->upgrading)
        exchange_body_end(ex); /* an upgrade's reader reads the tunnel */
    if (h1->dispatch_pending) {
        h1->dispatch_pending = false;
        h1_dispatch(h1, ex);
    }
    if (ex != NULL && !ex->responded && ex->generator == NULL)
        exchange_respond_error(ex, 500); /* a handler that never answered */
    if (ex != NULL && !ex->finished && !ex->abandoned) {
        h1->waiting = true; /* its response comes later: parse no further */
        return HPE_PAUSED;
    }
    if (!h1_finish_message(h1))
        return HPE_PAUSED;
    /* Pipelined requests from a client that does not read its answers:
     * parse no further while the queue holds the high-water mark, as
     * HTTP/2 makes no frames past it; the rest waits in the stash, and
     * reading pauses once that is full (h1_produce parses on). */
    if (h1->out->pending_bytes >= OUTQ_HIGH_WATER) {
        h1->waiting = h1->backlogged = true;
        return HPE_PAUSED;
    }
    return 0;
}

static const llhttp_settings_t h1_settings = {
    .on_message_begin = on_message_begin,
    .on_method = on_method,
    .on_url = on_url,
    .on_url_complete = on_url_complete,
    .on_version_complete = on_version_complete,
    .on_header_field = on_header_field,
    .on_header_field_complete = on_header_field_complete,
    .on_header_value = on_header_value,
    .on_header_value_complete = on_header_value_complete,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_chunk_header = on_chunk_header,
    .on_message_complete = on_message_complete,
};

void h1_init(struct h1 *h1, struct worker *worker, struct outq *out)
{
    memset(h1, 0, sizeof *h1);
    llhttp_init(&h1->parser, HTTP_REQUEST, &h1_settings);
    h1->parser.lenient_flags |= LENIENT_VERSION; /* on_version_complete decides */
    h1->parser.data = h1;
    h1->worker = worker;
    h1->limits = &worker->config->limits;
    h1->body_limit = h1->limits->max_request_body_size;
    h1->out = out;
    arena_init(&h1->arena, &worker->blocks);
}

void h1_set_connection(struct h1 *h1, const struct endpoint *endpoint,
                       const struct config_limits *limits, const struct sockaddr *peer)
{
    h1->endpoint = endpoint;
    h1->limits = limits;
    h1->body_limit = limits->max_request_body_size;
    h1->peer = peer;
}

void h1_destroy(struct h1 *h1)
{
    /* A producer still at work (a generator waiting for its proceed, the
     * filters between) is told first: what it holds, a file included,
     * goes back before the exchange's memory does. */
    if (h1->ex != NULL)
        exchange_stop(h1->ex);
    if (h1->tunnel != NULL)
        tunnel_discard(h1->tunnel);
    h1->tunnel = NULL;
    h1->upgrading = false;
    /* Only what is held is released: the state is freed, or made new by
     * h1_init when it is taken again. */
    h1_release_exchange(h1);
    if (h1->stash.data != NULL)
        bytebuf_free(&h1->stash);
    if (h1->held.data != NULL)
        bytebuf_free(&h1->held);
}

/* llhttp knows a fixed set of methods and stops at the first byte that
 * leaves it. A request line that is well-formed all the same (a token,
 * then the rest of the head grammar) names a method saker does not
 * implement: 501 (RFC 9110 section 9.1), as HAProxy and h2o accept any
 * token; anything else is a 400. at: where llhttp stopped, in data. */
static int h1_unknown_method_status(const struct h1 *h1, const char *data, const char *at)
{
    /* Stopped at a space: the method is empty unless some of it came
     * before (in an earlier read, or a token byte just before at). */
    bool empty = *at == ' ' && h1->message_feed == h1->feed_count &&
                 !(at > data && h1_head_is_token_byte((unsigned char)at[-1]));
    return !empty && h1_head_method_rest_ok(at, (size_t)(h1->feed_end - at)) ? 501 : 400;
}

/* Maps an llhttp error to the status and counter of the refusal. */
static void h1_parse_failed(struct h1 *h1, llhttp_errno_t error, const char *data)
{
    int status = h1->reject_status;
    enum shm_counter counter = (enum shm_counter)h1->reject_counter;
    if (status == 0 && error == HPE_INVALID_METHOD) {
        status = h1_unknown_method_status(h1, data, llhttp_get_error_pos(&h1->parser));
        counter = SHM_REJECT_MALFORMED;
    }
    if (status == 0) {
        status = 400;
        counter = SHM_REJECT_MALFORMED;
        log_msg(LOG_DEBUG, "bad request: %s (%s)", llhttp_errno_name(error),
                llhttp_get_error_reason(&h1->parser));
    }
    if (h1->ex == NULL) /* an error between requests: answer it as its own */
        on_message_begin(&h1->parser);
    if (h1->ex != NULL && h1->ex->method_name == NULL)
        h1->ex->method_name = "";
    h1_refuse(h1, status, counter);
}

/* Head bytes so far (request line and headers), bounded so that input that
 * produces no callbacks (whitespace runs) cannot grow without limit. */
static bool h1_head_too_large(struct h1 *h1, const char *data, size_t len)
{
    if (!h1->in_message || h1->headers_done)
        return false;
    const char *from = h1->head_mark != NULL ? h1->head_mark : data;
    h1->head_bytes += (uint64_t)(data + len - from);
    h1->head_mark = NULL;
    const struct config_limits *limits = h1_limits(h1);
    return h1->head_bytes >
           limits->max_request_line_size + limits->max_request_headers_total_size + 4096;
}

/* Appends [from, from + len) to the stash, from may lie in the stash
 * itself (a resumed parse that paused again). Reading goes on (a client
 * that closes is noticed) until the stash holds H1_STASH_MAX. */
static void h1_stash_append(struct h1 *h1, const char *from, size_t len)
{
    if (len == 0)
        return;
    if (bytebuf_holds(&h1->stash, from)) {
        bytebuf_keep(&h1->stash, from, len); /* what was parsed goes */
        return;
    }
    if (bytebuf_append(&h1->stash, from, len) != SK_OK) {
        h1->closing = true; /* cannot keep what follows: stop after this one */
        return;
    }
    if (h1->stash.len >= H1_STASH_MAX && h1->conn != NULL)
        conn_pause_input(h1->conn, true);
}

/* Paused at the last chunk: the trailer section is checked from here on
 * (in later feeds too), and parsing goes on. False: refused. */
static bool h1_trailer_begin(struct h1 *h1, const char *at, const char *end)
{
    h1->trailer_pause = false;
    h1_head_check_start_fields(&h1->head_check);
    if (h1_check_head(h1, at, end) != 0) {
        h1_refuse(h1, h1->reject_status, (enum shm_counter)h1->reject_counter);
        return false;
    }
    llhttp_resume(&h1->parser);
    return true;
}

static void h1_execute(struct h1 *h1, const char *data, size_t len)
{
    while (!h1->closing) {
        h1->in_parse = true;
        llhttp_errno_t error = llhttp_execute(&h1->parser, data, len);
        h1->in_parse = false;
        if (error == HPE_OK) {
            if (h1_head_too_large(h1, data, len))
                h1_refuse(h1, 431, SHM_REJECT_HEADERS_TOO_LARGE);
            break;
        }
        if (error == HPE_PAUSED_UPGRADE && !h1->closing) {
            /* An Upgrade we did not take: the connection stays HTTP/1.1
             * (RFC 9110 section 7.8), so parse on after this request. */
            const char *resume = llhttp_get_error_pos(&h1->parser);
            llhttp_resume_after_upgrade(&h1->parser);
            len -= (size_t)(resume - data);
            data = resume;
            continue;
        }
        if (error == HPE_PAUSED && h1->trailer_pause && !h1->closing) {
            const char *rest = llhttp_get_error_pos(&h1->parser);
            if (!h1_trailer_begin(h1, rest, data + len))
                break;
            len -= (size_t)(rest - data);
            data = rest;
            continue;
        }
        if (error == HPE_PAUSED && h1->waiting && !h1->closing) {
            const char *rest = llhttp_get_error_pos(&h1->parser);
            h1->stash.len = 0;
            h1_stash_append(h1, rest, (size_t)(data + len - rest));
        } else if (error != HPE_PAUSED) {
            h1_parse_failed(h1, error, data);
        }
        break;
    }
}

/* What was stashed while parsing was paused, parsed now. */
void h1_resume(struct h1 *h1)
{
    llhttp_resume(&h1->parser);
    /* Even with nothing stashed: llhttp goes on from where it paused
     * (the end of a message, after a body's last piece) without input. */
    if (!h1->closing)
        h1_feed(h1, h1->stash.data != NULL ? h1->stash.data : "", h1->stash.len);
    if (h1->waiting && !h1->closing)
        return; /* paused again: the rest stays stashed */
    bytebuf_free(&h1->stash); /* held only while paused */
    if (h1->conn != NULL)
        conn_pause_input(h1->conn, false);
}

enum h1_result h1_feed(struct h1 *h1, const char *data, size_t len)
{
    if (h1->waiting) { /* parsing is paused: kept for when it resumes */
        h1_stash_append(h1, data, len);
        return h1->closing ? H1_CLOSE : H1_CONTINUE;
    }
    h1->stash.len = 0;
    h1->feed_count++;
    h1->feed_end = data + len;
    if (h1->head_check_state == H1_HEAD_CHECK_RUNNING && !h1->closing &&
        h1_check_head(h1, data, data + len) != 0) {
        h1_refuse(h1, h1->reject_status, (enum shm_counter)h1->reject_counter);
        return H1_CLOSE;
    }
    h1_execute(h1, data, len);
    return h1->closing ? H1_CLOSE : H1_CONTINUE;
}

bool h1_on_eof(struct h1 *h1)
{
    struct exchange *ex = h1->ex;
    h1->closing = true;
    if (ex != NULL && !h1->message_complete)
        exchange_body_error(ex, 0); /* the client went away mid-body */
    if (ex != NULL && ex->generator != NULL && !ex->finished) {
        exchange_abandon(ex); /* its memory stays until the producer is told */
        return true;
    }
    h1_end_exchange(h1);
    return false;
}

/* ---- the exchange's course, between the parser and the connection ------ */

void h1_wake(struct h1 *h1)
{
    if (h1->conn != NULL)
        conn_wake(h1->conn);
}

void h1_abort(struct h1 *h1)
{
    if (h1->ex != NULL)
        exchange_abandon(h1->ex);
    h1->closing = true;
    if (h1->conn != NULL)
        conn_abort(h1->conn);
}

void h1_response_ended(struct h1 *h1)
{
    h1->proceed_owed = false;
    /* All of it is in the queue: counted once it has left. */
    if (h1->ex != NULL)
        route_stats_queued(h1->worker, h1->out, h1->entry, h1->ex->status,
                           h1->request_started_us);
    if (!h1->message_complete) {
        h1_body_answered(h1); /* the rest of a body nobody reads is drained */
        return; /* on_message_complete ends the exchange */
    }
    if (h1->in_parse)
        return;
    h1->exchange_done = true;
    h1_wake(h1);
}

/* The request of an accepted upgrade has been read: the tunnel takes the
 * connection over, with what was read after the request, and this state
 * (the exchange lives in its arena) until the release. */
static void h1_hand_over(struct h1 *h1)
{
    struct tunnel *t = h1->tunnel;
    h1->tunnel = NULL;
    h1->upgrading = false;
    h1->waiting = false;
    size_t len = h1->stash.len;
    h1->stash.len = 0;
    tunnel_switch(t, h1, h1_state_free, h1->stash.data, len);
}

/* Proceeds given in one produce: a producer whose pieces are small or
 * empty (a compressor eating its input) fills the queue slowly, and the
 * rest waits for the next round of the flush, or the next wakeup. */
#define H1_PROCEEDS_PER_PRODUCE 16

/* What a waiting exchange is owed, run at the connection's flush. */
enum conn_owed h1_produce(struct h1 *h1)
{
    int proceeds = 0;
    if (h1->upgrading && h1->message_complete && h1->conn != NULL) {
        h1_hand_over(h1);
        return CONN_OWES_LATER; /* the tunnel speaks from the next round */
    }
    for (;;) {
        if (h1->backlogged && h1->out->pending_bytes < OUTQ_HIGH_WATER / 2) {
            h1->backlogged = h1->waiting = false;
            h1_resume(h1);
            continue;
        }
        if (h1->exchange_done) {
            h1->exchange_done = false;
            h1->waiting = false;
            h1_finish_message(h1);
            h1_resume(h1);
            continue;
        }
        if (h1->body_owed) {
            h1->body_owed = false;
            h1_body_flush(h1);
            continue;
        }
        if (h1->proceed_owed && h1->out->pending_bytes < OUTQ_HIGH_WATER && !h1_gone(h1) &&
            proceeds++ < H1_PROCEEDS_PER_PRODUCE) {
            h1->proceed_owed = false;
            exchange_proceed(h1->ex);
            continue;
        }
        break;
    }
    if ((h1->proceed_owed && !h1_gone(h1)) || h1->backlogged)
        return CONN_OWES_MORE; /* parsing goes on as the queue drains */
    struct exchange *ex = h1->ex;
    if (ex != NULL && ex->generator != NULL && !ex->finished && !h1_gone(h1))
        return CONN_OWES_LATER;
    return CONN_OWES_NOTHING;
}

void h1_timeout(struct h1 *h1)
{
    if (h1->in_message && h1->ex != NULL && !h1->ex->responded)
        h1_refuse(h1, 408, SHM_REJECT_HEADERS_TIMEOUT);
    h1->closing = true;
}
