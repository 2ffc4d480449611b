/* check_slab.c - common/slab.c: headerless blocks by size, malloc's past
 * them, pages given back when runs empty, frees from other threads. */
#include <check.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/slab.h"
#include "tests/unit/unit.h"

#if defined(__SANITIZE_ADDRESS__)
#define SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SANITIZED 1
#endif
#endif

/* The slab, on; false in a sanitizer build, where it stays off by design
 * (and the test's slab-only checks end there). */
static bool slab_on(void)
{
#ifdef SANITIZED
    ck_assert(!slab_enable());
    return false;
#else
    ck_assert(slab_enable());
    return true;
#endif
}

static size_t live_blocks(void)
{
    struct slab_stats st;
    slab_stats(&st);
    return st.blocks_live;
}

static size_t runs_in_use(void)
{
    struct slab_stats st;
    slab_stats(&st);
    return st.runs_in_use;
}

static bool page_resident(const void *p)
{
    long page = sysconf(_SC_PAGESIZE);
    unsigned char v = 0;
    void *start = (void *)((uintptr_t)p & ~(uintptr_t)(page - 1));
    ck_assert_int_eq(mincore(start, (size_t)page, &v), 0);
    return v & 1;
}

static int by_address(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t) * (void *const *)a, y = (uintptr_t) * (void *const *)b;
    return x < y ? -1 : x > y;
}

START_TEST(off_until_enabled_everything_is_malloc)
{
    void *p = slab_malloc(64);
    ck_assert_ptr_nonnull(p);
    ck_assert_uint_eq(live_blocks(), 0);
    ck_assert_uint_ge(slab_usable_size(p), 64);
    p = slab_realloc(p, 200);
    ck_assert_ptr_nonnull(p);
    slab_free(p);
    slab_trim(); /* nothing to do, nothing breaks */
}
END_TEST

START_TEST(every_size_is_distinct_writable_and_aligned)
{
    bool on = slab_on();
    size_t before = live_blocks();
    enum { SIZES = SLAB_BLOCK_MAX };
    void **blocks = calloc(SIZES + 1, sizeof *blocks);
    for (size_t size = 1; size <= SIZES; size++) {
        char *p = slab_malloc(size);
        ck_assert_ptr_nonnull(p);
        ck_assert_uint_ge(slab_usable_size(p), size);
        ck_assert_uint_eq((uintptr_t)p % (size % 16 == 0 ? 16 : 8), 0);
        memset(p, (int)(size & 0xff), slab_usable_size(p));
        blocks[size] = p;
    }
    if (on)
        ck_assert_uint_eq(live_blocks(), before + SIZES);
    for (size_t size = 1; size <= SIZES; size++) {
        const unsigned char *p = blocks[size];
        ck_assert_uint_eq(p[0], size & 0xff);
        ck_assert_uint_eq(p[size - 1], size & 0xff);
    }
    qsort(blocks + 1, SIZES, sizeof *blocks, by_address);
    for (size_t i = 1; i < SIZES; i++)
        ck_assert((char *)blocks[i] + slab_usable_size(blocks[i]) <= (char *)blocks[i + 1]);
    for (size_t i = 1; i <= SIZES; i++)
        slab_free(blocks[i]);
    ck_assert_uint_eq(live_blocks(), before);
    free(blocks);
}
END_TEST

START_TEST(a_freed_block_is_the_next_of_its_size)
{
    if (!slab_on())
        return;
    static const size_t sizes[] = {8, 56, 1024, 1032, 2928, 7608, SLAB_BLOCK_MAX};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        void *keep = slab_malloc(sizes[i]); /* the run stays in use */
        void *p = slab_malloc(sizes[i]);
        slab_free(p);
        ck_assert_ptr_eq(slab_malloc(sizes[i]), p);
        ck_assert_uint_eq(slab_usable_size(p), sizes[i]);
        slab_free(p);
        slab_free(keep);
    }
}
END_TEST

