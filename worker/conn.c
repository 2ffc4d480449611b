/*
 * conn.c - connection I/O over raw libevent events; see conn.h.
 *
 * Raw events and our own buffers rather than bufferevents: a bufferevent
 * costs an FIONREAD ioctl before each read and epoll_ctl calls around each
 * write, about five system calls per request where a read and a write do.
 */
#include "worker/conn.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include "common/clock.h"
#include "common/log.h"
#include "shm/shm.h"
#include "worker/access_log.h"
#include "worker/conn_tls.h"
#include "worker/request.h"
#include "worker/worker.h"

#define CONN_LINGER_MS 2000
#define CONN_DRAIN_GRACE_MS 1000
#define CONN_READS_PER_WAKEUP 16
#define CONN_FREE_MAX 1024
/* HTTP/2 output rounds (produce up to the high-water mark, write) per
 * wakeup before yielding to other connections until writable again. */
#define CONN_FLUSH_ROUNDS 4

static void on_readable(evutil_socket_t fd, short what, void *arg);
static void on_writable(evutil_socket_t fd, short what, void *arg);
static void conn_flush(struct conn *c);

static void conn_set_reading(struct conn *c, bool on)
{
    if (on == c->reading)
        return;
    c->reading = on;
    if (on)
        event_add(&c->read_event, NULL);
    else
        event_del(&c->read_event);
}

/* The write event exists only once a write has blocked: most connections
 * never need it, and an idle one should not carry its 128 bytes. */
static void conn_set_writing(struct conn *c, bool on)
{
    if (on == c->writing)
        return;
    if (on && c->write_event == NULL) {
        c->write_event = event_new(c->worker->base, c->fd, EV_WRITE | EV_PERSIST, on_writable, c);
        if (c->write_event == NULL) {
            log_limited(LOG_ERROR, errno, "event_new(write)");
            return; /* the deadline closes a connection that cannot be written */
        }
    }
    c->writing = on;
    if (on)
        event_add(c->write_event, NULL);
    else
        event_del(c->write_event);
}

/*
 * The HTTP/1 state (parser, arena, header bookkeeping: ~400 bytes) belongs
 * to a connection only while a request is in progress: it is taken from the
 * worker's spares when bytes arrive and given back once the connection is
 * idle with its output flushed, so an idle keep-alive connection is just
 * its struct conn.
 */
static struct h1 *conn_h1(struct conn *c)
{
    if (c->h1 != NULL)
        return c->h1;
    struct worker *w = c->worker;
    struct h1 *h1 = w->spare_h1s;
    if (h1 != NULL) {
        memcpy(&w->spare_h1s, h1, sizeof w->spare_h1s); /* the link kept in its first bytes */
        w->spare_h1_count--;
    } else if ((h1 = malloc(sizeof *h1)) == NULL) {
        log_limited(LOG_ERROR, errno, "malloc(h1)");
        return NULL;
    }
    h1_init(h1, w, &c->out);
    h1_set_connection(h1, c->endpoint, c->limits, &c->peer.sa);
    h1->client_subject = c->client_subject;
    c->h1 = h1;
    return h1;
}

static void conn_h1_release(struct conn *c)
{
    struct h1 *h1 = c->h1;
    if (h1 == NULL)
        return;
    h1_destroy(h1);
    c->h1 = NULL;
    struct worker *w = c->worker;
    if (w->spare_h1_count >= CONN_FREE_MAX) {
        free(h1);
        return;
    }
    memcpy(h1, &w->spare_h1s, sizeof w->spare_h1s);
    w->spare_h1s = h1;
    w->spare_h1_count++;
}

/* Nothing queued, and nothing the transport still holds. */
static bool conn_output_empty(const struct conn *c)
{
    return outq_empty(&c->out) && !conn_tls_output_waiting(c);
}

/* No request in progress and nothing left to send. */
static bool conn_idle(const struct conn *c)
{
    return (c->h1 == NULL || h1_idle(c->h1)) && (c->h2 == NULL || h2_idle(c->h2)) &&
           conn_output_empty(c);
}

