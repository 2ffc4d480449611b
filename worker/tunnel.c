/*
 * tunnel.c - raw bytes both ways after an upgrade; see tunnel.h.
 *
 * The client's bytes go to the handler's reader as they are read (the
 * worker's read buffer, valid during the call), or wait in a buffer of
 * the tunnel's while the reader is paused, with the socket's reading
 * paused too. The handler's sends are copied into the output queue; its
 * proceed comes once the queue is below the high-water mark.
 */
#include "worker/tunnel.h"

#include <stdlib.h>
#include <string.h>

#include "common/bytebuf.h"
#include "common/error.h"
#include "conf/config.h"
#include "worker/conn.h"
#include "worker/exchange.h"

struct tunnel {
    struct conn *conn;
    struct exchange *ex;
    void *owner;
    void (*owner_free)(void *);
    struct bytebuf held; /* client bytes waiting for the reader */
    bool eof;          /* the client half-closed */
    bool deliver_owed; /* held bytes (or the end) go to the reader at the flush */
    bool proceed_owed; /* a MORE send was taken */
};

static bool tunnel_gone(const struct tunnel *t)
{
    return t->conn->closed || t->ex->abandoned;
}

static void tunnel_feed(struct conn *c, const char *data, size_t len)
{
    struct tunnel *t = c->proto_state;
    struct exchange *ex = t->ex;
    if (ex->body_reader != NULL && !ex->body_paused && t->held.len == 0) {
        exchange_body_data(ex, data, len);
    } else if (bytebuf_append(&t->held, data, len) != SK_OK) {
        conn_abort(c);
        return;
    }
    if (ex->body_reader == NULL || ex->body_paused)
        conn_pause_input(c, true); /* what the reader cannot take stays in the kernel */
}

/* Held bytes, then the end, to a reader that is not paused. */
static void tunnel_deliver(struct tunnel *t)
{
    struct exchange *ex = t->ex;
    if (ex->body_reader == NULL || ex->body_paused)
        return;
    if (t->held.len > 0) {
        struct bytebuf held = t->held; /* kept only while the reader could not take it */
        t->held = (struct bytebuf){0};
        exchange_body_data(ex, held.data, held.len);
        bytebuf_free(&held);
        if (ex->body_paused)
            return;
    }
    if (t->eof)
        exchange_body_end(ex);
    else
        conn_pause_input(t->conn, false);
}

static enum conn_owed tunnel_produce(struct conn *c)
{
    struct tunnel *t = c->proto_state;
    if (t->deliver_owed && !tunnel_gone(t)) {
        t->deliver_owed = false;
        tunnel_deliver(t);
    }
    while (t->proceed_owed && c->out.pending_bytes < OUTQ_HIGH_WATER && !tunnel_gone(t)) {
        t->proceed_owed = false;
        exchange_proceed(t->ex);
    }
    if (t->proceed_owed && !tunnel_gone(t))
        return CONN_OWES_MORE;
    return t->ex->finished || tunnel_gone(t) ? CONN_OWES_NOTHING : CONN_OWES_LATER;
}

static bool tunnel_idle(struct conn *c)
{
    (void)c;
    return false; /* what passes through is not ours to cut short */
}

static uint64_t tunnel_deadline(struct conn *c, uint64_t now_ms)
{
    return now_ms + c->limits->keep_alive_timeout_ms; /* no traffic for this long closes */
}

static void tunnel_tick(struct conn *c, uint64_t now_ms, bool expired)
{
    (void)now_ms;
    if (expired)
        conn_close(c); /* the handler hears of it at the release */
}

static void tunnel_drain(struct conn *c)
{
    (void)c; /* a tunnel ends by itself, or at shutdown_timeout */
}

/* The client half-closed: its reader gets the end; what the handler
 * still sends goes out before the close. */
static bool tunnel_eof(struct conn *c)
{
    struct tunnel *t = c->proto_state;
    t->eof = true;
    t->deliver_owed = true;
    return !t->ex->finished;
}

