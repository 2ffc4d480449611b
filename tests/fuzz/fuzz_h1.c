/*
 * fuzz_h1.c - libFuzzer driver: HTTP/1.1 requests through h1_feed (the
 * strict head checker, llhttp, request.c, the handlers and the rendered
 * responses), over reads cut where the fuzzer chooses (fuzz_env.h).
 *
 * One input is one connection. Reads are fed as conn.c feeds them, the
 * output queue is taken after each (file ranges read back), and feeding
 * stops when h1 says close. Flags: A, the client then closes its side
 * (h1_on_eof); B, a head still arriving at the end times out (408); C, a
 * body still arriving is too slow (408).
 *
 * Checked beyond the sanitizers: the output reads as whole HTTP/1.1
 * responses (fuzz_responses.h), every file range is within its file, no
 * descriptor leaks.
 */
#include <stdlib.h>
#include <string.h>

#include "tests/fuzz/fuzz_env.h"
#include "tests/fuzz/fuzz_responses.h"
#include "worker/h1.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* What the connection does after each flush: with the queue drained, the
 * protocol is asked for what it owes (a generator's next piece, the next
 * pipelined request), until it owes nothing more for now. Bounded: a
 * producer that always owes more is what the fuzzer should find. */
static void produce(struct h1 *h1, struct outq *out, struct fuzz_responses *responses)
{
    fuzz_drain(out, fuzz_responses_take, responses);
    for (int round = 0; round < 4096; round++) {
        enum conn_owed owed = h1_produce(h1);
        fuzz_drain(out, fuzz_responses_take, responses);
        if (owed != CONN_OWES_MORE)
            return;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_input in;
    struct outq out;
    struct fuzz_server *server = fuzz_connection_begin(&in, data, size, &out);
    struct h1 h1;
    h1_init(&h1, &server->worker, &out);
    h1_set_connection(&h1, server->endpoint, &server->endpoint->limits, server->peer);
    bool closed = false;
    static struct fuzz_responses responses; /* its buffer kept across inputs */
    char *read;
    size_t len;
    while (!closed && (read = fuzz_input_next(&in, &len)) != NULL) {
        closed = h1_feed(&h1, read, len) == H1_CLOSE;
        free(read);
        produce(&h1, &out, &responses);
        closed = closed || h1.closing;
    }
    uint64_t started, bytes;
    if (!closed && (in.flags & FUZZ_FLAG_B) && h1_reading_head(&h1))
        h1_timeout(&h1);
    if (!closed && (in.flags & FUZZ_FLAG_C) && h1_reading_body(&h1, &started, &bytes))
        h1_body_too_slow(&h1);
    if (!closed && (in.flags & FUZZ_FLAG_A))
        h1_on_eof(&h1);
    produce(&h1, &out, &responses);
    h1_destroy(&h1);
    fuzz_connection_end(&out);
    fuzz_responses_check(&responses);
    return 0;
}
