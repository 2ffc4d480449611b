/*
 * clock.h - cached time and the cached HTTP Date header value.
 *
 * The worker refreshes the cache once per event-loop turn batch (and its
 * heartbeat once a second), so the request path reads time without a system
 * call. All functions are per process; nothing here is thread-safe.
 */
#ifndef SAKER_COMMON_CLOCK_H
#define SAKER_COMMON_CLOCK_H

#include <stdint.h>
#include <time.h>

#define CLOCK_HTTP_DATE_LEN 29 /* "Sun, 06 Nov 1994 08:49:37 GMT" */

/* Reads the clocks and, when the second changed, re-renders the Date. */
void clock_update(void);
/* Milliseconds of CLOCK_MONOTONIC at the last clock_update(). */
uint64_t clock_monotonic_ms(void);
/* Wall-clock seconds at the last clock_update(). */
time_t clock_wall_seconds(void);
/* The IMF-fixdate of the last update, CLOCK_HTTP_DATE_LEN chars, NUL-ended. */
const char *clock_http_date(void);
/* Renders t as an IMF-fixdate into out (at least CLOCK_HTTP_DATE_LEN + 1). */
void clock_format_http_date(time_t t, char *out);
/* A fresh CLOCK_MONOTONIC reading in ms, bypassing the cache. */
uint64_t clock_now_monotonic_ms(void);

/* Refreshes the monotonic cache only (one clock_gettime from the vDSO,
 * no system call): a worker does it once per read, so what is parsed
 * from those bytes is stamped with when they arrived. */
void clock_touch(void);
/* Microseconds of CLOCK_MONOTONIC at the last clock_update or clock_touch. */
uint64_t clock_monotonic_us(void);
/* A fresh CLOCK_MONOTONIC reading in microseconds. */
uint64_t clock_now_monotonic_us(void);

#endif
