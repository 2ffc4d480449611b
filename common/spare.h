/*
 * spare.h - a free list of blocks of one standard size, per process.
 *
 * A connection that fills and empties a buffer once per batch (the output
 * queue, TLS records) would otherwise call malloc and free each time;
 * spare blocks are taken back instead. Blocks of another size (a buffer
 * that had to grow) are freed, and at most `keep` blocks are kept, so an
 * idle worker holds little. Not thread-safe: a worker is one thread.
 */
#ifndef SAKER_COMMON_SPARE_H
#define SAKER_COMMON_SPARE_H

#include <stdbool.h>
#include <stddef.h>

#define SPARE_LIST_MAX 64

struct spare_list {
    void *items[SPARE_LIST_MAX];
    size_t count;
    size_t keep; /* at most SPARE_LIST_MAX */
};

/* A spare block if there is one, else malloc(size). */
void *spare_take(struct spare_list *s, size_t size);
/* Keeps p when it is of the standard size and there is room, else frees
 * it. p may be NULL. */
void spare_give(struct spare_list *s, void *p, bool standard);
/* Frees every kept block: a quiet process gives its memory back. */
void spare_free_all(struct spare_list *s);

#endif
