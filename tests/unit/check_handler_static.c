/*
 * check_handler_static.c - the static handler against a scratch tree,
 * through a fake protocol: the exchange's respond() records what would be
 * sent (status, headers, body kind, file range and its bytes) and closes
 * the descriptor as a real protocol would. Every request also checks that
 * no descriptor leaked, whatever the answer.
 *
 * The tree (ROOT = scratch/root):
 *   ROOT/hello.txt "hello world\n", mtime 784111777 (06 Nov 1994 08:49:37)
 *   ROOT/index.html, ROOT/empty.txt, ROOT/sub/index.html, ROOT/noindex/a.txt,
 *   ROOT/"a b"/index.html, ROOT/fifo, ROOT/noread.txt (mode 000)
 *   ROOT/link_in -> hello.txt, ROOT/link_out -> /etc/passwd,
 *   ROOT/link_up -> ../secret.txt, ROOT/abs_dir -> scratch/outside (absolute)
 *   scratch/secret.txt, scratch/outside/x.txt
 */
#include <check.h>
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/arena.h"
#include "conf/route_static.h"
#include "worker/conditional.h"
#include "worker/exchange.h"
#include "worker/handler.h"
#include "worker/path.h"
#include "worker/router.h"
#include "tests/unit/unit.h"

#define HELLO "hello world\n"
#define HELLO_MTIME 784111777

static char scratch[] = "/tmp/check_handler_static.XXXXXX";
static char root_path[256];
static struct block_pool pool;
static struct arena arena;
static struct exchange ex;
static struct route route;
static struct route_static files;
static void *state;

/* What the fake protocol saw. */
static struct {
    int calls;
    int status;
    enum exchange_body_kind kind;
    size_t len;
    off_t offset;
    char body[256];
} sent;

static void on_respond(struct exchange *e)
{
    sent.calls++;
    sent.status = e->status;
    sent.kind = e->body_kind;
    sent.len = e->body_len;
    sent.offset = e->body_offset;
    size_t n = e->body_len < sizeof sent.body - 1 ? e->body_len : sizeof sent.body - 1;
    if (e->body_kind == BODY_FILE) {
        ck_assert_int_eq(pread(e->body_fd, sent.body, n, e->body_offset), (ssize_t)n);
        exchange_drop_body(e); /* as a protocol that is done with it */
    } else if (e->body_kind == BODY_BYTES) {
        memcpy(sent.body, e->body, n);
    }
    sent.body[n] = '\0';
}

static const struct exchange_ops fake_protocol = {.respond = on_respond};

static int open_fd_count(void)
{
    DIR *d = opendir("/proc/self/fd");
    int n = 0;
    ck_assert_ptr_nonnull(d);
    while (readdir(d) != NULL)
        n++;
    closedir(d);
    return n;
}

/* Serves one request; headers are name, value pairs ending with NULL. */
static void serve(enum exchange_method method, const char *target, ...)
{
    static struct header_field fields[8];
    va_list ap;
    size_t count = 0;
    va_start(ap, target);
    for (const char *name; (name = va_arg(ap, const char *)) != NULL && count < 8; count++) {
        const char *value = va_arg(ap, const char *);
        fields[count] = (struct header_field){name, strlen(name), value, strlen(value)};
    }
    va_end(ap);

    arena_reset(&arena);
    memset(&ex, 0, sizeof ex);
    memset(&sent, 0, sizeof sent);
    ex.arena = &arena;
    ex.ops = &fake_protocol;
    ex.method = method;
    ex.method_name = method == METHOD_GET ? "GET" : method == METHOD_HEAD ? "HEAD" : "POST";
    ex.target = target;
    ex.target_len = strlen(target);
    const char *q = strchr(target, '?');
    size_t raw_len = q != NULL ? (size_t)(q - target) : ex.target_len;
    if (q != NULL)
        ex.query = q + 1, ex.query_len = strlen(q + 1);
    ex.headers = fields;
    ex.header_count = count;

    int fds = open_fd_count();
    /* As the protocol does before routing: a path it refuses never reaches
     * the handler, and the client gets that status. */
    int refused = path_normalize_request(&arena, target, raw_len, &ex.path, &ex.path_len);
    if (refused != 0) {
        sent.status = refused;
        sent.calls = 1;
        return;
    }
    handler_static_ops.handle(&ex, &route, state);
    ck_assert_int_eq(sent.calls, 1);
    ck_assert_int_eq(open_fd_count(), fds);
}

