/*
 * fuzz_responses.c - a connection's output read as HTTP/1.1 responses;
 * see fuzz_responses.h.
 */
#include "tests/fuzz/fuzz_responses.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "tests/fuzz/fuzz_env.h"

static const char status_prefix[] = "HTTP/1.1 ";
#define STATUS_PREFIX_LEN (sizeof status_prefix - 1)

void fuzz_responses_take(void *ctx, const char *p, size_t n)
{
    struct fuzz_responses *r = ctx;
    if (r->too_much || r->len + n > FUZZ_RESPONSES_MAX) {
        r->too_much = true;
        return;
    }
    if (r->len + n > r->capacity) {
        size_t capacity = (r->len + n) * 2;
        char *grown = realloc(r->bytes, capacity);
        if (grown == NULL)
            fuzz_fail("out of memory");
        r->bytes = grown, r->capacity = capacity;
    }
    memcpy(r->bytes + r->len, p, n);
    r->len += n;
}

static bool starts(const char *p, const char *end, const char *s, size_t n)
{
    return (size_t)(end - p) >= n && memcmp(p, s, n) == 0;
}

/* A header line [p, eol): "name: value", with no CR or LF inside. The
 * Content-Length, when it is one, goes to *length. */
static void header_line(const char *p, const char *eol, long long *length, size_t at)
{
    const char *colon = memchr(p, ':', (size_t)(eol - p));
    if (colon == NULL || colon == p)
        fuzz_fail("response byte %zu: a header line without a name and a colon", at);
    for (const char *c = p; c < eol; c++)
        if (*c == '\r' || *c == '\n')
            fuzz_fail("response byte %zu: a bare CR or LF inside a header line", at);
    if ((size_t)(colon - p) == 14 && strncasecmp(p, "Content-Length", 14) == 0) {
        const char *v = colon + 1;
        while (v < eol && *v == ' ')
            v++;
        long long n = 0;
        if (v == eol)
            fuzz_fail("response byte %zu: an empty Content-Length", at);
        for (; v < eol; v++) {
            if (!isdigit((unsigned char)*v) || n > (1LL << 40))
                fuzz_fail("response byte %zu: a bad Content-Length", at);
            n = n * 10 + (*v - '0');
        }
        *length = n;
    }
}

/* The body of a response whose head ends at p; returns where it ends. */
static const char *response_body(const char *start, const char *p, const char *end, int status,
                                 long long length)
{
    if (status < 200 || status == 204 || status == 304)
        return p; /* no content (RFC 9110 section 6.4.1) */
    if (length < 0)
        fuzz_fail("response byte %zu: status %d without a Content-Length",
                  (size_t)(p - start), status);
    /* A response to HEAD: the next status line, or the end, is where its
     * body would be. */
    if (p == end || (length > 0 && starts(p, end, status_prefix, STATUS_PREFIX_LEN)))
        return p;
    if (end - p < length)
        fuzz_fail("response byte %zu: %lld bytes of body announced, %zu sent",
                  (size_t)(p - start), length, (size_t)(end - p));
    return p + length;
}

/* One response from p; returns where the next one starts. */
static const char *response(const char *start, const char *p, const char *end)
{
    size_t at = (size_t)(p - start);
    if (!starts(p, end, status_prefix, STATUS_PREFIX_LEN) || end - p < 12 ||
        !isdigit((unsigned char)p[9]) || !isdigit((unsigned char)p[10]) ||
        !isdigit((unsigned char)p[11]))
        fuzz_fail("response byte %zu: no status line", at);
    int status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
    long long length = -1;
    for (bool first = true;; first = false) {
        const char *eol = NULL;
        for (const char *c = p; c + 1 < end && eol == NULL; c++)
            if (c[0] == '\r' && c[1] == '\n')
                eol = c;
        if (eol == NULL)
            fuzz_fail("response byte %zu: a head that never ends", at);
        if (eol == p)
            return response_body(start, eol + 2, end, status, length);
        if (!first)
            header_line(p, eol, &length, (size_t)(p - start));
        p = eol + 2;
    }
}

void fuzz_responses_check(struct fuzz_responses *r)
{
    if (!r->too_much && r->len > 0)
        for (const char *p = r->bytes, *end = r->bytes + r->len; p < end;)
            p = response(r->bytes, p, end);
    r->len = 0;
    r->too_much = false;
}
