/*
 * exchange.c - the handler-facing request/response API; see exchange.h.
 */
#include "worker/exchange.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "common/error.h"
#include "conf/config.h"
#include "worker/exchange_filter.h"

const char *exchange_header_n(const struct exchange *ex, const char *name, size_t name_len,
                              size_t *len)
{
    for (size_t i = 0; i < ex->header_count; i++) {
        const struct header_field *h = &ex->headers[i];
        if (h->name_len == name_len && strncasecmp(h->name, name, name_len) == 0) {
            *len = h->value_len;
            return h->value;
        }
    }
    return NULL;
}

struct header_field *exchange_response_header(struct exchange *ex, const char *name)
{
    size_t name_len = strlen(name);
    for (size_t i = 0; i < ex->response_header_count; i++) {
        struct header_field *h = &ex->response_headers[i];
        if (h->name_len == name_len && strncasecmp(h->name, name, name_len) == 0)
            return h;
    }
    return NULL;
}

void exchange_remove_response_header(struct exchange *ex, const char *name)
{
    size_t name_len = strlen(name), kept = 0;
    for (size_t i = 0; i < ex->response_header_count; i++) {
        struct header_field *h = &ex->response_headers[i];
        if (h->name_len != name_len || strncasecmp(h->name, name, name_len) != 0)
            ex->response_headers[kept++] = *h;
    }
    ex->response_header_count = kept;
}

int exchange_push_field(struct arena *arena, struct header_field **fields, size_t *count,
                        size_t *capacity, const struct header_field *field)
{
    if (*count == *capacity) {
        size_t grown_capacity = *capacity ? *capacity * 2 : 16;
        struct header_field *grown = arena_grow(arena, *fields, *capacity * sizeof *grown,
                                                grown_capacity * sizeof *grown);
        if (grown == NULL)
            return SK_ERROR;
        *fields = grown;
        *capacity = grown_capacity;
    }
    (*fields)[(*count)++] = *field;
    return SK_OK;
}

int exchange_push_request_header(struct exchange *ex, const struct header_field *field)
{
    return exchange_push_field(ex->arena, &ex->headers, &ex->header_count, &ex->header_capacity, field);
}

int exchange_copy_field(struct arena *arena, struct header_field *field, const char *name,
                        size_t name_len, const char *value, size_t value_len)
{
    /* Name and value in one piece of the arena, each NUL-terminated. */
    char *n = arena_alloc(arena, name_len + value_len + 2);
    if (n == NULL)
        return SK_ERROR;
    char *v = n + name_len + 1;
    memcpy(n, name, name_len);
    n[name_len] = '\0';
    memcpy(v, value, value_len);
    v[value_len] = '\0';
    *field = (struct header_field){n, name_len, v, value_len};
    return SK_OK;
}

int exchange_add_header_n(struct exchange *ex, const char *name, size_t name_len,
                          const char *value, size_t value_len)
{
    struct header_field field;
    if (exchange_copy_field(ex->arena, &field, name, name_len, value, value_len) != SK_OK)
        return SK_ERROR;
    return exchange_push_field(ex->arena, &ex->response_headers, &ex->response_header_count,
                               &ex->response_header_capacity, &field);
}

int exchange_add_header(struct exchange *ex, const char *name, const char *value)
{
    return exchange_add_header_n(ex, name, strlen(name), value, strlen(value));
}

int exchange_add_config_headers(struct exchange *ex, const struct config_header *headers,
                                size_t count)
{
    for (size_t i = 0; i < count; i++) {
        const struct config_header *h = &headers[i];
        struct header_field field = {h->name, h->name_len, h->value, h->value_len};
        if (exchange_push_field(ex->arena, &ex->response_headers, &ex->response_header_count,
                        &ex->response_header_capacity, &field) != SK_OK)
            return SK_ERROR;
    }
    return SK_OK;
}

static void close_fd(void *arg)
{
    close((int)(intptr_t)arg);
}

void exchange_drop_body(struct exchange *ex)
{
    if (ex->body_kind == BODY_FILE && ex->body_release != NULL)
        ex->body_release(ex->body_release_arg);
    ex->body_kind = BODY_NONE;
    ex->body_release = NULL;
}

void exchange_set_body(struct exchange *ex, const char *body, size_t len, unsigned flags)
{
    exchange_drop_body(ex);
    ex->body_kind = BODY_BYTES;
    ex->body = body;
    ex->body_len = len;
    ex->body_flags = flags;
}

