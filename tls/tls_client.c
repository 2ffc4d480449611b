/*
 * tls_client.c - TLS client contexts; see tls_client.h.
 */
#include "tls/tls_client.h"

#include <string.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#define CLIENT_CIPHERS "ECDHE+AESGCM:ECDHE+CHACHA20"

static int openssl_fail(struct err *err, const char *what, const char *path)
{
    char reason[256];
    ERR_error_string_n(ERR_get_error(), reason, sizeof reason);
    ERR_clear_error();
    return err_set(err, "%s%s%s: %s", what, path ? " " : "", path ? path : "", reason);
}

SSL_CTX *tls_client_context(const struct tls_client_params *p, struct err *err)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (ctx == NULL) {
        openssl_fail(err, "SSL_CTX_new()", NULL);
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    if (SSL_CTX_set_cipher_list(ctx, CLIENT_CIPHERS) != 1) {
        openssl_fail(err, "ciphers", NULL);
        goto fail;
    }
    SSL_CTX_set_verify(ctx, p->verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, NULL);
    if (p->ca_file != NULL ? SSL_CTX_load_verify_locations(ctx, p->ca_file, NULL) != 1
                           : SSL_CTX_set_default_verify_paths(ctx) != 1) {
        openssl_fail(err, "CA file", p->ca_file != NULL ? p->ca_file : "(system store)");
        goto fail;
    }
    if (p->certificate != NULL &&
        (SSL_CTX_use_certificate_chain_file(ctx, p->certificate) != 1 ||
         SSL_CTX_use_PrivateKey_file(ctx, p->key ? p->key : p->certificate, SSL_FILETYPE_PEM) !=
             1 ||
         SSL_CTX_check_private_key(ctx) != 1)) {
        openssl_fail(err, "client certificate", p->certificate);
        goto fail;
    }
    return ctx;
fail:
    SSL_CTX_free(ctx);
    return NULL;
}
