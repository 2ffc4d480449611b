/*
 * exchange.h - one request and its response: the only API handlers see.
 *
 * A protocol (HTTP/1.1, HTTP/2) fills the request side and hands the
 * exchange to a handler; the handler fills the response side and answers.
 * Handlers never see sockets, buffers or protocol framing, so every
 * handler works over every protocol.
 *
 * Answering: at once, or later from any event of the worker loop (a
 * timer, an upstream read), and with a body of bytes, a file range, or a
 * stream (h2o's generator is the model):
 *  - exchange_respond: the whole response, a bytes or file body.
 *  - exchange_start, then exchange_send: the head, then the body piece by
 *    piece. After a send that says EXCHANGE_MORE the producer waits for
 *    its generator's proceed, which the protocol calls when it has room
 *    again: one send outstanding at a time is the backpressure. FINAL
 *    ends the body (with trailers, exchange_add_trailer); ERROR aborts it
 *    so that the client sees an incomplete response, never a truncated
 *    one presented as complete. HTTP/1.1 sends a body of unknown length
 *    chunked (close-delimited to an HTTP/1.0 client), HTTP/2 as DATA
 *    frames; a Content-Length the handler adds is used as-is, and a body
 *    of another length is an error.
 *  - A handler that answers later, or streams, sets its generator in
 *    handle() (exchange_set_generator) and returns without answering. If
 *    the exchange is abandoned (the client closed, reset its stream, a
 *    deadline passed, the worker stopped) before the handler's final call
 *    (respond, or a FINAL or ERROR send) was accepted, the generator's
 *    stop is called, exactly once, at the end of a loop turn; the handler
 *    must not touch the exchange afterwards, and its memory is freed only
 *    after stop returns. A send to an abandoned exchange returns SK_ERROR
 *    (stop follows). A handler that returns without answering and without
 *    a generator is answered 500.
 *
 * Reading the request body: a handler whose kind says it reads bodies
 * (handler_ops.reads_body) runs as soon as the head is in and reads the
 * body as a stream (exchange_read_body): data pieces, then the end with
 * the request's trailer fields (never mixed into its headers), or an
 * error. Asking for the body is what sends "100 Continue" to a client
 * that expects it. exchange_pause_body stops the pieces (HTTP/1.1 stops
 * parsing and reading the socket; HTTP/2 stops returning window) until
 * exchange_resume_body. Other handlers run once the body has arrived,
 * and it is discarded (an answer given before that drains the rest for
 * up to 5 s on HTTP/1.1; HTTP/2 resets the stream).
 *
 * Upgrades: exchange_upgrade accepts the client's upgrade and the
 * exchange becomes a tunnel, bytes both ways through the same reader and
 * sends: over HTTP/1.1 a 101 and the connection's bytes (tunnel.h), over
 * HTTP/2 an extended CONNECT's 200 and its stream's DATA frames
 * (h2_response.c). A handler writes the one code for both.
 *
 * Lifetimes: everything on the request side lives in ex->arena until the
 * exchange ends. Strings a handler passes in (header names and values, a
 * bytes body) need only live until exchange_respond() returns: the protocol
 * copies what it keeps, except a body marked EXCHANGE_BODY_STABLE, which it
 * references (config-owned bodies live for the whole generation).
 * A file body is handed over with its release (exchange_file): the
 * protocol calls it exactly once, when the file has been sent, or when
 * it is not sent after all (HEAD, a refusal, an abandoned exchange).
 */
#ifndef SAKER_WORKER_EXCHANGE_H
#define SAKER_WORKER_EXCHANGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/types.h>

#include "common/arena.h"

struct worker;
struct exchange;
struct endpoint;
struct sockaddr;

struct header_field {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
};

/* True when h's name is lower (a lower-case field name of len bytes) in
 * any case. Inline: the length rules out most fields, and a byte loop
 * over a short name costs less than a call to strncasecmp. */
static inline bool exchange_field_is(const struct header_field *h, const char *lower, size_t len)
{
    if (h->name_len != len)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = h->name[i];
        if ((c >= 'A' && c <= 'Z' ? (char)(c + 32) : c) != lower[i])
            return false;
    }
    return true;
}

enum exchange_method {
    METHOD_OTHER,
    METHOD_GET,
    METHOD_HEAD,
    METHOD_POST,
    METHOD_PUT,
    METHOD_DELETE,
    METHOD_OPTIONS,
    METHOD_PATCH,
    METHOD_CONNECT,
    METHOD_TRACE,
};

enum exchange_body_kind { BODY_NONE, BODY_BYTES, BODY_FILE };

#define EXCHANGE_BODY_STABLE 1u /* bytes outlive the connection: reference, do not copy */

