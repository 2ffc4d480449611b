/*
 * check_shm.c - the shared-memory segment: create, attach, slots, seqlocks.
 *
 * Each test gets a fresh directory from mkdtemp. The concurrency test forks
 * real writers (workers counting into their slots), a real reader (attached
 * read-only, as sakerctl is) and retires slots from the parent as the
 * master does, and checks that no snapshot ever sees a total go down.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/clock.h"
#include "shm/shm.h"

static char dir[64];
static char path[128];

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/check_shm.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/saker.shm", dir);
}

static void teardown(void)
{
    unlink(path);
    rmdir(dir);
}

static void create(struct shm *shm, unsigned slots)
{
    struct err err = {{0}};
    ck_assert_msg(shm_create(shm, path, slots, &err) == SK_OK, "%s", err.message);
}

static void pwrite_at(off_t offset, const void *data, size_t len)
{
    int fd = open(path, O_WRONLY);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(pwrite(fd, data, len, offset), (ssize_t)len);
    close(fd);
}

static void assert_attach_fails(const char *expect)
{
    struct shm reader;
    struct err err = {{0}};
    ck_assert_int_eq(shm_attach(&reader, path, &err), SK_ERROR);
    ck_assert_msg(strstr(err.message, expect) != NULL, "'%s' lacks '%s'", err.message, expect);
    ck_assert_msg(strncmp(err.message, path, strlen(path)) == 0, "'%s' names no path",
                  err.message);
}

/* ---- create ---------------------------------------------------------- */

START_TEST(test_create_fills_header)
{
    struct shm shm;
    create(&shm, 4);
    const struct shm_header *h = shm.header;
    ck_assert(h->magic == SHM_MAGIC);
    ck_assert_uint_eq(h->layout_version, SHM_LAYOUT_VERSION);
    ck_assert_uint_eq(h->header_size, sizeof(struct shm_header));
    ck_assert_uint_eq(h->slot_size, sizeof(struct shm_slot));
    ck_assert_uint_eq(h->slot_count, SHM_MIN_SLOTS); /* 4 rounds up */
    ck_assert_uint_eq(h->total_size, shm.size);
    ck_assert_int_eq(h->master_pid, getpid());
    ck_assert_uint_eq(h->state, SHM_INSTANCE_STARTING);
    ck_assert_int_eq(h->reload_ok, 1);
    ck_assert_int_gt(h->started_at, 0);
    ck_assert_uint_gt(strnlen(h->server_version, SHM_VERSION_MAX), 0);
    for (unsigned i = 0; i < h->slot_count; i++) {
        ck_assert_int_eq(shm.slots[i].pid, 0);
        ck_assert_int_eq(shm.slots[i].cpu, -1);
        ck_assert_uint_eq(shm.slots[i].state, SHM_WORKER_FREE);
    }
    struct stat st;
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_uint_eq(st.st_mode & 0777, 0640);
    ck_assert_int_eq(st.st_size, (off_t)shm.size);
    shm_detach(&shm);
    ck_assert_ptr_null(shm.header);
}
END_TEST

START_TEST(test_create_replaces_without_disturbing_old_readers)
{
    struct shm first, reader, second;
    struct err err;
    create(&first, 64);
    ck_assert_int_eq(shm_attach(&reader, path, &err), SK_OK);
    shm_slot_claim(&first, 0, 4242, 0, 1, 0);
    create(&second, 128);
    /* The old inode lives on for its readers, unchanged. */
    ck_assert_int_eq(shm_refresh(&reader, &err), SK_OK);
    ck_assert(reader.header->magic == SHM_MAGIC);
    ck_assert_int_eq(reader.slots[0].pid, 4242);
    ck_assert_uint_eq(second.header->slot_count, 128);
    ck_assert_int_eq(second.slots[0].pid, 0);
    shm_detach(&reader);
    shm_detach(&first);
    shm_detach(&second);
}
END_TEST

START_TEST(test_create_refuses_absurd_slot_count)
{
    struct shm shm;
    struct err err = {{0}};
    ck_assert_int_eq(shm_create(&shm, path, 1u << 30, &err), SK_ERROR);
    ck_assert_ptr_nonnull(strstr(err.message, "slots"));
}
END_TEST


/* ---- what a local attacker can put at the path --------------------------- */

