/*
 * rate_table.c - rate limit state in shared memory; see rate_table.h.
 *
 * A record is one 16-byte word, [tag 48 | index 48 | value 32]: the
 * partition's tag, the window (or segment, or replenishment period) the
 * value belongs to, numbered from the start of CLOCK_MONOTONIC, and the
 * count of requests admitted in it (a token bucket: the tokens left).
 * Every decision reads the word atomically (a compare-and-swap that
 * changes nothing) and writes it back with a compare-and-swap, retried
 * when another worker got there first: admissions never overshoot, and a
 * record taken over by another key fails the old key's swap.
 *
 * A sliding window's earlier segments are in the record's history, one
 * word per segment slot, [segment 40 | count 24]. The worker that moves a
 * record to a new segment first writes the count of the segment it
 * leaves, taking the larger of what is there (counts only grow while
 * their segment is current), then swaps the record: every segment behind
 * the current one is final before anyone can see the record past it.
 */
#include "shm/rate_table.h"

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <unistd.h>

#include "common/siphash.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "rate_table.c reads the tag from the high half of a little-endian record"
#endif

typedef unsigned __int128 rate_word __attribute__((may_alias, aligned(16)));
typedef uint64_t rate_half __attribute__((may_alias));

#define INDEX_MASK ((UINT64_C(1) << 48) - 1)
#define HISTORY_INDEX_MASK ((UINT64_C(1) << 40) - 1)
#define HISTORY_COUNT_MASK ((UINT64_C(1) << 24) - 1)
#define OVERFLOW_TAG 1
#define SWAP_ATTEMPTS 10000
#define LOCK_SPINS 64
#define LOCK_YIELDS 4096
#define CONTENDED_RETRY_MS 1000

struct rate_table {
    uint64_t secret[2];
    uint32_t algorithm; /* enum rate_limit_algorithm */
    uint32_t segments;  /* a sliding window's; 1 otherwise */
    uint64_t limit;
    uint64_t period_ms; /* a window, a sliding window's segment, a replenishment period */
    uint64_t tokens_per_period;
    uint32_t set_count;
    _Atomic uint32_t entry;
    size_t size;
    size_t locks_offset, records_offset, history_offset;
};

struct rate_state {
    uint64_t tag, index, value;
};

/* ---- geometry ---------------------------------------------------------- */

static size_t round16(size_t n) { return (n + 15) & ~(size_t)15; }

static uint32_t sets_for(const struct rate_limit_policy *p)
{
    return (uint32_t)((p->max_partitions + RATE_TABLE_WAYS - 1) / RATE_TABLE_WAYS);
}

/* Every record of the sets, and the overflow record after them. */
static size_t record_count(uint32_t sets) { return (size_t)sets * RATE_TABLE_WAYS + 1; }

size_t rate_table_size(const struct rate_limit_policy *p)
{
    uint32_t sets = sets_for(p);
    size_t history = p->algorithm == RATE_LIMIT_SLIDING_WINDOW ? p->segments : 0;
    return round16(sizeof(struct rate_table)) + round16(sets * sizeof(int32_t)) +
           record_count(sets) * (sizeof(rate_word) + history * sizeof(uint64_t));
}

static _Atomic int32_t *lock_of(const struct rate_table *t, uint32_t set)
{
    return (_Atomic int32_t *)((char *)t + t->locks_offset) + set;
}

static rate_word *record_at(const struct rate_table *t, size_t i)
{
    return (rate_word *)((char *)t + t->records_offset) + i;
}

static rate_word *overflow_record(const struct rate_table *t)
{
    return record_at(t, (size_t)t->set_count * RATE_TABLE_WAYS);
}

static _Atomic uint64_t *history_of(const struct rate_table *t, const rate_word *record)
{
    size_t i = (size_t)(record - record_at(t, 0));
    return (_Atomic uint64_t *)((char *)t + t->history_offset) + i * t->segments;
}

/* ---- words --------------------------------------------------------------- */

static rate_word pack(struct rate_state s)
{
    uint64_t hi = s.tag << 16 | (s.index & INDEX_MASK) >> 32;
    uint64_t lo = s.index << 32 | (s.value & 0xffffffffu);
    return (rate_word)hi << 64 | lo;
}

static struct rate_state unpack(rate_word w)
{
    uint64_t hi = (uint64_t)(w >> 64), lo = (uint64_t)w;
    return (struct rate_state){hi >> 16, (hi & 0xffff) << 32 | lo >> 32, lo & 0xffffffffu};
}

static rate_word swap(rate_word *record, rate_word expect, rate_word want)
{
    return __sync_val_compare_and_swap(record, expect, want);
}

