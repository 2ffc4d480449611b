/*
 * file_cache.c - response files kept open across requests; see
 * file_cache.h.
 *
 * Entries come from one array allocated by file_cache_configure (32 per
 * turn, `max` across turns). A turn keeps a handful of files, searched in
 * order; across turns they are found through a hash table keyed with
 * SipHash, since paths come from the network (hashing costs more than a
 * static response's whole search within a turn). Two lists order them, most
 * recent first: every entry (eviction, the sweep) and those whose ref has
 * its bytes read (the contents budget). Refs come from a free list, so a
 * static response allocates nothing in steady state.
 */
#include "worker/file_cache.h"

#include <errno.h>
#include <event2/event.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/siphash.h"
#include "common/spare.h"
#include "worker/path.h"

#define FILE_CACHE_PER_TURN 32
#define FILE_CACHE_PATH_MAX 256
/* Contents buffers are all of one size, the largest small file and a byte,
 * and a few are kept spare: otherwise every turn that serves a small file
 * costs a malloc and a free of up to 16 KiB. */
#define FILE_CACHE_CONTENTS_SIZE (FILE_CACHE_SMALL_FILE + 1)
#define FILE_CACHE_CONTENTS_KEPT 4
/* How far from the old end of the contents list a budget-full read looks
 * for bytes no response holds. */
#define FILE_CACHE_CONTENTS_RECLAIM_TRIES 4

struct link {
    struct link *prev, *next;
};

struct file_entry {
    struct link recent;   /* every entry, most recent first */
    struct link read;     /* in cache.read iff ref->contents counts */
    struct file_entry *hash_next; /* also the free list */
    size_t bucket;        /* across turns: its chain in cache.buckets */
    struct file_ref *ref; /* the cache's hold */
    uint64_t checked_ms;  /* across turns: the last look at the disk */
    uint64_t used_ms;     /* across turns: the last open answered */
    int root_fd;
    int flags;
    size_t path_len;
    char path[FILE_CACHE_PATH_MAX];
};

#define ENTRY_OF(l, member) \
    ((struct file_entry *)((char *)(l) - offsetof(struct file_entry, member)))

static struct {
    struct event *end_of_turn; /* NULL: caching off */
    struct file_entry *entries, *free_entries;
    struct file_entry **buckets; /* across turns only */
    size_t capacity, count, bucket_mask;
    uint64_t valid_ms; /* 0: per turn */
    struct link recent, read;
    size_t read_count;
    uint64_t key[2];
    struct file_cache_counts counts;
} cache = {.recent = {&cache.recent, &cache.recent}, .read = {&cache.read, &cache.read}};

static struct spare_list spare_refs = {.keep = SPARE_LIST_MAX};
static struct spare_list spare_contents = {.keep = FILE_CACHE_CONTENTS_KEPT};

static void link_remove(struct link *l)
{
    l->prev->next = l->next;
    l->next->prev = l->prev;
    l->prev = l->next = l;
}

static void link_push_front(struct link *head, struct link *l)
{
    l->next = head->next;
    l->prev = head;
    head->next->prev = l;
    head->next = l;
}

static bool link_linked(const struct link *l)
{
    return l->next != l;
}

void file_ref_release(void *arg)
{
    struct file_ref *f = arg;
    if (f == NULL || --f->holds > 0)
        return;
    close(f->fd);
    spare_give(&spare_contents, f->contents, true);
    spare_give(&spare_refs, f, true);
}

/* ---- entries ---------------------------------------------------------- */

/* The chain of rel across turns; 0 (unused) within a turn. */
static size_t bucket_of(const char *rel, size_t len)
{
    if (cache.buckets == NULL)
        return 0;
    return (size_t)siphash24(cache.key, rel, len) & cache.bucket_mask;
}

static bool entry_is(const struct file_entry *e, int root_fd, const char *rel, size_t len,
                     int flags)
{
    return e->root_fd == root_fd && e->flags == flags && e->path_len == len &&
           memcmp(e->path, rel, len) == 0;
}

static struct file_entry *find(int root_fd, const char *rel, size_t len, int flags,
                               size_t bucket)
{
    if (cache.buckets != NULL) {
        for (struct file_entry *e = cache.buckets[bucket]; e != NULL; e = e->hash_next)
            if (entry_is(e, root_fd, rel, len, flags))
                return e;
        return NULL;
    }
    for (struct link *l = cache.recent.next; l != &cache.recent; l = l->next)
        if (entry_is(ENTRY_OF(l, recent), root_fd, rel, len, flags))
            return ENTRY_OF(l, recent);
    return NULL;
}

/* The entry no longer answers for its ref: the bytes it read stop
 * counting against the budget, and the cache's hold goes. */
static void entry_let_go(struct file_entry *e)
{
    if (link_linked(&e->read)) {
        link_remove(&e->read);
        cache.read_count--;
    }
    e->ref->entry = NULL;
    file_ref_release(e->ref);
    e->ref = NULL;
}

