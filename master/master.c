/*
 * master.c - supervision loop: spawn, reap, respawn, watchdog, drain, stop.
 * See master.h; reloads are in reload.c.
 */
#include "master/master.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/log.h"
#include "conf/config_module.h"
#include "include/saker/module.h"
#include "master/activation.h"
#include "master/certificates.h"
#include "master/notify.h"
#include "master/runfiles.h"
#include "master/spawn.h"
#include "master/tls_keys.h"
#include "tls/tls_config.h"

#define MASTER_TICK_MS 100
#define RESPAWN_BACKOFF_MIN_MS 100
#define RESPAWN_BACKOFF_MAX_MS 10000
#define WORKER_STABLE_MS 10000 /* a worker that lived this long resets the backoff */

enum { DRAIN_REQUEST = 1, UNDRAIN_REQUEST = 2, UPGRADE_REQUEST = 3 };

static volatile sig_atomic_t got_child, got_term, got_quit, got_usr1, got_hup, got_tick;
static volatile sig_atomic_t got_drain_request;

static void on_signal(int signo, siginfo_t *info, void *context)
{
    (void)context;
    switch (signo) {
    case SIGCHLD: got_child = 1; break;
    case SIGTERM:
    case SIGINT: got_term = 1; break;
    case SIGQUIT: got_quit = 1; break;
    case SIGUSR1: got_usr1 = 1; break;
    case SIGHUP: got_hup = 1; break;
    case SIGALRM: got_tick = 1; break;
    case SIGUSR2:
        /* sakerctl drain/undrain send a value with sigqueue(); a plain kill
         * carries none and is ignored. */
        if (info != NULL && info->si_code == SI_QUEUE)
            got_drain_request = info->si_value.sival_int;
        break;
    }
}

static const int master_signals[] = {SIGCHLD, SIGTERM, SIGINT, SIGQUIT,
                                     SIGUSR1, SIGUSR2, SIGHUP, SIGALRM};

static void install_signals(sigset_t *wait_mask)
{
    sigset_t block;
    sigemptyset(&block);
    struct sigaction sa = {.sa_sigaction = on_signal, .sa_flags = SA_SIGINFO};
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < sizeof master_signals / sizeof master_signals[0]; i++) {
        sigaddset(&block, master_signals[i]);
        sigaction(master_signals[i], &sa, NULL);
    }
    struct sigaction ignore = {.sa_handler = SIG_IGN};
    sigaction(SIGPIPE, &ignore, NULL);
    /* Signals stay blocked except inside sigsuspend: no flag is missed
     * between checking it and going to sleep. */
    sigprocmask(SIG_BLOCK, &block, wait_mask);
    for (size_t i = 0; i < sizeof master_signals / sizeof master_signals[0]; i++)
        sigdelset(wait_mask, master_signals[i]);
}

/* In the process that supervises: timers are not inherited by fork, and
 * `saker -d` forks between master_bind and master_start. */
static void start_tick(void)
{
    struct itimerval tick = {{0, MASTER_TICK_MS * 1000}, {0, MASTER_TICK_MS * 1000}};
    setitimer(ITIMER_REAL, &tick, NULL);
}

/* ---- configuration ---------------------------------------------------- */

/* What the config cannot check by itself, checked before anything binds
 * (static roots are the loader's: it checks them with their location). */
static int check_environment(const struct config *config, struct err *err)
{
    if (config->user != NULL && getuid() == 0 && getpwnam(config->user) == NULL)
        return err_set(err, "user '%s' does not exist", config->user);
    if (config->group != NULL && getuid() == 0 && getgrnam(config->group) == NULL)
        return err_set(err, "group '%s' does not exist", config->group);
    /* Certificates, keys and passwords: a bad one fails the start or the
     * reload here, before anything is bound or forked. */
    return tls_check_config(config, err);
}

struct config *master_load_config(const char *file, const char *urls, struct err *err)
{
    struct config *config = file ? config_load_file(file, err) : config_default(err);
    if (config == NULL)
        return NULL;
    if ((urls != NULL && urls[0] != '\0' && config_override_urls(config, urls, err) != SK_OK) ||
        check_environment(config, err) != SK_OK) {
        config_free(config);
        return NULL;
    }
    return config;
}

/* ---- generations and spawning ------------------------------------------ */

