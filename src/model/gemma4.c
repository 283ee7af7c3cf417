/* Gemma 4 (general.architecture = "gemma4"), dense models: hyper-parameters, tensor binding
 * and the forward pass of docs: gemma-spec.md section 4. What Gemma 3 lacks: a per-layer
 * sliding-window pattern, two head widths (local / global), per-layer embeddings (PLE),
 * trailing layers that read an earlier layer's KV cache, V = raw K projection when attn_v
 * is absent, a weightless V norm, proportional RoPE through rope_freqs and an optional
 * per-layer output scale. MoE models (expert_count > 0) are refused at load time. */
#include "arch.h"
#include "layers.h"
#include "../util/util.h"

#include <math.h>
#include <stdlib.h>

#define ARCH "gemma4"

typedef struct g4_layer {
    gm_attn_weights attn; /* wv NULL: V = raw K */
    gm_ffn_weights ffn;
    const float *ple_post_norm, *out_scale; /* out_scale: one float or NULL */
    const gm_tensor *ple_gate, *ple_proj;
} g4_layer;

typedef struct g4_weights {
    gm_io_weights io;
    int32_t n_pl;            /* per-layer input width, 0 = no PLE */
    const gm_tensor *ple_embd, *ple_model_proj;
    const float *ple_proj_norm;
    g4_layer *layer;
} g4_weights;

/* ---- hyper-parameters ---- */

typedef struct g4_keys {
    gm_base_keys b;
    uint32_t n_pl, n_shared, n_expert;
    bool *is_swa; /* per layer */
    uint32_t hd, hd_swa, n_rot, n_rot_swa;
} g4_keys;

static gemma_status read_scalars(const gguf_ctx *g, g4_keys *k, gemma_error *err)
{
    gemma_status st;
    if ((st = gm_read_size_keys(g, ARCH, &k->b, err)) ||
        (st = gm_key_u32(g, ARCH, "attention.sliding_window", true, &k->b.n_swa, err)) ||
        (st = gm_key_u32(g, ARCH, "embedding_length_per_layer_input", true, &k->n_pl, err)) ||
        (st = gm_key_u32(g, ARCH, "expert_count", false, &k->n_expert, err)))
        return st;
    if (k->n_expert > 0)
        return gm_fail(err, GEMMA_E_UNSUPPORTED,
                       "MoE Gemma 4 models (" ARCH ".expert_count = %u) are not supported yet", k->n_expert);
    k->b.softcap = 30.0f; /* llama.cpp's hparam default when the key is absent */
    if ((st = gm_read_rope_keys(g, ARCH, &k->b, err)) ||
        (st = gm_key_u32(g, ARCH, "attention.shared_kv_layers", false, &k->n_shared, err)))
        return st;
    return GEMMA_OK;
}

static gemma_status validate_scalars(const g4_keys *k, gemma_error *err)
{
    gemma_status st;
    if ((st = gm_validate_base_keys(ARCH, &k->b, err)) ||
        (st = gm_check_key_range(ARCH, "embedding_length_per_layer_input", k->n_pl, 0, 1u << 14, err)) ||
        (st = gm_check_key_range(ARCH, "attention.shared_kv_layers", k->n_shared, 0, k->b.n_layer - 1, err)))
        return st;
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
        for (uint32_t il = 0; !st && il < k->b.n_layer; il++)
            k->is_swa[il] = v;
        return st;
    }
    uint64_t n;
    const void *data;
    gemma_status st = gguf_get_arr(g, key, GGUF_T_BOOL, &n, &data, err);
    if (st)
        return st;
    if (n != k->b.n_layer)
        return gm_fail(err, GEMMA_E_MODEL, "key '%s': array has %llu elements, expected one per layer (%u)", key,
                       (unsigned long long)n, k->b.n_layer);
    for (uint32_t il = 0; il < k->b.n_layer; il++)
        k->is_swa[il] = ((const uint8_t *)data)[il] != 0;
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
    const uint32_t L = k->b.n_layer;
    if ((st = read_pattern(g, k, err)) || (st = gm_read_layer_keys(g, ARCH, &k->b, err)))
        return st;
    k->hd = k->b.n_embd / k->b.n_head[0];
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
    if (any_swa && k->b.n_swa == 0)
        return gm_fail(err, GEMMA_E_MODEL, "key '" ARCH ".attention.sliding_window' is 0 but some layers use it");
    return GEMMA_OK;
}

/* KV sharing (spec 4.3): with S = n_layer - shared_kv_layers, a layer il >= S reads the cache
 * of layer S-2 if it is local, S-1 if global. The source must be of the same kind, since a
 * local layer's cache only keeps the window. */
