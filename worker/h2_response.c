/*
 * h2_response.c - HTTP/2 responses: the HEADERS of a response, its body
 * as DATA frames written straight into the connection's output queue
 * (NGHTTP2_DATA_FLAG_NO_COPY: bytes referenced or copied, files as
 * ranges), and streamed bodies as deferred DATA resumed by each send;
 * see h2.h.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/clock.h"
#include "common/digits.h"
#include "common/error.h"
#include "common/log.h"
#include "conf/config.h"
#include "worker/conn.h"
#include "worker/h2_stream.h"
#include "worker/outq.h"
#include "worker/request.h"
#include "worker/worker.h"

static ssize_t on_read_body(nghttp2_session *session, int32_t stream_id, uint8_t *buf,
                            size_t length, uint32_t *data_flags, nghttp2_data_source *source,
                            void *user_data);

/* RFC 9113 section 8.2.2: connection-specific fields are malformed in
 * HTTP/2; a handler's are dropped rather than break the stream. */
static bool connection_specific(const struct header_field *h)
{
    return exchange_field_is(h, "connection", 10) || exchange_field_is(h, "keep-alive", 10) ||
           exchange_field_is(h, "proxy-connection", 16) ||
           exchange_field_is(h, "transfer-encoding", 17) || exchange_field_is(h, "upgrade", 7);
}

/* nghttp2 copies a response's fields when it is submitted, unless told
 * they stay: names, lower-cased in the stream's arena or constant, and
 * the values saker makes (status, length, date: the arena's, or the
 * clock's, rewritten in place once a second) stay until the HEADERS frame
 * is made, or dropped with its stream, which reads none of them; values
 * from handlers are copied, as they may not. */
#define NV_STAYS (NGHTTP2_NV_FLAG_NO_COPY_NAME | NGHTTP2_NV_FLAG_NO_COPY_VALUE)

static nghttp2_nv nv_of(const char *name, size_t name_len, const char *value, size_t value_len,
                        uint8_t flags)
{
    return (nghttp2_nv){(uint8_t *)name, (uint8_t *)value, name_len, value_len, flags};
}

/* HTTP/2 field names are lower case (RFC 9113 section 8.2.1). Eight
 * bytes at a time: bit 7 of each byte of ge_a and gt_z says whether its
 * low seven bits are at least 'A' and above 'Z', so a byte below 0x80 in
 * 'A'..'Z' gets its 0x20 bit and no other byte changes. */
static char *lower_into(char *copy, const char *name, size_t len)
{
    const uint64_t high = 0x8080808080808080u;
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t x;
        memcpy(&x, name + i, 8);
        uint64_t low7 = x & ~high;
        uint64_t ge_a = low7 + 0x3f3f3f3f3f3f3f3fu, gt_z = low7 + 0x2525252525252525u;
        x |= (ge_a & ~gt_z & ~x & high) >> 2;
        memcpy(copy + i, &x, 8);
    }
    for (; i < len; i++)
        copy[i] = (char)(name[i] >= 'A' && name[i] <= 'Z' ? name[i] + 32 : name[i]);
    copy[len] = '\0';
    return copy;
}

static char *lower_copy(struct arena *arena, const char *name, size_t len)
{
    char *copy = arena_alloc(arena, len + 1);
    return copy != NULL ? lower_into(copy, name, len) : NULL;
}

static size_t put_number(char *out, uint64_t n)
{
    char *end = digits_decimal(out, n);
    *end = '\0';
    return (size_t)(end - out);
}

/* The response's fields, in nghttp2's form; NULL when out of memory.
 * nghttp2 copies them when the response is submitted. */
