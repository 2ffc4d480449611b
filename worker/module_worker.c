/*
 * module_worker.c - the modules of one worker, and the `module` route
 * kind's runtime: a route's handler init, handle and fini call the
 * module's own; see module.h.
 */
#include "worker/module.h"

#include <stdlib.h>

#include "common/log.h"
#include "conf/route_module.h"
#include "worker/worker.h"

/* The worker whose routes are being built (one per process). */
static struct worker *building;

static struct saker_worker *module_worker_of(const struct config_module *m)
{
    if (building == NULL || building->modules == NULL)
        return NULL;
    return &building->modules[m - building->config->modules];
}

static int module_worker_start(struct saker_worker *mw, struct err *err)
{
    const struct saker_module *d = mw->module->desc;
    struct err why;

    why.message[0] = '\0';
    if (d->worker_init != NULL &&
        d->worker_init(mw, mw->module->options, &mw->state, (saker_err *)&why) != SAKER_OK)
        return err_set(err, "module '%s' (%s): worker_init failed: %s", d->name,
                       mw->module->path, why.message[0] ? why.message : "(no message)");
    mw->started = true;
    return SK_OK;
}

int module_workers_start(struct worker *w, struct err *err)
{
    const struct config *config = w->config;

    building = w;
    if (config->module_count == 0)
        return SK_OK;
    w->modules = calloc(config->module_count, sizeof *w->modules);
    if (w->modules == NULL)
        return err_set(err, "modules: out of memory");
    for (size_t i = 0; i < config->module_count; i++) {
        w->modules[i] = (struct saker_worker){.worker = w, .module = &config->modules[i]};
        if (config->modules[i].desc != NULL && module_worker_start(&w->modules[i], err) != SK_OK) {
            module_workers_stop(w);
            return SK_ERROR;
        }
    }
    return SK_OK;
}

void module_workers_stop(struct worker *w)
{
    for (size_t i = w->modules ? w->config->module_count : 0; i-- > 0;) {
        struct saker_worker *mw = &w->modules[i];
        if (mw->started && mw->module->desc->worker_fini != NULL)
            mw->module->desc->worker_fini(mw->state);
    }
    free(w->modules);
    w->modules = NULL;
    if (building == w)
        building = NULL;
}

/* A route's state: its handler's, with what handle() needs at hand. */
struct module_route {
    const struct saker_handler *handler;
    void *state;
};

static int module_route_init(const struct route *route, void **state, struct err *err)
{
    const struct route_module *rm = route->handler_config;
    struct saker_worker *mw = rm->module ? module_worker_of(rm->module) : NULL;

    if (mw == NULL || rm->handler == NULL)
        return err_set(err, "route '%s': its module is not loaded in this worker",
                       route->path);
    struct module_route *mr = calloc(1, sizeof *mr);
    if (mr == NULL)
        return err_set(err, "route '%s': out of memory", route->path);
    mr->handler = rm->handler;
    struct err why;
    why.message[0] = '\0';
    if (rm->handler->init != NULL &&
        rm->handler->init(mw, rm->options, mw->state, &mr->state, (saker_err *)&why) !=
            SAKER_OK) {
        free(mr);
        return err_set(err, "route '%s': module handler '%s' init failed: %s", route->path,
                       rm->handler->name, why.message[0] ? why.message : "(no message)");
    }
    *state = mr;
    return SK_OK;
}

static void module_route_handle(struct exchange *ex, const struct route *route, void *state)
{
    const struct module_route *mr = state;
    (void)route;
    mr->handler->handle((saker_exchange *)ex, mr->state);
}

static void module_route_fini(void *state)
{
    struct module_route *mr = state;
    if (mr->handler->fini != NULL)
        mr->handler->fini(mr->state);
    free(mr);
}

static bool module_route_reads_body(const struct route *route)
{
    const struct route_module *rm = route->handler_config;
    return rm->handler != NULL && rm->handler->reads_body;
}

const struct handler_ops handler_module_ops = {
    .schema = &route_module_schema,
    .init = module_route_init,
    .handle = module_route_handle,
    .fini = module_route_fini,
    .route_reads_body = module_route_reads_body,
};
