/*
 * check_path.c - path_normalize() on a table of good and hostile paths, and
 * path_open_beneath() / path_open_walk() on a scratch tree with symlinks
 * that stay inside the root and ones that leave it.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "worker/path.h"
#include "tests/unit/unit.h"

struct normalize_case {
    const char *in;
    int status;      /* 0: ok, else the expected refusal */
    const char *out; /* when ok */
    bool trailing;
};

static const struct normalize_case cases[] = {
    {"/", 0, "", true},
    {"/a/b", 0, "a/b", false},
    {"/a/./b", 0, "a/b", false},
    {"/a/../b", 0, "b", false},
    {"//a//b/", 0, "a/b", true},
    {"/a/b/..", 0, "a", false},
    {"/a/b/../", 0, "a", true},
    {"/a/.", 0, "a", false},
    {"/%41", 0, "A", false},
    {"/a%20b/%7e", 0, "a b/~", false},
    {"/a/%2e%2e/x", 0, "x", false},  /* encoded dots are dots, still inside */
    {"/%2e/a", 0, "a", false},
    {"/...", 0, "...", false},         /* not a dot segment, a name */
    {"/a..b/.x", 0, "a..b/.x", false},
    {"/%C3%A9", 0, "\xc3\xa9", false},
    {"/..", 403, NULL, false},
    {"/../etc/passwd", 403, NULL, false},
    {"/%2e%2e/etc/passwd", 403, NULL, false},
    {"/%2E%2e/x", 403, NULL, false},
    {"/.%2e/x", 403, NULL, false},
    {"/a/%2e%2e/%2e%2e/x", 403, NULL, false},
    {"/a/../../x", 403, NULL, false},
    {"/a/b/../../../", 403, NULL, false},
    {"/a%2fb", 403, NULL, false},
    {"/a%2Fb", 403, NULL, false},
    {"/a%5cb", 403, NULL, false},
    {"/a%5Cb", 403, NULL, false},
    {"/a\\b", 403, NULL, false},
    {"/..\\..\\x", 403, NULL, false},
    {"/a/..%2f..%2fetc", 403, NULL, false},
    {"/a%00b", 400, NULL, false},
    {"/a%zz", 400, NULL, false},
    {"/a%", 400, NULL, false},
    {"/a%2", 400, NULL, false},
    {"/a%g1", 400, NULL, false},
    {"a", 400, NULL, false},
    {"", 400, NULL, false},
    {"*", 400, NULL, false},
    {"http://x/", 400, NULL, false},
};

START_TEST(test_normalize_table)
{
    const struct normalize_case *c = &cases[_i];
    char out[256];
    bool trailing = !c->trailing;
    int status = path_normalize(c->in, strlen(c->in), out, sizeof out, &trailing);
    ck_assert_msg(status == c->status, "%s: status %d, want %d", c->in, status, c->status);
    if (c->status == 0) {
        ck_assert_str_eq(out, c->out);
        ck_assert_msg(trailing == c->trailing, "%s: trailing %d", c->in, trailing);
    }
}
END_TEST

START_TEST(test_normalize_raw_nul)
{
    char out[64];
    bool trailing;
    ck_assert_int_eq(path_normalize("/a\0b", 4, out, sizeof out, &trailing), 400);
    /* len is the authority, not the NUL: "/ab" cut to "/a" */
    ck_assert_int_eq(path_normalize("/ab", 2, out, sizeof out, &trailing), 0);
    ck_assert_str_eq(out, "a");
}
END_TEST

START_TEST(test_normalize_fits_exactly)
{
    char out[4];
    bool trailing;
    ck_assert_int_eq(path_normalize("/abc", 4, out, sizeof out, &trailing), 0);
    ck_assert_str_eq(out, "abc");
    ck_assert_int_eq(path_normalize("/ab/", 4, out, sizeof out, &trailing), 0);
    ck_assert_str_eq(out, "ab");
    ck_assert_int_eq(path_normalize("/a/b", 4, out, sizeof out, &trailing), 0);
    ck_assert_str_eq(out, "a/b");
    ck_assert_int_eq(path_normalize("/", 1, out, 1, &trailing), 0);
    ck_assert_str_eq(out, "");
}
END_TEST

