/*
 * check_config_scan.c - finding shm_path in a config the loader rejects
 * (cli/config_scan.c), so sakerctl can still stop or reload an instance
 * whose config was broken after it started.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "tests/unit/unit.h"

static char file[64];

static int scan(const char *yaml, char **path, struct err *err)
{
    snprintf(file, sizeof file, "/tmp/check_config_scan.XXXXXX");
    int fd = mkstemp(file);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, yaml, strlen(yaml)), (int)strlen(yaml));
    close(fd);
    *path = NULL;
    int rc = cli_scan_shm_path(file, path, err);
    unlink(file);
    return rc;
}

START_TEST(test_found_despite_unknown_keys)
{
    char *p;
    struct err err;
    ck_assert_int_eq(scan("workers: 2\nbogus_key: {a: [1, 2]}\nshm_path: /run/s.shm\n"
                          "routes: nonsense\n", &p, &err), SK_OK);
    ck_assert_str_eq(p, "/run/s.shm");
    free(p);
}
END_TEST

START_TEST(test_nested_shm_path_is_not_ours)
{
    char *p;
    struct err err;
    ck_assert_int_eq(scan("endpoints:\n  a:\n    shm_path: /nested\nlist: [shm_path, x]\n"
                          "shm_path: /top\n", &p, &err), SK_OK);
    ck_assert_str_eq(p, "/top");
    free(p);
    ck_assert_int_eq(scan("endpoints:\n  shm_path: /nested\n", &p, &err), SK_DECLINED);
    ck_assert_ptr_null(p);
}
END_TEST

START_TEST(test_value_named_shm_path_is_no_key)
{
    char *p;
    struct err err;
    ck_assert_int_eq(scan("user: shm_path\ngroup: /x\n", &p, &err), SK_DECLINED);
}
END_TEST

START_TEST(test_syntax_error_after_the_key)
{
    char *p;
    struct err err;
    ck_assert_int_eq(scan("shm_path: /early\nroutes: [\n  - : : :\n", &p, &err), SK_OK);
    ck_assert_str_eq(p, "/early");
    free(p);
}
END_TEST

START_TEST(test_syntax_error_before_the_key)
{
    char *p;
    struct err err;
    ck_assert_int_eq(scan("routes: [\n  {\nshm_path: /late\n", &p, &err), SK_ERROR);
    ck_assert_ptr_nonnull(strstr(err.message, "broken before any shm_path"));
    ck_assert_int_eq(cli_scan_shm_path("/nonexistent/saker.yaml", &p, &err), SK_ERROR);
    ck_assert_ptr_nonnull(strstr(err.message, "No such file"));
}
END_TEST

START_TEST(test_empty_document)
{
    char *p;
    struct err err;
    ck_assert_int_eq(scan("", &p, &err), SK_DECLINED);
    ck_assert_int_eq(scan("# only a comment\n", &p, &err), SK_DECLINED);
}
END_TEST

static Suite *scan_suite(void)
{
    Suite *s = suite_create("config_scan");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_found_despite_unknown_keys);
    tcase_add_test(tc, test_nested_shm_path_is_not_ours);
    tcase_add_test(tc, test_value_named_shm_path_is_no_key);
    tcase_add_test(tc, test_syntax_error_after_the_key);
    tcase_add_test(tc, test_syntax_error_before_the_key);
    tcase_add_test(tc, test_empty_document);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return unit_run(scan_suite());
}
