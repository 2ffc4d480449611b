/*
 * h2_mem.c - a session's nghttp2 allocator: its page-sized blocks mapped
 * on their own, and given back to the kernel while the connection idles;
 * see h2_stream.h.
 *
 * nghttp2 gives every session a 16 KiB frame buffer and a 4 KiB stream
 * map for its whole life. From malloc, both would stay resident on an
 * idle connection (8 KiB of the 29 an idle HTTP/2 connection over TLS
 * cost). Mapped on their own, page-aligned and without a header, a page
 * of them can be dropped with MADV_DONTNEED, after which it reads as
 * zeros and costs nothing until it is written again:
 *
 *   - the frame buffer, once nghttp2 has nothing to send: every frame is
 *     written into it from its start, nothing is read from it after
 *     nghttp2_session_mem_send has handed the frame out;
 *   - any page that is all zeros anyway (the stream map with no stream,
 *     whatever nghttp2 keeps empty), which is dropped without changing
 *     a byte of what nghttp2 reads.
 *
 * Smaller blocks come from malloc as they are; a mapped block is known
 * by its address, in the session's short table.
 *
 * Every request makes and frees a handful of small blocks in nghttp2
 * (its stream, the response's queued item and fields, decoded field
 * values), and a read of 32 requests makes 32 of each size before any
 * is freed: past the 7 per size glibc's per-thread cache holds, each
 * went through malloc's bins, about 170 instructions a block. Freed
 * small blocks are kept on a list per malloc chunk size instead (a
 * worker is one thread), up to H2_CACHE_BYTES for all sessions of the
 * worker; a block is reused only for an ask that fits its usable size.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <malloc.h>
#include <string.h>
#include <sys/mman.h>

#include "worker/h2_stream.h"

#define H2_MAP_MIN 4096
#define H2_PAGE 4096
/* A block this large, allocated while the session is made: its frame buffer. */
#define H2_FRAMEBUF_MIN 16384

/* malloc's chunks: 16-byte steps, 8 bytes of them its own (x86-64 and
 * aarch64 glibc); a block whose usable size says otherwise is not kept. */
#define H2_CHUNK_STEP 16
#define H2_CHUNK_OWN 8
#define H2_CACHE_CLASSES 64 /* chunks up to 1 KiB */
#define H2_CACHE_BYTES (128 * 1024)

struct cached_block {
    struct cached_block *next;
};
static struct cached_block *cache[H2_CACHE_CLASSES + 1];
static size_t cache_bytes;

/* The list a chunk of this usable size goes to; 0: none. */
static size_t class_of_usable(size_t usable)
{
    size_t chunk = usable + H2_CHUNK_OWN;
    return chunk % H2_CHUNK_STEP == 0 && chunk / H2_CHUNK_STEP <= H2_CACHE_CLASSES
               ? chunk / H2_CHUNK_STEP : 0;
}

/* The list whose blocks fit size bytes: the chunk malloc would cut. */
static size_t class_of_size(size_t size)
{
    size_t chunk = (size + H2_CHUNK_OWN + H2_CHUNK_STEP - 1) & ~(size_t)(H2_CHUNK_STEP - 1);
    chunk = chunk < 2 * H2_CHUNK_STEP ? 2 * H2_CHUNK_STEP : chunk;
    return chunk / H2_CHUNK_STEP <= H2_CACHE_CLASSES ? chunk / H2_CHUNK_STEP : 0;
}

static void *cache_take(size_t size)
{
    size_t k = class_of_size(size);
    struct cached_block *b = k != 0 ? cache[k] : NULL;
    if (b == NULL)
        return malloc(size);
    cache[k] = b->next;
    cache_bytes -= k * H2_CHUNK_STEP;
    return b;
}

static void cache_give(void *p)
{
    size_t k = class_of_usable(malloc_usable_size(p));
    if (k == 0 || cache_bytes + k * H2_CHUNK_STEP > H2_CACHE_BYTES) {
        free(p);
        return;
    }
    struct cached_block *b = p;
    b->next = cache[k];
    cache[k] = b;
    cache_bytes += k * H2_CHUNK_STEP;
}

