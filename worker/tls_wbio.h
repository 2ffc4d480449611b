/*
 * tls_wbio.h - the write side of a TLS connection: OpenSSL's records
 * gathered in memory and written to the socket with one send() per flush.
 *
 * OpenSSL writes each record (16 KiB at most) to its BIO on its own: over
 * a socket BIO, one 64 KiB batch of HTTP/2 frames was five write() calls.
 * This BIO takes every record into a buffer, and tls_wbio_flush sends them
 * together, up to two batches (128 KiB) a call. The buffer is taken with
 * the first record and given back once it is sent, so an idle connection
 * holds none; a connection whose client stops reading holds at most that.
 *
 * OpenSSL's own flushes (handshake flights, alerts, tickets) come through
 * BIO_flush; a full socket is a retry there, so SSL_do_handshake says
 * WANT_WRITE exactly as over a socket BIO. Reads go to the socket as a
 * socket BIO's do, so the connection needs no second BIO. Not used with
 * kTLS, which needs OpenSSL's socket BIO.
 */
#ifndef SAKER_WORKER_TLS_WBIO_H
#define SAKER_WORKER_TLS_WBIO_H

#include <stdbool.h>

#include <openssl/bio.h>

/* A BIO that writes to the socket fd (not owned). NULL: out of memory. */
BIO *tls_wbio_new(int fd);
/* True when b was made by tls_wbio_new. */
bool tls_wbio_is(BIO *b);
/* True when the records of plaintext bytes more fit in the buffer beside
 * what waits, without growing it; always for another kind of BIO. */
bool tls_wbio_has_room(BIO *b, size_t plaintext);
/* Sends what is buffered: 1 when nothing is left (always for another
 * kind of BIO), 0 when the socket is full (wait for writability), -1 with
 * errno when the socket failed. */
int tls_wbio_flush(BIO *b);

#endif
