/*
 * master.c - supervision loop; see master.h.
 */
#include "master/master.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/log.h"
#include "master/spawn.h"

#define MASTER_TICK_MS 100
#define RESPAWN_BACKOFF_MIN_MS 100
#define RESPAWN_BACKOFF_MAX_MS 10000
#define WORKER_STABLE_MS 10000 /* a worker that lived this long resets the backoff */

static volatile sig_atomic_t got_child, got_term, got_quit, got_usr1, got_hup, got_tick;

static void on_signal(int signo)
{
    switch (signo) {
    case SIGCHLD: got_child = 1; break;
    case SIGTERM:
    case SIGINT: got_term = 1; break;
    case SIGQUIT: got_quit = 1; break;
    case SIGUSR1: got_usr1 = 1; break;
    case SIGHUP: got_hup = 1; break;
    case SIGALRM: got_tick = 1; break;
    }
}

static const int master_signals[] = {SIGCHLD, SIGTERM, SIGINT, SIGQUIT,
                                     SIGUSR1, SIGHUP,  SIGALRM};

static void install_signals(sigset_t *wait_mask)
{
    sigset_t block;
    sigemptyset(&block);
    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < sizeof master_signals / sizeof master_signals[0]; i++) {
        sigaddset(&block, master_signals[i]);
        sigaction(master_signals[i], &sa, NULL);
    }
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
    /* Signals stay blocked except inside sigsuspend: no flag is missed
     * between checking it and going to sleep. */
    sigprocmask(SIG_BLOCK, &block, wait_mask);
    for (size_t i = 0; i < sizeof master_signals / sizeof master_signals[0]; i++)
        sigdelset(wait_mask, master_signals[i]);
    struct itimerval tick = {{0, MASTER_TICK_MS * 1000}, {0, MASTER_TICK_MS * 1000}};
    setitimer(ITIMER_REAL, &tick, NULL);
}

static int build_worker_listeners(struct master *m, struct err *err)
{
    m->worker_listeners = calloc(m->listeners.count ? m->listeners.count : 1,
                                 sizeof *m->worker_listeners);
    if (m->worker_listeners == NULL)
        return err_set(err, "out of memory");
    for (size_t i = 0; i < m->listeners.count; i++)
        m->worker_listeners[i] = (struct worker_listener){
            .fd = m->listeners.items[i].fd, .endpoint = m->listeners.items[i].endpoint};
    return SK_OK;
}

static int master_spawn(struct master *m, unsigned slot, unsigned index)
{
    struct master_worker *w = &m->slots[slot];
    struct worker_params params = {
        .config = m->config,
        .shm = &m->shm,
        .slot = slot,
        .index = index,
        .generation = m->generation,
        .listeners = m->worker_listeners,
        .listener_count = m->listeners.count,
    };
    int cpu = spawn_cpu_for(m->config, index);
    shm_slot_claim(&m->shm, slot, 0, cpu, m->generation, index);
    pid_t pid = spawn_worker(&params, cpu);
    if (pid < 0) {
        log_errno(LOG_ERROR, errno, "fork(worker %u)", index);
        shm_slot_retire(&m->shm, slot);
        return SK_ERROR;
    }
    atomic_store_explicit(&m->shm.slots[slot].pid, pid, memory_order_relaxed);
    atomic_fetch_add_explicit(&m->shm.header->worker_starts, 1, memory_order_relaxed);
    *w = (struct master_worker){.pid = pid, .index = index, .generation = m->generation,
                                .started_ms = clock_now_monotonic_ms(),
                                .failures = w->failures};
    return SK_OK;
}

int master_start(struct master *m, struct config *config, struct err *err)
{
    install_signals(&m->wait_mask);
    m->config = config;
    m->generation = 1;
    unsigned slots = config->workers * 2 > SHM_MIN_SLOTS ? config->workers * 2 : SHM_MIN_SLOTS;
    if (listeners_open(&m->listeners, config, NULL, err) != SK_OK)
        return SK_ERROR;
    if (shm_create(&m->shm, config->shm_path, slots, err) != SK_OK) {
        listeners_close(&m->listeners);
        return SK_ERROR;
    }
    m->slot_count = slots;
    m->slots = calloc(slots, sizeof *m->slots);
    if (m->slots == NULL || build_worker_listeners(m, err) != SK_OK) {
        listeners_close(&m->listeners);
        return err_set(err, "out of memory");
    }
    listeners_publish(&m->listeners, &m->shm);
    atomic_store(&m->shm.header->generation, m->generation);
    atomic_store(&m->shm.header->workers_per_generation, config->workers);
    for (size_t i = 0; i < m->listeners.count; i++)
        log_msg(LOG_NOTICE, "listening on %s (endpoint %s, %s)", m->listeners.items[i].address,
                m->listeners.items[i].endpoint->name, m->listeners.items[i].url);
    for (unsigned i = 0; i < config->workers; i++)
        if (master_spawn(m, i, i) != SK_OK)
            return err_set(err, "could not start worker %u", i);
    return SK_OK;
}

