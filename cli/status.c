/*
 * status.c - `sakerctl status`: the instance for a human.
 *
 *   saker 0.1.0 master pid 1200, up 1h2m3s, generation 2, state running
 *   listeners:
 *     public  http://127.0.0.1:0  127.0.0.1:41234
 *   certificates:
 *     secure  default  /etc/saker/tls/site.pem  expires 2027-02-20 (90 days)
 *   connections 3 open, 1021 accepted
 *   ...
 *   rate limits  api: 1200 admitted, 31 limited (fixed_window 100 per 1m, ...)
 *   SLOT  PID  GEN  CPU  STATE  HEARTBEAT  OPEN  ACCEPTED  REQUESTS ...
 *
 * Every number comes from one snapshot of shm; totals include workers that
 * have exited (they never go backwards between two runs). Rejections are
 * listed only when some happened. Depends only on shm and stdio, like
 * status_json.c.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "common/clock.h"
#include "shm/shm_upstreams.h"

static void print_instance(FILE *out, const struct shm_header *h, const char *shm_path)
{
    char up[32], version[SHM_VERSION_MAX + 1];
    fprintf(out, "saker %s master pid %d, up %s, generation %" PRIu64 ", state %s\n",
            cli_printable(h->server_version, sizeof h->server_version, version, sizeof version),
            h->master_pid,
            cli_format_duration(cli_seconds_between((int64_t)time(NULL), h->started_at), up,
                                sizeof up),
            (uint64_t)h->generation, shm_instance_state_name(h->state));
    fprintf(out, "%u workers per generation, shm %s (layout %u, %u slots)\n",
            (unsigned)h->workers_per_generation, shm_path, h->layout_version, h->slot_count);
}

static void print_listeners(FILE *out, const struct shm_header *h)
{
    if (h->listener_count == 0)
        return;
    fprintf(out, "listeners:\n");
    for (uint32_t i = 0; i < h->listener_count && i < SHM_MAX_LISTENERS; i++) {
        const struct shm_listener *l = &h->listeners[i];
        char name[sizeof l->endpoint + 1], url[sizeof l->url + 1], addr[sizeof l->address + 1];
        fprintf(out, "  %-12s %-32s %s\n",
                cli_printable(l->endpoint, sizeof l->endpoint, name, sizeof name),
                cli_printable(l->url, sizeof l->url, url, sizeof url),
                cli_printable(l->address, sizeof l->address, addr, sizeof addr));
    }
}

/* "expires 2027-02-20 (90 days)", "EXPIRED 2026-11-01 (21 days ago)". */
static void print_expiry(FILE *out, int64_t not_after, int64_t now)
{
    if (not_after == 0) {
        fprintf(out, "expiry unknown\n");
        return;
    }
    time_t t = (time_t)not_after;
    struct tm tm;
    char date[16];
    /* strftime leaves the buffer undefined when a year does not fit. */
    if (gmtime_r(&t, &tm) == NULL || strftime(date, sizeof date, "%Y-%m-%d", &tm) == 0)
        snprintf(date, sizeof date, "?");
    if (not_after <= now)
        fprintf(out, "EXPIRED %s (%" PRId64 " days ago)\n", date,
                cli_seconds_between(now, not_after) / 86400);
    else {
        int64_t days = cli_seconds_between(not_after, now) / 86400;
        fprintf(out, "expires %s (%" PRId64 " day%s)\n", date, days, days == 1 ? "" : "s");
    }
}

static void print_certificates(FILE *out, const struct shm_header *h)
{
    if (h->certificate_count == 0)
        return;
    int64_t now = (int64_t)time(NULL);
    fprintf(out, "certificates:\n");
    for (uint32_t i = 0; i < h->certificate_count && i < SHM_MAX_CERTIFICATES; i++) {
        const struct shm_certificate *c = &h->certificates[i];
        char name[sizeof c->endpoint + 1], sni[sizeof c->sni + 1], path[sizeof c->path + 1];
        fprintf(out, "  %-12s %-16s %-32s ",
                cli_printable(c->endpoint, sizeof c->endpoint, name, sizeof name),
                c->sni[0] ? cli_printable(c->sni, sizeof c->sni, sni, sizeof sni) : "default",
                cli_printable(c->path, sizeof c->path, path, sizeof path));
        print_expiry(out, c->not_after, now);
    }
    if (h->certificates_unlisted > 0)
        fprintf(out, "  (%u more not listed)\n", h->certificates_unlisted);
}