static gemma_status kv_source(const g4_keys *k, uint32_t il, uint32_t *src, gemma_error *err)
{
    const uint32_t S = k->b.n_layer - k->n_shared;
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
    if (k->b.n_head[il] % k->b.n_head_kv[*src])
        return gm_fail(err, GEMMA_E_MODEL, "layer %u: head_count %u is not a multiple of the %u KV heads of "
                       "layer %u, whose cache it reads", il, k->b.n_head[il], k->b.n_head_kv[*src], *src);
    return GEMMA_OK;
}

/* Per-layer geometry from the keys (spec 4.3). Frequency factors are set after binding. */
static gemma_status build_geometry(gemma_model *m, const g4_keys *k, gemma_error *err)
{
    const float fs_glob = k->b.scale_factor > 0.0f ? 1.0f / k->b.scale_factor : 1.0f;
    for (uint32_t il = 0; il < k->b.n_layer; il++) {
        gm_layer_geom *g = &m->layers[il];
        uint32_t src;
        gemma_status st = kv_source(k, il, &src, err);
        if (st)
            return st;
        const bool swa = k->is_swa[il];
        g->is_swa = swa;
        g->n_head = (int32_t)k->b.n_head[il];
        g->n_head_kv = (int32_t)k->b.n_head_kv[src];
        g->head_dim = (int32_t)(swa ? k->hd_swa : k->hd);
        g->n_ff = (int32_t)k->b.n_ff[il];
        g->n_rot = (int32_t)(swa ? k->n_rot_swa : k->n_rot);
        g->rope_base = swa ? k->b.base_swa : k->b.base;
        g->rope_freq_scale = swa ? 1.0f : fs_glob;
        g->rope_freq_factors = NULL;
        g->attn_scale = 1.0f; /* Q and K are RMS-normalised: no 1/sqrt(d) */
        g->v_norm = true;
        g->kv_src = (int32_t)src;
    }
    gm_set_hparams(m, &k->b);
    return GEMMA_OK;
}

/* ---- tensors ---- */

/* Shared layers compute no K/V; converters may still carry the projections (llama.cpp loads
 * and ignores them), so they are accepted there and never read. */
static gemma_status bind_attn(gemma_model *m, int il, g4_layer *L, gemma_error *err)
{
    const unsigned kvf = m->layers[il].kv_src == il ? 0 : GM_BIND_OPTIONAL;
    return gm_bind_attn(m, il, &L->attn, kvf, GM_BIND_OPTIONAL, err);
}

#define W(field, suffix, a, b, fl) \
    if ((st = gm_bind_weight(m, gm_blk_name(n, sizeof n, il, suffix), a, b, fl, &L->field, err))) return st
#define N(field, suffix, len, fl) \
    if ((st = gm_bind_f32(m, gm_blk_name(n, sizeof n, il, suffix), len, fl, &L->field, err))) return st

static gemma_status bind_rest(gemma_model *m, int il, int64_t n_pl, g4_layer *L, gemma_error *err)
{
    const int64_t E = m->hp.n_embd;
    char n[96];
    gemma_status st;
    N(out_scale, "layer_output_scale.weight", 1, GM_BIND_OPTIONAL);
    if ((st = gm_bind_ffn(m, il, &L->ffn, err)))
        return st;
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
    gemma_status st = gm_bind_io(m, &w->io, err);
    if (st)
        return st;
    const int64_t E = m->hp.n_embd, V = m->hp.n_vocab, P = (int64_t)w->n_pl * m->hp.n_layer;
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
    g4_weights *w = calloc(1, sizeof *w);
    m->arch_data = w;
    if (!w || !(w->layer = gm_calloc(k.b.n_layer, sizeof *w->layer)))
        return gm_fail(err, GEMMA_E_NOMEM, "out of memory allocating the layers");
    w->n_pl = (int32_t)k.n_pl;
    if ((st = gm_alloc_layers(m, &k.b, err)))
        return st;
    if (!(k.is_swa = gm_calloc(k.b.n_layer, sizeof *k.is_swa)))
        st = gm_fail(err, GEMMA_E_NOMEM, "out of memory reading the hyper-parameters");
    if (!st)
        st = read_layers(g, &k, err);
    if (!st)
        st = build_geometry(m, &k, err);
    gm_free_layer_keys(&k.b);
    free(k.is_swa);
    return st ? st : bind_all(m, w, err);
}

/* ---- forward pass ---- */

typedef struct g4_scratch {
    gm_scratch base; /* first: the shared layers see a gm_scratch */
    float *ple; /* [n_batch][n_layer][n_pl]: every layer's per-layer input */
    float *pl;  /* [max(n_batch, n_layer)][n_pl]: PLE gate rows, or one token's embedding row */
} g4_scratch;

static void g4_scratch_free(void *p)
{
    g4_scratch *s = p;
    if (s)
        gm_scratch_release(&s->base);
    free(s);
}

