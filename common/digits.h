/*
 * digits.h - numbers written into a buffer by hand, for the response path.
 *
 * printf was a measurable share of a small response (a status line, a
 * Content-Length, a Date, an ETag each); these write the digits and
 * return the end, with no NUL and no locale. The caller gives the room:
 * 20 bytes hold any decimal uint64_t, 16 any hexadecimal one.
 */
#ifndef SAKER_COMMON_DIGITS_H
#define SAKER_COMMON_DIGITS_H

#include <stdint.h>

/* n in decimal, without leading zeros. */
char *digits_decimal(char *p, uint64_t n);
/* n in decimal on exactly width digits, zero-padded (the high digits of a
 * wider n are dropped: callers bound it). */
char *digits_decimal_padded(char *p, unsigned n, int width);
/* n in lower-case hexadecimal, without leading zeros. */
char *digits_hex(char *p, uint64_t n);

#endif
