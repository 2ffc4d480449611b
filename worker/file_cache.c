/*
 * file_cache.c - response files opened once per turn; see file_cache.h.
 *
 * The kept files are a short array searched in order: one turn opens a
 * handful of distinct files, and a turn that opens more than fit simply
 * opens the rest each time. Refs come from a free list, so a static
 * response allocates nothing in steady state.
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
    struct file_ref *ref; /* the cache's hold */
    size_t path_len;
    char path[FILE_CACHE_PATH_MAX];
};

static struct kept_file kept[FILE_CACHE_ENTRIES];
static size_t kept_count;
static struct event *end_of_turn; /* NULL: caching off */
static uint64_t count_hits, count_misses;
static struct spare_list spare_refs = {.keep = SPARE_LIST_MAX};

static struct spare_list spare_contents = {.keep = FILE_CACHE_CONTENTS_KEPT};

void file_ref_release(void *arg)
{
    struct file_ref *f = arg;
    if (f == NULL || --f->holds > 0)
        return;
    close(f->fd);
    spare_give(&spare_contents, f->contents, true);
    spare_give(&spare_refs, f, true);
}

void file_cache_flush(void)
{
    for (size_t i = 0; i < kept_count; i++)
        file_ref_release(kept[i].ref);
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
    end_of_turn = event_new(base, -1, EV_PERSIST, on_end_of_turn, NULL); /* as turn.c's */
    return end_of_turn != NULL ? 0 : -1;
}

void file_cache_stop(void)
{
    file_cache_flush();
    if (end_of_turn != NULL)
        event_free(end_of_turn);
    end_of_turn = NULL;
    while (spare_refs.count > 0)
        free(spare_take(&spare_refs, 0));
    while (spare_contents.count > 0)
        free(spare_take(&spare_contents, 0));
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
static void keep(int root_fd, const char *rel, size_t len, int flags, struct file_ref *ref)
{
    if (end_of_turn == NULL || kept_count == FILE_CACHE_ENTRIES || len >= FILE_CACHE_PATH_MAX)
        return;
    struct kept_file *k = &kept[kept_count++];
    k->root_fd = root_fd;
    k->flags = flags;
    k->ref = ref;
    ref->holds++;
    k->path_len = len;
    memcpy(k->path, rel, len + 1);
    if (kept_count == 1)
        event_active(end_of_turn, 0, 0); /* runs after the callbacks already queued */
}

int file_cache_open(int root_fd, const char *rel, int flags, struct file_ref **out)
{
    size_t len = strlen(rel);
    struct kept_file *k = end_of_turn != NULL ? find(root_fd, rel, len, flags) : NULL;
    if (k != NULL) {
        k->ref->holds++;
        *out = k->ref;
        count_hits++;
        return 0;
    }
    count_misses++;
    struct file_ref *f = spare_take(&spare_refs, sizeof *f);
    if (f == NULL)
        return -ENOMEM;
    memset(f, 0, sizeof *f);
    f->fd = path_open_beneath(root_fd, rel, flags);
    if (f->fd < 0 || fstat(f->fd, &f->st) != 0) {
        int e = f->fd < 0 ? -f->fd : errno;
        if (f->fd >= 0)
            close(f->fd);
        spare_give(&spare_refs, f, true);
        return -e;
    }
    f->holds = 1;
    keep(root_fd, rel, len, flags, f);
    *out = f;
    return 0;
}

void file_cache_counts(uint64_t *hits, uint64_t *misses)
{
    *hits = count_hits;
    *misses = count_misses;
}

const char *file_ref_contents(struct file_ref *f)
{
    if (f->contents != NULL || f->contents_tried)
        return f->contents;
    f->contents_tried = true;
    if (!S_ISREG(f->st.st_mode) || f->st.st_size > FILE_CACHE_SMALL_FILE)
        return NULL;
    size_t size = (size_t)f->st.st_size;
    char *contents = spare_take(&spare_contents, FILE_CACHE_CONTENTS_SIZE);
    if (contents == NULL)
        return NULL;
    /* One byte more than the stat said: a file that grew since is read
     * from the descriptor, where the response's length still rules. */
    ssize_t n = pread(f->fd, contents, size + 1, 0);
    if (n != (ssize_t)size) {
        spare_give(&spare_contents, contents, true);
        return NULL;
    }
    f->contents = contents;
    return contents;
}
