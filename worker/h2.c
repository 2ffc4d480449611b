/*
 * h2.c - HTTP/2 server protocol over nghttp2; see h2.h.
 *
 * nghttp2 owns the framing, HPACK, flow control and the protocol's rules;
 * this file turns its callbacks into exchanges (one per request stream,
 * each with its own arena) and exchanges into responses. Bytes go in with
 * nghttp2_session_mem_recv and come out with nghttp2_session_mem_send into
 * the connection's output queue; DATA frames are written by
 * on_send_data, header and body straight into the queue.
 */
#include "worker/h2.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <unistd.h>

#include <nghttp2/nghttp2.h>

#include "common/arena.h"
#include "common/clock.h"
#include "common/digits.h"
#include "common/error.h"
#include "common/log.h"
#include "conf/config.h"
#include "shm/shm.h"
#include "worker/exchange.h"
#include "worker/file_cache.h"
#include "worker/outq.h"
#include "worker/request.h"
#include "worker/route_stats.h"
#include "worker/worker.h"

/* Frames are produced until this much waits in the output queue: enough
 * for several 16 KiB records or one large writev, small enough that a
 * slow reader pins little memory. */
#define H2_HIGH_WATER (256 * 1024)
/* Empty DATA frames without END_STREAM carry nothing and cost a frame's
 * work each (CVE-2019-9518): this many on one connection is an attack. */
#define H2_EMPTY_FRAMES_MAX 1000
/* A body still arriving this far past its limit, after the 413 (or
 * whatever answered it early), is cut off with RST_STREAM: the client is
 * not reading the answer that told it to stop. */
#define H2_BODY_OVERRUN_MAX (1u << 20)
#define H2_SPARE_STREAMS_MAX 256
/* From the shutdown notice to the last GOAWAY: long enough for requests
 * the client sent before it saw the notice to arrive (a round trip), so
 * they are served rather than refused. */
#define H2_NOTICE_GRACE_MS 1000

struct h2_stream {
    struct h2_stream *prev, *next; /* the session's streams */
    struct h2 *h2;
    int32_t id;
    struct arena arena;
    struct exchange ex;
    const struct router_entry *entry;
    uint64_t body_limit;
    uint64_t started_ms;      /* HEADERS began */
    uint64_t started_us;      /* ... in the read stamped with this */
    uint64_t body_started_ms; /* the request body is arriving since; 0: not */
    uint64_t header_bytes;    /* names + values of regular fields */
    const char *authority;    /* :authority, or NULL */
    size_t authority_len;
    unsigned host_count;      /* Host header fields */
    int reject_status;        /* decided while the head arrived; 0: none */
    enum shm_counter reject_counter;
    /* The response body, handed to nghttp2 frame by frame. */
    const char *body;         /* bytes */
    int body_fd;              /* a file (owned until queued to the end); -1: none */
    off_t body_offset;
    size_t body_left;
    bool body_stable;         /* body outlives the stream: reference it */
    bool dispatch_pending;    /* answer at END_STREAM */
    bool request_complete;    /* END_STREAM received */
};

struct h2 {
    nghttp2_session *session;
    struct worker *worker;
    struct outq *out;
    const struct endpoint *endpoint;
    const struct config_limits *limits;
    const struct sockaddr *peer;
    const char *client_subject;
    struct h2_stream *streams; /* every stream with state of ours */
    uint64_t started_ms;       /* the preface is due request_headers_timeout from here */
    uint64_t head_since_ms;    /* a header block is arriving since; 0: none */
    uint64_t last_frame_ms;    /* for the keep-alive ping */
    uint64_t ping_sent_ms;     /* a keep-alive ping waits for any frame; 0: none */
    uint64_t empty_frames;
    uint64_t notice_ms;        /* when the shutdown notice was queued */
    bool preface_done;         /* the client's SETTINGS arrived */
    bool notice_sent;
    bool goaway_sent;
    bool failed;               /* nghttp2 failed: nothing more can be sent */
};

static void h2_respond(struct exchange *ex);
static const struct exchange_ops h2_exchange_ops = {.respond = h2_respond};

/* A worker is one thread: a plain free list, like outq's. */
static struct h2_stream *spare_streams;
static size_t spare_stream_count;

static void count(const struct h2 *h2, enum shm_counter counter)
{
    shm_slot_count(h2->worker->slot, counter, 1);
}

/* ---- streams ------------------------------------------------------------- */

