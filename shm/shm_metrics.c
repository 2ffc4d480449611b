/*
 * shm_metrics.c - the instance in Prometheus text exposition format 0.0.4.
 *
 * Every family gets "# HELP" and "# TYPE" lines, names start with saker_,
 * counters end in _total. Instance totals come from shm_snapshot_totals,
 * so they include exited workers and never go backwards; per-worker
 * families carry {slot="N",generation="G"} and come and go with workers.
 *
 * Depends only on shm, the clock and stdio: sakerctl prints this to stdout
 * and a worker can render it into an open_memstream() for a /metrics route.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "shm/shm_metrics.h"
#include "shm/shm_routes.h"
#include "shm/shm_upstreams.h"
#include "common/clock.h"
#include "common/utf8.h"

struct scalar {
    const char *name;
    const char *type; /* "counter" or "gauge" */
    const char *help;
    uint64_t value;
};

static void family(FILE *out, const char *name, const char *type, const char *help)
{
    fprintf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void write_scalars(FILE *out, const struct scalar *rows, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        family(out, rows[i].name, rows[i].type, rows[i].help);
        fprintf(out, "%s %" PRIu64 "\n", rows[i].name, rows[i].value);
    }
}

static void write_instance(FILE *out, const struct shm_header *h, const struct shm_totals *t)
{
    const struct scalar rows[] = {
        {"saker_up", "gauge", "1 when the instance's shared memory was read.", 1},
        {"saker_start_time_seconds", "gauge", "Start time of the master, Unix seconds.",
         (uint64_t)h->started_at},
        {"saker_generation", "gauge", "Worker generation now serving (one per reload).",
         h->generation},
        {"saker_workers", "gauge", "Workers starting, running or draining.", t->workers_live},
        {"saker_worker_starts_total", "counter", "Workers the master started.",
         h->worker_starts},
        {"saker_worker_deaths_total", "counter", "Workers that exited unasked.",
         h->worker_deaths},
        {"saker_worker_watchdog_kills_total", "counter",
         "Workers killed for a stalled heartbeat.", h->worker_watchdog_kills},
        {"saker_reloads_total", "counter", "Reloads attempted and finished.", h->reload_count},
        {"saker_last_reload_success", "gauge",
         "1 if the last reload (or the start) succeeded, else 0.", h->reload_ok ? 1 : 0},
    };
    write_scalars(out, rows, sizeof rows / sizeof rows[0]);
}

static void write_traffic(FILE *out, const struct shm_totals *t)
{
    const uint64_t *c = t->counters;
    const struct scalar rows[] = {
        {"saker_connections_accepted_total", "counter", "Connections accepted.",
         c[SHM_CONNECTIONS_ACCEPTED]},
        {"saker_connections_open", "gauge", "Connections open now.", t->connections_open},
        {"saker_requests_total", "counter", "Requests received.", c[SHM_REQUESTS]},
        {"saker_received_bytes_total", "counter", "Bytes read from clients.", c[SHM_BYTES_IN]},
        {"saker_sent_bytes_total", "counter", "Bytes written to clients.", c[SHM_BYTES_OUT]},
    };
    write_scalars(out, rows, sizeof rows / sizeof rows[0]);
}

static void write_responses(FILE *out, const struct shm_totals *t)
{
    static const char *const classes[] = {"1xx", "2xx", "3xx", "4xx", "5xx"};
    family(out, "saker_responses_total", "counter", "Responses sent, by status class.");
    for (int i = 0; i < 5; i++)
        fprintf(out, "saker_responses_total{class=\"%s\"} %" PRIu64 "\n", classes[i],
                t->counters[SHM_RESPONSES_1XX + i]);
}

static void write_rejections(FILE *out, const struct shm_totals *t)
{
    family(out, "saker_rejections_total", "counter",
           "Requests and connections refused, by reason.");
    for (int r = SHM_REJECT_FIRST; r < SHM_REJECT_END; r++)
        fprintf(out, "saker_rejections_total{reason=\"%s\"} %" PRIu64 "\n",
                shm_reject_reason(r), t->counters[r]);
}

