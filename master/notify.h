/*
 * notify.h - tell systemd (Type=notify) what the master is doing.
 *
 * A no-op unless $NOTIFY_SOCKET is set. The protocol is one datagram per
 * state change to that Unix socket ("READY=1", "RELOADING=1",
 * "STOPPING=1", "STATUS=..."); done here rather than with libsystemd to
 * keep the dependency list to what the server really needs.
 */
#ifndef SAKER_MASTER_NOTIFY_H
#define SAKER_MASTER_NOTIFY_H

void notify_systemd(const char *state);

#endif
