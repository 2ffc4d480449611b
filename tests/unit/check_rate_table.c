/*
 * check_rate_table.c - rate limit state in shared memory (shm/rate_table.c).
 *
 * The algorithms are driven with made-up times; exactness across
 * processes is checked with forked children hammering one table, as
 * workers do; the bound under a flood of keys and the takeover of a lock
 * whose holder died look at the table's sets, so this suite compiles the
 * source in.
 */
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "shm/rate_table.c"
#include "tests/unit/unit.h"

static struct rate_limit_policy policy(enum rate_limit_algorithm algorithm, uint64_t limit,
                                       uint64_t period_ms)
{
    return (struct rate_limit_policy){.name = "t", .algorithm = algorithm, .limit = limit,
                                      .period_ms = period_ms, .segments = 1,
                                      .max_partitions = 1000};
}

static struct rate_table *make(const struct rate_limit_policy *p)
{
    struct err err = {{0}};
    struct rate_table *t = rate_table_create(p, &err);
    ck_assert_msg(t != NULL, "%s", err.message);
    return t;
}

static bool take(struct rate_table *t, const char *key, uint64_t now_ms, uint64_t *retry_ms)
{
    struct rate_decision d;
    rate_table_acquire(t, key, strlen(key), now_ms, &d);
    if (retry_ms != NULL)
        *retry_ms = d.retry_after_ms;
    ck_assert(d.admitted == (d.retry_after_ms == 0));
    return d.admitted;
}

static int take_n(struct rate_table *t, const char *key, uint64_t now_ms, int n)
{
    int admitted = 0;
    for (int i = 0; i < n; i++)
        admitted += take(t, key, now_ms, NULL);
    return admitted;
}

/* Windows are numbered on the monotonic clock: a time of day far from 0. */
#define T0 UINT64_C(1000000000000)

START_TEST(fixed_window_counts_per_window)
{
    struct rate_limit_policy p = policy(RATE_LIMIT_FIXED_WINDOW, 3, 1000);
    struct rate_table *t = make(&p);
    uint64_t retry;
    ck_assert_int_eq(take_n(t, "a", T0 + 100, 3), 3);
    ck_assert(!take(t, "a", T0 + 250, &retry));
    ck_assert_uint_eq(retry, 750); /* the next window starts at T0 + 1000 */
    ck_assert_int_eq(take_n(t, "b", T0 + 250, 5), 3); /* another partition */
    ck_assert_int_eq(take_n(t, "a", T0 + 1000, 5), 3);
    /* A worker whose clock lags stays in the later window. */
    ck_assert(!take(t, "a", T0 + 999, &retry));
    ck_assert_uint_eq(retry, 1001);
    rate_table_destroy(t);
}
END_TEST

START_TEST(token_bucket_replenishes_per_period)
{
    struct rate_limit_policy p = policy(RATE_LIMIT_TOKEN_BUCKET, 5, 100);
    p.tokens_per_period = 2;
    struct rate_table *t = make(&p);
    uint64_t retry;
    ck_assert_int_eq(take_n(t, "a", T0, 10), 5); /* a new bucket is full */
    ck_assert(!take(t, "a", T0 + 30, &retry));
    ck_assert_uint_eq(retry, 70);
    ck_assert_int_eq(take_n(t, "a", T0 + 100, 10), 2);
    ck_assert_int_eq(take_n(t, "a", T0 + 250, 10), 2);
    ck_assert_int_eq(take_n(t, "a", T0 + 5000, 10), 5); /* never more than the limit */
    rate_table_destroy(t);
}
END_TEST

