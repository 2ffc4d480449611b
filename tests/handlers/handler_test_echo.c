/*
 * handler_test_echo.c - `test_echo:`, the request body streamed back as
 * it arrives (with its trailers as the response's), one piece at a time:
 * the body is paused while a piece waits for its proceed, which is the
 * backpressure from the client reading the response to the client
 * sending the request; and `test_upgrade:`, the same echo over the
 * tunnel of an accepted upgrade (101, Upgrade: echo). See test_handlers.h.
 */
#include <string.h>

#include "conf/config_parse.h"
#include "tests/handlers/test_handlers.h"
#include "worker/handler.h"

struct echo {
    struct exchange *ex;
    char *buf;          /* the piece in flight, in the exchange's arena */
    size_t size;
    bool waiting;       /* a MORE send waits for its proceed */
    bool ended;         /* the request body ended */
    bool finished;      /* the FINAL send was made */
};

static void echo_finish(struct echo *e)
{
    e->finished = true;
    exchange_send(e->ex, NULL, 0, EXCHANGE_FINAL);
}

static void echo_data(struct exchange *ex, const char *data, size_t len, void *arg)
{
    struct echo *e = arg;
    if (len > e->size) { /* the pieces of a send live until the exchange ends */
        e->buf = arena_alloc(ex->arena, len);
        e->size = e->buf != NULL ? len : 0;
        if (e->buf == NULL) {
            exchange_send(ex, NULL, 0, EXCHANGE_ERROR);
            return;
        }
    }
    memcpy(e->buf, data, len);
    struct exchange_buf piece = {e->buf, len};
    e->waiting = true;
    exchange_pause_body(ex); /* until this piece is taken */
    exchange_send(ex, &piece, 1, EXCHANGE_MORE);
}

static void echo_end(struct exchange *ex, const struct header_field *trailers, size_t count,
                     void *arg)
{
    struct echo *e = arg;
    for (size_t i = 0; i < count; i++) {
        char name[256];
        size_t n = trailers[i].name_len < 200 ? trailers[i].name_len : 200;
        memcpy(name, "x-echo-", 7);
        memcpy(name + 7, trailers[i].name, n);
        name[7 + n] = '\0';
        char *value = arena_strndup(ex->arena, trailers[i].value, trailers[i].value_len);
        if (value != NULL)
            exchange_add_trailer(ex, name, value);
    }
    e->ended = true;
    if (!e->waiting)
        echo_finish(e);
}

static void echo_error(struct exchange *ex, int status, void *arg)
{
    (void)ex, (void)status;
    ((struct echo *)arg)->ended = true; /* the protocol answers or aborts */
}

static void echo_proceed(struct exchange *ex, void *arg)
{
    struct echo *e = arg;
    e->waiting = false;
    if (e->ended && !e->finished)
        echo_finish(e);
    else
        exchange_resume_body(ex);
}

static void echo_stop(struct exchange *ex, void *arg)
{
    (void)ex, (void)arg;
    test_handler_stops++;
}

static const struct exchange_body_reader echo_reader = {echo_data, echo_end, echo_error};
static const struct exchange_generator echo_generator = {echo_proceed, echo_stop};

static struct echo *echo_new(struct exchange *ex)
{
    struct echo *e = arena_alloc(ex->arena, sizeof *e);
    if (e == NULL)
        return NULL;
    memset(e, 0, sizeof *e);
    e->ex = ex;
    exchange_set_generator(ex, &echo_generator, e);
    return e;
}

static void echo_handle(struct exchange *ex, const struct route *route, void *state)
{
    (void)route, (void)state;
    struct echo *e = echo_new(ex);
    if (e == NULL || exchange_read_body(ex, &echo_reader, e) != SK_OK) {
        exchange_respond_error(ex, 500);
        return;
    }
    ex->status = 200;
    exchange_add_header(ex, "Content-Type", "application/octet-stream");
    exchange_start(ex);
}

static const struct cfg_section echo_section = {NULL, 0, NULL};

static const struct handler_schema echo_schema = {
    .name = "test_echo",
    .section = &echo_section,
    .config_size = 0,
};

const struct handler_ops handler_test_echo_ops = {
    .schema = &echo_schema,
    .handle = echo_handle,
    .reads_body = true,
};

/* The tunnel's bytes come through the same reader, and go back with the
 * same sends: the handler does not know it is a tunnel. */
static void upgrade_handle(struct exchange *ex, const struct route *route, void *state)
{
    (void)route, (void)state;
    struct echo *e = echo_new(ex);
    int rc = e != NULL ? exchange_upgrade(ex, "echo") : SK_ERROR;
    if (rc != SK_OK) { /* not asked, or max_concurrent_upgraded_connections */
        exchange_respond_error(ex, rc == SK_DECLINED ? 503 : 500);
        return;
    }
    if (exchange_read_body(ex, &echo_reader, e) != SK_OK)
        exchange_send(ex, NULL, 0, EXCHANGE_ERROR);
}

static const struct handler_schema upgrade_schema = {
    .name = "test_upgrade",
    .section = &echo_section,
    .config_size = 0,
};

const struct handler_ops handler_test_upgrade_ops = {
    .schema = &upgrade_schema,
    .handle = upgrade_handle,
};
