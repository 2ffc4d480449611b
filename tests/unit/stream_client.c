/*
 * stream_client.c - the client side of the socket-pair suites; see
 * stream_client.h.
 */
#include "tests/unit/stream_client.h"

#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <sys/socket.h>

#include <nghttp2/nghttp2.h>

int tcp_pair(int *server)
{
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof addr;
    int l = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(l, 0);
    ck_assert_int_eq(bind(l, (struct sockaddr *)&addr, sizeof addr), 0);
    ck_assert_int_eq(listen(l, 1), 0);
    ck_assert_int_eq(getsockname(l, (struct sockaddr *)&addr, &len), 0);
    int c = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    connect(c, (struct sockaddr *)&addr, sizeof addr); /* EINPROGRESS on loopback: fine */
    *server = accept4(l, NULL, NULL, SOCK_NONBLOCK);
    ck_assert_int_ge(*server, 0);
    close(l);
    int one = 1;
    setsockopt(*server, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return c;
}

void reply_reset(struct reply *r)
{
    free(r->data);
    memset(r, 0, sizeof *r);
    r->size = 4096;
    r->data = calloc(1, r->size + 1);
}

void reply_read(struct reply *r, int fd, size_t max)
{
    while (!r->closed && r->len < max) {
        if (r->size - r->len < 65536) {
            r->size *= 2;
            r->data = realloc(r->data, r->size + 1);
        }
        ssize_t n = read(fd, r->data + r->len, r->size - r->len);
        if (n > 0) {
            r->len += (size_t)n;
            r->data[r->len] = '\0';
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        r->closed = true;
        r->reset = n < 0 && errno == ECONNRESET;
    }
}

bool pattern_ok(const char *body, size_t len, uint64_t from)
{
    for (size_t i = 0; i < len; i++)
        if (body[i] != 'a' + (char)((from + i) % 26))
            return false;
    return true;
}

static void body_append(struct h1_message *m, const char *p, size_t len)
{
    m->body = realloc(m->body, m->body_len + len + 1);
    memcpy(m->body + m->body_len, p, len);
    m->body_len += len;
    m->body[m->body_len] = '\0';
}

/* Chunks from p to the end of the trailer section; 0: not all there. */
static size_t parse_chunks(const char *p, const char *end, struct h1_message *m)
{
    const char *start = p;
    for (;;) {
        const char *eol = memmem(p, (size_t)(end - p), "\r\n", 2);
        if (eol == NULL)
            return 0;
        size_t size = strtoul(p, NULL, 16);
        p = eol + 2;
        if (size == 0)
            break;
        if ((size_t)(end - p) < size + 2)
            return 0;
        body_append(m, p, size);
        p += size + 2;
    }
    const char *last = memmem(p, (size_t)(end - p), "\r\n\r\n", 4);
    if (p + 2 <= end && memcmp(p, "\r\n", 2) == 0)
        return (size_t)(p + 2 - start);
    if (last == NULL)
        return 0;
    size_t n = (size_t)(last + 2 - p) < sizeof m->trailers - 1 ? (size_t)(last + 2 - p)
                                                                : sizeof m->trailers - 1;
    memcpy(m->trailers, p, n);
    return (size_t)(last + 4 - start);
}

size_t h1_parse_message(const char *data, size_t len, struct h1_message *m)
{
    memset(m, 0, sizeof *m);
    m->content_length = -1;
    const char *end = data + len, *head_end = memmem(data, len, "\r\n\r\n", 4);
    if (head_end == NULL || len < 12)
        return 0;
    m->status = atoi(data + 9);
    size_t head_len = (size_t)(head_end + 4 - data);
    char *head = strndup(data, head_len);
    for (char *line = strstr(head, "\r\n"); line != NULL; line = strstr(line + 2, "\r\n")) {
        if (strncasecmp(line + 2, "content-length:", 15) == 0)
            m->content_length = strtoll(line + 17, NULL, 10);
        if (strncasecmp(line + 2, "transfer-encoding: chunked", 26) == 0)
            m->chunked = true;
    }
    free(head);
    const char *body = head_end + 4;
    if (m->chunked) {
        size_t used = parse_chunks(body, end, m);
        if (used == 0)
            h1_message_free(m);
        return used == 0 ? 0 : head_len + used;
    }
    size_t want = m->content_length >= 0 ? (size_t)m->content_length : (size_t)(end - body);
    if ((size_t)(end - body) < want)
        return 0;
    body_append(m, body, want);
    return head_len + want;
}

void h1_message_free(struct h1_message *m)
{
    free(m->body);
    m->body = NULL;
}

/* ---- HTTP/2 ------------------------------------------------------------- */

#define H2_CLIENT_STREAMS 64

struct h2_client {
    nghttp2_session *session;
    int fd;
    struct h2_reply replies[H2_CLIENT_STREAMS];
    const char *upload;     /* a request body still to send */
    size_t upload_left;
    char *unsent;           /* what nghttp2 gave that the socket has not taken */
    size_t unsent_len;
    const char *trailer_name, *trailer_value; /* after the upload, or NULL */
    bool upload_open;       /* the body does not end: more is sent by hand */
};

static struct h2_reply *reply_of(struct h2_client *h, int32_t id)
{
    return &h->replies[(id - 1) / 2 % H2_CLIENT_STREAMS];
}

static int on_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name,
                     size_t name_len, const uint8_t *value, size_t value_len, uint8_t flags,
                     void *u)
{
    (void)s, (void)flags;
    struct h2_reply *r = reply_of(u, f->hd.stream_id);
    if (name_len == 7 && memcmp(name, ":status", 7) == 0) {
        r->status = atoi((const char *)value);
    } else if (f->headers.cat == NGHTTP2_HCAT_HEADERS) { /* trailers */
        size_t n = strlen(r->trailers);
        snprintf(r->trailers + n, sizeof r->trailers - n, "%.*s: %.*s\n", (int)name_len, name,
                 (int)value_len, value);
    }
    return 0;
}

static int on_data(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *data, size_t len,
                   void *u)
{
    (void)s, (void)flags;
    struct h2_reply *r = reply_of(u, id);
    r->body = realloc(r->body, r->body_len + len + 1);
    memcpy(r->body + r->body_len, data, len);
    r->body_len += len;
    r->body[r->body_len] = '\0';
    return 0;
}

static int on_frame(nghttp2_session *s, const nghttp2_frame *f, void *u)
{
    (void)s;
    if (f->hd.stream_id == 0)
        return 0;
    struct h2_reply *r = reply_of(u, f->hd.stream_id);
    if (f->hd.flags & NGHTTP2_FLAG_END_STREAM &&
        (f->hd.type == NGHTTP2_DATA || f->hd.type == NGHTTP2_HEADERS))
        r->ended = true;
    if (f->hd.type == NGHTTP2_RST_STREAM)
        r->reset = (int)f->rst_stream.error_code;
    return 0;
}

nghttp2_session *h2_test_session(uint32_t window, nghttp2_on_header_callback header_cb,
                                 nghttp2_on_data_chunk_recv_callback data_cb,
                                 nghttp2_on_frame_recv_callback frame_cb, void *user)
{
    nghttp2_session *session;
    nghttp2_option *option;
    nghttp2_option_new(&option);
    nghttp2_option_set_no_auto_window_update(option, window < 65535);
    nghttp2_session_callbacks *cb;
    nghttp2_session_callbacks_new(&cb);
    nghttp2_session_callbacks_set_on_header_callback(cb, header_cb);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, data_cb);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, frame_cb);
    ck_assert_int_eq(nghttp2_session_client_new2(&session, cb, user, option), 0);
    nghttp2_session_callbacks_del(cb);
    nghttp2_option_del(option);
    nghttp2_settings_entry s[] = {{NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, window}};
    ck_assert_int_eq(nghttp2_submit_settings(session, NGHTTP2_FLAG_NONE, s, 1), 0);
    if (window > 65535)
        nghttp2_session_set_local_window_size(session, NGHTTP2_FLAG_NONE, 0, (int32_t)window);
    return session;
}

