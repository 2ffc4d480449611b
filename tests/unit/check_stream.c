/*
 * check_stream.c - responses given later and streamed (exchange.h's
 * generator), through real connections on a socket pair and a real event
 * loop, with the test handlers (tests/handlers): HTTP/1.1 chunked output
 * with trailers, a declared length, HTTP/1.0 close-delimited, an aborted
 * body, backpressure with a reader that does not read, abandoned
 * exchanges whose producer is told exactly once, HTTP/2 deferred DATA and
 * trailers, a reset stream, and a filter between handler and protocol.
 */
#include <check.h>
#include <ctype.h>
#include <errno.h>
#include <stdatomic.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>
#include <nghttp2/nghttp2.h>

#include "conf/config_parse.h"
#include "tests/handlers/test_handlers.h"
#include "tests/unit/live_worker.h"
#include "tests/unit/stream_client.h"
#include "worker/conn.h"
#include "worker/exchange_filter.h"
#include "worker/handler.h"
#include "worker/worker.h"
#include "tests/unit/unit.h"

#define BIG (4u * 1024 * 1024)

static const char yaml[] =
    "endpoints:\n  a: {url: \"http://127.0.0.1:8080\"}\n"
    "routes:\n"
    "  - path: /stream\n    test_stream: {delay: 30ms, bytes: 200000, piece: 7000, trailer: true}\n"
    "  - path: /len\n    test_stream: {bytes: 100000, length: true}\n"
    "  - path: /short\n    test_stream: {bytes: 100000, length: true, abort_after: 50000}\n"
    "  - path: /abort\n    test_stream: {bytes: 1000000, abort_after: 50000}\n"
    "  - path: /big\n    test_stream: {bytes: 4MiB, piece: 16KiB}\n"
    "  - path: /slow\n    test_stream: {delay: 60s, bytes: 10}\n"
    "  - path: /lent\n    test_stream: {bytes: 1000000, piece: 50000, lent: true}\n"
    "  - path: /lentlen\n    test_stream: {bytes: 1000000, piece: 50000, lent: true, length: true}\n"
    "  - path: /lentabort\n    test_stream: {bytes: 1000000, piece: 50000, lent: true,"
    " abort_after: 300000}\n"
    "  - path: /shout\n    test_shout: {}\n"
    "  - path: /\n    return: {status: 200, body: \"hi\"}\n";

/* ---- `test_shout:` streams "hello, world" through an upper-casing filter
 * that also drops the Content-Length its handler declared ---- */

static int shout_start(struct exchange *ex, struct exchange_filter *f)
{
    (void)f;
    for (size_t i = 0; i < ex->response_header_count; i++)
        if (ex->response_headers[i].name_len == 14 &&
            strncasecmp(ex->response_headers[i].name, "content-length", 14) == 0)
            ex->response_headers[i] = (struct header_field){"X-Was-Length", 12, "12", 2};
    return SK_OK;
}

static int shout_send(struct exchange *ex, struct exchange_filter *f,
                      const struct exchange_buf *bufs, size_t n, enum exchange_send_state state)
{
    struct exchange_buf out[4];
    for (size_t i = 0; i < n && i < 4; i++) {
        char *upper = arena_alloc(ex->arena, bufs[i].len);
        for (size_t j = 0; j < bufs[i].len; j++)
            upper[j] = (char)toupper((unsigned char)bufs[i].base[j]);
        out[i] = (struct exchange_buf){upper, bufs[i].len};
    }
    return exchange_filter_send(ex, f, out, n < 4 ? n : 4, state);
}

static const struct exchange_filter_ops shout_ops = {.start = shout_start, .send = shout_send};

static void shout_proceed(struct exchange *ex, void *arg)
{
    (void)arg;
    struct exchange_buf b = {", world", 7};
    exchange_send(ex, &b, 1, EXCHANGE_FINAL);
}

static const struct exchange_generator shout_gen = {shout_proceed, NULL};

static void shout_handle(struct exchange *ex, const struct route *route, void *state)
{
    (void)route, (void)state;
    struct exchange_filter *f = arena_alloc(ex->arena, sizeof *f);
    f->ops = &shout_ops;
    exchange_add_filter(ex, f);
    exchange_set_generator(ex, &shout_gen, NULL);
    ex->status = 200;
    exchange_add_header(ex, "Content-Length", "12");
    exchange_start(ex);
    struct exchange_buf b = {"hello", 5};
    exchange_send(ex, &b, 1, EXCHANGE_MORE);
}

static const struct cfg_section empty_section = {NULL, 0, NULL};
static const struct handler_schema shout_schema = {.name = "test_shout",
                                                   .section = &empty_section};
