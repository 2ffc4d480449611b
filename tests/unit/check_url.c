/* check_url.c - endpoint URLs (conf/url.c). */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "conf/url.h"
#include "tests/unit/unit.h"

static struct url parse_ok(const char *text)
{
    struct url url;
    struct err err = {{0}};
    ck_assert_msg(url_parse(text, &url, &err) == SK_OK, "%s: %s", text, err.message);
    return url;
}

static void assert_formats_as(const char *text, const char *expected)
{
    char out[256];
    struct url url = parse_ok(text);
    ck_assert_str_eq(url_format(&url, out, sizeof out), expected);
}

static void assert_error(const char *text, const char *message)
{
    struct url url;
    struct err err = {{0}};
    ck_assert_msg(url_parse(text, &url, &err) == SK_ERROR, "'%s' parsed", text);
    ck_assert_str_eq(err.message, message);
}

START_TEST(http_and_https)
{
    struct url url = parse_ok("http://127.0.0.1:8080");
    ck_assert_int_eq(url.scheme, URL_SCHEME_HTTP);
    ck_assert_int_eq(url.host_kind, URL_HOST_IPV4);
    ck_assert_str_eq(url.host, "127.0.0.1");
    ck_assert_uint_eq(url.port, 8080);

    url = parse_ok("https://example.com");
    ck_assert_int_eq(url.scheme, URL_SCHEME_HTTPS);
    ck_assert_int_eq(url.host_kind, URL_HOST_NAME);
    ck_assert_str_eq(url.host, "example.com");
    ck_assert_uint_eq(url.port, 443);

    url = parse_ok("HTTP://LocalHost:5000/");
    ck_assert_int_eq(url.host_kind, URL_HOST_LOCALHOST);
    ck_assert_uint_eq(url.port, 5000);
    ck_assert_uint_eq(parse_ok("http://0.0.0.0").port, 80);
}
END_TEST

START_TEST(any_address_and_ports)
{
    struct url url = parse_ok("http://*:80");
    ck_assert_int_eq(url.host_kind, URL_HOST_ANY);
    ck_assert_str_eq(url.host, "*");
    ck_assert_int_eq(parse_ok("http://+:80").host_kind, URL_HOST_ANY);
    ck_assert_uint_eq(parse_ok("http://127.0.0.1:0").port, 0);
    ck_assert_uint_eq(parse_ok("http://127.0.0.1:65535").port, 65535);
    ck_assert_int_eq(parse_ok("http://0.0.0.0:1").host_kind, URL_HOST_IPV4);
}
END_TEST

START_TEST(ipv6)
{
    struct url url = parse_ok("http://[::1]:8080");
    ck_assert_int_eq(url.host_kind, URL_HOST_IPV6);
    ck_assert_str_eq(url.host, "::1");
    ck_assert_uint_eq(url.port, 8080);
    url = parse_ok("https://[2001:db8::1]");
    ck_assert_uint_eq(url.port, 443);
    ck_assert_str_eq(url.host, "2001:db8::1");
    ck_assert_str_eq(parse_ok("http://[::]:1").host, "::");
}
END_TEST

START_TEST(unix_sockets)
{
    struct url url = parse_ok("unix:/run/saker/saker.sock");
    ck_assert_int_eq(url.host_kind, URL_HOST_UNIX);
    ck_assert_str_eq(url.unix_path, "/run/saker/saker.sock");
    ck_assert_int_eq(url.scheme, URL_SCHEME_HTTP);
    url = parse_ok("http://unix:/tmp/a.sock");
    ck_assert_int_eq(url.host_kind, URL_HOST_UNIX);
    ck_assert_str_eq(url.unix_path, "/tmp/a.sock");
    url = parse_ok("https://unix:/tmp/a.sock");
    ck_assert_int_eq(url.scheme, URL_SCHEME_HTTPS);
}
END_TEST