/* Every counter the config's modules declare gets its index in the
 * header before the workers that count it are forked (they only look
 * it up). One that does not fit is logged and not kept. */
static void master_publish_module_counters(struct master *m, const struct config *config)
{
    for (size_t i = 0; i < config->module_count; i++) {
        const struct saker_module *d = config->modules[i].desc;
        for (const char *const *c = d != NULL ? d->counters : NULL; c != NULL && *c != NULL; c++)
            if (shm_module_counter_index(&m->shm, d->name, *c, true) < 0)
                log_msg(LOG_WARN, "module '%s': counter '%s' not kept: the segment holds %d "
                                  "module counters and names of %d bytes at most",
                        d->name, *c, SHM_MODULE_COUNTERS, SHM_MODULE_NAME_MAX - 1);
    }
}

static void generation_free_listeners(struct generation *g)
{
    for (size_t i = 0; g->groups != NULL && i < g->listener_count; i++)
        free(g->groups[i].fds);
    free(g->groups);
    free(g->listeners);
    g->groups = NULL;
    g->listeners = NULL;
    g->listener_count = 0;
}

struct generation *master_generation_new(struct master *m, struct config *config,
                                         const struct listener_set *set)
{
    struct generation *g = NULL;
    uint64_t highest = 0;
    for (int i = 0; i < MASTER_GENERATIONS; i++) {
        if (m->generations[i].number == 0 && g == NULL)
            g = &m->generations[i];
        if (m->generations[i].number > highest)
            highest = m->generations[i].number;
    }
    if (g == NULL)
        return NULL;
    g->listeners = calloc(set->count ? set->count : 1, sizeof *g->listeners);
    g->groups = calloc(set->count ? set->count : 1, sizeof *g->groups);
    for (size_t i = 0; g->listeners != NULL && g->groups != NULL && i < set->count; i++) {
        g->listeners[i] = (struct worker_listener){.fd = set->items[i].group.fds[0],
                                                   .endpoint = set->items[i].endpoint};
        if (listener_group_copy(&g->groups[i], &set->items[i].group) != SK_OK) {
            g->listener_count = i;
            generation_free_listeners(g);
            return NULL;
        }
    }
    if (g->listeners == NULL || g->groups == NULL) {
        generation_free_listeners(g);
        return NULL;
    }
    g->listener_count = set->count;
    g->config = config;
    master_publish_module_counters(m, config);
    uint64_t serving = m->current ? m->current->number : m->generation_floor;
    g->number = (highest > serving ? highest : serving) + 1;
    g->live = 0;
    g->retiring = false;
    return g;
}

/* The generation's TLS contexts, once, before its first fork: built in the
 * master so that keys only root may read still load, and shared by every
 * worker of the generation with the master's ticket keys. */
static int generation_tls(struct master *m, struct generation *g, struct err *err)
{
    for (size_t i = 0; i < g->listener_count; i++) {
        struct worker_listener *l = &g->listeners[i];
        if (l->tls != NULL || l->endpoint == NULL || l->endpoint->url.scheme != URL_SCHEME_HTTPS)
            continue;
        if (tls_server_for_endpoint(g->config, l->endpoint, m->ticket_keys,
                                    &l->tls, err) != SK_OK)
            return SK_ERROR;
    }
    return SK_OK;
}

void master_generation_release(struct master *m, struct generation *g)
{
    if (m->current == g)
        m->current = NULL;
    if (m->pending == g)
        m->pending = NULL;
    for (size_t i = 0; i < g->listener_count; i++)
        tls_server_free(g->listeners[i].tls);
    if (g->config != NULL)
        generation_shared_release(m, g);
    config_free(g->config);
    generation_free_listeners(g);
    memset(g, 0, sizeof *g);
}

/* The sockets worker `index` of g polls, each with its listener's
 * endpoint and TLS contexts (listener_group_share). NULL when out of
 * memory. */
static struct worker_listener *worker_sockets(const struct generation *g, unsigned index,
                                              size_t *count)
{
    size_t total = 0;
    for (size_t i = 0; i < g->listener_count; i++)
        total += g->groups[i].count;
    struct worker_listener *out = calloc(total ? total : 1, sizeof *out);
    int *fds = calloc(total ? total : 1, sizeof *fds);
    size_t n = 0;
    for (size_t i = 0; out != NULL && fds != NULL && i < g->listener_count; i++) {
        size_t k = listener_group_share(&g->groups[i], index, g->config->workers, fds);
        for (size_t j = 0; j < k; j++) {
            out[n] = g->listeners[i];
            out[n++].fd = fds[j];
        }
    }
    if (fds == NULL) {
        free(out);
        out = NULL;
    }
    free(fds);
    *count = n;
    return out;
}