START_TEST(sliding_window_frees_segment_by_segment)
{
    struct rate_limit_policy p = policy(RATE_LIMIT_SLIDING_WINDOW, 4, 400);
    p.segments = 4; /* 100 ms each */
    struct rate_table *t = make(&p);
    uint64_t retry;
    ck_assert_int_eq(take_n(t, "a", T0 + 10, 2), 2);  /* segment 0 */
    ck_assert_int_eq(take_n(t, "a", T0 + 150, 3), 2); /* segment 1 */
    ck_assert(!take(t, "a", T0 + 160, &retry));
    ck_assert_uint_eq(retry, 240); /* segment 0 leaves the window at T0 + 400 */
    ck_assert(!take(t, "a", T0 + 399, NULL));
    ck_assert_int_eq(take_n(t, "a", T0 + 400, 5), 2); /* segment 0's two are back */
    ck_assert(!take(t, "a", T0 + 420, &retry));
    ck_assert_uint_eq(retry, 80); /* then segment 1's, at T0 + 500 */
    ck_assert_int_eq(take_n(t, "a", T0 + 500, 5), 2);
    ck_assert_int_eq(take_n(t, "a", T0 + 2000, 9), 4); /* all gone long ago */
    rate_table_destroy(t);
}
END_TEST

START_TEST(sliding_window_of_one_segment_is_a_fixed_window)
{
    struct rate_limit_policy p = policy(RATE_LIMIT_SLIDING_WINDOW, 2, 1000);
    struct rate_table *t = make(&p);
    uint64_t retry;
    ck_assert_int_eq(take_n(t, "a", T0 + 500, 3), 2);
    ck_assert(!take(t, "a", T0 + 600, &retry));
    ck_assert_uint_eq(retry, 400);
    ck_assert_int_eq(take_n(t, "a", T0 + 1000, 3), 2);
    rate_table_destroy(t);
}
END_TEST

START_TEST(refund_gives_back_only_in_the_same_window)
{
    struct rate_limit_policy p = policy(RATE_LIMIT_FIXED_WINDOW, 2, 1000);
    struct rate_table *t = make(&p);
    struct rate_decision d1, d2;
    rate_table_acquire(t, "a", 1, T0, &d1);
    rate_table_acquire(t, "a", 1, T0, &d2);
    ck_assert(d1.admitted && d2.admitted);
    ck_assert(!take(t, "a", T0, NULL));
    rate_table_refund(t, &d2);
    ck_assert(take(t, "a", T0, NULL));
    ck_assert(!take(t, "a", T0, NULL));
    ck_assert(take(t, "a", T0 + 1000, NULL));
    rate_table_refund(t, &d1); /* its window is over: nothing comes back */
    ck_assert_int_eq(take_n(t, "a", T0 + 1000, 5), 1);
    rate_table_destroy(t);
}
END_TEST

/* Keys that land in set 0 of t, found by trying. */
static int keys_in_set(struct rate_table *t, uint32_t set, char keys[][16], int want)
{
    int n = 0;
    for (int i = 0; n < want && i < 1000000; i++) {
        char key[16];
        snprintf(key, sizeof key, "k%d", i);
        uint64_t h = siphash24(t->secret, key, strlen(key));
        if ((uint32_t)(((uint64_t)(uint32_t)h * t->set_count) >> 32) == set)
            memcpy(keys[n++], key, sizeof key);
    }
    return n;
}

START_TEST(a_flood_of_keys_neither_evicts_nor_gets_through)
{
    struct rate_limit_policy p = policy(RATE_LIMIT_FIXED_WINDOW, 5, 60000);
    p.max_partitions = 16; /* two sets */
    struct rate_table *t = make(&p);
    char keys[40][16];
    ck_assert_int_eq(keys_in_set(t, 0, keys, 40), 40);
    /* A heavy client uses its limit. */
    ck_assert_int_eq(take_n(t, keys[0], T0, 10), 5);
    /* 39 new keys of its set: 7 get records, 32 share the overflow
     * partition, which admits 5 between them. */
    int admitted = 0, overflow = 0;
    for (int i = 1; i < 40; i++) {
        struct rate_decision d;
        rate_table_acquire(t, keys[i], strlen(keys[i]), T0 + 1, &d);
        admitted += d.admitted;
        overflow += d.overflow;
    }
    ck_assert_int_eq(overflow, 32);
    ck_assert_int_eq(admitted, 7 + 5);
    /* The heavy client was not pushed out to start afresh. */
    ck_assert(!take(t, keys[0], T0 + 2, NULL));
    /* Once the window is over, expired records go to new keys. */
    struct rate_decision d;
    rate_table_acquire(t, keys[39], strlen(keys[39]), T0 + 60000, &d);
    ck_assert(d.admitted && !d.overflow);
    rate_table_destroy(t);
}
END_TEST

