/*
 * hello.c - the smallest saker module: a fixed text, from a route's
 * options.
 *
 *   modules:
 *     - path: /usr/lib/saker/modules/hello.so
 *   routes:
 *     - path: /hello
 *       module: { handler: hello, text: "Hello, world!\n" }
 *
 * Build it out of tree:
 *   cc -shared -fPIC $(pkg-config --cflags saker-module) hello.c -o hello.so
 */
#include <stddef.h>
#include <string.h>

#include <saker/module.h>

/* The default text; the tests build hello.so twice with another one, to
 * see a reload pick up a module rebuilt in place. */
#ifndef HELLO_TEXT
#define HELLO_TEXT "Hello, world!\n"
#endif

struct hello_options {
    char *text;
    char *content_type;
};

static const struct saker_option hello_options[] = {
    {"text", SAKER_OPTION_STRING, offsetof(struct hello_options, text), HELLO_TEXT, false},
    {"content_type", SAKER_OPTION_STRING, offsetof(struct hello_options, content_type),
     "text/plain", false},
    {NULL, 0, 0, NULL, false},
};

/* The route's options are its state: they live as long as the route. */
static int hello_init(saker_worker *w, const void *options, void *module_state, void **state,
                      saker_err *err)
{
    (void)w, (void)module_state, (void)err;
    *state = (void *)options;
    return SAKER_OK;
}

static void hello_handle(saker_exchange *ex, void *state)
{
    const struct hello_options *o = state;
    saker_exchange_add_header(ex, "Content-Type", o->content_type);
    saker_exchange_respond(ex, 200, o->text, strlen(o->text));
}

static const struct saker_handler hello_handlers[] = {
    {.name = "hello", .options = hello_options, .config_size = sizeof(struct hello_options),
     .init = hello_init, .handle = hello_handle},
    {.name = NULL},
};

SAKER_MODULE_EXPORT saker_module = {
    .abi = SAKER_MODULE_ABI,
    .name = "hello",
    .handlers = hello_handlers,
};
