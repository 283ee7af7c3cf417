/* Gemma 4 (general.architecture = "gemma4"), dense models: hyper-parameters, tensor binding
 * and the forward pass of docs: gemma-spec.md section 4. What Gemma 3 lacks: a per-layer
 * sliding-window pattern, two head widths (local / global), per-layer embeddings (PLE),
 * trailing layers that read an earlier layer's KV cache, V = raw K projection when attn_v
 * is absent, a weightless V norm, proportional RoPE through rope_freqs and an optional
 * per-layer output scale. MoE models (expert_count > 0) are refused at load time. */
#include "arch.h"
#include "ops.h"
#include "../runtime/kvcache.h"
#include "../util/util.h"

#include <math.h>
#include <stdlib.h>

#define ARCH "gemma4"

typedef struct g4_layer {
    const float *attn_norm, *q_norm, *k_norm, *post_attn_norm, *ffn_norm, *post_ffw_norm;
    const float *ple_post_norm, *out_scale; /* out_scale: one float or NULL */
    const gm_tensor *wq, *wk, *wv, *wo, *gate, *up, *down; /* wv NULL: V = raw K */
    const gm_tensor *ple_gate, *ple_proj;
} g4_layer;

typedef struct g4_weights {
    const gm_tensor *tok_embd;
    const gm_tensor *output; /* token_embd when tied */
    const float *output_norm;
    int32_t n_pl;            /* per-layer input width, 0 = no PLE */
    const gm_tensor *ple_embd, *ple_model_proj;
    const float *ple_proj_norm;
    g4_layer *layer;
} g4_weights;

/* ---- hyper-parameters ---- */

typedef struct g4_keys {
    uint32_t n_ctx_train, n_embd, n_layer, n_pl, n_swa, n_shared, n_expert;
    uint32_t *n_ff, *n_head, *n_head_kv; /* per layer */
    bool *is_swa;                        /* per layer */
    uint32_t hd, hd_swa, n_rot, n_rot_swa;
    float eps, base, base_swa, scale_factor, softcap;
} g4_keys;

static gemma_status read_rope_type(const gguf_ctx *g, gemma_error *err)
{
    gguf_str type;
    gemma_status st = gguf_get_str(g, ARCH ".rope.scaling.type", &type, err);
    if (st == GEMMA_E_NOT_FOUND)
        return GEMMA_OK;
    if (st)
        return st;
    if (!(type.len == 6 && !memcmp(type.ptr, "linear", 6)) && !(type.len == 4 && !memcmp(type.ptr, "none", 4)))
        return gm_fail(err, GEMMA_E_UNSUPPORTED, "key '" ARCH ".rope.scaling.type': only linear scaling is supported");
    return GEMMA_OK;
}

static gemma_status read_scalars(const gguf_ctx *g, g4_keys *k, gemma_error *err)
{
    gemma_status st;
    if ((st = gm_key_u32(g, ARCH, "context_length", true, &k->n_ctx_train, err)) ||
        (st = gm_key_u32(g, ARCH, "embedding_length", true, &k->n_embd, err)) ||
        (st = gm_key_u32(g, ARCH, "block_count", true, &k->n_layer, err)) ||
        (st = gm_key_f32(g, ARCH, "attention.layer_norm_rms_epsilon", true, &k->eps, err)) ||
        (st = gm_key_u32(g, ARCH, "attention.sliding_window", true, &k->n_swa, err)) ||
        (st = gm_key_u32(g, ARCH, "embedding_length_per_layer_input", true, &k->n_pl, err)))
        return st;
    if ((st = gm_key_u32(g, ARCH, "expert_count", false, &k->n_expert, err)))
        return st;
    if (k->n_expert > 0)
        return gm_fail(err, GEMMA_E_UNSUPPORTED,
                       "MoE Gemma 4 models (" ARCH ".expert_count = %u) are not supported yet", k->n_expert);
    k->base = 10000.0f;
    k->base_swa = 10000.0f;
    k->softcap = 30.0f; /* llama.cpp's hparam default when the key is absent */
    if ((st = gm_key_f32(g, ARCH, "rope.freq_base", false, &k->base, err)) ||
        (st = gm_key_f32(g, ARCH, "rope.freq_base_swa", false, &k->base_swa, err)) ||
        (st = gm_key_f32(g, ARCH, "rope.scale_linear", false, &k->scale_factor, err)) ||
        (st = gm_key_f32(g, ARCH, "rope.scaling.factor", false, &k->scale_factor, err)) ||
        (st = gm_key_f32(g, ARCH, "final_logit_softcapping", false, &k->softcap, err)) ||
        (st = gm_key_u32(g, ARCH, "attention.shared_kv_layers", false, &k->n_shared, err)))
        return st;
    return read_rope_type(g, err);
}

static gemma_status check_range(const char *key, uint32_t v, uint32_t lo, uint32_t hi, gemma_error *err)
{
    if (v < lo || v > hi)
        return gm_fail(err, GEMMA_E_MODEL, "key '" ARCH ".%s' = %u is outside [%u, %u]", key, v, lo, hi);
    return GEMMA_OK;
}

