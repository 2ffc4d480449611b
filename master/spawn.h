/*
 * spawn.h - fork a worker and set it up.
 *
 * All of a worker's set-up happens in one place, in the child, before
 * worker_main(): default signal dispositions and an empty mask, death of
 * the master delivers SIGTERM (so an orphaned worker drains and exits),
 * CPU affinity, privileges dropped to the configured user and group, and
 * the process title.
 */
#ifndef SAKER_MASTER_SPAWN_H
#define SAKER_MASTER_SPAWN_H

#include <sys/types.h>

#include "worker/worker_main.h"

/* The CPU worker `index` runs on under config's cpu_affinity, or -1. */
int spawn_cpu_for(const struct config *config, unsigned index);

/* Forks a worker with params. Returns the child's pid, or -1 (errno set). */
pid_t spawn_worker(const struct worker_params *params, int cpu);

#endif
