/*
 * reload.c - SIGHUP: replace the serving generation without dropping a
 * request.
 *
 *   1. Load and validate the config. Invalid: publish the error (with its
 *      file:line:column) and keep serving; nothing has changed.
 *   2. Open the new listener set, moving over every socket whose address is
 *      kept, so connections queued on it stay queued.
 *   3. Fork the new generation into free shm slots (there are twice as many
 *      slots as workers) and wait until each of its workers says RUNNING.
 *   4. Commit: the new generation is current; the old one drains (stops
 *      accepting after taking what is queued, answers its last response on
 *      each connection with Connection: close) and is killed at
 *      shutdown_timeout; listeners nobody uses any more are closed.
 *   If a new worker dies or does not serve in time, the new generation is
 *   sent away and the old one goes on serving, with the reason published.
 *
 * sakerctl reload waits for reload_count to move in shm and prints the
 * outcome, so a reload never fails silently.
 */
#include <stdio.h>
#include <string.h>

#include "common/clock.h"
#include "common/log.h"
#include "master/certificates.h"
#include "master/master.h"
#include "master/notify.h"
#include "master/runfiles.h"

#define RELOAD_READY_TIMEOUT_MS 10000

/* Options the running master cannot apply, because they name what it
 * created at start. Said once per reload, not an error. */
static void warn_fixed_options(const struct config *old, const struct config *new)
{
    if (strcmp(old->shm_path, new->shm_path) != 0)
        log_msg(LOG_WARN, "reload: shm_path changed; it applies at the next start");
    if ((old->pid_file == NULL) != (new->pid_file == NULL) ||
        (old->pid_file && strcmp(old->pid_file, new->pid_file) != 0))
        log_msg(LOG_WARN, "reload: pid_file changed; it applies at the next start");
}

void master_reload_begin(struct master *m)
{
    if (m->pending != NULL) {
        log_msg(LOG_NOTICE, "reload: generation %llu is still starting; this request joins it",
                (unsigned long long)m->pending->number);
        return;
    }
    if (m->upgrade_fd >= 0) {
        m->reload_started_ms = clock_now_monotonic_ms();
        master_publish_reload(m, false, "a binary upgrade is in progress; reload when it "
                                        "has finished");
        return;
    }
    m->reload_started_ms = clock_now_monotonic_ms();
    atomic_store(&m->shm.header->state, SHM_INSTANCE_RELOADING);
    notify_systemd("RELOADING=1");
    log_msg(LOG_NOTICE, "reload: reading %s", m->config_file ? m->config_file : "(built-in)");

    struct err err;
    struct config *config = master_load_config(m->config_file, m->urls, &err);
    if (config == NULL) {
        master_publish_reload(m, false, err.message);
        return;
    }
    warn_fixed_options(m->current->config, config);
    runfiles_create_logs(config); /* the new generation's workers open them */
    if (listeners_open(&m->pending_listeners, config, &m->listeners, &err) != SK_OK) {
        config_free(config);
        master_publish_reload(m, false, err.message);
        return;
    }
    struct generation *g = master_generation_new(m, config, &m->pending_listeners);
    if (g == NULL) {
        listeners_rollback(&m->pending_listeners, &m->listeners);
        config_free(config);
        master_publish_reload(m, false, "too many generations still draining; try again "
                                        "when the previous reload has finished");
        return;
    }
    m->pending = g;
    m->reload_deadline_ms = clock_now_monotonic_ms() + RELOAD_READY_TIMEOUT_MS;
    if (master_spawn_generation(m, g, &err) != SK_OK)
        master_reload_abort(m, err.message);
}

static bool pending_serves(const struct master *m)
{
    unsigned running = 0;
    for (unsigned s = 0; s < m->slot_count; s++)
        if (m->slots[s].generation == m->pending && m->slots[s].pid != 0 &&
            atomic_load(&m->shm.slots[s].state) == SHM_WORKER_RUNNING)
            running++;
    return running == m->pending->config->workers;
}

static void reload_commit(struct master *m)
{
    struct generation *old = m->current;
    struct listener_set old_set = m->listeners;
    m->listeners = m->pending_listeners;
    memset(&m->pending_listeners, 0, sizeof m->pending_listeners);
    m->current = m->pending;
    m->pending = NULL;
    if (log_open(m->current->config->error_log) != 0)
        log_msg(LOG_ERROR, "reload: cannot open error_log %s", m->current->config->error_log);
    listeners_publish(&m->listeners, &m->shm);
    certificates_publish(m->current, &m->shm);
    atomic_store(&m->shm.header->generation, m->current->number);
    atomic_store(&m->shm.header->workers_per_generation, m->current->config->workers);
    uint64_t old_number = old->number;
    master_retire_generation(m, old);
    /* What is left in the old set is no longer configured. The draining
     * workers take what is queued on those sockets before they close their
     * copies, so closing ours does not reset anyone. */
    listeners_close(&old_set);
    char summary[256];
    snprintf(summary, sizeof summary,
             "generation %llu serving with %u workers on %zu listeners; generation %llu draining",
             (unsigned long long)m->current->number, m->current->config->workers,
             m->listeners.count, (unsigned long long)old_number);
    master_steer(m);
    master_publish_reload(m, true, summary);
}

void master_reload_check(struct master *m)
{
    if (m->pending == NULL)
        return;
    if (pending_serves(m))
        reload_commit(m);
    else if (clock_now_monotonic_ms() >= m->reload_deadline_ms)
        master_reload_abort(m, "its workers did not start serving within 10 s");
}

void master_reload_abort(struct master *m, const char *why)
{
    struct generation *g = m->pending;
    if (g == NULL)
        return;
    m->pending = NULL;
    char message[SHM_MESSAGE_MAX];
    snprintf(message, sizeof message, "generation %llu did not start (%s); generation %llu "
             "goes on serving", (unsigned long long)g->number, why,
             (unsigned long long)(m->current ? m->current->number : 0));
    master_retire_generation(m, g);
    listeners_rollback(&m->pending_listeners, &m->listeners);
    master_publish_reload(m, false, message);
}
