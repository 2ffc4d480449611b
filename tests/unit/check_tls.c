/* check_tls.c - TLS pure parts: SNI matching, ticket key selection and
 * rotation (tls/tls_server.c, tls/tls_ticket.c), the HTTPS config options
 * (conf/config_tls.c), and certificate loading errors with files made by
 * the openssl command at test time. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>

#include "conf/config_tls.h"
#include "tests/unit/unit.h"
#include "tls/tls_cert.h"
#include "tls/tls_server.h"
#include "tls/tls_ticket.h"
#include "worker/tls.h"

/* ---- SNI ------------------------------------------------------------------ */

START_TEST(sni_exact_before_wildcard)
{
    const char *hosts[] = {"*.example.org", "example.com", "www.example.org"};
    ck_assert_int_eq(tls_sni_match(hosts, 3, "example.com"), 1);
    ck_assert_int_eq(tls_sni_match(hosts, 3, "EXAMPLE.com"), 1);
    ck_assert_int_eq(tls_sni_match(hosts, 3, "www.example.org"), 2);
    ck_assert_int_eq(tls_sni_match(hosts, 3, "a.example.org"), 0);
}
END_TEST

START_TEST(sni_wildcard_is_one_label)
{
    const char *hosts[] = {"*.example.org"};
    ck_assert_int_eq(tls_sni_match(hosts, 1, "example.org"), -1);
    ck_assert_int_eq(tls_sni_match(hosts, 1, "a.b.example.org"), -1);
    ck_assert_int_eq(tls_sni_match(hosts, 1, ".example.org"), -1);
    ck_assert_int_eq(tls_sni_match(hosts, 1, "xexample.org"), -1);
    ck_assert_int_eq(tls_sni_match(hosts, 1, ""), -1);
    ck_assert_int_eq(tls_sni_match(hosts, 1, NULL), -1);
    ck_assert_int_eq(tls_sni_match(hosts, 0, "a.example.org"), -1);
}
END_TEST

START_TEST(sni_names_validated)
{
    ck_assert(cfg_tls_valid_sni_name("example.com"));
    ck_assert(cfg_tls_valid_sni_name("*.example.org"));
    ck_assert(cfg_tls_valid_sni_name("localhost"));
    ck_assert(!cfg_tls_valid_sni_name("*"));
    ck_assert(!cfg_tls_valid_sni_name("a..b"));
    ck_assert(!cfg_tls_valid_sni_name("a.*.b"));
    ck_assert(!cfg_tls_valid_sni_name("exa mple.com"));
    ck_assert(!cfg_tls_valid_sni_name(""));
    ck_assert(!cfg_tls_valid_sni_name("example.com."));
}
END_TEST

/* ---- ticket keys ---------------------------------------------------------- */

START_TEST(ticket_keys_rotate_and_select)
{
    static struct shm_ticket_keys keys;
    struct shm_ticket_keys copy;
    ck_assert(!tls_ticket_keys_read(&keys, &copy)); /* none yet: no tickets */
    ck_assert_int_eq(tls_ticket_key_find(&keys, keys.current.name), 0);

    ck_assert_int_eq(tls_ticket_keys_rotate(&keys, 100), SK_OK);
    uint8_t first[SHM_TICKET_NAME_LEN];
    memcpy(first, keys.current.name, sizeof first);
    ck_assert_int_eq(tls_ticket_key_find(&keys, first), 1);
    /* With one key, previous is zeroes and must not match a zero name. */
    uint8_t zero[SHM_TICKET_NAME_LEN] = {0};
    ck_assert_int_eq(tls_ticket_key_find(&keys, zero), 0);

    ck_assert_int_eq(tls_ticket_keys_rotate(&keys, 200), SK_OK);
    ck_assert_int_eq(tls_ticket_key_find(&keys, keys.current.name), 1);
    ck_assert_int_eq(tls_ticket_key_find(&keys, first), 2); /* still good, renewed */
    ck_assert_uint_eq(atomic_load(&keys.seq) % 2, 0);
    ck_assert(tls_ticket_keys_read(&keys, &copy));
    ck_assert_int_eq(memcmp(&copy.current, &keys.current, sizeof copy.current), 0);
    ck_assert_int_eq(copy.rotated_at, 200);

    ck_assert_int_eq(tls_ticket_keys_rotate(&keys, 300), SK_OK);
    ck_assert_int_eq(tls_ticket_key_find(&keys, first), 0); /* two rotations: gone */
}
END_TEST

