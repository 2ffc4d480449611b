/*
 * certificates.c - the serving generation's certificates into shm; see
 * certificates.h.
 */
#include "master/certificates.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "conf/config.h"
#include "master/master.h"
#include "shm/shm.h"
#include "tls/tls_cert.h"
#include "tls/tls_server.h"

#define CERTIFICATES_PER_ENDPOINT_MAX (SHM_MAX_CERTIFICATES + 1)

static bool endpoint_seen(const struct generation *g, size_t before,
                          const struct endpoint *endpoint)
{
    for (size_t i = 0; i < before; i++)
        if (g->listeners[i].endpoint == endpoint && g->listeners[i].tls != NULL)
            return true;
    return false;
}

static void entry_fill(struct shm_certificate *out, const char *endpoint,
                       const struct tls_certificate_view *view)
{
    memset(out, 0, sizeof *out);
    snprintf(out->endpoint, sizeof out->endpoint, "%s", endpoint);
    snprintf(out->sni, sizeof out->sni, "%s", view->sni ? view->sni : "");
    snprintf(out->path, sizeof out->path, "%s", view->path ? view->path : "");
    tls_certificate_subject(view->leaf, out->subject, sizeof out->subject);
    if (tls_certificate_validity(view->leaf, &out->not_before, &out->not_after) != SK_OK)
        out->not_before = out->not_after = 0; /* unreadable: shown as unknown */
}

void certificates_publish(const struct generation *g, struct shm *shm)
{
    struct shm_header *h = shm->header;
    uint32_t used = 0, unlisted = 0;
    shm_header_begin_write(shm);
    for (size_t i = 0; i < g->listener_count; i++) {
        const struct worker_listener *l = &g->listeners[i];
        if (l->tls == NULL || endpoint_seen(g, i, l->endpoint))
            continue;
        struct tls_certificate_view views[CERTIFICATES_PER_ENDPOINT_MAX];
        size_t n = tls_server_certificates(l->tls, views, CERTIFICATES_PER_ENDPOINT_MAX);
        for (size_t k = 0; k < n; k++) {
            if (used == SHM_MAX_CERTIFICATES || k >= CERTIFICATES_PER_ENDPOINT_MAX) {
                unlisted++;
                continue;
            }
            entry_fill(&h->certificates[used++], l->endpoint->name, &views[k]);
        }
    }
    h->certificate_count = used;
    h->certificates_unlisted = unlisted;
    shm_header_end_write(shm);
}
