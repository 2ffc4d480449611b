/*
 * activation.c - sockets passed by systemd; see activation.h.
 */
#include "master/activation.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/log.h"

#define NAME_MAX_LEN 256 /* systemd's FileDescriptorName= limit is 255 */

struct passed_socket {
    char name[NAME_MAX_LEN];
};

static struct passed_socket passed[ACTIVATION_MAX];
static unsigned passed_count;

static void unset_all(void)
{
    unsetenv("LISTEN_PID");
    unsetenv("LISTEN_FDS");
    unsetenv("LISTEN_FDNAMES");
}

/* The number in text (all of it), or -1. */
static long parse_count(const char *text)
{
    char *end;
    errno = 0;
    long v = text != NULL ? strtol(text, &end, 10) : -1;
    return text == NULL || end == text || *end != '\0' || errno != 0 || v < 0 ? -1 : v;
}

/* Splits LISTEN_FDNAMES (absent: every socket is "unknown", as
 * sd_listen_fds_with_names says). */
static int take_names(const char *names, unsigned n, struct err *err)
{
    const char *p = names != NULL ? names : "";
    for (unsigned i = 0; i < n; i++) {
        size_t len = strcspn(p, ":");
        if (names == NULL)
            snprintf(passed[i].name, sizeof passed[i].name, "unknown");
        else if (len == 0 && p[0] == '\0' && i > 0)
            return err_set(err, "LISTEN_FDNAMES '%s' names %u sockets, LISTEN_FDS says %u",
                           names, i, n);
        else if (len >= NAME_MAX_LEN)
            return err_set(err, "LISTEN_FDNAMES: name %u is longer than %d bytes", i + 1,
                           NAME_MAX_LEN - 1);
        else
            snprintf(passed[i].name, sizeof passed[i].name, "%.*s", (int)len, p);
        p += len + (p[len] == ':');
    }
    if (names != NULL && *p != '\0')
        return err_set(err, "LISTEN_FDNAMES '%s' names more sockets than LISTEN_FDS (%u)",
                       names, n);
    return SK_OK;
}

/* A passed descriptor saker can serve: a listening stream socket. */
static int check_socket(int fd, const char *name, struct err *err)
{
    int type = 0, listening = 0;
    socklen_t len = sizeof type;
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0)
        return err_set_errno(err, errno, "socket activation: descriptor %d ('%s')", fd, name);
    len = sizeof listening;
    if (type != SOCK_STREAM ||
        getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) != 0 || !listening)
        return err_set(err, "socket activation: descriptor %d ('%s') is not a listening "
                       "stream socket (ListenStream= in the .socket unit, Accept=no)", fd, name);
    /* systemd passes blocking sockets: a worker's accept loop must not block. */
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0 ||
        fcntl(fd, F_SETFD, FD_CLOEXEC) != 0)
        return err_set_errno(err, errno, "socket activation: descriptor %d ('%s'): fcntl", fd,
                             name);
    return SK_OK;
}

int activation_take(struct err *err)
{
    const char *pid_text = getenv("LISTEN_PID");
    long pid = parse_count(pid_text);
    long n = parse_count(getenv("LISTEN_FDS"));
    const char *names = getenv("LISTEN_FDNAMES");
    int rc = SK_OK;
    passed_count = 0;
    if (pid_text == NULL || pid != (long)getpid()) {
        unset_all(); /* not ours: a process we start must not take them either */
        return SK_OK;
    }
    if (n < 0 || n > ACTIVATION_MAX)
        rc = err_set(err, "LISTEN_FDS '%s': expected a number of sockets up to %d",
                     getenv("LISTEN_FDS") ? getenv("LISTEN_FDS") : "", ACTIVATION_MAX);
    else
        rc = take_names(names, (unsigned)n, err);
    for (long i = 0; rc == SK_OK && i < n; i++)
        rc = check_socket(ACTIVATION_FIRST_FD + (int)i, passed[i].name, err);
    unset_all();
    if (rc == SK_OK)
        passed_count = (unsigned)n;
    return rc;
}

int activation_find(const char *name, unsigned k)
{
    for (unsigned i = 0; i < passed_count; i++)
        if (strcmp(passed[i].name, name) == 0 && k-- == 0)
            return ACTIVATION_FIRST_FD + (int)i;
    return -1;
}

bool activation_owns(int fd)
{
    return fd >= ACTIVATION_FIRST_FD && fd < ACTIVATION_FIRST_FD + (int)passed_count;
}

void activation_warn_unused(const struct config *config)
{
    for (unsigned i = 0; i < passed_count; i++) {
        bool named = false;
        for (size_t e = 0; e < config->endpoint_count && !named; e++)
            named = strcmp(passed[i].name, config->endpoints[e].name) == 0;
        if (!named)
            log_msg(LOG_WARN, "socket activation: descriptor %d is named '%s', which no "
                    "endpoint is: kept, unused", ACTIVATION_FIRST_FD + (int)i, passed[i].name);
    }
}

void activation_export(void)
{
    if (passed_count == 0)
        return;
    char names[ACTIVATION_MAX * NAME_MAX_LEN], text[32];
    size_t used = 0;
    names[0] = '\0';
    for (unsigned i = 0; i < passed_count; i++) {
        int fd = ACTIVATION_FIRST_FD + (int)i;
        fcntl(fd, F_SETFD, 0); /* open across exec */
        used += (size_t)snprintf(names + used, sizeof names - used, "%s%s", i ? ":" : "",
                                 passed[i].name);
    }
    setenv("LISTEN_FDNAMES", names, 1);
    snprintf(text, sizeof text, "%u", passed_count);
    setenv("LISTEN_FDS", text, 1);
    snprintf(text, sizeof text, "%d", (int)getpid());
    setenv("LISTEN_PID", text, 1);
}
