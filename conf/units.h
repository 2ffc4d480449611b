/*
 * units.h - sizes and durations as written in the config.
 *
 * Sizes: a non-negative integer with an optional unit B, KB, MB, GB, TB
 * (powers of 1000, as Kestrel's byte counts are written) or KiB, MiB, GiB,
 * TiB (powers of 1024); case-insensitive; "30MB", "8KiB", "100".
 * Durations: an integer with an optional unit ms, s, m, h, d; a bare number
 * is seconds; "500ms", "30s", "2m", "1h". Overflow is an error.
 */
#ifndef SAKER_CONF_UNITS_H
#define SAKER_CONF_UNITS_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

/* Parses a size into bytes. SK_OK or SK_ERROR with "expected a size ...". */
int units_parse_size(const char *text, uint64_t *bytes, struct err *err);
/* Parses a duration into milliseconds. SK_OK or SK_ERROR. */
int units_parse_duration(const char *text, uint64_t *milliseconds, struct err *err);

/* ms as text units_parse_duration reads back: whole hours, else seconds,
 * else ms ("2h", "90s", "1500ms", "0s"). Returns buf. */
char *units_format_duration(uint64_t ms, char *buf, size_t size);

#endif