static gemma_status validate_scalars(const g4_keys *k, gemma_error *err)
{
    gemma_status st;
    if ((st = check_range("block_count", k->n_layer, 1, GM_MAX_LAYERS, err)) ||
        (st = check_range("embedding_length", k->n_embd, 1, 1u << 16, err)) ||
        (st = check_range("context_length", k->n_ctx_train, 1, 1u << 24, err)) ||
        (st = check_range("embedding_length_per_layer_input", k->n_pl, 0, 1u << 14, err)) ||
        (st = check_range("attention.sliding_window", k->n_swa, 0, 1u << 24, err)) ||
        (st = check_range("attention.shared_kv_layers", k->n_shared, 0, k->n_layer - 1, err)))
        return st;
    if (!(k->eps > 0.0f && k->eps < 1.0f))
        return gm_fail(err, GEMMA_E_MODEL, "key '" ARCH ".attention.layer_norm_rms_epsilon' = %g is not in (0, 1)",
                       (double)k->eps);
    if (!(k->base > 0.0f) || !(k->base_swa > 0.0f))
        return gm_fail(err, GEMMA_E_MODEL, "rope.freq_base / rope.freq_base_swa must be positive");
    if (k->scale_factor < 0.0f)
        return gm_fail(err, GEMMA_E_MODEL, "key '" ARCH ".rope.scaling.factor' is negative");
    if (k->softcap < 0.0f)
        return gm_fail(err, GEMMA_E_MODEL, "key '" ARCH ".final_logit_softcapping' is negative");
    return GEMMA_OK;
}

/* attention.sliding_window_pattern: one bool per layer (or one bool for all), not a period. */
static gemma_status read_pattern(const gguf_ctx *g, g4_keys *k, gemma_error *err)
{
    const char *key = ARCH ".attention.sliding_window_pattern";
    const gguf_kv *kv = gguf_find(g, key);
    if (!kv)
        return gm_fail(err, GEMMA_E_MODEL, "missing required key '%s'", key);
    if (kv->type == GGUF_T_BOOL) {
        bool v;
        gemma_status st = gguf_get_bool(g, key, &v, err);
        for (uint32_t il = 0; !st && il < k->n_layer; il++)
            k->is_swa[il] = v;
        return st;
    }
    uint64_t n;
    const void *data;
    gemma_status st = gguf_get_arr(g, key, GGUF_T_BOOL, &n, &data, err);
    if (st)
        return st;
    if (n != k->n_layer)
        return gm_fail(err, GEMMA_E_MODEL, "key '%s': array has %llu elements, expected one per layer (%u)", key,
                       (unsigned long long)n, k->n_layer);
    for (uint32_t il = 0; il < k->n_layer; il++)
        k->is_swa[il] = ((const uint8_t *)data)[il] != 0;
    return GEMMA_OK;
}

static gemma_status check_heads(const g4_keys *k, gemma_error *err)
{
    for (uint32_t il = 0; il < k->n_layer; il++) {
        if (k->n_head[il] == 0 || k->n_head[il] > 1024 || k->n_head_kv[il] == 0 ||
            k->n_head[il] % k->n_head_kv[il])
            return gm_fail(err, GEMMA_E_MODEL, "layer %u: head_count %u / head_count_kv %u are invalid "
                           "(both in 1..1024, head_count a multiple of head_count_kv)",
                           il, k->n_head[il], k->n_head_kv[il]);
        if (k->n_ff[il] == 0 || k->n_ff[il] > (1u << 20))
            return gm_fail(err, GEMMA_E_MODEL, "layer %u: key '" ARCH ".feed_forward_length' = %u is invalid",
                           il, k->n_ff[il]);
    }
    return GEMMA_OK;
}

/* A head width pair: K and V lengths must agree, be even and in 2..1024. */
static gemma_status read_head_dim(const gguf_ctx *g, const char *kkey, const char *vkey, bool required,
                                  uint32_t *out, gemma_error *err)
{
    gemma_status st = gm_key_u32(g, ARCH, kkey, required, out, err);
    uint32_t v = *out;
    if (st || (st = gm_key_u32(g, ARCH, vkey, required, &v, err)))
        return st;
    if (v != *out)
        return gm_fail(err, GEMMA_E_MODEL, "key '" ARCH ".%s' = %u differs from '%s' = %u", kkey, *out, vkey, v);
    if (*out < 2 || *out > 1024 || *out % 2)
        return gm_fail(err, GEMMA_E_MODEL, "key '" ARCH ".%s' = %u must be even and in 2..1024", kkey, *out);
    return GEMMA_OK;
}

static gemma_status read_rot(const gguf_ctx *g, const char *key, uint32_t hd, uint32_t *out, gemma_error *err)
{
    gemma_status st = gm_key_u32(g, ARCH, key, false, out, err);
    if (st)
        return st;
    if (*out == 0 || *out > hd || *out % 2)
        return gm_fail(err, GEMMA_E_MODEL, "key '" ARCH ".%s' = %u must be even and in 2..%u", key, *out, hd);
    return GEMMA_OK;
}

