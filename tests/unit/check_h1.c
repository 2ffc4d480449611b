/*
 * check_h1.c - worker/h1.c fed raw bytes, without sockets or an event loop:
 * keep-alive, pipelining order, HEAD, HTTP/1.0, bodies, and every refusal
 * with its status, its counter and the connection closing.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "shm/shm_layout.h"
#include "conf/route_return.h"
#include "worker/h1.h"
#include "worker/worker.h"
#include "tests/unit/unit.h"

#define SHM_REJECT_COUNTER_NONE SHM_COUNTER_COUNT /* a refusal that is not counted */

static struct config config;
static struct route routes[2];
static struct worker worker;
static struct shm_slot slot;
static struct outq out;
static struct h1 h1;
static char text[1 << 20];

static void setup(void)
{
    memset(&config, 0, sizeof config);
    memset(routes, 0, sizeof routes);
    memset(&slot, 0, sizeof slot);
    config.limits = (struct config_limits){
        .max_request_body_size = 1000,
        .max_request_line_size = 8192,
        .max_request_headers_total_size = 32768,
        .max_request_header_count = 100,
        .keep_alive_timeout_ms = 120000,
        .request_headers_timeout_ms = 30000,
    };
    static struct config_header type = {"Content-Type", "text/plain", 12, 10};
    static struct route_return hello = {.status = 200, .headers = &type, .header_count = 1,
                                        .body = "Hello, World!", .body_len = 13};
    static struct route_return empty = {.status = 204, .body = "", .body_len = 0};
    routes[0] = (struct route){.path = "/plaintext", .path_len = 10,
                               .handler = &route_return_schema, .handler_config = &hello};
    routes[1] = (struct route){.path = "/empty", .path_len = 6,
                               .handler = &route_return_schema, .handler_config = &empty};
    config.routes = routes;
    config.route_count = 2;
    struct err err;
    ck_assert_int_eq(worker_init_core(&worker, &config, &err), SK_OK);
    worker.slot = &slot;
    outq_init(&out);
    h1_init(&h1, &worker, &out);
}

static void teardown(void)
{
    h1_destroy(&h1);
    outq_clear(&out);
    worker_destroy_core(&worker);
}

/* Everything queued so far, as text (file segments are not used here). */
static const char *output(void)
{
    size_t n = 0;
    for (size_t i = out.head; i < out.count; i++) {
        const struct outq_segment *s = &out.segments[i];
        const char *p = s->kind == OUTQ_COPY ? out.buffer + s->offset : s->ptr;
        memcpy(text + n, p, s->len);
        n += s->len;
    }
    text[n] = '\0';
    return text;
}

static enum h1_result feed(const char *bytes) { return h1_feed(&h1, bytes, strlen(bytes)); }

static int count_of(const char *haystack, const char *needle)
{
    int n = 0;
    for (const char *p = haystack; (p = strstr(p, needle)) != NULL; p++)
        n++;
    return n;
}

static uint64_t counter(enum shm_counter c) { return slot.counters[c]; }

START_TEST(get_is_answered_and_connection_kept)
{
    ck_assert_int_eq(feed("GET /plaintext HTTP/1.1\r\nHost: a\r\n\r\n"), H1_CONTINUE);
    const char *o = output();
    ck_assert_msg(strncmp(o, "HTTP/1.1 200 OK\r\n", 17) == 0, "%s", o);
    ck_assert_ptr_nonnull(strstr(o, "\r\nServer: saker\r\n"));
    ck_assert_ptr_nonnull(strstr(o, "\r\nDate: "));
    ck_assert_ptr_nonnull(strstr(o, "\r\nContent-Type: text/plain\r\n"));
    ck_assert_ptr_nonnull(strstr(o, "\r\nContent-Length: 13\r\n\r\nHello, World!"));
    ck_assert_ptr_null(strstr(o, "Connection:"));
    ck_assert(h1_idle(&h1));
    ck_assert_uint_eq(counter(SHM_REQUESTS), 1);
    ck_assert_uint_eq(counter(SHM_RESPONSES_2XX), 1);
}
END_TEST

