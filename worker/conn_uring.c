/*
 * conn_uring.c - a connection on the worker's io_uring: its handle, the
 * transport ops conn.c calls, and what each completion means for it;
 * see uring.h.
 *
 * The handle lives in struct conn, in the bytes the read event takes on
 * epoll (c->transport_inline): the kernel's requests name it, so a
 * connection released while some are in flight is an orphan, whose
 * memory goes back to the worker (conn_give_back) with the last
 * completion (or with the ring) rather than at the end of its turn.
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <poll.h>

#include <event2/event.h>

#include "common/log.h"
#include "worker/conn.h"
#include "worker/uring.h"
#include "worker/worker.h"

struct conn_uring {
    struct conn_uring *marked_next; /* in u->marked */
    char *send;                     /* the send's copy, staged or in the kernel */
    struct uring_send_block *send_block; /* it is cut from */
    union {
        struct {                    /* received, not read yet: buffer ids */
            int32_t head, tail;
            uint32_t off;           /* read of the head buffer */
        } held;
        struct {                    /* released, waiting for the kernel */
            struct conn_uring *next, **pprev;
        } orphan;
    };
    uint32_t send_off, send_len;
    uint32_t send_reap; /* u->reaps when the send was entered */
    int16_t error;      /* the receive's error, given once the held bytes are read */
    uint8_t ops;        /* requests in the kernel */
    bool released;      /* conn.c is done with the connection: an orphan */
    bool marked;        /* in u->marked */
    bool receiving;     /* the multishot receive is armed, until its last completion */
    bool cancelling;    /* its cancellation is entered */
    bool polling;       /* a POLLOUT poll is in the kernel (a file's sendfile was short) */
    bool send_staged;   /* a send to enter at the end of the turn */
    bool send_inflight; /* the send is in the kernel */
    bool eof;           /* the receive saw the peer's FIN */
    bool from_socket;   /* the receive found no buffer: read the socket itself until drained */
    bool wait_data;     /* the next receive waits for data before it takes a buffer */
    bool poll_by_event; /* the ring's polls fire at once: c->write_event waits */
};

_Static_assert(sizeof(struct conn_uring) <= sizeof(((struct conn *)0)->transport_inline),
               "the handle fits where the read event would be");

static struct conn_uring *handle_of(const struct conn *c)
{
    return (struct conn_uring *)(uintptr_t)c->transport_inline;
}

static struct conn *handle_conn(const struct conn_uring *h)
{
    return (struct conn *)((uintptr_t)h - offsetof(struct conn, transport_inline));
}

static struct uring *conn_ring(const struct conn *c)
{
    return c->worker->uring;
}

static void handle_mark(struct uring *u, struct conn_uring *h)
{
    if (h->marked)
        return;
    h->marked = true;
    h->marked_next = u->marked;
    u->marked = h;
    uring_defer(u);
}

/* A released connection goes once nothing refers to it any more. */
static void handle_maybe_free(struct conn_uring *h)
{
    if (!h->released || h->ops > 0 || h->marked)
        return;
    *h->orphan.pprev = h->orphan.next;
    if (h->orphan.next != NULL)
        h->orphan.next->orphan.pprev = h->orphan.pprev;
    conn_give_back(handle_conn(h));
}

static void handle_send_done(struct uring *u, struct conn_uring *h)
{
    if (h->send != NULL)
        uring_send_give(u, h->send_block);
    h->send = NULL;
    h->send_block = NULL;
    h->send_staged = false;
    h->send_off = h->send_len = 0;
}

/* ---- the transport ops ----------------------------------------------------- */

static void held_append(struct uring *u, struct conn_uring *h, unsigned id, uint32_t len)
{
    uring_buffer_hold(u, id);
    u->held_next[id] = -1;
    u->held_len[id] = len;
    if (h->held.tail < 0)
        h->held.head = (int32_t)id;
    else
        u->held_next[h->held.tail] = (int32_t)id;
    h->held.tail = (int32_t)id;
}

