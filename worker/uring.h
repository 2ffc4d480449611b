/*
 * uring.h - the io_uring transport for plain connections
 * (`transport: io_uring`): one ring per worker inside its libevent loop.
 *
 * The ring's completion eventfd is an edge-triggered libevent event that
 * is never read: each batch of completions wakes the loop once, and its
 * callback reaps every completion there is. What connections ask of the
 * ring during a turn (arm or cancel a receive, send, poll for room) is
 * noted on their handle and entered at the end of the turn (turn.h) with
 * one io_uring_enter, so all responses a turn produced, a pipelined batch
 * included, leave together.
 *
 * Receives: one multishot receive per reading connection, into a
 * worker-wide ring of provided buffers; the bytes wait on the connection
 * until conn.c reads them through the transport (they are copied into
 * the read buffer the protocol parses, as a read() would). Reading stops
 * (output over its high-water mark, input paused, a close): the receive
 * is cancelled; it is armed again when reading resumes. A receive that
 * found no buffer (all held by connections that do not read) leaves the
 * bytes in the socket, which its connection then reads as on epoll.
 *
 * Sends: at the end of the turn the byte segments at the head of the
 * output queue are copied into send memory cut from the worker's block
 * being filled, held for as long as the send is in the kernel, so an
 * idle connection holds nothing but its handle; the send's completion
 * flushes the connection again. File segments keep sendfile() (with a POLLOUT poll
 * when the socket is full); TLS connections, PROXY protocol endpoints and
 * upstream connections keep the epoll transport.
 *
 * The handle is in struct conn, which outlives its release until the
 * kernel is done with it: a connection released with requests in flight
 * cancels them by descriptor before the descriptor is closed, and its
 * memory goes with the last completion. A quiet worker gives back the
 * send memory it kept and the receive buffers it grew (uring_trim).
 * Not thread-safe; one ring per worker process.
 */
#ifndef SAKER_WORKER_URING_H
#define SAKER_WORKER_URING_H

#include <stdbool.h>
#include <stdint.h>

#include <liburing.h>

#include "common/error.h"
#include "worker/turn.h"

struct worker;
struct conn;
struct conn_uring;
struct event;

/* Creates the worker's ring, its provided buffers and its event.
 * SK_OK; SK_DECLINED when io_uring cannot be used here (not allowed,
 * not built into the kernel, out of locked memory): one warning line
 * is logged and the worker stays on epoll. */
int uring_start(struct worker *w);
/* Frees the ring and what the kernel still held, after every connection
 * was released. Nothing when there is none. */
void uring_stop(struct worker *w);
/* Handles the completions already posted (the heartbeat calls it before
 * judging deadlines: input that came in time is read first). */
void uring_reap(struct worker *w);
/* The worker is quiet: frees the send blocks nothing is sent from, and
 * takes the provided receive buffers back to URING_BUFFERS_MIN, their
 * pages given back to the kernel (uring_buffers_shrink). */
void uring_trim(struct worker *w);

/* conn_open: serve c through the ring (its handle lives in c). */
void conn_uring_attach(struct conn *c);

/* ---- between uring.c and conn_uring.c ---------------------------------- */

enum uring_op { URING_OP_RECV = 1, URING_OP_SEND = 2, URING_OP_POLL = 3 };

/* Provided receive buffers: at first URING_BUFFERS_MIN, doubled each time
 * the kernel finds none for a receive (more connections received at
 * once than there were buffers), up to URING_BUFFERS_MAX (the ring's
 * entries, a power of two). The kernel takes them in turn, so each one
 * provided is touched; the memory of the rest is reserved, not used.
 * A quiet worker goes back to URING_BUFFERS_MIN: the group is
 * registered anew with the lowest ids no connection holds, and the pages
 * of the others are released (a held one's once it is read). An id is
 * the kernel's (in the provided ring, or taken for a completion not
 * handled yet), held (u->held_ids: a connection's bytes, not read
 * yet), or free (at or above buffer_count, neither). */