void conn_free_spare_h1s(struct worker *w)
{
    while (w->spare_h1s != NULL) {
        struct h1 *h1 = w->spare_h1s;
        memcpy(&w->spare_h1s, h1, sizeof w->spare_h1s);
        free(h1);
    }
    w->spare_h1_count = 0;
}

/* The deadline that applies in the connection's current state. */
static void conn_update_deadline(struct conn *c)
{
    const struct config_limits *limits = c->limits;
    uint64_t since;
    if (c->lingering)
        return;
    if (c->tls_handshaking)
        c->deadline_ms = c->accepted_ms + limits->request_headers_timeout_ms;
    else if (c->h1 != NULL && h1_reading_head(c->h1))
        c->deadline_ms = c->h1->request_started_ms + limits->request_headers_timeout_ms;
    else if (c->h2 != NULL && h2_reading_head(c->h2, &since))
        c->deadline_ms = since + limits->request_headers_timeout_ms;
    else if (!c->spoke) /* a client that never sends holds a descriptor for this long only */
        c->deadline_ms = c->accepted_ms + limits->request_headers_timeout_ms;
    else /* idle, or waiting for the peer to read or send: no progress for this long closes */
        c->deadline_ms = clock_monotonic_ms() + limits->keep_alive_timeout_ms;
    if (c->worker->draining)
        conn_drain(c, clock_monotonic_ms());
}

/* ---- the plain transport ------------------------------------------------- */

static ssize_t plain_read(struct conn *c, char *buf, size_t len, bool *drained)
{
    ssize_t n = read(c->fd, buf, len);
    *drained = n >= 0 && (size_t)n < len; /* a short read: the socket is drained */
    return n;
}

static enum outq_flush_result plain_flush(struct conn *c, uint64_t *written)
{
    return outq_flush(&c->out, c->fd, written);
}

static void plain_nothing(struct conn *c)
{
    (void)c;
}

static const struct conn_transport plain_transport = {
    .read = plain_read,
    .flush = plain_flush,
    .shutdown = plain_nothing,
    .close = plain_nothing,
};

static struct conn *conn_take(struct worker *w)
{
    struct conn *c = w->free_conns;
    if (c != NULL) {
        w->free_conns = c->next;
        w->free_conn_count--;
        return c;
    }
    return malloc(sizeof *c);
}

/* ---- admission: permit pools ------------------------------------------ */

/* The endpoint's own pool is used only when its limit differs from the
 * instance-wide one it inherits: an equal limit is already enforced by the
 * global pool, and an accept then costs one compare-and-swap, not two. */
static uint64_t endpoint_limit(const struct worker *w, const struct config_limits *mine,
                               enum shm_pool_kind kind)
{
    const struct config_limits *all = &w->config->limits;
    uint64_t own = kind == SHM_POOL_CONNECTIONS ? mine->max_concurrent_connections
                                                : mine->max_concurrent_upgraded_connections;
    uint64_t global = kind == SHM_POOL_CONNECTIONS ? all->max_concurrent_connections
                                                   : all->max_concurrent_upgraded_connections;
    return own == global ? 0 : own;
}

static uint64_t global_limit(const struct worker *w, enum shm_pool_kind kind)
{
    return kind == SHM_POOL_CONNECTIONS ? w->config->limits.max_concurrent_connections
                                        : w->config->limits.max_concurrent_upgraded_connections;
}

/* Takes the permits of kind the connection needs; all or none. */
void conn_publish_limits(struct worker *w)
{
    if (w->shm == NULL)
        return;
    for (int kind = 0; kind < SHM_POOL_KINDS; kind++) {
        shm_pool_publish_limit(w->shm, kind, SHM_POOL_GLOBAL, global_limit(w, kind));
        for (unsigned pool = 1; pool < SHM_POOLS; pool++) {
            size_t i = pool - 1;
            uint64_t own = i < w->config->endpoint_count
                               ? endpoint_limit(w, &w->config->endpoints[i].limits, kind)
                               : 0;
            shm_pool_publish_limit(w->shm, kind, pool, own);
        }
    }
}

