/*
 * check_handler_schema.c - the registry of handler kinds the config loader
 * knows (conf/handler_schema.c): the built-in kinds, and a kind registered
 * at run time whose options, messages, check and release go through the
 * same option tables as the built-in ones.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "conf/config.h"
#include "conf/config_parse.h"
#include "conf/handler_schema.h"
#include "conf/route_proxy.h"
#include "conf/route_redirect.h"
#include "conf/route_module.h"
#include "conf/route_return.h"
#include "conf/route_static.h"
#include "conf/route_status.h"
#include "tests/unit/unit.h"

/* ---- a kind of the test's own: `echo: { text: hi, times: 2 }` ---- */

struct echo_config {
    char *text;
    uint64_t times;
};

static int released;

static const struct cfg_option echo_options[] = {
    {.name = "text", .offset = offsetof(struct echo_config, text), .scalar = cfg_parse_string,
     .required = true},
    {.name = "times", .offset = offsetof(struct echo_config, times), .scalar = cfg_parse_uint,
     .def = "1"},
};

static const struct cfg_section echo_section = {echo_options, 2, NULL};

/* Needs the endpoints: refuses more repetitions than there are endpoints. */
static int echo_validate(const struct config *config, const struct route *route,
                         const char *where, struct err *err)
{
    const struct echo_config *echo = route->handler_config;
    if (echo->times > config->endpoint_count)
        return err_set(err, "%s: echo.times is more than the %zu endpoints", where,
                       config->endpoint_count);
    return SK_OK;
}

static void echo_release(void *handler_config)
{
    struct echo_config *echo = handler_config;
    free(echo->text);
    released++;
}

static const struct handler_schema echo_schema = {
    .name = "echo",
    .section = &echo_section,
    .config_size = sizeof(struct echo_config),
    .validate = echo_validate,
    .release = echo_release,
};

#define EP "endpoints:\n  a:\n    url: http://127.0.0.1:8080\n"

static struct config *load(const char *text, struct err *err)
{
    return config_load_string(text, strlen(text), "t.yaml", err);
}

static void assert_error(const char *text, const char *message)
{
    struct err err = {{0}};
    struct config *config = load(text, &err);
    ck_assert_msg(config == NULL, "loaded: %s", text);
    ck_assert_str_eq(err.message, message);
}

/* What the loader keeps for a worker; opaque to it (CK_FORK=no runs every
 * test in one process, so each registers the same pair). */
static int echo_runtime;

static void register_echo(void)
{
    struct err err = {{0}};
    ck_assert_msg(handler_schema_register(&echo_schema, &echo_runtime, &err) == SK_OK, "%s",
                  err.message);
}

/* ---- tests ---- */

START_TEST(built_in_kinds_in_order)
{
    ck_assert_uint_eq(handler_schema_count(), 6);
    ck_assert_ptr_eq(handler_schema_at(0), &route_return_schema);
    ck_assert_ptr_eq(handler_schema_at(1), &route_static_schema);
    ck_assert_ptr_eq(handler_schema_at(2), &route_status_schema);
    ck_assert_ptr_eq(handler_schema_at(3), &route_redirect_schema);
    ck_assert_ptr_eq(handler_schema_at(4), &route_proxy_schema);
    ck_assert_ptr_eq(handler_schema_at(5), &route_module_schema);
    ck_assert_ptr_null(handler_schema_at(6));
    ck_assert_ptr_eq(handler_schema_find("redirect_https"), &route_redirect_schema);
    ck_assert_ptr_null(handler_schema_find("echo"));
    ck_assert_ptr_null(handler_schema_runtime(&route_static_schema));
}
END_TEST

START_TEST(a_registered_kind_is_loaded_and_released)
{
    struct err err = {{0}};
    register_echo();
    register_echo(); /* the same pair again: nothing changes */
    ck_assert_uint_eq(handler_schema_count(), 7);
    ck_assert_ptr_eq(handler_schema_find("echo"), &echo_schema);
    ck_assert_ptr_eq(handler_schema_runtime(&echo_schema), &echo_runtime);

    struct config *c = load(EP "routes:\n  - path: /e\n    echo: { text: hi }\n"
                               "  - path: /\n    return: { status: 204 }\n", &err);
    ck_assert_msg(c != NULL, "%s", err.message);
    ck_assert_ptr_eq(c->routes[0].handler, &echo_schema);
    const struct echo_config *echo = c->routes[0].handler_config;
    ck_assert_str_eq(echo->text, "hi");
    ck_assert_uint_eq(echo->times, 1); /* the default */
    ck_assert_ptr_eq(c->routes[1].handler, &route_return_schema);
    released = 0;
    config_free(c);
    ck_assert_int_eq(released, 1);
}
END_TEST

