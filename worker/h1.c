/*
 * h1.c - HTTP/1.1 server protocol over llhttp; see h1.h.
 *
 * The request head is accumulated piece by piece into the exchange arena
 * (llhttp hands out spans of the read buffer, which is reused by the next
 * read), the handler runs as soon as the head is complete, and the body is
 * consumed (and for now discarded) as it arrives. The response is rendered
 * straight into the connection's output queue.
 */
#include "worker/h1.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/digits.h"
#include "common/log.h"
#include "shm/shm.h"
#include "worker/file_cache.h"
#include "worker/request.h"
#include "worker/route_stats.h"
#include "worker/worker.h"

static void h1_respond(struct exchange *ex);
static const struct exchange_ops h1_exchange_ops = {.respond = h1_respond};

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
    ex->body_fd = -1;
    h1->ex = ex;
    h1->in_message = true;
    h1->headers_done = false;
    h1->piece_kind = H1_PIECE_NONE;
    h1->header_bytes = 0;
    h1->request_started_ms = clock_monotonic_ms();
    h1->request_started_us = clock_monotonic_us();
    h1->head_check_state = H1_HEAD_CHECK_IDLE;
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
    if (ex->header_count >= h1_limits(h1)->max_request_header_count)
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
    bool has_value = h1->piece_kind == H1_PIECE_VALUE;
    struct header_field field = {h1->field_name, h1->field_name_len,
                                 has_value ? h1->piece : "", has_value ? h1->piece_len : 0};
    h1->piece_kind = H1_PIECE_NONE;
    if (exchange_push_request_header(h1->ex, &field) != SK_OK)
        return h1_reject(h1, 500, SHM_REJECT_MALFORMED);
    return 0;
}

/* RFC 9112 section 3.2: exactly one Host in HTTP/1.1. */
static int h1_parse_host(struct h1 *h1, struct exchange *ex)
{
    const char *value = NULL;
    size_t len = 0, count = 0;
    for (size_t i = 0; i < ex->header_count; i++)
        if (ex->headers[i].name_len == 4 && strncasecmp(ex->headers[i].name, "host", 4) == 0) {
            value = ex->headers[i].value;
            len = ex->headers[i].value_len;
            count++;
        }
    if (count > 1 || (count == 0 && ex->version_major == 1 && ex->version_minor >= 1))
        return SK_ERROR;
    if (value == NULL) { /* HTTP/1.0 without Host */
        ex->host = "";
        ex->host_len = 0;
        return SK_OK;
    }
    return request_set_host(&h1->arena, ex, value, len);
}

/* absolute-form (RFC 9112 section 3.2.2): the authority must carry no
 * userinfo (RFC 9110 section 4.2.4) and, as Kestrel requires, must name the
 * same host as the Host header, so that routing, host filtering and any
 * proxy behind us cannot disagree on which host was asked for. Returns the
 * path part (NULL: refuse) and its length. */
static const char *h1_absolute_path(const struct exchange *ex, const char *target,
                                    size_t *len)
{
    const char *authority = strstr(target, "//") + 2;
    size_t authority_len = strcspn(authority, "/?");
    size_t host_len;
    const char *host = exchange_header(ex, "host", &host_len);
    if (memchr(authority, '@', authority_len) != NULL || authority_len == 0 ||
        host == NULL || host_len != authority_len ||
        strncasecmp(host, authority, authority_len) != 0)
        return NULL;
    const char *path = authority + authority_len;
    *len -= (size_t)(path - target);
    return path;
}

/* absolute-form is HTTP/1.1's alone; the rest is request_set_target.
 * Returns 0 or the status to answer. */
static int h1_parse_target(struct h1 *h1, struct exchange *ex)
{
    const char *target = ex->target;
    size_t len = ex->target_len;
    if (len > 7 && (strncasecmp(target, "http://", 7) == 0 || strncasecmp(target, "https://", 8) == 0)) {
        target = h1_absolute_path(ex, target, &len);
        if (target == NULL)
            return 400;
    } else if (target[0] != '/' && !(len == 1 && target[0] == '*')) {
        return 400; /* origin-form starts with '/' (RFC 9112 section 3.2.1) */
    }
    return request_set_target(&h1->arena, ex, target, len);
}

static void h1_count_rejection(struct h1 *h1, enum shm_counter counter)
{
    shm_slot_count(h1->worker->slot, counter, 1);
}

/* Refuses the request being parsed with status, and stops reading. */
static void h1_refuse(struct h1 *h1, int status, enum shm_counter counter)
{
    h1_count_rejection(h1, counter);
    h1->closing = true;
    struct exchange *ex = h1->ex;
    if (ex == NULL || ex->responded)
        return;
    if (ex->method_name == NULL)
        ex->method_name = "";
    exchange_respond_error(ex, status);
}

