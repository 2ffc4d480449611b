/*
 * shm.c - the shared-memory segment: create, attach, slots, snapshots.
 *
 * Contract (see shm.h and shm_layout.h):
 *  - shm_create() replaces any file at the path with a fresh, zeroed
 *    segment owned by the calling master, never writing through what was
 *    there; shm_attach() reads an existing one into private memory (and
 *    shm_refresh() again) and refuses a file someone else could have
 *    written, and anything whose magic, layout version or sizes it does
 *    not know, with a message that names the path.
 *  - Slot counters have one writer each (their worker). The master alone
 *    claims and retires slots and writes the header's strings, each under
 *    its seqlock, so readers (sakerctl, a metrics endpoint) never lock.
 *  - Snapshots retry a bounded number of times and then report SK_AGAIN:
 *    a master that died in the middle of a write must not hang sakerctl.
 */
#ifdef HAVE_CONFIG_H
#include "build_config.h"
#endif
#include "shm/shm.h"

#include <assert.h>
#include <limits.h>
#include <stdlib.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "unknown"
#endif

#define SNAPSHOT_RETRIES 1000
#define REFRESH_COPIES 16 /* whole-file reads a refresh tries for a steady one */
#define SEQ_LOCK_SPINS 100000
#define SHM_MAX_SLOTS 65536

/* Slots follow the header directly, so the header must keep them aligned. */
static_assert(sizeof(struct shm_header) % SHM_CACHE_LINE == 0, "header keeps slots aligned");
static_assert(sizeof(struct shm_slot) % SHM_CACHE_LINE == 0, "slots fill cache lines");
static_assert(sizeof(struct shm_route_stats) % SHM_CACHE_LINE == 0, "routes fill cache lines");
static_assert(sizeof(struct shm_conn_list) % SHM_CACHE_LINE == 0, "lists fill cache lines");

/* ---- create, attach, detach ------------------------------------------ */

static void header_init(struct shm_header *h, unsigned slot_count, size_t total)
{
    h->magic = SHM_MAGIC;
    h->layout_version = SHM_LAYOUT_VERSION;
    h->header_size = sizeof(struct shm_header);
    h->slot_size = sizeof(struct shm_slot);
    h->slot_count = slot_count;
    h->total_size = total;
    /* The master creates the segment after its config loaded: that first
     * load counts as a successful "last reload" until a real one happens. */
    h->reload_ok = 1;
    atomic_store_explicit(&h->state, SHM_INSTANCE_STARTING, memory_order_relaxed);
    snprintf(h->routes[SHM_ROUTE_UNROUTED].label, SHM_ROUTE_LABEL_MAX, "_unrouted");
    snprintf(h->routes[SHM_ROUTE_OTHER].label, SHM_ROUTE_LABEL_MAX, "_other");
}

size_t shm_segment_size(unsigned slot_count)
{
    return sizeof(struct shm_header) + (size_t)slot_count * sizeof(struct shm_slot) +
           (size_t)(slot_count + 1) * SHM_MAX_ROUTES * sizeof(struct shm_route_stats) +
           (size_t)slot_count * sizeof(struct shm_conn_list);
}

static void map_set(struct shm *shm, void *base, size_t size, unsigned slot_count)
{
    char *p = base;
    shm->header = base;
    shm->slots = (struct shm_slot *)(p += sizeof(struct shm_header));
    shm->slot_count = slot_count;
    shm->routes = (struct shm_route_stats *)(p += (size_t)slot_count * sizeof(struct shm_slot));
    shm->conns = (struct shm_conn_list *)(p + (size_t)(slot_count + 1) * SHM_MAX_ROUTES *
                                                  sizeof(struct shm_route_stats));
    shm->size = size;
}

static void map_identity(struct shm *shm, const struct stat *st)
{
    shm->dev = (uint64_t)st->st_dev;
    shm->ino = (uint64_t)st->st_ino;
}

/* Sizes and maps the new file, and fills its header, before anyone can
 * see it under its real name. */
static int create_fill(struct shm *shm, int fd, const char *name, unsigned slot_count,
                       size_t total, struct err *err)
{
    struct stat st;
    /* The umask must not take the group's read access away from operators. */
    if (fchmod(fd, 0640) < 0 || ftruncate(fd, (off_t)total) < 0 || fstat(fd, &st) < 0)
        return err_set_errno(err, errno, "ftruncate(%s, %zu)", name, total);
    void *base = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (base == MAP_FAILED)
        return err_set_errno(err, errno, "mmap(%s, %zu)", name, total);
    /* ftruncate zero-filled the file: counters, pids and states start at 0;
     * pages nobody writes (most of the connection lists) stay unallocated. */
    map_set(shm, base, total, slot_count);
    map_identity(shm, &st);
    header_init(shm->header, slot_count, total);
    shm_master_publish(shm);
    for (unsigned i = 0; i < slot_count; i++)
        atomic_store_explicit(&shm->slots[i].cpu, -1, memory_order_relaxed);
    return SK_OK;
}

int shm_create(struct shm *shm, const char *path, unsigned slot_count, struct err *err)
{
    memset(shm, 0, sizeof *shm);
    if (slot_count < SHM_MIN_SLOTS)
        slot_count = SHM_MIN_SLOTS;
    if (slot_count > SHM_MAX_SLOTS)
        return err_set(err, "%s: %u slots, at most %u", path, slot_count, SHM_MAX_SLOTS);
    size_t total = shm_segment_size(slot_count);

    char name[PATH_MAX];
    if (snprintf(name, sizeof name, "%s.XXXXXX", path) >= (int)sizeof name)
        return err_set(err, "%s: path too long", path);
    /* mkostemp is O_CREAT|O_EXCL: a symlink at the name fails it rather
     * than being followed, and the random name cannot be planted first. */
    int fd = mkostemp(name, O_CLOEXEC);
    if (fd < 0)
        return err_set_errno(err, errno, "creating %s", name);
    int rc = create_fill(shm, fd, name, slot_count, total, err);
    /* rename replaces what is at path (a stale segment, a planted
     * symlink) and never follows it. */
    if (rc == SK_OK && rename(name, path) != 0) {
        rc = err_set_errno(err, errno, "rename(%s, %s)", name, path);
        shm_detach(shm);
    }
    if (rc != SK_OK)
        unlink(name);
    close(fd);
    return rc;
}

/* The prefix every layout version shares: enough to say what we found. */
struct header_prefix {
    uint64_t magic;
    uint32_t layout_version;
    uint32_t header_size;
};

static int check_prefix(int fd, const char *path, off_t file_size, struct err *err)
{
    struct header_prefix p;
    if (file_size < (off_t)sizeof p)
        return err_set(err, "%s: not a saker shm segment (%lld bytes)", path,
                       (long long)file_size);
    if (pread(fd, &p, sizeof p, 0) != (ssize_t)sizeof p)
        return err_set_errno(err, errno, "%s: read", path);
    if (p.magic != SHM_MAGIC)
        return err_set(err, "%s: not a saker shm segment", path);
    if (p.layout_version != SHM_LAYOUT_VERSION)
        return err_set(err, "%s: layout version %u, this sakerctl reads version %d: "
                       "use the sakerctl of the running saker",
                       path, p.layout_version, SHM_LAYOUT_VERSION);
    if (file_size < (off_t)sizeof(struct shm_header))
        return err_set(err, "%s: truncated segment (%lld bytes, the header alone is %zu)",
                       path, (long long)file_size, sizeof(struct shm_header));
    return SK_OK;
}

