/*
 * tls_ticket.h - session ticket keys: making them, rotating them, reading
 * them, and sealing or opening a ticket with them.
 *
 * The keys live in a struct shm_ticket_keys (shm/shm_tls.h) that the
 * master writes under its own seqlock and every worker reads: the master
 * makes a key at start and rotates on its own timer (master/tls_keys.c
 * decides when), and a worker's handshake seals with `current` and opens
 * with `current` or `previous`, so a ticket from one worker resumes on any
 * other, across one rotation.
 *
 * Functions return SK_OK / SK_ERROR where they can fail; nothing here
 * logs.
 */
#ifndef SAKER_TLS_TLS_TICKET_H
#define SAKER_TLS_TLS_TICKET_H

#include <stdbool.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/ssl.h>

#include "shm/shm_tls.h"

/* Makes a fresh random key into *key from the kernel's generator
 * (getrandom), not OpenSSL's: the master makes keys at start, and
 * RAND_bytes would load OpenSSL's providers and DRBG there, about 3 MB of
 * library pages touched, in a master that may serve no TLS at all.
 * SK_OK or SK_ERROR. */
int tls_ticket_key_generate(struct shm_ticket_key *key);
/* The writer's part: previous = current, current = a fresh key, under
 * the seqlock, with rotated_at = now (wall-clock seconds). SK_OK, or
 * SK_ERROR (getrandom failed: the keys are left as they were). */
int tls_ticket_keys_rotate(struct shm_ticket_keys *keys, int64_t now);
/* Copies the shared keys under their seqlock. False when there are none
 * (tickets are then neither issued nor accepted). */
bool tls_ticket_keys_read(const struct shm_ticket_keys *shared, struct shm_ticket_keys *copy);
/* Which key sealed a ticket named `name`: 1 current, 2 previous (the
 * ticket is good, but is renewed), 0 unknown (a full handshake). */
int tls_ticket_key_find(const struct shm_ticket_keys *keys, const uint8_t *name);

/* The body of OpenSSL's ticket key callback
 * (SSL_CTX_set_tlsext_ticket_key_evp_cb) over the shared keys: RFC 5077
 * tickets with AES-256-CBC and HMAC-SHA256. Returns what OpenSSL expects:
 * 1 sealed or opened, 2 opened but renew it (sealed with the previous key,
 * or any TLS 1.3 resumption: TLS 1.3 clients use a ticket once, RFC 8446
 * C.4), 0 no ticket / unknown ticket, -1 an error. */
int tls_ticket_crypt(const struct shm_ticket_keys *shared, SSL *ssl, unsigned char *name,
                     unsigned char *iv, EVP_CIPHER_CTX *cctx, EVP_MAC_CTX *hctx, int enc);

#endif