static nghttp2_nv *response_fields(struct h2_stream *st, size_t *count_out)
{
    struct exchange *ex = &st->ex;
    const struct endpoint *endpoint = st->h2->endpoint;
    /* One allocation: the array, the status and length digits, then the
     * lower-cased names. */
    size_t nva_size = (ex->response_header_count + 5) * sizeof(nghttp2_nv), names = 0;
    for (size_t i = 0; i < ex->response_header_count; i++)
        names += ex->response_headers[i].name_len + 1;
    nghttp2_nv *nva = arena_alloc(&st->arena, nva_size + 4 + 21 + names);
    if (nva == NULL)
        return NULL;
    char *status = (char *)nva + nva_size, *length = status + 4, *name = length + 21;
    size_t n = 0;
    status[0] = (char)('0' + ex->status / 100); /* 200..599 */
    status[1] = (char)('0' + ex->status / 10 % 10);
    status[2] = (char)('0' + ex->status % 10);
    status[3] = '\0';
    nva[n++] = nv_of(":status", 7, status, 3, NV_STAYS);
    nva[n++] = nv_of("server", 6, "saker", 5, NV_STAYS);
    nva[n++] = nv_of("date", 4, clock_http_date(), CLOCK_HTTP_DATE_LEN, NV_STAYS);
    if (endpoint != NULL && endpoint->tls.hsts_header != NULL) {
        /* Rendered for HTTP/1.1 as "Strict-Transport-Security: VALUE\r\n". */
        const char *line = endpoint->tls.hsts_header;
        size_t name_len = (size_t)(strchr(line, ':') - line);
        nva[n++] = nv_of("strict-transport-security", 25, line + name_len + 2,
                         endpoint->tls.hsts_header_len - name_len - 4, NV_STAYS);
    }
    for (size_t i = 0; i < ex->response_header_count; i++) {
        const struct header_field *h = &ex->response_headers[i];
        if (connection_specific(h) || (!ex->streaming && exchange_field_is(h, "content-length", 14)) ||
            (st->tunnel && exchange_field_is(h, "sec-websocket-accept", 20)))
            continue; /* RFC 8441 section 5: no key, so no accept, on HTTP/2 */
        nva[n++] = nv_of(lower_into(name, h->name, h->name_len), h->name_len, h->value,
                         h->value_len, NGHTTP2_NV_FLAG_NO_COPY_NAME);
        name += h->name_len + 1;
    }
    if (!ex->streaming && request_status_has_body(ex->status)) {
        size_t len = put_number(length, ex->body_kind == BODY_NONE ? 0 : ex->body_len);
        nva[n++] = nv_of("content-length", 14, length, len, NV_STAYS);
    }
    *count_out = n;
    return nva;
}

/* Takes the body over from the exchange: a file and its release, or bytes
 * (copied into the stream's arena unless they are stable). */
static int stream_take_body(struct h2_stream *st)
{
    struct exchange *ex = &st->ex;
    bool send = request_status_has_body(ex->status) && ex->method != METHOD_HEAD &&
                ex->body_len > 0;
    if (ex->body_kind == BODY_FILE) {
        if (!send) {
            exchange_drop_body(ex);
            return SK_OK;
        }
        ex->body_kind = BODY_NONE; /* the stream has its release now */
        st->body_fd = ex->body_fd;
        st->body_offset = ex->body_offset;
        st->body_left = ex->body_len;
        st->body = ex->body;
        st->body_release = ex->body_release;
        st->body_release_arg = ex->body_release_arg;
        if (st->body_release != NULL)
            st->h2->file_streams++;
        return SK_OK;
    }
    if (ex->body_kind != BODY_BYTES || !send)
        return SK_OK;
    st->body_stable = ex->body_flags & EXCHANGE_BODY_STABLE;
    st->body = ex->body;
    if (!st->body_stable && (st->body = arena_strndup(&st->arena, ex->body, ex->body_len)) == NULL)
        return SK_ERROR;
    st->body_left = ex->body_len;
    return SK_OK;
}

/* ---- whole responses ---------------------------------------------------- */

static void stream_log_access(struct h2_stream *st)
{
    struct h2 *h2 = st->h2;
    struct request_origin origin = {h2->endpoint, h2->peer, h2->client_subject, st->started_ms};
    request_log_access(h2->worker, &st->ex, &origin);
}

/* A tunnel that fails is a CONNECT's: CONNECT_ERROR (RFC 9113 section
 * 8.5), its peer's connection reset or lost. */
static void stream_reset(struct h2_stream *st)
{
    st->response_ended = true;
    exchange_abandon(&st->ex); /* nothing more of it can be sent */
    nghttp2_submit_rst_stream(st->h2->session, NGHTTP2_FLAG_NONE, st->id,
                              st->tunnel ? NGHTTP2_CONNECT_ERROR : NGHTTP2_INTERNAL_ERROR);
    h2_wake(st->h2);
}

/* RFC 8441 section 5: a 2xx to an extended CONNECT opens the tunnel. A
 * handler that answered one 2xx without accepting it (exchange_upgrade)
 * serves no such protocol: 501, never a tunnel its client would trust and
 * nobody reads. True when refused so. */
