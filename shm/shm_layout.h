/*
 * shm_layout.h - the shared-memory segment, types only.
 *
 * One segment per instance, a file at `shm_path` mapped by the master (which
 * creates it), by every worker (inherited across fork) and by sakerctl
 * (read-only). This header is everything sakerctl needs to read it; it pulls
 * in no worker or master code.
 *
 *   [struct shm_header][struct shm_slot x slot_count]
 *   [struct shm_route_stats x SHM_MAX_ROUTES]                 retired routes
 *   [struct shm_route_stats x SHM_MAX_ROUTES x slot_count]    each slot's routes
 *   [struct shm_conn_list x slot_count]                       each slot's connections
 *
 * The three regions after the slots are found by arithmetic on slot_count
 * (shm.h: shm_routes_retired, shm_routes_of, shm_conns_of), so the
 * header need not say where they are. Per-slot tables of fixed size live
 * inside the slot (upstream server gauges, rate limit and module counters)
 * and directories inside the header (upstream servers, rate limit policies,
 * route labels, module counter names), so
 * header_size and slot_size, which readers check, cover them.
 *
 * Rules:
 *  - Each slot has exactly one writer: the worker that owns it, while it
 *    lives. After it dies the master folds the slot's counters into the
 *    header's retired totals (under retired_seq, a seqlock) and clears it.
 *  - Counters are 64-bit and monotonic for the life of the instance;
 *    readers add retired totals and every slot, retrying while retired_seq
 *    is odd or changes under them.
 *  - Strings in the header (listeners, reload message) are written by the
 *    master under header_seq, a seqlock.
 *  - All atomics use relaxed ordering except the seqlocks' acquire/release.
 *  - A slot's routes and connections have the slot's writer; the master
 *    folds routes into the retired ones and empties the connection list
 *    when it retires the slot.
 *  - Readers refuse a segment whose magic, layout version or sizes differ
 *    from this header's; bump SHM_LAYOUT_VERSION on any change below.
 */
#ifndef SAKER_SHM_LAYOUT_H
#define SAKER_SHM_LAYOUT_H

#include <stdalign.h>
#include <stdatomic.h>
#include <stdint.h>


#define SHM_MAGIC UINT64_C(0x314d48535245414b) /* "KAERSHM1" little-endian */
#define SHM_LAYOUT_VERSION 12
#define SHM_CACHE_LINE 64
#define SHM_MAX_LISTENERS 32
#define SHM_LISTENER_TEXT_MAX 160
#define SHM_MESSAGE_MAX 512
#define SHM_MIN_SLOTS 64
#define SHM_VERSION_MAX 32
#define SHM_MAX_CERTIFICATES 64
#define SHM_CERTIFICATE_TEXT_MAX 256
#define SHM_PATH_MAX 4096
#define SHM_MAX_UPSTREAM_SERVERS 64
#define SHM_UPSTREAM_TEXT_MAX 160
/* Upstream response time histogram: upper bounds in ms, then +Inf. */
#define SHM_UPSTREAM_LATENCY_BOUNDS {5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000}
#define SHM_UPSTREAM_LATENCY_BUCKETS 12
#define SHM_MODULE_COUNTERS 64
#define SHM_MODULE_NAME_MAX 48
#define SHM_MAX_RATE_LIMITS 64
#define SHM_RATE_NAME_MAX 64
#define SHM_RATE_TEXT_MAX 128
#define SHM_MAX_ROUTES 64
#define SHM_ROUTE_LABEL_MAX 128
#define SHM_CONNS_PER_SLOT 256
#define SHM_CONN_REQUEST_MAX 160

