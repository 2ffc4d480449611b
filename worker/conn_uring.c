/*
 * conn_uring.c - the io_uring transport for plain TCP; see conn_uring.h.
 *
 * A connection's ring state lives in a handle apart from struct conn:
 * requests still in the kernel when the connection closes (its multishot
 * receive until the cancellation lands, a send) complete against the
 * handle, which is freed with the last of them, while struct conn is
 * reused at once.
 */
#include "worker/conn_uring.h"

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <event2/event.h>
#include <liburing.h>

#include "common/log.h"
#include "common/error.h"
#include "worker/conn.h"
#include "worker/worker.h"

#define URING_ENTRIES 1024
#define URING_BUFFERS 256              /* provided receive buffers (a power of two) */
#define URING_BUFFER_SIZE (16 * 1024)
#define URING_BUFFER_GROUP 0
#define URING_SEND_BUFFER (16 * 1024)  /* copied per send submission */
#define URING_DISPATCH_ROUNDS 8

enum uring_op { URING_RECV = 1, URING_SEND = 2, URING_POLL = 3 };

struct conn_uring_handle {
    struct conn *conn;  /* NULL once the connection closed */
    int fd;
    bool receiving;     /* the multishot receive is armed */
    bool sending;       /* a send is in the kernel */
    bool polling;       /* waiting for room after a short sendfile */
    uint32_t send_len, send_off;
    char send_buf[URING_SEND_BUFFER];
};

struct conn_uring {
    struct io_uring ring;
    struct io_uring_buf_ring *buffers;
    char *buffer_memory;
    int eventfd;
    struct event *event;
    bool dispatching;   /* submissions wait for the end of the dispatch */
};

static void uring_handle_maybe_free(struct conn_uring_handle *h)
{
    if (h->conn == NULL && !h->receiving && !h->sending && !h->polling)
        free(h);
}

static struct io_uring_sqe *uring_sqe(struct conn_uring *u)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&u->ring);
    if (sqe == NULL) {
        io_uring_submit(&u->ring);
        sqe = io_uring_get_sqe(&u->ring);
    }
    return sqe;
}

/* Outside a dispatch nothing else would submit soon: submit now. */
static void uring_kick(struct conn_uring *u)
{
    if (!u->dispatching)
        io_uring_submit(&u->ring);
}

