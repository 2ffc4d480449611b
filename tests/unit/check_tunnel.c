/*
 * check_tunnel.c - the tunnel of an accepted upgrade (worker/tunnel.c),
 * through real connections on loopback TCP and a real event loop, with
 * the upgrade test handler, which echoes over the same exchange calls as
 * any streamed exchange: 101 then bytes both ways (those sent with the
 * request included), backpressure both ways, the client's half-close
 * ending it, a client that leaves telling the handler once, a request
 * that did not ask, and HTTP/2, which cannot switch.
 */
#include <check.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include "tests/handlers/test_handlers.h"
#include "tests/unit/live_worker.h"
#include "tests/unit/stream_client.h"
#include "worker/tunnel.h"
#include "tests/unit/unit.h"

static const char yaml[] = "endpoints:\n  a: {url: \"http://127.0.0.1:8080\"}\n"
                           "routes:\n  - path: /up\n    test_upgrade: {}\n";
static void setup(void) { live_start(yaml); }
static void teardown(void) { live_stop(); }

static struct reply received;

/* Runs the loop, reading, until want bytes came or the server closed. */
static void read_until(size_t want)
{
    for (int turn = 0; turn < 1000 && received.len < want && !received.closed; turn++) {
        live_turn();
        reply_read(&received, live_client, SIZE_MAX);
    }
}

static const char upgrade[] = "GET /up HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\n"
                              "Upgrade: echo\r\n\r\n";

START_TEST(bytes_go_both_ways_after_101)
{
    struct conn *c = live_open(64 * 1024);
    reply_reset(&received);
    char req[256];
    snprintf(req, sizeof req, "%sfirst;", upgrade);
    ck_assert_int_eq(write(live_client, req, strlen(req)), (ssize_t)strlen(req));
    read_until(1);
    const char *end = strstr(received.data, "\r\n\r\n");
    for (int turn = 0; turn < 100 && (end == NULL || strcmp(end + 4, "first;") != 0); turn++) {
        live_turn();
        reply_read(&received, live_client, SIZE_MAX);
        end = strstr(received.data, "\r\n\r\n");
    }
    ck_assert_msg(strncmp(received.data, "HTTP/1.1 101 Switching Protocols\r\n", 34) == 0, "%s",
                  received.data);
    ck_assert_ptr_nonnull(strstr(received.data, "\r\nUpgrade: echo\r\n"));
    ck_assert_ptr_nonnull(strstr(received.data, "\r\nConnection: Upgrade\r\n"));
    ck_assert_str_eq(end + 4, "first;");
    ck_assert_ptr_eq(c->proto, &tunnel_protocol);
    ck_assert(c->upgraded);
    size_t before = received.len;
    ck_assert_int_eq(write(live_client, "second", 6), 6);
    read_until(before + 6);
    ck_assert_str_eq(received.data + before, "second");
    shutdown(live_client, SHUT_WR); /* the client's half-close ends the echo, then the tunnel */
    read_until(SIZE_MAX);
    ck_assert(received.closed && !received.reset);
    ck_assert_uint_eq(test_handler_stops, 0);
}
END_TEST

/* 4 MiB sent by a client that reads nothing: the tunnel stops reading
 * once its output holds the high-water mark; the client then reads it
 * all back, in order. */
START_TEST(backpressure_both_ways)
{
    struct conn *c = live_open(64 * 1024);
    reply_reset(&received);
    ck_assert_int_eq(write(live_client, upgrade, sizeof upgrade - 1), (ssize_t)(sizeof upgrade - 1));
    read_until(1);
    size_t head = (size_t)(strstr(received.data, "\r\n\r\n") + 4 - received.data);
    size_t len = 4u << 20, sent = 0;
    char *data = malloc(len);
    for (size_t i = 0; i < len; i++)
        data[i] = (char)('a' + (i % 26));
    for (int turn = 0; turn < 500 && sent < len; turn++) {
        ssize_t n = write(live_client, data + sent, len - sent);
        if (n > 0)
            sent += (size_t)n;
        live_spin(1);
    }
    ck_assert_uint_lt(sent, len); /* the client is held back */
    ck_assert_uint_le(c->out.pending_bytes, OUTQ_HIGH_WATER + 256 * 1024);
    for (int turn = 0; turn < 20000 && received.len < head + len; turn++) {
        if (sent < len) {
            ssize_t n = write(live_client, data + sent, len - sent);
            if (n > 0)
                sent += (size_t)n;
        }
        live_spin(1);
        reply_read(&received, live_client, SIZE_MAX);
    }
    ck_assert_uint_eq(received.len, head + len);
    ck_assert_int_eq(memcmp(received.data + head, data, len), 0);
    free(data);
}
END_TEST

START_TEST(a_client_that_leaves_stops_the_handler_once)
{
    live_open(64 * 1024);
    reply_reset(&received);
    ck_assert_int_eq(write(live_client, upgrade, sizeof upgrade - 1), (ssize_t)(sizeof upgrade - 1));
    read_until(1);
    struct linger reset = {1, 0};
    setsockopt(live_client, SOL_SOCKET, SO_LINGER, &reset, sizeof reset);
    close(live_client);
    live_client = -1;
    for (int turn = 0; turn < 10; turn++)
        live_spin(1);
    ck_assert_uint_eq(live.conn_count, 0);
    ck_assert_uint_eq(test_handler_stops, 1);
}
END_TEST

START_TEST(a_request_that_did_not_ask_stays_http)
{
    struct conn *c = live_open(64 * 1024);
    reply_reset(&received);
    const char *req = "GET /up HTTP/1.1\r\nHost: a\r\n\r\n";
    ck_assert_int_eq(write(live_client, req, strlen(req)), (ssize_t)strlen(req));
    read_until(1);
    for (int turn = 0; turn < 20 && strstr(received.data, "\r\n\r\n503 ") == NULL; turn++) {
        live_turn();
        reply_read(&received, live_client, SIZE_MAX);
    }
    ck_assert_msg(strncmp(received.data, "HTTP/1.1 503 ", 13) == 0, "%s", received.data);
    ck_assert_ptr_ne(c->proto, &tunnel_protocol);
    ck_assert(!c->upgraded);
}
END_TEST

START_TEST(http2_cannot_switch)
{
    live_open(64 * 1024);
    struct h2_client *h = h2_client_new(live_client, 1u << 30);
    int32_t s = h2_client_get(h, "/up");
    h2_client_run(h, live_turn, 100, s);
    ck_assert_int_eq(h2_client_reply(h, s)->status, 503);
    h2_client_free(h);
}
END_TEST

static Suite *tunnel_suite(void)
{
    Suite *s = suite_create("tunnel");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, bytes_go_both_ways_after_101);
    tcase_add_test(tc, backpressure_both_ways);
    tcase_add_test(tc, a_client_that_leaves_stops_the_handler_once);
    tcase_add_test(tc, a_request_that_did_not_ask_stays_http);
    tcase_add_test(tc, http2_cannot_switch);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return unit_run(tunnel_suite()); }
