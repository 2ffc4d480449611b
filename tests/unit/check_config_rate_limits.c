/*
 * check_config_rate_limits.c - `rate_limits` and a route's `rate_limit`
 * (conf/config_rate_limits.c): what a valid map becomes, and every error
 * with its file:line:column, since the message is what an operator sees.
 */
#include <check.h>
#include <string.h>

#include "conf/config.h"
#include "tests/unit/config_check.h"
#include "tests/unit/unit.h"

#define EP "endpoints:\n  a:\n    url: http://127.0.0.1:8080\n"
#define ROUTE(limits) "routes:\n  - path: /api\n    rate_limit: " limits "\n" \
                      "    return: { status: 200 }\n"

START_TEST(three_algorithms_and_partitions)
{
    struct config *c = load_ok(
        EP "rate_limits:\n"
           "  per_client:\n"
           "    fixed_window: { permit_limit: 100, window: 1m }\n"
           "    ipv4_prefix: 24\n"
           "  per_key:\n"
           "    sliding_window: { permit_limit: 600, window: 1m, segments_per_window: 6 }\n"
           "    partition: header\n"
           "    header: X-Api-Key\n"
           "    max_partitions: 500\n"
           "  everyone:\n"
           "    token_bucket: { token_limit: 1000, tokens_per_period: 100, "
           "replenishment_period: 100ms }\n"
           "    partition: global\n" ROUTE("[per_key, everyone]")
           "  - path: /\n    rate_limit: per_client\n    return: { status: 200 }\n");
    ck_assert_uint_eq(c->rate_limit_count, 3);
    const struct rate_limit_policy *p = &c->rate_limits[0];
    ck_assert_str_eq(p->name, "per_client");
    ck_assert_int_eq(p->algorithm, RATE_LIMIT_FIXED_WINDOW);
    ck_assert_uint_eq(p->limit, 100);
    ck_assert_uint_eq(p->period_ms, 60000);
    ck_assert_uint_eq(p->segments, 1);
    ck_assert_int_eq(p->partition, RATE_PARTITION_CLIENT_ADDRESS);
    ck_assert_uint_eq(p->ipv4_prefix, 24);
    ck_assert_uint_eq(p->ipv6_prefix, 64);
    ck_assert_uint_eq(p->max_partitions, 10000);
    p = &c->rate_limits[1];
    ck_assert_int_eq(p->algorithm, RATE_LIMIT_SLIDING_WINDOW);
    ck_assert_uint_eq(p->segments, 6);
    ck_assert_int_eq(p->partition, RATE_PARTITION_HEADER);
    ck_assert_str_eq(p->header, "x-api-key");
    ck_assert_uint_eq(p->max_partitions, 500);
    p = &c->rate_limits[2];
    ck_assert_int_eq(p->algorithm, RATE_LIMIT_TOKEN_BUCKET);
    ck_assert_uint_eq(p->limit, 1000);
    ck_assert_uint_eq(p->tokens_per_period, 100);
    ck_assert_uint_eq(p->period_ms, 100);
    ck_assert_int_eq(p->partition, RATE_PARTITION_GLOBAL);
    ck_assert_uint_eq(c->routes[0].rate_limit_count, 2);
    ck_assert_uint_eq(c->routes[0].rate_limits[0], 1);
    ck_assert_uint_eq(c->routes[0].rate_limits[1], 2);
    ck_assert_uint_eq(c->routes[1].rate_limit_count, 1);
    ck_assert_uint_eq(c->routes[1].rate_limits[0], 0);
    config_free(c);
}
END_TEST

