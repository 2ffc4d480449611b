/*
 * check_file_cache.c - worker/file_cache.c on a scratch directory and a real
 * libevent base: opens shared within one loop turn and not beyond it, holds
 * counted so the last holder closes, and nothing kept without a start.
 */
#include <check.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "worker/file_cache.h"
#include "tests/unit/unit.h"

#define FLAGS (O_RDONLY | O_NONBLOCK | O_NOCTTY)

static char dir[64];
static int root_fd = -1;

static void write_file(const char *name, const char *text)
{
    char path[128];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

static bool is_open(int fd)
{
    return fcntl(fd, F_GETFD) != -1;
}

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/check_file_cache_XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    write_file("a.txt", "alpha");
    write_file("b.txt", "bravo!");
    root_fd = open(dir, O_RDONLY | O_DIRECTORY);
    ck_assert_int_ge(root_fd, 0);
}

static void teardown(void)
{
    const char *names[] = {"a.txt", "b.txt", "c.txt"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char path[128];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        unlink(path);
    }
    close(root_fd);
    rmdir(dir);
}

/* One turn of base: runs the end-of-turn flush that a keep scheduled. */
static void run_one_turn(struct event_base *base)
{
    ck_assert_int_ge(event_base_loop(base, EVLOOP_NONBLOCK), 0);
}

START_TEST(without_start_every_open_is_its_own)
{
    struct stat st1, st2;
    int fd1 = file_cache_open(root_fd, "a.txt", FLAGS, &st1);
    int fd2 = file_cache_open(root_fd, "a.txt", FLAGS, &st2);
    ck_assert_int_ge(fd1, 0);
    ck_assert_int_ge(fd2, 0);
    ck_assert_int_ne(fd1, fd2);
    ck_assert_int_eq(st1.st_size, 5);
    file_cache_close(fd1);
    ck_assert(!is_open(fd1)); /* never shared: closed at once */
    ck_assert(is_open(fd2));
    file_cache_close(fd2);
    ck_assert(!is_open(fd2));
}
END_TEST

START_TEST(opens_in_one_turn_share_a_descriptor_and_its_stat)
{
    struct event_base *base = event_base_new();
    ck_assert_int_eq(file_cache_start(base), 0);
    struct stat st1, st2;
    int fd1 = file_cache_open(root_fd, "a.txt", FLAGS, &st1);
    ck_assert_int_ge(fd1, 0);
    /* Renamed away: the same turn still sees what it opened first. */
    char from[128], to[128];
    snprintf(from, sizeof from, "%s/a.txt", dir);
    snprintf(to, sizeof to, "%s/c.txt", dir);
    ck_assert_int_eq(rename(from, to), 0);
    int fd2 = file_cache_open(root_fd, "a.txt", FLAGS, &st2);
    ck_assert_int_eq(fd2, fd1);
    ck_assert_int_eq(st2.st_ino, st1.st_ino);
    ck_assert_int_eq(st2.st_size, 5);
    run_one_turn(base);
    /* The next turn looks again, and the file is gone. */
    struct stat st3;
    ck_assert_int_eq(file_cache_open(root_fd, "a.txt", FLAGS, &st3), -ENOENT);
    ck_assert(is_open(fd1)); /* two holders remain */
    file_cache_close(fd1);
    ck_assert(is_open(fd1));
    file_cache_close(fd2);
    ck_assert(!is_open(fd1));
    file_cache_stop();
    event_base_free(base);
}
END_TEST

START_TEST(the_last_holder_closes_whatever_the_order)
{
    struct event_base *base = event_base_new();
    ck_assert_int_eq(file_cache_start(base), 0);
    struct stat st;
    int fds[3];
    for (int i = 0; i < 3; i++)
        fds[i] = file_cache_open(root_fd, "b.txt", FLAGS, &st);
    ck_assert_int_eq(fds[0], fds[1]);
    ck_assert_int_eq(fds[1], fds[2]);
    file_cache_close(fds[1]);
    run_one_turn(base); /* the cache's own hold goes */
    ck_assert(is_open(fds[0]));
    file_cache_close(fds[0]);
    ck_assert(is_open(fds[0]));
    file_cache_close(fds[2]);
    ck_assert(!is_open(fds[2]));
    file_cache_stop();
    event_base_free(base);
}
END_TEST

START_TEST(root_and_flags_are_part_of_what_is_shared)
{
    struct event_base *base = event_base_new();
    ck_assert_int_eq(file_cache_start(base), 0);
    int other_root = open(dir, O_RDONLY | O_DIRECTORY);
    ck_assert_int_ge(other_root, 0);
    struct stat st;
    int a = file_cache_open(root_fd, "a.txt", FLAGS, &st);
    int b = file_cache_open(root_fd, "b.txt", FLAGS, &st);
    int other = file_cache_open(other_root, "a.txt", FLAGS, &st);
    int plain = file_cache_open(root_fd, "a.txt", O_RDONLY, &st);
    ck_assert_int_ge(a, 0);
    ck_assert_int_ne(a, b);
    ck_assert_int_ne(a, other);
    ck_assert_int_ne(a, plain);
    ck_assert_int_eq(st.st_size, 5);
    file_cache_close(a);
    file_cache_close(b);
    file_cache_close(other);
    file_cache_close(plain);
    file_cache_flush(); /* a root is about to go: nothing kept survives it */
    ck_assert(!is_open(a));
    ck_assert(!is_open(b));
    ck_assert(!is_open(other));
    ck_assert(!is_open(plain));
    close(other_root);
    file_cache_stop();
    event_base_free(base);
}
END_TEST

