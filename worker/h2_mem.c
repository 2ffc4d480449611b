/*
 * h2_mem.c - nghttp2's allocator: its large blocks mapped on their own;
 * see h2_stream.h.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "worker/h2_stream.h"

/*
 * nghttp2 gives every session a 16 KiB frame buffer for its whole life,
 * of which small frames touch the first page. From malloc, a buffer
 * reused after another connection is all resident, so an idle session
 * would hold 16 KiB; mapped on its own, it holds the pages frames have
 * touched, and munmap gives it back whole. Smaller allocations stay with
 * malloc. Every block starts with a header saying which it is.
 */
#define H2_MAP_MIN (8 * 1024)

struct mem_header {
    size_t size;          /* what the caller asked for */
    size_t mapped;        /* the mapping's length; 0: from malloc */
};
#define MEM_HEADER sizeof(struct mem_header) /* 16: keeps malloc's alignment */

static struct mem_header *header_of(void *p)
{
    return (struct mem_header *)((char *)p - MEM_HEADER);
}

static void *mem_alloc(size_t size, bool zeroed)
{
    if (size > SIZE_MAX - MEM_HEADER - 4096)
        return NULL;
    struct mem_header *h;
    size_t mapped = 0;
    if (size >= H2_MAP_MIN) {
        mapped = (size + MEM_HEADER + 4095) & ~(size_t)4095;
        h = mmap(NULL, mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (h == MAP_FAILED)
            return NULL;
    } else if ((h = zeroed ? calloc(1, size + MEM_HEADER) : malloc(size + MEM_HEADER)) == NULL) {
        return NULL;
    }
    h->size = size;
    h->mapped = mapped;
    return (char *)h + MEM_HEADER;
}

static void *h2_malloc(size_t size, void *user) { (void)user; return mem_alloc(size, false); }

static void h2_mem_free(void *p, void *user)
{
    (void)user;
    if (p == NULL)
        return;
    struct mem_header *h = header_of(p);
    if (h->mapped != 0)
        munmap(h, h->mapped);
    else
        free(h);
}

static void *h2_calloc(size_t count, size_t size, void *user)
{
    (void)user;
    if (size != 0 && count > SIZE_MAX / size)
        return NULL;
    return mem_alloc(count * size, true); /* a fresh mapping is zeroed */
}

static void *h2_realloc(void *p, size_t size, void *user)
{
    if (p == NULL)
        return h2_malloc(size, user);
    struct mem_header *h = header_of(p);
    if (h->mapped == 0 && size < H2_MAP_MIN) {
        struct mem_header *grown = realloc(h, size + MEM_HEADER);
        if (grown == NULL)
            return NULL;
        grown->size = size;
        return (char *)grown + MEM_HEADER;
    }
    void *moved = h2_malloc(size, user);
    if (moved == NULL)
        return NULL;
    memcpy(moved, p, h->size < size ? h->size : size);
    h2_mem_free(p, user);
    return moved;
}

static nghttp2_mem h2_mem = {
    .malloc = h2_malloc, .free = h2_mem_free, .calloc = h2_calloc, .realloc = h2_realloc};

nghttp2_mem *h2_memory(void)
{
    return &h2_mem;
}
