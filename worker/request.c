/*
 * request.c - the protocol-independent steps of serving a request; see
 * request.h.
 */
#include "worker/request.h"

#include <string.h>

#include "common/clock.h"
#include "common/error.h"
#include "shm/shm.h"
#include "worker/access_log.h"
#include "worker/compress.h"
#include "worker/path.h"
#include "worker/router.h"
#include "worker/worker.h"

/* Per byte of an authority: HOST_BYTE_BAD for what it may not hold
 * (controls, space, '/', '@', DEL and every byte above), HOST_BYTE_UPPER
 * (0x20, the bit that lowers it) for 'A'..'Z'. */
#define HOST_BYTE_UPPER 0x20
#define HOST_BYTE_BAD 0x01
static const unsigned char host_byte[256] = {
    [0 ... 0x20] = HOST_BYTE_BAD, ['/'] = HOST_BYTE_BAD, ['@'] = HOST_BYTE_BAD,
    ['A' ... 'Z'] = HOST_BYTE_UPPER, [0x7f ... 0xff] = HOST_BYTE_BAD,
};

int request_set_host(struct arena *arena, struct exchange *ex, const char *value, size_t len)
{
    size_t host_len = len;
    if (len > 0 && value[0] == '[') {
        const char *close = memchr(value, ']', len);
        if (close == NULL)
            return SK_ERROR;
        host_len = (size_t)(close - value) + 1;
    } else {
        const char *colon = memchr(value, ':', len);
        if (colon != NULL)
            host_len = (size_t)(colon - value);
    }
    /* One table look-up a byte, no branch: every request has a host. */
    unsigned char bad = 0;
    for (size_t i = 0; i < len; i++)
        bad |= host_byte[(unsigned char)value[i]];
    if (bad & HOST_BYTE_BAD)
        return SK_ERROR;
    char *host = arena_alloc(arena, host_len + 1);
    if (host == NULL)
        return SK_ERROR;
    for (size_t i = 0; i < host_len; i++)
        host[i] = (char)(value[i] | (host_byte[(unsigned char)value[i]] & HOST_BYTE_UPPER));
    host[host_len] = '\0';
    ex->host = host;
    ex->host_len = host_len;
    ex->authority = value;
    ex->authority_len = len;
    return SK_OK;
}

int request_set_target(struct arena *arena, struct exchange *ex, const char *target, size_t len)
{
    /* asterisk-form (RFC 9112 section 3.2.4) is for OPTIONS only. */
    if (len == 1 && target[0] == '*') {
        if (ex->method != METHOD_OPTIONS)
            return 400;
        ex->path = "*";
        ex->path_len = 1;
        return 0;
    }
    const char *question = memchr(target, '?', len);
    size_t raw_path_len = question ? (size_t)(question - target) : len;
    if (question != NULL) {
        ex->query = question + 1;
        ex->query_len = len - raw_path_len - 1;
    }
    if (raw_path_len == 0) { /* an empty path in absolute-form means "/" */
        ex->path = "/";
        ex->path_len = 1;
        return 0;
    }
    return path_normalize_request(arena, target, raw_path_len, &ex->path, &ex->path_len);
}

bool request_host_allowed(const struct worker *w, const struct exchange *ex)
{
    const struct config *config = w->config;
    if (config->allowed_host_count == 0 || ex->host_len == 0)
        return true;
    for (size_t i = 0; i < config->allowed_host_count; i++) {
        const char *pattern = config->allowed_hosts[i];
        if ((pattern[0] == '*' && pattern[1] == '\0') ||
            router_host_matches(pattern, ex->host, ex->host_len))
            return true;
    }
    return false;
}

const struct router_entry *request_route(struct worker *w, const struct endpoint *endpoint,
                                         const struct config_limits *limits,
                                         const struct exchange *ex, uint64_t *body_limit)
{
    const struct router_entry *entry =
        ex->path[0] == '*' ? NULL
                           : router_match(&w->router, endpoint, ex->host, ex->host_len,
                                          ex->path, ex->path_len);
    *body_limit = limits->max_request_body_size;
    if (entry != NULL && entry->route->has_max_request_body_size)
        *body_limit = entry->route->max_request_body_size;
    return entry;
}

bool request_reads_body(const struct router_entry *entry)
{
    return entry != NULL && entry->reads_body;
}

void request_dispatch(const struct router_entry *entry, struct exchange *ex)
{
    if (ex->method == METHOD_OPTIONS && ex->path[0] == '*') {
        exchange_add_header(ex, "Allow", "GET, HEAD, OPTIONS");
        ex->status = 200;
        exchange_respond(ex);
        return;
    }
    if (entry == NULL || ex->path[0] == '*') {
        exchange_respond_error(ex, 404);
        return;
    }
    const struct route *route = entry->route;
    if (exchange_add_config_headers(ex, route->headers, route->header_count) != SK_OK) {
        exchange_respond_error(ex, 500);
        return;
    }
    compress_attach(ex, route->compression);
    entry->ops->handle(ex, route, entry->state);
}

bool request_too_slow(const struct config_data_rate *rate, uint64_t start_ms, uint64_t bytes,
                      uint64_t now_ms)
{
    if (rate->bytes_per_second == 0 || start_ms == 0 || now_ms < start_ms)
        return false;
    uint64_t elapsed = now_ms - start_ms;
    return elapsed >= rate->grace_period_ms && elapsed > 0 &&
           bytes * 1000 < rate->bytes_per_second * elapsed;
}

void request_count_response(struct worker *w, int status)
{
    static const enum shm_counter by_class[] = {SHM_RESPONSES_1XX, SHM_RESPONSES_2XX,
                                                SHM_RESPONSES_3XX, SHM_RESPONSES_4XX,
                                                SHM_RESPONSES_5XX};
    int class = status / 100 - 1;
    if (class >= 0 && class < 5)
        shm_slot_count(w->slot, by_class[class], 1);
}

void request_log_access(struct worker *w, const struct exchange *ex,
                        const struct request_origin *origin)
{
    if (!access_log_on(&w->access_log) ||
        (origin->endpoint != NULL && !origin->endpoint->access_log))
        return;
    bool send_body = request_status_has_body(ex->status) && ex->method != METHOD_HEAD;
    struct access_log_entry entry = {
        .ex = ex,
        .peer = origin->peer,
        .client_subject = origin->client_subject,
        .endpoint = origin->endpoint != NULL ? origin->endpoint->name : NULL,
        .bytes_sent = !send_body ? 0
                      : ex->streaming ? ex->body_sent
                      : ex->body_kind != BODY_NONE ? ex->body_len : 0,
        .duration_ms = clock_monotonic_ms() - origin->started_ms,
    };
    access_log_record(&w->access_log, &entry);
}