static const struct handler_ops shout_ops_kind = {.schema = &shout_schema,
                                                  .handle = shout_handle};

/* ---- fixture --------------------------------------------------------------- */

static void setup(void)
{
    struct err err = {{0}};
    ck_assert_msg(handler_register(&shout_ops_kind, &err) == SK_OK, "%s", err.message);
    live_start(yaml); /* after: its routes name test_shout */
}

static void teardown(void) { live_stop(); }

/* Small buffers, so backpressure shows after little data. */
static struct conn *open_conn(void) { return live_open(64 * 1024); }

static void send_text(const char *text)
{
    ck_assert_int_eq(write(live_client, text, strlen(text)), (ssize_t)strlen(text));
}

static struct reply received;

/* Whole HTTP/1.1 messages at the start of r. */
static int messages_in(const struct reply *reply)
{
    int n = 0;
    size_t at = 0, used;
    struct h1_message m;
    while (at < reply->len && (used = h1_parse_message(reply->data + at, reply->len - at, &m)) > 0) {
        h1_message_free(&m);
        at += used;
        n++;
    }
    return n;
}

/* Runs the loop and reads what the server sends until it closes (or
 * resets), max bytes came, or (messages > 0) that many whole messages
 * did, for at most 2000 turns. */
static struct reply *read_reply_until(size_t max, int messages)
{
    reply_reset(&received);
    for (int turn = 0; turn < 2000 && !received.closed && received.len < max; turn++) {
        live_turn();
        reply_read(&received, live_client, max);
        if (messages > 0 && messages_in(&received) >= messages)
            break;
    }
    return &received;
}

static struct reply *read_reply(size_t max)
{
    return read_reply_until(max, max == SIZE_MAX ? 0 : 1);
}

/* ---- HTTP/1.1 -------------------------------------------------------------- */

START_TEST(h1_stream_after_a_timer_is_chunked_with_trailers)
{
    open_conn();
    send_text("GET /stream HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n");
    for (int turn = 0; turn < 100 && live.timers.count == 0; turn++)
        live_spin(1);
    ck_assert_uint_eq(live.timers.count, 1); /* the answer waits for its timer */
    struct reply *r = read_reply_until(SIZE_MAX, 2);
    struct h1_message m;
    size_t used = h1_parse_message(r->data, r->len, &m);
    ck_assert_msg(used > 0, "no whole message in %zu bytes", r->len);
    ck_assert_int_eq(m.status, 200);
    ck_assert(m.chunked);
    ck_assert_uint_eq(m.body_len, 200000);
    ck_assert(pattern_ok(m.body, m.body_len, 0));
    ck_assert_ptr_nonnull(strstr(m.trailers, "x-checksum: 200000\r\n"));
    /* The pipelined request after it was held back, then answered in order. */
    struct h1_message next;
    ck_assert_uint_gt(h1_parse_message(r->data + used, r->len - used, &next), 0);
    ck_assert_int_eq(next.body_len, 2);
    h1_message_free(&m);
    h1_message_free(&next);
}
END_TEST

START_TEST(h1_declared_length_is_used_as_is)
{
    open_conn();
    send_text("GET /len HTTP/1.1\r\nHost: a\r\n\r\n");
    struct reply *r = read_reply(100000 + 1024);
    struct h1_message m;
    ck_assert_uint_gt(h1_parse_message(r->data, r->len, &m), 0);
    ck_assert(!m.chunked);
    ck_assert_int_eq(m.content_length, 100000);
    ck_assert(pattern_ok(m.body, m.body_len, 0));
    h1_message_free(&m);
}
END_TEST

START_TEST(h1_http10_is_close_delimited)
{
    open_conn();
    send_text("GET /len HTTP/1.0\r\n\r\n");
    struct reply *r = read_reply(SIZE_MAX);
    ck_assert(r->closed && !r->reset);
    ck_assert_ptr_nonnull(strstr(r->data, "Content-Length: 100000\r\n"));
    open_conn();
    send_text("GET /stream HTTP/1.0\r\n\r\n");
    r = read_reply(SIZE_MAX);
    ck_assert(r->closed && !r->reset);
    ck_assert_ptr_null(strstr(r->data, "Transfer-Encoding"));
    ck_assert_ptr_nonnull(strstr(r->data, "Connection: close\r\n"));
    const char *body = strstr(r->data, "\r\n\r\n") + 4;
    ck_assert_uint_eq(r->len - (size_t)(body - r->data), 200000);
    ck_assert(pattern_ok(body, 200000, 0));
}
END_TEST

/* EXCHANGE_ERROR, or a body shorter than its declared length: the client
 * gets a reset, never a terminating chunk. */
