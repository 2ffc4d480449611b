/*
 * shm_tls.h - the TLS session ticket keys the master shares with its
 * workers, types only.
 *
 * They are not in the segment file: that file is the control plane,
 * readable by sakerctl and by whatever monitoring runs it (mode 0640), and
 * whoever holds a ticket key can decrypt every recorded TLS 1.2 session
 * resumed or started with its tickets. The keys live in an anonymous
 * shared mapping that the master makes before its first fork, so only the
 * master and its workers ever map them (master/tls_keys.c), and that is
 * left out of core dumps.
 *
 * The master creates the keys from getrandom(2) at start and rotates them
 * every ticket_key_rotation, keeping the previous one (master/tls_keys.c).
 * Every worker encrypts new tickets with `current` and decrypts tickets
 * made with `current` or `previous`, so a ticket issued by one worker
 * resumes on any other, and a client's ticket stays good across one
 * rotation (RFC 5077 section 4 leaves the key policy to the server).
 *
 * One writer (the master) under `seq`, a seqlock of its own rather than the
 * header's: a handshake reads the keys, and it should not retry because the
 * master was rewriting the listener table.
 */
#ifndef SAKER_SHM_SHM_TLS_H
#define SAKER_SHM_SHM_TLS_H

#include <stdalign.h>
#include <stdatomic.h>
#include <stdint.h>

#define SHM_TICKET_NAME_LEN 16
#define SHM_TICKET_AES_LEN 32  /* AES-256-CBC */
#define SHM_TICKET_HMAC_LEN 32 /* HMAC-SHA256 */

struct shm_ticket_key {
    uint8_t name[SHM_TICKET_NAME_LEN]; /* random; sent in the clear in each ticket */
    uint8_t aes_key[SHM_TICKET_AES_LEN];
    uint8_t hmac_key[SHM_TICKET_HMAC_LEN];
};

struct shm_ticket_keys {
    alignas(64) _Atomic uint64_t seq; /* odd while the master writes */
    uint64_t rotations;      /* keys made so far; 0: none yet (tickets off) */
    int64_t rotated_at;      /* wall-clock seconds of the last rotation */
    struct shm_ticket_key current;
    struct shm_ticket_key previous; /* valid when rotations > 1 */
};

#endif
