/*
 * timer.h - deadlines finer than the heartbeat, for exchanges and upstream
 * connections: a per-worker min-heap of timers driven by ONE libevent
 * timer, armed at the earliest expiry.
 *
 * The heartbeat checks connection deadlines once a second, which is right
 * for keep-alive and request-head timeouts and costs nothing per idle
 * connection. A proxy's 50 ms connect timeout, or a handler that answers
 * after a delay, needs better: a timer here fires within a millisecond or
 * two of its due time. An armed timer is one slot in the heap (no
 * allocation once the heap has grown, no system call: libevent keeps its
 * own timers in a heap too); the libevent event is moved only when a new
 * timer is due before the one it waits for.
 *
 * A timer is embedded in what it times (an exchange's handler state, an
 * upstream connection) and must be stopped before that is freed. fire()
 * may start or stop any timer, itself included. The clock is a function,
 * so unit tests run the heap on a fake one. One per worker; not
 * thread-safe.
 */
#ifndef SAKER_WORKER_TIMER_H
#define SAKER_WORKER_TIMER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;
struct event;
struct timer;

typedef void timer_fn(struct timer *t);

struct timer {
    uint64_t due_ms; /* monotonic ms */
    size_t slot;     /* 1 + index in the heap; 0: not armed */
    timer_fn *fire;
};

struct timers {
    struct timer **heap;
    size_t count, capacity;
    uint64_t (*now)(void); /* monotonic ms */
    struct event *event;   /* NULL: no loop (timers_run is called by hand) */
    uint64_t event_due_ms; /* when event is armed for; 0: not armed */
};

void timers_init(struct timers *ts, uint64_t (*now)(void));
/* Arms one timer of base at the earliest expiry. SK_OK or SK_ERROR. */
int timers_attach(struct timers *ts, struct event_base *base);
/* Stops every timer (none fires) and frees the heap. */
void timers_destroy(struct timers *ts);

void timer_init(struct timer *t, timer_fn *fire);
/* Fires t delay_ms from now (again, if it was armed). SK_OK, or SK_ERROR
 * when out of memory (t is not armed). */
int timer_start(struct timers *ts, struct timer *t, uint64_t delay_ms);
/* t will not fire; nothing when it is not armed. */
void timer_stop(struct timers *ts, struct timer *t);
static inline bool timer_armed(const struct timer *t) { return t->slot != 0; }

/* The earliest due time, or 0 when nothing is armed. */
uint64_t timers_next(const struct timers *ts);
/* Fires every timer due at now(), earliest first, then arms the event for
 * the next. */
void timers_run(struct timers *ts);

#endif