static struct h2_stream *stream_new(struct h2 *h2, int32_t id)
{
    struct h2_stream *st = spare_streams;
    if (st != NULL) {
        spare_streams = st->next;
        spare_stream_count--;
    } else if ((st = malloc(sizeof *st)) == NULL) {
        return NULL;
    }
    memset(st, 0, sizeof *st);
    st->h2 = h2;
    st->id = id;
    st->body_fd = -1;
    st->started_ms = clock_monotonic_ms();
    st->started_us = clock_monotonic_us();
    arena_init(&st->arena, &h2->worker->blocks);
    struct exchange *ex = &st->ex;
    ex->arena = &st->arena;
    ex->worker = h2->worker;
    ex->ops = &h2_exchange_ops;
    ex->protocol = st;
    ex->client_subject = h2->client_subject;
    ex->peer = h2->peer;
    ex->body_fd = -1;
    ex->version_major = 2;
    ex->version_minor = 0;
    ex->host = "";
    ex->method_name = "";
    st->next = h2->streams;
    if (h2->streams != NULL)
        h2->streams->prev = st;
    h2->streams = st;
    return st;
}

static void stream_free(struct h2 *h2, struct h2_stream *st)
{
    /* Its last frame is queued (or the connection is going): counted
     * once that has left. */
    if (st->ex.responded)
        route_stats_queued(h2->worker, h2->out, st->entry, st->ex.status, st->started_us);
    if (st->ex.body_kind == BODY_FILE && !st->ex.responded)
        file_cache_close(st->ex.body_fd); /* a handler that set a file and never answered */
    if (st->body_fd >= 0)
        outq_release_fd(h2->out, st->body_fd); /* frames of it may still be queued */
    arena_reset(&st->arena);
    if (st->prev != NULL)
        st->prev->next = st->next;
    else
        h2->streams = st->next;
    if (st->next != NULL)
        st->next->prev = st->prev;
    if (spare_stream_count >= H2_SPARE_STREAMS_MAX) {
        free(st);
        return;
    }
    st->next = spare_streams;
    spare_streams = st;
    spare_stream_count++;
}

static struct h2_stream *stream_of(nghttp2_session *session, int32_t id)
{
    return nghttp2_session_get_stream_user_data(session, id);
}

/* ---- the request head ------------------------------------------------------ */

/* Refuses the stream's request with status (counted under counter). */
static void stream_refuse(struct h2_stream *st, int status, enum shm_counter counter)
{
    count(st->h2, counter);
    st->dispatch_pending = false;
    if (!st->ex.responded)
        exchange_respond_error(&st->ex, status);
}

/* The first refusal found while the head arrives is the answer. */
static void stream_reject(struct h2_stream *st, int status, enum shm_counter counter)
{
    if (st->reject_status == 0) {
        st->reject_status = status;
        st->reject_counter = counter;
    }
}

static enum exchange_method method_of(const char *name, size_t len)
{
    static const struct { const char *name; enum exchange_method method; } methods[] = {
        {"GET", METHOD_GET},         {"HEAD", METHOD_HEAD},       {"POST", METHOD_POST},
        {"PUT", METHOD_PUT},         {"DELETE", METHOD_DELETE},   {"OPTIONS", METHOD_OPTIONS},
        {"PATCH", METHOD_PATCH},     {"CONNECT", METHOD_CONNECT}, {"TRACE", METHOD_TRACE},
    };
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++)
        if (strlen(methods[i].name) == len && memcmp(methods[i].name, name, len) == 0)
            return methods[i].method;
    return METHOD_OTHER;
}

static int stream_add_field(struct h2_stream *st, const char *name, size_t name_len,
                            const char *value, size_t value_len)
{
    char *n = arena_strndup(&st->arena, name, name_len);
    char *v = arena_strndup(&st->arena, value, value_len);
    if (n == NULL || v == NULL)
        return SK_ERROR;
    struct header_field field = {n, name_len, v, value_len};
    return exchange_push_request_header(&st->ex, &field);
}

/* :method, :path and :authority; nghttp2 has checked that the set is
 * complete and well-formed (RFC 9113 section 8.3.1). */
static void stream_pseudo_field(struct h2_stream *st, const char *name, size_t name_len,
                                const char *value, size_t value_len)
{
    struct exchange *ex = &st->ex;
    char *copy = arena_strndup(&st->arena, value, value_len);
    if (copy == NULL) {
        stream_reject(st, 500, SHM_REJECT_MALFORMED);
        return;
    }
    if (name_len == 7 && memcmp(name, ":method", 7) == 0) {
        ex->method_name = copy;
        ex->method = method_of(value, value_len);
    } else if (name_len == 5 && memcmp(name, ":path", 5) == 0) {
        if (value_len > st->h2->limits->max_request_line_size)
            stream_reject(st, 414, SHM_REJECT_REQUEST_LINE_TOO_LONG);
        ex->target = copy;
        ex->target_len = value_len;
    } else if (name_len == 10 && memcmp(name, ":authority", 10) == 0) {
        st->authority = copy;
        st->authority_len = value_len;
    }
}

