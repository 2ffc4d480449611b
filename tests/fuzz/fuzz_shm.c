/*
 * fuzz_shm.c - libFuzzer driver: what sakerctl reads from a segment
 * (shm_attach, shm_refresh, the snapshots) and everything it renders from
 * one: status, status --json, metrics, conns (text and --json) and top's
 * frames, over the header's directories of rate limits and routes, the
 * routes' histograms and the connection lists as well as the slots.
 *
 * The input is a segment image, written to a file (in /dev/shm) that
 * sakerctl's reader opens by path. After a first rendering the file changes under
 * the reader, as a hostile or broken writer would change it, and is read
 * again: by the last byte of the input, it shrinks (odd: to that byte's
 * upper seven bits in 128ths of its size), or everything past the first
 * 64 bytes is rotated by the size of a slot (even), which also gives top
 * two different samples to compute rates from. Both sequences are made
 * even unless bits 1 to 5 of that byte are all set: an odd one is a writer
 * stuck mid-write, which a refresh waits out (slowly, so rarely).
 *
 * Checked beyond the sanitizers: status --json and conns --json are valid
 * JSON and, like the metrics, valid UTF-8; status, conns and top write no
 * control character but newlines; a refused segment has a message.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/top.h"
#include "common/utf8.h"
#include "tests/fuzz/fuzz_env.h"
#include "tests/json_check.h"

#define STABLE_PREFIX 64 /* magic, version and sizes stay when the file is rewritten */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_utf8(const char *what, const char *text, size_t len)
{
    for (size_t i = 0; i < len;) {
        size_t n = utf8_sequence((const unsigned char *)text + i, len - i);
        if (n == 0)
            fuzz_fail("%s: byte %zu is not UTF-8", what, i);
        i += n;
    }
}

static void check_terminal_safe(const char *what, const char *text, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (((unsigned char)text[i] < 0x20 && text[i] != '\n') || text[i] == 0x7f)
            fuzz_fail("%s: control character 0x%02x at %zu", what, (unsigned char)text[i], i);
}

enum view { VIEW_STATUS, VIEW_JSON, VIEW_METRICS, VIEW_CONNS, VIEW_CONNS_JSON };

static void render(const struct shm *shm, const char *path, enum view view)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    if (out == NULL)
        fuzz_fail("open_memstream failed");
    bool json = view == VIEW_JSON || view == VIEW_CONNS_JSON;
    if (view == VIEW_STATUS)
        cli_status_write(shm, path, out);
    else if (view == VIEW_JSON)
        cli_status_json_write(shm, path, out);
    else if (view == VIEW_METRICS)
        shm_metrics_write(shm, out);
    else
        cli_conns_write(shm, -1, json, out);
    fclose(out);
    if (view == VIEW_STATUS || view == VIEW_CONNS)
        check_terminal_safe(view == VIEW_STATUS ? "status" : "conns", text, len);
    else
        check_utf8(view == VIEW_METRICS ? "metrics" : "json", text, len);
    if (json && (!json_check(text) || len == 0 || text[len - 1] != '\n'))
        fuzz_fail("a --json view is not one JSON document: %s", text);
    free(text);
}

static void render_top(const struct top_sample *prev, const struct top_sample *cur)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    if (out == NULL)
        fuzz_fail("open_memstream failed");
    top_frame_write(out, prev, cur, 100, (int64_t)time(NULL));
    fclose(out);
    check_terminal_safe("top", text, len);
    free(text);
}

static uint64_t ticks(pid_t pid) { return (uint64_t)pid * 7; }

static void write_file(int fd, const uint8_t *data, size_t size, size_t at)
{
    while (size > 0) {
        ssize_t n = pwrite(fd, data, size, (off_t)at);
        if (n <= 0)
            fuzz_fail("pwrite failed");
        data += n, size -= (size_t)n, at += (size_t)n;
    }
}

