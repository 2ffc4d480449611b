/*
 * tls_config.c - TLS servers from a loaded config: one per https://
 * endpoint, and the master's check of every certificate before a start or
 * a reload; see tls_config.h.
 */
#include "tls/tls_config.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "common/log.h"
#include "tls/tls_cert.h"

#define TLS_CONFIG_MAX_VIEWS 256

static const char *utc_date(int64_t t, char *out, size_t size)
{
    time_t when = (time_t)t;
    struct tm tm;
    if (gmtime_r(&when, &tm) == NULL || strftime(out, size, "%Y-%m-%d %H:%M:%S UTC", &tm) == 0)
        snprintf(out, size, "%lld", (long long)t);
    return out;
}

/* An expired certificate still loads (the operator may be about to
 * renew it, and refusing to start would turn a warning into an outage),
 * but it is said out loud at every check: clients will refuse it. */
static void warn_about_validity(const struct endpoint *e, const struct tls_server *server,
                                int64_t now)
{
    struct tls_certificate_view views[TLS_CONFIG_MAX_VIEWS];
    size_t n = tls_server_certificates(server, views, TLS_CONFIG_MAX_VIEWS);
    for (size_t i = 0; i < n && i < TLS_CONFIG_MAX_VIEWS; i++) {
        int64_t not_before, not_after;
        char date[48];
        if (tls_certificate_validity(views[i].leaf, &not_before, &not_after) != SK_OK)
            continue;
        if (now >= not_after)
            log_msg(LOG_WARN, "endpoint '%s': certificate %s (%s) expired on %s: clients will "
                              "refuse it", e->name, views[i].path,
                    views[i].sni ? views[i].sni : "default", utc_date(not_after, date, sizeof date));
        else if (now < not_before)
            log_msg(LOG_WARN, "endpoint '%s': certificate %s (%s) is not valid before %s: "
                              "clients will refuse it until then", e->name, views[i].path,
                    views[i].sni ? views[i].sni : "default",
                    utc_date(not_before, date, sizeof date));
    }
}

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
        warn_about_validity(e, server, (int64_t)time(NULL));
        tls_server_free(server);
    }
    return SK_OK;
}
