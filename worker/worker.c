/*
 * worker.c - the worker process: event loop, accept, heartbeat, stop.
 * See worker.h for the contract.
 */
#include "worker/worker.h"

#include <errno.h>
#include <limits.h>
#include <malloc.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/slab.h"
#include "worker/conn.h"
#include "worker/conn_list.h"
#include "worker/conn_tls.h"
#include "worker/h1.h"
#include "worker/module.h"
#include "worker/file_cache.h"
#include "worker/route_stats.h"
#include "worker/uring.h"

#define WORKER_READ_BUFFER_SIZE (64 * 1024)
#define WORKER_ACCEPTS_PER_WAKEUP 64
#define WORKER_BLOCKS_KEPT 256
/* Out of descriptors, a level-triggered listener would wake the loop again
 * at once for the connection it cannot take: stop watching the listeners
 * for this long (nginx waits as long), serving the open connections, some
 * of which close meanwhile. */
#define WORKER_ACCEPT_BACKOFF_MS 500

int worker_init_core(struct worker *w, const struct config *config, struct err *err)
{
    return worker_init_core_on(w, config, NULL, NULL, err);
}

int worker_init_core_on(struct worker *w, const struct config *config,
                        const struct worker_params *p, struct event_base *base,
                        struct err *err)
{
    memset(w, 0, sizeof *w);
    w->config = config;
    w->base = base;
    if (p != NULL) {
        w->shm = p->shm;
        w->slot = &p->shm->slots[p->slot];
        w->index = p->index;
        w->generation = p->generation;
        w->rate_tables = p->rate_tables;
        w->route_entries = p->route_entries;
    }
    block_pool_init(&w->blocks, WORKER_BLOCKS_KEPT);
    turn_init(&w->turn);
    timers_init(&w->timers, clock_now_monotonic_ms);
    access_log_init(&w->access_log);
    w->read_buffer_size = WORKER_READ_BUFFER_SIZE;
    w->read_buffer = malloc(w->read_buffer_size);
    if (w->read_buffer == NULL)
        return err_set(err, "worker: out of memory");
    /* The modules' worker_init before the routes: a route's init may use
     * its module's worker state. Each stop is harmless if never started. */
    if (upstreams_init(&w->upstreams, config, err) != SK_OK ||
        module_workers_start(w, err) != SK_OK ||
        router_build(&w->router, config, err) != SK_OK) {
        module_workers_stop(w);
        upstreams_destroy(&w->upstreams);
        free(w->read_buffer);
        w->read_buffer = NULL;
        return SK_ERROR;
    }
    clock_update();
    return SK_OK;
}

void worker_destroy_core(struct worker *w)
{
    while (w->conns != NULL)
        conn_close(w->conns);
    turn_destroy(&w->turn); /* the releases of those closes */
    uring_stop(w); /* after them: they cancel what the kernel holds */
    upstreams_health_stop(&w->upstreams);
    upstreams_destroy(&w->upstreams); /* after them: connections point into it */
    upconn_free_spares();
    timers_destroy(&w->timers);
    conn_free_cache(w);
    h1_free_spares(w);
    conn_tls_free_scratch();
    access_log_close(&w->access_log);
    router_destroy(&w->router);
    module_workers_stop(w); /* after the routes' finis */
    block_pool_destroy(&w->blocks);
    free(w->read_buffer);
    w->read_buffer = NULL;
}

/* Watches the listeners unless paused (drain) or backing off. */
static void worker_watch_listeners(struct worker *w)
{
    bool watch = !w->accept_paused && !w->accept_backoff;
    for (size_t i = 0; i < w->listener_count; i++) {
        struct event *e = w->listeners[i].accept_event;
        if (e != NULL && watch)
            event_add(e, NULL);
        else if (e != NULL)
            event_del(e);
    }
}

/* Starts or stops watching the listeners, keeping the sockets (drain). */
static void worker_set_accepting(struct worker *w, bool accepting)
{
    w->accept_paused = !accepting;
    worker_watch_listeners(w);
}

static void on_accept_resume(evutil_socket_t fd, short what, void *arg)
{
    struct worker *w = arg;
    (void)fd;
    (void)what;
    w->accept_backoff = false;
    worker_watch_listeners(w);
}