START_TEST(ticket_keys_writer_in_progress)
{
    static struct shm_ticket_keys keys;
    struct shm_ticket_keys copy;
    ck_assert_int_eq(tls_ticket_keys_rotate(&keys, 1), SK_OK);
    atomic_store(&keys.seq, atomic_load(&keys.seq) + 1); /* the master stalls mid-write */
    ck_assert(!tls_ticket_keys_read(&keys, &copy));
}
END_TEST

/* ---- config options ------------------------------------------------------- */

struct doc {
    yaml_document_t doc;
    struct cfg_ctx ctx;
    struct err err;
};

static yaml_node_t *load(struct doc *d, const char *text, const char *key)
{
    memset(d, 0, sizeof *d);
    ck_assert_int_eq(cfg_load_document(text, strlen(text), "t.yaml", &d->doc, &d->err), SK_OK);
    d->ctx = (struct cfg_ctx){.doc = &d->doc, .file = "t.yaml", .err = &d->err};
    yaml_node_t *root = yaml_document_get_root_node(&d->doc);
    return cfg_lookup(&d->ctx, root, key);
}

START_TEST(config_certificate)
{
    struct doc d;
    struct tls_config tls = {0};
    yaml_node_t *n = load(&d, "certificates:\n  default: { path: a.pem, key: a.key, "
                              "password: \"\" }\n", "certificates");
    ck_assert_int_eq(cfg_tls_parse_certificates(&d.ctx, n, &tls), SK_OK);
    ck_assert_str_eq(tls.default_certificate.path, "a.pem");
    ck_assert_str_eq(tls.default_certificate.key, "a.key");
    ck_assert_str_eq(tls.default_certificate.password, "");
    ck_assert_int_eq(tls.default_certificate.line, 2);
    ck_assert_int_eq(tls.default_certificate.column, 12);
    cfg_tls_free(&tls);
    yaml_document_delete(&d.doc);
}
END_TEST

START_TEST(config_certificate_errors)
{
    struct doc d;
    struct tls_config tls = {0};
    yaml_node_t *n = load(&d, "certificates:\n  default: { key: a.key }\n", "certificates");
    ck_assert_int_eq(cfg_tls_parse_certificates(&d.ctx, n, &tls), SK_ERROR);
    ck_assert_str_eq(d.err.message,
                     "t.yaml:2:12: certificate 'default': missing required key 'path'");
    cfg_tls_free(&tls);
    yaml_document_delete(&d.doc);

    n = load(&d, "certificates:\n  other: { path: a.pem }\n", "certificates");
    ck_assert_int_eq(cfg_tls_parse_certificates(&d.ctx, n, &tls), SK_ERROR);
    ck_assert_str_eq(d.err.message,
                     "t.yaml:2:3: certificates: unknown key 'other'; expected 'default'");
    yaml_document_delete(&d.doc);

    n = load(&d, "certificates:\n  default: { path: a.pem, pasword: x }\n", "certificates");
    ck_assert_int_eq(cfg_tls_parse_certificates(&d.ctx, n, &tls), SK_ERROR);
    ck_assert_str_eq(d.err.message,
                     "t.yaml:2:27: unknown key 'pasword'; did you mean 'password'?");
    cfg_tls_free(&tls);
    yaml_document_delete(&d.doc);
}
END_TEST

START_TEST(config_sni)
{
    struct doc d;
    struct tls_endpoint_config tls = {0};
    yaml_node_t *n = load(&d, "sni:\n  Example.com: { path: e.pem }\n"
                              "  \"*.example.org\": { path: w.pem, key: w.key }\n", "sni");
    ck_assert_int_eq(cfg_tls_parse_sni(&d.ctx, n, &tls), SK_OK);
    ck_assert_uint_eq(tls.sni_count, 2);
    ck_assert_str_eq(tls.sni[0].host, "example.com");
    ck_assert_str_eq(tls.sni[1].host, "*.example.org");
    ck_assert_str_eq(tls.sni[1].certificate.key, "w.key");
    cfg_tls_endpoint_free(&tls);
    yaml_document_delete(&d.doc);

    n = load(&d, "sni:\n  \"a.*.org\": { path: e.pem }\n", "sni");
    ck_assert_int_eq(cfg_tls_parse_sni(&d.ctx, n, &tls), SK_ERROR);
    ck_assert_str_eq(d.err.message, "t.yaml:2:3: sni: expected a host name such as "
                                    "example.com or *.example.com, got 'a.*.org'");
    cfg_tls_endpoint_free(&tls);
    yaml_document_delete(&d.doc);

    n = load(&d, "sni:\n  a.org: { path: e.pem }\n  A.org: { path: f.pem }\n", "sni");
    ck_assert_int_eq(cfg_tls_parse_sni(&d.ctx, n, &tls), SK_ERROR);
    ck_assert_str_eq(d.err.message, "t.yaml:3:3: sni: 'A.org' is listed twice");
    cfg_tls_endpoint_free(&tls);
    yaml_document_delete(&d.doc);
}
END_TEST

