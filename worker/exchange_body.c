/*
 * exchange_body.c - a handler reading the request body as a stream; see
 * exchange.h (exchange_read_body).
 */
#include "common/error.h"
#include "worker/exchange.h"

int exchange_read_body(struct exchange *ex, const struct exchange_body_reader *r, void *arg)
{
    if (ex->abandoned || ex->body_reader != NULL || r == NULL)
        return SK_ERROR;
    if (ex->ops->read_body == NULL)
        return SK_DECLINED;
    ex->body_reader = r;
    ex->body_reader_arg = arg;
    int rc = ex->ops->read_body(ex);
    if (rc != SK_OK)
        ex->body_reader = NULL;
    return rc;
}

void exchange_pause_body(struct exchange *ex)
{
    if (ex->body_paused || ex->abandoned)
        return;
    ex->body_paused = true;
    if (ex->ops->pause_body != NULL)
        ex->ops->pause_body(ex, true);
}

void exchange_resume_body(struct exchange *ex)
{
    if (!ex->body_paused || ex->abandoned)
        return;
    ex->body_paused = false;
    if (ex->ops->pause_body != NULL)
        ex->ops->pause_body(ex, false);
}

void exchange_body_data(struct exchange *ex, const char *data, size_t len)
{
    if (ex->body_reader != NULL && !ex->body_ended && len > 0)
        ex->body_reader->data(ex, data, len, ex->body_reader_arg);
}

void exchange_body_end(struct exchange *ex)
{
    if (ex->body_reader == NULL || ex->body_ended)
        return;
    ex->body_ended = true;
    ex->body_reader->end(ex, ex->request_trailers, ex->request_trailer_count,
                         ex->body_reader_arg);
}

void exchange_body_error(struct exchange *ex, int status)
{
    if (ex->body_reader == NULL || ex->body_ended)
        return;
    ex->body_ended = true;
    if (ex->body_reader->error != NULL)
        ex->body_reader->error(ex, status, ex->body_reader_arg);
}
