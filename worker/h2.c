/*
 * h2.c - HTTP/2 server protocol over nghttp2; see h2.h.
 *
 * nghttp2 owns the framing, HPACK, flow control and the protocol's rules;
 * this file turns its callbacks into exchanges (one per request stream,
 * each with its own arena) and exchanges into responses. Bytes go in with
 * nghttp2_session_mem_recv and come out with nghttp2_session_mem_send into
 * the connection's output queue; responses and their DATA frames are
 * h2_response.c's.
 */
#include "worker/h2.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <nghttp2/nghttp2.h>

#include "common/arena.h"
#include "common/clock.h"
#include "common/digits.h"
#include "common/error.h"
#include "common/log.h"
#include "common/slab.h"
#include "conf/config.h"
#include "shm/shm.h"
#include "worker/conn.h"
#include "worker/exchange.h"
#include "worker/h2_stream.h"
#include "worker/outq.h"
#include "worker/request.h"
#include "worker/route_stats.h"
#include "worker/worker.h"

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
/* Idle this long, a connection gives back the pages of nghttp2's buffers
 * (h2_mem.c): a page fault later for one more request, not a system call
 * per request. */
#define H2_TRIM_IDLE_MS 1000
/* The dynamic table of the response fields saker indexes (HPACK, RFC 7541
 * section 4), whatever larger table the client allows. Every response
 * adds its new values (last-modified per file, date once a second), and
 * nghttp2 keeps an entry in about 2.4 times its HPACK size of malloc, so
 * a connection that fetched 64 files over TLS idled at 41.6 KB with the
 * client's 4 KiB, and at 34.1 KB with 1 KiB (nginx: 26.1 KB). The fields
 * every response repeats fit in 1 KiB; what it evicts sooner is the
 * values a response seldom shares: +3.6 header bytes per response on 64
 * distinct files, none on one file or /plaintext, and 7 % fewer worker
 * instructions per request (smaller table, less to search and evict). */
#define H2_DEFLATE_TABLE_MAX 1024

/* A worker is one thread: a plain free list, like outq's. */
static struct h2_stream *spare_streams;
static size_t spare_stream_count;

void h2_count(const struct h2 *h2, enum shm_counter counter)
{
    shm_slot_count(h2->worker->slot, counter, 1);
}

void h2_wake(struct h2 *h2)
{
    if (h2->conn != NULL)
        conn_wake(h2->conn);
}