/* A file range as a response body, and how it is given back. */
struct exchange_file {
    int fd;
    off_t offset;
    size_t len;
    const char *contents; /* the same bytes in memory (a small file), valid until
                             release, or NULL: the protocol may copy them */
    void (*release)(void *arg); /* once, when the protocol is done with fd;
                                   NULL: it closes fd itself */
    void *arg;
};

/* n bytes of file's range from at (relative to its offset) into out: a
 * copy of its contents when it has them, else preads. SK_OK, or SK_ERROR
 * when the file cannot be read or came up short (it shrank under us). */
int exchange_file_read(const struct exchange_file *file, char *out, size_t n, uint64_t at);

/* One piece of a streamed body: bytes valid until the generator's
 * proceed (or stop) is called, and those of a FINAL send until the
 * exchange ends (its arena is a good home for them). */
struct exchange_buf {
    const char *base;
    size_t len;
};

enum exchange_send_state {
    EXCHANGE_MORE,  /* more follows, after proceed */
    EXCHANGE_FINAL, /* the body ends here */
    EXCHANGE_ERROR, /* abort: the response must not look complete */
};

/* The producer of a streamed (or deferred) response: h2o's generator. */
struct exchange_generator {
    /* The protocol has room again after a send that said MORE: send the
     * next piece, now or later. */
    void (*proceed)(struct exchange *ex, void *arg);
    /* The exchange is abandoned; called once, at the end of a loop turn.
     * Do not touch ex afterwards. */
    void (*stop)(struct exchange *ex, void *arg);
};

/* How a handler reads the request body; every callback gets the arg
 * given to exchange_read_body. */
struct exchange_body_reader {
    /* A piece of the body, valid during the call only. */
    void (*data)(struct exchange *ex, const char *data, size_t len, void *arg);
    /* The body ended; its trailer fields (count may be 0). */
    void (*end)(struct exchange *ex, const struct header_field *trailers, size_t count,
                void *arg);
    /* The body cannot be read to its end: 413 (over max_request_body_size),
     * 408 (slower than min_request_body_data_rate), 400 (bad framing), or
     * 0 (the client went away or reset the stream). Afterwards the
     * protocol answers with that status if nothing was answered yet, and
     * aborts a response under way. */
    void (*error)(struct exchange *ex, int status, void *arg);
};

struct exchange_filter;

/* What a protocol provides (see the contract of each public call). */
struct exchange_ops {
    void (*respond)(struct exchange *ex);
    int (*start)(struct exchange *ex);
    int (*send)(struct exchange *ex, const struct exchange_buf *bufs, size_t n,
                enum exchange_send_state state);
    /* A MORE send of lent bytes (exchange_send_lent); NULL: sent as a copy. */
    int (*send_lent)(struct exchange *ex, const struct exchange_buf *buf,
                     void (*release)(void *arg), void *arg);
    int (*read_body)(struct exchange *ex);
    void (*pause_body)(struct exchange *ex, bool paused);
    int (*upgrade)(struct exchange *ex, const char *protocol); /* NULL: none */
};

struct exchange {
    struct arena *arena;
    struct worker *worker;
    const struct exchange_ops *ops;
    void *protocol; /* the protocol's own state for this exchange */

    /* Request. */
    enum exchange_method method;
    const char *method_name; /* "GET", ... NUL-terminated */
    const char *target;      /* raw request-target, NUL-terminated */
    size_t target_len;
    const char *path;        /* target up to '?' or '#', still percent-encoded */
    size_t path_len;
    const char *query;       /* after '?', NULL if none */
    size_t query_len;
    const char *host;        /* Host (or :authority) without port, lower-case; "" if none */
    size_t host_len;
    const char *authority;   /* Host (or :authority) as received, port included; NULL if none */
    /* HTTP/2's extended CONNECT (RFC 8441): the :protocol it asks for
     * ("websocket"), NUL-terminated; NULL for any other request. The
     * exchange is then a CONNECT routed by its :path like a GET. */
    const char *connect_protocol;
    size_t authority_len;
    const char *origin_target; /* the target in origin-form: an absolute-form target's path
                                  and query (may be empty), else the target itself */
    size_t origin_target_len;
    const struct sockaddr *peer;      /* the client's address; NULL when unknown (AF_UNIX) */
    const struct endpoint *endpoint;  /* what it came in through; NULL in unit tests */
    int conn_fd; /* the client connection's socket (getsockname: the address it reached,
                    for a PROXY protocol header); -1 when none */
    int version_major, version_minor;
    struct header_field *headers;
    size_t header_count;
    size_t header_capacity;
    uint64_t body_bytes_received;
    /* HTTPS with client_certificate: the verified client certificate's
     * subject, RFC 2253 ("CN=alice,O=Example"); NULL when there is none. */
    const char *client_subject;
    struct header_field *request_trailers; /* once the body has ended */
    size_t request_trailer_count;
    size_t request_trailer_capacity;
    /* Reading the body (exchange_read_body). */
    const struct exchange_body_reader *body_reader;
    void *body_reader_arg;
    bool expect_continue; /* the client sent Expect: 100-continue */
    bool body_paused;     /* exchange_pause_body */
    bool body_ended;      /* the reader's end or error was called */

