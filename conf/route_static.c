/*
 * route_static.c - the options of `static:`; see route_static.h.
 */
#include "conf/route_static.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "conf/config_parse.h"

int cfg_check_static_root(const char *root, struct err *why)
{
    struct stat st;

    if (stat(root, &st) != 0)
        return err_set_errno(why, errno, "static root '%.200s'", root);
    if (!S_ISDIR(st.st_mode))
        return err_set_errno(why, ENOTDIR, "static root '%.200s'", root);
    return SK_OK;
}

static int parse_root(const char *key, const char *text, size_t len, void *field,
                      struct err *why)
{
    if (cfg_check_static_root(text, why) != SK_OK)
        return SK_ERROR;
    return cfg_parse_string(key, text, len, field, why);
}

static int parse_index(const char *key, const char *text, size_t len, void *field,
                       struct err *why)
{
    (void)len;
    if (strchr(text, '/') || strcmp(text, ".") == 0 || strcmp(text, "..") == 0)
        return err_set(why, "%s: expected a file name without '/', got '%.80s'", key, text);
    return cfg_parse_string(key, text, len, field, why);
}

static const struct cfg_option static_options[] = {
    {.name = "root", .offset = offsetof(struct route_static, root), .scalar = parse_root,
     .required = true},
    {.name = "index", .offset = offsetof(struct route_static, index),
     .scalar = parse_index, .def = "index.html"},
};

static const struct cfg_section static_section = {
    static_options, sizeof static_options / sizeof static_options[0], NULL};

static void static_release(void *handler_config)
{
    struct route_static *files = handler_config;
    free(files->root);
    free(files->index);
}

const struct handler_schema route_static_schema = {
    .name = "static",
    .section = &static_section,
    .config_size = sizeof(struct route_static),
    .release = static_release,
};