/* Monotonic counters kept per worker slot and in the retired totals. */
enum shm_counter {
    SHM_CONNECTIONS_ACCEPTED,
    SHM_REQUESTS,
    SHM_RESPONSES_1XX,
    SHM_RESPONSES_2XX,
    SHM_RESPONSES_3XX,
    SHM_RESPONSES_4XX,
    SHM_RESPONSES_5XX,
    SHM_BYTES_IN,
    SHM_BYTES_OUT,
    /* Requests and connections refused, by reason (see shm_counter_name). */
    SHM_REJECT_MALFORMED,
    SHM_REJECT_REQUEST_LINE_TOO_LONG,
    SHM_REJECT_HEADERS_TOO_LARGE,
    SHM_REJECT_TOO_MANY_HEADERS,
    SHM_REJECT_BODY_TOO_LARGE,
    SHM_REJECT_HOST_NOT_ALLOWED,
    SHM_REJECT_CONNECTION_LIMIT,
    SHM_REJECT_HEADERS_TIMEOUT,
    SHM_REJECT_BODY_RATE,
    SHM_REJECT_RESPONSE_RATE,
    /* TLS handshakes: succeeded, failed by reason (see shm_tls_result),
     * resumed with a ticket, and the protocol version of those that
     * succeeded. Appended: the rejections above end at SHM_REJECT_END. */
    SHM_TLS_HANDSHAKES_OK,
    SHM_TLS_FAIL_PROTOCOL_VERSION,
    SHM_TLS_FAIL_NO_SHARED_CIPHER,
    SHM_TLS_FAIL_UNKNOWN_NAME,
    SHM_TLS_FAIL_BAD_CERTIFICATE,
    SHM_TLS_FAIL_PLAIN_HTTP, /* a plain HTTP request: answered 400 in clear */
    SHM_TLS_FAIL_OTHER, /* garbage, EOF or timeout mid-handshake */
    SHM_TLS_RESUMED,
    SHM_TLS_12,
    SHM_TLS_13,
    /* The cipher of successful handshakes, by AEAD. */
    SHM_TLS_CIPHER_AES128_GCM,
    SHM_TLS_CIPHER_AES256_GCM,
    SHM_TLS_CIPHER_CHACHA20_POLY1305,
    SHM_TLS_CIPHER_OTHER,
    /* HTTP/2: connections that spoke it, request streams, RST_STREAMs
     * the clients sent and saker sent (refused, cancelled, malformed),
     * and connections saker ended with an error GOAWAY (protocol error,
     * flood, compression error). */
    SHM_H2_CONNECTIONS,
    SHM_H2_STREAMS,
    SHM_H2_RESETS_RECEIVED,
    SHM_H2_RESETS_SENT,
    SHM_H2_CONNECTION_ERRORS,
    /* Response compression, per coding in config_coding's order (br,
     * gzip, deflate): body bytes before and after, and responses. */
    SHM_COMPRESS_IN_BR,
    SHM_COMPRESS_IN_GZIP,
    SHM_COMPRESS_IN_DEFLATE,
    SHM_COMPRESS_OUT_BR,
    SHM_COMPRESS_OUT_GZIP,
    SHM_COMPRESS_OUT_DEFLATE,
    SHM_COMPRESS_RESPONSES_BR,
    SHM_COMPRESS_RESPONSES_GZIP,
    SHM_COMPRESS_RESPONSES_DEFLATE,
#define SHM_COMPRESS_CODINGS 3 /* each group above: br, gzip, deflate */
    /* The static handler's open-file cache (worker/file_cache.h), in
     * struct file_cache_counts' order. */
    SHM_FILE_CACHE_HITS,
    SHM_FILE_CACHE_MISSES,
    SHM_FILE_CACHE_EVICTIONS,
    SHM_FILE_CACHE_REVALIDATIONS,
    SHM_COUNTER_COUNT
};
#define SHM_REJECT_FIRST SHM_REJECT_MALFORMED
#define SHM_REJECT_END SHM_TLS_HANDSHAKES_OK /* one past the last rejection */
#define SHM_TLS_RESULT_FIRST SHM_TLS_HANDSHAKES_OK
#define SHM_TLS_RESULT_END SHM_TLS_RESUMED

/* Per upstream server, over every worker (atomic adds: many writers,
 * monotonic for the life of the instance). */