/* An atomic read: a swap that changes nothing (a 16-byte load is not
 * atomic on every CPU that has the 16-byte swap). */
static rate_word read_word(rate_word *record) { return swap(record, 0, 0); }

/* The tag alone, for lookups: the high half is one aligned 8-byte word. */
static uint64_t read_tag(rate_word *record)
{
    return __atomic_load_n((rate_half *)record + 1, __ATOMIC_ACQUIRE) >> 16;
}

/* ---- the algorithms -------------------------------------------------------- */

static uint64_t max64(uint64_t a, uint64_t b) { return a > b ? a : b; }

/* Tokens after `periods` replenishments (no overflow: periods < limit). */
static uint64_t refill(const struct rate_table *t, uint64_t tokens, uint64_t periods)
{
    if (periods >= t->limit)
        return t->limit;
    uint64_t more = tokens + periods * t->tokens_per_period;
    return more < t->limit ? more : t->limit;
}

static uint64_t history_count(_Atomic uint64_t *history, uint32_t segments, uint64_t segment)
{
    uint64_t e = atomic_load_explicit(&history[segment % segments], memory_order_acquire);
    return e >> 24 == (segment & HISTORY_INDEX_MASK) ? (e & HISTORY_COUNT_MASK) : 0;
}

/* The final count of a segment the record leaves; keeps the larger. */
static void history_keep(_Atomic uint64_t *history, uint32_t segments, uint64_t segment,
                         uint64_t count)
{
    _Atomic uint64_t *slot = &history[segment % segments];
    uint64_t want = (segment & HISTORY_INDEX_MASK) << 24 | (count & HISTORY_COUNT_MASK);
    uint64_t e = atomic_load_explicit(slot, memory_order_relaxed);
    while (e < want && !atomic_compare_exchange_weak_explicit(slot, &e, want,
                                                               memory_order_release,
                                                               memory_order_relaxed))
        ;
}

/* A sliding window: the segments of the window before the current one
 * are final; the current one's count is in the word. */
static bool decide_sliding(const struct rate_table *t, rate_word *record, struct rate_state *s,
                           uint64_t now_index, uint64_t now_ms, uint64_t *retry_ms)
{
    _Atomic uint64_t *history = history_of(t, record);
    uint64_t n = max64(s->index, now_index), count = s->value;
    if (n != s->index) {
        if (count > 0)
            history_keep(history, t->segments, s->index, count);
        count = 0;
    }
    uint64_t first = n + 1 >= t->segments ? n + 1 - t->segments : 0, older = 0, oldest = n;
    for (uint64_t j = first; j < n; j++) {
        uint64_t c = history_count(history, t->segments, j);
        if (c > 0 && oldest == n)
            oldest = j;
        older += c;
    }
    s->index = n;
    s->value = count;
    if (older + count < t->limit) {
        s->value++;
        return true;
    }
    /* The oldest segment with requests in it leaves the window first. */
    *retry_ms = (oldest + t->segments) * t->period_ms - now_ms;
    return false;
}

/* Moves s to now and takes a permit if there is one. Refused: retry_ms. */
static bool decide(const struct rate_table *t, rate_word *record, struct rate_state *s,
                   uint64_t now_ms, uint64_t *retry_ms)
{
    uint64_t now_index = now_ms / t->period_ms;
    /* A worker whose clock lags another's keeps to the later period. */
    uint64_t n = max64(s->index, now_index);
    if (t->algorithm == RATE_LIMIT_SLIDING_WINDOW)
        return decide_sliding(t, record, s, now_index, now_ms, retry_ms);
    if (t->algorithm == RATE_LIMIT_TOKEN_BUCKET)
        s->value = refill(t, s->value, n - s->index);
    else if (n != s->index)
        s->value = 0;
    s->index = n;
    *retry_ms = (n + 1) * t->period_ms - now_ms;
    if (t->algorithm == RATE_LIMIT_TOKEN_BUCKET && s->value >= 1) {
        s->value--;
        return true;
    }
    if (t->algorithm == RATE_LIMIT_FIXED_WINDOW && s->value < t->limit) {
        s->value++;
        return true;
    }
    return false;
}

/* The state a new partition starts from, before its first request. */
static struct rate_state fresh(const struct rate_table *t, uint64_t tag, uint64_t now_ms)
{
    uint64_t value = t->algorithm == RATE_LIMIT_TOKEN_BUCKET ? t->limit : 0;
    return (struct rate_state){tag, now_ms / t->period_ms, value};
}

