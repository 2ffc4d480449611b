/*
 * check_top_frame.c - `sakerctl top`'s model (cli/top_frame.c): rates
 * between two samples of a segment filled as workers would, CPU percent
 * from tick readings, and the frame's text.
 *
 * Samples are taken at made-up monotonic times with a made-up tick source,
 * so every expected rate is exact.
 */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/top.h"
#include "shm/shm_routes.h"
#include "tests/unit/unit.h"

static char dir[64];
static char path[128];
static struct shm shm;
static uint64_t fake_ticks; /* what every pid has used so far */

static uint64_t ticks_of(pid_t pid)
{
    return pid == 1002 ? TOP_TICKS_UNKNOWN : fake_ticks;
}

static void worker(unsigned slot, int pid, uint64_t generation)
{
    shm_slot_claim(&shm, slot, pid, (int)slot, generation, slot);
    atomic_store(&shm.slots[slot].state, SHM_WORKER_RUNNING);
}

static void serve(unsigned slot, uint64_t requests, uint64_t bytes_out, uint64_t errors)
{
    struct shm_slot *s = &shm.slots[slot];
    shm_slot_count(s, SHM_REQUESTS, requests);
    shm_slot_count(s, SHM_RESPONSES_2XX, requests - errors);
    shm_slot_count(s, SHM_RESPONSES_5XX, errors);
    shm_slot_count(s, SHM_BYTES_OUT, bytes_out);
}

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/check_top.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/saker.shm", dir);
    struct err err;
    ck_assert_msg(shm_create(&shm, path, 4, &err) == SK_OK, "%s", err.message);
    atomic_store(&shm.header->generation, 2);
    atomic_store(&shm.header->state, SHM_INSTANCE_RUNNING);
    worker(0, 1000, 2);
    worker(1, 1001, 2);
    fake_ticks = 100;
}

static void teardown(void)
{
    shm_detach(&shm);
    unlink(path);
    rmdir(dir);
}

static char *frame(const struct top_sample *a, const struct top_sample *b)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    top_frame_write(out, a, b, 100, (int64_t)shm.header->started_at + 65);
    fclose(out);
    return text;
}

/* The row of pid in the frame, or NULL. */
static const char *row_of(const char *text, const char *pid)
{
    for (const char *p = text; (p = strstr(p, pid)) != NULL; p++)
        if (p > text && p[-1] == ' ' && p[strlen(pid)] == ' ')
            return p;
    return NULL;
}

START_TEST(test_rates_per_second)
{
    uint64_t a[SHM_COUNTER_COUNT] = {0}, b[SHM_COUNTER_COUNT] = {0};
    struct top_rates r;
    a[SHM_REQUESTS] = 100;
    b[SHM_REQUESTS] = 600;
    b[SHM_BYTES_OUT] = 2048;
    b[SHM_RESPONSES_4XX] = 5;
    top_rates_compute(a, b, 500, &r);
    ck_assert(r.known);
    ck_assert_double_eq(r.requests, 1000.0);
    ck_assert_double_eq(r.bytes_out, 4096.0);
    ck_assert_double_eq(r.responses[3], 10.0);
    ck_assert_double_eq(r.bytes_in, 0.0);
    /* A counter that went backwards (slot reused) is no negative rate. */
    top_rates_compute(b, a, 500, &r);
    ck_assert_double_eq(r.requests, 0.0);
    top_rates_compute(NULL, b, 500, &r);
    ck_assert(!r.known);
    top_rates_compute(a, b, 0, &r);
    ck_assert(!r.known);
}
END_TEST

START_TEST(test_cpu_percent)
{
    ck_assert_double_eq(top_cpu_percent(100, 150, 1000, 100), 50.0);
    ck_assert_double_eq(top_cpu_percent(100, 300, 1000, 100), 200.0);
    ck_assert_double_eq(top_cpu_percent(TOP_TICKS_UNKNOWN, 300, 1000, 100), -1.0);
    ck_assert_double_eq(top_cpu_percent(100, TOP_TICKS_UNKNOWN, 1000, 100), -1.0);
    ck_assert_double_eq(top_cpu_percent(100, 300, 0, 100), -1.0);
    ck_assert_double_eq(top_cpu_percent(300, 100, 1000, 100), -1.0);
}
END_TEST

START_TEST(test_sample_lists_live_slots_only)
{
    struct top_sample s = {0};
    ck_assert_int_eq(top_sample_take(&shm, 1000, ticks_of, &s), SK_OK);
    ck_assert_uint_eq(s.count, 2);
    ck_assert_uint_eq(s.workers[0].slot, 0);
    ck_assert_int_eq(s.workers[1].s.pid, 1001);
    ck_assert_uint_eq(s.workers[1].cpu_ticks, 100);
    ck_assert_uint_eq(s.header.generation, 2);
    top_sample_free(&s);
}
END_TEST

