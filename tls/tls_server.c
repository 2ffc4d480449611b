/*
 * tls_server.c - an endpoint's TLS server contexts: policy, certificates,
 * SNI and ALPN; see tls_server.h. Ticket keys are tls_ticket.c's, file
 * loading tls_cert.c's.
 */
#include "tls/tls_server.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "tls/tls_cert.h"
#include "tls/tls_ticket.h"

/* Mozilla's "intermediate" TLS 1.2 list: ECDHE only (forward secrecy),
 * AEAD only (no CBC: Lucky13 and friends), ECDSA before RSA. */
#define SAKER_TLS_CIPHERS                                                                \
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"                           \
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"                           \
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
#define SAKER_TLS_CIPHERSUITES                                                           \
    "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"

struct tls_sni_ctx {
    const char *host; /* the config's */
    const char *path; /* the config's: the certificate file */
    SSL_CTX *ctx;
};

struct tls_server {
    SSL_CTX *ctx; /* the default certificate; every connection starts here */
    const char *path; /* the config's: the default certificate's file */
    struct tls_sni_ctx *sni;
    const char **hosts; /* sni[i].host, for tls_sni_match */
    size_t sni_count;
    bool refuse_unknown;
    const struct shm_ticket_keys *keys;
    struct shm_ticket_keys own_keys; /* when no shm keys were given */
    unsigned char alpn[32];          /* wire format: length-prefixed names */
    unsigned alpn_len;
    bool h2_only;                    /* protocols: http2 */
};

/* ---- pure parts ----------------------------------------------------------- */

static bool wildcard_match(const char *pattern, const char *name)
{
    const char *dot = strchr(name, '.');
    /* "*." + suffix: name must be one label, a dot, then the suffix. */
    return dot != NULL && dot != name && strcasecmp(dot + 1, pattern + 2) == 0;
}

int tls_sni_match(const char *const *hosts, size_t count, const char *name)
{
    if (name == NULL || *name == '\0')
        return -1;
    for (size_t i = 0; i < count; i++)
        if (strncmp(hosts[i], "*.", 2) != 0 && strcasecmp(hosts[i], name) == 0)
            return (int)i;
    for (size_t i = 0; i < count; i++)
        if (strncmp(hosts[i], "*.", 2) == 0 && wildcard_match(hosts[i], name))
            return (int)i;
    return -1;
}

/* ---- callbacks ------------------------------------------------------------ */

/* Tickets sealed with the master's keys, which every worker shares. */
static int on_ticket_key(SSL *ssl, unsigned char *name, unsigned char *iv,
                         EVP_CIPHER_CTX *cctx, EVP_MAC_CTX *hctx, int enc)
{
    struct tls_server *server = SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));
    return tls_ticket_crypt(server != NULL ? server->keys : NULL, ssl, name, iv, cctx, hctx,
                            enc);
}

/* The SSL's app data marks a name refused here, so the failure is counted
 * as unknown_name rather than as a generic handshake error. */
#define TLS_REFUSED_NAME ((void *)1)

static int on_servername(SSL *ssl, int *alert, void *arg)
{
    struct tls_server *server = arg;
    const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    if (name == NULL)
        return SSL_TLSEXT_ERR_OK; /* no name (an IP address): the default */
    int i = tls_sni_match(server->hosts, server->sni_count, name);
    if (i >= 0) {
        SSL_set_SSL_CTX(ssl, server->sni[i].ctx);
        return SSL_TLSEXT_ERR_OK;
    }
    if (!server->refuse_unknown)
        return SSL_TLSEXT_ERR_OK;
    /* A name the default certificate covers is not unknown. */
    X509 *def = SSL_CTX_get0_certificate(server->ctx);
    if (def != NULL && X509_check_host(def, name, 0, 0, NULL) == 1)
        return SSL_TLSEXT_ERR_OK;
    SSL_set_app_data(ssl, TLS_REFUSED_NAME);
    *alert = SSL_AD_UNRECOGNIZED_NAME;
    return SSL_TLSEXT_ERR_ALERT_FATAL;
}

/* No protocol in common: carry on without ALPN rather than fail (RFC 7301
 * allows either); the client then speaks HTTP/1.1 or gives up itself.
 * An HTTP/2-only endpoint refuses a client that offered other protocols
 * and not h2 (no_application_protocol alert): it could not be served. */
static int on_alpn(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                   const unsigned char *in, unsigned int inlen, void *arg)
{
    struct tls_server *server = arg;
    (void)ssl;
    unsigned char *selected;
    if (SSL_select_next_proto(&selected, outlen, server->alpn, server->alpn_len, in, inlen) !=
        OPENSSL_NPN_NEGOTIATED)
        return server->h2_only ? SSL_TLSEXT_ERR_ALERT_FATAL : SSL_TLSEXT_ERR_NOACK;
    *out = selected;
    return SSL_TLSEXT_ERR_OK;
}

/* ---- contexts ------------------------------------------------------------- */

