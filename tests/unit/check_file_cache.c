/*
 * check_file_cache.c - worker/file_cache.c on a scratch directory and a real
 * libevent base: opens shared within one loop turn and not beyond it, refs
 * held so the last holder closes, and nothing kept without a start; kept
 * across turns with open_file_cache: LRU eviction, revalidation after
 * valid, the sweep of unused entries, the bytes budget, the descriptor
 * clamp.
 */
#include <check.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
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

/* An open that must succeed: its ref. */
static struct file_ref *open_ok(int root, const char *rel, int flags)
{
    struct file_ref *f = NULL;
    ck_assert_int_eq(file_cache_open(root, rel, flags, &f), 0);
    ck_assert_ptr_nonnull(f);
    return f;
}

START_TEST(without_start_every_open_is_its_own)
{
    struct file_ref *f1 = open_ok(root_fd, "a.txt", FLAGS);
    struct file_ref *f2 = open_ok(root_fd, "a.txt", FLAGS);
    ck_assert_ptr_ne(f1, f2);
    ck_assert_int_ne(f1->fd, f2->fd);
    ck_assert_int_eq(f1->st.st_size, 5);
    int fd1 = f1->fd, fd2 = f2->fd;
    file_ref_release(f1);
    ck_assert(!is_open(fd1)); /* never shared: closed at once */
    ck_assert(is_open(fd2));
    file_ref_release(f2);
    ck_assert(!is_open(fd2));
}
END_TEST

START_TEST(opens_in_one_turn_share_a_descriptor_and_its_stat)
{
    struct event_base *base = event_base_new();
    ck_assert_int_eq(file_cache_start(base), 0);
    struct file_ref *f1 = open_ok(root_fd, "a.txt", FLAGS);
    int fd = f1->fd;
    /* Renamed away: the same turn still sees what it opened first. */
    char from[128], to[128];
    snprintf(from, sizeof from, "%s/a.txt", dir);
    snprintf(to, sizeof to, "%s/c.txt", dir);
    ck_assert_int_eq(rename(from, to), 0);
    struct file_ref *f2 = open_ok(root_fd, "a.txt", FLAGS);
    ck_assert_ptr_eq(f2, f1);
    ck_assert_int_eq(f2->st.st_size, 5);
    run_one_turn(base);
    /* The next turn looks again, and the file is gone. */
    struct file_ref *f3 = NULL;
    ck_assert_int_eq(file_cache_open(root_fd, "a.txt", FLAGS, &f3), -ENOENT);
    ck_assert(is_open(fd)); /* two holders remain */
    file_ref_release(f1);
    ck_assert(is_open(fd));
    file_ref_release(f2);
    ck_assert(!is_open(fd));
    file_cache_stop();
    event_base_free(base);
}
END_TEST

START_TEST(the_last_holder_closes_whatever_the_order)
{
    struct event_base *base = event_base_new();
    ck_assert_int_eq(file_cache_start(base), 0);
    struct file_ref *f[3];
    for (int i = 0; i < 3; i++)
        f[i] = open_ok(root_fd, "b.txt", FLAGS);
    ck_assert_ptr_eq(f[0], f[1]);
    ck_assert_ptr_eq(f[1], f[2]);
    int fd = f[0]->fd;
    file_ref_release(f[1]);
    run_one_turn(base); /* the cache's own hold goes */
    ck_assert(is_open(fd));
    file_ref_release(f[0]);
    ck_assert(is_open(fd));
    file_ref_release(f[2]);
    ck_assert(!is_open(fd));
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
    struct file_ref *a = open_ok(root_fd, "a.txt", FLAGS);
    struct file_ref *b = open_ok(root_fd, "b.txt", FLAGS);
    struct file_ref *other = open_ok(other_root, "a.txt", FLAGS);
    struct file_ref *plain = open_ok(root_fd, "a.txt", O_RDONLY);
    ck_assert_ptr_ne(a, b);
    ck_assert_ptr_ne(a, other);
    ck_assert_ptr_ne(a, plain);
    ck_assert_int_eq(plain->st.st_size, 5);
    int fds[] = {a->fd, b->fd, other->fd, plain->fd};
    file_ref_release(a);
    file_ref_release(b);
    file_ref_release(other);
    file_ref_release(plain);
    file_cache_flush(); /* a root is about to go: nothing kept survives it */
    for (int i = 0; i < 4; i++)
        ck_assert(!is_open(fds[i]));
    close(other_root);
    file_cache_stop();
    event_base_free(base);
}
END_TEST