START_TEST(description_and_sameness)
{
    struct config *a = load_ok(EP "rate_limits:\n"
                                  "  x: { sliding_window: { permit_limit: 6, window: 1m, "
                                  "segments_per_window: 3 }, ipv6_prefix: 48 }\n"
                                  "  y: { token_bucket: { token_limit: 5, tokens_per_period: 1,"
                                  " replenishment_period: 1500ms }, partition: header, "
                                  "header: Authorization }\n"
                                  "  z: { fixed_window: { permit_limit: 9, window: 2h }, "
                                  "partition: global }\n");
    char text[128];
    config_rate_limit_describe(&a->rate_limits[0], text, sizeof text);
    ck_assert_str_eq(text, "sliding_window 6 per 60s in 3 segments, by client_address /32 /48");
    config_rate_limit_describe(&a->rate_limits[1], text, sizeof text);
    ck_assert_str_eq(text, "token_bucket 5, 1 per 1500ms, by header authorization");
    config_rate_limit_describe(&a->rate_limits[2], text, sizeof text);
    ck_assert_str_eq(text, "fixed_window 9 per 2h, global");
    struct config *b = load_ok(EP "rate_limits:\n"
                                  "  other: { sliding_window: { permit_limit: 6, window: 60s, "
                                  "segments_per_window: 3 }, ipv6_prefix: 48 }\n"
                                  "  x: { sliding_window: { permit_limit: 6, window: 1m, "
                                  "segments_per_window: 3 }, ipv6_prefix: 56 }\n");
    ck_assert(config_rate_limit_same(&a->rate_limits[0], &b->rate_limits[0]));
    ck_assert(!config_rate_limit_same(&a->rate_limits[0], &b->rate_limits[1]));
    ck_assert(!config_rate_limit_same(&a->rate_limits[0], &a->rate_limits[2]));
    config_free(a);
    config_free(b);
}
END_TEST

START_TEST(routes_name_policies_that_exist)
{
    assert_error(EP "rate_limits:\n  api: { fixed_window: { permit_limit: 1, window: 1s } }\n"
                    ROUTE("apo"),
                 "t.yaml:7:5: route '/api': rate_limit 'apo' is not one of the rate_limits; "
                 "did you mean 'api'?");
    assert_error(EP ROUTE("api"),
                 "t.yaml:5:5: route '/api': rate_limit 'api': the config has no rate_limits");
    assert_error(EP "rate_limits:\n  api: { fixed_window: { permit_limit: 1, window: 1s } }\n"
                    ROUTE("[api, api]"),
                 "t.yaml:8:23: rate_limit: 'api' is named twice");
    assert_error(EP "rate_limits:\n  api: { fixed_window: { permit_limit: 1, window: 1s } }\n"
                    ROUTE("{ api: 1 }"),
                 "t.yaml:8:17: rate_limit: expected a scalar, got a mapping");
    assert_error(EP ROUTE("[a, b, c, d, e, f, g, h, i]"),
                 "t.yaml:6:17: rate_limit: 9 policies, at most 8");
}
END_TEST

START_TEST(a_policy_has_one_algorithm)
{
    assert_error(EP "rate_limits:\n  x: { partition: global }\n",
                 "t.yaml:5:6: rate limit: no algorithm: add fixed_window, sliding_window or "
                 "token_bucket");
    assert_error(EP "rate_limits:\n  x:\n    fixed_window: { permit_limit: 1, window: 1s }\n"
                    "    token_bucket: { token_limit: 1, tokens_per_period: 1, "
                    "replenishment_period: 1s }\n",
                 "t.yaml:7:19: rate limit: has two algorithms; keep one of fixed_window, "
                 "sliding_window and token_bucket");
    assert_error(EP "rate_limits:\n  x:\n    fixed_window:\n",
                 "t.yaml:6:18: fixed_window: expected a mapping, got null");
    assert_error(EP "rate_limits:\n  x:\n    fixed_window: { permit_limt: 1, window: 1s }\n",
                 "t.yaml:6:21: unknown key 'permit_limt'; did you mean 'permit_limit'?");
    assert_error(EP "rate_limits:\n  x:\n    token_bucket: { token_limit: 1, "
                    "replenishment_period: 1s }\n",
                 "t.yaml:6:19: token_bucket: missing required key 'tokens_per_period'");
    assert_error(EP "rate_limits:\n  x:\n    fixed_windows: { permit_limit: 1, window: 1s }\n",
                 "t.yaml:6:5: unknown key 'fixed_windows'; did you mean 'fixed_window'?");
    assert_error(EP "rate_limits: [x]\n", "t.yaml:4:14: rate_limits: expected a mapping, got a "
                                          "sequence");
}
END_TEST

