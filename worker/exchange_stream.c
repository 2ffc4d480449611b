/*
 * exchange_stream.c - responses given later or piece by piece: the
 * generator, the filters between it and the protocol, and the end of an
 * abandoned exchange; see exchange.h and exchange_filter.h.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/error.h"
#include "worker/exchange.h"
#include "worker/exchange_filter.h"

void exchange_set_generator(struct exchange *ex, const struct exchange_generator *gen,
                            void *arg)
{
    ex->generator = gen;
    ex->generator_arg = arg;
}

void exchange_add_filter(struct exchange *ex, struct exchange_filter *f)
{
    f->next = NULL;
    f->prev = ex->filter_last;
    if (ex->filter_last != NULL)
        ex->filter_last->next = f;
    else
        ex->filter = f;
    ex->filter_last = f;
}

static void filter_unlink(struct exchange *ex, struct exchange_filter *f)
{
    if (f->prev != NULL)
        f->prev->next = f->next;
    else
        ex->filter = f->next;
    if (f->next != NULL)
        f->next->prev = f->prev;
    else
        ex->filter_last = f->prev;
}

int exchange_filters_start(struct exchange *ex)
{
    struct exchange_filter *next;
    for (struct exchange_filter *f = ex->filter; f != NULL; f = next) {
        next = f->next;
        int rc = f->ops->start != NULL ? f->ops->start(ex, f) : SK_OK;
        if (rc == SK_DECLINED)
            filter_unlink(ex, f);
        else if (rc != SK_OK)
            return SK_ERROR;
    }
    return SK_OK;
}

int exchange_start(struct exchange *ex)
{
    if (ex->responded || ex->abandoned || ex->generator == NULL)
        return SK_ERROR;
    ex->streaming = true; /* what filters see: a body of the declared length, or unknown */
    if (exchange_filters_start(ex) != SK_OK) {
        ex->streaming = false;
        return SK_ERROR;
    }
    ex->responded = true;
    return ex->ops->start(ex);
}

int exchange_start_filtered(struct exchange *ex)
{
    if (ex->responded || ex->abandoned || ex->generator == NULL)
        return SK_ERROR;
    ex->responded = true;
    ex->streaming = true;
    return ex->ops->start(ex);
}

int64_t exchange_body_length(const struct exchange *ex)
{
    if (ex->streaming)
        return exchange_response_length(ex);
    return ex->body_kind == BODY_NONE ? 0 : (int64_t)ex->body_len;
}

int exchange_upgrade(struct exchange *ex, const char *protocol)
{
    if (ex->responded || ex->abandoned || ex->generator == NULL)
        return SK_ERROR;
    if (ex->ops->upgrade == NULL)
        return SK_DECLINED;
    int rc = ex->ops->upgrade(ex, protocol);
    if (rc == SK_OK) {
        ex->responded = true;
        ex->streaming = true;
    }
    return rc;
}

int exchange_send_lent(struct exchange *ex, const struct exchange_buf *buf,
                       void (*release)(void *arg), void *arg)
{
    if (ex->filter == NULL && ex->ops->send_lent != NULL && ex->streaming && !ex->finished &&
        !ex->abandoned)
        return ex->ops->send_lent(ex, buf, release, arg);
    int rc = exchange_send(ex, buf, 1, EXCHANGE_MORE);
    if (rc != SK_OK || ex->lent_release != NULL) { /* the latter: a generator's misuse */
        release(arg);
        return rc;
    }
    ex->lent_release = release; /* valid until the proceed, as any send's bytes */
    ex->lent_arg = arg;
    return SK_OK;
}

/* The bytes of a lent piece sent as plain bytes are no longer needed. */
static void exchange_lent_return(struct exchange *ex)
{
    void (*release)(void *) = ex->lent_release;
    if (release != NULL) {
        ex->lent_release = NULL;
        release(ex->lent_arg);
    }
}

/* The generator's proceed: the previous piece's bytes are free again. */
static void exchange_generator_proceed(struct exchange *ex)
{
    exchange_lent_return(ex);
    if (ex->generator != NULL && ex->generator->proceed != NULL)
        ex->generator->proceed(ex, ex->generator_arg);
}