static void entry_drop(struct file_entry *e)
{
    if (cache.buckets != NULL) {
        struct file_entry **p = &cache.buckets[e->bucket];
        while (*p != e)
            p = &(*p)->hash_next;
        *p = e->hash_next;
    }
    link_remove(&e->recent);
    entry_let_go(e);
    e->hash_next = cache.free_entries;
    cache.free_entries = e;
    cache.count--;
}

static void entry_evict(struct file_entry *e)
{
    cache.counts.evictions++;
    entry_drop(e);
}

void file_cache_flush(void)
{
    while (link_linked(&cache.recent))
        entry_drop(ENTRY_OF(cache.recent.next, recent));
}

/* Keeps a fresh open, evicting the least recently used entry when full. */
static void keep(int root_fd, const char *rel, size_t len, int flags, size_t bucket,
                 struct file_ref *ref)
{
    if (cache.end_of_turn == NULL || cache.capacity == 0 || len >= FILE_CACHE_PATH_MAX)
        return;
    if (cache.free_entries == NULL)
        entry_evict(ENTRY_OF(cache.recent.prev, recent));
    struct file_entry *e = cache.free_entries;
    cache.free_entries = e->hash_next;
    e->root_fd = root_fd;
    e->flags = flags;
    e->ref = ref;
    e->checked_ms = e->used_ms = clock_monotonic_ms();
    e->read.prev = e->read.next = &e->read;
    e->path_len = len;
    memcpy(e->path, rel, len + 1);
    if (cache.buckets != NULL) {
        e->bucket = bucket;
        e->hash_next = cache.buckets[bucket];
        cache.buckets[bucket] = e;
    }
    link_push_front(&cache.recent, &e->recent);
    ref->holds++;
    ref->entry = e;
    if (++cache.count == 1 && cache.valid_ms == 0)
        event_active(cache.end_of_turn, 0, 0); /* runs after the callbacks already queued */
}

/* ---- opening ---------------------------------------------------------- */

static int open_ref(int root_fd, const char *rel, int flags, struct file_ref **out)
{
    struct file_ref *f = spare_take(&spare_refs, sizeof *f);
    if (f == NULL)
        return -ENOMEM;
    memset(f, 0, sizeof *f);
    f->fd = path_open_beneath(root_fd, rel, flags);
    if (f->fd < 0 || fstat(f->fd, &f->st) != 0) {
        int e = f->fd < 0 ? -f->fd : errno;
        if (f->fd >= 0)
            close(f->fd);
        spare_give(&spare_refs, f, true);
        return -e;
    }
    f->holds = 1;
    *out = f;
    return 0;
}

