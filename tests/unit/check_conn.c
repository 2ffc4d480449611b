/*
 * check_conn.c - worker/conn.c over a real socket pair and a real event
 * loop: deadlines, closing, and the end-of-turn release (turn.c).
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include "common/clock.h"
#include "worker/conn.h"
#include "worker/h2.h"
#include "worker/worker.h"
#include "tests/unit/unit.h"

static struct config config;
static struct endpoint endpoint;
static struct worker worker;
static struct worker_listener listener;
static int client = -1;

static void setup(void)
{
    signal(SIGPIPE, SIG_IGN); /* as in a worker */
    memset(&config, 0, sizeof config);
    memset(&endpoint, 0, sizeof endpoint);
    config.limits = (struct config_limits){
        .max_request_body_size = 1000,
        .max_request_line_size = 8192,
        .max_request_headers_total_size = 32768,
        .max_request_header_count = 100,
        .keep_alive_timeout_ms = 120000,
        .request_headers_timeout_ms = 30000,
        .http2 = {.max_streams_per_connection = 100, .header_table_size = 4096,
                  .max_frame_size = 16384, .max_request_header_field_size = 16384,
                  .initial_connection_window_size = 65535,
                  .initial_stream_window_size = 65535, .keep_alive_ping_timeout_ms = 20000},
    };
    endpoint.name = "test";
    endpoint.limits = config.limits;
    endpoint.protocols = PROTOCOLS_HTTP1_AND_HTTP2;
    endpoint.access_log = false;
    config.endpoints = &endpoint;
    config.endpoint_count = 1;
    struct err err;
    ck_assert_int_eq(worker_init_core(&worker, &config, &err), SK_OK);
    worker.base = event_base_new();
    ck_assert_ptr_nonnull(worker.base);
    ck_assert_int_eq(turn_attach(&worker.turn, worker.base), SK_OK);
    listener = (struct worker_listener){.fd = -1, .endpoint = &endpoint};
}

static void teardown(void)
{
    worker_destroy_core(&worker);
    event_base_free(worker.base);
    if (client >= 0)
        close(client);
    client = -1;
}

/* A served connection; the test holds the client's end. */
static struct conn *open_conn(void)
{
    int sv[2];
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    client = sv[1];
    ck_assert_int_eq(conn_open(&worker, sv[0], &listener, NULL, 0), SK_OK);
    return worker.conns;
}

/* Runs the loop until cond holds, at most 100 turns. */
#define LOOP_UNTIL(cond)                                                                \
    do {                                                                                \
        for (int turn_ = 0; turn_ < 100 && !(cond); turn_++)                            \
            event_base_loop(worker.base, EVLOOP_NONBLOCK);                              \
        ck_assert_msg(cond, "never: " #cond);                                           \
    } while (0)

static void client_send(const void *data, size_t len)
{
    ck_assert_int_eq(write(client, data, len), (ssize_t)len);
}

/* The free list ends: no connection released twice. */
static size_t free_list_length(void)
{
    size_t n = 0;
    for (struct conn *c = worker.free_conns; c != NULL && n <= worker.free_conn_count + 1;
         c = c->next)
        n++;
    return n;
}

static const char h2_start[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
                               "\x00\x00\x00\x04\x00\x00\x00\x00\x00"; /* empty SETTINGS */

/* A draining worker's idle HTTP/2 connection whose peer is gone: the
 * heartbeat's rate check sends the last GOAWAY, the write fails and
 * closes the connection; the deadline check that follows must not use
 * or close it again (which wrapped conn_count, looped the free list and
 * kept the draining worker from ever exiting). */
START_TEST(draining_worker_closes_a_gone_h2_peer_once)
{
    struct conn *c = open_conn();
    client_send(h2_start, sizeof h2_start - 1);
    LOOP_UNTIL(c->proto == &h2_protocol && outq_empty(&c->out));
    close(client);
    client = -1;
    worker_begin_drain(&worker);
    ck_assert_uint_eq(worker.conn_count, 1);
    uint64_t later = clock_monotonic_ms() + 5000;
    worker_tick(&worker, later);
    event_base_loop(worker.base, EVLOOP_NONBLOCK); /* the GOAWAY's flush fails: closed */
    worker_tick(&worker, later); /* the deadline too: nothing more happens to it */
    ck_assert_uint_eq(worker.conn_count, 0);
    ck_assert_ptr_null(worker.conns);
    event_base_loop(worker.base, EVLOOP_NONBLOCK); /* the end of the turn, and the exit */
    ck_assert(event_base_got_exit(worker.base));
    ck_assert_uint_eq(worker.free_conn_count, 1);
    ck_assert_uint_eq(free_list_length(), 1);
}
END_TEST

START_TEST(closed_connection_is_released_at_the_end_of_the_turn)
{
    struct conn *c = open_conn();
    conn_close(c);
    conn_close(c); /* again: nothing */
    ck_assert(c->closed);
    ck_assert_uint_eq(worker.conn_count, 0);
    ck_assert_uint_eq(worker.free_conn_count, 0); /* not yet: the turn goes on */
    /* The descriptor is still open: its number cannot be reused meanwhile. */
    ck_assert_int_ne(fcntl(c->fd, F_GETFD), -1);
    event_base_loop(worker.base, EVLOOP_NONBLOCK);
    ck_assert_uint_eq(worker.free_conn_count, 1);
    ck_assert_uint_eq(free_list_length(), 1);
    char byte;
    ck_assert_int_eq(read(client, &byte, 1), 0); /* closed now */
}
END_TEST

/* Kestrel's rule: a connection that never sends a byte is held to
 * request_headers_timeout from accept, not to keep_alive_timeout. */
START_TEST(silent_new_connection_is_bounded_by_request_headers_timeout)
{
    open_conn();
    uint64_t now = clock_monotonic_ms();
    worker_tick(&worker, now + config.limits.request_headers_timeout_ms - 1000);
    ck_assert_uint_eq(worker.conn_count, 1);
    worker_tick(&worker, now + config.limits.request_headers_timeout_ms + 1000);
    ck_assert_uint_eq(worker.conn_count, 0);
}
END_TEST

static Suite *conn_suite(void)
{
    Suite *s = suite_create("conn");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, draining_worker_closes_a_gone_h2_peer_once);
    tcase_add_test(tc, closed_connection_is_released_at_the_end_of_the_turn);
    tcase_add_test(tc, silent_new_connection_is_bounded_by_request_headers_timeout);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return unit_run(conn_suite()); }
