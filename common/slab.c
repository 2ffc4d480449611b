/*
 * slab.c - small blocks without malloc's header; see slab.h.
 *
 * The slab is one reservation of address space (no memory, no commit
 * charge), made readable a megabyte at a time as runs are first taken.
 * It is cut into 16 KiB slots, and a side table has an entry per slot.
 * A run of blocks up to 1 KiB is one slot; a run of larger blocks spans
 * several, the first slot's entry describing it and the others' pointing
 * to it. A run's free blocks are linked through themselves; blocks never
 * handed out yet are cut from its start in order, so a run touches only
 * the pages it has handed out. Each size keeps a list of its runs with
 * room, the run a block was last freed to first: the blocks a connection
 * frees are what the next one takes.
 *
 * A run that empties stays as it is (a worker serving one connection
 * after another would otherwise give back and fault in the same pages
 * each time) until slab_trim gives its pages back and puts it behind the
 * runs in use. A run keeps its size for good: address space is plenty,
 * and its pages are what counts.
 */
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <malloc.h>
#include <string.h>
#include <sys/mman.h>

#include "common/slab.h"

#if defined(__SANITIZE_ADDRESS__)
#define SLAB_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SLAB_SANITIZED 1
#endif
#endif

#define SLAB_STEP 8
#define SLAB_SIZES (SLAB_BLOCK_MAX / SLAB_STEP)
#define SLAB_SLOT ((size_t)16 * 1024)
/* A run of blocks over 1 KiB spans up to 64 slots (1 MiB), as many as
 * waste least at its end: under 1 % of a block whatever its size. */
#define SLAB_SMALL_MAX 1024
#define SLAB_RUN_SLOTS_MAX 64
/* 64 Ki slots; a worker serving 10,000 idle HTTP/2 connections over TLS
 * fills about 200 MiB of it. Past it, blocks are malloc's. */
#define SLAB_REGION_SIZE ((size_t)1 << 30)
#define SLAB_SLOTS (SLAB_REGION_SIZE / SLAB_SLOT)
#define SLAB_COMMIT_STEP ((size_t)1 << 20)

struct slab_block {
    struct slab_block *next;
};

/* One per slot; a run's first slot's describes the run. */
struct slab_run {
    struct slab_run *next, *prev; /* its size's runs with room */
    struct slab_run *head;        /* in a run's later slots: its first */
    struct slab_block *free;
    uint16_t block_size;
    uint16_t capacity;
    uint16_t carved;     /* blocks cut from its start since it was made or trimmed */
    uint16_t live;
    uint8_t slots;
    bool listed;         /* on its size's list: it has room */
};

static struct {
    uintptr_t base;
    size_t length;      /* 0: off; then no address is the slab's */
    size_t committed;   /* bytes from base made readable and writable */
    size_t slots_taken; /* slots from base given to runs */
    struct slab_run *runs;
    struct slab_run *with_room[SLAB_SIZES + 1];
    _Atomic(struct slab_block *) foreign_frees; /* from other threads */
} slab;

static _Thread_local bool slab_owner;

static bool slab_holds(const void *p)
{
    return (uintptr_t)p - slab.base < slab.length;
}

static struct slab_run *run_of(const void *p)
{
    struct slab_run *run = &slab.runs[((uintptr_t)p - slab.base) / SLAB_SLOT];
    return run->head != NULL ? run->head : run;
}

static char *run_start(const struct slab_run *run)
{
    return (char *)(slab.base + (size_t)(run - slab.runs) * SLAB_SLOT);
}

static void list_push(struct slab_run **head, struct slab_run *run)
{
    run->prev = NULL;
    run->next = *head;
    if (*head != NULL)
        (*head)->prev = run;
    *head = run;
}

static void list_remove(struct slab_run **head, struct slab_run *run)
{
    if (run->prev != NULL)
        run->prev->next = run->next;
    else
        *head = run->next;
    if (run->next != NULL)
        run->next->prev = run->prev;
    run->next = run->prev = NULL;
}

