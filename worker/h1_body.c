/*
 * h1_body.c - an HTTP/1.1 request body: read by its handler as a stream
 * (exchange_read_body), or discarded, its data rate, and the drain of a
 * body answered before it was all in; see h1.h.
 *
 * Pausing is parsing paused: the piece llhttp was delivering is held,
 * the rest of the read waits in the stash (h1.c), and the socket is not
 * read until the handler resumes; resuming is done at the connection's
 * next flush (h1_body_flush), never inside the handler's own call.
 */
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "shm/shm.h"
#include "worker/conn.h"
#include "worker/h1.h"
#include "worker/worker.h"

void h1_body_begin(struct h1 *h1)
{
    h1->reading_body = true;
    h1->body_started_ms = clock_now_monotonic_ms();
    h1->body_rate_base = 0;
}

bool h1_body_piece(struct h1 *h1, const char *at, size_t len)
{
    struct exchange *ex = h1->ex;
    if (ex->body_reader == NULL || ex->body_ended)
        return false; /* not read: discarded */
    if (!ex->body_paused)
        exchange_body_data(ex, at, len);
    else if (bytebuf_append(&h1->held, at, len) != SK_OK) /* for after the pause */
        h1->closing = true;
    if (ex->body_paused)
        h1->waiting = true; /* the rest of the read waits in the stash */
    return ex->body_paused;
}

/* A reader comes, the reader resumes, or an answer came without one:
 * what was held goes to the reader, then parsing goes on. */
void h1_body_flush(struct h1 *h1)
{
    struct exchange *ex = h1->ex;
    if (ex == NULL || ex->body_paused || h1_gone(h1))
        return;
    if (h1->held.len > 0) {
        struct bytebuf held = h1->held; /* held only while paused */
        h1->held = (struct bytebuf){0};
        exchange_body_data(ex, held.data, held.len);
        bytebuf_free(&held);
        if (ex->body_paused)
            return;
    }
    if (h1->message_complete) {
        exchange_body_end(ex);
        return;
    }
    /* The rate is measured afresh: the pause was the handler's, not the
     * client's. */
    h1->body_started_ms = clock_now_monotonic_ms();
    h1->body_rate_base = ex->body_bytes_received;
    if (h1->waiting) {
        h1->waiting = false;
        h1_resume(h1);
    } else if (h1->conn != NULL) {
        conn_pause_input(h1->conn, false);
    }
}

void h1_body_answered(struct h1 *h1)
{
    struct exchange *ex = h1->ex;
    if (!h1->reading_body || ex == NULL || ex->body_reader != NULL)
        return;
    if (h1->body_drain_until_ms == 0)
        h1->body_drain_until_ms = clock_monotonic_ms() + H1_BODY_DRAIN_MS;
    if (h1->waiting) { /* an early handler that answered without reading */
        h1->body_owed = true;
        h1_wake(h1);
    }
}

int h1_read_body(struct exchange *ex)
{
    struct h1 *h1 = ex->protocol;
    if (h1_gone(h1))
        return SK_ERROR;
    if (!h1->early && ex->body_bytes_received > 0)
        return SK_DECLINED; /* a kind that does not read bodies: it was discarded */
    /* RFC 9110 section 10.1.1: asking for the body is what says "go on". */
    if (ex->expect_continue && !h1->continue_sent && !h1->message_complete && !ex->responded) {
        if (outq_add_stable(h1->out, "HTTP/1.1 100 Continue\r\n\r\n", 25) != 0)
            return SK_ERROR;
        h1->continue_sent = true;
    }
    h1->body_owed = true; /* held pieces, the end, or parsing goes on: at the flush */
    h1_wake(h1);
    return SK_OK;
}

void h1_pause_body(struct exchange *ex, bool paused)
{
    struct h1 *h1 = ex->protocol;
    if (paused) {
        if (h1->conn != NULL)
            conn_pause_input(h1->conn, true);
        return;
    }
    h1->body_owed = true;
    h1_wake(h1);
}

bool h1_reading_body(const struct h1 *h1, uint64_t *started_ms, uint64_t *bytes)
{
    const struct exchange *ex = h1->ex;
    if (!h1->reading_body || ex == NULL || h1->closing || h1->waiting || ex->body_paused)
        return false;
    *started_ms = h1->body_started_ms;
    *bytes = ex->body_bytes_received - h1->body_rate_base;
    return true;
}

void h1_body_too_slow(struct h1 *h1)
{
    shm_slot_count(h1->worker->slot, SHM_REJECT_BODY_RATE, 1);
    h1_refuse(h1, 408, SHM_COUNTER_COUNT);
}

bool h1_body_expired(const struct h1 *h1, uint64_t now_ms)
{
    return h1->reading_body && h1->body_drain_until_ms != 0 && now_ms >= h1->body_drain_until_ms;
}