    /* Response, filled by the handler. */
    int status;
    struct header_field *response_headers;
    size_t response_header_count;
    size_t response_header_capacity;
    enum exchange_body_kind body_kind;
    unsigned body_flags;
    const char *body;   /* BODY_BYTES; BODY_FILE: its contents, or NULL */
    size_t body_len;    /* BODY_BYTES and BODY_FILE */
    int body_fd;        /* BODY_FILE: given back with body_release */
    off_t body_offset;  /* BODY_FILE */
    void (*body_release)(void *arg); /* BODY_FILE */
    void *body_release_arg;
    struct header_field *trailers; /* of a streamed response */
    size_t trailer_count;
    size_t trailer_capacity;

    /* A streamed or deferred response. */
    const struct exchange_generator *generator;
    void *generator_arg;
    struct exchange_filter *filter;      /* the first stage after the handler; NULL: none */
    struct exchange_filter *filter_last; /* the stage next to the protocol */
    uint64_t body_sent;  /* bytes of a streamed body accepted so far */
    void (*lent_release)(void *arg); /* a lent piece sent as a reference: at the proceed */
    void *lent_arg;
    bool responded;      /* the head has gone (respond or start) */
    bool streaming;      /* exchange_start: the body comes as sends */
    bool handler_done;   /* the handler's final call was accepted */
    bool finished;       /* ... and has reached the protocol through every filter */
    bool abandoned;      /* the protocol gave up on it; stop follows */
    bool stopped;        /* stop was called */

    void *module; /* a module's generator and reader (worker/module_api.c) */
};

/* Looks up a request header, case-insensitively; the first one wins.
 * Returns the value (not NUL-terminated) and sets *len, or NULL. The
 * inline form lets a literal name's length be known when compiled. */
const char *exchange_header_n(const struct exchange *ex, const char *name, size_t name_len,
                              size_t *len);
static inline const char *exchange_header(const struct exchange *ex, const char *name,
                                          size_t *len)
{
    return exchange_header_n(ex, name, strlen(name), len);
}

/* The first response header called name (case-insensitive), or NULL;
 * for filters, which may change its value (strings in the arena). */
struct header_field *exchange_response_header(struct exchange *ex, const char *name);
/* Removes every response header called name (a filter dropping
 * Content-Length). */
void exchange_remove_response_header(struct exchange *ex, const char *name);

/* Copies name and value into arena as one allocation (each
 * NUL-terminated) and points field at them. SK_OK or SK_ERROR. */
int exchange_copy_field(struct arena *arena, struct header_field *field, const char *name,
                        size_t name_len, const char *value, size_t value_len);
/* Appends field to an arena-grown array of fields. SK_OK or SK_ERROR. */
int exchange_push_field(struct arena *arena, struct header_field **fields, size_t *count,
                        size_t *capacity, const struct header_field *field);
/* Appends a request header whose strings already live in the arena (the
 * protocols, as they parse). SK_OK, or SK_ERROR when out of memory. */
int exchange_push_request_header(struct exchange *ex, const struct header_field *field);

/* Adds a response header. name/value are copied into the arena.
 * SK_OK, or SK_ERROR when out of memory. Date, Server, Connection and
 * Transfer-Encoding are the protocol's: a handler never adds them, nor
 * Content-Length, except to declare a streamed body's length. */
int exchange_add_header(struct exchange *ex, const char *name, const char *value);
int exchange_add_header_n(struct exchange *ex, const char *name, size_t name_len,
                          const char *value, size_t value_len);
/* Adds headers from the config (a route's, a return's): referenced, not
 * copied, since the config outlives every exchange of its generation. */
struct config_header;
int exchange_add_config_headers(struct exchange *ex, const struct config_header *headers,
                                size_t count);

/* Sets a bytes body (see EXCHANGE_BODY_STABLE). */
void exchange_set_body(struct exchange *ex, const char *body, size_t len, unsigned flags);
/* Sets a file body; the file's release now belongs to ex. */
void exchange_set_file(struct exchange *ex, const struct exchange_file *file);
/* For protocols: gives a file body back unsent; the body becomes none. */
void exchange_drop_body(struct exchange *ex);
/* For protocols: the pieces of a stream are welcome again (through the
 * filters to the generator's proceed). */
