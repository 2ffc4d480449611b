/*
 * check_timer.c - worker/timer.c: the heap on a fake clock (order, stop,
 * restart, a 50 ms timeout fired at 50 ms, not at the next heartbeat),
 * and its one libevent timer on a real loop.
 */
#include <check.h>
#include <stdlib.h>
#include <sys/time.h>

#include <event2/event.h>

#include "common/clock.h"
#include "worker/timer.h"
#include "tests/unit/unit.h"

static uint64_t fake_now;
static uint64_t fake_clock(void) { return fake_now; }

struct probe {
    struct timer timer;
    int fired;
    uint64_t fired_at;
    int order;
};

static int fire_order;
static struct timers *restart_in; /* a probe's fire() starts it again here, once */

static void on_fire(struct timer *t)
{
    struct probe *p = (struct probe *)t;
    p->fired++;
    p->fired_at = fake_now;
    p->order = ++fire_order;
    if (restart_in != NULL && p->fired == 1)
        timer_start(restart_in, t, 0);
}

static void probe_init(struct probe *p)
{
    timer_init(&p->timer, on_fire);
    p->fired = 0;
    p->order = 0;
}

START_TEST(fifty_ms_timeout_fires_at_fifty_ms)
{
    struct timers ts;
    struct probe p;
    fake_now = 1000;
    timers_init(&ts, fake_clock);
    probe_init(&p);
    ck_assert_int_eq(timer_start(&ts, &p.timer, 50), 0);
    ck_assert(timer_armed(&p.timer));
    ck_assert_uint_eq(timers_next(&ts), 1050);
    fake_now = 1049;
    timers_run(&ts);
    ck_assert_int_eq(p.fired, 0);
    fake_now = 1050;
    timers_run(&ts);
    ck_assert_int_eq(p.fired, 1);
    ck_assert_uint_eq(p.fired_at, 1050); /* within 10 ms: at its due time */
    ck_assert(!timer_armed(&p.timer));
    ck_assert_uint_eq(timers_next(&ts), 0);
    timers_destroy(&ts);
}
END_TEST

START_TEST(many_timers_fire_in_due_order_and_stopped_ones_never)
{
    enum { N = 200 };
    static struct probe p[N];
    struct timers ts;
    fake_now = 0;
    fire_order = 0;
    timers_init(&ts, fake_clock);
    for (int i = 0; i < N; i++) {
        probe_init(&p[i]);
        ck_assert_int_eq(timer_start(&ts, &p[i].timer, (uint64_t)((i * 7919) % N) + 1), 0);
    }
    for (int i = 0; i < N; i += 3)
        timer_stop(&ts, &p[i].timer);
    timer_start(&ts, &p[1].timer, 5000); /* moved later */
    fake_now = N;
    timers_run(&ts);
    uint64_t last_due = 0;
    for (int order = 1; order <= fire_order; order++)
        for (int i = 0; i < N; i++)
            if (p[i].order == order) {
                uint64_t due = (uint64_t)((i * 7919) % N) + 1;
                ck_assert_uint_ge(due, last_due);
                last_due = due;
            }
    for (int i = 0; i < N; i++)
        ck_assert_int_eq(p[i].fired, i % 3 == 0 || i == 1 ? 0 : 1);
    ck_assert_uint_eq(timers_next(&ts), 5000);
    fake_now = 5000;
    timers_run(&ts);
    ck_assert_int_eq(p[1].fired, 1);
    timers_destroy(&ts);
}
END_TEST

START_TEST(a_timer_restarted_from_its_fire_waits_for_the_next_run)
{
    struct timers ts;
    struct probe p;
    fake_now = 0;
    timers_init(&ts, fake_clock);
    probe_init(&p);
    restart_in = &ts;
    timer_start(&ts, &p.timer, 10);
    fake_now = 10;
    timers_run(&ts);
    ck_assert_int_eq(p.fired, 1);
    ck_assert(timer_armed(&p.timer));
    timers_run(&ts);
    ck_assert_int_eq(p.fired, 2);
    restart_in = NULL;
    timers_destroy(&ts);
}
END_TEST

static uint64_t real_clock(void) { return clock_now_monotonic_ms(); }

/* On a real loop: the libevent timer is armed for the timer's own due
 * time (not the heartbeat's second), and the timer fires once it is due. */
START_TEST(one_libevent_timer_armed_at_the_earliest_expiry)
{
    struct event_base *base = event_base_new();
    struct timers ts;
    struct probe a, b;
    timers_init(&ts, real_clock);
    ck_assert_int_eq(timers_attach(&ts, base), 0);
    probe_init(&a);
    probe_init(&b);
    uint64_t start = real_clock();
    timer_start(&ts, &b.timer, 5000);
    timer_start(&ts, &a.timer, 50);
    struct timeval due, now;
    ck_assert(event_pending(ts.event, EV_TIMEOUT, &due));
    evutil_gettimeofday(&now, NULL);
    long wait_ms = (due.tv_sec - now.tv_sec) * 1000 + (due.tv_usec - now.tv_usec) / 1000;
    ck_assert_int_lt(wait_ms, 1000); /* the 50 ms timer's, not the 5 s one nor a heartbeat */
    for (int turn = 0; turn < 1000 && a.fired == 0; turn++)
        event_base_loop(base, EVLOOP_ONCE);
    ck_assert_int_eq(a.fired, 1);
    ck_assert_uint_ge(real_clock() - start, 50);
    ck_assert_int_eq(b.fired, 0);
    ck_assert(event_pending(ts.event, EV_TIMEOUT, NULL)); /* now for b */
    timers_destroy(&ts);
    event_base_free(base);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("timer");
    TCase *t = tcase_create("timer");
    tcase_add_test(t, fifty_ms_timeout_fires_at_fifty_ms);
    tcase_add_test(t, many_timers_fire_in_due_order_and_stopped_ones_never);
    tcase_add_test(t, a_timer_restarted_from_its_fire_waits_for_the_next_run);
    tcase_add_test(t, one_libevent_timer_armed_at_the_earliest_expiry);
    suite_add_tcase(s, t);
    return unit_run(s);
}
