/*
 * uring.c - a worker's io_uring: set-up and fallback, the completion
 * event, the provided receive buffers, the send buffer pool and the
 * end-of-turn submission; see uring.h. What a completion means for a
 * connection is conn_uring.c's.
 */
#include "worker/uring.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include <event2/event.h>

#include "common/log.h"
#include "worker/worker.h"

/* Submission entries: a turn's sends and receives, entered early when
 * more; completions four times as many, posted between two reaps (the
 * kernel keeps any more until there is room). Their pages are touched
 * in turn, so both stay small. */
#define URING_ENTRIES 256
#define URING_CQ_ENTRIES 1024
#define URING_BUFFER_GROUP 0
#define URING_INLINE_ROUNDS 4
#define URING_BUFFER_MEMORY ((size_t)URING_BUFFERS_MAX * URING_BUFFER_SIZE)

/* ---- buffers ------------------------------------------------------------- */

char *uring_buffer(struct uring *u, unsigned id)
{
    return u->buffer_memory + (size_t)id * URING_BUFFER_SIZE;
}

static bool buffer_held(const struct uring *u, unsigned id)
{
    return (u->held_ids[id / 64] >> (id % 64)) & 1;
}

void uring_buffer_hold(struct uring *u, unsigned id)
{
    u->held_ids[id / 64] |= (uint64_t)1 << (id % 64);
}

/* Made visible to the kernel in one tail update per batch (uring_flush_recycled). */
static void buffer_provide(struct uring *u, unsigned id)
{
    io_uring_buf_ring_add(u->buffers, uring_buffer(u, id), URING_BUFFER_SIZE,
                          (unsigned short)id, io_uring_buf_ring_mask(URING_BUFFERS_MAX),
                          (int)u->recycled);
    u->recycled++;
}

/* The pages wholly in ids [first, end) that no connection holds go back
 * to the kernel (MADV_DONTNEED: out of Rss now, zero pages if touched
 * again); only ids at or above buffer_count are passed. */
static void buffers_release(struct uring *u, unsigned first, unsigned end)
{
    size_t per_page = u->page_size / URING_BUFFER_SIZE;
    if (per_page == 0)
        return;
    unsigned id = (unsigned)((first + per_page - 1) / per_page * per_page);
    for (; id + per_page <= end; id += (unsigned)per_page) {
        unsigned held = 0;
        for (unsigned i = id; i < id + per_page; i++)
            held += buffer_held(u, i);
        if (held == 0)
            madvise(uring_buffer(u, id), u->page_size, MADV_DONTNEED);
    }
}

void uring_buffer_recycle(struct uring *u, unsigned id)
{
    u->held_ids[id / 64] &= ~((uint64_t)1 << (id % 64));
    if (id < u->buffer_count) {
        buffer_provide(u, id);
        return;
    }
    /* Held across a shrink, read now: its page goes once its neighbours
     * are free too. */
    size_t per_page = u->page_size / URING_BUFFER_SIZE;
    if (per_page > 0) {
        unsigned first = (unsigned)(id / per_page * per_page);
        buffers_release(u, first, first + (unsigned)per_page);
    }
}

static void uring_flush_recycled(struct uring *u)
{
    if (u->recycled == 0)
        return;
    io_uring_buf_ring_advance(u->buffers, (int)u->recycled);
    u->recycled = 0;
}

/* The ring of provided buffers, registered empty, then ids below
 * buffer_count that no connection holds (a held one comes back when it
 * is read). */
static int buffers_register(struct uring *u)
{
    io_uring_buf_ring_init(u->buffers);
    u->recycled = 0;
    struct io_uring_buf_reg reg = {
        .ring_addr = (uint64_t)(uintptr_t)u->buffers,
        .ring_entries = URING_BUFFERS_MAX,
        .bgid = URING_BUFFER_GROUP,
    };
    int rc = io_uring_register_buf_ring(&u->ring, &reg, 0);
    if (rc != 0) {
        errno = -rc;
        return SK_ERROR;
    }
    for (unsigned id = 0; id < u->buffer_count; id++)
        if (!buffer_held(u, id))
            buffer_provide(u, id);
    uring_flush_recycled(u);
    return SK_OK;
}