void exchange_proceed(struct exchange *ex);
/* For protocols: the exchange is given up; sends fail from now. */
void exchange_abandon(struct exchange *ex);
/* For protocols, at the end of a turn, before the exchange's memory is
 * freed: an exchange whose handler has not made its final call is
 * abandoned, and its filters and generator are told (once). */
void exchange_stop(struct exchange *ex);
/* For protocols: the reader's callbacks, each at most once after the
 * body ended (end or error); nothing without a reader. */
void exchange_body_data(struct exchange *ex, const char *data, size_t len);
void exchange_body_end(struct exchange *ex);
void exchange_body_error(struct exchange *ex, int status);
/* The bytes in n pieces. */
size_t exchange_bufs_len(const struct exchange_buf *bufs, size_t n);
/* For protocols: a declared length is a promise; more, or (at the end)
 * less, is an error, never a malformed message. Counts total sent
 * against *left (-1: none declared); false when the promise breaks. */
bool exchange_length_kept(int64_t *left, size_t total, enum exchange_send_state state);
/* For protocols: a declared Content-Length among the response headers,
 * or -1. */
int64_t exchange_response_length(const struct exchange *ex);

/* Reads the request body with r (see exchange_body_reader); the pieces
 * come from the loop, never from inside this call. SK_OK, SK_DECLINED
 * when the body was already discarded (a kind that does not read
 * bodies), SK_ERROR when abandoned or already reading. */
int exchange_read_body(struct exchange *ex, const struct exchange_body_reader *r, void *arg);
/* No more pieces until exchange_resume_body (backpressure). */
void exchange_pause_body(struct exchange *ex);
void exchange_resume_body(struct exchange *ex);

/* Accepts the client's upgrade to protocol (HTTP/1.1: "101 Switching
 * Protocols" with Connection: Upgrade and Upgrade: protocol, and the
 * handler's own headers; HTTP/2: ":status 200" on the stream of an
 * extended CONNECT whose :protocol is protocol, without Sec-WebSocket-
 * Accept, RFC 8441 section 5): from then on the exchange is a tunnel,
 * bytes both ways through the same calls as a streamed exchange: the
 * client's through the body reader (its end: the client's half-close or
 * END_STREAM), the handler's with exchange_send (FINAL: a half-close or
 * END_STREAM; ERROR: a reset). Needs a generator. SK_OK; SK_DECLINED when
 * the request did not ask for this upgrade, has a body, or
 * max_concurrent_upgraded_connections is reached (each HTTP/2 tunnel
 * counts as one): the handler answers instead; SK_ERROR otherwise. */
int exchange_upgrade(struct exchange *ex, const char *protocol);

/* Sends the response now: the final call. */
void exchange_respond(struct exchange *ex);

/* The producer of a response given later or streamed; set in handle()
 * before returning without an answer (see the contract above). */
void exchange_set_generator(struct exchange *ex, const struct exchange_generator *gen,
                            void *arg);
/* Sends the status and headers of a streamed response; the body follows
 * with exchange_send. Needs a generator. SK_OK, or SK_ERROR (abandoned,
 * already answered, no generator). */
int exchange_start(struct exchange *ex);
/* Sends n pieces of the body (see exchange_buf and exchange_send_state).
 * SK_OK, or SK_ERROR when the exchange is abandoned or the piece cannot
 * be sent (the protocol then gives up on it: stop follows). */
int exchange_send(struct exchange *ex, const struct exchange_buf *bufs, size_t n,
                  enum exchange_send_state state);
/* A MORE send of one piece whose bytes are lent rather than copied: they
 * stay valid until release(arg) runs, which happens exactly once,
 * whatever the result: when the protocol no longer needs them (sent,
 * copied, or dropped with the connection), possibly after the proceed and
 * after the exchange has ended, so release must not reach the exchange.
 * Through a filter, or a protocol that has no way to hold them, they are
 * sent as exchange_send's bytes and released at the generator's proceed
 * (or the final call, or the stop). The large-body path of the proxy: the bytes read
 * from the upstream leave from the memory they were read into. */
int exchange_send_lent(struct exchange *ex, const struct exchange_buf *buf,
                       void (*release)(void *arg), void *arg);
/* A trailer field for the end of a streamed body (copied). SK_OK or
 * SK_ERROR when out of memory. HTTP/1.1 sends them only chunked. */
int exchange_add_trailer(struct exchange *ex, const char *name, const char *value);
/* Convenience: status with a short text/plain body ("404 Not Found\n"). */
void exchange_respond_error(struct exchange *ex, int status);

/* "Not Found" for 404, "" for an unknown status. */
const char *exchange_status_reason(int status);

#endif
