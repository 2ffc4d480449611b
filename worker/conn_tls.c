/*
 * conn_tls.c - a connection over TLS: the transport ops and the handshake
 * step; see conn_tls.h.
 */
#include "worker/conn_tls.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <event2/event.h>

#include "common/clock.h"
#include "common/error.h"
#include "common/log.h"
#include "common/slab.h"
#include "shm/shm.h"
#include "worker/access_log.h"
#include "worker/conn.h"
#include "worker/h1.h"
#include "worker/tls.h"
#include "worker/worker.h"

static void count(struct conn *c, enum shm_counter counter)
{
    if (c->outbound)
        return; /* the handshake figures are the server's */
    shm_slot_count(c->worker->slot, counter, 1);
}

static const enum shm_counter failure_counter[TLS_FAIL_COUNT] = {
    [TLS_FAIL_PROTOCOL_VERSION] = SHM_TLS_FAIL_PROTOCOL_VERSION,
    [TLS_FAIL_NO_SHARED_CIPHER] = SHM_TLS_FAIL_NO_SHARED_CIPHER,
    [TLS_FAIL_UNKNOWN_NAME] = SHM_TLS_FAIL_UNKNOWN_NAME,
    [TLS_FAIL_BAD_CERTIFICATE] = SHM_TLS_FAIL_BAD_CERTIFICATE,
    [TLS_FAIL_PLAIN_HTTP] = SHM_TLS_FAIL_PLAIN_HTTP,
    [TLS_FAIL_OTHER] = SHM_TLS_FAIL_OTHER,
};

/* What TLS holds for one connection. */
struct conn_tls {
    SSL *ssl;
    char *subject;  /* the verified client certificate's subject, or NULL */
    uint8_t end;    /* EOF or error found behind data, reported by the next read */
    bool more;      /* the last read stopped before the socket said EAGAIN */
};

static struct conn_tls *tls_of(const struct conn *c) { return c->transport_state; }

/* The gather buffer of every flush: one SSL_write, no allocation, per
 * batch. A flush writes synchronously, so one per worker serves all. */
#define CONN_TLS_SCRATCH (64 * 1024)
static char *scratch;

void conn_tls_free_scratch(void)
{
    free(scratch);
    scratch = NULL;
}

/* A TLS read stops at a record boundary, so "short" says nothing: the
 * source is drained when OpenSSL holds nothing more to decrypt. An
 * EOF or error behind data already decrypted is kept for the next call,
 * because the socket may never be readable again (a close_notify without
 * a TCP close). */
static ssize_t tls_transport_read(struct conn *c, char *buf, size_t len, bool *drained)
{
    struct conn_tls *t = tls_of(c);
    if (t->end != 0) {
        *drained = true;
        errno = t->end == TLS_CLOSED ? 0 : EPROTO;
        return t->end == TLS_CLOSED ? 0 : -1;
    }
    size_t got = 0;
    enum tls_status st = tls_read(t->ssl, buf, len, &got);
    *drained = st != TLS_DONE;
    t->more = st == TLS_DONE;
    switch (st) {
    case TLS_DONE:
        return (ssize_t)got;
    case TLS_WANT_WRITE:
        c->read_wants_write = true;
        /* fall through */
    case TLS_WANT_READ:
        if (got > 0)
            return (ssize_t)got;
        errno = EAGAIN;
        return -1;
    default: /* TLS_CLOSED, TLS_FAILED */
        if (got > 0) {
            t->end = (uint8_t)st;
            *drained = false; /* come back for the end */
            return (ssize_t)got;
        }
        errno = st == TLS_CLOSED ? 0 : EPROTO;
        return st == TLS_CLOSED ? 0 : -1;
    }
}

static enum outq_flush_result tls_transport_flush(struct conn *c, uint64_t *written)
{
    bool want_read;
    if (scratch == NULL && (scratch = malloc(CONN_TLS_SCRATCH)) == NULL) {
        *written = 0;
        return OUTQ_FAILED;
    }
    return tls_write_batch(tls_of(c)->ssl, &c->out, scratch, CONN_TLS_SCRATCH, written,
                           &want_read);
}

/* After a read that ended in WANT_READ, what OpenSSL holds is at most
 * part of a record, and the socket signals the rest: no busy loop. */
static bool tls_transport_pending(const struct conn *c)
{
    const struct conn_tls *t = tls_of(c);
    return !c->handshaking && (t->end != 0 || (t->more && SSL_has_pending(t->ssl) == 1));
}

static bool tls_transport_output_waiting(const struct conn *c)
{
    return tls_write_pending(tls_of(c)->ssl);
}

/* TLS 1.2 with a cipher that is not AEAD is weak for HTTP/2: RFC 9113
 * section 9.2.2 forbids it (only a configured `ciphers` list can allow
 * one), and the session then ends with INADEQUATE_SECURITY. */
static const char *tls_transport_alpn(const struct conn *c, size_t *len, bool *weak)
{
    SSL *ssl = tls_of(c)->ssl;
    *weak = tls_version(ssl) == 12 && tls_cipher(ssl) == TLS_CIPHER_OTHER;
    return tls_alpn(ssl, len);
}

static const char *tls_transport_subject(const struct conn *c)
{
    return tls_of(c)->subject;
}

static void tls_transport_shutdown(struct conn *c)
{
    tls_shutdown(tls_of(c)->ssl);
}

