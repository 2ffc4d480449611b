/*
 * tls_keys.c - when the master makes and rotates the session ticket keys;
 * see tls_keys.h. Making a key is tls/tls_ticket.c's.
 */
#include "master/tls_keys.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include <openssl/crypto.h>

#include "common/clock.h"
#include "common/error.h"
#include "common/log.h"
#include "master/master.h"
#include "tls/tls_ticket.h"

#define TLS_KEYS_DEFAULT_ROTATION_MS (3600u * 1000u)

/* The serving generation's setting: a reload that changes it takes effect
 * at the next rotation. */
static uint64_t rotation_ms(const struct master *m)
{
    const struct config *c = m->current ? m->current->config : NULL;
    return c && c->tls.ticket_key_rotation_ms ? c->tls.ticket_key_rotation_ms
                                              : TLS_KEYS_DEFAULT_ROTATION_MS;
}

int tls_keys_start(struct master *m, struct err *err)
{
    void *p = mmap(NULL, sizeof *m->ticket_keys, PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return err_set(err, "cannot map memory for the TLS ticket keys: %s", strerror(errno));
    (void)madvise(p, sizeof *m->ticket_keys, MADV_DONTDUMP); /* best effort */
    m->ticket_keys = p;
    if (tls_ticket_keys_rotate(m->ticket_keys, (int64_t)time(NULL)) != SK_OK)
        log_msg(LOG_ERROR, "getrandom() failed: no TLS session tickets until the next "
                           "key rotation");
    m->ticket_rotate_at_ms = clock_now_monotonic_ms() + rotation_ms(m);
    return SK_OK;
}

void tls_keys_stop(struct master *m)
{
    if (m->ticket_keys == NULL)
        return;
    OPENSSL_cleanse(m->ticket_keys, sizeof *m->ticket_keys);
    munmap(m->ticket_keys, sizeof *m->ticket_keys);
    m->ticket_keys = NULL;
}

void tls_keys_tick(struct master *m)
{
    uint64_t now = clock_now_monotonic_ms();
    if (now < m->ticket_rotate_at_ms)
        return;
    if (tls_ticket_keys_rotate(m->ticket_keys, (int64_t)time(NULL)) != SK_OK)
        log_msg(LOG_ERROR, "getrandom() failed: TLS session ticket key not rotated");
    m->ticket_rotate_at_ms = now + rotation_ms(m);
}