static bool permits_take(struct conn *c, enum shm_pool_kind kind, uint8_t *held)
{
    struct worker *w = c->worker;
    uint64_t global = global_limit(w, kind), own = endpoint_limit(w, c->limits, kind);
    *held = 0;
    if (global != 0) {
        if (!shm_permit_take(w->shm, w->slot, kind, SHM_POOL_GLOBAL, global))
            return false;
        *held |= CONN_PERMIT_GLOBAL;
    }
    if (own != 0) {
        if (!shm_permit_take(w->shm, w->slot, kind, 1u + c->endpoint_pool, own)) {
            if (*held & CONN_PERMIT_GLOBAL)
                shm_permit_give(w->shm, w->slot, kind, SHM_POOL_GLOBAL);
            *held = 0;
            return false;
        }
        *held |= CONN_PERMIT_ENDPOINT;
    }
    return true;
}

static void permits_give(struct conn *c, enum shm_pool_kind kind, uint8_t held)
{
    struct worker *w = c->worker;
    if (held & CONN_PERMIT_GLOBAL)
        shm_permit_give(w->shm, w->slot, kind, SHM_POOL_GLOBAL);
    if (held & CONN_PERMIT_ENDPOINT)
        shm_permit_give(w->shm, w->slot, kind, 1u + c->endpoint_pool);
}

bool conn_upgrade_begin(struct conn *c)
{
    uint8_t held;
    if (c->upgraded)
        return true;
    if (!permits_take(c, SHM_POOL_UPGRADED, &held))
        return false;
    /* Kestrel: an upgraded connection no longer counts against
     * MaxConcurrentConnections, only against the upgraded limit. */
    permits_give(c, SHM_POOL_CONNECTIONS, c->permits);
    c->permits = held;
    c->upgraded = true;
    return true;
}

/* ---- open and close ---------------------------------------------------- */

static void conn_set_endpoint(struct conn *c, const struct worker_listener *listener)
{
    const struct config *config = c->worker->config;
    c->endpoint = listener != NULL ? listener->endpoint : NULL;
    c->limits = c->endpoint != NULL ? &c->endpoint->limits : &config->limits;
    if (c->endpoint != NULL && config->endpoints != NULL)
        c->endpoint_pool = (uint8_t)(c->endpoint - config->endpoints);
    if (c->endpoint_pool >= SHM_POOLS - 1)
        c->endpoint_pool = SHM_POOLS - 2; /* more endpoints than pools: they share the last */
}

static void conn_set_peer(struct conn *c, const struct sockaddr *peer, socklen_t len)
{
    if (peer != NULL && len <= sizeof c->peer &&
        (peer->sa_family == AF_INET || peer->sa_family == AF_INET6))
        memcpy(&c->peer, peer, len);
    else
        c->peer.sa.sa_family = AF_UNIX;
}

/* Over the limit: closed before anything is read, so the refusal costs a
 * close and never a response (Kestrel does the same). */
static int conn_refuse(struct conn *c, int fd)
{
    struct worker *w = c->worker;
    if (w->slot != NULL)
        shm_slot_count(w->slot, SHM_REJECT_CONNECTION_LIMIT, 1);
    close(fd);
    c->next = w->free_conns;
    w->free_conns = c;
    w->free_conn_count++;
    return SK_DECLINED;
}