START_TEST(test_normalize_overflow)
{
    char out[4];
    bool trailing;
    ck_assert_int_eq(path_normalize("/abcd", 5, out, sizeof out, &trailing), 414);
    ck_assert_int_eq(path_normalize("/ab/cd", 6, out, sizeof out, &trailing), 414);
    ck_assert_int_eq(path_normalize("/a", 2, out, 0, &trailing), 414);
    ck_assert_int_eq(path_normalize("/a", 2, out, 1, &trailing), 414);

    static char big[8192];
    big[0] = '/';
    memset(big + 1, 'x', sizeof big - 1);
    char out2[4096];
    ck_assert_int_eq(path_normalize(big, sizeof big, out2, sizeof out2, &trailing), 414);
}
END_TEST

START_TEST(test_hidden_segments)
{
    static const char *const hidden[] = {".env", ".git/config", "a/.htpasswd", "a/b/.x",
                                         ".well-known/.git", "..x", ".well-knownx/a"};
    static const char *const shown[] = {"", "index.html", "a/b.c", "a./b", "x.well-known",
                                        ".well-known", ".well-known/acme-challenge/t0k",
                                        "a/.well-known/security.txt"};
    for (size_t i = 0; i < sizeof hidden / sizeof *hidden; i++)
        ck_assert_msg(path_is_hidden(hidden[i]), "%s should be hidden", hidden[i]);
    for (size_t i = 0; i < sizeof shown / sizeof *shown; i++)
        ck_assert_msg(!path_is_hidden(shown[i]), "%s should be shown", shown[i]);
}
END_TEST

/* ---- opening beneath a root ---- */

static char scratch[] = "/tmp/check_path.XXXXXX";
static int root_fd = -1;

static void put_file(const char *rel, const char *text)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s", scratch, rel);
    FILE *f = fopen(p, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

static void put_link(const char *target, const char *rel)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s", scratch, rel);
    ck_assert_int_eq(symlink(target, p), 0);
}

static void put_dir(const char *rel)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s", scratch, rel);
    ck_assert_int_eq(mkdir(p, 0755), 0);
}

/* scratch/outside.txt, scratch/root/{a.txt, d/b.txt, links...} */
static void tree_setup(void)
{
    ck_assert_ptr_nonnull(mkdtemp(scratch));
    put_file("outside.txt", "secret");
    put_dir("root");
    put_dir("root/d");
    put_file("root/a.txt", "a");
    put_file("root/d/b.txt", "b");
    put_link("a.txt", "root/in_link");
    put_link("d", "root/dir_link");
    put_link("../outside.txt", "root/up_link");
    put_link("/etc/passwd", "root/abs_link");
    put_link("/proc/self/root/etc/passwd", "root/magic_link");
    char p[512];
    snprintf(p, sizeof p, "%s/root", scratch);
    root_fd = open(p, O_PATH | O_DIRECTORY | O_CLOEXEC);
    ck_assert_int_ge(root_fd, 0);
}

static int remove_entry(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(p);
}

