/*
 * check_config_modules.c - `modules:` and `module:` routes in the config
 * loader (conf/config_modules.c, conf/route_module.c), with a loader of
 * the test's own that hands out descriptors compiled into this suite
 * (the real one, a memfd and dlopen, is driven by test_module.py).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/config.h"
#include "conf/config_module.h"
#include "conf/route_module.h"
#include "include/saker/module.h"
#include "tests/unit/unit.h"

struct greet_config {
    char *greeting;
    uint64_t times;
    bool loud;
    uint64_t limit;
    uint64_t wait;
};

static const struct saker_option greet_options[] = {
    {"greeting", SAKER_OPTION_STRING, offsetof(struct greet_config, greeting), NULL, true},
    {"times", SAKER_OPTION_UINT, offsetof(struct greet_config, times), "1", false},
    {"loud", SAKER_OPTION_BOOL, offsetof(struct greet_config, loud), "no", false},
    {"limit", SAKER_OPTION_SIZE, offsetof(struct greet_config, limit), "1KiB", false},
    {"wait", SAKER_OPTION_DURATION, offsetof(struct greet_config, wait), "2s", false},
    {NULL, 0, 0, NULL, false},
};

static int loads;

static int greet_load(const void *config, saker_err *err)
{
    const struct greet_config *c = config;
    loads++;
    if (c->times > 10)
        return saker_err_set(err, "times: at most 10");
    return SAKER_OK;
}

static void handle(saker_exchange *ex, void *state)
{
    (void)ex, (void)state;
}

static int greet_check(const void *options, saker_err *err)
{
    const struct greet_config *c = options;
    if (c->loud && c->times > 1)
        return saker_err_set(err, "loud greets once");
    return SAKER_OK;
}

static const struct saker_handler greet_handlers[] = {
    {.name = "greet", .options = greet_options, .config_size = sizeof(struct greet_config),
     .check = greet_check, .handle = handle},
    {.name = "plain", .handle = handle, .reads_body = true},
    {.name = NULL},
};

static const struct saker_module greet = {
    .abi = SAKER_MODULE_ABI, .name = "greet", .options = greet_options,
    .config_size = sizeof(struct greet_config), .load = greet_load,
    .handlers = greet_handlers};

/* Writes outside its struct: "greeting" at an offset past config_size. */
static const struct saker_option wild_options[] = {
    {"greeting", SAKER_OPTION_STRING, 64, NULL, false}, {NULL, 0, 0, NULL, false}};
static const struct saker_module wild = {.abi = SAKER_MODULE_ABI, .name = "wild",
                                         .options = wild_options, .config_size = 16};
static const struct saker_handler twin_handlers[] = {{.name = "greet", .handle = handle},
                                                     {.name = NULL}};
static const struct saker_module twin = {.abi = SAKER_MODULE_ABI, .name = "twin",
                                         .handlers = twin_handlers};

static int opened, closed;

static int fake_open(const char *path, void **handle_out, const struct saker_module **desc,
                     struct err *why)
{
    static const struct { const char *path; const struct saker_module *desc; } known[] = {
        {"greet.so", &greet}, {"wild.so", &wild}, {"twin.so", &twin}};
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (strcmp(path, known[i].path) == 0) {
            *desc = known[i].desc;
            *handle_out = (void *)known[i].desc;
            opened++;
            return SK_OK;
        }
    return err_set(why, "cannot open: No such file or directory");
}

static void fake_close(void *h)
{
    (void)h;
    closed++;
}

static const struct config_module_loader fake = {fake_open, fake_close};

#define EP "endpoints:\n  a:\n    url: http://127.0.0.1:8080\n"

static struct config *load(const char *text, struct err *err)
{
    config_set_module_loader(&fake);
    return config_load_string(text, strlen(text), "t.yaml", err);
}

static void assert_error(const char *text, const char *message)
{
    struct err err = {{0}};
    struct config *config = load(text, &err);
    ck_assert_msg(config == NULL, "loaded: %s", text);
    ck_assert_str_eq(err.message, message);
}

START_TEST(modules_load_before_the_routes_that_name_them)
{
    struct err err = {{0}};
    opened = closed = loads = 0;
    /* routes first in the file: modules are read first all the same */
    struct config *c = load(EP "routes:\n  - path: /g\n    module: { handler: greet, "
                               "greeting: hi, loud: yes, limit: 2KiB, wait: 250ms }\n"
                               "  - path: /p\n    module: { handler: plain }\n"
                               "modules:\n  - path: greet.so\n    config: { greeting: yo, "
                               "times: 3 }\n", &err);
    ck_assert_msg(c != NULL, "%s", err.message);
    ck_assert_uint_eq(c->module_count, 1);
    ck_assert_ptr_eq(c->modules[0].desc, &greet);
    const struct greet_config *mc = c->modules[0].options;
    ck_assert_str_eq(mc->greeting, "yo");
    ck_assert_uint_eq(mc->times, 3);
    ck_assert_int_eq(loads, 1);
    ck_assert_ptr_eq(c->routes[0].handler, &route_module_schema);
    const struct route_module *rm = c->routes[0].handler_config;
    ck_assert_ptr_eq(rm->handler, &greet_handlers[0]);
    ck_assert_ptr_eq(rm->module, &c->modules[0]);
    const struct greet_config *rc = rm->options;
    ck_assert_str_eq(rc->greeting, "hi");
    ck_assert_uint_eq(rc->times, 1); /* the default */
    ck_assert(rc->loud);
    ck_assert_uint_eq(rc->limit, 2048);
    ck_assert_uint_eq(rc->wait, 250);
    rm = c->routes[1].handler_config;
    ck_assert_ptr_eq(rm->handler, &greet_handlers[1]);
    config_free(c);
    ck_assert_int_eq(closed, 1);
}
END_TEST

