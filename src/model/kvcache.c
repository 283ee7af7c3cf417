#include "kvcache.h"

#include "ops.h"
#include "../util/util.h"

#include <stdlib.h>

void gm_kvcache_free(gm_kvcache *kv)
{
    if (!kv)
        return;
    if (kv->layer) {
        for (int32_t il = 0; il < kv->n_layer; il++) {
            if (kv->layer[il].owned) {
                gm_aligned_free(kv->layer[il].k);
                gm_aligned_free(kv->layer[il].vt);
            }
        }
    }
    free(kv->layer);
    free(kv);
}

/* Bytes of one K or V buffer, overflow-checked. */
static bool buf_bytes(int32_t cells, int32_t kv_dim, uint64_t *out)
{
    return gm_mul_u64((uint64_t)cells, (uint64_t)kv_dim, out) && gm_mul_u64(*out, 2, out);
}

gemma_status gm_kvcache_create(const gemma_model *m, int32_t n_ctx, int32_t n_batch,
                               gm_kvcache **out, gemma_error *err)
{
    *out = NULL;
    const int32_t n_layer = m->hp.n_layer;
    gm_kvcache *kv = calloc(1, sizeof *kv);
    if (!kv || !(kv->layer = gm_calloc((size_t)n_layer, sizeof *kv->layer))) {
        free(kv);
        return gm_fail(err, GEMMA_E_NOMEM, "out of memory allocating the KV cache index");
    }
    kv->n_layer = n_layer;
    kv->n_ctx = n_ctx;
    for (int32_t il = 0; il < n_layer; il++) {
        const gm_layer_geom *g = &m->layers[il];
        if (g->kv_src != il)
            continue;
        gm_kv_layer *L = &kv->layer[il];
        /* A chunk of n_batch queries needs its n_swa-1 predecessors plus itself. */
        int64_t cells = g->is_swa && m->hp.n_swa > 0 ? (int64_t)m->hp.n_swa + n_batch : n_ctx;
        if (cells > n_ctx)
            cells = n_ctx;
        L->cells = (int32_t)cells;
        L->kv_dim = g->n_head_kv * g->head_dim;
        L->owned = true;
        uint64_t b, bf;
        if (!buf_bytes(L->cells, L->kv_dim, &b) || !buf_bytes(n_ctx, L->kv_dim, &bf) ||
            b > SIZE_MAX) {
            gm_kvcache_free(kv);
            return gm_fail(err, GEMMA_E_NOMEM, "KV cache of layer %d is too large", (int)il);
        }
        L->k = gm_aligned_alloc((size_t)b);
        L->vt = gm_aligned_alloc((size_t)b);
        if (!L->k || !L->vt) {
            gm_kvcache_free(kv);
            return gm_fail(err, GEMMA_E_NOMEM, "out of memory allocating %llu bytes of KV cache",
                           (unsigned long long)(2 * b));
        }
        /* Zeroed so that never-written cells read as 0 rather than garbage (never visible). */
        memset(L->k, 0, (size_t)b);
        memset(L->vt, 0, (size_t)b);
        kv->bytes += 2 * b;
        kv->bytes_full += 2 * bf;
    }
    for (int32_t il = 0; il < n_layer; il++) {
        int32_t src = m->layers[il].kv_src;
        if (src != il)
            kv->layer[il] = (gm_kv_layer){kv->layer[src].k, kv->layer[src].vt, kv->layer[src].cells,
                                          kv->layer[src].kv_dim, false};
    }
    *out = kv;
    return GEMMA_OK;
}

void gm_kvcache_store(gm_kvcache *kv, int32_t il, int32_t pos, const float *k, const float *v)
{
    gm_kv_layer *L = &kv->layer[il];
    const int32_t cell = pos % L->cells;
    gm_f32_to_f16_row(L->k + (size_t)cell * (size_t)L->kv_dim, k, L->kv_dim);
    for (int32_t d = 0; d < L->kv_dim; d++)
        L->vt[(size_t)d * (size_t)L->cells + (size_t)cell] = gm_f16_from_f32_fast(v[d]);
}
