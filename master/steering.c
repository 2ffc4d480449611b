/*
 * steering.c - reuseport steering programs; see steering.h.
 *
 * Both programs are a few instructions written here, with their kernel
 * interfaces: <linux/bpf.h> and bpf(2) for the eBPF one, <linux/filter.h>
 * for the classic one. No BPF library or compiler is needed to build or
 * to run saker.
 */
#include "master/steering.h"

#include <errno.h>
#include <linux/bpf.h>
#include <linux/filter.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "conf/config.h"

#ifndef BPF_ATOMIC /* kernel headers before 5.12; the kernel then refuses the program */
#define BPF_ATOMIC 0xc0
#define BPF_FETCH 0x01
#endif
#ifndef SO_ATTACH_REUSEPORT_CBPF
#define SO_ATTACH_REUSEPORT_CBPF 51
#endif
#ifndef SO_ATTACH_REUSEPORT_EBPF
#define SO_ATTACH_REUSEPORT_EBPF 52
#endif

/* The eBPF program's state: one array entry. */
struct steering_state {
    uint64_t next;    /* connections steered so far: the counter */
    uint64_t targets; /* how many entries of the socket map are in use */
};

static int bpf_call(int cmd, union bpf_attr *attr)
{
    return (int)syscall(__NR_bpf, cmd, attr, sizeof *attr);
}

static int map_create(uint32_t type, uint32_t key_size, uint32_t value_size, uint32_t entries)
{
    union bpf_attr attr;
    memset(&attr, 0, sizeof attr);
    attr.map_type = type;
    attr.key_size = key_size;
    attr.value_size = value_size;
    attr.max_entries = entries;
    return bpf_call(BPF_MAP_CREATE, &attr);
}

static int map_update(int map, uint32_t key, const void *value)
{
    union bpf_attr attr;
    memset(&attr, 0, sizeof attr);
    attr.map_fd = (uint32_t)map;
    attr.key = (uint64_t)(uintptr_t)&key;
    attr.value = (uint64_t)(uintptr_t)value;
    attr.flags = BPF_ANY;
    return bpf_call(BPF_MAP_UPDATE_ELEM, &attr);
}

#define INSN(op, d, s, o, i) \
    ((struct bpf_insn){.code = (op), .dst_reg = (d), .src_reg = (s), .off = (o), .imm = (i)})
/* ld_imm64 of a map: two instructions, the map's descriptor in the first. */
#define LD_MAP(dst, fd) INSN(BPF_LD | BPF_DW | BPF_IMM, dst, BPF_PSEUDO_MAP_FD, 0, fd), INSN(0, 0, 0, 0, 0)

/* Round-robin, in C:
 *
 *     struct steering_state *st = map_lookup(state_map, 0);
 *     if (st && st->targets) {
 *         u32 k = atomic_fetch_add(&st->next, 1) % st->targets;
 *         u32 *socket = map_lookup(targets_map, k);
 *         if (socket)
 *             sk_select_reuseport(ctx, socks_map, socket, 0);
 *     }
 *     return SK_PASS;
 *
 * socks_map holds socket i of the group at key i, set once: the kernel
 * refuses a socket that is already in the map, so the choice of targets
 * is a map of its own. A failed selection leaves the choice to the
 * kernel's hash. Returns the program's descriptor, or -1. */
