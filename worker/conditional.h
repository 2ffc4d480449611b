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
    CONDITIONAL_RANGE_ONE,           /* send ranges->first[0]..last[0] as 206 */
    CONDITIONAL_RANGE_MANY,          /* a 206 of multipart/byteranges, in request order */
    CONDITIONAL_RANGE_UNSATISFIABLE, /* 416 */
};

/* More ranges than this in one request are served whole (Apache's
 * MaxRanges, nginx's max_ranges: many tiny parts cost the server far more
 * than the client). */
#define CONDITIONAL_RANGES_MAX 16

/* The satisfiable ranges of a Range field, inclusive and clamped to the
 * representation. */
struct conditional_ranges {
    size_t count;
    uint64_t first[CONDITIONAL_RANGES_MAX];
    uint64_t last[CONDITIONAL_RANGES_MAX];
};

/* The Range to serve, after If-Range. Only GET gets ranges (section 14.2)
 * and an empty representation has no byte to select. Specs that select
 * nothing are dropped (416 when none is left); a syntax error anywhere
 * ignores the field. Ranges that together ask for more bytes than the
 * representation has (overlaps, repeats: nginx's rule against range
 * abuse, section 14.2's "MAY ignore") or more than CONDITIONAL_RANGES_MAX
 * of them are served whole. */
enum conditional_range conditional_range(const struct exchange *ex,
                                         const struct conditional_validators *rep,
                                         struct conditional_ranges *ranges);

/* An HTTP-date in any of the three forms recipients must accept (section
 * 5.6.7): IMF-fixdate, RFC 850 and asctime. */
bool http_date_parse(const char *s, size_t len, time_t *out);

#endif