START_TEST(config_policy_and_client)
{
    struct doc d;
    struct tls_endpoint_config tls = {0};
    yaml_node_t *n = load(&d, "tls: { min_version: \"1.3\", ciphersuites: TLS_AES_128_GCM_SHA256 }\n",
                          "tls");
    ck_assert_int_eq(cfg_tls_parse_policy(&d.ctx, n, &tls), SK_OK);
    ck_assert_uint_eq(tls.min_version, 13);
    ck_assert_str_eq(tls.ciphersuites, "TLS_AES_128_GCM_SHA256");
    ck_assert_ptr_null(tls.ciphers);
    yaml_document_delete(&d.doc);

    n = load(&d, "tls: { min_version: 1.1 }\n", "tls");
    ck_assert_int_eq(cfg_tls_parse_policy(&d.ctx, n, &tls), SK_ERROR);
    ck_assert_str_eq(d.err.message,
                     "t.yaml:1:21: min_version: expected \"1.2\" or \"1.3\", got '1.1'");
    yaml_document_delete(&d.doc);

    n = load(&d, "client_certificate: { mode: require }\n", "client_certificate");
    ck_assert_int_eq(cfg_tls_parse_client_certificate(&d.ctx, n, &tls), SK_ERROR);
    ck_assert_str_eq(d.err.message, "t.yaml:1:21: client_certificate: mode require needs "
                                    "'ca', the file of CA certificates that issue client "
                                    "certificates");
    yaml_document_delete(&d.doc);

    n = load(&d, "client_certificate: { mode: sometimes, ca: ca.pem }\n", "client_certificate");
    ck_assert_int_eq(cfg_tls_parse_client_certificate(&d.ctx, n, &tls), SK_ERROR);
    ck_assert_str_eq(d.err.message, "t.yaml:1:29: mode: expected none, allow or require, "
                                    "got 'sometimes'");
    cfg_tls_endpoint_free(&tls);
    yaml_document_delete(&d.doc);
}
END_TEST

START_TEST(config_scalars)
{
    struct err why;
    enum endpoint_protocols p;
    enum tls_sni_unknown u;
    ck_assert_int_eq(cfg_tls_parse_protocols("protocols", "http1", 5, &p, &why), SK_OK);
    ck_assert_int_eq(p, PROTOCOLS_HTTP1);
    ck_assert_int_eq(cfg_tls_parse_protocols("protocols", "Http1AndHttp2", 13, &p, &why), SK_OK);
    ck_assert_int_eq(p, PROTOCOLS_HTTP1_AND_HTTP2);
    ck_assert_int_eq(cfg_tls_parse_protocols("protocols", "http3", 5, &p, &why), SK_ERROR);
    ck_assert_str_eq(why.message,
                     "protocols: expected http1, http2 or http1_and_http2, got 'http3'");
    ck_assert_int_eq(cfg_tls_parse_protocols("protocols", "Http2", 5, &p, &why), SK_OK);
    ck_assert_int_eq(p, PROTOCOLS_HTTP2);
    ck_assert_int_eq(cfg_tls_parse_sni_unknown("sni_unknown", "refuse", 6, &u, &why), SK_OK);
    ck_assert_int_eq(u, TLS_SNI_UNKNOWN_REFUSE);
    ck_assert_int_eq(cfg_tls_parse_sni_unknown("sni_unknown", "drop", 4, &u, &why), SK_ERROR);
}
END_TEST