static int tls_transport_close(struct conn *c)
{
    struct conn_tls *t = tls_of(c);
    if (c->handshaking)
        count(c, SHM_TLS_FAIL_OTHER); /* timeout, EOF or drain mid-handshake */
    c->handshaking = false;
    tls_free(t->ssl);
    free(t->subject);
    slab_free(t);
    c->transport_state = NULL;
    return SK_OK;
}

static enum conn_handshake tls_transport_handshake(struct conn *c);

static const struct conn_transport tls_transport = {
    .handshake = tls_transport_handshake,
    .read = tls_transport_read,
    .flush = tls_transport_flush,
    .pending = tls_transport_pending,
    .output_waiting = tls_transport_output_waiting,
    .alpn = tls_transport_alpn,
    .peer_subject = tls_transport_subject,
    .shutdown = tls_transport_shutdown,
    .close = tls_transport_close,
};

int conn_tls_open(struct conn *c, struct tls_server *server)
{
    struct conn_tls *t = slab_calloc(1, sizeof *t);
    if (t == NULL)
        return SK_ERROR;
    t->ssl = tls_conn_new(server, c->fd);
    if (t->ssl == NULL) {
        slab_free(t);
        return SK_ERROR;
    }
    c->transport_state = t;
    c->transport = &tls_transport;
    c->handshaking = true;
    return SK_OK;
}

int conn_tls_connect(struct conn *c, SSL *ssl)
{
    struct conn_tls *t = slab_calloc(1, sizeof *t);
    if (t == NULL) {
        tls_free(ssl);
        return SK_ERROR;
    }
    t->ssl = ssl;
    c->transport_state = t;
    c->transport = &tls_transport;
    c->handshaking = true;
    event_active(&c->read_event, EV_READ, 1); /* the ClientHello goes first */
    return SK_OK;
}

/* Kept for the connection's life (handlers and the access log read it),
 * made once per connection and only when certificates are asked for. */
static void keep_subject(struct conn *c)
{
    char subject[512];
    struct conn_tls *t = tls_of(c);
    if (c->endpoint == NULL || c->endpoint->tls.client_mode == TLS_CLIENT_NONE ||
        tls_peer_subject(t->ssl, subject, sizeof subject) == 0)
        return;
    t->subject = strdup(subject); /* NULL when out of memory: none */
}

static void count_success(struct conn *c)
{
    SSL *ssl = tls_of(c)->ssl;
    count(c, SHM_TLS_HANDSHAKES_OK);
    if (tls_resumed(ssl))
        count(c, SHM_TLS_RESUMED);
    int version = tls_version(ssl);
    if (version == 13)
        count(c, SHM_TLS_13);
    else if (version == 12)
        count(c, SHM_TLS_12);
    count(c, (enum shm_counter)(SHM_TLS_CIPHER_AES128_GCM + tls_cipher(ssl)));
}

/* Which client failed and why, for an operator chasing one client
 * (log_level: debug); the counters carry the reasons in aggregate. */
static void log_failure(const struct conn *c, enum tls_failure why, const char *detail)
{
    if (!log_enabled(LOG_DEBUG))
        return;
    char peer[64];
    access_log_peer_text(&c->peer.sa, peer, sizeof peer);
    log_msg(LOG_DEBUG, "TLS handshake from %s on endpoint '%s' failed (%s): %s", peer,
            c->endpoint != NULL ? c->endpoint->name : "?",
            shm_tls_result(failure_counter[why]), detail);
}

static void answer_plain_http(struct conn *c);

static enum conn_handshake tls_transport_handshake(struct conn *c)
{
    enum tls_failure why = TLS_FAIL_OTHER;
    const char *detail = "";
    switch (tls_handshake(tls_of(c)->ssl, &why, &detail)) {
    case TLS_DONE:
        c->handshaking = false;
        count_success(c);
        keep_subject(c);
        return CONN_HANDSHAKE_DONE;
    case TLS_WANT_READ:
        return CONN_HANDSHAKE_WAIT_READ;
    case TLS_WANT_WRITE:
        return CONN_HANDSHAKE_WAIT_WRITE;
    default:
        c->handshaking = false; /* counted here, not again at close */
        count(c, failure_counter[why]);
        log_failure(c, why, detail);
        if (why != TLS_FAIL_PLAIN_HTTP)
            return CONN_HANDSHAKE_FAILED;
        answer_plain_http(c);
        return CONN_HANDSHAKE_ANSWERED;
    }
}

/* OpenSSL recognised a plain HTTP request (and sent nothing): a
 * clear-text 400 that says this is an HTTPS port. */
static void answer_plain_http(struct conn *c)
{
    static const char body[] = "This is an HTTPS port: the plain HTTP request was refused. "
                               "Use https:// to reach it.\n";
    char head[256];
    int len = snprintf(head, sizeof head,
                       "HTTP/1.1 400 Bad Request\r\n" H1_SERVER_HEADER "Date: %s\r\n"
                       "Content-Type: text/plain; charset=utf-8\r\n"
                       "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                       clock_http_date(), sizeof body - 1);
    struct iovec iov[2] = {{head, (size_t)len}, {(void *)body, sizeof body - 1}};
    struct msghdr msg = {.msg_iov = iov, .msg_iovlen = 2};
    /* Best effort: a fresh socket's buffer takes this whole; a client
     * that cannot receive it loses nothing it could have used. */
    ssize_t sent = sendmsg(c->fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (sent > 0)
        shm_slot_count(c->worker->slot, SHM_BYTES_OUT, (uint64_t)sent);
}
