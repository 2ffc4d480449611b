/*
 * conn_uring.h - an io_uring transport for plain TCP connections (a
 * measured prototype; see bench/README.md, "io_uring, measured").
 *
 * One ring per worker. Its completions wake the libevent loop through an
 * eventfd registered as an edge-triggered event, so the ring and every
 * other event share one loop. A connection on the ring has one multishot
 * receive armed, filled from a ring of provided buffers (no read per
 * request, no epoll readiness per connection), and sends its output as a
 * send submission: the queued bytes are copied into the connection's send
 * buffer and all sends made during one dispatch go into the kernel with
 * one io_uring_enter. Files still go out with sendfile, between sends.
 *
 * Enabled per worker by SAKER_TRANSPORT=io_uring in the environment; when
 * the ring cannot be set up, the worker stays on epoll.
 */
#ifndef SAKER_WORKER_CONN_URING_H
#define SAKER_WORKER_CONN_URING_H

#include <stdbool.h>

struct worker;
struct conn;
struct conn_transport;

/* SK_OK with w->uring set, or SK_DECLINED (not asked for, or unavailable:
 * the worker stays on epoll). */
int conn_uring_start(struct worker *w);
void conn_uring_stop(struct worker *w);

/* Puts a plain connection on the ring: SK_OK, or SK_ERROR (out of memory
 * or submission queue: the caller keeps it on epoll). */
int conn_uring_attach(struct conn *c);

extern const struct conn_transport conn_uring_transport;

#endif
