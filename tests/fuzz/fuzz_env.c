/*
 * fuzz_env.c - the worker and the input cutting the protocol drivers
 * share; see fuzz_env.h.
 */
#include "tests/fuzz/fuzz_env.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>

#include "common/log.h"
#include "shm/shm.h"
#include "worker/file_cache.h"

/* Small limits, so that each refusal is within the fuzzer's reach. */
static const char config_template[] =
    "access_log: /dev/null\n"
    "access_log_format: %s\n"
    "allowed_hosts: [a, localhost, \"*.example.com\", \"127.0.0.1\"]\n"
    "limits:\n"
    "  max_request_body_size: 4KiB\n"
    "  max_request_line_size: 1KiB\n"
    "  max_request_headers_total_size: 4KiB\n"
    "  max_request_header_count: 24\n"
    "  http2:\n"
    "    max_streams_per_connection: 8\n"
    "    max_request_header_field_size: 2KiB\n"
    "endpoints:\n"
    "  main: { url: \"http://127.0.0.1:0\" }\n"
    "routes:\n"
    "  - path: /plaintext\n"
    "    return: { status: 200, headers: { Content-Type: text/plain }, body: \"Hello, World!\" }\n"
    "  - path: /empty\n"
    "    return: { status: 204 }\n"
    "  - path: /live\n"
    "    status: { kind: liveness }\n"
    "  - path: /ready\n"
    "    status: { kind: readiness }\n"
    "  - path: /metrics\n"
    "    status: { kind: metrics }\n"
    "  - path: /secure\n"
    "    redirect_https: { port: 8443 }\n"
    "  - host: \"*.example.com\"\n"
    "    path: /upload\n"
    "    max_request_body_size: 100\n"
    "    headers: { X-Frame-Options: DENY }\n"
    "    static: { root: \"%s\" }\n"
    "  - path: /\n"
    "    static: { root: \"%s\", index: index.html }\n";

static char root[] = "/tmp/saker-fuzz.XXXXXX";
static struct shm shm;
static struct event_base *base;
static int spare_descriptor = -1; /* the lowest free descriptor after set-up */

void fuzz_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("fuzz: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    abort();
}

static void write_file(const char *name, const char *text, size_t len)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", root, name);
    FILE *f = fopen(path, "w");
    if (f == NULL || fwrite(text, 1, len, f) != len || fclose(f) != 0)
        fuzz_fail("cannot write %s", path);
}

static void make_dir(const char *name)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", root, name);
    if (mkdir(path, 0755) != 0)
        fuzz_fail("cannot make %s", path);
}

static void make_link(const char *target, const char *name)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", root, name);
    if (symlink(target, path) != 0)
        fuzz_fail("cannot link %s", path);
}

static void remove_root(void)
{
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    if (system(cmd) != 0)
        fprintf(stderr, "fuzz: could not remove %s\n", root);
}

/* One file over FILE_CACHE_SMALL_FILE (sent as file ranges), small ones
 * (copied), an empty one, what the static handler hides, and symlinks
 * that stay inside the root and that leave it. */
static void make_root(void)
{
    if (mkdtemp(root) == NULL)
        fuzz_fail("mkdtemp(%s) failed", root);
    atexit(remove_root);
    static char big[40000];
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = (char)('a' + i % 26);
    write_file("index.html", "<h1>saker</h1>\n", 15);
    write_file("small.txt", "hello\n", 6);
    write_file("empty.txt", "", 0);
    write_file("big.bin", big, sizeof big);
    write_file(".env", "SECRET=1\n", 9);
    make_dir(".well-known");
    write_file(".well-known/security.txt", "Contact: x\n", 11);
    make_dir("dir");
    write_file("dir/index.html", "<p>dir</p>\n", 11);
    make_dir("noindex");
    make_dir("upload");
    write_file("upload/a.txt", "upload\n", 7);
    make_link("small.txt", "link-in");
    make_link("/etc/passwd", "link-out");
    make_link("/etc", "dir-out");
}

static struct fuzz_server *server_make(const char *log_format, unsigned slot)
{
    struct fuzz_server *s = calloc(1, sizeof *s);
    char text[sizeof config_template + 3 * sizeof root];
    int n = snprintf(text, sizeof text, config_template, log_format, root, root);
    struct err err;
    if (s == NULL || n < 0 || (size_t)n >= sizeof text)
        fuzz_fail("out of memory");
    if ((s->config = config_load_string(text, (size_t)n, "fuzz.yaml", &err)) == NULL)
        fuzz_fail("the fuzz config does not load: %s", err.message);
    if (worker_init_core(&s->worker, s->config, &err) != SK_OK)
        fuzz_fail("worker_init_core: %s", err.message);
    if (access_log_open(&s->worker.access_log, s->config, &err) != SK_OK)
        fuzz_fail("access_log_open: %s", err.message);
    /* Blocks back to malloc at once, where ASan watches them. */
    s->worker.blocks.max_free = 0;
    s->worker.shm = &shm;
    s->worker.slot = &shm.slots[slot];
    s->worker.base = base;
    s->endpoint = &s->config->endpoints[0];
    static struct sockaddr_in peer;
    peer.sin_family = AF_INET;
    peer.sin_port = htons(40000);
    peer.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    s->peer = (const struct sockaddr *)&peer;
    return s;
}

