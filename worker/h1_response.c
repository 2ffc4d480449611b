/*
 * h1_response.c - HTTP/1.1 responses: the head rendered straight into the
 * connection's output queue, a whole body, or a streamed one (chunked, a
 * declared length, or close-delimited for HTTP/1.0); see h1.h.
 *
 * A streamed body's pieces are copied into the queue as they are sent
 * (with their chunk framing around them), so the producer's buffer is
 * free at once; its proceed comes when the queue is below the high-water
 * mark again (h1_produce), which is the backpressure.
 */
#include <string.h>

#include "common/clock.h"
#include "common/digits.h"
#include "conf/config.h"
#include "worker/conn.h"
#include "worker/h1.h"
#include "worker/request.h"
#include "worker/tunnel.h"
#include "worker/worker.h"

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

/* The framing is the protocol's: a handler's Transfer-Encoding never
 * goes out, and its Content-Length only on a streamed response. */
static bool framing_field(const struct exchange *ex, const struct header_field *h)
{
    return exchange_field_is(h, "transfer-encoding", 17) ||
           (!ex->streaming && exchange_field_is(h, "content-length", 14));
}

static char *put_fields(char *p, const struct exchange *ex)
{
    for (size_t i = 0; i < ex->response_header_count; i++) {
        const struct header_field *h = &ex->response_headers[i];
        if (framing_field(ex, h))
            continue;
        p = put(p, h->name, h->name_len);
        p = PUT_LITERAL(p, ": ");
        p = put(p, h->value, h->value_len);
        p = PUT_LITERAL(p, "\r\n");
    }
    return p;
}

/* The status line and the Server field; 200 as one literal, as most
 * responses are. */
static char *put_status_line(char *p, int status)
{
    if (status == 200)
        return PUT_LITERAL(p, "HTTP/1.1 200 OK\r\n" H1_SERVER_HEADER);
    const char *reason = exchange_status_reason(status);
    p = PUT_LITERAL(p, "HTTP/1.1 ");
    *p++ = (char)('0' + status / 100);
    *p++ = (char)('0' + status / 10 % 10);
    *p++ = (char)('0' + status % 10);
    *p++ = ' ';
    p = put(p, reason, strlen(reason));
    return PUT_LITERAL(p, "\r\n" H1_SERVER_HEADER);
}