bool h2_client_run(struct h2_client *h, void (*turn)(void), int turns, int32_t stream)
{
    for (int i = 0; i < turns && (stream == 0 || !h2_client_done(h, stream)); i++) {
        turn();
        h2_client_pump(h);
    }
    return stream == 0 || h2_client_done(h, stream);
}

struct h2_client *h2_client_new(int fd, uint32_t window)
{
    struct h2_client *h = calloc(1, sizeof *h);
    h->fd = fd;
    for (int i = 0; i < H2_CLIENT_STREAMS; i++)
        h->replies[i].reset = -1;
    h->session = h2_test_session(window, on_header, on_data, on_frame, h);
    return h; /* nghttp2 sends the preface itself */
}

static ssize_t upload_read(nghttp2_session *s, int32_t id, uint8_t *buf, size_t length,
                           uint32_t *flags, nghttp2_data_source *source, void *u)
{
    (void)s, (void)id, (void)source;
    struct h2_client *h = u;
    size_t n = h->upload_left < length ? h->upload_left : length;
    memcpy(buf, h->upload, n);
    h->upload += n;
    h->upload_left -= n;
    if (h->upload_left > 0)
        return (ssize_t)n;
    if (h->upload_open)
        return n > 0 ? (ssize_t)n : NGHTTP2_ERR_DEFERRED;
    *flags |= NGHTTP2_DATA_FLAG_EOF;
    if (h->trailer_name != NULL) {
        nghttp2_nv nv = {(uint8_t *)h->trailer_name, (uint8_t *)h->trailer_value,
                         strlen(h->trailer_name), strlen(h->trailer_value), 0};
        *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
        nghttp2_submit_trailer(s, id, &nv, 1);
    }
    return (ssize_t)n;
}

