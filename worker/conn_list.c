/*
 * conn_list.c - the worker's connections in its shm slot; see conn_list.h.
 */
#include "worker/conn_list.h"

#include <string.h>

#include "common/clock.h"
#include "shm/shm.h"
#include "worker/conn.h"
#include "worker/h2.h"
#include "worker/worker.h"

/* conn->list_entry: 0 no entry yet, UNLISTED counted as unlisted, else
 * 1 + its index. */
#define UNLISTED UINT16_MAX

/* A worker is one process: its list and the entries free in it. */
static struct shm_conn_list *list;
static uint16_t free_entries[SHM_CONNS_PER_SLOT];
static unsigned free_count;

static void gauge(_Atomic uint64_t *g, int64_t delta)
{
    uint64_t v = atomic_load_explicit(g, memory_order_relaxed);
    atomic_store_explicit(g, v + (uint64_t)delta, memory_order_relaxed);
}

void conn_list_start(struct worker *w)
{
    list = NULL;
    if (w->shm == NULL || w->slot == NULL || !w->config->connection_list)
        return;
    list = shm_conns_of(w->shm, (unsigned)(w->slot - w->shm->slots));
    w->conn_list_on = true;
    /* The lowest entries first: readers look no further than `used`. */
    for (free_count = 0; free_count < SHM_CONNS_PER_SLOT; free_count++)
        free_entries[free_count] = (uint16_t)(SHM_CONNS_PER_SLOT - 1 - free_count);
    atomic_store_explicit(&list->enabled, 1, memory_order_relaxed);
}

static struct shm_conn *entry_of(const struct conn *c)
{
    return c->list_entry != 0 && c->list_entry != UNLISTED ? &list->entries[c->list_entry - 1]
                                                          : NULL;
}

/* Who the connection is, written once when it takes an entry. */
static void describe(struct shm_conn *e, const struct conn *c)
{
    e->tls = c->transport != NULL && c->transport->handshake != NULL; /* only TLS has one */
    e->family = (uint8_t)c->peer.sa.sa_family;
    e->port = 0;
    memset(e->address, 0, sizeof e->address);
    if (c->peer.sa.sa_family == AF_INET) {
        memcpy(e->address, &c->peer.in.sin_addr, 4);
        e->port = ntohs(c->peer.in.sin_port);
    } else if (c->peer.sa.sa_family == AF_INET6) {
        memcpy(e->address, &c->peer.in6.sin6_addr, 16);
        e->port = ntohs(c->peer.in6.sin6_port);
    }
    e->accepted_ms = clock_monotonic_ms(); /* a connection takes its entry at accept */
    e->bytes_in = e->bytes_out = 0;
    e->request[0] = '\0';
}

/* An entry for c, or false (counted as unlisted until one is free). */
static bool claim(struct conn *c)
{
    if (free_count == 0) {
        if (c->list_entry != UNLISTED)
            gauge(&list->unlisted, 1);
        c->list_entry = UNLISTED;
        return false;
    }
    if (c->list_entry == UNLISTED)
        gauge(&list->unlisted, -1);
    uint16_t index = free_entries[--free_count];
    c->list_entry = (uint16_t)(index + 1);
    if (index >= atomic_load_explicit(&list->used, memory_order_relaxed))
        atomic_store_explicit(&list->used, index + 1u, memory_order_release);
    gauge(&list->listed, 1);
    struct shm_conn *e = &list->entries[index];
    shm_seq_write_begin(&e->seq);
    describe(e, c);
    shm_seq_write_end(&e->seq);
    return true;
}

/* "GET /path HTTP/1.1", cut to fit. */
static void request_line(char *out, const struct exchange *ex)
{
    size_t room = SHM_CONN_REQUEST_MAX - 1, n = 0;
    const char *parts[] = {ex->method_name, " ", ex->target,
                           ex->version_major == 2 ? " HTTP/2" :
                           ex->version_minor == 0 ? " HTTP/1.0" : " HTTP/1.1"};
    for (size_t i = 0; i < sizeof parts / sizeof parts[0] && n < room; i++) {
        size_t len = strnlen(parts[i], room - n);
        memcpy(out + n, parts[i], len);
        n += len;
    }
    out[n] = '\0';
}

void conn_list_request(struct conn *c, const struct exchange *ex)
{
    struct shm_conn *e = list != NULL && c != NULL ? entry_of(c) : NULL;
    if (e == NULL || ex->method_name == NULL || ex->target == NULL)
        return;
    shm_seq_write_begin(&e->seq);
    request_line(e->request, ex);
    shm_seq_write_end(&e->seq);
}

/* The handshake, writing and closing are the connection's to tell; the
 * rest is its protocol's (conn_protocol.state). */
static enum shm_conn_state state_of(struct conn *c)
{
    if (c->lingering)
        return SHM_CONN_CLOSING;
    if (c->handshaking)
        return SHM_CONN_HANDSHAKE;
    if (c->proto == NULL)
        return SHM_CONN_READING_HEAD; /* nothing read yet */
    enum shm_conn_state s = c->proto->state != NULL ? c->proto->state(c) : SHM_CONN_HANDLING;
    if ((s == SHM_CONN_HANDLING || s == SHM_CONN_IDLE) && !conn_output_empty(c))
        return SHM_CONN_WRITING;
    return s;
}

void conn_list_publish(struct conn *c)
{
    if (list == NULL || c->outbound || c->closed ||
        ((c->list_entry == 0 || c->list_entry == UNLISTED) && !claim(c)))
        return;
    struct shm_conn *e = entry_of(c);
    enum shm_conn_state state = state_of(c);
    uint64_t now = clock_monotonic_ms();
    shm_seq_write_begin(&e->seq);
    if (state != e->state)
        e->state_ms = now;
    e->state = (uint8_t)state;
    e->protocol = c->proto == &h2_protocol ? SHM_CONN_HTTP2
                  : c->proto == NULL     ? SHM_CONN_UNDECIDED
                                         : SHM_CONN_HTTP1; /* HTTP/1.1, or a tunnel it upgraded */
    shm_seq_write_end(&e->seq);
}

void conn_list_readdress(struct conn *c)
{
    struct shm_conn *e = list != NULL ? entry_of(c) : NULL;
    if (e == NULL)
        return;
    uint64_t accepted_ms = e->accepted_ms, in = e->bytes_in, out = e->bytes_out;
    shm_seq_write_begin(&e->seq);
    describe(e, c);
    e->accepted_ms = accepted_ms;
    e->bytes_in = in;
    e->bytes_out = out;
    shm_seq_write_end(&e->seq);
}

void conn_list_bytes(struct conn *c, uint64_t in, uint64_t out)
{
    struct shm_conn *e = list != NULL ? entry_of(c) : NULL;
    if (e == NULL)
        return;
    shm_seq_write_begin(&e->seq);
    e->bytes_in += in;
    e->bytes_out += out;
    shm_seq_write_end(&e->seq);
}

void conn_list_close(struct conn *c)
{
    if (list == NULL || c->list_entry == 0)
        return;
    struct shm_conn *e = entry_of(c);
    if (e == NULL) {
        gauge(&list->unlisted, -1);
    } else {
        shm_seq_write_begin(&e->seq);
        e->state = SHM_CONN_FREE;
        shm_seq_write_end(&e->seq);
        free_entries[free_count++] = (uint16_t)(c->list_entry - 1);
        gauge(&list->listed, -1);
    }
    c->list_entry = 0;
}
