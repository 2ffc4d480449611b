/*
 * master.h - the master process: a small state machine driven by signals.
 *
 * The master binds listeners, creates the shm segment, forks one worker per
 * configured slot and then only supervises. Signal handlers set flags; the
 * loop (woken by signals and a 100 ms tick) reaps children, respawns
 * workers that died unexpectedly (with exponential backoff, so a worker
 * that crashes at start cannot fork-storm), kills workers whose heartbeat
 * stalls, and runs reloads, drains and stops:
 *
 *   SIGHUP           reload: a new generation of workers with the new config;
 *                    the old one drains once the new one serves
 *   SIGUSR2 + value  sigqueue value 1 = drain (stop accepting, keep
 *                    connections), 2 = undrain
 *   SIGTERM, SIGINT  graceful stop: workers drain; SIGKILL at shutdown_timeout
 *   SIGQUIT          immediate stop
 *   SIGUSR1          reopen the error log (and the workers' logs)
 *
 * Every outcome an operator waits for (ready, reload result, state) is
 * published in the shm header, where sakerctl reads it. The master never
 * touches client bytes.
 */
#ifndef SAKER_MASTER_MASTER_H
#define SAKER_MASTER_MASTER_H

#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "conf/config.h"
#include "master/generation_shared.h"
#include "master/listener.h"
#include "shm/shm.h"
#include "worker/worker_main.h"

#define MASTER_GENERATIONS 32 /* serving, starting, and draining ones; free shm slots are the real bound */

/* Workers started from one config. */
struct generation {
    uint64_t number;          /* 0: this entry is unused */
    struct config *config;
    struct worker_listener *listeners; /* what its workers inherit */
    size_t listener_count;
    unsigned live;            /* its workers still running */
    bool retiring;            /* draining; killed at retire_deadline_ms */
    uint64_t retire_deadline_ms;
    struct generation_shared shared; /* rate limit tables (generation_shared.h) */
};

struct master_worker {
    pid_t pid;              /* 0: no process in this slot */
    unsigned index;
    struct generation *generation;
    bool retiring;          /* asked to stop: its exit is expected */
    uint64_t started_ms;
    uint64_t respawn_at_ms; /* pid == 0 and wanted: fork again at this time */
    unsigned failures;      /* consecutive early deaths, for the backoff */
    bool watchdog_killed;
};

struct master {
    const char *config_file; /* NULL: the built-in default */
    const char *urls;        /* --urls / SAKER_URLS, or NULL */
    struct shm shm;
    char shm_path[PATH_MAX];           /* where shm was created; kept for life */
    struct listener_set listeners;     /* the serving generation's */
    struct generation generations[MASTER_GENERATIONS];
    struct generation *current;
    struct generation *pending;        /* a reload waiting for its workers */
    struct listener_set pending_listeners;
    uint64_t reload_started_ms;
    uint64_t reload_deadline_ms;
    struct master_worker *slots;
    unsigned slot_count;
    bool draining;           /* sakerctl drain: not accepting */
    bool stopping;
    uint64_t stop_deadline_ms;
    bool ready_reported;
    int ready_fd;            /* -d: tell the waiting parent we serve; -1 if none */
    sigset_t wait_mask;      /* the mask sigsuspend() waits with */
    uint64_t ticket_rotate_at_ms; /* next session ticket key rotation (tls_keys.c) */
    /* The ticket keys: shared with the workers, never in the segment
     * file (tls_keys.h). NULL until tls_keys_start. */
    struct shm_ticket_keys *ticket_keys;
};

/* Loads a config as `saker` would: the file (or the built-in default), the
 * URL override, and what only the file system can tell (static roots,
 * users). NULL with err set. */
struct config *master_load_config(const char *file, const char *urls, struct err *err);

/* Binds, creates shm, forks workers; takes ownership of config. On failure
 * nothing is left behind but the config, which the caller frees. */
int master_start(struct master *m, struct config *config, struct err *err);
/* Supervises until the instance has stopped; returns the exit status. */
int master_run(struct master *m);

/* reload.c: SIGHUP. Starts a new generation, or publishes why not. */
void master_reload_begin(struct master *m);
/* reload.c: called every loop turn while a reload is pending. */
void master_reload_check(struct master *m);
/* reload.c: a worker of the pending generation died before serving. */
void master_reload_abort(struct master *m, const char *why);

/* master.c, for reload.c. */
struct generation *master_generation_new(struct master *m, struct config *config,
                                         const struct listener_set *set);
void master_generation_release(struct master *m, struct generation *g);
int master_spawn_generation(struct master *m, struct generation *g, struct err *err);
unsigned master_free_slots(const struct master *m);
void master_retire_generation(struct master *m, struct generation *g);
void master_signal_generation(struct master *m, struct generation *g, int signo);
void master_publish_reload(struct master *m, bool ok, const char *message);

#endif
