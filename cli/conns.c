/*
 * conns.c - what `sakerctl conns [--slot N] [--json]` prints: every
 * worker's current connections, from their connection lists in shm
 * (connection_list: on).
 *
 *   SLOT     PID CLIENT                  PROTO    STATE          AGE  IN      OUT     REQUEST
 *      0    1201 127.0.0.1:50432         http/1.1 idle            12s 1.2KiB  3.4KiB  GET / HTTP/1.1
 *
 * Entries are copied under their seqlocks (shm_snapshot_conn): the
 * workers never wait for sakerctl. --json: one object,
 *   {"connections":[{slot, pid, client, protocol, tls, state, age_ms,
 *                    state_ms, bytes_in, bytes_out, request}],
 *    "unlisted": n, "enabled": bool}
 * (unlisted: open connections past the lists' SHM_CONNS_PER_SLOT).
 */
#include <arpa/inet.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "cli/cli.h"
#include "common/clock.h"

struct listing {
    FILE *out;
    bool json, enabled;
    unsigned count;
    uint64_t unlisted;
};

/* "127.0.0.1:50432", "[::1]:50432", "unix". */
static const char *client_text(const struct shm_conn *e, char *buf, size_t size)
{
    char addr[INET6_ADDRSTRLEN] = "?";
    if (e->family == AF_INET || e->family == AF_INET6)
        inet_ntop(e->family, e->address, addr, sizeof addr);
    if (e->family == AF_INET)
        snprintf(buf, size, "%s:%u", addr, e->port);
    else if (e->family == AF_INET6)
        snprintf(buf, size, "[%s]:%u", addr, e->port);
    else
        snprintf(buf, size, "unix");
    return buf;
}

static void print_row(const struct listing *l, unsigned slot, int pid, const struct shm_conn *e,
                      uint64_t now_ms)
{
    char client[80], age[32], in[32], out[32], request[SHM_CONN_REQUEST_MAX];
    uint64_t age_ms = now_ms > e->accepted_ms ? now_ms - e->accepted_ms : 0;
    client_text(e, client, sizeof client);
    cli_printable(e->request, sizeof e->request, request, sizeof request);
    if (l->json) {
        fprintf(l->out, "%s{\"slot\":%u,\"pid\":%d,\"client\":", l->count ? "," : "", slot,
                pid);
        cli_json_string(l->out, client, sizeof client);
        fprintf(l->out, ",\"protocol\":\"%s\",\"tls\":%s,\"state\":\"%s\",\"age_ms\":%" PRIu64
                ",\"state_ms\":%" PRIu64 ",\"bytes_in\":%" PRIu64 ",\"bytes_out\":%" PRIu64
                ",\"request\":", shm_conn_protocol_name(e->protocol), e->tls ? "true" : "false",
                shm_conn_state_name(e->state), age_ms,
                now_ms > e->state_ms ? now_ms - e->state_ms : 0, e->bytes_in, e->bytes_out);
        cli_json_string(l->out, e->request, sizeof e->request);
        fputc('}', l->out);
        return;
    }
    fprintf(l->out, "%4u %7d %-23s %-8s%s %-13s %6s %8s %8s  %s\n", slot, pid, client,
            shm_conn_protocol_name(e->protocol), e->tls ? "+tls" : "    ",
            shm_conn_state_name(e->state),
            cli_format_duration((int64_t)(age_ms / 1000), age, sizeof age),
            cli_format_bytes(e->bytes_in, in, sizeof in),
            cli_format_bytes(e->bytes_out, out, sizeof out), request);
}

/* One worker's list: the entries in use below its high-water mark. */
static void list_slot(const struct shm *shm, unsigned slot, int pid, struct listing *l,
                      uint64_t now_ms)
{
    const struct shm_conn_list *list = shm_conns_of(shm, slot);
    if (!atomic_load_explicit(&list->enabled, memory_order_relaxed))
        return;
    l->enabled = true;
    uint64_t unlisted = atomic_load_explicit(&list->unlisted, memory_order_relaxed);
    l->unlisted = unlisted > UINT64_MAX - l->unlisted ? UINT64_MAX : l->unlisted + unlisted;
    unsigned used = atomic_load_explicit(&list->used, memory_order_acquire);
    for (unsigned i = 0; i < used && i < SHM_CONNS_PER_SLOT; i++) {
        struct shm_conn e;
        /* A free entry needs no second look: the copy says so. */
        if (list->entries[i].state == SHM_CONN_FREE ||
            shm_snapshot_conn(shm, slot, i, &e) != SK_OK || e.state == SHM_CONN_FREE ||
            e.state >= SHM_CONN_STATES)
            continue;
        print_row(l, slot, pid, &e, now_ms);
        l->count++;
    }
}

static void list_all(const struct shm *shm, int only, struct listing *l)
{
    uint64_t now_ms = clock_now_monotonic_ms();
    if (l->json)
        fputs("{\"connections\":[", l->out);
    else
        fprintf(l->out, "%4s %7s %-23s %-12s %-13s %6s %8s %8s  %s\n", "SLOT", "PID", "CLIENT",
                "PROTO", "STATE", "AGE", "IN", "OUT", "REQUEST");
    for (unsigned slot = 0; slot < shm->header->slot_count; slot++) {
        struct shm_slot s;
        shm_snapshot_slot(shm, slot, &s);
        if (s.pid != 0 && shm_worker_state_live(s.state) && (only < 0 || (unsigned)only == slot))
            list_slot(shm, slot, s.pid, l, now_ms);
    }
}

void cli_conns_write(const struct shm *shm, int only, bool json, FILE *out)
{
    struct listing l = {.out = out, .json = json};
    list_all(shm, only, &l);
    if (l.json) {
        fprintf(out, "],\"unlisted\":%" PRIu64 ",\"enabled\":%s}\n", l.unlisted,
                l.enabled ? "true" : "false");
    } else if (!l.enabled) {
        fprintf(out, "(no worker keeps a connection list: set connection_list: on and reload)\n");
    } else {
        fprintf(out, "%u connections listed", l.count);
        if (l.unlisted > 0)
            fprintf(out, ", %" PRIu64 " more not (a worker lists %d)", l.unlisted,
                    SHM_CONNS_PER_SLOT);
        fputc('\n', out);
    }
}
