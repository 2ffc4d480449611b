/*
 * h2_body.c - an HTTP/2 request body: read by its handler as a stream
 * (exchange_read_body), or discarded; see h2.h.
 *
 * Flow control is the backpressure: nghttp2 returns no window by itself
 * (no_auto_window_update). The connection window is given back as DATA
 * arrives, so one paused stream never stalls the others; a stream's own
 * window is given back as its reader takes the bytes. What arrives while
 * a reader is paused (or not there yet) is held, at most the stream's
 * window, and handed over at the connection's next flush, never inside
 * the handler's own call.
 */
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/error.h"
#include "worker/h2_stream.h"
#include "worker/outq.h"

/* Asks for the held bytes (or the end) to reach the reader at the flush. */
static void stream_owe_delivery(struct h2_stream *st)
{
    if (!st->delivery_owed) {
        st->delivery_owed = true;
        st->h2->deliveries_owed++;
    }
    h2_wake(st->h2);
}

void h2_body_data(struct h2_stream *st, const uint8_t *data, size_t len)
{
    struct h2 *h2 = st->h2;
    struct exchange *ex = &st->ex;
    nghttp2_session_consume_connection(h2->session, len);
    if (ex->body_reader != NULL && !ex->body_ended && !ex->body_paused && st->held.len == 0) {
        exchange_body_data(ex, (const char *)data, len);
        nghttp2_session_consume_stream(h2->session, st->id, len);
    } else if (st->early && !ex->finished && !ex->body_ended && !h2_stream_gone(st)) {
        if (bytebuf_append(&st->held, data, len) != SK_OK)
            nghttp2_submit_rst_stream(h2->session, NGHTTP2_FLAG_NONE, st->id,
                                      NGHTTP2_INTERNAL_ERROR);
    } else {
        nghttp2_session_consume_stream(h2->session, st->id, len); /* discarded */
    }
}

void h2_body_end(struct h2_stream *st)
{
    if (st->held.len > 0 || st->ex.body_paused)
        stream_owe_delivery(st); /* after what is held */
    else
        exchange_body_end(&st->ex);
}

/* Held bytes, then the end, to a reader that is not paused. */
static void stream_deliver(struct h2_stream *st)
{
    struct exchange *ex = &st->ex;
    if (ex->body_reader == NULL || ex->body_paused || h2_stream_gone(st))
        return;
    if (st->held.len > 0) {
        struct bytebuf held = st->held; /* kept only while the reader could not take it */
        st->held = (struct bytebuf){0};
        exchange_body_data(ex, held.data, held.len);
        nghttp2_session_consume_stream(st->h2->session, st->id, held.len);
        bytebuf_free(&held);
    }
    if (st->request_complete && !ex->body_paused)
        exchange_body_end(ex);
    st->body_started_ms = clock_monotonic_ms(); /* the rate starts afresh after a pause */
    st->body_rate_base = ex->body_bytes_received;
}

void h2_body_deliver_owed(struct h2 *h2)
{
    for (struct h2_stream *st = h2->streams; st != NULL && h2->deliveries_owed > 0;
         st = st->next) {
        if (!st->delivery_owed)
            continue;
        st->delivery_owed = false;
        h2->deliveries_owed--;
        stream_deliver(st);
    }
}

/* RFC 9110 section 10.1.1: asking for the body is what says "go on". */
static int stream_continue(struct h2_stream *st)
{
    static const nghttp2_nv status = {(uint8_t *)":status", (uint8_t *)"100", 7, 3,
                                      NGHTTP2_NV_FLAG_NONE};
    if (!st->ex.expect_continue || st->request_complete || st->ex.responded)
        return SK_OK;
    if (nghttp2_submit_headers(st->h2->session, NGHTTP2_FLAG_NONE, st->id, NULL, &status, 1,
                               NULL) != 0)
        return SK_ERROR;
    return SK_OK;
}

int h2_read_body(struct exchange *ex)
{
    struct h2_stream *st = ex->protocol;
    if (h2_stream_gone(st))
        return SK_ERROR;
    if (!st->early && ex->body_bytes_received > 0)
        return SK_DECLINED; /* a kind that does not read bodies: it was discarded */
    if (stream_continue(st) != SK_OK)
        return SK_ERROR;
    stream_owe_delivery(st);
    return SK_OK;
}

void h2_pause_body(struct exchange *ex, bool paused)
{
    struct h2_stream *st = ex->protocol;
    if (!paused && !h2_stream_gone(st))
        stream_owe_delivery(st);
}