static void write_tls(FILE *out, const struct shm_totals *t)
{
    const uint64_t *c = t->counters;
    family(out, "saker_tls_handshakes_total", "counter",
           "TLS handshakes, by result: ok or the reason they failed.");
    for (int r = SHM_TLS_RESULT_FIRST; r < SHM_TLS_RESULT_END; r++)
        fprintf(out, "saker_tls_handshakes_total{result=\"%s\"} %" PRIu64 "\n",
                shm_tls_result(r), c[r]);
    family(out, "saker_tls_resumptions_total", "counter",
           "TLS handshakes that resumed a session from a ticket.");
    fprintf(out, "saker_tls_resumptions_total %" PRIu64 "\n", c[SHM_TLS_RESUMED]);
    family(out, "saker_tls_protocol_total", "counter",
           "Successful TLS handshakes, by protocol version.");
    fprintf(out, "saker_tls_protocol_total{version=\"1.2\"} %" PRIu64 "\n", c[SHM_TLS_12]);
    fprintf(out, "saker_tls_protocol_total{version=\"1.3\"} %" PRIu64 "\n", c[SHM_TLS_13]);
    static const char *const ciphers[] = {"aes128-gcm", "aes256-gcm", "chacha20-poly1305",
                                          "other"};
    family(out, "saker_tls_ciphers_total", "counter",
           "Successful TLS handshakes, by the cipher (AEAD) negotiated.");
    for (int i = 0; i < 4; i++)
        fprintf(out, "saker_tls_ciphers_total{cipher=\"%s\"} %" PRIu64 "\n", ciphers[i],
                c[SHM_TLS_CIPHER_AES128_GCM + i]);
}

static void write_http2(FILE *out, const struct shm_totals *t)
{
    const uint64_t *c = t->counters;
    const struct scalar rows[] = {
        {"saker_http2_connections_total", "counter", "Connections that spoke HTTP/2.",
         c[SHM_H2_CONNECTIONS]},
        {"saker_http2_streams_total", "counter", "HTTP/2 request streams.", c[SHM_H2_STREAMS]},
        {"saker_http2_connection_errors_total", "counter",
         "HTTP/2 connections ended by saker with an error (protocol error, flood).",
         c[SHM_H2_CONNECTION_ERRORS]},
    };
    write_scalars(out, rows, sizeof rows / sizeof rows[0]);
    family(out, "saker_http2_resets_total", "counter",
           "HTTP/2 streams reset (RST_STREAM), by who sent the reset.");
    fprintf(out, "saker_http2_resets_total{by=\"client\"} %" PRIu64 "\n",
            c[SHM_H2_RESETS_RECEIVED]);
    fprintf(out, "saker_http2_resets_total{by=\"server\"} %" PRIu64 "\n",
            c[SHM_H2_RESETS_SENT]);
}

