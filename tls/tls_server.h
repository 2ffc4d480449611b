/*
 * tls_server.h - the TLS server contexts of one https:// endpoint: policy,
 * certificates, SNI and ALPN. Used by the master (to check a config and
 * to build each generation's contexts) and by workers (to serve); the
 * per-connection transport is the worker's (worker/tls.h).
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
 *     workers (tls_ticket.h), so any worker resumes any other's.
 */
#ifndef SAKER_TLS_TLS_SERVER_H
#define SAKER_TLS_TLS_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "common/error.h"
#include "conf/config_tls_types.h"
#include "shm/shm_tls.h"

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

/* The context every connection starts in (the default certificate's);
 * the servername callback may move a connection to an sni: one. */
SSL_CTX *tls_server_context(const struct tls_server *server);

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

/* True when a handshake failed because sni_unknown: refuse refused the
 * client's name. */
bool tls_refused_name(const SSL *ssl);

/* Index of the first of hosts[] that name matches, or -1. Exact names
 * (case-insensitive) win over wildcards; "*.example.org" matches one more
 * label only ("a.example.org", not "example.org" nor "a.b.example.org"). */
int tls_sni_match(const char *const *hosts, size_t count, const char *name);

#endif
