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
 * Smaller blocks come from the worker's slab (common/slab.h), without
 * malloc's header: nghttp2's table entries and the values it keeps are
 * most of what an idle session holds besides the session itself. The
 * slab also keeps the blocks every request makes and frees (its stream,
 * the response's queued item and fields, decoded field values) on free
 * lists per size, so a read of 32 requests does not take 32 of each
 * through malloc's bins. A mapped block is known by its address, in the
 * session's short table.
 */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

#include "common/slab.h"
#include "worker/h2_stream.h"

#define H2_MAP_MIN 4096
#define H2_PAGE 4096
/* A block this large, allocated while the session is made: its frame buffer. */
#define H2_FRAMEBUF_MIN 16384

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
    return p != NULL ? p : slab_malloc(size);
}

static void h2_mem_free(void *p, void *user)
{
    if (p == NULL)
        return;
    /* A mapping starts a page; a malloc block seldom does. */
    struct h2_mapping *map = ((uintptr_t)p & (H2_PAGE - 1)) == 0 ? mapping_of(user, p) : NULL;
    if (map == NULL) {
        slab_free(p);
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
    void *p = slab_malloc(count * size);
    return p != NULL ? memset(p, 0, count * size) : NULL;
}

/* A mapped block moves (to a mapping or to malloc), copying the whole
 * pages it had: past what was asked they read as zeros. */
static void *h2_realloc(void *p, size_t size, void *user)
{
    struct h2_mapping *map =
        p != NULL && ((uintptr_t)p & (H2_PAGE - 1)) == 0 ? mapping_of(user, p) : NULL;
    if (map == NULL && size < H2_MAP_MIN)
        return slab_realloc(p, size);
    void *moved = h2_malloc(size, user);
    if (moved == NULL || p == NULL)
        return moved;
    size_t old = map != NULL ? mapping_len(map) : slab_usable_size(p);
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