START_TEST(config_endpoint_check)
{
    struct doc d;
    struct tls_endpoint_config tls = {0};
    struct tls_config global = {0};
    yaml_node_t *n = load(&d, "secure: { url: \"https://127.0.0.1:0\" }\n", "secure");
    ck_assert_int_eq(cfg_tls_check_endpoint(&d.ctx, n, true, &tls, &global, "endpoint 'secure'"),
                     SK_ERROR);
    ck_assert_str_eq(d.err.message, "t.yaml:1:9: endpoint 'secure': an https:// endpoint "
                                    "needs a certificate: set 'certificate' here or "
                                    "'certificates: { default: ... }'");
    global.default_certificate.path = "x.pem";
    ck_assert_int_eq(cfg_tls_check_endpoint(&d.ctx, n, true, &tls, &global, "e"), SK_OK);
    ck_assert_uint_eq(tls.min_version, 12);
    yaml_document_delete(&d.doc);

    n = load(&d, "plain: { url: \"http://127.0.0.1:0\", sni_unknown: refuse }\n", "plain");
    ck_assert_int_eq(cfg_tls_check_endpoint(&d.ctx, n, false, &tls, &global, "endpoint 'plain'"),
                     SK_ERROR);
    ck_assert_str_eq(d.err.message, "t.yaml:1:50: endpoint 'plain': 'sni_unknown' applies to "
                                    "https:// endpoints only");
    yaml_document_delete(&d.doc);
}
END_TEST

/* ---- certificate files ------------------------------------------------------ */

static char dir[64];

static void make_certs(void)
{
    strcpy(dir, "/tmp/check_tls.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "cd %s && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
             "-keyout a.key -out a.pem -subj /CN=localhost -days 2 2>/dev/null && "
             "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
             "-keyout b.key -out b.pem -subj /CN=other -days 2 2>/dev/null && "
             "openssl pkey -in a.key -aes256 -passout pass:secret -out enc.key && "
             "openssl pkcs12 -export -in a.pem -inkey a.key -passout pass:pfxpw -out a.pfx",
             dir);
    ck_assert_int_eq(system(cmd), 0);
}

static void remove_certs(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    ck_assert_int_eq(system(cmd), 0);
}

/* Builds a server from one certificate; returns the message, "" on success. */
static const char *try_cert(const char *path, const char *key, const char *password)
{
    static struct err err;
    char p[128], k[128];
    snprintf(p, sizeof p, "%s/%s", dir, path);
    snprintf(k, sizeof k, "%s/%s", dir, key ? key : "");
    struct tls_endpoint_config tls = {.min_version = 12};
    tls.certificate = (struct tls_certificate_config){p, key ? k : NULL, (char *)password, 3, 7};
    struct tls_server_params params = {.endpoint = "e", .config_file = "t.yaml", .tls = &tls};
    struct tls_server *server = NULL;
    memset(&err, 0, sizeof err);
    if (tls_server_new(&params, &server, &err) == SK_OK) {
        tls_server_free(server);
        return "";
    }
    /* Paths are in a temporary directory: keep only what follows it. */
    for (char *at; (at = strstr(err.message, dir)) != NULL;)
        memmove(at, at + strlen(dir) + 1, strlen(at + strlen(dir) + 1) + 1);
    return err.message;
}

START_TEST(certificate_files)
{
    make_certs();
    ck_assert_str_eq(try_cert("a.pem", "a.key", NULL), "");
    ck_assert_str_eq(try_cert("a.pem", "enc.key", "secret"), "");
    ck_assert_str_eq(try_cert("a.pfx", NULL, "pfxpw"), "");
    ck_assert_str_eq(try_cert("missing.pem", "a.key", NULL),
                     "t.yaml:3:7: certificate 'e': missing.pem: cannot open: No such file or "
                     "directory");
    ck_assert_str_eq(try_cert("a.pem", "b.key", NULL),
                     "t.yaml:3:7: certificate 'e': a.pem: the key in b.key does not match "
                     "the certificate");
    ck_assert_str_eq(try_cert("a.pem", "enc.key", "wrong"),
                     "t.yaml:3:7: certificate 'e': enc.key: wrong password for the key");
    ck_assert_str_eq(try_cert("a.pem", "enc.key", NULL),
                     "t.yaml:3:7: certificate 'e': enc.key: the key is encrypted: set "
                     "'password'");
    ck_assert_str_eq(try_cert("a.pfx", NULL, "nope"),
                     "t.yaml:3:7: certificate 'e': a.pfx: wrong password for the PKCS#12 file");
    ck_assert_str_eq(try_cert("a.key", "a.key", NULL),
                     "t.yaml:3:7: certificate 'e': a.key: no PEM certificate found (no start "
                     "line)");
    remove_certs();
}
END_TEST


