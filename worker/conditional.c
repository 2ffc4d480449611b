/*
 * conditional.c - validators, preconditions and byte ranges (RFC 9110);
 * see conditional.h.
 */
#include "worker/conditional.h"

#include <assert.h>
#include <string.h>
#include <strings.h>

#include "common/clock.h"

/* ---- HTTP-date (RFC 9110 section 5.6.7) -------------------------------- */

static const char month_names[] = "JanFebMarAprMayJunJulAugSepOctNovDec";

static bool parse_digits(const char *s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
}

static bool parse_month(const char *s, int *month)
{
    for (int i = 0; i < 12; i++)
        if (memcmp(s, month_names + 3 * i, 3) == 0) {
            *month = i;
            return true;
        }
    return false;
}

/* "HH:MM:SS" */
static bool parse_clock(const char *s, struct tm *tm)
{
    return s[2] == ':' && s[5] == ':' && parse_digits(s, 2, &tm->tm_hour) &&
           parse_digits(s + 3, 2, &tm->tm_min) && parse_digits(s + 6, 2, &tm->tm_sec) &&
           tm->tm_hour < 24 && tm->tm_min < 60 && tm->tm_sec <= 60;
}

/* "Sun, 06 Nov 1994 08:49:37 GMT" */
static bool parse_imf_fixdate(const char *s, size_t len, struct tm *tm)
{
    return len == 29 && s[3] == ',' && s[4] == ' ' && s[7] == ' ' && s[11] == ' ' &&
           s[16] == ' ' && memcmp(s + 25, " GMT", 4) == 0 &&
           parse_digits(s + 5, 2, &tm->tm_mday) && parse_month(s + 8, &tm->tm_mon) &&
           parse_digits(s + 12, 4, &tm->tm_year) && parse_clock(s + 17, tm);
}

/* "Sunday, 06-Nov-94 08:49:37 GMT" (obsolete RFC 850 form) */
static bool parse_rfc850(const char *s, size_t len, struct tm *tm)
{
    const char *comma = memchr(s, ',', len);
    if (comma == NULL || (size_t)(s + len - comma) != 24)
        return false;
    const char *d = comma + 2; /* "06-Nov-94 08:49:37 GMT" */
    if (comma[1] != ' ' || d[2] != '-' || d[6] != '-' || d[9] != ' ' ||
        memcmp(d + 18, " GMT", 4) != 0 || !parse_digits(d, 2, &tm->tm_mday) ||
        !parse_month(d + 3, &tm->tm_mon) || !parse_digits(d + 7, 2, &tm->tm_year) ||
        !parse_clock(d + 10, tm))
        return false;
    /* Two-digit years: the recipient picks the century (section 5.6.7). */
    tm->tm_year += tm->tm_year < 70 ? 2000 : 1900;
    return true;
}

/* "Sun Nov  6 08:49:37 1994" (asctime) */
static bool parse_asctime(const char *s, size_t len, struct tm *tm)
{
    char day[2] = {s[8] == ' ' ? '0' : s[8], s[9]};
    return len == 24 && s[3] == ' ' && s[7] == ' ' && s[10] == ' ' && s[19] == ' ' &&
           parse_month(s + 4, &tm->tm_mon) && parse_digits(day, 2, &tm->tm_mday) &&
           parse_clock(s + 11, tm) && parse_digits(s + 20, 4, &tm->tm_year);
}

static_assert(sizeof(time_t) >= 8, "every 4-digit year fits in time_t");

bool http_date_parse(const char *s, size_t len, time_t *out)
{
    struct tm tm = {0};
    if (len < 24)
        return false;
    if (!parse_imf_fixdate(s, len, &tm) && !parse_rfc850(s, len, &tm) &&
        !parse_asctime(s, len, &tm))
        return false;
    if (tm.tm_mday < 1 || tm.tm_mday > 31)
        return false;
    if (tm.tm_year < 1900)
        return false; /* nothing we serve is that old; ignore the field */
    tm.tm_year -= 1900;
    /* The fields are in range and time_t has 64 bits: timegm cannot fail,
     * and -1 is 1969-12-31T23:59:59Z, not an error. */
    *out = timegm(&tm);
    return true;
}