static void worker_accept_backoff(struct worker *w)
{
    if (w->accept_backoff || w->accept_resume_event == NULL)
        return;
    struct timeval delay = {0, WORKER_ACCEPT_BACKOFF_MS * 1000};
    w->accept_backoff = true;
    worker_watch_listeners(w);
    event_add(w->accept_resume_event, &delay);
}

/* The listener callback needs both the listener and the worker. */
struct accept_context {
    struct worker *worker;
    struct worker_listener *listener;
};

/* accept4 failed for want of a resource that a closing connection gives
 * back: the connection stays queued for later. */
static bool accept_error_is_shortage(int error)
{
    return error == EMFILE || error == ENFILE || error == ENOBUFS || error == ENOMEM;
}

/* Accepts up to max queued connections; returns how many. */
static int accept_batch(struct accept_context *ctx, int max)
{
    int accepted = 0;
    while (accepted < max) {
        struct sockaddr_storage peer;
        socklen_t peer_len = sizeof peer;
        int fd = accept4(ctx->listener->fd, (struct sockaddr *)&peer, &peer_len,
                         SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0) {
            /* TCP_NODELAY comes from the listening socket (listener.c). */
            conn_open(ctx->worker, fd, ctx->listener, (struct sockaddr *)&peer, peer_len);
            accepted++;
            continue;
        }
        if (errno == EINTR || errno == ECONNABORTED)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            log_limited(LOG_ERROR, errno, "accept4()");
        if (accept_error_is_shortage(errno)) {
            file_cache_flush(); /* kept descriptors are the first to give back */
            worker_accept_backoff(ctx->worker);
        }
        break;
    }
    return accepted;
}

static void on_accept_ready(evutil_socket_t listen_fd, short what, void *arg)
{
    struct accept_context *ctx = arg;
    (void)listen_fd;
    (void)what;
    clock_update();
    if (!ctx->worker->draining)
        accept_batch(ctx, WORKER_ACCEPTS_PER_WAKEUP);
}

static int worker_listen(struct worker *w, const struct worker_params *p)
{
    w->listeners = p->listeners;
    w->listener_count = p->listener_count;
    for (size_t i = 0; i < w->listener_count; i++) {
        struct worker_listener *l = &w->listeners[i];
        struct accept_context *ctx = malloc(sizeof *ctx);
        if (ctx == NULL)
            return SK_ERROR;
        *ctx = (struct accept_context){w, l};
        l->accept_event = event_new(w->base, l->fd, EV_READ | EV_PERSIST, on_accept_ready, ctx);
        if (l->accept_event == NULL) {
            free(ctx);
            return SK_ERROR;
        }
    }
    worker_set_accepting(w, !p->start_paused);
    return SK_OK;
}

/* Stops accepting for good. With take_queued, first accepts what the
 * kernel has already queued: those clients completed their handshake with
 * this generation, and when this was the last open copy of a socket (a
 * listener removed by a reload), closing it would reset them. They are
 * served like every other connection of a draining worker. */
static void worker_stop_accepting(struct worker *w, bool take_queued)
{
    for (size_t i = 0; i < w->listener_count; i++) {
        struct worker_listener *l = &w->listeners[i];
        if (l->accept_event == NULL)
            continue;
        struct accept_context *ctx = event_get_callback_arg(l->accept_event);
        if (take_queued)
            accept_batch(ctx, INT_MAX);
        free(ctx);
        event_free(l->accept_event);
        l->accept_event = NULL;
        close(l->fd);
    }
}

static void worker_publish_state(struct worker *w, enum shm_worker_state state)
{
    if (w->slot != NULL)
        atomic_store_explicit(&w->slot->state, state, memory_order_relaxed);
}

/* The file cache counts for the whole process, which is this slot's. */
static void worker_publish_file_cache(struct worker *w)
{
    struct file_cache_counts n;
    file_cache_counts(&n);
    const uint64_t values[] = {n.hits, n.misses, n.evictions, n.revalidations};
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++)
        atomic_store_explicit(&w->slot->counters[SHM_FILE_CACHE_HITS + i], values[i],
                              memory_order_relaxed);
}

/* `open_file_cache:` in force, within the descriptor budget. */
static void worker_configure_file_cache(const struct worker *w)
{
    const struct config_file_cache *c = &w->config->open_file_cache;
    if (c->max == 0)
        return;
    size_t max = file_cache_configure(c->max, c->valid_ms);
    if (max < c->max && w->index == 0)
        log_msg(LOG_WARN, "open_file_cache: max %llu lowered to %zu (a quarter of the "
                "open files limit, the rest kept for connections)",
                (unsigned long long)c->max, max);
}

