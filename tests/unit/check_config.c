/*
 * check_config.c - loading and validating the YAML config (conf/config_*.c).
 *
 * Error tests assert the whole message, location included: the message is
 * the interface an operator sees, and "FILE:LINE:COLUMN" must point at the
 * offending key or value.
 */
#include <check.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf/config.h"
#include "conf/route_redirect.h"
#include "conf/route_return.h"
#include "conf/route_static.h"
#include "tests/unit/config_check.h"
#include "tests/unit/unit.h"

#ifndef SRCDIR
#define SRCDIR "."
#endif

/* A directory per test with html/ and static/ in it, and a plain file. */
static char tmp[64];
static char html[128], statics[128], plain[128];

static void make_roots(void)
{
    snprintf(tmp, sizeof tmp, "/tmp/check_config.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmp));
    snprintf(html, sizeof html, "%s/html", tmp);
    snprintf(statics, sizeof statics, "%s/static", tmp);
    snprintf(plain, sizeof plain, "%s/file.txt", tmp);
    ck_assert_int_eq(mkdir(html, 0755), 0);
    ck_assert_int_eq(mkdir(statics, 0755), 0);
    FILE *f = fopen(plain, "w");
    ck_assert_ptr_nonnull(f);
    fclose(f);
}

/* The built-in default serves ./wwwroot: run it where there is one. */
static void enter_site_with_wwwroot(void)
{
    ck_assert_int_eq(chdir(tmp), 0);
    ck_assert_int_eq(mkdir("wwwroot", 0755), 0);
}

static void remove_roots(void)
{
    unlink(plain);
    char wwwroot[160];
    snprintf(wwwroot, sizeof wwwroot, "%s/wwwroot", tmp);
    rmdir(wwwroot);
    rmdir(html);
    rmdir(statics);
    rmdir(tmp);
}

/* A route's handler options, as the struct of its kind. */
static const struct route_return *return_of(const struct route *r)
{
    return r->handler_config;
}

static const struct route_static *static_of(const struct route *r)
{
    return r->handler_config;
}

static const struct route_redirect_https *redirect_of(const struct route *r)
{
    return r->handler_config;
}

#define EP "endpoints:\n  a:\n    url: http://127.0.0.1:8080\n"

/* The routes of example_config's file. */
static void assert_example_routes(const struct config *c)
{
    ck_assert_uint_eq(c->route_count, 3);
    const struct route *r = &c->routes[0];
    ck_assert_ptr_null(r->host);
    ck_assert_str_eq(r->path, "/plaintext");
    ck_assert_uint_eq(r->path_len, 10);
    ck_assert_ptr_eq(r->handler, &route_return_schema);
    ck_assert_int_eq(return_of(r)->status, 200);
    ck_assert_uint_eq(return_of(r)->header_count, 1);
    ck_assert_str_eq(return_of(r)->headers[0].name, "Content-Type");
    ck_assert_str_eq(return_of(r)->headers[0].value, "text/plain");
    ck_assert_str_eq(return_of(r)->body, "Hello, World!");
    ck_assert_uint_eq(return_of(r)->body_len, 13);
    ck_assert_int_eq(r->line, 13);
    ck_assert_int_eq(r->column, 5);

    r = &c->routes[1];
    ck_assert_str_eq(r->host, "static.example.com");
    ck_assert_str_eq(r->path, "/");
    ck_assert_uint_eq(r->path_len, 1);
    ck_assert_ptr_eq(r->handler, &route_static_schema);
    ck_assert_str_eq(static_of(r)->root, statics);
    ck_assert_uint_eq(static_of(r)->index_count, 1);
    ck_assert_str_eq(static_of(r)->indexes[0], "index.html");

    r = &c->routes[2];
    ck_assert_ptr_null(r->host);
    ck_assert_str_eq(static_of(r)->root, html);
    ck_assert_str_eq(static_of(r)->indexes[0], "index.html");
}

START_TEST(example_config)
{
    char text[2048];
    snprintf(text, sizeof text,
             "workers: auto\n"
             "user: www-data\n"
             "pid_file: /run/saker/saker.pid\n"
             "shm_path: /run/saker/saker.shm\n"
             "error_log: /var/log/saker/error.log\n"
             "shutdown_timeout: 30s\n"
             "endpoints:\n"
             "  public:\n"
             "    url: http://0.0.0.0:8080\n"
             "  local:\n"
             "    url: unix:/run/saker/saker.sock\n"
             "routes:\n"
             "  - path: /plaintext\n"
             "    return:\n"
             "      status: 200\n"
             "      headers: { Content-Type: text/plain }\n"
             "      body: \"Hello, World!\"\n"
             "  - host: static.example.com\n"
             "    path: /\n"
             "    static:\n"
             "      root: %s\n"
             "  - path: /\n"
             "    static:\n"
             "      root: %s\n"
             "      index: index.html\n",
             statics, html);
    struct config *c = load_ok(text);

    ck_assert_str_eq(c->file, "t.yaml");
    ck_assert_uint_eq(c->workers, (unsigned)sysconf(_SC_NPROCESSORS_ONLN));
    ck_assert_int_eq(c->cpu_affinity, CPU_AFFINITY_AUTO);
    ck_assert_str_eq(c->user, "www-data");
    ck_assert_ptr_null(c->group);
    ck_assert_str_eq(c->pid_file, "/run/saker/saker.pid");
    ck_assert_str_eq(c->shm_path, "/run/saker/saker.shm");
    ck_assert_str_eq(c->error_log, "/var/log/saker/error.log");
    ck_assert_str_eq(c->log_level, "info");
    ck_assert_uint_eq(c->shutdown_timeout_ms, 30000);

    ck_assert_uint_eq(c->endpoint_count, 2);
    ck_assert_str_eq(c->endpoints[0].name, "public");
    ck_assert_str_eq(c->endpoints[0].url_text, "http://0.0.0.0:8080");
    ck_assert_int_eq(c->endpoints[0].url.host_kind, URL_HOST_IPV4);
    ck_assert_uint_eq(c->endpoints[0].url.port, 8080);
    ck_assert_str_eq(c->endpoints[1].name, "local");
    ck_assert_int_eq(c->endpoints[1].url.host_kind, URL_HOST_UNIX);
    ck_assert_str_eq(c->endpoints[1].url.unix_path, "/run/saker/saker.sock");
    assert_example_routes(c);
    config_free(c);
}
END_TEST

START_TEST(defaults_of_a_minimal_file)
{
    struct config *c = load_ok(EP);
    char expected[PATH_MAX];
    if (geteuid() == 0)
        snprintf(expected, sizeof expected, "/run/saker/saker.shm");
    else if (getenv("XDG_RUNTIME_DIR") && getenv("XDG_RUNTIME_DIR")[0] == '/')
        snprintf(expected, sizeof expected, "%s/saker.shm", getenv("XDG_RUNTIME_DIR"));
    else
        snprintf(expected, sizeof expected, "/dev/shm/saker-%u/saker.shm", (unsigned)geteuid());

    ck_assert_ptr_null(c->user);
    ck_assert_ptr_null(c->pid_file);
    ck_assert_ptr_null(c->error_log);
    ck_assert_str_eq(c->shm_path, expected);
    ck_assert_str_eq(config_default_shm_path(), expected);
    ck_assert_str_eq(c->log_level, "info");
    ck_assert_uint_eq(c->shutdown_timeout_ms, 30000);
    ck_assert_uint_eq(c->limits.max_concurrent_connections, 0);
    ck_assert_uint_eq(c->limits.max_concurrent_upgraded_connections, 0);
    ck_assert_uint_eq(c->limits.max_request_body_size, 30000000);
    ck_assert_uint_eq(c->limits.max_request_line_size, 8192);
    ck_assert_uint_eq(c->limits.max_request_headers_total_size, 32768);
    ck_assert_uint_eq(c->limits.max_request_header_count, 100);
    ck_assert_uint_eq(c->limits.keep_alive_timeout_ms, 120000);
    ck_assert_uint_eq(c->limits.request_headers_timeout_ms, 30000);
    ck_assert_uint_eq(c->route_count, 0); /* allowed: every request is a 404 */
    ck_assert_ptr_null(c->routes);
    config_free(c);
}
END_TEST

START_TEST(limits_and_units)
{
    struct config *c = load_ok(EP "workers: 3\n"
                                  "cpu_affinity: [0, 2, 5]\n"
                                  "log_level: debug\n"
                                  "shutdown_timeout: 500ms\n"
                                  "limits:\n"
                                  "  max_concurrent_connections: 1000\n"
                                  "  max_concurrent_upgraded_connections: ~\n"
                                  "  max_request_body_size: 30MiB\n"
                                  "  max_request_line_size: \"16KB\"\n"
                                  "  max_request_headers_total_size: 65536\n"
                                  "  max_request_header_count: 50\n"
                                  "  keep_alive_timeout: 2h\n"
                                  "  request_headers_timeout: 10\n");
    ck_assert_uint_eq(c->workers, 3);
    ck_assert_int_eq(c->cpu_affinity, CPU_AFFINITY_LIST);
    ck_assert_uint_eq(c->cpu_count, 3);
    ck_assert_int_eq(c->cpus[0], 0);
    ck_assert_int_eq(c->cpus[1], 2);
    ck_assert_int_eq(c->cpus[2], 5);
    ck_assert_str_eq(c->log_level, "debug");
    ck_assert_uint_eq(c->shutdown_timeout_ms, 500);
    ck_assert_uint_eq(c->limits.max_concurrent_connections, 1000);
    ck_assert_uint_eq(c->limits.max_concurrent_upgraded_connections, 0);
    ck_assert_uint_eq(c->limits.max_request_body_size, 30u << 20);
    ck_assert_uint_eq(c->limits.max_request_line_size, 16000);
    ck_assert_uint_eq(c->limits.max_request_headers_total_size, 65536);
    ck_assert_uint_eq(c->limits.max_request_header_count, 50);
    ck_assert_uint_eq(c->limits.keep_alive_timeout_ms, 7200000);
    ck_assert_uint_eq(c->limits.request_headers_timeout_ms, 10000);
    config_free(c);

    c = load_ok(EP "cpu_affinity: off\nlimits:\n");
    ck_assert_int_eq(c->cpu_affinity, CPU_AFFINITY_OFF);
    ck_assert_uint_eq(c->limits.max_request_header_count, 100);
    config_free(c);
}
END_TEST

START_TEST(routes_are_normalised)
{
    char text[1024];
    snprintf(text, sizeof text,
             EP "routes:\n"
                "  - host: '*.Example.COM'\n"
                "    path: /docs/\n"
                "    static: { root: %s, index: home.htm }\n"
                "  - host: '*'\n"
                "    path: /bin\n"
                "    return:\n"
                "      status: 204\n"
                "      body: \"a\\0b\"\n"
                "      headers:\n"
                "        X-Empty:\n"
                "        X-Num: 5\n",
             html);
    struct config *c = load_ok(text);
    ck_assert_str_eq(c->routes[0].host, "*.example.com");
    ck_assert_str_eq(c->routes[0].path, "/docs");
    ck_assert_uint_eq(c->routes[0].path_len, 5);
    ck_assert_str_eq(static_of(&c->routes[0])->indexes[0], "home.htm");
    ck_assert_ptr_null(c->routes[1].host);
    ck_assert_int_eq(return_of(&c->routes[1])->status, 204);
    ck_assert_uint_eq(return_of(&c->routes[1])->body_len, 3);
    ck_assert_int_eq(memcmp(return_of(&c->routes[1])->body, "a\0b", 4), 0);
    ck_assert_uint_eq(return_of(&c->routes[1])->header_count, 2);
    ck_assert_str_eq(return_of(&c->routes[1])->headers[0].value, "");
    ck_assert_str_eq(return_of(&c->routes[1])->headers[1].name, "X-Num");
    ck_assert_str_eq(return_of(&c->routes[1])->headers[1].value, "5");
    config_free(c);

    c = load_ok(EP "routes:\n  - path: /\n    return: { status: 404 }\n");
    ck_assert_str_eq(return_of(&c->routes[0])->body, "");
    ck_assert_uint_eq(return_of(&c->routes[0])->body_len, 0);
    ck_assert_uint_eq(return_of(&c->routes[0])->header_count, 0);
    config_free(c);

    /* A route's own headers, for whatever its handler answers. */
    snprintf(text, sizeof text,
             EP "routes:\n"
                "  - path: /\n"
                "    headers: { X-Frame-Options: DENY, X-Content-Type-Options: nosniff }\n"
                "    static: { root: %s }\n",
             html);
    c = load_ok(text);
    ck_assert_uint_eq(c->routes[0].header_count, 2);
    ck_assert_str_eq(c->routes[0].headers[0].name, "X-Frame-Options");
    ck_assert_str_eq(c->routes[0].headers[0].value, "DENY");
    ck_assert_str_eq(c->routes[0].headers[1].name, "X-Content-Type-Options");
    ck_assert_str_eq(c->routes[0].headers[1].value, "nosniff");
    config_free(c);
}
END_TEST

START_TEST(unknown_keys)
{
    assert_error("wrokers: 4\n" EP,
                 "t.yaml:1:1: unknown key 'wrokers'; did you mean 'workers'?");
    assert_error(EP "frobnicate: 1\n", "t.yaml:4:1: unknown key 'frobnicate'");
    assert_error(EP "limits:\n  keep_alive_timout: 5s\n",
                 "t.yaml:5:3: unknown key 'keep_alive_timout'; did you mean "
                 "'keep_alive_timeout'?");
    assert_error(EP "routes:\n  - path: /\n    retrun: { status: 200 }\n",
                 "t.yaml:6:5: unknown key 'retrun'; did you mean 'return'?");
}
END_TEST

START_TEST(wrong_types)
{
    assert_error(EP "limits: [1, 2]\n", "t.yaml:4:9: limits: expected a mapping, got a sequence");
    assert_error(EP "routes: {path: /}\n", "t.yaml:4:9: routes: expected a sequence, got a mapping");
    assert_error("endpoints: http://x:1\n",
                 "t.yaml:1:12: endpoints: expected a mapping, got a scalar");
    assert_error(EP "workers: {a: 1}\n", "t.yaml:4:10: workers: expected a scalar, got a mapping");
    assert_error(EP "routes:\n  - /\n", "t.yaml:5:5: route: expected a mapping, got a scalar");
    assert_error("- 1\n", "t.yaml:1:1: top level: expected a mapping, got a sequence");
    assert_error("endpoints:\n  a: http://x:1\n",
                 "t.yaml:2:6: endpoint 'a': expected a mapping, got a scalar");
    assert_error(EP "cpu_affinity: {a: 1}\n",
                 "t.yaml:4:15: cpu_affinity: expected 'auto', 'off' or a list of CPU numbers, "
                 "got a mapping");
}
END_TEST

START_TEST(bad_values)
{
    assert_error("workers: x\n" EP,
                 "t.yaml:1:10: workers: expected a positive integer or 'auto', got 'x'");
    assert_error("workers: 0\n" EP,
                 "t.yaml:1:10: workers: expected a positive integer or 'auto', got '0'");
    assert_error("workers: 5000\n" EP,
                 "t.yaml:1:10: workers: 5000 is more than the maximum of 1024");
    assert_error(EP "shutdown_timeout: 10 minutes\n",
                 "t.yaml:4:19: shutdown_timeout: expected a duration such as 500ms, 30s, 2m or "
                 "1h (units ms, s, m, h, d; a bare number is seconds), got '10 minutes'");
    assert_error(EP "limits:\n  max_request_body_size: 30XB\n",
                 "t.yaml:5:26: max_request_body_size: expected a size such as 8192, 64KB or "
                 "30MiB (units B, KB, MB, GB, TB, KiB, MiB, GiB, TiB), got '30XB'");
    assert_error(EP "limits:\n  max_concurrent_connections: -1\n",
                 "t.yaml:5:31: max_concurrent_connections: expected a non-negative integer, "
                 "got '-1'");
    assert_error(EP "log_level: loud\n",
                 "t.yaml:4:12: log_level: expected debug, info, notice, warn or error, got "
                 "'loud'");
    assert_error(EP "cpu_affinity: [0, x]\n",
                 "t.yaml:4:19: cpu_affinity: expected a CPU number from 0 to 1023, got 'x'");
    assert_error(EP "user: \"\"\n", "t.yaml:4:7: user: expected a non-empty string");
}
END_TEST

START_TEST(bad_endpoints)
{
    assert_error("endpoints:\n  a:\n    url: http://example.com:8080/app\n",
                 "t.yaml:3:10: URL 'http://example.com:8080/app': a path is not allowed in an "
                 "endpoint URL (routes go under 'routes')");
    assert_error("endpoints:\n  a:\n    urls: http://x:1\n",
                 "t.yaml:3:5: unknown key 'urls'; did you mean 'url'?");
    assert_error("endpoints:\n  a:\n    url:\n",
                 "t.yaml:3:5: endpoint 'a': missing required key 'url'");
    assert_error("endpoints:\n  a: {}\n", "t.yaml:2:6: endpoint 'a': missing required key 'url'");
    assert_error("endpoints:\n  a: {url: 'http://localhost:80'}\n  b: {url: 'http://LOCALHOST'}\n",
                 "t.yaml:3:12: endpoint 'b': URL 'http://LOCALHOST' binds the same address as "
                 "endpoint 'a'");
    assert_error("endpoints:\n  a: {url: 'unix:/tmp/s'}\n  b: {url: 'http://unix:/tmp/s'}\n",
                 "t.yaml:3:12: endpoint 'b': URL 'http://unix:/tmp/s' binds the same address "
                 "as endpoint 'a'");
    assert_error("endpoints:\n  a: {url: x}\n  a: {url: y}\n",
                 "t.yaml:3:3: duplicate key 'a' (first at line 2)");
    /* Port 0 never clashes: each bind gets its own free port. */
    config_free(load_ok("endpoints:\n  a: {url: 'http://127.0.0.1:0'}\n"
                        "  b: {url: 'http://127.0.0.1:0'}\n"));
}
END_TEST

START_TEST(no_endpoints)
{
    assert_error("workers: 2\n", "t.yaml:1:1: no endpoints: add one under 'endpoints'");
    assert_error("workers: 2\nendpoints:\n", "t.yaml:1:1: no endpoints: add one under 'endpoints'");
    assert_error("endpoints: {}\n", "t.yaml:1:12: no endpoints: add one under 'endpoints'");
}
END_TEST

START_TEST(bad_routes)
{
    assert_error(EP "routes:\n  - path: /\n    return: { status: 200 }\n    static: { root: / }\n",
                 "t.yaml:7:5: route: has both 'return' and 'static'; keep one handler");
    assert_error(EP "routes:\n  - host: a.com\n    path: /\n",
                 "t.yaml:5:5: route: no handler: add 'return', 'static', 'status', "
                 "'redirect_https', 'proxy' or 'module'");
    assert_error(EP "routes:\n  - return: { status: 200 }\n",
                 "t.yaml:5:5: route: missing required key 'path'");
    assert_error(EP "routes:\n  - path: api\n    return: { status: 200 }\n",
                 "t.yaml:5:11: path: expected a path starting with '/', got 'api'");
    assert_error(EP "routes:\n  - path: /\n    return: { status: 200 }\n    return: { status: 201 }\n",
                 "t.yaml:7:5: duplicate key 'return' (first at line 6)");
    assert_error(EP "routes:\n  - path: /\n    return:\n",
                 "t.yaml:6:12: return: expected a mapping, got null");
    assert_error(EP "routes:\n  - host: 'a b'\n    path: /\n    return: { status: 200 }\n",
                 "t.yaml:5:11: host: expected a host name such as example.com or *.example.com, "
                 "got 'a b'");
}
END_TEST

#define TWO_EP                                                                           \
    "certificates:\n  default: { path: /x.pem, key: /x.key }\n"                          \
    "endpoints:\n  public: { url: 'http://127.0.0.1:8080' }\n"                           \
    "  secure: { url: 'https://127.0.0.1:8443' }\n"

START_TEST(routes_for_one_endpoint)
{
    struct config *c = load_ok(TWO_EP "routes:\n"
                                      "  - { endpoint: public, path: /, redirect_https: {} }\n"
                                      "  - path: /\n"
                                      "    redirect_https: { port: 8443, status: 301 }\n"
                                      "    endpoint: public\n"
                                      "  - { path: /, return: { status: 200 } }\n");
    ck_assert_ptr_eq(c->routes[0].only_endpoint, &c->endpoints[0]);
    ck_assert_ptr_eq(c->routes[0].handler, &route_redirect_schema);
    ck_assert_uint_eq(redirect_of(&c->routes[0])->port, 443);
    ck_assert_int_eq(redirect_of(&c->routes[0])->status, 308);
    ck_assert_uint_eq(redirect_of(&c->routes[1])->port, 8443);
    ck_assert_int_eq(redirect_of(&c->routes[1])->status, 301);
    ck_assert_ptr_null(c->routes[2].only_endpoint);
    struct err err = {{0}};
    ck_assert_int_eq(config_override_urls(c, "http://127.0.0.1:0", &err), SK_ERROR);
    ck_assert_str_eq(err.message, "t.yaml:7:5: route '/': endpoint 'public' is not one of the "
                                  "endpoints (--urls replaced the file's endpoints)");
    config_free(c);

    assert_error(TWO_EP "routes:\n  - { endpoint: pubic, path: /, return: { status: 200 } }\n",
                 "t.yaml:7:5: route '/': endpoint 'pubic' is not one of the endpoints; did you "
                 "mean 'public'?");
    assert_error(TWO_EP "routes:\n  - { path: /, redirect_https: {} }\n",
                 "t.yaml:7:5: route '/': redirect_https would answer https:// endpoint 'secure' "
                 "with a redirect to itself: add 'endpoint:' naming the http:// endpoint it is "
                 "for");
    assert_error(TWO_EP "routes:\n  - { endpoint: secure, path: /, redirect_https: {} }\n",
                 "t.yaml:7:5: route '/': redirect_https would answer https:// endpoint 'secure' "
                 "with a redirect to itself: add 'endpoint:' naming the http:// endpoint it is "
                 "for");
    assert_error(TWO_EP "routes:\n  - { endpoint: public, path: /, "
                        "redirect_https: { port: 0 } }\n",
                 "t.yaml:7:58: port: expected a port from 1 to 65535, got '0'");
    assert_error(TWO_EP "routes:\n  - { endpoint: public, path: /, "
                        "redirect_https: { status: 200 } }\n",
                 "t.yaml:7:60: status: expected 301, 302, 303, 307 or 308, got '200'");
}
END_TEST

/* A route's keys and its handler kinds' keys are one table: a typo of
 * either is suggested, and each kind's map has its own keys. */
START_TEST(handler_keys_and_kinds)
{
    assert_error(EP "routes:\n  - path: /\n    statik: { root: / }\n",
                 "t.yaml:6:5: unknown key 'statik'; did you mean 'static'?");
    assert_error(EP "routes:\n  - path: /\n    retrun: { status: 200 }\n",
                 "t.yaml:6:5: unknown key 'retrun'; did you mean 'return'?");
    assert_error(EP "routes:\n  - path: /\n    sttaus: { kind: liveness }\n",
                 "t.yaml:6:5: unknown key 'sttaus'; did you mean 'status'?");
    assert_error(EP "routes:\n  - path: /\n    redirect_http: {}\n",
                 "t.yaml:6:5: unknown key 'redirect_http'; did you mean 'redirect_https'?");
    assert_error(EP "routes:\n  - pth: /\n    status: { kind: liveness }\n",
                 "t.yaml:5:5: unknown key 'pth'; did you mean 'path'?");
    assert_error(EP "routes:\n  - path: /\n    xyz: 1\n", "t.yaml:6:5: unknown key 'xyz'");
    assert_error(EP "routes:\n  - path: /\n    redirect_https: { prot: 1 }\n",
                 "t.yaml:6:23: unknown key 'prot'; did you mean 'port'?");
    assert_error(EP "routes:\n  - path: /\n    static: /var/www\n",
                 "t.yaml:6:13: static: expected a mapping, got a scalar");
    assert_error(EP "routes:\n  - path: /\n    return: [200]\n",
                 "t.yaml:6:13: return: expected a mapping, got a sequence");
    assert_error(EP "routes:\n  - path: /\n    status: { kind: health }\n",
                 "t.yaml:6:21: kind: expected liveness, readiness or metrics, got 'health'");
    assert_error(EP "routes:\n  - path: /\n    status: {}\n",
                 "t.yaml:6:13: status: missing required key 'kind'");
    assert_error(EP "routes:\n  - path: /\n    status: { kind: [a] }\n",
                 "t.yaml:6:21: kind: expected a scalar, got a sequence");
    assert_error(EP "routes:\n  - path: /\n    headers: { X-A: b }\n",
                 "t.yaml:5:5: route: no handler: add 'return', 'static', 'status', "
                 "'redirect_https', 'proxy' or 'module'");
}
END_TEST

START_TEST(bad_return)
{
    assert_error(EP "routes:\n  - path: /\n    return: { body: hi }\n",
                 "t.yaml:6:13: return: missing required key 'status'");
    assert_error(EP "routes:\n  - path: /\n    return: { status: 99 }\n",
                 "t.yaml:6:23: status: expected an integer from 100 to 599, got '99'");
    assert_error(EP "routes:\n  - path: /\n    return: { status: 600 }\n",
                 "t.yaml:6:23: status: expected an integer from 100 to 599, got '600'");
    assert_error(EP "routes:\n  - path: /\n    return:\n      status: 200\n"
                    "      headers: { 'Bad Name': x }\n",
                 "t.yaml:8:18: header name 'Bad Name' is not an HTTP token");
    assert_error(EP "routes:\n  - path: /\n    return:\n      status: 200\n"
                    "      headers: { X-A: \"a\\r\\nSet-Cookie: b\" }\n",
                 "t.yaml:8:23: header 'X-A': the value contains CR, LF or NUL");
    assert_error(EP "routes:\n  - path: /\n    return:\n      status: 200\n"
                    "      headers: { Content-Length: 5 }\n",
                 "t.yaml:8:18: header 'Content-Length' is set by the server; remove it");
    assert_error(EP "routes:\n  - path: /\n    return:\n      status: 200\n"
                    "      headers: [a]\n",
                 "t.yaml:8:16: headers: expected a mapping, got a sequence");
    assert_error(EP "routes:\n  - path: /\n    headers: { content-type: x }\n"
                    "    static: { root: /tmp }\n",
                 "t.yaml:6:16: header 'content-type' is set by the handler or the server "
                 "(HSTS: the endpoint's 'hsts')");
    assert_error(EP "routes:\n  - path: /\n    headers: { Strict-Transport-Security: x }\n"
                    "    static: { root: /tmp }\n",
                 "t.yaml:6:16: header 'Strict-Transport-Security' is set by the handler or the "
                 "server (HSTS: the endpoint's 'hsts')");
    assert_error(EP "routes:\n  - path: /\n    headers: { Connection: close }\n"
                    "    static: { root: /tmp }\n",
                 "t.yaml:6:16: header 'Connection' is set by the server; remove it");
    assert_error(EP "routes:\n  - path: /\n    headers: { X-A: b }\n"
                    "    return: { status: 200 }\n",
                 "t.yaml:6:5: route: a 'return' route's headers go in return.headers");
}
END_TEST

START_TEST(bad_static)
{
    char text[1024], expected[512];

    snprintf(text, sizeof text, EP "routes:\n  - path: /\n    static:\n      root: %s/nope\n",
             tmp);
    snprintf(expected, sizeof expected,
             "t.yaml:7:13: static root '%s/nope': No such file or directory", tmp);
    assert_error(text, expected);

    snprintf(text, sizeof text, EP "routes:\n  - path: /\n    static:\n      root: %s\n", plain);
    snprintf(expected, sizeof expected, "t.yaml:7:13: static root '%s': Not a directory", plain);
    assert_error(text, expected);

    snprintf(text, sizeof text,
             EP "routes:\n  - path: /\n    static:\n      root: %s\n      index: a/b.html\n",
             html);
    assert_error(text, "t.yaml:8:14: index: expected a file name without '/', got 'a/b.html'");
    assert_error(EP "routes:\n  - path: /\n    static: { index: x }\n",
                 "t.yaml:6:13: static: missing required key 'root'");
}
END_TEST

START_TEST(yaml_errors)
{
    assert_error("workers: 1\nworkers: 2\n" EP, "t.yaml:2:1: duplicate key 'workers' (first at line 1)");
    assert_error("workers: [1\n",
                 "t.yaml:2:1: syntax error: did not find expected ',' or ']' (while parsing a "
                 "flow sequence at line 1, column 10)");
    assert_error("a: b: c\n", "t.yaml:1:5: syntax error: mapping values are not allowed in this "
                              "context");
    assert_error("endpoints:\n  a: {url: 'x'\n", "t.yaml:3:1: syntax error: did not find "
                 "expected ',' or '}' (while parsing a flow mapping at line 2, column 6)");
    assert_error("", "t.yaml:1:1: the file is empty: expected a mapping of options with at "
                     "least 'endpoints'");
    assert_error("# nothing\n", "t.yaml:1:1: the file is empty: expected a mapping of options "
                                "with at least 'endpoints'");
    assert_error(EP "---\nworkers: 1\n", "t.yaml:5:1: only one YAML document is allowed");
    assert_error("workers: \x80\n", "t.yaml:1:10: syntax error: invalid leading UTF-8 octet");
    assert_error(EP "[a]: 1\n", "t.yaml:4:1: expected a scalar key, got a sequence");
}
END_TEST

START_TEST(load_file)
{
    struct err err = {{0}};
    char path[256];

    snprintf(path, sizeof path, "%s/missing.yaml", tmp);
    ck_assert_ptr_null(config_load_file(path, &err));
    char expected[512];
    snprintf(expected, sizeof expected, "%s: cannot read: No such file or directory", path);
    ck_assert_str_eq(err.message, expected);

    ck_assert_ptr_null(config_load_file(tmp, &err));
    snprintf(expected, sizeof expected, "%s: cannot read: Is a directory", tmp);
    ck_assert_str_eq(err.message, expected);

    snprintf(path, sizeof path, "%s/bad.yaml", tmp);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(EP "wrokers: 2\n", f);
    fclose(f);
    ck_assert_ptr_null(config_load_file(path, &err));
    snprintf(expected, sizeof expected, "%s:4:1: unknown key 'wrokers'; did you mean 'workers'?",
             path);
    ck_assert_str_eq(err.message, expected);
    unlink(path);
}
END_TEST

START_TEST(shipped_config_loads)
{
    struct err err = {{0}};
    struct config *c = config_load_file(SRCDIR "/conf/saker.yaml", &err);
    ck_assert_msg(c != NULL, "%s", err.message);
    ck_assert_uint_ge(c->endpoint_count, 1);
    ck_assert_str_eq(c->endpoints[0].url_text, CONFIG_DEFAULT_URL);
    ck_assert_uint_ge(c->route_count, 1);
    config_free(c);
}
END_TEST

START_TEST(built_in_default_needs_wwwroot)
{
    struct err err = {{0}};
    ck_assert_int_eq(chdir(tmp), 0);
    ck_assert_ptr_null(config_default(&err));
    ck_assert_str_eq(err.message, "static root './wwwroot': No such file or directory");
}
END_TEST

START_TEST(built_in_default)
{
    struct err err = {{0}};
    enter_site_with_wwwroot();
    struct config *c = config_default(&err);
    ck_assert_msg(c != NULL, "%s", err.message);
    ck_assert_ptr_null(c->file);
    ck_assert_uint_ge(c->workers, 1);
    ck_assert_str_eq(c->shm_path, config_default_shm_path());
    ck_assert_uint_eq(c->limits.keep_alive_timeout_ms, 120000);
    ck_assert_uint_eq(c->endpoint_count, 1);
    ck_assert_str_eq(c->endpoints[0].name, "default");
    ck_assert_str_eq(c->endpoints[0].url_text, "http://localhost:5000");
    ck_assert_int_eq(c->endpoints[0].url.host_kind, URL_HOST_LOCALHOST);
    ck_assert_uint_eq(c->endpoints[0].url.port, 5000);
    ck_assert_uint_eq(c->route_count, 1);
    ck_assert_str_eq(c->routes[0].path, "/");
    ck_assert_ptr_eq(c->routes[0].handler, &route_static_schema);
    ck_assert_str_eq(static_of(&c->routes[0])->root, CONFIG_DEFAULT_ROOT);
    ck_assert_uint_eq(static_of(&c->routes[0])->index_count, 0); /* index.html */
    config_free(c);
    config_free(NULL);
}
END_TEST

START_TEST(override_urls)
{
    struct err err = {{0}};
    struct config *c = load_ok(EP);

    ck_assert_int_eq(config_override_urls(c, "http://127.0.0.1:0; ;unix:/tmp/a.sock;", &err),
                     SK_OK);
    ck_assert_uint_eq(c->endpoint_count, 2);
    ck_assert_str_eq(c->endpoints[0].name, "url0");
    ck_assert_str_eq(c->endpoints[0].url_text, "http://127.0.0.1:0");
    ck_assert_str_eq(c->endpoints[1].name, "url1");
    ck_assert_int_eq(c->endpoints[1].url.host_kind, URL_HOST_UNIX);

    ck_assert_int_eq(config_override_urls(c, "http://[::1]:1;ftp://x", &err), SK_ERROR);
    ck_assert_str_eq(err.message,
                     "URL 'ftp://x': expected http://host:port, https://host:port or unix:/path");
    ck_assert_uint_eq(c->endpoint_count, 2); /* unchanged on error */
    ck_assert_str_eq(c->endpoints[0].url_text, "http://127.0.0.1:0");

    ck_assert_int_eq(config_override_urls(c, " ; ", &err), SK_ERROR);
    ck_assert_str_eq(err.message, "no URLs in ' ; '");
    ck_assert_int_eq(config_override_urls(c, "http://*:80;http://+:80", &err), SK_ERROR);
    ck_assert_str_eq(err.message, "URL 'http://+:80' binds the same address as 'http://*:80'");
    config_free(c);
}
END_TEST

/* ---- limits, hosts and logs of issue 3 ------------------------------- */

START_TEST(data_rates)
{
    struct config *c = load_ok(EP);
    ck_assert_uint_eq(c->limits.min_request_body_data_rate.bytes_per_second, 240);
    ck_assert_uint_eq(c->limits.min_request_body_data_rate.grace_period_ms, 5000);
    ck_assert_uint_eq(c->limits.min_response_data_rate.bytes_per_second, 240);
    ck_assert_uint_eq(c->limits.min_response_data_rate.grace_period_ms, 5000);
    config_free(c);

    c = load_ok(EP "limits:\n"
                   "  min_request_body_data_rate: { bytes_per_second: 1000, grace_period: 1s }\n"
                   "  min_response_data_rate: { grace_period: 500ms }\n");
    ck_assert_uint_eq(c->limits.min_request_body_data_rate.bytes_per_second, 1000);
    ck_assert_uint_eq(c->limits.min_request_body_data_rate.grace_period_ms, 1000);
    ck_assert_uint_eq(c->limits.min_response_data_rate.bytes_per_second, 240);
    ck_assert_uint_eq(c->limits.min_response_data_rate.grace_period_ms, 500);
    config_free(c);

    c = load_ok(EP "limits:\n  min_request_body_data_rate: null\n"
                   "  min_response_data_rate: off\n");
    ck_assert_uint_eq(c->limits.min_request_body_data_rate.bytes_per_second, 0);
    ck_assert_uint_eq(c->limits.min_response_data_rate.bytes_per_second, 0);
    config_free(c);

    assert_error(EP "limits:\n  min_request_body_data_rate: 240\n",
                 "t.yaml:5:31: min_request_body_data_rate: expected a mapping such as "
                 "{ bytes_per_second: 240, grace_period: 5s } or off, got a scalar");
    assert_error(EP "limits:\n  min_response_data_rate: { bytes_per_second: 0 }\n",
                 "t.yaml:5:47: bytes_per_second: expected a positive integer, got '0'");
    assert_error(EP "limits:\n  min_response_data_rate: { grace: 1s }\n",
                 "t.yaml:5:29: unknown key 'grace'");
}
END_TEST

START_TEST(endpoint_limits_and_logging)
{
    struct config *c = load_ok("endpoints:\n"
                               "  public:\n"
                               "    url: http://0.0.0.0:8080\n"
                               "    limits: { max_concurrent_connections: 5000,\n"
                               "              min_response_data_rate: off }\n"
                               "    access_log: false\n"
                               "    connection_logging: true\n"
                               "  admin: { url: http://127.0.0.1:9000 }\n"
                               "limits:\n"
                               "  max_concurrent_connections: 10000\n"
                               "  keep_alive_timeout: 10s\n");
    const struct endpoint *pub = &c->endpoints[0], *admin = &c->endpoints[1];
    ck_assert_uint_eq(pub->limits.max_concurrent_connections, 5000);
    ck_assert_uint_eq(pub->limits.keep_alive_timeout_ms, 10000); /* inherited, though later */
    ck_assert_uint_eq(pub->limits.min_response_data_rate.bytes_per_second, 0);
    ck_assert_uint_eq(pub->limits.min_request_body_data_rate.bytes_per_second, 240);
    ck_assert(!pub->access_log);
    ck_assert(pub->connection_logging);
    ck_assert_uint_eq(admin->limits.max_concurrent_connections, 10000);
    ck_assert_uint_eq(admin->limits.max_request_body_size, 30000000);
    ck_assert(admin->access_log);
    ck_assert(!admin->connection_logging);
    config_free(c);

    assert_error("endpoints:\n  a:\n    url: http://127.0.0.1:1\n    limits: { max_body: 1 }\n",
                 "t.yaml:4:15: unknown key 'max_body'");
    assert_error("endpoints:\n  a:\n    url: http://127.0.0.1:1\n    limits: 5\n",
                 "t.yaml:4:13: limits: expected a mapping, got a scalar");
    assert_error("endpoints:\n  a:\n    url: http://127.0.0.1:1\n"
                 "    limits: { keep_alive_timeout: soon }\n",
                 "t.yaml:4:35: keep_alive_timeout: expected a duration such as 500ms, 30s, "
                 "2m or 1h (units ms, s, m, h, d; a bare number is seconds), got 'soon'");
    assert_error("endpoints:\n  a:\n    url: http://127.0.0.1:1\n    access_log: maybe\n",
                 "t.yaml:4:17: access_log: expected true or false, got 'maybe'");
}
END_TEST

START_TEST(every_endpoint_gets_limits)
{
    struct err err = {{0}};
    struct config *c = load_ok(EP "limits: { max_request_body_size: 1KB }\n");
    ck_assert_uint_eq(c->endpoints[0].limits.max_request_body_size, 1000);
    ck_assert_int_eq(config_override_urls(c, "http://127.0.0.1:0;unix:/tmp/x.sock", &err), SK_OK);
    for (size_t i = 0; i < c->endpoint_count; i++) {
        ck_assert_uint_eq(c->endpoints[i].limits.max_request_body_size, 1000);
        ck_assert(c->endpoints[i].access_log);
    }
    config_free(c);
    enter_site_with_wwwroot();
    c = config_default(&err);
    ck_assert_ptr_nonnull(c);
    ck_assert_uint_eq(c->endpoints[0].limits.max_request_header_count, 100);
    ck_assert_uint_eq(c->endpoints[0].limits.keep_alive_timeout_ms, 120000);
    config_free(c);
}
END_TEST

START_TEST(allowed_hosts)
{
    struct config *c = load_ok(EP "allowed_hosts: [Example.com, \"*.example.org\", localhost]\n");
    ck_assert_uint_eq(c->allowed_host_count, 3);
    ck_assert_str_eq(c->allowed_hosts[0], "example.com");
    ck_assert_str_eq(c->allowed_hosts[1], "*.example.org");
    ck_assert_str_eq(c->allowed_hosts[2], "localhost");
    config_free(c);
    c = load_ok(EP "allowed_hosts: \"a.com; *.b.com\"\n"); /* Kestrel's spelling */
    ck_assert_uint_eq(c->allowed_host_count, 2);
    ck_assert_str_eq(c->allowed_hosts[1], "*.b.com");
    config_free(c);
    c = load_ok(EP);
    ck_assert_uint_eq(c->allowed_host_count, 0);
    config_free(c);

    assert_error(EP "allowed_hosts: [a.com, \"exa mple.com\"]\n",
                 "t.yaml:4:24: allowed_hosts: expected a host name such as example.com or "
                 "*.example.com, got 'exa mple.com'");
    assert_error(EP "allowed_hosts: [\"*.\"]\n",
                 "t.yaml:4:17: allowed_hosts: expected a host name such as example.com or "
                 "*.example.com, got '*.'");
    assert_error(EP "allowed_hosts: { a: b }\n",
                 "t.yaml:4:16: allowed_hosts: expected a list of host names, got a mapping");
    assert_error(EP "allowed_hosts: [[a]]\n",
                 "t.yaml:4:17: allowed_hosts: expected a scalar, got a sequence");
}
END_TEST

START_TEST(access_log_options)
{
    struct config *c = load_ok(EP);
    ck_assert_ptr_null(c->access_log);
    ck_assert_int_eq(c->access_log_format, ACCESS_LOG_COMBINED);
    config_free(c);
    c = load_ok(EP "access_log: /var/log/saker/access.log\naccess_log_format: json\n");
    ck_assert_str_eq(c->access_log, "/var/log/saker/access.log");
    ck_assert_int_eq(c->access_log_format, ACCESS_LOG_JSON);
    config_free(c);
    c = load_ok(EP "access_log: stderr\n");
    ck_assert_str_eq(c->access_log, "stderr");
    config_free(c);
    c = load_ok(EP "access_log: off\n");
    ck_assert_ptr_null(c->access_log);
    config_free(c);
    assert_error(EP "access_log_format: common\n",
                 "t.yaml:4:20: access_log_format: expected combined or json, got 'common'");
    assert_error(EP "access_log: [a]\n", "t.yaml:4:13: access_log: expected a scalar, got a sequence");
}
END_TEST

START_TEST(open_file_cache_options)
{
    struct config *c = load_ok(EP);
    ck_assert_uint_eq(c->open_file_cache.max, 0); /* off: per loop turn only */
    config_free(c);
    c = load_ok(EP "open_file_cache: { max: 10000 }\n");
    ck_assert_uint_eq(c->open_file_cache.max, 10000);
    ck_assert_uint_eq(c->open_file_cache.valid_ms, 60000);
    config_free(c);
    c = load_ok(EP "open_file_cache: { max: 10, valid: 2s }\n");
    ck_assert_uint_eq(c->open_file_cache.valid_ms, 2000);
    config_free(c);
    c = load_ok(EP "open_file_cache: off\n");
    ck_assert_uint_eq(c->open_file_cache.max, 0);
    config_free(c);
    assert_error(EP "open_file_cache: { valid: 2s }\n",
                 "t.yaml:4:18: open_file_cache: missing required key 'max'");
    assert_error(EP "open_file_cache: { max: 0 }\n", "t.yaml:4:25: max: expected a positive integer, got '0'");
    assert_error(EP "open_file_cache: { max: 2000000 }\n",
                 "t.yaml:4:25: open_file_cache: max must be at most 1000000");
    assert_error(EP "open_file_cache: { max: 5, valid: 0s }\n",
                 "t.yaml:4:35: open_file_cache: valid must be more than 0 (for no cache "
                 "across requests, write open_file_cache: off)");
    assert_error(EP "open_file_cache: { max: 5, vaild: 2s }\n",
                 "t.yaml:4:28: unknown key 'vaild'; did you mean 'valid'?");
    assert_error(EP "open_file_cache: [1]\n",
                 "t.yaml:4:18: open_file_cache: expected a mapping, got a sequence");
}
END_TEST

START_TEST(route_body_limit)
{
    struct config *c = load_ok(EP "routes:\n"
                                  "  - path: /upload\n"
                                  "    max_request_body_size: 1GB\n"
                                  "    return: { status: 200 }\n"
                                  "  - path: /none\n"
                                  "    max_request_body_size: 0\n"
                                  "    return: { status: 200 }\n"
                                  "  - path: /\n"
                                  "    return: { status: 200 }\n");
    ck_assert(c->routes[0].has_max_request_body_size);
    ck_assert_uint_eq(c->routes[0].max_request_body_size, 1000000000);
    ck_assert(c->routes[1].has_max_request_body_size);
    ck_assert_uint_eq(c->routes[1].max_request_body_size, 0);
    ck_assert(!c->routes[2].has_max_request_body_size);
    config_free(c);
    assert_error(EP "routes:\n  - path: /\n    max_request_body_size: lots\n"
                    "    return: { status: 200 }\n",
                 "t.yaml:6:28: max_request_body_size: expected a size such as 8192, 64KB or "
                 "30MiB (units B, KB, MB, GB, TB, KiB, MiB, GiB, TiB), got 'lots'");
}
END_TEST

START_TEST(route_names_and_labels)
{
    struct config *c = load_ok(EP "routes:\n"
                                  "  - path: /api/\n    name: api\n    return: { status: 200 }\n"
                                  "  - host: Static.Example.com\n    path: /\n"
                                  "    return: { status: 200 }\n"
                                  "  - endpoint: a\n    path: /metrics\n"
                                  "    status: { kind: metrics }\n");
    char label[128];
    config_route_label(&c->routes[0], label, sizeof label);
    ck_assert_str_eq(label, "api");
    config_route_label(&c->routes[1], label, sizeof label);
    ck_assert_str_eq(label, "static.example.com/");
    config_route_label(&c->routes[2], label, sizeof label);
    ck_assert_str_eq(label, "a:/metrics");
    config_free(c);
    assert_error(EP "routes:\n  - path: /a\n    name: x\n    return: { status: 200 }\n"
                    "  - path: /b\n    name: x\n    return: { status: 200 }\n",
                 "t.yaml:9:11: name: 'x' is the name of the route at line 5 too");
    assert_error(EP "routes:\n  - path: /a\n    name: \"x\\ty\"\n    return: { status: 200 }\n",
                 "t.yaml:6:11: name: contains a control character");
}
END_TEST

static Suite *config_suite(void)
{
    Suite *s = suite_create("config");
    TCase *tc = tcase_create("config");
    tcase_add_checked_fixture(tc, make_roots, remove_roots);
    tcase_add_test(tc, example_config);
    tcase_add_test(tc, open_file_cache_options);
    tcase_add_test(tc, defaults_of_a_minimal_file);
    tcase_add_test(tc, limits_and_units);
    tcase_add_test(tc, routes_are_normalised);
    tcase_add_test(tc, unknown_keys);
    tcase_add_test(tc, wrong_types);
    tcase_add_test(tc, bad_values);
    tcase_add_test(tc, bad_endpoints);
    tcase_add_test(tc, no_endpoints);
    tcase_add_test(tc, bad_routes);
    tcase_add_test(tc, routes_for_one_endpoint);
    tcase_add_test(tc, handler_keys_and_kinds);
    tcase_add_test(tc, bad_return);
    tcase_add_test(tc, bad_static);
    tcase_add_test(tc, yaml_errors);
    tcase_add_test(tc, load_file);
    tcase_add_test(tc, shipped_config_loads);
    tcase_add_test(tc, built_in_default);
    tcase_add_test(tc, built_in_default_needs_wwwroot);
    tcase_add_test(tc, override_urls);
    tcase_add_test(tc, data_rates);
    tcase_add_test(tc, endpoint_limits_and_logging);
    tcase_add_test(tc, every_endpoint_gets_limits);
    tcase_add_test(tc, allowed_hosts);
    tcase_add_test(tc, access_log_options);
    tcase_add_test(tc, route_body_limit);
    tcase_add_test(tc, route_names_and_labels);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return unit_run(config_suite());
}