static int on_header(nghttp2_session *session, const nghttp2_frame *frame,
                     const uint8_t *name_bytes, size_t name_len, const uint8_t *value_bytes,
                     size_t value_len, uint8_t flags, void *user_data)
{
    struct h2 *h2 = user_data;
    (void)flags;
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0; /* trailers: nghttp2 validates them; nothing reads them */
    struct h2_stream *st = stream_of(session, frame->hd.stream_id);
    if (st == NULL || st->reject_status != 0)
        return 0;
    const char *name = (const char *)name_bytes, *value = (const char *)value_bytes;
    const struct config_limits *limits = h2->limits;
    if (name_len + value_len > limits->http2.max_request_header_field_size) {
        stream_reject(st, 431, SHM_REJECT_HEADERS_TOO_LARGE);
        return 0;
    }
    if (name_len > 0 && name[0] == ':') {
        stream_pseudo_field(st, name, name_len, value, value_len);
        return 0;
    }
    st->header_bytes += name_len + value_len;
    if (st->header_bytes > limits->max_request_headers_total_size)
        stream_reject(st, 431, SHM_REJECT_HEADERS_TOO_LARGE);
    else if (st->ex.header_count >= limits->max_request_header_count)
        stream_reject(st, 431, SHM_REJECT_TOO_MANY_HEADERS);
    else if (stream_add_field(st, name, name_len, value, value_len) != SK_OK)
        stream_reject(st, 500, SHM_REJECT_MALFORMED);
    else if (name_len == 4 && memcmp(name, "host", 4) == 0)
        st->host_count++;
    return 0;
}

/* :authority, else Host (RFC 9113 section 8.3.1); when both are there
 * they must name the same host, so that routing and host filtering cannot
 * disagree with what a proxy behind us would read. */
static int stream_set_host(struct h2_stream *st)
{
    struct exchange *ex = &st->ex;
    size_t host_len = 0;
    const char *host = st->host_count > 0 ? exchange_header(ex, "host", &host_len) : NULL;
    if (st->host_count > 1)
        return SK_ERROR;
    if (st->authority != NULL && host != NULL &&
        (host_len != st->authority_len || strncasecmp(host, st->authority, host_len) != 0))
        return SK_ERROR;
    if (st->authority != NULL)
        return request_set_host(&st->arena, ex, st->authority, st->authority_len);
    if (host != NULL)
        return request_set_host(&st->arena, ex, host, host_len);
    return SK_OK; /* neither: "" (allowed_hosts lets it through, as for HTTP/1.0) */
}

static void stream_dispatch(struct h2_stream *st)
{
    st->dispatch_pending = false;
    request_dispatch(st->entry, &st->ex);
    if (!st->ex.responded)
        exchange_respond_error(&st->ex, 500); /* a handler that never answered */
}

static bool expects_continue(const struct exchange *ex)
{
    size_t len;
    const char *expect = exchange_header(ex, "expect", &len);
    return expect != NULL && len == 12 && strncasecmp(expect, "100-continue", 12) == 0;
}

/* The whole head is in: the same checks, in the same order, as h1's
 * on_headers_complete. */
static void stream_head_complete(struct h2 *h2, struct h2_stream *st, bool end_stream)
{
    struct exchange *ex = &st->ex;
    st->request_complete = end_stream;
    count(h2, SHM_REQUESTS);
    count(h2, SHM_H2_STREAMS);
    if (st->reject_status != 0) {
        stream_refuse(st, st->reject_status, st->reject_counter);
        return;
    }
    if (stream_set_host(st) != SK_OK) {
        stream_refuse(st, 400, SHM_REJECT_MALFORMED);
        return;
    }
    if (!request_host_allowed(h2->worker, ex)) {
        stream_refuse(st, 400, SHM_REJECT_HOST_NOT_ALLOWED);
        return;
    }
    /* CONNECT has no :path, and what it asks for is no file of ours. */
    int status = ex->target == NULL || (ex->target[0] != '/' && strcmp(ex->target, "*") != 0)
                     ? 400
                     : request_set_target(&st->arena, ex, ex->target, ex->target_len);
    if (status != 0) {
        if (ex->target == NULL)
            ex->target = "";
        stream_refuse(st, status, SHM_REJECT_MALFORMED);
        return;
    }
    st->entry = request_route(h2->worker, h2->endpoint, h2->limits, ex, &st->body_limit);
    size_t len;
    const char *length = exchange_header(ex, "content-length", &len);
    if (length != NULL && strtoull(length, NULL, 10) > st->body_limit) {
        stream_refuse(st, 413, SHM_REJECT_BODY_TOO_LARGE);
        return;
    }
    if (end_stream || expects_continue(ex)) {
        /* No handler reads bodies yet, so one that was announced with
         * 100-continue gets its final answer at once (as in h1). */
        if (!end_stream)
            st->body_started_ms = clock_monotonic_ms();
        stream_dispatch(st);
        return;
    }
    st->dispatch_pending = true;
    st->body_started_ms = clock_monotonic_ms();
}

