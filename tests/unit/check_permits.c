/*
 * check_permits.c - the cross-worker permit pools (shm/shm.c) and how a
 * connection uses them (worker/conn.c): exact limits, per-endpoint pools,
 * upgrades moving a permit, and a dead worker's permits coming back when
 * the master retires its slot.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include "shm/shm.h"
#include "worker/conn.h"
#include "worker/worker.h"
#include "tests/unit/unit.h"

static char path[64];
static struct shm shm;

static void setup(void)
{
    struct err err;
    snprintf(path, sizeof path, "/tmp/check_permits.%d.shm", (int)getpid());
    ck_assert_int_eq(shm_create(&shm, path, 4, &err), SK_OK);
}

static void teardown(void)
{
    shm_detach(&shm);
    unlink(path);
}

START_TEST(a_pool_never_overshoots)
{
    struct shm_slot *a = &shm.slots[0], *b = &shm.slots[1];
    for (int i = 0; i < 3; i++)
        ck_assert(shm_permit_take(&shm, i % 2 ? a : b, SHM_POOL_CONNECTIONS, 0, 3));
    ck_assert(!shm_permit_take(&shm, a, SHM_POOL_CONNECTIONS, 0, 3));
    ck_assert(!shm_permit_take(&shm, b, SHM_POOL_CONNECTIONS, 0, 3));
    ck_assert_uint_eq(shm_permits_used(&shm, SHM_POOL_CONNECTIONS, 0), 3);
    ck_assert_uint_eq(b->permits_held[SHM_POOL_CONNECTIONS][0], 2);
    shm_permit_give(&shm, b, SHM_POOL_CONNECTIONS, 0);
    ck_assert(shm_permit_take(&shm, a, SHM_POOL_CONNECTIONS, 0, 3));
    ck_assert_uint_eq(shm_permits_used(&shm, SHM_POOL_CONNECTIONS, 0), 3);
    /* Unlimited takes nothing. */
    ck_assert(shm_permit_take(&shm, a, SHM_POOL_CONNECTIONS, 1, 0));
    ck_assert_uint_eq(shm_permits_used(&shm, SHM_POOL_CONNECTIONS, 1), 0);
}
END_TEST

START_TEST(retire_returns_a_dead_workers_permits)
{
    struct shm_slot *dead = &shm.slots[0], *alive = &shm.slots[1];
    shm_slot_claim(&shm, 0, 1234, -1, 1, 0);
    for (int i = 0; i < 5; i++)
        ck_assert(shm_permit_take(&shm, dead, SHM_POOL_CONNECTIONS, 0, 10));
    ck_assert(shm_permit_take(&shm, dead, SHM_POOL_UPGRADED, 2, 10));
    ck_assert(shm_permit_take(&shm, alive, SHM_POOL_CONNECTIONS, 0, 10));
    shm_slot_retire(&shm, 0);
    ck_assert_uint_eq(shm_permits_used(&shm, SHM_POOL_CONNECTIONS, 0), 1);
    ck_assert_uint_eq(shm_permits_used(&shm, SHM_POOL_UPGRADED, 2), 0);
    ck_assert_uint_eq(dead->permits_held[SHM_POOL_CONNECTIONS][0], 0);
    for (int i = 0; i < 9; i++)
        ck_assert(shm_permit_take(&shm, alive, SHM_POOL_CONNECTIONS, 0, 10));
    ck_assert(!shm_permit_take(&shm, alive, SHM_POOL_CONNECTIONS, 0, 10));
}
END_TEST

/* ---- through conn_open -------------------------------------------------- */

static struct config config;
static struct endpoint endpoints[2];
static struct worker_listener listeners[2];
static struct worker worker;

static void worker_setup(void)
{
    setup();
    memset(&config, 0, sizeof config);
    config.limits = (struct config_limits){.max_concurrent_connections = 3,
                                           .max_concurrent_upgraded_connections = 1,
                                           .max_request_body_size = 1000,
                                           .max_request_line_size = 8192,
                                           .max_request_headers_total_size = 32768,
                                           .max_request_header_count = 100,
                                           .keep_alive_timeout_ms = 120000,
                                           .request_headers_timeout_ms = 30000};
    endpoints[0] = (struct endpoint){.name = "a", .limits = config.limits};
    endpoints[1] = (struct endpoint){.name = "b", .limits = config.limits};
    endpoints[1].limits.max_concurrent_connections = 1; /* its own, smaller pool */
    config.endpoints = endpoints;
    config.endpoint_count = 2;
    listeners[0] = (struct worker_listener){.fd = -1, .endpoint = &endpoints[0]};
    listeners[1] = (struct worker_listener){.fd = -1, .endpoint = &endpoints[1]};
    struct err err;
    ck_assert_int_eq(worker_init_core(&worker, &config, &err), SK_OK);
    worker.base = event_base_new();
    worker.shm = &shm;
    worker.slot = &shm.slots[0];
}