/* ---- entity-tags (RFC 9110 section 8.8.3) ------------------------------ */

static bool is_ows(char c) { return c == ' ' || c == '\t'; }

static void trim_ows(const char **s, size_t *len)
{
    while (*len > 0 && is_ows(**s))
        (*s)++, (*len)--;
    while (*len > 0 && is_ows((*s)[*len - 1]))
        (*len)--;
}

/* Does the If-Match / If-None-Match list name our (strong) tag? "*" matches
 * any. `strong` asks for the strong comparison of section 8.8.3.2, which a
 * weak W/ tag never passes; If-None-Match uses the weak one. A malformed
 * list matches nothing. */
static bool etag_list_matches(const char *v, size_t len,
                              const struct conditional_validators *rep, bool strong)
{
    trim_ows(&v, &len);
    if (len == 1 && v[0] == '*')
        return true;
    size_t i = 0;
    while (i < len) {
        while (i < len && (is_ows(v[i]) || v[i] == ','))
            i++;
        if (i == len)
            break;
        bool weak = len - i >= 2 && v[i] == 'W' && v[i + 1] == '/';
        if (weak)
            i += 2;
        if (i == len || v[i] != '"')
            return false;
        const char *close_quote = memchr(v + i + 1, '"', len - i - 1);
        if (close_quote == NULL)
            return false;
        size_t n = (size_t)(close_quote - (v + i)) + 1;
        if (!(strong && weak) && n == rep->etag_len && memcmp(v + i, rep->etag, n) == 0)
            return true;
        i += n;
    }
    return false;
}

/* ---- conditionals (RFC 9110 section 13.2.2) ---------------------------- */

int conditional_preconditions(const struct exchange *ex, const struct conditional_validators *rep)
{
    size_t len;
    time_t t;
    const char *v;
    if ((v = exchange_header(ex, "If-Match", &len)) != NULL) {
        if (!etag_list_matches(v, len, rep, true))
            return 412;
    } else if ((v = exchange_header(ex, "If-Unmodified-Since", &len)) != NULL) {
        if (http_date_parse(v, len, &t) && rep->last_modified > t)
            return 412;
    }
    if ((v = exchange_header(ex, "If-None-Match", &len)) != NULL) {
        if (etag_list_matches(v, len, rep, false))
            return 304;
    } else if ((v = exchange_header(ex, "If-Modified-Since", &len)) != NULL) {
        if (http_date_parse(v, len, &t) && rep->last_modified <= t)
            return 304;
    }
    return 0;
}

/* If-Range (section 13.1.5): the Range applies only if the validator still
 * matches, strongly. A date counts only when it equals Last-Modified and
 * that is a strong validator: at least a second older than now. */
static bool if_range_allows(const struct exchange *ex, const struct conditional_validators *rep)
{
    size_t len;
    const char *v = exchange_header(ex, "If-Range", &len);
    if (v == NULL)
        return true;
    trim_ows(&v, &len);
    if (len > 0 && (v[0] == '"' || v[0] == 'W'))
        return etag_list_matches(v, len, rep, true);
    time_t t, now = clock_wall_seconds();
    return http_date_parse(v, len, &t) && t == rep->last_modified &&
           (now < 0 || rep->last_modified < now);
}

/* ---- Range (RFC 9110 section 14) --------------------------------------- */

/* Digits at s[*i], saturating at UINT64_MAX; false if there are none. */
static bool parse_u64(const char *s, size_t len, size_t *i, uint64_t *out)
{
    size_t start = *i;
    uint64_t v = 0;
    for (; *i < len && s[*i] >= '0' && s[*i] <= '9'; (*i)++) {
        unsigned d = (unsigned)(s[*i] - '0');
        v = v > (UINT64_MAX - d) / 10 ? UINT64_MAX : v * 10 + d;
    }
    *out = v;
    return *i > start;
}

