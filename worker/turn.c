/*
 * turn.c - end-of-turn jobs; see turn.h.
 *
 * One libevent event made active (not added) when the first job is
 * queued: libevent runs it after the callbacks already active in this
 * turn, which is the moment nothing above us still holds what the jobs
 * release.
 */
#include "worker/turn.h"

#include <stddef.h>

#include <event2/event.h>

#include "common/error.h"

static void on_turn_end(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    turn_end(arg);
}

void turn_init(struct turn *t)
{
    t->event = NULL;
    t->head = NULL;
    t->tail = &t->head;
    t->entered = 0;
}

int turn_attach(struct turn *t, struct event_base *base)
{
    /* EV_PERSIST on an event never added: libevent takes it off the
     * active queue after the callback instead of running a whole
     * event_del, once a turn. */
    t->event = event_new(base, -1, EV_PERSIST, on_turn_end, t);
    if (t->event == NULL)
        return SK_ERROR;
    if (t->head != NULL)
        event_active(t->event, 0, 0);
    return SK_OK;
}

void turn_destroy(struct turn *t)
{
    turn_end(t);
    if (t->event != NULL)
        event_free(t->event);
    t->event = NULL;
}

static bool turn_queued(const struct turn *t, const struct turn_job *job)
{
    return job->next != NULL || t->tail == &job->next;
}

void turn_defer(struct turn *t, struct turn_job *job)
{
    if (turn_queued(t, job))
        return;
    job->next = NULL;
    bool first = t->head == NULL;
    *t->tail = job;
    t->tail = &job->next;
    if (first && t->event != NULL && t->entered == 0)
        event_active(t->event, 0, 0);
}

void turn_cancel(struct turn *t, struct turn_job *job)
{
    if (!turn_queued(t, job))
        return;
    for (struct turn_job **p = &t->head; *p != NULL; p = &(*p)->next)
        if (*p == job) {
            *p = job->next;
            if (*p == NULL)
                t->tail = p;
            break;
        }
    job->next = NULL;
}

void turn_end(struct turn *t)
{
    t->entered++; /* what the jobs queue runs in this pass, not through the event */
    while (t->head != NULL) {
        struct turn_job *job = t->head;
        t->head = job->next;
        if (t->head == NULL)
            t->tail = &t->head;
        job->next = NULL; /* not queued any more */
        job->run(job); /* may free job, or queue it again */
    }
    t->entered--;
}

