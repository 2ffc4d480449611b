/*
 * path.h - turn a request path into a safe path relative to a root, and open
 * it without leaving the root.
 *
 * path_normalize() percent-decodes the path and resolves "." and ".."
 * segments, refusing anything that could name a file outside the root:
 * a ".." that climbs above the root (also when written %2e%2e), an encoded
 * slash or backslash (%2f, %5c) inside a segment, a NUL byte (raw or %00),
 * a malformed percent escape, or a path that does not start with '/'.
 * The result has no leading '/', no empty, "." or ".." segments, and is ""
 * for the root itself; `*trailing_slash` says whether the request ended in
 * '/'. Symlinks are the static handler's concern (it opens with
 * RESOLVE_BENEATH), not this function's.
 *
 * A raw backslash is refused (403) as well: Linux file names may hold one,
 * but a backend or a Windows client reading the same tree would take it as a
 * separator, and no sane web root needs it.
 */
#ifndef SAKER_WORKER_PATH_H
#define SAKER_WORKER_PATH_H

#include <stdbool.h>
#include <stddef.h>

/* Returns 0 and writes a NUL-terminated result into out (size out_size), or
 * the HTTP status to answer: 400 for malformed input, 403 for a path that
 * tries to leave the root, 414 when it does not fit out. */
int path_normalize(const char *path, size_t len, char *out, size_t out_size,
                   bool *trailing_slash);

/* True when a segment of rel (a path_normalize() result) starts with '.':
 * a dotfile or a dot-directory (.git, .env, .htpasswd), which a web root
 * holds by accident far more often than on purpose. ".well-known" (RFC
 * 8615: ACME challenges, security.txt) is not hidden. */
bool path_is_hidden(const char *rel);

/* Opens rel (a path_normalize() result; "" is the root itself) beneath the
 * directory root_fd with open flags `flags` (O_CLOEXEC is added). Symlinks
 * are followed only while they stay beneath root_fd; absolute symlinks,
 * magic links (/proc/.../fd) and anything that climbs out fail.
 * Returns the descriptor, or -errno: EXDEV or ELOOP for an escape,
 * ENOENT/ENOTDIR/EACCES as open(2) reports them.
 *
 * Uses openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS) (Linux 5.6). When the
 * kernel lacks it (ENOSYS, or EPERM from an old container seccomp profile)
 * the first call notices and every later call uses path_open_walk(). */
int path_open_beneath(int root_fd, const char *rel, int flags);

/* The fallback: walks rel one component at a time with O_NOFOLLOW, so every
 * symlink is refused (ELOOP or ENOTDIR), even one that stays inside the root.
 * Exposed for unit tests. */
int path_open_walk(int root_fd, const char *rel, int flags);

struct arena;

/* What a protocol does to a request path before routing: normalises it
 * (path_normalize) into the arena as "/" + result, with a trailing '/'
 * kept when the request had one. Routing and handlers then see exactly one
 * spelling of each path: decoded, no dot segments, starting with '/'.
 * Returns 0, or the status to answer (400, 403, 414, 500 out of memory). */
int path_normalize_request(struct arena *arena, const char *path, size_t len,
                           const char **out, size_t *out_len);

#endif