static int load_round_robin(const struct steering *s)
{
    const struct bpf_insn program[] = {
        INSN(BPF_ALU64 | BPF_MOV | BPF_X, 6, 1, 0, 0),         /* r6 = ctx */
        INSN(BPF_ST | BPF_MEM | BPF_W, 10, 0, -4, 0),          /* key 0 at fp-4 */
        INSN(BPF_ALU64 | BPF_MOV | BPF_X, 2, 10, 0, 0),
        INSN(BPF_ALU64 | BPF_ADD | BPF_K, 2, 0, 0, -4),
        LD_MAP(1, s->state_map),
        INSN(BPF_JMP | BPF_CALL, 0, 0, 0, BPF_FUNC_map_lookup_elem),
        INSN(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 21, 0),          /* no state: pass */
        INSN(BPF_ALU64 | BPF_MOV | BPF_K, 1, 0, 0, 1),         /* r1 = next++ */
        INSN(BPF_STX | BPF_ATOMIC | BPF_DW, 0, 1, 0, BPF_ADD | BPF_FETCH),
        INSN(BPF_LDX | BPF_MEM | BPF_DW, 2, 0, 8, 0),          /* r2 = targets */
        INSN(BPF_JMP | BPF_JEQ | BPF_K, 2, 0, 17, 0),          /* none: pass */
        INSN(BPF_ALU64 | BPF_MOD | BPF_X, 1, 2, 0, 0),         /* k = next % targets */
        INSN(BPF_STX | BPF_MEM | BPF_W, 10, 1, -8, 0),         /* k at fp-8 */
        INSN(BPF_ALU64 | BPF_MOV | BPF_X, 2, 10, 0, 0),
        INSN(BPF_ALU64 | BPF_ADD | BPF_K, 2, 0, 0, -8),
        LD_MAP(1, s->targets_map),
        INSN(BPF_JMP | BPF_CALL, 0, 0, 0, BPF_FUNC_map_lookup_elem),
        INSN(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 9, 0),           /* k out of range: pass */
        INSN(BPF_LDX | BPF_MEM | BPF_W, 1, 0, 0, 0),           /* the socket's index */
        INSN(BPF_STX | BPF_MEM | BPF_W, 10, 1, -12, 0),        /* at fp-12 */
        INSN(BPF_ALU64 | BPF_MOV | BPF_X, 1, 6, 0, 0),         /* r1 = ctx */
        LD_MAP(2, s->socks_map),
        INSN(BPF_ALU64 | BPF_MOV | BPF_X, 3, 10, 0, 0),
        INSN(BPF_ALU64 | BPF_ADD | BPF_K, 3, 0, 0, -12),
        INSN(BPF_ALU64 | BPF_MOV | BPF_K, 4, 0, 0, 0),         /* flags 0 */
        INSN(BPF_JMP | BPF_CALL, 0, 0, 0, BPF_FUNC_sk_select_reuseport),
        INSN(BPF_ALU64 | BPF_MOV | BPF_K, 0, 0, 0, SK_PASS),   /* pass: */
        INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0),
    };
    union bpf_attr attr;
    memset(&attr, 0, sizeof attr);
    attr.prog_type = BPF_PROG_TYPE_SK_REUSEPORT;
    attr.insns = (uint64_t)(uintptr_t)program;
    attr.insn_cnt = sizeof program / sizeof program[0];
    attr.license = (uint64_t)(uintptr_t)"GPL"; /* the helpers it calls are GPL-only */
    return bpf_call(BPF_PROG_LOAD, &attr);
}

static void close_maps(struct steering *s)
{
    int *maps[] = {&s->socks_map, &s->targets_map, &s->state_map};
    for (size_t i = 0; i < sizeof maps / sizeof maps[0]; i++) {
        if (*maps[i] >= 0)
            close(*maps[i]);
        *maps[i] = -1;
    }
    s->registered = 0;
}

static int attach_round_robin(struct steering *s, int fd)
{
    s->socks_map = map_create(BPF_MAP_TYPE_REUSEPORT_SOCKARRAY, sizeof(uint32_t),
                              sizeof(uint32_t), CONFIG_MAX_WORKERS);
    s->targets_map = map_create(BPF_MAP_TYPE_ARRAY, sizeof(uint32_t), sizeof(uint32_t),
                                CONFIG_MAX_WORKERS);
    s->state_map = map_create(BPF_MAP_TYPE_ARRAY, sizeof(uint32_t),
                              sizeof(struct steering_state), 1);
    int program = s->socks_map >= 0 && s->targets_map >= 0 && s->state_map >= 0
                      ? load_round_robin(s) : -1;
    int rc = program >= 0 ? setsockopt(fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_EBPF, &program,
                                       sizeof program) : -1;
    if (program >= 0)
        close(program); /* the group holds it */
    if (rc != 0) {
        close_maps(s);
        return SK_ERROR;
    }
    s->kind = STEERING_ROUND_ROBIN;
    return SK_OK;
}

/* The classic program: a hash of the client's port and (the last word
 * of) its address, modulo n, then the target of that index. Loads at
 * SKF_NET_OFF are relative to the IP header whatever the kernel has
 * pulled; IPv6 is read as if without extension headers (a SYN with them
 * only hashes differently). The skb's own hash (SKF_AD_RXHASH) is not
 * used: on a NIC without hash offload it is 0 for every connection. */