START_TEST(h1_aborted_body_is_a_reset_not_an_end)
{
    open_conn();
    send_text("GET /abort HTTP/1.1\r\nHost: a\r\n\r\n");
    struct reply *r = read_reply(SIZE_MAX);
    ck_assert(r->closed);
    ck_assert(r->reset);
    ck_assert_ptr_null(memmem(r->data, r->len, "\r\n0\r\n\r\n", 7));
    open_conn();
    send_text("GET /short HTTP/1.1\r\nHost: a\r\n\r\n");
    r = read_reply(SIZE_MAX);
    ck_assert(r->closed && r->reset);
    ck_assert_uint_eq(test_handler_stops, 0); /* ERROR is a final call: no stop */
}
END_TEST

/* A client that reads nothing: the producer is not asked for more once
 * the queue holds the high-water mark, so the server holds a bounded
 * amount; reading then gets every byte. */
START_TEST(backpressure_with_a_reader_that_stops)
{
    struct conn *c = open_conn();
    send_text("GET /big HTTP/1.1\r\nHost: a\r\n\r\n");
    for (int turn = 0; turn < 300; turn++)
        live_spin(1);
    ck_assert_uint_le(c->out.pending_bytes, OUTQ_HIGH_WATER + 16 * 1024 + 64);
    uint64_t out_so_far = live_slot.counters[SHM_BYTES_OUT];
    ck_assert_uint_lt(out_so_far + c->out.pending_bytes, 2 * 1024 * 1024);
    struct reply *r = read_reply(BIG + 1024 * 1024);
    struct h1_message m;
    ck_assert_uint_gt(h1_parse_message(r->data, r->len, &m), 0);
    ck_assert_uint_eq(m.body_len, BIG);
    ck_assert(pattern_ok(m.body, m.body_len, 0));
    h1_message_free(&m);
}
END_TEST

START_TEST(abandoned_before_the_answer_stops_its_producer_once)
{
    open_conn();
    send_text("GET /slow HTTP/1.1\r\nHost: a\r\n\r\n");
    for (int turn = 0; turn < 100 && live.timers.count == 0; turn++)
        live_spin(1);
    ck_assert_uint_eq(live.timers.count, 1);
    close(live_client);
    live_client = -1;
    for (int turn = 0; turn < 10; turn++)
        live_spin(1);
    ck_assert_uint_eq(live.conn_count, 0);
    ck_assert_uint_eq(test_handler_stops, 1);
    ck_assert_uint_eq(live.timers.count, 0); /* the producer stopped its timer */
    ck_assert_uint_eq(atomic_load(&live_slot.connections_open), 0); /* the open-connection gauge */
}
END_TEST

START_TEST(abandoned_mid_stream_stops_its_producer_once)
{
    open_conn();
    send_text("GET /big HTTP/1.1\r\nHost: a\r\n\r\n");
    struct reply *r = read_reply(300000);
    ck_assert_uint_ge(r->len, 300000);
    close(live_client);
    live_client = -1;
    for (int turn = 0; turn < 20; turn++)
        live_spin(1);
    ck_assert_uint_eq(live.conn_count, 0);
    ck_assert_uint_eq(test_handler_stops, 1);
}
END_TEST

START_TEST(a_filter_sees_the_head_and_every_piece)
{
    open_conn();
    send_text("GET /shout HTTP/1.1\r\nHost: a\r\n\r\n");
    struct reply *r = read_reply(4096);
    struct h1_message m;
    ck_assert_uint_gt(h1_parse_message(r->data, r->len, &m), 0);
    ck_assert(m.chunked); /* the filter dropped the declared length */
    ck_assert_ptr_nonnull(strstr(r->data, "X-Was-Length: 12\r\n"));
    ck_assert_uint_eq(m.body_len, 12);
    ck_assert_int_eq(memcmp(m.body, "HELLO, WORLD", 12), 0);
    h1_message_free(&m);
}
END_TEST

/* Lent pieces leave from the producer's memory, each released once. */
static void h1_lent_body(const char *request, bool chunked)
{
    unsigned lent = test_handler_lent, released = test_handler_released;
    open_conn();
    send_text(request);
    /* Until the whole message: the connection stays open for the next. */
    struct reply *r = read_reply_until(SIZE_MAX, 1);
    struct h1_message m;
    ck_assert_uint_gt(h1_parse_message(r->data, r->len, &m), 0);
    ck_assert_int_eq(m.chunked, chunked);
    ck_assert_uint_eq(m.body_len, 1000000);
    ck_assert(pattern_ok(m.body, m.body_len, 0));
    h1_message_free(&m);
    ck_assert_uint_eq(test_handler_lent - lent, 19); /* the 20th is the FINAL send */
    ck_assert_uint_eq(test_handler_released - released, 19);
}

