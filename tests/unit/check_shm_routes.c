/*
 * check_shm_routes.c - per-route statistics (shm/shm_routes.c): which
 * bucket a duration falls in, quantiles as Prometheus' histogram_quantile
 * computes them, and the histogram's exposition (cumulative buckets, le
 * as Prometheus writes it, labels escaped), summed over slots and the
 * retired ones.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "shm/shm_routes.h"
#include "tests/unit/unit.h"

START_TEST(buckets_take_their_upper_bound)
{
    ck_assert_uint_eq(shm_duration_bucket(0), 0);
    ck_assert_uint_eq(shm_duration_bucket(500), 0);
    ck_assert_uint_eq(shm_duration_bucket(501), 1);
    ck_assert_uint_eq(shm_duration_bucket(1000), 1);
    ck_assert_uint_eq(shm_duration_bucket(10000000), 13);
    ck_assert_uint_eq(shm_duration_bucket(10000001), 14); /* +Inf */
    ck_assert_uint_eq(shm_duration_bucket(UINT64_MAX), 14);
}
END_TEST

START_TEST(quantiles_interpolate_within_a_bucket)
{
    uint64_t b[SHM_DURATION_BUCKETS] = {0};
    ck_assert(shm_duration_quantile(b, 0.5) < 0);
    b[0] = 100; /* 0 .. 0.5 ms */
    ck_assert_double_eq_tol(shm_duration_quantile(b, 0.5), 0.00025, 1e-9);
    b[4] = 100; /* 5 .. 10 ms */
    ck_assert_double_eq_tol(shm_duration_quantile(b, 0.5), 0.0005, 1e-9);
    ck_assert_double_eq_tol(shm_duration_quantile(b, 0.75), 0.0075, 1e-9);
    ck_assert_double_eq_tol(shm_duration_quantile(b, 0.99), 0.0099, 1e-9);
    b[14] = 1000; /* past 10 s: the last bound */
    ck_assert_double_eq_tol(shm_duration_quantile(b, 0.99), 10.0, 1e-9);
}
END_TEST

static char path[64];
static struct shm shm;

static void setup(void)
{
    struct err err;
    snprintf(path, sizeof path, "/tmp/check_shm_routes.%d.shm", (int)getpid());
    ck_assert_int_eq(shm_create(&shm, path, 4, &err), SK_OK);
}

static void teardown(void)
{
    shm_detach(&shm);
    unlink(path);
}

static char *metrics(void)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    shm_routes_write_metrics(&shm, shm.header, out);
    fclose(out);
    return text;
}

START_TEST(histograms_are_summed_and_cumulative)
{
    shm_route_label_set(&shm, SHM_ROUTE_FIRST, "api \"v1\"");
    for (unsigned slot = 0; slot < 2; slot++) {
        shm_slot_claim(&shm, slot, 100 + (int)slot, -1, 1, slot);
        struct shm_route_stats *r = &shm_routes_of(&shm, slot)[SHM_ROUTE_FIRST];
        shm_route_observe(r, 200, 300);     /* 0.3 ms */
        shm_route_observe(r, 503, 2000000); /* 2 s */
    }
    shm_route_observe(&shm_routes_of(&shm, 0)[SHM_ROUTE_UNROUTED], 400, 100);
    shm_slot_retire(&shm, 1); /* its counts stay */
    char *text = metrics();
    const char *expect[] = {
        "# TYPE saker_request_duration_seconds histogram\n",
        "saker_request_duration_seconds_bucket{route=\"_unrouted\",le=\"0.0005\"} 1\n",
        "saker_request_duration_seconds_bucket{route=\"_other\",le=\"+Inf\"} 0\n",
        "saker_request_duration_seconds_bucket{route=\"api \\\"v1\\\"\",le=\"0.0005\"} 2\n",
        "saker_request_duration_seconds_bucket{route=\"api \\\"v1\\\"\",le=\"1\"} 2\n",
        "saker_request_duration_seconds_bucket{route=\"api \\\"v1\\\"\",le=\"2.5\"} 4\n",
        "saker_request_duration_seconds_bucket{route=\"api \\\"v1\\\"\",le=\"+Inf\"} 4\n",
        "saker_request_duration_seconds_sum{route=\"api \\\"v1\\\"\"} 4.000600\n",
        "saker_request_duration_seconds_count{route=\"api \\\"v1\\\"\"} 4\n",
        "saker_route_responses_total{route=\"api \\\"v1\\\"\",class=\"2xx\"} 2\n",
        "saker_route_responses_total{route=\"api \\\"v1\\\"\",class=\"5xx\"} 2\n",
        "saker_route_responses_total{route=\"_unrouted\",class=\"4xx\"} 1\n",
    };
    for (size_t i = 0; i < sizeof expect / sizeof expect[0]; i++)
        ck_assert_msg(strstr(text, expect[i]) != NULL, "no '%s' in:\n%s", expect[i], text);
    /* Free entries are not written. */
    ck_assert_ptr_null(strstr(text, "route=\"\""));
    free(text);
    shm_route_label_clear(&shm, SHM_ROUTE_FIRST);
    text = metrics();
    ck_assert_ptr_null(strstr(text, "api"));
    free(text);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("shm_routes");
    TCase *tc = tcase_create("routes");
    tcase_add_test(tc, buckets_take_their_upper_bound);
    tcase_add_test(tc, quantiles_interpolate_within_a_bucket);
    suite_add_tcase(s, tc);
    TCase *seg = tcase_create("segment");
    tcase_add_checked_fixture(seg, setup, teardown);
    tcase_add_test(seg, histograms_are_summed_and_cumulative);
    suite_add_tcase(s, seg);
    return unit_run(s);
}