/* The fields that say where everything is, at the start of the header:
 * all a check of the file needs to read. */
struct header_sizes {
    uint64_t magic;
    uint32_t layout_version;
    uint32_t header_size;
    uint32_t slot_size;
    uint32_t slot_count;
    uint64_t total_size;
};
static_assert(offsetof(struct header_sizes, total_size) ==
                  offsetof(struct shm_header, total_size),
              "header_sizes is the header's first fields");

static int check_sizes(const struct header_sizes *h, const char *path, off_t file_size,
                       struct err *err)
{
    if (h->header_size != sizeof(struct shm_header) || h->slot_size != sizeof(struct shm_slot))
        return err_set(err, "%s: header size %u and slot size %u, expected %zu and %zu "
                       "for layout version %d", path, h->header_size, h->slot_size,
                       sizeof(struct shm_header), sizeof(struct shm_slot), SHM_LAYOUT_VERSION);
    if (h->slot_count == 0 || h->slot_count > SHM_MAX_SLOTS ||
        h->total_size != shm_segment_size(h->slot_count))
        return err_set(err, "%s: inconsistent sizes (%u slots, total %llu bytes)", path,
                       h->slot_count, (unsigned long long)h->total_size);
    if ((uint64_t)file_size < h->total_size)
        return err_set(err, "%s: truncated segment (%lld bytes, expected %llu)", path,
                       (long long)file_size, (unsigned long long)h->total_size);
    return SK_OK;
}

/* The file on fd is a segment of this layout: its sizes in *h, its
 * identity in *st. */
static int check_file(int fd, const char *path, struct stat *st, struct header_sizes *h,
                      struct err *err)
{
    if (fstat(fd, st) < 0)
        return err_set_errno(err, errno, "fstat(%s)", path);
    if (check_prefix(fd, path, st->st_size, err) != SK_OK)
        return SK_ERROR;
    if (pread(fd, h, sizeof *h, 0) != (ssize_t)sizeof *h)
        return err_set_errno(err, errno, "%s: read", path);
    return check_sizes(h, path, st->st_size, err);
}

static int map_fd(struct shm *shm, int fd, const char *path, int prot, struct err *err)
{
    struct stat st;
    struct header_sizes h;
    if (check_file(fd, path, &st, &h, err) != SK_OK)
        return SK_ERROR;
    void *base = mmap(NULL, (size_t)h.total_size, prot, MAP_SHARED, fd, 0);
    if (base == MAP_FAILED)
        return err_set_errno(err, errno, "mmap(%s)", path);
    map_set(shm, base, (size_t)h.total_size, h.slot_count);
    map_identity(shm, &st);
    return SK_OK;
}

/* What every refresh reads (the header, the slots and the retired
 * routes, one run of pages) made present in one call: pread would fault
 * them in one at a time, which costs more than the copy itself. Older
 * kernels refuse the advice, and the faults happen as before. */
static void copy_populate(const struct shm *shm)
{
#ifdef MADV_POPULATE_WRITE
    size_t len = (size_t)((char *)(shm_routes_retired(shm) + SHM_MAX_ROUTES) -
                          (char *)shm->header);
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    (void)madvise(shm->header, (len + page - 1) / page * page, MADV_POPULATE_WRITE);
#else
    (void)shm;
#endif
}

