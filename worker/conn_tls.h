/*
 * conn_tls.h - the TLS transport of a connection (conn.h's ops table) and
 * its handshake, driven by the connection's read and write events.
 *
 * Everything TLS about a connection (the SSL object, what its reads left
 * behind, the client certificate's subject) is the transport's state,
 * behind c->transport_state: neither struct conn nor a protocol holds
 * any of it. Output is gathered into a scratch buffer of TLS's own (one
 * per worker), never the worker's read buffer.
 *
 * The handshake is bounded like a request head: request_headers_timeout
 * from accept (conn's deadline). Every handshake is counted once in the
 * worker's shm slot: ok (with its protocol version and whether it resumed)
 * or failed by reason; a connection closed mid-handshake (timeout, EOF,
 * drain) counts as failed, reason "other". A plain HTTP request on the
 * TLS port is answered in clear text (CONN_HANDSHAKE_ANSWERED): a 400 that
 * says this is an HTTPS port, as nginx does, so that a person behind curl
 * or a browser learns why.
 */
#ifndef SAKER_WORKER_CONN_TLS_H
#define SAKER_WORKER_CONN_TLS_H

#include <openssl/ssl.h>

struct conn;
struct tls_server;

/* Puts c on the TLS transport; the handshake starts with the first read.
 * SK_OK, or SK_ERROR when out of memory. */
int conn_tls_open(struct conn *c, struct tls_server *server);
/* Puts an outbound connection on the TLS transport with ssl (client
 * state, tls_client_new), and starts its handshake. Not counted in the
 * server's handshake figures. SK_OK or SK_ERROR (out of memory; ssl is
 * freed either way by then or with c). */
int conn_tls_connect(struct conn *c, SSL *ssl);
/* Frees the scratch buffer (worker teardown). */
void conn_tls_free_scratch(void);

#endif
