/*
 * tls_io.c - the per-connection TLS transport: a connection's SSL,
 * handshake, read, write a batch, shut down; see tls.h.
 *
 * OpenSSL's error queue is per thread and SSL_get_error() trusts it to
 * hold only the current call's errors, so every entry point clears it
 * first: a stale entry from another connection would turn a WANT_READ into
 * a failure.
 */
#include <arpa/inet.h>
#include "worker/tls.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/x509.h>

#include "tls/tls_cert.h"
#include "tls/tls_server.h"
#include "worker/tls_wbio.h"

#ifdef SSL_OP_ENABLE_KTLS
#define TLS_OPTION_KTLS SSL_OP_ENABLE_KTLS
#else
#define TLS_OPTION_KTLS 0
#endif

SSL *tls_conn_new(struct tls_server *server, int fd)
{
    SSL *ssl = SSL_new(tls_server_context(server));
    if (ssl == NULL)
        return NULL;
    /* kTLS goes through OpenSSL's socket BIO; without it, records are
     * gathered and sent together, and read, by saker's (tls_wbio.h). */
    if ((SSL_get_options(ssl) & TLS_OPTION_KTLS) != 0) {
        if (SSL_set_fd(ssl, fd) != 1) {
            SSL_free(ssl);
            return NULL;
        }
    } else {
        BIO *bio = tls_wbio_new(fd);
        if (bio == NULL) {
            SSL_free(ssl);
            return NULL;
        }
        SSL_set_bio(ssl, bio, bio); /* one reference taken for each side */
    }
    SSL_set_accept_state(ssl);
    return ssl;
}

static enum tls_status status_of(SSL *ssl, int rc)
{
    switch (SSL_get_error(ssl, rc)) {
    case SSL_ERROR_WANT_READ:
        return TLS_WANT_READ;
    case SSL_ERROR_WANT_WRITE:
        return TLS_WANT_WRITE;
    case SSL_ERROR_ZERO_RETURN:
        return TLS_CLOSED;
    case SSL_ERROR_SYSCALL:
        /* EOF without close_notify is still EOF for HTTP/1.1 framing;
         * a reset is a failure. */
        return ERR_peek_error() == 0 && errno == 0 ? TLS_CLOSED : TLS_FAILED;
    default:
        return TLS_FAILED;
    }
}

/* The reason OpenSSL gave, in the counters' terms. */
static enum tls_failure failure_of(const SSL *ssl)
{
    if (tls_refused_name(ssl))
        return TLS_FAIL_UNKNOWN_NAME;
    unsigned long e = ERR_peek_last_error();
    if (e == 0 || ERR_GET_LIB(e) != ERR_LIB_SSL)
        return TLS_FAIL_OTHER;
    switch (ERR_GET_REASON(e)) {
    case SSL_R_UNSUPPORTED_PROTOCOL:
    case SSL_R_VERSION_TOO_LOW:
    case SSL_R_TLSV1_ALERT_PROTOCOL_VERSION:
        return TLS_FAIL_PROTOCOL_VERSION;
    case SSL_R_NO_SHARED_CIPHER:
    case SSL_R_NO_SHARED_GROUPS:
    case SSL_R_NO_SUITABLE_SIGNATURE_ALGORITHM:
        return TLS_FAIL_NO_SHARED_CIPHER;
    case SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE:
    case SSL_R_CERTIFICATE_VERIFY_FAILED:
    case SSL_R_SSLV3_ALERT_BAD_CERTIFICATE:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_UNKNOWN:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_EXPIRED:
    case SSL_R_TLSV1_ALERT_UNKNOWN_CA:
    case SSL_R_TLSV1_ALERT_DECRYPT_ERROR:
        return TLS_FAIL_BAD_CERTIFICATE;
    case SSL_R_HTTP_REQUEST:       /* "GET ", "POST ", "HEAD ", "PUT " */
    case SSL_R_HTTPS_PROXY_REQUEST: /* "CONNE" */
        return TLS_FAIL_PLAIN_HTTP;
    default:
        return TLS_FAIL_OTHER;
    }
}

/* In OpenSSL's words when it has some, else the socket's. */
static const char *failure_detail(void)
{
    unsigned long e = ERR_peek_last_error();
    const char *reason = e != 0 ? ERR_reason_error_string(e) : NULL;
    if (reason != NULL)
        return reason;
    return errno != 0 ? strerror(errno) : "end of file";
}

