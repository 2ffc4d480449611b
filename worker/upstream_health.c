/*
 * upstream_health.c - active health checks of upstream servers; see
 * upstream.h (upstreams_health_start).
 *
 * Each server with a health_check gets a check every interval: a new
 * connection, "GET path HTTP/1.1" with Connection: close, and the status
 * line of the answer compared with expect_status, all within timeout.
 * `fall` bad checks in a row mark it down in shm, `rise` good ones up
 * again; every worker reads that before it picks a server, so a down
 * server is skipped by all of them within one interval. A server starts
 * up: it is the passive checks' job to notice one that is down before
 * the first interval has passed.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include "common/log.h"
#include "shm/shm.h"
#include "worker/upstream.h"
#include "worker/worker.h"

struct upstream_check {
    struct upstream_peer *peer;
    struct worker *worker;
    struct timer interval;
    struct event *io;    /* the check in progress: write, then read */
    int fd;              /* -1: none */
    char reply[16];      /* "HTTP/1.1 200" is all we read */
    size_t reply_len;
    bool sent;
    unsigned good, bad;  /* in a row */
};

static void check_schedule(struct upstream_check *k)
{
    timer_start(&k->worker->timers, &k->interval, k->peer->up->cfg->health_interval_ms);
}

static void check_close(struct upstream_check *k)
{
    if (k->io != NULL) {
        event_free(k->io);
        k->io = NULL;
    }
    if (k->fd >= 0)
        close(k->fd);
    k->fd = -1;
}

static void check_done(struct upstream_check *k, bool ok)
{
    struct upstream_peer *p = k->peer;
    const struct upstream_config *cfg = p->up->cfg;
    check_close(k);
    shm_upstream_count(p->shm, ok ? SHM_UP_CHECKS_OK : SHM_UP_CHECKS_FAILED, 1);
    k->good = ok ? k->good + 1 : 0;
    k->bad = ok ? 0 : k->bad + 1;
    uint32_t now = atomic_load(&p->shm->health), next = now;
    if (ok && k->good >= cfg->health_rise)
        next = SHM_UPSTREAM_UP;
    if (!ok && k->bad >= cfg->health_fall)
        next = SHM_UPSTREAM_DOWN;
    if (next != now) {
        atomic_store(&p->shm->health, next);
        log_msg(LOG_WARN, "upstream '%s': server %s is %s (health check)", cfg->name,
                p->cfg->url_text, next == SHM_UPSTREAM_UP ? "up" : "down");
    }
    check_schedule(k);
}

/* 200 from "HTTP/1.1 200 OK"; -1 while too short or not HTTP. */
static int reply_status(const struct upstream_check *k)
{
    if (k->reply_len < 12 || memcmp(k->reply, "HTTP/1.", 7) != 0 || k->reply[8] != ' ')
        return -1;
    int s = 0;
    for (int i = 9; i < 12; i++) {
        if (k->reply[i] < '0' || k->reply[i] > '9')
            return -1;
        s = s * 10 + (k->reply[i] - '0');
    }
    return s;
}

static bool check_send(struct upstream_check *k)
{
    const struct upstream_peer *p = k->peer;
    char req[512];
    int n = snprintf(req, sizeof req,
                     "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: saker-health-check\r\n"
                     "Connection: close\r\n\r\n",
                     p->up->cfg->health_path,
                     p->cfg->url.host_kind == URL_HOST_UNIX ? "localhost" : p->cfg->url.host);
    return n > 0 && (size_t)n < sizeof req && send(k->fd, req, (size_t)n, MSG_NOSIGNAL) == n;
}

static int check_wait(struct upstream_check *k, short what);

static void on_check_io(evutil_socket_t fd, short what, void *arg)
{
    struct upstream_check *k = arg;
    if (what & EV_TIMEOUT) {
        check_done(k, false);
        return;
    }
    if (!k->sent) {
        int error = 0;
        socklen_t len = sizeof error;
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &len) != 0 || error != 0 ||
            !check_send(k)) {
            check_done(k, false);
            return;
        }
        k->sent = true;
        if (check_wait(k, EV_READ | EV_PERSIST) != SK_OK)
            check_done(k, false);
        return;
    }
    ssize_t n = recv(fd, k->reply + k->reply_len, sizeof k->reply - k->reply_len, 0);
    if (n > 0) {
        k->reply_len += (size_t)n;
        if (k->reply_len < 12)
            return;
    } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
        return;
    }
    check_done(k, reply_status(k) == (int)k->peer->up->cfg->health_status);
}

/* The next step within the check's timeout. */
static int check_wait(struct upstream_check *k, short what)
{
    uint64_t ms = k->peer->up->cfg->health_timeout_ms;
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000 * 1000)};
    if (k->io != NULL)
        event_free(k->io);
    k->io = event_new(k->worker->base, k->fd, what, on_check_io, k);
    return k->io != NULL && event_add(k->io, &tv) == 0 ? SK_OK : SK_ERROR;
}

static void check_start(struct timer *t)
{
    struct upstream_check *k = (struct upstream_check *)(void *)((char *)t -
                                                       offsetof(struct upstream_check, interval));
    const struct upstream_server_config *s = k->peer->cfg;
    k->reply_len = 0;
    k->sent = false;
    k->fd = socket(s->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (k->fd < 0 || (connect(k->fd, (const struct sockaddr *)&s->addr, s->addr_len) != 0 &&
                      errno != EINPROGRESS)) {
        check_done(k, false);
        return;
    }
    if (check_wait(k, EV_WRITE) != SK_OK) /* writable once connected */
        check_done(k, false);
}

int upstreams_health_start(struct worker *w)
{
    for (size_t i = 0; i < w->upstreams.count; i++) {
        struct upstream *up = &w->upstreams.list[i];
        if (up->cfg->health_path == NULL)
            continue;
        for (size_t j = 0; j < up->peer_count; j++) {
            struct upstream_peer *p = &up->peers[j];
            if (p->shm == NULL)
                continue;
            struct upstream_check *k = calloc(1, sizeof *k);
            if (k == NULL)
                return SK_ERROR;
            k->peer = p;
            k->worker = w;
            k->fd = -1;
            timer_init(&k->interval, check_start);
            p->check = k;
            if (timer_start(&w->timers, &k->interval, 0) != SK_OK)
                return SK_ERROR;
        }
    }
    return SK_OK;
}

void upstreams_health_stop(struct upstreams *ups)
{
    for (size_t i = 0; i < ups->count; i++)
        for (size_t j = 0; j < ups->list[i].peer_count; j++) {
            struct upstream_check *k = ups->list[i].peers[j].check;
            if (k == NULL)
                continue;
            timer_stop(&k->worker->timers, &k->interval);
            check_close(k);
            free(k);
            ups->list[i].peers[j].check = NULL;
        }
}
