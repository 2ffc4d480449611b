/* check_outq.c - worker/outq.c: ordered flushing of bytes and file ranges
 * through a real socket pair, including a peer that reads slowly. */
#include <check.h>
#include <event2/event.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "worker/file_cache.h"
#include "worker/outq.h"
#include "tests/unit/unit.h"

static int temp_file_with(const char *text)
{
    char path[] = "/tmp/check_outq_XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    unlink(path);
    ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    return fd;
}

static size_t drain(int fd, char *buf, size_t size)
{
    size_t got = 0;
    ssize_t n;
    while (got < size && (n = read(fd, buf + got, size - got)) > 0)
        got += (size_t)n;
    return got;
}

START_TEST(mixed_segments_leave_in_order)
{
    int sv[2];
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    struct outq q;
    outq_init(&q);
    ck_assert_int_eq(outq_add_copy(&q, "head1 ", 6), 0);
    ck_assert_int_eq(outq_add_stable(&q, "stable ", 7), 0);
    ck_assert_int_eq(outq_add_file(&q, temp_file_with("0123456789"), 2, 5), 0);
    ck_assert_int_eq(outq_add_copy(&q, " tail", 5), 0);
    uint64_t written;
    ck_assert_int_eq(outq_flush(&q, sv[0], &written), OUTQ_FLUSHED);
    ck_assert_uint_eq(written, 23);
    ck_assert(outq_empty(&q));
    close(sv[0]);
    char buf[64] = {0};
    ck_assert_uint_eq(drain(sv[1], buf, sizeof buf - 1), 23);
    ck_assert_str_eq(buf, "head1 stable 23456 tail");
    close(sv[1]);
}
END_TEST

/* Each release records how many bytes the peer could read when it ran. */
static int release_fd;
static size_t released_at[4];
static int releases;

static void on_release(void *arg)
{
    (void)arg;
    int pending = 0;
    ck_assert_int_eq(ioctl(release_fd, FIONREAD, &pending), 0);
    released_at[releases++] = (size_t)pending;
}

START_TEST(releases_run_once_what_precedes_them_is_sent)
{
    int sv[2];
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    int small = 4096;
    ck_assert_int_eq(setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof small), 0);
    release_fd = sv[1];
    releases = 0;
    struct outq q;
    outq_init(&q);
    ck_assert_int_eq(outq_add_release(&q, on_release, NULL), 0);
    ck_assert_int_eq(releases, 1); /* nothing queued: at once */
    ck_assert_int_eq(outq_add_copy(&q, "first", 5), 0);
    ck_assert_int_eq(outq_add_release(&q, on_release, NULL), 0);
    static char big[256 * 1024];
    ck_assert_int_eq(outq_add_stable(&q, big, sizeof big), 0);
    ck_assert_int_eq(outq_add_release(&q, on_release, NULL), 0);
    uint64_t written;
    ck_assert_int_eq(outq_flush(&q, sv[0], &written), OUTQ_BLOCKED);
    ck_assert_int_eq(releases, 2); /* "first" left; the big body has not */
    ck_assert_uint_eq(released_at[1], written); /* ran after the write that sent it */
    char buf[64 * 1024];
    size_t got = 0;
    while (got < 5 + sizeof big) {
        ssize_t n = read(sv[1], buf, sizeof buf);
        if (n > 0)
            got += (size_t)n;
        outq_flush(&q, sv[0], &written);
    }
    ck_assert_int_eq(releases, 3);
    /* Cleared before sending: the release runs anyway. */
    ck_assert_int_eq(outq_add_copy(&q, "never", 5), 0);
    ck_assert_int_eq(outq_add_release(&q, on_release, NULL), 0);
    outq_clear(&q);
    ck_assert_int_eq(releases, 4);
    close(sv[0]);
    close(sv[1]);
}
END_TEST

