/*
 * turn.h - work deferred to the end of the current event-loop turn.
 *
 * A connection that closes, or an exchange that is abandoned, may still be
 * referenced further up the stack that closed it: a handler inside
 * exchange_send, nghttp2 inside a callback, the heartbeat walking the
 * connection list. Such objects are marked and queued here, and released
 * once the callbacks already queued in this turn have run (as
 * file_cache.c's kept files, and as nginx posts events), so no callback
 * ever touches freed or recycled memory. Work that should run once after
 * several events (a flush asked for by many sends) is queued the same way.
 *
 * Jobs run in the order they were queued; a job may queue more, which run
 * in the same pass. Without an event loop (unit tests, teardown) nothing
 * runs until turn_end is called. One per worker; not thread-safe.
 *
 * A connection's own I/O callback is such a moment too when it returns
 * to the loop: it brackets itself with turn_enter and turn_leave, and
 * what was queued inside runs at the outermost turn_leave, with nothing
 * of ours left on the stack, instead of through the event (whose
 * activation costs more than the jobs of a small HTTP/2 response).
 */
#ifndef SAKER_WORKER_TURN_H
#define SAKER_WORKER_TURN_H

#include <stdbool.h>
#include <stddef.h>

struct event_base;
struct event;

/* Embedded in what is deferred; run is set by the owner. Queued when
 * next is set, or when it is the queue's last. */
struct turn_job {
    struct turn_job *next;
    void (*run)(struct turn_job *job);
};

struct turn {
    struct event *event; /* NULL: no loop; turn_end runs the jobs */
    struct turn_job *head;
    struct turn_job **tail;
    unsigned entered;    /* turn_enter depth, and turn_end's own */
};

void turn_init(struct turn *t);
/* Runs the queue at the end of each turn of base. SK_OK or SK_ERROR. */
int turn_attach(struct turn *t, struct event_base *base);
/* Runs what is queued, then detaches from the loop. */
void turn_destroy(struct turn *t);

/* Queues job unless it is queued already. */
void turn_defer(struct turn *t, struct turn_job *job);
/* Takes job out of the queue (whatever it belonged to is going away
 * first); nothing when it is not queued. */
void turn_cancel(struct turn *t, struct turn_job *job);
/* Runs every queued job now, and those they queue. */
void turn_end(struct turn *t);
/* Around a callback the loop calls: jobs queued until the outermost
 * turn_leave run there (the caller touches nothing a job may release
 * after it). */
static inline void turn_enter(struct turn *t)
{
    t->entered++;
}

static inline void turn_leave(struct turn *t)
{
    if (--t->entered == 0 && t->head != NULL)
        turn_end(t);
}

#endif
