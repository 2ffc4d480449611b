/*
 * check_body.c - request bodies read by their handler as a stream
 * (exchange_read_body), through real connections on loopback TCP and a
 * real event loop, with the echo test handler: HTTP/1.1 Content-Length
 * and chunked (with trailers, which never become request headers), 100
 * Continue only once the body is asked for, HTTP/2 DATA with trailers,
 * over the limit (413), a slow body (408), and a client that leaves
 * mid-body. Also the regression of trailers read as headers: a chunked
 * request whose trailer carries Range or If-None-Match is answered as if
 * it had none.
 */
#include <check.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include "common/clock.h"
#include "conf/config_parse.h"
#include "tests/handlers/test_handlers.h"
#include "tests/unit/live_worker.h"
#include "tests/unit/stream_client.h"
#include "worker/conn.h"
#include "worker/worker.h"
#include "tests/unit/unit.h"

static char root[] = "/tmp/check_body.XXXXXX";

static void setup(void)
{
    static char yaml[1024];
    strcpy(root, "/tmp/check_body.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(root));
    char path[256];
    snprintf(path, sizeof path, "%s/f.txt", root);
    FILE *f = fopen(path, "w");
    fputs("0123456789", f);
    fclose(f);
    snprintf(yaml, sizeof yaml,
             "endpoints:\n  a: {url: \"http://127.0.0.1:8080\"}\n"
             "limits: {min_request_body_data_rate: {bytes_per_second: 1000, grace_period: 1s}}\n"
             "routes:\n"
             "  - path: /echo\n    test_echo: {}\n"
             "  - path: /small\n    max_request_body_size: 1000\n    test_echo: {}\n"
             "  - path: /files\n    static: {root: %s}\n", root);
    live_start(yaml);
}

static void teardown(void)
{
    live_stop();
    char path[256];
    snprintf(path, sizeof path, "%s/f.txt", root);
    unlink(path);
    rmdir(root);
}

static struct conn *open_conn(void) { return live_open(0); }

/* Writes all of text while running the loop (the server reads as we go). */
static void send_all(const char *data, size_t len)
{
    size_t sent = 0;
    for (int turn = 0; turn < 10000 && sent < len; turn++) {
        ssize_t n = write(live_client, data + sent, len - sent);
        if (n > 0)
            sent += (size_t)n;
        live_spin(1);
    }
    ck_assert_uint_eq(sent, len);
}

static struct reply received;

/* Reads until one whole message came, or the server closed. */
static struct h1_message read_message(void)
{
    struct h1_message m = {0};
    reply_reset(&received);
    for (int turn = 0; turn < 2000 && !received.closed; turn++) {
        live_turn();
        reply_read(&received, live_client, SIZE_MAX);
        if (h1_parse_message(received.data, received.len, &m) > 0)
            return m;
    }
    ck_abort_msg("no whole message: %zu bytes, closed %d", received.len, received.closed);
    return m;
}

static char *random_body(size_t len)
{
    char *b = malloc(len);
    for (size_t i = 0; i < len; i++)
        b[i] = (char)('A' + (i * 7 + i / 977) % 53);
    return b;
}

START_TEST(h1_content_length_body_streams_back)
{
    open_conn();
    size_t len = 3 * 1024 * 1024;
    char *body = random_body(len);
    char head[128];
    snprintf(head, sizeof head, "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: %zu\r\n\r\n",
             len);
    send_all(head, strlen(head));
    struct reply r;
    memset(&r, 0, sizeof r);
    reply_reset(&r);
    /* The echo answers as the body comes: read while sending. */
    size_t sent = 0;
    for (int turn = 0; turn < 20000 && (sent < len || r.len < len); turn++) {
        ssize_t n = sent < len ? write(live_client, body + sent, len - sent) : 0;
        if (n > 0)
            sent += (size_t)n;
        live_spin(1);
        reply_read(&r, live_client, SIZE_MAX);
        struct h1_message m;
        if (h1_parse_message(r.data, r.len, &m) > 0) {
            ck_assert(m.chunked);
            ck_assert_uint_eq(m.body_len, len);
            ck_assert_int_eq(memcmp(m.body, body, len), 0);
            h1_message_free(&m);
            free(body);
            free(r.data);
            return;
        }
    }
    ck_abort_msg("echo incomplete: sent %zu, received %zu", sent, r.len);
}
END_TEST

START_TEST(h1_chunked_body_with_trailers)
{
    open_conn();
    const char *req = "POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                      "5\r\nhello\r\n7\r\n, world\r\n0\r\nX-Sum: 12\r\n\r\n";
    send_all(req, strlen(req));
    struct h1_message m = read_message();
    ck_assert_int_eq(m.status, 200);
    ck_assert_uint_eq(m.body_len, 12);
    ck_assert_int_eq(memcmp(m.body, "hello, world", 12), 0);
    ck_assert_msg(strstr(m.trailers, "x-echo-X-Sum: 12\r\n") != NULL, "%s", m.trailers);
    h1_message_free(&m);
}
END_TEST

/* Regression: trailer fields were pushed as request headers, so a Range
 * or If-None-Match in a chunked request's trailer changed the answer. */
START_TEST(h1_trailers_never_become_request_headers)
{
    open_conn();
    const char *req = "GET /files/f.txt HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                      "0\r\nRange: bytes=0-0\r\nIf-None-Match: *\r\n\r\n";
    send_all(req, strlen(req));
    struct h1_message m = read_message();
    ck_assert_int_eq(m.status, 200); /* not 206, not 304 */
    ck_assert_uint_eq(m.body_len, 10);
    h1_message_free(&m);
}
END_TEST

START_TEST(h1_continue_is_sent_when_the_body_is_asked_for)
{
    open_conn();
    const char *head = "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n"
                       "Expect: 100-continue\r\n\r\n";
    send_all(head, strlen(head));
    reply_reset(&received);
    for (int turn = 0; turn < 100 && received.len < 25; turn++) {
        live_turn();
        reply_read(&received, live_client, SIZE_MAX);
    }
    ck_assert_msg(strncmp(received.data, "HTTP/1.1 100 Continue\r\n\r\n", 25) == 0, "%s",
                  received.data);
    send_all("hello", 5);
    struct h1_message m;
    for (int turn = 0; turn < 200; turn++) {
        live_turn();
        reply_read(&received, live_client, SIZE_MAX);
        if (h1_parse_message(received.data + 25, received.len - 25, &m) > 0)
            break;
    }
    ck_assert_uint_eq(m.body_len, 5);
    ck_assert_int_eq(memcmp(m.body, "hello", 5), 0);
    h1_message_free(&m);
}
END_TEST

START_TEST(h1_over_the_limit_is_413)
{
    open_conn();
    char *body = random_body(5000);
    const char *head = "POST /small HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";
    send_all(head, strlen(head));
    char chunk[64];
    snprintf(chunk, sizeof chunk, "%x\r\n", 5000);
    send_all(chunk, strlen(chunk));
    send_all(body, 5000);
    reply_reset(&received);
    for (int turn = 0; turn < 500 && !received.closed; turn++) {
        live_turn();
        reply_read(&received, live_client, SIZE_MAX);
    }
    free(body);
    /* The echo had started its answer: the 413 can only be a reset of it,
     * never a complete-looking body. */
    ck_assert(received.closed);
    ck_assert_ptr_null(memmem(received.data, received.len, "\r\n0\r\n\r\n", 7));
    ck_assert_uint_eq(live_slot.counters[SHM_REJECT_BODY_TOO_LARGE], 1);
}
END_TEST

START_TEST(h1_client_leaving_mid_body_stops_the_handler)
{
    open_conn();
    const char *head = "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 100000\r\n\r\nabc";
    send_all(head, strlen(head));
    for (int turn = 0; turn < 10; turn++)
        live_turn();
    close(live_client);
    live_client = -1;
    for (int turn = 0; turn < 20; turn++)
        live_spin(1);
    ck_assert_uint_eq(live.conn_count, 0);
    ck_assert_uint_eq(test_handler_stops, 1);
}
END_TEST

START_TEST(h1_slow_body_is_408)
{
    struct conn *c = open_conn();
    const char *head = "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 100000\r\n\r\nabc";
    send_all(head, strlen(head));
    for (int turn = 0; turn < 10; turn++)
        live_turn();
    worker_tick(&live, clock_monotonic_ms() + 3000); /* 3 bytes in 3 s: below 1000 B/s */
    reply_reset(&received);
    for (int turn = 0; turn < 100 && !received.closed; turn++) {
        live_turn();
        reply_read(&received, live_client, SIZE_MAX);
    }
    (void)c;
    ck_assert(received.closed);
    ck_assert_uint_eq(live_slot.counters[SHM_REJECT_BODY_RATE], 1);
}
END_TEST

/* ---- HTTP/2 ---------------------------------------------------------------- */

static void h2_until_done(struct h2_client *h, int32_t stream)
{
    h2_client_run(h, live_turn, 3000, stream);
    ck_assert_msg(h2_client_done(h, stream), "stream %d never ended: %zu bytes, status %d, conns %zu",
                  stream, h2_client_reply(h, stream)->body_len, h2_client_reply(h, stream)->status,
                  live.conn_count);
}

START_TEST(h2_data_streams_back)
{
    open_conn();
    struct h2_client *h = h2_client_new(live_client, 1u << 30);
    size_t len = 2 * 1024 * 1024 + 3333;
    char *body = random_body(len);
    int32_t s = h2_client_post(h, "/echo", body, len);
    h2_until_done(h, s);
    const struct h2_reply *r = h2_client_reply(h, s);
    ck_assert_int_eq(r->status, 200);
    ck_assert_uint_eq(r->body_len, len);
    ck_assert_int_eq(memcmp(r->body, body, len), 0);
    free(body);
    h2_client_free(h);
}
END_TEST

START_TEST(h2_over_the_limit_is_413_and_a_reset)
{
    open_conn();
    struct h2_client *h = h2_client_new(live_client, 1u << 30);
    char *body = random_body(5000);
    int32_t s = h2_client_post(h, "/small", body, 5000);
    h2_until_done(h, s);
    const struct h2_reply *r = h2_client_reply(h, s);
    ck_assert_msg(r->reset >= 0 || r->status == 413, "status %d reset %d ended %d len %zu", r->status, r->reset, r->ended, r->body_len);
    ck_assert(!(r->ended && r->reset < 0 && r->status == 200)); /* never a complete echo */
    ck_assert_uint_eq(live_slot.counters[SHM_REJECT_BODY_TOO_LARGE], 1);
    free(body);
    h2_client_free(h);
}
END_TEST

START_TEST(h2_trailers_reach_the_handler_as_trailers)
{
    open_conn();
    struct h2_client *h = h2_client_new(live_client, 1u << 30);
    int32_t s = h2_client_post_trailer(h, "/echo", "hello", 5, "x-sum", "5");
    h2_until_done(h, s);
    const struct h2_reply *r = h2_client_reply(h, s);
    ck_assert_int_eq(r->status, 200);
    ck_assert_uint_eq(r->body_len, 5);
    ck_assert_msg(strstr(r->trailers, "x-echo-x-sum: 5\n") != NULL, "%s", r->trailers);
    h2_client_free(h);
}
END_TEST

START_TEST(h2_reset_mid_body_stops_the_handler)
{
    open_conn();
    struct h2_client *h = h2_client_new(live_client, 1u << 30);
    int32_t s = h2_client_post_open(h, "/echo", "abc", 3);
    h2_client_run(h, live_turn, 20, 0);
    ck_assert_uint_eq(h2_client_reply(h, s)->body_len, 3); /* echoed as it came */
    h2_client_reset(h, s);
    h2_client_run(h, live_turn, 20, 0);
    ck_assert_uint_eq(test_handler_stops, 1);
    ck_assert_uint_eq(live.conn_count, 1);
    h2_client_free(h);
}
END_TEST

START_TEST(h2_slow_body_is_408)
{
    open_conn();
    struct h2_client *h = h2_client_new(live_client, 1u << 30);
    int32_t s = h2_client_post_open(h, "/echo", "abc", 3);
    h2_client_run(h, live_turn, 20, 0);
    worker_tick(&live, clock_monotonic_ms() + 3000); /* 3 bytes in 3 s: below 1000 B/s */
    h2_until_done(h, s);
    const struct h2_reply *r = h2_client_reply(h, s);
    ck_assert_int_ge(r->reset, 0); /* the echo had started: a reset, not a complete body */
    ck_assert_uint_eq(live_slot.counters[SHM_REJECT_BODY_RATE], 1);
    h2_client_free(h);
}
END_TEST

static Suite *body_suite(void)
{
    Suite *s = suite_create("body");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, h1_content_length_body_streams_back);
    tcase_add_test(tc, h1_chunked_body_with_trailers);
    tcase_add_test(tc, h1_trailers_never_become_request_headers);
    tcase_add_test(tc, h1_continue_is_sent_when_the_body_is_asked_for);
    tcase_add_test(tc, h1_over_the_limit_is_413);
    tcase_add_test(tc, h1_client_leaving_mid_body_stops_the_handler);
    tcase_add_test(tc, h1_slow_body_is_408);
    tcase_add_test(tc, h2_data_streams_back);
    tcase_add_test(tc, h2_over_the_limit_is_413_and_a_reset);
    tcase_add_test(tc, h2_trailers_reach_the_handler_as_trailers);
    tcase_add_test(tc, h2_reset_mid_body_stops_the_handler);
    tcase_add_test(tc, h2_slow_body_is_408);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return unit_run(body_suite()); }
