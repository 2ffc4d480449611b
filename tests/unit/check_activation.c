/* check_activation.c - master/activation.c: sockets passed by systemd.
 *
 * The protocol puts the sockets at descriptors 3, 4, ..., where Check
 * keeps descriptors of its own: each case runs in a child of the test
 * (passed_run), which places real sockets there, sets the variables as
 * systemd does and reports what went wrong through a pipe far above them. */
#include <arpa/inet.h>
#include <check.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/log.h"
#include "master/activation.h"
#include "master/listener.h"
#include "tests/unit/unit.h"

#define REPORT_FD 900

static char failure[512];

static int failed(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(failure, sizeof failure, fmt, ap);
    va_end(ap);
    return 1;
}

/* A stream socket at fd, listening or not: a Unix one bound to path, else
 * TCP on a free port of 127.0.0.1. */
static void place_socket(int fd, bool listening, const char *path)
{
    int s = socket(path != NULL ? AF_UNIX : AF_INET, SOCK_STREAM, 0);
    if (path != NULL) {
        struct sockaddr_un sun = {.sun_family = AF_UNIX};
        snprintf(sun.sun_path, sizeof sun.sun_path, "%s", path);
        unlink(path);
        bind(s, (struct sockaddr *)&sun, sizeof sun);
    } else {
        struct sockaddr_in sin = {.sin_family = AF_INET,
                                  .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        bind(s, (struct sockaddr *)&sin, sizeof sin);
    }
    if (listening)
        listen(s, 8);
    dup2(s, fd);
    close(s);
}

static void set_env(const char *pid, const char *fds, const char *names)
{
    char own[16];
    snprintf(own, sizeof own, "%d", (int)getpid());
    setenv("LISTEN_PID", pid != NULL ? pid : own, 1);
    setenv("LISTEN_FDS", fds, 1);
    if (names != NULL)
        setenv("LISTEN_FDNAMES", names, 1);
    else
        unsetenv("LISTEN_FDNAMES");
}

/* Runs scenario in a child; its failure message, or "" when it passed. */
static const char *passed_run(int (*scenario)(void))
{
    static char message[512];
    int p[2];
    ck_assert_int_eq(pipe(p), 0);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(p[1], REPORT_FD);
        int rc = scenario();
        if (rc != 0 && write(REPORT_FD, failure, strlen(failure)) < 0)
            _exit(3);
        _exit(rc);
    }
    close(p[1]);
    ssize_t n = read(p[0], message, sizeof message - 1);
    message[n > 0 ? n : 0] = '\0';
    close(p[0]);
    int status;
    waitpid(pid, &status, 0);
    if (message[0] == '\0' && !(WIFEXITED(status) && WEXITSTATUS(status) == 0))
        snprintf(message, sizeof message, "the child failed (status %d)", status);
    return message;
}

/* Two listening sockets passed as "main" and "admin", taken. */
static int take_main_and_admin(void)
{
    struct err err;
    place_socket(3, true, NULL);
    place_socket(4, true, NULL);
    set_env(NULL, "2", "main:admin");
    return activation_take(&err) == SK_OK ? 0 : failed("take: %s", err.message);
}

static int named_sockets_are_found_and_owned(void)
{
    if (take_main_and_admin() != 0)
        return 1;
    if (activation_find("main", 0) != 3 || activation_find("admin", 0) != 4 ||
        activation_find("main", 1) != -1 || activation_find("other", 0) != -1)
        return failed("found the wrong descriptors");
    if (!activation_owns(3) || !activation_owns(4) || activation_owns(5) || activation_owns(2))
        return failed("owns the wrong descriptors");
    if (getenv("LISTEN_PID") || getenv("LISTEN_FDS") || getenv("LISTEN_FDNAMES"))
        return failed("the variables were left for the processes saker starts");
    if (!(fcntl(3, F_GETFL) & O_NONBLOCK) || !(fcntl(3, F_GETFD) & FD_CLOEXEC))
        return failed("a passed socket must be non-blocking and close-on-exec");
    return 0;
}

static int sockets_for_another_process_are_ignored(void)
{
    struct err err;
    place_socket(3, true, NULL);
    set_env("1", "1", "main");
    if (activation_take(&err) != SK_OK || activation_find("main", 0) != -1 ||
        activation_owns(3))
        return failed("took sockets whose LISTEN_PID is another process");
    return getenv("LISTEN_FDS") ? failed("LISTEN_FDS left set") : 0;
}

static int a_socket_that_does_not_listen_is_an_error(void)
{
    struct err err;
    place_socket(3, false, NULL);
    set_env(NULL, "1", "main");
    if (activation_take(&err) != SK_ERROR)
        return failed("took a socket that does not listen");
    return strstr(err.message, "descriptor 3 ('main') is not a listening stream socket")
               ? 0 : failed("message: %s", err.message);
}