START_TEST(a_dead_lock_holder_is_taken_over)
{
    struct rate_limit_policy p = policy(RATE_LIMIT_FIXED_WINDOW, 1, 1000);
    p.max_partitions = 8;
    struct rate_table *t = make(&p);
    pid_t dead = fork();
    if (dead == 0)
        _exit(0);
    ck_assert_int_eq(waitpid(dead, NULL, 0), dead);
    atomic_store(lock_of(t, 0), (int32_t)dead); /* it died inserting */
    ck_assert(take(t, "new", T0, NULL));
    ck_assert_int_eq(atomic_load(lock_of(t, 0)), 0);
    rate_table_destroy(t);
}
END_TEST

START_TEST(a_stuck_lock_holder_means_refusal_not_overshoot)
{
    struct rate_limit_policy p = policy(RATE_LIMIT_FIXED_WINDOW, 1, 1000);
    p.max_partitions = 8;
    struct rate_table *t = make(&p);
    atomic_store(lock_of(t, 0), (int32_t)getppid()); /* alive, and not letting go */
    uint64_t retry;
    ck_assert(!take(t, "new", T0, &retry));
    ck_assert_uint_eq(retry, CONTENDED_RETRY_MS);
    ck_assert_int_eq(atomic_load(lock_of(t, 0)), (int32_t)getppid());
    rate_table_destroy(t);
}
END_TEST

START_TEST(size_is_the_documented_bound)
{
    struct rate_limit_policy p = policy(RATE_LIMIT_FIXED_WINDOW, 1, 1000);
    p.max_partitions = 10000;
    size_t fixed = rate_table_size(&p);
    ck_assert_uint_le(fixed, 10001 * 16 + 1250 * 4 + 128);
    ck_assert_uint_ge(fixed, 10001 * 16);
    p.algorithm = RATE_LIMIT_SLIDING_WINDOW;
    p.segments = 6;
    ck_assert_uint_eq(rate_table_size(&p), fixed + 10001 * 6 * 8);
}
END_TEST

/* ---- across processes ------------------------------------------------ */

#define CHILDREN 4

/* Each child decides `tries` requests per key in keys and writes how many
 * were admitted into counts[child]; counts[CHILDREN] starts them all at
 * once, so that they race. */