static gemma_status g4_scratch_create(const gemma_model *m, int32_t n_batch, int32_t n_ctx,
                                      int32_t n_threads, void **out, gemma_error *err)
{
    *out = NULL;
    const g4_weights *w = m->arch_data;
    const int64_t B = n_batch, NL = m->hp.n_layer, P = w->n_pl;
    g4_scratch *s = calloc(1, sizeof *s);
    if (!s)
        return gm_fail(err, GEMMA_E_NOMEM, "out of memory allocating the scratch");
    const int64_t sizes[2] = {B * NL * P, GM_MAX(B, NL) * P};
    float *bufs[2];
    gemma_status st = gm_scratch_init(&s->base, m, n_batch, n_ctx, n_threads, sizes, bufs, 2, err);
    if (st) {
        g4_scratch_free(s);
        return st;
    }
    s->ple = bufs[0];
    s->pl = bufs[1];
    *out = s;
    return GEMMA_OK;
}

/* x += rmsnorm(proj · (gelu(inp_gate · x) * ple[il])) * post_norm, then the layer's output
 * scale. */
static gemma_status ple_block(const gemma_model *m, const g4_layer *L, int32_t il, gm_exec *ex,
                              const gm_batch *b)
{
    const g4_weights *w = m->arch_data;
    g4_scratch *s = ex->scratch;
    float *x = s->base.x;
    const int32_t n = b->n, E = m->hp.n_embd, P = w->n_pl;
    gemma_status st;
    if (P > 0) {
        if ((st = gm_matmul(ex->c, L->ple_gate, x, n, s->pl)))
            return st;
        gm_geglu_rows(ex->c, s->pl, s->ple + (size_t)il * (size_t)P, (int64_t)m->hp.n_layer * P, n, P,
                      m->gelu_f16);
        if ((st = gm_matmul(ex->c, L->ple_proj, s->pl, n, s->base.o)))
            return st;
        gm_norm_rows(ex->c, s->base.o, s->base.o, L->ple_post_norm, n, E, m->hp.rms_eps, x);
    }
    if (L->out_scale) {
        const float sc = L->out_scale[0];
        for (size_t i = 0; i < (size_t)n * (size_t)E; i++)
            x[i] *= sc;
    }
    GM_PROF(&s->base, PLE);
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
    gemma_status st = gm_matmul(ex->c, w->ple_model_proj, s->base.x, b->n, s->ple);
    if (st)
        return st;
    const float proj_scale = 1.0f / sqrtf((float)m->hp.n_embd), emb_scale = sqrtf((float)P);
    const float out_scale = 1.0f / sqrtf(2.0f);
    for (size_t i = 0; i < (size_t)b->n * row; i++)
        s->ple[i] *= proj_scale;
    gm_norm_rows(ex->c, s->ple, s->ple, w->ple_proj_norm, b->n * NL, P, m->hp.rms_eps, NULL);
    for (int32_t t = 0; t < b->n; t++) {
        float *pr = s->ple + (size_t)t * row;
        gm_tensor_get_row(w->ple_embd, b->tokens[t], s->pl);
        for (size_t i = 0; i < row; i++)
            pr[i] = (pr[i] + s->pl[i] * emb_scale) * out_scale;
    }
    GM_PROF(&s->base, PLE);
    return GEMMA_OK;
}

static gemma_status g4_forward(const gemma_model *m, gm_exec *ex, const gm_batch *b, gemma_error *err)
{
    const g4_weights *w = m->arch_data;
    gemma_status st = gm_forward_begin(m, &w->io, ex, b, err);
    if (st)
        return st;
    if (w->n_pl > 0 && (st = per_layer_inputs(m, ex, b)))
        return gm_fail(err, st, "per-layer inputs: %s", gemma_strerror(st));
    for (int32_t il = 0; il < m->hp.n_layer; il++) {
        if ((st = gm_check_cancel(ex, err)))
            return st;
        const g4_layer *L = &w->layer[il];
        if ((st = gm_attn_block(m, &L->attn, il, ex, b)) ||
            (st = gm_ffn_block(m, &L->ffn, il, ex, b)) ||
            (st = ple_block(m, L, il, ex, b)))
            return gm_fail(err, st, "layer %d: %s", (int)il, gemma_strerror(st));
    }
    return gm_output_head(m, &w->io, ex, b, err);
}

/* gemma-spec.md 4.1 */
static const gm_size_class g4_sizes[] = {{30, "26B-A4B"}, {35, "E2B"}, {42, "E4B"}, {60, "31B"}, {0, NULL}};

const gm_arch_ops gm_arch_gemma4 = {
    .name = "gemma4",
    .sizes = g4_sizes,
    .chat = GM_CHAT_GEMMA4,
    .turn_end = "<turn|>\n",
    .load = g4_load,
    .free_data = g4_free_data,
    .scratch_create = g4_scratch_create,
    .scratch_free = g4_scratch_free,
    .forward = g4_forward,
};