static size_t classic_program(int family, const unsigned *targets, unsigned n,
                              struct sock_filter *out)
{
    size_t i = 0;
    if (family == AF_INET6) {
        out[i++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_H | BPF_ABS, SKF_NET_OFF + 40);
        out[i++] = (struct sock_filter)BPF_STMT(BPF_MISC | BPF_TAX, 0);
        out[i++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, SKF_NET_OFF + 20);
    } else {
        out[i++] = (struct sock_filter)BPF_STMT(BPF_LDX | BPF_B | BPF_MSH, SKF_NET_OFF);
        out[i++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_H | BPF_IND, SKF_NET_OFF);
        out[i++] = (struct sock_filter)BPF_STMT(BPF_MISC | BPF_TAX, 0);
        out[i++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, SKF_NET_OFF + 12);
    }
    out[i++] = (struct sock_filter)BPF_STMT(BPF_ALU | BPF_XOR | BPF_X, 0);
    out[i++] = (struct sock_filter)BPF_STMT(BPF_ALU | BPF_MUL | BPF_K, 0x9e3779b1u);
    out[i++] = (struct sock_filter)BPF_STMT(BPF_ALU | BPF_RSH | BPF_K, 16);
    out[i++] = (struct sock_filter)BPF_STMT(BPF_ALU | BPF_MOD | BPF_K, n);
    bool identity = true;
    for (unsigned k = 0; k < n; k++)
        identity = identity && targets[k] == k;
    if (identity) {
        out[i++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_A, 0);
        return i;
    }
    for (unsigned k = 0; k < n; k++) {
        out[i++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, k, 0, 1);
        out[i++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, targets[k]);
    }
    out[i++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, targets[0]);
    return i;
}

static int set_classic(struct steering *s, int fd, const unsigned *targets, unsigned n)
{
    struct sock_filter *code = calloc(2 * (size_t)n + 16, sizeof *code);
    if (code == NULL)
        return SK_ERROR;
    struct sock_fprog program = {
        .len = (unsigned short)classic_program(s->family, targets, n, code),
        .filter = code,
    };
    int rc = setsockopt(fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &program, sizeof program);
    free(code);
    return rc == 0 ? SK_OK : SK_ERROR;
}

void steering_init(struct steering *s, int family)
{
    *s = (struct steering){.kind = STEERING_NONE, .family = family,
                           .socks_map = -1, .targets_map = -1, .state_map = -1};
}

int steering_attach(struct steering *s, int fd, int family, bool round_robin,
                    struct err *err)
{
    steering_init(s, family);
    if (round_robin && attach_round_robin(s, fd) == SK_OK)
        return SK_OK;
    const unsigned first = 0;
    if (set_classic(s, fd, &first, 1) != SK_OK)
        return err_set_errno(err, errno, "setsockopt(SO_ATTACH_REUSEPORT_CBPF)");
    s->kind = STEERING_HASH;
    return SK_OK;
}

int steering_set(struct steering *s, const int *fds, unsigned fd_count,
                 const unsigned *targets, unsigned n, struct err *err)
{
    if (s->kind == STEERING_HASH)
        return set_classic(s, fds[0], targets, n) == SK_OK
                   ? SK_OK : err_set_errno(err, errno, "setsockopt(SO_ATTACH_REUSEPORT_CBPF)");
    if (s->kind != STEERING_ROUND_ROBIN)
        return SK_OK;
    for (; s->registered < fd_count; s->registered++) {
        uint32_t fd = (uint32_t)fds[s->registered];
        if (map_update(s->socks_map, s->registered, &fd) == 0)
            continue;
        /* The kernel keeps a socket in one such map at a time: a master
         * handing the sockets over (binary upgrade) still holds them. */
        int again = errno == EBUSY;
        err_set_errno(err, errno, "bpf(BPF_MAP_UPDATE_ELEM, socket %u)", s->registered);
        return again ? SK_AGAIN : SK_ERROR;
    }
    /* The targets first, then their number: the program never reads one
     * that is not set yet (a stale one is still a socket of the group). */
    for (uint32_t k = 0; k < n; k++) {
        uint32_t index = targets[k];
        if (map_update(s->targets_map, k, &index) != 0)
            return err_set_errno(err, errno, "bpf(BPF_MAP_UPDATE_ELEM, target %u)", k);
    }
    struct steering_state state = {.next = 0, .targets = n};
    if (map_update(s->state_map, 0, &state) != 0)
        return err_set_errno(err, errno, "bpf(BPF_MAP_UPDATE_ELEM, state)");
    return SK_OK;
}

void steering_close(struct steering *s)
{
    close_maps(s);
    s->kind = STEERING_NONE;
}

const char *steering_name(const struct steering *s)
{
    switch (s->kind) {
    case STEERING_ROUND_ROBIN: return "round-robin";
    case STEERING_HASH: return "hash";
    case STEERING_NONE: break;
    }
    return "none";
}
