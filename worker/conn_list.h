/*
 * conn_list.h - the worker's connections as `sakerctl conns` lists them,
 * in its slot's connection list in shm (Apache's scoreboard is the
 * model): client, protocol, state, age, bytes, the last request line.
 *
 * On with `connection_list: on`; off, a connection costs a branch per
 * event. A connection takes an entry the first time it is published and
 * gives it back at close; a worker has SHM_CONNS_PER_SLOT entries, and a
 * connection that finds none is counted as unlisted (and tries again at
 * its next event). Each entry is written under its own seqlock, so a
 * reader copying it never blocks the worker.
 */
#ifndef SAKER_WORKER_CONN_LIST_H
#define SAKER_WORKER_CONN_LIST_H

#include <stdint.h>


struct worker;
struct conn;

/* Starts (or keeps off) the worker's list, as its config says. */
void conn_list_start(struct worker *w);
/* After each event on c: its state (its protocol's conn_protocol.state,
 * or the handshake, writing, closing). Outbound connections are not
 * listed. */
void conn_list_publish(struct conn *c);
/* A request head is complete (request_head_check): its line goes into
 * c's entry, and stays there as the last request while c is idle. */
struct exchange;
void conn_list_request(struct conn *c, const struct exchange *ex);
/* Bytes read and written on c since the last call (counted where the
 * slot's byte counters are). */
void conn_list_bytes(struct conn *c, uint64_t in, uint64_t out);
/* c's peer changed (a PROXY protocol header named the client): its
 * entry shows the new address. */
void conn_list_readdress(struct conn *c);
/* c is closing: its entry is free again. */
void conn_list_close(struct conn *c);

#endif