START_TEST(pipelined_requests_are_answered_in_order)
{
    char batch[4096] = "";
    for (int i = 0; i < 10; i++)
        strcat(batch, i % 2 ? "GET /missing HTTP/1.1\r\nHost: a\r\n\r\n"
                            : "GET /plaintext HTTP/1.1\r\nHost: a\r\n\r\n");
    ck_assert_int_eq(feed(batch), H1_CONTINUE);
    const char *o = output();
    ck_assert_int_eq(count_of(o, "HTTP/1.1 "), 10);
    const char *p = o;
    for (int i = 0; i < 10; i++) {
        p = strstr(p, "HTTP/1.1 ");
        ck_assert_msg(strncmp(p, i % 2 ? "HTTP/1.1 404" : "HTTP/1.1 200", 12) == 0,
                      "response %d out of order", i);
        p++;
    }
    ck_assert_uint_eq(counter(SHM_RESPONSES_4XX), 5);
}
END_TEST

START_TEST(byte_by_byte_input_gives_the_same_response)
{
    const char *req = "GET /plaintext?x=1 HTTP/1.1\r\nHost: example.com:8080\r\nAccept: */*\r\n\r\n";
    for (size_t i = 0; req[i]; i++)
        ck_assert_int_eq(h1_feed(&h1, req + i, 1), H1_CONTINUE);
    ck_assert_ptr_nonnull(strstr(output(), "Hello, World!"));
}
END_TEST

START_TEST(head_has_length_but_no_body)
{
    feed("HEAD /plaintext HTTP/1.1\r\nHost: a\r\n\r\n");
    const char *o = output();
    ck_assert_ptr_nonnull(strstr(o, "Content-Length: 13\r\n\r\n"));
    ck_assert_ptr_null(strstr(o, "Hello"));
}
END_TEST

START_TEST(no_content_has_no_length)
{
    feed("GET /empty HTTP/1.1\r\nHost: a\r\n\r\n");
    ck_assert_ptr_nonnull(strstr(output(), "HTTP/1.1 204 No Content\r\n"));
    ck_assert_ptr_null(strstr(output(), "Content-Length"));
}
END_TEST

START_TEST(http10_closes_unless_asked_to_keep_alive)
{
    ck_assert_int_eq(feed("GET /plaintext HTTP/1.0\r\n\r\n"), H1_CLOSE);
    ck_assert_ptr_nonnull(strstr(output(), "Connection: close\r\n"));
}
END_TEST

START_TEST(http10_keep_alive_is_honoured)
{
    ck_assert_int_eq(feed("GET /plaintext HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"),
                     H1_CONTINUE);
    ck_assert_ptr_nonnull(strstr(output(), "Connection: keep-alive\r\n"));
}
END_TEST

START_TEST(connection_close_is_honoured)
{
    ck_assert_int_eq(feed("GET /plaintext HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
                          "GET /plaintext HTTP/1.1\r\nHost: a\r\n\r\n"),
                     H1_CLOSE);
    ck_assert_int_eq(count_of(output(), "HTTP/1.1 200"), 1); /* nothing after close */
    ck_assert_ptr_nonnull(strstr(output(), "Connection: close\r\n"));
}
END_TEST

START_TEST(content_length_body_split_across_reads)
{
    ck_assert_int_eq(feed("POST /plaintext HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n01234"),
                     H1_CONTINUE);
    ck_assert(!h1_idle(&h1));
    ck_assert_int_eq(feed("56789GET /plaintext HTTP/1.1\r\nHost: a\r\n\r\n"), H1_CONTINUE);
    ck_assert_int_eq(count_of(output(), "HTTP/1.1 200"), 2);
    ck_assert(h1_idle(&h1));
}
END_TEST

START_TEST(chunked_body_then_next_request)
{
    ck_assert_int_eq(feed("POST /plaintext HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                          "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
                          "GET /plaintext HTTP/1.1\r\nHost: a\r\n\r\n"),
                     H1_CONTINUE);
    ck_assert_int_eq(count_of(output(), "HTTP/1.1 200"), 2);
}
END_TEST

START_TEST(unknown_path_is_404)
{
    feed("GET /nothing-here HTTP/1.1\r\nHost: a\r\n\r\n");
    ck_assert_ptr_nonnull(strstr(output(), "HTTP/1.1 404 Not Found\r\n"));
}
END_TEST

START_TEST(unanswered_upgrade_stays_http)
{
    ck_assert_int_eq(feed("GET /plaintext HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\n"
                          "Upgrade: websocket\r\n\r\n"
                          "GET /plaintext HTTP/1.1\r\nHost: a\r\n\r\n"),
                     H1_CONTINUE);
    ck_assert_int_eq(count_of(output(), "HTTP/1.1 200"), 2);
}
END_TEST

/* Each refusal: the request bytes, the status line, the counter. */
struct refusal {
    const char *request;
    const char *status_line;
    enum shm_counter counter;
};

