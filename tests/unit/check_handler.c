/*
 * check_handler.c - handler runtimes found from their schema
 * (worker/handler.c): the built-in ones, and a kind registered at run
 * time, loaded from YAML and answering a real HTTP/1.1 request through
 * h1, with its init and fini run by the router.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "conf/config_parse.h"
#include "conf/route_redirect.h"
#include "conf/route_return.h"
#include "conf/route_static.h"
#include "conf/route_status.h"
#include "worker/h1.h"
#include "worker/handler.h"
#include "worker/worker.h"
#include "tests/unit/unit.h"

/* ---- `echo: { text: hi }` answers its text; its state counts requests ---- */

struct echo_config {
    char *text;
};

struct echo_state {
    unsigned requests;
};

static int inits, finis;

static const struct cfg_option echo_options[] = {
    {.name = "text", .offset = offsetof(struct echo_config, text), .scalar = cfg_parse_string,
     .required = true},
};

static const struct cfg_section echo_section = {echo_options, 1, NULL};

static void echo_release(void *handler_config)
{
    free(((struct echo_config *)handler_config)->text);
}

static const struct handler_schema echo_schema = {
    .name = "echo",
    .section = &echo_section,
    .config_size = sizeof(struct echo_config),
    .release = echo_release,
};

static int echo_init(const struct route *route, void **state, struct err *err)
{
    (void)route;
    if ((*state = calloc(1, sizeof(struct echo_state))) == NULL)
        return err_set(err, "echo: out of memory");
    inits++;
    return SK_OK;
}

static void echo_handle(struct exchange *ex, const struct route *route, void *state)
{
    const struct echo_config *echo = route->handler_config;
    struct echo_state *s = state;
    s->requests++;
    ex->status = 200;
    exchange_set_body(ex, echo->text, strlen(echo->text), EXCHANGE_BODY_STABLE);
    exchange_respond(ex);
}

static void echo_fini(void *state)
{
    free(state);
    finis++;
}

static const struct handler_ops echo_ops = {
    .schema = &echo_schema,
    .init = echo_init,
    .handle = echo_handle,
    .fini = echo_fini,
};

/* A kind the loader knows but no worker runs. */
static const struct handler_schema bare_schema = {
    .name = "bare",
    .section = &echo_section,
    .config_size = sizeof(struct echo_config),
    .release = echo_release,
};

#define EP "endpoints:\n  a:\n    url: http://127.0.0.1:8080\n"

static struct config *load(const char *text)
{
    struct err err = {{0}};
    struct config *config = config_load_string(text, strlen(text), "t.yaml", &err);
    ck_assert_msg(config != NULL, "%s", err.message);
    return config;
}

/* Everything h1 queued, as text. */
static const char *output(const struct outq *out)
{
    static char text[4096];
    size_t n = 0;
    for (size_t i = out->head; i < out->count && n < sizeof text - 1; i++) {
        const struct outq_segment *s = &out->segments[i];
        size_t len = s->len < sizeof text - 1 - n ? s->len : sizeof text - 1 - n;
        memcpy(text + n, s->kind == OUTQ_COPY ? out->buffer + s->offset : s->ptr, len);
        n += len;
    }
    text[n] = '\0';
    return text;
}

START_TEST(built_in_runtimes)
{
    ck_assert_ptr_eq(handler_find(&route_return_schema), &handler_return_ops);
    ck_assert_ptr_eq(handler_find(&route_static_schema), &handler_static_ops);
    ck_assert_ptr_eq(handler_find(&route_status_schema), &handler_status_ops);
    ck_assert_ptr_eq(handler_find(&route_redirect_schema), &handler_redirect_ops);
    ck_assert_ptr_null(handler_find(&echo_schema));
}
END_TEST

START_TEST(a_registered_handler_serves_a_request)
{
    struct err err = {{0}};
    ck_assert_msg(handler_register(&echo_ops, &err) == SK_OK, "%s", err.message);
    ck_assert_int_eq(handler_register(&echo_ops, &err), SK_OK);
    ck_assert_ptr_eq(handler_find(&echo_schema), &echo_ops);
    struct config *config = load(EP "routes:\n  - path: /e\n    echo: { text: from echo }\n"
                                    "  - path: /f\n    echo: { text: other }\n");
    struct worker worker;
    struct shm_slot slot = {0};
    inits = finis = 0;
    ck_assert_msg(worker_init_core(&worker, config, &err) == SK_OK, "%s", err.message);
    ck_assert_int_eq(inits, 2);
    worker.slot = &slot;
    struct outq out;
    struct h1 h1;
    outq_init(&out);
    h1_init(&h1, &worker, &out);
    const char *get = "GET /e HTTP/1.1\r\nHost: a\r\n\r\n";
    ck_assert_int_eq(h1_feed(&h1, get, strlen(get)), H1_CONTINUE);
    const char *o = output(&out);
    ck_assert_msg(strncmp(o, "HTTP/1.1 200 OK\r\n", 17) == 0, "%s", o);
    ck_assert_ptr_nonnull(strstr(o, "\r\nContent-Length: 9\r\n\r\nfrom echo"));
    struct echo_state *state = worker.router.entries[0].state;
    ck_assert_uint_eq(state->requests, 1);
    h1_destroy(&h1);
    outq_clear(&out);
    worker_destroy_core(&worker);
    ck_assert_int_eq(finis, 2);
    config_free(config);
}
END_TEST

START_TEST(a_kind_without_runtime_is_refused_by_the_router)
{
    struct err err = {{0}};
    ck_assert_int_eq(handler_schema_register(&bare_schema, NULL, &err), SK_OK);
    struct config *config = load(EP "routes:\n  - path: /\n    return: { status: 204 }\n"
                                    "  - path: /b\n    bare: { text: x }\n");
    struct router router;
    ck_assert_int_eq(router_build(&router, config, &err), SK_ERROR);
    ck_assert_str_eq(err.message, "route '/b': handler 'bare' has no runtime in this worker");
    ck_assert_ptr_null(router.entries);
    config_free(config);
}
END_TEST

START_TEST(registration_needs_a_schema_and_handle)
{
    struct err err = {{0}};
    struct handler_ops no_handle = {.schema = &echo_schema};
    ck_assert_int_eq(handler_register(&no_handle, &err), SK_ERROR);
    ck_assert_str_eq(err.message, "handler: a schema and a handle function are required");
    struct handler_ops no_schema = {.handle = echo_handle};
    ck_assert_int_eq(handler_register(&no_schema, &err), SK_ERROR);
    struct handler_ops taken = {.schema = &route_static_schema, .handle = echo_handle};
    ck_assert_int_eq(handler_register(&taken, &err), SK_ERROR);
    ck_assert_str_eq(err.message, "handler 'static': registered twice");
}
END_TEST

static Suite *handler_suite(void)
{
    Suite *s = suite_create("handler");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, built_in_runtimes);
    tcase_add_test(tc, a_registered_handler_serves_a_request);
    tcase_add_test(tc, a_kind_without_runtime_is_refused_by_the_router);
    tcase_add_test(tc, registration_needs_a_schema_and_handle);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return unit_run(handler_suite());
}
