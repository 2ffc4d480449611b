/* check_h1_head.c - the strict request-head grammar (worker/h1_head.c),
 * whole, cut at every byte, and fed a byte at a time. */
#include <check.h>
#include <string.h>

#include "tests/unit/unit.h"
#include "worker/h1_head.h"

/* Feeds [p, p + len) in pieces of at most piece bytes (0: whole) and
 * returns the result; *used is the offset from p, as for one call. */
static enum h1_head_result feed(struct h1_head_check *check, const char *p, size_t len,
                                size_t piece, size_t first, size_t *used)
{
    size_t at = 0;
    while (at < len) {
        size_t n = len - at;
        if (at == 0 && first > 0 && first < n)
            n = first;
        else if (piece > 0 && piece < n)
            n = piece;
        size_t u = 0;
        enum h1_head_result r = h1_head_check(check, p + at, n, &u);
        if (r != H1_HEAD_MORE) {
            *used = at + u;
            return r;
        }
        at += n;
    }
    *used = len;
    return H1_HEAD_MORE;
}

/* The same verdict and offset however the bytes are cut. */
static void expect(bool fields, const char *p, size_t len, enum h1_head_result want,
                   size_t want_used)
{
    for (size_t first = 0; first <= len; first++) {
        for (size_t piece = 0; piece <= 1; piece++) {
            struct h1_head_check check;
            if (fields)
                h1_head_check_start_fields(&check);
            else
                h1_head_check_start(&check);
            size_t used = (size_t)-1;
            enum h1_head_result r = feed(&check, p, len, piece, first, &used);
            ck_assert_msg(r == want && used == want_used,
                          "%.*s: cut at %zu, pieces of %zu: result %d at %zu, not %d at %zu",
                          (int)len, p, first, piece, (int)r, used, (int)want, want_used);
        }
    }
}

#define HEAD(s) (s), sizeof(s) - 1

START_TEST(whole_heads)
{
    expect(false, HEAD("GET / HTTP/1.1\r\nHost: a\r\n\r\n"), H1_HEAD_DONE, 27);
    expect(false, HEAD("GET / HTTP/1.1\r\nHost: a\r\n\r\nGET"), H1_HEAD_DONE, 27);
    expect(false, HEAD("GET /a?b=c%20 HTTP/1.0\r\nX: \t v\x80\xff\r\nEmpty:\r\n\r\n"), H1_HEAD_DONE,
           44);
    expect(false, HEAD("OPTIONS * HTTP/1.1\r\n\r\n"), H1_HEAD_DONE, 22);
    expect(false, HEAD("M-S.E!A~ http://h/p HTTP/9.9\r\nx-y#z: 1\r\n\r\n"), H1_HEAD_DONE, 42);
    expect(false, HEAD("GET / HTTP/1.1\r\nHost: a"), H1_HEAD_MORE, 23);
}
END_TEST

START_TEST(refused_bytes)
{
    static const struct {
        const char *head;
        size_t bad_at;
    } cases[] = {
        {" GET / HTTP/1.1\r\n", 0},         {"GET  / HTTP/1.1\r\n", 4},
        {"GET / HTTP/1.1\n", 14},           {"GET /#f HTTP/1.1\r\n", 5},
        {"GET /\x80 HTTP/1.1\r\n", 5},      {"GET /\tx HTTP/1.1\r\n", 5},
        {"G\x01T / HTTP/1.1\r\n", 1},       {"GET / HTTX/1.1\r\n", 9},
        {"GET / HTTP/1.12\r\n", 14},        {"GET / HTTP/a.1\r\n", 11},
        {"GET / HTTP/1,1\r\n", 12},         {"GET / HTTP/1.1\r\r", 15},
        {"GET /\r\n", 5},                   {"GET / HTTP/1.1\r\nHost : a\r\n", 20},
        {"GET / HTTP/1.1\r\n folded\r\n", 16}, {"GET / HTTP/1.1\r\n: v\r\n", 16},
        {"GET / HTTP/1.1\r\nA: b\x7f\r\n", 20}, {"GET / HTTP/1.1\r\nA: b\n", 20},
        {"GET / HTTP/1.1\r\nA: b\r\r", 21}, {"GET / HTTP/1.1\r\n\r\r", 17},
        {"GET / HTTP/1.1\r\nA\x01: b\r\n", 17}, {"GET / HTTP/1.1\r\nA: b\r\n\n", 22},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        expect(false, cases[i].head, strlen(cases[i].head), H1_HEAD_BAD, cases[i].bad_at);
    /* NUL bytes, in a target and in a value */
    expect(false, HEAD("GET /x\0 HTTP/1.1\r\n"), H1_HEAD_BAD, 6);
    expect(false, HEAD("GET / HTTP/1.1\r\nA: b\0\r\n"), H1_HEAD_BAD, 20);
}
END_TEST

START_TEST(trailer_sections)
{
    expect(true, HEAD("\r\n"), H1_HEAD_DONE, 2);
    expect(true, HEAD("X: y\r\nZ:\r\n\r\nnext"), H1_HEAD_DONE, 12);
    expect(true, HEAD(" X: y\r\n"), H1_HEAD_BAD, 0);
    expect(true, HEAD("X y\r\n"), H1_HEAD_BAD, 1);
    expect(true, HEAD("\n"), H1_HEAD_BAD, 0);
}
END_TEST

START_TEST(method_rest)
{
    ck_assert(h1_head_method_rest_ok(HEAD("ET / HTTP/1.1\r\n")));
    ck_assert(h1_head_method_rest_ok(HEAD("ET /")));
    ck_assert(!h1_head_method_rest_ok(HEAD("")));
    ck_assert(!h1_head_method_rest_ok(HEAD("E\x01 / HTTP/1.1\r\n")));
    ck_assert(!h1_head_method_rest_ok(HEAD("ET  /")));
    ck_assert(h1_head_is_token_byte('~') && !h1_head_is_token_byte(':'));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("h1_head");
    TCase *tc = tcase_create("grammar");
    tcase_add_test(tc, whole_heads);
    tcase_add_test(tc, refused_bytes);
    tcase_add_test(tc, trailer_sections);
    tcase_add_test(tc, method_rest);
    suite_add_tcase(s, tc);
    return unit_run(s);
}