/* One "a-b", "a-" or "-n" spec, for a representation of size > 0.
 * Invalid syntax (or last < first, section 14.1.1) ignores the Range. */
static enum conditional_range parse_range_spec(const char *s, size_t len, uint64_t size,
                                          uint64_t *first, uint64_t *last)
{
    size_t i = 0;
    uint64_t a, b;
    if (len > 0 && s[0] == '-') {
        i = 1;
        if (!parse_u64(s, len, &i, &b) || i != len)
            return CONDITIONAL_RANGE_NONE;
        if (b == 0)
            return CONDITIONAL_RANGE_UNSATISFIABLE;
        *first = b >= size ? 0 : size - b;
        *last = size - 1;
        return CONDITIONAL_RANGE_ONE;
    }
    if (!parse_u64(s, len, &i, &a) || i == len || s[i++] != '-')
        return CONDITIONAL_RANGE_NONE;
    b = UINT64_MAX;
    if (i < len && (!parse_u64(s, len, &i, &b) || b < a))
        return CONDITIONAL_RANGE_NONE;
    if (i != len)
        return CONDITIONAL_RANGE_NONE;
    if (a >= size)
        return CONDITIONAL_RANGE_UNSATISFIABLE;
    *first = a;
    *last = b >= size ? size - 1 : b;
    return CONDITIONAL_RANGE_ONE;
}

/* The specs of a Range field, a comma-separated list (empty elements
 * allowed, section 5.6.1.2), into r. */
static enum conditional_range parse_range_list(const char *v, size_t len, uint64_t size,
                                               struct conditional_ranges *r)
{
    uint64_t total = 0;
    bool any = false;
    r->count = 0;
    while (len > 0) {
        const char *comma = memchr(v, ',', len);
        size_t n = comma != NULL ? (size_t)(comma - v) : len;
        const char *spec = v;
        size_t spec_len = n;
        v += n, len -= n;
        if (len > 0)
            v++, len--; /* the comma */
        trim_ows(&spec, &spec_len);
        if (spec_len == 0)
            continue;
        uint64_t first, last;
        enum conditional_range one = parse_range_spec(spec, spec_len, size, &first, &last);
        any = true;
        if (one == CONDITIONAL_RANGE_NONE)
            return CONDITIONAL_RANGE_NONE;
        if (one == CONDITIONAL_RANGE_UNSATISFIABLE)
            continue;
        total += last - first + 1; /* at most size each, at most 16 of them */
        if (r->count == CONDITIONAL_RANGES_MAX || total > size)
            return CONDITIONAL_RANGE_NONE;
        r->first[r->count] = first;
        r->last[r->count++] = last;
    }
    if (r->count == 0)
        return any ? CONDITIONAL_RANGE_UNSATISFIABLE : CONDITIONAL_RANGE_NONE;
    return r->count == 1 ? CONDITIONAL_RANGE_ONE : CONDITIONAL_RANGE_MANY;
}

/* A Range field in bytes; other units are ignored. */
static enum conditional_range parse_range(const char *v, size_t len, uint64_t size,
                                          struct conditional_ranges *r)
{
    trim_ows(&v, &len);
    if (len < 6 || strncasecmp(v, "bytes=", 6) != 0)
        return CONDITIONAL_RANGE_NONE; /* range units are case-insensitive (section 14.1) */
    return parse_range_list(v + 6, len - 6, size, r);
}

enum conditional_range conditional_range(const struct exchange *ex,
                                         const struct conditional_validators *rep,
                                         struct conditional_ranges *ranges)
{
    size_t len;
    const char *v = exchange_header(ex, "Range", &len);
    ranges->count = 0;
    if (v == NULL || ex->method != METHOD_GET || rep->size == 0 || !if_range_allows(ex, rep))
        return CONDITIONAL_RANGE_NONE;
    enum conditional_range verdict = parse_range(v, len, rep->size, ranges);
    if (verdict != CONDITIONAL_RANGE_ONE && verdict != CONDITIONAL_RANGE_MANY)
        ranges->count = 0; /* a set refused after some specs were taken */
    return verdict;
}