/* A reader's private copy of the file on fd, which it keeps (shm_refresh). */
static int copy_fd(struct shm *shm, int fd, const char *path, struct err *err)
{
    struct stat st;
    struct header_sizes h;
    if (check_file(fd, path, &st, &h, err) != SK_OK)
        return SK_ERROR;
    /* Page-aligned, as the mapping was (the slots hold atomics), and zero
     * until read: a refresh reads only what readers look at (read_copy),
     * and pages it never touches cost nothing. */
    void *copy = mmap(NULL, (size_t)h.total_size, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (copy == MAP_FAILED)
        return err_set(err, "%s: out of memory for a %llu-byte segment", path,
                       (unsigned long long)h.total_size);
    map_set(shm, copy, (size_t)h.total_size, h.slot_count);
    map_identity(shm, &st);
    copy_populate(shm);
    shm->copy = true;
    shm->fd = fd;
    if (shm_refresh(shm, err) != SK_OK) {
        munmap(copy, (size_t)h.total_size);
        memset(shm, 0, sizeof *shm);
        /* The message names no path yet: shm_refresh has none to give. */
        struct err why = *err;
        return err_set(err, "%s: %s", path, why.message);
    }
    return SK_OK;
}

/* A segment names a process to signal: only one written by root or by
 * us, and by nobody else, is believed. */
static int check_trusted(int fd, const char *path, struct err *err)
{
    struct stat st;
    if (fstat(fd, &st) < 0)
        return err_set_errno(err, errno, "fstat(%s)", path);
    if (!S_ISREG(st.st_mode))
        return err_set(err, "%s: not a regular file: not a saker shm segment", path);
    if (st.st_uid != 0 && st.st_uid != geteuid())
        return err_set(err, "%s: owned by uid %u, neither root nor you: not trusted (run as "
                       "that user if it is its saker)", path, (unsigned)st.st_uid);
    if (st.st_mode & (S_IWGRP | S_IWOTH))
        return err_set(err, "%s: writable by others (mode %04o): not trusted", path,
                       (unsigned)(st.st_mode & 07777));
    return SK_OK;
}

static int open_trusted(const char *path, int flags, struct err *err)
{
    int fd = open(path, flags | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        if (e == ENOENT)
            err_set(err, "%s: No such file or directory (is saker running?)", path);
        else if (e == ELOOP)
            err_set(err, "%s: a symbolic link: not trusted as a saker shm segment", path);
        else
            err_set_errno(err, e, "%s", path);
        errno = e;
        return -1;
    }
    if (check_trusted(fd, path, err) != SK_OK) {
        close(fd);
        errno = EPERM;
        return -1;
    }
    return fd;
}

int shm_attach(struct shm *shm, const char *path, struct err *err)
{
    memset(shm, 0, sizeof *shm);
    int fd = open_trusted(path, O_RDONLY, err);
    if (fd < 0)
        return SK_ERROR;
    int rc = copy_fd(shm, fd, path, err);
    if (rc != SK_OK)
        close(fd);
    return rc;
}

int shm_adopt(struct shm *shm, int fd, const char *what, struct err *err)
{
    memset(shm, 0, sizeof *shm);
    if (check_trusted(fd, what, err) != SK_OK)
        return SK_ERROR;
    return map_fd(shm, fd, what, PROT_READ | PROT_WRITE, err);
}

int shm_reopen(const struct shm *shm, const char *path, struct err *err)
{
    int fd = open(path, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        err_set_errno(err, errno, "%s", path);
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || (uint64_t)st.st_dev != shm->dev ||
        (uint64_t)st.st_ino != shm->ino) {
        close(fd);
        err_set(err, "%s: no longer the segment this master created", path);
        return -1;
    }
    return fd;
}

int shm_request_upgrade(const char *path, const char *binary, struct err *err)
{
    size_t len = strlen(binary);
    if (binary[0] != '/' || len >= SHM_PATH_MAX)
        return err_set(err, "%s: the binary must be an absolute path shorter than %d bytes",
                       binary, SHM_PATH_MAX);
    int fd = open_trusted(path, O_WRONLY, err);
    if (fd < 0)
        return SK_ERROR;
    ssize_t n = pwrite(fd, binary, len + 1, offsetof(struct shm_header, upgrade_binary));
    int e = errno;
    close(fd);
    if (n != (ssize_t)(len + 1))
        return err_set_errno(err, n < 0 ? e : EIO, "%s: writing the upgrade request", path);
    return SK_OK;
}

void shm_detach(struct shm *shm)
{
    if (shm->copy) {
        munmap(shm->header, shm->size);
        close(shm->fd);
    } else if (shm->header != NULL) {
        munmap(shm->header, shm->size);
    }
    memset(shm, 0, sizeof *shm);
}

/* ---- the reader's copy ------------------------------------------------ */

/* len bytes at offset of the segment's file; a short read means the file
 * shrank (past that, a mapped reader would have taken SIGBUS). */
static int read_at(const struct shm *shm, void *to, size_t len, off_t offset, struct err *err)
{
    size_t done = 0;
    while (done < len) {
        ssize_t n = pread(shm->fd, (char *)to + done, len - done, offset + (off_t)done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return err_set_errno(err, errno, "read");
        if (n == 0) {
            struct stat st;
            long long size = fstat(shm->fd, &st) == 0 ? (long long)st.st_size : -1;
            return err_set(err, "truncated segment (%lld bytes, expected %zu)", size,
                           shm->size);
        }
        done += (size_t)n;
    }
    return SK_OK;
}

/* A region of the copy read again from the same place in the file. */
static int read_region(const struct shm *shm, void *region, size_t len, struct err *err)
{
    return read_at(shm, region, len, (off_t)((char *)region - (char *)shm->header), err);
}

/* What readers look at: the header and the slots, the retired routes,
 * and for each slot in use its routes and the used part of its
 * connection list. Readers skip free slots, so their regions are not
 * read: a segment of 64 slots with two workers is a few hundred KB to
 * read, not its 5 MB. The slot count is the one attach found (the copy's
 * header may say otherwise until check_copy refuses it). */
static int read_copy(struct shm *shm, struct err *err)
{
    unsigned slots = shm->slot_count;
    if (read_at(shm, shm->header, (size_t)((char *)shm->routes - (char *)shm->header), 0,
                err) != SK_OK ||
        read_region(shm, shm_routes_retired(shm), SHM_MAX_ROUTES * sizeof(struct shm_route_stats),
                    err) != SK_OK)
        return SK_ERROR;
    for (unsigned i = 0; i < slots; i++) {
        if (atomic_load_explicit(&shm->slots[i].state, memory_order_relaxed) == SHM_WORKER_FREE)
            continue;
        struct shm_conn_list *list = shm_conns_of(shm, i);
        if (read_region(shm, shm_routes_of(shm, i),
                        SHM_MAX_ROUTES * sizeof(struct shm_route_stats), err) != SK_OK ||
            read_region(shm, list, offsetof(struct shm_conn_list, entries), err) != SK_OK)
            return SK_ERROR;
        unsigned used = atomic_load_explicit(&list->used, memory_order_relaxed);
        if (used > SHM_CONNS_PER_SLOT)
            used = SHM_CONNS_PER_SLOT;
        if (used > 0 && read_region(shm, list->entries, used * sizeof list->entries[0], err) != SK_OK)
            return SK_ERROR;
    }
    return SK_OK;
}

/* Both sequences, read from the file: the copy's own may be torn. */
static int read_sequences(const struct shm *shm, uint64_t seq[2], struct err *err)
{
    if (read_at(shm, &seq[0], sizeof seq[0], offsetof(struct shm_header, header_seq), err) !=
        SK_OK)
        return SK_ERROR;
    return read_at(shm, &seq[1], sizeof seq[1], offsetof(struct shm_header, retired_seq), err);
}

/* What attach checked must still hold: sizes decide where every slot is. */
static int check_copy(const struct shm *shm, struct err *err)
{
    const struct shm_header *h = shm->header;
    if (h->magic != SHM_MAGIC || h->layout_version != SHM_LAYOUT_VERSION ||
        h->header_size != sizeof(struct shm_header) || h->slot_size != sizeof(struct shm_slot) ||
        h->total_size != shm->size || h->slot_count > SHM_MAX_SLOTS ||
        shm_segment_size(h->slot_count) != shm->size)
        return err_set(err, "the segment changed its layout or sizes since it was opened");
    return SK_OK;
}

/* Both sequences even, as a reader waits for them (SK_AGAIN: a master
 * stuck mid-write; seq holds what was read last). */
static int read_even_sequences(const struct shm *shm, uint64_t seq[2], struct err *err)
{
    for (int attempt = 0; attempt < SNAPSHOT_RETRIES; attempt++) {
        if (read_sequences(shm, seq, err) != SK_OK)
            return SK_ERROR;
        if ((seq[0] & 1) == 0 && (seq[1] & 1) == 0)
            return SK_OK;
        sched_yield();
    }
    return SK_AGAIN;
}

int shm_refresh(struct shm *shm, struct err *err)
{
    if (!shm->copy)
        return SK_OK;
    for (int copies = 0; copies < REFRESH_COPIES; copies++) {
        uint64_t before[2], after[2];
        int even = read_even_sequences(shm, before, err);
        if (even == SK_ERROR || read_copy(shm, err) != SK_OK ||
            read_sequences(shm, after, err) != SK_OK)
            return SK_ERROR;
        /* Unchanged around the copy: neither the header strings nor the
         * retired totals were written while it was taken. A stuck writer
         * leaves its odd sequence in the copy, for the snapshots to see. */
        if (even == SK_AGAIN || (before[0] == after[0] && before[1] == after[1]))
            break;
    }
    return check_copy(shm, err);
}

/* ---- slots (master side) --------------------------------------------- */

bool shm_worker_state_live(unsigned state)
{
    return state == SHM_WORKER_STARTING || state == SHM_WORKER_RUNNING ||
           state == SHM_WORKER_DRAINING;
}

void shm_slot_claim(struct shm *shm, unsigned slot, int pid, int cpu,
                    uint64_t generation, unsigned index)
{
    struct shm_slot *s = &shm->slots[slot];
    atomic_store_explicit(&s->cpu, cpu, memory_order_relaxed);
    atomic_store_explicit(&s->index, index, memory_order_relaxed);
    atomic_store_explicit(&s->generation, generation, memory_order_relaxed);
    atomic_store_explicit(&s->started_at, (int64_t)time(NULL), memory_order_relaxed);
    /* A fresh heartbeat, or the watchdog would judge the new worker by the
     * age of a slot that was free. */
    atomic_store_explicit(&s->heartbeat_ms, clock_now_monotonic_ms(), memory_order_relaxed);
    /* The worker may already have said RUNNING if it beat us here after
     * fork; only a free slot becomes STARTING. */
    unsigned expected = SHM_WORKER_FREE;
    atomic_compare_exchange_strong_explicit(&s->state, &expected, SHM_WORKER_STARTING,
                                            memory_order_relaxed, memory_order_relaxed);
    atomic_store_explicit(&s->pid, pid, memory_order_release);
}

/* The odd value is also a lock between writers: during a binary upgrade
 * the old master retires its draining workers' slots while the new one
 * retires its own. Bounded, so that a master killed mid-write cannot
 * freeze the other: after that the odd value is taken over as it is. */
static void seq_begin(_Atomic uint64_t *seq)
{
    for (int spin = 0; spin < SEQ_LOCK_SPINS; spin++) {
        uint64_t v = atomic_load_explicit(seq, memory_order_relaxed);
        if ((v & 1) == 0 && atomic_compare_exchange_weak_explicit(
                                seq, &v, v + 1, memory_order_relaxed, memory_order_relaxed))
            goto locked;
        sched_yield();
    }
    uint64_t v = atomic_load_explicit(seq, memory_order_relaxed);
    if ((v & 1) == 0)
        atomic_store_explicit(seq, v + 1, memory_order_relaxed);
locked:
    /* Orders the odd value before every data store that follows. */
    atomic_thread_fence(memory_order_release);
}

static void seq_end(_Atomic uint64_t *seq)
{
    uint64_t v = atomic_load_explicit(seq, memory_order_relaxed);
    atomic_store_explicit(seq, v + 1, memory_order_release);
}

/* ---- permit pools ----------------------------------------------------- */

bool shm_permit_take(struct shm *shm, struct shm_slot *slot, enum shm_pool_kind kind,
                     unsigned pool, uint64_t limit)
{
    if (limit == 0 || shm == NULL || pool >= SHM_POOLS)
        return true;
    struct shm_pool *p = &shm->header->pools[kind][pool];
    uint64_t used = atomic_load_explicit(&p->used, memory_order_relaxed);
    do {
        if (used >= limit)
            return false;
    } while (!atomic_compare_exchange_weak_explicit(&p->used, &used, used + 1,
                                                    memory_order_relaxed, memory_order_relaxed));
    if (atomic_load_explicit(&p->limit, memory_order_relaxed) != limit)
        atomic_store_explicit(&p->limit, limit, memory_order_relaxed);
    if (slot != NULL)
        shm_slot_gauge_add(&slot->permits_held[kind][pool], 1);
    return true;
}

void shm_permit_give(struct shm *shm, struct shm_slot *slot, enum shm_pool_kind kind,
                     unsigned pool)
{
    if (shm == NULL || pool >= SHM_POOLS)
        return;
    if (slot != NULL)
        shm_slot_gauge_add(&slot->permits_held[kind][pool], -1);
    atomic_fetch_sub_explicit(&shm->header->pools[kind][pool].used, 1, memory_order_relaxed);
}

uint64_t shm_permits_used(const struct shm *shm, enum shm_pool_kind kind, unsigned pool)
{
    return atomic_load_explicit(&shm->header->pools[kind][pool].used, memory_order_relaxed);
}

void shm_pool_publish_limit(struct shm *shm, enum shm_pool_kind kind, unsigned pool,
                            uint64_t limit)
{
    if (pool < SHM_POOLS)
        atomic_store_explicit(&shm->header->pools[kind][pool].limit, limit,
                              memory_order_relaxed);
}

/* The name of the i-th endpoint: listeners are published endpoint by
 * endpoint, one or two (localhost, "*") per endpoint. */
static const char *endpoint_name(const struct shm_header *h, unsigned index)
{
    unsigned seen = 0;
    for (uint32_t i = 0; i < h->listener_count && i < SHM_MAX_LISTENERS; i++) {
        if (i > 0 && strcmp(h->listeners[i].endpoint, h->listeners[i - 1].endpoint) == 0)
            continue;
        if (seen++ == index)
            return h->listeners[i].endpoint;
    }
    return "?";
}

size_t shm_pools_in_force(const struct shm_header *h, struct shm_pool_view *out, size_t max)
{
    static const char *const names[SHM_POOL_KINDS] = {"max_concurrent_connections",
                                                      "max_concurrent_upgraded_connections"};
    size_t n = 0;
    for (int kind = 0; kind < SHM_POOL_KINDS; kind++)
        for (unsigned pool = 0; pool < SHM_POOLS && n < max; pool++) {
            const struct shm_pool *p = &h->pools[kind][pool];
            uint64_t limit = atomic_load_explicit(&p->limit, memory_order_relaxed);
            if (limit == 0)
                continue;
            out[n++] = (struct shm_pool_view){
                names[kind], pool == SHM_POOL_GLOBAL ? NULL : endpoint_name(h, pool - 1), limit,
                atomic_load_explicit(&p->used, memory_order_relaxed)};
        }
    return n;
}

/* A dead worker's permits go back to their pools (nginx leaks them). Other
 * workers take and give concurrently, hence the atomic subtract; the clamp
 * only guards against a pool the caller reset under us. */
static void shm_slot_return_permits(struct shm *shm, struct shm_slot *s)
{
    for (int kind = 0; kind < SHM_POOL_KINDS; kind++)
        for (unsigned pool = 0; pool < SHM_POOLS; pool++) {
            uint64_t held = atomic_exchange_explicit(&s->permits_held[kind][pool], 0,
                                                     memory_order_relaxed);
            if (held == 0)
                continue;
            _Atomic uint64_t *used = &shm->header->pools[kind][pool].used;
            uint64_t v = atomic_load_explicit(used, memory_order_relaxed);
            while (!atomic_compare_exchange_weak_explicit(
                used, &v, v > held ? v - held : 0, memory_order_relaxed, memory_order_relaxed))
                ;
        }
}

/* Moves a counter of a dead worker into a total (the one writer is gone). */
static void fold(_Atomic uint64_t *total, _Atomic uint64_t *counter)
{
    uint64_t v = atomic_load_explicit(counter, memory_order_relaxed);
    if (v == 0)
        return;
    uint64_t t = atomic_load_explicit(total, memory_order_relaxed);
    atomic_store_explicit(total, t + v, memory_order_relaxed);
    atomic_store_explicit(counter, 0, memory_order_relaxed);
}

static void fold_route(struct shm_route_stats *total, struct shm_route_stats *from)
{
    for (int b = 0; b < SHM_DURATION_BUCKETS; b++)
        fold(&total->buckets[b], &from->buckets[b]);
    fold(&total->duration_us, &from->duration_us);
    for (int c = 0; c < 5; c++)
        fold(&total->responses[c], &from->responses[c]);
}

static void shm_slot_fold(struct shm *shm, unsigned slot)
{
    struct shm_header *h = shm->header;
    struct shm_slot *s = &shm->slots[slot];
    for (int c = 0; c < SHM_COUNTER_COUNT; c++)
        fold(&h->retired[c], &s->counters[c]);
    for (int r = 0; r < SHM_MAX_RATE_LIMITS; r++)
        for (int k = 0; k < SHM_RATE_COUNTERS; k++)
            fold(&h->rate_retired[r][k], &s->rate[r][k]);
    for (int c = 0; c < SHM_MODULE_COUNTERS; c++)
        fold(&h->retired_module[c], &s->module_counters[c]);
    struct shm_route_stats *routes = shm_routes_of(shm, slot);
    for (int e = 0; e < SHM_MAX_ROUTES; e++)
        fold_route(&shm_routes_retired(shm)[e], &routes[e]);
}

/* The list dies with its worker; entries past `used` are never read, so
 * the next worker of the slot starts from an empty one. */
static void shm_slot_forget_conns(struct shm *shm, unsigned slot)
{
    struct shm_conn_list *l = shm_conns_of(shm, slot);
    atomic_store_explicit(&l->enabled, 0, memory_order_relaxed);
    atomic_store_explicit(&l->used, 0, memory_order_relaxed);
    atomic_store_explicit(&l->listed, 0, memory_order_relaxed);
    atomic_store_explicit(&l->unlisted, 0, memory_order_relaxed);
}

void shm_slot_retire(struct shm *shm, unsigned slot)
{
    struct shm_header *h = shm->header;
    struct shm_slot *s = &shm->slots[slot];
    seq_begin(&h->retired_seq);
    shm_slot_fold(shm, slot);
    shm_slot_return_permits(shm, s);
    shm_slot_forget_conns(shm, slot);
    /* A killed worker's open connections died with it: drop the gauge. */
    atomic_store_explicit(&s->connections_open, 0, memory_order_relaxed);
    atomic_store_explicit(&s->compression_memory, 0, memory_order_relaxed);
    atomic_store_explicit(&s->heartbeat_ms, 0, memory_order_relaxed);
    atomic_store_explicit(&s->cpu, -1, memory_order_relaxed);
    atomic_store_explicit(&s->pid, 0, memory_order_relaxed);
    atomic_store_explicit(&s->state, SHM_WORKER_FREE, memory_order_relaxed);
    seq_end(&h->retired_seq);
}

int shm_module_counter_index(struct shm *shm, const char *module, const char *name,
                             bool add)
{
    struct shm_header *h = shm->header;
    for (uint32_t i = 0; i < h->module_counter_count && i < SHM_MODULE_COUNTERS; i++)
        if (strcmp(h->module_counters[i].module, module) == 0 &&
            strcmp(h->module_counters[i].name, name) == 0)
            return (int)i;
    if (!add || h->module_counter_count >= SHM_MODULE_COUNTERS ||
        strlen(module) >= SHM_MODULE_NAME_MAX || strlen(name) >= SHM_MODULE_NAME_MAX)
        return -1;
    seq_begin(&h->header_seq);
    struct shm_module_counter *c = &h->module_counters[h->module_counter_count];
    snprintf(c->module, sizeof c->module, "%s", module);
    snprintf(c->name, sizeof c->name, "%s", name);
    h->module_counter_count++;
    seq_end(&h->header_seq);
    return (int)h->module_counter_count - 1;
}

int shm_slot_find_free(const struct shm *shm)
{
    for (unsigned i = 0; i < shm->header->slot_count; i++) {
        const struct shm_slot *s = &shm->slots[i];
        if (atomic_load_explicit(&s->pid, memory_order_relaxed) == 0 &&
            atomic_load_explicit(&s->state, memory_order_relaxed) == SHM_WORKER_FREE)
            return (int)i;
    }
    return -1;
}

void shm_rate_policy_set(struct shm *shm, unsigned entry, const char *name,
                         const char *definition)
{
    struct shm_rate_policy *d = &shm->header->rate_policies[entry];
    seq_begin(&shm->header->header_seq);
    snprintf(d->name, sizeof d->name, "%s", name);
    snprintf(d->definition, sizeof d->definition, "%s", definition);
    seq_end(&shm->header->header_seq);
}

void shm_rate_policy_clear(struct shm *shm, unsigned entry)
{
    struct shm_header *h = shm->header;
    seq_begin(&h->header_seq);
    memset(&h->rate_policies[entry], 0, sizeof h->rate_policies[entry]);
    seq_end(&h->header_seq);
    seq_begin(&h->retired_seq);
    for (int c = 0; c < SHM_RATE_COUNTERS; c++)
        atomic_store_explicit(&h->rate_retired[entry][c], 0, memory_order_relaxed);
    seq_end(&h->retired_seq);
}

void shm_route_label_set(struct shm *shm, unsigned entry, const char *label)
{
    struct shm_route_label *l = &shm->header->routes[entry];
    seq_begin(&shm->header->header_seq);
    snprintf(l->label, sizeof l->label, "%s", label);
    seq_end(&shm->header->header_seq);
}

void shm_route_label_clear(struct shm *shm, unsigned entry)
{
    struct shm_header *h = shm->header;
    struct shm_route_stats *retired = &shm_routes_retired(shm)[entry];
    seq_begin(&h->header_seq);
    memset(&h->routes[entry], 0, sizeof h->routes[entry]);
    seq_end(&h->header_seq);
    seq_begin(&h->retired_seq);
    for (int b = 0; b < SHM_DURATION_BUCKETS; b++)
        atomic_store_explicit(&retired->buckets[b], 0, memory_order_relaxed);
    atomic_store_explicit(&retired->duration_us, 0, memory_order_relaxed);
    for (int c = 0; c < 5; c++)
        atomic_store_explicit(&retired->responses[c], 0, memory_order_relaxed);
    seq_end(&h->retired_seq);
}

void shm_seq_write_begin(_Atomic uint64_t *seq) { seq_begin(seq); }

void shm_seq_write_end(_Atomic uint64_t *seq) { seq_end(seq); }

void shm_header_begin_write(struct shm *shm) { seq_begin(&shm->header->header_seq); }

void shm_header_end_write(struct shm *shm) { seq_end(&shm->header->header_seq); }

static struct shm_upstream_server *upstream_find(struct shm_header *h, const char *upstream,
                                                 const char *url)
{
    for (uint32_t i = 0; i < h->upstream_server_count && i < SHM_MAX_UPSTREAM_SERVERS; i++) {
        struct shm_upstream_server *s = &h->upstream_servers[i];
        if (strncmp(s->upstream, upstream, sizeof s->upstream - 1) == 0 &&
            strncmp(s->url, url, sizeof s->url - 1) == 0)
            return s;
    }
    return NULL;
}

struct shm_upstream_server *shm_upstream_claim(struct shm *shm, const char *upstream,
                                               const char *url, uint64_t generation,
                                               bool checked)
{
    struct shm_header *h = shm->header;
    shm_header_begin_write(shm);
    struct shm_upstream_server *s = upstream_find(h, upstream, url);
    if (s == NULL && h->upstream_server_count < SHM_MAX_UPSTREAM_SERVERS) {
        s = &h->upstream_servers[h->upstream_server_count++];
        snprintf(s->upstream, sizeof s->upstream, "%s", upstream);
        snprintf(s->url, sizeof s->url, "%s", url);
    }
    if (s != NULL && atomic_load(&s->generation) < generation) {
        atomic_store(&s->generation, generation);
        atomic_store(&s->health, checked ? SHM_UPSTREAM_UP : SHM_UPSTREAM_UNCHECKED);
    }
    shm_header_end_write(shm);
    return s;
}

/* ---- the master's identity ------------------------------------------- */

/* Field 22 of /proc/PID/stat: when the process started, in clock ticks
 * since boot. A recycled pid has another. */
static int proc_start_ticks(pid_t pid, uint64_t *ticks)
{
    char path[64], text[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return SK_ERROR;
    ssize_t n = read(fd, text, sizeof text - 1);
    close(fd);
    if (n <= 0)
        return SK_ERROR;
    text[n] = '\0';
    /* "pid (comm) S ppid ...": comm may hold ')' itself, so take the last. */
    const char *p = strrchr(text, ')');
    for (int field = 2; p != NULL && field < 22; field++)
        p = strchr(p + 1, ' ');
    if (p == NULL)
        return SK_ERROR;
    *ticks = strtoull(p + 1, NULL, 10);
    return SK_OK;
}

void shm_master_publish(struct shm *shm)
{
    struct shm_header *h = shm->header;
    struct stat exe = {0};
    uint64_t ticks = 0;
    stat("/proc/self/exe", &exe);
    proc_start_ticks(getpid(), &ticks);
    shm_header_begin_write(shm);
    h->master_pid = (int32_t)getpid();
    h->started_at = (int64_t)time(NULL);
    snprintf(h->server_version, sizeof h->server_version, "%s", PACKAGE_VERSION);
    h->master_start_ticks = ticks;
    h->master_exe_dev = (uint64_t)exe.st_dev;
    h->master_exe_ino = (uint64_t)exe.st_ino;
    shm_header_end_write(shm);
}

int shm_master_verify(const struct shm_header *h, struct err *err)
{
    pid_t pid = h->master_pid;
    if (pid <= 0)
        return err_set(err, "no master pid in the segment"), SK_DECLINED;
    if (kill(pid, 0) != 0 && errno == ESRCH)
        return err_set(err, "master pid %d is gone", (int)pid), SK_DECLINED;
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/exe", (int)pid);
    struct stat exe;
    uint64_t ticks;
    if (stat(path, &exe) != 0) {
        if (errno == EACCES || errno == EPERM)
            return err_set_errno(err, errno, "cannot check master pid %d (%s)", (int)pid, path);
        /* A zombie has no executable any more. */
        return err_set(err, "master pid %d is gone", (int)pid), SK_DECLINED;
    }
    if (proc_start_ticks(pid, &ticks) != SK_OK)
        return err_set(err, "master pid %d is gone", (int)pid), SK_DECLINED;
    if (ticks != h->master_start_ticks || (uint64_t)exe.st_dev != h->master_exe_dev ||
        (uint64_t)exe.st_ino != h->master_exe_ino)
        return err_set(err, "pid %d is not the saker master that wrote the segment (another "
                       "process, or a stale or forged segment)", (int)pid), SK_DECLINED;
    return SK_OK;
}

/* ---- snapshots (readers) --------------------------------------------- */

/* a + b, or UINT64_MAX: a hostile segment's counters must not wrap a
 * total round to less than its parts. */
static uint64_t add_saturating(uint64_t a, uint64_t b)
{
    uint64_t sum;
    return __builtin_add_overflow(a, b, &sum) ? UINT64_MAX : sum;
}

static uint64_t load(const _Atomic uint64_t *v)
{
    return atomic_load_explicit(v, memory_order_relaxed);
}

/* *to += the counter, saturating. */
static void add_load(uint64_t *to, const _Atomic uint64_t *v)
{
    *to = add_saturating(*to, load(v));
}

static void rate_add(uint64_t out[][SHM_RATE_COUNTERS],
                     const _Atomic uint64_t from[][SHM_RATE_COUNTERS])
{
    for (int r = 0; r < SHM_MAX_RATE_LIMITS; r++)
        for (int k = 0; k < SHM_RATE_COUNTERS; k++)
            add_load(&out[r][k], &from[r][k]);
}

static void totals_read(const struct shm *shm, struct shm_totals *out)
{
    const struct shm_header *h = shm->header;
    memset(out, 0, sizeof *out);
    for (int c = 0; c < SHM_COUNTER_COUNT; c++)
        out->counters[c] = load(&h->retired[c]);
    for (int c = 0; c < SHM_MODULE_COUNTERS; c++)
        out->module_counters[c] = load(&h->retired_module[c]);
    rate_add(out->rate, h->rate_retired);
    for (unsigned i = 0; i < h->slot_count; i++) {
        const struct shm_slot *s = &shm->slots[i];
        /* Free slots hold zeros (retire cleared them), so summing every
         * slot needs no pid check and cannot miss a worker just claimed. */
        for (int c = 0; c < SHM_COUNTER_COUNT; c++)
            add_load(&out->counters[c], &s->counters[c]);
        for (int c = 0; c < SHM_MODULE_COUNTERS; c++)
            add_load(&out->module_counters[c], &s->module_counters[c]);
        rate_add(out->rate, s->rate);
        /* Liveness by state, not pid: the master may claim with pid 0 and
         * fill it in after fork, and an EXITED worker's gauge is stale. */
        if (!shm_worker_state_live(atomic_load_explicit(&s->state, memory_order_relaxed)))
            continue;
        out->connections_open = add_saturating(
            out->connections_open,
            atomic_load_explicit(&s->connections_open, memory_order_relaxed));
        out->compression_memory = add_saturating(
            out->compression_memory,
            atomic_load_explicit(&s->compression_memory, memory_order_relaxed));
        out->workers_live++;
    }
}

static bool seq_read_begin(const _Atomic uint64_t *seq, uint64_t *start)
{
    *start = atomic_load_explicit(seq, memory_order_acquire);
    return (*start & 1) == 0;
}

static bool seq_read_retry(const _Atomic uint64_t *seq, uint64_t start)
{
    /* Orders the data loads before the second look at the sequence. */
    atomic_thread_fence(memory_order_acquire);
    return atomic_load_explicit(seq, memory_order_relaxed) != start;
}

/* A copy does not change while it is read: one look says all there is. */
static int snapshot_tries(const struct shm *shm) { return shm->copy ? 1 : SNAPSHOT_RETRIES; }

/* Runs read(shm, out) until no fold overlapped it: SK_OK, or SK_AGAIN
 * when the master kept folding for every retry. */
static int retired_snapshot(const struct shm *shm, void (*read)(const struct shm *, void *),
                            void *out)
{
    const _Atomic uint64_t *seq = &shm->header->retired_seq;
    for (int attempt = 0; attempt < snapshot_tries(shm); attempt++) {
        uint64_t start;
        if (!seq_read_begin(seq, &start)) {
            sched_yield();
            continue;
        }
        read(shm, out);
        if (!seq_read_retry(seq, start))
            return SK_OK;
    }
    return SK_AGAIN;
}

static void totals_read_any(const struct shm *shm, void *out) { totals_read(shm, out); }

int shm_snapshot_totals(const struct shm *shm, struct shm_totals *out)
{
    return retired_snapshot(shm, totals_read_any, out);
}

static void route_add(struct shm_route_totals *out, const struct shm_route_stats *from)
{
    for (int b = 0; b < SHM_DURATION_BUCKETS; b++)
        add_load(&out->buckets[b], &from->buckets[b]);
    add_load(&out->duration_us, &from->duration_us);
    for (int c = 0; c < 5; c++)
        add_load(&out->responses[c], &from->responses[c]);
}

/* A free slot's routes are zero (retire folded them) and may never have
 * been written: skipping it saves mapping pages of nothing. */
static void routes_read(const struct shm *shm, struct shm_route_totals *out)
{
    memset(out, 0, SHM_MAX_ROUTES * sizeof *out);
    for (int e = 0; e < SHM_MAX_ROUTES; e++)
        route_add(&out[e], &shm_routes_retired(shm)[e]);
    for (unsigned i = 0; i < shm->header->slot_count; i++) {
        if (atomic_load_explicit(&shm->slots[i].state, memory_order_relaxed) == SHM_WORKER_FREE)
            continue;
        const struct shm_route_stats *routes = shm_routes_of(shm, i);
        for (int e = 0; e < SHM_MAX_ROUTES; e++)
            route_add(&out[e], &routes[e]);
    }
}

static void routes_read_any(const struct shm *shm, void *out) { routes_read(shm, out); }

int shm_snapshot_routes(const struct shm *shm, struct shm_route_totals *out)
{
    return retired_snapshot(shm, routes_read_any, out);
}

#define TERMINATE(array) ((array)[sizeof(array) - 1] = '\0')

/* Strings NUL-ended within their arrays, table counts within the tables,
 * whatever the segment holds: renderers print with %s and loop on counts.
 * Writers use snprintf, so the last byte of a string is a NUL already. */
static void header_bound(struct shm_header *h)
{
    TERMINATE(h->server_version);
    TERMINATE(h->reload_message);
    TERMINATE(h->upgrade_message);
    TERMINATE(h->upgrade_binary);
    if (h->listener_count > SHM_MAX_LISTENERS)
        h->listener_count = SHM_MAX_LISTENERS;
    if (h->certificate_count > SHM_MAX_CERTIFICATES)
        h->certificate_count = SHM_MAX_CERTIFICATES;
    if (h->module_counter_count > SHM_MODULE_COUNTERS)
        h->module_counter_count = SHM_MODULE_COUNTERS;
    for (unsigned i = 0; i < SHM_MODULE_COUNTERS; i++) {
        TERMINATE(h->module_counters[i].module);
        TERMINATE(h->module_counters[i].name);
    }
    for (unsigned i = 0; i < SHM_MAX_LISTENERS; i++) {
        TERMINATE(h->listeners[i].endpoint);
        TERMINATE(h->listeners[i].url);
        TERMINATE(h->listeners[i].address);
    }
    if (h->upstream_server_count > SHM_MAX_UPSTREAM_SERVERS)
        h->upstream_server_count = SHM_MAX_UPSTREAM_SERVERS;
    for (unsigned i = 0; i < SHM_MAX_UPSTREAM_SERVERS; i++) {
        TERMINATE(h->upstream_servers[i].upstream);
        TERMINATE(h->upstream_servers[i].url);
    }
    for (unsigned i = 0; i < SHM_MAX_CERTIFICATES; i++) {
        TERMINATE(h->certificates[i].endpoint);
        TERMINATE(h->certificates[i].sni);
        TERMINATE(h->certificates[i].path);
        TERMINATE(h->certificates[i].subject);
    }
    for (unsigned i = 0; i < SHM_MAX_RATE_LIMITS; i++) {
        TERMINATE(h->rate_policies[i].name);
        TERMINATE(h->rate_policies[i].definition);
    }
    for (unsigned i = 0; i < SHM_MAX_ROUTES; i++)
        TERMINATE(h->routes[i].label);
}

int shm_snapshot_header(const struct shm *shm, struct shm_header *out)
{
    const _Atomic uint64_t *seq = &shm->header->header_seq;
    for (int attempt = 0; attempt < snapshot_tries(shm); attempt++) {
        uint64_t start;
        if (!seq_read_begin(seq, &start)) {
            sched_yield();
            continue;
        }
        /* The strings are plain bytes written under the seqlock; a torn
         * copy is caught by the second sequence read and thrown away. */
        memcpy(out, shm->header, sizeof *out);
        if (!seq_read_retry(seq, start)) {
            header_bound(out);
            return SK_OK;
        }
    }
    /* Give the caller the last copy anyway. */
    memcpy(out, shm->header, sizeof *out);
    header_bound(out);
    return SK_AGAIN;
}

/* One look at a connection entry: SK_OK when it was not being written.
 * A reader's copy of the file may have caught an entry mid-write with
 * its sequence already read as even, so the entry is read again from the
 * file, between two reads of its sequence there. */
static int conn_look(const struct shm *shm, const struct shm_conn *e, struct shm_conn *out)
{
    uint64_t start;
    if (!shm->copy) {
        if (!seq_read_begin(&e->seq, &start))
            return SK_AGAIN;
        memcpy(out, e, sizeof *out); /* plain bytes under the seqlock */
        return seq_read_retry(&e->seq, start) ? SK_AGAIN : SK_OK;
    }
    struct err err;
    off_t at = (off_t)((const char *)e - (const char *)shm->header);
    uint64_t end;
    if (read_at(shm, out, sizeof *out, at, &err) != SK_OK ||
        read_at(shm, &end, sizeof end, at, &err) != SK_OK)
        return SK_ERROR; /* the file shrank: nothing to show */
    start = atomic_load_explicit(&out->seq, memory_order_relaxed);
    return (start & 1) == 0 && start == end ? SK_OK : SK_AGAIN;
}

/* A worker writes an entry in a few stores; a copy's reader, which pays
 * a read of the file per look, does not wait as long for it. */
#define CONN_COPY_TRIES 16

int shm_snapshot_conn(const struct shm *shm, unsigned slot, unsigned index, struct shm_conn *out)
{
    const struct shm_conn *e = &shm_conns_of(shm, slot)->entries[index];
    int tries = shm->copy ? CONN_COPY_TRIES : SNAPSHOT_RETRIES;
    for (int attempt = 0; attempt < tries; attempt++) {
        int rc = conn_look(shm, e, out);
        if (rc == SK_ERROR)
            return SK_AGAIN;
        if (rc == SK_OK) {
            TERMINATE(out->request);
            return SK_OK;
        }
        sched_yield();
    }
    return SK_AGAIN;
}

void shm_snapshot_slot(const struct shm *shm, unsigned slot, struct shm_slot *out)
{
    const struct shm_slot *s = &shm->slots[slot];
    memset(out, 0, sizeof *out);
#define COPY(field) atomic_store_explicit(&out->field, \
        atomic_load_explicit(&s->field, memory_order_relaxed), memory_order_relaxed)
    COPY(pid);
    COPY(cpu);
    COPY(state);
    COPY(index);
    COPY(generation);
    COPY(heartbeat_ms);
    COPY(started_at);
    COPY(connections_open);
    COPY(compression_memory);
    for (int c = 0; c < SHM_COUNTER_COUNT; c++)
        COPY(counters[c]);
#undef COPY
}

/* ---- names ----------------------------------------------------------- */

static const char *const counter_names[] = {
    [SHM_CONNECTIONS_ACCEPTED] = "connections_accepted",
    [SHM_REQUESTS] = "requests",
    [SHM_RESPONSES_1XX] = "responses_1xx",
    [SHM_RESPONSES_2XX] = "responses_2xx",
    [SHM_RESPONSES_3XX] = "responses_3xx",
    [SHM_RESPONSES_4XX] = "responses_4xx",
    [SHM_RESPONSES_5XX] = "responses_5xx",
    [SHM_BYTES_IN] = "bytes_in",
    [SHM_BYTES_OUT] = "bytes_out",
    [SHM_REJECT_MALFORMED] = "reject_malformed",
    [SHM_REJECT_REQUEST_LINE_TOO_LONG] = "reject_request_line_too_long",
    [SHM_REJECT_HEADERS_TOO_LARGE] = "reject_headers_too_large",
    [SHM_REJECT_TOO_MANY_HEADERS] = "reject_too_many_headers",
    [SHM_REJECT_BODY_TOO_LARGE] = "reject_body_too_large",
    [SHM_REJECT_HOST_NOT_ALLOWED] = "reject_host_not_allowed",
    [SHM_REJECT_CONNECTION_LIMIT] = "reject_connection_limit",
    [SHM_REJECT_HEADERS_TIMEOUT] = "reject_headers_timeout",
    [SHM_REJECT_BODY_RATE] = "reject_body_rate",
    [SHM_REJECT_RESPONSE_RATE] = "reject_response_rate",
    [SHM_TLS_HANDSHAKES_OK] = "tls_handshakes_ok",
    [SHM_TLS_FAIL_PROTOCOL_VERSION] = "tls_handshakes_protocol_version",
    [SHM_TLS_FAIL_NO_SHARED_CIPHER] = "tls_handshakes_no_shared_cipher",
    [SHM_TLS_FAIL_UNKNOWN_NAME] = "tls_handshakes_unknown_name",
    [SHM_TLS_FAIL_BAD_CERTIFICATE] = "tls_handshakes_bad_certificate",
    [SHM_TLS_FAIL_PLAIN_HTTP] = "tls_handshakes_plain_http",
    [SHM_TLS_FAIL_OTHER] = "tls_handshakes_other",
    [SHM_TLS_RESUMED] = "tls_resumed",
    [SHM_TLS_12] = "tls_1_2",
    [SHM_TLS_13] = "tls_1_3",
    [SHM_TLS_CIPHER_AES128_GCM] = "tls_cipher_aes128_gcm",
    [SHM_TLS_CIPHER_AES256_GCM] = "tls_cipher_aes256_gcm",
    [SHM_TLS_CIPHER_CHACHA20_POLY1305] = "tls_cipher_chacha20_poly1305",
    [SHM_TLS_CIPHER_OTHER] = "tls_cipher_other",
    [SHM_H2_CONNECTIONS] = "http2_connections",
    [SHM_H2_STREAMS] = "http2_streams",
    [SHM_H2_RESETS_RECEIVED] = "http2_resets_received",
    [SHM_H2_RESETS_SENT] = "http2_resets_sent",
    [SHM_H2_CONNECTION_ERRORS] = "http2_connection_errors",
    [SHM_COMPRESS_IN_BR] = "compression_in_br",
    [SHM_COMPRESS_IN_GZIP] = "compression_in_gzip",
    [SHM_COMPRESS_IN_DEFLATE] = "compression_in_deflate",
    [SHM_COMPRESS_OUT_BR] = "compression_out_br",
    [SHM_COMPRESS_OUT_GZIP] = "compression_out_gzip",
    [SHM_COMPRESS_OUT_DEFLATE] = "compression_out_deflate",
    [SHM_COMPRESS_RESPONSES_BR] = "compressed_responses_br",
    [SHM_COMPRESS_RESPONSES_GZIP] = "compressed_responses_gzip",
    [SHM_COMPRESS_RESPONSES_DEFLATE] = "compressed_responses_deflate",
    [SHM_FILE_CACHE_HITS] = "file_cache_hits",
    [SHM_FILE_CACHE_MISSES] = "file_cache_misses",
    [SHM_FILE_CACHE_EVICTIONS] = "file_cache_evictions",
    [SHM_FILE_CACHE_REVALIDATIONS] = "file_cache_revalidations",
};
static_assert(sizeof counter_names / sizeof counter_names[0] == SHM_COUNTER_COUNT,
              "a name for every counter");

static const char *const instance_state_names[] = {
    [SHM_INSTANCE_STARTING] = "starting", [SHM_INSTANCE_RUNNING] = "running",
    [SHM_INSTANCE_RELOADING] = "reloading", [SHM_INSTANCE_DRAINING] = "draining",
    [SHM_INSTANCE_STOPPING] = "stopping", [SHM_INSTANCE_STOPPED] = "stopped",
};

static const char *const worker_state_names[] = {
    [SHM_WORKER_FREE] = "free", [SHM_WORKER_STARTING] = "starting",
    [SHM_WORKER_RUNNING] = "running", [SHM_WORKER_DRAINING] = "draining",
    [SHM_WORKER_EXITED] = "exited",
};

const char *shm_counter_name(enum shm_counter c)
{
    if ((unsigned)c >= SHM_COUNTER_COUNT)
        return "unknown";
    return counter_names[c];
}

const char *shm_compress_coding(int i)
{
    static const char *const codings[SHM_COMPRESS_CODINGS] = {"br", "gzip", "deflate"};
    return i >= 0 && i < SHM_COMPRESS_CODINGS ? codings[i] : "unknown";
}

const char *shm_reject_reason(enum shm_counter c)
{
    if ((unsigned)c < SHM_REJECT_FIRST || (unsigned)c >= SHM_REJECT_END)
        return NULL;
    return counter_names[c] + strlen("reject_");
}

const char *shm_tls_result(enum shm_counter c)
{
    if ((unsigned)c < SHM_TLS_RESULT_FIRST || (unsigned)c >= SHM_TLS_RESULT_END)
        return NULL;
    return c == SHM_TLS_HANDSHAKES_OK ? "ok" : counter_names[c] + strlen("tls_handshakes_");
}

const char *shm_instance_state_name(unsigned state)
{
    if (state >= sizeof instance_state_names / sizeof instance_state_names[0])
        return "unknown";
    return instance_state_names[state];
}

const char *shm_worker_state_name(unsigned state)
{
    if (state >= sizeof worker_state_names / sizeof worker_state_names[0])
        return "unknown";
    return worker_state_names[state];
}

const char *shm_conn_state_name(unsigned state)
{
    static const char *const names[] = {
        [SHM_CONN_FREE] = "free", [SHM_CONN_HANDSHAKE] = "handshake",
        [SHM_CONN_READING_HEAD] = "reading head", [SHM_CONN_READING_BODY] = "reading body",
        [SHM_CONN_HANDLING] = "handling", [SHM_CONN_WRITING] = "writing",
        [SHM_CONN_IDLE] = "idle", [SHM_CONN_TUNNEL] = "tunnel", [SHM_CONN_CLOSING] = "closing",
    };
    static_assert(sizeof names / sizeof names[0] == SHM_CONN_STATES, "a name for every state");
    return state < SHM_CONN_STATES ? names[state] : "unknown";
}

const char *shm_conn_protocol_name(unsigned protocol)
{
    switch (protocol) {
    case SHM_CONN_HTTP1: return "http/1.1";
    case SHM_CONN_HTTP2: return "h2";
    }
    return "-";
}

const char *shm_listener_kind_name(unsigned kind)
{
    switch (kind) {
    case SHM_LISTENER_TCP4: return "tcp4";
    case SHM_LISTENER_TCP6: return "tcp6";
    case SHM_LISTENER_UNIX: return "unix";
    }
    return "unknown";
}
