/* check_tls_wbio.c - worker/tls_wbio.c over a real socket pair: records
 * wait in memory until a flush sends them together, a full socket is a
 * retry (as OpenSSL expects from BIO_flush), and what waits is counted. */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/bio.h>

#include "tests/unit/unit.h"
#include "worker/tls_wbio.h"

static int sv[2];

static void setup(void)
{
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
}

static void teardown(void)
{
    close(sv[0]);
    close(sv[1]);
}

static size_t peer_read(char *buf, size_t size)
{
    size_t got = 0;
    ssize_t n;
    while (got < size && (n = recv(sv[1], buf + got, size - got, 0)) > 0)
        got += (size_t)n;
    return got;
}

START_TEST(records_wait_for_the_flush_and_leave_together)
{
    BIO *b = tls_wbio_new(sv[0]);
    ck_assert_ptr_nonnull(b);
    ck_assert(tls_wbio_is(b));
    ck_assert_int_eq(BIO_write(b, "one ", 4), 4);
    ck_assert_int_eq(BIO_write(b, "two ", 4), 4);
    ck_assert_int_eq(BIO_write(b, "three", 5), 5);
    ck_assert_int_eq(BIO_wpending(b), 13);
    char buf[32] = {0};
    ck_assert_int_eq(recv(sv[1], buf, sizeof buf, 0), -1); /* nothing sent yet */
    ck_assert_int_eq(errno, EAGAIN);
    ck_assert_int_eq(tls_wbio_flush(b), 1);
    ck_assert_int_eq(BIO_wpending(b), 0);
    ck_assert_int_eq(recv(sv[1], buf, sizeof buf, 0), 13);
    ck_assert_str_eq(buf, "one two three");
    ck_assert_int_eq(tls_wbio_flush(b), 1); /* nothing waits: done at once */
    BIO_free(b);
}
END_TEST

/* A packet socket keeps each send() a message of its own, so the peer
 * counts the sends: three records, one send. */
START_TEST(three_records_are_one_send)
{
    int packets[2];
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK, 0, packets), 0);
    BIO *b = tls_wbio_new(packets[0]);
    ck_assert_int_eq(BIO_write(b, "one ", 4), 4);
    ck_assert_int_eq(BIO_write(b, "two ", 4), 4);
    ck_assert_int_eq(BIO_write(b, "three", 5), 5);
    ck_assert_int_eq(BIO_flush(b), 1);
    char buf[32] = {0};
    ck_assert_int_eq(recv(packets[1], buf, sizeof buf, 0), 13);
    ck_assert_str_eq(buf, "one two three");
    ck_assert_int_eq(recv(packets[1], buf, sizeof buf, 0), -1); /* no second message */
    ck_assert_int_eq(errno, EAGAIN);
    BIO_free(b);
    close(packets[0]);
    close(packets[1]);
}
END_TEST

START_TEST(a_full_socket_is_a_retry_and_nothing_is_lost)
{
    int small = 4096;
    setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
    BIO *b = tls_wbio_new(sv[0]);
    enum { TOTAL = 19 * 16 * 1024 }; /* whole 16 KiB writes, past the standard buffer */
    char *data = malloc(TOTAL), *got = malloc(TOTAL);
    for (size_t i = 0; i < TOTAL; i++)
        data[i] = (char)(i % 251);
    for (size_t off = 0; off < TOTAL; off += 16 * 1024)
        ck_assert_int_eq(BIO_write(b, data + off, 16 * 1024), 16 * 1024);
    ck_assert(!tls_wbio_has_room(b, 64 * 1024));
    ck_assert_int_le(BIO_flush(b), 0);
    ck_assert(BIO_should_retry(b) && BIO_should_write(b));
    ck_assert_int_eq(tls_wbio_flush(b), 0);
    ck_assert_int_gt(BIO_wpending(b), 0);
    size_t received = 0;
    int rc = 0;
    for (int round = 0; round < 100000 && rc != 1; round++) {
        received += peer_read(got + received, TOTAL - received);
        rc = tls_wbio_flush(b);
        ck_assert_int_ge(rc, 0);
    }
    ck_assert_int_eq(rc, 1);
    ck_assert_int_eq(BIO_wpending(b), 0);
    ck_assert(tls_wbio_has_room(b, 64 * 1024));
    received += peer_read(got + received, TOTAL - received);
    ck_assert_uint_eq(received, TOTAL);
    ck_assert_int_eq(memcmp(data, got, TOTAL), 0);
    free(data);
    free(got);
    BIO_free(b);
}
END_TEST

START_TEST(a_dead_socket_is_a_failure)
{
    BIO *b = tls_wbio_new(sv[0]);
    close(sv[1]);
    sv[1] = -1;
    ck_assert_int_eq(BIO_write(b, "x", 1), 1);
    ck_assert_int_eq(tls_wbio_flush(b), -1);
    ck_assert_int_eq(errno, EPIPE);
    ck_assert_int_le(BIO_flush(b), 0);
    ck_assert(!BIO_should_retry(b));
    BIO_free(b); /* frees what still waits */
}
END_TEST

START_TEST(other_bios_are_not_taken_for_it)
{
    BIO *mem = BIO_new(BIO_s_mem());
    ck_assert(!tls_wbio_is(mem));
    ck_assert(!tls_wbio_is(NULL));
    ck_assert(tls_wbio_has_room(mem, 1 << 30)); /* nothing to gather: always room */
    ck_assert_int_eq(tls_wbio_flush(mem), 1);  /* and nothing waits */
    BIO_free(mem);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("tls_wbio");
    TCase *t = tcase_create("tls_wbio");
    tcase_add_checked_fixture(t, setup, teardown);
    tcase_add_test(t, records_wait_for_the_flush_and_leave_together);
    tcase_add_test(t, three_records_are_one_send);
    tcase_add_test(t, a_full_socket_is_a_retry_and_nothing_is_lost);
    tcase_add_test(t, a_dead_socket_is_a_failure);
    tcase_add_test(t, other_bios_are_not_taken_for_it);
    suite_add_tcase(s, t);
    return unit_run(s);
}