static char *h1_render_head(struct h1 *h1, const struct exchange *ex, char *p)
{
    p = put_status_line(p, ex->status);
    p = PUT_LITERAL(p, "Date: ");
    p = put(p, clock_http_date(), CLOCK_HTTP_DATE_LEN);
    p = PUT_LITERAL(p, "\r\n");
    if (h1->endpoint != NULL && h1->endpoint->tls.hsts_header != NULL)
        p = put(p, h1->endpoint->tls.hsts_header, h1->endpoint->tls.hsts_header_len);
    p = put_fields(p, ex);
    if (!ex->streaming && request_status_has_body(ex->status))
        p = put_content_length(p, ex->body_kind == BODY_NONE ? 0 : ex->body_len);
    else if (h1->chunked)
        p = PUT_LITERAL(p, "Transfer-Encoding: chunked\r\n");
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
        if (!send_body) {
            exchange_drop_body(ex);
            return 0;
        }
        ex->body_kind = BODY_NONE; /* the queue has its release now */
        return outq_add_file(h1->out, ex->body_fd, ex->body_offset, ex->body_len, ex->body,
                             ex->body_release, ex->body_release_arg);
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

/* The status line and fields into the queue. SK_OK or SK_ERROR. */
static int h1_queue_head(struct h1 *h1, struct exchange *ex)
{
    if (ex->status < 100 || ex->status > 599)
        ex->status = 500;
    if (ex->status >= 400 && !h1->headers_done)
        h1->closing = true; /* the request itself was refused: framing is in doubt */
    size_t hsts_len = h1->endpoint != NULL ? h1->endpoint->tls.hsts_header_len : 0;
    char *head = outq_reserve(h1->out, h1_head_size(ex, hsts_len));
    if (head == NULL)
        return SK_ERROR;
    char *end = h1_render_head(h1, ex, head);
    request_count_response(h1->worker, ex->status);
    return outq_commit(h1->out, (size_t)(end - head)) == 0 ? SK_OK : SK_ERROR;
}

static void h1_respond(struct exchange *ex)
{
    struct h1 *h1 = ex->protocol;
    if (h1_gone(h1))
        return;
    int rc = h1_queue_head(h1, ex);
    /* Logged before the body is queued: a file body's kind is reset then. */
    h1_log_access(h1, ex);
    if (rc != SK_OK || h1_queue_body(h1, ex) != 0)
        h1->closing = true;
    h1_response_ended(h1);
}

/* How a streamed body is framed: a length the handler declared, else
 * chunked for HTTP/1.1, else (HTTP/1.0) the close of the connection. */
static int h1_start(struct exchange *ex)
{
    struct h1 *h1 = ex->protocol;
    if (h1_gone(h1))
        return SK_ERROR;
    h1->length_left = exchange_response_length(ex);
    h1->chunked = false;
    if (request_status_has_body(ex->status) && h1->length_left < 0) {
        if (ex->version_major == 1 && ex->version_minor >= 1)
            h1->chunked = true;
        else
            h1->closing = true; /* close-delimited (RFC 9112 section 6.3) */
    }
    if (h1_queue_head(h1, ex) != SK_OK) {
        h1_abort(h1);
        return SK_ERROR;
    }
    h1_wake(h1);
    return SK_OK;
}

/* Bytes lent by exchange_send_lent, until the queue releases them: set
 * to NULL once the queue has taken them over. */
struct h1_lent {
    outq_release_fn *release;
    void *arg;
};

/* The queue takes the lent bytes over, release and all (it runs the
 * release itself if it cannot). */
static int h1_queue_lent(struct h1 *h1, const struct exchange_buf *bufs, struct h1_lent *lent)
{
    outq_release_fn *release = lent->release;
    lent->release = NULL;
    return outq_add_ref(h1->out, bufs[0].base, bufs[0].len, release, lent->arg) == 0 ? SK_OK
                                                                                    : SK_ERROR;
}

/* "SIZE\r\n" DATA "\r\n", one copy into the queue; lent bytes are
 * referenced between a copied size line and a stable "\r\n". */
static int h1_queue_chunk(struct h1 *h1, const struct exchange_buf *bufs, size_t n, size_t total,
                          struct h1_lent *lent)
{
    size_t copied = lent != NULL ? 0 : total;
    char *p = outq_reserve(h1->out, copied + 24), *start = p;
    if (p == NULL)
        return SK_ERROR;
    p = digits_hex(p, total);
    p = PUT_LITERAL(p, "\r\n");
    if (lent != NULL)
        return outq_commit(h1->out, (size_t)(p - start)) == 0 &&
                       h1_queue_lent(h1, bufs, lent) == SK_OK &&
                       outq_add_stable(h1->out, "\r\n", 2) == 0
                   ? SK_OK
                   : SK_ERROR;
    for (size_t i = 0; i < n; i++)
        if (bufs[i].len > 0)
            p = put(p, bufs[i].base, bufs[i].len);
    p = PUT_LITERAL(p, "\r\n");
    return outq_commit(h1->out, (size_t)(p - start)) == 0 ? SK_OK : SK_ERROR;
}

static int h1_queue_pieces(struct h1 *h1, const struct exchange_buf *bufs, size_t n,
                           size_t total, struct h1_lent *lent)
{
    if (total == 0)
        return SK_OK;
    if (h1->chunked)
        return h1_queue_chunk(h1, bufs, n, total, lent);
    if (lent != NULL)
        return h1_queue_lent(h1, bufs, lent);
    for (size_t i = 0; i < n; i++)
        if (bufs[i].len > 0 && outq_add_copy(h1->out, bufs[i].base, bufs[i].len) != 0)
            return SK_ERROR;
    return SK_OK;
}

/* The last chunk, with the trailer section (RFC 9112 section 7.1.2). */
static int h1_queue_last_chunk(struct h1 *h1, const struct exchange *ex)
{
    size_t size = 8;
    for (size_t i = 0; i < ex->trailer_count; i++)
        size += ex->trailers[i].name_len + ex->trailers[i].value_len + 4;
    char *p = outq_reserve(h1->out, size), *start = p;
    if (p == NULL)
        return SK_ERROR;
    p = PUT_LITERAL(p, "0\r\n");
    for (size_t i = 0; i < ex->trailer_count; i++) {
        const struct header_field *h = &ex->trailers[i];
        p = put(p, h->name, h->name_len);
        p = PUT_LITERAL(p, ": ");
        p = put(p, h->value, h->value_len);
        p = PUT_LITERAL(p, "\r\n");
    }
    p = PUT_LITERAL(p, "\r\n");
    return outq_commit(h1->out, (size_t)(p - start)) == 0 ? SK_OK : SK_ERROR;
}

static int h1_send_body(struct exchange *ex, const struct exchange_buf *bufs, size_t n,
                        enum exchange_send_state state, struct h1_lent *lent)
{
    struct h1 *h1 = ex->protocol;
    size_t total = exchange_bufs_len(bufs, n);
    if (h1_gone(h1))
        return SK_ERROR;
    bool send_body = request_status_has_body(ex->status) && ex->method != METHOD_HEAD;
    /* A HEAD, 204 or 304 may declare the length a GET would have had
     * (a proxy passes the upstream's on): no body is no broken promise. */
    if (state == EXCHANGE_ERROR ||
        (send_body && !exchange_length_kept(&h1->length_left, total, state)) ||
        (send_body && h1_queue_pieces(h1, bufs, n, total, lent) != SK_OK) ||
        (state == EXCHANGE_FINAL && send_body && h1->chunked &&
         h1_queue_last_chunk(h1, ex) != SK_OK)) {
        h1_abort(h1); /* no last chunk: the client sees the body is incomplete */
        h1_log_access(h1, ex);
        return state == EXCHANGE_ERROR ? SK_OK : SK_ERROR;
    }
    ex->body_sent += total;
    if (state == EXCHANGE_FINAL) {
        h1_log_access(h1, ex);
        h1_response_ended(h1);
    } else {
        h1->proceed_owed = true;
    }
    h1_wake(h1);
    return SK_OK;
}

static int h1_send(struct exchange *ex, const struct exchange_buf *bufs, size_t n,
                   enum exchange_send_state state)
{
    return h1_send_body(ex, bufs, n, state, NULL);
}

/* The queue references lent bytes: a large body leaves from where its
 * producer read it. Whatever the queue did not take is released here. */
static int h1_send_lent(struct exchange *ex, const struct exchange_buf *buf,
                        void (*release)(void *arg), void *arg)
{
    struct h1_lent lent = {release, arg};
    int rc = h1_send_body(ex, buf, 1, EXCHANGE_MORE, &lent);
    if (lent.release != NULL)
        lent.release(arg);
    return rc;
}

/* RFC 9110 section 7.8: the client asked (Upgrade, with "upgrade" in
 * Connection: llhttp's flag), over HTTP/1.1, with no body to read first. */
static bool h1_can_upgrade(const struct h1 *h1, const struct exchange *ex)
{
    return h1->parser.upgrade && ex->method != METHOD_CONNECT && !h1->reading_body &&
           ex->version_major == 1 && ex->version_minor >= 1 && h1->conn != NULL &&
           !h1->closing && exchange_header(ex, "upgrade", &(size_t){0}) != NULL;
}

/* "101 Switching Protocols" into the queue. SK_OK or SK_ERROR. */
static int h1_queue_switch(struct h1 *h1, struct exchange *ex, const char *protocol)
{
    size_t size = h1_head_size(ex, 0) + strlen(protocol) + 64;
    char *p = outq_reserve(h1->out, size), *start = p;
    if (p == NULL)
        return SK_ERROR;
    p = PUT_LITERAL(p, "HTTP/1.1 101 Switching Protocols\r\n" H1_SERVER_HEADER "Date: ");
    p = put(p, clock_http_date(), CLOCK_HTTP_DATE_LEN);
    p = PUT_LITERAL(p, "\r\n");
    p = put_fields(p, ex);
    p = PUT_LITERAL(p, "Connection: Upgrade\r\nUpgrade: ");
    p = put(p, protocol, strlen(protocol));
    p = PUT_LITERAL(p, "\r\n\r\n");
    request_count_response(h1->worker, 101);
    return outq_commit(h1->out, (size_t)(p - start)) == 0 ? SK_OK : SK_ERROR;
}

int h1_upgrade(struct exchange *ex, const char *protocol)
{
    struct h1 *h1 = ex->protocol;
    if (h1_gone(h1))
        return SK_ERROR;
    if (!h1_can_upgrade(h1, ex) || strpbrk(protocol, "\r\n") != NULL)
        return SK_DECLINED;
    if (!conn_upgrade_begin(h1->conn)) /* max_concurrent_upgraded_connections */
        return SK_DECLINED;
    ex->status = 101;
    struct tunnel *t = tunnel_new(h1->conn, ex);
    if (t == NULL || h1_queue_switch(h1, ex, protocol) != SK_OK) {
        if (t != NULL) {
            tunnel_discard(t);
            ex->ops = &h1_exchange_ops;
            ex->protocol = h1;
        }
        h1_abort(h1);
        return SK_ERROR;
    }
    h1_log_access(h1, ex);
    h1->tunnel = t;
    h1->upgrading = true;
    h1_wake(h1);
    return SK_OK;
}

const struct exchange_ops h1_exchange_ops = {
    .respond = h1_respond,
    .start = h1_start,
    .send = h1_send,
    .send_lent = h1_send_lent,
    .read_body = h1_read_body,
    .pause_body = h1_pause_body,
    .upgrade = h1_upgrade,
};