static void write_compression(FILE *out, const struct shm_totals *t)
{
    static const struct {
        const char *name, *help;
        enum shm_counter first;
    } families[] = {
        {"saker_compression_input_bytes_total", "Response body bytes before compression.",
         SHM_COMPRESS_IN_BR},
        {"saker_compression_output_bytes_total", "Response body bytes after compression.",
         SHM_COMPRESS_OUT_BR},
        {"saker_compressed_responses_total", "Responses compressed on the fly.",
         SHM_COMPRESS_RESPONSES_BR},
    };
    for (size_t f = 0; f < sizeof families / sizeof families[0]; f++) {
        family(out, families[f].name, "counter", families[f].help);
        for (int i = 0; i < SHM_COMPRESS_CODINGS; i++)
            fprintf(out, "%s{coding=\"%s\"} %" PRIu64 "\n", families[f].name, shm_compress_coding(i),
                    t->counters[families[f].first + i]);
    }
    const struct scalar rows[] = {
        {"saker_compression_memory_bytes", "gauge",
         "Memory the compressors of responses under way hold.", t->compression_memory},
        {"saker_file_cache_hits_total", "counter",
         "Static file opens answered by a descriptor kept open (within the loop turn, or "
         "across requests with open_file_cache; published each heartbeat).",
         t->counters[SHM_FILE_CACHE_HITS]},
        {"saker_file_cache_misses_total", "counter",
         "Static file opens that opened the file (published each heartbeat).",
         t->counters[SHM_FILE_CACHE_MISSES]},
        {"saker_file_cache_evictions_total", "counter",
         "Kept files closed for room or for going unused for open_file_cache's valid.",
         t->counters[SHM_FILE_CACHE_EVICTIONS]},
        {"saker_file_cache_revalidations_total", "counter",
         "Kept files checked against the disk again after open_file_cache's valid.",
         t->counters[SHM_FILE_CACHE_REVALIDATIONS]},
    };
    write_scalars(out, rows, sizeof rows / sizeof rows[0]);
}

/* The three per-worker families, each over every slot with a pid. */
enum worker_family { WORKER_OPEN, WORKER_REQUESTS, WORKER_HEARTBEAT_AGE };

static void write_worker_value(FILE *out, enum worker_family f, const struct shm_slot *s,
                               uint64_t now_ms)
{
    uint64_t hb = s->heartbeat_ms;
    switch (f) {
    case WORKER_OPEN:
        fprintf(out, "%" PRIu64 "\n", (uint64_t)s->connections_open);
        break;
    case WORKER_REQUESTS:
        fprintf(out, "%" PRIu64 "\n", (uint64_t)s->counters[SHM_REQUESTS]);
        break;
    case WORKER_HEARTBEAT_AGE:
        fprintf(out, "%.3f\n", now_ms > hb ? (double)(now_ms - hb) / 1000.0 : 0.0);
        break;
    }
}

static void write_workers(FILE *out, const struct shm *shm)
{
    static const struct { const char *name, *type, *help; } families[] = {
        [WORKER_OPEN] = {"saker_worker_connections_open", "gauge",
                         "Connections open now, per worker."},
        [WORKER_REQUESTS] = {"saker_worker_requests_total", "counter",
                             "Requests received, per worker (restarts at 0 in a new worker)."},
        [WORKER_HEARTBEAT_AGE] = {"saker_worker_heartbeat_age_seconds", "gauge",
                                  "Seconds since the worker's last heartbeat."},
    };
    uint64_t now_ms = clock_now_monotonic_ms();
    for (int f = 0; f < 3; f++) {
        family(out, families[f].name, families[f].type, families[f].help);
        for (unsigned i = 0; i < shm->header->slot_count; i++) {
            struct shm_slot s;
            shm_snapshot_slot(shm, i, &s);
            if (s.pid == 0)
                continue;
            fprintf(out, "%s{slot=\"%u\",generation=\"%" PRIu64 "\"} ", families[f].name, i,
                    (uint64_t)s.generation);
            write_worker_value(out, f, &s, now_ms);
        }
    }
}

/* A label value as the exposition format wants it: backslash, double
 * quote and newline escaped (config names and paths may hold any of
 * them), and valid UTF-8, which Prometheus requires of a label value:
 * bytes that are not (a segment may hold anything) become U+FFFD. */
void shm_metrics_label_value(FILE *out, const char *s, size_t max)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t n = strnlen(s, max);
    for (size_t i = 0; i < n;) {
        size_t len = utf8_sequence(p + i, n - i);
        if (len == 0) {
            fputs("\xef\xbf\xbd", out);
            i++;
            continue;
        }
        if (p[i] == '\\' || p[i] == '"')
            fputc('\\', out);
        if (p[i] == '\n')
            fputs("\\n", out);
        else
            fwrite(p + i, 1, len, out);
        i += len;
    }
}

