/*
 * check_metrics.c - what sakerctl prints from a segment: Prometheus text
 * (shm/shm_metrics.c), the status text (cli/status.c), the status JSON
 * (cli/status_json.c) and its string escaping (cli/json.c), also over a
 * hostile segment.
 *
 * A segment is filled as a master and its workers would; the renderers
 * write into open_memstream() and the text is checked line by line. The
 * JSON is checked for syntax by a small validator below (RFC 8259 grammar)
 * and for the keys other tests rely on.
 */
#include <check.h>
#include <ctype.h>
#include <regex.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "tests/json_check.h"

static char dir[64];
static char path[128];
static struct shm shm;

/* Two live workers of generation 2, one retired worker, two listeners. */
static void fill(void)
{
    struct shm_header *h = shm.header;
    shm_header_begin_write(&shm);
    h->listener_count = 2;
    h->listeners[0] = (struct shm_listener){.kind = SHM_LISTENER_TCP4, .port = 41234};
    snprintf(h->listeners[0].endpoint, 64, "public");
    snprintf(h->listeners[0].url, SHM_LISTENER_TEXT_MAX, "http://127.0.0.1:0");
    snprintf(h->listeners[0].address, SHM_LISTENER_TEXT_MAX, "127.0.0.1:41234");
    h->listeners[1] = (struct shm_listener){.kind = SHM_LISTENER_UNIX};
    snprintf(h->listeners[1].endpoint, 64, "we\"ird\n\xff");
    snprintf(h->listeners[1].address, SHM_LISTENER_TEXT_MAX, "/run/a.sock");
    h->certificate_count = 2;
    h->certificates_unlisted = 3;
    h->certificates[0] = (struct shm_certificate){.not_before = 1700000000,
                                                  .not_after = 1800000000};
    snprintf(h->certificates[0].endpoint, 64, "secure");
    snprintf(h->certificates[0].path, SHM_CERTIFICATE_TEXT_MAX, "/etc/saker/site.pem");
    snprintf(h->certificates[0].subject, SHM_CERTIFICATE_TEXT_MAX, "CN=localhost");
    h->certificates[1] = (struct shm_certificate){.not_before = 1, .not_after = 2};
    snprintf(h->certificates[1].endpoint, 64, "secure");
    snprintf(h->certificates[1].sni, 64, "*.example.org");
    snprintf(h->certificates[1].path, SHM_CERTIFICATE_TEXT_MAX, "/etc/we\"ird\\x.pem");
    h->reload_count = 1;
    h->reload_ok = 0;
    snprintf(h->reload_message, SHM_MESSAGE_MAX, "saker.yaml:3:5: unknown key \"x\"");
    shm_header_end_write(&shm);
    atomic_store(&h->generation, 2);
    atomic_store(&h->state, SHM_INSTANCE_RUNNING);
    atomic_store(&h->workers_per_generation, 2);
    atomic_store(&h->worker_starts, 3);

    shm_slot_claim(&shm, 7, 99999, 0, 1, 0); /* the retired one */
    shm_slot_count(&shm.slots[7], SHM_REQUESTS, 5);
    shm_slot_retire(&shm, 7);
    for (unsigned i = 0; i < 2; i++) {
        struct shm_slot *s = &shm.slots[i];
        shm_slot_claim(&shm, i, 1000 + (int)i, (int)i, 2, i);
        atomic_store(&s->state, SHM_WORKER_RUNNING);
        shm_slot_count(s, SHM_REQUESTS, 100);
        shm_slot_count(s, SHM_RESPONSES_2XX, 90);
        shm_slot_count(s, SHM_RESPONSES_4XX, 10);
        shm_slot_count(s, SHM_BYTES_OUT, 1000);
        shm_slot_count(s, SHM_REJECT_BODY_TOO_LARGE, 1);
        shm_slot_gauge_add(&s->connections_open, 2);
    }
}

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/check_metrics.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/saker.shm", dir);
    struct err err;
    ck_assert_msg(shm_create(&shm, path, 4, &err) == SK_OK, "%s", err.message);
    fill();
}

static void teardown(void)
{
    shm_detach(&shm);
    unlink(path);
    rmdir(dir);
}

enum view { VIEW_METRICS, VIEW_JSON, VIEW_STATUS };

