/*
 * rota_plugin.h: the C ABI of Rota's native rotation plugins, version 1.0.
 *
 * A plugin is a shared library that exports one function,
 *
 *     const RotaPluginTable *rota_plugin_v1(const RotaHostTable *host);
 *
 * returning a pointer to a table that lives as long as the library (a
 * static). Rota never unloads a plugin library.
 *
 * This header mirrors the Rust definitions in the rota-plugin-abi crate
 * (src/ffi.rs), which are the reference; a test compiles a C plugin against
 * this header, checks every size and offset against the Rust tables, and
 * runs rotations through it. The crate docs describe the JSON payloads
 * (the descriptor, the step input and output, call_api requests).
 *
 * Rules, in short:
 *
 * - Versions. Both tables start with abi_version (major << 16 | minor) and
 *   struct_size (sizeof the table as its writer knows it). The host reads
 *   those two fields before anything else and refuses another major or a
 *   table smaller than this version's. Minor versions only add fields at
 *   the end; a reader uses a field only when struct_size covers it.
 * - Required and optional functions. describe, set, test and free_buffer
 *   must not be NULL (the host refuses the library). generate, finish,
 *   rollback and verify may be NULL: the plugin does not implement that
 *   step (as returning ROTA_UNSUPPORTED would). The descriptor's "steps"
 *   flags must agree for generate, finish and rollback (a step declared but
 *   NULL is treated as absent); verify needs no flag: non-NULL means it is
 *   implemented.
 * - ABI 1.1 added verify at the end of the plugin table (while a verified
 *   rotation soaks: do the consumers still work with "current"?). A 1.0
 *   plugin's table ends before it and keeps loading.
 * - Buffers. A RotaBuffer is freed only by the side that allocated it, with
 *   that side's free_buffer, which takes the buffer BY VALUE. The host
 *   frees a plugin's out/err buffers with the plugin table's free_buffer;
 *   the plugin frees call_api's out buffer with the host table's. A NULL
 *   ptr is an empty buffer and is never freed. Input slices (ptr, len) are
 *   borrowed for the call only. Strings are UTF-8, never NUL-terminated.
 * - ctx is an opaque host pointer valid during one call: pass it back to the
 *   host functions, never keep it.
 * - Deadlines. Each step runs under a deadline (see the crate docs for how
 *   it is derived); deadline_remaining_ms(ctx) says how much is left. A
 *   step that overruns is reported failed and its answer ignored: the host
 *   cannot stop a native call, so honour the deadline.
 * - Secrets. Values arrive only in the step input's "pending", "current"
 *   and "previous". Never log them and never put them in an error message.
 * - Threads. Steps of different rotations may run concurrently on different
 *   threads: every function must be thread-safe.
 *
 * Naming and layout. Build the library as lib<name>.so (Linux; .dylib on
 * macOS, <name>.dll on Windows) and put it in a plugin folder: plugins/
 * beside the configuration, a folder named by plugins { paths = [...] } or
 * --plugin-dir, directly or in a subfolder (plugins/<name>/lib<name>.so).
 * A plugin.toml beside it may pin the file's digest:
 *
 *     sha256  = "<64 hex digits>"   # the library's SHA-256
 *     library = "libmy_plugin.so"   # optional: the file the pin applies to
 *
 * (other keys are refused). Configurations refer to the plugin by the
 * "name" its descriptor gives.
 */
#ifndef ROTA_PLUGIN_H
#define ROTA_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ROTA_ABI_MAJOR 1u
#define ROTA_ABI_MINOR 1u
#define ROTA_ABI_VERSION ((ROTA_ABI_MAJOR << 16) | ROTA_ABI_MINOR)
#define ROTA_ENTRY_SYMBOL "rota_plugin_v1"

/* Status codes every function returns. */
typedef uint32_t RotaStatus;
#define ROTA_OK 0u          /* success */
#define ROTA_FAILED 1u      /* failed; retrying may help (err says why) */
#define ROTA_PERMANENT 2u   /* failed; retrying will not help */
#define ROTA_UNSUPPORTED 3u /* the plugin has no such optional step */
#define ROTA_PANICKED 4u    /* the plugin crashed inside the call */
#define ROTA_BAD_INPUT 5u   /* the input payload could not be decoded */
#define ROTA_DENIED 6u      /* call_api: capability not declared */
#define ROTA_DEADLINE 7u    /* the step's deadline has passed */

/* Log levels of RotaHostTable.log. */
#define ROTA_LOG_ERROR 1u
#define ROTA_LOG_WARN 2u
#define ROTA_LOG_INFO 3u
#define ROTA_LOG_DEBUG 4u
#define ROTA_LOG_TRACE 5u

/* An owned byte buffer crossing the ABI; cap is meaningful only to the
 * allocating side. */
typedef struct RotaBuffer {
    uint8_t *ptr;
    size_t len;
    size_t cap;
} RotaBuffer;

typedef struct RotaHostTable RotaHostTable;

typedef void (*RotaLogFn)(const void *ctx, uint32_t level, const uint8_t *msg, size_t len);
typedef uint64_t (*RotaRemainingFn)(const void *ctx);
typedef RotaStatus (*RotaCallApiFn)(const void *ctx, const uint8_t *req, size_t req_len,
                                    RotaBuffer *out);
typedef void (*RotaFreeFn)(RotaBuffer buf);
typedef RotaStatus (*RotaDescribeFn)(RotaBuffer *out);
typedef RotaStatus (*RotaStepFn)(const RotaHostTable *host, const void *ctx,
                                 const uint8_t *input, size_t input_len, RotaBuffer *out,
                                 RotaBuffer *err);

/* What the host offers (host -> plugin; lives as long as the process). */
struct RotaHostTable {
    uint32_t abi_version;
    uint32_t struct_size;
    RotaLogFn log;                           /* a message into Rota's log */
    RotaRemainingFn deadline_remaining_ms;   /* ms left in this step */
    RotaCallApiFn call_api;                  /* a signed OpenAPI call */
    RotaFreeFn free_buffer;                  /* frees host-allocated buffers */
};

/* What the plugin offers (plugin -> host; lives as long as the library). */
typedef struct RotaPluginTable {
    uint32_t abi_version;  /* ROTA_ABI_VERSION */
    uint32_t struct_size;  /* sizeof(RotaPluginTable) */
    RotaDescribeFn describe;  /* required */
    RotaStepFn generate;      /* optional (NULL: not implemented) */
    RotaStepFn set;           /* required */
    RotaStepFn test;          /* required */
    RotaStepFn finish;        /* optional */
    RotaStepFn rollback;      /* optional */
    RotaFreeFn free_buffer;   /* required: frees plugin-allocated buffers */
    RotaStepFn verify;        /* optional (ABI 1.1) */
} RotaPluginTable;

/* The entry symbol the plugin defines. */
const RotaPluginTable *rota_plugin_v1(const RotaHostTable *host);

#ifdef __cplusplus
}
#endif

#endif /* ROTA_PLUGIN_H */