START_TEST(sizes_past_the_slab_and_zero_are_malloc)
{
    if (!slab_on())
        return;
    size_t before = live_blocks();
    void *big = slab_malloc(SLAB_BLOCK_MAX + 1);
    void *none = slab_malloc(0);
    ck_assert_ptr_nonnull(big);
    ck_assert_ptr_nonnull(none);
    ck_assert_uint_eq(live_blocks(), before);
    memset(big, 1, SLAB_BLOCK_MAX + 1);
    slab_free(big);
    slab_free(none);
    slab_free(NULL);
}
END_TEST

START_TEST(realloc_keeps_the_contents_between_slab_and_malloc)
{
    slab_on();
    char *p = slab_realloc(NULL, 10);
    ck_assert_ptr_nonnull(p);
    memcpy(p, "0123456789", 10);
    static const size_t steps[] = {8, 100, 5000, 20000, 30, 3000};
    size_t kept = 8; /* the shortest size so far holds this much */
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        p = slab_realloc(p, steps[i]);
        ck_assert_ptr_nonnull(p);
        ck_assert_int_eq(memcmp(p, "01234567", kept), 0);
        memset(p + kept, 'x', steps[i] - kept);
    }
    ck_assert_ptr_null(slab_realloc(p, 0)); /* freed */
}
END_TEST

START_TEST(calloc_zeroes_and_refuses_overflow)
{
    slab_on();
    unsigned char *p = slab_malloc(96);
    memset(p, 0xff, 96);
    slab_free(p);
    unsigned char *z = slab_calloc(3, 32); /* the same block again, zeroed */
    for (size_t i = 0; i < 96; i++)
        ck_assert_uint_eq(z[i], 0);
    slab_free(z);
    ck_assert_ptr_null(slab_calloc(SIZE_MAX / 2, 3));
}
END_TEST

START_TEST(trim_gives_back_the_pages_of_emptied_runs_only)
{
    if (!slab_on())
        return;
    slab_trim(); /* what tests before this one left, in one process */
    enum { SMALL = 5000, LARGE = 300 };
    void **small = calloc(SMALL, sizeof *small), **large = calloc(LARGE, sizeof *large);
    for (size_t i = 0; i < SMALL; i++)
        memset(small[i] = slab_malloc(64), 'a', 64);
    for (size_t i = 0; i < LARGE; i++)
        memset(large[i] = slab_malloc(7608), 'b', 7608);
    size_t runs = runs_in_use();
    ck_assert_uint_ge(runs, 2);
    char *survivor = small[SMALL - 1];
    for (size_t i = 0; i + 1 < SMALL; i++)
        slab_free(small[i]);
    for (size_t i = 0; i < LARGE; i++)
        slab_free(large[i]);
    ck_assert(page_resident(small[0]));
    ck_assert(page_resident(large[0]));
    slab_trim();
    ck_assert_uint_eq(runs_in_use(), 1); /* the survivor's */
    ck_assert(!page_resident(small[0]));
    ck_assert(!page_resident(large[0]));
    ck_assert(page_resident(survivor));
    for (size_t i = 0; i < 64; i++)
        ck_assert_int_eq(survivor[i], 'a');
    /* Runs given back serve again: no new address space. */
    char *last = large[0];
    for (size_t i = 0; i < LARGE; i++)
        last = (char *)large[i] > last ? large[i] : last;
    char *again = slab_malloc(7608);
    ck_assert(again <= last);
    memset(again, 'c', 7608);
    slab_free(again);
    slab_free(survivor);
    slab_trim();
    ck_assert_uint_eq(runs_in_use(), 0);
    ck_assert_uint_eq(live_blocks(), 0);
    free(small);
    free(large);
}
END_TEST

/* A small deterministic generator, so a failure repeats. */
static uint32_t next_random(uint32_t *state)
{
    *state ^= *state << 13;
    *state ^= *state >> 17;
    *state ^= *state << 5;
    return *state;
}

/* One assertion per block: Check records every assertion it passes. */
static void check_fill(const unsigned char *p, size_t size, unsigned char fill)
{
    size_t i = 0;
    while (i < size && p[i] == fill)
        i++;
    ck_assert_msg(i == size, "byte %zu of %zu is %u, not %u", i, size, p[i], fill);
}