static void write_pool_labels(FILE *out, const char *family_name, const struct shm_pool_view *p,
                              uint64_t value)
{
    fprintf(out, "%s{limit=\"%s\"", family_name, p->limit_name);
    if (p->endpoint != NULL) {
        fputs(",endpoint=\"", out);
        shm_metrics_label_value(out, p->endpoint, SHM_LISTENER_TEXT_MAX);
        fputc('"', out);
    }
    fprintf(out, "} %" PRIu64 "\n", value);
}

/* One sample per certificate served: alert on (value - time()). */
static void write_certificates(FILE *out, const struct shm_header *h)
{
    family(out, "saker_tls_certificate_not_after_seconds", "gauge",
           "When each certificate served expires (its notAfter), Unix seconds.");
    for (uint32_t i = 0; i < h->certificate_count && i < SHM_MAX_CERTIFICATES; i++) {
        const struct shm_certificate *c = &h->certificates[i];
        if (c->not_after == 0)
            continue; /* unreadable: no sample rather than a false 1970 */
        fputs("saker_tls_certificate_not_after_seconds{endpoint=\"", out);
        shm_metrics_label_value(out, c->endpoint, sizeof c->endpoint);
        fputs("\",sni=\"", out);
        shm_metrics_label_value(out, c->sni, sizeof c->sni);
        fputs("\",path=\"", out);
        shm_metrics_label_value(out, c->path, sizeof c->path);
        fprintf(out, "\"} %" PRId64 "\n", c->not_after);
    }
}

static void upstream_labels(FILE *out, const char *name, const struct shm_upstream_server *s,
                            const char *extra)
{
    fprintf(out, "%s{upstream=\"", name);
    shm_metrics_label_value(out, s->upstream, sizeof s->upstream);
    fputs("\",server=\"", out);
    shm_metrics_label_value(out, s->url, sizeof s->url);
    fprintf(out, "\"%s} ", extra);
}

static uint64_t up_counter(const struct shm_upstream_server *s, enum shm_upstream_counter c)
{
    return atomic_load_explicit(&s->counters[c], memory_order_relaxed);
}

static void write_upstream_histogram(FILE *out, const struct shm_upstream_view *v, size_t n)
{
    static const uint64_t bounds[] = SHM_UPSTREAM_LATENCY_BOUNDS;
    const char *name = "saker_upstream_response_seconds";
    family(out, name, "histogram", "Time from sending a request up to its response head.");
    for (size_t i = 0; i < n; i++) {
        uint64_t sum = 0;
        char le[48];
        for (size_t b = 0; b < SHM_UPSTREAM_LATENCY_BUCKETS; b++) {
            sum += atomic_load_explicit(&v[i].server->latency[b], memory_order_relaxed);
            if (b < sizeof bounds / sizeof bounds[0])
                snprintf(le, sizeof le, ",le=\"%g\"", (double)bounds[b] / 1000.0);
            else
                snprintf(le, sizeof le, ",le=\"+Inf\"");
            upstream_labels(out, "saker_upstream_response_seconds_bucket", v[i].server, le);
            fprintf(out, "%" PRIu64 "\n", sum);
        }
        upstream_labels(out, "saker_upstream_response_seconds_sum", v[i].server, "");
        fprintf(out, "%.3f\n", (double)up_counter(v[i].server, SHM_UP_LATENCY_MS_SUM) / 1000.0);
        upstream_labels(out, "saker_upstream_response_seconds_count", v[i].server, "");
        fprintf(out, "%" PRIu64 "\n", sum);
    }
}

