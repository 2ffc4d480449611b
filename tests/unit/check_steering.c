/* check_steering.c - master/steering.c: real reuseport groups on the
 * loopback, real connections, the kernel's choice of socket counted by
 * accepting on each. Round-robin gives exact shares and never a socket
 * outside the targets; hash gives every target a share and nothing else. */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "master/steering.h"
#include "tests/unit/unit.h"

#define MAX_GROUP 4

struct group {
    int family;
    int fds[MAX_GROUP];
    unsigned count;
    struct sockaddr_storage address;
    socklen_t address_len;
    struct steering steering;
};

static void group_add(struct group *g)
{
    int fd = socket(g->family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(fd, 0);
    int one = 1;
    ck_assert_int_eq(setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one), 0);
    if (g->count == 0) {
        memset(&g->address, 0, sizeof g->address);
        if (g->family == AF_INET6) {
            struct sockaddr_in6 *a = (struct sockaddr_in6 *)&g->address;
            a->sin6_family = AF_INET6;
            a->sin6_addr = in6addr_loopback;
            g->address_len = sizeof *a;
        } else {
            struct sockaddr_in *a = (struct sockaddr_in *)&g->address;
            a->sin_family = AF_INET;
            a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
            g->address_len = sizeof *a;
        }
    }
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&g->address, g->address_len), 0);
    ck_assert_int_eq(listen(fd, 1024), 0);
    if (g->count == 0) {
        g->address_len = sizeof g->address;
        getsockname(fd, (struct sockaddr *)&g->address, &g->address_len);
    }
    g->fds[g->count++] = fd;
}

static void group_open(struct group *g, int family, unsigned count, bool round_robin)
{
    memset(g, 0, sizeof *g);
    g->family = family;
    for (unsigned i = 0; i < count; i++)
        group_add(g);
    struct err err;
    ck_assert_msg(steering_attach(&g->steering, g->fds[0], family, round_robin, &err) == SK_OK,
                  "%s", err.message);
}

static void group_steer(struct group *g, const unsigned *targets, unsigned n)
{
    struct err err;
    ck_assert_msg(steering_set(&g->steering, g->fds, g->count, targets, n, &err) == SK_OK, "%s",
                  err.message);
}

static void group_close(struct group *g)
{
    for (unsigned i = 0; i < g->count; i++)
        close(g->fds[i]);
    steering_close(&g->steering);
}

