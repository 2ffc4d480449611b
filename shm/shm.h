/*
 * shm.h - create, attach and read the shared-memory segment.
 *
 * The master calls shm_create() before forking; workers use the mapping they
 * inherit and write only their own slot (shm_slot_*); sakerctl calls
 * shm_attach() and reads through the shm_snapshot_* functions, which
 * honour the seqlocks described in shm_layout.h.
 *
 * sakerctl treats the segment as untrusted input: whoever can write the
 * file (root, or the user sakerctl runs as: shm_attach trusts no other)
 * can shrink it or put anything in it. So shm_attach() does not map
 * it (reading a mapped page past a file's new end is SIGBUS): it reads the
 * file into private memory with pread, and shm_refresh() reads it again.
 * A refresh refuses a file that shrank or changed its layout, the
 * snapshots bound every count and string they copy, and the renderers
 * saturate what they compute from times and counters.
 */
#ifndef SAKER_SHM_SHM_H
#define SAKER_SHM_SHM_H

#include <stdbool.h>
#include <stddef.h>

#include "common/error.h"
#include "shm/shm_layout.h"

struct shm {
    struct shm_header *header;
    struct shm_slot *slots;
    struct shm_route_stats *routes; /* retired, then each slot's (shm_routes_of) */
    struct shm_conn_list *conns;    /* one per slot */
    unsigned slot_count;            /* as mapped or copied: where the regions are */
    size_t size;
    uint64_t dev, ino; /* the file mapped or copied */
    /* shm_attach: header and slots are a private copy of the file at fd,
     * which shm_refresh reads again; otherwise they are a mapping. */
    bool copy;
    int fd;
};

/* The segment's size for slot_count slots. */
size_t shm_segment_size(unsigned slot_count);
/* A slot's route statistics: SHM_MAX_ROUTES of them, indexed by the
 * header's route entries. */
static inline struct shm_route_stats *shm_routes_of(const struct shm *shm, unsigned slot)
{
    return shm->routes + (size_t)(slot + 1) * SHM_MAX_ROUTES;
}
/* The folded statistics of retired slots (under retired_seq). */
static inline struct shm_route_stats *shm_routes_retired(const struct shm *shm)
{
    return shm->routes;
}
static inline struct shm_conn_list *shm_conns_of(const struct shm *shm, unsigned slot)
{
    return &shm->conns[slot];
}

/* Creates (or replaces) the segment file at path, mode 0640, sized for
 * slot_count slots (at least SHM_MIN_SLOTS, so a reload that adds workers
 * still finds room), with a fresh header for the calling process as
 * master (shm_master_publish): state STARTING, reload_ok 1 (the config
 * that started us loaded), every slot free with cpu -1. The file is made
 * under a random name beside path with O_EXCL (never through a symlink
 * someone planted) and renamed over path when complete: whatever was at
 * path, a symlink included, is replaced, never written through, and a
 * reader still mapping an old segment is not hit by SIGBUS. */
int shm_create(struct shm *shm, const char *path, unsigned slot_count, struct err *err);
/* Reads an existing segment into private memory (shm_refresh), refusing
 * unknown magic, layout version or sizes with a message that says which.
 * Only a regular file owned by root or the caller and writable by nobody
 * else is read, opened without following a symlink: a segment is
 * instructions to signal a process, so a file anyone could have written
 * is refused. The file stays open for shm_refresh until shm_detach. */
int shm_attach(struct shm *shm, const char *path, struct err *err);
/* Reads an attached segment again, consistently under both seqlocks
 * (after a bounded number of tries, the last copy, which the snapshots
 * then report as SK_AGAIN). SK_ERROR (err set) when the file shrank, or
 * no longer has the layout it had at shm_attach: the caller stops reading
 * it. Nothing to do (SK_OK) for a mapping. */
int shm_refresh(struct shm *shm, struct err *err);
/* Maps the segment open on fd (handed over by the master before a binary
 * upgrade) read-write, with shm_attach's checks; what names it in
 * messages. Does not close fd. */
int shm_adopt(struct shm *shm, int fd, const char *what, struct err *err);
/* The file shm maps, opened again read-write at path (O_NOFOLLOW): -1
 * with err set when path is no longer that file. */
int shm_reopen(const struct shm *shm, const char *path, struct err *err);
void shm_detach(struct shm *shm);

/* Master: writes the calling process into the header as the master (pid,
 * start time in ticks, executable's device and inode), under header_seq. */