/* ---- handshakes in process: two "workers" sharing keys -------------------- */

static struct tls_server *server_with(struct tls_endpoint_config *tls,
                                      const struct shm_ticket_keys *keys)
{
    struct tls_server_params params = {.endpoint = "e", .tls = tls, .keys = keys,
                                       .ticket_lifetime_ms = 3600000};
    struct tls_server *server = NULL;
    struct err err;
    ck_assert_msg(tls_server_new(&params, &server, &err) == SK_OK, "%s", err.message);
    return server;
}

/* Runs a client handshake against the server over a socketpair, both ends
 * non-blocking, in one thread. Returns the server's SSL (done) or NULL
 * (failed, *why set); *client_out gets the client. */
static SSL *handshake(struct tls_server *server, SSL_CTX *cctx, const char *name,
                      SSL_SESSION *session, SSL **client_out, enum tls_failure *why)
{
    int sv[2];
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    SSL *s = tls_conn_new(server, sv[0]);
    SSL *c = SSL_new(cctx);
    SSL_set_fd(c, sv[1]);
    if (name)
        SSL_set_tlsext_host_name(c, name);
    if (session) {
        /* A fresh copy each time, as s_client -sess_in reads one: an
         * OpenSSL client uses a TLS 1.3 session object only once. */
        unsigned char der[8192], *p = der;
        const unsigned char *q = der;
        int len = i2d_SSL_SESSION(session, &p);
        ck_assert(len > 0 && len < (int)sizeof der);
        SSL_SESSION *copy = d2i_SSL_SESSION(NULL, &q, len);
        SSL_set_session(c, copy);
        SSL_SESSION_free(copy);
    }
    SSL_set_connect_state(c);
    bool server_done = false, client_done = false;
    for (int i = 0; i < 100 && !(server_done && client_done); i++) {
        if (!client_done) {
            int rc = SSL_do_handshake(c);
            client_done = rc == 1;
            if (rc <= 0 && SSL_get_error(c, rc) != SSL_ERROR_WANT_READ)
                client_done = true; /* failed: let the server see it */
        }
        if (!server_done) {
            enum tls_status st = tls_handshake(s, why, NULL);
            if (st == TLS_FAILED) {
                tls_free(s);
                SSL_free(c);
                close(sv[0]);
                close(sv[1]);
                *client_out = NULL;
                return NULL;
            }
            server_done = st == TLS_DONE;
        }
    }
    ck_assert(server_done && client_done);
    *client_out = c;
    return s;
}

static void pair_free(SSL *s, SSL *c)
{
    int fs = SSL_get_fd(s), fc = SSL_get_fd(c);
    /* A client freed without close_notify marks its session not
     * resumable (OpenSSL's ssl_clear_bad_session). */
    SSL_shutdown(c);
    tls_free(s);
    SSL_free(c);
    close(fs);
    close(fc);
}

static char *path_in(const char *name)
{
    static char buf[4][128];
    static int n;
    char *p = buf[n++ % 4];
    snprintf(p, 128, "%s/%s", dir, name);
    return p;
}

/* TLS 1.2 minimum, certificate a.pem (CN localhost), nothing else. */
static struct tls_endpoint_config config_a(void)
{
    struct tls_endpoint_config tls = {.min_version = 12};
    tls.certificate = (struct tls_certificate_config){path_in("a.pem"), path_in("a.key"), NULL,
                                                      0, 0};
    return tls;
}

static SSL_CTX *client_ctx(void)
{
    SSL_CTX *c = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_CLIENT);
    static const unsigned char alpn[] = "\x02h2\x08http/1.1";
    SSL_CTX_set_alpn_protos(c, alpn, sizeof alpn - 1);
    return c;
}

/* The last ticket the client got (TLS 1.3 sends it after the handshake:
 * read once to take it in). */
