/*
 * tls_config.h - TLS servers from a loaded config: the one for an https://
 * endpoint, and the check of every certificate a config names.
 *
 * The loader (conf/) checks only the shape of the TLS options, since
 * sakerctl loads configs too and must not need the keys; the files are
 * opened here, by the master, before a start or a reload.
 */
#ifndef SAKER_TLS_TLS_CONFIG_H
#define SAKER_TLS_TLS_CONFIG_H

#include "common/error.h"
#include "conf/config.h"
#include "shm/shm_tls.h"
#include "tls/tls_server.h"

/* The server for an https:// endpoint, with certificates.default when it
 * names no certificate. keys: the master's shared ticket keys, or NULL. */
int tls_server_for_endpoint(const struct config *config, const struct endpoint *endpoint,
                            const struct shm_ticket_keys *keys, struct tls_server **out,
                            struct err *err);
/* Before a start or reload (and `saker -t`): builds and drops every
 * https:// endpoint's server, so a missing file, a wrong password or a key
 * that does not match fails here, with the file named, while the serving
 * generation is untouched. A certificate that has expired or is not valid
 * yet is logged as a warning, not refused. */
int tls_check_config(const struct config *config, struct err *err);

#endif
