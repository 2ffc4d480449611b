/*
 * status_json.c - `sakerctl status --json`: the instance as one JSON object.
 *
 * The shape is a contract (functional tests and operators' scripts parse
 * it); add keys, never rename or remove them:
 *
 *   {"instance":{master_pid, started_at, uptime_seconds, state, generation,
 *                workers_per_generation, layout_version, shm_path},
 *    "listeners":[{endpoint, url, address, port, kind}],
 *    "certificates":[{endpoint, sni (null: the default), path, subject,
 *                     not_before, not_after (Unix seconds, 0: unknown)}],
 *    "certificates_unlisted": n (past the table's SHM_MAX_CERTIFICATES),
 *    "reload":{count, ok, message, duration_ms, finished_at},
 *    "upgrade":{count, ok, pid, message},
 *    "totals":{connections_accepted, connections_open, requests,
 *              responses:{1xx..5xx}, bytes_in, bytes_out,
 *              rejections:{<reason>: n, every reason}},
 *    "master":{worker_starts, worker_deaths, watchdog_kills},
 *    "limits":[{limit, endpoint (null: the instance), permits, in_use}],
 *    "module_counters":[{module, name, value}],
 *    "rate_limits":[{policy, definition, admitted, limited, overflow}],
 *    "routes":[{route, requests, responses:{1xx..5xx}, duration_seconds_sum}],
 *    "workers":[{slot, pid, cpu, generation, index, state, heartbeat_age_ms,
 *                started_at, connections_open, connections_accepted,
 *                requests, responses:{1xx..5xx}, bytes_in, bytes_out}]}
 *
 * Totals include retired workers (shm_snapshot_totals); workers lists the
 * slots whose pid is not 0. Depends only on shm and stdio.
 */
#include <inttypes.h>
#include <stdio.h>
#include <time.h>

#include "cli/cli.h"
#include "common/clock.h"
#include "shm/shm_routes.h"
#include "shm/shm_upstreams.h"

static const char *const response_classes[] = {"1xx", "2xx", "3xx", "4xx", "5xx"};

/* classes: five counts, 1xx to 5xx. */
static void write_responses(FILE *out, const uint64_t *classes)
{
    fputs("\"responses\":{", out);
    for (int i = 0; i < 5; i++)
        fprintf(out, "%s\"%s\":%" PRIu64, i ? "," : "", response_classes[i], classes[i]);
    fputc('}', out);
}

static void write_instance(FILE *out, const struct shm_header *h, const char *shm_path)
{
    int64_t uptime = cli_seconds_between((int64_t)time(NULL), h->started_at);
    fprintf(out, "\"instance\":{\"master_pid\":%d,\"started_at\":%" PRId64
            ",\"uptime_seconds\":%" PRId64 ",\"state\":",
            h->master_pid, h->started_at, uptime > 0 ? uptime : 0);
    cli_json_string(out, shm_instance_state_name(h->state), 32);
    fprintf(out, ",\"generation\":%" PRIu64 ",\"workers_per_generation\":%u"
            ",\"layout_version\":%u,\"shm_path\":",
            (uint64_t)h->generation, (unsigned)h->workers_per_generation, h->layout_version);
    cli_json_string(out, shm_path, SIZE_MAX);
    fputc('}', out);
}

static void write_listeners(FILE *out, const struct shm_header *h)
{
    fputs("\"listeners\":[", out);
    for (uint32_t i = 0; i < h->listener_count && i < SHM_MAX_LISTENERS; i++) {
        const struct shm_listener *l = &h->listeners[i];
        fputs(i ? ",{\"endpoint\":" : "{\"endpoint\":", out);
        cli_json_string(out, l->endpoint, sizeof l->endpoint);
        fputs(",\"url\":", out);
        cli_json_string(out, l->url, sizeof l->url);
        fputs(",\"address\":", out);
        cli_json_string(out, l->address, sizeof l->address);
        fprintf(out, ",\"port\":%u,\"kind\":", l->port);
        cli_json_string(out, shm_listener_kind_name(l->kind), 16);
        fputc('}', out);
    }
    fputc(']', out);
}

