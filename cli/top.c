/*
 * top.c - `sakerctl top [--interval D] [--iterations N] [--once]`.
 *
 * On a terminal: a full-screen view redrawn every interval with ANSI
 * escapes (alternate screen, cursor home, clear to end of line), no curses;
 * stdin in cbreak mode so `q` quits without Enter. The terminal is
 * restored on every way out: q, end of iterations, SIGINT, SIGTERM, SIGHUP,
 * and around a SIGTSTP (Ctrl-Z) suspension.
 *
 * Otherwise (stdout not a terminal, --once or --iterations): plain frames
 * separated by a blank line, for scripts and tests; the first frame comes
 * after one interval, since rates need two samples.
 *
 * Each sample reads the segment again (shm_refresh): one that shrinks or
 * changes its layout under top ends it with the reason, never a SIGBUS.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/top.h"
#include "common/clock.h"

#define DEFAULT_INTERVAL_MS 1000
#define MIN_INTERVAL_MS 50

static volatile sig_atomic_t got_quit, got_tstp;

static void on_signal(int signo)
{
    if (signo == SIGTSTP)
        got_tstp = 1;
    else
        got_quit = 1;
}

/* utime + stime, fields 14 and 15 of /proc/<pid>/stat. */
static uint64_t proc_ticks(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return TOP_TICKS_UNKNOWN;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* comm may hold spaces and ')': fields start after the last ')'. */
    const char *p = strrchr(buf, ')');
    unsigned long long utime, stime;
    if (p == NULL || sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
                            &utime, &stime) != 2)
        return TOP_TICKS_UNKNOWN;
    return utime + stime;
}

/* ---- terminal -------------------------------------------------------------- */

struct term {
    bool active;
    bool have_termios; /* stdin is a terminal: cbreak mode, keys */
    struct termios saved;
};

static void term_enter(struct term *t)
{
    t->have_termios = isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &t->saved) == 0;
    if (t->have_termios) {
        struct termios raw = t->saved;
        /* cbreak, not raw: ISIG stays, so Ctrl-C still sends SIGINT. */
        raw.c_lflag &= ~(tcflag_t)(ICANON | ECHO);
        raw.c_cc[VMIN] = 0;
        raw.c_cc[VTIME] = 0;
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &raw);
    }
    /* Alternate screen, hidden cursor, no autowrap: long rows are cut at
     * the edge instead of scrolling the frame. */
    fputs("\033[?1049h\033[?25l\033[?7l", stdout);
    fflush(stdout);
    t->active = true;
}

static void term_leave(struct term *t)
{
    if (!t->active)
        return;
    fputs("\033[?7h\033[?25h\033[?1049l", stdout);
    fflush(stdout);
    if (t->have_termios)
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &t->saved);
    t->active = false;
}

static void install_signals(void)
{
    struct sigaction sa = {.sa_handler = on_signal}; /* no SA_RESTART: wake poll() */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    sigaction(SIGTSTP, &sa, NULL);
}

/* Ctrl-Z: give the shell its terminal back, stop, and take it again. */
static void suspend(struct term *t)
{
    got_tstp = 0;
    term_leave(t);
    signal(SIGTSTP, SIG_DFL);
    raise(SIGTSTP); /* stopped here until SIGCONT */
    install_signals();
    term_enter(t);
}

/* Waits ms, returning early (true) when the user asked to quit. */
static bool wait_or_quit(struct term *t, uint64_t ms)
{
    uint64_t end = clock_now_monotonic_ms() + ms;
    for (;;) {
        if (got_quit)
            return true;
        if (got_tstp)
            suspend(t);
        uint64_t now = clock_now_monotonic_ms();
        if (now >= end)
            return false;
        struct pollfd p = {.fd = STDIN_FILENO, .events = POLLIN};
        int n = poll(&p, t->have_termios ? 1 : 0, (int)(end - now));
        char key;
        if (n > 0 && read(STDIN_FILENO, &key, 1) == 1 && (key == 'q' || key == 'Q'))
            return true;
        if (n > 0 && !(p.revents & POLLIN))
            t->have_termios = false; /* stdin hung up: stop polling it */
    }
}

/* ---- frames -------------------------------------------------------------- */

/* On a terminal each line ends with "clear to end of line" and the frame
 * with "clear below", so a shorter frame leaves no debris, without a full
 * clear (which flickers). */