int conn_open(struct worker *w, int fd, const struct worker_listener *listener,
              const struct sockaddr *peer, socklen_t peer_len)
{
    struct conn *c = conn_take(w);
    if (c == NULL) {
        log_limited(LOG_ERROR, errno, "malloc(conn)");
        close(fd);
        return SK_ERROR;
    }
    memset(c, 0, sizeof *c);
    c->worker = w;
    c->fd = fd;
    conn_set_endpoint(c, listener);
    if (!permits_take(c, SHM_POOL_CONNECTIONS, &c->permits))
        return conn_refuse(c, fd);
    conn_set_peer(c, peer, peer_len);
    c->transport = &plain_transport;
    c->accepted_ms = clock_monotonic_ms();
    outq_init(&c->out);
    event_assign(&c->read_event, w->base, fd, EV_READ | EV_PERSIST, on_readable, c);
    c->next = w->conns;
    if (w->conns != NULL)
        w->conns->prev = c;
    w->conns = c;
    w->conn_count++;
    if (w->slot != NULL) {
        shm_slot_count(w->slot, SHM_CONNECTIONS_ACCEPTED, 1);
        shm_slot_gauge_add(&w->slot->connections_open, 1);
    }
    if (listener != NULL && listener->tls != NULL && conn_tls_open(c, listener->tls) != SK_OK) {
        log_limited(LOG_ERROR, 0, "SSL_new() failed: out of memory");
        conn_close(c);
        return SK_ERROR;
    }
    conn_set_reading(c, true);
    conn_update_deadline(c);
    return SK_OK;
}

void conn_close(struct conn *c)
{
    struct worker *w = c->worker;
    event_del(&c->read_event);
    if (c->write_event != NULL) {
        event_free(c->write_event);
        c->write_event = NULL;
    }
    c->transport->close(c);
    close(c->fd);
    outq_clear(&c->out);
    conn_h1_release(c);
    h2_free(c->h2);
    c->h2 = NULL;
    permits_give(c, c->upgraded ? SHM_POOL_UPGRADED : SHM_POOL_CONNECTIONS, c->permits);
    c->permits = 0;
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        w->conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    w->conn_count--;
    if (w->slot != NULL)
        shm_slot_gauge_add(&w->slot->connections_open, -1);
    /* Kept on a free list, so a callback further up the stack that still
     * holds the pointer reads valid (if dead) memory, never freed memory. */
    if (w->free_conn_count < CONN_FREE_MAX) {
        c->next = w->free_conns;
        w->free_conns = c;
        w->free_conn_count++;
    } else {
        free(c);
    }
}

void conn_free_cache(struct worker *w)
{
    while (w->free_conns != NULL) {
        struct conn *c = w->free_conns;
        w->free_conns = c->next;
        free(c);
    }
    w->free_conn_count = 0;
}

/* Half-closes and waits (briefly) for the peer to close, discarding input. */
static void conn_linger(struct conn *c)
{
    c->transport->shutdown(c);
    if (shutdown(c->fd, SHUT_WR) != 0) {
        conn_close(c);
        return;
    }
    c->lingering = true;
    c->deadline_ms = clock_monotonic_ms() + CONN_LINGER_MS;
    conn_set_writing(c, false);
    conn_set_reading(c, true);
}

static void conn_linger_read(struct conn *c)
{
    for (int i = 0; i < CONN_READS_PER_WAKEUP; i++) {
        ssize_t n = read(c->fd, c->worker->read_buffer, c->worker->read_buffer_size);
        if (n > 0)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        break; /* EOF or error: the peer has everything it will read */
    }
    conn_close(c);
}

/* HTTP/2 for the rest of the connection's life. False when out of memory. */
static bool conn_start_h2(struct conn *c, bool inadequate_security)
{
    struct h2_params params = {
        .worker = c->worker,
        .out = &c->out,
        .endpoint = c->endpoint,
        .limits = c->limits,
        .peer = &c->peer.sa,
        .client_subject = c->client_subject,
        .inadequate_security = inadequate_security,
    };
    c->protocol = CONN_PROTOCOL_HTTP2;
    c->h2 = h2_new(&params);
    if (c->h2 == NULL)
        log_limited(LOG_ERROR, 0, "HTTP/2 session: out of memory");
    return c->h2 != NULL;
}

