/*
 * upgrade.c - binary upgrade: a new master on the same sockets and segment.
 *
 * The old master (SIGUSR2 with value 3, from `sakerctl upgrade`):
 *   1. forks and execs the new binary (the path sakerctl wrote into the
 *      segment, else its own executable's path) with the same -c and
 *      --urls, passing in SAKER_UPGRADE the descriptors it inherits: a
 *      pipe to report through, the segment, and every listening socket in
 *      the order of the segment's listener table;
 *   2. keeps serving, and reads the pipe each loop turn. One NUL byte: the
 *      new master's workers serve. It then publishes the outcome, tells
 *      systemd the new MAINPID (it is the main process, which
 *      NotifyAccess=main listens to), and drains: its workers stop
 *      accepting, finish their requests and exit, killed at
 *      shutdown_timeout; then it exits, leaving the segment, the pid file
 *      and the Unix socket files to the new master.
 *   3. Anything else (a message, the pipe closed, the child gone, 30 s)
 *      is a failed upgrade: the new master gets SIGQUIT, the failure and
 *      its reason are published, and the old master goes on as before.
 *
 * The new master (master_adopt, then check_ready in master.c) is a
 * candidate until its workers serve: it maps the segment it was handed,
 * moves over the sockets its config still names (as a reload does; the
 * others it closes, the old workers drain them), and starts its own
 * generation, numbered after the old one, in slots nobody uses. Until it
 * serves it publishes nothing and, if it fails, removes nothing it did not
 * make. Once it serves it writes itself into the header as the master,
 * publishes its listeners, certificates and generation, writes the pid
 * file, and reports.
 *
 * Counters continue: both masters fold retired workers into the same
 * totals (the seqlock is also a lock between them). Ticket keys do not:
 * they live in memory the old master's workers alone share, so TLS
 * sessions from before the upgrade resume with a full handshake.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/log.h"
#include "master/activation.h"
#include "master/certificates.h"
#include "master/master.h"
#include "master/notify.h"

#define UPGRADE_READY_TIMEOUT_MS 30000
#define UPGRADE_ENV "SAKER_UPGRADE"

/* ---- the old master ------------------------------------------------------ */

static void publish_upgrade(struct master *m, bool ok, pid_t pid, const char *message)
{
    struct shm_header *h = m->shm.header;
    shm_header_begin_write(&m->shm);
    h->upgrade_ok = ok;
    h->upgrade_pid = (int32_t)pid;
    snprintf(h->upgrade_message, sizeof h->upgrade_message, "%s", message);
    h->upgrade_count++;
    shm_header_end_write(&m->shm);
    log_msg(ok ? LOG_NOTICE : LOG_ERROR, "upgrade %s: %s", ok ? "done" : "failed", message);
}

/* sakerctl's --binary, read once and cleared; else our own path. */
static void take_binary(struct master *m, char *binary, size_t size)
{
    char *asked = m->shm.header->upgrade_binary;
    asked[SHM_PATH_MAX - 1] = '\0';
    snprintf(binary, size, "%s", asked[0] == '/' ? asked : m->exe_path);
    memset(asked, 0, SHM_PATH_MAX);
}

static void keep_inherited(int fd, char *spec, size_t size, char separator)
{
    int flags = fcntl(fd, F_GETFD);
    if (flags >= 0)
        fcntl(fd, F_SETFD, flags & ~FD_CLOEXEC);
    size_t used = strlen(spec);
    if (used > 0)
        snprintf(spec + used, size - used, "%c%d", separator, fd);
    else
        snprintf(spec, size, "%d", fd);
}

/* "READY,SHM,L0,L1,...", each Li the sockets of listener i (its reuseport
 * group, socket k for worker k) joined by ':'. NULL when out of memory. */
static char *upgrade_spec(const struct master *m, int shm_fd, int ready_fd)
{
    size_t size = 64;
    for (size_t i = 0; i < m->listeners.count; i++)
        size += 12 * (size_t)m->listeners.items[i].group.count;
    char *spec = calloc(1, size);
    if (spec == NULL)
        return NULL;
    keep_inherited(ready_fd, spec, size, ',');
    keep_inherited(shm_fd, spec, size, ',');
    for (size_t i = 0; i < m->listeners.count; i++) {
        const struct listener_group *g = &m->listeners.items[i].group;
        for (unsigned k = 0; k < g->count; k++)
            keep_inherited(g->fds[k], spec, size, k == 0 ? ',' : ':');
    }
    return spec;
}

