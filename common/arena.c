/* arena.c - bump allocator over pooled blocks; see arena.h. */
#include "common/arena.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct arena_block {
    struct arena_block *next;
    size_t size; /* usable bytes after the header */
    max_align_t data[];
};

#define ALIGNMENT (_Alignof(max_align_t))

void block_pool_init(struct block_pool *pool, size_t max_free)
{
    pool->free_list = NULL;
    pool->free_count = 0;
    pool->max_free = max_free;
}

void block_pool_destroy(struct block_pool *pool)
{
    while (pool->free_list != NULL) {
        struct arena_block *b = pool->free_list;
        pool->free_list = b->next;
        free(b);
    }
    pool->free_count = 0;
}

static struct arena_block *block_take(struct block_pool *pool, size_t need)
{
    size_t standard = ARENA_BLOCK_SIZE - sizeof(struct arena_block);
    if (need <= standard && pool->free_list != NULL) {
        struct arena_block *b = pool->free_list;
        pool->free_list = b->next;
        pool->free_count--;
        return b;
    }
    size_t size = need <= standard ? standard : need;
    struct arena_block *b = malloc(sizeof *b + size);
    if (b != NULL)
        b->size = size;
    return b;
}

static void block_give(struct block_pool *pool, struct arena_block *b)
{
    if (b->size != ARENA_BLOCK_SIZE - sizeof(struct arena_block) ||
        pool->free_count >= pool->max_free) {
        free(b);
        return;
    }
    b->next = pool->free_list;
    pool->free_list = b;
    pool->free_count++;
}

void arena_init(struct arena *arena, struct block_pool *pool)
{
    arena->pool = pool;
    arena->blocks = NULL;
    arena->cursor = NULL;
    arena->limit = NULL;
}

void *arena_alloc(struct arena *arena, size_t size)
{
    size_t rounded = (size + ALIGNMENT - 1) & ~(ALIGNMENT - 1);
    if (rounded < size)
        return NULL;
    if (arena->cursor == NULL || (size_t)(arena->limit - arena->cursor) < rounded) {
        struct arena_block *b = block_take(arena->pool, rounded);
        if (b == NULL)
            return NULL;
        b->next = arena->blocks;
        arena->blocks = b;
        arena->cursor = (char *)b->data;
        arena->limit = (char *)b->data + b->size;
    }
    void *p = arena->cursor;
    arena->cursor += rounded;
    return p;
}

char *arena_strndup(struct arena *arena, const char *s, size_t len)
{
    char *p = arena_alloc(arena, len + 1);
    if (p == NULL)
        return NULL;
    memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

void *arena_grow(struct arena *arena, void *old, size_t old_size, size_t new_size)
{
    size_t old_rounded = (old_size + ALIGNMENT - 1) & ~(ALIGNMENT - 1);
    size_t new_rounded = (new_size + ALIGNMENT - 1) & ~(ALIGNMENT - 1);
    if (old != NULL && (char *)old + old_rounded == arena->cursor &&
        (size_t)(arena->limit - (char *)old) >= new_rounded) {
        arena->cursor = (char *)old + new_rounded;
        return old;
    }
    void *p = arena_alloc(arena, new_size);
    if (p != NULL && old != NULL)
        memcpy(p, old, old_size < new_size ? old_size : new_size);
    return p;
}

void arena_reset(struct arena *arena)
{
    while (arena->blocks != NULL) {
        struct arena_block *b = arena->blocks;
        arena->blocks = b->next;
        block_give(arena->pool, b);
    }
    arena->cursor = NULL;
    arena->limit = NULL;
}
