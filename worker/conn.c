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
#include "worker/worker.h"

#define CONN_LINGER_MS 2000
#define CONN_DRAIN_GRACE_MS 1000
#define CONN_READS_PER_WAKEUP 16
#define CONN_FREE_MAX 1024

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

static void conn_set_writing(struct conn *c, bool on)
{
    if (on == c->writing)
        return;
    c->writing = on;
    if (on)
        event_add(&c->write_event, NULL);
    else
        event_del(&c->write_event);
}

/* The deadline that applies in the connection's current state. */
static void conn_update_deadline(struct conn *c)
{
    const struct config_limits *limits = &c->worker->config->limits;
    if (c->lingering)
        return;
    if (h1_reading_head(&c->h1))
        c->deadline_ms = c->h1.request_started_ms + limits->request_headers_timeout_ms;
    else /* idle, or waiting for the peer to read or send: no progress for this long closes */
        c->deadline_ms = clock_monotonic_ms() + limits->keep_alive_timeout_ms;
    if (c->worker->draining)
        conn_drain(c, clock_monotonic_ms());
}

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

int conn_open(struct worker *w, int fd, const struct worker_listener *listener)
{
    struct conn *c = conn_take(w);
    if (c == NULL) {
        log_errno(LOG_ERROR, errno, "malloc(conn)");
        close(fd);
        return SK_ERROR;
    }
    memset(c, 0, sizeof *c);
    c->worker = w;
    c->fd = fd;
    outq_init(&c->out);
    h1_init(&c->h1, w, &c->out);
    event_assign(&c->read_event, w->base, fd, EV_READ | EV_PERSIST, on_readable, c);
    event_assign(&c->write_event, w->base, fd, EV_WRITE | EV_PERSIST, on_writable, c);
    c->next = w->conns;
    if (w->conns != NULL)
        w->conns->prev = c;
    w->conns = c;
    w->conn_count++;
    if (w->slot != NULL) {
        shm_slot_count(w->slot, SHM_CONNECTIONS_ACCEPTED, 1);
        shm_slot_gauge_add(&w->slot->connections_open, 1);
    }
    conn_set_reading(c, true);
    conn_update_deadline(c);
    (void)listener;
    return SK_OK;
}

void conn_close(struct conn *c)
{
    struct worker *w = c->worker;
    event_del(&c->read_event);
    event_del(&c->write_event);
    close(c->fd);
    outq_clear(&c->out);
    h1_destroy(&c->h1);
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

static void conn_consume(struct conn *c, const char *data, size_t len)
{
    if (c->worker->slot != NULL)
        shm_slot_count(c->worker->slot, SHM_BYTES_IN, len);
    if (h1_feed(&c->h1, data, len) == H1_CLOSE) {
        c->closing = true;
        conn_set_reading(c, false);
    }
}

static void on_readable(evutil_socket_t fd, short what, void *arg)
{
    struct conn *c = arg;
    struct worker *w = c->worker;
    if (c->lingering) {
        conn_linger_read(c);
        return;
    }
    for (int i = 0; i < CONN_READS_PER_WAKEUP && !c->closing; i++) {
        ssize_t n = read(fd, w->read_buffer, w->read_buffer_size);
        if (n > 0) {
            conn_consume(c, w->read_buffer, (size_t)n);
            if ((size_t)n < w->read_buffer_size)
                break; /* a short read: the socket is drained */
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            break;
        /* EOF or a reset: nothing more will be read. An incomplete request
         * gets no response; complete ones already queued theirs. */
        h1_on_eof(&c->h1);
        if (n == 0 && !outq_empty(&c->out)) {
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
    conn_flush(arg);
}

static void conn_flush(struct conn *c)
{
    uint64_t written = 0;
    enum outq_flush_result r = outq_flush(&c->out, c->fd, &written);
    if (written > 0 && c->worker->slot != NULL)
        shm_slot_count(c->worker->slot, SHM_BYTES_OUT, written);
    switch (r) {
    case OUTQ_FAILED:
        conn_close(c);
        return;
    case OUTQ_BLOCKED:
        /* Stop reading until the peer takes what it asked for. */
        conn_set_reading(c, false);
        conn_set_writing(c, true);
        break;
    case OUTQ_FLUSHED:
        conn_set_writing(c, false);
        if (c->closing) {
            conn_linger(c);
            return;
        }
        conn_set_reading(c, true);
        break;
    }
    conn_update_deadline(c);
}

void conn_check_deadline(struct conn *c, uint64_t now_ms)
{
    if (c->deadline_ms == 0 || now_ms < c->deadline_ms)
        return;
    if (c->lingering) {
        conn_close(c);
        return;
    }
    if (h1_idle(&c->h1) && outq_empty(&c->out)) {
        if (c->worker->draining)
            conn_linger(c); /* the end of the lame-duck grace */
        else
            conn_close(c);
        return;
    }
    if (h1_reading_head(&c->h1)) {
        h1_timeout(&c->h1);
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
    if (h1_idle(&c->h1) && outq_empty(&c->out)) {
        /* Lame-duck grace: a request already on its way is still answered
         * (with Connection: close) before the half-close. */
        uint64_t grace = now_ms + CONN_DRAIN_GRACE_MS;
        if (c->deadline_ms == 0 || c->deadline_ms > grace)
            c->deadline_ms = grace;
    }
}