/* In the child: never returns. */
static void exec_new_master(struct master *m, const char *binary, int shm_fd, int ready_fd)
{
    char *spec = upgrade_spec(m, shm_fd, ready_fd);
    if (spec == NULL) {
        dprintf(ready_fd, "out of memory");
        _exit(127);
    }
    setenv(UPGRADE_ENV, spec, 1);
    activation_export();
    sigset_t none;
    sigemptyset(&none);
    struct itimerval off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &off, NULL);
    sigprocmask(SIG_SETMASK, &none, NULL);
    char *argv[8];
    int n = 0;
    argv[n++] = (char *)binary;
    if (m->config_file != NULL) {
        argv[n++] = "-c";
        argv[n++] = (char *)m->config_file;
    }
    if (m->urls != NULL) {
        argv[n++] = "--urls";
        argv[n++] = (char *)m->urls;
    }
    argv[n] = NULL;
    execv(binary, argv);
    dprintf(ready_fd, "cannot run %s: %s", binary, strerror(errno));
    _exit(127);
}

static const char *refusal(const struct master *m)
{
    if (m->stopping)
        return "the instance is stopping";
    if (m->pending != NULL)
        return "a reload is in progress; try again when it has finished";
    if (m->upgrade_pid != 0)
        return "the previous upgrade's new master has not exited yet";
    if (m->listeners.count > SHM_MAX_LISTENERS)
        return "more listeners than the segment's table names";
    return NULL;
}

void master_upgrade_begin(struct master *m)
{
    char binary[SHM_PATH_MAX], message[SHM_MESSAGE_MAX];
    struct err err;
    take_binary(m, binary, sizeof binary);
    const char *no = refusal(m);
    if (no != NULL) {
        publish_upgrade(m, false, 0, no);
        return;
    }
    int shm_fd = shm_reopen(&m->shm, m->shm_path, &err);
    int ready[2] = {-1, -1};
    if (shm_fd < 0 || pipe2(ready, O_CLOEXEC) != 0) {
        snprintf(message, sizeof message, "%s", shm_fd < 0 ? err.message : strerror(errno));
        if (shm_fd >= 0)
            close(shm_fd);
        publish_upgrade(m, false, 0, message);
        return;
    }
    pid_t pid = fork();
    if (pid == 0)
        exec_new_master(m, binary, shm_fd, ready[1]);
    close(shm_fd);
    close(ready[1]);
    if (pid < 0) {
        close(ready[0]);
        publish_upgrade(m, false, 0, strerror(errno));
        return;
    }
    fcntl(ready[0], F_SETFL, O_NONBLOCK);
    m->upgrade_fd = ready[0];
    m->upgrade_pid = pid;
    m->upgrade_started = pid;
    m->upgrade_deadline_ms = clock_now_monotonic_ms() + UPGRADE_READY_TIMEOUT_MS;
    snprintf(m->upgrade_binary, sizeof m->upgrade_binary, "%s", binary);
    log_msg(LOG_NOTICE, "upgrade: started %s as pid %d", binary, (int)pid);
}

static void upgrade_abort(struct master *m, const char *why)
{
    char message[SHM_MESSAGE_MAX];
    if (m->upgrade_pid > 0)
        kill(m->upgrade_pid, SIGQUIT);
    close(m->upgrade_fd);
    m->upgrade_fd = -1;
    snprintf(message, sizeof message, "the new master (pid %d, %.200s) did not start: %s; saker "
             "master pid %d goes on serving", (int)m->upgrade_started, m->upgrade_binary, why,
             (int)getpid());
    publish_upgrade(m, false, 0, message);
}

