/*
 * file_cache.h - response files kept open (and small ones read) across
 * requests, and the descriptors they share.
 *
 * An HTTP/2 read can carry a hundred requests for the same file, and one
 * turn of the loop serves every connection that became readable. Opening,
 * fstat()ing and closing the file once per request was most of the system
 * calls of a static response. file_cache_open keeps what it opened, keyed
 * by (root descriptor, open flags, relative path): a second open of the
 * same path beneath the same root costs no system call and gets the same
 * descriptor with the same stat.
 *
 * How long an entry lives is the one setting (file_cache_configure):
 *  - per turn (the default, and a draining worker's): everything kept is
 *    let go at the end of the current loop turn, so a file changed on disk
 *    is seen from the next turn and the view is never older than the
 *    callbacks already queued when it was opened (h2o's file cache);
 *  - across turns (`open_file_cache: { max, valid }`, nginx's
 *    open_file_cache): up to max entries, least recently used evicted
 *    first. An entry is checked again once `valid` has passed since its
 *    last check: a fresh open beneath the root (the same symlink rules as
 *    any open, so a path that now escapes the root is refused and its
 *    entry dropped) compared by device, inode, size, mtime, ctime and mode;
 *    a different file replaces the entry. An entry nobody asked for in
 *    `valid` is closed by file_cache_sweep, so a deleted file's space is
 *    given back to the disk within `valid` and a second.
 * Opens that fail are never kept: a file created is served at once.
 *
 * What file_cache_open returns is a file_ref: the descriptor, its stat
 * and, for a small file, its bytes, shared by every response that holds
 * it. Each holder gives its hold back with file_ref_release (which is
 * also the release callback an output segment or an exchange body
 * carries, see outq.h), and the last one closes the file: one ownership
 * rule, whoever holds the ref. An entry's eviction gives back only the
 * cache's hold, so a descriptor still lent to a response stays open until
 * that response lets go.
 *
 * Small files' bytes kept by entries are bounded (FILE_CACHE_CONTENTS_MAX
 * files, least recently used given back first), so `max` bounds
 * descriptors, not megabytes.
 *
 * Without file_cache_start (unit tests, the master) nothing is kept and
 * every open is a real one. Per process; not thread-safe.
 */
#ifndef SAKER_WORKER_FILE_CACHE_H
#define SAKER_WORKER_FILE_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

struct event_base;
struct file_entry;

/* Turns caching on, per turn: what is opened during a turn of base is let
 * go at its end. -1 when out of memory (then nothing is cached). */
int file_cache_start(struct event_base *base);
/* Lets go of everything kept and turns caching off. */
void file_cache_stop(void);

/* After file_cache_start: keeps up to max files across turns, each
 * checked again valid_ms after its last check; max 0 goes back to per
 * turn. What is kept now is let go either way. max is clamped to a
 * quarter of the process's descriptor limit (RLIMIT_NOFILE), so
 * connections always keep three quarters of it. Returns the max in
 * force (0 when per turn, also when out of memory). */
size_t file_cache_configure(size_t max, uint64_t valid_ms);

/* Across turns: closes the entries nobody opened in the last valid_ms.
 * Call once a second. */
void file_cache_sweep(void);

/* A small regular file's bytes are read once and copied into responses
 * (outq_add_file): one pread for many responses, no sendfile each. */
#define FILE_CACHE_SMALL_FILE (16 * 1024)
/* How many files' bytes the entries keep across turns at most (2 MiB). */
#define FILE_CACHE_CONTENTS_MAX 128

struct file_ref {
    int fd;
    struct stat st;        /* at the open */
    unsigned holds;        /* the last release closes fd */
    char *contents;        /* a small file's bytes, once read; NULL: not (yet) */
    bool contents_tried;   /* a read failed or came up short: do not retry */
    struct file_entry *entry; /* the cache's entry holding it; NULL: none */
};

/* rel beneath root_fd (path_open_beneath), opened with flags and
 * fstat()ed: 0 with *out holding one hold, or -errno. */
int file_cache_open(int root_fd, const char *rel, int flags, struct file_ref **out);
/* Gives back one hold of ref (a struct file_ref *); the last closes the
 * file and frees the ref. The signature of a release callback. */
void file_ref_release(void *ref);
/* The bytes of a regular file of FILE_CACHE_SMALL_FILE bytes or fewer,
 * read with one pread the first time they are asked for and valid while
 * the caller holds f; NULL otherwise (too large, the file changed size
 * since the stat, or every kept file's bytes are lent out: read the
 * descriptor, where the response's length still rules). */
const char *file_ref_contents(struct file_ref *f);

/* Since the process started: opens answered by a kept descriptor (hits)
 * and opens that opened the file (misses); entries closed for room or
 * for want of use (evictions); checks of a kept entry against the disk
 * (revalidations). */
struct file_cache_counts {
    uint64_t hits, misses, evictions, revalidations;
};
void file_cache_counts(struct file_cache_counts *out);

/* Lets go of everything kept now (a root is about to be closed, or
 * descriptors ran out). */
void file_cache_flush(void);

#endif