START_TEST(blocked_socket_resumes_where_it_stopped)
{
    int sv[2];
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    int small = 4096;
    setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
    struct outq q;
    outq_init(&q);
    size_t total = 0;
    char chunk[1000];
    for (int i = 0; i < 1000; i++) {
        memset(chunk, 'a' + i % 26, sizeof chunk);
        ck_assert_int_eq(outq_add_copy(&q, chunk, sizeof chunk), 0);
        total += sizeof chunk;
    }
    uint64_t written, sum = 0;
    ck_assert_int_eq(outq_flush(&q, sv[0], &written), OUTQ_BLOCKED);
    sum += written;
    char *received = malloc(total);
    size_t got = 0;
    for (int rounds = 0; rounds < 100000 && got < total; rounds++) {
        ssize_t n = read(sv[1], received + got, total - got);
        if (n > 0)
            got += (size_t)n;
        if (!outq_empty(&q)) {
            outq_flush(&q, sv[0], &written);
            sum += written;
        }
    }
    ck_assert_uint_eq(got, total);
    ck_assert_uint_eq(sum, total);
    /* One assertion over the whole buffer: each ck_assert is a message to
     * Check's parent process, and a million of them outlast the timeout
     * under the sanitizers. */
    size_t wrong = 0;
    for (size_t i = 0; i < total; i++)
        wrong += received[i] != 'a' + (int)(i / 1000) % 26;
    ck_assert_uint_eq(wrong, 0);
    free(received);
    outq_clear(&q);
    close(sv[0]);
    close(sv[1]);
}
END_TEST

START_TEST(peer_gone_is_a_failure)
{
    int sv[2];
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    close(sv[1]);
    struct outq q;
    outq_init(&q);
    ck_assert_int_eq(outq_add_copy(&q, "x", 1), 0);
    uint64_t written;
    signal(SIGPIPE, SIG_IGN);
    ck_assert_int_eq(outq_flush(&q, sv[0], &written), OUTQ_FAILED);
    outq_clear(&q);
    close(sv[0]);
}
END_TEST

START_TEST(clear_closes_file_descriptors)
{
    struct outq q;
    outq_init(&q);
    int fd = temp_file_with("abc");
    ck_assert_int_eq(outq_add_file(&q, fd, 0, 3), 0);
    outq_clear(&q);
    ck_assert_int_eq(fcntl(fd, F_GETFD), -1); /* closed */
}
END_TEST

/* A directory holding one file, f, opened as a root for file_cache_open. */
struct scratch_root {
    char dir[32];
    char path[64];
    int fd;
};

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