/* The new master serves: hand the instance over and drain. */
static void upgrade_commit(struct master *m)
{
    char message[SHM_MESSAGE_MAX], state[32];
    pid_t pid = m->upgrade_started;
    close(m->upgrade_fd);
    m->upgrade_fd = -1;
    m->handed_over = true;
    snprintf(message, sizeof message, "saker master pid %d (%.200s) serving generation %llu; pid "
             "%d draining", (int)pid, m->upgrade_binary,
             (unsigned long long)atomic_load(&m->shm.header->generation), (int)getpid());
    publish_upgrade(m, true, pid, message);
    snprintf(state, sizeof state, "MAINPID=%d", (int)pid);
    notify_systemd(state);
    listeners_keep_paths(&m->listeners);
    listeners_release_steering(&m->listeners); /* the new master steers now */
    m->stopping = true;
    m->stop_deadline_ms = clock_now_monotonic_ms() +
                          (m->current ? m->current->config->shutdown_timeout_ms : 0);
    for (int i = 0; i < MASTER_GENERATIONS; i++)
        if (m->generations[i].number != 0 && !m->generations[i].retiring)
            master_retire_generation(m, &m->generations[i]);
}

/* Slots the new master claimed whose workers are gone, when it could not
 * retire them itself (it was killed): their counters fold in, their
 * permits come back. */
static void reclaim_orphan_slots(struct master *m)
{
    for (unsigned s = 0; s < m->slot_count; s++) {
        pid_t pid = atomic_load_explicit(&m->shm.slots[s].pid, memory_order_relaxed);
        if (pid > 0 && m->slots[s].pid == 0 && kill(pid, 0) != 0 && errno == ESRCH)
            shm_slot_retire(&m->shm, s);
    }
}

bool master_upgrade_reaped(struct master *m, pid_t pid, int status)
{
    if (pid != m->upgrade_pid || pid == 0)
        return false;
    log_msg(m->handed_over ? LOG_INFO : LOG_NOTICE, "upgrade: new master pid %d exited (%s)",
            (int)pid, WIFSIGNALED(status) ? strsignal(WTERMSIG(status)) : "status");
    m->upgrade_pid = 0;
    if (!m->handed_over)
        reclaim_orphan_slots(m);
    return true;
}

void master_upgrade_check(struct master *m)
{
    if (m->upgrade_fd < 0)
        return;
    char text[SHM_MESSAGE_MAX];
    ssize_t n = read(m->upgrade_fd, text, sizeof text - 1);
    if (n > 0 && text[0] == '\0') {
        upgrade_commit(m);
    } else if (n > 0) {
        text[n] = '\0';
        upgrade_abort(m, text);
    } else if (n == 0) {
        upgrade_abort(m, "it exited before its workers served");
    } else if (m->stopping) {
        upgrade_abort(m, "the instance is stopping");
    } else if (clock_now_monotonic_ms() >= m->upgrade_deadline_ms) {
        upgrade_abort(m, "its workers did not serve within 30 s");
    }
}

/* ---- the new master ---------------------------------------------------- */

/* The descriptor at *p, open and made close-on-exec again; -1 if none. */
static int spec_fd(const char **p)
{
    char *end;
    long fd = strtol(*p, &end, 10);
    if (end == *p || fd < 0 || fd > 65535 || fcntl((int)fd, F_SETFD, FD_CLOEXEC) != 0)
        return -1;
    *p = end;
    return (int)fd;
}

static void close_groups(struct listener_group *groups, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        for (unsigned k = 0; k < groups[i].count; k++)
            close(groups[i].fds[k]);
        free(groups[i].fds);
    }
}

/* "READY,SHM,L0,L1,..." (upgrade_spec): the two descriptors, then up to
 * max listeners' groups. */
static int parse_spec(const char *spec, int *ready, int *shm, struct listener_group *groups,
                      size_t max, size_t *count, struct err *err)
{
    const char *p = spec;
    *count = 0;
    bool ok = (*ready = spec_fd(&p)) >= 0 && *p++ == ',' && (*shm = spec_fd(&p)) >= 0;
    while (ok && *p == ',' && *count < max) {
        struct listener_group *g = &groups[(*count)++];
        *g = (struct listener_group){0};
        do {
            p++;
            int fd = spec_fd(&p);
            ok = fd >= 0 && listener_group_add(g, fd) == SK_OK;
        } while (ok && *p == ':');
    }
    if (ok && *p == '\0')
        return SK_OK;
    close_groups(groups, *count);
    return err_set(err, "%s: '%s' does not name inherited descriptors", UPGRADE_ENV, spec);
}