static void held_drop(struct uring *u, struct conn_uring *h)
{
    while (h->held.head >= 0) {
        int32_t id = h->held.head;
        h->held.head = u->held_next[id];
        uring_buffer_recycle(u, (unsigned)id);
    }
    h->held.tail = -1;
    h->held.off = 0;
}

/* A receive that found no provided buffer left the bytes in the socket
 * (every buffer held by connections that do not read them, or the pool
 * still growing): they are read from it, as on epoll, until a short read
 * says it is drained. The receive is then armed again, waiting for data
 * before it takes a buffer: armed at once, with none to take, it would
 * end with ENOBUFS at once, again and again, and no data would come of it. */
static ssize_t read_socket(struct conn *c, struct conn_uring *h, char *buf, size_t len,
                           bool *drained)
{
    ssize_t n = recv(c->fd, buf, len, MSG_DONTWAIT);
    int error = n < 0 ? errno : 0;
    *drained = n < (ssize_t)len && error != EINTR; /* short, the end, or an error */
    if (!*drained)
        return n;
    if (n == 0)
        h->eof = true;
    else if (error != 0 && error != EAGAIN)
        h->error = (int16_t)error;
    h->from_socket = false;
    h->wait_data = true;
    handle_mark(conn_ring(c), h);
    errno = error;
    return n;
}

/* What the receive brought, as read() would give it: the bytes first,
 * as many held buffers' as fit (the protocol parses them in one go),
 * then what is left in the socket, then the end or the error. */
static ssize_t uring_read(struct conn *c, char *buf, size_t len, bool *drained)
{
    struct conn_uring *h = handle_of(c);
    struct uring *u = conn_ring(c);
    if (h->held.head < 0) {
        if (h->from_socket)
            return read_socket(c, h, buf, len, drained);
        *drained = true;
        if (h->eof)
            return 0;
        errno = h->error != 0 ? h->error : EAGAIN;
        return -1;
    }
    size_t n = 0;
    while (n < len && h->held.head >= 0) {
        int32_t id = h->held.head;
        size_t avail = u->held_len[id] - h->held.off;
        size_t take = len - n < avail ? len - n : avail;
        memcpy(buf + n, uring_buffer(u, (unsigned)id) + h->held.off, take);
        n += take;
        h->held.off += (uint32_t)take;
        if (h->held.off < u->held_len[id])
            break;
        h->held.head = u->held_next[id];
        if (h->held.head < 0)
            h->held.tail = -1;
        h->held.off = 0;
        uring_buffer_recycle(u, (unsigned)id);
    }
    *drained = h->held.head < 0 && !h->eof && h->error == 0 && !h->from_socket;
    return (ssize_t)n;
}

/* A send still in the kernel after a batch of completions was handled:
 * a send that finds room completes as it is entered, and its completion
 * comes before any posted later, so this one waits for room in a full
 * socket. */
static bool uring_send_stalled(const struct conn *c)
{
    const struct conn_uring *h = handle_of(c);
    return h->send_inflight && h->send_reap != conn_ring(c)->reaps;
}

/* The byte segments at the head of the queue, up to a file segment or
 * URING_SEND_MAX bytes. */
static size_t send_length(const struct outq *q)
{
    size_t len = 0;
    for (size_t i = q->head; i < q->count && len < URING_SEND_MAX; i++) {
        if (q->segments[i].kind == OUTQ_FILE)
            break;
        len += q->segments[i].len;
    }
    return len < URING_SEND_MAX ? len : URING_SEND_MAX;
}

/* Copies them into send memory cut for their length (none when a file
 * is at the head; empty segments before it are passed). */
static bool send_fill(struct uring *u, struct conn_uring *h, struct outq *q)
{
    size_t len = send_length(q);
    if (len > 0 && (h->send = uring_send_take(u, len, &h->send_block)) == NULL)
        return false;
    outq_advance(q, 0);
    for (size_t used = 0; used < len;) {
        const struct outq_segment *s = &q->segments[q->head];
        size_t take = s->len < len - used ? s->len : len - used;
        memcpy(h->send + used, s->kind == OUTQ_COPY ? q->buffer + s->offset : s->ptr, take);
        used += take;
        outq_advance(q, take);
    }
    h->send_off = 0;
    h->send_len = (uint32_t)len;
    return true;
}