/* In clear text the endpoint's protocols decide; http1_and_http2 tells
 * them apart by the first bytes. A client that sends fewer than four
 * bytes first is taken for HTTP/1.1: an HTTP/2 client's first write is
 * the whole 24-byte preface and its SETTINGS. */
static bool conn_choose_protocol(struct conn *c, const char *data, size_t len)
{
    enum endpoint_protocols allowed =
        c->endpoint != NULL ? c->endpoint->protocols : PROTOCOLS_HTTP1;
    bool h2 = allowed == PROTOCOLS_HTTP2 ||
              (allowed == PROTOCOLS_HTTP1_AND_HTTP2 && len >= 4 && memcmp(data, "PRI ", 4) == 0);
    if (h2)
        return conn_start_h2(c, false);
    c->protocol = CONN_PROTOCOL_HTTP1;
    return true;
}

static void conn_consume(struct conn *c, const char *data, size_t len)
{
    if (c->worker->slot != NULL)
        shm_slot_count(c->worker->slot, SHM_BYTES_IN, len);
    if (c->endpoint != NULL && c->endpoint->connection_logging)
        access_log_hexdump(c->fd, "read", data, len);
    c->spoke = true;
    if (c->protocol == CONN_PROTOCOL_UNDECIDED && !conn_choose_protocol(c, data, len)) {
        c->closing = true;
        conn_set_reading(c, false);
        return;
    }
    if (c->h2 != NULL) {
        if (h2_feed(c->h2, data, len) == H2_CLOSE) {
            c->closing = true;
            conn_set_reading(c, false);
        }
        return;
    }
    struct h1 *h1 = conn_h1(c);
    if (h1 == NULL || h1_feed(h1, data, len) == H1_CLOSE) {
        c->closing = true;
        conn_set_reading(c, false);
    }
}

/* One step of the TLS handshake, from either event. True when it is done
 * and application data may be read (some may already be decrypted). */
static bool conn_handshake(struct conn *c)
{
    switch (conn_tls_handshake(c)) {
    case CONN_TLS_READY:
        conn_set_writing(c, false);
        conn_set_reading(c, true);
        if (conn_tls_wants_h2(c) && !conn_start_h2(c, conn_tls_inadequate_for_h2(c))) {
            conn_close(c);
            return false;
        }
        if (c->protocol == CONN_PROTOCOL_UNDECIDED)
            c->protocol = CONN_PROTOCOL_HTTP1;
        conn_update_deadline(c);
        return true; /* the caller reads and flushes: saker's SETTINGS leave then */

    case CONN_TLS_WAIT_READ:
        conn_set_writing(c, false);
        conn_set_reading(c, true);
        return false;
    case CONN_TLS_WAIT_WRITE:
        conn_set_reading(c, false);
        conn_set_writing(c, true);
        return false;
    case CONN_TLS_PLAIN_HTTP:
        conn_tls_answer_plain_http(c);
        /* Lingering: the unread rest of the request must not turn the
         * close into a reset that destroys the answer. */
        conn_linger(c);
        return false;
    default:
        conn_close(c); /* counted by reason; nothing was read, nothing to answer */
        return false;
    }
}