static void setup(void)
{
    log_set_level(LOG_ERROR); /* refusals log at debug: not worth the time */
    make_root();
    char path[64];
    snprintf(path, sizeof path, "%s/saker.shm", root);
    struct err err;
    if (shm_create(&shm, path, 2, &err) != SK_OK)
        fuzz_fail("shm_create: %s", err.message);
    atomic_store(&shm.header->state, SHM_INSTANCE_RUNNING);
    if ((base = event_base_new()) == NULL || file_cache_start(base) != 0)
        fuzz_fail("event_base_new failed");
}

struct fuzz_server *fuzz_server_get(unsigned flags)
{
    static struct fuzz_server *servers[2];
    if (servers[0] == NULL) {
        setup();
        servers[0] = server_make("combined", 0);
        servers[1] = server_make("json", 1);
    }
    return servers[(flags & FUZZ_FLAG_JSON_LOG) ? 1 : 0];
}

const char *fuzz_web_root(void)
{
    fuzz_server_get(0);
    return root;
}

static int lowest_free_descriptor(void)
{
    int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        fuzz_fail("open(/dev/null) failed");
    close(fd);
    return fd;
}

/* libFuzzer opens descriptors of its own between inputs (the symbolizer's
 * pipes), so the mark is taken again for each input. */
void fuzz_descriptors_mark(void) { spare_descriptor = lowest_free_descriptor(); }

void fuzz_descriptors_check(void)
{
    file_cache_flush(); /* the end of the loop turn */
    int fd = lowest_free_descriptor();
    if (fd == spare_descriptor)
        return;
    char link[64], target[256] = "?";
    snprintf(link, sizeof link, "/proc/self/fd/%d", spare_descriptor);
    ssize_t n = readlink(link, target, sizeof target - 1);
    target[n > 0 ? n : 1] = '\0';
    fuzz_fail("descriptor %d (%s) leaked: it was free before the input", spare_descriptor,
              target);
}

/* ---- input ------------------------------------------------------------ */

static int compare_size(const void *a, const void *b)
{
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return x < y ? -1 : x > y;
}

void fuzz_input_parse(struct fuzz_input *in, const uint8_t *data, size_t size)
{
    memset(in, 0, sizeof *in);
    if (size == 0)
        return;
    unsigned n = data[0] & 0x0f;
    in->flags = data[0] & 0xf0;
    size_t header = 1 + 2 * (size_t)n;
    if (header > size)
        header = size, n = (unsigned)(size - 1) / 2;
    in->stream = data + header;
    in->len = size - header;
    in->cuts[in->cut_count++] = 0;
    for (unsigned i = 0; i < n && in->len > 0; i++)
        in->cuts[in->cut_count++] = (size_t)(data[1 + 2 * i] << 8 | data[2 + 2 * i]) % in->len;
    in->cuts[in->cut_count++] = in->len;
    qsort(in->cuts, in->cut_count, sizeof in->cuts[0], compare_size);
}

char *fuzz_input_next(struct fuzz_input *in, size_t *len)
{
    while (in->next + 1 < in->cut_count) {
        size_t from = in->cuts[in->next], to = in->cuts[in->next + 1];
        in->next++;
        if (to == from)
            continue;
        char *copy = malloc(to - from);
        if (copy == NULL)
            fuzz_fail("out of memory");
        memcpy(copy, in->stream + from, to - from);
        *len = to - from;
        return copy;
    }
    return NULL;
}

struct fuzz_server *fuzz_connection_begin(struct fuzz_input *in, const uint8_t *data,
                                          size_t size, struct outq *out)
{
    fuzz_input_parse(in, data, size);
    struct fuzz_server *server = fuzz_server_get(in->flags);
    fuzz_descriptors_mark();
    outq_init(out);
    return server;
}

void fuzz_connection_end(struct outq *out)
{
    outq_clear(out);
    fuzz_descriptors_check();
}

/* ---- output ----------------------------------------------------------- */

size_t fuzz_drain(struct outq *out, fuzz_seen_fn *seen, void *ctx)
{
    static char sink[64 * 1024];
    size_t total = 0;
    for (size_t i = out->head; i < out->count; i++) {
        const struct outq_segment *s = &out->segments[i];
        for (size_t done = 0; done < s->len;) {
            size_t n = s->len - done < sizeof sink ? s->len - done : sizeof sink;
            if (s->kind == OUTQ_FILE) {
                ssize_t got = pread(s->fd, sink, n, s->file_offset + (off_t)done);
                if (got != (ssize_t)n)
                    fuzz_fail("a file range of %zu bytes at %lld reaches past the file",
                              s->len, (long long)s->file_offset);
            } else {
                memcpy(sink, (s->kind == OUTQ_COPY ? out->buffer + s->offset : s->ptr) + done,
                       n);
            }
            if (seen != NULL)
                seen(ctx, sink, n);
            done += n;
        }
        total += s->len;
    }
    outq_advance(out, total);
    return total;
}
