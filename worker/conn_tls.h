/*
 * conn_tls.h - the TLS transport of a connection (conn.h's ops table) and
 * its handshake, driven by the connection's read and write events.
 *
 * The handshake is bounded like a request head: request_headers_timeout
 * from accept (conn's deadline). Every handshake is counted once in the
 * worker's shm slot: ok (with its protocol version and whether it resumed)
 * or failed by reason; a connection closed mid-handshake (timeout, EOF,
 * drain) counts as failed, reason "other".
 */
#ifndef SAKER_WORKER_CONN_TLS_H
#define SAKER_WORKER_CONN_TLS_H

#include <stdbool.h>
#include <stddef.h>

struct conn;
struct tls_server;

/* What the connection waits for next. */
enum conn_tls_step {
    CONN_TLS_READY,      /* handshake done: read and write application data */
    CONN_TLS_WAIT_READ,  /* wait for readability, then call again */
    CONN_TLS_WAIT_WRITE, /* wait for writability, then call again */
    CONN_TLS_FAILED,     /* counted; close the connection */
    CONN_TLS_PLAIN_HTTP, /* counted; a plain HTTP request came: answer it
                            400 in clear (OpenSSL sent nothing), then close */
};

/* Puts c on the TLS transport; the handshake starts with the first read.
 * SK_OK, or SK_ERROR when out of memory. */
int conn_tls_open(struct conn *c, struct tls_server *server);
/* Drives the handshake one step. */
enum conn_tls_step conn_tls_handshake(struct conn *c);
/* After CONN_TLS_PLAIN_HTTP: sends the clear-text 400 that says this is
 * an HTTPS port (as nginx does), so that a person behind curl or a
 * browser learns why; the caller then closes as after any 400. */
void conn_tls_answer_plain_http(struct conn *c);
/* After the handshake: the connection speaks HTTP/2, because ALPN chose
 * h2 or the endpoint speaks nothing else (prior knowledge over TLS). */
bool conn_tls_wants_h2(const struct conn *c);
/* TLS 1.2 with a cipher that is not AEAD, which RFC 9113 section 9.2.2
 * forbids under HTTP/2 (only a configured `ciphers` list can allow one). */
bool conn_tls_inadequate_for_h2(const struct conn *c);
/* True when OpenSSL holds input for c that the socket will not signal
 * again: plain connections and handshakes never do. */
bool conn_tls_pending(const struct conn *c);
/* True while TLS records of c's output wait for the socket: the output
 * queue may be empty, the response is not sent yet. */
bool conn_tls_output_waiting(const struct conn *c);
/* The verified client certificate's subject ("CN=alice,O=Example"), or 0
 * when there is none (plain connection, no or unverified certificate). */
size_t conn_tls_peer_subject(const struct conn *c, char *out, size_t size);

#endif