enum shm_upstream_counter {
    SHM_UP_REQUESTS,          /* attempts sent to it */
    SHM_UP_RESPONSES_1XX,     /* response heads it gave, by class */
    SHM_UP_RESPONSES_2XX,
    SHM_UP_RESPONSES_3XX,
    SHM_UP_RESPONSES_4XX,
    SHM_UP_RESPONSES_5XX,
    SHM_UP_CONNECT_ERRORS,    /* refused, unreachable */
    SHM_UP_TIMEOUTS,          /* connect, send or read */
    SHM_UP_RESETS,            /* closed before the response ended */
    SHM_UP_INVALID,           /* not HTTP, or a head over the limit */
    SHM_UP_EJECTIONS,         /* passive: max_fails reached */
    SHM_UP_CHECKS_OK,         /* active health checks */
    SHM_UP_CHECKS_FAILED,
    SHM_UP_LATENCY_MS_SUM,    /* of the histogram below */
    SHM_UP_COUNTER_COUNT
};

/* What the active health checks say of a server. */
enum shm_upstream_health {
    SHM_UPSTREAM_UNCHECKED, /* no health_check: up unless ejected */
    SHM_UPSTREAM_UP,
    SHM_UPSTREAM_DOWN,      /* every worker skips it */
};

/* One server of one upstream, claimed by the first worker that serves it
 * (under header_seq) and kept: counters stay monotonic across reloads. */
struct shm_upstream_server {
    alignas(SHM_CACHE_LINE) _Atomic uint32_t health; /* enum shm_upstream_health */
    uint32_t reserved;
    _Atomic uint64_t generation;       /* the newest generation that serves it */
    _Atomic uint64_t ejected_until_ms; /* CLOCK_MONOTONIC: the last passive ejection's end */
    char upstream[64];
    char url[SHM_UPSTREAM_TEXT_MAX];
    _Atomic uint64_t counters[SHM_UP_COUNTER_COUNT];
    _Atomic uint64_t latency[SHM_UPSTREAM_LATENCY_BUCKETS]; /* per bucket, not cumulative */
};

enum shm_instance_state {
    SHM_INSTANCE_STARTING,
    SHM_INSTANCE_RUNNING,
    SHM_INSTANCE_RELOADING,
    SHM_INSTANCE_DRAINING,
    SHM_INSTANCE_STOPPING,
    SHM_INSTANCE_STOPPED,
};

enum shm_worker_state {
    SHM_WORKER_FREE,     /* slot unused */
    SHM_WORKER_STARTING, /* forked, not yet accepting */
    SHM_WORKER_RUNNING,  /* accepting and serving */
    SHM_WORKER_DRAINING, /* stopped accepting, finishing connections */
    SHM_WORKER_EXITED,   /* gone; the master has not reaped it yet */
};

/* Permit pools for the cross-worker limits (DESIGN.md "Global, cross-worker
 * limits"): pool 0 is the instance-wide limits.max_concurrent_*, pool 1 + i
 * the endpoint with index i in the config, when it sets its own limit. */
enum shm_pool_kind {
    SHM_POOL_CONNECTIONS, /* max_concurrent_connections */
    SHM_POOL_UPGRADED,    /* max_concurrent_upgraded_connections */
    SHM_POOL_KINDS
};
#define SHM_POOL_GLOBAL 0
#define SHM_POOLS (1 + SHM_MAX_LISTENERS)

/* Taken with compare-and-swap (never past the taker's limit), given back
 * with an atomic subtract. `limit` is what the last taker enforced, for
 * readers only: each worker compares against its own generation's config. */
struct shm_pool {
    alignas(SHM_CACHE_LINE) _Atomic uint64_t used;
    _Atomic uint64_t limit; /* 0: unlimited (the pool is then not used) */
};

enum shm_listener_kind { SHM_LISTENER_TCP4, SHM_LISTENER_TCP6, SHM_LISTENER_UNIX };