static struct h2_mapping *mapping_of(struct h2_mem *m, const void *p)
{
    for (size_t i = 0; i < H2_MAPPINGS_MAX; i++)
        if (m->maps[i].base == p)
            return &m->maps[i];
    return NULL;
}

static size_t mapping_len(const struct h2_mapping *map)
{
    return map->len_frames & ~(size_t)1;
}

/* A block of whole pages of its own; NULL when the table is full (malloc
 * then) or the kernel refuses. A fresh mapping is zeroed. */
static void *mem_map(struct h2_mem *m, size_t size)
{
    struct h2_mapping *slot = mapping_of(m, NULL);
    if (slot == NULL)
        return NULL;
    size_t len = (size + H2_PAGE - 1) & ~(size_t)(H2_PAGE - 1);
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    slot->base = p;
    slot->len_frames = len | (m->creating && size >= H2_FRAMEBUF_MIN);
    return p;
}

static void *h2_malloc(size_t size, void *user)
{
    void *p = size >= H2_MAP_MIN ? mem_map(user, size) : NULL;
    return p != NULL ? p : cache_take(size);
}

static void h2_mem_free(void *p, void *user)
{
    if (p == NULL)
        return;
    /* A mapping starts a page; a malloc block seldom does. */
    struct h2_mapping *map = ((uintptr_t)p & (H2_PAGE - 1)) == 0 ? mapping_of(user, p) : NULL;
    if (map == NULL) {
        cache_give(p);
        return;
    }
    munmap(map->base, mapping_len(map));
    map->base = NULL;
    map->len_frames = 0;
}

static void *h2_calloc(size_t count, size_t size, void *user)
{
    if (size != 0 && count > SIZE_MAX / size)
        return NULL;
    if (count * size >= H2_MAP_MIN) {
        void *p = mem_map(user, count * size);
        if (p != NULL)
            return p;
    }
    void *p = cache_take(count * size);
    return p != NULL ? memset(p, 0, count * size) : NULL;
}

/* A mapped block moves (to a mapping or to malloc), copying the whole
 * pages it had: past what was asked they read as zeros. */
static void *h2_realloc(void *p, size_t size, void *user)
{
    struct h2_mapping *map =
        p != NULL && ((uintptr_t)p & (H2_PAGE - 1)) == 0 ? mapping_of(user, p) : NULL;
    if (map == NULL && size < H2_MAP_MIN)
        return realloc(p, size);
    void *moved = h2_malloc(size, user);
    if (moved == NULL || p == NULL)
        return moved;
    size_t old = map != NULL ? mapping_len(map) : malloc_usable_size(p);
    memcpy(moved, p, old < size ? old : size);
    h2_mem_free(p, user);
    return moved;
}

void h2_mem_init(struct h2_mem *m)
{
    memset(m, 0, sizeof *m);
    m->mem = (nghttp2_mem){.mem_user_data = m, .malloc = h2_malloc, .free = h2_mem_free,
                           .calloc = h2_calloc, .realloc = h2_realloc};
}

static bool page_zero(const unsigned char *page)
{
    static const unsigned char zeros[256];
    for (size_t off = 0; off < H2_PAGE; off += sizeof zeros)
        if (memcmp(page + off, zeros, sizeof zeros) != 0)
            return false;
    return true;
}

/* The frame buffer whole; other blocks, their pages of zeros (reading
 * a page never touched maps the kernel's shared zero page, which is
 * not counted as the process's). */
static void mapping_trim(struct h2_mapping *map)
{
    if (map->len_frames & 1) {
        madvise(map->base, mapping_len(map), MADV_DONTNEED);
        return;
    }
    for (size_t off = 0; off < mapping_len(map); off += H2_PAGE) {
        unsigned char *page = (unsigned char *)map->base + off;
        if (page_zero(page))
            madvise(page, H2_PAGE, MADV_DONTNEED);
    }
}

void h2_mem_trim(struct h2_mem *m)
{
    for (size_t i = 0; i < H2_MAPPINGS_MAX; i++)
        if (m->maps[i].base != NULL)
            mapping_trim(&m->maps[i]);
}