static const char *describe_exit(int status, char *buf, size_t size)
{
    if (WIFSIGNALED(status))
        snprintf(buf, size, "killed by signal %d (%s)", WTERMSIG(status),
                 strsignal(WTERMSIG(status)));
    else
        snprintf(buf, size, "exited with status %d", WEXITSTATUS(status));
    return buf;
}

static void schedule_respawn(struct master *m, struct master_worker *w, uint64_t now)
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

static void reap_children(struct master *m)
{
    int status;
    pid_t pid;
    uint64_t now = clock_now_monotonic_ms();
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        for (unsigned s = 0; s < m->slot_count; s++) {
            struct master_worker *w = &m->slots[s];
            if (w->pid != pid)
                continue;
            char why[96];
            describe_exit(status, why, sizeof why);
            bool expected = w->retiring || m->stopping;
            log_msg(expected ? LOG_INFO : LOG_ERROR, "worker %u (pid %d) %s", w->index,
                    (int)pid, why);
            shm_slot_retire(&m->shm, s);
            w->pid = 0;
            if (!expected) {
                atomic_fetch_add_explicit(&m->shm.header->worker_deaths, 1,
                                          memory_order_relaxed);
                schedule_respawn(m, w, now);
            }
            break;
        }
    }
}

static void respawn_due(struct master *m)
{
    uint64_t now = clock_now_monotonic_ms();
    for (unsigned s = 0; s < m->slot_count; s++) {
        struct master_worker *w = &m->slots[s];
        if (w->pid == 0 && w->respawn_at_ms != 0 && now >= w->respawn_at_ms &&
            w->generation == m->generation) {
            w->respawn_at_ms = 0;
            if (master_spawn(m, s, w->index) != SK_OK)
                schedule_respawn(m, w, now);
        }
    }
}

static unsigned live_workers(const struct master *m)
{
    unsigned n = 0;
    for (unsigned s = 0; s < m->slot_count; s++)
        n += m->slots[s].pid != 0;
    return n;
}

static void signal_workers(struct master *m, int signo)
{
    for (unsigned s = 0; s < m->slot_count; s++)
        if (m->slots[s].pid != 0)
            kill(m->slots[s].pid, signo);
}

static void begin_stop(struct master *m, bool now)
{
    if (!m->stopping) {
        log_msg(LOG_NOTICE, "%s stop: %u workers", now ? "immediate" : "graceful",
                live_workers(m));
        m->stopping = true;
        m->stop_deadline_ms = clock_now_monotonic_ms() + m->config->shutdown_timeout_ms;
        atomic_store(&m->shm.header->state, SHM_INSTANCE_STOPPING);
    }
    if (now)
        m->stop_deadline_ms = 0;
    signal_workers(m, now ? SIGQUIT : SIGTERM);
}

static void check_stop_deadline(struct master *m)
{
    if (!m->stopping || clock_now_monotonic_ms() < m->stop_deadline_ms)
        return;
    if (live_workers(m) > 0 && m->stop_deadline_ms != UINT64_MAX) {
        log_msg(LOG_WARN, "shutdown_timeout reached: killing %u workers", live_workers(m));
        signal_workers(m, SIGKILL);
        m->stop_deadline_ms = UINT64_MAX; /* killed once; now wait for the reaps */
    }
}

/* The instance serves once every worker of the generation has said so. */
static void check_ready(struct master *m)
{
    if (m->ready_reported || m->stopping)
        return;
    for (unsigned s = 0; s < m->slot_count; s++)
        if (m->slots[s].pid != 0 &&
            atomic_load(&m->shm.slots[s].state) != SHM_WORKER_RUNNING)
            return;
    m->ready_reported = true;
    atomic_store(&m->shm.header->state, SHM_INSTANCE_RUNNING);
    log_msg(LOG_NOTICE, "ready: %u workers serving, generation %llu", live_workers(m),
            (unsigned long long)m->generation);
    if (m->ready_fd >= 0) {
        ssize_t w = write(m->ready_fd, "", 1);
        (void)w; /* the parent may have given up waiting */
        close(m->ready_fd);
        m->ready_fd = -1;
    }
}

static void reopen_logs(struct master *m)
{
    if (log_open(m->config->error_log) != SK_OK)
        log_errno(LOG_ERROR, errno, "open(%s)", m->config->error_log);
    signal_workers(m, SIGUSR1);
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
    if (got_hup) {
        got_hup = 0;
        log_msg(LOG_WARN, "reload is not available in this build; ignoring SIGHUP");
    }
    got_tick = 0;
}

int master_run(struct master *m)
{
    for (;;) {
        handle_flags(m);
        if (!m->stopping)
            respawn_due(m);
        check_ready(m);
        check_stop_deadline(m);
        if (m->stopping && live_workers(m) == 0)
            break;
        sigsuspend(&m->wait_mask);
    }
    atomic_store(&m->shm.header->state, SHM_INSTANCE_STOPPED);
    listeners_close(&m->listeners);
    unlink(m->config->shm_path);
    shm_detach(&m->shm);
    free(m->slots);
    free(m->worker_listeners);
    log_msg(LOG_NOTICE, "stopped");
    return 0;
}
