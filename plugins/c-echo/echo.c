/*
 * c-echo: a Rota native plugin written in C against rota_plugin.h, the
 * template for authors in languages other than Rust.
 *
 * Like the Rust example-echo, it "rotates" a Generic secret whose target is
 * the secret itself: set and test only check that a pending value arrived;
 * generate is NULL, so Rota's password policy makes the value; finish and
 * rollback are NULL too (not implemented).
 *
 * Build (Linux):
 *   cc -shared -fPIC -O2 -I crates/rota-plugin-abi/include \
 *      plugins/c-echo/echo.c -o plugins/c-echo/libc_echo.so
 *
 * Then `rota plugins check plugins/c-echo` shows it, and a rotation block
 * names it `plugin = "c-echo"`.
 *
 * Built with -DROTA_TEST_NULL_SET it leaves the required `set` NULL, which
 * the host must refuse (a test does).
 */
#include <stdlib.h>
#include <string.h>

#include "rota_plugin.h"

static const char DESCRIPTOR[] =
    "{\"name\":\"c-echo\",\"version\":\"0.1.0\","
    "\"description\":\"checks that a pending value arrived; a C template\","
    "\"secret_types\":[\"Generic\"],\"settings\":[],"
    "\"steps\":{\"generate\":false,\"finish\":false,\"rollback\":false},"
    "\"capabilities\":[]}";

/* Copies `len` bytes into a buffer this library owns (freed by
 * echo_free_buffer). */
static RotaBuffer owned(const char *bytes, size_t len) {
    RotaBuffer b = {NULL, 0, 0};
    if (len == 0) {
        return b;
    }
    b.ptr = (uint8_t *)malloc(len);
    if (b.ptr == NULL) {
        return b;
    }
    memcpy(b.ptr, bytes, len);
    b.len = len;
    b.cap = len;
    return b;
}

static void echo_free_buffer(RotaBuffer buf) { free(buf.ptr); }

static RotaStatus echo_describe(RotaBuffer *out) {
    *out = owned(DESCRIPTOR, sizeof DESCRIPTOR - 1);
    return out->ptr ? ROTA_OK : ROTA_FAILED;
}

static void say(const RotaHostTable *host, const void *ctx, const char *msg) {
    if (host != NULL && host->log != NULL) {
        host->log(ctx, ROTA_LOG_INFO, (const uint8_t *)msg, strlen(msg));
    }
}

/* set and test: the input JSON must carry a pending value. */
static RotaStatus check_pending(const RotaHostTable *host, const void *ctx,
                                const uint8_t *input, size_t input_len, RotaBuffer *out,
                                RotaBuffer *err, const char *step) {
    /* The input is not NUL-terminated: copy it before using string functions. */
    char *text = (char *)malloc(input_len + 1);
    if (text == NULL) {
        *err = owned("out of memory", 13);
        return ROTA_FAILED;
    }
    memcpy(text, input, input_len);
    text[input_len] = '\0';
    int has_pending = strstr(text, "\"pending\":\"") != NULL;
    free(text);
    if (!has_pending) {
        static const char msg[] = "no pending value in the step input";
        *err = owned(msg, sizeof msg - 1);
        return ROTA_PERMANENT;
    }
    say(host, ctx, step);
    *out = owned("{}", 2);
    return ROTA_OK;
}

#ifndef ROTA_TEST_NULL_SET
static RotaStatus echo_set(const RotaHostTable *host, const void *ctx, const uint8_t *input,
                           size_t input_len, RotaBuffer *out, RotaBuffer *err) {
    return check_pending(host, ctx, input, input_len, out, err, "c-echo: set");
}
#endif

static RotaStatus echo_test(const RotaHostTable *host, const void *ctx, const uint8_t *input,
                            size_t input_len, RotaBuffer *out, RotaBuffer *err) {
    return check_pending(host, ctx, input, input_len, out, err, "c-echo: test");
}

static const RotaPluginTable TABLE = {
    ROTA_ABI_VERSION,
    sizeof(RotaPluginTable),
    echo_describe,
    NULL, /* generate: Rota's password policy makes the value */
#ifdef ROTA_TEST_NULL_SET
    NULL,
#else
    echo_set,
#endif
    echo_test,
    NULL, /* finish */
    NULL, /* rollback */
    echo_free_buffer,
};

const RotaPluginTable *rota_plugin_v1(const RotaHostTable *host) {
    (void)host;
    return &TABLE;
}

/* For Rota's test that keeps rota_plugin.h true: the sizes and offsets this
 * compiler gives the header's types, in a fixed order. */
void rota_c_echo_layout(size_t out[16]) {
    out[0] = sizeof(RotaBuffer);
    out[1] = offsetof(RotaBuffer, len);
    out[2] = offsetof(RotaBuffer, cap);
    out[3] = sizeof(RotaHostTable);
    out[4] = offsetof(RotaHostTable, log);
    out[5] = offsetof(RotaHostTable, deadline_remaining_ms);
    out[6] = offsetof(RotaHostTable, call_api);
    out[7] = offsetof(RotaHostTable, free_buffer);
    out[8] = sizeof(RotaPluginTable);
    out[9] = offsetof(RotaPluginTable, describe);
    out[10] = offsetof(RotaPluginTable, generate);
    out[11] = offsetof(RotaPluginTable, set);
    out[12] = offsetof(RotaPluginTable, test);
    out[13] = offsetof(RotaPluginTable, finish);
    out[14] = offsetof(RotaPluginTable, rollback);
    out[15] = offsetof(RotaPluginTable, free_buffer);
}