static SSL_SESSION *take_session(SSL *s, SSL *c)
{
    struct outq q;
    uint64_t written;
    bool want_read;
    outq_init(&q);
    outq_add_copy(&q, "hello", 5);
    char scratch[64];
    ck_assert_int_eq(tls_write_batch(s, &q, scratch, sizeof scratch, &written, &want_read),
                     OUTQ_FLUSHED);
    ck_assert_uint_eq(written, 5);
    char buf[16];
    ck_assert_int_eq(SSL_read(c, buf, sizeof buf), 5);
    ck_assert_int_eq(memcmp(buf, "hello", 5), 0);
    return SSL_get1_session(c);
}

/* A batch far larger than the socket takes: tls_write_batch says blocked
 * while records wait, even with the queue consumed, and flushed only once
 * the client can have read everything, which arrives whole and in order. */
START_TEST(batch_through_a_full_socket)
{
    make_certs();
    struct tls_endpoint_config tls = config_a();
    struct tls_server *server = server_with(&tls, NULL);
    SSL_CTX *cctx = client_ctx();
    SSL *c = NULL;
    enum tls_failure why;
    SSL *s = handshake(server, cctx, "localhost", NULL, &c, &why);
    ck_assert_ptr_nonnull(s);
    int small = 8192;
    setsockopt(SSL_get_fd(s), SOL_SOCKET, SO_SNDBUF, &small, sizeof small);

    enum { TOTAL = 600 * 1024 };
    char *sent = malloc(TOTAL), *got = malloc(TOTAL);
    for (size_t i = 0; i < TOTAL; i++)
        sent[i] = (char)(i * 7 + i / 4096);
    struct outq q;
    outq_init(&q);
    for (size_t off = 0; off < TOTAL; off += 1000)
        ck_assert_int_eq(outq_add_copy(&q, sent + off, TOTAL - off < 1000 ? TOTAL - off : 1000), 0);
    static char scratch[64 * 1024];
    size_t received = 0, blocked_with_queue_empty = 0;
    uint64_t total_written = 0;
    enum outq_flush_result r = OUTQ_BLOCKED;
    for (int round = 0; round < 100000 && r != OUTQ_FLUSHED; round++) {
        uint64_t written;
        bool want_read;
        r = tls_write_batch(s, &q, scratch, sizeof scratch, &written, &want_read);
        total_written += written;
        ck_assert_int_ne(r, OUTQ_FAILED);
        if (r == OUTQ_BLOCKED && outq_empty(&q)) {
            ck_assert(tls_write_pending(s)); /* the records, not the queue, wait */
            blocked_with_queue_empty++;
        }
        if (r == OUTQ_FLUSHED)
            ck_assert(!tls_write_pending(s));
        int n;
        while (received < TOTAL && (n = SSL_read(c, got + received, (int)(TOTAL - received))) > 0)
            received += (size_t)n;
    }
    ck_assert_int_eq(r, OUTQ_FLUSHED);
    ck_assert_uint_eq(total_written, TOTAL);
    int n;
    for (int round = 0; round < 1000 && received < TOTAL; round++)
        if ((n = SSL_read(c, got + received, (int)(TOTAL - received))) > 0)
            received += (size_t)n;
    ck_assert_uint_eq(received, TOTAL);
    ck_assert_int_eq(memcmp(sent, got, TOTAL), 0);
    ck_assert_uint_gt(blocked_with_queue_empty, 0);
    free(sent);
    free(got);
    pair_free(s, c);
    SSL_CTX_free(cctx);
    tls_server_free(server);
    remove_certs();
}
END_TEST