struct shm_listener {
    uint32_t kind;      /* enum shm_listener_kind */
    uint32_t port;      /* the real port, 0 for Unix sockets */
    char endpoint[64];  /* the config's endpoint name */
    char url[SHM_LISTENER_TEXT_MAX];     /* as configured */
    char address[SHM_LISTENER_TEXT_MAX]; /* as bound: "127.0.0.1:41234", "[::1]:80", "/run/a.sock" */
};

/* A certificate the serving generation presents, so that status and
 * metrics can say when it expires. */
struct shm_certificate {
    char endpoint[64];  /* the endpoint's name */
    char sni[64];       /* the sni: name it serves; "" for the default */
    char path[SHM_CERTIFICATE_TEXT_MAX];    /* the certificate file */
    char subject[SHM_CERTIFICATE_TEXT_MAX]; /* the leaf's subject, RFC 2253 */
    int64_t not_before; /* Unix seconds */
    int64_t not_after;
};

/* A counter a module declared (saker/module.h), named by the module and
 * itself. The master appends one the first time a config names it and
 * never moves or removes it, so its index, in every slot and in the
 * retired totals, means the same counter for the life of the instance:
 * a reload that drops a module keeps its figures, and one that brings
 * it back counts on from them. */
struct shm_module_counter {
    char module[SHM_MODULE_NAME_MAX];
    char name[SHM_MODULE_NAME_MAX];
};

/* ---- rate limits ------------------------------------------------------ */

/* What a rate limit policy did, per worker slot and in the retired totals,
 * indexed by the policy's entry in the header's directory. Its state (the
 * partitions and their counts) is not in this segment: see
 * shm/rate_table.h. */
enum shm_rate_counter {
    SHM_RATE_ADMITTED, /* requests it let through (that every policy of the route did) */
    SHM_RATE_LIMITED,  /* requests it refused with 429 */
    SHM_RATE_OVERFLOW, /* requests charged to its shared overflow partition */
    SHM_RATE_COUNTERS
};

/* A policy of the generations alive, by name: the master writes it under
 * header_seq when a generation that names it starts, and clears it when
 * the last one goes. */
struct shm_rate_policy {
    char name[SHM_RATE_NAME_MAX];       /* "": the entry is free */
    char definition[SHM_RATE_TEXT_MAX]; /* "fixed_window 100 per 1m, by client_address /32 /64" */
};

/* ---- routes ------------------------------------------------------------- */

/* Request durations, first byte in to last byte out, in these buckets
 * (upper bounds, microseconds; the last bucket is +Inf): Prometheus'
 * defaults extended down to 0.5 ms, where a web server's fast answers
 * are. Counts are per bucket, not cumulative; readers accumulate. */
#define SHM_DURATION_BUCKETS 15
#define SHM_DURATION_BOUNDS_US \
    {500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000, \
     2500000, 5000000, 10000000}

/* Route entries 0 and 1 are fixed: responses given before a route was
 * chosen or when none matched, and routes beyond the table. */
#define SHM_ROUTE_UNROUTED 0
#define SHM_ROUTE_OTHER 1
#define SHM_ROUTE_FIRST 2

struct shm_route_stats {
    alignas(SHM_CACHE_LINE) _Atomic uint64_t buckets[SHM_DURATION_BUCKETS];
    _Atomic uint64_t duration_us; /* the sum */
    _Atomic uint64_t responses[5]; /* by status class, 1xx..5xx */
};

/* A route of the generations alive, by label (its `name:`, else
 * [ENDPOINT:][HOST]PATH), written by the master under header_seq. */
struct shm_route_label {
    char label[SHM_ROUTE_LABEL_MAX]; /* "": the entry is free */
};

/* ---- connections --------------------------------------------------------- */

enum shm_conn_state {
    SHM_CONN_FREE,         /* no connection in the entry */
    SHM_CONN_HANDSHAKE,    /* TLS handshake */
    SHM_CONN_READING_HEAD, /* a request head is arriving */
    SHM_CONN_READING_BODY, /* a request body is arriving */
    SHM_CONN_HANDLING,     /* a request is with its handler */
    SHM_CONN_WRITING,      /* output is waiting for the client to read it */
    SHM_CONN_IDLE,         /* keep-alive, nothing in progress */
    SHM_CONN_TUNNEL,       /* upgraded: raw bytes */
    SHM_CONN_CLOSING,      /* half-closed, lingering */
    SHM_CONN_STATES
};