static int master_spawn(struct master *m, unsigned slot, struct generation *g, unsigned index)
{
    struct master_worker *w = &m->slots[slot];
    size_t sockets;
    struct worker_params params = {
        .config = g->config,
        .shm = &m->shm,
        .slot = slot,
        .index = index,
        .generation = g->number,
        .listeners = worker_sockets(g, index, &sockets),
        .listener_count = sockets,
        .start_paused = m->draining,
        .rate_tables = g->shared.rate_tables,
        .route_entries = g->shared.route_entries,
    };
    if (params.listeners == NULL) {
        log_msg(LOG_ERROR, "fork(worker %u): out of memory", index);
        return SK_ERROR;
    }
    int cpu = spawn_cpu_for(g->config, index);
    shm_slot_claim(&m->shm, slot, 0, cpu, g->number, index);
    pid_t pid = spawn_worker(&params, cpu); /* the child keeps its copy of the sockets */
    free(params.listeners);
    if (pid < 0) {
        log_errno(LOG_ERROR, errno, "fork(worker %u)", index);
        shm_slot_retire(&m->shm, slot);
        return SK_ERROR;
    }
    atomic_store_explicit(&m->shm.slots[slot].pid, pid, memory_order_relaxed);
    atomic_fetch_add_explicit(&m->shm.header->worker_starts, 1, memory_order_relaxed);
    *w = (struct master_worker){.pid = pid, .index = index, .generation = g,
                                .started_ms = clock_now_monotonic_ms(),
                                .failures = w->generation == g ? w->failures : 0};
    g->live++;
    return SK_OK;
}

/* Free for us and in the segment: during a binary upgrade two masters
 * place workers in the same slots table. */
static bool slot_is_free(const struct master *m, unsigned s)
{
    const struct master_worker *w = &m->slots[s];
    const struct shm_slot *slot = &m->shm.slots[s];
    return w->pid == 0 && w->respawn_at_ms == 0 &&
           atomic_load_explicit(&slot->pid, memory_order_relaxed) == 0 &&
           atomic_load_explicit(&slot->state, memory_order_relaxed) == SHM_WORKER_FREE;
}

unsigned master_free_slots(const struct master *m)
{
    unsigned n = 0;
    for (unsigned s = 0; s < m->slot_count; s++)
        n += slot_is_free(m, s);
    return n;
}

int master_spawn_generation(struct master *m, struct generation *g, struct err *err)
{
    if (master_free_slots(m) < g->config->workers)
        return err_set(err, "no room for %u more workers (%u slots free): wait for the "
                       "previous generation to finish draining", g->config->workers,
                       master_free_slots(m));
    if (generation_tls(m, g, err) != SK_OK || generation_shared_attach(m, g, err) != SK_OK)
        return SK_ERROR;
    unsigned slot = 0;
    for (unsigned i = 0; i < g->config->workers; i++) {
        while (!slot_is_free(m, slot))
            slot++;
        if (master_spawn(m, slot, g, i) != SK_OK)
            return err_set(err, "could not start worker %u of generation %llu", i,
                           (unsigned long long)g->number);
    }
    return SK_OK;
}

void master_signal_generation(struct master *m, struct generation *g, int signo)
{
    for (unsigned s = 0; s < m->slot_count; s++)
        if (m->slots[s].pid != 0 && (g == NULL || m->slots[s].generation == g))
            kill(m->slots[s].pid, signo);
}

/* The generation drains: its workers stop accepting, finish what they
 * have, and are killed if still there at shutdown_timeout. */
void master_retire_generation(struct master *m, struct generation *g)
{
    g->retiring = true;
    g->retire_deadline_ms = clock_now_monotonic_ms() + g->config->shutdown_timeout_ms;
    for (unsigned s = 0; s < m->slot_count; s++) {
        struct master_worker *w = &m->slots[s];
        if (w->generation != g)
            continue;
        w->respawn_at_ms = 0;
        if (w->pid != 0) {
            w->retiring = true;
            kill(w->pid, SIGTERM);
        }
    }
    if (g->live == 0)
        master_generation_release(m, g);
}

