/* bytebuf.c - bytes kept for later; see bytebuf.h. */
#include "common/bytebuf.h"

#include <stdlib.h>
#include <string.h>

#include "common/error.h"

int bytebuf_append(struct bytebuf *b, const void *data, size_t len)
{
    if (len == 0)
        return SK_OK;
    if (b->len + len > b->size) {
        size_t size = b->size > 0 ? b->size * 2 : 4096;
        while (size < b->len + len)
            size *= 2;
        char *grown = realloc(b->data, size);
        if (grown == NULL)
            return SK_ERROR;
        b->data = grown;
        b->size = size;
    }
    memcpy(b->data + b->len, data, len);
    b->len += len;
    return SK_OK;
}

void bytebuf_keep(struct bytebuf *b, const char *from, size_t len)
{
    memmove(b->data, from, len);
    b->len = len;
}

int bytebuf_holds(const struct bytebuf *b, const char *from)
{
    return b->data != NULL && from >= b->data && from < b->data + b->size;
}

void bytebuf_free(struct bytebuf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->size = 0;
}
