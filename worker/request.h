/*
 * request.h - what every protocol does with a request once its head is
 * known, so that HTTP/1.1 and HTTP/2 agree on it to the byte: the host
 * (Host or :authority) and the target, allowed_hosts, the route and its
 * body limit, running the handler, and once answered, the response
 * counters and the access log line.
 *
 * The protocol keeps what is its own: framing, which header carries the
 * host (and that there is one), absolute-form targets (HTTP/1.1 only),
 * rendering the response.
 */
#ifndef SAKER_WORKER_REQUEST_H
#define SAKER_WORKER_REQUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/arena.h"
#include "worker/exchange.h"

struct worker;
struct endpoint;
struct config_limits;
struct router_entry;
struct sockaddr;

/* Sets ex->host from a Host or :authority value: uri-host without the
 * port, lower-cased into arena (RFC 9110 section 7.2). SK_ERROR for a
 * value that is not one (whitespace, '/', '@', an unclosed '['). */
int request_set_host(struct arena *arena, struct exchange *ex, const char *value, size_t len);

/* Splits a target into ex->path and ex->query and normalises the path
 * (path.h), so that routing and handlers see one spelling of each path:
 * "*" (OPTIONS only), or a path that the caller has seen start with '/'
 * (or with '?' or nothing, what follows an absolute-form authority).
 * 0, or the status to answer. */
int request_set_target(struct arena *arena, struct exchange *ex, const char *target, size_t len);

/* Kestrel's host filtering (allowed_hosts); a request without a host
 * passes, as with Kestrel's AllowEmptyHosts. */
bool request_host_allowed(const struct worker *w, const struct exchange *ex);

/* The route for the request (NULL: 404), matched as soon as the head is
 * known; *body_limit gets its max_request_body_size, the route's own when
 * it sets one. */
const struct router_entry *request_route(struct worker *w, const struct endpoint *endpoint,
                                         const struct config_limits *limits,
                                         const struct exchange *ex, uint64_t *body_limit);

/* What the protocol knows of a request head beyond the exchange. */
struct conn;
struct request_head {
    /* The endpoint and the client's address are the exchange's
     * (ex->endpoint, ex->peer): a handler reads them after the head. */
    const struct config_limits *limits; /* the connection's */
    struct conn *conn;                  /* for its connection list entry; may be NULL */
    const char *authority;  /* HTTP/2's :authority, or NULL */
    size_t authority_len;
    bool absolute_form;     /* the target may be absolute-form (HTTP/1.1) */
    int64_t content_length; /* declared, or -1 */
};

/* What the pipeline decided. */
struct request_verdict {
    int status;               /* 0: serve it; else refuse it with this status */
    int counter;              /* enum shm_counter of the refusal; SHM_COUNTER_COUNT: none */
    const struct router_entry *entry; /* the route (NULL: 404 at dispatch) */
    uint64_t body_limit;      /* max_request_body_size for this request */
    bool expect_continue;     /* Expect: 100-continue */
};

/* The one pipeline every request head goes through, for HTTP/1.1 and
 * HTTP/2 alike, in this order: the host (one Host at most, required in
 * HTTP/1.1, and equal to the authority when both are given), the
 * target (absolute-form where head allows it, origin-form, "*"; the path
 * normalised), allowed_hosts, the route and its body limit, a declared
 * Content-Length over it (413), the expectation (100-continue, or 417
 * for any other), and last the route's rate limits (429, with its
 * Retry-After already among the response headers; rate_limit.h), so
 * only a request that would be served takes a permit. The request line
 * goes into the connection list. The protocol counts the request,
 * answers a refusal, and dispatches when its framing allows
 * (request_dispatch). A 429 is an answer, not a broken request: the
 * connection stays open (HTTP/1.1 drains a body, but closes after it
 * when the client waits for 100 Continue). */
void request_head_check(struct worker *w, struct exchange *ex, const struct request_head *head,
                        struct request_verdict *v);

/* The route's handler reads request bodies itself (handler_ops'
 * reads_body or route_reads_body): it runs at the head, not once the
 * body is in. */
bool request_reads_body(const struct router_entry *entry);

/* Runs the route's handler (OPTIONS * and no route are answered here). */
void request_dispatch(const struct router_entry *entry, struct exchange *ex);

/* 1xx, 204 and 304 carry no content (RFC 9110 section 6.4.1). Inline:
 * every response asks, some twice. */
static inline bool request_status_has_body(int status)
{
    return status >= 200 && status != 204 && status != 304;
}

/* Kestrel's MinDataRate: bytes since start_ms average below the rate,
 * once its grace period is over (rate off, or start_ms 0: never). */
struct config_data_rate;
bool request_too_slow(const struct config_data_rate *rate, uint64_t start_ms, uint64_t bytes,
                      uint64_t now_ms);

/* Counts the response by status class in the worker's shm slot. */
void request_count_response(struct worker *w, int status);

/* What an access log line needs beyond the exchange. */
struct request_origin {
    const struct endpoint *endpoint; /* may be NULL */
    const struct sockaddr *peer;     /* may be NULL */
    const char *client_subject;      /* TLS client certificate, or NULL */
    uint64_t started_ms;             /* when the request began */
};

/* One access log line for the response about to be sent (before a file
 * body is handed over: its length is read from the exchange). Nothing
 * when the log is off or the endpoint turns it off. */
void request_log_access(struct worker *w, const struct exchange *ex,
                        const struct request_origin *origin);

#endif
