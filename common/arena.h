/*
 * arena.h - bump allocation for things that die together.
 *
 * An arena hands out memory from fixed-size blocks and frees it all at once
 * with arena_reset(). Blocks come from a block_pool, a free list shared by
 * one worker, so a steady stream of requests allocates nothing from malloc:
 * an exchange's headers live in its arena and the blocks return to the pool
 * when the response is done. Requests larger than a block get a dedicated
 * malloc'd block that is freed (not pooled) on reset.
 *
 * Not thread-safe; one pool per worker process.
 */
#ifndef SAKER_COMMON_ARENA_H
#define SAKER_COMMON_ARENA_H

#include <stddef.h>

#define ARENA_BLOCK_SIZE 4096

struct arena_block;

struct block_pool {
    struct arena_block *free_list;
    size_t free_count;
    size_t max_free; /* blocks kept beyond this are returned to malloc */
};

struct arena {
    struct block_pool *pool;
    struct arena_block *blocks; /* newest first */
    char *cursor;
    char *limit;
};

void block_pool_init(struct block_pool *pool, size_t max_free);
void block_pool_destroy(struct block_pool *pool);

void arena_init(struct arena *arena, struct block_pool *pool);
/* Returns size bytes aligned for any type, or NULL when malloc fails. */
void *arena_alloc(struct arena *arena, size_t size);
/* Copies len bytes and appends a NUL; NULL when out of memory. */
char *arena_strndup(struct arena *arena, const char *s, size_t len);
/* Grows the most recent allocation `old` of old_size to new_size, in place
 * when it is the last thing allocated and fits, else by copying. */
void *arena_grow(struct arena *arena, void *old, size_t old_size, size_t new_size);
/* Gives every block back to the pool; the arena is empty and reusable. */
void arena_reset(struct arena *arena);

#endif
