/*
 * access_log.c - access log lines and connection hex dumps; see access_log.h.
 */
#include "worker/access_log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/log.h"
#include "worker/exchange.h"

#define ACCESS_LOG_FILE_BUFFER (64 * 1024)
#define ACCESS_LOG_LINE_MAX 4096 /* = PIPE_BUF: one line is always one atomic write */
#define HEXDUMP_MAX_ROWS 64      /* 1 KiB per dump: enough to see a request head */

void access_log_init(struct access_log *log)
{
    memset(log, 0, sizeof *log);
    log->fd = -1;
    log->stamp_second = -1;
}

static int open_target(const char *path, bool *owns)
{
    if (strcmp(path, "stderr") == 0) {
        *owns = false;
        return STDERR_FILENO;
    }
    *owns = true;
    return open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
}

/* Whole lines of a regular file can be batched; to a pipe only one
 * PIPE_BUF at a time is atomic. */
static size_t buffer_size_for(int fd)
{
    struct stat st;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode))
        return ACCESS_LOG_FILE_BUFFER;
    return ACCESS_LOG_LINE_MAX;
}

int access_log_open(struct access_log *log, const struct config *config, struct err *err)
{
    access_log_init(log);
    log->format = config->access_log_format;
    if (config->access_log == NULL)
        return SK_OK;
    bool owns;
    int fd = open_target(config->access_log, &owns);
    if (fd < 0)
        return err_set_errno(err, errno, "open(%s)", config->access_log);
    log->capacity = buffer_size_for(fd);
    log->buffer = malloc(log->capacity);
    if (log->buffer == NULL) {
        if (owns)
            close(fd);
        return err_set(err, "access log: out of memory");
    }
    log->fd = fd;
    log->owns_fd = owns;
    return SK_OK;
}

void access_log_flush(struct access_log *log)
{
    size_t done = 0;
    while (log->fd >= 0 && done < log->used) {
        ssize_t n = write(log->fd, log->buffer + done, log->used - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            /* A full disk must not stop the server: the lines are lost. */
            log_limited(LOG_WARN, errno, "write(access log)");
            break;
        }
        done += (size_t)n;
    }
    log->used = 0;
}

void access_log_reopen(struct access_log *log, const struct config *config)
{
    if (log->fd < 0 || !log->owns_fd)
        return;
    access_log_flush(log);
    bool owns;
    int fd = open_target(config->access_log, &owns);
    if (fd < 0) {
        log_errno(LOG_ERROR, errno, "open(%s)", config->access_log);
        return;
    }
    close(log->fd);
    log->fd = fd;
}

void access_log_close(struct access_log *log)
{
    access_log_flush(log);
    if (log->fd >= 0 && log->owns_fd)
        close(log->fd);
    free(log->buffer);
    access_log_init(log);
}

/* ---- rendering --------------------------------------------------------- */

struct out {
    char *p, *end;
};

static void put(struct out *o, const char *s, size_t len)
{
    if (len > (size_t)(o->end - o->p))
        len = (size_t)(o->end - o->p);
    memcpy(o->p, s, len);
    o->p += len;
}

static void puts_(struct out *o, const char *s) { put(o, s, strlen(s)); }

/* Client bytes, escaped, at most max bytes of output: nginx's escaping
 * (\xHH for '"', '\\', controls and non-ASCII) or JSON's. */
static void put_escaped(struct out *o, const char *s, size_t len, size_t max, bool json)
{
    char *stop = o->p + max < o->end ? o->p + max : o->end;
    for (size_t i = 0; i < len && o->p + 7 <= stop; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch >= 0x20 && ch < 0x7f && ch != '"' && ch != '\\')
            *o->p++ = (char)ch;
        else if (json && (ch == '"' || ch == '\\'))
            o->p += sprintf(o->p, "\\%c", ch);
        else
            o->p += sprintf(o->p, json ? "\\u%04x" : "\\x%02X", ch);
    }
}

static void put_header(struct out *o, const struct exchange *ex, const char *name, bool json)
{
    size_t len;
    const char *value = exchange_header(ex, name, &len);
    if (value == NULL && !json)
        puts_(o, "-");
    else if (value != NULL)
        put_escaped(o, value, len, 512, json);
}

void access_log_peer_text(const struct sockaddr *peer, char *out, size_t size)
{
    if (peer != NULL && peer->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)peer)->sin_addr, out, (socklen_t)size);
    else if (peer != NULL && peer->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)peer)->sin6_addr, out,
                  (socklen_t)size);
    else
        snprintf(out, size, "unix");
}

/* The time is rendered once per second, not once per line. */
static const char *stamp(struct access_log *log)
{
    time_t now = clock_wall_seconds();
    if (now != log->stamp_second) {
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(log->stamp, sizeof log->stamp,
                 log->format == ACCESS_LOG_JSON ? "%Y-%m-%dT%H:%M:%SZ" : "%d/%b/%Y:%H:%M:%S +0000",
                 &tm);
        log->stamp_second = now;
    }
    return log->stamp;
}

/* The combined format's user field: the verified client certificate's
 * subject, as Apache's SSLUserName puts it in %u, else "-". A space would
 * split the field for every parser of the format, so it is escaped too. */
