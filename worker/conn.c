/*
 * conn.c - connection I/O over raw libevent events; see conn.h.
 *
 * Raw events and our own buffers rather than bufferevents: a bufferevent
 * costs an FIONREAD ioctl before each read and epoll_ctl calls around each
 * write, about five system calls per request where a read and a write do.
 */
#include "worker/conn.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <linux/sockios.h>

#include <event2/event.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/slab.h"
#include "shm/shm.h"
#include "worker/access_log.h"
#include "worker/conn_list.h"
#include "worker/conn_tls.h"
#include "worker/h1.h"
#include "worker/h2.h"
#include "worker/request.h"
#include "worker/uring.h"
#include "worker/worker.h"

#define CONN_LINGER_MS 2000
#define CONN_DRAIN_GRACE_MS 1000
#define CONN_READS_PER_WAKEUP 16
#define CONN_FREE_MAX 1024
/* Output rounds (produce up to the high-water mark, write) per wakeup
 * before yielding to other connections until writable again. */
#define CONN_FLUSH_ROUNDS 4

static void on_readable(evutil_socket_t fd, short what, void *arg);
static void on_writable(evutil_socket_t fd, short what, void *arg);
static void on_turn(struct turn_job *job);
static void conn_flush(struct conn *c);

/* Input the transport holds, which the socket will not signal again, is
 * read later in this turn: through the read event, or by a transport
 * with its own readiness when it is told that reading goes on. */
static void conn_read_held(struct conn *c)
{
    if (!c->transport->pending(c))
        return;
    if (c->transport->watch != NULL)
        c->transport->watch(c);
    else
        event_active(&c->read_event, EV_READ, 1);
}