START_TEST(test_frame_rates_between_samples)
{
    struct top_sample a = {0}, b = {0};
    ck_assert_int_eq(top_sample_take(&shm, 10000, ticks_of, &a), SK_OK);
    serve(0, 200, 1000, 50); /* over 2 s: 100 req/s, 500 B/s, 75% 2xx, 25% 5xx */
    fake_ticks = 150;        /* 50 ticks of 100/s in 2 s: 25% */
    ck_assert_int_eq(top_sample_take(&shm, 12000, ticks_of, &b), SK_OK);
    char *text = frame(&a, &b);
    ck_assert_msg(strstr(text, "master pid ") && strstr(text, "generation 2  running  up 1m5s"),
                  "%s", text);
    ck_assert_msg(strstr(text, "100.0 req/s") != NULL, "%s", text);
    ck_assert_msg(strstr(text, "out 500B/s") != NULL, "%s", text);
    ck_assert_msg(strstr(text, "2xx/3xx/4xx/5xx % 75/0/0/25") != NULL, "%s", text);
    ck_assert_msg(strstr(text, "cpu 50.0%") != NULL, "%s", text); /* two workers at 25% */
    const char *row = row_of(text, "1000");
    ck_assert_msg(row != NULL, "%s", text);
    char line[256];
    snprintf(line, sizeof line, "%.*s", (int)strcspn(row, "\n"), row);
    ck_assert_msg(strstr(line, " 25.0 ") && strstr(line, " 100.0 ") &&
                  strstr(line, "75/0/0/25") && strstr(line, "500B/s"), "%s", line);
    free(text);
    top_sample_free(&a);
    top_sample_free(&b);
}
END_TEST

/* Per route: requests per second and the p50 and p99 of the interval
 * alone, from the difference of the two histograms. */
START_TEST(test_frame_route_quantiles_of_the_interval)
{
    struct top_sample a = {0}, b = {0};
    shm_route_label_set(&shm, SHM_ROUTE_FIRST, "/api");
    shm_route_label_set(&shm, SHM_ROUTE_FIRST + 1, "/quiet");
    struct shm_route_stats *api = &shm_routes_of(&shm, 0)[SHM_ROUTE_FIRST];
    for (int i = 0; i < 1000; i++)
        shm_route_observe(api, 200, 20000000); /* before: 20 s each */
    shm_route_observe(&shm_routes_of(&shm, 0)[SHM_ROUTE_FIRST + 1], 200, 100);
    ck_assert_int_eq(top_sample_take(&shm, 10000, ticks_of, &a), SK_OK);
    for (int i = 0; i < 98; i++)
        shm_route_observe(api, 200, 300); /* 0 .. 0.5 ms */
    for (int i = 0; i < 2; i++) /* 5 .. 10 ms, on the other worker */
        shm_route_observe(&shm_routes_of(&shm, 1)[SHM_ROUTE_FIRST], 500, 7000);
    ck_assert_int_eq(top_sample_take(&shm, 12000, ticks_of, &b), SK_OK);
    char *text = frame(&a, &b), line[256] = "";
    size_t at = strcspn(text, "/");
    while (text[at] != '\0' && strncmp(text + at, "/api ", 5) != 0)
        at++;
    snprintf(line, sizeof line, "%.*s", (int)strcspn(text + at, "\n"), text + at);
    /* 100 requests in 2 s; the 50th of 98 in 0 .. 0.5 ms is at 0.26 ms,
     * the 99th half way through the two in 5 .. 10 ms: 7.5 ms. */
    ck_assert_msg(strstr(line, " 50.0 ") && strstr(line, " 0.26ms ") &&
                  strstr(line, " 7.5ms ") && strstr(line, "98/0/0/2"), "%s", line);
    ck_assert_msg(strstr(text, "/quiet") == NULL, "%s", text); /* nothing in the interval */
    char *first = frame(NULL, &a);
    ck_assert_msg(strstr(first, "ROUTE") == NULL, "%s", first); /* no interval yet */
    free(first);
    free(text);
    top_sample_free(&a);
    top_sample_free(&b);
}
END_TEST

START_TEST(test_frame_respawned_worker_has_no_rates)
{
    struct top_sample a = {0}, b = {0};
    ck_assert_int_eq(top_sample_take(&shm, 1000, ticks_of, &a), SK_OK);
    shm_slot_retire(&shm, 1);
    worker(1, 1002, 2); /* slot 1 again, another pid */
    serve(1, 10, 10, 0);
    ck_assert_int_eq(top_sample_take(&shm, 2000, ticks_of, &b), SK_OK);
    char *text = frame(&a, &b);
    const char *row = row_of(text, "1002");
    ck_assert_msg(row != NULL, "%s", text);
    char line[256];
    snprintf(line, sizeof line, "%.*s", (int)strcspn(row, "\n"), row);
    /* pid, gen, state, then cpu "-", open 0, req/s "-" ... */
    ck_assert_msg(strstr(line, "running        -      0         -") != NULL, "%s", line);
    free(text);
    top_sample_free(&a);
    top_sample_free(&b);
}
END_TEST

