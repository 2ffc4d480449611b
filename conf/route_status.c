/*
 * route_status.c - the options of `status:`; see route_status.h.
 */
#include "conf/route_status.h"

#include "conf/config_parse.h"

static int parse_status_kind(const char *key, const char *text, size_t len, void *field,
                             struct err *why)
{
    static const char *const kinds[] = {"liveness", "readiness", "metrics"}; /* enum order */
    int i = CFG_CHOICE(key, text, kinds, why);

    (void)len;
    if (i < 0)
        return SK_ERROR;
    *(enum route_status_kind *)field = (enum route_status_kind)i;
    return SK_OK;
}

static const struct cfg_option status_options[] = {
    {.name = "kind", .offset = offsetof(struct route_status, kind), .scalar = parse_status_kind,
     .required = true},
};

static const struct cfg_section status_section = {
    status_options, sizeof status_options / sizeof status_options[0], NULL};

const struct handler_schema route_status_schema = {
    .name = "status",
    .section = &status_section,
    .config_size = sizeof(struct route_status),
};