static void write_certificates(FILE *out, const struct shm_header *h)
{
    fputs("\"certificates\":[", out);
    for (uint32_t i = 0; i < h->certificate_count && i < SHM_MAX_CERTIFICATES; i++) {
        const struct shm_certificate *c = &h->certificates[i];
        fputs(i ? ",{\"endpoint\":" : "{\"endpoint\":", out);
        cli_json_string(out, c->endpoint, sizeof c->endpoint);
        fputs(",\"sni\":", out);
        if (c->sni[0] != '\0')
            cli_json_string(out, c->sni, sizeof c->sni);
        else
            fputs("null", out);
        fputs(",\"path\":", out);
        cli_json_string(out, c->path, sizeof c->path);
        fputs(",\"subject\":", out);
        cli_json_string(out, c->subject, sizeof c->subject);
        fprintf(out, ",\"not_before\":%" PRId64 ",\"not_after\":%" PRId64 "}", c->not_before,
                c->not_after);
    }
    fprintf(out, "],\"certificates_unlisted\":%u", h->certificates_unlisted);
}

static void write_upstreams(FILE *out, const struct shm *shm, const struct shm_header *h)
{
    static const char *const names[SHM_UP_COUNTER_COUNT] = {
        "requests", "responses_1xx", "responses_2xx", "responses_3xx", "responses_4xx",
        "responses_5xx", "connect_errors", "timeouts", "resets", "invalid", "ejections",
        "checks_ok", "checks_failed", "latency_ms_sum"};
    struct shm_upstream_view v[SHM_MAX_UPSTREAM_SERVERS];
    size_t n = shm_upstreams_view(shm, h, v, SHM_MAX_UPSTREAM_SERVERS);
    fputs("\"upstreams\":[", out);
    for (size_t i = 0; i < n; i++) {
        const struct shm_upstream_server *s = v[i].server;
        fputs(i > 0 ? ",{\"upstream\":" : "{\"upstream\":", out);
        cli_json_string(out, s->upstream, sizeof s->upstream);
        fputs(",\"url\":", out);
        cli_json_string(out, s->url, sizeof s->url);
        fprintf(out, ",\"state\":\"%s\",\"active\":%" PRIu64 ",\"idle\":%" PRIu64, v[i].state,
                v[i].active, v[i].idle);
        for (int k = 0; k < SHM_UP_COUNTER_COUNT; k++)
            fprintf(out, ",\"%s\":%" PRIu64, names[k],
                    (uint64_t)atomic_load_explicit(&s->counters[k], memory_order_relaxed));
        fputc('}', out);
    }
    fputc(']', out);
}

static void write_reload(FILE *out, const struct shm_header *h)
{
    fprintf(out, "\"reload\":{\"count\":%" PRIu64 ",\"ok\":%s,\"message\":",
            h->reload_count, h->reload_ok ? "true" : "false");
    cli_json_string(out, h->reload_message, sizeof h->reload_message);
    fprintf(out, ",\"duration_ms\":%" PRIu64 ",\"finished_at\":%" PRId64 "}",
            h->reload_duration_ms, h->reload_finished_at);
}

static void write_upgrade(FILE *out, const struct shm_header *h)
{
    fprintf(out, "\"upgrade\":{\"count\":%" PRIu64 ",\"ok\":%s,\"pid\":%d,\"message\":",
            h->upgrade_count, h->upgrade_ok ? "true" : "false", (int)h->upgrade_pid);
    cli_json_string(out, h->upgrade_message, sizeof h->upgrade_message);
    fputc('}', out);
}

static void write_totals(FILE *out, const struct shm_totals *t)
{
    const uint64_t *c = t->counters;
    fprintf(out, "\"totals\":{\"connections_accepted\":%" PRIu64
            ",\"connections_open\":%" PRIu64 ",\"requests\":%" PRIu64 ",",
            c[SHM_CONNECTIONS_ACCEPTED], t->connections_open, c[SHM_REQUESTS]);
    write_responses(out, c + SHM_RESPONSES_1XX);
    fprintf(out, ",\"bytes_in\":%" PRIu64 ",\"bytes_out\":%" PRIu64 ",\"rejections\":{",
            c[SHM_BYTES_IN], c[SHM_BYTES_OUT]);
    for (int r = SHM_REJECT_FIRST; r < SHM_REJECT_END; r++)
        fprintf(out, "%s\"%s\":%" PRIu64, r > SHM_REJECT_FIRST ? "," : "",
                shm_reject_reason(r), c[r]);
    fputs("}}", out);
}

