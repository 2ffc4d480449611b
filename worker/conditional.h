/*
 * conditional.h - conditional and range requests against one
 * representation (RFC 9110 sections 13 and 14), for handlers that know
 * their representation's validators (static files today).
 *
 * Pure: reads the exchange's request fields, never responds. The handler
 * sends what these decide: 304 or 412, a 206 with Content-Range, or a 416.
 */
#ifndef SAKER_WORKER_CONDITIONAL_H
#define SAKER_WORKER_CONDITIONAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "worker/exchange.h"

/* What the response says of its representation. */
struct conditional_validators {
    time_t last_modified; /* as sent in Last-Modified: never in the future */
    const char *etag;     /* the strong tag, quotes included */
    size_t etag_len;
    uint64_t size;        /* the whole representation, in bytes */
};

/* 0 to go on, or 304 / 412 to answer instead: steps 1-4 of section
 * 13.2.2. If-None-Match and If-Modified-Since give 304 (only GET and HEAD
 * are evaluated). An invalid date makes its field ignored (13.1.3). */
int conditional_preconditions(const struct exchange *ex, const struct conditional_validators *rep);

enum conditional_range {
    CONDITIONAL_RANGE_NONE,          /* send it whole (no Range, or one ignored) */
    CONDITIONAL_RANGE_ONE,           /* send [first, last] as 206 */
    CONDITIONAL_RANGE_UNSATISFIABLE, /* 416 */
};

/* The Range to serve, after If-Range. Only GET gets ranges (section 14.2),
 * an empty representation has no byte to select, and more than one range
 * is served whole: a server may ignore Range, and multipart/byteranges is
 * rarely worth its cost. */
enum conditional_range conditional_range(const struct exchange *ex,
                                         const struct conditional_validators *rep,
                                         uint64_t *first, uint64_t *last);

/* An HTTP-date in any of the three forms recipients must accept (section
 * 5.6.7): IMF-fixdate, RFC 850 and asctime. */
bool http_date_parse(const char *s, size_t len, time_t *out);

#endif