/* The proxy's servers: state, load, outcomes, health checks, latency. */
static void write_upstreams(FILE *out, const struct shm *shm, const struct shm_header *h)
{
    static const struct { const char *name, *type, *help, *extra; int counter; } rows[] = {
        {"saker_upstream_requests_total", "counter", "Requests sent to the server.", "",
         SHM_UP_REQUESTS},
        {"saker_upstream_responses_total", "counter", "Response heads, by class.",
         ",class=\"1xx\"", SHM_UP_RESPONSES_1XX},
        {NULL, NULL, NULL, ",class=\"2xx\"", SHM_UP_RESPONSES_2XX},
        {NULL, NULL, NULL, ",class=\"3xx\"", SHM_UP_RESPONSES_3XX},
        {NULL, NULL, NULL, ",class=\"4xx\"", SHM_UP_RESPONSES_4XX},
        {NULL, NULL, NULL, ",class=\"5xx\"", SHM_UP_RESPONSES_5XX},
        {"saker_upstream_errors_total", "counter", "Failed attempts, by reason.",
         ",reason=\"connect\"", SHM_UP_CONNECT_ERRORS},
        {NULL, NULL, NULL, ",reason=\"timeout\"", SHM_UP_TIMEOUTS},
        {NULL, NULL, NULL, ",reason=\"reset\"", SHM_UP_RESETS},
        {NULL, NULL, NULL, ",reason=\"invalid\"", SHM_UP_INVALID},
        {"saker_upstream_ejections_total", "counter", "Passive ejections (max_fails).", "",
         SHM_UP_EJECTIONS},
        {"saker_upstream_health_checks_total", "counter", "Active health checks, by result.",
         ",result=\"ok\"", SHM_UP_CHECKS_OK},
        {NULL, NULL, NULL, ",result=\"failed\"", SHM_UP_CHECKS_FAILED},
    };
    struct shm_upstream_view v[SHM_MAX_UPSTREAM_SERVERS];
    size_t n = shm_upstreams_view(shm, h, v, SHM_MAX_UPSTREAM_SERVERS);
    const char *name = NULL;
    family(out, "saker_upstream_server_up", "gauge",
           "1 when the server takes requests, 0 when down or ejected.");
    for (size_t i = 0; i < n; i++) {
        upstream_labels(out, "saker_upstream_server_up", v[i].server, "");
        fprintf(out, "%d\n", v[i].state[0] == 'u');
    }
    family(out, "saker_upstream_active_requests", "gauge", "Requests in flight.");
    for (size_t i = 0; i < n; i++) {
        upstream_labels(out, "saker_upstream_active_requests", v[i].server, "");
        fprintf(out, "%" PRIu64 "\n", v[i].active);
    }
    family(out, "saker_upstream_idle_connections", "gauge", "Pooled keep-alive connections.");
    for (size_t i = 0; i < n; i++) {
        upstream_labels(out, "saker_upstream_idle_connections", v[i].server, "");
        fprintf(out, "%" PRIu64 "\n", v[i].idle);
    }
    for (size_t r = 0; r < sizeof rows / sizeof rows[0]; r++) {
        if (rows[r].name != NULL) {
            name = rows[r].name;
            family(out, name, rows[r].type, rows[r].help);
        }
        for (size_t i = 0; i < n; i++) {
            upstream_labels(out, name, v[i].server, rows[r].extra);
            fprintf(out, "%" PRIu64 "\n", up_counter(v[i].server, rows[r].counter));
        }
    }
    write_upstream_histogram(out, v, n);
}

/* The cross-worker limits in force: what each allows and how much is taken. */
static void write_limits(FILE *out, const struct shm_header *h)
{
    struct shm_pool_view pools[SHM_POOL_KINDS * SHM_POOLS];
    size_t n = shm_pools_in_force(h, pools, sizeof pools / sizeof pools[0]);
    family(out, "saker_limit_permits", "gauge",
           "Connections a cross-worker limit admits (only limits that are set).");
    for (size_t i = 0; i < n; i++)
        write_pool_labels(out, "saker_limit_permits", &pools[i], pools[i].limit);
    family(out, "saker_limit_permits_in_use", "gauge",
           "Connections holding a permit of a cross-worker limit.");
    for (size_t i = 0; i < n; i++)
        write_pool_labels(out, "saker_limit_permits_in_use", &pools[i], pools[i].used);
}

