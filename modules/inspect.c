/*
 * inspect.c - answers with what the module API says of the request, one
 * "name: value" line each, for tests/func/test_module.py: method, target,
 * path, query, host, version, every header, the client's address and
 * the TLS client subject; and `file`, the file at `path` as the body
 * (saker_exchange_respond_file), opened per request.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <saker/module.h>

static size_t put(char *out, size_t at, size_t size, const char *name, const char *v,
                  size_t len)
{
    if (at < size)
        at += (size_t)snprintf(out + at, size - at, "%s: %.*s\n", name, (int)len,
                               v != NULL ? v : "(none)");
    return at;
}

static void peer_text(const struct sockaddr *sa, char *out, size_t size)
{
    snprintf(out, size, "(none)");
    if (sa != NULL && sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, out, (socklen_t)size);
    else if (sa != NULL && sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, out,
                  (socklen_t)size);
    else if (sa != NULL && sa->sa_family == AF_UNIX)
        snprintf(out, size, "unix");
}

static void inspect_handle(saker_exchange *ex, void *state)
{
    char out[8192], peer[64], version[8];
    size_t at = 0, len = 0;
    const char *v;
    (void)state;
    v = saker_exchange_method(ex);
    at = put(out, at, sizeof out, "method", v, strlen(v));
    v = saker_exchange_target(ex, &len);
    at = put(out, at, sizeof out, "target", v, len);
    v = saker_exchange_path(ex, &len);
    at = put(out, at, sizeof out, "path", v, len);
    v = saker_exchange_query(ex, &len);
    at = put(out, at, sizeof out, "query", v, v ? len : 6);
    v = saker_exchange_host(ex, &len);
    at = put(out, at, sizeof out, "host", v, len);
    snprintf(version, sizeof version, "%d", saker_exchange_http_version(ex));
    at = put(out, at, sizeof out, "version", version, strlen(version));
    for (size_t i = 0; i < saker_exchange_header_count(ex); i++) {
        const char *name, *value;
        size_t nlen, vlen;
        char label[80];
        if (saker_exchange_header_at(ex, i, &name, &nlen, &value, &vlen) != SAKER_OK)
            break;
        snprintf(label, sizeof label, "header %.*s", (int)(nlen < 60 ? nlen : 60), name);
        at = put(out, at, sizeof out, label, value, vlen);
    }
    v = saker_exchange_header(ex, "x-probe", &len);
    at = put(out, at, sizeof out, "x-probe", v, v ? len : 6);
    peer_text(saker_exchange_peer(ex), peer, sizeof peer);
    at = put(out, at, sizeof out, "peer", peer, strlen(peer));
    v = saker_exchange_client_subject(ex);
    at = put(out, at, sizeof out, "subject", v, v ? strlen(v) : 6);
    saker_exchange_add_header(ex, "Content-Type", "text/plain");
    saker_exchange_respond(ex, 200, out, at < sizeof out ? at : sizeof out - 1);
}

struct file_options {
    char *path;
};

static const struct saker_option file_options[] = {
    {"path", SAKER_OPTION_STRING, offsetof(struct file_options, path), NULL, true},
    {NULL, 0, 0, NULL, false},
};

static int file_init(saker_worker *w, const void *options, void *module_state, void **state,
                     saker_err *err)
{
    (void)w, (void)module_state, (void)err;
    *state = (void *)options;
    return SAKER_OK;
}

static void file_handle(saker_exchange *ex, void *state)
{
    const struct file_options *o = state;
    struct stat st;
    int fd = open(o->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &st) != 0) {
        if (fd >= 0)
            close(fd);
        saker_exchange_respond_error(ex, 404);
        return;
    }
    saker_exchange_add_header(ex, "Content-Type", "application/octet-stream");
    saker_exchange_respond_file(ex, 200, fd, 0, (size_t)st.st_size); /* saker closes fd */
}

static const struct saker_handler inspect_handlers[] = {
    {.name = "inspect", .handle = inspect_handle},
    {.name = "file", .options = file_options, .config_size = sizeof(struct file_options),
     .init = file_init, .handle = file_handle},
    {.name = NULL},
};

SAKER_MODULE_EXPORT saker_module = {
    .abi = SAKER_MODULE_ABI,
    .name = "inspect",
    .handlers = inspect_handlers,
};
