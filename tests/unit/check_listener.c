/* check_listener.c - master/listener.c: reuseport groups. A TCP address is
 * one socket per worker, steered; a reload moves the group, grows it with
 * the worker count and never closes a socket of it; the workers of a
 * generation divide the sockets so that each one is polled. */
#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "master/listener.h"
#include "tests/unit/unit.h"

static struct config *load(unsigned workers, const char *endpoints)
{
    char text[1024];
    snprintf(text, sizeof text,
             "workers: %u\nendpoints:\n%sroutes:\n  - path: /\n"
             "    return: { status: 200, body: ok }\n", workers, endpoints);
    struct err err;
    struct config *config = config_load_string(text, strlen(text), "t.yaml", &err);
    ck_assert_msg(config != NULL, "%s", err.message);
    return config;
}

static const char *const ONE_TCP = "  main: { url: \"http://127.0.0.1:0\" }\n";

static bool is_listening(int fd)
{
    int listening = 0;
    socklen_t len = sizeof listening;
    return getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) == 0 && listening;
}

static uint16_t port_of(int fd)
{
    struct sockaddr_in a;
    socklen_t len = sizeof a;
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    return ntohs(a.sin_port);
}

START_TEST(a_tcp_address_is_one_steered_socket_per_worker)
{
    struct config *config = load(3, ONE_TCP);
    struct listener_set set;
    struct err err;
    ck_assert_msg(listeners_open(&set, config, NULL, &err) == SK_OK, "%s", err.message);
    ck_assert_uint_eq(set.count, 1);
    struct listener *l = &set.items[0];
    ck_assert(l->group.steered);
    ck_assert_uint_eq(l->group.count, 3);
    for (unsigned i = 0; i < 3; i++) {
        ck_assert(is_listening(l->group.fds[i]));
        ck_assert_uint_eq(port_of(l->group.fds[i]), l->port);
    }
    ck_assert_int_ne(l->steering.kind, STEERING_NONE);
    listeners_close(&set);
    config_free(config);
}
END_TEST

/* TCP_NODELAY and TCP_NOTSENT_LOWAT are set once on the listening sockets
 * and inherited by every connection they accept: no setsockopt per
 * connection in the workers. */
START_TEST(accepted_connections_inherit_nodelay_and_notsent_lowat)
{
    struct config *config = load(2, ONE_TCP);
    struct listener_set set;
    struct err err;
    ck_assert_msg(listeners_open(&set, config, NULL, &err) == SK_OK, "%s", err.message);
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(set.items[0].port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int clients[8], accepted = 0;
    for (int i = 0; i < 8; i++) {
        clients[i] = socket(AF_INET, SOCK_STREAM, 0);
        ck_assert_int_eq(connect(clients[i], (struct sockaddr *)&to, sizeof to), 0);
    }
    for (unsigned k = 0; k < set.items[0].group.count; k++) {
        int fd;
        while ((fd = accept(set.items[0].group.fds[k], NULL, NULL)) >= 0) {
            int nodelay = 0;
            socklen_t len = sizeof nodelay;
            ck_assert_int_eq(getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &nodelay, &len), 0);
            ck_assert_int_eq(nodelay, 1);
            int lowat = 0;
            len = sizeof lowat;
            ck_assert_int_eq(getsockopt(fd, IPPROTO_TCP, TCP_NOTSENT_LOWAT, &lowat, &len), 0);
            ck_assert_int_eq(lowat, 128 * 1024);
            accepted++;
            close(fd);
        }
    }
    ck_assert_int_eq(accepted, 8);
    for (int i = 0; i < 8; i++)
        close(clients[i]);
    listeners_close(&set);
    config_free(config);
}
END_TEST

START_TEST(a_unix_socket_is_one_socket_for_every_worker)
{
    char dir[] = "/tmp/check_listener.XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char path[64], endpoints[256];
    snprintf(path, sizeof path, "%s/s.sock", dir);
    snprintf(endpoints, sizeof endpoints, "  local: { url: \"unix:%s\" }\n", path);
    struct config *config = load(4, endpoints);
    struct listener_set set;
    struct err err;
    ck_assert_msg(listeners_open(&set, config, NULL, &err) == SK_OK, "%s", err.message);
    struct listener *l = &set.items[0];
    ck_assert(!l->group.steered);
    ck_assert_uint_eq(l->group.count, 1);
    int out[1];
    for (unsigned w = 0; w < 4; w++) {
        ck_assert_uint_eq(listener_group_share(&l->group, w, 4, out), 1);
        ck_assert_int_eq(out[0], l->group.fds[0]);
    }
    listeners_close(&set);
    struct stat st;
    ck_assert_int_ne(stat(path, &st), 0); /* the socket file is gone */
    rmdir(dir);
    config_free(config);
}
END_TEST