/* Whether a and b stat the same, unchanged file. */
static bool same_file(const struct stat *a, const struct stat *b)
{
    return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
           a->st_mode == b->st_mode && a->st_mtim.tv_sec == b->st_mtim.tv_sec &&
           a->st_mtim.tv_nsec == b->st_mtim.tv_nsec && a->st_ctim.tv_sec == b->st_ctim.tv_sec &&
           a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

/* Looks at the disk again through a fresh open beneath the root: the
 * entry stays (unchanged file), takes the fresh ref (a changed one, a
 * miss), or goes (an open that fails now). 0, or -errno with e gone. */
static int revalidate(struct file_entry *e)
{
    cache.counts.revalidations++;
    struct file_ref *fresh;
    int rc = open_ref(e->root_fd, e->path, e->flags, &fresh);
    if (rc < 0) {
        cache.counts.misses++;
        entry_drop(e);
        return rc;
    }
    e->checked_ms = clock_monotonic_ms();
    if (same_file(&fresh->st, &e->ref->st)) {
        file_ref_release(fresh);
        cache.counts.hits++;
        return 0;
    }
    cache.counts.misses++;
    entry_let_go(e);
    e->ref = fresh; /* its one hold is the cache's now */
    fresh->entry = e;
    return 0;
}

int file_cache_open(int root_fd, const char *rel, int flags, struct file_ref **out)
{
    size_t len = strlen(rel), bucket = bucket_of(rel, len);
    struct file_entry *e = cache.count > 0 ? find(root_fd, rel, len, flags, bucket) : NULL;
    if (e != NULL) {
        uint64_t now = clock_monotonic_ms();
        if (cache.valid_ms == 0 || now - e->checked_ms < cache.valid_ms) {
            cache.counts.hits++;
        } else {
            int rc = revalidate(e);
            if (rc < 0)
                return rc;
        }
        e->used_ms = now;
        link_remove(&e->recent);
        link_push_front(&cache.recent, &e->recent);
        if (link_linked(&e->read)) {
            link_remove(&e->read);
            link_push_front(&cache.read, &e->read);
        }
        e->ref->holds++;
        *out = e->ref;
        return 0;
    }
    cache.counts.misses++;
    int rc = open_ref(root_fd, rel, flags, out);
    if (rc == 0)
        keep(root_fd, rel, len, flags, bucket, *out);
    return rc;
}

/* ---- lifetime --------------------------------------------------------- */

static void on_end_of_turn(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what, (void)arg;
    if (cache.valid_ms == 0)
        file_cache_flush();
}

void file_cache_sweep(void)
{
    uint64_t now = clock_monotonic_ms();
    while (cache.valid_ms > 0 && link_linked(&cache.recent)) {
        struct file_entry *oldest = ENTRY_OF(cache.recent.prev, recent);
        if (now - oldest->used_ms < cache.valid_ms)
            break;
        entry_evict(oldest);
    }
}

static void release_table(void)
{
    file_cache_flush();
    free(cache.entries);
    free(cache.buckets);
    cache.entries = cache.free_entries = NULL;
    cache.buckets = NULL;
    cache.capacity = cache.bucket_mask = 0;
}

/* An entry array of capacity and, across turns, twice as many buckets (a
 * power of two). */
static int allocate_table(size_t capacity, bool hashed)
{
    size_t buckets = 1;
    while (buckets < capacity * 2)
        buckets <<= 1;
    cache.entries = calloc(capacity, sizeof *cache.entries);
    cache.buckets = hashed ? calloc(buckets, sizeof *cache.buckets) : NULL;
    if (cache.entries == NULL || (hashed && cache.buckets == NULL)) {
        release_table();
        return -1;
    }
    for (size_t i = capacity; i-- > 0;) {
        cache.entries[i].hash_next = cache.free_entries;
        cache.free_entries = &cache.entries[i];
    }
    cache.capacity = capacity;
    cache.bucket_mask = buckets - 1;
    return 0;
}

/* A quarter of the descriptor limit: the rest is the connections'. */
static size_t descriptor_share(void)
{
    struct rlimit limit;
    if (getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur == RLIM_INFINITY)
        return SIZE_MAX;
    return (size_t)(limit.rlim_cur / 4);
}

size_t file_cache_configure(size_t max, uint64_t valid_ms)
{
    release_table();
    size_t share = descriptor_share();
    if (max > share)
        max = share;
    cache.valid_ms = max > 0 ? (valid_ms > 0 ? valid_ms : 1) : 0;
    if (allocate_table(max > 0 ? max : FILE_CACHE_PER_TURN, max > 0) != 0) {
        cache.valid_ms = 0;
        return 0;
    }
    return max;
}

int file_cache_start(struct event_base *base)
{
    file_cache_stop();
    if (getrandom(cache.key, sizeof cache.key, GRND_NONBLOCK) != (ssize_t)sizeof cache.key)
        cache.key[0] = (uint64_t)getpid(), cache.key[1] = clock_now_monotonic_us();
    cache.end_of_turn = event_new(base, -1, EV_PERSIST, on_end_of_turn, NULL); /* as turn.c's */
    if (cache.end_of_turn == NULL)
        return -1;
    file_cache_configure(0, 0);
    return cache.capacity > 0 ? 0 : -1;
}

void file_cache_stop(void)
{
    release_table();
    cache.valid_ms = 0;
    if (cache.end_of_turn != NULL)
        event_free(cache.end_of_turn);
    cache.end_of_turn = NULL;
    while (spare_refs.count > 0)
        free(spare_take(&spare_refs, 0));
    while (spare_contents.count > 0)
        free(spare_take(&spare_contents, 0));
}

void file_cache_counts(struct file_cache_counts *out)
{
    *out = cache.counts;
}

/* ---- small files' bytes ------------------------------------------------ */

/* Room in the budget for one more entry's bytes: the oldest bytes no
 * response holds are given back if need be. */
static bool contents_room(void)
{
    struct link *l = cache.read.prev;
    for (int i = 0; cache.read_count >= FILE_CACHE_CONTENTS_MAX &&
                    i < FILE_CACHE_CONTENTS_RECLAIM_TRIES && l != &cache.read;
         i++) {
        struct link *prev = l->prev;
        struct file_ref *ref = ENTRY_OF(l, read)->ref;
        if (ref->holds == 1) {
            spare_give(&spare_contents, ref->contents, true);
            ref->contents = NULL;
            ref->contents_tried = false;
            link_remove(l);
            cache.read_count--;
        }
        l = prev;
    }
    return cache.read_count < FILE_CACHE_CONTENTS_MAX;
}

const char *file_ref_contents(struct file_ref *f)
{
    if (f->contents != NULL || f->contents_tried)
        return f->contents;
    if (!S_ISREG(f->st.st_mode) || f->st.st_size > FILE_CACHE_SMALL_FILE) {
        f->contents_tried = true;
        return NULL;
    }
    if (f->entry != NULL && !contents_room())
        return NULL; /* asked again next time: bytes may be free by then */
    f->contents_tried = true;
    size_t size = (size_t)f->st.st_size;
    char *contents = spare_take(&spare_contents, FILE_CACHE_CONTENTS_SIZE);
    if (contents == NULL)
        return NULL;
    /* One byte more than the stat said: a file that grew since is read
     * from the descriptor, where the response's length still rules. */
    ssize_t n = pread(f->fd, contents, size + 1, 0);
    if (n != (ssize_t)size) {
        spare_give(&spare_contents, contents, true);
        return NULL;
    }
    f->contents = contents;
    if (f->entry != NULL) {
        link_push_front(&cache.read, &f->entry->read);
        cache.read_count++;
    }
    return contents;
}
