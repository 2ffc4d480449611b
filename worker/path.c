/*
 * path.c - request path to a safe relative path, and opening it beneath a
 * root; see path.h.
 *
 * Normalisation works on the raw (percent-encoded) path in one pass: each
 * segment is decoded straight into `out`, then judged. Because a segment is
 * classified only after decoding, "%2e%2e" is a ".." like any other (RFC 3986
 * section 2.3: percent-encoded unreserved characters are equivalent to the
 * characters themselves), and an encoded '/' can never create a segment
 * boundary the checks did not see.
 */
#include "worker/path.h"

#include "common/arena.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/log.h"

#if defined(__has_include)
#if __has_include(<linux/openat2.h>) && defined(SYS_openat2)
#include <linux/openat2.h>
#define HAVE_OPENAT2 1
#endif
#endif

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Reads one byte of a segment at path[*i], decoding a %XX escape.
 * Returns the byte, or minus the status that refuses it. */
static int next_byte(const char *path, size_t len, size_t *i)
{
    int c = (unsigned char)path[*i];
    if (c != '%') {
        (*i)++;
    } else {
        if (len - *i < 3)
            return -400;
        int hi = hex_value(path[*i + 1]), lo = hex_value(path[*i + 2]);
        if (hi < 0 || lo < 0)
            return -400;
        c = hi << 4 | lo;
        if (c == '/')
            return -403; /* a separator smuggled into a segment */
        *i += 3;
    }
    if (c == '\0')
        return -400;
    if (c == '\\')
        return -403;
    return c;
}

/* Decodes the segment at path[*i] (up to the next raw '/') into out from
 * *o on, leaving room for the final NUL. 0 or the status to answer. */
static int decode_segment(const char *path, size_t len, size_t *i, char *out,
                          size_t out_size, size_t *o)
{
    while (*i < len && path[*i] != '/') {
        int c = next_byte(path, len, i);
        if (c < 0)
            return -c;
        if (*o + 1 >= out_size)
            return 414;
        out[(*o)++] = (char)c;
    }
    return 0;
}

/* The length of out[0..len) without its last segment (and that '/'). */
static size_t drop_last_segment(const char *out, size_t len)
{
    while (len > 0 && out[len - 1] != '/')
        len--;
    return len > 0 ? len - 1 : 0;
}

int path_normalize(const char *path, size_t len, char *out, size_t out_size,
                   bool *trailing_slash)
{
    if (len == 0 || path[0] != '/')
        return 400; /* origin-form starts with '/' (RFC 9112 section 3.2.1) */
    if (out_size == 0)
        return 414;
    size_t i = 1, o = 0; /* o < out_size always holds */
    for (;;) {
        size_t kept = o, start = o > 0 ? o + 1 : 0, end = start;
        if (o > 0)
            out[o] = '/'; /* in bounds: o < out_size; kept only if a byte follows */
        int status = decode_segment(path, len, &i, out, out_size, &end);
        if (status != 0)
            return status;
        size_t n = end - start;
        if (n == 0 || (n == 1 && out[start] == '.'))
            o = kept;
        else if (n == 2 && out[start] == '.' && out[start + 1] == '.') {
            if (kept == 0)
                return 403; /* would climb above the root */
            o = drop_last_segment(out, kept);
        } else
            o = end;
        if (i >= len)
            break;
        i++; /* the '/' */
    }
    out[o] = '\0';
    *trailing_slash = path[len - 1] == '/';
    return 0;
}

bool path_is_hidden(const char *rel)
{
    static const char well_known[] = ".well-known";
    for (const char *segment = rel; *segment != '\0';) {
        size_t len = strcspn(segment, "/");
        if (segment[0] == '.' &&
            !(len == sizeof well_known - 1 && memcmp(segment, well_known, len) == 0))
            return true;
        segment += len + (segment[len] == '/');
    }
    return false;
}

int path_open_walk(int root_fd, const char *rel, int flags)
{
    if (rel[0] == '\0')
        rel = ".";
    if (strcmp(rel, ".") == 0) {
        int fd = openat(root_fd, ".", flags | O_CLOEXEC);
        return fd >= 0 ? fd : -errno;
    }
    int dir = root_fd;
    for (const char *p = rel;;) {
        const char *slash = strchr(p, '/');
        size_t n = slash != NULL ? (size_t)(slash - p) : strlen(p);
        char name[NAME_MAX + 1];
        if (n > NAME_MAX || (n == 2 && p[0] == '.' && p[1] == '.')) {
            if (dir != root_fd)
                close(dir);
            return n > NAME_MAX ? -ENAMETOOLONG : -EXDEV;
        }
        memcpy(name, p, n);
        name[n] = '\0';
        /* O_NOFOLLOW on every component: with O_PATH|O_DIRECTORY a symlinked
         * directory fails with ENOTDIR, a symlinked file with ELOOP. */
        int next = slash != NULL
                       ? openat(dir, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                       : openat(dir, name, flags | O_NOFOLLOW | O_CLOEXEC);
        int saved = errno;
        if (dir != root_fd)
            close(dir);
        if (next < 0)
            return -saved;
        if (slash == NULL)
            return next;
        dir = next;
        p = slash + 1;
    }
}

#ifdef HAVE_OPENAT2
static int openat2_beneath(int root_fd, const char *rel, int flags)
{
    struct open_how how = {
        .flags = (unsigned)(flags | O_CLOEXEC),
        .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS,
    };
    /* EAGAIN: the kernel saw a concurrent rename while resolving beneath the
     * root and could not prove the walk stayed inside; openat2(2) says retry. */
    for (int tries = 0; tries < 3; tries++) {
        long fd = syscall(SYS_openat2, root_fd, rel, &how, sizeof how);
        if (fd >= 0)
            return (int)fd;
        if (errno != EAGAIN)
            return -errno;
    }
    return -EAGAIN;
}

/* 1 when openat2 works here, 0 when the kernel or a seccomp filter refuses
 * it. Probed once per process on a harmless O_PATH open of the root, where
 * EPERM cannot be a real answer: Docker before 20.10 filtered unknown
 * system calls with EPERM rather than ENOSYS. */
static int openat2_works(int root_fd)
{
    static int state = -1;
    if (state < 0) {
        int fd = openat2_beneath(root_fd, ".", O_PATH);
        state = !(fd == -ENOSYS || fd == -EPERM);
        if (fd >= 0)
            close(fd);
        if (!state)
            log_errno(LOG_NOTICE, -fd, "openat2(RESOLVE_BENEATH) unavailable, "
                                       "static files will refuse every symlink");
    }
    return state;
}
#endif

int path_open_beneath(int root_fd, const char *rel, int flags)
{
    if (rel[0] == '\0')
        rel = ".";
#ifdef HAVE_OPENAT2
    if (openat2_works(root_fd))
        return openat2_beneath(root_fd, rel, flags);
#endif
    return path_open_walk(root_fd, rel, flags);
}

int path_normalize_request(struct arena *arena, const char *path, size_t len,
                           const char **out, size_t *out_len)
{
    size_t size = len + 3;
    char *normal = arena_alloc(arena, size);
    if (normal == NULL)
        return 500;
    bool trailing_slash = false;
    int status = path_normalize(path, len, normal + 1, size - 2, &trailing_slash);
    if (status != 0)
        return status;
    normal[0] = '/';
    size_t n = 1 + strlen(normal + 1);
    if (trailing_slash && n > 1)
        normal[n++] = '/';
    normal[n] = '\0';
    *out = normal;
    *out_len = n;
    return 0;
}