static int32_t submit(struct h2_client *h, const char *method, const char *path,
                      nghttp2_data_provider *body)
{
    nghttp2_nv nva[] = {
        {(uint8_t *)":method", (uint8_t *)method, 7, strlen(method), 0},
        {(uint8_t *)":scheme", (uint8_t *)"http", 7, 4, 0},
        {(uint8_t *)":authority", (uint8_t *)"a", 10, 1, 0},
        {(uint8_t *)":path", (uint8_t *)path, 5, strlen(path), 0},
    };
    int32_t id = nghttp2_submit_request(h->session, NULL, nva, 4, body, NULL);
    ck_assert_int_gt(id, 0);
    h2_client_pump(h);
    return id;
}

int32_t h2_client_get(struct h2_client *h, const char *path)
{
    return submit(h, "GET", path, NULL);
}

int32_t h2_client_post_trailer(struct h2_client *h, const char *path, const char *data,
                               size_t len, const char *name, const char *value)
{
    h->trailer_name = name;
    h->trailer_value = value;
    return h2_client_post(h, path, data, len);
}

int32_t h2_client_post_open(struct h2_client *h, const char *path, const char *data, size_t len)
{
    h->upload_open = true;
    return h2_client_post(h, path, data, len);
}

int32_t h2_client_post(struct h2_client *h, const char *path, const char *data, size_t len)
{
    h->upload = data;
    h->upload_left = len;
    nghttp2_data_provider body = {.read_callback = upload_read};
    return submit(h, "POST", path, &body);
}

void h2_client_reset(struct h2_client *h, int32_t stream)
{
    nghttp2_submit_rst_stream(h->session, NGHTTP2_FLAG_NONE, stream, NGHTTP2_CANCEL);
    h2_client_pump(h);
}

/* Writes what waits; false while the socket is full (a server that
 * stopped reading: backpressure). */
static bool client_write(struct h2_client *h)
{
    while (h->unsent_len > 0) {
        ssize_t w = write(h->fd, h->unsent, h->unsent_len);
        if (w <= 0)
            return false;
        memmove(h->unsent, h->unsent + w, h->unsent_len - (size_t)w);
        h->unsent_len -= (size_t)w;
    }
    return true;
}

void h2_client_pump(struct h2_client *h)
{
    const uint8_t *p;
    ssize_t n;
    while (client_write(h) && (n = nghttp2_session_mem_send(h->session, &p)) > 0) {
        h->unsent = realloc(h->unsent, (size_t)n);
        memcpy(h->unsent, p, (size_t)n);
        h->unsent_len = (size_t)n;
    }
    char buf[65536];
    while ((n = read(h->fd, buf, sizeof buf)) > 0)
        ck_assert_int_eq(nghttp2_session_mem_recv(h->session, (uint8_t *)buf, (size_t)n), n);
}

const struct h2_reply *h2_client_reply(struct h2_client *h, int32_t stream)
{
    return reply_of(h, stream);
}

bool h2_client_done(struct h2_client *h, int32_t stream)
{
    const struct h2_reply *r = reply_of(h, stream);
    return r->ended || r->reset >= 0;
}

void h2_client_free(struct h2_client *h)
{
    nghttp2_session_del(h->session);
    free(h->unsent);
    for (int i = 0; i < H2_CLIENT_STREAMS; i++)
        free(h->replies[i].body);
    free(h);
}