static gemma_status read_layers(const gguf_ctx *g, g4_keys *k, gemma_error *err)
{
    gemma_status st;
    const uint32_t L = k->n_layer;
    if ((st = read_pattern(g, k, err)) ||
        (st = gm_key_u32_layers(g, ARCH, "attention.head_count", true, L, k->n_head, err)))
        return st;
    memcpy(k->n_head_kv, k->n_head, L * sizeof(uint32_t));
    if ((st = gm_key_u32_layers(g, ARCH, "attention.head_count_kv", false, L, k->n_head_kv, err)) ||
        (st = gm_key_u32_layers(g, ARCH, "feed_forward_length", true, L, k->n_ff, err)) ||
        (st = check_heads(k, err)))
        return st;
    k->hd = k->n_embd / k->n_head[0];
    if ((st = read_head_dim(g, "attention.key_length", "attention.value_length", false, &k->hd, err)) ||
        (st = read_head_dim(g, "attention.key_length_swa", "attention.value_length_swa", true, &k->hd_swa, err)))
        return st;
    bool any_swa = false, any_global = false;
    for (uint32_t il = 0; il < L; il++) {
        any_swa |= k->is_swa[il];
        any_global |= !k->is_swa[il];
    }
    /* llama.cpp's defaults: n_rot = key_length, n_rot_swa = n_rot. Only the kinds present
     * must fit their head width. */
    k->n_rot = k->hd;
    if (any_global && (st = read_rot(g, "rope.dimension_count", k->hd, &k->n_rot, err)))
        return st;
    k->n_rot_swa = k->n_rot;
    if (any_swa && (st = read_rot(g, "rope.dimension_count_swa", k->hd_swa, &k->n_rot_swa, err)))
        return st;
    if (any_swa && k->n_swa == 0)
        return gm_fail(err, GEMMA_E_MODEL, "key '" ARCH ".attention.sliding_window' is 0 but some layers use it");
    return GEMMA_OK;
}

/* KV sharing (spec 4.3): with S = n_layer - shared_kv_layers, a layer il >= S reads the cache
 * of layer S-2 if it is local, S-1 if global. The source must be of the same kind, since a
 * local layer's cache only keeps the window. */
static gemma_status kv_source(const g4_keys *k, uint32_t il, uint32_t *src, gemma_error *err)
{
    const uint32_t S = k->n_layer - k->n_shared;
    *src = il;
    if (il < S)
        return GEMMA_OK;
    if (S < 2)
        return gm_fail(err, GEMMA_E_MODEL, "key '" ARCH ".attention.shared_kv_layers' = %u leaves fewer than "
                       "2 layers with their own KV cache", k->n_shared);
    *src = S - (k->is_swa[il] ? 2 : 1);
    if (k->is_swa[*src] != k->is_swa[il])
        return gm_fail(err, GEMMA_E_UNSUPPORTED, "layer %u (%s) would read the KV cache of layer %u (%s): "
                       "only sharing between layers of the same kind is supported", il,
                       k->is_swa[il] ? "local" : "global", *src, k->is_swa[*src] ? "local" : "global");
    if (k->n_head[il] % k->n_head_kv[*src])
        return gm_fail(err, GEMMA_E_MODEL, "layer %u: head_count %u is not a multiple of the %u KV heads of "
                       "layer %u, whose cache it reads", il, k->n_head[il], k->n_head_kv[*src], *src);
    return GEMMA_OK;
}

/* Per-layer geometry from the keys (spec 4.3). Frequency factors are set after binding. */
static gemma_status build_geometry(gemma_model *m, const g4_keys *k, gemma_error *err)
{
    const float fs_glob = k->scale_factor > 0.0f ? 1.0f / k->scale_factor : 1.0f;
    for (uint32_t il = 0; il < k->n_layer; il++) {
        gm_layer_geom *g = &m->layers[il];
        uint32_t src;
        gemma_status st = kv_source(k, il, &src, err);
        if (st)
            return st;
        const bool swa = k->is_swa[il];
        g->is_swa = swa;
        g->n_head = (int32_t)k->n_head[il];
        g->n_head_kv = (int32_t)k->n_head_kv[src];
        g->head_dim = (int32_t)(swa ? k->hd_swa : k->hd);
        g->n_ff = (int32_t)k->n_ff[il];
        g->n_rot = (int32_t)(swa ? k->n_rot_swa : k->n_rot);
        g->rope_base = swa ? k->base_swa : k->base;
        g->rope_freq_scale = swa ? 1.0f : fs_glob;
        g->rope_freq_factors = NULL;
        g->attn_scale = 1.0f; /* Q and K are RMS-normalised: no 1/sqrt(d) */
        g->kv_src = (int32_t)src;
    }
    gm_hparams *hp = &m->hp;
    hp->n_layer = (int32_t)k->n_layer;
    hp->n_embd = (int32_t)k->n_embd;
    hp->n_ctx_train = (int32_t)k->n_ctx_train;
    hp->n_swa = (int32_t)k->n_swa;
    hp->rms_eps = k->eps;
    hp->final_softcap = k->softcap;
    hp->n_head = m->layers[0].n_head;
    hp->n_head_kv = m->layers[0].n_head_kv;
    hp->head_dim = m->layers[0].head_dim;
    hp->n_ff = m->layers[0].n_ff;
    return GEMMA_OK;
}

/* ---- tensors ---- */

#define W(field, suffix, a, b, fl) \
    if ((st = gm_bind_weight(m, gm_blk_name(n, sizeof n, il, suffix), a, b, fl, &L->field, err))) return st
#define N(field, suffix, len, fl) \
    if ((st = gm_bind_f32(m, gm_blk_name(n, sizeof n, il, suffix), len, fl, &L->field, err))) return st

