/*
 * file_cache.c - response files opened once per turn; see file_cache.h.
 *
 * The holds are counted in a table indexed by descriptor: only the extra
 * holders, so a descriptor nobody shares has no entry and closes at once.
 * The kept files are a short array searched in order: one turn opens a
 * handful of distinct files, and a turn that opens more than fit simply
 * opens the rest each time.
 */
#include "worker/file_cache.h"

#include <errno.h>
#include <event2/event.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/spare.h"
#include "worker/path.h"

#define FILE_CACHE_ENTRIES 32
#define FILE_CACHE_PATH_MAX 256
/* Contents buffers are all of one size, the largest small file and a byte,
 * and a few are kept from turn to turn: otherwise every turn that serves a
 * small file costs a malloc and a free of up to 16 KiB. */
#define FILE_CACHE_CONTENTS_SIZE (FILE_CACHE_SMALL_FILE + 1)
#define FILE_CACHE_CONTENTS_KEPT 4

struct kept_file {
    int root_fd;
    int flags;
    int fd;
    struct stat st;
    char *contents;      /* read on first demand; NULL: not (yet) read */
    bool contents_tried; /* a read failed or came up short: do not retry */
    size_t path_len;
    char path[FILE_CACHE_PATH_MAX];
};

static struct kept_file kept[FILE_CACHE_ENTRIES];
static size_t kept_count;
static struct event *end_of_turn; /* NULL: caching off */

static struct spare_list spare_contents = {.keep = FILE_CACHE_CONTENTS_KEPT};

static unsigned *extra_holds; /* by descriptor: holders beyond the first */
static size_t extra_holds_size;

static bool hold(int fd)
{
    if ((size_t)fd >= extra_holds_size) {
        size_t size = extra_holds_size ? extra_holds_size : 64;
        while (size <= (size_t)fd)
            size *= 2;
        unsigned *grown = realloc(extra_holds, size * sizeof *grown);
        if (grown == NULL)
            return false;
        memset(grown + extra_holds_size, 0, (size - extra_holds_size) * sizeof *grown);
        extra_holds = grown;
        extra_holds_size = size;
    }
    extra_holds[fd]++;
    return true;
}

void file_cache_close(int fd)
{
    if (fd < 0)
        return;
    if ((size_t)fd < extra_holds_size && extra_holds[fd] > 0)
        extra_holds[fd]--;
    else
        close(fd);
}

void file_cache_flush(void)
{
    for (size_t i = 0; i < kept_count; i++) {
        file_cache_close(kept[i].fd); /* the cache's own hold */
        spare_give(&spare_contents, kept[i].contents, true);
    }
    kept_count = 0;
}

static void on_end_of_turn(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what, (void)arg;
    file_cache_flush();
}

int file_cache_start(struct event_base *base)
{
    file_cache_stop();
    end_of_turn = event_new(base, -1, 0, on_end_of_turn, NULL);
    return end_of_turn != NULL ? 0 : -1;
}

void file_cache_stop(void)
{
    file_cache_flush();
    if (end_of_turn != NULL)
        event_free(end_of_turn);
    end_of_turn = NULL;
    while (spare_contents.count > 0)
        free(spare_contents.items[--spare_contents.count]);
    free(extra_holds);
    extra_holds = NULL;
    extra_holds_size = 0;
}

static struct kept_file *find(int root_fd, const char *rel, size_t len, int flags)
{
    for (size_t i = 0; i < kept_count; i++) {
        struct kept_file *k = &kept[i];
        if (k->root_fd == root_fd && k->flags == flags && k->path_len == len &&
            memcmp(k->path, rel, len) == 0)
            return k;
    }
    return NULL;
}

/* Keeps a fresh open for the rest of the turn, when there is room. */
static void keep(int root_fd, const char *rel, size_t len, int flags, int fd,
                 const struct stat *st)
{
    if (end_of_turn == NULL || kept_count == FILE_CACHE_ENTRIES || len >= FILE_CACHE_PATH_MAX ||
        !hold(fd))
        return;
    struct kept_file *k = &kept[kept_count++];
    k->root_fd = root_fd;
    k->flags = flags;
    k->fd = fd;
    k->st = *st;
    k->contents = NULL;
    k->contents_tried = false;
    k->path_len = len;
    memcpy(k->path, rel, len + 1);
    if (kept_count == 1)
        event_active(end_of_turn, 0, 0); /* runs after the callbacks already queued */
}

int file_cache_open(int root_fd, const char *rel, int flags, struct stat *st)
{
    size_t len = strlen(rel);
    struct kept_file *k = end_of_turn != NULL ? find(root_fd, rel, len, flags) : NULL;
    if (k != NULL && hold(k->fd)) {
        *st = k->st;
        return k->fd;
    }
    int fd = path_open_beneath(root_fd, rel, flags);
    if (fd < 0)
        return fd;
    if (fstat(fd, st) != 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    keep(root_fd, rel, len, flags, fd, st);
    return fd;
}

const char *file_cache_contents(int fd, size_t *size_out)
{
    struct kept_file *k = NULL;
    for (size_t i = 0; i < kept_count && k == NULL; i++)
        if (kept[i].fd == fd)
            k = &kept[i];
    if (k == NULL)
        return NULL;
    size_t size = (size_t)k->st.st_size;
    *size_out = size;
    if (k->contents != NULL || k->contents_tried)
        return k->contents;
    k->contents_tried = true;
    if (!S_ISREG(k->st.st_mode) || k->st.st_size > FILE_CACHE_SMALL_FILE)
        return NULL;
    char *contents = spare_take(&spare_contents, FILE_CACHE_CONTENTS_SIZE);
    if (contents == NULL)
        return NULL;
    /* One byte more than the stat said: a file that grew since is read
     * from the descriptor, where the response's length still rules. */
    ssize_t n = pread(fd, contents, size + 1, 0);
    if (n != (ssize_t)size) {
        spare_give(&spare_contents, contents, true);
        return NULL;
    }
    k->contents = contents;
    return contents;
}