/* Makes `connections` connections, then counts what each socket queued. */
static void connect_and_count(struct group *g, unsigned connections, unsigned *counts)
{
    static int clients[1024];
    ck_assert_uint_le(connections, 1024);
    for (unsigned i = 0; i < connections; i++) {
        clients[i] = socket(g->family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        ck_assert_int_ge(clients[i], 0);
        ck_assert_int_eq(connect(clients[i], (struct sockaddr *)&g->address, g->address_len), 0);
    }
    for (unsigned k = 0; k < g->count; k++) {
        counts[k] = 0;
        int fd;
        while ((fd = accept(g->fds[k], NULL, NULL)) >= 0) {
            counts[k]++;
            close(fd);
        }
        ck_assert(errno == EAGAIN || errno == EWOULDBLOCK);
    }
    unsigned total = 0;
    for (unsigned k = 0; k < g->count; k++)
        total += counts[k];
    ck_assert_uint_eq(total, connections); /* each handshake was queued somewhere */
    for (unsigned i = 0; i < connections; i++)
        close(clients[i]);
}

START_TEST(round_robin_gives_exact_shares_to_the_targets)
{
    struct group g;
    group_open(&g, AF_INET, 3, true);
    if (g.steering.kind != STEERING_ROUND_ROBIN) {
        /* No CAP_BPF here: the classic program took over, as it must. */
        ck_assert_int_eq(g.steering.kind, STEERING_HASH);
        ck_assert_str_eq(steering_name(&g.steering), "hash");
        group_close(&g);
        return;
    }
    ck_assert_str_eq(steering_name(&g.steering), "round-robin");
    unsigned counts[MAX_GROUP];
    group_steer(&g, (const unsigned[]){0, 1, 2}, 3);
    connect_and_count(&g, 300, counts);
    ck_assert_uint_eq(counts[0], 100);
    ck_assert_uint_eq(counts[1], 100);
    ck_assert_uint_eq(counts[2], 100);
    /* Worker 0 gone: its socket gets nothing new. */
    group_steer(&g, (const unsigned[]){1, 2}, 2);
    connect_and_count(&g, 64, counts);
    ck_assert_uint_eq(counts[0], 0);
    ck_assert_uint_eq(counts[1], 32);
    ck_assert_uint_eq(counts[2], 32);
    /* A reload that adds a worker grows the group. */
    group_add(&g);
    group_steer(&g, (const unsigned[]){0, 1, 2, 3}, 4);
    connect_and_count(&g, 64, counts);
    for (unsigned k = 0; k < 4; k++)
        ck_assert_uint_eq(counts[k], 16);
    /* One that lowers the count: the sockets past it get nothing new. */
    group_steer(&g, (const unsigned[]){0}, 1);
    connect_and_count(&g, 10, counts);
    ck_assert_uint_eq(counts[0], 10);
    group_close(&g);
}
END_TEST

/* A binary upgrade: the new master's program replaces the old one's, but
 * its map may take the sockets only once the old master has let go of
 * them (the kernel keeps a socket in one such map): until then, SK_AGAIN. */
START_TEST(a_second_program_takes_over_once_the_first_lets_go)
{
    struct group g;
    group_open(&g, AF_INET, 2, true);
    if (g.steering.kind != STEERING_ROUND_ROBIN) {
        group_close(&g);
        return; /* no CAP_BPF: the classic program has no map to hand over */
    }
    group_steer(&g, (const unsigned[]){0, 1}, 2);
    struct steering next;
    struct err err;
    ck_assert_int_eq(steering_attach(&next, g.fds[0], AF_INET, true, &err), SK_OK);
    const unsigned both[] = {0, 1};
    ck_assert_int_eq(steering_set(&next, g.fds, g.count, both, 2, &err), SK_AGAIN);
    steering_close(&g.steering);
    int rc = SK_AGAIN;
    for (int i = 0; i < 200 && rc == SK_AGAIN; i++) { /* the kernel frees the map after RCU */
        rc = steering_set(&next, g.fds, g.count, both, 2, &err);
        if (rc == SK_AGAIN)
            usleep(10000);
    }
    ck_assert_msg(rc == SK_OK, "%s", err.message);
    g.steering = next;
    unsigned counts[MAX_GROUP];
    connect_and_count(&g, 64, counts);
    ck_assert_uint_eq(counts[0], 32);
    ck_assert_uint_eq(counts[1], 32);
    group_close(&g);
}
END_TEST

static void hash_spreads_over_targets_only(int family)
{
    struct group g;
    group_open(&g, family, 3, false);
    ck_assert_int_eq(g.steering.kind, STEERING_HASH);
    unsigned counts[MAX_GROUP];
    group_steer(&g, (const unsigned[]){0, 1, 2}, 3);
    connect_and_count(&g, 600, counts);
    /* Binomial, mean 200, sigma 11.5: under 120 would be 7 sigma. */
    for (unsigned k = 0; k < 3; k++)
        ck_assert_msg(counts[k] > 120, "socket %u got %u of 600", k, counts[k]);
    group_steer(&g, (const unsigned[]){2, 0}, 2);
    connect_and_count(&g, 400, counts);
    ck_assert_uint_eq(counts[1], 0);
    ck_assert_msg(counts[0] > 120 && counts[2] > 120, "%u / %u", counts[0], counts[2]);
    group_steer(&g, (const unsigned[]){1}, 1);
    connect_and_count(&g, 50, counts);
    ck_assert_uint_eq(counts[1], 50);
    group_close(&g);
}

START_TEST(hash_spreads_ipv4_over_the_targets_only)
{
    hash_spreads_over_targets_only(AF_INET);
}
END_TEST

START_TEST(hash_spreads_ipv6_over_the_targets_only)
{
    int probe = socket(AF_INET6, SOCK_STREAM, 0);
    struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_addr = in6addr_loopback};
    bool have_ipv6 = probe >= 0 && bind(probe, (struct sockaddr *)&a, sizeof a) == 0;
    if (probe >= 0)
        close(probe);
    if (have_ipv6) /* a machine without IPv6 has nothing to steer there */
        hash_spreads_over_targets_only(AF_INET6);
}
END_TEST

START_TEST(without_a_program_nothing_is_attached)
{
    struct steering s;
    struct err err;
    int fd = socket(AF_INET, SOCK_STREAM, 0); /* not reuseport, not listening */
    ck_assert_int_eq(steering_attach(&s, fd, AF_INET, true, &err), SK_ERROR);
    ck_assert_int_eq(s.kind, STEERING_NONE);
    ck_assert_ptr_nonnull(strstr(err.message, "SO_ATTACH_REUSEPORT_CBPF"));
    ck_assert_str_eq(steering_name(&s), "none");
    steering_close(&s);
    close(fd);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("steering");
    TCase *t = tcase_create("steering");
    tcase_set_timeout(t, 30);
    tcase_add_test(t, round_robin_gives_exact_shares_to_the_targets);
    tcase_add_test(t, a_second_program_takes_over_once_the_first_lets_go);
    tcase_add_test(t, hash_spreads_ipv4_over_the_targets_only);
    tcase_add_test(t, hash_spreads_ipv6_over_the_targets_only);
    tcase_add_test(t, without_a_program_nothing_is_attached);
    suite_add_tcase(s, t);
    return unit_run(s);
}
