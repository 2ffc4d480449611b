/*
 * shm_upstreams.c - upstream servers for readers; see shm_upstreams.h.
 */
#include "shm/shm_upstreams.h"

#include "common/clock.h"

static const char *server_state(const struct shm_upstream_server *s, uint64_t now_ms)
{
    if (atomic_load_explicit(&s->health, memory_order_relaxed) == SHM_UPSTREAM_DOWN)
        return "down";
    if (atomic_load_explicit(&s->ejected_until_ms, memory_order_relaxed) > now_ms)
        return "ejected";
    return "up";
}

size_t shm_upstreams_view(const struct shm *shm, const struct shm_header *h,
                          struct shm_upstream_view *out, size_t max)
{
    uint64_t now_ms = clock_now_monotonic_ms();
    size_t n = 0;
    for (uint32_t i = 0; i < h->upstream_server_count && n < max; i++) {
        const struct shm_upstream_server *s = &h->upstream_servers[i];
        if (s->generation != h->generation)
            continue; /* a generation gone, or one a reload never committed */
        out[n] = (struct shm_upstream_view){.server = s, .state = server_state(s, now_ms)};
        for (uint32_t k = 0; k < shm->header->slot_count; k++) {
            const struct shm_slot *slot = &shm->slots[k];
            if (atomic_load_explicit(&slot->pid, memory_order_relaxed) == 0)
                continue;
            out[n].active += atomic_load_explicit(&slot->upstream_active[i], memory_order_relaxed);
            out[n].idle += atomic_load_explicit(&slot->upstream_idle[i], memory_order_relaxed);
        }
        n++;
    }
    return n;
}
