/*
 * backend.c - asks another service without blocking the worker: the way
 * a module talks to a database. Each request opens a TCP connection to
 * `address`, writes the request's path and a newline, reads the reply
 * until the service closes, and answers it as text/plain; 502 when the
 * service cannot be reached, 504 after `timeout`.
 *
 *   - path: /lookup
 *     module: { handler: backend, address: "127.0.0.1:7000", timeout: 2s }
 *
 * The connection is non-blocking and watched with saker_watch (writable:
 * connected; readable: a reply), bounded by a saker_timer; all three are
 * let go when the answer is given, or in the generator's stop when the
 * client leaves first.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <saker/module.h>

#define REPLY_MAX 65536

struct backend_options {
    char *address;
    uint64_t timeout;
};

static const struct saker_option backend_options[] = {
    {"address", SAKER_OPTION_STRING, offsetof(struct backend_options, address), NULL, true},
    {"timeout", SAKER_OPTION_DURATION, offsetof(struct backend_options, timeout), "2s", false},
    {NULL, 0, 0, NULL, false},
};

struct backend_route {
    saker_worker *w;
    struct sockaddr_in addr;
    uint64_t timeout;
};

struct call {
    saker_exchange *ex;
    int fd;
    saker_watch *watch;
    saker_timer *timer; /* in the exchange's memory */
    char *reply;        /* in the exchange's memory */
    size_t len;
    size_t sent;
    const char *path;
    size_t path_len;
};

static void call_end(struct call *c)
{
    saker_watch_free(c->watch);
    c->watch = NULL;
    saker_timer_stop(c->timer);
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
}

static void call_answer(struct call *c, int status)
{
    call_end(c);
    if (status != 200) {
        saker_exchange_respond_error(c->ex, status);
        return;
    }
    saker_exchange_add_header(c->ex, "Content-Type", "text/plain");
    saker_exchange_respond(c->ex, 200, c->reply, c->len);
}

static void call_read(struct call *c)
{
    for (;;) {
        if (c->len == REPLY_MAX) {
            call_answer(c, 502);
            return;
        }
        ssize_t n = read(c->fd, c->reply + c->len, REPLY_MAX - c->len);
        if (n > 0) {
            c->len += (size_t)n;
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return; /* the watch calls again */
        call_answer(c, n == 0 ? 200 : 502);
        return;
    }
}

/* Writable: connected (or failed); then the question, then the reply. */
static void call_ready(saker_watch *watch, int fd, unsigned events, void *arg)
{
    struct call *c = arg;
    (void)fd;
    if (events & SAKER_READ) {
        call_read(c);
        return;
    }
    int error = 0;
    socklen_t len = sizeof error;
    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &error, &len) != 0 || error != 0) {
        call_answer(c, 502);
        return;
    }
    struct iovec iov[2] = {{(void *)(c->path + c->sent), c->path_len - c->sent}, {"\n", 1}};
    bool whole = c->sent < c->path_len; /* else only the newline is left */
    ssize_t n = writev(c->fd, whole ? iov : iov + 1, whole ? 2 : 1);
    if (n < 0 && errno != EAGAIN) {
        call_answer(c, 502);
        return;
    }
    c->sent += n > 0 ? (size_t)n : 0;
    if (c->sent > c->path_len) { /* all of it, the newline too */
        shutdown(c->fd, SHUT_WR);
        saker_watch_set(watch, SAKER_READ);
    }
}

static void call_timeout(saker_timer *t, void *arg)
{
    (void)t;
    call_answer(arg, 504);
}

static void call_stop(saker_exchange *ex, void *arg)
{
    (void)ex;
    call_end(arg);
}

static const struct saker_generator call_generator = {NULL, call_stop};

static int call_connect(struct call *c, const struct backend_route *r)
{
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0)
        return SAKER_ERROR;
    if (connect(c->fd, (const struct sockaddr *)&r->addr, sizeof r->addr) != 0 &&
        errno != EINPROGRESS)
        return SAKER_ERROR;
    c->watch = saker_watch_new(r->w, c->fd, SAKER_WRITE, call_ready, c);
    if (c->watch == NULL || saker_timer_start(c->timer, r->timeout) != SAKER_OK)
        return SAKER_ERROR;
    return SAKER_OK;
}

static void backend_handle(saker_exchange *ex, void *state)
{
    const struct backend_route *r = state;
    struct call *c = saker_exchange_alloc(ex, sizeof *c);
    if (c == NULL) {
        saker_exchange_respond_error(ex, 500);
        return;
    }
    memset(c, 0, sizeof *c);
    c->ex = ex;
    c->fd = -1;
    c->path = saker_exchange_path(ex, &c->path_len);
    c->reply = saker_exchange_alloc(ex, REPLY_MAX);
    c->timer = saker_timer_new(r->w, ex, call_timeout, c);
    if (c->reply == NULL || c->timer == NULL) {
        saker_exchange_respond_error(ex, 500);
        return;
    }
    saker_exchange_defer(ex, &call_generator, c);
    if (call_connect(c, r) != SAKER_OK)
        call_answer(c, 502);
}

static int parse_address(const char *text, struct sockaddr_in *addr)
{
    char host[64];
    unsigned port;
    const char *colon = strrchr(text, ':');
    if (colon == NULL || (size_t)(colon - text) >= sizeof host ||
        sscanf(colon + 1, "%u", &port) != 1 || port == 0 || port > 65535)
        return SAKER_ERROR;
    memcpy(host, text, (size_t)(colon - text));
    host[colon - text] = '\0';
    memset(addr, 0, sizeof *addr);
    addr->sin_family = AF_INET;
    addr->sin_port = htons((uint16_t)port);
    return inet_pton(AF_INET, host, &addr->sin_addr) == 1 ? SAKER_OK : SAKER_ERROR;
}

/* In the master: a bad address is the config's error, not a worker's. */
static int backend_check(const void *options, saker_err *err)
{
    const struct backend_options *o = options;
    struct sockaddr_in addr;
    if (parse_address(o->address, &addr) != SAKER_OK)
        return saker_err_set(err, "address: expected IPv4:PORT, got '%s'", o->address);
    return SAKER_OK;
}

static int backend_init(saker_worker *w, const void *options, void *module_state, void **state,
                        saker_err *err)
{
    const struct backend_options *o = options;
    (void)module_state;
    struct backend_route *r = calloc(1, sizeof *r);
    if (r == NULL)
        return saker_err_set(err, "out of memory");
    parse_address(o->address, &r->addr); /* checked */
    r->w = w;
    r->timeout = o->timeout;
    *state = r;
    return SAKER_OK;
}

static void backend_fini(void *state)
{
    free(state);
}

static const struct saker_handler backend_handlers[] = {
    {.name = "backend", .options = backend_options,
     .config_size = sizeof(struct backend_options), .check = backend_check,
     .init = backend_init,
     .handle = backend_handle, .fini = backend_fini},
    {.name = NULL},
};

SAKER_MODULE_EXPORT saker_module = {
    .abi = SAKER_MODULE_ABI,
    .name = "backend",
    .handlers = backend_handlers,
};
