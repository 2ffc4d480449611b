/*
 * module_api.c - the exchange as a module sees it (include/saker/module.h):
 * each call is the internal one of exchange.h on the same exchange,
 * whose handle is the struct itself behind an opaque type. The module's
 * generator and body reader have their own types, so the exchange
 * carries a small record of them (in its arena) that the internal
 * callbacks forward through.
 */
#include <stddef.h>
#include <string.h>

#include "common/error.h"
#include "include/saker/module.h"
#include "worker/exchange.h"

_Static_assert((int)SAKER_OK == (int)SK_OK && (int)SAKER_ERROR == (int)SK_ERROR &&
                   (int)SAKER_DECLINED == (int)SK_DECLINED,
               "the public return codes are the internal ones");
_Static_assert(sizeof(struct saker_buf) == sizeof(struct exchange_buf) &&
                   offsetof(struct saker_buf, base) == offsetof(struct exchange_buf, base) &&
                   offsetof(struct saker_buf, len) == offsetof(struct exchange_buf, len),
               "a module's pieces are passed on as they are");
_Static_assert((int)SAKER_SEND_MORE == (int)EXCHANGE_MORE &&
                   (int)SAKER_SEND_FINAL == (int)EXCHANGE_FINAL &&
                   (int)SAKER_SEND_ERROR == (int)EXCHANGE_ERROR,
               "send states");

#define EX(ex) ((struct exchange *)(ex))
#define CEX(ex) ((const struct exchange *)(ex))

/* ---- the request ---- */

const char *saker_exchange_method(const saker_exchange *ex)
{
    return CEX(ex)->method_name;
}

static const char *with_len(const char *s, size_t n, size_t *len)
{
    if (len != NULL)
        *len = s != NULL ? n : 0;
    return s;
}

const char *saker_exchange_target(const saker_exchange *ex, size_t *len)
{
    return with_len(CEX(ex)->target, CEX(ex)->target_len, len);
}

const char *saker_exchange_path(const saker_exchange *ex, size_t *len)
{
    return with_len(CEX(ex)->path, CEX(ex)->path_len, len);
}

const char *saker_exchange_query(const saker_exchange *ex, size_t *len)
{
    return with_len(CEX(ex)->query, CEX(ex)->query_len, len);
}

const char *saker_exchange_host(const saker_exchange *ex, size_t *len)
{
    return with_len(CEX(ex)->host, CEX(ex)->host_len, len);
}

int saker_exchange_http_version(const saker_exchange *ex)
{
    return CEX(ex)->version_major * 10 + CEX(ex)->version_minor;
}

const char *saker_exchange_header(const saker_exchange *ex, const char *name, size_t *len)
{
    size_t n;
    const char *v = exchange_header(CEX(ex), name, &n);
    return with_len(v, n, len);
}

size_t saker_exchange_header_count(const saker_exchange *ex)
{
    return CEX(ex)->header_count;
}

int saker_exchange_header_at(const saker_exchange *ex, size_t i, const char **name,
                             size_t *name_len, const char **value, size_t *value_len)
{
    if (i >= CEX(ex)->header_count)
        return SAKER_ERROR;
    const struct header_field *h = &CEX(ex)->headers[i];
    *name = h->name, *name_len = h->name_len;
    *value = h->value, *value_len = h->value_len;
    return SAKER_OK;
}

const struct sockaddr *saker_exchange_peer(const saker_exchange *ex)
{
    return CEX(ex)->peer;
}

const char *saker_exchange_client_subject(const saker_exchange *ex)
{
    return CEX(ex)->client_subject;
}

void *saker_exchange_alloc(saker_exchange *ex, size_t size)
{
    return arena_alloc(EX(ex)->arena, size);
}

const char *saker_exchange_trailer(const saker_exchange *ex, const char *name, size_t *len)
{
    size_t name_len = strlen(name);
    for (size_t i = 0; i < CEX(ex)->request_trailer_count; i++) {
        const struct header_field *h = &CEX(ex)->request_trailers[i];
        if (h->name_len == name_len && strncasecmp(h->name, name, name_len) == 0)
            return with_len(h->value, h->value_len, len);
    }
    return NULL;
}

/* ---- the response ---- */