static void write_compression(FILE *out, const struct shm_totals *t)
{
    const uint64_t *c = t->counters;
    fprintf(out, "\"compression\":{\"memory_bytes\":%" PRIu64 ",\"codings\":{",
            t->compression_memory);
    for (int i = 0; i < SHM_COMPRESS_CODINGS; i++)
        fprintf(out, "%s\"%s\":{\"responses\":%" PRIu64 ",\"input_bytes\":%" PRIu64
                ",\"output_bytes\":%" PRIu64 "}", i > 0 ? "," : "", shm_compress_coding(i),
                c[SHM_COMPRESS_RESPONSES_BR + i], c[SHM_COMPRESS_IN_BR + i],
                c[SHM_COMPRESS_OUT_BR + i]);
    fprintf(out,
            "}},\"file_cache\":{\"hits\":%" PRIu64 ",\"misses\":%" PRIu64
            ",\"evictions\":%" PRIu64 ",\"revalidations\":%" PRIu64 "}",
            c[SHM_FILE_CACHE_HITS], c[SHM_FILE_CACHE_MISSES], c[SHM_FILE_CACHE_EVICTIONS],
            c[SHM_FILE_CACHE_REVALIDATIONS]);
}

static void write_master(FILE *out, const struct shm_header *h)
{
    fprintf(out, "\"master\":{\"worker_starts\":%" PRIu64 ",\"worker_deaths\":%" PRIu64
            ",\"watchdog_kills\":%" PRIu64 "}",
            (uint64_t)h->worker_starts, (uint64_t)h->worker_deaths,
            (uint64_t)h->worker_watchdog_kills);
}

static void write_worker(FILE *out, unsigned slot, const struct shm_slot *s, uint64_t now_ms)
{
    uint64_t counters[SHM_COUNTER_COUNT];
    for (int c = 0; c < SHM_COUNTER_COUNT; c++)
        counters[c] = s->counters[c];
    uint64_t hb = s->heartbeat_ms;
    fprintf(out, "{\"slot\":%u,\"pid\":%d,\"cpu\":%d,\"generation\":%" PRIu64
            ",\"index\":%u,\"state\":\"%s\",\"heartbeat_age_ms\":%" PRIu64
            ",\"started_at\":%" PRId64 ",\"connections_open\":%" PRIu64
            ",\"connections_accepted\":%" PRIu64 ",\"requests\":%" PRIu64 ",",
            slot, (int)s->pid, (int)s->cpu, (uint64_t)s->generation, (unsigned)s->index,
            shm_worker_state_name(s->state), now_ms > hb ? now_ms - hb : 0,
            (int64_t)s->started_at, (uint64_t)s->connections_open,
            counters[SHM_CONNECTIONS_ACCEPTED], counters[SHM_REQUESTS]);
    write_responses(out, counters + SHM_RESPONSES_1XX);
    fprintf(out, ",\"bytes_in\":%" PRIu64 ",\"bytes_out\":%" PRIu64 "}",
            counters[SHM_BYTES_IN], counters[SHM_BYTES_OUT]);
}

static void write_workers(FILE *out, const struct shm *shm)
{
    uint64_t now_ms = clock_now_monotonic_ms();
    bool first = true;
    fputs("\"workers\":[", out);
    for (unsigned i = 0; i < shm->header->slot_count; i++) {
        struct shm_slot s;
        shm_snapshot_slot(shm, i, &s);
        if (s.pid == 0)
            continue;
        if (!first)
            fputc(',', out);
        write_worker(out, i, &s, now_ms);
        first = false;
    }
    fputc(']', out);
}

static void write_limits(FILE *out, const struct shm_header *h)
{
    struct shm_pool_view pools[SHM_POOL_KINDS * SHM_POOLS];
    size_t n = shm_pools_in_force(h, pools, sizeof pools / sizeof pools[0]);
    fputs("\"limits\":[", out);
    for (size_t i = 0; i < n; i++) {
        fprintf(out, "%s{\"limit\":\"%s\",\"endpoint\":", i ? "," : "", pools[i].limit_name);
        if (pools[i].endpoint != NULL)
            cli_json_string(out, pools[i].endpoint, SHM_LISTENER_TEXT_MAX);
        else
            fputs("null", out);
        fprintf(out, ",\"permits\":%" PRIu64 ",\"in_use\":%" PRIu64 "}", pools[i].limit,
                pools[i].used);
    }
    fputc(']', out);
}

