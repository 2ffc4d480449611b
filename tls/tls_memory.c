/*
 * tls_memory.c - OpenSSL's blocks from the slab; see tls_memory.h.
 */
#include <openssl/crypto.h>

#include "common/slab.h"
#include "tls/tls_memory.h"

static void *memory_malloc(size_t size, const char *file, int line)
{
    (void)file;
    (void)line;
    return slab_malloc(size);
}

static void *memory_realloc(void *p, size_t size, const char *file, int line)
{
    (void)file;
    (void)line;
    return slab_realloc(p, size);
}

static void memory_free(void *p, const char *file, int line)
{
    (void)file;
    (void)line;
    slab_free(p);
}

bool tls_memory_install(void)
{
    return CRYPTO_set_mem_functions(memory_malloc, memory_realloc, memory_free) == 1;
}
