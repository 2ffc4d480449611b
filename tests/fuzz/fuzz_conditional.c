/*
 * fuzz_conditional.c - libFuzzer driver: conditional requests, Range and
 * HTTP-dates (worker/conditional.c, clock_format_http_date).
 *
 * The input:
 *   byte 0       the method (GET, HEAD, POST, PUT)
 *   bytes 1..8   the representation's size, little-endian
 *   bytes 9..16  its Last-Modified, Unix seconds, little-endian (signed)
 *   the rest     request header lines, "Name: value" separated by '\n'
 * The representation's ETag is "\"5f3a-1c\"".
 *
 * Checked beyond the sanitizers: preconditions answer 0, 304 or 412; a
 * range lies within the representation, first <= last; every date parsed
 * formats back to a date that parses to the same second, and so does any
 * second from year 1900 to 9999.
 */
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "tests/fuzz/fuzz_env.h"
#include "worker/conditional.h"

#define MAX_DATE 253402300799 /* 9999-12-31T23:59:59Z */
#define MIN_DATE (-2208988800) /* 1900-01-01T00:00:00Z */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint64_t little_endian(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static void check_date_round_trip(time_t t)
{
    char text[CLOCK_HTTP_DATE_LEN + 1];
    clock_format_http_date(t, text);
    if (t < MIN_DATE || t > MAX_DATE)
        return; /* not writable as an HTTP-date: clamped, but must not crash */
    time_t back;
    if (!http_date_parse(text, CLOCK_HTTP_DATE_LEN, &back) || back != t)
        fuzz_fail("%lld formats as '%s', which does not parse back", (long long)t, text);
}

/* Header lines into the exchange; each value is also parsed as a date. */
static void add_headers(struct exchange *ex, const char *p, size_t len)
{
    while (len > 0) {
        const char *nl = memchr(p, '\n', len);
        size_t line = nl != NULL ? (size_t)(nl - p) : len;
        const char *colon = memchr(p, ':', line);
        if (colon != NULL) {
            size_t name_len = (size_t)(colon - p), value_len = line - name_len - 1;
            const char *value = colon + 1;
            if (value_len > 0 && *value == ' ')
                value++, value_len--;
            struct header_field f = {arena_strndup(ex->arena, p, name_len), name_len,
                                     arena_strndup(ex->arena, value, value_len), value_len};
            exchange_push_request_header(ex, &f);
            time_t t;
            if (http_date_parse(value, value_len, &t))
                check_date_round_trip(t);
        }
        p += line + (nl != NULL), len -= line + (nl != NULL);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const enum exchange_method methods[] = {METHOD_GET, METHOD_HEAD, METHOD_POST,
                                                   METHOD_PUT};
    if (size < 17)
        return 0;
    struct conditional_validators rep = {.etag = "\"5f3a-1c\"", .etag_len = 9};
    rep.size = little_endian(data + 1);
    rep.last_modified = (time_t)little_endian(data + 9);
    check_date_round_trip(rep.last_modified);
    struct block_pool pool;
    struct arena arena;
    block_pool_init(&pool, 0);
    arena_init(&arena, &pool);
    struct exchange ex = {.arena = &arena, .method = methods[data[0] % 4], .body_fd = -1};
    add_headers(&ex, (const char *)data + 17, size - 17);
    int status = conditional_preconditions(&ex, &rep);
    if (status != 0 && status != 304 && status != 412)
        fuzz_fail("preconditions answered %d", status);
    struct conditional_ranges r;
    enum conditional_range range = conditional_range(&ex, &rep, &r);
    uint64_t total = 0;
    if ((range == CONDITIONAL_RANGE_ONE) != (r.count == 1) ||
        (range == CONDITIONAL_RANGE_MANY && (r.count < 2 || r.count > CONDITIONAL_RANGES_MAX)))
        fuzz_fail("%zu ranges for verdict %d", r.count, (int)range);
    for (size_t i = 0; i < r.count && range != CONDITIONAL_RANGE_NONE; i++) {
        if (r.first[i] > r.last[i] || r.last[i] >= rep.size)
            fuzz_fail("range %llu-%llu of a %llu-byte representation",
                      (unsigned long long)r.first[i], (unsigned long long)r.last[i],
                      (unsigned long long)rep.size);
        total += r.last[i] - r.first[i] + 1;
    }
    if (range == CONDITIONAL_RANGE_MANY && total > rep.size)
        fuzz_fail("ranges of %llu bytes served of a %llu-byte representation",
                  (unsigned long long)total, (unsigned long long)rep.size);
    arena_reset(&arena);
    block_pool_destroy(&pool);
    return 0;
}
