/* check_outq.c - worker/outq.c: ordered flushing of bytes and file ranges
 * through a real socket pair, including a peer that reads slowly. */
#include <check.h>
#include <stdint.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

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

static void close_release(void *arg);

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
    int fd = temp_file_with("0123456789");
    ck_assert_int_eq(outq_add_file(&q, fd, 2, 5, NULL, close_release, (void *)(intptr_t)fd), 0);
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

/* A release that records its calls: how many, and in which order. */
static int released[8];
static int release_order[8];
static int release_count;

static void count_release(void *arg)
{
    int i = (int)(intptr_t)arg;
    released[i]++;
    release_order[release_count++] = i;
}

static void close_release(void *arg)
{
    close((int)(intptr_t)arg);
}

static void reset_releases(void)
{
    memset(released, 0, sizeof released);
    release_count = 0;
}

START_TEST(clear_runs_every_release_once)
{
    reset_releases();
    struct outq q;
    outq_init(&q);
    int fd = temp_file_with("abc");
    ck_assert_int_eq(outq_add_file(&q, fd, 0, 3, NULL, close_release, (void *)(intptr_t)fd), 0);
    ck_assert_int_eq(outq_add_ref(&q, "lent", 4, count_release, (void *)1), 0);
    ck_assert_int_eq(outq_add_release(&q, count_release, (void *)2), 0);
    outq_clear(&q);
    ck_assert_int_eq(fcntl(fd, F_GETFD), -1); /* closed */
    ck_assert_int_eq(released[1], 1);
    ck_assert_int_eq(released[2], 1);
    outq_clear(&q);
    ck_assert_int_eq(release_count, 2);
}
END_TEST

/* Two HTTP/2 streams sending one file: their frames interleave; each
 * gives the last of its frames its release, or queues the release alone
 * when it stops early. A release runs once what it guards has left. */
START_TEST(releases_run_when_their_segment_has_left)
{
    reset_releases();
    int fd = temp_file_with("0123456789");
    int sv[2];
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    struct outq q;
    outq_init(&q);
    ck_assert_int_eq(outq_add_file(&q, fd, 0, 2, NULL, NULL, NULL), 0);              /* A: 01 */
    ck_assert_int_eq(outq_add_file(&q, fd, 5, 2, NULL, NULL, NULL), 0);              /* B: 56 */
    ck_assert_int_eq(outq_add_file(&q, fd, 2, 2, NULL, count_release, (void *)1), 0); /* A's last */
    ck_assert_int_eq(outq_add_release(&q, count_release, (void *)2), 0); /* B stopped early */
    ck_assert_int_eq(outq_add_copy(&q, "x", 1), 0);
    outq_advance(&q, 5);
    ck_assert_int_eq(release_count, 0); /* one byte of A's last frame is still queued */
    outq_advance(&q, 1);
    ck_assert_int_eq(release_count, 2); /* A's, then B's, which waited behind it */
    ck_assert_int_eq(release_order[0], 1);
    ck_assert_int_eq(release_order[1], 2);
    uint64_t written;
    ck_assert_int_eq(outq_flush(&q, sv[0], &written), OUTQ_FLUSHED);
    ck_assert_uint_eq(written, 1);
    ck_assert_int_eq(release_count, 2);
    /* Alone on an empty queue, a release runs at once. */
    ck_assert_int_eq(outq_add_release(&q, count_release, (void *)3), 0);
    ck_assert_int_eq(released[3], 1);
    close(fd);
    close(sv[0]);
    close(sv[1]);
}
END_TEST

/* A small file's bytes in memory go into the queue as a copy while it is
 * short: the bytes sent are those given, whatever the file holds by the
 * time they leave, and the release runs at once. A queue already long
 * gets the file as a segment instead, which holds no memory. */