static void draw(bool screen, const struct top_sample *prev, const struct top_sample *cur)
{
    long tck = sysconf(_SC_CLK_TCK);
    if (!screen) {
        top_frame_write(stdout, prev, cur, tck, (int64_t)time(NULL));
        return;
    }
    char *text = NULL;
    size_t size = 0;
    FILE *mem = open_memstream(&text, &size);
    if (mem == NULL)
        return;
    top_frame_write(mem, prev, cur, tck, (int64_t)time(NULL));
    fputs("\nq: quit", mem);
    fclose(mem);
    fputs("\033[H", stdout);
    for (char *line = text, *nl; line != NULL && *line != '\0'; line = nl ? nl + 1 : NULL) {
        nl = strchr(line, '\n');
        fwrite(line, 1, nl ? (size_t)(nl - line) : strlen(line), stdout);
        fputs(nl ? "\033[K\n" : "\033[K", stdout);
    }
    fputs("\033[J", stdout);
    fflush(stdout);
    free(text);
}

struct top_opts {
    uint64_t interval_ms;
    unsigned iterations; /* 0: until q */
    bool screen;         /* full-screen terminal mode */
};

/* The segment read again, then sampled. A segment that shrank or changed
 * under us ends top with the reason, the terminal restored first. */
static int sample(struct cli *cli, struct term *t, struct top_sample *s)
{
    struct err err;
    if (shm_refresh(&cli->shm, &err) != SK_OK) {
        term_leave(t);
        fprintf(stderr, "sakerctl: %s: %s\n", cli->shm_path, err.message);
        return CLI_EXIT_FAILED;
    }
    if (top_sample_take(&cli->shm, clock_now_monotonic_ms(), proc_ticks, s) != SK_OK) {
        term_leave(t);
        fprintf(stderr, "sakerctl: out of memory\n");
        return CLI_EXIT_FAILED;
    }
    return CLI_EXIT_OK;
}

static int run(struct cli *cli, const struct top_opts *o, struct term *t)
{
    struct top_sample samples[2] = {{0}};
    struct top_sample *prev = &samples[0], *cur = &samples[1];
    int rc = sample(cli, t, prev);
    if (rc == CLI_EXIT_OK && o->screen)
        draw(true, NULL, prev); /* something to look at during the first interval */
    for (unsigned frame = 0; rc == CLI_EXIT_OK; frame++) {
        if (wait_or_quit(t, o->interval_ms))
            break;
        if ((rc = sample(cli, t, cur)) != CLI_EXIT_OK)
            break;
        if (!o->screen && frame > 0)
            fputs("\n", stdout);
        draw(o->screen, prev, cur);
        fflush(stdout);
        struct top_sample *swap = prev;
        prev = cur;
        cur = swap;
        if (cli_process_gone(prev->header.master_pid)) {
            term_leave(t);
            fprintf(stderr, "sakerctl: saker master pid %d exited\n", prev->header.master_pid);
            rc = CLI_EXIT_FAILED;
        }
        if (o->iterations != 0 && frame + 1 >= o->iterations)
            break;
    }
    top_sample_free(&samples[0]);
    top_sample_free(&samples[1]);
    return rc;
}

int cli_cmd_top(struct cli *cli, int argc, char **argv)
{
    struct top_opts o = {.interval_ms = DEFAULT_INTERVAL_MS};
    bool once = false;
    const struct cli_arg args[] = {{"--interval", CLI_ARG_DURATION, &o.interval_ms},
                                   {"--iterations", CLI_ARG_UINT, &o.iterations},
                                   {"--once", CLI_ARG_FLAG, &once}};
    int rc = cli_parse_options(argc, argv, args, sizeof args / sizeof args[0]);
    if (rc != CLI_EXIT_OK)
        return rc;
    if (o.interval_ms < MIN_INTERVAL_MS)
        return cli_usage_error("top: --interval must be at least %dms", MIN_INTERVAL_MS);
    if (once)
        o.iterations = 1;
    if ((rc = cli_open_instance(cli)) != CLI_EXIT_OK)
        return rc;
    o.screen = o.iterations == 0 && isatty(STDOUT_FILENO);
    struct term t = {0};
    install_signals();
    if (o.screen)
        term_enter(&t);
    else
        signal(SIGTSTP, SIG_DFL); /* nothing to restore: let Ctrl-Z stop us */
    rc = run(cli, &o, &t);
    term_leave(&t);
    return rc;
}
