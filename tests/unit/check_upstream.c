/* check_upstream.c - balancing and passive health (worker/upstream.c),
 * and address ranges (conf/cidr.c). */
#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <string.h>

#include "conf/cidr.h"
#include "conf/config.h"
#include "conf/config_upstreams.h"
#include "tests/unit/unit.h"
#include "worker/upstream.h"

static struct upstream_server_config servers[3];
static struct upstream_config cfg;
static struct config config;
static struct upstreams ups;

static struct upstream *make(enum upstream_balance balance, const unsigned *weights, size_t n)
{
    memset(servers, 0, sizeof servers);
    memset(&cfg, 0, sizeof cfg);
    for (size_t i = 0; i < n; i++)
        servers[i].weight = weights[i];
    cfg.name = "app";
    cfg.servers = servers;
    cfg.server_count = n;
    cfg.balance = balance;
    cfg.max_fails = 2;
    cfg.fail_timeout_ms = 1000;
    config.upstreams = &cfg;
    config.upstream_count = 1;
    struct err err;
    ck_assert_int_eq(upstreams_init(&ups, &config, &err), SK_OK);
    return &ups.list[0];
}

static void teardown(void) { upstreams_destroy(&ups); }

START_TEST(smooth_weighted_round_robin)
{
    static const unsigned w[] = {5, 1, 1};
    struct upstream *up = make(UPSTREAM_ROUND_ROBIN, w, 3);
    char order[8] = {0};
    for (int i = 0; i < 7; i++)
        order[i] = (char)('a' + (upstream_pick(up, NULL, NULL, 0) - up->peers));
    ck_assert_str_eq(order, "aabacaa"); /* nginx's: spread, not aaaaabc */
}
END_TEST

START_TEST(ejection_after_max_fails_within_fail_timeout)
{
    static const unsigned w[] = {1, 1};
    struct upstream *up = make(UPSTREAM_ROUND_ROBIN, w, 2);
    struct upstream_peer *a = &up->peers[0];
    ck_assert(!upstream_peer_failed(a, 100));
    ck_assert(!upstream_peer_failed(a, 2000)); /* the window had passed: starts again */
    ck_assert(upstream_peer_failed(a, 2500));
    for (int i = 0; i < 4; i++)
        ck_assert_ptr_eq(upstream_pick(up, NULL, NULL, 3000), &up->peers[1]);
    ck_assert(upstream_peer_usable(a, 3500));
    /* All ejected: none, at once. */
    upstream_peer_failed(&up->peers[1], 3600);
    upstream_peer_failed(&up->peers[1], 3601);
    upstream_peer_failed(a, 3602);
    upstream_peer_failed(a, 3603);
    ck_assert_ptr_null(upstream_pick(up, NULL, NULL, 3700));
}
END_TEST

START_TEST(least_connections_and_avoid)
{
    static const unsigned w[] = {1, 2};
    struct upstream *up = make(UPSTREAM_LEAST_CONNECTIONS, w, 2);
    up->peers[0].active = 1;
    up->peers[1].active = 1; /* 1/2 < 1/1: the heavier weight is lighter */
    ck_assert_ptr_eq(upstream_pick(up, NULL, NULL, 0), &up->peers[1]);
    ck_assert_ptr_eq(upstream_pick(up, NULL, &up->peers[1], 0), &up->peers[0]);
}
END_TEST

START_TEST(client_hash_is_stable)
{
    static const unsigned w[] = {1, 1, 1};
    struct upstream *up = make(UPSTREAM_CLIENT_IP_HASH, w, 3);
    struct sockaddr_in c = {.sin_family = AF_INET};
    inet_pton(AF_INET, "192.0.2.44", &c.sin_addr);
    struct upstream_peer *first = upstream_pick(up, (struct sockaddr *)&c, NULL, 0);
    for (int i = 0; i < 10; i++)
        ck_assert_ptr_eq(upstream_pick(up, (struct sockaddr *)&c, NULL, 0), first);
}
END_TEST

START_TEST(cidr_ranges)
{
    struct cidr list[2];
    struct err err;
    ck_assert_int_eq(cidr_parse("10.0.0.0/8", &list[0], &err), SK_OK);
    ck_assert_int_eq(cidr_parse("fd00::/8", &list[1], &err), SK_OK);
    ck_assert_int_eq(cidr_parse("10.1.0.0/8", &list[0], &err), SK_ERROR);
    ck_assert_int_eq(cidr_parse("10.0.0.0/33", &list[0], &err), SK_ERROR);
    ck_assert_int_eq(cidr_parse("nope", &list[0], &err), SK_ERROR);
    ck_assert_int_eq(cidr_parse("10.0.0.0/8", &list[0], &err), SK_OK);
    struct sockaddr_in in = {.sin_family = AF_INET};
    struct sockaddr_in6 in6 = {.sin6_family = AF_INET6};
    inet_pton(AF_INET, "10.200.3.4", &in.sin_addr);
    ck_assert(cidr_list_match(list, 2, (struct sockaddr *)&in));
    inet_pton(AF_INET, "11.0.0.1", &in.sin_addr);
    ck_assert(!cidr_list_match(list, 2, (struct sockaddr *)&in));
    inet_pton(AF_INET6, "::ffff:10.9.9.9", &in6.sin6_addr); /* mapped: as IPv4 */
    ck_assert(cidr_list_match(list, 2, (struct sockaddr *)&in6));
    inet_pton(AF_INET6, "fd12::1", &in6.sin6_addr);
    ck_assert(cidr_list_match(list, 2, (struct sockaddr *)&in6));
    inet_pton(AF_INET6, "fe80::1", &in6.sin6_addr);
    ck_assert(!cidr_list_match(list, 2, (struct sockaddr *)&in6));
}
END_TEST

static Suite *upstream_suite(void)
{
    Suite *s = suite_create("upstream");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, NULL, teardown);
    tcase_add_test(tc, smooth_weighted_round_robin);
    tcase_add_test(tc, ejection_after_max_fails_within_fail_timeout);
    tcase_add_test(tc, least_connections_and_avoid);
    tcase_add_test(tc, client_hash_is_stable);
    tcase_add_test(tc, cidr_ranges);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return unit_run(upstream_suite()); }