static void tree_teardown(void)
{
    close(root_fd);
    nftw(scratch, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void assert_reads(int fd, const char *want)
{
    char buf[64] = {0};
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(read(fd, buf, sizeof buf - 1), (ssize_t)strlen(want));
    ck_assert_str_eq(buf, want);
    close(fd);
}

START_TEST(test_beneath_follows_inside)
{
    assert_reads(path_open_beneath(root_fd, "a.txt", O_RDONLY), "a");
    assert_reads(path_open_beneath(root_fd, "d/b.txt", O_RDONLY), "b");
    assert_reads(path_open_beneath(root_fd, "in_link", O_RDONLY), "a");
    assert_reads(path_open_beneath(root_fd, "dir_link/b.txt", O_RDONLY), "b");
    int fd = path_open_beneath(root_fd, "", O_RDONLY);
    ck_assert_int_ge(fd, 0);
    struct stat st;
    ck_assert_int_eq(fstat(fd, &st), 0);
    ck_assert(S_ISDIR(st.st_mode));
    close(fd);
}
END_TEST

START_TEST(test_beneath_refuses_escapes)
{
    int fd = path_open_beneath(root_fd, "up_link", O_RDONLY);
    ck_assert_msg(fd == -EXDEV || fd == -ELOOP, "up_link: %d", fd);
    fd = path_open_beneath(root_fd, "abs_link", O_RDONLY);
    ck_assert_msg(fd == -EXDEV || fd == -ELOOP, "abs_link: %d", fd);
    fd = path_open_beneath(root_fd, "magic_link", O_RDONLY);
    ck_assert_msg(fd == -EXDEV || fd == -ELOOP, "magic_link: %d", fd);
    fd = path_open_beneath(root_fd, "../outside.txt", O_RDONLY);
    ck_assert_msg(fd == -EXDEV || fd == -ELOOP, "..: %d", fd);
    fd = path_open_beneath(root_fd, "/etc/passwd", O_RDONLY);
    ck_assert_msg(fd == -EXDEV || fd == -ENOENT, "absolute: %d", fd);
    ck_assert_int_eq(path_open_beneath(root_fd, "missing", O_RDONLY), -ENOENT);
    ck_assert_int_eq(path_open_beneath(root_fd, "a.txt/x", O_RDONLY), -ENOTDIR);
}
END_TEST

START_TEST(test_walk_refuses_every_symlink)
{
    assert_reads(path_open_walk(root_fd, "a.txt", O_RDONLY), "a");
    assert_reads(path_open_walk(root_fd, "d/b.txt", O_RDONLY), "b");
    ck_assert_int_eq(path_open_walk(root_fd, "in_link", O_RDONLY), -ELOOP);
    ck_assert_int_eq(path_open_walk(root_fd, "dir_link/b.txt", O_RDONLY), -ENOTDIR);
    ck_assert_int_eq(path_open_walk(root_fd, "up_link", O_RDONLY), -ELOOP);
    ck_assert_int_eq(path_open_walk(root_fd, "abs_link", O_RDONLY), -ELOOP);
    ck_assert_int_eq(path_open_walk(root_fd, "../outside.txt", O_RDONLY), -EXDEV);
    ck_assert_int_eq(path_open_walk(root_fd, "d/../../outside.txt", O_RDONLY), -EXDEV);
    ck_assert_int_eq(path_open_walk(root_fd, "missing/x", O_RDONLY), -ENOENT);
    ck_assert_int_eq(path_open_walk(root_fd, "a.txt/x", O_RDONLY), -ENOTDIR);
    int fd = path_open_walk(root_fd, "", O_RDONLY);
    ck_assert_int_ge(fd, 0);
    close(fd);
}
END_TEST

static Suite *path_suite(void)
{
    Suite *s = suite_create("path");
    TCase *tc = tcase_create("normalize");
    tcase_add_loop_test(tc, test_normalize_table, 0, (int)(sizeof cases / sizeof cases[0]));
    tcase_add_test(tc, test_normalize_raw_nul);
    tcase_add_test(tc, test_normalize_fits_exactly);
    tcase_add_test(tc, test_normalize_overflow);
    tcase_add_test(tc, test_hidden_segments);
    suite_add_tcase(s, tc);
    tc = tcase_create("open");
    tcase_add_checked_fixture(tc, tree_setup, tree_teardown);
    tcase_add_test(tc, test_beneath_follows_inside);
    tcase_add_test(tc, test_beneath_refuses_escapes);
    tcase_add_test(tc, test_walk_refuses_every_symlink);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return unit_run(path_suite());
}