static void hammer(struct rate_table *t, _Atomic uint64_t *counts, int keys, int tries,
                   uint64_t (*now)(int i))
{
    pid_t pids[CHILDREN];
    for (int c = 0; c < CHILDREN; c++) {
        if ((pids[c] = fork()) == 0) {
            uint64_t admitted = 0;
            while (atomic_load(&counts[CHILDREN]) == 0)
                ;
            for (int i = 0; i < tries; i++)
                for (int k = 0; k < keys; k++) {
                    char key[16];
                    snprintf(key, sizeof key, "key%d", (k + c * 7) % keys);
                    struct rate_decision d;
                    rate_table_acquire(t, key, strlen(key), now(i), &d);
                    admitted += d.admitted;
                }
            atomic_store(&counts[c], admitted);
            _exit(0);
        }
    }
    atomic_store(&counts[CHILDREN], 1);
    for (int c = 0; c < CHILDREN; c++) {
        int status;
        ck_assert_int_eq(waitpid(pids[c], &status, 0), pids[c]);
        ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
}

static _Atomic uint64_t *shared_counts(void)
{
    void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    ck_assert(p != MAP_FAILED);
    return p;
}

static uint64_t sum(_Atomic uint64_t *counts)
{
    uint64_t n = 0;
    for (int c = 0; c < CHILDREN; c++)
        n += atomic_load(&counts[c]);
    return n;
}

static uint64_t same_time(int i)
{
    (void)i;
    return T0;
}

static void exact_under_contention(enum rate_limit_algorithm algorithm)
{
    /* A limit the racers take a while to reach: every admission races. */
    struct rate_limit_policy p = policy(algorithm, 50000, 3600000);
    p.tokens_per_period = 1;
    p.segments = algorithm == RATE_LIMIT_SLIDING_WINDOW ? 60 : 1;
    struct rate_table *t = make(&p);
    _Atomic uint64_t *counts = shared_counts();
    hammer(t, counts, 1, 20000, same_time);
    ck_assert_uint_eq(sum(counts), 50000);
    rate_table_destroy(t);
}

START_TEST(fixed_window_exact_across_processes) { exact_under_contention(RATE_LIMIT_FIXED_WINDOW); }
END_TEST
START_TEST(sliding_window_exact_across_processes)
{
    exact_under_contention(RATE_LIMIT_SLIDING_WINDOW);
}
END_TEST
START_TEST(token_bucket_exact_across_processes) { exact_under_contention(RATE_LIMIT_TOKEN_BUCKET); }
END_TEST

/* Time moves a segment every 50 requests: the segments change hands while
 * four processes race over them, and no window of 10 segments ever holds
 * more than the limit. */
static uint64_t moving_time(int i) { return T0 + (uint64_t)i * 2; }

START_TEST(sliding_window_exact_while_segments_move)
{
    struct rate_limit_policy p = policy(RATE_LIMIT_SLIDING_WINDOW, 30, 1000);
    p.segments = 10; /* 100 ms: 50 tries each */
    struct rate_table *t = make(&p);
    _Atomic uint64_t *counts = shared_counts();
    hammer(t, counts, 1, 5000, moving_time); /* 10 s of made-up time: 100 segments */
    /* Every segment-aligned window admits at most 30 and, saturated,
     * exactly 30: ten windows' worth over the run. */
    ck_assert_uint_eq(sum(counts), 30 * 10);
    rate_table_destroy(t);
}
END_TEST

START_TEST(new_keys_get_one_record_each_across_processes)
{
    struct rate_limit_policy p = policy(RATE_LIMIT_FIXED_WINDOW, 1, 3600000);
    p.max_partitions = 2048;
    struct rate_table *t = make(&p);
    _Atomic uint64_t *counts = shared_counts();
    hammer(t, counts, 100, 3, same_time);
    /* Two records for one key would admit it twice. */
    ck_assert_uint_eq(sum(counts), 100);
    rate_table_destroy(t);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("rate_table");
    TCase *tc = tcase_create("algorithms");
    tcase_add_test(tc, fixed_window_counts_per_window);
    tcase_add_test(tc, token_bucket_replenishes_per_period);
    tcase_add_test(tc, sliding_window_frees_segment_by_segment);
    tcase_add_test(tc, sliding_window_of_one_segment_is_a_fixed_window);
    tcase_add_test(tc, refund_gives_back_only_in_the_same_window);
    tcase_add_test(tc, a_flood_of_keys_neither_evicts_nor_gets_through);
    tcase_add_test(tc, a_dead_lock_holder_is_taken_over);
    tcase_add_test(tc, a_stuck_lock_holder_means_refusal_not_overshoot);
    tcase_add_test(tc, size_is_the_documented_bound);
    suite_add_tcase(s, tc);
    TCase *across = tcase_create("across processes");
    tcase_set_timeout(across, 60);
    tcase_add_test(across, fixed_window_exact_across_processes);
    tcase_add_test(across, sliding_window_exact_across_processes);
    tcase_add_test(across, token_bucket_exact_across_processes);
    tcase_add_test(across, sliding_window_exact_while_segments_move);
    tcase_add_test(across, new_keys_get_one_record_each_across_processes);
    suite_add_tcase(s, across);
    return s;
}

int main(void) { return unit_run(suite()); }