int master_upgrade_ready_fd(void)
{
    const char *spec = getenv(UPGRADE_ENV);
    if (spec == NULL)
        return -1;
    char *end;
    long fd = strtol(spec, &end, 10);
    return end != spec && *end == ',' && fd >= 0 && fcntl((int)fd, F_GETFD) >= 0 ? (int)fd : -1;
}

/* The listener table the old master published says what each inherited
 * socket is: the set a reload would have moved sockets from. */
static int inherited_listeners(struct master *m, struct listener_group *groups, size_t n,
                               struct listener_set *set, struct err *err)
{
    struct shm_header h;
    shm_snapshot_header(&m->shm, &h);
    if (n != h.listener_count)
        return err_set(err, "%zu sockets inherited, the segment lists %u", n, h.listener_count);
    set->items = calloc(n ? n : 1, sizeof *set->items);
    if (set->items == NULL)
        return err_set(err, "out of memory");
    set->count = n;
    for (size_t i = 0; i < n; i++) {
        struct listener *l = &set->items[i];
        const struct shm_listener *s = &h.listeners[i];
        l->family = s->kind == SHM_LISTENER_UNIX ? AF_UNIX
                    : s->kind == SHM_LISTENER_TCP6 ? AF_INET6 : AF_INET;
        listener_adopt_group(l, &groups[i]);
        l->port = (uint16_t)s->port;
        l->reused_from = -1;
        l->keep_path = true; /* the old master's until we serve */
        snprintf(l->url, sizeof l->url, "%.*s", (int)sizeof s->url, s->url);
        snprintf(l->address, sizeof l->address, "%.*s", (int)sizeof l->address - 1, s->address);
        l->url_index = i > 0 && strcmp(set->items[i - 1].url, l->url) == 0
                           ? set->items[i - 1].url_index + 1 : 0;
    }
    return SK_OK;
}

static int adopt_segment(struct master *m, int fd, struct err *err)
{
    char link[64];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, m->shm_path, sizeof m->shm_path - 1);
    if (n <= 0)
        return err_set_errno(err, errno, "readlink(%s)", link);
    m->shm_path[n] = '\0';
    if (shm_adopt(&m->shm, fd, m->shm_path, err) != SK_OK)
        return SK_ERROR;
    m->generation_floor = atomic_load(&m->shm.header->generation);
    m->draining = atomic_load(&m->shm.header->state) == SHM_INSTANCE_DRAINING;
    return SK_OK;
}

int master_adopt(struct master *m, struct config *config, struct err *err)
{
    struct listener_group groups[SHM_MAX_LISTENERS];
    size_t n;
    int ready = -1, shm_fd = -1;
    struct listener_set inherited = {0};
    if (parse_spec(getenv(UPGRADE_ENV), &ready, &shm_fd, groups, SHM_MAX_LISTENERS, &n,
                   err) != SK_OK)
        return SK_ERROR;
    unsetenv(UPGRADE_ENV);
    m->candidate = true;
    m->ready_fd = ready;
    int rc = adopt_segment(m, shm_fd, err);
    close(shm_fd);
    if (rc == SK_OK)
        rc = inherited_listeners(m, groups, n, &inherited, err);
    if (rc == SK_OK)
        rc = pid_file_prepare(&m->pid_file, config->pid_file, err);
    if (rc == SK_OK)
        rc = listeners_open(&m->listeners, config, &inherited, err);
    /* What the new config no longer names: the old workers drain it. */
    if (inherited.items != NULL)
        listeners_close(&inherited);
    else
        close_groups(groups, n);
    return rc;
}

void master_take_over(struct master *m)
{
    struct err err;
    shm_master_publish(&m->shm);
    listeners_publish(&m->listeners, &m->shm);
    certificates_publish(m->current, &m->shm);
    atomic_store(&m->shm.header->generation, m->current->number);
    atomic_store(&m->shm.header->workers_per_generation, m->current->config->workers);
    for (size_t i = 0; i < m->listeners.count; i++)
        m->listeners.items[i].keep_path = false;
    if (pid_file_commit(&m->pid_file, &err) != SK_OK)
        log_msg(LOG_ERROR, "%s", err.message);
    m->candidate = false;
    /* The old master's steering program goes with it: ours replaces it,
     * steered to our workers from now on. */
    listeners_take_steering(&m->listeners);
    master_steer_again(m);
}