void shm_master_publish(struct shm *shm);
/* Readers: checks that h's master is alive and is the process that wrote
 * itself there. SK_OK: it is. SK_DECLINED: gone, or some other process (a
 * recycled pid, a pid written into a forged file); err says which.
 * SK_ERROR: cannot tell, /proc/PID is not ours to read (err says so). */
int shm_master_verify(const struct shm_header *h, struct err *err);
/* sakerctl upgrade --binary: writes binary (absolute, < SHM_PATH_MAX) into
 * the segment at path, trusted as shm_attach trusts it. The master reads
 * and clears it when signalled. */
int shm_request_upgrade(const char *path, const char *binary, struct err *err);

/* Slot writes: only the slot's owner calls these. */
static inline void shm_slot_count(struct shm_slot *slot, enum shm_counter c, uint64_t n)
{
    if (slot == NULL)
        return;
    /* One writer: a relaxed load and store is enough and avoids a locked add. */
    uint64_t v = atomic_load_explicit(&slot->counters[c], memory_order_relaxed);
    atomic_store_explicit(&slot->counters[c], v + n, memory_order_relaxed);
}
/* The table entry of server url of upstream name, claimed when new (under
 * header_seq), marked as served by generation; checked: it has active
 * health checks (health starts UP). NULL when the table is full. */
struct shm_upstream_server *shm_upstream_claim(struct shm *shm, const char *upstream,
                                               const char *url, uint64_t generation,
                                               bool checked);

static inline void shm_upstream_count(struct shm_upstream_server *s, enum shm_upstream_counter c,
                                      uint64_t n)
{
    if (s != NULL)
        atomic_fetch_add_explicit(&s->counters[c], n, memory_order_relaxed);
}

static inline void shm_slot_gauge_add(_Atomic uint64_t *gauge, int64_t delta)
{
    uint64_t v = atomic_load_explicit(gauge, memory_order_relaxed);
    atomic_store_explicit(gauge, v + (uint64_t)delta, memory_order_relaxed);
}

/* Worker: takes one permit from pools[kind][pool] if fewer than limit are
 * in use (limit 0: unlimited, nothing taken, true), recording it in slot.
 * False when the pool is full. The pool is taken before the slot records
 * it and the slot forgets before the pool gets it back, so a worker killed
 * in between can only leak a permit, never let the limit overshoot. */
bool shm_permit_take(struct shm *shm, struct shm_slot *slot, enum shm_pool_kind kind,
                     unsigned pool, uint64_t limit);
/* Worker: gives back a permit taken with shm_permit_take. */
void shm_permit_give(struct shm *shm, struct shm_slot *slot, enum shm_pool_kind kind,
                     unsigned pool);
/* Readers: permits in use in a pool. */
uint64_t shm_permits_used(const struct shm *shm, enum shm_pool_kind kind, unsigned pool);

/* Workers: the limit a pool enforces under the serving generation's config
 * (0: none), for readers; takers compare against their own config. */
void shm_pool_publish_limit(struct shm *shm, enum shm_pool_kind kind, unsigned pool,
                            uint64_t limit);

/* Readers: a pool that enforces a limit, as status and metrics show it. */
struct shm_pool_view {
    const char *limit_name; /* "max_concurrent_connections", ... */
    const char *endpoint;   /* NULL for the instance-wide pool; points into h */
    uint64_t limit;
    uint64_t used;
};
/* Fills out with the pools of h (a snapshot) whose limit is set; returns
 * how many, at most max. Endpoint pool 1 + i is named after the i-th
 * endpoint of the listener table. */
size_t shm_pools_in_force(const struct shm_header *h, struct shm_pool_view *out, size_t max);

/* Master: marks a slot as taken by pid for generation/index: a fresh
 * heartbeat, state STARTING unless the worker already moved it on. */
void shm_slot_claim(struct shm *shm, unsigned slot, int pid, int cpu,
                    uint64_t generation, unsigned index);
/* Master: after the slot's worker is gone, folds its counters (rate
 * limits and routes too) into the retired totals, drops its gauges and
 * its connection list, returns the permits it held to their pools and
 * frees the slot. */
void shm_slot_retire(struct shm *shm, unsigned slot);
/* Master: index of a free slot, or -1. */
int shm_slot_find_free(const struct shm *shm);
/* STARTING, RUNNING or DRAINING: a worker that holds its slot and counts. */
bool shm_worker_state_live(unsigned state);