/* What a view of the segment writes, as a string to free. */
static char *render(enum view view)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    if (view == VIEW_METRICS)
        shm_metrics_write(&shm, out);
    else if (view == VIEW_JSON)
        cli_status_json_write(&shm, path, out);
    else
        cli_status_write(&shm, path, out);
    fclose(out);
    return text;
}

static char *render_string(const char *s, size_t max)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    cli_json_string(out, s, max);
    fclose(out);
    return text;
}

static bool has_line(const char *text, const char *line)
{
    size_t n = strlen(line);
    for (const char *p = text; (p = strstr(p, line)) != NULL; p++)
        if ((p == text || p[-1] == '\n') && p[n] == '\n')
            return true;
    return false;
}

#define ck_assert_line(text, line) \
    ck_assert_msg(has_line(text, line), "no line '%s' in:\n%s", line, text)

/* ---- Prometheus ------------------------------------------------------ */

START_TEST(test_metrics_totals_include_retired_workers)
{
    char *m = render(VIEW_METRICS);
    ck_assert_line(m, "saker_up 1");
    ck_assert_line(m, "saker_requests_total 205");
    ck_assert_line(m, "saker_responses_total{class=\"2xx\"} 180");
    ck_assert_line(m, "saker_responses_total{class=\"4xx\"} 20");
    ck_assert_line(m, "saker_responses_total{class=\"1xx\"} 0");
    ck_assert_line(m, "saker_sent_bytes_total 2000");
    ck_assert_line(m, "saker_received_bytes_total 0");
    ck_assert_line(m, "saker_connections_open 4");
    ck_assert_line(m, "saker_connections_accepted_total 0");
    ck_assert_line(m, "saker_generation 2");
    ck_assert_line(m, "saker_workers 2");
    ck_assert_line(m, "saker_worker_starts_total 3");
    ck_assert_line(m, "saker_worker_deaths_total 0");
    ck_assert_line(m, "saker_worker_watchdog_kills_total 0");
    ck_assert_line(m, "saker_reloads_total 1");
    ck_assert_line(m, "saker_last_reload_success 0");
    free(m);
}
END_TEST

START_TEST(test_metrics_every_rejection_reason_even_zero)
{
    char *m = render(VIEW_METRICS);
    char line[128];
    for (int r = SHM_REJECT_FIRST; r < SHM_REJECT_END; r++) {
        snprintf(line, sizeof line, "saker_rejections_total{reason=\"%s\"} %d",
                 shm_reject_reason(r), r == SHM_REJECT_BODY_TOO_LARGE ? 2 : 0);
        ck_assert_line(m, line);
    }
    /* The TLS families, every label even at zero. */
    ck_assert_line(m, "saker_tls_handshakes_total{result=\"ok\"} 0");
    ck_assert_line(m, "saker_tls_handshakes_total{result=\"protocol_version\"} 0");
    ck_assert_line(m, "saker_tls_handshakes_total{result=\"other\"} 0");
    ck_assert_line(m, "saker_tls_resumptions_total 0");
    ck_assert_line(m, "saker_tls_protocol_total{version=\"1.3\"} 0");
    /* HTTP/2's too. */
    ck_assert_line(m, "saker_http2_connections_total 0");
    ck_assert_line(m, "saker_http2_streams_total 0");
    ck_assert_line(m, "saker_http2_connection_errors_total 0");
    ck_assert_line(m, "saker_http2_resets_total{by=\"client\"} 0");
    ck_assert_line(m, "saker_http2_resets_total{by=\"server\"} 0");
    free(m);
}
END_TEST

START_TEST(test_metrics_per_worker_families)
{
    char *m = render(VIEW_METRICS);
    ck_assert_line(m, "saker_worker_connections_open{slot=\"0\",generation=\"2\"} 2");
    ck_assert_line(m, "saker_worker_requests_total{slot=\"1\",generation=\"2\"} 100");
    ck_assert_ptr_nonnull(strstr(m, "\nsaker_worker_heartbeat_age_seconds{slot=\"0\",generation=\"2\"} 0."));
    ck_assert_ptr_null(strstr(m, "slot=\"7\"")); /* retired: gone */
    free(m);
}
END_TEST

/* Every sample belongs to a family announced just before with HELP and
 * TYPE; counters end in _total; every line is well formed. */
