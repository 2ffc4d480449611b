/*
 * master.h - the master process: a small state machine driven by signals.
 *
 * The master binds listeners, creates the shm segment, forks one worker per
 * configured slot and then only supervises. Signal handlers set flags; the
 * loop (woken by signals and a 100 ms tick) reaps children, respawns
 * workers that died unexpectedly (with exponential backoff, so a worker
 * that crashes at start cannot fork-storm), and runs stops:
 *
 *   SIGTERM, SIGINT  graceful stop: workers drain; SIGKILL at shutdown_timeout
 *   SIGQUIT          immediate stop
 *   SIGUSR1          reopen the error log (and the workers')
 *
 * It never touches client bytes.
 */
#ifndef SAKER_MASTER_MASTER_H
#define SAKER_MASTER_MASTER_H

#include <stdbool.h>
#include <stdint.h>
#include <signal.h>
#include <sys/types.h>

#include "conf/config.h"
#include "master/listener.h"
#include "shm/shm.h"
#include "worker/worker.h"

struct master_worker {
    pid_t pid;              /* 0: no process in this slot */
    unsigned index;
    uint64_t generation;
    bool retiring;          /* asked to stop: its exit is expected */
    uint64_t started_ms;
    uint64_t respawn_at_ms; /* pid == 0 and wanted: fork again at this time */
    unsigned failures;      /* consecutive early deaths, for the backoff */
};

struct master {
    struct config *config;
    struct shm shm;
    struct listener_set listeners;
    struct worker_listener *worker_listeners;
    uint64_t generation;
    struct master_worker *slots;
    unsigned slot_count;
    bool stopping;
    uint64_t stop_deadline_ms;
    bool ready_reported;
    int ready_fd;           /* -d: tell the waiting parent we serve; -1 if none */
    sigset_t wait_mask;     /* the mask sigsuspend() waits with */
};

/* Binds, creates shm, forks workers. On failure nothing is left behind. */
int master_start(struct master *m, struct config *config, struct err *err);
/* Supervises until the instance has stopped; returns the exit status. */
int master_run(struct master *m);

#endif