static void scratch_root_make(struct scratch_root *r, const char *text)
{
    snprintf(r->dir, sizeof r->dir, "/tmp/check_outq_dir_XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(r->dir));
    snprintf(r->path, sizeof r->path, "%s/f", r->dir);
    write_text(r->path, text);
    r->fd = open(r->dir, O_RDONLY | O_DIRECTORY);
    ck_assert_int_ge(r->fd, 0);
}

static void scratch_root_remove(struct scratch_root *r)
{
    close(r->fd);
    unlink(r->path);
    rmdir(r->dir);
}

/* Two HTTP/2 streams sending one file through one shared descriptor
 * (file_cache.h): their frames interleave, and each gives its hold back
 * after queuing its last one. The descriptor outlives every frame. */
START_TEST(shared_descriptor_stays_open_until_its_last_frame_is_sent)
{
    struct event_base *base = event_base_new();
    ck_assert_int_eq(file_cache_start(base), 0);
    struct scratch_root r;
    scratch_root_make(&r, "0123456789");
    int root = r.fd;
    struct stat st;
    int a = file_cache_open(root, "f", O_RDONLY, &st);
    int b = file_cache_open(root, "f", O_RDONLY, &st);
    ck_assert_int_eq(a, b);
    ck_assert_int_ge(event_base_loop(base, EVLOOP_NONBLOCK), 0); /* the cache lets go */
    scratch_root_remove(&r);

    int sv[2];
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    struct outq q;
    outq_init(&q);
    ck_assert_int_eq(outq_add_file_borrowed(&q, a, 0, 2), 0);  /* A: 01 */
    ck_assert_int_eq(outq_add_file_borrowed(&q, b, 5, 2), 0);  /* B: 56 */
    ck_assert_int_eq(outq_add_file_borrowed(&q, a, 2, 2), 0);  /* A: 23, its last */
    outq_release_fd(&q, a);
    ck_assert_int_eq(outq_add_file_borrowed(&q, b, 7, 3), 0);  /* B: 789, its last */
    outq_release_fd(&q, b);
    ck_assert(fcntl(a, F_GETFD) != -1);
    outq_advance(&q, 6); /* A's last frame is sent; B's is still queued */
    ck_assert(fcntl(a, F_GETFD) != -1);
    uint64_t written;
    ck_assert_int_eq(outq_flush(&q, sv[0], &written), OUTQ_FLUSHED);
    ck_assert_uint_eq(written, 3);
    ck_assert_int_eq(fcntl(a, F_GETFD), -1); /* the last holder closed it */
    char buf[8] = {0};
    ck_assert_uint_eq(read(sv[1], buf, sizeof buf - 1), 3);
    ck_assert_str_eq(buf, "789");
    outq_clear(&q);
    close(sv[0]);
    close(sv[1]);
    file_cache_stop();
    event_base_free(base);
}
END_TEST

/* A small file this turn has read goes into the queue as a copy: the
 * bytes sent are the turn's, whatever the file holds by the time they
 * leave, and the descriptor is given back at once. A queue already long
 * gets the file as a segment instead, which holds no memory. */
START_TEST(small_files_read_this_turn_are_copied_while_the_queue_is_short)
{
    struct event_base *base = event_base_new();
    ck_assert_int_eq(file_cache_start(base), 0);
    struct scratch_root r;
    scratch_root_make(&r, "0123456789");
    int root = r.fd;
    struct stat st;
    struct outq q;
    outq_init(&q);
    int fd = file_cache_open(root, "f", O_RDONLY, &st);
    ck_assert_int_eq(outq_add_file(&q, fd, 2, 5), 0);
    ck_assert_int_eq(q.segments[q.count - 1].kind, OUTQ_COPY);
    static char filler[300 * 1024];
    ck_assert_int_eq(outq_add_stable(&q, filler, sizeof filler), 0);
    fd = file_cache_open(root, "f", O_RDONLY, &st);
    ck_assert_int_eq(outq_add_file(&q, fd, 0, 3), 0); /* the queue is long now */
    ck_assert_int_eq(q.segments[q.count - 1].kind, OUTQ_FILE);
    ck_assert_int_ge(event_base_loop(base, EVLOOP_NONBLOCK), 0); /* the turn ends */
    size_t size;
    ck_assert_ptr_null(file_cache_contents(fd, &size)); /* nothing kept past it */
    write_text(r.path, "abcdefghij");

    int sv[2];
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    static char out[sizeof filler + 16];
    size_t got = 0;
    uint64_t written;
    for (int round = 0; round < 1000 && !outq_empty(&q); round++) {
        ck_assert_int_ne(outq_flush(&q, sv[0], &written), OUTQ_FAILED);
        ssize_t n = read(sv[1], out + got, sizeof out - got);
        if (n > 0)
            got += (size_t)n;
    }
    close(sv[0]);
    got += drain(sv[1], out + got, sizeof out - got);
    ck_assert_uint_eq(got, 5 + sizeof filler + 3);
    ck_assert_int_eq(memcmp(out, "23456", 5), 0);            /* the copy: the turn's bytes */
    ck_assert_int_eq(memcmp(out + 5 + sizeof filler, "abc", 3), 0); /* the segment: read at send */
    ck_assert_int_eq(fcntl(fd, F_GETFD), -1); /* sent, so closed */
    close(sv[1]);
    scratch_root_remove(&r);
    file_cache_stop();
    event_base_free(base);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("outq");
    TCase *t = tcase_create("outq");
    tcase_add_test(t, mixed_segments_leave_in_order);
    tcase_add_test(t, blocked_socket_resumes_where_it_stopped);
    tcase_add_test(t, releases_run_once_what_precedes_them_is_sent);
    tcase_add_test(t, peer_gone_is_a_failure);
    tcase_add_test(t, clear_closes_file_descriptors);
    tcase_add_test(t, shared_descriptor_stays_open_until_its_last_frame_is_sent);
    tcase_add_test(t, small_files_read_this_turn_are_copied_while_the_queue_is_short);
    suite_add_tcase(s, t);
    return unit_run(s);
}