void master_publish_reload(struct master *m, bool ok, const char *message)
{
    struct shm_header *h = m->shm.header;
    uint64_t now = clock_now_monotonic_ms();
    shm_header_begin_write(&m->shm);
    h->reload_ok = ok;
    h->reload_duration_ms = now - m->reload_started_ms;
    h->reload_finished_at = time(NULL);
    snprintf(h->reload_message, sizeof h->reload_message, "%s", message);
    h->reload_count++;
    shm_header_end_write(&m->shm);
    atomic_store(&h->state, m->draining ? SHM_INSTANCE_DRAINING : SHM_INSTANCE_RUNNING);
    log_msg(ok ? LOG_NOTICE : LOG_ERROR, "reload %s: %s", ok ? "done" : "failed", message);
    notify_systemd("READY=1");
}

/* ---- start ---------------------------------------------------------------- */

/* A live saker already publishing at path: replacing its segment would
 * blind sakerctl to it, and whichever stopped first would delete the
 * other's. Only a segment written by root or by us counts (shm_attach),
 * and only if its master is the process that wrote itself there: a stale
 * file, a recycled pid or a forged segment is simply replaced. Returns
 * its master pid, or 0. */
static pid_t segment_owner(const char *path)
{
    struct shm existing;
    if (shm_attach(&existing, path, NULL) != SK_OK)
        return 0;
    pid_t pid = existing.header->master_pid;
    unsigned state = atomic_load(&existing.header->state);
    int verdict = shm_master_verify(existing.header, NULL);
    shm_detach(&existing);
    if (pid == getpid() || state == SHM_INSTANCE_STOPPED || verdict == SK_DECLINED)
        return 0;
    return pid;
}

static void remember_executable(struct master *m)
{
    ssize_t n = readlink("/proc/self/exe", m->exe_path, sizeof m->exe_path - 1);
    m->exe_path[n > 0 ? n : 0] = '\0';
}

int master_bind(struct master *m, struct config *config, struct err *err)
{
    install_signals(&m->wait_mask);
    remember_executable(m);
    if (activation_take(err) != SK_OK)
        return SK_ERROR;
    activation_warn_unused(config);
    if (master_upgrade_ready_fd() >= 0) /* started by an upgrade */
        return master_adopt(m, config, err);
    if (runfiles_prepare_dir(config->shm_path, err) != SK_OK ||
        (config->pid_file && runfiles_prepare_dir(config->pid_file, err) != SK_OK) ||
        pid_file_prepare(&m->pid_file, config->pid_file, err) != SK_OK)
        return SK_ERROR;
    pid_t owner = segment_owner(config->shm_path);
    if (owner != 0)
        return err_set(err, "shm_path %s is in use by a running saker (master pid %d)",
                       config->shm_path, (int)owner);
    return listeners_open(&m->listeners, config, NULL, err);
}

/* A new master of a binary upgrade: the segment is the old master's, and
 * nothing is published before our workers serve (master_take_over). */
static int start_candidate(struct master *m, struct config *config, struct err *err)
{
    m->slot_count = m->shm.header->slot_count;
    m->slots = calloc(m->slot_count, sizeof *m->slots);
    struct generation *g = m->slots ? master_generation_new(m, config, &m->listeners) : NULL;
    if (g == NULL)
        return err_set(err, "out of memory");
    m->current = g;
    if (tls_keys_start(m, err) != SK_OK)
        return SK_ERROR;
    for (size_t i = 0; i < m->listeners.count; i++)
        log_msg(LOG_NOTICE, "listening on %s (endpoint %s, %s%s)", m->listeners.items[i].address,
                m->listeners.items[i].endpoint->name, m->listeners.items[i].url,
                m->listeners.items[i].reused_from >= 0 ? ", inherited" : "");
    return master_spawn_generation(m, g, err);
}

