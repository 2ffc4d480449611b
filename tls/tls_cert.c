/*
 * tls_cert.c - certificate, chain and key files into an SSL_CTX, and what
 * a loaded certificate says: its subject and validity; see tls_cert.h.
 *
 * Files are read whole into memory first (they are a few kilobytes), so
 * that a missing or unreadable file is reported with errno, and the PEM
 * key can be looked for in the certificate file as well.
 */
#include "tls/tls_cert.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/x509.h>

#define TLS_FILE_MAX (1u << 20) /* a certificate chain is kilobytes; stop a mistaken path */

struct file_data {
    unsigned char *data;
    size_t len;
};

static int read_file(const char *path, struct file_data *out, struct err *err)
{
    FILE *f = fopen(path, "rbe");
    if (f == NULL)
        return err_set_errno(err, errno, "%s: cannot open", path);
    out->data = malloc(TLS_FILE_MAX);
    out->len = out->data ? fread(out->data, 1, TLS_FILE_MAX, f) : 0;
    int saved = out->data == NULL ? ENOMEM : errno;
    bool failed = out->data == NULL || ferror(f);
    fclose(f);
    if (failed) {
        free(out->data);
        return err_set_errno(err, saved, "%s: cannot read", path);
    }
    if (out->len == 0 || out->len == TLS_FILE_MAX) {
        free(out->data);
        return err_set(err, "%s: %s", path, out->len ? "larger than 1 MiB" : "empty file");
    }
    return SK_OK;
}

static void file_free(struct file_data *f)
{
    if (f->data != NULL)
        OPENSSL_cleanse(f->data, f->len); /* may hold a private key */
    free(f->data);
    f->data = NULL;
}

/* The reason of OpenSSL's last error, for messages. */
static const char *ssl_reason(void)
{
    unsigned long e = ERR_peek_last_error();
    const char *r = e ? ERR_reason_error_string(e) : NULL;
    return r ? r : "unknown error";
}

struct password {
    const char *text; /* NULL: none configured */
    bool asked;       /* the file turned out to be encrypted */
};

static int on_password(char *buf, int size, int rwflag, void *arg)
{
    struct password *pw = arg;
    (void)rwflag;
    pw->asked = true;
    if (pw->text == NULL)
        return -1; /* never prompt */
    size_t len = strlen(pw->text);
    if (len > (size_t)size)
        return -1;
    memcpy(buf, pw->text, len);
    return (int)len;
}

/* ---- PEM ---------------------------------------------------------------- */

