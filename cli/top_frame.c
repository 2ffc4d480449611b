/*
 * top_frame.c - samples, rates and frames for `sakerctl top`; see top.h.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/top.h"
#include "shm/shm_routes.h"

int top_sample_take(const struct shm *shm, uint64_t now_ms, top_ticks_fn *ticks,
                    struct top_sample *sample)
{
    unsigned n = shm->header->slot_count;
    if (sample->capacity < n) {
        struct top_worker *w = realloc(sample->workers, n * sizeof *w);
        if (w == NULL)
            return SK_ERROR;
        sample->workers = w;
        sample->capacity = n;
    }
    sample->at_ms = now_ms;
    /* SK_AGAIN leaves usable, clamped copies: a frame is still worth it. */
    shm_snapshot_header(shm, &sample->header);
    shm_snapshot_totals(shm, &sample->totals);
    shm_snapshot_routes(shm, sample->routes);
    sample->count = 0;
    for (unsigned i = 0; i < n; i++) {
        struct top_worker *w = &sample->workers[sample->count];
        shm_snapshot_slot(shm, i, &w->s);
        if (w->s.pid == 0)
            continue;
        w->slot = i;
        w->cpu_ticks = ticks != NULL ? ticks(w->s.pid) : TOP_TICKS_UNKNOWN;
        sample->count++;
    }
    return SK_OK;
}

void top_sample_free(struct top_sample *sample)
{
    free(sample->workers);
    memset(sample, 0, sizeof *sample);
}

static double per_second(uint64_t a, uint64_t b, uint64_t dt_ms)
{
    return b > a ? (double)(b - a) * 1000.0 / (double)dt_ms : 0.0;
}

void top_rates_compute(const uint64_t *a, const uint64_t *b, uint64_t dt_ms,
                       struct top_rates *out)
{
    memset(out, 0, sizeof *out);
    out->cpu_percent = -1;
    if (a == NULL || dt_ms == 0)
        return;
    out->known = true;
    out->requests = per_second(a[SHM_REQUESTS], b[SHM_REQUESTS], dt_ms);
    out->accepted = per_second(a[SHM_CONNECTIONS_ACCEPTED], b[SHM_CONNECTIONS_ACCEPTED], dt_ms);
    out->bytes_in = per_second(a[SHM_BYTES_IN], b[SHM_BYTES_IN], dt_ms);
    out->bytes_out = per_second(a[SHM_BYTES_OUT], b[SHM_BYTES_OUT], dt_ms);
    for (int i = 0; i < 5; i++)
        out->responses[i] =
            per_second(a[SHM_RESPONSES_1XX + i], b[SHM_RESPONSES_1XX + i], dt_ms);
}

double top_cpu_percent(uint64_t ticks_a, uint64_t ticks_b, uint64_t dt_ms, long ticks_per_s)
{
    if (ticks_a == TOP_TICKS_UNKNOWN || ticks_b == TOP_TICKS_UNKNOWN || dt_ms == 0 ||
        ticks_per_s <= 0 || ticks_b < ticks_a)
        return -1;
    return (double)(ticks_b - ticks_a) * 100000.0 / (double)ticks_per_s / (double)dt_ms;
}

/* ---- text ---------------------------------------------------------------- */

static const char *rate_text(const struct top_rates *r, double v, char *buf, size_t size)
{
    if (!r->known)
        return "-";
    snprintf(buf, size, "%.1f", v);
    return buf;
}

static const char *bytes_rate_text(const struct top_rates *r, double v, char *buf, size_t size)
{
    if (!r->known)
        return "-";
    /* Counters from shm may be anything: past 2^64 the cast is undefined. */
    cli_format_bytes(v + 0.5 < 0x1p64 ? (uint64_t)(v + 0.5) : UINT64_MAX, buf, size - 2);
    strcat(buf, "/s");
    return buf;
}

/* The share of 2xx..5xx among the interval's responses: "98/0/2/0". */
static const char *mix_text(const struct top_rates *r, char *buf, size_t size)
{
    double all = 0;
    for (int i = 0; i < 5; i++)
        all += r->responses[i];
    if (!r->known || all <= 0)
        return "-";
    snprintf(buf, size, "%.0f/%.0f/%.0f/%.0f", 100 * r->responses[1] / all,
             100 * r->responses[2] / all, 100 * r->responses[3] / all,
             100 * r->responses[4] / all);
    return buf;
}

