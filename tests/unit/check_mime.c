/*
 * check_mime.c - mime_type_for(): the common types, case, the last
 * extension only, hidden files, every built-in entry reachable through the
 * hash index, and a system table behind the built-in one (the built-in
 * type wins, then the first line naming an extension).
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "worker/mime.h"
#include "tests/unit/unit.h"

#define OCTET "application/octet-stream"
#define HTML "text/html; charset=utf-8"

struct mime_case {
    const char *name;
    const char *type;
};

static const struct mime_case cases[] = {
    {"index.html", HTML},
    {"INDEX.HTML", HTML},
    {"page.HtM", HTML},
    {"a.css", "text/css; charset=utf-8"},
    {".css", OCTET}, /* a hidden file named ".css", not a css file */
    {"app.js", "text/javascript; charset=utf-8"},
    {"app.mjs", "text/javascript; charset=utf-8"},
    {"data.json", "application/json"},
    {"logo.svg", "image/svg+xml"},
    {"logo.png", "image/png"},
    {"photo.JPG", "image/jpeg"},
    {"photo.jpeg", "image/jpeg"},
    {"anim.gif", "image/gif"},
    {"img.webp", "image/webp"},
    {"favicon.ico", "image/x-icon"},
    {"readme.txt", "text/plain; charset=utf-8"},
    {"feed.xml", "text/xml; charset=utf-8"},
    {"doc.pdf", "application/pdf"},
    {"mod.wasm", "application/wasm"},
    {"f.woff", "font/woff"},
    {"f.woff2", "font/woff2"},
    {"clip.mp4", "video/mp4"},
    {"archive.tar.gz", "application/gzip"},
    {"archive.tar", "application/x-tar"},
    {"x.7z", "application/x-7z-compressed"},
    {"x.zip", "application/zip"},
    {"site.webmanifest", "application/manifest+json"},
    {"Makefile", OCTET},
    {"", OCTET},
    {"trailing.", OCTET},
    {".hidden", OCTET},
    {".hidden.html", HTML},
    {"file.unknownext", OCTET},
    {"file.waytoolongextensionname", OCTET},
    {"dir.html/readme", OCTET}, /* the dot is in a directory */
    {"css/site.css", "text/css; charset=utf-8"},
    {"css/.css", OCTET},
    {"a.h\xc3\xa9ml", OCTET},
};

START_TEST(test_mime_table)
{
    const struct mime_case *c = &cases[_i];
    ck_assert_msg(strcmp(mime_type_for(c->name), c->type) == 0, "%s: %s, want %s", c->name,
                  mime_type_for(c->name), c->type);
}
END_TEST

/* Every extension the built-in table holds, first to last. */
static const char *const all_extensions[] = {
    "7z", "avif", "bmp", "css", "csv", "gif", "gz", "htm", "html", "ico",
    "jpeg", "jpg", "js", "json", "map", "md", "mjs", "mp3", "mp4", "oga",
    "ogg", "ogv", "otf", "pdf", "png", "svg", "tar", "ttf", "txt", "wasm",
    "wav", "webm", "webmanifest", "webp", "woff", "woff2", "xml", "zip",
};

START_TEST(test_mime_every_entry_found)
{
    char name[32];
    snprintf(name, sizeof name, "f.%s", all_extensions[_i]);
    ck_assert_msg(strcmp(mime_type_for(name), OCTET) != 0, "%s not found", name);
}
END_TEST

/* A system table of many entries (the index grows past the built-in
 * one's size): built-in types win, then the first line naming an
 * extension; upper-case and overlong extensions are skipped. Forked per
 * test, so the other cases still see the built-in table alone. */
START_TEST(test_mime_system_table)
{
    char path[] = "/tmp/check_mime.XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    FILE *f = fdopen(fd, "w");
    ck_assert_ptr_nonnull(f);
    fputs("# comment line\ntext/html htm html\napplication/x-first dup\n"
          "application/x-second dup other\nbad-type-line ext1\n"
          "application/x-upper UPPER\napplication/x-long waytoolongextensionname\n", f);
    for (int i = 0; i < 500; i++)
        fprintf(f, "application/x-gen%d gen%d\n", i, i);
    fclose(f);
    ck_assert_int_eq(mime_load_system(path), 0);
    unlink(path);
    ck_assert_str_eq(mime_type_for("a.html"), HTML);
    ck_assert_str_eq(mime_type_for("a.dup"), "application/x-first");
    ck_assert_str_eq(mime_type_for("a.other"), "application/x-second");
    ck_assert_str_eq(mime_type_for("a.ext1"), OCTET);
    ck_assert_str_eq(mime_type_for("a.upper"), OCTET);
    ck_assert_str_eq(mime_type_for("a.GEN499"), "application/x-gen499");
    for (size_t i = 0; i < sizeof all_extensions / sizeof all_extensions[0]; i++) {
        char name[32];
        snprintf(name, sizeof name, "f.%s", all_extensions[i]);
        ck_assert_msg(strcmp(mime_type_for(name), OCTET) != 0, "%s not found", name);
    }
    ck_assert_int_eq(mime_load_system("/nonexistent/mime.types"), 0); /* once per process */
}
END_TEST

static Suite *mime_suite(void)
{
    Suite *s = suite_create("mime");
    TCase *tc = tcase_create("lookup");
    tcase_add_loop_test(tc, test_mime_table, 0, (int)(sizeof cases / sizeof cases[0]));
    tcase_add_loop_test(tc, test_mime_every_entry_found, 0,
                        (int)(sizeof all_extensions / sizeof all_extensions[0]));
    tcase_add_test(tc, test_mime_system_table);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return unit_run(mime_suite());
}