int master_start(struct master *m, struct config *config, struct err *err)
{
    unsigned slots = config->workers * 2 > SHM_MIN_SLOTS ? config->workers * 2 : SHM_MIN_SLOTS;
    start_tick();
    if (m->candidate)
        return start_candidate(m, config, err);
    snprintf(m->shm_path, sizeof m->shm_path, "%s", config->shm_path);
    if (shm_create(&m->shm, config->shm_path, slots, err) != SK_OK)
        return SK_ERROR;
    m->slot_count = slots;
    m->slots = calloc(slots, sizeof *m->slots);
    struct generation *g = m->slots ? master_generation_new(m, config, &m->listeners) : NULL;
    if (g == NULL)
        return err_set(err, "out of memory");
    m->current = g;
    if (tls_keys_start(m, err) != SK_OK)
        return SK_ERROR;
    listeners_publish(&m->listeners, &m->shm);
    atomic_store(&m->shm.header->generation, g->number);
    atomic_store(&m->shm.header->workers_per_generation, config->workers);
    atomic_store(&m->shm.header->state, SHM_INSTANCE_STARTING);
    for (size_t i = 0; i < m->listeners.count; i++) {
        const struct listener *l = &m->listeners.items[i];
        log_msg(LOG_NOTICE, "listening on %s (endpoint %s, %s; %u socket%s, %s)", l->address,
                l->endpoint->name, l->url, l->group.count, l->group.count == 1 ? "" : "s",
                l->group.steered                  ? steering_name(&l->steering)
                : activation_owns(l->group.fds[0]) ? "shared, passed by systemd"
                                                   : "shared");
    }
    if (master_spawn_generation(m, g, err) != SK_OK)
        return SK_ERROR;
    certificates_publish(g, &m->shm);
    return pid_file_commit(&m->pid_file, err);
}

/* ---- reaping and respawning ----------------------------------------------- */

static const char *describe_exit(int status, char *buf, size_t size)
{
    if (WIFSIGNALED(status))
        snprintf(buf, size, "killed by signal %d (%s)", WTERMSIG(status),
                 strsignal(WTERMSIG(status)));
    else
        snprintf(buf, size, "exited with status %d", WEXITSTATUS(status));
    return buf;
}

static void schedule_respawn(struct master_worker *w, uint64_t now)
{
    if (now - w->started_ms >= WORKER_STABLE_MS)
        w->failures = 0;
    uint64_t delay = RESPAWN_BACKOFF_MIN_MS << (w->failures < 7 ? w->failures : 7);
    if (delay > RESPAWN_BACKOFF_MAX_MS)
        delay = RESPAWN_BACKOFF_MAX_MS;
    w->failures++;
    w->respawn_at_ms = now + delay;
    log_msg(LOG_NOTICE, "respawning worker %u in %llu ms", w->index, (unsigned long long)delay);
}

/* Tells whoever waits for the start (saker -d's first process, the old
 * master of an upgrade) how it went: one NUL byte when the instance
 * serves, else the reason. Once. */
static void report_start(struct master *m, const char *failure)
{
    if (m->ready_fd < 0)
        return;
    const char *text = failure ? failure : "";
    ssize_t written = write(m->ready_fd, text, strlen(text) + (failure ? 0 : 1));
    (void)written; /* the parent may have given up waiting */
    close(m->ready_fd);
    m->ready_fd = -1;
}

static void begin_stop(struct master *m, bool now);

/* Before the instance first serves, a worker that dies is a failed start,
 * not a crash to ride out with respawns: whoever started saker (a
 * terminal, `saker -d`, systemd) must hear why, and at once. */
static void fail_start(struct master *m, unsigned index, const char *why)
{
    char message[ERR_MESSAGE_MAX];
    snprintf(message, sizeof message, "start failed: worker %u %s before serving (see the "
             "error log)", index, why);
    log_msg(LOG_ERROR, "%s", message);
    report_start(m, message);
    m->start_failed = true;
    begin_stop(m, true);
}

static void worker_gone(struct master *m, unsigned slot, int status, uint64_t now)
{
    struct master_worker *w = &m->slots[slot];
    struct generation *g = w->generation;
    char why[96];
    describe_exit(status, why, sizeof why);
    bool expected = w->retiring || m->stopping;
    log_msg(expected ? LOG_INFO : LOG_ERROR, "worker %u (pid %d, generation %llu) %s", w->index,
            (int)w->pid, (unsigned long long)(g ? g->number : 0), why);
    shm_slot_retire(&m->shm, slot);
    w->pid = 0;
    if (g != NULL)
        g->live--;
    if (!expected) {
        atomic_fetch_add_explicit(&m->shm.header->worker_deaths, 1, memory_order_relaxed);
        if (g != NULL && g == m->pending)
            master_reload_abort(m, why);
        else if (g != NULL && g == m->current && !m->ready_reported)
            fail_start(m, w->index, why);
        else if (g != NULL && g == m->current)
            schedule_respawn(w, now);
    }
    if (g != NULL && g->live == 0 && g->retiring) {
        log_msg(LOG_INFO, "generation %llu finished draining", (unsigned long long)g->number);
        master_generation_release(m, g);
    }
    if (w->respawn_at_ms == 0) { /* the slot is free */
        w->generation = NULL;
        w->retiring = false;
    }
}