static bool refuse_unaccepted_connect(struct h2_stream *st)
{
    struct exchange *ex = &st->ex;
    static const char body[] = "501 Not Implemented\n";
    if (ex->connect_protocol == NULL || st->tunnel || ex->status < 200 || ex->status > 299)
        return false;
    ex->status = 501;
    ex->response_header_count = 0;
    exchange_set_body(ex, body, sizeof body - 1, EXCHANGE_BODY_STABLE);
    exchange_add_header(ex, "Content-Type", "text/plain; charset=utf-8"); /* or none */
    return true;
}

/* The fields of a response's HEADERS; NULL when out of memory. */
static nghttp2_nv *head_fields(struct h2_stream *st, size_t *n)
{
    struct exchange *ex = &st->ex;
    if (ex->status < 200 || ex->status > 599)
        ex->status = 500; /* no interim responses from handlers */
    request_count_response(st->h2->worker, ex->status);
    return response_fields(st, n);
}

/* The HEADERS of a response, with its body's provider or none. */
static int submit_head(struct h2_stream *st, nghttp2_nv *nva, size_t n,
                       nghttp2_data_provider *body)
{
    if (nva == NULL)
        return SK_ERROR;
    int rc = nghttp2_submit_response(st->h2->session, st->id, nva, n, body);
    if (rc != 0)
        log_msg(LOG_DEBUG, "HTTP/2: nghttp2_submit_response() failed: %s", nghttp2_strerror(rc));
    if (body == NULL)
        st->response_ended = true;
    h2_wake(st->h2);
    return rc == 0 ? SK_OK : SK_ERROR;
}

static void h2_respond(struct exchange *ex)
{
    struct h2_stream *st = ex->protocol;
    if (h2_stream_gone(st)) {
        exchange_drop_body(ex);
        return;
    }
    refuse_unaccepted_connect(st);
    size_t n = 0;
    nghttp2_nv *nva = head_fields(st, &n);
    stream_log_access(st);
    if (stream_take_body(st) != SK_OK) { /* after the fields: they need its length */
        stream_reset(st);
        return;
    }
    nghttp2_data_provider body = {.source.ptr = st, .read_callback = on_read_body};
    if (submit_head(st, nva, n, st->body_left > 0 ? &body : NULL) != SK_OK)
        stream_reset(st);
}

/* ---- streamed bodies -------------------------------------------------- */

/* Copies length bytes of the pieces after the frame head in the queue.
 * Once they are all framed, and more are to come, the producer is owed
 * its proceed (h2_deliver_proceeds). */
static int queue_pieces(struct h2_stream *st, size_t length)
{
    while (length > 0) {
        const struct exchange_buf *b = &st->pieces[st->piece_index];
        size_t take = b->len - st->piece_offset < length ? b->len - st->piece_offset : length;
        if (outq_add_copy(st->h2->out, b->base + st->piece_offset, take) != 0)
            return -1;
        length -= take;
        st->piece_left -= take;
        st->piece_offset += take;
        if (st->piece_offset == b->len) {
            st->piece_index++;
            st->piece_offset = 0;
        }
    }
    if (st->piece_left == 0 && !st->final && !st->proceed_owed) {
        st->proceed_owed = true;
        st->h2->proceeds_owed++;
    }
    return 0;
}

/* Trailers go as a HEADERS frame that ends the stream (RFC 9113 section
 * 8.1); the body's last DATA frame then does not. */
static bool submit_trailers(struct h2_stream *st)
{
    struct exchange *ex = &st->ex;
    if (ex->trailer_count == 0)
        return false;
    nghttp2_nv *nva = arena_alloc(&st->arena, ex->trailer_count * sizeof *nva);
    if (nva == NULL)
        return false;
    size_t n = 0;
    for (size_t i = 0; i < ex->trailer_count; i++) {
        const struct header_field *h = &ex->trailers[i];
        char *name = lower_copy(&st->arena, h->name, h->name_len);
        if (name == NULL)
            return false;
        if (!connection_specific(h))
            nva[n++] = nv_of(name, h->name_len, h->value, h->value_len,
                             NGHTTP2_NV_FLAG_NO_COPY_NAME);
    }
    return nghttp2_submit_trailer(st->h2->session, st->id, nva, n) == 0;
}

/* How much of a streamed body the next DATA frame carries: what the last
 * send gave, or wait for the next (NGHTTP2_ERR_DEFERRED, resumed by it). */
