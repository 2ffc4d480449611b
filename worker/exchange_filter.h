/*
 * exchange_filter.h - a stage between a handler's streamed response and
 * the protocol: response compression is one. A filter sees the head before
 * it leaves (it may change the status and headers: drop Content-Length,
 * add Content-Encoding) and every piece of the body on its way, with the
 * same contract as the handler's sends: it passes on (transformed) pieces
 * with exchange_filter_send, one outstanding at a time, and the protocol's
 * proceed reaches it first; it passes proceed on toward the handler
 * (exchange_filter_proceed) when it wants more.
 *
 *   handler ─send─▶ filter 1 ─send─▶ filter 2 ─send─▶ protocol
 *          ◀proceed─         ◀proceed─         ◀proceed─
 *
 * Filters are added by the handler (or for it, by whoever dispatches)
 * before exchange_start, and live in the exchange's arena or longer. An
 * exchange without a filter costs one pointer test per send.
 *
 * A filter's start may decline the response (SK_DECLINED: a compressor
 * for an image, a 304): it leaves the chain and sees nothing more. A
 * whole response given to exchange_respond that every filter declined
 * goes out as if there had been none (a file as a range, with its
 * Content-Length); otherwise it goes through the remaining filters as a
 * stream: a bytes body as one FINAL send (copied into the arena unless
 * EXCHANGE_BODY_STABLE, so it lasts until the exchange ends), a file
 * body read piece by piece (exchange_file.c), with backpressure.
 */
#ifndef SAKER_WORKER_EXCHANGE_FILTER_H
#define SAKER_WORKER_EXCHANGE_FILTER_H

#include "worker/exchange.h"

struct exchange_filter_ops {
    /* The head is about to leave; may change ex's status and headers
     * (exchange_body_length says how long the body is). SK_OK; SK_DECLINED
     * to leave the chain (nothing else is called, not even stop); SK_ERROR
     * to give up on the exchange. May be NULL. */
    int (*start)(struct exchange *ex, struct exchange_filter *f);
    /* A piece from upstream; pass it on with exchange_filter_send. The
     * bytes are valid until f asks for more (exchange_filter_proceed). */
    int (*send)(struct exchange *ex, struct exchange_filter *f, const struct exchange_buf *bufs,
                size_t n, enum exchange_send_state state);
    /* Downstream has room again. NULL: pass it on at once. */
    void (*proceed)(struct exchange *ex, struct exchange_filter *f);
    /* The exchange is abandoned: free what f holds. May be NULL. */
    void (*stop)(struct exchange *ex, struct exchange_filter *f);
};

struct exchange_filter {
    const struct exchange_filter_ops *ops;
    struct exchange_filter *next; /* toward the protocol; NULL: the protocol */
    struct exchange_filter *prev; /* toward the handler; NULL: the generator */
};

/* Appends f next to the protocol. Before the response has started. */
void exchange_add_filter(struct exchange *ex, struct exchange_filter *f);
/* f's output: to the next filter, or to the protocol. */
int exchange_filter_send(struct exchange *ex, struct exchange_filter *f,
                         const struct exchange_buf *bufs, size_t n,
                         enum exchange_send_state state);
/* f wants more: proceed goes to the filter before it, or the generator.
 * Not from inside f's send: the generator may send again at once, and a
 * filter that eats many pieces before it has output would recurse. A
 * filter that has eaten a piece without output sends an empty MORE piece
 * instead: the protocols queue nothing for it and owe it a proceed, which
 * their flush gives, a bounded number per wakeup. */
void exchange_filter_proceed(struct exchange *ex, struct exchange_filter *f);

/* For exchange.c: every filter's start, declined ones unlinked. SK_OK or
 * SK_ERROR. */
int exchange_filters_start(struct exchange *ex);
/* For exchange.c: starts the stream once the filters have started. */
int exchange_start_filtered(struct exchange *ex);
/* For exchange.c: streams ex's file body through the filters (the
 * generator becomes the file's). SK_OK or SK_ERROR (the file given back
 * or left to stop). */
int exchange_stream_file(struct exchange *ex);
/* The length of the body a filter is about to see: a whole response's,
 * a streamed one's declared Content-Length, or -1 when unknown. */
int64_t exchange_body_length(const struct exchange *ex);

#endif