/* Byte segments leave by a send at the end of the turn (copied then, so
 * that all a turn made for the connection leaves together); a file at
 * the head by sendfile now, once no send is in the kernel (order). */
static enum outq_flush_result uring_flush(struct conn *c, uint64_t *written)
{
    struct conn_uring *h = handle_of(c);
    struct outq *q = &c->out;
    *written = 0;
    if (h->send != NULL || h->send_staged) /* its completion flushes again */
        return q->pending_bytes >= OUTQ_HIGH_WATER || uring_send_stalled(c) ? OUTQ_BLOCKED
                                                                           : OUTQ_SENDING;
    if (outq_empty(q))
        return OUTQ_FLUSHED;
    if (q->segments[q->head].kind == OUTQ_FILE)
        return outq_flush(q, c->fd, written);
    h->send_staged = true;
    handle_mark(conn_ring(c), h);
    return OUTQ_SENDING;
}

static bool uring_pending(const struct conn *c)
{
    const struct conn_uring *h = handle_of(c);
    return h->held.head >= 0 || h->eof || h->error != 0 || h->from_socket;
}

/* A send in the kernel counts as written, as bytes in the socket buffer
 * do on epoll (a protocol judging an idle connection must not see its
 * last PING ack as output still owed); one still to enter does not. */
static bool uring_output_waiting(const struct conn *c)
{
    const struct conn_uring *h = handle_of(c);
    return h->send_staged || (h->send != NULL && !h->send_inflight);
}

/* c->reading or c->writing changed, or held input is to be read: the end
 * of the turn arms or cancels, and reads. */
static void uring_watch(struct conn *c)
{
    handle_mark(conn_ring(c), handle_of(c));
}

/* At release, before conn.c closes the descriptor: what the kernel still
 * holds is cancelled now, so that the close really closes the socket, and
 * the connection stays an orphan until the completions say the kernel
 * is done with it (a handle still marked waits for the end-of-turn job). */
static int uring_close(struct conn *c)
{
    struct conn_uring *h = handle_of(c);
    struct uring *u = conn_ring(c);
    held_drop(u, h);
    h->released = true;
    if (!h->send_inflight)
        handle_send_done(u, h);
    if (h->ops == 0 && !h->marked)
        return SK_OK;
    if (h->ops > 0) {
        struct io_uring_sqe *sqe = uring_sqe(u);
        if (sqe != NULL) {
            io_uring_prep_cancel_fd(sqe, c->fd, IORING_ASYNC_CANCEL_ALL);
            io_uring_sqe_set_data64(sqe, 0);
            uring_submit_now(u);
        }
    }
    h->orphan.next = u->orphans;
    if (u->orphans != NULL)
        u->orphans->orphan.pprev = &h->orphan.next;
    u->orphans = h;
    h->orphan.pprev = &u->orphans;
    return SK_AGAIN;
}

static const struct conn_transport conn_uring_transport = {
    .handshake = NULL,
    .read = uring_read,
    .flush = uring_flush,
    .pending = uring_pending,
    .output_waiting = uring_output_waiting,
    .alpn = conn_transport_no_alpn,
    .peer_subject = conn_transport_no_subject,
    .shutdown = conn_transport_nothing,
    .close = uring_close,
    .watch = uring_watch,
    .send_stalled = uring_send_stalled,
};

void conn_uring_attach(struct conn *c)
{
    struct conn_uring *h = handle_of(c);
    memset(c->transport_inline, 0, sizeof c->transport_inline); /* the read event is never added */
    h->held.head = h->held.tail = -1;
    c->transport = &conn_uring_transport;
}

/* ---- submissions at the end of the turn ------------------------------------ */

static uint64_t handle_data(const struct conn_uring *h, enum uring_op op)
{
    return (uint64_t)(uintptr_t)h | (uint64_t)op;
}