static void stream_request_complete(struct h2_stream *st)
{
    st->request_complete = true;
    st->body_started_ms = 0;
    if (st->dispatch_pending)
        stream_dispatch(st);
}

/* ---- nghttp2 callbacks: receiving ------------------------------------------- */

static int on_begin_headers(nghttp2_session *session, const nghttp2_frame *frame,
                            void *user_data)
{
    struct h2 *h2 = user_data;
    if (frame->hd.type != NGHTTP2_HEADERS)
        return 0;
    h2->head_since_ms = clock_monotonic_ms();
    if (frame->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    struct h2_stream *st = stream_new(h2, frame->hd.stream_id);
    if (st == NULL) {
        log_msg(LOG_ERROR, "malloc(h2 stream) failed");
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* RST_STREAM this one */
    }
    nghttp2_session_set_stream_user_data(session, frame->hd.stream_id, st);
    return 0;
}

static void on_data_frame(struct h2 *h2, const nghttp2_frame *frame, struct h2_stream *st)
{
    bool end = frame->hd.flags & NGHTTP2_FLAG_END_STREAM;
    if (frame->hd.length == 0 && !end && ++h2->empty_frames > H2_EMPTY_FRAMES_MAX) {
        log_msg(LOG_DEBUG, "HTTP/2: %d empty DATA frames: ending the connection",
                H2_EMPTY_FRAMES_MAX);
        nghttp2_session_terminate_session(h2->session, NGHTTP2_ENHANCE_YOUR_CALM);
        return;
    }
    if (end && st != NULL)
        stream_request_complete(st);
}

static int on_frame_recv(nghttp2_session *session, const nghttp2_frame *frame, void *user_data)
{
    struct h2 *h2 = user_data;
    struct h2_stream *st = frame->hd.stream_id != 0 ? stream_of(session, frame->hd.stream_id)
                                                     : NULL;
    h2->last_frame_ms = clock_monotonic_ms();
    h2->ping_sent_ms = 0; /* any frame shows the client is there */
    switch (frame->hd.type) {
    case NGHTTP2_SETTINGS:
        if (!(frame->hd.flags & NGHTTP2_FLAG_ACK))
            h2->preface_done = true;
        break;
    case NGHTTP2_HEADERS:
        h2->head_since_ms = 0;
        if (st == NULL)
            break;
        if (frame->headers.cat == NGHTTP2_HCAT_REQUEST)
            stream_head_complete(h2, st, frame->hd.flags & NGHTTP2_FLAG_END_STREAM);
        else if (frame->hd.flags & NGHTTP2_FLAG_END_STREAM)
            stream_request_complete(st); /* trailers */
        break;
    case NGHTTP2_DATA:
        on_data_frame(h2, frame, st);
        break;
    case NGHTTP2_RST_STREAM:
        count(h2, SHM_H2_RESETS_RECEIVED);
        break;
    default:
        break;
    }
    return 0;
}

static int on_data_chunk_recv(nghttp2_session *session, uint8_t flags, int32_t stream_id,
                              const uint8_t *data, size_t len, void *user_data)
{
    (void)flags;
    (void)data; /* no handler reads bodies yet: only their size counts */
    (void)user_data;
    struct h2_stream *st = stream_of(session, stream_id);
    if (st == NULL)
        return 0;
    uint64_t received = st->ex.body_bytes_received += len;
    if (received <= st->body_limit)
        return 0;
    if (!st->ex.responded) {
        stream_refuse(st, 413, SHM_REJECT_BODY_TOO_LARGE);
    } else if (received - st->body_limit > H2_BODY_OVERRUN_MAX) {
        st->body_started_ms = 0;
        nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, stream_id, NGHTTP2_CANCEL);
    }
    return 0;
}

static int on_stream_close(nghttp2_session *session, int32_t stream_id, uint32_t error_code,
                           void *user_data)
{
    (void)error_code;
    struct h2_stream *st = stream_of(session, stream_id);
    if (st != NULL) {
        nghttp2_session_set_stream_user_data(session, stream_id, NULL);
        stream_free(user_data, st);
    }
    return 0;
}

/* ---- nghttp2 callbacks: sending ---------------------------------------------- */

