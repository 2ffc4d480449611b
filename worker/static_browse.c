/*
 * static_browse.c - directory listings; see static_browse.h.
 */
#include "worker/static_browse.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/error.h"
#include "worker/path.h"

struct browse_entry {
    const char *name;
    bool dir;
};

struct browse_list {
    struct browse_entry *entries;
    size_t count, capacity, left_out;
};

static int entry_order(const void *a, const void *b)
{
    return strcmp(((const struct browse_entry *)a)->name, ((const struct browse_entry *)b)->name);
}

static bool entry_is_dir(DIR *d, const struct dirent *e)
{
    struct stat st;
    if (e->d_type != DT_UNKNOWN && e->d_type != DT_LNK)
        return e->d_type == DT_DIR;
    return fstatat(dirfd(d), e->d_name, &st, 0) == 0 && S_ISDIR(st.st_mode);
}

static int list_add(struct exchange *ex, struct browse_list *l, const char *name, bool dir)
{
    if (l->count == STATIC_BROWSE_MAX) {
        l->left_out++;
        return SK_OK;
    }
    if (l->count == l->capacity) {
        size_t capacity = l->capacity ? l->capacity * 2 : 64;
        void *grown = arena_grow(ex->arena, l->entries, l->capacity * sizeof *l->entries,
                                 capacity * sizeof *l->entries);
        if (grown == NULL)
            return SK_ERROR;
        l->entries = grown, l->capacity = capacity;
    }
    char *copy = arena_strndup(ex->arena, name, strlen(name));
    if (copy == NULL)
        return SK_ERROR;
    l->entries[l->count++] = (struct browse_entry){copy, dir};
    return SK_OK;
}

/* The entries of the directory rel, sorted. SK_OK, SK_DECLINED when it
 * cannot be opened, SK_ERROR when out of memory. */
static int read_listing(struct exchange *ex, int root_fd, const char *rel, bool dotfiles,
                        struct browse_list *l)
{
    int fd = path_open_beneath(root_fd, rel, O_RDONLY | O_DIRECTORY);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (d == NULL) {
        if (fd >= 0)
            close(fd);
        return SK_DECLINED;
    }
    int rc = SK_OK;
    for (struct dirent *e; rc == SK_OK && (e = readdir(d)) != NULL;) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (!dotfiles && path_is_hidden(e->d_name))
            continue;
        rc = list_add(ex, l, e->d_name, entry_is_dir(d, e));
    }
    closedir(d);
    if (l->count > 0)
        qsort(l->entries, l->count, sizeof *l->entries, entry_order);
    return rc;
}

/* ---- the page -------------------------------------------------------- */

struct page {
    char *p; /* sized beforehand (page_size): every write fits */
};

static void put(struct page *pg, const char *s, size_t n)
{
    memcpy(pg->p, s, n);
    pg->p += n;
}

static void put_str(struct page *pg, const char *s)
{
    put(pg, s, strlen(s));
}

/* Text into HTML: & < > " ' escaped (at most 6 bytes each). */
static void put_escaped(struct page *pg, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        switch (s[i]) {
        case '&': put_str(pg, "&amp;"); break;
        case '<': put_str(pg, "&lt;"); break;
        case '>': put_str(pg, "&gt;"); break;
        case '"': put_str(pg, "&quot;"); break;
        case '\'': put_str(pg, "&#39;"); break;
        default: *pg->p++ = s[i];
        }
    }
}

/* A name as one path segment of a link (at most 3 bytes each): only
 * unreserved characters stay, so ':' cannot make it a scheme, '?' or '#'
 * a query, and '"' cannot end the attribute. */
static void put_link(struct page *pg, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            strchr("-._~", c) != NULL) {
            *pg->p++ = (char)c;
        } else {
            *pg->p++ = '%';
            *pg->p++ = hex[c >> 4];
            *pg->p++ = hex[c & 15];
        }
    }
}

#define PAGE_HEAD "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Index of "
#define PAGE_TITLE_END "</title></head>\n<body><h1>Index of "
#define PAGE_LIST "</h1>\n<ul>\n"
#define PAGE_PARENT "<li><a href=\"../\">../</a></li>\n"
#define PAGE_ITEM_A "<li><a href=\""
#define PAGE_ITEM_B "\">"
#define PAGE_ITEM_END "</a></li>\n"
#define PAGE_END "</ul>\n</body></html>\n"
#define PAGE_LEFT_OUT "<p>%zu more entries not listed.</p>\n"

static size_t page_size(const struct exchange *ex, const struct browse_list *l)
{
    size_t n = sizeof PAGE_HEAD + sizeof PAGE_TITLE_END + sizeof PAGE_LIST + sizeof PAGE_PARENT +
               sizeof PAGE_END + sizeof PAGE_LEFT_OUT + 24 + 2 * 6 * ex->path_len;
    for (size_t i = 0; i < l->count; i++)
        n += sizeof PAGE_ITEM_A + sizeof PAGE_ITEM_B + sizeof PAGE_ITEM_END +
             9 * strlen(l->entries[i].name) + 2;
    return n;
}

static void write_page(struct page *pg, const struct exchange *ex, const struct browse_list *l,
                       bool at_root)
{
    put_str(pg, PAGE_HEAD);
    put_escaped(pg, ex->path, ex->path_len);
    put_str(pg, PAGE_TITLE_END);
    put_escaped(pg, ex->path, ex->path_len);
    put_str(pg, PAGE_LIST);
    if (!at_root)
        put_str(pg, PAGE_PARENT);
    for (size_t i = 0; i < l->count; i++) {
        const struct browse_entry *e = &l->entries[i];
        put_str(pg, PAGE_ITEM_A);
        put_link(pg, e->name);
        put_str(pg, e->dir ? "/" PAGE_ITEM_B : PAGE_ITEM_B);
        put_escaped(pg, e->name, strlen(e->name));
        put_str(pg, e->dir ? "/" PAGE_ITEM_END : PAGE_ITEM_END);
    }
    put_str(pg, "</ul>\n");
    if (l->left_out > 0)
        pg->p += sprintf(pg->p, PAGE_LEFT_OUT, l->left_out);
    put_str(pg, "</body></html>\n");
}

void static_browse_respond(struct exchange *ex, int root_fd, const char *rel,
                           bool serve_dotfiles)
{
    struct browse_list l = {0};
    int rc = read_listing(ex, root_fd, rel, serve_dotfiles, &l);
    if (rc != SK_OK) {
        exchange_respond_error(ex, rc == SK_DECLINED ? 404 : 500);
        return;
    }
    size_t size = page_size(ex, &l);
    struct page pg = {arena_alloc(ex->arena, size)};
    if (pg.p == NULL) {
        exchange_respond_error(ex, 500);
        return;
    }
    char *start = pg.p;
    write_page(&pg, ex, &l, rel[0] == '\0');
    if (exchange_add_header(ex, "Content-Type", "text/html; charset=utf-8") != SK_OK) {
        exchange_respond_error(ex, 500);
        return;
    }
    ex->status = 200;
    exchange_set_body(ex, start, (size_t)(pg.p - start), 0);
    exchange_respond(ex);
}