static void reap_children(struct master *m)
{
    int status;
    pid_t pid;
    uint64_t now = clock_now_monotonic_ms();
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        if (master_upgrade_reaped(m, pid, status))
            continue;
        for (unsigned s = 0; s < m->slot_count; s++)
            if (m->slots[s].pid == pid) {
                worker_gone(m, s, status, now);
                break;
            }
    }
}

static void respawn_due(struct master *m)
{
    uint64_t now = clock_now_monotonic_ms();
    for (unsigned s = 0; s < m->slot_count; s++) {
        struct master_worker *w = &m->slots[s];
        if (w->pid != 0 || w->respawn_at_ms == 0 || now < w->respawn_at_ms)
            continue;
        w->respawn_at_ms = 0;
        if (w->generation != m->current || m->current == NULL)
            continue;
        if (master_spawn(m, s, m->current, w->index) != SK_OK)
            schedule_respawn(w, now);
    }
}

/* A worker whose heartbeat stalls (an endless loop, SIGSTOP, a deadlock)
 * serves nobody; kill it so that the respawn replaces it. */
static void watchdog(struct master *m)
{
    uint64_t now = clock_now_monotonic_ms();
    for (unsigned s = 0; s < m->slot_count; s++) {
        struct master_worker *w = &m->slots[s];
        if (w->pid == 0 || w->retiring || w->watchdog_killed || w->generation == NULL)
            continue;
        uint64_t timeout = w->generation->config->worker_watchdog_timeout_ms;
        uint64_t beat = atomic_load_explicit(&m->shm.slots[s].heartbeat_ms, memory_order_relaxed);
        uint64_t last = beat > w->started_ms ? beat : w->started_ms;
        if (timeout == 0 || now < last + timeout)
            continue;
        log_msg(LOG_ERROR, "worker %u (pid %d) missed its heartbeat for %llu ms: killing it",
                w->index, (int)w->pid, (unsigned long long)(now - last));
        atomic_fetch_add_explicit(&m->shm.header->worker_watchdog_kills, 1, memory_order_relaxed);
        w->watchdog_killed = true;
        kill(w->pid, SIGKILL);
    }
}

static unsigned live_workers(const struct master *m)
{
    unsigned n = 0;
    for (unsigned s = 0; s < m->slot_count; s++)
        n += m->slots[s].pid != 0;
    return n;
}

/* ---- steering new connections --------------------------------------------- */

/* A worker whose heartbeat is this old (it beats every second) is stuck:
 * new connections go elsewhere until the watchdog has replaced it. */
#define STEER_STALE_MS 3000

static int compare_unsigned(const void *a, const void *b)
{
    unsigned x = *(const unsigned *)a, y = *(const unsigned *)b;
    return x < y ? -1 : x > y;
}

/* The indices of the serving generation's workers that serve: running,
 * with a fresh heartbeat. All of them when none does: connections then
 * wait in the queues for whichever comes back. */
static unsigned live_indices(const struct master *m, unsigned *live)
{
    const struct generation *g = m->current;
    uint64_t now = clock_now_monotonic_ms();
    unsigned n = 0;
    for (unsigned s = 0; s < m->slot_count && n < g->config->workers; s++) {
        const struct master_worker *w = &m->slots[s];
        const struct shm_slot *slot = &m->shm.slots[s];
        if (w->pid == 0 || w->generation != g || w->retiring ||
            atomic_load(&slot->state) != SHM_WORKER_RUNNING ||
            atomic_load(&slot->heartbeat_ms) + STEER_STALE_MS < now)
            continue;
        live[n++] = w->index;
    }
    if (n == 0)
        for (; n < g->config->workers; n++)
            live[n] = n;
    qsort(live, n, sizeof *live, compare_unsigned);
    return n;
}

