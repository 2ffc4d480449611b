/* check_log.c - common/log.c: lines as written, and the rate limit that
 * keeps a flood (accept4 at the descriptor limit, a full disk) from
 * becoming gigabytes of log: one line per site per interval, the rest
 * counted into one line. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/log.h"
#include "tests/unit/unit.h"

#define INTERVAL_MS 100

static char log_path[64];

static void setup(void)
{
    snprintf(log_path, sizeof log_path, "/tmp/check_log.XXXXXX");
    int fd = mkstemp(log_path);
    ck_assert_int_ge(fd, 0);
    close(fd);
    ck_assert_int_eq(log_open(log_path), 0);
    log_set_level(LOG_INFO);
    log_limit_set_interval(INTERVAL_MS);
}

static void teardown(void)
{
    log_open(NULL);
    unlink(log_path);
}

/* The whole log, NUL-ended, in a static buffer. */
static const char *log_text(void)
{
    static char text[1 << 16];
    FILE *f = fopen(log_path, "r");
    ck_assert_ptr_nonnull(f);
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = '\0';
    return text;
}

static int log_lines(void)
{
    int n = 0;
    for (const char *p = log_text(); *p != '\0'; p++)
        n += *p == '\n';
    return n;
}

/* Waits until an interval that starts now is over (bounded). */
static void wait_interval(void)
{
    uint64_t until = clock_now_monotonic_ms() + INTERVAL_MS + 1;
    for (int i = 0; i < 1000 && clock_now_monotonic_ms() < until; i++)
        usleep(1000);
    ck_assert_uint_ge(clock_now_monotonic_ms(), until);
}

static void accept_fails(void)
{
    log_limited(LOG_WARN, EMFILE, "accept4()");
}

START_TEST(a_flood_is_one_line_then_one_count)
{
    for (int i = 0; i < 100000; i++)
        accept_fails();
    ck_assert_int_eq(log_lines(), 1);
    ck_assert_ptr_nonnull(strstr(log_text(), "[warn] saker["));
    ck_assert_ptr_nonnull(strstr(log_text(), "accept4() failed: Too many open files\n"));
    log_limit_flush(); /* within the interval: nothing yet */
    ck_assert_int_eq(log_lines(), 1);
    wait_interval();
    log_limit_flush();
    ck_assert_int_eq(log_lines(), 2);
    ck_assert_ptr_nonnull(
        strstr(log_text(), "accept4() failed: Too many open files (99999 more like it in "));
    log_limit_flush(); /* said once */
    ck_assert_int_eq(log_lines(), 2);
}
END_TEST

START_TEST(the_next_line_after_the_interval_carries_the_count)
{
    for (int i = 0; i < 10; i++)
        log_limited(LOG_ERROR, 0, "malloc(conn %d) failed", i);
    ck_assert_int_eq(log_lines(), 1);
    wait_interval();
    log_limited(LOG_ERROR, 0, "malloc(conn %d) failed", 10);
    ck_assert_int_eq(log_lines(), 2);
    ck_assert_ptr_nonnull(strstr(log_text(), "malloc(conn 0) failed\n"));
    ck_assert_ptr_nonnull(strstr(log_text(), "malloc(conn 10) failed (9 more like it in "));
}
END_TEST

START_TEST(sites_are_limited_apart)
{
    for (int i = 0; i < 50; i++) {
        accept_fails();
        log_limited(LOG_ERROR, ENOSPC, "write(access log)");
    }
    ck_assert_int_eq(log_lines(), 2);
    ck_assert_ptr_nonnull(strstr(log_text(), "write(access log) failed: No space left"));
}
END_TEST

/* saker has far fewer limited sites than the table holds; were there
 * more, a new one takes the place of the one quiet for longest, whose
 * count is written first rather than lost. */
START_TEST(a_site_pushed_out_of_the_table_keeps_its_count)
{
    enum { SITES = 33 };
    static char formats[SITES][16];
    for (int i = 0; i < SITES; i++)
        snprintf(formats[i], sizeof formats[i], "site %%d");
    for (int i = 0; i < SITES - 1; i++) {
        log_limited(LOG_WARN, 0, formats[i], i);
        log_limited(LOG_WARN, 0, formats[i], i);
    }
    ck_assert_int_eq(log_lines(), SITES - 1);
    log_limited(LOG_WARN, 0, formats[SITES - 1], SITES - 1);
    ck_assert_int_eq(log_lines(), SITES + 1);
    ck_assert_ptr_nonnull(strstr(log_text(), "site 0 (1 more like it in "));
    ck_assert_ptr_nonnull(strstr(log_text(), "site 32\n"));
}
END_TEST

START_TEST(below_the_level_nothing_is_written_or_counted)
{
    log_set_level(LOG_ERROR);
    for (int i = 0; i < 10; i++)
        accept_fails();
    wait_interval();
    log_limit_flush();
    ck_assert_int_eq(log_lines(), 0);
}
END_TEST

START_TEST(debug_lines_are_not_limited)
{
    log_set_level(LOG_DEBUG);
    for (int i = 0; i < 10; i++)
        log_limited(LOG_DEBUG, 0, "conn %d read", i);
    ck_assert_int_eq(log_lines(), 10);
}
END_TEST

START_TEST(unlimited_lines_keep_errno_and_their_text)
{
    errno = EBADF;
    log_errno(LOG_ERROR, EINVAL, "setsockopt(%s)", "TCP_NODELAY");
    ck_assert_int_eq(errno, EBADF);
    log_msg(LOG_INFO, "listening on %s", "127.0.0.1:80");
    ck_assert_int_eq(log_lines(), 2);
    ck_assert_ptr_nonnull(strstr(log_text(), "[error] saker["));
    ck_assert_ptr_nonnull(strstr(log_text(), "setsockopt(TCP_NODELAY) failed: Invalid argument\n"));
    ck_assert_ptr_nonnull(strstr(log_text(), "[info] saker["));
    ck_assert_ptr_nonnull(strstr(log_text(), ": listening on 127.0.0.1:80\n"));
}
END_TEST

START_TEST(a_long_line_is_cut_not_overflowed)
{
    static char big[8192];
    memset(big, 'x', sizeof big - 1);
    log_msg(LOG_WARN, "%s", big);
    log_limited(LOG_WARN, 0, "limited %s", big);
    ck_assert_int_eq(log_lines(), 2);
    const char *text = log_text();
    ck_assert_uint_lt(strlen(text), 2 * 2048 + 1);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("log");
    TCase *t = tcase_create("log");
    tcase_add_checked_fixture(t, setup, teardown);
    tcase_add_test(t, a_flood_is_one_line_then_one_count);
    tcase_add_test(t, the_next_line_after_the_interval_carries_the_count);
    tcase_add_test(t, sites_are_limited_apart);
    tcase_add_test(t, a_site_pushed_out_of_the_table_keeps_its_count);
    tcase_add_test(t, below_the_level_nothing_is_written_or_counted);
    tcase_add_test(t, debug_lines_are_not_limited);
    tcase_add_test(t, unlimited_lines_keep_errno_and_their_text);
    tcase_add_test(t, a_long_line_is_cut_not_overflowed);
    suite_add_tcase(s, t);
    return unit_run(s);
}