/* Counters the modules declared (saker/module.h), monotonic like ours. */
static void write_module_counters(FILE *out, const struct shm_header *h,
                                  const struct shm_totals *t)
{
    if (h->module_counter_count == 0)
        return;
    family(out, "saker_module_counter_total", "counter",
           "Counters declared by modules, summed over every worker since start.");
    for (uint32_t i = 0; i < h->module_counter_count && i < SHM_MODULE_COUNTERS; i++) {
        fputs("saker_module_counter_total{module=\"", out);
        shm_metrics_label_value(out, h->module_counters[i].module, SHM_MODULE_NAME_MAX);
        fputs("\",counter=\"", out);
        shm_metrics_label_value(out, h->module_counters[i].name, SHM_MODULE_NAME_MAX);
        fprintf(out, "\"} %" PRIu64 "\n", t->module_counters[i]);
    }
}

/* Each rate limit policy of the live generations, by name. */
static void write_rate_limits(FILE *out, const struct shm_header *h, const struct shm_totals *t)
{
    static const char *const results[] = {"admitted", "limited"};
    family(out, "saker_rate_limit_requests_total", "counter",
           "Requests a rate limit policy decided: admitted (by every policy of the route) "
           "or limited (answered 429 by this one).");
    for (int e = 0; e < SHM_MAX_RATE_LIMITS; e++)
        for (int r = 0; r < 2 && h->rate_policies[e].name[0] != '\0'; r++) {
            fputs("saker_rate_limit_requests_total{policy=\"", out);
            shm_metrics_label_value(out, h->rate_policies[e].name, SHM_RATE_NAME_MAX);
            fprintf(out, "\",result=\"%s\"} %" PRIu64 "\n", results[r],
                    t->rate[e][r == 0 ? SHM_RATE_ADMITTED : SHM_RATE_LIMITED]);
        }
    family(out, "saker_rate_limit_overflow_total", "counter",
           "Requests charged to a policy's shared overflow partition: its table had no room "
           "for their key (raise max_partitions).");
    for (int e = 0; e < SHM_MAX_RATE_LIMITS; e++) {
        if (h->rate_policies[e].name[0] == '\0')
            continue;
        fputs("saker_rate_limit_overflow_total{policy=\"", out);
        shm_metrics_label_value(out, h->rate_policies[e].name, SHM_RATE_NAME_MAX);
        fprintf(out, "\"} %" PRIu64 "\n", t->rate[e][SHM_RATE_OVERFLOW]);
    }
}

void shm_metrics_write(const struct shm *shm, FILE *out)
{
    struct shm_header h;
    struct shm_totals t;
    /* A torn copy (the master kept writing) still has NUL-ended strings
     * and clamped counts: at worst one scrape shows a stale label. */
    shm_snapshot_header(shm, &h);
    int totals_ok = shm_snapshot_totals(shm, &t);
    write_instance(out, &h, &t);
    if (totals_ok == SK_OK) {
        write_traffic(out, &t);
        write_responses(out, &t);
        write_rejections(out, &t);
        write_tls(out, &t);
        write_http2(out, &t);
        write_compression(out, &t);
        write_module_counters(out, &h, &t);
        write_rate_limits(out, &h, &t);
    } else {
        /* A torn sum could go backwards, which Prometheus reads as a counter
         * reset; better a missing scrape of these families. */
        fputs("# saker: totals were being folded on every read; omitted\n", out);
    }
    shm_routes_write_metrics(shm, &h, out);
    write_limits(out, &h);
    write_certificates(out, &h);
    write_upstreams(out, shm, &h);
    write_workers(out, shm);
}
