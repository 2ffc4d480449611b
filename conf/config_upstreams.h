/*
 * config_upstreams.h - `upstreams:`, the backends a proxy route sends
 * requests to, as the config gives them.
 *
 *   upstreams:
 *     app:
 *       servers:
 *         - url: http://127.0.0.1:8081      # http://HOST:PORT, https://HOST:PORT, unix:/PATH
 *           weight: 2                       # 1..100, default 1
 *         - url: unix:/run/app.sock
 *       balance: round_robin     # least_connections, client_ip_hash, random_two_choices
 *       keep_alive: { max_idle: 32, idle_timeout: 60s }
 *       timeouts: { connect: 5s, send: 60s, read: 60s }
 *       passive: { max_fails: 1, fail_timeout: 10s }   # max_fails 0: never eject
 *       retries: 1               # idempotent requests, nothing yet sent to the client
 *       proxy_protocol: v2       # v1 or v2: a PROXY header first (connections not pooled)
 *       health_check: { path: /healthz, interval: 2s, timeout: 1s, rise: 2, fall: 3,
 *                       expect_status: 200 }   # path required; the rest: these defaults
 *       tls: { ca_file: /etc/ssl/app-ca.pem,   # for https:// servers; default: the system's
 *              certificate: client.pem, key: client.key,   # optional client certificate
 *              server_name: app.internal,      # SNI and the name verified (default: URL host)
 *              verify: true }
 *
 * A host name is resolved once, when the config is loaded, to its first
 * address (a server is one address; list a name's addresses as servers
 * to spread over them). Every string is owned by the config.
 */
#ifndef SAKER_CONF_CONFIG_UPSTREAMS_H
#define SAKER_CONF_CONFIG_UPSTREAMS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "conf/url.h"

enum upstream_balance {
    UPSTREAM_ROUND_ROBIN,       /* smooth weighted round robin (nginx's) */
    UPSTREAM_LEAST_CONNECTIONS, /* fewest active, weighted; ties by round robin */
    UPSTREAM_CLIENT_IP_HASH,    /* the same client address to the same server */
    UPSTREAM_RANDOM_TWO_CHOICES /* two at random, the less loaded of them */
};

struct upstream_server_config {
    char *url_text;
    struct url url;
    struct sockaddr_storage addr; /* resolved at load */
    socklen_t addr_len;
    unsigned weight;
};

struct upstream_config {
    char *name;
    struct upstream_server_config *servers;
    size_t server_count;
    enum upstream_balance balance;
    uint64_t max_idle;           /* pooled connections per worker, per upstream */
    uint64_t idle_timeout_ms;    /* a pooled connection unused this long is closed */
    uint64_t connect_timeout_ms;
    uint64_t send_timeout_ms;    /* between two writes of a request to the upstream */
    uint64_t read_timeout_ms;    /* between two reads of its response */
    uint64_t max_fails;          /* failures within fail_timeout that eject a server */
    uint64_t fail_timeout_ms;    /* and how long it stays out */
    uint64_t retries;            /* further servers tried for an idempotent request */
    /* Active health checks (`health_check:`; health_path NULL: none). */
    char *health_path;
    uint64_t health_interval_ms;
    uint64_t health_timeout_ms;
    uint64_t health_rise;        /* good checks in a row that bring a server back */
    uint64_t health_fall;        /* bad checks in a row that take it out */
    uint64_t health_status;      /* the status a good check answers */
    /* `tls:`, for https:// servers. */
    char *tls_ca_file;           /* NULL: the system's store */
    char *tls_certificate;       /* a client certificate; NULL: none */
    char *tls_key;               /* NULL: in the certificate's file */
    char *tls_server_name;       /* SNI and the name verified; NULL: the URL's host */
    bool tls_verify;             /* default true */
    /* `proxy_protocol: v1 | v2`: a PROXY header naming the client starts
     * every connection to a server (0: none). Such a connection carries
     * one client's requests only, so it is never pooled. */
    int proxy_protocol;
};

struct config;

/* The index of the upstream called name, or -1. */
long config_upstream_find(const struct config *config, const char *name);
void cfg_upstreams_free(struct upstream_config *upstreams, size_t count);

#endif