bool h2_stream_gone(const struct h2_stream *st)
{
    return st->dead || st->ex.abandoned || st->h2->failed ||
           (st->h2->conn != NULL && st->h2->conn->closed);
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
    ex->endpoint = h2->endpoint;
    ex->conn_fd = h2->conn != NULL ? h2->conn->fd : -1;
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

static void stream_unlink(struct h2_stream **list, struct h2_stream *st)
{
    if (st->prev != NULL)
        st->prev->next = st->next;
    else
        *list = st->next;
    if (st->next != NULL)
        st->next->prev = st->prev;
    st->prev = st->next = NULL;
}

/* The end of a stream: a producer still at work is told first, then
 * its memory goes. Only at the end of a turn, or with the session. */
static void stream_free(struct h2 *h2, struct h2_stream *st)
{
    exchange_body_error(&st->ex, 0); /* a body cut short: the client reset or left */
    exchange_stop(&st->ex);
    if (st->permits != 0)
        conn_stream_upgrade_give(h2->conn, &st->permits); /* a tunnel's, at its end */
    if (!st->ex.responded)
        exchange_drop_body(&st->ex); /* a handler that set a file and never answered */
    if (st->body_release != NULL) { /* after the frames of it still queued */
        outq_add_release(h2->out, st->body_release, st->body_release_arg);
        h2_file_framed(h2);
    }
    /* Its last frame is queued (or the connection is going): counted
     * once that has left. */
    if (st->ex.responded)
        route_stats_queued(h2->worker, h2->out, st->entry, st->ex.status, st->started_us);
    if (st->proceed_owed)
        h2->proceeds_owed--;
    if (st->delivery_owed)
        h2->deliveries_owed--;
    free(st->pieces);
    bytebuf_free(&st->held);
    arena_reset(&st->arena);
    if (spare_stream_count >= H2_SPARE_STREAMS_MAX) {
        free(st);
        return;
    }
    st->next = spare_streams;
    spare_streams = st;
    spare_stream_count++;
}

static void on_reap(struct turn_job *job)
{
    struct h2 *h2 = (struct h2 *)((char *)job - offsetof(struct h2, reap));
    while (h2->dead != NULL) {
        struct h2_stream *st = h2->dead;
        stream_unlink(&h2->dead, st);
        stream_free(h2, st);
    }
}

/* nghttp2 closed the stream: it leaves the session's streams now and is
 * freed at the end of the turn (h2_stream.h). */
static void stream_close(struct h2 *h2, struct h2_stream *st)
{
    if (st->gated)
        h2->gated--;
    st->gated = false;
    st->dead = true;
    if (h2->heading == st)
        h2->heading = NULL;
    exchange_abandon(&st->ex);
    stream_unlink(&h2->streams, st);
    st->next = h2->dead;
    if (h2->dead != NULL)
        h2->dead->prev = st;
    h2->dead = st;
    turn_defer(&h2->worker->turn, &h2->reap);
}

static struct h2_stream *stream_of(nghttp2_session *session, int32_t id)
{
    return nghttp2_session_get_stream_user_data(session, id);
}

/* ---- the request head ------------------------------------------------------ */

/* Refuses the stream's request with status (counted under counter). */
static void stream_refuse(struct h2_stream *st, int status, enum shm_counter counter)
{
    h2_count(st->h2, counter);
    st->dispatch_pending = false;
    exchange_body_error(&st->ex, status); /* a reader hears first, and may answer */
    if (!st->ex.responded) {
        exchange_respond_error(&st->ex, status);
    } else if (!st->ex.finished) { /* a response under way cannot be finished well */
        exchange_abandon(&st->ex);
        nghttp2_submit_rst_stream(st->h2->session, NGHTTP2_FLAG_NONE, st->id,
                                  NGHTTP2_INTERNAL_ERROR);
    }
}

/* The first refusal found while the head arrives is the answer. */
static void stream_reject(struct h2_stream *st, int status, enum shm_counter counter)
{
    if (st->reject_status != 0)
        return;
    st->reject_status = status;
    st->reject_counter = counter;
    if (status == 431)
        h2_guard_oversize(st->h2);
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
    struct header_field field;
    if (exchange_copy_field(&st->arena, &field, name, name_len, value, value_len) != SK_OK)
        return SK_ERROR;
    return exchange_push_request_header(&st->ex, &field);
}

/* A trailer field (nghttp2 has validated it); past the header limits it
 * resets the stream. */
static int stream_add_trailer(struct h2_stream *st, const uint8_t *name, size_t name_len,
                              const uint8_t *value, size_t value_len)
{
    struct exchange *ex = &st->ex;
    struct header_field field;
    st->header_bytes += name_len + value_len;
    if (st->header_bytes > st->h2->limits->max_request_headers_total_size ||
        ex->request_trailer_count >= st->h2->limits->max_request_header_count ||
        exchange_copy_field(&st->arena, &field, (const char *)name, name_len, (const char *)value,
                            value_len) != SK_OK)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    if (exchange_push_field(&st->arena, &ex->request_trailers, &ex->request_trailer_count,
                            &ex->request_trailer_capacity, &field) != SK_OK)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    return 0;
}

/* :method, :path, :authority and :protocol; nghttp2 has checked that
 * the set is complete and well-formed (RFC 9113 section 8.3.1), and that
 * :protocol comes only with CONNECT, which then has a :path and a
 * :scheme as any request (RFC 8441 section 4). */
static void stream_pseudo_field(struct h2_stream *st, const char *name, size_t name_len,
                                const char *value, size_t value_len)
{
    struct exchange *ex = &st->ex;
    bool method = name_len == 7 && memcmp(name, ":method", 7) == 0;
    bool path = !method && name_len == 5 && memcmp(name, ":path", 5) == 0;
    bool authority = !method && !path && name_len == 10 && memcmp(name, ":authority", 10) == 0;
    bool protocol = name_len == 9 && memcmp(name, ":protocol", 9) == 0;
    if (!method && !path && !authority && !protocol)
        return; /* :scheme: nothing reads it */
    char *copy = arena_strndup(&st->arena, value, value_len);
    if (copy == NULL) {
        stream_reject(st, 500, SHM_REJECT_MALFORMED);
        return;
    }
    if (method) {
        ex->method_name = copy;
        ex->method = method_of(value, value_len);
    } else if (protocol) {
        ex->connect_protocol = copy;
    } else if (path) {
        if (value_len > st->h2->limits->max_request_line_size)
            stream_reject(st, 414, SHM_REJECT_REQUEST_LINE_TOO_LONG);
        ex->target = copy;
        ex->target_len = value_len;
    } else {
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
    if (frame->hd.type != NGHTTP2_HEADERS)
        return 0;
    /* The stream on_begin_headers made, without a lookup per field. */
    struct h2_stream *st = h2->heading != NULL && h2->heading->id == frame->hd.stream_id
                               ? h2->heading : stream_of(session, frame->hd.stream_id);
    if (st == NULL)
        return 0;
    /* Far past the limits: no client needs that, and decoding the rest
     * of the block (thousands of references to one large field) is the
     * attack's whole cost. The connection ends here: nghttp2 returns from
     * nghttp2_session_mem_recv without reading another byte. */
    if (h2_guard_header_over(st, name_len + value_len)) {
        h2_calm_down(h2, "a header block far over the limits");
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    }
    if (st->reject_status != 0)
        return 0;
    if (frame->headers.cat != NGHTTP2_HCAT_REQUEST) /* trailers: never the request's headers */
        return stream_add_trailer(st, name_bytes, name_len, value_bytes, value_len);
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
    return 0;
}

void h2_file_framed(struct h2 *h2)
{
    h2->file_streams--;
}

static void stream_dispatch(struct h2_stream *st)
{
    struct h2 *h2 = st->h2;
    /* A connection holds at most H2_FILE_STREAMS_MAX files: a request
     * answered at END_STREAM waits for its handler while it is full
     * (h2_dispatch_gated runs it once a file is framed or reset), so 100
     * streams held by a shut window cannot hold 100 descriptors. */
    if (h2->file_streams >= H2_FILE_STREAMS_MAX && !st->early) {
        if (!st->gated)
            h2->gated++;
        st->gated = true;
        return;
    }
    st->dispatch_pending = false;
    request_dispatch(st->entry, &st->ex);
    if (!st->ex.responded && st->ex.generator == NULL)
        exchange_respond_error(&st->ex, 500); /* a handler that never answered */
}

/* A declared content-length, or -1 (nghttp2 has checked its form). */
static int64_t declared_length(const struct exchange *ex)
{
    size_t len;
    const char *length = exchange_header(ex, "content-length", &len);
    return length != NULL ? (int64_t)strtoll(length, NULL, 10) : -1;
}

/* The whole head is in: the pipeline every request head goes through
 * (request_head_check), then dispatch when the framing allows. */
static void stream_head_complete(struct h2 *h2, struct h2_stream *st, bool end_stream)
{
    struct exchange *ex = &st->ex;
    st->request_complete = end_stream;
    h2_count(h2, SHM_REQUESTS);
    h2_count(h2, SHM_H2_STREAMS);
    if (ex->target == NULL)
        ex->target = ""; /* CONNECT without :protocol has no :path */
    if (st->reject_status != 0) {
        stream_refuse(st, st->reject_status, st->reject_counter);
        return;
    }
    if (ex->method == METHOD_CONNECT && ex->connect_protocol == NULL) {
        /* RFC 9110 section 9.3.6: a CONNECT to a host and port is for a
         * forward proxy, which saker is not: 501, a method supported for
         * no resource (section 15.6.2); a 405 would owe an Allow list. */
        exchange_respond_error(ex, 501);
        return;
    }
    struct request_head head = {
        .limits = h2->limits,
        .conn = h2->conn,
        .authority = st->authority,
        .authority_len = st->authority_len,
        .content_length = declared_length(ex),
    };
    struct request_verdict v;
    request_head_check(h2->worker, ex, &head, &v);
    st->entry = v.entry;
    st->body_limit = v.body_limit;
    if (v.status != 0) {
        if (v.counter != SHM_COUNTER_COUNT)
            h2_count(h2, (enum shm_counter)v.counter);
        st->dispatch_pending = false;
        exchange_respond_error(ex, v.status);
        return;
    }
    ex->expect_continue = v.expect_continue && !end_stream;
    /* An extended CONNECT is answered at its head: what follows is not a
     * body to wait for (nor one sent at a rate), but the tunnel's bytes. */
    st->early = !end_stream && (request_reads_body(st->entry) || ex->connect_protocol != NULL);
    if (!end_stream && ex->connect_protocol == NULL)
        st->body_started_ms = clock_monotonic_ms();
    /* As in h1: a body is answered once it is all in, unless its handler
     * reads it, or the client asked to be told first (a handler that
     * does not ask for the body then answers at once). */
    if (end_stream || v.expect_continue || st->early)
        stream_dispatch(st);
    else
        st->dispatch_pending = true;
}

static void stream_request_complete(struct h2_stream *st)
{
    st->request_complete = true;
    st->body_started_ms = 0;
    h2_body_end(st);
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
        log_limited(LOG_ERROR, 0, "malloc(h2 stream) failed");
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* RST_STREAM this one */
    }
    nghttp2_session_set_stream_user_data(session, frame->hd.stream_id, st);
    h2->heading = st;
    return 0;
}

static void on_data_frame(struct h2 *h2, const nghttp2_frame *frame, struct h2_stream *st)
{
    bool end = frame->hd.flags & NGHTTP2_FLAG_END_STREAM;
    if (frame->hd.length == 0 && !end && ++h2->empty_frames > H2_EMPTY_FRAMES_MAX) {
        h2_calm_down(h2, "empty DATA frames");
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
        h2->active_ms = h2->last_frame_ms;
        if (st == NULL)
            break;
        if (frame->headers.cat == NGHTTP2_HCAT_REQUEST)
            stream_head_complete(h2, st, frame->hd.flags & NGHTTP2_FLAG_END_STREAM);
        else if (frame->hd.flags & NGHTTP2_FLAG_END_STREAM)
            stream_request_complete(st); /* trailers */
        break;
    case NGHTTP2_DATA:
        if (frame->hd.length > 0)
            h2->active_ms = h2->last_frame_ms;
        on_data_frame(h2, frame, st);
        break;
    case NGHTTP2_RST_STREAM:
        h2_count(h2, SHM_H2_RESETS_RECEIVED);
        h2_guard_reset_received(h2, frame->hd.stream_id);
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
    (void)user_data;
    struct h2_stream *st = stream_of(session, stream_id);
    if (st == NULL) {
        nghttp2_session_consume_connection(session, len);
        return 0;
    }
    uint64_t received = st->ex.body_bytes_received += len;
    if (st->tunnel)
        st->tunnel_active_ms = clock_monotonic_ms();
    if (received <= st->body_limit) {
        h2_body_data(st, data, len);
        return 0;
    }
    nghttp2_session_consume(session, stream_id, len); /* over the limit: not read */
    if (!st->ex.responded || (st->ex.body_reader != NULL && !st->ex.body_ended)) {
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
    h2_guard_stream_closed(user_data, stream_id);
    if (st != NULL) {
        nghttp2_session_set_stream_user_data(session, stream_id, NULL);
        stream_close(user_data, st);
    }
    return 0;
}

/* ---- nghttp2 callbacks: sending ---------------------------------------------- */

static int on_frame_send(nghttp2_session *session, const nghttp2_frame *frame, void *user_data)
{
    struct h2 *h2 = user_data;
    switch (frame->hd.type) {
    case NGHTTP2_RST_STREAM:
        h2_count(h2, SHM_H2_RESETS_SENT);
        h2_guard_reset_sent(h2, frame->hd.stream_id, frame->rst_stream.error_code);
        break;
    case NGHTTP2_GOAWAY:
        if (frame->goaway.error_code != NGHTTP2_NO_ERROR)
            h2_count(h2, SHM_H2_CONNECTION_ERRORS);
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

static int on_error(nghttp2_session *session, int lib_error_code, const char *msg, size_t len,
                    void *user_data)
{
    (void)session;
    (void)lib_error_code;
    (void)user_data;
    log_msg(LOG_DEBUG, "HTTP/2: %.*s", (int)len, msg);
    return 0;
}

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
    nghttp2_session_callbacks_set_send_data_callback(cb, h2_on_send_data);
    nghttp2_session_callbacks_set_error_callback2(cb, on_error);
    return cb;
}

/* Closed streams are not kept: nghttp2 keeps them only for RFC 7540's
 * priority tree, which RFC 9113 deprecated, and an idle connection would
 * hold one per request it served. The response fields' table is bounded
 * (H2_DEFLATE_TABLE_MAX). */
static nghttp2_option *session_options(void)
{
    static nghttp2_option *options;
    if (options == NULL && nghttp2_option_new(&options) == 0) {
        nghttp2_option_set_no_closed_streams(options, 1);
        nghttp2_option_set_no_auto_window_update(options, 1); /* h2_body.c gives it back */
        nghttp2_option_set_max_deflate_dynamic_table_size(options, H2_DEFLATE_TABLE_MAX);
        /* h2_guard.c's bucket ends a rapid reset first, and says why. */
        nghttp2_option_set_stream_reset_rate_limit(options, 2 * H2_RESET_BURST,
                                                   2 * H2_RESET_RATE);
    }
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
        /* RFC 8441: WebSockets (any :protocol) over a stream; nghttp2
         * then admits :protocol on a CONNECT and checks its form. */
        {NGHTTP2_SETTINGS_ENABLE_CONNECT_PROTOCOL, 1},
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
    struct h2 *h2 = slab_calloc(1, sizeof *h2);
    if (cb == NULL || options == NULL || h2 == NULL) {
        slab_free(h2);
        return NULL;
    }
    h2->worker = params->worker;
    h2->out = params->out;
    h2->endpoint = params->endpoint;
    h2->limits = params->limits;
    h2->peer = params->peer;
    h2->client_subject = params->client_subject;
    h2->conn = params->conn;
    h2->reap.run = on_reap;
    h2_guard_init(h2);
    h2->started_ms = h2->last_frame_ms = h2->active_ms = clock_monotonic_ms();
    h2_mem_init(&h2->mem);
    h2->mem.creating = true;
    int rc = nghttp2_session_server_new3(&h2->session, cb, h2, options, &h2->mem.mem);
    h2->mem.creating = false;
    if (rc != 0) {
        slab_free(h2);
        return NULL;
    }
    if (submit_settings(h2) != 0) {
        h2_free(h2);
        return NULL;
    }
    if (params->inadequate_security)
        nghttp2_session_terminate_session(h2->session, NGHTTP2_INADEQUATE_SECURITY);
    h2_count(h2, SHM_H2_CONNECTIONS);
    return h2;
}

void h2_free(struct h2 *h2)
{
    if (h2 == NULL)
        return;
    nghttp2_session_del(h2->session); /* calls no callback: our streams go below */
    turn_cancel(&h2->worker->turn, &h2->reap);
    on_reap(&h2->reap);
    while (h2->streams != NULL) {
        struct h2_stream *st = h2->streams;
        stream_unlink(&h2->streams, st);
        stream_free(h2, st);
    }
    slab_free(h2->recent_more);
    slab_free(h2);
}

/* The GOAWAY code for an error nghttp2_session_mem_recv returned: a flood
 * (of frames to answer, CONTINUATION or SETTINGS) is the peer's abuse,
 * ENHANCE_YOUR_CALM, not our failure. */
static uint32_t h2_error_code(int error)
{
    switch (error) {
    case NGHTTP2_ERR_FLOODED:
    case NGHTTP2_ERR_TOO_MANY_CONTINUATIONS:
    case NGHTTP2_ERR_TOO_MANY_SETTINGS:
        return NGHTTP2_ENHANCE_YOUR_CALM;
    default:
        return NGHTTP2_INTERNAL_ERROR;
    }
}

enum h2_result h2_feed(struct h2 *h2, const char *data, size_t len)
{
    if (h2->failed)
        return H2_CLOSE;
    h2->trimmed = false;
    ssize_t n = h2_guard_recv(h2, (const uint8_t *)data, len);
    if (n < 0) {
        log_msg(LOG_DEBUG, "HTTP/2: %s", nghttp2_strerror((int)n));
        if (n == NGHTTP2_ERR_BAD_CLIENT_MAGIC) {
            h2_count(h2, SHM_REJECT_MALFORMED); /* not HTTP/2 at all: nothing to answer */
            h2->failed = true;
        } else if (!h2->calm) { /* ENHANCE_YOUR_CALM is counted as it is sent */
            h2_count(h2, SHM_H2_CONNECTION_ERRORS);
            nghttp2_session_terminate_session(h2->session, h2_error_code((int)n));
        }
        return H2_CLOSE;
    }
    return nghttp2_session_want_read(h2->session) ? H2_CONTINUE : H2_CLOSE;
}

static void h2_make_frames(struct h2 *h2)
{
    while (!h2->failed && h2->out->pending_bytes < OUTQ_HIGH_WATER) {
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
}

/* Streams whose dispatch waited, oldest first (the list is newest first),
 * while the connection has room for files and its queue room for frames.
 * True when one was dispatched. */
static bool h2_dispatch_gated(struct h2 *h2)
{
    bool any = false;
    struct h2_stream *last = h2->streams;
    while (last != NULL && last->next != NULL)
        last = last->next;
    for (struct h2_stream *st = last, *prev; st != NULL && h2->gated > 0; st = prev) {
        prev = st->prev;
        if (!st->gated || st->dead)
            continue;
        if (h2->file_streams >= H2_FILE_STREAMS_MAX || h2->out->pending_bytes >= OUTQ_HIGH_WATER)
            break;
        st->gated = false;
        h2->gated--;
        stream_dispatch(st);
        any = true;
    }
    return any;
}

static bool h2_gate_open(const struct h2 *h2)
{
    return h2->gated > 0 && h2->file_streams < H2_FILE_STREAMS_MAX;
}

bool h2_produce(struct h2 *h2)
{
    if (h2->deliveries_owed > 0)
        h2_body_deliver_owed(h2);
    do
        h2_make_frames(h2);
    while (!h2->failed && ((h2->proceeds_owed > 0 && h2_deliver_proceeds(h2)) ||
                           (h2_gate_open(h2) && h2_dispatch_gated(h2))));
    return !h2->failed &&
           (nghttp2_session_want_write(h2->session) ||
            ((h2->proceeds_owed > 0 || h2_gate_open(h2)) &&
             h2->out->pending_bytes >= OUTQ_HIGH_WATER));
}

bool h2_owes_later(const struct h2 *h2)
{
    for (const struct h2_stream *st = h2->streams; st != NULL; st = st->next)
        if (st->ex.generator != NULL && !st->ex.finished && !st->ex.abandoned)
            return true;
    return false;
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

bool h2_abandoned(const struct h2 *h2)
{
    for (const struct h2_stream *st = h2->streams; st != NULL; st = st->next)
        if (!h2_stream_gone(st))
            return false;
    return true;
}

static void stream_cancel(struct h2 *h2, struct h2_stream *st)
{
    exchange_abandon(&st->ex); /* its producer hears at the stream's end */
    nghttp2_submit_rst_stream(h2->session, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_CANCEL);
}

void h2_peer_closed(struct h2 *h2)
{
    for (struct h2_stream *st = h2->streams; st != NULL; st = st->next)
        if (st->tunnel && !h2_stream_gone(st))
            stream_cancel(h2, st);
}

enum shm_conn_state h2_state(const struct h2 *h2)
{
    uint64_t since;
    if (h2_reading_head(h2, &since))
        return SHM_CONN_READING_HEAD;
    if (h2->streams == NULL)
        return SHM_CONN_IDLE;
    bool tunnels = true;
    for (const struct h2_stream *st = h2->streams; st != NULL; st = st->next) {
        if (!st->request_complete && !st->ex.responded)
            return SHM_CONN_READING_BODY;
        tunnels = tunnels && st->tunnel;
    }
    return tunnels ? SHM_CONN_TUNNEL : SHM_CONN_HANDLING;
}

uint64_t h2_active_ms(const struct h2 *h2) { return h2->active_ms; }

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
    if (st->tunnel || st->request_complete || st->ex.body_paused || st->held.len > 0 ||
        !request_too_slow(&h2->limits->min_request_body_data_rate, st->body_started_ms,
                          st->ex.body_bytes_received - st->body_rate_base, now_ms))
        return;
    st->body_started_ms = 0;
    if (!st->ex.responded || st->ex.body_reader != NULL) {
        stream_refuse(st, 408, SHM_REJECT_BODY_RATE); /* then RST_STREAM */
        return;
    }
    h2_count(h2, SHM_REJECT_BODY_RATE);
    nghttp2_submit_rst_stream(h2->session, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_CANCEL);
}

/* min_response_data_rate for a response the peer's flow-control window
 * holds back (Kestrel counts these stalls too): from the moment its DATA
 * first waits for a window, until all of it is framed, it must keep the
 * rate, or the stream is reset (and its file given back). A client that
 * opens windows a byte at a time is measured the same. */
static void stream_check_stall(struct h2 *h2, struct h2_stream *st, uint64_t now_ms)
{
    bool pending = st->ex.responded && !h2_stream_gone(st) &&
                   (st->streaming ? st->piece_left > 0 : st->body_left > 0);
    if (!pending) {
        st->stall_ms = 0;
        return;
    }
    if (st->stall_ms == 0) {
        if (nghttp2_session_get_stream_remote_window_size(h2->session, st->id) <= 0 ||
            nghttp2_session_get_remote_window_size(h2->session) <= 0) {
            st->stall_ms = now_ms;
            st->stall_sent = st->data_sent;
        }
        return;
    }
    if (!request_too_slow(&h2->limits->min_response_data_rate, st->stall_ms,
                          st->data_sent - st->stall_sent, now_ms))
        return;
    st->stall_ms = 0;
    h2_count(h2, SHM_REJECT_RESPONSE_RATE);
    nghttp2_submit_rst_stream(h2->session, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_CANCEL);
}

/* A tunnel without DATA either way for keep_alive_timeout is cancelled,
 * as an HTTP/1.1 tunnel is closed: its neighbours on the connection keep
 * it alive no longer than they keep themselves. */
static void stream_check_tunnel(struct h2 *h2, struct h2_stream *st, uint64_t now_ms)
{
    if (st->tunnel && !h2_stream_gone(st) &&
        now_ms - st->tunnel_active_ms >= h2->limits->keep_alive_timeout_ms)
        stream_cancel(h2, st);
}

enum h2_result h2_tick(struct h2 *h2, uint64_t now_ms)
{
    for (struct h2_stream *st = h2->streams; st != NULL; st = st->next) {
        stream_check_rate(h2, st, now_ms);
        stream_check_stall(h2, st, now_ms);
        stream_check_tunnel(h2, st, now_ms);
    }
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

void h2_trim(struct h2 *h2, uint64_t now_ms)
{
    if (h2->trimmed || h2->failed || h2->streams != NULL || h2->dead != NULL ||
        now_ms - h2->active_ms < H2_TRIM_IDLE_MS || nghttp2_session_want_write(h2->session))
        return;
    h2->trimmed = true;
    h2_mem_trim(&h2->mem);
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