static void print_rejections(FILE *out, const uint64_t *c)
{
    bool any = false;
    for (int r = SHM_REJECT_FIRST; r < SHM_REJECT_END; r++) {
        if (c[r] == 0)
            continue;
        fprintf(out, "%s%s %" PRIu64, any ? ", " : "rejections   ", shm_reject_reason(r),
                c[r]);
        any = true;
    }
    if (any)
        fprintf(out, "\n");
}

static void print_totals(FILE *out, const struct shm_totals *t)
{
    const uint64_t *c = t->counters;
    char in[32], sent[32];
    fprintf(out, "connections  %" PRIu64 " open, %" PRIu64 " accepted\n", t->connections_open,
            c[SHM_CONNECTIONS_ACCEPTED]);
    fprintf(out, "requests     %" PRIu64 "\n", c[SHM_REQUESTS]);
    fprintf(out, "responses    1xx %" PRIu64 ", 2xx %" PRIu64 ", 3xx %" PRIu64 ", 4xx %" PRIu64
            ", 5xx %" PRIu64 "\n", c[SHM_RESPONSES_1XX], c[SHM_RESPONSES_2XX],
            c[SHM_RESPONSES_3XX], c[SHM_RESPONSES_4XX], c[SHM_RESPONSES_5XX]);
    fprintf(out, "bytes        in %s (%" PRIu64 "), out %s (%" PRIu64 ")\n",
            cli_format_bytes(c[SHM_BYTES_IN], in, sizeof in), c[SHM_BYTES_IN],
            cli_format_bytes(c[SHM_BYTES_OUT], sent, sizeof sent), c[SHM_BYTES_OUT]);
    print_rejections(out, c);
}

/* Responses compressed on the fly, per coding that saw any, and the
 * static handler's file cache. */
static void print_compression(FILE *out, const struct shm_totals *t)
{
    const uint64_t *c = t->counters;
    char in[32], sent[32], held[32];
    fprintf(out, "compression  ");
    bool any = false;
    for (int i = 0; i < SHM_COMPRESS_CODINGS; i++) {
        if (c[SHM_COMPRESS_RESPONSES_BR + i] == 0)
            continue;
        fprintf(out, "%s%s %" PRIu64 " responses, %s -> %s", any ? "; " : "",
                shm_compress_coding(i), c[SHM_COMPRESS_RESPONSES_BR + i],
                cli_format_bytes(c[SHM_COMPRESS_IN_BR + i], in, sizeof in),
                cli_format_bytes(c[SHM_COMPRESS_OUT_BR + i], sent, sizeof sent));
        any = true;
    }
    fprintf(out, "%s; compressors hold %s\n", any ? "" : "none",
            cli_format_bytes(t->compression_memory, held, sizeof held));
    fprintf(out,
            "file cache   %" PRIu64 " hits, %" PRIu64 " misses, %" PRIu64 " evictions, %" PRIu64
            " revalidations\n",
            c[SHM_FILE_CACHE_HITS], c[SHM_FILE_CACHE_MISSES], c[SHM_FILE_CACHE_EVICTIONS],
            c[SHM_FILE_CACHE_REVALIDATIONS]);
}

/* The proxy's servers: state, load, and what they answered. */
static void print_upstreams(FILE *out, const struct shm *shm, const struct shm_header *h)
{
    struct shm_upstream_view v[SHM_MAX_UPSTREAM_SERVERS];
    size_t n = shm_upstreams_view(shm, h, v, SHM_MAX_UPSTREAM_SERVERS);
    if (n > 0)
        fprintf(out, "upstreams:\n");
    for (size_t i = 0; i < n; i++) {
        const struct shm_upstream_server *s = v[i].server;
        char upstream[sizeof s->upstream], url[sizeof s->url];
        uint64_t c[SHM_UP_COUNTER_COUNT];
        for (int k = 0; k < SHM_UP_COUNTER_COUNT; k++)
            c[k] = atomic_load_explicit(&s->counters[k], memory_order_relaxed);
        fprintf(out, "  %s %s %s: %" PRIu64 " active, %" PRIu64 " idle; %" PRIu64
                " requests; 2xx %" PRIu64 ", 4xx %" PRIu64 ", 5xx %" PRIu64 "; errors: connect %"
                PRIu64 ", timeout %" PRIu64 ", reset %" PRIu64 ", invalid %" PRIu64
                "; ejected %" PRIu64 "; checks %" PRIu64 " ok, %" PRIu64 " failed\n",
                cli_printable(s->upstream, sizeof s->upstream, upstream, sizeof upstream),
                cli_printable(s->url, sizeof s->url, url, sizeof url), v[i].state, v[i].active,
                v[i].idle, c[SHM_UP_REQUESTS],
                c[SHM_UP_RESPONSES_2XX], c[SHM_UP_RESPONSES_4XX], c[SHM_UP_RESPONSES_5XX],
                c[SHM_UP_CONNECT_ERRORS], c[SHM_UP_TIMEOUTS], c[SHM_UP_RESETS],
                c[SHM_UP_INVALID], c[SHM_UP_EJECTIONS], c[SHM_UP_CHECKS_OK],
                c[SHM_UP_CHECKS_FAILED]);
    }
}

