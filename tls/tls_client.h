/*
 * tls_client.h - TLS client contexts, for the reverse proxy's https://
 * upstreams: the peer's certificate verified against a CA file or the
 * system's store, optionally a client certificate of our own.
 *
 * The policy is the server side's: TLS 1.2 minimum, forward-secret AEAD
 * ciphers only. Built by each worker when its upstreams are (a context is
 * per worker and per generation, like the pools it serves).
 */
#ifndef SAKER_TLS_TLS_CLIENT_H
#define SAKER_TLS_TLS_CLIENT_H

#include <stdbool.h>

#include <openssl/ssl.h>

#include "common/error.h"

struct tls_client_params {
    const char *ca_file;     /* NULL: the system's store */
    const char *certificate; /* NULL: none */
    const char *key;         /* NULL: in the certificate's file */
    bool verify;             /* false: any certificate (say so in the config) */
};

/* A context, or NULL with a message naming the file and OpenSSL's reason.
 * Connections on it: tls_client_new (worker/tls.h). */
SSL_CTX *tls_client_context(const struct tls_client_params *p, struct err *err);

#endif
