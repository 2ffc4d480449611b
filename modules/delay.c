/*
 * delay.c - answers after a timer: `?ms=N` (at most max), else the
 * route's ms. The worker keeps serving everything else meanwhile: a
 * module waits with saker_timer, never with sleep().
 *
 *   - path: /delay
 *     module: { handler: delay, ms: 100ms, max: 10s }
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <saker/module.h>

struct delay_options {
    uint64_t ms;
    uint64_t max;
};

static const struct saker_option delay_options[] = {
    {"ms", SAKER_OPTION_DURATION, offsetof(struct delay_options, ms), "100ms", false},
    {"max", SAKER_OPTION_DURATION, offsetof(struct delay_options, max), "10s", false},
    {NULL, 0, 0, NULL, false},
};

struct delay_route {
    saker_worker *w;
    const struct delay_options *o;
};

struct delay {
    saker_exchange *ex;
    saker_timer *timer; /* in the exchange's memory */
    uint64_t ms;
};

static int delay_init(saker_worker *w, const void *options, void *module_state, void **state,
                      saker_err *err)
{
    (void)module_state;
    struct delay_route *r = malloc(sizeof *r);
    if (r == NULL)
        return saker_err_set(err, "out of memory");
    r->w = w;
    r->o = options;
    *state = r;
    return SAKER_OK;
}

static void delay_fini(void *state)
{
    free(state);
}

static void delay_fire(saker_timer *t, void *arg)
{
    struct delay *d = arg;
    char text[64];
    int n = snprintf(text, sizeof text, "waited %llu ms\n", (unsigned long long)d->ms);
    (void)t;
    saker_exchange_add_header(d->ex, "Content-Type", "text/plain");
    saker_exchange_respond(d->ex, 200, text, (size_t)n);
}

/* The client left before the timer: it must not fire on a dead exchange. */
static void delay_stop(saker_exchange *ex, void *arg)
{
    struct delay *d = arg;
    (void)ex;
    saker_timer_stop(d->timer);
}

static const struct saker_generator delay_generator = {NULL, delay_stop};

static uint64_t delay_wanted(saker_exchange *ex, const struct delay_options *o)
{
    size_t len;
    const char *q = saker_exchange_query(ex, &len);
    char digits[24];
    if (q == NULL || len < 4 || len - 3 >= sizeof digits || strncmp(q, "ms=", 3) != 0)
        return o->ms;
    memcpy(digits, q + 3, len - 3);
    digits[len - 3] = '\0';
    uint64_t ms = strtoull(digits, NULL, 10);
    return ms > o->max ? o->max : ms;
}

static void delay_handle(saker_exchange *ex, void *state)
{
    const struct delay_route *r = state;
    struct delay *d = saker_exchange_alloc(ex, sizeof *d);
    if (d == NULL || (d->timer = saker_timer_new(r->w, ex, delay_fire, d)) == NULL) {
        saker_exchange_respond_error(ex, 500);
        return;
    }
    d->ex = ex;
    d->ms = delay_wanted(ex, r->o);
    saker_exchange_defer(ex, &delay_generator, d);
    if (saker_timer_start(d->timer, d->ms) != SAKER_OK)
        saker_exchange_respond_error(ex, 500);
}

static const struct saker_handler delay_handlers[] = {
    {.name = "delay", .options = delay_options, .config_size = sizeof(struct delay_options),
     .init = delay_init, .handle = delay_handle, .fini = delay_fini},
    {.name = NULL},
};

SAKER_MODULE_EXPORT saker_module = {
    .abi = SAKER_MODULE_ABI,
    .name = "delay",
    .handlers = delay_handlers,
};
