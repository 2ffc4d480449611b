/* check_arena.c - common/arena.c: bump allocation over pooled blocks. */
#include <check.h>
#include <stdint.h>
#include <string.h>

#include "common/arena.h"
#include "tests/unit/unit.h"

START_TEST(allocations_are_aligned_and_distinct)
{
    struct block_pool pool;
    struct arena a;
    block_pool_init(&pool, 8);
    arena_init(&a, &pool);
    char *p = arena_alloc(&a, 3);
    char *q = arena_alloc(&a, 5);
    ck_assert_ptr_nonnull(p);
    ck_assert_ptr_nonnull(q);
    ck_assert_ptr_ne(p, q);
    ck_assert_uint_eq((uintptr_t)q % _Alignof(max_align_t), 0);
    arena_reset(&a);
    block_pool_destroy(&pool);
}
END_TEST

START_TEST(reset_returns_blocks_to_the_pool)
{
    struct block_pool pool;
    struct arena a;
    block_pool_init(&pool, 8);
    arena_init(&a, &pool);
    for (int i = 0; i < 100; i++)
        ck_assert_ptr_nonnull(arena_alloc(&a, 100));
    arena_reset(&a);
    ck_assert_uint_gt(pool.free_count, 0);
    ck_assert_uint_le(pool.free_count, 8);
    size_t before = pool.free_count;
    ck_assert_ptr_nonnull(arena_alloc(&a, 10));
    ck_assert_uint_eq(pool.free_count, before - 1); /* reused, not malloc'd */
    arena_reset(&a);
    block_pool_destroy(&pool);
}
END_TEST

START_TEST(large_allocations_get_their_own_block)
{
    struct block_pool pool;
    struct arena a;
    block_pool_init(&pool, 8);
    arena_init(&a, &pool);
    char *big = arena_alloc(&a, 100000);
    ck_assert_ptr_nonnull(big);
    memset(big, 'x', 100000);
    arena_reset(&a);
    ck_assert_uint_eq(pool.free_count, 0); /* oversized blocks are not pooled */
    block_pool_destroy(&pool);
}
END_TEST

START_TEST(grow_extends_the_last_allocation_in_place)
{
    struct block_pool pool;
    struct arena a;
    block_pool_init(&pool, 8);
    arena_init(&a, &pool);
    char *p = arena_alloc(&a, 16);
    memcpy(p, "0123456789abcdef", 16);
    char *g = arena_grow(&a, p, 16, 64);
    ck_assert_ptr_eq(g, p);
    arena_alloc(&a, 8);
    char *moved = arena_grow(&a, g, 64, 128); /* no longer last: copied */
    ck_assert_ptr_ne(moved, g);
    ck_assert_int_eq(memcmp(moved, "0123456789abcdef", 16), 0);
    char *s = arena_strndup(&a, "hello world", 5);
    ck_assert_str_eq(s, "hello");
    arena_reset(&a);
    block_pool_destroy(&pool);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("arena");
    TCase *t = tcase_create("arena");
    tcase_add_test(t, allocations_are_aligned_and_distinct);
    tcase_add_test(t, reset_returns_blocks_to_the_pool);
    tcase_add_test(t, large_allocations_get_their_own_block);
    tcase_add_test(t, grow_extends_the_last_allocation_in_place);
    suite_add_tcase(s, t);
    return unit_run(s);
}
