/*
 * mime.c - Content-Type by file extension; see mime.h.
 *
 * The extension is what follows the last '.' of the last path component,
 * so "archive.tar.gz" is gzip and "a.d/readme" has none. A leading dot marks
 * a hidden file, not an extension: ".htaccess" is octet-stream. The table is
 * sorted by extension (lower case, strcmp order) for bsearch(); the unit test
 * looks up every entry, so a misplaced one fails there.
 */
#include "worker/mime.h"

#include "conf/route_static.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MIME_DEFAULT "application/octet-stream"
#define EXT_MAX 16

struct mime_entry {
    const char *ext;
    const char *type;
};

/* text/javascript per RFC 9239; JSON has no charset parameter (RFC 8259
 * section 11: it is always UTF-8). */
static const struct mime_entry mime_table[] = {
    {"7z", "application/x-7z-compressed"},
    {"avif", "image/avif"},
    {"bmp", "image/bmp"},
    {"css", "text/css; charset=utf-8"},
    {"csv", "text/csv; charset=utf-8"},
    {"gif", "image/gif"},
    {"gz", "application/gzip"},
    {"htm", "text/html; charset=utf-8"},
    {"html", "text/html; charset=utf-8"},
    {"ico", "image/x-icon"},
    {"jpeg", "image/jpeg"},
    {"jpg", "image/jpeg"},
    {"js", "text/javascript; charset=utf-8"},
    {"json", "application/json"},
    {"map", "application/json"},
    {"md", "text/markdown; charset=utf-8"},
    {"mjs", "text/javascript; charset=utf-8"},
    {"mp3", "audio/mpeg"},
    {"mp4", "video/mp4"},
    {"oga", "audio/ogg"},
    {"ogg", "audio/ogg"},
    {"ogv", "video/ogg"},
    {"otf", "font/otf"},
    {"pdf", "application/pdf"},
    {"png", "image/png"},
    {"svg", "image/svg+xml"},
    {"tar", "application/x-tar"},
    {"ttf", "font/ttf"},
    {"txt", "text/plain; charset=utf-8"},
    {"wasm", "application/wasm"},
    {"wav", "audio/wav"},
    {"webm", "video/webm"},
    {"webmanifest", "application/manifest+json"},
    {"webp", "image/webp"},
    {"woff", "font/woff"},
    {"woff2", "font/woff2"},
    {"xml", "text/xml; charset=utf-8"},
    {"zip", "application/zip"},
};

static int compare_entry(const void *key, const void *element)
{
    return strcmp(key, ((const struct mime_entry *)element)->ext);
}

/* The lower-cased extension of file_name into ext, or false if none fits. */
static bool extension_of(const char *file_name, char ext[EXT_MAX + 1])
{
    const char *base = strrchr(file_name, '/');
    base = base != NULL ? base + 1 : file_name;
    const char *dot = strrchr(base, '.');
    if (dot == NULL || dot == base)
        return false;
    size_t n = strlen(dot + 1);
    if (n == 0 || n > EXT_MAX)
        return false;
    for (size_t i = 0; i <= n; i++) { /* ASCII only: tolower() follows the locale */
        char c = dot[1 + i];
        ext[i] = c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
    }
    return true;
}

/* ---- the system's table ------------------------------------------------- */

static struct mime_entry *system_table; /* sorted by ext; strings in system_text */
static size_t system_count;
static char *system_text;

static int compare_entries(const void *a, const void *b)
{
    return strcmp(((const struct mime_entry *)a)->ext, ((const struct mime_entry *)b)->ext);
}

/* Lines "type ext ext ...", '#' comments: each extension gets the first
 * type that names it; lower case, at most EXT_MAX bytes. */
static size_t parse_system_table(char *text, struct mime_entry *out)
{
    size_t n = 0;
    char *lines;
    for (char *line = strtok_r(text, "\n", &lines); line != NULL;
         line = strtok_r(NULL, "\n", &lines)) {
        char *save, *type = strtok_r(line, " \t\r", &save);
        if (type == NULL || type[0] == '#' || strchr(type, '/') == NULL)
            continue;
        for (char *ext = strtok_r(NULL, " \t\r", &save); ext != NULL;
             ext = strtok_r(NULL, " \t\r", &save)) {
            bool ok = strlen(ext) <= EXT_MAX;
            for (char *p = ext; *p && ok; p++)
                ok = !(*p >= 'A' && *p <= 'Z');
            if (ok && out != NULL)
                out[n] = (struct mime_entry){ext, type};
            n += ok;
        }
    }
    return n;
}

int mime_load_system(const char *path)
{
    if (system_table != NULL)
        return 0;
    FILE *f = fopen(path, "re");
    if (f == NULL)
        return -1;
    char *text = NULL;
    size_t size = 0;
    ssize_t len = getdelim(&text, &size, '\0', f); /* the whole file */
    fclose(f);
    if (len <= 0) {
        free(text);
        return -1;
    }
    char *copy = strdup(text);
    size_t count = copy != NULL ? parse_system_table(copy, NULL) : 0;
    free(copy);
    struct mime_entry *table = calloc(count ? count : 1, sizeof *table);
    if (table == NULL) {
        free(text);
        return -1;
    }
    count = parse_system_table(text, table);
    qsort(table, count, sizeof *table, compare_entries); /* not stable: first wins below */
    system_table = table, system_count = count, system_text = text;
    return 0;
}

/* The first line that named ext wins; qsort kept no order among equals,
 * and /etc/mime.types rarely repeats one, so any of them will do. */
static const char *system_type(const char *ext)
{
    if (system_table == NULL)
        return NULL;
    const struct mime_entry *e =
        bsearch(ext, system_table, system_count, sizeof *system_table, compare_entry);
    return e != NULL ? e->type : NULL;
}

const char *mime_type_lookup(const char *file_name, const struct route_static_type *overrides,
                             size_t count, const char *fallback)
{
    char ext[EXT_MAX + 1];
    if (!extension_of(file_name, ext))
        return fallback;
    for (size_t i = 0; i < count; i++)
        if (strcmp(overrides[i].ext, ext) == 0)
            return overrides[i].type;
    const struct mime_entry *e =
        bsearch(ext, mime_table, sizeof mime_table / sizeof mime_table[0],
                sizeof mime_table[0], compare_entry);
    if (e != NULL)
        return e->type;
    const char *type = system_type(ext);
    return type != NULL ? type : fallback;
}

const char *mime_type_for(const char *file_name)
{
    return mime_type_lookup(file_name, NULL, 0, MIME_DEFAULT);
}