static const char *cpu_text(double pct, char *buf, size_t size)
{
    if (pct < 0)
        return "-";
    snprintf(buf, size, "%.1f", pct);
    return buf;
}

static void write_instance(FILE *out, const struct top_sample *cur, int64_t wall_now)
{
    const struct shm_header *h = &cur->header;
    char version[SHM_VERSION_MAX + 1], up[32];
    fprintf(out, "saker %s  master pid %d  generation %" PRIu64 "  %s  up %s  %u workers live\n",
            cli_printable(h->server_version, sizeof h->server_version, version, sizeof version),
            h->master_pid, (uint64_t)h->generation, shm_instance_state_name(h->state),
            cli_format_duration(cli_seconds_between(wall_now, h->started_at), up, sizeof up),
            cur->totals.workers_live);
}

static void write_totals(FILE *out, const struct top_sample *prev, const struct top_sample *cur,
                         double cpu)
{
    struct top_rates r;
    char req[32], acc[32], in[32], o[32], mix[32], c[32];
    top_rates_compute(prev != NULL ? prev->totals.counters : NULL, cur->totals.counters,
                      prev != NULL ? cur->at_ms - prev->at_ms : 0, &r);
    fprintf(out, "total  %" PRIu64 " open  %s conn/s  %s req/s  in %s  out %s  "
            "2xx/3xx/4xx/5xx %% %s  cpu %s%%\n", cur->totals.connections_open,
            rate_text(&r, r.accepted, acc, sizeof acc), rate_text(&r, r.requests, req, sizeof req),
            bytes_rate_text(&r, r.bytes_in, in, sizeof in),
            bytes_rate_text(&r, r.bytes_out, o, sizeof o), mix_text(&r, mix, sizeof mix),
            cpu_text(cpu, c, sizeof c));
}

static void write_reload(FILE *out, const struct shm_header *h, int64_t wall_now)
{
    if (h->reload_count == 0)
        return;
    char ago[32], message[SHM_MESSAGE_MAX + 1];
    fprintf(out, "last reload %s in %" PRIu64 " ms, %s ago (%" PRIu64 " reloads)%s%s\n",
            h->reload_ok ? "ok" : "FAILED", h->reload_duration_ms,
            cli_format_duration(cli_seconds_between(wall_now, h->reload_finished_at), ago,
                                sizeof ago),
            h->reload_count, h->reload_message[0] ? ": " : "",
            cli_printable(h->reload_message, sizeof h->reload_message, message, sizeof message));
}

/* The same worker in the earlier sample: same slot and same pid. */
static const struct top_worker *find_prev(const struct top_sample *prev, unsigned *cursor,
                                          const struct top_worker *w)
{
    if (prev == NULL)
        return NULL;
    while (*cursor < prev->count && prev->workers[*cursor].slot < w->slot)
        (*cursor)++;
    if (*cursor < prev->count && prev->workers[*cursor].slot == w->slot &&
        prev->workers[*cursor].s.pid == w->s.pid)
        return &prev->workers[*cursor];
    return NULL;
}

static void worker_rates(const struct top_worker *p, const struct top_worker *w, uint64_t dt_ms,
                         long ticks_per_s, struct top_rates *r)
{
    uint64_t a[SHM_COUNTER_COUNT], b[SHM_COUNTER_COUNT];
    for (int i = 0; i < SHM_COUNTER_COUNT; i++) {
        a[i] = p != NULL ? p->s.counters[i] : 0;
        b[i] = w->s.counters[i];
    }
    top_rates_compute(p != NULL ? a : NULL, b, dt_ms, r);
    if (p != NULL)
        r->cpu_percent = top_cpu_percent(p->cpu_ticks, w->cpu_ticks, dt_ms, ticks_per_s);
}

static void write_worker(FILE *out, const struct top_worker *w, const struct top_rates *r,
                         uint64_t now_ms)
{
    char cpu[32], req[32], in[32], o[32], mix[32], age[32];
    fprintf(out, "%4u %7d %4" PRIu64 " %-9s %6s %6" PRIu64 " %9s %11s %11s %-16s %9s\n",
            w->slot, (int)w->s.pid, (uint64_t)w->s.generation, shm_worker_state_name(w->s.state),
            cpu_text(r->cpu_percent, cpu, sizeof cpu), (uint64_t)w->s.connections_open,
            rate_text(r, r->requests, req, sizeof req),
            bytes_rate_text(r, r->bytes_in, in, sizeof in),
            bytes_rate_text(r, r->bytes_out, o, sizeof o), mix_text(r, mix, sizeof mix),
            cli_format_age(w->s.heartbeat_ms, now_ms, age, sizeof age));
}