static bool submit_send(struct uring *u, struct conn_uring *h, struct conn *c)
{
    h->send_staged = false;
    if (h->send_inflight)
        return true; /* its completion enters the rest */
    if (h->send == NULL && !send_fill(u, h, &c->out))
        return false;
    if (h->send == NULL) { /* a file at the head: sendfile, by a flush */
        conn_wake(c);
        return true;
    }
    struct io_uring_sqe *sqe = uring_sqe(u);
    if (sqe == NULL)
        return false;
    io_uring_prep_send(sqe, c->fd, h->send + h->send_off, h->send_len - h->send_off,
                       MSG_NOSIGNAL);
    io_uring_sqe_set_data64(sqe, handle_data(h, URING_OP_SEND));
    h->send_inflight = true;
    h->send_reap = u->reaps;
    h->ops++;
    return true;
}

static bool submit_receive(struct uring *u, struct conn_uring *h, struct conn *c)
{
    struct io_uring_sqe *sqe;
    if (c->reading && !h->receiving && !h->eof && h->error == 0 && !h->from_socket) {
        if ((sqe = uring_sqe(u)) == NULL)
            return false;
        io_uring_prep_recv_multishot(sqe, c->fd, NULL, 0, 0);
        if (h->wait_data)
            sqe->ioprio |= IORING_RECVSEND_POLL_FIRST;
        h->wait_data = false;
        sqe->flags |= IOSQE_BUFFER_SELECT;
        sqe->buf_group = 0;
        io_uring_sqe_set_data64(sqe, handle_data(h, URING_OP_RECV));
        h->receiving = true;
        h->ops++;
    } else if (!c->reading && h->receiving && !h->cancelling) {
        if ((sqe = uring_sqe(u)) == NULL)
            return false;
        io_uring_prep_cancel64(sqe, handle_data(h, URING_OP_RECV), 0);
        io_uring_sqe_set_data64(sqe, 0);
        h->cancelling = true;
    }
    return true;
}

static void on_writable_event(evutil_socket_t fd, short what, void *arg)
{
    struct conn *c = arg;
    struct turn *t = &c->worker->turn;
    (void)fd, (void)what;
    turn_enter(t); /* c is released no sooner than at its turn_leave */
    if (c->writing)
        conn_transport_event(c, EV_WRITE);
    if (!c->closed && c->writing)
        handle_mark(conn_ring(c), handle_of(c));
    turn_leave(t);
}

/* A ring poll always reports EPOLLRDHUP (the kernel's IO_POLL_UNMASK):
 * once the peer half-closed, it would fire at once for ever, so room is
 * waited for with a one-shot libevent event instead (conn.c frees it). */
static bool submit_poll_event(struct conn *c)
{
    if (c->write_event == NULL &&
        (c->write_event = event_new(c->worker->base, c->fd, EV_WRITE, on_writable_event, c)) ==
            NULL)
        return false;
    return event_add(c->write_event, NULL) == 0;
}

static bool submit_poll(struct uring *u, struct conn_uring *h, struct conn *c)
{
    if (!c->writing || h->send != NULL || h->polling)
        return true;
    if (h->poll_by_event)
        return submit_poll_event(c);
    struct io_uring_sqe *sqe = uring_sqe(u);
    if (sqe == NULL)
        return false;
    io_uring_prep_poll_add(sqe, c->fd, POLLOUT);
    io_uring_sqe_set_data64(sqe, handle_data(h, URING_OP_POLL));
    h->polling = true;
    h->ops++;
    return true;
}

/* A lingering connection's receive found no buffer: conn.c discards
 * what the socket holds (conn_linger_read, which may close it), and the
 * receive waits for more. */
static bool linger_from_socket(struct conn_uring *h, struct conn *c)
{
    h->from_socket = false;
    h->wait_data = true;
    conn_transport_event(c, EV_READ);
    return !c->closed;
}