static int uring_arm_receive(struct conn_uring *u, struct conn_uring_handle *h)
{
    struct io_uring_sqe *sqe = uring_sqe(u);
    if (sqe == NULL)
        return SK_ERROR;
    io_uring_prep_recv_multishot(sqe, h->fd, NULL, 0, 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = URING_BUFFER_GROUP;
    io_uring_sqe_set_data64(sqe, (uint64_t)(uintptr_t)h | URING_RECV);
    h->receiving = true;
    uring_kick(u);
    return SK_OK;
}

static int uring_submit_send(struct conn_uring *u, struct conn_uring_handle *h)
{
    struct io_uring_sqe *sqe = uring_sqe(u);
    if (sqe == NULL)
        return SK_ERROR;
    io_uring_prep_send(sqe, h->fd, h->send_buf + h->send_off, h->send_len - h->send_off,
                       MSG_NOSIGNAL);
    io_uring_sqe_set_data64(sqe, (uint64_t)(uintptr_t)h | URING_SEND);
    h->sending = true;
    uring_kick(u);
    return SK_OK;
}

static int uring_poll_writable(struct conn_uring *u, struct conn_uring_handle *h)
{
    struct io_uring_sqe *sqe = uring_sqe(u);
    if (sqe == NULL)
        return SK_ERROR;
    io_uring_prep_poll_add(sqe, h->fd, POLLOUT);
    io_uring_sqe_set_data64(sqe, (uint64_t)(uintptr_t)h | URING_POLL);
    h->polling = true;
    uring_kick(u);
    return SK_OK;
}

static void uring_recycle(struct conn_uring *u, unsigned id)
{
    io_uring_buf_ring_add(u->buffers, u->buffer_memory + (size_t)id * URING_BUFFER_SIZE,
                          URING_BUFFER_SIZE, (unsigned short)id,
                          io_uring_buf_ring_mask(URING_BUFFERS), 0);
    io_uring_buf_ring_advance(u->buffers, 1);
}

static void uring_on_receive(struct conn_uring *u, struct conn_uring_handle *h,
                             const struct io_uring_cqe *cqe)
{
    bool more = (cqe->flags & IORING_CQE_F_MORE) != 0;
    if (!more)
        h->receiving = false;
    if (cqe->res > 0) {
        unsigned id = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
        if (h->conn != NULL)
            conn_received(h->conn, u->buffer_memory + (size_t)id * URING_BUFFER_SIZE, cqe->res);
        uring_recycle(u, id);
    } else if (cqe->res == 0 || (cqe->res != -ENOBUFS && cqe->res != -ECANCELED)) {
        if (h->conn != NULL)
            conn_received(h->conn, NULL, cqe->res);
        return;
    }
    /* Out of buffers, or a multishot receive the kernel ended: again. */
    if (!h->receiving && h->conn != NULL && uring_arm_receive(u, h) != SK_OK)
        conn_close(h->conn);
}

static void uring_on_send(struct conn_uring_handle *h, const struct io_uring_cqe *cqe,
                          struct conn_uring *u)
{
    if ((io_uring_cqe_get_data64(cqe) & 7) == URING_POLL) {
        h->polling = false;
        if (h->conn != NULL)
            conn_output_resume(h->conn);
        return;
    }
    h->sending = false;
    if (h->conn == NULL)
        return;
    if (cqe->res < 0) {
        conn_close(h->conn);
        return;
    }
    h->send_off += (uint32_t)cqe->res;
    if (h->send_off < h->send_len) {
        if (uring_submit_send(u, h) != SK_OK)
            conn_close(h->conn);
        return;
    }
    h->send_off = h->send_len = 0;
    conn_output_resume(h->conn);
}

static unsigned uring_reap(struct conn_uring *u)
{
    struct io_uring_cqe *cqe;
    unsigned head, seen = 0;
    io_uring_for_each_cqe(&u->ring, head, cqe) {
        seen++;
        uint64_t data = io_uring_cqe_get_data64(cqe);
        struct conn_uring_handle *h = (struct conn_uring_handle *)(uintptr_t)(data & ~(uint64_t)7);
        if (h == NULL)
            continue; /* a cancellation's own completion */
        if ((data & 7) == URING_RECV)
            uring_on_receive(u, h, cqe);
        else
            uring_on_send(h, cqe, u);
        uring_handle_maybe_free(h);
    }
    io_uring_cq_advance(&u->ring, seen);
    return seen;
}

/* The eventfd is edge-triggered: it is never read, each completion batch
 * wakes the loop once. Submitting also runs the kernel's deferred
 * completion work (sends mostly complete inline): reap and submit until
 * nothing is left to submit. */
static void uring_on_event(evutil_socket_t fd, short what, void *arg)
{
    struct conn_uring *u = arg;
    (void)fd;
    (void)what;
    u->dispatching = true;
    for (int round = 0; round < URING_DISPATCH_ROUNDS; round++) {
        io_uring_submit_and_get_events(&u->ring);
        uring_reap(u);
        if (io_uring_sq_ready(&u->ring) == 0)
            break; /* later completions signal the eventfd again */
    }
    u->dispatching = false;
    if (io_uring_sq_ready(&u->ring) > 0)
        io_uring_submit(&u->ring);
}

static int uring_buffers_setup(struct conn_uring *u)
{
    int rc;
    u->buffer_memory = malloc((size_t)URING_BUFFERS * URING_BUFFER_SIZE);
    if (u->buffer_memory == NULL)
        return SK_ERROR;
    if (posix_memalign((void **)&u->buffers, 4096, URING_BUFFERS * sizeof(struct io_uring_buf)) != 0)
        return SK_ERROR;
    io_uring_buf_ring_init(u->buffers);
    struct io_uring_buf_reg reg = {
        .ring_addr = (uint64_t)(uintptr_t)u->buffers,
        .ring_entries = URING_BUFFERS,
        .bgid = URING_BUFFER_GROUP,
    };
    if ((rc = io_uring_register_buf_ring(&u->ring, &reg, 0)) != 0) {
        errno = -rc;
        return SK_ERROR;
    }
    for (unsigned i = 0; i < URING_BUFFERS; i++)
        io_uring_buf_ring_add(u->buffers, u->buffer_memory + (size_t)i * URING_BUFFER_SIZE,
                              URING_BUFFER_SIZE, (unsigned short)i,
                              io_uring_buf_ring_mask(URING_BUFFERS), (int)i);
    io_uring_buf_ring_advance(u->buffers, URING_BUFFERS);
    return SK_OK;
}

static void uring_free(struct conn_uring *u)
{
    if (u->event != NULL)
        event_free(u->event);
    if (u->ring.ring_fd > 0)
        io_uring_queue_exit(&u->ring);
    if (u->eventfd >= 0)
        close(u->eventfd);
    free(u->buffers);
    free(u->buffer_memory);
    free(u);
}

int conn_uring_start(struct worker *w)
{
    const char *want = getenv("SAKER_TRANSPORT");
    if (want == NULL || strcmp(want, "io_uring") != 0)
        return SK_DECLINED;
    struct conn_uring *u = calloc(1, sizeof *u);
    if (u == NULL)
        return SK_DECLINED;
    u->eventfd = -1;
    struct io_uring_params params = {
        .flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_COOP_TASKRUN | IORING_SETUP_SUBMIT_ALL,
    };
    int rc = io_uring_queue_init_params(URING_ENTRIES, &u->ring, &params);
    if (rc != 0) {
        u->ring.ring_fd = -1;
        log_errno(LOG_WARN, -rc, "io_uring: unavailable, staying on epoll");
        uring_free(u);
        return SK_DECLINED;
    }
    u->eventfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (u->eventfd < 0 || io_uring_register_eventfd(&u->ring, u->eventfd) != 0 ||
        uring_buffers_setup(u) != SK_OK ||
        (u->event = event_new(w->base, u->eventfd, EV_READ | EV_PERSIST | EV_ET, uring_on_event,
                              u)) == NULL ||
        event_add(u->event, NULL) != 0) {
        log_errno(LOG_WARN, errno, "io_uring: set-up failed, staying on epoll");
        uring_free(u);
        return SK_DECLINED;
    }
    w->uring = u;
    return SK_OK;
}

void conn_uring_stop(struct worker *w)
{
    if (w->uring == NULL)
        return;
    uring_free(w->uring);
    w->uring = NULL;
}

int conn_uring_attach(struct conn *c)
{
    struct conn_uring_handle *h = malloc(sizeof *h);
    if (h == NULL)
        return SK_ERROR;
    memset(h, 0, offsetof(struct conn_uring_handle, send_buf));
    h->conn = c;
    h->fd = c->fd;
    if (uring_arm_receive(c->worker->uring, h) != SK_OK) {
        free(h);
        return SK_ERROR;
    }
    c->uring = h;
    c->transport = &conn_uring_transport;
    return SK_OK;
}

/* Copies what the send buffer takes and submits it. A file at the head
 * goes out with sendfile when no send is in the kernel (order). */
static enum outq_flush_result uring_flush(struct conn *c, uint64_t *written)
{
    struct conn_uring_handle *h = c->uring;
    struct outq *q = &c->out;
    *written = 0;
    if (h->sending || h->polling)
        return OUTQ_BLOCKED; /* its completion flushes again */
    if (outq_empty(q))
        return OUTQ_FLUSHED;
    if (q->segments[q->head].kind == OUTQ_FILE) {
        enum outq_flush_result r = outq_flush(q, c->fd, written);
        if (r == OUTQ_BLOCKED && uring_poll_writable(c->worker->uring, h) != SK_OK)
            return OUTQ_FAILED;
        return r;
    }
    size_t used = 0;
    while (!outq_empty(q) && used < sizeof h->send_buf) {
        const struct outq_segment *s = &q->segments[q->head];
        if (s->kind == OUTQ_FILE)
            break;
        size_t take = s->len < sizeof h->send_buf - used ? s->len : sizeof h->send_buf - used;
        memcpy(h->send_buf + used, s->kind == OUTQ_COPY ? q->buffer + s->offset : s->ptr, take);
        used += take;
        outq_advance(q, take);
    }
    h->send_len = (uint32_t)used;
    h->send_off = 0;
    if (uring_submit_send(c->worker->uring, h) != SK_OK)
        return OUTQ_FAILED;
    *written = used;
    return OUTQ_BLOCKED;
}

static ssize_t uring_read(struct conn *c, char *buf, size_t len, bool *drained)
{
    (void)c;
    (void)buf;
    (void)len;
    *drained = true;
    errno = EAGAIN; /* data comes with the receive's completions */
    return -1;
}

static void uring_nothing(struct conn *c)
{
    (void)c;
}

/* The receive is cancelled; the handle outlives the connection until the
 * kernel is done with it. */
static void uring_close(struct conn *c)
{
    struct conn_uring_handle *h = c->uring;
    struct conn_uring *u = c->worker->uring;
    c->uring = NULL;
    h->conn = NULL;
    if (h->receiving) {
        struct io_uring_sqe *sqe = uring_sqe(u);
        if (sqe != NULL) {
            io_uring_prep_cancel64(sqe, (uint64_t)(uintptr_t)h | URING_RECV, 0);
            io_uring_sqe_set_data64(sqe, 0);
            uring_kick(u);
        }
    }
    /* During a dispatch the connection closing is the one whose
     * completion is being handled: the dispatch frees the handle after. */
    if (!u->dispatching)
        uring_handle_maybe_free(h);
}

const struct conn_transport conn_uring_transport = {
    .read = uring_read,
    .flush = uring_flush,
    .shutdown = uring_nothing,
    .close = uring_close,
};