static void tunnel_free(struct conn *c)
{
    struct tunnel *t = c->proto_state;
    exchange_body_error(t->ex, 0);
    exchange_stop(t->ex);
    t->owner_free(t->owner);
    tunnel_discard(t);
    c->proto_state = NULL;
}

static enum shm_conn_state tunnel_state(struct conn *c)
{
    (void)c;
    return SHM_CONN_TUNNEL;
}

const struct conn_protocol tunnel_protocol = {
    .name = "tunnel",
    .feed = tunnel_feed,
    .produce = tunnel_produce,
    .idle = tunnel_idle,
    .deadline = tunnel_deadline,
    .tick = tunnel_tick,
    .drain = tunnel_drain,
    .eof = tunnel_eof,
    .free = tunnel_free,
    .state = tunnel_state,
};

/* ---- the exchange's calls ------------------------------------------------ */

static void tunnel_respond(struct exchange *ex)
{
    (void)ex; /* the 101 was the response */
}

static int tunnel_start_again(struct exchange *ex)
{
    (void)ex;
    return SK_ERROR;
}

static int tunnel_send(struct exchange *ex, const struct exchange_buf *bufs, size_t n,
                       enum exchange_send_state state)
{
    struct tunnel *t = ex->protocol;
    if (tunnel_gone(t))
        return SK_ERROR;
    if (state == EXCHANGE_ERROR) {
        conn_abort(t->conn);
        return SK_OK;
    }
    for (size_t i = 0; i < n; i++)
        if (bufs[i].len > 0 && outq_add_copy(&t->conn->out, bufs[i].base, bufs[i].len) != 0) {
            conn_abort(t->conn);
            return SK_ERROR;
        }
    ex->body_sent += exchange_bufs_len(bufs, n);
    if (state == EXCHANGE_FINAL)
        conn_end(t->conn); /* closes once what is queued has left */
    else
        t->proceed_owed = true;
    conn_wake(t->conn);
    return SK_OK;
}

static int tunnel_read_body(struct exchange *ex)
{
    struct tunnel *t = ex->protocol;
    if (tunnel_gone(t))
        return SK_ERROR;
    t->deliver_owed = true;
    conn_wake(t->conn);
    return SK_OK;
}

static void tunnel_pause_body(struct exchange *ex, bool paused)
{
    struct tunnel *t = ex->protocol;
    if (paused) {
        conn_pause_input(t->conn, true);
        return;
    }
    t->deliver_owed = true;
    conn_wake(t->conn);
}

static const struct exchange_ops tunnel_exchange_ops = {
    .respond = tunnel_respond,
    .start = tunnel_start_again,
    .send = tunnel_send,
    .read_body = tunnel_read_body,
    .pause_body = tunnel_pause_body,
};

struct tunnel *tunnel_new(struct conn *c, struct exchange *ex)
{
    struct tunnel *t = calloc(1, sizeof *t);
    if (t == NULL)
        return NULL;
    t->conn = c;
    t->ex = ex;
    ex->ops = &tunnel_exchange_ops;
    ex->protocol = t;
    return t;
}

void tunnel_discard(struct tunnel *t)
{
    bytebuf_free(&t->held);
    free(t);
}

int tunnel_switch(struct tunnel *t, void *owner, void (*owner_free)(void *), const char *data,
                  size_t len)
{
    struct conn *c = t->conn;
    if (bytebuf_append(&t->held, data, len) != SK_OK) {
        tunnel_discard(t);
        conn_close(c);
        return SK_ERROR;
    }
    t->owner = owner;
    t->owner_free = owner_free;
    conn_switch_protocol(c, &tunnel_protocol, t);
    t->deliver_owed = true; /* the reader, if there is one already, gets what came */
    conn_pause_input(c, t->ex->body_reader == NULL || t->ex->body_paused || t->held.len > 0);
    conn_wake(c);
    return SK_OK;
}