static int on_frame_send(nghttp2_session *session, const nghttp2_frame *frame, void *user_data)
{
    struct h2 *h2 = user_data;
    switch (frame->hd.type) {
    case NGHTTP2_RST_STREAM:
        count(h2, SHM_H2_RESETS_SENT);
        break;
    case NGHTTP2_GOAWAY:
        if (frame->goaway.error_code != NGHTTP2_NO_ERROR)
            count(h2, SHM_H2_CONNECTION_ERRORS);
        break;
    case NGHTTP2_HEADERS:
    case NGHTTP2_DATA:
        /* The response is complete and the request is not: tell the
         * client to stop sending it (RFC 9113 section 8.1). */
        if ((frame->hd.flags & NGHTTP2_FLAG_END_STREAM) &&
            nghttp2_session_get_stream_remote_close(session, frame->hd.stream_id) == 0)
            nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, frame->hd.stream_id,
                                      NGHTTP2_NO_ERROR);
        break;
    default:
        break;
    }
    return 0;
}

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

static int on_send_data(nghttp2_session *session, nghttp2_frame *frame, const uint8_t *framehd,
                        size_t length, nghttp2_data_source *source, void *user_data)
{
    (void)session;
    (void)frame; /* no padding is ever asked for: the frame is head + data */
    struct h2 *h2 = user_data;
    struct h2_stream *st = source->ptr;
    int rc = outq_add_copy(h2->out, framehd, 9);
    if (rc == 0 && st->body_fd >= 0) {
        rc = outq_add_file_borrowed(h2->out, st->body_fd, st->body_offset, length);
        st->body_offset += (off_t)length;
    } else if (rc == 0) {
        rc = st->body_stable ? outq_add_stable(h2->out, st->body, length)
                             : outq_add_copy(h2->out, st->body, length);
        st->body += length;
    }
    if (rc != 0)
        return NGHTTP2_ERR_CALLBACK_FAILURE; /* half a frame queued: the session is lost */
    st->body_left -= length;
    if (st->body_left == 0 && st->body_fd >= 0) {
        outq_release_fd(h2->out, st->body_fd);
        st->body_fd = -1;
    }
    /* nghttp2 goes on to the next DATA frame within the same mem_send
     * call, which returns only once it has bytes of its own to hand out:
     * a file's frames would all be queued at once without this pause. */
    return h2->out->pending_bytes >= H2_HIGH_WATER ? NGHTTP2_ERR_PAUSE : 0;
}

static int on_error(nghttp2_session *session, int lib_error_code, const char *msg, size_t len,
                    void *user_data)
{
    (void)session;
    (void)lib_error_code;
    (void)user_data;
    log_msg(LOG_DEBUG, "HTTP/2: %.*s", (int)len, msg);
    return 0;
}

/* ---- responses --------------------------------------------------------------- */

/* RFC 9113 section 8.2.2: connection-specific fields are malformed in
 * HTTP/2; a handler's are dropped rather than break the stream. */
static bool connection_specific(const char *name, size_t len)
{
    static const char *const fields[] = {"connection", "keep-alive", "proxy-connection",
                                         "transfer-encoding", "upgrade"};
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
        if (strlen(fields[i]) == len && strncasecmp(fields[i], name, len) == 0)
            return true;
    return false;
}

static nghttp2_nv nv_of(const char *name, size_t name_len, const char *value, size_t value_len)
{
    return (nghttp2_nv){(uint8_t *)name, (uint8_t *)value, name_len, value_len,
                        NGHTTP2_NV_FLAG_NONE};
}

/* HTTP/2 field names are lower case (RFC 9113 section 8.2.1). */
static char *lower_copy(struct arena *arena, const char *name, size_t len)
{
    char *copy = arena_alloc(arena, len + 1);
    if (copy == NULL)
        return NULL;
    for (size_t i = 0; i < len; i++)
        copy[i] = (char)(name[i] >= 'A' && name[i] <= 'Z' ? name[i] + 32 : name[i]);
    copy[len] = '\0';
    return copy;
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
    nghttp2_nv *nva = arena_alloc(&st->arena, (ex->response_header_count + 5) * sizeof *nva);
    char *status = arena_alloc(&st->arena, 4);
    char *length = arena_alloc(&st->arena, 21);
    if (nva == NULL || status == NULL || length == NULL)
        return NULL;
    size_t n = 0;
    put_number(status, (uint64_t)ex->status);
    nva[n++] = nv_of(":status", 7, status, 3);
    nva[n++] = nv_of("server", 6, "saker", 5);
    nva[n++] = nv_of("date", 4, clock_http_date(), CLOCK_HTTP_DATE_LEN);
    if (endpoint != NULL && endpoint->tls.hsts_header != NULL) {
        /* Rendered for HTTP/1.1 as "Strict-Transport-Security: VALUE\r\n". */
        const char *line = endpoint->tls.hsts_header;
        size_t name_len = (size_t)(strchr(line, ':') - line);
        nva[n++] = nv_of("strict-transport-security", 25, line + name_len + 2,
                         endpoint->tls.hsts_header_len - name_len - 4);
    }
    for (size_t i = 0; i < ex->response_header_count; i++) {
        const struct header_field *h = &ex->response_headers[i];
        if (connection_specific(h->name, h->name_len))
            continue;
        char *name = lower_copy(&st->arena, h->name, h->name_len);
        if (name == NULL)
            return NULL;
        nva[n++] = nv_of(name, h->name_len, h->value, h->value_len);
    }
    if (request_status_has_body(ex->status)) {
        size_t len = put_number(length, ex->body_kind == BODY_NONE ? 0 : ex->body_len);
        nva[n++] = nv_of("content-length", 14, length, len);
    }
    *count_out = n;
    return nva;
}

