/* Private parts of the GGUF index, shared by the parser, the typed getters and the
 * public inspection API. Not part of the gguf.h contract. */
#ifndef GM_GGUF_INTERNAL_H
#define GM_GGUF_INTERNAL_H

#include "gguf.h"

/* Open-addressing table of record indexes + 1 (0 = empty slot), keyed by name bytes. */
typedef struct gm_name_hash {
    uint32_t *slots;
    uint64_t mask;
} gm_name_hash;

/* gguf_parse allocates this and hands out &pub; gguf_free casts back. */
typedef struct gm_gguf_impl {
    gguf_ctx pub; /* first member */
    gm_name_hash kv_hash;
    gm_name_hash tensor_hash;
} gm_gguf_impl;

/* Printable, bounded, NUL-terminated copy of a name from the file, for messages. */
#define GM_GGUF_NAME_BUF 80
void gm_gguf_name(gguf_str s, char out[GM_GGUF_NAME_BUF]);

#endif