static gemma_status bind_attn(gemma_model *m, int il, g4_layer *L, gemma_error *err)
{
    const gm_layer_geom *g = &m->layers[il];
    const int64_t E = m->hp.n_embd, hd = g->head_dim, nq = hd * g->n_head, nkv = hd * g->n_head_kv;
    /* Shared layers compute no K/V; converters may still carry the projections (llama.cpp
     * loads and ignores them), so they are accepted there and never read. */
    const unsigned kvf = g->kv_src == il ? 0 : GM_BIND_OPTIONAL;
    char n[96];
    gemma_status st;
    if (gguf_find_tensor(m->file->ctx, gm_blk_name(n, sizeof n, il, "attn_qkv.weight")))
        return gm_fail(err, GEMMA_E_UNSUPPORTED, "tensor '%s': fused QKV projections are not supported", n);
    N(attn_norm, "attn_norm.weight", E, 0);
    W(wq, "attn_q.weight", E, nq, 0);
    W(wk, "attn_k.weight", E, nkv, kvf);
    W(wv, "attn_v.weight", E, nkv, GM_BIND_OPTIONAL);
    W(wo, "attn_output.weight", nq, E, 0);
    N(q_norm, "attn_q_norm.weight", hd, 0);
    N(k_norm, "attn_k_norm.weight", hd, kvf);
    N(post_attn_norm, "post_attention_norm.weight", E, 0);
    return GEMMA_OK;
}

static gemma_status bind_rest(gemma_model *m, int il, int64_t n_pl, g4_layer *L, gemma_error *err)
{
    const int64_t E = m->hp.n_embd, F = m->layers[il].n_ff;
    char n[96];
    gemma_status st;
    N(out_scale, "layer_output_scale.weight", 1, GM_BIND_OPTIONAL);
    N(ffn_norm, "ffn_norm.weight", E, 0);
    W(gate, "ffn_gate.weight", E, F, 0);
    W(up, "ffn_up.weight", E, F, 0);
    W(down, "ffn_down.weight", F, E, 0);
    N(post_ffw_norm, "post_ffw_norm.weight", E, 0);
    if (n_pl > 0) {
        W(ple_gate, "inp_gate.weight", E, n_pl, 0);
        W(ple_proj, "proj.weight", n_pl, E, 0);
        N(ple_post_norm, "post_norm.weight", E, 0);
    }
    return GEMMA_OK;
}
#undef W
#undef N

static gemma_status bind_globals(gemma_model *m, g4_weights *w, gemma_error *err)
{
    const gguf_tensor *te = gguf_find_tensor(m->file->ctx, "token_embd.weight");
    if (!te)
        return gm_fail(err, GEMMA_E_MODEL, "missing tensor 'token_embd.weight'");
    if (te->ne[1] < 1 || te->ne[1] > INT32_MAX)
        return gm_fail(err, GEMMA_E_MODEL, "tensor 'token_embd.weight': %lld rows is not a valid vocabulary size",
                       (long long)te->ne[1]);
    m->hp.n_vocab = (int32_t)te->ne[1];
    const int64_t E = m->hp.n_embd, V = m->hp.n_vocab, P = (int64_t)w->n_pl * m->hp.n_layer;
    gemma_status st;
    if ((st = gm_bind_weight(m, "token_embd.weight", E, V, 0, &w->tok_embd, err)) ||
        (st = gm_bind_f32(m, "output_norm.weight", E, 0, &w->output_norm, err)) ||
        (st = gm_bind_weight(m, "output.weight", E, V, GM_BIND_OPTIONAL, &w->output, err)))
        return st;
    if (!w->output)
        w->output = w->tok_embd; /* tied LM head, the normal case */
    if (w->n_pl > 0 &&
        ((st = gm_bind_weight(m, "per_layer_token_embd.weight", P, V, 0, &w->ple_embd, err)) ||
         (st = gm_bind_weight(m, "per_layer_model_proj.weight", E, P, 0, &w->ple_model_proj, err)) ||
         (st = gm_bind_f32(m, "per_layer_proj_norm.weight", w->n_pl, 0, &w->ple_proj_norm, err))))
        return st;
    return GEMMA_OK;
}

/* One rope_freqs tensor (head_dim/2 divisors) serves every global layer: proportional RoPE
 * rotates the first pairs and leaves the rest (divisor ~1e30) as they are. */
static gemma_status bind_rope_freqs(gemma_model *m, gemma_error *err)
{
    const float *ff = NULL;
    for (int32_t il = 0; il < m->hp.n_layer; il++) {
        gm_layer_geom *g = &m->layers[il];
        if (g->is_swa)
            continue;
        gemma_status st;
        if (!ff && (st = gm_bind_f32(m, "rope_freqs.weight", g->head_dim / 2, 0, &ff, err)))
            return st;
        g->rope_freq_factors = ff;
    }
    return GEMMA_OK;
}

static gemma_status bind_all(gemma_model *m, g4_weights *w, gemma_error *err)
{
    gemma_status st = bind_globals(m, w, err);
    if (!st)
        st = bind_rope_freqs(m, err);
    for (int il = 0; il < m->hp.n_layer && !st; il++)
        if (!(st = bind_attn(m, il, &w->layer[il], err)))
            st = bind_rest(m, il, w->n_pl, &w->layer[il], err);
    return st;
}

static void g4_free_data(void *data)
{
    g4_weights *w = data;
    if (w)
        free(w->layer);
    free(w);
}

