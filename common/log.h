/*
 * log.h - the error log.
 *
 * One process-wide log destination (stderr until log_open() names a file),
 * lines of the form "2026-11-22T10:00:00Z [warn] saker[pid]: message".
 * Messages that report a failed call name the call and append errno, e.g.
 * log_errno(LOG_ERROR, errno, "setsockopt(TCP_NODELAY)").
 * log_open() may be called again to reopen the file (SIGUSR1, logrotate).
 */
#ifndef SAKER_COMMON_LOG_H
#define SAKER_COMMON_LOG_H

#include <stdbool.h>
#include <stdint.h>

enum log_level { LOG_DEBUG, LOG_INFO, LOG_NOTICE, LOG_WARN, LOG_ERROR };

/* Opens (or reopens) path in append mode; NULL or "stderr" means stderr.
 * Returns SK_OK or SK_ERROR (errno set) and keeps the old destination. */
int log_open(const char *path);
void log_set_level(enum log_level level);
/* True when a message at level would be written: callers check it before
 * preparing costly arguments. */
bool log_enabled(enum log_level level);
/* Parses "debug", "info", "notice", "warn", "error"; -1 if unknown. */
int log_level_parse(const char *name);
/* The descriptor lines go to, for handing to a child as its stderr. */
int log_fd(void);

void log_msg(enum log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Appends ": strerror(errno_value)" after the formatted call description. */
void log_errno(enum log_level level, int errno_value, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * Rate-limited lines, for every site a flood can reach: an accept4 that
 * fails at the descriptor limit, a full disk under the access log, a
 * malloc that fails per request. A site is its format string. The first
 * line of a site is written; repeats within LOG_LIMIT_INTERVAL_MS are only
 * counted, and the count comes out as one line once the interval is over:
 * with the next repeat ("... (1234 more like it in 5 s)"), or from
 * log_limit_flush() if the flood stopped. A site therefore writes at most
 * one line per interval per process, however fast it fires, and a
 * suppressed call costs a table lookup, not a format or a write.
 * Debug lines are not limited: they are a diagnosis asked for.
 */
#define LOG_LIMIT_INTERVAL_MS 5000

/* As log_errno; errno_value 0 appends nothing. */
void log_limited(enum log_level level, int errno_value, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Writes the count of every site whose interval is over (a worker's
 * heartbeat, the master's tick). Costs nothing while nothing is held back. */
void log_limit_flush(void);
/* The interval, LOG_LIMIT_INTERVAL_MS unless a unit test shortens it. */
void log_limit_set_interval(uint64_t ms);

#endif