/* Takes the body over from the exchange: a file's descriptor, or bytes
 * (copied into the stream's arena unless they are stable). */
static int stream_take_body(struct h2_stream *st)
{
    struct exchange *ex = &st->ex;
    bool send = request_status_has_body(ex->status) && ex->method != METHOD_HEAD &&
                ex->body_len > 0;
    if (ex->body_kind == BODY_FILE) {
        ex->body_kind = BODY_NONE; /* the stream owns the descriptor now */
        if (!send) {
            file_cache_close(ex->body_fd);
            return SK_OK;
        }
        st->body_fd = ex->body_fd;
        st->body_offset = ex->body_offset;
        st->body_left = ex->body_len;
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

static void h2_respond(struct exchange *ex)
{
    struct h2_stream *st = ex->protocol;
    struct h2 *h2 = st->h2;
    if (ex->status < 200 || ex->status > 599)
        ex->status = 500; /* no interim responses from handlers */
    size_t n = 0;
    nghttp2_nv *nva = response_fields(st, &n);
    struct request_origin origin = {h2->endpoint, h2->peer, h2->client_subject, st->started_ms};
    request_log_access(h2->worker, ex, &origin);
    request_count_response(h2->worker, ex->status);
    if (nva == NULL || stream_take_body(st) != SK_OK) {
        nghttp2_submit_rst_stream(h2->session, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_INTERNAL_ERROR);
        return;
    }
    nghttp2_data_provider body = {.source.ptr = st, .read_callback = on_read_body};
    int rc = nghttp2_submit_response(h2->session, st->id, nva, n,
                                     st->body_left > 0 ? &body : NULL);
    if (rc != 0)
        log_msg(LOG_DEBUG, "HTTP/2: nghttp2_submit_response() failed: %s", nghttp2_strerror(rc));
}

/* ---- nghttp2's memory ------------------------------------------------------------ */

/*
 * nghttp2 gives every session a 16 KiB frame buffer for its whole life,
 * of which small frames touch the first page. From malloc, a buffer
 * reused after another connection is all resident, so an idle session
 * would hold 16 KiB; mapped on its own, it holds the pages frames have
 * touched, and munmap gives it back whole. Smaller allocations stay with
 * malloc. Every block starts with a header saying which it is.
 */
#define H2_MAP_MIN (8 * 1024)

struct mem_header {
    size_t size;          /* what the caller asked for */
    size_t mapped;        /* the mapping's length; 0: from malloc */
};
#define MEM_HEADER sizeof(struct mem_header) /* 16: keeps malloc's alignment */

static struct mem_header *header_of(void *p)
{
    return (struct mem_header *)((char *)p - MEM_HEADER);
}

static void *mem_alloc(size_t size, bool zeroed)
{
    if (size > SIZE_MAX - MEM_HEADER - 4096)
        return NULL;
    struct mem_header *h;
    size_t mapped = 0;
    if (size >= H2_MAP_MIN) {
        mapped = (size + MEM_HEADER + 4095) & ~(size_t)4095;
        h = mmap(NULL, mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (h == MAP_FAILED)
            return NULL;
    } else if ((h = zeroed ? calloc(1, size + MEM_HEADER) : malloc(size + MEM_HEADER)) == NULL) {
        return NULL;
    }
    h->size = size;
    h->mapped = mapped;
    return (char *)h + MEM_HEADER;
}

static void *h2_malloc(size_t size, void *user) { (void)user; return mem_alloc(size, false); }

static void h2_mem_free(void *p, void *user)
{
    (void)user;
    if (p == NULL)
        return;
    struct mem_header *h = header_of(p);
    if (h->mapped != 0)
        munmap(h, h->mapped);
    else
        free(h);
}

static void *h2_calloc(size_t count, size_t size, void *user)
{
    (void)user;
    if (size != 0 && count > SIZE_MAX / size)
        return NULL;
    return mem_alloc(count * size, true); /* a fresh mapping is zeroed */
}

static void *h2_realloc(void *p, size_t size, void *user)
{
    if (p == NULL)
        return h2_malloc(size, user);
    struct mem_header *h = header_of(p);
    if (h->mapped == 0 && size < H2_MAP_MIN) {
        struct mem_header *grown = realloc(h, size + MEM_HEADER);
        if (grown == NULL)
            return NULL;
        grown->size = size;
        return (char *)grown + MEM_HEADER;
    }
    void *moved = h2_malloc(size, user);
    if (moved == NULL)
        return NULL;
    memcpy(moved, p, h->size < size ? h->size : size);
    h2_mem_free(p, user);
    return moved;
}

static nghttp2_mem h2_mem = {
    .malloc = h2_malloc, .free = h2_mem_free, .calloc = h2_calloc, .realloc = h2_realloc};

/* ---- the session --------------------------------------------------------------- */

static nghttp2_session_callbacks *callbacks(void)
{
    static nghttp2_session_callbacks *cb;
    if (cb != NULL || nghttp2_session_callbacks_new(&cb) != 0)
        return cb;
    nghttp2_session_callbacks_set_on_begin_headers_callback(cb, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data_chunk_recv);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_stream_close);
    nghttp2_session_callbacks_set_on_frame_send_callback(cb, on_frame_send);
    nghttp2_session_callbacks_set_send_data_callback(cb, on_send_data);
    nghttp2_session_callbacks_set_error_callback2(cb, on_error);
    return cb;
}

/* Closed streams are not kept: nghttp2 keeps them only for RFC 7540's
 * priority tree, which RFC 9113 deprecated, and an idle connection would
 * hold one per request it served. */
static nghttp2_option *session_options(void)
{
    static nghttp2_option *options;
    if (options == NULL && nghttp2_option_new(&options) == 0)
        nghttp2_option_set_no_closed_streams(options, 1);
    return options;
}

/* What saker announces: Kestrel's Http2Limits, and a header list bound
 * that admits max_request_headers_total_size of names and values (the
 * setting counts 32 more bytes per field, RFC 9113 section 6.5.2). */
static int submit_settings(struct h2 *h2)
{
    const struct config_limits *l = h2->limits;
    uint64_t list = l->max_request_headers_total_size + 32 * l->max_request_header_count;
    nghttp2_settings_entry settings[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, (uint32_t)l->http2.max_streams_per_connection},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, (uint32_t)l->http2.initial_stream_window_size},
        {NGHTTP2_SETTINGS_MAX_FRAME_SIZE, (uint32_t)l->http2.max_frame_size},
        {NGHTTP2_SETTINGS_HEADER_TABLE_SIZE, (uint32_t)l->http2.header_table_size},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, list > UINT32_MAX ? UINT32_MAX : (uint32_t)list},
    };
    int rc = nghttp2_submit_settings(h2->session, NGHTTP2_FLAG_NONE, settings,
                                     sizeof settings / sizeof settings[0]);
    if (rc == 0)
        rc = nghttp2_session_set_local_window_size(
            h2->session, NGHTTP2_FLAG_NONE, 0, (int32_t)l->http2.initial_connection_window_size);
    return rc;
}