/* A reload to more workers grows the group on the same port; a reload to
 * fewer keeps every socket (closing one would reset its queue). */
START_TEST(a_reload_moves_the_group_and_only_grows_it)
{
    struct config *two = load(2, ONE_TCP), *four = load(4, ONE_TCP), *one = load(1, ONE_TCP);
    struct listener_set a, b, c;
    struct err err;
    ck_assert_msg(listeners_open(&a, two, NULL, &err) == SK_OK, "%s", err.message);
    int first = a.items[0].group.fds[0], second = a.items[0].group.fds[1];
    uint16_t port = a.items[0].port;
    ck_assert_msg(listeners_open(&b, four, &a, &err) == SK_OK, "%s", err.message);
    ck_assert_ptr_null(a.items[0].group.fds); /* moved */
    ck_assert_uint_eq(b.items[0].group.count, 4);
    ck_assert_int_eq(b.items[0].group.fds[0], first);
    ck_assert_int_eq(b.items[0].group.fds[1], second);
    ck_assert_uint_eq(port_of(b.items[0].group.fds[3]), port);
    listeners_close(&a);
    ck_assert_msg(listeners_open(&c, one, &b, &err) == SK_OK, "%s", err.message);
    ck_assert_uint_eq(c.items[0].group.count, 4);
    for (unsigned i = 0; i < 4; i++)
        ck_assert(is_listening(c.items[0].group.fds[i]));
    /* A reload that fails gives the group back, grown sockets included. */
    struct listener_set d;
    ck_assert_msg(listeners_open(&d, four, &c, &err) == SK_OK, "%s", err.message);
    listeners_rollback(&d, &c);
    ck_assert_uint_eq(c.items[0].group.count, 4);
    ck_assert_int_eq(c.items[0].group.fds[0], first);
    listeners_close(&b);
    listeners_close(&c);
    config_free(two);
    config_free(four);
    config_free(one);
}
END_TEST

static struct listener_group group_of(unsigned count)
{
    static int fds[8];
    for (unsigned i = 0; i < 8; i++)
        fds[i] = 100 + (int)i;
    return (struct listener_group){.fds = fds, .count = count, .steered = true};
}

START_TEST(each_socket_of_a_group_has_exactly_one_worker)
{
    int out[8];
    for (unsigned count = 1; count <= 8; count++)
        for (unsigned workers = 1; workers <= count; workers++) {
            struct listener_group g = group_of(count);
            unsigned polled[8] = {0};
            for (unsigned w = 0; w < workers; w++) {
                size_t n = listener_group_share(&g, w, workers, out);
                ck_assert_uint_ge(n, 1);
                ck_assert_int_eq(out[0], 100 + (int)w); /* its own first */
                for (size_t k = 0; k < n; k++)
                    polled[out[k] - 100]++;
            }
            for (unsigned i = 0; i < count; i++)
                ck_assert_msg(polled[i] == 1, "socket %u of %u with %u workers: %u pollers", i,
                              count, workers, polled[i]);
        }
}
END_TEST

START_TEST(worker_shares_after_a_reload_to_fewer_workers)
{
    int out[8];
    struct listener_group g = group_of(5);
    ck_assert_uint_eq(listener_group_share(&g, 0, 2, out), 3);
    ck_assert_int_eq(out[0], 100);
    ck_assert_int_eq(out[1], 102);
    ck_assert_int_eq(out[2], 104);
    ck_assert_uint_eq(listener_group_share(&g, 1, 2, out), 2);
    ck_assert_int_eq(out[0], 101);
    ck_assert_int_eq(out[1], 103);
}
END_TEST

int main(void)
{
    log_set_level(LOG_ERROR);
    Suite *s = suite_create("listener");
    TCase *t = tcase_create("listener");
    tcase_add_test(t, a_tcp_address_is_one_steered_socket_per_worker);
    tcase_add_test(t, accepted_connections_inherit_nodelay_and_notsent_lowat);
    tcase_add_test(t, a_unix_socket_is_one_socket_for_every_worker);
    tcase_add_test(t, a_reload_moves_the_group_and_only_grows_it);
    tcase_add_test(t, each_socket_of_a_group_has_exactly_one_worker);
    tcase_add_test(t, worker_shares_after_a_reload_to_fewer_workers);
    suite_add_tcase(s, t);
    return unit_run(s);
}
