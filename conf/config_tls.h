/*
 * config_tls.h - parsers for the HTTPS options (see config_tls_types.h for
 * the syntax). Internal to conf/, like config_parse.h: the endpoint and
 * top-level option tables call these.
 *
 * Each parser follows config_parse.h's contract: SK_OK, or SK_ERROR with
 * "FILE:LINE:COLUMN: message" in ctx->err. A node of NULL means the key is
 * absent: the parser applies the default (mostly: leaves zero).
 *
 * Only the shape is checked here (keys, names, enumerations). Whether the
 * files exist, parse, match and open with their password is checked by
 * tls_check_config (tls/tls_config.h) when saker starts or reloads, with the
 * location recorded here in the message.
 */
#ifndef SAKER_CONF_CONFIG_TLS_H
#define SAKER_CONF_CONFIG_TLS_H

#include <stdbool.h>

#include "conf/config_parse.h"
#include "conf/config_tls_types.h"

/* CERT = { path: FILE, key: FILE, password: STR }; what names it in
 * messages ("certificate 'default'"). */
int cfg_tls_parse_certificate(const struct cfg_ctx *ctx, const yaml_node_t *node,
                              struct tls_certificate_config *out, const char *what);

/* Top level. `certificates: { default: CERT }` into a struct tls_config. */
int cfg_tls_parse_certificates(const struct cfg_ctx *ctx, const yaml_node_t *node,
                               struct tls_config *tls);

/* Per endpoint, into a struct tls_endpoint_config. */
int cfg_tls_parse_endpoint_certificate(const struct cfg_ctx *ctx, const yaml_node_t *node,
                                       struct tls_endpoint_config *tls);
int cfg_tls_parse_sni(const struct cfg_ctx *ctx, const yaml_node_t *node,
                      struct tls_endpoint_config *tls);
/* tls: { min_version, ciphers, ciphersuites } */
int cfg_tls_parse_policy(const struct cfg_ctx *ctx, const yaml_node_t *node,
                         struct tls_endpoint_config *tls);
/* client_certificate: { mode, ca } */
int cfg_tls_parse_client_certificate(const struct cfg_ctx *ctx, const yaml_node_t *node,
                                     struct tls_endpoint_config *tls);

cfg_scalar_fn cfg_tls_parse_sni_unknown; /* enum tls_sni_unknown: default | refuse */
cfg_scalar_fn cfg_tls_parse_protocols;   /* enum endpoint_protocols */
cfg_scalar_fn cfg_tls_parse_min_version; /* unsigned: "1.2" -> 12, "1.3" -> 13 */

/* After the endpoint's keys are parsed: an https:// endpoint needs its own
 * certificate or certificates.default; TLS options on an http:// endpoint
 * are refused rather than silently ignored. map is the endpoint's mapping
 * (for the location), what names it ("endpoint 'public'"). */
int cfg_tls_check_endpoint(const struct cfg_ctx *ctx, const yaml_node_t *map, bool https,
                           struct tls_endpoint_config *tls, const struct tls_config *global,
                           const char *what);

/* True when host is a valid `sni:` key: a DNS name, or "*." and one. */
bool cfg_tls_valid_sni_name(const char *host);

/* Entry points for the option tables: base is the struct endpoint
 * (config_endpoints.c) or the struct config (config_load.c). */
cfg_node_fn cfg_tls_endpoint_certificate; /* certificate: CERT */
cfg_node_fn cfg_tls_endpoint_sni;         /* sni: { NAME: CERT } */
cfg_node_fn cfg_tls_endpoint_policy;      /* tls: { ... } */
cfg_node_fn cfg_tls_endpoint_client;      /* client_certificate: { ... } */
cfg_node_fn cfg_tls_endpoint_hsts;        /* hsts: { max_age, ... }; config_hsts.c */
cfg_node_fn cfg_tls_config_certificates;  /* certificates: { default: CERT } */
cfg_scalar_fn cfg_tls_parse_rotation;     /* ticket_key_rotation: a duration >= 1s */
/* After the whole file is read (certificates may come after endpoints):
 * cfg_tls_check_endpoint for each endpoint. root may be NULL. */
int cfg_tls_check_endpoints(const struct cfg_ctx *ctx, const yaml_node_t *root,
                            struct config *config);

void cfg_tls_certificate_free(struct tls_certificate_config *cert);
void cfg_tls_endpoint_free(struct tls_endpoint_config *tls);
void cfg_tls_free(struct tls_config *tls);

#endif
