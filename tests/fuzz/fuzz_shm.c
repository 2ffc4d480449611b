/*
 * fuzz_shm.c - libFuzzer driver: what sakerctl reads from a segment
 * (shm_attach, shm_refresh, the snapshots) and everything it renders from
 * one: status, status --json, metrics, conns (text and --json) and top's
 * frames, over the header's directories of rate limits and routes, the
 * routes' histograms and the connection lists as well as the slots.
 *
 * A segment is mostly zeros (a few hundred bytes set in 300 KB for two
 * workers), so the input describes the file rather than being it:
 *
 *   byte 0     the slot count the header starts with, 0 to MAX_SLOTS
 *   byte 1     the file's size against what the header declares, in
 *              steps of 64 bytes (signed: larger, or cut short)
 *   byte 2     the second look: odd, the file shrinks to the upper seven
 *              bits in 128ths of its size; even, the second look's
 *              patches are written. The sequences are made even unless
 *              bits 1 to 5 are all set, when the second look's are left
 *              as written: a writer stuck mid-write, which a refresh
 *              waits out (slowly, so rarely and once)
 *   the rest   patches: a 32-bit offset (little-endian, wrapped past the
 *              largest file), a 16-bit length whose top bit marks a
 *              patch for the second look, then the bytes
 *
 * The file (in /dev/shm) is sparse zeros of the size the patched header
 * declares, the magic, layout version, sizes, slot count and total a
 * writer puts first, then the first look's patches in order: a patch
 * may rewrite any of those, so every size the reader checks is the
 * fuzzer's, but the driver makes a file big enough for MAX_SLOTS slots
 * at most (one declaring more is cut short). The reader opens it by
 * path; after a first rendering the file changes under it as byte 2
 * says, as a hostile or broken writer would change it, and is read
 * again, which also gives top two samples to compute rates from.
 *
 * Checked beyond the sanitizers: status --json and conns --json are valid
 * JSON and, like the metrics, valid UTF-8; status, conns and top write no
 * control character but newlines; a refused segment has a message.
 */
#include <assert.h>
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
    for (size_t i = 0; i < len; i++) {
        if (((unsigned char)text[i] < 0x20 && text[i] != '\n') || text[i] == 0x7f) {
            size_t line = i;
            while (line > 0 && text[line - 1] != '\n')
                line--;
            fuzz_fail("%s: control character 0x%02x at %zu, in the line: %.*s", what,
                      (unsigned char)text[i], i, (int)(i - line), text + line);
        }
    }
}

/* What a renderer wrote. One buffer (and one stdio buffer) kept for the
 * whole run: an open_memstream per view, growing by reallocation, cost
 * more in ASan's allocations and fresh pages than the rendering. */
static struct {
    char *bytes;
    size_t len, capacity;
} text;

static ssize_t text_write(void *cookie, const char *p, size_t n)
{
    (void)cookie;
    if (text.len + n + 1 > text.capacity) {
        size_t capacity = (text.len + n + 1) * 2;
        char *grown = realloc(text.bytes, capacity);
        if (grown == NULL)
            fuzz_fail("out of memory");
        text.bytes = grown, text.capacity = capacity;
    }
    memcpy(text.bytes + text.len, p, n);
    text.len += n;
    text.bytes[text.len] = '\0';
    return (ssize_t)n;
}

/* A stream into text, emptied. */
static FILE *text_open(void)
{
    static char buffer[64 * 1024];
    text.len = 0;
    text_write(NULL, "", 0);
    FILE *out = fopencookie(NULL, "w", (cookie_io_functions_t){.write = text_write});
    if (out == NULL || setvbuf(out, buffer, _IOFBF, sizeof buffer) != 0)
        fuzz_fail("fopencookie failed");
    return out;
}

enum view { VIEW_STATUS, VIEW_JSON, VIEW_METRICS, VIEW_CONNS, VIEW_CONNS_JSON };

static void render(const struct shm *shm, const char *path, enum view view)
{
    FILE *out = text_open();
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
        check_terminal_safe(view == VIEW_STATUS ? "status" : "conns", text.bytes, text.len);
    else
        check_utf8(view == VIEW_METRICS ? "metrics" : "json", text.bytes, text.len);
    if (json && (!json_check(text.bytes) || text.len == 0 || text.bytes[text.len - 1] != '\n'))
        fuzz_fail("a --json view is not one JSON document: %s", text.bytes);
}