static void on_readable(evutil_socket_t fd, short what, void *arg)
{
    struct conn *c = arg;
    struct worker *w = c->worker;
    (void)fd; /* the transport reads c->fd */
    (void)what;
    if (c->lingering) {
        conn_linger_read(c);
        return;
    }
    if (c->tls_handshaking && !conn_handshake(c))
        return;
    for (int i = 0; i < CONN_READS_PER_WAKEUP && !c->closing; i++) {
        bool drained;
        ssize_t n = c->transport->read(c, w->read_buffer, w->read_buffer_size, &drained);
        if (n > 0) {
            conn_consume(c, w->read_buffer, (size_t)n);
            if (drained)
                break;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            break;
        /* EOF or a reset: nothing more will be read. An incomplete request
         * gets no response; complete ones already queued theirs. */
        if (c->h1 != NULL)
            h1_on_eof(c->h1);
        /* HTTP/2 answers may be frames still to make: the flush makes them. */
        if (n == 0 && (c->h2 != NULL || !conn_output_empty(c))) {
            c->closing = true;
            conn_set_reading(c, false);
            break;
        }
        conn_close(c);
        return;
    }
    conn_flush(c);
}

static void on_writable(evutil_socket_t fd, short what, void *arg)
{
    struct conn *c = arg;
    if (c->tls_handshaking) {
        if (conn_handshake(c))
            on_readable(fd, what, c);
        return;
    }
    if (c->tls_read_wants_write) { /* TLS: a read had to write first */
        c->tls_read_wants_write = false;
        conn_set_writing(c, false);
        on_readable(fd, what, c);
        return;
    }
    conn_flush(c);
}

/* Dumps the byte segments about to be written (connection_logging). */
static void conn_log_output(struct conn *c)
{
    const struct outq *q = &c->out;
    for (size_t i = q->head; i < q->count; i++) {
        const struct outq_segment *s = &q->segments[i];
        if (s->kind == OUTQ_FILE)
            log_msg(LOG_DEBUG, "conn %d write: file, %zu bytes", c->fd, s->len);
        else
            access_log_hexdump(c->fd, "write", s->kind == OUTQ_COPY ? q->buffer + s->offset
                                                                    : s->ptr, s->len);
    }
}

static enum outq_flush_result conn_write(struct conn *c)
{
    uint64_t written = 0;
    if (c->endpoint != NULL && c->endpoint->connection_logging && !outq_empty(&c->out))
        conn_log_output(c);
    enum outq_flush_result r = c->transport->flush(c, &written);
    if (written > 0 && c->worker->slot != NULL)
        shm_slot_count(c->worker->slot, SHM_BYTES_OUT, written);
    c->out_blocked_bytes += written;
    return r;
}

static void conn_flush(struct conn *c)
{
    /* HTTP/2 makes its frames as the queue drains, a high-water mark at a
     * time; after a few rounds the connection waits for writability, so
     * one large response does not hold the worker. */
    bool more = false;
    enum outq_flush_result r = OUTQ_FLUSHED;
    for (int round = 0; round < CONN_FLUSH_ROUNDS; round++) {
        if (c->h2 != NULL)
            more = h2_produce(c->h2);
        r = conn_write(c);
        if (r != OUTQ_FLUSHED || !more)
            break;
    }
    switch (r) {
    case OUTQ_FAILED:
        conn_close(c);
        return;
    case OUTQ_BLOCKED:
        /* Stop reading until the peer takes what it asked for. The response
         * rate is measured from here: what the kernel buffered before the
         * block says nothing about how fast the peer reads. */
        if (c->out_blocked_ms == 0) {
            c->out_blocked_ms = clock_monotonic_ms();
            c->out_blocked_bytes = 0;
        }
        conn_set_reading(c, false);
        conn_set_writing(c, true);
        break;
    case OUTQ_FLUSHED:
        c->out_blocked_ms = 0;
        if (c->h2 != NULL && h2_finished(c->h2))
            c->closing = true;
        conn_set_writing(c, c->tls_read_wants_write || more);
        if (c->closing && !more) {
            conn_linger(c);
            return;
        }
        if (c->closing)
            break; /* the rest of HTTP/2's frames, once writable */
        conn_set_reading(c, true);
        if (c->h1 != NULL && h1_idle(c->h1))
            conn_h1_release(c);
        /* TLS may hold decrypted or read-ahead records that the socket
         * will never signal again (reading stopped while output was
         * blocked, or the per-wakeup cap was hit): read them now. */
        if (conn_tls_pending(c))
            event_active(&c->read_event, EV_READ, 1);
        break;
    }
    conn_update_deadline(c);
}

/* Data rates and the body drain limit. True when c was closed or is
 * closing because of them. */
static bool conn_check_rates(struct conn *c, uint64_t now_ms)
{
    if (request_too_slow(&c->limits->min_response_data_rate, c->out_blocked_ms, c->out_blocked_bytes,
                 now_ms)) {
        if (c->worker->slot != NULL)
            shm_slot_count(c->worker->slot, SHM_REJECT_RESPONSE_RATE, 1);
        conn_close(c);
        return true;
    }
    if (c->closing)
        return false;
    if (c->h2 != NULL) {
        if (h2_tick(c->h2, now_ms) == H2_CLOSE) {
            conn_close(c); /* the keep-alive ping went unanswered */
            return true;
        }
        if (h2_want_write(c->h2))
            conn_flush(c); /* a 408, a reset or a ping to send */
        return false;
    }
    if (c->h1 == NULL)
        return false; /* idle: nothing to measure */
    if (h1_body_expired(c->h1, now_ms)) {
        conn_close(c); /* a body nobody reads, still coming after the drain limit */
        return true;
    }
    uint64_t body_start, body_bytes;
    if (h1_reading_body(c->h1, &body_start, &body_bytes) &&
        request_too_slow(&c->limits->min_request_body_data_rate, body_start, body_bytes, now_ms)) {
        h1_body_too_slow(c->h1);
        c->closing = true;
        conn_set_reading(c, false);
        conn_flush(c);
        return true;
    }
    return false;
}

/* Ends an HTTP/2 connection with a GOAWAY, once what is queued is sent. */
static void conn_h2_end(struct conn *c)
{
    h2_goaway(c->h2);
    c->closing = true;
    conn_set_reading(c, false);
    conn_flush(c);
}

/* The preface or a header block that never finished (nothing else can
 * arrive while a header block is open: RFC 9113 section 6.2), an idle
 * connection past keep_alive_timeout or its drain grace, or one whose
 * client took nothing for as long. */
static void conn_h2_deadline(struct conn *c)
{
    uint64_t since;
    if (h2_reading_head(c->h2, &since)) {
        if (c->worker->slot != NULL)
            shm_slot_count(c->worker->slot, SHM_REJECT_HEADERS_TIMEOUT, 1);
        conn_h2_end(c);
    } else if (conn_idle(c)) {
        conn_h2_end(c);
    } else {
        conn_close(c);
    }
}

void conn_check_deadline(struct conn *c, uint64_t now_ms)
{
    if (!c->lingering && conn_check_rates(c, now_ms))
        return;
    if (c->deadline_ms == 0 || now_ms < c->deadline_ms)
        return;
    if (c->lingering) {
        conn_close(c);
        return;
    }
    if (c->h2 != NULL) {
        conn_h2_deadline(c);
        return;
    }
    if (conn_idle(c)) {
        if (c->worker->draining)
            conn_linger(c); /* the end of the lame-duck grace */
        else
            conn_close(c);
        return;
    }
    if (c->h1 != NULL && h1_reading_head(c->h1)) {
        h1_timeout(c->h1);
        c->closing = true;
        conn_set_reading(c, false);
        conn_flush(c);
        return;
    }
    /* A response the client does not read, or a body that does not come. */
    conn_close(c);
}

void conn_drain(struct conn *c, uint64_t now_ms)
{
    if (c->lingering || c->closing)
        return;
    if (c->h2 != NULL) {
        /* Told once; the write event sends it (this runs inside a flush,
         * too, which must not recurse). */
        h2_shutdown_notice(c->h2);
        if (h2_want_write(c->h2))
            conn_set_writing(c, true);
    }
    if (conn_idle(c)) {
        /* Lame-duck grace: a request already on its way is still answered
         * (with Connection: close) before the half-close. */
        uint64_t grace = now_ms + CONN_DRAIN_GRACE_MS;
        if (c->deadline_ms == 0 || c->deadline_ms > grace)
            c->deadline_ms = grace;
    }
}