START_TEST(resumption_across_servers)
{
    make_certs();
    static struct shm_ticket_keys keys;
    ck_assert_int_eq(tls_ticket_keys_rotate(&keys, 1), SK_OK);
    struct tls_endpoint_config tls = config_a();
    struct tls_server *w0 = server_with(&tls, &keys), *w1 = server_with(&tls, &keys);
    for (int v = 0; v < 2; v++) {
        SSL_CTX *cctx = client_ctx();
        SSL_CTX_set_max_proto_version(cctx, v ? TLS1_3_VERSION : TLS1_2_VERSION);
        enum tls_failure why;
        SSL *c, *s = handshake(w0, cctx, "localhost", NULL, &c, &why);
        ck_assert_ptr_nonnull(s);
        ck_assert_int_eq(tls_version(s), v ? 13 : 12);
        ck_assert(!tls_resumed(s));
        size_t len;
        const char *alpn = tls_alpn(s, &len);
        ck_assert_int_eq(len, 2); /* the client's first choice, which saker speaks */
        ck_assert_int_eq(memcmp(alpn, "h2", 2), 0);
        SSL_SESSION *session = take_session(s, c);
        pair_free(s, c);
        /* The other "worker" resumes it; after a rotation still (renewed). */
        ck_assert_msg(SSL_SESSION_has_ticket(session), "v%d: no ticket", v);
        s = handshake(w0, cctx, "localhost", session, &c, &why);
        ck_assert_msg(tls_resumed(s), "v%d: not resumed on the same server", v);
        pair_free(s, c);
        s = handshake(w1, cctx, "localhost", session, &c, &why);
        ck_assert_msg(tls_resumed(s), "v%d: not resumed on the other server", v);
        pair_free(s, c);
        ck_assert_int_eq(tls_ticket_keys_rotate(&keys, 2), SK_OK);
        s = handshake(w1, cctx, "localhost", session, &c, &why);
        ck_assert(tls_resumed(s));
        pair_free(s, c);
        ck_assert_int_eq(tls_ticket_keys_rotate(&keys, 3), SK_OK);
        s = handshake(w0, cctx, "localhost", session, &c, &why);
        ck_assert(!tls_resumed(s)); /* two rotations: a full handshake */
        pair_free(s, c);
        SSL_SESSION_free(session);
        SSL_CTX_free(cctx);
    }
    tls_server_free(w0);
    tls_server_free(w1);
    remove_certs();
}
END_TEST

START_TEST(sni_and_refusal)
{
    make_certs();
    struct tls_sni_config sni[] = {{"other", {path_in("b.pem"), path_in("b.key"), NULL, 0, 0}}};
    struct tls_endpoint_config tls = config_a();
    tls.sni = sni;
    tls.sni_count = 1;
    tls.sni_unknown = TLS_SNI_UNKNOWN_REFUSE;
    struct tls_server *server = server_with(&tls, NULL);
    SSL_CTX *cctx = client_ctx();
    enum tls_failure why = TLS_FAIL_COUNT;
    SSL *c, *s = handshake(server, cctx, "other", NULL, &c, &why);
    X509 *peer = SSL_get1_peer_certificate(c);
    char cn[64];
    X509_NAME_get_text_by_NID(X509_get_subject_name(peer), NID_commonName, cn, sizeof cn);
    ck_assert_str_eq(cn, "other");
    X509_free(peer);
    pair_free(s, c);
    s = handshake(server, cctx, "localhost", NULL, &c, &why); /* the default's own name */
    ck_assert_ptr_nonnull(s);
    pair_free(s, c);
    s = handshake(server, cctx, NULL, NULL, &c, &why); /* no name: the default */
    ck_assert_ptr_nonnull(s);
    pair_free(s, c);
    s = handshake(server, cctx, "unknown.test", NULL, &c, &why);
    ck_assert_ptr_null(s);
    ck_assert_int_eq(why, TLS_FAIL_UNKNOWN_NAME);
    SSL_CTX_free(cctx);
    tls_server_free(server);
    remove_certs();
}
END_TEST

START_TEST(old_protocols_refused)
{
    make_certs();
    struct tls_endpoint_config tls = config_a();
    struct tls_server *server = server_with(&tls, NULL);
    SSL_CTX *cctx = client_ctx();
    SSL_CTX_set_security_level(cctx, 0);
    SSL_CTX_set_min_proto_version(cctx, TLS1_VERSION);
    SSL_CTX_set_max_proto_version(cctx, TLS1_1_VERSION);
    enum tls_failure why = TLS_FAIL_COUNT;
    SSL *c;
    ck_assert_ptr_null(handshake(server, cctx, "localhost", NULL, &c, &why));
    ck_assert_int_eq(why, TLS_FAIL_PROTOCOL_VERSION);
    SSL_CTX_free(cctx);
    tls_server_free(server);
    remove_certs();
}
END_TEST