static void print_limits(FILE *out, const struct shm_header *h)
{
    struct shm_pool_view pools[SHM_POOL_KINDS * SHM_POOLS];
    size_t n = shm_pools_in_force(h, pools, sizeof pools / sizeof pools[0]);
    for (size_t i = 0; i < n; i++) {
        char name[SHM_LISTENER_TEXT_MAX];
        fprintf(out, "%s %s %" PRIu64 "/%" PRIu64 " in use%s%s\n",
                i == 0 ? "limits      " : "            ", pools[i].limit_name, pools[i].used,
                pools[i].limit, pools[i].endpoint ? " on endpoint " : "",
                pools[i].endpoint
                    ? cli_printable(pools[i].endpoint, sizeof name - 1, name, sizeof name)
                    : "");
    }
}

/* Counters the modules declared: "modules      json_counter.requests 42". */
static void print_module_counters(FILE *out, const struct shm_header *h,
                                  const struct shm_totals *t)
{
    for (uint32_t i = 0; i < h->module_counter_count && i < SHM_MODULE_COUNTERS; i++) {
        char module[SHM_MODULE_NAME_MAX], name[SHM_MODULE_NAME_MAX];
        fprintf(out, "%s %s.%s %" PRIu64 "\n", i == 0 ? "modules     " : "            ",
                cli_printable(h->module_counters[i].module, sizeof module - 1, module,
                              sizeof module),
                cli_printable(h->module_counters[i].name, sizeof name - 1, name, sizeof name),
                t->module_counters[i]);
    }
}

static void print_rate_limits(FILE *out, const struct shm_header *h, const struct shm_totals *t)
{
    bool first = true;
    for (int e = 0; e < SHM_MAX_RATE_LIMITS; e++) {
        const struct shm_rate_policy *p = &h->rate_policies[e];
        if (p->name[0] == '\0')
            continue;
        char name[SHM_RATE_NAME_MAX + 1], definition[SHM_RATE_TEXT_MAX + 1];
        fprintf(out, "%s %s: %" PRIu64 " admitted, %" PRIu64 " limited",
                first ? "rate limits " : "            ",
                cli_printable(p->name, sizeof p->name, name, sizeof name),
                t->rate[e][SHM_RATE_ADMITTED], t->rate[e][SHM_RATE_LIMITED]);
        if (t->rate[e][SHM_RATE_OVERFLOW] > 0)
            fprintf(out, ", %" PRIu64 " in the overflow partition",
                    t->rate[e][SHM_RATE_OVERFLOW]);
        fprintf(out, " (%s)\n", cli_printable(p->definition, sizeof p->definition, definition,
                                              sizeof definition));
        first = false;
    }
}

static void print_reload(FILE *out, const struct shm_header *h)
{
    if (h->reload_count == 0)
        return;
    char ago[32], message[SHM_MESSAGE_MAX + 1];
    fprintf(out, "last reload  %s in %" PRIu64 " ms, %s ago (%" PRIu64 " reloads)",
            h->reload_ok ? "ok" : "FAILED", h->reload_duration_ms,
            cli_format_duration(cli_seconds_between((int64_t)time(NULL), h->reload_finished_at),
                                ago, sizeof ago),
            h->reload_count);
    if (h->reload_message[0] != '\0')
        fprintf(out, ": %s", cli_printable(h->reload_message, sizeof h->reload_message, message,
                                           sizeof message));
    fprintf(out, "\n");
}

static void print_upgrade(FILE *out, const struct shm_header *h)
{
    if (h->upgrade_count == 0)
        return;
    char message[SHM_MESSAGE_MAX + 1];
    fprintf(out, "last upgrade %s (%" PRIu64 " upgrades): %s\n", h->upgrade_ok ? "ok" : "FAILED",
            h->upgrade_count, cli_printable(h->upgrade_message, sizeof h->upgrade_message,
                                            message, sizeof message));
}