static void assert_has(const char *text, const char *part);

START_TEST(test_metrics_certificate_expiry)
{
    char *m = render(VIEW_METRICS);
    assert_has(m, "# TYPE saker_tls_certificate_not_after_seconds gauge\n"
                  "saker_tls_certificate_not_after_seconds{endpoint=\"secure\",sni=\"\","
                  "path=\"/etc/saker/site.pem\"} 1800000000\n"
                  "saker_tls_certificate_not_after_seconds{endpoint=\"secure\","
                  "sni=\"*.example.org\",path=\"/etc/we\\\"ird\\\\x.pem\"} 2\n");
    free(m);
}
END_TEST

START_TEST(test_metrics_format)
{
    char *m = render(VIEW_METRICS);
    regex_t sample, type;
    ck_assert_int_eq(regcomp(&sample, "^(saker_[a-z0-9_]+)(\\{[a-z]+=\"([^\"\\\\]|\\\\.)*\""
                                      "(,[a-z]+=\"([^\"\\\\]|\\\\.)*\")*\\})? "
                                      "[0-9]+(\\.[0-9]+)?$", REG_EXTENDED), 0);
    ck_assert_int_eq(regcomp(&type, "^# TYPE (saker_[a-z0-9_]+) (counter|gauge|histogram)$", REG_EXTENDED), 0);
    char family[128] = "", kind[16] = "";
    int samples = 0;
    for (char *line = strtok(m, "\n"); line != NULL; line = strtok(NULL, "\n")) {
        regmatch_t g[3];
        if (strncmp(line, "# HELP saker_", 13) == 0)
            continue;
        if (regexec(&type, line, 3, g, 0) == 0) {
            snprintf(family, sizeof family, "%.*s", (int)(g[1].rm_eo - g[1].rm_so), line + g[1].rm_so);
            snprintf(kind, sizeof kind, "%.*s", (int)(g[2].rm_eo - g[2].rm_so), line + g[2].rm_so);
            size_t n = strlen(family);
            bool total = n > 6 && strcmp(family + n - 6, "_total") == 0;
            ck_assert_msg(total == (strcmp(kind, "counter") == 0), "%s %s", family, kind);
            continue;
        }
        ck_assert_msg(regexec(&sample, line, 3, g, 0) == 0, "bad line '%s'", line);
        /* A histogram's samples are FAMILY_bucket, _sum and _count. */
        size_t name = (size_t)(g[1].rm_eo - g[1].rm_so), n = strlen(family);
        bool suffix = strcmp(kind, "histogram") == 0 && name > n &&
                      (strncmp(line + n, "_bucket", 7) == 0 || strncmp(line + n, "_sum", 4) == 0 ||
                       strncmp(line + n, "_count", 6) == 0);
        ck_assert_msg((name == n || suffix) && strncmp(line, family, n) == 0,
                      "'%s' outside its family %s", line, family);
        samples++;
    }
    ck_assert_int_gt(samples, 30);
    regfree(&sample);
    regfree(&type);
    free(m);
}
END_TEST

/* ---- JSON string escaping -------------------------------------------- */

