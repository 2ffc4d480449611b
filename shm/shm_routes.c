/*
 * shm_routes.c - per-route statistics: recording, quantiles, metrics;
 * see shm_routes.h.
 */
#include "shm/shm_routes.h"
#include "shm/shm_metrics.h"

#include <inttypes.h>

const uint64_t shm_duration_bounds_us[SHM_DURATION_BUCKETS - 1] = SHM_DURATION_BOUNDS_US;

unsigned shm_duration_bucket(uint64_t duration_us)
{
    unsigned b = 0;
    while (b < SHM_DURATION_BUCKETS - 1 && duration_us > shm_duration_bounds_us[b])
        b++;
    return b;
}

static void add(_Atomic uint64_t *counter, uint64_t n)
{
    /* One writer: a relaxed load and store, no locked add. */
    uint64_t v = atomic_load_explicit(counter, memory_order_relaxed);
    atomic_store_explicit(counter, v + n, memory_order_relaxed);
}

void shm_route_observe(struct shm_route_stats *stats, int status, uint64_t duration_us)
{
    add(&stats->buckets[shm_duration_bucket(duration_us)], 1);
    add(&stats->duration_us, duration_us);
    int class = status / 100 - 1;
    if (class >= 0 && class < 5)
        add(&stats->responses[class], 1);
}

uint64_t shm_route_count(const struct shm_route_totals *r)
{
    uint64_t n = 0;
    for (int b = 0; b < SHM_DURATION_BUCKETS; b++)
        n += r->buckets[b];
    return n;
}

double shm_duration_quantile(const uint64_t *buckets, double q)
{
    uint64_t total = 0, below = 0;
    for (int b = 0; b < SHM_DURATION_BUCKETS; b++)
        total += buckets[b];
    if (total == 0)
        return -1;
    double rank = q * (double)total;
    for (int b = 0; b < SHM_DURATION_BUCKETS - 1; b++) {
        if ((double)(below + buckets[b]) >= rank && buckets[b] > 0) {
            double low = b == 0 ? 0 : (double)shm_duration_bounds_us[b - 1];
            double high = (double)shm_duration_bounds_us[b];
            return (low + (high - low) * (rank - (double)below) / (double)buckets[b]) / 1e6;
        }
        below += buckets[b];
    }
    return (double)shm_duration_bounds_us[SHM_DURATION_BUCKETS - 2] / 1e6;
}

static void write_series(FILE *out, const char *name, const char *label)
{
    fprintf(out, "%s{route=\"", name);
    shm_metrics_label_value(out, label, SHM_ROUTE_LABEL_MAX);
    fputc('"', out);
}

/* Bounds as Prometheus writes them: "0.0005", "1", "2.5". */
static void write_histogram(FILE *out, const char *label, const struct shm_route_totals *r)
{
    uint64_t cumulative = 0;
    for (int b = 0; b < SHM_DURATION_BUCKETS; b++) {
        cumulative += r->buckets[b];
        write_series(out, "saker_request_duration_seconds_bucket", label);
        if (b < SHM_DURATION_BUCKETS - 1)
            fprintf(out, ",le=\"%g\"} %" PRIu64 "\n", (double)shm_duration_bounds_us[b] / 1e6,
                    cumulative);
        else
            fprintf(out, ",le=\"+Inf\"} %" PRIu64 "\n", cumulative);
    }
    write_series(out, "saker_request_duration_seconds_sum", label);
    fprintf(out, "} %.6f\n", (double)r->duration_us / 1e6);
    write_series(out, "saker_request_duration_seconds_count", label);
    fprintf(out, "} %" PRIu64 "\n", cumulative);
}

void shm_routes_write_metrics(const struct shm *shm, const struct shm_header *h, FILE *out)
{
    static const char *const classes[] = {"1xx", "2xx", "3xx", "4xx", "5xx"};
    struct shm_route_totals routes[SHM_MAX_ROUTES];
    if (shm_snapshot_routes(shm, routes) != SK_OK) {
        fputs("# saker: route totals were being folded on every read; omitted\n", out);
        return;
    }
    fputs("# HELP saker_request_duration_seconds Request duration per route, first byte in "
          "to last byte out.\n# TYPE saker_request_duration_seconds histogram\n", out);
    for (int e = 0; e < SHM_MAX_ROUTES; e++)
        if (h->routes[e].label[0] != '\0')
            write_histogram(out, h->routes[e].label, &routes[e]);
    fputs("# HELP saker_route_responses_total Responses per route, by status class.\n"
          "# TYPE saker_route_responses_total counter\n", out);
    for (int e = 0; e < SHM_MAX_ROUTES; e++)
        for (int c = 0; c < 5 && h->routes[e].label[0] != '\0'; c++) {
            write_series(out, "saker_route_responses_total", h->routes[e].label);
            fprintf(out, ",class=\"%s\"} %" PRIu64 "\n", classes[c], routes[e].responses[c]);
        }
}