enum shm_conn_protocol { SHM_CONN_UNDECIDED, SHM_CONN_HTTP1, SHM_CONN_HTTP2 };

/* One connection as `sakerctl conns` lists it (Apache's scoreboard line).
 * The worker writes it under seq (odd while writing); a reader copies it
 * and retries while seq is odd or moved, so it never blocks the worker. */
struct shm_conn {
    alignas(SHM_CACHE_LINE) _Atomic uint64_t seq;
    uint8_t state;     /* enum shm_conn_state */
    uint8_t protocol;  /* enum shm_conn_protocol */
    uint8_t tls;       /* 1: over TLS */
    uint8_t family;    /* AF_INET, AF_INET6, or AF_UNIX (no address) */
    uint16_t port;     /* the client's port */
    uint8_t address[16]; /* IPv4 in the first four bytes */
    uint64_t accepted_ms;  /* CLOCK_MONOTONIC */
    uint64_t state_ms;     /* in this state since */
    uint64_t bytes_in, bytes_out;
    char request[SHM_CONN_REQUEST_MAX]; /* the last request line, cut, NUL-ended */
};

/* A worker's connections: entries [0, used) may hold one (state not
 * SHM_CONN_FREE); a connection beyond the table is counted in unlisted. */
struct shm_conn_list {
    alignas(SHM_CACHE_LINE) _Atomic uint32_t enabled; /* connection_list: on */
    _Atomic uint32_t used;     /* high-water mark of entries written */
    _Atomic uint64_t listed;   /* gauge: entries in use */
    _Atomic uint64_t unlisted; /* gauge: open connections without an entry */
    struct shm_conn entries[SHM_CONNS_PER_SLOT];
};

struct shm_slot {
    alignas(SHM_CACHE_LINE) _Atomic int32_t pid; /* 0 when free */
    _Atomic int32_t cpu;                         /* -1: not pinned */
    _Atomic uint32_t state;                      /* enum shm_worker_state */
    _Atomic uint32_t index;                      /* worker number in its generation */
    _Atomic uint64_t generation;
    _Atomic uint64_t heartbeat_ms;  /* CLOCK_MONOTONIC ms of the last heartbeat */
    _Atomic int64_t started_at;     /* wall-clock seconds */
    _Atomic uint64_t connections_open; /* gauge */
    _Atomic uint64_t compression_memory; /* gauge: bytes compressor states hold */
    alignas(SHM_CACHE_LINE) _Atomic uint64_t counters[SHM_COUNTER_COUNT];
    /* Permits this worker holds, per pool: its own writes only; the master
     * gives them back to the pools when it retires the slot. */
    alignas(SHM_CACHE_LINE) _Atomic uint64_t permits_held[SHM_POOL_KINDS][SHM_POOLS];
    /* Per upstream server (the header's table): requests in flight and
     * pooled connections of this worker (gauges: a dead worker's go with
     * its slot). */
    alignas(SHM_CACHE_LINE) _Atomic uint64_t upstream_active[SHM_MAX_UPSTREAM_SERVERS];
    _Atomic uint64_t upstream_idle[SHM_MAX_UPSTREAM_SERVERS];
    /* Modules' counters, by the header's module_counters index. */
    alignas(SHM_CACHE_LINE) _Atomic uint64_t module_counters[SHM_MODULE_COUNTERS];
    /* Rate limits, by directory entry (enum shm_rate_counter). */
    alignas(SHM_CACHE_LINE) _Atomic uint64_t rate[SHM_MAX_RATE_LIMITS][SHM_RATE_COUNTERS];
};

