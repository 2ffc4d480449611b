/*
 * siphash.h - SipHash-2-4 (Aumasson and Bernstein, 2012): a keyed 64-bit
 * hash for tables whose keys come from the network, so that a client who
 * does not know the key cannot choose keys that collide.
 */
#ifndef SAKER_COMMON_SIPHASH_H
#define SAKER_COMMON_SIPHASH_H

#include <stddef.h>
#include <stdint.h>

/* The hash of len bytes of data under the 128-bit key (key[0] holds its
 * first eight bytes, little-endian, as the reference code reads them). */
uint64_t siphash24(const uint64_t key[2], const void *data, size_t len);

#endif
