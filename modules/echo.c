/*
 * echo.c - streams the request body back as it arrives, at flat memory
 * whatever its size: one piece in flight at a time, and the body paused
 * until the client has taken it (the send's proceed), so a client that
 * uploads faster than it downloads is slowed down instead of buffered.
 *
 *   - path: /echo
 *     module: { handler: echo }
 */
#include <stdlib.h>
#include <string.h>

#include <saker/module.h>

struct echo {
    saker_exchange *ex;
    char *buf;    /* the piece in flight, in the exchange's memory */
    size_t size;
    bool waiting; /* a MORE send waits for its proceed */
    bool ended;   /* the request body ended */
    bool done;    /* the final send was made */
};

static void echo_finish(struct echo *e)
{
    e->done = true;
    saker_exchange_send(e->ex, NULL, 0, SAKER_SEND_FINAL);
}

static void echo_data(saker_exchange *ex, const void *data, size_t len, void *arg)
{
    struct echo *e = arg;
    if (len > e->size) { /* grows to the largest piece once, then stays */
        e->buf = saker_exchange_alloc(ex, len);
        e->size = e->buf != NULL ? len : 0;
        if (e->buf == NULL) {
            saker_exchange_send(ex, NULL, 0, SAKER_SEND_ERROR);
            return;
        }
    }
    memcpy(e->buf, data, len);
    struct saker_buf piece = {e->buf, len};
    e->waiting = true;
    saker_exchange_pause_body(ex); /* until this piece is taken */
    saker_exchange_send(ex, &piece, 1, SAKER_SEND_MORE);
}

static void echo_end(saker_exchange *ex, void *arg)
{
    struct echo *e = arg;
    (void)ex;
    e->ended = true;
    if (!e->waiting)
        echo_finish(e);
}

static void echo_error(saker_exchange *ex, int status, void *arg)
{
    (void)ex, (void)status;
    ((struct echo *)arg)->ended = true; /* saker answers or aborts */
}

static void echo_proceed(saker_exchange *ex, void *arg)
{
    struct echo *e = arg;
    e->waiting = false;
    if (e->ended && !e->done)
        echo_finish(e);
    else
        saker_exchange_resume_body(ex);
}

static void echo_stop(saker_exchange *ex, void *arg)
{
    (void)ex, (void)arg; /* everything is in the exchange's memory */
}

static const struct saker_body_reader echo_reader = {echo_data, echo_end, echo_error};
static const struct saker_generator echo_generator = {echo_proceed, echo_stop};

static void echo_handle(saker_exchange *ex, void *state)
{
    (void)state;
    struct echo *e = saker_exchange_alloc(ex, sizeof *e);
    if (e == NULL) {
        saker_exchange_respond_error(ex, 500);
        return;
    }
    memset(e, 0, sizeof *e);
    e->ex = ex;
    saker_exchange_defer(ex, &echo_generator, e);
    if (saker_exchange_read_body(ex, &echo_reader, e) != SAKER_OK) {
        saker_exchange_respond_error(ex, 500);
        return;
    }
    size_t len;
    const char *type = saker_exchange_header(ex, "Content-Type", &len);
    char ctype[128] = "application/octet-stream";
    if (type != NULL && len < sizeof ctype) {
        memcpy(ctype, type, len);
        ctype[len] = '\0';
    }
    saker_exchange_add_header(ex, "Content-Type", ctype);
    saker_exchange_start(ex, 200);
}

static const struct saker_handler echo_handlers[] = {
    {.name = "echo", .reads_body = true, .handle = echo_handle},
    {.name = NULL},
};

SAKER_MODULE_EXPORT saker_module = {
    .abi = SAKER_MODULE_ABI,
    .name = "echo",
    .handlers = echo_handlers,
};
