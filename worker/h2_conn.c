/*
 * h2_conn.c - HTTP/2 as a connection's protocol: conn.h's ops over h2.h.
 * See h2.h.
 *
 * Deadlines: the preface and any open header block (nothing else can
 * arrive while a header block is open: RFC 9113 section 6.2) are held to
 * request_headers_timeout; a session without streams gets GOAWAY at
 * keep_alive_timeout; one whose streams make no progress for as long
 * closes. Both are counted from the last request or DATA frame: control
 * frames (a PING every second) keep nothing alive.
 */
#include "common/error.h"
#include "common/log.h"
#include "shm/shm.h"
#include "worker/conn.h"
#include "worker/h2.h"
#include "worker/worker.h"

int h2_conn_start(struct conn *c, bool weak)
{
    struct h2_params params = {
        .worker = c->worker,
        .out = &c->out,
        .conn = c,
        .endpoint = c->endpoint,
        .limits = c->limits,
        .peer = &c->peer.sa,
        .client_subject = conn_peer_subject(c),
        .inadequate_security = weak,
    };
    struct h2 *h2 = h2_new(&params);
    if (h2 == NULL) {
        log_limited(LOG_ERROR, 0, "HTTP/2 session: out of memory");
        return SK_ERROR;
    }
    conn_switch_protocol(c, &h2_protocol, h2);
    return SK_OK;
}

static void h2c_feed(struct conn *c, const char *data, size_t len)
{
    if (h2_feed(c->proto_state, data, len) == H2_CLOSE)
        conn_end(c);
}

static enum conn_owed h2c_produce(struct conn *c)
{
    struct h2 *h2 = c->proto_state;
    bool more = h2_produce(h2);
    if (h2_finished(h2))
        conn_end(c); /* nothing left to read or to send: closes once flushed */
    return more ? CONN_OWES_MORE : h2_owes_later(h2) ? CONN_OWES_LATER : CONN_OWES_NOTHING;
}

static bool h2c_idle(struct conn *c)
{
    return h2_idle(c->proto_state);
}

static uint64_t h2c_deadline(struct conn *c, uint64_t now_ms)
{
    uint64_t since;
    (void)now_ms;
    if (h2_reading_head(c->proto_state, &since))
        return since + c->limits->request_headers_timeout_ms;
    /* From the last progress, not the last flush: a PING answered, or a
     * window that stays shut, keeps no connection (or its descriptors)
     * alive past keep_alive_timeout. */
    return h2_active_ms(c->proto_state) + c->limits->keep_alive_timeout_ms;
}

/* Ends the session with a GOAWAY, once what is queued is sent. */
static void h2c_end(struct conn *c)
{
    h2_goaway(c->proto_state);
    conn_end(c);
    conn_wake(c);
}

static void h2c_tick(struct conn *c, uint64_t now_ms, bool expired)
{
    struct h2 *h2 = c->proto_state;
    uint64_t since;
    if (!c->closing) {
        if (h2_tick(h2, now_ms) == H2_CLOSE) {
            conn_close(c); /* the keep-alive ping went unanswered */
            return;
        }
        if (h2_want_write(h2))
            conn_wake(c); /* a 408, a reset or a ping to send */
        else if (conn_output_empty(c))
            h2_trim(h2, now_ms);
    }
    if (!expired)
        return;
    if (h2_reading_head(h2, &since)) {
        if (c->worker->slot != NULL)
            shm_slot_count(c->worker->slot, SHM_REJECT_HEADERS_TIMEOUT, 1);
        h2c_end(c);
    } else if ((h2_idle(h2) || h2_abandoned(h2)) && conn_output_empty(c)) {
        h2c_end(c); /* the resets of idle tunnels (h2_tick) go first */
    } else {
        conn_close(c);
    }
}

static void h2c_drain(struct conn *c)
{
    struct h2 *h2 = c->proto_state;
    h2_shutdown_notice(h2); /* told once */
    if (h2_want_write(h2))
        conn_wake(c);
}

static bool h2c_eof(struct conn *c)
{
    h2_peer_closed(c->proto_state);
    return true; /* answers to what was asked may be frames still to make */
}

static void h2c_free(struct conn *c)
{
    h2_free(c->proto_state);
    c->proto_state = NULL;
}

static enum shm_conn_state h2c_state(struct conn *c)
{
    return h2_state(c->proto_state);
}

const struct conn_protocol h2_protocol = {
    .name = "h2",
    .feed = h2c_feed,
    .produce = h2c_produce,
    .idle = h2c_idle,
    .deadline = h2c_deadline,
    .tick = h2c_tick,
    .drain = h2c_drain,
    .eof = h2c_eof,
    .free = h2c_free,
    .state = h2c_state,
};