static void worker_teardown(void)
{
    worker_destroy_core(&worker);
    event_base_free(worker.base);
    teardown();
}

/* One end of a fresh socket pair; the peer end is closed (not needed). */
static int open_on(int listener)
{
    int sv[2];
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    close(sv[1]);
    return conn_open(&worker, sv[0], &listeners[listener], NULL, 0);
}

START_TEST(connections_over_the_limit_are_refused_and_counted)
{
    ck_assert_int_eq(open_on(0), SK_OK);
    ck_assert_int_eq(open_on(1), SK_OK);
    ck_assert_int_eq(open_on(1), SK_DECLINED); /* endpoint b's own limit of 1 */
    ck_assert_int_eq(open_on(0), SK_OK);
    ck_assert_int_eq(open_on(0), SK_DECLINED); /* the global 3 */
    ck_assert_uint_eq(worker.conn_count, 3);
    ck_assert_uint_eq(shm.slots[0].counters[SHM_REJECT_CONNECTION_LIMIT], 2);
    ck_assert_uint_eq(shm_permits_used(&shm, SHM_POOL_CONNECTIONS, SHM_POOL_GLOBAL), 3);
    ck_assert_uint_eq(shm_permits_used(&shm, SHM_POOL_CONNECTIONS, 1 + 1), 1);
    ck_assert_uint_eq(shm_permits_used(&shm, SHM_POOL_CONNECTIONS, 1 + 0), 0); /* inherits */
    conn_close(worker.conns);
    ck_assert_uint_eq(shm_permits_used(&shm, SHM_POOL_CONNECTIONS, SHM_POOL_GLOBAL), 2);
    ck_assert_int_eq(open_on(0), SK_OK);
}
END_TEST

START_TEST(upgrade_moves_the_permit)
{
    ck_assert_int_eq(open_on(0), SK_OK);
    ck_assert_int_eq(open_on(0), SK_OK);
    struct conn *first = worker.conns, *second = worker.conns->next;
    ck_assert(conn_upgrade_begin(first));
    ck_assert_uint_eq(shm_permits_used(&shm, SHM_POOL_CONNECTIONS, SHM_POOL_GLOBAL), 1);
    ck_assert_uint_eq(shm_permits_used(&shm, SHM_POOL_UPGRADED, SHM_POOL_GLOBAL), 1);
    ck_assert(!conn_upgrade_begin(second)); /* the upgraded limit is 1 */
    ck_assert(!second->upgraded);
    ck_assert_uint_eq(shm_permits_used(&shm, SHM_POOL_CONNECTIONS, SHM_POOL_GLOBAL), 1);
    ck_assert(conn_upgrade_begin(first)); /* idempotent */
    conn_close(first);
    ck_assert_uint_eq(shm_permits_used(&shm, SHM_POOL_UPGRADED, SHM_POOL_GLOBAL), 0);
    ck_assert(conn_upgrade_begin(second));
    conn_close(second);
    ck_assert_uint_eq(shm_permits_used(&shm, SHM_POOL_UPGRADED, SHM_POOL_GLOBAL), 0);
    ck_assert_uint_eq(shm_permits_used(&shm, SHM_POOL_CONNECTIONS, SHM_POOL_GLOBAL), 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("permits");
    TCase *pools = tcase_create("pools");
    tcase_add_checked_fixture(pools, setup, teardown);
    tcase_add_test(pools, a_pool_never_overshoots);
    tcase_add_test(pools, retire_returns_a_dead_workers_permits);
    suite_add_tcase(s, pools);
    TCase *conns = tcase_create("conn");
    tcase_add_checked_fixture(conns, worker_setup, worker_teardown);
    tcase_add_test(conns, connections_over_the_limit_are_refused_and_counted);
    tcase_add_test(conns, upgrade_moves_the_permit);
    suite_add_tcase(s, conns);
    return unit_run(s);
}