void master_steer(struct master *m)
{
    if (m->current == NULL)
        return;
    unsigned live[CONFIG_MAX_WORKERS];
    unsigned n = live_indices(m, live);
    if (n == m->steered_count && memcmp(live, m->steered, n * sizeof *live) == 0)
        return;
    unsigned *copy = realloc(m->steered, n * sizeof *copy);
    if (copy == NULL)
        return; /* tried again next turn */
    memcpy(copy, live, n * sizeof *copy);
    m->steered = copy;
    /* A failure (a socket still in the map of a master that is handing
     * over) is tried again next turn. */
    m->steered_count = listeners_steer(&m->listeners, live, n) == SK_OK ? n : 0;
    if (m->ready_reported && m->steered_count == n)
        log_msg(LOG_NOTICE, "new connections go to %u of %u workers", n,
                m->current->config->workers);
}

void master_steer_again(struct master *m)
{
    m->steered_count = 0;
    master_steer(m);
}

/* ---- stop, drain, logs ------------------------------------------------------ */

static void begin_stop(struct master *m, bool now)
{
    if (!m->stopping) {
        log_msg(LOG_NOTICE, "%s stop: %u workers", now ? "immediate" : "graceful",
                live_workers(m));
        m->stopping = true;
        m->stop_deadline_ms = clock_now_monotonic_ms() +
                              (m->current ? m->current->config->shutdown_timeout_ms : 0);
        /* A new master that never served stops alone: the instance, its
         * state and systemd's view are the old master's. */
        if (!m->candidate) {
            notify_systemd("STOPPING=1");
            atomic_store(&m->shm.header->state, SHM_INSTANCE_STOPPING);
        }
        if (m->pending != NULL)
            master_reload_abort(m, "the instance is stopping");
    }
    if (now)
        m->stop_deadline_ms = 0;
    master_signal_generation(m, NULL, now ? SIGQUIT : SIGTERM);
}

static void kill_overdue(struct master *m)
{
    uint64_t now = clock_now_monotonic_ms();
    if (m->stopping && now >= m->stop_deadline_ms && live_workers(m) > 0) {
        log_msg(LOG_WARN, "shutdown_timeout reached: killing %u workers", live_workers(m));
        master_signal_generation(m, NULL, SIGKILL);
        m->stop_deadline_ms = UINT64_MAX; /* killed once; now wait for the reaps */
    }
    for (int i = 0; i < MASTER_GENERATIONS; i++) {
        struct generation *g = &m->generations[i];
        if (g->number != 0 && g->retiring && now >= g->retire_deadline_ms && g->live > 0) {
            log_msg(LOG_WARN, "generation %llu still draining at shutdown_timeout: killing "
                    "%u workers", (unsigned long long)g->number, g->live);
            master_signal_generation(m, g, SIGKILL);
            g->retire_deadline_ms = UINT64_MAX;
        }
    }
}

static void set_draining(struct master *m, bool draining)
{
    if (m->stopping || m->draining == draining)
        return;
    m->draining = draining;
    atomic_store(&m->shm.header->state,
                 draining ? SHM_INSTANCE_DRAINING
                          : (m->pending ? SHM_INSTANCE_RELOADING : SHM_INSTANCE_RUNNING));
    log_msg(LOG_NOTICE, draining ? "draining: not accepting new connections"
                                 : "undrained: accepting again");
    /* Workers read the instance state from shm when told to look. */
    master_signal_generation(m, m->current, SIGUSR2);
    if (m->pending != NULL)
        master_signal_generation(m, m->pending, SIGUSR2);
}

static void reopen_logs(struct master *m)
{
    const char *path = m->current ? m->current->config->error_log : NULL;
    /* Made here, with the workers' user, before the workers reopen them. */
    if (m->current != NULL)
        runfiles_create_logs(m->current->config);
    if (log_open(path) != SK_OK)
        log_errno(LOG_ERROR, errno, "open(%s)", path);
    master_signal_generation(m, NULL, SIGUSR1);
}

