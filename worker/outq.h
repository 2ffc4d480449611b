/*
 * outq.h - a connection's output: bytes and file ranges, flushed in order.
 *
 * Protocols append response heads and bodies; the connection flushes the
 * queue with one writev() for every run of byte segments and sendfile() for
 * file segments, so all responses produced from one read leave in one system
 * call when they are bytes (deferred send, pipelining).
 *
 * Byte segments either point at memory that outlives the queue
 * (outq_add_stable: config-owned bodies) or at a copy in the queue's own
 * buffer (outq_add_copy, outq_reserve/outq_commit). The buffer is taken
 * only while the queue holds data and given back when it empties, so an
 * idle connection holds no output memory. File segments own their
 * descriptor and close it when sent or when the queue is cleared, except
 * borrowed ones (outq_add_file_borrowed): HTTP/2 sends one file as many
 * DATA frames, each a segment of the same descriptor, and hands it over
 * with outq_release_fd once it has queued the last one. A descriptor
 * from file_cache_open may be shared by several responses; the queue
 * gives its holds back with file_cache_close, so the last holder closes.
 *
 * A release (outq_add_release) is a callback queued after what it follows:
 * it runs once everything queued before it has been sent, or when the
 * queue is cleared; this is how a response learns that its last byte
 * has left.
 */
#ifndef SAKER_WORKER_OUTQ_H
#define SAKER_WORKER_OUTQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

enum outq_segment_kind { OUTQ_STABLE, OUTQ_COPY, OUTQ_FILE, OUTQ_RELEASE };

/* Called once when the queue is done with what came before it. */
typedef void outq_release_fn(void *arg);

struct outq_segment {
    enum outq_segment_kind kind;
    int fd;            /* OUTQ_FILE */
    bool owns_fd;      /* OUTQ_FILE: closed when sent or cleared */
    union {
        const char *ptr;   /* OUTQ_STABLE */
        size_t offset;     /* OUTQ_COPY: into the buffer */
        off_t file_offset; /* OUTQ_FILE */
        void *release_arg; /* OUTQ_RELEASE */
    };
    size_t len;        /* bytes left to send; 0 for OUTQ_RELEASE */
    outq_release_fn *release; /* OUTQ_RELEASE */
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
};

void outq_init(struct outq *q);
/* Drops everything, closing file descriptors, and frees memory. */
void outq_clear(struct outq *q);
bool outq_empty(const struct outq *q);

/* Each returns 0, or -1 when out of memory (nothing queued). */
int outq_add_copy(struct outq *q, const void *data, size_t len);
int outq_add_stable(struct outq *q, const void *data, size_t len);
/* Takes ownership of fd (closed on failure too). */
int outq_add_file(struct outq *q, int fd, off_t offset, size_t len);
/* A range of a file the caller still owns; fd must stay open until
 * outq_release_fd hands it over. -1 when out of memory. */
int outq_add_file_borrowed(struct outq *q, int fd, off_t offset, size_t len);
/* The caller is done with fd: the last queued segment of it will close it
 * once sent (or cleared), or it is closed now when none is queued. */
void outq_release_fd(struct outq *q, int fd);

/* release(arg) runs once everything queued before it has been sent, or
 * when the queue is cleared; at once when nothing is queued. 0, or -1
 * when out of memory (release has then run). */
int outq_add_release(struct outq *q, outq_release_fn *release, void *arg);

/* Room for up to `max` bytes at the end of the copy buffer; write into the
 * returned pointer and call outq_commit with what was used. NULL: no memory. */
char *outq_reserve(struct outq *q, size_t max);
int outq_commit(struct outq *q, size_t used);

/* For a transport that writes the queue itself (TLS): marks n bytes from
 * the head as sent, closing finished files, and gives the memory back
 * once the queue is empty, as outq_flush does. */
void outq_advance(struct outq *q, size_t n);

/* Writes as much as the socket takes. *written gets the bytes sent. */
enum outq_flush_result outq_flush(struct outq *q, int fd, uint64_t *written);

#endif
