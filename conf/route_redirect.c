/*
 * route_redirect.c - the options of `redirect_https:` and its check
 * against the endpoints; see route_redirect.h.
 */
#include "conf/route_redirect.h"

#include "conf/config_parse.h"

static int parse_redirect_port(const char *key, const char *text, size_t len, void *field,
                               struct err *why)
{
    uint64_t value;

    if (cfg_parse_uint(key, text, len, &value, why) != SK_OK || value < 1 || value > 65535)
        return err_set(why, "%s: expected a port from 1 to 65535, got '%.80s'", key, text);
    *(unsigned *)field = (unsigned)value;
    return SK_OK;
}

static int parse_redirect_status(const char *key, const char *text, size_t len, void *field,
                                 struct err *why)
{
    static const char *const statuses[] = {"301", "302", "303", "307", "308"};
    static const int values[] = {301, 302, 303, 307, 308};
    int i = CFG_CHOICE(key, text, statuses, why);

    (void)len;
    if (i < 0)
        return SK_ERROR;
    *(int *)field = values[i];
    return SK_OK;
}

static const struct cfg_option redirect_options[] = {
    {.name = "port", .offset = offsetof(struct route_redirect_https, port),
     .scalar = parse_redirect_port, .def = "443"},
    {.name = "status", .offset = offsetof(struct route_redirect_https, status),
     .scalar = parse_redirect_status, .def = "308"},
};

static const struct cfg_section redirect_section = {
    redirect_options, sizeof redirect_options / sizeof redirect_options[0], NULL};

static int redirect_validate(const struct config *config, const struct route *route,
                             const char *where, struct err *err)
{
    for (size_t e = 0; e < config->endpoint_count; e++) {
        const struct endpoint *ep = &config->endpoints[e];
        if (ep->url.scheme != URL_SCHEME_HTTPS ||
            (route->only_endpoint != NULL && route->only_endpoint != ep))
            continue;
        return err_set(err, "%s: redirect_https would answer https:// endpoint '%.80s' "
                            "with a redirect to itself: add 'endpoint:' naming the "
                            "http:// endpoint it is for", where, ep->name);
    }
    return SK_OK;
}

const struct handler_schema route_redirect_schema = {
    .name = "redirect_https",
    .section = &redirect_section,
    .config_size = sizeof(struct route_redirect_https),
    .validate = redirect_validate,
};
