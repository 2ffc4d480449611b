/*
 * check_h2.c - worker/h2.c driven by a real nghttp2 client session, bytes
 * passed by hand between the two, no socket and no event loop: responses
 * and their fields, many streams at once, file bodies sent as borrowed
 * ranges and their descriptors closed however the stream ends, the
 * high-water mark, refusals, a bad preface, GOAWAY, and an idle
 * session's buffers given back to the kernel.
 */
#include <check.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <nghttp2/nghttp2.h>

#include "shm/shm_layout.h"
#include "conf/route_return.h"
#include "conf/route_static.h"
#include "common/clock.h"
#include "worker/h2.h"
#include "worker/h2_stream.h"
#include "worker/outq.h"
#include "worker/worker.h"
#include "tests/unit/stream_client.h"
#include "tests/unit/unit.h"

#define MAX_STREAMS 128
#define BIG_FILE (10 * 1024 * 1024)

struct response {
    int status;
    char fields[2048]; /* "name: value\n"... */
    size_t fields_len;
    char *body;
    size_t body_len;
    size_t body_capacity;
    bool ended;
    int reset; /* -1: none */
};

static struct config config;
static struct route routes[2];
static struct worker worker;
static struct shm_slot slot;
static struct outq out;
static struct h2 *h2;
static nghttp2_session *client;
static struct response responses[MAX_STREAMS];
static int32_t goaway_last = -1;
static uint32_t goaway_code;
static char root[] = "/tmp/check_h2.XXXXXX";
static char wire[1 << 20];

static struct response *response_of(int32_t id) { return &responses[(id - 1) / 2 % MAX_STREAMS]; }

static int on_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                     void *u)
{
    (void)s, (void)flags, (void)u;
    struct response *r = response_of(f->hd.stream_id);
    if (namelen == 7 && memcmp(name, ":status", 7) == 0)
        r->status = atoi((const char *)value);
    else
        r->fields_len += (size_t)snprintf(r->fields + r->fields_len,
                                          sizeof r->fields - r->fields_len, "%.*s: %.*s\n",
                                          (int)namelen, name, (int)valuelen, value);
    return 0;
}

static int on_data(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *data,
                   size_t len, void *u)
{
    (void)s, (void)flags, (void)u;
    struct response *r = response_of(id);
    if (r->body_len + len > r->body_capacity) {
        /* Doubling: a 10 MB body comes in 16 KB frames, and a realloc per
         * frame (a copy each, under ASan) made the test quadratic. */
        r->body_capacity = (r->body_len + len) * 2;
        r->body = realloc(r->body, r->body_capacity);
    }
    memcpy(r->body + r->body_len, data, len);
    r->body_len += len;
    return 0;
}

static int on_frame(nghttp2_session *s, const nghttp2_frame *f, void *u)
{
    (void)s, (void)u;
    if (f->hd.type == NGHTTP2_GOAWAY) {
        goaway_last = f->goaway.last_stream_id;
        goaway_code = f->goaway.error_code;
    }
    if (f->hd.stream_id != 0 && (f->hd.flags & NGHTTP2_FLAG_END_STREAM) &&
        (f->hd.type == NGHTTP2_HEADERS || f->hd.type == NGHTTP2_DATA))
        response_of(f->hd.stream_id)->ended = true;
    if (f->hd.type == NGHTTP2_RST_STREAM)
        response_of(f->hd.stream_id)->reset = (int)f->rst_stream.error_code;
    return 0;
}

/* window: the client's stream window; below 64 KiB it is also never
 * replenished, so a response stops when it is used up. */
static void client_new(uint32_t window)
{
    client = h2_test_session(window, on_header, on_data, on_frame, NULL);
}