/* Once a batch: doubles the buffers; or, when a new registration failed
 * (uring_buffers_shrink, every receive then ends with ENOBUFS), tries it
 * again. */
void uring_buffers_grow(struct uring *u)
{
    if (u->grown_reap == u->reaps)
        return; /* the whole batch lacked them: one doubling answers it */
    u->grown_reap = u->reaps;
    if (u->buffers_lost) {
        if (buffers_register(u) == SK_OK)
            u->buffers_lost = false;
        else
            log_limited(LOG_ERROR, errno, "io_uring_register_buf_ring");
        return;
    }
    if (u->buffer_count == URING_BUFFERS_MAX)
        return;
    unsigned count = u->buffer_count * 2;
    for (unsigned id = u->buffer_count; id < count; id++)
        if (!buffer_held(u, id)) /* held since a shrink: given when read */
            buffer_provide(u, id);
    u->buffer_count = count;
}

/* The buffers' memory is mapped rather than malloc'd: its pages are
 * touched only as buffers are provided, and released one by one. */
static int uring_buffers_setup(struct uring *u)
{
    void *memory = mmap(NULL, URING_BUFFER_MEMORY, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (memory == MAP_FAILED)
        return SK_ERROR;
    u->buffer_memory = memory;
    long page = sysconf(_SC_PAGESIZE);
    u->page_size = page > 0 ? (size_t)page : 4096;
    if (posix_memalign((void **)&u->buffers, 4096,
                       URING_BUFFERS_MAX * sizeof(struct io_uring_buf)) != 0) {
        u->buffers = NULL;
        return SK_ERROR;
    }
    u->buffer_count = URING_BUFFERS_MIN;
    return buffers_register(u);
}

/* ---- send memory ----------------------------------------------------------- */

#define URING_SEND_ROOM (URING_SEND_BLOCK - sizeof(struct uring_send_block))

static void send_block_drop(struct uring *u, struct uring_send_block *b)
{
    if (u->send_spare_count >= URING_SEND_SPARES) {
        free(b);
        return;
    }
    b->next = u->send_spares;
    u->send_spares = b;
    u->send_spare_count++;
}

static struct uring_send_block *send_block_new(struct uring *u)
{
    struct uring_send_block *b = u->send_spares;
    if (b != NULL) {
        u->send_spares = b->next;
        u->send_spare_count--;
    } else if ((b = malloc(URING_SEND_BLOCK)) == NULL) {
        log_limited(LOG_ERROR, errno, "malloc(send block)");
        return NULL;
    }
    b->used = b->refs = 0;
    return b;
}

char *uring_send_take(struct uring *u, size_t len, struct uring_send_block **block)
{
    struct uring_send_block *b = u->send_block;
    if (b != NULL && b->refs == 0)
        b->used = 0; /* nothing of it in the kernel: its first pages again */
    if (b == NULL || b->used + len > URING_SEND_ROOM) {
        if ((b = send_block_new(u)) == NULL)
            return NULL;
        u->send_block = b; /* the full one's last send drops it */
    }
    char *p = b->data + b->used;
    b->used += (uint32_t)((len + 15) & ~(size_t)15);
    b->refs++;
    *block = b;
    return p;
}

void uring_send_give(struct uring *u, struct uring_send_block *b)
{
    if (--b->refs == 0 && b != u->send_block)
        send_block_drop(u, b);
}

/* The spares, and the block being filled unless a send still uses it
 * (all: with the ring, which nothing is sent through any more). */
static void send_blocks_free(struct uring *u, bool all)
{
    if (u->send_block != NULL && (all || u->send_block->refs == 0)) {
        free(u->send_block);
        u->send_block = NULL;
    }
    while (u->send_spares != NULL) {
        struct uring_send_block *b = u->send_spares;
        u->send_spares = b->next;
        free(b);
    }
    u->send_spare_count = 0;
}

/* ---- submissions ----------------------------------------------------------- */

struct io_uring_sqe *uring_sqe(struct uring *u)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&u->ring);
    if (sqe == NULL) {
        io_uring_submit(&u->ring);
        sqe = io_uring_get_sqe(&u->ring);
    }
    return sqe;
}