struct h2 *h2_new(const struct h2_params *params)
{
    nghttp2_session_callbacks *cb = callbacks();
    nghttp2_option *options = session_options();
    struct h2 *h2 = calloc(1, sizeof *h2);
    if (cb == NULL || options == NULL || h2 == NULL) {
        free(h2);
        return NULL;
    }
    h2->worker = params->worker;
    h2->out = params->out;
    h2->endpoint = params->endpoint;
    h2->limits = params->limits;
    h2->peer = params->peer;
    h2->client_subject = params->client_subject;
    h2->started_ms = h2->last_frame_ms = clock_monotonic_ms();
    if (nghttp2_session_server_new3(&h2->session, cb, h2, options, &h2_mem) != 0) {
        free(h2);
        return NULL;
    }
    if (submit_settings(h2) != 0) {
        h2_free(h2);
        return NULL;
    }
    if (params->inadequate_security)
        nghttp2_session_terminate_session(h2->session, NGHTTP2_INADEQUATE_SECURITY);
    count(h2, SHM_H2_CONNECTIONS);
    return h2;
}

void h2_free(struct h2 *h2)
{
    if (h2 == NULL)
        return;
    nghttp2_session_del(h2->session); /* calls no callback: our streams go below */
    while (h2->streams != NULL)
        stream_free(h2, h2->streams);
    free(h2);
}

