/*
 * h1_conn.c - HTTP/1.1 as a connection's protocol: conn.h's ops over
 * h1.h. See h1.h.
 *
 * The HTTP/1 state (parser, arena, header bookkeeping: ~400 bytes)
 * belongs to a connection only while a request is in progress: it is
 * taken from the worker's spares when bytes arrive and given back once
 * the connection is idle with its output flushed.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "worker/conn.h"
#include "worker/h1.h"
#include "worker/request.h"
#include "worker/worker.h"

#define H1_SPARES_MAX 1024

static struct h1 *h1_acquire(struct conn *c)
{
    if (c->proto_state != NULL)
        return c->proto_state;
    struct worker *w = c->worker;
    struct h1 *h1 = w->spare_h1s;
    if (h1 != NULL) {
        memcpy(&w->spare_h1s, (const void *)h1, sizeof w->spare_h1s); /* the link kept in its first bytes */
        w->spare_h1_count--;
    } else if ((h1 = malloc(sizeof *h1)) == NULL) {
        log_limited(LOG_ERROR, errno, "malloc(h1)");
        return NULL;
    }
    h1_init(h1, w, &c->out);
    h1_set_connection(h1, c->endpoint, c->limits, &c->peer.sa);
    h1->client_subject = conn_peer_subject(c);
    h1->conn = c;
    c->proto_state = h1;
    return h1;
}

void h1_state_free(void *arg)
{
    struct h1 *h1 = arg;
    struct worker *w = h1->worker;
    h1_destroy(h1);
    if (w->spare_h1_count >= H1_SPARES_MAX) {
        free(h1);
        return;
    }
    memcpy((void *)h1, &w->spare_h1s, sizeof w->spare_h1s);
    w->spare_h1s = h1;
    w->spare_h1_count++;
}

static void h1_give_back(struct conn *c)
{
    if (c->proto_state == NULL)
        return;
    h1_state_free(c->proto_state);
    c->proto_state = NULL;
}

void h1_free_spares(struct worker *w)
{
    while (w->spare_h1s != NULL) {
        struct h1 *h1 = w->spare_h1s;
        memcpy(&w->spare_h1s, (const void *)h1, sizeof w->spare_h1s);
        free(h1);
    }
    w->spare_h1_count = 0;
}

static void h1c_feed(struct conn *c, const char *data, size_t len)
{
    struct h1 *h1 = h1_acquire(c);
    if (h1 == NULL || h1_feed(h1, data, len) == H1_CLOSE)
        conn_end(c);
}

static enum conn_owed h1c_produce(struct conn *c)
{
    struct h1 *h1 = c->proto_state;
    if (h1 == NULL)
        return CONN_OWES_NOTHING;
    enum conn_owed owed = h1_produce(h1);
    if (h1->peer_gone && !h1->backlogged && c->proto == &h1_protocol) {
        h1->peer_gone = false; /* what came before the EOF is answered */
        if (h1_on_eof(h1)) {
            conn_close(c);
            return CONN_OWES_NOTHING;
        }
    }
    if (c->proto == &h1_protocol && h1->closing && !c->closing)
        conn_end(c); /* a resumed parse met the end of the connection */
    return owed;
}

/* Idle, and not closing (which the state remembers): the state goes back. */
static bool h1c_idle(struct conn *c)
{
    struct h1 *h1 = c->proto_state;
    if (h1 == NULL)
        return true;
    if (!h1_idle(h1))
        return false;
    if (!h1->closing)
        h1_give_back(c);
    return true;
}

static uint64_t h1c_deadline(struct conn *c, uint64_t now_ms)
{
    struct h1 *h1 = c->proto_state;
    if (h1 != NULL && h1_reading_head(h1))
        return h1->request_started_ms + c->limits->request_headers_timeout_ms;
    /* idle, or waiting for the peer to read or send: no progress for this long closes */
    return now_ms + c->limits->keep_alive_timeout_ms;
}

/* The body data rate, and the drain of a body answered early. True when
 * c is closing because of them. */
static bool h1c_check_body(struct conn *c, struct h1 *h1, uint64_t now_ms)
{
    uint64_t body_start, body_bytes;
    if (h1_body_expired(h1, now_ms)) {
        conn_close(c); /* a body nobody reads, still coming after the drain limit */
        return true;
    }
    if (h1_reading_body(h1, &body_start, &body_bytes) &&
        request_too_slow(&c->limits->min_request_body_data_rate, body_start, body_bytes, now_ms)) {
        h1_body_too_slow(h1);
        conn_end(c);
        conn_wake(c);
        return true;
    }
    return false;
}

static void h1c_tick(struct conn *c, uint64_t now_ms, bool expired)
{
    struct h1 *h1 = c->proto_state;
    if (h1 != NULL && !c->closing && h1c_check_body(c, h1, now_ms))
        return;
    if (!expired)
        return;
    if ((h1 == NULL || h1_idle(h1)) && conn_output_empty(c)) {
        if (c->worker->draining) {
            conn_end(c); /* the end of the lame-duck grace: half-close */
            conn_wake(c);
        } else {
            conn_close(c);
        }
        return;
    }
    if (h1 != NULL && h1_reading_head(h1)) {
        h1_timeout(h1);
        conn_end(c);
        conn_wake(c);
        return;
    }
    conn_close(c); /* a response the client does not read, or a body that does not come */
}

static void h1c_drain(struct conn *c)
{
    (void)c; /* the next response says Connection: close (h1 reads w->draining) */
}

static bool h1c_eof(struct conn *c)
{
    struct h1 *h1 = c->proto_state;
    if (h1 != NULL && h1->backlogged) {
        h1->peer_gone = true; /* requests stashed before it are answered first */
        return true;
    }
    if (h1 != NULL && h1_on_eof(h1))
        conn_close(c); /* its producer hears of it at the release */
    return false;
}

/* Between requests the state may be gone: idle. */
static enum shm_conn_state h1c_state(struct conn *c)
{
    const struct h1 *h1 = c->proto_state;
    if (h1 == NULL || h1_idle(h1))
        return SHM_CONN_IDLE;
    if (h1_reading_head(h1))
        return SHM_CONN_READING_HEAD;
    if (h1->reading_body && h1->ex != NULL && !h1->ex->responded)
        return SHM_CONN_READING_BODY;
    return SHM_CONN_HANDLING;
}

const struct conn_protocol h1_protocol = {
    .name = "http/1.1",
    .feed = h1c_feed,
    .produce = h1c_produce,
    .idle = h1c_idle,
    .deadline = h1c_deadline,
    .tick = h1c_tick,
    .drain = h1c_drain,
    .eof = h1c_eof,
    .free = h1_give_back, /* h1_destroy tells a producer still at work first */
    .state = h1c_state,
};