/* A worker quiet for a heartbeat (no connection accepted, no request)
 * gives the kernel back malloc's free pages, once per quiet spell: a
 * burst of handshakes (OpenSSL's temporaries, tens of KB each) leaves
 * megabytes freed but resident, with idle connections between them,
 * which no new allocation may ever reuse. The spares go first (HTTP/1
 * states, output buffers, route statistics' stamps, closed connections'
 * structures), then the slab's emptied runs: a turn that served
 * many connections at once (io_uring sends a turn's responses at its
 * end) left one of each per connection, the small stamps between the
 * others' pages, which they would keep resident. Nothing
 * is done while busy: the pages would be faulted in again at once. */
static void worker_trim_when_quiet(struct worker *w)
{
    if (w->slot == NULL)
        return;
    uint64_t mark = atomic_load_explicit(&w->slot->counters[SHM_CONNECTIONS_ACCEPTED],
                                         memory_order_relaxed) +
                    atomic_load_explicit(&w->slot->counters[SHM_REQUESTS],
                                         memory_order_relaxed);
    if (mark != w->quiet_mark) {
        w->quiet_mark = mark;
        w->heap_trimmed = false;
    } else if (!w->heap_trimmed) {
        w->heap_trimmed = true;
        uring_trim(w);
        outq_free_spares();
        h1_free_spares(w);
        route_stats_free_spares();
        conn_free_cache(w);
        slab_trim();
        malloc_trim(0);
    }
}

void worker_tick(struct worker *w, uint64_t now)
{
    if (w->slot != NULL) {
        atomic_store_explicit(&w->slot->heartbeat_ms, now, memory_order_relaxed);
        worker_publish_file_cache(w);
    }
    /* Input the ring has received counts as come in time, as the bytes
     * waiting in a socket do (conn_check_deadline). */
    uring_reap(w);
    file_cache_sweep();
    /* One turn around the walk: a deadline check may read and answer,
     * and what that closes is released only after the walk (turn.h). */
    turn_enter(&w->turn);
    struct conn *c = w->conns;
    while (c != NULL) {
        struct conn *next = c->next; /* c may close */
        conn_check_deadline(c, now);
        c = next;
    }
    turn_leave(&w->turn);
    access_log_flush(&w->access_log);
    log_limit_flush();
    worker_trim_when_quiet(w);
    if (w->draining && w->conn_count == 0 && w->base != NULL)
        event_base_loopexit(w->base, NULL);
}

static void worker_heartbeat(struct worker *w)
{
    clock_update();
    worker_tick(w, clock_monotonic_ms());
}

static void on_heartbeat(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    worker_heartbeat(arg);
}

void worker_begin_drain(struct worker *w)
{
    if (w->draining)
        return;
    w->draining = true;
    worker_publish_state(w, SHM_WORKER_DRAINING);
    worker_stop_accepting(w, true);
    file_cache_configure(0, 0); /* back to one turn: no file held open past its responses */
    uint64_t now = clock_monotonic_ms();
    for (struct conn *c = w->conns; c != NULL; c = c->next)
        conn_drain(c, now);
    if (w->conn_count == 0 && w->base != NULL)
        event_base_loopexit(w->base, NULL);
}

static void on_signal(evutil_socket_t signo, short what, void *arg)
{
    (void)what;
    struct worker *w = arg;
    switch (signo) {
    case SIGTERM:
    case SIGINT:
        log_msg(LOG_INFO, "worker %u: draining", w->index);
        worker_begin_drain(w);
        break;
    case SIGQUIT:
        w->stopping = true;
        event_base_loopbreak(w->base);
        break;
    case SIGUSR1:
        if (log_open(w->config->error_log) != SK_OK)
            log_errno(LOG_ERROR, errno, "open(%s)", w->config->error_log);
        access_log_reopen(&w->access_log, w->config);
        break;
    case SIGUSR2:
        if (!w->draining)
            worker_set_accepting(w, atomic_load(&w->shm->header->state) != SHM_INSTANCE_DRAINING);
        break;
    }
}