static const char *response_header(const char *name)
{
    for (size_t i = 0; i < ex.response_header_count; i++)
        if (strcasecmp(ex.response_headers[i].name, name) == 0)
            return ex.response_headers[i].value;
    return NULL;
}

/* ---- fixture ---- */

static void put_file(const char *rel, const char *text)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s", scratch, rel);
    FILE *f = fopen(p, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

static void put(const char *kind, const char *target, const char *rel)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s", scratch, rel);
    if (strcmp(kind, "dir") == 0)
        ck_assert_int_eq(mkdir(p, 0755), 0);
    else if (strcmp(kind, "link") == 0)
        ck_assert_int_eq(symlink(target, p), 0);
    else
        ck_assert_int_eq(mkfifo(p, 0644), 0);
}

static void use_route(const char *path)
{
    route = (struct route){0};
    route.path = (char *)path;
    route.path_len = strlen(path);
    files = (struct route_static){.root = root_path};
    route.handler = &route_static_schema;
    route.handler_config = &files;
}

static void tree_setup(void)
{
    ck_assert_ptr_nonnull(mkdtemp(scratch));
    snprintf(root_path, sizeof root_path, "%s/root", scratch);
    put("dir", NULL, "root");
    put("dir", NULL, "outside");
    put_file("secret.txt", "secret");
    put_file("outside/x.txt", "outside");
    put_file("root/hello.txt", HELLO);
    put_file("root/index.html", "<p>root</p>");
    put_file("root/empty.txt", "");
    put("dir", NULL, "root/sub");
    put_file("root/sub/index.html", "<p>sub</p>");
    put("dir", NULL, "root/noindex");
    put_file("root/noindex/a.txt", "a");
    put("dir", NULL, "root/a b");
    put_file("root/a b/index.html", "<p>a b</p>");
    put("fifo", NULL, "root/fifo");
    put_file("root/noread.txt", "no");
    char noread[512];
    snprintf(noread, sizeof noread, "%s/noread.txt", root_path);
    ck_assert_int_eq(chmod(noread, 0), 0);
    put("link", "hello.txt", "root/link_in");
    put("link", "/etc/passwd", "root/link_out");
    put("link", "../secret.txt", "root/link_up");
    char outside[512];
    snprintf(outside, sizeof outside, "%s/outside", scratch);
    put("link", outside, "root/abs_dir");

    char hello[512];
    snprintf(hello, sizeof hello, "%s/hello.txt", root_path);
    struct timespec times[2] = {{HELLO_MTIME, 0}, {HELLO_MTIME, 0}};
    ck_assert_int_eq(utimensat(AT_FDCWD, hello, times, 0), 0);

    block_pool_init(&pool, 4);
    arena_init(&arena, &pool);
    use_route("/");
    struct err err;
    ck_assert_int_eq(handler_static_ops.init(&route, &state, &err), SK_OK);
}

static int remove_entry(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(p);
}