START_TEST(random_use_keeps_every_block_intact)
{
    bool on = slab_on();
    if (on)
        slab_trim(); /* what tests before this one left, in one process */
    enum { SLOTS = 2000, OPS = 200000, SIZE_MAX_ASKED = 3 * SLAB_BLOCK_MAX / 2 };
    unsigned char **block = calloc(SLOTS, sizeof *block);
    size_t *size = calloc(SLOTS, sizeof *size);
    uint32_t state = 2463534242u;
    for (size_t op = 0; op < OPS; op++) {
        size_t k = next_random(&state) % SLOTS;
        unsigned char fill = (unsigned char)(k * 7 + 1);
        size_t asked = 1 + next_random(&state) % SIZE_MAX_ASKED;
        if (block[k] == NULL) {
            block[k] = slab_malloc(asked);
            ck_assert_ptr_nonnull(block[k]);
            memset(block[k], fill, size[k] = asked);
        } else if (next_random(&state) % 2 == 0) {
            check_fill(block[k], size[k], fill);
            slab_free(block[k]);
            block[k] = NULL;
        } else {
            check_fill(block[k], size[k], fill);
            block[k] = slab_realloc(block[k], asked);
            ck_assert_ptr_nonnull(block[k]);
            check_fill(block[k], asked < size[k] ? asked : size[k], fill);
            memset(block[k], fill, size[k] = asked);
        }
        if (op % 20000 == 0)
            slab_trim();
    }
    for (size_t k = 0; k < SLOTS; k++) {
        if (block[k] != NULL) {
            check_fill(block[k], size[k], (unsigned char)(k * 7 + 1));
            slab_free(block[k]);
        }
    }
    if (on) {
        ck_assert_uint_eq(live_blocks(), 0);
        slab_trim();
        ck_assert_uint_eq(runs_in_use(), 0);
    }
    free(block);
    free(size);
}
END_TEST

enum { FOREIGN = 200 };

static void *free_all(void *arg)
{
    void **blocks = arg;
    for (size_t i = 0; i < FOREIGN; i++)
        slab_free(blocks[i]);
    /* This thread's own blocks are malloc's. */
    void *own = slab_malloc(64);
    memset(own, 1, 64);
    slab_free(own);
    return NULL;
}

START_TEST(blocks_freed_by_another_thread_go_back_to_the_owner)
{
    if (!slab_on())
        return;
    size_t before = live_blocks();
    void *blocks[FOREIGN];
    for (size_t i = 0; i < FOREIGN; i++)
        blocks[i] = slab_malloc(16 + i * 24);
    ck_assert_uint_eq(live_blocks(), before + FOREIGN);
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, free_all, blocks), 0);
    ck_assert_int_eq(pthread_join(t, NULL), 0);
    ck_assert_uint_eq(live_blocks(), before + FOREIGN); /* queued for the owner */
    void *p = slab_malloc(16);
    ck_assert_uint_eq(live_blocks(), before + 1);
    ck_assert_ptr_eq(p, blocks[0]);
    slab_free(p);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("slab");
    TCase *t = tcase_create("slab");
    tcase_add_test(t, off_until_enabled_everything_is_malloc);
    tcase_add_test(t, every_size_is_distinct_writable_and_aligned);
    tcase_add_test(t, a_freed_block_is_the_next_of_its_size);
    tcase_add_test(t, sizes_past_the_slab_and_zero_are_malloc);
    tcase_add_test(t, realloc_keeps_the_contents_between_slab_and_malloc);
    tcase_add_test(t, calloc_zeroes_and_refuses_overflow);
    tcase_add_test(t, trim_gives_back_the_pages_of_emptied_runs_only);
    tcase_add_test(t, random_use_keeps_every_block_intact);
    tcase_add_test(t, blocks_freed_by_another_thread_go_back_to_the_owner);
    suite_add_tcase(s, t);
    return unit_run(s);
}
