/*
 * check_conn.c - worker/conn.c over a real socket pair and a real event
 * loop: deadlines, closing, and the end-of-turn release (turn.c).
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include "common/clock.h"
#include "tests/unit/live_worker.h"
#include "tests/unit/stream_client.h"
#include "worker/h2.h"
#include "tests/unit/unit.h"

static const char yaml[] =
    "endpoints:\n  a: {url: \"http://127.0.0.1:8080\"}\n"
    "limits: {request_headers_timeout: 30s, keep_alive_timeout: 2m}\n"
    "routes:\n  - path: /\n    return: {status: 200, body: hi}\n";

static void setup(void) { live_start(yaml); }
static void teardown(void) { live_stop(); }

static struct conn *open_conn(void) { return live_open(0); }

/* Runs the loop until cond holds, at most 100 turns. */
#define LOOP_UNTIL(cond)                                                                \
    do {                                                                                \
        for (int turn_ = 0; turn_ < 100 && !(cond); turn_++)                            \
            event_base_loop(live.base, EVLOOP_NONBLOCK);                              \
        ck_assert_msg(cond, "never: " #cond);                                           \
    } while (0)

static void client_send(const void *data, size_t len)
{
    ck_assert_int_eq(write(live_client, data, len), (ssize_t)len);
}

/* The free list ends: no connection released twice. */
static size_t free_list_length(void)
{
    size_t n = 0;
    for (struct conn *c = live.free_conns; c != NULL && n <= live.free_conn_count + 1;
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
    close(live_client);
    live_client = -1;
    worker_begin_drain(&live);
    ck_assert_uint_eq(live.conn_count, 1);
    uint64_t later = clock_monotonic_ms() + 5000;
    worker_tick(&live, later);
    event_base_loop(live.base, EVLOOP_NONBLOCK); /* the GOAWAY's flush fails: closed */
    /* A second quiet heartbeat would trim, freeing the list looked at below. */
    live.heap_trimmed = true;
    worker_tick(&live, later); /* the deadline too: nothing more happens to it */
    ck_assert_uint_eq(live.conn_count, 0);
    ck_assert_ptr_null(live.conns);
    event_base_loop(live.base, EVLOOP_NONBLOCK); /* the end of the turn, and the exit */
    ck_assert(event_base_got_exit(live.base));
    ck_assert_uint_eq(live.free_conn_count, 1);
    ck_assert_uint_eq(free_list_length(), 1);
}
END_TEST

START_TEST(closed_connection_is_released_at_the_end_of_the_turn)
{
    struct conn *c = open_conn();
    conn_close(c);
    conn_close(c); /* again: nothing */
    ck_assert(c->closed);
    ck_assert_uint_eq(live.conn_count, 0);
    ck_assert_uint_eq(live.free_conn_count, 0); /* not yet: the turn goes on */
    /* The descriptor is still open: its number cannot be reused meanwhile. */
    ck_assert_int_ne(fcntl(c->fd, F_GETFD), -1);
    event_base_loop(live.base, EVLOOP_NONBLOCK);
    ck_assert_uint_eq(live.free_conn_count, 1);
    ck_assert_uint_eq(free_list_length(), 1);
    char byte;
    ck_assert_int_eq(read(live_client, &byte, 1), 0); /* closed now */
}
END_TEST

/* Kestrel's rule: a connection that never sends a byte is held to
 * request_headers_timeout from accept, not to keep_alive_timeout. */
START_TEST(silent_new_connection_is_bounded_by_request_headers_timeout)
{
    open_conn();
    uint64_t now = clock_monotonic_ms();
    worker_tick(&live, now + live_config->limits.request_headers_timeout_ms - 1000);
    ck_assert_uint_eq(live.conn_count, 1);
    worker_tick(&live, now + live_config->limits.request_headers_timeout_ms + 1000);
    ck_assert_uint_eq(live.conn_count, 0);
}
END_TEST

/* ---- a deadline reads what is waiting before it judges ---- */

static const char get[] = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";

static struct reply got;

/* The status of the first whole response the client has now (no turn of
 * the loop: it was written by the tick), 0 if none yet, -1 if closed. */
static int status_now(void)
{
    struct h1_message m = {0};
    if (got.data == NULL)
        reply_reset(&got);
    reply_read(&got, live_client, SIZE_MAX);
    int status = h1_parse_message(got.data, got.len, &m) > 0 ? m.status : got.closed ? -1 : 0;
    h1_message_free(&m);
    if (status != 0)
        reply_reset(&got);
    return status;
}

/* The status of the next response, turning the loop until it comes. */
static int next_status(void)
{
    int status = 0;
    for (int turn = 0; turn < 200 && status == 0; turn++) {
        live_turn();
        status = status_now();
    }
    return status;
}

/* The worker saw nothing of the bytes (busy, or stopped) until its
 * heartbeat found the connection past its accept deadline. */
START_TEST(first_request_waiting_at_the_accept_deadline_is_answered)
{
    open_conn();
    uint64_t accepted = clock_monotonic_ms();
    client_send(get, sizeof get - 1);
    worker_tick(&live, accepted + live_config->limits.request_headers_timeout_ms + 1000);
    ck_assert_uint_eq(live.conn_count, 1);
    ck_assert_int_eq(status_now(), 200);
}
END_TEST

START_TEST(keep_alive_request_waiting_at_the_idle_deadline_is_answered)
{
    struct conn *c = open_conn();
    client_send(get, sizeof get - 1);
    ck_assert_int_eq(next_status(), 200);
    uint64_t deadline = c->deadline_ms;
    /* The next request's deadline must be later than this one's: a
     * millisecond of the real clock passes first. */
    uint64_t set_at = deadline - live_config->limits.keep_alive_timeout_ms;
    while (clock_now_monotonic_ms() <= set_at)
        ;
    client_send(get, sizeof get - 1);
    worker_tick(&live, deadline);
    ck_assert_uint_eq(live.conn_count, 1);
    ck_assert_int_eq(status_now(), 200);
}
END_TEST

/* A head's first line is read; the rest of it arrives unread and the
 * heartbeat comes a second past the head's deadline. */
static void tick_past_a_head_deadline(const char *rest)
{
    struct conn *c = open_conn();
    client_send("GET / HTTP/1.1\r\n", 16);
    LOOP_UNTIL(!c->fresh);
    uint64_t deadline = c->deadline_ms;
    client_send(rest, strlen(rest));
    worker_tick(&live, deadline + 1000);
}

START_TEST(end_of_a_head_waiting_at_its_deadline_is_answered)
{
    tick_past_a_head_deadline("Host: a\r\n\r\n");
    ck_assert_uint_eq(live.conn_count, 1);
    ck_assert_int_eq(status_now(), 200);
}
END_TEST

/* What was read does not move a head's deadline: it runs from its first
 * byte, so a slow client gains nothing from bytes that keep coming. */
START_TEST(head_still_incomplete_after_the_read_is_408)
{
    tick_past_a_head_deadline("Host: a\r\n");
    ck_assert_int_eq(next_status(), 408);
}
END_TEST

/* ---- an outbound connection: the same transport, another protocol ---- */

struct ping {
    bool sent;
    char got[16];
    int frees;
};

static void ping_feed(struct conn *c, const char *data, size_t len)
{
    struct ping *p = c->proto_state;
    strncat(p->got, data, len < sizeof p->got - strlen(p->got) - 1 ? len : 0);
}

static enum conn_owed ping_produce(struct conn *c)
{
    struct ping *p = c->proto_state;
    if (!p->sent && outq_add_copy(&c->out, "ping", 4) == 0)
        p->sent = true;
    return CONN_OWES_NOTHING;
}

static bool ping_idle(struct conn *c) { return ((struct ping *)c->proto_state)->sent; }
static uint64_t ping_deadline(struct conn *c, uint64_t now) { (void)c; return now + 60000; }
static void ping_tick(struct conn *c, uint64_t now, bool expired) { (void)c, (void)now, (void)expired; }
static void ping_drain(struct conn *c) { (void)c; }
static bool ping_eof(struct conn *c) { (void)c; return false; }
static void ping_free(struct conn *c) { ((struct ping *)c->proto_state)->frees++; }

static const struct conn_protocol ping_protocol = {
    "ping", ping_feed, ping_produce, ping_idle, ping_deadline, ping_tick, ping_drain,
    ping_eof, ping_free, NULL, /* state: handling, as any protocol that does not say */
    NULL,                      /* read_into: the worker's buffer */
};

/* What the reverse proxy will do with an upstream: conn_start on a
 * connected socket, with its own protocol, on the same loop, with the
 * same transport and output queue, and no client admission. */
START_TEST(outbound_connection_uses_the_same_transport)
{
    int upstream;
    int fd = tcp_pair(&upstream); /* saker's side connects; the test is the upstream */
    struct ping p = {0};
    struct conn *c = conn_start(&live, fd, &ping_protocol, &p);
    ck_assert_ptr_nonnull(c);
    ck_assert_uint_eq(live.conn_count, 1);
    conn_wake(c); /* the first output: the protocol's own */
    char buf[16] = {0};
    for (int turn = 0; turn < 100 && strlen(buf) < 4; turn++) {
        live_spin(1);
        ssize_t n = read(upstream, buf + strlen(buf), sizeof buf - 1 - strlen(buf));
        (void)n;
    }
    ck_assert_str_eq(buf, "ping");
    ck_assert_int_eq(write(upstream, "pong", 4), 4);
    LOOP_UNTIL(strcmp(p.got, "pong") == 0);
    ck_assert_uint_eq(atomic_load(&live_slot.connections_open), 0); /* not a client's */
    close(upstream);
    LOOP_UNTIL(live.conn_count == 0);
    live_spin(1);
    ck_assert_int_eq(p.frees, 1);
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
    tcase_add_test(tc, first_request_waiting_at_the_accept_deadline_is_answered);
    tcase_add_test(tc, keep_alive_request_waiting_at_the_idle_deadline_is_answered);
    tcase_add_test(tc, end_of_a_head_waiting_at_its_deadline_is_answered);
    tcase_add_test(tc, head_still_incomplete_after_the_read_is_408);
    tcase_add_test(tc, outbound_connection_uses_the_same_transport);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return unit_run(conn_suite()); }