static void put_user(struct out *o, const char *subject)
{
    if (subject == NULL || subject[0] == '\0') {
        puts_(o, "-");
        return;
    }
    char *stop = o->p + 256 < o->end ? o->p + 256 : o->end;
    for (const char *s = subject; *s != '\0' && o->p + 5 <= stop; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch > 0x20 && ch < 0x7f && ch != '"' && ch != '\\')
            *o->p++ = (char)ch;
        else
            o->p += sprintf(o->p, "\\x%02X", ch);
    }
}

static void render_combined(struct access_log *log, const struct access_log_entry *e,
                            struct out *o, const char *remote)
{
    const struct exchange *ex = e->ex;
    char number[64];
    puts_(o, remote);
    puts_(o, " - ");
    put_user(o, e->client_subject);
    puts_(o, " [");
    puts_(o, stamp(log));
    puts_(o, "] \"");
    put_escaped(o, ex->method_name ? ex->method_name : "", ex->method_name ? strlen(ex->method_name) : 0, 64, false);
    puts_(o, " ");
    put_escaped(o, ex->target ? ex->target : "", ex->target_len, 2048, false);
    snprintf(number, sizeof number, " HTTP/%d.%d\" %d %llu \"", ex->version_major,
             ex->version_minor, ex->status, (unsigned long long)e->bytes_sent);
    puts_(o, number);
    put_header(o, ex, "referer", false);
    puts_(o, "\" \"");
    put_header(o, ex, "user-agent", false);
    puts_(o, "\"\n");
}

static void render_json(struct access_log *log, const struct access_log_entry *e,
                        struct out *o, const char *remote)
{
    const struct exchange *ex = e->ex;
    char number[160];
    puts_(o, "{\"time\":\"");
    puts_(o, stamp(log));
    puts_(o, "\",\"remote\":\"");
    puts_(o, remote);
    puts_(o, "\",\"method\":\"");
    put_escaped(o, ex->method_name ? ex->method_name : "", ex->method_name ? strlen(ex->method_name) : 0, 64, true);
    puts_(o, "\",\"target\":\"");
    put_escaped(o, ex->target ? ex->target : "", ex->target_len, 2048, true);
    snprintf(number, sizeof number,
             "\",\"protocol\":\"HTTP/%d.%d\",\"status\":%d,\"bytes_sent\":%llu,\"referer\":\"",
             ex->version_major, ex->version_minor, ex->status,
             (unsigned long long)e->bytes_sent);
    puts_(o, number);
    put_header(o, ex, "referer", true);
    puts_(o, "\",\"user_agent\":\"");
    put_header(o, ex, "user-agent", true);
    snprintf(number, sizeof number, "\",\"duration_ms\":%llu,\"endpoint\":\"",
             (unsigned long long)e->duration_ms);
    puts_(o, number);
    put_escaped(o, e->endpoint ? e->endpoint : "", e->endpoint ? strlen(e->endpoint) : 0, 128, true);
    if (e->client_subject != NULL) {
        puts_(o, "\",\"client_subject\":\"");
        put_escaped(o, e->client_subject, strlen(e->client_subject), 512, true);
    }
    puts_(o, "\"}\n");
}

size_t access_log_render(struct access_log *log, const struct access_log_entry *entry,
                         char *out, size_t size)
{
    char remote[INET6_ADDRSTRLEN];
    /* Every field is bounded (target 2 KiB, headers 512 B each), so a line
     * fits in ACCESS_LOG_LINE_MAX and its ending is never cut. */
    struct out o = {out, out + size};
    access_log_peer_text(entry->peer, remote, sizeof remote);
    if (log->format == ACCESS_LOG_JSON)
        render_json(log, entry, &o, remote);
    else
        render_combined(log, entry, &o, remote);
    return (size_t)(o.p - out);
}

void access_log_record(struct access_log *log, const struct access_log_entry *entry)
{
    if (log->fd < 0)
        return;
    if (log->capacity - log->used < ACCESS_LOG_LINE_MAX)
        access_log_flush(log);
    log->used += access_log_render(log, entry, log->buffer + log->used, ACCESS_LOG_LINE_MAX);
}

/* ---- connection logging ------------------------------------------------ */

void access_log_hexdump(int fd, const char *what, const void *data, size_t len)
{
    const unsigned char *bytes = data;
    log_msg(LOG_DEBUG, "conn %d %s: %zu bytes", fd, what, len);
    for (size_t row = 0; row * 16 < len && row < HEXDUMP_MAX_ROWS; row++) {
        char hex[16 * 3 + 1] = "", text[17] = "";
        size_t n = len - row * 16 < 16 ? len - row * 16 : 16;
        for (size_t i = 0; i < n; i++) {
            unsigned char ch = bytes[row * 16 + i];
            snprintf(hex + i * 3, 4, "%02x ", ch);
            text[i] = ch >= 0x20 && ch < 0x7f ? (char)ch : '.';
        }
        text[n] = '\0';
        log_msg(LOG_DEBUG, "conn %d %s %04zx  %-48s %s", fd, what, row * 16, hex, text);
    }
    if (len > HEXDUMP_MAX_ROWS * 16)
        log_msg(LOG_DEBUG, "conn %d %s: %zu more bytes not shown", fd, what,
                len - HEXDUMP_MAX_ROWS * 16);
}