START_TEST(failed_opens_are_not_kept)
{
    struct event_base *base = event_base_new();
    ck_assert_int_eq(file_cache_start(base), 0);
    struct file_ref *f = NULL;
    ck_assert_int_eq(file_cache_open(root_fd, "c.txt", FLAGS, &f), -ENOENT);
    write_file("c.txt", "charlie");
    f = open_ok(root_fd, "c.txt", FLAGS); /* same turn */
    ck_assert_int_eq(f->st.st_size, 7);
    struct file_ref *escape = NULL;
    int rc = file_cache_open(root_fd, "../etc/passwd", FLAGS, &escape);
    ck_assert(rc == -EXDEV || rc == -ELOOP);
    int fd = f->fd;
    file_ref_release(f);
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
        struct file_ref *f = open_ok(root_fd, name, FLAGS);
        ck_assert_int_eq(f->st.st_size, 3);
        fds[i] = f->fd;
        file_ref_release(f);
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
    ck_assert_int_eq(file_cache_start(base), 0);
    struct file_ref *f = open_ok(root_fd, "a.txt", FLAGS);
    const char *contents = file_ref_contents(f);
    ck_assert_ptr_nonnull(contents);
    ck_assert_int_eq(memcmp(contents, "alpha", 5), 0);
    write_file("a.txt", "ALPHA"); /* same size, new bytes: this turn keeps its read */
    struct file_ref *again = open_ok(root_fd, "a.txt", FLAGS);
    ck_assert_ptr_eq(file_ref_contents(again), contents);
    file_ref_release(again);
    run_one_turn(base);
    /* A holder keeps what it was given beyond the turn... */
    ck_assert_int_eq(memcmp(file_ref_contents(f), "alpha", 5), 0);
    /* ...and the next turn reads again. */
    struct file_ref *next = open_ok(root_fd, "a.txt", FLAGS);
    ck_assert_int_eq(memcmp(file_ref_contents(next), "ALPHA", 5), 0);
    file_ref_release(next);
    file_ref_release(f);

    /* Larger than FILE_CACHE_SMALL_FILE: read from the descriptor. */
    char *big = malloc(FILE_CACHE_SMALL_FILE + 2);
    memset(big, 'x', FILE_CACHE_SMALL_FILE + 1);
    big[FILE_CACHE_SMALL_FILE + 1] = '\0';
    write_file("c.txt", big);
    free(big);
    f = open_ok(root_fd, "c.txt", FLAGS);
    ck_assert_int_eq(f->st.st_size, FILE_CACHE_SMALL_FILE + 1);
    ck_assert_ptr_null(file_ref_contents(f));
    file_ref_release(f);
    file_cache_stop();
    event_base_free(base);
}
END_TEST

START_TEST(a_file_that_changed_size_is_read_from_the_descriptor)
{
    struct event_base *base = event_base_new();
    ck_assert_int_eq(file_cache_start(base), 0);
    struct file_ref *f = open_ok(root_fd, "b.txt", FLAGS);
    ck_assert_int_eq(f->st.st_size, 6);
    write_file("b.txt", "bravo, longer now"); /* grew after the stat */
    ck_assert_ptr_null(file_ref_contents(f));
    file_ref_release(f);
    file_cache_stop();
    event_base_free(base);
}
END_TEST