static ssize_t on_read_stream(nghttp2_session *session, int32_t stream_id, uint8_t *buf,
                              size_t length, uint32_t *data_flags, nghttp2_data_source *source,
                              void *user_data)
{
    (void)session, (void)stream_id, (void)buf, (void)user_data;
    struct h2_stream *st = source->ptr;
    size_t n = st->piece_left < length ? st->piece_left : length;
    if (n == 0 && !st->final) {
        st->deferred = true;
        return NGHTTP2_ERR_DEFERRED;
    }
    *data_flags |= NGHTTP2_DATA_FLAG_NO_COPY;
    if (n == st->piece_left && st->final) {
        *data_flags |= NGHTTP2_DATA_FLAG_EOF;
        if (submit_trailers(st))
            *data_flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
        st->response_ended = true;
    }
    return (ssize_t)n;
}

static int h2_start(struct exchange *ex)
{
    struct h2_stream *st = ex->protocol;
    if (h2_stream_gone(st))
        return SK_ERROR;
    st->streaming = true;
    st->length_left = st->tunnel ? -1 : exchange_response_length(ex);
    bool body = !refuse_unaccepted_connect(st) && request_status_has_body(ex->status) &&
                ex->method != METHOD_HEAD; /* refused: the sends that follow are dropped */
    nghttp2_data_provider provider = {.source.ptr = st, .read_callback = on_read_stream};
    size_t n = 0;
    nghttp2_nv *nva = head_fields(st, &n);
    if (submit_head(st, nva, n, body ? &provider : NULL) != SK_OK) {
        stream_reset(st);
        return SK_ERROR;
    }
    return SK_OK;
}

/* Keeps the pieces (the array copied, the bytes referenced) for the
 * DATA frames nghttp2 will ask for. */
static int keep_pieces(struct h2_stream *st, const struct exchange_buf *bufs, size_t n,
                       size_t total)
{
    if (n > st->piece_capacity) {
        struct exchange_buf *grown = realloc(st->pieces, n * sizeof *grown);
        if (grown == NULL)
            return SK_ERROR;
        st->pieces = grown;
        st->piece_capacity = n;
    }
    if (n > 0)
        memcpy(st->pieces, bufs, n * sizeof *bufs);
    st->piece_count = n;
    st->piece_index = st->piece_offset = 0;
    st->piece_left = total;
    return SK_OK;
}

static int h2_send(struct exchange *ex, const struct exchange_buf *bufs, size_t n,
                   enum exchange_send_state state)
{
    struct h2_stream *st = ex->protocol;
    size_t total = exchange_bufs_len(bufs, n);
    if (h2_stream_gone(st))
        return SK_ERROR;
    bool ok = state != EXCHANGE_ERROR &&
              (st->response_ended || exchange_length_kept(&st->length_left, total, state));
    if (ok && !st->response_ended && keep_pieces(st, bufs, n, total) != SK_OK)
        ok = false;
    if (!ok) {
        stream_reset(st); /* RST_STREAM: never a truncated body presented as complete */
        if (!st->tunnel)
            stream_log_access(st);
        return state == EXCHANGE_ERROR ? SK_OK : SK_ERROR;
    }
    ex->body_sent += total;
    st->final = state == EXCHANGE_FINAL;
    if (st->final && !st->tunnel) /* a tunnel's was logged as it opened */
        stream_log_access(st);
    if (st->response_ended || (total == 0 && !st->final)) {
        /* HEAD, 204, 304: the head ended the stream; or an empty piece
         * (a filter that ate one without output): nothing to frame */
        if (!st->final && !st->proceed_owed) {
            st->proceed_owed = true;
            st->h2->proceeds_owed++;
        }
    } else if (st->deferred) {
        st->deferred = false;
        nghttp2_session_resume_data(st->h2->session, st->id);
    }
    h2_wake(st->h2);
    return SK_OK;
}

bool h2_deliver_proceeds(struct h2 *h2)
{
    bool given = false;
    for (struct h2_stream *st = h2->streams; st != NULL && h2->proceeds_owed > 0; st = st->next) {
        if (!st->proceed_owed || h2->out->pending_bytes >= OUTQ_HIGH_WATER)
            continue;
        st->proceed_owed = false;
        h2->proceeds_owed--;
        given = true;
        exchange_proceed(&st->ex);
    }
    return given;
}

