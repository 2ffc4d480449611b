/*
 * mime.c - Content-Type by file extension; see mime.h.
 *
 * The extension is what follows the last '.' of the last path component,
 * so "archive.tar.gz" is gzip and "a.d/readme" has none. A leading dot marks
 * a hidden file, not an extension: ".htaccess" is octet-stream. Lookups go
 * through one hash index of both tables (see "the index" below).
 */
#include "worker/mime.h"

#include "conf/route_static.h"

#include <stdbool.h>
#include <stdint.h>
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

/* ---- the index -------------------------------------------------------- */

/* Both tables behind one open-addressing hash of the extension: a lookup
 * is one hash and, nearly always, one strcmp, where bsearch over a
 * thousand system entries took ten (it showed as +5% of a static file's
 * instructions per request). Built-in entries go in first and the system's
 * in file order, and an extension keeps the first type inserted, so the
 * built-in table wins and then the first line of /etc/mime.types. */
struct mime_slot {
    const char *ext; /* NULL: empty */
    const char *type;
};

static struct mime_slot *mime_index;
static size_t mime_index_mask;
static struct mime_slot builtin_index[128]; /* a power of two over twice mime_table */

static uint32_t hash_extension(const char *ext)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (; *ext != '\0'; ext++)
        h = (h ^ (unsigned char)*ext) * 16777619u;
    return h;
}

static void index_insert(struct mime_slot *index, size_t mask, const char *ext, const char *type)
{
    for (size_t i = hash_extension(ext) & mask;; i = (i + 1) & mask) {
        if (index[i].ext == NULL) {
            index[i] = (struct mime_slot){ext, type};
            return;
        }
        if (strcmp(index[i].ext, ext) == 0)
            return; /* the first type for an extension wins */
    }
}

static void index_builtin(struct mime_slot *index, size_t mask)
{
    for (size_t i = 0; i < sizeof mime_table / sizeof mime_table[0]; i++)
        index_insert(index, mask, mime_table[i].ext, mime_table[i].type);
}

static const char *index_find(const char *ext)
{
    if (mime_index == NULL) {
        index_builtin(builtin_index, sizeof builtin_index / sizeof builtin_index[0] - 1);
        mime_index = builtin_index, mime_index_mask = sizeof builtin_index / sizeof builtin_index[0] - 1;
    }
    for (size_t i = hash_extension(ext) & mime_index_mask;; i = (i + 1) & mime_index_mask) {
        if (mime_index[i].ext == NULL)
            return NULL;
        if (strcmp(mime_index[i].ext, ext) == 0)
            return mime_index[i].type;
    }
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

static bool system_loaded;

/* Lines "type ext ext ...", '#' comments: lower-case extensions of at
 * most EXT_MAX bytes, inserted into index (only counted when it is NULL). */
static size_t parse_system_table(char *text, struct mime_slot *index, size_t mask)
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
            if (ok && index != NULL)
                index_insert(index, mask, ext, type);
            n += ok;
        }
    }
    return n;
}

/* The text stays allocated for the process: the index points into it. */
int mime_load_system(const char *path)
{
    if (system_loaded)
        return 0;
    FILE *f = fopen(path, "re");
    if (f == NULL)
        return -1;
    char *text = NULL;
    size_t size = 0;
    ssize_t len = getdelim(&text, &size, '\0', f); /* the whole file */
    fclose(f);
    char *copy = len > 0 ? strdup(text) : NULL;
    size_t count = copy != NULL ? parse_system_table(copy, NULL, 0) : 0;
    free(copy);
    size_t slots = 64;
    while (slots < 2 * (count + sizeof mime_table / sizeof mime_table[0]))
        slots *= 2; /* at most half full: probes stay short */
    struct mime_slot *index = count > 0 ? calloc(slots, sizeof *index) : NULL;
    if (index == NULL) {
        free(text);
        return -1;
    }
    index_builtin(index, slots - 1);
    parse_system_table(text, index, slots - 1);
    mime_index = index, mime_index_mask = slots - 1, system_loaded = true;
    return 0;
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
    const char *type = index_find(ext);
    return type != NULL ? type : fallback;
}

const char *mime_type_for(const char *file_name)
{
    return mime_type_lookup(file_name, NULL, 0, MIME_DEFAULT);
}
