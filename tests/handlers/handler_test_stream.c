/*
 * handler_test_stream.c - `test_stream:`, a response given after a timer
 * and streamed in pieces with backpressure; see test_handlers.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/config_parse.h"
#include "tests/handlers/test_handlers.h"
#include "worker/handler.h"
#include "worker/timer.h"
#include "worker/worker.h"

#define PIECE_MAX (64 * 1024)

struct stream_config {
    uint64_t delay_ms;
    uint64_t bytes;
    uint64_t piece;
    uint64_t abort_after;
    bool whole;
    bool length;
    bool trailer;
    char *content_type;
    bool lent;
};

static const struct cfg_option stream_options[] = {
    {.name = "delay", .offset = offsetof(struct stream_config, delay_ms),
     .scalar = cfg_parse_duration, .def = "0"},
    {.name = "bytes", .offset = offsetof(struct stream_config, bytes),
     .scalar = cfg_parse_size, .def = "0"},
    {.name = "piece", .offset = offsetof(struct stream_config, piece),
     .scalar = cfg_parse_size, .def = "16KiB"},
    {.name = "abort_after", .offset = offsetof(struct stream_config, abort_after),
     .scalar = cfg_parse_size, .def = "0"},
    {.name = "whole", .offset = offsetof(struct stream_config, whole),
     .scalar = cfg_parse_bool, .def = "false"},
    {.name = "length", .offset = offsetof(struct stream_config, length),
     .scalar = cfg_parse_bool, .def = "false"},
    {.name = "trailer", .offset = offsetof(struct stream_config, trailer),
     .scalar = cfg_parse_bool, .def = "false"},
    {.name = "content_type", .offset = offsetof(struct stream_config, content_type),
     .scalar = cfg_parse_string, .def = "application/octet-stream"},
    {.name = "lent", .offset = offsetof(struct stream_config, lent),
     .scalar = cfg_parse_bool, .def = "false"},
};

static const struct cfg_section stream_section = {
    stream_options, sizeof stream_options / sizeof stream_options[0], NULL};

static void stream_release(void *handler_config)
{
    free(((struct stream_config *)handler_config)->content_type);
}

static const struct handler_schema stream_schema = {
    .name = "test_stream",
    .section = &stream_section,
    .config_size = sizeof(struct stream_config),
    .release = stream_release,
};

unsigned test_handler_stops;
unsigned test_handler_lent, test_handler_released;

/* A lent piece's release: its bytes are spoiled first, so a protocol
 * that read them afterwards would send the wrong body. */
static void lent_release(void *arg)
{
    char *copy = arg;
    size_t len;
    memcpy(&len, copy, sizeof len);
    memset(copy, '#', sizeof len + len);
    free(copy);
    test_handler_released++;
}

/* A MORE piece sent as a malloc'd copy, lent (lent: true). */
static void stream_send_lent(struct exchange *ex, const struct exchange_buf *buf)
{
    char *copy = malloc(sizeof buf->len + buf->len);
    if (copy == NULL) {
        exchange_send(ex, NULL, 0, EXCHANGE_ERROR);
        return;
    }
    memcpy(copy, &buf->len, sizeof buf->len);
    memcpy(copy + sizeof buf->len, buf->base, buf->len);
    struct exchange_buf piece = {copy + sizeof buf->len, buf->len};
    test_handler_lent++;
    exchange_send_lent(ex, &piece, lent_release, copy);
}

/* 'a' + i % 26 for every i, with room to start a piece at any phase. */
static char pattern[PIECE_MAX + 26];

/* One exchange's producer, in the exchange's arena. */
struct stream {
    struct timer timer; /* first: the timer's fire finds the stream */
    struct exchange *ex;
    const struct stream_config *config;
    uint64_t sent;
};

static void stream_next(struct stream *s)
{
    const struct stream_config *c = s->config;
    uint64_t left = c->bytes - s->sent, piece = c->piece < PIECE_MAX ? c->piece : PIECE_MAX;
    size_t len = (size_t)(left < piece ? left : piece);
    struct exchange_buf buf = {pattern + s->sent % 26, len};
    enum exchange_send_state state = len == left ? EXCHANGE_FINAL : EXCHANGE_MORE;
    if (c->abort_after != 0 && s->sent >= c->abort_after) {
        exchange_send(s->ex, NULL, 0, EXCHANGE_ERROR);
        return;
    }
    if (state == EXCHANGE_FINAL && c->trailer) {
        char value[24];
        snprintf(value, sizeof value, "%llu", (unsigned long long)c->bytes);
        exchange_add_trailer(s->ex, "x-checksum", value);
    }
    s->sent += len;
    if (c->lent && state == EXCHANGE_MORE)
        stream_send_lent(s->ex, &buf);
    else
        exchange_send(s->ex, &buf, 1, state); /* SK_ERROR: stop follows */
}

static void stream_begin(struct stream *s)
{
    struct exchange *ex = s->ex;
    ex->status = 200;
    exchange_add_header(ex, "Content-Type", s->config->content_type);
    if (s->config->whole) {
        exchange_set_body(ex, pattern, (size_t)s->config->bytes, 0);
        exchange_respond(ex);
        return;
    }
    if (s->config->length) {
        char value[24];
        snprintf(value, sizeof value, "%llu", (unsigned long long)s->config->bytes);
        exchange_add_header(ex, "Content-Length", value);
    }
    if (exchange_start(ex) == SK_OK)
        stream_next(s);
}

static void on_delay(struct timer *t)
{
    stream_begin((struct stream *)t);
}

static void stream_proceed(struct exchange *ex, void *arg)
{
    (void)ex;
    stream_next(arg);
}

static void stream_stop(struct exchange *ex, void *arg)
{
    struct stream *s = arg;
    timer_stop(&ex->worker->timers, &s->timer);
    test_handler_stops++;
}

static const struct exchange_generator stream_generator = {stream_proceed, stream_stop};

static void stream_handle(struct exchange *ex, const struct route *route, void *state)
{
    (void)state;
    struct stream *s = arena_alloc(ex->arena, sizeof *s);
    if (s == NULL) {
        exchange_respond_error(ex, 500);
        return;
    }
    s->ex = ex;
    s->config = route->handler_config;
    s->sent = 0;
    if (s->config->whole && s->config->bytes > PIECE_MAX) {
        exchange_respond_error(ex, 500); /* a whole body comes from the pattern */
        return;
    }
    exchange_set_generator(ex, &stream_generator, s);
    timer_init(&s->timer, on_delay);
    if (s->config->delay_ms == 0)
        stream_begin(s);
    else if (timer_start(&ex->worker->timers, &s->timer, s->config->delay_ms) != SK_OK)
        exchange_respond_error(ex, 500);
}

static int stream_init(const struct route *route, void **state, struct err *err)
{
    (void)route, (void)err;
    for (size_t i = 0; i < sizeof pattern; i++)
        pattern[i] = (char)('a' + i % 26);
    *state = NULL;
    return SK_OK;
}

const struct handler_ops handler_test_stream_ops = {
    .schema = &stream_schema,
    .init = stream_init,
    .handle = stream_handle,
};
