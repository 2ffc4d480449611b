/* spare.c - a free list of standard-size blocks; see spare.h. */
#include "common/spare.h"

#include <stdlib.h>

void *spare_take(struct spare_list *s, size_t size)
{
    return s->count > 0 ? s->items[--s->count] : malloc(size);
}

void spare_give(struct spare_list *s, void *p, bool standard)
{
    if (p == NULL)
        return;
    if (standard && s->count < s->keep && s->count < SPARE_LIST_MAX)
        s->items[s->count++] = p;
    else
        free(p);
}

void spare_free_all(struct spare_list *s)
{
    while (s->count > 0)
        free(s->items[--s->count]);
}