static const struct refusal refusals[] = {
    {"GET /plaintext HTTP/1.1\r\n\r\n", "HTTP/1.1 400 ", SHM_REJECT_MALFORMED},
    {"GET /plaintext HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", "HTTP/1.1 400 ", SHM_REJECT_MALFORMED},
    {"GET /plaintext HTTP/1.1\r\nHost: a b\r\n\r\n", "HTTP/1.1 400 ", SHM_REJECT_MALFORMED},
    {"POST /plaintext HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
     "HTTP/1.1 400 ", SHM_REJECT_MALFORMED},
    {"POST /plaintext HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
     "HTTP/1.1 400 ", SHM_REJECT_MALFORMED},
    {"POST /plaintext HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", "HTTP/1.1 400 ",
     SHM_REJECT_MALFORMED},
    {"POST /plaintext HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", "HTTP/1.1 400 ",
     SHM_REJECT_MALFORMED},
    {"POST /plaintext HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "HTTP/1.1 400 ",
     SHM_REJECT_MALFORMED},
    {"GET /plaintext HTTP/1.1\nHost: a\n\n", "HTTP/1.1 400 ", SHM_REJECT_MALFORMED},
    {"GET /plaintext HTTP/1.1\r\nHost: a\r\nX-A: 1\r\n  folded\r\n\r\n", "HTTP/1.1 400 ",
     SHM_REJECT_MALFORMED},
    {"GET /plaintext HTTP/1.1\r\nHost : a\r\n\r\n", "HTTP/1.1 400 ", SHM_REJECT_MALFORMED},
    {"GET /plaintext HTTP/1.1\r\nHost: a\r\nX-A: b\x01\r\n\r\n", "HTTP/1.1 400 ", SHM_REJECT_MALFORMED},
    {"G@T /plaintext HTTP/1.1\r\nHost: a\r\n\r\n", "HTTP/1.1 400 ", SHM_REJECT_MALFORMED},
    {"GET /plain text HTTP/1.1\r\nHost: a\r\n\r\n", "HTTP/1.1 400 ", SHM_REJECT_MALFORMED},
    {"GET /plaintext HTTP/9.1\r\nHost: a\r\n\r\n", "HTTP/1.1 505 ", SHM_REJECT_MALFORMED},
    {"GET /plaintext HTTP/2.0\r\nHost: a\r\n\r\n", "HTTP/1.1 505 ", SHM_REJECT_MALFORMED},
    {"GET /plaintext HTTP/0.9\r\nHost: a\r\n\r\n", "HTTP/1.1 505 ", SHM_REJECT_MALFORMED},
    /* Methods llhttp does not know, in a well-formed request line: 501. */
    {"BREW /plaintext HTTP/1.1\r\nHost: a\r\n\r\n", "HTTP/1.1 501 ", SHM_REJECT_MALFORMED},
    {"FOO /plaintext HTTP/1.1\r\nHost: a\r\n\r\n", "HTTP/1.1 501 ", SHM_REJECT_MALFORMED},
    {"GE /plaintext HTTP/1.1\r\nHost: a\r\n\r\n", "HTTP/1.1 501 ", SHM_REJECT_MALFORMED},
    {"get /plaintext HTTP/1.1\r\nHost: a\r\n\r\n", "HTTP/1.1 501 ", SHM_REJECT_MALFORMED},
    {" /plaintext HTTP/1.1\r\nHost: a\r\n\r\n", "HTTP/1.1 400 ", SHM_REJECT_MALFORMED},
    {"FOO /plain text HTTP/1.1\r\nHost: a\r\n\r\n", "HTTP/1.1 400 ", SHM_REJECT_MALFORMED},
    {"FOO /plaintext HTTP/1.1\nHost: a\r\n\r\n", "HTTP/1.1 400 ", SHM_REJECT_MALFORMED},
    /* CONNECT takes an authority-form target, and saker is no proxy. */
    {"CONNECT /plaintext HTTP/1.1\r\nHost: a\r\n\r\n", "HTTP/1.1 400 ", SHM_REJECT_MALFORMED},
    {"CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n", "HTTP/1.1 400 ", SHM_REJECT_MALFORMED},
    /* A coding before the final chunked that saker does not decode: 501. */
    {"POST /plaintext HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
     "HTTP/1.1 501 ", SHM_REJECT_MALFORMED},
    {"POST /plaintext HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n"
     "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "HTTP/1.1 501 ", SHM_REJECT_MALFORMED},
    {"POST /plaintext HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
     "HTTP/1.1 400 ", SHM_REJECT_MALFORMED},
    /* Every chunk delimiter is a CRLF: after the size, after the data, at
     * the last chunk and after the trailer section. What follows a bad
     * one (a request hidden in what a lenient front end reads as chunk
     * data) is never answered. */
    {"POST /plaintext HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
     "1\r\nA\nGET /plaintext HTTP/1.1\r\nHost: a\r\n\r\n", "HTTP/1.1 400 ", SHM_REJECT_MALFORMED},
    {"POST /plaintext HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
     "1\r\nA\r0\r\n\r\n", "HTTP/1.1 400 ", SHM_REJECT_MALFORMED},
    {"POST /plaintext HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
     "1\r\nAxx0\r\n\r\n", "HTTP/1.1 400 ", SHM_REJECT_MALFORMED},
    {"POST /plaintext HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
     "1\r\nA0\r\n\r\n", "HTTP/1.1 400 ", SHM_REJECT_MALFORMED},
    {"POST /plaintext HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
     "1\nA\r\n0\r\n\r\n", "HTTP/1.1 400 ", SHM_REJECT_MALFORMED},
    {"POST /plaintext HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
     "1\rA\r\n0\r\n\r\n", "HTTP/1.1 400 ", SHM_REJECT_MALFORMED},
    {"POST /plaintext HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
     "0\n\r\n", "HTTP/1.1 400 ", SHM_REJECT_MALFORMED},
    {"POST /plaintext HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
     "0\r\n\nGET /plaintext HTTP/1.1\r\nHost: a\r\n\r\n", "HTTP/1.1 400 ", SHM_REJECT_MALFORMED},
    {"POST /plaintext HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
     "0\r\n\rXGET /plaintext HTTP/1.1\r\nHost: a\r\n\r\n", "HTTP/1.1 400 ", SHM_REJECT_MALFORMED},
    {"POST /plaintext HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
     "0\r\nX: y\n\r\n", "HTTP/1.1 400 ", SHM_REJECT_MALFORMED},
    {"POST /plaintext HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
     "0\r\nX: y\r\n\n", "HTTP/1.1 400 ", SHM_REJECT_MALFORMED},
    {"POST /plaintext HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
     "0\r\nX : y\r\n\r\n", "HTTP/1.1 400 ", SHM_REJECT_MALFORMED},
    {"POST /plaintext HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
     "0\r\nX: y\r\n z\r\n\r\n", "HTTP/1.1 400 ", SHM_REJECT_MALFORMED},
    {"GET /../../etc/passwd HTTP/1.1\r\nHost: a\r\n\r\n", "HTTP/1.1 40", SHM_REJECT_MALFORMED},
    {"GET /a%00b HTTP/1.1\r\nHost: a\r\n\r\n", "HTTP/1.1 400 ", SHM_REJECT_MALFORMED},
    {"POST /plaintext HTTP/1.1\r\nHost: a\r\nContent-Length: 1001\r\n\r\n", "HTTP/1.1 413 ",
     SHM_REJECT_BODY_TOO_LARGE},
    {"GET /plaintext HTTP/1.1\r\nHost: a\r\nExpect: teapot\r\n\r\n", "HTTP/1.1 417 ",
     SHM_REJECT_COUNTER_NONE},
    /* What llhttp 8 lets through and the strict head grammar refuses. */
    {"GET /plaintext HTTP/1.1\nHost: a\r\n\r\n", "HTTP/1.1 400 ", SHM_REJECT_MALFORMED},
    {"GET /plaintext HTTP/1.1\r\nHost: a\r\n\n", "HTTP/1.1 400 ", SHM_REJECT_MALFORMED},
    {"GET /plaintext HTTP/1.1\rHost: a\r\n\r\n", "HTTP/1.1 400 ", SHM_REJECT_MALFORMED},
    {"GET  /plaintext HTTP/1.1\r\nHost: a\r\n\r\n", "HTTP/1.1 400 ", SHM_REJECT_MALFORMED},
    {"GET /plaintext\r\n\r\n", "HTTP/1.1 400 ", SHM_REJECT_MALFORMED},
    {"GET /plaintext HTTP/1.1\r\nHost: a\r\nX Y: b\r\n\r\n", "HTTP/1.1 400 ",
     SHM_REJECT_MALFORMED},
    {"GET /plaintext HTTP/1.1\r\nHost: a\r\n: b\r\n\r\n", "HTTP/1.1 400 ", SHM_REJECT_MALFORMED},
    {"GET /plaintext HTTP/1.1\r\nHost: a\r\nX: a\x7f\r\n\r\n", "HTTP/1.1 400 ",
     SHM_REJECT_MALFORMED},
    {"POST /plaintext HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n",
     "HTTP/1.1 400 ", SHM_REJECT_MALFORMED},
    {"POST /plaintext HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "HTTP/1.1 400 ",
     SHM_REJECT_MALFORMED},
    {"POST /plaintext HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
     "Transfer-Encoding: cow\r\n\r\n0\r\n\r\n", "HTTP/1.1 400 ", SHM_REJECT_MALFORMED},
    {"GET /plaintext#top HTTP/1.1\r\nHost: a\r\n\r\n", "HTTP/1.1 400 ", SHM_REJECT_MALFORMED},
    {"GET /caf\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n", "HTTP/1.1 400 ", SHM_REJECT_MALFORMED},
    {"GET * HTTP/1.1\r\nHost: a\r\n\r\n", "HTTP/1.1 400 ", SHM_REJECT_MALFORMED},
    {"GET plaintext HTTP/1.1\r\nHost: a\r\n\r\n", "HTTP/1.1 400 ", SHM_REJECT_MALFORMED},
    {"GET http://b/plaintext HTTP/1.1\r\nHost: a\r\n\r\n", "HTTP/1.1 400 ", SHM_REJECT_MALFORMED},
    {"GET http://u@a/plaintext HTTP/1.1\r\nHost: a\r\n\r\n", "HTTP/1.1 400 ",
     SHM_REJECT_MALFORMED},
    {"GET /plaintext HTTP/1.1\r\nHost: u@a\r\n\r\n", "HTTP/1.1 400 ", SHM_REJECT_MALFORMED},
    {"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "HTTP/1.1 505 ", SHM_REJECT_MALFORMED},
};

START_TEST(refused_requests_get_their_status_and_close)
{
    const struct refusal *r = &refusals[_i];
    ck_assert_int_eq(feed(r->request), H1_CLOSE);
    const char *o = output();
    ck_assert_msg(strncmp(o, r->status_line, strlen(r->status_line)) == 0,
                  "request %d: got %.40s", _i, o);
    ck_assert_ptr_nonnull(strstr(o, "Connection: close\r\n"));
    if (r->counter != SHM_REJECT_COUNTER_NONE)
        ck_assert_uint_eq(counter(r->counter), 1);
    /* Nothing more is answered on this connection. */
    ck_assert_int_eq(feed("GET /plaintext HTTP/1.1\r\nHost: a\r\n\r\n"), H1_CLOSE);
    ck_assert_int_eq(count_of(output(), "HTTP/1.1 "), 1);
}
END_TEST

/* RFC 9110 section 6.2: a later minor version is served as the highest
 * 1.x this server speaks. */
START_TEST(http12_is_served_as_http11)
{
    ck_assert_int_eq(feed("GET /plaintext HTTP/1.2\r\nHost: a\r\n\r\n"
                          "GET /plaintext HTTP/1.9\r\nHost: a\r\n\r\n"), H1_CONTINUE);
    const char *o = output();
    ck_assert_int_eq(count_of(o, "HTTP/1.1 200 OK\r\n"), 2);
    ck_assert_ptr_null(strstr(o, "Connection: close"));
}
END_TEST

/* The trailer section is checked in whichever reads it arrives. */
START_TEST(trailer_split_across_reads_is_checked)
{
    ck_assert_int_eq(feed("POST /plaintext HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                          "1\r\nA\r\n0\r\nX-A: 1\r"),
                     H1_CONTINUE);
    ck_assert_int_eq(feed("\nX-B: 2\r\n\r\nPOST /plaintext HTTP/1.1\r\nHost: a\r\n"
                          "Transfer-Encoding: chunked\r\n\r\n0\r\nX-A: 1\r\n"),
                     H1_CONTINUE);
    ck_assert_int_eq(feed("\n"), H1_CLOSE);
    const char *o = output();
    ck_assert_msg(strncmp(o, "HTTP/1.1 200 ", 13) == 0, "%.40s", o);
    ck_assert_ptr_nonnull(strstr(o, "HTTP/1.1 400 "));
    ck_assert_int_eq(count_of(o, "HTTP/1.1 "), 2);
}
END_TEST

START_TEST(long_request_line_is_414)
{
    static char req[10000];
    strcpy(req, "GET /");
    memset(req + 5, 'a', 9000);
    strcpy(req + 9005, " HTTP/1.1\r\nHost: a\r\n\r\n");
    ck_assert_int_eq(feed(req), H1_CLOSE);
    ck_assert_msg(strncmp(output(), "HTTP/1.1 414 ", 13) == 0, "%.40s", output());
    ck_assert_uint_eq(counter(SHM_REJECT_REQUEST_LINE_TOO_LONG), 1);
}
END_TEST

START_TEST(large_headers_are_431)
{
    static char req[40000];
    strcpy(req, "GET /plaintext HTTP/1.1\r\nHost: a\r\nX-Big: ");
    size_t n = strlen(req);
    memset(req + n, 'b', 33000);
    strcpy(req + n + 33000, "\r\n\r\n");
    ck_assert_int_eq(feed(req), H1_CLOSE);
    ck_assert_msg(strncmp(output(), "HTTP/1.1 431 ", 13) == 0, "%.40s", output());
    ck_assert_uint_eq(counter(SHM_REJECT_HEADERS_TOO_LARGE), 1);
}
END_TEST

START_TEST(too_many_headers_are_431)
{
    static char req[8000];
    strcpy(req, "GET /plaintext HTTP/1.1\r\nHost: a\r\n");
    for (int i = 0; i < 101; i++)
        sprintf(req + strlen(req), "X-%d: v\r\n", i);
    strcat(req, "\r\n");
    ck_assert_int_eq(feed(req), H1_CLOSE);
    ck_assert_msg(strncmp(output(), "HTTP/1.1 431 ", 13) == 0, "%.40s", output());
    ck_assert_uint_eq(counter(SHM_REJECT_TOO_MANY_HEADERS), 1);
}
END_TEST

START_TEST(endless_whitespace_in_the_head_is_bounded)
{
    static char chunk[8192];
    ck_assert_int_eq(feed("GET /plaintext HTTP/1.1\r\nHost: a\r\nX-A:"), H1_CONTINUE);
    memset(chunk, ' ', sizeof chunk - 1);
    enum h1_result r = H1_CONTINUE;
    for (int i = 0; i < 100 && r == H1_CONTINUE; i++)
        r = feed(chunk);
    ck_assert_int_eq(r, H1_CLOSE);
    ck_assert_msg(strncmp(output(), "HTTP/1.1 431 ", 13) == 0, "%.40s", output());
}
END_TEST

START_TEST(many_small_pipelined_requests_are_not_mistaken_for_a_big_head)
{
    static char batch[65536];
    batch[0] = '\0';
    size_t n = 0;
    const char *req = "GET /plaintext HTTP/1.1\r\nHost: a\r\n\r\n";
    while (n + strlen(req) < 60000) {
        memcpy(batch + n, req, strlen(req));
        n += strlen(req);
    }
    memcpy(batch + n, "GET /plaint", 11); /* the last one cut short */
    batch[n + 11] = '\0';
    ck_assert_int_eq(feed(batch), H1_CONTINUE);
    ck_assert_int_eq(feed("ext HTTP/1.1\r\nHost: a\r\n\r\n"), H1_CONTINUE);
    ck_assert_int_eq(count_of(output(), "HTTP/1.1 200"), (int)(n / strlen(req)) + 1);
}
END_TEST

START_TEST(chunked_body_over_the_limit_closes)
{
    feed("POST /plaintext HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n");
    static char chunk[700];
    memset(chunk, 'x', sizeof chunk);
    char head[16];
    enum h1_result r = H1_CONTINUE;
    for (int i = 0; i < 3 && r == H1_CONTINUE; i++) {
        snprintf(head, sizeof head, "%zx\r\n", sizeof chunk);
        feed(head);
        r = h1_feed(&h1, chunk, sizeof chunk);
        if (r == H1_CONTINUE)
            r = feed("\r\n");
    }
    ck_assert_int_eq(r, H1_CLOSE);
    ck_assert_uint_eq(counter(SHM_REJECT_BODY_TOO_LARGE), 1);
}
END_TEST

START_TEST(head_timeout_answers_408)
{
    feed("GET /plaintext HTTP/1.1\r\nHost: a\r\n");
    ck_assert(h1_reading_head(&h1));
    h1_timeout(&h1);
    ck_assert_msg(strncmp(output(), "HTTP/1.1 408 ", 13) == 0, "%.40s", output());
    ck_assert_uint_eq(counter(SHM_REJECT_HEADERS_TIMEOUT), 1);
}
END_TEST

START_TEST(head_split_byte_by_byte_is_still_checked)
{
    const char *req = "GET /plaintext HTTP/1.1\r\nHost: a\r\nX Y: b\r\n\r\n";
    enum h1_result r = H1_CONTINUE;
    for (size_t i = 0; req[i] && r == H1_CONTINUE; i++)
        r = h1_feed(&h1, req + i, 1);
    ck_assert_int_eq(r, H1_CLOSE);
    ck_assert_msg(strncmp(output(), "HTTP/1.1 400 ", 13) == 0, "%.40s", output());
}
END_TEST

START_TEST(options_asterisk_and_absolute_form)
{
    ck_assert_int_eq(feed("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n"
                          "GET http://a:80/plaintext?x HTTP/1.1\r\nHost: a:80\r\n\r\n"),
                     H1_CONTINUE);
    ck_assert_int_eq(count_of(output(), "HTTP/1.1 200 OK"), 2);
    ck_assert_ptr_nonnull(strstr(output(), "Allow: GET, HEAD, OPTIONS\r\n"));
    ck_assert_ptr_nonnull(strstr(output(), "Hello, World!"));
}
END_TEST

/* absolute-form: the authority is the host; a Host that names another
 * is a 400, as is an authority with userinfo. */
START_TEST(absolute_form_authority_must_match_host)
{
    ck_assert_int_eq(feed("GET http://a/plaintext HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"),
                     H1_CONTINUE);
    ck_assert_ptr_nonnull(strstr(output(), "HTTP/1.1 200 OK"));
    ck_assert_int_eq(feed("GET http://u@a/plaintext HTTP/1.1\r\nHost: u@a\r\n\r\n"), H1_CLOSE);
    ck_assert_ptr_nonnull(strstr(output(), "HTTP/1.1 400 "));
}
END_TEST

START_TEST(other_host_than_the_authority_is_refused)
{
    ck_assert_int_eq(feed("GET http://a/plaintext HTTP/1.1\r\nHost: b\r\n\r\n"), H1_CLOSE);
    ck_assert_ptr_nonnull(strstr(output(), "HTTP/1.1 400 "));
    ck_assert_uint_eq(counter(SHM_REJECT_MALFORMED), 1);
}
END_TEST

START_TEST(allowed_hosts_refuse_others)
{
    char *hosts[] = {"example.com", "*.example.org"};
    config.allowed_hosts = hosts;
    config.allowed_host_count = 2;
    ck_assert_int_eq(feed("GET /plaintext HTTP/1.1\r\nHost: EXAMPLE.com:81\r\n\r\n"
                          "GET /plaintext HTTP/1.1\r\nHost: a.example.org\r\n\r\n"
                          "GET /plaintext HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"),
                     H1_CONTINUE);
    ck_assert_int_eq(count_of(output(), " 200 OK"), 3);
    ck_assert_int_eq(feed("GET /plaintext HTTP/1.1\r\nHost: example.org\r\n\r\n"), H1_CLOSE);
    ck_assert_ptr_nonnull(strstr(output(), "HTTP/1.1 400 "));
    ck_assert_uint_eq(counter(SHM_REJECT_HOST_NOT_ALLOWED), 1);
    config.allowed_host_count = 0;
}
END_TEST

START_TEST(route_body_limit_applies_before_the_body)
{
    routes[0].has_max_request_body_size = true;
    routes[0].max_request_body_size = 5;
    ck_assert_int_eq(feed("POST /plaintext HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n"
                          "12345"), H1_CONTINUE);
    ck_assert_int_eq(feed("POST /plaintext HTTP/1.1\r\nHost: a\r\nContent-Length: 6\r\n\r\n"),
                     H1_CLOSE);
    ck_assert_ptr_nonnull(strstr(output(), "HTTP/1.1 413 "));
    ck_assert_uint_eq(counter(SHM_REJECT_BODY_TOO_LARGE), 1);
}
END_TEST

START_TEST(endpoint_limits_replace_the_config_ones)
{
    struct config_limits small = config.limits;
    small.max_request_header_count = 1;
    h1_set_connection(&h1, NULL, &small, NULL);
    ck_assert_int_eq(feed("GET /plaintext HTTP/1.1\r\nHost: a\r\nX: 1\r\n\r\n"), H1_CLOSE);
    ck_assert_ptr_nonnull(strstr(output(), "HTTP/1.1 431 "));
}
END_TEST

START_TEST(slow_body_gets_408)
{
    uint64_t start, bytes;
    ck_assert(!h1_reading_body(&h1, &start, &bytes));
    feed("POST /plaintext HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\nabc");
    ck_assert(h1_reading_body(&h1, &start, &bytes));
    ck_assert_uint_eq(bytes, 3);
    ck_assert_uint_gt(start, 0);
    h1_body_too_slow(&h1);
    ck_assert_msg(strncmp(output(), "HTTP/1.1 408 ", 13) == 0, "%.40s", output());
    ck_assert_ptr_nonnull(strstr(output(), "Connection: close\r\n"));
    ck_assert_uint_eq(counter(SHM_REJECT_BODY_RATE), 1);
}
END_TEST

START_TEST(early_answer_drains_the_body_for_a_while)
{
    ck_assert_int_eq(feed("POST /plaintext HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n"
                          "Content-Length: 10\r\n\r\n"), H1_CONTINUE);
    ck_assert_int_eq(count_of(output(), "HTTP/1.1 200 OK"), 1); /* answered, no 100 */
    ck_assert_int_eq(count_of(output(), "100 Continue"), 0);
    uint64_t now = clock_now_monotonic_ms();
    ck_assert(!h1_body_expired(&h1, now));
    ck_assert(h1_body_expired(&h1, now + H1_BODY_DRAIN_MS + 1000));
    ck_assert_int_eq(feed("0123456789GET /plaintext HTTP/1.1\r\nHost: a\r\n\r\n"), H1_CONTINUE);
    ck_assert_int_eq(count_of(output(), "HTTP/1.1 200 OK"), 2);
    ck_assert(!h1_body_expired(&h1, now + H1_BODY_DRAIN_MS + 1000));
}
END_TEST

START_TEST(draining_worker_answers_with_close)
{
    worker.draining = true;
    ck_assert_int_eq(feed("GET /plaintext HTTP/1.1\r\nHost: a\r\n\r\n"), H1_CLOSE);
    ck_assert_ptr_nonnull(strstr(output(), "Connection: close\r\n"));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("h1");
    TCase *t = tcase_create("h1");
    tcase_add_checked_fixture(t, setup, teardown);
    tcase_add_test(t, get_is_answered_and_connection_kept);
    tcase_add_test(t, pipelined_requests_are_answered_in_order);
    tcase_add_test(t, byte_by_byte_input_gives_the_same_response);
    tcase_add_test(t, head_has_length_but_no_body);
    tcase_add_test(t, no_content_has_no_length);
    tcase_add_test(t, http10_closes_unless_asked_to_keep_alive);
    tcase_add_test(t, http10_keep_alive_is_honoured);
    tcase_add_test(t, connection_close_is_honoured);
    tcase_add_test(t, content_length_body_split_across_reads);
    tcase_add_test(t, chunked_body_then_next_request);
    tcase_add_test(t, unknown_path_is_404);
    tcase_add_test(t, unanswered_upgrade_stays_http);
    tcase_add_loop_test(t, refused_requests_get_their_status_and_close, 0,
                        sizeof refusals / sizeof refusals[0]);
    tcase_add_test(t, http12_is_served_as_http11);
    tcase_add_test(t, trailer_split_across_reads_is_checked);
    tcase_add_test(t, long_request_line_is_414);
    tcase_add_test(t, large_headers_are_431);
    tcase_add_test(t, too_many_headers_are_431);
    tcase_add_test(t, endless_whitespace_in_the_head_is_bounded);
    tcase_add_test(t, many_small_pipelined_requests_are_not_mistaken_for_a_big_head);
    tcase_add_test(t, chunked_body_over_the_limit_closes);
    tcase_add_test(t, head_timeout_answers_408);
    tcase_add_test(t, draining_worker_answers_with_close);
    tcase_add_test(t, head_split_byte_by_byte_is_still_checked);
    tcase_add_test(t, options_asterisk_and_absolute_form);
    tcase_add_test(t, absolute_form_authority_must_match_host);
    tcase_add_test(t, other_host_than_the_authority_is_refused);
    tcase_add_test(t, allowed_hosts_refuse_others);
    tcase_add_test(t, route_body_limit_applies_before_the_body);
    tcase_add_test(t, endpoint_limits_replace_the_config_ones);
    tcase_add_test(t, slow_body_gets_408);
    tcase_add_test(t, early_answer_drains_the_body_for_a_while);
    suite_add_tcase(s, t);
    return unit_run(s);
}