void exchange_set_file(struct exchange *ex, const struct exchange_file *file)
{
    exchange_drop_body(ex);
    ex->body_kind = BODY_FILE;
    ex->body_fd = file->fd;
    ex->body_offset = file->offset;
    ex->body_len = file->len;
    ex->body = file->contents;
    ex->body_release = file->release != NULL ? file->release : close_fd;
    ex->body_release_arg = file->release != NULL ? file->arg : (void *)(intptr_t)file->fd;
}

/* A bytes body with filters goes through them as a stream of one FINAL
 * piece, whose bytes must last until the exchange ends: those the
 * handler only lent for the call are copied into the arena. */
static int respond_bytes_through_filters(struct exchange *ex)
{
    static const struct exchange_generator none = {NULL, NULL};
    struct exchange_buf buf = {"", 0};
    if (ex->body_kind == BODY_BYTES) {
        buf = (struct exchange_buf){ex->body, ex->body_len};
        if (!(ex->body_flags & EXCHANGE_BODY_STABLE) && ex->body_len > 0) {
            char *copy = arena_alloc(ex->arena, ex->body_len);
            if (copy == NULL)
                return SK_ERROR;
            buf.base = memcpy(copy, ex->body, ex->body_len);
        }
    }
    ex->body_kind = BODY_NONE;
    if (ex->generator == NULL)
        exchange_set_generator(ex, &none, NULL);
    if (exchange_start_filtered(ex) != SK_OK)
        return SK_ERROR;
    return exchange_send(ex, &buf, 1, EXCHANGE_FINAL);
}

/* Filters see the head first; those that decline it (a compressor for
 * an image) leave the chain, and a response none of them wants goes out
 * as if there were none: a file as a range, with its Content-Length. */
void exchange_respond(struct exchange *ex)
{
    if (ex->responded || ex->abandoned)
        return;
    if (ex->filter != NULL && exchange_filters_start(ex) != SK_OK) {
        exchange_drop_body(ex);
        exchange_abandon(ex);
        return;
    }
    if (ex->filter != NULL) {
        int rc = ex->body_kind == BODY_FILE ? exchange_stream_file(ex)
                                            : respond_bytes_through_filters(ex);
        if (rc != SK_OK)
            exchange_abandon(ex);
        return;
    }
    ex->responded = true;
    ex->handler_done = ex->finished = true;
    ex->ops->respond(ex);
}

void exchange_respond_error(struct exchange *ex, int status)
{
    char *body = arena_alloc(ex->arena, 64);
    ex->status = status;
    if (body != NULL) {
        int n = snprintf(body, 64, "%d %s\n", status, exchange_status_reason(status));
        if (exchange_add_header(ex, "Content-Type", "text/plain; charset=utf-8") == SK_OK)
            exchange_set_body(ex, body, (size_t)n, 0);
    }
    exchange_respond(ex);
}

struct status_reason {
    int status;
    const char *reason;
};

static const struct status_reason status_reasons[] = {
    {100, "Continue"}, {101, "Switching Protocols"},
    {200, "OK"}, {201, "Created"}, {202, "Accepted"}, {204, "No Content"},
    {206, "Partial Content"},
    {301, "Moved Permanently"}, {302, "Found"}, {303, "See Other"},
    {304, "Not Modified"}, {307, "Temporary Redirect"}, {308, "Permanent Redirect"},
    {400, "Bad Request"}, {401, "Unauthorized"}, {403, "Forbidden"}, {404, "Not Found"},
    {405, "Method Not Allowed"}, {406, "Not Acceptable"}, {408, "Request Timeout"},
    {409, "Conflict"}, {410, "Gone"}, {411, "Length Required"},
    {412, "Precondition Failed"}, {413, "Content Too Large"}, {414, "URI Too Long"},
    {415, "Unsupported Media Type"}, {416, "Range Not Satisfiable"},
    {417, "Expectation Failed"}, {421, "Misdirected Request"}, {426, "Upgrade Required"},
    {429, "Too Many Requests"}, {431, "Request Header Fields Too Large"},
    {500, "Internal Server Error"}, {501, "Not Implemented"}, {502, "Bad Gateway"},
    {503, "Service Unavailable"}, {504, "Gateway Timeout"},
    {505, "HTTP Version Not Supported"},
};

const char *exchange_status_reason(int status)
{
    for (size_t i = 0; i < sizeof status_reasons / sizeof status_reasons[0]; i++)
        if (status_reasons[i].status == status)
            return status_reasons[i].reason;
    return "";
}
