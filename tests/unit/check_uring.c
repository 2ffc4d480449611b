/*
 * check_uring.c - worker/uring.c and conn_uring.c on a real ring, over
 * real loopback connections and a real event loop: what a connection
 * gets when the provided receive buffers are all held.
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "tests/unit/live_worker.h"
#include "tests/unit/stream_client.h"
#include "worker/uring.h"
#include "tests/unit/unit.h"

static const char yaml[] =
    "endpoints:\n  a: {url: \"http://127.0.0.1:8080\"}\n"
    "limits: {keep_alive_timeout: 2m}\n"
    "routes:\n  - path: /\n    return: {status: 200, body: hi}\n";

#define HOLDERS 8

static int holders[HOLDERS];
static int holder_count;

static void setup(void)
{
    live_start(yaml);
    holder_count = 0;
}

static void teardown(void)
{
    for (int i = 0; i < holder_count; i++)
        close(holders[i]);
    live_stop();
}

/* Ids that connections hold: received, not read. */
static unsigned held_count(const struct uring *u)
{
    unsigned n = 0;
    for (size_t i = 0; i < sizeof u->held_ids / sizeof u->held_ids[0]; i++)
        n += (unsigned)__builtin_popcountll(u->held_ids[i]);
    return n;
}

static bool pool_exhausted(const struct uring *u)
{
    return u->buffer_count == URING_BUFFERS_MAX && held_count(u) == URING_BUFFERS_MAX;
}

/* Pipelined requests from the client until the socket takes no more.
 * Each write's return runs the ring's task work in this process: the
 * armed receive moves what came into provided buffers meanwhile. */
static void client_flood(int fd)
{
    static char flood[64 * 1024];
    static const char request[] = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
    for (size_t i = 0; i + sizeof request - 1 <= sizeof flood; i += sizeof request - 1)
        memcpy(flood + i, request, sizeof request - 1);
    for (int refused = 0, i = 0; refused < 3 && i < 1000; i++) {
        if (write(fd, flood, sizeof flood) < 0 && errno == EAGAIN)
            refused++;
    }
}

/* A connection that stops reading while its receive, armed, fills every
 * buffer it finds before the cancellation the end of the turn enters:
 * what a pipelining client that never reads leaves, one connection after
 * another, each paused with what its receive had taken. */
static void hold_buffers(void)
{
    struct conn *c = live_accept(0, &holders[holder_count++]);
    live_spin(2); /* its receive armed */
    turn_enter(&live.turn);
    conn_pause_input(c, true);
    client_flood(holders[holder_count - 1]);
    turn_leave(&live.turn);
    live_spin(2);
}

/* Every provided buffer is held by a connection that does not read (the
 * pool at its largest): a new connection's request is still read and
 * answered, from its socket, where the receive found no buffer for it.
 * It was never read: the receive ended with ENOBUFS, was armed again,
 * ended again, for as long as the others held theirs. */
START_TEST(request_is_answered_while_paused_connections_hold_every_buffer)
{
    if (uring_start(&live) != SK_OK) {
        fprintf(stderr, "check_uring: no io_uring here, nothing tested\n");
        return;
    }
    while (!pool_exhausted(live.uring) && holder_count < HOLDERS)
        hold_buffers();
    ck_assert_msg(pool_exhausted(live.uring), "%u buffers, %u held", live.uring->buffer_count,
                  held_count(live.uring));

    int client;
    live_accept(0, &client);
    static const char request[] = "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n";
    ck_assert_int_eq(write(client, request, sizeof request - 1), (ssize_t)sizeof request - 1);
    struct reply r = {0};
    reply_reset(&r);
    for (int turn = 0; turn < 100 && !r.closed; turn++) {
        live_turn();
        reply_read(&r, client, 1 << 20);
    }
    close(client);
    ck_assert_msg(strncmp(r.data, "HTTP/1.1 200", 12) == 0, "got %zu bytes: %.40s", r.len,
                  r.data);
    ck_assert(r.closed);
    ck_assert_uint_eq(held_count(live.uring), URING_BUFFERS_MAX); /* theirs, still */
    free(r.data);
}
END_TEST

static Suite *uring_suite(void)
{
    Suite *s = suite_create("uring");
    TCase *tc = tcase_create("buffers");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, request_is_answered_while_paused_connections_hold_every_buffer);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return unit_run(uring_suite()); }
