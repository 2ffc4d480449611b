/*
 * request_head.c - the one pipeline every request head goes through,
 * whichever protocol carried it; see request.h (request_head_check).
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/error.h"
#include "shm/shm.h"
#include "worker/conn_list.h"
#include "worker/rate_limit.h"
#include "worker/request.h"
#include "worker/worker.h"

/* absolute-form (RFC 9112 section 3.2.2): the authority and the path
 * that follows it. The authority must carry no userinfo (RFC 9110
 * section 4.2.4). False: refuse. */
static bool split_absolute_form(const char *target, size_t len, const char **authority,
                                size_t *authority_len, const char **path, size_t *path_len)
{
    const char *a = strstr(target, "//") + 2;
    size_t a_len = strcspn(a, "/?");
    if (a_len == 0 || memchr(a, '@', a_len) != NULL)
        return false;
    *authority = a;
    *authority_len = a_len;
    *path = a + a_len;
    *path_len = len - (size_t)(*path - target);
    return true;
}

/* The first byte rules out origin-form ('/') and "*" without a call. */
static bool is_absolute_form(const char *target, size_t len)
{
    return len > 7 && (target[0] | 0x20) == 'h' &&
           (strncasecmp(target, "http://", 7) == 0 || strncasecmp(target, "https://", 8) == 0);
}

/* The fields the pipeline reads, found in one pass over the head. */
struct head_fields {
    const struct header_field *host; /* the last Host */
    size_t host_count;
    const struct header_field *expect; /* the first Expect */
};

static void head_scan(const struct exchange *ex, struct head_fields *f)
{
    f->host = f->expect = NULL;
    f->host_count = 0;
    for (size_t i = 0; i < ex->header_count; i++) {
        const struct header_field *h = &ex->headers[i];
        if (exchange_field_is(h, "host", 4)) {
            f->host = h;
            f->host_count++;
        } else if (f->expect == NULL && exchange_field_is(h, "expect", 6)) {
            f->expect = h;
        }
    }
}

/* The host: the authority (HTTP/2's :authority, HTTP/1.1's absolute-form)
 * or the one Host field; when both are there they must name the same
 * host, as Kestrel requires, so that routing, host filtering and any
 * proxy behind us cannot disagree on which host was asked for. HTTP/1.1
 * needs a Host (RFC 9112 section 3.2); HTTP/1.0 and HTTP/2 may have
 * none: the host is then "" (allowed_hosts lets it through). */
static int head_host(struct exchange *ex, const struct head_fields *f, const char *authority,
                     size_t authority_len)
{
    const char *host = f->host != NULL ? f->host->value : NULL;
    size_t host_len = f->host != NULL ? f->host->value_len : 0;
    if (f->host_count > 1 || (f->host_count == 0 && ex->version_major == 1 && ex->version_minor >= 1))
        return SK_ERROR;
    if (authority != NULL && host != NULL &&
        (host_len != authority_len || strncasecmp(host, authority, host_len) != 0))
        return SK_ERROR;
    if (authority != NULL)
        return request_set_host(ex->arena, ex, authority, authority_len);
    if (host != NULL)
        return request_set_host(ex->arena, ex, host, host_len);
    ex->host = "";
    ex->host_len = 0;
    return SK_OK;
}

/* The target: absolute-form's path part (which may be empty or start
 * with '?'), else origin-form, which starts with '/' (RFC 9112 section
 * 3.2.1), or "*"; CONNECT's authority-form, and a missing :path, name no
 * file of ours. 0 or a status. */
static int head_target(struct exchange *ex, bool absolute, const char *path, size_t len)
{
    if (!absolute && (path == NULL || len == 0 ||
                      (path[0] != '/' && !(len == 1 && path[0] == '*'))))
        return 400;
    return request_set_target(ex->arena, ex, path, len);
}

/* RFC 9110 section 10.1.1: 100-continue is the only expectation defined. */
static int head_expectation(const struct head_fields *f, bool *expect_continue)
{
    const struct header_field *expect = f->expect;
    *expect_continue = expect != NULL && expect->value_len == 12 &&
                       strncasecmp(expect->value, "100-continue", 12) == 0;
    return expect != NULL && !*expect_continue ? 417 : 0;
}

/* The steps in order; the first refusal is the verdict. */
static int head_steps(struct worker *w, struct exchange *ex, const struct request_head *head,
                      struct request_verdict *v)
{
    const char *authority = head->authority, *path = ex->target;
    size_t authority_len = head->authority_len, path_len = ex->target_len;
    bool absolute = head->absolute_form && path != NULL && is_absolute_form(path, path_len);
    if (absolute &&
        !split_absolute_form(path, path_len, &authority, &authority_len, &path, &path_len))
        return 400;
    struct head_fields fields;
    head_scan(ex, &fields);
    if (head_host(ex, &fields, authority, authority_len) != SK_OK)
        return 400;
    if (!request_host_allowed(w, ex)) {
        v->counter = SHM_REJECT_HOST_NOT_ALLOWED;
        return 400;
    }
    int status = head_target(ex, absolute, path, path_len);
    if (status != 0)
        return status;
    ex->origin_target = path;
    ex->origin_target_len = path_len;
    v->entry = request_route(w, ex->endpoint, head->limits, ex, &v->body_limit);
    if (head->content_length >= 0 && (uint64_t)head->content_length > v->body_limit) {
        v->counter = SHM_REJECT_BODY_TOO_LARGE;
        return 413;
    }
    v->counter = SHM_COUNTER_COUNT; /* a 417 or a 429 is answered, not counted */
    status = head_expectation(&fields, &v->expect_continue);
    if (status != 0)
        return status;
    return rate_limit_admit(w, v->entry, ex, ex->peer) == SK_OK ? 0 : 429;
}

void request_head_check(struct worker *w, struct exchange *ex, const struct request_head *head,
                        struct request_verdict *v)
{
    memset(v, 0, sizeof *v);
    v->counter = SHM_REJECT_MALFORMED;
    v->body_limit = head->limits->max_request_body_size;
    v->status = head_steps(w, ex, head, v);
    if (ex->target == NULL)
        ex->target = ""; /* CONNECT over HTTP/2 has no :path */
    if (w->conn_list_on)
        conn_list_request(head->conn, ex);
}