START_TEST(bounds_of_the_state)
{
    assert_error(EP "rate_limits:\n  x:\n    fixed_window: { permit_limit: 0, window: 1s }\n",
                 "t.yaml:6:35: permit_limit: expected a positive integer, got '0'");
    assert_error(EP "rate_limits:\n  x:\n    fixed_window: { permit_limit: 4294967296, "
                    "window: 1s }\n",
                 "t.yaml:6:35: permit_limit: at most 4294967295");
    assert_error(EP "rate_limits:\n  x:\n    sliding_window: { permit_limit: 16777216, "
                    "window: 1s, segments_per_window: 2 }\n",
                 "t.yaml:6:37: permit_limit: at most 16777215 in a sliding window (segment "
                 "counts are kept in 24 bits)");
    assert_error(EP "rate_limits:\n  x:\n    sliding_window: { permit_limit: 5, window: 1s, "
                    "segments_per_window: 3 }\n",
                 "t.yaml:6:73: segments_per_window: the window (1000 ms) must split into 3 "
                 "segments of whole milliseconds");
    assert_error(EP "rate_limits:\n  x:\n    sliding_window: { permit_limit: 5, window: 65s, "
                    "segments_per_window: 65 }\n",
                 "t.yaml:6:74: segments_per_window: at most 64");
    assert_error(EP "rate_limits:\n  x:\n    fixed_window: { permit_limit: 5, window: 0s }\n",
                 "t.yaml:6:46: window: must be at least 1ms");
    assert_error(EP "rate_limits:\n  x:\n    fixed_window: { permit_limit: 5, window: 1s }\n"
                    "    max_partitions: 16777217\n",
                 "t.yaml:7:21: max_partitions: at most 16777216");
}
END_TEST

START_TEST(partitions)
{
    assert_error(EP "rate_limits:\n  x:\n    fixed_window: { permit_limit: 5, window: 1s }\n"
                    "    partition: header\n",
                 "t.yaml:7:16: partition: header needs 'header: NAME'");
    assert_error(EP "rate_limits:\n  x:\n    fixed_window: { permit_limit: 5, window: 1s }\n"
                    "    header: X-Key\n",
                 "t.yaml:7:13: header: only with 'partition: header'");
    assert_error(EP "rate_limits:\n  x:\n    fixed_window: { permit_limit: 5, window: 1s }\n"
                    "    partition: global\n    ipv4_prefix: 24\n",
                 "t.yaml:8:18: ipv4_prefix: only with 'partition: client_address'");
    assert_error(EP "rate_limits:\n  x:\n    fixed_window: { permit_limit: 5, window: 1s }\n"
                    "    ipv6_prefix: 129\n",
                 "t.yaml:7:18: ipv6_prefix: expected a prefix length from 0 to 128, got '129'");
    assert_error(EP "rate_limits:\n  x:\n    fixed_window: { permit_limit: 5, window: 1s }\n"
                    "    partition: cookie\n",
                 "t.yaml:7:16: partition: expected client_address, header or global, got "
                 "'cookie'");
    assert_error(EP "rate_limits:\n  x:\n    fixed_window: { permit_limit: 5, window: 1s }\n"
                    "    partition: header\n    header: \"X Key\"\n",
                 "t.yaml:8:13: header: expected a header name, got 'X Key'");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("config_rate_limits");
    TCase *tc = tcase_create("rate_limits");
    tcase_add_test(tc, three_algorithms_and_partitions);
    tcase_add_test(tc, description_and_sameness);
    tcase_add_test(tc, routes_name_policies_that_exist);
    tcase_add_test(tc, a_policy_has_one_algorithm);
    tcase_add_test(tc, bounds_of_the_state);
    tcase_add_test(tc, partitions);
    suite_add_tcase(s, tc);
    return unit_run(s);
}