static gemma_status g4_load(gemma_model *m, gemma_error *err)
{
    const gguf_ctx *g = m->file->ctx;
    g4_keys k = {0};
    gemma_status st = read_scalars(g, &k, err);
    if (!st)
        st = validate_scalars(&k, err);
    if (st)
        return st;
    uint32_t *arr = gm_malloc_array((size_t)k.n_layer * 3, sizeof *arr);
    bool *swa = gm_calloc(k.n_layer, sizeof *swa);
    m->layers = gm_calloc(k.n_layer, sizeof *m->layers);
    g4_weights *w = calloc(1, sizeof *w);
    if (w)
        w->layer = gm_calloc(k.n_layer, sizeof *w->layer);
    m->arch_data = w;
    if (!arr || !swa || !m->layers || !w || !w->layer) {
        free(arr);
        free(swa);
        return gm_fail(err, GEMMA_E_NOMEM, "out of memory reading the hyper-parameters");
    }
    k.n_ff = arr;
    k.n_head = arr + k.n_layer;
    k.n_head_kv = arr + 2 * (size_t)k.n_layer;
    k.is_swa = swa;
    st = read_layers(g, &k, err);
    if (!st)
        st = build_geometry(m, &k, err);
    free(arr);
    free(swa);
    w->n_pl = (int32_t)k.n_pl;
    if (!st)
        st = bind_all(m, w, err);
    return st;
}

/* ---- forward pass ---- */

/* RoPE tables of one forward pass, one per distinct (base, scale, factors, n_rot): local
 * and global layers. */
#define G4_ROPE_SLOTS 2

typedef struct g4_rope_slot {
    float base, freq_scale;
    const float *factors;
    int32_t n_rot;
    bool valid;
} g4_rope_slot;

typedef struct g4_scratch {
    int32_t n_batch, n_ctx, q_block, rope_next;
    int64_t rope_stride; /* floats per rope table */
    float *x, *h, *q, *k, *v, *att, *o, *gate, *up, *cs, *attn_tmp;
    float *scores, *qr;
    float *ple; /* [n_batch][n_layer][n_pl]: every layer's per-layer input */
    float *pl;  /* [max(n_batch, n_layer)][n_pl]: PLE gate rows, or one token's embedding row */
    g4_rope_slot rope[G4_ROPE_SLOTS];
    void *block;
} g4_scratch;

static void g4_scratch_free(void *p)
{
    g4_scratch *s = p;
    if (s)
        gm_aligned_free(s->block);
    free(s);
}

typedef struct g4_dims {
    int64_t qd, kvd, ff, hd, rot;
} g4_dims;

/* The widest layer of each kind of buffer (K/V only for layers that compute their own). */
static g4_dims max_dims(const gemma_model *m)
{
    g4_dims d = {0};
    for (int32_t il = 0; il < m->hp.n_layer; il++) {
        const gm_layer_geom *g = &m->layers[il];
        d.qd = GM_MAX(d.qd, (int64_t)g->n_head * g->head_dim);
        if (g->kv_src == il)
            d.kvd = GM_MAX(d.kvd, (int64_t)g->n_head_kv * g->head_dim);
        d.ff = GM_MAX(d.ff, (int64_t)g->n_ff);
        d.hd = GM_MAX(d.hd, (int64_t)g->head_dim);
        d.rot = GM_MAX(d.rot, (int64_t)g->n_rot);
    }
    return d;
}

static gemma_status g4_scratch_create(const gemma_model *m, int32_t n_batch, int32_t n_ctx,
                                      int32_t n_threads, void **out, gemma_error *err)
{
    *out = NULL;
    const g4_weights *w = m->arch_data;
    const g4_dims d = max_dims(m);
    const int64_t B = n_batch, E = m->hp.n_embd, NL = m->hp.n_layer, P = w->n_pl;
    /* Attention takes up to 32 queries at a time; fewer for long contexts, so that the
     * per-thread score rows stay near 4 MB. */
    const int64_t QB = GM_MAX(1, GM_MIN(GM_MIN(32, (int64_t)n_batch), ((int64_t)1 << 20) / n_ctx));
    const int64_t nw = (int64_t)n_threads * QB;
    /* Float counts of each buffer, each rounded up to 16 floats (64 bytes). */
    const int64_t sizes[] = {B * E, B * E, B * d.qd, B * d.kvd, B * d.kvd, B * d.qd, B * E, B * d.ff,
                             B * d.ff, G4_ROPE_SLOTS * B * d.rot, nw * n_ctx, nw * d.hd, nw * d.hd,
                             B * NL * P, GM_MAX(B, NL) * P};
    enum { NBUF = sizeof sizes / sizeof sizes[0] };
    uint64_t total = 0;
    for (int i = 0; i < NBUF; i++)
        total += ((uint64_t)sizes[i] + 15) / 16 * 16;
    g4_scratch *s = calloc(1, sizeof *s);
    if (!s || total > SIZE_MAX / 4 || !(s->block = gm_aligned_alloc((size_t)total * 4))) {
        g4_scratch_free(s);
        return gm_fail(err, GEMMA_E_NOMEM, "out of memory allocating %llu bytes of scratch",
                       (unsigned long long)total * 4);
    }
    float *p = s->block, *bufs[NBUF];
    for (int i = 0; i < NBUF; i++) {
        bufs[i] = p;
        p += ((uint64_t)sizes[i] + 15) / 16 * 16;
    }
    s->x = bufs[0]; s->h = bufs[1]; s->q = bufs[2]; s->k = bufs[3]; s->v = bufs[4];
    s->att = bufs[5]; s->o = bufs[6]; s->gate = bufs[7]; s->up = bufs[8]; s->cs = bufs[9];
    s->scores = bufs[10]; s->qr = bufs[11]; s->attn_tmp = bufs[12]; s->ple = bufs[13]; s->pl = bufs[14];
    s->q_block = (int32_t)QB;
    s->rope_stride = B * d.rot;
    s->n_batch = n_batch;
    s->n_ctx = n_ctx;
    *out = s;
    return GEMMA_OK;
}

