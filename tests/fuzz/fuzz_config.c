/*
 * fuzz_config.c - libFuzzer driver: the config loader, YAML text to
 * config_load_string, then the --urls override and the router a worker
 * builds from the result.
 *
 * The input is the YAML text; if it holds a NUL byte, what follows the
 * first one is the --urls value (as saker --urls passes it). The static
 * roots it names are looked up for real (the loader checks them).
 *
 * Checked beyond the sanitizers: a refused file gets a message that
 * locates the problem ("fuzz.yaml:LINE:COLUMN: ..."), a refused --urls
 * gets one at all.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "conf/config.h"
#include "tests/fuzz/fuzz_env.h"
#include "worker/router.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* "fuzz.yaml:12:3: ..." */
static bool located(const char *message)
{
    static const char name[] = "fuzz.yaml:";
    const char *p = message;
    if (strncmp(p, name, sizeof name - 1) != 0)
        return false;
    p += sizeof name - 1;
    for (int field = 0; field < 2; field++) {
        if (!isdigit((unsigned char)*p))
            return false;
        while (isdigit((unsigned char)*p))
            p++;
        if (*p++ != ':')
            return false;
    }
    return *p == ' ' && p[1] != '\0';
}

static void check_router(const struct config *config)
{
    struct router router;
    struct err err;
    if (router_build(&router, config, &err) == SK_OK)
        router_destroy(&router);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool quiet;
    if (!quiet) {
        log_set_level(LOG_ERROR);
        quiet = true;
    }
    const char *text = (const char *)data;
    const uint8_t *nul = memchr(data, '\0', size);
    size_t len = nul != NULL ? (size_t)(nul - data) : size;
    struct err err;
    struct config *config = config_load_string(text, len, "fuzz.yaml", &err);
    if (config == NULL) {
        if (!located(err.message) && strcmp(err.message, "out of memory") != 0)
            fuzz_fail("a config error that does not say where: %s", err.message);
        return 0;
    }
    check_router(config);
    if (nul != NULL) {
        size_t urls_len = size - len - 1;
        char *urls = malloc(urls_len + 1);
        if (urls == NULL)
            fuzz_fail("out of memory");
        memcpy(urls, nul + 1, urls_len);
        urls[urls_len] = '\0';
        if (config_override_urls(config, urls, &err) == SK_OK)
            check_router(config);
        else if (err.message[0] == '\0')
            fuzz_fail("--urls refused without a message");
        free(urls);
    }
    config_free(config);
    return 0;
}
