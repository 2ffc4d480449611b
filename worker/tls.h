/*
 * tls.h - HTTPS for a worker: one server context per https:// endpoint,
 * and the per-connection transport conn uses (handshake, read, write a
 * batch, shut down). Nothing above conn sees TLS.
 *
 * A `struct tls_server` is built by the master for each generation before
 * its first fork (keys only root may read still load) and inherited by the
 * generation's workers; the files were already checked at load
 * (tls_check_config), so a reload with a bad certificate fails before any
 * worker starts. It holds:
 *   - the default SSL_CTX (the endpoint's certificate, else
 *     certificates.default), and one SSL_CTX per `sni:` name, chosen in the
 *     servername callback: exact names first, then "*.example.org" (one
 *     label, as RFC 6125 6.4.3). A missing name, or one the default
 *     certificate covers, gets the default; another unknown name gets the
 *     default too, or an unrecognized_name alert with sni_unknown: refuse.
 *   - the policy: TLS 1.2 minimum (or 1.3), forward-secret AEAD ciphers,
 *     no renegotiation, no compression, kTLS when the kernel offers it,
 *     SSL_MODE_RELEASE_BUFFERS so an idle connection holds no buffers.
 *   - ALPN: "h2" and "http/1.1", as the endpoint's `protocols` allow.
 *   - resumption by session tickets only, no per-worker session cache:
 *     tickets are sealed with the keys the master shares with its
 *     workers (shm_tls.h), so any worker resumes any other's. A TLS 1.3
 *     resumption always gets a fresh ticket (clients use one once).
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

#include "common/error.h"
#include "conf/config_tls_types.h"
#include "shm/shm_tls.h"
#include "worker/outq.h"

struct tls_server;

/* What a server is built from; everything is borrowed for its lifetime
 * except what OpenSSL copies (the config outlives the worker's servers). */
struct tls_server_params {
    const char *endpoint;       /* the endpoint's name, for messages and the session context */
    const char *config_file;    /* for "FILE:LINE:COL:" in messages; may be NULL */
    const struct tls_endpoint_config *tls;
    const struct tls_certificate_config *default_certificate; /* certificates.default, or NULL */
    enum endpoint_protocols protocols;
    uint64_t ticket_lifetime_ms; /* ticket_key_rotation: the lifetime hint sent with tickets */
    /* The master's shared keys; NULL: keys of this server's own (unit
     * tests, `saker -t`), so tickets resume only on this process. */
    const struct shm_ticket_keys *keys;
};

/* Builds the contexts. SK_ERROR with a message such as
 * "saker.yaml:12:18: certificate 'example.com': /etc/x.pem: wrong password". */
int tls_server_new(const struct tls_server_params *params, struct tls_server **out,
                   struct err *err);
void tls_server_free(struct tls_server *server);

/* From a loaded config (tls_config.c): the server for an https://
 * endpoint, with certificates.default when it names no certificate. */
struct config;
struct endpoint;
int tls_server_for_endpoint(const struct config *config, const struct endpoint *endpoint,
                            const struct shm_ticket_keys *keys, struct tls_server **out,
                            struct err *err);
/* The master, before a start or reload (and `saker -t`): builds and drops
 * every https:// endpoint's server, so a missing file, a wrong password or
 * a key that does not match fails here, with the file named, while the
 * serving generation is untouched. A certificate that has expired or is
 * not valid yet is logged as a warning, not refused. */
int tls_check_config(const struct config *config, struct err *err);

/* ---- what a server presents -------------------------------------------- */

/* One certificate of a server: its default, or the one for an sni: name. */
struct tls_certificate_view {
    const char *sni;  /* NULL: the endpoint's default certificate */
    const char *path; /* the certificate file, as configured */
    X509 *leaf;       /* the server's own; valid while the server lives */
};
/* Fills out with up to max of the certificates s presents, the default
 * first, then the sni: names in config order; returns how many it has. */
size_t tls_server_certificates(const struct tls_server *s, struct tls_certificate_view *out,
                               size_t max);
/* The certificate's subject as an RFC 2253 string ("CN=example.com");
 * the length written (0 on failure), out always NUL-ended. */
size_t tls_certificate_subject(const X509 *cert, char *out, size_t size);
/* notBefore and notAfter as Unix seconds; SK_ERROR if unreadable. */
int tls_certificate_validity(const X509 *cert, int64_t *not_before, int64_t *not_after);

/* ---- per connection ---------------------------------------------------- */

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

/* True when the handshake failed because sni_unknown: refuse refused the
 * client's name (tls_handshake reports it as TLS_FAIL_UNKNOWN_NAME). */
bool tls_refused_name(const SSL *ssl);
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

/* ---- pure parts (unit-tested) ------------------------------------------- */

/* Index of the first of hosts[] that name matches, or -1. Exact names
 * (case-insensitive) win over wildcards; "*.example.org" matches one more
 * label only ("a.example.org", not "example.org" nor "a.b.example.org"). */
int tls_sni_match(const char *const *hosts, size_t count, const char *name);
/* Which key sealed a ticket named `name`: 1 current, 2 previous (the
 * ticket is good, but is renewed), 0 unknown (a full handshake). */
int tls_ticket_key_find(const struct shm_ticket_keys *keys, const uint8_t *name);
/* Copies the shared keys under their seqlock. False when there are none
 * (tickets are then neither issued nor accepted). */
bool tls_ticket_keys_read(const struct shm_ticket_keys *shared, struct shm_ticket_keys *copy);
/* Makes a fresh random key into *key from the kernel's generator
 * (getrandom), not OpenSSL's: the master makes keys at start, and
 * RAND_bytes would load OpenSSL's providers and DRBG there, about 3 MB of
 * library pages touched, in a master that may serve no TLS at all.
 * SK_OK or SK_ERROR. */
int tls_ticket_key_generate(struct shm_ticket_key *key);

#endif