/* The RoPE table (cos, sin pairs of every token of the batch) for this layer's frequencies:
 * computed by the first layer that uses them in this forward pass. */
static const float *rope_table(g4_scratch *s, const gm_layer_geom *g, const gm_batch *b)
{
    for (int i = 0; i < G4_ROPE_SLOTS; i++) {
        const g4_rope_slot *r = &s->rope[i];
        if (r->valid && r->base == g->rope_base && r->freq_scale == g->rope_freq_scale &&
            r->factors == g->rope_freq_factors && r->n_rot == g->n_rot)
            return s->cs + (size_t)i * (size_t)s->rope_stride;
    }
    const int i = s->rope_next;
    s->rope_next = (i + 1) % G4_ROPE_SLOTS;
    s->rope[i] = (g4_rope_slot){g->rope_base, g->rope_freq_scale, g->rope_freq_factors, g->n_rot, true};
    float *cs = s->cs + (size_t)i * (size_t)s->rope_stride;
    for (int32_t t = 0; t < b->n; t++)
        gm_rope_cache(cs + (size_t)t * (size_t)g->n_rot, b->pos0 + t, g->n_rot, g->rope_base,
                      g->rope_freq_scale, g->rope_freq_factors);
    return cs;
}

/* Row-wise work of a batch, split over the pool's threads by token for prompts (a decode
 * step's rows are too small to be worth waking the pool). */
typedef enum { ROWS_NORM, ROWS_NORM_ADD, ROWS_QK, ROWS_GEGLU, ROWS_PLE_GATE } rows_kind;

typedef struct rows_task {
    rows_kind kind;
    int32_t n;
    const gm_kernels *kern;
    /* NORM: y = rmsnorm(x) * w; NORM_ADD: also acc += y; GEGLU: y = gelu(y) * x (tab);
     * PLE_GATE: the same for rows of dim, x rows x_stride apart */
    float *y, *acc;
    const float *x, *w;
    int64_t dim, x_stride;
    float eps;
    const uint16_t *tab;
    /* QK */
    const gemma_model *m;
    const g4_layer *L;
    const gm_layer_geom *g;
    g4_scratch *s;
    gm_kvcache *kv;
    int32_t il, pos0;
    const float *cs;
} rows_task;

/* Per-head RMS norm of n_head heads of hd floats (w NULL: no weight). */
static void norm_heads(const gm_kernels *kern, float *y, const float *x, const float *w, int32_t n_head,
                       int32_t hd, float eps)
{
    for (int32_t h = 0; h < n_head; h++)
        gm_rmsnorm_k(kern, y + (size_t)h * (size_t)hd, x + (size_t)h * (size_t)hd, w, hd, eps);
}

/* Q norm and RoPE of one token; for a layer with its own cache also K, V (V from the raw
 * K projection when attn_v is absent, normed without weight) and the cache write. */
static void qk_token(const rows_task *r, int32_t t)
{
    const gm_layer_geom *g = r->g;
    const int32_t hd = g->head_dim;
    const float eps = r->m->hp.rms_eps;
    const float *cs = r->cs + (size_t)t * (size_t)g->n_rot;
    const size_t qd = (size_t)g->n_head * (size_t)hd, kvd = (size_t)g->n_head_kv * (size_t)hd;
    float *q = r->s->q + (size_t)t * qd;
    norm_heads(r->kern, q, q, r->L->q_norm, g->n_head, hd, eps);
    gm_rope_neox(q, g->n_head, hd, g->n_rot, cs);
    if (g->attn_scale != 1.0f)
        for (size_t i = 0; i < qd; i++)
            q[i] *= g->attn_scale;
    if (g->kv_src != r->il)
        return;
    float *k = r->s->k + (size_t)t * kvd, *v = r->s->v + (size_t)t * kvd;
    /* before K is normed in place: it may be V's source */
    norm_heads(r->kern, v, r->L->wv ? v : k, NULL, g->n_head_kv, hd, eps);
    norm_heads(r->kern, k, k, r->L->k_norm, g->n_head_kv, hd, eps);
    gm_rope_neox(k, g->n_head_kv, hd, g->n_rot, cs);
    gm_kvcache_store(r->kv, r->il, r->pos0 + t, k, v);
}

static void rows_range(const rows_task *r, int32_t t0, int32_t t1)
{
    const size_t d = (size_t)r->dim;
    switch (r->kind) {
    case ROWS_NORM:
    case ROWS_NORM_ADD:
        for (int32_t t = t0; t < t1; t++) {
            float *y = r->y + (size_t)t * d;
            gm_rmsnorm_k(r->kern, y, r->x + (size_t)t * d, r->w, r->dim, r->eps);
            if (r->kind == ROWS_NORM_ADD) {
                float *a = r->acc + (size_t)t * d;
                for (size_t i = 0; i < d; i++)
                    a[i] += y[i];
            }
        }
        break;
    case ROWS_QK:
        for (int32_t t = t0; t < t1; t++)
            qk_token(r, t);
        break;
    case ROWS_GEGLU:
        gm_geglu_k(r->kern, r->y + (size_t)t0 * d, r->y + (size_t)t0 * d, r->x + (size_t)t0 * d,
                   (int64_t)(t1 - t0) * r->dim, r->tab);
        break;
    case ROWS_PLE_GATE:
        for (int32_t t = t0; t < t1; t++)
            gm_geglu_k(r->kern, r->y + (size_t)t * d, r->y + (size_t)t * d, r->x + (size_t)t * (size_t)r->x_stride,
                       r->dim, r->tab);
        break;
    }
}

