/*
 * tls_cert.h - loading one certificate (and its key and chain) into an
 * SSL_CTX, with messages that name the file, and what a loaded
 * certificate says (its subject and validity).
 *
 * Accepted: a PEM chain (leaf first) plus a PEM key (in `key`, or in the
 * same file), the key optionally encrypted (PKCS#8 or traditional) with
 * `password`; or a PKCS#12 file (.pfx/.p12, or any DER file) opened with
 * `password`. The key must match the certificate.
 *
 * No prompt is ever shown: an encrypted key without a password is an
 * error, never a read from the terminal (OpenSSL's default callback would).
 */
#ifndef SAKER_TLS_TLS_CERT_H
#define SAKER_TLS_TLS_CERT_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "common/error.h"
#include "conf/config_tls_types.h"

/* On failure err holds "PATH: reason" (the caller prefixes where the
 * certificate is configured). */
int tls_cert_load(SSL_CTX *ctx, const struct tls_certificate_config *cert, struct err *err);

/* The certificate's subject as an RFC 2253 string ("CN=example.com");
 * the length written (0 on failure), out always NUL-ended. */
size_t tls_certificate_subject(const X509 *cert, char *out, size_t size);
/* notBefore and notAfter as Unix seconds; SK_ERROR if unreadable. */
int tls_certificate_validity(const X509 *cert, int64_t *not_before, int64_t *not_after);

#endif
