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
 * A descriptor from file_cache_open may be held by several responses at
 * once: each holder gives its hold back with file_cache_close, and the
 * last one closes it. Every holder must use file_cache_close, never
 * close(2). For a descriptor that was never shared it is close(2).
 *
 * Without file_cache_start (unit tests, the master) nothing is kept and
 * every open is a real one. Per process; not thread-safe.
 */
#ifndef SAKER_WORKER_FILE_CACHE_H
#define SAKER_WORKER_FILE_CACHE_H

#include <stddef.h>
#include <sys/stat.h>

struct event_base;

/* Turns caching on: what is opened during a turn of base is let go at its
 * end. -1 when out of memory (then nothing is cached). */
int file_cache_start(struct event_base *base);
/* Lets go of everything kept and turns caching off. */
void file_cache_stop(void);

/* rel beneath root_fd (path_open_beneath), opened with flags, and its
 * stat: a descriptor the caller holds, or -errno. */
int file_cache_open(int root_fd, const char *rel, int flags, struct stat *st);
/* The contents of fd, a descriptor from file_cache_open, when it is a
 * regular file of FILE_CACHE_SMALL_FILE bytes or fewer kept for this
 * turn, and in *size their length (the file's size at the open): read
 * with one pread the first time they are asked for in the turn, and
 * valid until the caller returns to the loop. NULL otherwise (not kept,
 * too large, or the file changed size since): read the descriptor. The
 * output queue copies from here (outq_add_file), so a hundred responses
 * of one small file cost one read and no sendfile each. */
#define FILE_CACHE_SMALL_FILE (16 * 1024)
const char *file_cache_contents(int fd, size_t *size);

/* Gives back one hold of fd; the last closes it. */
void file_cache_close(int fd);
/* Lets go of everything kept now (a root is about to be closed). */
void file_cache_flush(void);

#endif