START_TEST(file_contents_are_copied_while_the_queue_is_short)
{
    reset_releases();
    int fd = temp_file_with("0123456789");
    struct outq q;
    outq_init(&q);
    ck_assert_int_eq(outq_add_file(&q, fd, 2, 5, "23456", count_release, (void *)1), 0);
    ck_assert_int_eq(q.segments[q.count - 1].kind, OUTQ_COPY);
    ck_assert_int_eq(released[1], 1);
    static char filler[300 * 1024];
    ck_assert_int_eq(outq_add_stable(&q, filler, sizeof filler), 0);
    ck_assert_int_eq(outq_add_file(&q, fd, 0, 3, "012", count_release, (void *)2), 0);
    ck_assert_int_eq(q.segments[q.count - 1].kind, OUTQ_FILE); /* the queue is long now */
    ck_assert_int_eq(released[2], 0);
    ck_assert_int_eq(pwrite(fd, "abc", 3, 0), 3);

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
    ck_assert_int_eq(memcmp(out, "23456", 5), 0);                   /* the copy */
    ck_assert_int_eq(memcmp(out + 5 + sizeof filler, "abc", 3), 0); /* the segment: read at send */
    ck_assert_int_eq(released[2], 1); /* sent, so released */
    close(fd);
    close(sv[1]);
}
END_TEST

/* A stream whose queue never empties (its reader is a little slower than
 * its source) must not keep every byte it ever sent: the copy buffer and
 * the segment array stay bounded, and what arrives is still in order. */
#define STREAM_PIECE (48 * 1024)
static unsigned char stream_source[251 + STREAM_PIECE];

static size_t stream_check(const unsigned char *got, size_t n, size_t position)
{
    ck_assert_int_eq(memcmp(got, stream_source + position % 251, n), 0); /* n <= a piece */
    return position + n;
}

START_TEST(a_queue_that_never_empties_stays_bounded)
{
    for (size_t i = 0; i < sizeof stream_source; i++)
        stream_source[i] = (unsigned char)(i % 251);
    int sv[2];
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    struct outq q;
    outq_init(&q);
    size_t queued = 0, received = 0, largest_buffer = 0, most_segments = 0;
    static unsigned char in[40 * 1024];
    uint64_t written;
    for (int round = 0; round < 100000 && queued < 32 * 1024 * 1024; round++) {
        if (q.pending_bytes < OUTQ_HIGH_WATER) {
            const unsigned char *from = stream_source + queued % 251;
            ck_assert_int_eq(outq_add_copy(&q, from, STREAM_PIECE), 0);
            ck_assert_int_eq(outq_add_stable(&q, from + STREAM_PIECE % 251, 16), 0);
            queued += STREAM_PIECE + 16;
        }
        ck_assert_int_ne(outq_flush(&q, sv[0], &written), OUTQ_FAILED);
        if (queued > 4 * 1024 * 1024) /* the reader is slower: once behind, always behind */
            ck_assert(!outq_empty(&q));
        ssize_t n = read(sv[1], in, sizeof in);
        if (n > 0)
            received = stream_check(in, (size_t)n, received);
        largest_buffer = q.buffer_capacity > largest_buffer ? q.buffer_capacity : largest_buffer;
        most_segments = q.capacity > most_segments ? q.capacity : most_segments;
    }
    ck_assert_uint_ge(queued, 32 * 1024 * 1024);
    for (int round = 0; round < 100000 && received < queued; round++) {
        ck_assert_int_ne(outq_flush(&q, sv[0], &written), OUTQ_FAILED);
        ssize_t n = read(sv[1], in, sizeof in);
        if (n > 0)
            received = stream_check(in, (size_t)n, received);
    }
    ck_assert_uint_eq(received, queued);
    ck_assert(outq_empty(&q));
    ck_assert_uint_le(largest_buffer, 8 * OUTQ_HIGH_WATER);
    ck_assert_uint_le(most_segments, 256);
    close(sv[0]);
    close(sv[1]);
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
    tcase_add_test(t, clear_runs_every_release_once);
    tcase_add_test(t, releases_run_when_their_segment_has_left);
    tcase_add_test(t, file_contents_are_copied_while_the_queue_is_short);
    tcase_add_test(t, a_queue_that_never_empties_stays_bounded);
    suite_add_tcase(s, t);
    return unit_run(s);
}
