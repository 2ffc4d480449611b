/*
 * bytebuf.h - bytes kept for later: a growable buffer, held only while
 * it has something in it. What a protocol read but cannot hand over yet
 * (a paused reader's piece, the rest of a read while parsing waits) goes
 * here; bytebuf_free gives the memory back.
 */
#ifndef SAKER_COMMON_BYTEBUF_H
#define SAKER_COMMON_BYTEBUF_H

#include <stddef.h>

struct bytebuf {
    char *data;
    size_t len;
    size_t size;
};

/* Appends len bytes (data may not lie within b). SK_OK, or SK_ERROR
 * when out of memory (b unchanged). */
int bytebuf_append(struct bytebuf *b, const void *data, size_t len);
/* Keeps only the len bytes that start at from, which lies within b. */
void bytebuf_keep(struct bytebuf *b, const char *from, size_t len);
/* True when from lies within b's memory. */
int bytebuf_holds(const struct bytebuf *b, const char *from);
void bytebuf_free(struct bytebuf *b);

#endif
