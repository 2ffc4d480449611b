/*
 * config_tls.c - the HTTPS options: certificates, SNI, protocol policy,
 * client certificates, HTTP protocols; see config_tls.h.
 *
 * Shapes only: the files are opened by the master (tls_check_config), so a
 * sakerctl that loads the config to find shm_path never needs to read a
 * private key.
 */
#include "conf/config_tls.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define CERT(field) offsetof(struct tls_certificate_config, field)
#define TLSE(field) offsetof(struct tls_endpoint_config, field)

/* A password is taken as written: empty is a valid (if poor) password. */
static int parse_password(const char *key, const char *text, size_t len, void *field,
                          struct err *why)
{
    char **out = field;

    (void)key;
    char *copy = strndup(text, len);
    if (copy == NULL)
        return err_set(why, "out of memory");
    free(*out);
    *out = copy;
    return SK_OK;
}

static const struct cfg_option certificate_table[] = {
    {.name = "path", .offset = CERT(path), .scalar = cfg_parse_string, .required = true},
    {.name = "key", .offset = CERT(key), .scalar = cfg_parse_string},
    {.name = "password", .offset = CERT(password), .scalar = parse_password},
};

static const struct cfg_section certificate_section = {
    certificate_table, sizeof certificate_table / sizeof certificate_table[0], NULL};

int cfg_tls_parse_certificate(const struct cfg_ctx *ctx, const yaml_node_t *node,
                              struct tls_certificate_config *out, const char *what)
{
    if (node == NULL)
        return SK_OK;
    if (node->type != YAML_MAPPING_NODE)
        return cfg_fail(ctx, node, "%s: expected a mapping such as { path: cert.pem, key: "
                                   "key.pem }, got %s", what, cfg_kind(node));
    if (cfg_apply_section(ctx, node, &certificate_section, out, what) != SK_OK)
        return SK_ERROR;
    out->line = (int)node->start_mark.line + 1;
    out->column = (int)node->start_mark.column + 1;
    return SK_OK;
}

int cfg_tls_parse_certificates(const struct cfg_ctx *ctx, const yaml_node_t *node,
                               struct tls_config *tls)
{
    if (node == NULL)
        return SK_OK;
    if (cfg_expect(ctx, node, YAML_MAPPING_NODE, "certificates") != SK_OK ||
        cfg_check_keys(ctx, node) != SK_OK)
        return SK_ERROR;
    for (const yaml_node_pair_t *p = node->data.mapping.pairs.start;
         p < node->data.mapping.pairs.top; p++) {
        yaml_node_t *key = cfg_node(ctx, p->key);
        /* Kestrel's Certificates section has only Default for its own use. */
        if (strcmp((const char *)key->data.scalar.value, "default") != 0)
            return cfg_fail(ctx, key, "certificates: unknown key '%.80s'; expected 'default'",
                            (const char *)key->data.scalar.value);
    }
    yaml_node_t *value = cfg_lookup(ctx, node, "default");
    if (cfg_is_null(value))
        return SK_OK;
    return cfg_tls_parse_certificate(ctx, value, &tls->default_certificate,
                                     "certificate 'default'");
}

int cfg_tls_parse_endpoint_certificate(const struct cfg_ctx *ctx, const yaml_node_t *node,
                                       struct tls_endpoint_config *tls)
{
    return cfg_tls_parse_certificate(ctx, node, &tls->certificate, "certificate");
}

/* ---- sni ---------------------------------------------------------------- */

static bool valid_label_chars(const char *name)
{
    size_t label = 0;

    if (*name == '\0' || *name == '.')
        return false;
    for (const char *p = name; *p; p++) {
        if (*p == '.') {
            if (label == 0)
                return false;
            label = 0;
            continue;
        }
        if (!isalnum((unsigned char)*p) && *p != '-')
            return false;
        if (++label > 63)
            return false;
    }
    return label > 0;
}

bool cfg_tls_valid_sni_name(const char *host)
{
    if (strncmp(host, "*.", 2) == 0)
        host += 2;
    return strlen(host) <= 253 && valid_label_chars(host);
}