void uring_submit_now(struct uring *u)
{
    if (io_uring_sq_ready(&u->ring) > 0)
        io_uring_submit(&u->ring);
}

void uring_defer(struct uring *u)
{
    turn_defer(u->turn, &u->job);
}

/* ---- completions ----------------------------------------------------------- */

/* Completions of requests the kernel ended are handled before their
 * handles could be freed: each op's last completion is the handle's
 * last word about it (conn_uring_complete frees an orphan at its last). */
static void uring_dispatch(struct uring *u)
{
    struct io_uring_cqe *cqe;
    unsigned head, seen = 0;
    u->reaps++;
    io_uring_for_each_cqe(&u->ring, head, cqe) {
        seen++;
        uint64_t data = io_uring_cqe_get_data64(cqe);
        struct conn_uring *h = (struct conn_uring *)(uintptr_t)(data & ~(uint64_t)7);
        if (h != NULL) /* NULL: a cancellation's own completion */
            conn_uring_complete(u, h, (enum uring_op)(data & 7), cqe->res, cqe->flags);
    }
    io_uring_cq_advance(&u->ring, seen);
    uring_flush_recycled(u);
}

/* Completions to handle: in the ring, or kept by the kernel when the
 * ring was full (10,000 peers closing at once), which it moves into the
 * ring only when it is entered: nothing else would, with no submission
 * to make, and the eventfd would not fire for them again. */
static bool uring_completions_waiting(struct uring *u)
{
    if (io_uring_cq_ready(&u->ring) > 0)
        return true;
    if (!io_uring_cq_has_overflow(&u->ring))
        return false;
    io_uring_get_events(&u->ring);
    return io_uring_cq_ready(&u->ring) > 0;
}

void uring_reap(struct worker *w)
{
    struct uring *u = w->uring;
    if (u == NULL)
        return;
    turn_enter(u->turn);
    /* Handling completions may post more (a short send entered again is
     * only submitted at the end of the turn): a few rounds, and what is
     * left in the next pass of the loop (the eventfd is edge-triggered). */
    int round = 0;
    for (; round < 4 && uring_completions_waiting(u); round++)
        uring_dispatch(u);
    if (round == 4 && uring_completions_waiting(u))
        event_active(u->event, EV_READ, 0);
    turn_leave(u->turn);
}

static void on_completions(evutil_socket_t fd, short what, void *arg)
{
    struct worker *w = arg;
    (void)fd, (void)what;
    w->uring->inline_rounds = 0;
    uring_reap(w);
}

/* The end of the turn: what marked handles ask for, in one io_uring_enter.
 * A send that finds room completes inside that call: its completion is
 * handled here, in this turn, rather than after another wake-up of the
 * loop (the eventfd is muted meanwhile). What that makes is entered by
 * this job again, a few rounds per wake-up, so that a connection that
 * always has more to send cannot hold the loop. */
static void on_turn(struct turn_job *job)
{
    struct uring *u = (struct uring *)((char *)job - offsetof(struct uring, job));
    while (u->marked != NULL)
        conn_uring_submit(u, u->marked); /* unlinks it */
    uring_flush_recycled(u);
    bool inline_reap = u->inline_rounds < URING_INLINE_ROUNDS;
    if (inline_reap)
        io_uring_cq_eventfd_toggle(&u->ring, false);
    uring_submit_now(u);
    if (!inline_reap)
        return;
    io_uring_cq_eventfd_toggle(&u->ring, true);
    if (!uring_completions_waiting(u))
        return;
    u->inline_rounds++;
    if (u->inline_rounds < URING_INLINE_ROUNDS)
        uring_dispatch(u); /* inside turn_end: what it marks runs this job again */
    else
        event_active(u->event, EV_READ, 0); /* muted while posted: wake the loop */
}

/* ---- at rest --------------------------------------------------------------- */

