/*
 * check_access_log.c - worker/access_log.c: combined and JSON lines, the
 * escaping of client bytes, and whole lines written to the file.
 */
#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/clock.h"
#include "worker/access_log.h"
#include "worker/exchange.h"
#include "tests/unit/unit.h"

static struct access_log log_;
static struct exchange ex;
static struct header_field headers[2];
static struct sockaddr_in peer;
static char line[8192];

static void setup(void)
{
    clock_update();
    access_log_init(&log_);
    memset(&ex, 0, sizeof ex);
    headers[0] = (struct header_field){"User-Agent", 10, "curl/7.88", 9};
    headers[1] = (struct header_field){"Referer", 7, "http://x/\"q\"", 12};
    ex.headers = headers;
    ex.header_count = 2;
    ex.method_name = "GET";
    ex.target = "/a b\x01";
    ex.target_len = 5;
    ex.version_major = 1;
    ex.version_minor = 1;
    ex.status = 200;
    peer.sin_family = AF_INET;
    inet_pton(AF_INET, "127.0.0.1", &peer.sin_addr);
}

static const char *render(void)
{
    struct access_log_entry e = {.ex = &ex, .peer = (struct sockaddr *)&peer,
                                 .endpoint = "public", .bytes_sent = 13, .duration_ms = 7};
    size_t n = access_log_render(&log_, &e, line, 4096);
    line[n] = '\0';
    return line;
}

START_TEST(combined_line)
{
    const char *l = render();
    ck_assert_msg(strncmp(l, "127.0.0.1 - - [", 15) == 0, "%s", l);
    ck_assert_msg(strstr(l, " +0000] \"GET /a b\\x01 HTTP/1.1\" 200 13 "
                            "\"http://x/\\x22q\\x22\" \"curl/7.88\"\n") != NULL, "%s", l);
    ck_assert_int_eq(strchr(l, '\n') - l, (int)strlen(l) - 1);
}
END_TEST

START_TEST(combined_user_is_the_client_certificate_subject)
{
    struct access_log_entry e = {.ex = &ex, .peer = (struct sockaddr *)&peer,
                                 .client_subject = "CN=Alice Smith,O=Ex\"ample"};
    size_t n = access_log_render(&log_, &e, line, 4096);
    line[n] = '\0';
    static const char want[] = "127.0.0.1 - CN=Alice\\x20Smith,O=Ex\\x22ample [";
    ck_assert_msg(strncmp(line, want, sizeof want - 1) == 0, "%s", line);
}
END_TEST

START_TEST(json_line)
{
    log_.format = ACCESS_LOG_JSON;
    ex.header_count = 0;
    const char *l = render();
    ck_assert_msg(strncmp(l, "{\"time\":\"20", 11) == 0, "%s", l);
    ck_assert_msg(strstr(l, "Z\",\"remote\":\"127.0.0.1\",\"method\":\"GET\",\"target\":"
                            "\"/a b\\u0001\",\"protocol\":\"HTTP/1.1\",\"status\":200,"
                            "\"bytes_sent\":13,\"referer\":\"\",\"user_agent\":\"\","
                            "\"duration_ms\":7,\"endpoint\":\"public\"}\n") != NULL, "%s", l);
}
END_TEST

START_TEST(long_fields_are_cut_and_the_line_stays_whole)
{
    static char target[10000];
    memset(target, '"', sizeof target);
    ex.target = target;
    ex.target_len = sizeof target;
    const char *l = render();
    ck_assert_uint_lt(strlen(l), 4096);
    ck_assert_int_eq(l[strlen(l) - 1], '\n');
}
END_TEST

START_TEST(lines_reach_the_file_on_flush)
{
    char path[64], buf[16384];
    snprintf(path, sizeof path, "/tmp/check_access_log.%d", (int)getpid());
    struct config config = {.access_log = path};
    struct err err;
    ck_assert_int_eq(access_log_open(&log_, &config, &err), SK_OK);
    ck_assert(access_log_on(&log_));
    struct access_log_entry e = {.ex = &ex};
    access_log_record(&log_, &e);
    access_log_record(&log_, &e);
    FILE *f = fopen(path, "r");
    ck_assert_uint_eq(fread(buf, 1, sizeof buf, f), 0); /* buffered until the heartbeat */
    access_log_flush(&log_);
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    ck_assert_msg(strncmp(buf, "unix - - [", 10) == 0, "%s", buf);
    ck_assert_ptr_nonnull(strstr(strchr(buf, '\n') + 1, "unix - - ["));
    access_log_close(&log_);
    unlink(path);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("access_log");
    TCase *t = tcase_create("access_log");
    tcase_add_checked_fixture(t, setup, NULL);
    tcase_add_test(t, combined_line);
    tcase_add_test(t, combined_user_is_the_client_certificate_subject);
    tcase_add_test(t, json_line);
    tcase_add_test(t, long_fields_are_cut_and_the_line_stays_whole);
    tcase_add_test(t, lines_reach_the_file_on_flush);
    suite_add_tcase(s, t);
    return unit_run(s);
}