START_TEST(test_frame_first_and_reload_lines)
{
    struct top_sample a = {0};
    shm_header_begin_write(&shm);
    shm.header->reload_count = 2;
    shm.header->reload_ok = 0;
    snprintf(shm.header->reload_message, SHM_MESSAGE_MAX, "saker.yaml:3:5: bad\033[2J");
    shm_header_end_write(&shm);
    worker(2, 1003, 3); /* a reload's new generation beside the old one */
    ck_assert_int_eq(top_sample_take(&shm, 1000, ticks_of, &a), SK_OK);
    char *text = frame(NULL, &a);
    ck_assert_msg(strstr(text, "req/s") && strstr(text, " - req/s"), "%s", text);
    ck_assert_msg(strstr(text, "last reload FAILED") && strstr(text, "saker.yaml:3:5: bad?[2J"),
                  "%s", text);
    ck_assert_msg(strchr(text, '\033') == NULL, "escape from shm reached the terminal");
    ck_assert_ptr_nonnull(row_of(text, "1003"));
    ck_assert_ptr_nonnull(row_of(text, "1000"));
    free(text);
    top_sample_free(&a);
}
END_TEST

/* A hostile segment: times at the ends of int64_t and counters jumping by
 * 2^64 - 1 in a millisecond. Differences saturate, rates are clamped
 * before they become integers (no undefined conversion or overflow). */
START_TEST(test_frame_extreme_values)
{
    struct top_sample a = {0}, b = {0};
    shm.header->started_at = INT64_MIN;
    shm.header->reload_count = 1;
    shm.header->reload_finished_at = INT64_MIN;
    ck_assert_int_eq(top_sample_take(&shm, 1000, ticks_of, &a), SK_OK);
    atomic_store(&shm.slots[0].counters[SHM_BYTES_OUT], UINT64_MAX);
    atomic_store(&shm.slots[0].counters[SHM_REQUESTS], UINT64_MAX);
    atomic_store(&shm.slots[0].heartbeat_ms, UINT64_MAX);
    ck_assert_int_eq(top_sample_take(&shm, 1001, ticks_of, &b), SK_OK);
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    top_frame_write(out, &a, &b, 100, INT64_MAX);
    fclose(out);
    ck_assert_msg(strstr(text, "up 106751991167300d15h30m7s") != NULL, "%s", text);
    ck_assert_msg(strstr(text, "106751991167300d15h30m7s ago") != NULL, "%s", text);
    ck_assert_msg(strstr(text, "out 16.0EiB/s") != NULL, "%s", text);
    free(text);
    top_sample_free(&a);
    top_sample_free(&b);
}
END_TEST

START_TEST(test_format_helpers)
{
    char buf[64];
    ck_assert_str_eq(cli_format_duration(3723, buf, sizeof buf), "1h2m3s");
    ck_assert_str_eq(cli_format_duration(-5, buf, sizeof buf), "0s");
    ck_assert_str_eq(cli_format_bytes(1023, buf, sizeof buf), "1023B");
    ck_assert_str_eq(cli_format_bytes(1536, buf, sizeof buf), "1.5KiB");
    ck_assert_str_eq(cli_format_age(0, 5000, buf, sizeof buf), "-");
    ck_assert_str_eq(cli_format_age(4000, 4350, buf, sizeof buf), "350ms");
    ck_assert_str_eq(cli_format_age(1000, 13000, buf, sizeof buf), "12s");
    ck_assert_str_eq(cli_printable("a\nb\x7f", 16, buf, sizeof buf), "a?b?");
    ck_assert_str_eq(cli_printable("abcdef", 3, buf, sizeof buf), "abc");
}
END_TEST

static Suite *top_suite(void)
{
    Suite *s = suite_create("top_frame");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_rates_per_second);
    tcase_add_test(tc, test_cpu_percent);
    tcase_add_test(tc, test_sample_lists_live_slots_only);
    tcase_add_test(tc, test_frame_rates_between_samples);
    tcase_add_test(tc, test_frame_route_quantiles_of_the_interval);
    tcase_add_test(tc, test_frame_respawned_worker_has_no_rates);
    tcase_add_test(tc, test_frame_first_and_reload_lines);
    tcase_add_test(tc, test_frame_extreme_values);
    tcase_add_test(tc, test_format_helpers);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return unit_run(top_suite());
}