enum h1_expect { H1_EXPECT_NONE, H1_EXPECT_CONTINUE, H1_EXPECT_UNKNOWN };

static enum h1_expect h1_expectation(const struct exchange *ex)
{
    size_t len;
    const char *expect = exchange_header(ex, "expect", &len);
    if (expect == NULL)
        return H1_EXPECT_NONE;
    /* RFC 9110 section 10.1.1: 100-continue is the only expectation defined. */
    return len == 12 && strncasecmp(expect, "100-continue", 12) == 0 ? H1_EXPECT_CONTINUE
                                                                     : H1_EXPECT_UNKNOWN;
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

/* The body of a request about to be answered starts now: its data rate is
 * measured from here, and if the answer comes first the rest is drained. */
static void h1_body_begin(struct h1 *h1, bool answered_first)
{
    h1->reading_body = true;
    h1->body_started_ms = clock_now_monotonic_ms();
    if (answered_first)
        h1->body_drain_until_ms = h1->body_started_ms + H1_BODY_DRAIN_MS;
}

/* Host (exactly one), allowed_hosts and the target; false: refused. */
static bool h1_host_and_target(struct h1 *h1, struct exchange *ex)
{
    if (h1_parse_host(h1, ex) != SK_OK) {
        h1_refuse(h1, 400, SHM_REJECT_MALFORMED);
        return false;
    }
    if (!request_host_allowed(h1->worker, ex)) {
        h1_refuse(h1, 400, SHM_REJECT_HOST_NOT_ALLOWED);
        return false;
    }
    int status = h1_parse_target(h1, ex);
    if (status != 0) {
        h1_refuse(h1, status, SHM_REJECT_MALFORMED);
        return false;
    }
    return true;
}

static int on_headers_complete(llhttp_t *parser)
{
    struct h1 *h1 = h1_of(parser);
    struct exchange *ex = h1->ex;
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
    if (!h1_host_and_target(h1, ex))
        return HPE_PAUSED;
    h1->entry = request_route(h1->worker, h1->endpoint, h1_limits(h1), ex, &h1->body_limit);
    if ((parser->flags & F_CONTENT_LENGTH) && parser->content_length > h1->body_limit) {
        h1_refuse(h1, 413, SHM_REJECT_BODY_TOO_LARGE);
        return HPE_PAUSED;
    }
    enum h1_expect expect = h1_expectation(ex);
    if (expect == H1_EXPECT_UNKNOWN) {
        h1->closing = true; /* the client may send the body anyway */
        exchange_respond_error(ex, 417);
        return HPE_PAUSED;
    }
    /* RFC 9112 section 6.3: a request Transfer-Encoding whose final coding
     * is not chunked cannot be framed; llhttp only says so after this
     * callback, so refuse it here, before any handler answers. Section
     * 6.1: Transfer-Encoding in an HTTP/1.0 message is faulty framing. */
    if ((parser->flags & F_TRANSFER_ENCODING) &&
        (!(parser->flags & F_CHUNKED) || (ex->version_major == 1 && ex->version_minor == 0))) {
        h1_refuse(h1, 400, SHM_REJECT_MALFORMED);
        return HPE_PAUSED;
    }
    bool has_body = (parser->flags & F_CHUNKED) ||
                    ((parser->flags & F_CONTENT_LENGTH) && parser->content_length > 0);
    /* A request with a body is answered once the body has arrived and its
     * framing proved sound, so a bad chunk gets 400 rather than a response
     * followed by a reset. A client that asked to be told first
     * (Expect: 100-continue) is answered now, and the body it may still
     * send is read and discarded. */
    bool answer_first = expect == H1_EXPECT_CONTINUE;
    if (has_body)
        h1_body_begin(h1, answer_first);
    if (has_body && !answer_first) {
        h1->dispatch_pending = true;
        return 0;
    }
    /* Expect: 100-continue: no handler reads request bodies yet, so none
     * asks for the body (EXCHANGE hook: ex->body_wanted) and the client
     * gets the final response instead of 100 Continue (RFC 9110 section
     * 10.1.1 allows this); what it sends anyway is drained. */
    h1_dispatch(h1, ex);
    if (answer_first && has_body && !ex->responded && ex->body_wanted)
        outq_add_stable(h1->out, "HTTP/1.1 100 Continue\r\n\r\n", 25);
    /* Closing: stop here rather than parse a body nobody will read. */
    return h1->closing ? HPE_PAUSED : 0;
}

static int on_body(llhttp_t *parser, const char *at, size_t len)
{
    (void)at; /* the body is not kept: only its size counts */
    struct h1 *h1 = h1_of(parser);
    struct exchange *ex = h1->ex;
    ex->body_bytes_received += len;
    if (ex->body_bytes_received > h1->body_limit)
        return h1_reject(h1, 413, SHM_REJECT_BODY_TOO_LARGE);
    return 0;
}

static void h1_end_exchange(struct h1 *h1)
{
    struct exchange *ex = h1->ex;
    if (ex != NULL && ex->body_kind == BODY_FILE && !ex->responded)
        file_cache_close(ex->body_fd);
    h1->ex = NULL;
    h1->entry = NULL;
    h1->head_check_state = H1_HEAD_CHECK_IDLE;
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
    arena_reset(&h1->arena);
}

static int on_message_complete(llhttp_t *parser)
{
    struct h1 *h1 = h1_of(parser);
    if (h1->dispatch_pending) {
        h1->dispatch_pending = false;
        h1_dispatch(h1, h1->ex);
    }
    if (h1->ex != NULL && !h1->ex->responded)
        exchange_respond_error(h1->ex, 500); /* a handler that never answered */
    h1_end_exchange(h1);
    if (!h1->keep_alive || h1->closing) {
        h1->closing = true;
        return HPE_PAUSED;
    }
    return 0;
}

static const llhttp_settings_t h1_settings = {
    .on_message_begin = on_message_begin,
    .on_method = on_method,
    .on_url = on_url,
    .on_url_complete = on_url_complete,
    .on_header_field = on_header_field,
    .on_header_field_complete = on_header_field_complete,
    .on_header_value = on_header_value,
    .on_header_value_complete = on_header_value_complete,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

void h1_init(struct h1 *h1, struct worker *worker, struct outq *out)
{
    memset(h1, 0, sizeof *h1);
    llhttp_init(&h1->parser, HTTP_REQUEST, &h1_settings);
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

bool h1_reading_body(const struct h1 *h1, uint64_t *started_ms, uint64_t *bytes)
{
    if (!h1->reading_body || h1->ex == NULL || h1->closing)
        return false;
    *started_ms = h1->body_started_ms;
    *bytes = h1->ex->body_bytes_received;
    return true;
}

void h1_body_too_slow(struct h1 *h1)
{
    shm_slot_count(h1->worker->slot, SHM_REJECT_BODY_RATE, 1);
    h1->closing = true;
    if (h1->ex != NULL && !h1->ex->responded)
        exchange_respond_error(h1->ex, 408);
}

bool h1_body_expired(const struct h1 *h1, uint64_t now_ms)
{
    return h1->reading_body && h1->body_drain_until_ms != 0 && now_ms >= h1->body_drain_until_ms;
}

void h1_destroy(struct h1 *h1) { h1_end_exchange(h1); }

bool h1_idle(const struct h1 *h1) { return !h1->in_message; }

bool h1_reading_head(const struct h1 *h1) { return h1->in_message && !h1->headers_done; }

/* Maps an llhttp error to the status and counter of the refusal. */
static void h1_parse_failed(struct h1 *h1, llhttp_errno_t error)
{
    int status = h1->reject_status;
    enum shm_counter counter = (enum shm_counter)h1->reject_counter;
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

enum h1_result h1_feed(struct h1 *h1, const char *data, size_t len)
{
    h1->feed_count++;
    h1->feed_end = data + len;
    if (h1->head_check_state == H1_HEAD_CHECK_RUNNING && !h1->closing &&
        h1_check_head(h1, data, data + len) != 0) {
        h1_refuse(h1, h1->reject_status, (enum shm_counter)h1->reject_counter);
        return H1_CLOSE;
    }
    while (!h1->closing) {
        llhttp_errno_t error = llhttp_execute(&h1->parser, data, len);
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
        if (error != HPE_PAUSED)
            h1_parse_failed(h1, error);
        break;
    }
    return h1->closing ? H1_CLOSE : H1_CONTINUE;
}

void h1_on_eof(struct h1 *h1)
{
    h1->closing = true;
    h1_end_exchange(h1);
}

void h1_timeout(struct h1 *h1)
{
    if (h1->in_message && h1->ex != NULL && !h1->ex->responded)
        h1_refuse(h1, 408, SHM_REJECT_HEADERS_TIMEOUT);
    h1->closing = true;
}

/* ---- Response rendering ------------------------------------------------ */

static size_t h1_head_size(const struct exchange *ex, size_t hsts_len)
{
    size_t size = 128 + sizeof(H1_SERVER_HEADER) + CLOCK_HTTP_DATE_LEN + 64 + hsts_len;
    for (size_t i = 0; i < ex->response_header_count; i++)
        size += ex->response_headers[i].name_len + ex->response_headers[i].value_len + 4;
    return size;
}

static char *put(char *p, const char *s, size_t len)
{
    memcpy(p, s, len);
    return p + len;
}

#define PUT_LITERAL(p, s) put((p), (s), sizeof(s) - 1)

/* printf is a measurable share of a small response; digits by hand are not. */
static char *put_content_length(char *p, uint64_t n)
{
    p = PUT_LITERAL(p, "Content-Length: ");
    p = digits_decimal(p, n);
    return PUT_LITERAL(p, "\r\n");
}

static char *h1_render_head(struct h1 *h1, const struct exchange *ex, char *p)
{
    const char *reason = exchange_status_reason(ex->status);
    p = PUT_LITERAL(p, "HTTP/1.1 ");
    *p++ = (char)('0' + ex->status / 100);
    *p++ = (char)('0' + ex->status / 10 % 10);
    *p++ = (char)('0' + ex->status % 10);
    *p++ = ' ';
    p = put(p, reason, strlen(reason));
    p = PUT_LITERAL(p, "\r\n");
    p = PUT_LITERAL(p, H1_SERVER_HEADER "Date: ");
    p = put(p, clock_http_date(), CLOCK_HTTP_DATE_LEN);
    p = PUT_LITERAL(p, "\r\n");
    if (h1->endpoint != NULL && h1->endpoint->tls.hsts_header != NULL)
        p = put(p, h1->endpoint->tls.hsts_header, h1->endpoint->tls.hsts_header_len);
    for (size_t i = 0; i < ex->response_header_count; i++) {
        const struct header_field *h = &ex->response_headers[i];
        p = put(p, h->name, h->name_len);
        p = PUT_LITERAL(p, ": ");
        p = put(p, h->value, h->value_len);
        p = PUT_LITERAL(p, "\r\n");
    }
    if (request_status_has_body(ex->status))
        p = put_content_length(p, ex->body_kind == BODY_NONE ? 0 : ex->body_len);
    if (h1->closing || !h1->keep_alive)
        p = PUT_LITERAL(p, "Connection: close\r\n");
    else if (ex->version_major == 1 && ex->version_minor == 0)
        p = PUT_LITERAL(p, "Connection: keep-alive\r\n");
    return PUT_LITERAL(p, "\r\n");
}

static int h1_queue_body(struct h1 *h1, struct exchange *ex)
{
    bool send_body = request_status_has_body(ex->status) && ex->method != METHOD_HEAD;
    if (ex->body_kind == BODY_FILE) {
        int fd = ex->body_fd;
        ex->body_kind = BODY_NONE; /* the queue owns (or has closed) it now */
        if (!send_body) {
            file_cache_close(fd);
            return 0;
        }
        return outq_add_file(h1->out, fd, ex->body_offset, ex->body_len);
    }
    if (ex->body_kind != BODY_BYTES || !send_body)
        return 0;
    if (ex->body_flags & EXCHANGE_BODY_STABLE)
        return outq_add_stable(h1->out, ex->body, ex->body_len);
    return outq_add_copy(h1->out, ex->body, ex->body_len);
}

static void h1_log_access(struct h1 *h1, const struct exchange *ex)
{
    struct request_origin origin = {
        .endpoint = h1->endpoint,
        .peer = h1->peer,
        .client_subject = h1->client_subject,
        .started_ms = h1->request_started_ms,
    };
    request_log_access(h1->worker, ex, &origin);
}

static void h1_respond(struct exchange *ex)
{
    struct h1 *h1 = ex->protocol;
    if (ex->status < 100 || ex->status > 599)
        ex->status = 500;
    if (ex->status >= 400 && !h1->headers_done)
        h1->closing = true; /* the request itself was refused: framing is in doubt */
    char *head = outq_reserve(h1->out, h1_head_size(ex, h1->endpoint != NULL
                                                       ? h1->endpoint->tls.hsts_header_len
                                                       : 0));
    if (head == NULL) {
        h1->closing = true;
        return;
    }
    char *end = h1_render_head(h1, ex, head);
    /* Logged before the body is queued: a file body's kind is reset then. */
    h1_log_access(h1, ex);
    if (outq_commit(h1->out, (size_t)(end - head)) != 0 || h1_queue_body(h1, ex) != 0)
        h1->closing = true;
    request_count_response(h1->worker, ex->status);
    route_stats_queued(h1->worker, h1->out, h1->entry, ex->status, h1->request_started_us);
}