START_TEST(h1_lent_pieces_chunked)
{
    h1_lent_body("GET /lent HTTP/1.1\r\nHost: a\r\n\r\n", true);
}
END_TEST

START_TEST(h1_lent_pieces_with_a_length)
{
    h1_lent_body("GET /lentlen HTTP/1.1\r\nHost: a\r\n\r\n", false);
}
END_TEST

START_TEST(lent_pieces_of_an_aborted_body_are_released)
{
    unsigned released = test_handler_released;
    open_conn();
    send_text("GET /lentabort HTTP/1.1\r\nHost: a\r\n\r\n");
    struct reply *r = read_reply(SIZE_MAX);
    ck_assert(r->closed);
    live_stop(); /* every queue cleared */
    ck_assert_uint_eq(test_handler_released - released, 6);
    live_start(yaml);
}
END_TEST

/* ---- HTTP/2 ---------------------------------------------------------------- */

START_TEST(h2_lent_pieces_are_held_until_the_proceed)
{
    unsigned lent = test_handler_lent, released = test_handler_released;
    open_conn();
    struct h2_client *h = h2_client_new(live_client, 1u << 30);
    int32_t stream = h2_client_get(h, "/lent");
    h2_client_run(h, live_turn, 4000, stream);
    const struct h2_reply *s = h2_client_reply(h, stream);
    ck_assert_int_eq(s->status, 200);
    ck_assert_uint_eq(s->body_len, 1000000);
    ck_assert(pattern_ok(s->body, s->body_len, 0));
    ck_assert_uint_eq(test_handler_lent - lent, 19);
    ck_assert_uint_eq(test_handler_released - released, 19);
    h2_client_free(h);
}
END_TEST

START_TEST(h2_deferred_data_with_trailers)
{
    open_conn();
    struct h2_client *h = h2_client_new(live_client, 1u << 30);
    int32_t stream = h2_client_get(h, "/stream");
    int32_t other = h2_client_get(h, "/");
    h2_client_run(h, live_turn, 2000, stream);
    h2_client_run(h, live_turn, 2000, other);
    const struct h2_reply *s = h2_client_reply(h, stream);
    ck_assert_int_eq(s->status, 200);
    ck_assert_uint_eq(s->body_len, 200000);
    ck_assert(pattern_ok(s->body, s->body_len, 0));
    ck_assert_ptr_nonnull(strstr(s->trailers, "x-checksum: 200000\n"));
    ck_assert_uint_eq(h2_client_reply(h, other)->body_len, 2); /* not held behind it */
    h2_client_free(h);
}
END_TEST

START_TEST(h2_reset_stream_stops_its_producer_and_the_connection_goes_on)
{
    open_conn();
    struct h2_client *h = h2_client_new(live_client, 65535); /* no window updates: it stalls */
    int32_t big = h2_client_get(h, "/big");
    for (int turn = 0; turn < 200 && h2_client_reply(h, big)->body_len < 65535; turn++)
        h2_client_run(h, live_turn, 1, 0);
    ck_assert_uint_eq(h2_client_reply(h, big)->body_len, 65535);
    h2_client_reset(h, big);
    int32_t after = h2_client_get(h, "/");
    h2_client_run(h, live_turn, 200, after);
    ck_assert_uint_eq(h2_client_reply(h, after)->body_len, 2);
    ck_assert_uint_eq(test_handler_stops, 1);
    ck_assert_uint_eq(live.conn_count, 1);
    h2_client_free(h);
}
END_TEST

static Suite *stream_suite(void)
{
    Suite *s = suite_create("stream");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, h1_stream_after_a_timer_is_chunked_with_trailers);
    tcase_add_test(tc, h1_declared_length_is_used_as_is);
    tcase_add_test(tc, h1_http10_is_close_delimited);
    tcase_add_test(tc, h1_aborted_body_is_a_reset_not_an_end);
    tcase_add_test(tc, backpressure_with_a_reader_that_stops);
    tcase_add_test(tc, abandoned_before_the_answer_stops_its_producer_once);
    tcase_add_test(tc, abandoned_mid_stream_stops_its_producer_once);
    tcase_add_test(tc, a_filter_sees_the_head_and_every_piece);
    tcase_add_test(tc, h2_deferred_data_with_trailers);
    tcase_add_test(tc, h1_lent_pieces_chunked);
    tcase_add_test(tc, h1_lent_pieces_with_a_length);
    tcase_add_test(tc, lent_pieces_of_an_aborted_body_are_released);
    tcase_add_test(tc, h2_lent_pieces_are_held_until_the_proceed);
    tcase_add_test(tc, h2_reset_stream_stops_its_producer_and_the_connection_goes_on);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return unit_run(stream_suite()); }