static void rows_fn(void *p, int ith, int nth)
{
    const rows_task *r = p;
    rows_range(r, (int32_t)((int64_t)r->n * ith / nth), (int32_t)((int64_t)r->n * (ith + 1) / nth));
}

static void run_rows(gm_compute *c, rows_task *r)
{
    if (r->n >= 4 && gm_compute_threads(c) > 1)
        gm_parallel(c, rows_fn, r);
    else
        rows_range(r, 0, r->n);
}

/* y = rmsnorm(x) * w row by row; with acc, also acc += y. */
static void norm_rows(gm_compute *c, float *y, const float *x, const float *w, int32_t n, int64_t dim, float eps,
                      float *acc)
{
    rows_task r = {.kind = acc ? ROWS_NORM_ADD : ROWS_NORM, .n = n, .kern = gm_compute_kernels(c), .y = y,
                   .acc = acc, .x = x, .w = w, .dim = dim, .eps = eps};
    run_rows(c, &r);
}

static gemma_status attn_block(const gemma_model *m, const g4_layer *L, int32_t il, gm_exec *ex,
                               const gm_batch *b)
{
    const gm_layer_geom *g = &m->layers[il];
    g4_scratch *s = ex->scratch;
    const int32_t n = b->n, E = m->hp.n_embd;
    const gm_kernels *kern = gm_compute_kernels(ex->c);
    gemma_status st;
    norm_rows(ex->c, s->h, s->x, L->attn_norm, n, E, m->hp.rms_eps, NULL);
    /* A KV-shared layer only projects Q; without attn_v the K projection doubles as V. */
    const bool own = g->kv_src == il;
    const gm_tensor *const wqkv[3] = {L->wq, L->wk, L->wv};
    float *const yqkv[3] = {s->q, s->k, s->v};
    if ((st = gm_matmul_multi(ex->c, wqkv, own ? (L->wv ? 3 : 2) : 1, s->h, n, yqkv)))
        return st;
    rows_task qk = {.kind = ROWS_QK, .n = n, .kern = kern, .m = m, .L = L, .g = g, .s = s, .kv = ex->kv,
                    .il = il, .pos0 = b->pos0, .cs = rope_table(s, g, b)};
    run_rows(ex->c, &qk);
    const gm_kv_layer *kl = &ex->kv->layer[g->kv_src];
    const size_t qd = (size_t)g->n_head * (size_t)g->head_dim;
    gm_attn a = {
        .q = s->q, .q_stride = qd, .out = s->att, .out_stride = qd, .n_tok = n, .pos0 = b->pos0,
        .n_head = g->n_head, .n_head_kv = g->n_head_kv, .head_dim = g->head_dim,
        .n_swa = g->is_swa ? m->hp.n_swa : 0, .k = kl->k, .vt = kl->vt, .cells = kl->cells,
        .q_block = s->q_block, .scores = s->scores, .qr = s->qr, .tmp = s->attn_tmp,
        .max_keys = s->n_ctx, .kern = kern,
    };
    gm_parallel(ex->c, gm_attn_task, &a);
    if ((st = gm_matmul(ex->c, L->wo, s->att, n, s->o)))
        return st;
    norm_rows(ex->c, s->o, s->o, L->post_attn_norm, n, E, m->hp.rms_eps, s->x);
    return GEMMA_OK;
}

static gemma_status ffn_block(const gemma_model *m, const g4_layer *L, int32_t il, gm_exec *ex,
                              const gm_batch *b)
{
    g4_scratch *s = ex->scratch;
    const int32_t n = b->n, E = m->hp.n_embd;
    gemma_status st;
    norm_rows(ex->c, s->h, s->x, L->ffn_norm, n, E, m->hp.rms_eps, NULL);
    const gm_tensor *const wgu[2] = {L->gate, L->up};
    float *const ygu[2] = {s->gate, s->up};
    if ((st = gm_matmul_multi(ex->c, wgu, 2, s->h, n, ygu)))
        return st;
    rows_task gg = {.kind = ROWS_GEGLU, .n = n, .kern = gm_compute_kernels(ex->c), .y = s->gate, .x = s->up,
                    .dim = m->layers[il].n_ff, .tab = m->gelu_f16};
    run_rows(ex->c, &gg);
    if ((st = gm_matmul(ex->c, L->down, s->gate, n, s->o)))
        return st;
    norm_rows(ex->c, s->o, s->o, L->post_ffw_norm, n, E, m->hp.rms_eps, s->x);
    return GEMMA_OK;
}

/* x += rmsnorm(proj · (gelu(inp_gate · x) * ple[il])) * post_norm, then the layer's output
 * scale. */
static gemma_status ple_block(const gemma_model *m, const g4_layer *L, int32_t il, gm_exec *ex,
                              const gm_batch *b)
{
    const g4_weights *w = m->arch_data;
    g4_scratch *s = ex->scratch;
    const int32_t n = b->n, E = m->hp.n_embd, P = w->n_pl;
    gemma_status st;
    if (P > 0) {
        if ((st = gm_matmul(ex->c, L->ple_gate, s->x, n, s->pl)))
            return st;
        rows_task pg = {.kind = ROWS_PLE_GATE, .n = n, .kern = gm_compute_kernels(ex->c), .y = s->pl,
                        .x = s->ple + (size_t)il * (size_t)P, .dim = P,
                        .x_stride = (int64_t)m->hp.n_layer * P, .tab = m->gelu_f16};
        run_rows(ex->c, &pg);
        if ((st = gm_matmul(ex->c, L->ple_proj, s->pl, n, s->o)))
            return st;
        norm_rows(ex->c, s->o, s->o, L->ple_post_norm, n, E, m->hp.rms_eps, s->x);
    }
    if (L->out_scale) {
        const float sc = L->out_scale[0];
        for (size_t i = 0; i < (size_t)n * (size_t)E; i++)
            s->x[i] *= sc;
    }
    return GEMMA_OK;
}

