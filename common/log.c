/*
 * log.c - the error log; see log.h.
 *
 * Each line is formatted into a stack buffer and written with one write(2)
 * so that lines from the master and several workers sharing one O_APPEND
 * file never interleave mid-line.
 */
#include "common/log.h"
#include "common/clock.h"
#include "common/error.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int log_destination = STDERR_FILENO;
static enum log_level log_threshold = LOG_INFO;

static const char *const level_names[] = {"debug", "info", "notice", "warn", "error"};

int log_open(const char *path)
{
    if (path == NULL || strcmp(path, "stderr") == 0) {
        if (log_destination != STDERR_FILENO)
            close(log_destination);
        log_destination = STDERR_FILENO;
        return SK_OK;
    }
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0)
        return SK_ERROR;
    if (log_destination != STDERR_FILENO)
        close(log_destination);
    log_destination = fd;
    return SK_OK;
}

void log_set_level(enum log_level level) { log_threshold = level; }

bool log_enabled(enum log_level level) { return level >= log_threshold; }

int log_level_parse(const char *name)
{
    for (size_t i = 0; i < sizeof level_names / sizeof level_names[0]; i++)
        if (strcmp(name, level_names[i]) == 0)
            return (int)i;
    return -1;
}

int log_fd(void) { return log_destination; }

/* "message[ failed: strerror]" into out (NUL-ended, cut to fit); its length. */
static size_t log_format(char *out, size_t size, int errno_value, const char *fmt, va_list ap)
{
    int m = vsnprintf(out, size, fmt, ap);
    size_t n = m < 0 ? 0 : ((size_t)m < size ? (size_t)m : size - 1);
    if (errno_value != 0 && n < size - 1) {
        m = snprintf(out + n, size - n, " failed: %s", strerror(errno_value));
        n = m < 0 ? n : (n + (size_t)m < size ? n + (size_t)m : size - 1);
    }
    out[n] = '\0';
    return n;
}

/* One line: the prefix, text, then suffix, with one write(2). */
static void log_emit(enum log_level level, const char *text, const char *suffix)
{
    char line[2048];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    size_t n = strftime(line, sizeof line, "%Y-%m-%dT%H:%M:%SZ", &tm);
    int m = snprintf(line + n, sizeof line - n, " [%s] saker[%d]: %s%s", level_names[level],
                     (int)getpid(), text, suffix);
    n = m < 0 ? n : (n + (size_t)m < sizeof line - 1 ? n + (size_t)m : sizeof line - 2);
    line[n++] = '\n';
    ssize_t written = write(log_destination, line, n);
    (void)written; /* nowhere left to report a failing log write */
}

static void log_write(enum log_level level, int errno_value, const char *fmt, va_list ap)
{
    if (level < log_threshold)
        return;
    char text[1900];
    log_format(text, sizeof text, errno_value, fmt, ap);
    log_emit(level, text, "");
}

/* ---- rate-limited sites ----------------------------------------------- */

#define LOG_LIMIT_SITES 32
#define LOG_LIMIT_TEXT 256

struct log_site {
    const char *fmt;   /* the site; NULL: a free entry */
    enum log_level level;
    uint64_t since_ms; /* when its interval began */
    uint64_t held;     /* calls counted and not written in it */
    char text[LOG_LIMIT_TEXT]; /* the last line written, repeated with the count */
};

static struct log_site log_sites[LOG_LIMIT_SITES];
static unsigned log_sites_holding; /* sites with held > 0 */
static uint64_t log_limit_interval_ms = LOG_LIMIT_INTERVAL_MS;

void log_limit_set_interval(uint64_t ms) { log_limit_interval_ms = ms; }

/* " (N more like it in S s)" for the calls the site held back, which are
 * then forgotten; "" when there were none. */
static void site_take_count(struct log_site *site, uint64_t now, char *suffix, size_t size)
{
    suffix[0] = '\0';
    if (site->held == 0)
        return;
    snprintf(suffix, size, " (%llu more like it in %llu s)", (unsigned long long)site->held,
             (unsigned long long)((now - site->since_ms + 500) / 1000));
    site->held = 0;
    log_sites_holding--;
}

/* Writes what a site held back, if anything, and starts a new interval. */
static void site_release(struct log_site *site, uint64_t now)
{
    char suffix[96];
    site_take_count(site, now, suffix, sizeof suffix);
    if (suffix[0] != '\0')
        log_emit(site->level, site->text, suffix);
    site->since_ms = now;
}

/* The entry of fmt: its own, a free one, or the one quiet for longest
 * (its count written first), so a table full of sites still limits. */
static struct log_site *site_for(const char *fmt, uint64_t now)
{
    struct log_site *oldest = &log_sites[0];
    for (size_t i = 0; i < LOG_LIMIT_SITES; i++) {
        struct log_site *site = &log_sites[i];
        if (site->fmt == fmt)
            return site;
        if (site->fmt == NULL) {
            site->fmt = fmt;
            site->since_ms = now - log_limit_interval_ms; /* over: the first line goes out */
            return site;
        }
        if (site->since_ms < oldest->since_ms)
            oldest = site;
    }
    site_release(oldest, now);
    oldest->fmt = fmt;
    oldest->since_ms = now - log_limit_interval_ms;
    return oldest;
}

static void log_vlimited(enum log_level level, int errno_value, const char *fmt, va_list ap)
{
    if (level < log_threshold)
        return;
    if (level == LOG_DEBUG) {
        log_write(level, errno_value, fmt, ap);
        return;
    }
    uint64_t now = clock_now_monotonic_ms();
    struct log_site *site = site_for(fmt, now);
    if (now - site->since_ms < log_limit_interval_ms) {
        if (site->held++ == 0)
            log_sites_holding++;
        return;
    }
    site->level = level;
    log_format(site->text, sizeof site->text, errno_value, fmt, ap);
    char suffix[96];
    site_take_count(site, now, suffix, sizeof suffix);
    log_emit(level, site->text, suffix);
    site->since_ms = now;
}

void log_limit_flush(void)
{
    if (log_sites_holding == 0)
        return;
    uint64_t now = clock_now_monotonic_ms();
    for (size_t i = 0; i < LOG_LIMIT_SITES; i++)
        if (log_sites[i].held > 0 && now - log_sites[i].since_ms >= log_limit_interval_ms)
            site_release(&log_sites[i], now);
}

void log_msg(enum log_level level, const char *fmt, ...)
{
    int saved = errno;
    va_list ap;
    va_start(ap, fmt);
    log_write(level, 0, fmt, ap);
    va_end(ap);
    errno = saved;
}

void log_errno(enum log_level level, int errno_value, const char *fmt, ...)
{
    int saved = errno;
    va_list ap;
    va_start(ap, fmt);
    log_write(level, errno_value, fmt, ap);
    va_end(ap);
    errno = saved;
}

void log_limited(enum log_level level, int errno_value, const char *fmt, ...)
{
    int saved = errno;
    va_list ap;
    va_start(ap, fmt);
    log_vlimited(level, errno_value, fmt, ap);
    va_end(ap);
    errno = saved;
}