static int worker_events(struct worker *w)
{
    static const int signals[] = {SIGTERM, SIGINT, SIGQUIT, SIGUSR1, SIGUSR2};
    for (size_t i = 0; i < sizeof signals / sizeof signals[0]; i++) {
        w->signal_events[i] = evsignal_new(w->base, signals[i], on_signal, w);
        if (w->signal_events[i] == NULL || event_add(w->signal_events[i], NULL) != 0)
            return SK_ERROR;
    }
    struct timeval second = {1, 0};
    w->heartbeat_event = event_new(w->base, -1, EV_PERSIST, on_heartbeat, w);
    if (w->heartbeat_event == NULL || event_add(w->heartbeat_event, &second) != 0)
        return SK_ERROR;
    w->accept_resume_event = evtimer_new(w->base, on_accept_resume, w);
    return w->accept_resume_event != NULL ? SK_OK : SK_ERROR;
}

static void worker_teardown(struct worker *w)
{
    worker_stop_accepting(w, false);
    for (size_t i = 0; i < sizeof w->signal_events / sizeof w->signal_events[0]; i++)
        if (w->signal_events[i] != NULL)
            event_free(w->signal_events[i]);
    if (w->heartbeat_event != NULL)
        event_free(w->heartbeat_event);
    if (w->accept_resume_event != NULL)
        event_free(w->accept_resume_event);
    worker_destroy_core(w);
    route_stats_free_spares(); /* after the connections: their queues hold stamps */
    file_cache_stop(); /* after the connections: they hold its files */
    event_base_free(w->base);
}

/* glibc gives the top of its heap back to the kernel once 128 KiB lie
 * free there, and serves blocks of 128 KiB and more with mmap. A response
 * that compresses takes codec state for its length and frees it at its
 * end: zlib's window, hash chains and pending buffer (four 64 KiB blocks),
 * Brotli's ring buffer and hash table (two blocks of about 1 MiB). Each
 * such response grew the heap or mapped its blocks, faulted the fresh
 * pages in zeroed (57 minor faults per gzip response of a 1 MB file, 120
 * per Brotli one) and gave them back. nginx escapes this through glibc's
 * moving thresholds (its one block per stream is mmapped once, which
 * raises them); saker's blocks never move them. Fixed thresholds keep
 * blocks under 4 MiB in the heap and up to 8 MiB free at its top for the
 * next response: what glibc's moving thresholds would allow too (they go
 * up to 32 MiB). A quiet worker gives it all back (worker_trim_when_quiet). */
static void worker_tune_malloc(void)
{
    mallopt(M_MMAP_THRESHOLD, 4 * 1024 * 1024);
    mallopt(M_TRIM_THRESHOLD, 8 * 1024 * 1024);
}

int worker_main(const struct worker_params *p)
{
    worker_tune_malloc();
    /* What connections keep in OpenSSL, nghttp2 and libevent, and their
     * own structures, comes from the slab from here on (common/slab.h);
     * if it cannot be had, from malloc, as in the master. */
    slab_enable();
    struct worker w;
    struct err err;
    struct event_base *base = event_base_new();
    if (base == NULL) {
        log_msg(LOG_ERROR, "worker %u: event_base_new failed", p->index);
        return 1;
    }
    if (worker_init_core_on(&w, p->config, p, base, &err) != SK_OK) {
        log_msg(LOG_ERROR, "worker %u: %s", p->index, err.message);
        return 1;
    }
    if (access_log_open(&w.access_log, p->config, &err) != SK_OK)
        log_msg(LOG_ERROR, "worker %u: access log: %s", p->index, err.message);
    upstreams_attach(&w.upstreams, w.shm, w.slot, w.generation);
    if (file_cache_start(w.base) != 0 || turn_attach(&w.turn, w.base) != SK_OK ||
        timers_attach(&w.timers, w.base) != SK_OK ||
        (w.index == 0 && upstreams_health_start(&w) != SK_OK) ||
        worker_events(&w) != SK_OK ||
        (p->config->transport == CONFIG_TRANSPORT_IO_URING && uring_start(&w) == SK_ERROR) ||
        worker_listen(&w, p) != SK_OK) {
        log_errno(LOG_ERROR, errno, "worker %u: event loop set-up", p->index);
        return 1;
    }
    worker_configure_file_cache(&w);
    worker_heartbeat(&w);
    conn_publish_limits(&w);
    conn_list_start(&w);
    route_stats_start(&w);
    worker_publish_state(&w, SHM_WORKER_RUNNING);
    event_base_dispatch(w.base);
    worker_publish_state(&w, SHM_WORKER_EXITED);
    worker_teardown(&w);
    return 0;
}
