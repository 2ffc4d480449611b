/*
 * h1_head.c - strict request-head grammar checker; see h1_head.h.
 *
 * One pass, a handful of states; the runs inside a line are skipped by
 * tight loops, so a request head costs a few instructions a byte.
 */
#include "worker/h1_head.h"

#include <stdbool.h>

enum {
    S_METHOD_FIRST,
    S_METHOD,
    S_TARGET_FIRST,
    S_TARGET,
    S_VERSION,
    S_REQUEST_LINE_LF,
    S_LINE_START, /* a field line, or the CRLF that ends the head */
    S_NAME,
    S_VALUE,
    S_VALUE_LF,
    S_END_LF,
    S_DONE,
};

/* RFC 9110 section 5.6.2: tchar, as a table: the checker looks at every
 * byte of every head, so this must stay a load, not a search. */
static const bool token_byte[256] = {
    ['0' ... '9'] = true, ['a' ... 'z'] = true, ['A' ... 'Z'] = true,
    ['!'] = true, ['#'] = true, ['$'] = true, ['%'] = true, ['&'] = true,
    ['\''] = true, ['*'] = true, ['+'] = true, ['-'] = true, ['.'] = true,
    ['^'] = true, ['_'] = true, ['`'] = true, ['|'] = true, ['~'] = true,
};

static inline bool is_tchar(unsigned char c) { return token_byte[c]; }

bool h1_head_is_token_byte(unsigned char c) { return is_tchar(c); }

/* request-target bytes: VCHAR except "#" (no fragment, no raw non-ASCII). */
static inline bool is_target_byte(unsigned char c) { return c > 0x20 && c < 0x7f && c != '#'; }

/* field-value bytes: SP, HTAB, VCHAR, obs-text (RFC 9110 section 5.5). */
static inline bool is_value_byte(unsigned char c) { return c >= 0x20 ? c != 0x7f : c == '\t'; }

static bool version_byte_ok(unsigned pos, unsigned char c)
{
    static const char prefix[] = "HTTP/";
    if (pos < 5)
        return c == (unsigned char)prefix[pos];
    if (pos == 6)
        return c == '.';
    return c >= '0' && c <= '9'; /* pos 5 and 7 */
}

void h1_head_check_start(struct h1_head_check *check)
{
    check->state = S_METHOD_FIRST;
    check->version_pos = 0;
}

void h1_head_check_start_fields(struct h1_head_check *check)
{
    check->state = S_LINE_START;
    check->version_pos = 8;
}

/* The runs of a head — method, target, name, value — are skipped by a
 * loop of their own, so the state is looked at once per run rather than
 * once per byte: the checker reads every byte of every head. */
#define SKIP_WHILE(p, end, test)                                                                  \
    while ((p) < (end) && test(*(p)))                                                             \
        (p)++

/* The state after the byte at p in state s (the byte that ends a run, or
 * a single-byte state), or -1 for a byte that does not fit. */
static int step(struct h1_head_check *check, int s, unsigned char c)
{
    switch (s) {
    case S_METHOD_FIRST:
        return is_tchar(c) ? S_METHOD : -1;
    case S_METHOD:
        return c == ' ' ? S_TARGET_FIRST : -1;
    case S_TARGET_FIRST:
        return is_target_byte(c) ? S_TARGET : -1;
    case S_TARGET:
        return c == ' ' ? S_VERSION : -1;
    case S_VERSION:
        if (check->version_pos == 8)
            return c == '\r' ? S_REQUEST_LINE_LF : -1;
        return version_byte_ok(check->version_pos++, c) ? S_VERSION : -1;
    case S_REQUEST_LINE_LF:
    case S_VALUE_LF:
        return c == '\n' ? S_LINE_START : -1;
    case S_LINE_START:
        return c == '\r' ? S_END_LF : is_tchar(c) ? S_NAME : -1; /* SP/HTAB: obs-fold */
    case S_NAME:
        return c == ':' ? S_VALUE : -1;
    case S_VALUE:
        return c == '\r' ? S_VALUE_LF : -1;
    case S_END_LF:
        return c == '\n' ? S_DONE : -1;
    }
    return -1;
}

enum h1_head_result h1_head_check(struct h1_head_check *check, const char *p, size_t len,
                                  size_t *used)
{
    const unsigned char *start = (const unsigned char *)p, *at = start, *end = start + len;
    int s = check->state;
    while (at < end) {
        if (s == S_METHOD)
            SKIP_WHILE(at, end, is_tchar);
        else if (s == S_TARGET)
            SKIP_WHILE(at, end, is_target_byte);
        else if (s == S_NAME)
            SKIP_WHILE(at, end, is_tchar);
        else if (s == S_VALUE)
            SKIP_WHILE(at, end, is_value_byte);
        if (at == end)
            break;
        s = step(check, s, *at);
        if (s < 0) {
            *used = (size_t)(at - start);
            return H1_HEAD_BAD;
        }
        at++;
        if (s == S_DONE) {
            check->state = S_DONE;
            *used = (size_t)(at - start);
            return H1_HEAD_DONE;
        }
    }
    check->state = (uint8_t)s;
    *used = len;
    return H1_HEAD_MORE;
}

bool h1_head_method_rest_ok(const char *p, size_t len)
{
    struct h1_head_check check = {.state = S_METHOD};
    size_t used;
    return len > 0 && h1_head_check(&check, p, len, &used) != H1_HEAD_BAD;
}