enum tls_status tls_handshake(SSL *ssl, enum tls_failure *why, const char **detail)
{
    ERR_clear_error();
    errno = 0;
    int rc = SSL_do_handshake(ssl);
    if (rc == 1)
        return TLS_DONE;
    enum tls_status st = status_of(ssl, rc);
    if (st == TLS_WANT_READ || st == TLS_WANT_WRITE)
        return st;
    *why = failure_of(ssl);
    if (detail != NULL)
        *detail = *why == TLS_FAIL_UNKNOWN_NAME ? "unknown server name refused"
                                                : failure_detail();
    ERR_clear_error();
    return TLS_FAILED;
}

enum tls_status tls_read(SSL *ssl, char *buf, size_t len, size_t *got)
{
    *got = 0;
    ERR_clear_error();
    while (*got < len) {
        size_t n = 0;
        errno = 0;
        int rc = SSL_read_ex(ssl, buf + *got, len - *got, &n);
        if (rc == 1) {
            *got += n;
            /* Nothing left in OpenSSL's buffer: like a short read(), stop
             * here rather than pay a read() that returns EAGAIN. The
             * socket's event is level-triggered: bytes still in the
             * kernel wake the loop again. */
            if (SSL_has_pending(ssl) == 0)
                return TLS_WANT_READ;
            continue;
        }
        enum tls_status st = status_of(ssl, rc);
        ERR_clear_error();
        return st;
    }
    return TLS_DONE;
}

/* Copies up to size bytes from the head of the queue into buf: byte
 * segments, and files read with pread. Stops at a file when kTLS can send
 * it with sendfile (the caller does that). Returns the length, or -1 with
 * errno set when a file could not be read. */
static ssize_t gather(const struct outq *q, char *buf, size_t size, bool stop_at_files)
{
    size_t used = 0;
    for (size_t i = q->head; i < q->count && used < size; i++) {
        const struct outq_segment *s = &q->segments[i];
        size_t take = s->len < size - used ? s->len : size - used;
        if (s->kind != OUTQ_FILE) {
            memcpy(buf + used, s->kind == OUTQ_COPY ? q->buffer + s->offset : s->ptr, take);
            used += take;
            continue;
        }
        if (stop_at_files)
            break;
        ssize_t n;
        do
            n = pread(s->fd, buf + used, take, s->file_offset);
        while (n < 0 && errno == EINTR);
        if (n <= 0) {
            if (n == 0)
                errno = EIO; /* the file shrank: the response can no longer be framed */
            return -1;
        }
        used += (size_t)n;
        if ((size_t)n < take)
            break; /* a short pread: the rest next time */
    }
    return (ssize_t)used;
}

static bool ktls_send(SSL *ssl)
{
#ifndef OPENSSL_NO_KTLS
    return BIO_get_ktls_send(SSL_get_wbio(ssl)) != 0;
#else
    (void)ssl;
    return false;
#endif
}

/* One SSL_sendfile for the head file segment (kTLS only). */
static int send_file(SSL *ssl, struct outq_segment *s, size_t *sent)
{
#ifndef OPENSSL_NO_KTLS
    ossl_ssize_t n = SSL_sendfile(ssl, s->fd, s->file_offset, s->len, 0);
    if (n > 0) {
        *sent = (size_t)n;
        return 1;
    }
    return (int)n;
#else
    (void)ssl;
    (void)s;
    (void)sent;
    return -1;
#endif
}

