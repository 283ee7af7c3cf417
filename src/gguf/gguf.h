/* GGUF v2/v3 reader for untrusted files.
 *
 * gguf_parse() is a pure function over a byte buffer: it validates the whole header,
 * metadata and tensor table (every check of docs: gemma-spec.md sections 1.2 and 1.3) and
 * returns an index whose pointers refer into that buffer. Nothing is trusted until it has
 * been checked against the bytes actually present. gguf_file_open() maps a file
 * read-only (or reads it, when mapping is unavailable) and parses it.
 */
#ifndef GM_GGUF_H
#define GM_GGUF_H

#include "gemma.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum gguf_vtype {
    GGUF_T_UINT8 = 0, GGUF_T_INT8 = 1, GGUF_T_UINT16 = 2, GGUF_T_INT16 = 3,
    GGUF_T_UINT32 = 4, GGUF_T_INT32 = 5, GGUF_T_FLOAT32 = 6, GGUF_T_BOOL = 7,
    GGUF_T_STRING = 8, GGUF_T_ARRAY = 9, GGUF_T_UINT64 = 10, GGUF_T_INT64 = 11,
    GGUF_T_FLOAT64 = 12, GGUF_T_COUNT = 13
} gguf_vtype;

/* A string inside the buffer: not NUL-terminated, may contain NUL bytes. */
typedef struct gguf_str {
    const char *ptr;
    uint64_t len;
} gguf_str;

typedef struct gguf_kv {
    gguf_str key;
    uint32_t type;        /* gguf_vtype */
    uint32_t arr_type;    /* element type when type == GGUF_T_ARRAY */
    uint64_t n;           /* element count for arrays, 1 otherwise */
    const uint8_t *data;  /* first value byte (strings and string arrays: the u64 length prefix) */
    const gguf_str *strs; /* string arrays: n decoded strings; NULL otherwise */
    uint64_t offset;      /* file offset of the record, for messages */
} gguf_kv;

#define GGUF_MAX_DIMS 4

typedef struct gguf_tensor {
    gguf_str name;
    uint32_t n_dims;
    int64_t ne[GGUF_MAX_DIMS]; /* missing dims are 1 */
    uint32_t type;             /* ggml type id, validated against gm_type_traits */
    uint64_t offset;           /* relative to the data section */
    uint64_t nbytes;
    const void *data;          /* base + data_offset + offset */
} gguf_tensor;

typedef struct gguf_ctx {
    uint32_t version;
    uint64_t n_kv;
    gguf_kv *kv;
    uint64_t n_tensors;
    gguf_tensor *tensors;
    uint32_t alignment;
    uint64_t data_offset; /* file offset of the tensor data section */
    const uint8_t *base;  /* the buffer that was parsed */
    size_t size;
} gguf_ctx;

/* Caps that keep a hostile file from making us allocate or loop without bound. */
typedef struct gguf_limits {
    uint64_t max_string;      /* bytes per string (default 64 MiB) */
    uint64_t max_array;       /* elements per array (default 16 Mi) */
    uint64_t max_kv;          /* default 65536 */
    uint64_t max_tensors;     /* default 65536 */
    uint32_t max_alignment;   /* default 1 MiB */
} gguf_limits;

gguf_limits gguf_default_limits(void);

/* Parses buf[0..len). limits may be NULL. On success *out owns the index (not the buffer). */
gemma_status gguf_parse(const void *buf, size_t len, const gguf_limits *limits, gguf_ctx **out,
                        gemma_error *err);
void gguf_free(gguf_ctx *ctx);

/* Metadata lookup by exact key (byte comparison of known length). NULL when absent. */
const gguf_kv *gguf_find(const gguf_ctx *ctx, const char *key);
const gguf_tensor *gguf_find_tensor(const gguf_ctx *ctx, const char *name);

/* Typed getters: GEMMA_E_NOT_FOUND when absent, GEMMA_E_MODEL (with a message naming the
 * key, its actual type and the expected one) when the type is not exactly the one asked. */
gemma_status gguf_get_u32(const gguf_ctx *ctx, const char *key, uint32_t *out, gemma_error *err);
gemma_status gguf_get_f32(const gguf_ctx *ctx, const char *key, float *out, gemma_error *err);
gemma_status gguf_get_bool(const gguf_ctx *ctx, const char *key, bool *out, gemma_error *err);
gemma_status gguf_get_str(const gguf_ctx *ctx, const char *key, gguf_str *out, gemma_error *err);
/* Array of elem_type: *n elements at *data (unaligned; read with memcpy). */
gemma_status gguf_get_arr(const gguf_ctx *ctx, const char *key, uint32_t elem_type, uint64_t *n,
                          const void **data, gemma_error *err);
gemma_status gguf_get_str_arr(const gguf_ctx *ctx, const char *key, uint64_t *n,
                              const gguf_str **strs, gemma_error *err);
/* Per-layer u32: a scalar (same for every layer) or a u32/i32 array of length n_layer. */
gemma_status gguf_get_u32_per_layer(const gguf_ctx *ctx, const char *key, uint32_t n_layer,
                                    uint32_t *out, gemma_error *err);

const char *gguf_vtype_name(uint32_t type);

/* A parsed file: the mapping (or buffer) plus its index. */
typedef struct gguf_file {
    gguf_ctx *ctx;
    const uint8_t *data;
    size_t size;
    bool mapped;
} gguf_file;

gemma_status gguf_file_open(const char *path, bool use_mmap, gguf_file **out, gemma_error *err);
void gguf_file_close(gguf_file *f);

#endif