void conn_uring_submit(struct uring *u, struct conn_uring *h)
{
    u->marked = h->marked_next;
    h->marked_next = NULL;
    h->marked = false;
    struct conn *c = handle_conn(h);
    if (c->closed) {
        handle_maybe_free(h);
        return;
    }
    if (c->lingering && h->from_socket && !linger_from_socket(h, c))
        return;
    bool ok = submit_receive(u, h, c) && (!h->send_staged || submit_send(u, h, c)) &&
              submit_poll(u, h, c);
    if (!ok) {
        log_limited(LOG_ERROR, ENOMEM, "io_uring: no submission entry or send memory");
        conn_close(c);
        return;
    }
    if (c->reading && !c->lingering && uring_pending(c))
        conn_transport_event(c, EV_READ); /* held input reading resumed on (conn_read_held) */
}

/* ---- completions ----------------------------------------------------------- */

static void on_receive(struct uring *u, struct conn_uring *h, int res, uint32_t flags)
{
    struct conn *c = handle_conn(h); /* closed, and maybe released: an orphan */
    if ((flags & IORING_CQE_F_MORE) == 0) {
        h->receiving = h->cancelling = false;
        h->ops--;
    }
    if (res > 0) {
        unsigned id = flags >> IORING_CQE_BUFFER_SHIFT;
        if (c->closed || c->lingering)
            uring_buffer_recycle(u, id); /* a lingering connection discards */
        else
            held_append(u, h, id, (uint32_t)res);
    } else if (res == 0) {
        h->eof = true;
    } else if (res == -ENOBUFS) {
        uring_buffers_grow(u); /* for the receives to come */
        h->from_socket = true; /* this one's bytes wait in the socket */
    } else if (res != -ECANCELED) {
        h->error = (int16_t)-res;
    }
    if (c->closed)
        return;
    if (c->lingering && (h->eof || h->error != 0)) {
        conn_close(c); /* the peer has everything it will read */
        return;
    }
    if (!h->receiving) /* out of buffers, cancelled, or ended: armed again if wanted */
        handle_mark(u, h);
    if (c->reading && !c->lingering && uring_pending(c))
        conn_transport_event(c, EV_READ);
}

static void on_send(struct uring *u, struct conn_uring *h, int res)
{
    struct conn *c = handle_conn(h);
    h->send_inflight = false;
    h->ops--;
    if (c->closed || res < 0) {
        handle_send_done(u, h);
        if (!c->closed) {
            c->peer_reset = true;
            conn_close(c); /* EPIPE, ECONNRESET: the peer is gone */
        }
        return;
    }
    conn_count_output(c, (uint64_t)res);
    h->send_off += (uint32_t)res;
    if (h->send_off < h->send_len) { /* short: the rest at the end of the turn */
        h->send_staged = true;
        handle_mark(u, h);
        return;
    }
    handle_send_done(u, h);
    conn_transport_event(c, EV_WRITE);
}

static void on_poll(struct uring *u, struct conn_uring *h, int res)
{
    struct conn *c = handle_conn(h);
    h->polling = false;
    h->ops--;
    if (c->closed || !c->writing)
        return;
    if (res > 0 && (res & (POLLOUT | POLLERR | POLLHUP)) == 0)
        h->poll_by_event = true; /* EPOLLRDHUP alone: the peer half-closed */
    conn_transport_event(c, EV_WRITE);
    if (!c->closed)
        handle_mark(u, h); /* one-shot: polled again if still writing */
}

void conn_uring_complete(struct uring *u, struct conn_uring *h, enum uring_op op, int res,
                         uint32_t flags)
{
    if (op == URING_OP_RECV)
        on_receive(u, h, res, flags);
    else if (op == URING_OP_SEND)
        on_send(u, h, res);
    else
        on_poll(u, h, res);
    handle_maybe_free(h);
}

void conn_uring_forget_all(struct uring *u)
{
    while (u->orphans != NULL) {
        struct conn_uring *h = u->orphans;
        u->orphans = h->orphan.next;
        if (h->send != NULL)
            uring_send_give(u, h->send_block);
        conn_give_back(handle_conn(h));
    }
}