/* The instance serves once every worker of the generation has said so. */
static void check_ready(struct master *m)
{
    if (m->ready_reported || m->stopping || m->current == NULL)
        return;
    for (unsigned s = 0; s < m->slot_count; s++)
        if (m->slots[s].pid != 0 && m->slots[s].generation == m->current &&
            atomic_load(&m->shm.slots[s].state) != SHM_WORKER_RUNNING)
            return;
    m->ready_reported = true;
    bool upgraded = m->candidate;
    if (upgraded)
        master_take_over(m);
    if (!m->draining)
        atomic_store(&m->shm.header->state, SHM_INSTANCE_RUNNING);
    log_msg(LOG_NOTICE, "ready: %u workers serving, generation %llu%s", m->current->live,
            (unsigned long long)m->current->number, upgraded ? " (binary upgrade)" : "");
    /* After an upgrade the old master, still the main process, names us
     * to systemd (MAINPID=): a READY=1 from us would be ignored. */
    if (!upgraded)
        notify_systemd("READY=1");
    report_start(m, NULL);
}

static void handle_flags(struct master *m)
{
    if (got_child) {
        got_child = 0;
        reap_children(m);
    }
    if (got_quit) {
        got_quit = 0;
        begin_stop(m, true);
    }
    if (got_term) {
        got_term = 0;
        begin_stop(m, false);
    }
    if (got_usr1) {
        got_usr1 = 0;
        reopen_logs(m);
    }
    if (got_drain_request) {
        int request = got_drain_request;
        got_drain_request = 0;
        if (request == DRAIN_REQUEST || request == UNDRAIN_REQUEST)
            set_draining(m, request == DRAIN_REQUEST);
        else if (request == UPGRADE_REQUEST && !m->handed_over && !m->candidate)
            master_upgrade_begin(m);
    }
    if (got_hup) {
        got_hup = 0;
        if (!m->stopping && !m->candidate)
            master_reload_begin(m);
    }
    got_tick = 0;
}

/* Everything the master made goes, but what belongs to the instance
 * (the segment, the pid file) only while this master owns it. */
static void master_finish(struct master *m)
{
    /* A new master that never served, or an old one that handed over,
     * leaves the instance's segment to the master that owns it. */
    bool owner = !m->candidate && !m->handed_over;
    if (m->shm.header != NULL && owner) {
        atomic_store(&m->shm.header->state, SHM_INSTANCE_STOPPED);
        /* The segment created at start: a reload cannot move it. */
        unlink(m->shm_path);
    }
    if (m->shm.header != NULL)
        shm_detach(&m->shm);
    if (m->upgrade_fd >= 0)
        close(m->upgrade_fd);
    if (m->pending_listeners.items != NULL)
        listeners_close(&m->pending_listeners);
    listeners_close(&m->listeners);
    for (int i = 0; i < MASTER_GENERATIONS; i++)
        if (m->generations[i].number != 0)
            master_generation_release(m, &m->generations[i]);
    free(m->slots);
    m->slots = NULL;
    free(m->steered);
    m->steered = NULL;
    tls_keys_stop(m);
    pid_file_release(&m->pid_file);
}

int master_run(struct master *m)
{
    for (;;) {
        handle_flags(m);
        master_upgrade_check(m);
        if (!m->stopping) {
            if (m->upgrade_fd < 0) /* a new master is placing its workers */
                respawn_due(m);
            watchdog(m);
            tls_keys_tick(m);
            master_reload_check(m);
            master_steer(m);
        }
        check_ready(m);
        kill_overdue(m);
        log_limit_flush();
        if (m->stopping && live_workers(m) == 0)
            break;
        sigsuspend(&m->wait_mask);
    }
    master_finish(m);
    log_msg(LOG_NOTICE, m->start_failed ? "start failed: stopped"
                        : m->handed_over ? "stopped: the new master serves" : "stopped");
    return m->start_failed ? 1 : 0;
}

void master_forget(struct master *m)
{
    for (size_t i = 0; i < m->listeners.count; i++)
        free(m->listeners.items[i].group.fds);
    free(m->listeners.items);
    m->listeners.items = NULL;
    m->listeners.count = 0;
    if (m->pid_file.fd >= 0)
        close(m->pid_file.fd);
    m->pid_file.fd = -1;
}

void master_abandon(struct master *m)
{
    /* Workers already forked stop at once; none serves yet. */
    if (live_workers(m) > 0) {
        begin_stop(m, true);
        while (live_workers(m) > 0) {
            handle_flags(m);
            if (live_workers(m) > 0)
                sigsuspend(&m->wait_mask);
        }
    }
    master_finish(m);
}