/* Lets the cached monotonic clock move ms past now (a condition on the
 * clock, bounded: a second at most). */
static void let_time_pass(uint64_t ms)
{
    clock_update();
    uint64_t until = clock_monotonic_ms() + ms;
    for (int i = 0; i < 1000 && clock_monotonic_ms() < until; i++) {
        nanosleep(&(struct timespec){0, 1000000}, NULL);
        clock_update();
    }
    ck_assert_uint_ge(clock_monotonic_ms(), until);
}

static void remove_file(const char *name)
{
    char path[128];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    unlink(path);
}

static struct file_cache_counts counts(void)
{
    struct file_cache_counts c;
    file_cache_counts(&c);
    return c;
}

static struct event_base *start_across_turns(size_t max, uint64_t valid_ms)
{
    struct event_base *base = event_base_new();
    ck_assert_int_eq(file_cache_start(base), 0);
    ck_assert_uint_eq(file_cache_configure(max, valid_ms), max);
    clock_update();
    return base;
}

static void stop(struct event_base *base)
{
    file_cache_stop();
    event_base_free(base);
}

START_TEST(kept_across_turns_until_evicted_least_recent_first)
{
    struct event_base *base = start_across_turns(2, 60000);
    struct file_cache_counts before = counts();
    struct file_ref *a = open_ok(root_fd, "a.txt", FLAGS);
    int a_fd = a->fd;
    file_ref_release(a);
    run_one_turn(base);
    a = open_ok(root_fd, "a.txt", FLAGS); /* another turn: the same descriptor */
    ck_assert_int_eq(a->fd, a_fd);
    ck_assert_uint_eq(counts().hits, before.hits + 1);
    struct file_ref *b = open_ok(root_fd, "b.txt", FLAGS);
    int b_fd = b->fd;
    file_ref_release(b);
    write_file("c.txt", "charlie");
    /* Full: a, the least recently opened, goes, though a response holds it. */
    struct file_ref *c = open_ok(root_fd, "c.txt", FLAGS);
    ck_assert_uint_eq(counts().evictions, before.evictions + 1);
    ck_assert(is_open(a_fd));
    ck_assert_int_eq(a->st.st_size, 5);
    file_ref_release(a); /* the last holder closes */
    ck_assert(!is_open(a_fd));
    file_ref_release(c);
    b = open_ok(root_fd, "b.txt", FLAGS); /* still kept */
    ck_assert_int_eq(b->fd, b_fd);
    file_ref_release(b);
    stop(base);
}
END_TEST

START_TEST(changed_files_are_seen_after_valid)
{
    struct event_base *base = start_across_turns(8, 20);
    struct file_ref *a = open_ok(root_fd, "a.txt", FLAGS);
    int a_fd = a->fd;
    ck_assert_int_eq(memcmp(file_ref_contents(a), "alpha", 5), 0);
    file_ref_release(a);
    write_file("a.txt", "alpha, longer"); /* changed in place: same inode */
    a = open_ok(root_fd, "a.txt", FLAGS); /* within valid: what was kept */
    ck_assert_int_eq(a->st.st_size, 5);
    file_ref_release(a);
    struct file_cache_counts before = counts();
    let_time_pass(20);
    a = open_ok(root_fd, "a.txt", FLAGS);
    ck_assert_int_eq(a->st.st_size, 13);
    ck_assert_int_eq(memcmp(file_ref_contents(a), "alpha, longer", 13), 0);
    ck_assert(!is_open(a_fd));
    ck_assert_uint_eq(counts().revalidations, before.revalidations + 1);
    a_fd = a->fd;
    file_ref_release(a);
    let_time_pass(20); /* unchanged: checked, kept */
    a = open_ok(root_fd, "a.txt", FLAGS);
    ck_assert_int_eq(a->fd, a_fd);
    file_ref_release(a);
    remove_file("a.txt"); /* gone: refused after valid, and closed */
    let_time_pass(20);
    struct file_ref *gone = NULL;
    ck_assert_int_eq(file_cache_open(root_fd, "a.txt", FLAGS, &gone), -ENOENT);
    ck_assert(!is_open(a_fd));
    stop(base);
}
END_TEST

