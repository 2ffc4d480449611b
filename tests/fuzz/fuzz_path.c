/*
 * fuzz_path.c - libFuzzer driver: request path normalisation
 * (worker/path.c) and opening the result beneath a web root.
 *
 * The input is a request path as it comes off the wire. Checked beyond the
 * sanitizers:
 *  - a normalised path has no leading '/', no empty, "." or ".." segment,
 *    no backslash; normalising "/" + it again changes nothing (when it
 *    holds no '%', which would be decoded a second time);
 *  - a smaller output buffer gives the same result or 414 when the
 *    result fits, and 414 when it does not;
 *  - path_normalize_request agrees with path_normalize;
 *  - whatever path_open_beneath and path_open_walk open lies inside the
 *    root (the fuzz web root holds symlinks that leave it).
 */
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/fuzz/fuzz_env.h"
#include "worker/path.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_shape(const char *rel)
{
    if (rel[0] == '/')
        fuzz_fail("'%s' starts with '/'", rel);
    if (strchr(rel, '\\') != NULL)
        fuzz_fail("'%s' holds a backslash", rel);
    for (const char *seg = rel; *seg != '\0';) {
        size_t n = strcspn(seg, "/");
        if (n == 0 || (n == 1 && seg[0] == '.') || (n == 2 && seg[0] == '.' && seg[1] == '.'))
            fuzz_fail("'%s' has an empty, '.' or '..' segment", rel);
        seg += n + (seg[n] == '/');
        if (seg[-1] == '/' && *seg == '\0')
            fuzz_fail("'%s' ends with '/'", rel);
    }
}

static void check_again(const char *rel, size_t len)
{
    if (memchr(rel, '%', len) != NULL)
        return;
    char *again = malloc(len + 2), *out = malloc(len + 2);
    bool slash;
    again[0] = '/';
    memcpy(again + 1, rel, len);
    if (path_normalize(again, len + 1, out, len + 2, &slash) != 0 || strcmp(out, rel) != 0)
        fuzz_fail("normalising '/%s' again changes it", rel);
    free(again);
    free(out);
}

static void check_small_buffer(const uint8_t *data, size_t size, const char *rel, size_t len,
                               bool slash)
{
    size_t small = size > 0 ? data[size - 1] % (size + 1) : 0;
    char *out = malloc(small + 1);
    bool small_slash;
    int status = path_normalize((const char *)data, size, out, small, &small_slash);
    /* 414 may come early: a segment a later ".." drops must fit too. */
    if (small > len && status != 414 &&
        (status != 0 || strcmp(out, rel) != 0 || small_slash != slash))
        fuzz_fail("a %zu-byte buffer gives %d for a %zu-byte result", small, status, len);
    if (small <= len && status != 414)
        fuzz_fail("a %zu-byte buffer gives %d, not 414, for a %zu-byte result", small,
                  status, len);
    free(out);
}

static void check_request(const uint8_t *data, size_t size, const char *rel, bool slash)
{
    struct fuzz_server *server = fuzz_server_get(0);
    struct arena arena;
    arena_init(&arena, &server->worker.blocks);
    const char *normal;
    size_t n;
    if (path_normalize_request(&arena, (const char *)data, size, &normal, &n) != 0 ||
        normal[0] != '/' || strncmp(normal + 1, rel, strlen(rel)) != 0 ||
        strlen(normal) != n ||
        n != 1 + strlen(rel) + (slash && rel[0] != '\0'))
        fuzz_fail("path_normalize_request disagrees with path_normalize on '%s'", rel);
    arena_reset(&arena);
}

static void check_inside(int fd, const char *rel, const char *how)
{
    static char root[PATH_MAX];
    if (root[0] == '\0' && realpath(fuzz_web_root(), root) == NULL)
        fuzz_fail("realpath of the web root failed");
    char link[64], real[PATH_MAX];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, real, sizeof real - 1);
    close(fd);
    if (n < 0)
        return;
    real[n] = '\0';
    size_t root_len = strlen(root);
    if (strncmp(real, root, root_len) != 0 || (real[root_len] != '\0' && real[root_len] != '/'))
        fuzz_fail("%s('%s') opened %s, outside the root %s", how, rel, real, root);
}

static void check_open(const char *rel)
{
    static int root_fd = -1;
    if (root_fd < 0 && (root_fd = open(fuzz_web_root(), O_PATH | O_DIRECTORY)) < 0)
        fuzz_fail("cannot open the web root");
    fuzz_descriptors_mark();
    int fd = path_open_beneath(root_fd, rel, O_RDONLY);
    if (fd >= 0)
        check_inside(fd, rel, "path_open_beneath");
    fd = path_open_walk(root_fd, rel, O_RDONLY);
    if (fd >= 0)
        check_inside(fd, rel, "path_open_walk");
    fuzz_descriptors_check();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *out = malloc(size + 1);
    bool slash = false;
    int status = path_normalize((const char *)data, size, out, size + 1, &slash);
    if (status == 0) {
        size_t len = strlen(out);
        check_shape(out);
        check_again(out, len);
        check_small_buffer(data, size, out, len, slash);
        check_request(data, size, out, slash);
        check_open(out);
    } else if (status != 400 && status != 403) {
        fuzz_fail("status %d for a path that fits its buffer", status);
    }
    free(out);
    return 0;
}