struct shm_header {
    uint64_t magic;
    uint32_t layout_version;
    uint32_t header_size;  /* sizeof(struct shm_header) */
    uint32_t slot_size;    /* sizeof(struct shm_slot) */
    uint32_t slot_count;
    uint64_t total_size;
    /* The master, under header_seq: a binary upgrade hands the segment to
     * a new master, which writes itself here once it serves. sakerctl
     * checks the process before it signals it: its start time (field 22
     * of /proc/PID/stat, clock ticks since boot) and the device and inode
     * of its /proc/PID/exe must be these, so a recycled pid, or a pid
     * written into a forged file, is never signalled. */
    int32_t master_pid;
    int32_t reserved0;
    int64_t started_at;    /* wall-clock seconds */
    char server_version[SHM_VERSION_MAX]; /* saker's PACKAGE_VERSION, NUL-ended */
    uint64_t master_start_ticks;
    uint64_t master_exe_dev;
    uint64_t master_exe_ino;

    _Atomic uint64_t generation;  /* the generation now serving */
    _Atomic uint32_t state;       /* enum shm_instance_state */
    _Atomic uint32_t workers_per_generation;

    /* Written by the master under header_seq (odd while writing). */
    _Atomic uint64_t header_seq;
    uint32_t listener_count;
    uint32_t reserved1;
    struct shm_listener listeners[SHM_MAX_LISTENERS];
    uint64_t reload_count;       /* reload attempts finished */
    int32_t reload_ok;           /* outcome of the last one: 1 ok, 0 failed */
    uint32_t reserved2;
    uint64_t reload_duration_ms;
    int64_t reload_finished_at;  /* wall-clock seconds */
    char reload_message[SHM_MESSAGE_MAX];
    /* Binary upgrades (sakerctl upgrade), as the reload fields: attempts
     * finished, the outcome of the last one, and the new master's pid. */
    uint64_t upgrade_count;
    int32_t upgrade_ok;
    int32_t upgrade_pid;
    char upgrade_message[SHM_MESSAGE_MAX];
    /* Written by `sakerctl upgrade --binary` (root or the owner) before it
     * signals; the master reads and clears it. Empty: the master's own
     * executable. Not under header_seq: one writer at a time by contract. */
    char upgrade_binary[SHM_PATH_MAX];
    /* The serving generation's certificates, published with its listeners. */
    uint32_t certificate_count;   /* entries used, at most SHM_MAX_CERTIFICATES */
    uint32_t certificates_unlisted; /* more than the table holds */
    struct shm_certificate certificates[SHM_MAX_CERTIFICATES];

    /* Modules' counters (struct shm_module_counter), under header_seq;
     * written before the workers that use them are forked. */
    uint32_t module_counter_count;
    uint32_t reserved3;
    struct shm_module_counter module_counters[SHM_MODULE_COUNTERS];
    /* Master-only counters. */
    _Atomic uint64_t worker_starts;
    _Atomic uint64_t worker_deaths;   /* exits the master did not ask for */
    _Atomic uint64_t worker_watchdog_kills;

    /* Cross-worker limits: see struct shm_pool. */
    struct shm_pool pools[SHM_POOL_KINDS][SHM_POOLS];

    /* Upstream servers, claimed by workers under header_seq. */
    uint32_t upstream_server_count;
    uint32_t reserved4;
    struct shm_upstream_server upstream_servers[SHM_MAX_UPSTREAM_SERVERS];
    /* Directories of the generations alive, under header_seq: rate limit
     * policies and route labels, each entry indexing the slots' counters. */
    struct shm_rate_policy rate_policies[SHM_MAX_RATE_LIMITS];
    struct shm_route_label routes[SHM_MAX_ROUTES];

    /* Folded totals of exited workers, under retired_seq. */
    alignas(SHM_CACHE_LINE) _Atomic uint64_t retired_seq;
    _Atomic uint64_t retired[SHM_COUNTER_COUNT];
    _Atomic uint64_t retired_module[SHM_MODULE_COUNTERS];
    _Atomic uint64_t rate_retired[SHM_MAX_RATE_LIMITS][SHM_RATE_COUNTERS];
};

#endif