static void set_alpn(struct tls_server *server, enum endpoint_protocols protocols)
{
    static const char h2[] = "\x02h2", h1[] = "\x08http/1.1";
    server->alpn_len = 0;
    server->h2_only = protocols == PROTOCOLS_HTTP2;
    if (protocols != PROTOCOLS_HTTP1) {
        memcpy(server->alpn, h2, sizeof h2 - 1);
        server->alpn_len = sizeof h2 - 1;
    }
    if (protocols != PROTOCOLS_HTTP2) {
        memcpy(server->alpn + server->alpn_len, h1, sizeof h1 - 1);
        server->alpn_len += sizeof h1 - 1;
    }
}

/* Without the kernel's tls module every connection would pay two failing
 * setsockopt(TCP_ULP) calls for nothing. */
static bool kernel_offers_ktls(void)
{
    char ulps[256] = "";
    FILE *f = fopen("/proc/sys/net/ipv4/tcp_available_ulp", "r");
    if (f != NULL) {
        if (fgets(ulps, sizeof ulps, f) == NULL)
            ulps[0] = '\0';
        fclose(f);
    }
    for (char *word = strtok(ulps, " \n"); word != NULL; word = strtok(NULL, " \n"))
        if (strcmp(word, "tls") == 0)
            return true;
    return false;
}

static int set_policy(SSL_CTX *ctx, const struct tls_server_params *p, struct err *err)
{
    const struct tls_endpoint_config *tls = p->tls;
    uint64_t options = SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
                       SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_SSLv3;
#ifdef SSL_OP_ENABLE_KTLS
    if (kernel_offers_ktls())
        options |= SSL_OP_ENABLE_KTLS;
#endif
#ifdef SSL_OP_IGNORE_UNEXPECTED_EOF
    options |= SSL_OP_IGNORE_UNEXPECTED_EOF; /* a client that just closes is EOF, not an error */
#endif
    SSL_CTX_set_options(ctx, options);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    if (SSL_CTX_set_min_proto_version(ctx, tls->min_version == 13 ? TLS1_3_VERSION
                                                                  : TLS1_2_VERSION) != 1 ||
        SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) != 1)
        return err_set(err, "cannot set the TLS versions");
    if (SSL_CTX_set_cipher_list(ctx, tls->ciphers ? tls->ciphers : SAKER_TLS_CIPHERS) != 1)
        return err_set(err, "tls.ciphers: no usable cipher in '%.200s'",
                       tls->ciphers ? tls->ciphers : SAKER_TLS_CIPHERS);
    if (SSL_CTX_set_ciphersuites(ctx, tls->ciphersuites ? tls->ciphersuites
                                                        : SAKER_TLS_CIPHERSUITES) != 1)
        return err_set(err, "tls.ciphersuites: no usable suite in '%.200s'",
                       tls->ciphersuites ? tls->ciphersuites : SAKER_TLS_CIPHERSUITES);
    /* Tickets only: a per-worker session cache would resume on one worker
     * in N. One ticket per handshake is enough for HTTP clients. */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_num_tickets(ctx, 1);
    uint64_t lifetime = p->ticket_lifetime_ms ? p->ticket_lifetime_ms / 1000 : 3600;
    SSL_CTX_set_timeout(ctx, (long)(lifetime ? lifetime : 1));
    /* One read per batch rather than a header read and a body read per record. */
    SSL_CTX_set_read_ahead(ctx, 1);
    return SK_OK;
}

static int set_client_verify(SSL_CTX *ctx, const struct tls_endpoint_config *tls,
                             struct err *err)
{
    if (tls->client_mode == TLS_CLIENT_NONE)
        return SK_OK;
    STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(tls->client_ca);
    if (names == NULL || SSL_CTX_load_verify_locations(ctx, tls->client_ca, NULL) != 1) {
        sk_X509_NAME_pop_free(names, X509_NAME_free);
        return err_set(err, "client_certificate.ca: %s: no PEM CA certificate could be read",
                       tls->client_ca);
    }
    SSL_CTX_set_client_CA_list(ctx, names);
    int mode = SSL_VERIFY_PEER;
    if (tls->client_mode == TLS_CLIENT_REQUIRE)
        mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
    SSL_CTX_set_verify(ctx, mode, NULL);
    SSL_CTX_set_verify_depth(ctx, 8);
    return SK_OK;
}

/* Where a certificate is configured, for messages. */
static void where(const struct tls_server_params *p, const struct tls_certificate_config *c,
                  const char *label, char *out, size_t size)
{
    if (p->config_file != NULL && c != NULL && c->line > 0)
        snprintf(out, size, "%s:%d:%d: certificate '%s'", p->config_file, c->line, c->column,
                 label);
    else
        snprintf(out, size, "endpoint '%s': certificate '%s'", p->endpoint, label);
}