int saker_exchange_add_header(saker_exchange *ex, const char *name, const char *value)
{
    return exchange_add_header(EX(ex), name, value);
}

void saker_exchange_respond(saker_exchange *ex, int status, const void *body, size_t len)
{
    EX(ex)->status = status;
    if (len > 0)
        exchange_set_body(EX(ex), body, len, 0);
    exchange_respond(EX(ex));
}

void saker_exchange_respond_file(saker_exchange *ex, int status, int fd, off_t offset,
                                 size_t len)
{
    struct exchange_file file = {.fd = fd, .offset = offset, .len = len};
    EX(ex)->status = status;
    exchange_set_file(EX(ex), &file);
    exchange_respond(EX(ex));
}

void saker_exchange_respond_error(saker_exchange *ex, int status)
{
    exchange_respond_error(EX(ex), status);
}

/* ---- generators and readers, forwarded ---- */

struct module_record {
    const struct saker_generator *gen;
    void *gen_arg;
    const struct saker_body_reader *reader;
    void *reader_arg;
};

static struct module_record *record_of(struct exchange *ex)
{
    if (ex->module == NULL && (ex->module = arena_alloc(ex->arena, sizeof(struct module_record))))
        memset(ex->module, 0, sizeof(struct module_record));
    return ex->module;
}

static void on_proceed(struct exchange *ex, void *arg)
{
    struct module_record *r = arg;
    if (r->gen->proceed != NULL)
        r->gen->proceed((saker_exchange *)ex, r->gen_arg);
}

static void on_stop(struct exchange *ex, void *arg)
{
    struct module_record *r = arg;
    if (r->gen->stop != NULL)
        r->gen->stop((saker_exchange *)ex, r->gen_arg);
}

static const struct exchange_generator forward_generator = {on_proceed, on_stop};

void saker_exchange_defer(saker_exchange *ex, const struct saker_generator *gen, void *arg)
{
    struct module_record *r = record_of(EX(ex));
    if (r == NULL)
        return; /* out of memory: no generator, so the exchange is answered 500 */
    r->gen = gen, r->gen_arg = arg;
    exchange_set_generator(EX(ex), &forward_generator, r);
}

int saker_exchange_start(saker_exchange *ex, int status)
{
    EX(ex)->status = status;
    return exchange_start(EX(ex));
}

int saker_exchange_send(saker_exchange *ex, const struct saker_buf *bufs, size_t n,
                        enum saker_send state)
{
    return exchange_send(EX(ex), (const struct exchange_buf *)bufs, n,
                         (enum exchange_send_state)state);
}

int saker_exchange_add_trailer(saker_exchange *ex, const char *name, const char *value)
{
    return exchange_add_trailer(EX(ex), name, value);
}

static void on_data(struct exchange *ex, const char *data, size_t len, void *arg)
{
    struct module_record *r = arg;
    r->reader->data((saker_exchange *)ex, data, len, r->reader_arg);
}

static void on_end(struct exchange *ex, const struct header_field *trailers, size_t count,
                   void *arg)
{
    struct module_record *r = arg;
    (void)trailers, (void)count; /* saker_exchange_trailer reads them */
    r->reader->end((saker_exchange *)ex, r->reader_arg);
}

static void on_error(struct exchange *ex, int status, void *arg)
{
    struct module_record *r = arg;
    r->reader->error((saker_exchange *)ex, status, r->reader_arg);
}

static const struct exchange_body_reader forward_reader = {on_data, on_end, on_error};

int saker_exchange_read_body(saker_exchange *ex, const struct saker_body_reader *reader,
                             void *arg)
{
    struct module_record *r = record_of(EX(ex));
    if (r == NULL || reader == NULL || reader->data == NULL || reader->end == NULL ||
        reader->error == NULL)
        return SAKER_ERROR;
    r->reader = reader, r->reader_arg = arg;
    return exchange_read_body(EX(ex), &forward_reader, r);
}

void saker_exchange_pause_body(saker_exchange *ex)
{
    exchange_pause_body(EX(ex));
}

void saker_exchange_resume_body(saker_exchange *ex)
{
    exchange_resume_body(EX(ex));
}

int saker_exchange_upgrade(saker_exchange *ex, const char *protocol)
{
    return exchange_upgrade(EX(ex), protocol);
}