static void tree_teardown(void)
{
    handler_static_ops.fini(state);
    arena_reset(&arena);
    block_pool_destroy(&pool);
    nftw(scratch, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* ---- plain serving ---- */

START_TEST(test_get_file)
{
    serve(METHOD_GET, "/hello.txt", NULL);
    ck_assert_int_eq(sent.status, 200);
    ck_assert_int_eq(sent.kind, BODY_FILE);
    ck_assert_uint_eq(sent.len, strlen(HELLO));
    ck_assert_int_eq(sent.offset, 0);
    ck_assert_str_eq(sent.body, HELLO);
    ck_assert_str_eq(response_header("Content-Type"), "text/plain; charset=utf-8");
    ck_assert_str_eq(response_header("Last-Modified"), "Sun, 06 Nov 1994 08:49:37 GMT");
    ck_assert_str_eq(response_header("Accept-Ranges"), "bytes");
    const char *etag = response_header("ETag");
    ck_assert_ptr_nonnull(etag);
    ck_assert_int_eq(etag[0], '"');
    ck_assert_int_eq(etag[strlen(etag) - 1], '"');
    ck_assert_ptr_null(response_header("Content-Length")); /* the protocol's */
}
END_TEST

START_TEST(test_head_sets_file_for_length)
{
    serve(METHOD_HEAD, "/hello.txt", NULL);
    ck_assert_int_eq(sent.status, 200);
    ck_assert_int_eq(sent.kind, BODY_FILE);
    ck_assert_uint_eq(sent.len, strlen(HELLO));
}
END_TEST

START_TEST(test_empty_file)
{
    serve(METHOD_GET, "/empty.txt", "Range", "bytes=0-5", NULL);
    ck_assert_int_eq(sent.status, 200);
    ck_assert_uint_eq(sent.len, 0);
}
END_TEST

START_TEST(test_method_not_allowed)
{
    serve(METHOD_POST, "/hello.txt", NULL);
    ck_assert_int_eq(sent.status, 405);
    ck_assert_str_eq(response_header("Allow"), "GET, HEAD");
}
END_TEST

START_TEST(test_not_found)
{
    serve(METHOD_GET, "/missing.txt", NULL);
    ck_assert_int_eq(sent.status, 404);
    serve(METHOD_GET, "/missing/dir/x", NULL);
    ck_assert_int_eq(sent.status, 404);
    serve(METHOD_GET, "/hello.txt/x", NULL);
    ck_assert_int_eq(sent.status, 404);
    serve(METHOD_GET, "/hello.txt/", NULL);
    ck_assert_int_eq(sent.status, 404);
}
END_TEST

START_TEST(test_fifo_is_not_served)
{
    serve(METHOD_GET, "/fifo", NULL); /* must not block in open() */
    ck_assert_int_eq(sent.status, 404);
}
END_TEST

START_TEST(test_unreadable_is_forbidden)
{
    /* root reads mode 000 files: act as nobody; the saved uid brings root
     * back for the teardown */
    bool was_root = geteuid() == 0;
    if (was_root)
        ck_assert_int_eq(seteuid(65534), 0);
    serve(METHOD_GET, "/noread.txt", NULL);
    int status = sent.status;
    if (was_root)
        ck_assert_int_eq(seteuid(0), 0);
    ck_assert_int_eq(status, 403);
}
END_TEST

START_TEST(test_bad_paths)
{
    serve(METHOD_GET, "/../secret.txt", NULL);
    ck_assert_int_eq(sent.status, 403);
    serve(METHOD_GET, "/%2e%2e/secret.txt", NULL);
    ck_assert_int_eq(sent.status, 403);
    serve(METHOD_GET, "/sub/..%2f..%2fsecret.txt", NULL);
    ck_assert_int_eq(sent.status, 403);
    serve(METHOD_GET, "/hello%00.txt", NULL);
    ck_assert_int_eq(sent.status, 400);
    serve(METHOD_GET, "/a%zz", NULL);
    ck_assert_int_eq(sent.status, 400);
    static char long_path[PATH_MAX + 16];
    long_path[0] = '/';
    memset(long_path + 1, 'x', sizeof long_path - 2);
    serve(METHOD_GET, long_path, NULL);
    ck_assert_int_eq(sent.status, 414);
    serve(METHOD_GET, "/sub/../hello.txt", NULL); /* stays inside: fine */
    ck_assert_int_eq(sent.status, 200);
    serve(METHOD_GET, "/%68ello.txt", NULL);
    ck_assert_int_eq(sent.status, 200);
}
END_TEST

START_TEST(test_symlinks)
{
    serve(METHOD_GET, "/link_in", NULL);
    ck_assert_int_eq(sent.status, 200);
    ck_assert_str_eq(sent.body, HELLO);
    serve(METHOD_GET, "/link_out", NULL);
    ck_assert_int_eq(sent.status, 404);
    serve(METHOD_GET, "/link_up", NULL);
    ck_assert_int_eq(sent.status, 404);
    serve(METHOD_GET, "/abs_dir/x.txt", NULL);
    ck_assert_int_eq(sent.status, 404);
    serve(METHOD_GET, "/abs_dir/", NULL);
    ck_assert_int_eq(sent.status, 404);
}
END_TEST

/* ---- directories ---- */

START_TEST(test_directory_redirects)
{
    serve(METHOD_GET, "/sub", NULL);
    ck_assert_int_eq(sent.status, 301);
    ck_assert_str_eq(response_header("Location"), "/sub/");
    serve(METHOD_GET, "/sub?x=1&y", NULL);
    ck_assert_int_eq(sent.status, 301);
    ck_assert_str_eq(response_header("Location"), "/sub/?x=1&y");
    serve(METHOD_GET, "/a%20b", NULL);
    ck_assert_str_eq(response_header("Location"), "/a%20b/");
    /* rebuilt, not echoed: no protocol-relative "//sub/" */
    serve(METHOD_GET, "//sub", NULL);
    ck_assert_int_eq(sent.status, 301);
    ck_assert_str_eq(response_header("Location"), "/sub/");
    serve(METHOD_GET, "/noindex/../sub", NULL);
    ck_assert_str_eq(response_header("Location"), "/sub/");
}
END_TEST

START_TEST(test_directory_index)
{
    serve(METHOD_GET, "/sub/", NULL);
    ck_assert_int_eq(sent.status, 200);
    ck_assert_str_eq(sent.body, "<p>sub</p>");
    ck_assert_str_eq(response_header("Content-Type"), "text/html; charset=utf-8");
    serve(METHOD_GET, "/", NULL);
    ck_assert_int_eq(sent.status, 200);
    ck_assert_str_eq(sent.body, "<p>root</p>");
    serve(METHOD_GET, "/a%20b/", NULL);
    ck_assert_str_eq(sent.body, "<p>a b</p>");
    serve(METHOD_GET, "/noindex/", NULL); /* never a listing */
    ck_assert_int_eq(sent.status, 404);
}
END_TEST

START_TEST(test_route_prefix_stripped)
{
    use_route("/static");
    serve(METHOD_GET, "/static/hello.txt", NULL);
    ck_assert_int_eq(sent.status, 200);
    ck_assert_str_eq(sent.body, HELLO);
    serve(METHOD_GET, "/static/sub", NULL);
    ck_assert_str_eq(response_header("Location"), "/static/sub/");
    serve(METHOD_GET, "/static", NULL);
    ck_assert_int_eq(sent.status, 301);
    ck_assert_str_eq(response_header("Location"), "/static/");
    serve(METHOD_GET, "/static/", NULL);
    ck_assert_str_eq(sent.body, "<p>root</p>");
    /* Dot segments are resolved before routing, so this leaves the route:
     * it is "/secret.txt", which the "/static" route does not match. */
    const char *normal;
    size_t normal_len;
    ck_assert_int_eq(path_normalize_request(&arena, "/static/../secret.txt", 21, &normal,
                                            &normal_len), 0);
    ck_assert_str_eq(normal, "/secret.txt");
    ck_assert(!router_path_matches("/static", 7, normal, normal_len));
}
END_TEST

/* ---- conditionals ---- */

static char etag[64];

static void fetch_etag(void)
{
    serve(METHOD_GET, "/hello.txt", NULL);
    snprintf(etag, sizeof etag, "%s", response_header("ETag"));
}

START_TEST(test_if_none_match)
{
    fetch_etag();
    serve(METHOD_GET, "/hello.txt", "If-None-Match", etag, NULL);
    ck_assert_int_eq(sent.status, 304);
    ck_assert_int_eq(sent.kind, BODY_NONE);
    ck_assert_str_eq(response_header("ETag"), etag);
    ck_assert_ptr_nonnull(response_header("Last-Modified"));
    serve(METHOD_HEAD, "/hello.txt", "If-None-Match", "*", NULL);
    ck_assert_int_eq(sent.status, 304);
    char list[160];
    snprintf(list, sizeof list, "\"nope\", W/%s", etag); /* weak comparison */
    serve(METHOD_GET, "/hello.txt", "If-None-Match", list, NULL);
    ck_assert_int_eq(sent.status, 304);
    serve(METHOD_GET, "/hello.txt", "If-None-Match", "\"nope\"", NULL);
    ck_assert_int_eq(sent.status, 200);
    /* If-None-Match wins over If-Modified-Since (RFC 9110 13.2.2) */
    serve(METHOD_GET, "/hello.txt", "If-None-Match", "\"nope\"", "If-Modified-Since",
          "Sun, 06 Nov 1994 08:49:37 GMT", NULL);
    ck_assert_int_eq(sent.status, 200);
}
END_TEST

START_TEST(test_if_modified_since)
{
    serve(METHOD_GET, "/hello.txt", "If-Modified-Since", "Sun, 06 Nov 1994 08:49:37 GMT", NULL);
    ck_assert_int_eq(sent.status, 304);
    serve(METHOD_GET, "/hello.txt", "If-Modified-Since", "Sunday, 06-Nov-94 08:49:37 GMT", NULL);
    ck_assert_int_eq(sent.status, 304);
    serve(METHOD_GET, "/hello.txt", "If-Modified-Since", "Sun Nov  6 08:49:37 1994", NULL);
    ck_assert_int_eq(sent.status, 304);
    serve(METHOD_GET, "/hello.txt", "If-Modified-Since", "Mon, 07 Nov 1994 00:00:00 GMT", NULL);
    ck_assert_int_eq(sent.status, 304);
    serve(METHOD_GET, "/hello.txt", "If-Modified-Since", "Sun, 06 Nov 1994 08:49:36 GMT", NULL);
    ck_assert_int_eq(sent.status, 200);
    serve(METHOD_GET, "/hello.txt", "If-Modified-Since", "yesterday", NULL);
    ck_assert_int_eq(sent.status, 200);
    serve(METHOD_GET, "/hello.txt", "If-Modified-Since", "Sun, 06 Foo 1994 08:49:37 GMT", NULL);
    ck_assert_int_eq(sent.status, 200);
}
END_TEST

/* timegm's -1 is a real second, not an error (found by fuzz_conditional). */
START_TEST(test_http_date_a_second_before_the_epoch)
{
    time_t t = 0;
    ck_assert(http_date_parse("Wed, 31 Dec 1969 23:59:59 GMT", 29, &t));
    ck_assert_int_eq((long long)t, -1);
}
END_TEST

START_TEST(test_if_match)
{
    fetch_etag();
    serve(METHOD_GET, "/hello.txt", "If-Match", "\"nope\"", NULL);
    ck_assert_int_eq(sent.status, 412);
    serve(METHOD_GET, "/hello.txt", "If-Match", etag, NULL);
    ck_assert_int_eq(sent.status, 200);
    char weak[80];
    snprintf(weak, sizeof weak, "W/%s", etag); /* strong comparison fails */
    serve(METHOD_GET, "/hello.txt", "If-Match", weak, NULL);
    ck_assert_int_eq(sent.status, 412);
    serve(METHOD_GET, "/hello.txt", "If-Unmodified-Since", "Sat, 05 Nov 1994 00:00:00 GMT",
          NULL);
    ck_assert_int_eq(sent.status, 412);
    serve(METHOD_GET, "/hello.txt", "If-Unmodified-Since", "Sun, 06 Nov 1994 08:49:37 GMT",
          NULL);
    ck_assert_int_eq(sent.status, 200);
}
END_TEST

/* ---- ranges ---- */

static void assert_range(const char *range, const char *body, const char *content_range)
{
    serve(METHOD_GET, "/hello.txt", "Range", range, NULL);
    ck_assert_msg(sent.status == 206, "%s: %d", range, sent.status);
    ck_assert_str_eq(sent.body, body);
    ck_assert_uint_eq(sent.len, strlen(body));
    ck_assert_str_eq(response_header("Content-Range"), content_range);
}

static void assert_whole(const char *range)
{
    serve(METHOD_GET, "/hello.txt", "Range", range, NULL);
    ck_assert_msg(sent.status == 200, "%s: %d", range, sent.status);
    ck_assert_uint_eq(sent.len, strlen(HELLO));
    ck_assert_ptr_null(response_header("Content-Range"));
}

START_TEST(test_range)
{
    assert_range("bytes=0-4", "hello", "bytes 0-4/12");
    assert_range("bytes=6-", "world\n", "bytes 6-11/12");
    assert_range("bytes=-6", "world\n", "bytes 6-11/12");
    assert_range("bytes=-100", HELLO, "bytes 0-11/12");
    assert_range("bytes=6-1000", "world\n", "bytes 6-11/12");
    assert_range(" BYTES=0-0 ", "h", "bytes 0-0/12"); /* unit is case-insensitive */
    assert_range("bytes=11-99999999999999999999999", "\n", "bytes 11-11/12");
    /* one range left of several: the others select nothing */
    assert_range("bytes=0-4, 100-200", "hello", "bytes 0-4/12");
    assert_range("bytes=-0,6-", "world\n", "bytes 6-11/12");
    assert_range("bytes=, 0-4 ,", "hello", "bytes 0-4/12"); /* empty list elements */
}
END_TEST

START_TEST(test_range_ignored)
{
    assert_whole("bytes=0-11,0-0");  /* more bytes than the file: overlap, sent whole */
    assert_whole("bytes=0-6,3-8");
    assert_whole("bytes=0-4,x");     /* a bad spec anywhere ignores the field */
    assert_whole("bytes=5-2");     /* invalid: last < first */
    assert_whole("bytes=x-");
    assert_whole("bytes=");
    assert_whole("bytes=-");
    assert_whole("items=0-4");
    assert_whole("bytes=0-4x");
    serve(METHOD_HEAD, "/hello.txt", "Range", "bytes=0-4", NULL);
    ck_assert_int_eq(sent.status, 200); /* Range is for GET only */
}
END_TEST

START_TEST(test_range_unsatisfiable)
{
    const char *ranges[] = {"bytes=12-", "bytes=100-200", "bytes=-0",
                            "bytes=99999999999999999999999-", "bytes=12-,100-200,-0"};
    for (size_t i = 0; i < sizeof ranges / sizeof ranges[0]; i++) {
        serve(METHOD_GET, "/hello.txt", "Range", ranges[i], NULL);
        ck_assert_msg(sent.status == 416, "%s: %d", ranges[i], sent.status);
        ck_assert_str_eq(response_header("Content-Range"), "bytes */12");
    }
}
END_TEST

START_TEST(test_if_range)
{
    fetch_etag();
    serve(METHOD_GET, "/hello.txt", "Range", "bytes=0-4", "If-Range", etag, NULL);
    ck_assert_int_eq(sent.status, 206);
    serve(METHOD_GET, "/hello.txt", "Range", "bytes=0-4", "If-Range", "\"old\"", NULL);
    ck_assert_int_eq(sent.status, 200);
    serve(METHOD_GET, "/hello.txt", "Range", "bytes=0-4", "If-Range",
          "Sun, 06 Nov 1994 08:49:37 GMT", NULL);
    ck_assert_int_eq(sent.status, 206);
    serve(METHOD_GET, "/hello.txt", "Range", "bytes=0-4", "If-Range",
          "Mon, 07 Nov 1994 08:49:37 GMT", NULL);
    ck_assert_int_eq(sent.status, 200);
}
END_TEST

/* ---- lifecycle ---- */

START_TEST(test_init_missing_root)
{
    struct route r = route;
    struct route_static missing = {.root = "/nonexistent/saker-root"};
    r.handler_config = &missing;
    void *s = NULL;
    struct err err;
    ck_assert_int_eq(handler_static_ops.init(&r, &s, &err), SK_ERROR);
    ck_assert_ptr_nonnull(strstr(err.message, "/nonexistent/saker-root"));
    ck_assert_ptr_null(s);
}
END_TEST

static Suite *handler_static_suite(void)
{
    Suite *s = suite_create("handler_static");
    TCase *tc = tcase_create("serve");
    tcase_add_checked_fixture(tc, tree_setup, tree_teardown);
    tcase_add_test(tc, test_get_file);
    tcase_add_test(tc, test_head_sets_file_for_length);
    tcase_add_test(tc, test_empty_file);
    tcase_add_test(tc, test_method_not_allowed);
    tcase_add_test(tc, test_not_found);
    tcase_add_test(tc, test_fifo_is_not_served);
    tcase_add_test(tc, test_unreadable_is_forbidden);
    tcase_add_test(tc, test_bad_paths);
    tcase_add_test(tc, test_symlinks);
    tcase_add_test(tc, test_directory_redirects);
    tcase_add_test(tc, test_directory_index);
    tcase_add_test(tc, test_route_prefix_stripped);
    tcase_add_test(tc, test_if_none_match);
    tcase_add_test(tc, test_if_modified_since);
    tcase_add_test(tc, test_http_date_a_second_before_the_epoch);
    tcase_add_test(tc, test_if_match);
    tcase_add_test(tc, test_range);
    tcase_add_test(tc, test_range_ignored);
    tcase_add_test(tc, test_range_unsatisfiable);
    tcase_add_test(tc, test_if_range);
    tcase_add_test(tc, test_init_missing_root);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return unit_run(handler_static_suite());
}