/* ---- DATA frames ------------------------------------------------------- */

/* How much of the body the next DATA frame carries; the bytes themselves
 * are written by on_send_data (NO_COPY). */
static ssize_t on_read_body(nghttp2_session *session, int32_t stream_id, uint8_t *buf,
                            size_t length, uint32_t *data_flags, nghttp2_data_source *source,
                            void *user_data)
{
    (void)session;
    (void)stream_id;
    (void)buf;
    (void)user_data;
    struct h2_stream *st = source->ptr;
    size_t n = st->body_left < length ? st->body_left : length;
    *data_flags |= NGHTTP2_DATA_FLAG_NO_COPY;
    if (n == st->body_left)
        *data_flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)n;
}

int h2_on_send_data(nghttp2_session *session, nghttp2_frame *frame, const uint8_t *framehd,
                    size_t length, nghttp2_data_source *source, void *user_data)
{
    (void)session;
    (void)frame; /* no padding is ever asked for: the frame is head + data */
    struct h2 *h2 = user_data;
    struct h2_stream *st = source->ptr;
    int rc = outq_add_copy(h2->out, framehd, 9);
    if (rc == 0 && st->streaming) {
        rc = queue_pieces(st, length);
    } else if (rc == 0 && st->body_fd >= 0) {
        bool last = length == st->body_left;
        void (*release)(void *) = last ? st->body_release : NULL;
        if (last && st->body_release != NULL) {
            st->body_release = NULL; /* the last frame's segment gives the file back */
            h2_file_framed(h2);
        }
        rc = outq_add_file(h2->out, st->body_fd, st->body_offset, length, st->body, release,
                           st->body_release_arg);
        st->body_offset += (off_t)length;
        if (st->body != NULL)
            st->body += length;
    } else if (rc == 0) {
        rc = st->body_stable ? outq_add_stable(h2->out, st->body, length)
                             : outq_add_copy(h2->out, st->body, length);
        st->body += length;
    }
    if (rc != 0)
        return NGHTTP2_ERR_CALLBACK_FAILURE; /* half a frame queued: the session is lost */
    if (!st->streaming)
        st->body_left -= length;
    st->data_sent += length;
    h2->active_ms = clock_monotonic_ms();
    if (st->tunnel)
        st->tunnel_active_ms = h2->active_ms;
    /* nghttp2 goes on to the next DATA frame within the same mem_send
     * call, which returns only once it has bytes of its own to hand out:
     * a file's frames would all be queued at once without this pause. */
    return h2->out->pending_bytes >= OUTQ_HIGH_WATER ? NGHTTP2_ERR_PAUSE : 0;
}

/* ---- tunnels (RFC 8441) -------------------------------------------------- */

/* The extended CONNECT's :protocol accepted: ":status 200" opens the
 * tunnel, and from then on the stream is one, through the calls of any
 * streamed exchange: the client's DATA go to the body reader (its window
 * given back as the reader takes them, so a paused reader stops the
 * client), END_STREAM is the reader's end; sends are DATA frames as the
 * client's window allows, FINAL ends our side with END_STREAM, ERROR
 * resets it. No body limit or body rate applies to a tunnel's bytes. */
static int h2_upgrade(struct exchange *ex, const char *protocol)
{
    struct h2_stream *st = ex->protocol;
    struct h2 *h2 = st->h2;
    if (h2_stream_gone(st))
        return SK_ERROR;
    if (ex->connect_protocol == NULL || strcasecmp(ex->connect_protocol, protocol) != 0)
        return SK_DECLINED;
    if (h2->conn != NULL && !conn_stream_upgrade_take(h2->conn, &st->permits))
        return SK_DECLINED; /* max_concurrent_upgraded_connections */
    st->tunnel = true;
    st->body_limit = UINT64_MAX;
    st->body_started_ms = 0;
    st->tunnel_active_ms = clock_monotonic_ms();
    ex->status = 200;
    ex->streaming = true; /* its fields: no content-length of a whole body */
    if (h2_start(ex) != SK_OK)
        return SK_ERROR; /* reset: the stream's end gives the permit back */
    stream_log_access(st);
    return SK_OK;
}

const struct exchange_ops h2_exchange_ops = {
    .respond = h2_respond,
    .start = h2_start,
    .send = h2_send,
    .read_body = h2_read_body,
    .pause_body = h2_pause_body,
    .upgrade = h2_upgrade,
};