START_TEST(a_symlink_turned_outside_the_root_is_refused_after_valid)
{
    struct event_base *base = start_across_turns(8, 20);
    char link_path[128];
    snprintf(link_path, sizeof link_path, "%s/l.txt", dir);
    ck_assert_int_eq(symlink("b.txt", link_path), 0);
    struct file_ref *l = open_ok(root_fd, "l.txt", FLAGS);
    ck_assert_int_eq(l->st.st_size, 6);
    file_ref_release(l);
    ck_assert_int_eq(unlink(link_path), 0);
    ck_assert_int_eq(symlink("/etc/passwd", link_path), 0);
    let_time_pass(20);
    struct file_ref *out = NULL;
    int rc = file_cache_open(root_fd, "l.txt", FLAGS, &out);
    ck_assert(rc == -EXDEV || rc == -ELOOP);
    unlink(link_path);
    stop(base);
}
END_TEST

START_TEST(entries_unused_for_valid_are_swept)
{
    struct event_base *base = start_across_turns(8, 20);
    struct file_ref *a = open_ok(root_fd, "a.txt", FLAGS);
    int a_fd = a->fd;
    file_ref_release(a);
    file_cache_sweep(); /* used just now: kept */
    ck_assert(is_open(a_fd));
    let_time_pass(20);
    file_cache_sweep();
    ck_assert(!is_open(a_fd));
    stop(base);
}
END_TEST

START_TEST(kept_bytes_are_bounded)
{
    enum { FILES = FILE_CACHE_CONTENTS_MAX + 1 };
    struct event_base *base = start_across_turns(FILES + 1, 60000);
    for (int i = 0; i < FILES; i++) {
        char name[16];
        snprintf(name, sizeof name, "s%03d", i);
        write_file(name, name);
        struct file_ref *f = open_ok(root_fd, name, FLAGS);
        ck_assert_int_eq(memcmp(file_ref_contents(f), name, 4), 0);
        file_ref_release(f);
    }
    /* The first file is still kept open, but its bytes went for the last. */
    struct file_ref *first = open_ok(root_fd, "s000", FLAGS);
    ck_assert_ptr_null(first->contents);
    ck_assert_int_eq(memcmp(file_ref_contents(first), "s000", 4), 0); /* read again */
    file_ref_release(first);
    for (int i = 0; i < FILES; i++) {
        char name[16];
        snprintf(name, sizeof name, "s%03d", i);
        remove_file(name);
    }
    stop(base);
}
END_TEST

START_TEST(max_is_clamped_to_a_quarter_of_the_descriptor_limit)
{
    struct rlimit saved, low;
    ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &saved), 0);
    low = saved;
    low.rlim_cur = 64;
    ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &low), 0);
    struct event_base *base = event_base_new();
    ck_assert_int_eq(file_cache_start(base), 0);
    ck_assert_uint_eq(file_cache_configure(10000, 60000), 16);
    ck_assert_uint_eq(file_cache_configure(0, 0), 0); /* back to per turn */
    ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &saved), 0);
    stop(base);
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
    tcase_add_test(t, kept_across_turns_until_evicted_least_recent_first);
    tcase_add_test(t, changed_files_are_seen_after_valid);
    tcase_add_test(t, a_symlink_turned_outside_the_root_is_refused_after_valid);
    tcase_add_test(t, entries_unused_for_valid_are_swept);
    tcase_add_test(t, kept_bytes_are_bounded);
    tcase_add_test(t, max_is_clamped_to_a_quarter_of_the_descriptor_limit);
    suite_add_tcase(s, t);
    return unit_run(s);
}
