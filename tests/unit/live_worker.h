/*
 * live_worker.h - the server side of the unit suites that run real
 * connections (check_conn, check_stream, check_body, check_tunnel): a
 * worker built from a YAML config, with a real event loop, its end-of-turn
 * jobs and its timers, and connections opened on loopback TCP pairs.
 */
#ifndef SAKER_TESTS_UNIT_LIVE_WORKER_H
#define SAKER_TESTS_UNIT_LIVE_WORKER_H

#include "worker/conn.h"
#include "worker/worker.h"

extern struct worker live;          /* the worker */
extern struct shm_slot live_slot;   /* its counters */
extern struct config *live_config;
extern int live_client;             /* the client's end of the last connection */

/* Registers the test handlers, loads yaml, builds the worker and its loop. */
void live_start(const char *yaml);
void live_stop(void);
/* A served connection on a loopback TCP pair (buffers: their size in
 * both directions, 0 for the system's); the client's end is live_client. */
struct conn *live_open(int buffers);
/* Another served connection beside it: its client's end, the caller's
 * to close, in *client. */
struct conn *live_accept(int buffers, int *client);
/* One turn of the loop, waiting at most 10 ms for something to happen. */
void live_turn(void);
/* Turns of the loop that do not wait. */
void live_spin(int turns);

#endif
