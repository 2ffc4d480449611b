/*
 * conn.h - one client connection: its socket, I/O and deadlines.
 *
 * A connection reads into the worker's shared read buffer until a short
 * read, feeds the protocol everything it read, then flushes all responses
 * in one go. It asks for write readiness only after a write returned
 * EAGAIN, and stops reading while output is blocked (backpressure).
 *
 * Deadlines are checked by the worker's once-a-second heartbeat
 * (conn_check_deadline), not by a timer per connection: an idle keep-alive
 * connection closes after keep_alive_timeout, a request head still arriving
 * after request_headers_timeout gets 408.
 *
 * Closing after a response is a half-close (shutdown SHUT_WR) followed by a
 * short linger that reads and discards, so a client that is still sending
 * does not get a reset that destroys the response it has not read yet.
 */
#ifndef SAKER_WORKER_CONN_H
#define SAKER_WORKER_CONN_H

#include <stdbool.h>
#include <stdint.h>

#include <event2/event_struct.h>

#include "worker/h1.h"
#include "worker/outq.h"

struct worker;
struct worker_listener;

struct conn {
    struct conn *prev, *next; /* the worker's list of open connections */
    struct worker *worker;
    int fd;
    struct event read_event;
    struct event write_event;
    struct outq out;
    struct h1 h1;
    uint64_t deadline_ms; /* 0: none */
    bool reading;         /* read_event is added */
    bool writing;         /* write_event is added */
    bool closing;         /* no more requests: close once output is flushed */
    bool lingering;       /* half-closed, discarding input until EOF or deadline */
};

/* Takes over an accepted socket. Returns SK_OK, or SK_ERROR (fd closed). */
int conn_open(struct worker *w, int fd, const struct worker_listener *listener);
/* Closes at once, dropping queued output. */
void conn_close(struct conn *c);
/* Called once a second by the heartbeat with the cached monotonic time. */
void conn_check_deadline(struct conn *c, uint64_t now_ms);
/* Graceful stop: an idle connection is half-closed after a short grace;
 * a busy one closes after its current response. */
void conn_drain(struct conn *c, uint64_t now_ms);
/* Frees the connections kept for reuse. */
void conn_free_cache(struct worker *w);

#endif
