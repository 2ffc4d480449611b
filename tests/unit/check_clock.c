/* check_clock.c - common/clock.c: IMF-fixdate rendering (RFC 9110 section
 * 5.6.7) of known instants, whatever the process locale. */
#include <check.h>
#include <locale.h>
#include <stdint.h>
#include <string.h>

#include "common/clock.h"
#include "tests/unit/unit.h"

struct date_case {
    time_t t;
    const char *text;
};

static const struct date_case dates[] = {
    {784111777, "Sun, 06 Nov 1994 08:49:37 GMT"}, /* the RFC's own example */
    {0, "Thu, 01 Jan 1970 00:00:00 GMT"},
    {951782400, "Tue, 29 Feb 2000 00:00:00 GMT"},
    {1798761599, "Thu, 31 Dec 2026 23:59:59 GMT"},
    {4102444800, "Fri, 01 Jan 2100 00:00:00 GMT"},
    {253402300799, "Fri, 31 Dec 9999 23:59:59 GMT"},
};

START_TEST(known_instants_render_as_imf_fixdate)
{
    char out[CLOCK_HTTP_DATE_LEN + 1];
    memset(out, 'x', sizeof out);
    clock_format_http_date(dates[_i].t, out);
    ck_assert_str_eq(out, dates[_i].text);
    ck_assert_uint_eq(strlen(out), CLOCK_HTTP_DATE_LEN);
}
END_TEST

START_TEST(years_past_9999_are_clamped_not_overflowed)
{
    char out[CLOCK_HTTP_DATE_LEN + 8];
    memset(out, 'x', sizeof out);
    clock_format_http_date((time_t)253402300800LL + 86400 * 400, out);
    ck_assert_uint_eq(strlen(out), CLOCK_HTTP_DATE_LEN); /* nothing past the NUL */
    ck_assert(strstr(out, " 9999 ") != NULL);
    ck_assert_int_eq(out[CLOCK_HTTP_DATE_LEN + 1], 'x');
}
END_TEST

/* Times gmtime_r cannot convert (a file's mtime is anything touch(1)
 * sets): the last and first second the format can write. */
START_TEST(times_beyond_any_calendar_are_clamped)
{
    char out[CLOCK_HTTP_DATE_LEN + 1];
    clock_format_http_date((time_t)INT64_MAX, out);
    ck_assert_str_eq(out, "Fri, 31 Dec 9999 23:59:59 GMT");
    clock_format_http_date((time_t)INT64_MIN, out);
    ck_assert_str_eq(out, "Sat, 01 Jan 0000 00:00:00 GMT");
}
END_TEST

START_TEST(the_cached_date_follows_the_clock)
{
    clock_update();
    const char *date = clock_http_date();
    ck_assert_uint_eq(strlen(date), CLOCK_HTTP_DATE_LEN);
    char expected[CLOCK_HTTP_DATE_LEN + 1];
    clock_format_http_date(clock_wall_seconds(), expected);
    ck_assert_str_eq(date, expected);
}
END_TEST

int main(void)
{
    setlocale(LC_ALL, ""); /* day and month names must not follow it */
    Suite *s = suite_create("clock");
    TCase *t = tcase_create("clock");
    tcase_add_loop_test(t, known_instants_render_as_imf_fixdate, 0,
                        (int)(sizeof dates / sizeof dates[0]));
    tcase_add_test(t, years_past_9999_are_clamped_not_overflowed);
    tcase_add_test(t, times_beyond_any_calendar_are_clamped);
    tcase_add_test(t, the_cached_date_follows_the_clock);
    suite_add_tcase(s, t);
    return unit_run(s);
}