/* Even sequences unless the input asks for a writer stuck mid-write. */
static void settle_sequences(int fd, size_t size, uint8_t last)
{
    static const size_t at[2] = {offsetof(struct shm_header, header_seq),
                                 offsetof(struct shm_header, retired_seq)};
    for (int i = 0; i < 2 && (last & 0x3e) != 0x3e; i++) {
        uint64_t seq;
        if (at[i] + sizeof seq <= size && pread(fd, &seq, sizeof seq, (off_t)at[i]) == 8) {
            seq &= ~(uint64_t)1;
            write_file(fd, (const uint8_t *)&seq, sizeof seq, at[i]);
        }
    }
}

/* The file as the writer leaves it for the second look. */
static void change_file(int fd, const uint8_t *data, size_t size)
{
    uint8_t last = data[size - 1];
    if (last & 1) {
        if (ftruncate(fd, (off_t)(size * (last >> 1) / 128)) != 0)
            fuzz_fail("ftruncate failed");
        return;
    }
    if (size <= STABLE_PREFIX)
        return;
    /* Past the prefix, rotated by a slot: each slot gets its neighbour's
     * counters (rates for top), the header's fields move. */
    size_t n = size - STABLE_PREFIX, r = sizeof(struct shm_slot) % n;
    const uint8_t *rest = data + STABLE_PREFIX;
    write_file(fd, rest + r, n - r, STABLE_PREFIX);
    write_file(fd, rest, r, STABLE_PREFIX + n - r);
    settle_sequences(fd, size, last);
}

static void read_twice(struct shm *shm, const char *path, int fd, const uint8_t *data,
                       size_t size)
{
    struct top_sample a = {0}, b = {0};
    struct err err = {{0}};
    for (enum view v = VIEW_STATUS; v <= VIEW_CONNS_JSON; v++)
        render(shm, path, v);
    if (top_sample_take(shm, 1000, ticks, &a) != SK_OK)
        fuzz_fail("top_sample_take failed");
    render_top(NULL, &a);
    change_file(fd, data, size);
    /* The changed image is rendered by top only: with rates, and at half
     * the cost of every view again. */
    if (shm_refresh(shm, &err) == SK_OK) {
        if (top_sample_take(shm, 1250, ticks, &b) != SK_OK)
            fuzz_fail("top_sample_take failed");
        render_top(&a, &b);
    } else if (err.message[0] == '\0') {
        fuzz_fail("a refresh refused without a message");
    }
    top_sample_free(&a);
    top_sample_free(&b);
}

static char dir[32];
static char path[64];

static void remove_file(void)
{
    unlink(path);
    rmdir(dir);
}

/* A file of our own, mode 0600, in a directory of our own: the reader
 * trusts nothing else (and opens no /proc/self/fd link, O_NOFOLLOW). */
static int open_file(void)
{
    snprintf(dir, sizeof dir, "/dev/shm/fuzz_shm.XXXXXX");
    if (mkdtemp(dir) == NULL) {
        snprintf(dir, sizeof dir, "/tmp/fuzz_shm.XXXXXX");
        if (mkdtemp(dir) == NULL)
            fuzz_fail("mkdtemp failed");
    }
    snprintf(path, sizeof path, "%s/saker.shm", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        fuzz_fail("cannot create %s", path);
    atexit(remove_file);
    return fd;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int fd = -1;
    if (fd < 0)
        fd = open_file();
    if (size == 0 || ftruncate(fd, 0) != 0)
        return 0;
    write_file(fd, data, size, 0);
    settle_sequences(fd, size, data[size - 1]);
    fuzz_descriptors_mark();
    struct shm shm;
    struct err err = {{0}};
    if (shm_attach(&shm, path, &err) == SK_OK) {
        read_twice(&shm, path, fd, data, size);
        shm_detach(&shm);
    } else if (err.message[0] == '\0') {
        fuzz_fail("a segment refused without a message");
    }
    fuzz_descriptors_check();
    return 0;
}
