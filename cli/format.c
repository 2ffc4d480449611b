/*
 * format.c - numbers and shm strings as status and top print them.
 *
 * Shared by status.c and top_frame.c so both views agree on units; pure
 * (stdio's snprintf only), so the unit tests check them directly.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

char *cli_format_duration(int64_t seconds, char *buf, size_t size)
{
    if (seconds < 0)
        seconds = 0;
    int64_t d = seconds / 86400, h = seconds / 3600 % 24, m = seconds / 60 % 60,
            s = seconds % 60;
    if (d > 0)
        snprintf(buf, size, "%" PRId64 "d%" PRId64 "h%" PRId64 "m%" PRId64 "s", d, h, m, s);
    else if (h > 0)
        snprintf(buf, size, "%" PRId64 "h%" PRId64 "m%" PRId64 "s", h, m, s);
    else if (m > 0)
        snprintf(buf, size, "%" PRId64 "m%" PRId64 "s", m, s);
    else
        snprintf(buf, size, "%" PRId64 "s", s);
    return buf;
}

int64_t cli_seconds_between(int64_t later, int64_t earlier)
{
    int64_t d;
    if (!__builtin_sub_overflow(later, earlier, &d))
        return d;
    return later > earlier ? INT64_MAX : INT64_MIN;
}

/* 1023 stays exact; beyond that one decimal with a binary unit. */
char *cli_format_bytes(uint64_t n, char *buf, size_t size)
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    double v = (double)n;
    int u = 0;
    while (v >= 1024 && u < 6) {
        v /= 1024;
        u++;
    }
    if (u == 0)
        snprintf(buf, size, "%" PRIu64 "B", n);
    else
        snprintf(buf, size, "%.1f%s", v, units[u]);
    return buf;
}

/* Under 10 s in ms (a healthy heartbeat is under 1 s), then seconds. */
char *cli_format_age(uint64_t heartbeat_ms, uint64_t now_ms, char *buf, size_t size)
{
    if (heartbeat_ms == 0) {
        snprintf(buf, size, "-");
        return buf;
    }
    uint64_t age = now_ms > heartbeat_ms ? now_ms - heartbeat_ms : 0;
    if (age < 10000)
        snprintf(buf, size, "%" PRIu64 "ms", age);
    else
        snprintf(buf, size, "%" PRIu64 "s", age / 1000);
    return buf;
}

/* A shm string (at most max bytes) fit for a terminal: control characters
 * become '?', so a hostile name cannot move the cursor or fake a line. */
const char *cli_printable(const char *s, size_t max, char *buf, size_t size)
{
    size_t n = strnlen(s, max);
    if (n >= size)
        n = size - 1;
    for (size_t i = 0; i < n; i++)
        buf[i] = (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? '?' : s[i];
    buf[n] = '\0';
    return buf;
}

