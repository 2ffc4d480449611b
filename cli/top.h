/*
 * top.h - `sakerctl top`'s model: shm samples, the rates between two of
 * them, and the frame that shows them.
 *
 * A sample is a copy of the header, the totals, the route statistics and
 * every live slot taken at one monotonic time, plus each worker's CPU time
 * (utime+stime in clock ticks, from /proc/<pid>/stat; reading /proc never
 * touches the worker). Per route, the frame shows the requests per second
 * and the median and 99th percentile of the durations of the interval,
 * from the difference of the two samples' histograms.
 * Rates are differences between two samples over the time between them;
 * a worker counts only when the same pid held the same slot in both
 * (a respawned worker's counters start again at zero). Everything here is
 * pure given its inputs, so the unit tests drive it with made-up samples;
 * top.c owns the terminal and the loop.
 */
#ifndef SAKER_CLI_TOP_H
#define SAKER_CLI_TOP_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "shm/shm.h"

#define TOP_TICKS_UNKNOWN UINT64_MAX

struct top_worker {
    unsigned slot;
    struct shm_slot s;
    uint64_t cpu_ticks; /* TOP_TICKS_UNKNOWN when /proc did not say */
};

struct top_sample {
    uint64_t at_ms; /* CLOCK_MONOTONIC */
    struct shm_header header;
    struct shm_totals totals;
    struct shm_route_totals routes[SHM_MAX_ROUTES];
    unsigned count;     /* live workers, in slot order */
    unsigned capacity;
    struct top_worker *workers;
};

/* Per-second rates between two samples; known is false for a worker that
 * was not in the earlier sample (or when there is none). */
struct top_rates {
    bool known;
    double requests, accepted, bytes_in, bytes_out;
    double responses[5];  /* 1xx..5xx per second */
    double cpu_percent;   /* of one CPU; negative when unknown */
};

/* Returns utime+stime of pid in clock ticks, or TOP_TICKS_UNKNOWN. */
typedef uint64_t top_ticks_fn(pid_t pid);

/* Takes a sample of shm at now_ms; sample must be zeroed before the first
 * use (its buffer grows as needed). SK_OK, or SK_ERROR when out of memory. */
int top_sample_take(const struct shm *shm, uint64_t now_ms, top_ticks_fn *ticks,
                    struct top_sample *sample);
void top_sample_free(struct top_sample *sample);

/* Rates of counters b over a, dt_ms apart (dt_ms 0 gives known = false).
 * Counters that went backwards (a slot reused) count as 0. */
void top_rates_compute(const uint64_t *a, const uint64_t *b, uint64_t dt_ms,
                       struct top_rates *out);
/* CPU percent of one CPU between two tick readings; -1 when either is
 * unknown or dt_ms is 0. */
double top_cpu_percent(uint64_t ticks_a, uint64_t ticks_b, uint64_t dt_ms, long ticks_per_s);

/* Writes one frame: an instance line with totals and rates, the last
 * reload, then one row per worker of cur. prev may be NULL (first frame:
 * rates shown as "-"). wall_now is time(NULL), for the uptime. */
void top_frame_write(FILE *out, const struct top_sample *prev, const struct top_sample *cur,
                     long ticks_per_s, int64_t wall_now);

#endif
