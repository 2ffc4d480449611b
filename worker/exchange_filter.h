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
 * exchange without a filter costs one pointer test per send. A bytes
 * body given to exchange_respond goes through the filters as a stream
 * (start, one FINAL send, valid only during the call); a file body does
 * not go through them.
 */
#ifndef SAKER_WORKER_EXCHANGE_FILTER_H
#define SAKER_WORKER_EXCHANGE_FILTER_H

#include "worker/exchange.h"

struct exchange_filter_ops {
    /* The head is about to leave; may change ex's status and headers.
     * SK_OK, or SK_ERROR to give up on the exchange. May be NULL. */
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
/* f wants more: proceed goes to the filter before it, or the generator. */
void exchange_filter_proceed(struct exchange *ex, struct exchange_filter *f);

#endif