static void write_file(const char *name, const char *text)
{
    FILE *f = fopen(name, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

START_TEST(test_create_never_writes_through_a_symlink)
{
    char victim[160];
    snprintf(victim, sizeof victim, "%s/victim", dir);
    write_file(victim, "precious\n");
    chmod(victim, 0600);
    ck_assert_int_eq(symlink(victim, path), 0);
    struct shm shm;
    create(&shm, 64);
    struct stat st;
    ck_assert_int_eq(stat(victim, &st), 0);
    ck_assert_int_eq(st.st_size, 9);               /* not truncated */
    ck_assert_uint_eq(st.st_mode & 07777, 0600);   /* not chmodded */
    ck_assert_int_eq(lstat(path, &st), 0);
    ck_assert(S_ISREG(st.st_mode));                /* the link was replaced */
    ck_assert_uint_eq(st.st_mode & 07777, 0640);
    shm_detach(&shm);
    unlink(victim);
}
END_TEST

static void assert_attach_refused(const char *expect)
{
    struct shm reader;
    struct err err = {{0}};
    ck_assert_int_eq(shm_attach(&reader, path, &err), SK_ERROR);
    ck_assert_msg(strstr(err.message, expect) != NULL, "'%s' lacks '%s'", err.message, expect);
}

START_TEST(test_attach_trusts_only_root_or_the_caller)
{
    struct shm shm;
    create(&shm, 64);
    shm_detach(&shm);
    if (geteuid() == 0) { /* another user's file: only root can make one here */
        ck_assert_int_eq(chown(path, 65534, 65534), 0);
        assert_attach_refused("owned by uid 65534, neither root nor you");
        ck_assert_int_eq(chown(path, 0, 0), 0);
    }
    ck_assert_int_eq(chmod(path, 0662), 0);
    assert_attach_refused("writable by others");
    ck_assert_int_eq(chmod(path, 0660), 0);
    assert_attach_refused("writable by others");
    ck_assert_int_eq(chmod(path, 0640), 0);
    struct shm reader;
    struct err err;
    ck_assert_msg(shm_attach(&reader, path, &err) == SK_OK, "%s", err.message);
    shm_detach(&reader);
}
END_TEST

START_TEST(test_attach_does_not_follow_a_symlink)
{
    struct shm shm;
    char real[160];
    snprintf(real, sizeof real, "%s/real.shm", dir);
    ck_assert_int_eq(shm_create(&shm, real, 64, &(struct err){{0}}), SK_OK);
    ck_assert_int_eq(symlink(real, path), 0);
    assert_attach_refused("symbolic link");
    shm_detach(&shm);
    unlink(real);
}
END_TEST

START_TEST(test_master_verify_checks_the_process)
{
    struct shm shm;
    struct err err = {{0}};
    create(&shm, 64);
    ck_assert_int_eq(shm_master_verify(shm.header, &err), SK_OK);
    /* A live process that is not the master that wrote itself there:
     * another program (a fork of ours may start in the same clock tick). */
    pid_t other = fork();
    if (other == 0) {
        execl("/bin/sleep", "sleep", "30", (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 500; i++) { /* until the exec is done */
        char exe[64], link[64];
        snprintf(link, sizeof link, "/proc/%d/exe", (int)other);
        ssize_t n = readlink(link, exe, sizeof exe - 1);
        if (n > 0 && (exe[n] = '\0', strstr(exe, "sleep") != NULL))
            break;
        usleep(10000);
    }
    shm.header->master_pid = other;
    ck_assert_int_eq(shm_master_verify(shm.header, &err), SK_DECLINED);
    ck_assert_msg(strstr(err.message, "not the saker master") != NULL, "%s", err.message);
    kill(other, SIGKILL);
    waitpid(other, NULL, 0);
    ck_assert_int_eq(shm_master_verify(shm.header, &err), SK_DECLINED);
    ck_assert_msg(strstr(err.message, "gone") != NULL, "%s", err.message);
    /* The right pid with another start time: a recycled pid. */
    shm_master_publish(&shm);
    shm.header->master_start_ticks++;
    ck_assert_int_eq(shm_master_verify(shm.header, &err), SK_DECLINED);
    shm_detach(&shm);
}
END_TEST

START_TEST(test_request_upgrade_writes_the_binary)
{
    struct shm shm;
    struct err err = {{0}};
    create(&shm, 64);
    ck_assert_int_eq(shm_request_upgrade(path, "relative/saker", &err), SK_ERROR);
    ck_assert_msg(shm_request_upgrade(path, "/usr/sbin/saker", &err) == SK_OK, "%s",
                  err.message);
    ck_assert_str_eq(shm.header->upgrade_binary, "/usr/sbin/saker");
    shm_detach(&shm);
}
END_TEST

START_TEST(test_adopt_maps_read_write_and_reopen_finds_the_file)
{
    struct shm shm, adopted;
    struct err err = {{0}};
    create(&shm, 64);
    int fd = shm_reopen(&shm, path, &err);
    ck_assert_msg(fd >= 0, "%s", err.message);
    ck_assert_msg(shm_adopt(&adopted, fd, "inherited", &err) == SK_OK, "%s", err.message);
    close(fd);
    adopted.header->reload_count = 7; /* writable, and the same memory */
    ck_assert_uint_eq(shm.header->reload_count, 7);
    shm_detach(&adopted);
    /* Replaced under the master: reopen refuses the new file. */
    struct shm other;
    create(&other, 64);
    ck_assert_int_lt(shm_reopen(&shm, path, &err), 0);
    ck_assert_msg(strstr(err.message, "no longer") != NULL, "%s", err.message);
    shm_detach(&other);
    shm_detach(&shm);
}
END_TEST

/* ---- slots ----------------------------------------------------------- */

START_TEST(test_claim_and_find_free)
{
    struct shm shm;
    create(&shm, 64);
    ck_assert_int_eq(shm_slot_find_free(&shm), 0);
    shm_slot_claim(&shm, 0, 100, 3, 7, 2);
    const struct shm_slot *s = &shm.slots[0];
    ck_assert_int_eq(s->pid, 100);
    ck_assert_int_eq(s->cpu, 3);
    ck_assert_uint_eq(s->generation, 7);
    ck_assert_uint_eq(s->index, 2);
    ck_assert_uint_eq(s->state, SHM_WORKER_STARTING);
    ck_assert_uint_gt(s->heartbeat_ms, 0);
    ck_assert_int_gt(s->started_at, 0);
    ck_assert_int_eq(shm_slot_find_free(&shm), 1);
    for (unsigned i = 1; i < shm.header->slot_count; i++)
        shm_slot_claim(&shm, i, 100 + (int)i, -1, 7, i);
    ck_assert_int_eq(shm_slot_find_free(&shm), -1);
    shm_detach(&shm);
}
END_TEST

START_TEST(test_claim_keeps_state_a_fast_worker_set)
{
    struct shm shm;
    create(&shm, 64);
    /* The worker ran before the master got to claim its slot. */
    atomic_store(&shm.slots[5].state, SHM_WORKER_RUNNING);
    shm_slot_count(&shm.slots[5], SHM_REQUESTS, 3);
    shm_slot_claim(&shm, 5, 200, 0, 1, 0);
    ck_assert_uint_eq(shm.slots[5].state, SHM_WORKER_RUNNING);
    ck_assert_uint_eq(shm.slots[5].counters[SHM_REQUESTS], 3);
    shm_detach(&shm);
}
END_TEST

START_TEST(test_claim_before_fork_with_pid_zero)
{
    struct shm shm;
    struct shm_totals t;
    create(&shm, 64);
    /* The master claims before fork and writes the pid once it has one. */
    shm_slot_claim(&shm, 0, 0, 1, 1, 0);
    ck_assert_uint_eq(shm.slots[0].state, SHM_WORKER_STARTING);
    ck_assert_int_eq(shm_slot_find_free(&shm), 1);
    ck_assert_int_eq(shm_snapshot_totals(&shm, &t), SK_OK);
    ck_assert_uint_eq(t.workers_live, 1);
    shm_slot_retire(&shm, 0); /* fork failed */
    ck_assert_int_eq(shm_slot_find_free(&shm), 0);
    shm_detach(&shm);
}
END_TEST

static void fill_slot(struct shm *shm, unsigned slot, uint64_t base, uint64_t open)
{
    struct shm_slot *s = &shm->slots[slot];
    atomic_store(&s->state, SHM_WORKER_RUNNING);
    for (int c = 0; c < SHM_COUNTER_COUNT; c++)
        shm_slot_count(s, c, base + (uint64_t)c);
    shm_slot_gauge_add(&s->connections_open, (int64_t)open);
}

START_TEST(test_retire_keeps_counters_and_drops_gauges)
{
    struct shm shm;
    struct shm_totals before, after;
    create(&shm, 64);
    shm_slot_claim(&shm, 0, 300, 0, 1, 0);
    shm_slot_claim(&shm, 1, 301, 1, 1, 1);
    fill_slot(&shm, 0, 1000, 5);
    fill_slot(&shm, 1, 2000, 7);
    ck_assert_int_eq(shm_snapshot_totals(&shm, &before), SK_OK);
    ck_assert_uint_eq(before.connections_open, 12);
    ck_assert_uint_eq(before.workers_live, 2);
    ck_assert_uint_eq(before.counters[SHM_REQUESTS], 1000 + 2000 + 2 * SHM_REQUESTS);

    shm_slot_retire(&shm, 0);
    ck_assert_int_eq(shm_snapshot_totals(&shm, &after), SK_OK);
    for (int c = 0; c < SHM_COUNTER_COUNT; c++)
        ck_assert_uint_eq(after.counters[c], before.counters[c]);
    ck_assert_uint_eq(after.connections_open, 7);
    ck_assert_uint_eq(after.workers_live, 1);
    ck_assert_uint_eq(shm.header->retired_seq % 2, 0);

    const struct shm_slot *s = &shm.slots[0];
    ck_assert_int_eq(s->pid, 0);
    ck_assert_uint_eq(s->state, SHM_WORKER_FREE);
    ck_assert_uint_eq(s->connections_open, 0);
    for (int c = 0; c < SHM_COUNTER_COUNT; c++)
        ck_assert_uint_eq(s->counters[c], 0);
    ck_assert_int_eq(shm_slot_find_free(&shm), 0);

    /* A new worker in the old slot adds on top. */
    shm_slot_claim(&shm, 0, 302, 0, 2, 0);
    shm_slot_count(&shm.slots[0], SHM_REQUESTS, 1);
    ck_assert_int_eq(shm_snapshot_totals(&shm, &after), SK_OK);
    ck_assert_uint_eq(after.counters[SHM_REQUESTS], before.counters[SHM_REQUESTS] + 1);
    shm_detach(&shm);
}
END_TEST

/* Rate limit counters and route statistics are counters too: retiring a
 * slot moves them into the retired totals, and the connection list goes. */
START_TEST(test_retire_folds_rate_limits_routes_and_drops_connections)
{
    struct shm shm;
    struct shm_totals before, after;
    struct shm_route_totals routes[SHM_MAX_ROUTES];
    create(&shm, 64);
    ck_assert_uint_eq(shm.size, shm_segment_size(SHM_MIN_SLOTS));
    for (unsigned slot = 0; slot < 2; slot++) {
        shm_slot_claim(&shm, slot, 500 + (int)slot, 0, 1, slot);
        atomic_store(&shm.slots[slot].rate[3][SHM_RATE_LIMITED], 10 + slot);
        struct shm_route_stats *r = &shm_routes_of(&shm, slot)[SHM_ROUTE_FIRST];
        atomic_store(&r->buckets[2], 5);
        atomic_store(&r->duration_us, 1000 * (slot + 1));
        atomic_store(&r->responses[1], 5);
    }
    struct shm_conn_list *conns = shm_conns_of(&shm, 0);
    atomic_store(&conns->used, 3);
    atomic_store(&conns->listed, 2);
    ck_assert_int_eq(shm_snapshot_totals(&shm, &before), SK_OK);
    ck_assert_uint_eq(before.rate[3][SHM_RATE_LIMITED], 21);

    shm_slot_retire(&shm, 0);
    ck_assert_int_eq(shm_snapshot_totals(&shm, &after), SK_OK);
    ck_assert_uint_eq(after.rate[3][SHM_RATE_LIMITED], 21);
    ck_assert_uint_eq(shm.slots[0].rate[3][SHM_RATE_LIMITED], 0);
    ck_assert_int_eq(shm_snapshot_routes(&shm, routes), SK_OK);
    ck_assert_uint_eq(routes[SHM_ROUTE_FIRST].buckets[2], 10);
    ck_assert_uint_eq(routes[SHM_ROUTE_FIRST].duration_us, 3000);
    ck_assert_uint_eq(routes[SHM_ROUTE_FIRST].responses[1], 10);
    ck_assert_uint_eq(shm_routes_retired(&shm)[SHM_ROUTE_FIRST].buckets[2], 5);
    ck_assert_uint_eq(shm_routes_of(&shm, 0)[SHM_ROUTE_FIRST].buckets[2], 0);
    ck_assert_uint_eq(conns->used, 0);
    ck_assert_uint_eq(conns->listed, 0);

    /* A rate limit entry no generation names any more goes with its totals. */
    shm_rate_policy_set(&shm, 3, "api", "fixed_window 1 per 1s, global");
    ck_assert_str_eq(shm.header->rate_policies[3].name, "api");
    shm_slot_retire(&shm, 1);
    shm_rate_policy_clear(&shm, 3);
    ck_assert_int_eq(shm_snapshot_totals(&shm, &after), SK_OK);
    ck_assert_uint_eq(after.rate[3][SHM_RATE_LIMITED], 0);
    ck_assert_str_eq(shm.header->rate_policies[3].name, "");
    shm_detach(&shm);
}
END_TEST

/* A connection entry copied while its worker rewrites it is never torn:
 * the reader retries instead, and the writer never waits; so too
 * sakerctl's reader, whose copy of the file may catch the entry
 * mid-write (_i 1: through shm_attach and shm_refresh). */
START_TEST(test_conn_snapshot_is_never_torn)
{
    struct shm shm, copy_reader;
    struct err err = {{0}};
    create(&shm, 64);
    const struct shm *reader = &shm;
    if (_i == 1) {
        ck_assert_msg(shm_attach(&copy_reader, path, &err) == SK_OK, "%s", err.message);
        reader = &copy_reader;
    }
    struct shm_conn *e = &shm_conns_of(&shm, 0)->entries[0];
    pid_t writer = fork();
    if (writer == 0) {
        for (uint64_t n = 1;; n++) {
            shm_seq_write_begin(&e->seq);
            e->bytes_in = n;
            snprintf(e->request, sizeof e->request, "GET /%llu HTTP/1.1", (unsigned long long)n);
            e->bytes_out = 2 * n;
            shm_seq_write_end(&e->seq);
            /* A worker's work between, and now and then a quiet while,
             * in which a reader that pays two reads of the file per look
             * can get one. */
            for (volatile int spin = 0; spin < (n % 64 == 0 ? 100000 : 300); spin++)
                ;
        }
    }
    /* Copies enough to catch the writer mid-write many times over, with a
     * deadline for a loaded machine. */
    uint64_t target = reader == &shm ? 1000 : 50;
    uint64_t deadline = clock_now_monotonic_ms() + 10000, seen = 0, last = 0;
    while (seen < target && clock_now_monotonic_ms() < deadline) {
        struct shm_conn copy;
        if (reader == &copy_reader)
            ck_assert_msg(shm_refresh(&copy_reader, &err) == SK_OK, "%s", err.message);
        if (shm_snapshot_conn(reader, 0, 0, &copy) != SK_OK)
            continue;
        char expect[64];
        snprintf(expect, sizeof expect, "GET /%llu HTTP/1.1", (unsigned long long)copy.bytes_in);
        ck_assert_uint_eq(copy.bytes_out, 2 * copy.bytes_in);
        if (copy.bytes_in != 0)
            ck_assert_str_eq(copy.request, expect);
        ck_assert_uint_ge(copy.bytes_in, last);
        last = copy.bytes_in;
        seen += last != 0; /* once the writer has begun */
    }
    kill(writer, SIGKILL);
    waitpid(writer, NULL, 0);
    ck_assert_uint_eq(seen, target);
    ck_assert_uint_gt(last, 0);
    if (reader == &copy_reader)
        shm_detach(&copy_reader);
    shm_detach(&shm);
}
END_TEST

/* sakerctl's copy of the file can hold an entry torn by a write under
 * way: its sequence even (read before the write began) and its bytes
 * half old, half new. The snapshot believes no copy: it reads the entry
 * from the file between two reads of the sequence there, and an entry
 * whose writer is mid-write is not shown. */
START_TEST(test_conn_snapshot_of_a_copy_reads_the_file)
{
    struct shm shm, reader;
    struct err err = {{0}};
    struct shm_conn copy;
    create(&shm, 64);
    ck_assert_msg(shm_attach(&reader, path, &err) == SK_OK, "%s", err.message);
    struct shm_conn *e = &shm_conns_of(&shm, 0)->entries[0];
    struct shm_conn *in_copy = &shm_conns_of(&reader, 0)->entries[0];
    shm_seq_write_begin(&e->seq);
    e->bytes_in = 1;
    e->bytes_out = 2;
    shm_seq_write_end(&e->seq);
    ck_assert_int_eq(shm_refresh(&reader, &err), SK_OK);
    in_copy->bytes_out = 99; /* torn in the copy; the file is whole */
    ck_assert_int_eq(shm_snapshot_conn(&reader, 0, 0, &copy), SK_OK);
    ck_assert_uint_eq(copy.bytes_in, 1);
    ck_assert_uint_eq(copy.bytes_out, 2);
    shm_seq_write_begin(&e->seq); /* a worker stuck mid-write */
    e->bytes_in = 3;
    ck_assert_int_eq(shm_snapshot_conn(&reader, 0, 0, &copy), SK_AGAIN);
    e->bytes_out = 6;
    shm_seq_write_end(&e->seq);
    ck_assert_int_eq(shm_snapshot_conn(&reader, 0, 0, &copy), SK_OK);
    ck_assert_uint_eq(copy.bytes_out, 6);
    shm_detach(&reader);
    shm_detach(&shm);
}
END_TEST

START_TEST(test_exited_slot_counts_but_holds_no_connections)
{
    struct shm shm;
    struct shm_totals t;
    create(&shm, 64);
    shm_slot_claim(&shm, 0, 400, 0, 1, 0);
    fill_slot(&shm, 0, 10, 4);
    atomic_store(&shm.slots[0].state, SHM_WORKER_EXITED);
    ck_assert_int_eq(shm_snapshot_totals(&shm, &t), SK_OK);
    ck_assert_uint_eq(t.counters[SHM_REQUESTS], 10 + SHM_REQUESTS);
    ck_assert_uint_eq(t.connections_open, 0);
    ck_assert_uint_eq(t.workers_live, 0);
    shm_detach(&shm);
}
END_TEST

/* ---- readers --------------------------------------------------------- */

START_TEST(test_attach_reads_what_the_master_wrote)
{
    struct shm shm, reader;
    struct err err;
    create(&shm, 64);
    shm_header_begin_write(&shm);
    shm.header->listener_count = 1;
    snprintf(shm.header->listeners[0].endpoint, 64, "public");
    snprintf(shm.header->listeners[0].address, SHM_LISTENER_TEXT_MAX, "127.0.0.1:41234");
    shm.header->listeners[0].port = 41234;
    shm_header_end_write(&shm);
    shm_slot_claim(&shm, 3, 500, 1, 1, 0);
    fill_slot(&shm, 3, 50, 2);

    ck_assert_msg(shm_attach(&reader, path, &err) == SK_OK, "%s", err.message);
    struct shm_totals a, b;
    ck_assert_int_eq(shm_snapshot_totals(&shm, &a), SK_OK);
    ck_assert_int_eq(shm_snapshot_totals(&reader, &b), SK_OK);
    ck_assert_mem_eq(&a, &b, sizeof a);

    struct shm_header h;
    ck_assert_int_eq(shm_snapshot_header(&reader, &h), SK_OK);
    ck_assert_uint_eq(h.listener_count, 1);
    ck_assert_str_eq(h.listeners[0].endpoint, "public");
    ck_assert_str_eq(h.listeners[0].address, "127.0.0.1:41234");
    ck_assert_int_eq(h.master_pid, getpid());

    struct shm_slot s;
    shm_snapshot_slot(&reader, 3, &s);
    ck_assert_int_eq(s.pid, 500);
    ck_assert_uint_eq(s.connections_open, 2);
    ck_assert_uint_eq(s.counters[SHM_BYTES_OUT], 50 + SHM_BYTES_OUT);
    shm_detach(&reader);
    shm_detach(&shm);
}
END_TEST

START_TEST(test_header_snapshot_waits_for_the_writer)
{
    struct shm shm;
    struct shm_header h;
    create(&shm, 64);
    uint64_t seq = shm.header->header_seq;
    ck_assert_uint_eq(seq % 2, 0);
    shm_header_begin_write(&shm);
    snprintf(shm.header->reload_message, SHM_MESSAGE_MAX, "half written");
    /* A master stuck mid-write (or dead) costs a bounded wait, not a hang. */
    ck_assert_int_eq(shm_snapshot_header(&shm, &h), SK_AGAIN);
    ck_assert_str_eq(h.reload_message, "half written");
    shm_header_end_write(&shm);
    ck_assert_int_eq(shm_snapshot_header(&shm, &h), SK_OK);
    ck_assert_uint_eq(shm.header->header_seq, seq + 2);
    shm_detach(&shm);
}
END_TEST

START_TEST(test_totals_snapshot_gives_up_on_a_stuck_fold)
{
    struct shm shm;
    struct shm_totals t;
    create(&shm, 64);
    atomic_store(&shm.header->retired_seq, 1); /* a master that died folding */
    ck_assert_int_eq(shm_snapshot_totals(&shm, &t), SK_AGAIN);
    shm_detach(&shm);
}
END_TEST

/* ---- a hostile or shrinking segment (sakerctl reads a private copy) -- */

START_TEST(test_refresh_reads_what_changed)
{
    struct shm shm, reader;
    struct err err;
    create(&shm, 64);
    ck_assert_int_eq(shm_attach(&reader, path, &err), SK_OK);
    ck_assert(reader.copy);
    shm_slot_claim(&shm, 2, 777, 0, 1, 0);
    ck_assert_int_eq(reader.slots[2].pid, 0); /* a copy: unchanged until read again */
    ck_assert_int_eq(shm_refresh(&reader, &err), SK_OK);
    ck_assert_int_eq(reader.slots[2].pid, 777);
    shm_detach(&reader);
    shm_detach(&shm);
}
END_TEST

/* The file shrinks under a reader: a mapping would take SIGBUS on its next
 * look; the copy is refused with the reason and stays readable. */
START_TEST(test_refresh_refuses_a_file_that_shrank)
{
    struct shm shm, reader;
    struct err err;
    create(&shm, 64);
    ck_assert_int_eq(shm_attach(&reader, path, &err), SK_OK);
    size_t size = reader.size;
    shm_detach(&shm);
    ck_assert_int_eq(truncate(path, 4096), 0);
    ck_assert_int_eq(shm_refresh(&reader, &err), SK_ERROR);
    char expect[96];
    snprintf(expect, sizeof expect, "truncated segment (4096 bytes, expected %zu)", size);
    ck_assert_str_eq(err.message, expect);
    struct shm_totals t;
    ck_assert_int_eq(shm_snapshot_totals(&reader, &t), SK_OK);
    ck_assert_int_eq(truncate(path, 0), 0);
    ck_assert_int_eq(shm_refresh(&reader, &err), SK_ERROR);
    shm_detach(&reader);
}
END_TEST

/* Sizes say where the slots are: a reader never trusts new ones. */
START_TEST(test_refresh_refuses_a_changed_layout)
{
    struct shm shm, reader;
    struct err err;
    create(&shm, 64);
    ck_assert_int_eq(shm_attach(&reader, path, &err), SK_OK);
    shm.header->slot_count = 1u << 20;
    ck_assert_int_eq(shm_refresh(&reader, &err), SK_ERROR);
    ck_assert_ptr_nonnull(strstr(err.message, "changed its layout"));
    shm.header->slot_count = 64;
    shm.header->magic = 0;
    ck_assert_int_eq(shm_refresh(&reader, &err), SK_ERROR);
    shm.header->magic = SHM_MAGIC;
    ck_assert_int_eq(shm_refresh(&reader, &err), SK_OK);
    shm_detach(&reader);
    shm_detach(&shm);
}
END_TEST

/* A master stuck mid-write: the refresh takes its copy anyway (bounded),
 * and the header snapshot says the copy may be torn. */
START_TEST(test_refresh_with_a_stuck_writer)
{
    struct shm shm, reader;
    struct err err;
    struct shm_header h;
    create(&shm, 64);
    ck_assert_int_eq(shm_attach(&reader, path, &err), SK_OK);
    shm_header_begin_write(&shm);
    ck_assert_int_eq(shm_refresh(&reader, &err), SK_OK);
    ck_assert_int_eq(shm_snapshot_header(&reader, &h), SK_AGAIN);
    shm_header_end_write(&shm);
    ck_assert_int_eq(shm_refresh(&reader, &err), SK_OK);
    ck_assert_int_eq(shm_snapshot_header(&reader, &h), SK_OK);
    shm_detach(&reader);
    shm_detach(&shm);
}
END_TEST

/* Strings without a NUL and counts past the tables come out bounded. */
START_TEST(test_header_snapshot_bounds_strings_and_counts)
{
    struct shm shm;
    struct shm_header h;
    create(&shm, 64);
    struct shm_header *w = shm.header;
    w->listener_count = 1000;
    w->certificate_count = UINT32_MAX;
    memset(w->server_version, 'v', sizeof w->server_version);
    memset(w->reload_message, 'm', sizeof w->reload_message);
    memset(w->listeners, 'l', sizeof w->listeners);
    memset(w->certificates, 'c', sizeof w->certificates);
    ck_assert_int_eq(shm_snapshot_header(&shm, &h), SK_OK);
    ck_assert_uint_eq(h.listener_count, SHM_MAX_LISTENERS);
    ck_assert_uint_eq(h.certificate_count, SHM_MAX_CERTIFICATES);
    ck_assert_uint_eq(strlen(h.server_version), SHM_VERSION_MAX - 1);
    ck_assert_uint_eq(strlen(h.reload_message), SHM_MESSAGE_MAX - 1);
    const struct shm_listener *l = &h.listeners[SHM_MAX_LISTENERS - 1];
    ck_assert_uint_eq(strlen(l->endpoint), sizeof l->endpoint - 1);
    ck_assert_uint_eq(strlen(l->url), sizeof l->url - 1);
    ck_assert_uint_eq(strlen(l->address), sizeof l->address - 1);
    const struct shm_certificate *c = &h.certificates[SHM_MAX_CERTIFICATES - 1];
    ck_assert_uint_eq(strlen(c->subject), sizeof c->subject - 1);
    struct shm_pool_view pools[4];
    atomic_store(&w->pools[SHM_POOL_CONNECTIONS][1].limit, 10);
    ck_assert_int_eq(shm_snapshot_header(&shm, &h), SK_OK);
    ck_assert_uint_eq(shm_pools_in_force(&h, pools, 4), 1);
    ck_assert_uint_eq(strlen(pools[0].endpoint), 63);
    shm_detach(&shm);
}
END_TEST

START_TEST(test_totals_saturate)
{
    struct shm shm;
    struct shm_totals t;
    create(&shm, 64);
    for (unsigned i = 0; i < 3; i++) {
        shm_slot_claim(&shm, i, 100 + (int)i, 0, 1, i);
        atomic_store(&shm.slots[i].counters[SHM_REQUESTS], UINT64_MAX - 1);
        atomic_store(&shm.slots[i].connections_open, UINT64_MAX / 2);
    }
    atomic_store(&shm.header->retired[SHM_REQUESTS], 5);
    ck_assert_int_eq(shm_snapshot_totals(&shm, &t), SK_OK);
    ck_assert(t.counters[SHM_REQUESTS] == UINT64_MAX);
    ck_assert(t.connections_open == UINT64_MAX);
    shm_detach(&shm);
}
END_TEST

START_TEST(test_attach_missing_file)
{
    assert_attach_fails(": No such file or directory (is saker running?)");
}
END_TEST

START_TEST(test_attach_refuses_bad_magic)
{
    char junk[8192];
    memset(junk, 'x', sizeof junk);
    int fd = open(path, O_WRONLY | O_CREAT, 0600);
    ck_assert_int_eq(write(fd, junk, sizeof junk), (ssize_t)sizeof junk);
    close(fd);
    assert_attach_fails(": not a saker shm segment");
}
END_TEST

START_TEST(test_attach_refuses_empty_file)
{
    close(open(path, O_WRONLY | O_CREAT, 0600));
    assert_attach_fails(": not a saker shm segment (0 bytes)");
}
END_TEST

START_TEST(test_attach_refuses_other_layout_version)
{
    struct shm shm;
    create(&shm, 64);
    shm_detach(&shm);
    uint32_t version = SHM_LAYOUT_VERSION + 1;
    pwrite_at(offsetof(struct shm_header, layout_version), &version, sizeof version);
    char expected[128];
    snprintf(expected, sizeof expected,
             ": layout version %u, this sakerctl reads version %u: "
             "use the sakerctl of the running saker", version, (unsigned)SHM_LAYOUT_VERSION);
    assert_attach_fails(expected);
}
END_TEST

START_TEST(test_attach_refuses_truncated_file)
{
    struct shm shm;
    create(&shm, 64);
    shm_detach(&shm);
    ck_assert_int_eq(truncate(path, sizeof(struct shm_header) + 10), 0);
    assert_attach_fails(": truncated segment");
    ck_assert_int_eq(truncate(path, 100), 0);
    assert_attach_fails(": truncated segment");
}
END_TEST

START_TEST(test_attach_refuses_other_slot_size)
{
    struct shm shm;
    create(&shm, 64);
    shm_detach(&shm);
    uint32_t slot_size = sizeof(struct shm_slot) * 2;
    pwrite_at(offsetof(struct shm_header, slot_size), &slot_size, sizeof slot_size);
    assert_attach_fails("slot size");
}
END_TEST

START_TEST(test_attach_refuses_inconsistent_total)
{
    struct shm shm;
    create(&shm, 64);
    shm_detach(&shm);
    uint64_t total = 12345;
    pwrite_at(offsetof(struct shm_header, total_size), &total, sizeof total);
    assert_attach_fails("inconsistent sizes");
}
END_TEST

/* ---- names ----------------------------------------------------------- */

START_TEST(test_names)
{
    ck_assert_str_eq(shm_counter_name(SHM_CONNECTIONS_ACCEPTED), "connections_accepted");
    ck_assert_str_eq(shm_counter_name(SHM_RESPONSES_4XX), "responses_4xx");
    ck_assert_str_eq(shm_counter_name(SHM_BYTES_OUT), "bytes_out");
    ck_assert_str_eq(shm_counter_name(SHM_REJECT_MALFORMED), "reject_malformed");
    ck_assert_str_eq(shm_reject_reason(SHM_REJECT_MALFORMED), "malformed");
    ck_assert_str_eq(shm_reject_reason(SHM_REJECT_RESPONSE_RATE), "response_rate");
    ck_assert_ptr_null(shm_reject_reason(SHM_REQUESTS));
    ck_assert_ptr_null(shm_reject_reason(SHM_TLS_HANDSHAKES_OK));
    ck_assert_str_eq(shm_tls_result(SHM_TLS_HANDSHAKES_OK), "ok");
    ck_assert_str_eq(shm_tls_result(SHM_TLS_FAIL_UNKNOWN_NAME), "unknown_name");
    ck_assert_str_eq(shm_tls_result(SHM_TLS_FAIL_PLAIN_HTTP), "plain_http");
    ck_assert_str_eq(shm_tls_result(SHM_TLS_FAIL_OTHER), "other");
    ck_assert_ptr_null(shm_tls_result(SHM_TLS_RESUMED));
    ck_assert_ptr_null(shm_reject_reason(SHM_COUNTER_COUNT));
    ck_assert_str_eq(shm_counter_name(SHM_COUNTER_COUNT), "unknown");
    for (int c = 0; c < SHM_COUNTER_COUNT; c++) {
        ck_assert_ptr_nonnull(shm_counter_name(c));
        ck_assert_int_eq(shm_reject_reason(c) != NULL, c >= SHM_REJECT_FIRST && c < SHM_REJECT_END);
        ck_assert_int_eq(shm_tls_result(c) != NULL,
                         c >= SHM_TLS_RESULT_FIRST && c < SHM_TLS_RESULT_END);
        for (int d = 0; d < c; d++)
            ck_assert_str_ne(shm_counter_name(c), shm_counter_name(d));
    }
    ck_assert_str_eq(shm_instance_state_name(SHM_INSTANCE_RUNNING), "running");
    ck_assert_str_eq(shm_instance_state_name(SHM_INSTANCE_STOPPED), "stopped");
    ck_assert_str_eq(shm_instance_state_name(99), "unknown");
    ck_assert_str_eq(shm_worker_state_name(SHM_WORKER_FREE), "free");
    ck_assert_str_eq(shm_worker_state_name(SHM_WORKER_DRAINING), "draining");
    ck_assert_str_eq(shm_worker_state_name(99), "unknown");
    ck_assert_str_eq(shm_listener_kind_name(SHM_LISTENER_TCP6), "tcp6");
}
END_TEST

/* ---- concurrency ----------------------------------------------------- */

#define ROUNDS 25
#define WORKERS 3
#define COUNTS 20000

/* A worker: counts into its slot as the request path does, then exits. */
static void run_worker(struct shm *shm, unsigned slot)
{
    struct shm_slot *s = &shm->slots[slot];
    atomic_store_explicit(&s->state, SHM_WORKER_RUNNING, memory_order_relaxed);
    for (int i = 0; i < COUNTS; i++) {
        shm_slot_gauge_add(&s->connections_open, 1);
        shm_slot_count(s, SHM_REQUESTS, 1);
        shm_slot_count(s, SHM_BYTES_IN, 3);
        shm_slot_gauge_add(&s->connections_open, -1);
    }
    _exit(0);
}

/* sakerctl in a loop, reading the file again each time: exit 0 if no
 * total ever went down and the last one is exact, 1 on a decrease, 2 on a
 * wrong final sum, 3 on a stuck read, 5 on a refresh that failed. */
static void run_reader(void)
{
    struct shm shm;
    struct err err;
    if (shm_attach(&shm, path, &err) != SK_OK)
        _exit(4);
    struct shm_totals last, now;
    memset(&last, 0, sizeof last);
    uint64_t deadline = clock_now_monotonic_ms() + 60000;
    for (;;) {
        if (shm_refresh(&shm, &err) != SK_OK)
            _exit(5);
        bool stopped = atomic_load(&shm.header->state) == SHM_INSTANCE_STOPPED;
        if (shm_snapshot_totals(&shm, &now) != SK_OK)
            _exit(3);
        for (int c = 0; c < SHM_COUNTER_COUNT; c++)
            if (now.counters[c] < last.counters[c])
                _exit(1);
        last = now;
        if (stopped || clock_now_monotonic_ms() > deadline)
            break;
    }
    uint64_t expect = (uint64_t)ROUNDS * WORKERS * COUNTS;
    _exit(last.counters[SHM_REQUESTS] == expect &&
          last.counters[SHM_BYTES_IN] == 3 * expect ? 0 : 2);
}

static void run_round(struct shm *shm, uint64_t generation)
{
    pid_t pids[WORKERS];
    for (unsigned w = 0; w < WORKERS; w++) {
        int slot = shm_slot_find_free(shm);
        ck_assert_int_ge(slot, 0);
        pids[w] = fork();
        ck_assert_int_ge(pids[w], 0);
        if (pids[w] == 0)
            run_worker(shm, (unsigned)slot);
        shm_slot_claim(shm, (unsigned)slot, pids[w], -1, generation, w);
    }
    for (unsigned w = 0; w < WORKERS; w++) {
        int status;
        ck_assert_int_eq(waitpid(pids[w], &status, 0), pids[w]);
        ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        for (unsigned i = 0; i < shm->header->slot_count; i++)
            if (shm->slots[i].pid == pids[w])
                shm_slot_retire(shm, i);
    }
}

START_TEST(test_totals_never_decrease_while_slots_retire)
{
    struct shm shm;
    create(&shm, 64);
    atomic_store(&shm.header->state, SHM_INSTANCE_RUNNING);
    pid_t reader = fork();
    ck_assert_int_ge(reader, 0);
    if (reader == 0)
        run_reader();
    for (uint64_t r = 1; r <= ROUNDS; r++)
        run_round(&shm, r);
    atomic_store(&shm.header->state, SHM_INSTANCE_STOPPED);
    int status;
    ck_assert_int_eq(waitpid(reader, &status, 0), reader);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                  "reader failed: status %d", status);
    struct shm_totals t;
    ck_assert_int_eq(shm_snapshot_totals(&shm, &t), SK_OK);
    ck_assert_uint_eq(t.counters[SHM_REQUESTS], (uint64_t)ROUNDS * WORKERS * COUNTS);
    ck_assert_uint_eq(t.connections_open, 0);
    ck_assert_uint_eq(t.workers_live, 0);
    shm_detach(&shm);
}
END_TEST

static Suite *shm_suite(void)
{
    Suite *s = suite_create("shm");
    TCase *tc = tcase_create("segment");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_create_fills_header);
    tcase_add_test(tc, test_create_replaces_without_disturbing_old_readers);
    tcase_add_test(tc, test_create_refuses_absurd_slot_count);
    tcase_add_test(tc, test_refresh_reads_what_changed);
    tcase_add_test(tc, test_refresh_refuses_a_file_that_shrank);
    tcase_add_test(tc, test_refresh_refuses_a_changed_layout);
    tcase_add_test(tc, test_refresh_with_a_stuck_writer);
    tcase_add_test(tc, test_header_snapshot_bounds_strings_and_counts);
    tcase_add_test(tc, test_totals_saturate);
    tcase_add_test(tc, test_create_never_writes_through_a_symlink);
    tcase_add_test(tc, test_attach_trusts_only_root_or_the_caller);
    tcase_add_test(tc, test_attach_does_not_follow_a_symlink);
    tcase_add_test(tc, test_master_verify_checks_the_process);
    tcase_add_test(tc, test_request_upgrade_writes_the_binary);
    tcase_add_test(tc, test_adopt_maps_read_write_and_reopen_finds_the_file);
    tcase_add_test(tc, test_claim_and_find_free);
    tcase_add_test(tc, test_claim_keeps_state_a_fast_worker_set);
    tcase_add_test(tc, test_claim_before_fork_with_pid_zero);
    tcase_add_test(tc, test_retire_keeps_counters_and_drops_gauges);
    tcase_add_test(tc, test_retire_folds_rate_limits_routes_and_drops_connections);
    tcase_add_loop_test(tc, test_conn_snapshot_is_never_torn, 0, 2);
    tcase_add_test(tc, test_conn_snapshot_of_a_copy_reads_the_file);
    tcase_add_test(tc, test_exited_slot_counts_but_holds_no_connections);
    tcase_add_test(tc, test_attach_reads_what_the_master_wrote);
    tcase_add_test(tc, test_header_snapshot_waits_for_the_writer);
    tcase_add_test(tc, test_totals_snapshot_gives_up_on_a_stuck_fold);
    tcase_add_test(tc, test_attach_missing_file);
    tcase_add_test(tc, test_attach_refuses_bad_magic);
    tcase_add_test(tc, test_attach_refuses_empty_file);
    tcase_add_test(tc, test_attach_refuses_other_layout_version);
    tcase_add_test(tc, test_attach_refuses_truncated_file);
    tcase_add_test(tc, test_attach_refuses_other_slot_size);
    tcase_add_test(tc, test_attach_refuses_inconsistent_total);
    tcase_add_test(tc, test_names);
    tcase_add_test(tc, test_totals_never_decrease_while_slots_retire);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(shm_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