static void write_module_counters(FILE *out, const struct shm_header *h,
                                  const struct shm_totals *t)
{
    fputs("\"module_counters\":[", out);
    for (uint32_t i = 0; i < h->module_counter_count && i < SHM_MODULE_COUNTERS; i++) {
        fputs(i ? ",{\"module\":" : "{\"module\":", out);
        cli_json_string(out, h->module_counters[i].module, SHM_MODULE_NAME_MAX);
        fputs(",\"name\":", out);
        cli_json_string(out, h->module_counters[i].name, SHM_MODULE_NAME_MAX);
        fprintf(out, ",\"value\":%" PRIu64 "}", t->module_counters[i]);
    }
    fputc(']', out);
}

static void write_rate_limits(FILE *out, const struct shm_header *h, const struct shm_totals *t)
{
    bool first = true;
    fputs("\"rate_limits\":[", out);
    for (int e = 0; e < SHM_MAX_RATE_LIMITS; e++) {
        const struct shm_rate_policy *p = &h->rate_policies[e];
        if (p->name[0] == '\0')
            continue;
        fputs(first ? "{\"policy\":" : ",{\"policy\":", out);
        cli_json_string(out, p->name, sizeof p->name);
        fputs(",\"definition\":", out);
        cli_json_string(out, p->definition, sizeof p->definition);
        fprintf(out, ",\"admitted\":%" PRIu64 ",\"limited\":%" PRIu64 ",\"overflow\":%" PRIu64
                "}", t->rate[e][SHM_RATE_ADMITTED], t->rate[e][SHM_RATE_LIMITED],
                t->rate[e][SHM_RATE_OVERFLOW]);
        first = false;
    }
    fputc(']', out);
}

/* Each labelled route entry (histograms are in the metrics), from one
 * snapshot of the totals; none while they are being folded. */
static void write_routes(FILE *out, const struct shm *shm, const struct shm_header *h)
{
    struct shm_route_totals routes[SHM_MAX_ROUTES];
    bool first = true;
    fputs("\"routes\":[", out);
    bool taken = shm_snapshot_routes(shm, routes) == SK_OK;
    for (int e = 0; taken && e < SHM_MAX_ROUTES; e++) {
        if (h->routes[e].label[0] == '\0')
            continue;
        fputs(first ? "{\"route\":" : ",{\"route\":", out);
        cli_json_string(out, h->routes[e].label, SHM_ROUTE_LABEL_MAX);
        fprintf(out, ",\"requests\":%" PRIu64 ",", shm_route_count(&routes[e]));
        write_responses(out, routes[e].responses);
        fprintf(out, ",\"duration_seconds_sum\":%.6f}", (double)routes[e].duration_us / 1e6);
        first = false;
    }
    fputc(']', out);
}

void cli_status_json_write(const struct shm *shm, const char *shm_path, FILE *out)
{
    struct shm_header h;
    struct shm_totals t;
    shm_snapshot_header(shm, &h);
    shm_snapshot_totals(shm, &t);
    fputc('{', out);
    write_instance(out, &h, shm_path);
    fputc(',', out);
    write_listeners(out, &h);
    fputc(',', out);
    write_certificates(out, &h);
    fputc(',', out);
    write_upstreams(out, shm, &h);
    fputc(',', out);
    write_reload(out, &h);
    fputc(',', out);
    write_upgrade(out, &h);
    fputc(',', out);
    write_totals(out, &t);
    fputc(',', out);
    write_compression(out, &t);
    fputc(',', out);
    write_master(out, &h);
    fputc(',', out);
    write_limits(out, &h);
    fputc(',', out);
    write_module_counters(out, &h, &t);
    fputc(',', out);
    write_rate_limits(out, &h, &t);
    fputc(',', out);
    write_routes(out, shm, &h);
    fputc(',', out);
    write_workers(out, shm);
    fputs("}\n", out);
}
