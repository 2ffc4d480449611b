/*
 * spawn.c - fork and prepare a worker; see spawn.h.
 */
#include "master/spawn.h"

#include <errno.h>
#include <limits.h>
#include <grp.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "common/error.h"
#include "common/log.h"
#include "conf/config.h"
#include "shm/shm.h"

/* Workers leave with _exit (no atexit handlers of the master's), which
 * skips LeakSanitizer's check at exit: a sanitizer build runs it first. */
#ifndef __has_feature
#define __has_feature(x) 0
#endif
#if defined(__SANITIZE_ADDRESS__) || __has_feature(address_sanitizer)
#include <sanitizer/lsan_interface.h>
#define WORKER_LEAK_CHECK() __lsan_do_leak_check()
#else
#define WORKER_LEAK_CHECK() ((void)0)
#endif

int spawn_cpu_for(const struct config *config, unsigned index)
{
    if (config->cpu_affinity == CPU_AFFINITY_OFF)
        return -1;
    if (config->cpu_affinity == CPU_AFFINITY_LIST)
        return config->cpu_count ? config->cpus[index % config->cpu_count] : -1;
    /* auto: the i-th CPU among those this process may run on (a container's
     * cpuset may not start at CPU 0). */
    cpu_set_t allowed;
    if (sched_getaffinity(0, sizeof allowed, &allowed) != 0)
        return -1;
    int count = CPU_COUNT(&allowed);
    if (count == 0)
        return -1;
    int wanted = (int)(index % (unsigned)count);
    for (int cpu = 0; cpu < CPU_SETSIZE; cpu++)
        if (CPU_ISSET(cpu, &allowed) && wanted-- == 0)
            return cpu;
    return -1;
}

static void reset_signals(void)
{
    static const int handled[] = {SIGHUP, SIGTERM, SIGINT, SIGQUIT, SIGUSR1,
                                  SIGUSR2, SIGCHLD, SIGALRM, SIGPIPE};
    struct sigaction sa = {.sa_handler = SIG_DFL};
    for (size_t i = 0; i < sizeof handled / sizeof handled[0]; i++)
        sigaction(handled[i], &sa, NULL);
    /* A peer that closes while we write must be an EPIPE, not a death. */
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
}

static int pin(int cpu)
{
    if (cpu < 0)
        return SK_OK;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (sched_setaffinity(0, sizeof set, &set) != 0) {
        log_errno(LOG_WARN, errno, "sched_setaffinity(cpu %d)", cpu);
        return SK_ERROR;
    }
    return SK_OK;
}

static int drop_privileges(const struct config *config)
{
    if (getuid() != 0 || config->user == NULL)
        return SK_OK;
    struct passwd *pw = getpwnam(config->user);
    if (pw == NULL) {
        log_msg(LOG_ERROR, "user '%s' not found", config->user);
        return SK_ERROR;
    }
    gid_t gid = pw->pw_gid;
    if (config->group != NULL) {
        struct group *gr = getgrnam(config->group);
        if (gr == NULL) {
            log_msg(LOG_ERROR, "group '%s' not found", config->group);
            return SK_ERROR;
        }
        gid = gr->gr_gid;
    }
    if (setgid(gid) != 0 || initgroups(config->user, gid) != 0 || setuid(pw->pw_uid) != 0) {
        log_errno(LOG_ERROR, errno, "dropping privileges to %s", config->user);
        return SK_ERROR;
    }
    return SK_OK;
}

static int compare_fds(const void *a, const void *b)
{
    return *(const int *)a - *(const int *)b;
}

/* Closes every descriptor the worker was not given. The master holds
 * other generations' listeners (and during a reload both sets); a worker
 * that kept one would keep a removed listener bound and its queue unserved
 * for its whole life, and block a later reload from binding it again. */
static void close_inherited(const struct worker_params *params)
{
    int *keep = malloc((params->listener_count + 4) * sizeof *keep);
    if (keep == NULL)
        _exit(2); /* a worker that kept every descriptor would hold its siblings' sockets */
    size_t n = 0;
    keep[n++] = STDIN_FILENO;
    keep[n++] = STDOUT_FILENO;
    keep[n++] = STDERR_FILENO;
    if (log_fd() > STDERR_FILENO)
        keep[n++] = log_fd();
    for (size_t i = 0; i < params->listener_count; i++)
        keep[n++] = params->listeners[i].fd;
    qsort(keep, n, sizeof keep[0], compare_fds);
    int from = 0;
    for (size_t i = 0; i <= n; i++) {
        int to = i < n ? keep[i] - 1 : INT_MAX;
        if (to >= from && close_range((unsigned)from, (unsigned)to, 0) != 0)
            for (int fd = from; fd <= to && fd < 65536; fd++)
                close(fd);
        if (i < n)
            from = keep[i] + 1;
    }
    free(keep);
}

static void set_title(unsigned index, uint64_t generation)
{
    char name[16];
    snprintf(name, sizeof name, "saker: w%u g%llu", index, (unsigned long long)generation);
    prctl(PR_SET_NAME, name);
}

pid_t spawn_worker(const struct worker_params *params, int cpu)
{
    pid_t master = getpid();
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    reset_signals();
    close_inherited(params);
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != master) /* the master died before prctl took effect */
        _exit(1);
    pin(cpu);
    atomic_store_explicit(&params->shm->slots[params->slot].cpu, cpu, memory_order_relaxed);
    if (drop_privileges(params->config) != SK_OK)
        _exit(2);
    set_title(params->index, params->generation);
    int status = worker_main(params);
    WORKER_LEAK_CHECK();
    _exit(status);
}