static void conn_set_reading(struct conn *c, bool on)
{
    if (on == c->reading)
        return;
    c->reading = on;
    if (c->transport->watch != NULL)
        c->transport->watch(c);
    else if (on)
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
    if (c->transport->watch != NULL) {
        c->writing = on;
        c->transport->watch(c);
        return;
    }
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

bool conn_output_empty(const struct conn *c)
{
    return outq_empty(&c->out) && !c->transport->output_waiting(c);
}

/* No exchange in progress and nothing left to send. */
static bool conn_idle(struct conn *c)
{
    return (c->proto == NULL || c->proto->idle(c)) && conn_output_empty(c);
}

const char *conn_peer_subject(const struct conn *c)
{
    return c->transport->peer_subject(c);
}

/* The deadline that applies in the connection's current state; runs
 * after every event on it, so its entry in the connection list is
 * refreshed here too. */
static void conn_update_deadline(struct conn *c)
{
    uint64_t now = clock_monotonic_ms();
    if (c->worker->conn_list_on)
        conn_list_publish(c);
    if (c->lingering)
        return;
    /* A connection that has sent nothing yet (Kestrel's rule) keeps the
     * deadline it got at accept: request_headers_timeout, handshake
     * included. */
    if (!c->handshaking && !c->fresh && c->proto != NULL)
        c->deadline_ms = c->proto->deadline(c, now);
    if (c->worker->draining)
        conn_drain(c, now);
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

static bool plain_nothing_held(const struct conn *c)
{
    (void)c;
    return false;
}

static int plain_close(struct conn *c)
{
    (void)c;
    return SK_OK;
}

const char *conn_transport_no_alpn(const struct conn *c, size_t *len, bool *weak)
{
    (void)c;
    *len = 0;
    *weak = false;
    return NULL;
}

const char *conn_transport_no_subject(const struct conn *c)
{
    (void)c;
    return NULL;
}

void conn_transport_nothing(struct conn *c)
{
    (void)c;
}

static const struct conn_transport plain_transport = {
    .handshake = NULL,
    .read = plain_read,
    .flush = plain_flush,
    .pending = plain_nothing_held,
    .output_waiting = plain_nothing_held,
    .alpn = conn_transport_no_alpn,
    .peer_subject = conn_transport_no_subject,
    .shutdown = conn_transport_nothing,
    .close = plain_close,
    .watch = NULL,
    .send_stalled = NULL,
};

/* ---- open and close ---------------------------------------------------- */

static struct conn *conn_take(struct worker *w, int fd)
{
    struct conn *c = w->free_conns;
    if (c != NULL) {
        w->free_conns = c->next;
        w->free_conn_count--;
    } else if ((c = slab_malloc(sizeof *c)) == NULL) {
        log_limited(LOG_ERROR, errno, "malloc(conn)");
        close(fd);
        return NULL;
    }
    memset(c, 0, sizeof *c);
    c->worker = w;
    c->fd = fd;
    c->transport = &plain_transport;
    c->limits = &w->config->limits;
    c->job.run = on_turn;
    outq_init(&c->out);
    return c;
}

void conn_give_back(struct conn *c)
{
    struct worker *w = c->worker;
    if (w->free_conn_count >= CONN_FREE_MAX) {
        slab_free(c);
        return;
    }
    c->next = w->free_conns;
    w->free_conns = c;
    w->free_conn_count++;
}

/* Into the worker's list, reading, with its first deadline. */
static void conn_enlist(struct conn *c)
{
    struct worker *w = c->worker;
    /* The clock read now, not the heartbeat's: up to a second stale, it
     * made a connection accepted just before a heartbeat expire at it,
     * with its first request unread in the socket (a vDSO call, no
     * system call). */
    c->deadline_ms = clock_now_monotonic_ms() + c->limits->request_headers_timeout_ms;
    event_assign(&c->read_event, w->base, c->fd, EV_READ | EV_PERSIST, on_readable, c);
    c->next = w->conns;
    if (w->conns != NULL)
        w->conns->prev = c;
    w->conns = c;
    w->conn_count++;
}

static void conn_set_endpoint(struct conn *c, const struct worker_listener *listener)
{
    const struct config *config = c->worker->config;
    c->endpoint = listener != NULL ? listener->endpoint : NULL;
    if (c->endpoint != NULL)
        c->limits = &c->endpoint->limits;
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

int conn_open(struct worker *w, int fd, const struct worker_listener *listener,
              const struct sockaddr *peer, socklen_t peer_len)
{
    struct conn *c = conn_take(w, fd);
    if (c == NULL)
        return SK_ERROR;
    conn_set_endpoint(c, listener);
    if (!conn_admit(c)) {
        /* Closed before anything is read, so the refusal costs a close
         * and never a response (Kestrel does the same). */
        if (w->slot != NULL)
            shm_slot_count(w->slot, SHM_REJECT_CONNECTION_LIMIT, 1);
        close(fd);
        conn_give_back(c);
        return SK_DECLINED;
    }
    conn_set_peer(c, peer, peer_len);
    if (!conn_proxy_trusted(c)) { /* a PROXY header from anyone else would be believed */
        conn_release_permits(c);
        if (w->slot != NULL)
            shm_slot_count(w->slot, SHM_REJECT_MALFORMED, 1);
        close(fd);
        conn_give_back(c);
        return SK_DECLINED;
    }
    c->proxy_header = c->endpoint != NULL && c->endpoint->proxy_protocol;
    c->fresh = true;
    conn_enlist(c);
    if (w->slot != NULL) {
        shm_slot_count(w->slot, SHM_CONNECTIONS_ACCEPTED, 1);
        shm_slot_gauge_add(&w->slot->connections_open, 1);
    }
    if (listener != NULL && listener->tls != NULL && conn_tls_open(c, listener->tls) != SK_OK) {
        log_limited(LOG_ERROR, 0, "SSL_new() failed: out of memory");
        conn_close(c);
        return SK_ERROR;
    }
    /* The PROXY header is peeked from the socket, which a receive in the
     * kernel would empty first: such endpoints stay on epoll. */
    if (w->uring != NULL && c->transport == &plain_transport && !c->proxy_header)
        conn_uring_attach(c);
    conn_set_reading(c, true);
    conn_update_deadline(c);
    return SK_OK;
}

struct conn *conn_start(struct worker *w, int fd, const struct conn_protocol *proto,
                        void *proto_state)
{
    struct conn *c = conn_take(w, fd);
    if (c == NULL)
        return NULL;
    c->outbound = true;
    c->peer.sa.sa_family = AF_UNIX;
    c->proto = proto;
    c->proto_state = proto_state;
    conn_enlist(c);
    conn_set_reading(c, true);
    conn_update_deadline(c);
    return c;
}

/* At the end of the turn the connection closed in: nothing above the
 * close still runs, so its memory and its descriptor can go. The
 * descriptor is closed only now, so that its number cannot be reused by
 * a connection accepted in the same turn while the old one is still
 * referenced. */
static void conn_release(struct conn *c)
{
    if (c->proto != NULL)
        c->proto->free(c); /* producers still open are told first */
    bool kept = c->transport->close(c) == SK_AGAIN; /* the ring gives it back */
    conn_proxy_header_free(c);
    close(c->fd);
    outq_clear(&c->out);
    if (!kept)
        conn_give_back(c);
}

static void on_turn(struct turn_job *job)
{
    struct conn *c = (struct conn *)((char *)job - offsetof(struct conn, job));
    if (c->closed)
        conn_release(c);
    else
        conn_flush(c);
}

void conn_close(struct conn *c)
{
    if (c->closed)
        return;
    struct worker *w = c->worker;
    c->closed = true;
    conn_list_close(c);
    if (c->transport->watch == NULL) /* else its bytes are the transport's */
        event_del(&c->read_event);
    if (c->write_event != NULL) {
        event_free(c->write_event);
        c->write_event = NULL;
    }
    c->reading = c->writing = false;
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        w->conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    /* c->next is kept: a walk of the list that stands on c goes on from it. */
    w->conn_count--;
    if (!c->outbound) {
        conn_release_permits(c);
        if (w->slot != NULL)
            shm_slot_gauge_add(&w->slot->connections_open, -1);
    }
    turn_defer(&w->turn, &c->job);
}

void conn_abort(struct conn *c)
{
    struct linger reset = {.l_onoff = 1, .l_linger = 0};
    if (!c->closed)
        setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &reset, sizeof reset);
    conn_close(c);
}

void conn_end(struct conn *c)
{
    c->closing = true;
    conn_set_reading(c, false);
}

void conn_wake(struct conn *c)
{
    if (c->closed)
        return;
    c->wake = true;
    if (!c->in_io) /* else the flush that ends the callback sees it */
        turn_defer(&c->worker->turn, &c->job);
}

void conn_pause_input(struct conn *c, bool paused)
{
    c->input_paused = paused;
    if (paused) {
        conn_set_reading(c, false);
        return;
    }
    if (c->closed || c->closing || c->lingering || (c->out_blocked_ms != 0 && !c->duplex))
        return; /* the flush that unblocks output resumes reading */
    conn_set_reading(c, true);
    conn_read_held(c);
}

void conn_switch_protocol(struct conn *c, const struct conn_protocol *proto, void *state)
{
    c->proto = proto;
    c->proto_state = state;
}

void conn_free_cache(struct worker *w)
{
    while (w->free_conns != NULL) {
        struct conn *c = w->free_conns;
        w->free_conns = c->next;
        slab_free(c);
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

/* ---- the protocol ------------------------------------------------------ */

/* HTTP/2 when ALPN agreed on h2 or the endpoint speaks nothing else,
 * HTTP/1.1 otherwise. */
static void conn_choose_after_handshake(struct conn *c)
{
    size_t len;
    bool weak;
    const char *alpn = c->transport->alpn(c, &len, &weak);
    bool h2 = (alpn != NULL && len == 2 && memcmp(alpn, "h2", 2) == 0) ||
              (c->endpoint != NULL && c->endpoint->protocols == PROTOCOLS_HTTP2);
    if (!h2)
        conn_switch_protocol(c, &h1_protocol, NULL);
    else if (h2_conn_start(c, weak) != SK_OK)
        conn_close(c);
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
        return h2_conn_start(c, false) == SK_OK;
    conn_switch_protocol(c, &h1_protocol, NULL);
    return true;
}

static void conn_consume(struct conn *c, const char *data, size_t len)
{
    if (c->worker->slot != NULL)
        shm_slot_count(c->worker->slot, SHM_BYTES_IN, len);
    if (c->worker->conn_list_on)
        conn_list_bytes(c, len, 0);
    if (c->endpoint != NULL && c->endpoint->connection_logging)
        access_log_hexdump(c->fd, "read", data, len);
    c->fresh = false;
    if (c->proto == NULL && !conn_choose_protocol(c, data, len)) {
        conn_end(c);
        return;
    }
    c->proto->feed(c, data, len);
}

/* One step of the handshake, from either event. True when it is done
 * and application data may be read (some may already be decrypted). */
static bool conn_handshake(struct conn *c)
{
    switch (c->transport->handshake(c)) {
    case CONN_HANDSHAKE_DONE:
        conn_set_writing(c, false);
        conn_set_reading(c, true);
        if (!c->outbound) /* an outbound connection came with its protocol */
            conn_choose_after_handshake(c);
        if (c->closed)
            return false;
        conn_update_deadline(c);
        return true; /* the caller reads and flushes: saker's SETTINGS leave then */
    case CONN_HANDSHAKE_WAIT_READ:
        conn_set_writing(c, false);
        conn_set_reading(c, true);
        return false;
    case CONN_HANDSHAKE_WAIT_WRITE:
        conn_set_reading(c, false);
        conn_set_writing(c, true);
        return false;
    case CONN_HANDSHAKE_ANSWERED:
        /* Lingering: the unread rest of the request must not turn the
         * close into a reset that destroys the answer. */
        conn_linger(c);
        return false;
    default:
        conn_close(c); /* counted by reason; nothing was read, nothing to answer */
        return false;
    }
}

/* EOF or a reset: nothing more will be read. An incomplete request gets
 * no response; complete ones already queued theirs, and what the
 * protocol still owes is made by the flush. */
static void conn_peer_closed(struct conn *c, bool eof)
{
    c->peer_reset = !eof;
    bool owed = c->proto != NULL && c->proto->eof(c);
    if (c->closed)
        return;
    if (eof && (owed || !conn_output_empty(c)))
        conn_end(c);
    else
        conn_close(c);
}

static void conn_read(struct conn *c)
{
    struct worker *w = c->worker;
    for (int i = 0; i < CONN_READS_PER_WAKEUP && !c->closing && !c->input_paused && !c->closed;
         i++) {
        bool drained;
        size_t size = w->read_buffer_size;
        char *buf = c->proto != NULL && c->proto->read_into != NULL
                        ? c->proto->read_into(c, &size) : NULL;
        if (buf == NULL) {
            buf = w->read_buffer;
            size = w->read_buffer_size;
        }
        ssize_t n = c->transport->read(c, buf, size, &drained);
        if (n > 0) {
            conn_consume(c, buf, (size_t)n);
            if (drained)
                break;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            break;
        conn_peer_closed(c, n == 0);
        return;
    }
}

static void conn_readable(struct conn *c)
{
    if (c->closed)
        return;
    if (c->lingering) {
        conn_linger_read(c);
        return;
    }
    clock_touch(); /* the requests this read brings start now (route statistics) */
    if (c->proxy_header) {
        int rc = conn_proxy_header_read(c);
        if (rc == SK_ERROR) {
            if (c->worker->slot != NULL)
                shm_slot_count(c->worker->slot, SHM_REJECT_MALFORMED, 1);
            conn_close(c);
        }
        if (rc != SK_OK)
            return;
    }
    c->in_io = true;
    if (!c->handshaking || conn_handshake(c)) {
        conn_read(c);
        conn_flush(c);
    }
    c->in_io = false;
}

void conn_transport_event(struct conn *c, short what)
{
    if (what & EV_READ)
        on_readable(c->fd, EV_READ, c);
    else
        on_writable(c->fd, EV_WRITE, c);
}

/* The loop's callbacks: what they queue for the end of the turn (a
 * release, an HTTP/2 stream's reaping, another connection's flush) runs
 * as they return (turn.h), after which c may be gone. */
static void on_readable(evutil_socket_t fd, short what, void *arg)
{
    struct conn *c = arg;
    struct turn *t = &c->worker->turn;
    (void)fd; /* the transport reads c->fd */
    (void)what;
    turn_enter(t);
    conn_readable(c);
    turn_leave(t);
}

static void conn_writable(struct conn *c, evutil_socket_t fd, short what)
{
    if (c->closed)
        return;
    if (c->handshaking) {
        c->in_io = true;
        bool done = conn_handshake(c);
        c->in_io = false;
        if (done)
            on_readable(fd, what, c); /* its own turn_enter nests */
        return;
    }
    if (c->read_wants_write) { /* TLS: a read had to write first */
        c->read_wants_write = false;
        conn_set_writing(c, false);
        on_readable(fd, what, c);
        return;
    }
    conn_flush(c);
}

static void on_writable(evutil_socket_t fd, short what, void *arg)
{
    struct conn *c = arg;
    struct turn *t = &c->worker->turn;
    turn_enter(t);
    conn_writable(c, fd, what);
    turn_leave(t);
}

/* ---- output ------------------------------------------------------------ */

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
    if (written > 0)
        conn_count_output(c, written);
    return r;
}

void conn_count_output(struct conn *c, uint64_t n)
{
    if (c->worker->slot != NULL)
        shm_slot_count(c->worker->slot, SHM_BYTES_OUT, n);
    if (c->worker->conn_list_on)
        conn_list_bytes(c, 0, n);
    c->out_blocked_bytes += n;
}

/* Bytes in the socket the peer has not acknowledged yet (TCP) or read
 * (a Unix socket): SIOCOUTQ; 0 if the kernel cannot say. */
static uint64_t conn_unacked(const struct conn *c)
{
    int n;
    return ioctl(c->fd, SIOCOUTQ, &n) == 0 && n > 0 ? (uint64_t)n : 0;
}

/* What follows a write: wait for writability, linger, or read again. */
/* Reading again after output: the transport may hold input that the
 * socket will never signal again (reading stopped while output was
 * blocked, or the per-wakeup cap was hit), which is read now. */
static void conn_read_again(struct conn *c)
{
    conn_set_reading(c, true);
    conn_read_held(c);
}

static void conn_after_write(struct conn *c, enum outq_flush_result r, enum conn_owed owed)
{
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
            c->out_blocked_bytes = conn_unacked(c);
        }
        if (!c->duplex) /* a tunnel's protocol pauses its input itself */
            conn_set_reading(c, false);
        conn_set_writing(c, true);
        break;
    case OUTQ_FLUSHED:
        c->out_blocked_ms = 0;
        conn_set_writing(c, c->read_wants_write || owed == CONN_OWES_MORE);
        if (c->closing && owed == CONN_OWES_NOTHING) {
            conn_linger(c);
            return;
        }
        if (c->closing || c->input_paused)
            break; /* the rest of what is owed, once writable */
        c->proto->idle(c); /* lets the protocol give back per-exchange memory */
        conn_read_again(c);
        break;
    case OUTQ_SENDING:
        /* The transport's completion flushes again: the rest of what is
         * owed, and the linger of a closing connection, wait for it. A
         * response-rate clock already running goes on until a flush
         * finds everything taken. */
        conn_set_writing(c, false);
        if (!c->closing && !c->input_paused)
            conn_read_again(c);
        break;
    }
    conn_update_deadline(c);
}

static void conn_flush(struct conn *c)
{
    /* The protocol makes its output as the queue drains (HTTP/2 frames, a
     * producer's next piece), a high-water mark at a time; after a few
     * rounds the connection waits for writability, so one large response
     * does not hold the worker. */
    bool was_in_io = c->in_io;
    enum conn_owed owed = CONN_OWES_NOTHING;
    enum outq_flush_result r = OUTQ_FLUSHED;
    if (c->closed || c->lingering || c->proto == NULL)
        return;
    c->in_io = true;
    c->wake = false; /* this flush is the one asked for */
    int round = 0;
    for (; round < CONN_FLUSH_ROUNDS && !c->closed; round++) {
        owed = c->proto->produce(c);
        if (c->closed)
            break;
        r = conn_write(c);
        if (r != OUTQ_FLUSHED || owed != CONN_OWES_MORE)
            break;
    }
    if (!c->closed)
        conn_after_write(c, r, owed);
    c->in_io = was_in_io;
    /* Output made after this flush's last produce gets another flush in
     * this pass, unless every round was used and more is owed: that waits
     * for writability, so a producer that keeps up with a fast client (a
     * compressor) cannot hold the loop in one pass of the turn forever. */
    if (c->wake && !c->closed && round < CONN_FLUSH_ROUNDS)
        turn_defer(&c->worker->turn, &c->job);
}

/* ---- deadlines ----------------------------------------------------------- */

/* Past the deadline before a protocol runs: a handshake or a first read
 * that never came, or the end of a linger. */
static void conn_expire(struct conn *c)
{
    if (!c->lingering && c->worker->draining && conn_idle(c) && !c->handshaking)
        conn_linger(c); /* the end of the lame-duck grace */
    else
        conn_close(c);
}

/* Input that arrived before the deadline but that the worker, busy or
 * stopped, has not read yet: in the socket (FIONREAD) or held by the
 * transport. One ioctl, and only for a connection past its deadline. */
static bool conn_input_waiting(const struct conn *c)
{
    int waiting = 0;
    if (!c->reading || c->lingering || c->closing || c->input_paused)
        return false;
    return c->transport->pending(c) ||
           (ioctl(c->fd, FIONREAD, &waiting) == 0 && waiting > 0);
}

/* A deadline judges the peer, not the worker: bytes that wait unread are
 * read and parsed first (nginx reads before it times a connection out),
 * so a first request, the rest of a head or the next keep-alive request
 * that came in time is answered. The deadlines then in force decide: a
 * head still incomplete keeps the start it had, a new request gets its
 * own. Called within the heartbeat's turn: a close releases nothing
 * until the walk of the list is over. */
static bool conn_expired_after_reading(struct conn *c, uint64_t now_ms)
{
    if (c->deadline_ms == 0 || now_ms < c->deadline_ms)
        return false;
    if (!conn_input_waiting(c))
        return true;
    conn_readable(c);
    return !c->closed && c->deadline_ms != 0 && now_ms >= c->deadline_ms;
}

/* min_response_data_rate, measured as the peer takes the bytes: from
 * the moment output blocked, what was in the socket then plus what was
 * written since, less what is still in it unacknowledged. Bytes written
 * say nothing of a slow reader: the kernel grows the send buffer to
 * megabytes and calls the socket writable only once much of it drained,
 * so an honest reader at 2 KB/s wrote nothing for seconds, and one at
 * 60 B/s looked fast while the buffer grew (Kestrel counts what the peer
 * took). One ioctl a heartbeat, and only for a connection whose output
 * has been blocked for the grace period. */
static bool conn_response_too_slow(struct conn *c, uint64_t now_ms)
{
    const struct config_data_rate *rate = &c->limits->min_response_data_rate;
    if (c->out_blocked_ms == 0 && c->transport->send_stalled != NULL &&
        c->transport->send_stalled(c)) {
        c->out_blocked_ms = now_ms; /* the rate is measured from here, as for a blocked write */
        c->out_blocked_bytes = conn_unacked(c);
        return false;
    }
    if (c->out_blocked_ms == 0 || rate->bytes_per_second == 0 ||
        now_ms < c->out_blocked_ms + rate->grace_period_ms)
        return false;
    uint64_t unacked = conn_unacked(c);
    uint64_t taken = c->out_blocked_bytes > unacked ? c->out_blocked_bytes - unacked : 0;
    return request_too_slow(rate, c->out_blocked_ms, taken, now_ms);
}

void conn_check_deadline(struct conn *c, uint64_t now_ms)
{
    if (c->closed)
        return;
    bool expired = conn_expired_after_reading(c, now_ms);
    if (c->closed)
        return;
    if (c->lingering || c->handshaking || c->proto == NULL) {
        if (expired)
            conn_expire(c);
        return;
    }
    if (conn_response_too_slow(c, now_ms)) {
        if (c->worker->slot != NULL)
            shm_slot_count(c->worker->slot, SHM_REJECT_RESPONSE_RATE, 1);
        conn_abort(c); /* a reset: the megabytes in the socket are not delivered first */
        return;
    }
    c->proto->tick(c, now_ms, expired);
}

void conn_drain(struct conn *c, uint64_t now_ms)
{
    if (c->closed || c->lingering || c->closing)
        return;
    if (c->proto != NULL)
        c->proto->drain(c);
    if (conn_idle(c)) {
        /* Lame-duck grace: a request already on its way is still answered
         * (with Connection: close) before the half-close. */
        uint64_t grace = now_ms + CONN_DRAIN_GRACE_MS;
        if (c->deadline_ms == 0 || c->deadline_ms > grace)
            c->deadline_ms = grace;
    }
}