static int add_sni(const struct cfg_ctx *ctx, const yaml_node_pair_t *pair,
                   struct tls_endpoint_config *tls)
{
    yaml_node_t *key = cfg_node(ctx, pair->key), *value = cfg_node(ctx, pair->value);
    const char *name = (const char *)key->data.scalar.value;
    struct tls_sni_config *entry = &tls->sni[tls->sni_count];
    char what[160];

    if (!cfg_tls_valid_sni_name(name))
        return cfg_fail(ctx, key, "sni: expected a host name such as example.com or "
                                  "*.example.com, got '%.80s'", name);
    for (size_t i = 0; i < tls->sni_count; i++)
        if (strcasecmp(tls->sni[i].host, name) == 0)
            return cfg_fail(ctx, key, "sni: '%.80s' is listed twice", name);
    if ((entry->host = cfg_strdup(ctx, key, name)) == NULL)
        return SK_ERROR;
    tls->sni_count++;
    for (char *p = entry->host; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    snprintf(what, sizeof what, "certificate '%.80s'", entry->host);
    if (cfg_is_null(value))
        return cfg_fail(ctx, value, "%s: expected a mapping such as { path: cert.pem, "
                                    "key: key.pem }, got null", what);
    return cfg_tls_parse_certificate(ctx, value, &entry->certificate, what);
}

int cfg_tls_parse_sni(const struct cfg_ctx *ctx, const yaml_node_t *node,
                      struct tls_endpoint_config *tls)
{
    if (node == NULL)
        return SK_OK;
    if (cfg_expect(ctx, node, YAML_MAPPING_NODE, "sni") != SK_OK ||
        cfg_check_keys(ctx, node) != SK_OK)
        return SK_ERROR;
    size_t count = (size_t)(node->data.mapping.pairs.top - node->data.mapping.pairs.start);
    if (count == 0)
        return SK_OK;
    if ((tls->sni = calloc(count, sizeof *tls->sni)) == NULL)
        return cfg_fail(ctx, node, "out of memory");
    for (size_t i = 0; i < count; i++)
        if (add_sni(ctx, node->data.mapping.pairs.start + i, tls) != SK_OK)
            return SK_ERROR;
    return SK_OK;
}

/* ---- scalars ------------------------------------------------------------ */

int cfg_tls_parse_sni_unknown(const char *key, const char *text, size_t len, void *field,
                              struct err *why)
{
    static const char *const choices[] = {"default", "refuse"}; /* enum order */
    int i = CFG_CHOICE(key, text, choices, why);

    (void)len;
    if (i < 0)
        return SK_ERROR;
    *(enum tls_sni_unknown *)field = (enum tls_sni_unknown)i;
    return SK_OK;
}

/* Kestrel spells them Http1, Http2, Http1AndHttp2; both spellings pass. */
int cfg_tls_parse_protocols(const char *key, const char *text, size_t len, void *field,
                            struct err *why)
{
    enum endpoint_protocols *out = field;

    (void)len;
    if (strcasecmp(text, "http1") == 0)
        *out = PROTOCOLS_HTTP1;
    else if (strcasecmp(text, "http2") == 0)
        *out = PROTOCOLS_HTTP2;
    else if (strcasecmp(text, "http1_and_http2") == 0 || strcasecmp(text, "http1andhttp2") == 0)
        *out = PROTOCOLS_HTTP1_AND_HTTP2;
    else
        return err_set(why, "%s: expected http1, http2 or http1_and_http2, got '%.80s'", key,
                       text);
    return SK_OK;
}

/* TLS 1.0 and 1.1 are not offered at all (RFC 8996 deprecates them). */
int cfg_tls_parse_min_version(const char *key, const char *text, size_t len, void *field,
                              struct err *why)
{
    unsigned *out = field;