/* A record whose state would decide as a fresh one does: reusable. */
static bool expired(const struct rate_table *t, struct rate_state s, uint64_t now_ms)
{
    uint64_t now_index = now_ms / t->period_ms;
    if (s.tag == 0)
        return true;
    if (s.index > now_index)
        return false;
    switch (t->algorithm) {
    case RATE_LIMIT_SLIDING_WINDOW:
        return s.index + t->segments <= now_index;
    case RATE_LIMIT_TOKEN_BUCKET:
        return refill(t, s.value, now_index - s.index) >= t->limit;
    default:
        return s.index < now_index;
    }
}

/* ---- deciding on a record ------------------------------------------------- */

enum outcome { DECIDED, TAG_GONE };

static void record_decision(struct rate_decision *out, bool admitted, rate_word *record,
                            rate_word w, uint64_t retry_ms)
{
    out->admitted = admitted;
    out->retry_after_ms = admitted ? 0 : (retry_ms > 0 ? retry_ms : 1);
    out->record = admitted ? record : NULL;
    out->hi = (uint64_t)(w >> 64);
    out->lo = (uint64_t)w;
}

static enum outcome update(struct rate_table *t, rate_word *record, uint64_t tag,
                           uint64_t now_ms, struct rate_decision *out)
{
    rate_word w = read_word(record);
    for (int attempt = 0; attempt < SWAP_ATTEMPTS; attempt++) {
        struct rate_state s = unpack(w);
        if (s.tag != tag)
            return TAG_GONE;
        uint64_t retry_ms = 0;
        bool admitted = decide(t, record, &s, now_ms, &retry_ms);
        rate_word next = pack(s);
        if (next == w) { /* refused, nothing moved: w was one atomic read */
            record_decision(out, false, record, w, retry_ms);
            return DECIDED;
        }
        rate_word seen = swap(record, w, next);
        if (seen == w) {
            record_decision(out, admitted, record, next, retry_ms);
            return DECIDED;
        }
        w = seen;
    }
    record_decision(out, false, record, w, CONTENDED_RETRY_MS);
    return DECIDED;
}

/* ---- sets ------------------------------------------------------------------ */

static rate_word *find(const struct rate_table *t, uint32_t set, uint64_t tag)
{
    for (size_t i = 0; i < RATE_TABLE_WAYS; i++) {
        rate_word *r = record_at(t, (size_t)set * RATE_TABLE_WAYS + i);
        if (read_tag(r) == tag)
            return r;
    }
    return NULL;
}

/* Takes the set's insert lock: its holder's pid. A holder that died
 * (killed mid-insert) is taken over once the kernel says it is gone. */
static bool set_lock(_Atomic int32_t *lock, int32_t me)
{
    for (int i = 0; i < LOCK_SPINS + LOCK_YIELDS; i++) {
        int32_t holder = 0;
        if (atomic_compare_exchange_strong_explicit(lock, &holder, me, memory_order_acquire,
                                                    memory_order_relaxed))
            return true;
        if (i < LOCK_SPINS)
            continue;
        if (kill(holder, 0) != 0 && errno == ESRCH)
            atomic_compare_exchange_strong_explicit(lock, &holder, 0, memory_order_relaxed,
                                                    memory_order_relaxed);
        sched_yield();
    }
    return false;
}

static void set_unlock(_Atomic int32_t *lock)
{
    atomic_store_explicit(lock, 0, memory_order_release);
}

/* Under the set's lock: an empty record of the set, else an expired one,
 * taken for tag with the new partition's first request. */
static bool claim(struct rate_table *t, uint32_t set, uint64_t tag, uint64_t now_ms,
                  struct rate_decision *out)
{
    for (int attempt = 0; attempt < SWAP_ATTEMPTS; attempt++) {
        rate_word *pick = NULL;
        rate_word seen = 0;
        for (size_t i = 0; i < RATE_TABLE_WAYS && (pick == NULL || seen != 0); i++) {
            rate_word *r = record_at(t, (size_t)set * RATE_TABLE_WAYS + i);
            rate_word w = read_word(r);
            if (w == 0 || (pick == NULL && expired(t, unpack(w), now_ms)))
                pick = r, seen = w;
        }
        if (pick == NULL)
            return false;
        struct rate_state s = fresh(t, tag, now_ms);
        uint64_t retry_ms = 0;
        decide(t, pick, &s, now_ms, &retry_ms); /* a fresh partition always admits */
        rate_word next = pack(s);
        if (swap(pick, seen, next) == seen) {
            record_decision(out, true, pick, next, 0);
            return true;
        }
    }
    return false;
}

enum insertion { CLAIMED, FOUND, FULL, BUSY };

/* A new key: claims a record under the set's lock, unless the key got
 * one meanwhile (FOUND: *found is it). FULL: no room in the set; BUSY:
 * the lock could not be had. */
