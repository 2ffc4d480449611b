/*
 * tls_memory.h - OpenSSL's blocks from the slab (common/slab.h).
 *
 * An idle connection over TLS keeps 37 blocks of OpenSSL's, 14 KB; most
 * are small, and malloc's header and rounding are 5 % of them. Installed
 * first thing in main: OpenSSL takes allocation functions only before its
 * first allocation. The slab is off until a worker enables it, so the
 * master's blocks (configs, contexts, certificates) are malloc's as
 * before, and a worker frees either kind.
 */
#ifndef SAKER_TLS_TLS_MEMORY_H
#define SAKER_TLS_TLS_MEMORY_H

#include <stdbool.h>

/* False when OpenSSL has already allocated (it then keeps malloc). */
bool tls_memory_install(void);

#endif
