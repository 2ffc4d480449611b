/*
 * outq.h - a connection's output: bytes and file ranges, flushed in order.
 *
 * Protocols append response heads and bodies; the connection flushes the
 * queue with one writev() for every run of byte segments and sendfile() for
 * file segments, so all responses produced from one read leave in one system
 * call when they are bytes (deferred send, pipelining).
 *
 * Byte segments either point at memory that outlives the queue
 * (outq_add_stable: config-owned bodies), at memory lent with a release
 * (outq_add_ref), or at a copy in the queue's own buffer (outq_add_copy,
 * outq_reserve/outq_commit). The buffer is taken only while the queue
 * holds data and given back when it empties, so an idle connection holds
 * no output memory; a queue that never empties (a stream to a reader a
 * little slower than its source) drops the copies it has sent before its
 * buffer grows past 1 MiB, so what it holds is bounded by what is unsent.
 *
 * One ownership rule: a segment may carry a release callback and its
 * argument (a file's hold, a handler's buffer), which the queue calls
 * exactly once: when the segment has been sent, when the queue is
 * cleared, or at once when the segment could not be queued. A file sent
 * as many pieces (HTTP/2 DATA frames) gives its release to the last
 * piece; a sender that stops before that queues the release alone
 * (outq_add_release), so it runs once the pieces before it have left.
 * The queue knows no handler and no file cache.
 */
#ifndef SAKER_WORKER_OUTQ_H
#define SAKER_WORKER_OUTQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

enum outq_segment_kind { OUTQ_STABLE, OUTQ_COPY, OUTQ_FILE };

/* Called once when the queue is done with what a segment lent it. */
typedef void outq_release_fn(void *arg);

struct outq_segment {
    enum outq_segment_kind kind;
    int fd;            /* OUTQ_FILE */
    union {
        const char *ptr;   /* OUTQ_STABLE (referenced bytes) */
        size_t offset;     /* OUTQ_COPY: into the buffer */
        off_t file_offset; /* OUTQ_FILE */
    };
    size_t len;        /* bytes left to send */
    outq_release_fn *release; /* NULL: nothing to give back */
    void *release_arg;
};

struct outq {
    char *buffer;           /* copies; realloc'd, so segments store offsets */
    size_t buffer_used;
    size_t buffer_capacity;
    struct outq_segment *segments;
    size_t head;            /* first unsent segment */
    size_t count;           /* segments in use (from 0) */
    size_t capacity;
    uint64_t pending_bytes;
};

/* The result of a flush attempt. */
enum outq_flush_result {
    OUTQ_FLUSHED,  /* queue empty */
    OUTQ_BLOCKED,  /* the socket's send buffer is full: wait for EPOLLOUT */
    OUTQ_FAILED,   /* the peer is gone or a file read failed; errno set */
    /* Never from outq_flush: a transport took the bytes and sends them
     * itself (io_uring), flushing again once the kernel has them. */
    OUTQ_SENDING,
};

/* Protocols make output until this much waits in the queue: enough for
 * several 16 KiB TLS records or one large writev, small enough that a
 * slow reader pins little memory. */
#define OUTQ_HIGH_WATER (256 * 1024)

void outq_init(struct outq *q);
/* Frees the buffers and segment arrays kept for reuse (a quiet worker:
 * a turn that served many connections at once left up to 64 of each). */
void outq_free_spares(void);
/* Drops everything, running every release, and frees memory. */
void outq_clear(struct outq *q);
bool outq_empty(const struct outq *q);

/* Each returns 0, or -1 when out of memory (nothing queued; a release
 * passed in has run). */
int outq_add_copy(struct outq *q, const void *data, size_t len);
int outq_add_stable(struct outq *q, const void *data, size_t len);
/* Bytes lent until release(arg) runs (release may be NULL: the caller
 * keeps them valid until the queue has sent them). */
int outq_add_ref(struct outq *q, const void *data, size_t len, outq_release_fn *release,
                 void *arg);
/* len bytes of fd from offset, sent with sendfile; release(arg) gives
 * the descriptor back (NULL: the caller keeps fd open until sent).
 * contents, when not NULL, are the same bytes in memory (a small file
 * read once, see file_cache.h): the queue copies them instead while it is
 * short, so a response leaves with its head in one writev. */
int outq_add_file(struct outq *q, int fd, off_t offset, size_t len, const char *contents,
                  outq_release_fn *release, void *arg);
/* release(arg) runs once everything queued before it has been sent (or
 * the queue is cleared). */
int outq_add_release(struct outq *q, outq_release_fn *release, void *arg);

/* Room for up to `max` bytes at the end of the copy buffer; write into the
 * returned pointer and call outq_commit with what was used. NULL: no memory. */
char *outq_reserve(struct outq *q, size_t max);
int outq_commit(struct outq *q, size_t used);

/* For a transport that writes the queue itself (TLS): marks n bytes from
 * the head as sent, releasing finished segments, and gives the memory
 * back once the queue is empty, as outq_flush does. */
void outq_advance(struct outq *q, size_t n);

/* Writes as much as the socket takes. *written gets the bytes sent. */
enum outq_flush_result outq_flush(struct outq *q, int fd, uint64_t *written);

#endif