/* A duration for the route table: "0.42ms", "3.1ms", "120ms", "1.25s". */
static const char *seconds_text(double s, char *buf, size_t size)
{
    if (s < 0)
        snprintf(buf, size, "-");
    else if (s < 0.001)
        snprintf(buf, size, "%.2fms", s * 1000);
    else if (s < 0.01)
        snprintf(buf, size, "%.1fms", s * 1000);
    else if (s < 1)
        snprintf(buf, size, "%.0fms", s * 1000);
    else
        snprintf(buf, size, "%.2fs", s);
    return buf;
}

/* One route's row: its requests of the interval, their p50 and p99. */
static void write_route(FILE *out, const char *label, const struct shm_route_totals *a,
                        const struct shm_route_totals *b, uint64_t dt_ms)
{
    uint64_t buckets[SHM_DURATION_BUCKETS], n = 0;
    struct top_rates r = {.known = true};
    char name[SHM_ROUTE_LABEL_MAX + 1], req[32], p50[32], p99[32], mix[32];
    for (int i = 0; i < SHM_DURATION_BUCKETS; i++)
        n += buckets[i] = b->buckets[i] > a->buckets[i] ? b->buckets[i] - a->buckets[i] : 0;
    for (int c = 0; c < 5; c++)
        r.responses[c] = (double)(b->responses[c] - a->responses[c]);
    fprintf(out, "%-32s %9s %9s %9s %-16s\n",
            cli_printable(label, SHM_ROUTE_LABEL_MAX, name, sizeof name),
            rate_text(&r, (double)n * 1000.0 / (double)dt_ms, req, sizeof req),
            seconds_text(shm_duration_quantile(buckets, 0.5), p50, sizeof p50),
            seconds_text(shm_duration_quantile(buckets, 0.99), p99, sizeof p99),
            mix_text(&r, mix, sizeof mix));
}

/* The routes that answered in the interval; none before the second sample. */
static void write_routes(FILE *out, const struct top_sample *prev, const struct top_sample *cur)
{
    uint64_t dt = prev != NULL ? cur->at_ms - prev->at_ms : 0;
    bool header = false;
    for (int e = 0; prev != NULL && dt > 0 && e < SHM_MAX_ROUTES; e++) {
        const char *label = cur->header.routes[e].label;
        if (label[0] == '\0' ||
            shm_route_count(&cur->routes[e]) <= shm_route_count(&prev->routes[e]))
            continue;
        if (!header)
            fprintf(out, "\n%-32s %9s %9s %9s %-16s\n", "ROUTE", "REQ/S", "P50", "P99",
                    "2XX/3XX/4XX/5XX%");
        header = true;
        write_route(out, label, &prev->routes[e], &cur->routes[e], dt);
    }
}

void top_frame_write(FILE *out, const struct top_sample *prev, const struct top_sample *cur,
                     long ticks_per_s, int64_t wall_now)
{
    uint64_t dt = prev != NULL ? cur->at_ms - prev->at_ms : 0;
    struct top_rates *rates = calloc(cur->count ? cur->count : 1, sizeof *rates);
    double cpu = -1;
    unsigned cursor = 0;
    for (unsigned i = 0; rates != NULL && i < cur->count; i++) {
        const struct top_worker *p = find_prev(prev, &cursor, &cur->workers[i]);
        worker_rates(p, &cur->workers[i], dt, ticks_per_s, &rates[i]);
        if (rates[i].cpu_percent >= 0)
            cpu = (cpu < 0 ? 0 : cpu) + rates[i].cpu_percent;
    }
    write_instance(out, cur, wall_now);
    write_totals(out, prev, cur, cpu);
    write_reload(out, &cur->header, wall_now);
    fprintf(out, "\n%4s %7s %4s %-9s %6s %6s %9s %11s %11s %-16s %9s\n", "SLOT", "PID", "GEN",
            "STATE", "CPU%", "OPEN", "REQ/S", "IN/S", "OUT/S", "2XX/3XX/4XX/5XX%", "HEARTBEAT");
    for (unsigned i = 0; rates != NULL && i < cur->count; i++)
        write_worker(out, &cur->workers[i], &rates[i], cur->at_ms);
    free(rates);
    write_routes(out, prev, cur);
}
