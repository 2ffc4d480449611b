/*
 * json_counter.c - a small JSON API with per-worker state and a counter
 * in saker's shared memory.
 *
 *   modules:
 *     - path: .../json_counter.so
 *       config: { start: 100 }      # each worker's count starts here
 *   routes:
 *     - path: /counter
 *       module: { handler: json_counter }
 *
 * GET reads this worker's count; POST adds one. Both add one to the shm
 * counter "requests" (sakerctl status: "module json_counter.requests",
 * metrics: saker_module_counter_total{module="json_counter",
 * counter="requests"}), which sums every worker and survives reloads
 * and respawns; the per-worker count starts again with each worker.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <saker/module.h>

struct counter_config {
    uint64_t start;
};

static const struct saker_option counter_options[] = {
    {"start", SAKER_OPTION_UINT, offsetof(struct counter_config, start), "0", false},
    {NULL, 0, 0, NULL, false},
};

/* One per worker: no locks, every callback runs on this worker's loop. */
struct counter_worker {
    saker_worker *w;
    uint64_t count;
    saker_counter *requests;
};

/* In the master: refuse what cannot work before any worker starts. */
static int counter_load(const void *config, saker_err *err)
{
    const struct counter_config *c = config;
    if (c->start > 1000000000)
        return saker_err_set(err, "start: %" PRIu64 " is over 1000000000", c->start);
    return SAKER_OK;
}

static int counter_worker_init(saker_worker *w, const void *config, void **state,
                               saker_err *err)
{
    const struct counter_config *c = config;
    struct counter_worker *cw = calloc(1, sizeof *cw);
    if (cw == NULL)
        return saker_err_set(err, "out of memory");
    cw->w = w;
    cw->count = c->start;
    cw->requests = saker_worker_counter(w, "requests");
    *state = cw;
    return SAKER_OK;
}

static void counter_worker_fini(void *state)
{
    free(state);
}

static int counter_init(saker_worker *w, const void *options, void *module_state, void **state,
                        saker_err *err)
{
    (void)w, (void)options, (void)err;
    *state = module_state;
    return SAKER_OK;
}

static void counter_handle(saker_exchange *ex, void *state)
{
    struct counter_worker *cw = state;
    const char *method = saker_exchange_method(ex);
    if (strcmp(method, "POST") == 0)
        cw->count++;
    else if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
        saker_exchange_add_header(ex, "Allow", "GET, HEAD, POST");
        saker_exchange_respond_error(ex, 405);
        return;
    }
    saker_counter_add(cw->requests, 1);
    char body[160];
    int n = snprintf(body, sizeof body,
                     "{\"worker\":%u,\"generation\":%" PRIu64 ",\"count\":%" PRIu64 "}\n",
                     saker_worker_index(cw->w), saker_worker_generation(cw->w), cw->count);
    saker_exchange_add_header(ex, "Content-Type", "application/json");
    saker_exchange_respond(ex, 200, body, (size_t)n);
}

static const char *const counter_names[] = {"requests", NULL};

static const struct saker_handler counter_handlers[] = {
    {.name = "json_counter", .init = counter_init, .handle = counter_handle},
    {.name = NULL},
};

SAKER_MODULE_EXPORT saker_module = {
    .abi = SAKER_MODULE_ABI,
    .name = "json_counter",
    .options = counter_options,
    .config_size = sizeof(struct counter_config),
    .counters = counter_names,
    .load = counter_load,
    .worker_init = counter_worker_init,
    .worker_fini = counter_worker_fini,
    .handlers = counter_handlers,
};