static int names_must_match_the_count(void)
{
    struct err err;
    place_socket(3, true, NULL);
    place_socket(4, true, NULL);
    set_env(NULL, "2", "main");
    if (activation_take(&err) != SK_ERROR || !strstr(err.message, "names 1 sockets"))
        return failed("2 sockets, 1 name: %s", err.message);
    set_env(NULL, "1", "a:b");
    if (activation_take(&err) != SK_ERROR || !strstr(err.message, "more sockets"))
        return failed("1 socket, 2 names: %s", err.message);
    set_env(NULL, "x", "a");
    if (activation_take(&err) != SK_ERROR || !strstr(err.message, "LISTEN_FDS 'x'"))
        return failed("LISTEN_FDS x: %s", err.message);
    return 0;
}

static int without_names_every_socket_is_unknown(void)
{
    struct err err;
    place_socket(3, true, NULL);
    set_env(NULL, "1", NULL);
    if (activation_take(&err) != SK_OK || activation_find("unknown", 0) != 3)
        return failed("no LISTEN_FDNAMES: the socket is not 'unknown'");
    return 0;
}

/* An endpoint serves the socket named after it, and closing the listeners
 * (a reload that drops it, the end) leaves the socket and its file. */
static int an_endpoint_serves_its_socket_and_never_closes_it(void)
{
    char dir[] = "/tmp/check_activation.XXXXXX", path[64], other[64], text[512];
    struct err err;
    if (mkdtemp(dir) == NULL)
        return failed("mkdtemp");
    snprintf(path, sizeof path, "%s/passed.sock", dir);
    snprintf(other, sizeof other, "%s/other.sock", dir);
    place_socket(3, true, path);
    set_env(NULL, "1", "local");
    if (activation_take(&err) != SK_OK)
        return failed("take: %s", err.message);
    snprintf(text, sizeof text, "workers: 2\nendpoints:\n  local: { url: \"unix:%s\" }\n"
             "routes:\n  - path: /\n    return: { status: 200, body: ok }\n", other);
    struct config *config = config_load_string(text, strlen(text), "t.yaml", &err);
    struct listener_set set;
    if (config == NULL || listeners_open(&set, config, NULL, &err) != SK_OK)
        return failed("open: %s", err.message);
    struct stat st;
    int rc = set.count != 1 || set.items[0].group.fds[0] != 3 || set.items[0].group.steered ||
             strcmp(set.items[0].address, path) != 0 ? failed("not the passed socket")
             : stat(other, &st) == 0 ? failed("bound the URL") : 0;
    listeners_close(&set);
    if (rc == 0 && (fcntl(3, F_GETFD) < 0 || stat(path, &st) != 0))
        rc = failed("closing the listeners closed or unlinked the passed socket");
    config_free(config);
    unlink(path);
    rmdir(dir);
    return rc;
}

/* An upgrade's child describes the sockets again, open across exec. */
static int export_describes_them_for_the_next_master(void)
{
    if (take_main_and_admin() != 0)
        return 1;
    activation_export();
    char own[16];
    snprintf(own, sizeof own, "%d", (int)getpid());
    if (!getenv("LISTEN_PID") || strcmp(getenv("LISTEN_PID"), own) != 0 ||
        strcmp(getenv("LISTEN_FDS"), "2") != 0 ||
        strcmp(getenv("LISTEN_FDNAMES"), "main:admin") != 0)
        return failed("exported %s %s", getenv("LISTEN_FDS"), getenv("LISTEN_FDNAMES"));
    if (fcntl(3, F_GETFD) & FD_CLOEXEC || fcntl(4, F_GETFD) & FD_CLOEXEC)
        return failed("the sockets would close at exec");
    return 0;
}

#define PASSED_CASE(name)                              \
    START_TEST(name##_test)                            \
    {                                                  \
        const char *why = passed_run(name);            \
        ck_assert_msg(why[0] == '\0', "%s", why);      \
    }                                                  \
    END_TEST

PASSED_CASE(named_sockets_are_found_and_owned)
PASSED_CASE(sockets_for_another_process_are_ignored)
PASSED_CASE(a_socket_that_does_not_listen_is_an_error)
PASSED_CASE(names_must_match_the_count)
PASSED_CASE(without_names_every_socket_is_unknown)
PASSED_CASE(an_endpoint_serves_its_socket_and_never_closes_it)
PASSED_CASE(export_describes_them_for_the_next_master)

int main(void)
{
    log_set_level(LOG_ERROR);
    Suite *s = suite_create("activation");
    TCase *t = tcase_create("activation");
    tcase_add_test(t, named_sockets_are_found_and_owned_test);
    tcase_add_test(t, sockets_for_another_process_are_ignored_test);
    tcase_add_test(t, a_socket_that_does_not_listen_is_an_error_test);
    tcase_add_test(t, names_must_match_the_count_test);
    tcase_add_test(t, without_names_every_socket_is_unknown_test);
    tcase_add_test(t, an_endpoint_serves_its_socket_and_never_closes_it_test);
    tcase_add_test(t, export_describes_them_for_the_next_master_test);
    suite_add_tcase(s, t);
    return unit_run(s);
}
