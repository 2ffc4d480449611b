/*
 * timer.c - a binary min-heap of timers under one libevent timer; see
 * timer.h.
 */
#include "worker/timer.h"

#include <stdlib.h>

#include <event2/event.h>

#include "common/clock.h"
#include "common/error.h"

#define TIMERS_MIN_CAPACITY 64

static void heap_set(struct timers *ts, size_t i, struct timer *t)
{
    ts->heap[i] = t;
    t->slot = i + 1;
}

static void sift_up(struct timers *ts, size_t i)
{
    struct timer *t = ts->heap[i];
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (ts->heap[parent]->due_ms <= t->due_ms)
            break;
        heap_set(ts, i, ts->heap[parent]);
        i = parent;
    }
    heap_set(ts, i, t);
}

static void sift_down(struct timers *ts, size_t i)
{
    struct timer *t = ts->heap[i];
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= ts->count)
            break;
        if (child + 1 < ts->count && ts->heap[child + 1]->due_ms < ts->heap[child]->due_ms)
            child++;
        if (ts->heap[child]->due_ms >= t->due_ms)
            break;
        heap_set(ts, i, ts->heap[child]);
        i = child;
    }
    heap_set(ts, i, t);
}

/* The libevent timer waits for the earliest expiry; it is moved only
 * when that comes sooner than what it waits for (a stopped timer leaves
 * it early, and the early run re-arms it). */
static void arm(struct timers *ts)
{
    uint64_t next = timers_next(ts);
    if (ts->event == NULL || next == 0 || (ts->event_due_ms != 0 && ts->event_due_ms <= next))
        return;
    uint64_t now = ts->now(), wait = next > now ? next - now : 0;
    struct timeval tv = {(time_t)(wait / 1000), (suseconds_t)(wait % 1000 * 1000)};
    if (event_add(ts->event, &tv) == 0)
        ts->event_due_ms = next;
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct timers *ts = arg;
    (void)fd, (void)what;
    ts->event_due_ms = 0;
    clock_update(); /* what fires reads the cached clock and Date too */
    timers_run(ts);
}

void timers_init(struct timers *ts, uint64_t (*now)(void))
{
    ts->heap = NULL;
    ts->count = ts->capacity = 0;
    ts->now = now;
    ts->event = NULL;
    ts->event_due_ms = 0;
}

int timers_attach(struct timers *ts, struct event_base *base)
{
    ts->event = evtimer_new(base, on_timer, ts);
    if (ts->event == NULL)
        return SK_ERROR;
    arm(ts);
    return SK_OK;
}

void timers_destroy(struct timers *ts)
{
    for (size_t i = 0; i < ts->count; i++)
        ts->heap[i]->slot = 0;
    free(ts->heap);
    if (ts->event != NULL)
        event_free(ts->event);
    timers_init(ts, ts->now);
}

void timer_init(struct timer *t, timer_fn *fire)
{
    t->due_ms = 0;
    t->slot = 0;
    t->fire = fire;
}

int timer_start(struct timers *ts, struct timer *t, uint64_t delay_ms)
{
    timer_stop(ts, t);
    if (ts->count == ts->capacity) {
        size_t capacity = ts->capacity ? ts->capacity * 2 : TIMERS_MIN_CAPACITY;
        struct timer **heap = realloc(ts->heap, capacity * sizeof *heap);
        if (heap == NULL)
            return SK_ERROR;
        ts->heap = heap;
        ts->capacity = capacity;
    }
    t->due_ms = ts->now() + delay_ms;
    ts->heap[ts->count] = t;
    sift_up(ts, ts->count++);
    arm(ts);
    return SK_OK;
}

void timer_stop(struct timers *ts, struct timer *t)
{
    if (t->slot == 0)
        return;
    size_t i = t->slot - 1;
    t->slot = 0;
    struct timer *last = ts->heap[--ts->count];
    if (i == ts->count)
        return;
    heap_set(ts, i, last);
    sift_down(ts, i);
    if (ts->heap[i] == last)
        sift_up(ts, i);
}

uint64_t timers_next(const struct timers *ts)
{
    return ts->count > 0 ? ts->heap[0]->due_ms : 0;
}

void timers_run(struct timers *ts)
{
    uint64_t now = ts->now();
    /* At most as many as were armed: one that starts itself again with no
     * delay fires on the next run, not in an endless loop. */
    for (size_t budget = ts->count; budget > 0 && ts->count > 0 && ts->heap[0]->due_ms <= now;
         budget--) {
        struct timer *t = ts->heap[0];
        timer_stop(ts, t);
        t->fire(t); /* may start it again, or any other */
    }
    arm(ts);
}