START_TEST(bad_modules_and_options_name_their_place)
{
    assert_error(EP "modules:\n  - path: nope.so\n",
                 "t.yaml:5:11: module 'nope.so': cannot open: No such file or directory");
    assert_error(EP "modules:\n  - config: {}\n", "t.yaml:5:5: module: 'path' is required");
    assert_error(EP "modules:\n  - path: greet.so\n    conf: {}\n",
                 "t.yaml:6:5: module: unknown option 'conf' (expected path or config)");
    assert_error(EP "modules:\n  - path: greet.so\n",
                 "t.yaml:5:11: module 'greet.so': module 'greet' config: missing required key "
                 "'greeting'");
    assert_error(EP "modules:\n  - path: greet.so\n    config: { greeting: a, times: 11 }\n",
                 "t.yaml:5:11: module 'greet.so': load failed: times: at most 10");
    assert_error(EP "modules:\n  - path: greet.so\n    config: { greeting: a, loud: maybe }\n",
                 "t.yaml:6:34: module 'greet.so': loud: expected true or false, got 'maybe'");
    assert_error(EP "modules:\n  - path: wild.so\n",
                 "t.yaml:5:11: module 'wild.so': config option 'greeting': offset 64 outside "
                 "its 16-byte struct");
    assert_error(EP "modules:\n  - path: greet.so\n    config: { greeting: a }\n"
                    "  - path: twin.so\n",
                 "t.yaml:7:11: module 'twin.so': handler 'greet' is also module 'greet.so''s");
}
END_TEST

START_TEST(module_routes_are_checked_against_the_handler)
{
    const char *mods = EP "modules:\n  - path: greet.so\n    config: { greeting: a }\n";
    char text[1024];
    snprintf(text, sizeof text, "%sroutes:\n  - path: /\n    module: { handler: gret }\n", mods);
    assert_error(text, "t.yaml:9:24: module: handler 'gret' is not a handler of the loaded "
                       "modules; did you mean 'greet'?");
    snprintf(text, sizeof text, "%sroutes:\n  - path: /\n    module: { greeting: a }\n", mods);
    assert_error(text, "t.yaml:9:13: module: missing required key 'handler'");
    snprintf(text, sizeof text, "%sroutes:\n  - path: /\n    module: { handler: greet }\n",
             mods);
    assert_error(text, "t.yaml:9:13: module handler 'greet': missing required key 'greeting'");
    snprintf(text, sizeof text, "%sroutes:\n  - path: /\n    module: { handler: greet, "
             "greeting: a, tims: 2 }\n", mods);
    assert_error(text, "t.yaml:9:44: unknown key 'tims'; did you mean 'times'?");
    snprintf(text, sizeof text, "%sroutes:\n  - path: /\n    module: { handler: greet, "
             "greeting: a, loud: yes, times: 2 }\n", mods);
    assert_error(text, "t.yaml:9:13: module 'greet.so': handler 'greet': loud greets once");
    assert_error(EP "routes:\n  - path: /\n    module: { handler: greet }\n",
                 "t.yaml:6:24: module: handler 'greet': no module is loaded (add it under "
                 "'modules')");
}
END_TEST

/* sakerctl installs no loader: it records modules and does not check. */
START_TEST(without_a_loader_nothing_is_opened)
{
    struct err err = {{0}};
    opened = 0;
    config_set_module_loader(NULL);
    const char *text = EP "modules:\n  - path: /nowhere/x.so\n    config: { any: thing }\n"
                          "routes:\n  - path: /\n    module: { handler: x, what: ever }\n";
    struct config *c = config_load_string(text, strlen(text), "t.yaml", &err);
    ck_assert_msg(c != NULL, "%s", err.message);
    ck_assert_int_eq(opened, 0);
    ck_assert_ptr_null(c->modules[0].desc);
    ck_assert_str_eq(c->modules[0].path, "/nowhere/x.so");
    config_free(c);
}
END_TEST

static Suite *config_modules_suite(void)
{
    Suite *s = suite_create("config_modules");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, modules_load_before_the_routes_that_name_them);
    tcase_add_test(tc, bad_modules_and_options_name_their_place);
    tcase_add_test(tc, module_routes_are_checked_against_the_handler);
    tcase_add_test(tc, without_a_loader_nothing_is_opened);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return unit_run(config_modules_suite());
}