START_TEST(failed_opens_are_not_kept)
{
    struct event_base *base = event_base_new();
    ck_assert_int_eq(file_cache_start(base), 0);
    struct stat st;
    ck_assert_int_eq(file_cache_open(root_fd, "c.txt", FLAGS, &st), -ENOENT);
    write_file("c.txt", "charlie");
    int fd = file_cache_open(root_fd, "c.txt", FLAGS, &st); /* same turn */
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(st.st_size, 7);
    int escape = file_cache_open(root_fd, "../etc/passwd", FLAGS, &st);
    ck_assert(escape == -EXDEV || escape == -ELOOP);
    file_cache_close(fd);
    file_cache_stop(); /* lets go of what it kept */
    ck_assert(!is_open(fd));
    event_base_free(base);
}
END_TEST

START_TEST(many_distinct_files_in_one_turn_all_open)
{
    struct event_base *base = event_base_new();
    ck_assert_int_eq(file_cache_start(base), 0);
    /* More than the cache keeps: the rest are plain opens, still correct. */
    enum { FILES = 40 };
    int fds[FILES];
    for (int i = 0; i < FILES; i++) {
        char name[16];
        snprintf(name, sizeof name, "f%02d", i);
        write_file(name, name);
        struct stat st;
        fds[i] = file_cache_open(root_fd, name, FLAGS, &st);
        ck_assert_int_ge(fds[i], 0);
        ck_assert_int_eq(st.st_size, 3);
    }
    for (int i = 0; i < FILES; i++) {
        file_cache_close(fds[i]);
        char path[128];
        snprintf(path, sizeof path, "%s/f%02d", dir, i);
        unlink(path);
    }
    run_one_turn(base);
    for (int i = 0; i < FILES; i++)
        ck_assert(!is_open(fds[i]));
    file_cache_stop();
    event_base_free(base);
}
END_TEST

START_TEST(small_files_are_read_once_a_turn)
{
    struct event_base *base = event_base_new();
    struct stat st;
    size_t size = 0;
    int plain = file_cache_open(root_fd, "a.txt", FLAGS, &st);
    ck_assert_ptr_null(file_cache_contents(plain, &size)); /* not started: nothing kept */
    file_cache_close(plain);

    ck_assert_int_eq(file_cache_start(base), 0);
    int fd = file_cache_open(root_fd, "a.txt", FLAGS, &st);
    const char *contents = file_cache_contents(fd, &size);
    ck_assert_ptr_nonnull(contents);
    ck_assert_uint_eq(size, 5);
    ck_assert_int_eq(memcmp(contents, "alpha", 5), 0);
    write_file("a.txt", "ALPHA"); /* same size, new bytes: this turn keeps its read */
    ck_assert_ptr_eq(file_cache_contents(fd, &size), contents);
    ck_assert_int_eq(memcmp(file_cache_contents(fd, &size), "alpha", 5), 0);
    file_cache_close(fd);
    run_one_turn(base);
    fd = file_cache_open(root_fd, "a.txt", FLAGS, &st);
    ck_assert_int_eq(memcmp(file_cache_contents(fd, &size), "ALPHA", 5), 0); /* the next turn reads again */
    file_cache_close(fd);

    /* Larger than FILE_CACHE_SMALL_FILE: read from the descriptor. */
    char *big = malloc(FILE_CACHE_SMALL_FILE + 2);
    memset(big, 'x', FILE_CACHE_SMALL_FILE + 1);
    big[FILE_CACHE_SMALL_FILE + 1] = '\0';
    write_file("c.txt", big);
    free(big);
    fd = file_cache_open(root_fd, "c.txt", FLAGS, &st);
    ck_assert_int_eq(st.st_size, FILE_CACHE_SMALL_FILE + 1);
    ck_assert_ptr_null(file_cache_contents(fd, &size));
    file_cache_close(fd);
    ck_assert_ptr_null(file_cache_contents(-1, &size));
    file_cache_stop();
    event_base_free(base);
}
END_TEST

START_TEST(a_file_that_changed_size_is_read_from_the_descriptor)
{
    struct event_base *base = event_base_new();
    ck_assert_int_eq(file_cache_start(base), 0);
    struct stat st;
    size_t size;
    int fd = file_cache_open(root_fd, "b.txt", FLAGS, &st);
    ck_assert_int_eq(st.st_size, 6);
    write_file("b.txt", "bravo, longer now"); /* grew after the stat */
    ck_assert_ptr_null(file_cache_contents(fd, &size));
    file_cache_close(fd);
    file_cache_stop();
    event_base_free(base);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("file_cache");
    TCase *t = tcase_create("file_cache");
    tcase_add_checked_fixture(t, setup, teardown);
    tcase_add_test(t, without_start_every_open_is_its_own);
    tcase_add_test(t, opens_in_one_turn_share_a_descriptor_and_its_stat);
    tcase_add_test(t, the_last_holder_closes_whatever_the_order);
    tcase_add_test(t, root_and_flags_are_part_of_what_is_shared);
    tcase_add_test(t, failed_opens_are_not_kept);
    tcase_add_test(t, many_distinct_files_in_one_turn_all_open);
    tcase_add_test(t, small_files_are_read_once_a_turn);
    tcase_add_test(t, a_file_that_changed_size_is_read_from_the_descriptor);
    suite_add_tcase(s, t);
    return unit_run(s);
}
