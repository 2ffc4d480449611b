/*
 * stream_client.h - the client side of the unit suites that run real
 * connections on a socket pair (check_stream, check_body, check_tunnel):
 * reading what the server sends until it closes or resets, parsing an
 * HTTP/1.1 message (Content-Length or chunked, with trailers), and an
 * HTTP/2 client over nghttp2 pumped by hand.
 */
#ifndef SAKER_TESTS_UNIT_STREAM_CLIENT_H
#define SAKER_TESTS_UNIT_STREAM_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A connected loopback TCP pair: the client's end (non-blocking), and
 * the server's in *server (non-blocking, TCP_NODELAY), as accept4 gives. */
int tcp_pair(int *server);

/* Everything read from a socket. */
struct reply {
    char *data; /* NUL-terminated */
    size_t len, size;
    bool closed; /* EOF or a reset */
    bool reset;  /* ECONNRESET */
};

void reply_reset(struct reply *r);
/* Reads what is there now (non-blocking fd), up to max in all. */
void reply_read(struct reply *r, int fd, size_t max);

/* One HTTP/1.1 response, parsed out of bytes. */
struct h1_message {
    int status;
    bool chunked;
    int64_t content_length; /* -1: none */
    char *body;             /* malloc'd (chunks joined) */
    size_t body_len;
    char trailers[1024];    /* "name: value\r\n"... */
};

/* The bytes of the first whole message in data (0: none yet). A message
 * without length is read to the end of data. */
size_t h1_parse_message(const char *data, size_t len, struct h1_message *m);
void h1_message_free(struct h1_message *m);

/* The test handlers' body: byte i is 'a' + (from + i) % 26. */
bool pattern_ok(const char *body, size_t len, uint64_t from);

/* An nghttp2 client session with these callbacks (user: their user
 * data), its SETTINGS queued; window as for h2_client_new. */
#include <nghttp2/nghttp2.h>
nghttp2_session *h2_test_session(uint32_t window, nghttp2_on_header_callback header_cb,
                                 nghttp2_on_data_chunk_recv_callback data_cb,
                                 nghttp2_on_frame_recv_callback frame_cb, void *user);

/* An HTTP/2 client on fd; window: its stream window (below 65535 it is
 * never replenished, so a response stalls when it is used up). */
struct h2_client;
struct h2_reply {
    int status;
    char *body;
    size_t body_len;
    char trailers[1024]; /* "name: value\n"... */
    bool ended;          /* END_STREAM */
    int reset;           /* RST_STREAM's code, -1: none */
};
struct h2_client *h2_client_new(int fd, uint32_t window);
int32_t h2_client_get(struct h2_client *h, const char *path);
/* A request with a body; data NULL: the body follows with h2_client_data. */
int32_t h2_client_post(struct h2_client *h, const char *path, const char *data, size_t len);
/* The same, with one trailer field after the body. */
int32_t h2_client_post_trailer(struct h2_client *h, const char *path, const char *data,
                               size_t len, const char *name, const char *value);
/* The same, but the body never ends (a client that stalls mid-body). */
int32_t h2_client_post_open(struct h2_client *h, const char *path, const char *data, size_t len);
void h2_client_reset(struct h2_client *h, int32_t stream);
/* Writes what nghttp2 has to send, reads what the server sent. */
void h2_client_pump(struct h2_client *h);
const struct h2_reply *h2_client_reply(struct h2_client *h, int32_t stream);
bool h2_client_done(struct h2_client *h, int32_t stream);
/* turn() then a pump, turns times, or until stream (0: none) is done;
 * true when it is. */
bool h2_client_run(struct h2_client *h, void (*turn)(void), int turns, int32_t stream);
void h2_client_free(struct h2_client *h);

#endif