static void print_worker(FILE *out, unsigned slot, const struct shm_slot *s, uint64_t now_ms)
{
    char age[32], in[32], sent[32];
    fprintf(out, "%4u %7d %4" PRIu64 " %4d %-9s %9s %6" PRIu64 " %9" PRIu64 " %9" PRIu64
            " %8" PRIu64 " %6" PRIu64 " %6" PRIu64 " %9s %9s\n",
            slot, (int)s->pid, (uint64_t)s->generation, (int)s->cpu,
            shm_worker_state_name(s->state),
            cli_format_age(s->heartbeat_ms, now_ms, age, sizeof age),
            (uint64_t)s->connections_open, (uint64_t)s->counters[SHM_CONNECTIONS_ACCEPTED],
            (uint64_t)s->counters[SHM_REQUESTS], (uint64_t)s->counters[SHM_RESPONSES_2XX],
            (uint64_t)s->counters[SHM_RESPONSES_4XX], (uint64_t)s->counters[SHM_RESPONSES_5XX],
            cli_format_bytes(s->counters[SHM_BYTES_IN], in, sizeof in),
            cli_format_bytes(s->counters[SHM_BYTES_OUT], sent, sizeof sent));
}

static const char *generation_role(uint64_t g, uint64_t serving)
{
    return g == serving ? "serving" : g > serving ? "new, starting" : "old, draining";
}

struct row {
    unsigned slot;
    struct shm_slot s;
};

/* Newest generation first; slot order within one. */
static int row_order(const void *pa, const void *pb)
{
    const struct row *a = pa, *b = pb;
    if (a->s.generation != b->s.generation)
        return a->s.generation > b->s.generation ? -1 : 1;
    return a->slot < b->slot ? -1 : a->slot > b->slot;
}

/* Live slots (pid != 0), sorted; how many, 0 when none or out of memory
 * (then no rows are listed; the totals above still hold). */
static unsigned snapshot_workers(const struct shm *shm, struct row **rows)
{
    unsigned n = shm->header->slot_count, count = 0;
    if ((*rows = malloc(n * sizeof **rows)) == NULL)
        return 0;
    for (unsigned i = 0; i < n; i++) {
        shm_snapshot_slot(shm, i, &(*rows)[count].s);
        (*rows)[count].slot = i;
        count += (*rows)[count].s.pid != 0;
    }
    qsort(*rows, count, sizeof **rows, row_order);
    return count;
}

/* While a reload runs, two generations share the slots: list each as a
 * group, newest first, so the operator sees which one serves. */
static void print_workers(FILE *out, const struct shm *shm, const struct shm_header *h)
{
    uint64_t now_ms = clock_now_monotonic_ms();
    struct row *rows;
    unsigned n = snapshot_workers(shm, &rows);
    bool grouped = n > 0 && (rows[0].s.generation != rows[n - 1].s.generation ||
                             h->state == SHM_INSTANCE_RELOADING);
    fprintf(out, "\n%4s %7s %4s %4s %-9s %9s %6s %9s %9s %8s %6s %6s %9s %9s\n", "SLOT", "PID",
            "GEN", "CPU", "STATE", "HEARTBEAT", "OPEN", "ACCEPTED", "REQUESTS", "2XX", "4XX",
            "5XX", "IN", "OUT");
    for (unsigned i = 0; i < n; i++) {
        uint64_t g = rows[i].s.generation;
        if (grouped && (i == 0 || rows[i - 1].s.generation != g))
            fprintf(out, "generation %" PRIu64 " (%s):\n", g, generation_role(g, h->generation));
        print_worker(out, rows[i].slot, &rows[i].s, now_ms);
    }
    free(rows);
}

void cli_status_write(const struct shm *shm, const char *shm_path, FILE *out)
{
    struct shm_header h;
    struct shm_totals t;
    if (shm_snapshot_header(shm, &h) != SK_OK)
        fprintf(stderr, "sakerctl: warning: the master is writing the header; "
                "listeners and reload message may be torn\n");
    if (shm_snapshot_totals(shm, &t) != SK_OK)
        fprintf(stderr, "sakerctl: warning: totals changed under every read; "
                "they may be off\n");
    print_instance(out, &h, shm_path);
    print_listeners(out, &h);
    print_certificates(out, &h);
    print_upstreams(out, shm, &h);
    print_totals(out, &t);
    print_compression(out, &t);
    print_limits(out, &h);
    print_module_counters(out, &h, &t);
    print_rate_limits(out, &h, &t);
    print_reload(out, &h);
    print_upgrade(out, &h);
    fprintf(out, "workers      %u live, %" PRIu64 " started, %" PRIu64 " died unexpectedly, %"
            PRIu64 " watchdog kills\n", t.workers_live, (uint64_t)h.worker_starts,
            (uint64_t)h.worker_deaths, (uint64_t)h.worker_watchdog_kills);
    print_workers(out, shm, &h);
}