static void setup(void)
{
    memset(&config, 0, sizeof config);
    memset(&slot, 0, sizeof slot);
    memset(responses, 0, sizeof responses);
    for (int i = 0; i < MAX_STREAMS; i++)
        responses[i].reset = -1;
    goaway_last = -1;
    config.limits = (struct config_limits){
        .max_request_body_size = 1000,
        .max_request_line_size = 8192,
        .max_request_headers_total_size = 32768,
        .max_request_header_count = 10,
        .keep_alive_timeout_ms = 120000,
        .request_headers_timeout_ms = 30000,
        .http2 = {.max_streams_per_connection = 100, .header_table_size = 4096,
                  .max_frame_size = 16384, .max_request_header_field_size = 16384,
                  .initial_connection_window_size = 1 << 20,
                  .initial_stream_window_size = 768 * 1024},
    };
    strcpy(root, "/tmp/check_h2.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(root));
    char path[256];
    snprintf(path, sizeof path, "%s/big.bin", root);
    /* One write: ten million fputc calls cost seconds under ASan, in every
     * test's time limit. */
    char *big = malloc(BIG_FILE);
    ck_assert_ptr_nonnull(big);
    for (int i = 0; i < BIG_FILE; i++)
        big[i] = (char)('a' + i % 23);
    FILE *f = fopen(path, "w");
    ck_assert_int_eq(fwrite(big, 1, BIG_FILE, f), BIG_FILE);
    fclose(f);
    free(big);
    static struct config_header type = {"Content-Type", "text/plain", 12, 10};
    static struct route_return hello = {.status = 200, .headers = &type, .header_count = 1,
                                        .body = "Hello, World!", .body_len = 13};
    static struct route_static files = {.root = root};
    routes[0] = (struct route){.path = "/plaintext", .path_len = 10,
                               .handler = &route_return_schema, .handler_config = &hello};
    routes[1] = (struct route){.path = "/", .path_len = 1, .handler = &route_static_schema,
                               .handler_config = &files};
    config.routes = routes;
    config.route_count = 2;
    struct err err;
    ck_assert_int_eq(worker_init_core(&worker, &config, &err), SK_OK);
    worker.slot = &slot;
    outq_init(&out);
    struct h2_params p = {.worker = &worker, .out = &out, .limits = &config.limits};
    h2 = h2_new(&p);
    ck_assert_ptr_nonnull(h2);
    client_new(1u << 30);
}

static void teardown(void)
{
    h2_free(h2);
    outq_clear(&out);
    nghttp2_session_del(client);
    worker_destroy_core(&worker);
    for (int i = 0; i < MAX_STREAMS; i++)
        free(responses[i].body);
    char path[256];
    snprintf(path, sizeof path, "%s/big.bin", root);
    unlink(path);
    rmdir(root);
}

/* What the output queue holds, files read with pread, then marked sent. */
static size_t take_output(void)
{
    size_t n = 0;
    for (size_t i = out.head; i < out.count && n < sizeof wire; i++) {
        const struct outq_segment *s = &out.segments[i];
        size_t take = s->len < sizeof wire - n ? s->len : sizeof wire - n;
        if (s->kind == OUTQ_FILE)
            ck_assert_int_eq(pread(s->fd, wire + n, take, s->file_offset), (ssize_t)take);
        else
            memcpy(wire + n, s->kind == OUTQ_COPY ? out.buffer + s->offset : s->ptr, take);
        n += take;
    }
    outq_advance(&out, n);
    return n;
}

/* Moves bytes both ways until neither side has anything to say. */
static enum h2_result pump(void)
{
    enum h2_result result = H2_CONTINUE;
    for (int round = 0; round < 100000; round++) {
        bool moved = false;
        const uint8_t *p;
        ssize_t n;
        while ((n = nghttp2_session_mem_send(client, &p)) > 0) {
            if (h2_feed(h2, (const char *)p, (size_t)n) == H2_CLOSE)
                result = H2_CLOSE;
            moved = true;
        }
        h2_produce(h2);
        turn_end(&worker.turn); /* closed streams are freed at the end of a turn */
        size_t len = take_output();
        if (len > 0) {
            ck_assert_int_eq(nghttp2_session_mem_recv(client, (uint8_t *)wire, len), (ssize_t)len);
            moved = true;
        }
        if (!moved)
            return result;
    }
    ck_abort_msg("the two sessions never went quiet");
    return result;
}

static int32_t request(const char *method, const char *path, const nghttp2_nv *extra,
                       size_t extra_count, bool end_stream)
{
    nghttp2_nv nva[16] = {
        {(uint8_t *)":method", (uint8_t *)method, 7, strlen(method), 0},
        {(uint8_t *)":scheme", (uint8_t *)"http", 7, 4, 0},
        {(uint8_t *)":authority", (uint8_t *)"localhost", 10, 9, 0},
        {(uint8_t *)":path", (uint8_t *)path, 5, strlen(path), 0},
    };
    if (extra_count > 0) /* extra may be NULL then, which memcpy may not be given */
        memcpy(nva + 4, extra, extra_count * sizeof *extra);
    int32_t id = nghttp2_submit_headers(client, end_stream ? NGHTTP2_FLAG_END_STREAM : 0, -1,
                                        NULL, nva, 4 + extra_count, NULL);
    ck_assert_int_gt(id, 0);
    return id;
}

static int open_fds(void)
{
    int n = 0;
    DIR *d = opendir("/proc/self/fd");
    while (readdir(d) != NULL)
        n++;
    closedir(d);
    return n;
}

START_TEST(get_is_answered_with_lower_case_fields)
{
    int32_t id = request("GET", "/plaintext", NULL, 0, true);
    pump();
    struct response *r = response_of(id);
    ck_assert_int_eq(r->status, 200);
    ck_assert(r->ended);
    ck_assert_msg(strstr(r->fields, "server: saker\n") != NULL, "%s", r->fields);
    ck_assert_ptr_nonnull(strstr(r->fields, "content-type: text/plain\n"));
    ck_assert_ptr_nonnull(strstr(r->fields, "content-length: 13\n"));
    ck_assert_ptr_nonnull(strstr(r->fields, "date: "));
    ck_assert_uint_eq(r->body_len, 13);
    ck_assert_int_eq(memcmp(r->body, "Hello, World!", 13), 0);
    ck_assert(h2_idle(h2));
    ck_assert_uint_eq(slot.counters[SHM_REQUESTS], 1);
    ck_assert_uint_eq(slot.counters[SHM_H2_STREAMS], 1);
    ck_assert_uint_eq(slot.counters[SHM_H2_CONNECTIONS], 1);
    ck_assert_uint_eq(slot.counters[SHM_RESPONSES_2XX], 1);
}
END_TEST

START_TEST(many_streams_at_once)
{
    int32_t ids[60];
    for (int i = 0; i < 60; i++)
        ids[i] = request("GET", i % 3 ? "/plaintext" : "/missing", NULL, 0, true);
    pump();
    for (int i = 0; i < 60; i++)
        ck_assert_int_eq(response_of(ids[i])->status, i % 3 ? 200 : 404);
    ck_assert_uint_eq(slot.counters[SHM_RESPONSES_2XX], 40);
    ck_assert_uint_eq(slot.counters[SHM_RESPONSES_4XX], 20);
}
END_TEST

START_TEST(file_body_is_sent_whole_and_its_descriptor_closed)
{
    int fds = open_fds();
    int32_t id = request("GET", "/big.bin", NULL, 0, true);
    pump();
    struct response *r = response_of(id);
    ck_assert_int_eq(r->status, 200);
    ck_assert_uint_eq(r->body_len, BIG_FILE);
    for (size_t i = 0; i < r->body_len; i++)
        if (r->body[i] != 'a' + (int)(i % 23))
            ck_abort_msg("byte %zu differs", i);
    ck_assert_int_eq(open_fds(), fds);
}
END_TEST

START_TEST(output_stops_at_the_high_water_mark)
{
    request("GET", "/big.bin", NULL, 0, true);
    const uint8_t *p;
    ssize_t n;
    while ((n = nghttp2_session_mem_send(client, &p)) > 0)
        h2_feed(h2, (const char *)p, (size_t)n);
    bool more = h2_produce(h2);
    ck_assert_msg(more, "pending %zu", (size_t)out.pending_bytes); /* more to come */
    ck_assert_uint_lt(out.pending_bytes, 256 * 1024 + 16384 + 64);
    ck_assert_uint_gt(out.pending_bytes, 128 * 1024);
}
END_TEST

START_TEST(reset_stream_gives_its_file_back)
{
    nghttp2_session_del(client);
    client_new(32768); /* the response stalls after two frames */
    int fds = open_fds();
    int32_t id = request("GET", "/big.bin", NULL, 0, true);
    pump();
    ck_assert_uint_eq(response_of(id)->body_len, 32768);
    ck_assert_int_eq(open_fds(), fds + 1); /* the stream still holds it */
    nghttp2_submit_rst_stream(client, NGHTTP2_FLAG_NONE, id, NGHTTP2_CANCEL);
    pump();
    ck_assert_int_eq(open_fds(), fds);
    ck_assert(h2_idle(h2));
    ck_assert_uint_eq(slot.counters[SHM_H2_RESETS_RECEIVED], 1);
}
END_TEST

START_TEST(reset_with_frames_still_queued_closes_after_they_leave)
{
    nghttp2_session_del(client);
    client_new(32768);
    int fds = open_fds();
    int32_t id = request("GET", "/big.bin", NULL, 0, true);
    const uint8_t *p;
    ssize_t n;
    while ((n = nghttp2_session_mem_send(client, &p)) > 0)
        h2_feed(h2, (const char *)p, (size_t)n);
    h2_produce(h2); /* two DATA frames of the file queued, not sent */
    nghttp2_submit_rst_stream(client, NGHTTP2_FLAG_NONE, id, NGHTTP2_CANCEL);
    while ((n = nghttp2_session_mem_send(client, &p)) > 0)
        h2_feed(h2, (const char *)p, (size_t)n);
    ck_assert(h2_idle(h2));
    turn_end(&worker.turn); /* the stream is freed: its file's release waits in the queue */
    ck_assert_int_eq(open_fds(), fds + 1); /* queued ranges still read it */
    take_output();
    ck_assert_int_eq(open_fds(), fds);
}
END_TEST

START_TEST(refusals)
{
    nghttp2_nv many[11];
    for (int i = 0; i < 11; i++)
        many[i] = (nghttp2_nv){(uint8_t *)"x-a", (uint8_t *)"v", 3, 1, 0};
    int32_t a = request("GET", "/plaintext", many, 11, true);
    nghttp2_nv length = {(uint8_t *)"content-length", (uint8_t *)"5000", 14, 4, 0};
    int32_t b = request("POST", "/plaintext", &length, 1, false);
    nghttp2_nv host = {(uint8_t *)"host", (uint8_t *)"other", 4, 5, 0};
    int32_t c = request("GET", "/plaintext", &host, 1, true); /* :authority differs */
    nghttp2_nv expect = {(uint8_t *)"expect", (uint8_t *)"something-else", 6, 14, 0};
    int32_t d = request("GET", "/plaintext", &expect, 1, true);
    pump();
    ck_assert_int_eq(response_of(a)->status, 431);
    ck_assert_int_eq(response_of(b)->status, 413);
    ck_assert_int_eq(response_of(b)->reset, NGHTTP2_NO_ERROR); /* stop sending the body */
    ck_assert_int_eq(response_of(c)->status, 400);
    /* The same head pipeline as HTTP/1.1 (request_head_check). */
    ck_assert_int_eq(response_of(d)->status, 417);
    ck_assert_uint_eq(slot.counters[SHM_REJECT_TOO_MANY_HEADERS], 1);
    ck_assert_uint_eq(slot.counters[SHM_REJECT_BODY_TOO_LARGE], 1);
}
END_TEST

/* RFC 8441: SETTINGS_ENABLE_CONNECT_PROTOCOL is announced; an extended
 * CONNECT is routed by its :path, and a 2xx from a handler that did not
 * accept the tunnel becomes 501, as does a CONNECT without :protocol. */
START_TEST(extended_connect)
{
    pump();
    ck_assert_uint_eq(nghttp2_session_get_remote_settings(
                          client, NGHTTP2_SETTINGS_ENABLE_CONNECT_PROTOCOL), 1);
    nghttp2_nv ws = {(uint8_t *)":protocol", (uint8_t *)"websocket", 9, 9, 0};
    int32_t a = request("CONNECT", "/plaintext", &ws, 1, false);
    nghttp2_nv plain[] = {
        {(uint8_t *)":method", (uint8_t *)"CONNECT", 7, 7, 0},
        {(uint8_t *)":authority", (uint8_t *)"example.com:443", 10, 15, 0},
    };
    int32_t b = nghttp2_submit_headers(client, 0, -1, NULL, plain, 2, NULL);
    ck_assert_int_gt(b, 0);
    pump();
    ck_assert_int_eq(response_of(a)->status, 501);
    ck_assert_int_eq(response_of(a)->body_len, 20);
    ck_assert(memcmp(response_of(a)->body, "501 Not Implemented\n", 20) == 0);
    ck_assert_int_eq(response_of(b)->status, 501);
}
END_TEST

START_TEST(bad_preface_closes_unanswered)
{
    static const char http1[] = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
    ck_assert_int_eq(h2_feed(h2, http1, sizeof http1 - 1), H2_CLOSE);
    ck_assert(h2_finished(h2));
    ck_assert_uint_eq(slot.counters[SHM_REJECT_MALFORMED], 1);
}
END_TEST

static ssize_t no_more_body(nghttp2_session *s, int32_t id, uint8_t *buf, size_t length,
                            uint32_t *flags, nghttp2_data_source *source, void *u)
{
    (void)s, (void)id, (void)buf, (void)length, (void)source, (void)u;
    *flags |= NGHTTP2_DATA_FLAG_EOF;
    return 0;
}

START_TEST(goaway_notice_then_final)
{
    int32_t id = request("POST", "/plaintext", NULL, 0, false); /* still open */
    pump();
    h2_shutdown_notice(h2);
    pump();
    ck_assert_int_eq(goaway_last, INT32_MAX);
    h2_goaway(h2);
    pump();
    ck_assert_int_eq(goaway_last, id);
    ck_assert_uint_eq(goaway_code, NGHTTP2_NO_ERROR);
    ck_assert(!h2_finished(h2)); /* the open stream is still served */
    nghttp2_data_provider end = {.read_callback = no_more_body};
    nghttp2_submit_data(client, NGHTTP2_FLAG_END_STREAM, id, &end);
    pump();
    ck_assert_int_eq(response_of(id)->status, 200);
    ck_assert(h2_finished(h2));
}
END_TEST

START_TEST(reading_head_until_settings)
{
    uint64_t since;
    ck_assert(h2_reading_head(h2, &since)); /* the preface is due */
    pump();
    ck_assert(!h2_reading_head(h2, &since));
}
END_TEST

/* Resident pages of the session's own mappings (h2_mem.c). */
static size_t mapped_resident(void)
{
    size_t pages = 0;
    for (size_t i = 0; i < H2_MAPPINGS_MAX; i++) {
        const struct h2_mapping *m = &h2->mem.maps[i];
        size_t len = m->len_frames & ~(size_t)1;
        unsigned char vec[64];
        if (m->base == NULL)
            continue;
        ck_assert_uint_le(len / 4096, sizeof vec);
        ck_assert_int_eq(mincore(m->base, len, vec), 0);
        for (size_t p = 0; p < len / 4096; p++)
            pages += vec[p] & 1;
    }
    return pages;
}

START_TEST(an_idle_session_gives_its_buffers_back_and_still_serves)
{
    int32_t id = request("GET", "/plaintext", NULL, 0, true);
    pump();
    ck_assert_int_eq(response_of(id)->status, 200);
    /* The frame buffer's first page and the stream map. */
    ck_assert_uint_ge(mapped_resident(), 2);
    uint64_t now = clock_monotonic_ms();
    h2_trim(h2, now); /* idle for less than a second: kept */
    ck_assert_uint_ge(mapped_resident(), 2);
    h2_trim(h2, now + 1000);
    ck_assert_uint_eq(mapped_resident(), 0);
    for (int i = 0; i < 3; i++) { /* zeroed buffers, the same HPACK tables: all in step */
        id = request("GET", i == 1 ? "/missing" : "/plaintext", NULL, 0, true);
        pump();
        struct response *r = response_of(id);
        ck_assert_int_eq(r->status, i == 1 ? 404 : 200);
        ck_assert(r->ended);
        ck_assert_msg(strstr(r->fields, "server: saker\n") != NULL, "%s", r->fields);
        if (i != 1) {
            ck_assert_ptr_nonnull(strstr(r->fields, "content-type: text/plain\n"));
            ck_assert_uint_eq(r->body_len, 13);
            ck_assert_int_eq(memcmp(r->body, "Hello, World!", 13), 0);
        }
        ck_assert_uint_ge(mapped_resident(), 1);
        h2_trim(h2, clock_monotonic_ms() + 1000);
        ck_assert_uint_eq(mapped_resident(), 0);
    }
    ck_assert(h2_idle(h2));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("h2");
    TCase *t = tcase_create("h2");
    tcase_set_timeout(t, 120); /* 10 MiB through two nghttp2 sessions, under the sanitizers */
    tcase_add_checked_fixture(t, setup, teardown);
    tcase_add_test(t, get_is_answered_with_lower_case_fields);
    tcase_add_test(t, many_streams_at_once);
    tcase_add_test(t, file_body_is_sent_whole_and_its_descriptor_closed);
    tcase_add_test(t, output_stops_at_the_high_water_mark);
    tcase_add_test(t, reset_stream_gives_its_file_back);
    tcase_add_test(t, reset_with_frames_still_queued_closes_after_they_leave);
    tcase_add_test(t, refusals);
    tcase_add_test(t, extended_connect);
    tcase_add_test(t, bad_preface_closes_unanswered);
    tcase_add_test(t, goaway_notice_then_final);
    tcase_add_test(t, reading_head_until_settings);
    tcase_add_test(t, an_idle_session_gives_its_buffers_back_and_still_serves);
    suite_add_tcase(s, t);
    return unit_run(s);
}
