/*
 * tls_keys.h - the session ticket keys, made and rotated by the master
 * (the mapping and the timing; the keys themselves are tls/tls_ticket.h's).
 *
 * The master makes a key from getrandom(2) at start and a new one every
 * ticket_key_rotation (default 1 h), keeping the one before, and shares
 * both with the workers (struct shm_ticket_keys, under its own seqlock).
 * Workers seal tickets with the current key and open tickets sealed with
 * either, so a ticket works on every worker, and across a reload (the keys
 * belong to the instance, not to a generation).
 *
 * The keys are in an anonymous shared mapping inherited across fork, never
 * in the segment file that sakerctl reads, never on disk, and not in core
 * dumps (MADV_DONTDUMP): see shm_tls.h.
 */
#ifndef SAKER_MASTER_TLS_KEYS_H
#define SAKER_MASTER_TLS_KEYS_H

#include "common/error.h"

struct master;

/* Before the first fork: maps m->ticket_keys and makes the first key.
 * SK_ERROR (with err) only when the mapping cannot be made; a failing
 * getrandom is logged and leaves tickets off until the next rotation. */
int tls_keys_start(struct master *m, struct err *err);
/* At exit: wipes and unmaps the keys. */
void tls_keys_stop(struct master *m);
/* From the master's loop: rotates when the period from the current
 * config's ticket_key_rotation has passed. */
void tls_keys_tick(struct master *m);

#endif