    (void)len;
    if (strcmp(text, "1.2") == 0 || strcasecmp(text, "tls1.2") == 0)
        *out = 12;
    else if (strcmp(text, "1.3") == 0 || strcasecmp(text, "tls1.3") == 0)
        *out = 13;
    else
        return err_set(why, "%s: expected \"1.2\" or \"1.3\", got '%.80s'", key, text);
    return SK_OK;
}

/* ---- tls: and client_certificate: ------------------------------------- */

static const struct cfg_option policy_options[] = {
    {.name = "min_version", .offset = TLSE(min_version), .scalar = cfg_tls_parse_min_version,
     .def = "1.2"},
    {.name = "ciphers", .offset = TLSE(ciphers), .scalar = cfg_parse_string},
    {.name = "ciphersuites", .offset = TLSE(ciphersuites), .scalar = cfg_parse_string},
};

static const struct cfg_section policy_section = {
    policy_options, sizeof policy_options / sizeof policy_options[0], NULL};

int cfg_tls_parse_policy(const struct cfg_ctx *ctx, const yaml_node_t *node,
                         struct tls_endpoint_config *tls)
{
    if (node != NULL && cfg_expect(ctx, node, YAML_MAPPING_NODE, "tls") != SK_OK)
        return SK_ERROR;
    return cfg_apply_section(ctx, node, &policy_section, tls, "tls");
}

static int parse_client_mode(const char *key, const char *text, size_t len, void *field,
                             struct err *why)
{
    static const char *const modes[] = {"none", "allow", "require"}; /* enum order */
    int i = CFG_CHOICE(key, text, modes, why);

