/*
 * status.c - `sakerctl status [--json]`: the instance for a human.
 *
 *   saker 0.1.0 master pid 1200, up 1h2m3s, generation 2, state running
 *   listeners:
 *     public  http://127.0.0.1:0  127.0.0.1:41234
 *   connections 3 open, 1021 accepted
 *   ...
 *   SLOT  PID  GEN  CPU  STATE  HEARTBEAT  OPEN  ACCEPTED  REQUESTS ...
 *
 * Every number comes from one snapshot of shm; totals include workers that
 * have exited (they never go backwards between two runs). Rejections are
 * listed only when some happened.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "common/clock.h"

static char *format_duration(int64_t seconds, char *buf, size_t size)
{
    if (seconds < 0)
        seconds = 0;
    int64_t d = seconds / 86400, h = seconds / 3600 % 24, m = seconds / 60 % 60,
            s = seconds % 60;
    if (d > 0)
        snprintf(buf, size, "%" PRId64 "d%" PRId64 "h%" PRId64 "m%" PRId64 "s", d, h, m, s);
    else if (h > 0)
        snprintf(buf, size, "%" PRId64 "h%" PRId64 "m%" PRId64 "s", h, m, s);
    else if (m > 0)
        snprintf(buf, size, "%" PRId64 "m%" PRId64 "s", m, s);
    else
        snprintf(buf, size, "%" PRId64 "s", s);
    return buf;
}

/* 1023 stays exact; beyond that one decimal with a binary unit. */
static char *format_bytes(uint64_t n, char *buf, size_t size)
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    double v = (double)n;
    int u = 0;
    while (v >= 1024 && u < 6) {
        v /= 1024;
        u++;
    }
    if (u == 0)
        snprintf(buf, size, "%" PRIu64 "B", n);
    else
        snprintf(buf, size, "%.1f%s", v, units[u]);
    return buf;
}

/* Under 10 s in ms (a healthy heartbeat is under 1 s), then seconds. */
static char *format_age(uint64_t heartbeat_ms, uint64_t now_ms, char *buf, size_t size)
{
    if (heartbeat_ms == 0) {
        snprintf(buf, size, "-");
        return buf;
    }
    uint64_t age = now_ms > heartbeat_ms ? now_ms - heartbeat_ms : 0;
    if (age < 10000)
        snprintf(buf, size, "%" PRIu64 "ms", age);
    else
        snprintf(buf, size, "%" PRIu64 "s", age / 1000);
    return buf;
}

/* A shm string (at most max bytes) fit for a terminal: control characters
 * become '?', so a hostile name cannot move the cursor or fake a line. */
