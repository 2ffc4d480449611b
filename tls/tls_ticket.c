/*
 * tls_ticket.c - session ticket keys and the ticket cipher; see
 * tls_ticket.h.
 */
#include "tls/tls_ticket.h"

#include <stdatomic.h>
#include <string.h>
#include <sys/random.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "common/error.h"

#define TLS_TICKET_KEY_READ_TRIES 64

int tls_ticket_key_generate(struct shm_ticket_key *key)
{
    return getrandom(key, sizeof *key, 0) == (ssize_t)sizeof *key ? SK_OK : SK_ERROR;
}

int tls_ticket_keys_rotate(struct shm_ticket_keys *keys, int64_t now)
{
    struct shm_ticket_key fresh;
    if (tls_ticket_key_generate(&fresh) != SK_OK)
        return SK_ERROR;
    uint64_t seq = atomic_load_explicit(&keys->seq, memory_order_relaxed);
    atomic_store_explicit(&keys->seq, seq + 1, memory_order_relaxed);
    atomic_thread_fence(memory_order_release); /* odd is visible before the keys change */
    keys->previous = keys->current;
    keys->current = fresh;
    keys->rotations++;
    keys->rotated_at = now;
    atomic_store_explicit(&keys->seq, seq + 2, memory_order_release);
    OPENSSL_cleanse(&fresh, sizeof fresh);
    return SK_OK;
}

bool tls_ticket_keys_read(const struct shm_ticket_keys *shared, struct shm_ticket_keys *copy)
{
    for (int i = 0; i < TLS_TICKET_KEY_READ_TRIES; i++) {
        uint64_t seq = atomic_load_explicit(&shared->seq, memory_order_acquire);
        if (seq & 1)
            continue;
        copy->rotations = shared->rotations;
        copy->rotated_at = shared->rotated_at;
        memcpy(&copy->current, &shared->current, sizeof copy->current);
        memcpy(&copy->previous, &shared->previous, sizeof copy->previous);
        atomic_thread_fence(memory_order_acquire);
        if (atomic_load_explicit(&shared->seq, memory_order_relaxed) == seq)
            return copy->rotations > 0;
    }
    return false; /* the master is stuck mid-write: no ticket this time */
}

int tls_ticket_key_find(const struct shm_ticket_keys *keys, const uint8_t *name)
{
    if (keys->rotations == 0)
        return 0;
    if (memcmp(keys->current.name, name, SHM_TICKET_NAME_LEN) == 0)
        return 1;
    if (keys->rotations > 1 && memcmp(keys->previous.name, name, SHM_TICKET_NAME_LEN) == 0)
        return 2;
    return 0;
}

/* OpenSSL 3 looks a legacy EVP_aes_256_cbc() up by name on every init;
 * fetched once, the ticket cipher costs nothing to find per handshake. */
static const EVP_CIPHER *ticket_cipher(void)
{
    static EVP_CIPHER *cipher;
    if (cipher == NULL)
        cipher = EVP_CIPHER_fetch(NULL, "AES-256-CBC", NULL);
    return cipher != NULL ? cipher : EVP_aes_256_cbc();
}

static int set_ticket_crypto(const struct shm_ticket_key *key, unsigned char *iv,
                             EVP_CIPHER_CTX *cctx, EVP_MAC_CTX *hctx, int enc)
{
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, (void *)key->hmac_key,
                                          sizeof key->hmac_key),
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
        OSSL_PARAM_construct_end(),
    };
    if (EVP_MAC_CTX_set_params(hctx, params) != 1)
        return -1;
    int ok = enc ? EVP_EncryptInit_ex(cctx, ticket_cipher(), NULL, key->aes_key, iv)
                 : EVP_DecryptInit_ex(cctx, ticket_cipher(), NULL, key->aes_key, iv);
    return ok == 1 ? 1 : -1;
}

int tls_ticket_crypt(const struct shm_ticket_keys *shared, SSL *ssl, unsigned char *name,
                     unsigned char *iv, EVP_CIPHER_CTX *cctx, EVP_MAC_CTX *hctx, int enc)
{
    struct shm_ticket_keys keys;
    if (shared == NULL || !tls_ticket_keys_read(shared, &keys))
        return 0; /* no keys: no ticket, or a full handshake */
    int rc;
    if (enc) {
        memcpy(name, keys.current.name, SHM_TICKET_NAME_LEN);
        rc = RAND_bytes(iv, EVP_MAX_IV_LENGTH) == 1
                 ? set_ticket_crypto(&keys.current, iv, cctx, hctx, 1) : -1;
    } else {
        int which = tls_ticket_key_find(&keys, name);
        rc = which == 0 ? 0
                        : set_ticket_crypto(which == 1 ? &keys.current : &keys.previous, iv,
                                            cctx, hctx, 0);
        if (rc == 1 && (which == 2 || SSL_version(ssl) == TLS1_3_VERSION))
            rc = 2;
    }
    OPENSSL_cleanse(&keys, sizeof keys);
    return rc;
}
