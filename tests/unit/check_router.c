/* check_router.c - worker/router.c: host and path-prefix matching, order. */
#include <check.h>
#include <string.h>

#include "conf/route_return.h"
#include "worker/router.h"
#include "tests/unit/unit.h"

static bool path_matches(const char *prefix, const char *path)
{
    return router_path_matches(prefix, strlen(prefix), path, strlen(path));
}

static bool host_matches(const char *pattern, const char *host)
{
    return router_host_matches(pattern, host, strlen(host));
}

START_TEST(prefix_matches_on_segment_boundaries)
{
    ck_assert(path_matches("/api", "/api"));
    ck_assert(path_matches("/api", "/api/"));
    ck_assert(path_matches("/api", "/api/x/y"));
    ck_assert(!path_matches("/api", "/apix"));
    ck_assert(!path_matches("/api", "/ap"));
    ck_assert(!path_matches("/api", "/"));
    ck_assert(path_matches("/", "/"));
    ck_assert(path_matches("/", "/anything/at/all"));
    ck_assert(path_matches("/a/b", "/a/b/c"));
    ck_assert(!path_matches("/a/b", "/a/bc"));
}
END_TEST

START_TEST(hosts_match_exactly_or_by_wildcard)
{
    ck_assert(host_matches("example.com", "example.com"));
    ck_assert(host_matches("example.com", "EXAMPLE.com"));
    ck_assert(!host_matches("example.com", "www.example.com"));
    ck_assert(!host_matches("example.com", "example.co"));
    ck_assert(host_matches("*.example.com", "a.example.com"));
    ck_assert(host_matches("*.example.com", "a.b.example.com"));
    ck_assert(!host_matches("*.example.com", "example.com"));
    ck_assert(!host_matches("*.example.com", "aexample.com"));
    ck_assert(!host_matches("*.example.com", ""));
}
END_TEST

START_TEST(first_matching_route_wins)
{
    struct route routes[3] = {
        {.path = "/plaintext", .path_len = 10, .handler = &route_return_schema},
        {.host = "static.example.com", .path = "/", .path_len = 1, .handler = &route_return_schema},
        {.path = "/", .path_len = 1, .handler = &route_return_schema},
    };
    struct config config = {.routes = routes, .route_count = 3};
    struct router router;
    ck_assert_int_eq(router_build(&router, &config, NULL), SK_OK);
    const struct router_entry *e = router_match(&router, NULL, "x", 1, "/plaintext", 10);
    ck_assert_ptr_eq(e->route, &routes[0]);
    e = router_match(&router, NULL, "static.example.com", 18, "/plaintext", 10);
    ck_assert_ptr_eq(e->route, &routes[0]);
    e = router_match(&router, NULL, "static.example.com", 18, "/img/a.png", 10);
    ck_assert_ptr_eq(e->route, &routes[1]);
    e = router_match(&router, NULL, "other", 5, "/img/a.png", 10);
    ck_assert_ptr_eq(e->route, &routes[2]);
    router_destroy(&router);
}
END_TEST

START_TEST(a_route_for_one_endpoint_skips_the_others)
{
    struct endpoint endpoints[2] = {{.name = "public"}, {.name = "admin"}};
    struct route routes[2] = {
        {.path = "/metrics", .path_len = 8, .handler = &route_return_schema,
         .only_endpoint = &endpoints[1]},
        {.path = "/", .path_len = 1, .handler = &route_return_schema},
    };
    struct config config = {.routes = routes, .route_count = 2};
    struct router router;
    ck_assert_int_eq(router_build(&router, &config, NULL), SK_OK);
    ck_assert_ptr_eq(router_match(&router, &endpoints[1], "", 0, "/metrics", 8)->route,
                     &routes[0]);
    ck_assert_ptr_eq(router_match(&router, &endpoints[0], "", 0, "/metrics", 8)->route,
                     &routes[1]);
    ck_assert_ptr_eq(router_match(&router, NULL, "", 0, "/metrics", 8)->route, &routes[1]);
    router_destroy(&router);
}
END_TEST

START_TEST(no_route_means_no_match)
{
    struct route routes[1] = {{.path = "/api", .path_len = 4, .handler = &route_return_schema}};
    struct config config = {.routes = routes, .route_count = 1};
    struct router router;
    ck_assert_int_eq(router_build(&router, &config, NULL), SK_OK);
    ck_assert_ptr_null(router_match(&router, NULL, "", 0, "/apix", 5));
    ck_assert_ptr_null(router_match(&router, NULL, "", 0, "/", 1));
    router_destroy(&router);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("router");
    TCase *t = tcase_create("router");
    tcase_add_test(t, prefix_matches_on_segment_boundaries);
    tcase_add_test(t, hosts_match_exactly_or_by_wildcard);
    tcase_add_test(t, first_matching_route_wins);
    tcase_add_test(t, a_route_for_one_endpoint_skips_the_others);
    tcase_add_test(t, no_route_means_no_match);
    suite_add_tcase(s, t);
    return unit_run(s);
}