enum h2_result h2_feed(struct h2 *h2, const char *data, size_t len)
{
    if (h2->failed)
        return H2_CLOSE;
    ssize_t n = nghttp2_session_mem_recv(h2->session, (const uint8_t *)data, len);
    if (n < 0) {
        log_msg(LOG_DEBUG, "HTTP/2: %s", nghttp2_strerror((int)n));
        if (n == NGHTTP2_ERR_BAD_CLIENT_MAGIC) {
            count(h2, SHM_REJECT_MALFORMED); /* not HTTP/2 at all: nothing to answer */
            h2->failed = true;
        } else {
            count(h2, SHM_H2_CONNECTION_ERRORS);
            nghttp2_session_terminate_session(h2->session, NGHTTP2_INTERNAL_ERROR);
        }
        return H2_CLOSE;
    }
    return nghttp2_session_want_read(h2->session) ? H2_CONTINUE : H2_CLOSE;
}

bool h2_produce(struct h2 *h2)
{
    while (!h2->failed && h2->out->pending_bytes < H2_HIGH_WATER) {
        const uint8_t *data;
        ssize_t n = nghttp2_session_mem_send(h2->session, &data);
        if (n == 0)
            break; /* nothing more, or on_send_data paused at the mark */
        if (n < 0 || outq_add_copy(h2->out, data, (size_t)n) != 0) {
            log_msg(LOG_DEBUG, "HTTP/2: sending failed: %s",
                    n < 0 ? nghttp2_strerror((int)n) : "out of memory");
            h2->failed = true;
        }
    }
    return !h2->failed && nghttp2_session_want_write(h2->session);
}

bool h2_want_write(const struct h2 *h2)
{
    return !h2->failed && nghttp2_session_want_write(h2->session);
}

bool h2_finished(const struct h2 *h2)
{
    return h2->failed ||
           (!nghttp2_session_want_read(h2->session) && !nghttp2_session_want_write(h2->session));
}

bool h2_idle(const struct h2 *h2)
{
    return h2->streams == NULL;
}

bool h2_reading_head(const struct h2 *h2, uint64_t *since_ms)
{
    if (!h2->preface_done) {
        *since_ms = h2->started_ms;
        return true;
    }
    *since_ms = h2->head_since_ms;
    return h2->head_since_ms != 0;
}

static void stream_check_rate(struct h2 *h2, struct h2_stream *st, uint64_t now_ms)
{
    if (st->request_complete ||
        !request_too_slow(&h2->limits->min_request_body_data_rate, st->body_started_ms,
                          st->ex.body_bytes_received, now_ms))
        return;
    st->body_started_ms = 0;
    if (!st->ex.responded) {
        stream_refuse(st, 408, SHM_REJECT_BODY_RATE); /* then RST_STREAM NO_ERROR */
        return;
    }
    count(h2, SHM_REJECT_BODY_RATE);
    nghttp2_submit_rst_stream(h2->session, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_CANCEL);
}

enum h2_result h2_tick(struct h2 *h2, uint64_t now_ms)
{
    for (struct h2_stream *st = h2->streams; st != NULL; st = st->next)
        stream_check_rate(h2, st, now_ms);
    if (h2->notice_sent && now_ms - h2->notice_ms >= H2_NOTICE_GRACE_MS)
        h2_goaway(h2); /* a busy connection is told too, not only an idle one */
    const struct config_http2_limits *l = &h2->limits->http2;
    if (l->keep_alive_ping_delay_ms == 0)
        return H2_CONTINUE;
    if (h2->ping_sent_ms != 0)
        return now_ms - h2->ping_sent_ms >= l->keep_alive_ping_timeout_ms ? H2_CLOSE
                                                                          : H2_CONTINUE;
    if (now_ms - h2->last_frame_ms >= l->keep_alive_ping_delay_ms &&
        nghttp2_submit_ping(h2->session, NGHTTP2_FLAG_NONE, NULL) == 0)
        h2->ping_sent_ms = now_ms;
    return H2_CONTINUE;
}

void h2_shutdown_notice(struct h2 *h2)
{
    if (h2->notice_sent || h2->goaway_sent)
        return;
    h2->notice_sent = true;
    h2->notice_ms = clock_monotonic_ms();
    nghttp2_submit_shutdown_notice(h2->session);
}

void h2_goaway(struct h2 *h2)
{
    if (h2->goaway_sent)
        return;
    h2->goaway_sent = true;
    nghttp2_submit_goaway(h2->session, NGHTTP2_FLAG_NONE,
                          nghttp2_session_get_last_proc_stream_id(h2->session),
                          NGHTTP2_NO_ERROR, NULL, 0);
}
