/*
 * config_hsts.c - an https:// endpoint's `hsts:` option: the
 * Strict-Transport-Security header (RFC 6797) sent on its every response.
 *
 *   endpoints:
 *     secure:
 *       url: https://0.0.0.0:443
 *       hsts: { max_age: 365d, include_subdomains: true, preload: false }
 *
 * Off unless set, as in Kestrel (UseHsts is opt-in) and nginx (add_header):
 * a browser that saw the header refuses plain HTTP to the host for max_age,
 * which an operator must choose knowingly. The line is rendered once here,
 * so a response pays a copy and nothing else. `preload` asks browsers to
 * ship the host as HTTPS-only; their lists require includeSubDomains and a
 * max-age of at least a year, so a config that asks for it without those is
 * refused rather than silently ineligible.
 */
#include "conf/config_tls.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HSTS_PRELOAD_MIN_SECONDS (365ull * 24 * 3600)

struct hsts_options {
    uint64_t max_age_ms;
    bool include_subdomains;
    bool preload;
};

#define HSTS(field) offsetof(struct hsts_options, field)

static const struct cfg_option hsts_options[] = {
    {.name = "max_age", .offset = HSTS(max_age_ms), .scalar = cfg_parse_duration,
     .required = true},
    {.name = "include_subdomains", .offset = HSTS(include_subdomains),
     .scalar = cfg_parse_bool, .def = "false"},
    {.name = "preload", .offset = HSTS(preload), .scalar = cfg_parse_bool, .def = "false"},
};

static const struct cfg_section hsts_section = {
    hsts_options, sizeof hsts_options / sizeof hsts_options[0], NULL};

int cfg_tls_endpoint_hsts(const struct cfg_ctx *ctx, const yaml_node_t *node, void *base)
{
    struct tls_endpoint_config *tls = &((struct endpoint *)base)->tls;
    struct hsts_options hsts = {0};

    if (node == NULL)
        return SK_OK;
    if (cfg_expect(ctx, node, YAML_MAPPING_NODE, "hsts") != SK_OK ||
        cfg_apply_section(ctx, node, &hsts_section, &hsts, "hsts") != SK_OK)
        return SK_ERROR;
    uint64_t seconds = hsts.max_age_ms / 1000;
    if (hsts.preload && (!hsts.include_subdomains || seconds < HSTS_PRELOAD_MIN_SECONDS))
        return cfg_fail(ctx, cfg_lookup(ctx, node, "preload"),
                        "hsts: preload needs include_subdomains: true and a max_age of at "
                        "least 365d (the browsers' preload lists refuse anything less)");
    char line[160];
    int len = snprintf(line, sizeof line, "Strict-Transport-Security: max-age=%llu%s%s\r\n",
                       (unsigned long long)seconds,
                       hsts.include_subdomains ? "; includeSubDomains" : "",
                       hsts.preload ? "; preload" : "");
    free(tls->hsts_header);
    if ((tls->hsts_header = strndup(line, (size_t)len)) == NULL)
        return cfg_fail(ctx, node, "out of memory");
    tls->hsts_header_len = (size_t)len;
    return SK_OK;
}