static SSL_CTX *context_new(struct tls_server *server, const struct tls_server_params *p,
                            const struct tls_certificate_config *cert, const char *label,
                            struct err *err)
{
    char at[300];
    struct err why;
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL) {
        err_set(err, "endpoint '%s': SSL_CTX_new failed", p->endpoint);
        return NULL;
    }
    where(p, cert, label, at, sizeof at);
    const char *prefix = "";
    int rc = set_policy(ctx, p, &why);
    if (rc == SK_OK && (rc = set_client_verify(ctx, p->tls, &why)) == SK_OK) {
        prefix = at; /* from here on, errors are the certificate's */
        rc = tls_cert_load(ctx, cert, &why);
    }
    if (rc != SK_OK) {
        if (*prefix)
            err_set(err, "%s: %s", prefix, why.message);
        else
            err_set(err, "endpoint '%s': %s", p->endpoint, why.message);
        SSL_CTX_free(ctx);
        return NULL;
    }
    /* Resumed sessions must come from this endpoint (its client
     * certificate policy), not from another that shares the keys. */
    unsigned char sid[SSL_MAX_SID_CTX_LENGTH];
    size_t len = strlen(p->endpoint) < sizeof sid ? strlen(p->endpoint) : sizeof sid;
    memcpy(sid, p->endpoint, len);
    SSL_CTX_set_session_id_context(ctx, sid, (unsigned)len);
    SSL_CTX_set_app_data(ctx, server);
    SSL_CTX_set_alpn_select_cb(ctx, on_alpn, server);
    SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, on_ticket_key);
    return ctx;
}

static int build_sni(struct tls_server *server, const struct tls_server_params *p,
                     struct err *err)
{
    size_t n = p->tls->sni_count;
    if (n == 0)
        return SK_OK;
    server->sni = calloc(n, sizeof *server->sni);
    server->hosts = calloc(n, sizeof *server->hosts);
    if (server->sni == NULL || server->hosts == NULL)
        return err_set(err, "endpoint '%s': out of memory", p->endpoint);
    for (size_t i = 0; i < n; i++) {
        const struct tls_sni_config *entry = &p->tls->sni[i];
        server->sni[i].host = server->hosts[i] = entry->host;
        server->sni[i].path = entry->certificate.path;
        server->sni[i].ctx = context_new(server, p, &entry->certificate, entry->host, err);
        if (server->sni[i].ctx == NULL)
            return SK_ERROR;
        server->sni_count = i + 1;
    }
    return SK_OK;
}

int tls_server_new(const struct tls_server_params *p, struct tls_server **out, struct err *err)
{
    const struct tls_certificate_config *cert = &p->tls->certificate;
    const char *label = p->endpoint;
    if (cert->path == NULL) {
        cert = p->default_certificate;
        label = "default";
    }
    if (cert == NULL || cert->path == NULL)
        return err_set(err, "endpoint '%s': an https:// endpoint needs a certificate: set "
                            "'certificate' or 'certificates: { default: ... }'", p->endpoint);
    struct tls_server *server = calloc(1, sizeof *server);
    if (server == NULL)
        return err_set(err, "endpoint '%s': out of memory", p->endpoint);
    server->refuse_unknown = p->tls->sni_unknown == TLS_SNI_UNKNOWN_REFUSE;
    server->keys = p->keys;
    if (server->keys == NULL) {
        server->keys = &server->own_keys;
        server->own_keys.rotations = tls_ticket_key_generate(&server->own_keys.current) == SK_OK;
    }
    set_alpn(server, p->protocols);
    server->path = cert->path;
    if ((server->ctx = context_new(server, p, cert, label, err)) == NULL ||
        build_sni(server, p, err) != SK_OK) {
        tls_server_free(server);
        return SK_ERROR;
    }
    SSL_CTX_set_tlsext_servername_callback(server->ctx, on_servername);
    SSL_CTX_set_tlsext_servername_arg(server->ctx, server);
    *out = server;
    return SK_OK;
}

void tls_server_free(struct tls_server *server)
{
    if (server == NULL)
        return;
    for (size_t i = 0; i < server->sni_count; i++)
        SSL_CTX_free(server->sni[i].ctx);
    free(server->sni);
    free(server->hosts);
    SSL_CTX_free(server->ctx);
    OPENSSL_cleanse(&server->own_keys, sizeof server->own_keys);
    free(server);
}

SSL_CTX *tls_server_context(const struct tls_server *server)
{
    return server->ctx;
}

size_t tls_server_certificates(const struct tls_server *s, struct tls_certificate_view *out,
                               size_t max)
{
    for (size_t i = 0; i <= s->sni_count && i < max; i++) {
        SSL_CTX *ctx = i == 0 ? s->ctx : s->sni[i - 1].ctx;
        out[i] = (struct tls_certificate_view){
            .sni = i == 0 ? NULL : s->sni[i - 1].host,
            .path = i == 0 ? s->path : s->sni[i - 1].path,
            .leaf = SSL_CTX_get0_certificate(ctx),
        };
    }
    return 1 + s->sni_count;
}

bool tls_refused_name(const SSL *ssl)
{
    return SSL_get_app_data(ssl) == TLS_REFUSED_NAME;
}
