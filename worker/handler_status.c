/*
 * handler_status.c - the instance's health and metrics over HTTP.
 *
 *   kind: liveness   200 "ok" while this worker runs its loop
 *   kind: readiness  200 "ready" while the instance accepts new work;
 *                    503 while it drains or stops, so a load balancer takes
 *                    it out of rotation before it goes away
 *   kind: metrics    Prometheus text exposition of the whole instance, the
 *                    same figures `sakerctl metrics` prints (read from shm,
 *                    never by asking other workers)
 *
 * Every method is answered (HEAD without a body); responses are never cached.
 */
#include <stdio.h>
#include <stdlib.h>

#include "conf/route_status.h"
#include "shm/shm_metrics.h"
#include "worker/handler.h"
#include "worker/worker.h"

static bool instance_ready(const struct worker *w)
{
    if (w->draining)
        return false;
    if (w->shm == NULL || w->shm->header == NULL)
        return true;
    unsigned state = atomic_load_explicit(&w->shm->header->state, memory_order_relaxed);
    return state == SHM_INSTANCE_RUNNING || state == SHM_INSTANCE_RELOADING ||
           state == SHM_INSTANCE_STARTING;
}

static void respond_text(struct exchange *ex, int status, const char *text, size_t len,
                         unsigned flags)
{
    ex->status = status;
    exchange_add_header(ex, "Content-Type", "text/plain; charset=utf-8");
    exchange_add_header(ex, "Cache-Control", "no-store");
    exchange_set_body(ex, text, len, flags);
    exchange_respond(ex);
}

static void respond_metrics(struct exchange *ex)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    if (out == NULL || ex->worker->shm == NULL) {
        if (out != NULL)
            fclose(out);
        free(text);
        exchange_respond_error(ex, 503);
        return;
    }
    shm_metrics_write(ex->worker->shm, out);
    fclose(out);
    ex->status = 200;
    exchange_add_header(ex, "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
    exchange_add_header(ex, "Cache-Control", "no-store");
    exchange_set_body(ex, text, len, 0); /* copied by the protocol */
    exchange_respond(ex);
    free(text);
}

static void status_handle(struct exchange *ex, const struct route *route, void *state)
{
    const struct route_status *r = route->handler_config;
    (void)state;
    switch (r->kind) {
    case STATUS_LIVENESS:
        respond_text(ex, 200, "ok\n", 3, EXCHANGE_BODY_STABLE);
        return;
    case STATUS_READINESS:
        if (instance_ready(ex->worker))
            respond_text(ex, 200, "ready\n", 6, EXCHANGE_BODY_STABLE);
        else
            respond_text(ex, 503, "draining\n", 9, EXCHANGE_BODY_STABLE);
        return;
    case STATUS_METRICS:
        respond_metrics(ex);
        return;
    }
    exchange_respond_error(ex, 500);
}

const struct handler_ops handler_status_ops = {
    .schema = &route_status_schema,
    .handle = status_handle,
};