int exchange_filter_send(struct exchange *ex, struct exchange_filter *f,
                         const struct exchange_buf *bufs, size_t n,
                         enum exchange_send_state state)
{
    if (ex->abandoned)
        return SK_ERROR;
    if (f->next != NULL)
        return f->next->ops->send(ex, f->next, bufs, n, state);
    int rc = ex->ops->send(ex, bufs, n, state);
    if (rc == SK_OK && state != EXCHANGE_MORE)
        ex->finished = true;
    return rc;
}

int exchange_send(struct exchange *ex, const struct exchange_buf *bufs, size_t n,
                  enum exchange_send_state state)
{
    if (!ex->streaming || ex->handler_done || ex->abandoned)
        return SK_ERROR;
    /* Through a filter, the exchange is finished when the last filter
     * sends its own final piece (exchange_filter_send). */
    int rc = ex->filter != NULL ? ex->filter->ops->send(ex, ex->filter, bufs, n, state)
                                : ex->ops->send(ex, bufs, n, state);
    if (rc == SK_OK && state != EXCHANGE_MORE) {
        ex->handler_done = true;
        if (ex->filter == NULL)
            ex->finished = true;
    }
    if (state != EXCHANGE_MORE)
        exchange_lent_return(ex); /* the final call: nothing before it is read again */
    return rc;
}

void exchange_filter_proceed(struct exchange *ex, struct exchange_filter *f)
{
    if (ex->abandoned)
        return;
    if (f->prev != NULL) {
        if (f->prev->ops->proceed != NULL)
            f->prev->ops->proceed(ex, f->prev);
        else
            exchange_filter_proceed(ex, f->prev);
    } else if (!ex->handler_done) {
        exchange_generator_proceed(ex);
    }
}

void exchange_proceed(struct exchange *ex)
{
    struct exchange_filter *f = ex->filter_last;
    if (ex->abandoned || ex->finished)
        return;
    if (f != NULL && f->ops->proceed != NULL)
        f->ops->proceed(ex, f);
    else if (f != NULL)
        exchange_filter_proceed(ex, f);
    else if (!ex->handler_done)
        exchange_generator_proceed(ex);
}

void exchange_abandon(struct exchange *ex)
{
    ex->abandoned = true;
}

/* Filters may still hold what the handler finished with, so all of
 * them hear it; the generator only when its final call never came. */
void exchange_stop(struct exchange *ex)
{
    if (ex->stopped)
        return;
    ex->abandoned = true;
    ex->stopped = true;
    exchange_lent_return(ex);
    for (struct exchange_filter *f = ex->filter; f != NULL; f = f->next)
        if (f->ops->stop != NULL)
            f->ops->stop(ex, f);
    if (!ex->handler_done && ex->generator != NULL && ex->generator->stop != NULL)
        ex->generator->stop(ex, ex->generator_arg);
}

int exchange_add_trailer(struct exchange *ex, const char *name, const char *value)
{
    struct header_field field;
    if (exchange_copy_field(ex->arena, &field, name, strlen(name), value, strlen(value)) != SK_OK)
        return SK_ERROR;
    return exchange_push_field(ex->arena, &ex->trailers, &ex->trailer_count,
                               &ex->trailer_capacity, &field);
}

size_t exchange_bufs_len(const struct exchange_buf *bufs, size_t n)
{
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += bufs[i].len;
    return total;
}

bool exchange_length_kept(int64_t *left, size_t total, enum exchange_send_state state)
{
    if (*left < 0)
        return true;
    if ((uint64_t)total > (uint64_t)*left)
        return false;
    *left -= (int64_t)total;
    return state != EXCHANGE_FINAL || *left == 0;
}

int64_t exchange_response_length(const struct exchange *ex)
{
    for (size_t i = 0; i < ex->response_header_count; i++) {
        const struct header_field *h = &ex->response_headers[i];
        if (h->name_len == 14 && strncasecmp(h->name, "content-length", 14) == 0) {
            char *end;
            unsigned long long n = strtoull(h->value, &end, 10);
            return end == h->value ? -1 : (int64_t)n;
        }
    }
    return -1;
}
