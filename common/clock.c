/* clock.c - cached clocks and Date header; see clock.h. */
#include "common/clock.h"

#include <stdio.h>
#include <string.h>

static uint64_t cached_monotonic_ms;
static time_t cached_wall_seconds = -1;
static char cached_http_date[CLOCK_HTTP_DATE_LEN + 1];

static const char *const day_names[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
static const char *const month_names[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                          "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

void clock_format_http_date(time_t t, char *out)
{
    struct tm tm;
    gmtime_r(&t, &tm);
    /* Formatted by hand: strftime's %a/%b follow the locale, HTTP's do not. */
    char text[64]; /* roomy: the compiler cannot prove the year has 4 digits */
    snprintf(text, sizeof text, "%s, %02d %s %04d %02d:%02d:%02d GMT", day_names[tm.tm_wday],
             tm.tm_mday, month_names[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
             tm.tm_sec);
    memcpy(out, text, CLOCK_HTTP_DATE_LEN);
    out[CLOCK_HTTP_DATE_LEN] = '\0';
}

uint64_t clock_now_monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void clock_update(void)
{
    cached_monotonic_ms = clock_now_monotonic_ms();
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME_COARSE, &ts);
    if (ts.tv_sec != cached_wall_seconds) {
        cached_wall_seconds = ts.tv_sec;
        clock_format_http_date(ts.tv_sec, cached_http_date);
    }
}

uint64_t clock_monotonic_ms(void) { return cached_monotonic_ms; }

time_t clock_wall_seconds(void) { return cached_wall_seconds; }

const char *clock_http_date(void)
{
    if (cached_wall_seconds < 0)
        clock_update();
    return cached_http_date;
}