START_TEST(a_registered_kind_has_the_loader_s_messages)
{
    register_echo();
    assert_error(EP "routes:\n  - path: /\n",
                 "t.yaml:5:5: route: no handler: add 'return', 'static', 'status', "
                 "'redirect_https', 'proxy', 'module' or 'echo'");
    assert_error(EP "routes:\n  - path: /\n    ecoh: { text: hi }\n",
                 "t.yaml:6:5: unknown key 'ecoh'; did you mean 'echo'?");
    assert_error(EP "routes:\n  - path: /\n    echo: { times: 2 }\n",
                 "t.yaml:6:11: echo: missing required key 'text'");
    assert_error(EP "routes:\n  - path: /\n    echo: { text: hi, tims: 2 }\n",
                 "t.yaml:6:23: unknown key 'tims'; did you mean 'times'?");
    assert_error(EP "routes:\n  - path: /\n    echo:\n",
                 "t.yaml:6:10: echo: expected a mapping, got null");
    assert_error(EP "routes:\n  - path: /\n    echo: { text: hi }\n    static: { root: / }\n",
                 "t.yaml:7:5: route: has both 'echo' and 'static'; keep one handler");
    released = 0;
    /* text is parsed before times fails: what it owns is released. */
    assert_error(EP "routes:\n  - path: /\n    echo: { text: hi, times: many }\n",
                 "t.yaml:6:30: times: expected a non-negative integer, got 'many'");
    ck_assert_int_eq(released, 1);
}
END_TEST

START_TEST(a_registered_kind_checks_the_endpoints)
{
    register_echo();
    assert_error(EP "routes:\n  - path: /e\n    echo: { text: hi, times: 2 }\n",
                 "t.yaml:5:5: route '/e': echo.times is more than the 1 endpoints");
    struct err err = {{0}};
    struct config *c = load(EP "  b:\n    url: http://127.0.0.1:8081\n"
                               "routes:\n  - path: /e\n    echo: { text: hi, times: 2 }\n",
                            &err);
    ck_assert_msg(c != NULL, "%s", err.message);
    /* --urls replaces the endpoints: the check runs again. */
    ck_assert_int_eq(config_override_urls(c, "http://127.0.0.1:0", &err), SK_ERROR);
    ck_assert_str_eq(err.message, "t.yaml:7:5: route '/e': echo.times is more than the 1 "
                                  "endpoints (--urls replaced the file's endpoints)");
    config_free(c);
}
END_TEST

static struct handler_schema named(const char *name)
{
    return (struct handler_schema){.name = name, .section = &echo_section};
}

START_TEST(registration_refuses_what_a_route_could_not_name)
{
    struct err err = {{0}};
    struct handler_schema s = named("Echo");
    ck_assert_int_eq(handler_schema_register(&s, NULL, &err), SK_ERROR);
    ck_assert_str_eq(err.message, "handler 'Echo': a name is lower-case letters, digits and '_'");
    s = named("");
    ck_assert_int_eq(handler_schema_register(&s, NULL, &err), SK_ERROR);
    s = named("path");
    ck_assert_int_eq(handler_schema_register(&s, NULL, &err), SK_ERROR);
    ck_assert_str_eq(err.message, "handler 'path': the name is a route option");
    s = named("static");
    ck_assert_int_eq(handler_schema_register(&s, NULL, &err), SK_ERROR);
    ck_assert_str_eq(err.message, "handler 'static': registered twice");
    s = (struct handler_schema){.name = "bare"};
    ck_assert_int_eq(handler_schema_register(&s, NULL, &err), SK_ERROR);
    ck_assert_str_eq(err.message, "handler 'bare': no option table");
    register_echo();
    static int other;
    ck_assert_int_eq(handler_schema_register(&echo_schema, &other, &err), SK_ERROR);
    ck_assert_uint_eq(handler_schema_count(), 7);
}
END_TEST

static Suite *handler_schema_suite(void)
{
    Suite *s = suite_create("handler_schema");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, built_in_kinds_in_order);
    tcase_add_test(tc, a_registered_kind_is_loaded_and_released);
    tcase_add_test(tc, a_registered_kind_has_the_loader_s_messages);
    tcase_add_test(tc, a_registered_kind_checks_the_endpoints);
    tcase_add_test(tc, registration_refuses_what_a_route_could_not_name);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return unit_run(handler_schema_suite());
}
