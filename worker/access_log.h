/*
 * access_log.h - the access log, and connection logging (hex dumps).
 *
 * One line per response, in Apache/nginx "combined" format by default:
 *
 *   127.0.0.1 - - [22/Nov/2026:10:00:00 +0000] "GET / HTTP/1.1" 200 13 "-" "curl/7.88"
 *
 * where the user field (the second "-") is the verified TLS client
 * certificate's subject when there is one ("CN=alice,O=Example"), as
 * Apache's SSLUserName puts it in %u, spaces and quotes escaped as \xHH;
 *
 * or, with `access_log_format: json`, one JSON object per line with the
 * fields time, remote, method, target, protocol, status, bytes_sent,
 * referer, user_agent, duration_ms and endpoint (and client_subject, the
 * verified TLS client certificate's subject, when there is one). Bytes from the client are
 * escaped (\xHH, or JSON's \u00HH) so a line can never be split or forged.
 *
 * Every worker opens the file itself with O_APPEND and keeps whole lines in
 * a buffer that it writes with one write() when full and at every
 * heartbeat (so a line is on disk within a second). O_APPEND writes of
 * whole lines do not interleave between workers; to a pipe or terminal
 * (stderr) the buffer is held to PIPE_BUF, below which writes are atomic.
 * With the log off nothing here runs: no system call per request.
 */
#ifndef SAKER_WORKER_ACCESS_LOG_H
#define SAKER_WORKER_ACCESS_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "common/error.h"
#include "conf/config.h"

struct exchange;
struct sockaddr;

struct access_log {
    int fd;            /* -1: off */
    bool owns_fd;      /* false for stderr */
    enum access_log_format format;
    char *buffer;
    size_t used;
    size_t capacity;
    time_t stamp_second; /* the second `stamp` was rendered for */
    char stamp[32];      /* "22/Nov/2026:10:00:00 +0000" or ISO 8601 for JSON */
};

/* What one line needs besides the exchange. */
struct access_log_entry {
    const struct exchange *ex;
    const struct sockaddr *peer; /* NULL or AF_UNIX: "-"... see remote_text */
    const char *endpoint;        /* may be NULL */
    uint64_t bytes_sent;         /* body bytes */
    uint64_t duration_ms;
    const char *client_subject;  /* TLS client certificate subject, or NULL */
};

/* Sets log to off (call before anything else). */
void access_log_init(struct access_log *log);
/* Opens config->access_log (a path or "stderr"), or leaves the log off when
 * the config has none. SK_OK or SK_ERROR with err set. */
int access_log_open(struct access_log *log, const struct config *config, struct err *err);
/* SIGUSR1 (logrotate): flushes, then reopens the path; on failure the old
 * descriptor is kept and the failure logged. */
void access_log_reopen(struct access_log *log, const struct config *config);
/* Flushes and closes. */
void access_log_close(struct access_log *log);
/* Writes buffered lines; called by the heartbeat. */
void access_log_flush(struct access_log *log);
static inline bool access_log_on(const struct access_log *log) { return log->fd >= 0; }
/* Appends one line (flushing first if it would not fit). */
void access_log_record(struct access_log *log, const struct access_log_entry *entry);

/* Renders one line into out (at most size bytes, newline included);
 * returns its length. Exposed for unit tests. */
size_t access_log_render(struct access_log *log, const struct access_log_entry *entry,
                         char *out, size_t size);

/* The peer's address as the log shows it: "192.0.2.1", "2001:db8::1",
 * or "unix" (NULL, AF_UNIX). size INET6_ADDRSTRLEN is enough. */
void access_log_peer_text(const struct sockaddr *peer, char *out, size_t size);

/* connection_logging: hex dump of data at debug level in the error log,
 * labelled with the socket and what happened ("read", "write"). */
void access_log_hexdump(int fd, const char *what, const void *data, size_t len);

#endif