#define URING_BUFFERS_MIN 32
#define URING_BUFFERS_MAX 512
#define URING_BUFFER_SIZE 2048
/* Sends copy at most URING_SEND_MAX bytes, cut one after the other from
 * blocks of URING_SEND_BLOCK: a block with nothing left in the kernel is
 * filled from its start again, so a turn's small responses share a few
 * warm pages, where a buffer each touched a page each. */
#define URING_SEND_MAX (32 * 1024)
#define URING_SEND_BLOCK (64 * 1024)
#define URING_SEND_SPARES 4        /* empty blocks kept, until the worker is quiet */

struct uring_send_block {
    struct uring_send_block *next; /* among the spares */
    uint32_t used;                 /* bytes cut from data */
    uint32_t refs;                 /* sends cut from it, not done */
    char data[];
};

/* The ring of a worker (w->uring). */
struct uring {
    struct io_uring ring;
    struct io_uring_buf_ring *buffers; /* provided to the kernel */
    char *buffer_memory;               /* URING_BUFFERS_MAX * URING_BUFFER_SIZE, mapped */
    unsigned buffer_count;             /* ids below it are the kernel's or held */
    uint32_t grown_reap;               /* reaps when buffer_count last grew */
    uint64_t held_ids[URING_BUFFERS_MAX / 64]; /* a bit per id a connection holds */
    size_t page_size;                  /* buffers are released by whole pages */
    bool buffers_lost;                 /* a new registration failed: none provided */
    /* Bytes received and not read yet, chained by buffer id per
     * connection (an id is held by at most one connection). */
    int32_t held_next[URING_BUFFERS_MAX];
    uint32_t held_len[URING_BUFFERS_MAX];
    unsigned recycled;                 /* ids given back since the last advance */
    uint32_t reaps;                    /* batches of completions handled */
    unsigned inline_rounds;            /* handled at the end of turns since the last wake-up */
    int eventfd;
    struct event *event;
    struct turn *turn;
    struct turn_job job;               /* the end-of-turn submission */
    struct conn_uring *marked;         /* handles with something to enter */
    struct conn_uring *orphans;        /* released, requests still in the kernel */
    struct uring_send_block *send_block; /* being filled */
    struct uring_send_block *send_spares;
    unsigned send_spare_count;
};

/* A handle was linked into u->marked: the end of the turn enters it. */
void uring_defer(struct uring *u);
/* A submission entry, or NULL when the ring is full even after a submit. */
struct io_uring_sqe *uring_sqe(struct uring *u);
/* Enters what is prepared now (a release cancels before close()). */
void uring_submit_now(struct uring *u);
/* A provided receive buffer's memory; a completion gave it to a
 * connection (held); the connection read it: back to the kernel, or
 * its page released when the buffers shrank below it meanwhile. */
char *uring_buffer(struct uring *u, unsigned id);
void uring_buffer_hold(struct uring *u, unsigned id);
void uring_buffer_recycle(struct uring *u, unsigned id);
/* A receive found no buffer (ENOBUFS): more are provided, once a batch
 * (its connection reads its socket meanwhile: conn_uring.c). */
void uring_buffers_grow(struct uring *u);
/* len (at most URING_SEND_MAX) bytes of send memory, cut from *block;
 * NULL when out of memory. Given back once the send is done with it. */
char *uring_send_take(struct uring *u, size_t len, struct uring_send_block **block);
void uring_send_give(struct uring *u, struct uring_send_block *block);

/* conn_uring.c's side: what a completion means for its handle, and the
 * end-of-turn submissions of a marked handle. */
void conn_uring_complete(struct uring *u, struct conn_uring *h, enum uring_op op, int res,
                         uint32_t flags);
void conn_uring_submit(struct uring *u, struct conn_uring *h);
/* At uring_stop: frees the handles the kernel held, gone with the ring. */
void conn_uring_forget_all(struct uring *u);

#endif
