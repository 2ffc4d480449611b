/*
 * tls.h - a worker's TLS transport: one SSL per connection, built from the
 * endpoint's server contexts (tls/tls_server.h), and the calls conn makes
 * on it (handshake, read, write a batch, shut down). Nothing above conn
 * sees TLS.
 *
 * I/O follows OpenSSL's non-blocking contract: every call may want to read
 * or write first (TLS_WANT_READ / TLS_WANT_WRITE), whatever it was asked.
 */
#ifndef SAKER_WORKER_TLS_H
#define SAKER_WORKER_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "worker/outq.h"

struct tls_server;

enum tls_status {
    TLS_DONE,       /* the call did all it could (handshake finished, buffer full) */
    TLS_WANT_READ,  /* wait until the socket is readable, then call again */
    TLS_WANT_WRITE, /* wait until the socket is writable, then call again */
    TLS_CLOSED,     /* the peer closed (close_notify or EOF) */
    TLS_FAILED,     /* a protocol or socket error: close the connection */
};

/* Why a handshake failed, for the shm counters. */
enum tls_failure {
    TLS_FAIL_PROTOCOL_VERSION, /* only TLS 1.0/1.1 (or below the minimum) offered */
    TLS_FAIL_NO_SHARED_CIPHER,
    TLS_FAIL_UNKNOWN_NAME,     /* refused by sni_unknown: refuse */
    TLS_FAIL_BAD_CERTIFICATE,  /* the client's certificate, or it refused ours */
    TLS_FAIL_PLAIN_HTTP,       /* the first bytes were a plain HTTP request */
    TLS_FAIL_OTHER,            /* garbage, EOF or timeout mid-handshake */
    TLS_FAIL_COUNT
};

/* A server-side SSL on fd, or NULL when out of memory. */
SSL *tls_conn_new(struct tls_server *server, int fd);
/* A client SSL on fd (an upstream): SNI server_name when it is a name,
 * not an address, and with verification on, the certificate must name
 * server_name (a DNS name or an IP address). NULL when out of memory. */
SSL *tls_client_new(SSL_CTX *ctx, int fd, const char *server_name);
/* Drives the handshake. TLS_DONE when finished; TLS_FAILED with *why set
 * and, when detail is not NULL, *detail set to a static text for the
 * debug log: OpenSSL's reason ("no shared cipher", "http request") or the
 * socket's ("Connection reset by peer", "end of file"). OpenSSL sends any
 * alert itself; a plain-HTTP client gets nothing (conn answers it). */
enum tls_status tls_handshake(SSL *ssl, enum tls_failure *why, const char **detail);
/* Decrypts into buf until it is full (TLS_DONE: more may be waiting) or
 * OpenSSL holds nothing more (TLS_WANT_READ: wait until the socket is
 * readable; it may already be); *got counts what arrived even when the
 * status is TLS_CLOSED or TLS_FAILED: feed it first. */
enum tls_status tls_read(SSL *ssl, char *buf, size_t len, size_t *got);
/* Sends the head of the queue with one SSL_write: byte segments are
 * gathered into scratch, files are read into it too (pread), or sent with
 * SSL_sendfile when kTLS carries the connection. Without kTLS the batch's
 * records leave in one send() (tls_wbio.h); OUTQ_FLUSHED only once they
 * have, OUTQ_BLOCKED while some wait for the socket, even with the queue
 * consumed. OUTQ_BLOCKED with *want_read set means OpenSSL must read
 * first. A retry gathers the same bytes again, as OpenSSL requires. */
enum outq_flush_result tls_write_batch(SSL *ssl, struct outq *q, char *scratch,
                                       size_t scratch_size, uint64_t *written,
                                       bool *want_read);
/* True while records of a batch wait for the socket. */
bool tls_write_pending(SSL *ssl);
/* Sends close_notify if the handshake finished; never blocks. */
void tls_shutdown(SSL *ssl);
void tls_free(SSL *ssl);

/* 12 or 13 (TLS 1.2 / 1.3), 0 before the handshake. */
int tls_version(const SSL *ssl);

/* The AEAD of the negotiated cipher, for the cipher mix in the metrics. */
enum tls_cipher {
    TLS_CIPHER_AES128_GCM,
    TLS_CIPHER_AES256_GCM,
    TLS_CIPHER_CHACHA20_POLY1305,
    TLS_CIPHER_OTHER,
};
enum tls_cipher tls_cipher(const SSL *ssl);
bool tls_resumed(const SSL *ssl);
/* The verified client certificate's subject as an RFC 2253 string
 * ("CN=alice,O=Example") in out; 0 when there is none or it did not
 * verify. Returns the length (truncated to size - 1). */
size_t tls_peer_subject(const SSL *ssl, char *out, size_t size);
/* The negotiated ALPN protocol ("http/1.1"), or "" when none. */
const char *tls_alpn(const SSL *ssl, size_t *len);

#endif
