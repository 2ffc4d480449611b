/*
 * file_cache.h - response files opened (and small ones read) once per
 * event-loop turn, and the descriptors they share.
 *
 * An HTTP/2 read can carry a hundred requests for the same file, and one
 * turn of the loop serves every connection that became readable. Opening,
 * fstat()ing and closing the file once per request was most of the system
 * calls of a static response. file_cache_open keeps what it opened until
 * the end of the current turn: a second open of the same path beneath the
 * same root in that turn costs no system call and gets the same
 * descriptor with the same stat. A file changed on disk is seen from the
 * next turn, so the view is never older than the callbacks already queued
 * when it was opened (h2o's file cache has the same lifetime).
 *
 * What file_cache_open returns is a file_ref: the descriptor, its stat
 * and, for a small file, its bytes, shared by every response that holds
 * it. Each holder gives its hold back with file_ref_release (which is
 * also the release callback an output segment or an exchange body
 * carries, see outq.h), and the last one closes the file: one ownership
 * rule, whoever holds the ref. The cache's own hold goes at the end of
 * the turn.
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

/* Turns caching on: what is opened during a turn of base is let go at its
 * end. -1 when out of memory (then nothing is cached). */
int file_cache_start(struct event_base *base);
/* Lets go of everything kept and turns caching off. */
void file_cache_stop(void);

/* A small regular file's bytes are read once and copied into responses
 * (outq_add_file): one pread for a hundred responses in a turn, no
 * sendfile each. */
#define FILE_CACHE_SMALL_FILE (16 * 1024)

struct file_ref {
    int fd;
    struct stat st;        /* at the open */
    unsigned holds;        /* the last release closes fd */
    char *contents;        /* a small file's bytes, once read; NULL: not (yet) */
    bool contents_tried;   /* a read failed or came up short: do not retry */
};

/* rel beneath root_fd (path_open_beneath), opened with flags and
 * fstat()ed: 0 with *out holding one hold, or -errno. */
int file_cache_open(int root_fd, const char *rel, int flags, struct file_ref **out);
/* Gives back one hold of ref (a struct file_ref *); the last closes the
 * file and frees the ref. The signature of a release callback. */
void file_ref_release(void *ref);
/* The bytes of a regular file of FILE_CACHE_SMALL_FILE bytes or fewer,
 * read with one pread the first time they are asked for and valid while
 * the caller holds f; NULL otherwise (too large, or the file changed
 * size since the stat: read the descriptor, where the response's length
 * still rules). */
const char *file_ref_contents(struct file_ref *f);

/* Opens answered from what this turn kept (hits), and real ones
 * (misses), since the process started. */
void file_cache_counts(uint64_t *hits, uint64_t *misses);

/* Lets go of everything kept now (a root is about to be closed). */
void file_cache_flush(void);

#endif
