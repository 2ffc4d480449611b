/* check_proxy_header.c - the PROXY protocol (worker/proxy_header.c). */
#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <string.h>

#include "tests/unit/unit.h"
#include "worker/proxy_header.h"

static const char sig[] = "\r\n\r\n\0\r\nQUIT\n";

static ssize_t parse(const char *data, size_t len, struct sockaddr_storage *client)
{
    return proxy_header_parse(data, len, client);
}

static void assert_v4(const struct sockaddr_storage *ss, const char *addr, unsigned port)
{
    const struct sockaddr_in *in = (const void *)ss;
    char text[INET_ADDRSTRLEN];
    ck_assert_int_eq(in->sin_family, AF_INET);
    ck_assert_str_eq(inet_ntop(AF_INET, &in->sin_addr, text, sizeof text), addr);
    ck_assert_uint_eq(ntohs(in->sin_port), port);
}

START_TEST(v1_tcp4_tcp6_unknown)
{
    struct sockaddr_storage c;
    const char *h = "PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\nGET";
    ck_assert_int_eq(parse(h, strlen(h), &c), (ssize_t)strlen(h) - 3);
    assert_v4(&c, "192.0.2.1", 56324);
    h = "PROXY TCP6 2001:db8::1 ::1 1 2\r\n";
    ck_assert_int_eq(parse(h, strlen(h), &c), (ssize_t)strlen(h));
    ck_assert_int_eq(c.ss_family, AF_INET6);
    h = "PROXY UNKNOWN ffff:f...f:ffff ffff:f...f:ffff 65535 65535\r\n";
    ck_assert_int_eq(parse(h, strlen(h), &c), (ssize_t)strlen(h));
    ck_assert_int_eq(c.ss_family, AF_UNSPEC);
}
END_TEST

START_TEST(v1_partial_then_whole)
{
    struct sockaddr_storage c;
    const char *h = "PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n";
    for (size_t n = 1; n < strlen(h); n++)
        ck_assert_int_eq(parse(h, n, &c), 0);
}
END_TEST

START_TEST(v1_refusals)
{
    struct sockaddr_storage c;
    static const char *const bad[] = {
        "GET / HTTP/1.1\r\n", "PROXY TCP4 192.0.2.1 198.51.100.2 56324\r\n",
        "PROXY TCP4 192.0.2.1 198.51.100.2 56324 443 x\r\n",
        "PROXY TCP4 192.0.2.1 198.51.100.2 65536 443\r\n",
        "PROXY TCP4 ::1 ::1 1 2\r\n", "PROXY TCP4 192.0.2.1 198.51.100.2 01 443\r\n",
        "PROXY TCP4 192.0.2.1 198.51.100.2 1 2\rX",
        "PROXY TCP5 192.0.2.1 198.51.100.2 1 2\r\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(parse(bad[i], strlen(bad[i]), &c) == -1, "%s", bad[i]);
    char longer[200];
    memset(longer, 'x', sizeof longer);
    memcpy(longer, "PROXY ", 6);
    ck_assert_int_eq(parse(longer, sizeof longer, &c), -1); /* no CRLF in 107 bytes */
}
END_TEST

START_TEST(v2_round_trip_and_partial)
{
    struct sockaddr_in src = {.sin_family = AF_INET, .sin_port = htons(4000)};
    struct sockaddr_in dst = {.sin_family = AF_INET, .sin_port = htons(80)};
    inet_pton(AF_INET, "203.0.113.9", &src.sin_addr);
    inet_pton(AF_INET, "127.0.0.1", &dst.sin_addr);
    char out[128];
    struct sockaddr_storage c;
    size_t n = proxy_header_write(2, (struct sockaddr *)&src, (struct sockaddr *)&dst, out);
    ck_assert_uint_eq(n, 28);
    ck_assert_int_eq(memcmp(out, sig, 12), 0);
    for (size_t k = 0; k < n; k++)
        ck_assert_int_eq(parse(out, k, &c), 0);
    ck_assert_int_eq(parse(out, n, &c), (ssize_t)n);
    assert_v4(&c, "203.0.113.9", 4000);
    n = proxy_header_write(1, (struct sockaddr *)&src, (struct sockaddr *)&dst, out);
    out[n] = '\0';
    ck_assert_str_eq(out, "PROXY TCP4 203.0.113.9 127.0.0.1 4000 80\r\n");
    ck_assert_int_eq(parse(out, n, &c), (ssize_t)n);
    assert_v4(&c, "203.0.113.9", 4000);
}
END_TEST

START_TEST(v2_local_and_refusals)
{
    struct sockaddr_storage c;
    char h[32];
    memcpy(h, sig, 12);
    memcpy(h + 12, "\x20\x00\x00\x00", 4); /* LOCAL */
    ck_assert_int_eq(parse(h, 16, &c), 16);
    ck_assert_int_eq(c.ss_family, AF_UNSPEC);
    memcpy(h + 12, "\x22\x11\x00\x0c", 4); /* command 2 */
    ck_assert_int_eq(parse(h, 28, &c), -1);
    memcpy(h + 12, "\x31\x11\x00\x0c", 4); /* version 3 */
    ck_assert_int_eq(parse(h, 28, &c), -1);
    memcpy(h + 12, "\x21\x11\x00\x04", 4); /* TCP4 without room for addresses */
    ck_assert_int_eq(parse(h, 20, &c), -1);
}
END_TEST

static Suite *proxy_header_suite(void)
{
    Suite *s = suite_create("proxy_header");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, v1_tcp4_tcp6_unknown);
    tcase_add_test(tc, v1_partial_then_whole);
    tcase_add_test(tc, v1_refusals);
    tcase_add_test(tc, v2_round_trip_and_partial);
    tcase_add_test(tc, v2_local_and_refusals);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return unit_run(proxy_header_suite()); }
