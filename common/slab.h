/*
 * slab.h - small blocks without malloc's header: what a worker's idle
 * connections keep in OpenSSL and nghttp2.
 *
 * An idle HTTP/2 connection over TLS keeps about 57 blocks, most of them
 * small (OpenSSL's locks, key shares and lists, nghttp2's table entries).
 * From malloc each costs an 8-byte header and rounds up to a 16-byte
 * step: 780 B a connection. Its two large ones (OpenSSL's SSL, nghttp2's
 * session) cost more: in malloc's heap they sit among the handshake's
 * temporaries, and the holes those leave behind stay resident (260 B a
 * connection). Here a block of up to SLAB_BLOCK_MAX bytes comes from a
 * run of blocks of one size, in 8-byte steps, with no header: the run is
 * found from the block's address. A block is aligned to 16 bytes when its
 * size is a multiple of 16 (every type that needs 16 has such a size),
 * else to 8.
 *
 * Off until slab_enable, which a worker calls once after fork; never on
 * under AddressSanitizer, which must see every block. While off, and for
 * larger blocks, every call is malloc's. The thread that enabled the slab
 * owns its runs: blocks other threads ask for are malloc's, and a slab
 * block another thread frees is handed to the owner's next call.
 *
 * A run whose blocks are all free keeps its size until slab_trim (the
 * quiet worker's trim) gives its pages back to the kernel.
 */
#ifndef SAKER_COMMON_SLAB_H
#define SAKER_COMMON_SLAB_H

#include <stdbool.h>
#include <stddef.h>

#define SLAB_BLOCK_MAX 8192

/* Reserves the slab's address space and makes the calling thread its
 * owner. False (and the slab stays off) when the kernel refuses, or in a
 * sanitizer build. */
bool slab_enable(void);
/* malloc, free and realloc, for blocks of either kind. */
void *slab_malloc(size_t size);
void slab_free(void *p);
void *slab_realloc(void *p, size_t size);
/* slab_malloc, zeroed; NULL when count * size overflows. */
void *slab_calloc(size_t count, size_t size);
/* The bytes p may hold (malloc_usable_size for malloc's). */
size_t slab_usable_size(void *p);
/* Gives back the pages of runs with no block in use. */
void slab_trim(void);

/* What the slab holds, for tests. */
struct slab_stats {
    size_t runs_in_use; /* runs with a size, whatever their blocks */
    size_t blocks_live;
};
void slab_stats(struct slab_stats *out);

#endif
