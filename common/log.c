/*
 * log.c - the error log; see log.h.
 *
 * Each line is formatted into a stack buffer and written with one write(2)
 * so that lines from the master and several workers sharing one O_APPEND
 * file never interleave mid-line.
 */
#include "common/log.h"
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

static void log_write(enum log_level level, int errno_value, const char *fmt, va_list ap)
{
    if (level < log_threshold)
        return;
    char line[2048];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    size_t n = strftime(line, sizeof line, "%Y-%m-%dT%H:%M:%SZ", &tm);
    n += (size_t)snprintf(line + n, sizeof line - n, " [%s] saker[%d]: ",
                          level_names[level], (int)getpid());
    int m = vsnprintf(line + n, sizeof line - n, fmt, ap);
    n = m < 0 ? n : (n + (size_t)m < sizeof line ? n + (size_t)m : sizeof line - 1);
    if (errno_value != 0 && n < sizeof line - 1) {
        m = snprintf(line + n, sizeof line - n, " failed: %s", strerror(errno_value));
        n = m < 0 ? n : (n + (size_t)m < sizeof line ? n + (size_t)m : sizeof line - 1);
    }
    if (n >= sizeof line - 1)
        n = sizeof line - 2;
    line[n++] = '\n';
    ssize_t written = write(log_destination, line, n);
    (void)written; /* nowhere left to report a failing log write */
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