enum outq_flush_result tls_write_batch(SSL *ssl, struct outq *q, char *scratch,
                                       size_t scratch_size, uint64_t *written, bool *want_read)
{
    bool ktls = ktls_send(ssl);
    BIO *records = SSL_get_wbio(ssl);
    *written = 0;
    *want_read = false;
    for (;;) {
        /* Records leave a scratch-full at a time, and all of them before
         * the queue counts as flushed. */
        bool more = !outq_empty(q);
        if (!more || !tls_wbio_has_room(records, scratch_size)) {
            int flushed = tls_wbio_flush(records);
            if (flushed <= 0)
                return flushed == 0 ? OUTQ_BLOCKED : OUTQ_FAILED;
            if (!more)
                return OUTQ_FLUSHED;
        }
        struct outq_segment *head = &q->segments[q->head];
        size_t sent = 0;
        int rc;
        ERR_clear_error();
        errno = 0;
        if (ktls && head->kind == OUTQ_FILE) {
            rc = send_file(ssl, head, &sent);
        } else {
            ssize_t len = gather(q, scratch, scratch_size, ktls);
            if (len <= 0)
                return OUTQ_FAILED;
            rc = SSL_write_ex(ssl, scratch, (size_t)len, &sent);
        }
        if (rc != 1) {
            enum tls_status st = status_of(ssl, rc);
            ERR_clear_error();
            if (st == TLS_WANT_WRITE || st == TLS_WANT_READ) {
                *want_read = st == TLS_WANT_READ;
                return OUTQ_BLOCKED;
            }
            return OUTQ_FAILED;
        }
        *written += sent;
        outq_advance(q, sent);
    }
}

bool tls_write_pending(SSL *ssl)
{
    return BIO_wpending(SSL_get_wbio(ssl)) > 0;
}

void tls_shutdown(SSL *ssl)
{
    if (!SSL_is_init_finished(ssl))
        return;
    ERR_clear_error();
    SSL_shutdown(ssl); /* close_notify only: we do not wait for the peer's */
    ERR_clear_error();
}

void tls_free(SSL *ssl)
{
    SSL_free(ssl);
}

int tls_version(const SSL *ssl)
{
    switch (SSL_version(ssl)) {
    case TLS1_3_VERSION:
        return 13;
    case TLS1_2_VERSION:
        return 12;
    default:
        return 0;
    }
}

enum tls_cipher tls_cipher(const SSL *ssl)
{
    const SSL_CIPHER *cipher = SSL_get_current_cipher(ssl);
    switch (cipher ? SSL_CIPHER_get_cipher_nid(cipher) : NID_undef) {
    case NID_aes_128_gcm:
        return TLS_CIPHER_AES128_GCM;
    case NID_aes_256_gcm:
        return TLS_CIPHER_AES256_GCM;
    case NID_chacha20_poly1305:
        return TLS_CIPHER_CHACHA20_POLY1305;
    default:
        return TLS_CIPHER_OTHER;
    }
}

bool tls_resumed(const SSL *ssl)
{
    return SSL_session_reused(ssl) == 1;
}

size_t tls_peer_subject(const SSL *ssl, char *out, size_t size)
{
    if (size == 0)
        return 0;
    out[0] = '\0';
    X509 *peer = SSL_get0_peer_certificate(ssl);
    if (peer == NULL || SSL_get_verify_result(ssl) != X509_V_OK)
        return 0;
    return tls_certificate_subject(peer, out, size);
}

const char *tls_alpn(const SSL *ssl, size_t *len)
{
    const unsigned char *p = NULL;
    unsigned n = 0;
    SSL_get0_alpn_selected(ssl, &p, &n);
    *len = n;
    return p ? (const char *)p : "";
}

SSL *tls_client_new(SSL_CTX *ctx, int fd, const char *server_name)
{
    unsigned char addr[16];
    bool literal = inet_pton(AF_INET, server_name, addr) == 1 ||
                   inet_pton(AF_INET6, server_name, addr) == 1;
    SSL *ssl = SSL_new(ctx);
    if (ssl == NULL || SSL_set_fd(ssl, fd) != 1)
        goto fail;
    BIO *wbio = tls_wbio_new(fd); /* records gathered into one send */
    if (wbio == NULL)
        goto fail;
    SSL_set0_wbio(ssl, wbio);
    if (!literal && SSL_set_tlsext_host_name(ssl, server_name) != 1)
        goto fail; /* RFC 6066: SNI carries names only */
    if (SSL_get_verify_mode(ssl) & SSL_VERIFY_PEER) {
        X509_VERIFY_PARAM *param = SSL_get0_param(ssl);
        if ((literal ? X509_VERIFY_PARAM_set1_ip_asc(param, server_name)
                     : X509_VERIFY_PARAM_set1_host(param, server_name, 0)) != 1)
            goto fail;
    }
    SSL_set_connect_state(ssl);
    return ssl;
fail:
    SSL_free(ssl);
    return NULL;
}
