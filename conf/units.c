/*
 * units.c - sizes and durations as written in the config; see units.h.
 *
 * Both are "<digits><optional spaces><optional unit>", whole numbers only:
 * a fraction such as "1.5MB" is refused rather than rounded, because a limit
 * that silently differs from what was written is worse than an error.
 */
#include "conf/units.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>

struct unit {
    const char *name;
    uint64_t factor;
};

static const struct unit size_units[] = {
    {"", 1},
    {"B", 1},
    {"KB", 1000ULL},
    {"MB", 1000ULL * 1000},
    {"GB", 1000ULL * 1000 * 1000},
    {"TB", 1000ULL * 1000 * 1000 * 1000},
    {"KiB", 1ULL << 10},
    {"MiB", 1ULL << 20},
    {"GiB", 1ULL << 30},
    {"TiB", 1ULL << 40},
};

/* A bare number is seconds, as in nginx and Kestrel's TimeSpan seconds. */
static const struct unit duration_units[] = {
    {"", 1000},
    {"ms", 1},
    {"s", 1000},
    {"m", 60ULL * 1000},
    {"h", 60ULL * 60 * 1000},
    {"d", 24ULL * 60 * 60 * 1000},
};

enum { PARSE_OK, PARSE_BAD, PARSE_OVERFLOW };

/* Reads the digits of text into *number and points *rest after them (and
 * after any spaces that separate the unit). */
static int parse_number(const char *text, uint64_t *number, const char **rest)
{
    const char *p = text;
    uint64_t n = 0;
    bool overflow = false;

    if (!isdigit((unsigned char)*p))
        return PARSE_BAD;
    for (; isdigit((unsigned char)*p); p++) {
        unsigned digit = (unsigned)(*p - '0');
        if (n > (UINT64_MAX - digit) / 10)
            overflow = true;
        else
            n = n * 10 + digit;
    }
    while (*p == ' ')
        p++;
    *number = n;
    *rest = p;
    return overflow ? PARSE_OVERFLOW : PARSE_OK;
}

static int parse_with_units(const char *text, const struct unit *units, size_t count,
                            uint64_t *out)
{
    uint64_t n;
    const char *unit;

    if (text == NULL)
        return PARSE_BAD;
    int rc = parse_number(text, &n, &unit);
    if (rc == PARSE_BAD)
        return rc;
    for (size_t i = 0; i < count; i++) {
        if (strcasecmp(unit, units[i].name) != 0)
            continue;
        if (rc == PARSE_OVERFLOW || n > UINT64_MAX / units[i].factor)
            return PARSE_OVERFLOW;
        *out = n * units[i].factor;
        return PARSE_OK;
    }
    return PARSE_BAD;
}

int units_parse_size(const char *text, uint64_t *bytes, struct err *err)
{
    switch (parse_with_units(text, size_units, sizeof size_units / sizeof size_units[0],
                             bytes)) {
    case PARSE_OK:
        return SK_OK;
    case PARSE_OVERFLOW:
        return err_set(err, "size '%.80s' is too large", text);
    default:
        return err_set(err,
                       "expected a size such as 8192, 64KB or 30MiB "
                       "(units B, KB, MB, GB, TB, KiB, MiB, GiB, TiB), got '%.80s'",
                       text ? text : "");
    }
}

int units_parse_duration(const char *text, uint64_t *milliseconds, struct err *err)
{
    switch (parse_with_units(text, duration_units,
                             sizeof duration_units / sizeof duration_units[0],
                             milliseconds)) {
    case PARSE_OK:
        return SK_OK;
    case PARSE_OVERFLOW:
        return err_set(err, "duration '%.80s' is too large", text);
    default:
        return err_set(err,
                       "expected a duration such as 500ms, 30s, 2m or 1h "
                       "(units ms, s, m, h, d; a bare number is seconds), got '%.80s'",
                       text ? text : "");
    }
}

char *units_format_duration(uint64_t ms, char *buf, size_t size)
{
    if (ms == 0)
        snprintf(buf, size, "0s");
    else if (ms % 3600000 == 0)
        snprintf(buf, size, "%" PRIu64 "h", ms / 3600000);
    else if (ms % 1000 == 0)
        snprintf(buf, size, "%" PRIu64 "s", ms / 1000);
    else
        snprintf(buf, size, "%" PRIu64 "ms", ms);
    return buf;
}