static enum insertion insert(struct rate_table *t, uint32_t set, uint64_t tag, uint64_t now_ms,
                             rate_word **found, struct rate_decision *out)
{
    _Atomic int32_t *lock = lock_of(t, set);
    if (!set_lock(lock, (int32_t)getpid()))
        return BUSY;
    enum insertion result = FOUND;
    if ((*found = find(t, set, tag)) == NULL)
        result = claim(t, set, tag, now_ms, out) ? CLAIMED : FULL;
    set_unlock(lock);
    return result;
}

/* ---- the interface --------------------------------------------------------- */

void rate_table_acquire(struct rate_table *t, const void *key, size_t len, uint64_t now_ms,
                        struct rate_decision *out)
{
    uint64_t h = siphash24(t->secret, key, len);
    uint64_t tag = h >> 16 > OVERFLOW_TAG ? h >> 16 : OVERFLOW_TAG + 1;
    uint32_t set = (uint32_t)(((uint64_t)(uint32_t)h * t->set_count) >> 32);
    memset(out, 0, sizeof *out);
    for (int attempt = 0; attempt < SWAP_ATTEMPTS; attempt++) {
        rate_word *r = find(t, set, tag);
        enum insertion inserted = r == NULL ? insert(t, set, tag, now_ms, &r, out) : FOUND;
        if (inserted == CLAIMED)
            return;
        if (inserted == FULL)
            break;
        if (inserted == BUSY) {
            /* Its holder is stuck (stopped, not dead): refuse rather than
             * admit a request no record counts. */
            record_decision(out, false, NULL, 0, CONTENDED_RETRY_MS);
            return;
        }
        if (update(t, r, tag, now_ms, out) == DECIDED)
            return;
        /* The record went to another key under us: look again. */
    }
    out->overflow = true;
    update(t, overflow_record(t), OVERFLOW_TAG, now_ms, out);
}

void rate_table_refund(struct rate_table *t, const struct rate_decision *d)
{
    if (!d->admitted || d->record == NULL)
        return;
    rate_word *record = d->record;
    struct rate_state charged = unpack((rate_word)d->hi << 64 | d->lo);
    rate_word w = read_word(record);
    for (int attempt = 0; attempt < SWAP_ATTEMPTS; attempt++) {
        struct rate_state s = unpack(w);
        if (s.tag != charged.tag || s.index != charged.index)
            return; /* another window now, or another partition */
        if (t->algorithm == RATE_LIMIT_TOKEN_BUCKET ? s.value >= t->limit : s.value == 0)
            return;
        s.value += t->algorithm == RATE_LIMIT_TOKEN_BUCKET ? 1 : (uint64_t)-1;
        rate_word seen = swap(record, w, pack(s));
        if (seen == w)
            return;
        w = seen;
    }
}

struct rate_table *rate_table_create(const struct rate_limit_policy *p, struct err *err)
{
    size_t size = rate_table_size(p);
    struct rate_table *t = mmap(NULL, size, PROT_READ | PROT_WRITE,
                                MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (t == MAP_FAILED) {
        err_set_errno(err, errno, "rate limit '%s': mmap(%zu)", p->name, size);
        return NULL;
    }
    if (getrandom(t->secret, sizeof t->secret, 0) != (ssize_t)sizeof t->secret) {
        err_set_errno(err, errno, "rate limit '%s': getrandom", p->name);
        munmap(t, size);
        return NULL;
    }
    t->algorithm = p->algorithm;
    t->segments = p->algorithm == RATE_LIMIT_SLIDING_WINDOW ? (uint32_t)p->segments : 1;
    t->limit = p->limit;
    t->period_ms = p->period_ms / t->segments;
    t->tokens_per_period = p->tokens_per_period;
    t->set_count = sets_for(p);
    t->size = size;
    t->locks_offset = round16(sizeof *t);
    t->records_offset = t->locks_offset + round16(t->set_count * sizeof(int32_t));
    t->history_offset = t->records_offset + record_count(t->set_count) * sizeof(rate_word);
    *overflow_record(t) = pack((struct rate_state){OVERFLOW_TAG, 0, 0});
    return t;
}

void rate_table_destroy(struct rate_table *t)
{
    if (t != NULL)
        munmap(t, t->size);
}

void rate_table_set_entry(struct rate_table *t, unsigned entry)
{
    atomic_store_explicit(&t->entry, entry, memory_order_relaxed);
}

unsigned rate_table_entry(const struct rate_table *t)
{
    return atomic_load_explicit(&t->entry, memory_order_relaxed);
}
