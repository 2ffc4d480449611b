/*
 * rate_table.h - one rate limit policy's state, shared by every worker, so
 * that the limit holds exactly across them.
 *
 * The master maps a table (shared, anonymous) for a policy before it forks
 * the workers of a generation that names it; a later generation whose
 * policy of the same name is defined the same way inherits the same table,
 * so a reload keeps what every client has used. Workers decide each
 * request with rate_table_acquire.
 *
 * Layout: the partitions' records are grouped in sets of RATE_TABLE_WAYS.
 * A partition key (the client's network, a header's value, or nothing) is
 * hashed with SipHash-2-4 under the table's random secret into a set and a
 * 48-bit tag. A record is 16 bytes, [tag 48 | period 48 | count 32],
 * updated with one 16-byte compare-and-swap: the partition it belongs to
 * and its count change together, so a decision is exact even while a
 * record changes hands. A sliding window keeps, per record, the final
 * counts of its earlier segments (written before the record moves on, and
 * never changed after), so deciding still takes one compare-and-swap.
 *
 * Memory bound: max_partitions rounded up to whole sets, each record 16
 * bytes (plus 8 per segment for a sliding window), plus a 4-byte lock per
 * set and one shared overflow record: 10,000 partitions of a fixed window
 * take 160 KiB.
 *
 * A flood of distinct keys: lookups look at the RATE_TABLE_WAYS records of
 * one set and no further, whatever the table holds. A new key takes an
 * empty record of its set, else one whose state has expired (it would
 * admit as a fresh one does); a set of live partitions is never evicted,
 * so a flood cannot reset a heavy client's count by pushing it out. A new
 * key that finds no room is charged to the policy's one overflow
 * partition, shared by every key without a record, with the policy's
 * limit: a flood can neither evict nor get more than one partition's
 * worth through, at the price of new clients sharing that partition
 * while the flood fills the table (counted: SHM_RATE_OVERFLOW).
 * Refusing new keys outright would shut new clients out entirely;
 * evicting live ones would let a flood reset anyone's count.
 *
 * Inserting a key takes its set's lock (the owner's pid; a waiter takes
 * over from a holder that has died), so two workers cannot give one key
 * two records. Everything else is lock-free.
 */
#ifndef SAKER_SHM_RATE_TABLE_H
#define SAKER_SHM_RATE_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "conf/config.h"

#define RATE_TABLE_WAYS 8

struct rate_table;

/* What rate_table_acquire decided. */
struct rate_decision {
    bool admitted;
    bool overflow;           /* charged to the overflow partition */
    uint64_t retry_after_ms; /* refused: until a permit is free again (>= 1) */
    /* For rate_table_refund: the record charged and what it then held. */
    void *record;
    uint64_t hi, lo;
};

/* Bytes a table for policy takes (the mapping's size). */
size_t rate_table_size(const struct rate_limit_policy *policy);
/* Maps a zeroed table for policy, shared with the processes forked after
 * it, with a fresh random secret. NULL with err set. */
struct rate_table *rate_table_create(const struct rate_limit_policy *policy, struct err *err);
void rate_table_destroy(struct rate_table *t);

/* The policy's entry in the shm header's directory (the index of its
 * counters), kept with the table for the workers. */
void rate_table_set_entry(struct rate_table *t, unsigned entry);
unsigned rate_table_entry(const struct rate_table *t);

/* Decides one request of the partition whose key is [key, key + len) at
 * now_ms (CLOCK_MONOTONIC). Windows and periods start at multiples of
 * their length on that clock. */
void rate_table_acquire(struct rate_table *t, const void *key, size_t len, uint64_t now_ms,
                        struct rate_decision *out);
/* Gives back the permit an admitted decision took, when the request was
 * refused by another policy after all: only while its window, segment or
 * period is still current, so a refund never lets a later window overshoot. */
void rate_table_refund(struct rate_table *t, const struct rate_decision *d);

#endif