static void render_top(const struct top_sample *prev, const struct top_sample *cur)
{
    FILE *out = text_open();
    top_frame_write(out, prev, cur, 100, (int64_t)time(NULL));
    fclose(out);
    check_terminal_safe("top", text.bytes, text.len);
}

static uint64_t ticks(pid_t pid) { return (uint64_t)pid * 7; }

/* ---- the input ---------------------------------------------------------- */

#define CONTROL_LEN 3
#define PATCH_HEAD 6          /* offset (4 bytes), length (2) */
#define PATCH_SECOND 0x8000u  /* the length's top bit: a patch for the second look */
#define MAX_SLOTS 4           /* the most slots a file is made big enough for */

struct image {
    size_t file_size;       /* the first look's */
    size_t limit;           /* patch offsets wrap here */
    uint8_t second;         /* control byte 2: what changes for the second look */
    const uint8_t *patches; /* the records */
    size_t patches_len;
};

/* A segment's first fields as the writer leaves them, for slot_count
 * slots (shm_create's header_init). */
struct prefix {
    uint64_t magic;
    uint32_t layout_version, header_size, slot_size, slot_count;
    uint64_t total_size;
};
static_assert(offsetof(struct prefix, total_size) == offsetof(struct shm_header, total_size) &&
                  sizeof(struct prefix) == offsetof(struct shm_header, master_pid),
              "the prefix is the header's first fields");

/* The next patch record at *at for the look asked (second or not):
 * false at the end. Its offset is wrapped to the limit, its bytes cut
 * where the input ends. */
static bool patch_next(const struct image *im, size_t *at, bool second, size_t *offset,
                       const uint8_t **bytes, size_t *len)
{
    while (*at + PATCH_HEAD <= im->patches_len) {
        const uint8_t *p = im->patches + *at;
        uint32_t off = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                       (uint32_t)p[3] << 24;
        unsigned n = (unsigned)p[4] | (unsigned)p[5] << 8;
        size_t avail = im->patches_len - *at - PATCH_HEAD;
        *bytes = p + PATCH_HEAD;
        *len = (n & ~PATCH_SECOND) < avail ? (n & ~PATCH_SECOND) : avail;
        *offset = off % im->limit;
        *at += PATCH_HEAD + *len;
        if (((n & PATCH_SECOND) != 0) == second)
            return true;
    }
    return false;
}

static void prefix_patch(struct prefix *pre, size_t offset, const uint8_t *bytes, size_t len)
{
    for (size_t i = 0; i < len && offset + i < sizeof *pre; i++)
        ((uint8_t *)pre)[offset + i] = bytes[i];
}

/* How big the file is: what the patched header declares (as many slots
 * as the driver sizes a file for at most), moved by control byte 1 in
 * steps of 64 bytes either way: a file larger than it says, or one cut
 * short. */
static void image_parse(struct image *im, struct prefix *pre, const uint8_t *data, size_t size)
{
    unsigned slots = data[0] % (MAX_SLOTS + 1);
    *pre = (struct prefix){SHM_MAGIC, SHM_LAYOUT_VERSION, sizeof(struct shm_header),
                           sizeof(struct shm_slot), slots, shm_segment_size(slots)};
    im->limit = shm_segment_size(MAX_SLOTS) + 4096;
    im->second = data[2];
    im->patches = data + CONTROL_LEN;
    im->patches_len = size - CONTROL_LEN;
    size_t at = 0, offset, len;
    const uint8_t *bytes;
    while (patch_next(im, &at, false, &offset, &bytes, &len))
        prefix_patch(pre, offset, bytes, len);
    size_t declared = pre->total_size < im->limit ? (size_t)pre->total_size : im->limit;
    long move = (long)(int8_t)data[1] * 64;
    im->file_size = move < 0 && (size_t)-move > declared ? 0 : (size_t)((long)declared + move);
}

