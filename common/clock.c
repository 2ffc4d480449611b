/* clock.c - cached clocks and Date header; see clock.h. */
#include "common/clock.h"

#include "common/digits.h"

#include <stdint.h>
#include <string.h>

static uint64_t cached_monotonic_ms;
static uint64_t cached_monotonic_us;
static time_t cached_wall_seconds = -1;
static char cached_http_date[CLOCK_HTTP_DATE_LEN + 1];

static const char *const day_names[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
static const char *const month_names[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                          "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

/* The first and last seconds an IMF-fixdate can write (years 0..9999). */
#define HTTP_DATE_MIN INT64_C(-62167219200)
#define HTTP_DATE_MAX INT64_C(253402300799)

void clock_format_http_date(time_t t, char *out)
{
    /* Years outside 0..9999 cannot be written in the format: the time is
     * clamped, which also keeps gmtime_r within what it can convert. */
    if ((int64_t)t < HTTP_DATE_MIN)
        t = (time_t)HTTP_DATE_MIN;
    if ((int64_t)t > HTTP_DATE_MAX)
        t = (time_t)HTTP_DATE_MAX;
    struct tm tm;
    gmtime_r(&t, &tm);
    /* By hand: strftime's %a/%b follow the locale, HTTP's do not, and
     * static responses format a Last-Modified each. */
    unsigned year_digits = (unsigned)(tm.tm_year + 1900);
    char *p = out;
    memcpy(p, day_names[tm.tm_wday], 3), p += 3;
    *p++ = ',', *p++ = ' ';
    p = digits_decimal_padded(p, (unsigned)tm.tm_mday, 2);
    *p++ = ' ';
    memcpy(p, month_names[tm.tm_mon], 3), p += 3;
    *p++ = ' ';
    p = digits_decimal_padded(p, year_digits, 4);
    *p++ = ' ';
    p = digits_decimal_padded(p, (unsigned)tm.tm_hour, 2);
    *p++ = ':';
    p = digits_decimal_padded(p, (unsigned)tm.tm_min, 2);
    *p++ = ':';
    p = digits_decimal_padded(p, (unsigned)tm.tm_sec, 2);
    memcpy(p, " GMT", 5); /* with the NUL: CLOCK_HTTP_DATE_LEN + 1 in all */
}

uint64_t clock_now_monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t clock_now_monotonic_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

void clock_touch(void)
{
    cached_monotonic_us = clock_now_monotonic_us();
    cached_monotonic_ms = cached_monotonic_us / 1000u;
}

void clock_update(void)
{
    clock_touch();
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME_COARSE, &ts);
    if (ts.tv_sec != cached_wall_seconds) {
        cached_wall_seconds = ts.tv_sec;
        clock_format_http_date(ts.tv_sec, cached_http_date);
    }
}

uint64_t clock_monotonic_ms(void) { return cached_monotonic_ms; }

uint64_t clock_monotonic_us(void) { return cached_monotonic_us; }

time_t clock_wall_seconds(void) { return cached_wall_seconds; }

const char *clock_http_date(void)
{
    if (cached_wall_seconds < 0)
        clock_update();
    return cached_http_date;
}