static int use_pem_chain(SSL_CTX *ctx, const char *path, const struct file_data *f,
                         struct err *err)
{
    BIO *bio = BIO_new_mem_buf(f->data, (int)f->len);
    X509 *leaf = bio ? PEM_read_bio_X509_AUX(bio, NULL, NULL, NULL) : NULL;
    if (leaf == NULL) {
        BIO_free(bio);
        return err_set(err, "%s: no PEM certificate found (%s)", path, ssl_reason());
    }
    int ok = SSL_CTX_use_certificate(ctx, leaf) == 1 && SSL_CTX_clear_chain_certs(ctx) == 1;
    X509_free(leaf);
    X509 *ca;
    while (ok && (ca = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL)
        if (!(ok = SSL_CTX_add0_chain_cert(ctx, ca) == 1))
            X509_free(ca);
    BIO_free(bio);
    if (!ok)
        return err_set(err, "%s: the certificate cannot be used: %s", path, ssl_reason());
    ERR_clear_error(); /* the end of the chain reads as "no start line" */
    return SK_OK;
}

/* OpenSSL checks the pair when the key is set, and says so in its terms. */
static bool is_mismatch(unsigned long e)
{
    return ERR_GET_LIB(e) == ERR_LIB_X509 && (ERR_GET_REASON(e) == X509_R_KEY_VALUES_MISMATCH ||
                                              ERR_GET_REASON(e) == X509_R_KEY_TYPE_MISMATCH);
}

static int use_pem_key(SSL_CTX *ctx, const char *path, const struct file_data *f,
                       const char *password, struct err *err)
{
    struct password pw = {password, false};
    BIO *bio = BIO_new_mem_buf(f->data, (int)f->len);
    EVP_PKEY *key = bio ? PEM_read_bio_PrivateKey(bio, NULL, on_password, &pw) : NULL;
    BIO_free(bio);
    if (key == NULL) {
        if (pw.asked && password == NULL)
            return err_set(err, "%s: the key is encrypted: set 'password'", path);
        if (pw.asked)
            return err_set(err, "%s: wrong password for the key", path);
        return err_set(err, "%s: no PEM private key found (%s)", path, ssl_reason());
    }
    int ok = SSL_CTX_use_PrivateKey(ctx, key) == 1;
    EVP_PKEY_free(key);
    if (!ok && is_mismatch(ERR_peek_last_error()))
        return SK_DECLINED; /* the caller names both files */
    if (!ok)
        return err_set(err, "%s: the key cannot be used: %s", path, ssl_reason());
    return SK_OK;
}

static int load_pem(SSL_CTX *ctx, const struct tls_certificate_config *cert,
                    const struct file_data *chain, struct err *err)
{
    if (use_pem_chain(ctx, cert->path, chain, err) != SK_OK)
        return SK_ERROR;
    if (cert->key == NULL)
        return use_pem_key(ctx, cert->path, chain, cert->password, err);
    struct file_data key = {0};
    if (read_file(cert->key, &key, err) != SK_OK)
        return SK_ERROR;
    int rc = use_pem_key(ctx, cert->key, &key, cert->password, err);
    file_free(&key);
    return rc;
}

/* ---- PKCS#12 ------------------------------------------------------------ */

static int use_pkcs12_parts(SSL_CTX *ctx, const char *path, EVP_PKEY *key, X509 *leaf,
                            STACK_OF(X509) *chain, struct err *err)
{
    if (leaf == NULL || key == NULL)
        return err_set(err, "%s: the PKCS#12 file holds no %s", path,
                       leaf == NULL ? "certificate" : "private key");
    if (SSL_CTX_use_certificate(ctx, leaf) != 1 || SSL_CTX_use_PrivateKey(ctx, key) != 1 ||
        SSL_CTX_clear_chain_certs(ctx) != 1)
        return err_set(err, "%s: the certificate cannot be used: %s", path, ssl_reason());
    for (int i = 0; chain != NULL && i < sk_X509_num(chain); i++)
        if (SSL_CTX_add1_chain_cert(ctx, sk_X509_value(chain, i)) != 1)
            return err_set(err, "%s: the chain cannot be used: %s", path, ssl_reason());
    return SK_OK;
}

static int load_pkcs12(SSL_CTX *ctx, const struct tls_certificate_config *cert,
                       const struct file_data *f, struct err *err)
{
    const unsigned char *p = f->data;
    PKCS12 *p12 = d2i_PKCS12(NULL, &p, (long)f->len);
    if (p12 == NULL)
        return err_set(err, "%s: not a PKCS#12 file (%s)", cert->path, ssl_reason());
    /* A file exported without a password has a MAC under "" or none. */
    const char *pw = cert->password ? cert->password : "";
    if (PKCS12_mac_present(p12) && PKCS12_verify_mac(p12, pw, -1) != 1 &&
        (cert->password != NULL || PKCS12_verify_mac(p12, NULL, 0) != 1)) {
        PKCS12_free(p12);
        return err_set(err, "%s: %s", cert->path, cert->password
                                                      ? "wrong password for the PKCS#12 file"
                                                      : "the PKCS#12 file needs a 'password'");
    }
    EVP_PKEY *key = NULL;
    X509 *leaf = NULL;
    STACK_OF(X509) *chain = NULL;
    int rc;
    if (PKCS12_parse(p12, pw, &key, &leaf, &chain) != 1)
        rc = err_set(err, "%s: the PKCS#12 file cannot be read: %s (a legacy algorithm? "
                          "re-export it with AES)", cert->path, ssl_reason());
    else
        rc = use_pkcs12_parts(ctx, cert->path, key, leaf, chain, err);
    EVP_PKEY_free(key);
    X509_free(leaf);
    sk_X509_pop_free(chain, X509_free);
    PKCS12_free(p12);
    return rc;
}

static bool looks_like_pkcs12(const char *path, const struct file_data *f)
{
    size_t len = strlen(path);
    if (len > 4 && (strcasecmp(path + len - 4, ".pfx") == 0 ||
                    strcasecmp(path + len - 4, ".p12") == 0))
        return true;
    return f->data[0] == 0x30; /* DER: a SEQUENCE; PEM starts with text */
}

int tls_cert_load(SSL_CTX *ctx, const struct tls_certificate_config *cert, struct err *err)
{
    struct file_data f = {0};
    ERR_clear_error();
    if (read_file(cert->path, &f, err) != SK_OK)
        return SK_ERROR;
    int rc;
    ERR_clear_error();
    if (looks_like_pkcs12(cert->path, &f)) {
        rc = cert->key != NULL
                 ? err_set(err, "%s: a PKCS#12 file holds its own key: remove 'key'", cert->path)
                 : load_pkcs12(ctx, cert, &f, err);
    } else {
        rc = load_pem(ctx, cert, &f, err);
    }
    file_free(&f);
    if (rc == SK_DECLINED || (rc == SK_OK && SSL_CTX_check_private_key(ctx) != 1))
        rc = err_set(err, "%s: the key%s%s does not match the certificate", cert->path,
                     cert->key ? " in " : "", cert->key ? cert->key : "");
    ERR_clear_error();
    return rc;
}

/* ---- what a loaded certificate says ---------------------------------- */

size_t tls_certificate_subject(const X509 *cert, char *out, size_t size)
{
    if (size == 0)
        return 0;
    out[0] = '\0';
    BIO *bio = BIO_new(BIO_s_mem());
    if (bio == NULL)
        return 0;
    size_t len = 0;
    if (X509_NAME_print_ex(bio, X509_get_subject_name(cert), 0, XN_FLAG_RFC2253) >= 0) {
        int n = BIO_read(bio, out, (int)(size - 1));
        len = n > 0 ? (size_t)n : 0;
    }
    out[len] = '\0';
    BIO_free(bio);
    return len;
}

static int unix_seconds(const ASN1_TIME *t, int64_t *out)
{
    struct tm tm;
    if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1)
        return SK_ERROR;
    *out = (int64_t)timegm(&tm);
    return SK_OK;
}

int tls_certificate_validity(const X509 *cert, int64_t *not_before, int64_t *not_after)
{
    if (unix_seconds(X509_get0_notBefore(cert), not_before) != SK_OK ||
        unix_seconds(X509_get0_notAfter(cert), not_after) != SK_OK)
        return SK_ERROR;
    return SK_OK;
}
