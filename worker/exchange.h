/*
 * exchange.h - one request and its response: the only API handlers see.
 *
 * A protocol (HTTP/1.1 today, HTTP/2 later) fills the request side and hands
 * the exchange to a handler; the handler fills the response side and calls
 * exchange_respond() exactly once. Handlers never see sockets, buffers or
 * protocol framing, so every handler works over every protocol.
 *
 * Lifetimes: everything on the request side lives in ex->arena until the
 * exchange ends. Strings a handler passes in (header names and values, a
 * bytes body) need only live until exchange_respond() returns: the protocol
 * copies what it keeps, except a body marked EXCHANGE_BODY_STABLE, which it
 * references (config-owned bodies live for the whole generation).
 * A file body's descriptor is owned by the exchange from the moment it is
 * set, and closed by the protocol when sent or abandoned.
 */
#ifndef SAKER_WORKER_EXCHANGE_H
#define SAKER_WORKER_EXCHANGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/arena.h"

struct worker;
struct exchange;
struct sockaddr;

struct header_field {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
};

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

/* What a protocol provides to send a finished response. */
struct exchange_ops {
    void (*respond)(struct exchange *ex);
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
    int version_major, version_minor;
    struct header_field *headers;
    size_t header_count;
    size_t header_capacity;
    uint64_t body_bytes_received;
    const struct sockaddr *peer; /* the client's address; NULL: unknown (unit tests) */
    /* HTTPS with client_certificate: the verified client certificate's
     * subject, RFC 2253 ("CN=alice,O=Example"); NULL when there is none. */
    const char *client_subject;
    /* Hook for handlers that read the request body (none does yet): set
     * it in handle() without responding, and a client that sent
     * "Expect: 100-continue" is then told "100 Continue"; otherwise it gets
     * the final response at once and its body is drained (RFC 9110
     * section 10.1.1). */
    bool body_wanted;

    /* Response, filled by the handler. */
    int status;
    struct header_field *response_headers;
    size_t response_header_count;
    size_t response_header_capacity;
    enum exchange_body_kind body_kind;
    unsigned body_flags;
    const char *body;   /* BODY_BYTES */
    size_t body_len;    /* BODY_BYTES and BODY_FILE */
    int body_fd;        /* BODY_FILE: owned by the exchange */
    off_t body_offset;  /* BODY_FILE */
    bool responded;
};

/* Looks up a request header, case-insensitively; the first one wins.
 * Returns the value (not NUL-terminated) and sets *len, or NULL. */
const char *exchange_header(const struct exchange *ex, const char *name, size_t *len);

/* Appends a request header whose strings already live in the arena (the
 * protocols, as they parse). SK_OK, or SK_ERROR when out of memory. */
int exchange_push_request_header(struct exchange *ex, const struct header_field *field);

/* Adds a response header. name/value are copied into the arena.
 * SK_OK, or SK_ERROR when out of memory. Content-Length, Date, Server and
 * Connection are the protocol's: a handler never adds them. */
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
/* Sets a file body: len bytes of fd from offset; fd now belongs to ex. */
void exchange_set_file(struct exchange *ex, int fd, off_t offset, size_t len);

/* Sends the response now. Call exactly once per exchange. */
void exchange_respond(struct exchange *ex);
/* Convenience: status with a short text/plain body ("404 Not Found\n"). */
void exchange_respond_error(struct exchange *ex, int status);

/* "Not Found" for 404, "" for an unknown status. */
const char *exchange_status_reason(int status);

#endif
