/*
 * config_tls_types.h - the HTTPS part of the configuration, types only.
 * config.h includes it; conf/config_tls.c fills it; tls/tls_server.c reads it.
 *
 *   certificates: { default: CERT }          # Kestrel's Certificates:Default
 *   ticket_key_rotation: 1h
 *   endpoints:
 *     secure:
 *       url: https://0.0.0.0:8443
 *       protocols: http1_and_http2          # or http1, or http2
 *       certificate: CERT                   # else certificates.default
 *       sni: { example.com: CERT, "*.example.org": CERT }
 *       sni_unknown: default                # default | refuse
 *       tls: { min_version: "1.2", ciphers: STR, ciphersuites: STR }
 *       client_certificate: { mode: allow, ca: FILE }   # none | allow | require
 *
 *   CERT = { path: FILE, key: FILE, password: STR }
 *
 * `path` is a PEM chain (leaf first) or a PKCS#12 file (.pfx, .p12);
 * `key` is the PEM key, optional when the key is in `path`; `password`
 * unlocks an encrypted PEM key or the PKCS#12 file. The files themselves
 * are read and checked by the master (tls_check_config), not by the
 * loader, so that sakerctl can load a config whose keys it may not read.
 */
#ifndef SAKER_CONF_CONFIG_TLS_TYPES_H
#define SAKER_CONF_CONFIG_TLS_TYPES_H

#include <stddef.h>
#include <stdint.h>

struct tls_certificate_config {
    char *path;     /* NULL: not set */
    char *key;      /* NULL: the key is in `path` */
    char *password; /* NULL: none */
    int line, column; /* where the certificate is written, for messages; 0: unknown */
};

/* One `sni:` entry. */
struct tls_sni_config {
    char *host; /* lower-case; exact, or "*.example.org" (one label) */
    struct tls_certificate_config certificate;
};

enum tls_sni_unknown {
    TLS_SNI_UNKNOWN_DEFAULT, /* a missing or unknown name gets the endpoint's certificate */
    TLS_SNI_UNKNOWN_REFUSE,  /* an unknown name gets an unrecognized_name alert */
};

enum tls_client_mode {
    TLS_CLIENT_NONE,    /* no certificate is asked for */
    TLS_CLIENT_ALLOW,   /* asked for; one that is sent must verify */
    TLS_CLIENT_REQUIRE, /* a verified certificate is required */
};

/* Kestrel's HttpProtocols. Over TLS, ALPN offers what is allowed. In
 * clear text, http2 is HTTP/2 with prior knowledge (RFC 9113 section
 * 3.3) and http1_and_http2 tells the two apart by the connection's first
 * bytes: the HTTP/2 preface or an HTTP/1.1 request. */
enum endpoint_protocols {
    PROTOCOLS_HTTP1_AND_HTTP2, /* Kestrel's default */
    PROTOCOLS_HTTP1,
    PROTOCOLS_HTTP2,
};

struct tls_endpoint_config {
    struct tls_certificate_config certificate; /* path NULL: certificates.default */
    struct tls_sni_config *sni;
    size_t sni_count;
    enum tls_sni_unknown sni_unknown;
    unsigned min_version;  /* 12 or 13: TLS 1.2 or 1.3 */
    char *ciphers;         /* TLS 1.2 cipher list; NULL: forward-secret AEAD default */
    char *ciphersuites;    /* TLS 1.3 suites; NULL: OpenSSL's (all AEAD) */
    enum tls_client_mode client_mode;
    char *client_ca;       /* PEM file of CAs; required unless mode is none */
    /* `hsts:` rendered: "Strict-Transport-Security: max-age=N...\r\n",
     * sent on every response of the endpoint; NULL: not sent. */
    char *hsts_header;
    size_t hsts_header_len;
    int line, column;      /* of the endpoint, for messages; 0: unknown */
};

/* Instance-wide. */
struct tls_config {
    struct tls_certificate_config default_certificate; /* path NULL: none */
    uint64_t ticket_key_rotation_ms; /* 1 hour */
};

#endif
