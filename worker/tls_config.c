/*
 * tls_config.c - TLS servers from a loaded config: one per https://
 * endpoint, and the master's check of every certificate before a start or
 * a reload; see tls.h.
 */
#include <stdlib.h>

#include "conf/config.h"
#include "worker/tls.h"

int tls_server_for_endpoint(const struct config *config, const struct endpoint *endpoint,
                            const struct shm_ticket_keys *keys, struct tls_server **out,
                            struct err *err)
{
    struct tls_server_params params = {
        .endpoint = endpoint->name,
        .config_file = config->file,
        .tls = &endpoint->tls,
        .default_certificate = &config->tls.default_certificate,
        .protocols = endpoint->protocols,
        .ticket_lifetime_ms = config->tls.ticket_key_rotation_ms,
        .keys = keys,
    };
    return tls_server_new(&params, out, err);
}

int tls_check_config(const struct config *config, struct err *err)
{
    for (size_t i = 0; i < config->endpoint_count; i++) {
        const struct endpoint *e = &config->endpoints[i];
        struct tls_server *server;
        if (e->url.scheme != URL_SCHEME_HTTPS)
            continue;
        if (tls_server_for_endpoint(config, e, NULL, &server, err) != SK_OK)
            return SK_ERROR;
        tls_server_free(server);
    }
    return SK_OK;
}
