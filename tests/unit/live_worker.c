/*
 * live_worker.c - a worker with a real loop for the socket suites; see
 * live_worker.h.
 */
#include "tests/unit/live_worker.h"

#include <check.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include "tests/handlers/test_handlers.h"
#include "tests/unit/stream_client.h"

struct worker live;
struct shm_slot live_slot;
struct config *live_config;
int live_client = -1;
static struct worker_listener listener;

void live_start(const char *yaml)
{
    struct err err = {{0}};
    signal(SIGPIPE, SIG_IGN); /* as in a worker */
    ck_assert_msg(test_handlers_register(&err) == SK_OK, "%s", err.message);
    live_config = config_load_string(yaml, strlen(yaml), "t.yaml", &err);
    ck_assert_msg(live_config != NULL, "%s", err.message);
    ck_assert_msg(worker_init_core(&live, live_config, &err) == SK_OK, "%s", err.message);
    memset(&live_slot, 0, sizeof live_slot);
    live.slot = &live_slot;
    live.base = event_base_new();
    ck_assert_ptr_nonnull(live.base);
    ck_assert_int_eq(turn_attach(&live.turn, live.base), SK_OK);
    ck_assert_int_eq(timers_attach(&live.timers, live.base), SK_OK);
    listener = (struct worker_listener){.fd = -1, .endpoint = &live_config->endpoints[0]};
    test_handler_stops = 0;
}

void live_stop(void)
{
    if (live_client >= 0)
        close(live_client);
    live_client = -1;
    worker_destroy_core(&live);
    event_base_free(live.base);
    config_free(live_config);
}

struct conn *live_accept(int buffers, int *client)
{
    int server;
    *client = tcp_pair(&server);
    int opts[] = {SO_SNDBUF, SO_RCVBUF};
    for (int i = 0; i < 2 && buffers > 0; i++) {
        setsockopt(server, SOL_SOCKET, opts[i], &buffers, sizeof buffers);
        setsockopt(*client, SOL_SOCKET, opts[i], &buffers, sizeof buffers);
    }
    ck_assert_int_eq(conn_open(&live, server, &listener, NULL, 0), SK_OK);
    return live.conns;
}

struct conn *live_open(int buffers)
{
    if (live_client >= 0)
        close(live_client);
    return live_accept(buffers, &live_client);
}

void live_turn(void)
{
    struct timeval ten_ms = {0, 10000};
    event_base_loopexit(live.base, &ten_ms);
    event_base_dispatch(live.base);
}

void live_spin(int turns)
{
    for (int i = 0; i < turns; i++)
        event_base_loop(live.base, EVLOOP_NONBLOCK);
}