bool slab_enable(void)
{
#ifdef SLAB_SANITIZED
    return false;
#else
    if (slab.length != 0)
        return slab_owner;
    void *region = mmap(NULL, SLAB_REGION_SIZE, PROT_NONE,
                        MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (region == MAP_FAILED)
        return false;
    /* The table's pages are touched only for slots taken. */
    void *runs = mmap(NULL, SLAB_SLOTS * sizeof(struct slab_run), PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (runs == MAP_FAILED) {
        munmap(region, SLAB_REGION_SIZE);
        return false;
    }
    slab.base = (uintptr_t)region;
    slab.runs = runs;
    slab.length = SLAB_REGION_SIZE;
    slab_owner = true;
    return true;
#endif
}

/* The slots a run of blocks of size spans: one for small blocks; for
 * larger ones, the count that leaves the least unused per block. */
static size_t run_slots(size_t size)
{
    if (size <= SLAB_SMALL_MAX)
        return 1;
    size_t best = 1, best_waste = SIZE_MAX;
    for (size_t n = 1; n <= SLAB_RUN_SLOTS_MAX; n++) {
        size_t blocks = n * SLAB_SLOT / size;
        size_t waste = blocks == 0 ? SIZE_MAX : n * SLAB_SLOT % size / blocks;
        if (waste < best_waste) {
            best = n;
            best_waste = waste;
        }
    }
    return best;
}

/* A new run for blocks of size, at the end of what the region has
 * handed out. NULL when the region is used up or cannot be made
 * writable. */
static struct slab_run *run_take(size_t size)
{
    size_t slots = run_slots(size);
    if (SLAB_SLOTS - slab.slots_taken < slots)
        return NULL;
    size_t end = (slab.slots_taken + slots) * SLAB_SLOT;
    while (end > slab.committed) {
        if (mprotect((void *)(slab.base + slab.committed), SLAB_COMMIT_STEP,
                     PROT_READ | PROT_WRITE) != 0)
            return NULL;
        slab.committed += SLAB_COMMIT_STEP;
    }
    struct slab_run *run = &slab.runs[slab.slots_taken];
    for (size_t i = 1; i < slots; i++)
        run[i].head = run;
    slab.slots_taken += slots;
    *run = (struct slab_run){.block_size = (uint16_t)size,
                             .capacity = (uint16_t)(slots * SLAB_SLOT / size),
                             .slots = (uint8_t)slots};
    list_push(&slab.with_room[size / SLAB_STEP], run);
    run->listed = true;
    return run;
}

static void block_give(void *p)
{
    struct slab_run *run = run_of(p);
    struct slab_block *b = p;
    b->next = run->free;
    run->free = b;
    run->live--;
    if (!run->listed) {
        list_push(&slab.with_room[run->block_size / SLAB_STEP], run);
        run->listed = true;
    }
}

static void foreign_frees_take(void)
{
    struct slab_block *b = atomic_exchange_explicit(&slab.foreign_frees, NULL,
                                                    memory_order_acquire);
    while (b != NULL) {
        struct slab_block *next = b->next;
        block_give(b);
        b = next;
    }
}

void *slab_malloc(size_t size)
{
    /* size 0 wraps round to past the limit: malloc's */
    if (size - 1 >= SLAB_BLOCK_MAX || !slab_owner)
        return malloc(size);
    if (atomic_load_explicit(&slab.foreign_frees, memory_order_relaxed) != NULL)
        foreign_frees_take();
    size_t k = (size + SLAB_STEP - 1) / SLAB_STEP;
    struct slab_run *run = slab.with_room[k];
    if (run == NULL && (run = run_take(k * SLAB_STEP)) == NULL)
        return malloc(size);
    void *p;
    if (run->free != NULL) {
        p = run->free;
        run->free = run->free->next;
    } else {
        p = run_start(run) + (size_t)run->carved++ * run->block_size;
    }
    if (++run->live == run->capacity) {
        list_remove(&slab.with_room[k], run);
        run->listed = false;
    }
    return p;
}

void *slab_calloc(size_t count, size_t size)
{
    if (size != 0 && count > SIZE_MAX / size)
        return NULL;
    void *p = slab_malloc(count * size);
    return p != NULL ? memset(p, 0, count * size) : NULL;
}

void slab_free(void *p)
{
    if (!slab_holds(p)) {
        free(p);
        return;
    }
    if (!slab_owner) {
        struct slab_block *b = p;
        b->next = atomic_load_explicit(&slab.foreign_frees, memory_order_relaxed);
        while (!atomic_compare_exchange_weak_explicit(&slab.foreign_frees, &b->next, b,
                                                      memory_order_release,
                                                      memory_order_relaxed))
            ;
        return;
    }
    block_give(p);
}

size_t slab_usable_size(void *p)
{
    return slab_holds(p) ? run_of(p)->block_size : malloc_usable_size(p);
}

void *slab_realloc(void *p, size_t size)
{
    if (p == NULL)
        return slab_malloc(size);
    if (!slab_holds(p))
        return realloc(p, size);
    if (size == 0) {
        slab_free(p);
        return NULL;
    }
    size_t have = run_of(p)->block_size;
    if (size <= have)
        return p;
    void *moved = slab_malloc(size);
    if (moved != NULL) {
        memcpy(moved, p, have);
        slab_free(p);
    }
    return moved;
}

/* The size's runs with no block in use: their pages go back to the
 * kernel, and they move behind the runs still in use, which new blocks
 * fill first. */
static void runs_trim(struct slab_run **list)
{
    struct slab_run *in_use = NULL, *emptied = NULL;
    while (*list != NULL) {
        struct slab_run *run = *list;
        list_remove(list, run);
        if (run->live == 0 && run->carved != 0) {
            madvise(run_start(run), run->slots * SLAB_SLOT, MADV_DONTNEED);
            run->free = NULL;
            run->carved = 0;
        }
        list_push(run->live == 0 ? &emptied : &in_use, run);
    }
    /* Pushed in reverse; pushed again, each list is in its old order. */
    while (emptied != NULL) {
        struct slab_run *run = emptied;
        list_remove(&emptied, run);
        list_push(list, run);
    }
    while (in_use != NULL) {
        struct slab_run *run = in_use;
        list_remove(&in_use, run);
        list_push(list, run);
    }
}

void slab_trim(void)
{
    if (!slab_owner)
        return;
    foreign_frees_take();
    for (size_t k = 1; k <= SLAB_SIZES; k++)
        runs_trim(&slab.with_room[k]);
}

void slab_stats(struct slab_stats *out)
{
    *out = (struct slab_stats){0};
    for (size_t i = 0; i < slab.slots_taken; i += slab.runs[i].slots) {
        if (slab.runs[i].carved != 0)
            out->runs_in_use++;
        out->blocks_live += slab.runs[i].live;
    }
}