    (void)len;
    if (i < 0)
        return SK_ERROR;
    *(enum tls_client_mode *)field = (enum tls_client_mode)i;
    return SK_OK;
}

static const struct cfg_option client_options[] = {
    {.name = "mode", .offset = TLSE(client_mode), .scalar = parse_client_mode, .def = "none"},
    {.name = "ca", .offset = TLSE(client_ca), .scalar = cfg_parse_string},
};

static const struct cfg_section client_section = {
    client_options, sizeof client_options / sizeof client_options[0], NULL};

int cfg_tls_parse_client_certificate(const struct cfg_ctx *ctx, const yaml_node_t *node,
                                     struct tls_endpoint_config *tls)
{
    if (node == NULL)
        return SK_OK;
    if (cfg_expect(ctx, node, YAML_MAPPING_NODE, "client_certificate") != SK_OK ||
        cfg_apply_section(ctx, node, &client_section, tls, "client_certificate") != SK_OK)
        return SK_ERROR;
    /* Verifying a client needs the CAs that issued it: no system default,
     * which would let any public CA's customer in. */
    if (tls->client_mode != TLS_CLIENT_NONE && tls->client_ca == NULL)
        return cfg_fail(ctx, node, "client_certificate: mode %s needs 'ca', the file of CA "
                                   "certificates that issue client certificates",
                        tls->client_mode == TLS_CLIENT_ALLOW ? "allow" : "require");
    return SK_OK;
}

/* ---- whole endpoint ----------------------------------------------------- */

static const char *const tls_only_keys[] = {"certificate", "sni", "sni_unknown", "tls",
                                            "client_certificate", "hsts"};

int cfg_tls_check_endpoint(const struct cfg_ctx *ctx, const yaml_node_t *map, bool https,
                           struct tls_endpoint_config *tls, const struct tls_config *global,
                           const char *what)
{
    if (map != NULL) {
        tls->line = (int)map->start_mark.line + 1;
        tls->column = (int)map->start_mark.column + 1;
    }
    if (tls->min_version == 0)
        tls->min_version = 12;
    if (!https) {
        for (size_t i = 0; map != NULL && i < sizeof tls_only_keys / sizeof *tls_only_keys; i++)
            if (!cfg_is_null(cfg_lookup(ctx, map, tls_only_keys[i])))
                return cfg_fail(ctx, cfg_lookup(ctx, map, tls_only_keys[i]),
                                "%s: '%s' applies to https:// endpoints only", what,
                                tls_only_keys[i]);
        return SK_OK;
    }
    if (tls->certificate.path == NULL && global->default_certificate.path == NULL)
        return cfg_fail(ctx, map, "%s: an https:// endpoint needs a certificate: set "
                                  "'certificate' here or 'certificates: { default: ... }'",
                        what);
    return SK_OK;
}

/* ---- free --------------------------------------------------------------- */

void cfg_tls_certificate_free(struct tls_certificate_config *cert)
{
    free(cert->path);
    free(cert->key);
    if (cert->password != NULL)
        memset(cert->password, 0, strlen(cert->password));
    free(cert->password);
    cert->path = cert->key = cert->password = NULL;
}

void cfg_tls_endpoint_free(struct tls_endpoint_config *tls)
{
    cfg_tls_certificate_free(&tls->certificate);
    for (size_t i = 0; i < tls->sni_count; i++) {
        free(tls->sni[i].host);
        cfg_tls_certificate_free(&tls->sni[i].certificate);
    }
    free(tls->sni);
    free(tls->ciphers);
    free(tls->ciphersuites);
    free(tls->client_ca);
    free(tls->hsts_header);
    tls->sni = NULL;
    tls->sni_count = 0;
    tls->ciphers = tls->ciphersuites = tls->client_ca = tls->hsts_header = NULL;
    tls->hsts_header_len = 0;
}

void cfg_tls_free(struct tls_config *tls)
{
    cfg_tls_certificate_free(&tls->default_certificate);
}

/* ---- the option tables' entry points ------------------------------------ */

int cfg_tls_endpoint_certificate(const struct cfg_ctx *ctx, const yaml_node_t *node, void *base)
{
    return cfg_tls_parse_endpoint_certificate(ctx, node, &((struct endpoint *)base)->tls);
}

int cfg_tls_endpoint_sni(const struct cfg_ctx *ctx, const yaml_node_t *node, void *base)
{
    return cfg_tls_parse_sni(ctx, node, &((struct endpoint *)base)->tls);
}

int cfg_tls_endpoint_policy(const struct cfg_ctx *ctx, const yaml_node_t *node, void *base)
{
    return cfg_tls_parse_policy(ctx, node, &((struct endpoint *)base)->tls);
}

int cfg_tls_endpoint_client(const struct cfg_ctx *ctx, const yaml_node_t *node, void *base)
{
    return cfg_tls_parse_client_certificate(ctx, node, &((struct endpoint *)base)->tls);
}

int cfg_tls_config_certificates(const struct cfg_ctx *ctx, const yaml_node_t *node, void *base)
{
    return cfg_tls_parse_certificates(ctx, node, &((struct config *)base)->tls);
}

/* Rotating more often than every second would only make tickets useless. */
int cfg_tls_parse_rotation(const char *key, const char *text, size_t len, void *field,
                           struct err *why)
{
    uint64_t *ms = field;
    if (cfg_parse_duration(key, text, len, ms, why) != SK_OK)
        return SK_ERROR;
    if (*ms < 1000)
        return err_set(why, "%s: expected at least 1s, got '%.80s'", key, text);
    return SK_OK;
}

int cfg_tls_check_endpoints(const struct cfg_ctx *ctx, const yaml_node_t *root,
                            struct config *config)
{
    const yaml_node_t *map = root ? cfg_lookup(ctx, root, "endpoints") : NULL;
    for (size_t i = 0; i < config->endpoint_count; i++) {
        struct endpoint *e = &config->endpoints[i];
        const yaml_node_t *node = NULL;
        char what[128];
        if (map != NULL && map->type == YAML_MAPPING_NODE &&
            i < (size_t)(map->data.mapping.pairs.top - map->data.mapping.pairs.start))
            node = cfg_node(ctx, map->data.mapping.pairs.start[i].value);
        snprintf(what, sizeof what, "endpoint '%.80s'", e->name);
        if (cfg_tls_check_endpoint(ctx, node, e->url.scheme == URL_SCHEME_HTTPS, &e->tls,
                                   &config->tls, what) != SK_OK)
            return SK_ERROR;
    }
    return SK_OK;
}