static void write_file(int fd, const void *data, size_t size, size_t at)
{
    const uint8_t *p = data;
    while (size > 0) {
        ssize_t n = pwrite(fd, p, size, (off_t)at);
        if (n <= 0)
            fuzz_fail("pwrite failed");
        p += n, size -= (size_t)n, at += (size_t)n;
    }
}

/* One look's patches, each cut at the file's end (no patch grows it). */
static void patches_write(int fd, const struct image *im, bool second, size_t file_size)
{
    size_t at = 0, offset, len;
    const uint8_t *bytes;
    while (patch_next(im, &at, second, &offset, &bytes, &len))
        if (offset < file_size)
            write_file(fd, bytes, len < file_size - offset ? len : file_size - offset, offset);
}

/* Even sequences unless the input asks for a writer stuck mid-write. */
static void settle_sequences(int fd, size_t size, uint8_t second)
{
    static const size_t at[2] = {offsetof(struct shm_header, header_seq),
                                 offsetof(struct shm_header, retired_seq)};
    for (int i = 0; i < 2 && (second & 0x3e) != 0x3e; i++) {
        uint64_t seq;
        if (at[i] + sizeof seq <= size && pread(fd, &seq, sizeof seq, (off_t)at[i]) == 8) {
            seq &= ~(uint64_t)1;
            write_file(fd, &seq, sizeof seq, at[i]);
        }
    }
}

/* The first look: zeros (a sparse file, as ftruncate leaves a new
 * segment), the prefix, then the first look's patches in order, with
 * even sequences (a writer is stuck, if at all, by the second look: each
 * refresh that finds one waits a thousand yields for it). */
static void image_write(int fd, const struct image *im, const struct prefix *pre)
{
    if (ftruncate(fd, 0) != 0 || ftruncate(fd, (off_t)im->file_size) != 0)
        fuzz_fail("ftruncate failed");
    write_file(fd, pre, im->file_size < sizeof *pre ? im->file_size : sizeof *pre, 0);
    patches_write(fd, im, false, im->file_size);
    settle_sequences(fd, im->file_size, 0);
}

/* The file as the writer leaves it for the second look: shrunk (odd
 * control byte 2: to its upper seven bits in 128ths of its size), or
 * rewritten by the second look's patches. */
static void change_file(int fd, const struct image *im)
{
    if (im->second & 1) {
        if (ftruncate(fd, (off_t)(im->file_size * (im->second >> 1) / 128)) != 0)
            fuzz_fail("ftruncate failed");
        return;
    }
    patches_write(fd, im, true, im->file_size);
    settle_sequences(fd, im->file_size, im->second);
}

static void read_twice(struct shm *shm, const char *path, int fd, const struct image *im)
{
    /* Kept across inputs, as top keeps its two: 140 KB each, zeroed and
     * freed per input they cost more than the reading. */
    static struct top_sample a, b;
    struct err err = {{0}};
    for (enum view v = VIEW_STATUS; v <= VIEW_CONNS_JSON; v++)
        render(shm, path, v);
    if (top_sample_take(shm, 1000, ticks, &a) != SK_OK)
        fuzz_fail("top_sample_take failed");
    render_top(NULL, &a);
    change_file(fd, im);
    /* The changed image is rendered by top only: with rates, and at half
     * the cost of every view again. */
    if (shm_refresh(shm, &err) == SK_OK) {
        if (top_sample_take(shm, 1250, ticks, &b) != SK_OK)
            fuzz_fail("top_sample_take failed");
        render_top(&a, &b);
    } else if (err.message[0] == '\0') {
        fuzz_fail("a refresh refused without a message");
    }
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
    if (size < CONTROL_LEN)
        return 0;
    struct image im;
    struct prefix pre;
    image_parse(&im, &pre, data, size);
    image_write(fd, &im, &pre);
    fuzz_descriptors_mark();
    struct shm shm;
    struct err err = {{0}};
    if (shm_attach(&shm, path, &err) == SK_OK) {
        read_twice(&shm, path, fd, &im);
        shm_detach(&shm);
    } else if (err.message[0] == '\0') {
        fuzz_fail("a segment refused without a message");
    }
    fuzz_descriptors_check();
    return 0;
}
