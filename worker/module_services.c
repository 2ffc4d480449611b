/*
 * module_services.c - what the worker's loop offers a module
 * (include/saker/module.h): log lines, the worker's place, shm counters,
 * timers on the worker's timer heap, and descriptor watches on its
 * libevent base.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "common/log.h"
#include "worker/module.h"
#include "worker/worker.h"

unsigned saker_worker_index(const saker_worker *w)
{
    return w->worker->index;
}

uint64_t saker_worker_generation(const saker_worker *w)
{
    return w->worker->generation;
}

void saker_log(saker_worker *w, const char *level, const char *fmt, ...)
{
    static const char *const names[] = {"debug", "info", "notice", "warn", "error"};
    enum log_level lvl = LOG_INFO;
    for (size_t i = 0; level != NULL && i < sizeof names / sizeof names[0]; i++)
        if (strcmp(level, names[i]) == 0)
            lvl = (enum log_level)i;
    if (!log_enabled(lvl))
        return;
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    log_msg(lvl, "module %s: %s", w->module->desc->name, line);
}

/* ---- counters: the slot's own cell, written by this worker only ---- */

saker_counter *saker_worker_counter(saker_worker *w, const char *name)
{
    struct worker *wk = w->worker;
    const struct saker_module *d = w->module->desc;
    bool declared = false;
    for (const char *const *c = d->counters; c != NULL && *c != NULL; c++)
        declared = declared || strcmp(*c, name) == 0;
    if (!declared || wk->shm == NULL || wk->slot == NULL)
        return NULL;
    int i = shm_module_counter_index(wk->shm, d->name, name, false);
    return i < 0 ? NULL : (saker_counter *)&wk->slot->module_counters[i];
}

void saker_counter_add(saker_counter *c, uint64_t n)
{
    if (c != NULL)
        shm_slot_gauge_add((_Atomic uint64_t *)c, (int64_t)n);
}

/* ---- timers ---- */

struct saker_timer {
    struct timer timer; /* first: fire() gets it back */
    struct timers *timers;
    void (*fire)(saker_timer *t, void *arg);
    void *arg;
    bool in_arena;
};

static void on_timer(struct timer *t)
{
    struct saker_timer *st = (struct saker_timer *)t;
    st->fire(st, st->arg);
}

saker_timer *saker_timer_new(saker_worker *w, saker_exchange *ex,
                             void (*fire)(saker_timer *t, void *arg), void *arg)
{
    struct saker_timer *t = ex != NULL ? saker_exchange_alloc(ex, sizeof *t) : malloc(sizeof *t);
    if (t == NULL || fire == NULL) {
        if (ex == NULL)
            free(t);
        return NULL;
    }
    timer_init(&t->timer, on_timer);
    t->timers = &w->worker->timers;
    t->fire = fire;
    t->arg = arg;
    t->in_arena = ex != NULL;
    return t;
}

int saker_timer_start(saker_timer *t, uint64_t delay_ms)
{
    return timer_start(t->timers, &t->timer, delay_ms);
}

void saker_timer_stop(saker_timer *t)
{
    timer_stop(t->timers, &t->timer);
}

void saker_timer_free(saker_timer *t)
{
    if (t == NULL)
        return;
    saker_timer_stop(t);
    if (!t->in_arena)
        free(t);
}

/* ---- descriptor watches ---- */

/* The libevent event lives right after the struct (event_assign), so
 * changing what a watch waits for allocates nothing. */
struct saker_watch {
    struct event_base *base;
    int fd;
    unsigned events; /* 0: the event is not added */
    void (*ready)(saker_watch *watch, int fd, unsigned events, void *arg);
    void *arg;
};

static struct event *watch_event(struct saker_watch *watch)
{
    return (struct event *)(watch + 1);
}

static void on_ready(evutil_socket_t fd, short what, void *arg)
{
    struct saker_watch *watch = arg;
    unsigned events = ((what & EV_READ) ? SAKER_READ : 0) | ((what & EV_WRITE) ? SAKER_WRITE : 0);
    watch->ready(watch, (int)fd, events, watch->arg);
}

saker_watch *saker_watch_new(saker_worker *w, int fd, unsigned events,
                             void (*ready)(saker_watch *watch, int fd, unsigned events,
                                           void *arg),
                             void *arg)
{
    if (w->worker->base == NULL || fd < 0 || ready == NULL)
        return NULL;
    struct saker_watch *watch = malloc(sizeof *watch + event_get_struct_event_size());
    if (watch == NULL)
        return NULL;
    *watch = (struct saker_watch){.base = w->worker->base, .fd = fd, .ready = ready,
                                  .arg = arg};
    if (saker_watch_set(watch, events) != SAKER_OK) {
        free(watch);
        return NULL;
    }
    return watch;
}

int saker_watch_set(saker_watch *watch, unsigned events)
{
    events &= SAKER_READ | SAKER_WRITE;
    if (events == watch->events)
        return SAKER_OK;
    if (watch->events != 0)
        event_del(watch_event(watch));
    watch->events = 0;
    if (events == 0)
        return SAKER_OK;
    short what = EV_PERSIST | ((events & SAKER_READ) ? EV_READ : 0) |
                 ((events & SAKER_WRITE) ? EV_WRITE : 0);
    if (event_assign(watch_event(watch), watch->base, watch->fd, what, on_ready, watch) != 0 ||
        event_add(watch_event(watch), NULL) != 0)
        return SAKER_ERROR;
    watch->events = events;
    return SAKER_OK;
}

void saker_watch_free(saker_watch *watch)
{
    if (watch == NULL)
        return;
    if (watch->events != 0)
        event_del(watch_event(watch));
    free(watch);
}
