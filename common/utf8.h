/*
 * utf8.h - how long a valid UTF-8 sequence is (RFC 3629), for writers of
 * formats that must stay valid UTF-8 whatever bytes they are handed: the
 * status JSON and the Prometheus label values, whose strings come from the
 * shm segment.
 */
#ifndef SAKER_COMMON_UTF8_H
#define SAKER_COMMON_UTF8_H

#include <stddef.h>

/* The length (1 to 4) of the valid UTF-8 sequence at s, which has n > 0
 * bytes, or 0 when it does not start with one: overlong forms,
 * surrogates, code points past U+10FFFF and cut sequences are invalid. */
size_t utf8_sequence(const unsigned char *s, size_t n);

#endif
