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

#include "common/clock.h"
#include "common/error.h"
#include "common/log.h"
#include "shm/shm.h"
#include "worker/access_log.h"
#include "worker/conn.h"
#include "worker/h1.h"
#include "worker/tls.h"
#include "worker/worker.h"

static void count(struct conn *c, enum shm_counter counter)
{
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

/* A TLS read stops at a record boundary, so "short" says nothing: the
 * source is drained when OpenSSL holds nothing more to decrypt. An
 * EOF or error behind data already decrypted is kept for the next call,
 * because the socket may never be readable again (a close_notify without
 * a TCP close). */
static ssize_t tls_transport_read(struct conn *c, char *buf, size_t len, bool *drained)
{
    if (c->tls_end != 0) {
        *drained = true;
        errno = c->tls_end == TLS_CLOSED ? 0 : EPROTO;
        return c->tls_end == TLS_CLOSED ? 0 : -1;
    }
    size_t got = 0;
    enum tls_status st = tls_read(c->ssl, buf, len, &got);
    *drained = st != TLS_DONE;
    c->tls_more = st == TLS_DONE;
    switch (st) {
    case TLS_DONE:
        return (ssize_t)got;
    case TLS_WANT_WRITE:
        c->tls_read_wants_write = true;
        /* fall through */
    case TLS_WANT_READ:
        if (got > 0)
            return (ssize_t)got;
        errno = EAGAIN;
        return -1;
    default: /* TLS_CLOSED, TLS_FAILED */
        if (got > 0) {
            c->tls_end = (uint8_t)st;
            *drained = false; /* come back for the end */
            return (ssize_t)got;
        }
        errno = st == TLS_CLOSED ? 0 : EPROTO;
        return st == TLS_CLOSED ? 0 : -1;
    }
}

/* The worker's read buffer is free while output is flushed (everything
 * read was parsed before), so it doubles as the gather buffer: one
 * SSL_write, no allocation, per batch. */
static enum outq_flush_result tls_transport_flush(struct conn *c, uint64_t *written)
{
    bool want_read;
    return tls_write_batch(c->ssl, &c->out, c->worker->read_buffer,
                           c->worker->read_buffer_size, written, &want_read);
}

static void tls_transport_shutdown(struct conn *c)
{
    tls_shutdown(c->ssl);
}

static void tls_transport_close(struct conn *c)
{
    if (c->tls_handshaking)
        count(c, SHM_TLS_FAIL_OTHER); /* timeout, EOF or drain mid-handshake */
    tls_free(c->ssl);
    c->ssl = NULL;
    free(c->client_subject);
    c->client_subject = NULL;
    if (c->h1 != NULL)
        c->h1->client_subject = NULL;
    c->tls_handshaking = false;
}

static const struct conn_transport tls_transport = {
    .read = tls_transport_read,
    .flush = tls_transport_flush,
    .shutdown = tls_transport_shutdown,
    .close = tls_transport_close,
};

int conn_tls_open(struct conn *c, struct tls_server *server)
{
    c->ssl = tls_conn_new(server, c->fd);
    if (c->ssl == NULL)
        return SK_ERROR;
    c->transport = &tls_transport;
    c->tls_handshaking = true;
    c->tls_end = 0;
    c->tls_more = false;
    c->tls_read_wants_write = false;
    return SK_OK;
}

/* Kept for the connection's life (handlers and the access log read it),
 * made once per connection and only when certificates are asked for. */
static void keep_subject(struct conn *c)
{
    char subject[512];
    if (c->endpoint == NULL || c->endpoint->tls.client_mode == TLS_CLIENT_NONE ||
        tls_peer_subject(c->ssl, subject, sizeof subject) == 0)
        return;
    c->client_subject = strdup(subject);
    if (c->h1 != NULL) /* else conn_h1 passes it on when a request starts */
        c->h1->client_subject = c->client_subject; /* NULL when out of memory: none */
}

static void count_success(struct conn *c)
{
    count(c, SHM_TLS_HANDSHAKES_OK);
    if (tls_resumed(c->ssl))
        count(c, SHM_TLS_RESUMED);
    int version = tls_version(c->ssl);
    if (version == 13)
        count(c, SHM_TLS_13);
    else if (version == 12)
        count(c, SHM_TLS_12);
    count(c, (enum shm_counter)(SHM_TLS_CIPHER_AES128_GCM + tls_cipher(c->ssl)));
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

enum conn_tls_step conn_tls_handshake(struct conn *c)
{
    enum tls_failure why = TLS_FAIL_OTHER;
    const char *detail = "";
    switch (tls_handshake(c->ssl, &why, &detail)) {
    case TLS_DONE:
        c->tls_handshaking = false;
        count_success(c);
        keep_subject(c);
        return CONN_TLS_READY;
    case TLS_WANT_READ:
        return CONN_TLS_WAIT_READ;
    case TLS_WANT_WRITE:
        return CONN_TLS_WAIT_WRITE;
    default:
        c->tls_handshaking = false; /* counted here, not again at close */
        count(c, failure_counter[why]);
        log_failure(c, why, detail);
        return why == TLS_FAIL_PLAIN_HTTP ? CONN_TLS_PLAIN_HTTP : CONN_TLS_FAILED;
    }
}

void conn_tls_answer_plain_http(struct conn *c)
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

bool conn_tls_wants_h2(const struct conn *c)
{
    if (c->ssl == NULL || c->endpoint == NULL)
        return false;
    size_t len;
    const char *alpn = tls_alpn(c->ssl, &len);
    return (len == 2 && memcmp(alpn, "h2", 2) == 0) || c->endpoint->protocols == PROTOCOLS_HTTP2;
}

bool conn_tls_inadequate_for_h2(const struct conn *c)
{
    return tls_version(c->ssl) == 12 && tls_cipher(c->ssl) == TLS_CIPHER_OTHER;
}

bool conn_tls_pending(const struct conn *c)
{
    /* After a read that ended in WANT_READ, what OpenSSL holds is at most
     * part of a record, and the socket signals the rest: no busy loop. */
    return c->ssl != NULL && !c->tls_handshaking &&
           (c->tls_end != 0 || (c->tls_more && SSL_has_pending(c->ssl) == 1));
}

bool conn_tls_output_waiting(const struct conn *c)
{
    return c->ssl != NULL && tls_write_pending(c->ssl);
}

size_t conn_tls_peer_subject(const struct conn *c, char *out, size_t size)
{
    if (c->ssl == NULL || c->tls_handshaking) {
        if (size > 0)
            out[0] = '\0';
        return 0;
    }
    return tls_peer_subject(c->ssl, out, size);
}