/* Master: names a rate limit directory entry (under header_seq). */
void shm_rate_policy_set(struct shm *shm, unsigned entry, const char *name,
                         const char *definition);
/* Master: frees an entry no live generation uses, with its retired totals
 * (the slots hold none: every worker that counted there has been retired). */
void shm_rate_policy_clear(struct shm *shm, unsigned entry);

/* Master: labels a route entry (under header_seq); entries
 * SHM_ROUTE_UNROUTED and SHM_ROUTE_OTHER are labelled at creation. */
void shm_route_label_set(struct shm *shm, unsigned entry, const char *label);
/* Master: frees a route entry no live generation uses, with its retired
 * statistics. */
void shm_route_label_clear(struct shm *shm, unsigned entry);

/* Master: header strings under header_seq. */
void shm_header_begin_write(struct shm *shm);
void shm_header_end_write(struct shm *shm);

/* The index of module's counter name in the header's table (struct
 * shm_module_counter), appended when add (the master, before it forks
 * the workers that count it); -1 when it is not there, the table is
 * full or a name too long. */
int shm_module_counter_index(struct shm *shm, const char *module, const char *name,
                             bool add);

struct shm_totals {
    uint64_t counters[SHM_COUNTER_COUNT];
    uint64_t module_counters[SHM_MODULE_COUNTERS]; /* by the header's table */
    uint64_t rate[SHM_MAX_RATE_LIMITS][SHM_RATE_COUNTERS];
    uint64_t connections_open;
    uint64_t compression_memory; /* bytes compressor states hold now */
    unsigned workers_live;
};

/* Readers: consistent sum of retired totals and all live slots. Returns
 * SK_OK, or SK_AGAIN if the master kept folding for too many retries. */
int shm_snapshot_totals(const struct shm *shm, struct shm_totals *out);
/* Readers: copies the header (strings consistent under header_seq), its
 * strings always NUL-ended within their arrays and its table counts
 * clamped to the tables. SK_AGAIN when the master stayed mid-write for
 * every retry; out then holds the last copy, usable with a warning. */
int shm_snapshot_header(const struct shm *shm, struct shm_header *out);
/* A route entry's statistics as readers sum them. */
struct shm_route_totals {
    uint64_t buckets[SHM_DURATION_BUCKETS];
    uint64_t duration_us;
    uint64_t responses[5];
};
/* Readers: each route entry's statistics, retired slots and live ones
 * summed (out: SHM_MAX_ROUTES of them), consistent under retired_seq as
 * shm_snapshot_totals is. SK_OK or SK_AGAIN. */
int shm_snapshot_routes(const struct shm *shm, struct shm_route_totals *out);
/* Readers: copies one slot (values individually atomic). */
void shm_snapshot_slot(const struct shm *shm, unsigned slot, struct shm_slot *out);

/* A seqlock's writer side (odd while writing), for entries with one
 * writer such as a connection list's. */
void shm_seq_write_begin(_Atomic uint64_t *seq);
void shm_seq_write_end(_Atomic uint64_t *seq);
/* Readers: copies entry index of slot's connection list consistently
 * (retrying while its writer is in the middle; from the file itself for
 * a reader's copy), its request line NUL-ended. SK_OK, or SK_AGAIN when
 * it kept changing or the file shrank. */
int shm_snapshot_conn(const struct shm *shm, unsigned slot, unsigned index, struct shm_conn *out);
/* "reading head", "idle", ... and "http/1.1", "h2", "-". */
const char *shm_conn_state_name(unsigned state);
const char *shm_conn_protocol_name(unsigned protocol);

/* Metric-style names: "connections_accepted", "reject_malformed"... and
 * for rejections the bare reason ("malformed", "body_too_large"). */
const char *shm_counter_name(enum shm_counter c);
const char *shm_reject_reason(enum shm_counter c);
/* "br", "gzip", "deflate": the coding of the i-th counter in each
 * SHM_COMPRESS_* group (i < SHM_COMPRESS_CODINGS). */
const char *shm_compress_coding(int i);
/* For the TLS handshake counters: "ok", "protocol_version",
 * "no_shared_cipher", "unknown_name", "bad_certificate", "plain_http",
 * "other"; NULL
 * for any other counter. */
const char *shm_tls_result(enum shm_counter c);
const char *shm_instance_state_name(unsigned state);
const char *shm_worker_state_name(unsigned state);
/* "tcp4", "tcp6", "unix" (enum shm_listener_kind). */
const char *shm_listener_kind_name(unsigned kind);

#endif
