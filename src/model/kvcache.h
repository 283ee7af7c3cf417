/* F16 key/value cache, one per session: the session owns it and hands it to each forward
 * pass in gm_exec; the attention block (gm_attn_block, layers.c) stores into it and attends
 * over it. Every layer that computes its own K/V owns a buffer: local (sliding-window)
 * layers a ring of n_swa + n_batch positions, global layers the whole context. Position p
 * lives in cell p % cells. Layers that read another layer's cache (Gemma 4 KV sharing)
 * point at their source's buffer. */
#ifndef GM_KVCACHE_H
#define GM_KVCACHE_H

#include "arch.h"

#include <stdint.h>

typedef struct gm_kv_layer {
    uint16_t *k;      /* [cells][n_head_kv * head_dim] */
    uint16_t *vt;     /* [n_head_kv * head_dim][cells], transposed for the V product */
    int32_t cells;
    int32_t kv_dim;   /* n_head_kv * head_dim */
    bool owned;       /* false for a layer that reads another's buffers */
} gm_kv_layer;

typedef struct gm_kvcache {
    int32_t n_layer;
    int32_t n_ctx;
    gm_kv_layer *layer;
    uint64_t bytes;      /* allocated */
    uint64_t bytes_full; /* with n_ctx cells on every owning layer */
} gm_kvcache;

/* Sizes the cache from the model's geometry. n_batch bounds the tokens per forward pass. */
gemma_status gm_kvcache_create(const gemma_model *m, int32_t n_ctx, int32_t n_batch,
                               gm_kvcache **out, gemma_error *err);
void gm_kvcache_free(gm_kvcache *kv);

/* Stores F16(k), F16(v) of one token (kv_dim floats each) at position pos of layer il. */
void gm_kvcache_store(gm_kvcache *kv, int32_t il, int32_t pos, const float *k, const float *v);

#endif