START_TEST(test_json_string_escapes)
{
    char *s = render_string("a\"b\\c\nd\te\x01" "f", 64);
    ck_assert_str_eq(s, "\"a\\\"b\\\\c\\nd\\te\\u0001f\"");
    free(s);
    s = render_string("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 64); /* valid UTF-8 passes */
    ck_assert_str_eq(s, "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"");
    free(s);
    s = render_string("x\xff\xc0\xafy\xe2\x82", 64); /* invalid, overlong, cut short */
    ck_assert_str_eq(s, "\"x\\ufffd\\ufffd\\ufffdy\\ufffd\\ufffd\"");
    free(s);
    s = render_string("\xed\xa0\x80", 64); /* a UTF-16 surrogate */
    ck_assert_str_eq(s, "\"\\ufffd\\ufffd\\ufffd\"");
    free(s);
    s = render_string("abcdef", 3); /* not NUL-ended within max */
    ck_assert_str_eq(s, "\"abc\"");
    free(s);
    s = render_string(NULL, 3);
    ck_assert_str_eq(s, "\"\"");
    free(s);
}
END_TEST

START_TEST(test_json_validator_self_check)
{
    ck_assert(json_check("{\"a\":[1,2,{\"b\":null}],\"c\":\"x\\n\"}"));
    ck_assert(!json_check("{\"a\":1,}"));
    ck_assert(!json_check("{\"a\":\"\n\"}"));
    ck_assert(!json_check("[1 2]"));
}
END_TEST

/* ---- status --json --------------------------------------------------- */

static void assert_has(const char *json, const char *part)
{
    ck_assert_msg(strstr(json, part) != NULL, "no '%s' in:\n%s", part, json);
}

START_TEST(test_status_json_is_valid_and_complete)
{
    char *j = render(VIEW_JSON);
    ck_assert_msg(json_check(j), "invalid JSON:\n%s", j);
    ck_assert_int_eq(j[strlen(j) - 1], '\n');
    char part[256];
    snprintf(part, sizeof part, "{\"instance\":{\"master_pid\":%d,\"started_at\":", getpid());
    ck_assert_msg(strncmp(j, part, strlen(part)) == 0, "%s", j);
    snprintf(part, sizeof part, "\"state\":\"running\",\"generation\":2,"
             "\"workers_per_generation\":2,\"layout_version\":%d,\"shm_path\":",
             SHM_LAYOUT_VERSION);
    assert_has(j, part);
    snprintf(part, sizeof part, "\"shm_path\":\"%s\"}", path);
    assert_has(j, part);
    assert_has(j, "\"listeners\":[{\"endpoint\":\"public\",\"url\":\"http://127.0.0.1:0\","
                  "\"address\":\"127.0.0.1:41234\",\"port\":41234,\"kind\":\"tcp4\"},"
                  "{\"endpoint\":\"we\\\"ird\\n\\ufffd\",\"url\":\"\","
                  "\"address\":\"/run/a.sock\",\"port\":0,\"kind\":\"unix\"}]");
    assert_has(j, "\"certificates\":[{\"endpoint\":\"secure\",\"sni\":null,"
                  "\"path\":\"/etc/saker/site.pem\",\"subject\":\"CN=localhost\","
                  "\"not_before\":1700000000,\"not_after\":1800000000},"
                  "{\"endpoint\":\"secure\",\"sni\":\"*.example.org\","
                  "\"path\":\"/etc/we\\\"ird\\\\x.pem\",\"subject\":\"\","
                  "\"not_before\":1,\"not_after\":2}],\"certificates_unlisted\":3");
    assert_has(j, "\"reload\":{\"count\":1,\"ok\":false,"
                  "\"message\":\"saker.yaml:3:5: unknown key \\\"x\\\"\",\"duration_ms\":0,");
    assert_has(j, "\"totals\":{\"connections_accepted\":0,\"connections_open\":4,\"requests\":205,"
                  "\"responses\":{\"1xx\":0,\"2xx\":180,\"3xx\":0,\"4xx\":20,\"5xx\":0},"
                  "\"bytes_in\":0,\"bytes_out\":2000,\"rejections\":{\"malformed\":0,");
    assert_has(j, "\"body_too_large\":2,");
    assert_has(j, "\"response_rate\":0}}");
    assert_has(j, "\"master\":{\"worker_starts\":3,\"worker_deaths\":0,\"watchdog_kills\":0}");
    assert_has(j, "\"workers\":[{\"slot\":0,\"pid\":1000,\"cpu\":0,\"generation\":2,\"index\":0,"
                  "\"state\":\"running\",\"heartbeat_age_ms\":");
    assert_has(j, ",{\"slot\":1,\"pid\":1001,\"cpu\":1,");
    assert_has(j, "\"connections_open\":2,\"connections_accepted\":0,\"requests\":100,"
                  "\"responses\":{\"1xx\":0,\"2xx\":90,\"3xx\":0,\"4xx\":10,\"5xx\":0},"
                  "\"bytes_in\":0,\"bytes_out\":1000}");
    ck_assert_ptr_null(strstr(j, "\"slot\":7"));
    free(j);
}
END_TEST

START_TEST(test_status_json_with_no_workers_or_listeners)
{
    shm_detach(&shm);
    struct err err;
    ck_assert_int_eq(shm_create(&shm, path, 4, &err), SK_OK);
    char *j = render(VIEW_JSON);
    ck_assert_msg(json_check(j), "invalid JSON:\n%s", j);
    assert_has(j, "\"listeners\":[]");
    assert_has(j, "\"certificates\":[],\"certificates_unlisted\":0");
    assert_has(j, "\"workers\":[]}");
    assert_has(j, "\"reload\":{\"count\":0,\"ok\":true,\"message\":\"\"");
    free(j);
}
END_TEST

/* ---- a hostile segment: extreme times and counters ----------------- */

/* Times at both ends of int64_t and counters at the top of uint64_t:
 * the differences saturate (no signed overflow, which UBSan would stop
 * on), strftime's overflow gives "?", and every document stays valid. */
START_TEST(test_extreme_values_render)
{
    struct shm_header *h = shm.header;
    h->started_at = INT64_MIN;
    h->reload_finished_at = INT64_MIN;
    h->certificates[0].not_after = INT64_MIN;
    h->certificates[1].not_after = INT64_MAX;
    for (unsigned i = 0; i < 2; i++) {
        atomic_store(&shm.slots[i].counters[SHM_BYTES_IN], UINT64_MAX);
        atomic_store(&shm.slots[i].heartbeat_ms, UINT64_MAX);
        atomic_store(&shm.slots[i].started_at, INT64_MIN);
    }
    char *text = render(VIEW_STATUS);
    ck_assert_msg(strstr(text, ", up 106751991167300d15h30m7s,") != NULL, "%s", text);
    ck_assert_msg(strstr(text, "EXPIRED ? (106751991167300 days ago)") != NULL, "%s", text);
    ck_assert_msg(strstr(text, "expires ? (") != NULL, "%s", text);
    ck_assert_msg(strstr(text, "106751991167300d15h30m7s ago") != NULL, "%s", text);
    ck_assert_msg(strstr(text, "bytes        in 16.0EiB (18446744073709551615)") != NULL, "%s",
                  text);
    free(text);
    char *j = render(VIEW_JSON);
    ck_assert_msg(json_check(j), "invalid JSON:\n%s", j);
    assert_has(j, "\"uptime_seconds\":9223372036854775807,");
    assert_has(j, "\"not_after\":-9223372036854775808}");
    free(j);
    snprintf(h->certificates[1].sni, 64, "\xff\xc3\xa9\xed\xa0\x80");
    char *m = render(VIEW_METRICS);
    ck_assert_line(m, "saker_received_bytes_total 18446744073709551615");
    /* Label values stay UTF-8: a stray byte and a surrogate become U+FFFD. */
    assert_has(m, "sni=\"\xef\xbf\xbd\xc3\xa9\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\"");
    free(m);
}
END_TEST

/* Names a master wrote are not trusted on a terminal either: an upstream
 * and its URL with control characters print them as '?'. */
START_TEST(test_status_upstream_names_are_printable)
{
    ck_assert_ptr_nonnull(shm_upstream_claim(&shm, "ap\x1b[2Jp", "http://a\r\nb:1", 2, false));
    char *text = render(VIEW_STATUS);
    ck_assert_msg(strstr(text, "\n  ap?[2Jp http://a??b:1 up: 0 active,") != NULL, "%s", text);
    for (const char *c = text; *c != '\0'; c++)
        ck_assert_msg((unsigned char)*c >= 0x20 || *c == '\n', "control character in:\n%s", text);
    free(text);
}
END_TEST

static Suite *metrics_suite(void)
{
    Suite *s = suite_create("metrics");
    TCase *tc = tcase_create("render");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_metrics_totals_include_retired_workers);
    tcase_add_test(tc, test_metrics_every_rejection_reason_even_zero);
    tcase_add_test(tc, test_metrics_certificate_expiry);
    tcase_add_test(tc, test_metrics_per_worker_families);
    tcase_add_test(tc, test_metrics_format);
    tcase_add_test(tc, test_json_string_escapes);
    tcase_add_test(tc, test_json_validator_self_check);
    tcase_add_test(tc, test_status_json_is_valid_and_complete);
    tcase_add_test(tc, test_status_json_with_no_workers_or_listeners);
    tcase_add_test(tc, test_extreme_values_render);
    tcase_add_test(tc, test_status_upstream_names_are_printable);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(metrics_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
