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
#include "master/runfiles.h"
#include "shm/shm.h"
#include "worker/worker_main.h"

#define MASTER_GENERATIONS 32 /* serving, starting, and draining ones; free shm slots are the real bound */

/* Workers started from one config. */
struct generation {
    uint64_t number;          /* 0: this entry is unused */
    struct config *config;
    struct worker_listener *listeners; /* one per listener: endpoint, TLS contexts */
    struct listener_group *groups;     /* one per listener: its sockets, as when made */
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
    bool start_failed;       /* a worker died before the first ready */
    int ready_fd;            /* -d: tell the waiting parent we serve; -1 if none */
    struct pid_file pid_file;
    sigset_t wait_mask;      /* the mask sigsuspend() waits with */
    uint64_t ticket_rotate_at_ms; /* next session ticket key rotation (tls_keys.c) */
    /* The worker indices new connections are steered to (listeners_steer),
     * as last applied; see master_steer. */
    unsigned *steered;
    unsigned steered_count;
    /* The ticket keys: shared with the workers, never in the segment
     * file (tls_keys.h). NULL until tls_keys_start. */
    struct shm_ticket_keys *ticket_keys;
    /* Binary upgrade (upgrade.c). */
    char exe_path[PATH_MAX];  /* our executable at start: the default binary */
    uint64_t generation_floor; /* a new master: the generation the old one served */
    bool candidate;           /* a new master not serving yet: owns nothing shared */
    bool handed_over;         /* an old master: the new one owns the instance */
    pid_t upgrade_pid;        /* the new master we started; 0: none (or reaped) */
    pid_t upgrade_started;    /* its pid, kept for the outcome's message */
    int upgrade_fd;           /* its report (read end); -1: none awaited */
    uint64_t upgrade_deadline_ms;
    char upgrade_binary[SHM_PATH_MAX];
};

/* Loads a config as `saker` would: the file (or the built-in default), the
 * URL override, and what only the file system can tell (static roots,
 * users). NULL with err set. */
struct config *master_load_config(const char *file, const char *urls, struct err *err);

/* The start, in two steps, so that `saker -d` detaches only after the
 * errors a user makes most (a port in use, an unwritable pid file, a
 * segment in use) were reported on its terminal, as nginx binds before
 * it daemonizes. master_bind installs the signal handlers, prepares the
 * run directory and the pid file's temporary name, refuses a shm_path a
 * running saker uses, and binds every listener. master_start (in the
 * process that will be the master) creates the segment, forks the first
 * generation, which takes ownership of config, and puts the pid file in
 * place. On failure of either, master_abandon undoes what was done. */
int master_bind(struct master *m, struct config *config, struct err *err);
int master_start(struct master *m, struct config *config, struct err *err);
void master_abandon(struct master *m);
/* `saker -d`'s first process, once the daemon has the instance: frees
 * what master_bind allocated here, leaving the sockets and files alone. */
void master_forget(struct master *m);
/* Supervises until the instance has stopped; returns the exit status: 0,
 * or 1 when the start failed (a worker died before serving). */
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
/* Steers new connections to the serving generation's live workers when
 * that set changed (a worker died, stalled, or came back; a reload
 * committed). Every loop turn. */
void master_steer(struct master *m);
/* Makes the next master_steer apply the choice even if unchanged (a new
 * program was attached). */
void master_steer_again(struct master *m);

/* upgrade.c, the old master: SIGUSR2 value 3 starts the new binary; each
 * loop turn reads its report (commit or abort); a reaped child is looked
 * at (true when it was the new master). */
void master_upgrade_begin(struct master *m);
void master_upgrade_check(struct master *m);
bool master_upgrade_reaped(struct master *m, pid_t pid, int status);
/* upgrade.c, the new master: the descriptor to report through when this
 * process was started by an upgrade (-1: it was not); master_adopt takes
 * the segment and sockets it was handed, in place of master_bind;
 * master_take_over, once its workers serve, makes it the instance's
 * master (header, listeners, certificates, generation, pid file). */
int master_upgrade_ready_fd(void);
int master_adopt(struct master *m, struct config *config, struct err *err);
void master_take_over(struct master *m);

#endif