/* Back to URING_BUFFERS_MIN. The kernel must not take a buffer while its
 * ring is rewritten, and may hold some it took for completions not
 * handled yet: the group is unregistered first (no receive takes one
 * any more: an armed receive that finds data ends with ENOBUFS, and its
 * connection reads the socket), the completions posted are handled
 * (their buffers held or read), and the group is registered anew in the
 * same memory. The
 * handling ends: after the unregistration only the cancellations of
 * connections closing in it post more, each once, and the end-of-turn
 * submissions wait for the turn_leave below (a receive that ended
 * meanwhile doubles buffer_count, which the new ring then has). Receives
 * still armed name the group by number and take from the new ring. */
static void uring_buffers_shrink(struct uring *u)
{
    if (u->buffer_count == URING_BUFFERS_MIN || u->buffers_lost)
        return;
    if (io_uring_unregister_buf_ring(&u->ring, URING_BUFFER_GROUP) != 0)
        return; /* still the kernel's: left as it is */
    u->buffer_count = URING_BUFFERS_MIN;
    turn_enter(u->turn);
    while (uring_completions_waiting(u))
        uring_dispatch(u);
    if (buffers_register(u) != SK_OK) {
        u->buffers_lost = true;
        log_limited(LOG_ERROR, errno, "io_uring_register_buf_ring");
    }
    buffers_release(u, u->buffer_count, URING_BUFFERS_MAX);
    turn_leave(u->turn);
}

void uring_trim(struct worker *w)
{
    if (w->uring == NULL)
        return;
    send_blocks_free(w->uring, false);
    uring_buffers_shrink(w->uring);
}

/* ---- set-up ---------------------------------------------------------------- */

static void uring_free(struct uring *u)
{
    if (u->event != NULL)
        event_free(u->event);
    if (u->ring.ring_fd >= 0)
        io_uring_queue_exit(&u->ring);
    if (u->eventfd >= 0)
        close(u->eventfd);
    conn_uring_forget_all(u);
    send_blocks_free(u, true);
    free(u->buffers);
    if (u->buffer_memory != NULL)
        munmap(u->buffer_memory, URING_BUFFER_MEMORY);
    free(u);
}

static int uring_setup(struct uring *u, struct worker *w, const char **what)
{
    /* SINGLE_ISSUER: only this process submits; COOP_TASKRUN: completion
     * work waits for our next kernel entry instead of interrupting
     * userspace. Not DEFER_TASKRUN: its completions do not signal the
     * eventfd until the ring is entered, so the loop would sleep on them. */
    struct io_uring_params params = {
        .flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_COOP_TASKRUN |
                 IORING_SETUP_SUBMIT_ALL | IORING_SETUP_CQSIZE,
        .cq_entries = URING_CQ_ENTRIES,
    };
    int rc = io_uring_queue_init_params(URING_ENTRIES, &u->ring, &params);
    if (rc != 0) {
        u->ring.ring_fd = -1;
        errno = -rc;
        *what = "io_uring_queue_init";
        return SK_ERROR;
    }
    *what = "io_uring set-up";
    u->eventfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (u->eventfd < 0 || io_uring_register_eventfd(&u->ring, u->eventfd) != 0 ||
        uring_buffers_setup(u) != SK_OK)
        return SK_ERROR;
    u->event = event_new(w->base, u->eventfd, EV_READ | EV_PERSIST | EV_ET, on_completions, w);
    if (u->event == NULL || event_add(u->event, NULL) != 0)
        return SK_ERROR;
    return SK_OK;
}

int uring_start(struct worker *w)
{
    const char *what = "malloc(uring)";
    struct uring *u = calloc(1, sizeof *u);
    if (u != NULL) {
        u->eventfd = -1;
        u->turn = &w->turn;
        u->job.run = on_turn;
        if (uring_setup(u, w, &what) == SK_OK) {
            w->uring = u;
            return SK_OK;
        }
    }
    /* EPERM (io_uring_disabled, a seccomp filter), ENOSYS (an old or
     * stripped kernel), ENOMEM: the worker serves on epoll. */
    log_errno(LOG_WARN, errno, "worker %u: %s failed, transport: io_uring falls back to epoll",
              w->index, what);
    if (u != NULL)
        uring_free(u);
    return SK_DECLINED;
}

void uring_stop(struct worker *w)
{
    if (w->uring == NULL)
        return;
    turn_cancel(&w->turn, &w->uring->job);
    uring_free(w->uring);
    w->uring = NULL;
}