static const char *printable(const char *s, size_t max, char *buf, size_t size)
{
    size_t n = strnlen(s, max);
    if (n >= size)
        n = size - 1;
    for (size_t i = 0; i < n; i++)
        buf[i] = (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? '?' : s[i];
    buf[n] = '\0';
    return buf;
}

static void print_instance(const struct shm_header *h, const char *shm_path)
{
    char up[32], version[SHM_VERSION_MAX + 1];
    printf("saker %s master pid %d, up %s, generation %" PRIu64 ", state %s\n",
           printable(h->server_version, sizeof h->server_version, version, sizeof version),
           h->master_pid,
           format_duration((int64_t)time(NULL) - h->started_at, up, sizeof up),
           (uint64_t)h->generation, shm_instance_state_name(h->state));
    printf("%u workers per generation, shm %s (layout %u, %u slots)\n",
           (unsigned)h->workers_per_generation, shm_path, h->layout_version, h->slot_count);
}

static void print_listeners(const struct shm_header *h)
{
    if (h->listener_count == 0)
        return;
    printf("listeners:\n");
    for (uint32_t i = 0; i < h->listener_count && i < SHM_MAX_LISTENERS; i++) {
        const struct shm_listener *l = &h->listeners[i];
        char name[sizeof l->endpoint + 1], url[sizeof l->url + 1], addr[sizeof l->address + 1];
        printf("  %-12s %-32s %s\n", printable(l->endpoint, sizeof l->endpoint, name, sizeof name),
               printable(l->url, sizeof l->url, url, sizeof url),
               printable(l->address, sizeof l->address, addr, sizeof addr));
    }
}

static void print_rejections(const uint64_t *c)
{
    bool any = false;
    for (int r = SHM_REJECT_FIRST; r < SHM_COUNTER_COUNT; r++) {
        if (c[r] == 0)
            continue;
        printf("%s%s %" PRIu64, any ? ", " : "rejections   ", shm_reject_reason(r), c[r]);
        any = true;
    }
    if (any)
        printf("\n");
}

static void print_totals(const struct shm_totals *t)
{
    const uint64_t *c = t->counters;
    char in[32], out[32];
    printf("connections  %" PRIu64 " open, %" PRIu64 " accepted\n", t->connections_open,
           c[SHM_CONNECTIONS_ACCEPTED]);
    printf("requests     %" PRIu64 "\n", c[SHM_REQUESTS]);
    printf("responses    1xx %" PRIu64 ", 2xx %" PRIu64 ", 3xx %" PRIu64 ", 4xx %" PRIu64
           ", 5xx %" PRIu64 "\n", c[SHM_RESPONSES_1XX], c[SHM_RESPONSES_2XX],
           c[SHM_RESPONSES_3XX], c[SHM_RESPONSES_4XX], c[SHM_RESPONSES_5XX]);
    printf("bytes        in %s (%" PRIu64 "), out %s (%" PRIu64 ")\n",
           format_bytes(c[SHM_BYTES_IN], in, sizeof in), c[SHM_BYTES_IN],
           format_bytes(c[SHM_BYTES_OUT], out, sizeof out), c[SHM_BYTES_OUT]);
    print_rejections(c);
}

static void print_reload(const struct shm_header *h)
{
    if (h->reload_count == 0)
        return;
    char ago[32], message[SHM_MESSAGE_MAX + 1];
    printf("last reload  %s in %" PRIu64 " ms, %s ago (%" PRIu64 " reloads)",
           h->reload_ok ? "ok" : "FAILED", h->reload_duration_ms,
           format_duration((int64_t)time(NULL) - h->reload_finished_at, ago, sizeof ago),
           h->reload_count);
    if (h->reload_message[0] != '\0')
        printf(": %s", printable(h->reload_message, sizeof h->reload_message, message,
                                 sizeof message));
    printf("\n");
}

static void print_worker(unsigned slot, const struct shm_slot *s, uint64_t now_ms)
{
    char age[32], in[32], out[32];
    printf("%4u %7d %4" PRIu64 " %4d %-9s %9s %6" PRIu64 " %9" PRIu64 " %9" PRIu64
           " %8" PRIu64 " %6" PRIu64 " %6" PRIu64 " %9s %9s\n",
           slot, (int)s->pid, (uint64_t)s->generation, (int)s->cpu,
           shm_worker_state_name(s->state), format_age(s->heartbeat_ms, now_ms, age, sizeof age),
           (uint64_t)s->connections_open, (uint64_t)s->counters[SHM_CONNECTIONS_ACCEPTED],
           (uint64_t)s->counters[SHM_REQUESTS], (uint64_t)s->counters[SHM_RESPONSES_2XX],
           (uint64_t)s->counters[SHM_RESPONSES_4XX], (uint64_t)s->counters[SHM_RESPONSES_5XX],
           format_bytes(s->counters[SHM_BYTES_IN], in, sizeof in),
           format_bytes(s->counters[SHM_BYTES_OUT], out, sizeof out));
}

static void print_workers(const struct shm *shm)
{
    uint64_t now_ms = clock_now_monotonic_ms();
    printf("\n%4s %7s %4s %4s %-9s %9s %6s %9s %9s %8s %6s %6s %9s %9s\n", "SLOT", "PID",
           "GEN", "CPU", "STATE", "HEARTBEAT", "OPEN", "ACCEPTED", "REQUESTS", "2XX", "4XX",
           "5XX", "IN", "OUT");
    for (unsigned i = 0; i < shm->header->slot_count; i++) {
        struct shm_slot s;
        shm_snapshot_slot(shm, i, &s);
        if (s.pid != 0)
            print_worker(i, &s, now_ms);
    }
}

static void print_status(const struct shm *shm, const char *shm_path)
{
    struct shm_header h;
    struct shm_totals t;
    if (shm_snapshot_header(shm, &h) != SK_OK)
        fprintf(stderr, "sakerctl: warning: the master is writing the header; "
                "listeners and reload message may be torn\n");
    if (shm_snapshot_totals(shm, &t) != SK_OK)
        fprintf(stderr, "sakerctl: warning: totals changed under every read; "
                "they may be off\n");
    print_instance(&h, shm_path);
    print_listeners(&h);
    print_totals(&t);
    print_reload(&h);
    printf("workers      %u live, %" PRIu64 " started, %" PRIu64 " died unexpectedly, %"
           PRIu64 " watchdog kills\n", t.workers_live, (uint64_t)h.worker_starts,
           (uint64_t)h.worker_deaths, (uint64_t)h.worker_watchdog_kills);
    print_workers(shm);
}

int cli_cmd_status(struct cli *cli, int argc, char **argv)
{
    bool json = false;
    const struct cli_flag flags[] = {{"--json", &json}};
    int rc = cli_parse_flags(argc, argv, flags, sizeof flags / sizeof flags[0]);
    if (rc == CLI_EXIT_OK)
        rc = cli_open_instance(cli);
    if (rc != CLI_EXIT_OK)
        return rc;
    if (json)
        cli_status_json_write(&cli->shm, cli->shm_path, stdout);
    else
        print_status(&cli->shm, cli->shm_path);
    return CLI_EXIT_OK;
}