START_TEST(format_round_trip)
{
    assert_formats_as("http://127.0.0.1:8080", "http://127.0.0.1:8080");
    assert_formats_as("http://localhost", "http://localhost:80");
    assert_formats_as("https://[::1]", "https://[::1]:443");
    assert_formats_as("http://*:5000/", "http://*:5000");
    assert_formats_as("unix:/tmp/a.sock", "unix:/tmp/a.sock");
    assert_formats_as("http://unix:/tmp/a.sock", "unix:/tmp/a.sock");
    assert_formats_as("https://unix:/tmp/a.sock", "https://unix:/tmp/a.sock");

    char small[8];
    struct url url = parse_ok("http://127.0.0.1:8080");
    ck_assert_str_eq(url_format(&url, small, sizeof small), "http://");
}
END_TEST

START_TEST(rejects_what_is_not_an_address)
{
    assert_error("", "URL '': expected http://host:port, https://host:port or unix:/path");
    assert_error("ftp://x:1", "URL 'ftp://x:1': expected http://host:port, https://host:port "
                              "or unix:/path");
    assert_error("localhost:5000", "URL 'localhost:5000': expected http://host:port, "
                                   "https://host:port or unix:/path");
    assert_error("http://x:1/api", "URL 'http://x:1/api': a path is not allowed in an "
                                   "endpoint URL (routes go under 'routes')");
    assert_error("http://x:1?a=b", "URL 'http://x:1?a=b': a query is not allowed in an "
                                   "endpoint URL");
    assert_error("http://x:1#f", "URL 'http://x:1#f': a fragment is not allowed in an "
                                 "endpoint URL");
    assert_error("http://u:p@x:1", "URL 'http://u:p@x:1': user info (name@) is not allowed in "
                                   "an endpoint URL");
    assert_error("http://:80", "URL 'http://:80': missing host");
    assert_error("http://", "URL 'http://': missing host");
    assert_error("http://x:", "URL 'http://x:': the port must be a number from 0 to 65535");
    assert_error("http://x:65536", "URL 'http://x:65536': the port must be a number from 0 to "
                                   "65535");
    assert_error("http://x:-1", "URL 'http://x:-1': the port must be a number from 0 to 65535");
    assert_error("http://x:80a", "URL 'http://x:80a': the port must be a number from 0 to 65535");
    assert_error("http://999.1.1.1:80", "URL 'http://999.1.1.1:80': the host is not a valid "
                                        "IPv4 address");
    assert_error("http://::1:80", "URL 'http://::1:80': an IPv6 address must be in brackets");
    assert_error("http://[::1:80", "URL 'http://[::1:80': missing ']' after the IPv6 address");
    assert_error("http://[::1]80", "URL 'http://[::1]80': expected ':port' after the IPv6 "
                                   "address");
    assert_error("http://[zz]:1", "URL 'http://[zz]:1': the host is not a valid IPv6 address");
    assert_error("http://a b:1", "URL 'http://a b:1': the host contains an invalid character");
    assert_error("unix:", "URL 'unix:': expected an absolute path after 'unix:'");
    assert_error("unix:relative.sock", "URL 'unix:relative.sock': expected an absolute path "
                                       "after 'unix:'");
}
END_TEST

START_TEST(unix_path_length)
{
    char text[200] = "unix:/";
    for (int i = 6; i < 6 + 106; i++)
        text[i] = 'a'; /* "/" + 106 = 107 bytes: fits with the NUL */
    text[112] = '\0';
    ck_assert_uint_eq(strlen(parse_ok(text).unix_path), 107);
    text[112] = 'a';
    text[113] = '\0';
    struct url url;
    struct err err = {{0}};
    ck_assert_int_eq(url_parse(text, &url, &err), SK_ERROR);
    ck_assert_ptr_nonnull(strstr(err.message, "the Unix socket path is longer than 107 bytes"));
}
END_TEST

static Suite *url_suite(void)
{
    Suite *s = suite_create("url");
    TCase *tc = tcase_create("url");
    tcase_add_test(tc, http_and_https);
    tcase_add_test(tc, any_address_and_ports);
    tcase_add_test(tc, ipv6);
    tcase_add_test(tc, unix_sockets);
    tcase_add_test(tc, format_round_trip);
    tcase_add_test(tc, rejects_what_is_not_an_address);
    tcase_add_test(tc, unix_path_length);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return unit_run(url_suite());
}
