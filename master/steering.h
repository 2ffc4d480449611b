/*
 * steering.h - which socket of a listener's reuseport group the kernel
 * hands a new connection to.
 *
 * A TCP listener is a group of SO_REUSEPORT sockets bound to one address,
 * socket i polled by worker i (listener.h). Without a program the kernel
 * would spread new connections over every socket of the group by a hash,
 * including the sockets of workers that are gone; a steering program
 * attached to the group chooses instead, among the sockets given to
 * steering_set: the live workers' ones.
 *
 *   round-robin  an eBPF program (BPF_PROG_TYPE_SK_REUSEPORT) with a
 *                counter: connection k goes to target k mod n, so N
 *                workers get exactly equal shares. Needs CAP_BPF (a
 *                master started as root has it); loaded with the bpf(2)
 *                system call, no library.
 *   hash         a classic BPF program (SO_ATTACH_REUSEPORT_CBPF, no
 *                privilege needed): a hash of the client's address and
 *                port, modulo n. Equal on average, binomial at any moment.
 *
 * steering_set replaces the choice atomically for new connections (the
 * eBPF program reads it from a map; the classic one is replaced whole).
 * Connections already queued on a socket stay on it: whoever polls that
 * socket takes them.
 */
#ifndef SAKER_MASTER_STEERING_H
#define SAKER_MASTER_STEERING_H

#include <stdbool.h>

#include "common/error.h"

enum steering_kind {
    STEERING_NONE,        /* nothing attached */
    STEERING_HASH,        /* classic BPF */
    STEERING_ROUND_ROBIN, /* eBPF */
};

struct steering {
    enum steering_kind kind;
    int family;    /* AF_INET or AF_INET6: where the classic program reads ports */
    int socks_map;   /* eBPF: socket i of the group at key i (REUSEPORT_SOCKARRAY); -1 */
    int targets_map; /* eBPF: the index of target k at key k; -1 */
    int state_map;   /* eBPF: the counter and the number of targets; -1 */
    unsigned registered; /* eBPF: sockets 0..registered-1 are in socks_map */
};

/* No program: what steering_attach starts from, and stays at if it fails. */
void steering_init(struct steering *s, int family);

/* Attaches a program to the group that fd (bound, listening, SO_REUSEPORT)
 * belongs to: round-robin when allowed and the kernel lets this process
 * load one, else hash. Until steering_set, the choice is the kernel's or
 * socket 0. SK_OK or SK_ERROR (err: no program could be attached; s->kind
 * is STEERING_NONE). */
int steering_attach(struct steering *s, int fd, int family, bool round_robin,
                    struct err *err);

/* From now on, new connections go to fds[targets[0..n-1]]; fds is the
 * whole group, in the order its sockets joined it (fds[0] carries the
 * classic program; the classic program's answer is that position). n >= 1,
 * targets below fd_count. SK_OK, SK_AGAIN (a socket is still in another
 * process's map: try again once it has let go) or SK_ERROR (err); on
 * failure the previous choice stays in force, or part of the new one. */
int steering_set(struct steering *s, const int *fds, unsigned fd_count,
                 const unsigned *targets, unsigned n, struct err *err);

/* Releases the maps (the kernel drops the program with the group). */
void steering_close(struct steering *s);

/* "round-robin", "hash" or "none", for logs. */
const char *steering_name(const struct steering *s);

#endif
