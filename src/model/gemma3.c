/* Gemma 3 (general.architecture = "gemma3"): hyper-parameters, tensor binding and the
 * forward pass of docs: gemma-spec.md section 3. */
#include "arch.h"
#include "layers.h"
#include "../util/util.h"

#include <math.h>
#include <stdlib.h>

#define ARCH "gemma3"

typedef struct g3_layer {
    gm_attn_weights attn;
    gm_ffn_weights ffn;
} g3_layer;

typedef struct g3_weights {
    gm_io_weights io;
    g3_layer *layer;
} g3_weights;

/* ---- hyper-parameters ---- */

typedef struct g3_keys {
    gm_base_keys b;
    uint32_t key_len, val_len, n_rot, swa_period;
} g3_keys;

static gemma_status read_scalars(const gguf_ctx *g, g3_keys *k, gemma_error *err)
{
    gemma_status st;
    if ((st = gm_read_size_keys(g, ARCH, &k->b, err)) ||
        (st = gm_key_u32(g, ARCH, "attention.sliding_window", false, &k->b.n_swa, err)) ||
        (st = gm_read_rope_keys(g, ARCH, &k->b, err)))
        return st;
    /* llama.cpp reads the period only as a scalar; an array is ignored (period stays 6). */
    k->swa_period = 6;
    const gguf_kv *pat = gguf_find(g, ARCH ".attention.sliding_window_pattern");
    if (pat && pat->type != GGUF_T_ARRAY &&
        (st = gm_key_u32(g, ARCH, "attention.sliding_window_pattern", false, &k->swa_period, err)))
        return st;
    return GEMMA_OK;
}

/* One head width for every layer: K and V lengths must agree, RoPE may rotate a prefix. */
static gemma_status read_head_dims(const gguf_ctx *g, g3_keys *k, gemma_error *err)
{
    gemma_status st;
    k->key_len = k->b.n_embd / k->b.n_head[0];
    if ((st = gm_key_u32(g, ARCH, "attention.key_length", false, &k->key_len, err)))
        return st;
    k->val_len = k->key_len;
    if ((st = gm_key_u32(g, ARCH, "attention.value_length", false, &k->val_len, err)))
        return st;
    if (k->key_len != k->val_len)
        return gm_fail(err, GEMMA_E_MODEL, "key_length %u differs from value_length %u", k->key_len, k->val_len);
    if ((st = gm_check_key_range(ARCH, "attention.key_length", k->key_len, 2, 1024, err)))
        return st;
    if (k->key_len % 2)
        return gm_fail(err, GEMMA_E_MODEL, "key '" ARCH ".attention.key_length' = %u must be even", k->key_len);
    k->n_rot = k->key_len;
    if ((st = gm_key_u32(g, ARCH, "rope.dimension_count", false, &k->n_rot, err)))
        return st;
    if (k->n_rot == 0 || k->n_rot > k->key_len || k->n_rot % 2)
        return gm_fail(err, GEMMA_E_MODEL, "key '" ARCH ".rope.dimension_count' = %u must be even and in 2..%u",
                       k->n_rot, k->key_len);
    return GEMMA_OK;
}

/* Per-layer geometry from the keys (spec 3.3). */
static void build_geometry(gemma_model *m, const g3_keys *k)
{
    const float fs_glob = k->b.scale_factor > 0.0f ? 1.0f / k->b.scale_factor : 1.0f;
    const uint32_t P = k->swa_period;
    for (uint32_t il = 0; il < k->b.n_layer; il++) {
        gm_layer_geom *g = &m->layers[il];
        g->is_swa = k->b.n_swa > 0 && (P == 0 || il % P < P - 1);
        g->n_head = (int32_t)k->b.n_head[il];
        g->n_head_kv = (int32_t)k->b.n_head_kv[il];
        g->head_dim = (int32_t)k->key_len;
        g->n_ff = (int32_t)k->b.n_ff[il];
        g->n_rot = (int32_t)k->n_rot;
        g->rope_base = g->is_swa ? k->b.base_swa : k->b.base;
        g->rope_freq_scale = g->is_swa ? 1.0f : fs_glob;
        g->rope_freq_factors = NULL;
        /* llama.cpp hard-codes the 27B (62-layer) scale from n_embd/n_head (integer division). */
        g->attn_scale = k->b.n_layer == 62
                            ? 1.0f / sqrtf((float)(k->b.n_embd / k->b.n_head[0]))
                            : 1.0f / sqrtf((float)k->key_len);
        g->kv_src = (int32_t)il;
    }
    gm_set_hparams(m, &k->b);
}

/* ---- tensors ---- */

static gemma_status bind_all(gemma_model *m, g3_weights *w, gemma_error *err)
{
    gemma_status st = gm_bind_io(m, &w->io, err);
    if (st)
        return st;
    for (int il = 0; il < m->hp.n_layer; il++)
        if ((st = gm_bind_attn(m, il, &w->layer[il].attn, 0, 0, err)) ||
            (st = gm_bind_ffn(m, il, &w->layer[il].ffn, err)))
            return st;
    return GEMMA_OK;
}

static void g3_free_data(void *data)
{
    g3_weights *w = data;
    if (w)
        free(w->layer);
    free(w);
}

static gemma_status g3_load(gemma_model *m, gemma_error *err)
{
    const gguf_ctx *g = m->file->ctx;
    g3_keys k = {0};
    gemma_status st = read_scalars(g, &k, err);
    if (!st)
        st = gm_validate_base_keys(ARCH, &k.b, err);
    if (st)
        return st;
    g3_weights *w = calloc(1, sizeof *w);
    m->arch_data = w;
    if (!w || !(w->layer = gm_calloc(k.b.n_layer, sizeof *w->layer)))
        return gm_fail(err, GEMMA_E_NOMEM, "out of memory allocating the layers");
    if ((st = gm_alloc_layers(m, &k.b, err)))
        return st;
    st = gm_read_layer_keys(g, ARCH, &k.b, err);
    if (!st)
        st = read_head_dims(g, &k, err);
    if (!st)
        build_geometry(m, &k);
    gm_free_layer_keys(&k.b);
    return st ? st : bind_all(m, w, err);
}

/* ---- forward pass ---- */

static gemma_status g3_forward(const gemma_model *m, gm_exec *ex, const gm_batch *b, gemma_error *err)
{
    const g3_weights *w = m->arch_data;
    gemma_status st = gm_forward_begin(m, &w->io, ex, b, err);
    if (st)
        return st;
    for (int32_t il = 0; il < m->hp.n_layer; il++) {
        if ((st = gm_check_cancel(ex, err)))
            return st;
        const g3_layer *L = &w->layer[il];
        if ((st = gm_attn_block(m, &L->attn, il, ex, b)) ||
            (st = gm_ffn_block(m, &L->ffn, il, ex, b)))
            return gm_fail(err, st, "layer %d: %s", (int)il, gemma_strerror(st));
    }
    return gm_output_head(m, &w->io, ex, b, err);
}

/* gemma-spec.md 3.1 */
static const gm_size_class g3_sizes[] = {{18, "270M"}, {26, "1B"}, {34, "4B"}, {48, "12B"}, {62, "27B"}, {0, NULL}};

const gm_arch_ops gm_arch_gemma3 = {
    .name = "gemma3",
    .sizes = g3_sizes,
    .chat = GM_CHAT_GEMMA3,
    .turn_end = "<end_of_turn>\n",
    .load = g3_load,
    .free_data = g3_free_data,
    .scratch_create = gm_scratch_create,
    .scratch_free = gm_scratch_free,
    .forward = g3_forward,
};