START_TEST(certificates_presented)
{
    make_certs();
    struct tls_sni_config sni[] = {{"other", {path_in("b.pem"), path_in("b.key"), NULL, 0, 0}}};
    struct tls_endpoint_config tls = config_a();
    tls.sni = sni;
    tls.sni_count = 1;
    struct tls_server *server = server_with(&tls, NULL);
    struct tls_certificate_view views[4];
    ck_assert_uint_eq(tls_server_certificates(server, views, 4), 2);
    ck_assert_ptr_null(views[0].sni);
    ck_assert_str_eq(views[1].sni, "other");
    ck_assert_ptr_nonnull(strstr(views[0].path, "/a.pem"));
    ck_assert_ptr_nonnull(strstr(views[1].path, "/b.pem"));
    char subject[64];
    ck_assert_uint_gt(tls_certificate_subject(views[1].leaf, subject, sizeof subject), 0);
    ck_assert_str_eq(subject, "CN=other");
    int64_t not_before, not_after, now = (int64_t)time(NULL);
    ck_assert_int_eq(tls_certificate_validity(views[0].leaf, &not_before, &not_after), SK_OK);
    /* -days 2 from a moment ago */
    ck_assert(not_before <= now && now - not_before < 600);
    ck_assert_int_eq(not_after - not_before, 2 * 86400);
    ck_assert_uint_eq(tls_server_certificates(server, views, 1), 2); /* counts past max */
    tls_server_free(server);
    remove_certs();
}
END_TEST

/* What the server makes of first bytes that are not a ClientHello, and
 * that it answers nothing itself (the caller decides what to say). */
static enum tls_failure first_bytes_failure(struct tls_server *server, const char *bytes)
{
    int sv[2];
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    ck_assert_int_eq(write(sv[1], bytes, strlen(bytes)), (ssize_t)strlen(bytes));
    SSL *s = tls_conn_new(server, sv[0]);
    enum tls_failure why = TLS_FAIL_COUNT;
    ck_assert_int_eq(tls_handshake(s, &why, NULL), TLS_FAILED);
    char buf[64];
    ck_assert_int_eq(read(sv[1], buf, sizeof buf), -1);
    ck_assert_int_eq(errno, EAGAIN);
    tls_free(s);
    close(sv[0]);
    close(sv[1]);
    return why;
}

START_TEST(plain_http_recognised)
{
    make_certs();
    struct tls_endpoint_config tls = config_a();
    struct tls_server *server = server_with(&tls, NULL);
    ck_assert_int_eq(first_bytes_failure(server, "GET / HTTP/1.1\r\nHost: a\r\n\r\n"),
                     TLS_FAIL_PLAIN_HTTP);
    ck_assert_int_eq(first_bytes_failure(server, "POST /form HTTP/1.1\r\n"),
                     TLS_FAIL_PLAIN_HTTP);
    ck_assert_int_eq(first_bytes_failure(server, "CONNECT a:443 HTTP/1.1\r\n"),
                     TLS_FAIL_PLAIN_HTTP);
    ck_assert_int_eq(first_bytes_failure(server, "\x01\x02garbage, not a record\r\n"),
                     TLS_FAIL_OTHER);
    tls_server_free(server);
    remove_certs();
}
END_TEST

static Suite *tls_suite(void)
{
    Suite *s = suite_create("tls");
    TCase *tc = tcase_create("pure");
    tcase_add_test(tc, sni_exact_before_wildcard);
    tcase_add_test(tc, sni_wildcard_is_one_label);
    tcase_add_test(tc, sni_names_validated);
    tcase_add_test(tc, ticket_keys_rotate_and_select);
    tcase_add_test(tc, ticket_keys_writer_in_progress);
    tcase_add_test(tc, config_certificate);
    tcase_add_test(tc, config_certificate_errors);
    tcase_add_test(tc, config_sni);
    tcase_add_test(tc, config_policy_and_client);
    tcase_add_test(tc, config_scalars);
    tcase_add_test(tc, config_endpoint_check);
    suite_add_tcase(s, tc);
    TCase *files = tcase_create("files");
    tcase_set_timeout(files, 30);
    tcase_add_test(files, certificate_files);
    tcase_add_test(files, resumption_across_servers);
    tcase_add_test(files, batch_through_a_full_socket);
    tcase_add_test(files, sni_and_refusal);
    tcase_add_test(files, old_protocols_refused);
    tcase_add_test(files, plain_http_recognised);
    tcase_add_test(files, certificates_presented);
    suite_add_tcase(s, files);
    return s;
}

int main(void)
{
    return unit_run(tls_suite());
}