/* Token embeddings scaled by sqrt(n_embd); any id outside the vocabulary is an error. */
static gemma_status embed(const gemma_model *m, const gm_batch *b, float *x, gemma_error *err)
{
    const g4_weights *w = m->arch_data;
    const int32_t E = m->hp.n_embd;
    const float scale = sqrtf((float)E);
    for (int32_t t = 0; t < b->n; t++) {
        const gemma_token id = b->tokens[t];
        if (id < 0 || id >= m->hp.n_vocab)
            return gm_fail(err, GEMMA_E_INVALID_ARG, "token id %d is outside the vocabulary (0..%d)",
                           (int)id, (int)m->hp.n_vocab - 1);
        float *xt = x + (size_t)t * (size_t)E;
        gm_tensor_get_row(w->tok_embd, id, xt);
        for (int32_t i = 0; i < E; i++)
            xt[i] *= scale;
    }
    return GEMMA_OK;
}

/* Per-layer inputs (spec 4.4): ple[t][l] = (rmsnorm(proj(x)[l] / sqrt(n_embd)) * proj_norm
 * + per_layer_token_embd[id][l] * sqrt(n_pl)) / sqrt(2), in ggml's order of roundings. */
static gemma_status per_layer_inputs(const gemma_model *m, gm_exec *ex, const gm_batch *b)
{
    const g4_weights *w = m->arch_data;
    g4_scratch *s = ex->scratch;
    const int32_t NL = m->hp.n_layer, P = w->n_pl;
    const size_t row = (size_t)NL * (size_t)P;
    gemma_status st = gm_matmul(ex->c, w->ple_model_proj, s->x, b->n, s->ple);
    if (st)
        return st;
    const float proj_scale = 1.0f / sqrtf((float)m->hp.n_embd), emb_scale = sqrtf((float)P);
    const float out_scale = 1.0f / sqrtf(2.0f);
    for (size_t i = 0; i < (size_t)b->n * row; i++)
        s->ple[i] *= proj_scale;
    norm_rows(ex->c, s->ple, s->ple, w->ple_proj_norm, b->n * NL, P, m->hp.rms_eps, NULL);
    for (int32_t t = 0; t < b->n; t++) {
        float *pr = s->ple + (size_t)t * row;
        gm_tensor_get_row(w->ple_embd, b->tokens[t], s->pl);
        for (size_t i = 0; i < row; i++)
            pr[i] = (pr[i] + s->pl[i] * emb_scale) * out_scale;
    }
    return GEMMA_OK;
}

static gemma_status g4_forward(const gemma_model *m, gm_exec *ex, const gm_batch *b, gemma_error *err)
{
    const g4_weights *w = m->arch_data;
    g4_scratch *s = ex->scratch;
    const int32_t n = b->n, E = m->hp.n_embd;
    if (n < 1 || n > s->n_batch || b->pos0 < 0 || b->pos0 + n > s->n_ctx)
        return gm_fail(err, GEMMA_E_INTERNAL, "forward: batch of %d at %d does not fit", (int)n, (int)b->pos0);
    gemma_status st = embed(m, b, s->x, err);
    if (st)
        return st;
    if (w->n_pl > 0 && (st = per_layer_inputs(m, ex, b)))
        return gm_fail(err, st, "per-layer inputs: %s", gemma_strerror(st));
    for (int i = 0; i < G4_ROPE_SLOTS; i++)
        s->rope[i].valid = false;
    for (int32_t il = 0; il < m->hp.n_layer; il++) {
        if (ex->cancel && atomic_load_explicit(ex->cancel, memory_order_relaxed))
            return gm_fail(err, GEMMA_E_CANCELLED, "evaluation cancelled");
        const g4_layer *L = &w->layer[il];
        if ((st = attn_block(m, L, il, ex, b)) || (st = ffn_block(m, L, il, ex, b)) ||
            (st = ple_block(m, L, il, ex, b)))
            return gm_fail(err, st, "layer %d: %s", (int)il, gemma_strerror(st));
    }
    /* Final norm and LM head only for the rows asked for. */
    const int32_t first = b->logits_all ? 0 : n - 1, n_out = n - first;
    norm_rows(ex->c, s->h, s->x + (size_t)first * (size_t)E, w->output_norm, n_out, E, m->hp.rms_eps, NULL);
    if ((st = gm_matmul(ex->c, w->output, s->h, n_out, b->logits)))
        return gm_fail(err, st, "output projection: %s", gemma_strerror(st));
    if (m->hp.final_softcap > 0.0f)
        gm_softcap(b->logits, (int64_t)n_out * m->hp.n_vocab, m->hp.final_softcap);
    return GEMMA_OK;
}

const gm_arch_ops gm_arch_gemma4 = {
    .name = "gemma4",
    .turn_end = "<turn|>\n",
    .load = g4_load,
    .free_data = g4_free_data,
    .scratch_create = g4_scratch_create,
    .scratch_free = g4_scratch_free,
    .forward = g4_forward,
};
